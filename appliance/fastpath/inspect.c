/* The inspection fast path's judgement (appliance/fastpath/inspect.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/fastpath/fields.h"
#include "appliance/fastpath/inspect.h"
#include "policy/lower.h"
#include "policy/tenant.h"

/* PCRE2's backtracking budget per match call: a pattern written badly
 * (nested quantifiers) must cost a packet a bounded time, not a worker.
 * PCRE2's default match limit is 10,000,000; 4 KiB of text needs far less. */
#define FP_MATCH_LIMIT 200000
#define FP_DEPTH_LIMIT 10000

/* RFC 791 section 3.1: IHL counts 32-bit words, at least 5. */
#define IPV4_MIN_HDR     20
#define IPV4_FLAG_MF     0x2000
#define IPV4_FRAG_OFFSET 0x1fff
/* RFC 8200 section 3 and 4. */
#define IPV6_HDR         40
#define IPV6_FRAG_HDR    8
#define IPV6_FRAG_OFFSET 0xfff8
#define IPV6_FRAG_MORE   0x0001
/* Extension headers walked before giving up (RFC 8200 section 4.1 lists
 * each at most once or twice; more is an evasion attempt). */
#define IPV6_MAX_EXT_HEADERS 8
/* RFC 9293 section 3.1: data offset counts 32-bit words, at least 5. */
#define TCP_MIN_HDR 20
#define TCP_FIN     0x01
#define TCP_SYN     0x02
#define TCP_RST     0x04
#define TCP_ACK     0x10
#define TCP_URG     0x20
/* RFC 9293 section 3.2: option kinds 0 (end) and 1 (no-operation) have no
 * length byte; the others do. */
#define TCP_OPT_END       0
#define TCP_OPT_NOP       1
#define TCP_OPT_TIMESTAMP 8  /* RFC 7323 section 3: kind, length 10, TSval, TSecr */
#define TCP_OPT_MD5       19 /* RFC 2385 */
#define TCP_OPT_AO        29 /* RFC 5925 */
#define TCP_OPT_TIMESTAMP_LEN 10
/* Linux's TCP_PAWS_WINDOW (include/net/tcp.h): a timestamp this far behind
 * the newest one the receiver holds still passes its PAWS test. */
#define TCP_PAWS_WINDOW 1
#define UDP_HDR     8 /* RFC 768 */

struct fp_match {
	pcre2_code *code; /* NULL: compare `name` */
	enum policy_inspect_field field;
	char *name;
	bool suffix;
	enum policy_action action;
	bool log;
	char *log_prefix; /* NULL: none */
};

struct fp_rule {
	char id[FP_RULE_ID_MAX];
	struct fp_match *matches;
	size_t n_matches;
};

/* A tenant's routing mark and conntrack zone (policy/tenant.h). */
struct fp_zone {
	uint32_t mark;
	uint16_t zone;
};

struct fp_ruleset {
	struct fp_rule *rules;
	size_t n_rules;
	struct fp_zone *zones;
	size_t n_zones;
};

/* One flow under inspection. Entries live in one array; `next` chains a
 * hash bucket, `older`/`newer` the entry's list (least recently seen first),
 * all as indexes, FLOW_NONE ending a list. */
#define FLOW_NONE UINT32_MAX

/* How long the entry of a TCP flow whose sender closed it (FIN) stays, as a
 * marker: the sender's last ACK follows within a round trip, and without
 * the marker it would open a new entry that idles for FP_IDLE_SECONDS. */
#define FLOW_CLOSED_SECONDS 5

struct flow {
	uint32_t ct_id;
	uint32_t next, older, newer;
	uint64_t last_seen;
	bool closed; /* on the closed list: a marker, not inspected any more */
	bool has_seq;
	bool has_ts;           /* ts_recent holds a timestamp */
	bool unverified;       /* took a segment with a signature it cannot check */
	uint8_t ttl;           /* the highest TTL / hop limit of the flow's packets */
	uint32_t ts_recent;    /* the newest TSval of a segment taken */
	uint32_t base_seq;     /* the stream's first byte */
	uint32_t next_seq;     /* the next byte expected (after a FIN or RST: its number) */
	uint32_t data_packets; /* TCP segments with new data, or UDP datagrams */
	uint8_t *buf;          /* FP_INSPECT_BYTES, TCP only, allocated at first data */
	size_t buf_len;
};

struct flow_list {
	uint32_t oldest, newest;
};

struct fp_flows {
	struct flow *flows;
	uint32_t cap;
	uint32_t count;    /* flows under inspection (not closed markers) */
	uint32_t *buckets; /* n_buckets, a power of two */
	uint32_t n_buckets;
	uint32_t free_head; /* unused entries chained by `next` */
	struct flow_list idle, closed;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
};

/* ---- the ruleset ---- */

static void rule_free(struct fp_rule *r)
{
	for (size_t i = 0; i < r->n_matches; i++) {
		pcre2_code_free(r->matches[i].code);
		free(r->matches[i].name);
		free(r->matches[i].log_prefix);
	}
	free(r->matches);
}

void fp_ruleset_free(struct fp_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n_rules; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	free(rs->zones);
	free(rs);
}

uint16_t fp_ruleset_zone(const struct fp_ruleset *rs, uint32_t mark)
{
	for (size_t i = 0; rs && i < rs->n_zones; i++)
		if (rs->zones[i].mark == (mark & POLICY_TENANT_MARK_MASK))
			return rs->zones[i].zone;
	return 0;
}

size_t fp_ruleset_count(const struct fp_ruleset *rs)
{
	return rs ? rs->n_rules : 0;
}

static int match_build(struct fp_match *m, const struct policy_inspect_match *pm, char *err,
                       size_t errsz)
{
	int code;
	PCRE2_SIZE off;

	m->action = pm->action;
	m->field = pm->field;
	m->suffix = pm->suffix;
	m->log = pm->log;
	if ((pm->log_prefix && !(m->log_prefix = strdup(pm->log_prefix))) ||
	    (pm->name && !(m->name = strdup(pm->name)))) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (!pm->regex)
		return 0;
	m->code = pcre2_compile((PCRE2_SPTR)pm->regex, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (!m->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errsz, "/%s/: %s at offset %zu", pm->regex, (const char *)msg,
		         (size_t)off);
		return -EINVAL;
	}
	/* Without JIT (or where it is refused) the interpreter does the same. */
	(void)pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE);
	return 0;
}

static int rule_build(struct fp_rule *r, const struct policy_rule *pr, char *err, size_t errsz)
{
	snprintf(r->id, sizeof(r->id), "%s", pr->id);
	r->matches = calloc(pr->n_inspect, sizeof(*r->matches));
	if (!r->matches) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < pr->n_inspect; i++) {
		r->n_matches = i + 1;
		if (match_build(&r->matches[i], &pr->inspect[i], err, errsz))
			return -EINVAL;
	}
	return 0;
}

struct fp_ruleset *fp_ruleset_build(const struct policy *p, char *err, size_t errsz)
{
	struct fp_ruleset *rs = calloc(1, sizeof(*rs));
	size_t n = 0;

	if (!rs) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].n_inspect > 0;
	if (n && !(rs->rules = calloc(n, sizeof(*rs->rules)))) {
		snprintf(err, errsz, "out of memory");
		free(rs);
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		if (!p->rules[i].n_inspect)
			continue;
		rs->n_rules++;
		if (rule_build(&rs->rules[rs->n_rules - 1], &p->rules[i], err, errsz)) {
			fp_ruleset_free(rs);
			return NULL;
		}
	}
	if (p->n_tenants && !(rs->zones = calloc(p->n_tenants, sizeof(*rs->zones)))) {
		snprintf(err, errsz, "out of memory");
		fp_ruleset_free(rs);
		return NULL;
	}
	for (size_t i = 0; i < p->n_tenants; i++)
		rs->zones[rs->n_zones++] = (struct fp_zone){ policy_tenant_mark(&p->tenants[i]),
							     p->tenants[i].ct_zone };
	return rs;
}

/* ---- labels ---- */

static bool label_bit(const uint8_t labels[FP_LABEL_BYTES], unsigned bit)
{
	return labels[bit / 8] & (1u << (bit % 8));
}

void fp_label_set(uint8_t labels[FP_LABEL_BYTES], unsigned bit)
{
	if (bit < FP_LABEL_BYTES * 8)
		labels[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

void fp_labels_pending(uint8_t labels[FP_LABEL_BYTES], unsigned rule)
{
	memset(labels, 0, FP_LABEL_BYTES);
	fp_label_set(labels, POLICY_CT_LABEL_PENDING);
	for (unsigned i = 0; i < POLICY_CT_LABEL_RULE_BITS; i++)
		if (rule >> i & 1)
			fp_label_set(labels, POLICY_CT_LABEL_RULE_SHIFT + i);
}

unsigned fp_label_rule(const uint8_t labels[FP_LABEL_BYTES])
{
	unsigned n = 0;

	for (unsigned i = 0; i < POLICY_CT_LABEL_RULE_BITS; i++)
		if (label_bit(labels, POLICY_CT_LABEL_RULE_SHIFT + i))
			n |= 1u << i;
	return n;
}

/* ---- the flow table ---- */

struct fp_flows *fp_flows_new(size_t max_flows)
{
	struct fp_flows *ft = calloc(1, sizeof(*ft));

	if (!ft)
		return NULL;
	if (!max_flows || max_flows > FP_MAX_FLOWS)
		max_flows = FP_MAX_FLOWS;
	ft->cap = (uint32_t)max_flows;
	for (ft->n_buckets = 16; ft->n_buckets < ft->cap; ft->n_buckets *= 2)
		;
	ft->flows = calloc(ft->cap, sizeof(*ft->flows));
	ft->buckets = malloc(ft->n_buckets * sizeof(*ft->buckets));
	ft->md = pcre2_match_data_create(1, NULL);
	ft->mctx = pcre2_match_context_create(NULL);
	if (!ft->flows || !ft->buckets || !ft->md || !ft->mctx) {
		fp_flows_free(ft);
		return NULL;
	}
	pcre2_set_match_limit(ft->mctx, FP_MATCH_LIMIT);
	pcre2_set_depth_limit(ft->mctx, FP_DEPTH_LIMIT);
	for (uint32_t i = 0; i < ft->n_buckets; i++)
		ft->buckets[i] = FLOW_NONE;
	for (uint32_t i = 0; i < ft->cap; i++)
		ft->flows[i].next = i + 1 < ft->cap ? i + 1 : FLOW_NONE;
	ft->free_head = 0;
	ft->idle.oldest = ft->idle.newest = FLOW_NONE;
	ft->closed.oldest = ft->closed.newest = FLOW_NONE;
	return ft;
}

void fp_flows_free(struct fp_flows *ft)
{
	if (!ft)
		return;
	if (ft->flows)
		for (uint32_t i = 0; i < ft->cap; i++)
			free(ft->flows[i].buf);
	free(ft->flows);
	free(ft->buckets);
	pcre2_match_data_free(ft->md);
	pcre2_match_context_free(ft->mctx);
	free(ft);
}

size_t fp_flows_count(const struct fp_flows *ft)
{
	return ft->count;
}

static uint32_t bucket_of(const struct fp_flows *ft, uint32_t ct_id)
{
	/* Knuth's multiplicative hash: conntrack ids are sequential-ish. */
	return (ct_id * 2654435761u) & (ft->n_buckets - 1);
}

static uint32_t flow_find(const struct fp_flows *ft, uint32_t ct_id)
{
	for (uint32_t i = ft->buckets[bucket_of(ft, ct_id)]; i != FLOW_NONE; i = ft->flows[i].next)
		if (ft->flows[i].ct_id == ct_id)
			return i;
	return FLOW_NONE;
}

static struct flow_list *list_of(struct fp_flows *ft, uint32_t i)
{
	return ft->flows[i].closed ? &ft->closed : &ft->idle;
}

static void list_unlink(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	struct flow_list *l = list_of(ft, i);

	if (f->older != FLOW_NONE)
		ft->flows[f->older].newer = f->newer;
	else
		l->oldest = f->newer;
	if (f->newer != FLOW_NONE)
		ft->flows[f->newer].older = f->older;
	else
		l->newest = f->older;
}

static void list_push(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	struct flow_list *l = list_of(ft, i);

	f->older = l->newest;
	f->newer = FLOW_NONE;
	if (l->newest != FLOW_NONE)
		ft->flows[l->newest].newer = i;
	else
		l->oldest = i;
	l->newest = i;
}

static void flow_remove(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	uint32_t *link = &ft->buckets[bucket_of(ft, f->ct_id)];

	while (*link != i)
		link = &ft->flows[*link].next;
	*link = f->next;
	list_unlink(ft, i);
	if (!f->closed)
		ft->count--;
	uint8_t *buf = f->buf; /* kept for the entry's next flow */
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->next = ft->free_head;
	ft->free_head = i;
}

/* Turns a flow into a closed marker, or a marker back into a fresh flow. */
static void flow_set_closed(struct fp_flows *ft, uint32_t i, bool closed, uint64_t now)
{
	struct flow *f = &ft->flows[i];

	list_unlink(ft, i);
	if (closed)
		ft->count--;
	else
		ft->count++;
	f->closed = closed;
	f->has_seq = false;
	f->has_ts = false;
	f->unverified = false;
	f->ttl = 0;
	f->data_packets = 0;
	f->buf_len = 0;
	f->last_seen = now;
	list_push(ft, i);
}

void fp_flows_expire(struct fp_flows *ft, uint64_t now, struct fp_stats *st)
{
	while (ft->idle.oldest != FLOW_NONE &&
	       ft->flows[ft->idle.oldest].last_seen + FP_IDLE_SECONDS <= now) {
		flow_remove(ft, ft->idle.oldest);
		st->expired++;
	}
	while (ft->closed.oldest != FLOW_NONE &&
	       ft->flows[ft->closed.oldest].last_seen + FLOW_CLOSED_SECONDS <= now)
		flow_remove(ft, ft->closed.oldest);
}

static uint32_t flow_add(struct fp_flows *ft, uint32_t ct_id, uint64_t now)
{
	/* A full table gives up the oldest closed marker before a new flow. */
	if (ft->free_head == FLOW_NONE && ft->closed.oldest != FLOW_NONE)
		flow_remove(ft, ft->closed.oldest);
	uint32_t i = ft->free_head;
	if (i == FLOW_NONE)
		return FLOW_NONE;
	struct flow *f = &ft->flows[i];
	ft->free_head = f->next;
	f->ct_id = ct_id;
	f->last_seen = now;
	uint32_t b = bucket_of(ft, ct_id);
	f->next = ft->buckets[b];
	ft->buckets[b] = i;
	list_push(ft, i);
	ft->count++;
	return i;
}

/* ---- parsing ---- */

struct packet {
	int family;
	uint8_t protocol;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t tcp_flags;
	uint32_t ack;      /* the acknowledgement number */
	uint8_t ttl;       /* IPv4 TTL or IPv6 hop limit */
	bool signed_opt;   /* a TCP-MD5 or TCP-AO option: the judge cannot check it */
	bool has_ts;
	uint32_t tsval;
	uint32_t seq;
	const uint8_t *payload;
	size_t payload_len;
};

enum parse_result { PARSE_OK, PARSE_MALFORMED, PARSE_EXT_HEADERS, PARSE_FRAGMENT, PARSE_OTHER };

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The options a receiver may discard a segment for (a signature it checks,
 * a timestamp older than the last). A malformed option list ends the walk,
 * as it ends the kernel's (tcp_parse_options). */
static void parse_tcp_options(struct packet *pk, const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = opt[i];
		if (kind == TCP_OPT_END)
			return;
		if (kind == TCP_OPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2 || opt[i + 1] < 2 || opt[i + 1] > len - i)
			return;
		if (kind == TCP_OPT_MD5 || kind == TCP_OPT_AO)
			pk->signed_opt = true;
		if (kind == TCP_OPT_TIMESTAMP && opt[i + 1] == TCP_OPT_TIMESTAMP_LEN) {
			pk->has_ts = true;
			pk->tsval = get32(opt + i + 2);
		}
		i += opt[i + 1];
	}
}

static enum parse_result parse_l4(struct packet *pk, const uint8_t *l4, size_t len)
{
	if (pk->protocol == IPPROTO_UDP) {
		if (len < UDP_HDR)
			return PARSE_MALFORMED;
		size_t udp_len = get16(l4 + 4);
		/* A length of 0 is a jumbogram's (RFC 2675); past the packet, a lie. */
		if (udp_len && (udp_len < UDP_HDR || udp_len > len))
			return PARSE_MALFORMED;
		pk->sport = get16(l4);
		pk->dport = get16(l4 + 2);
		pk->payload = l4 + UDP_HDR;
		pk->payload_len = (udp_len ? udp_len : len) - UDP_HDR;
		return PARSE_OK;
	}
	if (pk->protocol != IPPROTO_TCP)
		return PARSE_OTHER;
	if (len < TCP_MIN_HDR)
		return PARSE_MALFORMED;
	size_t doff = (size_t)(l4[12] >> 4) * 4;
	if (doff < TCP_MIN_HDR || doff > len)
		return PARSE_MALFORMED;
	pk->sport = get16(l4);
	pk->dport = get16(l4 + 2);
	pk->seq = get32(l4 + 4);
	pk->ack = get32(l4 + 8);
	pk->tcp_flags = l4[13];
	parse_tcp_options(pk, l4 + TCP_MIN_HDR, doff - TCP_MIN_HDR);
	pk->payload = l4 + doff;
	pk->payload_len = len - doff;
	return PARSE_OK;
}

static enum parse_result parse_ipv4(struct packet *pk, const uint8_t *p, size_t len)
{
	if (len < IPV4_MIN_HDR)
		return PARSE_MALFORMED;
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	size_t total = get16(p + 2);
	/* A GSO packet past 64 KiB (BIG TCP) carries total length 0. */
	if (total == 0 && len > 0xffff)
		total = len;
	if (ihl < IPV4_MIN_HDR || total < ihl || total > len)
		return PARSE_MALFORMED;
	pk->family = AF_INET;
	pk->protocol = p[9];
	pk->ttl = p[8];
	memcpy(pk->src, p + 12, 4);
	memcpy(pk->dst, p + 16, 4);
	/* Conntrack reassembles before the queue sees a packet, so a fragment
	 * here is unusual; judging part of a segment would corrupt the stream. */
	if (get16(p + 6) & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET))
		return PARSE_FRAGMENT;
	return parse_l4(pk, p + ihl, total - ihl);
}

static bool ipv6_is_ext(uint8_t nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

static enum parse_result parse_ipv6(struct packet *pk, const uint8_t *p, size_t len)
{
	if (len < IPV6_HDR)
		return PARSE_MALFORMED;
	size_t total = IPV6_HDR + get16(p + 4);
	/* Payload length 0: a jumbogram or a BIG TCP GSO packet. */
	if (total == IPV6_HDR && len > IPV6_HDR)
		total = len;
	if (total > len)
		return PARSE_MALFORMED;
	pk->family = AF_INET6;
	pk->ttl = p[7];
	memcpy(pk->src, p + 8, 16);
	memcpy(pk->dst, p + 24, 16);
	uint8_t nh = p[6];
	size_t off = IPV6_HDR;
	for (int n = 0; ipv6_is_ext(nh); n++) {
		size_t hlen;
		if (n == IPV6_MAX_EXT_HEADERS)
			return PARSE_EXT_HEADERS;
		if (total - off < 8)
			return PARSE_MALFORMED;
		const uint8_t *h = p + off;
		if (nh == IPPROTO_FRAGMENT) {
			if (get16(h + 2) & (IPV6_FRAG_OFFSET | IPV6_FRAG_MORE))
				return PARSE_FRAGMENT;
			hlen = IPV6_FRAG_HDR;
		} else if (nh == IPPROTO_AH) {
			hlen = ((size_t)h[1] + 2) * 4; /* RFC 4302 section 2.2 */
		} else {
			hlen = ((size_t)h[1] + 1) * 8; /* RFC 8200 section 4.3 */
		}
		if (hlen > total - off)
			return PARSE_MALFORMED;
		nh = h[0];
		off += hlen;
	}
	pk->protocol = nh;
	return parse_l4(pk, p + off, total - off);
}

static enum parse_result parse_packet(struct packet *pk, const uint8_t *p, size_t len)
{
	memset(pk, 0, sizeof(*pk));
	if (!len)
		return PARSE_MALFORMED;
	switch (p[0] >> 4) {
	case 4:
		return parse_ipv4(pk, p, len);
	case 6:
		return parse_ipv6(pk, p, len);
	default:
		return PARSE_MALFORMED;
	}
}

int fp_packet_tuple(const uint8_t *pkt, size_t len, struct fp_tuple *t)
{
	struct packet pk;

	memset(t, 0, sizeof(*t));
	if (parse_packet(&pk, pkt, len) != PARSE_OK)
		return -EINVAL;
	t->family = pk.family;
	t->protocol = pk.protocol;
	memcpy(t->src, pk.src, sizeof(t->src));
	memcpy(t->dst, pk.dst, sizeof(t->dst));
	t->sport = pk.sport;
	t->dport = pk.dport;
	return 0;
}

/* ---- matching ---- */

static void fill_event(struct fp_event *ev, uint32_t ct_id, unsigned rule_no,
                       const struct fp_rule *r, size_t mi, const struct packet *pk)
{
	const struct fp_match *m = &r->matches[mi];

	memset(ev, 0, sizeof(*ev));
	ev->ct_id = ct_id;
	snprintf(ev->rule_id, sizeof(ev->rule_id), "%s", r->id);
	ev->rule = rule_no;
	ev->match = mi;
	ev->action = m->action;
	ev->log = m->log;
	snprintf(ev->log_prefix, sizeof(ev->log_prefix), "%s", m->log_prefix ? m->log_prefix : "");
	ev->family = pk->family;
	ev->protocol = pk->protocol;
	memcpy(ev->src, pk->src, sizeof(ev->src));
	memcpy(ev->dst, pk->dst, sizeof(ev->dst));
	ev->sport = pk->sport;
	ev->dport = pk->dport;
	ev->tcp_ack = pk->ack;
}

enum match_result { MATCH_NO, MATCH_YES, MATCH_PENDING };

/* A match that errs (its backtracking budget spent) counts as not
 * matching. */
static bool regex_matches(struct fp_flows *ft, const struct fp_match *m, const void *text,
                          size_t len)
{
	return pcre2_match(m->code, (PCRE2_SPTR)text, len, 0, 0, ft->md, ft->mctx) >= 0;
}

static bool value_matches(struct fp_flows *ft, const struct fp_match *m, const char *value)
{
	if (m->code)
		return regex_matches(ft, m, value, strlen(value));
	if (m->field == POLICY_INSPECT_HTTP_PATH)
		return !strcmp(m->name, value);
	return fp_name_matches(m->name, m->suffix, value);
}

/* docs/fastpath.md, "Protocol fields": what the parser's state means for a
 * match. A message the parser refuses (or that the window ends inside)
 * cannot be shown to be harmless: a block match takes it, a pass match
 * does not. */
static enum match_result field_state(const struct fp_match *m, enum fp_field_state st,
                                     bool window_full)
{
	if (st == FP_FIELD_PENDING && !window_full)
		return MATCH_PENDING;
	if (st == FP_FIELD_PENDING || st == FP_FIELD_MALFORMED)
		return m->action == POLICY_BLOCK ? MATCH_YES : MATCH_NO;
	return MATCH_NO;
}

/* Every request of the stream so far, one after another. */
static enum match_result http_match(struct fp_flows *ft, const struct fp_match *m,
                                    const uint8_t *text, size_t len, bool window_full)
{
	struct fp_http_request req;

	for (size_t off = 0; off < len;) {
		enum fp_field_state st = fp_http_request(text + off, len - off, &req);
		if (st != FP_FIELD_FOUND)
			return field_state(m, st, window_full);
		const char *v = m->field == POLICY_INSPECT_HTTP_HOST ? (req.has_host ? req.host : NULL)
		                                                     : (req.has_path ? req.path : NULL);
		if (v && value_matches(ft, m, v))
			return MATCH_YES;
		off += req.end;
	}
	return len ? MATCH_NO : MATCH_PENDING;
}

/* Every DNS message of a TCP stream so far. */
static enum match_result dns_tcp_match(struct fp_flows *ft, const struct fp_match *m,
                                       const uint8_t *text, size_t len, bool window_full)
{
	char name[FP_NAME_MAX];
	size_t end = 0;

	for (size_t off = 0; off < len; off += end) {
		enum fp_field_state st = fp_dns_tcp_qname(text + off, len - off, name, &end);
		if (st != FP_FIELD_FOUND)
			return field_state(m, st, window_full);
		if (value_matches(ft, m, name))
			return MATCH_YES;
	}
	return len ? MATCH_NO : MATCH_PENDING;
}

/* Whether match m decides on text: a TCP stream's bytes so far (tcp) or
 * one datagram. */
static enum match_result match_one(struct fp_flows *ft, const struct fp_match *m, bool tcp,
                                   const uint8_t *text, size_t len, bool window_full)
{
	char name[FP_NAME_MAX];
	enum fp_field_state st;

	switch (m->field) {
	case POLICY_INSPECT_CONTENT:
		return regex_matches(ft, m, text, len) ? MATCH_YES : MATCH_NO;
	case POLICY_INSPECT_TLS_SNI:
		if (!tcp)
			return MATCH_NO; /* QUIC is not parsed: docs/fastpath.md */
		st = fp_tls_sni(text, len, name);
		break;
	case POLICY_INSPECT_HTTP_HOST:
	case POLICY_INSPECT_HTTP_PATH:
		return tcp ? http_match(ft, m, text, len, window_full) : MATCH_NO;
	case POLICY_INSPECT_DNS_QNAME:
		if (tcp)
			return dns_tcp_match(ft, m, text, len, window_full);
		st = fp_dns_qname(text, len, name);
		break;
	default:
		return MATCH_NO;
	}
	if (st == FP_FIELD_FOUND)
		return value_matches(ft, m, name) ? MATCH_YES : MATCH_NO;
	return field_state(m, st, window_full);
}

/* The index of the first match of r that decides on text, -1 for none,
 * -2 when a match before any deciding one waits for more of its message
 * (first match wins: a later match may not decide before it). */
static long run_matches(struct fp_flows *ft, const struct fp_rule *r, bool tcp,
                        const uint8_t *text, size_t len, bool window_full)
{
	for (size_t i = 0; i < r->n_matches; i++) {
		switch (match_one(ft, &r->matches[i], tcp, text, len, window_full)) {
		case MATCH_YES:
			return (long)i;
		case MATCH_PENDING:
			return -2;
		case MATCH_NO:
			break;
		}
	}
	return -1;
}

/* ---- the judgement ---- */

struct judge {
	struct fp_flows *ft;
	const struct fp_ruleset *rs;
	uint32_t ct_id;
	unsigned rule_no;
	uint64_t now;
	uint32_t next_seq; /* TCP: the flow's next byte before this segment */
	struct fp_stats *st;
	struct fp_event *ev;
	bool *has_event;
	const struct packet *pk;
};

/* Runs the rule's matches over text. may_clear false: no decision that
 * clears the flow (a pass match, the window's end) is taken on it. */
static enum fp_verdict decide(struct judge *j, const uint8_t *text, size_t len, bool window_full,
                              bool may_clear)
{
	const struct fp_rule *r = &j->rs->rules[j->rule_no - 1];
	long mi = run_matches(j->ft, r, j->pk->protocol == IPPROTO_TCP, text, len, window_full);

	if (mi == -2)
		return FP_CONTINUE;
	if (mi < 0)
		return window_full && may_clear ? FP_DONE : FP_CONTINUE;
	if (r->matches[mi].action != POLICY_BLOCK && !may_clear)
		return FP_CONTINUE;
	if (j->ev) {
		fill_event(j->ev, j->ct_id, j->rule_no, r, (size_t)mi, j->pk);
		j->ev->tcp_next_seq = j->next_seq;
		if (j->has_event)
			*j->has_event = true;
	}
	return r->matches[mi].action == POLICY_BLOCK ? FP_BLOCK : FP_DONE;
}

static uint32_t flow_get(struct judge *j, bool *full)
{
	uint32_t i = flow_find(j->ft, j->ct_id);

	*full = false;
	if (i != FLOW_NONE && j->ft->flows[i].closed) {
		flow_set_closed(j->ft, i, false, j->now);
		j->st->flows++;
		return i;
	}
	if (i != FLOW_NONE) {
		list_unlink(j->ft, i);
		j->ft->flows[i].last_seen = j->now;
		list_push(j->ft, i);
		return i;
	}
	i = flow_add(j->ft, j->ct_id, j->now);
	if (i == FLOW_NONE) {
		*full = true;
		j->st->table_full++;
		return FLOW_NONE;
	}
	j->st->flows++;
	return i;
}

static enum fp_verdict judge_udp(struct judge *j)
{
	bool full;
	uint32_t i = flow_get(j, &full);

	if (i == FLOW_NONE)
		return FP_DONE;
	struct flow *f = &j->ft->flows[i];
	f->data_packets++;
	enum fp_verdict v =
	    decide(j, j->pk->payload, j->pk->payload_len, f->data_packets >= FP_INSPECT_PACKETS, true);
	if (v == FP_DONE && f->data_packets >= FP_INSPECT_PACKETS && !*j->has_event)
		j->st->window_done++;
	if (v != FP_CONTINUE)
		flow_remove(j->ft, i);
	return v;
}

/* The sequence number of a segment's first data byte: a SYN takes one
 * number before its data (RFC 9293 section 3.4). */
static uint32_t data_seq(const struct packet *pk)
{
	return pk->seq + ((pk->tcp_flags & TCP_SYN) ? 1 : 0);
}

/* The stream starts where the first packet of the flow seen here says: the
 * handshake's last ACK, or the first data. */
static void tcp_start(struct flow *f, const struct packet *pk)
{
	if (f->has_seq)
		return;
	f->has_seq = true;
	f->base_seq = f->next_seq = data_seq(pk);
}

static enum fp_verdict drop(uint64_t *counter)
{
	(*counter)++;
	return FP_DROP_SEGMENT;
}

/* Whether the receiver would discard the segment for a reason the judge
 * can see. Such a copy must not change what the judge believes the stream
 * holds, and dropping it costs a real sender nothing. */
static bool tcp_receiver_discards(const struct flow *f, const struct packet *pk)
{
	/* RFC 9293 section 3.10.7.4: a segment without ACK is dropped once
	 * the connection is synchronised (Linux: tcp_rcv_established). */
	if (!(pk->tcp_flags & (TCP_ACK | TCP_RST)))
		return true;
	/* A copy sent with fewer hops to live than the flow's others can die
	 * between here and the receiver. */
	if (f->ttl && pk->ttl < f->ttl)
		return true;
	/* PAWS (RFC 7323 section 5.3): an older timestamp than the newest
	 * taken is discarded; a reset is exempt. */
	if (pk->has_ts && f->has_ts && !(pk->tcp_flags & TCP_RST) &&
	    (int32_t)(f->ts_recent - pk->tsval) > TCP_PAWS_WINDOW)
		return true;
	return false;
}

/* What a segment the judge took tells it about the flow's next ones. */
static void tcp_took(struct flow *f, const struct packet *pk)
{
	if (pk->ttl > f->ttl)
		f->ttl = pk->ttl;
	if (pk->has_ts && !(pk->tcp_flags & TCP_RST) &&
	    (!f->has_ts || (int32_t)(pk->tsval - f->ts_recent) > 0)) {
		f->has_ts = true;
		f->ts_recent = pk->tsval;
	}
}

enum append_result { APPEND_OK, APPEND_GAP, APPEND_UNSEEN, APPEND_CONFLICT };

/* Appends the part of the segment past what the flow has seen. Every copy
 * is judged: the bytes it shares with what the flow kept must be the same
 * (a first copy the receiver discarded must not stand for the second). */
static enum append_result tcp_append(struct flow *f, const struct packet *pk, bool *new_data)
{
	uint32_t seq = data_seq(pk);

	*new_data = false;
	/* Bytes before the stream's start were never seen here: not a
	 * retransmission of what the flow has, but data nobody inspected (or a
	 * sender that opened with a bogus sequence number to make the real
	 * data look old). The window ends long before the distance could wrap. */
	if ((int32_t)(seq - f->base_seq) < 0)
		return APPEND_UNSEEN;
	int32_t ahead = (int32_t)(seq - f->next_seq);
	if (ahead > 0)
		return APPEND_GAP;
	size_t skip = (size_t)(-(int64_t)ahead);
	size_t at = seq - f->base_seq;
	size_t shared = skip < pk->payload_len ? skip : pk->payload_len;
	if (at < f->buf_len) {
		size_t n = f->buf_len - at < shared ? f->buf_len - at : shared;
		if (memcmp(f->buf + at, pk->payload, n))
			return APPEND_CONFLICT;
	}
	if (skip >= pk->payload_len)
		return APPEND_OK; /* a retransmission of what the flow has */
	size_t fresh = pk->payload_len - skip;
	size_t room = FP_INSPECT_BYTES - f->buf_len;
	size_t take = fresh < room ? fresh : room;
	memcpy(f->buf + f->buf_len, pk->payload + skip, take);
	f->buf_len += take;
	f->next_seq += (uint32_t)fresh;
	*new_data = take > 0;
	return APPEND_OK;
}

static enum fp_verdict tcp_data(struct judge *j, uint32_t i)
{
	struct flow *f = &j->ft->flows[i];
	bool new_data;

	if (!f->buf && !(f->buf = malloc(FP_INSPECT_BYTES))) {
		flow_remove(j->ft, i);
		j->st->table_full++;
		return FP_DONE;
	}
	j->next_seq = f->next_seq;
	switch (tcp_append(f, j->pk, &new_data)) {
	case APPEND_OK:
		break;
	case APPEND_CONFLICT:
		return drop(&j->st->conflicts);
	case APPEND_GAP:
	case APPEND_UNSEEN:
		return drop(&j->st->segments_dropped);
	}
	/* A signature the judge cannot check: the receiver may discard the
	 * copy, so no decision to clear the flow may rest on it. */
	if (j->pk->signed_opt)
		f->unverified = true;
	if (!new_data)
		return FP_CONTINUE;
	f->data_packets++;
	/* The window is a number of bytes, never of segments: a sender that
	 * cuts its request into many small segments (TCP_NODELAY) gets it
	 * judged whole all the same. */
	bool window_full = f->buf_len >= FP_INSPECT_BYTES;
	enum fp_verdict v = decide(j, f->buf, f->buf_len, window_full, !f->unverified);
	if (v == FP_DONE && window_full && !*j->has_event)
		j->st->window_done++;
	return v;
}

/* A FIN or RST that the receiver takes ends the stream: the entry stays a
 * while as a closed marker that still knows the stream's bytes and its
 * end, so that nothing after the end starts a stream afresh. */
static void flow_end(struct fp_flows *ft, uint32_t i, uint64_t now)
{
	struct flow *f = &ft->flows[i];

	list_unlink(ft, i);
	ft->count--;
	f->closed = true;
	f->last_seen = now;
	list_push(ft, i);
}

/* The receiver takes a reset only at the next byte it expects (RFC 5961
 * section 3.2; others in the window get a challenge ACK), and a FIN only
 * at the end of the data before it: anywhere else it does not end the
 * stream, and here it is dropped. */
static bool tcp_end_valid(const struct flow *f, const struct packet *pk)
{
	if (pk->tcp_flags & TCP_RST)
		return data_seq(pk) == f->next_seq;
	return data_seq(pk) + (uint32_t)pk->payload_len == f->next_seq;
}

/* A packet of a flow that has ended: a retransmission of what it held (the
 * same bytes) or of its end passes; data past the end is dropped. */
static enum fp_verdict tcp_after_end(struct judge *j, uint32_t i)
{
	struct flow *f = &j->ft->flows[i];
	const struct packet *pk = j->pk;
	bool end = pk->tcp_flags & (TCP_FIN | TCP_RST);
	bool new_data;

	if (!pk->payload_len && !end)
		return FP_CONTINUE; /* the sender's last ACK */
	if (tcp_receiver_discards(f, pk))
		return drop(&j->st->suspect);
	if (pk->payload_len && !(pk->tcp_flags & TCP_RST)) {
		if ((int32_t)(data_seq(pk) + (uint32_t)pk->payload_len - f->next_seq) > 0)
			return drop(&j->st->segments_dropped);
		if (!f->buf || tcp_append(f, pk, &new_data) != APPEND_OK)
			return drop(&j->st->conflicts);
	}
	if (end && !tcp_end_valid(f, pk))
		return drop(&j->st->bad_end);
	return FP_CONTINUE;
}

static enum fp_verdict judge_tcp(struct judge *j)
{
	const struct packet *pk = j->pk;
	bool end = pk->tcp_flags & (TCP_FIN | TCP_RST);
	uint32_t i;

	/* Urgent data is read apart from the stream (RFC 9293 section 3.8.5;
	 * Linux takes the byte the urgent pointer names out of it), and the
	 * pointer may name a byte of a later segment: the judge would see
	 * bytes the application does not. Such a segment is dropped. */
	if (pk->tcp_flags & TCP_URG)
		return drop(&j->st->urgent);
	/* A SYN's data: the server's stack may take it (TCP Fast Open) and the
	 * stream then starts before what the handshake's ACK says. A sender
	 * without a Fast Open cookie sends it again after the handshake. A
	 * bare SYN makes no entry: spoofed SYNs that never complete the
	 * handshake would fill the table. */
	if (pk->tcp_flags & TCP_SYN)
		return pk->payload_len ? drop(&j->st->syn_data) : FP_CONTINUE;
	i = flow_find(j->ft, j->ct_id);
	if (i == FLOW_NONE && !pk->payload_len && end)
		return FP_CONTINUE; /* nothing to end */
	if (i != FLOW_NONE && j->ft->flows[i].closed)
		return tcp_after_end(j, i);
	bool full;
	if ((i = flow_get(j, &full)) == FLOW_NONE)
		return FP_DONE;
	struct flow *f = &j->ft->flows[i];
	tcp_start(f, pk);
	if ((pk->payload_len || end) && tcp_receiver_discards(f, pk))
		return drop(&j->st->suspect);
	enum fp_verdict v = FP_CONTINUE;
	if (pk->payload_len && !(pk->tcp_flags & TCP_RST)) {
		v = tcp_data(j, i);
		if (v == FP_DONE || v == FP_BLOCK)
			flow_remove(j->ft, i);
		if (v != FP_CONTINUE)
			return v;
	}
	if (end && !tcp_end_valid(f, pk))
		return drop(&j->st->bad_end);
	tcp_took(f, pk);
	if (end)
		flow_end(j->ft, i, j->now);
	return FP_CONTINUE;
}

static enum fp_verdict count(struct fp_stats *st, enum fp_verdict v)
{
	if (v == FP_DONE)
		st->done++;
	else if (v == FP_BLOCK)
		st->blocked++;
	return v;
}

enum fp_verdict fp_judge(struct fp_flows *ft, const struct fp_ruleset *rs, uint32_t ct_id,
                         const uint8_t labels[FP_LABEL_BYTES], const uint8_t *pkt, size_t len,
                         uint64_t now, struct fp_stats *st, struct fp_event *ev, bool *has_event)
{
	struct packet pk;
	bool ignored = false;
	struct judge j = {
	    .ft = ft,
	    .rs = rs,
	    .ct_id = ct_id,
	    .now = now,
	    .st = st,
	    .ev = ev,
	    .pk = &pk,
	    .has_event = has_event ? has_event : &ignored,
	};

	*j.has_event = false;
	st->packets++;
	st->bytes += len;
	fp_flows_expire(ft, now, st);
	j.rule_no = fp_label_rule(labels);
	if (j.rule_no == 0 || j.rule_no > fp_ruleset_count(rs)) {
		st->unknown_rule++;
		return count(st, FP_DONE);
	}
	switch (parse_packet(&pk, pkt, len)) {
	case PARSE_MALFORMED:
		return drop(&st->malformed);
	case PARSE_EXT_HEADERS:
		return drop(&st->ext_headers);
	case PARSE_FRAGMENT:
		st->fragments++;
		return FP_CONTINUE;
	case PARSE_OTHER:
		return count(st, FP_DONE);
	case PARSE_OK:
		break;
	}
	if (pk.protocol == IPPROTO_UDP)
		return count(st, judge_udp(&j));
	return count(st, judge_tcp(&j));
}

enum fp_verdict fp_judge_first(struct fp_flows *scratch, const struct fp_ruleset *rs, unsigned rule,
                               const uint8_t *pkt, size_t len, struct fp_stats *st,
                               struct fp_event *ev, bool *has_event)
{
	struct packet pk;
	uint8_t labels[FP_LABEL_BYTES];
	struct fp_stats unused = {0};

	if (has_event)
		*has_event = false;
	/* A TCP connection starts with a SYN; any other first packet is one
	 * that conntrack picked up in the middle of a connection (its entry
	 * was dropped, or it began before the ruleset): the stream's start is
	 * lost, so nothing of it may pass. */
	if (parse_packet(&pk, pkt, len) == PARSE_OK && pk.protocol == IPPROTO_TCP &&
	    (pk.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) {
		st->packets++;
		st->bytes += len;
		return drop(&st->midstream);
	}
	fp_labels_pending(labels, rule);
	enum fp_verdict v = fp_judge(scratch, rs, 0, labels, pkt, len, 0, st, ev, has_event);
	/* judged alone: the scratch table is emptied after each packet */
	fp_flows_expire(scratch, FP_IDLE_SECONDS, &unused);
	return v;
}

enum fp_verdict fp_judge_unknown(const uint8_t *pkt, size_t len, struct fp_stats *st)
{
	struct packet pk;

	st->packets++;
	st->bytes += len;
	switch (parse_packet(&pk, pkt, len)) {
	case PARSE_MALFORMED:
		return drop(&st->malformed);
	case PARSE_EXT_HEADERS:
		return drop(&st->ext_headers);
	case PARSE_FRAGMENT:
		st->fragments++;
		return FP_CONTINUE;
	default:
		st->ct_unknown++;
		return FP_CONTINUE;
	}
}

/* ---- resets ---- */

#define IPV4_DEFAULT_TTL 64 /* RFC 1700; Linux's net.ipv4.ip_default_ttl */
#define IPV4_FLAG_DF     0x4000

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* RFC 1071: the ones' complement sum of 16-bit words. */
static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One reset from src:sport to dst:dport with seq and ack. */
static size_t build_reset(uint8_t *out, int family, const uint8_t *src, const uint8_t *dst,
                          uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack)
{
	size_t alen = family == AF_INET ? 4 : 16;
	size_t ip = family == AF_INET ? IPV4_MIN_HDR : IPV6_HDR;
	uint8_t *t = out + ip;
	uint32_t sum;

	memset(out, 0, ip + TCP_MIN_HDR);
	if (family == AF_INET) {
		out[0] = 0x45;
		put16(out + 2, (uint16_t)(ip + TCP_MIN_HDR));
		put16(out + 6, IPV4_FLAG_DF);
		out[8] = IPV4_DEFAULT_TTL;
		out[9] = IPPROTO_TCP;
		memcpy(out + 12, src, 4);
		memcpy(out + 16, dst, 4);
		put16(out + 10, fold(sum16(0, out, IPV4_MIN_HDR)));
	} else {
		out[0] = 0x60;
		put16(out + 4, TCP_MIN_HDR);
		out[6] = IPPROTO_TCP;
		out[7] = IPV4_DEFAULT_TTL;
		memcpy(out + 8, src, 16);
		memcpy(out + 24, dst, 16);
	}
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (TCP_MIN_HDR / 4) << 4;
	t[13] = TCP_RST | TCP_ACK;
	/* RFC 9293 section 3.1 / RFC 8200 section 8.1: the pseudo-header */
	sum = sum16(0, src, alen);
	sum = sum16(sum, dst, alen);
	sum += IPPROTO_TCP + TCP_MIN_HDR;
	sum = sum16(sum, t, TCP_MIN_HDR);
	put16(t + 16, fold(sum));
	return ip + TCP_MIN_HDR;
}

int fp_tcp_resets(const struct fp_event *ev, uint8_t to_receiver[FP_RESET_MAX],
                  size_t *len_receiver, uint8_t to_sender[FP_RESET_MAX], size_t *len_sender)
{
	if (ev->protocol != IPPROTO_TCP || (ev->family != AF_INET && ev->family != AF_INET6))
		return -EINVAL;
	*len_receiver = build_reset(to_receiver, ev->family, ev->src, ev->dst, ev->sport, ev->dport,
	                            ev->tcp_next_seq, ev->tcp_ack);
	*len_sender = build_reset(to_sender, ev->family, ev->dst, ev->src, ev->dport, ev->sport,
	                          ev->tcp_ack, ev->tcp_next_seq);
	return 0;
}
