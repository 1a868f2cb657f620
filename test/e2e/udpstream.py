#!/usr/bin/python3
"""Sequence-numbered UDP stream, plain sockets (no scapy), IPv4 or IPv6.

  udpstream.py recv --port P [--count N] [--idle S] [--timeout S] [--stream ID]
      Binds [::]:P (dual stack), prints "ready", receives until N distinct sequence numbers
      arrived, or S seconds passed without a packet after the first one, or the timeout.
      Prints one JSON line: received (distinct), lost (N - distinct), duplicates, reordered
      (arrived after a higher sequence number), missing ranges, largest gap between arrivals
      (ms) and where it was, first/last arrival times (CLOCK_REALTIME, s).
  udpstream.py send --dst ADDR --port P [--count N] [--rate PPS] [--size BYTES] [--stream ID]
      Sends N datagrams paced at PPS, payload: b"LMSQ", stream id (u32), sequence (u64),
      send time (f64), padding to BYTES. Prints one JSON line: sent, errors, seconds.
"""

import argparse
import json
import socket
import struct
import sys
import time

MAGIC = b"LMSQ"
HDR = struct.Struct("!4sIQd")


def recv(a):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("::", a.port))
    print("ready", flush=True)
    seen = {}
    dups = reordered = 0
    max_seq = -1
    last_arrival = first_arrival = None
    arrivals = []  # (time, seq)
    start = time.monotonic()
    while True:
        now = time.monotonic()
        if a.count and len(seen) >= a.count:
            break
        if now - start > a.timeout:
            break
        if last_arrival is not None and now - last_arrival > a.idle:
            break
        wait = a.timeout - (now - start)
        if last_arrival is not None:
            wait = min(wait, a.idle - (now - last_arrival))
        s.settimeout(max(0.01, wait))
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            continue
        t = time.monotonic()
        if len(data) < HDR.size:
            continue
        magic, stream, seq, _ = HDR.unpack_from(data)
        if magic != MAGIC or stream != a.stream:
            continue
        if first_arrival is None:
            first_arrival = time.time()
        last_arrival = t
        if seq in seen:
            dups += 1
            continue
        if seq < max_seq:
            reordered += 1
        max_seq = max(max_seq, seq)
        seen[seq] = t
        arrivals.append((t, seq))
    # gaps
    max_gap = 0.0
    gap_after = None
    for (t0, s0), (t1, s1) in zip(arrivals, arrivals[1:]):
        if t1 - t0 > max_gap:
            max_gap, gap_after = t1 - t0, s0
    n = a.count if a.count else (max_seq + 1)
    missing = []
    run_start = None
    for i in range(n):
        if i not in seen:
            if run_start is None:
                run_start = i
        elif run_start is not None:
            missing.append([run_start, i - 1])
            run_start = None
    if run_start is not None:
        missing.append([run_start, n - 1])
    out = {"received": len(seen), "expected": n, "lost": n - len([q for q in seen if q < n]),
           "duplicates": dups, "reordered": reordered, "missing": missing[:50],
           "max_gap_ms": round(max_gap * 1000, 3), "max_gap_after_seq": gap_after,
           "first_rx": first_arrival, "last_rx": time.time() - (time.monotonic() - last_arrival) if last_arrival else None}
    print(json.dumps(out), flush=True)
    return 0


def send(a):
    fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    pad = b"\0" * max(0, a.size - HDR.size)
    errors = 0
    err_kinds = {}
    start = time.monotonic()
    for seq in range(a.count):
        due = start + seq / a.rate
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        try:
            s.sendto(HDR.pack(MAGIC, a.stream, seq, time.time()) + pad, (a.dst, a.port))
        except OSError as e:
            errors += 1
            err_kinds[e.strerror] = err_kinds.get(e.strerror, 0) + 1
    out = {"sent": a.count - errors, "attempted": a.count, "errors": errors, "error_kinds": err_kinds,
           "seconds": round(time.monotonic() - start, 3)}
    print(json.dumps(out), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, default=0)
    r.add_argument("--idle", type=float, default=1.0)
    r.add_argument("--timeout", type=float, default=30.0)
    r.add_argument("--stream", type=int, default=1)
    t = sub.add_parser("send")
    t.add_argument("--dst", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--count", type=int, default=100)
    t.add_argument("--rate", type=float, default=100.0)
    t.add_argument("--size", type=int, default=200)
    t.add_argument("--stream", type=int, default=1)
    a = ap.parse_args()
    return recv(a) if a.cmd == "recv" else send(a)


if __name__ == "__main__":
    sys.exit(main())
