#!/bin/sh
# explain and replay on the 10,000-rule benchmark policy (tests/bench/gen_policy.py),
# against the time `hvgate check` takes to compile the same policy (the
# baseline the issue names). Prints
#   bench: explain-10k ours=SECONDS baseline=SECONDS ratio=baseline/ours
#   bench: replay-10k ours=PACKETS/S baseline=PACKETS/S ratio=ours/baseline
# where the replay's baseline is the rate at which compiling alone would
# "process" the same packets (packets / compile time). No root.
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
now() { date +%s.%N; }
t0=$(now); "$BUILD/hvgate" check "$tmp/big.hvp" > /dev/null || exit 1; t1=$(now)
"$BUILD/hvgate" explain "$tmp/big.hvp" udp 10.200.0.1:1024 -\> 10.1.0.10:5201 in lan0 out dmz0 > /dev/null || exit 1
t2=$(now)
"$BUILD/hvgate" replay "$tmp/big.hvp" "$tmp/cap.pcap" --iif-map "$tmp/map" > "$tmp/out" || exit 1
t3=$(now)
tail -1 "$tmp/out" | sed 's/^/  /'
awk -v c0="$t0" -v c1="$t1" -v e="$t2" -v r="$t3" -v n="$N" 'BEGIN {
	check = c1 - c0; explain = e - c1; replay = r - e
	printf "bench: explain-10k ours=%.3f baseline=%.3f ratio=%.2f\n", explain, check, check / explain
	# the replay includes loading the policy once: count only what is beyond it
	per = replay - check; if (per <= 0) per = 0.001
	printf "bench: replay-10k ours=%d baseline=%d ratio=%.2f\n", n / per, n / check, check / per
}'
