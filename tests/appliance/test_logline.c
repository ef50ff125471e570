/* Log events read back for `hvgate explain` (appliance/logline.h): the JSON
 * line of the event file (also after a syslog prefix), the KEY=VALUE item
 * of `show log`, and clear errors with the column for what names no packet. */
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/logline.h"
#include "tests/lib/checkmain.h"

static int parse(const char *text, struct logline *ev, char *err, size_t *col)
{
	*col = 0;
	return logline_parse(text, strlen(text), ev, err, 256, col);
}

START_TEST(json_event)
{
	struct logline ev;
	char err[256];
	size_t col;
	const char *line = "{\"time\":\"2026-11-24T14:46:04.349Z\",\"rule\":\"/etc/hvgate/policy/"
			   "acme.hvp:17:b42fdb\","
			   "\"prefix\":\"ssh-from-lan\",\"tenant\":\"acme\",\"in\":\"tap-acme-"
			   "web\",\"out\":\"eth0\","
			   "\"family\":\"ip\",\"proto\":\"tcp\",\"src\":\"10.0.1.5\",\"dst\":\"192."
			   "0.2.9\",\"sport\":40312,"
			   "\"dport\":22,\"verdict\":\"block\"}\n";
	ck_assert_int_eq(parse(line, &ev, err, &col), 0);
	ck_assert_str_eq(ev.rule, "/etc/hvgate/policy/acme.hvp:17:b42fdb");
	ck_assert_str_eq(ev.tenant, "acme");
	ck_assert_str_eq(ev.in, "tap-acme-web");
	ck_assert_str_eq(ev.out, "eth0");
	ck_assert_str_eq(ev.verdict, "block");
	ck_assert_int_eq(ev.family, AF_INET);
	ck_assert_int_eq(ev.proto, IPPROTO_TCP);
	ck_assert(ev.has_ports);
	ck_assert_uint_eq(ev.sport, 40312);
	ck_assert_uint_eq(ev.dport, 22);
	ck_assert_uint_eq(ev.src[0], 10);
	ck_assert_uint_eq(ev.dst[3], 9);
	/* as syslog writes it, and a fast path event (no interfaces) */
	ck_assert_int_eq(
	    parse("Nov 24 hvgated[9]: event {\"source\":\"fastpath\",\"rule\":\"w.hvp:12:9a0c1e\","
		  "\"prefix\":\"sqli\",\"tenant\":\"\",\"match\":0,\"family\":\"ip6\",\"proto\":"
		  "\"tcp\","
		  "\"src\":\"fd00::2\",\"dst\":\"fd00::3\",\"sport\":1,\"dport\":8000,\"verdict\":"
		  "\"block\"}",
		  &ev, err, &col),
	    0);
	ck_assert_str_eq(ev.source, "fastpath");
	ck_assert_int_eq(ev.family, AF_INET6);
	ck_assert_str_eq(ev.in, "");
	/* ICMP: a type, no ports */
	ck_assert_int_eq(parse("{\"in\":\"lan0\",\"out\":\"\",\"family\":\"ip\",\"proto\":\"icmp\","
			       "\"src\":\"10.0.0.1\","
			       "\"dst\":\"10.0.0.2\",\"icmp_type\":8,\"verdict\":\"pass\"}",
			       &ev, err, &col),
			 0);
	ck_assert(!ev.has_ports);
	ck_assert(ev.has_icmp_type);
	ck_assert_uint_eq(ev.icmp_type, 8);
}
END_TEST

START_TEST(show_log_item)
{
	struct logline ev;
	char err[256];
	size_t col;
	/* print_inline of `hvgate show log`: "" for an empty string, a prefix with blanks */
	ck_assert_int_eq(
	    parse("  - time=2026-11-24T14:46:04.349Z rule=p.hvp:6:0a1b2c prefix=ssh from lan "
		  "tenant=\"\" in=lan0 out=dmz0 family=ip proto=tcp src=10.10.1.2 dst=10.10.2.2 "
		  "sport=40000 dport=22 verdict=block",
		  &ev, err, &col),
	    0);
	ck_assert_str_eq(ev.prefix, "ssh from lan");
	ck_assert_str_eq(ev.tenant, "");
	ck_assert_str_eq(ev.rule, "p.hvp:6:0a1b2c");
	ck_assert_uint_eq(ev.dport, 22);
	ck_assert_int_eq(
	    parse("in=lan0 proto=udp src=[fd00::1] dst=fd00::2 sport=1 dport=2", &ev, err, &col),
	    -1);
	ck_assert_int_eq(col, 23);
	ck_assert_int_eq(
	    parse("in=lan0 proto=udp src=fd00::1 dst=fd00::2 sport=1 dport=2 unknown=7", &ev, err,
		  &col),
	    0);
	ck_assert_int_eq(ev.family, AF_INET6);
	ck_assert_int_eq(ev.proto, IPPROTO_UDP);
}
END_TEST

START_TEST(errors)
{
	struct logline ev;
	char err[256];
	size_t col;
	ck_assert_int_eq(
	    parse("proto=tcp src=10.0.0.1 dst=10.0.0.299 sport=1 dport=2", &ev, err, &col), -1);
	ck_assert_int_eq(col, 28);
	ck_assert(strstr(err, "'dst' is not an address"));
	ck_assert_int_eq(parse("proto=tcp src=10.0.0.1 dst=10.0.0.2 sport=1", &ev, err, &col), -1);
	ck_assert(strstr(err, "no 'dport'"));
	ck_assert_int_eq(
	    parse("proto=tcp src=10.0.0.1 dst=10.0.0.2 sport=70000 dport=1", &ev, err, &col), -1);
	ck_assert_int_eq(col, 43);
	ck_assert_int_eq(
	    parse("proto=tcp src=10.0.0.1 dst=fd00::2 sport=1 dport=1", &ev, err, &col), -1);
	ck_assert(strstr(err, "other address family"));
	ck_assert_int_eq(parse("proto=icmpv6 src=10.0.0.1 dst=10.0.0.2", &ev, err, &col), -1);
	ck_assert_int_eq(parse("proto=tcp src=10.0.0.1 src=10.0.0.3 dst=10.0.0.2 sport=1 dport=1",
			       &ev, err, &col),
			 -1);
	ck_assert(strstr(err, "given twice"));
	ck_assert_int_eq(parse("src=10.0.0.1 dst=10.0.0.2", &ev, err, &col), -1);
	ck_assert(strstr(err, "no 'proto'"));
	ck_assert_int_eq(parse("hello world", &ev, err, &col), -1);
	ck_assert_int_eq(col, 1);
	ck_assert_int_eq(parse("x {\"proto\":\"tcp\",", &ev, err, &col), -1);
	ck_assert_int_eq(col, 3);
	ck_assert_int_eq(
	    parse("{\"proto\":[1],\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"}", &ev, err, &col), -1);
	ck_assert(strstr(err, "neither a string"));
	ck_assert_int_eq(
	    parse("{\"proto\":\"tcp\",\"in\":\"an-interface-name-too-long\",\"src\":\"10.0.0.1\","
		  "\"dst\":\"10.0.0.2\",\"sport\":1,\"dport\":2}",
		  &ev, err, &col),
	    -1);
	ck_assert(strstr(err, "'in' longer than 15 bytes"));
	/* a NUL inside the given length */
	ck_assert_int_eq(logline_parse("proto=tcp\0src", 13, &ev, err, sizeof(err), &col), -1);
	ck_assert_int_eq(col, 10);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("logline");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, json_event);
	tcase_add_test(tc, show_log_item);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return check_main(s);
}
