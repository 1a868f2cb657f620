#!/usr/bin/env bash
# migration-storm.sh: moves a hot set of MOs again and again while traffic runs, the way an
# orchestrator's hooks do it (docs/operations.md, "Handover"), through lmctl.
#
# usage: migration-storm.sh [options]
#   --old TARGET       router the hot MOs are attached to at the start (default: dut)
#   --new TARGET       router they move to (default: the same as --old). The same router
#                      re-attaches them in place: migrate-begin holds an MO's packets for the
#                      downtime, attach releases them (setup A). Two routers (setup B, with the LM
#                      directory): migrate-begin on the one the MO leaves, attach on the other,
#                      which tells the first; every round the hot set goes the other way.
#   --old-port NAME    access port of the MOs at --old (default: access0)
#   --new-port NAME    access port of the MOs at --new (default: access0)
#   --hot N            the hot set: MOs 0..N-1 of the plan (default: 32; the configs attach 1024)
#   --batch N          MOs moved together (default: 8)
#   --downtime-ms MS   migrate-begin .. attach: the stop-and-copy of a live migration (default: 50)
#   --interval-ms MS   pause after each batch (default: 200)
#   --rounds N         stop after N rounds; one round moves every hot MO once (default: no limit)
#   --duration S       stop after S seconds (default: 30)
#   --detach           after the downtime, detach the MO from the router it leaves before the
#                      attach: its held packets are then dropped (lm_unknown_mo), not released
#   --dry-run          print the lmctl commands instead of running them (one round by default)
#   --lmctl PATH       lmctl to run (default: $LMCTL, else lmctl on PATH, else ../build/lmctl)
#   --remote-lmctl P   lmctl on the hosts of HOST:PREFIX targets (default: lmctl)
#
# TARGET is a router's EAL --file-prefix on this host (lmctl -f TARGET), or HOST:PREFIX for a
# router on another host (ssh HOST lmctl -f PREFIX ..., key-based ssh).
#
# MO i of the plan (pktgen-scenarios/lmplan.py, README.md): tenant 1, MO id 0x100000+i, MAC
# 02:01:00:00:HH:LL (i), EIDs 192.0.2.(1+i) if i < 250 and 2001:db8:1::(100+i, hex). The Zipf
# pcaps and TRex's dist=hot send most of their traffic to the low indices: the hot set.
#
# At the end every MO is brought back to --old, and each router's handover counters are printed.
# Exit status: 0 every lmctl call succeeded, 1 some failed (each failure is printed), 2 usage.
set -uo pipefail

TENANT=1
CONFIG_LOCAL_MOS=1024

old=dut new="" old_port=access0 new_port=access0 hot=32 batch=8 downtime_ms=50 interval_ms=200
rounds=0 duration=30 detach=0 dry_run=0 lmctl="${LMCTL:-}" remote_lmctl=lmctl

usage() {
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
die() { echo "migration-storm: $*" >&2; exit 2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while (($#)); do
    opt=$1
    case $opt in
        --detach) detach=1; shift; continue ;;
        --dry-run) dry_run=1; shift; continue ;;
        -h|--help) usage ;;
    esac
    (($# >= 2)) || die "$opt needs a value (see --help)"
    val=$2
    shift 2
    case $opt in
        --old) old=$val ;;
        --new) new=$val ;;
        --old-port) old_port=$val ;;
        --new-port) new_port=$val ;;
        --hot|--batch|--downtime-ms|--interval-ms|--rounds|--duration)
            is_uint "$val" || die "$opt: '$val' is not a number"
            case $opt in
                --hot) hot=$val ;; --batch) batch=$val ;; --downtime-ms) downtime_ms=$val ;;
                --interval-ms) interval_ms=$val ;; --rounds) rounds=$val ;; --duration) duration=$val ;;
            esac ;;
        --lmctl) lmctl=$val ;;
        --remote-lmctl) remote_lmctl=$val ;;
        *) die "unknown option '$opt' (see --help)" ;;
    esac
done
[[ -n $new ]] || new=$old
((hot >= 1 && hot <= CONFIG_LOCAL_MOS)) || die "--hot: 1..$CONFIG_LOCAL_MOS (the MOs the configurations attach)"
((batch >= 1)) || die "--batch: at least 1"
((dry_run && rounds == 0)) && rounds=1
if [[ -z $lmctl ]]; then
    if command -v lmctl >/dev/null; then lmctl=lmctl
    else lmctl="$(cd "$(dirname "$0")" && pwd)/../build/lmctl"; fi
fi
((dry_run)) || [[ -x $lmctl ]] || command -v "$lmctl" >/dev/null || die "no lmctl at '$lmctl' (--lmctl PATH)"

# ---- The plan (mirrors lmplan.py: local_mo_id, local_mac, mo_eids) ------------------------------
# mo I: sets MO_ID, MO_MAC and MO_EIDS (an array) for MO I (no subshells: storms are fast).
mo() {
    local v6
    printf -v MO_ID '0x%x' $((0x100000 + $1))
    printf -v MO_MAC '02:01:00:%02x:%02x:%02x' $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255))
    MO_EIDS=()
    (($1 < 250)) && MO_EIDS+=("192.0.2.$(($1 + 1))")
    printf -v v6 '2001:db8:1::%x' $((0x100 + $1))
    MO_EIDS+=("$v6")
}

# ---- lmctl against a target ---------------------------------------------------------------------
failures=0
# lmctl_on TARGET ARGS...: lmctl against a router, here or over ssh.
lmctl_on() {
    local target=$1
    shift
    if [[ $target == *:* ]]; then
        ssh -o BatchMode=yes "${target%%:*}" "$(printf '%q ' "$remote_lmctl" -f "${target#*:}" "$@")"
    else
        "$lmctl" -f "$target" "$@"
    fi
}
# run TARGET ARGS...: one lmctl call, quiet unless it fails (or printed, with --dry-run).
run() {
    local target=$1 out rc
    shift
    if ((dry_run)); then
        echo "lmctl -f $target $*"
        return 0
    fi
    out=$(lmctl_on "$target" "$@" 2>&1)
    rc=$?
    if ((rc != 0)); then
        failures=$((failures + 1))
        echo "migration-storm: FAILED (exit $rc): lmctl -f $target $*: $out" >&2
    fi
    return $rc
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
pause_ms() { ((dry_run || $1 == 0)) || sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# where[i]: 0 = at --old, 1 = at --new
declare -a where
for ((i = 0; i < hot; i++)); do where[i]=0; done

# move_batch FIRST COUNT [home]: move MOs FIRST.. (COUNT of them) to the other router (home: only
# those away from --old, back to it).
moves=0
move_batch() {
    local first=$1 count=$2 home=${3:-} i from to port ids=()
    for ((i = first; i < first + count && i < hot; i++)); do
        [[ -n $home && ${where[i]} == 0 ]] && continue
        ids+=("$i")
    done
    ((${#ids[@]})) || return 0
    for i in "${ids[@]}"; do
        if ((where[i] == 0)); then from=$old; else from=$new; fi
        mo "$i"
        run "$from" migrate-begin --tenant "$TENANT" --mo "$MO_ID"
    done
    pause_ms "$downtime_ms"
    for i in "${ids[@]}"; do
        if ((where[i] == 0)); then from=$old to=$new port=$new_port; else from=$new to=$old port=$old_port; fi
        mo "$i"
        ((detach)) && run "$from" detach --tenant "$TENANT" --mo "$MO_ID"
        run "$to" attach --tenant "$TENANT" --mo "$MO_ID" --mac "$MO_MAC" --port "$port" "${MO_EIDS[@]}"
        if [[ $old != "$new" || $old_port != "$new_port" ]]; then where[i]=$((1 - where[i])); fi
        moves=$((moves + 1))
    done
}

mode="in place on $old"
[[ $old != "$new" || $old_port != "$new_port" ]] && mode="$old ($old_port) <-> $new ($new_port)"
echo "migration-storm: hot set MOs 0..$((hot - 1)), $mode, batches of $batch, downtime ${downtime_ms} ms," \
     "interval ${interval_ms} ms, $( ((rounds)) && echo "$rounds round(s)" || echo "${duration} s")$( ((detach)) && echo ", detach")"
start=$(now_ms)
deadline=$((start + duration * 1000))
round=0
while ((rounds == 0 || round < rounds)); do
    for ((first = 0; first < hot; first += batch)); do
        t0=$(now_ms)
        move_batch "$first" "$batch"
        ((dry_run)) || echo "migration-storm: round $round, MOs $first..$((first + batch < hot ? first + batch - 1 : hot - 1))" \
                            "moved in $(($(now_ms) - t0)) ms"
        pause_ms "$interval_ms"
        ((dry_run == 0 && rounds == 0 && $(now_ms) >= deadline)) && break 2
    done
    round=$((round + 1))
done
if [[ $old != "$new" || $old_port != "$new_port" ]]; then
    move_batch 0 "$hot" home
fi
echo "migration-storm: $moves move(s) in $(($(now_ms) - start)) ms, $failures failed lmctl call(s)"
if ((!dry_run)); then
    for t in $(printf '%s\n' "$old" "$new" | sort -u); do
        echo "---- $t: lmctl handover"
        lmctl_on "$t" handover || failures=$((failures + 1))
    done
fi
((failures == 0))
