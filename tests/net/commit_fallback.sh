#!/bin/sh
# The fallbacks of an incremental commit (issue 16), against a second hvgated
# that always replaces the table (HVGATED_FULL_REPLACE):
#  1. the kernel refuses the delta: an element of a named set was deleted
#     behind the daemon's back (elements are not part of the table digest, so
#     the guard lets the commit through), and the next revision deletes that
#     element too. The commit must fall back to the full replace, say so in
#     its reply, and reach the reference's kernel state.
#  2. a rule was added behind the daemon's back: the guard refuses the
#     commit, says so, and nothing in the kernel changes; `commit force` then
#     replaces the table and says why.
#  3. the next commit after the fallback is incremental again.
#  4. kill -9 in the middle of commits: the revisions stored as deltas read
#     back whole and the daemon starts again with what it answered "ok" for.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
LAB="${HVGATE_LAB_PREFIX:-w7f}$$"
. tests/lib/daemon.sh
PY=tests/net/commit_incremental.py

lab_ns fw || { fail lab-up; exit 1; }
lab_ns ref || { fail lab-up; exit 1; }

POL="$LAB_TMP/cur.hvp"
hosts() { # the address list: 192.0.2.1, .3, ... (every second one), $@ appended
	h=""
	for i in 1 3 5 7 9 11 13 15 17 19 "$@"; do h="$h${h:+, }192.0.2.$i"; done
	echo "$h"
}
policy() { # policy LIST [EXTRA-RULE]
	cat > "$POL" <<P
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
define hosts = { $1 }
default block
pass from lan to \$hosts service tcp port 80
pass from lan to dmz service tcp port 22
${2:-}
P
}
policy "$(hosts)"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }
REF_SOCK="$LAB_TMP/ref.sock"
sed -e "s|$DAEMON_SOCK|$REF_SOCK|" -e "s|$DAEMON_STATE|$LAB_TMP/ref-state|" \
	-e "s|$DAEMON_EVENTS|$LAB_TMP/ref-events.log|" -e "s|\"$LAB-fw\"|\"$LAB-ref\"|" \
	-e "s|:$DAEMON_METRICS_PORT|:9472|" "$DAEMON_CONF" > "$LAB_TMP/ref.conf"
HVGATED_FULL_REPLACE=1 "$HVGATED" -c "$LAB_TMP/ref.conf" > "$LAB_TMP/ref.log" 2>&1 &
LAB_PIDS="$LAB_PIDS $!"
wait_for 10 grep -qs "hvgated: ready" "$LAB_TMP/ref.log" || { fail ref-start "$(tail -5 "$LAB_TMP/ref.log")"; exit 1; }
href() { HVGATE_SOCKET="$REF_SOCK" "$HVGATE" "$@"; }

# (the revision in the marker left out: the refused commit used an id of fw's)
norm() { at "$1" nft list table inet hvgate | python3 "$PY" norm | sed 's/hvgate rev=[0-9]* /hvgate rev=N /'; }
same_as_ref() {
	if [ "$(norm fw)" = "$(norm ref)" ]; then pass "$1"; else
		norm fw > "$LAB_TMP/fw.norm"; norm ref > "$LAB_TMP/ref.norm"
		fail "$1" "$(diff "$LAB_TMP/ref.norm" "$LAB_TMP/fw.norm" | head -6 | tr '\n' ' ')"
	fi
}
# commit_both NAME: load $POL into both, commit; the fw reply in $LAB_TMP/reply
commit_both() {
	hv load "$POL" > "$LAB_TMP/out" 2>&1 && hv commit > "$LAB_TMP/reply" 2>&1 && pass "$1" ||
		fail "$1" "$(cat "$LAB_TMP/out" "$LAB_TMP/reply" | tail -3 | tr '\n' ' ')"
	href load "$POL" > /dev/null 2>&1 && href commit > /dev/null 2>&1 || fail "$1-ref"
}
mode() { sed -n 's/^apply: //p' "$LAB_TMP/reply"; }
set_name=$(at fw nft list table inet hvgate | sed -n 's/^[[:space:]]*set \(addr4_[0-9a-f_]*\) {$/\1/p' | head -1)
[ -n "$set_name" ] && pass "named-set($set_name)" || { fail named-set "$(at fw nft list table inet hvgate | head -40 | tr '\n' ' ')"; exit 1; }

# 0. an ordinary change is incremental
policy "$(hosts 21)"
commit_both commit-incremental
case "$(mode)" in incremental*) pass "incremental($(mode))" ;; *) fail incremental "$(mode)" ;; esac
same_as_ref same-after-incremental

# 1. the kernel refuses the delta: falls back to the full replace, says so
at fw nft delete element inet hvgate "$set_name" '{ 192.0.2.19 }' || fail delete-behind-back
policy "$(hosts | sed 's/, 192.0.2.19//'), 192.0.2.21, 192.0.2.23"
commit_both commit-after-element-deleted
case "$(mode)" in "full replace (the kernel refused the delta)") pass reply-says-fallback ;;
	*) fail reply-says-fallback "$(cat "$LAB_TMP/reply" | tr '\n' ' ')" ;; esac
grep -q "the kernel refused the delta to revision" "$DAEMON_LOG" && pass fallback-logged || fail fallback-logged
same_as_ref same-after-fallback
at fw nft list set inet hvgate "$set_name" | grep -q '192.0.2.23' && pass fallback-has-new-element ||
	fail fallback-has-new-element

# 2. a rule added behind the back: the guard refuses, nothing changes
at fw nft add rule inet hvgate input tcp dport 9999 counter accept || fail add-rule-behind-back
at fw nft list table inet hvgate > "$LAB_TMP/before"
policy "$(hosts 25)"
hv load "$POL" > /dev/null 2>&1 || fail load-after-rule-added
if hv commit > "$LAB_TMP/reply" 2>&1; then fail guard-refuses "$(cat "$LAB_TMP/reply")"; else pass guard-refuses; fi
grep -q "changed outside hvgated" "$LAB_TMP/reply" && grep -q "nothing was applied" "$LAB_TMP/reply" &&
	pass guard-says-so || fail guard-says-so "$(cat "$LAB_TMP/reply" | tr '\n' ' ')"
at fw nft list table inet hvgate > "$LAB_TMP/after"
python3 "$PY" norm < "$LAB_TMP/before" > "$LAB_TMP/before.norm"
python3 "$PY" norm < "$LAB_TMP/after" > "$LAB_TMP/after.norm"
cmp -s "$LAB_TMP/before.norm" "$LAB_TMP/after.norm" && pass guard-changed-nothing ||
	fail guard-changed-nothing "$(diff "$LAB_TMP/before.norm" "$LAB_TMP/after.norm" | head -4 | tr '\n' ' ')"
hv commit force > "$LAB_TMP/reply" 2>&1 && pass commit-force || fail commit-force "$(cat "$LAB_TMP/reply")"
case "$(mode)" in "full replace ("*outside*) pass force-says-full-replace ;;
	*) fail force-says-full-replace "$(cat "$LAB_TMP/reply" | tr '\n' ' ')" ;; esac
href load "$POL" > /dev/null 2>&1 && href commit > /dev/null 2>&1 || fail ref-commit-force
same_as_ref same-after-force
at fw nft list table inet hvgate | grep -q 'dport 9999' && fail foreign-rule-gone || pass foreign-rule-gone

# 3. and then incremental again
policy "$(hosts 27)" "pass from lan to dmz service tcp port 443"
commit_both commit-after-fallbacks
case "$(mode)" in incremental*) pass "incremental-again($(mode))" ;; *) fail incremental-again "$(mode)" ;; esac
same_as_ref same-after-incremental-again

# 4. kill -9 during commits of a larger policy (stored as deltas): the
# daemon starts again, every revision in the history reads back whole, and a
# commit answered "ok" runs after the restart.
mkbig() { # mkbig K: 10000 addresses and 198.51.100.K
	python3 -c 'import sys
k = int(sys.argv[1])
a = ", ".join("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(1, 20001, 2))
print("zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\ndefine hosts = { %s, 198.51.100.%d }\n"
      "default block\npass from lan to $hosts service tcp port 80" % (a, k))' "$1" > "$POL"
}
rev() { hv status --json | sed -n 's/.*"running":{"revision":\([0-9]*\).*/\1/p'; }
mkbig 100
hv load "$POL" > /dev/null 2>&1 && hv commit > /dev/null 2>&1 || fail big-first-commit
k=1 ok=0 intact=0 revs=0
for delay in 0 0.01 0.03 0.1 0.2 0.4 0.8 1.5; do
	mkbig $k
	hv load "$POL" > /dev/null 2>&1 || fail "big-load-$k"
	hv commit > "$LAB_TMP/reply.$k" 2>&1 &
	cpid=$!
	sleep $delay
	kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
	wait $cpid
	answered=$(sed -n 's/^revision: //p' "$LAB_TMP/reply.$k")
	DAEMON_START_SECONDS=60 daemon_start || { fail "restart-after-kill-$k" "$(tail -3 "$DAEMON_LOG")"; break; }
	grep -q "cannot be run\|corrupt" "$DAEMON_LOG" && fail "store-intact-$k" "$(grep -m2 "cannot be run\|corrupt" "$DAEMON_LOG")"
	for r in $(hv history --json | python3 -c 'import json,sys; print(" ".join(str(r["revision"]) for r in json.load(sys.stdin)["revisions"]))'); do
		revs=$((revs + 1))
		hv show running revision "$r" > "$LAB_TMP/src" 2>&1 && grep -q '^pass from lan to \$hosts' "$LAB_TMP/src" &&
			intact=$((intact + 1)) || fail "revision-$r-reads-back-after-kill-$k" "$(head -c 200 "$LAB_TMP/src")"
	done
	if [ -n "$answered" ]; then
		ok=$((ok + 1))
		[ "$(rev)" = "$answered" ] && hv show running | grep -q "198.51.100.$k }" && pass "answered-commit-runs-after-kill-$k" ||
			fail "answered-commit-runs-after-kill-$k" "running $(rev), answered $answered"
	fi
	k=$((k + 1))
done
echo "  $ok of $((k - 1)) commits answered before the kill; $intact of $revs listed revisions read back"
[ "$intact" = "$revs" ] && [ "$revs" -gt 0 ] && pass "history-intact-after-kills($intact)" || fail history-intact-after-kills "$intact of $revs"
ls "$DAEMON_STATE"/revisions/*/policy.delta > /dev/null 2>&1 && pass stored-as-deltas || fail stored-as-deltas "$(ls "$DAEMON_STATE"/revisions/*)"

daemon_stop
grep -q "Sanitizer" "$DAEMON_LOG" "$LAB_TMP/ref.log" &&
	fail sanitizer "$(grep -h -m3 Sanitizer "$DAEMON_LOG" "$LAB_TMP/ref.log" | tr '\n' ' ')"
lab_done
