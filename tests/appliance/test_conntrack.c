/* conntrack_nat_list(): real translations made by the kernel in a namespace of
 * the test's own, read back over ctnetlink. Needs root (namespaces, nft);
 * without it the runner says so and runs only what needs no kernel. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "appliance/kernel/conntrack.h"
#include "tests/lib/checkmain.h"

static char ns[64];

/* Output dnat on loopback: a UDP datagram to 127.0.0.1:9999 goes to
 * 127.0.0.1:9998 and conntrack records the translation (in zone 5, set
 * directionally as hvgate does for tenants). */
static const char *const ruleset =
    "table ip t {\n"
    " chain raw { type filter hook output priority -300; udp dport 9999 ct original zone set 5; }\n"
    " chain out { type nat hook output priority -100; udp dport 9999 dnat to 127.0.0.1:9998; }\n"
    "}\n";

static int sh(const char *fmt, const char *arg)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), fmt, arg, arg);
	return system(cmd);
}

static void setup(void)
{
	snprintf(ns, sizeof(ns), "hvnat%d", (int)getpid());
	ck_assert_int_eq(sh("ip netns add %s", ns), 0);
	ck_assert_int_eq(sh("ip -n %s link set lo up", ns), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "ip netns exec %s nft -f - <<'EOF'\n%sEOF", ns, ruleset);
	ck_assert_int_eq(system(cmd), 0);
	/* one datagram makes the entry (nobody listens; it stays unreplied) */
	ck_assert_int_eq(
	    sh("ip netns exec %s python3 -c \"import socket; s=socket.socket(socket.AF_INET,"
	       " socket.SOCK_DGRAM); s.sendto(b'x', ('127.0.0.1', 9999))\"",
	       ns),
	    0);
}

static void teardown(void)
{
	sh("ip netns del %s", ns);
}

START_TEST(test_reads_dnat_in_netns)
{
	struct conntrack_nat *v;
	size_t n;
	ck_assert_int_eq(conntrack_nat_list(ns, &v, &n), 0);
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].l4proto != IPPROTO_UDP || v[i].orig.dport != 9999)
			continue;
		found++;
		ck_assert(v[i].dnat);
		ck_assert(!v[i].snat);
		ck_assert_int_eq(v[i].family, AF_INET);
		ck_assert_uint_eq(v[i].reply.sport, 9998); /* the translated destination */
		ck_assert_uint_eq(v[i].zone, 5);
		char buf[256];
		ck_assert_ptr_nonnull(strstr(conntrack_nat_format(&v[i], buf, sizeof(buf)),
					     "-> 127.0.0.1:9999 dnat 127.0.0.1:9998"));
	}
	ck_assert_uint_eq(found, 1);
	free(v);
}
END_TEST

START_TEST(test_other_namespace_is_separate)
{
	/* the test's own namespace never saw that datagram */
	struct conntrack_nat *v;
	size_t n;
	ck_assert_int_eq(conntrack_nat_list(NULL, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert(
		    !(v[i].l4proto == IPPROTO_UDP && v[i].orig.dport == 9999 && v[i].zone == 5));
	free(v);
}
END_TEST

START_TEST(test_missing_namespace)
{
	struct conntrack_nat *v;
	size_t n;
	ck_assert_int_lt(conntrack_nat_list("hvnat-no-such-namespace", &v, &n), 0);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* A namespace is a name under /var/run/netns, never a path: the netlink
 * layer enters one with the same checks for every caller (nat/conntrack.c
 * used to open "/var/run/netns/" + whatever it was given). */
START_TEST(test_namespace_is_a_name)
{
	struct conntrack_nat *v;
	size_t n;
	ck_assert_int_eq(conntrack_nat_list("../../proc/self/ns/net", &v, &n), -EINVAL);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_format)
{
	struct conntrack_nat x = {
		.family = AF_INET, .l4proto = IPPROTO_TCP, .zone = 2, .mark = 0x20000, .snat = true
	};
	uint8_t a[4] = { 10, 0, 1, 2 }, s[4] = { 203, 0, 113, 2 }, p[4] = { 203, 0, 113, 1 };
	memcpy(x.orig.src, a, 4), memcpy(x.orig.dst, s, 4);
	memcpy(x.reply.src, s, 4), memcpy(x.reply.dst, p, 4);
	x.orig.sport = 40000, x.orig.dport = 7, x.reply.sport = 7, x.reply.dport = 39323;
	char buf[256];
	ck_assert_str_eq(
	    conntrack_nat_format(&x, buf, sizeof(buf)),
	    "tcp zone 2 mark 0x20000 10.0.1.2:40000 -> 203.0.113.2:7 snat 203.0.113.1:39323");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conntrack");
	TCase *tc = tcase_create("conntrack");
	tcase_add_test(tc, test_missing_namespace);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_namespace_is_a_name);
	if (geteuid() == 0) {
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, test_reads_dnat_in_netns);
		tcase_add_test(tc, test_other_namespace_is_separate);
	} else {
		fprintf(stderr, "test_conntrack: not root: the kernel tests do not run\n");
	}
	suite_add_tcase(s, tc);
	return check_main(s);
}
