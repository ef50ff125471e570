/* ir_diff: the running IR table against a candidate (policy/ir_diff.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/grow.h"
#include "policy/hash.h"
#include "policy/hmap.h"
#include "policy/ir_diff.h"
#include "policy/ir_names.h"

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

bool ir_diff_rule_equal(const struct ir_table *ta, const struct ir_rule *a,
			const struct ir_table *tb, const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches || a->n_stmts != b->n_stmts ||
	    !ir_verdict_equal(&a->verdict, &b->verdict) || strcmp(a->comment, b->comment))
		return false;
	for (size_t i = 0; i < a->n_matches; i++)
		if (!ir_match_equal(ta, &a->matches[i], tb, &b->matches[i]))
			return false;
	for (size_t i = 0; i < a->n_stmts; i++)
		if (!ir_stmt_equal(ta, &a->stmts[i], tb, &b->stmts[i]))
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

/* As ir_equal.c's set reference comparison: a named set by its name, an anonymous one by
 * ir_set_content_equal(). */
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
	case IR_S_NOTRACK: return h;
	case IR_S_LOG: return hash_str(hash_u64(h, (uint64_t)(int64_t)s->log_group), s->log_prefix);
	case IR_S_LIMIT: return hash_u64(hash_u64(hash_u64(h, s->rate), s->unit), s->burst);
	case IR_S_VMAP: return hash_set_ref(hash_fields(h, s->field, s->n_field), t, s->set);
	case IR_S_SET_FROM_MAP:
		h = hash_u64(h, s->target);
		return hash_set_ref(hash_fields(h, s->field, s->n_field), t, s->set);
	case IR_S_SET_VALUE:
		return hash_u64(hash_value(hash_u64(h, s->target), &s->value), s->keep_mask);
	case IR_S_REJECT: return hash_u64(h, s->reject);
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

/* ---- name lookups (policy/ir_names.h) ---- */

/* ir_names_index() of the running table's chains or sets, and a zeroed flag
 * per one of them (which the candidate keeps); NULL on ENOMEM. */
static bool *names_and_kept(struct ir_names *x, const struct ir_table *o, bool sets)
{
	size_t n = sets ? o->n_sets : o->n_chains;
	bool *kept = calloc(n ? n : 1, sizeof(*kept));
	if (kept && ir_names_index(x, o, sets, 0)) {
		free(kept);
		return NULL;
	}
	return kept;
}

/* The index of `name`, or IR_DIFF_NONE. */
static size_t names_get(const struct ir_names *x, const char *name)
{
	size_t i = ir_names_get(x, name);
	return i == POLICY_HMAP_NONE ? IR_DIFF_NONE : i;
}

/* ---- element deltas ---- */

static uint64_t elem_key_hash(const struct ir_set *s, const struct ir_set_elem *e)
{
	uint64_t h = POLICY_FNV64_OFFSET_BASIS;
	for (size_t i = 0; i < s->n_key && i < IR_CONCAT_MAX; i++) {
		h = policy_fnv64(h, e->key[i].data, e->key[i].len);
		h = policy_fnv64(h, e->key_end[i].data, e->key_end[i].len);
	}
	return h;
}

/* An unused running element with the candidate element's key. */
struct elem_probe {
	const struct ir_set *os, *ns;
	const struct ir_set_elem *ne;
	const bool *used; /* by index - head */
	size_t head;
};

static bool elem_free_same_key(void *ctx, size_t j)
{
	const struct elem_probe *p = ctx;
	return !p->used[j - p->head] && ir_elem_same_key(p->ns, &p->os->elems[j], p->ne);
}

static int push(size_t **v, size_t *n, size_t x)
{
	size_t *slot = policy_push_pow2((void **)v, n, sizeof(**v), 4); /* 4, then powers of two */
	if (!slot)
		return -ENOMEM;
	*slot = x;
	return 0;
}

/* ---- fingerprints (ir_diff_prints_make()) ---- */

struct set_print {
	const struct ir_set_elem *elems; /* what the prints were made from */
	size_t n;
	uint64_t all;   /* of the whole element list */
	uint64_t *elem; /* per element; NULL: no prints for this set */
};

/* A chain's rules: a hash of each (ir_diff_rule_hash()) and of all. */
struct chain_print {
	const struct ir_rule *rules; /* what the prints were made from */
	size_t n;
	uint64_t all;
	uint64_t *rule;
};

struct ir_diff_prints {
	const struct ir_table *of;
	size_t n_sets;
	struct set_print *set;
	size_t n_chains;
	struct chain_print *chain;
	/* A hash of the name of every chain a rule or a map element jumps or
	 * goes to, sorted: a chain made again that is none of them takes
	 * nothing with it. */
	uint64_t *target;
	size_t n_target;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

static uint64_t fold_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9fb21c651e98df25ull;
	return h ^ (h >> 29);
}

static uint64_t fold_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	h = fold_word(h, n);
	for (; n >= 8; b += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = fold_word(h, w);
	}
	if (n) {
		uint64_t w = 0;
		memcpy(&w, b, n);
		h = fold_word(h, w);
	}
	return h;
}

static uint64_t fold_value(uint64_t h, const struct ir_value *v)
{
	return fold_bytes(h, v->data, v->len <= IR_VALUE_MAX ? v->len : IR_VALUE_MAX);
}

/* Everything elem_equal() compares, and nothing else. */
static uint64_t elem_print(const struct ir_set *s, const struct ir_set_elem *e)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < s->n_key && i < IR_CONCAT_MAX; i++) {
		h = fold_value(h, &e->key[i]);
		h = fold_value(h, &e->key_end[i]);
	}
	if (s->data == IR_DATA_VERDICT) {
		h = fold_word(h, (uint64_t)e->verdict.kind + 1);
		if (e->verdict.kind == IR_V_JUMP || e->verdict.kind == IR_V_GOTO)
			h = fold_bytes(h, e->verdict.chain, strlen(e->verdict.chain));
	}
	if (s->data == IR_DATA_VALUE)
		h = fold_value(h, &e->data);
	if (!(s->flags & IR_SET_DYNAMIC))
		h = fold_word(h, e->timeout_ms);
	return mix64(h);
}

void ir_diff_prints_free(struct ir_diff_prints *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_sets; i++)
		free(p->set[i].elem);
	free(p->set);
	for (size_t i = 0; i < p->n_chains; i++)
		free(p->chain[i].rule);
	free(p->chain);
	free(p->target);
	free(p);
}

static uint64_t target_hash(const char *chain)
{
	return mix64(policy_fnv64(POLICY_FNV64_OFFSET_BASIS, chain, strlen(chain)));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int target_push(struct ir_diff_prints *p, size_t *cap, const struct ir_verdict *v)
{
	if (v->kind != IR_V_JUMP && v->kind != IR_V_GOTO)
		return 0;
	if (POLICY_GROW(p->target, *cap, p->n_target, 64))
		return -ENOMEM;
	p->target[p->n_target++] = target_hash(v->chain);
	return 0;
}

/* Every chain that rules and map elements of t jump or go to. */
static int targets_make(const struct ir_table *t, struct ir_diff_prints *p)
{
	size_t cap = 0;
	for (size_t c = 0; c < t->n_chains; c++)
		for (size_t r = 0; r < t->chains[c].n_rules; r++)
			if (target_push(p, &cap, &t->chains[c].rules[r].verdict))
				return -ENOMEM;
	for (size_t i = 0; i < t->n_sets; i++)
		if (t->sets[i].data == IR_DATA_VERDICT)
			for (size_t e = 0; e < t->sets[i].n_elems; e++)
				if (target_push(p, &cap, &t->sets[i].elems[e].verdict))
					return -ENOMEM;
	if (p->n_target)
		qsort(p->target, p->n_target, sizeof(*p->target), cmp_u64);
	return 0;
}

static int chain_prints_make(const struct ir_table *t, struct ir_diff_prints *p)
{
	if (!(p->chain = calloc(t->n_chains ? t->n_chains : 1, sizeof(*p->chain))))
		return -ENOMEM;
	p->n_chains = t->n_chains;
	for (size_t i = 0; i < t->n_chains; i++) {
		const struct ir_chain *c = &t->chains[i];
		struct chain_print *cp = &p->chain[i];
		if (!(cp->rule = malloc((c->n_rules ? c->n_rules : 1) * sizeof(*cp->rule))))
			return -ENOMEM;
		uint64_t all = fold_word(0x9e3779b97f4a7c15ull, c->n_rules);
		for (size_t r = 0; r < c->n_rules; r++) {
			cp->rule[r] = ir_diff_rule_hash(t, &c->rules[r], POLICY_FNV64_OFFSET_BASIS);
			all = fold_word(all, cp->rule[r]);
		}
		cp->all = mix64(all);
		cp->rules = c->rules;
		cp->n = c->n_rules;
	}
	return 0;
}

int ir_diff_prints_make(const struct ir_table *t, struct ir_diff_prints **out)
{
	struct ir_diff_prints *p = calloc(1, sizeof(*p));
	*out = NULL;
	if (!p || !(p->set = calloc(t->n_sets ? t->n_sets : 1, sizeof(*p->set)))) {
		free(p);
		return -ENOMEM;
	}
	p->of = t;
	p->n_sets = t->n_sets;
	for (size_t i = 0; i < t->n_sets; i++) {
		const struct ir_set *s = &t->sets[i];
		struct set_print *sp = &p->set[i];
		if ((s->flags & IR_SET_DYNAMIC) || !s->n_elems)
			continue;
		if (!(sp->elem = malloc(s->n_elems * sizeof(*sp->elem)))) {
			ir_diff_prints_free(p);
			return -ENOMEM;
		}
		uint64_t all = fold_word(0x2545f4914f6cdd1dull, s->n_elems);
		for (size_t e = 0; e < s->n_elems; e++) {
			sp->elem[e] = elem_print(s, &s->elems[e]);
			all = fold_word(all, sp->elem[e]);
		}
		sp->all = mix64(all);
		sp->elems = s->elems;
		sp->n = s->n_elems;
	}
	if (chain_prints_make(t, p) || targets_make(t, p)) {
		ir_diff_prints_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

/* The prints of chain i of t, if p has them and they are still its own. */
static const struct chain_print *chain_print_of(const struct ir_diff_prints *p,
						const struct ir_table *t, size_t i)
{
	if (!p || p->of != t || i >= p->n_chains || !p->chain[i].rule)
		return NULL;
	const struct chain_print *cp = &p->chain[i];
	return cp->rules == t->chains[i].rules && cp->n == t->chains[i].n_rules ? cp : NULL;
}

/* The prints of set i of t, if p has them and they are still its own. */
static const struct set_print *print_of(const struct ir_diff_prints *p, const struct ir_table *t,
					size_t i)
{
	if (!p || p->of != t || i >= p->n_sets || !p->set[i].elem)
		return NULL;
	const struct set_print *sp = &p->set[i];
	return sp->elems == t->sets[i].elems && sp->n == t->sets[i].n_elems ? sp : NULL;
}

/* Elements of `os` not in `ns` are deleted, those of `ns` not in `os` added;
 * an element with the same key and other data is both. A common head and
 * tail (sets are kept sorted) are skipped at once; the middle is hashed. */
/* An element stays if it is the same and does not jump to a chain that is
 * made again. */
static bool elem_stays(const struct ir_set *s, const struct ir_set_elem *a,
		       const struct ir_set_elem *b, const struct ir_diff *d)
{
	return ir_elem_equal(s, a, b) &&
	       !(s->data == IR_DATA_VERDICT && verdict_to_recreated(d, &b->verdict));
}

static int elem_delta(const struct ir_set *os, const struct ir_set *ns, struct ir_diff_elems *out,
		      const struct ir_diff *d, const struct set_print *op,
		      const struct set_print *np)
{
	size_t head = 0, tail = 0;
	/* With prints: the same print is the same element; the head and tail
	 * cost 8 bytes each, and an element of a verdict map a look at its
	 * verdict when a chain is made again (it goes and comes with it). */
	if (op && np) {
		bool jumps = ns->data == IR_DATA_VERDICT && d->n_recreated;
		if (!jumps && op->n == np->n && op->all == np->all)
			return 0;
		while (head < op->n && head < np->n && op->elem[head] == np->elem[head] &&
		       !(jumps && verdict_to_recreated(d, &ns->elems[head].verdict)))
			head++;
		while (tail < op->n - head && tail < np->n - head &&
		       op->elem[op->n - 1 - tail] == np->elem[np->n - 1 - tail] &&
		       !(jumps && verdict_to_recreated(d, &ns->elems[np->n - 1 - tail].verdict)))
			tail++;
	} else {
		while (head < os->n_elems && head < ns->n_elems &&
		       elem_stays(ns, &os->elems[head], &ns->elems[head], d))
			head++;
		while (tail < os->n_elems - head && tail < ns->n_elems - head &&
		       elem_stays(ns, &os->elems[os->n_elems - 1 - tail],
				  &ns->elems[ns->n_elems - 1 - tail], d))
			tail++;
	}
	size_t o_end = os->n_elems - tail, n_end = ns->n_elems - tail;
	if (head == o_end) {
		for (size_t i = head; i < n_end; i++)
			if (push(&out->add, &out->n_add, i))
				return -ENOMEM;
		return 0;
	}
	struct policy_hmap x;
	bool *used = calloc(o_end - head, sizeof(*used));
	if (!used || policy_hmap_init(&x, o_end - head)) {
		free(used);
		return -ENOMEM;
	}
	int rc = 0;
	for (size_t i = head; !rc && i < o_end; i++)
		rc = policy_hmap_put(&x, elem_key_hash(ns, &os->elems[i]), i) ? -ENOMEM : 0;
	struct elem_probe p = { .os = os, .ns = ns, .used = used, .head = head };
	for (size_t i = head; !rc && i < n_end; i++) {
		const struct ir_set_elem *ne = &ns->elems[i];
		p.ne = ne;
		size_t found = policy_hmap_find(&x, elem_key_hash(ns, ne), elem_free_same_key, &p);
		if (found != POLICY_HMAP_NONE && elem_stays(ns, &os->elems[found], ne, d)) {
			used[found - head] = true;
			continue;
		}
		if (found != POLICY_HMAP_NONE) { /* same key, other data: delete first, then add */
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
	policy_hmap_free(&x);
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
static bool rule_uses_recreated(const struct ir_table *t, const struct ir_rule *ru,
				const struct ir_diff *d)
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
static bool rule_jumps_to_recreated(const struct ir_table *t, const struct ir_rule *ru,
				    const struct ir_diff *d)
{
	if (!d->n_recreated)
		return false;
	if (verdict_to_recreated(d, &ru->verdict))
		return true;
	for (size_t i = 0; i < ru->n_stmts; i++) {
		const struct ir_stmt *st = &ru->stmts[i];
		if (st->kind != IR_S_VMAP || st->set >= t->n_sets ||
		    !(t->sets[st->set].flags & IR_SET_ANONYMOUS))
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
	return ir_diff_rule_equal(o, a, n, b) && !rule_uses_recreated(n, b, d) &&
	       !rule_jumps_to_recreated(n, b, d);
}

/* Whether two sets of the same definition hold the same elements. */
static bool sets_same_content(const struct ir_set *os, const struct set_print *op,
			      const struct ir_set *ns, const struct set_print *np)
{
	if (op && np)
		return op->n == np->n && op->all == np->all;
	return ir_set_content_equal(os, ns);
}

static int diff_sets(const struct ir_table *o, const struct ir_diff_prints *opr,
		     const struct ir_table *n, const struct ir_diff_prints *npr, struct ir_diff *d)
{
	struct ir_names x;
	bool *kept = names_and_kept(&x, o, true);
	if (!kept)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_sets; i++) {
		const struct ir_set *ns = &n->sets[i];
		d->set_old[i] = IR_DIFF_NONE;
		d->set_op[i] = IR_DIFF_KEEP;
		d->n_objects += 1 + ns->n_elems;
		if (ns->flags & IR_SET_ANONYMOUS)
			continue;
		size_t j = names_get(&x, ns->name);
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
		const struct set_print *op = print_of(opr, o, j), *np = print_of(npr, n, i);
		/* A constant set's elements cannot change while rules use it. */
		if (!ir_set_def_equal(os, ns) ||
		    ((ns->flags & IR_SET_CONSTANT) && !sets_same_content(os, op, ns, np))) {
			d->set_op[i] = IR_DIFF_RECREATE;
			d->n_sets_recreated++;
			d->n_changed += 2 + ns->n_elems;
			d->n_sets_changed++;
			d->n_elems_added += ns->n_elems;
			d->n_elems_deleted += os->n_elems;
			continue;
		}
		rc = elem_delta(os, ns, &d->set_elems[i], d, op, np);
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
	ir_names_free(&x);
	return rc;
}

/* The rules of a running chain and of its candidate, with their prints
 * when both tables have them: then rules whose hashes differ differ, and
 * rules whose hashes are the same are taken for the same (as set elements
 * are, ir_diff.h) without comparing them field by field. */
struct rule_pair {
	const struct ir_table *o, *n;
	const struct ir_chain *oc, *nc;
	const struct chain_print *op, *np;
	const struct ir_diff *d;
};

static bool stays(const struct rule_pair *c, size_t a, size_t b)
{
	const struct ir_rule *nr = &c->nc->rules[b];
	if (!c->op || !c->np)
		return rule_stays(c->o, &c->oc->rules[a], c->n, nr, c->d);
	return c->op->rule[a] == c->np->rule[b] && !rule_uses_recreated(c->n, nr, c->d) &&
	       !rule_jumps_to_recreated(c->n, nr, c->d);
}

static bool chain_rules_equal(const struct rule_pair *c)
{
	if (c->oc->n_rules != c->nc->n_rules || (c->op && c->np && c->op->all != c->np->all))
		return false;
	/* The same prints, and no set or chain is made again: nothing of the
	 * chain has to go and come (the rules' own checks, at O(1) a chain). */
	if (c->op && c->np && !c->d->n_sets_recreated && !c->d->n_recreated)
		return true;
	for (size_t r = 0; r < c->nc->n_rules; r++)
		if (!stays(c, r, r))
			return false;
	return true;
}

/* The middle of two rule lists longer than this (product of lengths) is
 * not aligned rule by rule: all of it goes and comes (the table of a longest
 * common subsequence would take too long and too much memory). */
#define LCS_CELLS_MAX (1u << 20)

/* Aligns the rules of oc and nc: a common head and tail, then a longest
 * common subsequence of the middle. */
static int plan_rules(const struct rule_pair *c, struct ir_diff_rules *pl)
{
	const struct ir_chain *oc = c->oc, *nc = c->nc;
	size_t no = oc->n_rules, nn = nc->n_rules, head = 0, tail = 0;
	pl->old_of = malloc((nn ? nn : 1) * sizeof(*pl->old_of));
	if (!pl->old_of)
		return -ENOMEM;
	for (size_t j = 0; j < nn; j++)
		pl->old_of[j] = IR_DIFF_NONE;
	while (head < no && head < nn && stays(c, head, head)) {
		pl->old_of[head] = head;
		head++;
	}
	while (tail < no - head && tail < nn - head && stays(c, no - 1 - tail, nn - 1 - tail)) {
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
				if (stays(c, head + a, head + b))
					*cell = len[(a + 1) * (mn + 1) + b + 1] + 1;
				else {
					uint32_t down = len[(a + 1) * (mn + 1) + b],
						 right = len[a * (mn + 1) + b + 1];
					*cell = down > right ? down : right;
				}
			}
		for (size_t a = 0, b = 0; a < mo && b < mn;) {
			if (stays(c, head + a, head + b) &&
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

static int diff_chains(const struct ir_table *o, const struct ir_diff_prints *opr,
		       const struct ir_table *n, const struct ir_diff_prints *npr,
		       struct ir_diff *d)
{
	struct ir_names x;
	bool *kept = names_and_kept(&x, o, false);
	if (!kept)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_chains; i++) {
		const struct ir_chain *nc = &n->chains[i];
		d->n_objects += 1 + nc->n_rules;
		size_t j = names_get(&x, nc->name);
		d->chain_old[i] = j;
		d->chain_op[i] = IR_DIFF_KEEP;
		if (j == IR_DIFF_NONE) {
			mark_chain(d, nc, i, IR_DIFF_ADD);
			continue;
		}
		kept[j] = true;
		const struct ir_chain *oc = &o->chains[j];
		if (oc->hook != nc->hook ||
		    (nc->hook != IR_HOOK_NONE &&
		     (oc->type != nc->type || oc->priority != nc->priority))) {
			char why[160];
			snprintf(why, sizeof(why), "chain %.64s changed its hook, type or priority",
				 nc->name);
			go_full(d, why);
			continue;
		}
		if (strcmp(oc->comment, nc->comment)) {
			/* A chain's comment cannot be changed in place: a
			 * regular chain is made again (find_recreated()). */
			if (nc->hook != IR_HOOK_NONE) {
				char why[160];
				snprintf(why, sizeof(why),
					 "the comment of base chain %.64s changed", nc->name);
				go_full(d, why);
			} else {
				mark_chain(d, nc, i, IR_DIFF_RECREATE);
			}
			continue;
		}
		d->chain_policy[i] = nc->hook != IR_HOOK_NONE && oc->policy != nc->policy;
		if (d->chain_policy[i])
			d->n_changed++;
		struct rule_pair pair = {
			o, n, oc, nc, chain_print_of(opr, o, j), chain_print_of(npr, n, i), d
		};
		if (!chain_rules_equal(&pair)) {
			struct ir_diff_rules *pl = &d->chain_rules[i];
			if ((rc = plan_rules(&pair, pl)))
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
	ir_names_free(&x);
	return rc;
}

/* Whether the prints of t still describe all of it: every chain's rules
 * and every verdict map's elements are the ones they were made from (what
 * jumps where cannot have changed since). */
static bool prints_whole(const struct ir_diff_prints *p, const struct ir_table *t)
{
	if (!p || p->of != t || p->n_chains != t->n_chains || p->n_sets != t->n_sets)
		return false;
	for (size_t i = 0; i < t->n_chains; i++)
		if (!chain_print_of(p, t, i))
			return false;
	for (size_t i = 0; i < t->n_sets; i++)
		if (t->sets[i].data == IR_DATA_VERDICT && t->sets[i].n_elems && !print_of(p, t, i))
			return false;
	return true;
}

/* Whether something of the table p was made from may jump or go to chain
 * `name` (a hash collision says yes: the chain is then taken as a target). */
static bool is_target(const struct ir_diff_prints *p, const char *name)
{
	uint64_t h = target_hash(name);
	return p->n_target && bsearch(&h, p->target, p->n_target, sizeof(h), cmp_u64);
}

/* The regular chains of both whose comment differs: made again. Known
 * before sets and rules are compared, which must not keep what jumps there.
 * Only those something of the candidate jumps or goes to count here (with
 * whole prints of the candidate, which know the targets): the others take
 * nothing with them (the revision marker chain, made again by every apply,
 * is one). diff_chains() marks every one of them RECREATE all the same. */
static int find_recreated(const struct ir_table *o, const struct ir_table *n,
			  const struct ir_diff_prints *npr, struct ir_diff *d)
{
	bool targets_known = prints_whole(npr, n);
	struct ir_names x;
	size_t cap = 0;
	if (ir_names_index(&x, o, false, 0))
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; !rc && i < n->n_chains; i++) {
		size_t j = names_get(&x, n->chains[i].name);
		if (j == IR_DIFF_NONE || n->chains[i].hook != IR_HOOK_NONE ||
		    o->chains[j].hook != IR_HOOK_NONE ||
		    !strcmp(o->chains[j].comment, n->chains[i].comment) ||
		    (targets_known && !is_target(npr, n->chains[i].name)))
			continue;
		if (POLICY_GROW(d->recreated, cap, d->n_recreated, 8)) {
			rc = -ENOMEM;
			break;
		}
		d->recreated[d->n_recreated++] = n->chains[i].name;
	}
	ir_names_free(&x);
	return rc;
}

int ir_diff_compute(const struct ir_table *o, const struct ir_table *n, struct ir_diff **out)
{
	return ir_diff_compute_printed(o, NULL, n, NULL, out);
}

int ir_diff_compute_printed(const struct ir_table *o, const struct ir_diff_prints *opr,
			    const struct ir_table *n, const struct ir_diff_prints *npr,
			    struct ir_diff **out)
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
	if (!d->chain_rules || !d->chain_op || !d->chain_old || !d->chain_policy || !d->set_op ||
	    !d->set_old || !d->set_elems || find_recreated(o, n, npr, d) ||
	    diff_sets(o, opr, n, npr, d) || diff_chains(o, opr, n, npr, d)) {
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
