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
import time

NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # asm-generic/socket.h (root only)
ACK_BYTES = 2048  # receive buffer per ack (its skb truesize, with room)


def main():
    data = open(sys.argv[1], "rb").read()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    n_msgs, off = 0, 0
    while off + 16 <= len(data):
        n_msgs += 1
        off += (struct.unpack_from("=I", data, off)[0] + 3) & ~3
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, len(data) + (1 << 16))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, max(n_msgs * ACK_BYTES, 1 << 20))
    t0 = time.monotonic()
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
    print("%d acks in %.3f s" % (acks, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
