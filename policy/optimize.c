/* The optimizer (policy/optimize.h): named passes over the IR, run in order.
 *
 *   merge      adjacent rules of ONE policy rule (same comment) that differ in
 *              one match only become one rule over an anonymous set
 *              ("tcp port 22" + "udp port 22" -> meta l4proto { tcp, udp });
 *              rules of different policy rules are never merged, so every
 *              policy rule keeps a counter of its own
 *   dispatch   a run of DISPATCH_MIN_RUN or more adjacent rules that match
 *              exact values on the same fields becomes ONE verdict-map lookup
 *              (fields . fields vmap @dispatch_H) whose elements goto a small
 *              chain per rule holding that rule's counter, log and verdict:
 *              first match is kept (a key goes to the first rule that has it)
 *              and so are per-rule counters, but the cost per packet no longer
 *              grows with the number of rules. A run that differs in one
 *              address or port match with prefixes or ranges becomes an
 *              interval map, cut into pieces that each go to the first rule
 *              covering them
 *   inline     a set of one element becomes a plain compare, prefix or range
 *   name       anonymous address and port sets become named sets
 *              (addr4_H, addr6_H, port_H); identical named sets and maps are
 *              shared
 *   dedupe     a rule identical to an earlier one of its chain (matches,
 *              statements and verdict) can never match: dropped
 *   reachable  rules after an unconditional verdict are dropped
 *   sweep      sets no rule uses any more are removed
 *   size       large constant hash sets and maps get their element count
 *              as a size hint for the kernel
 */
#include <stdlib.h>
#include <string.h>

#include "policy/classify.h"
#include "policy/grow.h"
#include "policy/hash.h"
#include "policy/hmap.h"
#include "policy/ir_build.h"
#include "policy/ir_diff.h"
#include "policy/ir_names.h"
#include "policy/lower.h"
#include "policy/optimize.h"

/* Shorter runs cost little when evaluated linearly; a verdict map adds a
 * chain per rule, which only pays off for longer runs. */
#define DISPATCH_MIN_RUN 8
/* Keys one rule may contribute to a dispatch map (the cross product of its
 * set matches); beyond that the rule ends the run. */
#define DISPATCH_MAX_KEYS_PER_RULE 4096
/* Keys of one dispatch map: bounds the memory of building it (a key record
 * is a few hundred bytes); a longer run is cut into several maps. */
#define DISPATCH_MAX_KEYS (1u << 18)

/* ---- comparing IR ---- */

static bool set_content_eq(const struct ir_set *a, const struct ir_set *b)
{
	return a->n_key == b->n_key && !memcmp(a->key, b->key, a->n_key * sizeof(a->key[0])) &&
	       a->flags == b->flags && a->data == b->data && a->data_field == b->data_field &&
	       a->timeout_ms == b->timeout_ms && a->n_elems == b->n_elems &&
	       (!a->n_elems || !memcmp(a->elems, b->elems, a->n_elems * sizeof(*a->elems)));
}

/* Hashes the keys only (equal sets have equal keys; set_content_eq does
 * the full comparison): a fraction of the bytes of whole elements. */
static uint64_t set_content_hash(const struct ir_set *s)
{
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, s->key, s->n_key * sizeof(s->key[0]));
	h = policy_fnv64(h, &s->flags, sizeof(s->flags));
	h = policy_fnv64(h, &s->data, sizeof(s->data));
	h = policy_fnv64(h, &s->n_elems, sizeof(s->n_elems));
	for (size_t i = 0; i < s->n_elems; i++)
		for (size_t k = 0; k < s->n_key; k++)
			h = policy_fnv64(h, s->elems[i].key[k].data, s->elems[i].key[k].len);
	return h;
}

/* Same actions: statements and verdict. */
static bool actions_eq(const struct ir_table *t, const struct ir_rule *a, const struct ir_rule *b)
{
	if (a->n_stmts != b->n_stmts || !ir_verdict_equal(&a->verdict, &b->verdict))
		return false;
	for (size_t i = 0; i < a->n_stmts; i++)
		if (!ir_stmt_equal(t, &a->stmts[i], t, &b->stmts[i]))
			return false;
	return true;
}

static bool rule_eq(const struct ir_table *t, const struct ir_rule *a, const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches || !actions_eq(t, a, b))
		return false;
	for (size_t i = 0; i < a->n_matches; i++)
		if (!ir_match_equal(t, &a->matches[i], t, &b->matches[i]))
			return false;
	return true;
}

/* A hash consistent with rule_eq (anonymous sets hash by content). */
static uint64_t rule_hash(const struct ir_table *t, const struct ir_rule *r)
{
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, &r->n_matches, sizeof(r->n_matches));
	for (size_t i = 0; i < r->n_matches; i++) {
		const struct ir_match *m = &r->matches[i];
		h = policy_fnv64(h, &m->kind, sizeof(m->kind));
		h = policy_fnv64(h, m->field, m->n_field * sizeof(m->field[0]));
		if (m->kind == IR_M_LOOKUP && (t->sets[m->set].flags & IR_SET_ANONYMOUS)) {
			uint64_t content = set_content_hash(&t->sets[m->set]);
			h = policy_fnv64(h, &content, sizeof(content));
		} else if (m->kind == IR_M_LOOKUP) {
			h = policy_fnv64(h, &m->set, sizeof(m->set));
		} else
			h = policy_fnv64(h, m->value.data, m->value.len);
	}
	h = policy_fnv64(h, &r->n_stmts, sizeof(r->n_stmts));
	for (size_t i = 0; i < r->n_stmts; i++)
		h = policy_fnv64(h, &r->stmts[i].kind, sizeof(r->stmts[i].kind));
	h = policy_fnv64(h, &r->verdict.kind, sizeof(r->verdict.kind));
	return policy_fnv64(h, r->verdict.chain, strlen(r->verdict.chain));
}

/* Removes the rules of c marked in `drop`, keeping the order. */
static void chain_compact(struct ir_chain *c, const bool *drop)
{
	size_t out = 0;
	for (size_t i = 0; i < c->n_rules; i++) {
		if (drop[i]) {
			ir_rule_clear(&c->rules[i]);
			continue;
		}
		c->rules[out++] = c->rules[i];
	}
	c->n_rules = out;
}

/* ---- merge ---- */

static bool has_stmt(const struct ir_rule *r, enum ir_stmt_kind k)
{
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == k)
			return true;
	return false;
}

/* Statements that change what later rules see (marks, ct zone, NAT). Rules
 * around them are not merged or de-duplicated: two identical rules on either
 * side of a `meta mark set` can match different packets. */
static bool modifies(const struct ir_rule *r)
{
	return has_stmt(r, IR_S_SET_VALUE) || has_stmt(r, IR_S_SET_FROM_MAP) ||
	       has_stmt(r, IR_S_NAT);
}

static bool chain_modifies(const struct ir_chain *c)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (modifies(&c->rules[i]))
			return true;
	return false;
}

/* A match that can become (or already is) an anonymous set of its values. */
static bool settable(const struct ir_table *t, const struct ir_match *m)
{
	if (m->op != IR_OP_EQ || m->n_field != 1 || !ir_field_desc(m->field[0])->set_type)
		return false;
	switch (m->kind) {
	case IR_M_CMP: return !m->wildcard;
	case IR_M_PREFIX:
	case IR_M_RANGE: return true;
	case IR_M_LOOKUP:
		return (t->sets[m->set].flags & IR_SET_ANONYMOUS) &&
		       t->sets[m->set].data == IR_DATA_NONE;
	case IR_M_BITS: return false;
	}
	return false;
}

/* The position of the one match in which a and b differ, or -1. */
static int one_difference(const struct ir_table *t, const struct ir_rule *a,
			  const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches)
		return -1;
	int diff = -1;
	for (size_t i = 0; i < a->n_matches; i++) {
		if (ir_match_equal(t, &a->matches[i], t, &b->matches[i]))
			continue;
		if (diff >= 0 || a->matches[i].field[0] != b->matches[i].field[0] ||
		    !settable(t, &a->matches[i]) || !settable(t, &b->matches[i]))
			return -1;
		diff = (int)i;
	}
	return diff;
}

/* Adds the values a match accepts to set s. */
static int add_match_values(const struct ir_table *t, struct ir_set *s, const struct ir_match *m)
{
	if (m->kind == IR_M_LOOKUP) {
		const struct ir_set *src = &t->sets[m->set];
		for (size_t i = 0; i < src->n_elems; i++) {
			struct ir_set_elem *e = ir_set_elem_add(s);
			if (!e)
				return -1;
			*e = src->elems[i];
		}
		s->flags |= src->flags & IR_SET_INTERVAL;
		return 0;
	}
	struct ir_set_elem *e = ir_set_elem_add(s);
	if (!e)
		return -1;
	e->key[0] = m->value;
	if (m->kind == IR_M_RANGE) {
		e->key_end[0] = m->value_end;
		s->flags |= IR_SET_INTERVAL;
	} else if (m->kind == IR_M_PREFIX) {
		struct ir_value end = m->value;
		for (size_t i = m->prefix_len; i < (size_t)end.len * 8; i++)
			end.data[i / 8] |= (uint8_t)(0x80 >> (i % 8));
		e->key_end[0] = end;
		s->flags |= IR_SET_INTERVAL;
	}
	return 0;
}

/* Makes match m of rule r an anonymous set (if it is not one) and adds the
 * values of `other` to it. */
static int merge_into(struct ir_table *t, struct ir_match *m, const struct ir_match *other)
{
	if (m->kind != IR_M_LOOKUP) {
		size_t idx = ir_build_set(t, "__set%d", m->field, 1,
					  IR_SET_ANONYMOUS | IR_SET_CONSTANT, IR_DATA_NONE);
		if (idx == (size_t)-1)
			return -1;
		struct ir_set *s = &t->sets[idx];
		if (add_match_values(t, s, m))
			return -1;
		struct ir_match nm = {
			.kind = IR_M_LOOKUP, .n_field = 1, .op = IR_OP_EQ, .set = idx
		};
		nm.field[0] = m->field[0];
		*m = nm;
	}
	struct ir_set *s = &t->sets[m->set];
	if (add_match_values(t, s, other))
		return -1;
	/* sets referenced by the merged-away rule stay behind; sweep removes them */
	return ir_set_normalize(&t->sets[m->set]);
}

static int pass_merge(struct ir_table *t, struct policy_optimize_report *rep)
{
	for (size_t ci = 0; ci < t->n_chains; ci++) {
		struct ir_chain *c = &t->chains[ci];
		bool *drop = calloc(c->n_rules ? c->n_rules : 1, 1);
		if (!drop)
			return -1;
		size_t keep = 0;
		for (size_t i = 1; i < c->n_rules; i++) {
			struct ir_rule *a = &c->rules[keep], *b = &c->rules[i];
			int k = -1;
			if (a->comment[0] && !strcmp(a->comment, b->comment) &&
			    !has_stmt(a, IR_S_LIMIT) && !modifies(a) && actions_eq(t, a, b))
				k = one_difference(t, a, b);
			if (k < 0) {
				keep = i;
				continue;
			}
			if (merge_into(t, &a->matches[k], &b->matches[k])) {
				free(drop);
				return -1;
			}
			drop[i] = true;
			rep->rules_merged++;
		}
		chain_compact(c, drop);
		free(drop);
	}
	return 0;
}

/* ---- dispatch ---- */

/* A set whose elements dispatch may fold into a map: one rule's inline set,
 * or a large list that lowering shared between the copies of one rule
 * (policy/lower.c, clone_or_share_set). Dispatch only reads it; a shared set
 * that no rule uses afterwards is swept with the other unused sets. */
static bool foldable_set(const struct ir_set *s)
{
	return (s->flags & IR_SET_ANONYMOUS) ||
	       (!(s->flags & IR_SET_DYNAMIC) && !strncmp(s->name, "shared_", 7));
}

static bool exact_match(const struct ir_table *t, const struct ir_match *m)
{
	if (m->op != IR_OP_EQ || m->n_field != 1 || !ir_field_desc(m->field[0])->set_type)
		return false;
	if (m->kind == IR_M_CMP)
		return !m->wildcard;
	if (m->kind == IR_M_LOOKUP) {
		const struct ir_set *s = &t->sets[m->set];
		return foldable_set(s) && s->data == IR_DATA_NONE && s->n_key == 1 &&
		       !(s->flags & IR_SET_INTERVAL);
	}
	return false;
}

static size_t match_n_values(const struct ir_table *t, const struct ir_match *m)
{
	return m->kind == IR_M_LOOKUP ? t->sets[m->set].n_elems : 1;
}

static const struct ir_value *match_value(const struct ir_table *t, const struct ir_match *m,
					  size_t i)
{
	return m->kind == IR_M_LOOKUP ? &t->sets[m->set].elems[i].key[0] : &m->value;
}

/* Keys (or intervals) rule r adds to a dispatch map: the product of the
 * number of values of its matches. */
static size_t rule_key_count(const struct ir_table *t, const struct ir_rule *r)
{
	size_t keys = 1;
	for (size_t i = 0; i < r->n_matches; i++)
		if (r->matches[i].kind == IR_M_LOOKUP)
			keys *= t->sets[r->matches[i].set].n_elems
				    ? t->sets[r->matches[i].set].n_elems
				    : 1;
	return keys;
}

/* An address or port field: intervals of it can be map keys. */
static bool interval_field(enum ir_field f)
{
	enum ir_field_type ty = ir_field_desc(f)->type;
	return ty == IR_T_IPV4 || ty == IR_T_IPV6 || ty == IR_T_PORT;
}

/* A match that is an interval, or a set of intervals, of an address or port
 * (the interval mode of dispatch). */
static bool interval_match(const struct ir_table *t, const struct ir_match *m)
{
	if (m->op != IR_OP_EQ || m->n_field != 1 || !interval_field(m->field[0]))
		return false;
	if (m->kind == IR_M_PREFIX || m->kind == IR_M_RANGE)
		return true;
	if (m->kind == IR_M_LOOKUP) {
		const struct ir_set *s = &t->sets[m->set];
		return foldable_set(s) && s->data == IR_DATA_NONE && s->n_key == 1;
	}
	return false;
}

/* A rule that can be an element of a dispatch map: exact matches only (or,
 * with `intervals`, address and port intervals too), and a terminal action
 * that a goto'd chain can take over. */
static bool dispatchable(const struct ir_table *t, const struct ir_rule *r, bool intervals)
{
	if (!r->n_matches || has_stmt(r, IR_S_LIMIT) || has_stmt(r, IR_S_QUEUE))
		return false;
	bool terminal = r->verdict.kind == IR_V_ACCEPT || r->verdict.kind == IR_V_DROP ||
			(r->verdict.kind == IR_V_NONE && has_stmt(r, IR_S_REJECT));
	if (!terminal)
		return false;
	size_t keys = 1;
	for (size_t i = 0; i < r->n_matches; i++) {
		if (intervals && interval_match(t, &r->matches[i]))
			continue;
		if (!exact_match(t, &r->matches[i]))
			return false;
		keys *= match_n_values(t, &r->matches[i]);
		if (keys > DISPATCH_MAX_KEYS_PER_RULE)
			return false;
	}
	return true;
}

static bool same_shape(const struct ir_rule *a, const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches)
		return false;
	for (size_t i = 0; i < a->n_matches; i++)
		if (a->matches[i].field[0] != b->matches[i].field[0])
			return false;
	return true;
}

/* ---- names ----
 *
 * The objects the passes make are named by what they are, never by when
 * they were made (see the names of policy/classify.c): a name from a
 * running count moves with every rule added before it, and the incremental
 * commit (policy/ir_diff.c) would then see every later object changed. An
 * action chain (rule_H) is named by a hash of its one rule, a dispatch map
 * (dispatch_H) by a hash of its content (key, flags and elements with their
 * verdicts), a named address or port set (addr4_H, addr6_H, port_H) by its
 * type and its first use (set_use_hash: an element more stays an element
 * change of the same set). A change to one rule renames its action chain
 * and the map of its run, nothing else.
 *
 * A name taken by another object is a collision: the name gets the hash of
 * the same content with another seed appended, up to OPT_NAME_TRIES times.
 * Which of two colliding objects keeps the short name follows the order
 * they are made in; 64-bit hashes make that a case for the tests
 * (policy_optimize_name_bits). */
#define OPT_NAME_TRIES 8

unsigned policy_optimize_name_bits = 64;

/* The splitmix64 finalizer: every bit of x into every bit of the name. */
static uint64_t name_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t name_basis(unsigned seed)
{
	return POLICY_FNV64_OFFSET_BASIS ^ name_mix((uint64_t)seed + 1);
}

static uint64_t hash_value(uint64_t h, const struct ir_value *v)
{
	h = policy_fnv64(h, &v->len, sizeof(v->len));
	return policy_fnv64(h, v->data, v->len <= IR_VALUE_MAX ? v->len : 0);
}

/* A set's whole content, whatever its name and index. */
static uint64_t set_name_hash(const struct ir_table *t, const void *obj, uint64_t h)
{
	(void)t;
	const struct ir_set *s = obj;
	uint64_t head[7] = {
		s->n_key,   s->flags, (uint64_t)s->data, (uint64_t)s->data_field, s->timeout_ms,
		s->n_elems, 0
	};
	for (size_t k = 0; k < s->n_key && k < IR_CONCAT_MAX; k++)
		head[6] = head[6] * 131 + (uint64_t)s->key[k];
	h = policy_fnv64(h, head, sizeof(head));
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = &s->elems[i];
		for (size_t k = 0; k < s->n_key && k < IR_CONCAT_MAX; k++) {
			h = hash_value(h, &e->key[k]);
			h = hash_value(h, &e->key_end[k]);
		}
		uint64_t vk = (uint64_t)e->verdict.kind;
		h = policy_fnv64(h, &vk, sizeof(vk));
		h = policy_fnv64(h, e->verdict.chain, strnlen(e->verdict.chain, IR_NAME_MAX));
		h = hash_value(h, &e->data);
		h = policy_fnv64(h, &e->timeout_ms, sizeof(e->timeout_ms));
	}
	return h;
}

/* An action chain's one rule (ir_diff_rule_hash: sets by name or content). */
static uint64_t rule_name_hash(const struct ir_table *t, const void *obj, uint64_t h)
{
	return ir_diff_rule_hash(t, obj, h);
}

typedef uint64_t (*name_hash_fn)(const struct ir_table *t, const void *obj, uint64_t basis);

/* Names chain or set i of t (of the kind of r, the names taken, and not in
 * it yet) by prefix and the hash of obj, and indexes it in r. */
static int name_by_content(struct ir_table *t, struct ir_names *r, size_t i, const char *prefix,
			   name_hash_fn fn, const void *obj)
{
	uint64_t h = name_mix(fn(t, obj, name_basis(0)));
	if (policy_optimize_name_bits < 64)
		h &= (1ull << policy_optimize_name_bits) - 1;
	for (unsigned try = 0; try < OPT_NAME_TRIES; try++) {
		char name[IR_NAME_MAX];
		if (!try)
			snprintf(name, sizeof(name), "%s%016llx", prefix, (unsigned long long)h);
		else
			snprintf(name, sizeof(name), "%s%016llx_%016llx", prefix,
				 (unsigned long long)h,
				 (unsigned long long)name_mix(fn(t, obj, name_basis(try))));
		if (ir_names_get(r, name) != POLICY_HMAP_NONE)
			continue; /* a collision */
		char *dst = r->sets ? t->sets[i].name : t->chains[i].name;
		snprintf(dst, IR_NAME_MAX, "%s", name);
		return ir_names_put(r, i);
	}
	return -1; /* OPT_NAME_TRIES 64-bit hashes all taken: not seen */
}

/* A run already made into a map: its key matches and targets, so that the
 * same run met again (lowering gives every zone pair its copy of a rule)
 * reuses the map instead of building an identical one. */
struct run_memo {
	bool intervals;
	size_t n_rules, n_pos;
	struct ir_match *keys; /* n_rules * n_pos copies of the key matches */
	size_t *targets;       /* n_rules target chain indices */
	size_t map;
};

/* A run being looked up in the memo. */
struct run_probe {
	size_t ci, from, to;
	const size_t *pos;
	size_t n_pos;
	const size_t *targets;
	bool intervals;
};

struct dispatch {
	struct ir_table *t;
	struct policy_hmap targets;   /* action chains by content */
	struct ir_names chains, sets; /* names taken */
	const struct ir_rule *probe;  /* for target_eq */
	struct policy_hmap runs;      /* run_memo by run_hash */
	struct run_memo *memo;
	size_t n_memo, cap_memo;
	const struct run_probe *run_probe; /* for memo_eq */
};

static bool target_eq(void *ctx, size_t chain)
{
	struct dispatch *dp = ctx;
	const struct ir_rule *r = &dp->t->chains[chain].rules[0];
	return !strcmp(r->comment, dp->probe->comment) && actions_eq(dp->t, r, dp->probe);
}

static uint64_t actions_hash(const struct ir_rule *r)
{
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, r->comment, strlen(r->comment));
	for (size_t i = 0; i < r->n_stmts; i++) {
		h = policy_fnv64(h, &r->stmts[i].kind, sizeof(r->stmts[i].kind));
		h = policy_fnv64(h, r->stmts[i].log_prefix, strlen(r->stmts[i].log_prefix));
	}
	return policy_fnv64(h, &r->verdict.kind, sizeof(r->verdict.kind));
}

/* The chain that does what rule r does once matched (its statements and
 * verdict, with its comment); shared by every copy of the same rule. */
static int target_chain(struct dispatch *dp, const struct ir_rule *r, size_t *chain)
{
	uint64_t h = actions_hash(r);
	dp->probe = r;
	size_t found = policy_hmap_find(&dp->targets, h, target_eq, dp);
	if (found != POLICY_HMAP_NONE) {
		*chain = found;
		return 0;
	}
	struct ir_chain *c = ir_chain_add(dp->t, ""); /* named below, by its rule */
	struct ir_rule *nr = c ? ir_build_chain_rule(c, r->comment, &r->loc) : NULL;
	if (!nr)
		return -1;
	nr->verdict = r->verdict;
	for (size_t i = 0; i < r->n_stmts; i++) {
		struct ir_stmt *s = ir_stmt_add(nr);
		if (!s)
			return -1;
		*s = r->stmts[i];
	}
	*chain = dp->t->n_chains - 1;
	if (name_by_content(dp->t, &dp->chains, *chain, "rule_", rule_name_hash, nr))
		return -1;
	return policy_hmap_put(&dp->targets, h, *chain);
}

/* One key of a dispatch map while it is built: pointers to its values (in
 * the rules' matches and sets, which do not move while a run is built), so
 * that sorting moves a few words, not whole elements. */
struct key_rec {
	const struct ir_value *key[IR_CONCAT_MAX];
	size_t n_key;
	size_t order;  /* position in the run: first wins */
	size_t target; /* chain index */
};

static int key_cmp(const struct key_rec *x, const struct key_rec *y)
{
	for (size_t k = 0; k < x->n_key; k++) {
		int c = memcmp(x->key[k]->data, y->key[k]->data, x->key[k]->len);
		if (c)
			return c;
	}
	return 0;
}

static int key_rec_cmp(const void *a, const void *b)
{
	const struct key_rec *x = a, *y = b;
	int c = key_cmp(x, y);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Keys of rule r over the key positions (cross product of its values). */
static int rule_keys(const struct ir_table *t, const struct ir_rule *r, const size_t *pos,
		     size_t n_pos, size_t order, size_t target, struct key_rec **recs, size_t *n,
		     size_t *cap)
{
	size_t total = 1;
	for (size_t k = 0; k < n_pos; k++)
		total *= match_n_values(t, &r->matches[pos[k]]);
	if (POLICY_RESERVE(*recs, *cap, *n + total, 256))
		return -1;
	for (size_t i = 0; i < total; i++) {
		struct key_rec *kr = &(*recs)[(*n)++];
		kr->n_key = n_pos;
		kr->order = order;
		kr->target = target;
		size_t rest = i;
		for (size_t k = 0; k < n_pos; k++) {
			const struct ir_match *m = &r->matches[pos[k]];
			size_t nv = match_n_values(t, m);
			kr->key[k] = match_value(t, m, rest % nv);
			rest /= nv;
		}
	}
	return 0;
}

/* Replaces rules [from, to) of chain ci by one dispatch rule. */
/* The first rule of run [from, to) of chain ci becomes the dispatch rule:
 * its common matches, then `key fields vmap @map`; the others go. */
static int dispatch_rule(struct ir_table *t, size_t ci, size_t from, size_t to, const size_t *pos,
			 size_t n_pos, size_t map, bool *drop)
{
	struct ir_rule *r = &t->chains[ci].rules[from];
	size_t out = 0;
	for (size_t i = 0; i < r->n_matches; i++) {
		bool is_key = false;
		for (size_t k = 0; k < n_pos; k++)
			is_key = is_key || pos[k] == i;
		if (!is_key)
			r->matches[out++] = r->matches[i];
	}
	r->n_matches = out;
	r->n_stmts = 0;
	if (!ir_build_vmap(r, t->sets[map].key, n_pos, map))
		return -1;
	r->verdict.kind = IR_V_NONE;
	snprintf(r->comment, sizeof(r->comment), POLICY_COMMENT_DISPATCH);
	for (size_t j = from + 1; j < to; j++)
		drop[j] = true;
	return 1;
}

/* The positions of the matches that differ within run [from, to); -1 if
 * the run cannot be one lookup. */
static int key_positions(const struct ir_table *t, size_t ci, size_t from, size_t to, size_t *pos,
			 size_t *n_pos)
{
	const struct ir_rule *first = &t->chains[ci].rules[from];
	*n_pos = 0;
	for (size_t i = 0; i < first->n_matches; i++) {
		bool common = true;
		for (size_t j = from + 1; j < to && common; j++)
			common = ir_match_equal(t, &first->matches[i], t,
						&t->chains[ci].rules[j].matches[i]);
		if (common)
			continue;
		if (*n_pos == IR_CONCAT_MAX || first->matches[i].field[0] == IR_META_NFPROTO)
			return -1; /* not expressible: leave the run alone */
		pos[(*n_pos)++] = i;
	}
	return *n_pos ? 0 : -1;
}

/* ---- the run memo ---- */

static uint64_t match_hash(const struct ir_table *t, const struct ir_match *m)
{
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, &m->kind, sizeof(m->kind));
	h = policy_fnv64(h, &m->field[0], sizeof(m->field[0]));
	h = policy_fnv64(h, &m->op, sizeof(m->op));
	if (m->kind != IR_M_LOOKUP)
		return policy_fnv64(h, m->value.data, m->value.len);
	const struct ir_set *s = &t->sets[m->set];
	if (!(s->flags & IR_SET_ANONYMOUS))
		return policy_fnv64(h, &m->set, sizeof(m->set)); /* named sets are equal by index */
	return policy_fnv64(h, &s->n_elems, sizeof(s->n_elems));
}

static uint64_t run_hash(const struct ir_table *t, const struct run_probe *p)
{
	uint64_t h = policy_fnv64(POLICY_FNV64_OFFSET_BASIS, &p->intervals, sizeof(p->intervals));
	size_t n_rules = p->to - p->from;
	h = policy_fnv64(h, &n_rules, sizeof(n_rules));
	h = policy_fnv64(h, p->targets, n_rules * sizeof(*p->targets));
	for (size_t j = p->from; j < p->to; j++)
		for (size_t k = 0; k < p->n_pos; k++)
			h ^= match_hash(t, &t->chains[p->ci].rules[j].matches[p->pos[k]]) + j;
	return h;
}

static bool memo_eq(void *ctx, size_t idx)
{
	const struct dispatch *dp = ctx;
	const struct run_probe *p = dp->run_probe;
	const struct run_memo *m = &dp->memo[idx];
	size_t n_rules = p->to - p->from;
	if (m->intervals != p->intervals || m->n_rules != n_rules || m->n_pos != p->n_pos ||
	    memcmp(m->targets, p->targets, n_rules * sizeof(*p->targets)))
		return false;
	for (size_t j = 0; j < n_rules; j++)
		for (size_t k = 0; k < p->n_pos; k++)
			if (!ir_match_equal(
				dp->t, &m->keys[j * p->n_pos + k], dp->t,
				&dp->t->chains[p->ci].rules[p->from + j].matches[p->pos[k]]))
				return false;
	return true;
}

/* The map an identical run was made into, or (size_t)-1; *h is for
 * memo_add. */
static size_t memo_find(struct dispatch *dp, const struct run_probe *p, uint64_t *h)
{
	*h = run_hash(dp->t, p);
	dp->run_probe = p;
	size_t found = policy_hmap_find(&dp->runs, *h, memo_eq, dp);
	return found == POLICY_HMAP_NONE ? (size_t)-1 : dp->memo[found].map;
}

static int memo_add(struct dispatch *dp, const struct run_probe *p, uint64_t h, size_t map)
{
	if (!policy_hmap_has_room(&dp->runs))
		return 0; /* full: the run is built again if met again, which is only slower */
	if (POLICY_GROW(dp->memo, dp->cap_memo, dp->n_memo, 16))
		return -1;
	size_t n_rules = p->to - p->from;
	struct run_memo *m = &dp->memo[dp->n_memo];
	*m = (struct run_memo){
		.intervals = p->intervals, .n_rules = n_rules, .n_pos = p->n_pos, .map = map
	};
	m->keys = malloc(n_rules * p->n_pos * sizeof(*m->keys));
	m->targets = malloc(n_rules * sizeof(*m->targets));
	if (!m->keys || !m->targets) {
		free(m->keys);
		free(m->targets);
		return -1;
	}
	memcpy(m->targets, p->targets, n_rules * sizeof(*m->targets));
	for (size_t j = 0; j < n_rules; j++)
		for (size_t k = 0; k < p->n_pos; k++)
			m->keys[j * p->n_pos + k] =
			    dp->t->chains[p->ci].rules[p->from + j].matches[p->pos[k]];
	return policy_hmap_put(&dp->runs, h, dp->n_memo++);
}

static void memo_free(struct dispatch *dp)
{
	for (size_t i = 0; i < dp->n_memo; i++) {
		free(dp->memo[i].keys);
		free(dp->memo[i].targets);
	}
	free(dp->memo);
	policy_hmap_free(&dp->runs);
}

/* The target chain of every rule of run [from, to) of chain ci. */
static size_t *run_targets(struct dispatch *dp, size_t ci, size_t from, size_t to)
{
	size_t *targets = malloc((to - from) * sizeof(*targets));
	for (size_t j = from; targets && j < to; j++)
		/* chains move when target_chain adds one: index, not pointer */
		if (target_chain(dp, &dp->t->chains[ci].rules[j], &targets[j - from])) {
			free(targets);
			return NULL;
		}
	return targets;
}

/* ---- dispatch over exact values ---- */

static int build_exact_map(struct dispatch *dp, size_t ci, const struct run_probe *p, size_t idx)
{
	struct ir_table *t = dp->t;
	struct key_rec *recs = NULL;
	size_t n = 0, cap = 0;
	for (size_t j = p->from; j < p->to; j++)
		if (rule_keys(t, &t->chains[ci].rules[j], p->pos, p->n_pos, j,
			      p->targets[j - p->from], &recs, &n, &cap)) {
			free(recs);
			return -1;
		}
	if (!n)
		return 0; /* every set of the run is empty: an empty map */
	qsort(recs, n, sizeof(*recs), key_rec_cmp);
	struct ir_set *s = &t->sets[idx];
	size_t unique = 1;
	for (size_t i = 1; i < n; i++)
		unique += key_cmp(&recs[i], &recs[i - 1]) != 0;
	int rc = ir_set_reserve(s, unique);
	for (size_t i = 0; !rc && i < n; i++) {
		if (i && !key_cmp(&recs[i], &recs[i - 1]))
			continue; /* an earlier rule has this key: first match wins */
		struct ir_set_elem *e = ir_set_elem_add(s);
		if (!e) {
			rc = -1;
			break;
		}
		for (size_t k = 0; k < p->n_pos; k++)
			e->key[k] = *recs[i].key[k];
		e->verdict.kind = IR_V_GOTO;
		snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s",
			 t->chains[recs[i].target].name);
	}
	free(recs);
	return rc;
}

/* ---- dispatch over intervals ----
 *
 * A run whose rules differ in one address or port match only, where some of
 * them are prefixes or ranges, becomes one interval verdict map. The
 * intervals of the rules may overlap; first match is kept by cutting the
 * key space into pieces at every interval edge and giving each piece to the
 * first rule (lowest position) that covers it (a sweep with a min-heap of
 * the rules covering the current piece). */

static int span_lo_cmp(const void *a, const void *b)
{
	const struct policy_span *x = a, *y = b;
	return memcmp(x->lo.data, y->lo.data, x->lo.len);
}

static int value_cmp_sort(const void *a, const void *b)
{
	const struct ir_value *x = a, *y = b;
	return memcmp(x->data, y->data, x->len);
}

/* Min-heap of span indices ordered by rule position. */
struct heap {
	size_t *v, n;
	const struct policy_span *spans;
};

static bool heap_less(const struct heap *h, size_t a, size_t b)
{
	return h->spans[h->v[a]].rule < h->spans[h->v[b]].rule;
}

static void heap_swap(struct heap *h, size_t a, size_t b)
{
	size_t x = h->v[a];
	h->v[a] = h->v[b];
	h->v[b] = x;
}

static void heap_push(struct heap *h, size_t span)
{
	size_t i = h->n++;
	h->v[i] = span;
	while (i && heap_less(h, i, (i - 1) / 2)) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_pop(struct heap *h)
{
	h->v[0] = h->v[--h->n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && heap_less(h, l, m))
			m = l;
		if (r < h->n && heap_less(h, r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(h, i, m);
		i = m;
	}
}

/* The values (as intervals) a match accepts, appended to spans. */
static int match_spans(const struct ir_table *t, const struct ir_match *m, size_t rule,
		       struct policy_span **v, size_t *n, size_t *cap)
{
	size_t count = m->kind == IR_M_LOOKUP ? t->sets[m->set].n_elems : 1;
	if (POLICY_RESERVE(*v, *cap, *n + count, 16))
		return -1;
	for (size_t i = 0; i < count; i++) {
		struct policy_span *sp = &(*v)[(*n)++];
		sp->rule = rule;
		if (m->kind == IR_M_LOOKUP) {
			sp->lo = t->sets[m->set].elems[i].key[0];
			sp->hi = *ir_elem_end(&t->sets[m->set].elems[i]);
		} else {
			sp->lo = sp->hi = m->value;
			if (m->kind == IR_M_RANGE)
				sp->hi = m->value_end;
			for (size_t b = m->prefix_len;
			     m->kind == IR_M_PREFIX && b < (size_t)sp->hi.len * 8; b++)
				sp->hi.data[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		}
	}
	return 0;
}

/* Adds [lo, hi] -> targets[rule] to map s, joining it to the last element
 * when that goes to the same rule and ends right before lo. */
static int add_piece(struct ir_set *s, const struct ir_value *lo, const struct ir_value *hi,
		     const char *target)
{
	if (s->n_elems) {
		struct ir_set_elem *last = &s->elems[s->n_elems - 1];
		struct ir_value next = *ir_elem_end(last);
		if (!strcmp(last->verdict.chain, target) && ir_value_step(&next, 1) &&
		    !memcmp(next.data, lo->data, lo->len)) {
			last->key_end[0] = *hi;
			return 0;
		}
	}
	struct ir_set_elem *e = ir_set_elem_add(s);
	if (!e)
		return -1;
	e->key[0] = *lo;
	if (memcmp(lo->data, hi->data, lo->len))
		e->key_end[0] = *hi;
	e->verdict.kind = IR_V_GOTO;
	snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s", target);
	return 0;
}

/* Sweeps the sorted spans into first-match pieces of map s. */
static int sweep_spans(const struct ir_table *t, struct ir_set *s, const struct policy_span *spans,
		       size_t n, const size_t *targets)
{
	struct ir_value *edges = malloc(2 * n * sizeof(*edges));
	struct heap h = { .v = malloc(n * sizeof(size_t)), .spans = spans };
	if (!edges || !h.v) {
		free(edges);
		free(h.v);
		return -1;
	}
	size_t ne = 0;
	for (size_t i = 0; i < n; i++) {
		edges[ne++] = spans[i].lo;
		struct ir_value after = spans[i].hi;
		if (ir_value_step(&after, 1))
			edges[ne++] = after;
	}
	qsort(edges, ne, sizeof(*edges), value_cmp_sort);
	size_t next = 0, k = 0;
	int rc = 0;
	while (!rc && k < ne) {
		const struct ir_value *at = &edges[k];
		while (next < n && memcmp(spans[next].lo.data, at->data, at->len) <= 0)
			heap_push(&h, next++);
		while (h.n && memcmp(spans[h.v[0]].hi.data, at->data, at->len) < 0)
			heap_pop(&h); /* ended before this piece */
		size_t k2 = k + 1;
		while (k2 < ne && !memcmp(edges[k2].data, at->data, at->len))
			k2++; /* skip equal edges */
		if (h.n) {
			struct ir_value end;
			if (k2 < ne) {
				end = edges[k2];
				ir_value_step(&end, -1);
			} else {
				end = spans[h.v[0]].hi; /* runs to the top of the key space */
			}
			rc = add_piece(s, at, &end, t->chains[targets[spans[h.v[0]].rule]].name);
		}
		k = k2;
	}
	free(edges);
	free(h.v);
	return rc;
}

int policy_first_match_map(const struct ir_table *t, struct ir_set *s, struct policy_span *spans,
			   size_t n, const size_t *targets)
{
	qsort(spans, n, sizeof(*spans), span_lo_cmp);
	return sweep_spans(t, s, spans, n, targets);
}

static int build_interval_map(struct dispatch *dp, size_t ci, const struct run_probe *p, size_t idx)
{
	struct ir_table *t = dp->t;
	struct policy_span *spans = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (size_t j = p->from; !rc && j < p->to; j++)
		rc = match_spans(t, &t->chains[ci].rules[j].matches[p->pos[0]], j - p->from, &spans,
				 &n, &cap);
	if (!rc)
		rc = policy_first_match_map(t, &t->sets[idx], spans, n, p->targets);
	free(spans);
	return rc;
}

/* ---- runs to maps ---- */

/* Run [from, to) of chain ci, keyed by the matches at pos, becomes one map
 * lookup: the map an identical run was made into, or a new one (exact
 * keys, or intervals of one field). */
static int map_run(struct dispatch *dp, size_t ci, size_t from, size_t to, const size_t *pos,
		   size_t n_pos, bool intervals, bool *drop)
{
	struct ir_table *t = dp->t;
	size_t *targets = run_targets(dp, ci, from, to);
	if (!targets)
		return -1;
	struct run_probe p = { .ci = ci,
			       .from = from,
			       .to = to,
			       .pos = pos,
			       .n_pos = n_pos,
			       .targets = targets,
			       .intervals = intervals };
	uint64_t h;
	size_t idx = memo_find(dp, &p, &h);
	if (idx == (size_t)-1) {
		enum ir_field key[IR_CONCAT_MAX];
		for (size_t k = 0; k < n_pos; k++)
			key[k] = t->chains[ci].rules[from].matches[pos[k]].field[0];
		/* named below, by its elements */
		idx = ir_build_set(t, "", key, n_pos, intervals ? IR_SET_INTERVAL : 0,
				   IR_DATA_VERDICT);
		int rc = idx == (size_t)-1 ? -1 : 0;
		if (!rc) {
			rc = intervals ? build_interval_map(dp, ci, &p, idx)
				       : build_exact_map(dp, ci, &p, idx);
		}
		if (!rc)
			rc = name_by_content(t, &dp->sets, idx, "dispatch_", set_name_hash,
					     &t->sets[idx]);
		if (!rc)
			rc = memo_add(dp, &p, h, idx);
		if (rc) {
			free(targets);
			return -1;
		}
	}
	free(targets);
	return dispatch_rule(t, ci, from, to, pos, n_pos, idx, drop);
}

/* A run of exact matches: the rules differ in matches of single values or
 * sets of them (keys are their cross product). */
static int dispatch_run(struct dispatch *dp, size_t ci, size_t from, size_t to, bool *drop)
{
	struct ir_table *t = dp->t;
	size_t pos[IR_CONCAT_MAX], n_pos = 0;
	if (key_positions(t, ci, from, to, pos, &n_pos))
		return 0;
	size_t keys = 0;
	for (size_t j = from; j < to; j++) {
		size_t rule = 1;
		for (size_t k = 0; k < n_pos; k++) {
			const struct ir_match *m = &t->chains[ci].rules[j].matches[pos[k]];
			if (!exact_match(t, m))
				return 0;
			rule *= match_n_values(t, m);
		}
		keys += rule;
	}
	return keys ? map_run(dp, ci, from, to, pos, n_pos, false, drop) : 0;
}

/* A run that differs in one address or port field, with intervals. */
static int interval_run(struct dispatch *dp, size_t ci, size_t from, size_t to, bool *drop)
{
	struct ir_table *t = dp->t;
	size_t pos[IR_CONCAT_MAX], n_pos;
	if (key_positions(t, ci, from, to, pos, &n_pos) || n_pos != 1 ||
	    !interval_field(t->chains[ci].rules[from].matches[pos[0]].field[0]))
		return 0;
	size_t spans = 0;
	for (size_t j = from; j < to; j++)
		spans += match_n_values(t, &t->chains[ci].rules[j].matches[pos[0]]);
	return spans ? map_run(dp, ci, from, to, pos, 1, true, drop) : 0;
}

static int pass_dispatch(struct ir_table *t, struct policy_optimize_report *rep)
{
	struct dispatch dp = { .t = t };
	size_t rules = 0;
	for (size_t ci = 0; ci < t->n_chains; ci++)
		rules += t->chains[ci].n_rules;
	if (policy_hmap_init(&dp.targets, 64))
		return -1;
	if (policy_hmap_init(&dp.runs, rules / DISPATCH_MIN_RUN + 1)) {
		policy_hmap_free(&dp.targets);
		return -1;
	}
	if (ir_names_index(&dp.chains, t, false, 64)) {
		policy_hmap_free(&dp.targets);
		policy_hmap_free(&dp.runs);
		return -1;
	}
	if (ir_names_index(&dp.sets, t, true, 64)) {
		ir_names_free(&dp.chains);
		policy_hmap_free(&dp.targets);
		policy_hmap_free(&dp.runs);
		return -1;
	}
	size_t n_chains = t->n_chains; /* target chains added below are not scanned */
	int rc = 0;
	for (size_t ci = 0; !rc && ci < n_chains; ci++) {
		/* exact runs first (hash lookups), then interval runs among the rest */
		for (int intervals = 0; !rc && intervals < 2; intervals++) {
			size_t n_rules = t->chains[ci].n_rules;
			bool *drop = calloc(n_rules ? n_rules : 1, 1);
			if (!drop) {
				rc = -1;
				break;
			}
			size_t i = 0;
			while (!rc && i < n_rules) {
				const struct ir_rule *a = &t->chains[ci].rules[i];
				size_t j = i, keys = 0;
				while (j < n_rules &&
				       dispatchable(t, &t->chains[ci].rules[j], intervals) &&
				       same_shape(a, &t->chains[ci].rules[j])) {
					keys += rule_key_count(t, &t->chains[ci].rules[j]);
					if (keys > DISPATCH_MAX_KEYS && j > i)
						break;
					j++;
				}
				if (j - i >= DISPATCH_MIN_RUN) {
					int done = intervals ? interval_run(&dp, ci, i, j, drop)
							     : dispatch_run(&dp, ci, i, j, drop);
					if (done < 0)
						rc = -1;
					else if (done) {
						rep->runs_dispatched++;
						rep->rules_dispatched += j - i;
					}
				}
				i = j > i ? j : i + 1;
			}
			if (!rc)
				chain_compact(&t->chains[ci], drop);
			free(drop);
		}
	}
	policy_hmap_free(&dp.targets);
	ir_names_free(&dp.chains);
	ir_names_free(&dp.sets);
	memo_free(&dp);
	return rc;
}

/* ---- inline ---- */

static void inline_match(struct ir_table *t, struct ir_match *m, struct policy_optimize_report *rep)
{
	if (m->kind != IR_M_LOOKUP)
		return;
	const struct ir_set *s = &t->sets[m->set];
	if (!(s->flags & IR_SET_ANONYMOUS) || s->n_elems != 1 || s->n_key != 1 ||
	    s->data != IR_DATA_NONE)
		return;
	const struct ir_set_elem *e = &s->elems[0];
	const struct ir_value *end = ir_elem_end(e);
	const struct ir_field_desc *fd = ir_field_desc(s->key[0]);
	struct ir_match nm = { .n_field = 1, .op = m->op, .value = e->key[0] };
	nm.field[0] = s->key[0];
	if (!memcmp(end->data, e->key[0].data, e->key[0].len)) {
		nm.kind = IR_M_CMP;
	} else if (fd->type == IR_T_IFNAME) {
		nm.kind = IR_M_CMP;
		nm.wildcard = true;
	} else if ((fd->type == IR_T_IPV4 || fd->type == IR_T_IPV6) &&
		   ir_value_prefix_len(&e->key[0], end) >= 0) {
		nm.kind = IR_M_PREFIX;
		nm.prefix_len = (uint8_t)ir_value_prefix_len(&e->key[0], end);
	} else {
		nm.kind = IR_M_RANGE;
		nm.value_end = *end;
	}
	*m = nm;
	rep->sets_inlined++;
}

static void pass_inline(struct ir_table *t, struct policy_optimize_report *rep)
{
	for (size_t ci = 0; ci < t->n_chains; ci++)
		for (size_t ri = 0; ri < t->chains[ci].n_rules; ri++) {
			struct ir_rule *r = &t->chains[ci].rules[ri];
			for (size_t mi = 0; mi < r->n_matches; mi++)
				inline_match(t, &r->matches[mi], rep);
		}
}

/* ---- name and share ---- */

static const char *name_prefix(const struct ir_set *s)
{
	if (s->n_key != 1 || s->data != IR_DATA_NONE)
		return NULL;
	switch (ir_field_desc(s->key[0])->type) {
	case IR_T_IPV4: return "addr4";
	case IR_T_IPV6: return "addr6";
	case IR_T_PORT: return "port";
	default: return NULL;
	}
}

struct share {
	struct ir_table *t;
	size_t probe;
};

/* Where a set is used first (table order): a named address or port set is
 * named by it, not by its elements, so that an element more or less is an
 * element change of the same set (and no rule that uses it changes). */
struct set_use {
	const struct ir_set *s;
	const struct ir_chain *c; /* NULL: no rule uses it */
	const struct ir_rule *r;
	size_t match;
};

static uint64_t set_use_hash(const struct ir_table *t, const void *obj, uint64_t h)
{
	const struct set_use *u = obj;
	if (!u->c)
		return set_name_hash(t, u->s, h);
	const struct ir_set *s = u->s;
	uint64_t head[6] = { s->n_key, s->flags,        (uint64_t)s->data,
			     u->match, u->r->n_matches, (uint64_t)u->r->verdict.kind };
	for (size_t k = 0; k < s->n_key && k < IR_CONCAT_MAX; k++)
		head[0] = head[0] * 131 + (uint64_t)s->key[k];
	h = policy_fnv64(h, head, sizeof(head));
	h = policy_fnv64(h, u->c->name, strlen(u->c->name));
	h = policy_fnv64(h, u->r->comment, strlen(u->r->comment));
	h = policy_fnv64(h, u->r->verdict.chain, strnlen(u->r->verdict.chain, IR_NAME_MAX));
	/* the rule's other matches, sets by their kind only (their elements
	 * may change while the name stays) */
	for (size_t i = 0; i < u->r->n_matches; i++) {
		const struct ir_match *m = &u->r->matches[i];
		uint64_t mh[4] = { (uint64_t)m->kind, (uint64_t)m->op, m->n_field, m->prefix_len };
		for (size_t k = 0; k < m->n_field && k < IR_CONCAT_MAX; k++)
			mh[2] = mh[2] * 131 + (uint64_t)m->field[k];
		if (m->kind != IR_M_LOOKUP)
			mh[2] = mh[2] * 131 + (uint64_t)m->field[0];
		h = policy_fnv64(h, mh, sizeof(mh));
		if (m->kind != IR_M_LOOKUP) {
			h = hash_value(h, &m->value);
			h = hash_value(h, &m->value_end);
		}
	}
	return h;
}

/* The first use of every set; NULL on ENOMEM. */
static struct set_use *set_uses(const struct ir_table *t)
{
	struct set_use *u = calloc(t->n_sets ? t->n_sets : 1, sizeof(*u));
	for (size_t ci = 0; u && ci < t->n_chains; ci++)
		for (size_t ri = 0; ri < t->chains[ci].n_rules; ri++) {
			const struct ir_rule *r = &t->chains[ci].rules[ri];
			for (size_t mi = 0; mi < r->n_matches; mi++) {
				size_t si = r->matches[mi].set;
				if (r->matches[mi].kind != IR_M_LOOKUP || si >= t->n_sets ||
				    u[si].c)
					continue;
				u[si] =
				    (struct set_use){ .c = &t->chains[ci], .r = r, .match = mi };
			}
		}
	for (size_t i = 0; u && i < t->n_sets; i++)
		u[i].s = &t->sets[i];
	return u;
}

static bool share_eq(void *ctx, size_t idx)
{
	struct share *sh = ctx;
	return set_content_eq(&sh->t->sets[idx], &sh->t->sets[sh->probe]);
}

/* Named sets (and the address/port sets made named here) with the same
 * content become one; remap[] sends every set to its representative. */
static int pass_name(struct ir_table *t, struct policy_optimize_report *rep)
{
	size_t *remap = malloc((t->n_sets ? t->n_sets : 1) * sizeof(*remap));
	struct policy_hmap seen;
	if (!remap || policy_hmap_init(&seen, t->n_sets)) {
		free(remap);
		return -1;
	}
	struct share sh = { .t = t };
	struct ir_names names;
	struct set_use *uses = set_uses(t);
	if (!uses || ir_names_index(&names, t, true, 64)) {
		free(uses);
		policy_hmap_free(&seen);
		free(remap);
		return -1;
	}
	for (size_t i = 0; i < t->n_sets; i++) {
		struct ir_set *s = &t->sets[i];
		remap[i] = i;
		const char *prefix = name_prefix(s);
		bool anon = s->flags & IR_SET_ANONYMOUS;
		if ((anon && !prefix) || (s->flags & IR_SET_DYNAMIC))
			continue;
		if (anon) {
			/* named sets can be listed and diffed; constant only matters inline */
			s->flags &= ~(IR_SET_ANONYMOUS | IR_SET_CONSTANT);
			s->name[0] = '\0';
		}
		uint64_t h = set_content_hash(s);
		sh.probe = i;
		size_t found = policy_hmap_find(&seen, h, share_eq, &sh);
		if (found != POLICY_HMAP_NONE) {
			remap[i] = found;
			rep->sets_shared++;
			continue;
		}
		char pre[16];
		snprintf(pre, sizeof(pre), "%s_", prefix ? prefix : "");
		if (policy_hmap_put(&seen, h, i) ||
		    (anon && name_by_content(t, &names, i, pre, set_use_hash, &uses[i]))) {
			free(uses);
			ir_names_free(&names);
			policy_hmap_free(&seen);
			free(remap);
			return -1;
		}
		if (anon)
			rep->sets_named++;
	}
	free(uses);
	ir_names_free(&names);
	policy_hmap_free(&seen);
	ir_table_remap_sets(t, remap);
	free(remap);
	return 0;
}

/* ---- dedupe and reachability ---- */

struct dedupe {
	const struct ir_table *t;
	const struct ir_chain *c;
	size_t probe;
};

static bool dedupe_eq(void *ctx, size_t idx)
{
	struct dedupe *dd = ctx;
	return rule_eq(dd->t, &dd->c->rules[idx], &dd->c->rules[dd->probe]);
}

/* Evaluation of the chain ends when the rule matches. */
static bool terminal(const struct ir_rule *r)
{
	if (has_stmt(r, IR_S_LIMIT) || has_stmt(r, IR_S_QUEUE))
		return false;
	return r->verdict.kind == IR_V_ACCEPT || r->verdict.kind == IR_V_DROP ||
	       r->verdict.kind == IR_V_RETURN || r->verdict.kind == IR_V_GOTO ||
	       has_stmt(r, IR_S_REJECT);
}

static bool unconditional(const struct ir_rule *r)
{
	return !r->n_matches && terminal(r);
}

static int pass_dedupe(struct ir_table *t, struct policy_optimize_report *rep)
{
	for (size_t ci = 0; ci < t->n_chains; ci++) {
		struct ir_chain *c = &t->chains[ci];
		bool *drop = calloc(c->n_rules ? c->n_rules : 1, 1);
		struct policy_hmap seen;
		if (!drop || policy_hmap_init(&seen, c->n_rules)) {
			free(drop);
			return -1;
		}
		struct dedupe dd = { .t = t, .c = c };
		bool dead = false, modifying = chain_modifies(c);
		for (size_t i = 0; i < c->n_rules; i++) {
			if (dead) {
				drop[i] = true;
				rep->rules_unreachable++;
				continue;
			}
			const struct ir_rule *r = &c->rules[i];
			/* a later copy of a rule is dead only if the first one
			 * ends evaluation when it matches and nothing in between
			 * changes what it matches; rules with a limit differ by
			 * their own token bucket */
			if (!modifying && terminal(r) && !has_stmt(r, IR_S_LIMIT)) {
				uint64_t h = rule_hash(t, r);
				dd.probe = i;
				if (policy_hmap_find(&seen, h, dedupe_eq, &dd) !=
				    POLICY_HMAP_NONE) {
					drop[i] = true;
					rep->rules_deduped++;
					continue;
				}
				if (policy_hmap_put(&seen, h, i)) {
					policy_hmap_free(&seen);
					free(drop);
					return -1;
				}
			}
			dead = unconditional(r);
		}
		policy_hmap_free(&seen);
		chain_compact(c, drop);
		free(drop);
	}
	return 0;
}

/* ---- size ---- */

/* The kernel's resizable hash set starts with room for a fixed number of
 * elements and grows (rehashing everything) when a batch brings more; with
 * the count known up front it sizes the table once. The hint is also a
 * limit, so only sets whose content is fixed get it: not the dynamic block
 * lists, and not interval sets (a tree, which the hint does not size). Small
 * sets gain nothing, so their listing stays without it. */
#define SIZE_HINT_MIN 1024

static void pass_size(struct ir_table *t)
{
	for (size_t i = 0; i < t->n_sets; i++) {
		struct ir_set *s = &t->sets[i];
		if (!(s->flags &
		      (IR_SET_ANONYMOUS | IR_SET_DYNAMIC | IR_SET_INTERVAL | IR_SET_TIMEOUT)) &&
		    s->n_elems >= SIZE_HINT_MIN && s->n_elems <= UINT32_MAX)
			s->size = (uint32_t)s->n_elems;
	}
}

static size_t count_rules(const struct ir_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n_chains; i++)
		n += t->chains[i].n_rules;
	return n;
}

int policy_optimize(struct ir_table *t, struct policy_optimize_report *r, struct policy_diags *d)
{
	struct policy_optimize_report local;
	if (!r)
		r = &local;
	memset(r, 0, sizeof(*r));
	r->rules_before = count_rules(t);
	int rc = pass_merge(t, r);
	if (!rc)
		rc = policy_classify(t, r);
	if (!rc)
		rc = pass_dispatch(t, r);
	if (!rc)
		pass_inline(t, r);
	/* sets of rules that merge and dispatch replaced: not worth naming */
	if (!rc)
		rc = ir_table_drop_unused_sets(t);
	if (!rc)
		rc = pass_name(t, r);
	if (!rc)
		rc = pass_dedupe(t, r);
	if (!rc)
		rc = ir_table_drop_unused_sets(t);
	if (!rc)
		pass_size(t);
	if (rc)
		return policy_error(d, NULL, "out of memory in the optimizer");
	r->rules_after = count_rules(t);
	r->chains = t->n_chains;
	return 0;
}

void policy_optimize_report_print(const struct policy_optimize_report *r, FILE *out)
{
	fprintf(out, "optimizer: %zu -> %zu rules in %zu chains\n", r->rules_before, r->rules_after,
		r->chains);
	fprintf(out, "  merged     %zu rules (into a set of the same policy rule)\n",
		r->rules_merged);
	fprintf(out, "  dispatch   %zu runs of %zu rules -> verdict maps\n", r->runs_dispatched,
		r->rules_dispatched);
	fprintf(out,
		"  classify   %zu runs of %zu rules -> %zu concatenated-range maps, %zu elements, "
		"%zu chains, ~%zu KiB estimated; %zu runs kept linear (over the bound)\n",
		r->runs_classified, r->rules_classified, r->classify_maps, r->classify_elems,
		r->classify_chains, (r->classify_bytes + 1023) / 1024, r->runs_kept_linear);
	if (r->classify_lists || r->classify_lists_linear)
		fprintf(
		    out,
		    "  lists      %zu address-list maps, %zu elements (lists of %d or more "
		    "addresses stay shared sets); %zu list segments kept as rules (over the bound)\n",
		    r->classify_lists, r->classify_list_elems, CLASSIFY_LIST_SHARE,
		    r->classify_lists_linear);
	fprintf(out, "  sets       %zu named, %zu shared, %zu inlined\n", r->sets_named,
		r->sets_shared, r->sets_inlined);
	fprintf(out, "  dropped    %zu duplicate, %zu unreachable rules\n", r->rules_deduped,
		r->rules_unreachable);
}
