#!/usr/bin/env bash
# make demo: a demo on the built-in topology (network namespaces; needs root for them).
#   default (LM_DEMO=migration): the live-migration demo (three access routers in one LM directory
#                       over a 10 ms WAN; the MO migrates AR2 -> AR3 -> AR2 under 10,000/s UDP + TCP,
#                       IPv4 and IPv6, D = 0 and 50 ms; test/e2e/demo_migration.py, ~40 s)
#   LM_DEMO=forwarding: the forwarding demo (two access routers across a 10 ms WAN, a correspondent, an MO)
set -euo pipefail
BUILD=${1:-build}
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo --preserve-env=LM_LMCTL,LM_E2E_RT,LM_E2E_NICE"
case "${LM_DEMO:-migration}" in
  forwarding) exec $SUDO /usr/bin/python3 "$(dirname "$0")/../test/e2e/demo_forwarding.py" --router "$BUILD/lm-router" ;;
  migration)  exec $SUDO /usr/bin/python3 "$(dirname "$0")/../test/e2e/demo_migration.py" --router "$BUILD/lm-router" ;;
  *) echo "LM_DEMO must be forwarding or migration" >&2; exit 2 ;;
esac
