/* The model's shared semantics (policy/model.c): a prefix's bounds. */
#include <check.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/model.h"
#include "tests/lib/checkmain.h"

START_TEST(test_prefix_fill_v4)
{
	uint8_t lo[4] = { 10, 1, 2, 0 }, hi[4] = { 10, 1, 2, 0 };
	ck_assert(!policy_prefix_fill(lo, hi, 23, 32)); /* 10.1.2.0 is a /23's first */
	ck_assert_mem_eq(lo, ((uint8_t[]){ 10, 1, 2, 0 }), 4);
	ck_assert_mem_eq(hi, ((uint8_t[]){ 10, 1, 3, 255 }), 4);
	/* 10.1.2.1/24: a host bit set, cleared in lo */
	uint8_t host[4] = { 10, 1, 2, 1 };
	ck_assert(policy_prefix_fill(host, NULL, 24, 32));
	ck_assert_mem_eq(host, ((uint8_t[]){ 10, 1, 2, 0 }), 4);
	/* a whole address has no host bits; /0 is every address */
	uint8_t one[4] = { 192, 0, 2, 1 }, all_lo[4] = { 192, 0, 2, 1 }, all_hi[4] = { 0 };
	ck_assert(!policy_prefix_fill(one, NULL, 32, 32));
	ck_assert(policy_prefix_fill(all_lo, all_hi, 0, 32));
	ck_assert_mem_eq(all_lo, ((uint8_t[]){ 0, 0, 0, 0 }), 4);
	ck_assert_mem_eq(all_hi, ((uint8_t[]){ 255, 255, 255, 255 }), 4);
}
END_TEST

START_TEST(test_prefix_fill_v6_and_bounds)
{
	uint8_t hi[16] = { 0xfe, 0x80 };
	ck_assert(!policy_prefix_fill(NULL, hi, 10, 128)); /* fe80::/10 */
	ck_assert_uint_eq(hi[0], 0xfe);
	ck_assert_uint_eq(hi[1], 0xbf);
	for (size_t i = 2; i < 16; i++)
		ck_assert_uint_eq(hi[i], 0xff);

	struct policy_addr a = { .family = AF_INET, .prefix_len = 28, .lo = { 198, 51, 100, 17 } };
	uint8_t l[16], h[16];
	policy_addr_bounds(&a, l, h);
	ck_assert_mem_eq(l, ((uint8_t[]){ 198, 51, 100, 16 }), 4);
	ck_assert_mem_eq(h, ((uint8_t[]){ 198, 51, 100, 31 }), 4);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("prefix");
	tcase_add_test(tc, test_prefix_fill_v4);
	tcase_add_test(tc, test_prefix_fill_v6_and_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
