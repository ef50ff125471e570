#!/usr/bin/env python3
"""64-byte UDP datagrams, for tests/bench/fastpath_cpu.sh (CPU per judged
packet). inspect-udp-pps (fastpath.sh) no longer uses this: a Python
sender and receiver bounded its rate; it sends with udp_blast.c.

    udp_pps.py recv PORT SECONDS
        counts datagrams for SECONDS from the first one; prints per second
    udp_pps.py send ADDR PORT SECONDS [PROCS]
        sends 64-byte IPv4 packets (36 bytes of payload) as fast as it can
        for SECONDS, from a new socket (a new flow) every 8 datagrams, so
        that no flow reaches the fast path's window of 16 datagrams and
        every packet is judged
"""
import multiprocessing
import socket
import sys
import time

PAYLOAD = b"x" * 36  # 20 (IPv4) + 8 (UDP) + 36 = 64 bytes
PER_FLOW = 8


def recv(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("0.0.0.0", port))
    s.recv(64)
    n, end = 1, time.monotonic() + seconds
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            s.recv(64)
            n += 1
        except socket.timeout:
            pass
    print(int(n / seconds))


def sender(addr, port, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(PER_FLOW):
            try:
                s.sendto(PAYLOAD, (addr, port))
            except OSError:
                pass
        s.close()


def send(addr, port, seconds, procs):
    ps = [multiprocessing.Process(target=sender, args=(addr, port, seconds)) for _ in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "recv":
        recv(int(a[1]), float(a[2]))
    elif len(a) in (4, 5) and a[0] == "send":
        send(a[1], int(a[2]), float(a[3]), int(a[4]) if len(a) == 5 else 2)
    else:
        sys.exit(__doc__)
