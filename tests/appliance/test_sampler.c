/* appliance/daemon_sampler.c: the counter dumps of the daemon's loop, made
 * by a thread of their own. The dump itself reads whatever the namespace
 * has (here: maybe no table inet hvgate, an error the sample reports). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "appliance/daemon_sampler.h"
#include "tests/lib/checkmain.h"

/* Waits until the sampler says a sample is ready; false after 20 s. */
static bool ready_within(struct sampler *s)
{
	struct pollfd p = { .fd = sampler_fd(s), .events = POLLIN };
	return poll(&p, 1, 20000) == 1 && (p.revents & POLLIN);
}

START_TEST(ask_poll_take)
{
	struct sampler *s = NULL;
	struct nftio_rule_counter *v = NULL;
	size_t n = 0;
	double took = -1;
	uint64_t tag = 0;

	ck_assert_int_eq(sampler_start(&s), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert(!sampler_busy(s));
	/* nothing asked: nothing to take */
	ck_assert_int_eq(sampler_take(s, &v, &n, &took, &tag), -EAGAIN);
	sampler_ask(s, 41);
	ck_assert(sampler_busy(s));
	sampler_ask(s, 42); /* one under way: not asked again */
	ck_assert(ready_within(s));
	int rc = sampler_take(s, &v, &n, &took, &tag);
	ck_assert_int_ne(rc, -EAGAIN); /* the dump's own result */
	ck_assert_uint_eq(tag, 41);
	ck_assert(took >= 0);
	ck_assert(!sampler_busy(s));
	free(v);
	/* taken: the fd is quiet and nothing more is there */
	struct pollfd p = { .fd = sampler_fd(s), .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(sampler_take(s, &v, &n, &took, &tag), -EAGAIN);
	/* again, with another tag */
	sampler_ask(s, 43);
	ck_assert(ready_within(s));
	ck_assert_int_ne(sampler_take(s, &v, &n, &took, &tag), -EAGAIN);
	ck_assert_uint_eq(tag, 43);
	free(v);
	sampler_stop(s);
}
END_TEST

/* Stopped with a dump asked for and not taken: it waits for the dump and
 * frees what nobody took. */
START_TEST(stop_while_busy)
{
	struct sampler *s = NULL;

	ck_assert_int_eq(sampler_start(&s), 0);
	sampler_ask(s, 1);
	sampler_stop(s);
	sampler_stop(NULL); /* harmless */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sampler");
	TCase *tc = tcase_create("sampler");

	tcase_add_test(tc, ask_poll_take);
	tcase_add_test(tc, stop_while_busy);
	suite_add_tcase(s, tc);
	return check_main(s);
}
