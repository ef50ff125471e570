/* The checker's diagnostics: a table of malformed policies, each with the
 * exact first diagnostic (file, line, column, message); policies with
 * several errors (all reported); includes (cycles, globs) on real files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nat/nat.h"
#include "policy/pipeline.h"
#include "policy/policy.h"
#include "tests/lib/testdir.h"
#include "tests/lib/checkmain.h"

#define TEST_FILE "t.hvp"

struct bad_case {
	const char *text;
	uint32_t line, col;
	const char *message;
};

static const struct bad_case bad_cases[] = {
	{ "pass label \"web-in\"\nblock label \"web-in\"", 2, 13,
	  "label \"web-in\" is already used by the rule at t.hvp:1" },
	{ "pass label \"web in\"", 1, 12,
	  "label \"web in\": 1 to 48 letters, digits, '-', '_' or '.'" },
	{ "pass label web", 1, 12, "expected a label in quotes (label \"web-in\"), found 'web'" },
	{ "zone lan { interface \"eth1\" }\nzone lan { interface \"eth2\" }", 2, 6,
	  "zone 'lan' is already defined" },
	{ "zone lan { interface \"eth1\" }\npass from lan to nowhere", 2, 18,
	  "unknown zone 'nowhere'" },
	{ "zone lan { interface \"eth1\" }\nservice web = tcp port 80\npass from lan to web", 3, 18,
	  "'web' is a service, not a zone" },
	{ "zone lan { interface \"eth1\" }\npass from lan service lan", 2, 23,
	  "'lan' is a zone, not a service" },
	{ "define nets = 10.0.0.0/8\npass from nets", 2, 11, "'nets' is a define; write '$nets'" },
	{ "pass from $undefined to any", 1, 11, "'$undefined' is not defined" },
	{ "define a = $b\ndefine b = $a\npass from $a", 2, 12, "define 'a' refers to itself" },
	{ "pass from 10.0.0.1/8", 1, 11, "host bits set in 10.0.0.1/8; did you mean 10.0.0.0/8?" },
	{ "pass from 2001:db8::1/32", 1, 11,
	  "host bits set in 2001:db8::1/32; did you mean 2001:db8::/32?" },
	{ "pass from 10.0.0.0/33", 1, 11, "prefix length /33 out of range for IPv4 (0-32)" },
	{ "pass from 2001:db8::/129", 1, 11, "prefix length /129 out of range for IPv6 (0-128)" },
	{ "pass from 10.0.0.300", 1, 11, "invalid address '10.0.0.300'" },
	{ "pass from 10.0.0.9-10.0.0.1", 1, 11,
	  "address range '10.0.0.9-10.0.0.1' is upside down" },
	{ "pass from 10.0.0.1-2001:db8::1", 1, 11,
	  "address range '10.0.0.1-2001:db8::1' mixes IPv4 and IPv6" },
	{ "pass service tcp port 200-100", 1, 23, "port range 200-100 is upside down" },
	{ "pass service tcp port 65536", 1, 23, "port 65536 out of range (0-65535)" },
	{ "pass service udp port 99999999999", 1, 23, "port 99999999999 out of range (0-65535)" },
	{ "pass service icmp port 8", 1, 19, "icmp has no ports; use 'type'" },
	{ "pass service tcp type echo-request", 1, 18, "'type' applies to icmp and icmpv6 only" },
	{ "pass service icmp type bogus", 1, 24, "unknown icmp type 'bogus'" },
	{ "pass service icmpv6 type echo", 1, 26, "unknown icmpv6 type 'echo'" },
	{ "pass service icmp type 256", 1, 24, "ICMP type 256 out of range (0-255)" },
	{ "pass from 10.0.0.0/8 to 2001:db8::/32", 1, 1,
	  "rule can never match: 'from' has only IPv4 addresses and 'to' only IPv6" },
	{ "pass from 2001:db8::/32 to 10.0.0.0/8", 1, 1,
	  "rule can never match: 'from' has only IPv6 addresses and 'to' only IPv4" },
	{ "pass to 2001:db8::/32 service icmp", 1, 31,
	  "icmp can never match: the rule's addresses are all IPv6" },
	{ "pass to 10.0.0.0/8 service icmpv6 type echo-request", 1, 28,
	  "icmpv6 can never match: the rule's addresses are all IPv4" },
	{ "pass limit 0/minute", 1, 12, "limit of 0 never matches; the rate must be at least 1" },
	{ "pass limit 10/fortnight", 1, 12,
	  "unknown rate unit 'fortnight' (second, minute or hour)" },
	{ "pass limit 10/second burst 0", 1, 28, "burst of 0 packets; it must be at least 1" },
	{ "pass frobnicate", 1, 6, "unknown option 'frobnicate'" },
	{ "pass log log", 1, 10, "duplicate option 'log'" },
	{ "pass limit 1/second limit 2/second", 1, 21, "duplicate option 'limit'" },
	{ "pass no state no state", 1, 23, "duplicate option 'no state'" },
	{ "pass from any from any", 1, 15, "duplicate option 'from'" },
	{ "pass from self to self", 1, 19,
	  "'self' on both sides: the appliance's traffic to itself is not filtered" },
	{ "default from nowhere block", 1, 14, "unknown zone 'nowhere'" },
	{ "default to nowhere pass", 1, 12, "unknown zone 'nowhere'" },
	{ "default block\ndefault pass", 2, 1, "duplicate global default" },
	{ "pass to any inspect { block content /(unclosed/ }", 1, 47,
	  "invalid regular expression: missing closing parenthesis" },
	{ "pass to any inspect { block content /abc/q }", 1, 42,
	  "unknown regular expression flag 'q' (i, m, s, x)" },
	{ "pass to any inspect { reject content /abc/ }", 1, 23,
	  "expected 'block' or 'pass' (inspection cannot reject), found 'reject'" },
	{ "pass service tcp port nosuchport", 1, 23, "unknown port name 'nosuchport'" },
	{ "pass service nosuchservice", 1, 14, "unknown service 'nosuchservice'" },
	{ "tenant t { tenant u { } }", 1, 12, "a tenant cannot be declared inside a tenant" },
	{ "segment s { interface \"x\" address 10.0.0.0/8 }", 1, 1,
	  "'segment' is only allowed inside a tenant" },
	{ "zone z { interface \"this-name-is-far-too-long\" }", 1, 20,
	  "invalid interface name \"this-name-is-far-too-long\": 1 to 15 characters, no '/' or blanks, '*' only at the end" },
	{ "zone z { interface \"a*b\" }", 1, 20,
	  "invalid interface name \"a*b\": 1 to 15 characters, no '/' or blanks, '*' only at the end" },
	{ "zone z { }", 1, 6, "zone 'z' has no 'interface'" },
	{ "tenant t { segment s { interface \"tap0\" } }", 1, 20, "segment 's' has no 'address'" },
	{ "zone any { interface \"x\" }", 1, 6, "'any' is a reserved word and cannot be a name" },
	{ "zone 9lives { interface \"x\" }", 1, 6,
	  "invalid name '9lives': a name starts with a letter and holds letters, digits, '_' and '-'" },
	{ "pass from \"lan\"", 1, 11,
	  "expected an address, a zone, '$name', 'any' or 'self', found string" },
	{ "pass from { any, 10.0.0.0/8 }", 1, 13,
	  "'any' cannot be combined with other endpoints in a list" },
	{ "include \"x.hvp\"", 1, 9,
	  "include is not available: the policy was read from memory without a base directory" },
	{ "zone up { interface \"eth0\" }\nnat forward up tcp port 80 to 10.0.0.0/24", 2, 31,
	  "a port forward goes to one address" },
	{ "zone up { interface \"eth0\" }\nnat netmap 10.0.0.0/24 to 192.0.2.0/25 via up", 2, 27,
	  "netmap prefixes differ in length or family" },
	{ "nat masquerade out via nowhere", 1, 24, "unknown zone 'nowhere'" },
	{ "vpn wg0 { listen-port 51820 }", 1, 5, "vpn 'wg0' has no 'private-key-file'" },
	{ "vpn wg0 { private-key-file \"k\" peer p { endpoint \"1.2.3.4:5\" } }", 1, 37,
	  "peer 'p' has no 'public-key'" },
	{ "service s = { s2 }\nservice s2 = { s }\npass service s", 2, 16,
	  "service 's' refers to itself" },
	{ "tenant a { segment web { interface \"t1\" address 10.0.0.0/24 } }\npass to a", 2, 9,
	  "'a' is a tenant; name one of its segments ('a.SEGMENT')" },
	{ "pass from 10.0.0.0/8 to any\nblock from 10.1.0.0/16 to any", 2, 1,
	  "rule is shadowed by the rule at t.hvp:1" },
	{ "zone lan { interface \"eth1\" }\npass from lan service tcp port 1-100\npass from lan service tcp port 101-200\nblock from lan service tcp port 50-150",
	  4, 1, "rule is shadowed by the rule at t.hvp:3 together with 1 earlier rule" },
	{ "pass @", 1, 6, "unexpected character '@'" },
	{ "pass to any \"str\"", 1, 13,
	  "expected 'from', 'to', 'service' or an option, found string" },
	{ "pass from 10.0.0.0/8 to any log \"unterminated", 1, 33, "unterminated string" },
	{ "zone z { interface \"x\" } }", 1, 26, "unexpected '}'" },
	{ "frobnicate from lan", 1, 1,
	  "expected a statement (pass, block, reject, define, service, zone, default, tenant, nat, vpn, include), found 'frobnicate'" },
	{ "zone lan interface \"x\"", 1, 10, "expected '{', found 'interface'" },
	{ "pass from lan to\nblock from any", 1, 17,
	  "expected an address, a zone, '$name', 'any' or 'self' at the end of the line" },
	{ "block to any inspect { block content /x/ }", 1, 14,
	  "'inspect' applies to pass rules only: a blocked flow has no content to inspect" },
	{ "pass log \""
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "0123456789012345678901234567890123456789012345678901234567890123\"",
	  1, 10, "log prefix is longer than 127 bytes" },
	{ "tenant t { vpn wg0 { private-key-file \"k\" } }\nvpn wg0 { private-key-file \"k\" }", 2,
	  5, "vpn interface 'wg0' is already used" },
	/* tenant isolation */
	{ "tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n  pass from web to any }\ntenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }",
	  2, 3,
	  "rule of tenant 'a' can reach zone 'b.web' of tenant 'b' through 'any' in 'to'; name the zones it is meant for, or name 'b.web' explicitly" },
	{ "tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n  pass from web to 10.0.0.0/8 }\ntenant b { segment db { interface \"tb\" address 10.0.2.0/24 } }",
	  2, 3,
	  "rule of tenant 'a' can reach zone 'b.db' of tenant 'b' through its addresses in 'to'; name the zones it is meant for, or name 'b.db' explicitly" },
};

#define N_BAD_CASES (sizeof(bad_cases) / sizeof(bad_cases[0]))

START_TEST(test_bad_case)
{
	const struct bad_case *c = &bad_cases[_i];
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text(TEST_FILE, c->text, strlen(c->text), NULL, &d);
	ck_assert_msg(p == NULL, "case %d accepted: %s", _i, c->text);
	ck_assert_uint_ge(d.n_errors, 1);
	ck_assert_uint_ge(d.n, 1);
	ck_assert_int_eq(d.v[0].severity, POLICY_ERROR);
	ck_assert_str_eq(d.v[0].loc.file, TEST_FILE);
	ck_assert_msg(d.v[0].loc.line == c->line && d.v[0].loc.col == c->col,
		      "case %d (%s): got %u:%u %s, want %u:%u", _i, c->text, d.v[0].loc.line,
		      d.v[0].loc.col, d.v[0].message, c->line, c->col);
	ck_assert_str_eq(d.v[0].message, c->message);
	policy_diags_free(&d);
}
END_TEST

/* Policies that must pass: global rules, explicit cross-tenant rules,
 * blocks, addresses that cannot meet another tenant's segments, non-tenant
 * zones. */
static const char *const isolated_ok[] = {
	/* global rules: lowering keeps `any` and bare addresses between tenants */
	"tenant a { segment web { interface \"ta\" address 10.0.1.0/24 } }\ntenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }\npass from any to any",
	"tenant a { segment web { interface \"ta\" address 10.0.1.0/24 } }\ntenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }\npass from a.web to b.web service ssh",
	"tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n  pass from web to b.web\n  block from any to any }\ntenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }",
	"tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n  pass from web to 192.168.0.0/16 }\ntenant b { segment db { interface \"tb\" address 10.0.2.0/24 } }",
	"zone up { interface \"eth0\" }\ntenant a { segment web { interface \"ta\" address 10.0.1.0/24 } }\ntenant b { segment web { interface \"tb\" address 10.0.1.0/24 } }\npass from up to any\npass from any to up",
};

START_TEST(test_isolation_ok)
{
	const char *text = isolated_ok[_i];
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text(TEST_FILE, text, strlen(text), NULL, &d);
	if (!p)
		policy_diags_print(&d, stderr);
	ck_assert_msg(p != NULL, "rejected: %s", text);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

static struct policy *load(const char *text, struct policy_diags *d)
{
	policy_diags_init(d);
	return policy_load_text(TEST_FILE, text, strlen(text), NULL, d);
}

static size_t count_errors_on_line(const struct policy_diags *d, uint32_t line)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].severity == POLICY_ERROR && d->v[i].loc.line == line)
			n++;
	return n;
}

START_TEST(test_all_errors_reported)
{
	struct policy_diags d;
	struct policy *p = load("zone lan { interface \"eth1\" }\n"
				"pass from 10.0.0.1/8 to lan\n"           /* 2: host bits */
				"pass from lan to nowhere\n"              /* 3: unknown zone */
				"pass frobnicate\n"                       /* 4: unknown option */
				"block from lan service tcp port 70000\n" /* 5: port range */
				"pass from lan to lan service ssh\n"      /* fine */
				"reject from $nope\n"                     /* 7: undefined */
				"pass limit 0/second\n",                  /* 8: limit 0 */
				&d);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(d.n_errors, 6);
	const uint32_t lines[] = { 2, 3, 4, 5, 7, 8 };
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(count_errors_on_line(&d, lines[i]) == 1, "line %u", lines[i]);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_recovery_inside_tenant)
{
	struct policy_diags d;
	struct policy *p = load("tenant t {\n"
				"  segment s { interface \"tap0\" address 10.0.0.0/24 }\n"
				"  pass from\n"
				"  pass from s to 10.0.0.1/8\n"
				"}\n"
				"pass from bad\n",
				&d);
	ck_assert_ptr_null(p);
	/* the incomplete `pass from` is reported at the end of its line */
	ck_assert_uint_eq(d.n_errors, 3);
	ck_assert_uint_eq(count_errors_on_line(&d, 3), 1);
	ck_assert_uint_eq(count_errors_on_line(&d, 4), 1);
	ck_assert_uint_eq(count_errors_on_line(&d, 6), 1);
	ck_assert_str_eq(d.v[d.n - 1].message, "unknown zone 'bad'");
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_no_follow_up_errors)
{
	/* a broken zone or rule is reported once, by the parser */
	struct policy_diags d;
	struct policy *p = load("zone lan interface \"x\"\npass from lan to 10.0.0.1/8\n", &d);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(d.n_errors, 2);
	ck_assert_str_eq(d.v[0].message, "expected '{', found 'interface'");
	ck_assert_uint_eq(d.v[1].loc.line, 2);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_duplicate_has_note)
{
	struct policy_diags d;
	struct policy *p = load("service web = tcp port 80\n\nservice web = tcp port 443\n", &d);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(d.n, 2);
	ck_assert_int_eq(d.v[1].severity, POLICY_NOTE);
	ck_assert_uint_eq(d.v[1].loc.line, 1);
	ck_assert_uint_eq(d.v[1].loc.col, 9);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_print_format)
{
	struct policy_diags d;
	struct policy *p =
	    load("zone lan { interface \"eth1\" }\n\tpass from lan to nowhere\n", &d);
	ck_assert_ptr_null(p);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	policy_diags_print(&d, f);
	fclose(f);
	ck_assert_str_eq(buf, "t.hvp:2:19: error: unknown zone 'nowhere'\n"
			      "  \tpass from lan to nowhere\n"
			      "  \t                 ^~~~~~~\n");
	free(buf);
	policy_diags_free(&d);
}
END_TEST

/* --- the whole pipeline: what check refuses that the kernel would take
 * wrongly, or that compile refused while check passed ----------------- */

#define KEY_OK "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

/* Each policy's first error, from policy_load_text() and, when that
 * passes, the rest of the pipeline (policy_compile_policy), exactly as
 * `hvgate check` runs it. */
static const struct bad_case pipeline_cases[] = {
	/* a tenant's port forward into another tenant's server: a leak */
	{ "zone up { interface \"up0\" }\ntenant a { segment lan { interface \"ta\" address 10.0.1.0/24 } }\ntenant c {\n  segment lan { interface \"tc\" address 10.0.3.0/24 }\n  nat forward up tcp port 9090 to 10.0.1.10 port 80 }",
	  5, 35,
	  "port forward of tenant 'c' goes to 10.0.1.10 in segment 'a.lan' of tenant 'a': a tenant may only translate into its own segments" },
	{ "zone up { interface \"up0\" }\ntenant c {\n  segment lan { interface \"tc\" address 10.0.3.0/24 }\n  nat forward up tcp port 9090 to 172.16.5.5 port 80 }",
	  4, 35, "port forward target 172.16.5.5 is outside every segment of tenant 'c'" },
	{ "zone up { interface \"up0\" }\ntenant a { segment lan { interface \"ta\" address 10.0.1.0/24 } }\ntenant c {\n  segment lan { interface \"tc\" address 10.0.3.0/24 }\n  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via up }",
	  5, 14,
	  "netmap of tenant 'c' goes to 10.0.1.0/24 in segment 'a.lan' of tenant 'a': a tenant may only translate into its own segments" },
	{ "tenant a {\n  segment x { interface \"ta0\" address 10.8.0.0/24 }\n  segment y { interface \"ta1\" address 10.8.0.128/25 } }",
	  3, 39,
	  "segment 'a.y' (10.8.0.128/25) overlaps segment 'a.x' (10.8.0.0/24) of the same tenant: the segments of a tenant must not share addresses" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  nat forward up tcp port 80 to 10.0.1.10 port 0 }",
	  4, 48, "translation to port 0; leave 'port' out to keep the port" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  nat forward up tcp port 0 to 10.0.1.10 }",
	  4, 27, "port 0 cannot be forwarded" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  nat snat out via up to 2001:db8:77::7 }",
	  4, 26,
	  "snat to IPv6 address 2001:db8:77::7, but tenant 'a' has no IPv6 segment address: the families must match" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address { 10.0.1.0/24, fd00:8::/64 } }\n  nat forward up tcp port 80 on 203.0.113.1 to fd00:8::5 }",
	  4, 48,
	  "port forward on IPv4 address 203.0.113.1 to IPv6 address fd00:8::5: the families must match" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  nat forward up tcp port 80 on 2001:db8::1 to 10.0.1.5 }",
	  4, 48,
	  "port forward on IPv6 address 2001:db8::1 to IPv4 address 10.0.1.5: the families must match" },
	{ "zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\ndefault from lan to dmz pass\ndefault from lan to dmz block",
	  4, 1,
	  "conflicting default from lan to dmz: block here, pass before (the first would win)" },
	{ "zone lan { interface \"lan0\" }\ndefault from lan block\ndefault from lan block log", 3,
	  1, "duplicate default from lan" },
	/* the kernel's token bucket: unit in ns / rate * burst must fit 64 bits */
	{ "zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\npass from lan to dmz service tcp port 80 limit 1/hour burst 5124096",
	  3, 1,
	  "limit 1/hour with burst 5124096 overflows the kernel's token bucket (at this rate the burst can be at most 5124095)" },
	/* refused by lowering: check runs it too */
	{ "zone a { interface \"tap-*\" }\nzone b { interface \"tap-7\" }", 2, 6,
	  "interface \"tap-7\" of zone b overlaps \"tap-*\" of zone a: an interface can be in one zone only" },
	{ "zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  nat forward up tcp port 8000-8009 to 10.0.1.10 port 80-81 }",
	  4, 3, "a forwarded port range goes to the same ports or to one port" },
	{ "vpn wg0 { private-key-file \"k\"\n  peer b1 { public-key \"notakey\" allowed-ips 10.99.0.2/32 } }",
	  2, 8, "peer 'b1': public-key is not the base64 of a 32-byte key" },
	/* 44 characters, but the last one carries bits beyond the 32 bytes */
	{ "vpn wg0 { private-key-file \"k\"\n  peer b1 { public-key \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=\" allowed-ips 10.99.0.2/32 } }",
	  2, 8, "peer 'b1': public-key is not the base64 of a 32-byte key" },
	{ "vpn wg0 { private-key-file \"k\"\n  peer b1 { public-key \"" KEY_OK
	  "\" endpoint \"vpn.example.org:51820\" allowed-ips 10.99.0.2/32 } }",
	  2, 8,
	  "peer 'b1': endpoint 'vpn.example.org:51820' is not ADDRESS:PORT or [IPv6]:PORT (host names are not resolved)" },
	{ "vpn wg0 { private-key-file \"k\"\n  peer b1 { public-key \"" KEY_OK
	  "\" endpoint \"192.0.2.1:0\" allowed-ips 10.99.0.2/32 } }",
	  2, 8,
	  "peer 'b1': endpoint '192.0.2.1:0' is not ADDRESS:PORT or [IPv6]:PORT (host names are not resolved)" },
};

#define N_PIPELINE_CASES (sizeof(pipeline_cases) / sizeof(pipeline_cases[0]))

static const struct policy_diag *first_error(const struct policy_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].severity == POLICY_ERROR)
			return &d->v[i];
	return NULL;
}

/* The pipeline of `hvgate check`; returns 0 if the policy passes. */
static int check_text(const char *text, struct policy_diags *d)
{
	policy_diags_init(d);
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	struct policy_compiled c;
	struct policy *p = policy_load_text(TEST_FILE, text, strlen(text), NULL, d);
	int rc = policy_compile_policy(p, &o, &c, d);
	policy_compiled_free(&c);
	return rc;
}

START_TEST(test_pipeline_case)
{
	const struct bad_case *c = &pipeline_cases[_i];
	struct policy_diags d;
	ck_assert_msg(check_text(c->text, &d) != 0, "case %d accepted: %s", _i, c->text);
	const struct policy_diag *e = first_error(&d);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->loc.file, TEST_FILE);
	ck_assert_msg(e->loc.line == c->line && e->loc.col == c->col,
		      "case %d (%s): got %u:%u %s, want %u:%u", _i, c->text, e->loc.line,
		      e->loc.col, e->message, c->line, c->col);
	ck_assert_str_eq(e->message, c->message);
	policy_diags_free(&d);
}
END_TEST

/* Policies near the cases above that must still pass the whole pipeline. */
static const char *const pipeline_ok[] = {
	/* tenants may overlap each other: a forward into the tenant's own copy */
	"zone up { interface \"up0\" }\ntenant a { segment lan { interface \"ta\" address 10.0.1.0/24 } }\ntenant c {\n  segment lan { interface \"tc\" address 10.0.1.0/24 }\n  pass from up to lan service tcp port 80\n  nat forward up tcp port 9090 to 10.0.1.10 port 80 }",
	/* a dual-stack tenant forwards IPv6, and snats IPv6 */
	"zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address { 10.0.1.0/24, fd00:8::/64 } }\n  pass from up to lan service tcp port 80\n  nat forward up tcp port 80 on 2001:db8::1 to fd00:8::5\n  nat snat out via up to 2001:db8:77::7 }",
	/* segments of one tenant side by side, not overlapping */
	"tenant a {\n  segment x { interface \"ta0\" address 10.8.0.0/25 }\n  segment y { interface \"ta1\" address 10.8.0.128/25 }\n  pass from x to y }",
	/* a comment that mentions a port after a forward without one */
	"zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  pass from up to lan service tcp port 80\n  nat forward up tcp port 80 to 10.0.1.10   # port 0 would be an error\n}",
	/* two defaults of different zone pairs */
	"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\ndefault from lan to dmz pass\ndefault from dmz to lan block",
	/* a forward range kept as is, and a range to one port */
	"zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  pass from up to lan service tcp port { 80, 8000-8009 }\n  nat forward up tcp port 8000-8009 to 10.0.1.10\n  nat forward up tcp port 7000-7001 to 10.0.1.11 port 80 }",
	/* the largest burst the kernel takes at 1/hour */
	"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\npass from lan to dmz service tcp port 80 limit 1/hour burst 5124095",
	/* peers with an IPv4 and an IPv6 endpoint */
	"vpn wg0 { private-key-file \"k\"\n  peer b1 { public-key \"" KEY_OK
	"\" endpoint \"192.0.2.1:51820\" allowed-ips 10.99.0.2/32 }\n  peer b2 { public-key \"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\" endpoint \"[2001:db8::1]:51820\" allowed-ips 10.99.0.3/32 } }\npass from wg0 to any",
	/* a tenant forward to its own VPN peer's network */
	"zone up { interface \"up0\" }\ntenant a {\n  segment lan { interface \"ta\" address 10.0.1.0/24 }\n  vpn wg1 { private-key-file \"k\" address 10.98.0.1/24\n    peer p { public-key \"" KEY_OK
	"\" allowed-ips 172.16.0.0/16 } }\n  pass from up to wg1 service tcp port 22\n  nat forward up tcp port 2222 to 172.16.0.5 port 22 }",
};

START_TEST(test_pipeline_ok)
{
	struct policy_diags d;
	int rc = check_text(pipeline_ok[_i], &d);
	if (rc)
		policy_diags_print(&d, stderr);
	ck_assert_msg(rc == 0, "rejected: %s", pipeline_ok[_i]);
	policy_diags_free(&d);
}
END_TEST

/* A policy without any pass blocks everything, management access too:
 * check passes it, with a warning that says so. */
START_TEST(test_blocks_everything_warns)
{
	struct policy_diags d;
	ck_assert_int_eq(check_text("", &d), 0);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_int_eq(d.v[0].severity, POLICY_WARNING);
	ck_assert_ptr_nonnull(
	    strstr(d.v[0].message, "blocks everything, including management access"));
	policy_diags_free(&d);
	ck_assert_int_eq(
	    check_text("zone lan { interface \"eth1\" }\npass from lan to self service ssh", &d),
	    0);
	ck_assert_uint_eq(d.n, 0);
	policy_diags_free(&d);
}
END_TEST

/* The rule verifier: an `ip daddr` in a rule for meta nfproto ipv6 is
 * reported at the policy line behind the rule. */
START_TEST(test_verify_family_mismatch)
{
	struct ir_table *t = ir_table_new("hvgate");
	struct ir_chain *c = ir_chain_add(t, "forward");
	struct ir_rule *r = ir_rule_add(c);
	r->loc = (struct policy_loc){ TEST_FILE, 7, 3, 4 };
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_NFPROTO;
	m->n_field = 1;
	m->value = ir_value_u8(10); /* NFPROTO_IPV6 */
	m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_IP_DADDR;
	m->n_field = 1;
	const uint8_t addr[4] = { 10, 0, 0, 1 };
	m->value = ir_value_addr(addr, 2 /* AF_INET */);
	r->verdict.kind = IR_V_ACCEPT;
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_int_eq(policy_verify_rules(t, &d), -1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[0].loc.line, 7);
	ck_assert_uint_eq(d.v[0].loc.col, 3);
	ck_assert_ptr_nonnull(
	    strstr(d.v[0].message, "matches 'ip daddr' in a rule for meta nfproto ipv6"));
	policy_diags_free(&d);
	/* the same rule for ipv4 is fine */
	t->chains[0].rules[0].matches[0].value = ir_value_u8(2); /* NFPROTO_IPV4 */
	policy_diags_init(&d);
	ck_assert_int_eq(policy_verify_rules(t, &d), 0);
	policy_diags_free(&d);
	ir_table_free(t);
}
END_TEST

/* --- includes on real files ------------------------------------------ */

static struct policy *load_file(const char *rel, struct policy_diags *d)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", testdir, rel);
	policy_diags_init(d);
	return policy_load(path, d);
}

START_TEST(test_include_cycle)
{
	testdir_write("a.hvp", "zone lan { interface \"eth1\" }\ninclude \"b.hvp\"\n");
	testdir_write("b.hvp", "include \"c.hvp\"\n");
	testdir_write("c.hvp", "\n  include \"a.hvp\"\n");
	struct policy_diags d;
	struct policy *p = load_file("a.hvp", &d);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[0].loc.line, 2);
	ck_assert_uint_eq(d.v[0].loc.col, 11);
	ck_assert_ptr_nonnull(strstr(d.v[0].loc.file, "/c.hvp"));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "include cycle: "));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "a.hvp -> "));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "b.hvp -> "));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "c.hvp -> "));
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_include_self)
{
	testdir_write("self.hvp", "include \"self.hvp\"\n");
	struct policy_diags d;
	ck_assert_ptr_null(load_file("self.hvp", &d));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "include cycle"));
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_include_glob)
{
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/objects", testdir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	testdir_write("objects/b.hvp", "zone dmz { interface \"eth2\" }\n");
	testdir_write("objects/a.hvp", "zone lan { interface \"eth1\" }\n");
	testdir_write("objects/skip.txt", "this is not policy\n");
	testdir_write("main.hvp", "include \"objects/*.hvp\"\npass from lan to dmz service ssh\n");
	struct policy_diags d;
	struct policy *p = load_file("main.hvp", &d);
	ck_assert_msg(p != NULL, "%s", d.n ? d.v[0].message : "");
	ck_assert_uint_eq(p->n_zones, 2);
	ck_assert_str_eq(p->zones[0].name, "lan"); /* a.hvp before b.hvp */
	ck_assert_str_eq(p->zones[1].name, "dmz");
	ck_assert_uint_eq(p->n_rules, 1);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_include_glob_no_match)
{
	testdir_write("main.hvp", "include \"nothing/*.hvp\"\n");
	struct policy_diags d;
	ck_assert_ptr_null(load_file("main.hvp", &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_str_eq(d.v[0].message, "include pattern 'nothing/*.hvp' matches no file");
	ck_assert_uint_eq(d.v[0].loc.col, 9);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_include_unreadable)
{
	testdir_write("main.hvp", "\ninclude \"missing.hvp\"\n");
	struct policy_diags d;
	ck_assert_ptr_null(load_file("main.hvp", &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[0].loc.line, 2);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "cannot read included file"));
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "No such file"));
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_include_error_located_in_included_file)
{
	testdir_write("inc.hvp",
		      "zone lan { interface \"eth1\" }\n\npass from lan to 10.0.0.1/8\n");
	testdir_write("main.hvp", "include \"inc.hvp\"\n");
	struct policy_diags d;
	ck_assert_ptr_null(load_file("main.hvp", &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_ptr_nonnull(strstr(d.v[0].loc.file, "/inc.hvp"));
	ck_assert_uint_eq(d.v[0].loc.line, 3);
	ck_assert_uint_eq(d.v[0].loc.col, 18);
	policy_diags_free(&d);
}
END_TEST

static Suite *checker_suite(void)
{
	Suite *s = suite_create("checker");
	TCase *tc = tcase_create("table");
	tcase_add_loop_test(tc, test_bad_case, 0, (int)N_BAD_CASES);
	tcase_add_loop_test(tc, test_isolation_ok, 0,
			    (int)(sizeof(isolated_ok) / sizeof(isolated_ok[0])));
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_recovery_inside_tenant);
	tcase_add_test(tc, test_duplicate_has_note);
	tcase_add_test(tc, test_no_follow_up_errors);
	tcase_add_test(tc, test_print_format);
	tcase_add_loop_test(tc, test_pipeline_case, 0, (int)N_PIPELINE_CASES);
	tcase_add_loop_test(tc, test_pipeline_ok, 0,
			    (int)(sizeof(pipeline_ok) / sizeof(pipeline_ok[0])));
	tcase_add_test(tc, test_blocks_everything_warns);
	tcase_add_test(tc, test_verify_family_mismatch);
	suite_add_tcase(s, tc);
	TCase *files = tcase_create("includes");
	tcase_add_checked_fixture(files, testdir_setup, testdir_teardown);
	tcase_add_test(files, test_include_cycle);
	tcase_add_test(files, test_include_self);
	tcase_add_test(files, test_include_glob);
	tcase_add_test(files, test_include_glob_no_match);
	tcase_add_test(files, test_include_unreadable);
	tcase_add_test(files, test_include_error_located_in_included_file);
	suite_add_tcase(s, files);
	return s;
}

int main(void)
{
	return check_main(checker_suite());
}
