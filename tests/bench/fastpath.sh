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
#     rule, hvgated's workers against the baseline: the smallest per-packet
#     NFQUEUE accept loop (tests/bench/nfq_accept.c, built here) on the same
#     queues of the same ruleset, one round of each in turn. Both fail
#     closed, so that nothing reaches the server without passing the queue.
#     The sender is tests/bench/udp_blast.c (built here: raw socket,
#     sendmmsg, BENCH_SENDERS processes, 2): a new flow (source port, then
#     source address) every 8 datagrams and no tuple twice in a round, so
#     that no flow reaches the fast path's window of 16 and every datagram
#     is judged (checked: no flow cleared at the window's end or for want
#     of room in the flow table, `window_done` and `table_full`). What arrives is counted by an nft counter in the server
#     namespace's prerouting hook (before conntrack), which drops the
#     datagrams there: no receiving program, whose speed would be measured
#     instead. Each round prints what the sender handed to the kernel, what
#     it refused (ENOBUFS) and the CPU time it was charged, what arrived,
#     what the queues dropped (full, or their reader's socket full), what
#     the queue judged or accepted, the CPU time of the queue's reader
#     (hvgated, the accept loop) and the share of the machine's CPU that was
#     busy (and in softirq) while it sent. A round whose queues dropped
#     nothing was bounded by its sender, not by the queue's reader.
#     BENCH_SENDER_NICE (0) runs the sender at that nice level;
#     BENCH_UDP_WORKERS (2) sets hvgated's workers for this benchmark.
#
# BENCH_ONLY=NAME runs only the benchmark NAME (e.g. inspect-udp-pps).
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
SENDERS=${BENCH_SENDERS:-2}
SENDER_NICE=${BENCH_SENDER_NICE:-0}
UDP_WORKERS=${BENCH_UDP_WORKERS:-2}
ONLY=${BENCH_ONLY:-}
FAILED=0
# wanted NAME: NAME is to be run (BENCH_ONLY unset, or NAME)
wanted() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

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
	wanted "$name" || return 0
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

# --- inspect-udp-pps: hvgated's workers and the accept loop in turn, on one
# ruleset, with the same sender and the same count of what arrived
wanted inspect-udp-pps || exit $FAILED
# the server's count: prerouting, before conntrack, and dropped there
at server nft -f - <<'NFT' || { echo "  inspect-udp-pps: FAILED: no counter in the server"; exit 1; }
table ip hvgate_bench {
	counter udp9000 { }
	chain prerouting {
		type filter hook prerouting priority -400; policy accept;
		udp dport 9000 counter name udp9000 drop
	}
}
NFT
arrived() { at server nft list counter ip hvgate_bench udp9000 | awk '$1 == "packets" { print $2 }'; }
# cpu: "TOTAL IDLE SOFTIRQ" jiffies of all CPUs so far
cpu() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $8 }' /proc/stat; }
# queue_drops: what the queues bound now dropped, full (queue_dropped) and
# for a full socket (user_dropped), from the kernel's table of them
queue_drops() { at fw awk '{ q += $6; u += $7 } END { printf "%d + %d", q, u }' /proc/net/netfilter/nfnetlink_queue; }
# ticks PID: CPU seconds (user and system) of process PID so far
ticks() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# pps WHO PID: one round of sending while PID (hvgated, the accept loop)
# takes the queues; appends datagrams/s arrived to r-udp-WHO, prints the
# round's line, leaves the count that arrived in $got
pps() {
	at fw conntrack -F 2>/dev/null
	a0=$(arrived); c0=$(cpu); t0=$(ticks "$2")
	s=$(at client nice -n "$SENDER_NICE" "$LAB_TMP/udp_blast" 10.10.2.2 9000 "$SECONDS_EACH" "$SENDERS" 10.10.1.10 240) ||
		echo "  inspect-udp-pps: the sender failed: $s"
	c1=$(cpu); t1=$(ticks "$2")
	sleep 1 # what is still queued arrives
	got=$(($(arrived) - a0)) drops=$(queue_drops)
	echo "$got" | awk -v s="$SECONDS_EACH" '{ print int($1 / s) }' >> "$LAB_TMP/r-udp-$1"
	lost=$(echo "$s $got $drops" | awk '{ print $2 - $7 - $8 - $10 }')
	[ "$lost" = 0 ] || echo "  (inspect-udp-pps: $lost datagrams sent neither arrived nor were dropped by a queue)"
	busy=$(echo "$c0 $c1" | awk '{ t = $4 - $1; printf "%d%% busy, %d%% softirq", 100 * (t - ($5 - $2)) / t, 100 * ($6 - $3) / t }')
	echo "  inspect-udp-pps round $udp_round $1: $s, $got arrived ($((got / SECONDS_EACH))/s), $drops dropped by the queues (full + socket), CPU $busy, the queue's reader $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }') s of CPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
}
flags=$(pkg-config --cflags --libs libnetfilter_queue libmnl)
if cc -O2 -o "$LAB_TMP/nfq_accept" tests/bench/nfq_accept.c $flags 2> "$LAB_TMP/cc.log" &&
	cc -O2 -o "$LAB_TMP/udp_blast" tests/bench/udp_blast.c 2>> "$LAB_TMP/cc.log"; then
	cp "$LAB_TMP/udp.hvp" "$LAB_TMP/running.hvp"
	daemon_conf "$LAB_TMP/running.hvp" "fastpath: { enabled = true; queue = 100; workers = $UDP_WORKERS; fail_closed = true; };"
	: > "$LAB_TMP/r-udp-ours"; : > "$LAB_TMP/r-udp-base"
	judged=0 n_ours=0 accepted=0 n_base=0 unjudged=0
	for udp_round in $(seq 1 "$ROUNDS"); do
		# the daemon starts with its last committed revision: reload the file
		if daemon_start && use udp; then
			p0=$(counter packets); f0=$(counter flows); w0=$(counter window_done); full0=$(counter table_full)
			pps ours "$DAEMON_PID"
			sleep 0.5 # counters are published after each round of a worker
			j=$(($(counter packets) - p0)) w=$(($(counter window_done) - w0)) t=$(($(counter table_full) - full0))
			echo "    hvgated judged $j in $(($(counter flows) - f0)) flows; $w cleared at the window's end, $t for want of room"
			judged=$((judged + j)) n_ours=$((n_ours + got)) unjudged=$((unjudged + w + t))
			daemon_stop # on_stop keep: the ruleset stays, its queues without bypass
		else
			echo "  inspect-udp-pps: hvgated did not start: $(tail -3 "$DAEMON_LOG")"
			daemon_stop; break
		fi
		# ip netns exec execs the loop: $! is the loop itself
		ip netns exec "$LAB-fw" "$LAB_TMP/nfq_accept" 100 101 102 103 > "$LAB_TMP/acc" 2> "$LAB_TMP/acc.err" &
		ap=$!
		wait_for 5 grep -qs ready "$LAB_TMP/acc.err"
		pps base "$ap"
		kill -TERM $ap; wait $ap
		a=$(cat "$LAB_TMP/acc" 2>/dev/null)
		echo "    accept loop accepted ${a:-0}"
		accepted=$((accepted + ${a:-0})) n_base=$((n_base + got))
	done
	ours=$(median < "$LAB_TMP/r-udp-ours"); base=$(median < "$LAB_TMP/r-udp-base")
	echo "  inspect-udp-pps hvgated:     $(tr '\n' ' ' < "$LAB_TMP/r-udp-ours")datagrams/s (median $ours), $judged judged, $n_ours arrived"
	echo "  inspect-udp-pps accept loop: $(tr '\n' ' ' < "$LAB_TMP/r-udp-base")datagrams/s (median $base), $accepted accepted, $n_base arrived"
	if [ "${ours:-0}" -le 0 ] || [ "${base:-0}" -le 0 ]; then
		echo "  inspect-udp-pps: FAILED: nothing measured"; FAILED=1
	elif [ "$judged" -lt "$n_ours" ] || [ "$accepted" -lt "$n_base" ]; then
		echo "  inspect-udp-pps: FAILED: datagrams arrived that the queues did not take"; FAILED=1
	elif [ "$unjudged" -gt 0 ]; then
		# a flow cleared (window, full table) lets its datagrams by unjudged,
		# though a burst may still queue them and count them judged
		echo "  inspect-udp-pps: FAILED: $unjudged flows were cleared, not judged to their end"; FAILED=1
	else
		ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
		echo "bench: inspect-udp-pps ours=${ours}pkt/s baseline=${base}pkt/s ratio=$ratio"
	fi
else
	echo "  inspect-udp-pps: FAILED: a tool does not build: $(head -3 "$LAB_TMP/cc.log")"; FAILED=1
fi
exit $FAILED
