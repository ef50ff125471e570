#!/bin/sh
# The inspection fast path through hvgated (fastpath enabled, two workers):
# `inspect` rules send their flows' first bytes to user space, where the
# content expressions decide. A request with "UNION SELECT" never reaches
# the server, the flow's later packets are dropped in the kernel and the
# event names the rule, and both ends of the flow are reset; a benign
# request is answered; a `pass content` match
# clears a flow at once; a flow longer than the inspection window is cleared
# and its later packets stay in the kernel; UDP datagrams are judged one by
# one; traffic of rules without inspect never goes to user space; over IPv6
# as over IPv4; with the daemon stopped, inspected services still pass
# (bypass), unless fastpath.fail_closed is set; the counters, the kernel's
# per-queue ones too, show in `status` and the metrics.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

lab3_up || { fail lab-up; exit 1; }
# a server that answers only once it has read a request line
bg server socat TCP6-LISTEN:8000,fork,reuseaddr,ipv6only=0 SYSTEM:'read l; echo "got $l"'
wait_for 5 sh -c "ip netns exec $LAB-server ss -ltn | grep -q ':8000 '" || fail server-up

POL="$LAB_TMP/fastpath.hvp"
cat > "$POL" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
pass from lan to dmz service tcp port 8000 inspect {
  block content /(?i)union\s+select/ log "sqli"
  pass  content /^GET \/health/
}
pass from lan to dmz service udp port { 53, 9053 } inspect {
  block content /evil/
}
pass from lan to dmz service tcp port 80
P
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi

# ask ADDR TEXT: one request line to the server on 8000, prints the answer (bounded).
ask() {
	case "$1" in *:*) a="[$1]" ;; *) a=$1 ;; esac # socat wants brackets around IPv6 only
	printf '%s\n' "$2" | at client timeout 5 socat -T 3 -t 3 - "TCP:$a:8000" 2>/dev/null | head -1
}
# chain_counter RULE_TEXT: packets of the inspect chain's rule containing RULE_TEXT.
chain_counter() {
	at fw nft list chain inet hvgate inspect 2>/dev/null |
		awk -v t="$1" 'index($0, t) { for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}
queued() { chain_counter 'ct direction original'; }
blocked_drops() { chain_counter 'builtin:inspect-blocked'; }
events() { cat "$DAEMON_EVENTS" 2>/dev/null; }

fw_ruleset | grep -q 'ct label 0 jump inspect' && pass ruleset-has-inspect-jump ||
	fail ruleset-has-inspect-jump "$(fw_ruleset | grep -n label | head -3)"

# --- benign and malicious requests, v4 and v6 ------------------------------
r=$(ask 10.10.2.2 'GET /index.html'); [ "$r" = 'got GET /index.html' ] && pass benign-v4-answered ||
	fail benign-v4-answered "got '$r'"
r=$(ask fd00:10:2::2 'GET /about'); [ "$r" = 'got GET /about' ] && pass benign-v6-answered ||
	fail benign-v6-answered "got '$r'"
r=$(ask 10.10.2.2 'GET /item?id=1 UnIoN   SeLeCt password FROM users'); [ -z "$r" ] && pass sqli-v4-blocked ||
	fail sqli-v4-blocked "the server answered '$r'"
if wait_for 3 grep -q '"prefix":"sqli"' "$DAEMON_EVENTS"; then
	line=$(grep '"prefix":"sqli"' "$DAEMON_EVENTS" | head -1)
	echo "$line" | grep -q "\"rule\":\"$POL:3:" && echo "$line" | grep -q '"verdict":"block"' &&
		echo "$line" | grep -q '"src":"10.10.1.2"' && pass sqli-event-names-rule ||
		fail sqli-event-names-rule "$line"
else
	fail sqli-event-names-rule "no event: $(events | tail -2)"
fi
r=$(ask fd00:10:2::2 'POST /q union select 1'); [ -z "$r" ] && pass sqli-v6-blocked || fail sqli-v6-blocked "answered '$r'"
r=$(ask 10.10.2.2 'GET /fine'); [ "$r" = 'got GET /fine' ] && pass benign-after-block-answered ||
	fail benign-after-block-answered "got '$r'"

# --- flows spread over the workers by their 5-tuple -------------------------
# One client, one server, sixteen connections: the kernel's own queue
# balancing hashes the addresses only and would hand all of them to one
# worker. The spreading chain's counters (one rule per worker) and the
# kernel's last packet id of each queue both show two workers at work.
spread() {
	at fw nft list chain inet hvgate inspect-q0 2>/dev/null |
		awk '/queue num/ { for (i = 1; i < NF; i++) if ($i == "packets") printf "%s ", $(i + 1) }'
}
queue_ids() { at fw awk '$1 == 100 || $1 == 101 { printf "%s:%s ", $1, $8 }' /proc/net/netfilter/nfnetlink_queue; }
ids0=$(queue_ids)
for i in $(seq 1 16); do ask 10.10.2.2 "GET /spread-$i" > /dev/null; done
c=$(spread)
set -- $c
[ "${1:-0}" -gt 0 ] && [ "${2:-0}" -gt 0 ] && pass "flows-spread-over-workers($c)" ||
	fail flows-spread-over-workers "packets per worker: '$c'"
ids1=$(queue_ids)
moved=0
for q in 100 101; do
	a=$(echo "$ids0" | tr ' ' '\n' | awk -F: -v q=$q '$1 == q { print $2 }')
	b=$(echo "$ids1" | tr ' ' '\n' | awk -F: -v q=$q '$1 == q { print $2 }')
	[ "${b:-0}" -gt "${a:-0}" ] && moved=$((moved + 1))
done
[ $moved -eq 2 ] && pass "both-queues-got-packets($ids0-> $ids1)" || fail both-queues-got-packets "$ids0 -> $ids1"

# --- a blocked flow ends at both ends: a reset each way ---------------------
# The client's recv ends with ECONNRESET at once (not after its
# retransmissions give up), and the server holds no connection of the
# blocked requests.
cat > "$LAB_TMP/reset.py" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 8000), timeout=5)
t = time.time()
s.sendall(b"GET /?id=1 union select 1\n")
try:
    out = "eof" if not s.recv(100) else "data"
except ConnectionResetError:
    out = "reset"
except socket.timeout:
    out = "timeout"
print(out, round(time.time() - t, 1))
EOF
for a in 10.10.2.2 fd00:10:2::2; do
	r=$(at client timeout 10 python3 "$LAB_TMP/reset.py" "$a" 2>&1)
	case "$r" in
	"reset "[0-2].*) pass "blocked-client-reset($a: $r s)" ;;
	*) fail "blocked-client-reset($a)" "got '$r'" ;;
	esac
done
if wait_for 5 sh -c "[ -z \"\$(ip netns exec $LAB-server ss -Htn state established '( sport = :8000 )')\" ]"; then
	pass blocked-server-side-reset
else
	fail blocked-server-side-reset "$(at server ss -Htn state established '( sport = :8000 )' | head -3)"
fi

# --- a pass match clears the flow: its later data is not queued ------------
q0=$(queued)
r=$( (echo 'GET /health'; sleep 0.3; i=0; while [ $i -lt 10 ]; do echo "line $i union select"; i=$((i + 1)); done) |
	at client timeout 5 socat -T 3 -t 3 - TCP:10.10.2.2:8000 2>/dev/null | head -1)
q1=$(queued)
[ "$r" = 'got GET /health' ] && pass pass-match-answered || fail pass-match-answered "got '$r'"
# the SYN's flow: the request segment and little else reach user space
[ $((q1 - q0)) -le 4 ] && pass "pass-match-clears-flow($((q1 - q0)) packets queued)" ||
	fail pass-match-clears-flow "$((q1 - q0)) packets queued"

# --- a long benign flow: cleared at the window's end, the rest stays in the kernel
q0=$(queued)
r=$( (i=0; while [ $i -lt 60 ]; do echo "GET /page/$i"; sleep 0.02; i=$((i + 1)); done) |
	at client timeout 8 socat -T 3 -t 3 - TCP:10.10.2.2:8000 2>/dev/null | head -1)
q1=$(queued)
[ "$r" = 'got GET /page/0' ] && pass long-flow-answered || fail long-flow-answered "got '$r'"
[ $((q1 - q0)) -lt 40 ] && pass "long-flow-cleared($((q1 - q0)) of 60+ packets queued)" ||
	fail long-flow-cleared "$((q1 - q0)) packets queued"

# --- UDP: each datagram judged --------------------------------------------
r=$(echo 'hello dns' | at client timeout 3 socat -T 2 -t 2 - UDP:10.10.2.2:53 2>/dev/null)
[ "$r" = 'hello dns' ] && pass udp-benign-echoed || fail udp-benign-echoed "got '$r'"
r=$(echo 'some evil payload' | at client timeout 3 socat -T 2 -t 2 - UDP:10.10.2.2:53 2>/dev/null)
[ -z "$r" ] && pass udp-evil-dropped || fail udp-evil-dropped "echoed '$r'"
# one flow: its first datagram passes; an evil one later blocks the flow,
# so what follows it is dropped too, by the kernel (a blocked TCP flow is
# reset instead, above: its ends send nothing more)
before=$(blocked_drops)
r=$( (echo 'first fine'; sleep 0.5; echo 'then evil'; sleep 0.5; echo 'last fine') |
	at client timeout 4 socat -T 2 -t 2 - UDP:[fd00:10:2::2]:53 2>/dev/null | tr '\n' '|')
after=$(blocked_drops)
[ "$r" = 'first fine|' ] && pass udp-v6-flow-blocked-from-evil-datagram ||
	fail udp-v6-flow-blocked-from-evil-datagram "echoed '$r'"
[ "$after" -gt "$before" ] && pass "blocked-flow-dropped-in-kernel($((after - before)) packets)" ||
	fail blocked-flow-dropped-in-kernel "counter $before -> $after"

# --- UDP flows that nobody answers (9053: a receiver that never replies) --
# udp_flow SPORT PAYLOAD...: datagrams of one flow, 20 ms apart (a payload
# starting with '!' follows the one before it at once: a burst); prints
# what the receiver got, joined by '|'
udp_flow() {
	sp=$1; shift
	at server timeout 15 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.10.2.2", 9053))
got = []
s.settimeout(6)  # the sender may be slow to start on a loaded machine
try:
    while True:
        got.append(s.recv(100).decode())
        s.settimeout(1.5)
except socket.timeout: pass
print("|".join(got))' > "$LAB_TMP/udp9053" &
	rp=$!
	wait_for 5 sh -c "ip netns exec $LAB-server ss -lun | grep -q ':9053 '"
	at client python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.10.1.2", int(sys.argv[1])))
for p in sys.argv[2:]:
    if not p.startswith("!"): time.sleep(0.02)
    s.sendto(p.encode(), ("10.10.2.2", 9053))' "$sp" "$@"
	wait $rp
	cat "$LAB_TMP/udp9053"
}
ctreq() { json_get "$(hv status --json)" fastpath.ct_requests; }
# A new UDP flow's first datagram comes on its rule's queue block and is
# judged alone, without a conntrack lookup (its connection is not confirmed
# yet: a lookup would fail in both directions); the next ones come with the
# PENDING label and cost one lookup, remembered for the rest of the flow.
c0=$(ctreq)
r=$(udp_flow 41001 a1 a2 a3 a4 a5 a6 a7 a8)
c1=$(ctreq)
[ "$r" = 'a1|a2|a3|a4|a5|a6|a7|a8' ] && [ -n "$c0" ] && [ $((c1 - c0)) -le 1 ] &&
	pass "udp-flow-one-ct-request($((c1 - c0)))" ||
	fail udp-flow-one-ct-request "got '$r', ctnetlink requests ${c0:-none} -> ${c1:-none}"
# The worker keys a flow by its tuple and zone and learns its rule from the
# first packet's queue block: a flow that is not blocked costs no
# ctnetlink request at all, UDP or TCP (the request, the ACKs, the close).
c0=$(ctreq)
r=$(udp_flow 41004 b1 b2 b3 b4)
c1=$(ctreq)
[ "$r" = 'b1|b2|b3|b4' ] && [ -n "$c0" ] && [ $((c1 - c0)) -eq 0 ] &&
	pass udp-flow-no-ct-request ||
	fail udp-flow-no-ct-request "got '$r', ctnetlink requests ${c0:-none} -> ${c1:-none}"
c0=$(ctreq)
r=$(ask 10.10.2.2 'GET /no-lookup')
sleep 0.3 # the worker publishes its counters after each round
c1=$(ctreq)
[ "$r" = 'got GET /no-lookup' ] && [ -n "$c0" ] && [ $((c1 - c0)) -eq 0 ] &&
	pass tcp-connection-no-ct-request ||
	fail tcp-connection-no-ct-request "got '$r', ctnetlink requests ${c0:-none} -> ${c1:-none}"
# A flow cleared at the window's end before any reply comes back on the
# rule's block (the kernel's inspect chain lets a DONE flow by, the rule
# queues it again): it is still judged as the flow it is, so an evil
# datagram blocks it (BLOCKED label: the kernel drops what follows).
r=$(udp_flow 41002 $(seq -f 'f%g' 1 20) 'evil' 'last')
[ "$r" = "$(seq -f 'f%g' 1 20 | tr '\n' '|' | sed 's/|$//')" ] &&
	pass udp-unreplied-cleared-flow-blocked-by-evil ||
	fail udp-unreplied-cleared-flow-blocked-by-evil "got '$r'"
# Datagrams queued right behind the one that blocks the flow (in flight
# while it was judged, before the BLOCKED label was set) are dropped too,
# not judged afresh as a new stream.
a0=$(json_get "$(hv status --json)" fastpath.after_block)
r=$(udp_flow 41003 ok evil $(seq -f '!x%g' 1 40))
a1=$(json_get "$(hv status --json)" fastpath.after_block)
[ "$r" = ok ] && pass "udp-burst-after-block-dropped($((a1 - a0)) in flight)" ||
	fail udp-burst-after-block-dropped "got '$r'"

# --- a rule without inspect never reaches user space ----------------------
q0=$(queued)
r=$(probe client tcp 10.10.2.2 80); q1=$(queued)
[ "$r" = open ] && [ "$q1" -eq "$q0" ] && pass uninspected-rule-stays-in-kernel ||
	fail uninspected-rule-stays-in-kernel "probe $r, queued $q0 -> $q1"

# --- what the operator sees -----------------------------------------------
st=$(hv status --json 2>&1)
b=$(json_get "$st" fastpath.blocked); w=$(json_get "$st" fastpath.workers)
[ "${b:-0}" -ge 3 ] && [ "$w" = 2 ] && pass "status-fastpath(blocked=$b, workers=$w)" ||
	fail status-fastpath "blocked=$b workers=$w: $(echo "$st" | grep -o "\"fastpath\":{[^}]*}")"
m=$(at fw python3 -c 'import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:'"$DAEMON_METRICS_PORT"'/metrics", timeout=5).read().decode())' 2>&1)
echo "$m" | grep -q '^hvgate_fastpath_flows_total{verdict="blocked"} [1-9]' && pass metrics-fastpath ||
	fail metrics-fastpath "$(echo "$m" | grep fastpath | head -5)"
# the kernel's counters of each queue (/proc/net/netfilter/nfnetlink_queue):
# the two of block 0 and those of the rules' blocks, none dropped
qs=$(printf '%s' "$st" | python3 -c 'import json,sys
q=json.load(sys.stdin)["fastpath"]["queues"]
print(" ".join("%d:%d:%d" % (e["queue"], e["queue_dropped"], e["user_dropped"]) for e in q))' 2>&1)
case " $qs " in
*" 100:0:0 101:0:0 102:"*) pass "status-queue-counters($qs)" ;;
*) fail status-queue-counters "got '$qs'" ;;
esac
echo "$m" | grep -q '^hvgate_fastpath_queue_dropped_total{queue="100",cause="full"} 0' &&
	pass metrics-queue-counters || fail metrics-queue-counters "$(echo "$m" | grep queue_dropped | head -3)"
daemon_alive && pass daemon-alive || fail daemon-alive

# --- the daemon stopped: inspected services still pass (bypass) -----------
daemon_stop
r=$(ask 10.10.2.2 'GET /while-stopped'); [ "$r" = 'got GET /while-stopped' ] && pass bypass-without-daemon ||
	fail bypass-without-daemon "got '$r'"

# --- fail-closed: the queues have no bypass, nothing passes uninspected ----
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; fail_closed = true; };'
if daemon_start; then pass fail-closed-start; else fail fail-closed-start "$(tail -5 "$DAEMON_LOG")"; fi
[ "$(json_get "$(hv status --json)" fastpath.fail_closed)" = True ] && pass fail-closed-status ||
	fail fail-closed-status "$(hv status --json | grep -o '"fail_closed":[a-z]*')"
r=$(ask 10.10.2.2 'GET /fail-closed'); [ "$r" = 'got GET /fail-closed' ] && pass fail-closed-benign-answered ||
	fail fail-closed-benign-answered "got '$r'"
daemon_stop
r=$(ask 10.10.2.2 'GET /while-stopped'); [ -z "$r" ] && pass fail-closed-without-daemon-nothing-passes ||
	fail fail-closed-without-daemon-nothing-passes "the server answered '$r'"
r=$(probe client tcp 10.10.2.2 80); [ "$r" = open ] && pass fail-closed-uninspected-rule-passes ||
	fail fail-closed-uninspected-rule-passes "probe $r"
lab_done
