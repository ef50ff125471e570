#!/bin/sh
# The inspection fast path with two tenants that use the same addresses
# (tests/nat/lab_tenants.sh). Their connections live in per-tenant conntrack
# zones; on a kernel without the queue's conntrack glue the fast path finds
# them through the routing mark of the packet. Tenant a's traffic to the
# internet echo server is inspected, tenant b's is not: the same payload is
# stopped for a and passes for b, from the very same address and port.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/nat/lab_tenants.sh
DAEMON_ROLE=fw
. tests/lib/daemon.sh

lab_tenants_up || { fail lab-up; exit 1; }
POL="$LAB_TMP/tenants-inspect.hvp"
cat > "$POL" <<'P'
zone uplink { interface "up0" }
tenant a {
  segment lan { interface "ta0" address { 10.0.1.0/24, fd00:a::/64 } }
  pass from lan to uplink service tcp port 7 inspect {
    block content /(?i)union\s+select/ log "sqli-a"
  }
  nat masquerade out via uplink
}
tenant b {
  segment lan { interface "tb0" address { 10.0.1.0/24, fd00:b::/64 } }
  pass from lan to uplink service tcp port 7
  nat masquerade out via uplink
}
P
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 200; workers = 1; };'
sed -i 's/name = "lan0"; role = "tenant"/name = "ta0"; role = "tenant"/; s/name = "dmz0"; role = "uplink"/name = "up0"; role = "uplink"/' "$DAEMON_CONF"
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi

# say ROLE TEXT: TEXT through the appliance to the internet echo server,
# from source port 40000 (the same tuple inside both tenants), prints the echo.
say() {
	(echo "$2"; sleep 1) | at "$1" timeout 4 socat -T 3 - TCP:203.0.113.2:7,sourceport=40000,reuseaddr 2>/dev/null | head -1
}
r=$(say ha 'GET /a'); [ "$r" = 'GET /a' ] && pass a-benign-echoed || fail a-benign-echoed "got '$r'"
r=$(say hb 'GET /b'); [ "$r" = 'GET /b' ] && pass b-benign-echoed || fail b-benign-echoed "got '$r'"
sleep 1 # the same source port again: let the old connections close
r=$(say ha 'GET /?id=1 union select x'); [ -z "$r" ] && pass a-injection-stopped ||
	fail a-injection-stopped "echoed '$r'"
r=$(say hb 'GET /?id=1 union select x'); [ "$r" = 'GET /?id=1 union select x' ] && pass b-not-inspected ||
	fail b-not-inspected "got '$r'"
# The fast path judges queued packets asynchronously: on a loaded machine
# the injection's segment can still wait in the queue when the client has
# given up (no echo either way), so the counter is polled, bounded, until
# the worker has judged it.
blocked_count() { json_get "$(hv status --json)" fastpath.blocked; }
blocked_seen() { [ "$(blocked_count)" -ge 1 ] 2>/dev/null; }
wait_for 10 blocked_seen
st=$(hv status --json)
b=$(json_get "$st" fastpath.blocked); u=$(json_get "$st" fastpath.ct_unknown)
[ "${b:-0}" -ge 1 ] && pass "fastpath-blocked($b)" || fail fastpath-blocked "blocked=$b after 10 s"
# every queued packet found its connection in its tenant's zone
[ "${u:-1}" = 0 ] && pass fastpath-found-tenant-connections || fail fastpath-found-tenant-connections "ct_unknown=$u"
if wait_for 3 grep -q '"prefix":"sqli-a"' "$DAEMON_EVENTS"; then
	grep '"prefix":"sqli-a"' "$DAEMON_EVENTS" | head -1 | grep -q '"tenant":"a"' && pass event-names-tenant ||
		fail event-names-tenant "$(grep '"prefix":"sqli-a"' "$DAEMON_EVENTS" | head -1)"
else
	fail event-names-tenant "no event"
fi
daemon_stop
lab_done
