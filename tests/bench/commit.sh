#!/bin/sh
# Incremental commits (issue 16), each against the full replace in the same run:
#   commit-one-rule     one rule more in a 10,000-rule heterogeneous policy
#                       (tests/bench/gen_mixed.py), committed through hvgated
#                       (incremental), against the commit of the same two
#                       revisions through a second hvgated that always replaces
#                       the table (HVGATED_FULL_REPLACE). Goal: < 50 ms, >= 100x.
#   commit-one-element  one address more in a 1,000,000-element set: the same
#                       two daemons. Goal: < 20 ms.
#   reapply-vs-nft      the full replace of the large table over itself
#                       (`hvgate apply` twice), against `nft -f` of its text over
#                       itself: the fallback must stay honest.
# Times: the wall time of `hvgate commit` (client start, daemon, kernel,
# storage; timed by one process that runs it),
# the daemon's own apply time from its log, and the daemon's time per phase
# of the commit (the reply's `phases`). Sizes: BENCH_RULES (10000),
# BENCH_ELEMS (1000000).
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
LAB="${HVGATE_LAB_PREFIX:-w4i}$$"
. tests/lib/daemon.sh
RULES=${BENCH_RULES:-10000}
ELEMS=${BENCH_ELEMS:-1000000}
PORT2=9471

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
ms() { awk -v a="$1" 'BEGIN { printf "%.1fms", a * 1000 }'; }
ratio() { awk -v o="$1" -v b="$2" 'BEGIN { printf "%.1f", (o > 0 ? b / o : 0) }'; }

lab_ns fw || exit 1
lab_ns ref || exit 1
POL="$LAB_TMP/cur.hvp"
daemon_conf "$POL"
sed -e "s|$DAEMON_SOCK|$LAB_TMP/ref.sock|" -e "s|$DAEMON_STATE|$LAB_TMP/ref-state|" \
	-e "s|$DAEMON_EVENTS|$LAB_TMP/ref-events.log|" -e "s|\"$LAB-fw\"|\"$LAB-ref\"|" \
	-e "s|:$DAEMON_METRICS_PORT|:$PORT2|" "$DAEMON_CONF" > "$LAB_TMP/ref.conf"
href() { HVGATE_SOCKET="$LAB_TMP/ref.sock" "$HVGATE" "$@"; }
start_both() {
	DAEMON_START_SECONDS=600 daemon_start || { echo "start: $(tail -3 "$DAEMON_LOG")"; exit 1; }
	HVGATED_FULL_REPLACE=1 "$HVGATED" -c "$LAB_TMP/ref.conf" > "$LAB_TMP/ref.log" 2>&1 &
	REF_PID=$!
	LAB_PIDS="$LAB_PIDS $REF_PID"
	wait_for 600 grep -qs "hvgated: ready" "$LAB_TMP/ref.log" || { echo "ref start: $(tail -3 "$LAB_TMP/ref.log")"; exit 1; }
}
stop_both() {
	daemon_stop
	kill "$REF_PID"; wait "$REF_PID" 2>/dev/null
	rm -rf "$DAEMON_STATE" "$LAB_TMP/ref-state"
	at fw nft flush ruleset; at ref nft flush ruleset
}
# timed_commit CLIENT LOG: loads $POL, commits; prints "WALL APPLY MODE"
timed_commit() {
	"$1" load "$POL" > /dev/null 2>&1 || { echo "load failed" >&2; return 1; }
	# the client's run timed by one process around it (two `date` forks
	# around it cost a few ms of their own on a loaded machine)
	case $1 in hv) sock=$DAEMON_SOCK ;; *) sock=$LAB_TMP/ref.sock ;; esac
	wall=$(HVGATE_SOCKET="$sock" python3 -c 'import subprocess, sys, time
with open(sys.argv[1], "w") as out:
    t = time.monotonic()
    rc = subprocess.call(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
    t = time.monotonic() - t
print("%.4f" % t)
sys.exit(rc)' "$LAB_TMP/reply" "$HVGATE" commit) ||
		{ echo "commit failed: $(cat "$LAB_TMP/reply")" >&2; return 1; }
	cp "$LAB_TMP/reply" "$LAB_TMP/reply.$1"
	apply=$(sed -n 's/.*applied revision .*, \([0-9.]*\) s)$/\1/p' "$2" | tail -1)
	echo "$wall $apply $(sed -n 's/^apply: //p' "$LAB_TMP/reply" | tr ' ' '_')"
}
same_listing() {
	at fw nft list table inet hvgate | python3 tests/net/commit_incremental.py norm > "$LAB_TMP/l1"
	at ref nft list table inet hvgate | python3 tests/net/commit_incremental.py norm > "$LAB_TMP/l2"
	cmp -s "$LAB_TMP/l1" "$LAB_TMP/l2"
}
# phases CLIENT: the daemon's time per phase of the last commit (its reply's
# `phases`, docs/control-protocol.md)
phases() { sed -n 's/^  \([a-z_]*\)_ms: \([0-9.]*\)$/\1=\2/p' "$LAB_TMP/reply.$1" | tr '\n' ' '; }
report() { # NAME OURS_LINE BASE_LINE
	set -- "$1" $2 $3
	echo "  $1: incremental commit $(ms "$2") (apply $(ms "$3"), $4), full replace commit $(ms "$5") (apply $(ms "$6"), $7)"
	echo "bench: $1 ours=$(ms "$2") baseline=$(ms "$5") ratio=$(ratio "$2" "$5") apply_ours=$(ms "$3") apply_base=$(ms "$6")"
}

# 1. commit-one-rule
python3 tests/bench/gen_mixed.py --rules "$RULES" > "$POL"
start_both
python3 tests/bench/gen_mixed.py --rules "$RULES" --extra-port 4242 > "$POL"
o=$(timed_commit hv "$DAEMON_LOG") && b=$(timed_commit href "$LAB_TMP/ref.log") || exit 1
report commit-one-rule "$o" "$b"
echo "  daemon phases (ms): $(phases hv)"
echo "  reference phases (ms): $(phases href)"
grep "applied revision" "$DAEMON_LOG" | tail -1 | sed 's/^/  daemon: /'
same_listing && echo "  both tables list the same ($(wc -l < "$LAB_TMP/l1") lines)" || { echo "  the tables differ"; exit 1; }
stop_both

# 2. commit-one-element
python3 tests/bench/gen_policy.py --rules 2 --lists 1 --addresses "$ELEMS" > "$POL"
start_both
sed -i 's/^define list_0 = {$/define list_0 = { 192.0.2.1,/' "$POL"
o=$(timed_commit hv "$DAEMON_LOG") && b=$(timed_commit href "$LAB_TMP/ref.log") || exit 1
report commit-one-element "$o" "$b"
echo "  daemon phases (ms): $(phases hv)"
echo "  reference phases (ms): $(phases href)"
grep "applied revision" "$DAEMON_LOG" | tail -1 | sed 's/^/  daemon: /'
same_listing && echo "  both tables list the same ($(wc -l < "$LAB_TMP/l1") lines)" || { echo "  the tables differ"; exit 1; }
stop_both

# 3. reapply-vs-nft: the large table over itself
python3 tests/bench/gen_mixed.py --rules "$RULES" > "$POL"
"$HVGATE" compile "$POL" > "$LAB_TMP/big.nft" 2> /dev/null || { echo "compile failed"; exit 1; }
"$HVGATE" apply "$POL" --netns "$LAB-fw" > /dev/null 2>&1 || { echo "apply failed"; exit 1; }
t0=$(now); "$HVGATE" apply "$POL" --netns "$LAB-fw" > /dev/null 2>&1 || exit 1; o=$(sub "$(now)" "$t0")
at ref nft -f "$LAB_TMP/big.nft" || exit 1
t0=$(now); at ref nft -f "$LAB_TMP/big.nft" || exit 1; b=$(sub "$(now)" "$t0")
echo "  reapply-vs-nft: hvgate apply over itself $(ms "$o"), nft -f over itself $(ms "$b")"
echo "bench: reapply-vs-nft ours=$(ms "$o") baseline=$(ms "$b") ratio=$(ratio "$o" "$b")"
