#!/bin/sh
# What the fast path's workers spend, two builds side by side: CPU time
# (user + system) of the hvgated process per judged packet, for 64-byte UDP
# datagrams through an inspected rule (tests/bench/udp_pps.py: a new flow
# every 8, each judged) and for requests over new TCP connections through
# an inspected rule that decides nothing (tests/bench/conn_rate.py). The
# builds alternate, BENCH_ROUNDS (3) rounds each, in one lab; each round
# runs its own daemon. Prints one line per round and the medians.
#
#   fastpath_cpu.sh BUILD_DIR_A BUILD_DIR_B
#
# Not part of `make bench`: a tool for comparing a change (docs/fastpath.md,
# "Measured"). Ratios between the builds are what counts on a shared
# machine; the load average is printed with each round.
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] && [ -x "$1/hvgated" ] && [ -x "$2/hvgated" ] ||
	{ echo "usage: fastpath_cpu.sh BUILD_DIR_A BUILD_DIR_B" >&2; exit 2; }
A=$1 B=$2
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_EACH=${BENCH_SECONDS:-4}

lab3_up || { echo "lab failed"; exit 1; }
bg server python3 tests/bench/conn_rate.py serve 8000 --answer
bg server python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("0.0.0.0", 9000))
while True: s.recv(64)'
wait_for 5 sh -c "ip netns exec $LAB-server ss -ltn | grep -q ':8000 '" || { echo "server failed"; exit 1; }
{
	echo 'zone lan { interface "lan0" }'
	echo 'zone dmz { interface "dmz0" }'
	echo 'pass from lan to dmz service tcp port 8000 inspect {'
	echo '  block content /(?i)union\s+select/'
	echo '}'
	echo 'pass from lan to dmz service udp port 9000 inspect {'
	echo '  block content /never in these datagrams/'
	echo '}'
} > "$LAB_TMP/cpu.hvp"
daemon_conf "$LAB_TMP/cpu.hvp" 'fastpath: { enabled = true; queue = 100; workers = 2; };'

ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
counter() { json_get "$(hv status --json)" "fastpath.$1"; }
# measure LOAD: prints "CPU-US-PER-PACKET PACKETS" for one load
measure() {
	t0=$(ticks); p0=$(counter packets)
	"$@" > /dev/null
	sleep 0.5 # counters are published after each round of a worker
	t1=$(ticks); p1=$(counter packets)
	awk -v t="$((t1 - t0))" -v p="$((p1 - p0))" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f %d\n", p ? t * 1e6 / hz / p : 0, p }'
}
udp() { at client python3 tests/bench/udp_pps.py send 10.10.2.2 9000 "$SECONDS_EACH" 2; }
tcp() { at client python3 tests/bench/conn_rate.py connect 10.10.2.2 8000 "$SECONDS_EACH" 4 --request; }

: > "$LAB_TMP/cpu"
round=0
while [ $round -lt "$ROUNDS" ]; do
	for build in A B; do
		eval "dir=\$$build"
		cp "$dir/hvgated" "$LAB_TMP/hvgated.bin"
		daemon_start || { echo "hvgated ($build) did not start: $(tail -3 "$DAEMON_LOG")"; exit 1; }
		at fw conntrack -F 2>/dev/null
		u=$(measure udp); t=$(measure tcp)
		daemon_stop
		echo "$build udp ${u% *} tcp ${t% *}" >> "$LAB_TMP/cpu"
		echo "  round $round $build: udp ${u% *} us/packet (${u#* } judged), tcp ${t% *} us/packet (${t#* } judged), load $(cut -d' ' -f1-3 /proc/loadavg)"
	done
	round=$((round + 1))
done
for build in A B; do
	awk -v b="$build" '$1 == b { print $3 }' "$LAB_TMP/cpu" | sort -n > "$LAB_TMP/u"
	awk -v b="$build" '$1 == b { print $5 }' "$LAB_TMP/cpu" | sort -n > "$LAB_TMP/t"
	echo "cpu: $build udp median $(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$LAB_TMP/u") us/packet, tcp median $(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$LAB_TMP/t") us/packet"
done
