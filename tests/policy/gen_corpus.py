#!/usr/bin/env python3
"""Seeded generator of hvgate policies for the check-versus-kernel property
test (tests/net/check_kernel.sh).

    gen_corpus.py --seed S --count N --out DIR

writes DIR/00000.hvp ... : valid policies and deliberately wrong or
adversarial ones mixed (address families, port forwards inside, outside and
across tenants, overlapping segments, overlapping tenants, every NAT form,
ports 0 and ranges, duplicate and conflicting defaults, wildcard interfaces,
VPN peers with good and bad keys and endpoints, icmp against the wrong
family, and a share with a token dropped or repeated). The same seed always
gives the same files, so a failure can be replayed.

The generator does not know which policies are valid: the property is that
what `hvgate check` accepts, the kernel accepts too.
"""
import argparse
import os
import random

GOOD_KEYS = [
    "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
]
BAD_KEYS = ["AAAA", "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=", "not base64 at all!"]
ENDPOINTS = ["192.0.2.50:51820", "[2001:db8::5]:51820", "vpn.example.org:51820",
             "192.0.2.1:0", "192.0.2.1"]


class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return self.r.choice(seq)

    # ---- addresses --------------------------------------------------
    def v4_net(self):
        # a small pool, so that segments of tenants meet (or overlap) often
        a = self.r.randint(0, 3)
        c = self.pick(["/24", "/25", "/24", "/16"])
        if c == "/25":
            return "10.%d.%d.%s/25" % (a, self.r.randint(0, 3), self.pick(["0", "128"]))
        if c == "/16":
            return "10.%d.0.0/16" % a
        return "10.%d.%d.0/24" % (a, self.r.randint(0, 3))

    def v6_net(self):
        return "fd00:%x::/64" % self.r.randint(0, 5)

    def host_in(self, net):
        if ":" in net:
            return net.split("/")[0] + "%x" % self.r.randint(1, 200)
        base = net.split("/")[0].split(".")
        if net.endswith("/16"):
            return "%s.%s.%d.%d" % (base[0], base[1], self.r.randint(0, 3), self.r.randint(1, 200))
        return "%s.%s.%s.%d" % (base[0], base[1], base[2], int(base[3]) + self.r.randint(1, 100))

    V4 = ["192.0.2.7", "198.51.100.0/24", "203.0.113.9", "172.16.5.5", "10.0.1.10",
          "10.9.0.0/16", "10.200.0.1-10.200.0.9"]
    V6 = ["2001:db8::1", "2001:db8:1::/48", "fd00:1::5"]

    def any_addr(self, fam=None):
        """An address of family 4 or 6 (None: either)."""
        if fam is None:
            fam = 6 if self.chance(0.25) else 4
        return self.pick(self.V4 if fam == 4 else self.V6)

    # ---- services ---------------------------------------------------
    def port(self):
        if self.chance(0.2):
            lo = self.r.randint(1, 60000)
            return "%d-%d" % (lo, lo + self.r.randint(0, 50))
        return str(self.pick([22, 53, 80, 443, 5432, 8080, self.r.randint(1, 65535)]))

    def service(self, fam=None):
        k = self.r.randint(0, 9)
        if k in (5, 6) and fam is not None and self.chance(0.9):
            k = 5 if fam == 4 else 6
        if k <= 3:
            return "%s port %s" % (self.pick(["tcp", "udp"]), self.port())
        if k == 4:
            return "tcp port { %s, %s }" % (self.port(), self.port())
        if k == 5:
            return "icmp type echo-request"
        if k == 6:
            return "icmpv6 type echo-request"
        if k == 7:
            return self.pick(["ssh", "https", "http", "dns"])
        if k == 8:
            return "{ %s, %s }" % (self.pick(["ssh", "https"]), "udp port %s" % self.port())
        return "sctp port %s" % self.port()


def build(g, index):
    lines = []
    zones = []            # global zone names
    services = []
    lines.append('zone uplink { interface "up0" }')
    zones.append("uplink")
    if g.chance(0.6):
        lines.append('zone lan { interface "%s" }' % g.pick(["lan0", "lan*", "eth1"]))
        zones.append("lan")
    if g.chance(0.4):
        lines.append('zone dmz { interface "%s" }' % g.pick(["dmz0", "dmz*", "tap-*"]))
        zones.append("dmz")
    if g.chance(0.2):
        lines.append('zone guests { interface "%s" }' % g.pick(["tap-7", "gst*", "lan0"]))
        zones.append("guests")
    g.defined = g.chance(0.3)
    if g.defined:
        fam = 6 if g.chance(0.2) else 4
        lines.append("define admin = { %s, %s }" % (g.any_addr(fam), g.any_addr(fam)))
    if g.chance(0.3):
        lines.append("service web = tcp port { 80, 443 }")
        services.append("web")

    tenants = []
    for t in range(g.r.randint(0, 3)):
        name = "t%d" % t
        segs = []
        body = []
        used = set()
        for s in range(g.r.randint(1, 3)):
            fam = g.r.randint(0, 5)
            for _try in range(10):
                if fam <= 3:
                    addrs = [g.v4_net()]
                elif fam == 4:
                    addrs = [g.v6_net()]
                else:
                    addrs = [g.v4_net(), g.v6_net()]
                # mostly segments apart (a /16 covers its /24s: compare by
                # the first two octets); sometimes overlapping on purpose
                keys = {a.split(".")[1] if ":" not in a else a for a in addrs}
                if not (keys & used) or g.chance(0.05):
                    break
            used |= keys
            seg = "s%d" % s
            segs.append((seg, addrs))
            a = addrs[0] if len(addrs) == 1 else "{ %s }" % ", ".join(addrs)
            body.append('  segment %s { interface "%s%d%d" address %s }' % (seg, name, t, s, a))
        tenants.append((name, segs))
        lines.append("tenant %s {" % name)
        lines.extend(body)
        own_names = [s for s, _ in segs]
        for _ in range(g.r.randint(0, 4)):
            lines.append("  " + rule(g, own_names + zones, services, tenants,
                                     own=own_names, isolated=len(tenants) > 0))
        nat_lines(g, lines, segs, tenants, inside=True)
        if g.chance(0.2):
            lines.append("  default %s%s" % (g.pick(["pass", "block", "reject"]),
                                             g.pick(["", " log"])))
        lines.append("}")

    all_zones = zones + ["%s.%s" % (t, s) for t, segs in tenants for s, _ in segs]
    if g.chance(0.25):
        key = g.pick(GOOD_KEYS) if g.chance(0.85) else g.pick(BAD_KEYS)
        ep = ""
        if g.chance(0.5):
            ep = ' endpoint "%s"' % (g.pick(ENDPOINTS[:2]) if g.chance(0.8) else g.pick(ENDPOINTS))
        lines.append('vpn wg0 { listen-port 51820 private-key-file "/etc/hvgate/wg0.key" '
                     'address 10.99.0.1/24')
        lines.append('  peer p1 { public-key "%s"%s allowed-ips { 10.99.0.2/32, 172.16.0.0/16 } } }'
                     % (key, ep))
        all_zones.append("wg0")
    for _ in range(g.r.randint(0, 6)):
        lines.append(rule(g, all_zones, services, tenants))
    for _ in range(g.r.randint(0, 2)):
        a, b = g.pick(all_zones), g.pick(all_zones)
        lines.append("default from %s to %s %s" % (a, b, g.pick(["pass", "block", "reject"])))
    if g.chance(0.3):
        lines.append("default %s" % g.pick(["pass", "block"]))
    nat_lines(g, lines, [], tenants, inside=False)
    return adversarial(g, lines)


def endpoint(g, names, fam):
    k = g.r.randint(0, 9)
    if k <= 3 and names:
        return g.pick(names)
    if k == 4:
        return "any"
    if k == 5 and g.chance(0.5):
        return "self"
    if k == 6 and len(names) > 1:
        return "{ %s, %s }" % (g.pick(names), g.any_addr(fam))
    if k == 7 and g.defined:
        return "$admin"
    return g.any_addr(fam)


def rule(g, names, services, tenants, own=None, isolated=False):
    action = g.pick(["pass", "pass", "block", "reject"])
    parts = [action]
    # mostly one family per rule; some rules mix them (never matching)
    fam = 6 if g.chance(0.25) else 4
    for side in ("from", "to"):
        if not g.chance(0.85) and not (own and isolated):
            continue
        if own and g.chance(0.8 if isolated else 0.5):
            # inside a tenant: mostly its own segments or a global zone,
            # which the isolation proof lets through
            parts.append(side + " " + g.pick(own + names[len(own):]))
        else:
            parts.append(side + " " + endpoint(g, names, fam if g.chance(0.95) else None))
    if g.chance(0.7):
        parts.append("service " + (g.pick(services) if services and g.chance(0.2)
                                   else g.service(fam)))
    if g.chance(0.15):
        parts.append("limit %d/%s" % (g.r.randint(1, 100), g.pick(["second", "minute", "hour"])))
        if g.chance(0.3):
            # around the kernel's token-bucket limit, too
            parts.append("burst %d" % g.pick([5, 100, 5124095, 5124096, 51240956, 4000000000,
                                              g.r.randint(1, 4294967295)]))
    if g.chance(0.15):
        parts.append(g.pick(["log", 'log "gen"']))
    if action == "pass" and g.chance(0.05):
        parts.append("no state")
    return " ".join(parts)


def nat_lines(g, lines, segs, tenants, inside):
    pad = "  " if inside else ""
    for _ in range(g.r.randint(0, 3 if inside else 1)):
        k = g.pick([0, 1, 2, 2, 2, 2, 3, 4, 5])
        own = [a for _, addrs in segs for a in addrs]
        other = [a for _, ss in tenants for _, addrs in ss for a in addrs]
        if k == 0:
            lines.append(pad + "nat masquerade out via uplink")
        elif k == 1:
            port = " port 20000-20099" if g.chance(0.3) else ""
            src, src_fam = "", 4 if not own or any(":" not in a for a in own) else 6
            if g.chance(0.4) and own:
                a = g.pick(own)
                src, src_fam = "from %s " % a, 6 if ":" in a else 4
            elif not inside and g.chance(0.5):
                src = "from 10.0.0.0/8 "
            if g.chance(0.9):
                to = g.pick(["203.0.113.5", "203.0.113.10-203.0.113.11"] if src_fam == 4
                            else ["2001:db8:77::7"])
            else:
                to = g.pick(["203.0.113.5", "2001:db8:77::7"])
            lines.append(pad + "nat snat %sout via uplink to %s%s" % (src, to, port))
        elif k in (2, 3, 4):
            pool = own if k == 2 or not other else other
            if k == 4 or not pool:
                target = g.any_addr().split("/")[0].split("-")[0]
            else:
                target = g.host_in(g.pick(pool))
            proto = g.pick(["tcp", "udp"])
            match = g.pick(["8080", "5000-5001", "8000-8009", str(g.r.randint(1, 65535))])
            if g.chance(0.03):
                match = "0"
            on = ""
            if g.chance(0.4):
                v6 = ":" in target if g.chance(0.9) else ":" not in target
                on = " on %s" % ("2001:db8::1" if v6 else "203.0.113.1")
            to_port = ""
            if g.chance(0.5):
                to_port = " port %s" % g.pick(["80", "80-81", "5000-5001", "0" if g.chance(0.1) else "443"])
            lines.append(pad + "nat forward uplink %s port %s%s to %s%s"
                         % (proto, match, on, target, to_port))
            if inside and g.chance(0.5):
                lines.append(pad + "pass from uplink to %s service %s port %s"
                             % (target, proto, to_port.split()[-1] if to_port else match))
        else:
            src = g.pick(own) if own and g.chance(0.8) else g.v4_net()
            if ":" in src:
                to = "fd99::/64"
            else:
                plen = src.split("/")[1]
                to = "198.18.0.0/16" if plen == "16" else "198.18.%d.0/%s" % (g.r.randint(0, 9), plen)
            lines.append(pad + "nat netmap %s to %s via uplink" % (src, to))


def adversarial(g, lines):
    """Some policies get a line dropped, doubled or swapped, or a token
    dropped: broken syntax, or names and defaults used twice."""
    if g.chance(0.15) and len(lines) > 2:
        i = g.r.randrange(len(lines))
        op = g.r.randint(0, 3)
        if op == 0 and lines[i] not in ("}",) and not lines[i].endswith("{"):
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = g.r.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            toks = lines[i].split(" ")
            if len(toks) > 2:
                del toks[g.r.randrange(len(toks))]
                lines[i] = " ".join(toks)
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for i in range(a.count):
        # one generator per policy: policy i is the same whatever the count
        g = Gen(random.Random(a.seed * 1000003 + i))
        with open(os.path.join(a.out, "%05d.hvp" % i), "w") as f:
            f.write(build(g, i))


if __name__ == "__main__":
    main()
