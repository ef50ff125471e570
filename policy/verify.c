/* policy_verify_rules(): every emitted rule is checked for what the kernel
 * (or nft -c) would refuse or silently never match (policy/pipeline.h). */
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pipeline.h"

/* What one rule has established about the packet, from its matches. */
struct rule_facts {
	int nfproto; /* NFPROTO_IPV4 / NFPROTO_IPV6, or -1 */
	int l4proto; /* IPPROTO_*, or -1 */
};

/* The network family a field needs, or -1 for none. */
static int field_nfproto(enum ir_field f)
{
	switch (f) {
	case IR_IP_SADDR:
	case IR_IP_DADDR: return NFPROTO_IPV4;
	case IR_IP6_SADDR:
	case IR_IP6_DADDR: return NFPROTO_IPV6;
	default: return -1;
	}
}

/* The transport protocol a field needs, or -1. */
static int field_l4proto(enum ir_field f)
{
	if (f == IR_ICMP_TYPE)
		return IPPROTO_ICMP;
	if (f == IR_ICMPV6_TYPE)
		return IPPROTO_ICMPV6;
	if (f == IR_TCP_FLAGS)
		return IPPROTO_TCP;
	return -1;
}

static const char *nfproto_name(int nfproto)
{
	return nfproto == NFPROTO_IPV4 ? "ipv4" : "ipv6";
}

static int rule_error(struct policy_diags *d, const struct ir_chain *c, size_t i,
		      const struct ir_rule *r, const char *what)
{
	const struct policy_loc *loc = r->loc.line ? &r->loc : NULL;
	return policy_error(d, loc,
			    "compiled rule %zu of chain %s %s: the kernel would refuse it or "
			    "it could never match (a compiler bug; please report it)",
			    i, c->name, what);
}

/* A set is typed by its key types, not by the fields that look it up
 * (@blocked4 serves ip saddr and ip daddr). */
static bool same_types(const enum ir_field *a, const enum ir_field *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct ir_field_desc *x = ir_field_desc(a[i]), *y = ir_field_desc(b[i]);
		if (!x || !y || x->type != y->type || x->len != y->len)
			return false;
	}
	return true;
}

static int check_field(const struct rule_facts *f, enum ir_field field, char *why, size_t n)
{
	const struct ir_field_desc *desc = ir_field_desc(field);
	if (!desc)
		return snprintf(why, n, "uses an unknown field"), -1;
	int need = field_nfproto(field);
	if (need >= 0 && f->nfproto >= 0 && need != f->nfproto)
		return snprintf(why, n, "matches '%s' in a rule for meta nfproto %s", desc->nft,
				nfproto_name(f->nfproto)),
		       -1;
	int l4 = field_l4proto(field);
	if (l4 >= 0 && f->l4proto >= 0 && l4 != f->l4proto)
		return snprintf(why, n, "matches '%s' in a rule for meta l4proto %d", desc->nft,
				f->l4proto),
		       -1;
	return 0;
}

/* The facts of a rule: meta nfproto / l4proto equal to a value. Two
 * different values of one of them is itself a rule that never matches. */
static int gather(const struct ir_rule *r, struct rule_facts *f, char *why, size_t n)
{
	f->nfproto = f->l4proto = -1;
	for (size_t i = 0; i < r->n_matches; i++) {
		const struct ir_match *m = &r->matches[i];
		if (m->kind != IR_M_CMP || m->op != IR_OP_EQ || m->value.len != 1)
			continue;
		int *slot = m->field[0] == IR_META_NFPROTO   ? &f->nfproto
			    : m->field[0] == IR_META_L4PROTO ? &f->l4proto
							     : NULL;
		if (!slot)
			continue;
		if (*slot >= 0 && *slot != m->value.data[0])
			return snprintf(why, n, "requires two different values of %s",
					ir_field_desc(m->field[0])->nft),
			       -1;
		*slot = m->value.data[0];
	}
	return 0;
}

static int check_match(const struct ir_table *t, const struct rule_facts *f,
		       const struct ir_match *m, char *why, size_t n)
{
	size_t nf = m->kind == IR_M_LOOKUP ? m->n_field : 1;
	if (nf == 0 || nf > IR_CONCAT_MAX)
		return snprintf(why, n, "has a lookup of %zu fields", nf), -1;
	for (size_t k = 0; k < nf; k++)
		if (check_field(f, m->field[k], why, n))
			return -1;
	const struct ir_field_desc *desc = ir_field_desc(m->field[0]);
	if (m->kind == IR_M_LOOKUP) {
		if (m->set >= t->n_sets)
			return snprintf(why, n, "looks up a set that does not exist"), -1;
		const struct ir_set *s = &t->sets[m->set];
		if (s->n_key != nf || !same_types(s->key, m->field, nf))
			return snprintf(why, n, "looks up set %s with fields of other types",
					s->name),
			       -1;
		return 0;
	}
	if (desc->type != IR_T_IFNAME && m->value.len != desc->len)
		return snprintf(why, n, "compares '%s' (%u bytes) with a %u-byte value", desc->nft,
				desc->len, m->value.len),
		       -1;
	if (m->kind == IR_M_RANGE && m->value_end.len != m->value.len)
		return snprintf(why, n, "has a range of '%s' with ends of two lengths", desc->nft),
		       -1;
	if (m->kind == IR_M_PREFIX && m->prefix_len > desc->len * 8)
		return snprintf(why, n, "has a /%u prefix of '%s'", m->prefix_len, desc->nft), -1;
	return 0;
}

static int check_nat(const struct rule_facts *f, const struct ir_nat *x, char *why, size_t n)
{
	if (x->kind == IR_NAT_MASQUERADE && !x->addr_lo.len)
		return 0;
	if (x->family != NFPROTO_IPV4 && x->family != NFPROTO_IPV6)
		return snprintf(why, n, "translates without an address family"), -1;
	if (f->nfproto >= 0 && x->family != f->nfproto)
		return snprintf(why, n, "translates to an %s address in a rule for meta nfproto %s",
				x->family == NFPROTO_IPV4 ? "IPv4" : "IPv6",
				nfproto_name(f->nfproto)),
		       -1;
	size_t want = x->family == NFPROTO_IPV4 ? 4 : 16;
	if ((x->addr_lo.len && x->addr_lo.len != want) ||
	    (x->addr_hi.len && x->addr_hi.len != want))
		return snprintf(why, n, "translates to an address of the wrong length"), -1;
	if (x->port_hi < x->port_lo)
		return snprintf(why, n, "translates to an upside-down port range"), -1;
	return 0;
}

static int check_stmt(const struct ir_table *t, const struct rule_facts *f, const struct ir_stmt *s,
		      char *why, size_t n)
{
	if (s->kind == IR_S_NAT)
		return check_nat(f, &s->nat, why, n);
	if (s->kind != IR_S_VMAP && s->kind != IR_S_SET_FROM_MAP)
		return 0;
	for (size_t k = 0; k < s->n_field; k++)
		if (check_field(f, s->field[k], why, n))
			return -1;
	if (s->set >= t->n_sets)
		return snprintf(why, n, "uses a map that does not exist"), -1;
	const struct ir_set *m = &t->sets[s->set];
	if (m->n_key != s->n_field || !same_types(m->key, s->field, s->n_field))
		return snprintf(why, n, "uses map %s with fields of other types", m->name), -1;
	return 0;
}

static int check_rule(const struct ir_table *t, const struct ir_rule *r, char *why, size_t n)
{
	struct rule_facts f;
	if (gather(r, &f, why, n))
		return -1;
	for (size_t i = 0; i < r->n_matches; i++)
		if (check_match(t, &f, &r->matches[i], why, n))
			return -1;
	for (size_t i = 0; i < r->n_stmts; i++)
		if (check_stmt(t, &f, &r->stmts[i], why, n))
			return -1;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool chain_exists(const char *const *sorted, size_t n, const char *name)
{
	return bsearch(&name, sorted, n, sizeof(*sorted), name_cmp) != NULL;
}

static bool verdict_ok(const char *const *sorted, size_t n, const struct ir_verdict *v)
{
	return (v->kind != IR_V_JUMP && v->kind != IR_V_GOTO) || chain_exists(sorted, n, v->chain);
}

/* Every jump and goto (rules and verdict-map elements) names a chain of the
 * table, and every anonymous set serves exactly one rule. (ir_table_validate
 * checks the same and more, with a linear chain lookup per rule: too slow
 * for a large policy on every check.) */
static int check_references(const struct ir_table *t, struct policy_diags *d)
{
	const char **sorted = calloc(t->n_chains + 1, sizeof(*sorted));
	size_t *uses = calloc(t->n_sets + 1, sizeof(*uses));
	int rc = 0;
	if (!sorted || !uses) {
		rc = policy_error(d, NULL, "out of memory checking the compiled table");
		goto out;
	}
	for (size_t c = 0; c < t->n_chains; c++)
		sorted[c] = t->chains[c].name;
	qsort(sorted, t->n_chains, sizeof(*sorted), name_cmp);
	for (size_t c = 0; c < t->n_chains && !rc; c++) {
		const struct ir_chain *ch = &t->chains[c];
		for (size_t i = 0; i < ch->n_rules && !rc; i++) {
			const struct ir_rule *r = &ch->rules[i];
			if (!verdict_ok(sorted, t->n_chains, &r->verdict))
				rc = rule_error(d, ch, i, r, "goes to a chain that does not exist");
			for (size_t m = 0; m < r->n_matches; m++)
				if (r->matches[m].kind == IR_M_LOOKUP &&
				    r->matches[m].set < t->n_sets)
					uses[r->matches[m].set]++;
			for (size_t k = 0; k < r->n_stmts; k++)
				if ((r->stmts[k].kind == IR_S_VMAP ||
				     r->stmts[k].kind == IR_S_SET_FROM_MAP) &&
				    r->stmts[k].set < t->n_sets)
					uses[r->stmts[k].set]++;
		}
	}
	for (size_t i = 0; i < t->n_sets && !rc; i++) {
		const struct ir_set *s = &t->sets[i];
		const struct policy_loc *loc = s->loc.line ? &s->loc : NULL;
		if ((s->flags & IR_SET_ANONYMOUS) && uses[i] != 1)
			rc = policy_error(d, loc,
					  "compiled anonymous set %zu serves %zu rules (a "
					  "compiler bug; please report it)",
					  i, uses[i]);
		for (size_t e = 0; e < s->n_elems && !rc && s->data == IR_DATA_VERDICT; e++)
			if (!verdict_ok(sorted, t->n_chains, &s->elems[e].verdict))
				rc = policy_error(d, loc,
						  "compiled map %s goes to chain %s, which does "
						  "not exist (a compiler bug; please report it)",
						  s->name, s->elems[e].verdict.chain);
	}
out:
	free(sorted);
	free(uses);
	return rc;
}

int policy_verify_rules(const struct ir_table *t, struct policy_diags *d)
{
	int rc = 0;
	char why[256];
	for (size_t c = 0; c < t->n_chains; c++) {
		const struct ir_chain *ch = &t->chains[c];
		for (size_t i = 0; i < ch->n_rules; i++)
			if (check_rule(t, &ch->rules[i], why, sizeof(why)))
				rc = rule_error(d, ch, i, &ch->rules[i], why);
	}
	return rc ? rc : check_references(t, d);
}
