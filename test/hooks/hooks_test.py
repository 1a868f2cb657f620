#!/usr/bin/python3
"""The migration hooks (scripts/hooks/) call lmctl with the right arguments at the right step.

lmctl is replaced by a recorder script (LMCTL=...), so this runs anywhere, without a router."""

import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRIU = os.path.join(REPO, "scripts/hooks/lm-criu-action.sh")
LIBVIRT = os.path.join(REPO, "scripts/hooks/lm-libvirt-qemu-hook.sh")
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    failures += 0 if cond else 1


with tempfile.TemporaryDirectory() as d:
    calls = os.path.join(d, "calls")
    fake = os.path.join(d, "lmctl")
    with open(fake, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {calls}\n[ -n "$FAKE_FAIL" ] && {{ echo boom; exit 1; }}\necho ok\n')
    os.chmod(fake, 0o755)
    mo = os.path.join(d, "mo.env")
    with open(mo, "w") as f:
        f.write('LM_ROUTER=ar2\nLM_TENANT=1\nLM_MO_ID=0x30\nLM_MAC=52:54:00:00:00:30\nLM_PORT=access_t1\n'
                'LM_EIDS="192.0.2.20 2001:db8:1::20"\n')

    def run(argv, env_extra, stdin=""):
        if os.path.exists(calls):
            os.remove(calls)
        env = dict(os.environ, LMCTL=fake, **env_extra)
        r = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=20)
        got = open(calls).read().splitlines() if os.path.exists(calls) else []
        return r, got

    r, got = run([CRIU], {"CRTOOLS_SCRIPT_ACTION": "pre-dump", "LM_MO_ENV": mo})
    check("criu pre-dump -> migrate-begin on the source router", r.returncode == 0 and
          got == ["-f ar2 migrate-begin --tenant 1 --mo 0x30"], got)
    r, got = run([CRIU], {"CRTOOLS_SCRIPT_ACTION": "post-restore", "LM_MO_ENV": mo})
    check("criu post-restore -> attach with every EID", r.returncode == 0 and
          got == ["-f ar2 attach --tenant 1 --mo 0x30 --mac 52:54:00:00:00:30 --port access_t1 192.0.2.20 2001:db8:1::20"], got)
    r, got = run([CRIU], {"CRTOOLS_SCRIPT_ACTION": "post-dump", "LM_MO_ENV": mo})
    check("criu: other actions call nothing", r.returncode == 0 and got == [], got)
    r, got = run([CRIU], {"CRTOOLS_SCRIPT_ACTION": "pre-dump", "LM_MO_ENV": mo, "FAKE_FAIL": "1"})
    check("criu: a failing lmctl never fails the migration", r.returncode == 0 and len(got) == 1,
          (r.returncode, r.stderr))

    doms = os.path.join(d, "domains")
    os.mkdir(doms)
    with open(os.path.join(doms, "vm1.env"), "w") as f:
        f.write(open(mo).read() + 'LM_ROUTER=ar3\nLM_OLD_ARS="local:ar1 local:ar2"\n')
    env = {"LM_DOMAINS_DIR": doms}
    r, got = run([LIBVIRT, "vm1", "migrate", "begin", "-"], env, "<domain/>")
    check("libvirt migrate begin -> migrate-begin on every listed AR", r.returncode == 0 and
          got == ["-f ar1 migrate-begin --tenant 1 --mo 0x30", "-f ar2 migrate-begin --tenant 1 --mo 0x30"], got)
    r, got = run([LIBVIRT, "vm1", "started", "begin", "-"], env, "<domain/>")
    check("libvirt started begin -> attach on the local AR", r.returncode == 0 and
          got == ["-f ar3 attach --tenant 1 --mo 0x30 --mac 52:54:00:00:00:30 --port access_t1 192.0.2.20 2001:db8:1::20"], got)
    r, got = run([LIBVIRT, "vm1", "stopped", "end", "-"], env, "<domain/>")
    check("libvirt: other operations call nothing", r.returncode == 0 and got == [], got)
    r, got = run([LIBVIRT, "other-vm", "migrate", "begin", "-"], env, "<domain/>")
    check("libvirt: a domain without a description is left alone", r.returncode == 0 and got == [], got)

print(f"hooks: {failures} failure(s)")
sys.exit(1 if failures else 0)
