#!/bin/sh
# `hvgate explain PACKET` without a POLICY asks hvgated: the running
# revision's source (as the daemon read it, not the file on disk now) and its
# block list. Each verdict is compared with what the same policy says
# offline, and a blocked source must turn a pass into builtin:blocked. A
# real log event (an ssh connection the demo policy blocks and logs, in the
# three-namespace lab) is explained from its `show log` line and its line in
# the event file, by the daemon and offline.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

trap 'daemon_stop; lab_cleanup' EXIT
lab3_up || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
cp conf/policies/demo.hvp "$LAB_TMP/running.hvp"
# the same file under the same name elsewhere: rule ids match but for folders
mkdir -p "$LAB_TMP/copy" && cp conf/policies/demo.hvp "$LAB_TMP/copy/policy.hvp"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

# A logged packet: ssh from lan to dmz is blocked with log "ssh-from-lan".
r=$(probe client tcp 10.10.2.2 22); [ "$r" = timeout ] && pass ssh-blocked || fail ssh-blocked "saw $r"
wait_for 5 sh -c "HVGATE_SOCKET='$DAEMON_SOCK' '$HVGATE' show log | grep -q ssh-from-lan"
line=$(hv show log | grep -m1 'ssh-from-lan')
jline=$(grep -m1 'ssh-from-lan' "$DAEMON_EVENTS")
[ -n "$line" ] && [ -n "$jline" ] && pass log-event-seen || fail log-event-seen "$(hv show log | tail -3)"
# `show log` line and event-file line, to the daemon and offline
n=0
for how in daemon offline; do
	for form in text json; do
		n=$((n + 1))
		[ $form = text ] && ev=$line || ev=$jline
		if [ $how = daemon ]; then hv explain "$ev" > "$LAB_TMP/e$n.out" 2> "$LAB_TMP/e$n.err"; rc=$?
		else "$HVGATE" explain "$LAB_TMP/copy/policy.hvp" "$ev" > "$LAB_TMP/e$n.out" 2> "$LAB_TMP/e$n.err"; rc=$?; fi
		[ $rc -eq 0 ] && grep -q '^verdict: block by .*policy.hvp:17 (block from lan to dmz service ssh' "$LAB_TMP/e$n.out" &&
			grep -q '^packet:  tcp 10.10.1.2:[0-9]* -> 10.10.2.2:22 in lan0 out dmz0 (new)' "$LAB_TMP/e$n.out" &&
			grep -q '^event:   the policy decides as the event says' "$LAB_TMP/e$n.out" &&
			pass "explain-log-$how-$form" ||
			fail "explain-log-$how-$form" "rc=$rc $(cat "$LAB_TMP/e$n.err") $(grep -E '^(event|verdict|packet)' "$LAB_TMP/e$n.out")"
	done
done
hv explain "$jline" --json > "$LAB_TMP/ej.out" 2>&1
[ "$(json_get "$(cat "$LAB_TMP/ej.out")" event.agrees)" = True ] && [ "$(json_get "$(cat "$LAB_TMP/ej.out")" verdict)" = block ] &&
	pass explain-log-json-agrees || fail explain-log-json-agrees "$(tail -c 300 "$LAB_TMP/ej.out")"
# an event that says otherwise than the policy (edited: the rule passed it)
other=$(printf '%s' "$line" | sed 's/verdict=block/verdict=pass/')
hv explain "$other" > "$LAB_TMP/eo.out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q '^event:   the policy decides otherwise' "$LAB_TMP/eo.out" && pass explain-log-disagrees ||
	fail explain-log-disagrees "rc=$rc $(grep '^event' "$LAB_TMP/eo.out")"
# a malformed event: exit 2 with the column of the mistake
bad=$(printf '%s' "$line" | sed 's/dst=10.10.2.2/dst=10.10.2.299/')
col=$(printf '%s' "$bad" | awk '{ print index($0, "dst=10.10.2.299") + 4 }')
hv explain "$bad" > "$LAB_TMP/eb.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "^event:$col: error: 'dst' is not an address" "$LAB_TMP/eb.out" && pass explain-log-malformed-exit-2 ||
	fail explain-log-malformed-exit-2 "rc=$rc want column $col: $(head -2 "$LAB_TMP/eb.out")"

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
