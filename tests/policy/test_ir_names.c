/* ir_names (policy/ir_names.h): an IR table's chains, or its named sets,
 * found by name; anonymous sets left out; names added while the table
 * grows are found. */
#include <check.h>
#include <stdio.h>

#include "policy/ir.h"
#include "policy/ir_names.h"
#include "tests/lib/checkmain.h"

START_TEST(test_index_chains_and_grow)
{
	struct ir_table *t = ir_table_new("t");
	ck_assert_ptr_nonnull(ir_chain_add(t, "input"));
	ck_assert_ptr_nonnull(ir_chain_add(t, "forward"));
	struct ir_names x;
	ck_assert_int_eq(ir_names_index(&x, t, false, 0), 0);
	ck_assert_uint_eq(ir_names_get(&x, "forward"), 1);
	ck_assert_uint_eq(ir_names_get(&x, "input"), 0);
	ck_assert_uint_eq(ir_names_get(&x, "output"), POLICY_HMAP_NONE);
	/* chains added later: found once put, across the map's growth and
	 * the table's */
	for (int i = 0; i < 200; i++) {
		char name[IR_NAME_MAX];
		snprintf(name, sizeof(name), "c%d", i);
		ck_assert_ptr_nonnull(ir_chain_add(t, name));
		ck_assert_uint_eq(ir_names_get(&x, name), POLICY_HMAP_NONE);
		ck_assert_int_eq(ir_names_put(&x, t->n_chains - 1), 0);
	}
	for (int i = 0; i < 200; i++) {
		char name[IR_NAME_MAX];
		snprintf(name, sizeof(name), "c%d", i);
		ck_assert_uint_eq(ir_names_get(&x, name), (size_t)i + 2);
	}
	ir_names_free(&x);
	ir_table_free(t);
}
END_TEST

START_TEST(test_named_sets_only)
{
	struct ir_table *t = ir_table_new("t");
	size_t named = ir_set_add(t, "blocked");
	size_t anon = ir_set_add(t, "anon");
	ck_assert_uint_ne(named, (size_t)-1);
	ck_assert_uint_ne(anon, (size_t)-1);
	t->sets[anon].flags |= IR_SET_ANONYMOUS;
	struct ir_names x;
	ck_assert_int_eq(ir_names_index(&x, t, true, 0), 0);
	ck_assert_uint_eq(ir_names_get(&x, "blocked"), named);
	ck_assert_uint_eq(ir_names_get(&x, "anon"), POLICY_HMAP_NONE);
	ir_names_free(&x);
	/* an empty index finds nothing until a name is put */
	ck_assert_int_eq(ir_names_init(&x, t, true, 0), 0);
	ck_assert_uint_eq(ir_names_get(&x, "blocked"), POLICY_HMAP_NONE);
	ck_assert_int_eq(ir_names_put(&x, named), 0);
	ck_assert_uint_eq(ir_names_get(&x, "blocked"), named);
	ir_names_free(&x);
	ir_table_free(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ir_names");
	TCase *tc = tcase_create("ir_names");
	tcase_add_test(tc, test_index_chains_and_grow);
	tcase_add_test(tc, test_named_sets_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
