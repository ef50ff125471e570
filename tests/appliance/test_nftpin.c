/* One nf_tables socket per apply (nftio_pin): while pinned, every socket
 * nftio opens for the pinned namespace is the pinned one, closing a copy
 * keeps it open and hands the sequence number on; other namespaces and
 * unpinned calls get sockets of their own. */
#include <check.h>
#include <errno.h>

#include "appliance/kernel/nftio.h"
#include "appliance/kernel/nftio_internal.h"
#include "tests/lib/checkmain.h"

START_TEST(unpinned_opens_new)
{
	struct nl_sock a, b;

	ck_assert_int_eq(nftio_sock_open(NULL, &a), 0);
	ck_assert_int_eq(nftio_sock_open(NULL, &b), 0);
	ck_assert_ptr_ne(a.nl, b.nl);
	ck_assert_uint_ne(a.portid, b.portid);
	nl_sock_close(&a);
	nl_sock_close(&b);
}
END_TEST

START_TEST(pinned_is_shared)
{
	struct nl_sock a, b, c;

	ck_assert_int_eq(nftio_pin(NULL), 0);
	ck_assert_int_eq(nftio_pin(NULL), -EBUSY);
	ck_assert_int_eq(nftio_sock_open("", &a), 0);
	uint32_t seq = a.seq;
	a.seq += 7;
	nl_sock_close(&a);
	ck_assert_ptr_null(a.nl);
	ck_assert_int_eq(nftio_sock_open(NULL, &b), 0);
	ck_assert_uint_eq(b.seq, seq + 7); /* handed on, never reused */
	ck_assert_int_eq(nftio_sock_open(NULL, &c), 0);
	ck_assert_ptr_eq(b.nl, c.nl); /* the same socket, still open */
	ck_assert_uint_eq(b.portid, c.portid);
	c.seq += 3;
	nl_sock_close(&c);
	b.seq += 1; /* a lower number closed last does not go back */
	nl_sock_close(&b);
	ck_assert_int_eq(nftio_sock_open(NULL, &a), 0);
	ck_assert_uint_eq(a.seq, seq + 10);
	nl_sock_close(&a);
	nftio_unpin();
	ck_assert_int_eq(nftio_sock_open(NULL, &a), 0);
	ck_assert_int_eq(nftio_sock_open(NULL, &b), 0);
	ck_assert_ptr_ne(a.nl, b.nl);
	nl_sock_close(&a);
	nl_sock_close(&b);
}
END_TEST

START_TEST(other_namespace_not_shared)
{
	struct nl_sock a;

	/* pinned to a namespace that does not exist: the pin fails and
	 * nothing is pinned */
	ck_assert_int_ne(nftio_pin("w6i-no-such-namespace"), 0);
	ck_assert_int_eq(nftio_pin(NULL), 0);
	ck_assert_int_ne(nftio_sock_open("w6i-no-such-namespace", &a), 0);
	nftio_unpin();
	nftio_unpin(); /* harmless */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nftpin");
	TCase *tc = tcase_create("pin");

	tcase_add_test(tc, unpinned_opens_new);
	tcase_add_test(tc, pinned_is_shared);
	tcase_add_test(tc, other_namespace_not_shared);
	suite_add_tcase(s, tc);
	return check_main(s);
}
