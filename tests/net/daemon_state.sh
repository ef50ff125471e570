#!/bin/sh
# What a commit promises, through the real daemon against a lab namespace:
#  - a committed revision survives a restart (the configured source is not
#    applied again; status and the log say that it differs); SIGHUP is a
#    reload by design (docs/operations.md) and applies the source, and a
#    restart after it keeps what the reload put in;
#  - revision ids never repeat, also when hvgated is killed (-9) during or
#    right after a commit; a commit killed (-9) right after its ok reply
#    runs after the restart;
#  - a full state directory makes a commit fail with a clear error and the
#    kernel's ruleset unchanged, and nothing is left pending;
#  - truncated or corrupt pending.json, running and revision files: the
#    daemon starts and names the file;
#  - a state or socket directory others may write into is refused;
#  - `commit confirmed` durations: garbage, 0, negatives and unknown units
#    are errors with nothing pending, 10m is 600 s, and `confirmed 2`
#    reverts after 1.9 to 2.5 s.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

FULL="$LAB_TMP/full"
state_cleanup() {
	daemon_stop
	mountpoint -q "$FULL" 2>/dev/null && umount "$FULL"
	lab_cleanup
}
trap 'state_cleanup' EXIT

lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
cp conf/policies/demo.hvp "$LAB_TMP/new.hvp"
echo 'pass from lan to dmz service tcp port 8080' >> "$LAB_TMP/new.hvp"
cp conf/policies/demo.hvp "$LAB_TMP/other.hvp"
echo 'pass from lan to dmz service tcp port 8081' >> "$LAB_TMP/other.hvp"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

has_8080() { fw_ruleset | grep -q 'dport 8080'; }
st() { hv status --json; }
# sed, not python (json_get): a python start costs a second on a loaded machine
rev() { st | sed -n 's/.*"running":{"revision":\([0-9]*\).*/\1/p'; }
nothing_pending() { st | grep -q '"pending":null'; }
source_differs() { st | grep -q '"source_differs":true'; }
kernel_rev() { fw_ruleset | sed -n 's/.*comment "hvgate rev=\([0-9]*\) .*/\1/p' | head -1; }
history_ids() { hv history --json |
	python3 -c 'import json,sys; print(" ".join(str(r["revision"]) for r in json.load(sys.stdin)["revisions"]))'; }
kill9() { kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""; }
# start_refused NAME PATTERN: hvgated must exit non-zero with PATTERN in its log.
start_refused() {
	: > "$DAEMON_LOG"
	"$HVGATED" -c "$DAEMON_CONF" >> "$DAEMON_LOG" 2>&1 &
	p=$!
	i=0; while kill -0 $p 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $p 2>/dev/null; then kill $p; wait $p 2>/dev/null; fail "$1" "still running"; return; fi
	wait $p; rc=$?
	[ $rc -ne 0 ] && grep -q "$2" "$DAEMON_LOG" && pass "$1" || fail "$1" "rc=$rc $(tail -2 "$DAEMON_LOG")"
}

# 1. A commit survives a restart.
expect load-new hv load "$LAB_TMP/new.hvp"
expect commit hv commit comment add 8080
r_commit=$(rev)
source_differs && pass status-source-differs-after-commit \
	|| fail status-source-differs-after-commit "$(st)"
daemon_stop
daemon_start || fail restart "$(tail -3 "$DAEMON_LOG")"
has_8080 && pass restart-keeps-committed-ruleset || fail restart-keeps-committed-ruleset "source applied again"
[ "$(rev)" = "$r_commit" ] && pass restart-running-revision || fail restart-running-revision "rev $(rev), want $r_commit"
[ "$(kernel_rev)" = "$r_commit" ] && pass restart-kernel-revision || fail restart-kernel-revision "kernel rev=$(kernel_rev)"
source_differs && pass restart-status-source-differs || fail restart-status-source-differs
grep -q "configured policy .* differs from revision $r_commit" "$DAEMON_LOG" && pass restart-log-source-differs \
	|| fail restart-log-source-differs "$(tail -3 "$DAEMON_LOG")"

# kill -9 instead of a clean stop: the same.
kill9
daemon_start || fail restart-after-kill9
has_8080 && [ "$(rev)" = "$r_commit" ] && pass kill9-restart-keeps-committed || fail kill9-restart-keeps-committed "rev $(rev)"

# kill -9 right after a commit's ok reply: the revision is on the disk (the
# reply waits for it), so it runs after the restart; the committed
# candidate's files go after the reply, so the candidate may come back, but
# only as the ruleset that runs.
expect load-before-kill9 hv load "$LAB_TMP/other.hvp"
r_ok=$(hv commit --json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
kill9
daemon_start || fail restart-after-ok-kill9 "$(tail -3 "$DAEMON_LOG")"
[ -n "$r_ok" ] && [ "$(rev)" = "$r_ok" ] && [ "$(kernel_rev)" = "$r_ok" ] && fw_ruleset | grep -q 'dport 8081' &&
	pass "kill9-right-after-ok-runs-revision-$r_ok" || fail kill9-right-after-ok-runs-revision "ok $r_ok, rev $(rev), kernel $(kernel_rev)"
s_now=$(st)
c_hash=$(json_get "$s_now" candidate.hash); r_hash=$(json_get "$s_now" running.hash)
[ -z "$c_hash" ] || [ "$c_hash" = "$r_hash" ] && pass "kill9-right-after-ok-candidate(${c_hash:-none})" ||
	fail kill9-right-after-ok-candidate "candidate $c_hash, running $r_hash"
# back to the ruleset with 8080 (what the checks below start from)
expect load-new-again hv load "$LAB_TMP/new.hvp"
expect commit-new-again hv commit
r_commit=$(rev)

# 2. SIGHUP is a reload (documented): it applies the configured source, says
# so, and a restart then keeps what the reload put in.
kill -HUP "$DAEMON_PID"
wait_for 10 sh -c "! ip netns exec $LAB-fw nft list ruleset | grep -q 'dport 8080'" \
	&& pass sighup-applies-source || fail sighup-applies-source
r_hup=$(rev)
[ "$r_hup" != "$r_commit" ] && ! source_differs && pass sighup-status-honest \
	|| fail sighup-status-honest "rev $r_hup $(st)"
grep -q "reloaded: revision $r_hup" "$DAEMON_LOG" && pass sighup-logged || fail sighup-logged
daemon_stop; daemon_start || fail restart-after-sighup
! has_8080 && [ "$(rev)" = "$r_hup" ] && pass restart-after-sighup-keeps-reload || fail restart-after-sighup-keeps-reload

# rollback N && commit, then restart: the rolled-back revision runs.
expect rollback hv rollback "$r_commit"
expect commit-rollback hv commit
r_rb=$(rev)
daemon_stop; daemon_start || fail restart-after-rollback
has_8080 && [ "$(rev)" = "$r_rb" ] && pass restart-keeps-rollback-commit || fail restart-keeps-rollback-commit "rev $(rev)"

# 3. kill -9 during and right after commits: ids never repeat.
seen="$(history_ids) $(kernel_rev)"
for delay in 0 0.02 0.05 0.1 0.2; do
	if has_8080; then f=other.hvp; else f=new.hvp; fi
	hv load "$LAB_TMP/$f" > /dev/null 2>&1
	hv commit > /dev/null 2>&1 &
	cpid=$!
	sleep $delay
	kill9
	wait $cpid 2>/dev/null
	seen="$seen $(kernel_rev)"
	daemon_start || { fail "restart-after-kill9-$delay" "$(tail -3 "$DAEMON_LOG")"; break; }
	seen="$seen $(rev) $(history_ids)"
	# a new commit after the kill gets an id above every one seen so far
	hv load "$LAB_TMP/new.hvp" > /dev/null 2>&1; hv load "$LAB_TMP/other.hvp" > /dev/null 2>&1
	hv commit > /dev/null 2>&1 || hv commit force > /dev/null 2>&1
	new=$(rev)
	max=$(echo $seen | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
	if [ -n "$new" ] && [ "$new" -gt "$max" ]; then pass "kill9-$delay-new-id-$new-above-$max"
	else fail "kill9-$delay-new-id" "new $new, seen up to $max"; fi
	seen="$seen $new"
done
ids=$(history_ids)
[ "$(echo $ids | tr ' ' '\n' | sort | uniq -d)" = "" ] && pass history-ids-unique || fail history-ids-unique "$ids"

# A commit the kernel refuses (the guard: hvgate's own table changed by
# someone else) leaves no revision.
n_before=$(history_ids | wc -w)
expect load-for-guard hv load "$LAB_TMP/new.hvp"
at fw nft add chain inet hvgate intruder
expect_not guard-refuses hv commit
[ "$(history_ids | wc -w)" = "$n_before" ] && pass refused-commit-not-in-history || fail refused-commit-not-in-history "$(history_ids)"
at fw nft delete table inet intruder
expect load-other-for-force hv load "$LAB_TMP/other.hvp"
expect commit-force hv commit force

# 4. Truncated or corrupt state files: the daemon starts and names them.
daemon_stop
r_run=$(cat "$DAEMON_STATE/running")
printf '{"committed":%s,"revert_to":1,"dead' "$r_run" > "$DAEMON_STATE/pending.json"
daemon_start && pass corrupt-pending-starts || fail corrupt-pending-starts "$(tail -3 "$DAEMON_LOG")"
grep -q "pending.json is corrupt" "$DAEMON_LOG" && pass corrupt-pending-named || fail corrupt-pending-named "$(tail -3 "$DAEMON_LOG")"
[ ! -f "$DAEMON_STATE/pending.json" ] && ls "$DAEMON_STATE"/pending.json.corrupt-* > /dev/null 2>&1 \
	&& pass corrupt-pending-moved-aside || fail corrupt-pending-moved-aside
nothing_pending && [ "$(rev)" = "$r_run" ] && pass corrupt-pending-runs-committed \
	|| fail corrupt-pending-runs-committed "$(st)"
# A corrupt pending.json after a `commit confirmed` nobody confirmed: the
# revision that ran before it comes back (the file cannot say when).
expect load-unconfirmed hv load "$LAB_TMP/new.hvp"
expect commit-unconfirmed hv commit confirmed 60
has_8080 || fail unconfirmed-applied
kill9
echo '{"committed":' > "$DAEMON_STATE/pending.json"
daemon_start && pass corrupt-pending-after-confirmed-starts || fail corrupt-pending-after-confirmed-starts "$(tail -3 "$DAEMON_LOG")"
! has_8080 && [ "$(rev)" = "$r_run" ] && nothing_pending \
	&& grep -q "pending revert is unreadable: reverting to revision $r_run" "$DAEMON_LOG" \
	&& pass corrupt-pending-unconfirmed-reverted || fail corrupt-pending-unconfirmed-reverted "rev $(rev) want $r_run $(grep -E "corrupt|revert" "$DAEMON_LOG")"
expect commit-after-corrupt-pending sh -c "HVGATE_SOCKET=$DAEMON_SOCK $HVGATE load $LAB_TMP/new.hvp && HVGATE_SOCKET=$DAEMON_SOCK $HVGATE load $POL && HVGATE_SOCKET=$DAEMON_SOCK $HVGATE commit"

daemon_stop
printf '1' > "$DAEMON_STATE/running"
daemon_start && pass corrupt-running-starts || fail corrupt-running-starts "$(tail -3 "$DAEMON_LOG")"
grep -q "/running is corrupt" "$DAEMON_LOG" && pass corrupt-running-named || fail corrupt-running-named "$(tail -3 "$DAEMON_LOG")"

expect load-for-bundle hv load "$LAB_TMP/new.hvp"
expect commit-for-bundle hv commit
r_b=$(rev)
daemon_stop
# stored whole (policy.bundle) or as the difference to a whole one (policy.delta)
bn=policy.bundle
[ -f "$DAEMON_STATE/revisions/$r_b/$bn" ] || bn=policy.delta
b="$DAEMON_STATE/revisions/$r_b/$bn"
head -c 40 "$b" > "$b.short" && mv "$b.short" "$b"
daemon_start && pass truncated-bundle-starts || fail truncated-bundle-starts "$(tail -3 "$DAEMON_LOG")"
grep -q "revisions/$r_b/$bn: corrupt or truncated" "$DAEMON_LOG" && pass "truncated-bundle-named($bn)" \
	|| fail truncated-bundle-named "$(tail -3 "$DAEMON_LOG")"
[ -n "$(rev)" ] && pass truncated-bundle-runs-something || fail truncated-bundle-runs-something
daemon_stop
echo '{"id":' > "$DAEMON_STATE/revisions/$(cat "$DAEMON_STATE/running")/meta.json"
daemon_start && pass corrupt-meta-starts || fail corrupt-meta-starts "$(tail -3 "$DAEMON_LOG")"
grep -q "meta.json: corrupt" "$DAEMON_LOG" && pass corrupt-meta-named || fail corrupt-meta-named "$(tail -3 "$DAEMON_LOG")"

# 5. commit confirmed: strict durations, exact deadlines.
for bad in abc 0 -5 10x 1.5 ""; do
	hv load "$LAB_TMP/new.hvp" > /dev/null 2>&1
	hv commit confirmed "$bad" > "$LAB_TMP/out" 2>&1; rc=$?
	[ $rc -ne 0 ] && nothing_pending && [ ! -f "$DAEMON_STATE/pending.json" ] && pass "confirmed-'$bad'-refused" \
		|| fail "confirmed-'$bad'-refused" "rc=$rc $(cat "$LAB_TMP/out")"
done
# The daemon checks again (a client that sends 0 or garbage itself).
for v in 0 -5 '"abc"' '"10x"' 1.5; do
	reply=$(printf '{"cmd":"commit","confirmed":%s}\n' "$v" | timeout 10 socat -t 5 - "UNIX-CONNECT:$DAEMON_SOCK")
	echo "$reply" | grep -q '"ok":false' && nothing_pending && pass "daemon-refuses-confirmed-$v" \
		|| fail "daemon-refuses-confirmed-$v" "$reply"
done
has_8080 && fail refused-commits-applied-nothing "8080 applied" || pass refused-commits-applied-nothing
expect commit-confirmed-10m hv commit confirmed 10m
left=$(st | sed -n 's/.*"seconds_left":\([0-9]*\).*/\1/p')
[ -n "$left" ] && [ "$left" -ge 590 ] && [ "$left" -le 600 ] && pass "confirmed-10m-is-600s($left)" \
	|| fail confirmed-10m-is-600s "seconds_left $left"
expect confirm-10m hv confirm
expect rollback-for-timing hv rollback "$r_run"
before=$(rev)
hv commit confirmed 2 > /dev/null 2>&1 || fail commit-confirmed-2
t0=$(date +%s.%N)
i=0
while [ $i -lt 400 ] && ! nothing_pending; do sleep 0.01; i=$((i + 1)); done
t1=$(date +%s.%N)
el=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
if awk "BEGIN { exit !($el >= 1.9 && $el <= 2.5) }"; then pass "confirmed-2-reverts-after-${el}s"
else fail confirmed-2-reverts-in-1.9-2.5s "after ${el}s"; fi
[ "$(rev)" = "$before" ] && pass confirmed-2-reverted-rev || fail confirmed-2-reverted-rev "rev $(rev), want $before"
# A restart after the revert runs the revision reverted to, not the
# unconfirmed one and not the configured source.
daemon_stop; daemon_start || fail restart-after-revert
[ "$(rev)" = "$before" ] && has_8080 && nothing_pending && pass restart-after-revert-runs-reverted-to \
	|| fail restart-after-revert-runs-reverted-to "rev $(rev), want $before"

# Block durations use the same parser: a bare number is seconds.
expect block-90 hv block 192.0.2.9 for 90
hv block 192.0.2.9 for 90 --json | grep -q '"timeout":90[,}]'  && pass block-bare-number-seconds || fail block-bare-number-seconds
expect_not block-garbage hv block 192.0.2.9 for 10x
expect_not block-zero hv block 192.0.2.9 for 0
expect unblock hv unblock 192.0.2.9

# 6. A full state directory: commit fails, the kernel is unchanged.
daemon_stop
mkdir -p "$FULL"
mount -t tmpfs -o size=64k,mode=0700 tmpfs "$FULL" || fail mount-tmpfs
DAEMON_STATE="$FULL/state"
daemon_conf "$POL"
daemon_start || fail start-small-state "$(tail -3 "$DAEMON_LOG")"
dd if=/dev/zero of="$FULL/filler" bs=1k count=1024 > /dev/null 2>&1
at fw nft -s list ruleset > "$LAB_TMP/before"
r_full=$(rev)
expect load-when-full hv load "$LAB_TMP/new.hvp"
grep -q "^hvgate: warning: cannot store the candidate in .*: No space left on device; it is lost if hvgated restarts$" "$LAB_TMP/out" &&
	pass load-when-full-warns || fail load-when-full-warns "$(cat "$LAB_TMP/out")"
hv commit comment full > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "No space left on device; nothing was applied" "$LAB_TMP/out" && pass full-commit-fails \
	|| fail full-commit-fails "rc=$rc $(cat "$LAB_TMP/out")"
at fw nft -s list ruleset > "$LAB_TMP/after"
cmp -s "$LAB_TMP/before" "$LAB_TMP/after" && pass full-kernel-unchanged \
	|| fail full-kernel-unchanged "$(diff "$LAB_TMP/before" "$LAB_TMP/after" | head -5)"
[ "$(rev)" = "$r_full" ] && pass full-running-unchanged || fail full-running-unchanged "rev $(rev)"
seen_full="$r_full $(kernel_rev) $(sed -n 's/^revision: //p' "$LAB_TMP/out")"
hv commit confirmed 30 > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -ne 0 ] && nothing_pending && ! has_8080 && pass full-confirmed-fails-nothing-pending \
	|| fail full-confirmed-fails-nothing-pending "rc=$rc $(cat "$LAB_TMP/out")"
rm -f "$FULL/filler"
expect commit-after-space hv commit confirmed 30
max=$(echo $seen_full | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1)
[ "$(rev)" -gt "$max" ] && pass "full-then-new-id-$(rev)-above-$max" || fail full-then-new-id "rev $(rev), seen $seen_full"
expect confirm-after-space hv confirm
daemon_stop; daemon_start && has_8080 && pass full-then-restart-keeps-commit || fail full-then-restart-keeps-commit
daemon_stop
umount "$FULL"

# 7. Directories others may write into are refused.
DAEMON_STATE="$LAB_TMP/state"
daemon_conf "$POL"
chmod 0777 "$DAEMON_STATE"
start_refused state-dir-0777-refused "setting 'state_dir'.*writable by its group or by others"
chmod 0750 "$DAEMON_STATE"
chown nobody "$DAEMON_STATE"
start_refused state-dir-other-owner-refused "setting 'state_dir'.*owned by uid"
chown root "$DAEMON_STATE"
mkdir -m 0777 "$LAB_TMP/sock"
sed -i "s|socket = \"$DAEMON_SOCK\"|socket = \"$LAB_TMP/sock/control.sock\"|" "$DAEMON_CONF"
start_refused socket-dir-0777-refused "setting 'control.socket'.*writable by its group or by others"
daemon_conf "$POL"
daemon_start && has_8080 && pass start-after-fixing-modes || fail start-after-fixing-modes "$(tail -3 "$DAEMON_LOG")"

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
