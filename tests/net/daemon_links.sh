#!/bin/sh
# hvgated keeps the tenants' routes in step with their interfaces: a
# segment's interface that appears after the policy was applied (a VM's tap
# created later) gets its route in the tenant's table and the tenant's
# replies come back to it; a link that goes down and up again (the kernel
# drops its routes) gets them back; a wildcard that matches two interfaces
# gets no route (which one holds which host is not known) and a warning, and
# its route returns when one of them goes; an interface no segment names
# does not touch the routes.
#
#   ha (tenant a) eth0 10.0.1.2 -- ta0 | fw | up0 -- inet 203.0.113.2 (echo on tcp 7)
#   hb (tenant b) eth0 10.0.1.2 -- tb0 (created once the daemon runs; segment "tb*")
#
# Both tenants use 10.0.1.0/24: only tenant b's own table can send its
# replies to tb0 (the main table has the same network on ta0 too).
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh
. tests/nat/lab_tenants.sh # fetch, echo_tcp

lab_ns fw && lab_ns ha && lab_ns hb && lab_ns inet || { fail lab-up; exit 1; }
lab_link ha eth0 fw ta0 && lab_link inet eth0 fw up0 || { fail lab-up; exit 1; }
lab_addr ha eth0 10.0.1.2/24
lab_addr fw ta0 10.0.1.1/24
lab_addr fw up0 203.0.113.1/24
lab_addr inet eth0 203.0.113.2/24
at ha ip route add default via 10.0.1.1
lab_router fw
for k in all default ta0 up0; do at fw sysctl -qw net.ipv4.conf.$k.rp_filter=0; done
bg inet socat TCP-LISTEN:7,fork,reuseaddr PIPE
wait_for 5 sh -c "ip netns exec $LAB-inet ss -ltn | grep -q ':7 '" || fail echo-server-up

POL="$LAB_TMP/links.hvp"
cat > "$POL" <<'P'
zone uplink { interface "up0" }
tenant a {
  segment lan { interface "ta0" address 10.0.1.0/24 }
  pass from lan to uplink
  nat masquerade out via uplink
}
tenant b {
  segment lan { interface "tb*" address 10.0.1.0/24 }
  pass from lan to uplink
  nat masquerade out via uplink
}
P
daemon_conf "$POL"
sed -i 's/name = "lan0"; role = "tenant"/name = "ta0"; role = "tenant"/; s/name = "dmz0"; role = "uplink"/name = "up0"; role = "uplink"/' "$DAEMON_CONF"
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi

# echoes ROLE TEXT: TEXT comes back from the echo server through the appliance.
echoes() { [ "$(echo_tcp "$1" 203.0.113.2 7 "$2")" = "$2" ]; }
table_has() { ip -n "$LAB-fw" route show table "$1" proto 211 2>/dev/null | grep -q "$2"; }
reroutes() { grep -c 'tenant routing:' "$DAEMON_LOG"; }

expect a-route-at-start table_has 1001 '10.0.1.0/24 dev ta0'
expect_not b-no-route-before-its-interface table_has 1002 '10.0.1.0/24'
expect a-reaches-inet echoes ha hello-a

# --- tb0 appears: its route follows, and tenant b's replies find it -------
lab_link hb eth0 fw tb0 || fail tb0-created
lab_addr hb eth0 10.0.1.2/24
lab_addr fw tb0 10.0.1.1/24
at fw sysctl -qw net.ipv4.conf.tb0.rp_filter=0
at hb ip route add default via 10.0.1.1
if wait_for 5 table_has 1002 '10.0.1.0/24 dev tb0'; then pass b-route-when-interface-appears
else fail b-route-when-interface-appears "$(ip -n "$LAB-fw" route show table 1002)"; fi
expect b-reaches-inet echoes hb hello-b
expect a-still-reaches-inet echoes ha hello-a2

# --- down and up: the kernel drops the route, the daemon puts it back -----
at fw ip link set tb0 down
if wait_for 5 sh -c "! ip -n $LAB-fw route show table 1002 proto 211 2>/dev/null | grep -q 10.0.1.0/24"; then
	pass b-route-gone-while-down
else
	fail b-route-gone-while-down "$(ip -n "$LAB-fw" route show table 1002)"
fi
at fw ip link set tb0 up
if wait_for 5 table_has 1002 '10.0.1.0/24 dev tb0'; then pass b-route-back-after-up
else fail b-route-back-after-up "$(ip -n "$LAB-fw" route show table 1002)"; fi
expect b-reaches-inet-after-bounce echoes hb again-b

# --- an interface that no segment names changes nothing ------------------
before=$(reroutes)
at fw ip link add other0 type veth peer name other1
at fw ip link set other0 up
sleep 1
after=$(reroutes)
[ "$before" = "$after" ] && pass unrelated-interface-ignored ||
	fail unrelated-interface-ignored "routes installed again $((after - before)) times"

# --- the wildcard matches two: no route, a warning; one goes: route back --
at fw ip link add tb1 type veth peer name tb1peer
at fw ip link set tb1 up
if wait_for 5 grep -q 'wildcard matches several interfaces' "$DAEMON_LOG"; then pass ambiguous-wildcard-warned
else fail ambiguous-wildcard-warned "$(tail -3 "$DAEMON_LOG")"; fi
expect_not ambiguous-wildcard-no-route table_has 1002 '10.0.1.0/24'
expect a-unaffected table_has 1001 '10.0.1.0/24 dev ta0'
at fw ip link del tb1
if wait_for 5 table_has 1002 '10.0.1.0/24 dev tb0'; then pass route-back-when-one-goes
else fail route-back-when-one-goes "$(ip -n "$LAB-fw" route show table 1002)"; fi

# --- a burst of events is read in bounded steps and the daemon stays up ---
i=0
while [ $i -lt 40 ]; do at fw ip link set tb0 down; at fw ip link set tb0 up; i=$((i + 1)); done
if wait_for 5 table_has 1002 '10.0.1.0/24 dev tb0'; then pass route-after-40-bounces
else fail route-after-40-bounces "$(ip -n "$LAB-fw" route show table 1002)"; fi
expect status-after-bounces hv status

daemon_stop
[ "${DAEMON_RC:-1}" -eq 0 ] && pass stop-clean || fail stop-clean "rc=${DAEMON_RC:-?}"
lab_done
