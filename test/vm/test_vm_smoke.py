#!/usr/bin/python3
"""Smoke test of the QEMU test VM (issue 7): a real guest live-migrates between two QEMU
processes on two "site" bridges, with no router yet.

    cn ns                       vmfab ns
    eth0 ---veth--- hcn on brA (site A) --- lA ===veth=== lB --- brB (site B)
    192.0.2.1/24                 tap tvmA (QEMU A, source)       tap tvmB (QEMU B, destination)
    2001:db8:1::1/64             guest 02:00:00:01:01:20, 192.0.2.20/24, 2001:db8:1::20/64,
    (the guest's gateway)        gateways 192.0.2.1 / 2001:db8:1::1

The two bridges are one L2 segment (plain veth link), so only the bridges' MAC learning has to
follow the guest: QEMU's announcement after the switch does that.

 1. builds the guest (scripts/vm/build-guest.sh, cached) and boots it on A (TCG unless
    LM_VM_ACCEL says otherwise); cn pings it (IPv4, IPv6), opens the guest's sequence-numbered
    TCP stream over IPv4 and over IPv6, checks the UDP echo, and sends a 200/s "LMSQ" UDP stream
    to the guest's sink;
 2. starts QEMU B with -incoming defer on brB, captures on brB, migrates A -> B with
    pause-before-switchover (the pause is where the orchestrator's hook calls migrate-begin at
    the old AR; --hook-ms N holds it N ms), prints the timeline, stops QEMU A;
 3. checks the guest answers on B (ping v4/v6, UDP echo), both TCP streams go on without a hole on
    the same connections, the UDP sink's loss, and which announcements (RARP, gratuitous ARP,
    unsolicited NA) the guest's MAC sent on brB after the switch.

Prints PASS/FAIL lines, "N passed, M failed", and a last line with one JSON object of timings.
Exit 0 / 1; 77 (skipped) when not root or QEMU, a kernel or busybox is missing.
Addresses: documentation ranges only. Namespaces "lm<pid>x<rand>-vmfab"/"-vmcn" (testbed.py gc
removes them after a SIGKILL); always removed, also on failure or SIGTERM/SIGINT.

    sudo test/vm/test_vm_smoke.py [--hook-ms 0] [--downtime-limit 300] [--announce-rounds 5] [--mem 128] [--keep]
                                  [--no-guest-announce] [--no-link-local] [--accel tcg|kvm|auto]
"""

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmlib as V  # noqa: E402

MAC = "02:00:00:01:01:20"
GUEST4, GUEST6 = "192.0.2.20", "2001:db8:1::20"
GW4, GW6 = "192.0.2.1", "2001:db8:1::1"
UDP_RATE = 200
UDP_STREAM = 7


class Lab:
    """The namespaces, bridges and veths of this test; down() removes all of it."""

    def __init__(self):
        rand = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(4))
        self.prefix = f"lm{os.getpid()}x{rand}-"
        self.fab = self.prefix + "vmfab"
        self.cn = self.prefix + "vmcn"
        self.namespaces: list[str] = []
        self.tmp = tempfile.mkdtemp(prefix=self.prefix + "vm-")

    def ip(self, ns, *args, check=True):
        return V.sh(["ip", "-n", ns] + list(args), check=check)

    def run(self, ns, *args, check=True):
        return V.sh(["ip", "netns", "exec", ns] + list(args), check=check)

    def up(self) -> "Lab":
        for ns in (self.fab, self.cn):
            self.namespaces.append(ns)
            V.sh(["ip", "netns", "add", ns])
            self.ip(ns, "link", "set", "lo", "up")
        self.run(self.fab, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1")
        for br in ("brA", "brB"):
            self.ip(self.fab, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0",
                    "mcast_snooping", "0")
        self.ip(self.fab, "link", "add", "lA", "type", "veth", "peer", "name", "lB")
        self.ip(self.fab, "link", "set", "lA", "master", "brA")
        self.ip(self.fab, "link", "set", "lB", "master", "brB")
        self.ip(self.fab, "link", "add", "hcn", "type", "veth", "peer", "name", "eth0", "netns", self.cn)
        self.ip(self.fab, "link", "set", "hcn", "master", "brA")
        for dev in ("brA", "brB", "lA", "lB", "hcn"):
            self.run(self.fab, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                     check=False)
            self.ip(self.fab, "link", "set", dev, "up")
        self.run(self.cn, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0",
                 "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0")
        self.run(self.cn, "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                 check=False)
        self.ip(self.cn, "link", "set", "eth0", "address", "02:00:00:01:00:01", "up")
        self.ip(self.cn, "addr", "add", f"{GW4}/24", "dev", "eth0")
        self.ip(self.cn, "addr", "add", f"{GW6}/64", "dev", "eth0", "nodad")
        return self

    def down(self, keep_tmp: bool = False) -> list[str]:
        for ns in self.namespaces:
            r = V.sh(["ip", "netns", "pids", ns], check=False)
            for p in r.stdout.split():
                try:
                    os.kill(int(p), 9)
                except (ProcessLookupError, ValueError):
                    pass
            V.sh(["ip", "netns", "del", ns], check=False)
        self.namespaces = []
        if not keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        r = V.sh(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in r.stdout.splitlines() if line.startswith(self.prefix)]


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""), flush=True)
        return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hook-ms", type=float, default=0, help="hold the pre-switchover pause this long")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (consoles, capture)")
    ap.add_argument("--no-guest-announce", action="store_true", help="virtio guest_announce=off (RARP only)")
    ap.add_argument("--accel", default=None, help="tcg | kvm | auto (default LM_VM_ACCEL or tcg)")
    ap.add_argument("--mem", type=int, default=128, help="guest RAM, MB")
    ap.add_argument("--no-link-local", action="store_true", help="guest without an IPv6 link-local address")
    ap.add_argument("--announce-rounds", type=int, default=5, help="QEMU's announce-rounds after the switch (default 5)")
    ap.add_argument("--downtime-limit", type=int, default=300,
                    help="QEMU's downtime-limit, ms (QEMU's default 300; lower = more pre-copy rounds)")
    a = ap.parse_args()

    if os.geteuid() != 0:
        print("SKIP: needs root (namespaces, taps)")
        return 77
    missing = V.missing_requirements() + [t for t in ("dumpcap", "ethtool") if not shutil.which(t)]
    if missing:
        print("SKIP: missing " + ", ".join(missing))
        return 77
    V.install_cleanup_handlers()
    res = Results()
    out: dict = {"test": "vm_smoke"}
    lab = Lab()
    vms: list[V.VM] = []
    readers: list[V.TcpStreamReader] = []
    sender = None
    cap = None
    keep = a.keep or V.KEEP
    try:
        # -- guest ------------------------------------------------------------------------------
        g = V.build_guest()
        print(f"guest: {g.dir} kernel {g.info['kernel_version']}, initrd {g.info['initrd_bytes']} bytes, "
              f"{'cached' if g.cached else 'built'} in {g.build_s:.2f} s "
              f"(last full build {g.info['build_seconds']} s)", flush=True)
        out.update(guest_build_s=g.info["build_seconds"], guest_check_s=round(g.build_s, 3), guest_cached=g.cached)
        lab.up()
        common = dict(guest=g, netns=lab.fab, mac=MAC, ip4=f"{GUEST4}/24", gw4=GW4, ip6=f"{GUEST6}/64", gw6=GW6,
                      mem_mb=a.mem, accel=a.accel, guest_announce=not a.no_guest_announce, workdir=lab.tmp,
                      link_local=not a.no_link_local)
        va = V.VM("vmA", bridge="brA", **common)
        vms.append(va)
        out["accel"] = va.accel
        va.start()
        boot = va.wait_ready(120)
        print(f"vmA: ready {boot:.2f} s after QEMU start (guest uptime {va.guest_uptime_at_ready:.2f} s), "
              f"accel {va.accel}, pid {va.pid}", flush=True)
        out.update(boot_s=round(boot, 2), guest_uptime_at_ready_s=va.guest_uptime_at_ready)
        c0 = va.cpu_seconds()
        time.sleep(2.0)
        out["cpu_pct_idle_guest"] = round((va.cpu_seconds() - c0) / 2.0 * 100, 1)

        # -- before the migration ---------------------------------------------------------------
        for addr in (GUEST4, GUEST6):
            p = V.ping(lab.cn, addr, count=3, interval=0.1, timeout=2)
            res.check(f"cn pings the guest at {addr} on site A", p["received"] == 3, f"{p}")
        echo = V.udp_query(lab.cn, GUEST4, V.ECHO_PORT, b"hello-vm")
        res.check("UDP echo on site A", echo == b"hello-vm", repr(echo))
        for addr in (GUEST4, GUEST6):
            r = V.TcpStreamReader(lab.cn, addr)
            readers.append(r)
        sender = V.UdpSender(lab.cn, GUEST4, rate=UDP_RATE, stream=UDP_STREAM)
        ok = all(r.wait_lines(50, 10) for r in readers)
        res.check("TCP streams (v4, v6) flow on site A", ok, ", ".join(f"{r.addr}: {r.count()} lines" for r in readers))
        c0 = va.cpu_seconds()
        time.sleep(1.5)
        out["cpu_pct_with_traffic"] = round((va.cpu_seconds() - c0) / 1.5 * 100, 1)

        # -- migration ----------------------------------------------------------------------------
        vb = V.VM("vmB", bridge="brB", incoming=True, **common)
        vms.append(vb)
        vb.start()
        cap = V.Capture(lab.fab, "brB", os.path.join(lab.tmp, "brB.pcap"))
        hook = {}

        def on_pre_switchover(ev):
            hook["t_real"] = time.time()
            if a.hook_ms > 0:
                time.sleep(a.hook_ms / 1000)

        tl = V.migrate(va, vb, on_pre_switchover=on_pre_switchover, downtime_limit_ms=a.downtime_limit,
                       announce=dict(V.DEFAULT_ANNOUNCE, announce_rounds=a.announce_rounds))
        t_resume = tl["dst_resume_real"]
        va.stop()   # the source is paused (postmigrate): quit it, its tap goes
        res.check("migration completed", tl["status"] == "completed", tl["status"])
        res.check("guest runs on site B", vb.status() == "running")
        print("timeline (ms after `migrate`):", flush=True)
        for k in ("setup", "active", "pre_switchover", "continue", "device", "completed", "src_stop", "dst_resume"):
            if k in tl:
                print(f"  {k:15s} {tl[k]:9.1f}", flush=True)
        print(f"  query-migrate: total {tl['total_time_ms']} ms, downtime {tl['downtime_ms']} ms, setup "
              f"{tl['setup_time_ms']} ms, {tl['ram_transferred_mb']} MB of {tl['ram_total_mb']} MB; guest paused "
              f"{tl.get('paused_ms', 0):.1f} ms (STOP on A -> RESUME on B), hook {tl['hook_ms']:.1f} ms", flush=True)
        out.update(migration_total_ms=tl["total_time_ms"], downtime_ms=tl["downtime_ms"],
                   setup_ms=tl["setup_time_ms"], paused_ms=round(tl.get("paused_ms", 0), 1),
                   pre_switchover_ms=round(tl.get("pre_switchover", 0), 1), hook_ms=round(tl["hook_ms"], 1),
                   completed_ms=round(tl.get("completed", 0), 1), ram_transferred_mb=tl["ram_transferred_mb"])

        # -- after the migration --------------------------------------------------------------------
        time.sleep(1.5)   # QEMU's announce rounds (~1 s) and traffic on B
        for addr in (GUEST4, GUEST6):
            p = V.ping(lab.cn, addr, count=3, interval=0.1, timeout=2)
            res.check(f"cn pings the guest at {addr} on site B", p["received"] == 3, f"{p}")
        echo = V.udp_query(lab.cn, GUEST6, V.ECHO_PORT, b"hello-again")
        res.check("UDP echo on site B (IPv6)", echo == b"hello-again", repr(echo))
        us = sender.stop()
        sender = None
        time.sleep(0.3)
        st = V.sink_stat(lab.cn, GUEST4, UDP_STREAM)
        lost = us["sent"] - st["distinct"] if st and st.get("found") else None
        res.check("UDP sink in the guest counted the stream", lost is not None, f"{st}")
        out.update(udp_sent=us["sent"], udp_lost=lost,
                   udp_max_gap_ms_guest=round(st["max_gap_us"] / 1000, 1) if st and st.get("found") else None)
        print(f"UDP {UDP_RATE}/s cn -> guest sink: sent {us['sent']}, received {st and st.get('distinct')}, lost "
              f"{lost}, duplicates {st and st.get('duplicates')}, reordered {st and st.get('reordered')}, largest "
              f"gap in the guest {out['udp_max_gap_ms_guest']} ms", flush=True)
        tcp = []
        for r in readers:
            s = r.stop()
            tcp.append(s)
            gap_rel = (s["max_gap_at_real"] - tl["t0_real"]) * 1000 if s["max_gap_at_real"] else None
            res.check(f"TCP stream to {r.addr} survived (same connection, no hole, lines after the switch)",
                      s["holes"] == 0 and not s["closed"] and s["error"] is None
                      and sum(1 for _, _, tr in r.lines if tr > t_resume + 0.5) > 10,
                      f"lines {s['lines']}, seq {s['first_seq']}..{s['last_seq']}, holes {s['holes']}, largest gap "
                      f"{s['max_gap_ms']} ms at {gap_rel and round(gap_rel, 1)} ms, closed {s['closed']}, "
                      f"error {s['error']}")
        readers = []
        out["tcp_max_gap_ms"] = max(s["max_gap_ms"] for s in tcp)

        frames = cap.stop()
        ann = V.announcements(frames, MAC)
        kinds: dict = {}
        for x in ann:
            kinds[x["kind"]] = kinds.get(x["kind"], 0) + 1
        print(f"announcements from {MAC} on brB after the switch ({len(frames)} frames captured):", flush=True)
        for x in ann:
            print(f"  {(x['t'] - t_resume) * 1000:8.1f} ms after RESUME  {x['kind']:15s} {x['ip'] or ''}"
                  + (f" -> {x['dst']}" if x.get("dst") else "")
                  + (f" (flags{' R' if x.get('router') else ''}{' O' if x.get('override') else ''})"
                     if x["kind"] == "unsolicited-na" else ""), flush=True)
        res.check(f"QEMU announced the guest (RARP with its MAC, {a.announce_rounds} rounds) on site B",
                  kinds.get("rarp", 0) == a.announce_rounds, f"{kinds}")
        if not a.no_guest_announce:
            res.check("the guest announced itself too (virtio GUEST_ANNOUNCE: gratuitous ARP + unsolicited NA)",
                      any(k.startswith("garp") for k in kinds) and kinds.get("unsolicited-na", 0) >= 1, f"{kinds}")
        out.update(rarp=kinds.get("rarp", 0), garp=sum(v for k, v in kinds.items() if k.startswith("garp")),
                   unsolicited_na=kinds.get("unsolicited-na", 0),
                   first_announce_after_resume_ms=round((ann[0]["t"] - t_resume) * 1000, 1) if ann else None)
        c0 = vb.cpu_seconds()
        time.sleep(1.0)
        out["cpu_pct_idle_dst"] = round((vb.cpu_seconds() - c0) * 100, 1)
    except Exception as e:
        import traceback
        traceback.print_exc()
        res.check("no unexpected error", False, f"{type(e).__name__}: {e}")
        for vm in vms:
            print(f"--- {vm.name} console (tail) ---\n{vm.console()[-1200:]}\n--- {vm.name} QEMU log ---\n"
                  f"{vm.qemu_log()[-800:]}", flush=True)
    finally:
        if sender:
            sender.stop()
        for r in readers:
            r.stop()
        if cap:
            cap.stop()
        for vm in vms:
            vm.stop()
        left = lab.down(keep_tmp=keep)
        if keep:
            print(f"kept {lab.tmp}")
        res.check("namespaces and taps removed", not left, " ".join(left))
    out["pass"] = res.failed == 0
    print(f"{res.passed} passed, {res.failed} failed", flush=True)
    print(json.dumps(out), flush=True)
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
