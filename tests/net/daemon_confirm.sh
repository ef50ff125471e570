#!/bin/sh
# commit / commit confirmed / confirm / rollback / history, and the genid
# guard, against the kernel of a lab namespace:
#  - not confirmed: the old ruleset is back within N+1 seconds;
#  - confirmed: the new one stays past the deadline;
#  - daemon killed (-9) while pending: reverted at restart once the deadline
#    has passed, and re-armed when it has not;
#  - someone else changes table inet hvgate: commit is refused, `commit force` works.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

N=2 # seconds to confirm
lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
cp conf/policies/demo.hvp "$LAB_TMP/new.hvp"
echo 'pass from lan to dmz service tcp port 8080' >> "$LAB_TMP/new.hvp"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

has_8080() { fw_ruleset | grep -q 'dport 8080'; }
rev() { json_get "$(hv status --json)" running.revision; }

# Plain commit.
expect load-candidate hv load "$LAB_TMP/new.hvp"
out=$(hv compare); echo "$out" | grep -q '^+ rule .*new.hvp:19$' && echo "$out" | grep -q '1 added' \
	&& pass compare-shows-added-rule || fail compare-shows-added-rule "$out"
expect commit hv commit comment add web alt
has_8080 && pass commit-applied || fail commit-applied
[ "$(rev)" = 2 ] && pass commit-new-revision || fail commit-new-revision "rev $(rev)"
hv history | grep -q 'add web alt' && pass history-comment || fail history-comment
[ "$(json_get "$(hv history --json)" revisions.0.uid)" = 0 ] && pass history-uid || fail history-uid
expect_not commit-without-candidate hv commit

# Rollback to 1 and commit confirmed, not confirmed: revision 2 is back.
expect rollback-1 hv rollback 1
start=$(date +%s)
expect commit-confirmed hv commit confirmed $N comment try rollback
has_8080 && fail confirmed-applied "8080 still there" || pass confirmed-applied
[ -f "$DAEMON_STATE/pending.json" ] && pass pending-persisted || fail pending-persisted
wait_for $((N + 2)) has_8080; el=$(( $(date +%s) - start ))
if has_8080 && [ $el -le $((N + 1)) ]; then pass "revert-within-N+1s(${el}s)"; else fail revert-within-N+1s "after ${el}s"; fi
[ "$(rev)" = 2 ] && pass revert-running-rev || fail revert-running-rev "rev $(rev)"
[ ! -f "$DAEMON_STATE/pending.json" ] && pass pending-cleared || fail pending-cleared

# Confirmed in time: stays.
expect rollback-1-again hv rollback 1
expect commit-confirmed-2 hv commit confirmed $N
expect confirm hv confirm
sleep $((N + 1))
has_8080 && fail confirmed-stays "reverted" || pass confirmed-stays
expect_not confirm-twice hv confirm

# Killed with -9 while pending, restarted after the deadline: reverted.
r_before=$(rev)
expect load-new hv load "$LAB_TMP/new.hvp"
expect commit-confirmed-3 hv commit confirmed $N
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
has_8080 && pass kill9-still-applied || fail kill9-still-applied
sleep $((N + 1))
daemon_start || fail restart-after-kill
has_8080 && fail kill9-reverted-at-start "8080 still there" || pass kill9-reverted-at-start
[ "$(rev)" = "$r_before" ] && pass kill9-revert-rev || fail kill9-revert-rev "rev $(rev), want $r_before"

# Killed while pending with a broken configured policy: the revert still happens.
expect load-new-broken hv load "$LAB_TMP/new.hvp"
expect commit-confirmed-broken hv commit confirmed $N
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
cp "$POL" "$LAB_TMP/pol.keep"; echo 'this is not a policy' >> "$POL"
sleep $((N + 1))
daemon_start || fail restart-broken-source "$(tail -3 "$DAEMON_LOG")"
has_8080 && fail revert-despite-broken-source "8080 still there" || pass revert-despite-broken-source
daemon_stop
cp "$LAB_TMP/pol.keep" "$POL"
daemon_start || fail restart-fixed-source

# Killed while pending, restarted before the deadline: re-armed, then reverted.
expect load-new-2 hv load "$LAB_TMP/new.hvp"
expect commit-confirmed-long hv commit confirmed 4
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
daemon_start || fail restart-before-deadline
has_8080 && pass rearmed-still-applied || fail rearmed-still-applied
[ -n "$(json_get "$(hv status --json)" pending.revision)" ] && pass rearmed-pending-status || fail rearmed-pending-status
wait_for 6 sh -c "! ip netns exec $LAB-fw nft list ruleset | grep -q 'dport 8080'" \
	&& pass rearmed-reverted || fail rearmed-reverted

# Generation guard: a change by someone else is detected, not overwritten.
expect load-for-guard hv load "$LAB_TMP/new.hvp"
at fw nft add table inet intruder
at fw nft add chain inet hvgate intruder
hv commit > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "changed outside hvgated" "$LAB_TMP/out" && pass genid-guard-refuses \
	|| fail genid-guard-refuses "rc=$rc $(cat "$LAB_TMP/out")"
has_8080 && fail genid-guard-nothing-applied || pass genid-guard-nothing-applied
expect commit-force hv commit force
has_8080 && pass commit-force-applied || fail commit-force-applied
fw_ruleset | grep -q 'table inet intruder' && pass other-table-untouched || fail other-table-untouched

# diff between two revisions, rule by rule.
out=$(hv diff 1 2); echo "$out" | grep -q '^+ rule .*:19$' && pass diff-rule-by-rule || fail diff-rule-by-rule "$out"

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
