#!/usr/bin/python3
"""Generates the pcaps the replay modes need (pktgen -s P:FILE, TRex push / push_pcap).

    /usr/bin/python3 make_pcaps.py                    # the standard set, into pcaps/
    /usr/bin/python3 make_pcaps.py --out DIR          # the standard set, elsewhere
    /usr/bin/python3 make_pcaps.py --list             # what the standard set holds
    /usr/bin/python3 make_pcaps.py --out DIR decap-6in6-128B-4k-zipf.pcap ...   # any other set

The name says what is inside: SCENARIO-FAMILY-SIZE-COUNT-DIST.pcap

    SCENARIO  encap   plain UDP from the local MOs to the remote MOs: what the generator sends
                      into the router's access port (the router encapsulates it)
              decap   LM-encapsulated UDP from the peer AR to the local MOs: what the generator
                      sends into the router's core port (the router decapsulates it)
              miss    plain UDP from the local MOs to EIDs nobody publishes (every packet misses)
              return  plain UDP from the remote MOs to the local MOs: what the generator sends
                      into ar2's access port in the router pair (the way back of encap)
    FAMILY    v4, v6 (inner family); decap: INNERinOUTER, one of 4in4 4in6 6in4 6in6
    SIZE      NB = frame size with FCS on the access link (decap: of the inner frame the router
              delivers; the core frame is longer by 52 or 72 bytes); imix = 7:4:1 of 64
              (78 for IPv6), 594 and 1518 bytes
    COUNT     number of destination EIDs (MOs): 250, 1k = 1024, 4k = 4096
    DIST      uniform  each destination once per round, round robin (COUNT packets; IMIX:
                       lcm(COUNT, 12) packets, so every EID sees the same size mix)
              zipf     4 x COUNT packets, destination rank r drawn with probability
                       proportional to 1/(r+1) (rank r = MO index r: the hot set is the low indices)
              mix50    miss only: 2 x COUNT packets, alternately to miss EID j and remote MO j
                       (a hit), so half the traffic hits while the other half storms the misses

Everything is deterministic (the Zipf draws use a seed derived from the file name): running
this again produces the same bytes, which test/scenarios/check_scenarios.py verifies.
Addresses, MACs and MO ids come from lmplan.py (the plan in README.md).
"""

import argparse
import os
import random
import re
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmplan  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# The standard set: small enough to commit (each file < 1 MB, the limit of TRex's push_pcap
# without --force), covering every scenario, both families, the four outer/inner combinations,
# minimum, maximum and IMIX sizes, and both distributions.
STANDARD = [
    "encap-v4-64B-250-uniform", "encap-v4-64B-250-zipf", "encap-v4-1518B-250-uniform",
    "encap-v4-imix-250-uniform",
    "encap-v6-78B-1k-uniform", "encap-v6-78B-1k-zipf", "encap-v6-78B-4k-uniform",
    "encap-v6-1518B-256-uniform", "encap-v6-imix-256-uniform",
    "decap-4in4-64B-250-uniform", "decap-4in4-64B-250-zipf", "decap-4in4-1518B-250-uniform",
    "decap-4in4-imix-250-uniform", "decap-4in6-64B-250-uniform",
    "decap-6in6-78B-1k-uniform", "decap-6in6-78B-1k-zipf", "decap-6in6-1518B-256-uniform",
    "decap-6in6-imix-256-uniform", "decap-6in4-78B-1k-uniform",
    "miss-v4-64B-126-uniform", "miss-v4-64B-126-mix50", "miss-v6-78B-4k-uniform", "miss-v6-78B-2k-mix50",
    "return-v4-64B-250-uniform", "return-v4-64B-250-zipf", "return-v6-78B-1k-uniform", "return-v6-78B-1k-zipf",
]

NAME_RE = re.compile(r"^(?P<scenario>encap|decap|miss|return)-(?P<fam>v4|v6|[46]in[46])-"
                     r"(?P<size>\d+B|imix)-(?P<count>\d+k?)-(?P<dist>uniform|zipf|mix50)(?:\.pcap)?$")

# Whose EIDs the destinations are, per scenario; the sources are the other side's MOs.
DST_ROLE = {"encap": "remote", "decap": "local", "miss": "miss", "return": "local"}
SRC_ROLE = {"encap": "local", "decap": "remote", "miss": "local", "return": "remote"}
# How many MOs of each role the committed configurations know, per family.
CONFIGURED = {
    ("local", "v4"): lmplan.V4_MAX["local"], ("local", "v6"): lmplan.CONFIG_LOCAL_MOS,
    ("remote", "v4"): lmplan.V4_MAX["remote"], ("remote", "v6"): lmplan.CONFIG_REMOTE_MOS,
    ("miss", "v4"): lmplan.V4_MAX["miss"], ("miss", "v6"): lmplan.V6_MAX,
}


def count_label(n):
    return "%dk" % (n // 1024) if n >= 1024 and n % 1024 == 0 else str(n)


def parse_name(name):
    """'decap-6in6-78B-1k-zipf.pcap' -> dict(scenario, inner, outer, size, count, dist)."""
    m = NAME_RE.match(os.path.basename(name))
    if not m:
        raise ValueError("%r is not SCENARIO-FAMILY-SIZE-COUNT-DIST.pcap (see make_pcaps.py)" % name)
    sc, fam = m.group("scenario"), m.group("fam")
    if (sc == "decap") != ("in" in fam):
        raise ValueError("%r: decap takes INNERinOUTER (4in6 ...), the others v4 or v6" % name)
    if m.group("dist") == "mix50" and sc != "miss":
        raise ValueError("%r: mix50 is for the miss scenario only" % name)
    inner = "v" + fam[0] if sc == "decap" else fam
    outer = "v" + fam[-1] if sc == "decap" else None
    size = "imix" if m.group("size") == "imix" else int(m.group("size")[:-1])
    c = m.group("count")
    count = int(c[:-1]) * 1024 if c.endswith("k") else int(c)
    lmplan.check_size(size, inner)
    if count < 1:
        raise ValueError("%r: no destination" % name)
    dmax = lmplan.family_max(DST_ROLE[sc], inner)
    if count > dmax:
        raise ValueError("%r: %d %s %s EIDs do not fit (at most %d)" % (name, count, DST_ROLE[sc], inner, dmax))
    if m.group("dist") == "mix50" and count > lmplan.family_max("remote", inner):
        raise ValueError("%r: mix50 needs as many remote MOs as misses" % name)
    return {"name": os.path.basename(name) if name.endswith(".pcap") else name + ".pcap", "scenario": sc,
            "inner": inner, "outer": outer, "size": size, "count": count, "dist": m.group("dist")}


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def packet_plan(spec):
    """[(destination role, destination index, frame size)] for every packet of the pcap."""
    n, dist, size, fam = spec["count"], spec["dist"], spec["size"], spec["inner"]
    role = DST_ROLE[spec["scenario"]]
    if dist == "uniform":
        total = n * 12 // _gcd(n, 12) if size == "imix" else n
        dests = [(role, k % n) for k in range(total)]
    elif dist == "zipf":
        draw = lmplan.zipf_sampler(n, random.Random(zlib.crc32(spec["name"].encode())))
        dests = [(role, draw()) for _ in range(4 * n)]
    else:  # mix50
        dests = [(("miss", k // 2) if k % 2 == 0 else ("remote", k // 2)) for k in range(2 * n)]
    return [(r, i, lmplan.imix_size(k, fam) if size == "imix" else size) for k, (r, i) in enumerate(dests)]


def frame(spec, role, i, size):
    """One packet of the pcap: to destination i of role, frame size (FCS included)."""
    sc, fam = spec["scenario"], spec["inner"]
    src_role = SRC_ROLE[sc]
    j = i % CONFIGURED[(src_role, fam)]          # a source MO the configurations know
    src, dst = lmplan.eid(src_role, fam, j), lmplan.eid(role, fam, i)
    sport = lmplan.SRC_PORT_BASE + i % 64512
    if sc != "decap":
        return lmplan.plain_frame(fam, src, dst, size, src_mac=lmplan.mo_mac(src_role, j), sport=sport)
    # The peer AR received the packet from its MO and decremented the TTL once (protocol.md 5).
    inner = lmplan.ip_udp(fam, src, dst, size - lmplan.FCS - lmplan.ETH, ttl=63, sport=sport)
    peer, dut = lmplan.LOCATORS["peer"], lmplan.LOCATORS["dut"]
    o = 0 if spec["outer"] == "v4" else 1
    return lmplan.lm_frame(spec["outer"], inner, lmplan.local_mo_id(i), peer[o], dut[o])


def build(spec):
    """The frames of a pcap, as bytes (each distinct frame is built once)."""
    cache = {}
    out = []
    for key in packet_plan(spec):
        if key not in cache:
            cache[key] = bytes(frame(spec, *key))
        out.append(cache[key])
    return out


def warn_unconfigured(spec):
    role = DST_ROLE[spec["scenario"]]
    if role != "miss" and spec["count"] > CONFIGURED[(role, spec["inner"])]:
        sys.stderr.write("make_pcaps: warning: %s goes to %d %s MOs, the configurations know %d: "
                         "regenerate them with make_configs.py --local-mos/--remote-mos\n"
                         % (spec["name"], spec["count"], role, CONFIGURED[(role, spec["inner"])]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="pcaps to make instead of the standard set")
    ap.add_argument("--out", default=os.path.join(HERE, "pcaps"), help="output directory (default: pcaps/)")
    ap.add_argument("--list", action="store_true", help="list the standard set and exit")
    a = ap.parse_args()
    try:
        specs = [parse_name(n) for n in (a.names or STANDARD)]
    except ValueError as e:
        ap.error(str(e))
    if a.list:
        for s in specs:
            print("%-34s %6d packets" % (s["name"], len(packet_plan(s))))
        return 0
    os.makedirs(a.out, exist_ok=True)
    for s in specs:
        warn_unconfigured(s)
        frames = build(s)
        lmplan.write_pcap(os.path.join(a.out, s["name"]), frames)
        print("%-34s %6d packets %9d bytes" % (s["name"], len(frames), sum(len(f) for f in frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
