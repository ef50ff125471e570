"""Clients of tests/net/fastpath_fields.sh that cut a message where a
plain tool would not: TCP_NODELAY and a pause between the sends, so each
part leaves as its own segment (the receiver's ACK of the first comes
before the second is sent).

  fastpath_fields.py tls ADDR PORT SNI CUT    a real ClientHello (Python's
      ssl module) for SNI, cut after CUT bytes of the name's first byte
      (CUT 0: one segment); prints "handshake" when the server answers
      with its ServerHello, else "no-answer"
  fastpath_fields.py http ADDR PORT TEXT...    sends each TEXT (\\r\\n
      written as \\r\\n) as its own segment; prints the status line or
      "no-answer"
"""
import socket
import ssl
import sys
import time


def connect(addr, port):
    s = socket.create_connection((addr, int(port)), timeout=3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_parts(s, parts):
    for i, p in enumerate(parts):
        if i:
            time.sleep(0.3)
        s.sendall(p)


def answer(s):
    try:
        data = s.recv(4096)
    except (socket.timeout, ConnectionError, OSError):
        return b""
    return data


def tls(addr, port, sni, cut):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    at = hello.find(sni.encode())
    if at < 0:
        print("no-sni-in-hello")
        return
    cut = int(cut)
    parts = [hello] if cut == 0 else [hello[:at + cut], hello[at + cut:]]
    s = connect(addr, port)
    send_parts(s, parts)
    data = answer(s)
    # a handshake record (22) that holds a ServerHello (2)
    print("handshake" if len(data) > 5 and data[0] == 22 and data[5] == 2 else "no-answer")


def http(addr, port, texts):
    s = connect(addr, port)
    send_parts(s, [t.encode().replace(b"\\r\\n", b"\r\n") for t in texts])
    data = answer(s)
    print(data.split(b"\r\n", 1)[0].decode() if data.startswith(b"HTTP/") else "no-answer")


if __name__ == "__main__":
    if sys.argv[1] == "tls":
        tls(*sys.argv[2:6])
    else:
        http(sys.argv[2], sys.argv[3], sys.argv[4:])
