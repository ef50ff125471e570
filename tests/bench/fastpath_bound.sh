#!/bin/sh
# How much of inspect-request-rate's price is queueing itself: requests per
# second (tests/bench/conn_rate.py, a new TCP connection, one request line,
# the answer) through
#   plain     the rule without its inspect block (nothing queued),
#   hvgated   the rule with it, judged by hvgated's two workers (every
#             packet of each connection judged: the requests match nothing),
#   accept    the same ruleset, every queued packet answered by the smallest
#             per-packet accept loop (tests/bench/nfq_accept.c) instead:
#             queued as with hvgated, judged by nobody,
# alternately, BENCH_ROUNDS (3) rounds, in one lab. Prints each round with
# the load average, then the medians and the ratios to plain. The accept
# loop's ratio bounds what any judge behind NFQUEUE can reach with this
# many packets queued per request.
#
# Not part of `make bench`: a tool for understanding the bench
# (docs/fastpath.md, "Measured").
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_EACH=${BENCH_SECONDS:-4}

lab3_up || { echo "lab failed"; exit 1; }
bg server python3 tests/bench/conn_rate.py serve 8000 --answer
wait_for 5 sh -c "ip netns exec $LAB-server ss -ltn | grep -q ':8000 '" || { echo "server failed"; exit 1; }
cc -O2 -o "$LAB_TMP/nfq_accept" tests/bench/nfq_accept.c \
	$(pkg-config --cflags --libs libnetfilter_queue libmnl) || { echo "the accept loop does not build"; exit 1; }
policy() {
	echo 'zone lan { interface "lan0" }'
	echo 'zone dmz { interface "dmz0" }'
	if [ "$1" = plain ]; then
		echo 'pass from lan to dmz service tcp port 8000'
	else
		echo 'pass from lan to dmz service tcp port 8000 inspect {'
		echo '  block content /(?i)union\s+select/'
		echo '  block content /\.\.\/\.\.\//'
		echo '}'
	fi
}
policy plain > "$LAB_TMP/plain.hvp"
policy request > "$LAB_TMP/request.hvp"
cp "$LAB_TMP/plain.hvp" "$LAB_TMP/running.hvp"
daemon_conf "$LAB_TMP/running.hvp" 'fastpath: { enabled = true; queue = 100; workers = 2; };'

use() {
	cp "$LAB_TMP/$1.hvp" "$LAB_TMP/running.hvp"
	hv reload > /dev/null && at fw conntrack -F 2>/dev/null
	return 0
}
requests() { at client python3 tests/bench/conn_rate.py connect 10.10.2.2 8000 "$SECONDS_EACH" 4 --request; }
counter() { json_get "$(hv status --json)" "fastpath.$1"; }

: > "$LAB_TMP/bound"
round=0
while [ $round -lt "$ROUNDS" ]; do
	daemon_start || { echo "hvgated did not start: $(tail -3 "$DAEMON_LOG")"; exit 1; }
	use plain; p=$(requests)
	use request; j0=$(counter packets); h=$(requests); judged=$(($(counter packets) - j0))
	daemon_stop # on_stop keep: the request ruleset stays, its queues with bypass
	ip netns exec "$LAB-fw" "$LAB_TMP/nfq_accept" 100 101 102 103 > "$LAB_TMP/acc" 2> "$LAB_TMP/acc.err" &
	ap=$!
	wait_for 5 grep -qs ready "$LAB_TMP/acc.err"
	a=$(requests)
	kill -TERM $ap; wait $ap
	echo "$p $h $a" >> "$LAB_TMP/bound"
	echo "  round $round: plain $p, hvgated $h ($judged judged), accept loop $a ($(cat "$LAB_TMP/acc") accepted) requests/s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	round=$((round + 1))
done
med() { awk -v c="$1" '{ print $c }' "$LAB_TMP/bound" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
p=$(med 1) h=$(med 2) a=$(med 3)
echo "bound: plain $p, hvgated $h (ratio $(awk -v x="$h" -v y="$p" 'BEGIN { printf "%.3f", y ? x / y : 0 }')), accept loop $a (ratio $(awk -v x="$a" -v y="$p" 'BEGIN { printf "%.3f", y ? x / y : 0 }')) requests/s"
