#!/bin/sh
# NAT per tenant on the two-tenant lab (both tenants use 10.0.1.0/24):
# snat to an address pool with a port range, a UDP port-range forward with
# hairpin, a 1:1 netmap both ways; the text and netlink backends load the
# same nat chains.
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
POLICY=conf/policies/examples/tenants-nat.hvp

lab_tenants_up || { fail lab "could not build the lab"; exit 1; }
# The internet host answers with the address and port it saw ("ADDR PORT").
bg inet socat TCP-LISTEN:9,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR $SOCAT_PEERPORT'
at inet ip route add 192.0.2.0/24 via 203.0.113.1
at inet ip route add 198.51.100.0/24 via 203.0.113.1
for p in 5000 5001; do bg ha socat UDP4-LISTEN:$p,bind=10.0.1.10,fork,reuseaddr SYSTEM:"echo udp-a-$p"; done
wait_for 5 sh -c "ip netns exec $LAB-inet ss -ltn | grep -q ':9 '"
wait_for 5 sh -c "[ \$(ip netns exec $LAB-ha ss -uln | grep -c '10.0.1.10:500[01] ') = 2 ]"

expect apply "$HVGATE" apply "$POLICY" --netns "$LAB-fw"

# --- snat to a pool with a port range (tenant a) --------------------------------
ok=0; seen=""
for i in 1 2 3 4 5 6; do
	r=$(fetch ha 203.0.113.2 9)
	seen="$seen $(echo "$r" | tr ' ' :)"
	case "$r" in
	"192.0.2.1"[01]" 200"[0-9][0-9]) ok=$((ok + 1)) ;;
	esac
done
[ $ok = 6 ] && pass "snat-pool-and-ports ($seen )" || fail snat-pool-and-ports "saw:$seen"

# --- netmap 1:1 (tenant b): 10.0.1.2 <-> 198.51.100.2 ------------------------------
r=$(fetch hb 203.0.113.2 9)
case "$r" in "198.51.100.2 "*) pass "netmap-out ($r)" ;; *) fail netmap-out "saw '$r'" ;; esac
r=$(fetch inet 198.51.100.2 80); [ "$r" = tenant-b ] && pass netmap-in || fail netmap-in "got '$r'"
r=$(fetch inet 198.51.100.10 80); [ "$r" = tenant-b ] && pass netmap-in-other-host || fail netmap-in-other-host "got '$r'"

# --- UDP port-range forward into tenant a, and its hairpin ------------------------
# udp_ask NS PORT: the answer to one datagram. The server forks a shell per
# datagram, which on a loaded machine can take seconds: up to three tries,
# each a new flow, each waiting 4 s.
udp_ask() {
	for _try in 1 2 3; do
		_r=$(echo x | at "$1" timeout 6 socat -T 4 -t 4 - UDP:203.0.113.1:$2 2>/dev/null)
		[ -n "$_r" ] && break
	done
	printf '%s' "$_r"
}
for p in 5000 5001; do
	r=$(udp_ask inet $p)
	[ "$r" = "udp-a-$p" ] && pass "forward-udp-$p" || fail "forward-udp-$p" "got '$r'"
done
r=$(udp_ask ha 5001)
[ "$r" = udp-a-5001 ] && pass hairpin-udp || fail hairpin-udp "got '$r'"
# from the appliance itself (nat_output; the tenant's mark routes it)
r=$(echo x | at fw timeout 3 socat -T 2 -t 2 - UDP:203.0.113.1:5000 2>/dev/null)
[ "$r" = udp-a-5000 ] && pass forward-from-appliance || fail forward-from-appliance "got '$r'"
r=$(echo x | at hb timeout 3 socat -T 2 -t 2 - UDP:203.0.113.1:5000 2>/dev/null)
[ -z "$r" ] && pass forward-not-from-other-tenant || fail forward-not-from-other-tenant "tenant b got '$r'"

# --- conntrack holds both tenants' translations apart ------------------------------
at fw conntrack -L 2>/dev/null >"$LAB_TMP/ct"
grep -q 'zone-orig=1 .*dst=192.0.2.1[01]' "$LAB_TMP/ct" && grep -q 'zone-orig=2 .*dst=198.51.100.2 ' "$LAB_TMP/ct" &&
	pass conntrack-zones-and-translations || fail conntrack-zones-and-translations "$(grep dport=9 "$LAB_TMP/ct" | head -3)"

# --- both backends give the same nat chains ------------------------------------------
at fw nft -s list table inet hvgate >"$LAB_TMP/netlink.txt"
"$HVGATE" compile "$POLICY" --emit nft 2>/dev/null | at fw nft -f - && at fw nft -s list table inet hvgate >"$LAB_TMP/text.txt"
if diff "$LAB_TMP/netlink.txt" "$LAB_TMP/text.txt" >"$LAB_TMP/diff"; then pass backends-agree
else fail backends-agree "$(head -6 "$LAB_TMP/diff" | tr '\n' ' ')"; fi
lab_done
