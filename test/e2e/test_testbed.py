#!/usr/bin/python3
"""E2E: the test bed itself (testbed.py): settings, host moves, WAN loss emulation, clean-up.

Part 1, a three-site test bed (s1: cn; s2: mo1; s3: mo2 behind a WAN with 5 ms delay and 20 % loss):
- offloads off on the veths and bridges of the path, IPv6 off on the routers' DPDK interfaces
  and on in hosts, MTUs (core 1600, access 1500), unique names and router EAL arguments;
- moving a host: mo1's link leaves s2's bridge, stays detached 300 ms (no connectivity), joins s1's
  bridge inside the fabric namespace; its eth0 never loses carrier; the gratuitous ARP and the
  unsolicited NA it sends reach AR1; AR1 (same anycast gateway) answers its pings; move back;
- loss emulation: a UDP stream toward s3 loses about 20 %, the emulator counts the losses, and
  the one-way delay toward s3 shows in the RTT.
Part 2, clean-up: a test bed in a child process is stopped by SIGTERM and by SIGINT while up,
by SIGTERM while it is being built, and by an exception in the test; nothing remains (namespaces,
processes, DPDK runtime directories, temporary files). After SIGKILL things do remain, and
`testbed.py gc` removes them.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed as T  # noqa: E402

TESTBED = os.path.join(T.HERE, "testbed.py")


def ethtool_off(tb, key, dev) -> list[str]:
    out = tb.run(key, ["ethtool", "-k", dev]).stdout
    want = ("tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload")
    bad = []
    for w in want:
        m = re.search(rf"^{w}: (\w+)", out, re.M)
        if not m or m.group(1) != "off":
            bad.append(f"{w}={m.group(1) if m else '?'}")
    return bad


def part1(res: T.Results) -> None:
    sites = [T.Site("s1"), T.Site("s2"), T.Site("s3", delay_ms=5, loss_pct=20)]
    hosts = [T.Host("cn", "s1", v4="192.0.2.10", v6="2001:db8:1::10"),
             T.Host("mo1", "s2", v4="192.0.2.20", v6="2001:db8:1::20"),
             T.Host("mo2", "s3", v4="192.0.2.30", v6="2001:db8:1::30")]
    tb = T.Testbed(sites, hosts, name="self")
    try:
        tb.up()
        # --- settings ------------------------------------------------------------------------
        checks = [("ar1", "acc1"), ("ar1", "core0"), ("fab", "r1t1"), ("fab", "b1t1"), ("fab", "h1"), ("cn", "eth0"),
                  ("wan", "s1a"), ("wan", "s3a"), ("wan", "s3b"), ("wan", "s3r"), ("ar3", "mgmt0")]
        bad = {f"{k}/{d}": b for k, d in checks if (b := ethtool_off(tb, k, d))}
        res.check("offloads (tx csum, TSO, GSO, GRO) off on AR, fabric, host and WAN interfaces", not bad, f"{bad}")
        v6off = {d: tb.run("ar1", ["cat", f"/proc/sys/net/ipv6/conf/{d}/disable_ipv6"]).stdout.strip()
                 for d in ("acc1", "core0")}
        res.check("IPv6 disabled on the router's DPDK interfaces", all(v == "1" for v in v6off.values()), f"{v6off}")
        a6 = tb.run("cn", ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
        res.check("hosts keep IPv6 (EID and link-local)", "2001:db8:1::10/128" in a6 and "fe80::" in a6, a6)
        mtus = {f"{k}/{d}": int(tb.run(k, ["cat", f"/sys/class/net/{d}/mtu"]).stdout)
                for k, d in (("ar1", "core0"), ("wan", "s1a"), ("ar1", "acc1"), ("cn", "eth0"), ("wan", "s3r"))}
        res.check("MTUs: core links 1600 (>= 1500 + 72), access 1500",
                  mtus == {"ar1/core0": 1600, "wan/s1a": 1600, "ar1/acc1": 1500, "cn/eth0": 1500, "wan/s3r": 1600},
                  f"{mtus}")
        ns = [n for n in T.list_netns() if n.startswith(tb.prefix)]
        res.check("namespaces carry the run's unique prefix", len(ns) == 2 + 3 + 3, f"{ns}")
        argvs = [r.argv for r in tb.routers.values()]
        fps = [a[a.index("--file-prefix") + 1] for a in argvs]
        ok = (len(set(fps)) == 3 and all(f.startswith(tb.prefix) for f in fps)
              and all("--no-huge" in a and "--no-pci" in a and "--lcores" in a for a in argvs))
        res.check("each router: own --file-prefix, --no-huge, --no-pci, --lcores", ok, f"{argvs}")

        # --- moving a host -------------------------------------------------------------------------
        T.log("move mo1 from s2 to s1 (detached 300 ms), announce, and back")
        cc0 = tb.carrier_changes("mo1")
        cap = tb.capture("fab", "r1t1", bpf="arp or icmp6")
        punts0 = tb.routers["ar1"].telemetry("/lm/stats")["control_punts"]
        echo0 = tb.routers["ar1"].telemetry("/lm/stats")["control_echo_replies"]
        tb.detach("mo1")
        t_det = time.monotonic()
        r = tb.ping("mo1", T.GW4, count=2, interval=0.1, timeout=0.1)
        res.check("while detached, mo1 reaches no gateway", r["received"] == 0, r["out"][-200:])
        time.sleep(max(0.0, 0.3 - (time.monotonic() - t_det)))
        tb.attach("mo1", "s1")
        tb.announce("mo1")
        master = tb.ip("fab", "link", "show", "h2").stdout
        res.check("mo1's fabric port moved to s1's bridge", "master b1t1" in master, master)
        up = tb.run("mo1", ["cat", "/sys/class/net/eth0/operstate"]).stdout.strip()
        res.check("mo1's eth0 stayed up, no carrier change", up == "up" and tb.carrier_changes("mo1") == cc0,
                  f"operstate {up}, carrier_changes {cc0} -> {tb.carrier_changes('mo1')}")
        r4 = tb.ping("mo1", T.GW4, count=3, interval=0.05)
        r6 = tb.ping("mo1", T.GW6, count=3, interval=0.05)
        time.sleep(0.3)
        frames = cap.stop()
        mac = tb.host("mo1").mac
        garp = [d for d in map(T.parse_frame, frames) if d and d["ethertype"] == 0x0806 and d["src_mac"] == mac
                and d["dst_mac"] == "ff:ff:ff:ff:ff:ff"]
        una = [d for d in map(T.parse_frame, frames)
               if d and d.get("ip") and d["src_mac"] == mac and d["ip"]["dst"] == "ff02::1"
               and d["ip"]["proto"] == 58 and d["ip"]["l4"][:1] == bytes([136])]
        res.check("gratuitous ARP and unsolicited NA from mo1 reached AR1's access port", garp and una,
                  f"{len(garp)} ARP, {len(una)} NA among {len(frames)} frames")
        st = tb.routers["ar1"].telemetry("/lm/stats")
        res.check("AR1 received them (punted to its control plane)", st["control_punts"] >= punts0 + 2,
                  f"control_punts {punts0} -> {st['control_punts']}")
        res.check("after the move, AR1 answers mo1's pings to the anycast gateway (v4 and v6)",
                  r4["received"] == 3 and r6["received"] == 3 and st["control_echo_replies"] >= echo0 + 6,
                  f"v4 {r4['received']}/3 v6 {r6['received']}/3, echo replies {echo0} -> {st['control_echo_replies']}")
        t = tb.move("mo1", "s2", detach_ms=50)
        res.check("move() detached for the requested time and announced promptly",
                  t["attach"] - t["detach"] >= 0.05 and t["announced"] - t["attach"] < 0.5,
                  f"detached {t['attach'] - t['detach']:.3f} s, announced {t['announced'] - t['attach']:.3f} s after attach")
        r = tb.ping("mo1", "192.0.2.10", count=3, interval=0.05)
        res.check("back at s2, mo1 reaches cn again", r["received"] == 3, r["out"][-200:])
        res.check("mo1 still never lost carrier", tb.carrier_changes("mo1") == cc0)

        # --- WAN loss emulation --------------------------------------------------------------------
        T.log("loss emulation toward s3 (20 %, 5 ms)")
        st = tb.udp_stream("cn", "mo2", "192.0.2.30", 43000, count=1000, rate=1000, idle=1.0)
        r = st.result()
        lost = r["rx"].get("lost", -1)
        res.check("UDP stream toward s3 loses about 20 % (100..300 of 1000)", 100 <= lost <= 300, f"{r['rx']}")
        res.check("... and is still in order, without duplicates",
                  r["rx"].get("reordered") == 0 and r["rx"].get("duplicates") == 0, f"{r['rx']}")
        p = tb.ping("cn", "192.0.2.30", count=20, interval=0.02)
        res.check("RTT cn -> mo2 shows the 5 ms delay toward s3", p["rtt_min"] is not None and p["rtt_min"] >= 5,
                  f"received {p['received']}/20 rtt min {p['rtt_min']}")
        tb.stop_routers()
        tb.relay.stop()
        rs = tb.relay_stats()
        res.check("emulator counted its losses (only toward s3)",
                  rs.get("s3b->s3a", {}).get("lost", 0) >= 100 and rs.get("s3a->s3b", {}).get("lost", 1) == 0,
                  f"{rs}")
    except BaseException as e:  # also SIGINT/SIGTERM: record, clean up, report
        res.error("part 1", e)
    finally:
        tb.down_checked(res, "part 1 test bed removed without leftovers")


def read_until(p: subprocess.Popen, pattern: str, timeout: float, buf: list) -> "re.Match | None":
    """Read the child's output (raw fd reads: select() and buffered readline() do not mix) until
    a line matches."""
    end = time.monotonic() + timeout
    rx = re.compile(pattern, re.M)
    fd = p.stdout.fileno()
    while time.monotonic() < end:
        m = rx.search("".join(buf))
        if m:
            return m
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            data = os.read(fd, 65536)
            if not data:
                return rx.search("".join(buf))
            buf.append(data.decode(errors="replace"))
    return None


def child(argv):
    env = {k: v for k, v in os.environ.items() if k != "LM_E2E_KEEP"}   # the check includes the temporary dir
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def part2(res: T.Results) -> None:
    up = [T.PY, TESTBED, "up", "--hold", "60"]
    # stopped by a signal while up
    for sig in (signal.SIGTERM, signal.SIGINT):
        p = child(up)
        buf = []
        m = read_until(p, r"^prefix (lm\d+x\w{4}-)", 30, buf)
        if not res.check(f"child test bed came up ({sig.name} test)", m is not None, "".join(buf)[-500:]):
            p.kill()
            p.wait()
            continue
        prefix = m.group(1)
        before = T.leftovers(prefix)
        p.send_signal(sig)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        left = T.leftovers(prefix) + [d for d in os.listdir("/tmp") if d.startswith(prefix)]
        res.check(f"{sig.name} while up: child exited ({rc}) and left nothing behind",
                  len(before) > 5 and not left, f"before: {len(before)} items; left: {left}")
    # SIGTERM while the test bed is being built
    p = child(up)
    buf = []
    m = read_until(p, r"testbed (lm\d+x\w{4}-): ", 30, buf)
    if m:
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        prefix = m.group(1)
        left = T.leftovers(prefix) + [d for d in os.listdir("/tmp") if d.startswith(prefix)]
        res.check(f"SIGTERM during set-up: child exited ({rc}) and left nothing behind", not left, f"{left}")
    else:
        res.check("SIGTERM during set-up", False, "".join(buf)[-500:])
    # an exception inside the test
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import testbed as T\n"
            "s, h = T.demo_topology(2)\n"
            "with T.Testbed(s, h) as tb:\n"
            "    print('prefix', tb.prefix, flush=True)\n"
            "    raise RuntimeError('a failing test')\n") % T.HERE
    p = child([T.PY, "-c", code])
    out = p.communicate(timeout=60)[0].decode(errors="replace")
    m = re.search(r"^prefix (lm\d+x\w{4}-)", out, re.M)
    left = (T.leftovers(m.group(1)) + [d for d in os.listdir("/tmp") if d.startswith(m.group(1))]) if m else ["?"]
    res.check("exception in a test: exit status 1 and nothing left behind",
              m is not None and p.returncode == 1 and "a failing test" in out and not left, f"rc {p.returncode} left {left}")
    # SIGKILL: leftovers are expected, gc removes them
    p = child(up)
    buf = []
    m = read_until(p, r"^prefix (lm\d+x\w{4}-)", 30, buf)
    if m:
        prefix = m.group(1)
        p.kill()
        p.wait()
        before = T.leftovers(prefix)
        T.gc(verbose=False)
        left = T.leftovers(prefix) + [d for d in os.listdir("/tmp") if d.startswith(prefix)]
        res.check("SIGKILL leaves namespaces and routers behind; testbed.py gc removes them all",
                  any(x.startswith("netns") for x in before) and any(x.startswith("process") for x in before)
                  and not left, f"before {len(before)} items, after gc: {left}")
    else:
        p.kill()
        p.wait()
        res.check("SIGKILL test: child came up", False, "".join(buf)[-500:])


def main() -> int:
    T.require_root()
    T.gc()
    res = T.Results("e2e test bed: settings, host moves, loss emulation, clean-up on every exit path")
    part1(res)
    try:
        part2(res)
    except BaseException as e:
        res.error("part 2", e)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
