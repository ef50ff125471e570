#!/bin/sh
# apply-vs-nft: compile + apply of a generated policy (10,000 rules, 100,000
# addresses by default; tests/bench/gen_policy.py) through hvgate's one
# netlink batch (`hvgate apply`), against `nft -f` of the equivalent text
# (`hvgate compile --emit nft`, compiled once beforehand, so the baseline
# pays no compile). Each run uses fresh lab namespaces; median of BENCH_RUNS
# (3) runs each; the two results must list identically.
#
# Two more lines separate the backend from the front end:
#   apply-batch-vs-nft  hvgate apply's own build + kernel time (it prints
#                       them) against the same nft -f;
#   batch-vs-nft        an IR of the same size built without the front end
#                       (test_emit_nftnl --write-big): batch build time +
#                       sending it and reading all acks (timed inside
#                       nftsend.py, without python's start-up) against the
#                       wall time of nft -f of its text.
# Sizes: BENCH_RULES, BENCH_ADDRS, BENCH_LISTS (address lists). The front end
# gets BENCH_COMPILE_LIMIT seconds (600) to compile the policy once.
. "$(dirname "$0")/../lib/netns.sh"
DIR=$(cd "$(dirname "$0")" && pwd)
NET=$(cd "$DIR/../net" && pwd)
RULES=${BENCH_RULES:-10000}
ADDRS=${BENCH_ADDRS:-100000}
LISTS=${BENCH_LISTS:-100}
RUNS=${BENCH_RUNS:-3}
LIMIT=${BENCH_COMPILE_LIMIT:-600}
GEN="$HVGATE_BUILD/tests/policy/test_emit_nftnl"

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }
ratio() { awk -v o="$1" -v b="$2" 'BEGIN { printf "%.2f", b / o }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'; }
same_listing() { # NS1 NS2
	ip netns exec "$1" nft list table inet hvgate > "$LAB_TMP/l1"
	ip netns exec "$2" nft list table inet hvgate > "$LAB_TMP/l2"
	cmp -s "$LAB_TMP/l1" "$LAB_TMP/l2"
}
status=0

# 1. the backend alone, at full size
mkdir -p "$LAB_TMP/ir"
build=$("$GEN" --write-big "$LAB_TMP/ir" "$RULES" "$ADDRS" | sed -n 's/^build //p')
[ -n "$build" ] || { echo "test_emit_nftnl --write-big failed"; exit 1; }
ours="" base=""
run=1
while [ "$run" -le "$RUNS" ]; do
	lab_ns "b$run" && lab_ns "t$run" || exit 1
	t0=$(now)
	ip netns exec "$LAB-b$run" python3 "$NET/nftsend.py" "$LAB_TMP/ir/big.batch" > "$LAB_TMP/send" ||
		{ echo "batch refused: $(cat "$LAB_TMP/send")"; exit 1; }
	o=$(add "$(cut -d' ' -f4 "$LAB_TMP/send")" "$build")
	t0=$(now)
	ip netns exec "$LAB-t$run" nft -f "$LAB_TMP/ir/big.nft" || { echo "nft -f failed"; exit 1; }
	n=$(sub "$(now)" "$t0")
	echo "  IR run $run: build ${build} s + send/acks $(cut -d' ' -f4 "$LAB_TMP/send") s = ${o} s," \
		"nft -f ${n} s"
	if [ "$run" -eq 1 ]; then
		same_listing "$LAB-b1" "$LAB-t1" || { echo "  IR: the two rulesets differ"; exit 1; }
		echo "  IR: both rulesets list identically ($(wc -l < "$LAB_TMP/l1") lines)"
	fi
	ours="$ours $o"; base="$base $n"
	ip netns del "$LAB-b$run"; ip netns del "$LAB-t$run"
	run=$((run + 1))
done
bo=$(echo "$ours" | median); bn=$(echo "$base" | median)

# 2. the whole path: hvgate apply of a policy against nft -f of its text
python3 "$DIR/gen_policy.py" --rules "$RULES" --addresses "$ADDRS" --lists "$LISTS" > "$LAB_TMP/big.hvp" || exit 1
t0=$(now)
timeout "$LIMIT" "$HVGATE" compile "$LAB_TMP/big.hvp" > "$LAB_TMP/big.nft" 2> "$LAB_TMP/compile.err"
rc=$?
compile_s=$(sub "$(now)" "$t0")
ours="" batch="" base=""
if [ "$rc" -ne 0 ]; then
	echo "  policy: hvgate compile did not finish (exit $rc after ${compile_s} s, limit ${LIMIT} s):" \
		"no apply-vs-nft this run"
	status=1
else
	echo "  policy: $RULES rules, $ADDRS addresses; compile alone ${compile_s} s"
	run=1
	while [ "$run" -le "$RUNS" ]; do
		lab_ns "nl$run" && lab_ns "txt$run" || exit 1
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
			same_listing "$LAB-nl1" "$LAB-txt1" || { echo "  the two rulesets differ"; exit 1; }
			echo "  both rulesets list identically ($(wc -l < "$LAB_TMP/l1") lines)"
		fi
		ours="$ours $o"; batch="$batch $b"; base="$base $n"
		ip netns del "$LAB-nl$run"; ip netns del "$LAB-txt$run"
		run=$((run + 1))
	done
fi

printf '  %-44s %10s\n' "median of $RUNS, seconds ($RULES rules, $ADDRS addresses)" ""
printf '  %-44s %10s\n' "IR batch: build + send + all acks" "$bo"
printf '  %-44s %10s\n' "nft -f of the IR's text" "$bn"
if [ -n "$ours" ]; then
	mo=$(echo "$ours" | median); mb=$(echo "$batch" | median); mn=$(echo "$base" | median)
	printf '  %-44s %10s\n' "hvgate apply (compile + build + kernel)" "$mo"
	printf '  %-44s %10s\n' "  of which build + kernel" "$mb"
	printf '  %-44s %10s\n' "nft -f of hvgate compile's text" "$mn"
	echo "bench: apply-vs-nft ours=$mo baseline=$mn ratio=$(ratio "$mo" "$mn")"
	echo "bench: apply-batch-vs-nft ours=$mb baseline=$mn ratio=$(ratio "$mb" "$mn")"
fi
echo "bench: batch-vs-nft ours=$bo baseline=$bn ratio=$(ratio "$bo" "$bn")"
exit $status
