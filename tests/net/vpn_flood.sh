#!/bin/sh
# Under a flood of handshake initiations (valid mac1, from another host) the
# hvgate engine answers with cookie replies instead of doing Curve25519 work,
# and a legitimate wireguard-go peer still completes its handshake (it gets a
# cookie, retries with mac2, and passes the per-host rate limit).
. "$(dirname "$0")/../lib/netns.sh"
set -u
RUN=/var/run/wireguard
A=${LAB}a; B=${LAB}b
command -v wireguard-go >/dev/null || { skip vpn_flood "wireguard-go missing"; exit 0; }
lab_ns a; lab_ns b; lab_ns c
lab_link a vb b va; lab_link a vc c va
lab_addr a vb 192.168.80.1/24; lab_addr b va 192.168.80.2/24
lab_addr a vc 192.168.81.1/24; lab_addr c va 192.168.81.2/24
K=$LAB_TMP; umask 077
wg genkey > "$K/a"; wg genkey > "$K/b"
bg a env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A" -f
bg b wireguard-go -f "$B"
wait_for 5 test -S "$RUN/$A.sock"; wait_for 5 test -S "$RUN/$B.sock"
at a wg set "$A" private-key "$K/a" listen-port 51820 peer "$(wg pubkey < "$K/b")" allowed-ips 10.80.0.2/32
at b wg set "$B" private-key "$K/b" peer "$(wg pubkey < "$K/a")" endpoint 192.168.80.1:51820 allowed-ips 10.80.0.1/32
lab_addr a "$A" 10.80.0.1/24; lab_addr b "$B" 10.80.0.2/24
ip -n "$LAB-a" link set "$A" up; ip -n "$LAB-b" link set "$B" up

# 3000 initiations per second for 25 s (bounded inside the generator too).
at c /usr/bin/python3 "$(dirname "$0")/vpn_flood.py" 192.168.81.1 51820 "$(wg pubkey < "$K/a")" 3000 25 "$K/flood.out" &
FLOOD=$!; LAB_PIDS="$LAB_PIDS $FLOOD"
sleep 2
t0=$(date +%s)
wait_for 20 ping_ok b 10.80.0.1 && ok=yes || ok=no
t1=$(date +%s)
if [ $ok = yes ] && kill -0 $FLOOD 2>/dev/null; then
	pass legit_handshake_during_flood
	echo "legit peer through after $((t1 - t0)) s of flood"
else
	fail legit_handshake_during_flood "ok=$ok after $((t1 - t0)) s"
fi
wait $FLOOD
read sent cookies < "$K/flood.out"
echo "flood: $sent initiations sent, $cookies cookie replies received"
[ "$cookies" -gt 0 ] && pass cookie_replies_under_load || fail cookie_replies_under_load "sent=$sent cookies=$cookies"
# Without load (flood over, one second later), handshakes need no cookie.
sleep 2
at b wg set "$B" peer "$(wg pubkey < "$K/a")" remove
at b wg set "$B" peer "$(wg pubkey < "$K/a")" endpoint 192.168.80.1:51820 allowed-ips 10.80.0.1/32
wait_for 4 ping_ok b 10.80.0.1 && pass handshake_after_flood_without_cookie_delay || fail handshake_after_flood_without_cookie_delay
lab_done
