/* Prometheus metrics of hvgated over HTTP (libmicrohttpd): GET /metrics
 * answers with text format 0.0.4, written by a callback of the daemon.
 * The HTTP server runs inside the daemon's poll loop (no thread): poll
 * metrics_fd() for input and call metrics_run().
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_METRICS_H
#define HVGATE_APPLIANCE_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef void (*metrics_writer)(void *ctx, FILE *out);

struct metrics;

int metrics_start(const char *addr, uint16_t port, metrics_writer w, void *ctx, struct metrics **out);
int metrics_fd(const struct metrics *m);
void metrics_run(struct metrics *m);
void metrics_stop(struct metrics *m);

/* Writes a label value with Prometheus escaping (\\, \", \n). */
void metrics_label(FILE *out, const char *value);

#endif
