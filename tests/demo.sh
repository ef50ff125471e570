#!/bin/sh
# `make demo`: the appliance's main job, through hvgated, in labs of network
# namespaces. Part 1: a firewall between a client and a server network
# (conf/policies/demo.hvp). Part 2: two tenants with the same addresses side
# by side behind one appliance (conf/policies/demo-tenants.hvp). Each part
# builds its own lab and removes it on exit, also on Ctrl-C; the host's own
# ruleset is never touched. Exit status: the number of parts that saw
# something other than what the policy says.
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 2; }
# Ctrl-C reaches the running part too (same process group); it removes its
# lab and exits 130, and then the demo stops instead of going on.
trap 'exit 130' INT TERM
bad=0
for part in tests/demo-firewall.sh tests/demo-tenants.sh; do
	sh "$part" "$BUILD"
	rc=$?
	[ "$rc" -ge 128 ] && { echo "demo: interrupted" >&2; exit 130; }
	[ "$rc" -eq 0 ] || bad=$((bad + 1))
done
if [ "$bad" -eq 0 ]; then echo; echo "demo: both parts behaved as their policies say"; fi
exit "$bad"
