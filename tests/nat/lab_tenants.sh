# The two-tenant lab of tests/net/tenants.sh, tests/net/nat.sh and the bench:
#
#   ha (tenant A host)  eth0 10.0.1.2, 10.0.1.10, fd00:a::2      servers: tcp 80 "tenant-a"
#      |
#   fw  ta0 10.0.1.1 fd00:a::1 | tb0 10.0.1.1 fd00:b::1 | up0 203.0.113.1 2001:db8:ff::1
#      |                                                   |
#   hb (tenant B host)  eth0 10.0.1.2, 10.0.1.10, fd00:b::2   inet eth0 203.0.113.2 2001:db8:ff::2
#                                    servers: tcp 80 "tenant-b"     tcp 7 echo, udp 7 echo
#
# Both tenants use the SAME IPv4 addresses on purpose. Source tests/lib/netns.sh
# first; lab_tenants_up builds it (the netns.sh trap removes it).

lab_tenants_up() {
	lab_ns fw && lab_ns ha && lab_ns hb && lab_ns inet || return 1
	lab_link ha eth0 fw ta0 && lab_link hb eth0 fw tb0 && lab_link inet eth0 fw up0 || return 1
	for t in a b; do
		lab_addr h$t eth0 10.0.1.2/24; lab_addr h$t eth0 10.0.1.10/24
		lab_addr h$t eth0 fd00:$t::2/64
		lab_addr fw t${t}0 10.0.1.1/24; lab_addr fw t${t}0 fd00:$t::1/64
		at h$t ip route add default via 10.0.1.1 src 10.0.1.2
		at h$t ip -6 route add default via fd00:$t::1
		bg h$t socat TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0 SYSTEM:"echo tenant-$t"
	done
	lab_addr fw up0 203.0.113.1/24; lab_addr fw up0 2001:db8:ff::1/64
	lab_addr inet eth0 203.0.113.2/24; lab_addr inet eth0 2001:db8:ff::2/64
	at inet ip -6 route add fd00::/16 via 2001:db8:ff::1
	lab_router fw
	# Anti-spoofing is hvgate's job here, not the kernel's reverse-path filter
	# (which would look at the main table, where 10.0.1.0/24 is on two links).
	for k in all default ta0 tb0 up0; do at fw sysctl -qw net.ipv4.conf.$k.rp_filter=0; done
	bg inet socat TCP6-LISTEN:7,fork,reuseaddr,ipv6only=0 PIPE
	bg inet socat UDP6-LISTEN:7,fork,reuseaddr,ipv6only=0 PIPE
	wait_for 5 sh -c "ip netns exec $LAB-inet ss -ltn | grep -q ':7 '"
}

# lab_tenants_routes: the policy routing hvgate installs, written with `ip`
# (the plain-nft proof; hvgate's own installer is appliance/route.c).
lab_tenants_routes() {
	for t in 1 2; do
		if [ $t = 1 ]; then i=ta0; p=fd00:a::/64; else i=tb0; p=fd00:b::/64; fi
		at fw ip route add 10.0.1.0/24 dev $i table $((1000 + t))
		at fw ip -6 route add $p dev $i table $((1000 + t))
		at fw ip rule add fwmark $((t << 16))/0xffff0000 table $((1000 + t)) pref $((1000 + t))
		at fw ip -6 rule add fwmark $((t << 16))/0xffff0000 table $((1000 + t)) pref $((1000 + t))
	done
}

# fetch ROLE ADDR PORT: prints what a TCP server sends (one line), bounded.
fetch() { at "$1" timeout 4 socat -T 3 - "TCP:$2:$3" </dev/null 2>/dev/null | head -1; }
# echo_tcp ROLE ADDR PORT TEXT: sends TEXT to an echo server, prints the answer.
echo_tcp() { echo "$4" | at "$1" timeout 4 socat -T 2 - "TCP:$2:$3" 2>/dev/null | head -1; }
