#!/usr/bin/python3
"""Run every e2e test script of this folder in turn (and the forwarding demo), print each one's
summary line and the total; exit 1 if any failed. Options: --router PATH (sets LM_ROUTER),
--no-demo, or names of scripts to run (e.g. test_mtu_clamp.py)."""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = ["test_testbed.py", "test_static_forwarding.py", "test_mtu_clamp.py", "test_wan_delay.py",
         "test_dht_resolution.py", "test_migration.py"]


def main(argv):
    env = dict(os.environ)
    names = []
    demo = True
    i = 0
    while i < len(argv):
        if argv[i] == "--router":
            env["LM_ROUTER"] = os.path.abspath(argv[i + 1])
            i += 2
            continue
        if argv[i] == "--no-demo":
            demo = False
        else:
            names.append(argv[i])
        i += 1
    names = names or TESTS + (["demo_forwarding.py"] if demo else [])
    tot_p = tot_f = 0
    bad = []
    t0 = time.monotonic()
    for n in names:
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, n)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(p.stdout)
        m = re.findall(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
        if m:
            tot_p += int(m[-1][0])
            tot_f += int(m[-1][1])
        elif p.returncode == 0:
            tot_p += 1
        else:
            tot_f += 1
        if p.returncode != 0:
            bad.append(n)
        print(f"--- {n}: exit {p.returncode} in {time.monotonic() - t:.1f} s", flush=True)
    print(f"e2e: {len(names)} scripts in {time.monotonic() - t0:.1f} s; failed scripts: {' '.join(bad) or 'none'}")
    print(f"{tot_p} passed, {tot_f} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
