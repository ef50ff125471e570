#!/usr/bin/env python3
"""Handshake-initiation flood for tests/net/vpn_flood.sh: sends initiations
with a valid mac1 (the attacker knows the public key, which is the costly
case: each one would cost a Curve25519 operation) and random contents, at a
bounded rate for a bounded time; counts the cookie replies that come back.
Usage: vpn_flood.py HOST PORT PUBKEY_BASE64 RATE SECONDS OUTFILE"""
import base64, hashlib, os, socket, struct, sys, time

host, port, pub, rate, secs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
MAX_MESSAGES = 200000  # hard bound whatever the arguments
mac1_key = hashlib.blake2s(b"mac1----" + base64.b64decode(pub)).digest()
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setblocking(False)
sent = cookies = 0
start = time.monotonic()
burst = max(1, rate // 100)
while time.monotonic() - start < secs and sent < MAX_MESSAGES:
    for _ in range(burst):
        body = struct.pack("<I", 1) + os.urandom(4 + 32 + 48 + 28)
        mac1 = hashlib.blake2s(body, key=mac1_key, digest_size=16).digest()
        try:
            s.sendto(body + mac1 + bytes(16), (host, port))
            sent += 1
        except BlockingIOError:
            pass
    try:
        while True:
            m = s.recv(2048)
            if len(m) == 64 and m[0] == 3:
                cookies += 1
    except BlockingIOError:
        pass
    time.sleep(0.01)
with open(out, "w") as f:
    f.write("%d %d\n" % (sent, cookies))
