#!/usr/bin/env python3
"""Sends a raw nf_tables batch (as written by
`test_emit_nftnl --write-corpus`) to the kernel in one datagram and checks
every acknowledgement; exit 1 and the failing sequence numbers if the kernel
refused anything. Run inside a namespace: ip netns exec NS nftsend.py FILE.
Standard library only."""
import errno
import os
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NLMSG_ERROR = 2


def main():
    data = open(sys.argv[1], "rb").read()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, max(len(data) * 2, 1 << 20))
    sock.sendto(data, (0, 0))
    acks, errors = 0, []
    # the kernel has queued every ack before sendto() returns
    sock.setblocking(False)
    while True:
        try:
            buf = sock.recv(1 << 20)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                break
            raise
        off = 0
        while off + 16 <= len(buf):
            mlen, mtype, _, _, _ = struct.unpack_from("=IHHII", buf, off)
            if mtype == NLMSG_ERROR:
                err = struct.unpack_from("=i", buf, off + 16)[0]
                seq = struct.unpack_from("=I", buf, off + 16 + 4 + 8)[0]
                if err:
                    errors.append("seq %d: %s" % (seq, os.strerror(-err)))
                else:
                    acks += 1
            off += (mlen + 3) & ~3
    if errors:
        print("refused: " + "; ".join(errors))
        return 1
    print("%d acks" % acks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
