/* policy_check_nat_shadow(): NAT statements that can never apply because an
 * earlier one takes all their traffic (policy/tenant.h). The nat chains are
 * first-match: a source NAT rule ends the chain for its packet, and so does
 * a port forward. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/tenant.h"

static bool is_source_nat(const struct policy_nat *n)
{
	return n->kind != POLICY_NAT_DNAT;
}

/* The family an earlier source NAT without `from` covers (nat/lower.c:
 * masquerade of a whole tenant is IPv4; snat follows its address). */
static int whole_family(const struct policy_nat *n)
{
	return n->kind == POLICY_NAT_MASQUERADE ? AF_INET : n->to_addr.family;
}

static bool source_covers(const struct policy_nat *a, const struct policy_nat *b)
{
	if (a->tenant != b->tenant || a->via_zone != b->via_zone || !is_source_nat(a) ||
	    !is_source_nat(b))
		return false;
	if (b->kind == POLICY_NAT_NETMAP)
		return false; /* its inbound half still applies */
	if (!b->match_src.n) {
		if (a->match_src.n)
			return false;
		return whole_family(a) == whole_family(b);
	}
	for (size_t i = 0; i < b->match_src.n; i++) {
		const struct policy_addr *x = &b->match_src.v[i];
		bool covered = !a->match_src.n && whole_family(a) == x->family;
		for (size_t k = 0; !covered && k < a->match_src.n; k++)
			covered = policy_addr_contains(&a->match_src.v[k], x);
		if (!covered)
			return false;
	}
	return true;
}

/* Port forwards all sit in one prerouting chain, whatever their tenant. */
static bool forward_covers(const struct policy_nat *a, const struct policy_nat *b)
{
	if (a->kind != POLICY_NAT_DNAT || b->kind != POLICY_NAT_DNAT ||
	    a->via_zone != b->via_zone || a->l4proto != b->l4proto ||
	    a->to_addr.family != b->to_addr.family)
		return false;
	if (a->match_ports.lo > b->match_ports.lo || a->match_ports.hi < b->match_ports.hi)
		return false;
	if (!a->has_public_addr)
		return true;
	return b->has_public_addr && policy_addr_contains(&a->public_addr, &b->public_addr);
}

int policy_check_nat_shadow(const struct policy *p, struct policy_diags *d)
{
	for (size_t j = 1; j < p->n_nats; j++) {
		const struct policy_nat *b = &p->nats[j];
		for (size_t i = 0; i < j; i++) {
			const struct policy_nat *a = &p->nats[i];
			if (!source_covers(a, b) && !forward_covers(a, b))
				continue;
			policy_diag_add(
			    d, POLICY_WARNING, &b->loc,
			    "this NAT statement never applies: an earlier one takes all its traffic");
			policy_note(d, &a->loc, "this one comes first");
			break;
		}
	}
	return 0;
}
