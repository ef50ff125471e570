#!/usr/bin/env python3
"""New TCP connections (or requests) per second, for the benchmarks.

    conn_rate.py serve PORT [--answer]
        accept and close, forever; with --answer, first read what the
        client sends and answer "ok"
    conn_rate.py connect ADDR PORT SECONDS [PROCS] [--request] [--tls=NAME]
        -> prints completed connections per second (all processes); with
        --request each connection also sends one request line and counts
        only when the "ok" comes back; with --tls=NAME the request is a
        real TLS ClientHello (Python's ssl module) naming NAME instead

Each connection is a full handshake and an abortive close (SO_LINGER 0), so
the client leaves no TIME_WAIT behind and every connect is a new conntrack
entry (a new NAT binding, a new flow for the fast path) on the way.
"""
import multiprocessing
import socket
import struct
import sys
import time

REQUEST = b"GET /catalog?item=42 HTTP/1.0\r\n"


def serve(port, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        try:
            if answer:
                c.settimeout(2.0)
                if c.recv(4096):
                    c.sendall(b"ok\n")
        except OSError:
            pass
        finally:
            c.close()


def client_hello(name):
    import ssl
    ctx = ssl.create_default_context()
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def one(addr, port, request):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.settimeout(1.0)
    try:
        c.connect((addr, port))
        if not request:
            return True
        c.sendall(request)
        return c.recv(16).startswith(b"ok")
    except OSError:
        return False
    finally:
        c.close()


def worker(addr, port, seconds, request, out):
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n += one(addr, port, request)
    out.put(n)


def connect(addr, port, seconds, procs, request):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(addr, port, seconds, request, q))
          for _ in range(procs)]
    t0 = time.monotonic()
    for p in ps:
        p.start()
    total = sum(q.get() for _ in ps)
    for p in ps:
        p.join()
    print(int(total / max(time.monotonic() - t0, seconds)))


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) == 2 and args[0] == "serve" and set(flags) <= {"--answer"}:
        serve(int(args[1]), "--answer" in flags)
    elif (len(args) in (4, 5) and args[0] == "connect" and
          all(f == "--request" or f.startswith("--tls=") for f in flags)):
        tls = [f[len("--tls="):] for f in flags if f.startswith("--tls=")]
        request = client_hello(tls[0]) if tls else REQUEST if "--request" in flags else None
        connect(args[1], int(args[2]), float(args[3]), int(args[4]) if len(args) == 5 else 2,
                request)
    else:
        sys.exit(__doc__)
