#!/bin/sh
# Protocol fields in inspect rules (docs/fastpath.md, "Protocol fields")
# through hvgated with real clients: openssl s_client and Python's ssl for
# tls.sni, curl for http.host and http.path, dig for dns.qname over UDP and
# TCP. Each field passes a good name and blocks a bad one, and each has an
# evasion attempt that must be blocked too: the server name cut across two
# TCP segments, the Host field cut across two segments, an encoded path with
# dot segments, a DNS name in upper case with a trailing dot. First match
# wins: `pass http.path "/health"` before `block http.host` lets a health
# check to the bad host by. Every block shows as an event naming its match's
# log prefix, and in the fast path's `blocked` counter.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

for t in openssl curl dig dnsmasq; do
	command -v "$t" >/dev/null 2>&1 || { skip fields "no $t (make deps)"; exit 0; }
done
lab3_up || { fail lab-up; exit 1; }

# servers: TLS on 8443 (a throw-away certificate), HTTP on 8081, DNS on 5353
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=lab -days 1 \
	-keyout "$LAB_TMP/key.pem" -out "$LAB_TMP/cert.pem" >/dev/null 2>&1 || fail cert
bg server openssl s_server -quiet -accept 8443 -cert "$LAB_TMP/cert.pem" -key "$LAB_TMP/key.pem" -www
mkdir -p "$LAB_TMP/www/admin" && echo ok > "$LAB_TMP/www/health" && echo hi > "$LAB_TMP/www/index.html"
echo secret > "$LAB_TMP/www/admin/x"
bg server python3 -m http.server 8081 --bind 10.10.2.2 --directory "$LAB_TMP/www"
bg server dnsmasq -k -u root -p 5353 --listen-address=10.10.2.2 --bind-interfaces --no-resolv \
	--no-hosts -C /dev/null --pid-file= --address=/#/192.0.2.7
wait_for 10 sh -c "[ \$(ip netns exec $LAB-server ss -ltn | grep -cE ':(8443|8081|5353) ') -eq 3 ]" ||
	fail servers-up "$(ip netns exec $LAB-server ss -ltn)"

POL="$LAB_TMP/fields.hvp"
cat > "$POL" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
pass from lan to dmz service tcp port 8443 inspect {
  block tls.sni "*.evil.example" log "sni"
}
pass from lan to dmz service tcp port 8081 inspect {
  pass  http.path "/health"
  block http.host "evil.example" log "host"
  block http.path /^\/admin\b/ log "path"
}
pass from lan to dmz service udp port 5353 inspect {
  block dns.qname "*.tracker.example" log "qname-udp"
}
pass from lan to dmz service tcp port 5353 inspect {
  block dns.qname "*.tracker.example" log "qname-tcp"
}
P
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi

# event PREFIX: a block event with that log prefix has been written
event() { wait_for 3 grep -q "\"prefix\":\"$1\".*\"verdict\":\"block\"\|\"verdict\":\"block\".*\"prefix\":\"$1\"" "$DAEMON_EVENTS"; }
sclient() {
	echo Q | at client timeout 8 openssl s_client -connect 10.10.2.2:8443 -servername "$1" 2>&1 |
		grep -c '^Server certificate\|BEGIN CERTIFICATE'
}
tlsraw() { at client timeout 10 python3 tests/net/fastpath_fields.py tls 10.10.2.2 8443 "$@" 2>&1; }
code() { at client timeout 8 curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" 2>/dev/null; }
httpraw() { at client timeout 10 python3 tests/net/fastpath_fields.py http 10.10.2.2 8081 "$@" 2>&1; }
digq() { at client timeout 8 dig -p 5353 @10.10.2.2 +short +time=2 +tries=1 "$@" 2>/dev/null | grep -v '^;;' | head -1; }

# --- tls.sni ------------------------------------------------------------------
[ "$(sclient www.good.example)" -ge 1 ] && pass sni-good-handshake || fail sni-good-handshake
[ "$(sclient www.evil.example)" -eq 0 ] && pass sni-evil-blocked || fail sni-evil-blocked "certificate received"
event sni && pass sni-event || fail sni-event "$(tail -2 "$DAEMON_EVENTS")"
r=$(tlsraw api.good.example 0); [ "$r" = handshake ] && pass sni-raw-good-handshake || fail sni-raw-good-handshake "$r"
# evasion: the name cut in the middle, two segments
r=$(tlsraw WWW.Evil.Example. 5); [ "$r" = no-answer ] && pass sni-split-blocked || fail sni-split-blocked "$r"
r=$(tlsraw www.evil.example 1); [ "$r" = no-answer ] && pass sni-split-at-first-byte-blocked ||
	fail sni-split-at-first-byte-blocked "$r"
r=$(tlsraw www.good.example 5); [ "$r" = handshake ] && pass sni-split-good-handshake || fail sni-split-good-handshake "$r"

# --- http.host / http.path ----------------------------------------------------
r=$(code http://10.10.2.2:8081/index.html); [ "$r" = 200 ] && pass http-good-answered || fail http-good-answered "$r"
r=$(code -H 'Host: EVIL.Example.:8081' http://10.10.2.2:8081/index.html); [ "$r" = 000 ] &&
	pass http-host-blocked || fail http-host-blocked "status $r"
event host && pass http-host-event || fail http-host-event
r=$(code http://10.10.2.2:8081/admin/x); [ "$r" = 000 ] && pass http-path-blocked || fail http-path-blocked "status $r"
event path && pass http-path-event || fail http-path-event
# evasion: dot segments, an empty segment and a percent escape (the server
# resolves them to /admin/x and would serve it)
r=$(code --path-as-is 'http://10.10.2.2:8081/pub/..//%61dmin/x'); [ "$r" = 000 ] &&
	pass http-encoded-path-blocked || fail http-encoded-path-blocked "status $r"
# evasion: the Host field cut across two segments
r=$(httpraw 'GET /index.html HTTP/1.1\r\nHo' 'st: evil.example\r\nConnection: close\r\n\r\n')
[ "$r" = no-answer ] && pass http-split-host-blocked || fail http-split-host-blocked "$r"
r=$(httpraw 'GET /index.html HTTP/1.1\r\nHo' 'st: good.example\r\nConnection: close\r\n\r\n')
case "$r" in "HTTP/1.0 200"*) pass http-split-good-answered ;; *) fail http-split-good-answered "$r" ;; esac
# first match wins: the health check passes before the host is looked at
r=$(code -H 'Host: evil.example' http://10.10.2.2:8081/health); [ "$r" = 200 ] &&
	pass http-health-pass-first || fail http-health-pass-first "status $r"

# --- dns.qname ----------------------------------------------------------------
r=$(digq www.good.example); [ "$r" = 192.0.2.7 ] && pass dns-good-answered || fail dns-good-answered "'$r'"
r=$(digq www.tracker.example); [ -z "$r" ] && pass dns-bad-blocked || fail dns-bad-blocked "'$r'"
event qname-udp && pass dns-udp-event || fail dns-udp-event
# evasion: upper case and a trailing dot
r=$(digq WWW.TRACKER.Example.); [ -z "$r" ] && pass dns-uppercase-blocked || fail dns-uppercase-blocked "'$r'"
r=$(digq +tcp www.good.example); [ "$r" = 192.0.2.7 ] && pass dns-tcp-good-answered || fail dns-tcp-good-answered "'$r'"
r=$(digq +tcp A.B.TRACKER.EXAMPLE); [ -z "$r" ] && pass dns-tcp-bad-blocked || fail dns-tcp-bad-blocked "'$r'"
event qname-tcp && pass dns-tcp-event || fail dns-tcp-event

st=$(hv status --json)
b=$(json_get "$st" fastpath.blocked)
[ "${b:-0}" -ge 9 ] && pass "status-blocked($b)" || fail status-blocked "blocked=$b"
daemon_alive && pass daemon-alive || fail daemon-alive
lab_done
