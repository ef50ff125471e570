#!/bin/sh
# inspect-request-rate: what inspection costs. Requests per second (a new
# TCP connection, one request line, the answer; tests/bench/conn_rate.py)
# from the client through hvgated to a server, with the pass rule carrying
# an `inspect` block (every request's packets go to the fast path until it
# has seen the request line: no match, so the flow is judged to its end or
# the window) against the same rule without it, in the same lab, alternately
# (median of BENCH_ROUNDS, 3). ratio = inspected / plain: the share of the
# plain rate that is left with inspection on.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_EACH=${BENCH_SECONDS:-4}
PROCS=${BENCH_PROCS:-4}

lab3_up || { echo "lab failed"; exit 1; }
bg server python3 tests/bench/conn_rate.py serve 8000 --answer
wait_for 5 sh -c "ip netns exec $LAB-server ss -ltn | grep -q ':8000 '" || { echo "server failed"; exit 1; }
for kind in plain inspected; do
	{
		echo 'zone lan { interface "lan0" }'
		echo 'zone dmz { interface "dmz0" }'
		if [ $kind = inspected ]; then
			echo 'pass from lan to dmz service tcp port 8000 inspect {'
			echo '  block content /(?i)union\s+select/'
			echo '  block content /\.\.\/\.\.\//'
			echo '}'
		else
			echo 'pass from lan to dmz service tcp port 8000'
		fi
	} > "$LAB_TMP/$kind.hvp"
done
cp "$LAB_TMP/plain.hvp" "$LAB_TMP/running.hvp"
daemon_conf "$LAB_TMP/running.hvp" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
daemon_start || { echo "hvgated did not start"; tail -5 "$DAEMON_LOG"; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rate() {
	cp "$LAB_TMP/$1.hvp" "$LAB_TMP/running.hvp"
	hv reload > /dev/null || { echo "reload failed" >&2; echo 0; return; }
	at fw conntrack -F 2>/dev/null
	at client python3 tests/bench/conn_rate.py connect 10.10.2.2 8000 "$SECONDS_EACH" "$PROCS" --request
}
: > "$LAB_TMP/r-inspected"; : > "$LAB_TMP/r-plain"
round=0
while [ $round -lt "$ROUNDS" ]; do
	rate inspected >> "$LAB_TMP/r-inspected"
	rate plain >> "$LAB_TMP/r-plain"
	round=$((round + 1))
done
st=$(hv status --json)
daemon_stop
ours=$(median < "$LAB_TMP/r-inspected"); base=$(median < "$LAB_TMP/r-plain")
echo "  inspected: $(tr '\n' ' ' < "$LAB_TMP/r-inspected") requests/s (median $ours)"
echo "  plain:     $(tr '\n' ' ' < "$LAB_TMP/r-plain") requests/s (median $base)"
echo "  fast path: $(json_get "$st" fastpath.packets) packets judged, $(json_get "$st" fastpath.blocked) flows blocked, $(json_get "$st" fastpath.ct_unknown) without a connection"
[ "${ours:-0}" -gt 0 ] && [ "${base:-0}" -gt 0 ] || { echo "no requests completed"; exit 1; }
[ "$(json_get "$st" fastpath.blocked)" = 0 ] || { echo "benign requests were blocked"; exit 1; }
ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
echo "bench: inspect-request-rate ours=${ours}req/s baseline=${base}req/s ratio=$ratio"
