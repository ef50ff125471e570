#!/bin/sh
# The live differential of the replay corpus (tests/replay/live.py, docs/replay.md):
# every packet of every tests/replay/NAME/ case through the kernel running the
# compiled policy in a namespace lab, compared with the offline evaluator.
# Prints PASS/FAIL/SKIP per case, a DISAGREE line per packet that differs
# (with the rules the kernel counted), and the totals.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${HVGATE_BUILD:-$PWD/build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import scapy.all' 2>/dev/null; then
    echo "SKIP replay_live: python3-scapy is not installed (tests/lib/deps.sh)"
    exit 0
fi
exec "$PY" tests/replay/live.py "$BUILD"
