/* The IR builders (policy/ir_build.c): ir_build_range, the one
 * compare/prefix/range match of lower.c and nat/lower.c. */
#include <check.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ir.h"
#include "policy/ir_build.h"
#include "tests/lib/checkmain.h"

static struct ir_value v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t bytes[4] = { a, b, c, d };
	return ir_value_addr(bytes, AF_INET);
}

START_TEST(test_range_of_addresses)
{
	struct ir_rule r;
	memset(&r, 0, sizeof(r));
	const struct ir_match *m =
	    ir_build_range(&r, IR_IP_SADDR, v4(10, 0, 0, 1), v4(10, 0, 0, 1));
	ck_assert_int_eq(m->kind, IR_M_CMP);
	ck_assert_int_eq(m->op, IR_OP_EQ);
	m = ir_build_range(&r, IR_IP_SADDR, v4(10, 0, 0, 0), v4(10, 0, 0, 255));
	ck_assert_int_eq(m->kind, IR_M_PREFIX);
	ck_assert_uint_eq(m->prefix_len, 24);
	ck_assert_mem_eq(m->value.data, ((uint8_t[]){ 10, 0, 0, 0 }), 4);
	m = ir_build_range(&r, IR_IP_SADDR, v4(10, 0, 0, 1), v4(10, 0, 0, 9));
	ck_assert_int_eq(m->kind, IR_M_RANGE);
	ck_assert_mem_eq(m->value_end.data, ((uint8_t[]){ 10, 0, 0, 9 }), 4);
	ck_assert_uint_eq(r.n_matches, 3);
	for (size_t i = 0; i < r.n_matches; i++)
		ck_assert_int_eq(r.matches[i].field[0], IR_IP_SADDR);
	ir_rule_clear(&r);
}
END_TEST

/* A port range shaped like a prefix (0-255) stays a range: only addresses
 * become prefixes. */
START_TEST(test_range_of_ports)
{
	struct ir_rule r;
	memset(&r, 0, sizeof(r));
	const struct ir_match *m =
	    ir_build_range(&r, IR_TH_DPORT, ir_value_u16_net(0), ir_value_u16_net(255));
	ck_assert_int_eq(m->kind, IR_M_RANGE);
	m = ir_build_range(&r, IR_TH_DPORT, ir_value_u16_net(22), ir_value_u16_net(22));
	ck_assert_int_eq(m->kind, IR_M_CMP);
	ir_rule_clear(&r);
}
END_TEST

START_TEST(test_chain_rule_has_comment_and_location)
{
	struct ir_table *t = ir_table_new(NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(ir_chain_add(t, "c"));
	struct policy_loc loc = { .file = "a.hvp", .line = 7, .col = 3 };
	struct ir_rule *r = ir_build_chain_rule(&t->chains[0], "a.hvp:7:abcdef", &loc);
	ck_assert_str_eq(r->comment, "a.hvp:7:abcdef");
	ck_assert_str_eq(r->loc.file, "a.hvp");
	ck_assert_uint_eq(r->loc.line, 7);
	r = ir_build_rule(t, "c", NULL);
	ck_assert_str_eq(r->comment, "");
	ck_assert_ptr_null(r->loc.file);
	ck_assert_uint_eq(t->chains[0].n_rules, 2);
	ck_assert_ptr_null(ir_build_rule(t, "no such chain", "x"));
	ir_table_free(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ir_build");
	TCase *tc = tcase_create("range");
	tcase_add_test(tc, test_range_of_addresses);
	tcase_add_test(tc, test_range_of_ports);
	tcase_add_test(tc, test_chain_rule_has_comment_and_location);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
