#!/usr/bin/python3
"""Forwarding demo: two LM access routers across an emulated WAN, a correspondent and an MO.

    cn (192.0.2.10, 2001:db8:1::10) -- [AR1 s1] ==== WAN, 10 ms each way ==== [AR2 s2] -- mo1 (192.0.2.20, 2001:db8:1::20)

Both hosts are registered like MOs (static attachment on their AR, static mapping on the other),
so traffic is LM-encapsulated in both directions (4in4 and 6in6). The demo pings both ways, runs
sequence-numbered UDP streams over IPv4 and IPv6 both ways, captures the WAN, reads the routers'
counters live (rte_telemetry: /lm/stats, /lm/drops, /lm/port,N) and at exit (the `final counters`
line), prints a report and a one-line verdict. Exit status 0 on PASS, 1 on FAIL.

    sudo test/e2e/demo_forwarding.py [--delay MS] [--count N] [--rate PPS] [--router PATH]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay", type=float, default=10.0, help="one-way WAN delay, ms (default 10)")
    ap.add_argument("--count", type=int, default=500, help="datagrams per UDP stream (default 500)")
    ap.add_argument("--rate", type=float, default=250, help="datagrams per second (default 250)")
    ap.add_argument("--router", default=T.DEFAULT_ROUTER)
    a = ap.parse_args()
    T.require_root()
    T.gc()
    t0 = time.monotonic()
    problems = []
    sites = T.default_sites(2, delay_ms=a.delay)
    hosts = [T.Host("cn", "s1", v4="192.0.2.10", v6="2001:db8:1::10"),
             T.Host("mo1", "s2", v4="192.0.2.20", v6="2001:db8:1::20")]
    tb = T.Testbed(sites, hosts, router=a.router, name="demo")
    report = []

    def out(line=""):
        report.append(line)
        print(line, flush=True)

    live = {}
    try:
        tb.up()
        cap = tb.capture_wan("s1", bpf="udp port 4341", snaplen=160)
        out()
        out("== Topology")
        for s in tb.sites:
            hs = [h.name for h in tb.hosts if h.site == s.name]
            out(f"  {s.ar}: locators {s.loc4}, {s.loc6}; hosts {', '.join(hs)}; WAN delay toward it {s.delay_ms:g} ms")
        for h in tb.hosts:
            out(f"  {h.name}: {h.v4}, {h.v6}  mac {h.mac}  mo_id {h.mo_id:#x}  at {tb.site(h.site).ar}")

        out()
        out("== Ping (5 echoes each)")
        for src, dst in (("cn", "mo1"), ("mo1", "cn")):
            for addr in tb.host(dst).eids:
                r = tb.ping(src, addr, count=5, interval=0.1)
                ok = r["received"] == 5
                problems += [] if ok else [f"ping {src}->{addr}"]
                rtt = f"rtt min/avg/max {r['rtt_min']}/{r['rtt_avg']}/{r['rtt_max']} ms" if r["rtt_min"] else "no reply"
                out(f"  {src:>3} -> {addr:<15} sent {r['sent']} received {r['received']}  {rtt}  {'ok' if ok else 'FAIL'}")

        out()
        out(f"== UDP streams ({a.count} sequence-numbered datagrams at {a.rate:g}/s, all four at once)")
        streams = []
        port = 44000
        for src, dst in (("cn", "mo1"), ("mo1", "cn")):
            for addr in tb.host(dst).eids:
                port += 1
                streams.append((src, addr, tb.udp_stream(src, dst, addr, port, count=a.count, rate=a.rate)))
        for src, addr, st in streams:
            r = st.result()
            tx, rx = r["tx"], r["rx"]
            ok = (tx.get("sent") == a.count and rx.get("lost") == 0 and rx.get("reordered") == 0
                  and rx.get("duplicates") == 0)
            problems += [] if ok else [f"udp {src}->{addr}"]
            out(f"  {src:>3} -> {addr:<15} sent {tx.get('sent')} received {rx.get('received')} lost {rx.get('lost')} "
                f"reordered {rx.get('reordered')} duplicates {rx.get('duplicates')} "
                f"largest gap {rx.get('max_gap_ms')} ms  {'ok' if ok else 'FAIL'}")

        out()
        out("== Router counters, live (rte_telemetry)")
        for ar, r in tb.routers.items():
            st = r.telemetry("/lm/stats")
            drops = {k: v for k, v in (r.telemetry("/lm/drops") or {}).items() if v}
            plist = r.telemetry("/lm/port") or {}
            live[ar] = st
            keys = ("encap", "decap", "cache_hit", "cache_miss", "arp_reply", "nd_advert", "punted", "dropped",
                    "control_echo_replies", "control_neighbor_probes")
            out(f"  {ar} /lm/stats: " + " ".join(f"{k}={st.get(k)}" for k in keys))
            out(f"  {ar} /lm/drops: " + (" ".join(f"{k}={v}" for k, v in drops.items()) or "none"))
            for name, idx in sorted(plist.items(), key=lambda kv: kv[1]):
                p = r.telemetry(f"/lm/port,{idx}") or {}
                out(f"  {ar} /lm/port,{idx}: {name} ({p.get('role')}) rx {p.get('rx_packets')} pkts / "
                    f"{p.get('rx_bytes')} B, tx {p.get('tx_packets')} pkts / {p.get('tx_bytes')} B")
            out(f"  {ar} /lm/nexthop: {r.telemetry('/lm/nexthop')}")

        out()
        out("== WAN capture on AR1's core link")
        lm = T.lm_packets(cap.stop())
        kinds = {}
        for d in lm:
            k = (d["ip"]["src"], d["ip"]["dst"], d["lm"]["tenant"], d["lm"]["mo_id"], d["lm"]["next"])
            kinds[k] = kinds.get(k, 0) + 1
        for (src, dst, tenant, mo, nxt), n in sorted(kinds.items()):
            out(f"  {n:5d} x LM v1 {src} -> {dst} udp/4341 tenant {tenant} mo_id {mo:#x} "
                f"next {'IPv4' if nxt == 4 else 'IPv6'}")
        if len(lm) < 4 * a.count:
            problems.append(f"only {len(lm)} LM packets on the WAN")

        fc = tb.stop_routers()
        out()
        out("== Router counters at exit (final counters)")
        for ar in tb.routers:
            c = fc.get(ar)
            if c is None:
                problems.append(f"{ar}: no final counters (exit {tb.routers[ar].exit_code})")
                out(f"  {ar}: no final counters line (exit status {tb.routers[ar].exit_code})")
                continue
            out(f"  {ar}: {T.summarize_counters(c)}")
            bad = T.bad_drops(c)
            if bad:
                problems.append(f"{ar} drops {bad}")
            if c["encap"] < 2 * a.count or c["decap"] < 2 * a.count:
                problems.append(f"{ar} encap/decap too low")
    except BaseException as e:  # also SIGINT/SIGTERM
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        tb.down()
        if tb.leftovers:
            problems.append(f"left behind: {tb.leftovers}")
    dt = time.monotonic() - t0
    print()
    if problems:
        print(f"VERDICT: FAIL ({dt:.0f} s): " + "; ".join(problems))
        return 1
    print(f"VERDICT: PASS ({dt:.0f} s): cn <-> mo1 over a {a.delay:g} ms WAN through 2 LM routers: every ping answered, "
          f"4 x {a.count} UDP datagrams delivered in order without loss, all LM-encapsulated (tenant 1), "
          f"no unexpected drop, nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
