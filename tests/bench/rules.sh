#!/bin/sh
# rules-10k-vs-10: packet rate of 64-byte UDP through the firewall namespace
# under a 10-rule and under a 10,000-rule policy, measured alternately in the
# same lab (3 rounds each, median). The ratio rate(10k)/rate(10) should stay
# at or above 0.9: the per-packet cost must not grow with the rule count.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
SECS=${BENCH_SECONDS:-4}
ROUNDS=${BENCH_ROUNDS:-3}

# gen N: a policy whose first N-1 rules do not match the benchmark flow (other
# addresses and ports in the same zone pair) and whose last rule passes it.
gen() {
	n=$1
	printf 'zone lan { interface "lan0" }\nzone dmz { interface "dmz0" }\ndefault block\n'
	i=1
	while [ $i -lt "$n" ]; do
		printf 'block from lan to 10.%d.%d.%d service udp port %d\n' $((20 + i / 65536)) $((i / 256 % 256)) $((i % 256)) $((1000 + i % 50000))
		i=$((i + 1))
	done
	printf 'pass from lan to dmz service udp port 5201\npass from lan to dmz service tcp port 5201\n'
}

lab3_up || { echo "lab failed"; exit 1; }
gen 10 > "$LAB_TMP/small.hvp"
gen 10000 > "$LAB_TMP/large.hvp"

rate() { # prints received packets per second for one iperf3 UDP run
	at server iperf3 -s -1 -p 5201 > /dev/null 2>&1 &
	srv=$!
	sleep 0.3
	at client iperf3 -c 10.10.2.2 -p 5201 -u -l 64 -b 0 -t "$SECS" --json 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print(int((d["packets"]-d["lost_packets"])/d["seconds"]))' 2>/dev/null || echo 0
	wait "$srv"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$LAB_TMP/r10"; : > "$LAB_TMP/r10k"
r=0
while [ $r -lt "$ROUNDS" ]; do
	"$HVGATE" apply "$LAB_TMP/small.hvp" --netns "$LAB-fw" > /dev/null || { echo "apply small failed"; exit 1; }
	rate >> "$LAB_TMP/r10"
	"$HVGATE" apply "$LAB_TMP/large.hvp" --netns "$LAB-fw" > /dev/null || { echo "apply large failed"; exit 1; }
	rate >> "$LAB_TMP/r10k"
	r=$((r + 1))
done
small=$(median < "$LAB_TMP/r10"); large=$(median < "$LAB_TMP/r10k")
echo "  10-rule policy:     $(tr '\n' ' ' < "$LAB_TMP/r10") pkt/s (median $small)"
echo "  10,000-rule policy: $(tr '\n' ' ' < "$LAB_TMP/r10k") pkt/s (median $large)"
ratio=$(awk -v a="$large" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
echo "bench: rules-10k-vs-10 ours=${large}pps baseline=${small}pps ratio=$ratio"
