/* hvgate replay POLICY CAPTURE.pcap: every packet of a capture through the
 * offline evaluator, stateful across the capture (docs/replay.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <dlfcn.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/fastpath/inspect.h"
#include "cli/cli.h"
#include "policy/grow.h"
#include "cli/explain.h"
#include "policy/eval_ct.h"

/* Link types (the tcpdump.org link-layer header types registry). */
#define LINKTYPE_ETHERNET  1
#define LINKTYPE_RAW       101
#define LINKTYPE_LINUX_SLL 113
#define LINKTYPE_IPV4      228
#define LINKTYPE_IPV6      229
#define DLT_RAW_BSD        12 /* DLT_RAW's number on some systems */
#define DLT_RAW_OPENBSD    14

/* EtherTypes (IEEE 802 numbers). */
#define ETHERTYPE_IPV4   0x0800
#define ETHERTYPE_IPV6   0x86dd
#define ETHERTYPE_VLAN   0x8100
#define ETHERTYPE_QINQ   0x88a8
#define ETHER_HEADER_LEN 14
#define VLAN_TAG_LEN     4
#define SLL_HEADER_LEN   16

/* Header sizes (RFC 791, 8200, 9293, 768, 792). */
#define IPV4_MIN_HEADER    20
#define IPV6_HEADER        40
#define TCP_MIN_HEADER     20
#define UDP_HEADER         8
#define ICMP_HEADER        8
#define SCTP_COMMON_HEADER 12 /* RFC 9260 section 3.1 */
/* IPv6 extension headers (RFC 8200 section 4). */
#define IPV6_EXT_HOP      0
#define IPV6_EXT_ROUTING  43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_DSTOPTS  60
#define IPV6_EXT_NONE     59
#define IPV6_EXT_MAX      8 /* extension headers followed before giving up */

/* ---- the interface map ---- */

struct map_range {
	unsigned long lo, hi; /* packet numbers, 1-based */
	char ifname[POLICY_EVAL_IFNAMSIZ];
};

struct map_prefix {
	struct policy_addr addr;
	char ifname[POLICY_EVAL_IFNAMSIZ];
};

struct iif_map {
	struct map_range *ranges;
	size_t n_ranges;
	struct map_prefix *from, *ifaddr; /* from ADDR IF, addr IF ADDR */
	size_t n_from, n_ifaddr;
	struct policy_eval_route *route; /* route ADDR IF */
	size_t n_route;
	struct policy_addr *self;
	size_t n_self;
	struct policy_eval_block *blocked; /* block ADDR [TENANT]: the dynamic block list */
	size_t n_blocked;
	char (*blocked_tenant)[64];
	char fallback[POLICY_EVAL_IFNAMSIZ];
};

static void map_free(struct iif_map *m)
{
	free(m->ranges);
	free(m->from);
	free(m->route);
	free(m->ifaddr);
	free(m->self);
	free(m->blocked);
	free(m->blocked_tenant);
}

int cli_parse_addr(const char *s, struct policy_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!strcmp(s, "any") || !strcmp(s, "default")) {
		a->family = 0; /* both */
		return 0;
	}
	char buf[INET6_ADDRSTRLEN + 8];
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	long len = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		len = strtol(slash + 1, &end, 10);
		if (*end || len < 0)
			return -1;
	}
	if (inet_pton(AF_INET, buf, a->lo) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a->lo) == 1)
		a->family = AF_INET6;
	else
		return -1;
	long max = a->family == AF_INET ? 32 : 128;
	if (len > max)
		return -1;
	a->prefix_len = (uint8_t)(len < 0 ? max : len);
	return 0;
}

static bool map_addr_in(const struct policy_addr *a, int family, const uint8_t *addr)
{
	return !a->family || policy_eval_addr_in(a, family, addr);
}

static int map_line(struct iif_map *m, const char *path, unsigned line, char *s)
{
	char *w[4] = { 0 };
	int n = 0;
	for (char *tok = strtok(s, " \t"); tok && n < 4; tok = strtok(NULL, " \t"))
		w[n++] = tok;
	if (!n)
		return 0;
	const char *bad = NULL;
	if (!strcmp(w[0], "from") && n == 3) {
		if (policy_grow_one((void **)&m->from, m->n_from, sizeof(*m->from)))
			return -ENOMEM;
		if (cli_parse_addr(w[1], &m->from[m->n_from].addr))
			bad = w[1];
		else if (strlen(w[2]) >= POLICY_EVAL_IFNAMSIZ)
			bad = w[2];
		else
			snprintf(m->from[m->n_from++].ifname, POLICY_EVAL_IFNAMSIZ, "%s", w[2]);
	} else if (!strcmp(w[0], "route") && n == 3) {
		if (policy_grow_one((void **)&m->route, m->n_route, sizeof(*m->route)))
			return -ENOMEM;
		if (cli_parse_addr(w[1], &m->route[m->n_route].addr))
			bad = w[1];
		else if (strlen(w[2]) >= POLICY_EVAL_IFNAMSIZ)
			bad = w[2];
		else
			snprintf(m->route[m->n_route++].ifname, POLICY_EVAL_IFNAMSIZ, "%s", w[2]);
	} else if (!strcmp(w[0], "addr") && n == 3) {
		if (policy_grow_one((void **)&m->ifaddr, m->n_ifaddr, sizeof(*m->ifaddr)))
			return -ENOMEM;
		if (strlen(w[1]) >= POLICY_EVAL_IFNAMSIZ)
			bad = w[1];
		else if (cli_parse_addr(w[2], &m->ifaddr[m->n_ifaddr].addr))
			bad = w[2];
		else
			snprintf(m->ifaddr[m->n_ifaddr++].ifname, POLICY_EVAL_IFNAMSIZ, "%s", w[1]);
	} else if (!strcmp(w[0], "block") && (n == 2 || n == 3)) {
		if (policy_grow_one((void **)&m->blocked, m->n_blocked, sizeof(*m->blocked)) ||
		    policy_grow_one((void **)&m->blocked_tenant, m->n_blocked,
				    sizeof(*m->blocked_tenant)))
			return -ENOMEM;
		m->blocked[m->n_blocked].tenant = POLICY_NONE;
		snprintf(m->blocked_tenant[m->n_blocked], sizeof(m->blocked_tenant[0]), "%s",
			 n == 3 ? w[2] : "");
		if (cli_parse_addr(w[1], &m->blocked[m->n_blocked].addr) ||
		    !m->blocked[m->n_blocked].addr.family)
			bad = w[1];
		else
			m->n_blocked++;
	} else if (!strcmp(w[0], "self") && n == 2) {
		if (policy_grow_one((void **)&m->self, m->n_self, sizeof(*m->self)))
			return -ENOMEM;
		if (cli_parse_addr(w[1], &m->self[m->n_self]))
			bad = w[1];
		else
			m->n_self++;
	} else if (n == 2 && strlen(w[1]) < POLICY_EVAL_IFNAMSIZ) {
		if (!strcmp(w[0], "*")) {
			snprintf(m->fallback, sizeof(m->fallback), "%s", w[1]);
			return 0;
		}
		if (policy_grow_one((void **)&m->ranges, m->n_ranges, sizeof(*m->ranges)))
			return -ENOMEM;
		struct map_range *r = &m->ranges[m->n_ranges];
		char *end;
		r->lo = strtoul(w[0], &end, 10);
		r->hi = r->lo;
		if (*end == '-')
			r->hi = strtoul(end + 1, &end, 10);
		if (*end || !r->lo || r->hi < r->lo)
			bad = w[0];
		else
			snprintf(m->ranges[m->n_ranges++].ifname, POLICY_EVAL_IFNAMSIZ, "%s", w[1]);
	} else {
		bad = w[0];
	}
	if (bad) {
		fprintf(stderr,
			"%s:%u: error: cannot read '%s' (N[-M] IFNAME, * IFNAME, from ADDR IFNAME, "
			"route ADDR IFNAME, self ADDR, addr IFNAME ADDR, block ADDR [TENANT])\n",
			path, line, bad);
		return -EINVAL;
	}
	return 0;
}

static int map_load(struct iif_map *m, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "hvgate replay: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	char buf[512];
	unsigned line = 0;
	int rc = 0;
	while (!rc && fgets(buf, sizeof(buf), f)) {
		line++;
		buf[strcspn(buf, "#\r\n")] = '\0';
		rc = map_line(m, path, line, buf);
	}
	fclose(f);
	return rc;
}

static const char *map_iif(const struct iif_map *m, unsigned long index,
			   const struct policy_eval_packet *pkt)
{
	for (size_t i = 0; i < m->n_ranges; i++)
		if (index >= m->ranges[i].lo && index <= m->ranges[i].hi)
			return m->ranges[i].ifname;
	for (size_t i = 0; i < m->n_from; i++)
		if (map_addr_in(&m->from[i].addr, pkt->family, pkt->saddr))
			return m->from[i].ifname;
	return m->fallback;
}

static const uint8_t *map_ifaddr(const struct iif_map *m, const char *ifname, int family)
{
	for (size_t i = 0; i < m->n_ifaddr; i++)
		if (!strcmp(m->ifaddr[i].ifname, ifname) && m->ifaddr[i].addr.family == family)
			return m->ifaddr[i].addr.lo;
	return NULL;
}

/* ---- decoding ---- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The transport header at l4 (len bytes): ports, flags, ICMP type and the
 * quoted header of an ICMP error. Returns NULL or what is wrong. */
static const char *decode_l4(const uint8_t *l4, size_t len, struct policy_eval_ct_packet *cp,
			     bool first_fragment_only);

static const char *decode_ip(const uint8_t *p, size_t len, struct policy_eval_ct_packet *cp,
			     bool inner, bool *later_fragment, uint32_t *frag_id,
			     bool *more_fragments)
{
	struct policy_eval_packet *pkt = &cp->pkt;
	if (len < 1)
		return "empty packet";
	int version = p[0] >> 4;
	const uint8_t *l4;
	size_t l4len;
	uint8_t proto;
	if (version == 4) {
		size_t ihl = (size_t)(p[0] & 0x0f) * 4;
		if (len < IPV4_MIN_HEADER || ihl < IPV4_MIN_HEADER || ihl > len)
			return "truncated IPv4 header";
		size_t total = be16(p + 2);
		if (!inner && (total < ihl || total > len))
			return "IPv4 total length beyond the packet";
		if (inner)
			total = len;
		uint16_t frag = be16(p + 6);
		pkt->family = AF_INET;
		memcpy(pkt->saddr, p + 12, 4);
		memcpy(pkt->daddr, p + 16, 4);
		proto = p[9];
		*later_fragment = (frag & 0x1fff) != 0;
		*more_fragments = (frag & 0x2000) != 0;
		*frag_id = be16(p + 4);
		l4 = p + ihl;
		l4len = total - ihl;
	} else if (version == 6) {
		if (len < IPV6_HEADER)
			return "truncated IPv6 header";
		size_t payload = be16(p + 4);
		if (!inner && IPV6_HEADER + payload > len)
			return "IPv6 payload length beyond the packet";
		if (inner)
			payload = len - IPV6_HEADER;
		pkt->family = AF_INET6;
		memcpy(pkt->saddr, p + 8, 16);
		memcpy(pkt->daddr, p + 24, 16);
		proto = p[6];
		l4 = p + IPV6_HEADER;
		l4len = payload;
		*later_fragment = *more_fragments = false;
		for (int hops = 0; hops < IPV6_EXT_MAX; hops++) {
			if (proto != IPV6_EXT_HOP && proto != IPV6_EXT_ROUTING &&
			    proto != IPV6_EXT_DSTOPTS && proto != IPV6_EXT_FRAGMENT)
				break;
			if (l4len < 8)
				return "truncated IPv6 extension header";
			size_t ext = proto == IPV6_EXT_FRAGMENT ? 8 : ((size_t)l4[1] + 1) * 8;
			if (ext > l4len)
				return "truncated IPv6 extension header";
			if (proto == IPV6_EXT_FRAGMENT) {
				uint16_t off = be16(l4 + 2);
				*later_fragment = (off & 0xfff8) != 0;
				*more_fragments = (off & 1) != 0;
				*frag_id = (uint32_t)l4[4] << 24 | (uint32_t)l4[5] << 16 |
					   (uint32_t)l4[6] << 8 | l4[7];
			}
			proto = l4[0];
			l4 += ext;
			l4len -= ext;
		}
		if (proto == IPV6_EXT_NONE)
			l4len = 0;
	} else {
		return "not IPv4 or IPv6";
	}
	pkt->l4proto = proto;
	if (*later_fragment)
		return NULL;
	return decode_l4(l4, l4len, cp, inner);
}

static const char *decode_l4(const uint8_t *l4, size_t len, struct policy_eval_ct_packet *cp,
			     bool inner)
{
	struct policy_eval_packet *pkt = &cp->pkt;
	switch (pkt->l4proto) {
	case IPPROTO_TCP:
		if (len < (inner ? 8 : TCP_MIN_HEADER))
			return inner ? NULL : "truncated TCP header";
		pkt->sport = be16(l4);
		pkt->dport = be16(l4 + 2);
		if (!inner) {
			if ((size_t)(l4[12] >> 4) * 4 < TCP_MIN_HEADER ||
			    (size_t)(l4[12] >> 4) * 4 > len)
				return "bad TCP data offset";
			cp->tcp_flags = l4[13];
		}
		return NULL;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (len < (inner ? 4 : UDP_HEADER))
			return inner ? NULL : "truncated UDP header";
		pkt->sport = be16(l4);
		pkt->dport = be16(l4 + 2);
		/* the SCTP common header is 12 bytes, the first chunk's type follows */
		cp->sctp_chunk = pkt->l4proto == IPPROTO_SCTP && len > SCTP_COMMON_HEADER
				     ? l4[SCTP_COMMON_HEADER]
				     : -1;
		return NULL;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		if (len < (inner ? 1 : ICMP_HEADER))
			return inner ? NULL : "truncated ICMP header";
		pkt->icmp_type = l4[0];
		if (len >= ICMP_HEADER)
			pkt->sport = pkt->dport = be16(l4 + 4); /* the id of a query */
		bool v6 = pkt->l4proto == IPPROTO_ICMPV6;
		uint8_t t = l4[0];
		bool error =
		    v6 ? t >= 1 && t <= 4 : t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
		if (inner || !error)
			return NULL;
		struct policy_eval_ct_packet quoted;
		memset(&quoted, 0, sizeof(quoted));
		bool later = false, more = false;
		uint32_t id = 0;
		const char *bad = decode_ip(l4 + ICMP_HEADER, len - ICMP_HEADER, &quoted, true,
					    &later, &id, &more);
		if (bad)
			return "ICMP error quoting no valid packet";
		cp->icmp_error = true;
		struct policy_eval_tuple *in = &cp->inner;
		in->family = quoted.pkt.family;
		in->l4proto = quoted.pkt.l4proto;
		memcpy(in->src, quoted.pkt.saddr, 16);
		memcpy(in->dst, quoted.pkt.daddr, 16);
		in->sport = quoted.pkt.sport;
		in->dport =
		    quoted.pkt.l4proto == IPPROTO_ICMP || quoted.pkt.l4proto == IPPROTO_ICMPV6
			? quoted.pkt.sport
			: quoted.pkt.dport;
		return NULL;
	}
	default: return NULL;
	}
}

/* The network-layer start of a frame of link type `dlt`. */
static const uint8_t *link_payload(int dlt, const uint8_t *p, size_t *len)
{
	size_t off;
	uint16_t type;
	switch (dlt) {
	case LINKTYPE_RAW:
	case DLT_RAW_BSD:
	case DLT_RAW_OPENBSD:
	case LINKTYPE_IPV4:
	case LINKTYPE_IPV6: return p;
	case LINKTYPE_LINUX_SLL:
		if (*len < SLL_HEADER_LEN)
			return NULL;
		type = be16(p + 14);
		off = SLL_HEADER_LEN;
		break;
	case LINKTYPE_ETHERNET:
		if (*len < ETHER_HEADER_LEN)
			return NULL;
		type = be16(p + 12);
		off = ETHER_HEADER_LEN;
		while ((type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) &&
		       *len >= off + VLAN_TAG_LEN) {
			type = be16(p + off + 2);
			off += VLAN_TAG_LEN;
		}
		break;
	default: return NULL;
	}
	if (type != ETHERTYPE_IPV4 && type != ETHERTYPE_IPV6)
		return NULL;
	*len -= off;
	return p + off;
}

/* ---- fragments: the kernel reassembles before conntrack ---- */

struct frag_hold {
	int family;
	uint8_t src[16], dst[16];
	uint32_t id;
	struct policy_eval_ct_packet first; /* the first fragment's headers */
	bool have_first;
	unsigned long first_index;
};

/* The content of inspected flows, judged by the fast path's own judge
 * (appliance/fastpath/inspect.h: fp_judge_first_packet, fp_judge_packet),
 * as the appliance runs it (docs/fastpath.md): a new flow's first packet
 * alone on its rule's queue block, then the flow's original-direction
 * packets while it is PENDING; a block decision drops the packet and, for
 * an established flow, labels it BLOCKED, and the kernel drops the rest of
 * the flow in both directions. Per conntrack flow of the model (index i,
 * conntrack id i + 1). The evaluator (policy/) does not look at payloads:
 * the judge lives in the appliance, which policy/ does not call. */
enum insp_state { INSP_NONE, INSP_PENDING, INSP_BLOCKED };

struct insp_flow {
	enum insp_state state;
	unsigned rule; /* inspect rule number, from 1 */
	const struct policy_rule *by;
	bool has_syn; /* its first packet was a bare SYN, not yet given to the judge */
	struct fp_syn_info syn;
};

struct inspection {
	struct fp_ruleset *rs;
	struct fp_flows *flows, *scratch;
	struct fp_stats stats;
	struct insp_flow *v; /* per flow of the conntrack model */
	size_t n;
	unsigned *rule_no; /* per rule of the policy: its inspect rule number, 0 none */
};

/* The first packet of a new inspected flow that went on: its inspect rule
 * number (0: the packet was not one), and whether it was a bare SYN, with
 * what it told (as the worker's memo keeps it, fastpath.c
 * ct_cache_put_first). */
struct first_packet {
	unsigned rule;
	bool has_syn;
	struct fp_syn_info syn;
};

struct replay {
	const struct policy *p;
	const struct policy_diags *d;
	const struct iif_map *map;
	struct policy_eval_ct_table ct;
	struct policy_eval_opts opts;
	struct frag_hold *frags;
	size_t n_frags;
	bool json;
	unsigned long n, passed, dropped, rejected, inspected, held, malformed;
	struct inspection insp;
	uint64_t now; /* the capture's time of the packet, seconds */
};

static int insp_init(struct inspection *in, const struct policy *p, char *err, size_t errsz)
{
	memset(in, 0, sizeof(*in));
	in->rule_no = calloc(p->n_rules + 1, sizeof(*in->rule_no));
	if (!in->rule_no) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	unsigned k = 0;
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].n_inspect)
			in->rule_no[i] = ++k;
	if (!k)
		return 0;
	in->rs = fp_ruleset_build(p, err, errsz);
	in->flows = fp_flows_new(0);
	in->scratch = fp_flows_new(1);
	if (!in->rs || !in->flows || !in->scratch) {
		if (in->rs && (!in->flows || !in->scratch))
			snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

static void insp_free(struct inspection *in)
{
	fp_ruleset_free(in->rs);
	fp_flows_free(in->flows);
	fp_flows_free(in->scratch);
	free(in->v);
	free(in->rule_no);
}

static struct insp_flow *insp_flow(struct inspection *in, size_t flow, bool create)
{
	if (flow == POLICY_NONE)
		return NULL;
	if (flow >= in->n) {
		if (!create)
			return NULL;
		struct insp_flow *v = realloc(in->v, (flow + 1) * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + in->n, 0, (flow + 1 - in->n) * sizeof(*v));
		in->v = v;
		in->n = flow + 1;
	}
	return &in->v[flow];
}

/* What the fast path decided about one packet, in words for the note. */
static void judge_note(enum fp_verdict v, bool has_event, const struct fp_event *ev,
		       const struct fp_stats *before, const struct fp_stats *after, char *note,
		       size_t size)
{
	if (has_event) {
		snprintf(note, size, "content: match %zu of the inspect block, %s", ev->match,
			 ev->action == POLICY_BLOCK ? "block" : "pass");
		return;
	}
	if (v != FP_BLOCK && v != FP_DROP_SEGMENT) {
		if (v == FP_DONE && after->window_done > before->window_done)
			snprintf(note, size, "inspection window ended without a match: cleared");
		return;
	}
	static const struct {
		size_t off;
		const char *why;
	} causes[] = {
		{ offsetof(struct fp_stats, urgent), "TCP URG flag" },
		{ offsetof(struct fp_stats, bad_end), "FIN or RST not at the stream's end" },
		{ offsetof(struct fp_stats, conflicts), "bytes differ from those judged" },
		{ offsetof(struct fp_stats, suspect), "the receiver would discard it" },
		{ offsetof(struct fp_stats, syn_data), "SYN with data" },
		{ offsetof(struct fp_stats, midstream),
		  "a new flow that does not start with a SYN" },
		{ offsetof(struct fp_stats, ext_headers), "too many IPv6 extension headers" },
		{ offsetof(struct fp_stats, ip_options),
		  "IP options or extension headers the receiver may refuse" },
		{ offsetof(struct fp_stats, malformed), "malformed headers" },
		{ offsetof(struct fp_stats, segments_dropped),
		  "TCP data not at the next expected byte" },
	};
	for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
		uint64_t a = *(const uint64_t *)((const char *)after + causes[i].off);
		uint64_t b = *(const uint64_t *)((const char *)before + causes[i].off);
		if (a > b) {
			snprintf(note, size, "fast path: %s", causes[i].why);
			return;
		}
	}
	snprintf(note, size, "fast path drops it");
}

static struct frag_hold *frag_find(struct replay *rp, const struct policy_eval_packet *pkt,
				   uint32_t id, bool create)
{
	size_t n = pkt->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < rp->n_frags; i++) {
		struct frag_hold *h = &rp->frags[i];
		if (h->family == pkt->family && h->id == id && !memcmp(h->src, pkt->saddr, n) &&
		    !memcmp(h->dst, pkt->daddr, n))
			return h;
	}
	if (!create || policy_grow_one((void **)&rp->frags, rp->n_frags, sizeof(*rp->frags)))
		return NULL;
	struct frag_hold *h = &rp->frags[rp->n_frags++];
	memset(h, 0, sizeof(*h));
	h->family = pkt->family;
	memcpy(h->src, pkt->saddr, 16);
	memcpy(h->dst, pkt->daddr, 16);
	h->id = id;
	return h;
}

static void frag_drop(struct replay *rp, struct frag_hold *h)
{
	*h = rp->frags[--rp->n_frags];
}

/* ---- output ---- */

static void line_out(struct replay *rp, unsigned long index, const char *ifname, const char *tuple,
		     const char *state, const char *verdict, const char *by, const char *out_tuple,
		     const char *note)
{
	if (rp->json) {
		printf("{\"index\":%lu,\"in\":", index);
		cli_json_string(stdout, ifname);
		printf(",\"packet\":");
		cli_json_string(stdout, tuple);
		printf(",\"state\":");
		cli_json_string(stdout, state);
		printf(",\"verdict\":");
		cli_json_string(stdout, verdict);
		printf(",\"by\":");
		cli_json_string(stdout, by);
		printf(",\"out\":");
		cli_json_string(stdout, out_tuple);
		printf(",\"note\":");
		cli_json_string(stdout, note);
		printf("}\n");
		return;
	}
	printf("%lu %s %s: %s %s by %s", index, ifname, tuple, state, verdict, by);
	if (*out_tuple)
		printf(" => %s", out_tuple);
	if (*note)
		printf(" (%s)", note);
	printf("\n");
}

static void tuple_text(const struct policy_eval_ct_packet *cp, char *buf, size_t size)
{
	struct policy_eval_packet p = cp->pkt;
	*p.iif = *p.oif = '\0';
	p.to_self = false;
	policy_eval_packet_text(&p, buf, size);
	if (cp->pkt.l4proto == IPPROTO_TCP && size > strlen(buf) + 8) {
		static const char names[] = "FSRPAU";
		char flags[8];
		size_t n = 0;
		for (int b = 0; b < 6; b++)
			if (cp->tcp_flags & (1 << b))
				flags[n++] = names[b];
		flags[n] = '\0';
		snprintf(buf + strlen(buf), size - strlen(buf), " [%s]", flags);
	}
}

/* The receiver's SYN-ACK of an inspected flow whose SYN was kept: the
 * ruleset queues it to the fast path, which notes its ISN next to the
 * SYN's (fastpath.c take_synack) and accepts it. True when l3 is one;
 * *syn then holds its ISN (or none, after two with different ones). A
 * capture without the SYN-ACK leaves the flow without it: judged, never
 * cleared (unseen_peer_isn), as on the appliance. */
static bool cp_tcp_synack(struct replay *rp, const uint8_t *l3, size_t l3len,
			  struct fp_syn_info *syn)
{
	struct fp_packet pk;
	uint32_t isn;
	fp_packet_parse(&pk, l3, l3len);
	if (!fp_synack_isn_of(&pk, &isn))
		return false;
	rp->insp.stats.synacks++;
	if (fp_syn_info_peer(syn, isn))
		rp->insp.stats.peer_isn_changed++;
	return true;
}

/* The decoded packet `cp` arrives on `ifname`: evaluate, print, remember. */
/* The fast path's part (struct inspection) for a packet the evaluator
 * passed (`passes`) or not: sets *drop when it drops the packet, with what
 * decided in *by (the inspect rule) and why in note. *first tells
 * whether the packet is the first of a new inspected flow that goes on. l3: the packet's bytes
 * (NULL: none to judge). */
static void inspect_packet(struct replay *rp, const struct policy_eval_ct_match *m,
			   const struct policy_eval_result *r, bool passes, const uint8_t *l3,
			   size_t l3len, bool *drop, bool *resets, const struct policy_rule **by,
			   struct first_packet *first, char *note, size_t size)
{
	struct inspection *in = &rp->insp;
	struct insp_flow *fl = insp_flow(in, m->flow, false);
	*drop = *resets = false;
	*first = (struct first_packet){ 0 };
	if (!in->rs)
		return;
	if (fl && fl->state == INSP_BLOCKED) {
		/* the kernel's `ct label 2 drop`, both directions */
		*drop = true;
		*by = fl->by;
		snprintf(note, size, "the flow was blocked by its content");
		return;
	}
	if (!passes)
		return;
	unsigned rule = 0;
	if (m->flow == POLICY_NONE && r->verdict == POLICY_EVAL_INSPECT && r->rule)
		rule = in->rule_no[r->rule - rp->p->rules];
	if (fl && fl->state == INSP_PENDING && m->reply && fl->has_syn && l3 &&
	    cp_tcp_synack(rp, l3, l3len, &fl->syn))
		return; /* the receiver's SYN-ACK: its ISN, as the worker keeps it */
	bool pending = fl && fl->state == INSP_PENDING && !m->reply;
	if (!rule && !pending)
		return;
	if (!l3) {
		if (!*note)
			snprintf(
			    note, size,
			    "reassembled: the fast path judges the datagram, the replay does not");
		return;
	}
	struct fp_packet pk;
	struct fp_event ev;
	bool has_event = false;
	if (!rule && fl->has_syn) {
		/* the flow's packet after its SYN: the worker opens its entry
		 * with what the SYN told (fastpath.c seed_from_syn) */
		struct fp_flow_key key;
		fp_flow_key_ct(&key, (uint32_t)(m->flow + 1));
		fp_flows_seed_syn(in->flows, &key, &fl->syn, rp->now, &in->stats);
		fl->has_syn = false;
	}
	struct fp_stats before = in->stats;
	fp_packet_parse(&pk, l3, l3len);
	enum fp_verdict v;
	if (rule) {
		v = fp_judge_first_packet(in->scratch, in->rs, rule, &pk, &in->stats, &ev,
					  &has_event);
		*by = r->rule;
	} else {
		uint8_t labels[FP_LABEL_BYTES] = { 0 };
		fp_labels_pending(labels, fl->rule);
		v = fp_judge_packet(in->flows, in->rs, (uint32_t)(m->flow + 1), labels, &pk,
				    rp->now, &in->stats, &ev, &has_event);
		*by = fl->by;
	}
	char why[160] = "";
	judge_note(v, has_event, &ev, &before, &in->stats, why, sizeof(why));
	if (*why)
		snprintf(note, size, "%s", why);
	*drop = v == FP_BLOCK || v == FP_DROP_SEGMENT;
	/* a block match on TCP: the fast path resets both ends */
	*resets =
	    v == FP_BLOCK && has_event && ev.action == POLICY_BLOCK && ev.protocol == IPPROTO_TCP;
	if (fl && v == FP_BLOCK)
		fl->state = INSP_BLOCKED;
	else if (fl && v == FP_DONE)
		fl->state = INSP_NONE; /* labelled DONE: never queued again */
	if (rule && !*drop) {
		first->rule = rule;
		first->has_syn = fp_syn_info_of(&pk, &first->syn);
	}
}

static int replay_packet(struct replay *rp, unsigned long index, struct policy_eval_ct_packet *cp,
			 const char *ifname, const char *note_in, const uint8_t *l3, size_t l3len)
{
	char tuple[256], by[256] = "", out[320] = "", note[256];
	snprintf(note, sizeof(note), "%s", note_in);
	tuple_text(cp, tuple, sizeof(tuple));
	struct policy_eval_packet *pkt = &cp->pkt;
	pkt->ct_tenant = POLICY_NONE;
	snprintf(pkt->iif, sizeof(pkt->iif), "%s", ifname);
	/* the conntrack zone of the arriving interface (the original direction) */
	size_t zone_of_if = policy_eval_zone_of(rp->p, ifname);
	uint16_t zone = 0;
	if (zone_of_if != POLICY_NONE && rp->p->zones[zone_of_if].tenant != POLICY_NONE)
		zone = rp->p->tenants[rp->p->zones[zone_of_if].tenant].ct_zone;
	struct policy_eval_ct_match m;
	policy_eval_ct_lookup(&rp->ct, cp, zone, &m);
	struct policy_eval_packet wire = *pkt;
	policy_eval_ct_pre(&rp->ct, &m, pkt);
	pkt->ct = m.state;
	for (size_t i = 0; i < rp->map->n_self; i++)
		if (policy_eval_addr_in(&rp->map->self[i], pkt->family, pkt->daddr))
			pkt->to_self = true;
	struct policy_eval_result r;
	if (policy_eval(rp->p, pkt, &rp->opts, &r)) {
		policy_eval_result_free(&r);
		return -ENOMEM;
	}
	if (r.ct == POLICY_EVAL_CT_UNTRACKED && m.state != POLICY_EVAL_CT_UNTRACKED) {
		m.state = POLICY_EVAL_CT_UNTRACKED;
		m.why = "`no state`: not tracked";
	}
	cli_explain_decider(rp->d, &r, by, sizeof(by));
	if (r.rule)
		snprintf(by, sizeof(by), "%s:%u", r.rule->loc.file, r.rule->loc.line);
	else if (r.def)
		snprintf(by, sizeof(by), "default:%s:%u", r.def->loc.file, r.def->loc.line);
	if (m.why && !*note)
		snprintf(note, sizeof(note), "%s", m.why);
	bool passes = r.verdict == POLICY_EVAL_PASS || r.verdict == POLICY_EVAL_INSPECT;
	bool judged_drop = false, resets = false;
	const struct policy_rule *judge_by = NULL;
	struct first_packet first;
	inspect_packet(rp, &m, &r, passes, l3, l3len, &judged_drop, &resets, &judge_by, &first,
		       note, sizeof(note));
	if (judged_drop) {
		snprintf(by, sizeof(by), "inspect:%s:%u", judge_by->loc.file, judge_by->loc.line);
		if (resets) {
			/* one reset goes on to the receiver as if from the sender
			 * (shown), one back to the sender (the packet is answered) */
			struct policy_eval_ct_packet rst = *cp;
			if (m.flow != POLICY_NONE)
				policy_eval_ct_post(&rp->ct, &m, &rst.pkt);
			rst.tcp_flags = POLICY_EVAL_TCP_RST;
			char t2[256];
			tuple_text(&rst, t2, sizeof(t2));
			snprintf(out, sizeof(out), "%s %s", *r.oif ? r.oif : "-", t2);
			size_t nl = strlen(note);
			snprintf(note + nl, sizeof(note) - nl, "%sa reset to each end",
				 nl ? "; " : "");
		}
		/* a dropped first packet leaves no connection; later ones were seen */
		if (m.flow != POLICY_NONE &&
		    policy_eval_ct_commit(&rp->ct, &m, &wire, &r, zone, NULL)) {
			policy_eval_result_free(&r);
			return -ENOMEM;
		}
		rp->dropped++;
		line_out(rp, index, ifname, tuple, policy_eval_ct_name(m.state), "block", by, out,
			 note);
		policy_eval_result_free(&r);
		return 0;
	}
	if (passes) {
		struct policy_eval_ct_packet after = *cp;
		if (m.flow != POLICY_NONE) {
			policy_eval_ct_post(&rp->ct, &m, &after.pkt);
		} else {
			if (r.dnat.nat) {
				memcpy(after.pkt.daddr, r.dnat.addr, 16);
				if (r.dnat.port)
					after.pkt.dport = r.dnat.port;
			}
			if (r.snat.nat) {
				const uint8_t *masq = r.snat.masquerade
							  ? map_ifaddr(rp->map, r.oif, pkt->family)
							  : NULL;
				if (!r.snat.masquerade)
					memcpy(after.pkt.saddr, r.snat.addr, 16);
				else if (masq)
					memcpy(after.pkt.saddr, masq, 16);
				if (r.snat.port)
					after.pkt.sport = r.snat.port;
			}
		}
		char t2[256];
		tuple_text(&after, t2, sizeof(t2));
		if (strcmp(t2, tuple) || *r.oif || r.to_self)
			snprintf(out, sizeof(out), "%s %s",
				 r.to_self ? "self"
				 : *r.oif  ? r.oif
					   : "-",
				 t2);
		if (r.snat.masquerade && !map_ifaddr(rp->map, r.oif, pkt->family) && !*note)
			snprintf(note, sizeof(note),
				 "masquerade: the address of %s is not in the map", r.oif);
		const uint8_t *masq =
		    r.snat.masquerade ? map_ifaddr(rp->map, r.oif, pkt->family) : NULL;
		size_t flows = rp->ct.n;
		if (policy_eval_ct_commit(&rp->ct, &m, &wire, &r, zone, masq)) {
			policy_eval_result_free(&r);
			return -ENOMEM;
		}
		if (first.rule && rp->ct.n > flows) {
			/* the new connection is labelled PENDING with its rule */
			struct insp_flow *fl = insp_flow(&rp->insp, rp->ct.n - 1, true);
			if (!fl) {
				policy_eval_result_free(&r);
				return -ENOMEM;
			}
			*fl = (struct insp_flow){ INSP_PENDING, first.rule, r.rule, first.has_syn,
						  first.syn };
		}
	}
	switch (r.verdict) {
	case POLICY_EVAL_PASS: rp->passed++; break;
	case POLICY_EVAL_INSPECT: rp->inspected++; break;
	case POLICY_EVAL_BLOCK: rp->dropped++; break;
	case POLICY_EVAL_REJECT: rp->rejected++; break;
	}
	line_out(rp, index, ifname, tuple, policy_eval_ct_name(m.state),
		 policy_eval_verdict_name(r.verdict), by, out, note);
	policy_eval_result_free(&r);
	return 0;
}

static int replay_frame(struct replay *rp, unsigned long index, int dlt, const uint8_t *data,
			size_t caplen)
{
	size_t len = caplen;
	const uint8_t *ip = link_payload(dlt, data, &len);
	struct policy_eval_ct_packet cp;
	memset(&cp, 0, sizeof(cp));
	if (!ip) {
		rp->malformed++;
		line_out(rp, index, "-", "-", "-", "skipped", "-", "", "not an IPv4 or IPv6 frame");
		return 0;
	}
	bool later = false, more = false;
	uint32_t frag_id = 0;
	const char *bad = decode_ip(ip, len, &cp, false, &later, &frag_id, &more);
	const char *ifname = map_iif(rp->map, index, &cp.pkt);
	if (!*ifname)
		ifname = "-";
	if (bad) {
		/* the kernel's IP input drops it before any hook */
		rp->malformed++;
		rp->dropped++;
		line_out(rp, index, ifname, "-", "-", "block", "kernel:malformed", "", bad);
		return 0;
	}
	if (later || more) {
		struct frag_hold *h = frag_find(rp, &cp.pkt, frag_id, true);
		if (!h)
			return -ENOMEM;
		if (!later) {
			h->first = cp;
			h->have_first = true;
			h->first_index = index;
		}
		if (more || !h->have_first) {
			rp->held++;
			char tuple[256];
			tuple_text(&cp, tuple, sizeof(tuple));
			line_out(rp, index, ifname, later ? "(fragment)" : tuple, "-", "held",
				 "reassembly", "", "a fragment waits for the rest of its datagram");
			return 0;
		}
		/* the last fragment completes the datagram: the kernel judges it now */
		struct policy_eval_ct_packet whole = h->first;
		frag_drop(rp, h);
		return replay_packet(rp, index, &whole, ifname, "reassembled", NULL, 0);
	}
	return replay_packet(rp, index, &cp, ifname, "", ip, len);
}

/* libpcap is loaded when a capture is replayed, not when hvgate starts:
 * it brings eight more shared libraries with it (D-Bus, systemd, gcrypt,
 * compressors), whose loading cost every verb a few milliseconds, explain's
 * 50 ms among them. */
static struct {
	pcap_t *(*open_offline)(const char *, char *);
	int (*datalink)(pcap_t *);
	int (*next_ex)(pcap_t *, struct pcap_pkthdr **, const u_char **);
	char *(*geterr)(pcap_t *);
	void (*close)(pcap_t *);
} pcap;

static int pcap_sym(void *lib, const char *name, void **fn)
{
	*fn = dlsym(lib, name);
	if (!*fn)
		fprintf(stderr, "hvgate replay: libpcap has no %s\n", name);
	return *fn ? 0 : -1;
}

static int pcap_load(void)
{
	static const char *const names[] = { "libpcap.so.0.8", "libpcap.so.1", "libpcap.so" };
	void *lib = NULL;

	if (pcap.close)
		return 0;
	for (size_t i = 0; !lib && i < sizeof(names) / sizeof(names[0]); i++)
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "hvgate replay: cannot load libpcap (%s): %s\n", names[0],
			dlerror());
		return -1;
	}
	if (pcap_sym(lib, "pcap_open_offline", (void **)&pcap.open_offline) ||
	    pcap_sym(lib, "pcap_datalink", (void **)&pcap.datalink) ||
	    pcap_sym(lib, "pcap_next_ex", (void **)&pcap.next_ex) ||
	    pcap_sym(lib, "pcap_geterr", (void **)&pcap.geterr) ||
	    pcap_sym(lib, "pcap_close", (void **)&pcap.close)) {
		pcap.close = NULL;
		dlclose(lib);
		return -1;
	}
	return 0;
}

static void replay_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: hvgate replay POLICY CAPTURE.pcap [--iif-map FILE | --iif IFNAME] [--json]\n\n"
	    "Runs every packet of a capture through the offline evaluator, with a model\n"
	    "of conntrack (new, established, related, invalid; NAT bindings and their\n"
	    "reverse translation; per-tenant zones), and prints one line per packet:\n"
	    "  INDEX IN TUPLE: STATE VERDICT by RULE|DEFAULT|BUILTIN [=> OUT TRANSLATED]\n"
	    "then a summary. The map says where packets arrive (N[-M] IFNAME, * IFNAME,\n"
	    "from ADDR/LEN IFNAME), where destinations in no segment leave (route ADDR/LEN\n"
	    "IFNAME), the appliance's own addresses (self ADDR) and interface addresses\n"
	    "for masquerade (addr IFNAME ADDR). docs/replay.md says what is modelled.\n"
	    "Exits 0; 1 for an invalid policy; 2 for usage or I/O errors.\n");
}

int cli_replay(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		replay_usage(stdout);
		return CLI_EXIT_OK;
	}
	const char *policy = NULL, *capture = NULL, *map_path = NULL, *iif = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--iif-map") && i + 1 < argc)
			map_path = argv[++i];
		else if (!strcmp(argv[i], "--iif") && i + 1 < argc)
			iif = argv[++i];
		else if (argv[i][0] == '-' || (policy && capture)) {
			replay_usage(stderr);
			return CLI_EXIT_USAGE;
		} else if (!policy)
			policy = argv[i];
		else
			capture = argv[i];
	}
	if (!policy || !capture || (iif && strlen(iif) >= POLICY_EVAL_IFNAMSIZ)) {
		replay_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	struct iif_map map;
	memset(&map, 0, sizeof(map));
	if (iif)
		snprintf(map.fallback, sizeof(map.fallback), "%s", iif);
	if (map_path && map_load(&map, map_path)) {
		map_free(&map);
		return CLI_EXIT_USAGE;
	}
	if (pcap_load()) {
		map_free(&map);
		return CLI_EXIT_USAGE;
	}
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap.open_offline(capture, errbuf);
	if (!pc) {
		fprintf(stderr, "hvgate replay: %s\n", errbuf);
		map_free(&map);
		return CLI_EXIT_USAGE;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_compiled c;
	int rc = cli_explain_load("replay", policy, &c, &d);
	if (rc) {
		pcap.close(pc);
		map_free(&map);
		policy_diags_free(&d);
		return rc == -1 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
	}
	struct replay rp = { .p = c.policy, .d = &d, .map = &map, .json = json };
	char ierr[256] = "";
	if (insp_init(&rp.insp, c.policy, ierr, sizeof(ierr))) {
		fprintf(stderr, "hvgate replay: the fast path's rules: %s\n", ierr);
		insp_free(&rp.insp);
		pcap.close(pc);
		map_free(&map);
		policy_compiled_free(&c);
		policy_diags_free(&d);
		return CLI_EXIT_USAGE;
	}
	policy_eval_ct_init(&rp.ct);
	policy_eval_opts_default(&rp.opts);
	rp.opts.path = false; /* one line per packet: no path to record */
	rp.opts.cache = policy_eval_cache_new(c.policy);
	for (size_t i = 0; i < map.n_blocked; i++) {
		if (!*map.blocked_tenant[i])
			continue;
		map.blocked[i].tenant = cli_explain_tenant(c.policy, map.blocked_tenant[i]);
		if (map.blocked[i].tenant == POLICY_NONE) {
			fprintf(stderr, "hvgate replay: %s: the policy has no tenant '%s'\n",
				map_path, map.blocked_tenant[i]);
			rc = -EINVAL;
		}
	}
	rp.opts.routes = map.route;
	rp.opts.n_routes = map.n_route;
	rp.opts.blocked = map.blocked;
	rp.opts.n_blocked = map.n_blocked;
	int dlt = pcap.datalink(pc);
	struct pcap_pkthdr *h;
	const u_char *data;
	int got = 0;
	while (!rc && (got = pcap.next_ex(pc, &h, &data)) == 1) {
		rp.n++;
		rp.now = h->ts.tv_sec > 0 ? (uint64_t)h->ts.tv_sec : 0;
		rc = replay_frame(&rp, rp.n, dlt, data, h->caplen);
	}
	if (!rc && got == PCAP_ERROR) {
		fprintf(stderr, "hvgate replay: %s: %s\n", capture, pcap.geterr(pc));
		rc = -EIO;
	}
	if (!rc) {
		if (json)
			printf(
			    "{\"summary\":{\"packets\":%lu,\"passed\":%lu,\"inspected\":%lu,\"dropped\":%lu,"
			    "\"rejected\":%lu,\"held\":%lu,\"malformed\":%lu}}\n",
			    rp.n, rp.passed, rp.inspected, rp.dropped, rp.rejected, rp.held,
			    rp.malformed);
		else
			printf(
			    "%lu packets: %lu passed, %lu inspected, %lu dropped, %lu rejected, %lu held "
			    "(fragments), %lu malformed\n",
			    rp.n, rp.passed, rp.inspected, rp.dropped, rp.rejected, rp.held,
			    rp.malformed);
	} else if (rc == -ENOMEM) {
		fprintf(stderr, "hvgate replay: out of memory\n");
	}
	policy_eval_ct_free(&rp.ct);
	insp_free(&rp.insp);
	policy_eval_cache_free(rp.opts.cache);
	free(rp.frags);
	pcap.close(pc);
	map_free(&map);
	policy_compiled_free(&c);
	policy_diags_free(&d);
	return rc ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}
