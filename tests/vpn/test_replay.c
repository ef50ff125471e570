/* The replay window (vpn/replay.c): in-order, out-of-order, replayed, and
 * the edges of the 8128-counter window. */
#include <check.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

/* The first counter that falls out of the window once 0 was seen. */
#define T_LIM (VPN_REPLAY_WINDOW + 1)

START_TEST(window_sequence)
{
	static const struct {
		uint64_t counter;
		bool ok;
	} steps[] = {
		{ 0, true },
		{ 1, true },
		{ 1, false },
		{ 9, true },
		{ 8, true },
		{ 7, true },
		{ 7, false },
		{ T_LIM, true },
		{ T_LIM - 1, true },
		{ T_LIM - 1, false },
		{ T_LIM - 2, true },
		{ 2, true },
		{ 2, false },
		{ T_LIM + 16, true },
		{ 3, false },
		{ T_LIM + 16, false },
		{ T_LIM * 4, true },
		{ T_LIM * 4 - (T_LIM - 1), true },
		{ 10, false },
		{ T_LIM * 4 - T_LIM, false },
		{ T_LIM * 4 - (T_LIM + 1), false },
		{ T_LIM * 4 - (T_LIM - 2), true },
		{ T_LIM * 4 + 1 - T_LIM, false },
		{ 0, false },
	};
	struct vpn_replay r;

	vpn_replay_init(&r);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		ck_assert_msg(vpn_replay_check(&r, steps[i].counter) == steps[i].ok,
			      "step %zu counter %llu", i, (unsigned long long)steps[i].counter);
}
END_TEST

START_TEST(window_full_reverse)
{
	struct vpn_replay r;

	/* Every counter of a full window, highest first, is accepted once. */
	vpn_replay_init(&r);
	for (uint64_t i = VPN_REPLAY_WINDOW; i >= 1; i--)
		ck_assert(vpn_replay_check(&r, i));
	ck_assert(vpn_replay_check(&r, 0));
	for (uint64_t i = 0; i <= VPN_REPLAY_WINDOW; i++)
		ck_assert(!vpn_replay_check(&r, i));
	/* One past the window: the oldest falls out. */
	ck_assert(vpn_replay_check(&r, VPN_REPLAY_WINDOW + 2));
	ck_assert(!vpn_replay_check(&r, 0));
}
END_TEST

START_TEST(reject_after_messages)
{
	struct vpn_replay r;

	vpn_replay_init(&r);
	ck_assert(vpn_replay_check(&r, VPN_REJECT_AFTER_MESSAGES - 1));
	ck_assert(!vpn_replay_check(&r, VPN_REJECT_AFTER_MESSAGES));
	ck_assert(!vpn_replay_check(&r, UINT64_MAX));
}
END_TEST

START_TEST(big_jump_clears_ring)
{
	struct vpn_replay r;

	vpn_replay_init(&r);
	for (uint64_t i = 0; i < 200; i++)
		ck_assert(vpn_replay_check(&r, i));
	/* A jump by more than the ring: everything in the new window is new. */
	ck_assert(vpn_replay_check(&r, 1000000));
	for (uint64_t i = 1000000 - VPN_REPLAY_WINDOW; i < 1000000; i += 97)
		ck_assert(vpn_replay_check(&r, i));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_replay");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, window_sequence);
	tcase_add_test(tc, window_full_reverse);
	tcase_add_test(tc, reject_after_messages);
	tcase_add_test(tc, big_jump_clears_ring);
	suite_add_tcase(s, tc);
	return check_main(s);
}
