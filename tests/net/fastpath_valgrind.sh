#!/bin/sh
# hvgated under valgrind (memcheck, full leak check) with its inspection fast
# path busy: TCP and UDP flows judged by content and by protocol field
# (tls.sni, http.host, http.path, dns.qname), passed, cleared and blocked
# (with resets), over IPv4 and IPv6, the conntrack lookups and label
# updates of the ctnetlink way included. No error, nothing lost, and the
# fast path's counters show the traffic was judged.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

command -v valgrind > /dev/null || { skip valgrind "valgrind not installed"; exit 0; }
lab3_up || { fail lab-up; exit 1; }
# servers that read a line, and a UDP echo
bg server socat TCP6-LISTEN:8000,fork,reuseaddr,ipv6only=0 SYSTEM:'read l; echo "got $l"'
wait_for 5 sh -c "ip netns exec $LAB-server ss -ltn | grep -q ':8000 '" || fail server-up

POL="$LAB_TMP/vg.hvp"
cat > "$POL" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
pass from lan to dmz service tcp port 8000 inspect {
  block content /(?i)union\s+select/ log "sqli"
  pass  http.path "/health"
  block http.host "*.evil.example"
}
pass from lan to dmz service tcp port 443 inspect {
  block tls.sni "*.evil.example"
}
pass from lan to dmz service udp port 53 inspect {
  block dns.qname "*.tracker.example"
}
P
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
DAEMON_START_SECONDS=90
if daemon_start valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=no --suppressions=tests/net/daemon_valgrind.supp --log-file="$LAB_TMP/vg.log"; then
	pass start-under-valgrind
else
	fail start-under-valgrind "$(tail -5 "$DAEMON_LOG")"; exit 1
fi

ask() {
	case "$1" in *:*) a="[$1]" ;; *) a=$1 ;; esac
	printf '%b' "$2" | at client timeout 10 socat -T 8 -t 8 - "TCP:$a:8000" 2>/dev/null | head -1
}
r=$(ask 10.10.2.2 'GET /index HTTP/1.1\r\nHost: good.example\r\n\r\n'); [ -n "$r" ] && pass benign-answered || fail benign-answered
r=$(ask fd00:10:2::2 'GET /health HTTP/1.1\r\nHost: x.evil.example\r\n\r\n'); [ -n "$r" ] && pass health-pass-first || fail health-pass-first
r=$(ask 10.10.2.2 'GET /?q=1 UNION SELECT 1 HTTP/1.1\r\n\r\n'); [ -z "$r" ] && pass sqli-blocked || fail sqli-blocked "'$r'"
r=$(ask fd00:10:2::2 'GET / HTTP/1.1\r\nHost: WWW.EVIL.EXAMPLE.\r\n\r\n'); [ -z "$r" ] && pass host-blocked || fail host-blocked "'$r'"
for n in good.example www.evil.example; do
	at client timeout 15 python3 tests/net/fastpath_fields.py tls 10.10.2.2 443 "$n" 4 > /dev/null 2>&1
done
for n in www.example.org ads.tracker.example; do
	at client timeout 10 python3 -c '
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x100, 1, 0, 0, 0)
for l in sys.argv[1].split("."):
    q += bytes([len(l)]) + l.encode()
q += b"\0\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, ("10.10.2.2", 53))
try: s.recv(512)
except OSError: pass' "$n"
done
st=$(hv status --json)
p=$(json_get "$st" fastpath.packets); b=$(json_get "$st" fastpath.blocked)
[ "${p:-0}" -ge 10 ] && [ "${b:-0}" -ge 4 ] && pass "fastpath-judged(packets=$p blocked=$b)" ||
	fail fastpath-judged "packets=$p blocked=$b"
DAEMON_STOP_TENTHS=300
daemon_stop
i=0; while [ ! -s "$LAB_TMP/vg.log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ "$DAEMON_RC" = 0 ] && pass valgrind-exit-0 || fail valgrind-exit-0 "rc=$DAEMON_RC"
grep -q "ERROR SUMMARY: 0 errors" "$LAB_TMP/vg.log" && pass valgrind-no-errors \
	|| fail valgrind-no-errors "$(grep -B2 -A12 'uninitialised\|Invalid' "$LAB_TMP/vg.log" | head -40)"
grep -q "definitely lost: 0 bytes\|no leaks are possible" "$LAB_TMP/vg.log" && pass valgrind-no-leak \
	|| fail valgrind-no-leak "$(grep -A30 'definitely lost in' "$LAB_TMP/vg.log" | head -30)"
lab_done
