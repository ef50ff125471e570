#!/bin/sh
# `hvgate explain PACKET` without a POLICY asks hvgated: the running
# revision's source (as the daemon read it, not the file on disk now) and its
# block list. Each verdict is compared with what the same policy says
# offline, and a blocked source must turn a pass into builtin:blocked.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

trap 'daemon_stop; lab_cleanup' EXIT
lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
cp conf/policies/demo.hvp "$LAB_TMP/running.hvp"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

WEB="tcp 10.10.1.5:40000 -> 10.10.2.2:443 in lan0 out dmz0"
TELNET="tcp 10.10.1.5:40000 -> 10.10.2.9:23 in lan0 out dmz0"
# The file on disk changes after the daemon read it: explain must not see it.
printf 'zone lan { interface "lan0" }\nzone dmz { interface "dmz0" }\ndefault pass\n' > "$POL"

verdict() { sed -n 's/^verdict: //p' "$1"; }
for name in WEB TELNET; do
	eval pkt=\$$name
	hv explain $pkt > "$LAB_TMP/d.out" 2> "$LAB_TMP/d.err"; rc=$?
	"$HVGATE" explain "$LAB_TMP/running.hvp" $pkt > "$LAB_TMP/o.out" 2>&1
	# the offline run names the copy's path; the daemon's the path it read
	want=$(verdict "$LAB_TMP/o.out" | sed "s|$LAB_TMP/running.hvp|$POL|")
	got=$(verdict "$LAB_TMP/d.out")
	[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ] && pass "running-$name($got)" \
		|| fail "running-$name" "rc=$rc got '$got' want '$want' $(cat "$LAB_TMP/d.err")"
done
grep -q '^policy:  running revision [0-9]* of hvgated, 0 block-list entries' "$LAB_TMP/d.out" \
	&& pass header-revision || fail header-revision "$(head -1 "$LAB_TMP/d.out")"
case "$(verdict "$LAB_TMP/d.out")" in reject*) pass telnet-rejected-by-running-rule ;;
	*) fail telnet-rejected-by-running-rule "$(verdict "$LAB_TMP/d.out")" ;; esac

expect block-source hv block 10.10.1.5
hv explain $WEB > "$LAB_TMP/b.out" 2>&1; rc=$?
[ $rc -eq 0 ] && verdict "$LAB_TMP/b.out" | grep -q '^block by builtin:blocked' \
	&& grep -q '1 block-list entry' "$LAB_TMP/b.out" && pass blocked-source \
	|| fail blocked-source "rc=$rc $(cat "$LAB_TMP/b.out")"
hv explain $WEB --json > "$LAB_TMP/j.out" 2>&1
[ "$(json_get "$(cat "$LAB_TMP/j.out")" verdict)" = block ] && pass json-blocked || fail json-blocked "$(cat "$LAB_TMP/j.out")"
hv explain "tcp 10.10.1.6:40000 -> 10.10.2.2:443 in lan0 out dmz0" > "$LAB_TMP/b.out" 2>&1
verdict "$LAB_TMP/b.out" | grep -q '^pass by' && pass other-source-passes || fail other-source-passes "$(cat "$LAB_TMP/b.out")"
expect unblock-source hv unblock 10.10.1.5
hv explain $WEB > "$LAB_TMP/b.out" 2>&1
verdict "$LAB_TMP/b.out" | grep -q '^pass by' && pass unblocked-passes || fail unblocked-passes "$(cat "$LAB_TMP/b.out")"

HVGATE_SOCKET=/nonexistent.sock "$HVGATE" explain $WEB > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && pass no-daemon-exit-2 || fail no-daemon-exit-2 "rc=$rc"
hv explain tcp 10.10.1.5:40000 '->' > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && pass malformed-exit-2 || fail malformed-exit-2 "rc=$rc"
daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
