/* metrics_label and metrics_counters (appliance/metrics.h): the text
 * format lines hvgated's /metrics is made of. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "appliance/metrics.h"
#include "tests/lib/checkmain.h"

START_TEST(test_counter_family)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	const struct metrics_count resets[] = {
		{ "sent", 3 },
		{ "failed", 18446744073709551615ull },
	};
	metrics_counters(out, "hvgate_fastpath_resets_total",
			 "TCP resets sent to the ends of blocked flows.", "result", resets, 2);
	metrics_counters(out, "hvgate_empty_total", "None.", "cause", NULL, 0);
	fclose(out);
	ck_assert_str_eq(
	    text,
	    "# HELP hvgate_fastpath_resets_total TCP resets sent to the ends of blocked flows.\n"
	    "# TYPE hvgate_fastpath_resets_total counter\n"
	    "hvgate_fastpath_resets_total{result=\"sent\"} 3\n"
	    "hvgate_fastpath_resets_total{result=\"failed\"} 18446744073709551615\n"
	    "# HELP hvgate_empty_total None.\n"
	    "# TYPE hvgate_empty_total counter\n");
	free(text);
}
END_TEST

START_TEST(test_label_escaping)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	metrics_label(out, "a\"b\\c\nd");
	fclose(out);
	ck_assert_str_eq(text, "\"a\\\"b\\\\c\\nd\"");
	free(text);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	tcase_add_test(tc, test_counter_family);
	tcase_add_test(tc, test_label_escaping);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
