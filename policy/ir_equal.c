/* Equality of IR objects (policy/ir.h): the same kernel object, compared
 * field by field as the kernel keeps it. Shared by ir_diff (the running
 * table against a candidate) and the optimizer (rules of one table). */
#include <string.h>

#include "policy/ir.h"

bool ir_value_equal(const struct ir_value *a, const struct ir_value *b)
{
	return a->len == b->len && a->len <= IR_VALUE_MAX && !memcmp(a->data, b->data, a->len);
}

bool ir_verdict_equal(const struct ir_verdict *a, const struct ir_verdict *b)
{
	if (a->kind != b->kind)
		return false;
	return (a->kind != IR_V_JUMP && a->kind != IR_V_GOTO) || !strcmp(a->chain, b->chain);
}

bool ir_set_def_equal(const struct ir_set *a, const struct ir_set *b)
{
	if (a->n_key != b->n_key || a->flags != b->flags || a->data != b->data ||
	    a->timeout_ms != b->timeout_ms || a->size != b->size || strcmp(a->comment, b->comment))
		return false;
	if (a->data == IR_DATA_VALUE && a->data_field != b->data_field)
		return false;
	for (size_t i = 0; i < a->n_key && i < IR_CONCAT_MAX; i++)
		if (a->key[i] != b->key[i])
			return false;
	return true;
}

/* Same key (and interval end): the same element as far as the kernel's
 * lookup is concerned. */
bool ir_elem_same_key(const struct ir_set *s, const struct ir_set_elem *a,
		      const struct ir_set_elem *b)
{
	for (size_t i = 0; i < s->n_key && i < IR_CONCAT_MAX; i++)
		if (!ir_value_equal(&a->key[i], &b->key[i]) ||
		    !ir_value_equal(&a->key_end[i], &b->key_end[i]))
			return false;
	return true;
}

/* Everything the kernel keeps of an element. A dynamic set's timeouts are
 * what is left of them, read at different times: they do not count. */
bool ir_elem_equal(const struct ir_set *s, const struct ir_set_elem *a, const struct ir_set_elem *b)
{
	if (!ir_elem_same_key(s, a, b))
		return false;
	if (s->data == IR_DATA_VERDICT && !ir_verdict_equal(&a->verdict, &b->verdict))
		return false;
	if (s->data == IR_DATA_VALUE && !ir_value_equal(&a->data, &b->data))
		return false;
	return (s->flags & IR_SET_DYNAMIC) || a->timeout_ms == b->timeout_ms;
}

bool ir_set_content_equal(const struct ir_set *a, const struct ir_set *b)
{
	if (!ir_set_def_equal(a, b) || a->n_elems != b->n_elems)
		return false;
	for (size_t i = 0; i < a->n_elems; i++)
		if (!ir_elem_equal(a, &a->elems[i], &b->elems[i]))
			return false;
	return true;
}

/* Named sets are the same by name; anonymous ones, which belong to their
 * rule, by content. */
static bool set_ref_equal(const struct ir_table *ta, size_t a, const struct ir_table *tb, size_t b)
{
	if (a >= ta->n_sets || b >= tb->n_sets)
		return false;
	const struct ir_set *sa = &ta->sets[a], *sb = &tb->sets[b];
	bool anon = sa->flags & IR_SET_ANONYMOUS;
	if (anon != (bool)(sb->flags & IR_SET_ANONYMOUS))
		return false;
	return anon ? ir_set_content_equal(sa, sb) : !strcmp(sa->name, sb->name);
}

static bool fields_equal(const enum ir_field *a, size_t na, const enum ir_field *b, size_t nb)
{
	if (na != nb || na > IR_CONCAT_MAX)
		return false;
	return !memcmp(a, b, na * sizeof(*a));
}

bool ir_match_equal(const struct ir_table *ta, const struct ir_match *a, const struct ir_table *tb,
		    const struct ir_match *b)
{
	if (a->kind != b->kind || a->op != b->op || a->prefix_len != b->prefix_len ||
	    a->wildcard != b->wildcard || !ir_value_equal(&a->value, &b->value) ||
	    !ir_value_equal(&a->value_end, &b->value_end))
		return false;
	if (a->kind == IR_M_LOOKUP)
		return fields_equal(a->field, a->n_field, b->field, b->n_field) &&
		       set_ref_equal(ta, a->set, tb, b->set);
	return a->field[0] == b->field[0];
}

static bool nat_equal(const struct ir_nat *a, const struct ir_nat *b)
{
	return a->kind == b->kind && a->family == b->family &&
	       ir_value_equal(&a->addr_lo, &b->addr_lo) &&
	       ir_value_equal(&a->addr_hi, &b->addr_hi) && a->port_lo == b->port_lo &&
	       a->port_hi == b->port_hi && a->netmap == b->netmap &&
	       a->random_fully == b->random_fully;
}

bool ir_stmt_equal(const struct ir_table *ta, const struct ir_stmt *a, const struct ir_table *tb,
		   const struct ir_stmt *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case IR_S_COUNTER:
	case IR_S_NOTRACK: return true;
	case IR_S_LOG: return a->log_group == b->log_group && !strcmp(a->log_prefix, b->log_prefix);
	case IR_S_LIMIT: return a->rate == b->rate && a->unit == b->unit && a->burst == b->burst;
	case IR_S_VMAP:
		return fields_equal(a->field, a->n_field, b->field, b->n_field) &&
		       set_ref_equal(ta, a->set, tb, b->set);
	case IR_S_SET_FROM_MAP:
		return a->target == b->target &&
		       fields_equal(a->field, a->n_field, b->field, b->n_field) &&
		       set_ref_equal(ta, a->set, tb, b->set);
	case IR_S_SET_VALUE:
		return a->target == b->target && ir_value_equal(&a->value, &b->value) &&
		       a->keep_mask == b->keep_mask;
	case IR_S_REJECT: return a->reject == b->reject;
	case IR_S_NAT: return nat_equal(&a->nat, &b->nat);
	case IR_S_QUEUE:
		return a->queue_num == b->queue_num && a->queue_count == b->queue_count &&
		       a->queue_bypass == b->queue_bypass;
	}
	return false;
}
