#!/usr/bin/python3
"""E2E: forwarding over an emulated WAN with 10 ms one-way delay between the sites (applied by
wanrelay.py on the core links and on the management network alike), core next hops resolved by
ARP / ND (no static MAC).

Topology: AR1 (s1) with cn, AR2 (s2) with mo1, tenant 1, same-family mappings (4in4, 6in6).
Checks: both routers resolved their next hop by ARP and ND; ping RTT across is 20 ms plus a little
(v4 and v6, both ways); the management network connects the ARs' kernels with the same delay
(v4 and v6); the routers answer pings to their locators; UDP streams v4 and v6 both ways (4 concurrent, 500 datagrams at 500/s) arrive
complete, in order, without duplicates; iperf3 10 Mbit/s both directions over the delay; the
emulator lost nothing; no unexpected router drop.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

DELAY = 10.0
N_UDP = 500


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results(f"e2e forwarding over a {DELAY:g} ms WAN, next hops by ARP/ND, management network")
    sites = T.default_sites(2, delay_ms=DELAY)
    hosts = [T.Host("cn", "s1", v4="192.0.2.10", v6="2001:db8:1::10"),
             T.Host("mo1", "s2", v4="192.0.2.20", v6="2001:db8:1::20")]
    tb = T.Testbed(sites, hosts, name="delay")
    try:
        tb.up()
        for s in tb.sites:
            nh = tb.routers[s.ar].telemetry("/lm/nexthop")
            ok = (nh.get("v4", "").startswith(f"{s.wan4} {s.wan_mac} probes")
                  and nh.get("v6", "").startswith(f"{s.wan6} {s.wan_mac} probes"))
            res.check(f"{s.ar} resolved its next hop by ARP and ND", ok, f"{nh}")

        T.log("ping RTT over the WAN")
        # the minimum RTT is robust to CPU contention (other jobs on the 2 cores); the emulator adds
        # at most ~1 ms (epoll granularity), the routers and kernels well under 1 ms more
        lo, hi = 2 * DELAY, 2 * DELAY + 5
        for a, b in (("cn", "mo1"), ("mo1", "cn")):
            for dst in tb.host(b).eids:
                tb.ping(a, dst, count=1, timeout=2)   # warm the hosts' neighbour caches
                r = tb.ping(a, dst, count=5, interval=0.05)
                ok = r["received"] == 5 and r["rtt_min"] is not None and lo <= r["rtt_min"] < hi
                res.check(f"ping {a} -> {dst}: minimum RTT within [{lo:g}, {hi:g}) ms", ok,
                          f"rtt min/avg/max {r['rtt_min']}/{r['rtt_avg']}/{r['rtt_max']} received {r['received']}")
        T.log("management network")
        s1, s2 = tb.sites
        for dst in (s2.mgmt4, s2.mgmt6):
            tb.run(s1.ar, [T.PY, os.path.join(T.HERE, "pyping.py"), "-c", "1", "-W", "2", dst], check=False)
            r = T.parse_ping(tb.run(s1.ar, [T.PY, os.path.join(T.HERE, "pyping.py"), "-c", "5", "-i", "0.05", dst],
                                    check=False).stdout, 0)
            ok = r["received"] == 5 and r["rtt_min"] is not None and lo <= r["rtt_min"] < hi
            res.check(f"management network ar1 -> ar2 {dst}: minimum RTT within [{lo:g}, {hi:g}) ms", ok,
                      f"rtt {r['rtt_min']}/{r['rtt_avg']}/{r['rtt_max']} received {r['received']}")

        T.log("ping the routers' locators from the WAN")
        for site in tb.sites:
            for loc in (site.loc4, site.loc6):
                r = T.parse_ping(tb.run("wan", [T.PY, os.path.join(T.HERE, "pyping.py"), "-c", "3", "-i", "0.05", loc],
                                        check=False).stdout, 0)
                res.check(f"{site.ar} answers ping to its locator {loc}", r["received"] == 3,
                          f"received {r['received']}/3")

        T.log(f"UDP streams: 4 x {N_UDP} datagrams at 500/s")
        sts = []
        port = 42000
        for a, b in (("cn", "mo1"), ("mo1", "cn")):
            for dst in tb.host(b).eids:
                port += 1
                sts.append((a, b, dst, tb.udp_stream(a, b, dst, port, count=N_UDP, rate=500)))
        for a, b, dst, st in sts:
            r = st.result()
            T.check_stream(res, f"udp {a} -> {dst} over the WAN", r, expect=N_UDP)

        T.log("iperf3 10 Mbit/s for 3 s, v4 forward and v6 reverse at once, then v4 reverse and v6 forward")
        srv4 = tb.iperf_server("mo1", 5201)
        srv6 = tb.iperf_server("mo1", 5202)
        for rev4 in (False, True):
            c4 = tb.iperf_client("cn", "192.0.2.20", 5201, secs=3, reverse=rev4)
            c6 = tb.iperf_client("cn", "2001:db8:1::20", 5202, secs=3, reverse=not rev4)
            for c, fam, rev in ((c4, 4, rev4), (c6, 6, not rev4)):
                c.wait(30)
                r = T.parse_iperf(c)
                res.check(f"iperf3 IPv{fam} {'mo1 -> cn' if rev else 'cn -> mo1'} over the WAN",
                          "error" not in r and r["rx_bytes"] >= 0.85 * 10e6 * 3 / 8, f"{r}")
        srv4.stop()
        srv6.stop()

        fc = tb.stop_routers()
        for ar in ("ar1", "ar2"):
            c = fc.get(ar, {})
            T.log(f"{ar}: {T.summarize_counters(c)}")
            bad = T.bad_drops(c)
            res.check(f"{ar} no unexpected drops", c and not bad, f"{bad}")
        tb.relay.stop()
        st = tb.relay_stats()
        lost = sum(v.get("lost", 0) + v.get("tx_err", 0) for v in st.values())
        res.check("WAN emulator relayed everything (no loss configured, none by the emulator)",
                  st and lost == 0, f"{st}")
    except BaseException as e:  # also SIGINT/SIGTERM: record, clean up, report
        res.error("test run", e)
    finally:
        tb.down_checked(res)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
