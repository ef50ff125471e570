#!/bin/sh
# The timer state machine between two hvgate engines, timers scaled 20x
# (HVGATE_VPN_TIME_SCALE=0.05: REKEY_AFTER_TIME 6 s, REJECT_AFTER_TIME 9 s,
# KEEPALIVE_TIMEOUT 0.5 s): traffic flows across several rekeys without a
# gap, both sides initiating; after traffic stops, passive keepalives stop
# too; persistent keepalive (unscaled seconds are scaled as well) keeps
# sending on an idle tunnel.
. "$(dirname "$0")/../lib/netns.sh"
set -u
RUN=/var/run/wireguard
A=${LAB}a; B=${LAB}b
lab_ns a; lab_ns b
lab_link a vb b va
lab_addr a vb 192.168.85.1/24; lab_addr b va 192.168.85.2/24
K=$LAB_TMP; umask 077
wg genkey > "$K/a"; wg genkey > "$K/b"
for r in a b; do
	bg $r env HVGATE_VPN_TIME_SCALE=0.05 HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "${LAB}$r" -f
done
wait_for 5 test -S "$RUN/$A.sock"; wait_for 5 test -S "$RUN/$B.sock"
at a wg set "$A" private-key "$K/a" listen-port 51850 peer "$(wg pubkey < "$K/b")" endpoint 192.168.85.2:51851 allowed-ips 10.85.0.2/32
at b wg set "$B" private-key "$K/b" listen-port 51851 peer "$(wg pubkey < "$K/a")" endpoint 192.168.85.1:51850 allowed-ips 10.85.0.1/32
lab_addr a "$A" 10.85.0.1/24; lab_addr b "$B" 10.85.0.2/24
ip -n "$LAB-a" link set "$A" up; ip -n "$LAB-b" link set "$B" up

# Both sides send at once from the start (simultaneous initiations), for
# 20 s: at least three sessions follow each other.
at a ping -q -i 0.1 -w 20 10.85.0.2 > "$K/ping_a" 2>&1 &
PA=$!
at b ping -q -i 0.1 -w 20 10.85.0.1 > "$K/ping_b" 2>&1 &
PB=$!
hs_seen=""
i=0
while [ $i -lt 22 ]; do
	h=$(at a wg show "$A" latest-handshakes | awk '{print $2}')
	case " 0 $hs_seen " in *" $h "*) ;; *) hs_seen="$hs_seen $h" ;; esac
	sleep 1; i=$((i + 1))
done
wait $PA; wait $PB
loss_a=$(sed -nE 's/.* ([0-9.]+)% packet loss.*/\1/p' "$K/ping_a")
loss_b=$(sed -nE 's/.* ([0-9.]+)% packet loss.*/\1/p' "$K/ping_b")
n_hs=$(echo $hs_seen | wc -w)
echo "handshake times seen: $hs_seen; loss a->b ${loss_a}% b->a ${loss_b}%"
[ "$n_hs" -ge 3 ] && pass rekeys_under_traffic || fail rekeys_under_traffic "$n_hs distinct handshake times"
# A rekey must not interrupt traffic: allow the first packets before the
# first handshake (staged, at most a few) and nothing else.
awk -v a="${loss_a:-100}" -v b="${loss_b:-100}" 'BEGIN { exit !(a < 3 && b < 3) }' \
	&& pass no_loss_across_rekeys || fail no_loss_across_rekeys "loss a=$loss_a% b=$loss_b%"

# Idle: after the last data, one keepalive answers it, then silence.
sleep 2
t1=$(at a wg show "$A" transfer | awk '{print $3}')
sleep 3
t2=$(at a wg show "$A" transfer | awk '{print $3}')
[ "$t1" = "$t2" ] && pass idle_tunnel_is_silent || fail idle_tunnel_is_silent "tx $t1 -> $t2"

# Persistent keepalive every 20 "seconds" (1 s scaled): 32-byte keepalives,
# or a handshake once the session has expired.
at a wg set "$A" peer "$(wg pubkey < "$K/b")" persistent-keepalive 20
sleep 4
t3=$(at a wg show "$A" transfer | awk '{print $3}')
[ "$t3" -ge $((t2 + 3 * 32)) ] && pass persistent_keepalive_sends || fail persistent_keepalive_sends "tx $t2 -> $t3"
ping_ok a 10.85.0.2 && pass tunnel_usable_after_idle || fail tunnel_usable_after_idle
lab_done
