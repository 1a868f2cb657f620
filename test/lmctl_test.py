#!/usr/bin/python3
"""lmctl: the PKI commands (domain CA, AR identities) and the router queries over DPDK telemetry.

usage: test/lmctl_test.py BUILD_DIR   (needs BUILD_DIR/lmctl and BUILD_DIR/lm-router; root for --file-prefix
under /var/run/dpdk). Starts one lm-router on net_null devices: their rx floods garbage frames, which the
router drops with counters, so stats/drops/ports show non-zero numbers.
"""
import json, os, shutil, signal, stat, subprocess, sys, tempfile, time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
LMCTL = os.path.join(BUILD, "lmctl")
ROUTER = os.path.join(BUILD, "lm-router")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    ok = bool(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"), flush=True)
    passed, failed = passed + ok, failed + (not ok)


def lmctl(*args, timeout=30):
    p = subprocess.run([LMCTL, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def runtime_dir(prefix):
    base = "/var/run" if os.getuid() == 0 else (os.environ.get("XDG_RUNTIME_DIR") or "/tmp")
    return os.path.join(base, "dpdk", prefix)


# ---- usage errors ----------------------------------------------------------------------------------------------
rc, out, err = lmctl("--version")
check("--version", rc == 0 and out.startswith("lmctl "), out + err)
rc, out, err = lmctl("--help")
check("--help lists the commands", rc == 0 and all(w in out for w in ("pki init", "mappings", "raw CMD")), out)
rc, out, err = lmctl()
check("no command: exit 2 with usage", rc == 2 and "no command" in err and "usage:" in err, err)
rc, out, err = lmctl("frobnicate")
check("unknown command: exit 2 naming it", rc == 2 and "'frobnicate'" in err and "usage:" in err, err)
rc, out, err = lmctl("--bogus", "info")
check("unknown option: exit 2 naming it", rc == 2 and "--bogus" in err, err)
rc, out, err = lmctl("stats", "--worker", "x1")
check("bad --worker value: exit 2 naming it", rc == 2 and "--worker" in err and "'x1'" in err, err)
rc, out, err = lmctl("info", "--page", "1")
check("option of another command: exit 2", rc == 2 and "--page" in err, err)
rc, out, err = lmctl("raw")
check("raw without CMD: exit 2", rc == 2 and "raw" in err, err)
rc, out, err = lmctl("-f", "a", "--socket", "/x", "info")
check("-f and --socket together: exit 2", rc == 2 and "--socket" in err, err)

# ---- pki -------------------------------------------------------------------------------------------------------
tmp = tempfile.mkdtemp(prefix="lmctl-test-")
try:
    pki = os.path.join(tmp, "pki")
    rc, out, err = lmctl("pki", "init")
    check("pki init without --dir: exit 2 naming --dir", rc == 2 and "--dir" in err, err)
    rc, out, err = lmctl("pki", "renew", "--dir", pki)
    check("unknown pki subcommand: exit 2 naming it", rc == 2 and "'renew'" in err, err)
    rc, out, err = lmctl("pki")
    check("pki without subcommand: exit 2", rc == 2 and "init" in err, err)
    rc, out, err = lmctl("pki", "init", "--dir", pki, "--days", "0")
    check("pki init --days 0: exit 2", rc == 2 and "--days" in err and not os.path.exists(pki), err)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar1")
    check("pki issue without a CA: exit 1 naming the directory", rc == 1 and pki in err, err)

    rc, out, err = lmctl("pki", "init", "--dir", pki, "--name", "Example LM Domain CA", "--days", "365")
    ca_key, ca_crt = os.path.join(pki, "ca.key"), os.path.join(pki, "ca.crt")
    check("pki init creates ca.key and ca.crt", rc == 0 and os.path.isfile(ca_key) and os.path.isfile(ca_crt),
          out + err)
    check("ca.key is mode 0600", os.path.isfile(ca_key) and stat.S_IMODE(os.stat(ca_key).st_mode) == 0o600)
    ca_before = open(ca_crt).read() if os.path.isfile(ca_crt) else ""

    def x509(path, *what):
        p = subprocess.run(["openssl", "x509", "-noout", *what, "-in", path], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    rc, out = x509(ca_crt, "-subject", "-issuer")
    check("CA certificate is self-signed with the given name",
          rc == 0 and out.count("CN = Example LM Domain CA") == 2, out)

    rc, out, err = lmctl("pki", "init", "--dir", pki)
    check("pki init refuses to overwrite the CA", rc != 0 and "--force" in err and "ca." in err
          and open(ca_crt).read() == ca_before, out + err)

    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar1")
    ar_key, ar_crt = os.path.join(pki, "ar1.key"), os.path.join(pki, "ar1.crt")
    check("pki issue creates ar1.key and ar1.crt", rc == 0 and os.path.isfile(ar_key) and os.path.isfile(ar_crt),
          out + err)
    check("pki issue prints the YAML dht: lines", "identity_key: ar1.key" in out and "ca_cert: ca.crt" in out, out)
    check("ar1.key is mode 0600", os.path.isfile(ar_key) and stat.S_IMODE(os.stat(ar_key).st_mode) == 0o600)
    rc, out = x509(ar_crt, "-subject", "-issuer")
    subj = [l for l in out.splitlines() if l.startswith("subject")]
    iss = [l for l in out.splitlines() if l.startswith("issuer")]
    check("AR certificate: CN ar1, issued by the CA",
          rc == 0 and subj and "CN = ar1" in subj[0] and iss and "CN = Example LM Domain CA" in iss[0], out)
    p = subprocess.run(["openssl", "verify", "-CAfile", ca_crt, ar_crt], capture_output=True, text=True)
    check("openssl verifies ar1.crt against ca.crt", p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr)
    p = subprocess.run(["openssl", "pkey", "-in", ar_key, "-pubout"], capture_output=True, text=True)
    q = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", ar_crt], capture_output=True, text=True)
    check("ar1.key matches ar1.crt", p.returncode == 0 and p.stdout == q.stdout, p.stderr + q.stderr)

    ar1_before = open(ar_crt).read()
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar1")
    check("pki issue refuses to overwrite ar1", rc != 0 and "--force" in err and open(ar_crt).read() == ar1_before,
          out + err)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar1", "--force")
    check("pki issue --force replaces ar1", rc == 0 and open(ar_crt).read() != ar1_before, out + err)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar2", "--days", "30")
    rc2, out2 = x509(os.path.join(pki, "ar2.crt"), "-subject", "-issuer") if rc == 0 else (1, "")
    check("a second pki issue (ar2) works", rc == 0 and "CN = ar2" in out2 and "CN = Example LM Domain CA" in out2
          and stat.S_IMODE(os.stat(os.path.join(pki, "ar2.key")).st_mode) == 0o600, out + err + out2)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "../evil")
    check("pki issue rejects a name that is a path: exit 2", rc == 2 and "../evil" in err
          and not os.path.exists(os.path.join(tmp, "evil.key")), err)
    rc, out, err = lmctl("pki", "issue", "--dir", pki)
    check("pki issue without --name: exit 2", rc == 2 and "--name" in err, err)
    rc, out = x509(ar_crt, "-text")
    check("default key type: Ed25519 CA and AR", rc == 0 and "Public Key Algorithm: ED25519" in out
          and "Signature Algorithm: ED25519" in out, out)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar3", "--key-type", "rsa3072")
    rc2, out2 = x509(os.path.join(pki, "ar3.crt"), "-text") if rc == 0 else (1, "")
    check("pki issue --key-type rsa3072: an RSA AR under the Ed25519 CA", rc == 0 and "(rsa3072)" in out
          and "Public-Key: (3072 bit)" in out2, out + err + out2)
    p = subprocess.run(["openssl", "verify", "-CAfile", ca_crt, os.path.join(pki, "ar3.crt")], capture_output=True,
                       text=True)
    check("openssl verifies the RSA ar3.crt against the Ed25519 CA", p.returncode == 0, p.stdout + p.stderr)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar4", "--key-type", "rsa1024")
    check("pki issue --key-type rsa1024: exit 2 naming the choices", rc == 2 and "rsa1024" in err and "ed25519" in err
          and not os.path.exists(os.path.join(pki, "ar4.key")), err)
    rc, out, err = lmctl("pki", "init", "--dir", pki, "--force", "--name", "New CA", "--key-type", "rsa2048")
    rc2, out2 = x509(ca_crt, "-subject", "-text")
    check("pki init --force replaces the CA (--key-type rsa2048)", rc == 0 and "New CA" in out2
          and "Public-Key: (2048 bit)" in out2, out + err + out2)
    rc, out, err = lmctl("pki", "issue", "--dir", pki, "--name", "ar5")
    rc2, out2 = x509(os.path.join(pki, "ar5.crt"), "-text") if rc == 0 else (1, "")
    check("pki issue without --key-type under an RSA CA: an RSA AR (routers before Ed25519 can read it)",
          rc == 0 and "(rsa2048)" in out and "Public-Key: (2048 bit)" in out2, out + err + out2)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

# ---- router queries --------------------------------------------------------------------------------------------
PREFIX = f"lmctl-test-{os.getpid()}"
SOCK = os.path.join(runtime_dir(PREFIX), "dpdk_telemetry.v2")

rc, out, err = lmctl("-f", PREFIX, "info")
check("router not running: exit 1 naming the socket", rc == 1 and SOCK in err, err)
rc, out, err = lmctl("--socket", "/nonexistent/dpdk_telemetry.v2", "stats")
check("--socket to nothing: exit 1 naming it", rc == 1 and "/nonexistent/dpdk_telemetry.v2" in err, err)

CONFIG = """\
# lmctl test router: documentation addresses only (RFC 5737 / RFC 3849).
router:
  name: ar-lmctl-test
  workers: 1
  idle_backoff_us: 100
  udp_port: 4341
  log_level: info
locators:
  v4: 198.51.100.1
  v6: 2001:db8:100::1
gateway:
  ipv4: 192.0.2.1
  ipv6: 2001:db8:1::1
  mac: 02:00:5e:00:00:01
ports:
  - { name: access0, device: net_null0, role: access, tenant: 1 }
  - { name: core0, device: net_null1, role: core }
core:
  port: core0
  next_hop: { ipv4: 198.51.100.254, ipv6: 2001:db8:100::fe, mac: 02:00:00:00:ff:fe }
mobile_prefixes:
  - 192.0.2.0/25
  - { prefix: 2001:db8:1::/64, tenant: 1 }
peer_prefixes:
  - 198.51.100.0/24
  - 2001:db8:100::/48
static_attachments:
  - { tenant: 1, mo_id: 7, eids: [192.0.2.10], mac: 02:00:00:00:00:10, port: access0 }
static_mappings:
  - { tenant: 1, eid: 192.0.2.20, mo_id: 0x2a, locator: 198.51.100.2, epoch: 1 }
  - { tenant: 1, eid: 2001:db8:1::20, mo_id: 0x2a, locator: 2001:db8:100::2, epoch: 3 }
"""
# 70 more mappings so that the listing needs two telemetry pages of 64: 73 rows with the attachment.
EXTRA = 70
CONFIG += "".join(f"  - {{ tenant: 1, eid: '2001:db8:1::{0x1000 + i:x}', mo_id: {0x100 + i}, "
                  f"locator: 198.51.100.9, epoch: 2 }}\n" for i in range(EXTRA))
TOTAL = 3 + EXTRA

tmp = tempfile.mkdtemp(prefix="lmctl-test-")
router = None
log_path = os.path.join(tmp, "router.log")
try:
    cfg = os.path.join(tmp, "ar.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    log = open(log_path, "w")
    router = subprocess.Popen([ROUTER, "--no-huge", "--no-pci", "-m", "128", "--file-prefix", PREFIX, "-l", "0-1",
                               "--log-level=lib.eal:error", "--vdev", "net_null0", "--vdev", "net_null1",
                               "--", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    running = False
    while time.time() < deadline and router.poll() is None:
        if "running" in open(log_path).read() and os.path.exists(SOCK):
            running = True
            break
        time.sleep(0.1)
    check("router starts on net_null devices", running, open(log_path).read()[-2000:])
    if running:
        time.sleep(0.5)  # let the null rx flood feed the counters

        def table(out):
            """Rows of a two-column table, header skipped."""
            rows = {}
            for line in out.splitlines()[1:]:
                parts = line.split()
                if len(parts) == 2:
                    rows[parts[0]] = parts[1]
            return rows

        rc, out, err = lmctl("-f", PREFIX, "info")
        check("info: exit 0, router name", rc == 0 and "ar-lmctl-test" in out and "198.51.100.1" in out, out + err)
        rc, out, err = lmctl("--socket", SOCK, "info")
        check("info via --socket PATH", rc == 0 and "ar-lmctl-test" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "--json", "info")
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        check("info --json parses, name and workers", rc == 0 and j.get("/lm/info", {}).get("name") == "ar-lmctl-test"
              and j["/lm/info"].get("workers") == 1, out + err)

        rc, out, err = lmctl("-f", PREFIX, "stats")
        t = table(out)
        check("stats: exit 0, counters and non-zero dropped", rc == 0 and "updates_applied" in t
              and int(t.get("dropped", "0")) > 0 and "control_misses" in t, out + err)
        rc, out, err = lmctl("-f", PREFIX, "stats", "--worker", "0")
        t = table(out.split("\n", 1)[1] if out.startswith("worker") else out)
        check("stats --worker 0: per-worker counters", rc == 0 and "dropped" in t and "control_misses" not in t,
              out + err)
        rc, out, err = lmctl("-f", PREFIX, "stats", "--worker", "7")
        check("stats --worker 7 (no such worker): exit 2 naming it", rc == 2 and "--worker 7" in err, out + err)
        rc, out, err = lmctl("-f", PREFIX, "stats", "--json")
        try:
            j = json.loads(out)["/lm/stats"]
        except (ValueError, KeyError):
            j = {}
        check("stats --json parses", rc == 0 and isinstance(j.get("dropped"), int) and j["dropped"] > 0, out + err)

        rc, out, err = lmctl("-f", PREFIX, "drops")
        t = table(out)
        check("drops: only non-zero reasons", rc == 0 and t and all(int(v) > 0 for v in t.values()), out + err)
        rc, out, err = lmctl("-f", PREFIX, "drops", "--all")
        t = table(out)
        check("drops --all: every reason, zeros too", rc == 0 and len(t) > 10 and "0" in t.values()
              and "too_short" in t, out + err)
        rc, out, err = lmctl("-f", PREFIX, "drops", "--worker", "0", "--json")
        try:
            j = json.loads(out)["/lm/drops,0"]
        except (ValueError, KeyError):
            j = {}
        check("drops --worker 0 --json parses", rc == 0 and len(j) > 10 and sum(j.values()) > 0, out + err)

        rc, out, err = lmctl("-f", PREFIX, "ports")
        lines = out.splitlines()
        rows = [l.split() for l in lines[1:]]
        check("ports: both ports with device, role, counters", rc == 0 and len(rows) == 2
              and rows[0][:4] == ["0", "access0", "net_null0", "access"]
              and rows[1][:4] == ["1", "core0", "net_null1", "core"] and int(rows[0][4]) > 0
              and "rx_packets" in lines[0], out + err)
        rc, out, err = lmctl("-f", PREFIX, "--json", "ports")
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        check("ports --json parses", rc == 0 and j.get("/lm/port") == {"access0": 0, "core0": 1}
              and j.get("/lm/port,1", {}).get("device") == "net_null1", out + err)

        rc, out, err = lmctl("-f", PREFIX, "mappings")
        rows = [l.split() for l in out.splitlines()[2:]]
        check(f"mappings: all {TOTAL} rows from both pages", rc == 0 and out.startswith(f"{TOTAL} mapping")
              and len(rows) == TOTAL and len({r[1] for r in rows}) == TOTAL
              and f"2001:db8:1::{0x1000 + EXTRA - 1:x}" in out, out[:300] + err)
        check("mappings: the static mappings and the attachment", rc == 0
              and "192.0.2.20" in out and "locator 198.51.100.2 epoch 1" in out
              and "2001:db8:1::20" in out and "2001:db8:100::2 epoch 3" in out
              and ["1", "192.0.2.10", "0x7", "local", "port", "0", "mac", "02:00:00:00:00:10"] in rows, out + err)
        rc, out, err = lmctl("-f", PREFIX, "mappings", "--json")
        try:
            j = json.loads(out)
            p0, p1 = j["/lm/mappings,0"], j["/lm/mappings,1"]
        except (ValueError, KeyError):
            p0 = p1 = {}
        check("mappings --json parses, both pages", rc == 0 and p0.get("total") == TOTAL and p0.get("pages") == 2
              and len(p0.get("entries", [])) == 64 and len(p1.get("entries", [])) == TOTAL - 64, out[:300] + err)
        rc, out, err = lmctl("-f", PREFIX, "mappings", "--page", "1")
        check("mappings --page 1: the rest", rc == 0 and len(out.splitlines()) == 2 + TOTAL - 64
              and "page 1" in out.splitlines()[0], out + err)
        rc, out, err = lmctl("-f", PREFIX, "mappings", "--page", "5")
        check("mappings --page 5 (past the end): empty page", rc == 0 and "192.0.2.20" not in out, out + err)

        rc, out, err = lmctl("-f", PREFIX, "nexthop")
        check("nexthop: static next hops", rc == 0 and "198.51.100.254" in out and "2001:db8:100::fe" in out
              and "02:00:00:00:ff:fe" in out and "static" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "dht")
        check("dht: counters, disabled without a dht: section", rc == 0 and "disabled" in out
              and table(out.split("\n", 1)[1]).get("enabled") == "0", out + err)
        rc, out, err = lmctl("-f", PREFIX, "--json", "dht")
        try:
            j = json.loads(out)["/lm/dht"]
        except (ValueError, KeyError):
            j = {}
        check("dht --json parses", rc == 0 and j.get("enabled") == 0 and "resolves" in j, out + err)

        rc, out, err = lmctl("-f", PREFIX, "raw", "/lm/info")
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        check("raw /lm/info prints the JSON", rc == 0 and j.get("/lm/info", {}).get("name") == "ar-lmctl-test",
              out + err)
        rc, out, err = lmctl("-f", PREFIX, "raw", "/lm/port,1")
        check("raw /lm/port,1", rc == 0 and '"core0"' in out, out + err)
        # attach / detach: the MO appears in (and leaves) the control lcore's table.
        rc, out, err = lmctl("-f", PREFIX, "attach", "--tenant", "1", "--mo", "0x55", "--mac", "02:00:00:00:00:55",
                             "--port", "access0", "192.0.2.55", "2001:db8:1::55")
        check("attach: ok", rc == 0 and out.strip() == "ok", out + err)
        rc, out, err = lmctl("-f", PREFIX, "mappings")
        check("attach: both EIDs are local mappings", rc == 0 and out.startswith(f"{TOTAL + 2} mapping")
              and "192.0.2.55" in out and "2001:db8:1::55" in out and "0x55" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "attached")
        check("attached lists the static and the new MO", rc == 0 and "mo 0x7" in out and "mo 0x55" in out
              and "not published" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "attached", "--page", "0")
        check("attached --page 0: the page header and both MOs", rc == 0 and "2 MO(s) attached in 1 page(s)" in out
              and "mo 0x55" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "attached", "--page", "x")
        check("attached --page x: usage error", rc == 2 and "--page" in err + out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "attach", "--tenant", "1", "--mo", "0x56", "--mac", "02:00:00:00:00:56",
                             "--port", "access0", "192.0.2.55")
        check("attach: an EID of another attached MO is refused", rc == 1 and "belongs to attached MO 0x55" in out,
              out + err)
        rc, out, err = lmctl("-f", PREFIX, "attach", "--tenant", "1", "--mo", "0x56", "--mac", "02:00:00:00:00:56",
                             "--port", "core0", "192.0.2.56")
        check("attach: a core port is refused", rc == 1 and "not an access port" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "attach", "--tenant", "1", "--mo", "0x56", "--port", "access0", "192.0.2.56")
        check("attach without --mac: usage error", rc == 2 and "--mac" in err, out + err)
        rc, out, err = lmctl("-f", PREFIX, "detach", "--tenant", "1", "--mo", "0x55")
        check("detach: ok", rc == 0 and out.strip() == "ok", out + err)
        rc, out, err = lmctl("-f", PREFIX, "mappings")
        check("detach: its EIDs are gone", rc == 0 and out.startswith(f"{TOTAL} mapping") and "192.0.2.55" not in out,
              out + err)
        rc, out, err = lmctl("-f", PREFIX, "detach", "--tenant", "1", "--mo", "0x55")
        check("detach twice: refused, exit 1", rc == 1 and "not attached here" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "resolve", "--tenant", "1", "192.0.2.20")
        check("resolve without a dht section says so", rc == 0 and "no LM directory" in out, out + err)

        rc, out, err = lmctl("-f", PREFIX, "raw", "/lm/nosuchcommand")
        check("raw unknown command: null, exit 1", rc == 1 and "null" in out, out + err)
        rc, out, err = lmctl("-f", PREFIX, "raw", "lm/info")
        check("raw without a leading '/': exit 2", rc == 2 and "lm/info" in err, out + err)

    router.send_signal(signal.SIGTERM)
    try:
        router.wait(timeout=15)
        check("router stops on SIGTERM", router.returncode == 0, f"exit {router.returncode}")
    except subprocess.TimeoutExpired:
        check("router stops on SIGTERM", False, "still running after 15 s")
    rc, out, err = lmctl("-f", PREFIX, "stats")
    check("after the router stopped: exit 1 naming the socket", rc == 1 and SOCK in err, out + err)
finally:
    if router and router.poll() is None:
        router.kill()
        router.wait()
    shutil.rmtree(runtime_dir(PREFIX), ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
