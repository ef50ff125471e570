/* The optimizer's passes, each on a policy that needs it, compared with the
 * same policy lowered without the optimizer. */
#include <check.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ir_diff.h"
#include "policy/lower.h"
#include "policy/optimize.h"
#include "policy/policy.h"
#include "tests/lib/irtest.h"
#include "tests/lib/checkmain.h"

#define TEST_FILE IRTEST_FILE

static struct policy_optimize_report rep;

/* Loads, lowers without the optimizer and, if asked, optimizes. */
static struct ir_table *build(const char *text, bool optimize)
{
	struct ir_table *t = irtest_lower(text, NULL);
	memset(&rep, 0, sizeof(rep));
	if (t && optimize && policy_optimize(t, &rep, &irtest_diags)) {
		ir_table_free(t);
		return NULL;
	}
	return t;
}

static const struct ir_rule *first_with(const struct ir_chain *c, const char *prefix)
{
	for (size_t i = 0; c && i < c->n_rules; i++)
		if (irtest_rule_is(&c->rules[i], prefix))
			return &c->rules[i];
	return NULL;
}

static const char *zones = "zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n";

static char *cat(const char *x, const char *y)
{
	char *s = malloc(strlen(x) + strlen(y) + 1);
	strcpy(s, x);
	strcat(s, y);
	return s;
}

START_TEST(test_merge_same_rule)
{
	char *text = cat(zones, "pass from a to b service { tcp port 22, udp port 22 }\n");
	struct ir_table *t = build(text, false);
	ck_assert_uint_eq(irtest_count_comment(ir_chain_find(t, "a_to_b"), TEST_FILE ":3:"), 2);
	irtest_done(t);
	t = build(text, true);
	const struct ir_chain *c = ir_chain_find(t, "a_to_b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 1);
	ck_assert_uint_eq(rep.rules_merged, 1);
	const struct ir_rule *r = first_with(c, TEST_FILE ":3:");
	ck_assert_int_eq(r->matches[0].field[0], IR_META_L4PROTO);
	ck_assert_int_eq(r->matches[0].kind, IR_M_LOOKUP);
	const struct ir_set *s = &t->sets[r->matches[0].set];
	ck_assert(s->flags & IR_SET_ANONYMOUS); /* protocols stay inline */
	ck_assert_uint_eq(s->n_elems, 2);
	ck_assert_uint_eq(s->elems[0].key[0].data[0], IPPROTO_TCP);
	ck_assert_uint_eq(s->elems[1].key[0].data[0], IPPROTO_UDP);
	irtest_done(t);
	free(text);
}
END_TEST

START_TEST(test_no_merge_across_rules)
{
	char *text = cat(zones, "pass from a to b service tcp port 22\n"
				"pass from a to b service tcp port 23\n");
	struct ir_table *t = build(text, true);
	const struct ir_chain *c = ir_chain_find(t, "a_to_b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 1);
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":4:"), 1);
	ck_assert_uint_eq(rep.rules_merged, 0);
	irtest_done(t);
	free(text);
}
END_TEST

START_TEST(test_dedupe_and_unreachable)
{
	/* two policy rules that lower to the same IR in pair a->b: the first
	 * names the zones, the second reaches a->b through `any` */
	char *text = cat(zones, "block from a to b service tcp port 25\n"
				"block from any to any service tcp port 25\n"
				"pass from a to b\n"
				"default from a to b block\n");
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = ir_chain_find(t, "a_to_b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 1);
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":4:"), 0);
	ck_assert_uint_ge(rep.rules_deduped, 1);
	/* `pass from a to b` matches everything: the default after it goes */
	ck_assert_uint_eq(irtest_count_comment(c, "default:"), 0);
	ck_assert_int_eq(c->rules[c->n_rules - 1].verdict.kind, IR_V_ACCEPT);
	ck_assert_uint_ge(rep.rules_unreachable, 1);
	irtest_done(t);
	free(text);
}
END_TEST

START_TEST(test_sets_named_and_shared)
{
	char *text = cat(zones, "define nets = { 10.1.0.0/16, 10.9.0.0/16, 10.5.5.5 }\n"
				"pass from a to $nets service tcp port 80\n"
				"pass from b to $nets service tcp port 443\n"
				"pass from a to 10.7.0.0/16 service tcp port 22\n");
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	size_t named = 0;
	size_t idx = (size_t)-1;
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strncmp(t->sets[i].name, "addr4_", 6)) {
			named++;
			idx = i;
			ck_assert(!(t->sets[i].flags & IR_SET_ANONYMOUS));
			ck_assert(t->sets[i].flags & IR_SET_INTERVAL);
			ck_assert_uint_eq(t->sets[i].n_elems, 3);
		}
	ck_assert_uint_eq(named, 1); /* one set for both uses of $nets */
	const struct ir_rule *ra = first_with(ir_chain_find(t, "a_to_unzoned"), TEST_FILE ":4:");
	const struct ir_rule *rb = first_with(ir_chain_find(t, "b_to_unzoned"), TEST_FILE ":5:");
	ck_assert_ptr_nonnull(ra);
	ck_assert_ptr_nonnull(rb);
	ck_assert_uint_eq(ra->matches[1].set, idx);
	ck_assert_uint_eq(rb->matches[1].set, idx);
	/* a single prefix stays a plain compare */
	const struct ir_rule *r6 = first_with(ir_chain_find(t, "a_to_unzoned"), TEST_FILE ":6:");
	ck_assert_int_eq(r6->matches[1].kind, IR_M_PREFIX);
	ck_assert_uint_eq(r6->matches[1].prefix_len, 16);
	irtest_done(t);
	free(text);
}
END_TEST

START_TEST(test_dispatch_keeps_first_match_and_counters)
{
	/* 20 exact rules in a row; rule 12 shares one of its two keys with rule 5
	 * (the front end refuses a rule that is wholly shadowed) */
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text), "%s", zones);
	for (int i = 0; i < 20; i++) {
		int port = i == 12 ? 1005 : 1000 + i;
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%s from a to { 10.0.0.%d%s } service udp port %d\n",
				      i % 2 ? "block" : "pass", i == 12 ? 5 : i,
				      i == 12 ? ", 10.0.0.99" : "", port);
	}
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_ge(rep.runs_dispatched, 1);
	const struct ir_set *map = NULL;
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strncmp(t->sets[i].name, "dispatch_", 9))
			map = &t->sets[i];
	ck_assert_ptr_nonnull(map);
	ck_assert_uint_eq(map->n_key, 2);
	ck_assert_int_eq(map->key[0], IR_IP_DADDR);
	ck_assert_int_eq(map->key[1], IR_TH_DPORT);
	ck_assert_uint_eq(map->n_elems, 20); /* the duplicate key goes to the first rule */
	/* the element for 10.0.0.5 . 1005 leads to rule line 8 (i = 5), a block */
	for (size_t i = 0; i < map->n_elems; i++) {
		const struct ir_set_elem *e = &map->elems[i];
		if (e->key[0].data[3] != 5)
			continue;
		const struct ir_chain *target = ir_chain_find(t, e->verdict.chain);
		ck_assert_ptr_nonnull(target);
		ck_assert_uint_eq(target->n_rules, 1);
		ck_assert(irtest_rule_is(&target->rules[0], TEST_FILE ":8:"));
		ck_assert_int_eq(target->rules[0].verdict.kind, IR_V_DROP);
		ck_assert_int_eq(target->rules[0].stmts[0].kind, IR_S_COUNTER);
	}
	irtest_done(t);
}
END_TEST

/* The maps that the dispatch rules of the table look up, one entry per
 * dispatch rule: the chain and the set index. */
struct vmap_use {
	const char *chain;
	size_t set;
};

static size_t vmap_uses(const struct ir_table *t, struct vmap_use *out, size_t max)
{
	size_t n = 0;
	for (size_t ci = 0; ci < t->n_chains; ci++)
		for (size_t ri = 0; ri < t->chains[ci].n_rules; ri++) {
			const struct ir_rule *r = &t->chains[ci].rules[ri];
			for (size_t si = 0; si < r->n_stmts; si++)
				if (r->stmts[si].kind == IR_S_VMAP &&
				    !strncmp(t->sets[r->stmts[si].set].name, "dispatch_", 9) &&
				    n < max)
					out[n++] = (struct vmap_use){ t->chains[ci].name,
								      r->stmts[si].set };
		}
	return n;
}

/* The comment of the rule behind the element of exact map s with key addr . port. */
static const char *exact_owner(const struct ir_table *t, const struct ir_set *s, uint8_t last,
			       uint16_t port)
{
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = &s->elems[i];
		if (e->key[0].data[3] == last && e->key[1].data[0] == port >> 8 &&
		    e->key[1].data[1] == (port & 0xff))
			return irtest_where(
			    &ir_chain_find((struct ir_table *)t, e->verdict.chain)->rules[0]);
	}
	return "";
}

START_TEST(test_dispatch_identical_runs_share_a_map)
{
	/* `from any` gives every zone pair's chain a copy of the same run: one
	 * map serves them all */
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text), "%szone c { interface \"c0\" }\n", zones);
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "pass from any to 10.0.0.%d service udp port %d\n", i,
				      1000 + i);
	snprintf(text + n, sizeof(text) - n, "block from { a, b, c } to c service tcp port 9\n");
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	struct vmap_use uses[16];
	size_t n_uses = vmap_uses(t, uses, 16);
	ck_assert_uint_ge(n_uses, 3); /* a_to_c, unzoned_to_unzoned, self_to_unzoned */
	for (size_t i = 1; i < n_uses; i++)
		ck_assert_msg(uses[i].set == uses[0].set, "%s uses %s, %s uses %s", uses[i].chain,
			      t->sets[uses[i].set].name, uses[0].chain, t->sets[uses[0].set].name);
	ck_assert_uint_eq(t->sets[uses[0].set].n_elems, 12);
	irtest_done(t);
}
END_TEST

START_TEST(test_dispatch_different_runs_get_their_own_maps)
{
	/* zone a's copy of the run starts with a rule of its own, so its map
	 * differs: 10.0.0.3 . 1003 goes to that block rule from a, to the pass
	 * rule from b */
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text), "%s", zones);
	n += (size_t)snprintf(text + n, sizeof(text) - n,
			      "block from a to 10.0.0.3 service udp port 1003\n"); /* line 3 */
	for (int i = 0; i < 12; i++) /* lines 4..15; 10.0.0.3 is line 7 */
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "pass from any to 10.0.0.%d service udp port %d\n", i,
				      1000 + i);
	snprintf(text + n, sizeof(text) - n, "block from { a, b } to b service tcp port 9\n");
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	struct vmap_use uses[16];
	size_t n_uses = vmap_uses(t, uses, 16);
	const struct vmap_use *from_a = NULL, *from_b = NULL;
	for (size_t i = 0; i < n_uses; i++) {
		if (!strcmp(uses[i].chain, "a_to_b"))
			from_a = &uses[i];
		if (!strcmp(uses[i].chain, "b_to_b"))
			from_b = &uses[i];
	}
	ck_assert_ptr_nonnull(from_a);
	ck_assert_ptr_nonnull(from_b);
	ck_assert_uint_ne(from_a->set, from_b->set);
	ck_assert(!strncmp(exact_owner(t, &t->sets[from_a->set], 3, 1003),
			   TEST_FILE ":3:", strlen(TEST_FILE ":3:")));
	ck_assert(!strncmp(exact_owner(t, &t->sets[from_b->set], 3, 1003),
			   TEST_FILE ":7:", strlen(TEST_FILE ":7:")));
	ck_assert(!strncmp(exact_owner(t, &t->sets[from_a->set], 4, 1004),
			   TEST_FILE ":8:", strlen(TEST_FILE ":8:")));
	irtest_done(t);
}
END_TEST

/* Where (irtest_where()) the rule is that map element covering `addr` leads to. */
static const char *owner_of(struct ir_table *t, const struct ir_set *map, const uint8_t addr[4])
{
	for (size_t i = 0; i < map->n_elems; i++) {
		const struct ir_set_elem *e = &map->elems[i];
		if (memcmp(e->key[0].data, addr, 4) <= 0 &&
		    memcmp(addr, ir_elem_end(e)->data, 4) <= 0)
			return irtest_where(&ir_chain_find(t, e->verdict.chain)->rules[0]);
	}
	return "";
}

START_TEST(test_dispatch_intervals_first_match)
{
	char *text = cat(zones, "pass  from a to 10.1.0.0/16\n"            /* 3 */
				"block from a to 10.0.0.0/8\n"             /* 4 */
				"pass  from a to 11.0.0.1\n"               /* 5 */
				"pass  from a to 172.16.0.0/12\n"          /* 6 */
				"block from a to 172.16.5.0-172.32.0.10\n" /* 7 */
				"pass  from a to 192.168.1.0/24\n"         /* 8 */
				"block from a to 192.168.0.0/16\n"         /* 9 */
				"pass  from a to 1.2.3.4\n"                /* 10 */
				"block from a to 0.0.0.0/0\n");            /* 11 */
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *map = NULL;
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strncmp(t->sets[i].name, "dispatch_", 9))
			map = &t->sets[i];
	ck_assert_ptr_nonnull(map);
	ck_assert(map->flags & IR_SET_INTERVAL);
	ck_assert_int_eq(map->key[0], IR_IP_DADDR);
	static const struct {
		uint8_t addr[4];
		const char *line;
	} probes[] = {
		{ { 10, 1, 2, 3 }, TEST_FILE ":3:" },
		{ { 10, 200, 0, 1 }, TEST_FILE ":4:" },
		{ { 10, 0, 0, 0 }, TEST_FILE ":4:" },
		{ { 11, 0, 0, 1 }, TEST_FILE ":5:" },
		{ { 172, 20, 0, 1 }, TEST_FILE ":6:" },
		{ { 172, 32, 0, 5 }, TEST_FILE ":7:" },
		{ { 172, 32, 0, 11 }, TEST_FILE ":11:" },
		{ { 192, 168, 1, 9 }, TEST_FILE ":8:" },
		{ { 192, 168, 2, 9 }, TEST_FILE ":9:" },
		{ { 1, 2, 3, 4 }, TEST_FILE ":10:" },
		{ { 8, 8, 8, 8 }, TEST_FILE ":11:" },
		{ { 255, 255, 255, 255 }, TEST_FILE ":11:" },
		{ { 0, 0, 0, 0 }, TEST_FILE ":11:" },
	};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const char *owner = owner_of(t, map, probes[i].addr);
		ck_assert_msg(!strncmp(owner, probes[i].line, strlen(probes[i].line)),
			      "%u.%u.%u.%u: %s, expected %s", probes[i].addr[0], probes[i].addr[1],
			      probes[i].addr[2], probes[i].addr[3], owner, probes[i].line);
	}
	irtest_done(t);
	free(text);
}
END_TEST

START_TEST(test_normalize_intervals)
{
	struct ir_set s = { .n_key = 1, .flags = IR_SET_INTERVAL };
	s.key[0] = IR_IP_SADDR;
	/* 10.0.0.0-10.0.0.9, 10.0.0.10 (adjacent), 10.0.0.5-10.0.0.20 (overlap),
	 * 10.0.0.30, 10.0.0.30 (duplicate) */
	const uint8_t v[][2] = { { 0, 9 }, { 10, 10 }, { 5, 20 }, { 30, 30 }, { 30, 30 } };
	for (size_t i = 0; i < 5; i++) {
		struct ir_set_elem *e = ir_set_elem_add(&s);
		uint8_t lo[4] = { 10, 0, 0, v[i][0] }, hi[4] = { 10, 0, 0, v[i][1] };
		e->key[0] = ir_value_addr(lo, AF_INET);
		if (v[i][0] != v[i][1])
			e->key_end[0] = ir_value_addr(hi, AF_INET);
	}
	ck_assert_int_eq(ir_set_normalize(&s), 0);
	ck_assert_uint_eq(s.n_elems, 2);
	ck_assert_uint_eq(s.elems[0].key[0].data[3], 0);
	ck_assert_uint_eq(ir_elem_end(&s.elems[0])->data[3], 20);
	ck_assert_uint_eq(s.elems[1].key[0].data[3], 30);
	ck_assert_uint_eq(ir_elem_end(&s.elems[1])->data[3], 30);
	free(s.elems);
}
END_TEST

/* Hand-built: rule, mark set, the same rule again. The copy must stay: the
 * mark set between them can make it match packets the first did not. */
START_TEST(test_no_dedupe_across_modification)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = ir_chain_add(t, "c");
	for (int i = 0; i < 3; i++) {
		struct ir_rule *r = ir_rule_add(c);
		struct ir_match *m = ir_match_add(r);
		m->kind = IR_M_CMP;
		m->field[0] = IR_META_MARK;
		m->value = ir_value_u32(1);
		if (i == 1) {
			struct ir_stmt *s = ir_stmt_add(r);
			s->kind = IR_S_SET_VALUE;
			s->target = IR_META_MARK;
			s->value = ir_value_u32(1);
			m->value = ir_value_u32(0);
		} else {
			r->verdict.kind = IR_V_DROP;
		}
	}
	policy_diags_init(&irtest_diags);
	ck_assert_int_eq(policy_optimize(t, &rep, &irtest_diags), 0);
	ck_assert_uint_eq(ir_chain_find(t, "c")->n_rules, 3);
	ck_assert_uint_eq(rep.rules_deduped, 0);
	policy_diags_free(&irtest_diags);
	ir_table_free(t);
}
END_TEST

START_TEST(test_size_hint_on_large_constant_sets)
{
	/* 1100 single addresses (a hash set) and 1100 /30s (an interval set) */
	size_t cap = 64 * 1024, n = 0;
	char *text = malloc(cap);
	n += (size_t)snprintf(text + n, cap - n, "%sdefine hosts = {", zones);
	for (int i = 0; i < 1100; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s10.%d.%d.1", i ? ", " : " ", i / 250,
				      i % 250);
	n += (size_t)snprintf(text + n, cap - n, " }\ndefine nets = {");
	for (int i = 0; i < 1100; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s172.16.%d.%d/30", i ? ", " : " ",
				      i / 50, (i % 50) * 4);
	snprintf(
	    text + n, cap - n,
	    " }\nblock from $hosts to b\nblock from $nets to b\npass from a to b service tcp port 22\n");
	struct ir_table *t = build(text, true);
	ck_assert_ptr_nonnull(t);
	size_t hinted = 0;
	for (size_t i = 0; i < t->n_sets; i++) {
		const struct ir_set *set = &t->sets[i];
		if (set->n_elems == 1100 && !(set->flags & IR_SET_INTERVAL)) {
			ck_assert_uint_eq(set->size, 1100);
			hinted++;
		} else {
			/* intervals, the dynamic block lists and small sets: no hint */
			ck_assert_msg(set->size == 0, "%s has size %u", set->name, set->size);
		}
	}
	ck_assert_uint_eq(hinted, 1);
	char *nft = irtest_emit_nft(t);
	ck_assert_ptr_nonnull(strstr(nft, "\t\tsize 1100\n"));
	free(nft);
	irtest_done(t);
	free(text);
}
END_TEST

/* ---- names that stay ----
 *
 * A policy where dispatch makes maps and action chains and name makes
 * address and port sets (some shared), compiled again with one rule
 * inserted near the start: the objects those passes make (rule_, dispatch_,
 * addr4_, addr6_, port_) that the diff adds, changes or deletes must stay
 * few. Names by position renumbered every object after the new rule. */

#define NAMES_RUNS      6
#define NAMES_RUN_RULES 10

enum names_edit { NAMES_NONE, NAMES_INSERT_RUN, NAMES_INSERT_SETS };

static void put(char *text, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *text, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(text + *n, cap - *n, fmt, ap);
	va_end(ap);
	ck_assert(k >= 0 && (size_t)k < cap - *n);
	*n += (size_t)k;
}

static char *names_policy(enum names_edit e)
{
	size_t cap = 64 * 1024, n = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	put(text, cap, &n, "%sdefine shared = { 10.90.0.0/16, 10.91.0.0/16 }\n", zones);
	if (e == NAMES_INSERT_SETS)
		put(text, cap, &n,
		    "pass from a to { 10.80.0.0/16, 10.81.0.0/16 } service tcp port "
		    "{ 7, 9 } label \"new\"\n");
	for (int r = 0; r < NAMES_RUNS; r++) {
		/* a rule with an address set and a port set between the runs; every
		 * other one uses $shared (one set for all of them) */
		if (r % 2)
			put(text, cap, &n,
			    "pass from a to $shared service tcp port { %d, %d } label "
			    "\"s%d\"\n",
			    100 + r, 200 + r, r);
		else
			put(text, cap, &n,
			    "block from a to { 10.%d.0.0/16, 10.%d.0.0/16 } service "
			    "tcp port { %d, %d } label \"s%d\"\n",
			    60 + r, 70 + r, 100 + r, 200 + r, r);
		/* a run of exact rules: a dispatch map and an action chain each */
		for (int i = 0; i < NAMES_RUN_RULES; i++) {
			if (e == NAMES_INSERT_RUN && r == 0 && i == 1)
				put(text, cap, &n,
				    "pass from a to 10.0.0.250 service udp port 999 "
				    "label \"new\"\n");
			put(text, cap, &n,
			    "%s from a to 10.%d.0.%d service udp port %d label "
			    "\"r%d_%d\"\n",
			    i % 3 ? "pass" : "block", r, i + 1, 1000 + i, r, i);
		}
	}
	return text;
}

static bool pass_made(const char *name)
{
	static const char *prefixes[] = { "rule_", "dispatch_", "addr4_", "addr6_", "port_" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static size_t pass_objects(const struct ir_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n_chains; i++)
		n += pass_made(t->chains[i].name);
	for (size_t i = 0; i < t->n_sets; i++)
		n += pass_made(t->sets[i].name);
	return n;
}

/* Objects of the passes that the diff from a to b adds, changes or deletes. */
static size_t pass_changed(const struct ir_table *a, const struct ir_table *b)
{
	struct ir_diff *d;
	ck_assert_int_eq(ir_diff_compute(a, b, &d), 0);
	size_t n = 0;
	for (size_t i = 0; i < b->n_chains; i++)
		n += d->chain_op[i] != IR_DIFF_KEEP && pass_made(b->chains[i].name);
	for (size_t i = 0; i < d->n_chain_del; i++)
		n += pass_made(a->chains[d->chain_del[i]].name);
	for (size_t i = 0; i < b->n_sets; i++)
		n += d->set_op[i] != IR_DIFF_KEEP && pass_made(b->sets[i].name);
	for (size_t i = 0; i < d->n_set_del; i++)
		n += pass_made(a->sets[d->set_del[i]].name);
	ir_diff_free(d);
	return n;
}

static struct ir_table *names_build(enum names_edit e)
{
	char *text = names_policy(e);
	struct ir_table *t = build(text, true);
	free(text);
	ck_assert_ptr_nonnull(t);
	struct policy_diags vd = { 0 };
	if (ir_table_validate(t, &vd))
		ck_abort_msg("invalid IR: %s", vd.n ? vd.v[vd.n - 1].message : "?");
	policy_diags_free(&vd);
	irtest_done(NULL); /* the policy; the table is the caller's */
	return t;
}

START_TEST(test_names_stay)
{
	struct ir_table *base = names_build(NAMES_NONE);
	/* the passes must have run, or this proves nothing */
	ck_assert_uint_ge(rep.runs_dispatched, NAMES_RUNS);
	ck_assert_uint_ge(rep.sets_named, 4);
	size_t objects = pass_objects(base);
	ck_assert_uint_ge(objects, NAMES_RUNS * NAMES_RUN_RULES);

	/* the same policy compiles to the same names */
	struct ir_table *again = names_build(NAMES_NONE);
	ck_assert_uint_eq(pass_changed(base, again), 0);
	ir_table_free(again);

	/* a rule in the first run: its action chain, and the map of that run
	 * (deleted and added under its new name) */
	struct ir_table *t = names_build(NAMES_INSERT_RUN);
	size_t changed = pass_changed(base, t);
	fprintf(stderr, "names_stay: rule in a run: %zu of %zu objects changed\n", changed,
		objects);
	ck_assert_uint_ge(changed, 1);
	ck_assert_uint_le(changed, 3);
	ir_table_free(t);

	/* a rule with an address set and a port set before all others: the two
	 * sets */
	t = names_build(NAMES_INSERT_SETS);
	changed = pass_changed(base, t);
	fprintf(stderr, "names_stay: rule with sets: %zu of %zu objects changed\n", changed,
		objects);
	ck_assert_uint_ge(changed, 1);
	ck_assert_uint_le(changed, 2);
	ir_table_free(t);
	ir_table_free(base);
}
END_TEST

/* Names made to collide (2 bits of hash: four names per prefix) are told
 * apart by the hash of another seed, the same way on every compile. */
START_TEST(test_name_collisions)
{
	unsigned keep = policy_optimize_name_bits;
	policy_optimize_name_bits = 2;
	struct ir_table *a = names_build(NAMES_NONE), *b = names_build(NAMES_NONE);
	policy_optimize_name_bits = keep;
	size_t suffixed = 0;
	for (size_t i = 0; i < a->n_chains; i++) {
		const char *name = a->chains[i].name;
		suffixed += pass_made(name) && strchr(strchr(name, '_') + 1, '_');
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(name, a->chains[j].name);
	}
	for (size_t i = 0; i < a->n_sets; i++)
		for (size_t j = 0; j < i; j++)
			if (!(a->sets[i].flags & IR_SET_ANONYMOUS))
				ck_assert_str_ne(a->sets[i].name, a->sets[j].name);
	ck_assert_uint_ge(suffixed, 10);
	ck_assert_uint_eq(pass_changed(a, b), 0);
	ir_table_free(a);
	ir_table_free(b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("optimize");
	TCase *tc = tcase_create("optimize");
	tcase_add_test(tc, test_merge_same_rule);
	tcase_add_test(tc, test_no_merge_across_rules);
	tcase_add_test(tc, test_dedupe_and_unreachable);
	tcase_add_test(tc, test_sets_named_and_shared);
	tcase_add_test(tc, test_dispatch_keeps_first_match_and_counters);
	tcase_add_test(tc, test_dispatch_identical_runs_share_a_map);
	tcase_add_test(tc, test_dispatch_different_runs_get_their_own_maps);
	tcase_add_test(tc, test_dispatch_intervals_first_match);
	tcase_add_test(tc, test_normalize_intervals);
	tcase_add_test(tc, test_size_hint_on_large_constant_sets);
	tcase_add_test(tc, test_no_dedupe_across_modification);
	tcase_add_test(tc, test_names_stay);
	tcase_add_test(tc, test_name_collisions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
