#!/usr/bin/env python3
"""Requests per second, for tests/bench/fastpath.sh.

    fastpath_requests.py serve PORT
        answer each connection's first line with "ok" and close
    fastpath_requests.py run ADDR PORT SECONDS PROCS
        -> prints completed requests per second (all processes)

A request is a new TCP connection, one request line, the answer, and an
abortive close (SO_LINGER 0: no TIME_WAIT), so every request is a new flow
that an inspect rule hands to the fast path.
"""
import multiprocessing
import socket
import struct
import sys
import time

REQUEST = b"GET /catalog?item=42 HTTP/1.0\r\n"


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        try:
            c.settimeout(2.0)
            if c.recv(4096):
                c.sendall(b"ok\n")
        except OSError:
            pass
        finally:
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
            c.sendall(REQUEST)
            if c.recv(16).startswith(b"ok"):
                n += 1
        except OSError:
            pass
        finally:
            c.close()
    out.put(n)


def run(addr, port, seconds, procs):
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
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 6 and sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
