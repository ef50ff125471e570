/* The allowed-ips trie (vpn/allowedips.c): longest prefix, v4 and v6,
 * removal, ownership moving between peers, prefix parsing. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

/* Peers are only compared by address here: distinct dummies suffice. */
static struct vpn_peer *const A = (struct vpn_peer *)0x1000, *const B = (struct vpn_peer *)0x2000,
			      *const C = (struct vpn_peer *)0x3000;

static void add(struct vpn_allowedips *t, const char *p, struct vpn_peer *peer)
{
	struct vpn_prefix pfx;
	ck_assert_int_eq(vpn_prefix_parse(p, &pfx), 0);
	ck_assert_int_eq(vpn_allowedips_insert(t, &pfx, peer), 0);
}

static struct vpn_peer *look(struct vpn_allowedips *t, const char *addr)
{
	uint8_t a[16];
	if (inet_pton(AF_INET, addr, a) == 1)
		return vpn_allowedips_lookup(t, AF_INET, a);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, a), 1);
	return vpn_allowedips_lookup(t, AF_INET6, a);
}

START_TEST(longest_prefix_v4)
{
	struct vpn_allowedips t;

	vpn_allowedips_init(&t);
	add(&t, "10.0.0.0/8", A);
	add(&t, "10.1.0.0/16", B);
	add(&t, "10.1.2.3/32", C);
	ck_assert_ptr_eq(look(&t, "10.9.9.9"), A);
	ck_assert_ptr_eq(look(&t, "10.1.9.9"), B);
	ck_assert_ptr_eq(look(&t, "10.1.2.3"), C);
	ck_assert_ptr_eq(look(&t, "10.1.2.4"), B);
	ck_assert_ptr_null(look(&t, "11.0.0.1"));
	add(&t, "0.0.0.0/0", C);
	ck_assert_ptr_eq(look(&t, "11.0.0.1"), C);
	ck_assert_ptr_eq(look(&t, "10.9.9.9"), A);
	vpn_allowedips_free(&t);
}
END_TEST

START_TEST(longest_prefix_v6_separate_from_v4)
{
	struct vpn_allowedips t;

	vpn_allowedips_init(&t);
	add(&t, "2001:db8::/32", A);
	add(&t, "2001:db8:1::/48", B);
	add(&t, "::/0", C);
	add(&t, "10.0.0.0/8", B);
	ck_assert_ptr_eq(look(&t, "2001:db8:2::1"), A);
	ck_assert_ptr_eq(look(&t, "2001:db8:1::1"), B);
	ck_assert_ptr_eq(look(&t, "fe80::1"), C);
	ck_assert_ptr_null(look(&t, "192.168.0.1"));
	ck_assert_ptr_eq(look(&t, "10.0.0.1"), B);
	vpn_allowedips_free(&t);
}
END_TEST

START_TEST(removal)
{
	struct vpn_allowedips t;
	struct vpn_prefix p;

	vpn_allowedips_init(&t);
	add(&t, "10.0.0.0/8", A);
	add(&t, "10.1.0.0/16", B);
	add(&t, "10.2.0.0/16", B);
	add(&t, "2001:db8::/32", B);
	vpn_allowedips_remove_peer(&t, B);
	ck_assert_ptr_eq(look(&t, "10.1.0.1"), A);
	ck_assert_ptr_eq(look(&t, "10.2.0.1"), A);
	ck_assert_ptr_null(look(&t, "2001:db8::1"));
	ck_assert_ptr_null(t.root6);
	ck_assert_int_eq(vpn_prefix_parse("10.0.0.0/8", &p), 0);
	ck_assert_int_eq(vpn_allowedips_remove(&t, &p, B), -ENOENT);
	ck_assert_int_eq(vpn_allowedips_remove(&t, &p, A), 0);
	ck_assert_ptr_null(look(&t, "10.1.0.1"));
	ck_assert_ptr_null(t.root4);
	vpn_allowedips_free(&t);
}
END_TEST

START_TEST(reassign_moves_owner)
{
	struct vpn_allowedips t;

	vpn_allowedips_init(&t);
	add(&t, "192.168.1.0/24", A);
	add(&t, "192.168.1.0/24", B);
	ck_assert_ptr_eq(look(&t, "192.168.1.77"), B);
	vpn_allowedips_free(&t);
}
END_TEST

START_TEST(prefix_parsing)
{
	struct vpn_prefix p;
	char s[64];

	ck_assert_int_eq(vpn_prefix_parse("10.1.2.3/8", &p), 0);
	vpn_prefix_format(&p, s, sizeof(s));
	ck_assert_str_eq(s, "10.0.0.0/8"); /* host bits cleared */
	ck_assert_int_eq(vpn_prefix_parse("2001:db8::1", &p), 0);
	ck_assert_uint_eq(p.cidr, 128);
	ck_assert_int_eq(vpn_prefix_parse("2001:db8:ffff::1/33", &p), 0);
	vpn_prefix_format(&p, s, sizeof(s));
	ck_assert_str_eq(s, "2001:db8:8000::/33");
	ck_assert_int_ne(vpn_prefix_parse("10.0.0.0/33", &p), 0);
	ck_assert_int_ne(vpn_prefix_parse("10.0.0.0/", &p), 0);
	ck_assert_int_ne(vpn_prefix_parse("nonsense", &p), 0);
	ck_assert_int_ne(vpn_prefix_parse("::/129", &p), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_allowedips");
	TCase *tc = tcase_create("trie");

	tcase_add_test(tc, longest_prefix_v4);
	tcase_add_test(tc, longest_prefix_v6_separate_from_v4);
	tcase_add_test(tc, removal);
	tcase_add_test(tc, reassign_moves_owner);
	tcase_add_test(tc, prefix_parsing);
	suite_add_tcase(s, tc);
	return check_main(s);
}
