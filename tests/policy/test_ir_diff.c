/* policy/ir_diff.c and policy_emit_nftnl_delta(): the delta between two
 * compiled policies, object by object, and the batch that sends it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "policy/ir_diff.h"
#include "policy/nftnl.h"
#include "policy/policy.h"
#include "tests/lib/checkmain.h"

struct compiled {
	struct policy_diags d;
	struct policy *p;
	struct ir_table *t;
};

static void compile(struct compiled *c, const char *text)
{
	struct policy_lower_opts o;
	policy_diags_init(&c->d);
	c->p = policy_load_text("t.hvp", text, strlen(text), NULL, &c->d);
	ck_assert_ptr_nonnull(c->p);
	policy_lower_opts_default(&o);
	c->t = policy_lower(c->p, &o, &c->d);
	ck_assert_ptr_nonnull(c->t);
}

static void release(struct compiled *c)
{
	ir_table_free(c->t);
	policy_free(c->p);
	policy_diags_free(&c->d);
}

static struct ir_diff *diff_of(const struct compiled *a, const struct compiled *b)
{
	struct ir_diff *d = NULL;
	ck_assert_int_eq(ir_diff_compute(a->t, b->t, &d), 0);
	ck_assert_ptr_nonnull(d);
	return d;
}

static size_t chain_index(const struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_chains; i++)
		if (!strcmp(t->chains[i].name, name))
			return i;
	ck_abort_msg("no chain %s", name);
	return 0;
}

static size_t set_index(const struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strcmp(t->sets[i].name, name))
			return i;
	ck_abort_msg("no set %s", name);
	return 0;
}

#define BASE                                                                                       \
	"zone lan { interface \"lan0\" }\n"                                                        \
	"zone dmz { interface \"dmz0\" }\n"                                                        \
	"define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5 }\n"                                       \
	"pass from lan to self service ping\n"                                                     \
	"block from $bad to dmz\n"                                                                 \
	"pass from lan to dmz service tcp port 80\n"

START_TEST(test_same_policy_is_empty)
{
	struct compiled a, b;
	compile(&a, BASE);
	compile(&b, BASE);
	struct ir_diff *d = diff_of(&a, &b);
	ck_assert(ir_diff_empty(d));
	ck_assert(!d->full);
	ck_assert_uint_gt(d->n_objects, 10);
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

START_TEST(test_rule_added_touches_its_chain_only)
{
	struct compiled a, b;
	compile(&a, BASE);
	compile(&b, BASE "pass from lan to dmz service tcp port 443\n");
	struct ir_diff *d = diff_of(&a, &b);
	ck_assert(!d->full);
	ck_assert_uint_eq(d->n_chains_changed, 1);
	ck_assert_int_eq(d->chain_op[chain_index(b.t, "lan_to_dmz")], IR_DIFF_REPLACE);
	ck_assert_int_eq(d->chain_op[chain_index(b.t, "lan_to_self")], IR_DIFF_KEEP);
	ck_assert_uint_eq(d->n_sets_changed, 0);
	ck_assert_uint_lt(d->n_changed, d->n_objects / 4);
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

/* A rule inserted above the others moves their lines, not their kernel
 * ids (struct policy_rule.kernel_id): only the new rule is sent, the later
 * rules stay in the kernel with their counters. */
START_TEST(test_rule_inserted_above_keeps_later_rules)
{
	struct compiled a, b;
	compile(&a, BASE);
	compile(&b, "zone lan { interface \"lan0\" }\n"
		    "zone dmz { interface \"dmz0\" }\n"
		    "pass from dmz to self service ping\n"
		    "define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5 }\n"
		    "pass from lan to self service ping\n"
		    "block from $bad to dmz\n"
		    "pass from lan to dmz service tcp port 80\n");
	struct ir_diff *d = diff_of(&a, &b);
	ck_assert(!d->full);
	ck_assert_int_eq(d->chain_op[chain_index(b.t, "lan_to_dmz")], IR_DIFF_KEEP);
	ck_assert_int_eq(d->chain_op[chain_index(b.t, "lan_to_self")], IR_DIFF_KEEP);
	ck_assert_uint_eq(d->n_chains_changed, 1);
	ck_assert_uint_eq(d->n_rules_sent, b.t->chains[chain_index(b.t, "dmz_to_self")].n_rules);
	/* the rule id keeps its line; the kernel id is the file and the text hash */
	ck_assert_str_eq(b.p->rules[3].id, b.p->rules[3].where);
	ck_assert(strstr(b.p->rules[3].id, "t.hvp:7:") == b.p->rules[3].id);
	ck_assert_str_eq(a.p->rules[2].kernel_id, b.p->rules[3].kernel_id);
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

/* The same text twice in one file: the second kernel id is numbered. */
START_TEST(test_kernel_ids_of_same_text_numbered)
{
	struct compiled a;
	compile(&a, "tenant a {\n segment lan { interface \"ta\" address 10.0.1.0/24 }\n"
		    " pass from lan to self service ping }\n"
		    "tenant b {\n segment lan { interface \"tb\" address 10.0.2.0/24 }\n"
		    " pass from lan to self service ping\n"
		    " pass from lan to self service tcp port 22 label \"ssh\" }\n");
	ck_assert_uint_eq(a.p->n_rules, 3);
	ck_assert_str_ne(a.p->rules[0].kernel_id, a.p->rules[1].kernel_id);
	ck_assert_str_eq(a.p->rules[1].kernel_id + strlen(a.p->rules[0].kernel_id), "#2");
	ck_assert(!strncmp(a.p->rules[1].kernel_id, a.p->rules[0].kernel_id,
			   strlen(a.p->rules[0].kernel_id)));
	ck_assert_str_eq(a.p->rules[2].kernel_id, "ssh");
	ck_assert(!strncmp(a.p->rules[0].kernel_id, "t.hvp:", 6));
	ck_assert_ptr_null(strchr(a.p->rules[0].kernel_id + 6, ':'));
	release(&a);
}
END_TEST

/* Three tenants with the same text: "#2" and "#3", each id once. */
START_TEST(test_kernel_ids_of_three_copies)
{
	struct compiled a;
	compile(&a, "tenant a {\n segment lan { interface \"ta\" address 10.0.1.0/24 }\n"
		    " pass from lan to self service ping }\n"
		    "tenant b {\n segment lan { interface \"tb\" address 10.0.2.0/24 }\n"
		    " pass from lan to self service ping }\n"
		    "tenant c {\n segment lan { interface \"tc\" address 10.0.3.0/24 }\n"
		    " pass from lan to self service ping }\n");
	ck_assert_uint_eq(a.p->n_rules, 3);
	size_t n = strlen(a.p->rules[0].kernel_id);
	ck_assert_str_eq(a.p->rules[1].kernel_id + n, "#2");
	ck_assert_str_eq(a.p->rules[2].kernel_id + n, "#3");
	ck_assert(!strncmp(a.p->rules[2].kernel_id, a.p->rules[0].kernel_id, n));
	release(&a);
}
END_TEST

/* One address more in a named set: one element added, no rule touched. */
START_TEST(test_set_grows_by_an_element)
{
	struct compiled a, b;
	compile(&a, BASE);
	compile(&b, "zone lan { interface \"lan0\" }\n"
		    "zone dmz { interface \"dmz0\" }\n"
		    "define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5, 192.0.2.9 }\n"
		    "pass from lan to self service ping\n"
		    "block from $bad to dmz\n"
		    "pass from lan to dmz service tcp port 80\n");
	struct ir_diff *d = diff_of(&a, &b);
	ck_assert(!d->full);
	ck_assert_uint_eq(d->n_chains_changed, 0);
	ck_assert_uint_eq(d->n_sets_changed, 1);
	ck_assert_uint_eq(d->n_elems_added, 1);
	ck_assert_uint_eq(d->n_elems_deleted, 0);
	size_t changed = (size_t)-1;
	for (size_t i = 0; i < b.t->n_sets; i++)
		if (d->set_op[i] == IR_DIFF_REPLACE)
			changed = i;
	ck_assert_uint_ne(changed, (size_t)-1);
	ck_assert_uint_eq(d->set_elems[changed].n_add, 1);
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

START_TEST(test_zone_removed_deletes_its_chains)
{
	struct compiled a, b;
	compile(
	    &a, BASE
	    "zone guest { interface \"guest0\" }\npass from guest to dmz service tcp port 22\n");
	compile(&b, BASE);
	struct ir_diff *d = diff_of(&a, &b);
	ck_assert(!d->full);
	ck_assert_uint_gt(d->n_chain_del, 0);
	for (size_t k = 0; k < d->n_chain_del; k++)
		ck_assert_ptr_nonnull(strstr(a.t->chains[d->chain_del[k]].name, "guest"));
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

/* Hand-made: a verdict map element that changes its verdict is deleted and
 * added; a base chain with another hook asks for the full replace. */
START_TEST(test_map_verdict_and_hook_change)
{
	struct ir_table *a = ir_table_new(IR_TABLE_NAME), *b = ir_table_new(IR_TABLE_NAME);
	for (int k = 0; k < 2; k++) {
		struct ir_table *t = k ? b : a;
		ir_chain_add(t, "x");
		ir_chain_add(t, "y");
		size_t si = ir_set_add(t, "m");
		struct ir_set *s = &t->sets[si];
		s->key[0] = IR_TH_DPORT;
		s->n_key = 1;
		s->data = IR_DATA_VERDICT;
		for (int p = 0; p < 3; p++) {
			struct ir_set_elem *e = ir_set_elem_add(s);
			e->key[0] = ir_value_u16_net((uint16_t)(80 + p));
			e->verdict.kind = IR_V_JUMP;
			snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s",
				 k && p == 1 ? "y" : "x");
		}
	}
	struct ir_diff *d = NULL;
	ck_assert_int_eq(ir_diff_compute(a, b, &d), 0);
	ck_assert(!d->full);
	ck_assert_int_eq(d->set_op[set_index(b, "m")], IR_DIFF_REPLACE);
	ck_assert_uint_eq(d->set_elems[0].n_add, 1);
	ck_assert_uint_eq(d->set_elems[0].n_del, 1);
	ck_assert_uint_eq(d->set_elems[0].add[0], 1);
	ir_diff_free(d);

	b->chains[0].hook = IR_HOOK_FORWARD;
	ck_assert_int_eq(ir_diff_compute(a, b, &d), 0);
	ck_assert(d->full);
	ck_assert_ptr_nonnull(strstr(d->why, "hook"));
	ir_diff_free(d);
	ir_table_free(a);
	ir_table_free(b);
}
END_TEST

/* A rewrite of everything is larger than the table: full replace. */
START_TEST(test_large_delta_falls_back)
{
	struct ir_table *a = ir_table_new(IR_TABLE_NAME), *b = ir_table_new(IR_TABLE_NAME);
	struct ir_chain *x = ir_chain_add(a, "x");
	for (int i = 0; i < 3; i++)
		ir_rule_add(x)->verdict.kind = IR_V_ACCEPT;
	struct ir_chain *z = ir_chain_add(a, "z");
	for (int i = 0; i < 3; i++)
		ir_rule_add(z)->verdict.kind = IR_V_ACCEPT;
	x = ir_chain_add(b, "x");
	for (int i = 0; i < 3; i++)
		ir_rule_add(x)->verdict.kind = IR_V_DROP;
	struct ir_diff *d = NULL;
	ck_assert_int_eq(ir_diff_compute(a, b, &d), 0);
	ck_assert_msg(d->full, "changed %zu of %zu", d->n_changed, d->n_objects);
	ck_assert_ptr_nonnull(strstr(d->why, "larger"));
	ir_diff_free(d);
	/* the same rules again, and z gone: small */
	for (int i = 0; i < 3; i++)
		b->chains[0].rules[i].verdict.kind = IR_V_ACCEPT;
	ck_assert_int_eq(ir_diff_compute(a, b, &d), 0);
	ck_assert(!d->full);
	ck_assert_uint_eq(d->n_chain_del, 1);
	ck_assert_uint_eq(d->n_changed, 1);
	ir_diff_free(d);
	ir_table_free(a);
	ir_table_free(b);
}
END_TEST

/* A named set of n u32 keys 10, 20, ... (timeout t_ms on element `slow`). */
static struct ir_table *numbers(size_t n, size_t skip, uint32_t extra, size_t slow, uint64_t t_ms)
{
	struct ir_table *t = ir_table_new(IR_TABLE_NAME);
	size_t si = ir_set_add(t, "s");
	struct ir_set *s = &t->sets[si];
	s->key[0] = IR_META_MARK;
	s->n_key = 1;
	s->flags = IR_SET_TIMEOUT;
	for (size_t i = 0; i < n; i++) {
		if (i == skip)
			continue;
		if (extra && extra < 10 * (i + 1) && extra > 10 * i)
			ir_set_elem_add(s)->key[0] = ir_value_u32(extra);
		struct ir_set_elem *e = ir_set_elem_add(s);
		e->key[0] = ir_value_u32((uint32_t)(10 * (i + 1)));
		e->timeout_ms = i == slow ? t_ms : 0;
	}
	return t;
}

static void same_delta(const struct ir_diff *x, const struct ir_diff *y)
{
	ck_assert_int_eq(x->set_op[0], y->set_op[0]);
	ck_assert_uint_eq(x->set_elems[0].n_add, y->set_elems[0].n_add);
	ck_assert_uint_eq(x->set_elems[0].n_del, y->set_elems[0].n_del);
	for (size_t i = 0; i < x->set_elems[0].n_add; i++)
		ck_assert_uint_eq(x->set_elems[0].add[i], y->set_elems[0].add[i]);
	for (size_t i = 0; i < x->set_elems[0].n_del; i++)
		ck_assert_uint_eq(x->set_elems[0].del[i], y->set_elems[0].del[i]);
}

/* Every chain's op and rule plan, and the counts, are the same in both. */
static void same_chain_delta(const struct ir_table *n, const struct ir_diff *x,
			     const struct ir_diff *y)
{
	ck_assert_uint_eq(x->n_changed, y->n_changed);
	ck_assert_uint_eq(x->n_rules_sent, y->n_rules_sent);
	ck_assert_int_eq(x->full, y->full);
	for (size_t i = 0; i < n->n_chains; i++) {
		ck_assert_int_eq(x->chain_op[i], y->chain_op[i]);
		const struct ir_diff_rules *a = &x->chain_rules[i], *b = &y->chain_rules[i];
		ck_assert_int_eq(a->planned, b->planned);
		ck_assert_uint_eq(a->n_add, b->n_add);
		ck_assert_uint_eq(a->n_del, b->n_del);
		for (size_t k = 0; k < a->n_add; k++)
			ck_assert_uint_eq(a->add[k], b->add[k]);
		for (size_t k = 0; k < a->n_del; k++)
			ck_assert_uint_eq(a->del[k], b->del[k]);
	}
}

/* The rule prints give the same chain ops and rule plans as comparing
 * every rule: a rule added at the end, inserted above, changed, removed;
 * and rules changed after the prints were made (they then do not count). */
START_TEST(test_rule_prints_same_delta)
{
	static const char *const to[] = {
		BASE "pass from lan to dmz service tcp port 443\n",
		"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\npass from dmz to self service ping\n"
		"define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5 }\npass from lan to self service ping\n"
		"block from $bad to dmz\npass from lan to dmz service tcp port 80\n",
		"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\n"
		"define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5 }\npass from lan to self service ping\n"
		"block from $bad to dmz\npass from lan to dmz service tcp port 8080\n",
		"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\n"
		"define bad = { 192.0.2.1, 192.0.2.3, 192.0.2.5 }\npass from lan to self service ping\n"
		"pass from lan to dmz service tcp port 80\n",
		BASE,
	};
	struct compiled a;
	compile(&a, BASE);
	struct ir_diff_prints *pa = NULL;
	ck_assert_int_eq(ir_diff_prints_make(a.t, &pa), 0);
	for (size_t c = 0; c < sizeof(to) / sizeof(to[0]); c++) {
		struct compiled b;
		struct ir_diff_prints *pb = NULL;
		struct ir_diff *plain = NULL, *printed = NULL;
		compile(&b, to[c]);
		ck_assert_int_eq(ir_diff_prints_make(b.t, &pb), 0);
		ck_assert_int_eq(ir_diff_compute(a.t, b.t, &plain), 0);
		ck_assert_int_eq(ir_diff_compute_printed(a.t, pa, b.t, pb, &printed), 0);
		ck_assert_msg(c == 4 ? ir_diff_empty(plain) : !ir_diff_empty(plain), "case %zu", c);
		same_chain_delta(b.t, plain, printed);
		ir_diff_free(plain);
		ir_diff_free(printed);
		/* a rule more in lan_to_dmz after the prints: its array moves */
		struct ir_chain *ch = &b.t->chains[chain_index(b.t, "lan_to_dmz")];
		struct ir_rule *r = ir_rule_add(ch);
		ck_assert_ptr_nonnull(r);
		r->verdict.kind = IR_V_DROP;
		ck_assert_int_eq(ir_diff_compute(a.t, b.t, &plain), 0);
		ck_assert_int_eq(ir_diff_compute_printed(a.t, pa, b.t, pb, &printed), 0);
		ck_assert_int_ne(plain->chain_op[chain_index(b.t, "lan_to_dmz")], IR_DIFF_KEEP);
		same_chain_delta(b.t, plain, printed);
		ir_diff_free(plain);
		ir_diff_free(printed);
		ir_diff_prints_free(pb);
		release(&b);
	}
	ir_diff_prints_free(pa);
	release(&a);
}
END_TEST

/* The fingerprints give the same delta as reading every element: for an
 * element added, removed, changed (timeout), for no change, and for a set
 * changed after its prints were made (they then do not count). */
START_TEST(test_prints_same_delta)
{
	const size_t N = 5000, NONE = (size_t)-1;
	struct {
		size_t skip;
		uint32_t extra;
		size_t slow;
		size_t n_add, n_del;
	} cases[] = {
		{ NONE, 0, NONE, 0, 0 },   { NONE, 12345, NONE, 1, 0 }, { 0, 0, NONE, 0, 1 },
		{ N - 1, 0, NONE, 0, 1 },  { NONE, 5, NONE, 1, 0 },     { NONE, 0, 2500, 1, 1 },
		{ 17, 49999, 4000, 2, 2 },
	};
	struct ir_table *a = numbers(N, NONE, 0, NONE, 0);
	struct ir_diff_prints *pa = NULL;
	ck_assert_int_eq(ir_diff_prints_make(a, &pa), 0);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct ir_table *b =
		    numbers(N, cases[c].skip, cases[c].extra, cases[c].slow, 60000);
		struct ir_diff_prints *pb = NULL;
		struct ir_diff *plain = NULL, *printed = NULL;
		ck_assert_int_eq(ir_diff_prints_make(b, &pb), 0);
		ck_assert_int_eq(ir_diff_compute(a, b, &plain), 0);
		ck_assert_int_eq(ir_diff_compute_printed(a, pa, b, pb, &printed), 0);
		ck_assert_msg(plain->set_elems[0].n_add == cases[c].n_add &&
				  plain->set_elems[0].n_del == cases[c].n_del,
			      "case %zu: %zu added, %zu deleted", c, plain->set_elems[0].n_add,
			      plain->set_elems[0].n_del);
		same_delta(plain, printed);
		ir_diff_free(plain);
		ir_diff_free(printed);
		/* changed after its prints: an element more (the array moves) */
		ir_set_elem_add(&b->sets[0])->key[0] = ir_value_u32(7);
		ck_assert_int_eq(ir_diff_compute(a, b, &plain), 0);
		ck_assert_int_eq(ir_diff_compute_printed(a, pa, b, pb, &printed), 0);
		ck_assert_uint_eq(plain->set_elems[0].n_add, cases[c].n_add + 1);
		same_delta(plain, printed);
		ir_diff_free(plain);
		ir_diff_free(printed);
		ir_diff_prints_free(pb);
		ir_table_free(b);
	}
	ir_diff_prints_free(pa);
	ir_table_free(a);
}
END_TEST

/* Hand-made: chains x and y (regular), z with a rule that looks up set s,
 * a verdict map m whose elements jump to x and y, and a chain `mark` that
 * nothing jumps to. `ycomment` is y's comment; `sflags` s's flags; `mark`
 * mark's comment. */
static struct ir_table *jumps(const char *ycomment, unsigned sflags, const char *mark)
{
	struct ir_table *t = ir_table_new(IR_TABLE_NAME);
	/* like the daemon's revision marker: empty, nothing jumps there, its
	 * comment changes with every revision */
	struct ir_chain *mk = ir_chain_add(t, "mark");
	snprintf(mk->comment, sizeof(mk->comment), "%s", mark);
	ir_rule_add(ir_chain_add(t, "x"))->verdict.kind = IR_V_ACCEPT;
	struct ir_chain *y = ir_chain_add(t, "y");
	ir_rule_add(y)->verdict.kind = IR_V_DROP;
	snprintf(y->comment, sizeof(y->comment), "%s", ycomment);
	size_t si = ir_set_add(t, "s");
	t->sets[si].key[0] = IR_META_MARK;
	t->sets[si].n_key = 1;
	t->sets[si].flags = sflags;
	ir_set_elem_add(&t->sets[si])->key[0] = ir_value_u32(7);
	size_t mi = ir_set_add(t, "m");
	struct ir_set *m = &t->sets[mi];
	m->key[0] = IR_TH_DPORT;
	m->n_key = 1;
	m->data = IR_DATA_VERDICT;
	for (int p = 0; p < 40; p++) {
		struct ir_set_elem *e = ir_set_elem_add(m);
		e->key[0] = ir_value_u16_net((uint16_t)(1000 + p));
		e->verdict.kind = IR_V_JUMP;
		snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s", p % 10 == 3 ? "y" : "x");
	}
	struct ir_chain *z = ir_chain_add(t, "z");
	for (int r = 0; r < 3; r++) {
		struct ir_rule *ru = ir_rule_add(z);
		ru->verdict.kind = IR_V_ACCEPT;
		if (r == 1) {
			struct ir_match *lm = ir_match_add(ru);
			lm->kind = IR_M_LOOKUP;
			lm->field[0] = IR_META_MARK;
			lm->n_field = 1;
			lm->set = si;
		}
	}
	return t;
}

/* With the prints, a chain made again (its comment changed) still takes
 * the map elements that jump to it with it, and a set made again (its
 * definition changed) the rules that use it: the same delta as comparing
 * every element and rule. A chain made again that nothing jumps to (the
 * revision marker of every apply) leaves the prints' shortcuts on. */
START_TEST(test_prints_same_delta_when_made_again)
{
	static const struct {
		const char *ycomment;
		unsigned sflags;
		size_t m_add, z_add;
	} cases[] = {
		{ "", 0, 0, 0 },              /* nothing changed */
		{ "other", 0, 4, 0 },         /* y made again: its 4 map elements go and come */
		{ "", IR_SET_TIMEOUT, 0, 1 }, /* s made again: z's rule that uses it too */
		{ "other", IR_SET_TIMEOUT, 4, 1 }, /* both */
	};
	struct ir_table *a = jumps("", 0, "rev=1");
	struct ir_diff_prints *pa = NULL;
	ck_assert_int_eq(ir_diff_prints_make(a, &pa), 0);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct ir_table *b = jumps(cases[c].ycomment, cases[c].sflags, "rev=2");
		struct ir_diff_prints *pb = NULL;
		struct ir_diff *plain = NULL, *printed = NULL;
		ck_assert_int_eq(ir_diff_prints_make(b, &pb), 0);
		ck_assert_int_eq(ir_diff_compute(a, b, &plain), 0);
		ck_assert_int_eq(ir_diff_compute_printed(a, pa, b, pb, &printed), 0);
		size_t m = set_index(b, "m"), z = chain_index(b, "z");
		for (int k = 0; k < 2; k++) {
			const struct ir_diff *d = k ? printed : plain;
			ck_assert_msg(d->set_elems[m].n_add == cases[c].m_add &&
					  d->set_elems[m].n_del == cases[c].m_add,
				      "case %zu (%s): map %zu added, %zu deleted", c,
				      k ? "printed" : "plain", d->set_elems[m].n_add,
				      d->set_elems[m].n_del);
			ck_assert_msg(d->chain_rules[z].n_add == cases[c].z_add,
				      "case %zu (%s): z %zu rules added", c,
				      k ? "printed" : "plain", d->chain_rules[z].n_add);
		}
		same_chain_delta(b, plain, printed);
		/* mark is made again either way; with the prints, which know what
		 * jumps where, it takes nothing with it and does not count */
		ck_assert_int_eq(printed->chain_op[chain_index(b, "mark")], IR_DIFF_RECREATE);
		ck_assert_uint_eq(plain->n_recreated, 1 + (cases[c].ycomment[0] != 0));
		ck_assert_uint_eq(printed->n_recreated, cases[c].ycomment[0] != 0);
		ck_assert_int_eq(plain->set_op[m], printed->set_op[m]);
		for (size_t i = 0; i < plain->set_elems[m].n_add; i++)
			ck_assert_uint_eq(plain->set_elems[m].add[i], printed->set_elems[m].add[i]);
		for (size_t i = 0; i < plain->set_elems[m].n_del; i++)
			ck_assert_uint_eq(plain->set_elems[m].del[i], printed->set_elems[m].del[i]);
		ir_diff_free(plain);
		ir_diff_free(printed);
		ir_diff_prints_free(pb);
		ir_table_free(b);
	}
	ir_diff_prints_free(pa);
	ir_table_free(a);
}
END_TEST

static uint16_t nft_type(const struct nlmsghdr *nlh)
{
	return nlh->nlmsg_type & 0xff;
}

/* The batch of a one-rule change: no table message, the chain flushed
 * (DELRULE without a handle) before its rules come again, nothing else. */
START_TEST(test_delta_batch_messages)
{
	struct compiled a, b;
	compile(&a, BASE);
	compile(&b, BASE "pass from lan to dmz service tcp port 443\n");
	struct ir_diff *d = diff_of(&a, &b);
	struct policy_nftnl_batch *batch = NULL;
	struct policy_nftnl_opts o;
	policy_nftnl_opts_default(&o);
	ck_assert_int_eq(policy_emit_nftnl_delta(a.t, b.t, d, &o, &batch, &b.d), 0);
	int n_iov = nftnl_batch_iovec_len(batch->batch);
	struct iovec *iov = calloc((size_t)n_iov, sizeof(*iov));
	nftnl_batch_iovec(batch->batch, iov, (uint32_t)n_iov);
	size_t n = 0, delrule = 0, newrule = 0, other = 0;
	bool flush_first = false;
	for (int i = 0; i < n_iov; i++) {
		const struct nlmsghdr *nlh = iov[i].iov_base;
		int len = (int)iov[i].iov_len;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len), n++) {
			if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN ||
			    nlh->nlmsg_type == NFNL_MSG_BATCH_END)
				continue;
			if (nft_type(nlh) == NFT_MSG_DELRULE) {
				flush_first = newrule == 0;
				delrule++;
			} else if (nft_type(nlh) == NFT_MSG_NEWRULE ||
				   nft_type(nlh) == NFT_MSG_NEWSET ||
				   nft_type(nlh) == NFT_MSG_NEWSETELEM) {
				newrule += nft_type(nlh) == NFT_MSG_NEWRULE;
			} else {
				other++;
			}
		}
	}
	ck_assert_uint_eq(delrule, 1);
	ck_assert(flush_first);
	ck_assert_uint_eq(newrule, b.t->chains[chain_index(b.t, "lan_to_dmz")].n_rules);
	ck_assert_uint_eq(other, 0);
	ck_assert_uint_eq(n, batch->n_messages);
	/* a kernel error on the new rule points at its policy line */
	bool line7 = false;
	for (size_t i = 0; i < batch->n_messages; i++)
		if (batch->origins[i].kind == POLICY_NFTNL_RULE && batch->origins[i].loc.line == 7)
			line7 = true;
	ck_assert(line7);
	free(iov);
	policy_nftnl_batch_free(batch);
	ir_diff_free(d);
	release(&a);
	release(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ir_diff");
	TCase *tc = tcase_create("diff");
	tcase_add_test(tc, test_same_policy_is_empty);
	tcase_add_test(tc, test_rule_added_touches_its_chain_only);
	tcase_add_test(tc, test_rule_inserted_above_keeps_later_rules);
	tcase_add_test(tc, test_kernel_ids_of_same_text_numbered);
	tcase_add_test(tc, test_kernel_ids_of_three_copies);
	tcase_add_test(tc, test_set_grows_by_an_element);
	tcase_add_test(tc, test_zone_removed_deletes_its_chains);
	tcase_add_test(tc, test_map_verdict_and_hook_change);
	tcase_add_test(tc, test_large_delta_falls_back);
	tcase_add_test(tc, test_delta_batch_messages);
	tcase_add_test(tc, test_prints_same_delta);
	tcase_add_test(tc, test_rule_prints_same_delta);
	tcase_add_test(tc, test_prints_same_delta_when_made_again);
	suite_add_tcase(s, tc);
	return check_main(s);
}
