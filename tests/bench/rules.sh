#!/bin/sh
# rules-10k-vs-10: the per-packet cost of the policy's rules. A seeded
# HETEROGENEOUS policy (tests/bench/gen_policy.py --hetero: host lists with
# services, source networks with port ranges, unique ports, other zone
# pairs, ICMP, IPv6 prefixes, rejects) of 10 and of 10,000 rules, whose last
# rule passes the benchmark's flows, measured alternately in the same lab
# (ROUNDS, median). The flows are 64 UDP flows that are never answered
# (tests/bench/udp_flows.py), so every packet is `ct state new` and is
# judged by the rules: a packet of the 10,000-rule policy meets them all in
# linear form. The receiver counts packets in its input hook; the suite
# FAILS if the passing rule's counter (summed over every rule and map chain
# with its id) did not count them, i.e. if the traffic did not meet the
# rules. Goal: ratio = rate(10k)/rate(10) >= 0.9. The same 10,000 rules with
# --no-optimize are measured in the same run, and, with BENCH_100K=1,
# rules-100k (100,000 rules, 1,000,000 addresses in host lists): apply time
# against `nft -f` of its linear text, and the packet rate. BENCH_SHAPE
# (above) measures another generated shape the same way.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
SECS=${BENCH_SECONDS:-4}
ROUNDS=${BENCH_ROUNDS:-3}
FLOWS=64
PORT=20000

# BENCH_SHAPE=overlap: the policies of gen_policy.py --shape overlap instead
# (50 zones, nested IPv6 prefixes, overlapping port ranges, wildcards),
# the same flows and passing rule
SHAPE=--hetero
[ -n "${BENCH_SHAPE:-}" ] && SHAPE="--shape $BENCH_SHAPE"

lab3_up || { echo "lab failed"; exit 1; }
python3 tests/bench/gen_policy.py $SHAPE --rules 10 --seed 1 > "$LAB_TMP/small.hvp"
python3 tests/bench/gen_policy.py $SHAPE --rules 10000 --seed 1 > "$LAB_TMP/large.hvp"
# the kernel id (FILE:HASH, the comment of its kernel rules) of the rule
# that passes the flows, the udp 20000-20999 rule, as explain names it
pass_id() {
	"$HVGATE" explain "$1" udp 10.10.1.2:40000 -\> 10.10.2.2:$PORT in lan0 out dmz0 --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["rule"]["kernel_id"])'
}

# the receiver: counts the flows' packets in the server's input hook and drops
# them, so no port-unreachable goes back either
at server nft -f - <<'NFT'
table inet bench {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 20000-20999 counter drop
	}
}
NFT
received() { at server nft list chain inet bench in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
# packets counted by the rule with id $1 in the firewall (all its copies)
rule_count() {
	at fw nft list table inet hvgate | awk -v id="$1" '
		index($0, "comment \"" id "\"") && match($0, /counter packets [0-9]+/) {
			split(substr($0, RSTART, RLENGTH), f, " "); n += f[3] }
		END { print n + 0 }'
}

apply() { # POLICY [options]: applies, forgets the flows of the last run
	"$HVGATE" apply "$@" --netns "$LAB-fw" > "$LAB_TMP/apply.out" 2>&1 ||
		{ cat "$LAB_TMP/apply.out"; echo "FAIL apply $1"; exit 1; }
	at fw conntrack -F 2> /dev/null
}

rate() { # POLICY: packets per second the server received; fails loudly if
	# the policy's rules did not see them
	before=$(received)
	at client python3 tests/bench/udp_flows.py 10.10.2.2 $PORT $FLOWS "$SECS" > "$LAB_TMP/sent"
	sleep 0.2
	got=$(( $(received) - before ))
	counted=$(rule_count "$(pass_id "$1")")
	if [ "$got" -le 0 ] || [ "$counted" -lt $((got * 95 / 100)) ]; then
		echo "FAIL traffic did not meet the rules of $1: received $got, its passing rule counted $counted" >&2
		exit 1
	fi
	echo $((got / SECS))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$LAB_TMP/r10"; : > "$LAB_TMP/r10k"; : > "$LAB_TMP/r10k-lin"
round=0
while [ $round -lt "$ROUNDS" ]; do
	apply "$LAB_TMP/small.hvp"; rate "$LAB_TMP/small.hvp" >> "$LAB_TMP/r10" || exit 1
	apply "$LAB_TMP/large.hvp"; rate "$LAB_TMP/large.hvp" >> "$LAB_TMP/r10k" || exit 1
	[ $round = 0 ] && sed -n 's/^applied: /  10,000 rules applied: /p' "$LAB_TMP/apply.out"
	# BENCH_LINEAR=0: not the --no-optimize rounds (the overlap shape's
	# linear form is 238,000 rules, minutes to apply)
	if [ "${BENCH_LINEAR:-1}" = 1 ]; then
		apply "$LAB_TMP/large.hvp" --no-optimize; rate "$LAB_TMP/large.hvp" >> "$LAB_TMP/r10k-lin" || exit 1
	fi
	round=$((round + 1))
done
small=$(median < "$LAB_TMP/r10"); large=$(median < "$LAB_TMP/r10k"); lin=$(median < "$LAB_TMP/r10k-lin")
echo "  10-rule policy:                   $(tr '\n' ' ' < "$LAB_TMP/r10") pkt/s (median $small)"
echo "  10,000-rule policy:               $(tr '\n' ' ' < "$LAB_TMP/r10k") pkt/s (median $large)"
[ -s "$LAB_TMP/r10k-lin" ] && echo "  10,000 rules with --no-optimize:  $(tr '\n' ' ' < "$LAB_TMP/r10k-lin") pkt/s (median $lin, ratio $(awk -v a="$lin" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'))"
"$HVGATE" compile "$LAB_TMP/large.hvp" --emit summary 2>/dev/null | grep -E '^  classify|^  lists|^  fallback|^    chain|^optimizer' | sed 's/^ */  /'
ratio=$(awk -v a="$large" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
echo "bench: rules-10k-vs-10${BENCH_SHAPE:+-$BENCH_SHAPE} ours=${large}pps baseline=${small}pps ratio=$ratio"

[ "${BENCH_100K:-0}" = 1 ] || exit 0
# --- rules-100k -------------------------------------------------------------
python3 tests/bench/gen_policy.py --hetero --rules 100000 --seed 1 --addresses 1000000 > "$LAB_TMP/huge.hvp"
"$HVGATE" compile "$LAB_TMP/huge.hvp" --emit nft --no-optimize > "$LAB_TMP/huge-linear.nft" 2> /dev/null ||
	{ echo "FAIL 100k compile"; exit 1; }
at fw nft delete table inet hvgate 2> /dev/null
t0=$(date +%s.%N); at fw nft -f "$LAB_TMP/huge-linear.nft" || { echo "FAIL nft -f of the 100k linear text"; exit 1; }
t1=$(date +%s.%N)
at fw nft delete table inet hvgate
t2=$(date +%s.%N); apply "$LAB_TMP/huge.hvp"; t3=$(date +%s.%N)
nft_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
ours_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN {printf "%.2f", b - a}')
echo "  100,000 rules: hvgate compile+apply ${ours_s} s, nft -f of the linear text ${nft_s} s"
"$HVGATE" compile "$LAB_TMP/huge.hvp" --emit summary 2>/dev/null | grep -E '^  classify|^  lists|^  fallback|^    chain|^optimizer' | sed 's/^ */  /'
huge=$(rate "$LAB_TMP/huge.hvp") || exit 1
echo "  100,000-rule policy: $huge pkt/s"
echo "bench: rules-100k-apply ours=${ours_s}s baseline=${nft_s}s ratio=$(awk -v a="$ours_s" -v b="$nft_s" 'BEGIN {printf "%.3f", (a > 0 ? b / a : 0)}')"
echo "bench: rules-100k-vs-10 ours=${huge}pps baseline=${small}pps ratio=$(awk -v a="$huge" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')"
