#!/bin/sh
# hvgated lifecycle in a lab namespace: --check-config exit codes; start and
# readiness; status; SIGHUP and `reload`; a bad configuration or policy on
# reload leaves the running ruleset byte-identical; a restart with an
# unchanged policy changes nothing in the kernel (generation id and block
# list kept); SIGTERM keeps the ruleset (on_stop keep) or removes it (flush).
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
daemon_conf "$POL"

# --check-config: 0 for a good file, 1 for a bad one (with file:line), 2 usage.
expect check-config-ok "$HVGATED" --check-config -c "$DAEMON_CONF"
expect check-config-default "$HVGATED" --check-config -c conf/hvgate.conf
sed 's/rate = 1000;/rate = 0;/' "$DAEMON_CONF" > "$LAB_TMP/bad.conf"
"$HVGATED" --check-config -c "$LAB_TMP/bad.conf" > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "bad.conf:5: setting 'log.rate': must be between 1 and 1000000" "$LAB_TMP/out" \
	&& pass check-config-bad-exit-1 || fail check-config-bad-exit-1 "rc=$rc $(cat "$LAB_TMP/out")"
"$HVGATED" --check-config -c /nonexistent.conf > /dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && pass check-config-missing-exit-1 || fail check-config-missing-exit-1 "rc=$rc"
"$HVGATED" --bogus > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && pass usage-exit-2 || fail usage-exit-2 "rc=$rc"

# Start.
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi
fw_ruleset | grep -q 'table inet hvgate' && pass ruleset-applied || fail ruleset-applied
fw_ruleset | grep -q 'comment "hvgate rev=1 hash=' && pass table-comment-rev-hash || fail table-comment-rev-hash
st=$(hv status --json)
[ "$(json_get "$st" running.revision)" = 1 ] && pass status-running-rev || fail status-running-rev "$st"
[ -S "$DAEMON_SOCK" ] && [ "$(stat -c %a "$DAEMON_SOCK")" = 660 ] && pass socket-mode-0660 \
	|| fail socket-mode-0660 "$(stat -c %a "$DAEMON_SOCK")"

# A second daemon on the same socket stops before touching the kernel.
g0=$(json_get "$(hv status --json)" genid)
timeout 10 "$HVGATED" -c "$DAEMON_CONF" > "$LAB_TMP/second.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "another hvgated is serving it" "$LAB_TMP/second.log" && pass second-daemon-refused \
	|| fail second-daemon-refused "rc=$rc $(cat "$LAB_TMP/second.log")"
[ "$(json_get "$(hv status --json)" genid)" = "$g0" ] && pass second-daemon-kernel-untouched || fail second-daemon-kernel-untouched
expect first-daemon-serving hv status

# A bad configuration on reload: error, nothing changes.
fw_ruleset > "$LAB_TMP/before"
cp "$DAEMON_CONF" "$LAB_TMP/good.conf"
sed -i 's/on_stop = "keep"/on_stop = "maybe"/' "$DAEMON_CONF"
hv reload > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "setting 'on_stop'" "$LAB_TMP/out" && pass reload-bad-config-refused \
	|| fail reload-bad-config-refused "rc=$rc $(cat "$LAB_TMP/out")"
kill -HUP "$DAEMON_PID"; sleep 0.5
grep -q "reload failed, nothing changed" "$DAEMON_LOG" && pass sighup-bad-config-logged || fail sighup-bad-config-logged
fw_ruleset > "$LAB_TMP/after"
cmp -s "$LAB_TMP/before" "$LAB_TMP/after" && pass bad-config-ruleset-identical \
	|| fail bad-config-ruleset-identical "$(diff "$LAB_TMP/before" "$LAB_TMP/after" | head -5)"
cp "$LAB_TMP/good.conf" "$DAEMON_CONF"

# netns, state_dir and the socket change only at restart.
sed -i "s|netns = \"$LAB-fw\"|netns = \"$LAB-other\"|" "$DAEMON_CONF"
hv reload > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "take effect at restart only" "$LAB_TMP/out" && pass reload-netns-change-refused \
	|| fail reload-netns-change-refused "rc=$rc $(cat "$LAB_TMP/out")"
cp "$LAB_TMP/good.conf" "$DAEMON_CONF"

# A bad policy on reload: error with the policy location, nothing changes.
cp "$POL" "$LAB_TMP/pol.good"
echo 'pass from nowhere to dmz' >> "$POL"
hv reload > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "policy.hvp:19" "$LAB_TMP/out" && pass reload-bad-policy-refused \
	|| fail reload-bad-policy-refused "rc=$rc $(cat "$LAB_TMP/out")"
fw_ruleset > "$LAB_TMP/after"
cmp -s "$LAB_TMP/before" "$LAB_TMP/after" && pass bad-policy-ruleset-identical || fail bad-policy-ruleset-identical
cp "$LAB_TMP/pol.good" "$POL"

# Block list element, to see it survive.
expect block-add hv block 192.0.2.77 for 1h
expect block-zone-add hv block 198.51.100.0/24 zone dmz for 1h

# A real reload (policy changed) by SIGHUP: new revision, block list kept.
echo 'pass from lan to dmz service tcp port 8080' >> "$POL"
kill -HUP "$DAEMON_PID"
wait_for 5 sh -c "fw_out=\$(ip netns exec $LAB-fw nft list table inet hvgate); echo \"\$fw_out\" | grep -q 'rev=2 '" \
	&& pass sighup-reload-applies || fail sighup-reload-applies "$(tail -3 "$DAEMON_LOG")"
fw_ruleset | grep -q '192.0.2.77' && pass block-survives-reload || fail block-survives-reload
expect reload-verb hv reload
[ "$(json_get "$(hv status --json)" running.revision)" = 2 ] && pass reload-unchanged-same-rev \
	|| fail reload-unchanged-same-rev

# Restart with the same policy: nothing applied, generation unchanged.
g1=$(json_get "$(hv status --json)" genid)
daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-exit-0 || fail stop-exit-0 "rc=$DAEMON_RC"
fw_ruleset | grep -q 'table inet hvgate' && pass stop-keeps-ruleset || fail stop-keeps-ruleset
[ ! -e "$DAEMON_SOCK" ] && pass stop-removes-socket || fail stop-removes-socket
daemon_start || fail restart-ready
grep -q "already in the kernel: not re-applied" "$DAEMON_LOG" && pass restart-unchanged-not-applied \
	|| fail restart-unchanged-not-applied "$(tail -3 "$DAEMON_LOG")"
g2=$(json_get "$(hv status --json)" genid)
[ -n "$g1" ] && [ "$g1" = "$g2" ] && pass restart-genid-unchanged || fail restart-genid-unchanged "$g1 -> $g2"
fw_ruleset | grep -q '192.0.2.77' && pass block-survives-restart || fail block-survives-restart
hv show blocked --json | grep -q '"addr":"198.51.100.0/24","tenant":"","zone":"dmz"' && pass zone-block-survives-restart ||
	fail zone-block-survives-restart "$(hv show blocked --json)"

# systemd readiness: READY=1 once running, RELOADING=1 on reload, STOPPING=1.
daemon_stop
python3 - "$LAB_TMP/notify.sock" > "$LAB_TMP/notify.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
got = []
try:
    while "STOPPING=1" not in got:
        got += s.recv(4096).decode().split("\n")
except socket.timeout:
    pass
print(" ".join(x for x in got if x))
PY
NPID=$!
i=0; while [ ! -S "$LAB_TMP/notify.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
daemon_start env NOTIFY_SOCKET="$LAB_TMP/notify.sock" || fail start-with-notify
hv reload > /dev/null
daemon_stop
wait $NPID
n=$(cat "$LAB_TMP/notify.out")
case "$n" in *READY=1*RELOADING=1*READY=1*STOPPING=1*) pass "sd-notify($n)" ;; *) fail sd-notify "$n" ;; esac
daemon_start || fail restart-for-flush

# on_stop = flush removes the table.
sed -i 's/on_stop = "keep"/on_stop = "flush"/' "$DAEMON_CONF"
expect reload-to-flush hv reload
daemon_stop
fw_ruleset | grep -q 'table inet hvgate' && fail stop-flush "table still there" || pass stop-flush

lab_done
