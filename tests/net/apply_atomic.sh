#!/bin/sh
# hvgate apply is one transaction: in a lab namespace that also holds a
# foreign table (table inet other, made with nft), an accepted policy
# replaces table inet hvgate; a policy the kernel refuses changes nothing at
# all (`nft list ruleset` byte-identical) and the error names the policy
# line; --check changes nothing; the foreign table is never touched; and
# --expect-genid refuses when someone else changed the ruleset meanwhile.
. "$(dirname "$0")/../lib/netns.sh"
DIR=$(cd "$(dirname "$0")" && pwd)/atomic

nsx() { r=$1; shift; ip netns exec "$LAB-$r" "$@"; }
apply() { "$HVGATE" apply "$@" --netns "$LAB-fw"; }
ruleset() { nsx fw nft list ruleset; }
foreign() { nsx fw nft list table inet other; }
# generation N from "... (generation A -> N)" or "... generation N)"
genid_of() { sed -nE 's/.*generation ([0-9]+ -> )?([0-9]+)\).*/\2/p' "$1" | head -1; }

lab_ns fw || exit 1
# twin: gets the foreign table and every foreign change, never an apply
lab_ns twin || exit 1
for r in fw twin; do
	nsx $r nft -f - <<'NFT' || { fail "foreign table" "nft -f failed"; exit 1; }
table inet other {
	set peers { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2 } }
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @peers counter accept comment "foreign rule"
	}
}
NFT
done
foreign > "$LAB_TMP/foreign.0"

# 1. an accepted policy
if apply "$DIR/good.hvp" > "$LAB_TMP/out1" 2>&1; then
	pass "apply good policy: $(head -1 "$LAB_TMP/out1")"
else
	fail "apply good policy" "$(head -3 "$LAB_TMP/out1" | tr '\n' ' ')"
fi
expect "table inet hvgate exists" nsx fw nft list table inet hvgate
# The kernel id of an unlabelled rule: FILE:HASH, without the line
# (policy/model.h), so that a rule inserted above does not rename it.
if nsx fw nft list table inet hvgate | grep -Eq 'comment "'"$DIR"'/good\.hvp:[0-9a-f]{6}"'; then
	pass "rule comment carries the policy rule's kernel id"
else
	fail "rule comment carries the policy rule's kernel id"
fi
foreign > "$LAB_TMP/foreign.1"
expect "foreign table untouched by apply" cmp "$LAB_TMP/foreign.0" "$LAB_TMP/foreign.1"

# 2. a policy the kernel would refuse (a limit whose token bucket overflows):
#    the compiler refuses it first, nothing changes, the error points at it.
#    (The kernel's own refusal of a batch is 2b: the checker leaves no policy
#    for it to refuse, tests/net/check_kernel.sh.)
ruleset > "$LAB_TMP/before"
apply "$DIR/refused.hvp" > "$LAB_TMP/out2" 2>&1
rc=$?
ruleset > "$LAB_TMP/after"
if [ "$rc" -eq 1 ]; then pass "refused apply exits 1"; else fail "refused apply exits 1" "exit $rc: $(head -2 "$LAB_TMP/out2")"; fi
expect "refused apply: ruleset byte-identical" cmp "$LAB_TMP/before" "$LAB_TMP/after"
if grep -q "refused.hvp:8:1: error: limit 10/hour with burst 4000000000 overflows the kernel's token bucket" "$LAB_TMP/out2"; then
	pass "error points at refused.hvp:8:1"
else
	fail "error points at refused.hvp:8:1" "$(head -3 "$LAB_TMP/out2" | tr '\n' ' ')"
fi
if nsx fw nft list table inet hvgate | grep -q 'refused.hvp'; then
	fail "no rule of the refused policy in the kernel"
else
	pass "no rule of the refused policy in the kernel"
fi

# 2b. the same without relying on the checker: an IR table built by hand
#     whose second rule jumps to a missing chain, applied by nftio_apply()
ruleset > "$LAB_TMP/before"
"$HVGATE_BUILD/tests/policy/test_emit_nftnl" --apply-broken "$LAB-fw" > "$LAB_TMP/out3" 2>&1
rc=$?
ruleset > "$LAB_TMP/after"
if [ "$rc" -eq 1 ] && grep -q "^broken.hvp:3:5: error: kernel refused rule: No such file or directory (rule 2 of chain input)" "$LAB_TMP/out3"; then
	pass "IR jumping to a missing chain: refused at broken.hvp:3:5"
else
	fail "IR jumping to a missing chain: refused at broken.hvp:3:5" "exit $rc: $(head -2 "$LAB_TMP/out3" | tr '\n' ' ')"
fi
expect "refused IR: ruleset byte-identical" cmp "$LAB_TMP/before" "$LAB_TMP/after"

# 3. --check: the kernel validates, nothing changes
ruleset > "$LAB_TMP/before"
expect "--check of another good policy succeeds" apply "$DIR/good2.hvp" --check
ruleset > "$LAB_TMP/after"
expect "--check changes nothing" cmp "$LAB_TMP/before" "$LAB_TMP/after"
expect_not "--check of the refused policy fails" apply "$DIR/refused.hvp" --check
ruleset > "$LAB_TMP/after"
expect "--check of the refused policy changes nothing" cmp "$LAB_TMP/before" "$LAB_TMP/after"

# 4. concurrent change: apply with the generation we saw, after someone
#    else changed the ruleset, is refused whole
apply "$DIR/good.hvp" --check > "$LAB_TMP/chk" 2>&1
gen=$(genid_of "$LAB_TMP/chk")
if [ -n "$gen" ]; then pass "generation read: $gen"; else fail "generation read" "$(cat "$LAB_TMP/chk")"; fi
nsx fw nft add element inet other peers '{ 192.0.2.3 }'
nsx twin nft add element inet other peers '{ 192.0.2.3 }'
ruleset > "$LAB_TMP/before"
apply "$DIR/good2.hvp" --expect-genid "$gen" > "$LAB_TMP/out4" 2>&1
rc=$?
ruleset > "$LAB_TMP/after"
if [ "$rc" -eq 1 ] && grep -q "ruleset changed by someone else since generation $gen" "$LAB_TMP/out4"; then
	pass "stale --expect-genid refused with a clear message"
else
	fail "stale --expect-genid refused" "exit $rc: $(head -2 "$LAB_TMP/out4" | tr '\n' ' ')"
fi
expect "stale --expect-genid: ruleset byte-identical" cmp "$LAB_TMP/before" "$LAB_TMP/after"
apply "$DIR/good.hvp" --check > "$LAB_TMP/chk" 2>&1
gen=$(genid_of "$LAB_TMP/chk")
if apply "$DIR/good2.hvp" --expect-genid "$gen" > "$LAB_TMP/out5" 2>&1 &&
	nsx fw nft list table inet hvgate | grep -Eq 'good2\.hvp:[0-9a-f]{6}"'; then
	pass "current --expect-genid applies"
else
	fail "current --expect-genid applies" "$(head -2 "$LAB_TMP/out5" | tr '\n' ' ')"
fi

# 5. queueing to the fast path: the native queue expression where the kernel
#    has it, else the xt NFQUEUE target (nft_compat); either way nft lists
#    the rule as the queue it is (number and bypass decoded from the info)
if apply "$DIR/inspect.hvp" --queue 3 > "$LAB_TMP/out6" 2>&1 &&
	nsx fw nft list table inet hvgate 2>/dev/null | grep -q 'queue num 3 bypass'; then
	how=$(nsx fw nft --debug=netlink list table inet hvgate 2>/dev/null |
		grep -oE 'target name NFQUEUE rev 3|queue num 3' | head -1)
	pass "inspect rule queues to 3 with bypass (${how:-?})"
else
	fail "inspect rule queues to 3 with bypass" "$(head -3 "$LAB_TMP/out6" | tr '\n' ' ')"
fi

# 6. the foreign table saw only its own change, never ours
foreign > "$LAB_TMP/foreign.2"
nsx twin nft list table inet other > "$LAB_TMP/foreign.twin"
expect "foreign table equals its never-applied twin" cmp "$LAB_TMP/foreign.twin" "$LAB_TMP/foreign.2"
lab_done
