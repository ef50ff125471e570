#!/bin/sh
# `make demo`: the appliance's main job in a lab of network namespaces.
# Builds nothing itself (make did); creates client / fw / server namespaces,
# applies conf/policies/demo.hvp inside fw, sends real traffic that the policy
# passes and blocks, prints what happened against what the policy says, and
# removes the lab (also on Ctrl-C). The host's own ruleset is never touched.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export HVGATE_BUILD="$(cd "$BUILD" && pwd)"
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/expect_table.sh
POLICY=conf/policies/demo.hvp

[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 2; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "lab: client --lan0-- fw --dmz0-- server  (namespaces $LAB-*)"
lab3_up || { echo "demo: could not build the lab" >&2; exit 1; }

say "hvgate check $POLICY"
"$HVGATE" check "$POLICY" || exit 1

say "hvgate compile $POLICY --emit summary"
"$HVGATE" compile "$POLICY" --emit summary || exit 1

say "hvgate apply $POLICY --netns $LAB-fw   (one atomic nftables transaction)"
"$HVGATE" apply "$POLICY" --netns "$LAB-fw" || exit 1

say "traffic: what the policy says against what happened"
expect_table conf/policies/demo.expect
mism=$?

say "per-rule counters in the firewall (rule id = file:line:hash)"
at fw nft list table inet hvgate | grep -E 'comment "[^"]*demo\.hvp' |
	sed -nE 's/.*counter packets ([0-9]+) bytes ([0-9]+).*comment "([^"]*)".*/\3 \1 \2/p' |
	awk '{p[$1]+=$2; b[$1]+=$3} END {for (r in p) printf "  %-36s packets=%-4d bytes=%d\n", r, p[r], b[r]}' | sort

if [ "$mism" -eq 0 ]; then
	say "demo: every probe behaved as the policy says"
else
	say "demo: $mism probe(s) did not behave as the policy says"
fi
say "removing the lab"
exit "$mism"
