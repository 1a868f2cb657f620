#!/usr/bin/python3
"""Network-namespace test bed for lm-router (issue 3): a library the e2e tests share, and a CLI.

Topology, for a list of sites and hosts (every name below is a network namespace, prefixed with
a per-run prefix `lm<pid>x<rand>-`, so parallel runs never collide):

    host ns (cn, mo1, ...)          fabric ns                AR ns (one per site)       wan ns
    eth0 (MAC, /32 + /128) ---veth--- h<N> on bridge b<S>t<T> ---veth--- acc<T>  [lm-router]
                                      (one bridge per site and tenant)     core0 ---veth--- s<S>a
                                                                           mgmt0 ---veth--- m<S>a -> bridge brm

- Each AR namespace runs one `lm-router` with a net_af_packet vdev on each of its veths
  (acc<T> = access port of tenant T, core0 = core port). mgmt0 is a plain kernel interface
  (management network, for the future DHT); its peers hang on one bridge `brm` in the wan ns.
- The wan ns routes between the ARs' core links (site S: 198.51.100.(16(S-1))/28, AR .+1, wan
  .+14; 2001:db8:100:S::/64, AR ::1, wan ::fe). Management: 198.51.100.192/26 and 2001:db8:ff::/64.
- WAN emulation. This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set), so delay and
  loss are applied by wanrelay.py, a user-space frame relay in the wan ns, inserted (only when a
  site has a delay or a loss) between the AR's link and the wan router / management bridge:
      AR core0 --- s<S>a [wanrelay] s<S>b --- s<S>r (routed)      AR mgmt0 --- m<S>a [wanrelay] m<S>b --- m<S>r on brm
  A site's `delay_ms`/`loss_pct` apply to frames going from the WAN *to* that site (like netem
  on the wan ns's egress toward it), on the core link and on the management link alike, so
  the one-way delay from site A to site B is B's delay_ms. The relay queues without limit: it never
  drops because of the emulation (only the configured loss drops).
- Hosts: eth0 with an explicit MAC, address /32 and /128 (no DAD), a route to the gateway on the
  link and a default route via it (192.0.2.1 / 2001:db8:1::1, MAC 02:00:5e:00:00:01, the same on
  every AR), so every packet goes through the AR. IPv6 stays on in hosts; it is off on every
  interface the routers' DPDK ports use and on the fabric's bridges (no RS/DAD/MLD noise).
- Offloads (tx checksum, TSO, GSO, GRO) are off on every veth and bridge of the test bed.
- Every host is registered like an MO: static_attachments on its AR, static_mappings on every
  other AR (locator family per inner family: Host.outer, e.g. {4: 6, 6: 4} gives 4in6 / 6in4).

Clean-up: Testbed.down() (also from `with Testbed(...)`, atexit and SIGTERM/SIGINT/SIGHUP
handlers) stops the routers (SIGTERM; their final counters are parsed), kills what it started, kills
anything left inside its namespaces, deletes the namespaces (which deletes their veths and
bridges), removes the DPDK runtime directories and the temporary directory, and verifies that
nothing with its prefix remains. `testbed.py gc` removes what a SIGKILLed run left behind.

CLI:  testbed.py up [--sites 2] [--delay MS] [--tenants 1] [--hold]   build a demo topology, print it
      testbed.py gc                                                   clean up leftovers of dead runs
      testbed.py list                                                 show test-bed namespaces
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"   # Debian's python3 (the helpers need only its standard library)
DEFAULT_ROUTER = os.environ.get("LM_ROUTER", os.path.join(REPO, "build", "lm-router"))
DPDK_RUN = "/var/run/dpdk"
# Real-time priority (SCHED_FIFO) for the WAN relay and the fast UDP sender: both sleep between
# frames (a few % of a core) and must not wait behind builds on the shared cores. LM_E2E_RT=0: off.
RT_PRIO = int(os.environ.get("LM_E2E_RT", "20") or 0)
# The routers run at this nice value (they use ~5 % of a core each, idle or at 10,000 packets/s):
# builds and benchmarks sharing the 2 cores must not starve the data plane under test.
# LM_E2E_NICE=0: normal priority.
ROUTER_NICE = int(os.environ.get("LM_E2E_NICE", "-10") or 0)


def rt_prefix() -> list[str]:
    """chrt -f RT_PRIO for small helpers that sleep between events (and must not wait behind builds)."""
    return ["chrt", "-f", str(RT_PRIO)] if RT_PRIO and shutil.which("chrt") else []


def tool_path(name: str, env: str, router: Optional[str] = None) -> str:
    """A binary built with the router (lmctl, lm-wanrelay, lm-udpstream...): $env, else next to
    the router binary (the build directory)."""
    return os.environ.get(env) or os.path.join(os.path.dirname(os.path.abspath(router or DEFAULT_ROUTER)), name)
NS_RE = re.compile(r"^lm(\d+)x([0-9a-z]{4})-")

GW4 = "192.0.2.1"
GW6 = "2001:db8:1::1"
GW_MAC = "02:00:5e:00:00:01"
LM_PORT = 4341

VERBOSE = os.environ.get("LM_E2E_VERBOSE", "") not in ("", "0")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def vlog(msg: str) -> None:
    if VERBOSE:
        log(msg)


class TestbedError(RuntimeError):
    pass


def sh(cmd: list[str], check: bool = True, timeout: float = 30, capture: bool = True) -> subprocess.CompletedProcess:
    vlog("$ " + " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise TestbedError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout or ''}{r.stderr or ''}")
    return r


def wait_for(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TestbedError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Description of a test bed
# ---------------------------------------------------------------------------------------------

@dataclass
class Site:
    """One site: an AR (lm-router) with one access port (and bridge) per tenant."""
    name: str                       # e.g. "s1"; the AR namespace is "<prefix>ar<index>"
    tenants: tuple = (1,)
    delay_ms: float = 0.0           # WAN -> this site, core and management links
    loss_pct: float = 0.0           # WAN -> this site, core and management links
    core_mtu: int = 1600            # >= access_mtu + 72 so 6in6/4in6 of full-size packets fits
    access_mtu: int = 1500
    locator_v4: bool = True
    locator_v6: bool = True
    static_nexthop_mac: bool = False   # False: the router resolves the wan next hop by ARP/ND
    config: dict = field(default_factory=dict)   # deep-merged into the generated YAML
    # filled in by Testbed:
    index: int = 0

    @property
    def ar(self) -> str:
        return f"ar{self.index}"

    @property
    def loc4(self) -> str:
        return f"198.51.100.{16 * (self.index - 1) + 1}"

    @property
    def wan4(self) -> str:
        return f"198.51.100.{16 * (self.index - 1) + 14}"

    @property
    def loc6(self) -> str:
        return f"2001:db8:100:{self.index:x}::1"

    @property
    def wan6(self) -> str:
        return f"2001:db8:100:{self.index:x}::fe"

    @property
    def core_mac(self) -> str:
        return f"02:00:00:64:{self.index:02x}:01"

    @property
    def wan_mac(self) -> str:
        return f"02:00:00:64:{self.index:02x}:fe"

    @property
    def mgmt4(self) -> str:
        return f"198.51.100.{192 + self.index}"

    @property
    def mgmt6(self) -> str:
        return f"2001:db8:ff::{self.index:x}"

    def access_mac(self, tenant: int) -> str:
        return f"02:00:00:a{self.index:x}:{tenant & 0xff:02x}:01"

    def bridge(self, tenant: int) -> str:
        return f"b{self.index}t{tenant}"

    @property
    def relayed(self) -> bool:
        return self.delay_ms > 0 or self.loss_pct > 0

    @property
    def wan_if(self) -> str:
        """The wan ns's routed interface toward this site (capture here to see its core traffic)."""
        return f"s{self.index}r" if self.relayed else f"s{self.index}a"

    @property
    def mgmt_if(self) -> str:
        return f"m{self.index}r" if self.relayed else f"m{self.index}a"


@dataclass
class Host:
    """A host namespace with one interface eth0 on a site's access segment (bridge of its tenant)."""
    name: str                   # namespace suffix, e.g. "cn", "mo1" (<= 8 chars)
    site: str                   # name of the site it starts at
    tenant: int = 1
    v4: Optional[str] = None    # EID, e.g. 192.0.2.10
    v6: Optional[str] = None    # EID, e.g. 2001:db8:1::10
    mo_id: int = 0              # 0: assigned (0x100 + index)
    mac: str = ""               # "": assigned
    outer: dict = field(default_factory=lambda: {4: 4, 6: 6})   # inner family -> locator family
    static_gw_neigh: bool = False   # True: static ARP/ND entry for the gateway instead of ARP/ND
    # filled in by Testbed:
    index: int = 0
    at: str = ""                # site it is attached to now ("" while detached)

    @property
    def eids(self) -> list[str]:
        return [a for a in (self.v4, self.v6) if a]

    @property
    def peer(self) -> str:
        return f"h{self.index}"   # its veth's other end, in the fabric ns


def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))   # a double-quoted YAML string


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for the router configuration (dicts, lists, str, int, bool): no PyYAML
    needed. Lists of scalars and small maps inside lists are written in flow style."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            elif isinstance(v, list) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}\n")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                items = ", ".join(f"{k}: " + (f"[{', '.join(_yaml_scalar(x) for x in w)}]" if isinstance(w, list)
                                              else _yaml_scalar(w)) for k, w in v.items())
                out.append(f"{pad}- {{ {items} }}\n")
            else:
                out.append(f"{pad}- {_yaml_scalar(v)}\n")
    return "".join(out)


def default_sites(n: int = 2, **kw) -> list[Site]:
    return [Site(name=f"s{i + 1}", **kw) for i in range(n)]


def deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ---------------------------------------------------------------------------------------------
# Clean-up machinery shared by every test bed of this process
# ---------------------------------------------------------------------------------------------

_live: list["Testbed"] = []
_handlers_installed = False
_cleaning = False


def _cleanup_all() -> None:
    global _cleaning
    _cleaning = True
    for tb in list(_live):
        try:
            tb.down()
        except Exception as e:  # keep cleaning the others
            print(f"testbed: clean-up error: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    if _cleaning:
        return   # let the clean-up in progress finish
    name = signal.Signals(signum).name
    print(f"\ntestbed: {name} received, cleaning up", file=sys.stderr, flush=True)
    # Raise so that `finally`/`with` blocks run; atexit runs _cleanup_all as the last resort.
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def install_cleanup_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, _on_signal)


def list_netns() -> list[str]:
    r = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill_ns_pids(ns: str, grace: float = 2.0) -> None:
    """Kill every process inside namespace `ns` (all of them were started by a test bed)."""
    def pids():
        r = sh(["ip", "netns", "pids", ns], check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit() and int(p) != os.getpid()]
    ps = pids()
    if not ps:
        return
    for p in ps:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace
    while time.monotonic() < end and any(_pid_alive(p) for p in ps):
        time.sleep(0.05)
    for p in pids():
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gc(verbose: bool = True) -> list[str]:
    """Remove namespaces and DPDK runtime dirs of test-bed runs whose process is dead."""
    removed = []
    for ns in list_netns():
        m = NS_RE.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            _kill_ns_pids(ns, grace=0.5)
            sh(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
    for base in (DPDK_RUN, tempfile.gettempdir()):
        if not os.path.isdir(base):
            continue
        for d in os.listdir(base):
            m = NS_RE.match(d)
            if m and not _pid_alive(int(m.group(1))) and not os.path.exists(os.path.join(base, d, "KEPT")):
                shutil.rmtree(os.path.join(base, d), ignore_errors=True)
                removed.append(os.path.join(base, d))
    if verbose and removed:
        log(f"gc: removed leftovers of dead runs: {' '.join(removed)}")
    return removed


def leftovers(prefix: str) -> list[str]:
    """Anything of test bed `prefix` still present: namespaces, DPDK runtime dirs, processes."""
    out = [f"netns {n}" for n in list_netns() if n.startswith(prefix)]
    if os.path.isdir(DPDK_RUN):
        out += [f"dpdk runtime dir {d}" for d in os.listdir(DPDK_RUN) if d.startswith(prefix)]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if prefix in cmd and int(pid) != os.getpid():
            out.append(f"process {pid}: {cmd[:120]}")
    return out


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

class Proc:
    """A process started by the test bed (usually inside a namespace), with its output in files."""

    def __init__(self, tb: "Testbed", name: str, argv: list[str], ns: Optional[str] = None,
                 stdout_pipe: bool = False, stdin_pipe: bool = False):
        self.name = name
        self.argv = (["ip", "netns", "exec", ns] if ns else []) + argv
        self.out_path = os.path.join(tb.tmp, f"{name}.out")
        self.err_path = os.path.join(tb.tmp, f"{name}.err")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        vlog("& " + " ".join(self.argv))
        # Own session: a Ctrl-C on the terminal reaches the test only; the test bed stops its
        # processes itself, in order (routers get SIGTERM and print their final counters).
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE if stdout_pipe else self._out,
                                  stderr=self._err, start_new_session=True, text=True, bufsize=1)
        self.pid = self.p.pid
        tb._procs.append(self)

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 5.0) -> Optional[int]:
        for f in (self.p.stdin, self.p.stdout):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
            except ProcessLookupError:
                pass
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        return self.p.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        try:
            rc = self.p.wait(timeout)
        finally:
            if self.p.poll() is not None:
                for f in (self._out, self._err):
                    if not f.closed:
                        f.close()
        return rc

    def stdout(self) -> str:
        with open(self.out_path) as f:
            return f.read()

    def stderr(self) -> str:
        with open(self.err_path) as f:
            return f.read()

    def tail(self, lines: int) -> str:
        """The last `lines` lines of stderr, indented for a log message."""
        return "\n    ".join(self.stderr().splitlines()[-lines:])


class Router(Proc):
    def __init__(self, tb: "Testbed", site: Site, argv: list[str], file_prefix: str, config_path: str):
        super().__init__(tb, f"router-{site.ar}", argv, ns=tb.ns(site.ar))
        self.site = site
        self.file_prefix = file_prefix
        self.config_path = config_path
        self.final_counters: Optional[dict] = None
        self.exit_code: Optional[int] = None

    def running(self) -> bool:
        return " running: " in self.stderr()

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
        rc = super().stop(sig, timeout)
        self.exit_code = rc
        m = re.search(r"final counters: (\{.*\})", self.stderr())
        if m:
            try:
                self.final_counters = json.loads(m.group(1))
            except ValueError:
                pass
        return rc

    def telemetry(self, cmd: str, timeout: float = 2.0):
        """One rte_telemetry command (e.g. "/lm/stats", "/lm/port,0"); returns the reply's value."""
        path = os.path.join(DPDK_RUN, self.file_prefix, "dpdk_telemetry.v2")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        try:
            s.connect(path)
            s.recv(65536)   # greeting: version, pid, max_output_len
            s.send(cmd.encode())
            reply = json.loads(s.recv(65536).decode())
        finally:
            s.close()
        return reply.get(cmd.split(",")[0])


class LineProc(Proc):
    """A helper that takes one command per line on stdin and answers with lines on stdout
    (linkmover.py, announce.py --wait): started ahead of time so a step costs no process start."""

    def __init__(self, tb: "Testbed", name: str, argv: list[str], ns: Optional[str] = None, ready: str = "ready"):
        super().__init__(tb, name, argv, ns=ns, stdout_pipe=True, stdin_pipe=True)
        line = self.readline(10)
        if line.strip() != ready:
            raise TestbedError(f"{name} did not start ({line!r}): {self.stderr()[-500:]}")

    def readline(self, timeout: float) -> str:
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            raise TestbedError(f"{self.name}: no answer within {timeout} s: {self.stderr()[-500:]}")
        line = self.p.stdout.readline()
        if not line:
            raise TestbedError(f"{self.name} exited ({self.p.poll()}): {self.stderr()[-500:]}")
        return line

    def send(self, line: str) -> None:
        self.p.stdin.write(line.rstrip("\n") + "\n")
        self.p.stdin.flush()

    def ask(self, line: str, timeout: float = 10) -> dict:
        self.send(line)
        return json.loads(self.readline(timeout))


# ---------------------------------------------------------------------------------------------
# Captures (dumpcap in a namespace, classic pcap; parsed without scapy)
# ---------------------------------------------------------------------------------------------

class Capture:
    def __init__(self, tb: "Testbed", ns_key: str, iface: str, bpf: str = "", snaplen: int = 256):
        self.tb = tb
        self.path = os.path.join(tb.tmp, f"cap-{ns_key}-{iface}-{len(tb._procs)}.pcap")
        argv = ["dumpcap", "-q", "-P", "-i", iface, "-s", str(snaplen), "-w", self.path]
        if bpf:
            argv += ["-f", bpf]
        self.proc = Proc(tb, f"dumpcap-{ns_key}-{iface}-{len(tb._procs)}", argv, ns=tb.ns(ns_key))
        wait_for(lambda: "Capturing on" in self.proc.stderr() or not self.proc.alive(), 10, what=f"dumpcap on {iface}")
        if not self.proc.alive():
            raise TestbedError(f"dumpcap on {ns_key}/{iface} failed: {self.proc.stderr()}")
        self._frames = None

    def stop(self) -> list[bytes]:
        if self._frames is None:
            # dumpcap reads with a 250 ms timeout (TPACKET_V3 blocks are handed over when full or after
            # it) and drops a partly filled block on SIGINT: wait longer than that.
            time.sleep(0.3)
            self.proc.stop(signal.SIGINT)
            self._frames = read_pcap(self.path)
        return self._frames

    @property
    def frames(self) -> list[bytes]:
        return self.stop()

    def frames_ts(self) -> list[tuple[float, bytes]]:
        """(capture time, frame) pairs; stops the capture if it still runs."""
        self.stop()
        return read_pcap_ts(self.path)


def read_pcap(path: str) -> list[bytes]:
    return [fr for _, fr in read_pcap_ts(path)]


def read_pcap_ts(path: str) -> list[tuple[float, bytes]]:
    """Frames of a classic pcap file with their capture time (Unix seconds, float)."""
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return out
    if len(data) < 24:
        return out
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        out.append((sec + frac / (1e9 if nano else 1e6), data[off:off + incl]))
        off += incl
    return out


def _ip_str(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(b) == 4 else socket.AF_INET6, b)


def parse_ip(pkt: bytes) -> Optional[dict]:
    """Parse an IPv4/IPv6 packet (no Ethernet header): family, src, dst, proto, l4 bytes, sport/dport."""
    if not pkt:
        return None
    v = pkt[0] >> 4
    if v == 4 and len(pkt) >= 20:
        ihl = (pkt[0] & 0xF) * 4
        d = {"family": 4, "src": _ip_str(pkt[12:16]), "dst": _ip_str(pkt[16:20]), "proto": pkt[9],
             "ttl": pkt[8], "df": bool(pkt[6] & 0x40), "len": struct.unpack("!H", pkt[2:4])[0], "l4": pkt[ihl:]}
    elif v == 6 and len(pkt) >= 40:
        d = {"family": 6, "src": _ip_str(pkt[8:24]), "dst": _ip_str(pkt[24:40]), "proto": pkt[6],
             "ttl": pkt[7], "df": True, "len": 40 + struct.unpack("!H", pkt[4:6])[0], "l4": pkt[40:]}
    else:
        return None
    if d["proto"] in (6, 17) and len(d["l4"]) >= 4:
        d["sport"], d["dport"] = struct.unpack("!HH", d["l4"][:4])
    return d


def parse_frame(fr: bytes) -> Optional[dict]:
    """Parse an Ethernet frame; for LM packets (UDP dport 4341) add an 'lm' dict and 'inner'."""
    if len(fr) < 14:
        return None
    et = struct.unpack("!H", fr[12:14])[0]
    off = 14
    if et == 0x8100 and len(fr) >= 18:
        et = struct.unpack("!H", fr[16:18])[0]
        off = 18
    d = {"dst_mac": fr[0:6].hex(":"), "src_mac": fr[6:12].hex(":"), "ethertype": et}
    if et not in (0x0800, 0x86DD):
        return d
    ip = parse_ip(fr[off:])
    if not ip:
        return d
    d["ip"] = ip
    if ip["proto"] == 17 and ip.get("dport") == LM_PORT and len(ip["l4"]) >= 8 + 24:
        h = ip["l4"][8:32]
        d["lm"] = {"version": h[0] >> 4, "flags": h[0] & 0xF, "type": h[1], "next": h[2],
                   "tenant": int.from_bytes(h[4:7], "big"), "mo_id": int.from_bytes(h[8:16], "big"),
                   "epoch": int.from_bytes(h[16:24], "big"), "sport": ip["sport"]}
        d["inner"] = parse_ip(ip["l4"][32:])
    return d


def lm_packets(frames: list[bytes]) -> list[dict]:
    out = []
    for fr in frames:
        d = parse_frame(fr)
        if d and "lm" in d:
            out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# The test bed
# ---------------------------------------------------------------------------------------------

class Testbed:
    def __init__(self, sites: list[Site], hosts: list[Host], router: str = DEFAULT_ROUTER,
                 workers: int = 1, idle_backoff_us: int = 100, log_level: str = "info",
                 mobile_prefixes: Optional[list] = None, mgmt: bool = True, keep_tmp: bool = False,
                 mem_mb: int = 128, name: str = "tb",
                 af_packet_frames: int = int(os.environ.get("LM_E2E_AF_PACKET_FRAMES", "4096"))):
        install_cleanup_handlers()
        self.sites = sites
        self.hosts = hosts
        self.router = router
        self.workers = workers
        self.idle_backoff_us = idle_backoff_us
        self.log_level = log_level
        self.mobile_prefixes = mobile_prefixes if mobile_prefixes is not None else ["192.0.2.0/24", "2001:db8:1::/64"]
        self.mgmt = mgmt
        self.keep_tmp = keep_tmp or os.environ.get("LM_E2E_KEEP", "") not in ("", "0")
        self.mem_mb = mem_mb
        # AF_PACKET ring of each router port, in frames (the PMD's default is 512): like a NIC's
        # descriptor ring, it must absorb a burst (e.g. an old AR releasing ~1,000 held packets at
        # once) while the worker, sharing a core, is not polling. 0: the PMD's default.
        self.af_packet_frames = af_packet_frames
        rand = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(4))
        self.prefix = f"lm{os.getpid()}x{rand}-"
        self.tmp = tempfile.mkdtemp(prefix=f"{self.prefix}{name}-")
        self._procs: list[Proc] = []
        self.routers: dict[str, Router] = {}
        self.relay: Optional[Proc] = None
        self.relay_impl = ""
        self._mover: Optional[LineProc] = None
        self._announcers: dict[str, LineProc] = {}
        self._namespaces: list[str] = []
        self._up = False
        self._down = False
        self.final_counters: dict[str, dict] = {}
        self._relay_stats: Optional[dict] = None
        self.leftovers: list[str] = []
        for i, s in enumerate(sites):
            s.index = i + 1
        names = set()
        for i, h in enumerate(hosts):
            h.index = i + 1
            if h.name in names or len(h.name) > 10:
                raise TestbedError(f"host name '{h.name}' duplicate or too long")
            names.add(h.name)
            if not h.mo_id:
                h.mo_id = 0x100 + h.index
            if not h.mac:
                h.mac = f"02:00:00:{h.tenant & 0xff:02x}:{h.index:02x}:10"
            h.at = h.site
            if self.site(h.site) is None:
                raise TestbedError(f"host {h.name}: no site '{h.site}'")
            if h.tenant not in self.site(h.site).tenants:
                raise TestbedError(f"host {h.name}: site {h.site} has no access port for tenant {h.tenant}")
        _live.append(self)

    # -- lookup helpers --------------------------------------------------------------------
    def site(self, name: str) -> Optional[Site]:
        for s in self.sites:
            if s.name == name or s.ar == name:
                return s
        return None

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def ns(self, key: str) -> str:
        return self.prefix + key

    # -- running commands ------------------------------------------------------------------
    def run(self, key: str, argv: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run argv inside namespace `key` ("wan", "fab", "ar1", or a host name)."""
        return sh(["ip", "netns", "exec", self.ns(key)] + argv, check=check, timeout=timeout)

    def ip(self, key: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(["ip", "-n", self.ns(key)] + list(args), check=check)

    def spawn(self, key: str, argv: list[str], name: Optional[str] = None, stdout_pipe: bool = False) -> Proc:
        return Proc(self, name or f"{key}-{os.path.basename(argv[0])}-{len(self._procs)}", argv, ns=self.ns(key),
                    stdout_pipe=stdout_pipe)

    def sysctl(self, key: str, *settings: str) -> None:
        self.run(key, ["sysctl", "-q", "-w"] + list(settings))

    # -- building --------------------------------------------------------------------------
    def _add_ns(self, key: str) -> None:
        n = self.ns(key)
        self._namespaces.append(n)   # first: a signal right after the add must not leak it
        sh(["ip", "netns", "add", n])
        self.ip(key, "link", "set", "lo", "up")

    def _veth(self, ns_a: str, a: str, ns_b: str, b: str, mtu: int, mac_a: str = "", mac_b: str = "") -> None:
        args = ["link", "add", a]
        if mac_a:
            args += ["address", mac_a]
        args += ["mtu", str(mtu), "type", "veth", "peer", "name", b]
        if mac_b:
            args += ["address", mac_b]
        args += ["mtu", str(mtu), "netns", self.ns(ns_b)]
        self.ip(ns_a, *args)

    def _no_offload(self, key: str, dev: str) -> None:
        self.run(key, ["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"])

    def _no_ipv6(self, key: str, dev: str) -> None:
        self.sysctl(key, f"net.ipv6.conf.{dev}.disable_ipv6=1")

    def up(self) -> "Testbed":
        t0 = time.monotonic()
        log(f"testbed {self.prefix}: {len(self.sites)} site(s), {len(self.hosts)} host(s), tmp {self.tmp}")
        try:
            self._build()
            self._start_relay()
            self._start_routers()
        except BaseException:
            self.down()
            raise
        self._up = True
        log(f"testbed {self.prefix}: up in {time.monotonic() - t0:.1f} s")
        return self

    def __enter__(self) -> "Testbed":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def _build(self) -> None:
        if not os.access(self.router, os.X_OK):
            raise TestbedError(f"router binary not found: {self.router} (build it: ninja -C build)")
        # Namespaces. The fabric ns has IPv6 off everywhere (pure L2); the AR namespaces have it off
        # by default (DPDK ports must stay silent) and on only on the management interface.
        for key in ["wan", "fab"] + [s.ar for s in self.sites] + [h.name for h in self.hosts]:
            self._add_ns(key)
        self.sysctl("fab", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        for s in self.sites:
            self.sysctl(s.ar, "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=0")
        self.sysctl("wan", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        if self.mgmt:
            self.ip("wan", "link", "add", "brm", "type", "bridge", "stp_state", "0", "forward_delay", "0",
                    "mcast_snooping", "0")
            self.ip("wan", "link", "set", "brm", "up")
            self._no_offload("wan", "brm")
            self._no_ipv6("wan", "brm")

        for s in self.sites:
            # access segments: one bridge per tenant in the fabric ns, one router port each
            for t in s.tenants:
                br = s.bridge(t)
                self.ip("fab", "link", "add", br, "mtu", str(s.access_mtu), "type", "bridge", "stp_state", "0",
                        "forward_delay", "0", "mcast_snooping", "0")
                self._veth(s.ar, f"acc{t}", "fab", f"r{s.index}t{t}", s.access_mtu, mac_a=s.access_mac(t))
                self.ip("fab", "link", "set", f"r{s.index}t{t}", "master", br)
                self._no_ipv6(s.ar, f"acc{t}")   # (the fabric ns has IPv6 off altogether)
                for key, dev in ((s.ar, f"acc{t}"), ("fab", f"r{s.index}t{t}"), ("fab", br)):
                    self._no_offload(key, dev)
                    self.ip(key, "link", "set", dev, "up")
            # core link (and the relay's second veth when the site has a delay or a loss)
            self._veth(s.ar, "core0", "wan", f"s{s.index}a", s.core_mtu, mac_a=s.core_mac,
                       mac_b="" if s.relayed else s.wan_mac)
            self._no_ipv6(s.ar, "core0")
            for key, dev in ((s.ar, "core0"), ("wan", f"s{s.index}a")):
                self._no_offload(key, dev)
                self.ip(key, "link", "set", dev, "up")
            if s.relayed:
                self._veth("wan", f"s{s.index}b", "wan", f"s{s.index}r", s.core_mtu, mac_b=s.wan_mac)
                for dev in (f"s{s.index}a", f"s{s.index}b"):
                    self._no_ipv6("wan", dev)
                    # relay ports only: no ARP, or the wan ns's kernel answers the AR's ARP request
                    # for the wan address on s<S>a itself (weak host model), undelayed
                    self.ip("wan", "link", "set", dev, "promisc", "on", "arp", "off")
                for dev in (f"s{s.index}b", f"s{s.index}r"):
                    self._no_offload("wan", dev)
                    self.ip("wan", "link", "set", dev, "up")
            r = s.wan_if
            self.ip("wan", "addr", "add", f"{s.wan4}/28", "dev", r)
            self.ip("wan", "addr", "add", f"{s.wan6}/64", "dev", r, "nodad")
            # management link (kernel interface in the AR ns, for the DHT)
            if self.mgmt:
                self._veth(s.ar, "mgmt0", "wan", f"m{s.index}a", 1500, mac_a=f"02:00:00:ff:{s.index:02x}:01")
                self.sysctl(s.ar, "net.ipv6.conf.mgmt0.disable_ipv6=0", "net.ipv6.conf.mgmt0.accept_dad=0")
                self._no_offload(s.ar, "mgmt0")
                self.ip(s.ar, "link", "set", "mgmt0", "up")
                self.ip(s.ar, "addr", "add", f"{s.mgmt4}/26", "dev", "mgmt0")
                self.ip(s.ar, "addr", "add", f"{s.mgmt6}/64", "dev", "mgmt0", "nodad")
                devs = [f"m{s.index}a"]
                if s.relayed:
                    self._veth("wan", f"m{s.index}b", "wan", f"m{s.index}r", 1500)
                    devs += [f"m{s.index}b", f"m{s.index}r"]
                for dev in devs:
                    self._no_offload("wan", dev)
                    self._no_ipv6("wan", dev)
                    self.ip("wan", "link", "set", dev, "up")
                self.ip("wan", "link", "set", s.mgmt_if, "master", "brm")
                if s.relayed:
                    for dev in (f"m{s.index}a", f"m{s.index}b"):
                        self.ip("wan", "link", "set", dev, "promisc", "on", "arp", "off")

        for h in self.hosts:
            s = self.site(h.site)
            self._veth(h.name, "eth0", "fab", h.peer, s.access_mtu, mac_a=h.mac)
            self.sysctl(h.name, "net.ipv6.conf.eth0.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            self._no_offload(h.name, "eth0")
            self._no_offload("fab", h.peer)
            self.ip("fab", "link", "set", h.peer, "master", s.bridge(h.tenant))
            self.ip("fab", "link", "set", h.peer, "up")
            self.ip(h.name, "link", "set", "eth0", "up")
            if h.v4:
                self.ip(h.name, "addr", "add", f"{h.v4}/32", "dev", "eth0")
                self.ip(h.name, "route", "add", GW4, "dev", "eth0")
                self.ip(h.name, "route", "add", "default", "via", GW4, "dev", "eth0")
                if h.static_gw_neigh:
                    self.ip(h.name, "neigh", "replace", GW4, "lladdr", GW_MAC, "dev", "eth0", "nud", "permanent")
            if h.v6:
                self.ip(h.name, "addr", "add", f"{h.v6}/128", "dev", "eth0", "nodad")
                self.ip(h.name, "-6", "route", "add", GW6, "dev", "eth0")
                self.ip(h.name, "-6", "route", "add", "default", "via", GW6, "dev", "eth0")
                if h.static_gw_neigh:
                    self.ip(h.name, "-6", "neigh", "replace", GW6, "lladdr", GW_MAC, "dev", "eth0", "nud", "permanent")

    def _start_relay(self) -> None:
        links = []
        for s in self.sites:
            if not s.relayed:
                continue
            # a -> b: from the AR to the wan (no delay); b -> a: from the wan to the AR (delay, loss)
            for kind in ("s", "m") if self.mgmt else ("s",):
                links.append(f"{kind}{s.index}a,{kind}{s.index}b,0,{s.delay_ms},0,{s.loss_pct}")
        if not links:
            return
        fast = tool_path("lm-wanrelay", "LM_WANRELAY", self.router)
        if os.access(fast, os.X_OK) and os.environ.get("LM_E2E_PY_RELAY", "") in ("", "0"):
            argv = [fast] + (["--rt", str(RT_PRIO)] if RT_PRIO else [])
            self.relay_impl = "lm-wanrelay"
        else:
            argv = [PY, os.path.join(HERE, "wanrelay.py")]
            self.relay_impl = "wanrelay.py"
        for l in links:
            argv += ["--link", l]
        self.relay = self.spawn("wan", argv, name="wanrelay")
        wait_for(lambda: "ready" in self.relay.stdout() or not self.relay.alive(), 10, what="wanrelay")
        if not self.relay.alive():
            raise TestbedError(f"wanrelay failed: {self.relay.stderr()}")

    def router_config(self, s: Site) -> dict:
        ports = []
        for t in s.tenants:
            ports.append({"name": f"access_t{t}", "device": f"net_af_packet{len(ports)}", "role": "access",
                          "tenant": t, "mtu": s.access_mtu})
        ports.append({"name": "core", "device": f"net_af_packet{len(ports)}", "role": "core", "mtu": s.core_mtu})
        nh = {}
        loc = {}
        if s.locator_v4:
            loc["v4"] = s.loc4
            nh["ipv4"] = s.wan4
        if s.locator_v6:
            loc["v6"] = s.loc6
            nh["ipv6"] = s.wan6
        if s.static_nexthop_mac:
            nh["mac"] = s.wan_mac
        mappings, attachments = [], []
        for h in self.hosts:
            hs = self.site(h.site)
            if hs is s:
                attachments.append({"tenant": h.tenant, "mo_id": h.mo_id, "eids": h.eids, "mac": h.mac,
                                    "port": f"access_t{h.tenant}"})
                continue
            for eid in h.eids:
                fam = 6 if ":" in eid else 4
                ofam = h.outer.get(fam, fam)
                locator = hs.loc6 if ofam == 6 else hs.loc4
                mappings.append({"tenant": h.tenant, "eid": eid, "mo_id": h.mo_id, "locator": locator, "epoch": 1})
        cfg = {
            "router": {"name": s.ar, "workers": self.workers, "idle_backoff_us": self.idle_backoff_us,
                       "udp_port": LM_PORT, "log_level": self.log_level},
            "locators": loc,
            "gateway": {"ipv4": GW4, "ipv6": GW6, "mac": GW_MAC},
            "ports": ports,
            "core": {"port": "core", "next_hop": nh},
            "mobile_prefixes": list(self.mobile_prefixes),
            "peer_prefixes": ["198.51.100.0/25", "2001:db8:100::/48"],
            "static_mappings": mappings,
            "static_attachments": attachments,
        }
        return deep_merge(cfg, s.config)

    def _lcores(self, s: Site) -> str:
        # Main lcore (control plane) and the workers on the 2 real cores; alternate per router so
        # two routers' busy workers do not land on the same core.
        ncpu = os.cpu_count() or 1
        a, b = (0, 1) if s.index % 2 else (1, 0)
        if ncpu < 2:
            a = b = 0
        cores = [a] + [b if w % 2 == 0 else a for w in range(self.workers)]
        return ",".join(f"{i}@{c}" for i, c in enumerate(cores))

    def _start_routers(self) -> None:
        for s in self.sites:
            cfg = self.router_config(s)
            path = os.path.join(self.tmp, f"{s.ar}.yaml")
            with open(path, "w") as f:
                f.write(f"# generated by test/e2e/testbed.py for {self.prefix}{s.ar}\n")
                f.write(to_yaml(cfg))
            fp = self.ns(s.ar)
            argv = (["nice", "-n", str(ROUTER_NICE)] if ROUTER_NICE else []) + [
                    self.router, "--no-pci", "--no-huge", "-m", str(self.mem_mb), "--file-prefix", fp,
                    "--lcores", self._lcores(s), "--log-level=lib.eal:error"]
            for i, p in enumerate(cfg["ports"]):
                dev = f"acc{p['tenant']}" if p["role"] == "access" else "core0"
                qp = f",qpairs={self.workers}" if self.workers > 1 else ""
                if self.af_packet_frames:
                    qp += f",framecnt={self.af_packet_frames}"
                argv += ["--vdev", f"{p['device']},iface={dev}{qp}"]
            argv += ["--", "--config", path]
            self.routers[s.ar] = Router(self, s, argv, fp, path)
        for ar, r in self.routers.items():
            try:
                wait_for(lambda: r.running() or not r.alive(), 45, what=f"{ar} to run")
            except TestbedError:
                raise TestbedError(f"{ar} did not start:\n{r.stderr()[-3000:]}")
            if not r.alive():
                raise TestbedError(f"{ar} exited ({r.p.returncode}):\n{r.stderr()[-3000:]}")
        # Wait for next-hop resolution (ARP/ND of the wan address), so tests start on a ready path.
        for ar, r in self.routers.items():
            try:
                wait_for(lambda: self._nexthop_ready(r), 10, 0.1, what=f"{ar} next hop resolution")
            except TestbedError:
                raise TestbedError(f"{ar}: core next hop not resolved: {self._nexthop_state(r)}")
        log(f"testbed {self.prefix}: routers running, next hops resolved")

    def _nexthop_state(self, r: Router):
        try:
            return r.telemetry("/lm/nexthop")
        except (OSError, ValueError) as e:
            return f"telemetry error: {e}"

    def _nexthop_ready(self, r: Router) -> bool:
        st = self._nexthop_state(r)
        return isinstance(st, dict) and bool(st) and all("unresolved" not in v for v in st.values())

    # -- tearing down ----------------------------------------------------------------------
    def stop_routers(self) -> dict[str, dict]:
        for ar, r in self.routers.items():
            if r.final_counters is None and r.exit_code is None:
                was_alive = r.alive()
                rc = r.stop()
                if r.final_counters is not None:
                    self.final_counters[ar] = r.final_counters
                if rc != 0 or r.final_counters is None or not was_alive:
                    log(f"{ar}: {'died before the end of the test, ' if not was_alive else ''}exit status {rc}, "
                        f"{'no ' if r.final_counters is None else ''}final counters; last log lines:\n    {r.tail(15)}")
                vlog(f"{ar} exited with {rc}")
        return self.final_counters

    def down_checked(self, res: "Results", name: str = "test bed removed without leftovers") -> None:
        """down(), then one check that nothing with this run's prefix remains."""
        self.down()
        res.check(name, not self.leftovers, f"{self.leftovers}")

    def down(self) -> None:
        if self._down:
            return
        global _cleaning
        was_cleaning = _cleaning
        _cleaning = True   # a second signal does not interrupt the clean-up
        try:
            try:
                self.stop_routers()
            except Exception as e:
                print(f"testbed: stopping routers: {e}", file=sys.stderr)
            for p in reversed(self._procs):
                try:
                    p.stop(timeout=3)
                except Exception:
                    pass
            try:
                self.relay_stats()
            except Exception:
                pass
            for n in self._namespaces:
                _kill_ns_pids(n, grace=1.0)
            for n in self._namespaces:
                sh(["ip", "netns", "del", n], check=False)
            if os.path.isdir(DPDK_RUN):
                for d in os.listdir(DPDK_RUN):
                    if d.startswith(self.prefix):
                        shutil.rmtree(os.path.join(DPDK_RUN, d), ignore_errors=True)
            left = leftovers(self.prefix)
            if left:
                print(f"testbed {self.prefix}: LEFT BEHIND: {left}", file=sys.stderr)
            self.leftovers = left
            if not self.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                with open(os.path.join(self.tmp, "KEPT"), "w") as f:   # testbed.py gc leaves it alone
                    f.write("LM_E2E_KEEP\n")
                log(f"testbed {self.prefix}: kept {self.tmp}")
            self._down = True
            if self in _live:
                _live.remove(self)
            if self._up:
                log(f"testbed {self.prefix}: down{' (clean)' if not left else ' WITH LEFTOVERS'}")
        finally:
            _cleaning = was_cleaning

    def relay_stats(self) -> dict:
        """Per-direction counters of the WAN emulator (after it stopped): rx, tx, lost, tx_err."""
        if self._relay_stats is None and self.relay is not None and not self.relay.alive():
            m = re.search(r"^(\{.*\})$", self.relay.stderr(), re.M)
            self._relay_stats = json.loads(m.group(1)) if m else {}
        return self._relay_stats or {}

    # -- primitives for tests --------------------------------------------------------------
    def add_mgmt_node(self, key: str, index: int) -> tuple[str, str]:
        """A namespace `key` with one kernel interface mgmt0 on the management bridge (after up()):
        198.51.100.(192+index)/26 and 2001:db8:ff::<index>/64, e.g. for an extra DHT node (a rogue
        publisher). index must not be a site's index (sites use 1..N). Its frames toward a
        site cross that site's relay (delay/loss) like the other management traffic. Removed by
        down() with the other namespaces. Returns (v4, v6)."""
        if not self.mgmt:
            raise TestbedError("add_mgmt_node needs the management network (mgmt=True)")
        if index < 1 or index > 62 or any(s.index == index for s in self.sites):
            raise TestbedError(f"add_mgmt_node: index {index} is taken or out of 1..62")
        v4, v6 = f"198.51.100.{192 + index}", f"2001:db8:ff::{index:x}"
        self._add_ns(key)
        peer = f"mx{index}"
        self._veth(key, "mgmt0", "wan", peer, 1500, mac_a=f"02:00:00:ff:{index:02x}:01")
        self.sysctl(key, "net.ipv6.conf.mgmt0.accept_dad=0")
        self._no_offload(key, "mgmt0")
        self._no_offload("wan", peer)
        self._no_ipv6("wan", peer)
        self.ip(key, "link", "set", "mgmt0", "up")
        self.ip(key, "addr", "add", f"{v4}/26", "dev", "mgmt0")
        self.ip(key, "addr", "add", f"{v6}/64", "dev", "mgmt0", "nodad")
        self.ip("wan", "link", "set", peer, "master", "brm")
        self.ip("wan", "link", "set", peer, "up")
        return v4, v6

    def capture(self, key: str, iface: str, bpf: str = "", snaplen: int = 256) -> Capture:
        return Capture(self, key, iface, bpf, snaplen)

    def capture_wan(self, site: str, bpf: str = "", snaplen: int = 256) -> Capture:
        s = self.site(site)
        return self.capture("wan", s.wan_if, bpf, snaplen)

    def detach(self, host: str) -> None:
        h = self.host(host)
        self.ip("fab", "link", "set", h.peer, "nomaster")
        h.at = ""

    def attach(self, host: str, site: str) -> None:
        h = self.host(host)
        s = self.site(site)
        self.ip("fab", "link", "set", h.peer, "master", s.bridge(h.tenant))
        h.at = s.name

    def move(self, host: str, site: str, detach_ms: float = 0, announce: bool = True) -> dict:
        """Move a host's link to another site's bridge (same tenant) inside the fabric ns: the
        host's eth0 stays up (no carrier loss). Detached for detach_ms (the stop-and-copy
        phase), then attached; then a gratuitous ARP and an unsolicited NA from the host, as a
        hypervisor sends them. Returns timestamps (time.monotonic()) of each step."""
        t = {"detach": time.monotonic()}
        self.detach(host)
        if detach_ms > 0:
            time.sleep(detach_ms / 1000.0)
        t["attach"] = time.monotonic()
        self.attach(host, site)
        if announce:
            self.announce(host)
            t["announced"] = time.monotonic()
        return t

    def announce(self, host: str, count: int = 1, interval: float = 0.05) -> None:
        """Gratuitous ARP (request, sender = target = EID, broadcast) and unsolicited NA (to
        ff02::1, O flag, target link-layer option) from the host's eth0, as a hypervisor sends
        them after a migration; announce.py (plain AF_PACKET socket, fast to start) in its namespace."""
        h = self.host(host)
        argv = [PY, os.path.join(HERE, "announce.py"), "--iface", "eth0", "--mac", h.mac, "--count", str(count),
                "--interval", str(interval)]
        if h.v4:
            argv += ["--v4", h.v4]
        if h.v6:
            argv += ["--v6", h.v6]
        self.run(h.name, argv, timeout=30)

    def prepare_move(self, host: str, announce_count: int = 1, announce_interval: float = 0.05) -> None:
        """Start the helpers a timed move uses (once): linkmover.py in the fabric ns and an
        announcer (announce.py --wait) in the host's ns, so that move_host() starts no process."""
        if self._mover is None or not self._mover.alive():
            self._mover = LineProc(self, "linkmover", rt_prefix() + [PY, os.path.join(HERE, "linkmover.py")],
                                   ns=self.ns("fab"))
        a = self._announcers.get(host)
        if a is None or not a.alive():
            h = self.host(host)
            argv = rt_prefix() + [PY, os.path.join(HERE, "announce.py"), "--iface", "eth0", "--mac", h.mac, "--count",
                    str(announce_count), "--interval", str(announce_interval), "--wait"]
            if h.v4:
                argv += ["--v4", h.v4]
            if h.v6:
                argv += ["--v6", h.v6]
            self._announcers[host] = LineProc(self, f"announcer-{host}", argv, ns=self.ns(h.name))

    def move_host(self, host: str, site: str, detach_ms: float = 0, announce: bool = True) -> dict:
        """A timed migration of a host's link (what a hypervisor's stop-and-copy looks like from
        the network): its fabric-side veth leaves its bridge, detach_ms pass, it joins the bridge
        of `site` (same tenant), then (announce=True) the host sends a gratuitous ARP and an
        unsolicited NA. Inside the fabric ns, by rtnetlink: the host's eth0 stays up (no carrier
        loss, no DAD). Returns the time of each step right after the kernel did it, as
        {"leave": {"mono", "real"}, "join": {...}, "announce": {...}, "detached_ms": X}
        (mono = time.monotonic(), real = time.time(), the clock of kernel packet timestamps)."""
        h = self.host(host)
        s = self.site(site)
        self.prepare_move(host)
        r = self._mover.ask(f"move {h.peer} {s.bridge(h.tenant)} {detach_ms}", timeout=10 + detach_ms / 1000)
        if not r.get("ok"):
            raise TestbedError(f"move {host} -> {site}: {r.get('error')}")
        h.at = s.name
        if announce:
            a = self._announcers[host].ask("announce", timeout=10)
            r["announce"] = {"mono": a["mono"], "real": a["sent"]}
        return r

    def carrier_changes(self, host: str) -> int:
        r = self.run(host, ["cat", "/sys/class/net/eth0/carrier_changes"])
        return int(r.stdout.strip())

    # -- traffic helpers -------------------------------------------------------------------
    def ping(self, host: str, dst: str, count: int = 5, interval: float = 0.1, size: int = 56,
             df: bool = False, timeout: float = 1.0, ttl: Optional[int] = None) -> dict:
        # pyping.py: iputils-like output, no dependency on iputils-ping (not installed here)
        argv = [PY, os.path.join(HERE, "pyping.py"), "-c", str(count), "-i", str(interval), "-s", str(size),
                "-W", str(timeout)]
        if ":" in dst:
            argv.insert(2, "-6")
        if df:
            argv += ["-M", "do"]
        if ttl:
            argv += ["-t", str(ttl)]
        r = self.run(host, argv + [dst], check=False, timeout=count * interval + timeout + 30)
        return parse_ping(r.stdout + r.stderr, r.returncode)

    def udp_stream(self, src: str, dst: str, dst_addr: str, port: int, count: int = 200, rate: float = 200,
                   size: int = 200, idle: float = 1.0, fast: bool = False) -> "UdpStream":
        """fast=True: lm-udpstream (C++: paced to the microsecond, kernel receive timestamps, the
        largest gaps with their times) instead of udpstream.py; needed from ~1,000 datagrams/s."""
        return UdpStream(self, src, dst, dst_addr, port, count, rate, size, idle, fast)

    def iperf_server(self, host: str, port: int = 5201) -> Proc:
        p = self.spawn(host, ["iperf3", "-s", "-p", str(port)], name=f"iperf3-s-{host}-{port}")

        def listening():
            r = self.run(host, ["ss", "-Hltn", f"sport = :{port}"], check=False)
            return bool(r.stdout.strip()) or not p.alive()
        wait_for(listening, 10, what=f"iperf3 server in {host}")
        return p

    def iperf_client(self, host: str, dst: str, port: int = 5201, rate: str = "10M", secs: float = 3,
                     reverse: bool = False) -> Proc:
        argv = ["iperf3", "-c", dst, "-p", str(port), "-b", rate, "-t", str(secs), "--json"]
        if reverse:
            argv.append("-R")
        return self.spawn(host, argv, name=f"iperf3-c-{host}-{port}{'-R' if reverse else ''}")


def parse_ping(out: str, rc: int) -> dict:
    d = {"rc": rc, "out": out, "sent": 0, "received": 0, "rtt_min": None, "rtt_avg": None, "rtt_max": None}
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
    if m:
        d["sent"], d["received"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/", out)
    if m:
        d["rtt_min"], d["rtt_avg"], d["rtt_max"] = (float(x) for x in m.groups())
    m = re.search(r"(?:Frag needed and DF set \(mtu = |Packet too big: mtu=|message too long, mtu=)(\d+)", out)
    d["pmtu"] = int(m.group(1)) if m else None
    m = re.search(r"\+(\d+) errors", out)
    d["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"^json: (\{.*\})$", out, re.M)
    d["json"] = json.loads(m.group(1)) if m else {}
    return d


def parse_iperf(p: Proc) -> dict:
    try:
        j = json.loads(p.stdout())
    except ValueError:
        return {"error": f"no JSON: {p.stdout()[-300:]} {p.stderr()[-300:]}"}
    if "error" in j:
        return {"error": j["error"]}
    end = j.get("end", {})
    rx = end.get("sum_received", {})
    tx = end.get("sum_sent", {})
    return {"rx_bytes": rx.get("bytes", 0), "rx_bps": rx.get("bits_per_second", 0), "tx_bytes": tx.get("bytes", 0),
            "retransmits": tx.get("retransmits", 0), "secs": rx.get("seconds", 0)}


class UdpStream:
    """A sequence-numbered UDP stream from host `src` to `dst_addr` (an EID of host `dst`),
    receiver started first; results from udpstream.py (lost / reordered / duplicates / gaps)."""

    def __init__(self, tb: Testbed, src: str, dst: str, dst_addr: str, port: int, count: int, rate: float,
                 size: int, idle: float, fast: bool = False):
        self.tb, self.src, self.dst, self.dst_addr, self.port = tb, src, dst, dst_addr, port
        self.count, self.rate = count, rate
        if fast:
            prog = tool_path("lm-udpstream", "LM_UDPSTREAM", tb.router)
            if not os.access(prog, os.X_OK):
                raise TestbedError(f"{prog} not built (ninja -C <build> lm-udpstream)")
            cmd = [prog]
            tx_pre = rt_prefix()
        else:
            cmd = [PY, os.path.join(HERE, "udpstream.py")]
            tx_pre = []
        timeout = count / rate + 10 + idle
        self.rx = tb.spawn(dst, cmd + ["recv", "--port", str(port), "--count", str(count),
                                       "--idle", str(idle), "--timeout", str(timeout)] + (["--gaps", "32"] if fast else []),
                           name=f"udprx-{dst}-{port}")
        wait_for(lambda: "ready" in self.rx.stdout() or not self.rx.alive(), 10, what=f"udp receiver in {dst}")
        self.tx = tb.spawn(src, tx_pre + cmd + ["send", "--dst", dst_addr, "--port", str(port), "--count", str(count),
                                                "--rate", str(rate), "--size", str(size)], name=f"udptx-{src}-{port}")

    def result(self, timeout: Optional[float] = None) -> dict:
        timeout = timeout or self.count / self.rate + 20
        self.tx.wait(timeout)
        self.rx.wait(timeout)
        out = {"src": self.src, "dst": self.dst, "dst_addr": self.dst_addr, "port": self.port}
        try:
            out["tx"] = json.loads(self.tx.stdout().strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["tx"] = {"error": self.tx.stderr()[-300:]}
        try:
            out["rx"] = json.loads([l for l in self.rx.stdout().splitlines() if l.startswith("{")][-1])
        except (ValueError, IndexError):
            out["rx"] = {"error": self.rx.stderr()[-300:]}
        return out


# ---------------------------------------------------------------------------------------------
# LM directory (DHT) on the management network
# ---------------------------------------------------------------------------------------------

def ca_cert(d: str) -> Optional[str]:
    if os.path.exists(os.path.join(d, "ca.crt")):
        return "ca.crt"
    import glob
    c = [os.path.basename(p) for p in glob.glob(os.path.join(d, "*.crt")) if "ca" in os.path.basename(p)]
    return c[0] if len(c) == 1 else None


def make_pki(d: str, names: list[str], router: Optional[str] = None) -> str:
    """Domain CA + one identity per name (<name>.key/.crt) in d with `lmctl pki init/issue`
    (fallback: dht-rogue-publisher --pki-init/--pki-issue, same dht/pki.hpp code). Returns the tool."""
    import glob
    os.makedirs(d, exist_ok=True)
    lmctl = tool_path("lmctl", "LM_LMCTL", router)
    try:
        if os.access(lmctl, os.X_OK):
            sh([lmctl, "pki", "init", "--dir", d], timeout=60)
            for n in names:
                sh([lmctl, "pki", "issue", "--dir", d, "--name", n], timeout=60)
            if ca_cert(d) and all(os.path.exists(os.path.join(d, f"{n}.key")) for n in names):
                return "lmctl"
    except (TestbedError, subprocess.SubprocessError):
        pass
    for f in glob.glob(os.path.join(d, "*")):
        os.remove(f)
    rogue = tool_path("dht-rogue-publisher", "LM_DHT_ROGUE", router)
    sh([rogue, "--pki-init", d], timeout=60)
    for n in names:
        sh([rogue, "--pki-issue", d, "--name", n], timeout=60)
    return "dht-rogue-publisher"


def use_dht(tb: "Testbed", port: int = 4222, extra: Optional[dict] = None, static_mappings: bool = False) -> str:
    """Before tb.up(): every AR runs its DHT node on its management address (v4, port), bootstraps
    to the others, with an identity from one domain CA made in tb.tmp/pki; no static mappings
    (static_mappings=False: every remote EID is resolved). `extra` is merged into each dht
    section (e.g. negative_ttl_ms). Returns the tool that made the PKI."""
    pki = os.path.join(tb.tmp, "pki")
    made_by = make_pki(pki, [s.ar for s in tb.sites], tb.router)
    ca = ca_cert(pki)
    for s in tb.sites:
        others = [o for o in tb.sites if o is not s]
        dht = {"port": port, "bind4": s.mgmt4, "bootstrap": [f"{o.mgmt4}:{port}" for o in others],
               "ca_cert": f"pki/{ca}", "identity_key": f"pki/{s.ar}.key", "identity_cert": f"pki/{s.ar}.crt"}
        dht.update(extra or {})
        add = {"dht": dht}
        if not static_mappings:
            add["static_mappings"] = []
        s.config = deep_merge(s.config, add)
    return made_by


def dht_ready(tb: "Testbed", timeout: float = 15) -> None:
    """Wait until every AR's DHT node knows all the others."""
    n = len(tb.sites) - 1
    wait_for(lambda: all((r.telemetry("/lm/dht") or {}).get("known_nodes", 0) >= n for r in tb.routers.values()),
             timeout, 0.1, f"every DHT node to know the {n} other(s)")


# ---------------------------------------------------------------------------------------------
# Results of a test script
# ---------------------------------------------------------------------------------------------

class Results:
    def __init__(self, title: str):
        self.title = title
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []
        self.t0 = time.monotonic()
        log(f"=== {title}")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  PASS {name}" + (f"  ({detail})" if detail and VERBOSE else ""), flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"  FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def error(self, name: str, e: BaseException) -> None:
        self.check(name, False, f"{type(e).__name__}: {e}")

    def finish(self) -> int:
        dt = time.monotonic() - self.t0
        if self.failures:
            print("failed: " + ", ".join(self.failures))
        print(f"{self.title}: {self.passed} passed, {self.failed} failed ({dt:.1f} s)")
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def require_root() -> None:
    """Skip (exit 77, meson's SKIP) when not root; fail when a tool the test bed needs is missing."""
    if os.geteuid() != 0:
        print("e2e tests need root (network namespaces): skipped")
        sys.exit(77)
    missing = [t for t in ("ip", "ethtool", "iperf3", "dumpcap", "sysctl", "ss") if not shutil.which(t)]
    if missing:
        print(f"missing tools: {' '.join(missing)} (scripts/install-deps.sh installs them: iproute2 ethtool "
              f"iperf3 tshark procps)")
        print("0 passed, 1 failed")
        sys.exit(1)


def check_stream(res: Results, name: str, r: dict, expect: Optional[int] = None, allow_loss: int = 0) -> bool:
    rx, tx = r.get("rx", {}), r.get("tx", {})
    if "error" in rx or "error" in tx:
        return res.check(name, False, f"tx {tx} rx {rx}")
    n = expect if expect is not None else tx.get("sent", 0)
    ok = (tx.get("sent") == n and tx.get("errors", 0) == 0 and rx.get("lost", 1) <= allow_loss
          and rx.get("duplicates", 1) == 0 and rx.get("reordered", 1) == 0)
    return res.check(name, ok, f"sent {tx.get('sent')} (errors {tx.get('errors')}), received {rx.get('received')}, "
                               f"lost {rx.get('lost')}, reordered {rx.get('reordered')}, duplicates {rx.get('duplicates')}")


def summarize_counters(c: dict, keys=("encap", "decap", "arp_reply", "nd_advert", "mss_clamped", "icmp_error_sent",
                                      "punted", "cache_hit", "cache_miss")) -> str:
    parts = [f"{k}={c.get(k)}" for k in keys if c.get(k)]
    drops = {k[5:]: v for k, v in c.items() if k.startswith("drop_") and v}
    if drops:
        parts.append("drops " + ",".join(f"{k}={v}" for k, v in drops.items()))
    ports = [f"{k}={v}" for k, v in c.items() if k.endswith("_rx") or k.endswith("_tx")]
    return " ".join(parts + ports)


# Drop reasons that must stay at zero in a healthy run (others, like multicast_dst for the
# hosts' IPv6 RS/MLD, or l2_not_for_us for flooded frames, are expected noise).
BAD_DROPS = ("too_short", "bad_ip_header", "cache_miss", "no_local_locator", "nexthop_unresolved", "no_headroom",
             "native_no_route", "lm_bad_source", "lm_bad_udp", "lm_bad_version", "lm_bad_header", "lm_unknown_mo",
             "punt_ring_full", "tx_full", "no_mbuf", "ttl_expired")


def bad_drops(c: dict, allow: tuple = ()) -> dict:
    return {k: c.get("drop_" + k) for k in BAD_DROPS if c.get("drop_" + k) and k not in allow}


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def demo_topology(n_sites: int = 2, delay: float = 0.0, tenants: int = 1) -> tuple[list[Site], list[Host]]:
    ts = tuple(range(1, tenants + 1))
    sites = default_sites(n_sites, tenants=ts, delay_ms=delay)
    hosts = []
    for t in ts:
        hosts.append(Host(f"cn{t}" if tenants > 1 else "cn", "s1", tenant=t, v4="192.0.2.10", v6="2001:db8:1::10"))
        for i in range(2, n_sites + 1):
            nm = f"mo{i - 1}" + (f"t{t}" if tenants > 1 else "")
            hosts.append(Host(nm, f"s{i}", tenant=t, v4=f"192.0.2.{10 * i}", v6=f"2001:db8:1::{10 * i}"))
    return sites, hosts


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a demo topology, print it, wait for Ctrl-C (or --hold S), tear down")
    up.add_argument("--sites", type=int, default=2)
    up.add_argument("--tenants", type=int, default=1)
    up.add_argument("--delay", type=float, default=0.0, help="one-way WAN delay toward each site, ms")
    up.add_argument("--hold", type=float, default=0, help="seconds to stay up (0: until Ctrl-C)")
    up.add_argument("--router", default=DEFAULT_ROUTER)
    sub.add_parser("gc", help="remove leftovers (namespaces, DPDK runtime dirs) of dead test-bed runs")
    sub.add_parser("list", help="list test-bed namespaces")
    a = ap.parse_args(argv)
    if a.cmd == "gc":
        gc()
        return 0
    if a.cmd == "list":
        for n in list_netns():
            if NS_RE.match(n):
                print(n)
        return 0
    sites, hosts = demo_topology(a.sites, a.delay, a.tenants)
    with Testbed(sites, hosts, router=a.router) as tb:
        print(f"prefix {tb.prefix}")
        print(f"namespaces (ip netns exec NAME ...):")
        for n in tb._namespaces:
            print(f"  {n}")
        for s in tb.sites:
            r = tb.routers[s.ar]
            print(f"{s.ar}: locators {s.loc4} {s.loc6}, wan side {s.wan4} {s.wan6} ({s.wan_if}), mgmt {s.mgmt4}, "
                  f"telemetry: dpdk-telemetry.py -f {r.file_prefix}, config {r.config_path}")
        for h in tb.hosts:
            print(f"host {h.name}: site {h.site} tenant {h.tenant} {h.mac} {' '.join(h.eids)} mo_id {h.mo_id:#x}")
        sys.stdout.flush()
        try:
            if a.hold:
                time.sleep(a.hold)
            else:
                print("up; Ctrl-C to tear down", flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
