#!/bin/sh
# Incremental commits (issue 16) reach the kernel state of a full replace.
# A seeded sequence of edits (tests/net/commit_incremental.py: rules added,
# removed, moved, changed; address lists grown and shrunk; tenants added and
# removed; NAT changed) is committed revision by revision through hvgated in
# namespace fw, and the same revisions through a second hvgated in namespace
# ref that always replaces the table (HVGATED_FULL_REPLACE). After every
# commit `nft list table inet hvgate` of both, in normal form (counter values
# and element timeouts left out, blocks sorted by name), must be equal; the
# reply of fw must say "incremental" unless it says why not. Besides:
#  - the ping rule's counter (traffic from lan; the rule never changes, other
#    rules of its chain do) survives every incremental commit, one of each
#    kind of edit at least (a full replace, which must say why, resets it);
#  - the block-list entries and the conntrack entry of the ping flow survive;
#  - what a delta leaves for after its reply (handles, counter start times,
#    the committed candidate's files) is not in its phases, and done by the
#    next request.
# SEED and STEPS from the environment (defaults 16 and 40).
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
LAB="${HVGATE_LAB_PREFIX:-w4i}$$"
. tests/lib/daemon.sh

SEED=${SEED:-16}
STEPS=${STEPS:-40}
PY=tests/net/commit_incremental.py
GEN="$LAB_TMP/gen"
python3 "$PY" gen "$SEED" "$STEPS" "$GEN" || { fail generate; exit 1; }
echo "seed $SEED, $STEPS steps"

lab_ns fw || { fail lab-up; exit 1; }
lab_ns ref || { fail lab-up; exit 1; }
lab_ns lan || { fail lab-up; exit 1; }
lab_link fw lan0 lan eth0
lab_addr fw lan0 10.10.1.1/24
lab_addr lan eth0 10.10.1.2/24

POL="$LAB_TMP/cur.hvp"
cp "$GEN/0.hvp" "$POL"
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

# The reference daemon: same policy path (rule comments carry it), its own
# namespace, socket, state and log.
REF_CONF="$LAB_TMP/ref.conf"
REF_SOCK="$LAB_TMP/ref.sock"
sed -e "s|$DAEMON_SOCK|$REF_SOCK|" -e "s|$DAEMON_STATE|$LAB_TMP/ref-state|" \
	-e "s|$DAEMON_EVENTS|$LAB_TMP/ref-events.log|" -e "s|\"$LAB-fw\"|\"$LAB-ref\"|" \
	-e "s|:$DAEMON_METRICS_PORT|:9470|" "$DAEMON_CONF" > "$REF_CONF"
HVGATED_FULL_REPLACE=1 "$HVGATED" -c "$REF_CONF" > "$LAB_TMP/ref.log" 2>&1 &
LAB_PIDS="$LAB_PIDS $!"
wait_for 10 grep -qs "hvgated: ready" "$LAB_TMP/ref.log" || { fail ref-start "$(tail -5 "$LAB_TMP/ref.log")"; exit 1; }
href() { HVGATE_SOCKET="$REF_SOCK" "$HVGATE" "$@"; }

table() { at "$1" nft list table inet hvgate; }
# The ping rule's kernel id (its rule comment: FILE:HASH, no line).
ping_kid=$(hv show rules --json | python3 -c 'import json,sys
print([r["kernel_id"] for r in json.load(sys.stdin)["rules"] if ":5:" in r["id"]][0])')
case "$ping_kid" in *cur.hvp:[0-9a-f]*) pass "ping-kernel-id($ping_kid)" ;; *) fail ping-kernel-id "$ping_kid" ;; esac
ping_count() { table fw | python3 "$PY" counter "\"$ping_kid\""; }

# Block-list entries in both; traffic that hits the ping rule and leaves a
# conntrack entry.
for h in hv href; do
	$h block 192.0.2.77 > /dev/null && $h block 2001:db8::77 for 1h > /dev/null || fail block-add
done
at lan ping -c 3 -i 0.2 -W 2 10.10.1.1 > /dev/null || fail ping-before
before=$(ping_count)
[ "$before" -gt 0 ] && pass ping-counted || fail ping-counted "counter $before"

t_start=$(date +%s)
sleep 1
same=0 differ=0 incr=0 full=0 kept=0 reset=0 kinds_kept=""
i=1
while [ $i -le "$STEPS" ]; do
	step=$(sed -n "${i}p" "$GEN/steps.txt")
	cp "$GEN/$i.hvp" "$POL"
	c=$(ping_count)
	if ! hv load "$POL" > "$LAB_TMP/out" 2>&1 || ! hv commit > "$LAB_TMP/reply" 2>&1; then
		fail "commit-$i" "$step: $(cat "$LAB_TMP/out" "$LAB_TMP/reply" | tail -3 | tr '\n' ' ')"
		i=$((i + 1)); continue
	fi
	if ! href load "$POL" > /dev/null 2>&1 || ! href commit > /dev/null 2>&1; then
		# an edit that leaves the ruleset unchanged has nothing to commit
		cmp -s "$GEN/$i.hvp" "$GEN/$((i - 1)).hvp" || fail "ref-commit-$i" "$step"
	fi
	mode=$(sed -n 's/^apply: //p' "$LAB_TMP/reply")
	case "$mode" in incremental*) incr=$((incr + 1)) ;; *) full=$((full + 1)); echo "  step $i ($step): $mode" ;; esac
	if [ "$(table fw | python3 "$PY" norm)" = "$(table ref | python3 "$PY" norm)" ]; then
		same=$((same + 1))
	else
		differ=$((differ + 1))
		table fw | python3 "$PY" norm > "$LAB_TMP/fw.norm"; table ref | python3 "$PY" norm > "$LAB_TMP/ref.norm"
		fail "same-as-full-$i" "$step: $(diff "$LAB_TMP/ref.norm" "$LAB_TMP/fw.norm" | head -6 | tr '\n' ' ')"
	fi
	now=$(ping_count)
	if [ "$now" -ge "$c" ] && [ "$c" -gt 0 ]; then
		kept=$((kept + 1)); kinds_kept="$kinds_kept ${step%%(*}"
	else
		case "$mode" in incremental*) reset=$((reset + 1)) ;; esac
		echo "  step $i ($step): ping counter $c -> $now ($mode)"
	fi
	# traffic again, so that the next step has something to keep
	at lan ping -c 1 -W 2 10.10.1.1 > /dev/null
	i=$((i + 1))
done
echo "  $same equal, $differ different; $incr incremental, $full full; ping counter kept $kept, reset $reset"
[ "$differ" = 0 ] && [ "$same" -gt 0 ] && pass "every-commit-equals-full-replace($same)" || fail every-commit-equals-full-replace "$differ differ"
[ "$incr" -ge $((STEPS / 2)) ] && pass "mostly-incremental($incr/$STEPS)" || fail mostly-incremental "$incr of $STEPS"
for k in rule-add rule-remove rule-move rule-change list-grow list-shrink tenant-add tenant-remove nat-change; do
	if ! grep -qx "$k" "$GEN/steps.txt"; then skip "counter-kept-across-$k" "no such edit in this sequence"; continue; fi
	case " $kinds_kept " in *" $k "*) pass "counter-kept-across-$k" ;; *) fail "counter-kept-across-$k" "never (kept:$kinds_kept)" ;; esac
done
[ "$reset" = 0 ] && pass "ping-counter-kept-every-incremental-commit($kept)" || fail ping-counter-kept-every-incremental-commit "reset $reset times"
[ "$(ping_count)" -ge "$before" ] && pass ping-counter-not-reset-overall || fail ping-counter-not-reset-overall
table fw | grep -q '192.0.2.77' && pass block-v4-survives || fail block-v4-survives
table fw | grep -q '2001:db8::77' && pass block-v6-survives || fail block-v6-survives
table fw | grep -q '2001:db8::77.*expires' && pass block-timeout-survives || fail block-timeout-survives
at fw conntrack -L -p icmp 2>/dev/null | grep -q 10.10.1.2 && pass conntrack-survives || fail conntrack-survives
# show rules: the ping rule counts since the start, a rule of the last
# commits since then.
since=$(hv show rules --json | python3 -c 'import json,sys
rules=json.load(sys.stdin)["rules"]
ping=[r["counters_since"] for r in rules if ":5:" in r["id"]]
print(ping[0] if ping and ping[0] else 0, max((r["counters_since"] or 0) for r in rules))')
# (whole seconds: the first apply may share t_start's second; every commit of
# the sequence comes at least a second later)
[ "${since% *}" -gt 0 ] && [ "${since% *}" -le "$t_start" ] && pass "counters-since-kept($since)" || fail counters-since-kept "$since, sequence began $t_start"
[ "${since#* }" -ge "$t_start" ] && pass counters-since-new-rules || fail counters-since-new-rules "$since"
# and `hvgate show rules` prints it: the ping rule's line ends with it
want=$(date -d "@${since% *}" '+%Y-%m-%d %H:%M:%S')
hv show rules > "$LAB_TMP/rules.txt" 2>&1
head -1 "$LAB_TMP/rules.txt" | grep -q 'COUNTING SINCE$' && grep ':5:' "$LAB_TMP/rules.txt" | grep -q " $want\$" &&
	pass "show-rules-counting-since($want)" || fail show-rules-counting-since "want $want: $(head -3 "$LAB_TMP/rules.txt" | tr '\n' '|')"
# A rule inserted above the ping rule moves it to line 6; its kernel id
# stays, so the commit sends the new rule only and the ping rule's counter
# is kept, and `show rules` names it by its new line with those counters.
at lan ping -c 2 -i 0.2 -W 2 10.10.1.1 > /dev/null
c=$(ping_count)
hv show rules --json > "$LAB_TMP/rules.before"
sleep 1
sed -i '5i pass from lan to self service tcp port 2222' "$POL"
if hv load "$POL" > "$LAB_TMP/out" 2>&1 && hv commit > "$LAB_TMP/reply" 2>&1; then
	mode=$(sed -n 's/^apply: //p' "$LAB_TMP/reply")
	now=$(ping_count)
	[ "$c" -gt 0 ] && [ "$now" -ge "$c" ] && pass "counter-kept-across-insert-above($c -> $now, $mode)" ||
		fail counter-kept-across-insert-above "$c -> $now ($mode)"
	# no rule but the new one was sent again: each keeps its counters_since
	# (a second has passed since the last commit, so a re-sent rule's moves)
	hv show rules --json > "$LAB_TMP/rules.after"
	resent=$(python3 -c 'import json,sys
since=lambda f: {r["kernel_id"]: r["counters_since"] for r in json.load(open(f))["rules"]}
a, b = since(sys.argv[1]), since(sys.argv[2])
print(" ".join(k for k in a if k in b and a[k] != b[k]))' "$LAB_TMP/rules.before" "$LAB_TMP/rules.after")
	case "$mode" in incremental*) [ -z "$resent" ] && pass "insert-above-sends-only-the-new-rule($mode)" ||
		fail insert-above-sends-only-the-new-rule "re-sent: $resent" ;;
		*) fail insert-above-sends-only-the-new-rule "$mode" ;; esac
	moved=$(hv show rules --json | python3 -c 'import json,sys
r=[r for r in json.load(sys.stdin)["rules"] if r["kernel_id"] == sys.argv[1]][0]
print(r["id"].split(":")[-2], r["packets"])' "$ping_kid")
	[ "${moved% *}" = 6 ] && [ "${moved#* }" -ge "$c" ] && pass "show-rules-maps-moved-rule($moved)" ||
		fail show-rules-maps-moved-rule "line and packets: $moved, want 6 and >= $c"
	# What a delta leaves for after its reply (the kernel handles of the
	# chains it changed, when each rule's counters started, the committed
	# candidate's files) is not in its time: after_ms and candidate_ms are
	# 0; the next request finds it done (the moved rule above; no candidate).
	after=$(sed -n 's/^  after_ms: //p' "$LAB_TMP/reply"); cand=$(sed -n 's/^  candidate_ms: //p' "$LAB_TMP/reply")
	awk -v a="$after" -v c="$cand" 'BEGIN { exit !(a != "" && a + 0 < 0.05 && c != "" && c + 0 == 0) }' &&
		pass "delta-settles-after-reply(after $after ms, candidate $cand ms)" ||
		fail delta-settles-after-reply "after_ms $after, candidate_ms $cand"
	hv status --json | grep -q '"candidate":null' && [ ! -e "$DAEMON_STATE/candidate.json" ] &&
		[ ! -e "$DAEMON_STATE/candidate.bundle" ] && pass committed-candidate-removed ||
		fail committed-candidate-removed "$(ls "$DAEMON_STATE")"
else
	fail insert-above "$(cat "$LAB_TMP/out" "$LAB_TMP/reply" | tail -3 | tr '\n' ' ')"
fi
grep -q "the kernel refused the delta" "$DAEMON_LOG" && fail no-delta-refused "$(grep -m1 'refused the delta' "$DAEMON_LOG")" || pass no-delta-refused
daemon_stop
if grep -q "Sanitizer" "$DAEMON_LOG" "$LAB_TMP/ref.log"; then
	fail sanitizer "$(grep -h -m3 Sanitizer "$DAEMON_LOG" "$LAB_TMP/ref.log" | tr '\n' ' ')"
fi
lab_done
