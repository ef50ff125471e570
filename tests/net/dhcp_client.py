#!/usr/bin/env python3
"""The two DHCP exchanges the appliance itself makes, from plain UDP sockets
(so that the firewall's input chain sees the answers, as it does a DHCPv6
client's):

    dhcp_client.py v6 IFNAME          Solicit to ff02::1:2 port 547 from port 546
                                      -> "advertise SERVER" | "timeout"
    dhcp_client.py v4 ADDR SERVER     unicast DHCPINFORM from ADDR port 68, as a
                                      renewing client sends -> "ack" | "timeout"

Bounded: a few tries within --seconds (default 6).
"""
import os
import select
import socket
import struct
import sys
import time

V6_CLIENT_PORT, V6_SERVER_PORT = 546, 547      # RFC 8415 section 7.2
V4_SERVER_PORT, V4_CLIENT_PORT = 67, 68        # RFC 2131 section 4.1
SOLICIT, ADVERTISE = 1, 2                       # RFC 8415 section 7.3
OPT_CLIENTID, OPT_IA_NA, OPT_ELAPSED_TIME = 1, 3, 8   # RFC 8415 section 21
DUID_LL, HW_ETHERNET = 3, 1                     # RFC 8415 section 11.4
BOOTREQUEST, BOOTREPLY = 1, 2                   # RFC 2131 section 2
MAGIC_COOKIE = bytes([99, 130, 83, 99])         # RFC 2131 section 3
OPT_MSG_TYPE, DHCPINFORM, DHCPACK, OPT_END = 53, 8, 5, 255   # RFC 2132 section 9.6


def exchange(sock, send, match, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        send()
        ready, _, _ = select.select([sock], [], [], min(1.5, max(0.1, deadline - time.monotonic())))
        while ready:
            data, peer = sock.recvfrom(4096)
            if match(data):
                return peer
            ready, _, _ = select.select([sock], [], [], 0)
    return None


def v6(ifname, seconds):
    index = socket.if_nametoindex(ifname)
    mac = open("/sys/class/net/%s/address" % ifname).read().strip()
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    s.bind(("::", V6_CLIENT_PORT))
    xid = os.urandom(3)
    duid = struct.pack("!HH", DUID_LL, HW_ETHERNET) + bytes.fromhex(mac.replace(":", ""))
    msg = bytes([SOLICIT]) + xid
    msg += struct.pack("!HH", OPT_CLIENTID, len(duid)) + duid
    msg += struct.pack("!HHH", OPT_ELAPSED_TIME, 2, 0)
    msg += struct.pack("!HHIII", OPT_IA_NA, 12, 1, 0, 0)
    peer = exchange(s, lambda: s.sendto(msg, ("ff02::1:2", V6_SERVER_PORT, 0, index)),
                    lambda d: len(d) >= 4 and d[0] == ADVERTISE and d[1:4] == xid, seconds)
    print("advertise %s" % peer[0] if peer else "timeout")


def v4(addr, server, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, V4_CLIENT_PORT))
    xid = struct.unpack("!I", os.urandom(4))[0]
    chaddr = os.urandom(6) + bytes(10)
    msg = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", BOOTREQUEST, 1, 6, 0, xid, 0, 0,
                      socket.inet_aton(addr), bytes(4), bytes(4), bytes(4), chaddr, bytes(64), bytes(128))
    msg += MAGIC_COOKIE + bytes([OPT_MSG_TYPE, 1, DHCPINFORM, OPT_END])
    peer = exchange(s, lambda: s.sendto(msg, (server, V4_SERVER_PORT)),
                    lambda d: len(d) >= 240 and d[0] == BOOTREPLY and struct.unpack("!I", d[4:8])[0] == xid,
                    seconds)
    print("ack" if peer else "timeout")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--seconds=")]
    secs = float(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--seconds=")), 6))
    if args[:1] == ["v6"] and len(args) == 2:
        v6(args[1], secs)
    elif args[:1] == ["v4"] and len(args) == 3:
        v4(args[1], args[2], secs)
    else:
        sys.exit(__doc__)
