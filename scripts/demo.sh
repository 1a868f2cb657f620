#!/usr/bin/env bash
# make demo: the forwarding demo on the built-in default topology (network namespaces, two
# access routers across a 10 ms WAN, a correspondent and an MO). Needs root for namespaces.
set -euo pipefail
BUILD=${1:-build}
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
exec $SUDO /usr/bin/python3 "$(dirname "$0")/../test/e2e/demo_forwarding.py" --router "$BUILD/lm-router"
