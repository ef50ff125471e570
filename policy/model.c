/* Release of a checked policy (policy/model.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/model.h"

static void endpoint_free(struct policy_endpoint *e)
{
	free(e->zones);
	free(e->addrs.v);
}

static void terms_free(struct policy_service_term *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].dports);
		free(t[i].icmp_types);
	}
	free(t);
}

static void rule_free(struct policy_rule *r)
{
	endpoint_free(&r->from);
	endpoint_free(&r->to);
	terms_free(r->services, r->n_services);
	free(r->log_prefix);
	for (size_t i = 0; i < r->n_inspect; i++) {
		free(r->inspect[i].regex);
		free(r->inspect[i].name);
		free(r->inspect[i].log_prefix);
	}
	free(r->inspect);
}

static void vpn_free(struct policy_vpn *v)
{
	free(v->ifname);
	free(v->private_key_file);
	free(v->addresses.v);
	for (size_t i = 0; i < v->n_peers; i++) {
		struct policy_vpn_peer *p = &v->peers[i];
		free(p->name);
		free(p->public_key);
		free(p->psk_file);
		free(p->endpoint);
		free(p->allowed_ips.v);
	}
	free(v->peers);
}

bool policy_prefix_fill(uint8_t *lo, uint8_t *hi, size_t prefix_len, size_t bits)
{
	bool host_bits = false;
	for (size_t b = prefix_len; b < bits; b++) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));
		if (lo) {
			host_bits |= (lo[b / 8] & bit) != 0;
			lo[b / 8] &= (uint8_t)~bit;
		}
		if (hi)
			hi[b / 8] |= bit;
	}
	return host_bits;
}

void policy_addr_bounds(const struct policy_addr *a, uint8_t lo[16], uint8_t hi[16])
{
	memcpy(lo, a->lo, 16);
	memcpy(hi, a->prefix_len == POLICY_ADDR_NOT_PREFIX ? a->hi : a->lo, 16);
	if (a->prefix_len == POLICY_ADDR_NOT_PREFIX)
		return;
	policy_prefix_fill(lo, hi, a->prefix_len, a->family == AF_INET ? 32 : 128);
}

/* The bounds of x and y and their length in bytes; 0 if their families
 * differ. */
static size_t bounds_of_two(const struct policy_addr *x, const struct policy_addr *y,
			    uint8_t xl[16], uint8_t xh[16], uint8_t yl[16], uint8_t yh[16])
{
	if (x->family != y->family)
		return 0;
	policy_addr_bounds(x, xl, xh);
	policy_addr_bounds(y, yl, yh);
	return x->family == AF_INET ? 4 : 16;
}

bool policy_addr_overlaps(const struct policy_addr *x, const struct policy_addr *y)
{
	uint8_t xl[16], xh[16], yl[16], yh[16];
	size_t n = bounds_of_two(x, y, xl, xh, yl, yh);
	return n && memcmp(xl, yh, n) <= 0 && memcmp(yl, xh, n) <= 0;
}

bool policy_addr_contains(const struct policy_addr *outer, const struct policy_addr *inner)
{
	uint8_t ol[16], oh[16], il[16], ih[16];
	size_t n = bounds_of_two(outer, inner, ol, oh, il, ih);
	return n && memcmp(ol, il, n) <= 0 && memcmp(ih, oh, n) <= 0;
}

/* The tenant of a zone-pair slot: a zone's, none for the others. */
static size_t slot_tenant(const struct policy *p, size_t slot)
{
	return slot < p->n_zones ? p->zones[slot].tenant : POLICY_NONE;
}

bool policy_ep_names_zone(const struct policy_endpoint *ep, size_t zone)
{
	if (ep->kind != POLICY_EP_MATCH)
		return false;
	for (size_t i = 0; i < ep->n_zones; i++)
		if (ep->zones[i] == zone)
			return true;
	return false;
}

bool policy_ep_covers_slot(const struct policy *p, const struct policy_endpoint *ep,
			   const struct policy_rule *r, size_t slot, size_t self)
{
	if (ep->kind == POLICY_EP_SELF)
		return slot == self;
	if (ep->kind == POLICY_EP_MATCH && ep->n_zones)
		return policy_ep_names_zone(ep, slot);
	/* any / addresses only: every zone except other tenants' segments, and
	 * the appliance itself (as the front end's shadow analysis counts it:
	 * `block from any to any` covers `pass from lan to self`) */
	size_t t = slot_tenant(p, slot);
	return r->tenant == POLICY_NONE || t == POLICY_NONE || t == r->tenant;
}

bool policy_rule_isolation_allows(const struct policy *p, const struct policy_rule *r, size_t a,
				  size_t b)
{
	size_t ta = slot_tenant(p, a), tb = slot_tenant(p, b);
	if (ta != POLICY_NONE && tb != POLICY_NONE && ta != tb &&
	    !(policy_ep_names_zone(&r->from, a) && policy_ep_names_zone(&r->to, b)))
		return false;
	return r->tenant == POLICY_NONE || ta == r->tenant || tb == r->tenant;
}

size_t policy_default_find(const struct policy *p, size_t a, size_t b, size_t ta, size_t tb)
{
	bool cross = ta != POLICY_NONE && tb != POLICY_NONE && ta != tb;
	size_t best = POLICY_NONE;
	int best_score = -1;
	for (size_t i = 0; i < p->n_defaults; i++) {
		const struct policy_default *d = &p->defaults[i];
		if ((d->from_zone != POLICY_NONE && d->from_zone != a) ||
		    (d->to_zone != POLICY_NONE && d->to_zone != b))
			continue;
		if (d->tenant != POLICY_NONE && d->tenant != ta && d->tenant != tb)
			continue;
		if (cross && (d->from_zone != a || d->to_zone != b))
			continue;
		int score =
		    (d->from_zone == a) * 4 + (d->to_zone == b) * 2 + (d->tenant != POLICY_NONE);
		if (score > best_score) {
			best_score = score;
			best = i;
		}
	}
	return best;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_tenants; i++)
		free(p->tenants[i].name);
	free(p->tenants);
	for (size_t i = 0; i < p->n_zones; i++) {
		struct policy_zone *z = &p->zones[i];
		free(z->name);
		for (size_t j = 0; j < z->n_ifnames; j++)
			free(z->ifnames[j]);
		free(z->ifnames);
		free(z->addrs.v);
	}
	free(p->zones);
	for (size_t i = 0; i < p->n_services; i++) {
		free(p->services[i].name);
		terms_free(p->services[i].terms, p->services[i].n_terms);
	}
	free(p->services);
	for (size_t i = 0; i < p->n_rules; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p->defaults);
	for (size_t i = 0; i < p->n_nats; i++)
		free(p->nats[i].match_src.v);
	free(p->nats);
	for (size_t i = 0; i < p->n_vpns; i++)
		vpn_free(&p->vpns[i]);
	free(p->vpns);
	free(p);
}
