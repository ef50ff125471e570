/* Log events of hvgated: packets of rules with `log` arrive on an NFLOG
 * group (libnetfilter_log); each becomes one JSON line
 *   {"time":..., "rule":"FILE:LINE:HASH", "prefix":..., "tenant":..., "in":"eth0",
 *    "out":"tap1", "family":"ip", "proto":"tcp", "src":..., "dst":...,
 *    "sport":..., "dport":..., "verdict":"pass|block|reject"}
 * in the event file and in syslog, at most `rate` a second with bursts of
 * `burst` (a token bucket); events beyond it are counted as dropped.
 * The last NFLOGD_RECENT events are kept for `show log`.
 *
 * The NFLOG prefix carries the rule id; the verdict and tenant are looked
 * up through a callback the daemon provides (it knows the running policy).
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_NFLOG_H
#define HVGATE_APPLIANCE_NFLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/json.h"

#define NFLOGD_RECENT 200

/* Maps a log prefix (the rule id, or "default:FILE:LINE" of a default:
 * policy/lower.c makes them unique per rule) to the rule id, its verdict,
 * tenant and the rule's own `log "prefix"`; any may stay NULL. */
typedef void (*nflogd_lookup)(void *ctx, const char *prefix, const char **rule_id,
			      const char **verdict, const char **tenant, const char **log_prefix);

struct nflogd;

int nflogd_open(int group, const char *file, bool use_syslog, uint32_t rate, uint32_t burst,
		nflogd_lookup lookup, void *ctx, struct nflogd **out);
int nflogd_fd(const struct nflogd *l);
/* Reads every pending packet (call when nflogd_fd() is readable). */
void nflogd_read(struct nflogd *l);
/* An event from elsewhere in the daemon (the fast path): one JSON object,
 * rate limited, remembered and written like the packet events. */
void nflogd_emit(struct nflogd *l, const char *json_object);
/* The events' time stamp: UTC with milliseconds, "2026-11-24T18:00:00.000Z". */
void nflogd_timestamp(char *out, size_t n);
/* An event's "family", "proto", "src" and "dst" members (family AF_INET or
 * AF_INET6; addresses in network order), as the packet events have them. */
void nflogd_flow_json(struct json_buf *b, int family, uint8_t proto, const void *src,
		      const void *dst);

/* The newest events, oldest first, as a JSON array. */
void nflogd_recent(const struct nflogd *l, size_t max, struct json_buf *out);
void nflogd_counts(const struct nflogd *l, uint64_t *events, uint64_t *written, uint64_t *dropped);
void nflogd_close(struct nflogd *l);

/* A token bucket: `rate` tokens a second, at most `burst`. Exposed for tests. */
struct nflogd_bucket {
	double tokens, rate, burst;
	double last; /* seconds, monotonic */
};
void nflogd_bucket_init(struct nflogd_bucket *b, uint32_t rate, uint32_t burst, double now);
bool nflogd_bucket_take(struct nflogd_bucket *b, double now);

#endif
