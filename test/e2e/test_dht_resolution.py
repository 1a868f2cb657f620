#!/usr/bin/python3
"""E2E: EID resolution through the LM DHT (no static mappings), the miss buffer, the negative cache,
and forged records from a rogue DHT node.

Topology: AR1 (s1) with cn, AR2 (s2) with mo1, mo2 and mo3, tenant 1, 10 ms WAN delay toward each
site (core and management links alike). Each AR runs its DHT node on its management address
(198.51.100.192+N:4222) and bootstraps to the other; identities come from one domain CA
(`lmctl pki` if it works, else `dht-rogue-publisher --pki-init/--pki-issue`, same dht/pki.hpp code).
The ARs know only their own hosts (static_attachments, no static_mappings): every remote EID
must be resolved. Non-default knobs: cache.pending_per_eid 64 and pending_timeout_ms 3000 (see
PENDING_PER_EID: robustness on a loaded machine), dht.negative_ttl_ms 3000.

A. Resolution, cold: UDP streams cn -> mo1 (v4 and v6 EIDs) and mo1 -> cn (v4, v6) at once:
   every datagram arrives; the first ones waited in the miss buffer (pending_held > 0, all
   released), no unresolved / pending_timeout / pending_full drop; one resolve per EID, found,
   watched; the resolved mappings carry the publisher's locator and epoch; on the WAN every LM
   packet carries the destination's MO id and the epoch its AR published (HLC ms<<16|counter of
   now). Informational: time from the first datagram at the AR to its first LM packet on the WAN.
B. Unknown EID 192.0.2.99 (mobile prefix, published by nobody): a burst of 5 is held, resolved
   (not found, well within pending_timeout_ms) and dropped as `unresolved`; a second burst within
   negative_ttl_ms is answered from the negative cache (negative_hits, no resolve); a third one
   after the TTL asks the DHT again.
C. Forged records from dht-rogue-publisher nodes in their own namespace on the management network
   (rogue locator 198.51.100.99, huge epoch): identity from a rogue CA with CN "ar2" (mo1 and mo2),
   self-signed CN "ar2" (mo1), unsigned (mo1), and rogue-signed values put into AR2's own value
   slot (mo1 and mo3). mo1 is already resolved and watched by AR1 (watch path): AR1 rejects the
   values it is pushed (rejected_forged, rejected_unsigned), storage nodes refuse the slot edits
   (store_edit_refused), AR1's mapping does not change. mo2 and mo3 are resolved after the forged
   values are stored (resolve path): found AR2's records. Streams cn -> mo1/mo2/mo3 (v4, v6) all
   arrive, every LM packet goes to AR2's locator with the right MO id and AR2's epoch, none to the
   rogue locator.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

DELAY = 10.0
RATE, N = 25, 75             # per stream: 3 s
# A resolve is 2 RTTs over the 10 ms WAN (~45 ms) on a quiet machine, but the 2 cores are shared
# with other jobs: under load (load average 20) resolves of 0.3-1.4 s were seen (the user-space
# WAN relay stalls). The miss buffer is sized so that the test is about the mechanism, not the
# machine's load: 64 per EID (the maximum; default 8) = 2.5 s at 25/s, and pending_timeout_ms
# 3000 (default 1000). The measured resolve times are printed.
PENDING_PER_EID = 64
PENDING_TIMEOUT_MS = 3000
# The receivers stop after this long without a datagram. The WAN emulator is a user-space relay:
# on the loaded 2-core machine it has been seen stalling ~1 s (frames delayed, never lost).
IDLE_S = 3.0
NEG_TTL_MS = 3000
UNKNOWN4 = "192.0.2.99"
ROGUE_LOC = "198.51.100.99"
ROGUE_INDEX = 50             # management address 198.51.100.242
# Start-up: with cold traffic started right after up() (~0.5 s after the routers started) while
# the machine was loaded by other jobs, the first resolve took 0.7-1.0 s in 4 of 11 runs (0 of 6
# on a quiet machine; ~45 ms otherwise). The test starts its cold traffic SETTLE_S after up();
# LM_DHT_SETTLE_S=0 removes the pause.
SETTLE_S = float(os.environ.get("LM_DHT_SETTLE_S", "1.5"))


ROGUE = T.tool_path("dht-rogue-publisher", "LM_DHT_ROGUE")


def mappings(r: T.Router) -> dict:
    """EID -> mapping text line, every page of /lm/mappings."""
    out, page = {}, 0
    while True:
        m = r.telemetry(f"/lm/mappings,{page}")
        for e in m.get("entries", []):
            parts = e.split()
            out[parts[2]] = e
        page += 1
        if page >= m.get("pages", 1):
            return out


def delta(after: dict, before: dict, k: str) -> int:
    return after.get(k, 0) - before.get(k, 0)


def plausible_epoch(e: int, t0_ms: float, t1_ms: float) -> bool:
    ms, ctr = e >> 16, e & 0xFFFF
    return t0_ms - 60_000 <= ms <= t1_ms + 60_000 and ctr < 1000


def published_epochs(r: T.Router) -> dict:
    """MO id -> epoch this AR published: /lm/attached ("tenant 1 mo 0x102 ... published epoch
    0x..."), or, from routers without that command, the log ("published MO 0x102 ... with epoch N")."""
    out = {}
    try:
        page, pages = 0, 1
        while page < pages:
            a = r.telemetry(f"/lm/attached,{page}")
            if not isinstance(a, dict):
                break
            for e in a.get("entries", []):
                m = re.search(r"\bmo (0x[0-9a-f]+)\b.*published epoch (0x[0-9a-f]+|\d+)", e)
                if m:
                    out[int(m.group(1), 16)] = int(m.group(2), 0)
            pages = a.get("pages", 1)
            page += 1
    except (OSError, ValueError):
        pass
    if not out:
        out = {int(m.group(1), 16): int(m.group(2), 0)
               for m in re.finditer(r"published MO (0x[0-9a-f]+) .* with epoch (0x[0-9a-f]+|\d+)", r.stderr())}
    return out


def miss_latency(acc: list, wan: list, eids: list) -> dict:
    """EID -> ms from the first datagram for it reaching the AR (access capture) to the first LM
    packet carrying it on the WAN: the miss, the DHT resolve and the release from the buffer."""
    lat = {}
    for dst in eids:
        t_in = [ts for ts, fr in acc if (d := T.parse_frame(fr)) and d.get("ip", {}).get("dst") == dst]
        t_out = [ts for ts, fr in wan if (d := T.parse_frame(fr)) and d.get("inner") and d["inner"]["dst"] == dst]
        if t_in and t_out:
            lat[dst] = round((min(t_out) - min(t_in)) * 1000, 1)
    return lat


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results("e2e DHT resolution: miss buffer, negative cache, forged records (10 ms WAN)")
    for p, what in ((ROGUE, "dht-rogue-publisher (ninja -C build)"),):
        if not os.access(p, os.X_OK):
            res.check(f"{what} exists", False, p)
            return res.finish()
    sites = T.default_sites(2, delay_ms=DELAY)
    hosts = [T.Host("cn", "s1", v4="192.0.2.10", v6="2001:db8:1::10"),
             T.Host("mo1", "s2", v4="192.0.2.20", v6="2001:db8:1::20"),
             T.Host("mo2", "s2", v4="192.0.2.30", v6="2001:db8:1::30"),
             T.Host("mo3", "s2", v4="192.0.2.40", v6="2001:db8:1::40")]
    tb = T.Testbed(sites, hosts, name="dht")
    rogues = []
    try:
        t = time.monotonic()
        for s in sites:
            s.config = {"cache": {"pending_per_eid": PENDING_PER_EID, "pending_timeout_ms": PENDING_TIMEOUT_MS}}
        made_by = T.use_dht(tb, port=4222, extra={"negative_ttl_ms": NEG_TTL_MS})   # PKI in tb.tmp/pki
        pki = os.path.join(tb.tmp, "pki")
        T.log(f"PKI made by {made_by} in {time.monotonic() - t:.1f} s")
        t_start_ms = time.time() * 1000
        tb.up()
        t_up = time.monotonic()
        ar1, ar2 = tb.routers["ar1"], tb.routers["ar2"]
        cn, mo1, mo2, mo3 = tb.host("cn"), tb.host("mo1"), tb.host("mo2"), tb.host("mo3")
        s1, s2 = tb.sites

        # ---- the DHT is up ------------------------------------------------------------------
        T.wait_for(lambda: all(r.telemetry("/lm/dht").get("known_nodes", 0) >= 1 for r in (ar1, ar2)), 10, 0.1,
                   "both DHT nodes to know each other")
        for ar, r in (("ar1", ar1), ("ar2", ar2)):
            d = r.telemetry("/lm/dht")
            res.check(f"{ar}: DHT enabled, knows the other node, published its attached MOs",
                      d.get("enabled") == 1 and d.get("known_nodes", 0) >= 1 and d.get("published") ==
                      len([h for h in hosts if tb.site(h.site).ar == ar]), f"{d}")
        ep1, ep2 = published_epochs(ar1), published_epochs(ar2)
        e_mo1, e_mo2, e_mo3, e_cn = ep2.get(mo1.mo_id), ep2.get(mo2.mo_id), ep2.get(mo3.mo_id), ep1.get(cn.mo_id)
        now_ms = time.time() * 1000
        res.check("published epochs are HLC epochs of now (ms<<16|counter)",
                  all(e and plausible_epoch(e, t_start_ms, now_ms) for e in (e_mo1, e_mo2, e_mo3, e_cn)),
                  f"cn {e_cn} mo1 {e_mo1} mo2 {e_mo2} mo3 {e_mo3}")
        m1 = mappings(ar1)
        res.check("ar1 starts cold: no mapping for mo1/mo2/mo3 EIDs",
                  not any(e in m1 for e in mo1.eids + mo2.eids + mo3.eids),
                  f"{list(m1)}")
        time.sleep(max(0.0, SETTLE_S - (time.monotonic() - t_up)))

        # ---- A. resolution, cold ------------------------------------------------------------
        T.log(f"A. cold UDP streams cn <-> mo1, v4 and v6, {N} datagrams at {RATE}/s each")
        before = {ar: (r.telemetry("/lm/stats"), r.telemetry("/lm/drops"), r.telemetry("/lm/dht"))
                  for ar, r in (("ar1", ar1), ("ar2", ar2))}
        cap_acc = tb.capture("fab", f"r{s1.index}t1", "udp and portrange 41001-41004")
        cap_acc2 = tb.capture("fab", f"r{s2.index}t1", "udp and portrange 41001-41004")
        cap_wan = tb.capture_wan("s1", f"udp port {T.LM_PORT}")
        streams = []
        port = 41000
        for a, b in (("cn", "mo1"), ("mo1", "cn")):
            for dst in tb.host(b).eids:
                port += 1
                streams.append((a, dst, tb.udp_stream(a, b, dst, port, count=N, rate=RATE, idle=IDLE_S)))
        for a, dst, st in streams:
            T.check_stream(res, f"A: udp {a} -> {dst}, cold start: every datagram arrives", st.result(), expect=N)
        wan = cap_wan.frames
        acc = cap_acc.frames_ts() + cap_acc2.frames_ts()
        wan_ts = cap_wan.frames_ts()
        for ar, r, n_remote in (("ar1", ar1, 2), ("ar2", ar2, 2)):
            st0, dr0, dh0 = before[ar]
            st, dr, dh = r.telemetry("/lm/stats"), r.telemetry("/lm/drops"), r.telemetry("/lm/dht")
            held, rel = delta(st, st0, "pending_held"), delta(st, st0, "pending_released")
            res.check(f"A: {ar}: the first datagrams waited in the miss buffer and all were released",
                      held > 0 and rel == held, f"pending_held {held} pending_released {rel}")
            bad = {k: delta(dr, dr0, k) for k in ("unresolved", "pending_timeout", "pending_full", "cache_miss")
                   if delta(dr, dr0, k)}
            res.check(f"A: {ar}: no unresolved / pending_timeout / pending_full / cache_miss drop", not bad, f"{bad}")
            res.check(f"A: {ar}: {n_remote} DHT resolves, all found, watched",
                      delta(dh, dh0, "resolves") == n_remote and delta(dh, dh0, "found") == n_remote
                      and delta(dh, dh0, "not_found") == 0 and dh.get("watches") == n_remote
                      and dh.get("rejected_forged") == 0,
                      f"resolves {delta(dh, dh0, 'resolves')} found {delta(dh, dh0, 'found')} "
                      f"not_found {delta(dh, dh0, 'not_found')} watches {dh.get('watches')} "
                      f"coalesced {delta(dh, dh0, 'coalesced')}")
        m1, m2 = mappings(ar1), mappings(ar2)
        ok = all(e in m1 and f"mo {mo1.mo_id:#x} locator {s2.loc4} epoch {e_mo1}" in m1[e] for e in mo1.eids)
        res.check("A: ar1 maps mo1's EIDs to ar2's locator with ar2's epoch (outer v4 for both families)", ok,
                  f"{[m1.get(e) for e in mo1.eids]}")
        ok = all(e in m2 and f"mo {cn.mo_id:#x} locator {s1.loc4} epoch {e_cn}" in m2[e] for e in cn.eids)
        res.check("A: ar2 maps cn's EIDs to ar1's locator with ar1's epoch", ok, f"{[m2.get(e) for e in cn.eids]}")
        lm = T.lm_packets(wan)
        to_mo1 = [p for p in lm if p["ip"]["src"] == s1.loc4 and p["inner"] and p["inner"]["dst"] in mo1.eids]
        to_cn = [p for p in lm if p["ip"]["src"] == s2.loc4 and p["inner"] and p["inner"]["dst"] in cn.eids]
        res.check(f"A: WAN: {2 * N} LM packets ar1 -> ar2 for mo1, all with mo1's MO id and ar2's epoch",
                  len(to_mo1) == 2 * N and all(p["lm"]["mo_id"] == mo1.mo_id and p["lm"]["epoch"] == e_mo1
                                               and p["ip"]["dst"] == s2.loc4 for p in to_mo1),
                  f"{len(to_mo1)} packets, MO ids {sorted({p['lm']['mo_id'] for p in to_mo1})}, "
                  f"epochs {sorted({p['lm']['epoch'] for p in to_mo1})} (ar2 published {e_mo1})")
        res.check(f"A: WAN: {2 * N} LM packets ar2 -> ar1 for cn, all with cn's MO id and ar1's epoch",
                  len(to_cn) == 2 * N and all(p["lm"]["mo_id"] == cn.mo_id and p["lm"]["epoch"] == e_cn
                                              and p["ip"]["dst"] == s1.loc4 for p in to_cn),
                  f"{len(to_cn)} packets, MO ids {sorted({p['lm']['mo_id'] for p in to_cn})}, "
                  f"epochs {sorted({p['lm']['epoch'] for p in to_cn})} (ar1 published {e_cn})")
        lat = miss_latency(acc, wan_ts, mo1.eids + cn.eids)
        T.log(f"A: first datagram in -> first LM packet out (miss + DHT resolve), ms: {lat}")
        res.check(f"A: miss-to-first-encap time measured for the 4 EIDs, each under pending_timeout_ms",
                  len(lat) == 4 and all(v < PENDING_TIMEOUT_MS for v in lat.values()), f"{lat}")

        # ---- B. unknown EID, negative cache -------------------------------------------------
        T.log(f"B. unknown EID {UNKNOWN4}: bursts of 5 datagrams")
        burst = [T.PY, os.path.join(T.HERE, "udpstream.py"), "send", "--dst", UNKNOWN4, "--port", "41010",
                 "--count", "5", "--rate", "200"]

        def snap():
            return ar1.telemetry("/lm/dht"), ar1.telemetry("/lm/drops"), ar1.telemetry("/lm/stats")
        dh0, dr0, st0 = snap()
        t_b = time.monotonic()
        t_sent = time.monotonic()
        tb.run("cn", burst)
        T.wait_for(lambda: ar1.telemetry("/lm/dht").get("not_found", 0) > dh0.get("not_found", 0) or
                   ar1.telemetry("/lm/drops").get("pending_timeout", 0) > dr0.get("pending_timeout", 0), 10, 0.01,
                   "the unknown EID to be answered")
        T.log(f"B: not-found answer seen in telemetry {1000 * (time.monotonic() - t_sent):.0f} ms after starting "
              f"the burst sender (its Python start-up included)")
        T.wait_for(lambda: ar1.telemetry("/lm/stats").get("pending_held", 0) - st0.get("pending_held", 0) == 5 and
                   delta(ar1.telemetry("/lm/drops"), dr0, "unresolved") + delta(ar1.telemetry("/lm/drops"), dr0,
                   "pending_timeout") == 5, 10, 0.02, "5 held datagrams to be dropped")
        dh1, dr1, st1 = snap()
        res.check("B: first burst: one DHT resolve, not found, the 5 held datagrams dropped as 'unresolved'",
                  delta(dh1, dh0, "resolves") == 1 and delta(dh1, dh0, "not_found") == 1
                  and delta(dh1, dh0, "found") == 0 and delta(dr1, dr0, "unresolved") == 5
                  and delta(dr1, dr0, "pending_timeout") == 0 and delta(st1, st0, "pending_held") == 5
                  and delta(st1, st0, "pending_released") == 0,
                  f"resolves +{delta(dh1, dh0, 'resolves')} not_found +{delta(dh1, dh0, 'not_found')} "
                  f"coalesced +{delta(dh1, dh0, 'coalesced')} unresolved +{delta(dr1, dr0, 'unresolved')} "
                  f"pending_timeout +{delta(dr1, dr0, 'pending_timeout')} held +{delta(st1, st0, 'pending_held')}")
        tb.run("cn", burst)
        T.wait_for(lambda: delta(ar1.telemetry("/lm/drops"), dr1, "unresolved") >= 5, 10, 0.02,
                   "the second burst to be dropped")
        dh2, dr2, st2 = snap()
        within = (time.monotonic() - t_b) * 1000 < NEG_TTL_MS
        res.check(f"B: second burst within negative_ttl_ms ({NEG_TTL_MS}): answered from the negative cache, "
                  f"no new resolve, dropped as 'unresolved'",
                  within and delta(dh2, dh1, "negative_hits") >= 1 and delta(dh2, dh1, "resolves") == 0
                  and delta(dr2, dr1, "unresolved") == 5 and delta(dr2, dr1, "pending_timeout") == 0,
                  f"negative_hits +{delta(dh2, dh1, 'negative_hits')} resolves +{delta(dh2, dh1, 'resolves')} "
                  f"unresolved +{delta(dr2, dr1, 'unresolved')} within TTL {within}")
        time.sleep(max(0.0, NEG_TTL_MS / 1000 + 0.3 - (time.monotonic() - t_b)))
        tb.run("cn", burst)
        T.wait_for(lambda: delta(ar1.telemetry("/lm/drops"), dr2, "unresolved") >= 5, 10, 0.02,
                   "the third burst to be dropped")
        dh3, dr3, _ = snap()
        res.check("B: third burst after the negative TTL: asked the DHT again (one resolve, not found)",
                  delta(dh3, dh2, "resolves") == 1 and delta(dh3, dh2, "not_found") == 1
                  and delta(dr3, dr2, "unresolved") == 5,
                  f"resolves +{delta(dh3, dh2, 'resolves')} not_found +{delta(dh3, dh2, 'not_found')} "
                  f"negative_hits +{delta(dh3, dh2, 'negative_hits')} unresolved +{delta(dr3, dr2, 'unresolved')}")

        # ---- C. forged records ----------------------------------------------------------------
        T.log("C. rogue DHT nodes on the management network")
        rogue4, _ = tb.add_mgmt_node("rogue", ROGUE_INDEX)
        rec = lambda h: f"{h.tenant} {h.mo_id:#x} {h.mac} {','.join(h.eids)}"  # noqa: E731
        boot = []
        for s in sites:
            boot += ["--bootstrap", f"{s.mgmt4}:4222"]
        dh0 = ar1.telemetry("/lm/dht")
        dh0_2 = ar2.telemetry("/lm/dht")
        m1_0 = mappings(ar1)
        cap_wan = tb.capture_wan("s1", f"udp port {T.LM_PORT}")
        cap_acc = tb.capture("fab", f"r{s1.index}t1", "udp and portrange 41021-41026")

        def rogue(port: int, *extra: str, name: str) -> T.Proc:
            p = tb.spawn("rogue", [ROGUE, "--bind", rogue4, "--port", str(port), *boot, "--locator", ROGUE_LOC,
                                   "--seconds", "300", *extra], name=name)
            rogues.append(p)
            return p

        def stored(p: T.Proc, n: int) -> bool:
            lines = [json.loads(l) for l in p.stdout().splitlines() if l.startswith("{")]
            return sum(1 for j in lines if j.get("stored") is True) >= n or not p.alive()

        def wait_rogues(ps: list) -> None:
            try:
                T.wait_for(lambda: all(stored(p, n) for p, n in ps), 30, 0.05, "the rogues' puts")
            except T.TestbedError as e:
                raise T.TestbedError(f"{e}: " + "; ".join(f"{p.name}: {p.stdout()[-300:]!r} {p.stderr()[-300:]!r}"
                                                          for p, _ in ps))

        # C1: records signed by an identity from a rogue CA (CN "ar2"), for mo1 and mo2
        r1 = rogue(4222, "--record", rec(mo1), "--record", rec(mo2), name="rogue-signed")
        wait_rogues([(r1, 2)])
        pub = [json.loads(l) for l in r1.stdout().splitlines() if l.startswith('{"published"')]
        res.check("C: rogue (rogue CA, CN ar2) stored forged records for mo1 and mo2 -> 198.51.100.99, huge epoch",
                  r1.alive() and len(pub) == 2 and all(p["published"]["locators"] == [ROGUE_LOC] and
                                                       p["published"]["epoch"] > e_mo1 for p in pub),
                  f"alive {r1.alive()} {pub} {r1.stderr()[-300:]}")
        # mo1 is watched by ar1: the forged value reaches it through the listen, and is rejected
        try:
            T.wait_for(lambda: ar1.telemetry("/lm/dht").get("rejected_forged", 0) > dh0.get("rejected_forged", 0),
                       5, 0.05, "ar1 to reject the forged record of a watched EID")
        except T.TestbedError:
            pass
        dh1 = ar1.telemetry("/lm/dht")
        res.check("C: watch path: ar1 rejected the forged record of watched mo1 (rejected_forged), no resolve, "
                  "no watch update",
                  delta(dh1, dh0, "rejected_forged") >= 1 and delta(dh1, dh0, "resolves") == 0
                  and delta(dh1, dh0, "watch_updates") == 0,
                  f"rejected_forged +{delta(dh1, dh0, 'rejected_forged')} resolves +{delta(dh1, dh0, 'resolves')} "
                  f"watch_updates +{delta(dh1, dh0, 'watch_updates')}")

        # C2: self-signed identity (CN ar2) for mo1; C3: unsigned record for mo1; C4: rogue-signed
        # values put into ar2's own value slot (value id of ar2's key) for mo1 and for mo3 (not
        # resolved yet).
        r2 = rogue(4223, "--self-signed", "--record", rec(mo1), name="rogue-selfsigned")
        r3 = rogue(4224, "--unsigned", "--record", rec(mo1), name="rogue-unsigned")
        r4 = rogue(4225, "--steal-slot", os.path.join(pki, "ar2.crt"), "--record", rec(mo1), "--record", rec(mo3),
                   name="rogue-steal")
        wait_rogues([(r2, 1), (r3, 1), (r4, 1)])

        def grew(key: str, n: int, routers=(ar1,), base=(dh0,)) -> bool:
            return sum(r.telemetry("/lm/dht").get(key, 0) for r in routers) >= sum(b.get(key, 0) for b in base) + n
        for key, n, rs, base in (("rejected_forged", 2, (ar1,), (dh0,)), ("rejected_unsigned", 1, (ar1,), (dh0,)),
                                 ("store_edit_refused", 1, (ar1, ar2), (dh0, dh0_2))):
            try:
                T.wait_for(lambda: grew(key, n, rs, base), 5, 0.05, f"{key} to grow by {n}")
            except T.TestbedError:
                pass
        dh2, dh2_2 = ar1.telemetry("/lm/dht"), ar2.telemetry("/lm/dht")
        res.check("C: watch path: ar1 rejected the self-signed record of mo1 too (rejected_forged +2 in all), "
                  "and the unsigned one (rejected_unsigned), with no resolve and no watch update",
                  delta(dh2, dh0, "rejected_forged") >= 2 and delta(dh2, dh0, "rejected_unsigned") >= 1
                  and delta(dh2, dh0, "resolves") == 0 and delta(dh2, dh0, "watch_updates") == 0,
                  f"rejected_forged +{delta(dh2, dh0, 'rejected_forged')} "
                  f"rejected_unsigned +{delta(dh2, dh0, 'rejected_unsigned')} resolves +{delta(dh2, dh0, 'resolves')} "
                  f"watch_updates +{delta(dh2, dh0, 'watch_updates')}")
        refused = delta(dh2, dh0, "store_edit_refused") + delta(dh2_2, dh0_2, "store_edit_refused")
        res.check("C: storage nodes refused the rogue's edits of ar2's value slots (store_edit_refused)", refused >= 1,
                  f"ar1 +{delta(dh2, dh0, 'store_edit_refused')} ar2 +{delta(dh2_2, dh0_2, 'store_edit_refused')}; "
                  f"rogue: {r4.stdout().splitlines()[-1:]}")
        m1_1 = mappings(ar1)
        res.check("C: ar1's mappings for mo1 did not change", all(m1_1.get(e) == m1_0.get(e) for e in mo1.eids),
                  f"{[m1_1.get(e) for e in mo1.eids]}")

        # Traffic: mo1 is cached (and watched); mo2 and mo3 are resolved now, with forged values
        # under their keys.
        T.log(f"C. UDP streams cn -> mo1 (cached), mo2, mo3 (cold), v4 and v6, {N} datagrams each")
        st0 = ar1.telemetry("/lm/stats")
        dr0 = ar1.telemetry("/lm/drops")
        dh3a = ar1.telemetry("/lm/dht")
        streams = []
        port = 41020
        targets = (mo1, mo2, mo3)
        for h in targets:
            for dst in h.eids:
                port += 1
                streams.append((dst, tb.udp_stream("cn", h.name, dst, port, count=N, rate=RATE, idle=IDLE_S)))
        for dst, st in streams:
            T.check_stream(res, f"C: udp cn -> {dst} with forged records in the DHT: every datagram arrives",
                           st.result(), expect=N)
        dh3, st3, dr3 = ar1.telemetry("/lm/dht"), ar1.telemetry("/lm/stats"), ar1.telemetry("/lm/drops")
        res.check("C: resolve path: ar1 resolved mo2's and mo3's 4 EIDs (found ar2's records) and rejected the "
                  "forged values it read",
                  delta(dh3, dh3a, "resolves") == 4 and delta(dh3, dh3a, "found") == 4
                  and delta(dh3, dh3a, "not_found") == 0 and delta(dh3, dh3a, "rejected_forged") >= 1,
                  f"resolves +{delta(dh3, dh3a, 'resolves')} found +{delta(dh3, dh3a, 'found')} "
                  f"not_found +{delta(dh3, dh3a, 'not_found')} "
                  f"rejected_forged +{delta(dh3, dh3a, 'rejected_forged')} (total {dh3.get('rejected_forged')})")
        held, rel = delta(st3, st0, "pending_held"), delta(st3, st0, "pending_released")
        bad = {k: delta(dr3, dr0, k) for k in ("unresolved", "pending_timeout", "pending_full") if delta(dr3, dr0, k)}
        res.check("C: mo2's and mo3's first datagrams waited and were released, no miss drop",
                  held > 0 and rel == held and not bad, f"held {held} released {rel} drops {bad}")
        m1_2 = mappings(ar1)
        ok = all(f"mo {h.mo_id:#x} locator {s2.loc4} epoch {ep2.get(h.mo_id)}" in (m1_2.get(e) or "")
                 for h in targets for e in h.eids)
        res.check("C: ar1 maps mo1, mo2 and mo3 to ar2's locator with ar2's epochs", ok,
                  f"{[m1_2.get(e) for h in targets for e in h.eids]}")
        wan_ts = cap_wan.frames_ts()
        lat = miss_latency(cap_acc.frames_ts(), wan_ts, mo2.eids + mo3.eids)
        T.log(f"C: first datagram in -> first LM packet out (miss + DHT resolve), ms: {lat}")
        lm = T.lm_packets([fr for _, fr in wan_ts])
        out = [p for p in lm if p["ip"]["src"] == s1.loc4]
        rogue_pk = [p for p in lm if p["ip"]["dst"] == ROGUE_LOC]
        mo_of = {e: h.mo_id for h in targets for e in h.eids}
        good = [p for p in out if p["inner"] and p["inner"]["dst"] in mo_of]
        res.check("C: WAN: no LM packet to the rogue locator; every LM packet for mo1/mo2/mo3 goes to ar2 with "
                  "the right MO id and ar2's epoch",
                  not rogue_pk and len(good) == len(streams) * N and all(
                      p["ip"]["dst"] == s2.loc4 and p["lm"]["mo_id"] == mo_of[p["inner"]["dst"]] and
                      p["lm"]["epoch"] == ep2.get(p["lm"]["mo_id"]) for p in good),
                  f"to rogue {len(rogue_pk)}, for mo1/mo2/mo3 {len(good)}/{len(streams) * N}, "
                  f"destinations {sorted({p['ip']['dst'] for p in out})}, "
                  f"epochs {sorted({p['lm']['epoch'] for p in good})}")

        # Informational: the directory's own resolve time, through the operator's /lm/resolve (if
        # this router has it), for a published EID and for an unknown one.
        for eid in (mo1.v4, "192.0.2.98"):
            try:
                T.log(f"ar1 /lm/resolve,1,{eid}: {ar1.telemetry(f'/lm/resolve,1,{eid}', timeout=5)}")
            except (OSError, ValueError) as e:
                T.log(f"ar1 /lm/resolve: {e}")
        for ar, r in (("ar1", ar1), ("ar2", ar2)):
            T.log(f"{ar} /lm/dht: " + " ".join(f"{k}={v}" for k, v in r.telemetry("/lm/dht").items() if v))

        # ---- end: counters, clean exit --------------------------------------------------------
        codes = [(p.name, p.stop()) for p in rogues]
        res.check("C: rogue publishers ran until stopped (SIGTERM) and exited 0", all(c == 0 for _, c in codes),
                  f"{codes} {[p.stderr()[-200:] for p in rogues]}")
        tb.stop_routers()
        for ar in ("ar1", "ar2"):
            c = tb.final_counters.get(ar, {})
            res.check(f"{ar} exited cleanly with final counters", tb.routers[ar].exit_code == 0 and bool(c),
                      f"exit {tb.routers[ar].exit_code}")
            bad = T.bad_drops(c)
            res.check(f"{ar}: no unexpected drop", not bad, f"{bad}")
    except Exception as e:  # noqa: BLE001 - report and clean up
        res.error("test bed / traffic", e)
        for ar, r in tb.routers.items():
            T.log(f"{ar} log tail:\n    {r.tail(20)}")
    finally:
        tb.down_checked(res, "clean-up left nothing behind")
    T.log(f"total {time.monotonic() - res.t0:.1f} s")
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
