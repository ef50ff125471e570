#!/bin/sh
# The cost of inspection, each measured against the same traffic through the
# same rule without its `inspect` block, in the same lab and run, alternately
# (median of BENCH_ROUNDS, 3), through hvgated with two workers:
#
# inspect-request-rate  requests per second (a new TCP connection, one
#     request line, the answer; tests/bench/conn_rate.py); the requests match
#     nothing, so every packet of each connection is judged to its end.
# inspect-sni-flows     new TLS flows per second, each decided on its
#     ClientHello (`pass tls.sni "*.bench.example"`: cleared at once).
# inspect-decided-throughput  one long TCP flow (iperf3) after its verdict
#     (`pass content /(?s)./`: cleared at its first data) in Mbit/s.
# inspect-udp-pps       64-byte UDP datagrams per second through an inspected
#     rule (tests/bench/udp_pps.py: a new flow every 8 datagrams, so each one
#     is judged), hvgated's workers against the baseline: the smallest
#     per-packet NFQUEUE accept loop (tests/bench/nfq_accept.c, built here)
#     on the same queues of the same ruleset. Both fail closed, so that
#     nothing reaches the receiver without passing the queue.
#
# ratio = inspected / plain. Each measurement checks with the fast path's
# own counters (`hvgate status`) that its inspected traffic met the rules:
# packets judged, flows cleared; a run whose traffic never reached the fast
# path fails loudly instead of reporting a ratio.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_EACH=${BENCH_SECONDS:-4}
PROCS=${BENCH_PROCS:-4}
FAILED=0

lab3_up || { echo "lab failed"; exit 1; }
bg server python3 tests/bench/conn_rate.py serve 8000 --answer
bg server iperf3 -s -p 5201
wait_for 5 sh -c "[ \$(ip netns exec $LAB-server ss -ltn | grep -cE ':(8000|5201) ') -eq 2 ]" ||
	{ echo "servers failed"; exit 1; }

# policy NAME INSPECT-LINES...: a policy file whose one rule for tcp 8000 and
# 5201 has an inspect block of those lines (none: the plain rule)
policy() {
	n=$1; shift
	{
		echo 'zone lan { interface "lan0" }'
		echo 'zone dmz { interface "dmz0" }'
		if [ $# -gt 0 ]; then
			echo 'pass from lan to dmz service tcp port { 8000, 5201 } inspect {'
			for l in "$@"; do echo "  $l"; done
			echo '}'
		else
			echo 'pass from lan to dmz service tcp port { 8000, 5201 }'
		fi
		if [ "$n" = udp ]; then
			echo 'pass from lan to dmz service udp port 9000 inspect {'
			echo '  block content /never in these datagrams/'
			echo '}'
		else
			echo 'pass from lan to dmz service udp port 9000'
		fi
	} > "$LAB_TMP/$n.hvp"
}
policy plain
policy request 'block content /(?i)union\s+select/' 'block content /\.\.\/\.\.\//'
policy sni 'pass tls.sni "*.bench.example"' 'block tls.sni /./'
policy decided 'pass content /(?s)./'
policy udp
cp "$LAB_TMP/plain.hvp" "$LAB_TMP/running.hvp"
daemon_conf "$LAB_TMP/running.hvp" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
daemon_start || { echo "hvgated did not start"; tail -5 "$DAEMON_LOG"; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
use() {
	cp "$LAB_TMP/$1.hvp" "$LAB_TMP/running.hvp"
	hv reload > /dev/null || { echo "reload failed" >&2; return 1; }
	at fw conntrack -F 2>/dev/null
	return 0
}
counter() { json_get "$(hv status --json)" "fastpath.$1"; }
requests() { at client python3 tests/bench/conn_rate.py connect 10.10.2.2 8000 "$SECONDS_EACH" "$PROCS" "$@"; }
mbits() {
	at client iperf3 -c 10.10.2.2 -p 5201 -t "$SECONDS_EACH" -J 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' 2>/dev/null ||
		echo 0
}

# bench NAME POLICY UNIT CHECK CLIENT...: alternate POLICY and plain ROUNDS
# times with CLIENT (which prints one number); CHECK is a shell test run
# with $judged, $cleared (counter deltas of the inspected rounds) and $n
# (the sum of the inspected rounds' numbers times SECONDS_EACH).
bench() {
	name=$1 pol=$2 unit=$3 check=$4; shift 4
	: > "$LAB_TMP/r-$name-ours"; : > "$LAB_TMP/r-$name-base"
	judged=0 cleared=0 round=0
	while [ $round -lt "$ROUNDS" ]; do
		use "$pol" || break
		p0=$(counter packets); c0=$(counter cleared)
		"$@" >> "$LAB_TMP/r-$name-ours"
		judged=$((judged + $(counter packets) - p0)); cleared=$((cleared + $(counter cleared) - c0))
		use plain || break
		p1=$(counter packets)
		"$@" >> "$LAB_TMP/r-$name-base"
		[ "$(counter packets)" = "$p1" ] || echo "  (plain rounds of $name were queued: $p1 -> $(counter packets))"
		round=$((round + 1))
	done
	ours=$(median < "$LAB_TMP/r-$name-ours"); base=$(median < "$LAB_TMP/r-$name-base")
	n=$(awk -v s="$SECONDS_EACH" '{ t += $1 } END { print int(t * s) }' "$LAB_TMP/r-$name-ours")
	echo "  $name inspected: $(tr '\n' ' ' < "$LAB_TMP/r-$name-ours")$unit (median $ours)"
	echo "  $name plain:     $(tr '\n' ' ' < "$LAB_TMP/r-$name-base")$unit (median $base)"
	echo "  $name fast path: $judged packets judged, $cleared flows cleared, about $n units inspected"
	if [ "${ours:-0}" -le 0 ] || [ "${base:-0}" -le 0 ]; then
		echo "  $name: FAILED: nothing measured"; FAILED=1; return
	fi
	if ! eval "$check"; then
		echo "  $name: FAILED: the inspected traffic did not meet the fast path as it must ($check)"
		FAILED=1; return
	fi
	ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
	echo "bench: $name ours=${ours}$unit baseline=${base}$unit ratio=$ratio"
}

# every request's packets (handshake ACK, request, FIN...) are judged: at
# least two per completed request
bench inspect-request-rate request req/s '[ $judged -ge $((2 * n)) ]' requests --request
# every TLS flow cleared on its ClientHello
bench inspect-sni-flows sni flows/s '[ $cleared -ge $((n * 9 / 10)) ]' requests --tls=www.bench.example
# the iperf3 control and data connections cleared at their first data, and
# few packets judged after that (the flow runs in the kernel)
bench inspect-decided-throughput decided Mbit/s '[ $cleared -ge 2 ] && [ $judged -lt 2000 ]' mbits
[ "$(counter blocked)" = 0 ] || { echo "benign traffic was blocked"; FAILED=1; }
daemon_stop

# --- inspect-udp-pps: hvgated's workers, then the accept loop, on one ruleset
pps() {
	at server timeout $((SECONDS_EACH + 30)) python3 tests/bench/udp_pps.py recv 9000 "$SECONDS_EACH" > "$LAB_TMP/pps" &
	rp=$!
	wait_for 5 sh -c "ip netns exec $LAB-server ss -lun | grep -q ':9000 '"
	at client python3 tests/bench/udp_pps.py send 10.10.2.2 9000 $((SECONDS_EACH + 1)) 2
	wait $rp
	cat "$LAB_TMP/pps"
}
if cc -O2 -o "$LAB_TMP/nfq_accept" tests/bench/nfq_accept.c \
	$(pkg-config --cflags --libs libnetfilter_queue libmnl) 2> "$LAB_TMP/cc.log"; then
	cp "$LAB_TMP/udp.hvp" "$LAB_TMP/running.hvp"
	daemon_conf "$LAB_TMP/running.hvp" 'fastpath: { enabled = true; queue = 100; workers = 2; fail_closed = true; };'
	: > "$LAB_TMP/r-udp-ours"; : > "$LAB_TMP/r-udp-base"
	# the daemon starts with its last committed revision: reload the file
	if daemon_start && use udp; then
		p0=$(counter packets)
		for r in $(seq 1 "$ROUNDS"); do pps >> "$LAB_TMP/r-udp-ours"; done
		judged=$(($(counter packets) - p0))
		daemon_stop # on_stop keep: the ruleset stays, its queues without bypass
	else
		echo "  inspect-udp-pps: hvgated did not start: $(tail -3 "$DAEMON_LOG")"
	fi
	accepted=0
	for r in $(seq 1 "$ROUNDS"); do
		# ip netns exec execs the loop: $! is the loop itself
		ip netns exec "$LAB-fw" "$LAB_TMP/nfq_accept" 100 101 102 103 > "$LAB_TMP/acc" 2> "$LAB_TMP/acc.err" &
		ap=$!
		wait_for 5 grep -qs ready "$LAB_TMP/acc.err"
		pps >> "$LAB_TMP/r-udp-base"
		kill -TERM $ap; wait $ap
		a=$(cat "$LAB_TMP/acc" 2>/dev/null)
		accepted=$((accepted + ${a:-0}))
	done
	ours=$(median < "$LAB_TMP/r-udp-ours"); base=$(median < "$LAB_TMP/r-udp-base")
	n_ours=$(awk -v s="$SECONDS_EACH" '{ t += $1 } END { print int(t * s) }' "$LAB_TMP/r-udp-ours")
	n_base=$(awk -v s="$SECONDS_EACH" '{ t += $1 } END { print int(t * s) }' "$LAB_TMP/r-udp-base")
	echo "  inspect-udp-pps hvgated:     $(tr '\n' ' ' < "$LAB_TMP/r-udp-ours")datagrams/s (median $ours), $judged judged for about $n_ours received"
	echo "  inspect-udp-pps accept loop: $(tr '\n' ' ' < "$LAB_TMP/r-udp-base")datagrams/s (median $base), $accepted accepted for about $n_base received"
	if [ "${ours:-0}" -le 0 ] || [ "${base:-0}" -le 0 ]; then
		echo "  inspect-udp-pps: FAILED: nothing measured"; FAILED=1
	elif [ "${judged:-0}" -lt "$n_ours" ] || [ "$accepted" -lt "$n_base" ]; then
		echo "  inspect-udp-pps: FAILED: datagrams arrived that the queues did not take"; FAILED=1
	else
		ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
		echo "bench: inspect-udp-pps ours=${ours}pkt/s baseline=${base}pkt/s ratio=$ratio"
	fi
else
	echo "  inspect-udp-pps: FAILED: the accept loop does not build: $(head -3 "$LAB_TMP/cc.log")"; FAILED=1
fi
exit $FAILED
