/* Noise_IKpsk2 between two in-process devices with fixed keys (no I/O):
 * handshake, transport both ways, and the messages that must fail
 * (replayed, reordered, truncated, corrupted, wrong key, wrong psk), cookie
 * replies with mac2, and timestamps that survive a clock stepping back. */
#include <check.h>
#include <endian.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

struct pair {
	struct vpn_device *a, *b;
	struct vpn_peer *a_b; /* B as seen by A */
	struct vpn_peer *b_a; /* A as seen by B */
};

static void fixed_key(uint8_t k[VPN_KEY_LEN], uint8_t seed)
{
	for (int i = 0; i < VPN_KEY_LEN; i++)
		k[i] = (uint8_t)(seed + i * 13);
	vpn_noise_clamp(k);
}

static void make_pair(struct pair *p, uint8_t psk_a, uint8_t psk_b)
{
	struct vpn_device_options opts = { 0 };
	uint8_t ka[32], kb[32], pa[32], pb[32];

	ck_assert_int_eq(vpn_device_create(&p->a, &opts), 0);
	ck_assert_int_eq(vpn_device_create(&p->b, &opts), 0);
	fixed_key(ka, 1);
	fixed_key(kb, 2);
	ck_assert_int_eq(vpn_key_public(pa, ka), 0);
	ck_assert_int_eq(vpn_key_public(pb, kb), 0);
	ck_assert_int_eq(vpn_device_set_private_key(p->a, ka), 0);
	ck_assert_int_eq(vpn_device_set_private_key(p->b, kb), 0);
	p->a_b = vpn_peer_create(p->a, pb);
	p->b_a = vpn_peer_create(p->b, pa);
	ck_assert_ptr_nonnull(p->a_b);
	ck_assert_ptr_nonnull(p->b_a);
	memset(p->a_b->handshake.psk, psk_a, 32);
	memset(p->b_a->handshake.psk, psk_b, 32);
}

static void free_pair(struct pair *p)
{
	vpn_device_destroy(p->a);
	vpn_device_destroy(p->b);
}

/* A initiates, B responds; returns 0 if the handshake completed. */
static int handshake(struct pair *p)
{
	struct vpn_msg_initiation init;
	struct vpn_msg_response resp;
	int why;

	if (vpn_noise_create_initiation(p->a_b, &init))
		return -1;
	vpn_cookie_add_macs(&p->a_b->cookie, (uint8_t *)&init, sizeof(init), vpn_now_ns(),
			    VPN_COOKIE_SECRET_MAX_AGE);
	if (vpn_noise_consume_initiation(p->b, &init, &why) != p->b_a)
		return -2;
	if (vpn_noise_create_response(p->b_a, &resp) || vpn_noise_begin_session(p->b_a))
		return -3;
	if (vpn_noise_consume_response(p->a, &resp, &why) != p->a_b)
		return -4;
	return vpn_noise_begin_session(p->a_b) ? -5 : 0;
}

static size_t seal(struct vpn_keypair *kp, uint8_t *out, const char *text)
{
	return vpn_noise_encrypt(kp, out, (const uint8_t *)text, strlen(text), kp->send_counter++,
				 0);
}

/* What B does with a data message: find the keypair, decrypt, check replay. */
static int open_at(struct vpn_device *dev, uint8_t *msg, size_t len, uint8_t *plain,
		   size_t *plain_len)
{
	const struct vpn_msg_data *hdr = (const struct vpn_msg_data *)msg;
	struct vpn_peer *peer;
	struct vpn_keypair *kp;

	if (len < VPN_MSG_DATA_MIN_LEN)
		return -1;
	kp = vpn_noise_lookup_keypair(dev, le32toh(hdr->receiver_index), &peer);
	if (!kp)
		return -2;
	if (vpn_noise_decrypt(kp, plain, msg, len, plain_len))
		return -3;
	if (!vpn_replay_check(&kp->replay, le64toh(hdr->counter)))
		return -4;
	vpn_noise_received_with_keypair(peer, kp);
	return 0;
}

START_TEST(handshake_and_transport)
{
	struct pair p;
	uint8_t msg[256], plain[256];
	size_t n, plain_len;

	make_pair(&p, 7, 7);
	ck_assert_int_eq(handshake(&p), 0);
	ck_assert_ptr_nonnull(p.a_b->current);
	ck_assert_ptr_null(p.b_a->current); /* the responder waits for data */
	ck_assert_ptr_nonnull(p.b_a->next_keypair);
	ck_assert_mem_eq(p.a_b->current->send_key, p.b_a->next_keypair->recv_key, 32);
	ck_assert_mem_eq(p.a_b->current->recv_key, p.b_a->next_keypair->send_key, 32);
	ck_assert_int_ne(memcmp(p.a_b->current->send_key, p.a_b->current->recv_key, 32), 0);

	n = seal(p.a_b->current, msg, "hello, responder");
	ck_assert_uint_eq((n - 32) % 16, 0); /* padded to 16 */
	ck_assert_int_eq(open_at(p.b, msg, n, plain, &plain_len), 0);
	ck_assert_mem_eq(plain, "hello, responder", 16);
	ck_assert_ptr_nonnull(p.b_a->current); /* promoted on first data */
	ck_assert_ptr_null(p.b_a->next_keypair);

	/* padding stops at the MTU: 1419 bytes in a 1420 MTU stay 1420 */
	static uint8_t big[1419], wire[1500], back[1500];
	memset(big, 0xab, sizeof(big));
	n = vpn_noise_encrypt(p.b_a->current, wire, big, sizeof(big),
			      p.b_a->current->send_counter++, 1420);
	ck_assert_uint_eq(n, 16 + 1420 + 16);
	ck_assert_int_eq(open_at(p.a, wire, n, back, &plain_len), 0);
	ck_assert_uint_eq(plain_len, 1420);
	n = vpn_noise_encrypt(p.b_a->current, wire, big, 100, p.b_a->current->send_counter++, 1420);
	ck_assert_uint_eq(n, 16 + 112 + 16);
	ck_assert_int_eq(open_at(p.a, wire, n, back, &plain_len), 0);

	n = seal(p.b_a->current, msg, "hello, initiator");
	ck_assert_int_eq(open_at(p.a, msg, n, plain, &plain_len), 0);
	ck_assert_mem_eq(plain, "hello, initiator", 16);
	free_pair(&p);
}
END_TEST

START_TEST(bad_transport_messages)
{
	struct pair p;
	uint8_t m1[128], m2[128], m3[128], plain[128];
	size_t n1, n2, n3, pl;

	make_pair(&p, 0, 0);
	ck_assert_int_eq(handshake(&p), 0);
	n1 = seal(p.a_b->current, m1, "one");
	n2 = seal(p.a_b->current, m2, "two");
	n3 = seal(p.a_b->current, m3, "three");
	/* reordered: 3, 1, 2 all accepted */
	ck_assert_int_eq(open_at(p.b, m3, n3, plain, &pl), 0);
	ck_assert_int_eq(open_at(p.b, m1, n1, plain, &pl), 0);
	/* corrupted ciphertext, then truncated: rejected; the real one still
	 * passes afterwards (a failed attempt does not burn the counter) */
	m2[20] ^= 0x80;
	ck_assert_int_eq(open_at(p.b, m2, n2, plain, &pl), -3);
	m2[20] ^= 0x80;
	ck_assert_int_eq(open_at(p.b, m2, n2 - 1, plain, &pl), -3);
	ck_assert_int_eq(open_at(p.b, m2, 20, plain, &pl), -1);
	ck_assert_int_eq(open_at(p.b, m2, n2, plain, &pl), 0);
	/* replayed */
	ck_assert_int_eq(open_at(p.b, m1, n1, plain, &pl), -4);
	ck_assert_int_eq(open_at(p.b, m3, n3, plain, &pl), -4);
	/* a counter tampered with fails authentication (it is the nonce) */
	n1 = seal(p.a_b->current, m1, "four");
	m1[8] ^= 1;
	ck_assert_int_eq(open_at(p.b, m1, n1, plain, &pl), -3);
	/* unknown receiver index */
	m1[8] ^= 1;
	m1[4] ^= 0xff;
	ck_assert_int_eq(open_at(p.b, m1, n1, plain, &pl), -2);
	free_pair(&p);
}
END_TEST

START_TEST(wrong_psk_never_completes)
{
	struct pair p;

	make_pair(&p, 1, 2);
	ck_assert_int_eq(handshake(&p), -4);
	ck_assert_ptr_null(p.a_b->current);
	free_pair(&p);
}
END_TEST

START_TEST(unknown_initiator_refused)
{
	struct pair p;
	struct vpn_msg_initiation init;
	uint8_t other[32], other_pub[32];
	int why;

	make_pair(&p, 0, 0);
	/* B forgets A: A's initiation names a static key B does not know. */
	vpn_peer_destroy(p.b_a);
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	ck_assert_ptr_null(vpn_noise_consume_initiation(p.b, &init, &why));
	/* B knows a different key: still refused. */
	fixed_key(other, 99);
	vpn_key_public(other_pub, other);
	ck_assert_ptr_nonnull(vpn_peer_create(p.b, other_pub));
	ck_assert_ptr_null(vpn_noise_consume_initiation(p.b, &init, &why));
	free_pair(&p);
}
END_TEST

START_TEST(replayed_initiation_rejected)
{
	struct pair p;
	struct vpn_msg_initiation init, older;
	int why;

	make_pair(&p, 0, 0);
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &older), 0);
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	ck_assert_ptr_eq(vpn_noise_consume_initiation(p.b, &init, &why), p.b_a);
	/* the same message again, and an older one: refused by timestamp */
	ck_assert_ptr_null(vpn_noise_consume_initiation(p.b, &init, &why));
	ck_assert_int_eq(why, VPN_DROP_TIMESTAMP);
	ck_assert_ptr_null(vpn_noise_consume_initiation(p.b, &older, &why));
	ck_assert_int_eq(why, VPN_DROP_TIMESTAMP);
	/* a corrupted initiation fails authentication */
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	init.encrypted_timestamp[0] ^= 1;
	ck_assert_ptr_null(vpn_noise_consume_initiation(p.b, &init, &why));
	ck_assert_int_eq(why, VPN_DROP_HANDSHAKE);
	free_pair(&p);
}
END_TEST

/* The clock steps back (a VM after reboot): the stored last timestamp keeps
 * what we send strictly newer than what the peer last saw. */
START_TEST(timestamp_survives_clock_step_back)
{
	struct pair p;
	struct vpn_msg_initiation init;
	uint8_t future[VPN_TAI64N_LEN];
	uint64_t secs;
	int why;

	make_pair(&p, 0, 0);
	vpn_noise_tai64n(future);
	memcpy(&secs, future, 8);
	secs = htobe64(be64toh(secs) + 3600);
	memcpy(future, &secs, 8);
	memcpy(p.b_a->handshake.latest_timestamp, future, VPN_TAI64N_LEN);
	memcpy(p.a->last_sent_timestamp, future, VPN_TAI64N_LEN); /* as loaded from disk */
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	ck_assert_ptr_eq(vpn_noise_consume_initiation(p.b, &init, &why), p.b_a);
	ck_assert_int_gt(memcmp(p.a->last_sent_timestamp, future, VPN_TAI64N_LEN), 0);
	free_pair(&p);
}
END_TEST

START_TEST(cookie_reply_and_mac2)
{
	struct pair p;
	struct vpn_msg_initiation init;
	struct vpn_msg_cookie reply;
	union vpn_sockaddr src = { .in4 = { .sin_family = AF_INET, .sin_port = htobe16(4242) } };
	union vpn_sockaddr other = src;
	uint64_t now = vpn_now_ns();

	other.in4.sin_port = htobe16(4243);
	make_pair(&p, 0, 0);
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	vpn_cookie_add_macs(&p.a_b->cookie, (uint8_t *)&init, sizeof(init), now,
			    VPN_COOKIE_SECRET_MAX_AGE);
	ck_assert(sodium_is_zero(init.macs.mac2, 16));
	ck_assert_int_eq(vpn_cookie_validate(&p.b->cookie_checker, (uint8_t *)&init, sizeof(init),
					     &src, true, now, VPN_COOKIE_SECRET_MAX_AGE),
			 VPN_COOKIE_VALID_MAC1);
	/* bad mac1 */
	init.macs.mac1[0] ^= 1;
	ck_assert_int_eq(vpn_cookie_validate(&p.b->cookie_checker, (uint8_t *)&init, sizeof(init),
					     &src, true, now, VPN_COOKIE_SECRET_MAX_AGE),
			 VPN_COOKIE_INVALID_MAC1);
	init.macs.mac1[0] ^= 1;
	/* B under load answers with a cookie; A takes it and adds mac2 */
	vpn_cookie_reply_create(&p.b->cookie_checker, &reply, (uint8_t *)&init, sizeof(init),
				init.sender_index, &src, now, VPN_COOKIE_SECRET_MAX_AGE);
	ck_assert_ptr_eq(vpn_noise_lookup_any(p.a, le32toh(reply.receiver_index)), p.a_b);
	ck_assert_int_eq(vpn_cookie_reply_consume(&p.a_b->cookie, &reply, now), 0);
	/* the same reply twice is refused (mac1 consumed) */
	ck_assert_int_ne(vpn_cookie_reply_consume(&p.a_b->cookie, &reply, now), 0);
	ck_assert_int_eq(vpn_noise_create_initiation(p.a_b, &init), 0);
	vpn_cookie_add_macs(&p.a_b->cookie, (uint8_t *)&init, sizeof(init), now,
			    VPN_COOKIE_SECRET_MAX_AGE);
	ck_assert(!sodium_is_zero(init.macs.mac2, 16));
	ck_assert_int_eq(vpn_cookie_validate(&p.b->cookie_checker, (uint8_t *)&init, sizeof(init),
					     &src, true, now, VPN_COOKIE_SECRET_MAX_AGE),
			 VPN_COOKIE_VALID_MAC1_AND_MAC2);
	/* the cookie is bound to the source address and port */
	ck_assert_int_eq(vpn_cookie_validate(&p.b->cookie_checker, (uint8_t *)&init, sizeof(init),
					     &other, true, now, VPN_COOKIE_SECRET_MAX_AGE),
			 VPN_COOKIE_VALID_MAC1);
	/* a tampered reply does not decrypt */
	vpn_cookie_add_macs(&p.a_b->cookie, (uint8_t *)&init, sizeof(init), now,
			    VPN_COOKIE_SECRET_MAX_AGE);
	vpn_cookie_reply_create(&p.b->cookie_checker, &reply, (uint8_t *)&init, sizeof(init),
				init.sender_index, &src, now, VPN_COOKIE_SECRET_MAX_AGE);
	reply.encrypted_cookie[0] ^= 1;
	ck_assert_int_ne(vpn_cookie_reply_consume(&p.a_b->cookie, &reply, now), 0);
	free_pair(&p);
}
END_TEST

START_TEST(rekey_rotates_keypairs)
{
	struct pair p;
	uint8_t msg[128], plain[128];
	size_t n, pl;

	make_pair(&p, 3, 3);
	ck_assert_int_eq(handshake(&p), 0);
	n = seal(p.a_b->current, msg, "x");
	ck_assert_int_eq(open_at(p.b, msg, n, plain, &pl), 0);
	struct vpn_keypair *old = p.a_b->current;
	uint8_t old_send[32];
	memcpy(old_send, old->send_key, 32);
	/* old data in flight still decrypts after the next handshake */
	n = seal(p.a_b->current, msg, "in flight");
	/* initiations closer than 1/50 s apart are refused as a flood. On a
	 * loaded machine the second attempt may come later than that; then it
	 * must succeed, and the clock must say the window had passed. */
	uint64_t first = p.b_a->handshake.last_initiation_consumption_ns;
	int r = handshake(&p);
	if (r == -2) {
		usleep(25000);
		r = handshake(&p);
	} else {
		ck_assert_uint_ge(vpn_now_ns() - first,
				  VPN_NSEC_PER_SEC / VPN_INITIATIONS_PER_SECOND);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_eq(p.a_b->previous, old);
	ck_assert_int_ne(memcmp(p.a_b->current->send_key, old_send, 32), 0);
	ck_assert_int_eq(open_at(p.b, msg, n, plain, &pl), 0);
	n = seal(p.a_b->current, msg, "new");
	ck_assert_int_eq(open_at(p.b, msg, n, plain, &pl), 0);
	ck_assert_mem_eq(p.b_a->current->recv_key, p.a_b->current->send_key, 32);
	/* zeroing clears everything and forgets the indices */
	uint32_t idx = p.b_a->current->local_index;
	vpn_noise_clear_keypairs(p.b_a);
	struct vpn_peer *who;
	ck_assert_ptr_null(vpn_noise_lookup_keypair(p.b, idx, &who));
	ck_assert_ptr_null(p.b_a->current);
	free_pair(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_noise");
	TCase *tc = tcase_create("noise");

	tcase_add_test(tc, handshake_and_transport);
	tcase_add_test(tc, bad_transport_messages);
	tcase_add_test(tc, wrong_psk_never_completes);
	tcase_add_test(tc, unknown_initiator_refused);
	tcase_add_test(tc, replayed_initiation_rejected);
	tcase_add_test(tc, timestamp_survives_clock_step_back);
	tcase_add_test(tc, cookie_reply_and_mac2);
	tcase_add_test(tc, rekey_rotates_keypairs);
	suite_add_tcase(s, tc);
	return check_main(s);
}
