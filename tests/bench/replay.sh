#!/bin/sh
# explain and replay on the 10,000-rule benchmark policy (tests/bench/gen_policy.py),
# against the time `hvgate check` takes to compile the same policy (the
# baseline the issue names). Prints
#   bench: explain-10k ours=SECONDS baseline=SECONDS ratio=baseline/ours
#   bench: replay-10k ours=PACKETS/S baseline=PACKETS/S ratio=ours/baseline
# where the replay's rate counts the packets beyond the first (the replay of
# the whole capture minus that of one packet, which is the load) and its
# baseline is the rate at which compiling alone would "process" the same
# packets (packets / compile time). Times are medians of BENCH_REPLAY_RUNS
# (5) runs; the spread is printed. No root.
cd "$(dirname "$0")/../.." || exit 2
BUILD=${HVGATE_BUILD:-$PWD/build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
N=${BENCH_REPLAY_PACKETS:-20000}
python3 tests/bench/gen_policy.py --rules 10000 --addresses 100000 --lists 100 > "$tmp/big.hvp" || exit 2
"$PY" - "$tmp/cap.pcap" "$N" <<'PYEOF' || exit 2
import sys
from scapy.all import IP, UDP, Ether, Raw, wrpcap
n = int(sys.argv[2])
wrpcap(sys.argv[1], [Ether() / IP(src="10.200.%d.%d" % (i // 250 % 250, i % 250 + 1), dst="10.1.0.10") /
                     UDP(sport=1024 + i % 60000, dport=5201) / Raw(b"x") for i in range(n)])
PYEOF
printf '* lan0\nroute any dmz0\n' > "$tmp/map"
"$PY" - "$tmp/one.pcap" <<'PYEOF' || exit 2
import sys
from scapy.all import IP, UDP, Ether, Raw, wrpcap
wrpcap(sys.argv[1], [Ether() / IP(src="10.200.0.1", dst="10.1.0.10") / UDP(sport=1024, dport=5201) / Raw(b"x")])
PYEOF
now() { date +%s.%N; }
# seconds one command takes, the median of R runs (the machine may be
# shared: the median, with the fastest and slowest printed for the spread)
R=${BENCH_REPLAY_RUNS:-5}
timed() {
	name=$1; shift
	: > "$tmp/times"
	i=0
	while [ $i -lt "$R" ]; do
		t0=$(now); "$@" > /dev/null 2> "$tmp/cmd.err" || { cat "$tmp/cmd.err" >&2; exit 1; }; t1=$(now)
		echo "$t0 $t1" | awk '{ printf "%.4f\n", $2 - $1 }' >> "$tmp/times"
		i=$((i + 1))
	done
	sort -n "$tmp/times" > "$tmp/sorted"
	med=$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$tmp/sorted")
	echo "  $name: median $med s of $R runs (min $(head -1 "$tmp/sorted"), max $(tail -1 "$tmp/sorted"))" >&2
	echo "$med"
}
HV=$BUILD/hvgate
check=$(timed "check (compile)" "$HV" check "$tmp/big.hvp")
explain=$(timed explain "$HV" explain "$tmp/big.hvp" udp 10.200.0.1:1024 -\> 10.1.0.10:5201 in lan0 out dmz0)
one=$(timed "replay of 1 packet (the load)" "$HV" replay "$tmp/big.hvp" "$tmp/one.pcap" --iif-map "$tmp/map")
replay=$(timed "replay of $N packets" "$HV" replay "$tmp/big.hvp" "$tmp/cap.pcap" --iif-map "$tmp/map")
"$HV" replay "$tmp/big.hvp" "$tmp/cap.pcap" --iif-map "$tmp/map" | tail -1 | sed 's/^/  /'
awk -v check="$check" -v explain="$explain" -v one="$one" -v replay="$replay" -v n="$N" 'BEGIN {
	printf "  explain goal (issue 12): under 0.050 s: %s\n", explain < 0.05 ? "met" : "NOT met"
	printf "bench: explain-10k ours=%.3f baseline=%.3f ratio=%.2f\n", explain, check, check / explain
	# packets beyond the first: what the replay adds to loading the policy
	per = replay - one; if (per <= 0) per = 0.001
	printf "bench: replay-10k ours=%d baseline=%d ratio=%.2f\n", (n - 1) / per, n / check, check / per
}'
