#!/usr/bin/env bash
# make demo: runs the demo against the freshly built router.
set -euo pipefail
BUILD=${1:-build}
exec /usr/bin/python3 "$(dirname "$0")/demo.py" --router "$BUILD/lm-router"
