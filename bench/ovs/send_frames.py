#!/usr/bin/python3
"""Send the frames of pcap files once, each into its own interface (AF_PACKET), paced.

Used by the verify run of ovs_vxlan_bench.sh, inside the bench's network namespace: OVS's input
ports are then net_pcap rx_iface_in=vaccN on veth pairs, so that nothing arrives before the
bridge is fully configured (frames replayed from rx_pcap start at once, while ofproto is still
adding ports, and OVS drops those whose upcall fails then).

usage: send_frames.py IFACE=PCAP [IFACE=PCAP ...]
"""
import socket
import sys
import time

from scapy.utils import RawPcapReader


def main():
    pairs = [a.split("=", 1) for a in sys.argv[1:]]
    socks, frames = [], []
    for ifname, path in pairs:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((ifname, 0))
        socks.append(s)
        frames.append([bytes(d) for d, _ in RawPcapReader(path)])
    n = max(len(f) for f in frames)
    sent = 0
    for i in range(n):  # interleaved over the ports, as the PMD polls them
        for s, f in zip(socks, frames):
            if i < len(f):
                s.send(f[i])
                sent += 1
        if i % 128 == 127:
            # pace (~10k frames/s): the PMD, busy with upcalls and preempted on a shared CPU,
            # reads libpcap's socket late; a burst would overflow its buffer
            time.sleep(0.05)
    print("sent %d frames" % sent)


if __name__ == "__main__":
    main()
