#!/bin/sh
# The live differential of the replay corpus (tests/replay/live.py, docs/replay.md):
# every packet of every tests/replay/NAME/ case through the kernel running the
# compiled policy in a namespace lab, compared with the offline evaluator; then
# REPLAY_RANDOM_CASES (default 6) random policies with random packets
# (tests/replay/gen_random.py, seed REPLAY_RANDOM_SEED, default 1) the same way.
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
rc=0
"$PY" tests/replay/live.py "$BUILD" || rc=1
tmp=$(mktemp -d /tmp/w4r-random.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
seed=${REPLAY_RANDOM_SEED:-1}
n=${REPLAY_RANDOM_CASES:-6}
if "$PY" tests/replay/gen_random.py "$tmp" "$seed" "$n" 25; then
    "$PY" tests/replay/live.py --dir "$tmp" "$BUILD" || rc=1
else
    echo "FAIL replay_live: gen_random.py seed $seed"; rc=1
fi
exit $rc
