#!/usr/bin/python3
"""Send what a hypervisor sends for a VM that just resumed on a new host: a gratuitous ARP
(request, sender = target = the IPv4 address, broadcast) and an unsolicited Neighbour
Advertisement (to ff02::1, Override flag, target link-layer address option). Plain AF_PACKET
socket (no scapy: it starts in tens of milliseconds, which matters when measuring a handover).
Run it inside the host's namespace:

    announce.py --iface eth0 --mac 02:00:00:00:00:10 [--v4 192.0.2.20] [--v6 2001:db8:1::20] [--count 1] [--interval 0.05]
                [--wait]

--wait: prints "ready", then sends the announcement each time a line arrives on stdin (a
pre-started announcer answers within ~0.1 ms, where starting Python takes tens of ms) and
prints {"sent": time.time(), "mono": time.monotonic()} of its first frame; ends at EOF.
"""

import argparse
import json
import socket
import struct
import sys
import time


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s >> 16) + (s & 0xFFFF)
    return ~s & 0xFFFF


def garp(mac: bytes, ip: bytes) -> bytes:
    eth = b"\xff" * 6 + mac + b"\x08\x06"
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + ip
    return eth + arp


def unsolicited_na(mac: bytes, ip6: bytes) -> bytes:
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ip6 + struct.pack("!BB", 2, 1) + mac   # O flag
    pseudo = ip6 + dst + struct.pack("!I", len(body)) + b"\0\0\0" + bytes([58])
    body = body[:2] + struct.pack("!H", csum(pseudo + body)) + body[4:]
    ip = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + ip6 + dst
    eth = b"\x33\x33\x00\x00\x00\x01" + mac + b"\x86\xdd"
    return eth + ip + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--mac", required=True)
    ap.add_argument("--v4")
    ap.add_argument("--v6")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--wait", action="store_true", help="send on each line read from stdin")
    a = ap.parse_args()
    mac = bytes.fromhex(a.mac.replace(":", ""))
    frames = []
    if a.v4:
        frames.append(garp(mac, socket.inet_pton(socket.AF_INET, a.v4)))
    if a.v6:
        frames.append(unsolicited_na(mac, socket.inet_pton(socket.AF_INET6, a.v6)))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((a.iface, 0))

    def announce():
        for i in range(a.count):
            if i:
                time.sleep(a.interval)
            for f in frames:
                s.send(f)
    if not a.wait:
        announce()
        return 0
    print("ready", flush=True)
    for _ in sys.stdin:
        t = {"sent": time.time(), "mono": time.monotonic()}
        announce()
        print(json.dumps(t), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
