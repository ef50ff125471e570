/* Shadowed-rule analysis: single and union coverage, partial overlap,
 * limits, tenants, address families, services, zones. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/lib/checkmain.h"

#define ZONES "zone lan { interface \"eth1\" }\nzone dmz { interface \"eth2\" }\n"

/* Loads `text` (ZONES are lines 1-2) and returns the number of shadow
 * errors; `first_line` gets the line of the first shadowed rule and
 * `by_line` that of the rule its message names. */
static size_t shadows(const char *text, uint32_t *first_line, uint32_t *by_line)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), ZONES "%s", text);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("s.hvp", buf, strlen(buf), NULL, &d);
	size_t n = 0;
	for (size_t i = 0; i < d.n; i++) {
		if (d.v[i].severity != POLICY_ERROR)
			continue;
		const char *m = strstr(d.v[i].message, "rule is shadowed by the rule at s.hvp:");
		ck_assert_msg(m != NULL, "unexpected error: %s", d.v[i].message);
		if (!n++) {
			if (first_line)
				*first_line = d.v[i].loc.line;
			if (by_line)
				*by_line = (uint32_t)atoi(
				    m + strlen("rule is shadowed by the rule at s.hvp:"));
		}
	}
	ck_assert_int_eq(p == NULL, n > 0);
	policy_free(p);
	policy_diags_free(&d);
	return n;
}

START_TEST(test_single_cover)
{
	uint32_t line = 0, by = 0;
	ck_assert_uint_eq(
	    shadows("pass from lan to dmz\nblock from lan to dmz service ssh\n", &line, &by), 1);
	ck_assert_uint_eq(line, 4);
	ck_assert_uint_eq(by, 3);
}
END_TEST

START_TEST(test_union_of_port_ranges)
{
	uint32_t line = 0, by = 0;
	ck_assert_uint_eq(shadows("pass from lan to dmz service tcp port 1-100\n"
				  "pass from lan to dmz service tcp port 101-200\n"
				  "block from lan to dmz service tcp port 50-150\n",
				  &line, &by),
			  1);
	ck_assert_uint_eq(line, 5);
	ck_assert_uint_eq(by, 4);
}
END_TEST

START_TEST(test_union_message_and_notes)
{
	const char *text = ZONES "pass from lan to dmz service tcp port 1-100\n"
				 "pass from lan to dmz service tcp port 101-200\n"
				 "block from lan to dmz service tcp port 50-150\n";
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("s.hvp", text, strlen(text), NULL, &d));
	ck_assert_uint_eq(d.n, 3);
	ck_assert_str_eq(d.v[0].message,
			 "rule is shadowed by the rule at s.hvp:4 together with 1 earlier rule");
	ck_assert_int_eq(d.v[1].severity, POLICY_NOTE);
	ck_assert_uint_eq(d.v[1].loc.line, 3);
	ck_assert_uint_eq(d.v[2].loc.line, 4);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_union_of_addresses_and_families)
{
	ck_assert_uint_eq(shadows("pass from 10.0.0.0/9 to dmz\npass from 10.128.0.0/9 to dmz\n"
				  "block from 10.1.2.0/24 to dmz service ssh\n",
				  NULL, NULL),
			  1);
	/* v4 and v6 halves of `any` covered by two family-specific rules */
	ck_assert_uint_eq(shadows("pass from 0.0.0.0/0 to dmz\npass from ::/0 to dmz\n"
				  "block from lan to dmz\n",
				  NULL, NULL),
			  1);
	/* only the v4 half covered */
	ck_assert_uint_eq(
	    shadows("pass from 0.0.0.0/0 to dmz\nblock from lan to dmz\n", NULL, NULL), 0);
	/* a range covered by a prefix and a range */
	ck_assert_uint_eq(shadows("pass to 10.0.0.0/25\npass to 10.0.0.128-10.0.0.200\n"
				  "block to 10.0.0.100-10.0.0.150\n",
				  NULL, NULL),
			  1);
}
END_TEST

START_TEST(test_partial_overlap_is_fine)
{
	ck_assert_uint_eq(shadows("pass from lan to dmz service tcp port 1-100\n"
				  "block from lan to dmz service tcp port 50-150\n",
				  NULL, NULL),
			  0);
	ck_assert_uint_eq(
	    shadows("pass from 10.0.0.0/9 to dmz\nblock from 10.0.0.0/8 to dmz\n", NULL, NULL), 0);
	ck_assert_uint_eq(
	    shadows("pass from lan to dmz service tcp\nblock from lan to dmz\n", NULL, NULL), 0);
	ck_assert_uint_eq(shadows("pass from lan service udp port 53\n"
				  "block from lan service dns\n",
				  NULL, NULL),
			  0);
}
END_TEST

START_TEST(test_zones)
{
	ck_assert_uint_eq(shadows("pass from lan to dmz\nblock from dmz to lan\n", NULL, NULL), 0);
	ck_assert_uint_eq(
	    shadows("pass from lan\npass from dmz\nblock from { lan, dmz } to dmz\n", NULL, NULL),
	    1);
	ck_assert_uint_eq(shadows("pass from any to dmz\nblock from self to dmz\n", NULL, NULL), 1);
	ck_assert_uint_eq(shadows("pass from lan to dmz\nblock from self to dmz\n", NULL, NULL), 0);
	/* a zone plus an address: only packets in the zone with that address */
	ck_assert_uint_eq(shadows("pass from { lan, 10.0.0.0/8 }\nblock from lan\n", NULL, NULL),
			  0);
	ck_assert_uint_eq(shadows("pass from lan\nblock from { lan, 10.0.0.0/8 }\n", NULL, NULL),
			  1);
}
END_TEST

START_TEST(test_services)
{
	ck_assert_uint_eq(
	    shadows("pass service ping\nblock service icmp type echo-request\n", NULL, NULL), 1);
	ck_assert_uint_eq(
	    shadows("pass service icmp type echo-request\nblock service ping\n", NULL, NULL), 0);
	ck_assert_uint_eq(shadows("pass service { tcp, udp }\nblock service dns\n", NULL, NULL), 1);
	/* icmp needs IPv4: a v6-only icmpv6 rule is covered by an icmpv6 rule */
	ck_assert_uint_eq(
	    shadows("pass service icmpv6\nblock to 2001:db8::/32 service ping\n", NULL, NULL), 1);
}
END_TEST

START_TEST(test_limit_covers_nothing)
{
	ck_assert_uint_eq(shadows("pass from lan to dmz limit 10/second\n"
				  "block from lan to dmz\n",
				  NULL, NULL),
			  0);
	/* but a rule with a limit can itself be shadowed */
	ck_assert_uint_eq(shadows("pass from lan to dmz\n"
				  "pass from lan to dmz service ssh limit 10/second\n",
				  NULL, NULL),
			  1);
}
END_TEST

START_TEST(test_tenants_never_interact)
{
	const char *t = "tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n"
			"  pass from 192.168.0.0/16 to lan }\n"
			"tenant b { segment web { interface \"tb\" address 10.0.1.0/24 }\n"
			"  pass from 192.168.1.0/24 to lan }\n"
			"block from 192.168.1.0/24 to lan\n";
	ck_assert_uint_eq(shadows(t, NULL, NULL), 0);
	ck_assert_uint_eq(
	    shadows("tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n"
		    "  pass from web to lan\n  block from web to lan service ssh }\n",
		    NULL, NULL),
	    1);
	/* `any` never joins two tenants (lowering): a rule naming both zones
	 * is not shadowed by it, only by another rule naming both */
	uint32_t line = 0, by = 0;
	ck_assert_uint_eq(
	    shadows("tenant a { segment web { interface \"ta\" address 10.0.1.0/24 } }\n"
		    "tenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }\n"
		    "block from any to any\npass from a.web to b.web\n"
		    "pass from a.web to b.web service ssh\n",
		    &line, &by),
	    1);
	ck_assert_uint_eq(line, 7);
	ck_assert_uint_eq(by, 6);
}
END_TEST

START_TEST(test_duplicate_rule)
{
	uint32_t line = 0, by = 0;
	ck_assert_uint_eq(shadows("pass from lan to dmz service http\n"
				  "pass to 10.0.0.0/8\n"
				  "pass from lan to dmz service http\n"
				  "pass from lan to dmz service http\n",
				  &line, &by),
			  2);
	ck_assert_uint_eq(line, 5);
	ck_assert_uint_eq(by, 3);
}
END_TEST

/* The first two rules make every projection of the last rule covered (all
 * of 10/8, all tcp ports), so the cheap test cannot rule coverage out; each
 * of the next rules then punches a hole in two dimensions at once (one
 * address and one port), leaving one more piece of uncovered space per rule:
 * past POLICY_SHADOW_MAX_BOXES pieces the analysis stops with a note instead
 * of running on. */
START_TEST(test_cut_short)
{
	const int holes = 600;
	size_t cap = (size_t)holes * 64 + 256, n = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	n += (size_t)snprintf(text + n, cap - n,
			      "pass to 10.0.0.0/8 service tcp port 0\n"
			      "pass to 10.0.0.1 service tcp\n");
	for (int i = 0; i < holes; i++)
		n += (size_t)snprintf(text + n, cap - n, "pass to 10.%d.%d.2 service tcp port %d\n",
				      i / 256, i % 256, 1000 + i);
	n += (size_t)snprintf(text + n, cap - n, "block to 10.0.0.0/8 service tcp\n");
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("s.hvp", text, n, NULL, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_int_eq(d.v[0].severity, POLICY_NOTE);
	ck_assert_uint_eq(d.v[0].loc.line, (uint32_t)holes + 3);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "was cut short"));
	policy_free(p);
	policy_diags_free(&d);
	free(text);
}
END_TEST

/* The benchmark's shape (address lists blocked towards one zone, then many
 * pass rules from a zone to single hosts): every earlier list rule overlaps
 * every later rule, but cannot cover it (it names one destination zone, the
 * later rule any). The projection test must settle this without fragmenting
 * 1,000-interval address sets, which used to take minutes. */
START_TEST(test_projection_prunes)
{
	const int lists = 20, per_list = 1000, rules = 2000;
	size_t cap = (size_t)lists * per_list * 16 + (size_t)rules * 64 + 256, n = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	for (int k = 0; k < lists; k++) {
		n += (size_t)snprintf(text + n, cap - n, "define l%d = {", k);
		for (int i = 0; i < per_list; i++) {
			int a = 2 * (k * per_list + i);
			n += (size_t)snprintf(text + n, cap - n, " 10.%d.%d.%d", a >> 16,
					      (a >> 8) & 255, a & 255);
		}
		n += (size_t)snprintf(text + n, cap - n, " }\nblock from $l%d to dmz\n", k);
	}
	for (int i = 0; i < rules; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "pass from lan to 172.16.%d.%d service tcp port %d\n",
				      i / 250, i % 250 + 1, 1024 + i);
	char *full = malloc(n + 128);
	ck_assert_ptr_nonnull(full);
	int head = snprintf(full, 128, ZONES);
	memcpy(full + head, text, n);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("s.hvp", full, (size_t)head + n, NULL, &d);
	if (!p)
		policy_diags_print(&d, stderr);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(d.n, 0);
	policy_free(p);
	policy_diags_free(&d);
	free(full);
	free(text);
}
END_TEST

/* The rule is most selective in its service (one port), where the rule
 * `pass from any to dmz` matches every service (its signature there is all
 * ones): the zones that rule covers still count, with those of the rule
 * for the port, before the analysis looks at its candidates one by one.
 * (Two rules for other ports make the destination zones less selective.) */
START_TEST(test_cover_with_a_rule_of_every_service)
{
	uint32_t line = 0, by = 0;
	ck_assert_uint_eq(shadows("pass from any to lan service tcp port 9000\n"
				  "pass from any to dmz service tcp port 9001\n"
				  "pass from any to dmz\n"
				  "pass from any to lan service tcp port 80-81\n"
				  "block from any to { lan, dmz } service tcp port 80\n",
				  &line, &by),
			  1);
	ck_assert_uint_eq(line, 7);
	ck_assert_uint_eq(by, 6);
	/* and without the rule for the port, dmz alone is not enough */
	ck_assert_uint_eq(shadows("pass from any to lan service tcp port 9000\n"
				  "pass from any to dmz service tcp port 9001\n"
				  "pass from any to dmz\n"
				  "block from any to { lan, dmz } service tcp port 80\n",
				  NULL, NULL),
			  0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shadow");
	TCase *tc = tcase_create("coverage");
	tcase_add_test(tc, test_single_cover);
	tcase_add_test(tc, test_union_of_port_ranges);
	tcase_add_test(tc, test_union_message_and_notes);
	tcase_add_test(tc, test_union_of_addresses_and_families);
	tcase_add_test(tc, test_partial_overlap_is_fine);
	tcase_add_test(tc, test_zones);
	tcase_add_test(tc, test_services);
	tcase_add_test(tc, test_limit_covers_nothing);
	tcase_add_test(tc, test_tenants_never_interact);
	tcase_add_test(tc, test_duplicate_rule);
	tcase_add_test(tc, test_cut_short);
	tcase_add_test(tc, test_projection_prunes);
	tcase_add_test(tc, test_cover_with_a_rule_of_every_service);
	suite_add_tcase(s, tc);
	return check_main(s);
}
