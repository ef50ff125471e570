#!/bin/sh
# Prints the closing line of `make test` from the per-suite result files.
set -u
pass=0; failed=0; skipped=0
for f in build/results/unit.txt build-asan/results/unit.txt build-fuzz/results/fuzz.txt; do
    [ -f "$f" ] || { echo "summary: $f missing: a suite did not run" >&2; failed=$((failed + 1)); continue; }
    pass=$((pass + $(awk '{c+=$2-$3} END {print c+0}' "$f")))
    failed=$((failed + $(awk '{f+=$3} END {print f+0}' "$f")))
done
f=build/results/net.txt
if [ -f "$f" ]; then
    pass=$((pass + $(awk '{p+=$2} END {print p+0}' "$f")))
    failed=$((failed + $(awk '{f+=$3} END {print f+0}' "$f")))
    skipped=$((skipped + $(awk '{k+=$4} END {print k+0}' "$f")))
else
    echo "summary: $f missing: integration suites did not run" >&2; failed=$((failed + 1))
fi
echo "$pass passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
