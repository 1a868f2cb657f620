#!/usr/bin/python3
"""Inputs of the OVS-DPDK VXLAN bench (bench/ovs/ovs_vxlan_bench.sh): pcaps and OpenFlow rules.

The packets are those of `lm-bench fastpath`'s encap workloads (bench/lm_bench.cpp):
64-byte access frames, Ethernet + IPv4/IPv6 + UDP 40000 -> 5001 from 192.0.2.10 /
2001:db8:200::10 to the gateway MAC 02:00:5e:00:00:01, toward MO EIDs 198.18.0.0 + k + 1 /
2001:db8:100::k+1, inner family and k drawn from the same seeded xorshift64*. Tenants 1-4 are
the 4 access ports; `mos` MOs are spread as mos / 8 per (tenant, family), like lm-bench.
Each MO's locator alternates IPv4 / IPv6 with k over 200 remote ARs (203.0.113.2-201,
2001:db8:b::2-201), as lm_bench.cpp's mapping().

The OpenFlow rules are the OVS equivalent of LM's EID -> locator cache: one rule per
(tenant port, EID), setting the VNI (= tenant) and the tunnel destination (= locator), then
output to the flow-based VXLAN port (remote_ip=flow, key=flow).

Variants:
  hot   4 ports, 10 000 MOs (lm-bench encap_hot), 10 000 rules
  many  4 ports, 100 000 MOs, 100 000 rules (EMC thrashes, every packet is a dpcls lookup)
  one   1 port, 1 MO, 1 packet repeated: OVS's best case (EMC always hits)
  hot4  = hot with IPv4 locators only (OVS 3.1's userspace datapath always computes the outer
        UDP checksum over IPv6, LM does not by default: this variant has no outer checksum)
  fwd   = hot's packets and rules, but the action is a plain output to the underlay port
        (patch to br-phy): OVS classification + forward without the tunnel push

Writes into OUTDIR: accN.pcap (N = 1..ports), empty.pcap, flows.txt (br-int rules),
neigh.txt (tunnel neighbours for tnl/neigh/set), manifest.json.
"""
import argparse
import ipaddress
import json
import os
import struct
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapWriter

MASK64 = (1 << 64) - 1
SEED = 0x4C4D2D62656E6368  # bench_util.hpp kSeed ("LM-bench")

GW_MAC = "02:00:5e:00:00:01"      # lm_bench.cpp make_config: gw_mac
SRC_MAC = "02:00:00:00:5e:10"     # access_template: mac(0, 0x00, 0x5e, 0x10)
SRC4, SRC6 = "192.0.2.10", "2001:db8:200::10"
NH_MAC = "02:00:00:0f:00:fe"      # next-hop MAC of lm-bench's worker (nh4/nh6)
LOC4, LOC6 = "203.0.113.1", "2001:db8:a::1"  # our locators (br-phy addresses)
GW6 = "2001:db8:a::fe"            # IPv6 next hop toward 2001:db8:b::/64
FRAME_LEN = 64

OF_ACC = [1, 2, 3, 4]   # OpenFlow port numbers of acc1..acc4 on br-int (ofport_request)
OF_VXLAN = 10           # vxlan0
OF_PATCH = 20           # patch-int (fwd variant)


class Rng:
    """bench_util.hpp's xorshift64*."""

    def __init__(self, s=SEED):
        self.s = s

    def next(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & MASK64
        s ^= s >> 27
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & MASK64


def eid4(k):
    return str(ipaddress.IPv4Address(0xC6120000 + k + 1))


def eid6(k):
    return str(ipaddress.IPv6Address((0x20010DB8_0100 << 80) + k + 1))


def locator(k, variant="hot"):
    if variant == "hot4":  # every locator IPv4: no outer IPv6, so no outer UDP checksum in OVS
        return 4, "203.0.113.%d" % (2 + k % 200)
    ar = 2 + (k >> 1) % 200
    if k & 1:
        return 6, str(ipaddress.IPv6Address((0x20010DB8000B << 80) + ar))
    return 4, "203.0.113.%d" % ar


def frame(v6, k):
    """One 64-byte access frame (Ethernet + IP + UDP + zero payload), as lm-bench's templates."""
    if v6:
        p = Ether(dst=GW_MAC, src=SRC_MAC) / IPv6(src=SRC6, dst=eid6(k), hlim=64) / UDP(sport=40000, dport=5001, chksum=0) / bytes(FRAME_LEN - 62)
    else:
        p = Ether(dst=GW_MAC, src=SRC_MAC) / IP(src=SRC4, dst=eid4(k), ttl=64, flags="DF", id=0) / UDP(sport=40000, dport=5001, chksum=0) / bytes(FRAME_LEN - 42)
    b = bytes(p)
    assert len(b) == FRAME_LEN, len(b)
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=["hot", "hot4", "many", "one", "fwd"])
    ap.add_argument("outdir")
    ap.add_argument("--packets", type=int, default=0, help="packets per pcap (default: 8192, many: 32768, one: 1)")
    a = ap.parse_args()

    if a.variant in ("hot", "hot4", "fwd"):
        ports, mos = 4, 10_000
    elif a.variant == "many":
        ports, mos = 4, 100_000
    else:
        ports, mos = 1, 1
    per = max(1, mos // 8)  # MOs per (tenant, family), as lm-bench (mos / (2 * kAccessPorts))
    npk = a.packets or {"hot": 8192, "hot4": 8192, "fwd": 8192, "many": 32768, "one": 1}[a.variant]
    os.makedirs(a.outdir, exist_ok=True)

    # Frames are built once per (family, k) and reused.
    cache = {}

    def get(v6, k):
        key = (v6, k)
        if key not in cache:
            cache[key] = frame(v6, k)
        return cache[key]

    rng = Rng()
    flows = 0  # distinct (port, frame): OVS's exact-match flows
    for t in range(ports):
        seen = set()
        w = RawPcapWriter(os.path.join(a.outdir, "acc%d.pcap" % (t + 1)), linktype=1, sync=False)
        for _ in range(npk):
            if a.variant == "one":
                v6, k = 0, 0
            else:
                x = rng.next()
                v6 = x & 1
                k = ((x >> 32) * per) >> 32
            w.write(get(v6, k))
            seen.add((v6, k))
        w.close()
        flows += len(seen)
    with open(os.path.join(a.outdir, "empty.pcap"), "wb") as f:  # a pcap with no packet (rx of the verify sink)
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    # OpenFlow rules of br-int: (tenant port, EID) -> VNI + locator.
    with open(os.path.join(a.outdir, "flows.txt"), "w") as f:
        for t in range(ports):
            for v6 in (0, 1) if a.variant != "one" else (0,):
                for k in range(per):
                    fam, loc = locator(k, a.variant)
                    match = ("ipv6,ipv6_dst=%s" % eid6(k)) if v6 else ("ip,nw_dst=%s" % eid4(k))
                    if a.variant == "fwd":
                        act = "output:%d" % OF_PATCH
                    else:
                        act = "set_field:%d->tun_id,set_field:%s->%s,output:%d" % (
                            t + 1, loc, "tun_ipv6_dst" if fam == 6 else "tun_dst", OF_VXLAN)
                    f.write("table=0,priority=100,in_port=%d,%s,actions=%s\n" % (OF_ACC[t], match, act))
    # Neighbours: every IPv4 locator is on br-phy's /24; IPv6 locators are behind GW6.
    neigh = sorted({locator(k, a.variant)[1] for k in range(min(per, 400)) if locator(k, a.variant)[0] == 4},
                   key=lambda s: ipaddress.ip_address(s))
    with open(os.path.join(a.outdir, "neigh.txt"), "w") as f:
        for ip in neigh:
            f.write("%s %s\n" % (ip, NH_MAC))
        f.write("%s %s\n" % (GW6, NH_MAC))
    json.dump({"variant": a.variant, "ports": ports, "mos": mos, "per": per, "packets_per_port": npk,
               "rules": ports * per * (1 if a.variant == "one" else 2), "flows": flows},
              open(os.path.join(a.outdir, "manifest.json"), "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
