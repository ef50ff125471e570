#!/bin/sh
# The two backends leave the same kernel state: for every policy of the
# corpus (tests/net/agree/*.hvp and conf/policies/*.hvp), `nft -f` of
# `hvgate compile --emit nft` in one namespace and `hvgate apply` (the
# netlink batch of policy/emit_nftnl.c) in another must give the same
# `nft list table inet hvgate` and, stronger, the same kernel objects
# attribute by attribute (tests/net/nftdump.py: set userdata, element keys
# and flags, rule expressions; handles and hash-set element order aside).
# A second corpus of IR tables built by hand covers what policies do not
# reach yet (every NAT form, concatenated intervals, host-order intervals,
# timeouts, map-set, mark set, reject kinds, notrack): the unit-test binary
# writes each as nft text and as the raw batch (--write-corpus), and
# nftsend.py sends the batch unchanged.
. "$(dirname "$0")/../lib/netns.sh"
DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)

# run in a lab namespace (the word "in" is reserved after "!" in dash)
nsx() { r=$1; shift; ip netns exec "$LAB-$r" "$@"; }

new_pair() {
	for r in text nl; do ip netns del "$LAB-$r" 2>/dev/null; done
	LAB_NS=""
	lab_ns text && lab_ns nl
}
new_pair || exit 1

# Expiry times count down; nothing else may differ.
normalize() { sed -E 's/ expires [0-9hms]+//'; }

compare() { # NAME POLICY [compile/apply options...]
	name=$1; pol=$2; shift 2
	if ! "$HVGATE" compile "$pol" "$@" > "$LAB_TMP/$name.nft" 2> "$LAB_TMP/err"; then
		fail "$name compiles" "$(head -3 "$LAB_TMP/err" | tr '\n' ' ')"; return
	fi
	if ! nsx text nft -f "$LAB_TMP/$name.nft" 2> "$LAB_TMP/err"; then
		if grep -q 'queue' "$LAB_TMP/$name.nft" && grep -q 'No such file' "$LAB_TMP/err"; then
			skip "$name" "nft text uses the native queue expression this kernel lacks"
		else
			fail "$name nft -f" "$(head -3 "$LAB_TMP/err" | tr '\n' ' ')"
		fi
		return
	fi
	if ! "$HVGATE" apply "$pol" --netns "$LAB-nl" "$@" > "$LAB_TMP/out" 2>&1; then
		fail "$name apply" "$(head -3 "$LAB_TMP/out" | tr '\n' ' ')"; return
	fi
	same_state "$name"
}

same_state() { # NAME: the two namespaces hold the same table
	name=$1
	nsx text nft list table inet hvgate | normalize > "$LAB_TMP/$name.list.text"
	nsx nl nft list table inet hvgate | normalize > "$LAB_TMP/$name.list.nl"
	if cmp -s "$LAB_TMP/$name.list.text" "$LAB_TMP/$name.list.nl"; then
		pass "$name: nft list identical ($(wc -l < "$LAB_TMP/$name.list.nl") lines)"
	else
		fail "$name: nft list differs" "$(diff "$LAB_TMP/$name.list.text" "$LAB_TMP/$name.list.nl" | head -6 | tr '\n' ' ')"
	fi
	nsx text python3 "$DIR/nftdump.py" > "$LAB_TMP/$name.raw.text"
	nsx nl python3 "$DIR/nftdump.py" > "$LAB_TMP/$name.raw.nl"
	if [ -s "$LAB_TMP/$name.raw.nl" ] && cmp -s "$LAB_TMP/$name.raw.text" "$LAB_TMP/$name.raw.nl"; then
		pass "$name: kernel objects identical ($(wc -l < "$LAB_TMP/$name.raw.nl") objects)"
	else
		fail "$name: kernel objects differ" "$(diff "$LAB_TMP/$name.raw.text" "$LAB_TMP/$name.raw.nl" | head -4 | cut -c1-160 | tr '\n' ' ')"
	fi
}

# a generated policy large enough for dispatch maps with a size hint (the
# optimizer gives one to hash maps of 1024 elements or more)
python3 "$ROOT/tests/bench/gen_policy.py" --rules 300 --addresses 5000 --lists 2 > "$LAB_TMP/generated.hvp" ||
	fail "generated policy written"
# a seeded policy of many rule shapes (host lists, source networks with port
# ranges, ICMP, IPv6, rejects, logs): concatenated-range maps and their
# chains (policy/classify.c), as agree/classified.hvp on a larger scale
python3 "$ROOT/tests/bench/gen_policy.py" --hetero --rules 400 --seed 7 > "$LAB_TMP/hetero.hvp" ||
	fail "heterogeneous policy written"
"$HVGATE" compile "$LAB_TMP/hetero.hvp" --emit summary 2>/dev/null | grep -q 'classify   [1-9]' ||
	fail "heterogeneous policy is classified" "no concatenated-range map in its summary"
# host lists of 32 addresses or more: shared sets, and the list maps
# (clsl_H) of the label chains that hold several of their rules
python3 "$ROOT/tests/bench/gen_policy.py" --hetero --rules 400 --seed 7 --addresses 8000 > "$LAB_TMP/hetero-lists.hvp" ||
	fail "heterogeneous policy with long host lists written"
"$HVGATE" compile "$LAB_TMP/hetero-lists.hvp" --emit nft 2>/dev/null | grep -q 'vmap @clsl_' ||
	fail "long host lists become list maps" "no clsl_ map in its ruleset"
# another shape: 50 zones, nested IPv6 prefixes, overlapping port ranges,
# wildcards, shared IPv6 source lists
python3 "$ROOT/tests/bench/gen_policy.py" --shape overlap --rules 300 --seed 7 > "$LAB_TMP/overlap.hvp" ||
	fail "overlap policy written"
for pol in "$DIR"/agree/*.hvp "$ROOT"/conf/policies/*.hvp "$LAB_TMP/generated.hvp" "$LAB_TMP/hetero.hvp" \
	"$LAB_TMP/hetero-lists.hvp" "$LAB_TMP/overlap.hvp"; do
	[ -e "$pol" ] || continue
	base=$(basename "$pol" .hvp)
	compare "$base" "$pol"
	compare "$base+nflog" "$pol" --nflog-group 5
	compare "$base+unoptimized" "$pol" --no-optimize
done

# the hand-made IR corpus, each table in a fresh pair of namespaces
GEN="$HVGATE_BUILD/tests/policy/test_emit_nftnl"
mkdir -p "$LAB_TMP/ir"
if ! "$GEN" --write-corpus "$LAB_TMP/ir" > "$LAB_TMP/err" 2>&1; then
	fail "IR corpus written" "$(head -3 "$LAB_TMP/err" | tr '\n' ' ')"
else
	for f in "$LAB_TMP"/ir/*.nft; do
		name=$(basename "$f" .nft)
		new_pair || exit 1
		if ! nsx text nft -f "$f" 2> "$LAB_TMP/err"; then
			fail "$name nft -f" "$(head -3 "$LAB_TMP/err" | tr '\n' ' ')"; continue
		fi
		if ! nsx nl python3 "$DIR/nftsend.py" "$LAB_TMP/ir/$name.batch" > "$LAB_TMP/err" 2>&1; then
			fail "$name batch accepted" "$(head -3 "$LAB_TMP/err" | tr '\n' ' ')"; continue
		fi
		same_state "$name"
	done
fi
lab_done
