/* One duration syntax everywhere: bare seconds, s, m, h, d; garbage, signs,
 * fractions, 0 and values above the maximum are errors. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "appliance/duration.h"
#include "tests/lib/checkmain.h"

static int parse(const char *text, uint64_t *out)
{
	*out = 12345;
	return duration_parse(text, 366ull * 86400, out);
}

START_TEST(units)
{
	uint64_t s;

	ck_assert_int_eq(parse("90", &s), 0);
	ck_assert_uint_eq(s, 90);
	ck_assert_int_eq(parse("90s", &s), 0);
	ck_assert_uint_eq(s, 90);
	ck_assert_int_eq(parse("10m", &s), 0);
	ck_assert_uint_eq(s, 600);
	ck_assert_int_eq(parse("1h", &s), 0);
	ck_assert_uint_eq(s, 3600);
	ck_assert_int_eq(parse("2d", &s), 0);
	ck_assert_uint_eq(s, 172800);
	ck_assert_int_eq(parse("007", &s), 0);
	ck_assert_uint_eq(s, 7);
}
END_TEST

START_TEST(garbage)
{
	static const char *bad[] = { "",    "abc", "0",   "0s",  "00m", "-5",  "+5",   " 5", "5 ",
				     "10x", "5ms", "1.5", "1e3", "m",   "5mm", "0x10", "5S" };
	uint64_t s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i], &s) == -EINVAL, "'%s' was accepted", bad[i]);
		ck_assert_uint_eq(s, 12345);
	}
	ck_assert_int_eq(duration_parse(NULL, 10, &s), -EINVAL);
}
END_TEST

START_TEST(range)
{
	uint64_t s;

	ck_assert_int_eq(duration_parse("86400", 86400, &s), 0);
	ck_assert_int_eq(duration_parse("86401", 86400, &s), -ERANGE);
	ck_assert_int_eq(duration_parse("24h", 86400, &s), 0);
	ck_assert_int_eq(duration_parse("25h", 86400, &s), -ERANGE);
	ck_assert_int_eq(duration_parse("99999999999999999999999", 86400, &s), -ERANGE);
	ck_assert_int_eq(duration_parse("18446744073709551615d", UINT64_MAX, &s), -ERANGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("duration");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, units);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, range);
	suite_add_tcase(s, tc);
	return check_main(s);
}
