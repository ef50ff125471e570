/* Prometheus metrics of hvgated over HTTP (libmicrohttpd): GET /metrics
 * answers with text format 0.0.4, written by a callback of the daemon.
 * The HTTP server runs inside the daemon's poll loop (no thread): poll
 * metrics_fd() for input and call metrics_run().
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_METRICS_H
#define HVGATE_APPLIANCE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*metrics_writer)(void *ctx, FILE *out);

struct metrics;

int metrics_start(const char *addr, uint16_t port, metrics_writer w, void *ctx,
		  struct metrics **out);
int metrics_fd(const struct metrics *m);
void metrics_run(struct metrics *m);
void metrics_stop(struct metrics *m);

/* Writes a label value with Prometheus escaping (\\, \", \n). */
void metrics_label(FILE *out, const char *value);

/* One series of a counter family with one label: the label's value and the
 * count. */
struct metrics_count {
	const char *value;
	unsigned long long count;
};

/* Writes a counter family with one label: its HELP and TYPE lines, then
 * name{label="value"} count for each of the n series (label values written
 * as given: hvgated's own constants, nothing to escape). */
void metrics_counters(FILE *out, const char *name, const char *help, const char *label,
		      const struct metrics_count *series, size_t n);

#endif
