#!/usr/bin/python3
"""Check what OVS sent out of the underlay port (bench/ovs/ovs_vxlan_bench.sh, verify run).

The inputs (accN.pcap from gen_workload.py) were replayed once; OUT is the tx_pcap of the
underlay port. For the tunnel variants every input frame must come out exactly once as
  Ethernet(02:00:00:0c:00:00 -> next hop 02:00:00:0f:00:fe)
  / outer IPv4 203.0.113.1 -> 203.0.113.x  or  IPv6 2001:db8:a::1 -> 2001:db8:b::x (the MO's locator)
  / UDP -> 4789 / VXLAN (I flag, VNI = tenant = input port number)
  / the input frame, byte for byte;
for `fwd` the input frame itself. Outer IPv4 header checksums are checked; the outer UDP
checksum must be valid where set (OVS 3.1's userspace datapath always sets it over IPv6, and
not over IPv4 unless options:csum=true). Other frames (the kernel's IPv6 ND/MLD from
br-phy's tap, if any) are counted and ignored. Exit status 0 iff all is as expected.
"""
import collections
import ipaddress
import json
import os
import struct
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import RawPcapReader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_workload as gw  # noqa: E402

BR_PHY_MAC = "02:00:00:0c:00:00"


def frames(path):
    return [bytes(d) for d, _ in RawPcapReader(path)]


def ones_sum(h):
    s = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inner_key(b):
    """(family, k) of an access frame, from its destination EID."""
    et = struct.unpack("!H", b[12:14])[0]
    if et == 0x0800:
        return 4, int(ipaddress.IPv4Address(b[30:34])) - 0xC6120000 - 1
    return 6, int(ipaddress.IPv6Address(b[38:54])) - (0x20010DB8_0100 << 80) - 1


def main():
    wdir, out = sys.argv[1], sys.argv[2]
    # frames the input ports' libpcap capture dropped before OVS saw them (rx_dropped)
    dropped_before = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    man = json.load(open(os.path.join(wdir, "manifest.json")))
    variant = man["variant"]
    expected = collections.Counter()
    n_in = 0
    for t in range(man["ports"]):
        for b in frames(os.path.join(wdir, "acc%d.pcap" % (t + 1))):
            n_in += 1
            if variant == "fwd":
                expected[("fwd", b)] += 1
            else:
                fam, k = inner_key(b)
                expected[(t + 1, gw.locator(k, variant)[1], b)] += 1
    got = collections.Counter()
    other = 0
    errors = []
    fams = collections.Counter()
    n_out = 0
    for b in frames(out):
        n_out += 1
        if variant == "fwd":
            if ("fwd", b) in expected:
                got[("fwd", b)] += 1
            else:
                other += 1
            continue
        p = Ether(b)
        if not p.haslayer(VXLAN):
            other += 1
            continue
        def err(msg):
            if len(errors) < 10:
                errors.append(msg + ": " + p.summary())
        if p.dst != gw.NH_MAC or p.src != BR_PHY_MAC:
            err("outer MACs")
        if isinstance(p.payload, IP):
            o = p.payload
            if o.src != gw.LOC4:
                err("outer IPv4 source")
            dst = o.dst
            if ones_sum(b[14:34]) != 0xFFFF:
                err("outer IPv4 checksum")
            fams["outer4"] += 1
        elif isinstance(p.payload, IPv6):
            o = p.payload
            if o.src != gw.LOC6:
                err("outer IPv6 source")
            dst = o.dst
            fams["outer6"] += 1
        else:
            err("outer network header")
            continue
        u = p[UDP]
        if u.dport != 4789:
            err("UDP destination port")
        if u.chksum:
            pp = Ether(b)
            del pp[UDP].chksum
            if Ether(bytes(pp))[UDP].chksum != u.chksum:
                err("outer UDP checksum")
            fams["udp_csum_set"] += 1
        elif isinstance(p.payload, IPv6):
            err("outer UDP checksum missing (OVS 3.1 always sets it over IPv6)")
        v = p[VXLAN]
        if not (v.flags & 0x08):
            err("VXLAN I flag")
        inner = bytes(v.payload)
        fams["inner4" if inner[12:14] == b"\x08\x00" else "inner6"] += 1
        key = (v.vni, str(ipaddress.ip_address(dst)), inner)
        if key in expected:
            got[key] += 1
        else:
            err("no input frame for (VNI, outer destination, inner frame)")
    missing = expected - got
    extra = got - expected
    ok = not errors and not extra and sum(missing.values()) <= dropped_before
    print("verify %s: %d frames in, %d out: %d as expected, %d missing (%d dropped by the input capture, before OVS), %d duplicated, %d other (ignored)%s"
          % (variant, n_in, n_out, sum((got & expected).values()), sum(missing.values()), dropped_before, sum(extra.values()), other,
             (", " + ", ".join("%s %d" % kv for kv in sorted(fams.items()))) if fams else ""))
    for e in errors:
        print("  error:", e)
    if variant != "fwd" and n_out:
        p = next(Ether(b) for b in frames(out) if Ether(b).haslayer(VXLAN))
        print("  first VXLAN frame:", p.summary(), "(%d bytes)" % len(p))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
