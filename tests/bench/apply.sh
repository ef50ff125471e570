#!/bin/sh
# apply-vs-nft: compile + apply of a generated policy (10,000 rules, 100,000
# addresses by default) through hvgate's one netlink batch (`hvgate apply`),
# against `nft -f` of the equivalent text (`hvgate compile --emit nft`,
# compiled once beforehand, so the baseline pays no compile). Each run uses
# two fresh lab namespaces; median of BENCH_RUNS (3) runs each. A second line,
# apply-batch-vs-nft, compares only hvgate's build + kernel time (what apply
# prints) with the same `nft -f`: the backend without the front end.
# Sizes: BENCH_RULES, BENCH_ADDRS, BENCH_LISTS (address lists). The two results must list identically.
. "$(dirname "$0")/../lib/netns.sh"
DIR=$(cd "$(dirname "$0")" && pwd)
RULES=${BENCH_RULES:-10000}
ADDRS=${BENCH_ADDRS:-100000}
RUNS=${BENCH_RUNS:-3}
LISTS=${BENCH_LISTS:-100}

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'; }

python3 "$DIR/gen_policy.py" --rules "$RULES" --addresses "$ADDRS" --lists "$LISTS" > "$LAB_TMP/big.hvp" || exit 1
t0=$(now)
"$HVGATE" compile "$LAB_TMP/big.hvp" > "$LAB_TMP/big.nft" 2> "$LAB_TMP/compile.err" || {
	echo "compile failed: $(head -3 "$LAB_TMP/compile.err")"; exit 1; }
compile_s=$(sub "$(now)" "$t0")
echo "  policy: $RULES rules, $ADDRS addresses; compile alone ${compile_s} s;" \
	"$(grep -c . "$LAB_TMP/big.nft") lines of nft text"

ours="" batch="" base=""
run=1
while [ "$run" -le "$RUNS" ]; do
	lab_ns "nl$run" || exit 1
	lab_ns "txt$run" || exit 1
	t0=$(now)
	"$HVGATE" apply "$LAB_TMP/big.hvp" --netns "$LAB-nl$run" > "$LAB_TMP/apply.out" 2>&1 || {
		echo "apply failed: $(head -3 "$LAB_TMP/apply.out")"; exit 1; }
	o=$(sub "$(now)" "$t0")
	b=$(sed -nE 's/.*build ([0-9.]+) ms, kernel ([0-9.]+) ms.*/\1 \2/p' "$LAB_TMP/apply.out" |
		awk '{ printf "%.3f", ($1 + $2) / 1000 }')
	t0=$(now)
	ip netns exec "$LAB-txt$run" nft -f "$LAB_TMP/big.nft" || { echo "nft -f failed"; exit 1; }
	n=$(sub "$(now)" "$t0")
	echo "  run $run: hvgate apply ${o} s (build+kernel ${b} s), nft -f ${n} s"
	if [ "$run" -eq 1 ]; then
		ip netns exec "$LAB-nl1" nft list table inet hvgate > "$LAB_TMP/l.nl"
		ip netns exec "$LAB-txt1" nft list table inet hvgate > "$LAB_TMP/l.txt"
		if cmp -s "$LAB_TMP/l.nl" "$LAB_TMP/l.txt"; then
			echo "  both rulesets list identically ($(wc -l < "$LAB_TMP/l.nl") lines)"
		else
			echo "  the two rulesets differ"; exit 1
		fi
	fi
	ours="$ours $o"; batch="$batch $b"; base="$base $n"
	ip netns del "$LAB-nl$run"; ip netns del "$LAB-txt$run"
	run=$((run + 1))
done
mo=$(echo "$ours" | median); mb=$(echo "$batch" | median); mn=$(echo "$base" | median)
printf '  %-34s %10s\n' "median of $RUNS (seconds)" ""
printf '  %-34s %10s\n' "hvgate apply (compile+build+kernel)" "$mo"
printf '  %-34s %10s\n' "  of which build+kernel" "$mb"
printf '  %-34s %10s\n' "nft -f (text compiled beforehand)" "$mn"
echo "bench: apply-vs-nft ours=$mo baseline=$mn ratio=$(awk -v o="$mo" -v b="$mn" 'BEGIN { printf "%.2f", b / o }')"
echo "bench: apply-batch-vs-nft ours=$mb baseline=$mn ratio=$(awk -v o="$mb" -v b="$mn" 'BEGIN { printf "%.2f", b / o }')"
