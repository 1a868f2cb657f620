#!/usr/bin/python3
"""A small ICMP echo client (raw sockets, IPv4 and IPv6) whose output looks like iputils ping's,
so the e2e tests do not depend on iputils-ping being installed:

    pyping.py [-4|-6] [-c COUNT] [-i INTERVAL] [-s SIZE] [-W TIMEOUT] [-M do|dont|want] [-t TTL] DST

Reports echo replies (with RTT), ICMP errors about our echoes (Fragmentation Needed / Packet Too
Big with the MTU, Time Exceeded, Destination Unreachable) and local send errors (EMSGSIZE once the
kernel learned a smaller path MTU), then iputils' summary lines. The last line is a JSON object
with every number (prefixed "json: ").
"""

import argparse
import errno
import json
import os
import random
import select
import socket
import struct
import sys
import time

IP_MTU_DISCOVER, IP_MTU = 10, 14
IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 23, 24, 51, 52
PMTU = {"dont": 0, "want": 1, "do": 2}


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-4", dest="v4", action="store_true")
    ap.add_argument("-6", dest="v6", action="store_true")
    ap.add_argument("-c", dest="count", type=int, default=4)
    ap.add_argument("-i", dest="interval", type=float, default=1.0)
    ap.add_argument("-s", dest="size", type=int, default=56)
    ap.add_argument("-W", dest="timeout", type=float, default=1.0)
    ap.add_argument("-M", dest="pmtu", choices=list(PMTU), default=None)
    ap.add_argument("-t", dest="ttl", type=int, default=None)
    ap.add_argument("-q", dest="quiet", action="store_true")
    ap.add_argument("dst")
    a = ap.parse_args()
    v6 = a.v6 or (":" in a.dst and not a.v4)
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    # Not connected: ICMP errors about our echoes come from routers (e.g. the gateway), and a
    # connected raw socket only receives packets from the address it is connected to.
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    probe = socket.socket(fam, socket.SOCK_DGRAM)   # only to read the kernel's path MTU to dst
    probe.connect((a.dst, 9))
    dst = probe.getpeername()[0]   # canonical form, to match reply sources
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        if a.pmtu:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTU[a.pmtu])
        if a.ttl:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, a.ttl)
    else:
        if a.pmtu:
            s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, PMTU[a.pmtu])
        if a.ttl:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
    ident = (os.getpid() ^ random.getrandbits(16)) & 0xFFFF
    echo_req, echo_rep = (128, 129) if v6 else (8, 0)
    payload = bytes((i & 0xFF) for i in range(a.size))
    hdr_len = 40 if v6 else 20
    print(f"PING {a.dst} ({a.dst}) {a.size}({a.size + 8 + hdr_len}) bytes of data.", flush=True)

    sent_at = {}
    rtts = []
    received = set()
    dup = 0
    errors = 0
    pmtu = None
    events = []
    t_start = time.monotonic()
    next_send = t_start
    seq = 0
    transmitted = 0
    last_send = None

    def mtu_now():
        try:
            return (probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU) if v6
                    else probe.getsockopt(socket.IPPROTO_IP, IP_MTU))
        except OSError:
            return None

    def handle(data, src, hlim):
        nonlocal dup, errors, pmtu
        if v6:
            icmp = data
            ttl = hlim
        else:
            ihl = (data[0] & 0xF) * 4
            ttl = data[8]
            icmp = data[ihl:]
        if len(icmp) < 8:
            return
        typ, code = icmp[0], icmp[1]
        if typ == echo_rep:
            rid, rseq = struct.unpack("!HH", icmp[4:8])
            if rid != ident or rseq not in sent_at or src != dst:
                return
            if rseq in received:
                dup += 1
                return
            received.add(rseq)
            rtt = (time.monotonic() - sent_at[rseq]) * 1000
            rtts.append(rtt)
            if not a.quiet:
                print(f"{len(icmp)} bytes from {src}: icmp_seq={rseq} ttl={ttl} time={rtt:.3f} ms", flush=True)
            return
        # ICMP error quoting one of our echo requests?
        if v6:
            if typ not in (1, 2, 3, 4):
                return
            inner = icmp[8:]
            if len(inner) < 48 or inner[6] != 58:
                return
            q = inner[40:48]
        else:
            if typ not in (3, 11, 12):
                return
            inner = icmp[8:]
            if len(inner) < 28 or inner[9] != 1:
                return
            q = inner[(inner[0] & 0xF) * 4:][:8]
        if len(q) < 8 or q[0] != echo_req or struct.unpack("!H", q[4:6])[0] != ident:
            return
        qseq = struct.unpack("!H", q[6:8])[0]
        errors += 1
        if v6 and typ == 2:
            pmtu = struct.unpack("!I", icmp[4:8])[0]
            msg = f"Packet too big: mtu={pmtu}"
        elif not v6 and typ == 3 and code == 4:
            pmtu = struct.unpack("!H", icmp[6:8])[0]
            msg = f"Frag needed and DF set (mtu = {pmtu})"
        elif (v6 and typ == 3) or (not v6 and typ == 11):
            msg = "Time to live exceeded"
        else:
            msg = f"Destination unreachable (type {typ} code {code})"
        events.append({"seq": qseq, "from": src, "type": typ, "code": code, "msg": msg})
        print(f"From {src} icmp_seq={qseq} {msg}", flush=True)

    while True:
        now = time.monotonic()
        if transmitted < a.count and now >= next_send:
            seq += 1
            body = struct.pack("!BBHHH", echo_req, 0, 0, ident, seq) + payload
            if not v6:
                body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
            sent_at[seq] = time.monotonic()
            transmitted += 1
            last_send = sent_at[seq]
            try:
                s.sendto(body, (a.dst, 0))
            except OSError as e:
                errors += 1
                if e.errno == errno.EMSGSIZE:
                    m = mtu_now()
                    pmtu = pmtu or m
                    print(f"ping: local error: message too long, mtu={m}", flush=True)
                    events.append({"seq": seq, "from": "local", "msg": f"message too long, mtu={m}"})
                else:
                    print(f"ping: sendmsg: {e.strerror}", flush=True)
                    events.append({"seq": seq, "from": "local", "msg": e.strerror})
            next_send += a.interval
            continue
        if transmitted >= a.count:
            if len(received) >= transmitted or now - last_send >= a.timeout:
                break
            wait = a.timeout - (now - last_send)
        else:
            wait = next_send - now
        r, _, _ = select.select([s], [], [], max(0.0, wait))
        if not r:
            continue
        try:
            data, anc, _, addr = s.recvmsg(65535, 64)
        except OSError as e:
            # an ICMP error queued on the connected socket (e.g. EMSGSIZE): already counted via the packet
            continue
        hlim = None
        for lvl, typ, val in anc:
            if lvl == socket.IPPROTO_IPV6 and typ == IPV6_HOPLIMIT and len(val) >= 4:
                hlim = struct.unpack("i", val[:4])[0]
        handle(data, addr[0], hlim)

    total_ms = (time.monotonic() - t_start) * 1000
    loss = 100.0 * (transmitted - len(received)) / transmitted if transmitted else 0
    print(f"\n--- {a.dst} ping statistics ---")
    err = f", +{errors} errors" if errors else ""
    dups = f", +{dup} duplicates" if dup else ""
    print(f"{transmitted} packets transmitted, {len(received)} received{dups}{err}, {loss:.0f}% packet loss, "
          f"time {total_ms:.0f}ms")
    if rtts:
        avg = sum(rtts) / len(rtts)
        mdev = (sum((r - avg) ** 2 for r in rtts) / len(rtts)) ** 0.5
        print(f"rtt min/avg/max/mdev = {min(rtts):.3f}/{avg:.3f}/{max(rtts):.3f}/{mdev:.3f} ms")
    print("json: " + json.dumps({"transmitted": transmitted, "received": len(received), "duplicates": dup,
                                 "errors": errors, "pmtu": pmtu, "rtts_ms": [round(r, 3) for r in rtts],
                                 "events": events}), flush=True)
    return 0 if len(received) == transmitted else 1


if __name__ == "__main__":
    sys.exit(main())
