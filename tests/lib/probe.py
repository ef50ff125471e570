#!/usr/bin/env python3
"""One network probe, run inside a lab namespace by the suites and the demo.

    probe.py tcp ADDR PORT    -> open | reset | unreachable | timeout
    probe.py udp ADDR PORT    -> reply | unreachable | timeout   (expects an echo server)
    probe.py ping ADDR        -> reply | unreachable | timeout

Prints the outcome and exits 0; exit 2 on a usage error. Every probe is
bounded by --timeout seconds (default 2).
"""
import errno
import socket
import subprocess
import sys


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def tcp(addr, port, timeout):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        return "open"
    except ConnectionRefusedError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
            return "unreachable"
        if e.errno == errno.ETIMEDOUT:
            return "timeout"
        raise
    finally:
        s.close()


def udp(addr, port, timeout):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        s.send(b"hvgate-probe")
        data = s.recv(2048)
        return "reply" if data else "timeout"
    except ConnectionRefusedError:
        return "unreachable"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
            return "unreachable"
        raise
    finally:
        s.close()


def ping(addr, timeout):
    cmd = ["ping", "-n", "-c", "1", "-W", str(int(timeout)), addr]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode == 0:
        return "reply"
    if "Unreachable" in r.stdout or "unreachable" in r.stdout:
        return "unreachable"
    return "timeout"


def main(argv):
    timeout = 2.0
    if len(argv) > 2 and argv[1] == "--timeout":
        timeout = float(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) == 4 and argv[1] in ("tcp", "udp"):
        fn = tcp if argv[1] == "tcp" else udp
        print(fn(argv[2], int(argv[3]), timeout))
        return 0
    if len(argv) == 3 and argv[1] == "ping":
        print(ping(argv[2], timeout))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
