#!/bin/sh
# Reload under load: an iperf3 TCP stream runs from client to server through
# the firewall namespace while hvgated applies a changed policy 100 times
# (`hvgate reload`, each a real replace of table inet hvgate). The stream
# sees no reset and no interval without data (0.5 s intervals, so no stall
# longer than 1 s), and conntrack keeps the flow. Then a policy that crashed
# the daemon's compiler (a 100,000-long define chain) is refused by reload.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

RELOADS=${RELOADS:-100}
lab3_up || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
write_policy() {
	cat > "$POL" <<P
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
default block
pass from lan to dmz service tcp port 5201
pass from lan to dmz service tcp port $((10000 + $1))
P
}
# The client's source ports of the flows to 5201 (first sport= of a line: the original direction).
flow_sports() { awk '{for (i = 1; i <= NF; i++) if ($i ~ /^sport=/) { print substr($i, 7); break }}' | sort -u | tr '\n' ' '; }
write_policy 0
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

bg server iperf3 -s -B 10.10.2.2 -p 5201
wait_for 5 sh -c "[ \"\$(ip netns exec $LAB-client python3 tests/lib/probe.py tcp 10.10.2.2 5201)\" = open ]" \
	|| { fail iperf3-server "not reachable"; exit 1; }
# Rate-limited so the 2-core machine is not saturated; long enough to cover the
# reloads (each one now syncs its revision to the disk before the apply).
at client timeout 120 iperf3 -c 10.10.2.2 -p 5201 -t "${IPERF_SECONDS:-20}" -b 50M -i 0.5 --json > "$LAB_TMP/iperf.json" 2>&1 &
IPERF=$!
sleep 2
sport=$(at fw conntrack -L -p tcp --dport 5201 --state ESTABLISHED 2>/dev/null | flow_sports)
[ -n "$sport" ] && pass "flow-in-conntrack(sports $sport)" || fail flow-in-conntrack

applies0=$(json_get "$(hv status --json)" applies)
start=$(date +%s.%N)
i=1; bad=0
while [ $i -le "$RELOADS" ]; do
	write_policy "$i"
	hv reload > "$LAB_TMP/reload.out" 2>&1 || bad=$((bad + 1))
	i=$((i + 1))
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
# The flow is still the same conntrack entry after the reloads (looked at
# before anything slow, while iperf3 still sends).
after=$(at fw conntrack -L -p tcp --dport 5201 --state ESTABLISHED 2>/dev/null | flow_sports)
applies1=$(json_get "$(hv status --json)" applies)
[ "$bad" = 0 ] && [ $((applies1 - applies0)) -eq "$RELOADS" ] \
	&& pass "reloads-applied($RELOADS in ${secs}s)" || fail reloads-applied "bad=$bad applies $applies0 -> $applies1 $(cat "$LAB_TMP/reload.out")"

[ -n "$sport" ] && [ "$sport" = "$after" ] && pass conntrack-keeps-flow || fail conntrack-keeps-flow "$sport -> $after"

wait "$IPERF"; rc=$?
[ $rc -eq 0 ] && pass iperf3-no-reset || fail iperf3-no-reset "exit $rc $(tail -3 "$LAB_TMP/iperf.json")"
python3 - "$LAB_TMP/iperf.json" > "$LAB_TMP/iv.out" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert "error" not in d, d.get("error")
iv = [i["sum"] for i in d["intervals"]]
zero = [round(i["start"], 1) for i in iv if i["bytes"] == 0 and i["seconds"] > 0.1]
assert not zero, "intervals without data at %s" % zero
print("ok %d intervals, min %.1f Mbit/s, %d retransmits" % (len(iv), min(i["bits_per_second"] for i in iv) / 1e6,
      d["end"]["sum_sent"].get("retransmits", 0)))
PY
grep -q '^ok' "$LAB_TMP/iv.out" && pass "no-stall($(cut -d' ' -f2- "$LAB_TMP/iv.out"))" || fail no-stall "$(tail -2 "$LAB_TMP/iv.out")"

# A policy that overflowed the daemon's stack on reload (a chain of 100,000
# defines, each referring to the one before) is refused with the compiler's
# error; the daemon lives on and applies the next good policy.
awk 'BEGIN { print "define a1 = 10.0.0.1"; for (i = 2; i <= 100000; i++) printf "define a%d = $a%d\n", i, i - 1; print "pass from $a100000" }' > "$POL"
hv reload > "$LAB_TMP/reload.out" 2>&1; r=$?
[ "$r" != 0 ] && grep -q 'defines refer to each other more than 64 deep' "$LAB_TMP/reload.out" && daemon_alive \
	&& pass reload-define-chain-refused || fail reload-define-chain-refused "exit $r $(head -3 "$LAB_TMP/reload.out") $(tail -3 "$DAEMON_LOG")"
write_policy 0
hv reload > "$LAB_TMP/reload.out" 2>&1 && pass reload-after-refusal || fail reload-after-refusal "$(cat "$LAB_TMP/reload.out")"

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
