#!/bin/sh
# `make bench`: runs every benchmark tests/bench/*.sh (each measures hvgate and
# its baseline side by side in the same run) and prints one table. Each suite
# prints lines "bench: NAME ours=V baseline=V ratio=R"; R > 1 means hvgate is
# better (times: baseline/ours; rates: ours/baseline; scaling: large/small).
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
export HVGATE_BUILD="$(cd "$BUILD" && pwd)"
mkdir -p "$BUILD/results"
out="$BUILD/results/bench.txt"; : > "$out"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)" >&2; exit 2; }
fail=0
for b in tests/bench/*.sh; do
	# run.sh is this; fastpath_cpu.sh compares two builds and fastpath_bound.sh
	# bounds inspect-request-rate (tools, not benches)
	case "$(basename "$b")" in run.sh | fastpath_cpu.sh | fastpath_bound.sh) continue ;; esac
	echo "== $(basename "$b" .sh)"
	log="$BUILD/results/bench-$(basename "$b" .sh).log"
	if ! timeout -k 10 900 sh "$b" > "$log" 2>&1; then
		echo "   (suite failed; last lines:)"; tail -5 "$log" | sed 's/^/   | /'; fail=1
	fi
	grep -v '^bench: ' "$log" | grep -E '^ ' | head -40
	grep '^bench: ' "$log" | tee -a "$out"
done
echo
printf '%-22s %16s %16s %8s\n' BENCHMARK HVGATE BASELINE RATIO
sed -E 's/^bench: ([^ ]+) ours=([^ ]+) baseline=([^ ]+) ratio=([^ ]+).*/\1 \2 \3 \4/' "$out" |
	while read -r n o b r; do printf '%-22s %16s %16s %8s\n' "$n" "$o" "$b" "$r"; done
exit $fail
