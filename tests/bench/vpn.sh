#!/bin/sh
# VPN benchmarks, hvgate and its anchors side by side in one run:
#   vpn-vs-wggo     TCP throughput (iperf3, 1 and 4 streams) through an
#                   hvgate-to-hvgate tunnel and a wireguard-go-to-wireguard-go
#                   tunnel between the same two namespaces, rounds interleaved,
#                   same flows. The anchor is the newest wireguard-go, read from
#                   ../shared/anchors/ beside the repository (the benchmark fails
#                   when it is missing); Debian's older wireguard-go is a second,
#                   labelled line. Also data per CPU-second of the tunnel
#                   processes (utime+stime from /proc/PID/stat, both ends).
#   vpn-handshakes  handshakes per second one hvgate instance completes (a
#                   generator in another namespace, hvgate responding), against
#                   the Curve25519 operations per second that bound it.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WGGO_NEW_VERSION=0.0.20250522
WGGO_NEW=${VPN_BENCH_WGGO:-$ROOT/../shared/anchors/wireguard-go-$WGGO_NEW_VERSION}
# A git worktree elsewhere: the anchors sit beside the main checkout.
if [ ! -x "$WGGO_NEW" ] && [ -z "${VPN_BENCH_WGGO:-}" ]; then
	common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
	[ -n "$common" ] && WGGO_NEW=$(dirname "$common")/../shared/anchors/wireguard-go-$WGGO_NEW_VERSION
fi
if [ ! -x "$WGGO_NEW" ]; then
	echo "vpn bench: the anchor wireguard-go $WGGO_NEW_VERSION is missing (looked for $WGGO_NEW)" >&2
	echo "bench: vpn-vs-wggo FAILED: anchor wireguard-go-$WGGO_NEW_VERSION missing"
	exit 1
fi
WGGO_OLD=$(command -v wireguard-go)
. "$ROOT/tests/lib/netns.sh"
set -u
RUN=/var/run/wireguard
SECS=${VPN_BENCH_SECONDS:-4}
REPEAT=${VPN_BENCH_REPEAT:-2}
HZ=$(getconf CLK_TCK)
HA=${LAB}ha; HB=${LAB}hb; SA=${LAB}sa; SB=${LAB}sb; GA=${LAB}ga; GB=${LAB}gb; DA=${LAB}da; DB=${LAB}db
lab_ns x; lab_ns y
lab_link x vy y vx
lab_addr x vy 192.168.90.1/24; lab_addr y vx 192.168.90.2/24
K=$LAB_TMP; umask 077
for n in ha hb sa sb ga gb da db; do wg genkey > "$K/$n"; done
pub() { wg pubkey < "$K/$1"; }
lastpid() { echo "${LAB_PIDS##* }"; }

# Each tunnel: its two processes' pids, kept to read their CPU time.
bg x env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$HA" -f; P_h="$(lastpid)"
bg y env HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$HB" -f; P_h="$P_h $(lastpid)"
# The same engine with its AEAD work on the engine thread alone.
bg x env HVGATE_VPN_WORKERS=1 HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$SA" -f; P_s="$(lastpid)"
bg y env HVGATE_VPN_WORKERS=1 HVGATE_VPN_STATE_DIR="$K/state" "$HVGATE" vpn run "$SB" -f; P_s="$P_s $(lastpid)"
bg x env WG_PROCESS_FOREGROUND=1 "$WGGO_NEW" "$GA"; P_g="$(lastpid)"
bg y env WG_PROCESS_FOREGROUND=1 "$WGGO_NEW" "$GB"; P_g="$P_g $(lastpid)"
D=0
if [ -n "$WGGO_OLD" ]; then
	D=1
	bg x "$WGGO_OLD" -f "$DA"; P_d="$(lastpid)"
	bg y "$WGGO_OLD" -f "$DB"; P_d="$P_d $(lastpid)"
else
	echo "  (Debian's wireguard-go is not installed: its line is left out)"
fi
IFS_ALL="$HA $HB $SA $SB $GA $GB"; [ $D = 1 ] && IFS_ALL="$IFS_ALL $DA $DB"
for i in $IFS_ALL; do wait_for 5 test -S "$RUN/$i.sock" || { echo "no socket for $i"; exit 1; }; done
# tunnel NAME-A NAME-B KEY-A KEY-B PORT-A PORT-B NET
tunnel() {
	at x wg set "$1" private-key "$K/$3" listen-port "$5" peer "$(pub "$4")" endpoint 192.168.90.2:"$6" allowed-ips "$7.2/32"
	at y wg set "$2" private-key "$K/$4" listen-port "$6" peer "$(pub "$3")" endpoint 192.168.90.1:"$5" allowed-ips "$7.1/32"
	lab_addr x "$1" "$7.1/24"; lab_addr y "$2" "$7.2/24"
	ip -n "$LAB-x" link set "$1" up; ip -n "$LAB-y" link set "$2" up
	wait_for 10 ping_ok x "$7.2" || { echo "tunnel $1 down"; exit 1; }
}
tunnel "$HA" "$HB" ha hb 52001 52002 10.91.0
tunnel "$GA" "$GB" ga gb 52003 52004 10.92.0
tunnel "$SA" "$SB" sa sb 52007 52008 10.95.0
[ $D = 1 ] && tunnel "$DA" "$DB" da db 52005 52006 10.93.0

# CPU ticks (utime+stime, all threads) of the given processes.
cpu_ticks() {
	t=0
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
	done
	echo $t
}
iperf_listening() { at y ss -Hltn "src $1 and sport = :5201" | grep -q .; }
# iperf_run ADDR STREAMS PIDS...: prints "bits_per_second cpu_ticks".
iperf_run() {
	a=$1; s=$2; shift 2
	at y iperf3 -s -1 -D -B "$a" >/dev/null 2>&1
	wait_for 3 iperf_listening "$a" || true
	c0=$(cpu_ticks "$@")
	at x timeout $((SECS + 10)) iperf3 -c "$a" -t "$SECS" -P "$s" -J > "$K/iperf.json" 2>/dev/null
	c1=$(cpu_ticks "$@")
	b=$(python3 -c "import json; print(int(json.load(open('$K/iperf.json'))['end']['sum_received']['bits_per_second']))" 2>/dev/null || echo 0)
	echo "$b $((c1 - c0))"
}
# Per stream count: best throughput per tunnel, and bytes over CPU-seconds
# summed over all rounds.
for s in 1 4; do
	for t in h s g d r; do eval "best_$t=0 bits_$t=0 ticks_$t=0 cur_$t=0"; done
	rounds=""
	r=0
	while [ $r -lt "$REPEAT" ]; do
		line="  $s stream(s) run $r:"
		for t in h s g d r; do
			case $t in
			h) a=10.91.0.2; pids=$P_h;;
			s) a=10.95.0.2; pids=$P_s;;
			g) a=10.92.0.2; pids=$P_g;;
			d) [ $D = 1 ] || continue; a=10.93.0.2; pids=$P_d;;
			r) a=192.168.90.2; pids="";;
			esac
			# shellcheck disable=SC2086
			set -- $(iperf_run "$a" "$s" $pids)
			eval "[ $1 -gt \$best_$t ] && best_$t=$1; bits_$t=\$((bits_$t + $1 * SECS)); ticks_$t=\$((ticks_$t + $2))"
			eval "cur_$t=$1"
			line="$line $t=$(($1 / 1000000))"
		done
		# hvgate over wireguard-go within the round: less load-sensitive
		# than best against best.
		rounds="$rounds $(echo "scale=2; $cur_h / ($cur_g + 1)" | bc)"
		echo "$line Mbit/s (h hvgate, s hvgate engine thread only, g wireguard-go $WGGO_NEW_VERSION, d Debian's, r raw veth)"
		r=$((r + 1))
	done
	# Mbit per CPU-second of both tunnel processes.
	for t in h s g d r; do
		eval "b=\$bits_$t c=\$ticks_$t"
		eval "eff_$t=$(echo "scale=0; $b / 1000000 * $HZ / ($c + 1)" | bc)"
		eval "mb_$t=\$((best_$t / 1000000))"
	done
	ratio=$(echo "scale=2; $best_h / ($best_g + 1)" | bc)
	eratio=$(echo "scale=2; $eff_h / ($eff_g + 1)" | bc)
	printf '  %-26s %12s %12s %8s\n' "$s stream(s), best of $REPEAT" "hvgate" "wg-go $WGGO_NEW_VERSION" "ratio"
	printf '  %-26s %7s Mb/s %7s Mb/s %8s\n' "throughput" "$mb_h" "$mb_g" "$ratio"
	printf '  %-26s %7s Mb/s %7s Mb/s %8s\n' "per CPU-second" "$eff_h" "$eff_g" "$eratio"
	# shellcheck disable=SC2086
	printf '  %-26s %s\n' "same-round ratios" "$(printf '%s\n' $rounds | sort -n | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "median %.2f, min %.2f, max %.2f over %d rounds", m, v[1], v[NR], NR}')"
	echo "bench: vpn-vs-wggo-${s}s ours=${mb_h}Mbit/s baseline=${mb_g}Mbit/s ratio=$ratio"
	echo "bench: vpn-per-cpu-${s}s ours=${eff_h}Mbit/cpu-s baseline=${eff_g}Mbit/cpu-s ratio=$eratio"
	sratio=$(echo "scale=2; $best_h / ($best_s + 1)" | bc)
	printf '  %-26s %7s Mb/s %7s Mb/s %8s  (hvgate with HVGATE_VPN_WORKERS=1, per CPU-s %s)\n' "vs engine thread only" "$mb_h" "$mb_s" "$sratio" "$eff_s"
	echo "bench: vpn-threads-${s}s ours=${mb_h}Mbit/s baseline=${mb_s}Mbit/s ratio=$sratio"
	vratio=$(echo "scale=2; $best_h / ($best_r + 1)" | bc)
	printf '  %-26s %7s Mb/s %7s Mb/s %8s  (fraction of the raw veth rate)\n' "vs raw veth" "$mb_h" "$mb_r" "$vratio"
	if [ $D = 1 ]; then
		dratio=$(echo "scale=2; $best_h / ($best_d + 1)" | bc)
		printf '  %-26s %7s Mb/s %7s Mb/s %8s  (Debian wireguard-go, per CPU-s %s)\n' "vs Debian's" "$mb_h" "$mb_d" "$dratio" "$eff_d"
		echo "bench: vpn-vs-debian-wggo-${s}s ours=${mb_h}Mbit/s baseline=${mb_d}Mbit/s ratio=$dratio"
	fi
done

# ---- handshakes per second ----
# Stop the tunnels: the handshake test wants the CPU to itself.
# shellcheck disable=SC2086
for p in $P_h $P_g $P_s ${P_d:-}; do kill "$p" 2>/dev/null; done
# On the way out hvgate's engines print their metrics: how many AEAD batches
# the measurement (docs/vpn.md, Performance) gave the workers.
wait_for 3 sh -c "cat $K/bg.* 2>/dev/null | grep -q 'vpn_peers{ifname=.$HB.}'" || true
grep -h "hvgate_vpn_crypt_batches_total" "$K"/bg.* 2>/dev/null | grep -e "\"$HA\"" -e "\"$HB\"" | sed 's/^/  /'
rel=$(realpath --relative-to="$ROOT" "$HVGATE_BUILD")
make -s -C "$ROOT" BUILD="$rel" "$rel/tests/vpn/bench_handshake" >/dev/null || { echo "cannot build bench_handshake"; exit 1; }
"$HVGATE_BUILD/tests/vpn/bench_handshake" > "$K/hs.txt" || { echo "bench_handshake failed"; exit 1; }
sed 's/^/  /' "$K/hs.txt"
hs=$(awk '/^handshakes_per_sec/ {print $2}' "$K/hs.txt")
dh=$(awk '/^x25519_per_sec/ {print $2}' "$K/hs.txt")
per=$(awk '/^dh_per_handshake/ {print $2}' "$K/hs.txt")
ratio=$(echo "scale=2; $hs * $per / $dh" | bc)
echo "bench: vpn-handshakes ours=${hs}/s baseline=${dh}DH/s ratio=$ratio"
