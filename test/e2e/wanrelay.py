#!/usr/bin/python3
"""User-space WAN emulator: relays Ethernet frames between pairs of interfaces with a fixed delay
and an optional random loss per direction. It replaces `tc netem`, which this kernel lacks
(CONFIG_NET_SCH_NETEM is not set). Run it inside the namespace that holds the interfaces:

    wanrelay.py --link A,B,DELAY_A2B_MS,DELAY_B2A_MS,LOSS_A2B_PCT,LOSS_B2A_PCT [--link ...] [--seed N]

Each direction is a FIFO with a constant delay, so frames are never reordered, and it has no
length limit, so the emulator never drops a frame on its own (only the configured loss does).
Prints "ready" on stdout once every socket is bound; on SIGTERM/SIGINT prints a JSON line of
per-direction counters on stderr and exits 0.
"""

import argparse
import collections
import errno
import json
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32


def open_if(name: str) -> socket.socket:
    # protocol 0 at creation: nothing is received until bind() names the interface
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)   # not our own (or anyone's) transmissions
    s.bind((name, ETH_P_ALL))
    s.setblocking(False)
    return s


class Direction:
    def __init__(self, name, rx, tx, delay_ms, loss_pct):
        self.name, self.rx, self.tx = name, rx, tx
        self.delay = delay_ms / 1000.0
        self.loss = loss_pct / 100.0
        self.q = collections.deque()
        self.stats = {"rx": 0, "tx": 0, "lost": 0, "tx_err": 0, "max_queue": 0}

    def send(self, fr):
        try:
            self.tx.send(fr)
            self.stats["tx"] += 1
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ENOBUFS):
                # never drop because of the emulator: wait for room (rare; big socket buffers)
                time.sleep(0.0002)
                try:
                    self.tx.send(fr)
                    self.stats["tx"] += 1
                    return
                except OSError:
                    pass
            self.stats["tx_err"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--link", action="append", required=True)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    stop = [False]

    def on_sig(*_):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)

    dirs = []
    by_fd = {}
    for spec in a.link:
        f = spec.split(",")
        if len(f) != 6:
            sys.exit(f"wanrelay: bad --link {spec!r}")
        ia, ib = f[0], f[1]
        da, db, la, lb = (float(x) for x in f[2:])
        sa, sb = open_if(ia), open_if(ib)
        d1 = Direction(f"{ia}->{ib}", sa, sb, da, la)
        d2 = Direction(f"{ib}->{ia}", sb, sa, db, lb)
        dirs += [d1, d2]
        by_fd[sa.fileno()] = d1
        by_fd[sb.fileno()] = d2
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    print("ready", flush=True)

    while not stop[0]:
        now = time.monotonic()
        nxt = None
        for d in dirs:
            q = d.q
            while q and q[0][0] <= now:
                d.send(q.popleft()[1])
            if q and (nxt is None or q[0][0] < nxt):
                nxt = q[0][0]
        if nxt is None:
            timeout = 0.5
        else:
            timeout = max(0.0, nxt - time.monotonic())
            # epoll has millisecond resolution: sleep the sub-millisecond rest precisely
            if timeout < 0.001:
                if timeout > 0:
                    time.sleep(timeout)
                timeout = 0
        try:
            events = ep.poll(timeout)
        except InterruptedError:
            continue
        for fd, _ in events:
            d = by_fd[fd]
            rx = d.rx
            for _ in range(256):
                try:
                    fr = rx.recv(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                d.stats["rx"] += 1
                if d.loss and rnd.random() < d.loss:
                    d.stats["lost"] += 1
                    continue
                if d.delay <= 0:
                    d.send(fr)
                else:
                    d.q.append((time.monotonic() + d.delay, fr))
                    if len(d.q) > d.stats["max_queue"]:
                        d.stats["max_queue"] = len(d.q)
    for d in dirs:
        d.stats["queued"] = len(d.q)   # still delayed at exit, never sent
    print(json.dumps({d.name: d.stats for d in dirs}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
