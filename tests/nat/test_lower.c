/* nat_lower(): each NAT statement -> the nat chains it must become, through
 * the real front end and policy_lower() (optimizer off). */
#include <check.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat/nat.h"
#include "policy/policy.h"
#include "policy/ruleset.h"
#include "policy/tenant.h"
#include "tests/lib/checkmain.h"
#include "tests/lib/irtest.h"

#define HEAD                                                                                       \
	"zone uplink { interface \"up0\" }\n"                                                      \
	"tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"                       \
	"  pass from lan to uplink\n"                                                              \
	"  pass from uplink to lan service tcp port 80\n"
#define TAIL "}\ntenant b { segment lan { interface \"tb0\" address 10.0.1.0/24 } }\n"

static const struct ir_stmt *nat_of(const struct ir_rule *r)
{
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == IR_S_NAT)
			return &r->stmts[i];
	return NULL;
}

static const struct ir_stmt *set_of(const struct ir_rule *r, enum ir_field target)
{
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == IR_S_SET_VALUE && r->stmts[i].target == target)
			return &r->stmts[i];
	return NULL;
}

static bool map_has(const struct ir_set *m, uint32_t mark, const char *chain)
{
	for (size_t i = 0; m && i < m->n_elems; i++)
		if (irtest_u32(&m->elems[i].key[0]) == mark &&
		    !strcmp(m->elems[i].verdict.chain, chain))
			return true;
	return false;
}

START_TEST(test_masquerade_per_tenant)
{
	struct ir_table *t = irtest_lower(HEAD "  nat masquerade out via uplink\n" TAIL, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *post = ir_chain_find(t, POLICY_CHAIN_NAT_POSTROUTING);
	ck_assert_ptr_nonnull(post);
	ck_assert_int_eq(post->type, IR_CHAIN_NAT);
	ck_assert_int_eq(post->priority, POLICY_PRI_NAT_SRC);
	/* dispatch by mark: one rule, however many tenants */
	ck_assert_uint_eq(post->n_rules, 1);
	ck_assert_int_eq(post->rules[0].stmts[0].kind, IR_S_VMAP);
	ck_assert(map_has(irtest_set(t, POLICY_MAP_NAT_POST_TENANT), 1u << POLICY_TENANT_MARK_SHIFT,
			  "nat_post_1"));
	const struct ir_chain *c = ir_chain_find(t, "nat_post_1");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->n_rules, 1); /* IPv4 only: no NAT66 */
	const struct ir_stmt *n = nat_of(&c->rules[0]);
	ck_assert_int_eq(n->nat.kind, IR_NAT_MASQUERADE);
	ck_assert_int_eq(n->nat.family, NFPROTO_IPV4);
	const struct ir_match *oif = irtest_match(&c->rules[0], IR_META_OIFNAME);
	ck_assert_ptr_nonnull(oif);
	ck_assert_str_eq((const char *)oif->value.data, "up0");
	ck_assert_ptr_null(ir_chain_find(t, "nat_post_2")); /* b has no NAT */
	irtest_done(t);
}
END_TEST

START_TEST(test_snat_pool_ports)
{
	struct ir_table *t = irtest_lower(
	    HEAD
	    "  nat snat from 10.0.1.0/25 out via uplink to 198.51.100.7-198.51.100.9 port 20000-29999\n" TAIL,
	    NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *c = ir_chain_find(t, "nat_post_1");
	ck_assert_ptr_nonnull(c);
	/* port ranges need a transport protocol: tcp, udp, then the rest */
	ck_assert_uint_eq(c->n_rules, 3);
	ck_assert_uint_eq(irtest_match(&c->rules[0], IR_META_L4PROTO)->value.data[0], IPPROTO_TCP);
	ck_assert_uint_eq(irtest_match(&c->rules[1], IR_META_L4PROTO)->value.data[0], IPPROTO_UDP);
	ck_assert_ptr_null(irtest_match(&c->rules[2], IR_META_L4PROTO));
	const struct ir_stmt *n = nat_of(&c->rules[0]);
	ck_assert_int_eq(n->nat.kind, IR_NAT_SNAT);
	ck_assert_uint_eq(n->nat.port_lo, 20000);
	ck_assert_uint_eq(n->nat.port_hi, 29999);
	ck_assert_uint_eq(n->nat.addr_lo.data[3], 7);
	ck_assert_uint_eq(n->nat.addr_hi.data[3], 9);
	ck_assert_uint_eq(nat_of(&c->rules[2])->nat.port_lo, 0);
	const struct ir_match *src = irtest_match(&c->rules[0], IR_IP_SADDR);
	ck_assert_int_eq(src->kind, IR_M_PREFIX);
	ck_assert_uint_eq(src->prefix_len, 25);
	irtest_done(t);
}
END_TEST

START_TEST(test_forward_marks_and_hairpin)
{
	struct ir_table *t = irtest_lower(
	    HEAD "  nat forward uplink tcp port 8080 on 203.0.113.1 to 10.0.1.10 port 80\n" TAIL,
	    NULL);
	ck_assert_ptr_nonnull(t);
	uint32_t mark = 1u << POLICY_TENANT_MARK_SHIFT;
	const struct ir_chain *pre = ir_chain_find(t, POLICY_CHAIN_NAT_PREROUTING);
	ck_assert_ptr_nonnull(pre);
	const struct ir_rule *r = &pre->rules[0];
	ck_assert_str_eq((const char *)irtest_match(r, IR_META_IIFNAME)->value.data, "up0");
	ck_assert_uint_eq(irtest_match(r, IR_TH_DPORT)->value.data[0] << 8 |
			      irtest_match(r, IR_TH_DPORT)->value.data[1],
			  8080);
	ck_assert_uint_eq(irtest_match(r, IR_IP_DADDR)->value.data[3], 1);
	/* the translated connection belongs to tenant a: routing and replies */
	ck_assert_uint_eq(irtest_u32(&set_of(r, IR_META_MARK)->value), mark);
	ck_assert_uint_eq(irtest_u32(&set_of(r, IR_CT_MARK)->value), mark);
	const struct ir_stmt *n = nat_of(r);
	ck_assert_int_eq(n->nat.kind, IR_NAT_DNAT);
	ck_assert_uint_eq(n->nat.addr_lo.data[3], 10);
	ck_assert_uint_eq(n->nat.port_lo, 80);
	/* from the appliance itself */
	ck_assert_ptr_nonnull(ir_chain_find(t, POLICY_CHAIN_NAT_OUTPUT));
	/* hairpin: dnat from inside marks, postrouting masquerades back */
	ck_assert(map_has(irtest_set(t, POLICY_MAP_NAT_PRE_TENANT), mark, "nat_pre_1"));
	ck_assert(map_has(irtest_set(t, POLICY_MAP_NAT_POST_TENANT),
			  mark | POLICY_TENANT_MARK_HAIRPIN, "nat_hairpin_1"));
	const struct ir_chain *hp = ir_chain_find(t, "nat_pre_1");
	ck_assert_uint_eq(irtest_u32(&set_of(&hp->rules[0], IR_META_MARK)->value),
			  mark | POLICY_TENANT_MARK_HAIRPIN);
	ck_assert_ptr_null(set_of(&hp->rules[0], IR_CT_MARK)); /* the bit stays off the ct mark */
	const struct ir_chain *back = ir_chain_find(t, "nat_hairpin_1");
	ck_assert_int_eq(nat_of(&back->rules[0])->nat.kind, IR_NAT_MASQUERADE);
	irtest_done(t);
}
END_TEST

START_TEST(test_forward_without_public_address)
{
	struct ir_table *t = irtest_lower(
	    HEAD "  nat forward uplink tcp port 8080 to 10.0.1.10 port 80\n" TAIL, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(ir_chain_find(t, "nat_pre_1"));
	ck_assert_ptr_null(ir_chain_find(t, POLICY_CHAIN_NAT_OUTPUT));
	ck_assert_ptr_null(
	    irtest_match(&ir_chain_find(t, POLICY_CHAIN_NAT_PREROUTING)->rules[0], IR_IP_DADDR));
	irtest_done(t);
}
END_TEST

START_TEST(test_netmap_both_ways)
{
	struct ir_table *t = irtest_lower(
	    HEAD "  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via uplink\n" TAIL, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_stmt *out = nat_of(&ir_chain_find(t, "nat_post_1")->rules[0]);
	ck_assert(out->nat.netmap);
	ck_assert_int_eq(out->nat.kind, IR_NAT_SNAT);
	ck_assert_uint_eq(out->nat.addr_lo.data[0], 198);
	ck_assert_uint_eq(out->nat.addr_hi.data[3], 255);
	const struct ir_rule *in = &ir_chain_find(t, POLICY_CHAIN_NAT_PREROUTING)->rules[0];
	ck_assert(nat_of(in)->nat.netmap);
	ck_assert_int_eq(nat_of(in)->nat.kind, IR_NAT_DNAT);
	ck_assert_uint_eq(nat_of(in)->nat.addr_lo.data[0], 10);
	ck_assert_uint_eq(irtest_match(in, IR_IP_DADDR)->prefix_len, 24);
	irtest_done(t);
}
END_TEST

START_TEST(test_global_masquerade)
{
	struct ir_table *t = irtest_lower(
	    "zone uplink { interface \"up0\" }\nzone lan { interface \"l0\" }\n"
	    "pass from lan to uplink\nnat masquerade from 192.168.0.0/16 out via uplink\n",
	    NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_chain *post = ir_chain_find(t, POLICY_CHAIN_NAT_POSTROUTING);
	ck_assert_uint_eq(post->n_rules, 1);
	ck_assert_ptr_null(irtest_set(t, POLICY_MAP_NAT_POST_TENANT));
	ck_assert_int_eq(nat_of(&post->rules[0])->nat.kind, IR_NAT_MASQUERADE);
	ck_assert_ptr_nonnull(irtest_match(&post->rules[0], IR_IP_SADDR));
	irtest_done(t);
}
END_TEST

START_TEST(test_port_range_shift_refused)
{
	struct ir_table *t = irtest_lower(
	    HEAD "  nat forward uplink tcp port 8000-8009 to 10.0.1.10 port 9000-9009\n" TAIL,
	    NULL);
	ck_assert_ptr_null(t);
	ck_assert_uint_ge(irtest_diags.n_errors, 1);
	irtest_done(t);
}
END_TEST

START_TEST(test_nat_text_accepted_form)
{
	struct ir_table *t = irtest_lower(
	    HEAD "  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via uplink\n" TAIL, NULL);
	ck_assert_ptr_nonnull(t);
	char *buf = irtest_emit_nft(t);
	/* nft 1.0.6 syntax of a 1:1 mapping */
	ck_assert_ptr_nonnull(strstr(buf, "snat ip prefix to 198.51.100.0/24"));
	ck_assert_ptr_nonnull(strstr(buf, "dnat ip prefix to 10.0.1.0/24"));
	free(buf);
	irtest_done(t);
}
END_TEST

/* policy/ never calls nat/: lowered without the NAT stage, a policy with NAT
 * is refused at its first nat statement, not lowered without its
 * translations. */
START_TEST(test_nat_needs_the_stage)
{
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.optimize = false;
	ck_assert_ptr_null(irtest_lower(HEAD "  nat masquerade out via uplink\n" TAIL, &o));
	ck_assert_uint_eq(irtest_diags.n_errors, 1);
	const struct policy_diag *e = &irtest_diags.v[irtest_diags.n - 1];
	ck_assert_ptr_nonnull(strstr(e->message, "NAT statements need the NAT library"));
	ck_assert_uint_eq(e->loc.line, 5);
	irtest_done(NULL);
	/* the same policy with the stage lowers */
	o.nat_lower = nat_lower;
	struct ir_table *t = irtest_lower(HEAD "  nat masquerade out via uplink\n" TAIL, &o);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(ir_chain_find(t, POLICY_CHAIN_NAT_POSTROUTING));
	irtest_done(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("nat_lower");
	TCase *tc = tcase_create("nat_lower");
	tcase_add_test(tc, test_masquerade_per_tenant);
	tcase_add_test(tc, test_snat_pool_ports);
	tcase_add_test(tc, test_forward_marks_and_hairpin);
	tcase_add_test(tc, test_forward_without_public_address);
	tcase_add_test(tc, test_netmap_both_ways);
	tcase_add_test(tc, test_global_masquerade);
	tcase_add_test(tc, test_port_range_shift_refused);
	tcase_add_test(tc, test_nat_text_accepted_form);
	tcase_add_test(tc, test_nat_needs_the_stage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
