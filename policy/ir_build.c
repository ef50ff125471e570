/* IR builders shared by the passes that make the ruleset (ir_build.h). */
#include <stdio.h>
#include <string.h>

#include "policy/ir_build.h"

struct ir_chain *ir_build_base_chain(struct ir_table *t, const char *name, enum ir_hook hook,
				     enum ir_chain_type type, int prio, enum ir_verdict_kind policy)
{
	struct ir_chain *c = ir_chain_add(t, name);
	if (!c)
		return NULL;
	c->hook = hook;
	c->type = type;
	c->priority = prio;
	c->policy = policy;
	return c;
}

struct ir_rule *ir_build_chain_rule(struct ir_chain *c, const char *comment,
				    const struct policy_loc *loc)
{
	struct ir_rule *r = ir_rule_add(c);
	if (r && comment)
		snprintf(r->comment, sizeof(r->comment), "%s", comment);
	if (r && loc)
		r->loc = *loc;
	return r;
}

struct ir_rule *ir_build_rule(struct ir_table *t, const char *chain, const char *comment)
{
	struct ir_chain *c = ir_chain_find(t, chain);
	return c ? ir_build_chain_rule(c, comment, NULL) : NULL;
}

struct ir_match *ir_build_cmp(struct ir_rule *r, enum ir_field f, struct ir_value v,
			      enum ir_cmp_op op)
{
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return NULL;
	m->kind = IR_M_CMP;
	m->field[0] = f;
	m->value = v;
	m->op = op;
	return m;
}

struct ir_match *ir_build_range(struct ir_rule *r, enum ir_field f, struct ir_value lo,
				struct ir_value hi)
{
	if (lo.len == hi.len && !memcmp(lo.data, hi.data, lo.len))
		return ir_build_cmp(r, f, lo, IR_OP_EQ);
	enum ir_field_type type = ir_field_desc(f)->type;
	int prefix_len =
	    type == IR_T_IPV4 || type == IR_T_IPV6 ? ir_value_prefix_len(&lo, &hi) : -1;
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return NULL;
	m->field[0] = f;
	m->value = lo;
	if (prefix_len >= 0) {
		m->kind = IR_M_PREFIX;
		m->prefix_len = (uint8_t)prefix_len;
	} else {
		m->kind = IR_M_RANGE;
		m->value_end = hi;
	}
	return m;
}

struct ir_match *ir_build_lookup(struct ir_rule *r, const enum ir_field *f, size_t n, size_t set,
				 enum ir_cmp_op op)
{
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return NULL;
	m->kind = IR_M_LOOKUP;
	memcpy(m->field, f, n * sizeof(*f));
	m->n_field = n;
	m->set = set;
	m->op = op;
	return m;
}

struct ir_stmt *ir_build_stmt(struct ir_rule *r, enum ir_stmt_kind k)
{
	struct ir_stmt *s = ir_stmt_add(r);
	if (s)
		s->kind = k;
	return s;
}

size_t ir_build_set(struct ir_table *t, const char *name, const enum ir_field *key, size_t n_key,
		    uint32_t flags, enum ir_set_data data)
{
	size_t i = ir_set_add(t, name);
	if (i == (size_t)-1)
		return i;
	struct ir_set *s = &t->sets[i];
	memcpy(s->key, key, n_key * sizeof(*key));
	s->n_key = n_key;
	s->flags = flags;
	s->data = data;
	return i;
}

struct ir_stmt *ir_build_vmap(struct ir_rule *r, const enum ir_field *f, size_t n, size_t set)
{
	struct ir_stmt *s = ir_build_stmt(r, IR_S_VMAP);
	if (s) {
		memcpy(s->field, f, n * sizeof(*f));
		s->n_field = n;
		s->set = set;
	}
	return s;
}

struct ir_stmt *ir_build_set_from_map(struct ir_rule *r, enum ir_field target, enum ir_field f,
				      size_t set)
{
	struct ir_stmt *s = ir_build_stmt(r, IR_S_SET_FROM_MAP);
	if (s) {
		s->target = target;
		s->field[0] = f;
		s->n_field = 1;
		s->set = set;
	}
	return s;
}

struct ir_stmt *ir_build_set_value(struct ir_rule *r, enum ir_field target, struct ir_value v)
{
	struct ir_stmt *s = ir_build_stmt(r, IR_S_SET_VALUE);
	if (s) {
		s->target = target;
		s->value = v;
	}
	return s;
}

size_t ir_build_set_find(const struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strcmp(t->sets[i].name, name))
			return i;
	return (size_t)-1;
}

void ir_build_addr_range(const struct policy_addr *a, struct ir_value *lo, struct ir_value *hi)
{
	*lo = ir_value_addr(a->lo, a->family);
	if (a->prefix_len == POLICY_ADDR_NOT_PREFIX) {
		*hi = ir_value_addr(a->hi, a->family);
		return;
	}
	*hi = *lo;
	policy_prefix_fill(lo->data, hi->data, a->prefix_len, (size_t)lo->len * 8);
}
