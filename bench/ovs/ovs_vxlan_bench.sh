#!/usr/bin/env bash
# OVS-DPDK VXLAN encapsulation, side by side with `lm-bench fastpath`'s encap_hot.
# See bench/ovs/README.md. Root; Debian 12 with openvswitch-switch-dpdk and python3-scapy.
#
# Every OVS run is private: its own ovsdb-server and ovs-vswitchd-dpdk, own DB, run/log dir
# under /tmp, inside a network namespace created for it (the br-phy tap, its addresses and
# routes live there); the system's OVS, if any, is never touched. DPDK ports are vdevs only
# (--no-pci): net_pcap (rx_pcap=..., infinite_rx=1) in, net_null (no-rx=1) out. Nothing leaves
# the process: the "wire" is net_null's tx, which frees every mbuf.
#
# Last line: {"bench":"ovs_vxlan","ovs_cycles":X,"ovs_mpps":X,"lm_encap_hot_cycles":X,
#             "ratio_ours_over_ovs":X,"hugepages":true|false}
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VSWITCHD=${OVS_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
PY=/usr/bin/python3                       # Debian's python3 (python3-scapy), not a pyenv shim
LM_BENCH=${LM_BENCH:-$REPO/build/bench/lm-bench}

RUNS=3
VARIANTS="hot hot4 fwd one"
WARMUP=5          # seconds of steady traffic (after the last upcall) before the measured interval
INTERVAL=5        # seconds measured
PMD_CORE=1        # OVS PMD and lm-bench's worker lcore
MAIN_CORE=0       # ovs-vswitchd's other threads, ovsdb-server
SOCKET_MEM=1024   # MB of hugepages for OVS (dpdk-socket-mem / -limit)
HUGE=auto         # auto | yes | no
VERIFY=1
LM=1
KEEP=0
VERIFY_ONLY=0
TRIES=3           # attempts per run when other work disturbed it

usage() {
    cat <<EOF
usage: $0 [--runs N] [--tries N] [--variants "hot fwd one many"] [--warmup S] [--interval S]
          [--pmd-core N] [--main-core N] [--huge|--no-huge] [--socket-mem MB]
          [--no-verify | --verify-only] [--no-lm] [--keep]
Variants (see README): hot = lm-bench encap_hot's packets and MOs (10k EIDs -> locators,
4 tenant ports, VNI = tenant); fwd = same packets and rules, plain output instead of the
tunnel; hot4 = hot with IPv4 locators only (no outer UDP checksum); one = a single flow
(OVS's best case); many = 100k EIDs.
Defaults: --runs $RUNS --variants "$VARIANTS" --warmup $WARMUP --interval $INTERVAL --pmd-core $PMD_CORE
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift ;;
        --tries) TRIES=$2; shift ;;
        --variants) VARIANTS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --interval) INTERVAL=$2; shift ;;
        --pmd-core) PMD_CORE=$2; shift ;;
        --main-core) MAIN_CORE=$2; shift ;;
        --socket-mem) SOCKET_MEM=$2; shift ;;
        --huge) HUGE=yes ;;
        --no-huge) HUGE=no ;;
        --no-verify) VERIFY=0 ;;
        --verify-only) VERIFY_ONLY=1; LM=0 ;;
        --no-lm) LM=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
HAS_HOT=0; case " $VARIANTS " in *" hot "*) HAS_HOT=1 ;; esac

log() { echo "[ovs-bench] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (hugepages, network namespace)"
[ -x "$VSWITCHD" ] || die "$VSWITCHD missing: apt-get install -y --no-install-recommends openvswitch-switch-dpdk"
command -v ovsdb-server >/dev/null && command -v ovs-vsctl >/dev/null && command -v ovs-ofctl >/dev/null \
    || die "openvswitch-switch / openvswitch-common missing"
$PY -c 'import scapy' 2>/dev/null || die "python3-scapy missing (apt-get install python3-scapy)"
if [ "$LM" = 1 ] && [ ! -x "$LM_BENCH" ]; then die "$LM_BENCH not built (make bench) — or pass --no-lm"; fi
[ "$(nproc)" -gt "$PMD_CORE" ] || die "no CPU $PMD_CORE"

WORK=$(mktemp -d /tmp/lm-ovs-bench.XXXXXX)
NS=""
OVS_UP=0
HP_ORIG=""      # nr_hugepages before we raised it
HP_MOUNTED=""   # a hugetlbfs we mounted

OVS_PIDS=""     # ovsdb-server and ovs-vswitchd of the current run (also in their pidfiles)
stop_ovs() {
    [ "$OVS_UP" = 1 ] || return 0
    local run=$WORK/run pid
    OVS_RUNDIR=$run ovs-appctl -t "$run/ovs-vswitchd.ctl" --timeout=10 exit >/dev/null 2>&1 || true
    OVS_RUNDIR=$run ovs-appctl -t "$run/ovsdb-server.ctl" --timeout=10 exit >/dev/null 2>&1 || true
    for pid in $OVS_PIDS; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    OVS_PIDS=""
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null || true
    NS=""
    OVS_UP=0
}

cleanup() {
    local rc=$?
    stop_ovs
    if [ -n "$HP_ORIG" ]; then
        echo "$HP_ORIG" > /proc/sys/vm/nr_hugepages || true
        log "hugepages: nr_hugepages back to $HP_ORIG"
    fi
    if [ -n "$HP_MOUNTED" ]; then umount "$HP_MOUNTED" 2>/dev/null || true; fi
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$LM" = 1 ]; then
    # A copy: every run measures the same binary even if build/ is rebuilt meanwhile.
    cp "$LM_BENCH" "$WORK/lm-bench"
    log "lm-bench: $LM_BENCH ($(stat -c '%y' "$LM_BENCH" | cut -d. -f1), sha256 $(sha256sum "$LM_BENCH" | cut -c1-12))"
    LM_BENCH=$WORK/lm-bench
fi

# ---- hugepages ------------------------------------------------------------------------------
hp_free_mb() {  # free MB in 2 MB pages, 0 without a hugetlbfs mount
    grep -q '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts || { echo 0; return; }
    echo $(( $(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) * $(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo) / 1024 ))
}
USE_HUGE=false
if [ "$HUGE" != no ]; then
    need=$SOCKET_MEM
    [ "$LM" = 1 ] && [ "$need" -lt 1024 ] && need=1024   # lm-bench --huge takes -m 1024
    if [ "$(hp_free_mb)" -lt "$need" ]; then
        if ! grep -q '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts; then
            mkdir -p /dev/hugepages
            mount -t hugetlbfs nodev /dev/hugepages && HP_MOUNTED=/dev/hugepages
        fi
        HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
        pages_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
        want=$(( HP_ORIG + (need / 2 - pages_free) + 16 ))
        echo "$want" > /proc/sys/vm/nr_hugepages || true
        log "hugepages: nr_hugepages $HP_ORIG -> $(cat /proc/sys/vm/nr_hugepages) (restored at exit)"
    fi
    if [ "$(hp_free_mb)" -ge "$need" ]; then USE_HUGE=true
    elif [ "$HUGE" = yes ]; then die "could not get $need MB of free 2 MB hugepages"
    fi
fi
log "hugepages: $USE_HUGE ($(hp_free_mb) MB free of 2 MB pages)"

# ---- one private OVS ------------------------------------------------------------------------
# start_ovs VARIANT MODE: MODE = measure (rx_pcap infinite_rx in, net_null out) | verify (veths
# in, fed by send_frames.py once all is configured; the underlay port writes a tx_pcap).
start_ovs() {
    local variant=$1 mode=$2 w=$WORK/$1 run=$WORK/run
    rm -rf "$run"; mkdir -p "$run"
    NS=lmovs$$
    ip netns add "$NS"
    OVS_UP=1
    export OVS_RUNDIR=$run OVS_LOGDIR=$run OVS_DBDIR=$run OVS_SYSCONFDIR=$run
    local V="ovs-vsctl --db=unix:$run/db.sock --timeout=60"
    A="ovs-appctl -t $run/ovs-vswitchd.ctl --timeout=60"
    OF="ovs-ofctl"
    ovsdb-tool create "$run/conf.db" "$SCHEMA"
    ip netns exec "$NS" taskset -c "$MAIN_CORE" ovsdb-server "$run/conf.db" --remote="punix:$run/db.sock" \
        --pidfile="$run/ovsdb-server.pid" --unixctl="$run/ovsdb-server.ctl" --log-file="$run/ovsdb-server.log" \
        --detach --no-chdir -vconsole:off
    OVS_PIDS=$(cat "$run/ovsdb-server.pid")
    $V --no-wait init
    local ports; ports=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"])' "$w/manifest.json")
    local extra="--no-pci --no-telemetry"
    local t
    for t in $(seq "$ports"); do
        if [ "$mode" = measure ]; then extra+=" --vdev net_pcap$t,rx_pcap=$w/acc$t.pcap,infinite_rx=1"
        else
            # verify: frames come from a veth inside the namespace, sent once all is set up
            ip netns exec "$NS" sh -c "ip link add vacc$t type veth peer name vsrc$t &&
                sysctl -qw net.ipv6.conf.vacc$t.disable_ipv6=1 net.ipv6.conf.vsrc$t.disable_ipv6=1 &&
                ip link set vacc$t up && ip link set vsrc$t up"
            extra+=" --vdev net_pcap$t,rx_iface_in=vacc$t"
        fi
    done
    if [ "$mode" = measure ]; then extra+=" --vdev net_null0,no-rx=1"
    else extra+=" --vdev net_pcap0,rx_pcap=$w/empty.pcap,tx_pcap=$run/out.pcap"; fi
    local mem=(other_config:dpdk-socket-mem="$SOCKET_MEM" other_config:dpdk-socket-limit="$SOCKET_MEM")
    if [ "$USE_HUGE" = true ]; then extra+=" --in-memory"
    else extra+=" --no-huge --legacy-mem --no-shconf -m 2048"; mem=(); fi   # OVS adds --in-memory unless --legacy-mem is there
    $V --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << PMD_CORE)))" other_config:pmd-perf-metrics=true \
        other_config:dpdk-extra="$extra" "${mem[@]}" ${OVS_BENCH_OTHER_CONFIG:-}
    ip netns exec "$NS" taskset -c "$MAIN_CORE" "$VSWITCHD" "unix:$run/db.sock" --pidfile="$run/ovs-vswitchd.pid" \
        --unixctl="$run/ovs-vswitchd.ctl" --log-file="$run/ovs-vswitchd.log" --detach --no-chdir -vconsole:off
    OVS_PIDS="$(cat "$run/ovs-vswitchd.pid") $OVS_PIDS"
    [ "$($V get Open_vSwitch . dpdk_initialized)" = true ] || { tail -20 "$run/ovs-vswitchd.log" >&2; die "DPDK init failed in ovs-vswitchd"; }

    # Underlay: br-phy with the net_null (or tx_pcap) port; our locators on its tap.
    local under=net_null0; [ "$mode" = verify ] && under=net_pcap0
    $V add-br br-phy -- set bridge br-phy datapath_type=netdev fail_mode=secure other_config:hwaddr=02:00:00:0c:00:00 \
       -- add-port br-phy phy0 -- set Interface phy0 type=dpdk options:dpdk-devargs=$under ofport_request=1
    $OF add-flow br-phy "priority=10,in_port=LOCAL,actions=output:1"
    ip netns exec "$NS" sh -c "
        sysctl -qw net.ipv6.conf.br-phy.accept_ra=0 net.ipv6.conf.br-phy.autoconf=0 \
                   net.ipv6.conf.br-phy.router_solicitations=0 net.ipv6.conf.br-phy.dad_transmits=0
        ip link set br-phy up
        ip addr add 203.0.113.1/24 dev br-phy
        ip -6 addr add 2001:db8:a::1/64 dev br-phy nodad
        ip -6 route add 2001:db8:b::/64 via 2001:db8:a::fe dev br-phy"
    # Overlay: br-int with the flow-based VXLAN port (remote_ip / key set by the rules).
    $V add-br br-int -- set bridge br-int datapath_type=netdev fail_mode=secure \
       -- add-port br-int vxlan0 -- set Interface vxlan0 type=vxlan options:remote_ip=flow options:key=flow ofport_request=10 \
       -- add-port br-int patch-int -- set Interface patch-int type=patch options:peer=patch-phy ofport_request=20 \
       -- add-port br-phy patch-phy -- set Interface patch-phy type=patch options:peer=patch-int ofport_request=2
    $OF add-flow br-phy "priority=10,in_port=2,actions=output:1"
    local i
    for i in $(seq 100); do
        $A ovs/route/show | grep -q '2001:db8:b::/64' && $A ovs/route/show | grep -q '203.0.113.0/24' && break
        sleep 0.1
    done
    $A ovs/route/show | grep -q '2001:db8:b::/64' || die "ovs-router did not learn the netns routes"
    local ip mac
    while read -r ip mac; do $A tnl/neigh/set br-phy "$ip" "$mac" >/dev/null; done < "$w/neigh.txt"
    $OF --bundle add-flows br-int "$w/flows.txt"
    # Last, the input ports, in one transaction: with rx_pcap, traffic starts now.
    local add=()
    for t in $(seq "$ports"); do
        add+=(-- add-port br-int acc$t -- set Interface acc$t type=dpdk options:dpdk-devargs=net_pcap$t ofport_request=$t)
    done
    $V "${add[@]}"
    PMD_TID=""
    local pid; pid=$(cat "$run/ovs-vswitchd.pid")
    for i in $(seq 50); do
        for t in /proc/$pid/task/*; do
            case "$(cat "$t/comm" 2>/dev/null)" in pmd*) PMD_TID=${t##*/} ;; esac
        done
        [ -n "$PMD_TID" ] && break; sleep 0.1
    done
    [ -n "$PMD_TID" ] || die "no PMD thread"
    OVS_PID=$pid
}

# pmd-stats-show of the PMD thread as "key=value" words.
pmd_stats() {
    $A dpif-netdev/pmd-stats-show | awk '
        /^pmd thread/ {p=1} /^main thread/ {p=0}
        p && /packets received:/ {print "pkts=" $3}
        p && /emc hits:/ {print "emc=" $3}
        p && /smc hits:/ {print "smc=" $3}
        p && /megaflow hits:/ {print "mf=" $3}
        p && /miss with success upcall:/ {print "up=" $5}
        p && /miss with failed upcall:/ {print "upf=" $5}
        p && /idle cycles:/ {print "idle=" $3}
        p && /processing cycles:/ {print "proc=" $3}'
}
sched_ns() { awk '{print $1}' "/proc/$OVS_PID/task/$PMD_TID/schedstat"; }
nivcsw() { awk '/^nonvoluntary_ctxt_switches/ {print $2}' "/proc/$OVS_PID/task/$PMD_TID/status"; }
now_ns() { date +%s%N; }

# measure VARIANT: one run of one variant. Writes "key=value" words on stdout (see analyse.py).
# Three figures of TSC cycles per packet over the same INTERVAL s, after warm-up:
#   clean:  from the PMD's own iteration history (pmd-perf-show -it, sampled all along), the
#           iterations not stretched by a preemption (< 3x the median iteration): like lm-bench,
#           which keeps only its trials without an involuntary context switch;
#   oncpu:  all packets over the PMD thread's CPU time (schedstat), preemptions excluded;
#   raw:    OVS's own pmd-stats-show count, which includes the time the thread was preempted.
measure() {
    local variant=$1
    start_ovs "$variant" measure
    # Warm-up: wait until no upcall for 2 s (every megaflow installed), then WARMUP s more.
    local last=-1 cur stable=0 i
    for i in $(seq 300); do
        cur=$(pmd_stats | awk -F= '$1=="up" {print $2}')
        if [ "$cur" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
        last=$cur
        [ "$stable" -ge 2 ] && break
        sleep 1
    done
    sleep "$WARMUP"
    if [ -n "${OVS_BENCH_HOLD:-}" ]; then  # debugging: leave the switch running for a while
        log "holding $OVS_BENCH_HOLD s: OVS_RUNDIR=$WORK/run ovs-appctl -t $WORK/run/ovs-vswitchd.ctl ..."
        sleep "$OVS_BENCH_HOLD"
    fi
    local a b s1 s2 t1 t2 c1 c2 end
    : > "$WORK/iters.txt"
    s1=$(sched_ns); c1=$(nivcsw); t1=$(now_ns); a=$(pmd_stats)
    end=$(( t1 + INTERVAL * 1000000000 ))
    while [ "$(now_ns)" -lt "$end" ]; do
        $A dpif-netdev/pmd-perf-show -nh -it 1000 >> "$WORK/iters.txt"
        sleep 0.02
    done
    s2=$(sched_ns); c2=$(nivcsw); t2=$(now_ns); b=$(pmd_stats)
    local dpflows; dpflows=$($A dpctl/dump-flows 2>/dev/null | grep -c '^recirc' || true)
    stop_ovs
    if ! $PY "$HERE/analyse.py" "$a" "$b" "$s1" "$s2" "$t1" "$t2" "$TSC_HZ" "$c1" "$c2" "$WORK/iters.txt" "$dpflows"; then
        log "measure $variant: no usable interval (pmd-stats before: $a / after: $b); vswitchd log tail:"
        tail -5 "$WORK/run/ovs-vswitchd.log" >&2 || true
    fi
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# ---- workloads ------------------------------------------------------------------------------
for v in $VARIANTS; do
    $PY "$HERE/gen_workload.py" "$v" "$WORK/$v" || die "gen_workload.py $v"
    log "workload $v: $(cat "$WORK/$v/manifest.json")"
done

# ---- TSC ------------------------------------------------------------------------------------
# lm-bench prints the TSC rate DPDK measured; without it, estimate it from OVS below.
TSC_HZ=""
LM_HUGE=--no-huge; [ "$USE_HUGE" = true ] && LM_HUGE=--huge
lm_run() {  # one lm-bench fastpath run; prints its output, last line JSON
    "$LM_BENCH" fastpath --lcore "$PMD_CORE" "$LM_HUGE" 2>&1
}
if [ "$LM" = 1 ]; then
    out=$(lm_run) || { echo "$out" >&2; die "lm-bench failed"; }
    mhz=$(echo "$out" | sed -n 's/.*TSC \([0-9.]*\) MHz.*/\1/p' | head -1)
    [ -n "$mhz" ] && TSC_HZ=$(awk -v m="$mhz" 'BEGIN {printf "%.0f", m * 1e6}')
    log "lm-bench warm-up run done (TSC ${mhz:-?} MHz)"
fi
if [ -z "$TSC_HZ" ]; then
    mhz=$(awk -F: '/^cpu MHz/ {printf "%.0f", $2; exit}' /proc/cpuinfo)
    TSC_HZ=$(awk -v m="$mhz" 'BEGIN {printf "%.0f", m * 1e6}')
    log "TSC rate from /proc/cpuinfo: $mhz MHz (approximate)"
fi

# ---- verify: the output really is VXLAN -----------------------------------------------------
if [ "$VERIFY" = 1 ]; then
    for v in $VARIANTS; do
        [ "$v" = many ] && continue   # 131k packets through scapy: slow, and the same code path as hot
        start_ovs "$v" verify
        sleep 1
        ports=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"])' "$WORK/$v/manifest.json")
        ip netns exec "$NS" $PY "$HERE/send_frames.py" $(for t in $(seq "$ports"); do echo "vsrc$t=$WORK/$v/acc$t.pcap"; done) >&2
        expect=$(( $($PY -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["ports"]*m["packets_per_port"])' "$WORK/$v/manifest.json") ))
        n=0
        for i in $(seq 60); do
            n=$(ovs-vsctl --db=unix:$WORK/run/db.sock get Interface phy0 statistics:tx_packets 2>/dev/null || echo 0)
            [ "$n" -ge "$expect" ] && break
            sleep 0.5
        done
        sleep 1
        log "verify $v: phy0 tx_packets=$n (expected >= $expect)"
        indrop=0
        for t in $(seq "$ports"); do
            d=$(ovs-vsctl --db=unix:$WORK/run/db.sock get Interface acc$t statistics:rx_dropped 2>/dev/null || echo 0)
            indrop=$((indrop + d))
        done
        cp "$WORK/run/out.pcap" "$WORK/$v-out.pcap"
        { $A dpif-netdev/pmd-stats-show; $A coverage/show; $A dpctl/show -s; } > "$WORK/$v-verify-stats.txt" 2>&1 || true
        stop_ovs
        $PY "$HERE/verify_out.py" "$WORK/$v" "$WORK/$v-out.pcap" "$indrop" >&2 \
            || die "verify $v: OVS output is not what it should be"
    done
fi
[ "$VERIFY_ONLY" = 1 ] && { log "verify only: done"; exit 0; }

# ---- measured runs --------------------------------------------------------------------------
# The input vdev alone: dpdk-testpmd io-forward from the hot variant's 4 net_pcap (infinite_rx)
# ports to 4 net_null (no-rx) ports on the same core: what rx + copy + tx cost OVS before it
# does anything (lm-bench's counterpart is its "baseline", net_null + header refill).
TESTPMD=$(command -v dpdk-testpmd || true)
vdev_alone() {
    [ -n "$TESTPMD" ] && [ -d "$WORK/hot" ] || { echo 0; return; }
    local v="" t mem=(--in-memory -m 1024)
    [ "$USE_HUGE" = true ] || mem=(--no-huge --no-shconf -m 2048)
    for t in 1 2 3 4; do v+=" --vdev net_pcap$t,rx_pcap=$WORK/hot/acc$t.pcap,infinite_rx=1 --vdev net_null$t,no-rx=1"; done
    # shellcheck disable=SC2086
    (sleep "$INTERVAL"; echo) | timeout 120 "$TESTPMD" -l "$MAIN_CORE,$PMD_CORE" --main-lcore "$MAIN_CORE" --no-pci --no-telemetry \
        --log-level=lib.eal:error "${mem[@]}" $v -- --forward-mode=io --record-core-cycles --total-num-mbufs=65536 2>&1 \
        | sed -n 's/.*CPU cycles\/packet=\([0-9.]*\).*/\1/p' | tail -1 | grep . || echo 0
}

declare -A RES   # RES[variant.key] = "v1 v2 v3" over the runs
VDEV=()
LM_CYC=(); LM_BASE=()
# A run is "disturbed" when other work had the CPU: OVS's PMD off its CPU for more than 5 % of
# the interval, or fewer than 10 of lm-bench's 30 encap_hot trials free of a preemption. A
# disturbed run is repeated (up to --tries times in all; the last one counts whatever it is):
# work on the other vCPU and preemptions slow both benches through the caches they pollute,
# which no filter removes (see README).
DISTURBED=0
for r in $(seq "$RUNS"); do
    for v in $VARIANTS; do
        for try in $(seq "$TRIES"); do
            measure "$v" > "$WORK/result"   # not in a subshell: stop_ovs / cleanup see the state
            line=$(cat "$WORK/result")
            cpu=$(echo "$line" | sed -n 's/.*cpu_pct=\([0-9.]*\).*/\1/p')
            case "$line" in *clean=0\ *) cpu=0 ;; esac   # no usable interval: try again
            if awk -v c="$cpu" 'BEGIN {exit !(c >= 95)}'; then log "run $r $v: $line"; break; fi
            if [ "$try" = "$TRIES" ]; then log "run $r $v: $line (disturbed, kept: last try)"; DISTURBED=$((DISTURBED + 1))
            else log "run $r $v: disturbed (PMD on CPU $cpu%), again"; fi
        done
        for kv in $line; do RES[$v.${kv%%=*}]+="${kv#*=} "; done
    done
    vd=$(vdev_alone)
    if [ "$vd" != 0 ]; then
        VDEV+=("$vd")
        log "run $r testpmd io-forward net_pcap (infinite_rx) -> net_null: $vd cycles/pkt (TSC, preemptions included)"
    fi
    if [ "$LM" = 1 ]; then
        for try in $(seq "$TRIES"); do
            out=$(lm_run) || { echo "$out" >&2; die "lm-bench failed"; }
            hl=$(echo "$out" | grep -E '^encap hot' | sed 's/  */ /g')
            clean=$(echo "$hl" | sed -n 's/.*clean trials \([0-9]*\)\/.*/\1/p')
            if [ "${clean:-0}" -ge 10 ]; then log "run $r lm-bench: $hl"; break; fi
            if [ "$try" = "$TRIES" ]; then log "run $r lm-bench: $hl (disturbed, kept: last try)"; DISTURBED=$((DISTURBED + 1))
            else log "run $r lm-bench: disturbed ($hl), again"; fi
        done
        json=$(echo "$out" | tail -1)
        hot=$(echo "$json" | sed -n 's/.*"encap_hot_cycles":\([0-9.]*\).*/\1/p')
        base=$(echo "$json" | sed -n 's/.*"baseline_cycles":\([0-9.]*\).*/\1/p')
        lmh=$(echo "$json" | sed -n 's/.*"hugepages":\([a-z]*\).*/\1/p')
        [ -n "$hot" ] || { echo "$out" >&2; die "no encap_hot_cycles in lm-bench's JSON"; }
        log "run $r lm-bench: encap_hot $hot cycles/pkt, baseline $base (hugepages $lmh)"
        LM_CYC+=("$hot"); LM_BASE+=("$base")
    fi
done

# ---- summary --------------------------------------------------------------------------------
echo "OVS-DPDK $("$VSWITCHD" --version | awk 'NR==1 {print $NF}') ($("$VSWITCHD" --version | sed -n 's/^DPDK //p' | head -1 | sed 's/^/DPDK /')), PMD on CPU $PMD_CORE, TSC $(awk -v h="$TSC_HZ" 'BEGIN {printf "%.0f", h/1e6}') MHz, hugepages $USE_HUGE; medians of $RUNS runs ($DISTURBED disturbed runs kept after $TRIES tries)"
echo "cycles/pkt: TSC cycles per packet of the PMD's iterations not stretched by a preemption (like lm-bench's clean trials), over ${INTERVAL}s after warm-up; on-CPU: over the thread's CPU time; OVS-counted: pmd-stats-show (preemptions included)"
for v in $VARIANTS; do
    printf '  %-5s %7.1f cycles/pkt %6.2f Mpps | on-CPU %7.1f, OVS-counted %7.1f cycles/pkt | wall %5.2f Mpps, PMD on CPU %5.1f%%, iterations kept %5.1f%% | EMC hits %5.1f%%, megaflows %s, upcalls %s | runs: %s\n' \
        "$v" "$(median ${RES[$v.clean]})" "$(median ${RES[$v.clean_mpps]})" "$(median ${RES[$v.oncpu]})" "$(median ${RES[$v.raw]})" \
        "$(median ${RES[$v.wall_mpps]})" "$(median ${RES[$v.cpu_pct]})" "$(median ${RES[$v.kept_pct]})" "$(median ${RES[$v.emc_pct]})" \
        "$(median ${RES[$v.dpflows]})" "$(median ${RES[$v.upcalls]})" "${RES[$v.clean]% }"
done
OVS_CYC=null; OVS_MPPS=null
if [ "$HAS_HOT" = 1 ]; then OVS_CYC=$(median ${RES[hot.clean]}); OVS_MPPS=$(median ${RES[hot.clean_mpps]}); fi
if [ "$LM" = 1 ] && [ "$HAS_HOT" = 1 ]; then
    LMC=$(median "${LM_CYC[@]}")
    printf '  lm-bench encap_hot %.1f cycles/pkt (runs: %s), baseline %.1f\n' "$LMC" "${LM_CYC[*]}" "$(median "${LM_BASE[@]}")"
    RATIO=$(awk -v o="$OVS_CYC" -v l="$LMC" 'BEGIN {printf "%.2f", o / l}')
    VD=0; [ "${#VDEV[@]}" -gt 0 ] && VD=$(median "${VDEV[@]}")
    LB=$(median "${LM_BASE[@]}")
    echo "ratio ours/OVS (throughput, = OVS cycles / our cycles): $RATIO"
    awk -v o="$OVS_CYC" -v l="$LMC" -v vd="$VD" -v lb="$LB" 'BEGIN {
        if (vd > 0) printf "vdev alone: net_pcap -> net_null io-forward %.1f cycles/pkt (testpmd) vs lm-bench baseline %.1f; path only: OVS %.1f vs ours %.1f cycles/pkt, ratio %.2f\n", vd, lb, o - vd, l - lb, (o - vd) / (l - lb) }'
else
    LMC=null; RATIO=null
fi
printf '{"bench":"ovs_vxlan","ovs_cycles":%s,"ovs_mpps":%s,"lm_encap_hot_cycles":%s,"ratio_ours_over_ovs":%s,"hugepages":%s}\n' \
    "$OVS_CYC" "$OVS_MPPS" "$LMC" "$RATIO" "$USE_HUGE"
