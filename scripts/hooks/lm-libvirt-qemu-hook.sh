#!/bin/sh
# libvirt qemu hook for LM Router (install as /etc/libvirt/hooks/qemu, or call it from there).
#
# libvirt calls it as: qemu <domain> <operation> <sub-operation> <extra>, domain XML on stdin.
# On the destination host of a live migration:
#   migrate begin  -> lmctl migrate-begin on the MO's current (old) AR: it holds the MO's packets
#                     from now until the new AR is known (run it early: libvirt calls this before
#                     the memory copy; with QEMU's pause-before-switchover it is always in time)
#   started begin  -> lmctl attach on this host's AR (optional: the AR also attaches the VM from
#                     the RARP / gratuitous ARP QEMU sends after the switchover)
# Per-domain description: /etc/lm-router/domains/<domain>.env with LM_TENANT, LM_MO_ID, LM_MAC,
# LM_PORT, LM_EIDS (see lm-criu-action.sh), and LM_OLD_ARS: the ARs that may hold the VM, as
# "ssh-target:file-prefix" words ("local:rte" = this host). migrate-begin is sent to each; the one
# that does not have the VM attached answers "not attached here", which is ignored.
# The hook never fails a migration (exit 0); it logs what went wrong.
set -u
dom=$1 op=$2 sub=$3
conf=${LM_DOMAINS_DIR:-/etc/lm-router/domains}/$dom.env
[ -r "$conf" ] || exit 0
. "$conf"
LMCTL=${LMCTL:-lmctl}
log() { logger -t lm-libvirt-hook "$dom: $*" 2>/dev/null || echo "lm-libvirt-hook: $dom: $*" >&2; }
cat >/dev/null  # the domain XML: not needed

run_on() {  # run_on "target:prefix" args...
    target=${1%%:*} prefix=${1#*:}
    shift
    if [ "$target" = local ]; then
        "$LMCTL" -f "$prefix" "$@"
    else
        ssh -o BatchMode=yes -o ConnectTimeout=2 "$target" "$LMCTL" -f "$prefix" "$@"
    fi
}

case "$op/$sub" in
migrate/begin)
    for ar in ${LM_OLD_ARS:-}; do
        out=$(run_on "$ar" migrate-begin --tenant "$LM_TENANT" --mo "$LM_MO_ID" 2>&1) || log "migrate-begin on $ar: $out"
    done
    ;;
started/begin)
    # shellcheck disable=SC2086
    out=$(run_on "local:${LM_ROUTER:-rte}" attach --tenant "$LM_TENANT" --mo "$LM_MO_ID" --mac "$LM_MAC" \
        --port "$LM_PORT" $LM_EIDS 2>&1) || log "attach: $out (the router still attaches the VM from its announcement)"
    ;;
esac
exit 0
