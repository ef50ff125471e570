/* What the daemon's files share (appliance/ only; the public entry point is
 * daemon.h): the daemon's state and the functions one of its files calls
 * in another. The files by job:
 *   daemon.c          poll loop, lifecycle (start, reload, stop), signals,
 *                     the counters sampled for "last hit", VPN and fast-path sync
 *   daemon_cmd.c      the control command table, permissions, the candidate's
 *                     lock and the commands that change something
 *   daemon_view.c     read-only views: status, show, history, blocked
 *   daemon_metrics.c  the metrics text (Prometheus text format)
 *   daemon_events.c   the rule index the events are named by (NFLOG lookups)
 *                     and the fast path's events
 * Everything here runs on the daemon's one loop thread.
 */
#ifndef HVGATE_APPLIANCE_DAEMON_INTERNAL_H
#define HVGATE_APPLIANCE_DAEMON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "appliance/config.h"
#include "appliance/control.h"
#include "appliance/fastpath/fastpath.h"
#include "appliance/json.h"
#include "appliance/kernel/linkwatch.h"
#include "appliance/kernel/nflog.h"
#include "appliance/kernel/nftio.h"
#include "appliance/metrics.h"
#include "appliance/txn.h"
#include "appliance/vpnmgr.h"
#include "policy/hmap.h"

#define DAEMON_VERSION     "0.1"
#define DAEMON_MAX_POLLFDS (CTL_MAX_CLIENTS + 8)

/* As long as the comment policy/lower.c makes for a logged default
 * ("default:FILE:LINE"), truncated alike. */
#define DAEMON_DEFAULT_ID_LEN 128

/* The running policy's rules and logged defaults by the names events give
 * them (daemon_events.c): rules by id and by kernel id, logged defaults by
 * "default:FILE:LINE". Built for one generation of the running policy
 * (txn.running_gen) and built again when it moves, so an event costs a
 * hash lookup, not a pass over the rules. */
struct daemon_rule_index {
	bool built;
	bool failed;            /* the last build ran out of memory (said once per gen) */
	uint64_t gen;           /* the txn.running_gen it was built (or tried) for */
	const struct policy *p; /* NULL: nothing runs */
	struct policy_hmap by_id, by_kernel_id, defaults;
	char (*default_ids)[DAEMON_DEFAULT_ID_LEN]; /* per default of p */
};

struct rule_hit {
	char id[128];
	uint64_t packets, bytes;
	time_t last_hit; /* 0: never seen moving */
};

struct daemon {
	struct conf conf;
	struct txn txn;
	struct ctl_server ctl;
	struct nflogd *log;
	struct metrics *metrics;
	int sigfd;
	bool stop;
	time_t started;
	struct rule_hit *hits;
	size_t n_hits;
	double next_sample; /* monotonic seconds */
	/* The loop's samples of the counters are dumped by a thread of their
	 * own (daemon.c), so that a dump never holds a request up. */
	struct sampler *sampler;
	/* Samples taken on the loop (show rules, metrics): a thread's sample
	 * asked for before the newest of them is older, and dropped. */
	uint64_t samples_taken;
	uint64_t errors;
	struct vpnmgr *vpn;
	struct linkwatch *links;        /* NULL: link events not watched */
	struct fastpath *fp;            /* NULL: inspection off */
	struct daemon_rule_index rules; /* for the events */
	/* The running policy's generation (txn.running_gen) the fast path last
	 * got rules for. */
	uint64_t fp_gen;
	bool reroute; /* a segment's interface changed: routes again */
	/* The running policy's generation (txn.running_gen) vpnmgr last applied. */
	uint64_t vpn_gen;
	/* The configured source as compiled at the last start or reload:
	 * `status` says when it differs from what runs. */
	bool source_compiles;
	char source_hash[TXN_HASH_HEX];
	/* The candidate's lock (`configure` in hvgate shell): held by a client
	 * process, identified by its pid (SO_PEERCRED) over any number of
	 * connections, until it unlocks or exits. 0: not held. */
	pid_t lock_pid;
	uid_t lock_uid;
	time_t lock_since;
	unsigned long long lock_start; /* the holder's start time (history_lock) */
};

/* daemon_cmd.c: the configure lock, as `status` shows it ("lock"), and
 * read back from the state directory at start. */
void daemon_lock_json(const struct daemon *d, struct json_buf *r);
void daemon_lock_restore(struct daemon *d);

/* daemon.c */
bool daemon_source_differs(const struct daemon *d);
/* The sampled counter of rule id, or NULL (d->hits is sorted by id). */
struct rule_hit *daemon_hit_find(struct daemon *d, const char *id);
/* Reads the rule counters and notes when each last moved (d->hits). */
void daemon_sample_counters(struct daemon *d);
/* Brings the VPNs in step with the running policy when it changed. */
void daemon_sync_vpn(struct daemon *d);
/* Re-reads the configuration and the policy; on any error nothing changes
 * (0, or a negative errno with the reason in err). */
int daemon_reload(struct daemon *d, char *err, size_t errsz);

/* daemon_cmd.c */
/* A reply object with "ok": true, left open for the caller to fill and end. */
void daemon_reply_ok_begin(struct json_buf *r);
void daemon_reply_err(struct json_buf *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int daemon_range_prefix_len(const struct nftio_set_elem *e);
const char *daemon_block_scope(const struct daemon *d, const struct nftio_set_elem *e, char *buf,
			       size_t size);
/* The control socket's request handler (ctl_listen): one request, one reply. */
void daemon_handle(void *ctx, const struct ctl_peer *peer, const struct json *req,
		   struct json_buf *r);

/* daemon_view.c */
void daemon_policy_summary(struct json_buf *r, const char *key, const struct txn_policy *p,
			   unsigned rev);
void daemon_cmd_status(struct daemon *d, struct json_buf *r);
const char *daemon_action_name(enum policy_action a);
const char *daemon_implicit_kind(const struct policy *p, const char *id);
/* The tenant of an implicit row (a tenant's default, a segment's
 * anti-spoofing), "" for a global one. */
const char *daemon_implicit_tenant(const struct policy *p, const char *id);
bool daemon_parse_addr(const char *s, int *family, uint8_t addr[16]);
const struct txn_policy *daemon_policy_of_revision(struct daemon *d, const struct json *req,
						   struct json_buf *r, struct txn_policy **owned);
void daemon_cmd_show(struct daemon *d, const struct json *req, struct json_buf *r);
void daemon_cmd_history(struct daemon *d, struct json_buf *r);
void daemon_cmd_show_blocked(struct daemon *d, struct json_buf *r);

/* daemon_events.c */
/* Builds d->rules for the running policy if it changed (start, reload,
 * commit, revert); the lookup below calls it too. When memory runs out the
 * lookups name nothing until a build succeeds. */
void daemon_rule_index_sync(struct daemon *d);
void daemon_rule_index_free(struct daemon_rule_index *x);
/* The NFLOG reader's lookup (nflogd_open): a log prefix to the running
 * policy's rule id, verdict, tenant and log prefix; fields it cannot name stay. */
void daemon_log_lookup(void *ctx, const char *prefix, const char **rule_id, const char **verdict,
		       const char **tenant, const char **log_prefix);
/* Drains the fast path's decisions into the event log (or syslog). */
void daemon_read_fastpath_events(struct daemon *d);

/* daemon_metrics.c */
/* The metrics server's writer (metrics_start): every metric, as text. */
void daemon_write_metrics(void *ctx, FILE *out);

#endif
