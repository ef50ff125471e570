/* The AEAD worker threads (vpn/crypt.c): a batch run over threads gives
 * byte for byte what one thread gives, every job of every batch is done when
 * the run returns, in the slots it was queued in, and the key copies are
 * wiped. Also the place to run helgrind or a -fsanitize=thread build. */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

#define T_THREADS 4
#define T_PLAIN   1400

struct t_batch {
	uint8_t wire[VPN_BATCH][VPN_WIRE_BUF];
	struct vpn_crypt_job jobs[VPN_BATCH];
};

static void fill_keypair(struct vpn_keypair *kp)
{
	memset(kp, 0, sizeof(*kp));
	for (int i = 0; i < VPN_KEY_LEN; i++)
		kp->send_key[i] = kp->recv_key[i] = (uint8_t)(i * 7 + 1);
	kp->remote_index = 0x01020304;
}

/* n data messages with counters base.., each plaintext naming its slot;
 * queued as the send path queues them. */
static void queue_seals(struct t_batch *b, const struct vpn_keypair *kp, unsigned n, uint64_t base)
{
	uint8_t plain[T_PLAIN];

	for (unsigned i = 0; i < n; i++) {
		memset(plain, (int)(i + base), sizeof(plain));
		size_t len = 20 + (i * 37) % (T_PLAIN - 20);
		b->jobs[i].len =
		    vpn_noise_encrypt_prepare(kp, b->wire[i], plain, len, base + i, 1420);
		b->jobs[i].msg = b->wire[i];
		b->jobs[i].seal = true;
		memcpy(b->jobs[i].key, kp->send_key, VPN_KEY_LEN);
	}
}

START_TEST(threads_match_one_thread)
{
	static struct t_batch par, one;
	struct vpn_crypt *c;
	struct vpn_keypair kp;

	fill_keypair(&kp);
	ck_assert_int_eq(vpn_crypt_create(&c, T_THREADS, false), 0);
	ck_assert_ptr_nonnull(c);
	queue_seals(&par, &kp, VPN_BATCH, 1000);
	queue_seals(&one, &kp, VPN_BATCH, 1000);
	vpn_crypt_run(c, par.jobs, VPN_BATCH);
	vpn_crypt_run(NULL, one.jobs, VPN_BATCH);
	for (unsigned i = 0; i < VPN_BATCH; i++) {
		ck_assert_uint_eq(par.jobs[i].len, one.jobs[i].len);
		ck_assert_msg(!memcmp(par.wire[i], one.wire[i], par.jobs[i].len), "slot %u differs",
			      i);
		/* and it is what the one-call encryption gives */
		uint8_t ref[VPN_WIRE_BUF], plain[T_PLAIN];
		memset(plain, (int)(i + 1000), sizeof(plain));
		size_t n = vpn_noise_encrypt(&kp, ref, plain, 20 + (i * 37) % (T_PLAIN - 20),
					     1000 + i, 1420);
		ck_assert_uint_eq(n, par.jobs[i].len);
		ck_assert(!memcmp(ref, par.wire[i], n));
	}
	/* Open them again over the threads, one tampered with. */
	par.wire[5][40] ^= 1;
	for (unsigned i = 0; i < VPN_BATCH; i++) {
		par.jobs[i].seal = false;
		memcpy(par.jobs[i].key, kp.recv_key, VPN_KEY_LEN);
	}
	vpn_crypt_run(c, par.jobs, VPN_BATCH);
	for (unsigned i = 0; i < VPN_BATCH; i++) {
		if (i == 5) {
			ck_assert_int_eq(par.jobs[i].result, -EBADMSG);
			continue;
		}
		ck_assert_int_eq(par.jobs[i].result, 0);
		ck_assert_uint_ge(par.jobs[i].plain_len, 20 + (i * 37) % (T_PLAIN - 20));
		ck_assert_uint_eq(par.wire[i][sizeof(struct vpn_msg_data)], (uint8_t)(i + 1000));
		ck_assert_uint_eq(le64toh(((struct vpn_msg_data *)par.wire[i])->counter), 1000 + i);
	}
	vpn_crypt_destroy(c);
}
END_TEST

/* Many batches of every size back to back: a lost wake-up would hang here
 * (the test's timeout), a job run twice or not at all shows in its result. */
START_TEST(every_batch_completes)
{
	static struct t_batch b;
	struct vpn_crypt *c;
	struct vpn_keypair kp;

	fill_keypair(&kp);
	ck_assert_int_eq(vpn_crypt_create(&c, T_THREADS, false), 0);
	for (unsigned round = 0; round < 3000; round++) {
		unsigned n = 1 + round % VPN_BATCH;
		queue_seals(&b, &kp, n, round);
		vpn_crypt_run(c, b.jobs, n);
		for (unsigned i = 0; i < n; i++) {
			b.jobs[i].seal = false;
			b.jobs[i].result = 1;
			memcpy(b.jobs[i].key, kp.recv_key, VPN_KEY_LEN);
		}
		vpn_crypt_run(c, b.jobs, n);
		for (unsigned i = 0; i < n; i++)
			ck_assert_msg(b.jobs[i].result == 0, "round %u slot %u: %d", round, i,
				      b.jobs[i].result);
	}
	vpn_crypt_destroy(c);
}
END_TEST

START_TEST(keys_wiped)
{
	static struct t_batch b;
	static const uint8_t zero[VPN_KEY_LEN];
	struct vpn_crypt *c;
	struct vpn_keypair kp;

	fill_keypair(&kp);
	ck_assert_int_eq(vpn_crypt_create(&c, T_THREADS, false), 0);
	queue_seals(&b, &kp, VPN_BATCH, 7);
	vpn_crypt_run(c, b.jobs, VPN_BATCH);
	for (unsigned i = 0; i < VPN_BATCH; i++)
		ck_assert(!memcmp(b.jobs[i].key, zero, VPN_KEY_LEN));
	vpn_crypt_destroy(c);
}
END_TEST

/* The AEAD of a job (OpenSSL's ChaCha20 with libsodium's Poly1305) is
 * libsodium's ChaCha20-Poly1305 byte for byte, at every length around the
 * 16-byte and 64-byte boundaries and up to a full datagram, both ways; a
 * changed byte anywhere (header excepted: it is not authenticated here)
 * is refused and leaves the message as it was. */
START_TEST(aead_matches_libsodium)
{
	static uint8_t msg[VPN_WIRE_BUF], ref[VPN_WIRE_BUF], keep[VPN_WIRE_BUF];
	struct vpn_msg_data *hdr = (struct vpn_msg_data *)msg;
	struct vpn_crypt_job job;
	uint8_t key[VPN_KEY_LEN], nonce[12];
	unsigned long long rlen;

	for (size_t len = 0; len <= 1500; len += len < 300 ? 1 : 61) {
		uint64_t counter = 0x0102030405060708ULL * (len + 1);
		randombytes_buf(key, sizeof(key));
		memset(msg, 0, sizeof(msg));
		hdr->type = htole32(4);
		hdr->counter = htole64(counter);
		randombytes_buf(msg + sizeof(*hdr), len);
		vpn_noise_aead_nonce(nonce, counter);
		crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rlen, msg + sizeof(*hdr), len, NULL,
							  0, NULL, nonce, key);
		memset(&job, 0, sizeof(job));
		memcpy(job.key, key, sizeof(key));
		job.msg = msg;
		job.len = sizeof(*hdr) + len + VPN_AEAD_TAG;
		job.seal = true;
		vpn_crypt_job_run(&job);
		ck_assert_msg(!memcmp(msg + sizeof(*hdr), ref, len + VPN_AEAD_TAG),
			      "seal differs at %zu", len);
		/* open what libsodium sealed */
		job.seal = false;
		vpn_crypt_job_run(&job);
		ck_assert_int_eq(job.result, 0);
		ck_assert_uint_eq(job.plain_len, len);
		ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_decrypt(
				     ref, NULL, NULL, ref, len + VPN_AEAD_TAG, NULL, 0, nonce, key),
				 0);
		ck_assert(!memcmp(msg + sizeof(*hdr), ref, len));
		/* tampered: body, tag, or the counter (nonce) */
		for (int t = 0; t < 3; t++) {
			crypto_aead_chacha20poly1305_ietf_encrypt(msg + sizeof(*hdr), NULL, ref,
								  len, NULL, 0, NULL, nonce, key);
			size_t at = t == 0 && len ? sizeof(*hdr) + len / 2
				    : t == 2      ? 8
						  : sizeof(*hdr) + len + (len % VPN_AEAD_TAG);
			msg[at] ^= 0x20;
			memcpy(keep, msg, job.len);
			job.result = 0;
			vpn_crypt_job_run(&job);
			ck_assert_msg(job.result == -EBADMSG, "tampered (%d) accepted at %zu", t,
				      len);
			ck_assert(!memcmp(keep, msg, job.len));
		}
		hdr->counter = htole64(counter);
	}
	vpn_crypt_forget_keys();
}
END_TEST

START_TEST(threads_setting)
{
	struct vpn_crypt *c = (struct vpn_crypt *)1;

	setenv("HVGATE_VPN_WORKERS", "1", 1);
	ck_assert_uint_eq(vpn_crypt_threads_wanted(), 1);
	ck_assert_int_eq(vpn_crypt_create(&c, vpn_crypt_threads_wanted(), true), 0);
	ck_assert_ptr_null(c); /* the engine thread alone */
	setenv("HVGATE_VPN_WORKERS", "3", 1);
	ck_assert_uint_eq(vpn_crypt_threads_wanted(), 3);
	setenv("HVGATE_VPN_WORKERS", "1000", 1);
	ck_assert_uint_eq(vpn_crypt_threads_wanted(), VPN_CRYPT_MAX_THREADS);
	setenv("HVGATE_VPN_WORKERS", "x", 1);
	ck_assert_uint_eq(vpn_crypt_threads_wanted(), 1);
	unsetenv("HVGATE_VPN_WORKERS");
	ck_assert_uint_ge(vpn_crypt_threads_wanted(), 1);
}
END_TEST

START_TEST(parallel_setting)
{
	unsetenv("HVGATE_VPN_PARALLEL");
	ck_assert(vpn_crypt_adaptive_wanted());
	setenv("HVGATE_VPN_PARALLEL", "always", 1);
	ck_assert(!vpn_crypt_adaptive_wanted());
	setenv("HVGATE_VPN_PARALLEL", "auto", 1);
	ck_assert(vpn_crypt_adaptive_wanted());
	unsetenv("HVGATE_VPN_PARALLEL");
}
END_TEST

/* One window of 100 ms: the engine thread busy busy_pct of it, mbytes
 * sealed and opened. */
static struct vpn_crypt_sample window(unsigned busy_pct, uint64_t mbytes)
{
	struct vpn_crypt_sample s = {
		.window_ns = VPN_CRYPT_WINDOW_NS,
		.busy_ns = VPN_CRYPT_WINDOW_NS * busy_pct / 100,
		.bytes = mbytes << 20,
	};
	return s;
}

static void step(struct vpn_crypt_policy *p, unsigned busy_pct, uint64_t mbytes)
{
	struct vpn_crypt_sample s = window(busy_pct, mbytes);
	vpn_crypt_policy_step(p, &s);
}

/* A trial from a busy window: pairs of windows, the engine alone moving
 * inl_mb a window, then the workers par_mb, interleaved. */
static void trial(struct vpn_crypt_policy *p, uint64_t inl_mb, uint64_t par_mb)
{
	ck_assert_int_eq(p->phase, VPN_CRYPT_TRIAL);
	for (int i = 0; i < VPN_CRYPT_TRIAL_PAIRS; i++) {
		ck_assert(!p->parallel);
		step(p, 100, inl_mb);
		ck_assert(p->parallel);
		step(p, 70, par_mb);
	}
	ck_assert_int_eq(p->phase, VPN_CRYPT_KEEP);
}

/* An engine thread that keeps up (busy under half the time) never brings
 * the workers in, however big its batches. */
START_TEST(policy_inline_while_not_busy)
{
	struct vpn_crypt_policy p = { 0 };

	for (int i = 0; i < 1000; i++) {
		step(&p, 45, 30);
		ck_assert(!p.parallel);
		ck_assert_int_eq(p.phase, VPN_CRYPT_IDLE);
	}
}
END_TEST

/* Busy, and the workers do not move 3% more than the engine alone (a
 * 2-core machine with both iperf3 ends on it and nothing else): back to the
 * engine alone, for longer each time the engine alone wins again. */
START_TEST(policy_inline_when_workers_do_not_pay)
{
	struct vpn_crypt_policy p = { 0 };
	unsigned keep = VPN_CRYPT_KEEP_WINDOWS;

	step(&p, 95, 20);
	for (int round = 0; round < 6; round++) {
		trial(&p, 100, 102); /* 2% more: the engine alone wins */
		ck_assert(!p.parallel);
		ck_assert_uint_eq(p.keep, keep);
		for (unsigned w = 0; w + 1 < keep; w++) {
			step(&p, 100, 20);
			ck_assert(!p.parallel);
		}
		step(&p, 100, 20); /* the last window: still busy, measure again */
		ck_assert_int_eq(p.phase, VPN_CRYPT_TRIAL);
		keep = keep * 2 > VPN_CRYPT_KEEP_MAX ? VPN_CRYPT_KEEP_MAX : keep * 2;
	}
	/* Slower with the workers: the engine alone, too. */
	trial(&p, 20, 15);
	ck_assert(!p.parallel);
}
END_TEST

/* The workers moving more: they are kept, and measured again after. */
START_TEST(policy_workers_when_they_pay)
{
	struct vpn_crypt_policy p = { 0 };

	step(&p, 50, 20);
	ck_assert_int_eq(p.phase, VPN_CRYPT_TRIAL);
	trial(&p, 100, 104);
	ck_assert(p.parallel);
	ck_assert_uint_eq(p.keep, VPN_CRYPT_KEEP_WINDOWS);
	for (unsigned w = 0; w + 1 < VPN_CRYPT_KEEP_WINDOWS; w++) {
		step(&p, 30, 30); /* not busy with their help: kept all the same */
		ck_assert(p.parallel);
	}
	step(&p, 30, 30);
	ck_assert_int_eq(p.phase, VPN_CRYPT_TRIAL);
	trial(&p, 20, 30);
	ck_assert(p.parallel);
	ck_assert_uint_eq(p.keep, 2 * VPN_CRYPT_KEEP_WINDOWS);
	/* The load changed: now the engine alone wins, kept for the base time. */
	for (unsigned w = 0; w < 2 * VPN_CRYPT_KEEP_WINDOWS; w++)
		step(&p, 60, 30);
	trial(&p, 30, 30);
	ck_assert(!p.parallel);
	ck_assert_uint_eq(p.keep, VPN_CRYPT_KEEP_WINDOWS);
	/* Traffic gone: idle again at the end of the time kept. */
	for (unsigned w = 0; w < VPN_CRYPT_KEEP_WINDOWS; w++)
		step(&p, 5, 0);
	ck_assert_int_eq(p.phase, VPN_CRYPT_IDLE);
	ck_assert(!p.parallel);
}
END_TEST

/* Windows of unequal length (the engine thread closes a window when its
 * loop comes round): bytes per second are compared, not bytes. */
START_TEST(policy_compares_rates)
{
	struct vpn_crypt_policy p = { 0 };
	struct vpn_crypt_sample s;

	step(&p, 100, 20);
	for (int i = 0; i < VPN_CRYPT_TRIAL_PAIRS; i++) {
		s = window(100, 20);
		s.window_ns *= 2; /* alone: 20 MB in 200 ms */
		vpn_crypt_policy_step(&p, &s);
		step(&p, 100, 15); /* workers: 15 MB in 100 ms, 1.5x the rate */
	}
	ck_assert(p.parallel);
}
END_TEST

/* A pool made adaptive starts with the engine thread alone and does a big
 * batch inline until the policy says otherwise; a pool made otherwise hands
 * it to the workers (and both give the same bytes). */
START_TEST(adaptive_pool_starts_inline)
{
	static struct t_batch a, b;
	struct vpn_crypt *ad, *al;
	struct vpn_keypair kp;
	uint64_t par, inl;
	bool in_use;

	fill_keypair(&kp);
	ck_assert_int_eq(vpn_crypt_create(&ad, T_THREADS, true), 0);
	ck_assert_int_eq(vpn_crypt_create(&al, T_THREADS, false), 0);
	queue_seals(&a, &kp, VPN_BATCH, 50);
	queue_seals(&b, &kp, VPN_BATCH, 50);
	vpn_crypt_run(ad, a.jobs, VPN_BATCH);
	vpn_crypt_run(al, b.jobs, VPN_BATCH);
	vpn_crypt_stats(ad, &par, &inl, &in_use);
	ck_assert_uint_eq(par, 0);
	ck_assert_uint_eq(inl, 1);
	ck_assert(!in_use);
	vpn_crypt_stats(al, &par, &inl, &in_use);
	ck_assert_uint_eq(par, 1);
	ck_assert_uint_eq(inl, 0);
	ck_assert(in_use);
	for (unsigned i = 0; i < VPN_BATCH; i++)
		ck_assert(!memcmp(a.wire[i], b.wire[i], a.jobs[i].len));
	/* Windows of ticks: an idle engine (blocked nearly all the time)
	 * never brings the workers in. */
	for (uint64_t t = 1; t < 30; t++)
		vpn_crypt_tick(ad, t * VPN_CRYPT_WINDOW_NS, VPN_CRYPT_WINDOW_NS - 1000);
	vpn_crypt_stats(ad, &par, &inl, &in_use);
	ck_assert(!in_use);
	vpn_crypt_destroy(ad);
	vpn_crypt_destroy(al);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_crypt");
	TCase *tc = tcase_create("workers");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, threads_match_one_thread);
	tcase_add_test(tc, every_batch_completes);
	tcase_add_test(tc, keys_wiped);
	tcase_add_test(tc, threads_setting);
	tcase_add_test(tc, aead_matches_libsodium);
	tcase_add_test(tc, parallel_setting);
	tcase_add_test(tc, policy_inline_while_not_busy);
	tcase_add_test(tc, policy_inline_when_workers_do_not_pay);
	tcase_add_test(tc, policy_workers_when_they_pay);
	tcase_add_test(tc, policy_compares_rates);
	tcase_add_test(tc, adaptive_pool_starts_inline);
	suite_add_tcase(s, tc);
	return check_main(s);
}
