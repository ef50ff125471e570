/* The conntrack model of the replay (policy/eval_ct.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/eval_ct.h"

/* SCTP chunk type INIT, RFC 9260 section 3.3.2. */
#define SCTP_CHUNK_INIT 1

/* ICMP (RFC 792) and ICMPv6 (RFC 4443) query types that start a connection,
 * and their answers, as nf_conntrack_proto_icmp{,v6}.c pairs them. */
static const struct {
	uint8_t l4proto, request, reply;
} icmp_queries[] = {
	{ IPPROTO_ICMP, 8, 0 },       /* echo */
	{ IPPROTO_ICMP, 13, 14 },     /* timestamp */
	{ IPPROTO_ICMP, 15, 16 },     /* information */
	{ IPPROTO_ICMP, 17, 18 },     /* address mask */
	{ IPPROTO_ICMPV6, 128, 129 }, /* echo */
	{ IPPROTO_ICMPV6, 139, 140 }, /* node information */
};

/* ICMPv6 types conntrack leaves untracked (nf_conntrack_proto_icmpv6.c
 * noct_valid_new): MLD 130-132, neighbour discovery 133-137, MLDv2 143. */
static bool icmpv6_untracked(uint8_t type)
{
	return (type >= 130 && type <= 137) || type == 143;
}

void policy_eval_ct_init(struct policy_eval_ct_table *ct)
{
	memset(ct, 0, sizeof(*ct));
}

void policy_eval_ct_free(struct policy_eval_ct_table *ct)
{
	free(ct->flows);
	policy_eval_ct_init(ct);
}

static size_t alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool is_icmp(uint8_t p)
{
	return p == IPPROTO_ICMP || p == IPPROTO_ICMPV6;
}

/* The tuple of a packet; ICMP queries are keyed by their id. */
static void tuple_of(const struct policy_eval_packet *pkt, struct policy_eval_tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->family = pkt->family;
	t->l4proto = pkt->l4proto;
	memcpy(t->src, pkt->saddr, 16);
	memcpy(t->dst, pkt->daddr, 16);
	t->sport = pkt->sport;
	t->dport = is_icmp(pkt->l4proto) ? pkt->sport : pkt->dport;
}

static bool tuple_eq(const struct policy_eval_tuple *a, const struct policy_eval_tuple *b,
		     bool any_dst)
{
	size_t n = alen(a->family);
	return a->family == b->family && a->l4proto == b->l4proto && !memcmp(a->src, b->src, n) &&
	       (any_dst || !memcmp(a->dst, b->dst, n)) && a->sport == b->sport &&
	       a->dport == b->dport;
}

static void tuple_invert(const struct policy_eval_tuple *t, struct policy_eval_tuple *out)
{
	*out = *t;
	memcpy(out->src, t->dst, 16);
	memcpy(out->dst, t->src, 16);
	out->sport = t->dport;
	out->dport = t->sport;
}

/* Finds the flow of tuple t: its original direction in `zone`, or its reply
 * direction (zone 0 on both sides: the zone covers the original only). */
static size_t find(const struct policy_eval_ct_table *ct, const struct policy_eval_tuple *t,
		   uint16_t zone, bool *reply)
{
	for (size_t i = ct->n; i-- > 0;) {
		const struct policy_eval_flow *f = &ct->flows[i];
		if (f->zone == zone && tuple_eq(t, &f->orig, false)) {
			*reply = false;
			return i;
		}
		if (tuple_eq(t, &f->reply, f->masquerade_unknown)) {
			*reply = true;
			return i;
		}
	}
	return POLICY_NONE;
}

static int icmp_query(uint8_t l4proto, uint8_t type, bool *is_reply)
{
	for (size_t i = 0; i < sizeof(icmp_queries) / sizeof(icmp_queries[0]); i++) {
		if (icmp_queries[i].l4proto != l4proto)
			continue;
		if (icmp_queries[i].request == type) {
			*is_reply = false;
			return (int)i;
		}
		if (icmp_queries[i].reply == type) {
			*is_reply = true;
			return (int)i;
		}
	}
	return -1;
}

static void set(struct policy_eval_ct_match *m, enum policy_eval_ct st, const char *why)
{
	m->state = st;
	m->why = why;
}

void policy_eval_ct_lookup(const struct policy_eval_ct_table *ct,
			   const struct policy_eval_ct_packet *cp, uint16_t zone,
			   struct policy_eval_ct_match *m)
{
	const struct policy_eval_packet *pkt = &cp->pkt;
	memset(m, 0, sizeof(*m));
	m->flow = POLICY_NONE;
	if (cp->icmp_error) {
		/* the quoted packet went out in one direction of a flow: its
		 * inverse is the other direction's tuple */
		struct policy_eval_tuple inv;
		tuple_invert(&cp->inner, &inv);
		bool reply;
		size_t f = find(ct, &inv, 0, &reply);
		if (f == POLICY_NONE)
			f = find(ct, &cp->inner, zone, &reply);
		if (f == POLICY_NONE) {
			set(m, POLICY_EVAL_CT_INVALID, "ICMP error about no known connection");
			return;
		}
		m->flow = f;
		m->reply = reply;
		set(m, POLICY_EVAL_CT_RELATED, "ICMP error about a connection");
		return;
	}
	if (pkt->l4proto == IPPROTO_ICMPV6 && icmpv6_untracked(pkt->icmp_type)) {
		set(m, POLICY_EVAL_CT_UNTRACKED, "not tracked by conntrack");
		return;
	}
	struct policy_eval_tuple t;
	tuple_of(pkt, &t);
	bool icmp_reply = false;
	int q = is_icmp(pkt->l4proto) ? icmp_query(pkt->l4proto, pkt->icmp_type, &icmp_reply) : 0;
	if (q < 0) {
		set(m, POLICY_EVAL_CT_INVALID, "an ICMP type that starts no connection");
		return;
	}
	bool reply = false;
	size_t f = find(ct, &t, zone, &reply);
	if (f != POLICY_NONE && is_icmp(pkt->l4proto) && reply != icmp_reply)
		f = POLICY_NONE;
	if (f == POLICY_NONE) {
		if (is_icmp(pkt->l4proto) && icmp_reply) {
			set(m, POLICY_EVAL_CT_INVALID, "an ICMP reply without its request");
			return;
		}
		if (pkt->l4proto == IPPROTO_TCP) {
			uint8_t fl = cp->tcp_flags;
			if ((fl & POLICY_EVAL_TCP_SYN) && (fl & POLICY_EVAL_TCP_ACK)) {
				set(m, POLICY_EVAL_CT_INVALID, "SYN/ACK without a connection");
				return;
			}
			if (fl & (POLICY_EVAL_TCP_RST | POLICY_EVAL_TCP_FIN)) {
				set(m, POLICY_EVAL_CT_INVALID, "RST or FIN without a connection");
				return;
			}
			if (!(fl & (POLICY_EVAL_TCP_SYN | POLICY_EVAL_TCP_ACK))) {
				set(m, POLICY_EVAL_CT_INVALID, "TCP without SYN or ACK");
				return;
			}
		}
		/* nf_conntrack_proto_sctp.c: only an INIT starts an association */
		if (pkt->l4proto == IPPROTO_SCTP && cp->sctp_chunk != SCTP_CHUNK_INIT) {
			set(m, POLICY_EVAL_CT_INVALID,
			    "SCTP without INIT and without an association");
			return;
		}
		set(m, POLICY_EVAL_CT_NEW, NULL);
		return;
	}
	m->flow = f;
	m->reply = reply;
	if (reply || ct->flows[f].seen_reply)
		set(m, POLICY_EVAL_CT_ESTABLISHED, NULL);
	else
		set(m, POLICY_EVAL_CT_NEW, "a connection not answered yet");
}

void policy_eval_ct_pre(const struct policy_eval_ct_table *ct, const struct policy_eval_ct_match *m,
			struct policy_eval_packet *pkt)
{
	if (m->flow == POLICY_NONE)
		return;
	const struct policy_eval_flow *f = &ct->flows[m->flow];
	pkt->nat_bound = true;
	pkt->ct_tenant = f->tenant;
	size_t n = alen(pkt->family);
	bool ports = !is_icmp(pkt->l4proto);
	/* an ICMP error's outer header is translated only where its flow has
	 * that translation (the router that sent it is no endpoint) */
	bool related = m->state == POLICY_EVAL_CT_RELATED;
	if (related)
		ports = false;
	if (!m->reply && (!related || f->dnat)) {
		/* the destination as the flow's reply source */
		memcpy(pkt->daddr, f->reply.src, n);
		if (ports)
			pkt->dport = f->reply.sport;
	} else if (m->reply && (!related || f->snat)) {
		memcpy(pkt->daddr, f->orig.src, n);
		if (ports)
			pkt->dport = f->orig.sport;
	}
}

void policy_eval_ct_post(const struct policy_eval_ct_table *ct,
			 const struct policy_eval_ct_match *m, struct policy_eval_packet *pkt)
{
	if (m->flow == POLICY_NONE)
		return;
	const struct policy_eval_flow *f = &ct->flows[m->flow];
	size_t n = alen(pkt->family);
	bool related = m->state == POLICY_EVAL_CT_RELATED;
	bool ports = !is_icmp(pkt->l4proto) && !related;
	if (!m->reply && (!related || f->snat)) {
		if (!f->masquerade_unknown)
			memcpy(pkt->saddr, f->reply.dst, n);
		if (ports)
			pkt->sport = f->reply.dport;
	} else if (m->reply && (!related || f->dnat)) {
		memcpy(pkt->saddr, f->orig.dst, n);
		if (ports)
			pkt->sport = f->orig.dport;
	}
}

int policy_eval_ct_commit(struct policy_eval_ct_table *ct, const struct policy_eval_ct_match *m,
			  const struct policy_eval_packet *wire, const struct policy_eval_result *r,
			  uint16_t zone, const uint8_t *masq_addr)
{
	if (m->state == POLICY_EVAL_CT_INVALID || m->state == POLICY_EVAL_CT_UNTRACKED ||
	    m->state == POLICY_EVAL_CT_RELATED)
		return 0;
	if (m->flow != POLICY_NONE) {
		if (m->reply)
			ct->flows[m->flow].seen_reply = true;
		return 0;
	}
	if (ct->n == ct->cap) {
		size_t ncap = ct->cap ? ct->cap * 2 : 64;
		struct policy_eval_flow *v = realloc(ct->flows, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ct->flows = v;
		ct->cap = ncap;
	}
	struct policy_eval_flow *f = &ct->flows[ct->n++];
	memset(f, 0, sizeof(*f));
	tuple_of(wire, &f->orig);
	f->zone = zone;
	f->tenant = r->tenant;
	/* the reply: from the (translated) destination to the (translated) source */
	struct policy_eval_tuple out = f->orig;
	size_t n = alen(wire->family);
	bool ports = !is_icmp(wire->l4proto);
	if (r->dnat.nat) {
		f->dnat = true;
		memcpy(out.dst, r->dnat.addr, n);
		if (ports && r->dnat.port)
			out.dport = r->dnat.port;
	}
	if (r->snat.nat) {
		f->snat = true;
		if (r->snat.masquerade && masq_addr)
			memcpy(out.src, masq_addr, n);
		else if (r->snat.masquerade)
			f->masquerade_unknown = true;
		else
			memcpy(out.src, r->snat.addr, n);
		if (ports && r->snat.port)
			out.sport = r->snat.port;
	}
	tuple_invert(&out, &f->reply);
	return 0;
}
