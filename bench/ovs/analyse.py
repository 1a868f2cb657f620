#!/usr/bin/python3
"""One measured interval of ovs_vxlan_bench.sh -> "key=value" words on one line.

argv: pmd-stats before, after ("k=v" words from pmd_stats), schedstat run-ns before, after,
wall ns before, after, TSC Hz, nonvoluntary context switches before, after, file of sampled
`pmd-perf-show -nh -it 1000` outputs, number of datapath flows.

clean      TSC cycles/packet over the sampled PMD iterations that a preemption did not stretch
           (iteration cycles < 3 x the median iteration): the counterpart of lm-bench's median
           over trials without an involuntary context switch
clean_mpps TSC Hz / clean
oncpu      TSC cycles/packet over the PMD thread's CPU time (schedstat) for all its packets
raw        OVS's pmd-stats-show count over the interval (idle + processing cycles / packets):
           includes the time the thread was preempted
wall_mpps  packets / wall time
cpu_pct    share of the interval the PMD thread was on its CPU
kept_pct   share of the sampled iterations kept for `clean`
iters      iterations sampled
emc_pct    EMC hits / packets; upcalls: upcalls in the interval; dpflows: datapath flows
preempt    involuntary context switches of the PMD thread in the interval
"""
import re
import statistics
import sys


def kv(s):
    return {k: int(v) for k, v in (w.split("=") for w in s.split())}


def main():
    a, b = kv(sys.argv[1]), kv(sys.argv[2])
    d = {k: b[k] - a[k] for k in a}
    run_ns = int(sys.argv[4]) - int(sys.argv[3])
    wall_ns = int(sys.argv[6]) - int(sys.argv[5])
    tsc = float(sys.argv[7])
    preempt = int(sys.argv[9]) - int(sys.argv[8])
    iters = {}
    row = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+(\d+)\s+\d+\s*$")
    with open(sys.argv[10]) as f:
        for line in f:
            m = row.match(line)
            if m:
                it, cyc, pk, up = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(6))
                if pk and not up:  # busy iterations without an upcall
                    iters[it] = (cyc, pk)
    pk = d["pkts"]
    out = {}
    if pk <= 0 or not iters:  # the caller retries the run
        print("clean=0 clean_mpps=0 oncpu=0 raw=0 wall_mpps=0 cpu_pct=0 kept_pct=0 iters=0 emc_pct=0 upcalls=0 dpflows=0 preempt=0")
        print("analyse: %d packets, %d iterations sampled" % (pk, len(iters)), file=sys.stderr)
        return 1
    med = statistics.median(c for c, _ in iters.values())
    kept = [(c, p) for c, p in iters.values() if c < 3 * med]
    clean = sum(c for c, _ in kept) / sum(p for _, p in kept)
    out["clean"] = "%.1f" % clean
    out["clean_mpps"] = "%.3f" % (tsc / clean / 1e6)
    out["oncpu"] = "%.1f" % (run_ns * 1e-9 * tsc / pk)
    out["raw"] = "%.1f" % ((d["proc"] + d["idle"]) / pk)
    out["wall_mpps"] = "%.3f" % (pk / (wall_ns * 1e-9) / 1e6)
    out["cpu_pct"] = "%.1f" % (100.0 * run_ns / wall_ns)
    out["kept_pct"] = "%.1f" % (100.0 * len(kept) / len(iters))
    out["iters"] = str(len(iters))
    out["emc_pct"] = "%.1f" % (100.0 * d["emc"] / pk)
    out["upcalls"] = str(d["up"] + d["upf"])
    out["dpflows"] = sys.argv[11]
    out["preempt"] = str(preempt)
    print(" ".join("%s=%s" % kv for kv in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
