/* The tenant lowering pass (policy/tenant.h, docs/nat-and-tenants.md). */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ir_build.h"
#include "policy/lower.h"
#include "policy/tenant.h"

/* IPv6 sources a segment always accepts: link-local fe80::/10 (RFC 4291
 * section 2.5.6; neighbour discovery, RFC 4861) and the unspecified address
 * :: of duplicate address detection (RFC 4862 section 5.4). Neither is ever
 * forwarded, so they cannot be used to reach another segment. */
static const uint8_t v6_link_local[16] = { 0xfe, 0x80 };
#define V6_LINK_LOCAL_LEN 10

struct tenant_pass {
	const struct policy *p;
	struct ir_table *t;
	struct policy_diags *d;
	size_t zone_map, seg_map, ifaces, pairs;
};

static bool is_wild(const char *ifname)
{
	size_t n = strlen(ifname);
	return n && ifname[n - 1] == '*';
}

static int oom(struct tenant_pass *tp)
{
	return policy_error(tp->d, NULL, "out of memory while lowering tenants");
}

void policy_tenant_segment_chain(size_t zone, char name[IR_NAME_MAX])
{
	snprintf(name, IR_NAME_MAX, "seg_%zu", zone);
}

/* ---- small builders ---- */

static size_t new_set(struct tenant_pass *tp, const char *name, const enum ir_field *key,
		      size_t n_key, uint32_t flags)
{
	return ir_build_set(tp->t, name, key, n_key, flags | IR_SET_CONSTANT, IR_DATA_NONE);
}

/* An element for interface `ifname` at key position `k`; a wildcard becomes
 * an interval (which makes the set an interval set). */
static void elem_ifname(struct ir_set *s, struct ir_set_elem *e, size_t k, const char *ifname)
{
	if (!is_wild(ifname)) {
		e->key[k] = ir_value_ifname(ifname);
		e->key_end[k] = e->key[k];
		return;
	}
	ir_ifname_wildcard(ifname, &e->key[k], &e->key_end[k]);
	s->flags |= IR_SET_INTERVAL;
}

/* Exact elements of a non-interval set carry no key_end. */
static void strip_exact_ends(struct ir_set *s)
{
	if (s->flags & IR_SET_INTERVAL)
		return;
	for (size_t i = 0; i < s->n_elems; i++)
		for (size_t k = 0; k < s->n_key; k++)
			s->elems[i].key_end[k].len = 0;
}

static bool is_segment(const struct policy_zone *z)
{
	return z->tenant != POLICY_NONE;
}

/* ---- chains ---- */

static int make_chains(struct tenant_pass *tp)
{
	static const struct {
		const char *name;
		enum ir_hook hook;
		int prio;
		const char *comment;
	} base[] = {
		{ POLICY_CHAIN_TENANT_RAW, IR_HOOK_PREROUTING, POLICY_TENANT_PRI_RAW,
		  "tenant conntrack zones" },
		{ POLICY_CHAIN_TENANT_IN, IR_HOOK_PREROUTING, POLICY_TENANT_PRI_IN,
		  "tenant anti-spoofing and routing marks" },
		{ POLICY_CHAIN_TENANT_FORWARD, IR_HOOK_FORWARD, POLICY_TENANT_PRI_FORWARD,
		  "inter-tenant isolation" },
		{ POLICY_CHAIN_TENANT_OUT, IR_HOOK_OUTPUT, POLICY_TENANT_PRI_OUT,
		  "routing marks of the appliance's own packets" },
	};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct ir_chain *c = ir_chain_add(tp->t, base[i].name);
		if (!c)
			return -1;
		c->hook = base[i].hook;
		/* a route chain reroutes when it changes the mark */
		c->type = base[i].hook == IR_HOOK_OUTPUT ? IR_CHAIN_ROUTE : IR_CHAIN_FILTER;
		c->priority = base[i].prio;
		c->policy = IR_V_ACCEPT;
		snprintf(c->comment, sizeof(c->comment), "%s", base[i].comment);
	}
	return 0;
}

/* ---- maps and sets ---- */

static int make_maps(struct tenant_pass *tp)
{
	enum ir_field iif = IR_META_IIFNAME, pair[2] = { IR_META_IIFNAME, IR_META_OIFNAME };
	tp->zone_map = new_set(tp, POLICY_MAP_TENANT_ZONE, &iif, 1, 0);
	tp->seg_map = new_set(tp, POLICY_MAP_TENANT_SEGMENT, &iif, 1, 0);
	tp->ifaces = new_set(tp, POLICY_SET_TENANT_IFACES, &iif, 1, 0);
	tp->pairs = new_set(tp, POLICY_SET_TENANT_PAIRS, pair, 2, 0);
	if (tp->zone_map == (size_t)-1 || tp->seg_map == (size_t)-1 || tp->ifaces == (size_t)-1 ||
	    tp->pairs == (size_t)-1)
		return -1;
	tp->t->sets[tp->zone_map].data = IR_DATA_VALUE;
	tp->t->sets[tp->zone_map].data_field = IR_CT_ZONE;
	snprintf(tp->t->sets[tp->zone_map].comment, 128, "ingress interface -> tenant ct zone");
	tp->t->sets[tp->seg_map].data = IR_DATA_VERDICT;
	snprintf(tp->t->sets[tp->seg_map].comment, 128, "ingress interface -> segment chain");
	for (size_t zi = 0; zi < tp->p->n_zones; zi++) {
		const struct policy_zone *z = &tp->p->zones[zi];
		if (!is_segment(z))
			continue;
		const struct policy_tenant *tn = &tp->p->tenants[z->tenant];
		char chain[IR_NAME_MAX];
		policy_tenant_segment_chain(zi, chain);
		for (size_t k = 0; k < z->n_ifnames; k++) {
			struct ir_set *s = &tp->t->sets[tp->zone_map];
			struct ir_set_elem *e = ir_set_elem_add(s);
			if (!e)
				return -1;
			elem_ifname(s, e, 0, z->ifnames[k]);
			e->data = (struct ir_value){ .len = 2 };
			uint16_t zone = tn->ct_zone;
			memcpy(e->data.data, &zone, 2);
			s = &tp->t->sets[tp->seg_map];
			if (!(e = ir_set_elem_add(s)))
				return -1;
			elem_ifname(s, e, 0, z->ifnames[k]);
			e->verdict.kind = IR_V_GOTO;
			snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s", chain);
			s = &tp->t->sets[tp->ifaces];
			if (!(e = ir_set_elem_add(s)))
				return -1;
			elem_ifname(s, e, 0, z->ifnames[k]);
		}
	}
	for (size_t i = 0; i < 3; i++)
		strip_exact_ends(&tp->t->sets[i == 0   ? tp->zone_map
					      : i == 1 ? tp->seg_map
						       : tp->ifaces]);
	return 0;
}

/* ct mark -> packet mark. An exact map, not an interval one: interval keys
 * of host-order fields would need a byte-order conversion in the rule. The
 * ct mark is the tenants' alone (the fast path keeps its state in ct
 * labels), so the key is exactly the tenant's mark. */
static size_t make_restore_map(struct tenant_pass *tp)
{
	enum ir_field key = IR_CT_MARK;
	size_t m = new_set(tp, POLICY_MAP_TENANT_RESTORE, &key, 1, 0);
	if (m == (size_t)-1)
		return m;
	struct ir_set *s = &tp->t->sets[m];
	s->data = IR_DATA_VALUE;
	s->data_field = IR_META_MARK;
	snprintf(s->comment, sizeof(s->comment), "ct mark -> tenant routing mark");
	for (size_t i = 0; i < tp->p->n_tenants; i++) {
		uint32_t mark = policy_tenant_mark(&tp->p->tenants[i]);
		struct ir_set_elem *e = ir_set_elem_add(s);
		if (!e)
			return (size_t)-1;
		e->key[0] = ir_value_u32(mark);
		e->data = ir_value_u32(mark);
	}
	return m;
}

/* ---- the allowed interface pairs: same tenant, or named by a grant ---- */

static int add_pair(struct tenant_pass *tp, const char *iif, const char *oif)
{
	struct ir_set *s = &tp->t->sets[tp->pairs];
	struct ir_set_elem *e = ir_set_elem_add(s);
	if (!e)
		return -1;
	elem_ifname(s, e, 0, iif);
	elem_ifname(s, e, 1, oif);
	return 0;
}

static int add_zone_pairs(struct tenant_pass *tp, const struct policy_zone *a,
			  const struct policy_zone *b)
{
	for (size_t i = 0; i < a->n_ifnames; i++)
		for (size_t j = 0; j < b->n_ifnames; j++)
			if (add_pair(tp, a->ifnames[i], b->ifnames[j]))
				return -1;
	return 0;
}

/* A pass rule that names a segment of tenant X in `from` and one of tenant
 * Y != X in `to` opens those zone pairs (only new connections are checked;
 * replies are established). */
static int add_grants(struct tenant_pass *tp)
{
	const struct policy *p = tp->p;
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct policy_rule *pr = &p->rules[r];
		if (pr->action != POLICY_PASS || pr->from.kind != POLICY_EP_MATCH ||
		    pr->to.kind != POLICY_EP_MATCH)
			continue;
		for (size_t i = 0; i < pr->from.n_zones; i++) {
			const struct policy_zone *a = &p->zones[pr->from.zones[i]];
			for (size_t j = 0; j < pr->to.n_zones; j++) {
				const struct policy_zone *b = &p->zones[pr->to.zones[j]];
				if (is_segment(a) && is_segment(b) && a->tenant != b->tenant &&
				    add_zone_pairs(tp, a, b))
					return -1;
			}
		}
	}
	return 0;
}

static int make_pairs(struct tenant_pass *tp)
{
	const struct policy *p = tp->p;
	snprintf(tp->t->sets[tp->pairs].comment, 128, "ingress . egress interfaces allowed");
	for (size_t a = 0; a < p->n_zones; a++)
		for (size_t b = 0; b < p->n_zones; b++)
			if (is_segment(&p->zones[a]) && p->zones[a].tenant == p->zones[b].tenant &&
			    add_zone_pairs(tp, &p->zones[a], &p->zones[b]))
				return -1;
	if (add_grants(tp))
		return -1;
	struct ir_set *s = &tp->t->sets[tp->pairs];
	strip_exact_ends(s);
	/* duplicates (a grant repeated) would make the kernel refuse the set */
	for (size_t i = 0; i < s->n_elems; i++)
		for (size_t j = i + 1; j < s->n_elems;) {
			if (!memcmp(&s->elems[i], &s->elems[j], sizeof(s->elems[i])))
				s->elems[j] = s->elems[--s->n_elems];
			else
				j++;
		}
	return 0;
}

/* ---- rules ---- */

/* raw: ct original zone set iifname map @tenant_zone */
static int raw_rules(struct tenant_pass *tp)
{
	struct ir_rule *r = ir_build_rule(tp->t, POLICY_CHAIN_TENANT_RAW, "builtin:tenant-zone");
	return r && ir_build_set_from_map(r, IR_CT_ORIGINAL_ZONE, IR_META_IIFNAME, tp->zone_map)
		   ? 0
		   : -1;
}

/* prerouting -150: segments go to their chain; everything else takes the
 * tenant mark of its connection (replies from the uplink, port forwards). */
static int in_rules(struct tenant_pass *tp)
{
	static const enum ir_field iifname = IR_META_IIFNAME;
	struct ir_rule *r = ir_build_rule(tp->t, POLICY_CHAIN_TENANT_IN, "builtin:tenant-segment");
	if (!r || !ir_build_vmap(r, &iifname, 1, tp->seg_map))
		return -1;
	size_t restore = make_restore_map(tp);
	if (restore == (size_t)-1)
		return -1;
	static const char *const chains[] = { POLICY_CHAIN_TENANT_IN, POLICY_CHAIN_TENANT_OUT };
	for (size_t i = 0; i < 2; i++) {
		r = ir_build_rule(tp->t, chains[i], "builtin:tenant-mark-restore");
		if (!r || !ir_build_set_from_map(r, IR_META_MARK, IR_CT_MARK, restore))
			return -1;
	}
	return 0;
}

/* The set of one segment's source addresses of one family. */
static size_t source_set(struct tenant_pass *tp, size_t zi, int family)
{
	const struct policy_zone *z = &tp->p->zones[zi];
	char name[IR_NAME_MAX];
	snprintf(name, sizeof(name), "seg_%zu_src%s", zi, family == AF_INET ? "4" : "6");
	enum ir_field key = family == AF_INET ? IR_IP_SADDR : IR_IP6_SADDR;
	size_t si = new_set(tp, name, &key, 1, IR_SET_INTERVAL);
	if (si == (size_t)-1)
		return si;
	struct ir_set *s = &tp->t->sets[si];
	snprintf(s->comment, sizeof(s->comment), "sources of segment %s", z->name);
	for (size_t i = 0; i < z->addrs.n; i++) {
		const struct policy_addr *a = &z->addrs.v[i];
		if (a->family != family)
			continue;
		struct ir_set_elem *e = ir_set_elem_add(s);
		if (!e)
			return (size_t)-1;
		ir_build_addr_range(a, &e->key[0], &e->key_end[0]);
	}
	if (family == AF_INET6) {
		struct ir_set_elem *e = ir_set_elem_add(s);
		struct ir_set_elem *u = e ? ir_set_elem_add(s) : NULL;
		if (!u)
			return (size_t)-1;
		e = &s->elems[s->n_elems - 2];
		e->key[0] = ir_value_addr(v6_link_local, AF_INET6);
		e->key_end[0] = e->key[0];
		policy_prefix_fill(NULL, e->key_end[0].data, V6_LINK_LOCAL_LEN, 128);
		uint8_t zero[16] = { 0 };
		u->key[0] = ir_value_addr(zero, AF_INET6);
		u->key_end[0] = u->key[0];
	}
	if (ir_set_normalize(s))
		return (size_t)-1;
	return si;
}

/* seg_N: [nfproto] saddr != @seg_N_srcF counter drop (per family), then
 * meta mark set TENANT, and for new connections ct mark set TENANT. */
static int segment_chain(struct tenant_pass *tp, size_t zi)
{
	const struct policy_zone *z = &tp->p->zones[zi];
	uint32_t mark = policy_tenant_mark(&tp->p->tenants[z->tenant]);
	char chain[IR_NAME_MAX], comment[128];
	policy_tenant_segment_chain(zi, chain);
	struct ir_chain *c = ir_chain_add(tp->t, chain);
	if (!c)
		return -1;
	snprintf(c->comment, sizeof(c->comment), "segment %s", z->name);
	snprintf(comment, sizeof(comment), "%s%s", POLICY_COMMENT_ANTISPOOF, z->name);
	static const int fams[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < 2; f++) {
		size_t set = source_set(tp, zi, fams[f]);
		if (set == (size_t)-1)
			return -1;
		enum ir_field key = fams[f] == AF_INET ? IR_IP_SADDR : IR_IP6_SADDR;
		struct ir_rule *r = ir_build_rule(tp->t, chain, comment);
		if (!r ||
		    !ir_build_cmp(r, IR_META_NFPROTO,
				  ir_value_u8(fams[f] == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6),
				  IR_OP_EQ) ||
		    !ir_build_lookup(r, &key, 1, set, IR_OP_NEQ) || !ir_build_stmt(r, IR_S_COUNTER))
			return -1;
		r->verdict.kind = IR_V_DROP;
		r->loc = z->loc;
	}
	struct ir_rule *r = ir_build_rule(tp->t, chain, "builtin:tenant-mark");
	if (!r || !ir_build_set_value(r, IR_META_MARK, ir_value_u32(mark)))
		return -1;
	r = ir_build_rule(tp->t, chain, "builtin:tenant-mark");
	struct ir_match *m = r ? ir_match_add(r) : NULL;
	if (!m)
		return -1;
	m->kind = IR_M_BITS;
	m->field[0] = IR_CT_STATE;
	m->value = ir_value_u32(NF_CT_STATE_BIT(IP_CT_NEW));
	return ir_build_set_value(r, IR_CT_MARK, ir_value_u32(mark)) ? 0 : -1;
}

/* forward -10: established/related pass on (accept here only ends this
 * chain; the policy's forward chain still runs); a new connection from a
 * segment to a segment of another tenant without a grant: counted drop. */
static int forward_rules(struct tenant_pass *tp)
{
	struct ir_rule *r = ir_build_rule(tp->t, POLICY_CHAIN_TENANT_FORWARD, "builtin:tenant-ct");
	struct ir_match *m = r ? ir_match_add(r) : NULL;
	if (!m)
		return -1;
	m->kind = IR_M_BITS;
	m->field[0] = IR_CT_STATE;
	m->value =
	    ir_value_u32(NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
	r->verdict.kind = IR_V_ACCEPT;
	enum ir_field iif = IR_META_IIFNAME, oif = IR_META_OIFNAME;
	enum ir_field pair[2] = { IR_META_IIFNAME, IR_META_OIFNAME };
	r = ir_build_rule(tp->t, POLICY_CHAIN_TENANT_FORWARD, POLICY_COMMENT_INTER_TENANT);
	if (!r || !ir_build_lookup(r, &iif, 1, tp->ifaces, IR_OP_EQ) ||
	    !ir_build_lookup(r, &oif, 1, tp->ifaces, IR_OP_EQ) ||
	    !ir_build_lookup(r, pair, 2, tp->pairs, IR_OP_NEQ) || !ir_build_stmt(r, IR_S_COUNTER))
		return -1;
	r->verdict.kind = IR_V_DROP;
	return 0;
}

int policy_lower_tenants(const struct policy *p, struct ir_table *t, struct policy_diags *d)
{
	if (!p->n_tenants)
		return 0;
	struct tenant_pass tp = { .p = p, .t = t, .d = d };
	for (size_t i = 0; i < p->n_tenants; i++)
		if (p->tenants[i].id > (POLICY_TENANT_MARK_MASK >> POLICY_TENANT_MARK_SHIFT))
			return policy_error(d, &p->tenants[i].loc,
					    "too many tenants: at most %u fit the packet mark",
					    POLICY_TENANT_MARK_MASK >> POLICY_TENANT_MARK_SHIFT);
	if (make_chains(&tp) || make_maps(&tp) || make_pairs(&tp) || raw_rules(&tp) ||
	    in_rules(&tp) || forward_rules(&tp))
		return oom(&tp);
	for (size_t zi = 0; zi < p->n_zones; zi++)
		if (is_segment(&p->zones[zi]) && segment_chain(&tp, zi))
			return oom(&tp);
	return 0;
}
