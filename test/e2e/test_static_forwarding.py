#!/usr/bin/python3
"""E2E: forwarding with static mappings, two tenants with identical EIDs, all four outer/inner
family combinations.

Topology (no WAN delay): AR1 (site s1) and AR2 (site s2), each with two access ports, tenant 1 and
tenant 2. Hosts, every one registered like an MO (attachment on its AR, mappings on the other):
    cn1  s1 tenant 1  192.0.2.10 2001:db8:1::10    mappings toward it: same family (4in4, 6in6)
    mo1  s2 tenant 1  192.0.2.20 2001:db8:1::20    same family
    cn2  s1 tenant 2  192.0.2.10 2001:db8:1::10    crossed: v4 EID -> v6 locator (4in6), v6 -> v4 (6in4)
    mo2  s2 tenant 2  192.0.2.20 2001:db8:1::20    crossed
Checks: ping of the gateway and across, both ways, v4 and v6, both tenants; a sequence-numbered
UDP stream per tenant, family and direction, all concurrent, every packet delivered in order with
no duplicate, and nothing leaking to the other tenant's host with the same address; iperf3
(10 Mbit/s, 3 s) per tenant and family, both directions; WAN captures: every packet is LM
encapsulated (UDP 4341, version 1, type 0, next protocol matching the inner packet) with the
tenant and MO id of its destination and the expected outer family, inner TTL decremented once;
router counters: no unexpected drop.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

N_UDP = 400
UDP_RATE = 250


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results("e2e static forwarding (2 tenants, 4in4 6in6 4in6 6in4)")
    cross = {4: 6, 6: 4}
    sites = T.default_sites(2, tenants=(1, 2))
    hosts = [
        T.Host("cn1", "s1", tenant=1, v4="192.0.2.10", v6="2001:db8:1::10"),
        T.Host("mo1", "s2", tenant=1, v4="192.0.2.20", v6="2001:db8:1::20"),
        T.Host("cn2", "s1", tenant=2, v4="192.0.2.10", v6="2001:db8:1::10", outer=cross),
        T.Host("mo2", "s2", tenant=2, v4="192.0.2.20", v6="2001:db8:1::20", outer=cross),
    ]
    tb = T.Testbed(sites, hosts, name="static")
    try:
        tb.up()
        cap1 = tb.capture_wan("s1", bpf="udp port 4341", snaplen=200)
        cap2 = tb.capture_wan("s2", bpf="udp port 4341", snaplen=200)

        # --- ping: gateway, then across, both ways, v4 and v6, both tenants --------------------
        T.log("ping")
        for h in ("cn1", "mo2"):
            for gw in (T.GW4, T.GW6):
                r = tb.ping(h, gw, count=2, interval=0.05)
                res.check(f"ping {h} -> gateway {gw}", r["received"] == 2, r["out"][-300:])
        pairs = [("cn1", "mo1"), ("mo1", "cn1"), ("cn2", "mo2"), ("mo2", "cn2")]
        for a, b in pairs:
            hb = tb.host(b)
            for dst in hb.eids:
                r = tb.ping(a, dst, count=5, interval=0.05)
                res.check(f"ping {a} -> {b} {dst} (tenant {hb.tenant})", r["received"] == 5 and r["errors"] == 0,
                          r["out"][-300:])

        # --- UDP streams: all tenants, families and directions at once, with spies ------------
        T.log(f"UDP streams: 8 x {N_UDP} datagrams at {UDP_RATE}/s, concurrently")
        streams = []
        spies = []
        port = 41000
        for a, b in pairs:
            hb = tb.host(b)
            other = {"cn1": "cn2", "cn2": "cn1", "mo1": "mo2", "mo2": "mo1"}[b]
            for dst in hb.eids:
                port += 1
                # spy: the other tenant's host with the same address listens on the same port
                spies.append((f"{a}->{b} {dst} leak to {other}",
                              tb.spawn(other, [T.PY, os.path.join(T.HERE, "udpstream.py"), "recv", "--port",
                                               str(port), "--count", "1", "--timeout", str(N_UDP / UDP_RATE + 3)],
                                       name=f"spy-{other}-{port}")))
                streams.append((a, b, dst, port))
        for _, p in spies:
            T.wait_for(lambda: "ready" in p.stdout(), 10, what="spy receiver")
        running = [(a, b, dst, prt, tb.udp_stream(a, b, dst, prt, count=N_UDP, rate=UDP_RATE)) for a, b, dst, prt in streams]
        stream_ports = {}
        for a, b, dst, prt, st in running:
            r = st.result()
            T.check_stream(res, f"udp {a} -> {b} {dst} (tenant {tb.host(b).tenant})", r, expect=N_UDP)
            stream_ports[prt] = (a, b, dst)
        for name, p in spies:
            p.wait(N_UDP / UDP_RATE + 15)
            out = p.stdout()
            got = [l for l in out.splitlines() if l.startswith("{")]
            rx = T.json.loads(got[-1]) if got else {}
            res.check(f"tenant isolation: {name}: nothing received", got and rx.get("received") == 0, out[-200:])

        # --- TCP: iperf3 10 Mbit/s, 3 s, each tenant and family, both directions ---------------
        T.log("iperf3: 4 flows at 10 Mbit/s for 3 s, forward then reverse")
        servers = {}
        for b in ("mo1", "mo2"):
            for fam, prt in ((4, 5201), (6, 5202)):
                servers[(b, fam)] = tb.iperf_server(b, prt)
        for reverse in (False, True):
            clients = []
            for a, b in (("cn1", "mo1"), ("cn2", "mo2")):
                hb = tb.host(b)
                for fam, dst, prt in ((4, hb.v4, 5201), (6, hb.v6, 5202)):
                    clients.append((a, b, dst, tb.iperf_client(a, dst, prt, rate="10M", secs=3, reverse=reverse)))
            for a, b, dst, c in clients:
                c.wait(30)
                r = T.parse_iperf(c)
                direction = f"{b} -> {a}" if reverse else f"{a} -> {b}"
                ok = "error" not in r and r["rx_bytes"] >= 0.85 * 10e6 * 3 / 8
                res.check(f"iperf3 {direction} via {dst} (tenant {tb.host(b).tenant})", ok,
                          f"{r}")
        for p in servers.values():
            p.stop()

        # --- WAN captures -----------------------------------------------------------------------
        T.log("checking WAN captures")
        frames1, frames2 = cap1.stop(), cap2.stop()
        lm1 = T.lm_packets(frames1)
        res.check("WAN capture s1 has LM packets", len(lm1) > 1000, f"{len(lm1)} LM of {len(frames1)} frames")
        by_moid = {h.mo_id: h for h in hosts}
        site_of = {h.name: tb.site(h.site) for h in hosts}
        problems = []
        per_port = {}
        seen_combos = set()
        for d in lm1 + T.lm_packets(frames2):
            lm, outer, inner = d["lm"], d["ip"], d["inner"]
            h = by_moid.get(lm["mo_id"])
            if h is None:
                problems.append(f"unknown mo_id {lm['mo_id']:#x}")
                continue
            if lm["version"] != 1 or lm["type"] != 0 or lm["flags"] != 0:
                problems.append(f"bad LM header {lm}")
            if lm["tenant"] != h.tenant:
                problems.append(f"tenant {lm['tenant']} for mo {h.name} (tenant {h.tenant})")
            if inner is None:
                problems.append("no inner packet")
                continue
            if lm["next"] != (4 if inner["family"] == 4 else 41):
                problems.append(f"next protocol {lm['next']} for inner IPv{inner['family']}")
            if inner["dst"] not in h.eids:
                problems.append(f"inner dst {inner['dst']} not an EID of {h.name} (mo_id {h.mo_id:#x})")
            want_outer = h.outer[inner["family"]]
            if outer["family"] != want_outer:
                problems.append(f"outer IPv{outer['family']} for inner IPv{inner['family']} to {h.name}")
            s = site_of[h.name]
            want_dst = s.loc6 if want_outer == 6 else s.loc4
            if outer["dst"] != want_dst:
                problems.append(f"outer dst {outer['dst']} != locator {want_dst} of {h.name}'s AR")
            if not (49152 <= lm["sport"] <= 65535):
                problems.append(f"outer UDP source port {lm['sport']}")
            if lm["epoch"] != 1:
                problems.append(f"epoch {lm['epoch']}")
            if inner["ttl"] != 63:
                problems.append(f"inner TTL/hop limit {inner['ttl']} (hosts send 64, one decrement expected)")
            seen_combos.add((h.tenant, inner["family"], outer["family"]))
            if inner["proto"] == 17 and inner.get("dport") in stream_ports:
                a, b, dst = stream_ports[inner["dport"]]
                if h.name != b:
                    problems.append(f"stream {a}->{b} port {inner['dport']} encapsulated to {h.name}")
                per_port.setdefault(inner["dport"], 0)
        # count per-stream packets on the s1 link only (each packet crosses it exactly once)
        for d in lm1:
            inner = d["inner"]
            if inner and inner["proto"] == 17 and inner.get("dport") in stream_ports:
                per_port[inner["dport"]] += 1
        res.check("every LM packet: right version/type, tenant, MO id, next protocol, outer family, "
                  "locator, epoch, TTL", not problems, "; ".join(sorted(set(problems))[:10]))
        want = {(1, 4, 4), (1, 6, 6), (2, 4, 6), (2, 6, 4)}
        res.check("WAN saw 4in4 and 6in6 (tenant 1), 4in6 and 6in4 (tenant 2)", want <= seen_combos,
                  f"seen (tenant, inner, outer): {sorted(seen_combos)}")
        short = {p: n for p, n in per_port.items() if n != N_UDP}
        res.check(f"every UDP stream datagram crossed the WAN encapsulated ({len(stream_ports)} streams x {N_UDP})",
                  not short and len(per_port) == len(stream_ports), f"port: count {short}, seen {per_port}")

        # --- router counters ----------------------------------------------------------------------
        fc = tb.stop_routers()
        for ar in ("ar1", "ar2"):
            c = fc.get(ar)
            if not res.check(f"{ar} exited cleanly with final counters", c is not None and tb.routers[ar].exit_code == 0,
                             f"exit {tb.routers[ar].exit_code}"):
                continue
            T.log(f"{ar}: {T.summarize_counters(c)}")
            res.check(f"{ar} encapsulated and decapsulated", c["encap"] > 4 * N_UDP and c["decap"] > 4 * N_UDP,
                      f"encap {c['encap']} decap {c['decap']}")
            bad = T.bad_drops(c)
            res.check(f"{ar} no unexpected drops", not bad, f"{bad}")
    except BaseException as e:  # also SIGINT/SIGTERM: record, clean up, report
        res.error("test run", e)
    finally:
        tb.down_checked(res)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
