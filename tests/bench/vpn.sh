#!/bin/sh
# VPN benchmarks, hvgate and its baseline side by side in one run:
#   vpn-vs-wggo     TCP throughput (iperf3) through an hvgate-to-hvgate tunnel
#                   and a wireguard-go-to-wireguard-go tunnel between the same
#                   two namespaces, one after the other, same flows.
#   vpn-handshakes  handshakes per second one hvgate instance completes (a
#                   generator in another namespace, hvgate responding), against
#                   the Curve25519 operations per second that bound it.
. "$(dirname "$0")/../lib/netns.sh"
set -u
RUN=/var/run/wireguard
SECS=${VPN_BENCH_SECONDS:-4}
REPEAT=${VPN_BENCH_REPEAT:-2}
HA=${LAB}ha; HB=${LAB}hb; GA=${LAB}ga; GB=${LAB}gb
lab_ns x; lab_ns y
lab_link x vy y vx
lab_addr x vy 192.168.90.1/24; lab_addr y vx 192.168.90.2/24
K=$LAB_TMP; umask 077
for n in ha hb ga gb; do wg genkey > "$K/$n"; done
pub() { wg pubkey < "$K/$1"; }

bg x env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$HA" -f
bg y env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$HB" -f
bg x wireguard-go -f "$GA"; bg y wireguard-go -f "$GB"
for i in $HA $HB $GA $GB; do wait_for 5 test -S "$RUN/$i.sock" || { echo "no socket for $i"; exit 1; }; done
at x wg set "$HA" private-key "$K/ha" listen-port 52001 peer "$(pub hb)" endpoint 192.168.90.2:52002 allowed-ips 10.91.0.2/32
at y wg set "$HB" private-key "$K/hb" listen-port 52002 peer "$(pub ha)" endpoint 192.168.90.1:52001 allowed-ips 10.91.0.1/32
at x wg set "$GA" private-key "$K/ga" listen-port 52003 peer "$(pub gb)" endpoint 192.168.90.2:52004 allowed-ips 10.92.0.2/32
at y wg set "$GB" private-key "$K/gb" listen-port 52004 peer "$(pub ga)" endpoint 192.168.90.1:52003 allowed-ips 10.92.0.1/32
lab_addr x "$HA" 10.91.0.1/24; lab_addr y "$HB" 10.91.0.2/24
lab_addr x "$GA" 10.92.0.1/24; lab_addr y "$GB" 10.92.0.2/24
for i in $HA $GA; do ip -n "$LAB-x" link set "$i" up; done
for i in $HB $GB; do ip -n "$LAB-y" link set "$i" up; done
wait_for 10 ping_ok x 10.91.0.2 || { echo "hvgate tunnel down"; exit 1; }
wait_for 10 ping_ok x 10.92.0.2 || { echo "wireguard-go tunnel down"; exit 1; }

# iperf3 through one tunnel; prints received bits per second.
iperf_bps() {
	at y iperf3 -s -1 -D -B "$1" >/dev/null 2>&1; sleep 0.3
	at x timeout $((SECS + 10)) iperf3 -c "$1" -t "$SECS" -J > "$K/iperf.json" 2>/dev/null
	python3 -c "import json; print(int(json.load(open('$K/iperf.json'))['end']['sum_received']['bits_per_second']))" 2>/dev/null || echo 0
}
best_h=0; best_g=0; r=0
while [ $r -lt "$REPEAT" ]; do
	h=$(iperf_bps 10.91.0.2); g=$(iperf_bps 10.92.0.2)
	printf '  run %d: hvgate %6.0f Mbit/s   wireguard-go %6.0f Mbit/s\n' "$r" "$(echo "$h / 1000000" | bc -l)" "$(echo "$g / 1000000" | bc -l)"
	[ "$h" -gt "$best_h" ] && best_h=$h
	[ "$g" -gt "$best_g" ] && best_g=$g
	r=$((r + 1))
done
mh=$(echo "scale=0; $best_h / 1000000" | bc); mg=$(echo "scale=0; $best_g / 1000000" | bc)
ratio=$(echo "scale=2; $best_h / ($best_g + 1)" | bc)
printf '  %-16s %12s %12s %8s\n' "tcp throughput" "hvgate" "wireguard-go" "ratio"
printf '  %-16s %9s Mb/s %7s Mb/s %8s\n' "best of $REPEAT x ${SECS}s" "$mh" "$mg" "$ratio"
echo "bench: vpn-vs-wggo ours=${mh}Mbit/s baseline=${mg}Mbit/s ratio=$ratio"

# ---- handshakes per second ----
# Stop the wireguard-go pair: the handshake test wants the CPU to itself.
for p in $(ip netns pids "$LAB-x") $(ip netns pids "$LAB-y"); do
	case "$(cat /proc/$p/comm 2>/dev/null)" in wireguard-go) kill "$p" ;; esac
done
rel=$(realpath --relative-to=. "$HVGATE_BUILD")
make -s BUILD="$rel" "$rel/tests/vpn/bench_handshake" >/dev/null || { echo "cannot build bench_handshake"; exit 1; }
"$HVGATE_BUILD/tests/vpn/bench_handshake" > "$K/hs.txt" || { echo "bench_handshake failed"; exit 1; }
cat "$K/hs.txt" | sed 's/^/  /'
hs=$(awk '/^handshakes_per_sec/ {print $2}' "$K/hs.txt")
dh=$(awk '/^x25519_per_sec/ {print $2}' "$K/hs.txt")
per=$(awk '/^dh_per_handshake/ {print $2}' "$K/hs.txt")
ratio=$(echo "scale=2; $hs * $per / $dh" | bc)
echo "bench: vpn-handshakes ours=${hs}/s baseline=${dh}DH/s ratio=$ratio"
