#!/bin/sh
# hvgated runs the policy's `vpn` block: the lab3 client namespace is a
# WireGuard peer (wireguard-go + wg) that reaches the server zone through the
# daemon's TUN in the fw namespace; the policy decides what passes from the
# VPN zone. Then: show vpn, the metrics page, a reload that adds a peer and
# keeps the first tunnel (same handshake, no lost ping), a reload without
# the vpn block that removes the TUN.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh
set -u
RUN=/var/run/wireguard

command -v wireguard-go >/dev/null && command -v wg >/dev/null || { skip daemon_vpn "wireguard-go or wg missing"; exit 0; }
lab3_up || { fail lab-up; exit 1; }
# Unique interface names: /var/run/wireguard (UAPI sockets) is shared by
# every namespace.
V=${LAB}v; W=${LAB}w; P=${LAB}p
K=$LAB_TMP/keys; mkdir -p "$K"; chmod 700 "$K"
(umask 077; for n in fw peer peer2; do wg genkey > "$K/$n"; done)
pub() { wg pubkey < "$K/$1"; }
# vpn_field IFNAME KEY: a field of one VPN in `show vpn --json`.
vpn_field() { hv show vpn --json | python3 -c 'import json,sys
for v in json.load(sys.stdin)["vpns"]:
    if v["ifname"] == sys.argv[1]: print(v.get(sys.argv[2]) or "")' "$1" "$2"; }
POL="$LAB_TMP/policy.hvp"
PORT=51820
policy() { # policy [with-second-peer|no-vpn]
	{
		echo 'zone lan { interface "lan0" }'
		echo 'zone dmz { interface "dmz0" }'
		if [ "${1:-}" != no-vpn ]; then
			cat <<P
vpn $V {
  listen-port $PORT
  private-key-file "$K/fw"
  address 10.77.0.1/24
  peer one { public-key "$(pub peer)" allowed-ips 10.77.0.2/32 }
P
			[ "${1:-}" = with-second-peer ] &&
				echo "  peer two { public-key \"$(pub peer2)\" allowed-ips { 10.77.0.3/32, 10.78.0.0/24 } }"
			echo '}'
			[ "${1:-}" = two-vpns ] &&
				echo "vpn $W { listen-port 51821 private-key-file \"$K/peer2\" address 10.79.0.1/24 }"
			echo "pass from lan to self service udp port $PORT"
			echo "pass from $V to dmz service { tcp port 80, ping }"
			echo "pass from $V to self service ping"
		fi
		echo 'default block'
		echo 'pass from lan to dmz service ping'
	} > "$POL"
}
policy
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }
at fw ip link show "$V" >/dev/null 2>&1 && pass tun-created-in-fw-namespace || fail tun-created-in-fw-namespace "$(tail -5 "$DAEMON_LOG")"
ip link show "$V" >/dev/null 2>&1 && fail tun-not-on-host "the TUN is in the host namespace" || pass tun-not-on-host
at fw ip -4 addr show dev "$V" | grep -q "10.77.0.1/24" && pass tun-address-set || fail tun-address-set "$(at fw ip addr show dev "$V")"
at fw ip route show 10.77.0.2/32 | grep -q "dev $V.*proto 212" && pass allowed-ips-route || fail allowed-ips-route "$(at fw ip route)"
at fw ss -uln | grep -q ":51820 " && pass udp-socket-in-fw-namespace || fail udp-socket-in-fw-namespace

# The peer.
bg client wireguard-go -f "$P"
wait_for 5 test -S "$RUN/$P.sock" || fail peer-socket "wireguard-go did not start"
at client wg set "$P" private-key "$K/peer" peer "$(pub fw)" endpoint 10.10.1.1:51820 \
	allowed-ips 10.77.0.0/24,10.10.2.0/24
at client ip addr add 10.77.0.2/24 dev "$P"
at client ip link set "$P" up
at client ip route add 10.10.2.0/24 dev "$P"

wait_for 10 ping_ok client 10.77.0.1 && pass ping-fw-through-tunnel || fail ping-fw-through-tunnel "$(tail -5 "$DAEMON_LOG")"
ping_ok client 10.10.2.2 && pass ping-server-through-tunnel || fail ping-server-through-tunnel
r=$(probe client tcp 10.10.2.2 80); [ "$r" = open ] && pass tcp80-through-tunnel || fail tcp80-through-tunnel "saw $r"
r=$(probe client tcp 10.10.2.2 22); [ "$r" = timeout ] && pass tcp22-blocked-from-vpn-zone || fail tcp22-blocked-from-vpn-zone "saw $r"
# The server saw the tunnel address, not the client's LAN address.
at fw conntrack -L -p tcp --dport 80 2>/dev/null | grep -q "src=10.77.0.2 dst=10.10.2.2" \
	&& pass server-sees-tunnel-source || fail server-sees-tunnel-source "$(at fw conntrack -L 2>&1 | head -5)"

# show vpn: the peer, a recent handshake, moving counters.
s1=$(hv show vpn --json)
hs1=$(json_get "$s1" vpns.0.peers.0.last_handshake)
rx1=$(json_get "$s1" vpns.0.peers.0.rx_bytes)
now=$(date +%s)
[ "$(json_get "$s1" vpns.0.ifname)" = "$V" ] && [ "$(json_get "$s1" vpns.0.peers.0.public_key)" = "$(pub peer)" ] \
	&& pass show-vpn-peer || fail show-vpn-peer "$s1"
[ "$(json_get "$s1" vpns.0.public_key)" = "$(pub fw)" ] && pass show-vpn-own-public-key || fail show-vpn-own-public-key "$s1"
[ -n "$hs1" ] && [ "$hs1" -gt 0 ] && [ $((now - hs1)) -le 30 ] && pass show-vpn-recent-handshake \
	|| fail show-vpn-recent-handshake "last_handshake=$hs1 now=$now"
json_get "$s1" vpns.0.peers.0.endpoint | grep -q "^10.10.1.2:" && pass show-vpn-endpoint-learned || fail show-vpn-endpoint-learned "$s1"
at client ping -c 3 -i 0.2 -W 1 10.10.2.2 >/dev/null 2>&1
s2=$(hv show vpn --json)
rx2=$(json_get "$s2" vpns.0.peers.0.rx_bytes)
[ "$rx2" -gt "$rx1" ] && pass show-vpn-bytes-move "($rx1 -> $rx2)" || fail show-vpn-bytes-move "$rx1 -> $rx2"
hv show vpn
hv show vpn | grep -q "$(pub peer)" && pass show-vpn-human || fail show-vpn-human "$(hv show vpn 2>&1 | head -5)"

# Metrics.
at fw curl -s "http://127.0.0.1:$DAEMON_METRICS_PORT/metrics" > "$LAB_TMP/metrics.txt"
daemon_alive && pass daemon-alive-after-metrics || fail daemon-alive-after-metrics "$(grep -v '^    #' "$DAEMON_LOG" | tail -40)"
grep -q "^hvgate_vpn_up{ifname=\"$V\"} 1" "$LAB_TMP/metrics.txt" && pass metrics-vpn-up || fail metrics-vpn-up
grep -q "^hvgate_vpn_peers{.*$V.*} 1" "$LAB_TMP/metrics.txt" && pass metrics-vpn-peers || fail metrics-vpn-peers "$(grep vpn "$LAB_TMP/metrics.txt" | head -5)"
grep -q "^hvgate_vpn_peer_rx_bytes_total{.*} [1-9]" "$LAB_TMP/metrics.txt" && pass metrics-vpn-bytes \
	|| fail metrics-vpn-bytes "$(grep vpn_peer "$LAB_TMP/metrics.txt" | head -20)"
grep -q "^hvgate_vpn_peer_handshakes_total{.*} [1-9]" "$LAB_TMP/metrics.txt" && pass metrics-vpn-handshakes \
	|| fail metrics-vpn-handshakes "$(grep handshake "$LAB_TMP/metrics.txt" | head -5)"
grep -q "^hvgate_vpn_drops_total{" "$LAB_TMP/metrics.txt" && pass metrics-vpn-drops || fail metrics-vpn-drops
# Every VPN sample after the TYPE line of its family, families contiguous.
python3 - "$LAB_TMP/metrics.txt" <<'PY' > "$LAB_TMP/prom.out" 2>&1
import sys
typed, done, cur = set(), set(), None
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); continue
    if line.startswith("#") or not line.startswith("hvgate_vpn"):
        continue
    fam = line.split("{")[0].split(" ")[0]
    assert fam in typed, "no TYPE for " + fam
    if fam != cur:
        assert fam not in done, fam + " not contiguous"
        done.add(fam); cur = fam
print("ok", len(done))
PY
grep -q "^ok" "$LAB_TMP/prom.out" && pass "metrics-vpn-families-typed($(cut -d' ' -f2 "$LAB_TMP/prom.out"))" \
	|| fail metrics-vpn-families-typed "$(tail -2 "$LAB_TMP/prom.out")"

# A UAPI client that sends a byte every 0.5 s and never finishes its request:
# the tunnel, `show vpn` and `wg show` do not wait for it, and it is cut off
# (the engine thread serves the socket without blocking; a request has 2 s).
python3 - "$RUN/$V.sock" > "$LAB_TMP/slow-uapi.txt" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(0.5)
print("connected", flush=True)
start = time.time(); msg = b"get=1\n" + b"x" * 100
for b in msg:
    try:
        s.send(bytes([b]))
        if s.recv(100) == b"": break
    except socket.timeout:
        continue
    except OSError:
        break
    if time.time() - start > 12: break
print("closed after %.1f s" % (time.time() - start))
PY
SLOW=$!
wait_for 10 grep -q connected "$LAB_TMP/slow-uapi.txt"
at client ping -c 15 -i 0.2 -W 2 10.10.2.2 > "$LAB_TMP/ping-slow.txt" 2>&1
max=$(sed -n 's|.*= [0-9.]*/[0-9.]*/\([0-9.]*\)/.*|\1|p' "$LAB_TMP/ping-slow.txt")
grep -q " 0% packet loss" "$LAB_TMP/ping-slow.txt" && [ -n "$max" ] && [ "${max%.*}" -lt 500 ] \
	&& pass "slow-uapi-client-tunnel-not-stalled(max ${max} ms)" \
	|| fail slow-uapi-client-tunnel-not-stalled "$(tail -2 "$LAB_TMP/ping-slow.txt")"
wait $SLOW
grep -q "closed after" "$LAB_TMP/slow-uapi.txt" && [ "$(sed -n 's/closed after \([0-9]*\).*/\1/p' "$LAB_TMP/slow-uapi.txt")" -lt 5 ] \
	&& pass "slow-uapi-client-cut-off($(grep "closed after" "$LAB_TMP/slow-uapi.txt"))" || fail slow-uapi-client-cut-off "$(cat "$LAB_TMP/slow-uapi.txt")"
python3 - "$RUN/$V.sock" > "$LAB_TMP/slow-uapi.txt" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
print("connected", flush=True)
for i in range(6):
    try: s.send(b"g")
    except OSError: break
    time.sleep(0.5)
PY
SLOW=$!
wait_for 10 grep -q connected "$LAB_TMP/slow-uapi.txt"
sleep 0.3
t0=$(date +%s%N)
hv show vpn --json > /dev/null && wg show "$V" > /dev/null 2>&1; rc=$?
t1=$(date +%s%N)
[ $rc = 0 ] && [ $(((t1 - t0) / 1000000)) -lt 1000 ] && pass "slow-uapi-client-show-vpn-and-wg-answer($(((t1 - t0) / 1000000)) ms)" \
	|| fail slow-uapi-client-show-vpn-and-wg-answer "rc=$rc $(((t1 - t0) / 1000000)) ms"
wait $SLOW

# Reload with a second peer: the first tunnel goes on (continuous ping,
# same handshake).
at client ping -c 30 -i 0.1 -W 1 10.10.2.2 > "$LAB_TMP/ping.txt" 2>&1 &
PING=$!
sleep 0.5
policy with-second-peer
out=$(hv reload 2>&1) && pass reload-add-peer || fail reload-add-peer "$out"
wait $PING
grep -q " 0% packet loss" "$LAB_TMP/ping.txt" && pass reload-keeps-tunnel-no-loss \
	|| fail reload-keeps-tunnel-no-loss "$(tail -2 "$LAB_TMP/ping.txt" | head -1)"
s3=$(hv show vpn --json)
hs3=$(json_get "$s3" vpns.0.peers.0.last_handshake)
[ "$hs3" = "$hs1" ] && pass reload-keeps-session-no-new-handshake || fail reload-keeps-session-no-new-handshake "$hs1 -> $hs3"
[ "$(json_get "$s3" vpns.0.peers.1.public_key)" = "$(pub peer2)" ] && pass reload-second-peer-shown || fail reload-second-peer-shown "$s3"
at fw ip route show 10.78.0.0/24 | grep -q "dev $V" && pass reload-second-peer-route || fail reload-second-peer-route "$(at fw ip route)"

# A bad key file (group-readable) on reload: reported with the location, the
# running device keeps its tunnel and the daemon lives.
chmod 0644 "$K/fw"
hv reload --json > "$LAB_TMP/reload.json" 2>&1
chmod 0600 "$K/fw"
grep -q "\"vpn_errors\":\[\"$V: the key file is accessible" "$LAB_TMP/reload.json" && pass key-error-in-reload-reply \
	|| fail key-error-in-reload-reply "$(cat "$LAB_TMP/reload.json")"
grep -q "policy.hvp:[0-9]*:[0-9]*: vpn $V: the key file is accessible" "$DAEMON_LOG" && pass key-error-logged-with-location \
	|| fail key-error-logged-with-location "$(tail -3 "$DAEMON_LOG")"
daemon_alive && ping_ok client 10.10.2.2 && pass key-error-tunnel-survives || fail key-error-tunnel-survives

# A second vpn block whose port is taken: reported with its location, the
# first VPN goes on; once the port is free, the next apply starts it.
bg fw socat -u UDP4-RECV:51821 /dev/null
SOCAT=${LAB_PIDS##* }
wait_for 3 sh -c "ip netns exec $LAB-fw ss -uln | grep -q ':51821 '"
policy two-vpns
hv reload --json > "$LAB_TMP/reload.json" 2>&1
grep -q "\"vpn_errors\":\[\"$W: listen-port 51821: " "$LAB_TMP/reload.json" && pass port-in-use-in-reload-reply \
	|| fail port-in-use-in-reload-reply "$(cat "$LAB_TMP/reload.json")"
grep -q "policy.hvp:[0-9]*:[0-9]*: vpn $W: listen-port 51821: " "$DAEMON_LOG" && pass port-in-use-logged-with-location \
	|| fail port-in-use-logged-with-location "$(tail -3 "$DAEMON_LOG")"
grep ": vpn " "$DAEMON_LOG"
[ -n "$(vpn_field "$W" error)" ] && pass port-in-use-shown || fail port-in-use-shown "$(hv show vpn --json)"
daemon_alive && ping_ok client 10.10.2.2 && pass port-in-use-first-vpn-unaffected || fail port-in-use-first-vpn-unaffected
kill "$SOCAT"; sleep 0.2
hv reload --json > "$LAB_TMP/reload.json" 2>&1
grep -q '"ok":true' "$LAB_TMP/reload.json" && ! grep -q vpn_errors "$LAB_TMP/reload.json" &&
	pass reload-reply-without-vpn-errors || fail reload-reply-without-vpn-errors "$(cat "$LAB_TMP/reload.json")"
[ "$(vpn_field "$W" up)" = True ] && at fw ip link show "$W" >/dev/null 2>&1 && pass port-freed-next-apply-starts \
	|| fail port-freed-next-apply-starts "$(hv show vpn --json)"

# Back to one peer and one vpn, through load + commit: the second peer's
# route and the second TUN go.
policy
hv load "$POL" >/dev/null 2>&1
out=$(hv commit 2>&1) || fail commit "$out"
at fw ip link show "$W" >/dev/null 2>&1 && fail commit-removes-second-vpn || pass commit-removes-second-vpn
at fw ip route show 10.78.0.0/24 | grep -q . && fail reload-remove-peer-route "$(at fw ip route show 10.78.0.0/24)" || pass reload-remove-peer-route
# exactly the first peer is left (a reply that does not parse fails)
peers=$(hv show vpn --json | python3 -c 'import json,sys
for v in json.load(sys.stdin)["vpns"]:
    if v["ifname"] == sys.argv[1]: print(" ".join(p["public_key"] for p in v["peers"]))' "$V" 2>&1)
[ "$peers" = "$(pub peer)" ] && pass reload-remove-peer || fail reload-remove-peer "$peers"

# A new listen-port on reload: the running device moves to it, the session
# goes on once the peer sends there.
PORT=51822
policy
hv reload >/dev/null 2>&1
at fw ss -uln | grep -q ":51822 " && ! at fw ss -uln | grep -q ":51820 " && pass reload-moves-listen-port \
	|| fail reload-moves-listen-port "$(at fw ss -uln)"
at client wg set "$P" peer "$(pub fw)" endpoint 10.10.1.1:51822
wait_for 10 ping_ok client 10.10.2.2 && pass tunnel-on-new-port || fail tunnel-on-new-port

# A `commit confirmed` without the vpn block, not confirmed: the TUN goes,
# then the revert brings it back and the peer reconnects.
policy no-vpn
hv load "$POL" >/dev/null 2>&1
hv commit confirmed 2 >/dev/null 2>&1
wait_for 2 sh -c "! ip netns exec $LAB-fw ip link show $V >/dev/null 2>&1" && pass confirmed-commit-removes-tun \
	|| fail confirmed-commit-removes-tun
wait_for 8 sh -c "ip netns exec $LAB-fw ip link show $V >/dev/null 2>&1" && pass revert-restores-tun || fail revert-restores-tun
wait_for 10 ping_ok client 10.10.2.2 && pass revert-tunnel-reconnects || fail revert-tunnel-reconnects

# Without the vpn block: the TUN goes.
policy no-vpn
hv reload >/dev/null 2>&1
wait_for 3 sh -c "! ip netns exec $LAB-fw ip link show $V >/dev/null 2>&1" && pass reload-without-vpn-removes-tun \
	|| fail reload-without-vpn-removes-tun
out=$(hv show vpn --json)
[ "$(json_get "$out" vpns)" = "[]" ] && pass show-vpn-empty || fail show-vpn-empty "$out"

daemon_stop
[ "${DAEMON_RC:-1}" = 0 ] && pass daemon-stops-cleanly || fail daemon-stops-cleanly "rc=${DAEMON_RC:-?}"

# The shipped unit runs with ProtectSystem=strict: /run/wireguard must be
# made writable for it, and, being shared with other WireGuard software, must
# not be a RuntimeDirectory= that systemd deletes when hvgated stops (unless
# preserved); hvgate's tmpfiles.d entry makes it. systemd is not PID 1 where
# these suites run (CI is a chroot), so this reads the unit file rather than
# starting it, and runs systemd-tmpfiles on the entry in a scratch root.
python3 - appliance/hvgated.service > "$LAB_TMP/unit.out" 2>&1 <<'PY'
import sys
props = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if "=" in line and not line.startswith(("#", ";", "[")):
        k, v = line.split("=", 1)
        props.setdefault(k, []).extend(v.split())
assert props.get("ProtectSystem") == ["strict"], props.get("ProtectSystem")
rw = props.get("RuntimeDirectory", []) + [p.lstrip("-").replace("/run/", "", 1) for p in props.get("ReadWritePaths", [])]
assert "wireguard" in rw, "no RuntimeDirectory or ReadWritePaths for /run/wireguard: %s" % rw
if "wireguard" in props.get("RuntimeDirectory", []):
    assert props.get("RuntimeDirectoryPreserve") == ["yes"], \
        "RuntimeDirectory=wireguard without RuntimeDirectoryPreserve=yes: stopping hvgated deletes /run/wireguard"
caps = props.get("CapabilityBoundingSet", [])
assert "CAP_SETUID" in caps and "CAP_SETGID" in caps, caps
print("ok")
PY
grep -q '^ok' "$LAB_TMP/unit.out" && pass unit-file-run-wireguard-writable-static || fail unit-file-run-wireguard-writable-static "$(tail -1 "$LAB_TMP/unit.out")"
# The tmpfiles.d entry makes /run/wireguard (0755, root) and the image
# installs it.
if ! command -v systemd-tmpfiles >/dev/null; then
	fail tmpfiles-makes-run-wireguard "systemd-tmpfiles is not installed (package systemd; tests/lib/deps.sh installs it)"
else
	mkdir -p "$LAB_TMP/tmpfiles-root"
	out=$(systemd-tmpfiles --root="$LAB_TMP/tmpfiles-root" --create "$PWD/appliance/hvgated.tmpfiles" 2>&1)
	got=$(stat -c '%a %U %F' "$LAB_TMP/tmpfiles-root/run/wireguard" 2>&1)
	[ "$got" = "755 root directory" ] && grep -q 'appliance/hvgated.tmpfiles.*tmpfiles.d/hvgate.conf' image/build.sh &&
		pass tmpfiles-makes-run-wireguard || fail tmpfiles-makes-run-wireguard "$got $out"
fi
# What such a sandbox does without it: /run/wireguard read-only (a private
# mount namespace). The error names the socket that could not be made. The
# tools this needs are checked first, and a mount that fails says so in the
# daemon log: an environment that cannot set the check up fails it with the
# reason, never with a wrong answer.
policy
vpn_has_error() { [ -n "$(vpn_field "$V" error)" ]; }
missing=""
for tool in unshare mount; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
	fail read-only-run-wireguard-error-names-path "needs$missing (package mount / util-linux; tests/lib/deps.sh installs them)"
else
	mkdir -p "$RUN"
	if ! daemon_start unshare -m --propagation private sh -c '
		mount -t tmpfs -o ro,size=64k tmpfs /run/wireguard ||
			{ echo "test setup: mount of a read-only tmpfs on /run/wireguard failed" >&2; exit 97; }
		exec "$@"' sh; then
		fail read-only-run-wireguard-error-names-path "the daemon did not start: $(tail -3 "$DAEMON_LOG" | tr '\n' ' ')"
	else
		# a restart runs the last committed revision (here the one without
		# the vpn block): the configured policy with it runs on reload
		hv reload >/dev/null 2>&1
		wait_for 5 vpn_has_error
		err=$(vpn_field "$V" error)
		case "$err" in
		"cannot create the UAPI socket /var/run/wireguard/$V.sock: Read-only file system") pass "read-only-run-wireguard-error-names-path($err)" ;;
		*) fail read-only-run-wireguard-error-names-path "error '$err'; $(hv show vpn --json 2>&1 | head -c 300); log: $(tail -3 "$DAEMON_LOG" | tr '\n' ' ')" ;;
		esac
	fi
fi
daemon_stop
lab_done
