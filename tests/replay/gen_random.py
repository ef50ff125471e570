#!/usr/bin/python3
"""Random replay cases for the generated differential (docs/replay.md).

    gen_random.py OUTDIR SEED COUNT [PACKETS]

Writes COUNT cases OUTDIR/rand-SEED-K/{policy.hvp,map,capture.pcap}: a
random policy over the three zones of the hand-written cases (rules of
every action on zones, `any`, `self` and addresses, services with ports,
port ranges and ICMP types, pair defaults, masquerade, snat and a port
forward) and PACKETS random new connections (TCP SYN, UDP, ICMP echo) from
every side to every side, including the appliance and spoofed sources, some
of them answered; every third case instead has two tenants on the same
addresses (random rules inside each, random grants between them, snat,
masquerade and a port forward) and packets from every segment and the
uplink, some spoofed. The same seed gives the same cases. A policy `hvgate check`
refuses (a random rule can shadow another) is written all the same; the
caller skips it and says so.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_cases import SITE_MAP, SITE_ZONES, ping, tcp, udp  # noqa: E402
from scapy.all import wrpcap  # noqa: E402

PORTS = [22, 25, 53, 80, 443, 5000, 8080, 8443]
SIDES = {"lan": ("10.0.0.", "lan0"), "dmz": ("10.1.0.", "dmz0"), "uplink": ("203.0.113.", "eth0")}


def service(rng):
    k = rng.randrange(7)
    p = rng.choice(PORTS)
    if k == 0:
        return ""
    if k == 1:
        return " service tcp port %d" % p
    if k == 2:
        return " service udp port %d" % p
    if k == 3:
        return " service tcp port %d-%d" % (p, p + rng.randrange(1, 50))
    if k == 4:
        return " service icmp type echo-request"
    if k == 5:
        return " service { tcp port %d, udp port %d }" % (p, rng.choice(PORTS))
    return " service { ssh, https }"


def endpoint(rng, to):
    k = rng.randrange(8 if to else 7)
    if k < 3:
        return list(SIDES)[k]
    if k == 3:
        return "any"
    if k == 4:
        return "{ %s, %s }" % tuple(rng.sample(list(SIDES), 2))
    if k == 5:
        side = rng.choice(list(SIDES))
        return "%s%d/%d" % (SIDES[side][0], rng.choice([0, 128]), 25)
    if k == 6:
        return "$hosts"
    return "self"


def policy(rng):
    lines = [SITE_ZONES.strip(),
             "define hosts = { 10.0.0.%d, 10.1.0.%d-10.1.0.%d, 203.0.113.%d }"
             % (rng.randrange(2, 60), 10, 10 + rng.randrange(1, 40), rng.randrange(1, 200))]
    for _ in range(rng.randrange(4, 12)):
        act = rng.choice(["pass", "pass", "pass", "block", "reject"])
        frm, to = endpoint(rng, False), endpoint(rng, True)
        opts = rng.choice(["", "", " log"])
        lines.append("%s from %s to %s%s%s" % (act, frm, to, service(rng), opts))
    pairs = set()
    for _ in range(rng.randrange(0, 3)):
        a, b = rng.choice(list(SIDES)), rng.choice(list(SIDES))
        if (a, b) not in pairs:
            pairs.add((a, b))
            lines.append("default from %s to %s %s" % (a, b, rng.choice(["pass", "block", "reject"])))
    if rng.random() < 0.5:
        lines.append("default %s" % rng.choice(["pass", "block"]))
    if rng.random() < 0.6:
        lines.append("nat masquerade from 10.0.0.0/24 out via uplink")
    if rng.random() < 0.4:
        lines.append("nat snat from 10.1.0.0/24 out via uplink to 198.51.100.7")
    if rng.random() < 0.5:
        lines.append("nat forward uplink tcp port 8080 on 198.51.100.1 to 10.1.0.10 port 80")
    return "\n".join(lines) + "\n"


TENANT_SIDES = {"acme.web": ("10.0.1.", "tap-acme-web"), "acme.db": ("10.0.2.", "tap-acme-db"),
                "globex.all": ("10.0.1.", "tap-globex"), "uplink": ("203.0.113.", "eth0")}


def tenant_policy(rng):
    """Two tenants on the same addresses, random rules inside each (naming
    their own segments and the uplink, as isolation demands), random global
    grants between them, and NAT keeping their replies apart."""
    acme, globex = [], []
    for _ in range(rng.randrange(2, 6)):
        act = rng.choice(["pass", "pass", "block", "reject"])
        frm = rng.choice(["web", "db", "uplink", "{ web, db }"])
        to = rng.choice(["web", "db", "uplink"])
        acme.append("  %s from %s to %s%s" % (act, frm, to, service(rng)))
    for _ in range(rng.randrange(1, 4)):
        act = rng.choice(["pass", "pass", "block"])
        frm, to = rng.choice([("all", "uplink"), ("uplink", "all")])
        globex.append("  %s from %s to %s%s" % (act, frm, to, service(rng)))
    lines = ['zone uplink { interface "eth0" }',
             "tenant acme {",
             '  segment web { interface "tap-acme-web" address 10.0.1.0/24 }',
             '  segment db  { interface "tap-acme-db"  address 10.0.2.0/24 }'] + acme + [
             "  default %s" % rng.choice(["block", "pass", "reject"]),
             "  nat snat out via uplink to 198.51.100.7",
             "  nat forward uplink tcp port 8080 on 198.51.100.9 to 10.0.1.10 port 80",
             "}",
             "tenant globex {",
             '  segment all { interface "tap-globex" address 10.0.1.0/24 }'] + globex + [
             "  nat masquerade out via uplink",
             "}"]
    for _ in range(rng.randrange(0, 3)):
        lines.append("pass from globex.all to %s%s" % (rng.choice(["acme.web", "acme.db"]), service(rng)))
    if rng.random() < 0.5:
        lines.append("pass from any to any service ping")
    return "\n".join(lines) + "\n"


def tenant_packets(rng, n):
    """Packets with the interface each arrives on (a map line per packet)."""
    out, ifs = [], []
    sport = 30000
    for _ in range(n):
        side = rng.choice(list(TENANT_SIDES))
        prefix, ifn = TENANT_SIDES[side]
        src = prefix + str(rng.randrange(2, 250)) if rng.random() < 0.9 else "10.0.9.9"
        dst = rng.choice(["10.0.1.%d" % rng.randrange(2, 250), "10.0.2.%d" % rng.randrange(2, 250),
                          "203.0.113.%d" % rng.randrange(2, 250), "198.51.100.9"])
        sport += 1
        port = rng.choice(PORTS)
        k = rng.randrange(4)
        if k < 2:
            out.append(tcp(src, dst, sport, port, "S"))
        elif k < 3:
            out.append(udp(src, dst, sport, port))
        else:
            out.append(ping(src, dst, sport % 65536))
        ifs.append(ifn)
    return out, ifs


def packets(rng, n):
    out = []
    sport = 20000
    for _ in range(n):
        side = rng.choice(list(SIDES))
        prefix = SIDES[side][0]
        src = prefix + str(rng.randrange(2, 250))
        dst = rng.choice([SIDES[s][0] + str(rng.randrange(2, 250)) for s in SIDES] +
                         ["10.0.0.1", "198.51.100.1", "10.1.0.10", "10.1.0.%d" % rng.randrange(10, 50)])
        if dst.startswith(prefix):
            dst = rng.choice(["203.0.113.77", "10.1.0.10"]) if side != "dmz" else "10.0.0.9"
        sport += 1
        k = rng.randrange(5)
        port = rng.choice(PORTS + [rng.randrange(1, 65535)])
        if k < 2:
            out.append(tcp(src, dst, sport, port, "S"))
            if rng.random() < 0.3 and not dst.startswith(("198.51.100.", "10.0.0.1")):
                out.append(tcp(dst, src, port, sport, "SA"))
        elif k < 4:
            out.append(udp(src, dst, sport, port))
        else:
            out.append(ping(src, dst, sport % 65536))
    return out


def main():
    outdir, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    for k in range(count):
        rng = random.Random(seed * 1000003 + k)
        tenants = k % 3 == 2  # every third case: two overlapping tenants
        d = os.path.join(outdir, "rand-%d-%d%s" % (seed, k, "-tenants" if tenants else ""))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "policy.hvp"), "w") as f:
            f.write("# random case: tests/replay/gen_random.py seed %d, case %d\n" % (seed, k))
            f.write(tenant_policy(rng) if tenants else policy(rng))
        if tenants:
            pk, ifs = tenant_packets(rng, n)
            iif_map = "".join("%d %s\n" % (i + 1, ifn) for i, ifn in enumerate(ifs))
            iif_map += "route any eth0\naddr eth0 198.51.100.1\n"
        else:
            pk, iif_map = packets(rng, n), SITE_MAP
        with open(os.path.join(d, "map"), "w") as f:
            f.write(iif_map)
        for p in pk:
            p.time = 0
        wrpcap(os.path.join(d, "capture.pcap"), pk)


if __name__ == "__main__":
    main()
