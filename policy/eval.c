/* The policy evaluator (policy/eval.h, docs/replay.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/eval.h"
#include "policy/grow.h"

/* ICMPv6 neighbour discovery types, RFC 4861 section 4 (the appliance's
 * input accepts them before any rule; conntrack does not track them). */
#define ICMPV6_ND_FIRST 133
#define ICMPV6_ND_LAST  136
/* DHCPv6 client port, RFC 8415 section 7.2. */
#define DHCPV6_CLIENT_PORT 546
/* Link-local prefix fe80::/10, RFC 4291 section 2.5.6. */
#define V6_LINK_LOCAL_LEN 10

/* The slot of a zone pair: a zone index, UNZONED or SELF (as the lowering
 * counts them, but derived here from the language: an interface in no zone
 * is "unzoned", the appliance is `self`). */
#define SLOT_UNZONED ((size_t)-2)
#define SLOT_SELF    ((size_t)-3)

void policy_eval_opts_default(struct policy_eval_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->path = true;
}

const char *policy_eval_verdict_name(enum policy_eval_verdict v)
{
	static const char *names[] = { "pass", "block", "reject", "inspect" };
	return v <= POLICY_EVAL_INSPECT ? names[v] : "?";
}

const char *policy_eval_ct_name(enum policy_eval_ct ct)
{
	static const char *names[] = { "new", "established", "related", "invalid", "untracked" };
	return ct <= POLICY_EVAL_CT_UNTRACKED ? names[ct] : "?";
}

/* ---- small predicates ---- */

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

bool policy_eval_addr_in(const struct policy_addr *a, int family, const uint8_t *addr)
{
	if (a->family != family)
		return false;
	size_t n = addr_len(family);
	if (a->prefix_len == POLICY_ADDR_NOT_PREFIX)
		return memcmp(addr, a->lo, n) >= 0 && memcmp(addr, a->hi, n) <= 0;
	/* whole bytes of the prefix, then the bits of the last one */
	size_t whole = a->prefix_len / 8, rest = a->prefix_len % 8;
	if (memcmp(addr, a->lo, whole))
		return false;
	uint8_t m = (uint8_t)(0xff00 >> rest);
	return !rest || (addr[whole] & m) == (a->lo[whole] & m);
}

static bool addrs_have(const struct policy_addr_list *al, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < al->n; i++)
		if (policy_eval_addr_in(&al->v[i], family, addr))
			return true;
	return false;
}

static bool ifname_matches(const char *pattern, const char *ifname)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, ifname, n - 1);
	return !strcmp(pattern, ifname);
}

size_t policy_eval_zone_of(const struct policy *p, const char *ifname)
{
	if (!ifname || !*ifname)
		return POLICY_NONE;
	for (size_t z = 0; z < p->n_zones; z++)
		for (size_t i = 0; i < p->zones[z].n_ifnames; i++)
			if (ifname_matches(p->zones[z].ifnames[i], ifname))
				return z;
	return POLICY_NONE;
}

static bool is_segment(const struct policy *p, size_t zone)
{
	return zone < p->n_zones && p->zones[zone].tenant != POLICY_NONE &&
	       p->zones[zone].addrs.n > 0 && !p->zones[zone].is_vpn;
}

static size_t slot_tenant(const struct policy *p, size_t slot)
{
	return slot < p->n_zones ? p->zones[slot].tenant : POLICY_NONE;
}

static const char *slot_name(const struct policy *p, size_t slot)
{
	if (slot == SLOT_SELF)
		return "self";
	if (slot == SLOT_UNZONED)
		return "(no zone)";
	return p->zones[slot].name;
}

/* ---- the path ---- */

/* A new step of the path, or NULL: *rc 0 when no path is recorded, else
 * -ENOMEM. */
static struct policy_eval_step *step_new(struct policy_eval_result *r,
					 enum policy_eval_step_kind kind,
					 const struct policy_rule *rule, int *rc)
{
	*rc = 0;
	if (r->no_path)
		return NULL;
	if (POLICY_GROW(r->steps, r->cap_steps, r->n_steps, 16)) {
		*rc = -ENOMEM;
		return NULL;
	}
	struct policy_eval_step *s = &r->steps[r->n_steps++];
	s->kind = kind;
	s->rule = rule;
	return s;
}

static int step(struct policy_eval_result *r, enum policy_eval_step_kind kind,
		const struct policy_rule *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int step(struct policy_eval_result *r, enum policy_eval_step_kind kind,
		const struct policy_rule *rule, const char *fmt, ...)
{
	int rc;
	struct policy_eval_step *s = step_new(r, kind, rule, &rc);
	if (!s)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->text, sizeof(s->text), fmt, ap);
	va_end(ap);
	return 0;
}

/* The step of a rule that did not match, "ID: no match (WHY)": as step()
 * writes it, without the formatting (one per rule consulted: thousands
 * on a large policy). */
static int step_miss(struct policy_eval_result *r, const struct policy_rule *rule, const char *why)
{
	int rc;
	struct policy_eval_step *s = step_new(r, POLICY_EVAL_STEP_MISS, rule, &rc);
	if (!s)
		return rc;
	const char *parts[] = { rule->id, ": no match (", why, ")" };
	size_t n = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t len = strnlen(parts[i], sizeof(s->text) - 1 - n);
		memcpy(s->text + n, parts[i], len);
		n += len;
	}
	s->text[n] = '\0';
	return 0;
}

static void addr_text(int family, const uint8_t *a, char *buf, size_t size)
{
	if (!inet_ntop(family, a, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

void policy_eval_result_free(struct policy_eval_result *r)
{
	free(r->steps);
	r->steps = NULL;
	r->n_steps = r->cap_steps = 0;
}

/* ---- the cache of a replay ---- */

/* Address lists longer than this are searched as sorted ranges. */
#define EVAL_INDEX_MIN 8
/* Zone pairs tracked per cache: (zones + 2)^2 must stay under this. */
#define EVAL_CACHE_MAX_PAIRS (1u << 20)

struct addr_range {
	uint8_t lo[16], hi[16];
};

struct addr_index {
	bool built;
	struct addr_range *r[2]; /* [0] IPv4, [1] IPv6, sorted, merged */
	size_t n[2];
};

/* Port ranges wider than this are not split into the port index: the rule
 * goes to its protocol's list (a superset of candidates is always safe,
 * rule_mismatch decides), which bounds the index to a few segments per range. */
#define EVAL_PORT_SPAN_MAX 64

/* Positions into a pair's rule list, ascending. */
struct pos_list {
	size_t *v, n, cap;
};

/* An elementary port interval and the rules with a range covering it. */
struct port_seg {
	uint16_t lo, hi;
	struct pos_list rules;
};

/* The rules of one protocol: those matching any port (or with a wide
 * range), and the rest by destination port. */
struct proto_index {
	uint8_t l4proto;
	struct pos_list wide;
	struct port_seg *segs; /* sorted, disjoint */
	size_t n_segs;
};

/* The candidates of a pair by protocol and destination port, so that a
 * replayed packet visits only rules that can match it; merged in rule order
 * at lookup, so the first match is that of the linear walk. */
struct pair_index {
	struct pos_list any; /* rules without a service */
	struct proto_index *protos;
	size_t n_protos;
};

struct pair_rules {
	bool done;
	size_t *rules, n;
	struct pair_index *index; /* NULL: not built (or no memory): walk in order */
};

struct policy_eval_cache {
	const struct policy *p;
	size_t n_slots;
	struct pair_rules *pairs;     /* NULL: too many zones */
	struct addr_index *from, *to; /* per rule */
	/* the `no state` pass rules, in order; stateless_done: listed */
	size_t *stateless, n_stateless;
	bool stateless_done;
};

struct policy_eval_cache *policy_eval_cache_new(const struct policy *p)
{
	struct policy_eval_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->p = p;
	c->n_slots = p->n_zones + 2;
	size_t rules = p->n_rules ? p->n_rules : 1;
	c->from = calloc(rules, sizeof(*c->from));
	c->to = calloc(rules, sizeof(*c->to));
	if (c->n_slots * c->n_slots <= EVAL_CACHE_MAX_PAIRS)
		c->pairs = calloc(c->n_slots * c->n_slots, sizeof(*c->pairs));
	if (!c->from || !c->to) {
		policy_eval_cache_free(c);
		return NULL;
	}
	return c;
}

static void pair_index_free(struct pair_index *x)
{
	if (!x)
		return;
	free(x->any.v);
	for (size_t i = 0; i < x->n_protos; i++) {
		free(x->protos[i].wide.v);
		for (size_t j = 0; j < x->protos[i].n_segs; j++)
			free(x->protos[i].segs[j].rules.v);
		free(x->protos[i].segs);
	}
	free(x->protos);
	free(x);
}

void policy_eval_cache_free(struct policy_eval_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; c->pairs && i < c->n_slots * c->n_slots; i++) {
		free(c->pairs[i].rules);
		pair_index_free(c->pairs[i].index);
	}
	for (size_t i = 0; i < c->p->n_rules; i++)
		for (int f = 0; f < 2; f++) {
			free(c->from[i].r[f]);
			free(c->to[i].r[f]);
		}
	free(c->pairs);
	free(c->stateless);
	free(c->from);
	free(c->to);
	free(c);
}

static int range_cmp4(const void *a, const void *b)
{
	return memcmp(((const struct addr_range *)a)->lo, ((const struct addr_range *)b)->lo, 4);
}

static int range_cmp16(const void *a, const void *b)
{
	return memcmp(((const struct addr_range *)a)->lo, ((const struct addr_range *)b)->lo, 16);
}

/* Sorted, merged ranges of one family; an allocation failure leaves the
 * index unbuilt (the linear search is used). */
static void index_build(struct addr_index *x, const struct policy_addr_list *al)
{
	x->built = true;
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		size_t n = 0;
		for (size_t i = 0; i < al->n; i++)
			n += al->v[i].family == family;
		if (!n)
			continue;
		struct addr_range *v = malloc(n * sizeof(*v));
		if (!v) {
			x->built = false;
			return;
		}
		n = 0;
		for (size_t i = 0; i < al->n; i++)
			if (al->v[i].family == family) {
				policy_addr_bounds(&al->v[i], v[n].lo, v[n].hi);
				n++;
			}
		size_t range_len = addr_len(family);
		qsort(v, n, sizeof(*v), f ? range_cmp16 : range_cmp4);
		size_t m = 0;
		for (size_t i = 1; i < n; i++) {
			if (memcmp(v[i].lo, v[m].hi, range_len) <= 0) {
				if (memcmp(v[i].hi, v[m].hi, range_len) > 0)
					memcpy(v[m].hi, v[i].hi, 16);
			} else {
				v[++m] = v[i];
			}
		}
		x->r[f] = v;
		x->n[f] = m + 1;
	}
}

static uint32_t be32_at(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* IPv4 as integers: the search is the replay's hottest loop on policies of
 * long address lists, and a call to memcmp per probe costs more than it. */
static bool index_has4(const struct addr_index *x, const uint8_t *addr)
{
	uint32_t a = be32_at(addr);
	size_t lo = 0, hi = x->n[0];
	const struct addr_range *v = x->r[0];
	while (lo < hi) { /* the last range starting at or below addr */
		size_t mid = lo + (hi - lo) / 2;
		if (be32_at(v[mid].lo) <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && a <= be32_at(v[lo - 1].hi);
}

static bool index_has(const struct addr_index *x, int family, const uint8_t *addr)
{
	if (family == AF_INET)
		return index_has4(x, addr);
	size_t len = addr_len(family), lo = 0, hi = x->n[1];
	const struct addr_range *v = x->r[1];
	while (lo < hi) { /* the last range starting at or below addr */
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(v[mid].lo, addr, len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(addr, v[lo - 1].hi, len) <= 0;
}

static bool list_has(struct addr_index *x, const struct policy_addr_list *al, int family,
		     const uint8_t *addr)
{
	if (!x || al->n < EVAL_INDEX_MIN)
		return addrs_have(al, family, addr);
	if (!x->built)
		index_build(x, al);
	if (!x->built)
		return addrs_have(al, family, addr);
	return index_has(x, family, addr);
}

/* ---- endpoints and rules ---- */

/* Does rule r govern traffic from slot a to slot b? Which slots its
 * endpoints stand for and tenant isolation are the model's
 * (policy_ep_covers_slot, policy_rule_isolation_allows); the appliance's
 * traffic to itself never. */
static bool rule_governs(const struct policy *p, const struct policy_rule *r, size_t a, size_t b)
{
	if (a == SLOT_SELF && b == SLOT_SELF)
		return false;
	return policy_ep_covers_slot(p, &r->from, r, a, SLOT_SELF) &&
	       policy_ep_covers_slot(p, &r->to, r, b, SLOT_SELF) &&
	       policy_rule_isolation_allows(p, r, a, b);
}

static bool port_in(const struct policy_service_term *t, uint16_t port)
{
	for (size_t i = 0; i < t->n_dports; i++)
		if (port >= t->dports[i].lo && port <= t->dports[i].hi)
			return true;
	return false;
}

static bool term_matches(const struct policy_service_term *t, const struct policy_eval_packet *pkt)
{
	if (t->l4proto != pkt->l4proto)
		return false;
	if (t->n_dports)
		return port_in(t, pkt->dport);
	if (t->n_icmp_types) {
		for (size_t i = 0; i < t->n_icmp_types; i++)
			if (t->icmp_types[i] == pkt->icmp_type)
				return true;
		return false;
	}
	return true;
}

/* Why rule r does not match (NULL: it matches): addresses, then service.
 * An ICMP term never matches IPv6 packets nor ICMPv6 IPv4 ones. */
static const char *rule_mismatch(const struct policy *p, struct policy_eval_cache *c,
				 const struct policy_rule *r, const struct policy_eval_packet *pkt)
{
	size_t i = (size_t)(r - p->rules);
	if (r->from.addrs.n &&
	    !list_has(c ? &c->from[i] : NULL, &r->from.addrs, pkt->family, pkt->saddr))
		return "source address";
	if (r->to.addrs.n && !list_has(c ? &c->to[i] : NULL, &r->to.addrs, pkt->family, pkt->daddr))
		return "destination address";
	if (!r->n_services)
		return NULL;
	for (size_t i = 0; i < r->n_services; i++) {
		const struct policy_service_term *t = &r->services[i];
		if ((t->l4proto == IPPROTO_ICMP && pkt->family == AF_INET6) ||
		    (t->l4proto == IPPROTO_ICMPV6 && pkt->family == AF_INET))
			continue;
		if (term_matches(t, pkt))
			return NULL;
	}
	return "service";
}

/* ---- defaults ---- */

/* The default of pair (a, b), docs/policy-language.md §8: the most specific
 * `default` (policy_default_find, the model's: both zones, then from, then
 * to, then none; a tenant's before a global one of the same shape; the
 * first of equals). A tenant's default
 * applies only to traffic from or to its segments; between two tenants only
 * a default naming both zones applies, else block. The appliance's own
 * traffic passes; traffic to it takes the global default. */
static const struct policy_default *pair_default(const struct policy *p, size_t a, size_t b,
						 enum policy_action *action)
{
	size_t ta = slot_tenant(p, a), tb = slot_tenant(p, b);
	bool cross = ta != POLICY_NONE && tb != POLICY_NONE && ta != tb;
	size_t i =
	    a != SLOT_SELF && b != SLOT_SELF ? policy_default_find(p, a, b, ta, tb) : POLICY_NONE;
	const struct policy_default *best = i == POLICY_NONE ? NULL : &p->defaults[i];
	if (best)
		*action = best->action;
	else if (a == SLOT_SELF)
		*action = POLICY_PASS;
	else
		*action = cross ? POLICY_BLOCK : p->default_action;
	return best;
}

/* ---- NAT ---- */

static const struct policy_addr *nat_outside(const struct policy_nat *n)
{
	if (n->kind == POLICY_NAT_NETMAP)
		return &n->to_addr;
	return n->has_public_addr ? &n->public_addr : NULL;
}

static int nat_family(const struct policy_nat *n)
{
	return n->kind == POLICY_NAT_NETMAP ? n->match_src.v[0].family : n->to_addr.family;
}

/* Rewrites `addr` into prefix `to` keeping the host bits (netmap). */
static void netmap_addr(const struct policy_addr *to, int family, const uint8_t *addr, uint8_t *out)
{
	size_t n = addr_len(family);
	memcpy(out, addr, n);
	for (size_t bit = 0; bit < to->prefix_len && bit < n * 8; bit++) {
		uint8_t m = (uint8_t)(0x80 >> (bit % 8));
		out[bit / 8] = (uint8_t)((out[bit / 8] & ~m) | (to->lo[bit / 8] & m));
	}
}

/* The outside side of a forward or netmap: family, address, port. */
static bool nat_outside_matches(const struct policy_nat *n, const struct policy_eval_packet *pkt)
{
	if (nat_family(n) != pkt->family)
		return false;
	const struct policy_addr *out = nat_outside(n);
	if (out && !policy_eval_addr_in(out, pkt->family, pkt->daddr))
		return false;
	if (n->kind != POLICY_NAT_DNAT)
		return true;
	return pkt->l4proto == n->l4proto && pkt->dport >= n->match_ports.lo &&
	       pkt->dport <= n->match_ports.hi;
}

static void dnat_apply(const struct policy_nat *n, struct policy_eval_packet *pkt,
		       struct policy_eval_xlat *x)
{
	x->nat = n;
	if (n->kind == POLICY_NAT_NETMAP) {
		netmap_addr(&n->match_src.v[0], pkt->family, pkt->daddr, x->addr);
	} else {
		memcpy(x->addr, n->to_addr.lo, 16);
		if (n->to_ports.lo) {
			/* a range forwarded to one port goes to that port; to the same
			 * range, unchanged (docs/policy-language.md §10) */
			x->port = n->to_ports.lo == n->to_ports.hi ? n->to_ports.lo : pkt->dport;
			pkt->dport = x->port;
		}
	}
	memcpy(pkt->daddr, x->addr, addr_len(pkt->family));
}

/* Port forwards and the way in of netmaps: arriving on the via zone (or
 * sent by the appliance to an outside address), then hairpin: a tenant's
 * own hosts to the public address of its forward. */
static int dnat(const struct policy *p, size_t from_zone, bool from_self,
		struct policy_eval_packet *pkt, struct policy_eval_result *r)
{
	char a[INET6_ADDRSTRLEN];
	for (size_t i = 0; i < p->n_nats; i++) {
		const struct policy_nat *n = &p->nats[i];
		if (n->kind != POLICY_NAT_DNAT && n->kind != POLICY_NAT_NETMAP)
			continue;
		bool inbound = from_self ? nat_outside(n) != NULL : from_zone == n->via_zone;
		if (!inbound || !nat_outside_matches(n, pkt))
			continue;
		dnat_apply(n, pkt, &r->dnat);
		if (n->tenant != POLICY_NONE)
			r->tenant = n->tenant;
		addr_text(pkt->family, pkt->daddr, a, sizeof(a));
		return step(r, POLICY_EVAL_STEP_NOTE, NULL, "destination NAT by %s: to %s port %u",
			    n->id, a, pkt->dport);
	}
	for (size_t i = 0; !from_self && i < p->n_nats; i++) {
		const struct policy_nat *n = &p->nats[i];
		if ((n->kind != POLICY_NAT_DNAT && n->kind != POLICY_NAT_NETMAP) ||
		    n->tenant == POLICY_NONE || n->tenant != r->tenant || !nat_outside(n) ||
		    !nat_outside_matches(n, pkt))
			continue;
		dnat_apply(n, pkt, &r->dnat);
		r->dnat.hairpin = true;
		addr_text(pkt->family, pkt->daddr, a, sizeof(a));
		return step(r, POLICY_EVAL_STEP_NOTE, NULL,
			    "hairpin destination NAT by %s: to %s port %u, masqueraded back", n->id,
			    a, pkt->dport);
	}
	return 0;
}

static bool is_source_nat(const struct policy_nat *n)
{
	return n->kind == POLICY_NAT_MASQUERADE || n->kind == POLICY_NAT_SNAT ||
	       n->kind == POLICY_NAT_NETMAP;
}

/* Source NAT statement n for a packet leaving through zone `out`. Without
 * `from`: a tenant's statement covers its segments (it is only consulted
 * for the tenant's packets), a global one everything; masquerade of a whole
 * scope is IPv4 only (no NAT66), snat of the translation's family. */
static bool snat_matches(const struct policy *p, const struct policy_nat *n, size_t out,
			 const struct policy_eval_packet *pkt)
{
	(void)p;
	if (out != n->via_zone)
		return false;
	if (n->match_src.n)
		return addrs_have(&n->match_src, pkt->family, pkt->saddr);
	if (n->kind == POLICY_NAT_MASQUERADE)
		return pkt->family == AF_INET;
	return n->to_addr.family == pkt->family;
}

static void snat_apply(const struct policy_nat *n, const struct policy_eval_packet *pkt,
		       struct policy_eval_xlat *x)
{
	x->nat = n;
	if (n->kind == POLICY_NAT_MASQUERADE) {
		x->masquerade = true;
		return;
	}
	if (n->kind == POLICY_NAT_NETMAP) {
		netmap_addr(&n->to_addr, pkt->family, pkt->saddr, x->addr);
		return;
	}
	memcpy(x->addr, n->to_addr.lo, 16);
	if (n->to_ports.lo && (pkt->l4proto == IPPROTO_TCP || pkt->l4proto == IPPROTO_UDP) &&
	    (pkt->sport < n->to_ports.lo || pkt->sport > n->to_ports.hi))
		x->port = n->to_ports.lo;
}

/* The first tenant-owned statement that makes a tenant NAT chain of
 * postrouting: where the tenants' statements are consulted among the global
 * ones (docs/replay.md, "Order of NAT statements"). */
static size_t tenant_post_position(const struct policy *p)
{
	for (size_t i = 0; i < p->n_nats; i++) {
		const struct policy_nat *n = &p->nats[i];
		if (n->tenant == POLICY_NONE)
			continue;
		if (is_source_nat(n))
			return i;
		if (nat_outside(n))
			return i;
	}
	return POLICY_NONE;
}

static int snat(const struct policy *p, size_t out, const struct policy_eval_packet *pkt,
		struct policy_eval_result *r)
{
	if (r->dnat.hairpin) {
		r->snat.masquerade = r->snat.hairpin = true;
		r->snat.nat = r->dnat.nat;
		return step(r, POLICY_EVAL_STEP_NOTE, NULL,
			    "source NAT (hairpin): masquerade behind the appliance's address on %s",
			    *r->oif ? r->oif : "the inside interface");
	}
	size_t where = tenant_post_position(p);
	const struct policy_nat *hit = NULL;
	for (size_t i = 0; !hit && i < p->n_nats; i++) {
		const struct policy_nat *n = &p->nats[i];
		if (i == where && r->tenant != POLICY_NONE) {
			for (size_t j = 0; !hit && j < p->n_nats; j++) {
				const struct policy_nat *m = &p->nats[j];
				if (m->tenant == r->tenant && is_source_nat(m) &&
				    snat_matches(p, m, out, pkt))
					hit = m;
			}
		}
		if (!hit && n->tenant == POLICY_NONE && is_source_nat(n) &&
		    snat_matches(p, n, out, pkt))
			hit = n;
	}
	if (!hit)
		return 0;
	snat_apply(hit, pkt, &r->snat);
	char a[INET6_ADDRSTRLEN];
	if (r->snat.masquerade)
		return step(r, POLICY_EVAL_STEP_NOTE, NULL,
			    "source NAT by %s: masquerade (the address of %s)", hit->id,
			    *r->oif ? r->oif : "the outgoing interface");
	addr_text(pkt->family, r->snat.addr, a, sizeof(a));
	if (r->snat.port)
		return step(r, POLICY_EVAL_STEP_NOTE, NULL, "source NAT by %s: to %s port %u",
			    hit->id, a, r->snat.port);
	return step(r, POLICY_EVAL_STEP_NOTE, NULL, "source NAT by %s: to %s", hit->id, a);
}

/* ---- the walk ---- */

static bool blocked(const struct policy_eval_opts *o, size_t tenant, int family,
		    const uint8_t *addr)
{
	for (size_t i = 0; i < o->n_blocked; i++) {
		const struct policy_eval_block *b = &o->blocked[i];
		if ((b->tenant == POLICY_NONE || b->tenant == tenant) &&
		    policy_eval_addr_in(&b->addr, family, addr))
			return true;
	}
	return false;
}

/* `no state` pass rules are exempted from conntrack before anything else
 * (raw prerouting, or raw output for `from self`): their interfaces (of the
 * `from` zones; the `to` zones for `from self`), addresses and service. */
static bool stateless_candidate(const struct policy_rule *r)
{
	return r->stateless && r->action == POLICY_PASS;
}

/* The `no state` pass rules from the cache (listed on first use), or NULL:
 * then every rule is tried. */
static const size_t *stateless_rules(const struct policy *p, struct policy_eval_cache *c, size_t *n)
{
	if (!c)
		return NULL;
	if (!c->stateless_done) {
		size_t m = 0;
		for (size_t i = 0; i < p->n_rules; i++)
			m += stateless_candidate(&p->rules[i]);
		if (!(c->stateless = malloc((m ? m : 1) * sizeof(*c->stateless))))
			return NULL;
		for (size_t i = 0; i < p->n_rules; i++)
			if (stateless_candidate(&p->rules[i]))
				c->stateless[c->n_stateless++] = i;
		c->stateless_done = true;
	}
	*n = c->n_stateless;
	return c->stateless;
}

/* `no state` pass rules are exempted from conntrack before anything else
 * (raw prerouting, or raw output for `from self`): their interfaces (of the
 * `from` zones; the `to` zones for `from self`), addresses and service. */
static const struct policy_rule *stateless_rule(const struct policy *p, struct policy_eval_cache *c,
						const struct policy_eval_packet *pkt,
						size_t from_zone, size_t to_zone, bool from_self)
{
	size_t n = p->n_rules;
	const size_t *list = stateless_rules(p, c, &n);
	for (size_t k = 0; k < n; k++) {
		const struct policy_rule *r = &p->rules[list ? list[k] : k];
		if (!stateless_candidate(r))
			continue;
		bool out = r->from.kind == POLICY_EP_SELF;
		if (out != from_self)
			continue;
		const struct policy_endpoint *ep = out ? &r->to : &r->from;
		size_t z = out ? to_zone : from_zone;
		if (ep->kind == POLICY_EP_MATCH && ep->n_zones && !policy_ep_names_zone(ep, z))
			continue;
		if (!rule_mismatch(p, NULL, r, pkt))
			return r;
	}
	return NULL;
}

static bool segment_source_ok(const struct policy_zone *z, const struct policy_eval_packet *pkt)
{
	if (addrs_have(&z->addrs, pkt->family, pkt->saddr))
		return true;
	if (pkt->family != AF_INET6)
		return false;
	static const uint8_t zero[16];
	if (!memcmp(pkt->saddr, zero, 16))
		return true;
	return pkt->saddr[0] == 0xfe && (pkt->saddr[1] & 0xc0) == 0x80; /* fe80::/10 */
}

/* The egress zone of a routed packet: the interface given, else the segment
 * holding the destination: the tenant's own first (its routing table), then
 * any (destinations its table does not hold fall through to the main
 * table, appliance/route.h). */
static size_t route(const struct policy *p, const struct policy_eval_opts *o,
		    const struct policy_eval_packet *pkt, size_t tenant,
		    char oif[POLICY_EVAL_IFNAMSIZ])
{
	if (*pkt->oif) {
		snprintf(oif, POLICY_EVAL_IFNAMSIZ, "%s", pkt->oif);
		return policy_eval_zone_of(p, pkt->oif);
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t z = 0; z < p->n_zones; z++) {
			const struct policy_zone *zone = &p->zones[z];
			if (!is_segment(p, z) || (pass == 0 && zone->tenant != tenant))
				continue;
			if (!addrs_have(&zone->addrs, pkt->family, pkt->daddr))
				continue;
			snprintf(oif, POLICY_EVAL_IFNAMSIZ, "%s",
				 zone->n_ifnames ? zone->ifnames[0] : "");
			return z;
		}
	for (size_t i = 0; i < o->n_routes; i++) {
		const struct policy_eval_route *rt = &o->routes[i];
		if (rt->addr.family && !policy_eval_addr_in(&rt->addr, pkt->family, pkt->daddr))
			continue;
		snprintf(oif, POLICY_EVAL_IFNAMSIZ, "%s", rt->ifname);
		return policy_eval_zone_of(p, rt->ifname);
	}
	*oif = '\0';
	return POLICY_NONE;
}

/* Two segments' interfaces may carry a new connection between them: same
 * tenant, or a pass rule naming both zones (a grant). */
static bool tenant_pair_allowed(const struct policy *p, size_t a, size_t b)
{
	if (p->zones[a].tenant == p->zones[b].tenant)
		return true;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		if (r->action == POLICY_PASS && policy_ep_names_zone(&r->from, a) &&
		    policy_ep_names_zone(&r->to, b))
			return true;
	}
	return false;
}

static int decide(struct policy_eval_result *r, enum policy_eval_verdict v, const char *builtin,
		  const char *why)
{
	r->verdict = v;
	snprintf(r->builtin, sizeof(r->builtin), "%s", builtin);
	return step(r, POLICY_EVAL_STEP_DECIDED, NULL, "%s: %s (%s)", policy_eval_verdict_name(v),
		    why, builtin);
}

static enum policy_eval_verdict action_verdict(enum policy_action a)
{
	return a == POLICY_PASS    ? POLICY_EVAL_PASS
	       : a == POLICY_BLOCK ? POLICY_EVAL_BLOCK
				   : POLICY_EVAL_REJECT;
}

/* The rules of pair (a, b) in first-match order, then its default. */
static size_t cache_slot(const struct policy *p, size_t slot)
{
	return slot == SLOT_UNZONED ? p->n_zones : slot == SLOT_SELF ? p->n_zones + 1 : slot;
}

/* The rules governing pair (a, b), from the cache (made on first use), or
 * NULL when there is no cache (or no memory): then every rule is tried. */
static struct pair_rules *pair_rules(const struct policy *p, struct policy_eval_cache *c, size_t a,
				     size_t b)
{
	if (!c || !c->pairs)
		return NULL;
	struct pair_rules *pr = &c->pairs[cache_slot(p, a) * c->n_slots + cache_slot(p, b)];
	if (pr->done)
		return pr;
	size_t n = 0;
	for (size_t i = 0; i < p->n_rules; i++)
		n += rule_governs(p, &p->rules[i], a, b);
	pr->rules = malloc((n ? n : 1) * sizeof(*pr->rules));
	if (!pr->rules)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++)
		if (rule_governs(p, &p->rules[i], a, b))
			pr->rules[pr->n++] = i;
	pr->done = true;
	return pr;
}

/* ---- the index of a pair's rules ---- */

static int pos_push(struct pos_list *l, size_t k)
{
	if (l->n && l->v[l->n - 1] == k)
		return 0; /* a rule with several terms in the same list */
	if (POLICY_GROW(l->v, l->cap, l->n, 4))
		return -ENOMEM;
	l->v[l->n++] = k;
	return 0;
}

static struct proto_index *proto_find(const struct pair_index *x, uint8_t l4proto)
{
	for (size_t i = 0; i < x->n_protos; i++)
		if (x->protos[i].l4proto == l4proto)
			return &x->protos[i];
	return NULL;
}

static struct proto_index *proto_get(struct pair_index *x, uint8_t l4proto)
{
	struct proto_index *pi = proto_find(x, l4proto);
	if (pi)
		return pi;
	pi = realloc(x->protos, (x->n_protos + 1) * sizeof(*pi));
	if (!pi)
		return NULL;
	x->protos = pi;
	pi = &x->protos[x->n_protos++];
	memset(pi, 0, sizeof(*pi));
	pi->l4proto = l4proto;
	return pi;
}

static bool term_wide(const struct policy_service_term *t)
{
	if (!t->n_dports)
		return true;
	for (size_t i = 0; i < t->n_dports; i++)
		if (t->dports[i].hi - t->dports[i].lo >= EVAL_PORT_SPAN_MAX)
			return true;
	return false;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The first segment starting at or below port, or n_segs. */
static size_t seg_find(const struct proto_index *pi, uint16_t port)
{
	size_t lo = 0, hi = pi->n_segs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pi->segs[mid].lo <= port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 || port > pi->segs[lo - 1].hi ? pi->n_segs : lo - 1;
}

/* Calls fn for every narrow destination port range of protocol `l4proto`
 * among the pair's rules (k: the rule's position in the pair), in rule
 * order; stops at the first nonzero return. */
static int each_narrow_range(const struct policy *p, const struct pair_rules *pr, uint8_t l4proto,
			     int (*fn)(void *ctx, size_t k, const struct policy_port_range *r),
			     void *ctx)
{
	for (size_t k = 0; k < pr->n; k++) {
		const struct policy_rule *rule = &p->rules[pr->rules[k]];
		for (size_t i = 0; i < rule->n_services; i++) {
			const struct policy_service_term *t = &rule->services[i];
			if (t->l4proto != l4proto || term_wide(t))
				continue;
			for (size_t j = 0; j < t->n_dports; j++) {
				int rc = fn(ctx, k, &t->dports[j]);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

/* The segment bounds: each range's first port and the one after its last. */
struct bounds {
	uint32_t *v;
	size_t n, cap;
};

static int bounds_add(void *ctx, size_t k, const struct policy_port_range *r)
{
	(void)k;
	struct bounds *b = ctx;
	if (POLICY_RESERVE(b->v, b->cap, b->n + 2, 16))
		return -ENOMEM;
	b->v[b->n++] = r->lo;
	b->v[b->n++] = (uint32_t)r->hi + 1;
	return 0;
}

/* Lists rule k under every segment its range covers. */
static int segs_mark(void *ctx, size_t k, const struct policy_port_range *r)
{
	struct proto_index *pi = ctx;
	int rc = 0;
	for (size_t s = seg_find(pi, r->lo); !rc && s < pi->n_segs && pi->segs[s].lo <= r->hi; s++)
		rc = pos_push(&pi->segs[s].rules, k);
	return rc;
}

/* Cuts the narrow port ranges of one protocol into elementary segments and
 * lists under each the rules covering it, in rule order. */
static int proto_segments(const struct policy *p, const struct pair_rules *pr,
			  struct proto_index *pi)
{
	struct bounds b = { 0 };
	int rc = each_narrow_range(p, pr, pi->l4proto, bounds_add, &b);
	if (rc || b.n == 0) {
		free(b.v);
		return rc;
	}
	qsort(b.v, b.n, sizeof(*b.v), u32_cmp);
	size_t u = 1;
	for (size_t i = 1; i < b.n; i++)
		if (b.v[i] != b.v[u - 1])
			b.v[u++] = b.v[i];
	pi->segs = calloc(u, sizeof(*pi->segs));
	if (!pi->segs) {
		free(b.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < u; i++) {
		pi->segs[i].lo = (uint16_t)b.v[i];
		pi->segs[i].hi = (uint16_t)(b.v[i + 1] - 1);
	}
	pi->n_segs = u - 1;
	free(b.v);
	return each_narrow_range(p, pr, pi->l4proto, segs_mark, pi);
}

static struct pair_index *pair_index_build(const struct policy *p, const struct pair_rules *pr)
{
	struct pair_index *x = calloc(1, sizeof(*x));
	int rc = x ? 0 : -ENOMEM;
	for (size_t k = 0; !rc && k < pr->n; k++) {
		const struct policy_rule *rule = &p->rules[pr->rules[k]];
		if (!rule->n_services)
			rc = pos_push(&x->any, k);
		for (size_t i = 0; !rc && i < rule->n_services; i++) {
			const struct policy_service_term *t = &rule->services[i];
			struct proto_index *pi = proto_get(x, t->l4proto);
			if (!pi)
				rc = -ENOMEM;
			else if (term_wide(t))
				rc = pos_push(&pi->wide, k);
		}
	}
	for (size_t i = 0; !rc && i < x->n_protos; i++)
		rc = proto_segments(p, pr, &x->protos[i]);
	if (rc) {
		pair_index_free(x);
		return NULL;
	}
	return x;
}

/* The next position among up to three ascending lists (SIZE_MAX: none
 * left), advancing every list that holds it. */
static size_t merge_next(const struct pos_list *l[3], size_t at[3])
{
	size_t next = SIZE_MAX;
	for (int i = 0; i < 3; i++)
		if (l[i] && at[i] < l[i]->n && l[i]->v[at[i]] < next)
			next = l[i]->v[at[i]];
	for (int i = 0; next != SIZE_MAX && i < 3; i++)
		if (l[i] && at[i] < l[i]->n && l[i]->v[at[i]] == next)
			at[i]++;
	return next;
}

/* Rule `rule` against the packet: 1 when it decided, 0 when not, or -ENOMEM. */
static int rule_try(const struct policy *p, const struct policy_eval_opts *o,
		    const struct policy_eval_packet *pkt, const struct policy_rule *rule,
		    struct policy_eval_result *r)
{
	const char *why = rule_mismatch(p, o->cache, rule, pkt);
	if (why)
		return step_miss(r, rule, why);
	r->rule = rule;
	r->limited = rule->has_limit;
	r->logged = rule->log;
	r->verdict = action_verdict(rule->action);
	if (rule->action == POLICY_PASS && rule->n_inspect && !rule->stateless)
		r->verdict = POLICY_EVAL_INSPECT;
	int rc = step(r, POLICY_EVAL_STEP_DECIDED, rule, "%s: %s%s", rule->id,
		      policy_eval_verdict_name(r->verdict),
		      rule->has_limit ? " while under its limit, else the next rule" : "");
	return rc ? rc : 1;
}

/* The rules of the pair that can match the packet, in order: through the
 * index when there is no path to record (a path lists every rule
 * consulted), else every rule of the pair. */
static int pair_walk(const struct policy *p, const struct policy_eval_opts *o,
		     const struct policy_eval_packet *pkt, size_t a, size_t b,
		     struct policy_eval_result *r)
{
	struct pair_rules *pr = pair_rules(p, o->cache, a, b);
	if (pr && r->no_path && !pr->index)
		pr->index = pair_index_build(p, pr);
	int rc = 0;
	if (pr && r->no_path && pr->index) {
		const struct pos_list *l[3] = { &pr->index->any, NULL, NULL };
		size_t at[3] = { 0, 0, 0 };
		const struct proto_index *pi = proto_find(pr->index, pkt->l4proto);
		if (pi) {
			l[1] = &pi->wide;
			size_t s = seg_find(pi, pkt->dport);
			l[2] = s < pi->n_segs ? &pi->segs[s].rules : NULL;
		}
		for (size_t k; !rc && (k = merge_next(l, at)) != SIZE_MAX;)
			rc = rule_try(p, o, pkt, &p->rules[pr->rules[k]], r);
		return rc;
	}
	size_t n = pr ? pr->n : p->n_rules;
	for (size_t k = 0; !rc && k < n; k++) {
		const struct policy_rule *rule = &p->rules[pr ? pr->rules[k] : k];
		if (!pr && !rule_governs(p, rule, a, b))
			continue;
		rc = rule_try(p, o, pkt, rule, r);
	}
	return rc;
}

static int filter_pair(const struct policy *p, const struct policy_eval_opts *o,
		       const struct policy_eval_packet *pkt, size_t a, size_t b,
		       struct policy_eval_result *r)
{
	int rc = step(r, POLICY_EVAL_STEP_NOTE, NULL, "zone pair %s -> %s", slot_name(p, a),
		      slot_name(p, b));
	if (!rc)
		rc = pair_walk(p, o, pkt, a, b, r);
	if (rc)
		return rc < 0 ? rc : 0;
	enum policy_action action;
	const struct policy_default *d = pair_default(p, a, b, &action);
	r->def = d;
	r->verdict = action_verdict(action);
	if (d) {
		r->logged = d->log;
		return step(r, POLICY_EVAL_STEP_DECIDED, NULL, "default:%s:%u: %s", d->loc.file,
			    d->loc.line, policy_eval_verdict_name(r->verdict));
	}
	snprintf(r->builtin, sizeof(r->builtin), "%s",
		 a == SLOT_SELF ? "output:accept" : "default:builtin");
	return step(r, POLICY_EVAL_STEP_DECIDED, NULL, "%s: %s (%s)", r->builtin,
		    policy_eval_verdict_name(r->verdict),
		    a == SLOT_SELF ? "the appliance's own traffic" : "the global default");
}

static bool any_rule_from_self(const struct policy *p, struct policy_eval_cache *c)
{
	for (size_t b = 0; c && c->pairs && b < p->n_zones + 1; b++) {
		const struct pair_rules *pr =
		    pair_rules(p, c, SLOT_SELF, b < p->n_zones ? b : SLOT_UNZONED);
		if (!pr)
			break;
		if (pr->n)
			return true;
		if (b == p->n_zones)
			return false;
	}
	for (size_t i = 0; i < p->n_rules; i++)
		for (size_t b = 0; b < p->n_zones + 1; b++) {
			size_t slot = b < p->n_zones ? b : SLOT_UNZONED;
			if (rule_governs(p, &p->rules[i], SLOT_SELF, slot))
				return true;
		}
	return false;
}

/* Filter hooks: input (to the appliance), output (from it), forward. */
static int filter(const struct policy *p, const struct policy_eval_opts *o,
		  const struct policy_eval_packet *pkt, size_t a, size_t b,
		  struct policy_eval_result *r)
{
	bool input = b == SLOT_SELF, output = a == SLOT_SELF;
	if (output && !any_rule_from_self(p, o->cache))
		return decide(r, POLICY_EVAL_PASS, "output:accept",
			      "the appliance's own traffic, no `from self` rule");
	if (!input && !output && is_segment(p, a) && is_segment(p, b) &&
	    pkt->ct != POLICY_EVAL_CT_ESTABLISHED && pkt->ct != POLICY_EVAL_CT_RELATED &&
	    !tenant_pair_allowed(p, a, b))
		return decide(r, POLICY_EVAL_BLOCK, "builtin:inter-tenant",
			      "a new connection between two tenants that no pass rule names");
	if (!output && blocked(o, r->tenant, pkt->family, pkt->saddr))
		return decide(r, POLICY_EVAL_BLOCK, "builtin:blocked",
			      "the source is on the block list");
	if (!input && !output && blocked(o, r->tenant, pkt->family, pkt->daddr))
		return decide(r, POLICY_EVAL_BLOCK, "builtin:blocked",
			      "the destination is on the block list");
	if (pkt->ct == POLICY_EVAL_CT_INVALID)
		return decide(r, POLICY_EVAL_BLOCK, "builtin:ct-invalid",
			      "conntrack calls the packet invalid");
	if (pkt->ct == POLICY_EVAL_CT_ESTABLISHED || pkt->ct == POLICY_EVAL_CT_RELATED)
		return decide(r, POLICY_EVAL_PASS, "builtin:ct-state",
			      pkt->ct == POLICY_EVAL_CT_RELATED
				  ? "related to an accepted connection"
				  : "part of an accepted connection");
	if (input || output) {
		const char *lo = input ? pkt->iif : pkt->oif;
		if (!strcmp(lo, "lo"))
			return decide(r, POLICY_EVAL_PASS, "builtin:loopback", "loopback");
		if (pkt->l4proto == IPPROTO_ICMPV6 && pkt->icmp_type >= ICMPV6_ND_FIRST &&
		    pkt->icmp_type <= ICMPV6_ND_LAST)
			return decide(r, POLICY_EVAL_PASS, "builtin:ipv6-nd",
				      "IPv6 neighbour discovery");
	}
	if (input && pkt->family == AF_INET6 && pkt->daddr[0] == 0xfe &&
	    (pkt->daddr[1] & 0xc0) == 0x80 && pkt->l4proto == IPPROTO_UDP &&
	    pkt->dport == DHCPV6_CLIENT_PORT)
		return decide(r, POLICY_EVAL_PASS, "builtin:dhcpv6-client",
			      "a reply to the appliance's DHCPv6 client");
	return filter_pair(p, o, pkt, a, b, r);
}

static size_t slot_of(size_t zone)
{
	return zone == POLICY_NONE ? SLOT_UNZONED : zone;
}

int policy_eval(const struct policy *p, const struct policy_eval_packet *in,
		const struct policy_eval_opts *o, struct policy_eval_result *r)
{
	struct policy_eval_opts defaults;
	if (!o) {
		policy_eval_opts_default(&defaults);
		o = &defaults;
	}
	memset(r, 0, sizeof(*r));
	r->no_path = !o->path;
	r->tenant = POLICY_NONE;
	r->from_zone = r->to_zone = POLICY_NONE;
	struct policy_eval_packet pkt = *in;
	r->ct = pkt.ct;
	r->from_self = !*pkt.iif;
	r->to_self = pkt.to_self;
	r->from_zone = policy_eval_zone_of(p, pkt.iif);
	int rc;
	if (!r->from_self && (rc = step(r, POLICY_EVAL_STEP_NOTE, NULL, "in %s: zone %s", pkt.iif,
					slot_name(p, slot_of(r->from_zone)))))
		return rc;

	/* `no state`: the exemption comes before conntrack */
	size_t early_to = *pkt.oif ? policy_eval_zone_of(p, pkt.oif) : POLICY_NONE;
	const struct policy_rule *nt =
	    stateless_rule(p, o->cache, &pkt, r->from_zone, early_to, r->from_self);
	if (nt) {
		pkt.ct = POLICY_EVAL_CT_UNTRACKED;
		if ((rc = step(r, POLICY_EVAL_STEP_NOTE, nt, "not tracked: `no state` of %s",
			       nt->id)))
			return rc;
	}

	/* tenant: the segment's, else the connection's */
	if (is_segment(p, r->from_zone)) {
		const struct policy_zone *z = &p->zones[r->from_zone];
		r->tenant = z->tenant;
		r->ct_zone = p->tenants[z->tenant].ct_zone;
		if ((rc = step(r, POLICY_EVAL_STEP_NOTE, NULL, "tenant %s, conntrack zone %u",
			       p->tenants[z->tenant].name, r->ct_zone)))
			return rc;
		if (!segment_source_ok(z, &pkt)) {
			char a[INET6_ADDRSTRLEN];
			addr_text(pkt.family, pkt.saddr, a, sizeof(a));
			r->verdict = POLICY_EVAL_BLOCK;
			snprintf(r->builtin, sizeof(r->builtin), "antispoof:%s", z->name);
			return step(
			    r, POLICY_EVAL_STEP_DECIDED, NULL,
			    "block: source %s is not an address of segment %s (antispoof:%s)", a,
			    z->name, z->name);
		}
		if ((rc = step(r, POLICY_EVAL_STEP_NOTE, NULL,
			       "anti-spoofing: source in segment %s", z->name)))
			return rc;
	} else if (pkt.ct_tenant != POLICY_NONE &&
		   (pkt.ct != POLICY_EVAL_CT_NEW || pkt.nat_bound)) {
		r->tenant = pkt.ct_tenant;
	}

	if (pkt.ct == POLICY_EVAL_CT_NEW && !pkt.nat_bound &&
	    (rc = dnat(p, r->from_zone, r->from_self, &pkt, r)))
		return rc;
	/* a forward to the appliance's own address goes on to its target */
	if (r->dnat.nat)
		pkt.to_self = r->to_self = false;

	size_t to_zone = POLICY_NONE;
	if (!pkt.to_self) {
		to_zone = route(p, o, &pkt, r->tenant, r->oif);
		r->to_zone = to_zone;
		if ((rc = step(r, POLICY_EVAL_STEP_NOTE, NULL, "out %s: zone %s",
			       *r->oif ? r->oif : "(not given)", slot_name(p, slot_of(to_zone)))))
			return rc;
	}
	size_t a = r->from_self ? SLOT_SELF : slot_of(r->from_zone);
	size_t b = pkt.to_self ? SLOT_SELF : slot_of(to_zone);
	r->ct = pkt.ct;
	if ((rc = step(r, POLICY_EVAL_STEP_NOTE, NULL, "conntrack: %s",
		       policy_eval_ct_name(pkt.ct))))
		return rc;
	if ((rc = filter(p, o, &pkt, a, b, r)))
		return rc;
	bool passes = r->verdict == POLICY_EVAL_PASS || r->verdict == POLICY_EVAL_INSPECT;
	if (!passes) {
		memset(&r->dnat, 0, sizeof(r->dnat));
		return 0;
	}
	if (pkt.ct == POLICY_EVAL_CT_NEW && !pkt.nat_bound && !pkt.to_self)
		return snat(p, to_zone, &pkt, r);
	return 0;
}

/* ---- source text ---- */

/* Where loc points in the text the diagnostics keep of its file (*end: the
 * end of that text), or NULL when the file is not kept. */
static const char *source_at(const struct policy_diags *d, const struct policy_loc *loc,
			     const char **end)
{
	const struct policy_source_file *f = NULL;
	for (size_t i = 0; i < d->n_files && !f; i++)
		if (d->files[i].path == loc->file || !strcmp(d->files[i].path, loc->file))
			f = &d->files[i];
	if (!f || !f->text)
		return NULL;
	const char *s = f->text;
	*end = f->text + f->len;
	for (uint32_t line = 1; line < loc->line && s < *end; s++)
		if (*s == '\n')
			line++;
	if (loc->col > 1)
		s += loc->col - 1 < (size_t)(*end - s) ? loc->col - 1 : (size_t)(*end - s);
	return s;
}

void policy_eval_source(const struct policy_diags *d, const struct policy_loc *loc, char *buf,
			size_t size)
{
	*buf = '\0';
	if (!d || !loc->file || !loc->line || !size)
		return;
	const char *end, *s = source_at(d, loc, &end);
	if (!s)
		return;
	size_t n = 0;
	bool space = false;
	for (; s < end && *s != '\n' && *s != '#' && n + 1 < size; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *s;
	}
	buf[n] = '\0';
}

/* `len` bytes of text from s (at most to end) on one line: comments left
 * out, every run of blanks and line ends one blank (quoted strings kept as
 * written), "..." when cut. */
static void span_text(const char *s, const char *end, size_t len, char *buf, size_t size)
{
	size_t n = 0;
	bool space = false, quoted = false;

	if (len < (size_t)(end - s))
		end = s + len;
	for (; s < end; s++) {
		if (!quoted && *s == '#') {
			while (s + 1 < end && s[1] != '\n')
				s++;
			space = n > 0;
			continue;
		}
		if (!quoted && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
			space = n > 0;
			continue;
		}
		if (*s == '"')
			quoted = !quoted;
		if (n + (space ? 2 : 1) >= size - 3) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (space)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *s;
	}
	buf[n] = '\0';
}

void policy_eval_source_span(const struct policy_diags *d, const struct policy_loc *loc, size_t len,
			     char *buf, size_t size)
{
	if (size)
		*buf = '\0';
	if (!len) {
		policy_eval_source(d, loc, buf, size);
		return;
	}
	if (!d || !loc->file || !loc->line || size < 4)
		return;
	const char *end, *s = source_at(d, loc, &end);
	if (s)
		span_text(s, end, len, buf, size);
}

/* ---- source lines, indexed ---- */

struct policy_eval_lines {
	const struct policy_diags *d;
	size_t **starts; /* per file: the offset of each line, from line 1 */
	size_t *n;
};

struct policy_eval_lines *policy_eval_lines_new(const struct policy_diags *d)
{
	struct policy_eval_lines *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->d = d;
	size_t files = d->n_files ? d->n_files : 1;
	l->starts = calloc(files, sizeof(*l->starts));
	l->n = calloc(files, sizeof(*l->n));
	if (!l->starts || !l->n) {
		policy_eval_lines_free(l);
		return NULL;
	}
	for (size_t f = 0; f < d->n_files; f++) {
		const struct policy_source_file *sf = &d->files[f];
		/* memchr: a policy of 10,000 rules is megabytes of text */
		const char *end = sf->text + sf->len, *nl;
		size_t lines = 1;
		for (const char *at = sf->text; (nl = memchr(at, '\n', (size_t)(end - at)));
		     at = nl + 1)
			lines++;
		if (!(l->starts[f] = malloc(lines * sizeof(size_t)))) {
			policy_eval_lines_free(l);
			return NULL;
		}
		l->starts[f][l->n[f]++] = 0;
		for (const char *at = sf->text; (nl = memchr(at, '\n', (size_t)(end - at)));
		     at = nl + 1)
			l->starts[f][l->n[f]++] = (size_t)(nl + 1 - sf->text);
	}
	return l;
}

void policy_eval_lines_free(struct policy_eval_lines *l)
{
	if (!l)
		return;
	for (size_t f = 0; l->starts && f < l->d->n_files; f++)
		free(l->starts[f]);
	free(l->starts);
	free(l->n);
	free(l);
}

void policy_eval_lines_source_span(const struct policy_eval_lines *l, const struct policy_loc *loc,
				   size_t len, char *buf, size_t size)
{
	if (!len) {
		policy_eval_lines_source(l, loc, buf, size);
		return;
	}
	if (size)
		*buf = '\0';
	if (!l || size < 4)
		return;
	for (size_t f = 0; loc->file && f < l->d->n_files; f++) {
		const struct policy_source_file *sf = &l->d->files[f];
		if (sf->path != loc->file && strcmp(sf->path, loc->file))
			continue;
		if (!loc->line || loc->line > l->n[f] || !sf->text)
			return;
		const char *s = sf->text + l->starts[f][loc->line - 1], *end = sf->text + sf->len;
		if (loc->col > 1)
			s += loc->col - 1 < (size_t)(end - s) ? loc->col - 1 : (size_t)(end - s);
		span_text(s, end, len, buf, size);
		return;
	}
}

void policy_eval_lines_source(const struct policy_eval_lines *l, const struct policy_loc *loc,
			      char *buf, size_t size)
{
	if (!l) {
		policy_eval_source(NULL, loc, buf, size);
		return;
	}
	*buf = '\0';
	for (size_t f = 0; loc->file && f < l->d->n_files; f++) {
		const struct policy_source_file *sf = &l->d->files[f];
		if (sf->path != loc->file && strcmp(sf->path, loc->file))
			continue;
		if (!loc->line || loc->line > l->n[f])
			return;
		/* the text from the start of the line, as policy_eval_source reads it */
		struct policy_loc at = *loc;
		at.line = 1;
		struct policy_source_file one = { .path = sf->path,
						  .text = sf->text + l->starts[f][loc->line - 1],
						  .len = sf->len - l->starts[f][loc->line - 1] };
		struct policy_diags tmp = { .files = &one, .n_files = 1 };
		policy_eval_source(&tmp, &at, buf, size);
		return;
	}
}
