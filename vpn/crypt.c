/* The data path's AEAD work spread over threads (one per online CPU, the
 * engine thread being one of them), the way the kernel module spreads it
 * over CPUs. The engine thread hands a batch of jobs over and takes its own
 * share; it returns only when every job of the batch is done, so the
 * packets leave in the order they were queued: per-peer order (and the
 * order of counters on the wire) is that of the single-thread path, and the
 * replay window, timers and everything else stay on the engine thread.
 * Workers touch nothing but the jobs. Whether a batch goes to them at all
 * is measured as the tunnel runs (vpn_crypt_policy_step, internal.h). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <limits.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "vpn/internal.h"

/* Polls before the engine thread sleeps waiting for the last jobs: some
 * tens of microseconds with the x86 pause instruction. */
#define VPN_CRYPT_SPIN 1000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Jobs are claimed without the lock: claim holds the batch's number in its
 * high 32 bits and the next unclaimed job in the low 32, taken with a
 * compare-and-swap that fails once the engine thread has moved on to
 * another batch, so a late worker never runs a job of the wrong batch. The
 * lock is taken once per batch by each side, to sleep and to wake. */
struct vpn_crypt {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct vpn_crypt_job *jobs; /* the batch being run (lock) */
	unsigned int n_jobs;        /* (lock) */
	uint32_t batch;             /* its number (lock) */
	uint64_t claim;             /* atomic: batch << 32 | next job */
	unsigned int finished;      /* atomic: jobs of the batch done */
	unsigned int sleeping;      /* workers waiting on work (lock) */
	bool engine_waiting;        /* the engine thread waits on done (lock) */
	bool stop;
	unsigned int n_threads;
	pthread_t threads[VPN_CRYPT_MAX_THREADS];
	/* The policy and its window (the engine thread's alone). */
	bool adaptive;
	struct vpn_crypt_policy policy;
	uint64_t win_start_ns; /* 0: no window yet */
	uint64_t win_waited_ns, win_bytes;
	uint64_t n_parallel, n_inline;
};

/* ChaCha20-Poly1305 (RFC 8439 §2.8) put together from OpenSSL's ChaCha20,
 * which has AVX2 and AVX-512 code and runs about twice as fast here as
 * libsodium's, and libsodium's Poly1305: about a third less CPU per
 * packet than libsodium's AEAD. No additional data: the MAC covers the
 * ciphertext, its zero padding to 16 bytes, 8 zero bytes (the length of
 * the additional data) and the ciphertext's length, both little endian.
 * Each thread has its own cipher context; the key stays in it only until
 * vpn_crypt_forget_keys. Without a context (allocation failed) libsodium's
 * AEAD does the work: the bytes are the same. */
static __thread EVP_CIPHER_CTX *tls_chacha;
static pthread_key_t chacha_key;
static pthread_once_t chacha_once = PTHREAD_ONCE_INIT;
static bool chacha_key_ok;

static void chacha_free(void *ctx)
{
	EVP_CIPHER_CTX_free(ctx); /* cleanses */
}

static void chacha_key_make(void)
{
	chacha_key_ok = pthread_key_create(&chacha_key, chacha_free) == 0;
}

static EVP_CIPHER_CTX *chacha_ctx(void)
{
	if (tls_chacha)
		return tls_chacha;
	pthread_once(&chacha_once, chacha_key_make);
	if (!chacha_key_ok)
		return NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return NULL;
	if (EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, NULL, NULL) != 1 ||
	    pthread_setspecific(chacha_key, ctx)) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	tls_chacha = ctx;
	return ctx;
}

static bool chacha_xor(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	int outl;

	return len <= INT_MAX && EVP_EncryptUpdate(ctx, out, &outl, in, (int)len) == 1 &&
	       (size_t)outl == len;
}

/* Starts the key stream at block 0 and takes the one-time Poly1305 key
 * from it (§2.6); the stream goes on at block 1. */
static bool chacha_begin(EVP_CIPHER_CTX *ctx, crypto_onetimeauth_poly1305_state *mac,
			 const uint8_t key[VPN_KEY_LEN], uint64_t counter)
{
	static const uint8_t zero[64];
	uint8_t iv[16] = { 0 }, block[64];
	bool ok;

	/* OpenSSL's IV: the 32-bit block counter, then the 96-bit nonce
	 * (4 zero bytes and the message counter, little endian, §5.4.6). */
	vpn_noise_aead_nonce(iv + 4, counter);
	ok = EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) == 1 &&
	     chacha_xor(ctx, block, zero, sizeof(block));
	if (ok)
		crypto_onetimeauth_poly1305_init(mac, block);
	sodium_memzero(block, sizeof(block));
	return ok;
}

static void poly_finish(crypto_onetimeauth_poly1305_state *mac, const uint8_t *ct, size_t len,
			uint8_t tag[16])
{
	static const uint8_t pad[16];
	uint8_t lens[16];
	uint64_t l = htole64((uint64_t)len), zero = 0;

	crypto_onetimeauth_poly1305_update(mac, ct, len);
	if (len % 16)
		crypto_onetimeauth_poly1305_update(mac, pad, 16 - len % 16);
	memcpy(lens, &zero, 8);
	memcpy(lens + 8, &l, 8);
	crypto_onetimeauth_poly1305_update(mac, lens, sizeof(lens));
	crypto_onetimeauth_poly1305_final(mac, tag);
	sodium_memzero(mac, sizeof(*mac));
}

/* 0, or -1 if OpenSSL failed (the caller falls back). */
static int fast_seal(EVP_CIPHER_CTX *ctx, const uint8_t *key, uint64_t counter, uint8_t *body,
		     size_t len)
{
	crypto_onetimeauth_poly1305_state mac;

	if (!chacha_begin(ctx, &mac, key, counter))
		return -1;
	if (!chacha_xor(ctx, body, body, len)) {
		sodium_memzero(&mac, sizeof(mac));
		return -1;
	}
	poly_finish(&mac, body, len, body + len);
	return 0;
}

/* 0, -EBADMSG (nothing written), or -1 if OpenSSL failed. */
static int fast_open(EVP_CIPHER_CTX *ctx, const uint8_t *key, uint64_t counter, uint8_t *body,
		     size_t len)
{
	crypto_onetimeauth_poly1305_state mac;
	uint8_t tag[16];
	size_t clen = len - VPN_AEAD_TAG;

	if (!chacha_begin(ctx, &mac, key, counter))
		return -1;
	poly_finish(&mac, body, clen, tag);
	/* Authentic first; only then is anything decrypted (in place). */
	if (crypto_verify_16(tag, body + clen))
		return -EBADMSG;
	return chacha_xor(ctx, body, body, clen) ? 0 : -1;
}

void vpn_crypt_forget_keys(void)
{
	static const uint8_t zero_key[VPN_KEY_LEN], zero[64];
	uint8_t junk[64];

	if (!tls_chacha)
		return;
	/* A zero key over the last session key, and its key stream over the
	 * last block's. */
	if (EVP_EncryptInit_ex(tls_chacha, NULL, NULL, zero_key, zero) == 1)
		chacha_xor(tls_chacha, junk, zero, sizeof(junk));
}

void vpn_crypt_job_run(struct vpn_crypt_job *job)
{
	struct vpn_msg_data *hdr = (struct vpn_msg_data *)job->msg;
	uint8_t *body = job->msg + sizeof(*hdr);
	uint64_t counter = le64toh(hdr->counter);
	EVP_CIPHER_CTX *ctx = chacha_ctx();
	unsigned long long mlen;
	uint8_t nonce[12];
	int r;

	if (job->seal) {
		size_t plen = job->len - sizeof(*hdr) - VPN_AEAD_TAG;
		if (!ctx || fast_seal(ctx, job->key, counter, body, plen)) {
			vpn_noise_aead_nonce(nonce, counter);
			crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, body, plen, NULL, 0,
								  NULL, nonce, job->key);
		}
		job->result = 0;
		return;
	}
	if (job->len < VPN_MSG_DATA_MIN_LEN) {
		job->result = -EBADMSG;
		return;
	}
	r = ctx ? fast_open(ctx, job->key, counter, body, job->len - sizeof(*hdr)) : -1;
	if (r == -1) {
		/* In place: libsodium checks the tag before it writes anything. */
		vpn_noise_aead_nonce(nonce, counter);
		r = crypto_aead_chacha20poly1305_ietf_decrypt(
			body, &mlen, NULL, body, job->len - sizeof(*hdr), NULL, 0, nonce, job->key)
			? -EBADMSG
			: 0;
	}
	if (r) {
		job->result = -EBADMSG;
		return;
	}
	job->plain_len = job->len - sizeof(*hdr) - VPN_AEAD_TAG;
	job->result = 0;
}

/* Runs jobs of batch number `batch` until none is left unclaimed. */
static void take_jobs(struct vpn_crypt *c, struct vpn_crypt_job *jobs, uint32_t batch,
		      unsigned int n)
{
	uint64_t v = __atomic_load_n(&c->claim, __ATOMIC_ACQUIRE);
	bool ran = false;

	for (;;) {
		if ((uint32_t)(v >> 32) != batch || (uint32_t)v >= n)
			break;
		if (!__atomic_compare_exchange_n(&c->claim, &v, v + 1, true, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue; /* v now holds the current value */
		vpn_crypt_job_run(&jobs[(uint32_t)v]);
		ran = true;
		if (__atomic_add_fetch(&c->finished, 1, __ATOMIC_ACQ_REL) == n) {
			/* The last job: wake the engine thread if it sleeps. */
			pthread_mutex_lock(&c->lock);
			if (c->engine_waiting)
				pthread_cond_signal(&c->done);
			pthread_mutex_unlock(&c->lock);
		}
		v = __atomic_load_n(&c->claim, __ATOMIC_ACQUIRE);
	}
	if (ran)
		vpn_crypt_forget_keys();
}

static void *worker(void *arg)
{
	struct vpn_crypt *c = arg;
	uint32_t seen = 0;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		if (c->batch != seen) {
			struct vpn_crypt_job *jobs = c->jobs;
			unsigned int n = c->n_jobs;
			seen = c->batch;
			pthread_mutex_unlock(&c->lock);
			take_jobs(c, jobs, seen, n);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		c->sleeping++;
		pthread_cond_wait(&c->work, &c->lock);
		c->sleeping--;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

unsigned int vpn_crypt_threads_wanted(void)
{
	const char *s = getenv("HVGATE_VPN_WORKERS");
	long n;

	if (s && *s) {
		char *end;
		n = strtol(s, &end, 10);
		if (*end || n < 1)
			n = 1;
	} else {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
	}
	return n > VPN_CRYPT_MAX_THREADS ? VPN_CRYPT_MAX_THREADS : (unsigned int)n;
}

bool vpn_crypt_adaptive_wanted(void)
{
	const char *s = getenv("HVGATE_VPN_PARALLEL");

	return !(s && !strcmp(s, "always"));
}

static void keep_winner(struct vpn_crypt_policy *p, bool parallel)
{
	if (p->keep && parallel == p->last_winner_parallel)
		p->keep = p->keep * 2 > VPN_CRYPT_KEEP_MAX ? VPN_CRYPT_KEEP_MAX : p->keep * 2;
	else
		p->keep = VPN_CRYPT_KEEP_WINDOWS;
	p->last_winner_parallel = parallel;
	p->parallel = parallel;
	p->phase = VPN_CRYPT_KEEP;
	p->windows = 0;
}

static void start_trial(struct vpn_crypt_policy *p)
{
	p->parallel = false;
	p->phase = VPN_CRYPT_TRIAL;
	p->windows = 0;
	p->bytes[0] = p->bytes[1] = p->ns[0] = p->ns[1] = 0;
}

void vpn_crypt_policy_step(struct vpn_crypt_policy *p, const struct vpn_crypt_sample *s)
{
	bool busy = s->busy_ns * 2 >= s->window_ns;

	if (!s->window_ns)
		return;
	switch (p->phase) {
	case VPN_CRYPT_IDLE:
		if (busy)
			start_trial(p);
		return;
	case VPN_CRYPT_TRIAL:
		p->bytes[p->parallel] += s->bytes;
		p->ns[p->parallel] += s->window_ns;
		if (++p->windows < 2 * VPN_CRYPT_TRIAL_PAIRS) {
			p->parallel = !p->parallel;
			return;
		}
		/* bytes/ns with the workers >= 1.03 x alone */
		keep_winner(p,
			    p->bytes[1] > 0 && (double)p->bytes[1] * (double)p->ns[0] >=
						   1.03 * (double)p->bytes[0] * (double)p->ns[1]);
		return;
	case VPN_CRYPT_KEEP:
		if (++p->windows < p->keep)
			return;
		if (busy || p->parallel) {
			start_trial(p);
		} else {
			p->phase = VPN_CRYPT_IDLE;
			p->keep = 0;
		}
		return;
	}
}

void vpn_crypt_tick(struct vpn_crypt *c, uint64_t now_ns, uint64_t waited_ns)
{
	struct vpn_crypt_sample s;

	if (!c || !c->adaptive)
		return;
	c->win_waited_ns += waited_ns;
	if (c->win_start_ns && now_ns - c->win_start_ns < VPN_CRYPT_WINDOW_NS)
		return;
	if (c->win_start_ns) {
		s.window_ns = now_ns - c->win_start_ns;
		s.busy_ns = c->win_waited_ns < s.window_ns ? s.window_ns - c->win_waited_ns : 0;
		s.bytes = c->win_bytes;
		vpn_crypt_policy_step(&c->policy, &s);
	}
	c->win_start_ns = now_ns;
	c->win_waited_ns = 0;
	c->win_bytes = 0;
}

void vpn_crypt_stats(const struct vpn_crypt *c, uint64_t *parallel, uint64_t *inline_batches,
		     bool *in_use)
{
	*parallel = c ? c->n_parallel : 0;
	*inline_batches = c ? c->n_inline : 0;
	*in_use = c && c->n_threads && c->policy.parallel;
}

int vpn_crypt_create(struct vpn_crypt **out, unsigned int threads, bool adaptive)
{
	struct vpn_crypt *c;

	*out = NULL;
	if (threads <= 1)
		return 0; /* the engine thread alone: no pool */
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, NULL);
	c->adaptive = adaptive;
	c->policy.parallel = !adaptive; /* adaptive: inline until measured */
	/* The engine thread is one of the threads. */
	for (unsigned int i = 0; i + 1 < threads; i++) {
		if (pthread_create(&c->threads[i], NULL, worker, c))
			break;
		c->n_threads++;
	}
	*out = c;
	return 0;
}

void vpn_crypt_destroy(struct vpn_crypt *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (unsigned int i = 0; i < c->n_threads; i++)
		pthread_join(c->threads[i], NULL);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void vpn_crypt_run(struct vpn_crypt *c, struct vpn_crypt_job *jobs, unsigned int n)
{
	size_t bytes = 0;

	if (!n)
		return;
	for (unsigned int i = 0; i < n; i++)
		bytes += jobs[i].len;
	if (c)
		c->win_bytes += bytes;
	if (!c || !c->n_threads || !c->policy.parallel || n < 2 ||
	    bytes < VPN_CRYPT_PARALLEL_MIN_BYTES) {
		if (c)
			c->n_inline++;
		for (unsigned int i = 0; i < n; i++)
			vpn_crypt_job_run(&jobs[i]);
	} else {
		uint32_t batch;

		c->n_parallel++;
		pthread_mutex_lock(&c->lock);
		batch = ++c->batch;
		if (!batch)
			batch = ++c->batch; /* 0 is what a new worker has seen */
		c->jobs = jobs;
		c->n_jobs = n;
		__atomic_store_n(&c->finished, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&c->claim, (uint64_t)batch << 32, __ATOMIC_RELEASE);
		if (c->sleeping)
			pthread_cond_broadcast(&c->work);
		pthread_mutex_unlock(&c->lock);
		take_jobs(c, jobs, batch, n);
		/* Left: at most one job per worker, already under way and about
		 * a microsecond long; polling for it is cheaper than sleeping. */
		for (unsigned int spin = 0;
		     spin < VPN_CRYPT_SPIN && __atomic_load_n(&c->finished, __ATOMIC_ACQUIRE) < n;
		     spin++)
			cpu_relax();
		if (__atomic_load_n(&c->finished, __ATOMIC_ACQUIRE) < n) {
			pthread_mutex_lock(&c->lock);
			c->engine_waiting = true;
			while (__atomic_load_n(&c->finished, __ATOMIC_ACQUIRE) < n)
				pthread_cond_wait(&c->done, &c->lock);
			c->engine_waiting = false;
			pthread_mutex_unlock(&c->lock);
		}
	}
	/* The jobs' copies of session keys live in ordinary memory. */
	vpn_crypt_forget_keys();
	for (unsigned int i = 0; i < n; i++)
		sodium_memzero(jobs[i].key, sizeof(jobs[i].key));
}
