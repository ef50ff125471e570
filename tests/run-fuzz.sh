#!/bin/sh
# Runs each fuzz target for a bounded time on its seed corpus; a crash, leak
# or sanitizer report fails. Results go to $1/results/fuzz.txt.
set -u
BUILD=${1:-build-fuzz}; SECS=${2:-10}
mkdir -p "$BUILD/results"; out="$BUILD/results/fuzz.txt"; : > "$out"
fail=0
for b in "$BUILD"/tests/fuzz/fuzz_*; do
    [ -x "$b" ] || continue
    case "$b" in *.o|*.d|*.log) continue;; esac
    name=$(basename "$b")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d); [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
    if "$b" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 "$work" > "$b.log" 2>&1; then
        runs=$(grep -Eo 'Done [0-9]+ runs' "$b.log" | grep -Eo '[0-9]+' | tail -1)
        echo "ok   $name: ${runs:-?} runs in ${SECS}s"; echo "$name 1 0" >> "$out"
    else
        fail=1; echo "FAIL $name"; tail -30 "$b.log"; echo "$name 1 1" >> "$out"
    fi
    rm -rf "$work"
done
[ -s "$out" ] || { echo "run-fuzz: no fuzz targets built" >&2; exit 1; }
exit $fail
