#!/usr/bin/python3
"""Two lm-router processes form the LM directory on loopback, once over IPv4 and once IPv6-only:
each publishes its attached MO, the other resolves it (lmctl resolve), a detach --withdraw is seen
as withdrawn. Needs root (EAL runtime directory); exit 77 otherwise."""
import os, shutil, signal, subprocess, sys, tempfile, time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROUTER, LMCTL = os.path.join(BUILD, "lm-router"), os.path.join(BUILD, "lmctl")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
    passed, failed = passed + ok, failed + (not ok)


def lmctl(*args):
    p = subprocess.run([LMCTL, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


CONFIG = """router: {{ name: ar{n} }}
locators: {{ v4: 198.51.100.{n} }}
gateway: {{ ipv4: 192.0.2.1, mac: 02:00:5e:00:00:01 }}
ports:
  - {{ name: a, device: net_null{a}, role: access, tenant: 1 }}
  - {{ name: c, device: net_null{c}, role: core }}
core: {{ next_hop: {{ ipv4: 198.51.100.254, mac: 02:00:00:00:ff:fe }} }}
mobile_prefixes: [192.0.2.0/24]
peer_prefixes: [198.51.100.0/24]
static_attachments:
  - {{ tenant: 1, mo_id: {n}, eids: [192.0.2.1{n}], mac: 02:00:00:00:00:1{n}, port: a }}
dht:
  port: {port}
{bind}
  bootstrap: ["{boot}"]
  ca_cert: pki/ca.crt
  identity_key: pki/ar{n}.key
  identity_cert: pki/ar{n}.crt
  max_peer_req_per_sec: -1
"""


def run_pair(d, family):
    base = 4300 + os.getpid() % 500 * 2 + (0 if family == 4 else 1000)
    procs, prefixes = [], []
    try:
        for n in (1, 2):
            port, other = base + n, base + 3 - n
            bind = "  bind4: 127.0.0.1" if family == 4 else '  bind6: "::1"'
            boot = f"127.0.0.1:{other}" if family == 4 else f"[::1]:{other}"
            cfg = os.path.join(d, f"ar{n}-v{family}.yaml")
            with open(cfg, "w") as f:
                f.write(CONFIG.format(n=n, a=n * 2, c=n * 2 + 1, port=port, bind=bind, boot=boot))
            prefix = f"lmdht{os.getpid()}v{family}n{n}"
            prefixes.append(prefix)
            procs.append(subprocess.Popen(
                [ROUTER, "--no-huge", "--no-pci", "-m", "128", "--file-prefix", prefix, "-l", "0-1",
                 "--log-level=lib.eal:error", "--vdev", f"net_null{n * 2},no-rx=1", "--vdev", f"net_null{n * 2 + 1},no-rx=1",
                 "--", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        # Both nodes publish at start; give them a moment to find each other, then ask.
        answer = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rc, answer = lmctl("-f", prefixes[0], "resolve", "--tenant", "1", "192.0.2.12")
            if rc == 0 and "found" in answer and "not found" not in answer:
                break
            time.sleep(0.5)
        check(f"IPv{family}: ar1 resolves ar2's MO through the DHT",
              "found mo=0x2" in answer and "loc4=198.51.100.2" in answer and "pub=ar2" in answer, answer)
        rc, out = lmctl("-f", prefixes[1], "resolve", "--tenant", "1", "192.0.2.11")
        check(f"IPv{family}: ar2 resolves ar1's MO", "found mo=0x1" in out and "pub=ar1" in out, out)
        rc, out = lmctl("-f", prefixes[1], "detach", "--tenant", "1", "--mo", "2", "--withdraw")
        check(f"IPv{family}: detach --withdraw on ar2", rc == 0 and out.strip() == "ok", out)
        deadline, out = time.monotonic() + 10, ""
        while time.monotonic() < deadline:
            rc, out = lmctl("-f", prefixes[0], "resolve", "--tenant", "1", "192.0.2.12")
            if "withdrawn" in out:
                break
            time.sleep(0.5)
        check(f"IPv{family}: ar1 then sees the tombstone", "withdrawn" in out and "WITHDRAWN" in out, out)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for prefix in prefixes:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    check(f"IPv{family}: both routers stop cleanly", all(p.returncode == 0 for p in procs),
          [p.returncode for p in procs])


if os.geteuid() != 0:
    print("SKIP: needs root")
    sys.exit(77)
with tempfile.TemporaryDirectory(prefix="lmdht-") as d:
    os.chdir(d)
    for args in (["pki", "init", "--dir", "pki"], ["pki", "issue", "--dir", "pki", "--name", "ar1"],
                 ["pki", "issue", "--dir", "pki", "--name", "ar2"]):
        rc, out = lmctl(*args)
        check(f"lmctl {' '.join(args[:2])} {args[-1]}", rc == 0, out)
    run_pair(d, 4)
    run_pair(d, 6)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
