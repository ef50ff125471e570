#!/usr/bin/env python3
"""UDP flows that are never answered, for the per-packet benchmarks.

    udp_flows.py ADDR PORT FLOWS SECONDS
        -> prints the datagrams sent per second

Sends 64-byte datagrams from one socket to ADDR, ports PORT .. PORT+FLOWS-1
in turn, for SECONDS. Nobody answers (the receiving side counts and drops
them in its input hook), so conntrack never sees a reply: every packet of
every flow is `ct state new` and meets the firewall's rules, not only the
first one of a connection.
"""
import socket
import sys
import time


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    addr, port, flows, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    payload = b"x" * 64
    dests = [(addr, port + i) for i in range(flows)]
    sent = 0
    end = time.monotonic() + secs
    while True:
        for d in dests:
            try:
                s.sendto(payload, d)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
        if time.monotonic() >= end:
            break
    print(int(sent / secs))


if __name__ == "__main__":
    main()
