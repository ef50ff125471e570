/* nat_lower(): the policy's `nat` statements -> nat chains (nat/nat.h). */
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nat/nat.h"
#include "policy/ir_build.h"
#include "policy/ruleset.h"
#include "policy/tenant.h"

struct nat_pass {
	const struct policy *p;
	struct ir_table *t;
	struct policy_diags *d;
	size_t pre_map, post_map; /* (size_t)-1 until needed */
};

static int oom(struct nat_pass *np)
{
	return policy_error(np->d, NULL, "out of memory while lowering NAT");
}

static bool is_wild(const char *ifname)
{
	size_t n = strlen(ifname);
	return n && ifname[n - 1] == '*';
}

static uint8_t nfproto_of(int family)
{
	return family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
}

/* ---- chains and maps ---- */

static struct ir_chain *base_chain(struct nat_pass *np, const char *name, enum ir_hook hook,
				   int prio)
{
	struct ir_chain *c = ir_chain_find(np->t, name);
	return c ? c : ir_build_base_chain(np->t, name, hook, IR_CHAIN_NAT, prio, IR_V_ACCEPT);
}

static size_t mark_map(struct nat_pass *np, size_t *slot, const char *name, const char *chain)
{
	if (*slot != (size_t)-1)
		return *slot;
	static const enum ir_field mark = IR_META_MARK;
	size_t i = ir_build_set(np->t, name, &mark, 1, IR_SET_CONSTANT, IR_DATA_VERDICT);
	if (i == (size_t)-1)
		return i;
	struct ir_set *s = &np->t->sets[i];
	snprintf(s->comment, sizeof(s->comment), "tenant routing mark -> tenant nat chain");
	struct ir_rule *r = ir_build_rule(np->t, chain, "builtin:tenant-nat");
	if (!r || !ir_build_vmap(r, &mark, 1, i))
		return (size_t)-1;
	*slot = i;
	return i;
}

/* The chain of tenant `tenant`'s statements of one kind ("nat_post_ID"),
 * made on first use and entered from the hook chain through `map` for
 * packet mark `mark`. */
static const char *tenant_chain(struct nat_pass *np, size_t tenant, const char *prefix,
				size_t *map_slot, const char *map_name, const char *hook_chain,
				uint32_t mark, char name[IR_NAME_MAX])
{
	snprintf(name, IR_NAME_MAX, "%s_%u", prefix, np->p->tenants[tenant].id);
	if (ir_chain_find(np->t, name))
		return name;
	size_t m = mark_map(np, map_slot, map_name, hook_chain);
	if (m == (size_t)-1 || !ir_chain_add(np->t, name))
		return NULL;
	snprintf(ir_chain_find(np->t, name)->comment, 128, "NAT of tenant %s",
		 np->p->tenants[tenant].name);
	struct ir_set_elem *e = ir_set_elem_add(&np->t->sets[m]);
	if (!e)
		return NULL;
	e->key[0] = ir_value_u32(mark);
	e->verdict.kind = IR_V_JUMP;
	snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s", name);
	return name;
}

/* ---- rule builders ---- */

static struct ir_rule *new_rule(struct nat_pass *np, const char *chain, const struct policy_nat *n)
{
	struct ir_chain *c = ir_chain_find(np->t, chain);
	return c ? ir_build_chain_rule(c, n->id, &n->loc) : NULL;
}

static bool ifname(struct ir_rule *r, enum ir_field f, const char *name)
{
	if (!ir_build_cmp(r, f, ir_value_ifname(name), IR_OP_EQ))
		return false;
	r->matches[r->n_matches - 1].wildcard = is_wild(name);
	return true;
}

/* saddr/daddr within `a`: a compare, a prefix or a range. */
static bool addr_match(struct ir_rule *r, bool src, const struct policy_addr *a)
{
	bool v6 = a->family == AF_INET6;
	enum ir_field f =
	    src ? (v6 ? IR_IP6_SADDR : IR_IP_SADDR) : (v6 ? IR_IP6_DADDR : IR_IP_DADDR);
	struct ir_value lo, hi;
	ir_build_addr_range(a, &lo, &hi);
	return ir_build_range(r, f, lo, hi) != NULL;
}

static bool dport_match(struct ir_rule *r, uint8_t l4proto, const struct policy_port_range *pr)
{
	return ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(l4proto), IR_OP_EQ) &&
	       ir_build_range(r, IR_TH_DPORT, ir_value_u16_net(pr->lo), ir_value_u16_net(pr->hi));
}

static struct ir_nat *nat_stmt(struct ir_rule *r, enum ir_nat_kind k, int family)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (!s)
		return NULL;
	s->kind = IR_S_NAT;
	s->nat.kind = k;
	s->nat.family = nfproto_of(family);
	s->nat.random_fully = false; /* the kernel picks ports as nft does by default */
	return &s->nat;
}

/* ---- source NAT: masquerade, snat, the outgoing half of netmap ---- */

static const char *post_chain(struct nat_pass *np, const struct policy_nat *n,
			      char name[IR_NAME_MAX])
{
	if (n->tenant == POLICY_NONE)
		return POLICY_CHAIN_NAT_POSTROUTING;
	uint32_t mark = policy_tenant_mark(&np->p->tenants[n->tenant]);
	return tenant_chain(np, n->tenant, "nat_post", &np->post_map, POLICY_MAP_NAT_POST_TENANT,
			    POLICY_CHAIN_NAT_POSTROUTING, mark, name);
}

/* One snat-like rule: oifname, family, optional source, optional l4proto
 * (port ranges need one), then the translation. */
static int snat_rule(struct nat_pass *np, const char *chain, const struct policy_nat *n,
		     const char *oif, int family, const struct policy_addr *src, uint8_t l4proto)
{
	struct ir_rule *r = new_rule(np, chain, n);
	if (!r || !ifname(r, IR_META_OIFNAME, oif) ||
	    !ir_build_cmp(r, IR_META_NFPROTO, ir_value_u8(nfproto_of(family)), IR_OP_EQ) ||
	    (src && !addr_match(r, true, src)) ||
	    (l4proto && !ir_build_cmp(r, IR_META_L4PROTO, ir_value_u8(l4proto), IR_OP_EQ)))
		return -1;
	enum ir_nat_kind k = n->kind == POLICY_NAT_MASQUERADE ? IR_NAT_MASQUERADE : IR_NAT_SNAT;
	struct ir_nat *x = nat_stmt(r, k, family);
	if (!x)
		return -1;
	if (k == IR_NAT_SNAT)
		ir_build_addr_range(&n->to_addr, &x->addr_lo, &x->addr_hi);
	x->netmap = n->kind == POLICY_NAT_NETMAP;
	if (l4proto) {
		x->port_lo = n->to_ports.lo;
		x->port_hi = n->to_ports.hi;
	}
	return 0;
}

/* The families a source NAT statement applies to: those of its sources, or
 * of its translation address; masquerade of a whole tenant is IPv4 (NAT66
 * is not done). */
static bool snat_family(const struct policy_nat *n, int family)
{
	if (n->match_src.n) {
		for (size_t i = 0; i < n->match_src.n; i++)
			if (n->match_src.v[i].family == family)
				return true;
		return false;
	}
	if (n->kind == POLICY_NAT_MASQUERADE)
		return family == AF_INET;
	return n->to_addr.family == family;
}

static int lower_snat(struct nat_pass *np, const struct policy_nat *n)
{
	char name[IR_NAME_MAX];
	const char *chain = post_chain(np, n, name);
	if (!chain)
		return -1;
	const struct policy_zone *via = &np->p->zones[n->via_zone];
	/* Port ranges apply per transport protocol; other protocols
	 * (ICMP) still get the address translation. */
	static const uint8_t with_ports[] = { IPPROTO_TCP, IPPROTO_UDP, 0 };
	size_t n_protos = n->to_ports.lo && n->kind != POLICY_NAT_NETMAP ? 3 : 1;
	static const int fams[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < 2; f++) {
		if (!snat_family(n, fams[f]))
			continue;
		for (size_t i = 0; i < via->n_ifnames; i++) {
			for (size_t k = 0; k < n_protos; k++) {
				uint8_t proto = n_protos == 3 ? with_ports[k] : 0;
				if (!n->match_src.n &&
				    snat_rule(np, chain, n, via->ifnames[i], fams[f], NULL, proto))
					return -1;
				for (size_t s = 0; s < n->match_src.n; s++)
					if (n->match_src.v[s].family == fams[f] &&
					    snat_rule(np, chain, n, via->ifnames[i], fams[f],
						      &n->match_src.v[s], proto))
						return -1;
			}
		}
	}
	return 0;
}

/* ---- destination NAT: port forwards, the incoming half of netmap ---- */

/* A translation into a tenant carries the tenant's mark, so the packet is
 * routed by the tenant's table and its replies find their way back. */
static bool tenant_marks(struct nat_pass *np, struct ir_rule *r, const struct policy_nat *n,
			 uint32_t extra)
{
	if (n->tenant == POLICY_NONE)
		return true;
	uint32_t mark = policy_tenant_mark(&np->p->tenants[n->tenant]);
	return ir_build_set_value(r, IR_META_MARK, ir_value_u32(mark | extra)) &&
	       (extra || ir_build_set_value(r, IR_CT_MARK, ir_value_u32(mark)));
}

static int dnat_to(struct ir_rule *r, const struct policy_nat *n)
{
	struct ir_nat *x = nat_stmt(r, IR_NAT_DNAT, n->to_addr.family);
	if (!x)
		return -1;
	ir_build_addr_range(&n->to_addr, &x->addr_lo, &x->addr_hi);
	x->netmap = n->kind == POLICY_NAT_NETMAP;
	if (n->kind == POLICY_NAT_DNAT && n->to_ports.lo) {
		x->port_lo = n->to_ports.lo;
		x->port_hi = n->to_ports.hi;
	}
	return 0;
}

/* The outside address a forward or netmap listens on, if any. */
static const struct policy_addr *outside_addr(const struct policy_nat *n)
{
	if (n->kind == POLICY_NAT_NETMAP)
		return &n->to_addr;
	return n->has_public_addr ? &n->public_addr : NULL;
}

static const struct policy_addr *inside_addr(const struct policy_nat *n)
{
	return n->kind == POLICY_NAT_NETMAP ? &n->match_src.v[0] : &n->to_addr;
}

/* `nat netmap` swaps its two prefixes for the way in. */
static struct policy_nat netmap_inbound(const struct policy_nat *n)
{
	struct policy_nat in = *n;
	in.to_addr = n->match_src.v[0];
	return in;
}

/* Matches of the outside side of a forward: [daddr] [l4proto dport]. */
static bool outside_match(struct ir_rule *r, const struct policy_nat *n)
{
	const struct policy_addr *out = outside_addr(n);
	int family = inside_addr(n)->family;
	if (!ir_build_cmp(r, IR_META_NFPROTO, ir_value_u8(nfproto_of(family)), IR_OP_EQ))
		return false;
	if (out && !addr_match(r, false, out))
		return false;
	return n->kind != POLICY_NAT_DNAT || dport_match(r, n->l4proto, &n->match_ports);
}

/* From the outside zone: prerouting. From the appliance itself: output. */
static int dnat_inbound(struct nat_pass *np, const struct policy_nat *n)
{
	struct policy_nat in = n->kind == POLICY_NAT_NETMAP ? netmap_inbound(n) : *n;
	const struct policy_zone *via = &np->p->zones[n->via_zone];
	for (size_t i = 0; i < via->n_ifnames; i++) {
		struct ir_rule *r = new_rule(np, POLICY_CHAIN_NAT_PREROUTING, n);
		if (!r || !ifname(r, IR_META_IIFNAME, via->ifnames[i]) || !outside_match(r, n) ||
		    !tenant_marks(np, r, n, 0) || dnat_to(r, &in))
			return -1;
	}
	if (!outside_addr(n))
		return 0;
	if (!base_chain(np, POLICY_CHAIN_NAT_OUTPUT, IR_HOOK_OUTPUT, POLICY_PRI_NAT_DST))
		return -1;
	struct ir_rule *r = new_rule(np, POLICY_CHAIN_NAT_OUTPUT, n);
	if (!r || !outside_match(r, n) || !tenant_marks(np, r, n, 0) || dnat_to(r, &in))
		return -1;
	return 0;
}

/* Hairpin: the tenant's own hosts reach the public address of its forward.
 * The dnat marks the packet; postrouting masquerades it behind the
 * appliance's inside address so the server answers through the appliance. */
static int dnat_hairpin(struct nat_pass *np, const struct policy_nat *n)
{
	if (n->tenant == POLICY_NONE || !outside_addr(n))
		return 0;
	uint32_t mark = policy_tenant_mark(&np->p->tenants[n->tenant]);
	char pre[IR_NAME_MAX], back[IR_NAME_MAX];
	if (!tenant_chain(np, n->tenant, "nat_pre", &np->pre_map, POLICY_MAP_NAT_PRE_TENANT,
			  POLICY_CHAIN_NAT_PREROUTING, mark, pre))
		return -1;
	snprintf(back, sizeof(back), "nat_hairpin_%u", np->p->tenants[n->tenant].id);
	bool had_back = ir_chain_find(np->t, back) != NULL;
	if (!tenant_chain(np, n->tenant, "nat_hairpin", &np->post_map, POLICY_MAP_NAT_POST_TENANT,
			  POLICY_CHAIN_NAT_POSTROUTING, mark | POLICY_TENANT_MARK_HAIRPIN, back))
		return -1;
	if (!had_back) {
		struct ir_rule *r = new_rule(np, back, n);
		if (!r)
			return -1;
		snprintf(r->comment, sizeof(r->comment), "builtin:hairpin");
		struct ir_nat *x = nat_stmt(r, IR_NAT_MASQUERADE, inside_addr(n)->family);
		if (!x)
			return -1;
	}
	struct policy_nat in = n->kind == POLICY_NAT_NETMAP ? netmap_inbound(n) : *n;
	struct ir_rule *r = new_rule(np, pre, n);
	if (!r || !outside_match(r, n) || !tenant_marks(np, r, n, POLICY_TENANT_MARK_HAIRPIN) ||
	    dnat_to(r, &in))
		return -1;
	return 0;
}

/* Forwarding a port range to a different range would need the kernel's
 * port-offset mapping, which nft 1.0.6 cannot express. */
static int check_forward_ports(struct nat_pass *np, const struct policy_nat *n)
{
	const struct policy_port_range *in = &n->match_ports, *to = &n->to_ports;
	if (n->kind != POLICY_NAT_DNAT || !to->lo || to->lo == to->hi || in->lo == in->hi)
		return 0;
	if (in->lo == to->lo && in->hi == to->hi)
		return 0;
	return policy_error(np->d, &n->loc,
			    "a forwarded port range goes to the same ports or to one port");
}

static int lower_one(struct nat_pass *np, const struct policy_nat *n)
{
	switch (n->kind) {
	case POLICY_NAT_MASQUERADE:
	case POLICY_NAT_SNAT: return lower_snat(np, n);
	case POLICY_NAT_DNAT:
		if (!outside_addr(n) && n->tenant != POLICY_NONE)
			policy_diag_add(
			    np->d, POLICY_NOTE, &n->loc,
			    "no public address ('on ADDR'): the forward works from outside only, not as hairpin from inside");
		return dnat_inbound(np, n) || dnat_hairpin(np, n) ? -1 : 0;
	case POLICY_NAT_NETMAP:
		return lower_snat(np, n) || dnat_inbound(np, n) || dnat_hairpin(np, n) ? -1 : 0;
	}
	return 0;
}

int nat_check(const struct policy *p, struct policy_diags *d)
{
	struct nat_pass np = { .p = p, .d = d, .pre_map = (size_t)-1, .post_map = (size_t)-1 };
	int rc = 0;
	for (size_t i = 0; i < p->n_nats; i++)
		rc |= check_forward_ports(&np, &p->nats[i]);
	return rc ? -1 : 0;
}

int nat_lower(const struct policy *p, struct ir_table *t, struct policy_diags *d)
{
	struct nat_pass np = {
		.p = p, .t = t, .d = d, .pre_map = (size_t)-1, .post_map = (size_t)-1
	};
	if (!p->n_nats)
		return 0;
	if (nat_check(p, d))
		return -1;
	if (!base_chain(&np, POLICY_CHAIN_NAT_PREROUTING, IR_HOOK_PREROUTING, POLICY_PRI_NAT_DST) ||
	    !base_chain(&np, POLICY_CHAIN_NAT_POSTROUTING, IR_HOOK_POSTROUTING, POLICY_PRI_NAT_SRC))
		return oom(&np);
	for (size_t i = 0; i < p->n_nats; i++)
		if (lower_one(&np, &p->nats[i]))
			return d->n_errors ? -1 : oom(&np);
	return 0;
}
