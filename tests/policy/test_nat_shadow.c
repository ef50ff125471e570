/* policy_check_nat_shadow(): NAT statements an earlier one makes useless, through
 * the real front end (the checker runs it). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/lib/checkmain.h"

#define HEAD                                                                                       \
	"zone uplink { interface \"up0\" }\n"                                                      \
	"tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"                       \
	"  pass from uplink to lan service tcp port 80\n"
#define TAIL "}\ntenant b { segment lan { interface \"tb0\" address 10.0.1.0/24 }\n"

static struct policy_diags diags;

/* Number of shadow warnings, and the line of the first. */
static size_t shadows(const char *text, uint32_t *line)
{
	policy_diags_init(&diags);
	struct policy *p = policy_load_text("t.hvp", text, strlen(text), NULL, &diags);
	ck_assert_ptr_nonnull(p);
	size_t n = 0;
	for (size_t i = 0; i < diags.n; i++)
		if (diags.v[i].severity == POLICY_WARNING &&
		    strstr(diags.v[i].message, "never applies")) {
			if (!n++ && line)
				*line = diags.v[i].loc.line;
		}
	policy_free(p);
	policy_diags_free(&diags);
	return n;
}

START_TEST(test_masquerade_before_snat)
{
	uint32_t line = 0;
	ck_assert_uint_eq(
	    shadows(HEAD "  nat masquerade out via uplink\n"
			 "  nat snat from 10.0.1.0/25 out via uplink to 198.51.100.7\n" TAIL "}\n",
		    &line),
	    1);
	ck_assert_uint_eq(line, 5);
	/* the other order is the useful one */
	ck_assert_uint_eq(shadows(HEAD
				  "  nat snat from 10.0.1.0/25 out via uplink to 198.51.100.7\n"
				  "  nat masquerade out via uplink\n" TAIL "}\n",
				  NULL),
			  0);
}
END_TEST

START_TEST(test_partial_sources_not_shadowed)
{
	ck_assert_uint_eq(
	    shadows(HEAD "  nat snat from 10.0.1.0/25 out via uplink to 198.51.100.7\n"
			 "  nat snat from 10.0.1.0/24 out via uplink to 198.51.100.8\n" TAIL "}\n",
		    NULL),
	    0);
}
END_TEST

START_TEST(test_other_tenant_not_shadowed)
{
	/* each tenant has its own nat chain */
	ck_assert_uint_eq(shadows(HEAD "  nat masquerade out via uplink\n" TAIL
				       "  nat masquerade out via uplink }\n",
				  NULL),
			  0);
}
END_TEST

START_TEST(test_forwards)
{
	uint32_t line = 0;
	/* one prerouting chain for all tenants: b's forward on a's port is dead */
	ck_assert_uint_eq(shadows(HEAD "  nat forward uplink tcp port 8000-8009 to 10.0.1.10\n" TAIL
				       "  pass from uplink to lan service tcp port 8005\n"
				       "  nat forward uplink tcp port 8005 to 10.0.1.11 }\n",
				  &line),
			  1);
	ck_assert_uint_eq(line, 8);
	/* another public address, another protocol: both apply */
	ck_assert_uint_eq(
	    shadows(HEAD "  nat forward uplink tcp port 80 on 203.0.113.1 to 10.0.1.10\n"
			 "  nat forward uplink tcp port 80 on 203.0.113.2 to 10.0.1.11\n"
			 "  nat forward uplink udp port 80 on 203.0.113.1 to 10.0.1.11\n" TAIL
			 "}\n",
		    NULL),
	    0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nat_shadow");
	TCase *tc = tcase_create("shadow");
	tcase_add_test(tc, test_masquerade_before_snat);
	tcase_add_test(tc, test_partial_sources_not_shadowed);
	tcase_add_test(tc, test_other_tenant_not_shadowed);
	tcase_add_test(tc, test_forwards);
	suite_add_tcase(s, tc);
	return check_main(s);
}
