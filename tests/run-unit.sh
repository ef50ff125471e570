#!/bin/sh
# Runs every Check unit-test runner under $1/tests and records the totals in
# $1/results/unit.txt for tests/summary.sh. Fails if any runner fails.
set -u
BUILD=${1:-build}
mkdir -p "$BUILD/results"
out="$BUILD/results/unit.txt"; : > "$out"
bins=$(find "$BUILD/tests" -type f -perm -u+x -name 'test_*' 2>/dev/null | sort)
if [ -z "$bins" ]; then echo "run-unit: no unit tests built under $BUILD/tests" >&2; exit 1; fi
fail=0
for b in $bins; do
    log="$b.log"
    CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$b" > "$log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -1)
    checks=$(echo "$line" | sed -nE 's/.*Checks: ([0-9]+).*/\1/p')
    failures=$(echo "$line" | sed -nE 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/p')
    f=$(echo "$failures" | awk '{print $1+$2}')
    if [ -z "$checks" ]; then checks=0; f=1; fi
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        fail=1; echo "FAIL $b (exit $rc): $line"; grep -E ':[EF]:' "$log" | head -20
    else
        echo "ok   $b: $line"
    fi
    echo "$b $checks $f" >> "$out"
done
awk -v b="$BUILD" '{c+=$2; f+=$3} END {printf "unit(%s): %d checks, %d failed\n", b, c, f}' "$out"
exit $fail
