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
  ack-old    raw: "GET ... ", decoys past the window that acknowledge bytes
             long before the server's first (Linux discards them: RFC 5961
             section 5.2), then the real rest at the same sequence number
  ack-unsent raw: the same, the decoys acknowledging bytes never sent
  bad-sum    raw: the same, the decoys with a wrong TCP checksum
  v6-dstopt, v6-ah, v6-rh  raw IPv6: the same, the decoys behind a
             destination option that says discard, an authentication header
             of no SA, a routing header with a segment left
  ack-old-early raw: the decoys with the old ACK before the handshake's ACK
  start-ahead raw: a bare ACK 10,000 bytes ahead of the stream's start,
             decoys from there, then the real ACK and request
  isn-change raw: two SYNs with ISNs 40,000 apart; the bare ACK and decoys
             at the second's, the real request at the first's (which the
             receiver holds)
  isn-change-md5 raw: the same, the first SYN with a TCP-MD5 option (the
             receiver discards it and holds the second)
  fin-md5-reopen, rst-md5-reopen raw: "... UNION", a FIN (RST) with a
             TCP-MD5 option at the end, a bare ACK 5 bytes past it, decoys
             from there past the window, "   SELECT ..." at the true end
  rst-md5-new-syn raw: "... UNION", an RST with TCP-MD5 at the end (conntrack
             takes it, the receiver does not), a SYN whose stream starts at
             the old one's next byte (conntrack makes a new connection),
             its ACK, then "   SELECT ..." there
  keepalive  raw: "... UNION", a keep-alive of one byte with another value
             at its last byte, then "   SELECT ..."
  syn-data   raw: the request in the SYN, then the handshake's ACK
  overlap    raw: "... UNI", then a segment of old bytes that differ and new
             ones ("abcON   SELECT ...")
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

    def segment(self, seq, flags, data=b"", options=b"", ack=None, bad_sum=False):
        off = (20 + len(options)) // 4
        if ack is None:
            ack = self.peer if flags & ACK else 0
        hdr = struct.pack("!HHIIBBHHH", self.sport, self.port, seq & 0xFFFFFFFF,
                          ack & 0xFFFFFFFF,
                          off << 4, flags, 65535, 0, 0) + options
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        s, d = socket.inet_pton(fam, self.src), socket.inet_pton(fam, self.dst)
        n = len(hdr) + len(data)
        if self.v6:
            pseudo = s + d + struct.pack("!IxxxB", n, socket.IPPROTO_TCP)
        else:
            pseudo = struct.pack("!4s4sBBH", s, d, 0, socket.IPPROTO_TCP, n)
        c = checksum(pseudo + hdr + data) ^ (0x1234 if bad_sum else 0)
        return hdr[:16] + struct.pack("!H", c) + hdr[18:] + data

    def send(self, seq, flags, data=b"", options=b"", dstopts=0, ack=None, bad_sum=False,
             v6ext=None):
        seg = self.segment(seq, flags, data, options, ack, bad_sum)
        if not self.v6:
            self.tx.sendto(seg, (self.dst, 0))
            return
        # dstopts destination options headers of 8 bytes (a PadN of 4) each
        ext = b""
        for i in range(dstopts):
            nh = socket.IPPROTO_DSTOPTS if i + 1 < dstopts else socket.IPPROTO_TCP
            ext += struct.pack("!BBBB4x", nh, 0, 1, 4)
        first = socket.IPPROTO_DSTOPTS if dstopts else socket.IPPROTO_TCP
        if v6ext is not None:
            first, ext = v6ext
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


PAD = b"a" * 1400  # three of them fill the judge's 4,096-byte window


def fill(c, seq, **kw):
    """Harmless decoys at seq.. past the judge's window, each of them a copy
    the receiver discards for the reason kw gives."""
    for i in range(3):
        c.send(seq + i * len(PAD), ACK | PSH, PAD, **kw)
        c.receive(0.1)


def v6_ext(kind, dst):
    """(first next header, extension headers) before a TCP header."""
    tcp = socket.IPPROTO_TCP
    if kind == "v6-dstopt":
        # option type 0x41: its two high bits (01) tell the receiver to
        # discard the packet (RFC 8200 section 4.2)
        return socket.IPPROTO_DSTOPTS, struct.pack("!BBBB4x", tcp, 0, 0x41, 4)
    if kind == "v6-ah":
        # an authentication header of an SA the receiver does not have
        return 51, struct.pack("!BBHII", tcp, 4, 0, 0x1234, 1) + bytes(12)
    # a type 0 routing header with a segment left: not for this receiver
    return socket.IPPROTO_ROUTING, struct.pack("!BBBB4x", tcp, 2, 0, 1) + socket.inet_pton(socket.AF_INET6, dst)


def handshake_tricks(technique, src, dst, port):
    """Decoys the receiver discards for a reason the judge may not see, in
    quantity (past the window), then the real request."""
    c = Conn(src, dst, port)
    isn = c.isn
    if technique in ("isn-change", "isn-change-md5"):
        # two SYNs with different ISNs: the receiver holds the first one
        # it took, conntrack the higher
        isn2 = isn + 40000
        md5 = technique == "isn-change-md5"
        c.send(isn, SYN, options=MD5_OPTION if md5 else b"")
        if md5:
            time.sleep(0.1)
        # without the option, at once: both SYNs come before conntrack
        # confirmed the first one's connection, each a first packet
        c.send(isn2, SYN)
        synack = [s for s in c.receive(1.5) if s[0] & SYN and s[0] & ACK]
        if not synack:
            print("no-synack")
            return 0
        c.peer = synack[0][1] + 1
        held, other = (isn2, isn) if md5 else (isn, isn2)
        c.send(other + 1, ACK)
        fill(c, other + 1)
        c.send(held + 1, ACK)
        c.receive(0.2)
        c.isn = held
        c.send(held + 1, ACK | PSH, b"GET /x?id=1 " + REST)
        c.receive(1.0)
        print(c.acked())
        return 0
    # syn-data: the request in the SYN (TCP Fast Open without a cookie)
    c.send(isn, SYN, b"GET /x?id=1 " + REST if technique == "syn-data" else b"")
    synack = [s for s in c.receive(1.5) if s[0] & SYN and s[0] & ACK]
    if not synack:
        print("no-synack")
        return 0
    c.peer = synack[0][1] + 1
    seq = isn + 1
    if technique == "syn-data":
        c.send(seq, ACK)
        c.receive(1.0)
        print(c.acked())
        return 0
    if technique == "ack-old-early":
        # before the handshake's ACK: decoys acknowledging bytes far
        # before the server's first (its listener answers with a reset)
        fill(c, seq, ack=c.peer - 5000)
    elif technique == "start-ahead":
        # a bare ACK ahead of the stream's start (inside the receiver's
        # window: it keeps the decoys out of order, never delivered)
        c.send(seq + 10000, ACK)
        fill(c, seq + 10000)
    c.send(seq, ACK)
    c.receive(0.2)
    c.send(seq, ACK | PSH, b"GET /x?id=1 " + REST)
    c.receive(1.0)
    print(c.acked())
    return 0


def decoy_fill(technique, src, dst, port):
    """The request's start, decoys the receiver discards filling the
    judge's window from the next byte, then the real rest there."""
    c = Conn(src, dst, port)
    if not c.connect():
        print("no-synack")
        return 0
    seq = c.isn + 1
    first = b"GET /x?id=1 "
    c.send(seq, ACK | PSH, first)
    c.receive(0.3)
    kw = {
        "ack-old": {"ack": c.peer - 5000},    # older than the receiver's snd_una
        "ack-unsent": {"ack": c.peer + 5000},  # data the receiver never sent
        "bad-sum": {"bad_sum": True},
    }.get(technique)
    if kw is None:
        kw = {"v6ext": v6_ext(technique, dst)}
    fill(c, seq + len(first), **kw)
    c.send(seq + len(first), ACK | PSH, REST)
    c.receive(1.0)
    print(c.acked())
    return 0


def end_tricks(technique, src, dst, port):
    """"... UNION", an end the receiver discards (a TCP-MD5 option it has no
    key for), a bare ACK past it (a new connection?), decoys from there past
    the window, then the real rest at the true next byte; or a segment of
    old and new bytes whose old bytes differ from those sent."""
    c = Conn(src, dst, port)
    if not c.connect():
        print("no-synack")
        return 0
    seq = c.isn + 1
    if technique == "keepalive":
        # a keep-alive of one byte (the last one sent, as some stacks send
        # it, here with another value), then the rest
        c.send(seq, ACK | PSH, HEAD)
        c.receive(0.3)
        c.send(seq + len(HEAD) - 1, ACK, b"X")
        c.receive(0.3)
        c.send(seq + len(HEAD), ACK | PSH, TAIL)
        c.receive(1.0)
        print(c.acked())
        return 0
    if technique == "overlap":
        c.send(seq, ACK | PSH, b"GET /x?id=1 UNI")
        c.receive(0.3)
        c.send(seq + 12, ACK | PSH, b"abcON   SELECT pw FROM users HTTP/1.0\r\n\r\n")
        c.receive(1.0)
        print(c.acked())
        return 0
    c.send(seq, ACK | PSH, HEAD)
    c.receive(0.3)
    end = seq + len(HEAD)
    c.send(end, (ACK | FIN) if technique == "fin-md5-reopen" else RST, options=MD5_OPTION)
    c.receive(0.2)
    if technique == "rst-md5-new-syn":
        # conntrack took the reset and starts a new connection at a SYN
        # whose stream begins at the old one's next byte; the receiver
        # still holds the old connection (it answers with a challenge ACK)
        c.send(end - 1, SYN)
        c.receive(0.3)
        c.send(end, ACK)
        c.receive(0.2)
        c.send(end, ACK | PSH, TAIL)
        c.receive(1.0)
        print(c.acked())
        return 0
    c.send(end + 5, ACK)
    fill(c, end + 5)
    c.send(end, ACK | PSH, TAIL)
    c.receive(1.0)
    print(c.acked())
    return 0


TRICKS = {
    "ack-old": decoy_fill, "ack-unsent": decoy_fill, "bad-sum": decoy_fill,
    "v6-dstopt": decoy_fill, "v6-ah": decoy_fill, "v6-rh": decoy_fill,
    "ack-old-early": handshake_tricks, "start-ahead": handshake_tricks,
    "isn-change": handshake_tricks, "isn-change-md5": handshake_tricks,
    "fin-md5-reopen": end_tricks, "rst-md5-reopen": end_tricks, "overlap": end_tricks,
    "rst-md5-new-syn": end_tricks, "keepalive": end_tricks, "syn-data": handshake_tricks,
}


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
    if technique in TRICKS:
        return TRICKS[technique](technique, src, dst, port)
    if technique not in ("fin-ahead", "rst-window", "decoy-md5", "decoy-paws", "syn-ts-decoy", "ack-older-than-syn", "ext-headers",
                         "plain", "benign", "midstream"):
        print(__doc__, file=sys.stderr)
        return 2
    return raw(technique, src, dst, port)


if __name__ == "__main__":
    sys.exit(main())
