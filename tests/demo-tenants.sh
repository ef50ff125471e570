#!/bin/sh
# Demo part 2: two tenants that use the SAME addresses (10.0.1.0/24) behind
# one appliance, side by side, run by hvgated on
# conf/policies/examples/tenants-lab.hvp. Shows: masquerade for both with
# replies to the right tenant and only the public address on the uplink; a
# port forward per tenant and hairpin; isolation between the tenants (and
# its counter); anti-spoofing (and its counter); the daemon's tenant and
# conntrack views with one conntrack zone per tenant.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export HVGATE_BUILD="$(cd "$BUILD" && pwd)"
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
. tests/lib/daemon.sh
POLICY=conf/policies/examples/tenants-lab.hvp

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
problems=0
want() { # want WHAT EXPECTED SEEN
	if [ "$2" = "$3" ]; then echo "   $1: $3 (as expected)"; else echo "   $1: saw '$3', expected '$2'  <-- MISMATCH"; problems=$((problems + 1)); fi
}
counter() { # counter COMMENT: packets of the rules with that comment in the fw
	at fw nft list table inet hvgate | grep "comment \"$1\"" | grep -Eo 'packets [0-9]+' | awk '{s+=$2} END {print s+0}'
}

say "part 2: two tenants with the same addresses"
cat <<'T'
   ha (tenant a: 10.0.1.2, 10.0.1.10)  --ta0--+
                                               fw --up0-- inet (203.0.113.2)
   hb (tenant b: 10.0.1.2, 10.0.1.10)  --tb0--+    appliance 203.0.113.1
T
lab_tenants_up || { echo "demo: could not build the lab" >&2; exit 1; }
sed -n '/^tenant a/,/^}/p' "$POLICY" | sed 's/^/   /'

say "hvgated starts on $POLICY in namespace $LAB-fw"
daemon_conf "$PWD/$POLICY"
sed -i 's/^interfaces = .*/interfaces = ( { name = "ta0"; role = "tenant"; }, { name = "tb0"; role = "tenant"; }, { name = "up0"; role = "uplink"; } );/' "$DAEMON_CONF"
daemon_start || { echo "demo: hvgated did not become ready"; cat "$DAEMON_LOG"; exit 1; }
hv show tenants

say "both tenants' 10.0.1.2 talk to the internet host at once (masquerade)"
# The internet host runs a server that answers with the address it sees.
bg inet socat TCP4-LISTEN:9,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR'
wait_for 5 sh -c "ip netns exec $LAB-inet ss -ltn | grep -q ':9 '"
echo_tcp ha 203.0.113.2 7 "hello from tenant a" > "$LAB_TMP/a" &
pa=$!
echo_tcp hb 203.0.113.2 7 "hello from tenant b" > "$LAB_TMP/b" &
pb=$!
wait "$pa" "$pb"
want "tenant a got back" "hello from tenant a" "$(cat "$LAB_TMP/a")"
want "tenant b got back" "hello from tenant b" "$(cat "$LAB_TMP/b")"
want "the internet host sees tenant a as" 203.0.113.1 "$(fetch ha 203.0.113.2 9)"
want "the internet host sees tenant b as" 203.0.113.1 "$(fetch hb 203.0.113.2 9)"

say "hvgate show conntrack   (one conntrack zone per tenant)"
hv show conntrack | head -12

say "port forwards: 203.0.113.1:8080 -> tenant a's 10.0.1.10:80, :8081 -> tenant b's"
want "internet host fetches :8080" tenant-a "$(fetch inet 203.0.113.1 8080)"
want "internet host fetches :8081" tenant-b "$(fetch inet 203.0.113.1 8081)"
want "tenant a fetches its own public :8080 (hairpin)" tenant-a "$(fetch ha 203.0.113.1 8080)"

say "isolation: tenant a tries tenant b's host fd00:b::2 port 80"
before=$(counter builtin:inter-tenant)
want "tenant b reaches its own fd00:b::2:80" tenant-b "$(fetch hb [fd00:b::2] 80)"
want "tenant a reaches fd00:b::2:80" "" "$(fetch ha [fd00:b::2] 80)"
echo "   inter-tenant drop counter: $before -> $(counter builtin:inter-tenant)"
[ "$(counter builtin:inter-tenant)" -gt "$before" ] || { echo "   <-- MISMATCH: the inter-tenant counter did not move"; problems=$((problems + 1)); }

say "anti-spoofing: tenant a sends from 10.0.3.2, an address it did not declare"
at ha ip addr add 10.0.3.2/32 dev eth0
before=$(counter antispoof:a.lan)
want "spoofed connection" "" "$(at ha timeout 3 socat -T 2 - TCP:203.0.113.2:7,bind=10.0.3.2 </dev/null 2>/dev/null)"
echo "   anti-spoof counter of segment a.lan: $before -> $(counter antispoof:a.lan)"
[ "$(counter antispoof:a.lan)" -gt "$before" ] || { echo "   <-- MISMATCH: the anti-spoof counter did not move"; problems=$((problems + 1)); }

daemon_stop
if [ "$problems" -eq 0 ]; then
	say "part 2: everything behaved as the policy says"
else
	say "part 2: $problems thing(s) did not behave as the policy says"
fi
exit "$problems"
