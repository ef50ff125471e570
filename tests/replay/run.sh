#!/bin/sh
# The replay corpus: every tests/replay/NAME/ with a capture is replayed
# through `hvgate replay` and must print exactly NAME/expected; the example
# policy repository tests/replay/repo must pass `hvgate test`. No root.
#   tests/replay/run.sh [BUILD] [--update]
# --update rewrites the expected files (review the diff before committing).
set -u
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
UPDATE=0
[ "${2:-}" = "--update" ] && UPDATE=1
HERE=$(cd "$(dirname "$0")" && pwd)
HVGATE=$BUILD/hvgate
[ -x "$HVGATE" ] || { echo "FAIL replay: no $HVGATE"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
cases=0 packets=0 failed=0
for dir in "$HERE"/*/; do
    name=$(basename "$dir")
    [ -f "$dir/capture.pcap" ] || continue
    cases=$((cases + 1))
    (cd "$dir" && "$HVGATE" replay policy.hvp capture.pcap --iif-map map) > "$tmp/out" 2>&1
    rc=$?
    n=$(grep '^[0-9]' "$tmp/out" | grep -vc '^[0-9]* packets: ')
    packets=$((packets + n))
    if [ "$UPDATE" = 1 ]; then
        cp "$tmp/out" "$dir/expected"
        echo "UPDATED $name ($n packets)"
        continue
    fi
    if [ "$rc" -ne 0 ] || ! diff -u "$dir/expected" "$tmp/out" > "$tmp/diff"; then
        failed=$((failed + 1))
        echo "FAIL replay/$name (exit $rc)"
        head -40 "$tmp/diff"
    else
        echo "PASS replay/$name ($n packets)"
    fi
done
if "$HVGATE" test "$HERE/repo" > "$tmp/test" 2>&1; then
    echo "PASS replay/repo: $(tail -1 "$tmp/test")"
else
    failed=$((failed + 1))
    echo "FAIL replay/repo"; cat "$tmp/test"
fi
echo "replay: $cases cases, $packets packets, $failed failed"
[ "$failed" -eq 0 ]
