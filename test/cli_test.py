#!/usr/bin/python3
"""lm-router's command line and config errors: what an operator sees before any packet moves."""
import os, subprocess, sys, tempfile

ROUTER = sys.argv[1] if len(sys.argv) > 1 else "build/lm-router"
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
    passed, failed = passed + ok, failed + (not ok)


def run(*args, timeout=20):
    p = subprocess.run([ROUTER, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


rc, out = run("--version")
check("--version prints the version", rc == 0 and out.startswith("lm-router "), out)
rc, out = run("--help")
check("--help lists --config", rc == 0 and "--config" in out and "usage:" in out, out)
rc, out = run("--no-huge", "--", "--bogus")
check("unknown option is a usage error", rc == 2 and "bogus" in out, out)
rc, out = run("--no-huge", "--")
check("missing --config is a usage error", rc == 2 and "--config FILE is required" in out, out)
rc, out = run("--no-huge", "--", "--config", "/nonexistent/ar.yaml")
check("missing file names the file", rc == 2 and "/nonexistent/ar.yaml: cannot open config file" in out, out)
rc, out = run("--no-huge", "--", "--config", "x.yaml", "--log-level", "loud")
check("bad log level names the value", rc == 2 and "'loud'" in out, out)

with tempfile.TemporaryDirectory() as d:
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("router:\n  name: ar1\n  wokers: 2\n")
    rc, out = run("--no-huge", "--", "--config", bad)
    check("typo in a key: file, line and key path", rc == 2 and f"{bad}:3: router.wokers" in out, out)
    with open(bad, "w") as f:
        f.write("router: [\n")
    rc, out = run("--no-huge", "--", "--config", bad)
    check("YAML syntax error: file and line", rc == 2 and "YAML syntax error" in out and bad in out, out)
    good = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "example-ar1.yaml")
    rc, out = run("--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--no-telemetry", "--lcores", "0@0,1@1,2@1",
                  "--log-level=lib.eal:error", "--", "--config", good)
    check("valid config, missing device: clear error, exit 1", rc == 1 and "no DPDK device named" in out, out)
    rc, out = run("--check-config", "--config", good)
    check("--check-config on a valid file: exit 0, no EAL", rc == 0 and "configuration valid" in out and "EAL" not in out, out)
    with open(bad, "w") as f:
        f.write("router:\n  name: ar1\n  wokers: 2\n")
    rc, out = run("--check-config", "--config", bad)
    check("--check-config on a bad file: exit 2, file:line and key", rc == 2 and f"{bad}:3: router.wokers" in out, out)

# Every counter the code defines is documented for operators.
src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import re  # noqa: E402
hdr = open(os.path.join(src, "common", "counters.hpp")).read()
names = re.findall(r'X\(\w+, "(\w+)"\)', hdr)
ops = open(os.path.join(src, "docs", "operations.md")).read()
missing = [n for n in names if f"`{n}`" not in ops]
check(f"docs/operations.md documents all {len(names)} counters", not missing, f"missing: {missing}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
