#!/usr/bin/env python3
"""A TCP client that sends its request in two segments, the second first
(out of order), then the first, then the second again as a sender's stack
retransmits it. Used by fastpath_queue.sh to see what the fast path does with
a gap: the early segment must be dropped, the in-order ones judged.

    fastpath_tcp.py SRC DST PORT FIRST SECOND

Prints how many bytes of the request the server acknowledged, and exits 0;
2 on usage errors. Runs as root in the client namespace, which must drop its
own kernel's resets (the kernel knows no socket for this connection).
Every wait is bounded (one second at most).
"""
import random
import socket
import struct
import sys
import time

SYN, PSH, ACK = 0x02, 0x08, 0x10


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Conn:
    def __init__(self, src, dst, port):
        self.src, self.dst, self.port = src, dst, port
        self.sport = random.randint(20000, 60000)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.max_ack = None

    def send(self, seq, ack, flags, data=b""):
        hdr = struct.pack("!HHIIBBHHH", self.sport, self.port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0)
        pseudo = struct.pack("!4s4sBBH", socket.inet_aton(self.src), socket.inet_aton(self.dst),
                             0, socket.IPPROTO_TCP, len(hdr) + len(data))
        c = checksum(pseudo + hdr + data)
        self.sock.sendto(hdr[:16] + struct.pack("!H", c) + hdr[18:] + data, (self.dst, 0))

    def receive(self, seconds):
        """Segments of the server to us within `seconds`: (flags, seq, ack)."""
        end = time.time() + seconds
        got = []
        while time.time() < end:
            self.sock.settimeout(max(0.01, end - time.time()))
            try:
                pkt, (addr, _) = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            ihl = (pkt[0] & 0x0F) * 4
            sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
            if addr != self.dst or sport != self.port or dport != self.sport:
                continue
            got.append((flags, seq, ack))
            if flags & ACK:
                self.max_ack = ack if self.max_ack is None else max(self.max_ack, ack)
        return got


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    first, second = sys.argv[4].encode(), sys.argv[5].encode()
    c = Conn(src, dst, port)
    isn = random.randint(0, 2**31)
    c.send(isn, 0, SYN)
    synack = [s for s in c.receive(1.0) if s[0] & SYN and s[0] & ACK]
    if not synack:
        print("no-synack")
        return 0
    peer = synack[0][1] + 1
    c.send(isn + 1, peer, ACK)
    c.max_ack = None
    c.send(isn + 1 + len(first), peer, ACK | PSH, second)
    c.receive(0.3)
    c.send(isn + 1, peer, ACK | PSH, first)
    c.receive(0.3)
    c.send(isn + 1 + len(first), peer, ACK | PSH, second)
    c.receive(0.5)
    # No reset at the end: the namespace drops outgoing resets; the lab's
    # conntrack entry simply times out.
    print(0 if c.max_ack is None else (c.max_ack - (isn + 1)) & 0xFFFFFFFF)
    return 0


if __name__ == "__main__":
    sys.exit(main())
