#!/bin/sh
# The inspection fast path against the real kernel: a hand-written ruleset in
# the fw namespace does what the lowering of `inspect` rules does (label new
# flows PENDING + their inspect rule number; a top chain that drops BLOCKED
# flows, lets DONE flows by and queues the rest of the original direction),
# and `hvgate fastpath run` serves the queues. Real clients and servers:
# a benign request is answered, a request with UNION SELECT is not and the
# kernel drops the rest of its flow, a flow cleared by a pass match stops
# reaching user space, UDP is judged per datagram, and with the driver
# stopped the queue is bypassed.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh

QUEUE=7
T=hvfp

lab3_up || { fail lab-up; exit 1; }
bg server socat TCP6-LISTEN:81,fork,reuseaddr,ipv6only=0 PIPE
wait_for 5 sh -c "[ \"\$(ip netns exec $LAB-server python3 tests/lib/probe.py tcp 10.10.2.2 81)\" = open ]"

# Labels (policy/lower.h): 0 PENDING, 1 DONE, 2 BLOCKED, 8.. the inspect
# rule number (8: rule 1, 9: rule 2). The queue is the xt NFQUEUE target
# (this kernel has no native nft queue, the iptables FORWARD chain has
# priority 0), reached through a packet mark. The fast path clears a flow
# by accepting its packet with mark bit 0x4000 (POLICY_MARK_INSPECT_DONE);
# the packet goes on with the next base chain, inspect_done, which sets the
# DONE label (as the lowering's inspect-done-HOOK chains do). A new flow's
# first packet goes to its rule's queue block (block k: QUEUE + 2k, +1, as
# the lowering sends it, policy/lower.h), where the fast path judges it
# alone and keeps what a SYN told the receiver; the server's SYN-ACK goes
# to block 0 (its ISN): only a TCP flow whose SYN and SYN-ACK it knows may
# be cleared.
if at fw nft -f - <<EOF
table inet $T {
	chain top {
		type filter hook forward priority -10; policy accept;
		ct label 2 counter drop comment "blocked"
		ct label 1 counter return comment "done"
		ct state new tcp dport { 80, 81 } counter meta mark set 0x2 comment "first-tcp"
		ct state new udp dport 53 counter meta mark set 0x4 comment "first-udp"
		ct label 0 ct direction reply meta l4proto tcp tcp flags & syn != 0 counter meta mark set 0x1 comment "synack"
		ct label 0 ct direction original counter meta mark set 0x1 comment "pending"
	}
	chain inspect_new {
		type filter hook forward priority 10; policy accept;
		ct state new tcp dport { 80, 81 } counter ct label set 0 ct label set 8
		ct state new udp dport 53 counter ct label set 0 ct label set 9
	}
	chain inspect_done {
		type filter hook forward priority 1; policy accept;
		meta mark & 0x4000 == 0x4000 ct label 0 ct label set 1 meta mark set meta mark & 0xffffbfff comment "done-mark"
	}
}
EOF
then pass ruleset; else fail ruleset; exit 1; fi
for ipt in iptables-nft ip6tables-nft; do
	at fw $ipt -A FORWARD -m mark --mark 0x1/0x1 -j NFQUEUE \
		--queue-balance $QUEUE:$((QUEUE + 1)) --queue-bypass || { fail "queue-rule-$ipt"; exit 1; }
	for k in 1 2; do
		at fw $ipt -A FORWARD -m mark --mark $((1 << k))/$((1 << k)) -j NFQUEUE \
			--queue-balance $((QUEUE + 2 * k)):$((QUEUE + 2 * k + 1)) --queue-bypass ||
			{ fail "queue-rule-$ipt-block-$k"; exit 1; }
	done
done

cat > "$LAB_TMP/p.hvp" <<'EOF'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
pass from lan to dmz service tcp port { 80, 81 } inspect {
  block content /(?i)union\s+select/ log "sqli"
  pass  content /^GET \/health/
}
pass from lan to dmz service udp port 53 inspect {
  block content /evil/ log
}
EOF

# counter COMMENT: packets of the top chain's rule with that comment.
counter() {
	at fw nft list chain inet $T top | grep "comment \"$1\"" | grep -Eo 'packets [0-9]+' | awk '{print $2}'
}
# queued: packets that reached the NFQUEUE rules of block 0 (v4 and v6):
# those of flows under inspection, after their first.
queued() {
	{ at fw iptables-nft -L FORWARD -v -x -n; at fw ip6tables-nft -L FORWARD -v -x -n; } |
		awk '/NFQUEUE/ && /balance '$QUEUE':/ {s += $1} END {print s + 0}'
}
# request ADDR TEXT: sends TEXT on a new connection to the echo server (it
# answers only what it received, so an answer proves the request passed);
# prints the first line of the answer.
request() {
	case "$1" in *:*) a="[$1]" ;; *) a=$1 ;; esac
	printf '%s\r\n\r\n' "$2" | at client timeout 4 socat -T 2 -t 2 - "TCP:$a:81" 2>/dev/null |
		head -1 | tr -d '\r'
}

start_driver() {
	"$HVGATE" fastpath run "$LAB_TMP/p.hvp" --queue $QUEUE --workers 2 --netns "$LAB-fw" \
		--seconds 120 > "$LAB_TMP/events" 2> "$LAB_TMP/driver.err" &
	DRIVER=$!
	LAB_PIDS="$LAB_PIDS $DRIVER"
	wait_for 5 grep -qs 'queues' "$LAB_TMP/driver.err"
}
if start_driver; then pass driver-start; else fail driver-start "$(cat "$LAB_TMP/driver.err")"; exit 1; fi
grep -q 'conntrack over ctnetlink' "$LAB_TMP/driver.err" && ctway=ctnetlink || ctway=glue
echo "# fast path: conntrack labels through $ctway"
# A queue has one listener: a second driver is refused.
if "$HVGATE" fastpath run "$LAB_TMP/p.hvp" --queue $QUEUE --netns "$LAB-fw" --seconds 1 \
	> /dev/null 2> "$LAB_TMP/second.err"; then
	fail second-driver-refused "it ran"
else
	grep -q 'not permitted' "$LAB_TMP/second.err" && pass second-driver-refused ||
		fail second-driver-refused "$(cat "$LAB_TMP/second.err")"
fi

# A benign request is answered (and its flow was queued).
q0=$(queued)
r=$(request 10.10.2.2 'GET /index.html HTTP/1.0')
[ "$r" = 'GET /index.html HTTP/1.0' ] && pass benign-answered || fail benign-answered "got '$r'"
q1=$(queued)
[ "$q1" -gt "$q0" ] && pass benign-was-queued || fail benign-was-queued "queue counter $q0 -> $q1"

# An injection gets no answer; the event names the rule and the prefix
# (the flow's ends are reset: the kernel's drop of the rest of a blocked
# flow is seen with UDP below).
r=$(request 10.10.2.2 'GET /?id=1 UNION  select pw HTTP/1.0')
[ -z "$r" ] && pass sqli-unanswered || fail sqli-unanswered "got '$r'"
wait_for 3 grep -q '"action":"block"' "$LAB_TMP/events"
ev=$(grep '"action":"block"' "$LAB_TMP/events" | head -1)
case "$ev" in
*'"prefix":"sqli"'*'"dst":"10.10.2.2","dport":81'*) pass block-event ;;
*) fail block-event "got '$ev'" ;;
esac
case "$ev" in
*"\"rule\":\"$LAB_TMP/p.hvp:3:"*) pass block-event-rule-id ;;
*) fail block-event-rule-id "got '$ev'" ;;
esac

# The same over IPv6 (the benign request first: it proves the way works).
r=$(request fd00:10:2::2 'GET / HTTP/1.0')
[ "$r" = 'GET / HTTP/1.0' ] && pass benign-answered-v6 || fail benign-answered-v6 "got '$r'"
r=$(request fd00:10:2::2 'GET /?id=1 union select 1 HTTP/1.0')
[ -z "$r" ] && pass sqli-unanswered-v6 || fail sqli-unanswered-v6 "got '$r'"
wait_for 3 grep -q '"family":"ip6"' "$LAB_TMP/events" && pass block-event-v6 || fail block-event-v6

# A gap: a client (raw socket) sends its request's second segment first.
# The fast path drops it (it has not seen the bytes before it), judges the
# first, then the second again when it comes in order: a benign request is
# then whole at the server, an injection split across the two is found.
at client nft -f - <<EOF
table ip hvfp_client {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp flags & rst == rst drop comment "the raw client's connection is not the kernel's"
	}
}
EOF
n=$(at client timeout 10 python3 tests/net/fastpath_tcp.py 10.10.1.2 10.10.2.2 81 'GET /index' '.html HTTP/1.0' 2>&1)
[ "$n" = 24 ] && pass gap-then-in-order-passes || fail gap-then-in-order-passes "server acknowledged '$n' of 24 bytes"
n=$(at client timeout 10 python3 tests/net/fastpath_tcp.py 10.10.1.2 10.10.2.2 81 'GET /?q=1 UNI' 'ON SELECT 1' 2>&1)
[ "$n" = 13 ] && pass gap-split-injection-blocked || fail gap-split-injection-blocked "server acknowledged '$n' bytes, 13 expected"
at client nft delete table ip hvfp_client

# A pass match clears the flow: its later packets stay in the kernel (the
# DONE counter moves, the queue's does not), and they all arrive.
cat > "$LAB_TMP/echo.py" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 81), timeout=2)
s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
got = 0
s.recv(100); got += 1
time.sleep(0.3)  # the verdict and label are in place before the rest
for i in range(8):
    s.sendall(b"line %d UNION SELECT after the decision\r\n" % i)
    if s.recv(100):
        got += 1
s.close()
print(got)
EOF
q0=$(queued); d0=$(counter done)
n=$(at client timeout 10 python3 "$LAB_TMP/echo.py" 10.10.2.2 2>&1)
q1=$(queued); d1=$(counter done)
[ "$n" = 9 ] && pass done-flow-carries-on || fail done-flow-carries-on "echoes: $n"
[ $((d1 - d0)) -ge 8 ] && pass done-flow-stays-in-kernel || fail done-flow-stays-in-kernel "done counter $d0 -> $d1"
# Queued: the server's SYN-ACK (the judge takes its ISN), the handshake's
# last ACK and the request, maybe an ACK between; none of the 8 lines after
# the decision.
[ $((q1 - q0)) -le 4 ] && pass done-flow-not-queued || fail done-flow-not-queued "queue counter $q0 -> $q1"
grep -q '"action":"pass"' "$LAB_TMP/events" && pass pass-event || fail pass-event

# UDP: each datagram alone; a datagram with "evil" is dropped, and so is
# the rest of its flow.
r=$(probe client udp 10.10.2.2 53)
[ "$r" = reply ] && pass udp-benign || fail udp-benign "saw $r"
cat > "$LAB_TMP/udp.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect((sys.argv[1], 53))
out = []
for msg in (b"fine", b"an evil query", b"fine again"):
    s.send(msg)
    try:
        s.recv(100)
        out.append("reply")
    except OSError:
        out.append("none")
print(" ".join(out))
EOF
b0=$(counter blocked)
r=$(at client timeout 10 python3 "$LAB_TMP/udp.py" 10.10.2.2 2>&1)
b1=$(counter blocked)
[ "$r" = "reply none none" ] && pass udp-evil-blocks-flow || fail udp-evil-blocks-flow "saw '$r'"
[ "$b1" -gt "$b0" ] && pass blocked-flow-dropped-by-kernel || fail blocked-flow-dropped-by-kernel "blocked counter $b0 -> $b1"

# SIGHUP reads the policy again: the new rules take over while the workers
# run (fastpath_set_rules), the old pattern is gone.
sed -i 's#/(?i)union\\s+select/#/forbidden/#' "$LAB_TMP/p.hvp"
kill -HUP "$DRIVER"
if wait_for 3 grep -q 'reloaded, 2 inspect rules' "$LAB_TMP/driver.err"; then pass reload; else fail reload "$(tail -2 "$LAB_TMP/driver.err")"; fi
r=$(request 10.10.2.2 'GET /?q=forbidden HTTP/1.0')
[ -z "$r" ] && pass reload-new-rule-blocks || fail reload-new-rule-blocks "got '$r'"
r=$(request 10.10.2.2 'GET /?id=1 UNION SELECT 1 HTTP/1.0')
[ "$r" = 'GET /?id=1 UNION SELECT 1 HTTP/1.0' ] && pass reload-old-rule-gone || fail reload-old-rule-gone "got '$r'"

# The driver's counters, printed when it stops.
kill "$DRIVER"; i=0
while kill -0 "$DRIVER" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$DRIVER" 2>/dev/null && fail driver-stops "still running after 3 s" || pass driver-stops
st=$(grep '"type":"stats"' "$LAB_TMP/events")
case "$st" in
*'"blocked":0,'* | *'"segments_dropped":0,'* | *'"segments_dropped":1,'* | "") fail stats "got '$st'" ;;
*) pass stats ;;
esac
echo "# $st"

# Without a listener the queue is bypassed: traffic passes uninspected.
r=$(request 10.10.2.2 'GET /?id=1 UNION SELECT 1 HTTP/1.0')
[ "$r" = 'GET /?id=1 UNION SELECT 1 HTTP/1.0' ] && pass bypass-without-driver || fail bypass-without-driver "got '$r'"

lab_done
