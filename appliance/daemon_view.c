/* The daemon's read-only views: status, show, history, the block list (daemon_internal.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/kernel/conntrack.h"
#include "appliance/daemon_internal.h"
#include "appliance/txn_delta.h"
#include "policy/eval.h"
#include "policy/lower.h"
#include "policy/tenant.h"

void daemon_policy_summary(struct json_buf *r, const char *key, const struct txn_policy *p,
			   unsigned rev)
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

void daemon_cmd_status(struct daemon *d, struct json_buf *r)
{
	uint32_t genid = 0;

	daemon_reply_ok_begin(r);
	json_kv_str(r, "version", DAEMON_VERSION);
	json_kv_int(r, "pid", getpid());
	json_kv_int(r, "uptime", (long long)(time(NULL) - d->started));
	json_kv_str(r, "config", d->conf.file);
	json_kv_str(r, "netns", d->conf.netns ? d->conf.netns : "");
	daemon_policy_summary(r, "running", d->txn.running, d->txn.running_rev);
	daemon_policy_summary(r, "candidate", d->txn.candidate, 0);
	const struct txn_changes *ch = txn_candidate_changes(&d->txn);
	if (ch) {
		/* as `compare` counts them, kept from the `load` */
		json_key(r, "candidate_changes");
		json_obj_begin(r);
		json_kv_uint(r, "added", ch->added);
		json_kv_uint(r, "removed", ch->removed);
		json_kv_uint(r, "changed", ch->changed);
		json_kv_uint(r, "moved", ch->moved);
		json_obj_end(r);
	}
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
	daemon_lock_json(d, r);
	json_kv_bool(r, "source_differs", daemon_source_differs(d));
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
		json_kv_uint(r, "unseen_start", st.unseen_start);
		json_kv_uint(r, "syn_changed", st.syn_changed);
		json_kv_uint(r, "synacks", st.synacks);
		json_kv_uint(r, "unseen_peer_isn", st.unseen_peer_isn);
		json_kv_uint(r, "peer_isn_changed", st.peer_isn_changed);
		json_kv_uint(r, "ip_options", st.ip_options);
		json_kv_uint(r, "resets_sent", st.resets_sent);
		json_kv_uint(r, "resets_failed", st.resets_failed);
		json_kv_uint(r, "ct_requests", st.ct_requests);
		json_kv_uint(r, "after_block", st.after_block);
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

const char *daemon_action_name(enum policy_action a)
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
const char *daemon_implicit_kind(const struct policy *p, const char *id)
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

/* The tenant an implicit row belongs to: a tenant's `default` (by the
 * FILE:LINE of "default:FILE:LINE"), a segment's anti-spoofing; "" for the
 * global ones (the built-in default, the block list, invalid state, the
 * inter-tenant check count every tenant's drops together). */
const char *daemon_implicit_tenant(const struct policy *p, const char *id)
{
	const struct policy_zone *seg = antispoof_segment(p, id);
	const char *colon = strrchr(id, ':');

	if (seg)
		return p->tenants[seg->tenant].name;
	if (!p || strncmp(id, "default:", 8) || !colon || colon < id + 8)
		return "";
	for (size_t i = 0; i < p->n_defaults; i++) {
		const struct policy_default *df = &p->defaults[i];
		const char *file = df->loc.file ? df->loc.file : "";
		if (df->tenant != POLICY_NONE && strlen(file) == (size_t)(colon - id - 8) &&
		    !strncmp(file, id + 8, strlen(file)) &&
		    df->loc.line == strtoul(colon + 1, NULL, 10))
			return p->tenants[df->tenant].name;
	}
	return "";
}

/* `implicit`: one row per counted drop that no rule of the policy names. */
static void show_implicit(struct daemon *d, struct json_buf *r)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	json_key(r, "implicit");
	json_arr_begin(r);
	for (size_t i = 0; i < d->n_hits; i++) {
		const struct rule_hit *h = &d->hits[i];
		const char *kind = daemon_implicit_kind(p, h->id), *colon, *tenant;
		const struct policy_zone *seg = antispoof_segment(p, h->id);
		char text[256] = "";
		if (!kind)
			continue;
		tenant = daemon_implicit_tenant(p, h->id);
		if (seg) {
			const char *file = seg->loc.file ? seg->loc.file : "";
			txn_source_line(d->txn.running, file, seg->loc.line, text, sizeof(text));
		}
		colon = strrchr(h->id, ':');
		if (!strcmp(kind, "default") && strcmp(h->id, POLICY_COMMENT_DEFAULT_BUILTIN) &&
		    colon && d->txn.running) {
			char file[PATH_MAX];
			snprintf(file, sizeof(file), "%.*s", (int)(colon - h->id - 8), h->id + 8);
			txn_source_line(d->txn.running, file,
					(unsigned)strtoul(colon + 1, NULL, 10), text, sizeof(text));
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
	/* where each line starts: 10,000 rules' texts without reading the files 10,000 times */
	struct policy_eval_lines *lines = p ? policy_eval_lines_new(&d->txn.running->diags) : NULL;

	daemon_sample_counters(d);
	daemon_reply_ok_begin(r);
	json_key(r, "rules");
	json_arr_begin(r);
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct policy_rule *pr = &p->rules[i];
		const struct rule_hit *h = daemon_hit_find(d, pr->kernel_id);
		char loc[PATH_MAX + 32];
		char text[1024];
		json_obj_begin(r);
		json_kv_str(r, "id", pr->id);
		json_kv_str(r, "kernel_id", pr->kernel_id);
		snprintf(loc, sizeof(loc), "%s:%u", pr->loc.file ? pr->loc.file : "?",
			 pr->loc.line);
		json_kv_str(r, "location", loc);
		if (lines)
			policy_eval_lines_source_span(lines, &pr->loc, pr->text_len, text,
						      sizeof(text));
		else
			txn_rule_text(d->txn.running, &pr->loc, pr->text_len, text, sizeof(text));
		json_kv_str(r, "text", text);
		json_kv_str(r, "action", daemon_action_name(pr->action));
		json_kv_str(r, "tenant",
			    pr->tenant == POLICY_NONE ? "" : p->tenants[pr->tenant].name);
		json_kv_uint(r, "packets", h ? h->packets : 0);
		json_kv_uint(r, "bytes", h ? h->bytes : 0);
		json_key(r, "counters_since");
		if (txn_delta_since_get(d->txn.since, pr->kernel_id))
			json_int(r, (long long)txn_delta_since_get(d->txn.since, pr->kernel_id));
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
	policy_eval_lines_free(lines);
	show_implicit(d, r);
	json_obj_end(r);
}

static void show_tenants(struct daemon *d, struct json_buf *r)
{
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;

	daemon_sample_counters(d);
	daemon_reply_ok_begin(r);
	json_key(r, "tenants");
	json_arr_begin(r);
	for (size_t t = 0; p && t < p->n_tenants; t++) {
		uint64_t packets = 0, bytes = 0;
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct rule_hit *h = daemon_hit_find(d, p->rules[i].kernel_id);
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
		json_kv_str(
		    r, "tenant",
		    p->zones[z].tenant == POLICY_NONE ? "" : p->tenants[p->zones[z].tenant].name);
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
}

/* Parses ADDR into family/bytes; false if it is not an address. */
bool daemon_parse_addr(const char *s, int *family, uint8_t addr[16])
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
			daemon_reply_err(r, "no tenant '%s' in the running policy", tenant);
			return;
		}
		f.zone_set = true;
	}
	if (addr && !daemon_parse_addr(addr, &f.family, f.addr)) {
		daemon_reply_err(r, "'%s' is not an IPv4 or IPv6 address", addr);
		return;
	}
	daemon_reply_ok_begin(r);
	if (nat) {
		const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
		static const char *kinds[] = { "masquerade", "snat", "dnat", "netmap" };
		json_key(r, "rules");
		json_arr_begin(r);
		for (size_t i = 0; p && i < p->n_nats; i++) {
			json_obj_begin(r);
			json_kv_str(r, "id", p->nats[i].id);
			json_kv_str(r, "kind", kinds[p->nats[i].kind]);
			json_kv_str(r, "tenant",
				    p->nats[i].tenant == POLICY_NONE
					? ""
					: p->tenants[p->nats[i].tenant].name);
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
const struct txn_policy *daemon_policy_of_revision(struct daemon *d, const struct json *req,
						   struct json_buf *r, struct txn_policy **owned)
{
	char err[TXN_ERR_MAX];
	long long rev = 0;

	*owned = NULL;
	if (json_get(req, "revision") &&
	    (json_get_int(req, "revision", &rev) || rev <= 0 || rev > UINT32_MAX)) {
		daemon_reply_err(r, "\"revision\" must be a positive integer");
		return NULL;
	}
	if (!rev || (unsigned)rev == d->txn.running_rev) {
		if (!d->txn.running)
			daemon_reply_err(r, "no running revision");
		return d->txn.running;
	}
	if (txn_compile_rev(&d->txn, (unsigned)rev, owned, err, sizeof(err))) {
		daemon_reply_err(r, "%s", err);
		return NULL;
	}
	return *owned;
}

/* `show source [revision N]`: the text of every file the revision read. */
static void show_source(struct daemon *d, const struct json *req, struct json_buf *r)
{
	struct txn_policy *owned;
	const struct txn_policy *p = daemon_policy_of_revision(d, req, r, &owned);
	long long rev = d->txn.running_rev;

	if (!p)
		return;
	json_get_int(req, "revision", &rev);
	daemon_reply_ok_begin(r);
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

void daemon_cmd_show(struct daemon *d, const struct json *req, struct json_buf *r)
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
		daemon_reply_ok_begin(r);
		json_key(r, "events");
		if (d->log)
			nflogd_recent(d->log, n > 0 && n <= NFLOGD_RECENT ? (size_t)n : 50, r);
		else
			json_raw(r, "[]");
		json_obj_end(r);
	} else if (!strcmp(what, "vpn")) {
		daemon_reply_ok_begin(r);
		vpnmgr_show(d->vpn, r);
		json_obj_end(r);
	} else if (!strcmp(what, "source")) {
		show_source(d, req, r);
	} else
		daemon_reply_err(r,
				 "show what? rules, tenants, nat, conntrack, log, vpn or source");
}

void daemon_cmd_history(struct daemon *d, struct json_buf *r)
{
	struct history_rev *v;
	size_t n;
	int rc = history_store_list(d->conf.state_dir, &v, &n);

	if (rc) {
		daemon_reply_err(r, "cannot read the history: %s", strerror(-rc));
		return;
	}
	daemon_reply_ok_begin(r);
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
		bool next_on_it =
		    i + 1 < n ? v[i + 1].previous == v[i].id : d->txn.running_rev == v[i].id;
		json_kv_bool(r, "reverted", v[i].confirm_seconds && !pending && !next_on_it);
		json_obj_end(r);
	}
	json_arr_end(r);
	json_obj_end(r);
	free(v);
}

/* The zone of a zone-list element, by name ("?" if no running zone has its
 * interfaces); "" for the other lists. An entry is one element per pattern
 * of its zone: *dup is set for all but the first. */
static const char *block_zone(const struct daemon *d, const struct nftio_set_elem *v, size_t i,
			      bool *dup)
{
	size_t z = txn_block_zone_of(&d->txn, &v[i]);

	*dup = false;
	if (!v[i].by_ifname)
		return "";
	if (z == POLICY_NONE)
		return "?";
	for (size_t k = 0; k < i && !*dup; k++)
		*dup = txn_block_zone_of(&d->txn, &v[k]) == z && v[k].family == v[i].family &&
		       !memcmp(v[k].addr, v[i].addr, 16) &&
		       !memcmp(v[k].addr_end, v[i].addr_end, 16);
	return d->txn.running->policy->zones[z].name;
}

void daemon_cmd_show_blocked(struct daemon *d, struct json_buf *r)
{
	static const char *sets[] = { POLICY_SET_BLOCKED4, POLICY_SET_BLOCKED6,
				      POLICY_SET_BLOCKED_ZONE4, POLICY_SET_BLOCKED_ZONE6 };

	daemon_reply_ok_begin(r);
	json_key(r, "blocked");
	json_arr_begin(r);
	for (size_t s = 0; s < 4; s++) {
		struct nftio_set_elem *v;
		size_t n;
		if (s < 2 ? nftio_set_elems(NULL, sets[s], &v, &n)
			  : nftio_set_elems_by_ifname(NULL, sets[s], &v, &n))
			continue;
		for (size_t i = 0; i < n; i++) {
			char text[2 * INET6_ADDRSTRLEN + 8], end[INET6_ADDRSTRLEN], id[16];
			int len = daemon_range_prefix_len(&v[i]);
			bool dup;
			const char *zone = block_zone(d, v, i, &dup);
			if (dup)
				continue;
			inet_ntop(v[i].family, v[i].addr, text, INET6_ADDRSTRLEN);
			if (len < 0) {
				inet_ntop(v[i].family, v[i].addr_end, end, sizeof(end));
				snprintf(text + strlen(text), sizeof(text) - strlen(text), "-%s",
					 end);
			} else if (len < (v[i].family == AF_INET ? 32 : 128)) {
				snprintf(text + strlen(text), sizeof(text) - strlen(text), "/%d",
					 len);
			}
			json_obj_begin(r);
			json_kv_str(r, "addr", text);
			json_kv_str(r, "tenant",
				    v[i].by_ifname ? ""
						   : daemon_block_scope(d, &v[i], id, sizeof(id)));
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
