#!/usr/bin/env bash
# make bench-report: runs lm-bench's sweeps into $OUT/*.csv, describes the machine in
# $OUT/machine.txt, draws $IMG/bench-*.png with gnuplot and writes $OUT/summary.md (the CSVs as
# markdown tables). Quick by default (about 10-15 minutes on a 2-vCPU machine); FULL=1 runs the
# full grids (30 trials per fast-path measurement, 10 000 records and 1 000 lookups per resolve
# point, 200 moves per handover point: an hour or more, for real hardware).
#
#   bash bench/report/run_report.sh [BUILD_DIR]          (default: build)
#   env: FULL=1, SWEEPS="fastpath resolve handover", OUT=build/bench-report, IMG=docs/img,
#        PLOTS_ONLY=1 (redraw from existing CSVs), NO_HUGEPAGE_RESERVE=1 (see below)
#
# Hugepages: the 4M-MO fast-path point needs ~1.1 GB of EAL memory. As root, when fewer than
# 1300 MB of 2 MB hugepages are free, the script mounts hugetlbfs on /dev/hugepages if none is
# mounted and raises vm.nr_hugepages by the difference (it never lowers it; machine.txt records
# what it did). Without them the point runs on 4 KB pages (--no-huge, slower: TLB misses) and the
# CSV says hugepages=false.
set -uo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
OUT=${OUT:-$BUILD/bench-report}
IMG=${IMG:-docs/img}
SWEEPS=${SWEEPS:-fastpath resolve handover}
BIN=$BUILD/bench/lm-bench
QUICK=--quick
[[ ${FULL:-0} == 1 ]] && QUICK=

die() { echo "run_report: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN not found: build first (ninja -C $BUILD)"
command -v gnuplot >/dev/null || die "gnuplot not found (Debian: apt-get install gnuplot-nox)"
mkdir -p "$OUT" "$IMG"

hugepages_note=""
reserve_hugepages() {
    [[ ${NO_HUGEPAGE_RESERVE:-0} == 1 || $(id -u) != 0 ]] && return
    if ! grep -q hugetlbfs /proc/mounts; then
        mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages &&
            hugepages_note+="mounted hugetlbfs on /dev/hugepages; "
    fi
    local size_kb free total want
    size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
    [[ $size_kb == 2048 ]] || return
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    total=$(cat /proc/sys/vm/nr_hugepages)
    want=650  # 1300 MB of 2 MB pages
    if ((free < want)); then
        echo $((total + want - free)) >/proc/sys/vm/nr_hugepages
        hugepages_note+="raised vm.nr_hugepages from $total to $(cat /proc/sys/vm/nr_hugepages); "
    fi
}

describe_machine() {
    local f=$OUT/machine.txt
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "mode: ${QUICK:-full}"
        echo "commit: $(git rev-parse --short HEAD 2>/dev/null) $(git diff --quiet HEAD -- 2>/dev/null || echo '(+ uncommitted changes)')"
        echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
            "$(nproc) online CPUs, $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core:[[:space:]]*//p') thread(s) per core," \
            "family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
            "hypervisor $(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')"
        echo "caches: $(lscpu 2>/dev/null | grep -E '^L[123]' | sed 's/[[:space:]]\+/ /g' | tr '\n' ';')"
        echo "tsc: $(grep -o 'tsc[a-z_]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
        echo "memory: $(awk '/^MemTotal:/ {printf "%.1f GB total", $2/1048576} /^MemAvailable:/ {printf ", %.1f GB available", $2/1048576}' /proc/meminfo)"
        echo "hugepages: $(awk '/^HugePages_Total:/ {t=$2} /^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {printf "%d x %d kB, %d free", t, s, f}' /proc/meminfo);" \
            "hugetlbfs: $(grep -c hugetlbfs /proc/mounts) mount(s); ${hugepages_note:-nothing changed by this script}"
        echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
        echo "kernel: $(uname -sr); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
        echo "dpdk: $(pkg-config --modversion libdpdk 2>/dev/null); opendht: $(pkg-config --modversion opendht 2>/dev/null);" \
            "compiler: $(c++ --version | head -1); build type: $(meson introspect "$BUILD" --buildoptions 2>/dev/null | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null)"
        echo "gnuplot: $(gnuplot --version)"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "busiest processes at start (%CPU, command):"
        ps -eo pcpu=,comm= --sort=-pcpu | head -6 | sed 's/^/  /'
        echo "plot-note: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) vCPUs (shared), ${QUICK:+quick, }$(date -u +%Y-%m-%d), load average at start $(cut -d' ' -f1 /proc/loadavg)"
    } >"$f"
}

run_sweep() {  # name, args...: one lm-bench sweep, its log in $OUT/NAME.log
    local name=$1
    shift
    rm -f "$OUT/$name.csv"
    local t0=$SECONDS
    echo "run_report: $name: $BIN sweep $* --csv $OUT/$name.csv $QUICK (log: $OUT/$name.log)"
    "$BIN" sweep "$@" --csv "$OUT/$name.csv" $QUICK >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "run_report: $name: exit $rc in $((SECONDS - t0)) s; $(($(wc -l <"$OUT/$name.csv" 2>/dev/null || echo 1) - 1)) rows;" \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sweep $name: exit $rc in $((SECONDS - t0)) s, load average after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
}

# Markdown tables of the CSVs (the columns a reader compares), for docs/benchmarks.md.
summarize() {
    local s=$OUT/summary.md
    {
        echo "# lm-bench sweeps ($(sed -n 's/^date: //p' "$OUT/machine.txt"), ${QUICK:-full})"
        echo
        sed 's/^/    /' "$OUT/machine.txt"
        for f in "$OUT"/fastpath-{mos,burst,size,family,workers}.csv; do
            [[ -s $f ]] || continue
            echo
            echo "## $(basename "$f" .csv)"
            echo
            echo "| workload | vdev | MOs | burst | frame | inner | outer | workers | baseline cyc | path cyc | path - baseline | Mpps | clean trials | attempts | other CPUs busy % | hugepages | load | status |"
            echo "|---|---|--:|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|"
            python3 - "$f" <<'EOF'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    g = lambda k: r.get(k, "")
    print(f"| {g('workload')} | {g('vdev')} | {g('mos')} | {g('burst')} | {g('frame')} | {g('inner')} | {g('outer')} | {g('workers')} "
          f"| {g('baseline_cycles')} | {g('path_cycles')} | {g('delta_cycles')} | {g('path_mpps')} | {g('clean_trials')}/{g('trials')} | {g('attempts')} "
          f"| {g('others_busy_pct')} | {g('hugepages')} | {g('load_start')} | {g('status')} |")
EOF
        done
        if [[ -s $OUT/resolve.csv ]]; then
            echo
            echo "## resolve"
            echo
            echo "| nodes | records | lookups | p50 ms | p90 ms | p99 ms | max ms | failed | publish s | process CPUs | load start / end | status |"
            echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
            python3 - "$OUT/resolve.csv" <<'EOF'
import csv, sys
ms = lambda v: f"{float(v) / 1000:.2f}" if v else ""
for r in csv.DictReader(open(sys.argv[1])):
    print(f"| {r['nodes']} | {r['records']} | {r['lookups']} | {ms(r['p50_us'])} | {ms(r['p90_us'])} | {ms(r['p99_us'])} | {ms(r['max_us'])} "
          f"| {r['failed']} | {r['publish_s']} | {r['lookup_cpus']} | {r['load_start']} / {r['load_end']} | {r['status']} |")
EOF
        fi
        if [[ -s $OUT/handover.csv ]]; then
            echo
            echo "## handover"
            echo
            echo "| ARs | moves | p50 ms | p90 ms | p99 ms | max ms | stale_after_1s | gave up | first AR p50 ms | CPU-ms per move | process CPUs | load start / end | status |"
            echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
            python3 - "$OUT/handover.csv" <<'EOF'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(f"| {r['ars']} | {r['moves']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['stale_after_1s']} "
          f"| {r['capped_moves']} | {r['first_p50_ms']} | {r['cpu_ms_per_move']} | {r['process_cpus']} | {r['load_start']} / {r['load_end']} | {r['status']} |")
EOF
        fi
    } >"$s"
    echo "run_report: tables in $s"
}

t_start=$SECONDS
if [[ ${PLOTS_ONLY:-0} != 1 ]]; then
    # Run a copy: a rebuild during the sweeps (another shell's ninja) must not swap the binary
    # between points (each point execs /proc/self/exe).
    cp "$BIN" "$OUT/lm-bench" || die "cannot copy $BIN"
    BIN=$OUT/lm-bench
    reserve_hugepages
    describe_machine
    echo "run_report: machine: $(sed -n 's/^cpu: //p' "$OUT/machine.txt"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for s in $SWEEPS; do
        case $s in
        fastpath)
            for g in mos burst size family workers; do run_sweep "fastpath-$g" fastpath --only "$g"; done
            ;;
        resolve) run_sweep resolve resolve ;;
        handover) run_sweep handover handover ;;
        *) die "unknown sweep '$s' (fastpath, resolve, handover)" ;;
        esac
    done
    echo "total: $((SECONDS - t_start)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
fi
gnuplot -e "dir='$OUT'; img='$IMG'" bench/report/plots.gp || die "gnuplot failed"
ls -1 "$IMG"/bench-*.png 2>/dev/null | sed 's/^/run_report: plot /'
summarize
echo "run_report: done in $((SECONDS - t_start)) s"
