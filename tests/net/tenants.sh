#!/bin/sh
# Two tenants with the same IPv4 network behind one hvgate (issue 3):
# masquerade with replies to the right tenant, isolation (nmap finds nothing
# open across tenants; the inter-tenant drop counter moves), port forwards
# and hairpin, anti-spoofing v4/v6, the policy routing hvgate installs and
# removes, and the compiler refusing a leaking policy with its location.
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
POLICY=${TENANTS_POLICY:-conf/policies/examples/tenants-lab.hvp}

# counter CHAIN COMMENT [TEXT]: packets counted by the rules with that
# comment (and TEXT in the rule, if given).
counter() {
	at fw nft list chain inet hvgate "$1" 2>/dev/null |
		awk -v c="\"$2\"" -v t="${3:-}" 'index($0, c) && index($0, t) { for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

lab_tenants_up || { fail lab "could not build the lab"; exit 1; }
lab_addr hb eth0 10.0.2.2/24 # an IPv4 network only tenant b has
expect apply "$HVGATE" apply "$POLICY" --netns "$LAB-fw"
expect routing-rules sh -c "ip -n $LAB-fw rule | grep -q 'fwmark 0x10000/0xffff0000 lookup 1001' &&
	ip -n $LAB-fw rule | grep -q 'fwmark 0x20000/0xffff0000 lookup 1002' &&
	ip -n $LAB-fw -6 rule | grep -q 'fwmark 0x20000/0xffff0000 lookup 1002'"
expect routing-tables sh -c "ip -n $LAB-fw route show table 1001 | grep -q '10.0.1.0/24 dev ta0' &&
	ip -n $LAB-fw route show table 1002 | grep -q '10.0.1.0/24 dev tb0' &&
	ip -n $LAB-fw -6 route show table 1002 | grep -q 'fd00:b::/64 dev tb0'"

# One rtnetlink socket per apply: flush, rules, routes and the interface
# list all go over it (if_nameindex(3) used to open a second one).
strace -f -qq -e trace=socket -o "$LAB_TMP/sockets" "$HVGATE" apply "$POLICY" --netns "$LAB-fw" > /dev/null 2>&1
n=$(grep -c 'NETLINK_ROUTE' "$LAB_TMP/sockets")
[ "$n" = 1 ] && ip -n "$LAB-fw" route show table 1002 | grep -q '10.0.1.0/24 dev tb0' &&
	pass "one-rtnetlink-socket-per-apply($n)" || fail one-rtnetlink-socket-per-apply "$n sockets: $(grep -c . "$LAB_TMP/sockets") lines"

# --- the appliance answers each tenant on its own link (same address on both) ---
expect fw-answers-a ping_ok ha 10.0.1.1
expect fw-answers-b ping_ok hb 10.0.1.1

# --- masquerade: both tenants' 10.0.1.2 talk to one server at once ---------
at inet timeout 20 tcpdump -Z root -U -n -i eth0 -w "$LAB_TMP/uplink.pcap" 'tcp port 7 or udp port 7' >"$LAB_TMP/tcpdump.err" 2>&1 &
tcpdump_pid=$!
LAB_PIDS="$LAB_PIDS $tcpdump_pid"
# A cold tcpdump can take over a second to open the interface.
wait_for 10 grep -q 'listening on' "$LAB_TMP/tcpdump.err"
for t in a b; do
	(echo "hello-from-$t"; sleep 2) | at h$t timeout 6 socat -T 4 -t 4 - TCP:203.0.113.2:7,sourceport=40000,reuseaddr >"$LAB_TMP/masq.$t" 2>&1 &
	eval "pid_$t=\$!"
done
# both connections are up within a moment (bounded: the clients stay 2 s)
both_zones() {
	at fw conntrack -L -p tcp --dport 7 2>/dev/null >"$LAB_TMP/ct"
	grep -q 'zone-orig=1' "$LAB_TMP/ct" && grep -q 'zone-orig=2' "$LAB_TMP/ct"
}
wait_for 2 both_zones
wait "$pid_a" "$pid_b"
for t in a b; do
	r=$(head -1 "$LAB_TMP/masq.$t")
	[ "$r" = "hello-from-$t" ] && pass "masq-own-answer-$t" || fail "masq-own-answer-$t" "got '$r'"
done
[ "$(grep -c 'sport=40000 dport=7' "$LAB_TMP/ct")" = 2 ] && grep -q 'zone-orig=1' "$LAB_TMP/ct" &&
	grep -q 'zone-orig=2' "$LAB_TMP/ct" && pass masq-two-zones || fail masq-two-zones "$(cat "$LAB_TMP/ct")"
r=$(echo udp-a | at ha timeout 3 socat -T 2 -t 2 - UDP:203.0.113.2:7 2>/dev/null)
[ "$r" = udp-a ] && pass masq-udp-a || fail masq-udp-a "got '$r'"
kill "$tcpdump_pid" 2>/dev/null; sleep 1
at inet tcpdump -Z root -n -r "$LAB_TMP/uplink.pcap" 2>/dev/null >"$LAB_TMP/uplink.txt"
if [ -s "$LAB_TMP/uplink.txt" ] && ! grep -q '10\.0\.1\.' "$LAB_TMP/uplink.txt" &&
	grep -q '203.0.113.1' "$LAB_TMP/uplink.txt"; then
	pass uplink-sees-only-public
else
	fail uplink-sees-only-public "$(grep -m3 '10\.0\.1\.' "$LAB_TMP/uplink.txt")"
fi

# --- port forwards and hairpin -------------------------------------------------
r=$(fetch inet 203.0.113.1 8080); [ "$r" = tenant-a ] && pass forward-a || fail forward-a "got '$r'"
r=$(fetch inet 203.0.113.1 8081); [ "$r" = tenant-b ] && pass forward-b || fail forward-b "got '$r'"
r=$(fetch ha 203.0.113.1 8080); [ "$r" = tenant-a ] && pass hairpin-a || fail hairpin-a "got '$r'"
r=$(fetch hb 203.0.113.1 8081); [ "$r" = tenant-b ] && pass hairpin-b || fail hairpin-b "got '$r'"
r=$(fetch hb 203.0.113.1 8080); [ "$r" != tenant-a ] && pass no-hairpin-into-other-tenant ||
	fail no-hairpin-into-other-tenant "tenant b reached tenant a's forward from inside"

# --- isolation: nmap from a against b's addresses ------------------------------
before=$(counter tenant_forward builtin:inter-tenant)
r=$(at hb nmap -6 -n -Pn -p 80 fd00:b::2 2>/dev/null | grep -c '^80/tcp *open')
[ "$r" = 1 ] && pass nmap-sees-open-port-locally || fail nmap-sees-open-port-locally "nmap found no open port at all"
at ha timeout 120 nmap -6 -n -Pn -sS -p- --max-retries 0 --min-rate 4000 --host-timeout 100s \
	fd00:b::2 >"$LAB_TMP/nmap-tcp" 2>&1
if grep -q 'open' "$LAB_TMP/nmap-tcp"; then fail nmap-tcp-across "$(grep open "$LAB_TMP/nmap-tcp" | head -3)";
elif grep -q 'Nmap done: 1 IP' "$LAB_TMP/nmap-tcp"; then pass nmap-tcp-across-nothing-open;
else fail nmap-tcp-across "$(tail -2 "$LAB_TMP/nmap-tcp")"; fi
at ha timeout 60 nmap -6 -n -Pn -sU -p 7,53,67,69,123,161,500,514,1900,4500,5353,51820 --max-retries 0 \
	--host-timeout 40s fd00:b::2 >"$LAB_TMP/nmap-udp" 2>&1
if grep -qE '/udp +open ' "$LAB_TMP/nmap-udp"; then fail nmap-udp-across "$(grep open "$LAB_TMP/nmap-udp" | head -3)";
elif grep -q 'Nmap done: 1 IP' "$LAB_TMP/nmap-udp"; then pass nmap-udp-across-nothing-open;
else fail nmap-udp-across "$(tail -2 "$LAB_TMP/nmap-udp")"; fi
at ha timeout 120 nmap -n -Pn -sS -p- --max-retries 0 --min-rate 4000 --host-timeout 100s \
	10.0.2.2 >"$LAB_TMP/nmap-tcp4" 2>&1
if grep -q 'open' "$LAB_TMP/nmap-tcp4"; then fail nmap-tcp4-across "$(grep open "$LAB_TMP/nmap-tcp4" | head -3)";
elif grep -q 'Nmap done: 1 IP' "$LAB_TMP/nmap-tcp4"; then pass nmap-tcp4-across-nothing-open;
else fail nmap-tcp4-across "$(tail -2 "$LAB_TMP/nmap-tcp4")"; fi
r=$(at hb nmap -n -Pn -p 80 10.0.2.2 2>/dev/null | grep -c '^80/tcp *open')
[ "$r" = 1 ] && pass nmap-tcp4-port-open-at-b || fail nmap-tcp4-port-open-at-b "10.0.2.2:80 is not open even locally"
expect_not tcp-across-v6 tcp_ok ha fd00:b::2 80
expect_not ping-across-v6 ping_ok hb fd00:a::2
after=$(counter tenant_forward builtin:inter-tenant)
[ "$after" -gt "$((before + 1000))" ] && pass "inter-tenant-counter-moved ($before -> $after)" ||
	fail inter-tenant-counter-moved "$before -> $after"

# --- anti-spoofing -------------------------------------------------------------
lab_addr ha eth0 10.0.9.9/32; lab_addr ha eth0 fd00:b::99/128
at inet ip route add 10.0.9.0/24 via 203.0.113.1
v4_before=$(counter seg_1 antispoof:a.lan "ip saddr"); v6_before=$(counter seg_1 antispoof:a.lan "ip6 saddr")
expect_not spoofed-v4-dropped at ha ping -c 2 -W 1 -I 10.0.9.9 203.0.113.2
expect_not spoofed-v6-dropped at ha ping -6 -c 2 -W 1 -I fd00:b::99 2001:db8:ff::2
v4_after=$(counter seg_1 antispoof:a.lan "ip saddr"); v6_after=$(counter seg_1 antispoof:a.lan "ip6 saddr")
[ "$v4_after" -ge "$((v4_before + 2))" ] && pass "antispoof-v4-counted ($v4_before -> $v4_after)" ||
	fail antispoof-v4-counted "$v4_before -> $v4_after"
[ "$v6_after" -ge "$((v6_before + 2))" ] && pass "antispoof-v6-counted ($v6_before -> $v6_after)" ||
	fail antispoof-v6-counted "$v6_before -> $v6_after"
expect own-address-still-passes ping_ok ha 203.0.113.2

# --- the compiler refuses a leak, with the rule's location -----------------------
cat >"$LAB_TMP/leak.hvp" <<'HVP'
zone uplink { interface "up0" }
tenant a { segment lan { interface "ta0" address 10.0.1.0/24 } }
tenant b {
  segment lan { interface "tb0" address 10.0.1.0/24 }
  pass from lan to any service tcp port 22
}
HVP
"$HVGATE" check "$LAB_TMP/leak.hvp" >"$LAB_TMP/leak.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'leak.hvp:5:3: error: .*tenant' "$LAB_TMP/leak.out" && pass leak-refused-with-location ||
	fail leak-refused-with-location "exit $rc: $(head -2 "$LAB_TMP/leak.out")"

# --- routing removed with the tenants --------------------------------------------
# someone else's rule and route, in hvgate's range: they must stay
at fw ip rule add fwmark 0x99 lookup 1001 pref 1001
at fw ip route add 192.0.2.0/24 dev up0 table 1001 proto static
printf 'zone uplink { interface "up0" }\npass from uplink to uplink\n' >"$LAB_TMP/plain.hvp"
expect apply-plain "$HVGATE" apply "$LAB_TMP/plain.hvp" --netns "$LAB-fw"
expect_not routing-removed sh -c "ip -n $LAB-fw rule | grep -q 'proto 211' || ip -n $LAB-fw -6 rule | grep -q 'proto 211' ||
	ip -n $LAB-fw route show table 1001 | grep -q 10.0.1.0"
expect foreign-routing-kept sh -c "ip -n $LAB-fw rule | grep -q 'fwmark 0x99 lookup 1001' &&
	ip -n $LAB-fw route show table 1001 | grep -q '192.0.2.0/24 dev up0 proto static'"
lab_done
