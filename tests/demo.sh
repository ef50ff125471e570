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
bad=0
sh tests/demo-firewall.sh "$BUILD" || bad=$((bad + 1))
sh tests/demo-tenants.sh "$BUILD" || bad=$((bad + 1))
if [ "$bad" -eq 0 ]; then echo; echo "demo: both parts behaved as their policies say"; fi
exit "$bad"
