# The three-namespace lab of the demo and the traffic suite:
#
#   client (lan0 10.10.1.2, fd00:10:1::2)
#      |
#   fw  lan0 10.10.1.1 / fd00:10:1::1     dmz0 10.10.2.1 / fd00:10:2::1
#      |
#   server (dmz0 10.10.2.2, fd00:10:2::2): echo servers on tcp 22 23 80 443 8080, udp 53 54
#
# Source tests/lib/netns.sh first. lab3_up creates it; netns.sh's trap removes it.

LAB3_SERVER_TCP="22 23 80 443 8080"
LAB3_SERVER_UDP="53 54"

lab3_up() {
	lab_ns client && lab_ns fw && lab_ns server || return 1
	lab_link client lan0 fw lan0 && lab_link fw dmz0 server dmz0 || return 1
	lab_addr client lan0 10.10.1.2/24; lab_addr client lan0 fd00:10:1::2/64
	lab_addr fw lan0 10.10.1.1/24; lab_addr fw lan0 fd00:10:1::1/64
	lab_addr fw dmz0 10.10.2.1/24; lab_addr fw dmz0 fd00:10:2::1/64
	lab_addr server dmz0 10.10.2.2/24; lab_addr server dmz0 fd00:10:2::2/64
	at client ip route add default via 10.10.1.1
	at client ip -6 route add default via fd00:10:1::1
	at server ip route add default via 10.10.2.1
	at server ip -6 route add default via fd00:10:2::1
	lab_router fw
	for p in $LAB3_SERVER_TCP; do
		bg server socat TCP6-LISTEN:"$p",fork,reuseaddr,ipv6only=0 SYSTEM:'echo hvgate-lab'
	done
	for p in $LAB3_SERVER_UDP; do
		bg server socat UDP6-LISTEN:"$p",fork,reuseaddr,ipv6only=0 PIPE
	done
	# A listener on the client too, to prove the way back is closed.
	bg client socat TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0 SYSTEM:'echo hvgate-lab'
	# Servers are up when they accept on the lab itself (no firewall yet).
	wait_for 5 sh -c "[ \"\$(ip netns exec $LAB-server python3 tests/lib/probe.py tcp 10.10.2.2 80)\" = open ]"
}

# probe ROLE KIND ADDR [PORT]: prints the outcome (see tests/lib/probe.py).
probe() { r=$1; shift; at "$r" python3 tests/lib/probe.py "$@" 2>/dev/null || echo error; }
