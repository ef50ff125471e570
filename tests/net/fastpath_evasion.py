#!/usr/bin/env python3
"""Clients that try to get a request past the inspection fast path's judge
to the server's application by walking around it (docs/fastpath.md, "TCP
normalisation"). Used by fastpath_evasion.sh; the suite looks at what the
server's application read.

    fastpath_evasion.py TECHNIQUE SRC DST PORT

TECHNIQUE is one of:
  oob        a real socket: "... UNION", one byte sent MSG_OOB, "   SELECT ..."
  tiny       a real socket (TCP_NODELAY): the request one byte per segment
  fin-ahead  raw: "... UNION", a bare FIN one byte past the data, " SELECT ..."
  rst-window raw: "... UNION", an RST inside the window but not at the next
             byte (the receiver answers with a challenge ACK), " SELECT ..."
  decoy-md5  raw: "GET ... ", a copy of the rest with harmless bytes and a
             TCP-MD5 option (the receiver has no key: it discards it), then
             the real rest at the same sequence number
  decoy-paws raw, timestamps on: the same with the decoy's timestamp older
             than the connection's (the receiver's PAWS test discards it)
  syn-ts-decoy raw, timestamps on: a SYN with a new timestamp, no handshake
             ACK, then 4,200 harmless bytes with an older timestamp (the
             receiver's PAWS test against the SYN's discards them; the judge
             never kept the SYN's), then the request at the same sequence
  ack-older-than-syn raw, timestamps on: the same, with the handshake's ACK
             sent with the decoys' older timestamp (the receiver discards it
             too, by PAWS against the SYN)
  ext-headers raw IPv6: the request behind nine destination options headers
  plain      raw: the request with UNION SELECT in one segment (control)
  benign     raw: a request without it (control: the raw client works)
  midstream  raw: "... UNION", then, after the suite deleted the connection's
             conntrack entry, "   SELECT ..." (the helper creates the file
             $SYNC.ready and waits for $SYNC.go)

Raw clients need the client namespace to drop its own kernel's resets.
Prints how many bytes of the request the server acknowledged. Every wait is
bounded (a few seconds at most); exits 2 on usage errors.
"""
import os
import random
import socket
import struct
import sys
import time

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
HEAD = b"GET /x?id=1 UNION"
TAIL = b"   SELECT pw FROM users HTTP/1.0\r\n\r\n"
REST = b"UNION SELECT pw FROM users HTTP/1.0\r\n\r\n"
DECOY = b"ORDER BY 1 -- harmless. HTTP/1.0\r\n\r\n\r\n\r\n"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ts_option(tsval):
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, 0)


# kind 19, length 18, a digest nobody can check; two NOPs pad it to 20
MD5_OPTION = b"\x01\x01\x13\x12" + bytes(range(16))


class Conn:
    def __init__(self, src, dst, port):
        self.v6 = ":" in dst
        self.src, self.dst, self.port = src, dst, port
        self.sport = random.randint(20000, 60000)
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        self.rx = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
        # v6: IPPROTO_RAW sends whole packets (our own extension headers)
        self.tx = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW if self.v6 else socket.IPPROTO_TCP)
        # the suite's client namespace drops resets but those so marked
        self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x4856)
        self.max_ack = None
        self.isn = random.randint(0, 2**31)
        self.peer = 0
        self.peer_ts = 0

    def segment(self, seq, flags, data=b"", options=b""):
        off = (20 + len(options)) // 4
        hdr = struct.pack("!HHIIBBHHH", self.sport, self.port, seq & 0xFFFFFFFF,
                          self.peer & 0xFFFFFFFF if flags & ACK else 0,
                          off << 4, flags, 65535, 0, 0) + options
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        s, d = socket.inet_pton(fam, self.src), socket.inet_pton(fam, self.dst)
        n = len(hdr) + len(data)
        if self.v6:
            pseudo = s + d + struct.pack("!IxxxB", n, socket.IPPROTO_TCP)
        else:
            pseudo = struct.pack("!4s4sBBH", s, d, 0, socket.IPPROTO_TCP, n)
        c = checksum(pseudo + hdr + data)
        return hdr[:16] + struct.pack("!H", c) + hdr[18:] + data

    def send(self, seq, flags, data=b"", options=b"", dstopts=0):
        seg = self.segment(seq, flags, data, options)
        if not self.v6:
            self.tx.sendto(seg, (self.dst, 0))
            return
        # dstopts destination options headers of 8 bytes (a PadN of 4) each
        ext = b""
        for i in range(dstopts):
            nh = socket.IPPROTO_DSTOPTS if i + 1 < dstopts else socket.IPPROTO_TCP
            ext += struct.pack("!BBBB4x", nh, 0, 1, 4)
        first = socket.IPPROTO_DSTOPTS if dstopts else socket.IPPROTO_TCP
        ip6 = struct.pack("!IHBB", 6 << 28, len(ext) + len(seg), first, 64)
        ip6 += socket.inet_pton(socket.AF_INET6, self.src) + socket.inet_pton(socket.AF_INET6, self.dst)
        self.tx.sendto(ip6 + ext + seg, (self.dst, 0))

    def receive(self, seconds):
        end = time.time() + seconds
        got = []
        while time.time() < end:
            self.rx.settimeout(max(0.01, end - time.time()))
            try:
                pkt, addr = self.rx.recvfrom(65535)
            except socket.timeout:
                break
            tcp = pkt if self.v6 else pkt[(pkt[0] & 0x0F) * 4:]
            sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", tcp[:14])
            if sport != self.port or dport != self.sport:
                continue
            got.append((flags, seq, ack))
            opts = tcp[20:(off >> 4) * 4]
            i = opts.find(b"\x08\x0a")
            if i >= 0 and len(opts) >= i + 10:
                self.peer_ts = struct.unpack("!I", opts[i + 2:i + 6])[0]
            if flags & ACK:
                self.max_ack = ack if self.max_ack is None else max(self.max_ack, ack)
        return got

    def connect(self, options=b""):
        self.send(self.isn, SYN, options=options)
        synack = [s for s in self.receive(1.5) if s[0] & SYN and s[0] & ACK]
        if not synack:
            return False
        self.peer = synack[0][1] + 1
        self.send(self.isn + 1, ACK, options=options)
        return True

    def acked(self):
        return 0 if self.max_ack is None else (self.max_ack - (self.isn + 1)) & 0xFFFFFFFF


def oob(dst, port):
    s = socket.create_connection((dst, port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(HEAD)
    time.sleep(0.3)
    s.send(b"X", socket.MSG_OOB)
    time.sleep(0.3)
    s.sendall(TAIL)
    time.sleep(1.0)
    s.close()
    return 0


def tiny(dst, port):
    s = socket.create_connection((dst, port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in HEAD + TAIL:
        s.send(bytes([b]))
        time.sleep(0.01)
    time.sleep(1.0)
    s.close()
    return 0


def syn_ts_decoy(src, dst, port, old_ack=False):
    c = Conn(src, dst, port)
    tsval = 1000000
    c.send(c.isn, SYN, options=ts_option(tsval))
    synack = [s for s in c.receive(1.5) if s[0] & SYN and s[0] & ACK]
    if not synack:
        print("no-synack")
        return 0
    c.peer = synack[0][1] + 1
    seq = c.isn + 1
    old = ts_option(tsval - 100000)
    if old_ack:
        c.send(seq, ACK, b"", old)
        c.receive(0.2)
    pad = b"GET /x?id=1 " + b"a" * 1388
    for i in range(3):  # past the judge's 4,096-byte window
        c.send(seq + i * len(pad), ACK | PSH, pad, old)
        c.receive(0.2)
    c.send(seq, ACK | PSH, b"GET /x?id=1 " + REST, ts_option(tsval + 10))
    c.receive(1.0)
    print(c.acked())
    return 0


def raw(technique, src, dst, port):
    if technique in ("syn-ts-decoy", "ack-older-than-syn"):
        return syn_ts_decoy(src, dst, port, technique == "ack-older-than-syn")
    c = Conn(src, dst, port)
    ts = technique == "decoy-paws"
    tsval = 1000000
    opt = (lambda: ts_option(tsval)) if ts else (lambda: b"")
    if not c.connect(opt()):
        print("no-synack")
        return 0
    seq = c.isn + 1
    if technique in ("plain", "benign"):
        body = b"GET /x?id=1 " + (REST if technique == "plain" else DECOY)
        c.send(seq, ACK | PSH, body)
        c.receive(1.0)
        print(c.acked())
        return 0
    if technique == "ext-headers":
        c.send(seq, ACK | PSH, HEAD + TAIL, dstopts=9)
        c.receive(1.0)
        print(c.acked())
        return 0
    if technique.startswith("decoy"):
        first = b"GET /x?id=1 "
        c.send(seq, ACK | PSH, first, opt())
        c.receive(0.4)
        if ts:
            # the decoy's timestamp is far older than the connection's
            c.send(seq + len(first), ACK | PSH, DECOY, ts_option(tsval - 100000))
        else:
            c.send(seq + len(first), ACK | PSH, DECOY, MD5_OPTION)
        c.receive(0.4)
        tsval += 10
        c.send(seq + len(first), ACK | PSH, REST, opt())
        c.receive(1.0)
        print(c.acked())
        return 0
    c.send(seq, ACK | PSH, HEAD)
    c.receive(0.4)
    seq += len(HEAD)
    if technique == "fin-ahead":
        c.send(seq + 1, ACK | FIN)
    elif technique == "rst-window":
        c.send(seq + 100, RST)
    elif technique == "midstream":
        # the suite deletes the connection's conntrack entry now
        sync = os.environ.get("SYNC", "/nonexistent")
        open(sync + ".ready", "w").close()
        end = time.time() + 5
        while not os.path.exists(sync + ".go") and time.time() < end:
            time.sleep(0.05)
    c.receive(0.4)
    c.send(seq, ACK | PSH, TAIL)
    c.receive(1.0)
    print(c.acked())
    return 0


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    technique, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if technique == "oob":
        return oob(dst, port)
    if technique == "tiny":
        return tiny(dst, port)
    if technique not in ("fin-ahead", "rst-window", "decoy-md5", "decoy-paws", "syn-ts-decoy", "ack-older-than-syn", "ext-headers",
                         "plain", "benign", "midstream"):
        print(__doc__, file=sys.stderr)
        return 2
    return raw(technique, src, dst, port)


if __name__ == "__main__":
    sys.exit(main())
