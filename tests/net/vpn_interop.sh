#!/bin/sh
# hvgate's VPN against wireguard-go and the real `wg` tool, in namespaces.
#   a: hvgate (`hvgate vpn run`), b: wireguard-go, veth between them (v4+v6).
#   tunnel 1 (v4 outer, timers scaled 20x): hvgate initiates.
#   tunnel 2 (v6 outer, unscaled): wireguard-go initiates.
#   tunnel 3: mismatched pre-shared keys, must never complete.
#   c/d: the same static configuration on wireguard-go and hvgate, for a
#   byte-for-byte comparison of `wg show` / `wg showconf`.
. "$(dirname "$0")/../lib/netns.sh"
set -u
RUN=/var/run/wireguard
A1=${LAB}a1; B1=${LAB}b1; A2=${LAB}a2; B2=${LAB}b2; A3=${LAB}a3; B3=${LAB}b3; C=${LAB}c; D=${LAB}d

command -v wireguard-go >/dev/null && command -v wg >/dev/null || { skip vpn_interop "wireguard-go or wg missing"; exit 0; }
lab_ns a; lab_ns b; lab_ns c; lab_ns d
lab_link a va b vb
lab_addr a va 192.168.70.1/24; lab_addr b vb 192.168.70.2/24
lab_addr a va fd70::1/64; lab_addr b vb fd70::2/64
K=$LAB_TMP; umask 077
for n in a1 b1 a2 b2 a3 b3 psk1 psk3a psk3b; do wg genkey > "$K/$n"; done
pub() { wg pubkey < "$K/$1"; }

# Engines: hvgate in the foreground under bg (so cleanup kills it), and
# wireguard-go likewise; wait for their UAPI sockets.
bg a env HVGATE_VPN_TIME_SCALE=0.05 HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A1" -f
bg a env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A2" -f
bg a env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A3" -f
bg b wireguard-go -f "$B1"; bg b wireguard-go -f "$B2"; bg b wireguard-go -f "$B3"
for i in $A1 $A2 $A3 $B1 $B2 $B3; do wait_for 5 test -S "$RUN/$i.sock" || fail "socket_$i" "no UAPI socket"; done

# `hvgate vpn run` without -f returns only once the socket exists.
at c "$HVGATE" vpn run "$C" && [ -S "$RUN/$C.sock" ] && pass vpn_run_daemon_socket_ready || fail vpn_run_daemon_socket_ready

at a wg set "$A1" private-key "$K/a1" listen-port 51801 peer "$(pub b1)" preshared-key "$K/psk1" \
	endpoint 192.168.70.2:51811 allowed-ips 10.71.0.2/32,fd71::2/128
at b wg set "$B1" private-key "$K/b1" listen-port 51811 peer "$(pub a1)" preshared-key "$K/psk1" \
	allowed-ips 10.71.0.1/32,fd71::1/128
at a wg set "$A2" private-key "$K/a2" listen-port 51802 peer "$(pub b2)" allowed-ips 10.72.0.2/32
at b wg set "$B2" private-key "$K/b2" listen-port 51812 peer "$(pub a2)" endpoint "[fd70::1]:51802" \
	allowed-ips 10.72.0.1/32
at a wg set "$A3" private-key "$K/a3" listen-port 51803 peer "$(pub b3)" preshared-key "$K/psk3a" \
	endpoint 192.168.70.2:51813 allowed-ips 10.73.0.2/32
at b wg set "$B3" private-key "$K/b3" listen-port 51813 peer "$(pub a3)" preshared-key "$K/psk3b" \
	endpoint 192.168.70.1:51803 allowed-ips 10.73.0.1/32
for t in 1 2 3; do
	lab_addr a "${LAB}a$t" "10.7$t.0.1/24"; lab_addr b "${LAB}b$t" "10.7$t.0.2/24"
	ip -n "$LAB-a" link set "${LAB}a$t" up; ip -n "$LAB-b" link set "${LAB}b$t" up
done
lab_addr a "$A1" fd71::1/64; lab_addr b "$B1" fd71::2/64

# ---- handshakes and pings, both directions of initiation ----
wait_for 10 ping_ok a 10.71.0.2 && pass hvgate_initiates_ping_v4 || fail hvgate_initiates_ping_v4
wait_for 5 ping_ok a fd71::2 && pass hvgate_inner_ipv6_ping || fail hvgate_inner_ipv6_ping
wait_for 10 ping_ok b 10.72.0.1 && pass wggo_initiates_over_ipv6_outer || fail wggo_initiates_over_ipv6_outer
ping_ok a 10.72.0.2 && pass hvgate_answers_wggo_session || fail hvgate_answers_wggo_session
at a wg show "$A2" endpoints | grep -q "\[fd70::2\]:51812" && pass ipv6_outer_endpoint_learned \
	|| fail ipv6_outer_endpoint_learned "$(at a wg show "$A2" endpoints)"

# ---- wg show against hvgate: recent handshake, moving counters ----
hs=$(at a wg show "$A1" latest-handshakes | awk '{print $2}')
now=$(date +%s)
[ -n "$hs" ] && [ "$hs" -gt 0 ] && [ $((now - hs)) -le 30 ] && pass wg_show_recent_handshake \
	|| fail wg_show_recent_handshake "latest=$hs now=$now"
rx1=$(at a wg show "$A1" transfer | awk '{print $2}')
ping_ok a 10.71.0.2
rx2=$(at a wg show "$A1" transfer | awk '{print $2}')
[ "$rx2" -gt "$rx1" ] && pass wg_show_bytes_move || fail wg_show_bytes_move "$rx1 -> $rx2"
at a wg show "$A1" | grep -q "latest handshake: " && pass wg_show_prints_peer || fail wg_show_prints_peer

# The last sent handshake timestamp is kept on disk (12 bytes of TAI64N).
[ "$(stat -c %s "$K/state/$A1.tai64n" 2>/dev/null)" = 12 ] && pass tai64n_timestamp_persisted \
	|| fail tai64n_timestamp_persisted "$(ls -l "$K/state" 2>&1 | tr '\n' ' ')"

# ---- TCP both ways (iperf3 -t 3) ----
iperf_ok() { # ROLE_SERVER ROLE_CLIENT ADDR [-R]
	at "$1" iperf3 -s -1 -D -B "$3" >/dev/null 2>&1; sleep 0.3
	at "$2" timeout 15 iperf3 -c "$3" -t 3 ${4:-} -J > "$LAB_TMP/iperf.json" 2>&1 || return 1
	bps=$(python3 -c "import json,sys; print(int(json.load(open('$LAB_TMP/iperf.json'))['end']['sum_received']['bits_per_second']))" 2>/dev/null)
	echo "iperf3 $2->$1 ${4:-} ${bps:-0} bit/s"
	[ "${bps:-0}" -gt 1000000 ]
}
iperf_ok b a 10.71.0.2 && pass tcp_hvgate_to_wggo || fail tcp_hvgate_to_wggo
iperf_ok b a 10.71.0.2 -R && pass tcp_wggo_to_hvgate || fail tcp_wggo_to_hvgate

# ---- rekey (timers scaled 0.05: REKEY_AFTER_TIME 6 s) ----
hs1=$(at a wg show "$A1" latest-handshakes | awk '{print $2}')
i=0; rekeyed=no
while [ $i -lt 12 ]; do
	at a ping -c 4 -i 0.25 -W 1 10.71.0.2 >/dev/null 2>&1
	hs2=$(at a wg show "$A1" latest-handshakes | awk '{print $2}')
	[ "$hs2" -gt "$hs1" ] && { rekeyed=yes; break; }
	i=$((i + 1))
done
[ $rekeyed = yes ] && pass rekey_after_time_observed || fail rekey_after_time_observed "$hs1 -> $hs2"
ping_ok a 10.71.0.2 && pass traffic_after_rekey || fail traffic_after_rekey

# ---- roaming: wireguard-go's side moves to a new address ----
# (A new subnet: deleting a primary address would take its secondaries along.)
lab_addr a va 192.168.71.1/24; lab_addr b vb 192.168.71.3/24
ip -n "$LAB-b" addr del 192.168.70.2/24 dev vb
ip -n "$LAB-b" route add 192.168.70.0/24 dev vb src 192.168.71.3
wait_for 10 ping_ok b 10.71.0.1 && pass traffic_after_peer_roams || fail traffic_after_peer_roams
at a wg show "$A1" endpoints | grep -q "192.168.71.3:51811" && pass endpoint_follows_roaming \
	|| fail endpoint_follows_roaming "$(at a wg show "$A1" endpoints)"

# ---- allowed-ips: an inner source outside the peer's allowed-ips is dropped ----
rxpk() { ip -n "$LAB-a" -s -j link show "$A1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['rx']['packets'])"; }
send_udp() { # SRC COUNT: UDP datagrams from SRC to 10.71.0.1 through wireguard-go's tunnel
	at b /usr/bin/python3 -c "
import sys, logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
from scapy.all import IP, UDP, Raw, send, conf
conf.verb = 0
send(IP(src='$1', dst='10.71.0.1')/UDP(sport=4000, dport=9)/Raw(b'x'*32), iface='$B1', count=$2)
"
}
r0=$(rxpk); send_udp 10.99.99.99 5; sleep 0.5; r1=$(rxpk)
send_udp 10.71.0.2 5; sleep 0.5; r2=$(rxpk)
[ $((r1 - r0)) -eq 0 ] && pass spoofed_inner_source_dropped || fail spoofed_inner_source_dropped "rx $r0 -> $r1"
[ $((r2 - r1)) -eq 5 ] && pass allowed_inner_source_delivered || fail allowed_inner_source_delivered "rx $r1 -> $r2"

# ---- wrong pre-shared key: never a handshake ----
at a ping -c 3 -W 1 10.73.0.2 >/dev/null 2>&1; at b ping -c 3 -W 1 10.73.0.1 >/dev/null 2>&1
sleep 1
h3=$(at a wg show "$A3" latest-handshakes | awk '{print $2}')
h3b=$(at b wg show "$B3" latest-handshakes | awk '{print $2}')
[ "$h3" = 0 ] && [ "$h3b" = 0 ] && ! ping_ok a 10.73.0.2 && pass wrong_psk_no_handshake \
	|| fail wrong_psk_no_handshake "hvgate=$h3 wggo=$h3b"

# ---- `wg` output: hvgate byte for byte as wireguard-go, same configuration ----
at d wireguard-go "$D" >/dev/null 2>&1
wait_for 5 test -S "$RUN/$D.sock"
cat > "$LAB_TMP/same.conf" <<CONF
[Interface]
PrivateKey = $(cat "$K/a1")
ListenPort = 51900
FwMark = 0x1234

[Peer]
PublicKey = $(pub b1)
PresharedKey = $(cat "$K/psk1")
Endpoint = 192.0.2.7:51820
AllowedIPs = 10.80.0.0/16, 10.81.1.0/24, fd80::/64
PersistentKeepalive = 25

[Peer]
PublicKey = $(pub b2)
Endpoint = [2001:db8::9]:1234
AllowedIPs = 0.0.0.0/0
CONF
at c wg setconf "$C" "$LAB_TMP/same.conf"; at d wg setconf "$D" "$LAB_TMP/same.conf"
# wireguard-go lists peers in Go map order (random): compare the set of
# peer blocks, each block kept byte for byte.
mask() { sed -e "s/$C/IFACE/; s/$D/IFACE/" | awk 'BEGIN { RS = ""; ORS = "\n" } { gsub(/\n/, "\\n"); print }' | sort; }
masklines() { sed -e "s/$C/IFACE/; s/$D/IFACE/" | sort; }
at c wg showconf "$C" | mask > "$LAB_TMP/c.showconf"; at d wg showconf "$D" | mask > "$LAB_TMP/d.showconf"
cmp -s "$LAB_TMP/c.showconf" "$LAB_TMP/d.showconf" && pass wg_showconf_identical \
	|| fail wg_showconf_identical "$(diff "$LAB_TMP/c.showconf" "$LAB_TMP/d.showconf" | head -5 | tr '\n' ' ')"
at c wg show "$C" | mask > "$LAB_TMP/c.show"; at d wg show "$D" | mask > "$LAB_TMP/d.show"
cmp -s "$LAB_TMP/c.show" "$LAB_TMP/d.show" && pass wg_show_identical \
	|| fail wg_show_identical "$(diff "$LAB_TMP/c.show" "$LAB_TMP/d.show" | head -5 | tr '\n' ' ')"
at c wg show "$C" dump | masklines > "$LAB_TMP/c.dump"; at d wg show "$D" dump | masklines > "$LAB_TMP/d.dump"
cmp -s "$LAB_TMP/c.dump" "$LAB_TMP/d.dump" && pass wg_show_dump_identical \
	|| fail wg_show_dump_identical "$(diff "$LAB_TMP/c.dump" "$LAB_TMP/d.dump" | head -5 | tr '\n' ' ')"
# The live tunnel too: hvgate's and wireguard-go's views agree on everything
# but times and counters (masked), keys swapped.
at a wg show "$A1" dump | awk 'NR>1 {print $1, $2, $4, $8}' > "$LAB_TMP/a1.peer"
[ "$(awk '{print $1}' "$LAB_TMP/a1.peer")" = "$(pub b1)" ] && pass wg_dump_live_peer || fail wg_dump_live_peer
at c wg set "$C" peer "$(pub b2)" remove; at d wg set "$D" peer "$(pub b2)" remove
at c wg show "$C" dump | masklines > "$LAB_TMP/c.dump"; at d wg show "$D" dump | masklines > "$LAB_TMP/d.dump"
cmp -s "$LAB_TMP/c.dump" "$LAB_TMP/d.dump" && pass wg_set_remove_identical || fail wg_set_remove_identical

# ---- hvgate vpn show ----
"$HVGATE" vpn show "$A1" | grep -q "$(pub b1)" && pass hvgate_vpn_show || fail hvgate_vpn_show
"$HVGATE" vpn show "$A1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0]['peers'][0]['rx_bytes']>0" \
	&& pass hvgate_vpn_show_json || fail hvgate_vpn_show_json

# ---- the TUN goes away: the engine exits and removes its socket ----
ip -n "$LAB-c" link del "$C"
wait_for 5 sh -c "! test -e $RUN/$C.sock" && pass engine_exits_when_interface_deleted || fail engine_exits_when_interface_deleted
ip -n "$LAB-d" link del "$D" 2>/dev/null

# ---- handshake retries: 1 + 19 initiations (kernel timers.c), then give up ----
# Timers scaled 0.05: REKEY_TIMEOUT 0.25 s, REKEY_ATTEMPT_TIME 4.5 s. The
# endpoint takes the datagrams and never answers.
A4=${LAB}a4
bg a env HVGATE_VPN_TIME_SCALE=0.05 HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A4" -f
wait_for 5 test -S "$RUN/$A4.sock"
at a wg set "$A4" private-key "$K/a3" peer "$(pub b3)" endpoint 127.0.0.1:9 allowed-ips 10.75.0.2/32
lab_addr a "$A4" 10.75.0.1/24; ip -n "$LAB-a" link set "$A4" up
at a ping -c 1 -W 1 10.75.0.2 >/dev/null 2>&1
sleep 7
tx1=$(at a wg show "$A4" transfer | awk '{print $3}')
sleep 2
tx2=$(at a wg show "$A4" transfer | awk '{print $3}')
[ "$tx1" = $((20 * 148)) ] && [ "$tx1" = "$tx2" ] && pass handshake_retries_then_gives_up \
	|| fail handshake_retries_then_gives_up "tx $tx1 then $tx2 bytes, want $((20 * 148))"

# ---- wg-quick with hvgate as its userspace implementation ----
Q=${LAB}q
printf '#!/bin/sh\nexec "%s" vpn run "$1"\n' "$HVGATE" > "$LAB_TMP/hvgate-go"; chmod 755 "$LAB_TMP/hvgate-go"
cat > "$LAB_TMP/$Q.conf" <<CONF
[Interface]
PrivateKey = $(cat "$K/a2")
Address = 10.74.0.1/24
ListenPort = 51804

[Peer]
PublicKey = $(pub b2)
AllowedIPs = 10.74.0.2/32
Endpoint = 192.0.2.1:51820
CONF
if at d env WG_QUICK_USERSPACE_IMPLEMENTATION="$LAB_TMP/hvgate-go" wg-quick up "$LAB_TMP/$Q.conf" >"$LAB_TMP/wgq.log" 2>&1 \
	&& at d wg show "$Q" allowed-ips | grep -q 10.74.0.2/32; then
	pass wg_quick_up_with_hvgate
else
	fail wg_quick_up_with_hvgate "$(tail -3 "$LAB_TMP/wgq.log" | tr '\n' ' ')"
fi
at d wg-quick down "$LAB_TMP/$Q.conf" >/dev/null 2>&1
wait_for 5 sh -c "! test -e $RUN/$Q.sock" && pass wg_quick_down_stops_engine || fail wg_quick_down_stops_engine
lab_done
