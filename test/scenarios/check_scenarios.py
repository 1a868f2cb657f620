#!/usr/bin/python3
"""CI checks of pktgen-scenarios/, the traffic scenarios for pktgen-dpdk and TRex.

    /usr/bin/python3 test/scenarios/check_scenarios.py BUILD_DIR [-k SUBSTRING] [-v]

Needs scapy and PyYAML (python3-scapy, python3-yaml: run with /usr/bin/python3), lua5.4 (luac5.4),
and BUILD_DIR's lm-router and lmctl. Each check prints "ok NAME" or "FAIL NAME" with the
reasons; the last line is "N passed, N failed" and the exit status is 1 when any failed.

    files          the tree holds what README.md promises
    python         every .py compiles (py_compile, bytecode kept out of the tree) with Python 3.6
                   syntax (TRex's interpreter)
    plan           lmplan's flow hash gives protocol.md's test vectors; its LM frame is
                   byte for byte the worked example of protocol.md section 8
    lua-syntax     every pktgen/*.lua parses (luac5.4 -p)
    lua-run:...    each scenario script runs against pktgen_stub.lua, a stand-in of pktgen's Lua API
    pkt-file:...   pktgen command files: known commands, the plan's addresses
    shell          bash -n migration-storm.sh; its --dry-run attaches exactly the configs' MOs
    trex:...       every TRex profile, loaded the way TRex loads it with trex_stub/ as trex_stl_lib,
                   for a set of tunables: the field-engine programs are run and every packet is
                   checked (addresses, MO ids, LM header, checksums, sizes), destinations cover
                   the EIDs asked for, rates add up and follow the distribution; bad tunables
                   are refused
    pcaps-regen    make_pcaps.py regenerates the committed pcaps byte for byte
    pcap:NAME      each pcap holds what its name says (scapy dissection of every distinct frame,
                   counts, distribution)
    configs-regen  make_configs.py regenerates the committed configs byte for byte
    configs-plan   the configs, read as YAML, map and attach exactly the plan's MOs
    config:NAME    lm-router accepts it (it checks the config before EAL: exit 2 = config error)
    replay:NAME    lm-router on net_pcap runs the pcaps through single-dut*.yaml: every encap and
                   decap packet goes through, every miss is dropped as a miss, nothing else drops
    storm:live     migration-storm.sh against a running lm-router (single-dut.yaml): every lmctl
                   call accepted, the MOs attached again, the migrate-begins counted; and a storm
                   against a router that is not there fails
"""

import argparse
import ast
import collections
import glob
import importlib
import json
import math
import os
import py_compile
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SC = os.path.join(REPO, "pktgen-scenarios")
sys.path.insert(0, SC)
sys.path.insert(0, os.path.join(HERE, "trex_stub"))

import yaml  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.utils import PcapReader  # noqa: E402

import lmplan  # noqa: E402
import make_configs  # noqa: E402
import make_pcaps  # noqa: E402


class Check:
    def __init__(self, name):
        self.name = name
        self.problems = []

    def fail(self, msg):
        self.problems.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.problems.append(msg)
        return cond


# ---- Checksums and packet checks (independent of lmplan's builders) -----------------------------


def ones_sum(data):
    data = bytes(data)
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4_header_ok(l3):
    ihl = (l3[0] & 0xF) * 4
    return ones_sum(l3[:ihl]) == 0xFFFF


def udp_checksum_ok(l3):
    """l3: an IPv4 / IPv6 packet whose next header is UDP (no options, no extension headers).
    A zero checksum fails: every packet we make carries one."""
    v4 = l3[0] >> 4 == 4
    off = (l3[0] & 0xF) * 4 if v4 else 40
    seg = l3[off:]
    ulen = struct.unpack("!H", seg[4:6])[0]
    if struct.unpack("!H", seg[6:8])[0] == 0:
        return False
    if v4:
        pseudo = l3[12:20] + struct.pack("!BBH", 0, 17, ulen)
    else:
        pseudo = l3[8:40] + struct.pack("!IxxxB", ulen, 17)
    return ones_sum(pseudo + seg[:ulen]) == 0xFFFF


def check_l3(l3, fam, ttl, problems, what):
    """Common IPv4/IPv6 + UDP header checks of a packet carried whole (lengths, checksums)."""
    if fam == "v4":
        p = IP(l3)
        if p.version != 4 or p.ihl != 5:
            problems.append("%s: not IPv4 without options" % what)
            return None
        if p.len != len(l3) or p.proto != 17 or p.ttl != ttl or p.flags != "DF" or p.frag != 0 or p.id != 0:
            problems.append("%s: IPv4 len %d/%d proto %d ttl %d/%d flags %s id %d" % (what, p.len, len(l3), p.proto,
                                                                                      p.ttl, ttl, p.flags, p.id))
        if not ipv4_header_ok(l3):
            problems.append("%s: bad IPv4 header checksum" % what)
    else:
        p = IPv6(l3)
        if p.version != 6 or p.nh != 17 or p.hlim != ttl or p.plen != len(l3) - 40:
            problems.append("%s: IPv6 nh %d hlim %d/%d plen %d/%d" % (what, p.nh, p.hlim, ttl, p.plen, len(l3) - 40))
    u = p[UDP]
    if u.len != len(l3) - (20 if fam == "v4" else 40):
        problems.append("%s: UDP length %d" % (what, u.len))
    if not udp_checksum_ok(l3):
        problems.append("%s: bad (or zero) UDP checksum" % what)
    return p


def check_frame(fr, exp):
    """Dissects one frame with scapy and checks it against exp:
       kind 'plain' | 'lm', fam (inner family), outer, size (frame size with FCS), dst_role,
       src_role, strict (the pcaps: exact source MO, ports, flow hash; TRex: its documented
       stand-ins). Returns (destination index, [problems])."""
    probs = []
    fr = bytes(fr)
    if len(fr) != exp["size"] - lmplan.FCS + (lmplan.OUTER_OVERHEAD[exp["outer"]] if exp["kind"] == "lm" else 0):
        probs.append("frame of %d bytes, expected size %s" % (len(fr), exp["size"]))
    e = Ether(fr)
    fam = exp["fam"]
    if exp["kind"] == "plain":
        if e.dst != lmplan.GATEWAY_MAC:
            probs.append("Ethernet destination %s, not the gateway MAC" % e.dst)
        if e.type != (0x0800 if fam == "v4" else 0x86DD):
            probs.append("EtherType %#x" % e.type)
        inner = fr[14:]
        ttl = 64
    else:
        if e.dst != lmplan.DUT_CORE_MAC or e.src != lmplan.GEN_CORE_MAC:
            probs.append("Ethernet %s -> %s, not generator core -> router core" % (e.src, e.dst))
        outer = exp["outer"]
        peer, dut = lmplan.LOCATORS["peer"], lmplan.LOCATORS["dut"]
        o = 0 if outer == "v4" else 1
        ol = 20 if outer == "v4" else 40
        l3 = fr[14:]
        inner = l3[ol + 8 + 24:]
        itos = inner[1] if fam == "v4" else (struct.unpack("!I", inner[:4])[0] >> 20) & 0xFF
        h = lmplan.flow_hash(inner)
        if outer == "v4":
            p = IP(l3)
            if (p.version, p.ihl, p.tos, p.id, int(p.flags), p.frag, p.ttl, p.proto) != (4, 5, itos, 0, 2, 0, 64, 17):
                probs.append("outer IPv4 header: %s" % p.summary())
            if p.len != len(l3) or not ipv4_header_ok(l3):
                probs.append("outer IPv4 length or checksum")
        else:
            p = IPv6(l3)
            if (p.version, p.tc, p.nh, p.hlim, p.plen) != (6, itos, 17, 64, len(l3) - 40):
                probs.append("outer IPv6 header: %s" % p.summary())
            if exp["strict"] and p.fl != h & 0xFFFFF:
                probs.append("flow label %#x, flow hash says %#x" % (p.fl, h & 0xFFFFF))
        if (p.src, p.dst) != (peer[o], dut[o]):
            probs.append("outer %s -> %s, not peer AR -> router" % (p.src, p.dst))
        u = p[UDP]
        if u.dport != lmplan.UDP_PORT or u.chksum != 0 or u.len != len(l3) - ol:
            probs.append("outer UDP dport %d checksum %#x length %d" % (u.dport, u.chksum, u.len))
        want_sport = lmplan.encap_source_port(h) if exp["strict"] else None
        if (want_sport is not None and u.sport != want_sport) or not 49152 <= u.sport <= 65535:
            probs.append("outer UDP source port %d (flow hash: %s)" % (u.sport, want_sport))
        lm = l3[ol + 8:ol + 8 + 24]
        ver_flags, typ, nxt, r0 = lm[0], lm[1], lm[2], lm[3]
        tenant = struct.unpack("!I", lm[4:8])[0] >> 8
        mo, epoch = struct.unpack("!QQ", lm[8:24])
        if (ver_flags, typ, nxt, r0, lm[7], tenant, epoch) != (0x10, 0, lmplan.NEXT_PROTO[fam], 0, 0, lmplan.TENANT,
                                                                 lmplan.EPOCH):
            probs.append("LM header %s" % lm.hex())
        ttl = 63
    ip = check_l3(inner, fam, ttl, probs, "inner" if exp["kind"] == "lm" else "IP")
    if ip is None:
        return None, probs
    idx = lmplan.eid_index(exp["dst_role"], fam, ip.dst)
    if idx is None:
        probs.append("destination %s is no %s EID of the plan" % (ip.dst, exp["dst_role"]))
        return None, probs
    if exp["kind"] == "lm" and mo != lmplan.local_mo_id(idx):
        probs.append("LM MO id %#x for %s (MO %#x)" % (mo, ip.dst, lmplan.local_mo_id(idx)))
    sidx = lmplan.eid_index(exp["src_role"], fam, ip.src)
    u = ip[UDP]
    if sidx is None:
        probs.append("source %s is no %s EID" % (ip.src, exp["src_role"]))
    elif exp["strict"]:
        if exp["kind"] == "plain" and e.src != lmplan.mo_mac(exp["src_role"], sidx):
            probs.append("source MAC %s is not MO %d's" % (e.src, sidx))
        if u.sport != lmplan.SRC_PORT_BASE + idx % 64512:
            probs.append("UDP source port %d" % u.sport)
    elif sidx != 0 or (exp["kind"] == "plain" and e.src != lmplan.mo_mac(exp["src_role"], 0)):
        probs.append("TRex streams send from MO 0, not %s / %s" % (ip.src, e.src))
    if u.dport != lmplan.DST_PORT:
        probs.append("UDP destination port %d" % u.dport)
    return idx, probs


# ---- Small helpers ------------------------------------------------------------------------------


def run(cmd, timeout=60, env=None, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env, cwd=cwd)
    return p.returncode, p.stdout.decode(errors="replace")


def read_frames(path):
    with PcapReader(path) as r:
        return [bytes(p) for p in r]


def raw_frames(path):
    """Frames of a classic pcap, without scapy (for the replay inputs)."""
    data = open(path, "rb").read()
    out, off = [], 24
    while off + 16 <= len(data):
        n = struct.unpack("<I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + n])
        off += 16 + n
    return out


# ---- files, python, plan ------------------------------------------------------------------------

SCRIPTS = ["encap", "decap", "both", "miss", "migration"]
PROFILES = ["encap", "decap", "both", "miss", "migration"]


def check_files(c):
    need = ["README.md", "lmplan.py", "make_pcaps.py", "make_configs.py", "migration-storm.sh", "pktgen/lm.lua",
            "pktgen/encap-range-v4.pkt", "trex/lm_stl.py"]
    need += ["pktgen/%s.lua" % s for s in SCRIPTS] + ["trex/%s.py" % p for p in PROFILES]
    need += ["configs/" + n for n in make_configs.generate()]
    need += ["pcaps/%s.pcap" % n for n in make_pcaps.STANDARD]
    for n in need:
        c.expect(os.path.isfile(os.path.join(SC, n)), "missing: pktgen-scenarios/" + n)
    for n in ("migration-storm.sh", "make_pcaps.py", "make_configs.py"):
        c.expect(os.access(os.path.join(SC, n), os.X_OK), "not executable: " + n)
    extra = set(os.listdir(os.path.join(SC, "pcaps"))) - set("%s.pcap" % n for n in make_pcaps.STANDARD)
    c.expect(not extra, "pcaps/ holds files make_pcaps.py does not make: %s" % sorted(extra))
    extra = set(os.listdir(os.path.join(SC, "configs"))) - set(make_configs.generate()) - {"pki"}
    c.expect(not extra, "configs/ holds files make_configs.py does not make: %s" % sorted(extra))


def check_python(c, tmp):
    files = sorted(glob.glob(os.path.join(SC, "*.py")) + glob.glob(os.path.join(SC, "trex", "*.py")) +
                   glob.glob(os.path.join(HERE, "*.py")) + glob.glob(os.path.join(HERE, "trex_stub", "*", "*.py")))
    for f in files:
        rel = os.path.relpath(f, REPO)
        try:
            py_compile.compile(f, cfile=os.path.join(tmp, "x.pyc"), doraise=True)
        except py_compile.PyCompileError as e:
            c.fail("%s does not compile: %s" % (rel, e.msg))
            continue
        if f.startswith(SC):   # loaded by TRex's Python (3.6+)
            try:
                ast.parse(open(f).read(), filename=rel, feature_version=(3, 6))
            except SyntaxError as e:
                c.fail("%s:%s: not Python 3.6 syntax: %s" % (rel, e.lineno, e.msg))


# protocol.md section 8: the 4in6 worked example, as printed there.
WORKED_EXAMPLE = """
0000  02 00 00 00 00 fe 02 00 00 00 01 01 86 dd 60 03
0010  a2 4e 00 4c 11 40 20 01 0d b8 01 00 00 00 00 00
0020  00 00 00 00 00 01 20 01 0d b8 02 00 00 00 00 00
0030  00 00 00 00 00 01 e2 4e 10 f5 00 4c 00 00 10 00
0040  04 00 00 00 01 00 00 00 00 00 00 00 00 2a 00 00
0050  00 00 00 00 00 01 45 00 00 2c 00 01 40 00 3f 01
0060  b7 b1 c0 00 02 0a c0 00 02 14 08 00 ad 8a 12 34
0070  00 01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d
0080  0e 0f
"""


def check_plan(c):
    from scapy.layers.inet import ICMP
    a, b = socket.inet_aton("192.0.2.10"), socket.inet_aton("192.0.2.20")
    h = lmplan.crc32c(a + b, 1)
    h ^= h >> 16
    c.expect(h == 0x0073A24E, "ICMP test vector: %#x, protocol.md says 0x0073A24E" % h)
    from scapy.packet import Raw
    tcp = bytes(IP(src="192.0.2.10", dst="192.0.2.20", proto=6) / Raw(b"\x30\x39\x00\x50" + bytes(16)))
    h = lmplan.flow_hash(tcp)
    c.expect(h == 0x3517B398 and lmplan.encap_source_port(h) == 62360,
             "TCP test vector: %#x / %d, protocol.md says 0x3517B398 / 62360" % (h, lmplan.encap_source_port(h)))
    inner = IP(src="192.0.2.10", dst="192.0.2.20", id=1, flags="DF", ttl=63) / ICMP(id=0x1234, seq=1) / bytes(range(16))
    got = bytes(lmplan.lm_frame("v6", inner, 0x2A, "2001:db8:100::1", "2001:db8:200::1", src_mac="02:00:00:00:01:01",
                                dst_mac="02:00:00:00:00:fe", epoch=1))
    want = bytes.fromhex("".join(line[6:] for line in WORKED_EXAMPLE.strip().splitlines()).replace(" ", ""))
    c.expect(got == want, "lm_frame differs from protocol.md section 8:\n  got  %s\n  want %s" % (got.hex(), want.hex()))
    c.expect(lmplan.eid_index("local", "v6", lmplan.eid("local", "v6", 70000)) == 70000, "eid_index(eid()) != index")
    c.expect(lmplan.eid_index("remote", "v4", "203.0.113.251") is None, "203.0.113.251 taken for a remote MO")
    for net in lmplan.MOBILE_PREFIXES + lmplan.PEER_PREFIXES:
        c.expect(any(net.startswith(p) for p in ("192.0.2.", "198.51.100.", "203.0.113.", "2001:db8:")),
                 "%s is not a documentation prefix" % net)


# ---- pktgen: Lua, command files ------------------------------------------------------------------


def check_lua_syntax(c):
    luac = shutil.which("luac5.4")
    if not luac:
        c.fail("luac5.4 not found: install Debian's lua5.4")
        return
    for f in sorted(glob.glob(os.path.join(SC, "pktgen", "*.lua"))):
        rc, out = run([luac, "-p", f])
        c.expect(rc == 0, "%s: %s" % (os.path.relpath(f, REPO), out.strip()))


LUA_RUNS = [
    # (name, script, env, expected started ports, pcap ports, range ports)
    ("encap-pcap", "encap", {}, "0", "0", ""),
    ("encap-range", "encap", {"LM_MODE": "range", "LM_EIDS": "250", "LM_SIZE": "1518"}, "0", "", "0"),
    ("decap", "decap", {}, "1", "1", ""),
    ("both", "both", {}, "0,1", "0,1", ""),
    ("miss", "miss", {"LM_STUB_PCAPS": "0"}, "0", "0", ""),
    ("miss-with-decap", "miss", {"LM_WITH_DECAP": "1"}, "0,1", "0,1", ""),
    ("migration", "migration", {"LM_STORM": "./migration-storm.sh --old dut --duration 5"}, "0,1", "0,1", ""),
]


def check_lua_run(c, name, script, extra, started, pcap, rng):
    lua = shutil.which("lua5.4")
    if not lua:
        c.fail("lua5.4 not found: install Debian's lua5.4")
        return
    env = dict(os.environ, LM_DURATION="3", LM_WARMUP="1", LM_QUIT="1")
    env.update(extra)
    rc, out = run([lua, os.path.join(HERE, "pktgen_stub.lua"), os.path.join(SC, "pktgen", script + ".lua")], env=env)
    if not c.expect(rc == 0, "exit %d:\n%s" % (rc, out)):
        return
    stub = dict(re.findall(r"^STUB (started|pcap|range|clock_ms)(?: |$)(.*)$", out, re.M))
    c.expect(stub.get("started") == started, "started ports %r, expected %r" % (stub.get("started"), started))
    c.expect(stub.get("pcap") == pcap, "pcap ports %r, expected %r" % (stub.get("pcap"), pcap))
    c.expect(stub.get("range") == rng, "range ports %r, expected %r" % (stub.get("range"), rng))
    c.expect(stub.get("clock_ms") == "4500", "ran %s ms, LM_WARMUP + LM_DURATION + drain = 4500" % stub.get("clock_ms"))
    m = re.search(r"summary: sent (\d+) .* received (\d+) .* lost (-?\d+)", out)
    if c.expect(m is not None, "no summary line:\n" + out):
        c.expect(int(m.group(1)) > 0 and int(m.group(3)) == 0,
                 "summary of a lossless stand-in: sent %s received %s lost %s" % m.groups())
    if rng:
        vals = dict(re.findall(r"^STUB range_value (\d+ \S+ \S+) (\S+)$", out, re.M))
        n = int(extra["LM_EIDS"])
        want = {"0 dst_ip min": lmplan.eid("remote", "v4", 0), "0 dst_ip max": lmplan.eid("remote", "v4", n - 1),
                "0 src_ip min": lmplan.eid("local", "v4", 0), "0 src_ip max": lmplan.eid("local", "v4", n - 1),
                "0 dst_mac start": lmplan.GATEWAY_MAC, "0 dst_port start": str(lmplan.DST_PORT),
                "0 pkt_size start": extra["LM_SIZE"]}
        for k, v in want.items():
            c.expect(vals.get(k) == v, "range %s = %r, the plan says %r" % (k, vals.get(k), v))
    if "LM_STORM" in extra:
        c.expect("STUB cmd os.execute %s &" % extra["LM_STORM"] in out, "the storm command was not started")


def check_pkt_files(c, path):
    known = {"set", "range", "enable", "disable", "start", "stop", "page", "clear", "clr", "load"}
    plan_v4 = set(lmplan.eid(r, "v4", i) for r in ("local", "remote") for i in range(250))
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0]
        c.expect(word in known, "line %d: unknown command %r" % (n, word))
        for ip in re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", line):
            c.expect(ip in plan_v4 or ip.startswith("0.0.0."), "line %d: %s is not an EID of the plan" % (n, ip))
        for mac in re.findall(r"\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b", line):
            c.expect(mac == lmplan.GATEWAY_MAC, "line %d: MAC %s is not the gateway's" % (n, mac))


# ---- migration-storm.sh -------------------------------------------------------------------------


def attachments(cfg):
    """{mo_id: (mac, port, [eids])} of a configuration read with YAML."""
    return dict((int(a["mo_id"], 0), (a["mac"], a["port"], list(a["eids"]))) for a in cfg.get("static_attachments") or [])


_yaml_cache = {}


def load_yaml(path):
    # BaseLoader: every scalar a string, as the router reads them (no YAML 1.1 guessing).
    if path not in _yaml_cache:
        _yaml_cache[path] = yaml.load(open(path), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    return _yaml_cache[path]


def check_shell(c):
    script = os.path.join(SC, "migration-storm.sh")
    rc, out = run(["bash", "-n", script])
    if not c.expect(rc == 0, "bash -n: " + out):
        return
    n = lmplan.CONFIG_LOCAL_MOS
    rc, out = run(["bash", script, "--dry-run", "--old", "ar1", "--new", "ar2", "--hot", str(n), "--batch", "100"])
    if not c.expect(rc == 0, "--dry-run exit %d: %s" % (rc, out[-2000:])):
        return
    att = attachments(load_yaml(os.path.join(SC, "configs", "pair-ar1.yaml")))
    seen = collections.Counter()
    begins = collections.Counter()
    for line in out.splitlines():
        w = line.split()
        if len(w) > 3 and w[0] == "lmctl" and w[3] == "migrate-begin":
            begins[(w[2], int(w[w.index("--mo") + 1], 0))] += 1
        if len(w) > 3 and w[0] == "lmctl" and w[3] == "attach":
            mo = int(w[w.index("--mo") + 1], 0)
            got = (w[w.index("--mac") + 1], w[w.index("--port") + 1], w[w.index("--port") + 2:])
            c.expect(got == att.get(mo), "attach of MO %#x: %s, pair-ar1.yaml says %s" % (mo, got, att.get(mo)))
            c.expect(w[w.index("--tenant") + 1] == str(lmplan.TENANT), "attach with another tenant: " + line)
            seen[(w[2], mo)] += 1
    c.expect(set(mo for _, mo in seen) == set(att), "the dry run attaches %d MOs, the config %d" % (len(seen), len(att)))
    # One round there (ar2) and the way home (ar1): each MO attached once on each, after a migrate-begin.
    c.expect(all(seen[(t, mo)] == 1 and begins[(f, mo)] == 1 for mo in att for t, f in (("ar2", "ar1"), ("ar1", "ar2"))),
             "every MO should move ar1 -> ar2 and back once")
    for bad in (["--hot", "0"], ["--hot", str(n + 1)], ["--batch", "x"], ["--frobnicate", "1"]):
        rc, _ = run(["bash", script, "--dry-run"] + bad)
        c.expect(rc == 2, "%s: exit %d, expected 2 (usage)" % (" ".join(bad), rc))


# ---- TRex profiles ------------------------------------------------------------------------------


def load_profile(name):
    """Imports trex/NAME.py the way TRex's STLProfile.load_py does (its directory on sys.path)."""
    d = os.path.join(SC, "trex")
    sys.path.insert(0, d)
    try:
        for m in (name, "lm_stl"):
            sys.modules.pop(m, None)
        return importlib.import_module(name)
    finally:
        sys.path.remove(d)


def run_vm(builder, count, rng):
    """Runs a stream's field-engine program for count packets (inc/dec wrap like TRex's)."""
    from trex_stl_lib.api import STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar
    pkt = bytearray(builder.pkt)
    cmds = builder.vm.commands if builder.vm else []
    var = dict((x.name, x) for x in cmds if isinstance(x, STLVmFlowVar))
    val = dict((n, v.init_value) for n, v in var.items())
    for _ in range(count):
        for x in cmds:
            if isinstance(x, STLVmWrFlowVar):
                v = var[x.fv_name]
                off = x.pkt_offset + x.offset_fixup
                pkt[off:off + v.size] = ((val[x.fv_name] + x.add_val) % (1 << 8 * v.size)).to_bytes(
                    v.size, "big" if x.is_big else "little")
            elif isinstance(x, STLVmFixIpv4):
                o = x.offset
                pkt[o + 10:o + 12] = b"\0\0"
                pkt[o + 10:o + 12] = struct.pack("!H", 0xFFFF - ones_sum(pkt[o:o + (pkt[o] & 0xF) * 4]))
        yield bytes(pkt)
        for n, v in var.items():
            if v.op == "inc":
                val[n] = val[n] + v.step if val[n] + v.step <= v.max_value else v.min_value
            elif v.op == "dec":
                val[n] = val[n] - v.step if val[n] - v.step >= v.min_value else v.max_value
            else:
                val[n] = rng.randint(v.min_value, v.max_value)


def vm_cycle(builder):
    """Packets until every inc/dec variable has gone round once (1 without a program)."""
    from trex_stl_lib.api import STLVmFlowVar
    spans = [x.max_value - x.min_value + 1 for x in (builder.vm.commands if builder.vm else [])
             if isinstance(x, STLVmFlowVar)]
    return max(spans or [1])


# (check name, profile, direction, tunables as TRex passes them). eids/misses are per family.
TREX_CASES = [
    ("encap-v4-64-uniform", "encap", 0, {}),
    ("encap-v6-78-zipf-4k", "encap", 0, {"family": "v6", "size": 78, "eids": 4096, "dist": "zipf"}),
    ("encap-v4-imix-hot", "encap", 0, {"size": "imix", "dist": "hot", "hot": 20, "hot_pct": 80}),
    ("encap-v6-1518-latency", "encap", 0, {"family": "v6", "size": 1518, "eids": 300, "latency_pps": 1000}),
    ("encap-strings", "encap", 0, {"family": "6", "size": "128B", "eids": "1000", "dist": "zipf", "zipf_s": "1.2"}),
    ("encap-return-v4-zipf", "encap", 1, {"dist": "zipf"}),
    ("encap-return-v6-imix", "encap", 1, {"family": "v6", "size": "imix", "eids": 1024}),
    ("decap-4in4-64", "decap", 0, {}),
    ("decap-4in6-imix-zipf", "decap", 1, {"outer": "v6", "size": "imix", "dist": "zipf"}),
    ("decap-6in4-78-hot", "decap", 1, {"inner": "v6", "size": 78, "eids": 1024, "dist": "hot", "hot": 64}),
    ("decap-6in6-1518-one", "decap", 1, {"inner": "v6", "outer": "v6", "size": 1518, "eids": 1}),
    ("both-dir0", "both", 0, {"family": "v6", "size": 256, "eids": 512}),
    ("both-dir1", "both", 1, {"family": "v6", "outer": "v4", "size": 256, "eids": 512}),
    ("both-new-style", "both", 1, {"tunables": ["--family", "v4", "--outer", "v6", "--size", "imix", "--eids", "100"]}),
    ("miss-v4", "miss", 0, {}),
    ("miss-v6-mixed", "miss", 0, {"family": "v6", "size": 78, "misses": 65536, "hit_pct": 25, "eids": 1024}),
    ("miss-decap", "miss", 1, {"family": "v6", "size": 78, "eids": 1024}),
    ("migration-single-0", "migration", 0, {}),
    ("migration-single-1", "migration", 1, {"hot": 16, "hot_pct": 90}),
    ("migration-pair-1", "migration", 1, {"setup": "pair", "family": "v6", "size": 78, "eids": 1024,
                                          "latency_pps": 100}),
]

TREX_REFUSED = [
    ("encap", {"eids": 251}), ("encap", {"size": 63}), ("encap", {"family": "v6", "size": 64}),
    ("encap", {"dist": "pareto"}), ("encap", {"colour": "blue"}), ("decap", {"outer": "v5"}),
    ("miss", {"misses": 127}), ("migration", {"setup": "triple"}), ("encap", {"hot_pct": 120, "dist": "hot"}),
    ("encap", {"dist": "hot", "hot": 300}), ("encap", {"pps": 0}),
]


def expected_streams(profile, direction, t):
    """What a profile must produce: {(kind, destination role): (family, outer, options, share of pps)}."""
    if "tunables" in t:   # new TRex: -t --key value ...
        a = t["tunables"]
        t = dict(zip([x[2:] for x in a[0::2]], a[1::2]))
    g = t.get
    fam = lmplan_fam(g("family", "v4"))
    o = dict(size=g("size", 64), eids=int(g("eids", 250)), dist=g("dist", "uniform"), zipf_s=float(g("zipf_s", 1.0)),
             hot=int(g("hot", 32)), hot_pct=float(g("hot_pct", 50)))
    uniform, hot = dict(o, dist="uniform"), dict(o, dist="hot")
    outer = lmplan_fam(g("outer", "v4"))
    even = direction % 2 == 0
    if profile == "encap":
        return {("plain", "remote" if even else "local"): (fam, None, o, 1.0)}
    if profile == "decap":
        return {("lm", "local"): (lmplan_fam(g("inner", "v4")), outer, o, 1.0)}
    if profile == "both":
        return {("plain", "remote"): (fam, None, o, 1.0)} if even else {("lm", "local"): (fam, outer, o, 1.0)}
    if profile == "miss":
        if not even:
            return {("lm", "local"): (fam, fam, uniform, 1.0)}
        hit = float(g("hit_pct", 0)) / 100
        out = {("plain", "miss"): (fam, None, dict(uniform, eids=int(g("misses", 126))), 1 - hit)}
        if hit:
            out[("plain", "remote")] = (fam, None, uniform, hit)
        return out
    if profile == "migration":
        if even:
            return {("plain", "remote"): (fam, None, uniform, 1.0)}
        if g("setup", "single") == "pair":
            return {("plain", "local"): (fam, None, hot, 1.0)}
        return {("lm", "local"): (fam, outer, hot, 1.0)}
    raise AssertionError(profile)


def lmplan_fam(f):
    return {"4": "v4", "6": "v6"}.get(str(f), str(f))


def size_label(s):
    s = str(s).lower().rstrip("b")
    return "imix" if s == "imix" else int(s)


def classify(pkt):
    """(kind, destination role, inner family, outer family) of a stream's packet."""
    v4 = pkt[12:14] == b"\x08\x00"
    ol = 20 if v4 else 40
    l3 = pkt[14:]
    if struct.unpack("!H", l3[ol + 2:ol + 4])[0] == lmplan.UDP_PORT:
        kind, outer, inner = "lm", "v4" if v4 else "v6", l3[ol + 8 + lmplan.LM_HEADER_LEN:]
    else:
        kind, outer, inner = "plain", None, l3
    fam = "v4" if inner[0] >> 4 == 4 else "v6"
    dst = socket.inet_ntop(socket.AF_INET, inner[16:20]) if fam == "v4" else socket.inet_ntop(socket.AF_INET6,
                                                                                              inner[24:40])
    roles = [r for r in ("local", "remote", "miss") if lmplan.eid_index(r, fam, dst) is not None]
    return kind, roles[0] if roles else None, fam, outer


def check_trex(c, profile, direction, tunables):
    mod = load_profile(profile)
    # As TRex does it: module.register().get_streams(direction=..., port_id=..., **tunables)
    streams = mod.register().get_streams(direction=direction, port_id=direction, **tunables)
    c.expect(len(set(s.name for s in streams)) == len(streams), "stream names repeat")
    c.expect(all(s.mac_dst_override_mode == 1 for s in streams), "a stream takes its destination MAC from TRex's "
             "config, not from the packet (mac_dst_override_mode=STLStreamDstMAC_PKT)")
    t = tunables
    if "tunables" in t:
        t = dict(zip([x[2:] for x in t["tunables"][0::2]], t["tunables"][1::2]))
    pps = float(t.get("pps", 1e6))
    lat = [s for s in streams if s.flow_stats is not None]
    data = [s for s in streams if s.flow_stats is None]
    lat_pps = float(t.get("latency_pps", 0)) if profile == "encap" or (
        profile == "migration" and t.get("setup") == "pair") else 0
    c.expect(len(lat) == (1 if lat_pps else 0), "%d latency streams, expected %d" % (len(lat), 1 if lat_pps else 0))
    for s in lat:
        c.expect(abs(s.mode.pps - lat_pps) < 1e-6 and s.packet.vm is None and len(s.packet.pkt) + 4 >= 128,
                 "latency stream: %s pps, %d bytes" % (s.mode.pps, len(s.packet.pkt)))
    c.expect(abs(sum(s.mode.pps for s in data) - pps) < 1e-6 * pps, "data streams add up to %s pps, not %s"
             % (sum(s.mode.pps for s in data), pps))
    want = expected_streams(profile, direction, t)
    groups = collections.defaultdict(list)
    for s in data:
        kind, role, fam, outer = classify(s.packet.pkt)
        groups[(kind, role)].append(s)
        w = want.get((kind, role))
        if w:
            c.expect((fam, outer) == w[:2], "%s: %s in %s, expected %s in %s" % (s.name, fam, outer, w[0], w[1]))
    if not c.expect(set(groups) == set(want), "streams of %s, expected %s" % (sorted(groups), sorted(want))):
        return
    rng = random.Random(1)
    for (kind, role), (fam, outer, o, share) in sorted(want.items()):
        exp = dict(kind=kind, fam=fam, outer=outer, dst_role=role, strict=False,
                   src_role={"remote": "local", "local": "remote", "miss": "local"}[role])
        check_trex_group(c, groups[(kind, role)], exp, o, share * pps, rng)


def check_trex_group(c, streams, exp, o, pps, rng):
    """Streams toward one kind of destination: run their field-engine programs, check the
    packets, then what they cover and at which rates against the distribution asked for."""
    n, fam = o["eids"], exp["fam"]
    sizes = lmplan.imix_weights(fam) if size_label(o["size"]) == "imix" else [(size_label(o["size"]), 1.0)]
    overhead = lmplan.OUTER_OVERHEAD[exp["outer"]] if exp["kind"] == "lm" else 0
    got = collections.defaultdict(float)        # (first index, last index, frame size) -> pps
    for s in streams:
        e = dict(exp, size=len(s.packet.pkt) + lmplan.FCS - overhead)
        count = vm_cycle(s.packet)
        seen = set()
        # One full cycle of the program; beyond 4096 packets a sample is dissected and the rest
        # is known from the variable's range (every one of these steps by 1).
        for k, pkt in enumerate(run_vm(s.packet, count, rng)):
            if count <= 4096 or k < 64 or k >= count - 64 or k % 997 == 0:
                idx, probs = check_frame(pkt, e)
                if probs:
                    c.fail("%s packet %d: %s" % (s.name, k, "; ".join(probs)))
                    return
                seen.add(idx)
        if count > 4096:
            seen = set(range(min(seen), min(seen) + count)) if max(seen) - min(seen) == count - 1 else seen
        lo, hi = min(seen), max(seen)
        c.expect(seen == set(range(lo, hi + 1)), "%s: destinations are not the range %d..%d" % (s.name, lo, hi))
        got[(lo, hi, e["size"])] += s.mode.pps
    want = {}
    buckets = lmplan.distribution_buckets(n, o["dist"], o["zipf_s"], o["hot"], o["hot_pct"] / 100.0)
    for lo, hi, share in buckets:
        for size, sshare in sizes:
            want[(lo, hi, size)] = share * sshare * pps
    c.expect(set(got) == set(want), "%s streams cover %s, expected %s" % (exp["dst_role"], sorted(got), sorted(want)))
    for k in want:
        if k in got:
            c.expect(abs(got[k] - want[k]) <= 1e-6 * pps, "stream %s at %.3f pps, expected %.3f" % (k, got[k], want[k]))
    if o["dist"] == "zipf":   # the rate per destination never grows with the rank
        rates = [sum(got.get((lo, hi, s), 0) for s, _ in sizes) / (hi - lo + 1) for lo, hi, _ in buckets]
        c.expect(all(a >= b for a, b in zip(rates, rates[1:])), "Zipf rates per EID grow somewhere: %s" % rates)


def check_trex_refused(c):
    for profile, t in TREX_REFUSED:
        mod = load_profile(profile)
        try:
            mod.register().get_streams(direction=1 if profile == "decap" else 0, port_id=0, **t)
        except (ValueError, TypeError):
            continue
        c.fail("%s accepted %s" % (profile, t))


# ---- pcaps --------------------------------------------------------------------------------------


def check_pcaps_regen(c, tmp):
    out = os.path.join(tmp, "pcaps")
    rc, text = run([sys.executable, os.path.join(SC, "make_pcaps.py"), "--out", out], timeout=600)
    if not c.expect(rc == 0, "make_pcaps.py exit %d: %s" % (rc, text[-2000:])):
        return
    for n in make_pcaps.STANDARD:
        a, b = os.path.join(out, n + ".pcap"), os.path.join(SC, "pcaps", n + ".pcap")
        if not os.path.exists(b):
            continue   # "files" reports it
        c.expect(open(a, "rb").read() == open(b, "rb").read(),
                 "pcaps/%s.pcap is not what make_pcaps.py makes: regenerate it (make_pcaps.py)" % n)


def check_pcap(c, name):
    spec = make_pcaps.parse_name(name)
    path = os.path.join(SC, "pcaps", name + ".pcap")
    frames = read_frames(path)
    sc, fam, n, dist, size = spec["scenario"], spec["inner"], spec["count"], spec["dist"], spec["size"]
    lcm = n * 12 // math.gcd(n, 12)
    want = {"uniform": lcm if size == "imix" else n, "zipf": 4 * n, "mix50": 2 * n}[dist]
    c.expect(len(frames) == want, "%d packets, expected %d" % (len(frames), want))
    c.expect(os.path.getsize(path) < 1 << 20, "%d bytes: TRex's push_pcap refuses files over 1 MB" % os.path.getsize(path))
    kind = "lm" if sc == "decap" else "plain"
    src_role = {"encap": "local", "decap": "remote", "miss": "local", "return": "remote"}[sc]
    counts = collections.Counter()
    checked = {}
    for k, fr in enumerate(frames):
        role = {"encap": "remote", "decap": "local", "miss": "miss", "return": "local"}[sc]
        if dist == "mix50" and k % 2:
            role = "remote"
        fsize = lmplan.imix_size(k, fam) if size == "imix" else size
        key = (fr, role, fsize)
        if key not in checked:
            exp = dict(kind=kind, fam=fam, outer=spec["outer"], size=fsize, dst_role=role, src_role=src_role,
                       strict=True)
            checked[key] = check_frame(fr, exp)
        idx, probs = checked[key]
        if probs:
            c.fail("packet %d: %s" % (k, "; ".join(probs)))
            return
        counts[(role, idx)] += 1
    dst_role = {"encap": "remote", "decap": "local", "miss": "miss", "return": "local"}[sc]
    if dist in ("uniform", "mix50"):
        per = want // n // (2 if dist == "mix50" else 1)
        exp_counts = dict(((dst_role, i), per) for i in range(n))
        if dist == "mix50":
            exp_counts.update(dict((("remote", i), per) for i in range(n)))
        c.expect(dict(counts) == exp_counts, "destinations are not each EID %d time(s)" % per)
    else:
        w = lmplan.zipf_weights(n)
        top = max(1, n // 10)
        got_top = sum(counts[(dst_role, i)] for i in range(top)) / float(len(frames))
        c.expect(abs(got_top - sum(w[:top])) < 0.05, "Zipf head: %.3f of the packets to the top %d EIDs, theory %.3f"
                 % (got_top, top, sum(w[:top])))
        c.expect(counts.most_common(1)[0][0] == (dst_role, 0), "EID 0 is not the most frequent")
        c.expect(all(0 <= i < n for _, i in counts), "destinations outside 0..%d" % (n - 1))


# ---- configs ------------------------------------------------------------------------------------


def check_configs_regen(c):
    for name, text in make_configs.generate().items():
        path = os.path.join(SC, "configs", name)
        if os.path.exists(path):
            c.expect(open(path).read() == text, "configs/%s is not what make_configs.py makes: regenerate it" % name)


def check_configs_plan(c):
    cfgs = dict((n, load_yaml(os.path.join(SC, "configs", n))) for n in make_configs.generate())
    local = dict((lmplan.local_mo_id(i), (lmplan.local_mac(i), "access0", lmplan.mo_eids("local", i)))
                 for i in range(lmplan.CONFIG_LOCAL_MOS))
    remote = dict((lmplan.remote_mo_id(i), (lmplan.remote_mac(i), "access0", lmplan.mo_eids("remote", i)))
                  for i in range(lmplan.CONFIG_REMOTE_MOS))
    for name, cfg in cfgs.items():
        want = remote if name == "pair-ar2.yaml" else local
        c.expect(attachments(cfg) == want, "%s: static_attachments are not the plan's %d MOs" % (name, len(want)))
        c.expect(cfg["gateway"]["mac"] == lmplan.GATEWAY_MAC, "%s: gateway MAC" % name)
        c.expect(sorted(cfg["mobile_prefixes"]) == sorted(lmplan.MOBILE_PREFIXES), "%s: mobile prefixes" % name)
    for name in ("single-dut.yaml", "single-dut-cross.yaml"):
        cfg = cfgs[name]
        cross = "cross" in name
        got = dict((m["eid"], (int(m["mo_id"], 0), m["locator"], m["tenant"])) for m in cfg["static_mappings"])
        want = {}
        for i in range(lmplan.CONFIG_REMOTE_MOS):
            for e in lmplan.mo_eids("remote", i):
                outer_v6 = (":" in e) != cross
                want[e] = (lmplan.remote_mo_id(i), lmplan.LOCATORS["peer"][1 if outer_v6 else 0], str(lmplan.TENANT))
        c.expect(got == want, "%s: static_mappings are not the plan's remote MOs at the peer AR" % name)
        core = [p for p in cfg["ports"] if p["role"] == "core"][0]
        c.expect(core.get("mac") == lmplan.DUT_CORE_MAC and cfg["core"]["next_hop"].get("mac") == lmplan.GEN_CORE_MAC,
                 "%s: core MACs are not the pcaps' (router %s, next hop %s)" % (name, lmplan.DUT_CORE_MAC,
                                                                                lmplan.GEN_CORE_MAC))
        c.expect(cfg["locators"] == {"v4": lmplan.LOCATORS["dut"][0], "v6": lmplan.LOCATORS["dut"][1]},
                 "%s: locators" % name)


def check_config_parse(c, build, name):
    router = os.path.join(build, "lm-router")
    # Everything after -- is read and validated before EAL starts; with one lcore EAL then stops
    # the router right away (no worker lcore), touching no device and no hugepage.
    rc, out = run([router, "--no-huge", "--no-pci", "-m", "16", "--no-shconf", "--no-telemetry", "-l", "0",
                   "--log-level=lib.eal:error", "--", "--config", os.path.join(SC, "configs", name)])
    c.expect(rc != 2 and "config error" not in out, "lm-router refuses it (exit %d):\n%s" % (rc, out.strip()))


class Router:
    """lm-router on two net_pcap ports (the configuration's devices replaced), one worker that
    sleeps when idle, telemetry under a file prefix of its own."""

    def __init__(self, build, work, config_text, access_frames=(), core_frames=()):
        os.makedirs(work, exist_ok=True)
        text = config_text.replace('"0000:03:00.0"', "net_pcap0").replace('"0000:03:00.1"', "net_pcap1")
        text = re.sub(r"workers: \d+", "workers: 1", text)
        text = re.sub(r"idle_backoff_us: \d+", "idle_backoff_us: 100", text)   # do not spin in CI
        cfg = os.path.join(work, "cfg.yaml")
        open(cfg, "w").write(text)
        vdevs = []
        for i, (port, frames) in enumerate((("acc", access_frames), ("core", core_frames))):
            rx, tx = os.path.join(work, port + "-in.pcap"), os.path.join(work, port + "-out.pcap")
            lmplan.write_pcap(rx, frames)
            vdevs += ["--vdev", "net_pcap%d,rx_pcap=%s,tx_pcap=%s" % (i, rx, tx)]
        self.prefix = "lmscen%d_%s" % (os.getpid(), os.path.basename(work))
        self.lmctl = os.path.join(build, "lmctl")
        self.log = open(os.path.join(work, "router.log"), "w+b")
        cmd = [os.path.join(build, "lm-router"), "--no-huge", "--no-pci", "-m", "256", "--file-prefix", self.prefix,
               "-l", "0-1", "--log-level=lib.eal:error"] + vdevs + ["--", "--config", cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=work,
                                     start_new_session=True)

    def ctl(self, *args):
        return run([self.lmctl, "-f", self.prefix] + list(args), timeout=20)

    def wait_running(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.ctl("info")[0] == 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        """SIGTERM, wait, clean up; returns the router's output."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix), ignore_errors=True)
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def final_counters(c, text, proc):
    m = re.search(r"final counters: (\{.*\})", text)
    if c.expect(m is not None, "no final counters (exit %s):\n%s" % (proc.returncode, text[-3000:])):
        return json.loads(m.group(1))
    return None


def check_replay(c, build, tmp, name):
    """Runs lm-router on net_pcap with the config's MOs and the committed pcaps as input."""
    access, core = [], []
    miss = 0
    for n in make_pcaps.STANDARD:
        fr = raw_frames(os.path.join(SC, "pcaps", n + ".pcap"))
        if n.startswith(("encap-", "miss-")):
            access += fr
            if n.startswith("miss-"):
                miss += len(fr) - (len(fr) // 2 if n.endswith("mix50") else 0)
        elif n.startswith("decap-") and "cross" not in name:
            core += fr
    r = Router(build, os.path.join(tmp, "replay-" + name), open(os.path.join(SC, "configs", name)).read(), access, core)
    total, rx = len(access) + len(core), -1
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and r.proc.poll() is None:
            time.sleep(0.3)
            rc, out = r.ctl("--json", "ports")
            if rc == 0:
                rx = sum(v.get("rx_packets", 0) for k, v in json.loads(out).items() if k.startswith("/lm/port,"))
                if rx >= total:
                    time.sleep(0.5)   # the control lcore's last answers (the misses)
                    break
        c.expect(rx == total, "the router received %d of the %d packets in time" % (rx, total))
    finally:
        text = r.stop()
    k = final_counters(c, text, r.proc)
    if k is None:
        return
    enc = len(access) - miss
    c.expect(k["encap"] == enc, "encap %d, expected %d (every encap pcap packet and every mix50 hit)" % (k["encap"], enc))
    c.expect(k["decap"] == len(core), "decap %d, expected %d (every decap pcap packet)" % (k["decap"], len(core)))
    missed = k["drop_unresolved"] + k["drop_pending_full"] + k["drop_pending_timeout"]
    c.expect(missed == miss, "%d miss packets dropped as unresolved/pending, expected %d" % (missed, miss))
    other = dict((n, v) for n, v in k.items() if n.startswith("drop_") and v and n not in (
        "drop_unresolved", "drop_pending_full", "drop_pending_timeout"))
    c.expect(not other, "unexpected drops: %s" % other)
    c.expect(k["core0_tx"] >= enc, "core0 sent %d, fewer than the %d encapsulated" % (k["core0_tx"], enc))


def check_storm_live(c, build, tmp):
    """migration-storm.sh against a real lm-router (single-dut.yaml): its lmctl calls are
    accepted, every MO ends attached, the router counted the migrate-begins."""
    r = Router(build, os.path.join(tmp, "storm"), open(os.path.join(SC, "configs", "single-dut.yaml")).read())
    try:
        if not c.expect(r.wait_running(), "the router did not answer lmctl within 30 s"):
            return
        script = os.path.join(SC, "migration-storm.sh")
        common = ["--old", r.prefix, "--lmctl", r.lmctl, "--hot", "6", "--batch", "4", "--downtime-ms", "20",
                  "--interval-ms", "10"]
        rc, out = run(["bash", script] + common + ["--rounds", "2"], timeout=120)
        c.expect(rc == 0 and "12 move(s)" in out and " 0 failed" in out, "storm exit %d:\n%s" % (rc, out[-3000:]))
        rc, out = run(["bash", script] + common + ["--rounds", "1", "--detach"], timeout=120)
        c.expect(rc == 0 and "6 move(s)" in out and " 0 failed" in out, "storm --detach exit %d:\n%s" % (rc, out[-3000:]))
        rc, out = r.ctl("--json", "handover")
        if c.expect(rc == 0, "lmctl handover: " + out):
            n = json.loads(out).get("/lm/handover", {}).get("migrate_begins")
            c.expect(n == 18, "migrate_begins %s, expected 18" % n)
        rc, out = r.ctl("attached")     # the first page: MOs 0..63
        for i in range(6):
            line = [x for x in out.splitlines() if " mo %#x " % lmplan.local_mo_id(i) in x]
            c.expect(rc == 0 and len(line) == 1 and "leaving" not in line[0] and "moved" not in line[0],
                     "MO %d is not attached and delivering after the storm: %s" % (i, line))
        rc, out = run(["bash", script, "--old", r.prefix + "-nosuch", "--lmctl", r.lmctl, "--hot", "1", "--rounds", "1",
                       "--downtime-ms", "0", "--interval-ms", "0"], timeout=60)
        c.expect(rc == 1 and "FAILED" in out, "a storm against no router exit %d, expected 1:\n%s" % (rc, out[-2000:]))
    finally:
        text = r.stop()
        if c.problems:
            c.fail("router exit %s, its last words:\n%s" % (r.proc.returncode, text[-2500:]))


# ---- main ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", help="meson build directory (lm-router, lmctl)")
    ap.add_argument("-k", dest="only", action="append", default=[], help="run only checks whose name contains this")
    ap.add_argument("-v", action="store_true", help="print the time of each check")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    for b in ("lm-router", "lmctl"):
        if not os.access(os.path.join(build, b), os.X_OK):
            ap.error("no %s in %s" % (b, build))

    tmp = tempfile.mkdtemp(prefix="lm-scenarios-")
    checks = [("files", check_files), ("python", lambda c: check_python(c, tmp)), ("plan", check_plan),
              ("lua-syntax", check_lua_syntax)]
    checks += [("lua-run:" + r[0], lambda c, r=r: check_lua_run(c, *r)) for r in LUA_RUNS]
    checks += [("pkt-file:" + os.path.basename(f), lambda c, f=f: check_pkt_files(c, f))
               for f in sorted(glob.glob(os.path.join(SC, "pktgen", "*.pkt")))]
    checks += [("shell", check_shell)]
    checks += [("trex:" + n, lambda c, p=p, d=d, t=t: check_trex(c, p, d, t)) for n, p, d, t in TREX_CASES]
    checks += [("trex:refused", check_trex_refused)]
    checks += [("pcaps-regen", lambda c: check_pcaps_regen(c, tmp))]
    checks += [("pcap:" + n, lambda c, n=n: check_pcap(c, n)) for n in make_pcaps.STANDARD
               if os.path.exists(os.path.join(SC, "pcaps", n + ".pcap"))]
    checks += [("configs-regen", check_configs_regen), ("configs-plan", check_configs_plan)]
    checks += [("config:" + n, lambda c, n=n: check_config_parse(c, build, n)) for n in sorted(make_configs.generate())
               if os.path.exists(os.path.join(SC, "configs", n))]
    checks += [("replay:" + n, lambda c, n=n: check_replay(c, build, tmp, n))
               for n in ("single-dut.yaml", "single-dut-cross.yaml")]
    checks += [("storm:live", lambda c: check_storm_live(c, build, tmp))]

    passed = failed = 0
    t_all = time.monotonic()
    try:
        for name, fn in checks:
            if a.only and not any(s in name for s in a.only):
                continue
            c = Check(name)
            t0 = time.monotonic()
            try:
                fn(c)
            except Exception:
                c.fail("raised:\n" + traceback.format_exc())
            dt = time.monotonic() - t0
            if c.problems:
                failed += 1
                print("FAIL %s" % name)
                for p in c.problems[:20]:
                    print("     " + p.replace("\n", "\n     "))
                if len(c.problems) > 20:
                    print("     ... and %d more" % (len(c.problems) - 20))
            else:
                passed += 1
                print("ok   %s%s" % (name, "  (%.1f s)" % dt if a.v else ""))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.v:
        print("total %.1f s" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
