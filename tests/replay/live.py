#!/usr/bin/python3
"""The live differential of the replay corpus: every packet of every case
through the real kernel, compared with the evaluator (docs/replay.md).

For each case tests/replay/NAME/ this builds a lab of network namespaces: a
gateway holding the compiled policy (`hvgate apply --netns`), and per
interface of the case's map one side namespace joined to the gateway by a
veth pair named as in the map. It then injects the capture's frames one by
one on the side of the interface each arrives on (raw AF_PACKET sockets
opened inside the namespaces) and captures what leaves the gateway on every
side. The kernel's outcome per packet (which interface it left by and with
which header, a reset or ICMP error back to the sender, or nothing) must
equal the evaluator's (`hvgate replay --json`). Any disagreement fails the
run and names the case, the packet and both outcomes. Cases the lab cannot
run yet are reported as SKIP with the reason, never left out silently.

    tests/replay/live.py BUILD [CASE...]      (root; prints PASS/FAIL/SKIP)
    tests/replay/live.py --dir DIR BUILD      (generated cases, gen_random.py)
"""
import ctypes
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from scapy.all import (ICMP, IP, TCP, UDP, Ether, ICMPv6DestUnreach, IPv6, IPv6ExtHdrFragment, SCTP,
                       rdpcap)

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = "%s%d" % (os.environ.get("HVGATE_LAB_PREFIX", "w4r"), os.getpid())
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
WAIT_EXPECTED = 1.5  # seconds for a frame the evaluator says leaves
WAIT_SILENCE = 0.35  # seconds of silence that count as "nothing left"
LIVE_QUEUE = 100  # first NFQUEUE of the fast path for cases with inspect rules

libc = ctypes.CDLL("libc.so.6", use_errno=True)
namespaces = []


def sh(*args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout.strip()))
    return r.stdout


def ns_add(name):
    sh("ip", "netns", "add", name)
    namespaces.append(name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    for k, v in (("net.ipv6.conf.all.accept_dad", "0"), ("net.ipv6.conf.default.accept_dad", "0"),
                 ("net.ipv6.conf.all.disable_ipv6", "0"), ("net.ipv4.conf.all.rp_filter", "0"),
                 ("net.ipv4.conf.default.rp_filter", "0"), ("net.ipv4.conf.all.send_redirects", "0"),
                 ("net.ipv4.conf.default.send_redirects", "0"),
                 ("net.ipv6.conf.default.router_solicitations", "0"),
                 ("net.ipv6.conf.all.router_solicitations", "0")):
        sh("ip", "netns", "exec", name, "sysctl", "-qw", "%s=%s" % (k, v), check=False)


def cleanup():
    if os.environ.get("LIVE_KEEP"):
        print("kept: %s" % " ".join(namespaces))
        namespaces.clear()
        return
    for name in namespaces:
        sh("ip", "netns", "del", name, check=False)
    namespaces.clear()


def open_in_ns(ns, ifname):
    """An AF_PACKET socket bound to ifname inside namespace ns."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/var/run/netns/%s" % ns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((ifname, 0))
        s.setblocking(False)
        mac = sh("ip", "-n", ns, "-br", "link", "show", ifname).split()[2]
    finally:
        libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)
    return s, mac


def parse_map(path):
    ifnames, routes, froms, selfs, addrs, blocks = [], [], [], [], {}, []
    for line in open(path):
        w = line.split("#")[0].split()
        if not w:
            continue
        if w[0] in ("from", "route") and len(w) == 3:
            (froms if w[0] == "from" else routes).append((w[1], w[2]))
            ifnames.append(w[2])
        elif w[0] == "self":
            selfs.append(w[1])
        elif w[0] == "addr":
            addrs[w[1]] = w[2]
            ifnames.append(w[1])
        elif w[0] == "block":
            blocks.append((w[1], w[2] if len(w) > 2 else ""))
        elif len(w) == 2:
            ifnames.append(w[1])
    return ifnames, routes, froms, selfs, addrs, blocks


def is_noise(frame):
    """ARP, neighbour discovery, MLD and router solicitations of the lab itself."""
    e = Ether(frame)
    if IPv6 in e:
        ip6 = e[IPv6]
        nh, raw = ip6.nh, bytes(ip6.payload)
        if nh == 0 and len(raw) >= 8:  # hop-by-hop: MLD carries a router alert
            nh, raw = raw[0], raw[(raw[1] + 1) * 8:]
        return nh == 58 and bool(raw) and 130 <= raw[0] <= 143

    return IP not in e


def tuple_of(frame):
    """proto src:sport -> dst:dport of a frame, as the replay prints it (no flags)."""
    e = Ether(frame)
    ip = e[IP] if IP in e else e[IPv6] if IPv6 in e else None
    if ip is None:
        return None
    v6 = IPv6 in e

    def ep(a, p):
        return ("[%s]:%d" % (a, p)) if v6 else ("%s:%d" % (a, p))

    if TCP in e and not (IP in e and e[IP].frag):
        return "tcp %s -> %s" % (ep(ip.src, e[TCP].sport), ep(ip.dst, e[TCP].dport))
    if UDP in e:
        return "udp %s -> %s" % (ep(ip.src, e[UDP].sport), ep(ip.dst, e[UDP].dport))
    if SCTP in e:
        return "sctp %s -> %s" % (ep(ip.src, e[SCTP].sport), ep(ip.dst, e[SCTP].dport))
    if ICMP in e:
        return "icmp %s -> %s type %d" % (ip.src, ip.dst, e[ICMP].type)
    if v6 and ip.nh == 58:
        return "icmpv6 %s -> %s type %d" % (ip.src, ip.dst, bytes(ip.payload)[0])
    if v6 and IPv6ExtHdrFragment in e:
        return "fragment %s -> %s" % (ip.src, ip.dst)
    return "ip %s -> %s proto %d" % (ip.src, ip.dst, ip.proto if not v6 else ip.nh)


def strip_flags(t):
    """The tuple without the replay's trailing TCP flags ("[SA]")."""
    if t and t.endswith("]") and " [" in t:
        head, last = t.rsplit(" [", 1)
        if ":" not in last:
            return head
    return t


def is_reject_reply(frame):
    e = Ether(frame)
    if TCP in e and "R" in str(e[TCP].flags):
        return True
    if ICMP in e and e[ICMP].type == 3:
        return True
    return ICMPv6DestUnreach in e


def run_case(build, name, base=HERE, refused_ok=False):
    with tempfile.TemporaryDirectory(prefix="w4r-live.") as tmpdir:
        return run_case_in(build, name, base, refused_ok, tmpdir)


def run_case_in(build, name, base, refused_ok, tmpdir):
    d = os.path.join(base, name)
    policy = open(os.path.join(d, "policy.hvp")).read()
    r = subprocess.run(
        [os.path.join(build, "hvgate"), "replay", "policy.hvp", "capture.pcap", "--iif-map", "map", "--json"],
        cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode == 1 and refused_ok:
        # a random policy with a shadowed rule: check refuses it, and so
        # would apply; nothing to compare
        first = (r.stderr.splitlines() or ["?"])[0]
        print("REFUSED live/%s: hvgate check refuses the generated policy (%s)" % (name, first))
        return 0, 0, True
    if r.returncode:
        raise RuntimeError("hvgate replay exited %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    out = r.stdout
    evals = [json.loads(line) for line in out.splitlines() if line.startswith("{\"index\"")]
    frames = [bytes(p) for p in rdpcap(os.path.join(d, "capture.pcap"))]
    ifnames, routes, froms, selfs, addrs, blocks = parse_map(os.path.join(d, "map"))
    for e in evals:
        if e["in"] != "-":
            ifnames.append(e["in"])
        if e["out"] and e["out"].split()[0] not in ("self", "-"):
            ifnames.append(e["out"].split()[0])
    ifnames = sorted(set(ifnames))
    gw = "%s-gw" % LAB
    ns_add(gw)
    for k, v in (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1")):
        sh("ip", "netns", "exec", gw, "sysctl", "-qw", "%s=%s" % (k, v))
    peer, gw_addr = {}, {}
    socks = {}
    for i, ifn in enumerate(ifnames):
        side = "%s-s%d" % (LAB, i)
        ns_add(side)
        sh("ip", "link", "add", "%s-a" % LAB, "type", "veth", "peer", "name", "%s-b" % LAB)
        sh("ip", "link", "set", "%s-a" % LAB, "netns", gw, "name", ifn)
        sh("ip", "link", "set", "%s-b" % LAB, "netns", side, "name", ifn)
        if ifn in addrs:
            gw4, peer4, plen = addrs[ifn], addrs[ifn].rsplit(".", 1)[0] + ".254", "24"
        else:
            gw4, peer4, plen = "192.168.%d.1" % (100 + i), "192.168.%d.2" % (100 + i), "30"
        sh("ip", "-n", gw, "addr", "add", "%s/%s" % (gw4, plen), "dev", ifn)
        # the side's own address alone: every other address of the link is
        # answered by proxy ARP (its route leads elsewhere)
        sh("ip", "-n", side, "addr", "add", "%s/32" % peer4, "dev", ifn)
        sh("ip", "-n", gw, "addr", "add", "fd00:ffff:%x::1/64" % (i + 1), "dev", ifn, "nodad")
        sh("ip", "-n", side, "addr", "add", "fd00:ffff:%x::2/64" % (i + 1), "dev", ifn, "nodad")
        sh("ip", "-n", gw, "link", "set", ifn, "up")
        sh("ip", "-n", side, "link", "set", ifn, "up")
        proxy_side(side, ifn)
        sh("ip", "-n", side, "route", "add", gw4, "dev", ifn)
        peer[ifn] = (peer4, "fd00:ffff:%x::2" % (i + 1))
        gw_addr[ifn] = gw4
        s, _ = open_in_ns(side, ifn)
        _, gwmac = open_in_ns(gw, ifn)
        socks[ifn] = (s, gwmac)
    for prefix, ifn in froms + routes:
        for fam, via in (("-4", peer[ifn][0]), ("-6", peer[ifn][1])):
            if prefix in ("any", "default"):
                sh("ip", fam, "-n", gw, "route", "replace", "default", "via", via, check=False)
            elif (":" in prefix) == (fam == "-6"):
                sh("ip", fam, "-n", gw, "route", "replace", prefix, "via", via, check=False)
    segment_routes(gw, policy)
    for e in evals:
        # proxy NDP answers only for the addresses it is told
        if e["out"] and e["out"].split()[0] in peer and " -> [" in e["out"]:
            dst = e["out"].split(" -> ")[1].split("]")[0].strip("[")
            sh("ip", "-6", "-n", "%s-s%d" % (LAB, ifnames.index(e["out"].split()[0])), "neigh", "add", "proxy",
               dst, "dev", e["out"].split()[0], check=False)
        elif e["out"] and e["out"].split()[0] in peer and e["out"].split()[1] == "icmpv6":
            dst = e["out"].split(" -> ")[1].split()[0]
            sh("ip", "-6", "-n", "%s-s%d" % (LAB, ifnames.index(e["out"].split()[0])), "neigh", "add", "proxy",
               dst, "dev", e["out"].split()[0], check=False)
    for a in selfs:
        # a link-local address is the appliance's on every link
        for dev in (ifnames if a.lower().startswith("fe80:") else ["lo"]):
            sh("ip", "-n", gw, "addr", "add", a + ("/128" if ":" in a else "/32"), "dev", dev, "nodad",
               check=False)
    # the appliance answers a link-local source on its link: the side must own it
    for e in evals:
        if e["out"].startswith("self ") and " [fe80:" in " " + e["packet"].split(" -> ")[0] + " ":
            src = e["packet"].split()[1].rsplit(":", 1)[0].strip("[]")
            sh("ip", "-n", "%s-s%d" % (LAB, ifnames.index(e["in"])), "addr", "add", src + "/64", "dev", e["in"],
               "nodad", check=False)
    # the evaluator learns the lab's interface addresses (masquerade, hairpin)
    extra = "".join("addr %s %s\n" % (ifn, gw_addr[ifn]) for ifn in ifnames if ifn not in addrs)
    if extra:
        mp = os.path.join(tmpdir, "map")
        with open(mp, "w") as f:
            f.write(open(os.path.join(d, "map")).read() + extra)
        r2 = subprocess.run([os.path.join(build, "hvgate"), "replay", "policy.hvp", "capture.pcap", "--iif-map", mp,
                             "--json"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r2.returncode:
            raise RuntimeError("hvgate replay with the lab's addresses: %s" % r2.stderr.strip()[-300:])
        evals = [json.loads(line) for line in r2.stdout.splitlines() if line.startswith("{\"index\"")]
    # a policy with inspect rules runs as the appliance runs it: the ruleset
    # queues the flows (--queue) and the fast path judges their content, as
    # the replay models it
    inspect = re.search(r"\binspect\s*\{", policy) is not None
    queue = ["--queue", str(LIVE_QUEUE)] if inspect else []
    r = subprocess.run([os.path.join(build, "hvgate"), "apply", "policy.hvp", "--netns", gw] + queue, cwd=d,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        print("FAIL live/%s: hvgate apply: %s" % (name, r.stdout.strip()[-300:]))
        cleanup()
        return 0, 1, False
    fastpath = None
    if inspect:
        fastpath = subprocess.Popen([os.path.join(build, "hvgate"), "fastpath", "run", "policy.hvp", "--queue",
                                     str(LIVE_QUEUE), "--netns", gw, "--seconds", "120"], cwd=d,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = fastpath.stderr.readline()  # "hvgate fastpath: N inspect rules, queues ..."
        if "inspect rule" not in ready:
            fastpath.kill()
            fastpath.wait()
            print("FAIL live/%s: hvgate fastpath run: %s" % (name, ready.strip()))
            cleanup()
            return 0, 1, False
    # the dynamic block list of the map, as `hvgate block` fills it: a
    # global entry covers every routing mark
    for a, tenant in blocks:
        if tenant:
            raise RuntimeError("tenant block-list entries need the tenant's mark; not built yet")
        plen = a if "/" in a else a + ("/128" if ":" in a else "/32")
        r = subprocess.run(["ip", "netns", "exec", gw, "nft", "add", "element", "inet", "hvgate",
                            "blocked6" if ":" in a else "blocked4",
                            "{ 0x00000000-0xffffffff . %s }" % plen],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            raise RuntimeError("block list: %s" % r.stdout.strip())
    # let the links settle (DAD is off; neighbour entries are learnt on the way)
    time.sleep(0.3)
    drain(socks, 0.2)
    compared = disagreements = 0
    seen_counters = counters(gw)
    for e, frame in zip(evals, frames):
        idx = e["index"]
        ifn = e["in"]
        if ifn == "-" or ifn not in socks:
            continue
        s, gwmac = socks[ifn]
        eth = Ether(frame)
        eth.dst = gwmac
        s.send(bytes(eth))
        verdict = e["verdict"]
        want_out = e["out"].split(" ", 1) if verdict in ("pass", "inspect") and e["out"] else None
        evaluator = describe_eval(e)
        # wait for what the evaluator says comes (a frame out, or an answer
        # back on the way in), else for a spell of silence
        want_if = ifn if evaluator == "answered" else want_out[0] if want_out else None
        got = collect(socks, WAIT_EXPECTED if want_if else WAIT_SILENCE, want_if)
        kernel = describe(got, ifn, want_out[0] if want_out else None)
        compared += 1
        if kernel != evaluator:
            disagreements += 1
            print("DISAGREE live/%s packet %d (%s %s): evaluator: %s by %s; kernel: %s"
                  % (name, idx, ifn, e["packet"], evaluator, e["by"], kernel))
            # what the kernel counted: the rules whose counters moved since
            # the last look (a poor man's `nft monitor trace`)
            counted = counters(gw)
            for rule in sorted(set(counted) - set(seen_counters)):
                print("    kernel counted: %s" % rule)
            seen_counters = counted
        else:
            seen_counters = counters(gw)
    if fastpath:
        fastpath.terminate()
        try:
            fastpath.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fastpath.kill()
            fastpath.wait()
    cleanup()
    if disagreements:
        print("FAIL live/%s: %d of %d packets disagree" % (name, disagreements, compared))
    else:
        print("PASS live/%s (%d packets)" % (name, compared))
    return compared, disagreements, False


def segment_routes(gw, policy):
    """hvgate apply installs the tenants' routing tables and rules itself
    (appliance/route.c); the main table of an appliance also holds the
    segments (its own addresses on them), of overlapping ones the first
    declared. Read from the case's policy text, which
    tests/replay/gen_cases.py writes in one shape:
    `segment S { interface "IF" address A }` or `address { A, B }`."""
    for line in policy.splitlines():
        m = re.search(r'segment\s+\S+\s*\{\s*interface\s+"([^"]+)"\s+address\s+(\{[^}]*\}|\S+)', line)
        if not m:
            continue
        ifn, addrs = m.group(1), m.group(2).strip("{} ")
        for a in re.split(r"[,\s]+", addrs):
            if a:
                sh("ip", "-n", gw, "route", "add", a, "dev", ifn, check=False)


def proxy_side(side, ifn):
    """A side namespace answers ARP and neighbour solicitations for every
    address the gateway sends to (proxy ARP, proxy NDP entries added per
    destination), and swallows what it receives (a default route to a dummy
    interface)."""
    # a veth whose peer stays down: routes to it are usable, packets vanish
    sh("ip", "-n", side, "link", "add", "sink", "type", "veth", "peer", "name", "sinkpeer")
    sh("ip", "-n", side, "link", "set", "sink", "up")
    # proxy answers come after a random delay of up to proxy_delay (0.8 s by
    # default): long enough to push a reset into the next packet's window
    for k in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
              "net.ipv4.conf.%s.proxy_arp=1" % ifn, "net.ipv6.conf.%s.proxy_ndp=1" % ifn,
              "net.ipv4.neigh.%s.proxy_delay=0" % ifn, "net.ipv6.neigh.%s.proxy_delay=0" % ifn):
        sh("ip", "netns", "exec", side, "sysctl", "-qw", k)
    # its own unreachables (for what it swallows) would come back through
    # the gateway as related traffic of earlier packets
    r = subprocess.run(["ip", "netns", "exec", side, "nft", "-f", "-"], text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT,
                       input="table inet side {\n chain out {\n  type filter hook output priority 0;\n"
                             "  icmp type destination-unreachable drop\n"
                             "  icmpv6 type destination-unreachable drop\n }\n}\n")
    if r.returncode:
        raise RuntimeError("side ruleset: %s" % r.stdout.strip())
    sh("ip", "-n", side, "route", "add", "default", "dev", "sink")
    sh("ip", "-6", "-n", side, "route", "add", "default", "dev", "sink")


def counters(ns):
    """Every rule of table inet hvgate with its counter, as 'chain: rule'."""
    out = sh("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "hvgate", check=False)
    rules, chain = [], "?"
    for line in out.splitlines():
        t = line.strip()
        if t.startswith("chain "):
            chain = t.split()[1]
        elif "counter packets" in t and "counter packets 0 " not in t:
            rules.append("%s: %s" % (chain, t))
    return rules


def drain(socks, seconds):
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([s for s, _ in socks.values()], [], [], 0.05)
        for s in r:
            try:
                while s.recvfrom(65535):
                    pass
            except BlockingIOError:
                pass


def collect(socks, wait, want_if):
    """Frames the gateway sent out (interface, frame) within `wait` seconds;
    returns early once a frame arrived on want_if (then a short grace)."""
    got = []
    end = time.time() + wait
    by_sock = {s: ifn for ifn, (s, _) in socks.items()}
    while time.time() < end:
        r, _, _ = select.select(list(by_sock), [], [], 0.05)
        for s in r:
            try:
                while True:
                    data, addr = s.recvfrom(65535)
                    if addr[2] == PACKET_OUTGOING or is_noise(data):
                        continue
                    got.append((by_sock[s], data))
                    if want_if and by_sock[s] == want_if:
                        end = min(end, time.time() + 0.1)
            except BlockingIOError:
                pass
    return got


def describe(got, in_if, want_if=None):
    """The kernel's outcome: 'left IF TUPLE', 'answered', or 'nothing'."""
    if not got:
        return "nothing"
    outs = []
    for ifn, frame in got:
        if is_later_fragment(frame):
            continue
        if ifn == in_if and not (want_if == in_if and not is_reject_reply(frame)):
            # a reset or ICMP error from a reject, or the appliance's own
            # answer to a packet it accepted (a reset from a closed port, an
            # echo reply): both come back on the way in (a hairpin leaves
            # by the same interface, forwarded)
            outs.append("answered")
        else:
            outs.append("left %s %s" % (ifn, tuple_of(frame)))
    return "; ".join(sorted(set(outs))) or "nothing"


def is_later_fragment(frame):
    e = Ether(frame)
    if IP in e:
        return e[IP].frag > 0
    return IPv6ExtHdrFragment in e and e[IPv6ExtHdrFragment].offset > 0


def describe_eval(e):
    v = e["verdict"]
    if v in ("pass", "inspect"):
        if not e["out"]:
            return "nothing"
        ifn, t = e["out"].split(" ", 1)
        if ifn == "self":
            # the appliance answers what it accepts (a closed port resets,
            # an echo is answered), except neighbour discovery (lab noise)
            nd = t.startswith("icmpv6") and t.split()[-1] in ("133", "134", "135", "136")
            return "nothing" if nd else "answered"
        return "left %s %s" % (ifn, strip_flags(t))
    if v == "reject":
        return "answered"
    if v == "block" and e["out"]:
        # the fast path blocked a TCP flow by its content: a reset goes on
        # to the receiver (the out tuple) and one back to the sender
        ifn, t = e["out"].split(" ", 1)
        return "answered; left %s %s" % (ifn, strip_flags(t))
    return "nothing"


def main():
    # a timeout's SIGTERM still removes the lab (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    if os.geteuid():
        print("SKIP live: needs root (network namespaces)")
        return 0
    args = sys.argv[1:]
    base, refused_ok = HERE, False
    if "--dir" in args:  # generated cases (gen_random.py): a refused policy is skipped
        i = args.index("--dir")
        base, refused_ok = os.path.abspath(args[i + 1]), True
        del args[i:i + 2]
    build = os.path.abspath(args[0] if args else "build")
    names = args[1:] or sorted(n for n in os.listdir(base)
                               if os.path.exists(os.path.join(base, n, "capture.pcap")))
    cases = packets = bad = skipped = 0
    try:
        for n in names:
            try:
                c, dis, skip = run_case(build, n, base, refused_ok)
            except Exception as ex:  # a lab that cannot be built is a failure, never a pass
                print("FAIL live/%s: %s" % (n, ex))
                cleanup()
                bad += 1
                continue
            if skip:
                skipped += 1
                continue
            cases += 1
            packets += c
            bad += 1 if dis else 0
    finally:
        cleanup()
    print("live: %d cases, %d packets compared, %d cases with disagreements, %d generated policies refused by check"
          % (cases, packets, bad, skipped))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
