#!/usr/bin/python3
"""E2E: core MTU 1500 = access MTU 1500, `encap.mss_clamp: auto` (the option an operator takes when
the WAN links cannot carry the encapsulation overhead).

Topology: AR1 (s1) and AR2 (s2), tenants 1 and 2, no WAN delay, core next hop MAC configured
statically (next_hop.mac; the other tests use ARP/ND resolution). Tenant 1 maps v4 EIDs to v4
locators and v6 to v6 (4in4, 6in6), tenant 2 crosses them (4in6, 6in4).
Checks, for each of the four combinations:
- the largest packet that fits (1500 - overhead: 52 for outer IPv4, 72 for outer IPv6) crosses
  with DF set; one byte more is answered by the gateway address with ICMP Fragmentation Needed /
  Packet Too Big carrying exactly that MTU;
- TCP (iperf3, 10 Mbit/s, 3 s, both directions) works: the SYNs seen on the WAN carry the MSS
  clamped to 1388 (IPv4) / 1368 (IPv6), no outer packet exceeds 1500 bytes;
- an oversized IPv4 packet without DF is dropped and counted (too_big_no_df), no ICMP;
- counters: mss_clamped, too_big, icmp_error_sent; no unexpected drop.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

CORE_MTU = 1500
OVER = {4: 52, 6: 72}
MSS = {4: CORE_MTU - 72 - 40, 6: CORE_MTU - 72 - 60}   # auto with a v6 locator: worst-case overhead 72


def tcp_mss(inner: dict):
    """(flags, mss or None) of an inner TCP segment."""
    l4 = inner["l4"]
    if len(l4) < 20:
        return None, None
    flags = l4[13]
    doff = (l4[12] >> 4) * 4
    opts = l4[20:doff]
    i = 0
    while i < len(opts):
        k = opts[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(opts):
            break
        ln = opts[i + 1]
        if k == 2 and ln == 4 and i + 4 <= len(opts):
            return flags, struct.unpack("!H", opts[i + 2:i + 4])[0]
        if ln < 2:
            break
        i += ln
    return flags, None


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results("e2e MTU 1500 core with MSS clamping and Frag Needed / Packet Too Big")
    cross = {4: 6, 6: 4}
    sites = T.default_sites(2, tenants=(1, 2), core_mtu=CORE_MTU, access_mtu=1500, static_nexthop_mac=True,
                            config={"encap": {"mss_clamp": "auto"}})
    hosts = [
        T.Host("cn1", "s1", tenant=1, v4="192.0.2.10", v6="2001:db8:1::10"),
        T.Host("mo1", "s2", tenant=1, v4="192.0.2.20", v6="2001:db8:1::20"),
        T.Host("cn2", "s1", tenant=2, v4="192.0.2.10", v6="2001:db8:1::10", outer=cross),
        T.Host("mo2", "s2", tenant=2, v4="192.0.2.20", v6="2001:db8:1::20", outer=cross),
    ]
    tb = T.Testbed(sites, hosts, name="mtu")
    n_too_big = 0
    try:
        tb.up()
        for s in tb.sites:
            nh = tb.routers[s.ar].telemetry("/lm/nexthop")
            res.check(f"{s.ar} next hop configured statically", all("static" in v for v in nh.values()), f"{nh}")
        cap = tb.capture_wan("s1", bpf="udp port 4341", snaplen=220)

        # --- TCP first (before any PMTU is cached by the hosts) ----------------------------------
        T.log("iperf3 with MSS clamping: 4 flows at 10 Mbit/s for 3 s, forward then reverse")
        servers = [tb.iperf_server(b, prt) for b in ("mo1", "mo2") for prt in (5201, 5202)]
        for reverse in (False, True):
            clients = []
            for a, b in (("cn1", "mo1"), ("cn2", "mo2")):
                hb = tb.host(b)
                for dst, prt in ((hb.v4, 5201), (hb.v6, 5202)):
                    clients.append((a, b, dst, tb.iperf_client(a, dst, prt, rate="10M", secs=3, reverse=reverse)))
            for a, b, dst, c in clients:
                c.wait(30)
                r = T.parse_iperf(c)
                direction = f"{b} -> {a}" if reverse else f"{a} -> {b}"
                res.check(f"iperf3 {direction} via {dst} (tenant {tb.host(b).tenant})",
                          "error" not in r and r["rx_bytes"] >= 0.85 * 10e6 * 3 / 8, f"{r}")
        for p in servers:
            p.stop()

        # --- DF boundary: largest fitting packet passes, one byte more gets Frag Needed / PTB ----
        T.log("DF boundary pings")
        for a, b in (("cn1", "mo1"), ("cn2", "mo2"), ("mo1", "cn1")):
            ha, hb = tb.host(a), tb.host(b)
            for fam, dst in ((4, hb.v4), (6, hb.v6)):
                outer = hb.outer[fam]
                fit = CORE_MTU - OVER[outer]               # largest inner IP packet
                icmp_payload = fit - (28 if fam == 4 else 48)
                combo = f"{fam}in{outer}"
                r = tb.ping(a, dst, count=2, interval=0.05, size=icmp_payload, df=True)
                res.check(f"{combo} {a} -> {b}: {fit}-byte DF packets cross", r["received"] == 2 and r["errors"] == 0,
                          r["out"][-300:])
                r = tb.ping(a, dst, count=1, size=icmp_payload + 1, df=True)
                n_too_big += 1
                ev = r["json"].get("events", [])
                gw = T.GW4 if fam == 4 else T.GW6
                ok = r["received"] == 0 and r["pmtu"] == fit and any(e.get("from") == gw for e in ev)
                res.check(f"{combo} {a} -> {b}: {fit + 1} bytes with DF -> "
                          f"{'Frag Needed' if fam == 4 else 'Packet Too Big'} mtu {fit} from the gateway", ok,
                          r["out"][-400:])
                # the host's kernel accepted the error (checksum, quote) and cached the path MTU
                rg = tb.run(a, ["ip", "route", "get", dst], check=False).stdout
                res.check(f"{combo} {a}: kernel cached path MTU {fit} toward {dst}", f"mtu {fit}" in rg, rg.strip())

        # --- IPv4 without DF, too big: dropped, no ICMP (outer fragmentation not implemented) -----
        r = tb.ping("cn1", "192.0.2.20", count=1, size=1472, df=False)
        tb.run("cn1", ["ip", "route", "flush", "cache"], check=False)
        res.check("IPv4 1500 bytes without DF (4in4): not delivered, no ICMP error",
                  r["received"] == 0 and r["errors"] == 0, r["out"][-300:])

        # --- WAN capture: clamped MSS in SYNs, no outer packet over the core MTU -------------------
        frames = cap.stop()
        lm = T.lm_packets(frames)
        syns = {4: set(), 6: set()}
        too_long = []
        for d in lm:
            if d["ip"]["len"] > CORE_MTU:
                too_long.append(d["ip"]["len"])
            inner = d["inner"]
            if inner and inner["proto"] == 6:
                flags, mss = tcp_mss(inner)
                if flags is not None and flags & 0x02 and mss is not None:
                    syns[inner["family"]].add(mss)
        res.check("no outer packet on the WAN is larger than the core MTU", not too_long and len(lm) > 100,
                  f"{len(lm)} LM packets, too long: {too_long[:5]}")
        for fam in (4, 6):
            res.check(f"IPv{fam} SYN / SYN-ACK on the WAN carry MSS {MSS[fam]} (clamped from "
                      f"{1460 if fam == 4 else 1440})", syns[fam] == {MSS[fam]}, f"MSS values seen: {syns[fam]}")

        fc = tb.stop_routers()
        total = {k: fc.get("ar1", {}).get(k, 0) + fc.get("ar2", {}).get(k, 0) for k in fc.get("ar1", {})}
        for ar in ("ar1", "ar2"):
            if ar in fc:
                T.log(f"{ar}: {T.summarize_counters(fc[ar])}")
        res.check("routers clamped MSS (mss_clamped >= 16: 2 SYN + 2 SYN-ACK per flow... at least one per SYN)",
                  total.get("mss_clamped", 0) >= 16, f"mss_clamped {total.get('mss_clamped')}")
        res.check(f"routers dropped the {n_too_big} oversized DF packets as too_big and sent ICMP errors",
                  total.get("drop_too_big", 0) == n_too_big and total.get("icmp_error_sent", 0) >= n_too_big,
                  f"too_big {total.get('drop_too_big')} icmp_error_sent {total.get('icmp_error_sent')}")
        res.check("router dropped the oversized non-DF IPv4 packet (too_big_no_df)",
                  total.get("drop_too_big_no_df", 0) == 1, f"too_big_no_df {total.get('drop_too_big_no_df')}")
        for ar in ("ar1", "ar2"):
            bad = T.bad_drops(fc.get(ar, {}))
            res.check(f"{ar} no unexpected drops", ar in fc and not bad, f"{bad}")
    except BaseException as e:  # also SIGINT/SIGTERM: record, clean up, report
        res.error("test run", e)
    finally:
        tb.down_checked(res)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
