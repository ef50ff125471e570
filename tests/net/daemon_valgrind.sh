#!/bin/sh
# hvgated under valgrind (memcheck, full leak check): start, a real reload,
# a failed reload, SIGHUP, load/compare/commit/rollback/history, block
# (global and zone-scoped, carried through a reload),
# show, metrics, malformed requests, stop, with the inspection fast path's
# workers running and taking new rules on every change. No error, nothing
# lost.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

command -v valgrind > /dev/null || { skip valgrind "valgrind not installed"; exit 0; }
lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
DAEMON_START_SECONDS=90
if daemon_start valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=no --suppressions=tests/net/daemon_valgrind.supp --log-file="$LAB_TMP/vg.log"; then
	pass start-under-valgrind
else
	fail start-under-valgrind "$(tail -5 "$DAEMON_LOG")"; exit 1
fi
# a zone-scoped block, carried through the real reload below
expect block-zone hv block 198.51.100.0/24 zone dmz for 1m
echo 'pass from lan to dmz service tcp port 8080 inspect { block content /(?i)union\s+select/ }' >> "$POL"
expect reload-real hv reload
expect fastpath-took-rules wait_for 5 grep -q 'fastpath: 1 inspect rule' "$DAEMON_LOG"
sed -i 's/rate = 1000/rate = 0/' "$DAEMON_CONF"
expect_not reload-bad-config hv reload
sed -i 's/rate = 0/rate = 1000/' "$DAEMON_CONF"
kill -HUP "$DAEMON_PID"
expect load hv load "$POL"
expect compare hv compare
expect commit hv commit comment under valgrind
expect rollback hv rollback 1
expect history hv history
expect block hv block 192.0.2.5 for 1m
expect show-blocked hv show blocked
expect unblock-zone hv unblock 198.51.100.0/24 zone dmz
expect show-rules hv show rules
expect show-conntrack hv show conntrack
expect show-tenants hv show tenants
expect diff hv diff 1 2
printf '{"cmd":\n[[[[\n{"cmd":"x"}\n' | timeout 10 socat -t 5 - "UNIX-CONNECT:$DAEMON_SOCK" > /dev/null
at fw python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:'"$DAEMON_METRICS_PORT"'/metrics", timeout=20).read()' \
	&& pass metrics || fail metrics
DAEMON_STOP_TENTHS=300
daemon_stop
i=0; while [ ! -s "$LAB_TMP/vg.log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ "$DAEMON_RC" = 0 ] && pass valgrind-exit-0 || fail valgrind-exit-0 "rc=$DAEMON_RC"
grep -q "ERROR SUMMARY: 0 errors" "$LAB_TMP/vg.log" && pass valgrind-no-errors \
	|| { fail valgrind-no-errors "$(grep -E 'ERROR SUMMARY|definitely|indirectly' "$LAB_TMP/vg.log" | tr '\n' ' ')"
		# the first reports, so that a run elsewhere (CI) shows what was found
		grep -A14 -E '== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)' "$LAB_TMP/vg.log" | head -80; }
grep -q "definitely lost: 0 bytes\|no leaks are possible" "$LAB_TMP/vg.log" && pass valgrind-no-leak \
	|| fail valgrind-no-leak "$(grep -A30 'definitely lost in' "$LAB_TMP/vg.log" | head -30)"
lab_done
