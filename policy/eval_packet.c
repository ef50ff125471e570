/* Packets as text, for `hvgate explain` and `hvgate test` (policy/eval.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ast.h"
#include "policy/eval.h"

/* ICMP echo-request (RFC 792) and ICMPv6 echo-request (RFC 4443 section 4.1):
 * the type of an icmp packet written without `type`. */
#define ICMP_ECHO_REQUEST   8
#define ICMPV6_ECHO_REQUEST 128

struct cursor {
	const char *text, *s, *src;
	char *err;
	size_t err_size, *err_col;
};

static int fail(struct cursor *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cursor *c, const char *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->err_size, fmt, ap);
	va_end(ap);
	*c->err_col = (size_t)(at - c->text) + 1;
	return -1;
}

static void skip_blank(struct cursor *c)
{
	while (*c->s == ' ' || *c->s == '\t')
		c->s++;
}

/* The next word: up to a blank (or "->"). */
static size_t word(struct cursor *c, const char **start)
{
	skip_blank(c);
	*start = c->s;
	while (*c->s && *c->s != ' ' && *c->s != '\t' && strncmp(c->s, "->", 2))
		c->s++;
	return (size_t)(c->s - *start);
}

static bool word_is(const char *w, size_t n, const char *kw)
{
	return n == strlen(kw) && !strncmp(w, kw, n);
}

static int parse_proto(struct cursor *c, struct policy_eval_packet *pkt)
{
	const char *w;
	size_t n = word(c, &w);
	int named = policy_l4proto_by_name(w, n);
	if (named >= 0) {
		pkt->l4proto = (uint8_t)named;
		return 0;
	}
	char *end;
	unsigned long v = n ? strtoul(w, &end, 10) : 256;
	if (n && end == w + n && v <= 255) {
		pkt->l4proto = (uint8_t)v;
		return 0;
	}
	return fail(c, w,
		    "expected a protocol (tcp, udp, sctp, icmp, icmpv6 or a number), found '%.*s'",
		    (int)n, w);
}

/* ADDR[:PORT], [V6]:PORT, V6, or `self[:PORT]`. */
static int parse_endpoint(struct cursor *c, struct policy_eval_packet *pkt, bool dst)
{
	const char *w;
	size_t n = word(c, &w);
	if (!n)
		return fail(c, w, "expected an address%s", dst ? " after '->'" : "");
	if (!dst)
		c->src = w;
	char addr[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *a = w;
	size_t alen = n;
	if (*w == '[') {
		const char *close = memchr(w, ']', n);
		if (!close)
			return fail(c, w + n, "expected ']' after an IPv6 address");
		a = w + 1;
		alen = (size_t)(close - a);
		if (close + 1 < w + n) {
			if (close[1] != ':')
				return fail(c, close + 1, "expected ':PORT' after ']'");
			port = close + 2;
		}
	} else {
		const char *colon = memchr(w, ':', n);
		if (colon && !memchr(colon + 1, ':', (size_t)(w + n - colon - 1))) {
			alen = (size_t)(colon - w);
			port = colon + 1;
		}
	}
	int family = 0;
	uint8_t bytes[16] = { 0 };
	if (dst && alen == 4 && !strncmp(a, "self", 4)) {
		pkt->to_self = true;
		family = pkt->family;
	} else {
		if (alen >= sizeof(addr))
			return fail(c, a, "invalid address '%.*s'", (int)alen, a);
		memcpy(addr, a, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET, addr, bytes) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, addr, bytes) == 1)
			family = AF_INET6;
		else
			return fail(c, a, "invalid address '%s'", addr);
	}
	if (dst && family && pkt->family && family != pkt->family)
		return fail(c, a, "the destination is IPv%d, the source IPv%d",
			    family == AF_INET ? 4 : 6, pkt->family == AF_INET ? 4 : 6);
	if (family) {
		pkt->family = family;
		memcpy(dst ? pkt->daddr : pkt->saddr, bytes, 16);
	}
	if (port) {
		char *end;
		size_t plen = (size_t)(w + n - port);
		unsigned long v = plen ? strtoul(port, &end, 10) : 70000;
		if (!plen || end != port + plen || v > 65535 || !isdigit((unsigned char)*port))
			return fail(c, port, "invalid port '%.*s' (0-65535)", (int)plen, port);
		if (dst)
			pkt->dport = (uint16_t)v;
		else
			pkt->sport = (uint16_t)v;
	}
	return 0;
}

/* The interface standing for zone z: its first name, a wildcard's stem
 * followed by "0". */
static void zone_ifname(const struct policy_zone *z, char ifname[POLICY_EVAL_IFNAMSIZ])
{
	const char *name = z->n_ifnames ? z->ifnames[0] : "";
	size_t n = strlen(name);
	if (n && name[n - 1] == '*')
		snprintf(ifname, POLICY_EVAL_IFNAMSIZ, "%.*s0", (int)(n - 1), name);
	else
		snprintf(ifname, POLICY_EVAL_IFNAMSIZ, "%s", name);
}

static int infer_iif(struct cursor *c, const struct policy *p, size_t tenant,
		     struct policy_eval_packet *pkt)
{
	size_t found = POLICY_NONE;
	for (size_t z = 0; z < p->n_zones; z++) {
		const struct policy_zone *zone = &p->zones[z];
		if (zone->tenant == POLICY_NONE ||
		    (tenant != POLICY_NONE && zone->tenant != tenant))
			continue;
		bool in = false;
		for (size_t i = 0; i < zone->addrs.n && !in; i++)
			in = policy_eval_addr_in(&zone->addrs.v[i], pkt->family, pkt->saddr);
		if (!in)
			continue;
		if (found != POLICY_NONE && p->zones[found].tenant != zone->tenant)
			return fail(
			    c, c->src,
			    "the source is in segments of tenants %s and %s; add --tenant or 'in IFNAME'",
			    p->tenants[p->zones[found].tenant].name, p->tenants[zone->tenant].name);
		if (found == POLICY_NONE)
			found = z;
	}
	if (found == POLICY_NONE)
		return fail(
		    c, c->src,
		    "the source is in no segment; say where the packet arrives: 'in IFNAME'");
	zone_ifname(&p->zones[found], pkt->iif);
	return 0;
}

static int parse_ifname(struct cursor *c, char out[POLICY_EVAL_IFNAMSIZ], const char *kw)
{
	const char *w;
	size_t n = word(c, &w);
	if (!n || n >= POLICY_EVAL_IFNAMSIZ)
		return fail(c, w, "expected an interface name (1 to 15 characters) after '%s'", kw);
	memcpy(out, w, n);
	out[n] = '\0';
	return 0;
}

int policy_eval_parse_packet(const struct policy *p, const char *text, size_t tenant,
			     struct policy_eval_packet *pkt, char *err, size_t err_size,
			     size_t *err_col)
{
	struct cursor c = { text, text, text, err, err_size, err_col };
	memset(pkt, 0, sizeof(*pkt));
	pkt->ct = POLICY_EVAL_CT_NEW;
	pkt->ct_tenant = POLICY_NONE;
	if (parse_proto(&c, pkt) || parse_endpoint(&c, pkt, false))
		return -1;
	skip_blank(&c);
	if (strncmp(c.s, "->", 2))
		return fail(&c, c.s, "expected '->' between source and destination");
	c.s += 2;
	if (parse_endpoint(&c, pkt, true))
		return -1;
	bool in = false, type = false;
	for (;;) {
		const char *w;
		size_t n = word(&c, &w);
		if (!n) {
			if (*c.s)
				return fail(&c, c.s, "unexpected '%.2s'", c.s);
			break;
		}
		if (word_is(w, n, "in") && !in) {
			if (parse_ifname(&c, pkt->iif, "in"))
				return -1;
			in = true;
		} else if (word_is(w, n, "out") && !*pkt->oif && !pkt->to_self) {
			const char *v = c.s;
			if (parse_ifname(&c, pkt->oif, "out"))
				return -1;
			if (!strcmp(pkt->oif, "self")) {
				*pkt->oif = '\0';
				pkt->to_self = true;
			}
			(void)v;
		} else if (word_is(w, n, "type") && !type &&
			   (pkt->l4proto == IPPROTO_ICMP || pkt->l4proto == IPPROTO_ICMPV6)) {
			const char *t;
			size_t tn = word(&c, &t);
			int v = tn ? policy_icmp_type_by_name(pkt->l4proto, t, tn) : -1;
			char *end;
			if (v < 0 && tn) {
				unsigned long num = strtoul(t, &end, 10);
				if (end == t + tn && num <= 255)
					v = (int)num;
			}
			if (v < 0)
				return fail(&c, t, "unknown icmp type '%.*s'", (int)tn, t);
			pkt->icmp_type = (uint8_t)v;
			type = true;
		} else {
			return fail(&c, w,
				    "expected 'in IFNAME', 'out IFNAME'%s or the end, found '%.*s'",
				    pkt->l4proto == IPPROTO_ICMP || pkt->l4proto == IPPROTO_ICMPV6
					? ", 'type T'"
					: "",
				    (int)n, w);
		}
	}
	if (!pkt->family)
		return fail(&c, text, "a packet needs a source address");
	if (pkt->l4proto == IPPROTO_ICMP && pkt->family == AF_INET6)
		return fail(&c, text, "icmp with IPv6 addresses; write icmpv6");
	if (pkt->l4proto == IPPROTO_ICMPV6 && pkt->family == AF_INET)
		return fail(&c, text, "icmpv6 with IPv4 addresses; write icmp");
	if (!type && pkt->l4proto == IPPROTO_ICMP)
		pkt->icmp_type = ICMP_ECHO_REQUEST;
	if (!type && pkt->l4proto == IPPROTO_ICMPV6)
		pkt->icmp_type = ICMPV6_ECHO_REQUEST;
	if (!in)
		return infer_iif(&c, p, tenant, pkt);
	return 0;
}

static void endpoint_text(const struct policy_eval_packet *pkt, bool dst, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	if (dst && pkt->to_self && !pkt->daddr[0] && !pkt->daddr[1]) {
		snprintf(a, sizeof(a), "self");
	} else if (!inet_ntop(pkt->family, dst ? pkt->daddr : pkt->saddr, a, sizeof(a))) {
		snprintf(a, sizeof(a), "?");
	}
	bool ports = pkt->l4proto == IPPROTO_TCP || pkt->l4proto == IPPROTO_UDP ||
		     pkt->l4proto == IPPROTO_SCTP;
	uint16_t port = dst ? pkt->dport : pkt->sport;
	if (!ports)
		snprintf(buf, size, "%s", a);
	else if (pkt->family == AF_INET6 && strcmp(a, "self"))
		snprintf(buf, size, "[%s]:%u", a, port);
	else
		snprintf(buf, size, "%s:%u", a, port);
}

void policy_eval_packet_text(const struct policy_eval_packet *pkt, char *buf, size_t size)
{
	char proto[8], src[64], dst[64];
	const char *name = policy_l4proto_name(pkt->l4proto);
	if (name)
		snprintf(proto, sizeof(proto), "%s", name);
	else
		snprintf(proto, sizeof(proto), "%u", pkt->l4proto);
	endpoint_text(pkt, false, src, sizeof(src));
	endpoint_text(pkt, true, dst, sizeof(dst));
	int n = snprintf(buf, size, "%s %s -> %s", proto, src, dst);
	if (n > 0 && (size_t)n < size &&
	    (pkt->l4proto == IPPROTO_ICMP || pkt->l4proto == IPPROTO_ICMPV6))
		n += snprintf(buf + n, size - (size_t)n, " type %u", pkt->icmp_type);
	if (n > 0 && (size_t)n < size && *pkt->iif)
		n += snprintf(buf + n, size - (size_t)n, " in %s", pkt->iif);
	if (n > 0 && (size_t)n < size && (*pkt->oif || pkt->to_self))
		snprintf(buf + n, size - (size_t)n, " out %s", pkt->to_self ? "self" : pkt->oif);
}
