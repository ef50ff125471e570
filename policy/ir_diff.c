/* ir_diff: the running IR table against a candidate (policy/ir_diff.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/hash.h"
#include "policy/ir_diff.h"

static bool value_equal(const struct ir_value *a, const struct ir_value *b)
{
	return a->len == b->len && a->len <= IR_VALUE_MAX && !memcmp(a->data, b->data, a->len);
}

static bool verdict_equal(const struct ir_verdict *a, const struct ir_verdict *b)
{
	if (a->kind != b->kind)
		return false;
	return (a->kind != IR_V_JUMP && a->kind != IR_V_GOTO) || !strcmp(a->chain, b->chain);
}

static bool chain_recreated(const struct ir_diff *d, const char *name)
{
	for (size_t i = 0; d && i < d->n_recreated; i++)
		if (!strcmp(d->recreated[i], name))
			return true;
	return false;
}

static bool verdict_to_recreated(const struct ir_diff *d, const struct ir_verdict *v)
{
	return (v->kind == IR_V_JUMP || v->kind == IR_V_GOTO) && chain_recreated(d, v->chain);
}

static bool set_def_equal(const struct ir_set *a, const struct ir_set *b)
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
static bool elem_same_key(const struct ir_set *s, const struct ir_set_elem *a, const struct ir_set_elem *b)
{
	for (size_t i = 0; i < s->n_key && i < IR_CONCAT_MAX; i++)
		if (!value_equal(&a->key[i], &b->key[i]) || !value_equal(&a->key_end[i], &b->key_end[i]))
			return false;
	return true;
}

/* Everything the kernel keeps of an element. A dynamic set's timeouts are
 * what is left of them, read at different times: they do not count. */
static bool elem_equal(const struct ir_set *s, const struct ir_set_elem *a, const struct ir_set_elem *b)
{
	if (!elem_same_key(s, a, b))
		return false;
	if (s->data == IR_DATA_VERDICT && !verdict_equal(&a->verdict, &b->verdict))
		return false;
	if (s->data == IR_DATA_VALUE && !value_equal(&a->data, &b->data))
		return false;
	return (s->flags & IR_SET_DYNAMIC) || a->timeout_ms == b->timeout_ms;
}

static bool set_content_equal(const struct ir_set *a, const struct ir_set *b)
{
	if (!set_def_equal(a, b) || a->n_elems != b->n_elems)
		return false;
	for (size_t i = 0; i < a->n_elems; i++)
		if (!elem_equal(a, &a->elems[i], &b->elems[i]))
			return false;
	return true;
}

static bool set_ref_equal(const struct ir_table *ta, size_t a, const struct ir_table *tb, size_t b)
{
	if (a >= ta->n_sets || b >= tb->n_sets)
		return false;
	const struct ir_set *sa = &ta->sets[a], *sb = &tb->sets[b];
	bool anon = sa->flags & IR_SET_ANONYMOUS;
	if (anon != (bool)(sb->flags & IR_SET_ANONYMOUS))
		return false;
	return anon ? set_content_equal(sa, sb) : !strcmp(sa->name, sb->name);
}

static bool fields_equal(const enum ir_field *a, size_t na, const enum ir_field *b, size_t nb)
{
	if (na != nb || na > IR_CONCAT_MAX)
		return false;
	return !memcmp(a, b, na * sizeof(*a));
}

static bool match_equal(const struct ir_table *ta, const struct ir_match *a, const struct ir_table *tb,
			const struct ir_match *b)
{
	if (a->kind != b->kind || a->op != b->op || a->prefix_len != b->prefix_len ||
	    a->wildcard != b->wildcard || !value_equal(&a->value, &b->value) ||
	    !value_equal(&a->value_end, &b->value_end))
		return false;
	if (a->kind == IR_M_LOOKUP)
		return fields_equal(a->field, a->n_field, b->field, b->n_field) &&
		       set_ref_equal(ta, a->set, tb, b->set);
	return a->field[0] == b->field[0];
}

static bool nat_equal(const struct ir_nat *a, const struct ir_nat *b)
{
	return a->kind == b->kind && a->family == b->family && value_equal(&a->addr_lo, &b->addr_lo) &&
	       value_equal(&a->addr_hi, &b->addr_hi) && a->port_lo == b->port_lo && a->port_hi == b->port_hi &&
	       a->netmap == b->netmap && a->random_fully == b->random_fully;
}

static bool stmt_equal(const struct ir_table *ta, const struct ir_stmt *a, const struct ir_table *tb,
		       const struct ir_stmt *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case IR_S_COUNTER:
	case IR_S_NOTRACK:
		return true;
	case IR_S_LOG:
		return a->log_group == b->log_group && !strcmp(a->log_prefix, b->log_prefix);
	case IR_S_LIMIT:
		return a->rate == b->rate && a->unit == b->unit && a->burst == b->burst;
	case IR_S_VMAP:
		return fields_equal(a->field, a->n_field, b->field, b->n_field) && set_ref_equal(ta, a->set, tb, b->set);
	case IR_S_SET_FROM_MAP:
		return a->target == b->target && fields_equal(a->field, a->n_field, b->field, b->n_field) &&
		       set_ref_equal(ta, a->set, tb, b->set);
	case IR_S_SET_VALUE:
		return a->target == b->target && value_equal(&a->value, &b->value);
	case IR_S_REJECT:
		return a->reject == b->reject;
	case IR_S_NAT:
		return nat_equal(&a->nat, &b->nat);
	case IR_S_QUEUE:
		return a->queue_num == b->queue_num && a->queue_count == b->queue_count &&
		       a->queue_bypass == b->queue_bypass;
	}
	return false;
}

bool ir_diff_rule_equal(const struct ir_table *ta, const struct ir_rule *a, const struct ir_table *tb,
			const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches || a->n_stmts != b->n_stmts || !verdict_equal(&a->verdict, &b->verdict) ||
	    strcmp(a->comment, b->comment))
		return false;
	for (size_t i = 0; i < a->n_matches; i++)
		if (!match_equal(ta, &a->matches[i], tb, &b->matches[i]))
			return false;
	for (size_t i = 0; i < a->n_stmts; i++)
		if (!stmt_equal(ta, &a->stmts[i], tb, &b->stmts[i]))
			return false;
	return true;
}

/* ---- hashes that agree with the comparisons above ---- */

static uint64_t hash_u64(uint64_t h, uint64_t x)
{
	return policy_fnv64(h, &x, sizeof(x));
}

static uint64_t hash_value(uint64_t h, const struct ir_value *v)
{
	size_t n = v->len <= IR_VALUE_MAX ? v->len : 0;
	return policy_fnv64(hash_u64(h, v->len), v->data, n);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return policy_fnv64(h, s, strlen(s) + 1);
}

static uint64_t hash_verdict(uint64_t h, const struct ir_verdict *v)
{
	h = hash_u64(h, v->kind);
	return v->kind == IR_V_JUMP || v->kind == IR_V_GOTO ? hash_str(h, v->chain) : h;
}

static uint64_t hash_fields(uint64_t h, const enum ir_field *f, size_t n)
{
	h = hash_u64(h, n);
	for (size_t i = 0; i < n && i < IR_CONCAT_MAX; i++)
		h = hash_u64(h, f[i]);
	return h;
}

/* As set_ref_equal(): a named set by its name, an anonymous one by
 * set_content_equal(). */
static uint64_t hash_set_ref(uint64_t h, const struct ir_table *t, size_t set)
{
	if (set >= t->n_sets)
		return hash_u64(h, UINT64_MAX);
	const struct ir_set *s = &t->sets[set];
	if (!(s->flags & IR_SET_ANONYMOUS))
		return hash_str(hash_u64(h, 0), s->name);
	h = hash_u64(hash_u64(h, 1), s->flags);
	h = hash_u64(hash_u64(h, s->data), s->timeout_ms);
	h = hash_u64(hash_u64(h, s->size), s->data == IR_DATA_VALUE ? s->data_field : 0);
	h = hash_str(hash_fields(h, s->key, s->n_key), s->comment);
	h = hash_u64(h, s->n_elems);
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = &s->elems[i];
		for (size_t k = 0; k < s->n_key && k < IR_CONCAT_MAX; k++)
			h = hash_value(hash_value(h, &e->key[k]), &e->key_end[k]);
		if (s->data == IR_DATA_VERDICT)
			h = hash_verdict(h, &e->verdict);
		if (s->data == IR_DATA_VALUE)
			h = hash_value(h, &e->data);
		if (!(s->flags & IR_SET_DYNAMIC))
			h = hash_u64(h, e->timeout_ms);
	}
	return h;
}

static uint64_t hash_match(uint64_t h, const struct ir_table *t, const struct ir_match *m)
{
	h = hash_u64(hash_u64(h, m->kind), m->op);
	h = hash_u64(hash_u64(h, m->prefix_len), m->wildcard);
	h = hash_value(hash_value(h, &m->value), &m->value_end);
	if (m->kind == IR_M_LOOKUP)
		return hash_set_ref(hash_fields(h, m->field, m->n_field), t, m->set);
	return hash_u64(h, m->field[0]);
}

static uint64_t hash_stmt(uint64_t h, const struct ir_table *t, const struct ir_stmt *s)
{
	h = hash_u64(h, s->kind);
	switch (s->kind) {
	case IR_S_COUNTER:
	case IR_S_NOTRACK:
		return h;
	case IR_S_LOG:
		return hash_str(hash_u64(h, (uint64_t)(int64_t)s->log_group), s->log_prefix);
	case IR_S_LIMIT:
		return hash_u64(hash_u64(hash_u64(h, s->rate), s->unit), s->burst);
	case IR_S_VMAP:
		return hash_set_ref(hash_fields(h, s->field, s->n_field), t, s->set);
	case IR_S_SET_FROM_MAP:
		h = hash_u64(h, s->target);
		return hash_set_ref(hash_fields(h, s->field, s->n_field), t, s->set);
	case IR_S_SET_VALUE:
		return hash_value(hash_u64(h, s->target), &s->value);
	case IR_S_REJECT:
		return hash_u64(h, s->reject);
	case IR_S_NAT:
		h = hash_u64(hash_u64(h, s->nat.kind), s->nat.family);
		h = hash_value(hash_value(h, &s->nat.addr_lo), &s->nat.addr_hi);
		h = hash_u64(hash_u64(h, s->nat.port_lo), s->nat.port_hi);
		return hash_u64(hash_u64(h, s->nat.netmap), s->nat.random_fully);
	case IR_S_QUEUE:
		h = hash_u64(hash_u64(h, s->queue_num), s->queue_count);
		return hash_u64(h, s->queue_bypass);
	}
	return h;
}

uint64_t ir_diff_rule_hash(const struct ir_table *t, const struct ir_rule *r, uint64_t h)
{
	h = hash_str(hash_verdict(h, &r->verdict), r->comment);
	h = hash_u64(h, r->n_matches);
	for (size_t i = 0; i < r->n_matches; i++)
		h = hash_match(h, t, &r->matches[i]);
	h = hash_u64(h, r->n_stmts);
	for (size_t i = 0; i < r->n_stmts; i++)
		h = hash_stmt(h, t, &r->stmts[i]);
	return h;
}

/* ---- name lookups (hash tables of indices by name) ---- */

struct name_index {
	size_t *slot; /* IR_DIFF_NONE: empty */
	size_t cap;
};

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a 64 */
	return h;
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 16;
	while (c < n * 2)
		c <<= 1;
	return c;
}

static int name_index_init(struct name_index *x, size_t n)
{
	x->cap = pow2_at_least(n);
	x->slot = malloc(x->cap * sizeof(*x->slot));
	if (!x->slot)
		return -ENOMEM;
	memset(x->slot, 0xff, x->cap * sizeof(*x->slot));
	return 0;
}

static const char *chain_name(const void *tab, size_t i)
{
	return ((const struct ir_table *)tab)->chains[i].name;
}

static const char *set_name(const void *tab, size_t i)
{
	return ((const struct ir_table *)tab)->sets[i].name;
}

static void name_index_put(struct name_index *x, const char *name, size_t i)
{
	size_t h = hash_bytes(name, strlen(name), 0xcbf29ce484222325ull) & (x->cap - 1);
	while (x->slot[h] != IR_DIFF_NONE)
		h = (h + 1) & (x->cap - 1);
	x->slot[h] = i;
}

static size_t name_index_get(const struct name_index *x, const void *tab, const char *(*name_of)(const void *, size_t),
			     const char *name)
{
	size_t h = hash_bytes(name, strlen(name), 0xcbf29ce484222325ull) & (x->cap - 1);
	while (x->slot[h] != IR_DIFF_NONE) {
		if (!strcmp(name_of(tab, x->slot[h]), name))
			return x->slot[h];
		h = (h + 1) & (x->cap - 1);
	}
	return IR_DIFF_NONE;
}

/* ---- element deltas ---- */

static uint64_t elem_key_hash(const struct ir_set *s, const struct ir_set_elem *e)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < s->n_key && i < IR_CONCAT_MAX; i++) {
		h = hash_bytes(e->key[i].data, e->key[i].len, h);
		h = hash_bytes(e->key_end[i].data, e->key_end[i].len, h);
	}
	return h;
}

static int push(size_t **v, size_t *n, size_t x)
{
	if (*n == 0 || (*n >= 4 && !(*n & (*n - 1)))) { /* capacity: 4, then powers of two */
		size_t cap = *n ? *n * 2 : 4;
		size_t *nv = realloc(*v, cap * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
	}
	(*v)[(*n)++] = x;
	return 0;
}

/* Elements of `os` not in `ns` are deleted, those of `ns` not in `os` added;
 * an element with the same key and other data is both. A common head and
 * tail (sets are kept sorted) are skipped at once; the middle is hashed. */
/* An element stays if it is the same and does not jump to a chain that is
 * made again. */
static bool elem_stays(const struct ir_set *s, const struct ir_set_elem *a, const struct ir_set_elem *b,
		       const struct ir_diff *d)
{
	return elem_equal(s, a, b) && !(s->data == IR_DATA_VERDICT && verdict_to_recreated(d, &b->verdict));
}

static int elem_delta(const struct ir_set *os, const struct ir_set *ns, struct ir_diff_elems *out,
		      const struct ir_diff *d)
{
	size_t head = 0, tail = 0;
	while (head < os->n_elems && head < ns->n_elems && elem_stays(ns, &os->elems[head], &ns->elems[head], d))
		head++;
	while (tail < os->n_elems - head && tail < ns->n_elems - head &&
	       elem_stays(ns, &os->elems[os->n_elems - 1 - tail], &ns->elems[ns->n_elems - 1 - tail], d))
		tail++;
	size_t o_end = os->n_elems - tail, n_end = ns->n_elems - tail;
	if (head == o_end) {
		for (size_t i = head; i < n_end; i++)
			if (push(&out->add, &out->n_add, i))
				return -ENOMEM;
		return 0;
	}
	struct name_index x;
	bool *used = calloc(o_end - head, sizeof(*used));
	if (!used || name_index_init(&x, o_end - head)) {
		free(used);
		return -ENOMEM;
	}
	for (size_t i = head; i < o_end; i++) {
		size_t h = elem_key_hash(ns, &os->elems[i]) & (x.cap - 1);
		while (x.slot[h] != IR_DIFF_NONE)
			h = (h + 1) & (x.cap - 1);
		x.slot[h] = i;
	}
	int rc = 0;
	for (size_t i = head; !rc && i < n_end; i++) {
		const struct ir_set_elem *ne = &ns->elems[i];
		size_t h = elem_key_hash(ns, ne) & (x.cap - 1), found = IR_DIFF_NONE;
		for (; x.slot[h] != IR_DIFF_NONE; h = (h + 1) & (x.cap - 1)) {
			size_t j = x.slot[h];
			if (!used[j - head] && elem_same_key(ns, &os->elems[j], ne)) {
				found = j;
				break;
			}
		}
		if (found != IR_DIFF_NONE && elem_stays(ns, &os->elems[found], ne, d)) {
			used[found - head] = true;
			continue;
		}
		if (found != IR_DIFF_NONE) { /* same key, other data: delete first, then add */
			used[found - head] = true;
			rc = push(&out->del, &out->n_del, found);
		}
		if (!rc)
			rc = push(&out->add, &out->n_add, i);
	}
	for (size_t j = head; !rc && j < o_end; j++)
		if (!used[j - head])
			rc = push(&out->del, &out->n_del, j);
	free(used);
	free(x.slot);
	return rc;
}

/* ---- the diff ---- */

void ir_diff_free(struct ir_diff *d)
{
	if (!d)
		return;
	if (d->set_elems) {
		for (size_t i = 0; d->set_op && i < d->n_objects_sets; i++) {
			free(d->set_elems[i].add);
			free(d->set_elems[i].del);
		}
	}
	free(d->set_elems);
	for (size_t i = 0; d->chain_rules && i < d->n_objects_chains; i++) {
		free(d->chain_rules[i].del);
		free(d->chain_rules[i].add);
		free(d->chain_rules[i].old_of);
	}
	free(d->chain_rules);
	free(d->recreated);
	free(d->chain_op);
	free(d->chain_old);
	free(d->chain_policy);
	free(d->chain_del);
	free(d->set_op);
	free(d->set_old);
	free(d->set_del);
	free(d);
}

static void go_full(struct ir_diff *d, const char *why)
{
	if (d->full)
		return;
	d->full = true;
	snprintf(d->why, sizeof(d->why), "%s", why);
}

/* Whether rule `ru` (of the candidate) uses a named set whose op is
 * RECREATE: it must go before its set can, and come again after. */
static bool rule_uses_recreated(const struct ir_table *t, const struct ir_rule *ru, const struct ir_diff *d)
{
	for (size_t i = 0; i < ru->n_matches; i++)
		if (ru->matches[i].kind == IR_M_LOOKUP && ru->matches[i].set < t->n_sets &&
		    d->set_op[ru->matches[i].set] == IR_DIFF_RECREATE)
			return true;
	for (size_t i = 0; i < ru->n_stmts; i++)
		if ((ru->stmts[i].kind == IR_S_VMAP || ru->stmts[i].kind == IR_S_SET_FROM_MAP) &&
		    ru->stmts[i].set < t->n_sets && d->set_op[ru->stmts[i].set] == IR_DIFF_RECREATE)
			return true;
	return false;
}

/* Whether rule `ru` jumps to a chain that is made again: by its verdict
 * or through an inline verdict map. */
static bool rule_jumps_to_recreated(const struct ir_table *t, const struct ir_rule *ru, const struct ir_diff *d)
{
	if (!d->n_recreated)
		return false;
	if (verdict_to_recreated(d, &ru->verdict))
		return true;
	for (size_t i = 0; i < ru->n_stmts; i++) {
		const struct ir_stmt *st = &ru->stmts[i];
		if (st->kind != IR_S_VMAP || st->set >= t->n_sets || !(t->sets[st->set].flags & IR_SET_ANONYMOUS))
			continue;
		for (size_t e = 0; e < t->sets[st->set].n_elems; e++)
			if (verdict_to_recreated(d, &t->sets[st->set].elems[e].verdict))
				return true;
	}
	return false;
}

/* The rules are the same kernel rule and can stay. */
static bool rule_stays(const struct ir_table *o, const struct ir_rule *a, const struct ir_table *n,
		       const struct ir_rule *b, const struct ir_diff *d)
{
	return ir_diff_rule_equal(o, a, n, b) && !rule_uses_recreated(n, b, d) && !rule_jumps_to_recreated(n, b, d);
}

static int diff_sets(const struct ir_table *o, const struct ir_table *n, struct ir_diff *d)
{
	struct name_index x;
	bool *kept = calloc(o->n_sets ? o->n_sets : 1, sizeof(*kept));
	if (!kept || name_index_init(&x, o->n_sets)) {
		free(kept);
		return -ENOMEM;
	}
	for (size_t i = 0; i < o->n_sets; i++)
		if (!(o->sets[i].flags & IR_SET_ANONYMOUS))
			name_index_put(&x, o->sets[i].name, i);
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_sets; i++) {
		const struct ir_set *ns = &n->sets[i];
		d->set_old[i] = IR_DIFF_NONE;
		d->set_op[i] = IR_DIFF_KEEP;
		d->n_objects += 1 + ns->n_elems;
		if (ns->flags & IR_SET_ANONYMOUS)
			continue;
		size_t j = name_index_get(&x, o, set_name, ns->name);
		if (j == IR_DIFF_NONE) {
			d->set_op[i] = IR_DIFF_ADD;
			d->n_changed += 1 + ns->n_elems;
			d->n_sets_changed++;
			d->n_elems_added += ns->n_elems;
			continue;
		}
		kept[j] = true;
		d->set_old[i] = j;
		const struct ir_set *os = &o->sets[j];
		/* A constant set's elements cannot change while rules use it. */
		if (!set_def_equal(os, ns) ||
		    ((ns->flags & IR_SET_CONSTANT) && !set_content_equal(os, ns))) {
			d->set_op[i] = IR_DIFF_RECREATE;
			d->n_changed += 2 + ns->n_elems;
			d->n_sets_changed++;
			d->n_elems_added += ns->n_elems;
			d->n_elems_deleted += os->n_elems;
			continue;
		}
		rc = elem_delta(os, ns, &d->set_elems[i], d);
		if (!rc && (d->set_elems[i].n_add || d->set_elems[i].n_del)) {
			d->set_op[i] = IR_DIFF_REPLACE;
			d->n_changed += 1 + d->set_elems[i].n_add + d->set_elems[i].n_del;
			d->n_sets_changed++;
			d->n_elems_added += d->set_elems[i].n_add;
			d->n_elems_deleted += d->set_elems[i].n_del;
		}
	}
	for (size_t j = 0; !rc && j < o->n_sets; j++)
		if (!kept[j] && !(o->sets[j].flags & IR_SET_ANONYMOUS)) {
			rc = push(&d->set_del, &d->n_set_del, j);
			d->n_changed++;
			d->n_sets_changed++;
		}
	free(kept);
	free(x.slot);
	return rc;
}

static bool chain_rules_equal(const struct ir_table *o, const struct ir_chain *oc, const struct ir_table *n,
			      const struct ir_chain *nc, const struct ir_diff *d)
{
	if (oc->n_rules != nc->n_rules)
		return false;
	for (size_t r = 0; r < nc->n_rules; r++)
		if (!rule_stays(o, &oc->rules[r], n, &nc->rules[r], d))
			return false;
	return true;
}

/* The middle of two rule lists longer than this (product of lengths) is
 * not aligned rule by rule: all of it goes and comes (the table of a longest
 * common subsequence would take too long and too much memory). */
#define LCS_CELLS_MAX (1u << 20)

/* Aligns the rules of oc and nc: a common head and tail, then a longest
 * common subsequence of the middle. */
static int plan_rules(const struct ir_table *o, const struct ir_chain *oc, const struct ir_table *n,
		      const struct ir_chain *nc, const struct ir_diff *d, struct ir_diff_rules *pl)
{
	size_t no = oc->n_rules, nn = nc->n_rules, head = 0, tail = 0;
	pl->old_of = malloc((nn ? nn : 1) * sizeof(*pl->old_of));
	if (!pl->old_of)
		return -ENOMEM;
	for (size_t j = 0; j < nn; j++)
		pl->old_of[j] = IR_DIFF_NONE;
	while (head < no && head < nn && rule_stays(o, &oc->rules[head], n, &nc->rules[head], d)) {
		pl->old_of[head] = head;
		head++;
	}
	while (tail < no - head && tail < nn - head &&
	       rule_stays(o, &oc->rules[no - 1 - tail], n, &nc->rules[nn - 1 - tail], d)) {
		pl->old_of[nn - 1 - tail] = no - 1 - tail;
		tail++;
	}
	size_t mo = no - head - tail, mn = nn - head - tail;
	uint32_t *len = NULL;
	if (mo && mn && mo * mn <= LCS_CELLS_MAX) {
		/* len[a][b]: LCS of old[head+a..] and new[head+b..] */
		len = calloc((mo + 1) * (mn + 1), sizeof(*len));
		if (!len)
			return -ENOMEM;
		for (size_t a = mo; a-- > 0;)
			for (size_t b = mn; b-- > 0;) {
				uint32_t *cell = &len[a * (mn + 1) + b];
				if (rule_stays(o, &oc->rules[head + a], n, &nc->rules[head + b], d))
					*cell = len[(a + 1) * (mn + 1) + b + 1] + 1;
				else {
					uint32_t down = len[(a + 1) * (mn + 1) + b], right = len[a * (mn + 1) + b + 1];
					*cell = down > right ? down : right;
				}
			}
		for (size_t a = 0, b = 0; a < mo && b < mn;) {
			if (rule_stays(o, &oc->rules[head + a], n, &nc->rules[head + b], d) &&
			    len[a * (mn + 1) + b] == len[(a + 1) * (mn + 1) + b + 1] + 1) {
				pl->old_of[head + b] = head + a;
				a++, b++;
			} else if (len[(a + 1) * (mn + 1) + b] >= len[a * (mn + 1) + b + 1]) {
				a++;
			} else {
				b++;
			}
		}
		free(len);
	}
	bool *kept = calloc(no ? no : 1, sizeof(*kept));
	if (!kept)
		return -ENOMEM;
	int rc = 0;
	for (size_t j = 0; !rc && j < nn; j++) {
		if (pl->old_of[j] == IR_DIFF_NONE)
			rc = push(&pl->add, &pl->n_add, j);
		else
			kept[pl->old_of[j]] = true;
	}
	for (size_t r = 0; !rc && r < no; r++)
		if (!kept[r])
			rc = push(&pl->del, &pl->n_del, r);
	free(kept);
	pl->planned = !rc;
	return rc;
}

static void mark_chain(struct ir_diff *d, const struct ir_chain *nc, size_t i, enum ir_diff_op op)
{
	d->chain_op[i] = op;
	d->n_changed += 1 + nc->n_rules;
	d->n_chains_changed++;
	d->n_rules_sent += nc->n_rules;
}

static int diff_chains(const struct ir_table *o, const struct ir_table *n, struct ir_diff *d)
{
	struct name_index x;
	bool *kept = calloc(o->n_chains ? o->n_chains : 1, sizeof(*kept));
	if (!kept || name_index_init(&x, o->n_chains)) {
		free(kept);
		return -ENOMEM;
	}
	for (size_t i = 0; i < o->n_chains; i++)
		name_index_put(&x, o->chains[i].name, i);
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_chains; i++) {
		const struct ir_chain *nc = &n->chains[i];
		d->n_objects += 1 + nc->n_rules;
		size_t j = name_index_get(&x, o, chain_name, nc->name);
		d->chain_old[i] = j;
		d->chain_op[i] = IR_DIFF_KEEP;
		if (j == IR_DIFF_NONE) {
			mark_chain(d, nc, i, IR_DIFF_ADD);
			continue;
		}
		kept[j] = true;
		const struct ir_chain *oc = &o->chains[j];
		if (oc->hook != nc->hook || (nc->hook != IR_HOOK_NONE && (oc->type != nc->type || oc->priority != nc->priority))) {
			char why[160];
			snprintf(why, sizeof(why), "chain %.64s changed its hook, type or priority", nc->name);
			go_full(d, why);
			continue;
		}
		if (strcmp(oc->comment, nc->comment)) {
			/* A chain's comment cannot be changed in place: a
			 * regular chain is made again (find_recreated()). */
			if (nc->hook != IR_HOOK_NONE) {
				char why[160];
				snprintf(why, sizeof(why), "the comment of base chain %.64s changed", nc->name);
				go_full(d, why);
			} else {
				mark_chain(d, nc, i, IR_DIFF_RECREATE);
			}
			continue;
		}
		d->chain_policy[i] = nc->hook != IR_HOOK_NONE && oc->policy != nc->policy;
		if (d->chain_policy[i])
			d->n_changed++;
		if (!chain_rules_equal(o, oc, n, nc, d)) {
			struct ir_diff_rules *pl = &d->chain_rules[i];
			if ((rc = plan_rules(o, oc, n, nc, d, pl)))
				break;
			d->chain_op[i] = IR_DIFF_REPLACE;
			d->n_changed += 1 + pl->n_add + pl->n_del;
			d->n_chains_changed++;
			d->n_rules_sent += pl->n_add;
		}
	}
	for (size_t j = 0; !rc && j < o->n_chains; j++)
		if (!kept[j]) {
			rc = push(&d->chain_del, &d->n_chain_del, j);
			d->n_changed++;
			d->n_chains_changed++;
		}
	free(kept);
	free(x.slot);
	return rc;
}

/* The regular chains of both whose comment differs: made again. Known
 * before sets and rules are compared, which must not keep what jumps there. */
static int find_recreated(const struct ir_table *o, const struct ir_table *n, struct ir_diff *d)
{
	struct name_index x;
	size_t cap = 0;
	if (name_index_init(&x, o->n_chains))
		return -ENOMEM;
	for (size_t i = 0; i < o->n_chains; i++)
		name_index_put(&x, o->chains[i].name, i);
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_chains; i++) {
		size_t j = name_index_get(&x, o, chain_name, n->chains[i].name);
		if (j == IR_DIFF_NONE || n->chains[i].hook != IR_HOOK_NONE || o->chains[j].hook != IR_HOOK_NONE ||
		    !strcmp(o->chains[j].comment, n->chains[i].comment))
			continue;
		if (d->n_recreated == cap) {
			cap = cap ? cap * 2 : 8;
			const char **v = realloc(d->recreated, cap * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				break;
			}
			d->recreated = v;
		}
		d->recreated[d->n_recreated++] = n->chains[i].name;
	}
	free(x.slot);
	return rc;
}

int ir_diff_compute(const struct ir_table *o, const struct ir_table *n, struct ir_diff **out)
{
	struct ir_diff *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (!d)
		return -ENOMEM;
	size_t nc = n->n_chains ? n->n_chains : 1, ns = n->n_sets ? n->n_sets : 1;
	d->n_objects_sets = n->n_sets;
	d->n_objects_chains = n->n_chains;
	d->chain_rules = calloc(nc, sizeof(*d->chain_rules));
	d->chain_op = calloc(nc, sizeof(*d->chain_op));
	d->chain_old = calloc(nc, sizeof(*d->chain_old));
	d->chain_policy = calloc(nc, sizeof(*d->chain_policy));
	d->set_op = calloc(ns, sizeof(*d->set_op));
	d->set_old = calloc(ns, sizeof(*d->set_old));
	d->set_elems = calloc(ns, sizeof(*d->set_elems));
	if (!d->chain_rules || !d->chain_op || !d->chain_old || !d->chain_policy || !d->set_op || !d->set_old || !d->set_elems ||
	    find_recreated(o, n, d) || diff_sets(o, n, d) || diff_chains(o, n, d)) {
		ir_diff_free(d);
		return -ENOMEM;
	}
	if (o->family != n->family || strcmp(o->name, n->name))
		go_full(d, "another table");
	else if (strcmp(o->comment, n->comment))
		go_full(d, "the table comment changed");
	else if (d->n_changed > d->n_objects)
		go_full(d, "the delta is larger than the table");
	*out = d;
	return 0;
}

bool ir_diff_empty(const struct ir_diff *d)
{
	return !d->full && d->n_changed == 0;
}
