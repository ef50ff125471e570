#!/bin/sh
# tenants-200-vs-2: packet rate of 64-byte UDP from tenant a's host through
# hvgate (ct zone, anti-spoofing, marks, policy routing, isolation check,
# masquerade) to the uplink, under a policy with 2 tenants and one with 200
# (one segment each), measured alternately in the same lab (median of
# ROUNDS). The goal is ratio = rate(200)/rate(2) >= 0.9: the per-packet
# cost must not grow with the number of tenants. (`at` of tests/lib/netns.sh
# sets $r, hence the loop variable $round.)
# masq-conn-rate: new TCP connections per second through hvgate's masquerade
# (200 tenants) against a one-rule plain nft masquerade in the same lab.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
SECS=${BENCH_SECONDS:-4}
ROUNDS=${BENCH_ROUNDS:-3}

# gen N: N-2 tenants on interfaces that do not exist here (their maps,
# chains, routes and fwmark rules are there all the same), then tenants a
# and b of the lab, last: the kernel walks the fwmark rules in order, so the
# last tenants are the worst case.
gen() {
	printf 'zone uplink { interface "up0" }\n'
	i=3
	while [ $i -le "$1" ]; do
		printf 'tenant t%d {\n  segment lan { interface "tx%d" address { 10.0.1.0/24, 10.%d.%d.0/24 } }\n' \
			$i $i $((100 + i / 256)) $((i % 256))
		printf '  pass from lan to uplink\n  nat masquerade out via uplink\n}\n'
		i=$((i + 1))
	done
	for t in a b; do
		printf 'tenant %s {\n  segment lan { interface "t%s0" address 10.0.1.0/24 }\n' $t $t
		printf '  pass from lan to uplink\n  nat masquerade out via uplink\n}\n'
	done
}

lab_tenants_up || { echo "lab failed"; exit 1; }
gen 2 > "$LAB_TMP/t2.hvp"
gen "${BENCH_TENANTS:-200}" > "$LAB_TMP/t200.hvp"
printf 'zone uplink { interface "up0" }\npass from uplink to uplink\n' > "$LAB_TMP/plain.hvp"
"$HVGATE" check "$LAB_TMP/t200.hvp" > /dev/null || { echo "200-tenant policy does not check"; exit 1; }

rate() { # received packets per second of one iperf3 UDP run, tenant a -> internet
	at inet iperf3 -s -1 -p 5201 > /dev/null 2>&1 &
	server=$!
	sleep 0.3
	at ha iperf3 -c 203.0.113.2 -p 5201 -u -l 64 -b 0 -t "$SECS" --json 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print(int((d["packets"]-d["lost_packets"])/d["seconds"]))' 2>/dev/null || echo 0
	wait "$server"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
apply() { "$HVGATE" apply "$1" --netns "$LAB-fw" > "$LAB_TMP/apply.out" 2>&1 || { cat "$LAB_TMP/apply.out"; echo "apply $1 failed"; exit 1; }; }

: > "$LAB_TMP/r2"; : > "$LAB_TMP/r200"
round=0
while [ $round -lt "$ROUNDS" ]; do
	apply "$LAB_TMP/t2.hvp"; rate >> "$LAB_TMP/r2"
	apply "$LAB_TMP/t200.hvp"; rate >> "$LAB_TMP/r200"
	round=$((round + 1))
done
small=$(median < "$LAB_TMP/r2"); large=$(median < "$LAB_TMP/r200")
echo "  2 tenants:   $(tr '\n' ' ' < "$LAB_TMP/r2") pkt/s (median $small)"
echo "  200 tenants: $(tr '\n' ' ' < "$LAB_TMP/r200") pkt/s (median $large)"
echo "  200-tenant ruleset: $(at fw nft list table inet hvgate | grep -c 'chain ') chains, $(sed -n 's/^applied: //p' "$LAB_TMP/apply.out")"
ratio=$(awk -v a="$large" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
echo "bench: tenants-200-vs-2 ours=${large}pps baseline=${small}pps ratio=$ratio"

# --- new connections per second through masquerade -------------------------------
bg inet python3 tests/bench/conn_rate.py serve 8000
wait_for 5 sh -c "ip netns exec $LAB-inet ss -ltn | grep -q ':8000 '"
conn() { at ha python3 tests/bench/conn_rate.py connect 203.0.113.2 8000 "$SECS" 2 2>/dev/null || echo 0; }
: > "$LAB_TMP/c-ours"; : > "$LAB_TMP/c-base"
round=0
while [ $round -lt "$ROUNDS" ]; do
	# hvgate, 200 tenants
	apply "$LAB_TMP/t200.hvp"
	at fw conntrack -F 2>/dev/null
	conn >> "$LAB_TMP/c-ours"
	# baseline: no hvgate, one masquerade rule; tenant b's copy of the
	# network is taken down so the main table alone routes the replies
	apply "$LAB_TMP/plain.hvp" # removes hvgate's routes
	at fw nft delete table inet hvgate
	at fw ip addr del 10.0.1.1/24 dev tb0
	at fw nft -f - <<'NFT'
table ip baseline {
	chain post {
		type nat hook postrouting priority 100; policy accept;
		oifname "up0" masquerade
	}
}
NFT
	at fw conntrack -F 2>/dev/null
	conn >> "$LAB_TMP/c-base"
	at fw nft delete table ip baseline
	at fw ip addr add 10.0.1.1/24 dev tb0
	round=$((round + 1))
done
ours=$(median < "$LAB_TMP/c-ours"); base=$(median < "$LAB_TMP/c-base")
echo "  hvgate, 200 tenants: $(tr '\n' ' ' < "$LAB_TMP/c-ours") conn/s (median $ours)"
echo "  plain nft masquerade: $(tr '\n' ' ' < "$LAB_TMP/c-base") conn/s (median $base)"
ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
echo "bench: masq-conn-rate ours=${ours}conn/s baseline=${base}conn/s ratio=$ratio"
