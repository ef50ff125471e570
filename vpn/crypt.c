/* The data path's AEAD work spread over threads (one per online CPU, the
 * engine thread being one of them), the way the kernel module spreads it
 * over CPUs. The engine thread hands a batch of jobs over and takes its own
 * share; it returns only when every job of the batch is done, so the
 * packets leave in the order they were queued: per-peer order (and the
 * order of counters on the wire) is that of the single-thread path, and the
 * replay window, timers and everything else stay on the engine thread.
 * Workers touch nothing but the jobs. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

struct vpn_crypt {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct vpn_crypt_job *jobs; /* the batch being run; NULL: none */
	unsigned int n_jobs, next, finished;
	bool stop;
	unsigned int n_threads;
	pthread_t threads[VPN_CRYPT_MAX_THREADS];
};

void vpn_crypt_job_run(struct vpn_crypt_job *job)
{
	struct vpn_msg_data *hdr = (struct vpn_msg_data *)job->msg;
	uint8_t *body = job->msg + sizeof(*hdr);
	unsigned long long mlen;
	uint8_t nonce[12];

	vpn_noise_aead_nonce(nonce, le64toh(hdr->counter));
	if (job->seal) {
		crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, body,
		                                          job->len - sizeof(*hdr) - VPN_AEAD_TAG,
		                                          NULL, 0, NULL, nonce, job->key);
		job->result = 0;
		return;
	}
	/* In place: libsodium checks the tag before it writes anything. */
	if (job->len < VPN_MSG_DATA_MIN_LEN ||
	    crypto_aead_chacha20poly1305_ietf_decrypt(
	        body, &mlen, NULL, body, job->len - sizeof(*hdr), NULL, 0, nonce, job->key)) {
		job->result = -EBADMSG;
		return;
	}
	job->plain_len = (size_t)mlen;
	job->result = 0;
}

/* Takes jobs of the current batch until none is left; lock held on entry
 * and on return. */
static void take_jobs(struct vpn_crypt *c)
{
	while (c->jobs && c->next < c->n_jobs) {
		struct vpn_crypt_job *job = &c->jobs[c->next++];
		pthread_mutex_unlock(&c->lock);
		vpn_crypt_job_run(job);
		pthread_mutex_lock(&c->lock);
		/* Atomic as well as locked: the engine thread may poll it. */
		if (__atomic_add_fetch(&c->finished, 1, __ATOMIC_RELEASE) == c->n_jobs)
			pthread_cond_signal(&c->done);
	}
}

static void *worker(void *arg)
{
	struct vpn_crypt *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		take_jobs(c);
		if (!c->stop)
			pthread_cond_wait(&c->work, &c->lock);
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

int vpn_crypt_create(struct vpn_crypt **out, unsigned int threads)
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
	if (!c || !c->n_threads || n < 2 || bytes < VPN_CRYPT_PARALLEL_MIN_BYTES) {
		for (unsigned int i = 0; i < n; i++)
			vpn_crypt_job_run(&jobs[i]);
	} else {
		pthread_mutex_lock(&c->lock);
		c->jobs = jobs;
		c->n_jobs = n;
		c->next = 0;
		c->finished = 0;
		pthread_cond_broadcast(&c->work);
		take_jobs(c);
		/* Left: at most one job per worker, already under way and about
		 * a microsecond long; polling for it is cheaper than sleeping. */
		pthread_mutex_unlock(&c->lock);
		for (unsigned int spin = 0;
		     spin < VPN_CRYPT_SPIN && __atomic_load_n(&c->finished, __ATOMIC_ACQUIRE) < n;
		     spin++)
			cpu_relax();
		pthread_mutex_lock(&c->lock);
		while (c->finished < c->n_jobs)
			pthread_cond_wait(&c->done, &c->lock);
		c->jobs = NULL;
		c->n_jobs = 0;
		pthread_mutex_unlock(&c->lock);
	}
	/* The jobs' copies of session keys live in ordinary memory. */
	for (unsigned int i = 0; i < n; i++)
		sodium_memzero(jobs[i].key, sizeof(jobs[i].key));
}
