#!/usr/bin/env bash
# make demo: a demo on the built-in topology (network namespaces; needs root for them).
#   default:            the forwarding demo (two access routers across a 10 ms WAN, a correspondent, an MO)
#   LM_DEMO=migration:  the live-migration demo (three access routers in one LM directory, the MO
#                       migrates AR2 -> AR3 -> AR2 under 10,000/s UDP + TCP; test/e2e/demo_migration.py)
set -euo pipefail
BUILD=${1:-build}
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo --preserve-env=LM_LMCTL,LM_E2E_RT"
case "${LM_DEMO:-forwarding}" in
  forwarding) exec $SUDO /usr/bin/python3 "$(dirname "$0")/../test/e2e/demo_forwarding.py" --router "$BUILD/lm-router" ;;
  migration)  exec $SUDO /usr/bin/python3 "$(dirname "$0")/../test/e2e/demo_migration.py" --router "$BUILD/lm-router" ;;
  *) echo "LM_DEMO must be forwarding or migration" >&2; exit 2 ;;
esac
