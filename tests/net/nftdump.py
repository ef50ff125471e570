#!/usr/bin/env python3
"""Dumps one nf_tables table as the kernel holds it, attribute by attribute,
for comparing two namespaces byte for byte (tests/net/backend_agree.sh).

Run inside a namespace: ip netns exec NS python3 nftdump.py [TABLE]
Prints the table, its chains, sets (with userdata), set elements and rules
as hex attributes, leaving out what differs between two equal rulesets:
handles, rule positions, element expirations, and the order of elements in
hash sets (sorted here). Uses only the standard library (a raw netlink
socket), so it needs nothing built.
"""
import os
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
# nf_tables.h: enum nf_tables_msg_types
GETTABLE, GETCHAIN, GETRULE, GETSET, GETSETELEM = 1, 4, 7, 10, 13
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFPROTO_INET = 1
# Attributes left out per object (nf_tables.h enum nft_*_attributes).
SKIP = {
    GETTABLE: {4, 5},          # HANDLE, PAD
    GETCHAIN: {2, 8, 9},       # HANDLE, COUNTERS, PAD
    GETRULE: {3, 6, 8},        # HANDLE, POSITION, PAD
    GETSET: {14, 16},          # PAD, HANDLE
}
ELEM_EXPIRATION, ELEM_PAD = 5, 8  # enum nft_set_elem_attributes
NLA_F_NESTED = 0x8000


def attrs(data):
    out, off = [], 0
    while off + 4 <= len(data):
        alen, atype = struct.unpack_from("=HH", data, off)
        if alen < 4:
            break
        out.append((atype & 0x3FFF, data[off + 4:off + alen]))
        off += (alen + 3) & ~3
    return out


def request(sock, msg_type, flags, payload=b"", seq=[1]):
    seq[0] += 1
    hdr = struct.pack("=IHHII", 16 + 4 + len(payload),
                      (NFNL_SUBSYS_NFTABLES << 8) | msg_type,
                      NLM_F_REQUEST | flags, seq[0], 0)
    sock.send(hdr + struct.pack("=BBH", NFPROTO_INET, 0, 0) + payload)
    replies = []
    while True:
        buf = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(buf):
            mlen, mtype, _, _, _ = struct.unpack_from("=IHHII", buf, off)
            body = buf[off + 16:off + mlen]
            off += (mlen + 3) & ~3
            if mtype == NLMSG_DONE:
                return replies
            if mtype == NLMSG_ERROR:
                err = struct.unpack_from("=i", body)[0]
                if err:
                    raise OSError(-err, os.strerror(-err))
                return replies
            replies.append(attrs(body[4:]))


def strattr(a, t):
    for at, v in a:
        if at == t:
            return v.rstrip(b"\0").decode()
    return ""


def nla(atype, value):
    return struct.pack("=HH", 4 + len(value), atype) + value + b"\0" * (-len(value) % 4)


def show(kind, a, skip):
    fields = " ".join("%d=%s" % (t, v.hex()) for t, v in a if t not in skip)
    return "%s %s" % (kind, fields)


def main():
    table = sys.argv[1] if len(sys.argv) > 1 else "hvgate"
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    lines = []
    for a in request(sock, GETTABLE, NLM_F_DUMP):
        if strattr(a, 1) == table:
            lines.append(show("table", a, SKIP[GETTABLE]))
    for a in request(sock, GETCHAIN, NLM_F_DUMP):
        if strattr(a, 1) == table:
            lines.append(show("chain", a, SKIP[GETCHAIN]))
    for a in request(sock, GETRULE, NLM_F_DUMP):
        if strattr(a, 1) == table:
            lines.append(show("rule", a, SKIP[GETRULE]))
    for a in request(sock, GETSET, NLM_F_DUMP):
        if strattr(a, 1) != table:
            continue
        name = strattr(a, 2)
        lines.append(show("set", a, SKIP[GETSET]))
        q = nla(1, table.encode() + b"\0") + nla(2, name.encode() + b"\0")
        elems = []
        for r in request(sock, GETSETELEM, NLM_F_DUMP, q):
            for t, v in r:
                if t != 3:  # NFTA_SET_ELEM_LIST_ELEMENTS
                    continue
                for _, elem in attrs(v):
                    kept = [(et, ev) for et, ev in attrs(elem)
                            if et not in (ELEM_EXPIRATION, ELEM_PAD)]
                    elems.append(show("  elem", kept, set()))
        lines.extend(sorted(elems))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
