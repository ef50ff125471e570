/* The NAT half of the tenant isolation proof (policy/tenant.h).
 *
 * The checker's policy_check_isolation() (policy/checker.c) proves it for
 * filter rules. NAT statements can join tenants too, and a port forward is
 * useless without a filter rule that lets its translated traffic pass:
 *   - a tenant's NAT may only go out via a zone that is not another
 *     tenant's segment;
 *   - a global (tenant-less) forward or netmap must not translate into a
 *     tenant's addresses: without the tenant's routing mark it would land in
 *     whichever tenant the main table picks (declare it inside the tenant);
 *   - a tenant's forward or netmap must translate into the tenant's own
 *     addresses: into another tenant's segment it would be a leak between
 *     tenants, outside every segment it goes nowhere;
 *   - a forward into a tenant needs a pass rule from its outside zone to the
 *     target address and port, or nothing can ever pass it (a warning: the
 *     policy is consistent, just useless there).
 * It also runs the NAT shadow check (policy_check_nat_shadow, policy/nat_shadow.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/checker.h"
#include "policy/tenant.h"

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool list_overlaps(const struct policy_addr_list *l, const struct policy_addr *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (policy_addr_overlaps(&l->v[i], a))
			return true;
	return false;
}

/* The inside address a statement translates to (forward target, netmap's
 * inside prefix), or NULL. */
static const struct policy_addr *inside_of(const struct policy_nat *n)
{
	if (n->kind == POLICY_NAT_DNAT)
		return &n->to_addr;
	if (n->kind == POLICY_NAT_NETMAP && n->match_src.n)
		return &n->match_src.v[0];
	return NULL;
}

static int check_via(const struct policy *p, const struct policy_nat *n, struct policy_diags *d)
{
	const struct policy_zone *via = &p->zones[n->via_zone];
	if (n->tenant == POLICY_NONE || via->tenant == POLICY_NONE || via->tenant == n->tenant)
		return 0;
	policy_error(d, &n->loc, "NAT of tenant '%s' goes out via zone '%s' of tenant '%s'",
		     p->tenants[n->tenant].name, via->name, p->tenants[via->tenant].name);
	return policy_note(d, &via->loc, "'%s' is declared here", via->name), -1;
}

static int check_global_inside(const struct policy *p, const struct policy_nat *n,
			       struct policy_diags *d)
{
	const struct policy_addr *in = inside_of(n);
	if (n->tenant != POLICY_NONE || !in)
		return 0;
	for (size_t z = 0; z < p->n_zones; z++) {
		const struct policy_zone *zone = &p->zones[z];
		if (zone->tenant == POLICY_NONE || !list_overlaps(&zone->addrs, in))
			continue;
		policy_error(d, &n->loc,
			     "global NAT translates into addresses of segment '%s' of tenant '%s'; "
			     "declare it inside tenant '%s'",
			     zone->name, p->tenants[zone->tenant].name,
			     p->tenants[zone->tenant].name);
		return policy_note(d, &zone->loc, "'%s' is declared here", zone->name), -1;
	}
	return 0;
}

void policy_addr_format(const struct policy_addr *a, char *out, size_t n)
{
	char lo[INET6_ADDRSTRLEN] = "?", hi[INET6_ADDRSTRLEN] = "?";
	inet_ntop(a->family, a->lo, lo, sizeof(lo));
	if (a->prefix_len == POLICY_ADDR_NOT_PREFIX) {
		inet_ntop(a->family, a->hi, hi, sizeof(hi));
		snprintf(out, n, "%s-%s", lo, hi);
	} else if (a->prefix_len == addr_len(a->family) * 8) {
		snprintf(out, n, "%s", lo);
	} else {
		snprintf(out, n, "%s/%u", lo, a->prefix_len);
	}
}

/* Is `a` inside the addresses of tenant `t` (its segments, its VPNs'
 * addresses and peers' allowed-ips)? */
static bool inside_tenant(const struct policy *p, size_t t, const struct policy_addr *a)
{
	for (size_t z = 0; z < p->n_zones; z++)
		if (p->zones[z].tenant == t && list_overlaps(&p->zones[z].addrs, a))
			return true;
	for (size_t v = 0; v < p->n_vpns; v++) {
		const struct policy_vpn *vpn = &p->vpns[v];
		if (vpn->tenant != t)
			continue;
		if (list_overlaps(&vpn->addresses, a))
			return true;
		for (size_t k = 0; k < vpn->n_peers; k++)
			if (list_overlaps(&vpn->peers[k].allowed_ips, a))
				return true;
	}
	return false;
}

/* A tenant's forward or netmap translates into the tenant's own addresses:
 * the translated packet carries the tenant's mark and ct zone, so an
 * address of another tenant's segment would let the outside into that
 * tenant through this one (a leak the filter rules never name), and an
 * address of no segment goes nowhere. */
static int check_tenant_inside(const struct policy *p, const struct policy_nat *n,
			       struct policy_diags *d)
{
	const struct policy_addr *in = inside_of(n);
	if (n->tenant == POLICY_NONE || !in || inside_tenant(p, n->tenant, in))
		return 0;
	char addr[128];
	policy_addr_format(in, addr, sizeof(addr));
	const char *what = n->kind == POLICY_NAT_DNAT ? "port forward" : "netmap";
	for (size_t z = 0; z < p->n_zones; z++) {
		const struct policy_zone *zone = &p->zones[z];
		if (zone->tenant == POLICY_NONE || zone->tenant == n->tenant ||
		    !list_overlaps(&zone->addrs, in))
			continue;
		policy_error(d, &in->loc,
			     "%s of tenant '%s' goes to %s in segment '%s' of tenant '%s': "
			     "a tenant may only translate into its own segments",
			     what, p->tenants[n->tenant].name, addr, zone->name,
			     p->tenants[zone->tenant].name);
		return policy_note(d, &zone->loc, "'%s' is declared here", zone->name), -1;
	}
	return policy_error(d, &in->loc, "%s target %s is outside every segment of tenant '%s'",
			    what, addr, p->tenants[n->tenant].name);
}

/* Two segments of one tenant that share addresses make anti-spoofing
 * between them meaningless and the tenant's routes ambiguous. (Tenants may
 * overlap each other: ct zones keep them apart.) */
int policy_check_tenant_segments(const struct policy *p, struct policy_diags *d)
{
	int rc = 0;
	for (size_t j = 0; j < p->n_zones; j++) {
		const struct policy_zone *b = &p->zones[j];
		if (b->tenant == POLICY_NONE)
			continue;
		for (size_t i = 0; i < j; i++) {
			const struct policy_zone *a = &p->zones[i];
			if (a->tenant != b->tenant)
				continue;
			const struct policy_addr *x = NULL, *y = NULL;
			for (size_t k = 0; k < b->addrs.n && !x; k++)
				for (size_t m = 0; m < a->addrs.n && !x; m++)
					if (policy_addr_overlaps(&b->addrs.v[k], &a->addrs.v[m]))
						x = &b->addrs.v[k], y = &a->addrs.v[m];
			if (!x)
				continue;
			char xs[128], ys[128];
			policy_addr_format(x, xs, sizeof(xs));
			policy_addr_format(y, ys, sizeof(ys));
			rc = policy_error(
			    d, &x->loc,
			    "segment '%s' (%s) overlaps segment '%s' (%s) of the same "
			    "tenant: the segments of a tenant must not share addresses",
			    b->name, xs, a->name, ys);
			policy_note(d, &a->loc, "'%s' is declared here", a->name);
			break;
		}
	}
	return rc;
}

/* ---- does some pass rule let a forward's traffic through? ---- */

static bool ep_has_zone(const struct policy_endpoint *e, size_t z)
{
	for (size_t i = 0; i < e->n_zones; i++)
		if (e->zones[i] == z)
			return true;
	return false;
}

/* `from` of the rule can be the outside zone of the forward. */
static bool from_fits(const struct policy_endpoint *e, size_t via)
{
	if (e->kind == POLICY_EP_ANY)
		return true;
	if (e->kind != POLICY_EP_MATCH)
		return false;
	return e->n_zones ? ep_has_zone(e, via) : true;
}

/* `to` of the rule can be the target address (in a zone that holds it). */
static bool to_fits(const struct policy *p, const struct policy_endpoint *e,
		    const struct policy_addr *target, size_t tenant)
{
	if (e->kind == POLICY_EP_ANY)
		return true;
	if (e->kind != POLICY_EP_MATCH)
		return false;
	if (e->addrs.n && !list_overlaps(&e->addrs, target))
		return false;
	if (!e->n_zones)
		return true;
	for (size_t i = 0; i < e->n_zones; i++) {
		const struct policy_zone *z = &p->zones[e->zones[i]];
		if ((tenant == POLICY_NONE || z->tenant == tenant) &&
		    (!z->addrs.n || list_overlaps(&z->addrs, target)))
			return true;
	}
	return false;
}

static bool service_fits(const struct policy_rule *r, uint8_t proto, uint16_t port)
{
	if (!r->n_services)
		return true;
	for (size_t i = 0; i < r->n_services; i++) {
		const struct policy_service_term *t = &r->services[i];
		if (t->l4proto != proto)
			continue;
		if (!t->n_dports)
			return true;
		for (size_t k = 0; k < t->n_dports; k++)
			if (t->dports[k].lo <= port && port <= t->dports[k].hi)
				return true;
	}
	return false;
}

/* `from` of the rule can be one of the tenant's own segments (hairpin). */
static bool from_inside(const struct policy *p, const struct policy_endpoint *e, size_t tenant)
{
	if (e->kind == POLICY_EP_ANY)
		return true;
	if (e->kind != POLICY_EP_MATCH)
		return false;
	if (!e->n_zones)
		return true;
	for (size_t i = 0; i < e->n_zones; i++)
		if (p->zones[e->zones[i]].tenant == tenant)
			return true;
	return false;
}

/* Is there a pass rule for the translated packet of forward `n`, coming
 * from its outside zone (or, hairpin, from inside its tenant)? */
static bool forward_passes(const struct policy *p, const struct policy_nat *n, bool hairpin)
{
	uint16_t port = n->to_ports.lo ? n->to_ports.lo : n->match_ports.lo;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		if (r->action != POLICY_PASS)
			continue;
		if (r->tenant != POLICY_NONE && r->tenant != n->tenant)
			continue;
		bool from = hairpin ? from_inside(p, &r->from, n->tenant)
				    : from_fits(&r->from, n->via_zone);
		if (from && to_fits(p, &r->to, &n->to_addr, n->tenant) &&
		    service_fits(r, n->l4proto, port))
			return true;
	}
	return false;
}

/* The filter sees the translated packet: target address, target port (the
 * first one; a kept port range is checked at its start). */
static int check_forward_passes(const struct policy *p, const struct policy_nat *n,
				struct policy_diags *d)
{
	if (n->kind != POLICY_NAT_DNAT)
		return 0;
	uint16_t port = n->to_ports.lo ? n->to_ports.lo : n->match_ports.lo;
	/* nat/lower.c makes a hairpin for a tenant's forward with a public address */
	if (n->tenant != POLICY_NONE && n->has_public_addr && forward_passes(p, n, false) &&
	    !forward_passes(p, n, true))
		policy_diag_add(
		    d, POLICY_WARNING, &n->loc,
		    "the hairpin of this port forward never passes: no pass rule from a segment "
		    "of tenant '%s' to its target",
		    p->tenants[n->tenant].name);
	if (forward_passes(p, n, false))
		return 0;
	char addr[64];
	const struct policy_addr *a = &n->to_addr;
	if (a->family == AF_INET)
		snprintf(addr, sizeof(addr), "%u.%u.%u.%u", a->lo[0], a->lo[1], a->lo[2], a->lo[3]);
	else
		snprintf(addr, sizeof(addr), "the target address");
	policy_diag_add(
	    d, POLICY_WARNING, &n->loc,
	    "nothing can ever pass this port forward: no pass rule from '%s' to %s %s port %u",
	    p->zones[n->via_zone].name, addr, n->l4proto == IPPROTO_UDP ? "udp" : "tcp", port);
	return 0;
}

int policy_check_nat_isolation(const struct policy *p, struct policy_diags *d)
{
	int rc = 0;
	for (size_t i = 0; i < p->n_nats; i++) {
		const struct policy_nat *n = &p->nats[i];
		if (n->via_zone >= p->n_zones)
			continue;
		if (check_via(p, n, d) || check_global_inside(p, n, d) ||
		    check_tenant_inside(p, n, d))
			rc = -1;
		else
			check_forward_passes(p, n, d);
	}
	policy_check_nat_shadow(p, d);
	return rc;
}
