#!/bin/sh
# Property test: `hvgate check` says no when the kernel would.
#
# tests/policy/gen_corpus.py writes a few thousand seeded policies, valid and
# deliberately wrong mixed (address families, forwards inside, outside and
# across tenants, overlapping segments and tenants, every NAT form, ports 0,
# conflicting defaults, VPN keys and endpoints, broken syntax). For each one,
# the driver (build/tests/policy/test_pipeline --check-kernel) runs the
# pipeline of `hvgate check`; every policy it accepts must then be accepted
#   - by the kernel, validating the netlink batch that `hvgate apply --check`
#     sends (in a throwaway namespace; the transaction is aborted), and
#   - by `nft -c -f` of its nft text (checked 50 scripts per nft call; a
#     chunk that fails is checked script by script to name the culprit).
# A sample of the policies also goes through the real `hvgate check` and
# `hvgate compile` binaries, which must give the driver's verdict and text.
#
# CHECK_KERNEL_SEED (default 1) and CHECK_KERNEL_COUNT (default 5000) replay
# or widen a run; the driver stops at CHECK_KERNEL_SECONDS (default 150) of
# wall time, and the suite needs at least MIN_COMPARED policies compared.
. "$(dirname "$0")/../lib/netns.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEED=${CHECK_KERNEL_SEED:-1}
COUNT=${CHECK_KERNEL_COUNT:-5000}
SECONDS_MAX=${CHECK_KERNEL_SECONDS:-150}
MIN_COMPARED=2000
SAMPLE_EVERY=40
CHUNK=50
DRIVER="$HVGATE_BUILD/tests/policy/test_pipeline"

lab_ns k || { echo "FAIL lab: cannot create a namespace"; exit 1; }
[ -x "$DRIVER" ] || { echo "FAIL driver: $DRIVER is not built"; exit 1; }

CORPUS="$LAB_TMP/corpus"
if ! python3 "$ROOT/tests/policy/gen_corpus.py" --seed "$SEED" --count "$COUNT" --out "$CORPUS"; then
	fail "generate" "gen_corpus.py failed"; exit 1
fi
echo "  seed $SEED: $COUNT policies generated"

# 1. check against the kernel's validation of the batch
"$DRIVER" --check-kernel "$LAB-k" "$SECONDS_MAX" "$CORPUS" > "$LAB_TMP/verdicts" 2> "$LAB_TMP/driver.err"
drc=$?
summary=$(tail -1 "$LAB_TMP/verdicts")
set -- $summary
compared=$2 accepted=$4 refused=$6 disagree=$8
if [ "$1" != compared ] || [ -z "$disagree" ]; then
	fail "driver" "exit $drc: $(tail -3 "$LAB_TMP/driver.err" | tr '\n' ' ')"; exit 1
fi
grep ' DISAGREE ' "$LAB_TMP/verdicts" | head -5 | sed "s|^|  $CORPUS/|"
if [ "$drc" -eq 0 ] && [ "$disagree" -eq 0 ] && [ "$compared" -ge "$MIN_COMPARED" ]; then
	pass "kernel-accepts-what-check-accepts (compared $compared, accepted $accepted, refused $refused, $disagree disagreements)"
else
	fail "kernel-accepts-what-check-accepts" "compared $compared (need $MIN_COMPARED), accepted $accepted, refused $refused, $disagree disagreements"
fi
# the mix must exercise both answers
if [ "$accepted" -ge $((compared / 5)) ] && [ "$refused" -ge $((compared / 5)) ]; then
	pass "corpus-mixes-valid-and-invalid ($accepted accepted, $refused refused)"
else
	fail "corpus-mixes-valid-and-invalid" "$accepted accepted, $refused refused of $compared"
fi

# 2. nft -c -f of the text of every accepted policy
ls "$CORPUS" | grep '\.nft$' | sort > "$LAB_TMP/texts"
n_text=$(wc -l < "$LAB_TMP/texts")
bad_text=0
split -l "$CHUNK" "$LAB_TMP/texts" "$LAB_TMP/chunk."
for c in "$LAB_TMP"/chunk.*; do
	(cd "$CORPUS" && cat $(cat "$c")) > "$LAB_TMP/chunk.nft"
	at k nft -c -f "$LAB_TMP/chunk.nft" 2>/dev/null && continue
	for f in $(cat "$c"); do
		if ! at k nft -c -f "$CORPUS/$f" > "$LAB_TMP/nft.err" 2>&1; then
			bad_text=$((bad_text + 1))
			[ "$bad_text" -le 5 ] && echo "  $f: $(head -1 "$LAB_TMP/nft.err")"
		fi
	done
done
if [ "$n_text" -eq "$accepted" ] && [ "$bad_text" -eq 0 ]; then
	pass "nft-c-accepts-what-check-accepts ($n_text texts, 0 refused)"
else
	fail "nft-c-accepts-what-check-accepts" "$n_text texts for $accepted accepted policies, $bad_text refused by nft -c"
fi

# 3. the real binaries on a sample: the driver's verdict, the same text
sampled=0 differ=0
for f in $(ls "$CORPUS" | grep '\.hvp$' | sort | awk -v n="$SAMPLE_EVERY" 'NR % n == 1'); do
	name=${f%.hvp}
	verdict=$(grep "^$f " "$LAB_TMP/verdicts" | cut -d' ' -f2)
	[ -n "$verdict" ] || continue
	sampled=$((sampled + 1))
	"$HVGATE" check "$CORPUS/$f" > /dev/null 2>&1; crc=$?
	"$HVGATE" compile "$CORPUS/$f" > "$LAB_TMP/compiled.nft" 2> /dev/null; prc=$?
	case "$verdict" in
	accepted) want=0 ;;
	*) want=1 ;;
	esac
	if [ "$crc" -ne "$want" ] || [ "$prc" -ne "$want" ]; then
		differ=$((differ + 1)); echo "  $f: driver $verdict, check exit $crc, compile exit $prc"
	elif [ "$want" -eq 0 ] && ! cmp -s "$LAB_TMP/compiled.nft" "$CORPUS/$name.nft"; then
		differ=$((differ + 1)); echo "  $f: compile text differs from the driver's"
	fi
done
if [ "$sampled" -gt 0 ] && [ "$differ" -eq 0 ]; then
	pass "check-and-compile-binaries-agree ($sampled sampled)"
else
	fail "check-and-compile-binaries-agree" "$differ of $sampled differ"
fi

lab_done
