#!/bin/sh
# CRIU action script for LM Router: tells the access routers about a container's migration.
#
#   criu dump    ... --action-script /usr/share/lm-router/hooks/lm-criu-action.sh   (source host)
#   criu restore ... --action-script /usr/share/lm-router/hooks/lm-criu-action.sh   (destination host)
#
# CRIU runs it at each step with CRTOOLS_SCRIPT_ACTION set:
#   pre-dump      (source)       -> lmctl migrate-begin: the old AR holds the MO's packets
#   post-restore  (destination)  -> lmctl attach: the new AR publishes the MO and tells the old AR
# Everything else is ignored. The MO is described by an env file, LM_MO_ENV (default
# /etc/lm-router/mo.env), or by the environment itself:
#   LM_ROUTER   lm-router's --file-prefix on this host (default: rte, lmctl's default)
#   LM_TENANT   tenant id                  LM_MO_ID  MO id (decimal or 0x hex)
#   LM_MAC      the MO's MAC               LM_PORT   access port name on the new AR
#   LM_EIDS     its EIDs, space separated
#   LMCTL       path of lmctl (default: lmctl on PATH)
# Without post-restore (or if it fails) the new AR still attaches the MO from its first
# gratuitous ARP / unsolicited NA; a failing hook never fails the migration (exit 0), it logs.
set -u
[ -r "${LM_MO_ENV:-/etc/lm-router/mo.env}" ] && . "${LM_MO_ENV:-/etc/lm-router/mo.env}"
LMCTL=${LMCTL:-lmctl}
prefix=${LM_ROUTER:+-f "$LM_ROUTER"}
log() { logger -t lm-criu-action "$*" 2>/dev/null || echo "lm-criu-action: $*" >&2; }

case "${CRTOOLS_SCRIPT_ACTION:-}" in
pre-dump)
    # shellcheck disable=SC2086
    out=$($LMCTL $prefix migrate-begin --tenant "$LM_TENANT" --mo "$LM_MO_ID" 2>&1) || log "migrate-begin failed: $out"
    ;;
post-restore)
    # shellcheck disable=SC2086
    out=$($LMCTL $prefix attach --tenant "$LM_TENANT" --mo "$LM_MO_ID" --mac "$LM_MAC" --port "$LM_PORT" $LM_EIDS 2>&1) ||
        log "attach failed: $out (the router still attaches the MO from its announcement)"
    ;;
esac
exit 0
