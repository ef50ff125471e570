#!/bin/sh
# Demo part 1: hvgated as the firewall between a client network (lan) and a
# server network (dmz), running conf/policies/demo.hvp in namespace $LAB-fw.
# Shows: a checked policy applied in one transaction by the daemon; real
# traffic against what the policy says; per-rule counters and the log of a
# logged rule, from the daemon; a `commit confirmed` that is not confirmed
# and reverts by itself; the dynamic block list; an `inspect` rule whose
# flows the fast path judges by their content.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export HVGATE_BUILD="$(cd "$BUILD" && pwd)"
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/expect_table.sh
. tests/lib/daemon.sh
POLICY=conf/policies/demo.hvp

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
problems=0
want() { # want WHAT EXPECTED SEEN
	if [ "$2" = "$3" ]; then echo "   $1: $3 (as expected)"; else echo "   $1: saw $3, expected $2  <-- MISMATCH"; problems=$((problems + 1)); fi
}

say "part 1: a firewall. lab: client --lan0-- fw --dmz0-- server  (namespaces $LAB-*)"
lab3_up || { echo "demo: could not build the lab" >&2; exit 1; }

say "hvgate check $POLICY"
"$HVGATE" check "$POLICY" || exit 1

say "hvgated starts on $POLICY in namespace $LAB-fw (with the inspection fast path)"
daemon_conf "$PWD/$POLICY" 'fastpath: { enabled = true; queue = 100; workers = 1; };'
daemon_start || { echo "demo: hvgated did not become ready"; cat "$DAEMON_LOG"; exit 1; }
sed 's/^/   /' "$DAEMON_LOG"
hv status

say "traffic: what the policy says against what happened"
expect_table conf/policies/demo.expect
problems=$((problems + $?))

say "hvgate show rules   (per source rule: packets, bytes, last hit)"
sleep 0.5
hv show rules

say "hvgate show log   (the 'ssh-from-lan' rule logs through NFLOG)"
hv show log | tail -3

say "commit confirmed: a candidate that opens tcp 8080, not confirmed, reverts by itself"
cp "$POLICY" "$LAB_TMP/candidate.hvp"
echo 'pass from lan to dmz service tcp port 8080' >> "$LAB_TMP/candidate.hvp"
hv load "$LAB_TMP/candidate.hvp" && hv compare
hv commit confirmed 3 comment "demo: try 8080"
want "tcp 10.10.2.2:8080 after the commit" open "$(probe client tcp 10.10.2.2 8080)"
echo "   (no 'hvgate confirm' ... waiting 4 s)"
sleep 4
want "tcp 10.10.2.2:8080 after the deadline" timeout "$(probe client tcp 10.10.2.2 8080)"
hv history | tail -4

say "hvgate block 10.10.1.2 for 60s   (dynamic block list, no recompile)"
hv block 10.10.1.2 for 60s
want "client web while blocked" timeout "$(probe client tcp 10.10.2.2 80)"
hv unblock 10.10.1.2
want "client web after unblock" open "$(probe client tcp 10.10.2.2 80)"

say "inspection: a commit adds an inspect rule for tcp 8000 (a server that answers each request line)"
bg server socat TCP6-LISTEN:8000,fork,reuseaddr,ipv6only=0 SYSTEM:'read l; echo "got $l"'
cp "$POLICY" "$LAB_TMP/inspect.hvp"
cat >> "$LAB_TMP/inspect.hvp" <<'P'
pass from lan to dmz service tcp port 8000 inspect {
  block content /(?i)union\s+select/ log "sqli"
}
P
tail -3 "$LAB_TMP/inspect.hvp" | sed 's/^/   /'
hv load "$LAB_TMP/inspect.hvp" && hv commit comment "demo: inspect tcp 8000"
ask() { printf '%s\n' "$1" | at client timeout 5 socat -T 3 -t 3 - TCP:10.10.2.2:8000 2>/dev/null | head -1; }
r=$(ask 'GET /products?id=7'); want "GET /products?id=7" "got GET /products?id=7" "${r:-no answer}"
r=$(ask 'GET /products?id=7 UNION SELECT password FROM users')
want "GET /products?id=7 UNION SELECT ..." "no answer" "${r:-no answer}"
echo "   the fast path's event:"
sleep 0.3
hv show log | grep fastpath | tail -1 | sed 's/^/   /'

say "hvgated stops; the ruleset stays in place (a firewall fails closed)"
daemon_stop
want "ruleset after stop" present "$(at fw nft list table inet hvgate >/dev/null 2>&1 && echo present || echo absent)"

if [ "$problems" -eq 0 ]; then
	say "part 1: everything behaved as the policy says"
else
	say "part 1: $problems thing(s) did not behave as the policy says"
fi
exit "$problems"
