#!/usr/bin/python3
"""Writes the replay cases: tests/replay/NAME/{policy.hvp,map,capture.pcap}.

Each case is a policy, the interface map of `hvgate replay --iif-map` and a
capture made here with scapy (Ethernet frames, so that the same capture can
be injected into a namespace lab). The expected output (NAME/expected) is
written by `tests/replay/run.sh --update` and reviewed by hand; run.sh then
checks that `hvgate replay` still prints exactly that.

    /usr/bin/python3 tests/replay/gen_cases.py [OUTDIR]

The captures are committed, so running the suite needs no scapy.
"""
import os
import sys

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6EchoReply, ICMPv6EchoRequest,
                       ICMPv6ND_NS, IPerror, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, Raw, SCTP, SCTPChunkInit, TCPerror, UDPerror, fragment, wrpcap)

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"

SITE_ZONES = """zone lan { interface "lan0" }
zone dmz { interface "dmz*" }
zone uplink { interface "eth0" }
"""

SITE_MAP = """from 10.0.0.0/24 lan0
from fd00:0:0:1::/64 lan0
from 10.1.0.0/24 dmz0
from fd00:0:0:2::/64 dmz0
* eth0
route 10.0.0.0/24 lan0
route fd00:0:0:1::/64 lan0
route 10.1.0.0/24 dmz0
route fd00:0:0:2::/64 dmz0
route any eth0
self 10.0.0.1
self 198.51.100.1
self fd00:0:0:1::1
addr eth0 198.51.100.1
"""

TENANT_MAP = """from 203.0.113.0/24 eth0
from 198.51.100.0/24 eth0
* eth0
route any eth0
addr eth0 198.51.100.1
"""


def ip(src, dst, **kw):
    if ":" in src:
        return IPv6(src=src, dst=dst, **kw)
    return IP(src=src, dst=dst, **kw)


def eth(pkt, ethertype=None):
    if ethertype:
        return Ether(src=MAC_A, dst=MAC_B, type=ethertype) / pkt
    return Ether(src=MAC_A, dst=MAC_B) / pkt


def tcp(src, dst, sport, dport, flags="S", payload=b"", seq=1000, ack=0):
    p = ip(src, dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    if payload:
        p = p / Raw(payload)
    return eth(p)


def udp(src, dst, sport, dport, payload=b"x"):
    return eth(ip(src, dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def ping(src, dst, ident=7, reply=False):
    if ":" in src:
        icmp = ICMPv6EchoReply(id=ident) if reply else ICMPv6EchoRequest(id=ident)
        return eth(IPv6(src=src, dst=dst) / icmp)
    return eth(IP(src=src, dst=dst) / ICMP(type=0 if reply else 8, id=ident))


def handshake(c, s, cport, sport, data=b""):
    """A TCP handshake and one data segment, client first."""
    pkts = [tcp(c, s, cport, sport, "S", seq=100),
            tcp(s, c, sport, cport, "SA", seq=500, ack=101),
            tcp(c, s, cport, sport, "A", seq=101, ack=501)]
    if data:
        pkts.append(tcp(c, s, cport, sport, "PA", data, seq=101, ack=501))
    return pkts


CASES = {}


def case(name, policy, packets, iif_map=SITE_MAP, note=""):
    CASES[name] = (policy, iif_map, packets, note)


# ---- rule kinds and actions ----
case("first_match", SITE_ZONES + """
block from lan to dmz service tcp port 23
pass from lan to dmz service { ssh, telnet, http }
pass from lan to uplink
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 23),
      tcp("10.0.0.5", "10.1.0.10", 40001, 22),
      tcp("10.0.0.5", "10.1.0.10", 40002, 80),
      tcp("10.0.0.5", "10.1.0.10", 40003, 443),
      udp("10.0.0.5", "203.0.113.7", 40004, 53)])

case("reject", SITE_ZONES + """
reject from lan to dmz service { tcp port 25, udp port 69 }
reject from lan to uplink
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 25),
      udp("10.0.0.5", "10.1.0.10", 40001, 69),
      tcp("10.0.0.5", "203.0.113.7", 40002, 80),
      ping("10.0.0.5", "203.0.113.7")])

case("defaults_pair", SITE_ZONES + """
pass from lan to dmz service http
default from dmz to lan reject
default from lan pass
default to dmz block
default block
""", [tcp("10.1.0.10", "10.0.0.5", 40000, 80),
      tcp("10.0.0.5", "10.1.0.10", 40001, 443),
      tcp("10.0.0.5", "203.0.113.7", 40002, 443),
      tcp("203.0.113.7", "10.1.0.10", 40003, 80),
      tcp("203.0.113.7", "10.0.0.5", 40004, 80)])

case("default_global_pass", SITE_ZONES + """
block from uplink to lan
default pass
""", [tcp("203.0.113.7", "10.0.0.5", 40000, 80),
      tcp("203.0.113.7", "10.1.0.10", 40001, 80),
      udp("10.0.0.5", "10.1.0.10", 40002, 53)])

case("services", SITE_ZONES + """
service web = tcp port { 80, 443, 8000-8100 }
service mgmt = { ssh, icmp type echo-request, udp port 161-162 }
pass from lan to dmz service { web, mgmt }
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 8050),
      tcp("10.0.0.5", "10.1.0.10", 40001, 8101),
      udp("10.0.0.5", "10.1.0.10", 40002, 162),
      udp("10.0.0.5", "10.1.0.10", 40003, 163),
      ping("10.0.0.5", "10.1.0.10"),
      eth(IP(src="10.0.0.5", dst="10.1.0.10") / ICMP(type=13, ts_ori=0, ts_rx=0, ts_tx=0))])

case("addresses", SITE_ZONES + """
define admins = { 10.0.0.8-10.0.0.12, fd00:0:0:1::/120 }
define servers = { 10.1.0.0/28, fd00:0:0:2::10 }
pass from $admins to $servers service ssh
""", [tcp("10.0.0.9", "10.1.0.10", 40000, 22),
      tcp("10.0.0.13", "10.1.0.10", 40001, 22),
      tcp("10.0.0.9", "10.1.0.20", 40002, 22),
      tcp("fd00:0:0:1::5", "fd00:0:0:2::10", 40003, 22),
      tcp("fd00:0:0:1::5", "fd00:0:0:2::11", 40004, 22)])

case("zone_wildcard", SITE_ZONES + """
pass from dmz to uplink service https
""", [tcp("10.1.0.10", "203.0.113.7", 40000, 443),
      tcp("10.1.0.10", "203.0.113.7", 40001, 80)],
     iif_map=SITE_MAP.replace("from 10.1.0.0/24 dmz0", "from 10.1.0.0/24 dmz-web7"))

case("unzoned", SITE_ZONES + """
pass from any to uplink service https
""", [tcp("10.9.0.5", "203.0.113.7", 40000, 443),
      tcp("10.9.0.5", "203.0.113.7", 40001, 80)],
     iif_map="from 10.9.0.0/24 veth9\n" + SITE_MAP)

case("log_and_limit", SITE_ZONES + """
pass from lan to dmz service ssh log limit 10/minute burst 5
pass from lan to dmz service http log "web "
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 22),
      tcp("10.0.0.5", "10.1.0.10", 40001, 80),
      tcp("10.0.0.5", "10.1.0.10", 40002, 81)])

case("sctp", SITE_ZONES + """
pass from lan to dmz service sctp port 3868
""", [eth(IP(src="10.0.0.5", dst="10.1.0.10") / SCTP(sport=40000, dport=3868) / SCTPChunkInit()),
      eth(IP(src="10.0.0.5", dst="10.1.0.10") / SCTP(sport=40001, dport=3869) / SCTPChunkInit()),
      eth(IP(src="10.0.0.5", dst="10.1.0.10") / SCTP(sport=40002, dport=3868))])

# ---- self ----
case("self_input", SITE_ZONES + """
pass from lan to self service ssh
pass from any to self service ping
""", [tcp("10.0.0.5", "10.0.0.1", 40000, 22),
      tcp("10.0.0.5", "10.0.0.1", 40001, 23),
      tcp("203.0.113.7", "198.51.100.1", 40002, 22),
      ping("203.0.113.7", "198.51.100.1")])

case("self_ipv6_nd", SITE_ZONES + """
pass from lan to dmz
""", [eth(IPv6(src="fd00:0:0:1::5", dst="fd00:0:0:1::1") / ICMPv6ND_NS(tgt="fd00:0:0:1::1")),
      tcp("fd00:0:0:1::5", "fd00:0:0:1::1", 40000, 22),
      udp("fe80::1", "fe80::2", 547, 546)],
     iif_map=SITE_MAP.replace("* eth0", "from fe80::/10 eth0\n* eth0").replace(
         "self 10.0.0.1", "self 10.0.0.1\nself fe80::2"))

# ---- state ----
case("tcp_handshake", SITE_ZONES + """
pass from lan to dmz service http
""", handshake("10.0.0.5", "10.1.0.10", 40000, 80, b"GET / HTTP/1.0\r\n\r\n") +
     [tcp("10.1.0.10", "10.0.0.5", 80, 40000, "PA", b"HTTP/1.0 200 OK\r\n", seq=501, ack=119),
      tcp("10.1.0.10", "10.0.0.5", 80, 40001, "S")])

case("tcp_invalid", SITE_ZONES + """
default pass
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 80, "SA"),
      tcp("10.0.0.5", "10.1.0.10", 40001, 80, "R"),
      tcp("10.0.0.5", "10.1.0.10", 40002, 80, "F"),
      tcp("10.0.0.5", "10.1.0.10", 40003, 80, ""),
      tcp("10.0.0.5", "10.1.0.10", 40004, 80, "A")])

case("tcp_loose_pickup", SITE_ZONES + """
pass from lan to dmz service http
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 80, "A", seq=5000, ack=9000),
      tcp("10.1.0.10", "10.0.0.5", 80, 40000, "A", seq=9000, ack=5000),
      tcp("10.1.0.10", "10.0.0.5", 80, 40001, "A", seq=9000, ack=5000)])

case("udp_reply", SITE_ZONES + """
pass from lan to uplink service dns
""", [udp("10.0.0.5", "203.0.113.53", 40000, 53),
      udp("203.0.113.53", "10.0.0.5", 53, 40000),
      udp("10.0.0.5", "203.0.113.53", 40000, 53),
      udp("203.0.113.53", "10.0.0.5", 53, 40001)])

case("icmp_echo", SITE_ZONES + """
pass from lan to uplink service ping
""", [ping("10.0.0.5", "203.0.113.7", 7),
      ping("203.0.113.7", "10.0.0.5", 7, reply=True),
      ping("203.0.113.7", "10.0.0.5", 8, reply=True),
      ping("fd00:0:0:1::5", "2001:db8::7", 9),
      ping("2001:db8::7", "fd00:0:0:1::5", 9, reply=True)])

case("icmp_related", SITE_ZONES + """
pass from lan to uplink service https
""", [tcp("10.0.0.5", "203.0.113.7", 40000, 443, "S"),
      eth(IP(src="203.0.113.1", dst="10.0.0.5") / ICMP(type=3, code=1) /
          IPerror(src="10.0.0.5", dst="203.0.113.7") / TCPerror(sport=40000, dport=443)),
      eth(IP(src="203.0.113.1", dst="10.0.0.5") / ICMP(type=3, code=1) /
          IPerror(src="10.0.0.5", dst="203.0.113.8") / TCPerror(sport=40000, dport=443)),
      eth(IP(src="203.0.113.1", dst="10.0.0.5") / ICMP(type=11) /
          IPerror(src="10.0.0.5", dst="203.0.113.7") / UDPerror(sport=1, dport=2))])

case("no_state", SITE_ZONES + """
pass from lan to dmz service udp port 514 no state
pass from dmz to lan service udp port 5140 no state
""", [udp("10.0.0.5", "10.1.0.10", 40000, 514),
      udp("10.1.0.10", "10.0.0.5", 514, 40000),
      udp("10.1.0.10", "10.0.0.5", 40000, 5140)])

# `no state` is decided before routing: the exemption reaches the same
# service from lan to every zone, and the replies of a stateful rule with it
case("no_state_scope", SITE_ZONES + """
pass from lan to dmz service udp port 514 no state
pass from lan to uplink
""", [udp("10.0.0.5", "203.0.113.7", 40000, 514),
      udp("203.0.113.7", "10.0.0.5", 514, 40000),
      udp("10.0.0.5", "203.0.113.7", 40001, 515),
      udp("203.0.113.7", "10.0.0.5", 515, 40001)])

case("established_before_rules", SITE_ZONES + """
pass from lan to dmz service http
block from dmz to lan
""", handshake("10.0.0.5", "10.1.0.10", 40000, 80) +
     [tcp("10.1.0.10", "10.0.0.5", 80, 40000, "PA", b"data", seq=501, ack=101)])

# ---- IPv6, extension headers, fragments, malformed ----
case("ipv6", SITE_ZONES + """
pass from lan to dmz service https
block from lan to dmz service http
""", [tcp("fd00:0:0:1::5", "fd00:0:0:2::10", 40000, 443),
      tcp("fd00:0:0:1::5", "fd00:0:0:2::10", 40001, 80),
      tcp("fd00:0:0:2::10", "fd00:0:0:1::5", 443, 40000, "SA")])

case("ipv6_ext_headers", SITE_ZONES + """
pass from lan to dmz service https
""", [eth(IPv6(src="fd00:0:0:1::5", dst="fd00:0:0:2::10") / IPv6ExtHdrHopByHop() /
          IPv6ExtHdrDestOpt() / TCP(sport=40000, dport=443, flags="S")),
      eth(IPv6(src="fd00:0:0:1::5", dst="fd00:0:0:2::10") / IPv6ExtHdrDestOpt() /
          TCP(sport=40001, dport=80, flags="S"))])

_frag6 = (IPv6(src="fd00:0:0:1::5", dst="fd00:0:0:2::10") / IPv6ExtHdrFragment(id=77) /
          UDP(sport=40000, dport=5353) / Raw(b"a" * 1400))
case("ipv6_fragments", SITE_ZONES + """
pass from lan to dmz service udp port 5353
""", [eth(p) for p in __import__("scapy.all", fromlist=["fragment6"]).fragment6(_frag6, 800)])

case("ipv4_fragments", SITE_ZONES + """
pass from lan to dmz service udp port 5353
""", [eth(p) for p in fragment(IP(src="10.0.0.5", dst="10.1.0.10", id=99) /
                               UDP(sport=40000, dport=5353) / Raw(b"b" * 1400), 600)] +
     [eth(p) for p in fragment(IP(src="10.0.0.5", dst="10.1.0.10", id=100) /
                               UDP(sport=40001, dport=5354) / Raw(b"c" * 1000), 600)])

case("malformed", SITE_ZONES + """
default pass
""", [eth(Raw(bytes(IP(src="10.0.0.5", dst="10.1.0.10") / TCP(dport=80))[:12]), 0x0800),
      eth(Raw(bytes(IP(src="10.0.0.5", dst="10.1.0.10", len=200) / UDP(dport=53))), 0x0800),
      eth(Raw(bytes(IP(src="10.0.0.5", dst="10.1.0.10") / TCP(dport=80))[:30]), 0x0800),
      eth(Raw(bytes(IPv6(src="fd00:0:0:1::5", dst="fd00:0:0:2::10") / UDP(dport=53))[:30]), 0x86dd),
      eth(Raw(b"\x00" * 40), 0x0806),
      tcp("10.0.0.5", "10.1.0.10", 40000, 80)])

# ---- tenants ----
TENANTS = """zone uplink { interface "eth0" }
tenant acme {
  segment web { interface "tap-acme-web" address { 10.0.1.0/24, fd00:a::/64 } }
  segment db  { interface "tap-acme-db"  address 10.0.2.0/24 }
  pass from web to db service postgres
  pass from web to uplink service https
  default block log
}
tenant globex {
  segment all { interface "tap-globex" address 10.0.1.0/24 }
  pass from all to uplink
}
"""
# NAT keeps the reply tuples of the two tenants apart (docs/nat-and-tenants.md)
TENANTS_NAT = TENANTS.replace("  default block log\n", "  default block log\n  nat snat out via uplink to 198.51.100.7\n").replace(
    "  pass from all to uplink\n", "  pass from all to uplink\n  nat masquerade out via uplink\n")

case("tenants_overlap", TENANTS_NAT, [
    tcp("10.0.1.5", "203.0.113.7", 40000, 443),
    tcp("10.0.1.5", "203.0.113.7", 40000, 443),
    tcp("203.0.113.7", "198.51.100.7", 443, 40000, "SA"),
    tcp("203.0.113.7", "198.51.100.1", 443, 40000, "SA"),
    tcp("10.0.1.5", "203.0.113.7", 40001, 80),
    tcp("10.0.1.5", "203.0.113.7", 40001, 80)],
    iif_map="1 tap-acme-web\n2 tap-globex\n5 tap-acme-web\n6 tap-globex\n" + TENANT_MAP)

case("tenant_segments", TENANTS, [
    tcp("10.0.1.5", "10.0.2.9", 40000, 5432),
    tcp("10.0.1.5", "10.0.2.9", 40001, 22),
    tcp("10.0.2.9", "10.0.1.5", 40002, 5432)],
    iif_map="from 10.0.1.0/24 tap-acme-web\nfrom 10.0.2.0/24 tap-acme-db\n" + TENANT_MAP)

case("antispoof", TENANTS, [
    tcp("10.0.9.5", "10.0.2.9", 40000, 5432),
    tcp("10.0.2.5", "10.0.2.9", 40001, 5432),
    tcp("fe80::5", "fd00:a::1", 40002, 22),  # link-local passes anti-spoofing (to the appliance)
    tcp("fd00:b::5", "2001:db8::7", 40003, 443)],
    iif_map="* tap-acme-web\nself fd00:a::1\n")

case("inter_tenant", TENANTS + """
pass from globex.all to acme.db service postgres
pass from any to any service ping
""", [tcp("10.0.1.5", "10.0.2.9", 40000, 5432),
      tcp("10.0.1.5", "10.0.2.9", 40001, 22),
      ping("10.0.1.5", "10.0.2.9"),
      ping("10.0.1.5", "203.0.113.7")],
    iif_map="* tap-globex\nroute any eth0\n")

# ---- NAT ----
NAT_SITE = SITE_ZONES + """
pass from lan to uplink
pass from uplink to dmz service http
nat snat from 10.0.0.128/25 out via uplink to 198.51.100.7
nat masquerade from 10.0.0.0/24 out via uplink
nat forward uplink tcp port 8080 on 198.51.100.1 to 10.1.0.10 port 80
"""

case("nat_masquerade", NAT_SITE, [
    tcp("10.0.0.5", "203.0.113.7", 40000, 443),
    tcp("203.0.113.7", "198.51.100.1", 443, 40000, "SA"),
    tcp("10.0.0.5", "203.0.113.7", 40000, 443, "A"),
    tcp("203.0.113.7", "198.51.100.1", 443, 40009, "SA")])

case("nat_snat", NAT_SITE, [
    udp("10.0.0.200", "203.0.113.53", 40000, 53),
    udp("203.0.113.53", "198.51.100.7", 53, 40000),
    ping("10.0.0.200", "203.0.113.7"),
    ping("203.0.113.7", "198.51.100.7", reply=True)],
    iif_map=SITE_MAP)

case("nat_forward", NAT_SITE, [
    tcp("203.0.113.7", "198.51.100.1", 40000, 8080),
    tcp("10.1.0.10", "203.0.113.7", 80, 40000, "SA"),
    tcp("203.0.113.7", "198.51.100.1", 40000, 8080, "A"),
    tcp("203.0.113.7", "198.51.100.1", 40001, 8081)])

case("nat_forward_range", SITE_ZONES + """
pass from uplink to dmz service tcp port 9000-9009
nat forward uplink tcp port 9000-9009 to 10.1.0.20
nat forward uplink udp port 7000-7009 to 10.1.0.21 port 7000
""", [tcp("203.0.113.7", "198.51.100.1", 40000, 9005),
      udp("203.0.113.7", "198.51.100.1", 40001, 7003),
      tcp("203.0.113.7", "198.51.100.1", 40002, 9010)])

case("nat_hairpin", """zone uplink { interface "eth0" }
tenant acme {
  segment web { interface "tap-acme-web" address 10.0.1.0/24 }
  pass from uplink to web service http
  pass from web to web service http
  nat forward uplink tcp port 8080 on 198.51.100.9 to 10.0.1.10 port 80
}
""", [tcp("10.0.1.5", "198.51.100.9", 40000, 8080),
      tcp("203.0.113.7", "198.51.100.9", 40001, 8080)],
    iif_map="from 10.0.1.0/24 tap-acme-web\naddr tap-acme-web 10.0.1.1\n" + TENANT_MAP)

case("nat_netmap", """zone uplink { interface "eth0" }
tenant g {
  segment all { interface "tg" address 10.0.1.0/24 }
  pass from all to uplink
  pass from uplink to all service https
  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via uplink
}
""", [tcp("10.0.1.42", "203.0.113.7", 40000, 443),
      tcp("203.0.113.7", "198.51.100.42", 443, 40000, "SA"),
      tcp("203.0.113.7", "198.51.100.43", 40001, 443),
      tcp("203.0.113.7", "198.51.100.43", 40002, 80)],
    iif_map="from 10.0.1.0/24 tg\n" + TENANT_MAP)

case("nat_related_icmp", NAT_SITE, [
    udp("10.0.0.5", "203.0.113.53", 40000, 53),
    eth(IP(src="203.0.113.1", dst="198.51.100.1") / ICMP(type=3, code=3) /
        IPerror(src="198.51.100.1", dst="203.0.113.53") / UDPerror(sport=40000, dport=53))])

case("blocklist", SITE_ZONES + """
pass from uplink to dmz service http
pass from lan to uplink
""", [tcp("203.0.113.66", "10.1.0.10", 40000, 80),
      tcp("203.0.113.7", "10.1.0.10", 40001, 80),
      tcp("10.0.0.5", "203.0.113.66", 40002, 443),
      tcp("10.0.0.5", "203.0.113.7", 40003, 443)],
    iif_map=SITE_MAP + "block 203.0.113.66\n")

case("inspect", SITE_ZONES + """
pass from lan to dmz service http inspect { block content /union\\s+select/i }
""", [tcp("10.0.0.5", "10.1.0.10", 40000, 80, "S", seq=100),
      tcp("10.1.0.10", "10.0.0.5", 80, 40000, "SA", seq=500, ack=101),
      tcp("10.0.0.5", "10.1.0.10", 40000, 80, "PA", b"GET /?q=1 UNION  ", seq=101, ack=501),
      # the pattern completes across the two segments: the second is dropped,
      # the flow is labelled BLOCKED, and the kernel drops the rest both ways
      tcp("10.0.0.5", "10.1.0.10", 40000, 80, "PA", b"SELECT x HTTP/1.0\r\n\r\n", seq=118, ack=501),
      tcp("10.1.0.10", "10.0.0.5", 80, 40000, "PA", b"HTTP/1.0 200 OK\r\n\r\n", seq=501, ack=118),
      tcp("10.0.0.5", "10.1.0.10", 40000, 80, "PA", b"SELECT x HTTP/1.0\r\n\r\n", seq=118, ack=501),
      # another flow with harmless content passes
      tcp("10.0.0.5", "10.1.0.10", 40001, 80, "S", seq=200),
      tcp("10.1.0.10", "10.0.0.5", 80, 40001, "SA", seq=700, ack=201),
      tcp("10.0.0.5", "10.1.0.10", 40001, 80, "PA", b"GET /?q=union HTTP/1.0\r\n\r\n", seq=201, ack=701),
      tcp("10.1.0.10", "10.0.0.5", 80, 40001, "PA", b"HTTP/1.0 200 OK\r\n\r\n", seq=701, ack=227)],
    note="the content judge is the fast path's (appliance/fastpath/inspect.c), as the appliance runs it")

case("inspect_segments", SITE_ZONES + """
pass from lan to dmz service http inspect {
  pass  content /^GET \\/health /
  block content /union\\s+select/i
}
""", [  # data past a gap is dropped (the sender retransmits in order), then judged in order
      tcp("10.0.0.5", "10.1.0.10", 40010, 80, "S", seq=100),
      tcp("10.1.0.10", "10.0.0.5", 80, 40010, "SA", seq=500, ack=101),
      tcp("10.0.0.5", "10.1.0.10", 40010, 80, "A", seq=101, ack=501),
      tcp("10.0.0.5", "10.1.0.10", 40010, 80, "PA", b"SELECT 1", seq=111, ack=501),
      tcp("10.0.0.5", "10.1.0.10", 40010, 80, "PA", b"GET /?q=1 ", seq=101, ack=501),
      tcp("10.0.0.5", "10.1.0.10", 40010, 80, "PA", b"HTTP/1.0\r\n", seq=111, ack=501),
      # a pass match clears the flow: what follows is not judged any more
      tcp("10.0.0.5", "10.1.0.10", 40011, 80, "S", seq=300),
      tcp("10.1.0.10", "10.0.0.5", 80, 40011, "SA", seq=900, ack=301),
      tcp("10.0.0.5", "10.1.0.10", 40011, 80, "A", seq=301, ack=901),
      tcp("10.0.0.5", "10.1.0.10", 40011, 80, "PA", b"GET /health HTTP/1.0\r\n", seq=301, ack=901),
      tcp("10.0.0.5", "10.1.0.10", 40011, 80, "PA", b"X: union select\r\n\r\n", seq=323, ack=901),
      # a SYN that carries data is dropped, and with it the connection
      tcp("10.0.0.5", "10.1.0.10", 40012, 80, "S", b"union select", seq=400),
      # a first packet that is not a SYN (a connection picked up midstream)
      tcp("10.0.0.5", "10.1.0.10", 40013, 80, "A", seq=600, ack=1)],
    note="the fast path's TCP rules: gaps, a pass match clearing the flow, SYN data, midstream")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, (policy, iif_map, packets, note) in sorted(CASES.items()):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "policy.hvp"), "w") as f:
            f.write("# replay case %s (tests/replay/gen_cases.py)%s\n" % (name, ": " + note if note else ""))
            f.write(policy)
        with open(os.path.join(d, "map"), "w") as f:
            f.write(iif_map)
        for p in packets:
            p.time = 0
        wrpcap(os.path.join(d, "capture.pcap"), packets)
    print("%d cases, %d packets" % (len(CASES), sum(len(c[2]) for c in CASES.values())))


if __name__ == "__main__":
    main()
