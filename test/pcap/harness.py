"""Harness for the pcap tests: runs lm-router on net_pcap vdevs and matches what it sent.

A Case holds a YAML configuration (a Python dict), the packets to feed each port and what each port
is expected to send. One case = one router process (in a temp dir), so nothing a case sends can be
mistaken for another case's output. Cases run a few at a time.

Expectations are functions of the packet actually sent: `Expect(port, desc, build)` where
build(actual_bytes) returns (expected_bytes, problems). The function may copy into the expected
packet the fields the spec leaves open (UDP source port, flow label, IPv4 ID without DF, ...) after
checking them (problems is a list of strings; empty when those checks hold). A packet matches when
the bytes are identical and there are no problems. Matching is a multiset match per port (outputs
of different input ports may interleave); every output packet must be claimed by an expectation.
"""

import os
import shutil
import re
import select
import signal
import struct
import subprocess
import tempfile
import threading
import time

# ---------------------------------------------------------------------------------------------
# pcap files (written and read by hand: an input with no packets still needs a valid header)

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 65535, 1))
        t = 1_700_000_000
        for i, fr in enumerate(frames):
            fr = bytes(fr)
            f.write(struct.pack("<IIII", t, i, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    """Frames of a pcap file; [] when the file is missing or empty."""
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return None
    if len(data) < 24:
        return []
    magic_le = struct.unpack("<I", data[:4])[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        e = "<"
    else:
        e = ">"
    off = 24
    out = []
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        out.append(data[off:off + incl])
        off += incl
    return out


# ---------------------------------------------------------------------------------------------
# YAML (block style, enough for the router's schema)

def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if s == "" or re.search(r"[:#\[\]{},&*!|>'\"%@`]", s) or s.strip() != s:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def to_yaml(obj, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: []")
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}: {{}}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                sub = to_yaml(v, indent + 2).split("\n")
                sub[0] = pad + "- " + sub[0].lstrip()
                lines.extend(sub)
            elif isinstance(v, list):
                lines.append(f"{pad}- [{', '.join(_scalar(x) for x in v)}]")
            else:
                lines.append(f"{pad}- {_scalar(v)}")
    else:
        lines.append(pad + _scalar(obj))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Cases

class Expect:
    def __init__(self, port, desc, build):
        self.port = port
        self.desc = desc
        self.build = build  # actual bytes -> (expected bytes, [problems])


class Case:
    def __init__(self, name, config):
        self.name = name
        self.config = config
        self.inputs = {}     # port name -> [frames]
        self.expects = []    # [Expect]
        self.ignore = []     # [(port, predicate(bytes) -> bool, reason)] outputs not judged
        self.post_checks = []  # [fn(outputs, matched {Expect: frame}) -> [problems]]
        self.counters = {}     # counter name -> exact value, checked against the router's final counters
        self.known_issue = None  # text: a departure documented as open; run only with --known-issues

    def port_names(self):
        return [p["name"] for p in self.config["ports"]]

    def send(self, port, frame):
        self.inputs.setdefault(port, []).append(bytes(frame))

    def expect(self, port, desc, build, flow=None):
        e = Expect(port, desc, build)
        e.flow = flow
        self.expects.append(e)
        return e

    def expect_exact(self, port, desc, frame):
        fb = bytes(frame)
        self.expect(port, desc, lambda actual, fb=fb: (fb, []))


class Result:
    def __init__(self, name):
        self.name = name
        self.ok = False
        self.problems = []
        self.duration = 0.0
        self.workdir = None


# ---------------------------------------------------------------------------------------------
# Running the router

RUNNING_RE = re.compile(r"running|started|ready|forwarding|workers? (?:are )?up", re.I)

_seq_lock = threading.Lock()
_seq = [0]


def _next_seq():
    with _seq_lock:
        _seq[0] += 1
        return _seq[0]


def run_router(router, case, workdir, settle=1.0, start_timeout=10.0, stop_timeout=10.0, log=None):
    """Runs the router on the case's inputs. Returns (outputs {port: [frames]}, problems, log text)."""
    problems = []
    ports = case.port_names()
    cfg_path = os.path.join(workdir, "cfg.yaml")
    with open(cfg_path, "w") as f:
        f.write(to_yaml(case.config) + "\n")
    vdevs = []
    devices = {}
    for p in case.config["ports"]:
        dev = p["device"]
        devices[p["name"]] = dev
        rx = os.path.join(workdir, f"{p['name']}_in.pcap")
        tx = os.path.join(workdir, f"{p['name']}_out.pcap")
        write_pcap(rx, case.inputs.get(p["name"], []))
        vdevs += ["--vdev", f"{dev},rx_pcap={rx},tx_pcap={tx}"]
    prefix = f"lmpcap{os.getpid()}_{_next_seq()}"
    cmd = [router, "--no-huge", "--no-pci", "-m", "256", "--no-shconf", "-l", "0-1",
           "--file-prefix", prefix, "--log-level=lib.eal:error"] + vdevs + ["--", "--config", cfg_path]
    with open(os.path.join(workdir, "cmd.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    outlog = os.path.join(workdir, "router.log")
    lf = open(outlog, "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir,
                            start_new_session=True)
    text = b""
    t0 = time.monotonic()
    seen_running = False
    # Read output until the router says it runs (or start_timeout), then let it settle.
    while time.monotonic() - t0 < start_timeout:
        r, _, _ = select.select([proc.stdout], [], [], 0.05)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text += chunk
            lf.write(chunk)
            if RUNNING_RE.search(text.decode(errors="replace")):
                seen_running = True
                break
        if proc.poll() is not None:
            break
    if not seen_running and proc.poll() is None:
        problems.append(f"router printed nothing matching /{RUNNING_RE.pattern}/ within {start_timeout:.0f} s "
                        "(continuing anyway)")
    # Keep draining output while it settles so a chatty router never blocks on a full pipe.
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and proc.poll() is None:
        r, _, _ = select.select([proc.stdout], [], [], 0.05)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text += chunk
            lf.write(chunk)
    if proc.poll() is not None:
        problems.append(f"router exited by itself with status {proc.returncode} before SIGTERM")
    else:
        proc.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t1 < stop_timeout:
            r, _, _ = select.select([proc.stdout], [], [], 0.05)
            if r:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if chunk:
                    text += chunk
                    lf.write(chunk)
        if proc.poll() is None:
            problems.append(f"router did not exit within {stop_timeout:.0f} s of SIGTERM: killed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        elif proc.returncode != 0:
            problems.append(f"router exited with status {proc.returncode} after SIGTERM")
    rest = proc.stdout.read()
    if rest:
        text += rest
        lf.write(rest)
    lf.close()
    # EAL makes /var/run/dpdk/<prefix> even with --no-shconf; leave nothing behind.
    shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)
    outputs = {}
    for name in ports:
        frames = read_pcap(os.path.join(workdir, f"{name}_out.pcap"))
        if frames is None:
            problems.append(f"no tx pcap written for port {name}")
            frames = []
        outputs[name] = frames
    return outputs, problems, text.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Matching and reporting

def _byte_distance(a, b):
    n = min(len(a), len(b))
    return sum(1 for i in range(n) if a[i] != b[i]) + abs(len(a) - len(b))


def match_outputs(case, outputs, describe_diff, matched):
    problems = []
    pool = {p: list(enumerate(frames)) for p, frames in outputs.items()}
    for e in case.expects:
        cands = pool.get(e.port, [])
        hit = None
        best = None  # (score, idx, expected, probs)
        for k, (i, fr) in enumerate(cands):
            try:
                exp, probs = e.build(fr)
            except Exception as ex:  # the actual packet is not even of the right shape
                exp, probs = None, [f"cannot build expectation from it: {type(ex).__name__}: {ex}"]
            if exp is not None and exp == fr and not probs:
                hit = k
                break
            score = (_byte_distance(exp, fr) if exp is not None else 10 ** 6) + (0 if not probs else 1)
            if exp is not None and exp == fr:
                score = 0.5
            if best is None or score < best[0]:
                best = (score, i, fr, exp, probs)
        if hit is not None:
            matched[e] = cands[hit][1]
            del cands[hit]
            continue
        if best is None:
            problems.append(f"missing on {e.port}: {e.desc} (port sent nothing left to match)")
            continue
        _, i, fr, exp, probs = best
        msg = f"missing on {e.port}: {e.desc}; closest is output #{i}:"
        for p in probs:
            msg += f"\n      - {p}"
        if exp is not None and exp != fr:
            msg += "\n" + describe_diff(exp, fr, indent="      ")
        problems.append(msg)
    for port, left in pool.items():
        for i, fr in left:
            reason = None
            for (ip, pred, why) in case.ignore:
                if ip == port and pred(fr):
                    reason = why
                    break
            if reason:
                continue
            problems.append(f"unexpected on {port}: output #{i}: {describe_frame_short(fr)}")
    return problems


_describe_short = None


def describe_frame_short(fr):
    if _describe_short:
        return _describe_short(fr)
    return fr[:64].hex()


def set_describe_short(fn):
    global _describe_short
    _describe_short = fn


_FINAL_RE = re.compile(r"final counters: (\{.*\})")


def final_counters(log):
    """The counters the router logs when it stops ("final counters: {json}"), or None."""
    import json
    m = None
    for m in _FINAL_RE.finditer(log):
        pass
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def check_counters(case, log):
    if not case.counters:
        return []
    got = final_counters(log)
    if got is None:
        return ["(counters not checked: the router logged no 'final counters: {...}' line; continuing anyway)"]
    probs = []
    for k, v in case.counters.items():
        if k not in got:
            probs.append(f"counter {k}: not reported by the router (expected {v})")
        elif got[k] != v:
            probs.append(f"counter {k}: expected {v}, got {got[k]}")
    return probs


def run_case(router, case, describe_diff, keep=False, tmp_root=None):
    res = Result(case.name)
    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lmpcap_", dir=tmp_root)
    res.workdir = workdir
    try:
        outputs, run_problems, log = run_router(router, case, workdir)
        res.problems.extend(run_problems)
        # "continuing anyway" is informational unless the router also failed otherwise
        matched = {}
        res.problems.extend(match_outputs(case, outputs, describe_diff, matched))
        for chk in case.post_checks:
            res.problems.extend(chk(outputs, matched))
        res.problems.extend(check_counters(case, log))
        fatal = [p for p in res.problems if "continuing anyway" not in p]
        res.ok = not fatal
        if not res.ok:
            tail = "\n".join(log.strip().splitlines()[-15:])
            res.problems.append("router output (last lines):\n" + "\n".join("      | " + l for l in tail.splitlines()))
    except Exception as ex:
        import traceback
        res.problems.append("harness error: " + "".join(traceback.format_exception(ex)))
        res.ok = False
    res.duration = time.monotonic() - t0
    if res.ok and not keep:
        _rmtree(workdir)
        res.workdir = None
    return res


def _rmtree(d):
    for root, dirs, files in os.walk(d, topdown=False):
        for f in files:
            try:
                os.unlink(os.path.join(root, f))
            except OSError:
                pass
        for s in dirs:
            try:
                os.rmdir(os.path.join(root, s))
            except OSError:
                pass
    try:
        os.rmdir(d)
    except OSError:
        pass
