/* Lowering: a checked struct policy -> the IR of table inet hvgate.
 *
 * Every decision about the generated ruleset is made here (or in the
 * optimizer), never in a backend; docs/ruleset.md describes the result. The
 * work is done in passes over a `struct lower`:
 *   glue      block lists, connection state, loopback, IPv6 neighbour discovery
 *   zones     interface -> zone dispatch maps (with the overlap check)
 *   rules     each policy rule -> template IR rules (one per family and
 *             service term), kept in a scratch table
 *   pairs     for every (from zone, to zone) the templates of the rules that
 *             can apply, in policy order, then the pair's default
 *   state     `no state` rules -> notrack in the raw chains
 *   nat       the nat chains, filled by nat_lower() (nat/)
 *   tenants   ct zone per tenant, anti-spoofing, inter-tenant check:
 *             policy_lower_tenants() (policy/tenant.c)
 * then the optimizer (policy/optimize.c) unless the options turn it off.
 */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/grow.h"
#include "policy/hash.h"
#include "policy/ir_build.h"
#include "policy/lower.h"
#include "policy/optimize.h"
#include "policy/policy.h"
#include "policy/tenant.h"

/* Chain priorities: POLICY_PRI_* (policy/ruleset.h), the kernel's own. */

/* The zone part of a chain name: two labels and "_to_" fit IR_NAME_MAX. */
#define LOWER_LABEL_MAX 24

/* ICMPv6 neighbour discovery, RFC 4861 section 4: router solicitation (133),
 * router advertisement (134), neighbour solicitation (135) and advertisement
 * (136). Without them IPv6 stops working through a default-drop input. */
static const uint8_t nd_types[] = { 133, 134, 135, 136 };

struct pair {
	size_t *rules; /* policy rule indices in policy order */
	size_t n, cap;
	char chain[IR_NAME_MAX];
};

struct lower {
	const struct policy *p;
	const struct policy_lower_opts *o;
	struct policy_diags *d;
	struct ir_table *t;
	struct ir_table *scratch; /* rule templates: chain i holds rule i's IR rules */
	size_t n_slots;           /* zones, then UNZONED, then SELF */
	size_t unzoned, self;
	char (*label)[LOWER_LABEL_MAX + 1];
	struct pair *pairs; /* n_slots * n_slots */
	size_t *made;       /* pairs that have a chain of their own, and their hashes */
	uint64_t *made_hash;
	size_t n_made;
	/* scratch set -> its clone in t, for large sets shared by every chain a
	 * rule is copied into (see copy_rule); (size_t)-1: not cloned yet */
	size_t *set_clone;
	/* per policy rule: its inspect rule number, 0 if it has no inspect
	 * block (number_inspect_rules) */
	unsigned *inspect_no;
	bool inspecting; /* some rule's flows go to the fast path */
};

static int oom(struct lower *l)
{
	return policy_error(l->d, NULL, "out of memory while lowering the policy");
}

/* ---- small builders ---- */

static int add_counter(struct ir_rule *r)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return -1;
	s->kind = IR_S_COUNTER;
	return 0;
}

static int add_log(struct ir_rule *r, const char *prefix, int group)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return -1;
	s->kind = IR_S_LOG;
	snprintf(s->log_prefix, sizeof(s->log_prefix), "%s", prefix);
	s->log_group = group;
	return 0;
}

static void set_verdict(struct ir_rule *r, enum ir_verdict_kind k, const char *chain)
{
	r->verdict.kind = k;
	if (chain)
		snprintf(r->verdict.chain, sizeof(r->verdict.chain), "%s", chain);
}

/* ---- values ---- */

static bool value_eq(const struct ir_value *a, const struct ir_value *b)
{
	return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/* ---- match of a list of values on one field ----
 *
 * Values are collected in a set outside the table, normalized, and then
 * become a plain compare, prefix, range (one element) or an anonymous set. */

static void tmp_set_init(struct ir_set *s, enum ir_field f)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "__set%%d");
	s->key[0] = f;
	s->n_key = 1;
	s->flags = IR_SET_ANONYMOUS | IR_SET_CONSTANT;
}

static int tmp_set_add(struct ir_set *s, const struct ir_value *lo, const struct ir_value *hi)
{
	struct ir_set_elem *e = ir_set_elem_add(s);
	if (!e)
		return -1;
	e->key[0] = *lo;
	if (hi && !value_eq(lo, hi)) {
		e->key_end[0] = *hi;
		s->flags |= IR_SET_INTERVAL;
	}
	return 0;
}

/* Consumes `s` (its elements move into the table or are freed). */
static int add_list_match(struct ir_table *t, struct ir_rule *r, struct ir_set *s)
{
	if (ir_set_normalize(s)) {
		free(s->elems);
		return -1;
	}
	if (s->n_elems == 1) {
		const struct ir_set_elem *e = &s->elems[0];
		const struct ir_value *end = ir_elem_end(e);
		/* an interface name pattern is one compare with a wildcard */
		bool wildcard =
		    ir_field_desc(s->key[0])->type == IR_T_IFNAME && !value_eq(&e->key[0], end);
		struct ir_match *m = wildcard ? ir_build_cmp(r, s->key[0], e->key[0], IR_OP_EQ)
					      : ir_build_range(r, s->key[0], e->key[0], *end);
		if (m)
			m->wildcard = wildcard;
		free(s->elems);
		return m ? 0 : -1;
	}
	struct ir_match *m = ir_match_add(r);
	if (!m) {
		free(s->elems);
		return -1;
	}
	m->field[0] = s->key[0];
	size_t idx = ir_set_add(t, s->name);
	if (idx == (size_t)-1) {
		free(s->elems);
		return -1;
	}
	t->sets[idx] = *s;
	m->kind = IR_M_LOOKUP;
	m->set = idx;
	return 0;
}

static int match_addrs(struct ir_table *t, struct ir_rule *r, const struct policy_addr_list *al,
		       int family, enum ir_field f)
{
	struct ir_set s;
	tmp_set_init(&s, f);
	for (size_t i = 0; i < al->n; i++) {
		if (al->v[i].family != family)
			continue;
		struct ir_value lo, hi;
		ir_build_addr_range(&al->v[i], &lo, &hi);
		if (tmp_set_add(&s, &lo, &hi)) {
			free(s.elems);
			return -1;
		}
	}
	return add_list_match(t, r, &s);
}

static int match_term(struct ir_table *t, struct ir_rule *r, const struct policy_service_term *term)
{
	if (!ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(term->l4proto), IR_OP_EQ))
		return -1;
	struct ir_set s;
	if (term->n_dports) {
		tmp_set_init(&s, IR_TH_DPORT);
		for (size_t i = 0; i < term->n_dports; i++) {
			struct ir_value lo = ir_value_u16_net(term->dports[i].lo);
			struct ir_value hi = ir_value_u16_net(term->dports[i].hi);
			if (tmp_set_add(&s, &lo, &hi)) {
				free(s.elems);
				return -1;
			}
		}
		return add_list_match(t, r, &s);
	}
	if (term->n_icmp_types) {
		tmp_set_init(&s, term->l4proto == IPPROTO_ICMPV6 ? IR_ICMPV6_TYPE : IR_ICMP_TYPE);
		for (size_t i = 0; i < term->n_icmp_types; i++) {
			struct ir_value v = ir_value_u8(term->icmp_types[i]);
			if (tmp_set_add(&s, &v, NULL)) {
				free(s.elems);
				return -1;
			}
		}
		return add_list_match(t, r, &s);
	}
	return 0;
}

/* Interfaces of the zones of an endpoint (raw chains, where no dispatch has
 * happened yet). */
static int match_ifnames(struct lower *l, struct ir_table *t, struct ir_rule *r,
			 const struct policy_endpoint *ep, enum ir_field f)
{
	if (ep->kind != POLICY_EP_MATCH || !ep->n_zones)
		return 0;
	struct ir_set s;
	tmp_set_init(&s, f);
	for (size_t i = 0; i < ep->n_zones; i++) {
		const struct policy_zone *z = &l->p->zones[ep->zones[i]];
		for (size_t j = 0; j < z->n_ifnames; j++) {
			struct ir_value lo, hi;
			ir_ifname_wildcard(z->ifnames[j], &lo, &hi);
			bool wild = strchr(z->ifnames[j], '*') != NULL;
			if (tmp_set_add(&s, &lo, wild ? &hi : NULL)) {
				free(s.elems);
				return -1;
			}
		}
	}
	return add_list_match(t, r, &s);
}

/* ---- one policy rule -> template IR rules ---- */

struct variant {
	const struct policy_rule *rule;
	int family;                             /* 0 (no addresses), AF_INET, AF_INET6 */
	const struct policy_service_term *term; /* NULL: any service */
	bool raw;                               /* notrack rule in a raw chain */
};

/* The matches of one variant; `force_tcp` adds `meta l4proto tcp` (the tcp
 * half of a reject without a service). */
static int variant_matches(struct lower *l, struct ir_table *t, struct ir_rule *r,
			   const struct variant *v, bool force_tcp)
{
	const struct policy_rule *pr = v->rule;
	if (v->family &&
	    !ir_build_cmp(r, IR_META_NFPROTO,
			  ir_value_u8(v->family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6),
			  IR_OP_EQ))
		return -1;
	if (v->raw) {
		bool out = pr->from.kind == POLICY_EP_SELF;
		if (match_ifnames(l, t, r, out ? &pr->to : &pr->from,
				  out ? IR_META_OIFNAME : IR_META_IIFNAME))
			return -1;
	}
	bool v6 = v->family == AF_INET6;
	if (pr->from.addrs.n &&
	    match_addrs(t, r, &pr->from.addrs, v->family, v6 ? IR_IP6_SADDR : IR_IP_SADDR))
		return -1;
	if (pr->to.addrs.n &&
	    match_addrs(t, r, &pr->to.addrs, v->family, v6 ? IR_IP6_DADDR : IR_IP_DADDR))
		return -1;
	if (v->term)
		return match_term(t, r, v->term);
	if (force_tcp && !ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(IPPROTO_TCP), IR_OP_EQ))
		return -1;
	return 0;
}

/* A template rule of the variant in scratch chain c (sets go to the scratch
 * table and are cloned into the real one with every copy). */
static struct ir_rule *variant_rule(struct lower *l, struct ir_chain *c, const struct variant *v,
				    bool force_tcp)
{
	struct ir_rule *r = ir_build_chain_rule(c, v->rule->kernel_id, &v->rule->loc);
	if (!r)
		return NULL;
	if (variant_matches(l, l->scratch, r, v, force_tcp))
		return NULL;
	return r;
}

static int rule_stmts(struct lower *l, struct ir_rule *r, const struct policy_rule *pr)
{
	if (pr->has_limit) {
		struct ir_stmt *s = ir_stmt_add(r);
		if (!s)
			return -1;
		s->kind = IR_S_LIMIT;
		s->rate = pr->limit_rate;
		s->unit = pr->limit_unit == POLICY_PER_SECOND   ? IR_PER_SECOND
			  : pr->limit_unit == POLICY_PER_MINUTE ? IR_PER_MINUTE
								: IR_PER_HOUR;
		s->burst = pr->limit_burst ? pr->limit_burst : POLICY_LIMIT_BURST_DEFAULT;
	}
	if (add_counter(r))
		return -1;
	/* To an NFLOG group the prefix is the rule's kernel id, unique per
	 * rule and free of its line, so the reader names the rule (its own
	 * `log "prefix"` may be shared). */
	const char *prefix =
	    pr->log_prefix && l->o->nflog_group < 0 ? pr->log_prefix : pr->kernel_id;
	if (pr->log && add_log(r, prefix, l->o->nflog_group))
		return -1;
	return 0;
}

/* ---- inspection (the fast path; policy/lower.h: the ct label bits) ---- */

/* Whether the fast path inspects the flows of rule pr: a pass rule with an
 * inspect block, a queue configured, and conntrack (labels live there). */
static bool inspected(const struct lower *l, const struct policy_rule *pr)
{
	return pr->action == POLICY_PASS && pr->n_inspect && !pr->stateless && l->o->queue_num >= 0;
}

/* The inspect rule number of pr: its place among the rules with an inspect
 * block, from 1 (what the fast path reads back from the label). */
static unsigned inspect_number(const struct lower *l, const struct policy_rule *pr)
{
	return l->inspect_no[pr - l->p->rules];
}

static int set_label(struct ir_rule *r, unsigned bit)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return -1;
	s->kind = IR_S_SET_VALUE;
	s->target = IR_CT_LABEL;
	s->value = ir_value_ct_label(bit);
	return 0;
}

/* ct label set PENDING, and the bits of the rule's inspect number */
static int inspect_mark(struct lower *l, struct ir_rule *r, const struct policy_rule *pr)
{
	unsigned number = inspect_number(l, pr);
	if (set_label(r, POLICY_CT_LABEL_PENDING))
		return -1;
	for (unsigned i = 0; i < POLICY_CT_LABEL_RULE_BITS; i++)
		if ((number >> i & 1) && set_label(r, POLICY_CT_LABEL_RULE_SHIFT + i))
			return -1;
	return 0;
}

static unsigned queue_workers(const struct lower *l)
{
	return l->o->queue_count ? l->o->queue_count : 1;
}

/* To the fast path's queues of block `block`: queue_num + block * workers,
 * one per worker; one flow always lands on the same one. Block 0 takes the
 * packets of flows under inspection (the fast path reads their rule from
 * the label); block k the first packet of inspect rule k's new flows, whose
 * connection is not confirmed yet, so that its labels cannot be read back
 * from conntrack on a kernel that does not send them with the packet. With
 * no fast path listening, packets pass (bypass): inspection is an addition
 * to a pass rule, and the appliance stays up without its worker. */
static int queue_stmt_to(struct lower *l, struct ir_rule *r, uint16_t num, uint16_t count)
{
	struct ir_stmt *q = ir_stmt_add(r);
	if (!q)
		return -1;
	q->kind = IR_S_QUEUE;
	q->queue_num = num;
	q->queue_count = count;
	q->queue_bypass = !l->o->queue_fail_closed;
	return 0;
}

/* The chain that spreads block `block` over the workers by the flow's
 * 5-tuple: the kernel's own balancing (queue num A-B, xt NFQUEUE
 * --queue-balance) hashes the addresses only, so all flows between two
 * hosts would meet on one worker. Worker w takes the hash values
 * [w * 64 / W, (w + 1) * 64 / W) of `symhash mod 64` (IR_FLOW_HASH); the
 * last rule takes the rest without a match. */
static int queue_spread_chain(struct lower *l, unsigned block, char name[IR_NAME_MAX])
{
	unsigned workers = queue_workers(l);
	snprintf(name, IR_NAME_MAX, "%s-q%u", POLICY_CHAIN_INSPECT, block);
	if (ir_chain_find(l->t, name))
		return 0;
	if (!ir_chain_add(l->t, name))
		return -1;
	for (unsigned w = 0; w < workers; w++) {
		struct ir_rule *r = ir_build_rule(l->t, name, POLICY_COMMENT_INSPECT);
		if (!r)
			return -1;
		if (w + 1 < workers) {
			struct ir_match *m = ir_match_add(r);
			if (!m)
				return -1;
			m->kind = IR_M_RANGE;
			m->field[0] = IR_FLOW_HASH;
			m->value = ir_value_u32(w * IR_FLOW_HASH_MOD / workers);
			m->value_end = ir_value_u32((w + 1) * IR_FLOW_HASH_MOD / workers - 1);
		}
		/* the counters show how the flows spread */
		if (add_counter(r) ||
		    queue_stmt_to(l, r, (uint16_t)(l->o->queue_num + block * workers + w), 1))
			return -1;
	}
	return 0;
}

static bool queue_spread(const struct lower *l)
{
	return queue_workers(l) > 1 && queue_workers(l) <= IR_FLOW_HASH_MOD;
}

/* The spreading chains of every block, made before any rule is lowered
 * (adding a chain moves the others). */
static int queue_spread_chains(struct lower *l)
{
	unsigned blocks = 0;
	char name[IR_NAME_MAX];
	for (size_t i = 0; i < l->p->n_rules; i++)
		if (l->inspect_no[i] > blocks)
			blocks = l->inspect_no[i];
	for (unsigned b = 0; queue_spread(l) && b <= blocks; b++)
		if (queue_spread_chain(l, b, name))
			return -1;
	return 0;
}

static int queue_stmt(struct lower *l, struct ir_rule *r, unsigned block)
{
	if (queue_spread(l)) {
		char name[IR_NAME_MAX];
		if (queue_spread_chain(l, block, name))
			return -1;
		set_verdict(r, IR_V_JUMP, name);
		return 0;
	}
	struct ir_stmt *q = ir_stmt_add(r);
	if (!q)
		return -1;
	q->kind = IR_S_QUEUE;
	q->queue_num = (uint16_t)(l->o->queue_num + block * queue_workers(l));
	q->queue_count = (uint16_t)queue_workers(l);
	q->queue_bypass = !l->o->queue_fail_closed;
	return 0;
}

static struct ir_match *add_label_bit(struct ir_rule *r, unsigned bit)
{
	struct ir_match *m = ir_match_add(r);
	if (m) {
		m->kind = IR_M_BITS;
		m->op = IR_OP_EQ;
		m->field[0] = IR_CT_LABEL;
		m->value = ir_value_ct_label(bit);
	}
	return m;
}

/* The SYN flag of the TCP header's flags byte (RFC 9293 section 3.1). */
#define TCP_FLAG_SYN 0x02

/* ct direction reply meta l4proto tcp tcp flags and 2 != 0 counter queue
 * (block 0): the receiver's SYN-ACK, the one reply of a flow under
 * inspection the fast path sees. It tells the receiver's ISN, without which
 * the judge cannot tell a segment the receiver discards for its ACK number
 * from the real one (docs/fastpath.md); the fast path accepts it always.
 * One more queued packet per inspected TCP connection (a SYN-ACK sent
 * again: one more each time). */
static int inspect_synack_rule(struct lower *l)
{
	struct ir_rule *r = ir_build_rule(l->t, POLICY_CHAIN_INSPECT, POLICY_COMMENT_INSPECT);
	if (!r || !ir_build_cmp(r, IR_CT_DIRECTION, ir_value_u8(IP_CT_DIR_REPLY), IR_OP_EQ) ||
	    !ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(IPPROTO_TCP), IR_OP_EQ))
		return -1;
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return -1;
	m->kind = IR_M_BITS;
	m->op = IR_OP_EQ;
	m->field[0] = IR_TCP_FLAGS;
	m->value = ir_value_u8(TCP_FLAG_SYN);
	if (add_counter(r))
		return -1;
	return queue_stmt(l, r, 0);
}

/* chain inspect: a flow the fast path blocked is dropped; one it cleared
 * goes on; the receiver's SYN-ACK and the others' packets in the original
 * direction go to the queue (other replies go on: the fast path looks at
 * what clients send). */
static int make_inspect_chain(struct lower *l)
{
	if (!ir_chain_add(l->t, POLICY_CHAIN_INSPECT) || queue_spread_chains(l))
		return -1;
	struct ir_rule *r =
	    ir_build_rule(l->t, POLICY_CHAIN_INSPECT, POLICY_COMMENT_INSPECT_BLOCKED);
	if (!r || !add_label_bit(r, POLICY_CT_LABEL_BLOCKED) || add_counter(r))
		return -1;
	set_verdict(r, IR_V_DROP, NULL);
	r = ir_build_rule(l->t, POLICY_CHAIN_INSPECT, POLICY_COMMENT_INSPECT);
	if (!r || !add_label_bit(r, POLICY_CT_LABEL_DONE))
		return -1;
	set_verdict(r, IR_V_RETURN, NULL);
	if (inspect_synack_rule(l))
		return -1;
	r = ir_build_rule(l->t, POLICY_CHAIN_INSPECT, POLICY_COMMENT_INSPECT);
	if (!r || !ir_build_cmp(r, IR_CT_DIRECTION, ir_value_u8(IP_CT_DIR_ORIGINAL), IR_OP_EQ) ||
	    add_counter(r) || queue_stmt(l, r, 0))
		return -1;
	return 0;
}

/* inspect-done-HOOK (policy/lower.h, POLICY_MARK_INSPECT_DONE): a packet
 * the fast path accepted with the DONE bit in its mark sets its flow's
 * DONE label; the bit comes off again. Only on flows under inspection
 * (PENDING): a mark of that bit on another packet is left alone. */
static int make_inspect_done_chain(struct lower *l, const char *name, enum ir_hook hook)
{
	if (!ir_build_base_chain(l->t, name, hook, IR_CHAIN_FILTER, POLICY_PRI_INSPECT_DONE,
				 IR_V_ACCEPT))
		return -1;
	struct ir_rule *r = ir_build_rule(l->t, name, POLICY_COMMENT_INSPECT);
	struct ir_match *m = r ? ir_match_add(r) : NULL;
	if (!m)
		return -1;
	m->kind = IR_M_BITS;
	m->op = IR_OP_EQ;
	m->field[0] = IR_META_MARK;
	m->value = ir_value_u32(POLICY_MARK_INSPECT_DONE);
	if (!add_label_bit(r, POLICY_CT_LABEL_PENDING) || set_label(r, POLICY_CT_LABEL_DONE))
		return -1;
	struct ir_stmt *s = ir_build_set_value(r, IR_META_MARK, ir_value_u32(0));
	if (!s)
		return -1;
	s->keep_mask = ~POLICY_MARK_INSPECT_DONE;
	return 0;
}

static int make_inspect_done_chains(struct lower *l)
{
	return make_inspect_done_chain(l, POLICY_CHAIN_INSPECT_DONE_INPUT, IR_HOOK_INPUT) ||
	       make_inspect_done_chain(l, POLICY_CHAIN_INSPECT_DONE_FORWARD, IR_HOOK_FORWARD) ||
	       make_inspect_done_chain(l, POLICY_CHAIN_INSPECT_DONE_OUTPUT, IR_HOOK_OUTPUT);
}

/* ct label PENDING jump inspect: before the ct state verdicts of a filter
 * hook, which would accept the flow's established packets. */
static int inspect_jump(struct lower *l, const char *chain)
{
	if (!l->inspecting)
		return 0;
	struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_INSPECT);
	if (!r || !add_label_bit(r, POLICY_CT_LABEL_PENDING))
		return -1;
	set_verdict(r, IR_V_JUMP, POLICY_CHAIN_INSPECT);
	return 0;
}

static int reject_stmt(struct ir_rule *r, enum ir_reject_kind k)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return -1;
	s->kind = IR_S_REJECT;
	s->reject = k;
	return 0;
}

static int lower_variant(struct lower *l, struct ir_chain *c, const struct variant *v)
{
	const struct policy_rule *pr = v->rule;
	struct ir_rule *r;
	if (pr->action == POLICY_REJECT) {
		bool tcp = v->term && v->term->l4proto == IPPROTO_TCP;
		if (!v->term || tcp) {
			if (!(r = variant_rule(l, c, v, !v->term)) || rule_stmts(l, r, pr) ||
			    reject_stmt(r, IR_REJECT_TCP_RESET))
				return -1;
		}
		if (!tcp) {
			if (!(r = variant_rule(l, c, v, false)) || rule_stmts(l, r, pr) ||
			    reject_stmt(r, IR_REJECT_ICMPX_PORT_UNREACH))
				return -1;
		}
		return 0;
	}
	if (inspected(l, pr)) {
		/* the new flow is marked for the fast path, which also gets this
		 * first packet (a UDP flow's first datagram carries data); the
		 * inspect chain sends it the rest */
		if (!(r = variant_rule(l, c, v, false)) || rule_stmts(l, r, pr) ||
		    inspect_mark(l, r, pr) || queue_stmt(l, r, inspect_number(l, pr)))
			return -1;
		return 0;
	}
	if (!(r = variant_rule(l, c, v, false)) || rule_stmts(l, r, pr))
		return -1;
	set_verdict(r, pr->action == POLICY_PASS ? IR_V_ACCEPT : IR_V_DROP, NULL);
	return 0;
}

static bool has_family(const struct policy_addr_list *al, int family)
{
	for (size_t i = 0; i < al->n; i++)
		if (al->v[i].family == family)
			return true;
	return false;
}

/* Calls fn for every (family, service term) variant of a rule that can
 * match: one per address family its addresses need, times one per term. */
static int for_each_variant(struct lower *l, const struct policy_rule *pr, bool raw,
			    struct ir_chain *c,
			    int (*fn)(struct lower *, struct ir_chain *, const struct variant *))
{
	int fams[2], n_fams = 0;
	bool fa = pr->from.addrs.n > 0, ta = pr->to.addrs.n > 0;
	if (!fa && !ta) {
		fams[n_fams++] = 0;
	} else {
		static const int both[2] = { AF_INET, AF_INET6 };
		for (int i = 0; i < 2; i++)
			if ((!fa || has_family(&pr->from.addrs, both[i])) &&
			    (!ta || has_family(&pr->to.addrs, both[i])))
				fams[n_fams++] = both[i];
	}
	if (!n_fams && !raw)
		policy_diag_add(
		    l->d, POLICY_WARNING, &pr->loc,
		    "rule can never match: its from and to addresses share no address family");
	for (int f = 0; f < n_fams; f++) {
		size_t n_terms = pr->n_services ? pr->n_services : 1;
		for (size_t i = 0; i < n_terms; i++) {
			struct variant v = { pr, fams[f], pr->n_services ? &pr->services[i] : NULL,
					     raw };
			if (v.term && ((v.term->l4proto == IPPROTO_ICMP && v.family == AF_INET6) ||
				       (v.term->l4proto == IPPROTO_ICMPV6 && v.family == AF_INET)))
				continue;
			if (fn(l, c, &v))
				return -1;
		}
	}
	return 0;
}

static int lower_notrack(struct lower *l, struct ir_chain *c, const struct variant *v)
{
	struct ir_rule *r = ir_build_chain_rule(c, v->rule->kernel_id, &v->rule->loc);
	if (!r)
		return -1;
	if (variant_matches(l, l->t, r, v, false))
		return -1;
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return -1;
	s->kind = IR_S_NOTRACK;
	return 0;
}

/* ---- glue ---- */

static int make_blocked_sets(struct lower *l)
{
	static const struct {
		const char *name;
		enum ir_field scope, f;
		const char *comment;
	} sets[] = { { POLICY_SET_BLOCKED4, IR_META_MARK, IR_IP_SADDR,
		       "dynamic block list (hvgate block)" },
		     { POLICY_SET_BLOCKED6, IR_META_MARK, IR_IP6_SADDR,
		       "dynamic block list (hvgate block)" },
		     { POLICY_SET_BLOCKED_ZONE4, IR_META_OIFNAME, IR_IP_SADDR,
		       "dynamic block list (hvgate block ADDR zone Z)" },
		     { POLICY_SET_BLOCKED_ZONE6, IR_META_OIFNAME, IR_IP6_SADDR,
		       "dynamic block list (hvgate block ADDR zone Z)" } };
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		size_t idx = ir_set_add(l->t, sets[i].name);
		if (idx == (size_t)-1)
			return -1;
		struct ir_set *s = &l->t->sets[idx];
		/* meta mark . address, both ranges: a tenant's entry covers its
		 * mark's range (policy/tenant.h), a global one every mark; the
		 * address is a prefix (appliance/txn.h). A zone's entry has one
		 * element per interface pattern of the zone (oifname range). */
		s->key[0] = sets[i].scope;
		s->key[1] = sets[i].f;
		s->n_key = 2;
		s->flags = IR_SET_INTERVAL | IR_SET_TIMEOUT | IR_SET_DYNAMIC;
		snprintf(s->comment, sizeof(s->comment), "%s", sets[i].comment);
	}
	return 0;
}

/* meta nfproto ipvX SCOPE . ip[6] saddr @SET counter drop, and with `dirs`
 * 2 the same for daddr: the block lists' rules, SCOPE scope[0] for saddr
 * and scope[1] for daddr, SET sets[0] for IPv4 and sets[1] for IPv6. */
static int block_list_rules(struct lower *l, const char *chain, const char *const sets[2],
			    const enum ir_field scope[2], int dirs)
{
	static const struct {
		uint8_t nfproto;
		enum ir_field saddr, daddr;
	} fams[] = { { NFPROTO_IPV4, IR_IP_SADDR, IR_IP_DADDR },
		     { NFPROTO_IPV6, IR_IP6_SADDR, IR_IP6_DADDR } };
	for (size_t i = 0; i < 2; i++) {
		for (int dir = 0; dir < dirs; dir++) {
			struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_BLOCKED);
			if (!r || !ir_build_cmp(r, IR_META_NFPROTO, ir_value_u8(fams[i].nfproto),
						IR_OP_EQ))
				return -1;
			const enum ir_field key[2] = { scope[dir],
						       dir ? fams[i].daddr : fams[i].saddr };
			if (!ir_build_lookup(r, key, 2, ir_build_set_find(l->t, sets[i]),
					     IR_OP_EQ) ||
			    add_counter(r))
				return -1;
			set_verdict(r, IR_V_DROP, NULL);
		}
	}
	return 0;
}

/* meta nfproto ipvX meta mark . ip[6] saddr|daddr @blockedX counter drop */
static int blocked_rules(struct lower *l, const char *chain, bool daddr_too)
{
	static const char *const sets[2] = { POLICY_SET_BLOCKED4, POLICY_SET_BLOCKED6 };
	static const enum ir_field scope[2] = { IR_META_MARK, IR_META_MARK };
	return block_list_rules(l, chain, sets, scope, daddr_too ? 2 : 1);
}

/* Forward: meta nfproto ipvX oifname . ip[6] saddr @blocked_zoneX counter drop
 * (from the address into the zone) and iifname . ip[6] daddr @blocked_zoneX
 * counter drop (from the zone to the address). */
static int blocked_zone_rules(struct lower *l, const char *chain)
{
	static const char *const sets[2] = { POLICY_SET_BLOCKED_ZONE4, POLICY_SET_BLOCKED_ZONE6 };
	static const enum ir_field scope[2] = { IR_META_OIFNAME, IR_META_IIFNAME };
	return block_list_rules(l, chain, sets, scope, 2);
}

/* ct state vmap { invalid : goto ct_invalid, established : accept, related : accept } */
static int ct_state_rule(struct lower *l, const char *chain)
{
	static const enum ir_field ct_state = IR_CT_STATE;
	size_t idx = ir_build_set(l->t, "__map%d", &ct_state, 1, IR_SET_ANONYMOUS | IR_SET_CONSTANT,
				  IR_DATA_VERDICT);
	if (idx == (size_t)-1)
		return -1;
	struct ir_set *s = &l->t->sets[idx];
	static const struct {
		uint32_t bit;
		enum ir_verdict_kind v;
	} el[] = { { NF_CT_STATE_INVALID_BIT, IR_V_GOTO },
		   { NF_CT_STATE_BIT(IP_CT_ESTABLISHED), IR_V_ACCEPT },
		   { NF_CT_STATE_BIT(IP_CT_RELATED), IR_V_ACCEPT } };
	for (size_t i = 0; i < 3; i++) {
		struct ir_set_elem *e = ir_set_elem_add(s);
		if (!e)
			return -1;
		e->key[0] = ir_value_u32(el[i].bit);
		e->verdict.kind = el[i].v;
		if (el[i].v == IR_V_GOTO)
			snprintf(e->verdict.chain, sizeof(e->verdict.chain),
				 POLICY_CHAIN_CT_INVALID);
	}
	struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_CT);
	return r && ir_build_vmap(r, &ct_state, 1, idx) ? 0 : -1;
}

/* Loopback and ICMPv6 neighbour discovery, accepted and counted before the
 * policy's rules in `chain`: iifname "lo" on input, oifname "lo" on output.
 * ND is untracked by conntrack (nf_conntrack_proto_icmpv6.c), so the ct
 * lookup does not let it through. */
static int local_glue(struct lower *l, const char *chain, enum ir_field ifname)
{
	struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_LOOPBACK);
	if (!r || !ir_build_cmp(r, ifname, ir_value_ifname("lo"), IR_OP_EQ) || add_counter(r))
		return -1;
	set_verdict(r, IR_V_ACCEPT, NULL);
	r = ir_build_rule(l->t, chain, POLICY_COMMENT_ND);
	if (!r || !ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(IPPROTO_ICMPV6), IR_OP_EQ))
		return -1;
	struct ir_set s;
	tmp_set_init(&s, IR_ICMPV6_TYPE);
	for (size_t i = 0; i < sizeof(nd_types); i++) {
		struct ir_value v = ir_value_u8(nd_types[i]);
		if (tmp_set_add(&s, &v, NULL)) {
			free(s.elems);
			return -1;
		}
	}
	if (add_list_match(l->t, r, &s) || add_counter(r))
		return -1;
	set_verdict(r, IR_V_ACCEPT, NULL);
	return 0;
}

/* DHCPv6 client port (RFC 8415 section 7.2). */
#define DHCPV6_CLIENT_PORT 546

/* Replies to the appliance's own DHCPv6 client (the image asks on eth0 and
 * eth1): its Solicit goes to the multicast ff02::1:2 and the answer comes
 * from the server's (or relay's) own address to the client's link-local
 * address (RFC 8415 section 18.3), a pair conntrack cannot match with the
 * request, so the ct lookup does not let it through. Only link-local
 * destinations: nothing routed reaches it. DHCPv4 needs no such rule: its
 * clients take the first answers on packet sockets, before the firewall,
 * and renew by unicast, which conntrack tracks. */
static int dhcpv6_client_glue(struct lower *l, const char *chain)
{
	static const uint8_t link_local[16] = { 0xfe, 0x80 };
	struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_DHCPV6);
	struct ir_match *m;

	/* The destination port only: nft merges a sport and a dport match
	 * into one 4-byte compare, which the netlink backend would not
	 * (tests/net/backend_agree.sh compares them); only the client listens
	 * on port 546 of a link-local address anyway. */
	if (!r || !ir_build_cmp(r, IR_META_NFPROTO, ir_value_u8(NFPROTO_IPV6), IR_OP_EQ) ||
	    !(m = ir_match_add(r)))
		return -1;
	m->kind = IR_M_PREFIX;
	m->field[0] = IR_IP6_DADDR;
	m->value = ir_value_addr(link_local, AF_INET6);
	m->prefix_len = 10;
	if (!ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(IPPROTO_UDP), IR_OP_EQ) ||
	    !ir_build_cmp(r, IR_TH_DPORT, ir_value_u16_net(DHCPV6_CLIENT_PORT), IR_OP_EQ) ||
	    add_counter(r))
		return -1;
	set_verdict(r, IR_V_ACCEPT, NULL);
	return 0;
}

static int make_glue(struct lower *l)
{
	if (!ir_build_base_chain(l->t, POLICY_CHAIN_INPUT, IR_HOOK_INPUT, IR_CHAIN_FILTER,
				 POLICY_PRI_FILTER, IR_V_DROP) ||
	    !ir_build_base_chain(l->t, POLICY_CHAIN_FORWARD, IR_HOOK_FORWARD, IR_CHAIN_FILTER,
				 POLICY_PRI_FILTER, IR_V_DROP) ||
	    !ir_build_base_chain(l->t, POLICY_CHAIN_OUTPUT, IR_HOOK_OUTPUT, IR_CHAIN_FILTER,
				 POLICY_PRI_FILTER, IR_V_ACCEPT))
		return -1;
	struct ir_chain *inv = ir_chain_add(l->t, POLICY_CHAIN_CT_INVALID);
	if (!inv)
		return -1;
	if (l->inspecting && (make_inspect_chain(l) || make_inspect_done_chains(l)))
		return -1;
	if (make_blocked_sets(l) || blocked_rules(l, POLICY_CHAIN_FORWARD, true) ||
	    blocked_zone_rules(l, POLICY_CHAIN_FORWARD) || inspect_jump(l, POLICY_CHAIN_FORWARD) ||
	    ct_state_rule(l, POLICY_CHAIN_FORWARD) || blocked_rules(l, POLICY_CHAIN_INPUT, false) ||
	    inspect_jump(l, POLICY_CHAIN_INPUT) || ct_state_rule(l, POLICY_CHAIN_INPUT) ||
	    local_glue(l, POLICY_CHAIN_INPUT, IR_META_IIFNAME) ||
	    dhcpv6_client_glue(l, POLICY_CHAIN_INPUT))
		return -1;
	struct ir_rule *r = ir_build_rule(l->t, POLICY_CHAIN_CT_INVALID, POLICY_COMMENT_CT_INVALID);
	if (!r || add_counter(r))
		return -1;
	set_verdict(r, IR_V_DROP, NULL);
	return 0;
}

/* ---- zones ---- */

/* Chain-name labels: the zone name with characters nft identifiers do not
 * allow replaced by '_', shortened, and made unique; POLICY_UNZONED and
 * "self" are reserved. */
static int make_labels(struct lower *l)
{
	size_t z = l->p->n_zones;
	l->label = calloc(z + 2, sizeof(*l->label));
	if (!l->label)
		return -1;
	snprintf(l->label[l->unzoned], sizeof(l->label[0]), POLICY_UNZONED);
	snprintf(l->label[l->self], sizeof(l->label[0]), "self");
	for (size_t i = 0; i < z; i++) {
		char *lab = l->label[i];
		snprintf(lab, LOWER_LABEL_MAX + 1, "%s", l->p->zones[i].name);
		for (char *c = lab; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
				*c = '_';
		bool taken = false;
		for (size_t j = 0; j < i && !taken; j++)
			taken = !strcmp(l->label[j], lab);
		taken = taken || !strcmp(lab, POLICY_UNZONED) || !strcmp(lab, "self");
		if (taken) {
			/* shorten to leave room for "_<index>" */
			char suffix[24];
			int n = snprintf(suffix, sizeof(suffix), "_%zu", i);
			lab[LOWER_LABEL_MAX - n] = '\0';
			strcat(lab, suffix);
		}
	}
	return 0;
}

static bool pattern_is_wild(const char *p)
{
	size_t n = strlen(p);
	return n && p[n - 1] == '*';
}

/* Two interface patterns overlap if one is a wildcard whose stem is a prefix
 * of the other's stem, or both are the same name. */
static bool patterns_overlap(const char *a, const char *b)
{
	size_t na = strlen(a) - pattern_is_wild(a), nb = strlen(b) - pattern_is_wild(b);
	if (pattern_is_wild(a) && nb >= na && !strncmp(a, b, na))
		return true;
	if (pattern_is_wild(b) && na >= nb && !strncmp(a, b, nb))
		return true;
	return !pattern_is_wild(a) && !pattern_is_wild(b) && !strcmp(a, b);
}

static int check_zone_overlaps(struct lower *l)
{
	int rc = 0;
	const struct policy *p = l->p;
	for (size_t i = 0; i < p->n_zones; i++)
		for (size_t j = i + 1; j < p->n_zones; j++)
			for (size_t a = 0; a < p->zones[i].n_ifnames; a++)
				for (size_t b = 0; b < p->zones[j].n_ifnames; b++) {
					const char *x = p->zones[i].ifnames[a];
					const char *y = p->zones[j].ifnames[b];
					if (!patterns_overlap(x, y))
						continue;
					rc = policy_error(
					    l->d, &p->zones[j].loc,
					    "interface \"%s\" of zone %s overlaps \"%s\" of zone %s: an interface can be in one zone only",
					    y, p->zones[j].name, x, p->zones[i].name);
					policy_note(l->d, &p->zones[i].loc,
						    "zone %s is defined here", p->zones[i].name);
				}
	return rc;
}

/* Is pattern k of zone z covered by another pattern of the same zone (then
 * it would overlap its sibling in the interval map)? */
static bool pattern_redundant(const struct policy_zone *z, size_t k)
{
	for (size_t i = 0; i < z->n_ifnames; i++) {
		if (i == k || !patterns_overlap(z->ifnames[i], z->ifnames[k]))
			continue;
		size_t ni = strlen(z->ifnames[i]), nk = strlen(z->ifnames[k]);
		/* the shorter wildcard covers; equal ones: keep the first */
		if (pattern_is_wild(z->ifnames[i]) &&
		    (ni < nk || (ni == nk && i < k) || !pattern_is_wild(z->ifnames[k])))
			return true;
		if (!pattern_is_wild(z->ifnames[i]) && !pattern_is_wild(z->ifnames[k]) && i < k)
			return true;
	}
	return false;
}

/* A map from interface name to a verdict (jump/goto chain); elements are
 * added with map_add_zone(). Returns the set index or -1. */
static size_t new_ifname_map(struct lower *l, const char *name, enum ir_field f)
{
	return ir_build_set(l->t, name, &f, 1, 0, IR_DATA_VERDICT);
}

static int map_add_zone(struct lower *l, size_t map, size_t zone, const char *chain)
{
	const struct policy_zone *z = &l->p->zones[zone];
	for (size_t k = 0; k < z->n_ifnames; k++) {
		if (pattern_redundant(z, k))
			continue;
		struct ir_set *s = &l->t->sets[map];
		struct ir_set_elem *e = ir_set_elem_add(s);
		if (!e)
			return -1;
		struct ir_value lo, hi;
		ir_ifname_wildcard(z->ifnames[k], &lo, &hi);
		e->key[0] = lo;
		if (pattern_is_wild(z->ifnames[k])) {
			e->key_end[0] = hi;
			s->flags |= IR_SET_INTERVAL;
		}
		e->verdict.kind = IR_V_GOTO;
		snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s", chain);
	}
	return 0;
}

/* The dispatch of chain `chain`: `FIELD vmap @map` if the map got elements
 * (else the empty map is dropped), then `goto fallback`. */
static int dispatch_rules(struct lower *l, const char *chain, enum ir_field f, size_t map,
			  const char *fallback)
{
	if (map != (size_t)-1 && l->t->sets[map].n_elems) {
		/* sorted: the same zones give the same map whatever their order */
		if (ir_set_normalize(&l->t->sets[map]))
			return -1;
		struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_DISPATCH);
		if (!r || !ir_build_vmap(r, &f, 1, map))
			return -1;
	}
	struct ir_rule *r = ir_build_rule(l->t, chain, POLICY_COMMENT_DISPATCH);
	if (!r)
		return -1;
	set_verdict(r, IR_V_GOTO, fallback);
	return 0;
}

/* ---- which rules apply to which pair ---- */

static size_t slot_tenant(const struct lower *l, size_t slot)
{
	return slot < l->p->n_zones ? l->p->zones[slot].tenant : POLICY_NONE;
}

static int pair_push(struct pair *pr, size_t rule)
{
	if (POLICY_GROW(pr->rules, pr->cap, pr->n, 8))
		return -1;
	pr->rules[pr->n++] = rule;
	return 0;
}

static int assign_rules(struct lower *l)
{
	size_t S = l->n_slots;
	l->pairs = calloc(S * S, sizeof(*l->pairs));
	/* the slots each end can match, as lists: a rule naming one zone on
	 * each side costs one pair, not S * S checks */
	size_t *from = calloc(S, sizeof(*from)), *to = calloc(S, sizeof(*to));
	int rc = (!l->pairs || !from || !to) ? -1 : 0;
	for (size_t i = 0; !rc && i < l->p->n_rules; i++) {
		const struct policy_rule *r = &l->p->rules[i];
		size_t nf = 0, nt = 0;
		for (size_t s = 0; s < S; s++) {
			if (policy_ep_covers_slot(l->p, &r->from, r, s, l->self))
				from[nf++] = s;
			if (policy_ep_covers_slot(l->p, &r->to, r, s, l->self))
				to[nt++] = s;
		}
		/* the appliance's traffic to itself (loopback) is not filtered */
		for (size_t a = 0; !rc && a < nf; a++)
			for (size_t b = 0; !rc && b < nt; b++)
				if (!(from[a] == l->self && to[b] == l->self) &&
				    policy_rule_isolation_allows(l->p, r, from[a], to[b]))
					rc = pair_push(&l->pairs[from[a] * S + to[b]], i);
	}
	free(from);
	free(to);
	return rc;
}

/* The default of a forward pair (policy_default_find()), else the global
 * default; between two tenants, else block. Returns the index or
 * POLICY_NONE. */
static size_t pair_default(const struct lower *l, size_t a, size_t b, enum policy_action *action)
{
	const struct policy *p = l->p;
	size_t ta = slot_tenant(l, a), tb = slot_tenant(l, b);
	bool cross = ta != POLICY_NONE && tb != POLICY_NONE && ta != tb;
	size_t best =
	    a != l->self && b != l->self ? policy_default_find(p, a, b, ta, tb) : POLICY_NONE;
	if (best != POLICY_NONE)
		*action = p->defaults[best].action;
	else if (a == l->self)
		*action = POLICY_PASS; /* the appliance's own traffic: output policy accept */
	else
		*action = cross ? POLICY_BLOCK : p->default_action;
	return best;
}

static bool pairs_same(const struct lower *l, size_t x, size_t y)
{
	const struct pair *p = &l->pairs[x], *q = &l->pairs[y];
	size_t S = l->n_slots;
	enum policy_action ax, ay;
	if (pair_default(l, x / S, x % S, &ax) != pair_default(l, y / S, y % S, &ay) || ax != ay)
		return false;
	return p->n == q->n && (!p->n || !memcmp(p->rules, q->rules, p->n * sizeof(*p->rules)));
}

/* ---- copying templates into the table ---- */

static size_t clone_set(struct ir_table *dst, const struct ir_set *src)
{
	size_t idx = ir_set_add(dst, src->name);
	if (idx == (size_t)-1)
		return idx;
	struct ir_set *s = &dst->sets[idx];
	*s = *src;
	s->elems = malloc((src->n_elems ? src->n_elems : 1) * sizeof(*s->elems));
	if (!s->elems) {
		dst->n_sets--;
		return (size_t)-1;
	}
	if (src->n_elems)
		memcpy(s->elems, src->elems, src->n_elems * sizeof(*s->elems));
	s->cap_elems = src->n_elems;
	return idx;
}

/* A rule that applies to many zone pairs is copied into each pair chain.
 * Its small sets are copied with it (the optimizer may still rewrite or
 * inline them per rule); a set of at least this many elements is cloned once
 * and shared as a named set by all the copies, which is what the optimizer's
 * set sharing would make of the copies anyway, without building them first
 * (a 100,000-address list in five chains was most of the compile time). */
#define LOWER_SHARE_MIN_ELEMS 64

/* Moves a template set into dst: its elements change owner, the template
 * keeps none. */
static size_t move_set(struct ir_table *dst, struct ir_set *src)
{
	size_t idx = ir_set_add(dst, src->name);
	if (idx == (size_t)-1)
		return idx;
	dst->sets[idx] = *src;
	src->elems = NULL;
	src->n_elems = src->cap_elems = 0;
	return idx;
}

static size_t clone_or_share_set(struct lower *l, size_t src_idx)
{
	struct ir_set *src = &l->scratch->sets[src_idx];
	size_t idx = l->set_clone ? l->set_clone[src_idx] : (size_t)-1;
	if (idx == (size_t)-1) {
		if (src->n_elems < LOWER_SHARE_MIN_ELEMS || src->n_key != 1 ||
		    src->data != IR_DATA_NONE)
			return clone_set(l->t, src);
		if (!l->set_clone) {
			size_t n = l->scratch->n_sets ? l->scratch->n_sets : 1;
			l->set_clone = malloc(n * sizeof(size_t));
			if (!l->set_clone)
				return (size_t)-1;
			memset(l->set_clone, 0xff, n * sizeof(size_t));
		}
		/* the first copy takes the elements; every later one shares them
		 * through set_clone, so the template is not read again */
		return l->set_clone[src_idx] = move_set(l->t, src);
	}
	struct ir_set *s = &l->t->sets[idx];
	if (s->flags & IR_SET_ANONYMOUS) {
		/* second user: an anonymous set belongs to one rule, so name it */
		s->flags &= ~(IR_SET_ANONYMOUS | IR_SET_CONSTANT);
		snprintf(s->name, sizeof(s->name), "shared_%zu", src_idx);
	}
	return idx;
}

static int copy_rule(struct lower *l, struct ir_chain *c, const struct ir_rule *from)
{
	struct ir_table *dst = l->t;
	const struct ir_table *src = l->scratch;
	struct ir_rule *r = ir_rule_add(c);
	if (!r)
		return -1;
	*r = *from;
	r->matches = NULL;
	r->stmts = NULL;
	r->n_matches = r->n_stmts = 0;
	for (size_t i = 0; i < from->n_matches; i++) {
		struct ir_match *m = ir_match_add(r);
		if (!m)
			return -1;
		*m = from->matches[i];
		if (m->kind == IR_M_LOOKUP &&
		    (m->set = clone_or_share_set(l, m->set)) == (size_t)-1)
			return -1;
	}
	for (size_t i = 0; i < from->n_stmts; i++) {
		struct ir_stmt *s = ir_stmt_add(r);
		if (!s)
			return -1;
		*s = from->stmts[i];
		if ((s->kind == IR_S_VMAP || s->kind == IR_S_SET_FROM_MAP) &&
		    (s->set = clone_set(dst, &src->sets[s->set])) == (size_t)-1)
			return -1;
	}
	return 0;
}

static int default_rules(struct lower *l, struct ir_chain *c, size_t a, size_t b)
{
	enum policy_action action;
	size_t di = pair_default(l, a, b, &action);
	const struct policy_default *d = di == POLICY_NONE ? NULL : &l->p->defaults[di];
	char comment[128];
	if (d && d->loc.file)
		snprintf(comment, sizeof(comment), "default:%s:%u", d->loc.file, d->loc.line);
	else
		snprintf(comment, sizeof(comment), POLICY_COMMENT_DEFAULT_BUILTIN);
	int n = action == POLICY_REJECT ? 2 : 1;
	for (int i = 0; i < n; i++) {
		struct ir_rule *r = ir_build_chain_rule(c, comment, d ? &d->loc : NULL);
		if (!r)
			return -1;
		if (action == POLICY_REJECT && i == 0 &&
		    !ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(IPPROTO_TCP), IR_OP_EQ))
			return -1;
		if (add_counter(r) || (d && d->log && add_log(r, comment, l->o->nflog_group)))
			return -1;
		if (action == POLICY_REJECT) {
			if (reject_stmt(r, i == 0 ? IR_REJECT_TCP_RESET
						  : IR_REJECT_ICMPX_PORT_UNREACH))
				return -1;
		} else {
			set_verdict(r, action == POLICY_PASS ? IR_V_ACCEPT : IR_V_DROP, NULL);
		}
	}
	return 0;
}

/* FNV-1a over a pair's rule list and default: equal pairs hash equal. */
static uint64_t pair_hash(const struct lower *l, size_t x)
{
	const struct pair *pr = &l->pairs[x];
	enum policy_action action;
	size_t def = pair_default(l, x / l->n_slots, x % l->n_slots, &action);
	const size_t words[2] = { def, (size_t)action };
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, pr->rules, pr->n * sizeof(*pr->rules));
	return policy_fnv64(h, words, sizeof(words));
}

/* The chain of pair (a, b): an existing chain with exactly the same rules and
 * default if there is one (say lan_to_self and lan_to_unzoned), else a new
 * one with the pair's templates and default. */
static int make_pair_chain(struct lower *l, size_t a, size_t b)
{
	size_t x = a * l->n_slots + b;
	struct pair *pr = &l->pairs[x];
	uint64_t h = pair_hash(l, x);
	for (size_t i = 0; i < l->n_made; i++)
		if (l->made_hash[i] == h && pairs_same(l, l->made[i], x)) {
			memcpy(pr->chain, l->pairs[l->made[i]].chain, sizeof(pr->chain));
			return 0;
		}
	size_t *m = realloc(l->made, (l->n_made + 1) * sizeof(*m));
	if (m)
		l->made = m;
	uint64_t *mh = m ? realloc(l->made_hash, (l->n_made + 1) * sizeof(*mh)) : NULL;
	if (!mh)
		return -1;
	l->made_hash = mh;
	l->made[l->n_made] = x;
	l->made_hash[l->n_made++] = h;
	snprintf(pr->chain, sizeof(pr->chain), "%s_to_%s", l->label[a], l->label[b]);
	struct ir_chain *c = ir_chain_add(l->t, pr->chain);
	if (!c)
		return -1;
	for (size_t i = 0; i < pr->n; i++) {
		const struct ir_chain *tmpl = &l->scratch->chains[pr->rules[i]];
		/* copying adds sets, never chains: c stays valid */
		for (size_t j = 0; j < tmpl->n_rules; j++)
			if (copy_rule(l, c, &tmpl->rules[j]))
				return -1;
	}
	return default_rules(l, c, a, b);
}

/* from_A: oifname vmap @to_from_A -> A_to_B, else goto A_to_unzoned. Pairs
 * that would hold the same as A_to_unzoned get no chain and no element. */
static int make_from_chain(struct lower *l, size_t a, char *from_name, size_t n)
{
	size_t S = l->n_slots, U = l->unzoned;
	snprintf(from_name, n, "from_%s", l->label[a]);
	if (!ir_chain_add(l->t, from_name) || make_pair_chain(l, a, U))
		return -1;
	char map_name[IR_NAME_MAX];
	snprintf(map_name, sizeof(map_name), "to_from_%s", l->label[a]);
	size_t map = new_ifname_map(l, map_name, IR_META_OIFNAME);
	if (map == (size_t)-1)
		return -1;
	for (size_t b = 0; b < l->p->n_zones; b++) {
		if (pairs_same(l, a * S + b, a * S + U))
			continue;
		if (make_pair_chain(l, a, b) || map_add_zone(l, map, b, l->pairs[a * S + b].chain))
			return -1;
	}
	return dispatch_rules(l, from_name, IR_META_OIFNAME, map, l->pairs[a * S + U].chain);
}

static bool from_same_as_unzoned(const struct lower *l, size_t a)
{
	size_t S = l->n_slots;
	for (size_t b = 0; b < S; b++)
		if (b != l->self && !pairs_same(l, a * S + b, l->unzoned * S + b))
			return false;
	return true;
}

static int make_forward(struct lower *l)
{
	char name[IR_NAME_MAX], unzoned_from[IR_NAME_MAX];
	if (make_from_chain(l, l->unzoned, unzoned_from, sizeof(unzoned_from)))
		return -1;
	size_t map = new_ifname_map(l, POLICY_MAP_ZONE_FROM, IR_META_IIFNAME);
	if (map == (size_t)-1)
		return -1;
	for (size_t a = 0; a < l->p->n_zones; a++) {
		if (from_same_as_unzoned(l, a))
			continue;
		if (make_from_chain(l, a, name, sizeof(name)) || map_add_zone(l, map, a, name))
			return -1;
	}
	return dispatch_rules(l, POLICY_CHAIN_FORWARD, IR_META_IIFNAME, map, unzoned_from);
}

/* input: iifname vmap @self_from -> A_to_self; output: oifname vmap @self_to
 * -> self_to_B (only when the policy has `from self` rules). */
static int make_self(struct lower *l, bool out)
{
	size_t S = l->n_slots, U = l->unzoned, SELF = l->self;
	size_t fallback = out ? SELF * S + U : U * S + SELF;
	if (out) {
		bool any = false;
		for (size_t b = 0; b < S; b++)
			any = any || l->pairs[SELF * S + b].n;
		if (!any)
			return 0;
	}
	/* stateful like input and forward: a `block from self` rule must not
	 * cut the replies of connections the policy let in */
	if (out && (inspect_jump(l, POLICY_CHAIN_OUTPUT) || ct_state_rule(l, POLICY_CHAIN_OUTPUT) ||
		    local_glue(l, POLICY_CHAIN_OUTPUT, IR_META_OIFNAME)))
		return -1;
	if (out ? make_pair_chain(l, SELF, U) : make_pair_chain(l, U, SELF))
		return -1;
	size_t map = new_ifname_map(l, out ? POLICY_MAP_SELF_TO : POLICY_MAP_SELF_FROM,
				    out ? IR_META_OIFNAME : IR_META_IIFNAME);
	if (map == (size_t)-1)
		return -1;
	for (size_t z = 0; z < l->p->n_zones; z++) {
		size_t pi = out ? SELF * S + z : z * S + SELF;
		if (pairs_same(l, pi, fallback))
			continue;
		if ((out ? make_pair_chain(l, SELF, z) : make_pair_chain(l, z, SELF)) ||
		    map_add_zone(l, map, z, l->pairs[pi].chain))
			return -1;
	}
	return dispatch_rules(l, out ? POLICY_CHAIN_OUTPUT : POLICY_CHAIN_INPUT,
			      out ? IR_META_OIFNAME : IR_META_IIFNAME, map,
			      l->pairs[fallback].chain);
}

/* ---- rules, state, nat ---- */

static int make_templates(struct lower *l)
{
	for (size_t i = 0; i < l->p->n_rules; i++) {
		char name[32];
		snprintf(name, sizeof(name), "r%zu", i);
		struct ir_chain *c = ir_chain_add(l->scratch, name);
		if (!c || for_each_variant(l, &l->p->rules[i], false, c, lower_variant))
			return -1;
	}
	return 0;
}

/* Numbers the rules with an inspect block. The queues of block 0 and one
 * block per inspect rule must exist: NFQUEUE numbers are 16 bits. */
static int number_inspect_rules(struct lower *l)
{
	unsigned rules = 0;
	const struct policy_rule *last = NULL;
	l->inspect_no = calloc(l->p->n_rules ? l->p->n_rules : 1, sizeof(*l->inspect_no));
	if (!l->inspect_no)
		return -1;
	for (size_t i = 0; i < l->p->n_rules; i++) {
		if (!l->p->rules[i].n_inspect)
			continue;
		l->inspect_no[i] = ++rules;
		last = &l->p->rules[i];
		l->inspecting = l->inspecting || inspected(l, last);
	}
	if (!l->inspecting)
		return 0;
	unsigned long top = (unsigned long)l->o->queue_num + (rules + 1ul) * queue_workers(l) - 1;
	if (top > 65535 || rules >= 1u << POLICY_CT_LABEL_RULE_BITS)
		return policy_error(
		    l->d, &last->loc,
		    "%u inspect rules with %u workers need queues %d to %lu; the last queue number is 65535",
		    rules, queue_workers(l), l->o->queue_num, top);
	return 0;
}

static int warn_inspect(struct lower *l)
{
	for (size_t i = 0; i < l->p->n_rules; i++) {
		const struct policy_rule *r = &l->p->rules[i];
		if (r->n_inspect && l->o->queue_num < 0)
			policy_diag_add(
			    l->d, POLICY_WARNING, &r->loc,
			    "inspection is off (no queue configured): the rule passes its traffic uninspected");
		else if (r->n_inspect && r->stateless)
			policy_diag_add(
			    l->d, POLICY_WARNING, &r->loc,
			    "inspection follows connections, and `no state` has none: the rule passes its traffic uninspected");
	}
	return 0;
}

static int make_notrack(struct lower *l)
{
	for (size_t i = 0; i < l->p->n_rules; i++) {
		const struct policy_rule *r = &l->p->rules[i];
		if (!r->stateless || r->action != POLICY_PASS)
			continue;
		bool out = r->from.kind == POLICY_EP_SELF;
		const char *name = out ? POLICY_CHAIN_RAW_OUTPUT : POLICY_CHAIN_RAW_PREROUTING;
		struct ir_chain *c = ir_chain_find(l->t, name);
		if (!c)
			c = ir_build_base_chain(l->t, name,
						out ? IR_HOOK_OUTPUT : IR_HOOK_PREROUTING,
						IR_CHAIN_FILTER, POLICY_PRI_RAW, IR_V_ACCEPT);
		if (!c || for_each_variant(l, r, true, c, lower_notrack))
			return -1;
	}
	return 0;
}

/* The nat chains exist whenever the policy has NAT; the NAT pass (nat/,
 * later phase) fills them. Priorities as iptables' nat table. */
static int make_nat(struct lower *l)
{
	if (!l->p->n_nats)
		return 0;
	if (!ir_build_base_chain(l->t, POLICY_CHAIN_NAT_PREROUTING, IR_HOOK_PREROUTING,
				 IR_CHAIN_NAT, POLICY_PRI_NAT_DST, IR_V_ACCEPT) ||
	    !ir_build_base_chain(l->t, POLICY_CHAIN_NAT_POSTROUTING, IR_HOOK_POSTROUTING,
				 IR_CHAIN_NAT, POLICY_PRI_NAT_SRC, IR_V_ACCEPT))
		return -1;
	if (!l->o->nat_lower)
		return policy_error(
		    l->d, &l->p->nats[0].loc,
		    "NAT statements need the NAT library (policy_lower_opts.nat_lower)");
	return l->o->nat_lower(l->p, l->t, l->d);
}

void policy_lower_opts_default(struct policy_lower_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nflog_group = -1;
	o->queue_num = -1;
	o->queue_count = 1;
	o->optimize = true;
}

static void lower_free(struct lower *l)
{
	if (l->pairs)
		for (size_t i = 0; i < l->n_slots * l->n_slots; i++)
			free(l->pairs[i].rules);
	free(l->pairs);
	free(l->made);
	free(l->made_hash);
	free(l->set_clone);
	free(l->inspect_no);
	free(l->label);
	ir_table_free(l->scratch);
}

/* A lowering of p with o (NULL: the defaults, kept in *defaults). */
static struct lower lower_start(const struct policy *p, const struct policy_lower_opts *o,
				struct policy_lower_opts *defaults, struct policy_diags *d)
{
	if (!o) {
		policy_lower_opts_default(defaults);
		o = defaults;
	}
	struct lower l = { .p = p, .o = o, .d = d };
	l.unzoned = p->n_zones;
	l.self = p->n_zones + 1;
	l.n_slots = p->n_zones + 2;
	return l;
}

int policy_lower_check(const struct policy *p, const struct policy_lower_opts *o,
		       struct policy_diags *d)
{
	struct policy_lower_opts defaults;
	struct lower l = lower_start(p, o, &defaults, d);
	int rc = check_zone_overlaps(&l);
	if (!rc)
		rc = number_inspect_rules(&l);
	if (!rc)
		rc = warn_inspect(&l);
	if (rc && !d->n_errors)
		oom(&l);
	lower_free(&l);
	return rc ? -1 : 0;
}

struct ir_table *policy_lower(const struct policy *p, const struct policy_lower_opts *o,
			      struct policy_diags *d)
{
	struct policy_lower_opts defaults;
	struct lower l = lower_start(p, o, &defaults, d);
	if (check_zone_overlaps(&l))
		return NULL;
	l.t = ir_table_new(IR_TABLE_NAME);
	l.scratch = ir_table_new("scratch");
	int rc = (!l.t || !l.scratch || make_labels(&l)) ? -1 : 0;
	if (!rc)
		rc = number_inspect_rules(&l);
	if (!rc)
		rc = make_glue(&l);
	if (!rc)
		rc = make_templates(&l);
	if (!rc)
		rc = warn_inspect(&l);
	if (!rc)
		rc = assign_rules(&l);
	if (!rc)
		rc = make_forward(&l);
	if (!rc)
		rc = make_self(&l, false);
	if (!rc)
		rc = make_self(&l, true);
	if (!rc)
		rc = make_notrack(&l);
	if (!rc)
		rc = make_nat(&l);
	if (!rc)
		rc = policy_lower_tenants(p, l.t, d);
	if (rc && !d->n_errors)
		oom(&l);
	if (!rc)
		rc = ir_table_drop_unused_sets(l.t);
	if (!rc && l.o->optimize)
		rc = policy_optimize(l.t, NULL, d);
	lower_free(&l);
	if (rc) {
		ir_table_free(l.t);
		return NULL;
	}
	return l.t;
}
