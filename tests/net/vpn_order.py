#!/usr/bin/python3
"""Numbered UDP streams for vpn_order.sh.

send ADDR PORT FLOWS COUNT: FLOWS sockets (one flow each) send COUNT
  datagrams each, interleaved, every one carrying (flow, sequence number).
recv ADDR PORT SECONDS OUT: receives until 2 s pass without a datagram
  (or SECONDS in all), then writes "received reordered flows_seen" to OUT,
  where reordered counts datagrams whose sequence number is not above the
  last one seen in their flow."""
import socket
import struct
import sys
import time

PAYLOAD = 1200  # a full-size segment's worth, so batches fill


def send(addr, port, flows, count):
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        socks.append(s)
    pad = b"\0" * (PAYLOAD - 8)
    for seq in range(count):
        for f, s in enumerate(socks):
            try:
                s.sendto(struct.pack("!II", f, seq) + pad, (addr, port))
            except OSError:
                pass  # a full queue drops, as UDP may


def recv(addr, port, seconds, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    s.settimeout(seconds)
    last = {}
    received = reordered = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except socket.timeout:
            break
        s.settimeout(2)
        f, seq = struct.unpack("!II", data[:8])
        if f in last and seq <= last[f]:
            reordered += 1
        else:
            last[f] = seq
        received += 1
    with open(out, "w") as fh:
        fh.write("%d %d %d\n" % (received, reordered, len(last)))


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        recv(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
