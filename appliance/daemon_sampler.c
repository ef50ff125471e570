/* The loop's samples of the rule counters, dumped by a thread of their own
 * (daemon_sampler.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "appliance/daemon_sampler.h"
#include "appliance/kernel/nftio.h"

struct sampler {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done_fd;
	bool asked, busy, stop;
	/* the last sample, until sampler_take() */
	bool ready;
	int err;
	struct nftio_rule_counter *v;
	size_t n;
	double seconds;
	uint64_t tag;
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct sampler *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->asked && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop)
			break;
		s->asked = false;
		pthread_mutex_unlock(&s->mu);

		struct nftio_rule_counter *v = NULL;
		size_t n = 0;
		double start = mono();
		int err = nftio_rule_counters(NULL, &v, &n);
		double took = mono() - start;

		pthread_mutex_lock(&s->mu);
		free(s->v); /* a sample nobody took (cannot happen while busy) */
		s->v = err ? NULL : v;
		s->n = err ? 0 : n;
		s->err = err;
		s->seconds = took;
		s->ready = true;
		uint64_t one = 1;
		if (write(s->done_fd, &one, sizeof(one)) != sizeof(one))
			syslog(LOG_ERR, "counter sampler: cannot wake the loop: %m");
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int sampler_start(struct sampler **out)
{
	struct sampler *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->done_fd < 0) {
		err = -errno;
		free(s);
		return err;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	err = -pthread_create(&s->thread, NULL, run, s);
	if (err) {
		close(s->done_fd);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void sampler_stop(struct sampler *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	close(s->done_fd);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s);
}

int sampler_fd(const struct sampler *s)
{
	return s->done_fd;
}

bool sampler_busy(const struct sampler *s)
{
	return s->busy;
}

void sampler_ask(struct sampler *s, uint64_t tag)
{
	if (s->busy)
		return;
	s->busy = true;
	pthread_mutex_lock(&s->mu);
	s->tag = tag;
	s->asked = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int sampler_take(struct sampler *s, struct nftio_rule_counter **v, size_t *n, double *seconds,
		 uint64_t *tag)
{
	uint64_t count;
	int err = -EAGAIN;

	*v = NULL;
	*n = 0;
	if (read(s->done_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		syslog(LOG_ERR, "counter sampler: %m");
	pthread_mutex_lock(&s->mu);
	if (s->ready) {
		err = s->err;
		*v = s->v;
		*n = s->n;
		*seconds = s->seconds;
		*tag = s->tag;
		s->v = NULL;
		s->n = 0;
		s->ready = false;
		s->busy = false;
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}
