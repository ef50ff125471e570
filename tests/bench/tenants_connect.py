#!/usr/bin/env python3
"""New TCP connections per second, for tests/bench/tenants.sh.

    tenants_connect.py serve PORT          accept and close, forever
    tenants_connect.py connect ADDR PORT SECONDS [PROCS]
        -> prints completed connections per second (all processes)

Each connection is a full handshake and an abortive close (SO_LINGER 0), so
the client leaves no TIME_WAIT behind and every connect is a new conntrack
entry and a new NAT binding on the way.
"""
import multiprocessing
import socket
import struct
import sys
import time


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()


def worker(addr, port, seconds, out):
    n = 0
    linger = struct.pack("ii", 1, 0)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.settimeout(1.0)
        try:
            c.connect((addr, port))
            n += 1
        except OSError:
            pass
        finally:
            c.close()
    out.put(n)


def connect(addr, port, seconds, procs):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(addr, port, seconds, q)) for _ in range(procs)]
    t0 = time.monotonic()
    for p in ps:
        p.start()
    total = sum(q.get() for _ in ps)
    for p in ps:
        p.join()
    print(int(total / max(time.monotonic() - t0, seconds)))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "connect":
        connect(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    else:
        sys.exit("usage: tenants_connect.py serve PORT | connect ADDR PORT SECONDS [PROCS]")
