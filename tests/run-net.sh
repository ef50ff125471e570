#!/bin/sh
# Runs every network-namespace integration suite tests/net/*.sh as root.
# Each suite prints "PASS name" / "FAIL name" / "SKIP name: why" lines; a suite
# that exits non-zero without a FAIL line counts as one failure. With CI=true
# a skip is a failure: nothing may silently not run.
set -u
BUILD=${1:-build}
export HVGATE_BUILD="$(cd "$BUILD" && pwd)"
mkdir -p "$BUILD/results"
out="$BUILD/results/net.txt"; : > "$out"
if [ "$(id -u)" != 0 ]; then echo "run-net: integration suites need root" >&2; exit 1; fi
fail=0
for s in tests/net/*.sh; do
    [ -e "$s" ] || continue
    name=$(basename "$s" .sh)
    log="$BUILD/results/net-$name.log"
    echo "== $name"
    # the image suite builds a root and boots it three times under TCG
    limit=${SUITE_TIMEOUT:-900}; [ "$name" = image_boot ] && limit=${IMAGE_SUITE_TIMEOUT:-2100}
    timeout -k 10 "$limit" sh "$s" > "$log" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$log" | sed 's/^/   /'
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); k=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "   FAIL $name: suite exited $rc"; tail -20 "$log" | sed 's/^/   | /'
    fi
    if [ "${CI:-}" = true ] && [ "$k" -ne 0 ]; then f=$((f + k)); echo "   (CI: skips count as failures)"; fi
    [ "$f" -ne 0 ] && fail=1
    echo "$name $p $f $k" >> "$out"
done
awk '{p+=$2; f+=$3; k+=$4} END {printf "integration: %d passed, %d failed, %d skipped\n", p, f, k}' "$out"
exit $fail
