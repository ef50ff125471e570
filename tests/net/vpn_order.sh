#!/bin/sh
# The engine spreads encryption and decryption over worker threads (one per
# online CPU); packets must still reach the TUN device in order within a
# flow. Engine A hands every batch to its workers (HVGATE_VPN_PARALLEL=always),
# engine B decides by measuring (the default), so each direction crosses
# the workers on one side at least. Numbered UDP streams (several flows at once, full-size datagrams so
# that batches fill) go through an hvgate-to-hvgate tunnel; the far side
# checks that no sequence number arrives after a higher one of its flow.
# Losses are allowed (UDP), reordering is not.
. "$(dirname "$0")/../lib/netns.sh"
set -u
RUN=/var/run/wireguard
A=${LAB}a; B=${LAB}b
PY="$(dirname "$0")/vpn_order.py"
lab_ns x; lab_ns y
lab_link x vy y vx
lab_addr x vy 192.168.94.1/24; lab_addr y vx 192.168.94.2/24
K=$LAB_TMP; umask 077
wg genkey > "$K/a"; wg genkey > "$K/b"
bg x env HVGATE_VPN_PARALLEL=always HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$A" -f; PA=${LAB_PIDS##* }
bg y env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$B" -f; PB=${LAB_PIDS##* }
for i in $A $B; do wait_for 5 test -S "$RUN/$i.sock" || { fail engine_started "no socket for $i"; exit 1; }; done
at x wg set "$A" private-key "$K/a" listen-port 52011 peer "$(wg pubkey < "$K/b")" endpoint 192.168.94.2:52012 allowed-ips 10.94.0.2/32
at y wg set "$B" private-key "$K/b" listen-port 52012 peer "$(wg pubkey < "$K/a")" endpoint 192.168.94.1:52011 allowed-ips 10.94.0.1/32
lab_addr x "$A" 10.94.0.1/24; lab_addr y "$B" 10.94.0.2/24
ip -n "$LAB-x" link set "$A" up; ip -n "$LAB-y" link set "$B" up
wait_for 10 ping_ok x 10.94.0.2 || { fail tunnel_up; exit 1; }

# With more than one CPU each engine runs worker threads besides its own.
cpus=$(nproc)
threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
if [ "$cpus" -gt 1 ]; then
	if [ "$(threads "$PA")" -gt 1 ] && [ "$(threads "$PB")" -gt 1 ]; then
		pass crypt_workers_running
	else
		fail crypt_workers_running "threads: $(threads "$PA") and $(threads "$PB") on $cpus CPUs"
	fi
else
	skip crypt_workers_running "one CPU"
fi

FLOWS=4; COUNT=${VPN_ORDER_COUNT:-20000}
run_order() { # NAME SENDER RECEIVER ADDR
	at "$3" timeout 60 /usr/bin/python3 "$PY" recv "$4" 5300 40 "$K/$1.out" &
	rp=$!; LAB_PIDS="$LAB_PIDS $rp"
	wait_for 5 sh -c "ip netns exec $LAB-$3 ss -Hlun 'sport = :5300' | grep -q ." || true
	at "$2" timeout 60 /usr/bin/python3 "$PY" send "$4" 5300 "$FLOWS" "$COUNT"
	wait "$rp"
	read -r got reordered flows < "$K/$1.out" || { fail "$1" "no result"; return; }
	echo "$1: $got of $((FLOWS * COUNT)) datagrams arrived, $reordered out of order, $flows flows"
	# Too few arrivals would prove nothing about batches: ask for 1/40
	# (a loaded machine or a sanitizer build drops most of the flood).
	if [ "$flows" -eq "$FLOWS" ] && [ "$got" -ge $((FLOWS * COUNT / 40)) ] && [ "$reordered" -eq 0 ]; then
		pass "$1"
	else
		fail "$1" "$got arrived, $reordered reordered, $flows flows"
	fi
}
run_order in_order_x_to_y x y 10.94.0.2
run_order in_order_y_to_x y x 10.94.0.1
lab_done
