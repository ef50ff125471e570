/* The daemon: poll loop and the control commands (daemon.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "appliance/config.h"
#include "appliance/kernel/conntrack.h"
#include "appliance/control.h"
#include "appliance/daemon.h"
#include "appliance/duration.h"
#include "appliance/fastpath/fastpath.h"
#include "appliance/gitsrc.h"
#include "appliance/kernel/linkwatch.h"
#include "appliance/metrics.h"
#include "appliance/kernel/nflog.h"
#include "appliance/kernel/nftio.h"
#include "appliance/kernel/nftio_internal.h"
#include "appliance/peerfs.h"
#include "appliance/kernel/route.h"
#include "appliance/txn.h"
#include "appliance/txn_delta.h"
#include "appliance/vpnmgr.h"
#include "policy/lower.h"
#include "policy/tenant.h"

#define DAEMON_VERSION "0.1"
#define DAEMON_MAX_POLLFDS (CTL_MAX_CLIENTS + 8)

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
	uint64_t errors;
	struct vpnmgr *vpn;
	struct linkwatch *links; /* NULL: link events not watched */
	struct fastpath *fp;	 /* NULL: inspection off */
	/* What the fast path last got rules for (as vpn_policy, vpn_key). */
	const struct txn_policy *fp_policy;
	uint64_t fp_key[3];
	bool reroute;		 /* a segment's interface changed: routes again */
	/* What vpnmgr last applied: the running policy and the counters that
	 * move with every change of it (a freed policy's address may return). */
	const struct txn_policy *vpn_policy;
	uint64_t vpn_key[3];
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
};

/* Does the configured source (as last read) differ from what runs? */
static bool source_differs(const struct daemon *d)
{
	return !d->source_compiles || !d->txn.running || strcmp(d->source_hash, d->txn.running->hash);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Counters and last hit. */

static int cmp_hit(const void *key, const void *elem)
{
	return strcmp(key, ((const struct rule_hit *)elem)->id);
}

/* d->hits is sorted by id (it is built from the sorted counters). */
static struct rule_hit *hit_find(struct daemon *d, const char *id)
{
	return d->n_hits ? bsearch(id, d->hits, d->n_hits, sizeof(*d->hits), cmp_hit) : NULL;
}

/* Reads the counters and notes the time each one was last seen moving. */
static void sample_counters(struct daemon *d)
{
	struct nftio_rule_counter *v;
	struct rule_hit *hits;
	time_t now = time(NULL);
	size_t n;

	if (nftio_rule_counters(NULL, &v, &n))
		return;
	hits = calloc(n ? n : 1, sizeof(*hits));
	if (!hits) {
		free(v);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rule_hit *old = hit_find(d, v[i].comment);
		struct rule_hit *h = &hits[i];
		snprintf(h->id, sizeof(h->id), "%s", v[i].comment);
		h->packets = v[i].packets;
		h->bytes = v[i].bytes;
		if (old)
			h->last_hit = v[i].packets != old->packets ? now : old->last_hit;
		else if (v[i].packets)
			h->last_hit = now; /* moved before we first looked */
	}
	free(v);
	free(d->hits);
	d->hits = hits;
	d->n_hits = n;
}

/* Replies. */

static void reply_ok_begin(struct json_buf *r)
{
	json_obj_begin(r);
	json_kv_bool(r, "ok", true);
}

static void reply_err(struct json_buf *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_err(struct json_buf *r, const char *fmt, ...)
{
	char msg[TXN_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_reply_error(r, msg);
}

static void policy_summary(struct json_buf *r, const char *key, const struct txn_policy *p, unsigned rev)
{
	json_key(r, key);
	if (!p) {
		json_null(r);
		return;
	}
	json_obj_begin(r);
	if (rev)
		json_kv_uint(r, "revision", rev);
	json_kv_str(r, "hash", p->hash);
	json_kv_str(r, "source", p->source);
	json_kv_str(r, "source_rev", p->source_rev);
	json_kv_uint(r, "rules", p->policy->n_rules);
	json_kv_uint(r, "tenants", p->policy->n_tenants);
	json_obj_end(r);
}

static void cmd_status(struct daemon *d, struct json_buf *r)
{
	uint32_t genid = 0;

	reply_ok_begin(r);
	json_kv_str(r, "version", DAEMON_VERSION);
	json_kv_int(r, "pid", getpid());
	json_kv_int(r, "uptime", (long long)(time(NULL) - d->started));
	json_kv_str(r, "config", d->conf.file);
	json_kv_str(r, "netns", d->conf.netns ? d->conf.netns : "");
	policy_summary(r, "running", d->txn.running, d->txn.running_rev);
	policy_summary(r, "candidate", d->txn.candidate, 0);
	json_key(r, "pending");
	if (d->txn.pending) {
		int64_t left = txn_pending_left_ms(&d->txn);
		json_obj_begin(r);
		json_kv_uint(r, "revision", d->txn.pend.committed);
		json_kv_uint(r, "revert_to", d->txn.pend.revert_to);
		json_kv_int(r, "deadline", (long long)(d->txn.pend.deadline_ms / 1000));
		json_kv_int(r, "seconds_left", (long long)(left > 0 ? (left + 999) / 1000 : 0));
		json_kv_int(r, "ms_left", (long long)(left > 0 ? left : 0));
		json_obj_end(r);
	} else {
		json_null(r);
	}
	json_key(r, "lock");
	if (d->lock_pid && !(kill(d->lock_pid, 0) && errno == ESRCH)) {
		json_obj_begin(r);
		json_kv_uint(r, "uid", d->lock_uid);
		json_kv_int(r, "pid", d->lock_pid);
		json_kv_int(r, "since", (long long)d->lock_since);
		json_obj_end(r);
	} else {
		json_null(r);
	}
	json_kv_bool(r, "source_differs", source_differs(d));
	if (!nftio_genid(NULL, &genid))
		json_kv_uint(r, "genid", genid);
	json_kv_uint(r, "applies", d->txn.stats.applies);
	json_kv_uint(r, "reloads", d->txn.stats.reloads);
	json_key(r, "fastpath");
	if (d->fp) {
		struct fp_stats st;
		fastpath_stats(d->fp, &st);
		json_obj_begin(r);
		json_kv_uint(r, "queue", d->conf.fastpath_queue);
		json_kv_uint(r, "workers", d->conf.fastpath_workers);
		json_kv_str(r, "conntrack", fastpath_has_ct_glue(d->fp) ? "glue" : "ctnetlink");
		json_kv_uint(r, "packets", st.packets);
		json_kv_uint(r, "flows", st.flows);
		json_kv_uint(r, "cleared", st.done);
		json_kv_uint(r, "blocked", st.blocked);
		json_kv_uint(r, "segments_dropped", st.segments_dropped);
		json_kv_uint(r, "malformed", st.malformed);
		json_kv_uint(r, "ct_unknown", st.ct_unknown);
		json_kv_uint(r, "urgent", st.urgent);
		json_kv_uint(r, "bad_end", st.bad_end);
		json_kv_uint(r, "conflicts", st.conflicts);
		json_kv_uint(r, "suspect", st.suspect);
		json_kv_uint(r, "syn_data", st.syn_data);
		json_kv_uint(r, "midstream", st.midstream);
		json_kv_uint(r, "ext_headers", st.ext_headers);
		json_kv_uint(r, "resets_sent", st.resets_sent);
		json_kv_uint(r, "resets_failed", st.resets_failed);
		json_kv_bool(r, "fail_closed", d->conf.fastpath_fail_closed);
		struct fastpath_queue_stat qs[FASTPATH_MAX_WORKERS * 4];
		size_t nq = fastpath_queue_stats(d->fp, qs, sizeof(qs) / sizeof(qs[0]));
		json_key(r, "queues");
		json_arr_begin(r);
		for (size_t i = 0; i < nq; i++) {
			json_obj_begin(r);
			json_kv_uint(r, "queue", qs[i].queue);
			json_kv_uint(r, "waiting", qs[i].waiting);
			json_kv_uint(r, "queue_dropped", qs[i].queue_dropped);
			json_kv_uint(r, "user_dropped", qs[i].user_dropped);
			json_obj_end(r);
		}
		json_arr_end(r);
		json_kv_uint(r, "table_full", st.table_full);
		json_kv_uint(r, "events_lost", st.events_lost);
		json_kv_uint(r, "verdict_errors", st.verdict_errors);
		json_obj_end(r);
	} else {
		json_null(r);
	}
	json_key(r, "interfaces");
	json_arr_begin(r);
	for (size_t i = 0; i < d->conf.n_ifaces; i++) {
		json_obj_begin(r);
		json_kv_str(r, "name", d->conf.ifaces[i].name);
		json_kv_str(r, "role", conf_role_name(d->conf.ifaces[i].role));
		json_kv_bool(r, "present", if_nametoindex(d->conf.ifaces[i].name) != 0);
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
}

static const char *action_name(enum policy_action a)
{
	return a == POLICY_PASS ? "pass" : a == POLICY_BLOCK ? "block" : "reject";
}

/* The segment an anti-spoofing counter names ("antispoof:acme.web", the
 * comment policy/tenant.c gives both families' drops), or NULL: the row
 * takes its tenant and its text from the segment of the running policy. */
static const struct policy_zone *antispoof_segment(const struct policy *p, const char *id)
{
	size_t n = strlen(POLICY_COMMENT_ANTISPOOF);

	if (!p || strncmp(id, POLICY_COMMENT_ANTISPOOF, n))
		return NULL;
	for (size_t i = 0; i < p->n_zones; i++)
		if (p->zones[i].tenant != POLICY_NONE && !strcmp(p->zones[i].name, id + n))
			return &p->zones[i];
	return NULL;
}

/* What drops traffic besides the policy's rules, as the kernel counts it:
 * the defaults (per `default` statement, or the built-in one), the dynamic
 * block list, invalid conntrack state, anti-spoofing per segment and the
 * inter-tenant check. NULL if `id` is none of them. */
static const char *implicit_kind(const struct policy *p, const char *id)
{
	if (!strncmp(id, "default:", 8))
		return "default";
	if (!strcmp(id, POLICY_COMMENT_BLOCKED))
		return "block-list";
	if (!strcmp(id, POLICY_COMMENT_CT_INVALID))
		return "ct-invalid";
	if (!strcmp(id, POLICY_COMMENT_INTER_TENANT))
		return "inter-tenant";
	if (antispoof_segment(p, id))
		return "anti-spoofing";
	return NULL;
}

/* `implicit`: one row per counted drop that no rule of the policy names. */
static void show_implicit(struct daemon *d, struct json_buf *r)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	json_key(r, "implicit");
	json_arr_begin(r);
	for (size_t i = 0; i < d->n_hits; i++) {
		const struct rule_hit *h = &d->hits[i];
		const char *kind = implicit_kind(p, h->id), *colon, *tenant = "";
		const struct policy_zone *seg = antispoof_segment(p, h->id);
		char text[256] = "";
		if (!kind)
			continue;
		if (seg) {
			const char *file = seg->loc.file ? seg->loc.file : "";
			tenant = p->tenants[seg->tenant].name;
			txn_source_line(d->txn.running, file, seg->loc.line, text, sizeof(text));
		}
		colon = strrchr(h->id, ':');
		if (!strcmp(kind, "default") && strcmp(h->id, POLICY_COMMENT_DEFAULT_BUILTIN) && colon && d->txn.running) {
			char file[PATH_MAX];
			snprintf(file, sizeof(file), "%.*s", (int)(colon - h->id - 8), h->id + 8);
			txn_source_line(d->txn.running, file, (unsigned)strtoul(colon + 1, NULL, 10), text, sizeof(text));
		}
		json_obj_begin(r);
		json_kv_str(r, "id", h->id);
		json_kv_str(r, "kind", kind);
		json_kv_str(r, "tenant", tenant);
		json_kv_str(r, "text", text);
		json_kv_uint(r, "packets", h->packets);
		json_kv_uint(r, "bytes", h->bytes);
		json_key(r, "last_hit");
		if (h->last_hit)
			json_int(r, (long long)h->last_hit);
		else
			json_null(r);
		json_obj_end(r);
	}
	json_arr_end(r);
}

static void show_rules(struct daemon *d, struct json_buf *r)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	sample_counters(d);
	reply_ok_begin(r);
	json_key(r, "rules");
	json_arr_begin(r);
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct policy_rule *pr = &p->rules[i];
		const struct rule_hit *h = hit_find(d, pr->id);
		char loc[PATH_MAX + 32];
		char text[256];
		json_obj_begin(r);
		json_kv_str(r, "id", pr->id);
		snprintf(loc, sizeof(loc), "%s:%u", pr->loc.file ? pr->loc.file : "?", pr->loc.line);
		json_kv_str(r, "location", loc);
		txn_source_line(d->txn.running, pr->loc.file ? pr->loc.file : "", pr->loc.line, text, sizeof(text));
		json_kv_str(r, "text", text);
		json_kv_str(r, "action", action_name(pr->action));
		json_kv_str(r, "tenant", pr->tenant == POLICY_NONE ? "" : p->tenants[pr->tenant].name);
		json_kv_uint(r, "packets", h ? h->packets : 0);
		json_kv_uint(r, "bytes", h ? h->bytes : 0);
		json_key(r, "counters_since");
		if (txn_delta_since_get(d->txn.since, pr->id))
			json_int(r, (long long)txn_delta_since_get(d->txn.since, pr->id));
		else
			json_null(r);
		json_key(r, "last_hit");
		if (h && h->last_hit)
			json_int(r, (long long)h->last_hit);
		else
			json_null(r);
		json_obj_end(r);
	}
	json_arr_end(r);
	show_implicit(d, r);
	json_obj_end(r);
}

static void show_tenants(struct daemon *d, struct json_buf *r)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	sample_counters(d);
	reply_ok_begin(r);
	json_key(r, "tenants");
	json_arr_begin(r);
	for (size_t t = 0; p && t < p->n_tenants; t++) {
		uint64_t packets = 0, bytes = 0;
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct rule_hit *h = hit_find(d, p->rules[i].id);
			if (p->rules[i].tenant == t && h) {
				packets += h->packets;
				bytes += h->bytes;
			}
		}
		json_obj_begin(r);
		json_kv_str(r, "name", p->tenants[t].name);
		json_kv_uint(r, "id", p->tenants[t].id);
		json_kv_uint(r, "ct_zone", p->tenants[t].ct_zone);
		json_key(r, "segments");
		json_arr_begin(r);
		for (size_t z = 0; z < p->n_zones; z++) {
			if (p->zones[z].tenant != t)
				continue;
			json_obj_begin(r);
			json_kv_str(r, "name", p->zones[z].name);
			json_key(r, "interfaces");
			json_arr_begin(r);
			for (size_t k = 0; k < p->zones[z].n_ifnames; k++)
				json_str(r, p->zones[z].ifnames[k]);
			json_arr_end(r);
			json_obj_end(r);
		}
		json_arr_end(r);
		json_kv_uint(r, "packets", packets);
		json_kv_uint(r, "bytes", bytes);
		json_obj_end(r);
	}
	json_arr_end(r);
	/* Every zone, segments included: what `block ADDR zone Z` takes. */
	json_key(r, "zones");
	json_arr_begin(r);
	for (size_t z = 0; p && z < p->n_zones; z++) {
		json_obj_begin(r);
		json_kv_str(r, "name", p->zones[z].name);
		json_kv_str(r, "tenant", p->zones[z].tenant == POLICY_NONE ? "" : p->tenants[p->zones[z].tenant].name);
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
}

/* Parses ADDR into family/bytes; false if it is not an address. */
static bool parse_addr(const char *s, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (s && inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (s && inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

static int tenant_zone(const struct daemon *d, const char *name, uint16_t *zone)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	for (size_t t = 0; p && t < p->n_tenants; t++) {
		if (!strcmp(p->tenants[t].name, name)) {
			*zone = p->tenants[t].ct_zone;
			return 0;
		}
	}
	return -ENOENT;
}

static void show_conntrack(struct daemon *d, const struct json *req, struct json_buf *r, bool nat)
{
	struct conntrack_filter f = { .nat_only = nat };
	const char *tenant = json_get_str(req, "tenant"), *addr = json_get_str(req, "addr");
	size_t matched = 0;
	uint64_t count = 0, max = 0;
	int rc;

	if (tenant) {
		if (tenant_zone(d, tenant, &f.zone)) {
			reply_err(r, "no tenant '%s' in the running policy", tenant);
			return;
		}
		f.zone_set = true;
	}
	if (addr && !parse_addr(addr, &f.family, f.addr)) {
		reply_err(r, "'%s' is not an IPv4 or IPv6 address", addr);
		return;
	}
	reply_ok_begin(r);
	if (nat) {
		const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
		static const char *kinds[] = { "masquerade", "snat", "dnat", "netmap" };
		json_key(r, "rules");
		json_arr_begin(r);
		for (size_t i = 0; p && i < p->n_nats; i++) {
			json_obj_begin(r);
			json_kv_str(r, "id", p->nats[i].id);
			json_kv_str(r, "kind", kinds[p->nats[i].kind]);
			json_kv_str(r, "tenant", p->nats[i].tenant == POLICY_NONE ? "" : p->tenants[p->nats[i].tenant].name);
			json_obj_end(r);
		}
		json_arr_end(r);
	}
	json_key(r, nat ? "translations" : "entries");
	rc = conntrack_dump(&f, r, &matched);
	json_kv_uint(r, "matched", matched);
	if (!conntrack_count(&count, &max)) {
		json_kv_uint(r, "count", count);
		json_kv_uint(r, "max", max);
	}
	if (rc)
		json_kv_str(r, "warning", strerror(-rc));
	json_obj_end(r);
}

/* A stored revision compiled again ("revision" of req), or the running
 * policy when req has none or names the running one. *owned is set when
 * the caller must free the result. NULL with the reply written on error. */
static const struct txn_policy *policy_of_revision(struct daemon *d, const struct json *req, struct json_buf *r,
						   struct txn_policy **owned)
{
	char err[TXN_ERR_MAX];
	long long rev = 0;

	*owned = NULL;
	if (json_get(req, "revision") && (json_get_int(req, "revision", &rev) || rev <= 0 || rev > UINT32_MAX)) {
		reply_err(r, "\"revision\" must be a positive integer");
		return NULL;
	}
	if (!rev || (unsigned)rev == d->txn.running_rev) {
		if (!d->txn.running)
			reply_err(r, "no running revision");
		return d->txn.running;
	}
	if (txn_compile_rev(&d->txn, (unsigned)rev, owned, err, sizeof(err))) {
		reply_err(r, "%s", err);
		return NULL;
	}
	return *owned;
}

/* `show source [revision N]`: the text of every file the revision read. */
static void show_source(struct daemon *d, const struct json *req, struct json_buf *r)
{
	struct txn_policy *owned;
	const struct txn_policy *p = policy_of_revision(d, req, r, &owned);
	long long rev = d->txn.running_rev;

	if (!p)
		return;
	json_get_int(req, "revision", &rev);
	reply_ok_begin(r);
	json_kv_uint(r, "revision", (unsigned long long)rev);
	json_kv_str(r, "source", p->source);
	json_key(r, "files");
	json_arr_begin(r);
	for (size_t i = 0; i < p->diags.n_files; i++) {
		json_obj_begin(r);
		json_kv_str(r, "path", p->diags.files[i].path);
		json_kv_str(r, "text", p->diags.files[i].text ? p->diags.files[i].text : "");
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
	if (owned)
		txn_policy_free(owned);
}

static void cmd_show(struct daemon *d, const struct json *req, struct json_buf *r)
{
	const char *what = json_get_str(req, "what");
	long long n = 50;

	if (!what || !strcmp(what, "rules"))
		show_rules(d, r);
	else if (!strcmp(what, "tenants"))
		show_tenants(d, r);
	else if (!strcmp(what, "conntrack"))
		show_conntrack(d, req, r, false);
	else if (!strcmp(what, "nat"))
		show_conntrack(d, req, r, true);
	else if (!strcmp(what, "log")) {
		json_get_int(req, "lines", &n);
		reply_ok_begin(r);
		json_key(r, "events");
		if (d->log)
			nflogd_recent(d->log, n > 0 && n <= NFLOGD_RECENT ? (size_t)n : 50, r);
		else
			json_raw(r, "[]");
		json_obj_end(r);
	} else if (!strcmp(what, "vpn")) {
		reply_ok_begin(r);
		vpnmgr_show(d->vpn, r);
		json_obj_end(r);
	} else if (!strcmp(what, "source")) {
		show_source(d, req, r);
	} else
		reply_err(r, "show what? rules, tenants, nat, conntrack, log, vpn or source");
}

/* Compiles what a load/diff request names: "path", "git" (a ref of the
 * configured repository, or "repo" too) or "revision". */
static int compile_request(struct daemon *d, const struct json *req, struct txn_policy **p, char *err,
			   size_t errsz)
{
	const char *path = json_get_str(req, "path"), *ref = json_get_str(req, "git");
	const char *repo = json_get_str(req, "repo");
	long long rev;

	if (path)
		return txn_compile_path(&d->txn, path, p, err, errsz);
	if (ref) {
		if (!repo && d->conf.source != CONF_SOURCE_GIT) {
			snprintf(err, errsz, "the configured source is not git: give \"repo\" too");
			return -EINVAL;
		}
		return txn_compile_git(&d->txn, repo ? repo : d->conf.policy_path, ref, p, err, errsz);
	}
	if (!json_get_int(req, "revision", &rev) && rev > 0 && rev <= UINT32_MAX)
		return txn_compile_rev(&d->txn, (unsigned)rev, p, err, errsz);
	/* Nothing named: the configured source. */
	if (d->conf.source == CONF_SOURCE_GIT)
		return txn_compile_git(&d->txn, d->conf.policy_path, d->conf.git_ref, p, err, errsz);
	return txn_compile_path(&d->txn, d->conf.policy_path, p, err, errsz);
}

/* A path or repository the client names is read with the client's rights
 * (peerfs.h): what it could not read itself cannot come back in an error,
 * and a FIFO or device is refused before anything opens it. */
static int compile_as_peer(struct daemon *d, const struct ctl_peer *peer, const struct json *req,
			   struct txn_policy **p, char *err, size_t errsz)
{
	const char *path = json_get_str(req, "path"), *repo = json_get_str(req, "repo");
	struct peerfs_saved saved;
	int rc;

	if (!path && !repo)
		return compile_request(d, req, p, err, errsz);
	rc = peerfs_enter(peer, &saved);
	if (rc) {
		snprintf(err, errsz, "cannot read files with the rights of uid %u: %s", (unsigned)peer->uid,
			 strerror(-rc));
		return rc;
	}
	rc = peerfs_check_path(path ? path : repo, err, errsz);
	if (!rc) {
		bool other_user = repo && peer->uid != 0;
		if (other_user)
			gitsrc_ignore_user_config(true);
		rc = compile_request(d, req, p, err, errsz);
		if (other_user)
			gitsrc_ignore_user_config(false);
	}
	peerfs_leave(&saved);
	return rc;
}

static void cmd_load(struct daemon *d, const struct ctl_peer *peer, const struct json *req, struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	struct txn_policy *p;

	if (compile_as_peer(d, peer, req, &p, err, sizeof(err))) {
		reply_err(r, "%s", err);
		return;
	}
	txn_set_candidate(&d->txn, p);
	reply_ok_begin(r);
	policy_summary(r, "candidate", p, 0);
	json_key(r, "compare");
	json_obj_begin(r);
	txn_compare(d->txn.running, p, r);
	json_obj_end(r);
	json_obj_end(r);
}

static void cmd_compare(struct daemon *d, const struct json *req, struct json_buf *r)
{
	struct txn_policy *owned;
	const struct txn_policy *from;

	if (!d->txn.candidate) {
		reply_err(r, "no candidate: 'load' a policy first");
		return;
	}
	/* "revision": N compares the candidate with stored revision N. */
	owned = NULL;
	from = d->txn.running;
	if (json_get(req, "revision") && !(from = policy_of_revision(d, req, r, &owned)))
		return;
	reply_ok_begin(r);
	json_kv_uint(r, "running", d->txn.running_rev);
	txn_compare(from, d->txn.candidate, r);
	json_obj_end(r);
	if (owned)
		txn_policy_free(owned);
}

/* One side of a diff: a revision number, or "git:REF" of the configured
 * repository. */
static int compile_side(struct daemon *d, const struct json *v, struct txn_policy **p, char *err, size_t errsz)
{
	if (v && v->type == JSON_NUMBER && v->is_integer && v->integer > 0 && v->integer <= UINT32_MAX)
		return txn_compile_rev(&d->txn, (unsigned)v->integer, p, err, errsz);
	if (v && v->type == JSON_STRING && !strncmp(v->string, "git:", 4) && d->conf.source == CONF_SOURCE_GIT)
		return txn_compile_git(&d->txn, d->conf.policy_path, v->string + 4, p, err, errsz);
	snprintf(err, errsz, "diff needs \"from\" and \"to\": revision numbers, or \"git:REF\" with a git source");
	return -EINVAL;
}

static void cmd_diff(struct daemon *d, const struct json *req, struct json_buf *r)
{
	const struct json *from = json_get(req, "from"), *to = json_get(req, "to");
	struct txn_policy *a = NULL, *b = NULL;
	char err[TXN_ERR_MAX];

	if (compile_side(d, from, &a, err, sizeof(err)) || compile_side(d, to, &b, err, sizeof(err))) {
		txn_policy_free(a);
		reply_err(r, "%s", err);
		return;
	}
	reply_ok_begin(r);
	json_key(r, "from");
	json_value(r, from);
	json_key(r, "to");
	json_value(r, to);
	txn_compare(a, b, r);
	json_obj_end(r);
	txn_policy_free(a);
	txn_policy_free(b);
}

/* Brings the VPN devices in step with the running policy when it changed
 * (start, reload, commit, confirm-revert). */
static void sync_vpn(struct daemon *d)
{
	uint64_t key[3] = { d->txn.stats.applies, d->txn.stats.reloads, d->txn.stats.reverts };

	if (!d->vpn || (d->vpn_policy == d->txn.running && !memcmp(key, d->vpn_key, sizeof(key))))
		return;
	d->vpn_policy = d->txn.running;
	memcpy(d->vpn_key, key, sizeof(key));
	int failed = vpnmgr_apply(d->vpn, d->txn.running ? d->txn.running->policy : NULL);
	if (failed)
		syslog(LOG_WARNING, "%d vpn%s not running (see above)", failed, failed == 1 ? "" : "s");
}

/* Applies the VPNs of a policy that just became the running one, so that
 * the reply of the command that changed it can say which of them failed. */
static void reply_vpns(struct daemon *d, struct json_buf *r)
{
	sync_vpn(d);
	if (d->vpn)
		vpnmgr_errors(d->vpn, r);
}

/* "confirmed": absent (0), a number of seconds, or a duration string as
 * the CLI takes it; 0, negative numbers and garbage are errors. */
static int confirm_seconds(const struct json *v, uint64_t *seconds)
{
	if (!v)
		return 0;
	if (v->type == JSON_STRING)
		return duration_parse(v->string, TXN_CONFIRM_MAX_SECONDS, seconds);
	if (v->type != JSON_NUMBER || !v->is_integer || v->integer <= 0 || v->integer > TXN_CONFIRM_MAX_SECONDS)
		return -EINVAL;
	*seconds = (uint64_t)v->integer;
	return 0;
}

static void cmd_commit(struct daemon *d, const struct ctl_peer *peer, const struct json *req, struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	const struct json *force = json_get(req, "force");
	uint64_t confirm = 0;

	if (confirm_seconds(json_get(req, "confirmed"), &confirm)) {
		reply_err(r, "\"confirmed\" must be a duration of 1 s to 1 day: 90 (seconds), 90s, 10m, 1h");
		return;
	}
	if (txn_commit(&d->txn, peer->uid, json_get_str(req, "comment"), (unsigned)confirm,
		       force && force->type == JSON_BOOL && force->boolean, err, sizeof(err))) {
		d->errors++;
		reply_err(r, "%s", err);
		return;
	}
	reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	json_kv_str(r, "apply", d->txn.last_apply_mode);
	if (confirm) {
		json_kv_int(r, "confirm_deadline", (long long)(d->txn.pend.deadline_ms / 1000));
		json_kv_uint(r, "confirm_seconds", confirm);
		json_kv_uint(r, "revert_to", d->txn.pend.revert_to);
	}
	reply_vpns(d, r);
	json_obj_end(r);
}

static void cmd_history(struct daemon *d, struct json_buf *r)
{
	struct history_rev *v;
	size_t n;
	int rc = history_store_list(d->conf.state_dir, &v, &n);

	if (rc) {
		reply_err(r, "cannot read the history: %s", strerror(-rc));
		return;
	}
	reply_ok_begin(r);
	json_kv_uint(r, "running", d->txn.running_rev);
	json_key(r, "revisions");
	json_arr_begin(r);
	for (size_t i = n; i-- > 0;) {
		json_obj_begin(r);
		json_kv_uint(r, "revision", v[i].id);
		json_kv_int(r, "time", (long long)v[i].time);
		json_kv_uint(r, "uid", v[i].uid);
		json_kv_str(r, "comment", v[i].comment);
		json_kv_str(r, "source", v[i].source);
		json_kv_str(r, "source_rev", v[i].source_rev);
		json_kv_str(r, "hash", v[i].hash);
		json_kv_uint(r, "previous", v[i].previous);
		json_kv_uint(r, "confirm_seconds", v[i].confirm_seconds);
		/* A confirmed commit that is not pending any more was reverted
		 * if what ran next was not it: the next revision was committed
		 * on top of another, or (the newest) it does not run. */
		bool pending = d->txn.pending && d->txn.pend.committed == v[i].id;
		bool next_on_it = i + 1 < n ? v[i + 1].previous == v[i].id : d->txn.running_rev == v[i].id;
		json_kv_bool(r, "reverted", v[i].confirm_seconds && !pending && !next_on_it);
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
	free(v);
}

/* Marks of a global block-list entry: every packet (nftio.h). */
#define BLOCK_MARK_ANY_LO 0u
#define BLOCK_MARK_ANY_HI UINT32_MAX

/* "ADDR" or "ADDR/LEN" (host bits zero) into the address range of a
 * block-list entry; *prefix_len gets LEN (the full length for an address). */
static bool parse_block_addr(const char *s, struct nftio_set_elem *e, unsigned *prefix_len)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned bits, len;

	if (!s || strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	if (!parse_addr(buf, &e->family, e->addr))
		return false;
	bits = e->family == AF_INET ? 32 : 128;
	len = bits;
	if (slash) {
		unsigned long v = strtoul(slash, &end, 10);
		if (!*slash || *end || v > bits)
			return false;
		len = (unsigned)v;
	}
	memcpy(e->addr_end, e->addr, sizeof(e->addr_end));
	for (unsigned i = len; i < bits; i++) {
		uint8_t bit = (uint8_t)(0x80u >> (i % 8));
		if (e->addr[i / 8] & bit)
			return false;
		e->addr_end[i / 8] |= bit;
	}
	*prefix_len = len;
	return true;
}

static const struct policy_tenant *tenant_named(const struct daemon *d, const char *name)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	for (size_t t = 0; p && name && t < p->n_tenants; t++)
		if (!strcmp(p->tenants[t].name, name))
			return &p->tenants[t];
	return NULL;
}

/* The prefix length of addr .. addr_end, or -1 if the range is no prefix. */
static int range_prefix_len(const struct nftio_set_elem *e)
{
	unsigned bits = e->family == AF_INET ? 32 : 128, len = bits;

	for (unsigned i = 0; i < bits; i++) {
		uint8_t bit = (uint8_t)(0x80u >> (i % 8));
		bool lo = e->addr[i / 8] & bit, hi = e->addr_end[i / 8] & bit;
		if (len == bits && lo != hi)
			len = i;
		if (len < bits && (lo || !hi))
			return -1;
	}
	return (int)len;
}

/* The tenant whose mark range an entry covers: "" for a global entry. */
static const char *block_scope(const struct daemon *d, const struct nftio_set_elem *e, char *buf, size_t size)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	if (e->mark_lo == BLOCK_MARK_ANY_LO && e->mark_hi == BLOCK_MARK_ANY_HI)
		return "";
	for (size_t t = 0; p && t < p->n_tenants; t++)
		if (policy_tenant_mark(&p->tenants[t]) == e->mark_lo)
			return p->tenants[t].name;
	snprintf(buf, size, "#%u", e->mark_lo >> POLICY_TENANT_MARK_SHIFT);
	return buf;
}

static size_t zone_named(const struct daemon *d, const char *name)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	for (size_t z = 0; p && name && z < p->n_zones; z++)
		if (!strcmp(p->zones[z].name, name))
			return z;
	return POLICY_NONE;
}

static void cmd_block(struct daemon *d, const struct json *req, struct json_buf *r, bool block)
{
	const char *addr = json_get_str(req, "addr"), *dur = json_get_str(req, "for");
	const char *tenant = json_get_str(req, "tenant"), *zone = json_get_str(req, "zone");
	const char *scope = "", *scope_name = "";
	const struct policy_tenant *pt = NULL;
	size_t zi = POLICY_NONE;
	struct nftio_set_elem e = { .mark_lo = BLOCK_MARK_ANY_LO, .mark_hi = BLOCK_MARK_ANY_HI };
	uint64_t seconds = 0;
	unsigned prefix_len;
	int rc;

	if (!parse_block_addr(addr, &e, &prefix_len)) {
		reply_err(r, "\"addr\" must be an IPv4 or IPv6 address or prefix (ADDR/LEN, with the host bits zero)");
		return;
	}
	if (block && dur && duration_parse(dur, TXN_BLOCK_MAX_SECONDS, &seconds)) {
		reply_err(r, "\"for\" must be a duration such as 90 (seconds), 90s, 10m, 2h, 1d (at most a year)");
		return;
	}
	if (!d->txn.running) {
		reply_err(r, "no policy is running");
		return;
	}
	if (tenant && zone) {
		reply_err(r, "a block is scoped by a tenant or by a zone, not both (a tenant's segment is a zone)");
		return;
	}
	if (tenant && !(pt = tenant_named(d, tenant))) {
		reply_err(r, "no tenant '%s' in the running policy", tenant);
		return;
	}
	if (zone && (zi = zone_named(d, zone)) == POLICY_NONE) {
		reply_err(r, "no zone '%s' in the running policy", zone);
		return;
	}
	if (pt) {
		/* the tenant's packets carry its id in the upper mark bits */
		e.mark_lo = policy_tenant_mark(pt);
		e.mark_hi = e.mark_lo | ~POLICY_TENANT_MARK_MASK;
		scope = " tenant ";
		scope_name = pt->name;
	} else if (zi != POLICY_NONE) {
		scope = " zone ";
		scope_name = d->txn.running->policy->zones[zi].name;
	}
	e.timeout_ms = seconds * 1000;
	if (zi != POLICY_NONE)
		rc = block ? txn_block_zone(&d->txn, zi, &e) : txn_unblock_zone(&d->txn, zi, &e);
	else
		rc = block ? txn_block(&d->txn, &e) : txn_unblock(&d->txn, &e);
	if (rc) {
		reply_err(r, "%s %s%s%s: %s", block ? "block" : "unblock", addr, scope, scope_name,
			  rc == -ENOENT	       ? "not in the block list (unblock names the entry as blocked)"
			  : rc == -ENOTEMPTY ? "overlaps an entry of the block list (see show blocked)"
			  : rc == -ENXIO     ? "the zone has no interface to block on"
					     : strerror(-rc));
		return;
	}
	syslog(LOG_NOTICE, "%s %s%s%s%s%s", block ? "blocked" : "unblocked", addr, scope, scope_name,
	       dur ? " for " : "", dur ? dur : "");
	reply_ok_begin(r);
	json_kv_str(r, "addr", addr);
	json_kv_str(r, "tenant", pt ? pt->name : "");
	if (zi != POLICY_NONE)
		json_kv_str(r, "zone", scope_name);
	if (block)
		json_kv_uint(r, "timeout", seconds);
	json_obj_end(r);
}

/* The zone of a zone-list element, by name ("?" if no running zone has its
 * interfaces); "" for the other lists. An entry is one element per pattern
 * of its zone: *dup is set for all but the first. */
static const char *block_zone(const struct daemon *d, const struct nftio_set_elem *v, size_t i, bool *dup)
{
	size_t z = txn_block_zone_of(&d->txn, &v[i]);

	*dup = false;
	if (!v[i].by_ifname)
		return "";
	if (z == POLICY_NONE)
		return "?";
	for (size_t k = 0; k < i && !*dup; k++)
		*dup = txn_block_zone_of(&d->txn, &v[k]) == z && v[k].family == v[i].family &&
		       !memcmp(v[k].addr, v[i].addr, 16) && !memcmp(v[k].addr_end, v[i].addr_end, 16);
	return d->txn.running->policy->zones[z].name;
}

static void cmd_show_blocked(struct daemon *d, struct json_buf *r)
{
	static const char *sets[] = { TXN_BLOCK_SET4, TXN_BLOCK_SET6, TXN_BLOCK_ZONE_SET4, TXN_BLOCK_ZONE_SET6 };

	reply_ok_begin(r);
	json_key(r, "blocked");
	json_arr_begin(r);
	for (size_t s = 0; s < 4; s++) {
		struct nftio_set_elem *v;
		size_t n;
		if (s < 2 ? nftio_set_elems(NULL, sets[s], &v, &n) : nftio_set_elems_by_ifname(NULL, sets[s], &v, &n))
			continue;
		for (size_t i = 0; i < n; i++) {
			char text[2 * INET6_ADDRSTRLEN + 8], end[INET6_ADDRSTRLEN], id[16];
			int len = range_prefix_len(&v[i]);
			bool dup;
			const char *zone = block_zone(d, v, i, &dup);
			if (dup)
				continue;
			inet_ntop(v[i].family, v[i].addr, text, INET6_ADDRSTRLEN);
			if (len < 0) {
				inet_ntop(v[i].family, v[i].addr_end, end, sizeof(end));
				snprintf(text + strlen(text), sizeof(text) - strlen(text), "-%s", end);
			} else if (len < (v[i].family == AF_INET ? 32 : 128)) {
				snprintf(text + strlen(text), sizeof(text) - strlen(text), "/%d", len);
			}
			json_obj_begin(r);
			json_kv_str(r, "addr", text);
			json_kv_str(r, "tenant", v[i].by_ifname ? "" : block_scope(d, &v[i], id, sizeof(id)));
			if (*zone)
				json_kv_str(r, "zone", zone);
			json_kv_uint(r, "expires_in", v[i].expires_ms / 1000);
			json_obj_end(r);
		}
		free(v);
	}
	json_arr_end(r);
	json_obj_end(r);
}

/* Logs, metrics, lookups. */

/* The prefix is a rule id or a default's "default:FILE:LINE" (policy/lower.c). */
static void log_lookup(void *ctx, const char *prefix, const char **rule_id, const char **verdict,
		       const char **tenant, const char **log_prefix)
{
	const struct daemon *d = ctx;
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
	char id[128]; /* as long as the comment policy/lower.c makes, truncated alike */

	for (size_t i = 0; p && i < p->n_rules; i++) {
		if (strcmp(p->rules[i].id, prefix))
			continue;
		*rule_id = p->rules[i].id;
		*verdict = action_name(p->rules[i].action);
		*log_prefix = p->rules[i].log_prefix;
		if (p->rules[i].tenant != POLICY_NONE)
			*tenant = p->tenants[p->rules[i].tenant].name;
		return;
	}
	for (size_t i = 0; p && i < p->n_defaults; i++) {
		const struct policy_default *df = &p->defaults[i];
		if (!df->log || !df->loc.file)
			continue;
		snprintf(id, sizeof(id), "default:%s:%u", df->loc.file, df->loc.line);
		if (strcmp(id, prefix))
			continue;
		*verdict = action_name(df->action);
		if (df->tenant != POLICY_NONE)
			*tenant = p->tenants[df->tenant].name;
		return;
	}
}

static void write_metrics(void *ctx, FILE *out)
{
	struct daemon *d = ctx;
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
	uint64_t count = 0, max = 0, ev = 0, wr = 0, dr = 0;

	sample_counters(d);
	fputs("# HELP hvgate_rule_packets_total Packets matched by a policy rule.\n"
	      "# TYPE hvgate_rule_packets_total counter\n", out);
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct rule_hit *h = hit_find(d, p->rules[i].id);
		fputs("hvgate_rule_packets_total{rule=", out);
		metrics_label(out, p->rules[i].id);
		fprintf(out, "} %llu\n", (unsigned long long)(h ? h->packets : 0));
	}
	fputs("# HELP hvgate_rule_bytes_total Bytes matched by a policy rule.\n"
	      "# TYPE hvgate_rule_bytes_total counter\n", out);
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct rule_hit *h = hit_find(d, p->rules[i].id);
		fputs("hvgate_rule_bytes_total{rule=", out);
		metrics_label(out, p->rules[i].id);
		fprintf(out, "} %llu\n", (unsigned long long)(h ? h->bytes : 0));
	}
	fputs("# HELP hvgate_implicit_packets_total Packets dropped by no rule of the policy: a default, the "
	      "block list, invalid state, anti-spoofing, the inter-tenant check.\n"
	      "# TYPE hvgate_implicit_packets_total counter\n", out);
	for (size_t i = 0; i < d->n_hits; i++) {
		if (!implicit_kind(p, d->hits[i].id))
			continue;
		fputs("hvgate_implicit_packets_total{rule=", out);
		metrics_label(out, d->hits[i].id);
		fprintf(out, ",kind=\"%s\"} %llu\n", implicit_kind(p, d->hits[i].id),
			(unsigned long long)d->hits[i].packets);
	}
	fputs("# HELP hvgate_tenant_packets_total Packets matched by the rules of a tenant.\n"
	      "# TYPE hvgate_tenant_packets_total counter\n", out);
	for (size_t t = 0; p && t < p->n_tenants; t++) {
		uint64_t packets = 0;
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct rule_hit *h = hit_find(d, p->rules[i].id);
			if (h && p->rules[i].tenant == t)
				packets += h->packets;
		}
		fputs("hvgate_tenant_packets_total{tenant=", out);
		metrics_label(out, p->tenants[t].name);
		fprintf(out, "} %llu\n", (unsigned long long)packets);
	}
	fputs("# HELP hvgate_tenant_bytes_total Bytes matched by the rules of a tenant.\n"
	      "# TYPE hvgate_tenant_bytes_total counter\n", out);
	for (size_t t = 0; p && t < p->n_tenants; t++) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct rule_hit *h = hit_find(d, p->rules[i].id);
			if (h && p->rules[i].tenant == t)
				bytes += h->bytes;
		}
		fputs("hvgate_tenant_bytes_total{tenant=", out);
		metrics_label(out, p->tenants[t].name);
		fprintf(out, "} %llu\n", (unsigned long long)bytes);
	}
	if (!conntrack_count(&count, &max))
		fprintf(out,
			"# HELP hvgate_conntrack_entries Entries in the conntrack table.\n"
			"# TYPE hvgate_conntrack_entries gauge\nhvgate_conntrack_entries %llu\n"
			"# HELP hvgate_conntrack_limit nf_conntrack_max.\n"
			"# TYPE hvgate_conntrack_limit gauge\nhvgate_conntrack_limit %llu\n",
			(unsigned long long)count, (unsigned long long)max);
	fprintf(out,
		"# HELP hvgate_applies_total Rulesets applied to the kernel.\n"
		"# TYPE hvgate_applies_total counter\nhvgate_applies_total %llu\n"
		"# HELP hvgate_apply_errors_total Applies the kernel or the genid guard refused.\n"
		"# TYPE hvgate_apply_errors_total counter\nhvgate_apply_errors_total %llu\n"
		"# HELP hvgate_apply_seconds_total Time spent applying.\n"
		"# TYPE hvgate_apply_seconds_total counter\nhvgate_apply_seconds_total %.6f\n"
		"# HELP hvgate_last_apply_seconds Duration of the last apply.\n"
		"# TYPE hvgate_last_apply_seconds gauge\nhvgate_last_apply_seconds %.6f\n"
		"# HELP hvgate_reloads_total Reloads (SIGHUP or the reload command).\n"
		"# TYPE hvgate_reloads_total counter\nhvgate_reloads_total %llu\n"
		"# HELP hvgate_reload_errors_total Reloads that failed and changed nothing.\n"
		"# TYPE hvgate_reload_errors_total counter\nhvgate_reload_errors_total %llu\n"
		"# HELP hvgate_reverts_total Commits reverted for want of confirm.\n"
		"# TYPE hvgate_reverts_total counter\nhvgate_reverts_total %llu\n"
		"# HELP hvgate_errors_total Failed control commands.\n"
		"# TYPE hvgate_errors_total counter\nhvgate_errors_total %llu\n"
		"# HELP hvgate_control_requests_total Control requests.\n"
		"# TYPE hvgate_control_requests_total counter\nhvgate_control_requests_total %lu\n"
		"# HELP hvgate_control_malformed_total Control requests refused as malformed or oversized.\n"
		"# TYPE hvgate_control_malformed_total counter\nhvgate_control_malformed_total %lu\n"
		"# HELP hvgate_running_revision The revision in the kernel.\n"
		"# TYPE hvgate_running_revision gauge\nhvgate_running_revision %u\n",
		(unsigned long long)d->txn.stats.applies, (unsigned long long)d->txn.stats.apply_errors,
		d->txn.stats.apply_seconds_total, d->txn.stats.last_apply_seconds,
		(unsigned long long)d->txn.stats.reloads, (unsigned long long)d->txn.stats.reload_errors,
		(unsigned long long)d->txn.stats.reverts, (unsigned long long)d->errors, d->ctl.requests,
		d->ctl.bad_requests, d->txn.running_rev);
	if (d->log) {
		nflogd_counts(d->log, &ev, &wr, &dr);
		fprintf(out,
			"# HELP hvgate_log_events_total NFLOG events received, written, and dropped by the rate limit.\n"
			"# TYPE hvgate_log_events_total counter\n"
			"hvgate_log_events_total{result=\"received\"} %llu\n"
			"hvgate_log_events_total{result=\"written\"} %llu\n"
			"hvgate_log_events_total{result=\"dropped\"} %llu\n",
			(unsigned long long)ev, (unsigned long long)wr, (unsigned long long)dr);
	}
	if (d->fp) {
		struct fp_stats st;
		fastpath_stats(d->fp, &st);
		fprintf(out,
			"# HELP hvgate_fastpath_packets_total Packets the inspection fast path judged.\n"
			"# TYPE hvgate_fastpath_packets_total counter\nhvgate_fastpath_packets_total %llu\n"
			"# HELP hvgate_fastpath_flows_total Flows the fast path took up, cleared and blocked.\n"
			"# TYPE hvgate_fastpath_flows_total counter\n"
			"hvgate_fastpath_flows_total{verdict=\"inspected\"} %llu\n"
			"hvgate_fastpath_flows_total{verdict=\"cleared\"} %llu\n"
			"hvgate_fastpath_flows_total{verdict=\"blocked\"} %llu\n"
			"# HELP hvgate_fastpath_errors_total Packets the fast path could not judge, by cause.\n"
			"# TYPE hvgate_fastpath_errors_total counter\n"
			"hvgate_fastpath_errors_total{cause=\"malformed\"} %llu\n"
			"hvgate_fastpath_errors_total{cause=\"ct_unknown\"} %llu\n"
			"hvgate_fastpath_errors_total{cause=\"table_full\"} %llu\n"
			"hvgate_fastpath_errors_total{cause=\"unknown_rule\"} %llu\n"
			"hvgate_fastpath_errors_total{cause=\"verdict\"} %llu\n"
			"hvgate_fastpath_errors_total{cause=\"events_lost\"} %llu\n",
			(unsigned long long)st.packets, (unsigned long long)st.flows,
			(unsigned long long)st.done, (unsigned long long)st.blocked,
			(unsigned long long)st.malformed, (unsigned long long)st.ct_unknown,
			(unsigned long long)st.table_full,
			(unsigned long long)st.unknown_rule, (unsigned long long)st.verdict_errors,
			(unsigned long long)st.events_lost);
		fprintf(out,
			"# HELP hvgate_fastpath_normalised_total TCP packets the fast path dropped rather than let walk around its judgement, by cause.\n"
			"# TYPE hvgate_fastpath_normalised_total counter\n"
			"hvgate_fastpath_normalised_total{cause=\"urgent\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"bad_end\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"conflict\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"suspect\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"syn_data\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"midstream\"} %llu\n"
			"hvgate_fastpath_normalised_total{cause=\"ext_headers\"} %llu\n",
			(unsigned long long)st.urgent, (unsigned long long)st.bad_end,
			(unsigned long long)st.conflicts, (unsigned long long)st.suspect,
			(unsigned long long)st.syn_data, (unsigned long long)st.midstream,
			(unsigned long long)st.ext_headers);
		fprintf(out,
			"# HELP hvgate_fastpath_resets_total TCP resets sent to the ends of blocked flows.\n"
			"# TYPE hvgate_fastpath_resets_total counter\n"
			"hvgate_fastpath_resets_total{result=\"sent\"} %llu\n"
			"hvgate_fastpath_resets_total{result=\"failed\"} %llu\n",
			(unsigned long long)st.resets_sent, (unsigned long long)st.resets_failed);
		struct fastpath_queue_stat qs[FASTPATH_MAX_WORKERS * 4];
		size_t nq = fastpath_queue_stats(d->fp, qs, sizeof(qs) / sizeof(qs[0]));
		fprintf(out, "# HELP hvgate_fastpath_queue_dropped_total Packets the kernel could not queue to the fast path (full: the queue was full, socket: its socket was), per queue.\n"
			"# TYPE hvgate_fastpath_queue_dropped_total counter\n");
		for (size_t i = 0; i < nq; i++)
			fprintf(out,
				"hvgate_fastpath_queue_dropped_total{queue=\"%u\",cause=\"full\"} %u\n"
				"hvgate_fastpath_queue_dropped_total{queue=\"%u\",cause=\"socket\"} %u\n",
				qs[i].queue, qs[i].queue_dropped, qs[i].queue, qs[i].user_dropped);
	}
	vpnmgr_metrics(d->vpn, out);
}

/* Lifecycle. */

static int compile_configured(struct daemon *d, const struct conf *c, struct txn_policy **p, char *err,
			      size_t errsz)
{
	if (c->source == CONF_SOURCE_GIT)
		return txn_compile_git(&d->txn, c->policy_path, c->git_ref, p, err, errsz);
	return txn_compile_path(&d->txn, c->policy_path, p, err, errsz);
}

static void start_logs(struct daemon *d)
{
	int rc;

	if (d->log)
		nflogd_close(d->log);
	d->log = NULL;
	rc = nflogd_open(d->conf.nflog_group, d->conf.log_file, d->conf.log_syslog, d->conf.log_rate,
			 d->conf.log_burst, log_lookup, d, &d->log);
	if (rc)
		syslog(LOG_ERR, "NFLOG group %d: %s (logging off)", d->conf.nflog_group, strerror(-rc));
}

/* The control socket's limits come from the configuration (and reloads). */
static void control_limits(struct daemon *d)
{
	d->ctl.idle_seconds = d->conf.control_idle_seconds;
	d->ctl.request_seconds = d->conf.control_request_seconds;
	d->ctl.max_per_uid = d->conf.control_max_per_uid;
}

static void start_metrics(struct daemon *d)
{
	int rc;

	if (d->metrics)
		metrics_stop(d->metrics);
	d->metrics = NULL;
	if (!d->conf.metrics_enabled)
		return;
	rc = metrics_start(d->conf.metrics_addr, d->conf.metrics_port, write_metrics, d, &d->metrics);
	if (rc)
		syslog(LOG_ERR, "metrics on %s port %u: %s (metrics off)", d->conf.metrics_addr, d->conf.metrics_port,
		       strerror(-rc));
}

/* Re-reads the configuration and the policy; on any error nothing changes. */
static int reload(struct daemon *d, char *err, size_t errsz)
{
	struct conf c = { 0 };
	struct txn_policy *p;
	bool applied;
	int rc;

	sd_notify(0, "RELOADING=1");
	rc = conf_load(d->conf.file, &c, err, errsz);
	if (!rc && ((c.netns == NULL) != (d->conf.netns == NULL) || (c.netns && strcmp(c.netns, d->conf.netns)) ||
		    strcmp(c.state_dir, d->conf.state_dir) || strcmp(c.socket_path, d->conf.socket_path) ||
		    c.fastpath_enabled != d->conf.fastpath_enabled || c.fastpath_queue != d->conf.fastpath_queue ||
		    c.fastpath_workers != d->conf.fastpath_workers ||
		    c.fastpath_fail_closed != d->conf.fastpath_fail_closed)) {
		snprintf(err, errsz, "%s: netns, state_dir, control.socket and fastpath take effect at restart only",
			 d->conf.file);
		rc = -EINVAL;
	}
	if (!rc) {
		rc = compile_configured(d, &c, &p, err, errsz);
		d->source_compiles = rc == 0;
		if (!rc)
			memcpy(d->source_hash, p->hash, sizeof(d->source_hash));
	}
	if (rc) {
		/* txn_reload() counts its own; these failed before it. */
		d->txn.stats.reloads++;
		d->txn.stats.reload_errors++;
	} else {
		rc = txn_reload(&d->txn, p, &applied, err, errsz);
	}
	if (rc) {
		conf_free(&c);
		syslog(LOG_ERR, "reload failed, nothing changed: %s", err);
		sd_notify(0, "READY=1");
		return rc;
	}
	{
		bool logs_changed = c.nflog_group != d->conf.nflog_group || c.log_rate != d->conf.log_rate ||
				    c.log_burst != d->conf.log_burst || c.log_syslog != d->conf.log_syslog ||
				    (c.log_file == NULL) != (d->conf.log_file == NULL) ||
				    (c.log_file && strcmp(c.log_file, d->conf.log_file));
		bool metrics_changed = c.metrics_enabled != d->conf.metrics_enabled ||
				       c.metrics_port != d->conf.metrics_port || strcmp(c.metrics_addr, d->conf.metrics_addr);
		conf_free(&d->conf);
		d->conf = c;
		d->txn.netns = NULL;
		if (logs_changed)
			start_logs(d);
		if (metrics_changed)
			start_metrics(d);
		control_limits(d);
	}
	syslog(LOG_INFO, "reloaded: revision %u%s", d->txn.running_rev, applied ? "" : " (unchanged, not re-applied)");
	sd_notify(0, "READY=1");
	return 0;
}

static void cmd_confirm(struct daemon *d, struct json_buf *r)
{
	char err[TXN_ERR_MAX];

	if (txn_confirm(&d->txn, err, sizeof(err))) {
		reply_err(r, "%s", err);
		return;
	}
	reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	json_obj_end(r);
}

static void cmd_rollback(struct daemon *d, const struct json *req, struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	long long rev;

	if (json_get_int(req, "revision", &rev) || rev <= 0 || rev > UINT32_MAX) {
		reply_err(r, "rollback needs \"revision\" (a positive integer)");
		return;
	}
	if (txn_rollback(&d->txn, (unsigned)rev, err, sizeof(err))) {
		reply_err(r, "%s", err);
		return;
	}
	reply_ok_begin(r);
	policy_summary(r, "candidate", d->txn.candidate, 0);
	json_key(r, "compare");
	json_obj_begin(r);
	txn_compare(d->txn.running, d->txn.candidate, r);
	json_obj_end(r);
	json_obj_end(r);
}

static void cmd_reload(struct daemon *d, struct json_buf *r)
{
	char err[TXN_ERR_MAX];

	if (reload(d, err, sizeof(err))) {
		reply_err(r, "%s", err);
		return;
	}
	reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	reply_vpns(d, r);
	json_obj_end(r);
}

/* Is the candidate locked by a live process other than the peer? A lock
 * whose holder has exited is dropped here. */
static bool locked_by_other(struct daemon *d, const struct ctl_peer *peer)
{
	if (d->lock_pid && kill(d->lock_pid, 0) && errno == ESRCH)
		d->lock_pid = 0;
	return d->lock_pid && d->lock_pid != peer->pid;
}

static void reply_lock_err(struct daemon *d, struct json_buf *r)
{
	char when[32];
	struct tm tm;

	localtime_r(&d->lock_since, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	reply_err(r, "the candidate is locked by uid %u (pid %d, configure mode) since %s",
		  (unsigned)d->lock_uid, (int)d->lock_pid, when);
}

static void cmd_lock(struct daemon *d, const struct ctl_peer *peer, bool lock, struct json_buf *r)
{
	if (locked_by_other(d, peer)) {
		reply_lock_err(d, r);
		return;
	}
	d->lock_pid = lock ? peer->pid : 0;
	d->lock_uid = peer->uid;
	d->lock_since = time(NULL);
	reply_ok_begin(r);
	json_kv_bool(r, "locked", lock);
	json_obj_end(r);
}

enum cmd_id { C_STATUS, C_SHOW, C_BLOCKED, C_HISTORY, C_COMPARE, C_DIFF, C_LOAD, C_COMMIT, C_CONFIRM,
	      C_ROLLBACK, C_RELOAD, C_BLOCK, C_UNBLOCK, C_LOCK, C_UNLOCK };

static const struct {
	const char *name;
	enum cmd_id id;
	bool read_only; /* allowed for the control group; else root/admin group only */
} commands[] = {
	{ "status", C_STATUS, true },	 { "show", C_SHOW, true },	   { "blocked", C_BLOCKED, true },
	{ "history", C_HISTORY, true },	 { "compare", C_COMPARE, true },   { "diff", C_DIFF, true },
	{ "load", C_LOAD, false },	 { "commit", C_COMMIT, false },	   { "confirm", C_CONFIRM, false },
	{ "rollback", C_ROLLBACK, false }, { "reload", C_RELOAD, false }, { "block", C_BLOCK, false },
	{ "unblock", C_UNBLOCK, false }, { "lock", C_LOCK, false },	   { "unlock", C_UNLOCK, false },
};

static void handle(void *ctx, const struct ctl_peer *peer, const struct json *req, struct json_buf *r)
{
	struct daemon *d = ctx;
	const char *cmd = json_get_str(req, "cmd");
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		reply_err(r, "unknown command '%s'", cmd);
		return;
	}
	if (!(commands[i].read_only ? peer->may_read : peer->may_change)) {
		reply_err(r, "permission denied: '%s' needs %s", cmd,
			  commands[i].read_only ? "the control group" : "root or the admin group");
		return;
	}
	if ((commands[i].id == C_LOAD || commands[i].id == C_COMMIT || commands[i].id == C_ROLLBACK) &&
	    locked_by_other(d, peer)) {
		reply_lock_err(d, r);
		return;
	}
	switch (commands[i].id) {
	case C_STATUS: cmd_status(d, r); break;
	case C_SHOW: cmd_show(d, req, r); break;
	case C_BLOCKED: cmd_show_blocked(d, r); break;
	case C_HISTORY: cmd_history(d, r); break;
	case C_COMPARE: cmd_compare(d, req, r); break;
	case C_DIFF: cmd_diff(d, req, r); break;
	case C_LOAD: cmd_load(d, peer, req, r); break;
	case C_COMMIT: cmd_commit(d, peer, req, r); break;
	case C_CONFIRM: cmd_confirm(d, r); break;
	case C_ROLLBACK: cmd_rollback(d, req, r); break;
	case C_RELOAD: cmd_reload(d, r); break;
	case C_BLOCK: cmd_block(d, req, r, true); break;
	case C_UNBLOCK: cmd_block(d, req, r, false); break;
	case C_LOCK: cmd_lock(d, peer, true, r); break;
	case C_UNLOCK: cmd_lock(d, peer, false, r); break;
	}
}

static int setup_signals(struct daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return d->sigfd < 0 ? -errno : 0;
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	char err[TXN_ERR_MAX];

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(d, err, sizeof(err));
		else
			d->stop = true;
	}
}

/* Samples counters for "last hit". A large ruleset makes a dump expensive
 * (a quarter second at 10000 rules here), so the pause after a sample is at
 * least SAMPLE_LOAD_FACTOR times its duration: the loop spends at most a
 * tenth of its time sampling. */
#define SAMPLE_LOAD_FACTOR 10.0

static void sample_in_background(struct daemon *d)
{
	double start = mono(), took, pause = d->conf.counter_interval_ms / 1000.0;

	sample_counters(d);
	took = mono() - start;
	if (took * SAMPLE_LOAD_FACTOR > pause)
		pause = took * SAMPLE_LOAD_FACTOR;
	d->next_sample = mono() + pause;
}

static int poll_timeout_ms(const struct daemon *d)
{
	double wait = d->next_sample - mono();
	int ms;

	ms = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
	if (d->txn.pending) {
		int64_t left = txn_pending_left_ms(&d->txn);
		if (left < ms)
			ms = left <= 0 ? 0 : (int)left;
	}
	/* Requests already read wait for their turn, not for an event. */
	if (ctl_pending(&d->ctl))
		ms = 0;
	return ms;
}


/* `inspect` rules queue to the fast path's queues, through the kernel's
 * native queue expression where it has one (probed), else xt NFQUEUE. */
static void configure_fastpath(struct daemon *d)
{
	int native = nftio_probe_native_queue(NULL);
	d->txn.lower.queue_num = d->conf.fastpath_queue;
	d->txn.lower.queue_count = d->conf.fastpath_workers;
	d->txn.lower.native_queue = native == 1;
	d->txn.lower.queue_fail_closed = d->conf.fastpath_fail_closed;
	syslog(LOG_INFO, "fastpath: queues %u-%u through %s", d->conf.fastpath_queue,
	       d->conf.fastpath_queue + d->conf.fastpath_workers - 1,
	       native == 1 ? "the nft queue expression" : "the xt NFQUEUE target");
}

/* Gives the fast path the running policy's inspect rules when it changed. */
static void sync_fastpath(struct daemon *d)
{
	uint64_t key[3] = { d->txn.stats.applies, d->txn.stats.reloads, d->txn.stats.reverts };
	char err[256];

	if (!d->fp || (d->fp_policy == d->txn.running && !memcmp(key, d->fp_key, sizeof(key))))
		return;
	struct fp_ruleset *rs = fp_ruleset_build(d->txn.running ? d->txn.running->policy : NULL, err,
						 sizeof(err));
	if (!rs) {
		/* the old rules stay: the new policy's inspect rules are not judged */
		syslog(LOG_ERR, "fastpath: %s; it keeps the rules of the previous policy", err);
		return;
	}
	d->fp_policy = d->txn.running;
	memcpy(d->fp_key, key, sizeof(key));
	syslog(LOG_INFO, "fastpath: %zu inspect rule%s", fp_ruleset_count(rs),
	       fp_ruleset_count(rs) == 1 ? "" : "s");
	fastpath_set_rules(d->fp, rs);
}

static void start_fastpath(struct daemon *d)
{
	int rc = fastpath_start_flags(&d->fp, NULL, d->conf.fastpath_queue, d->conf.fastpath_workers,
				      d->conf.fastpath_fail_closed ? FASTPATH_FAIL_CLOSED : 0);
	if (rc) {
		/* inspected flows pass uninspected (the queue rules bypass) */
		syslog(LOG_ERR, "fastpath: queues %u-%u: %s; inspect rules pass uninspected",
		       d->conf.fastpath_queue, d->conf.fastpath_queue + d->conf.fastpath_workers - 1,
		       rc == -EBUSY ? "bound by another program" : strerror(-rc));
		d->fp = NULL;
		return;
	}
	sync_fastpath(d);
}

/* The fast path's decisions become events like the NFLOG ones (with
 * "source":"fastpath"), in the event file, syslog and `show log`. */
static void read_fastpath_events(struct daemon *d)
{
	struct fp_event ev[64];
	size_t n;

	/* fastpath_events() resets the eventfd itself */
	while ((n = fastpath_events(d->fp, ev, sizeof(ev) / sizeof(ev[0]))) > 0) {
		for (size_t i = 0; i < n; i++) {
			const struct fp_event *e = &ev[i];
			const char *rule = NULL, *verdict = NULL, *tenant = NULL, *own = NULL;
			char ts[40];
			struct json_buf b;

			log_lookup(d, e->rule_id, &rule, &verdict, &tenant, &own);
			nflogd_timestamp(ts, sizeof(ts));
			json_buf_init(&b);
			json_obj_begin(&b);
			json_kv_str(&b, "time", ts);
			json_kv_str(&b, "source", "fastpath");
			json_kv_str(&b, "rule", e->rule_id);
			json_kv_str(&b, "prefix", e->log_prefix);
			json_kv_str(&b, "tenant", tenant ? tenant : "");
			json_kv_uint(&b, "match", e->match);
			nflogd_flow_json(&b, e->family, e->protocol, e->src, e->dst);
			json_kv_uint(&b, "sport", e->sport);
			json_kv_uint(&b, "dport", e->dport);
			json_kv_str(&b, "verdict", e->action == POLICY_BLOCK ? "block" : "pass");
			json_obj_end(&b);
			if (!b.oom) {
				if (d->log)
					nflogd_emit(d->log, b.s);
				else
					syslog(LOG_INFO, "event %s", b.s);
			}
			json_buf_free(&b);
		}
	}
}

static void on_link(const char *ifname, void *ctx)
{
	struct daemon *d = ctx;
	if (d->txn.running && route_names_interface(d->txn.running->policy, ifname))
		d->reroute = true;
}

/* Link events: a segment's interface that appears, goes up or down (the
 * kernel drops the routes of a link that goes down) or goes away gets its
 * tenant routes again. Events lost to a full socket count as a change. */
static void read_links(struct daemon *d)
{
	int rc = linkwatch_read(d->links, on_link, d);
	if (rc == -ENOBUFS) {
		syslog(LOG_WARNING, "link events lost (socket full): tenant routes installed again");
		d->reroute = true;
	} else if (rc < 0) {
		syslog(LOG_ERR, "link events: %s; tenant routes no longer follow interfaces", strerror(-rc));
		linkwatch_close(d->links);
		d->links = NULL;
	}
	if (d->reroute) {
		d->reroute = false;
		txn_reroute(&d->txn);
	}
}

static void loop(struct daemon *d)
{
	struct pollfd pfd[DAEMON_MAX_POLLFDS];

	while (!d->stop) {
		size_t n = 0, ctl_first, n_ctl;
		int log_i = -1, met_i = -1, link_i = -1, fp_i = -1;
		char err[TXN_ERR_MAX];

		pfd[n++] = (struct pollfd){ .fd = d->sigfd, .events = POLLIN };
		if (d->log) {
			log_i = (int)n;
			pfd[n++] = (struct pollfd){ .fd = nflogd_fd(d->log), .events = POLLIN };
		}
		if (d->metrics) {
			met_i = (int)n;
			pfd[n++] = (struct pollfd){ .fd = metrics_fd(d->metrics), .events = POLLIN };
		}
		if (d->links) {
			link_i = (int)n;
			pfd[n++] = (struct pollfd){ .fd = linkwatch_fd(d->links), .events = POLLIN };
		}
		if (d->fp) {
			fp_i = (int)n;
			pfd[n++] = (struct pollfd){ .fd = fastpath_event_fd(d->fp), .events = POLLIN };
		}
		ctl_first = n;
		n_ctl = ctl_pollfds(&d->ctl, pfd + n, DAEMON_MAX_POLLFDS - n);
		n += n_ctl;
		if (poll(pfd, n, poll_timeout_ms(d)) < 0 && errno != EINTR) {
			syslog(LOG_ERR, "poll: %m");
			break;
		}
		if (pfd[0].revents & POLLIN)
			on_signal(d);
		if (log_i >= 0 && (pfd[log_i].revents & POLLIN))
			nflogd_read(d->log);
		if (link_i >= 0 && (pfd[link_i].revents & POLLIN))
			read_links(d);
		if (fp_i >= 0 && (pfd[fp_i].revents & POLLIN))
			read_fastpath_events(d);
		/* Also without input: MHD closes timed-out connections in
		 * MHD_run, and the loop wakes at least every counter interval. */
		if (met_i >= 0)
			metrics_run(d->metrics);
		ctl_dispatch(&d->ctl, pfd + ctl_first, n_ctl);
		if (txn_tick(&d->txn, err, sizeof(err)) < 0)
			syslog(LOG_ERR, "revert failed: %s", err);
		sync_vpn(d);
		sync_fastpath(d);
		if (mono() >= d->next_sample)
			sample_in_background(d);
	}
}

/* The directory of a file we create (socket, event log), made if missing,
 * so that a run without systemd's RuntimeDirectory/LogsDirectory works. */
static void make_parent_dir(const char *file)
{
	char dir[PATH_MAX], *slash;

	if (!file)
		return;
	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	if (mkdir(dir, 0755) && errno != EEXIST)
		syslog(LOG_WARNING, "cannot create %s: %m", dir);
}

static int enter_netns(const char *netns)
{
	int saved, rc = nftio_netns_enter(netns, &saved);

	/* The whole daemon lives in the namespace: netlink, NFLOG, conntrack,
	 * /proc/sys/net and the metrics listener all belong to it. */
	if (!rc && saved >= 0)
		close(saved);
	return rc;
}

/* Whether stderr goes to the journal: systemd then sets JOURNAL_STREAM to
 * the "device:inode" of that stream (systemd.exec(5)). syslog lands in the
 * journal as well, so a stderr copy would show every line twice. Compared
 * with fstat so an inherited variable on another stream does not count. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

/* The state directory and the socket's directory decide what runs and who
 * may ask: refuse one that another user could write into. */
static int check_private_dir(const char *setting, const char *path)
{
	struct stat st;

	if (stat(path, &st)) {
		syslog(LOG_ERR, "setting '%s': %s: %m", setting, path);
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		syslog(LOG_ERR, "setting '%s': %s is not a directory", setting, path);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		syslog(LOG_ERR, "setting '%s': %s is owned by uid %u, not by root or by us; refusing to start",
		       setting, path, (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		syslog(LOG_ERR, "setting '%s': %s is writable by its group or by others (mode %04o); refusing "
		       "to start (chmod go-w)", setting, path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* The directory part of a file path, "." for a bare name. */
static void dir_of(const char *file, char *dir, size_t size)
{
	char *slash;

	snprintf(dir, size, "%s", file);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
}

int daemon_run(const char *conf_file)
{
	struct daemon d = { .sigfd = -1, .ctl = { .fd = -1 } };
	char err[TXN_ERR_MAX];
	struct txn_policy *p = NULL;
	bool applied = false;
	int rc;

	openlog("hvgated", LOG_PID | (stderr_is_journal() ? 0 : LOG_PERROR), LOG_DAEMON);
	d.started = time(NULL);
	if (conf_load(conf_file, &d.conf, err, sizeof(err))) {
		syslog(LOG_ERR, "%s", err);
		return 1;
	}
	rc = enter_netns(d.conf.netns);
	if (rc) {
		syslog(LOG_ERR, "netns %s: %s", d.conf.netns, strerror(-rc));
		conf_free(&d.conf);
		return 1;
	}
	rc = setup_signals(&d);
	if (!rc)
		rc = txn_init(&d.txn, d.conf.state_dir, NULL, d.conf.nflog_group);
	if (!rc && d.conf.fastpath_enabled)
		configure_fastpath(&d);
	/* before the first apply, so that no interface event after its routes
	 * goes unseen */
	if (!rc) {
		int lw = linkwatch_open(&d.links);
		if (lw)
			syslog(LOG_WARNING, "link events: %s; tenant routes will not follow interfaces",
			       strerror(-lw));
	}
	if (rc) {
		syslog(LOG_ERR, "start: %s", strerror(-rc));
		goto out;
	}
	/* The socket first: a daemon already running on it makes this one
	 * stop before it touches the kernel. Requests wait until the loop. */
	make_parent_dir(d.conf.socket_path);
	make_parent_dir(d.conf.log_file);
	{
		char sock_dir[PATH_MAX];
		dir_of(d.conf.socket_path, sock_dir, sizeof(sock_dir));
		rc = check_private_dir("state_dir", d.conf.state_dir);
		if (!rc)
			rc = check_private_dir("control.socket", sock_dir);
		if (rc)
			goto out;
	}
	rc = ctl_listen(&d.ctl, d.conf.socket_path, d.conf.socket_mode, d.conf.socket_group != NULL,
			d.conf.socket_gid, d.conf.admin_group != NULL, d.conf.admin_gid, handle, &d);
	if (rc) {
		syslog(LOG_ERR, "control socket %s: %s", d.conf.socket_path,
		       rc == -EADDRINUSE ? "another hvgated is serving it" : strerror(-rc));
		goto out;
	}
	/* The configured source runs only when there is no committed
	 * revision: a commit is the operator's decision and survives restarts. */
	control_limits(&d);
	rc = compile_configured(&d, &d.conf, &p, err, sizeof(err));
	d.source_compiles = rc == 0;
	if (rc) {
		syslog(LOG_WARNING, "the configured policy does not compile: %s", err);
		p = NULL;
	} else {
		memcpy(d.source_hash, p->hash, sizeof(d.source_hash));
	}
	rc = txn_start(&d.txn, p, "start", &applied, err, sizeof(err));
	if (rc) {
		syslog(LOG_ERR, "start: %s", err);
		goto out;
	}
	syslog(LOG_INFO, "revision %u %s", d.txn.running_rev,
	       applied ? "applied" : "already in the kernel: not re-applied");
	if (source_differs(&d))
		syslog(LOG_WARNING, "the configured policy %s %s revision %u, which runs; 'hvgate reload' applies it",
		       d.conf.policy_path, d.source_compiles ? "differs from" : "does not compile; it is not",
		       d.txn.running_rev);
	for (size_t i = 0; i < d.conf.n_ifaces; i++)
		if (!if_nametoindex(d.conf.ifaces[i].name))
			syslog(LOG_WARNING, "interface %s (%s) is not present (yet)", d.conf.ifaces[i].name,
			       conf_role_name(d.conf.ifaces[i].role));
	if (vpnmgr_create(&d.vpn, d.conf.state_dir))
		syslog(LOG_ERR, "vpn: out of memory; the policy's vpn blocks are not run");
	sync_vpn(&d);
	if (d.conf.fastpath_enabled)
		start_fastpath(&d);
	start_logs(&d);
	start_metrics(&d);
	sample_counters(&d);
	d.next_sample = mono() + d.conf.counter_interval_ms / 1000.0;
	sd_notify(0, "READY=1");
	syslog(LOG_NOTICE, "hvgated: ready");
	loop(&d);
	sd_notify(0, "STOPPING=1");
	if (d.conf.flush_on_stop) {
		struct policy_diags dg;
		policy_diags_init(&dg);
		nftio_flush(NULL, &dg);
		policy_diags_free(&dg);
		syslog(LOG_NOTICE, "stopped; ruleset flushed (on_stop = flush)");
	} else {
		syslog(LOG_NOTICE, "stopped; ruleset kept (on_stop = keep)");
	}
	rc = 0;
out:
	fastpath_stop(d.fp);
	linkwatch_close(d.links);
	vpnmgr_free(d.vpn);
	ctl_close(&d.ctl);
	if (d.log)
		nflogd_close(d.log);
	if (d.metrics)
		metrics_stop(d.metrics);
	txn_free(&d.txn);
	free(d.hits);
	if (d.sigfd >= 0)
		close(d.sigfd);
	conf_free(&d.conf);
	closelog();
	return rc ? 1 : 0;
}
