/* The nft text backend: small IRs built by hand -> exact expected text. */
#include <check.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ir_build.h"
#include "policy/policy.h"
#include "tests/lib/irtest.h"
#include "tests/lib/checkmain.h"

static struct ir_chain *base(struct ir_table *t, const char *name, enum ir_hook hook)
{
	struct ir_chain *c = ir_chain_add(t, name);
	c->hook = hook;
	c->type = IR_CHAIN_FILTER;
	c->policy = IR_V_DROP;
	return c;
}

START_TEST(test_empty_table)
{
	struct ir_table *t = ir_table_new(NULL);
	snprintf(t->comment, sizeof(t->comment), "hvgate rev=3 hash=ab");
	char *s = irtest_emit_nft(t);
	ck_assert_str_eq(s, "table inet hvgate\n"
			    "delete table inet hvgate\n"
			    "table inet hvgate {\n"
			    "\tcomment \"hvgate rev=3 hash=ab\"\n"
			    "}\n");
	free(s);
	ir_table_free(t);
}
END_TEST

START_TEST(test_rule_text)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = base(t, "forward", IR_HOOK_FORWARD);
	struct ir_rule *r = ir_rule_add(c);
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_NFPROTO;
	m->value = ir_value_u8(NFPROTO_IPV4);
	m = ir_match_add(r);
	m->kind = IR_M_PREFIX;
	m->field[0] = IR_IP_SADDR;
	const uint8_t net[4] = { 10, 0, 0, 0 };
	m->value = ir_value_addr(net, AF_INET);
	m->prefix_len = 8;
	m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_L4PROTO;
	m->value = ir_value_u8(IPPROTO_TCP);
	m = ir_match_add(r);
	m->kind = IR_M_RANGE;
	m->field[0] = IR_TH_DPORT;
	m->value = ir_value_u16_net(8000);
	m->value_end = ir_value_u16_net(8080);
	struct ir_stmt *s = ir_stmt_add(r);
	s->kind = IR_S_LIMIT;
	s->rate = 10;
	s->unit = IR_PER_MINUTE;
	s->burst = 5;
	ir_stmt_add(r)->kind = IR_S_COUNTER;
	s = ir_stmt_add(r);
	s->kind = IR_S_LOG;
	snprintf(s->log_prefix, sizeof(s->log_prefix), "say \"hi\"");
	s->log_group = 2;
	r->verdict.kind = IR_V_ACCEPT;
	snprintf(r->comment, sizeof(r->comment), "p.hvp:3:abcdef");
	r = ir_rule_add(c);
	m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_IIFNAME;
	m->value = ir_value_ifname("tap-*");
	m->wildcard = true;
	ir_stmt_add(r)->kind = IR_S_COUNTER;
	s = ir_stmt_add(r);
	s->kind = IR_S_REJECT;
	s->reject = IR_REJECT_ICMPX_PORT_UNREACH;
	snprintf(r->comment, sizeof(r->comment), "default:builtin");
	char *out = irtest_emit_nft(t);
	ck_assert_str_eq(
	    out, "table inet hvgate\n"
		 "delete table inet hvgate\n"
		 "table inet hvgate {\n"
		 "\tchain forward {\n"
		 "\t\ttype filter hook forward priority 0; policy drop;\n"
		 "\t\tmeta nfproto ipv4 ip saddr 10.0.0.0/8 meta l4proto tcp th dport 8000-8080 "
		 "limit rate 10/minute burst 5 packets counter log prefix \"say 'hi'\" group 2 "
		 "accept comment \"p.hvp:3:abcdef\"\n"
		 "\t\tiifname \"tap-*\" counter reject with icmpx port-unreachable "
		 "comment \"default:builtin\"\n"
		 "\t}\n"
		 "}\n");
	free(out);
	ir_table_free(t);
}
END_TEST

START_TEST(test_sets_and_maps)
{
	struct ir_table *t = ir_table_new(NULL);
	size_t si = ir_set_add(t, "addr6_0");
	struct ir_set *set = &t->sets[si];
	set->key[0] = IR_IP6_DADDR;
	set->n_key = 1;
	set->flags = IR_SET_INTERVAL;
	struct ir_set_elem *e = ir_set_elem_add(set);
	uint8_t a[16] = { 0xfd, 0 }, b[16] = { 0xfd, 0 };
	memset(b + 8, 0xff, 8);
	e->key[0] = ir_value_addr(a, AF_INET6);
	e->key_end[0] = ir_value_addr(b, AF_INET6);
	e = ir_set_elem_add(set);
	a[15] = b[15] = 0;
	a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[15] = 1;
	e->key[0] = ir_value_addr(a, AF_INET6);
	size_t mi = ir_set_add(t, "zone_from");
	struct ir_set *map = &t->sets[mi];
	map->key[0] = IR_META_IIFNAME;
	map->n_key = 1;
	map->flags = IR_SET_INTERVAL;
	map->data = IR_DATA_VERDICT;
	e = ir_set_elem_add(map);
	ir_ifname_wildcard("tap-*", &e->key[0], &e->key_end[0]);
	e->verdict.kind = IR_V_GOTO;
	snprintf(e->verdict.chain, sizeof(e->verdict.chain), "from_vms");
	struct ir_chain *c = base(t, "forward", IR_HOOK_FORWARD);
	struct ir_rule *r = ir_rule_add(c);
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_LOOKUP;
	m->field[0] = IR_IP6_DADDR;
	m->set = si;
	m->op = IR_OP_NEQ;
	r->verdict.kind = IR_V_DROP;
	r = ir_rule_add(c);
	struct ir_stmt *s = ir_stmt_add(r);
	s->kind = IR_S_VMAP;
	s->field[0] = IR_META_IIFNAME;
	s->n_field = 1;
	s->set = mi;
	char *out = irtest_emit_nft(t);
	ck_assert_str_eq(out, "table inet hvgate\n"
			      "delete table inet hvgate\n"
			      "table inet hvgate {\n"
			      "\tset addr6_0 {\n"
			      "\t\ttype ipv6_addr\n"
			      "\t\tflags interval\n"
			      "\t\telements = {\n"
			      "\t\t\tfd00::/64,\n"
			      "\t\t\t2001:db8::1\n"
			      "\t\t}\n"
			      "\t}\n"
			      "\tmap zone_from {\n"
			      "\t\ttype ifname : verdict\n"
			      "\t\tflags interval\n"
			      "\t\telements = {\n"
			      "\t\t\t\"tap-*\" : goto from_vms\n"
			      "\t\t}\n"
			      "\t}\n"
			      "\tchain forward {\n"
			      "\t\ttype filter hook forward priority 0; policy drop;\n"
			      "\t\tip6 daddr != @addr6_0 drop\n"
			      "\t\tiifname vmap @zone_from\n"
			      "\t}\n"
			      "}\n");
	free(out);
	ir_table_free(t);
}
END_TEST

START_TEST(test_anonymous_ct_map_and_bits)
{
	struct ir_table *t = ir_table_new(NULL);
	size_t mi = ir_set_add(t, "__map%d");
	struct ir_set *map = &t->sets[mi];
	map->key[0] = IR_CT_STATE;
	map->n_key = 1;
	map->flags = IR_SET_ANONYMOUS | IR_SET_CONSTANT;
	map->data = IR_DATA_VERDICT;
	const uint32_t bits[] = { 1, 2, 4 };
	for (size_t i = 0; i < 3; i++) {
		struct ir_set_elem *e = ir_set_elem_add(map);
		e->key[0] = ir_value_u32(bits[i]);
		e->verdict.kind = i ? IR_V_ACCEPT : IR_V_DROP;
	}
	struct ir_chain *c = base(t, "input", IR_HOOK_INPUT);
	c->priority = -300;
	struct ir_rule *r = ir_rule_add(c);
	struct ir_stmt *s = ir_stmt_add(r);
	s->kind = IR_S_VMAP;
	s->field[0] = IR_CT_STATE;
	s->n_field = 1;
	s->set = mi;
	r = ir_rule_add(c);
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_BITS;
	m->op = IR_OP_NEQ;
	m->field[0] = IR_CT_MARK;
	m->value = ir_value_u32(1);
	s = ir_stmt_add(r);
	s->kind = IR_S_QUEUE;
	s->queue_num = 3;
	s->queue_count = 1;
	s->queue_bypass = true;
	r = ir_rule_add(c);
	ir_stmt_add(r)->kind = IR_S_NOTRACK;
	r = ir_rule_add(c);
	s = ir_build_set_value(r, IR_META_MARK, ir_value_u32(0));
	s->keep_mask = 0xffffbfff; /* the fast path's DONE bit off, the rest kept */
	char *out = irtest_emit_nft(t);
	ck_assert_ptr_nonnull(strstr(
	    out, "\t\ttype filter hook input priority -300; policy drop;\n"
		 "\t\tct state vmap { invalid : drop, established : accept, related : accept }\n"
		 "\t\tct mark and 0x00000001 == 0 queue num 3 bypass\n"
		 "\t\tnotrack\n"
		 "\t\tmeta mark set meta mark and 0xffffbfff\n"));
	ck_assert_ptr_null(strstr(out, "__map")); /* anonymous: inline only */
	free(out);
	ir_table_free(t);
}
END_TEST

START_TEST(test_validate_catches_broken_ir)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = base(t, "forward", IR_HOOK_FORWARD);
	struct ir_rule *r = ir_rule_add(c);
	r->verdict.kind = IR_V_GOTO;
	snprintf(r->verdict.chain, sizeof(r->verdict.chain), "nowhere");
	r->loc.line = 7;
	struct policy_diags d = { 0 };
	ck_assert_int_eq(ir_table_validate(t, &d), -1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "nowhere"));
	ck_assert_uint_eq(d.v[0].loc.line, 7); /* at the rule's place in the policy */
	policy_diags_free(&d);
	snprintf(r->verdict.chain, sizeof(r->verdict.chain), "forward");
	ck_assert_int_eq(ir_table_validate(t, &d), 0);
	ck_assert_uint_eq(d.n, 0);
	/* overlapping interval elements */
	size_t si = ir_set_add(t, "s");
	struct ir_set *s = &t->sets[si];
	s->key[0] = IR_TH_DPORT;
	s->n_key = 1;
	s->flags = IR_SET_INTERVAL;
	struct ir_set_elem *e = ir_set_elem_add(s);
	e->key[0] = ir_value_u16_net(10);
	e->key_end[0] = ir_value_u16_net(20);
	e = ir_set_elem_add(s);
	e->key[0] = ir_value_u16_net(15);
	ck_assert_int_eq(ir_table_validate(t, &d), -1);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "overlap"));
	policy_diags_free(&d);
	ck_assert_int_eq(ir_set_normalize(s), 0);
	ck_assert_int_eq(ir_table_validate(t, &d), 0);
	ir_table_free(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("emit_nft");
	TCase *tc = tcase_create("emit_nft");
	tcase_add_test(tc, test_empty_table);
	tcase_add_test(tc, test_rule_text);
	tcase_add_test(tc, test_sets_and_maps);
	tcase_add_test(tc, test_anonymous_ct_map_and_bits);
	tcase_add_test(tc, test_validate_catches_broken_ir);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
