# Shared shell helpers for network-namespace integration suites (tests/net/).
# Source it from a suite:  . "$(dirname "$0")/../lib/netns.sh"
#
# A suite prints one line per assertion: "PASS name", "FAIL name: why" or
# "SKIP name: why"; tests/run-net.sh counts them. Namespaces are named
# "$LAB-<role>" with LAB unique per run, so suites (and people) running at the
# same time never meet; everything made is removed on exit, also on failure
# or Ctrl-C. Nothing here touches the host's own namespace or ruleset.

HVGATE_BUILD=${HVGATE_BUILD:-$(pwd)/build}
HVGATE=${HVGATE:-$HVGATE_BUILD/hvgate}
LAB="${HVGATE_LAB_PREFIX:-hv}$$" # a prefix of your own: HVGATE_LAB_PREFIX
LAB_NS=""
LAB_PIDS=""
LAB_TMP=$(mktemp -d /tmp/hvgate-lab.XXXXXX)
N_FAIL=0

lab_cleanup() {
	for p in $LAB_PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.1
	for p in $LAB_PIDS; do kill -9 "$p" 2>/dev/null; done
	for ns in $LAB_NS; do
		# Processes left inside the namespace (servers started by a test).
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$LAB_TMP"
}
trap 'lab_cleanup' EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; N_FAIL=$((N_FAIL + 1)); }
skip() { echo "SKIP $1${2:+: $2}"; }
# expect NAME CMD...: PASS if CMD succeeds.
expect() { n=$1; shift; if "$@" >"$LAB_TMP/out" 2>&1; then pass "$n"; else fail "$n" "$(tail -3 "$LAB_TMP/out" | tr '\n' ' ')"; fi; }
# expect_not NAME CMD...: PASS if CMD fails.
expect_not() { n=$1; shift; if "$@" >"$LAB_TMP/out" 2>&1; then fail "$n" "unexpectedly succeeded"; else pass "$n"; fi; }
# Exit status of a suite: non-zero if anything failed.
lab_done() { [ "$N_FAIL" -eq 0 ]; }

# lab_ns ROLE: creates namespace $LAB-ROLE with lo up; prints its name.
lab_ns() {
	ns="$LAB-$1"
	ip netns add "$ns" || return 1
	LAB_NS="$LAB_NS $ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 2>/dev/null
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 2>/dev/null
}

# lab_link ROLE1 IF1 ROLE2 IF2: a veth pair between two namespaces, up.
lab_link() {
	ip link add "$LAB-t1" type veth peer name "$LAB-t2" || return 1
	ip link set "$LAB-t1" netns "$LAB-$1" name "$2"
	ip link set "$LAB-t2" netns "$LAB-$3" name "$4"
	ip -n "$LAB-$1" link set "$2" up
	ip -n "$LAB-$3" link set "$4" up
}

# lab_addr ROLE IF ADDR/LEN: adds an address (v4 or v6, no DAD).
lab_addr() {
	case "$3" in
	*:*) ip -n "$LAB-$1" addr add "$3" dev "$2" nodad ;;
	*) ip -n "$LAB-$1" addr add "$3" dev "$2" ;;
	esac
}

# lab_router ROLE: enables forwarding (v4 and v6) in a namespace.
lab_router() {
	ip netns exec "$LAB-$1" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$LAB-$1" sysctl -qw net.ipv6.conf.all.forwarding=1
}

# at ROLE CMD...: runs CMD inside the namespace ("in" is a shell keyword).
at() { r=$1; shift; ip netns exec "$LAB-$r" "$@"; }

# bg ROLE CMD...: starts CMD in the background inside the namespace; it is
# killed at cleanup.
bg() { r=$1; shift; ip netns exec "$LAB-$r" "$@" >"$LAB_TMP/bg.$$.$(date +%s%N)" 2>&1 & LAB_PIDS="$LAB_PIDS $!"; }

# tcp_ok ROLE ADDR PORT: a TCP connect from ROLE succeeds within 2 s.
tcp_ok() { at "$1" timeout 3 nc -z -w 2 "$2" "$3" >/dev/null 2>&1; }
# ping_ok ROLE ADDR: one ICMP echo (v4 or v6) answered within 2 s.
ping_ok() { at "$1" ping -c 1 -W 2 "$2" >/dev/null 2>&1; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s, bounded.
wait_for() { t=$1; shift; i=0; while [ $i -lt $((t * 10)) ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
