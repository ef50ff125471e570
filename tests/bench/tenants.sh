#!/bin/sh
# tenants-200-vs-2: packet rate of 64-byte UDP from tenant a's host through
# hvgate (ct zone, anti-spoofing, marks, policy routing, isolation check,
# masquerade, the tenant's rules) to the uplink, under a policy with 2
# tenants and one with 200 (one segment each), measured alternately in the
# same lab (median of ROUNDS). Every tenant has its own 10-30 rules of mixed
# shapes (seeded: hosts and host lists with services, networks with port
# ranges, rejects, IPv6 prefixes, ICMP), then passes `udp port 20000-20999`
# and everything else to the uplink. The flows are 64 UDP flows that are
# never answered (tests/bench/udp_flows.py): every packet is `ct state new`
# and meets the tenant's rules; the suite FAILS if the tenant's passing rule
# did not count what the receiver got. The goal is ratio =
# rate(200)/rate(2) >= 0.9: the per-packet cost must not grow with the
# number of tenants or their rules. (`at` of tests/lib/netns.sh sets $r,
# hence the loop variable $round.)
# masq-conn-rate: new TCP connections per second through hvgate's masquerade
# (200 tenants) against a one-rule plain nft masquerade in the same lab.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
SECS=${BENCH_SECONDS:-4}
ROUNDS=${BENCH_ROUNDS:-3}
FLOWS=64
PORT=20000

# gen N: N-2 tenants on interfaces that do not exist here (their maps,
# chains, routes and fwmark rules are there all the same), then tenants a
# and b of the lab, last: the kernel walks the fwmark rules in order, so the
# last tenants are the worst case.
gen() {
	python3 - "$1" <<'PY'
import random, sys
n = int(sys.argv[1])
out = ['zone uplink { interface "up0" }']
def tenant(name, iface, addrs, seed):
    rnd = random.Random(seed)
    out.append("tenant %s {" % name)
    out.append('  segment lan { interface "%s" address %s }' % (iface, addrs))
    used = set()
    for i in range(rnd.randint(10, 30)):
        k = rnd.randrange(7)
        while True:  # distinct values: no rule covers another
            v = (k, rnd.randrange(1, 250), rnd.randrange(1, 250), rnd.randrange(1000, 19000))
            if v not in used:
                used.add(v)
                break
        _, x, y, p = v
        if k == 0:
            out.append("  pass from lan to 198.51.%d.%d service tcp port %d" % (x, y, p))
        elif k == 1:
            out.append("  block from lan to { 192.0.2.%d, 198.18.%d.%d } service { tcp port %d, udp port %d }" % (x, x, y, p, p + 1))
        elif k == 2:
            out.append("  pass from lan to 198.19.%d.0/24 service tcp port %d-%d" % (x, p, p + y))
        elif k == 3:
            out.append("  reject from lan to 100.64.%d.%d service tcp port %d" % (x, y, p))
        elif k == 4:
            out.append("  pass from lan to 2001:db8:%x:%x::/64 service udp port %d" % (x, y, p))
        elif k == 5:
            out.append("  pass from lan to 100.65.%d.%d service icmp" % (x, y))
        else:
            out.append("  block from lan to 100.66.%d.0/24 service udp port %d log" % (x, p))
    out.append("  pass from lan to uplink service udp port 20000-20999")
    out.append("  pass from lan to uplink")
    out.append("  nat masquerade out via uplink")
    out.append("}")
for i in range(3, n + 1):
    tenant("t%d" % i, "tx%d" % i, "{ 10.0.1.0/24, 10.%d.%d.0/24 }" % (100 + i // 256, i % 256), i)
for t in "ab":
    tenant(t, "t%s0" % t, "10.0.1.0/24", 1000 + ord(t))
print("\n".join(out))
PY
}

lab_tenants_up || { echo "lab failed"; exit 1; }
gen 2 > "$LAB_TMP/t2.hvp"
gen "${BENCH_TENANTS:-200}" > "$LAB_TMP/t200.hvp"
printf 'zone uplink { interface "up0" }\npass from uplink to uplink\n' > "$LAB_TMP/plain.hvp"
"$HVGATE" check "$LAB_TMP/t200.hvp" > /dev/null || { echo "200-tenant policy does not check"; exit 1; }

# the receiver: counts the flows' packets in its input hook and drops them
at inet nft -f - <<'NFT'
table inet bench {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 20000-20999 counter drop
	}
}
NFT
received() { at inet nft list chain inet bench in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
# packets counted by tenant a's rule that passes the flows (all its copies)
rule_count() {
	# its kernel id (FILE:HASH#N: every tenant has the same text), as
	# explain names it
	id=$("$HVGATE" explain "$1" udp 10.0.1.2:40000 -\> 203.0.113.2:$PORT in ta0 out up0 --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["rule"]["kernel_id"])')
	at fw nft list table inet hvgate | awk -v id="$id" '
		index($0, "comment \"" id "\"") && match($0, /counter packets [0-9]+/) {
			split(substr($0, RSTART, RLENGTH), f, " "); n += f[3] }
		END { print n + 0 }'
}
rate() { # POLICY: packets per second tenant a's flows reached the internet;
	# fails loudly if the tenant's rules did not see them
	at fw conntrack -F 2> /dev/null
	before=$(received) # a rule's anonymous counter cannot be reset: a difference
	at ha python3 tests/bench/udp_flows.py 203.0.113.2 $PORT $FLOWS "$SECS" > /dev/null
	sleep 0.2
	got=$(( $(received) - before ))
	counted=$(rule_count "$1")
	if [ "$got" -le 0 ] || [ "$counted" -lt $((got * 95 / 100)) ]; then
		echo "FAIL traffic did not meet the rules of $1: received $got, tenant a's passing rule counted $counted" >&2
		exit 1
	fi
	echo $((got / SECS))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
apply() { "$HVGATE" apply "$@" --netns "$LAB-fw" > "$LAB_TMP/apply.out" 2>&1 || { cat "$LAB_TMP/apply.out"; echo "apply $1 failed"; exit 1; }; }

: > "$LAB_TMP/r2"; : > "$LAB_TMP/r200"; : > "$LAB_TMP/r200-lin"
round=0
while [ $round -lt "$ROUNDS" ]; do
	apply "$LAB_TMP/t2.hvp"; rate "$LAB_TMP/t2.hvp" >> "$LAB_TMP/r2" || exit 1
	apply "$LAB_TMP/t200.hvp"; rate "$LAB_TMP/t200.hvp" >> "$LAB_TMP/r200" || exit 1
	cp "$LAB_TMP/apply.out" "$LAB_TMP/apply200.out"
	apply "$LAB_TMP/t200.hvp" --no-optimize; rate "$LAB_TMP/t200.hvp" >> "$LAB_TMP/r200-lin" || exit 1
	round=$((round + 1))
done
small=$(median < "$LAB_TMP/r2"); large=$(median < "$LAB_TMP/r200")
echo "  2 tenants:   $(tr '\n' ' ' < "$LAB_TMP/r2") pkt/s (median $small)"
echo "  200 tenants: $(tr '\n' ' ' < "$LAB_TMP/r200") pkt/s (median $large)"
lin=$(median < "$LAB_TMP/r200-lin")
echo "  200 tenants, --no-optimize: $(tr '\n' ' ' < "$LAB_TMP/r200-lin") pkt/s (median $lin, ratio $(awk -v a="$lin" -v b="$small" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'))"
echo "  200-tenant ruleset: $(sed -n 's/^applied: //p' "$LAB_TMP/apply200.out")"
"$HVGATE" compile "$LAB_TMP/t200.hvp" --emit summary 2>/dev/null | grep -E '^  classify|^optimizer' | sed 's/^ */  /'
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
