#!/usr/bin/python3
"""QEMU test VMs for LM Router (issue 7): boot the test guest inside a network namespace, on a
tap in a Linux bridge, and live-migrate it between two QEMU processes. Python 3 standard library
only (run with /usr/bin/python3), root for namespaces and taps.

The guest (scripts/vm/build-guest.sh): Debian's kernel + a busybox initramfs whose /init puts
the EIDs on eth0 (IPv4 and IPv6, default routes via the anycast gateway, no DAD), and
lm-guest-agent: a sequence-numbered TCP stream (port 7000, 100 lines/s, "SEQ GUEST_US\\n"), UDP
echo (7001) and a UDP sink counting test/e2e's "LMSQ" stream (7002, "STAT ID" queries). The
kernel answers ping.

    guest = vmlib.build_guest()                     # cached by input hash (~0.1 s when cached)
    a = vmlib.VM("vm1a", guest, netns=NS, bridge="brA", mac=MAC, ip4="192.0.2.20/24",
                 gw4="192.0.2.1", ip6="2001:db8:1::20/64", gw6="2001:db8:1::1").start()
    a.wait_ready()                                  # boot seconds (TCG, PVH kernel: ~2 s)
    b = vmlib.VM("vm1b", guest, netns=NS, bridge="brB", mac=MAC, incoming=True,
                 ip4=..., ...).start()              # same guest config: the command lines must match
    tl = vmlib.migrate(a, b, on_pre_switchover=lambda ev: hook())   # pause-before-switchover
    a.stop(); ...; b.stop()                         # vmlib.stop_all() / atexit clean up the rest

Accelerator: TCG unless LM_VM_ACCEL=kvm (or =auto: probe_kvm() boots the guest under KVM once,
waits a few seconds for it, and remembers the answer next to the guest). On the development
machine /dev/kvm exists but a KVM guest hangs before its first console byte (nested KVM).

Self-announce after a migration (test_vm_smoke.py captures it on the destination's bridge):
QEMU sends RARP frames (EtherType 0x8035, source and sender/target hardware address = the VM's
MAC, no IP) on the destination at 0, 50, 200, 450, 800 ms after RESUME (announce-rounds 5,
announce-initial 50 ms, the interval growing by announce-step 100 ms up to announce-max 550 ms;
set on the destination, migrate(announce=...)). With virtio-net's GUEST_ANNOUNCE feature (on by
default, needs ctrl_vq) QEMU also asks the guest driver at each round, and the guest kernel sends,
30-75 ms after each RARP (TCG), a gratuitous ARP *request* (broadcast, sender IP = target IP =
the EID, target MAC 0) and an unsolicited NA to ff02::1 (flags O, not S, not R, target link-layer
option) for each IPv6 address: the EID and, unless link_local=False, the fe80:: address; after
the first round also an MLDv2 report (from fe80::, to ff02::16: its solicited-node groups).
guest_announce=False leaves only the RARPs.

Environment: LM_VM_QEMU (qemu-system-x86_64), LM_VM_GUEST (guest directory, default
/var/tmp/lm-vm-guest), LM_VM_ACCEL (tcg|kvm|auto), LM_VM_KEEP=1 (keep VM work directories).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# The e2e test bed's helpers (pcap reader, ICMP checksum) serve the VMs too.
sys.path.insert(0, os.path.join(REPO, "test", "e2e"))
from pyping import csum as _csum  # noqa: E402
from testbed import read_pcap_ts as read_pcap  # noqa: E402
BUILD_SCRIPT = os.path.join(REPO, "scripts", "vm", "build-guest.sh")
QEMU = os.environ.get("LM_VM_QEMU", "qemu-system-x86_64")
GUEST_DIR = os.environ.get("LM_VM_GUEST", "/var/tmp/lm-vm-guest")
KEEP = os.environ.get("LM_VM_KEEP", "") not in ("", "0")
READY_RE = re.compile(r"LM-GUEST-READY uptime=([\d.]+)")

TCP_PORT, ECHO_PORT, SINK_PORT = 7000, 7001, 7002


class VmError(RuntimeError):
    pass


class QmpError(VmError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd: list[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise VmError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


def missing_requirements() -> list[str]:
    """What this machine lacks to run a test VM ([] = all there): for a skip message."""
    out = []
    if not shutil.which(QEMU):
        out.append(f"{QEMU} (apt-get install qemu-system-x86)")
    if not any(n.startswith("vmlinuz-") for n in (os.listdir("/boot") if os.path.isdir("/boot") else [])):
        out.append("a kernel in /boot (apt-get install linux-image-amd64)")
    if not (os.path.exists("/bin/busybox") or os.path.exists("/usr/bin/busybox")):
        out.append("busybox (apt-get install busybox-static)")
    if not os.path.exists("/dev/net/tun"):
        out.append("/dev/net/tun")
    for tool in ("cpio", "modinfo", "cc"):
        if not shutil.which(tool):
            out.append(tool)
    return out


# ---------------------------------------------------------------------------------------------
# The guest
# ---------------------------------------------------------------------------------------------

@dataclass
class Guest:
    dir: str
    kernel: str         # what QEMU boots (-kernel): OUTDIR/vmlinux (PVH) or OUTDIR/vmlinuz
    initrd: str
    info: dict
    build_s: float      # wall time of build_guest() (script run, cached or not)
    cached: bool


def build_guest(outdir: Optional[str] = None) -> Guest:
    """Run scripts/vm/build-guest.sh OUTDIR (default LM_VM_GUEST or /var/tmp/lm-vm-guest): builds
    the kernel + initramfs, or finds them cached by input hash."""
    outdir = outdir or GUEST_DIR
    t0 = time.monotonic()
    r = sh(["bash", BUILD_SCRIPT, outdir], timeout=600)
    dt = time.monotonic() - t0
    with open(os.path.join(outdir, "guest.json")) as f:
        info = json.load(f)
    # vmlinux (uncompressed ELF, PVH entry) when the script could extract it: QEMU boots it
    # directly and the guest skips decompressing the bzImage (seconds under TCG)
    kernel = os.path.join(outdir, info.get("boot_kernel", "vmlinuz"))
    return Guest(outdir, kernel, os.path.join(outdir, "initrd.img"), info, dt, r.stdout.startswith("cached"))


def qemu_version() -> str:
    r = sh([QEMU, "--version"], check=False)
    return r.stdout.splitlines()[0] if r.stdout else "?"


def probe_kvm(guest: Guest, timeout: float = 8.0) -> bool:
    """Does a guest boot under KVM here? Boots it once (no NIC) and waits up to `timeout` s for
    LM-GUEST-READY; the answer is cached in the guest directory per kernel and QEMU version."""
    key = f"{guest.info.get('hash', '')} {qemu_version()}"
    cache = os.path.join(guest.dir, "kvm-probe.json")
    try:
        with open(cache) as f:
            c = json.load(f)
        if c.get("key") == key:
            return bool(c["ok"])
    except (OSError, ValueError, KeyError):
        pass
    ok = False
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        d = tempfile.mkdtemp(prefix="lm-kvm-probe-")
        con = os.path.join(d, "console.log")
        p = subprocess.Popen([QEMU, "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "128", "-nodefaults",
                              "-no-user-config", "-display", "none", "-serial", f"file:{con}", "-no-reboot",
                              "-kernel", guest.kernel, "-initrd", guest.initrd,
                              "-append", "console=ttyS0 panic=-1 quiet lm.tcp=0 lm.echo=0 lm.sink=0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end and p.poll() is None:
            try:
                with open(con, errors="replace") as f:
                    if "LM-GUEST-READY" in f.read():
                        ok = True
                        break
            except OSError:
                pass
            time.sleep(0.1)
        if p.poll() is None:
            p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    try:
        with open(cache, "w") as f:
            json.dump({"key": key, "ok": ok}, f)
    except OSError:
        pass
    return ok


def choose_accel(guest: Guest, accel: Optional[str] = None) -> str:
    """tcg (default), kvm, or auto (kvm when probe_kvm() says a guest boots)."""
    a = (accel or os.environ.get("LM_VM_ACCEL", "") or "tcg").lower()
    if a == "auto":
        return "kvm" if probe_kvm(guest) else "tcg"
    if a not in ("tcg", "kvm"):
        raise VmError(f"unknown accelerator '{a}' (tcg, kvm, auto)")
    return a


# ---------------------------------------------------------------------------------------------
# QMP
# ---------------------------------------------------------------------------------------------

class Qmp:
    """A QMP client on a unix socket. A reader thread files replies by id and keeps every event
    in `events` (the QMP dict plus "t_real" = QEMU's timestamp (Unix s) and "t_mono" = our
    time.monotonic() when it arrived)."""

    def __init__(self, path: str, timeout: float = 10.0, proc: Optional[subprocess.Popen] = None):
        self.path = path
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc is not None and proc.poll() is not None:
                    raise QmpError(f"QEMU exited ({proc.returncode}) before its QMP socket {path} opened")
                if time.monotonic() > end:
                    raise QmpError(f"no QMP socket at {path} after {timeout} s")
                time.sleep(0.05)
        self.events: list[dict] = []
        # Called in the reader thread with each event as it arrives (after it is filed in
        # `events`), before any waiting thread wakes: for hooks that must act within a
        # millisecond (migrate(hook_in_reader=True)). A hook must not call execute() (its reply
        # is read by this very thread): send_nowait() is for that.
        self.event_hooks: list[Callable[[dict], None]] = []
        self._replies: dict[int, dict] = {}
        self._cv = threading.Condition()
        self._ignored: set[int] = set()        # ids of send_nowait() commands
        self.async_errors: list[dict] = []     # their error replies
        self._send_lock = threading.Lock()
        self._next_id = 1
        self._closed = False
        self._greeting: Optional[dict] = None
        self._thread = threading.Thread(target=self._reader, name=f"qmp-{os.path.basename(path)}", daemon=True)
        self._thread.start()
        with self._cv:
            if not self._cv.wait_for(lambda: self._greeting is not None or self._closed, timeout):
                raise QmpError(f"no QMP greeting on {path}")
        if self._greeting is None:
            raise QmpError(f"QMP {path} closed before the greeting")
        self.execute("qmp_capabilities")

    def _reader(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if "event" in msg:
                        ts = msg.get("timestamp", {})
                        msg["t_real"] = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6
                        msg["t_mono"] = time.monotonic()
                        msg["t_arrived"] = time.time()
                        for hook in list(self.event_hooks):
                            try:
                                hook(msg)
                            except Exception as e:   # a broken hook must not kill the reader
                                msg.setdefault("hook_errors", []).append(f"{type(e).__name__}: {e}")
                    with self._cv:
                        if "QMP" in msg:
                            self._greeting = msg
                        elif "event" in msg:
                            self.events.append(msg)
                        elif "id" in msg:
                            if msg["id"] not in self._ignored:
                                self._replies[msg["id"]] = msg
                            else:
                                self._ignored.discard(msg["id"])
                                if "error" in msg:
                                    self.async_errors.append(msg)
                        self._cv.notify_all()
        except OSError:
            pass
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def execute(self, cmd: str, args: Optional[dict] = None, timeout: float = 30.0):
        """Run a QMP command; returns its "return" value, raises QmpError on an "error"."""
        with self._cv:
            if self._closed:
                raise QmpError(f"QMP {self.path} is closed ({cmd})")
            i = self._next_id
            self._next_id += 1
        msg = {"execute": cmd, "id": i}
        if args:
            msg["arguments"] = args
        with self._send_lock:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        with self._cv:
            if not self._cv.wait_for(lambda: i in self._replies or self._closed, timeout):
                raise QmpError(f"QMP {cmd}: no reply within {timeout} s")
            if i not in self._replies:
                raise QmpError(f"QMP {cmd}: connection closed")
            r = self._replies.pop(i)
        if "error" in r:
            raise QmpError(f"QMP {cmd}: {r['error'].get('class')}: {r['error'].get('desc')}")
        return r.get("return")

    def send_nowait(self, cmd: str, args: Optional[dict] = None) -> int:
        """Send a command without waiting for its reply (usable from an event hook, i.e. from
        the reader thread); an error reply lands in `async_errors`. Returns its id."""
        with self._cv:
            i = self._next_id
            self._next_id += 1
            self._ignored.add(i)
        msg = {"execute": cmd, "id": i}
        if args:
            msg["arguments"] = args
        with self._send_lock:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return i

    def wait_event(self, name: str, match: Optional[Callable[[dict], bool]] = None, timeout: float = 30.0,
                   start: int = 0) -> dict:
        """The first event `name` (at index >= start in self.events) for which match(event) holds."""
        def find():
            for ev in self.events[start:]:
                if ev["event"] == name and (match is None or match(ev)):
                    return ev
            return None
        with self._cv:
            if not self._cv.wait_for(lambda: find() is not None or self._closed, timeout):
                raise QmpError(f"no {name} event within {timeout} s")
            ev = find()
            if ev is None:
                raise QmpError(f"QMP {self.path} closed while waiting for {name}")
            return ev

    def migration_event(self, status: str, timeout: float = 60.0, start: int = 0) -> dict:
        """Wait for MIGRATION {status}; raises at once on status failed/cancelled."""
        ev = self.wait_event("MIGRATION", lambda e: e["data"]["status"] in (status, "failed", "cancelled"),
                             timeout, start)
        if ev["data"]["status"] != status:
            raise QmpError(f"migration {ev['data']['status']} while waiting for {status}")
        return ev

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(2)


# ---------------------------------------------------------------------------------------------
# VMs
# ---------------------------------------------------------------------------------------------

_live: list["VM"] = []
_handlers = False


def stop_all() -> None:
    for vm in list(_live):
        try:
            vm.stop()
        except Exception as e:   # keep going
            print(f"vmlib: clean-up of {vm.name}: {e}", file=sys.stderr)


atexit.register(stop_all)


def install_cleanup_handlers() -> None:
    """SIGTERM/SIGHUP raise SystemExit (SIGINT KeyboardInterrupt), so `finally` blocks and atexit
    stop the VMs. Leaves handlers someone else installed (testbed.py's) alone."""
    global _handlers
    if _handlers or threading.current_thread() is not threading.main_thread():
        return
    _handlers = True

    def on_signal(signum, frame):
        print(f"\nvmlib: {signal.Signals(signum).name} received, cleaning up", file=sys.stderr, flush=True)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(s, on_signal)


def _ns(netns: Optional[str]) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def _ipn(netns: Optional[str]) -> list[str]:
    return ["ip", "-n", netns] if netns else ["ip"]


class VM:
    """One QEMU process running the test guest.

    name        short name (files, QEMU -name); tap defaults to "t" + name (<= 15 chars)
    guest       a Guest (build_guest())
    netns       network namespace QEMU runs in (its tap lives there); None = this one
    bridge      Linux bridge (in netns) the tap joins; None = the tap stays unbridged
    tap         tap name; created (ip tuntap, persistent) before QEMU starts, deleted by stop()
    mac         the NIC's MAC (keep it identical on both sides of a migration)
    ip4/gw4/ip6/gw6  the guest's EIDs (with prefix length) and gateways (kernel command line)
    incoming    True: start with `-incoming defer`, as a migration destination (migrate() gives
                it the URI); a string: `-incoming URI` (e.g. "tcp:127.0.0.1:4444"), migrate() uses it
    mem_mb      guest RAM (128 MB is plenty: the initramfs is ~1.5 MB)
    accel       tcg | kvm | auto (default: LM_VM_ACCEL or tcg)
    offloads    False (default): checksum/TSO/GSO off on the virtio NIC and the tap, so frames
                on the bridge are complete (what net_af_packet on a veth needs)
    guest_announce  virtio-net GUEST_ANNOUNCE: after a migration the guest also sends GARP/NA
    tcp_port, tcp_rate, echo_port, sink_port  the guest agent's responders (0 = off)
    mtu         tap MTU and guest eth0 MTU (None: the bridge's, else 1500)
    workdir     where console, QEMU log and sockets go (default: a new temporary directory,
                removed by stop() unless LM_VM_KEEP=1)
    extra_append, extra_args  more kernel command line / QEMU arguments
    nice        niceness of the QEMU process (None: inherited)
    quiet_kernel  "quiet loglevel=3" on the kernel command line (the console shows init's lines)
    link_local  False: the guest has no IPv6 link-local address (lm.ll=0), so its post-migration
                unsolicited NAs name the EID only (with it, one NA per round names fe80::...,
                which an AR's SAVI check does not find among the MO's EIDs)
    die_with_parent  QEMU runs under `setpriv --pdeathsig KILL`: it dies with the thread that
                started it (start VMs from a thread that lives as long as they do)
    txqueuelen  the tap's queue, in frames (None: the kernel's 1000). Frames for the guest wait
                there while its virtio RX ring is full (a TCG guest falls behind during a
                migration's first pass): beyond it they are dropped
    rx_queue_size  virtio-net RX ring size (256..1024; None: QEMU's 256); part of the device, so
                equal on both sides of a migration

    The QEMU command line depends only on guest, mem_mb, accel, mac, offloads, guest_announce and
    the guest config, not on netns/bridge/tap/incoming, so a source and a destination built with
    the same arguments are migration-compatible.
    """

    def __init__(self, name: str, guest: Guest, netns: Optional[str] = None, bridge: Optional[str] = None,
                 tap: Optional[str] = None, mac: str = "02:00:00:01:01:20", ip4: Optional[str] = None,
                 gw4: Optional[str] = None, ip6: Optional[str] = None, gw6: Optional[str] = None,
                 incoming: "bool | str" = False, mem_mb: int = 128, accel: Optional[str] = None, offloads: bool = False,
                 guest_announce: bool = True, tcp_port: int = TCP_PORT, tcp_rate: int = 100,
                 echo_port: int = ECHO_PORT, sink_port: int = SINK_PORT, mtu: Optional[int] = None,
                 workdir: Optional[str] = None, extra_append: str = "", extra_args: tuple = (),
                 nice: Optional[int] = None, quiet_kernel: bool = True, link_local: bool = True,
                 die_with_parent: bool = True, txqueuelen: Optional[int] = None,
                 rx_queue_size: Optional[int] = None):
        self.name = name
        self.guest = guest
        self.netns = netns
        self.bridge = bridge
        self.tap = tap or ("t" + name)[:15]
        self.mac = mac
        self.ip4, self.gw4, self.ip6, self.gw6 = ip4, gw4, ip6, gw6
        self.incoming = incoming
        self.mem_mb = mem_mb
        self.accel = choose_accel(guest, accel)
        self.offloads = offloads
        self.guest_announce = guest_announce
        self.tcp_port, self.tcp_rate, self.echo_port, self.sink_port = tcp_port, tcp_rate, echo_port, sink_port
        self.mtu = mtu
        self.extra_append = extra_append
        self.extra_args = tuple(extra_args)
        self.nice = nice
        self.quiet_kernel = quiet_kernel
        self.link_local = link_local
        self.die_with_parent = die_with_parent
        self.txqueuelen = txqueuelen
        self.rx_queue_size = rx_queue_size
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"lm-vm-{name}-")
        os.makedirs(self.workdir, exist_ok=True)
        self.console_path = os.path.join(self.workdir, f"{name}.console.log")
        self.log_path = os.path.join(self.workdir, f"{name}.qemu.log")
        self.qmp_path = os.path.join(self.workdir, f"{name}.qmp")
        self.proc: Optional[subprocess.Popen] = None
        self.qmp: Optional[Qmp] = None
        self.t_start: Optional[float] = None
        self.boot_s: Optional[float] = None
        self.guest_uptime_at_ready: Optional[float] = None
        self._tap_made = False
        self._stopped = False
        self._guest_mtu: Optional[int] = None   # the bridge's MTU when mtu is None

    # -- command line ------------------------------------------------------------------------
    def kernel_cmdline(self) -> str:
        parts = ["console=ttyS0", "panic=-1", "mitigations=off"]
        if self.quiet_kernel:
            parts += ["quiet", "loglevel=3"]
        for k, v in (("ip4", self.ip4), ("gw4", self.gw4), ("ip6", self.ip6), ("gw6", self.gw6),
                     ("tcp", self.tcp_port), ("rate", self.tcp_rate), ("echo", self.echo_port),
                     ("sink", self.sink_port), ("mtu", self.mtu or self._guest_mtu)):
            if v is not None and v != "":
                parts.append(f"lm.{k}={v}")
        if not self.link_local:
            parts.append("lm.ll=0")
        if self.extra_append:
            parts.append(self.extra_append)
        return " ".join(parts)

    def nic_device(self) -> str:
        d = f"virtio-net-pci,netdev=net0,id=nic0,mac={self.mac},romfile="
        if not self.offloads:
            d += (",csum=off,gso=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off,guest_csum=off,"
                  "guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off")
        if not self.guest_announce:
            d += ",guest_announce=off"
        if self.rx_queue_size:
            d += f",rx_queue_size={self.rx_queue_size}"
        return d

    def argv(self) -> list[str]:
        a = [QEMU, "-name", self.name, "-machine", f"pc,accel={self.accel}", "-m", str(self.mem_mb), "-smp", "1",
             "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-msg", "timestamp=on",
             "-chardev", f"file,id=con0,path={self.console_path}", "-serial", "chardev:con0",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-kernel", self.guest.kernel, "-initrd", self.guest.initrd, "-append", self.kernel_cmdline(),
             "-netdev", f"tap,id=net0,ifname={self.tap},script=no,downscript=no,vhost=off",
             "-device", self.nic_device()]
        if self.accel == "kvm":
            a[a.index("-m"):a.index("-m")] = ["-cpu", "host"]
        if self.incoming:
            a += ["-incoming", self.incoming if isinstance(self.incoming, str) else "defer"]
        return a + list(self.extra_args)

    # -- life cycle --------------------------------------------------------------------------
    def _make_tap(self) -> None:
        sh(_ipn(self.netns) + ["tuntap", "add", "dev", self.tap, "mode", "tap"])
        self._tap_made = True
        if self.bridge:
            sh(_ipn(self.netns) + ["link", "set", self.tap, "master", self.bridge])
        mtu = self.mtu
        if mtu is None and self.bridge:
            try:
                r = sh(_ns(self.netns) + ["cat", f"/sys/class/net/{self.bridge}/mtu"])
                mtu = int(r.stdout.strip())
            except (VmError, ValueError):
                mtu = None
        if mtu:
            sh(_ipn(self.netns) + ["link", "set", self.tap, "mtu", str(mtu)])
            self._guest_mtu = mtu
        if self.txqueuelen:
            sh(_ipn(self.netns) + ["link", "set", self.tap, "txqueuelen", str(self.txqueuelen)])
        # no IPv6 on the tap itself (no RS/DAD/MLD from the host side), offloads off
        sh(_ns(self.netns) + ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.tap}.disable_ipv6=1"], check=False)
        if not self.offloads and shutil.which("ethtool"):
            sh(_ns(self.netns) + ["ethtool", "-K", self.tap, "tx", "off", "tso", "off", "gso", "off", "gro", "off"],
               check=False)
        sh(_ipn(self.netns) + ["link", "set", self.tap, "up"])

    def start(self) -> "VM":
        if self.proc is not None:
            return self
        _live.append(self)
        try:
            self._make_tap()
            for p in (self.qmp_path, self.console_path):
                if os.path.exists(p):
                    os.unlink(p)
            argv = _ns(self.netns) + self.argv()
            if self.nice is not None:
                argv = ["nice", "-n", str(self.nice)] + argv
            if self.die_with_parent and shutil.which("setpriv"):
                # SIGKILL to QEMU when the thread that started it dies (a SIGKILLed test leaves no VM)
                argv = ["setpriv", "--pdeathsig", "KILL"] + argv
            with open(self.log_path, "w") as log_f:
                log_f.write(" ".join(argv) + "\n")
                log_f.flush()
                self.t_start = time.monotonic()
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_f, stderr=log_f,
                                             start_new_session=True)
            self.qmp = Qmp(self.qmp_path, timeout=15, proc=self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def console(self) -> str:
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def qemu_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Wait for the guest's LM-GUEST-READY line; returns seconds since QEMU started (boot time)."""
        end = time.monotonic() + timeout
        while True:
            m = READY_RE.search(self.console())
            if m:
                if self.boot_s is None:
                    self.boot_s = time.monotonic() - self.t_start
                    self.guest_uptime_at_ready = float(m.group(1))
                return self.boot_s
            if not self.alive():
                raise VmError(f"{self.name}: QEMU exited ({self.proc.returncode if self.proc else '?'}) before the "
                              f"guest was ready\n{self.qemu_log()[-1500:]}\nconsole:\n{self.console()[-1500:]}")
            if time.monotonic() > end:
                raise VmError(f"{self.name}: guest not ready after {timeout} s; console:\n{self.console()[-1500:]}")
            time.sleep(0.05)

    def status(self) -> str:
        return self.qmp.execute("query-status")["status"]

    def qemu_pid(self) -> Optional[int]:
        """The QEMU process itself (self.pid may be a wrapper: setpriv, nice, ip netns exec exec it,
        so they are the same process; kept for clarity)."""
        return self.proc.pid if self.proc else None

    def threads(self) -> dict[str, list[int]]:
        """QEMU's threads by name (/proc/PID/task/*/comm): "CPU 0/TCG" (the vCPU), "live_migration"
        (the outgoing migration), "qemu-system-x86" (the main loop: devices, QMP, incoming migration)..."""
        out: dict[str, list[int]] = {}
        pid = self.qemu_pid()
        if not pid:
            return out
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return out
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    out.setdefault(f.read().strip(), []).append(int(tid))
            except OSError:
                pass
        return out

    def renice_threads(self, prefix: str, nice: int) -> int:
        """setpriority() on every QEMU thread whose name starts with prefix; returns how many."""
        n = 0
        for name, tids in self.threads().items():
            if name.startswith(prefix):
                for tid in tids:
                    try:
                        os.setpriority(os.PRIO_PROCESS, tid, nice)
                        n += 1
                    except OSError:
                        pass
        return n

    def cpu_seconds(self) -> float:
        """user + system CPU time of the QEMU process so far."""
        if not self.proc:
            return 0.0
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self, timeout: float = 5.0) -> None:
        """quit over QMP (SIGTERM, then SIGKILL if it lingers), delete the tap, remove the work
        directory if it is ours (unless LM_VM_KEEP=1). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                if self.qmp:
                    self.qmp.execute("quit", timeout=2)
            except (QmpError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        if self.qmp:
            self.qmp.close()
        if self._tap_made:
            sh(_ipn(self.netns) + ["link", "del", self.tap], check=False)
            self._tap_made = False
        if self._own_workdir and not KEEP:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self in _live:
            _live.remove(self)

    def __enter__(self) -> "VM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- migration pieces ----------------------------------------------------------------------
    def set_capabilities(self, **caps: bool) -> None:
        """migrate-set-capabilities, e.g. events=True, pause_before_switchover=True."""
        self.qmp.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": k.replace("_", "-"), "state": bool(v)} for k, v in caps.items()]})

    def set_parameters(self, **params) -> None:
        """migrate-set-parameters, e.g. announce_initial=50, max_bandwidth=..., downtime_limit=..."""
        if params:
            self.qmp.execute("migrate-set-parameters", {k.replace("_", "-"): v for k, v in params.items()})

    def announce_self(self, initial: int = 50, max: int = 550, rounds: int = 5, step: int = 100) -> None:
        """Ask QEMU for the post-migration announcement now (announce-self: RARP + guest announce)."""
        self.qmp.execute("announce-self", {"initial": initial, "max": max, "rounds": rounds, "step": step})


DEFAULT_ANNOUNCE = {"announce_initial": 50, "announce_max": 550, "announce_rounds": 5, "announce_step": 100}


def migrate(src: VM, dst: VM, uri: Optional[str] = None, pause_before_switchover: bool = True,
            on_pre_switchover: Optional[Callable[[dict], None]] = None, max_bandwidth: int = 10 << 30,
            downtime_limit_ms: int = 300, announce: Optional[dict] = None, timeout: float = 120.0,
            hook_in_reader: bool = False, switchover: str = "qemu",
            before_stop: Optional[Callable[[dict], None]] = None, stop_remaining_mb: float = 4.0,
            stop_settle_ms: float = 1.0, poll_ms: float = 1.0, stop_eta_ms: float = 3.0,
            migration_thread_nice: Optional[int] = None) -> dict:
    """Live-migrate src (running) to dst (started with incoming=True, or incoming=URI). Over a unix
    socket in dst's work directory by default (it works across network namespaces); uri e.g.
    "tcp:127.0.0.1:4444" if both QEMUs share a namespace.

    With pause_before_switchover (default), the source stops the guest, emits MIGRATION
    pre-switchover and waits: on_pre_switchover(event) runs then (the orchestrator's hook, e.g.
    migrate-begin at the old AR), and migrate-continue follows. hook_in_reader=True runs the hook
    and sends migrate-continue from the QMP reader thread as the event arrives (no thread
    hand-off: ~0.1 ms instead of up to a GIL switch interval on a busy process). Announce
    parameters (QEMU's RARP rounds after the switch) are set on the destination
    (DEFAULT_ANNOUNCE = QEMU's defaults).

    migration_thread_nice: niceness of the source's "live_migration" thread (e.g. 10: the copy
    only takes CPU the guest does not want).
    max_bandwidth (bytes/s) limits the copy while the guest runs; QEMU lifts it itself for the
    final stage, orchestrator mode right after its stop, but a rate-limited migration thread
    sleeps until the end of its 100 ms window first (QEMU 7.2): with a limit, orchestrator mode
    adds up to 100 ms of downtime. migration_thread_nice is the better way to leave the CPU to
    the guest.

    switchover="qemu" (default): QEMU picks the moment it stops the guest (when what is left to
    send fits downtime_limit_ms). The pre-switchover pause comes *after* that stop: frames that
    reach the source's tap between the stop and the hook's effect stay in the tap's queue (a
    stopped VM does not read it) and are lost with the source.
    switchover="orchestrator": the caller picks it, as libvirt does with --timeout-suspend:
    downtime_limit is set to 0 (QEMU would stop the guest only once its first pass over RAM is
    done), query-migrate is polled every poll_ms; when less than stop_remaining_mb of that first
    pass is left, or the last poll interval's pace says it ends within stop_eta_ms, before_stop(query)
    runs (e.g. migrate-begin at the old AR), stop_settle_ms later
    the guest is stopped (QMP stop); QEMU sends the rest and what was dirtied meanwhile and
    finishes, and the destination, which then comes up paused, is resumed with `cont` as soon as
    its MIGRATION completed event arrives (what libvirt's Finish phase does). If QEMU finished
    the pass between two polls, it stopped the guest itself and the pre-switchover hook runs
    instead (tl["orchestrated"] = False).

    QEMU < 9.0 under TCG (Debian 12 has 7.2) loses guest writes after a dirty-page sync made while
    the guest runs (the sync clears the dirty bits but leaves TCG's TLB entries writable, so the
    next stores to those pages are not logged; fixed upstream by "physmem: Fix migration dirty
    bitmap coherency with TCG memory access", QEMU 9.0): a guest receiving a few thousand packets/s
    crashed after ~1 in 5 migrations with downtime_limit 30 ms (slab freelist corruption in its
    network receive path). With downtime_limit_ms=0 (and in orchestrator mode) there is no such
    sync: only the one at the start and the final one, made with the guest stopped.
    tl["dirty_sync_count"] shows how many there were.

    Returns the timeline: t0_real (Unix s when `migrate` was sent) and, in ms after it,
    setup/active/pre_switchover/continue/device/completed (source MIGRATION events, QEMU's own
    timestamps), src_stop (guest stopped), dst_resume (RESUME on the destination), paused_ms =
    dst_resume - src_stop (the guest did not run: QEMU's event timestamps), hook_ms (time in
    on_pre_switchover), before_stop / stop_sent (orchestrator mode), and from query-migrate on the
    source: total_time_ms, downtime_ms (QEMU's: from its own stop decision to the end, so it
    includes the pre-switchover pause; in orchestrator mode it starts after our stop and misses
    the copy of the last pages: paused_ms is the guest's real pause), setup_time_ms,
    ram_transferred_mb, ram_total_mb, dirty_sync_count; `polls` (orchestrator: remaining MB and
    dirty-sync count per poll). t0_real, src_stop_real, dst_resume_real: Unix s (the clock of pcap
    and SO_TIMESTAMP timestamps)."""
    if switchover not in ("qemu", "orchestrator"):
        raise VmError(f"switchover must be qemu or orchestrator, not {switchover!r}")
    orch = switchover == "orchestrator"
    deferred = not isinstance(dst.incoming, str)
    if not deferred:
        uri = dst.incoming
    uri = uri or f"unix:{os.path.join(dst.workdir, dst.name + '.migrate.sock')}"
    if deferred and uri.startswith("unix:") and os.path.exists(uri[5:]):
        os.unlink(uri[5:])
    dst.set_capabilities(events=True)
    dst.set_parameters(**(announce or DEFAULT_ANNOUNCE))
    if deferred:
        dst.qmp.execute("migrate-incoming", {"uri": uri})
    src.set_capabilities(events=True, pause_before_switchover=pause_before_switchover)
    src.set_parameters(max_bandwidth=max_bandwidth, downtime_limit=0 if orch else downtime_limit_ms)
    s0, d0 = len(src.qmp.events), len(dst.qmp.events)
    tl: dict = {"uri": uri, "switchover": switchover}
    hook: dict = {}
    stopped_by_us = threading.Event()

    def run_hook(ev: dict) -> None:
        h0 = time.monotonic()
        hook["start_real"] = time.time()
        try:
            if on_pre_switchover:
                on_pre_switchover(ev)
        finally:
            hook["ms"] = (time.monotonic() - h0) * 1000
            hook["continue_real"] = time.time()

    def src_event(ev: dict) -> None:   # reader thread of src
        if ev["event"] == "MIGRATION" and ev["data"]["status"] == "pre-switchover" and "start_real" not in hook:
            try:
                run_hook(ev)
            finally:
                src.qmp.send_nowait("migrate-continue", {"state": "pre-switchover"})

    def dst_event(ev: dict) -> None:   # reader thread of dst
        if ev["event"] == "MIGRATION" and ev["data"]["status"] == "completed" and stopped_by_us.is_set():
            tl["cont_sent_real"] = time.time()
            dst.qmp.send_nowait("cont")

    hooks = []
    if pause_before_switchover and hook_in_reader:
        src.qmp.event_hooks.append(src_event)
        hooks.append((src.qmp, src_event))
    if orch:
        dst.qmp.event_hooks.append(dst_event)
        hooks.append((dst.qmp, dst_event))
    try:
        t0_real, t0_mono = time.time(), time.monotonic()
        tl["t0_real"] = t0_real
        src.qmp.execute("migrate", {"uri": uri})
        if migration_thread_nice is not None:   # the copy yields to the guest's vCPU
            tl["migration_threads_reniced"] = src.renice_threads("live_migration", migration_thread_nice)
        if orch:
            polls = []
            tl["orchestrated"] = False
            while time.monotonic() - t0_mono < timeout:
                q = src.qmp.execute("query-migrate")
                st = q.get("status")
                ram = q.get("ram", {})
                polls.append((round((time.time() - t0_real) * 1000, 1), round(ram.get("remaining", 0) / 2**20, 2),
                              ram.get("dirty-sync-count", 0)))
                if st in ("pre-switchover", "device", "completed", "failed", "cancelled"):
                    break   # QEMU stopped the guest by itself (or gave up): the pre-switchover path
                rem = ram.get("remaining", 0)
                eta_ms = None
                if len(polls) >= 2 and polls[-2][1] > polls[-1][1] and polls[-1][0] > polls[-2][0]:
                    # at the rate of the last poll interval, QEMU finishes its pass (and stops the
                    # guest itself) in eta_ms: act before that
                    eta_ms = polls[-1][1] / ((polls[-2][1] - polls[-1][1]) / (polls[-1][0] - polls[-2][0]))
                if st == "active" and ram and 0 < rem and (rem <= stop_remaining_mb * 2**20
                                                           or (eta_ms is not None and eta_ms <= stop_eta_ms)):
                    tl["eta_at_stop_ms"] = round(eta_ms, 1) if eta_ms is not None else None
                    tl["before_stop"] = (time.time() - t0_real) * 1000
                    if before_stop:
                        before_stop(q)
                    if stop_settle_ms > 0:
                        time.sleep(stop_settle_ms / 1000)
                    stopped_by_us.set()
                    tl["stop_sent"] = (time.time() - t0_real) * 1000
                    src.qmp.execute("stop")
                    tl["orchestrated"] = True
                    if migration_thread_nice is not None:   # the rest is downtime: full speed
                        src.renice_threads("live_migration", os.getpriority(os.PRIO_PROCESS, src.qemu_pid()))
                    if max_bandwidth < (10 << 30):   # (QEMU applies it after its current 100 ms window)
                        src.set_parameters(max_bandwidth=10 << 30)
                    tl["remaining_at_stop_mb"] = polls[-1][1]
                    break
                time.sleep(poll_ms / 1000)
            tl["polls"] = polls
        if pause_before_switchover and not hook_in_reader:
            ev = src.qmp.migration_event("pre-switchover", timeout, s0)
            run_hook(ev)
            src.qmp.execute("migrate-continue", {"state": "pre-switchover"})
        src.qmp.migration_event("completed", timeout, s0)
        resume = dst.qmp.wait_event("RESUME", timeout=timeout, start=d0)
        q = src.qmp.execute("query-migrate")
    finally:
        for qm, fn in hooks:
            if fn in qm.event_hooks:
                qm.event_hooks.remove(fn)
    for ev in src.qmp.events[s0:]:
        if ev["event"] == "MIGRATION":
            tl.setdefault(ev["data"]["status"].replace("-", "_"), (ev["t_real"] - t0_real) * 1000)
        elif ev["event"] == "STOP" and "src_stop" not in tl:
            tl["src_stop"] = (ev["t_real"] - t0_real) * 1000
            tl["src_stop_real"] = ev["t_real"]
    if "continue_real" in hook:
        tl["continue"] = (hook["continue_real"] - t0_real) * 1000
        tl["hook_start"] = (hook["start_real"] - t0_real) * 1000
    tl["dst_resume"] = (resume["t_real"] - t0_real) * 1000
    tl["dst_resume_real"] = resume["t_real"]
    if "src_stop" in tl:
        tl["paused_ms"] = tl["dst_resume"] - tl["src_stop"]
    tl["hook_ms"] = hook.get("ms", 0.0)
    tl["wall_ms"] = (time.monotonic() - t0_mono) * 1000
    ram = q.get("ram", {})
    tl.update({"status": q.get("status"), "total_time_ms": q.get("total-time"), "downtime_ms": q.get("downtime"),
               "setup_time_ms": q.get("setup-time"),
               "ram_transferred_mb": round(ram.get("transferred", 0) / 2**20, 2),
               "ram_total_mb": round(ram.get("total", 0) / 2**20, 1),
               "dirty_sync_count": ram.get("dirty-sync-count")})
    errs = src.qmp.async_errors + dst.qmp.async_errors
    if errs:
        tl["async_errors"] = [e.get("error") for e in errs]
    return tl


# ---------------------------------------------------------------------------------------------
# Talking to the guest from a namespace: sockets opened inside a netns (setns in a helper thread)
# ---------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def ns_socket(netns: Optional[str], family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside network namespace `netns` (a name in /run/netns; None: ours).
    A socket keeps the namespace it was made in, so it is used from any thread afterwards."""
    if not netns:
        return socket.socket(family, type_, proto)
    out: dict = {}

    def run():
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({netns}): {os.strerror(e)}")
            finally:
                os.close(fd)
            out["s"] = socket.socket(family, type_, proto)
        except BaseException as e:   # handed to the caller
            out["e"] = e
    t = threading.Thread(target=run, name=f"setns-{netns}")
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["s"]


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ping(netns: Optional[str], addr: str, count: int = 3, interval: float = 0.2, timeout: float = 1.0) -> dict:
    """ICMP echo from netns to addr (raw socket): {"sent", "received", "rtt_ms": [...]}."""
    v6 = ":" in addr
    s = ns_socket(netns, _family(addr), socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    ident = random.getrandbits(16)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    payload = b"lm-vm-ping" + bytes(22)

    def receive(until: float) -> None:
        while len(rtts) < count:
            left = until - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([s], [], [], left)
            if not r:
                return
            data, _ = s.recvfrom(2048)
            icmp = data if v6 else data[(data[0] & 0xF) * 4:]
            if len(icmp) < 8 or icmp[0] != (129 if v6 else 0):
                continue
            rid, rseq = struct.unpack("!HH", icmp[4:8])
            if rid == ident and rseq in sent_at and rseq not in rtts:
                rtts[rseq] = (time.monotonic() - sent_at[rseq]) * 1000
    try:
        for seq in range(count):
            hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq)
            pkt = hdr + payload
            if not v6:   # the kernel fills in the ICMPv6 checksum
                pkt = hdr[:2] + struct.pack("!H", _csum(pkt)) + hdr[4:] + payload
            sent_at[seq] = time.monotonic()
            try:
                s.sendto(pkt, (addr, 0))
            except OSError:
                pass
            receive(sent_at[seq] + (interval if seq < count - 1 else timeout))
    finally:
        s.close()
    return {"sent": count, "received": len(rtts), "rtt_ms": [round(rtts[k], 3) for k in sorted(rtts)]}


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ICMP_FILTER, ICMP6_FILTER, SOL_RAW = 1, 1, 255


class PingStream:
    """ICMP echo to one address per family every `interval` s (default 1 ms, like ping -i 0.001,
    IPv4 and IPv6 at the same instants), recording per sequence number the send time and the
    kernel's receive time of the reply (SO_TIMESTAMPNS, CLOCK_REALTIME: the receiving thread's
    scheduling does not move it). Raw sockets, made in `netns` (None: here). The sequence number
    is 32 bits in the payload ("LMPG", seq, send time), so runs longer than 65,536 requests keep
    their numbering; the ICMP sequence field carries its low 16 bits.

    run() sends until stop() (or `duration`), then waits `linger` s for late replies; result():
    {"interval", "ident", "families": {4|6: {"addr", "send": [Unix s per seq], "recv": [Unix s or
    None], "dups", "late_max_ms" (worst sender lateness), "sent", "received"}}}.
    The schedule is absolute (start + k * interval); a sender more than one interval late sends at
    once and restarts the schedule from there (no burst to catch up), and reports it in late_max_ms."""

    MAGIC = b"LMPG"

    def __init__(self, v4: Optional[str] = None, v6: Optional[str] = None, interval: float = 0.001,
                 netns: Optional[str] = None, size: int = 56, ident: Optional[int] = None):
        self.interval = interval
        self.ident = ident if ident is not None else (os.getpid() ^ random.getrandbits(16)) & 0xFFFF
        self.size = max(size, 16)
        self.fams: dict[int, dict] = {}
        self._stop = threading.Event()
        for fam, addr in ((4, v4), (6, v6)):
            if not addr:
                continue
            if fam == 4:
                sk = ns_socket(netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                try:   # only echo replies reach us (types < 32 can be filtered on a raw ICMP socket)
                    sk.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~(1 << 0)))
                except OSError:
                    pass
            else:
                sk = ns_socket(netns, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
                f = [0xFFFFFFFF] * 8   # ICMP6_FILTER: a set bit blocks the type; pass 129 only
                f[129 >> 5] &= ~(1 << (129 & 31))
                try:
                    sk.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *f))
                except OSError:
                    pass
            sk.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
            sk.setblocking(False)
            self.fams[fam] = {"addr": addr, "sock": sk, "send": [], "recv": [], "dups": 0, "late_max_ms": 0.0,
                              "errors": 0}
        if not self.fams:
            raise VmError("PingStream: no address")

    def _packet(self, fam: int, seq: int, t: float) -> bytes:
        payload = (self.MAGIC + struct.pack("!Id", seq, t)).ljust(self.size, b"\0")
        hdr = struct.pack("!BBHHH", 8 if fam == 4 else 128, 0, 0, self.ident, seq & 0xFFFF)
        if fam == 4:   # (the kernel fills in the ICMPv6 checksum)
            hdr = hdr[:2] + struct.pack("!H", _csum(hdr + payload)) + hdr[4:]
        return hdr + payload

    def _drain(self, fam: int) -> None:
        d = self.fams[fam]
        sk = d["sock"]
        while True:
            try:
                data, anc, _, _ = sk.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            icmp = data if fam == 6 else data[(data[0] & 0xF) * 4:]
            if len(icmp) < 8 + 16 or icmp[0] != (0 if fam == 4 else 129):
                continue
            rid = struct.unpack("!H", icmp[4:6])[0]
            if rid != self.ident or icmp[8:12] != self.MAGIC:
                continue
            seq = struct.unpack("!I", icmp[12:16])[0]
            t = None
            for lvl, typ, val in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                    sec, ns = struct.unpack("qq", val[:16])
                    t = sec + ns / 1e9
            if t is None:
                t = time.time()
            if seq < len(d["recv"]):
                if d["recv"][seq] is None:
                    d["recv"][seq] = t
                else:
                    d["dups"] += 1

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: Optional[float] = None, linger: float = 1.0, on_start: Optional[Callable] = None) -> None:
        socks = {d["sock"].fileno(): fam for fam, d in self.fams.items()}
        t_start = time.monotonic()
        due = t_start
        seq = 0
        if on_start:
            on_start()
        while not self._stop.is_set() and (duration is None or time.monotonic() - t_start < duration):
            self._drain_until(socks, due)
            now = time.monotonic()
            late = now - due
            for fam, d in self.fams.items():
                t = time.time()
                d["send"].append(t)
                d["recv"].append(None)
                try:
                    d["sock"].sendto(self._packet(fam, seq, t), (d["addr"], 0))
                except OSError:
                    d["errors"] += 1
                d["late_max_ms"] = max(d["late_max_ms"], late * 1000)
            seq += 1
            due += self.interval
            if now - due > self.interval:   # more than one interval behind: no catch-up burst
                due = now + self.interval
        self._drain_until(socks, time.monotonic() + linger)

    def _drain_until(self, socks: dict, deadline: float) -> None:
        """Reads replies on `socks` (fd -> family) until the monotonic `deadline`."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select(list(socks), [], [], left)
            for fd in r:
                self._drain(socks[fd])

    def result(self) -> dict:
        out = {"interval": self.interval, "ident": self.ident, "families": {}}
        for fam, d in self.fams.items():
            out["families"][fam] = {"addr": d["addr"], "send": [round(x, 6) for x in d["send"]],
                                    "recv": [round(x, 6) if x is not None else None for x in d["recv"]],
                                    "dups": d["dups"], "late_max_ms": round(d["late_max_ms"], 3),
                                    "errors": d["errors"], "sent": len(d["send"]),
                                    "received": sum(1 for x in d["recv"] if x is not None)}
        return out

    def close(self) -> None:
        for d in self.fams.values():
            d["sock"].close()


def ping_stream_main(argv: list[str]) -> int:
    """CLI: vmlib.py ping-stream [--v4 A] [--v6 B] [--interval S] [--out FILE] [--linger S] [--duration S]
    Prints "ready" once its sockets exist, pings until SIGTERM/SIGINT (or --duration), lingers,
    writes PingStream.result() as JSON to --out (or stdout) and prints "done"."""
    import argparse
    ap = argparse.ArgumentParser(prog="vmlib.py ping-stream")
    ap.add_argument("--v4")
    ap.add_argument("--v6")
    ap.add_argument("--interval", type=float, default=0.001)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--linger", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    ps = PingStream(a.v4, a.v6, a.interval, size=a.size)
    signal.signal(signal.SIGTERM, lambda *_: ps.stop())
    signal.signal(signal.SIGINT, lambda *_: ps.stop())
    ps.run(a.duration, a.linger, on_start=lambda: print(f"ready {time.time():.6f}", flush=True))
    res = json.dumps(ps.result(), separators=(",", ":"))
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(res)
        os.rename(a.out + ".tmp", a.out)
    else:
        print(res)
    print("done", flush=True)
    return 0


def udp_query(netns: Optional[str], addr: str, port: int, payload: bytes, timeout: float = 2.0,
              tries: int = 3) -> Optional[bytes]:
    """Send one datagram, return the first answer (or None): the echo port, or a sink query."""
    s = ns_socket(netns, _family(addr), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout / tries)
        for _ in range(tries):
            s.sendto(payload, (addr, port))
            try:
                data, _ = s.recvfrom(65536)
                return data
            except socket.timeout:
                continue
        return None
    finally:
        s.close()


def sink_stat(netns: Optional[str], addr: str, stream: int, port: int = SINK_PORT) -> Optional[dict]:
    """The guest sink's counters of an "LMSQ" stream (see lm-guest-agent.c)."""
    r = udp_query(netns, addr, port, f"STAT {stream}".encode())
    return json.loads(r) if r else None


class UdpSender:
    """A paced "LMSQ" stream (test/e2e/udpstream.py's format) from netns to the guest's sink, in a
    thread: stop() returns {"sent", "errors"}."""
    HDR = struct.Struct("!4sIQd")

    def __init__(self, netns: Optional[str], addr: str, port: int = SINK_PORT, rate: float = 200,
                 stream: int = 1, size: int = 64):
        self.sock = ns_socket(netns, _family(addr), socket.SOCK_DGRAM)
        self.addr, self.port, self.rate, self.stream, self.size = addr, port, rate, stream, max(size, 24)
        self.sent = self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.rate
        t_next = time.monotonic()
        while not self._stop.is_set():
            pkt = self.HDR.pack(b"LMSQ", self.stream, self.sent, time.time()).ljust(self.size, b"\0")
            try:
                self.sock.sendto(pkt, (self.addr, self.port))
            except OSError:
                self.errors += 1
            self.sent += 1
            t_next += period
            d = t_next - time.monotonic()
            if d > 0:
                self._stop.wait(d)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        return {"sent": self.sent, "errors": self.errors}


class TcpStreamReader:
    """Reads the guest agent's TCP stream ("SEQ GUEST_US\\n" lines) from netns in a thread and
    keeps (seq, arrival monotonic, arrival Unix time) per line. stats() checks that the sequence
    is unbroken and finds the largest arrival gap."""

    def __init__(self, netns: Optional[str], addr: str, port: int = TCP_PORT, connect_timeout: float = 10.0):
        self.addr, self.port = addr, port
        self.sock = ns_socket(netns, _family(addr), socket.SOCK_STREAM)
        self.sock.settimeout(connect_timeout)
        self.sock.connect((addr, port))
        self.sock.settimeout(0.5)
        self.lines: list[tuple[int, float, float]] = []
        self.error: Optional[str] = None
        self.closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tcp-stream-{addr}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                self.error = str(e)
                break
            if not data:
                self.closed = True
                break
            tm, tr = time.monotonic(), time.time()
            buf += data
            *full, buf = buf.split(b"\n")
            for line in full:
                try:
                    seq = int(line.split()[0])
                except (ValueError, IndexError):
                    self.error = f"bad line {line[:40]!r}"
                    continue
                self.lines.append((seq, tm, tr))

    def count(self) -> int:
        return len(self.lines)

    def wait_lines(self, n: int, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < end and not self.closed and self.error is None:
            time.sleep(0.02)
        return len(self.lines) >= n

    def stats(self, after_real: Optional[float] = None) -> dict:
        """lines, first/last seq, holes (sequence breaks), the largest gap between arrivals (ms)
        and its start (Unix s); with after_real: lines received after that time."""
        ls = list(self.lines)
        holes = sum(1 for a, b in zip(ls, ls[1:]) if b[0] != a[0] + 1)
        gap, gap_at = 0.0, None
        for a, b in zip(ls, ls[1:]):
            if b[1] - a[1] > gap:
                gap, gap_at = b[1] - a[1], a[2]
        d = {"lines": len(ls), "first_seq": ls[0][0] if ls else None, "last_seq": ls[-1][0] if ls else None,
             "holes": holes, "max_gap_ms": round(gap * 1000, 1), "max_gap_at_real": gap_at,
             "closed": self.closed, "error": self.error}
        if after_real is not None:
            d["lines_after"] = sum(1 for _, _, tr in ls if tr > after_real)
        return d

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(3)
        try:
            self.sock.close()
        except OSError:
            pass
        return self.stats()


# ---------------------------------------------------------------------------------------------
# Captures (dumpcap in a namespace) and the announcements in them
# ---------------------------------------------------------------------------------------------

class Capture:
    """dumpcap on iface inside netns, classic pcap in path; stop() returns [(Unix time, frame)]."""

    def __init__(self, netns: Optional[str], iface: str, path: str, bpf: str = "", snaplen: int = 256):
        self.path = path
        argv = _ns(netns) + ["dumpcap", "-q", "-P", "-i", iface, "-s", str(snaplen), "-w", path]
        if bpf:
            argv += ["-f", bpf]
        self.err_path = path + ".err"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err,
                                     start_new_session=True)
        end = time.monotonic() + 10
        while True:
            with open(self.err_path) as f:
                err = f.read()
            if "Capturing on" in err:
                break
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise VmError(f"dumpcap on {iface} did not start: {err}")
            time.sleep(0.05)
        self._frames: Optional[list] = None

    def stop(self) -> list[tuple[float, bytes]]:
        if self._frames is None:
            if self.proc.poll() is None:
                time.sleep(0.3)   # dumpcap hands over its buffer every 250 ms; SIGINT drops a partial one
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self._err.close()
            self._frames = read_pcap(self.path)
        return self._frames


def classify_announcement(fr: bytes) -> Optional[dict]:
    """RARP, gratuitous ARP, unsolicited NA (or None): what a hypervisor / a guest sends after a
    migration. {"kind", "src_mac", "ip" (announced address, if any)}"""
    if len(fr) < 14:
        return None
    et = struct.unpack("!H", fr[12:14])[0]
    src_mac = fr[6:12].hex(":")
    if et == 0x8035:
        return {"kind": "rarp", "src_mac": src_mac, "ip": None}
    if et == 0x0806 and len(fr) >= 42:
        spa, tpa = fr[28:32], fr[38:42]
        if spa == tpa:
            op = struct.unpack("!H", fr[20:22])[0]
            return {"kind": "garp-" + ("request" if op == 1 else "reply"), "src_mac": src_mac,
                    "ip": socket.inet_ntop(socket.AF_INET, spa)}
        return None
    if et == 0x86DD and len(fr) >= 14 + 40 + 24:
        ip6 = fr[14:]
        if ip6[6] == 58 and ip6[40] == 136:   # ICMPv6 NA
            flags = ip6[44]
            if not flags & 0x40:   # S flag clear: unsolicited
                return {"kind": "unsolicited-na", "src_mac": src_mac,
                        "ip": socket.inet_ntop(socket.AF_INET6, ip6[48:64]),
                        "dst": socket.inet_ntop(socket.AF_INET6, ip6[24:40]), "router": bool(flags & 0x80),
                        "override": bool(flags & 0x20)}
    return None


def announcements(frames: list[tuple[float, bytes]], mac: Optional[str] = None) -> list[dict]:
    """Announcement frames (classify_announcement) with their capture time "t" (Unix s), only
    from `mac` if given."""
    out = []
    for t, fr in frames:
        a = classify_announcement(fr)
        if a and (mac is None or a["src_mac"] == mac.lower()):
            a["t"] = t
            out.append(a)
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ping-stream":
        sys.exit(ping_stream_main(sys.argv[2:]))
    print("usage: vmlib.py ping-stream [--v4 ADDR] [--v6 ADDR] [--interval S] [--out FILE] (a library otherwise)",
          file=sys.stderr)
    sys.exit(2)
