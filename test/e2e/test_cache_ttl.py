"""E2E: DHT-learned mappings live dht.cache_ttl_s while traffic uses them, and leave when idle.

Topology: AR1 (s1) with cn, AR2 (s2) with mo1 and mo2, tenant 1, no WAN delay, the LM DHT on the
management network, dht.cache_ttl_s = 10 on both ARs (the minimum).

cn sends mo1 (IPv4 EID) a UDP stream at 20 datagrams/s for 2.5 TTLs, and mo2 (IPv4 EID) a short
burst at the start only. Then, on AR1:
  - mo1's mapping was refreshed because packets used it past its TTL (/lm/dht cache_refreshed
    >= 2, stats cache_refresh_asked >= 2), it is still in the cache, and every datagram of the
    stream arrived: a refresh never makes a packet wait or miss;
  - mo2's mapping, unused since the burst, left the caches (cache_expired_idle >= 1, not in
    /lm/mappings), and its watch went with it;
  - no cache_miss / unresolved / pending drop beyond the cold start.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

TTL_S = 10
RATE = 20
DURATION_S = 2.5 * TTL_S


def mappings(r: T.Router) -> dict:
    out, page = {}, 0
    while True:
        m = r.telemetry(f"/lm/mappings,{page}")
        for e in m.get("entries", []):
            out[e.split()[2]] = e
        page += 1
        if page >= m.get("pages", 1):
            return out


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results(f"e2e cache TTL: refreshed while traffic flows, idle mappings leave (cache_ttl_s {TTL_S})")
    sites = T.default_sites(2, delay_ms=0)
    hosts = [T.Host("cn", "s1", v4="192.0.2.10", v6="2001:db8:1::10"),
             T.Host("mo1", "s2", v4="192.0.2.20", v6="2001:db8:1::20"),
             T.Host("mo2", "s2", v4="192.0.2.30", v6="2001:db8:1::30")]
    tb = T.Testbed(sites, hosts, name="ttl")
    try:
        for s in sites:
            s.config = {"cache": {"pending_per_eid": 64, "pending_timeout_ms": 3000}}
        T.use_dht(tb, port=4222, extra={"cache_ttl_s": TTL_S})
        tb.up()
        ar1 = tb.routers["ar1"]
        T.wait_for(lambda: all(r.telemetry("/lm/dht").get("known_nodes", 0) >= 1 for r in tb.routers.values()), 10,
                   0.1, "both DHT nodes to know each other")
        time.sleep(1.5)  # the attached MOs' records are stored
        mo1, mo2 = tb.host("mo1"), tb.host("mo2")
        d0, s0 = ar1.telemetry("/lm/dht"), ar1.telemetry("/lm/stats")

        count = int(RATE * DURATION_S)
        t0 = time.monotonic()
        burst = tb.udp_stream("cn", "mo2", mo2.eids[0], 41102, count=5, rate=50, idle=1.0)
        stream = tb.udp_stream("cn", "mo1", mo1.eids[0], 41101, count=count, rate=RATE, idle=1.0)
        T.check_stream(res, f"cn -> mo2 {mo2.eids[0]}: the burst arrives (cold: resolved)", burst.result(), expect=5)
        T.check_stream(res, f"cn -> mo1 {mo1.eids[0]}: all {count} datagrams over {DURATION_S:.0f} s arrive "
                            f"(refreshes make no packet wait)", stream.result(), expect=count)
        # mo2's mapping leaves TTL + max(10, TTL/10) s after it was learned; the scan runs each second.
        T.wait_for(lambda: mo2.eids[0] not in mappings(ar1), max(0.0, 2 * TTL_S + 5 - (time.monotonic() - t0)), 0.2,
                   "mo2's idle mapping to leave")
        d1, s1, dr = ar1.telemetry("/lm/dht"), ar1.telemetry("/lm/stats"), ar1.telemetry("/lm/drops")
        m = mappings(ar1)
        refreshed = d1.get("cache_refreshed", 0) - d0.get("cache_refreshed", 0)
        asked = s1.get("cache_refresh_asked", 0) - s0.get("cache_refresh_asked", 0)
        res.check("ar1: mo1's mapping was refreshed as the stream used it past its TTL (twice in 2.5 TTLs)",
                  refreshed >= 2 and asked >= 2, f"cache_refreshed +{refreshed}, cache_refresh_asked +{asked}")
        res.check("ar1: mo1's mapping is still cached, with AR2's locator", mo1.eids[0] in m, f"{list(m)}")
        idle = d1.get("cache_expired_idle", 0) - d0.get("cache_expired_idle", 0)
        res.check("ar1: mo2's mapping, unused since the burst, left the caches (cache_expired_idle)",
                  idle >= 1 and mo2.eids[0] not in m, f"cache_expired_idle +{idle}, mappings {list(m)}")
        res.check("ar1: mo2's watch went with it (watches: mo1's only)", d1.get("watches", -1) == 1,
                  f"watches {d1.get('watches')}")
        bad = {k: dr.get(k, 0) for k in ("unresolved", "pending_timeout", "pending_full", "cache_miss") if dr.get(k, 0)}
        res.check("ar1: no unresolved / pending / cache_miss drop", not bad, f"{bad}")
        tb.stop_routers()
        for ar in ("ar1", "ar2"):
            bad = T.bad_drops(tb.final_counters.get(ar, {}))
            res.check(f"{ar}: exited cleanly, no unexpected drop", tb.routers[ar].exit_code == 0 and not bad,
                      f"exit {tb.routers[ar].exit_code} {bad}")
    except Exception as e:  # noqa: BLE001 - report and clean up
        res.error("test bed / traffic", e)
        for ar, r in tb.routers.items():
            T.log(f"{ar} log tail:\n    {r.tail(20)}")
    finally:
        tb.down_checked(res, "clean-up left nothing behind")
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
