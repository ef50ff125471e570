/* Lowering: each construct of the language -> the IR it must become (the
 * front end parses the policy text; the optimizer is off unless a test says
 * otherwise, so what is checked is lowering's own output). */
#include <check.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat/nat.h"
#include "policy/lower.h"
#include "policy/policy.h"
#include "tests/lib/irtest.h"
#include "tests/lib/checkmain.h"

#define TEST_FILE IRTEST_FILE

static const struct ir_chain *chain(struct ir_table *t, const char *name)
{
	return ir_chain_find(t, name);
}

/* The chain that decides traffic from zone a to zone b, following the
 * dispatch as the kernel does: a pair chain identical to its fallback is not
 * made, and from_a is not made when it equals from_unzoned. */
static const struct ir_chain *pair_chain(struct ir_table *t, const char *a, const char *b)
{
	char name[IR_NAME_MAX];
	snprintf(name, sizeof(name), "from_%s", a);
	if (!ir_chain_find(t, name))
		a = POLICY_UNZONED;
	snprintf(name, sizeof(name), "%s_to_%s", a, b);
	if (ir_chain_find(t, name))
		return ir_chain_find(t, name);
	snprintf(name, sizeof(name), "%s_to_%s", a, POLICY_UNZONED);
	return ir_chain_find(t, name);
}

/* The chain a base chain's dispatch falls back to (its last rule's goto):
 * traffic to/from the appliance on interfaces of no zone. Equal pair
 * chains are shared, so the name need not be unzoned_to_self. */
static const struct ir_chain *fallback_of(struct ir_table *t, const char *base)
{
	const struct ir_chain *c = ir_chain_find(t, base);
	if (!c || !c->n_rules || c->rules[c->n_rules - 1].verdict.kind != IR_V_GOTO)
		return NULL;
	return ir_chain_find(t, c->rules[c->n_rules - 1].verdict.chain);
}

static const struct ir_set *set_named(const struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strcmp(t->sets[i].name, name))
			return &t->sets[i];
	return NULL;
}

static bool has_diag(const char *needle)
{
	for (size_t i = 0; i < irtest_diags.n; i++)
		if (strstr(irtest_diags.v[i].message, needle))
			return true;
	return false;
}

static const char *two_zones = "zone lan { interface \"lan0\" }\n"
			       "zone dmz { interface \"dmz0\" }\n";

START_TEST(test_glue)
{
	struct ir_table *t = irtest_lower(two_zones, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *b4 = set_named(t, POLICY_SET_BLOCKED4);
	const struct ir_set *b6 = set_named(t, POLICY_SET_BLOCKED6);
	ck_assert_ptr_nonnull(b4);
	ck_assert_ptr_nonnull(b6);
	/* scoped by the mark's range (tenants), prefixes: concatenated intervals */
	ck_assert_uint_eq(b4->flags, IR_SET_INTERVAL | IR_SET_TIMEOUT | IR_SET_DYNAMIC);
	ck_assert_uint_eq(b6->n_key, 2);
	ck_assert_int_eq(b6->key[0], IR_META_MARK);
	ck_assert_int_eq(b6->key[1], IR_IP6_SADDR);
	const struct ir_chain *fwd = chain(t, POLICY_CHAIN_FORWARD);
	ck_assert_int_eq(fwd->hook, IR_HOOK_FORWARD);
	ck_assert_int_eq(fwd->policy, IR_V_DROP);
	/* zone-scoped lists: oifname . address, the same flags */
	const struct ir_set *z4 = set_named(t, POLICY_SET_BLOCKED_ZONE4);
	ck_assert_ptr_nonnull(z4);
	ck_assert_ptr_nonnull(set_named(t, POLICY_SET_BLOCKED_ZONE6));
	ck_assert_uint_eq(z4->flags, IR_SET_INTERVAL | IR_SET_TIMEOUT | IR_SET_DYNAMIC);
	ck_assert_int_eq(z4->key[0], IR_META_OIFNAME);
	ck_assert_int_eq(z4->key[1], IR_IP_SADDR);
	/* block lists first (v4/v6 x saddr/daddr, then the zone lists: v4/v6 x
	 * oifname . saddr / iifname . daddr), then ONE ct state lookup */
	for (size_t i = 0; i < 8; i++) {
		ck_assert_str_eq(fwd->rules[i].comment, POLICY_COMMENT_BLOCKED);
		ck_assert_int_eq(fwd->rules[i].matches[0].field[0], IR_META_NFPROTO);
		ck_assert_int_eq(fwd->rules[i].verdict.kind, IR_V_DROP);
		ck_assert_ptr_nonnull(irtest_stmt(&fwd->rules[i], IR_S_COUNTER));
	}
	ck_assert_int_eq(fwd->rules[4].matches[1].field[0], IR_META_OIFNAME);
	ck_assert_int_eq(fwd->rules[4].matches[1].field[1], IR_IP_SADDR);
	ck_assert_int_eq(fwd->rules[5].matches[1].field[0], IR_META_IIFNAME);
	ck_assert_int_eq(fwd->rules[5].matches[1].field[1], IR_IP_DADDR);
	const struct ir_stmt *vm = irtest_stmt(&fwd->rules[8], IR_S_VMAP);
	ck_assert_ptr_nonnull(vm);
	const struct ir_set *ct = &t->sets[vm->set];
	ck_assert(ct->flags & IR_SET_ANONYMOUS);
	ck_assert_int_eq(ct->key[0], IR_CT_STATE);
	ck_assert_uint_eq(ct->n_elems, 3);
	ck_assert_int_eq(ct->elems[0].verdict.kind, IR_V_GOTO); /* invalid -> counted drop */
	ck_assert_str_eq(ct->elems[0].verdict.chain, POLICY_CHAIN_CT_INVALID);
	const struct ir_chain *inv = chain(t, POLICY_CHAIN_CT_INVALID);
	ck_assert_ptr_nonnull(irtest_stmt(&inv->rules[0], IR_S_COUNTER));
	ck_assert_int_eq(inv->rules[0].verdict.kind, IR_V_DROP);
	/* input: loopback and neighbour discovery, counted */
	const struct ir_chain *in = chain(t, POLICY_CHAIN_INPUT);
	ck_assert_uint_eq(irtest_count_comment(in, POLICY_COMMENT_LOOPBACK), 1);
	ck_assert_uint_eq(irtest_count_comment(in, POLICY_COMMENT_ND), 1);
	/* the appliance's own DHCPv6 answers: udp port 546 of a link-local address */
	ck_assert_uint_eq(irtest_count_comment(in, POLICY_COMMENT_DHCPV6), 1);
	for (size_t i = 0; i < in->n_rules; i++) {
		const struct ir_rule *r = &in->rules[i];
		if (strcmp(r->comment, POLICY_COMMENT_DHCPV6))
			continue;
		ck_assert_int_eq(r->verdict.kind, IR_V_ACCEPT);
		ck_assert_int_eq(irtest_match(r, IR_TH_DPORT)->value.data[1], 546 & 0xff);
		ck_assert_int_eq(irtest_match(r, IR_IP6_DADDR)->kind, IR_M_PREFIX);
		ck_assert_int_eq(irtest_match(r, IR_IP6_DADDR)->prefix_len, 10);
		ck_assert_int_eq(irtest_match(r, IR_IP6_DADDR)->value.data[0], 0xfe);
		ck_assert_ptr_nonnull(irtest_match(r, IR_META_NFPROTO));
	}
	ck_assert_int_eq(chain(t, POLICY_CHAIN_OUTPUT)->policy, IR_V_ACCEPT);
	irtest_done(t);
}
END_TEST

START_TEST(test_zone_dispatch_and_wildcard)
{
	struct ir_table *t = irtest_lower("zone up { interface \"eth0\" }\n"
					  "zone vms { interface \"tap-*\" }\n"
					  "pass from vms to up service tcp port 80\n",
					  NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *m = set_named(t, POLICY_MAP_ZONE_FROM);
	ck_assert_ptr_nonnull(m);
	ck_assert(m->flags & IR_SET_INTERVAL);
	ck_assert_int_eq(m->data, IR_DATA_VERDICT);
	bool saw_wild = false;
	for (size_t i = 0; i < m->n_elems; i++) {
		const struct ir_set_elem *e = &m->elems[i];
		if (memcmp(e->key[0].data, "tap-", 4))
			continue;
		saw_wild = true;
		ck_assert_uint_eq(e->key[0].data[4], 0);
		ck_assert_uint_eq(e->key_end[0].data[4], 0xff);
		ck_assert_uint_eq(e->key_end[0].data[IFNAMSIZ - 1], 0xff);
		ck_assert_str_eq(e->verdict.chain, "from_vms");
	}
	ck_assert(saw_wild);
	const struct ir_chain *pair = chain(t, "vms_to_up");
	ck_assert_ptr_nonnull(pair);
	ck_assert_uint_eq(irtest_count_comment(pair, TEST_FILE ":3:"), 1);
	/* the rule names zones: not in the fallback chains */
	ck_assert_uint_eq(irtest_count_comment(chain(t, "vms_to_unzoned"), TEST_FILE ":3:"), 0);
	irtest_done(t);
}
END_TEST

START_TEST(test_overlapping_zones_error)
{
	struct ir_table *t = irtest_lower("zone a { interface \"tap-*\" }\n"
					  "zone b { interface \"tap-x1\" }\n",
					  NULL);
	ck_assert_ptr_null(t);
	ck_assert_uint_ge(irtest_diags.n_errors, 1);
	ck_assert(has_diag("overlaps"));
	/* both locations: the error at b, a note at a */
	bool line1 = false, line2 = false;
	for (size_t i = 0; i < irtest_diags.n; i++) {
		line1 = line1 || irtest_diags.v[i].loc.line == 1;
		line2 = line2 || irtest_diags.v[i].loc.line == 2;
	}
	ck_assert(line1 && line2);
	irtest_done(t);
}
END_TEST

START_TEST(test_self)
{
	struct ir_table *t = irtest_lower("zone lan { interface \"lan0\" }\n"
					  "zone wan { interface \"wan0\" }\n"
					  "pass from lan to self service ssh\n"
					  "pass from self to wan service dns\n"
					  "pass from any to any service ping\n",
					  NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(set_named(t, POLICY_MAP_SELF_FROM));
	ck_assert_ptr_nonnull(set_named(t, POLICY_MAP_SELF_TO));
	ck_assert_uint_eq(irtest_count_comment(chain(t, "lan_to_self"), TEST_FILE ":3:"), 1);
	ck_assert_uint_ge(irtest_count_comment(chain(t, "self_to_wan"), TEST_FILE ":4:"), 1);
	/* `to self` is not forwarded traffic; `any` includes self (both ways) */
	ck_assert_uint_eq(irtest_count_comment(pair_chain(t, "lan", "wan"), TEST_FILE ":3:"), 0);
	ck_assert_uint_eq(irtest_count_comment(chain(t, "lan_to_self"), TEST_FILE ":5:"), 2);
	ck_assert_uint_eq(irtest_count_comment(chain(t, "self_to_wan"), TEST_FILE ":5:"), 2);
	ck_assert_ptr_null(chain(t, "self_to_self"));
	ck_assert_uint_eq(irtest_count_comment(pair_chain(t, "lan", "wan"), TEST_FILE ":5:"), 2);
	/* output is stateful too: the ct lookup comes before the dispatch */
	const struct ir_chain *out = chain(t, POLICY_CHAIN_OUTPUT);
	ck_assert_ptr_nonnull(irtest_stmt(&out->rules[0], IR_S_VMAP));
	ck_assert_int_eq(irtest_stmt(&out->rules[0], IR_S_VMAP)->field[0], IR_CT_STATE);
	/* then loopback and neighbour discovery, which `from any` rules must not cut */
	ck_assert_uint_eq(irtest_count_comment(out, POLICY_COMMENT_LOOPBACK), 1);
	ck_assert_uint_eq(irtest_count_comment(out, POLICY_COMMENT_ND), 1);
	ck_assert_int_eq(irtest_match(&out->rules[1], IR_META_OIFNAME)->kind, IR_M_CMP);
	/* output ends in accept (the appliance's own traffic) */
	const struct ir_chain *o = chain(t, "self_to_wan");
	ck_assert_int_eq(o->rules[o->n_rules - 1].verdict.kind, IR_V_ACCEPT);
	irtest_done(t);
}
END_TEST

START_TEST(test_any_copied_everywhere)
{
	struct ir_table *t =
	    irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "block from any to 10.0.0.1\n",
			 NULL);
	ck_assert_ptr_nonnull(t);
	const char *zones[] = { "a", "b", POLICY_UNZONED };
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 3; j++)
			ck_assert_uint_eq(irtest_count_comment(pair_chain(t, zones[i], zones[j]),
							       TEST_FILE ":3:"),
					  1);
	/* and the appliance itself, which may own the address */
	ck_assert_uint_eq(irtest_count_comment(fallback_of(t, POLICY_CHAIN_INPUT), TEST_FILE ":3:"),
			  1);
	ck_assert_uint_eq(
	    irtest_count_comment(fallback_of(t, POLICY_CHAIN_OUTPUT), TEST_FILE ":3:"), 1);
	/* same rules, same default: input's fallback IS the forward fallback chain */
	ck_assert_ptr_eq(fallback_of(t, POLICY_CHAIN_INPUT), chain(t, "unzoned_to_unzoned"));
	irtest_done(t);
}
END_TEST

START_TEST(test_families_split)
{
	struct ir_table *t =
	    irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "pass from { 10.0.0.0/8, fd00::/8 } to b\n"
			 "pass from { 10.0.0.0/8, fd00::/8 } to 192.0.2.1\n",
			 NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = pair_chain(t, "a", "b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 2);
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":4:"), 1); /* v4 only */
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct ir_rule *r = &c->rules[i];
		if (strncmp(r->comment, TEST_FILE ":3:", strlen(TEST_FILE ":3:")))
			continue;
		/* dependency first: meta nfproto, then the address */
		ck_assert_int_eq(r->matches[0].field[0], IR_META_NFPROTO);
		bool v6 = r->matches[0].value.data[0] == NFPROTO_IPV6;
		const struct ir_match *m = irtest_match(r, v6 ? IR_IP6_SADDR : IR_IP_SADDR);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(m->kind, IR_M_PREFIX);
		ck_assert_uint_eq(m->prefix_len, 8);
	}
	irtest_done(t);
}
END_TEST

START_TEST(test_services_and_dependencies)
{
	struct ir_table *t = irtest_lower(
	    "zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
	    "pass from a to b service { tcp port { 80, 443 }, udp port 53, icmp type echo-request }\n",
	    NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = chain(t, "a_to_b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 3);
	const struct ir_rule *tcp = &c->rules[0];
	ck_assert_int_eq(tcp->matches[0].field[0], IR_META_L4PROTO);
	ck_assert_uint_eq(tcp->matches[0].value.data[0], IPPROTO_TCP);
	ck_assert_int_eq(tcp->matches[1].field[0], IR_TH_DPORT);
	ck_assert_int_eq(tcp->matches[1].kind, IR_M_LOOKUP);
	ck_assert_uint_eq(t->sets[tcp->matches[1].set].n_elems, 2);
	const struct ir_rule *udp = &c->rules[1];
	ck_assert_int_eq(udp->matches[1].kind, IR_M_CMP);
	ck_assert_uint_eq(udp->matches[1].value.data[1], 53); /* network order */
	const struct ir_rule *icmp = &c->rules[2];
	ck_assert_uint_eq(icmp->matches[0].value.data[0], IPPROTO_ICMP);
	ck_assert_int_eq(icmp->matches[1].field[0], IR_ICMP_TYPE);
	irtest_done(t);
}
END_TEST

START_TEST(test_reject)
{
	struct ir_table *t =
	    irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "reject from a to b service udp port 9\n"
			 "reject from a to b\n",
			 NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = chain(t, "a_to_b");
	/* udp: only the icmpx half */
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 1);
	ck_assert_int_eq(irtest_stmt(&c->rules[0], IR_S_REJECT)->reject,
			 IR_REJECT_ICMPX_PORT_UNREACH);
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":4:"), 2);
	ck_assert_uint_eq(c->rules[1].matches[0].value.data[0], IPPROTO_TCP);
	ck_assert_int_eq(irtest_stmt(&c->rules[1], IR_S_REJECT)->reject, IR_REJECT_TCP_RESET);
	ck_assert_uint_eq(c->rules[2].n_matches, 0);
	ck_assert_int_eq(irtest_stmt(&c->rules[2], IR_S_REJECT)->reject,
			 IR_REJECT_ICMPX_PORT_UNREACH);
	ck_assert_ptr_nonnull(irtest_stmt(&c->rules[2], IR_S_COUNTER));
	irtest_done(t);
}
END_TEST

START_TEST(test_log_and_limit)
{
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	o.optimize = false;
	o.nflog_group = 7;
	struct ir_table *t =
	    irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "pass from a to b service ssh limit 10/minute log\n"
			 "block from a to b log \"bad\" limit 3/second burst 9\n",
			 &o);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = chain(t, "a_to_b");
	const struct ir_rule *r = &c->rules[0];
	const struct ir_stmt *lim = irtest_stmt(r, IR_S_LIMIT);
	ck_assert_uint_eq(lim->rate, 10);
	ck_assert_int_eq(lim->unit, IR_PER_MINUTE);
	ck_assert_uint_eq(lim->burst, POLICY_LIMIT_BURST_DEFAULT);
	const struct ir_stmt *lg = irtest_stmt(r, IR_S_LOG);
	ck_assert_str_eq(lg->log_prefix, r->comment); /* the rule id */
	ck_assert_int_eq(lg->log_group, 7);
	/* limit before counter: the counter counts what the rule decided */
	ck_assert_int_eq(r->stmts[0].kind, IR_S_LIMIT);
	ck_assert_int_eq(r->stmts[1].kind, IR_S_COUNTER);
	r = &c->rules[1];
	/* to an NFLOG group the prefix is the rule id even with a log text,
	 * so that the daemon names this rule and not another with that text */
	ck_assert_str_eq(irtest_stmt(r, IR_S_LOG)->log_prefix, r->comment);
	ck_assert_uint_eq(irtest_stmt(r, IR_S_LIMIT)->burst, 9);
	ck_assert_int_eq(irtest_stmt(r, IR_S_LIMIT)->unit, IR_PER_SECOND);
	irtest_done(t);
	/* to the kernel log the text stays */
	o.nflog_group = -1;
	t = irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "block from a to b log \"bad\"\n",
			 &o);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(irtest_stmt(&chain(t, "a_to_b")->rules[0], IR_S_LOG)->log_prefix, "bad");
	irtest_done(t);
}
END_TEST

START_TEST(test_defaults_per_pair)
{
	struct ir_table *t =
	    irtest_lower("zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			 "zone c { interface \"c0\" }\n"
			 "default block\n"
			 "default from a to b pass log\n"
			 "default from a to any reject\n",
			 NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *ab = chain(t, "a_to_b");
	const struct ir_rule *last = &ab->rules[ab->n_rules - 1];
	ck_assert_str_eq(last->comment, "default:" TEST_FILE ":5");
	ck_assert_int_eq(last->verdict.kind, IR_V_ACCEPT);
	ck_assert_ptr_nonnull(irtest_stmt(last, IR_S_LOG));
	ck_assert_ptr_nonnull(irtest_stmt(last, IR_S_COUNTER));
	/* a to anything else: the reject default, two halves */
	const struct ir_chain *au = chain(t, "a_to_unzoned");
	ck_assert_uint_eq(irtest_count_comment(au, "default:" TEST_FILE ":6"), 2);
	/* b to c: the global default */
	const struct ir_chain *bu = chain(t, "unzoned_to_unzoned");
	ck_assert_str_eq(bu->rules[bu->n_rules - 1].comment, POLICY_COMMENT_DEFAULT_BUILTIN);
	ck_assert_int_eq(bu->rules[bu->n_rules - 1].verdict.kind, IR_V_DROP);
	irtest_done(t);
}
END_TEST

START_TEST(test_no_state)
{
	struct ir_table *t =
	    irtest_lower("zone lan { interface \"lan0\" }\nzone wan { interface \"wan*\" }\n"
			 "pass from lan to wan service udp port 53 no state\n"
			 "pass from self to wan service udp port 123 no state\n",
			 NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *raw = chain(t, POLICY_CHAIN_RAW_PREROUTING);
	ck_assert_ptr_nonnull(raw);
	ck_assert_int_eq(raw->hook, IR_HOOK_PREROUTING);
	ck_assert_int_eq(raw->priority, -300);
	ck_assert_uint_eq(raw->n_rules, 1);
	const struct ir_match *iif = irtest_match(&raw->rules[0], IR_META_IIFNAME);
	ck_assert_ptr_nonnull(iif);
	ck_assert_str_eq((const char *)iif->value.data, "lan0");
	ck_assert_ptr_nonnull(irtest_stmt(&raw->rules[0], IR_S_NOTRACK));
	const struct ir_chain *rawo = chain(t, POLICY_CHAIN_RAW_OUTPUT);
	ck_assert_ptr_nonnull(rawo);
	const struct ir_match *oif = irtest_match(&rawo->rules[0], IR_META_OIFNAME);
	ck_assert(oif->wildcard);
	/* and the filter rule is still there */
	ck_assert_uint_eq(irtest_count_comment(chain(t, "lan_to_wan"), TEST_FILE ":3:"), 1);
	irtest_done(t);
}
END_TEST

/* The label bits a rule sets (ct label set N ...), as a bitmap of N < 64. */
static uint64_t labels_set(const struct ir_rule *r)
{
	uint64_t bits = 0;
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == IR_S_SET_VALUE && r->stmts[i].target == IR_CT_LABEL) {
			int b = ir_value_ct_label_bit(&r->stmts[i].value);
			ck_assert_int_ge(b, 0);
			bits |= 1ull << b;
		}
	return bits;
}

START_TEST(test_inspect)
{
	const char *text = "zone a { interface \"a0\" }\nzone b { interface \"b0\" }\n"
			   "pass from a to b service http inspect { block content /evil/ }\n"
			   "pass from b to a service ssh\n"
			   "pass from b to a service http inspect { block content /x/ }\n"
			   "pass from a to b service dns no state inspect { block content /y/ }\n";
	struct ir_table *t = irtest_lower(text, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert(has_diag("inspection is off"));
	ck_assert_uint_eq(irtest_count_comment(chain(t, "a_to_b"), TEST_FILE ":3:"), 1);
	ck_assert_ptr_null(ir_chain_find(t, POLICY_CHAIN_INSPECT));
	irtest_done(t);
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	o.optimize = false;
	o.queue_num = 4;
	o.queue_count = 2;
	t = irtest_lower(text, &o);
	ck_assert_ptr_nonnull(t);
	ck_assert(has_diag("`no state` has none"));
	/* the rule: counter, pending + number 1 (label 8), its first packets to
	 * block 1 of the queues (6-7; the inspect chain has block 0, 4-5),
	 * spread over the two by the 5-tuple's hash in chain inspect-q1 */
	const struct ir_chain *c = chain(t, "a_to_b");
	ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":3:"), 1);
	const struct ir_rule *r = &c->rules[0];
	ck_assert_ptr_null(irtest_stmt(r, IR_S_QUEUE));
	ck_assert_int_eq(r->verdict.kind, IR_V_JUMP);
	ck_assert_str_eq(r->verdict.chain, "inspect-q1");
	const struct ir_chain *spread = chain(t, "inspect-q1");
	ck_assert_uint_eq(spread->n_rules, 2);
	const struct ir_match *h = irtest_match(&spread->rules[0], IR_FLOW_HASH);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(h->kind, IR_M_RANGE);
	ck_assert_mem_eq(h->value.data, ir_value_u32(0).data, 4);
	ck_assert_mem_eq(h->value_end.data, ir_value_u32(31).data, 4);
	const struct ir_stmt *q = irtest_stmt(&spread->rules[0], IR_S_QUEUE);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(q->queue_num, 6);
	ck_assert_uint_eq(q->queue_count, 1);
	ck_assert(q->queue_bypass);
	ck_assert_uint_eq(spread->rules[1].n_matches, 0); /* the rest: the last worker */
	ck_assert_uint_eq(irtest_stmt(&spread->rules[1], IR_S_QUEUE)->queue_num, 7);
	ck_assert_ptr_nonnull(irtest_stmt(r, IR_S_COUNTER));
	ck_assert_uint_eq(labels_set(r),
			  (1ull << POLICY_CT_LABEL_PENDING) | (1ull << POLICY_CT_LABEL_RULE_SHIFT));
	/* the second inspect rule (line 5) is number 2: label 9 */
	const struct ir_rule *r2 = NULL;
	for (size_t i = 0; i < chain(t, "b_to_a")->n_rules; i++)
		if (irtest_rule_is(&chain(t, "b_to_a")->rules[i], TEST_FILE ":5:"))
			r2 = &chain(t, "b_to_a")->rules[i];
	ck_assert_ptr_nonnull(r2);
	ck_assert_uint_eq(labels_set(r2), (1ull << POLICY_CT_LABEL_PENDING) |
					      (1ull << (POLICY_CT_LABEL_RULE_SHIFT + 1)));
	ck_assert_str_eq(r2->verdict.chain, "inspect-q2");
	ck_assert_uint_eq(irtest_stmt(&chain(t, "inspect-q2")->rules[0], IR_S_QUEUE)->queue_num, 8);
	/* the `no state` one is a plain accept */
	for (size_t i = 0; i < c->n_rules; i++)
		if (!strncmp(c->rules[i].comment, TEST_FILE ":6:", strlen(TEST_FILE ":6:"))) {
			ck_assert_ptr_null(irtest_stmt(&c->rules[i], IR_S_QUEUE));
			ck_assert_uint_eq(labels_set(&c->rules[i]), 0);
		}
	/* forward and input jump to the inspect chain before the ct state verdicts */
	const char *hooks[] = { POLICY_CHAIN_FORWARD, POLICY_CHAIN_INPUT };
	for (size_t h = 0; h < 2; h++) {
		const struct ir_chain *base = chain(t, hooks[h]);
		size_t jump = base->n_rules, ct = base->n_rules;
		for (size_t i = 0; i < base->n_rules; i++) {
			if (!strcmp(base->rules[i].comment, POLICY_COMMENT_INSPECT))
				jump = i;
			if (!strcmp(base->rules[i].comment, POLICY_COMMENT_CT) &&
			    ct == base->n_rules)
				ct = i;
		}
		ck_assert_uint_lt(jump, ct);
		ck_assert_int_eq(base->rules[jump].verdict.kind, IR_V_JUMP);
		ck_assert_str_eq(base->rules[jump].verdict.chain, POLICY_CHAIN_INSPECT);
	}
	/* a base chain right after each filter hook's turns the DONE bit of
	 * the mark the fast path's verdict sets into the DONE label, on flows
	 * under inspection, and takes the bit off again */
	const char *done_chains[] = { POLICY_CHAIN_INSPECT_DONE_INPUT,
				      POLICY_CHAIN_INSPECT_DONE_FORWARD,
				      POLICY_CHAIN_INSPECT_DONE_OUTPUT };
	const enum ir_hook done_hooks[] = { IR_HOOK_INPUT, IR_HOOK_FORWARD, IR_HOOK_OUTPUT };
	for (size_t h = 0; h < 3; h++) {
		const struct ir_chain *d = chain(t, done_chains[h]);
		ck_assert_ptr_nonnull(d);
		ck_assert_int_eq(d->hook, done_hooks[h]);
		ck_assert_int_eq(d->priority, chain(t, POLICY_CHAIN_FORWARD)->priority + 1);
		ck_assert_int_eq(d->policy, IR_V_ACCEPT);
		ck_assert_uint_eq(d->n_rules, 1);
		const struct ir_rule *dr = &d->rules[0];
		const struct ir_match *mm = irtest_match(dr, IR_META_MARK);
		ck_assert_ptr_nonnull(mm);
		ck_assert_int_eq(mm->kind, IR_M_BITS);
		ck_assert_mem_eq(mm->value.data, ir_value_u32(POLICY_MARK_INSPECT_DONE).data, 4);
		ck_assert_int_eq(ir_value_ct_label_bit(&irtest_match(dr, IR_CT_LABEL)->value),
				 POLICY_CT_LABEL_PENDING);
		ck_assert_uint_eq(labels_set(dr), 1ull << POLICY_CT_LABEL_DONE);
		const struct ir_stmt *ms = NULL;
		for (size_t i = 0; i < dr->n_stmts; i++)
			if (dr->stmts[i].kind == IR_S_SET_VALUE &&
			    dr->stmts[i].target == IR_META_MARK)
				ms = &dr->stmts[i];
		ck_assert_ptr_nonnull(ms);
		ck_assert_uint_eq(ms->keep_mask, ~POLICY_MARK_INSPECT_DONE);
		ck_assert_mem_eq(ms->value.data, ir_value_u32(0).data, 4);
		ck_assert_int_eq(dr->verdict.kind, IR_V_NONE);
	}
	/* the inspect chain: blocked -> drop, done -> return, the receiver's
	 * SYN-ACK -> queue, original -> queue */
	const struct ir_chain *in = chain(t, POLICY_CHAIN_INSPECT);
	ck_assert_uint_eq(in->n_rules, 4);
	ck_assert_int_eq(in->rules[0].verdict.kind, IR_V_DROP);
	ck_assert_int_eq(ir_value_ct_label_bit(&irtest_match(&in->rules[0], IR_CT_LABEL)->value),
			 POLICY_CT_LABEL_BLOCKED);
	ck_assert_int_eq(in->rules[1].verdict.kind, IR_V_RETURN);
	ck_assert_int_eq(ir_value_ct_label_bit(&irtest_match(&in->rules[1], IR_CT_LABEL)->value),
			 POLICY_CT_LABEL_DONE);
	ck_assert_uint_eq(irtest_match(&in->rules[2], IR_CT_DIRECTION)->value.data[0], 1);
	ck_assert_uint_eq(irtest_match(&in->rules[2], IR_META_L4PROTO)->value.data[0], IPPROTO_TCP);
	ck_assert_int_eq(irtest_match(&in->rules[2], IR_TCP_FLAGS)->kind, IR_M_BITS);
	ck_assert_uint_eq(irtest_match(&in->rules[2], IR_TCP_FLAGS)->value.data[0], 0x02);
	ck_assert_str_eq(in->rules[2].verdict.chain, "inspect-q0");
	ck_assert_uint_eq(irtest_match(&in->rules[3], IR_CT_DIRECTION)->value.data[0], 0);
	ck_assert_str_eq(in->rules[3].verdict.chain, "inspect-q0");
	char *nft = irtest_emit_nft(t);
	ck_assert_ptr_nonnull(strstr(nft, "ct label set 0 ct label set 8 jump inspect-q1"));
	ck_assert_ptr_nonnull(strstr(nft, "ct label 0 jump inspect"));
	ck_assert_ptr_nonnull(strstr(nft, "ct direction original counter jump inspect-q0"));
	ck_assert_ptr_nonnull(strstr(
	    nft,
	    "ct direction reply meta l4proto tcp tcp flags and 2 != 0 counter jump inspect-q0"));
	ck_assert_ptr_nonnull(
	    strstr(nft, "symhash mod 64 0x00000000-0x0000001f counter queue num 4 bypass"));
	ck_assert_ptr_nonnull(strstr(nft, "counter queue num 5 bypass"));
	free(nft);
	irtest_done(t);
	/* fail-closed: no queue rule has bypass (no listener, no passage) */
	o.queue_num = 4;
	o.queue_fail_closed = true;
	t = irtest_lower(text, &o);
	ck_assert_ptr_nonnull(t);
	ck_assert(!irtest_stmt(&chain(t, "inspect-q1")->rules[0], IR_S_QUEUE)->queue_bypass);
	nft = irtest_emit_nft(t);
	ck_assert_ptr_nonnull(
	    strstr(nft, "symhash mod 64 0x00000000-0x0000001f counter queue num 4 comment"));
	ck_assert_ptr_null(strstr(nft, "bypass"));
	free(nft);
	irtest_done(t);
	o.queue_fail_closed = false;
	/* three inspect rules (the `no state` one counts) need blocks 0-3 */
	o.queue_num = 65535 - 7;
	t = irtest_lower(text, &o);
	ck_assert_ptr_nonnull(t);
	irtest_done(t);
	o.queue_num = 65535 - 6;
	ck_assert_ptr_null(irtest_lower(text, &o));
	ck_assert(has_diag("need queues 65529 to 65536; the last queue number is 65535"));
}
END_TEST

START_TEST(test_tenant_isolation)
{
	struct ir_table *t = irtest_lower(
	    "tenant acme { segment web { interface \"tap-acme\" address 10.0.1.0/24 } }\n"
	    "tenant globex { segment all { interface \"tap-globex\" address 10.0.1.0/24 } }\n"
	    "zone up { interface \"eth0\" }\n"
	    "default pass\n"
	    "pass from any to any service ping\n",
	    NULL);
	ck_assert_ptr_nonnull(t);
	/* a global `any` rule and a global `default pass` do not join tenants */
	for (size_t i = 0; i < t->n_chains; i++) {
		const struct ir_chain *c = &t->chains[i];
		bool cross = (strstr(c->name, "acme") && strstr(c->name, "globex"));
		if (!cross)
			continue;
		ck_assert_uint_eq(irtest_count_comment(c, TEST_FILE ":5:"), 0);
		ck_assert_int_eq(c->rules[c->n_rules - 1].verdict.kind, IR_V_DROP);
	}
	irtest_done(t);
}
END_TEST

START_TEST(test_deterministic_and_optimized_valid)
{
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	const char *text =
	    "zone a { interface \"a0\" }\nzone b { interface \"b*\" }\n"
	    "pass from { 10.0.0.0/24, 10.0.1.0/24 } to b service tcp port { 80, 443 } log\n";
	char *out[2];
	size_t len[2];
	for (int i = 0; i < 2; i++) {
		struct ir_table *t = irtest_lower(text, &o);
		ck_assert_ptr_nonnull(t);
		out[i] = irtest_emit_nft(t);
		len[i] = strlen(out[i]);
		irtest_done(t);
	}
	ck_assert_uint_eq(len[0], len[1]);
	ck_assert_mem_eq(out[0], out[1], len[0]);
	/* adjacent /24s merged into one prefix: a plain compare, no set */
	ck_assert_ptr_nonnull(strstr(out[0], "ip saddr 10.0.0.0/23"));
	free(out[0]);
	free(out[1]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("lower");
	TCase *tc = tcase_create("lower");
	tcase_add_test(tc, test_glue);
	tcase_add_test(tc, test_zone_dispatch_and_wildcard);
	tcase_add_test(tc, test_overlapping_zones_error);
	tcase_add_test(tc, test_self);
	tcase_add_test(tc, test_any_copied_everywhere);
	tcase_add_test(tc, test_families_split);
	tcase_add_test(tc, test_services_and_dependencies);
	tcase_add_test(tc, test_reject);
	tcase_add_test(tc, test_log_and_limit);
	tcase_add_test(tc, test_defaults_per_pair);
	tcase_add_test(tc, test_no_state);
	tcase_add_test(tc, test_inspect);
	tcase_add_test(tc, test_tenant_isolation);
	tcase_add_test(tc, test_deterministic_and_optimized_valid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
