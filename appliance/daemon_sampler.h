/* daemon_sampler: the loop's samples of the rule counters ("last hit",
 * metrics), dumped by a thread of its own. A dump of a large ruleset takes
 * a quarter second and more; on the loop it held up every request that came
 * meanwhile (a `commit` right after a `load` waited for the sample the long
 * `load` had made due). The loop asks (sampler_ask()), polls sampler_fd()
 * and takes the result (sampler_take()); at most one dump is under way.
 *
 * The thread only dumps (its own netlink socket, in the daemon's network
 * namespace, which it inherits); d->hits stays the loop's.
 * Error convention: 0 or negative errno.
 */
#ifndef HVGATE_APPLIANCE_DAEMON_SAMPLER_H
#define HVGATE_APPLIANCE_DAEMON_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/kernel/nftio.h"

struct sampler;

/* Starts the thread (blocked signals are inherited: start it after the
 * loop's signal mask is set). */
int sampler_start(struct sampler **out);
/* Waits for a dump under way, then stops the thread. NULL is allowed. */
void sampler_stop(struct sampler *s);
/* Readable when a sample is ready. */
int sampler_fd(const struct sampler *s);
/* Whether a dump is asked for or under way and not yet taken. */
bool sampler_busy(const struct sampler *s);
/* Asks for a dump (nothing if one is under way); `tag` comes back with it. */
void sampler_ask(struct sampler *s, uint64_t tag);
/* The finished dump: 0 and the counters (the caller frees *v), the dump's
 * error, or -EAGAIN if none is ready. */
int sampler_take(struct sampler *s, struct nftio_rule_counter **v, size_t *n, double *seconds,
		 uint64_t *tag);

#endif
