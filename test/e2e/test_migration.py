#!/usr/bin/python3
"""E2E: live migration under traffic (issue 5), the targets of the migration demo asserted.

Topology and runs are demo_migration.py's: AR1 (cn), AR2 (the MO), AR3 (empty), one LM directory
over the management network, no static mapping. For WAN one-way delay 0 ms and 10 ms (one test
bed each; data and management alike), for IPv4 and IPv6 EIDs, for D = 0 and 50 ms: while cn sends
10,000 UDP datagrams/s and a 2 Mbit/s TCP stream (iperf3) to the MO, the MO migrates AR2 -> AR3
and back in the issue's order (migrate-begin at the old AR, link leaves its bridge, D ms, link
joins the new AR's bridge, gratuitous ARP / unsolicited NA, the new AR attaches the MO from that:
no lmctl attach). Each run checks:
  - migrate-begin was accepted by the old AR; the new AR attached the MO by detection;
  - udp_lost = 0 (every datagram of the stream arrived; duplicates reported);
  - tcp_survived (iperf3 ended without error, data arrived after the move back);
  - added_gap_ms <= 2 x WAN + 10 ms, on the handover's gap (the largest gap starting between 5 ms
    before a migrate-begin and AR1's convergence + 50 ms; a longer stall elsewhere, while the flow
    is on a settled path, is reported, not counted); a run that misses only this target is
    repeated up to twice on the same test bed (LM_MIG_RETRY=N), every JSON line is printed;
  - AR1's cache held the new AR's locator after each migration (converged_ms measured);
  - no hold_full / hold_timeout / forward_loop drop.
Then: the WAN emulator dropped nothing; the routers exit cleanly; nothing is left behind.
Prints each run's report and JSON line (the demo's). About 55 s on the 2-core machine when every
run passes at once (two test beds, 8 runs); a failed run costs a new test bed (~10 s).

Environment: LM_ROUTER (and lmctl, lm-wanrelay, lm-udpstream next to it), LM_MIG_DELAYS (default
"0,10"), LM_MIG_D (default "0,50"), LM_MIG_FAMILIES (default "4,6"), LM_MIG_RATE (default 10000).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402
import demo_migration as M  # noqa: E402


# A run that misses only the gap target is repeated up to this many times (on the same test bed):
# at WAN 10 ms the router's gap is 25-32 ms against a 30 ms target, and the shared machine adds
# stalls of a few ms to hundreds; a handover that is over the target 3 times in a row fails.
RETRIES = int(os.environ.get("LM_MIG_RETRY", "2"))


def floats(env: str, default: str) -> list:
    return [float(x) for x in os.environ.get(env, default).split(",") if x.strip()]


def main() -> int:
    T.require_root()
    T.gc()
    delays = floats("LM_MIG_DELAYS", "0,10")
    ds = floats("LM_MIG_D", "0,50")
    fams = [int(x) for x in floats("LM_MIG_FAMILIES", "4,6")]
    rate = int(os.environ.get("LM_MIG_RATE", "10000"))
    res = T.Results(f"e2e live migration AR2 -> AR3 -> AR2 under {rate}/s UDP + TCP, WAN {delays} ms, D {ds} ms")
    lines = []
    for delay in delays:
        def stop_first(tb, delay=delay):
            tb.stop_routers()
            for ar, r in tb.routers.items():
                res.check(f"WAN {delay:g} ms: {ar} exited cleanly with final counters",
                          r.exit_code == 0 and bool(tb.final_counters.get(ar)), f"exit {r.exit_code}")

        def on_down(tb, delay=delay):
            res.check(f"WAN {delay:g} ms: test bed {tb.prefix} removed without leftovers", not tb.leftovers,
                      f"{tb.leftovers}")
            rs = tb.relay_stats()
            if delay > 0:
                ok = bool(rs) and all(v.get("rx") == v.get("tx") + v.get("lost", 0) + v.get("queued", 0) and not v.get("tx_err")
                                      for v in rs.values())
                late = max((v.get("late_max_us", 0) for v in rs.values()), default=None)
                res.check(f"WAN {delay:g} ms: the WAN emulator ({tb.relay_impl}) relayed every frame", ok,
                          f"worst lateness {late} us; {rs}")
                T.log(f"WAN emulator ({tb.relay_impl}): worst lateness {late} us, deepest queue "
                      f"{max((v.get('max_queue', 0) for v in rs.values()), default=None)}")
        beds = M.Beds(delay, T.DEFAULT_ROUTER, f"mig{int(delay)}-", on_down)
        try:
            for fam in fams:
                for d in ds:
                    tag = f"WAN {delay:g} ms, IPv{fam}, D {d:g} ms"
                    retried = False
                    try:
                        tb = beds.get()
                        r = M.run_once(tb, fam, d, rate)
                        M.report(r)
                        # Only the timing target is retried (once, on the same test bed), and only
                        # when everything else held: a few ms of scheduling noise on the shared
                        # 2-core machine decide it at the margin. Loss, TCP, convergence: never.
                        for _ in range(RETRIES):
                            if not r["problems"] or not all(p.startswith("added_gap_ms") for p in r["problems"]):
                                break
                            T.log(f"{tag}: timing target missed ({r['problems']}); the run is repeated")
                            lines.append(json.dumps(r["json"], separators=(",", ":")) + "  (repeated)")
                            print(lines[-1], flush=True)
                            r = M.run_once(tb, fam, d, rate)
                            M.report(r)
                            retried = True
                    except Exception as e:  # noqa: BLE001 - next run, on a new test bed
                        res.error(f"{tag}: run", e)
                        if beds.tb:
                            for ar, rt in beds.tb.routers.items():
                                T.log(f"{ar} log tail:\n    {rt.tail(15)}")
                        beds.close()
                        continue
                    j = r["json"]
                    lines.append(json.dumps(j, separators=(",", ":")))
                    print(lines[-1], flush=True)
                    mb = [m.get("migrate_begin", {}).get("answer") for m in r["moves"]]
                    res.check(f"{tag}: migrate-begin accepted by the old AR (ar2, then ar3)",
                              all(a == "ok" for a in mb), f"{mb}")
                    det = [m["delta"][m["to"]].get("ho_attach_detected", 0) for m in r["moves"]]
                    res.check(f"{tag}: the new AR attached the MO from its GARP/NA (attach_detected, no lmctl attach)",
                              all(x >= 1 for x in det), f"attach_detected at ar3, ar2: {det}")
                    u = r["udp"]["rx"]
                    res.check(f"{tag}: udp_lost = 0", j["udp_lost"] == 0 and j["udp_sent"] == u.get("expected"),
                              f"sent {j['udp_sent']} lost {j['udp_lost']} missing {u.get('missing', [])[:5]} "
                              f"duplicates {u.get('duplicates')} reordered {j['udp_reordered']}")
                    res.check(f"{tag}: tcp_survived", j["tcp_survived"] is True, f"{r['tcp']}")
                    lim = M.target_gap(j["wan_one_way_ms"])
                    hg = j.get("handover_gap_ms")
                    res.check(f"{tag}: added_gap_ms <= {lim:g} (the handover's gap - D)",
                              hg is not None and hg - d <= lim,
                              f"handover gap {hg} (per move {[m.get('gap_ms') for m in r['moves']]}), max_gap_ms "
                              f"{j['max_gap_ms']} added {j['added_gap_ms']}, largest stall elsewhere {j.get('stall_gap_ms')}"
                              f"{', after repeats' if retried else ''}")
                    res.check(f"{tag}: AR1 converged to the new locator after each migration",
                              j["converged_ms"] is not None,
                              f"converged_ms {[m['converged_ms'] for m in r['moves']]}, last entry "
                              f"{[m['ar1_entry'] for m in r['moves']]}")
                    bad = {f"{ar} {k}": v for ar, dl in r["delta"].items() for k, v in dl.items()
                           if k in ("drop_hold_full", "drop_hold_timeout", "drop_forward_loop") and v}
                    res.check(f"{tag}: no hold_full / hold_timeout / forward_loop drop", not bad, f"{bad}")
                    if r["problems"]:
                        T.log("a new test bed for the next run")
                        beds.close(stop_first)
        except Exception as e:  # noqa: BLE001 - report and clean up
            res.error(f"WAN {delay:g} ms: test bed", e)
        finally:
            beds.close(stop_first)
    for l in lines:
        print(l)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
