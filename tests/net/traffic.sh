#!/bin/sh
# Real TCP, UDP and ICMP, v4 and v6, through a policy applied by `hvgate
# apply` in the fw namespace: what the policy passes arrives, what it blocks
# does not, rejects come back as resets / unreachables; return traffic of a
# passed connection flows (stateful) while the reverse direction is closed.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/expect_table.sh

lab3_up || { fail lab-up; exit 1; }
if ! "$HVGATE" apply conf/policies/demo.hvp --netns "$LAB-fw" > "$LAB_TMP/apply" 2>&1; then
	fail apply-demo "$(cat "$LAB_TMP/apply")"; exit 1
fi
pass apply-demo

expect_table conf/policies/demo.expect > "$LAB_TMP/table"
cat "$LAB_TMP/verdicts"
N_FAIL=$((N_FAIL + $(grep -c '^FAIL' "$LAB_TMP/verdicts")))

# UDP reject: an ICMP port unreachable comes back (policy with reject on udp 54).
cat > "$LAB_TMP/reject.hvp" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
reject from lan to dmz service udp port 54
pass from lan to dmz service tcp port 80
P
expect apply-reject "$HVGATE" apply "$LAB_TMP/reject.hvp" --netns "$LAB-fw"
r=$(probe client udp 10.10.2.2 54); [ "$r" = unreachable ] && pass udp-reject-v4 || fail udp-reject-v4 "saw $r"
r=$(probe client udp fd00:10:2::2 54); [ "$r" = unreachable ] && pass udp-reject-v6 || fail udp-reject-v6 "saw $r"

# Stateful: a TCP connection opened from lan carries data both ways.
r=$(echo | at client timeout 10 socat -T 8 -t 8 - TCP:10.10.2.2:80 2>/dev/null)
[ "$r" = hvgate-lab ] && pass tcp-reply-data || fail tcp-reply-data "got '$r'"

# The counter of the passing rule moved.
# (by its kernel id, FILE:HASH: the comment of `hvgate compile`'s rule for port 80)
kid=$("$HVGATE" compile "$LAB_TMP/reject.hvp" 2>/dev/null | grep 'dport 80 .*reject\.hvp:' | sed -n 's/.*comment "\([^"]*\)".*/\1/p' | head -1)
c=$(at fw nft list table inet hvgate | grep -F "\"${kid:-reject.hvp:?}\"" | grep -Eo 'packets [0-9]+' | awk '{s+=$2} END {print s+0}')
[ "${c:-0}" -gt 0 ] && pass rule-counter-moved || fail rule-counter-moved "packets=$c"

lab_done
