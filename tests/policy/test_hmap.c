/* policy_hmap (policy/hmap.h): entries found by hash and the caller's
 * equality, in the order they were put, also across growth and with every
 * entry on one hash. */
#include <check.h>
#include <stdlib.h>

#include "policy/hmap.h"
#include "tests/lib/checkmain.h"

/* Candidates are indices into `vals`; a probe looks for `want`, skipping
 * the indices marked taken. */
struct probe {
	const int *vals;
	int want;
	const bool *taken;
};

static bool is_want(void *ctx, size_t idx)
{
	const struct probe *p = ctx;
	return p->vals[idx] == p->want && !(p->taken && p->taken[idx]);
}

START_TEST(test_find_and_grow)
{
	enum { N = 1000 };
	static int vals[N];
	struct policy_hmap m;
	ck_assert_int_eq(policy_hmap_init(&m, 4), 0);
	size_t cap0 = m.cap;
	for (int i = 0; i < N; i++) {
		vals[i] = i * 7;
		ck_assert_int_eq(policy_hmap_put(&m, (uint64_t)vals[i] % 97, (size_t)i), 0);
	}
	ck_assert_uint_gt(m.cap, cap0);
	ck_assert_uint_eq(m.n, N);
	ck_assert_uint_le(m.n * 2, m.cap);
	for (int i = 0; i < N; i++) {
		struct probe p = { .vals = vals, .want = i * 7 };
		ck_assert_uint_eq(policy_hmap_find(&m, (uint64_t)p.want % 97, is_want, &p),
				  (size_t)i);
	}
	struct probe miss = { .vals = vals, .want = 5 };
	ck_assert_uint_eq(policy_hmap_find(&m, 5, is_want, &miss), POLICY_HMAP_NONE);
	policy_hmap_free(&m);
	ck_assert_uint_eq(m.cap, 0);
}
END_TEST

/* Equal entries on one hash come back first-put first, before and after
 * the map grows; with the first taken, the next. */
START_TEST(test_order_of_equal_entries)
{
	enum { N = 300 };
	static int vals[N];
	static bool taken[N];
	struct policy_hmap m;
	ck_assert_int_eq(policy_hmap_init(&m, 0), 0);
	/* the hash is the same for all: one long run that wraps the table */
	uint64_t h = (uint64_t)-1;
	for (int i = 0; i < N; i++) {
		vals[i] = i % 3;
		ck_assert_int_eq(policy_hmap_put(&m, h, (size_t)i), 0);
	}
	for (int want = 0; want < 3; want++) {
		struct probe p = { .vals = vals, .want = want, .taken = taken };
		for (int k = 0; k < N / 3; k++) {
			size_t got = policy_hmap_find(&m, h, is_want, &p);
			ck_assert_uint_eq(got, (size_t)(want + 3 * k));
			taken[got] = true;
		}
		ck_assert_uint_eq(policy_hmap_find(&m, h, is_want, &p), POLICY_HMAP_NONE);
	}
	policy_hmap_free(&m);
}
END_TEST

/* A map that was never set up, or was freed, finds nothing and can be put
 * into. */
START_TEST(test_zeroed_map)
{
	struct policy_hmap m = { 0 };
	int vals[1] = { 42 };
	struct probe p = { .vals = vals, .want = 42 };
	ck_assert_uint_eq(policy_hmap_find(&m, 1, is_want, &p), POLICY_HMAP_NONE);
	ck_assert_int_eq(policy_hmap_put(&m, 1, 0), 0);
	ck_assert_uint_eq(policy_hmap_find(&m, 1, is_want, &p), 0);
	policy_hmap_free(&m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("hmap");
	tcase_add_test(tc, test_find_and_grow);
	tcase_add_test(tc, test_order_of_equal_entries);
	tcase_add_test(tc, test_zeroed_map);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
