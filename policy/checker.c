/* The policy checker (see policy/checker.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/grow.h"
#include "policy/hash.h"
#include "policy/checker.h"
#include "policy/limits.h"
#include "policy/lower.h"
#include "policy/tenant.h"
#include "policy/parser.h"
#include "policy/shadow.h"
#include "policy/suggest.h"

/* Name spaces: a zone and a service may share a name ("web"); defines are
 * written with '$' and have their own. */
enum ns { NS_ZONE, NS_SERVICE, NS_DEFINE, NS_TENANT };

struct sym {
	const char *name; /* NULL: empty slot */
	size_t scope;
	enum ns ns;
	size_t index; /* into the ast array of that kind (zones: the model zone) */
	struct policy_loc loc;
};

struct symtab {
	struct sym *slots;
	size_t cap, n;
};

/* Resolution state of defines and services (they may refer to each other). */
enum resolve_state { UNRESOLVED, RESOLVING, RESOLVED, FAILED /* reported once */ };

struct resolved_service {
	enum resolve_state state;
	struct policy_service_term *terms;
	size_t n_terms;
};

struct resolved_define {
	enum resolve_state state;
	struct policy_addr_list addrs;
};

struct checker {
	const struct policy_ast *ast;
	struct policy *p;
	struct policy_diags *d;
	struct symtab syms;
	struct resolved_define *defines;
	struct resolved_service *services;
	size_t *vpn_zone; /* ast vpn index -> model zone */
	bool oom;
	bool *rule_sound;   /* model rule index -> built without an error */
	unsigned ref_depth; /* defines or services being resolved, one inside the other */
	bool ref_too_deep;  /* POLICY_REF_DEPTH_MAX was reported (once is enough) */
};

#define RULE_HASH_MASK 0xffffffu /* the id's 6 hex digits */

/* --- small containers ------------------------------------------------ */

/* Arrays of the model carry no capacity: they grow to the next power of two
 * whenever the count reaches one. */
#define PUSH(arr, n) ((__typeof__(arr))policy_push_pow2((void **)&(arr), &(n), sizeof(*(arr)), 1))

static int nomem(struct checker *c)
{
	if (!c->oom)
		policy_error(c->d, NULL, "out of memory");
	c->oom = true;
	return -1;
}

static uint32_t sym_hash(const char *name, size_t scope, enum ns ns)
{
	uint32_t h = POLICY_FNV32_OFFSET_BASIS;
	for (const char *s = name; *s; s++)
		h = policy_fnv32_byte(h, (unsigned char)*s);
	/* scope and ns go in as whole words, one FNV step each */
	h = (h ^ (uint32_t)scope) * POLICY_FNV32_PRIME;
	return (h ^ (uint32_t)ns) * POLICY_FNV32_PRIME;
}

static struct sym *sym_find(const struct symtab *t, const char *name, size_t scope, enum ns ns)
{
	if (!t->cap)
		return NULL;
	for (size_t i = sym_hash(name, scope, ns) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct sym *s = &t->slots[i];
		if (!s->name)
			return NULL;
		if (s->scope == scope && s->ns == ns && !strcmp(s->name, name))
			return s;
	}
}

static int sym_grow(struct symtab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	struct sym *slots = calloc(ncap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct sym *s = &t->slots[i];
		if (!s->name)
			continue;
		size_t j = sym_hash(s->name, s->scope, s->ns) & (ncap - 1);
		while (slots[j].name)
			j = (j + 1) & (ncap - 1);
		slots[j] = *s;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = ncap;
	return 0;
}

/* Declares a name; reports a duplicate with a note at the first one. */
static int declare(struct checker *c, const char *name, size_t scope, enum ns ns, size_t index,
		   const struct policy_loc *loc, const char *what)
{
	if (!name)
		return -1;
	struct sym *old = sym_find(&c->syms, name, scope, ns);
	if (old) {
		policy_error(c->d, loc, "%s '%s' is already defined", what, name);
		policy_note(c->d, &old->loc, "'%s' was first defined here", name);
		return -1;
	}
	if ((c->syms.n + 1) * 2 > c->syms.cap && sym_grow(&c->syms))
		return nomem(c);
	size_t i = sym_hash(name, scope, ns) & (c->syms.cap - 1);
	while (c->syms.slots[i].name)
		i = (i + 1) & (c->syms.cap - 1);
	c->syms.slots[i] = (struct sym){ name, scope, ns, index, *loc };
	c->syms.n++;
	return 0;
}

/* Looks a name up in `scope`, then globally. Zone names may be qualified
 * "TENANT.SEGMENT". */
static const struct sym *lookup(const struct checker *c, const char *name, size_t scope, enum ns ns)
{
	const char *dot = ns == NS_ZONE ? strchr(name, '.') : NULL;
	if (dot) {
		char tenant[256];
		size_t n = (size_t)(dot - name);
		if (n >= sizeof(tenant))
			return NULL;
		memcpy(tenant, name, n);
		tenant[n] = '\0';
		const struct sym *t = sym_find(&c->syms, tenant, POLICY_NONE, NS_TENANT);
		return t ? sym_find(&c->syms, dot + 1, t->index, NS_ZONE) : NULL;
	}
	const struct sym *s = sym_find(&c->syms, name, scope, ns);
	if (!s && scope != POLICY_NONE)
		s = sym_find(&c->syms, name, POLICY_NONE, ns);
	return s;
}

static int addr_push(struct checker *c, struct policy_addr_list *l, const struct policy_addr *a)
{
	struct policy_addr *slot = PUSH(l->v, l->n);
	if (!slot)
		return nomem(c);
	*slot = *a;
	return 0;
}

/* All of `from` at once (a large define used by many rules): one
 * reallocation to the capacity push() would have reached, one copy. */
static int addr_append(struct checker *c, struct policy_addr_list *l,
		       const struct policy_addr_list *from)
{
	if (!from->n)
		return 0;
	size_t n = l->n + from->n, cap = 1;
	while (cap < n && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (n < l->n || cap < n || cap > SIZE_MAX / sizeof(*l->v))
		return nomem(c);
	struct policy_addr *v = realloc(l->v, cap * sizeof(*v));
	if (!v)
		return nomem(c);
	memcpy(v + l->n, from->v, from->n * sizeof(*v));
	l->v = v;
	l->n = n;
	return 0;
}

static int term_copy(struct checker *c, struct policy_service_term *dst,
		     const struct policy_service_term *src)
{
	*dst = *src;
	dst->dports = NULL;
	dst->icmp_types = NULL;
	if (src->n_dports) {
		dst->dports = malloc(src->n_dports * sizeof(*dst->dports));
		if (!dst->dports)
			return nomem(c);
		memcpy(dst->dports, src->dports, src->n_dports * sizeof(*dst->dports));
	}
	if (src->n_icmp_types) {
		dst->icmp_types = malloc(src->n_icmp_types);
		if (!dst->icmp_types) {
			free(dst->dports);
			dst->dports = NULL;
			return nomem(c);
		}
		memcpy(dst->icmp_types, src->icmp_types, src->n_icmp_types);
	}
	return 0;
}

static int terms_append(struct checker *c, struct policy_service_term **v, size_t *n,
			const struct policy_service_term *from, size_t n_from)
{
	for (size_t i = 0; i < n_from; i++) {
		struct policy_service_term *slot = PUSH(*v, *n);
		if (!slot || term_copy(c, slot, &from[i])) {
			if (slot)
				(*n)--;
			return nomem(c);
		}
	}
	return 0;
}

static void terms_free(struct policy_service_term *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		policy_service_term_free(&v[i]);
	free(v);
}

/* --- declarations ---------------------------------------------------- */

static char *zone_model_name(const struct checker *c, const char *name, size_t scope)
{
	char *s = NULL;
	if (scope == POLICY_NONE)
		return strdup(name);
	if (asprintf(&s, "%s.%s", c->ast->tenants[scope].name, name) < 0)
		return NULL;
	return s;
}

static int add_model_zone(struct checker *c, const char *name, size_t scope,
			  const struct policy_loc *loc, size_t *index)
{
	struct policy_zone *z = PUSH(c->p->zones, c->p->n_zones);
	if (!z)
		return nomem(c);
	z->tenant = scope;
	z->loc = *loc;
	z->name = zone_model_name(c, name, scope);
	*index = c->p->n_zones - 1;
	return z->name ? 0 : nomem(c);
}

static int declare_tenants(struct checker *c)
{
	for (size_t i = 0; i < c->ast->n_tenants; i++) {
		const struct policy_ast_tenant *t = &c->ast->tenants[i];
		struct policy_tenant *m = PUSH(c->p->tenants, c->p->n_tenants);
		if (!m)
			return nomem(c);
		m->name = strdup(t->name ? t->name : "");
		if (!m->name)
			return nomem(c);
		/* ct zone 0 is the kernel's default zone, so tenants count from 1 */
		m->ct_zone = (uint16_t)(i + 1);
		m->id = (uint32_t)(i + 1);
		m->loc = t->loc;
		declare(c, t->name, POLICY_NONE, NS_TENANT, i, &t->loc, "tenant");
	}
	return c->oom ? -1 : 0;
}

static int declare_zones(struct checker *c)
{
	for (size_t i = 0; i < c->ast->n_zones; i++) {
		const struct policy_ast_zone *z = &c->ast->zones[i];
		size_t index;
		if (!z->name)
			continue;
		if (add_model_zone(c, z->name, z->scope, &z->loc, &index))
			return -1;
		declare(c, z->name, z->scope, NS_ZONE, index, &z->loc,
			z->is_segment ? "segment" : "zone");
		if (z->broken) /* the parser reported it; the rest would be noise */
			continue;
		if (z->is_segment && !z->addrs.present)
			policy_error(c->d, &z->loc, "segment '%s' has no 'address'", z->name);
		if (!z->n_ifnames)
			policy_error(c->d, &z->loc, "%s '%s' has no 'interface'",
				     z->is_segment ? "segment" : "zone", z->name);
	}
	c->vpn_zone = calloc(c->ast->n_vpns + 1, sizeof(*c->vpn_zone));
	if (!c->vpn_zone)
		return nomem(c);
	for (size_t i = 0; i < c->ast->n_vpns; i++) {
		const struct policy_ast_vpn *v = &c->ast->vpns[i];
		c->vpn_zone[i] = POLICY_NONE;
		if (!v->ifname)
			continue;
		if (add_model_zone(c, v->ifname, v->scope, &v->loc, &c->vpn_zone[i]))
			return -1;
		c->p->zones[c->vpn_zone[i]].is_vpn = true;
		declare(c, v->ifname, v->scope, NS_ZONE, c->vpn_zone[i], &v->loc, "zone");
	}
	return c->oom ? -1 : 0;
}

static int declare_objects(struct checker *c)
{
	for (size_t i = 0; i < c->ast->n_defines; i++) {
		const struct policy_ast_define *df = &c->ast->defines[i];
		declare(c, df->name, df->scope, NS_DEFINE, i, &df->loc, "define");
	}
	for (size_t i = 0; i < c->ast->n_services; i++) {
		const struct policy_ast_service *s = &c->ast->services[i];
		declare(c, s->name, s->scope, NS_SERVICE, i, &s->loc, "service");
	}
	return c->oom ? -1 : 0;
}

/* --- defines and addresses ------------------------------------------- */

static const struct policy_addr_list *resolve_define(struct checker *c, const char *name,
						     size_t scope, const struct policy_loc *loc);

/* Addresses and $defines of `ep` appended to `out`. Names (zones) are left
 * to the caller: they are not addresses. */
static int resolve_addrs(struct checker *c, size_t scope, const struct policy_ast_ep *ep,
			 struct policy_addr_list *out)
{
	int r = 0;
	for (size_t i = 0; i < ep->n; i++) {
		const struct policy_ast_ep_item *it = &ep->v[i];
		if (it->kind == POLICY_AST_EP_ADDR) {
			if (addr_push(c, out, &it->addr))
				return -1;
		} else if (it->kind == POLICY_AST_EP_VAR) {
			const struct policy_addr_list *l =
			    resolve_define(c, it->name, scope, &it->loc);
			if (!l)
				r = -1;
			else if (addr_append(c, out, l))
				return -1;
		}
	}
	return r;
}

static int addr_cmp(const void *a, const void *b)
{
	const struct policy_addr *x = a, *y = b;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->lo, y->lo, sizeof(x->lo));
}

static bool addrs_sorted(const struct policy_addr_list *l)
{
	for (size_t i = 1; i < l->n; i++)
		if (addr_cmp(&l->v[i - 1], &l->v[i]) > 0)
			return false;
	return true;
}

static const struct policy_addr_list *resolve_define(struct checker *c, const char *name,
						     size_t scope, const struct policy_loc *loc)
{
	const struct sym *s = lookup(c, name, scope, NS_DEFINE);
	if (!s) {
		policy_error(c->d, loc, "'$%s' is not defined", name);
		policy_suggest_name(c->d, c->ast, POLICY_SUGGEST_DEFINE, name, scope);
		return NULL;
	}
	struct resolved_define *rd = &c->defines[s->index];
	const struct policy_ast_define *df = &c->ast->defines[s->index];
	if (rd->state == RESOLVED)
		return &rd->addrs;
	if (rd->state == FAILED)
		return NULL;
	if (rd->state == RESOLVING) {
		policy_error(c->d, loc, "define '%s' refers to itself", name);
		return NULL;
	}
	if (c->ref_depth >= POLICY_REF_DEPTH_MAX) {
		if (!c->ref_too_deep)
			policy_error(c->d, loc, "defines refer to each other more than %d deep",
				     POLICY_REF_DEPTH_MAX);
		c->ref_too_deep = true;
		return NULL;
	}
	rd->state = RESOLVING;
	c->ref_depth++;
	int r = resolve_addrs(c, df->scope, &df->value, &rd->addrs);
	c->ref_depth--;
	/* Sorted once here, so that the many rules that may use a large define
	 * get its addresses in order (later stages need them sorted); a list
	 * written in order (as generated lists often are) is left as it is,
	 * which is what the stable sort would leave. */
	if (rd->addrs.n && !addrs_sorted(&rd->addrs))
		qsort(rd->addrs.v, rd->addrs.n, sizeof(*rd->addrs.v), addr_cmp);
	rd->state = r ? FAILED : RESOLVED;
	return r ? NULL : &rd->addrs;
}

/* --- services -------------------------------------------------------- */

static const struct resolved_service *resolve_service(struct checker *c, size_t index);

static int resolve_svc_list(struct checker *c, size_t scope, const struct policy_ast_svc *svc,
			    struct policy_service_term **terms, size_t *n)
{
	int r = 0;
	for (size_t i = 0; i < svc->n; i++) {
		const struct policy_ast_svc_item *it = &svc->v[i];
		if (it->kind == POLICY_AST_SVC_TERM) {
			struct policy_service_term t = it->term;
			if (terms_append(c, terms, n, &t, 1))
				return -1;
			continue;
		}
		if (!it->name)
			continue;
		const struct sym *s = lookup(c, it->name, scope, NS_SERVICE);
		if (s) {
			const struct resolved_service *rs = resolve_service(c, s->index);
			if (!rs) {
				r = -1;
				if (c->services[s->index].state == RESOLVING)
					policy_error(c->d, &it->loc,
						     "service '%s' refers to itself", it->name);
			} else if (terms_append(c, terms, n, rs->terms, rs->n_terms)) {
				return -1;
			}
			continue;
		}
		struct policy_service_term *bt;
		size_t nb;
		int b = policy_builtin_service(it->name, &bt, &nb);
		if (b < 0)
			return nomem(c);
		if (b > 0) {
			int e = terms_append(c, terms, n, bt, nb);
			terms_free(bt, nb);
			if (e)
				return -1;
			continue;
		}
		r = -1;
		if (lookup(c, it->name, scope, NS_ZONE))
			policy_error(c->d, &it->loc, "'%s' is a zone, not a service", it->name);
		else if (lookup(c, it->name, scope, NS_DEFINE))
			policy_error(c->d, &it->loc, "'%s' is a define of addresses, not a service",
				     it->name);
		else {
			policy_error(c->d, &it->loc, "unknown service '%s'", it->name);
			policy_suggest_name(c->d, c->ast, POLICY_SUGGEST_SERVICE, it->name, scope);
		}
	}
	return r;
}

static const struct resolved_service *resolve_service(struct checker *c, size_t index)
{
	struct resolved_service *rs = &c->services[index];
	const struct policy_ast_service *s = &c->ast->services[index];
	if (rs->state == RESOLVED)
		return rs;
	if (rs->state == RESOLVING || rs->state == FAILED)
		return NULL;
	if (c->ref_depth >= POLICY_REF_DEPTH_MAX) {
		if (!c->ref_too_deep)
			policy_error(c->d, &s->loc,
				     "services refer to each other more than %d deep",
				     POLICY_REF_DEPTH_MAX);
		c->ref_too_deep = true;
		return NULL;
	}
	rs->state = RESOLVING;
	c->ref_depth++;
	int r = resolve_svc_list(c, s->scope, &s->value, &rs->terms, &rs->n_terms);
	c->ref_depth--;
	rs->state = r ? FAILED : RESOLVED;
	return r ? NULL : rs;
}

static int build_services(struct checker *c)
{
	int r = 0;
	for (size_t i = 0; i < c->ast->n_services; i++) {
		const struct policy_ast_service *s = &c->ast->services[i];
		const struct resolved_service *rs = resolve_service(c, i);
		if (!rs || !s->name) {
			r = -1;
			continue;
		}
		struct policy_service *m = PUSH(c->p->services, c->p->n_services);
		if (!m)
			return nomem(c);
		m->loc = s->loc;
		m->name = zone_model_name(c, s->name, s->scope);
		if (!m->name || terms_append(c, &m->terms, &m->n_terms, rs->terms, rs->n_terms))
			return nomem(c);
	}
	return r;
}

/* --- zones and endpoints --------------------------------------------- */

static void wrong_zone_name(struct checker *c, const char *name, size_t scope,
			    const struct policy_loc *loc)
{
	struct policy_service_term *bt = NULL;
	size_t nb = 0;
	if (lookup(c, name, scope, NS_SERVICE) || policy_builtin_service(name, &bt, &nb) > 0)
		policy_error(c->d, loc, "'%s' is a service, not a zone", name);
	else if (lookup(c, name, scope, NS_DEFINE))
		policy_error(c->d, loc, "'%s' is a define; write '$%s'", name, name);
	else if (sym_find(&c->syms, name, POLICY_NONE, NS_TENANT))
		policy_error(c->d, loc, "'%s' is a tenant; name one of its segments ('%s.SEGMENT')",
			     name, name);
	else {
		policy_error(c->d, loc, "unknown zone '%s'", name);
		policy_suggest_name(c->d, c->ast, POLICY_SUGGEST_ZONE, name, scope);
	}
	terms_free(bt, nb);
}

static int resolve_zone(struct checker *c, const char *name, size_t scope,
			const struct policy_loc *loc, size_t *index)
{
	const struct sym *s = lookup(c, name, scope, NS_ZONE);
	if (!s) {
		wrong_zone_name(c, name, scope, loc);
		return -1;
	}
	*index = s->index;
	return 0;
}

static int build_zone_addrs(struct checker *c)
{
	int r = 0;
	size_t model = 0;
	for (size_t i = 0; i < c->ast->n_zones; i++) {
		const struct policy_ast_zone *z = &c->ast->zones[i];
		if (!z->name)
			continue;
		struct policy_zone *m = &c->p->zones[model++];
		m->ifnames = calloc(z->n_ifnames + 1, sizeof(*m->ifnames));
		if (!m->ifnames)
			return nomem(c);
		for (size_t j = 0; j < z->n_ifnames; j++) {
			m->ifnames[j] = strdup(z->ifnames[j]);
			if (!m->ifnames[j])
				return nomem(c);
			m->n_ifnames++;
		}
		if (resolve_addrs(c, z->scope, &z->addrs, &m->addrs))
			r = -1;
	}
	return r;
}

static bool addr_has_family(const struct policy_addr_list *l, int family)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].family == family)
			return true;
	return false;
}

/* Address families an endpoint can match: bit 0 IPv4, bit 1 IPv6. */
#define FAM_V4 1u
#define FAM_V6 2u
static unsigned endpoint_families(const struct policy_endpoint *e)
{
	if (e->kind != POLICY_EP_MATCH || !e->addrs.n)
		return FAM_V4 | FAM_V6;
	return (addr_has_family(&e->addrs, AF_INET) ? FAM_V4 : 0) |
	       (addr_has_family(&e->addrs, AF_INET6) ? FAM_V6 : 0);
}

static int zone_push_unique(struct checker *c, struct policy_endpoint *e, size_t zone)
{
	for (size_t i = 0; i < e->n_zones; i++)
		if (e->zones[i] == zone)
			return 0;
	size_t *slot = PUSH(e->zones, e->n_zones);
	if (!slot)
		return nomem(c);
	*slot = zone;
	return 0;
}

static int resolve_endpoint(struct checker *c, size_t scope, const struct policy_ast_ep *ep,
			    struct policy_endpoint *out)
{
	out->kind = POLICY_EP_ANY;
	out->loc = ep->loc;
	if (!ep->present)
		return 0;
	int r = 0;
	bool special = false;
	for (size_t i = 0; i < ep->n; i++) {
		const struct policy_ast_ep_item *it = &ep->v[i];
		if (it->kind == POLICY_AST_EP_ANY || it->kind == POLICY_AST_EP_SELF) {
			if (ep->n > 1) {
				policy_error(
				    c->d, &it->loc,
				    "'%s' cannot be combined with other endpoints in a list",
				    it->kind == POLICY_AST_EP_ANY ? "any" : "self");
				r = -1;
			}
			out->kind = it->kind == POLICY_AST_EP_ANY ? POLICY_EP_ANY : POLICY_EP_SELF;
			special = true;
		} else if (it->kind == POLICY_AST_EP_NAME) {
			size_t z;
			if (resolve_zone(c, it->name, scope, &it->loc, &z))
				r = -1;
			else if (zone_push_unique(c, out, z))
				return -1;
		}
	}
	if (resolve_addrs(c, scope, ep, &out->addrs))
		r = -1;
	if (!special)
		out->kind = POLICY_EP_MATCH;
	return r;
}

/* --- rules ----------------------------------------------------------- */

static unsigned term_families(const struct policy_service_term *t)
{
	if (t->l4proto == IPPROTO_ICMP)
		return FAM_V4;
	if (t->l4proto == IPPROTO_ICMPV6)
		return FAM_V6;
	return FAM_V4 | FAM_V6;
}

static int check_families(struct checker *c, const struct policy_rule *r)
{
	unsigned from = endpoint_families(&r->from), to = endpoint_families(&r->to);
	if (!(from & to)) {
		return policy_error(c->d, &r->loc,
				    "rule can never match: 'from' has only %s addresses and 'to' "
				    "only %s",
				    from == FAM_V4 ? "IPv4" : "IPv6",
				    to == FAM_V4 ? "IPv4" : "IPv6");
	}
	unsigned fam = from & to, svc = 0;
	for (size_t i = 0; i < r->n_services; i++)
		svc |= term_families(&r->services[i]) & fam;
	if (r->n_services && !svc) {
		const struct policy_service_term *t = &r->services[0];
		return policy_error(c->d, &t->loc,
				    "%s can never match: the rule's addresses are "
				    "all %s",
				    policy_l4proto_name(t->l4proto),
				    fam == FAM_V4 ? "IPv4" : "IPv6");
	}
	return 0;
}

/* "FILE:LINE:HASH" (the file cut to 70 bytes, the hash 6 hex digits), as
 * snprintf "%.70s:%u:%06x" would write it, without it: once per rule. */
/* "FILE:LINE:HASH", or "FILE:HASH" without the line (the kernel id). */
static void format_id(char *id, size_t n, const struct policy_loc *loc, uint32_t hash,
		      bool with_line)
{
	static const char hex[] = "0123456789abcdef";
	char buf[70 + 1 + 10 + 1 + 6 + 1], digits[10];
	const char *file = loc->file ? loc->file : "-";
	size_t len = strnlen(file, 70), k = 0;
	memcpy(buf, file, len);
	buf[len++] = ':';
	uint32_t line = loc->line;
	do
		digits[k++] = (char)('0' + line % 10);
	while (with_line && (line /= 10));
	while (with_line && k)
		buf[len++] = digits[--k];
	if (with_line)
		buf[len++] = ':';
	hash &= RULE_HASH_MASK;
	for (int shift = 20; shift >= 0; shift -= 4)
		buf[len++] = hex[(hash >> shift) & 0xf];
	if (!n)
		return;
	len = len < n - 1 ? len : n - 1;
	memcpy(id, buf, len);
	id[len] = '\0';
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int copy_inspect(struct checker *c, struct policy_rule *m, const struct policy_ast_rule *r)
{
	if (!r->n_inspect)
		return 0;
	m->inspect = calloc(r->n_inspect, sizeof(*m->inspect));
	if (!m->inspect)
		return nomem(c);
	for (size_t i = 0; i < r->n_inspect; i++) {
		const struct policy_inspect_match *src = &r->inspect[i];
		struct policy_inspect_match *dst = &m->inspect[m->n_inspect++];
		*dst = *src;
		dst->regex = dup_or_null(src->regex);
		dst->name = dup_or_null(src->name);
		dst->log_prefix = dup_or_null(src->log_prefix);
		if ((src->regex && !dst->regex) || (src->name && !dst->name) ||
		    (src->log_prefix && !dst->log_prefix))
			return nomem(c);
	}
	return 0;
}

/* The kernel's limit keeps a token bucket of (seconds of the unit in ns /
 * rate) * burst nanoseconds in a u64 and refuses a rule whose bucket would
 * overflow (EOVERFLOW from nft_limit_init(), net/netfilter/nft_limit.c). */
#define NSEC_PER_SEC 1000000000ull
static int check_limit(struct checker *c, const struct policy_rule *m)
{
	if (!m->has_limit || !m->limit_rate)
		return 0;
	static const uint64_t unit_seconds[] = {
		[POLICY_PER_SECOND] = 1, [POLICY_PER_MINUTE] = 60, [POLICY_PER_HOUR] = 3600
	};
	static const char *const unit_names[] = { [POLICY_PER_SECOND] = "second",
						  [POLICY_PER_MINUTE] = "minute",
						  [POLICY_PER_HOUR] = "hour" };
	uint64_t ns_per_packet = unit_seconds[m->limit_unit] * NSEC_PER_SEC / m->limit_rate;
	uint64_t burst = m->limit_burst ? m->limit_burst : POLICY_LIMIT_BURST_DEFAULT;
	if (ns_per_packet == 0 || burst <= UINT64_MAX / ns_per_packet)
		return 0;
	return policy_error(c->d, &m->loc,
			    "limit %u/%s with burst %llu overflows the kernel's token bucket (at "
			    "this rate the burst can be at most %llu)",
			    m->limit_rate, unit_names[m->limit_unit], (unsigned long long)burst,
			    (unsigned long long)(UINT64_MAX / ns_per_packet));
}

/* A label names the rule wherever its id went (counters, metrics, logs,
 * the kernel's comment): one word of letters, digits, '-', '_', '.', at
 * most POLICY_LABEL_MAX bytes, used by one rule of the policy only. */
#define POLICY_LABEL_MAX 48

static int check_label(struct checker *c, const struct policy_ast_rule *r)
{
	const char *l = r->label;

	if (!l)
		return 0;
	if (!*l || strlen(l) > POLICY_LABEL_MAX ||
	    strspn(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
		strlen(l))
		return policy_error(c->d, &r->label_loc,
				    "label \"%s\": 1 to %d letters, digits, '-', '_' or '.'", l,
				    POLICY_LABEL_MAX);
	for (const struct policy_ast_rule *o = c->ast->rules; o < r; o++)
		if (o->label && !strcmp(o->label, l))
			return policy_error(c->d, &r->label_loc,
					    "label \"%s\" is already used by the rule at %s:%u", l,
					    o->loc.file ? o->loc.file : "-", o->loc.line);
	return 0;
}

static int build_rule(struct checker *c, const struct policy_ast_rule *r)
{
	struct policy_rule *m = PUSH(c->p->rules, c->p->n_rules);
	if (!m)
		return nomem(c);
	m->action = r->action;
	m->tenant = r->scope;
	m->loc = r->loc;
	m->text_len = r->text_len;
	m->log = r->log;
	m->has_limit = r->has_limit;
	m->limit_rate = r->limit_rate;
	m->limit_unit = r->limit_unit;
	m->limit_burst = r->limit_burst;
	m->stateless = r->stateless;
	format_id(m->where, sizeof(m->where), &r->loc, r->text_hash, true);
	if (check_label(c, r))
		return -1;
	m->labelled = r->label != NULL;
	snprintf(m->id, sizeof(m->id), "%s", r->label ? r->label : m->where);
	if (r->label)
		snprintf(m->kernel_id, sizeof(m->kernel_id), "%s", r->label);
	else
		format_id(m->kernel_id, sizeof(m->kernel_id), &r->loc, r->text_hash, false);
	m->log_prefix = dup_or_null(r->log_prefix);
	if ((r->log_prefix && !m->log_prefix) || copy_inspect(c, m, r))
		return nomem(c);
	int e = 0;
	if (resolve_endpoint(c, r->scope, &r->from, &m->from))
		e = -1;
	if (resolve_endpoint(c, r->scope, &r->to, &m->to))
		e = -1;
	if (r->svc.present && resolve_svc_list(c, r->scope, &r->svc, &m->services, &m->n_services))
		e = -1;
	if (e || c->oom)
		return -1;
	if (m->from.kind == POLICY_EP_SELF && m->to.kind == POLICY_EP_SELF)
		return policy_error(c->d, &r->to.loc,
				    "'self' on both sides: the appliance's "
				    "traffic to itself is not filtered");
	if (check_limit(c, m))
		return -1;
	return check_families(c, m);
}

struct kid_key {
	uint64_t hash; /* of the kernel id */
	size_t rule;
	size_t dup; /* 1 for the first rule of its id, 2 for the second, ... */
};

static int by_kid_hash(const void *a, const void *b)
{
	const struct kid_key *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->rule > y->rule) - (x->rule < y->rule);
}

/* Rules of the same text in the same file share "FILE:HASH": the second
 * and later (in policy order) get "#2", "#3", ... so that every kernel id
 * names one rule. Labels are unique already. Sorted by a hash of the id
 * (comparing the ids would walk the file name they share each time); ids
 * are compared only within a run of one hash, in policy order. */
static int number_kernel_ids(struct checker *c)
{
	struct policy_rule *rules = c->p->rules;
	size_t n = 0;
	struct kid_key *ord = malloc((c->p->n_rules ? c->p->n_rules : 1) * sizeof(*ord));

	if (!ord)
		return nomem(c);
	for (size_t i = 0; i < c->p->n_rules; i++)
		if (!rules[i].labelled)
			ord[n++] = (struct kid_key){ policy_fnv64(POLICY_FNV64_OFFSET_BASIS,
								  rules[i].kernel_id,
								  strlen(rules[i].kernel_id)),
						     i, 0 };
	qsort(ord, n, sizeof(*ord), by_kid_hash);
	/* the numbers first, the suffixes after: a suffix written early would
	 * hide its id from the later rules of the run */
	bool pure = true; /* every id of the run so far is the run's first */
	for (size_t i = 0, run = 0; i < n; i++) {
		const char *id = rules[ord[i].rule].kernel_id;
		if (ord[i].hash != ord[run].hash) {
			run = i;
			pure = true;
		}
		if (pure && !strcmp(rules[ord[run].rule].kernel_id, id)) {
			ord[i].dup = i - run + 1;
			continue;
		}
		/* two ids of one hash: count the equal ones one by one */
		pure = false;
		ord[i].dup = 1;
		for (size_t k = run; k < i; k++)
			ord[i].dup += !strcmp(rules[ord[k].rule].kernel_id, id);
	}
	for (size_t i = 0; i < n; i++) {
		struct policy_rule *r = &rules[ord[i].rule];
		if (ord[i].dup > 1) {
			size_t len = strnlen(r->kernel_id, sizeof(r->kernel_id) - 12);
			snprintf(r->kernel_id + len, sizeof(r->kernel_id) - len, "#%zu",
				 ord[i].dup);
		}
	}
	free(ord);
	return 0;
}

static int build_rules(struct checker *c)
{
	int r = 0;
	for (size_t i = 0; i < c->ast->n_rules; i++) {
		if (c->ast->rules[i].broken) {
			r = -1;
			continue;
		}
		bool sound = !build_rule(c, &c->ast->rules[i]);
		if (c->oom)
			return -1;
		c->rule_sound[c->p->n_rules - 1] = sound;
		if (!sound)
			r = -1;
	}
	if (number_kernel_ids(c))
		return -1;
	return r;
}

static const char *action_name(enum policy_action a)
{
	return a == POLICY_PASS ? "pass" : a == POLICY_BLOCK ? "block" : "reject";
}

/* One default per zone pair (and tenant): of two, the first would win and
 * the second would be silently ignored. */
static int check_default_unique(struct checker *c, const struct policy_ast_default *df,
				size_t index)
{
	const struct policy_default *m = &c->p->defaults[index];
	for (size_t i = 0; i < index; i++) {
		const struct policy_default *o = &c->p->defaults[i];
		if (o->tenant != m->tenant || o->from_zone != m->from_zone ||
		    o->to_zone != m->to_zone)
			continue;
		char pair[300];
		snprintf(pair, sizeof(pair), "%s%s%s%s%s", df->from ? "from " : "",
			 df->from ? df->from : "", df->from && df->to ? " " : "",
			 df->to ? "to " : "", df->to ? df->to : "");
		if (o->action != m->action)
			policy_error(
			    c->d, &df->loc,
			    "conflicting default %s: %s here, %s before (the first would win)",
			    pair, action_name(m->action), action_name(o->action));
		else
			policy_error(c->d, &df->loc, "duplicate default %s", pair);
		policy_note(c->d, &o->loc, "the first default %s is here", pair);
		return -1;
	}
	return 0;
}

static int build_defaults(struct checker *c)
{
	int r = 0;
	const struct policy_ast_default *global = NULL;
	c->p->default_action = POLICY_BLOCK;
	for (size_t i = 0; i < c->ast->n_defaults; i++) {
		const struct policy_ast_default *df = &c->ast->defaults[i];
		if (df->broken) {
			r = -1;
			continue;
		}
		if (!df->from && !df->to && df->scope == POLICY_NONE) {
			if (global) {
				policy_error(c->d, &df->loc, "duplicate global default");
				policy_note(c->d, &global->loc, "the first global default is here");
				r = -1;
			}
			global = df;
			c->p->default_action = df->action;
			continue;
		}
		struct policy_default *m = PUSH(c->p->defaults, c->p->n_defaults);
		if (!m)
			return nomem(c);
		m->action = df->action;
		m->log = df->log;
		m->tenant = df->scope;
		m->loc = df->loc;
		m->from_zone = m->to_zone = POLICY_NONE;
		bool bad =
		    df->from && resolve_zone(c, df->from, df->scope, &df->from_loc, &m->from_zone);
		if (df->to && resolve_zone(c, df->to, df->scope, &df->to_loc, &m->to_zone))
			bad = true;
		if (bad || check_default_unique(c, df, c->p->n_defaults - 1))
			r = -1;
	}
	return r;
}

/* --- NAT and VPN ----------------------------------------------------- */

static bool addr_is_host(const struct policy_addr *a)
{
	return !memcmp(a->lo, a->hi, a->family == AF_INET ? 4 : 16);
}

/* A NAT's `from`: segment names stand for their addresses. */
static int resolve_nat_src(struct checker *c, const struct policy_ast_nat *n, struct policy_nat *m)
{
	int r = 0;
	for (size_t i = 0; i < n->from.n; i++) {
		const struct policy_ast_ep_item *it = &n->from.v[i];
		if (it->kind != POLICY_AST_EP_NAME)
			continue;
		size_t z;
		if (resolve_zone(c, it->name, n->scope, &it->loc, &z)) {
			r = -1;
		} else if (!c->p->zones[z].addrs.n) {
			policy_error(c->d, &it->loc, "zone '%s' has no addresses to translate",
				     it->name);
			r = -1;
		} else if (addr_append(c, &m->match_src, &c->p->zones[z].addrs)) {
			return -1;
		}
	}
	if (resolve_addrs(c, n->scope, &n->from, &m->match_src))
		r = -1;
	return r;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* The token after the next word `word` on the line of `after`, behind it.
 * The AST keeps a NAT's port ranges without saying whether they were written
 * (0 means "keep the port"), so a written `port 0` is found in the source
 * text the diagnostics keep. Returns false if there is none. */
static bool token_after_word(const struct checker *c, const struct policy_loc *after,
			     const char *word, struct policy_loc *out)
{
	const struct policy_source_file *f = NULL;
	for (size_t i = 0; i < c->d->n_files && !f; i++)
		if (c->d->files[i].path == after->file)
			f = &c->d->files[i];
	if (!f || !after->line || !after->col)
		return false;
	const char *s = f->text, *end = f->text + f->len;
	for (uint32_t line = 1; line < after->line && s < end; s++)
		if (*s == '\n')
			line++;
	const char *eol = memchr(s, '\n', (size_t)(end - s));
	if (!eol)
		eol = end;
	const char *q = s + after->col - 1 + after->len;
	size_t wl = strlen(word);
	while (q < eol) {
		while (q < eol && (*q == ' ' || *q == '\t'))
			q++;
		const char *tok = q;
		if (*tok == '#') /* a comment: the statement ended */
			return false;
		while (q < eol && *q != ' ' && *q != '\t')
			q++;
		if ((size_t)(q - tok) != wl || memcmp(tok, word, wl))
			continue;
		while (q < eol && (*q == ' ' || *q == '\t'))
			q++;
		const char *val = q;
		while (q < eol && *q != ' ' && *q != '\t')
			q++;
		if (val == q)
			return false;
		*out = (struct policy_loc){ after->file, after->line, (uint32_t)(val - s) + 1,
					    (uint32_t)(q - val) };
		return true;
	}
	return false;
}

/* Port 0 is no port: a forward of it never matches, and a translation to
 * it would mean "keep the port" without saying so. */
static int check_nat_ports(struct checker *c, const struct policy_ast_nat *n)
{
	struct policy_loc at;
	if (n->kind == POLICY_NAT_DNAT && n->match_ports.lo == 0) {
		if (!token_after_word(c, &n->via_loc, "port", &at))
			at = n->loc;
		return policy_error(c->d, &at, "port 0 cannot be forwarded");
	}
	if ((n->kind == POLICY_NAT_DNAT || n->kind == POLICY_NAT_SNAT) && n->to_ports.lo == 0 &&
	    token_after_word(c, &n->to_addr.loc, "port", &at))
		return policy_error(c->d, &at,
				    "translation to port 0; leave 'port' out to keep the port");
	return 0;
}

/* Does tenant `t` have a segment address of `family`? */
static bool tenant_has_family(const struct checker *c, size_t t, int family)
{
	for (size_t z = 0; z < c->p->n_zones; z++)
		if (c->p->zones[z].tenant == t && addr_has_family(&c->p->zones[z].addrs, family))
			return true;
	return false;
}

/* A translation never changes the address family: NAT46/64 is not NAT. */
static int check_nat_families(struct checker *c, const struct policy_nat *m)
{
	char a[128], b[128];
	if (m->kind == POLICY_NAT_DNAT && m->has_public_addr &&
	    m->public_addr.family != m->to_addr.family) {
		policy_addr_format(&m->public_addr, a, sizeof(a));
		policy_addr_format(&m->to_addr, b, sizeof(b));
		return policy_error(c->d, &m->to_addr.loc,
				    "port forward on %s address %s to %s address %s: the families "
				    "must match",
				    family_name(m->public_addr.family), a,
				    family_name(m->to_addr.family), b);
	}
	if (m->kind == POLICY_NAT_SNAT && !m->match_src.n && m->tenant != POLICY_NONE &&
	    !tenant_has_family(c, m->tenant, m->to_addr.family)) {
		policy_addr_format(&m->to_addr, b, sizeof(b));
		return policy_error(c->d, &m->to_addr.loc,
				    "snat to %s address %s, but tenant '%s' has no %s segment "
				    "address: the families must match",
				    family_name(m->to_addr.family), b,
				    c->p->tenants[m->tenant].name, family_name(m->to_addr.family));
	}
	return 0;
}

static int check_nat(struct checker *c, const struct policy_ast_nat *n, struct policy_nat *m)
{
	if (check_nat_ports(c, n) || check_nat_families(c, m))
		return -1;
	if (m->kind == POLICY_NAT_DNAT && !addr_is_host(&m->to_addr))
		return policy_error(c->d, &m->to_addr.loc, "a port forward goes to one address");
	if (m->kind == POLICY_NAT_NETMAP) {
		if (m->match_src.n != 1 || m->match_src.v[0].prefix_len == POLICY_ADDR_NOT_PREFIX ||
		    m->to_addr.prefix_len == POLICY_ADDR_NOT_PREFIX)
			return policy_error(c->d, &n->loc, "netmap maps one prefix to another");
		if (m->match_src.v[0].prefix_len != m->to_addr.prefix_len ||
		    m->match_src.v[0].family != m->to_addr.family)
			return policy_error(c->d, &m->to_addr.loc,
					    "netmap prefixes differ in length or family");
	}
	if (m->kind != POLICY_NAT_MASQUERADE && m->kind != POLICY_NAT_NETMAP) {
		for (size_t i = 0; i < m->match_src.n; i++)
			if (m->match_src.v[i].family != m->to_addr.family)
				return policy_error(c->d, &m->to_addr.loc,
						    "translation address family differs from the "
						    "source addresses");
	}
	return 0;
}

static int build_nats(struct checker *c)
{
	int r = 0;
	for (size_t i = 0; i < c->ast->n_nats; i++) {
		const struct policy_ast_nat *n = &c->ast->nats[i];
		if (n->broken || !n->via) {
			r = -1;
			continue;
		}
		struct policy_nat *m = PUSH(c->p->nats, c->p->n_nats);
		if (!m)
			return nomem(c);
		m->kind = n->kind;
		m->tenant = n->scope;
		m->l4proto = n->l4proto;
		m->match_ports = n->match_ports;
		m->to_addr = n->to_addr;
		m->public_addr = n->public_addr;
		m->has_public_addr = n->has_public_addr;
		m->to_ports = n->to_ports;
		m->loc = n->loc;
		m->text_len = n->text_len;
		format_id(m->id, sizeof(m->id), &n->loc, n->text_hash, true);
		if (resolve_zone(c, n->via, n->scope, &n->via_loc, &m->via_zone) ||
		    resolve_nat_src(c, n, m) || check_nat(c, n, m))
			r = -1;
		if (c->oom)
			return -1;
	}
	return r;
}

/* A WireGuard key as `wg` writes it: 32 bytes in base64, 44 characters
 * with one '=' of padding (RFC 4648 section 4); the last data character
 * carries 4 bits, so its low 2 bits must be zero. */
#define WG_KEY_BASE64_LEN 44
static bool is_wg_key(const char *key)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (strlen(key) != WG_KEY_BASE64_LEN || key[WG_KEY_BASE64_LEN - 1] != '=')
		return false;
	for (size_t i = 0; i < WG_KEY_BASE64_LEN - 1; i++)
		if (!key[i] || !strchr(alphabet, key[i]))
			return false;
	size_t last = (size_t)(strchr(alphabet, key[WG_KEY_BASE64_LEN - 2]) - alphabet);
	return (last & 3) == 0;
}

/* "192.0.2.1:51820" or "[2001:db8::1]:51820": the VPN does not resolve
 * names, so a host name would fail only when the daemon starts the peer. */
static bool is_ip_endpoint(const char *ep)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(ep, ':');
	if (!colon || (size_t)(colon - ep) >= sizeof(host))
		return false;
	memcpy(host, ep, (size_t)(colon - ep));
	host[colon - ep] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535 || colon[1] == '+' || colon[1] == '-')
		return false;
	uint8_t buf[16];
	size_t n = strlen(host);
	if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, buf) == 1;
	}
	return inet_pton(AF_INET, host, buf) == 1;
}

static int build_peer(struct checker *c, const struct policy_ast_vpn *v,
		      const struct policy_ast_peer *p, struct policy_vpn *m)
{
	for (size_t i = 0; i < m->n_peers; i++) {
		if (p->name && m->peers[i].name && !strcmp(m->peers[i].name, p->name)) {
			policy_error(c->d, &p->loc, "peer '%s' is already defined", p->name);
			policy_note(c->d, &m->peers[i].loc, "'%s' was first defined here", p->name);
			return -1;
		}
	}
	struct policy_vpn_peer *mp = PUSH(m->peers, m->n_peers);
	if (!mp)
		return nomem(c);
	mp->loc = p->loc;
	mp->keepalive = p->keepalive;
	mp->name = dup_or_null(p->name);
	mp->public_key = dup_or_null(p->public_key);
	mp->psk_file = dup_or_null(p->psk_file);
	mp->endpoint = dup_or_null(p->endpoint);
	if ((p->name && !mp->name) || (p->public_key && !mp->public_key) ||
	    (p->psk_file && !mp->psk_file) || (p->endpoint && !mp->endpoint))
		return nomem(c);
	if (resolve_addrs(c, v->scope, &p->allowed_ips, &mp->allowed_ips))
		return -1;
	if (!p->public_key)
		return policy_error(c->d, &p->loc, "peer '%s' has no 'public-key'", p->name);
	if (!is_wg_key(p->public_key))
		return policy_error(c->d, &p->loc,
				    "peer '%s': public-key is not the base64 of a 32-byte key",
				    p->name);
	if (p->endpoint && !is_ip_endpoint(p->endpoint))
		return policy_error(c->d, &p->loc,
				    "peer '%s': endpoint '%s' is not ADDRESS:PORT or [IPv6]:PORT "
				    "(host names are not resolved)",
				    p->name, p->endpoint);
	return 0;
}

static int build_vpns(struct checker *c)
{
	int r = 0;
	for (size_t i = 0; i < c->ast->n_vpns; i++) {
		const struct policy_ast_vpn *v = &c->ast->vpns[i];
		struct policy_vpn *m = PUSH(c->p->vpns, c->p->n_vpns);
		if (!m)
			return nomem(c);
		m->loc = v->loc;
		m->tenant = v->scope;
		m->zone = c->vpn_zone[i];
		m->listen_port = v->listen_port;
		m->ifname = dup_or_null(v->ifname);
		m->private_key_file = dup_or_null(v->private_key_file);
		if ((v->ifname && !m->ifname) || (v->private_key_file && !m->private_key_file))
			return nomem(c);
		if (m->zone != POLICY_NONE) {
			struct policy_zone *z = &c->p->zones[m->zone];
			z->ifnames = calloc(1, sizeof(*z->ifnames));
			if (!z->ifnames || !(z->ifnames[0] = strdup(v->ifname)))
				return nomem(c);
			z->n_ifnames = 1;
		}
		if (resolve_addrs(c, v->scope, &v->addresses, &m->addresses))
			r = -1;
		if (!v->private_key_file)
			r = policy_error(c->d, &v->loc, "vpn '%s' has no 'private-key-file'",
					 v->ifname);
		/* an interface exists once on the host, whatever the scope */
		for (size_t k = 0; k < i && v->ifname; k++) {
			const struct policy_ast_vpn *o = &c->ast->vpns[k];
			if (o->ifname && o->scope != v->scope && !strcmp(o->ifname, v->ifname)) {
				r = policy_error(c->d, &v->loc,
						 "vpn interface '%s' is already used", v->ifname);
				policy_note(c->d, &o->loc, "by this vpn");
				break;
			}
		}
		for (size_t j = 0; j < v->n_peers; j++)
			if (build_peer(c, v, &v->peers[j], m))
				r = -1;
		if (c->oom)
			return -1;
	}
	return r;
}

/* --- driver ---------------------------------------------------------- */

/* Shadow and isolation analysis of the rules that were built without an
 * error. They need sound declarations (zones, defines, services: the caller
 * checks); a rule that failed may be half built and is left out, which can
 * only hide a report, never invent one. So errors of some rules, defaults,
 * NAT or VPNs no longer hold these reports back to a later round. */
static void check_sound_rules(struct checker *c)
{
	struct policy view = *c->p;
	struct policy_rule *sound = NULL;
	if (c->d->n_errors) {
		sound = malloc((c->p->n_rules + 1) * sizeof(*sound));
		if (!sound) {
			nomem(c);
			return;
		}
		view.n_rules = 0;
		for (size_t i = 0; i < c->p->n_rules; i++)
			if (c->rule_sound[i])
				sound[view.n_rules++] = c->p->rules[i];
		view.rules = sound;
	}
	policy_shadow_check(&view, c->d);
	policy_check_isolation(&view, c->d);
	free(sound);
}

static void checker_free(struct checker *c)
{
	for (size_t i = 0; i < c->ast->n_defines; i++)
		free(c->defines[i].addrs.v);
	free(c->defines);
	for (size_t i = 0; i < c->ast->n_services; i++)
		terms_free(c->services[i].terms, c->services[i].n_terms);
	free(c->services);
	free(c->syms.slots);
	free(c->vpn_zone);
	free(c->rule_sound);
}

struct policy *policy_check(const struct policy_ast *ast, struct policy_diags *d)
{
	struct checker c = { .ast = ast, .d = d };
	c.p = calloc(1, sizeof(*c.p));
	c.defines = calloc(ast->n_defines + 1, sizeof(*c.defines));
	c.services = calloc(ast->n_services + 1, sizeof(*c.services));
	c.rule_sound = calloc(ast->n_rules + 1, sizeof(*c.rule_sound));
	if (!c.p || !c.defines || !c.services || !c.rule_sound) {
		nomem(&c);
		goto out;
	}
	/* Each stage runs even after errors of an earlier one (all errors are
	 * reported); out of memory stops everything. */
	int (*const stages[])(struct checker *) = {
		declare_tenants, declare_zones,  declare_objects, build_zone_addrs, build_services,
		build_rules,     build_defaults, build_nats,      build_vpns,
	};
	bool declarations_sound = false;
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]) && !c.oom; i++) {
		stages[i](&c);
		if (stages[i] == build_services)
			declarations_sound = d->n_errors == 0;
	}
	if (!c.oom && d->n_errors == 0)
		policy_check_tenant_segments(c.p, d);
	if (!c.oom && declarations_sound)
		check_sound_rules(&c);
	if (!c.oom && d->n_errors == 0)
		policy_check_nat_isolation(c.p, d);
out:
	checker_free(&c);
	if (d->n_errors) {
		policy_free(c.p);
		return NULL;
	}
	return c.p;
}

/* --- tenant isolation ------------------------------------------------ */

static bool addrs_overlap(const struct policy_addr_list *a, const struct policy_addr_list *b)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t j = 0; j < b->n; j++) {
			const struct policy_addr *x = &a->v[i], *y = &b->v[j];
			size_t n = x->family == AF_INET ? 4 : 16;
			if (x->family == y->family && memcmp(x->lo, y->hi, n) <= 0 &&
			    memcmp(y->lo, x->hi, n) <= 0)
				return true;
		}
	}
	return false;
}

/* Can the endpoint match traffic of zone `z` (a tenant's zone) without
 * naming it? `any` can; addresses alone can if they meet the zone's
 * addresses (a segment only carries its own addresses: anti-spoofing) or
 * if the zone has none. */
static bool reaches_implicitly(const struct policy_endpoint *e, const struct policy_zone *z)
{
	if (e->kind == POLICY_EP_ANY)
		return true;
	if (e->kind == POLICY_EP_SELF || e->n_zones)
		return false;
	return !z->addrs.n || addrs_overlap(&e->addrs, &z->addrs);
}

static bool names_zone(const struct policy_endpoint *e, size_t z)
{
	for (size_t i = 0; i < e->n_zones; i++)
		if (e->zones[i] == z)
			return true;
	return false;
}

/* Is `z` reachable by the endpoint, and how. 0: no; 1: named; 2: implied. */
static int reach(const struct policy_endpoint *e, const struct policy *p, size_t z)
{
	if (e->kind == POLICY_EP_MATCH && names_zone(e, z))
		return 1;
	return reaches_implicitly(e, &p->zones[z]) ? 2 : 0;
}

static const char *how(const struct policy_endpoint *e)
{
	return e->kind == POLICY_EP_ANY ? "'any'" : "its addresses";
}

static int isolation_error(const struct policy *p, struct policy_diags *d,
			   const struct policy_rule *r, const char *side,
			   const struct policy_endpoint *e, size_t z)
{
	const struct policy_zone *zone = &p->zones[z];
	const char *tenant = p->tenants[zone->tenant].name;
	policy_error(d, &r->loc,
		     "rule of tenant '%s' can reach zone '%s' of tenant '%s' through %s in '%s'; "
		     "name the zones it is meant for, or name '%s' explicitly",
		     p->tenants[r->tenant].name, zone->name, tenant, how(e), side, zone->name);
	return policy_note(d, &zone->loc, "'%s' is declared here", zone->name), -1;
}

/* A tenant's pass rule may reach another tenant's zone only by naming it. */
static int check_tenant_rule(const struct policy *p, struct policy_diags *d,
			     const struct policy_rule *r)
{
	for (size_t z = 0; z < p->n_zones; z++) {
		size_t t = p->zones[z].tenant;
		if (t == POLICY_NONE || t == r->tenant)
			continue;
		if (reach(&r->from, p, z) == 2)
			return isolation_error(p, d, r, "from", &r->from, z);
		if (reach(&r->to, p, z) == 2)
			return isolation_error(p, d, r, "to", &r->to, z);
	}
	return 0;
}

int policy_check_isolation(const struct policy *p, struct policy_diags *d)
{
	if (!p->n_tenants)
		return 0;
	int result = 0;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		/* Only pass rules open traffic. Global rules are not checked:
		 * lowering never lets `any` or bare addresses of a global rule
		 * join two tenants (only named zones do). */
		if (r->action != POLICY_PASS || r->tenant == POLICY_NONE)
			continue;
		if (check_tenant_rule(p, d, r))
			result = -1;
	}
	return result;
}
