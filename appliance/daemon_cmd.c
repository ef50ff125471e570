/* The daemon's control commands: the command table, permissions, the
 * candidate's lock and the commands that change something (daemon_internal.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "appliance/daemon_internal.h"
#include "appliance/duration.h"
#include "appliance/gitsrc.h"
#include "appliance/peerfs.h"
#include "policy/tenant.h"

/* Replies (the views use them too). */

void daemon_reply_ok_begin(struct json_buf *r)
{
	json_obj_begin(r);
	json_kv_bool(r, "ok", true);
}

void daemon_reply_err(struct json_buf *r, const char *fmt, ...)
{
	char msg[TXN_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_reply_error(r, msg);
}

/* Compiles what a load/diff request names: "path", "git" (a ref of the
 * configured repository, or "repo" too) or "revision". */
static int compile_request(struct daemon *d, const struct json *req, struct txn_policy **p,
			   char *err, size_t errsz)
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
		return txn_compile_git(&d->txn, repo ? repo : d->conf.policy_path, ref, p, err,
				       errsz);
	}
	if (!json_get_int(req, "revision", &rev) && rev > 0 && rev <= UINT32_MAX)
		return txn_compile_rev(&d->txn, (unsigned)rev, p, err, errsz);
	/* Nothing named: the configured source. */
	if (d->conf.source == CONF_SOURCE_GIT)
		return txn_compile_git(&d->txn, d->conf.policy_path, d->conf.git_ref, p, err,
				       errsz);
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
		snprintf(err, errsz, "cannot read files with the rights of uid %u: %s",
			 (unsigned)peer->uid, strerror(-rc));
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

static void cmd_load(struct daemon *d, const struct ctl_peer *peer, const struct json *req,
		     struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	struct txn_policy *p;
	bool stored;

	if (compile_as_peer(d, peer, req, &p, err, sizeof(err))) {
		daemon_reply_err(r, "%s", err);
		return;
	}
	stored = !txn_set_candidate(&d->txn, p, err, sizeof(err));
	daemon_reply_ok_begin(r);
	if (!stored)
		json_kv_str(r, "warning", err);
	daemon_policy_summary(r, "candidate", p, 0);
	json_key(r, "compare");
	struct json_buf cmp;
	json_buf_init(&cmp);
	json_obj_begin(&cmp);
	txn_compare(d->txn.running, p, &cmp);
	json_obj_end(&cmp);
	if (cmp.oom) {
		json_null(r);
	} else {
		json_raw(r, cmp.s);
		txn_note_candidate_changes(&d->txn, cmp.s, cmp.len);
	}
	json_buf_free(&cmp);
	json_obj_end(r);
}

static void cmd_compare(struct daemon *d, const struct json *req, struct json_buf *r)
{
	struct txn_policy *owned;
	const struct txn_policy *from;

	if (!d->txn.candidate) {
		daemon_reply_err(r, "no candidate: 'load' a policy first");
		return;
	}
	/* "revision": N compares the candidate with stored revision N. */
	owned = NULL;
	from = d->txn.running;
	if (json_get(req, "revision") && !(from = daemon_policy_of_revision(d, req, r, &owned)))
		return;
	daemon_reply_ok_begin(r);
	json_kv_uint(r, "running", d->txn.running_rev);
	txn_compare(from, d->txn.candidate, r);
	json_obj_end(r);
	if (owned)
		txn_policy_free(owned);
}

/* One side of a diff: a revision number, or "git:REF" of the configured
 * repository. */
static int compile_side(struct daemon *d, const struct json *v, struct txn_policy **p, char *err,
			size_t errsz)
{
	if (v && v->type == JSON_NUMBER && v->is_integer && v->integer > 0 &&
	    v->integer <= UINT32_MAX)
		return txn_compile_rev(&d->txn, (unsigned)v->integer, p, err, errsz);
	if (v && v->type == JSON_STRING && !strncmp(v->string, "git:", 4) &&
	    d->conf.source == CONF_SOURCE_GIT)
		return txn_compile_git(&d->txn, d->conf.policy_path, v->string + 4, p, err, errsz);
	snprintf(
	    err, errsz,
	    "diff needs \"from\" and \"to\": revision numbers, or \"git:REF\" with a git source");
	return -EINVAL;
}

static void cmd_diff(struct daemon *d, const struct json *req, struct json_buf *r)
{
	const struct json *from = json_get(req, "from"), *to = json_get(req, "to");
	struct txn_policy *a = NULL, *b = NULL;
	char err[TXN_ERR_MAX];

	if (compile_side(d, from, &a, err, sizeof(err)) ||
	    compile_side(d, to, &b, err, sizeof(err))) {
		txn_policy_free(a);
		daemon_reply_err(r, "%s", err);
		return;
	}
	daemon_reply_ok_begin(r);
	json_key(r, "from");
	json_value(r, from);
	json_key(r, "to");
	json_value(r, to);
	txn_compare(a, b, r);
	json_obj_end(r);
	txn_policy_free(a);
	txn_policy_free(b);
}

/* Applies the VPNs of a policy that just became the running one, so that
 * the reply of the command that changed it can say which of them failed. */
static void reply_vpns(struct daemon *d, struct json_buf *r)
{
	daemon_sync_vpn(d);
	if (d->vpn)
		vpnmgr_errors(d->vpn, r);
}

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "confirmed": absent (0), a number of seconds, or a duration string as
 * the CLI takes it; 0, negative numbers and garbage are errors. */
static int confirm_seconds(const struct json *v, uint64_t *seconds)
{
	if (!v)
		return 0;
	if (v->type == JSON_STRING)
		return duration_parse(v->string, TXN_CONFIRM_MAX_SECONDS, seconds);
	if (v->type != JSON_NUMBER || !v->is_integer || v->integer <= 0 ||
	    v->integer > TXN_CONFIRM_MAX_SECONDS)
		return -EINVAL;
	*seconds = (uint64_t)v->integer;
	return 0;
}

static void cmd_commit(struct daemon *d, const struct ctl_peer *peer, const struct json *req,
		       struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	const struct json *force = json_get(req, "force");
	uint64_t confirm = 0;
	double start = seconds_now();

	if (confirm_seconds(json_get(req, "confirmed"), &confirm)) {
		daemon_reply_err(
		    r,
		    "\"confirmed\" must be a duration of 1 s to 1 day: 90 (seconds), 90s, 10m, 1h");
		return;
	}
	if (txn_commit(&d->txn, peer->uid, json_get_str(req, "comment"), (unsigned)confirm,
		       force && force->type == JSON_BOOL && force->boolean, err, sizeof(err))) {
		d->errors++;
		daemon_reply_err(r, "%s", err);
		return;
	}
	daemon_reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	json_kv_str(r, "apply", d->txn.last_apply_mode);
	if (confirm) {
		json_kv_int(r, "confirm_deadline", (long long)(d->txn.pend.deadline_ms / 1000));
		json_kv_uint(r, "confirm_seconds", confirm);
		json_kv_uint(r, "revert_to", d->txn.pend.revert_to);
	}
	reply_vpns(d, r);
	json_key(r, "phases");
	json_obj_begin(r);
	txn_phases_json(&d->txn, r);
	json_kv_double(r, "commit_ms", (seconds_now() - start) * 1000);
	json_obj_end(r);
	json_obj_end(r);
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
	if (!daemon_parse_addr(buf, &e->family, e->addr))
		return false;
	bits = e->family == AF_INET ? 32 : 128;
	len = bits;
	if (slash) {
		unsigned long v = strtoul(slash, &end, 10);
		if (!*slash || *end || v > bits)
			return false;
		len = (unsigned)v;
	}
	uint8_t first[sizeof(e->addr)];
	memcpy(first, e->addr, sizeof(first));
	memcpy(e->addr_end, e->addr, sizeof(e->addr_end));
	if (policy_prefix_fill(first, e->addr_end, len, bits))
		return false; /* host bits set: not the prefix's address */
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
int daemon_range_prefix_len(const struct nftio_set_elem *e)
{
	struct ir_value lo = ir_value_addr(e->addr, e->family),
			hi = ir_value_addr(e->addr_end, e->family);
	return ir_value_prefix_len(&lo, &hi);
}

/* The tenant whose mark range an entry covers: "" for a global entry. */
const char *daemon_block_scope(const struct daemon *d, const struct nftio_set_elem *e, char *buf,
			       size_t size)
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
		daemon_reply_err(
		    r,
		    "\"addr\" must be an IPv4 or IPv6 address or prefix (ADDR/LEN, with the host bits zero)");
		return;
	}
	if (block && dur && duration_parse(dur, TXN_BLOCK_MAX_SECONDS, &seconds)) {
		daemon_reply_err(
		    r,
		    "\"for\" must be a duration such as 90 (seconds), 90s, 10m, 2h, 1d (at most a year)");
		return;
	}
	if (!d->txn.running) {
		daemon_reply_err(r, "no policy is running");
		return;
	}
	if (tenant && zone) {
		daemon_reply_err(
		    r,
		    "a block is scoped by a tenant or by a zone, not both (a tenant's segment is a zone)");
		return;
	}
	if (tenant && !(pt = tenant_named(d, tenant))) {
		daemon_reply_err(r, "no tenant '%s' in the running policy", tenant);
		return;
	}
	if (zone && (zi = zone_named(d, zone)) == POLICY_NONE) {
		daemon_reply_err(r, "no zone '%s' in the running policy", zone);
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
		daemon_reply_err(
		    r, "%s %s%s%s: %s", block ? "block" : "unblock", addr, scope, scope_name,
		    rc == -ENOENT ? "not in the block list (unblock names the entry as blocked)"
		    : rc == -ENOTEMPTY ? "overlaps an entry of the block list (see show blocked)"
		    : rc == -ENXIO     ? "the zone has no interface to block on"
				       : strerror(-rc));
		return;
	}
	syslog(LOG_NOTICE, "%s %s%s%s%s%s", block ? "blocked" : "unblocked", addr, scope,
	       scope_name, dur ? " for " : "", dur ? dur : "");
	daemon_reply_ok_begin(r);
	json_kv_str(r, "addr", addr);
	json_kv_str(r, "tenant", pt ? pt->name : "");
	if (zi != POLICY_NONE)
		json_kv_str(r, "zone", scope_name);
	if (block)
		json_kv_uint(r, "timeout", seconds);
	json_obj_end(r);
}

static void cmd_confirm(struct daemon *d, struct json_buf *r)
{
	char err[TXN_ERR_MAX];

	if (txn_confirm(&d->txn, err, sizeof(err))) {
		daemon_reply_err(r, "%s", err);
		return;
	}
	daemon_reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	json_obj_end(r);
}

static void cmd_rollback(struct daemon *d, const struct json *req, struct json_buf *r)
{
	char err[TXN_ERR_MAX];
	long long rev;

	if (json_get_int(req, "revision", &rev) || rev <= 0 || rev > UINT32_MAX) {
		daemon_reply_err(r, "rollback needs \"revision\" (a positive integer)");
		return;
	}
	d->txn.candidate_warning[0] = 0;
	if (txn_rollback(&d->txn, (unsigned)rev, err, sizeof(err))) {
		daemon_reply_err(r, "%s", err);
		return;
	}
	daemon_reply_ok_begin(r);
	if (d->txn.candidate_warning[0])
		json_kv_str(r, "warning", d->txn.candidate_warning);
	daemon_policy_summary(r, "candidate", d->txn.candidate, 0);
	json_key(r, "compare");
	json_obj_begin(r);
	txn_compare(d->txn.running, d->txn.candidate, r);
	json_obj_end(r);
	json_obj_end(r);
}

static void cmd_reload(struct daemon *d, struct json_buf *r)
{
	char err[TXN_ERR_MAX];

	if (daemon_reload(d, err, sizeof(err))) {
		daemon_reply_err(r, "%s", err);
		return;
	}
	daemon_reply_ok_begin(r);
	json_kv_uint(r, "revision", d->txn.running_rev);
	reply_vpns(d, r);
	json_obj_end(r);
}

/* The configure lock. It is held by a client process (SO_PEERCRED's pid,
 * with its start time so that a pid used again is not the holder) over any
 * number of connections, and stored in STATE/lock.json: it outlives a
 * restart of hvgated. When the holder is gone (its shell was killed, its
 * terminal closed) with uncommitted changes in the candidate, the lock is
 * stale: it still keeps the candidate for that session until an operator
 * breaks it with `unlock` (a live holder's lock: `unlock force`); gone
 * without changes, its lock is dropped. */

/* The start time of process pid (field 22 of /proc/PID/stat), 0 if there
 * is no such process. */
static unsigned long long proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold blanks and parentheses */
	if (!p)
		return 0;
	/* after ") ": state is field 3; starttime field 22 */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

static bool lock_holder_alive(const struct daemon *d)
{
	unsigned long long st;

	if (!d->lock_pid)
		return false;
	st = proc_start(d->lock_pid);
	if (d->lock_start)
		return st && st == d->lock_start;
	return !(kill(d->lock_pid, 0) && errno == ESRCH);
}

static bool lock_held_by(const struct daemon *d, const struct ctl_peer *peer)
{
	return d->lock_pid && d->lock_pid == peer->pid && lock_holder_alive(d);
}

/* A stale lock that protects nothing (no candidate, or one that builds the
 * running ruleset) is dropped: only a session that went away with changes
 * keeps the candidate locked. */
static void drop_idle_stale_lock(struct daemon *d)
{
	const struct txn_policy *c = d->txn.candidate, *run = d->txn.running;
	int rc;

	if (!d->lock_pid || lock_holder_alive(d) || (c && !(run && !strcmp(c->hash, run->hash))))
		return;
	rc = history_lock_clear(d->conf.state_dir);
	if (rc) {
		syslog(LOG_WARNING, "%s/lock.json: cannot remove it: %s", d->conf.state_dir,
		       strerror(-rc));
		return;
	}
	syslog(
	    LOG_NOTICE,
	    "the configure session of uid %u (pid %d) is gone without changes: its lock is dropped",
	    (unsigned)d->lock_uid, (int)d->lock_pid);
	d->lock_pid = 0;
	d->lock_start = 0;
}

/* Is the candidate locked by another process than the peer (alive or not)? */
static bool locked_by_other(struct daemon *d, const struct ctl_peer *peer)
{
	return d->lock_pid && !lock_held_by(d, peer);
}

static void reply_lock_err(struct daemon *d, struct json_buf *r)
{
	char when[32];
	struct tm tm;
	bool alive = lock_holder_alive(d);

	localtime_r(&d->lock_since, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (alive)
		daemon_reply_err(
		    r, "the candidate is locked by uid %u (pid %d, configure mode) since %s",
		    (unsigned)d->lock_uid, (int)d->lock_pid, when);
	else
		daemon_reply_err(
		    r,
		    "the candidate is locked by uid %u (pid %d, configure mode, the session is gone) "
		    "since %s: 'hvgate unlock' breaks the stale lock",
		    (unsigned)d->lock_uid, (int)d->lock_pid, when);
}

void daemon_lock_json(const struct daemon *d, struct json_buf *r)
{
	if (!d->lock_pid) {
		json_null(r);
		return;
	}
	json_obj_begin(r);
	json_kv_uint(r, "uid", d->lock_uid);
	json_kv_int(r, "pid", d->lock_pid);
	json_kv_int(r, "since", (long long)d->lock_since);
	json_kv_bool(r, "stale", !lock_holder_alive(d));
	json_obj_end(r);
}

void daemon_lock_restore(struct daemon *d)
{
	struct history_lock l;
	char moved[PATH_MAX + 32];
	int rc = history_lock_load(d->conf.state_dir, &l);

	if (rc == -EINVAL) {
		if (!history_quarantine(d->conf.state_dir, "lock.json", moved, sizeof(moved)))
			syslog(LOG_ERR, "%s/lock.json is corrupt; ignored and moved to %s",
			       d->conf.state_dir, moved);
		return;
	}
	if (rc)
		return;
	d->lock_pid = l.pid;
	d->lock_uid = l.uid;
	d->lock_since = l.since;
	d->lock_start = l.start;
	syslog(
	    LOG_NOTICE, "configure lock of uid %u (pid %d) restored%s", (unsigned)l.uid, (int)l.pid,
	    lock_holder_alive(d) ? "" : "; the session is gone: 'hvgate unlock' breaks the lock");
}

static void cmd_lock(struct daemon *d, const struct ctl_peer *peer, struct json_buf *r)
{
	struct history_lock l = { .pid = peer->pid,
				  .uid = peer->uid,
				  .since = time(NULL),
				  .start = proc_start(peer->pid) };
	int rc;

	if (locked_by_other(d, peer)) {
		reply_lock_err(d, r);
		return;
	}
	rc = history_lock_save(d->conf.state_dir, &l);
	if (rc) {
		daemon_reply_err(r, "cannot store the lock in %s: %s; not locked",
				 d->conf.state_dir, strerror(-rc));
		return;
	}
	d->lock_pid = l.pid;
	d->lock_uid = l.uid;
	d->lock_since = l.since;
	d->lock_start = l.start;
	daemon_reply_ok_begin(r);
	json_kv_bool(r, "locked", true);
	json_obj_end(r);
}

/* The holder leaves configure mode; or another admin breaks the lock: a
 * stale one with `unlock`, a live one with "force". */
static void cmd_unlock(struct daemon *d, const struct ctl_peer *peer, const struct json *req,
		       struct json_buf *r)
{
	const struct json *force = json_get(req, "force");
	bool mine = lock_held_by(d, peer), alive = lock_holder_alive(d);
	pid_t was_pid = d->lock_pid;
	uid_t was_uid = d->lock_uid;
	int rc;

	if (d->lock_pid && !mine && alive &&
	    !(force && force->type == JSON_BOOL && force->boolean)) {
		char when[32];
		struct tm tm;
		localtime_r(&d->lock_since, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		daemon_reply_err(
		    r,
		    "the candidate is locked by uid %u (pid %d, configure mode, still running) since "
		    "%s: 'unlock force' takes the lock away from that session",
		    (unsigned)d->lock_uid, (int)d->lock_pid, when);
		return;
	}
	if (d->lock_pid) {
		rc = history_lock_clear(d->conf.state_dir);
		if (rc) {
			daemon_reply_err(r, "cannot remove %s/lock.json: %s; still locked",
					 d->conf.state_dir, strerror(-rc));
			return;
		}
		if (!mine)
			syslog(LOG_NOTICE,
			       "uid %u (pid %d) broke the configure lock of uid %u (pid %d, %s)",
			       (unsigned)peer->uid, (int)peer->pid, (unsigned)was_uid, (int)was_pid,
			       alive ? "still running" : "gone");
	}
	d->lock_pid = 0;
	d->lock_start = 0;
	daemon_reply_ok_begin(r);
	json_kv_bool(r, "locked", false);
	if (was_pid && !mine) {
		json_key(r, "broken");
		json_obj_begin(r);
		json_kv_uint(r, "uid", was_uid);
		json_kv_int(r, "pid", was_pid);
		json_kv_bool(r, "was_alive", alive);
		json_obj_end(r);
	}
	json_obj_end(r);
}

enum cmd_id {
	C_STATUS,
	C_SHOW,
	C_BLOCKED,
	C_HISTORY,
	C_COMPARE,
	C_DIFF,
	C_LOAD,
	C_COMMIT,
	C_CONFIRM,
	C_ROLLBACK,
	C_RELOAD,
	C_BLOCK,
	C_UNBLOCK,
	C_LOCK,
	C_UNLOCK
};

static const struct {
	const char *name;
	enum cmd_id id;
	bool read_only; /* allowed for the control group; else root/admin group only */
} commands[] = {
	{ "status", C_STATUS, true },    { "show", C_SHOW, true },
	{ "blocked", C_BLOCKED, true },  { "history", C_HISTORY, true },
	{ "compare", C_COMPARE, true },  { "diff", C_DIFF, true },
	{ "load", C_LOAD, false },       { "commit", C_COMMIT, false },
	{ "confirm", C_CONFIRM, false }, { "rollback", C_ROLLBACK, false },
	{ "reload", C_RELOAD, false },   { "block", C_BLOCK, false },
	{ "unblock", C_UNBLOCK, false }, { "lock", C_LOCK, false },
	{ "unlock", C_UNLOCK, false },
};

void daemon_handle(void *ctx, const struct ctl_peer *peer, const struct json *req,
		   struct json_buf *r)
{
	struct daemon *d = ctx;
	const char *cmd = json_get_str(req, "cmd");
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		daemon_reply_err(r, "unknown command '%s'", cmd);
		return;
	}
	if (!(commands[i].read_only ? peer->may_read : peer->may_change)) {
		daemon_reply_err(r, "permission denied: '%s' needs %s", cmd,
				 commands[i].read_only ? "the control group"
						       : "root or the admin group");
		return;
	}
	/* what the last commit left for after its reply, when a request of
	 * the same round of the loop comes before txn_tick() */
	txn_settle(&d->txn);
	drop_idle_stale_lock(d);
	if ((commands[i].id == C_LOAD || commands[i].id == C_COMMIT ||
	     commands[i].id == C_ROLLBACK) &&
	    locked_by_other(d, peer)) {
		reply_lock_err(d, r);
		return;
	}
	switch (commands[i].id) {
	case C_STATUS: daemon_cmd_status(d, r); break;
	case C_SHOW: daemon_cmd_show(d, req, r); break;
	case C_BLOCKED: daemon_cmd_show_blocked(d, r); break;
	case C_HISTORY: daemon_cmd_history(d, r); break;
	case C_COMPARE: cmd_compare(d, req, r); break;
	case C_DIFF: cmd_diff(d, req, r); break;
	case C_LOAD: cmd_load(d, peer, req, r); break;
	case C_COMMIT: cmd_commit(d, peer, req, r); break;
	case C_CONFIRM: cmd_confirm(d, r); break;
	case C_ROLLBACK: cmd_rollback(d, req, r); break;
	case C_RELOAD: cmd_reload(d, r); break;
	case C_BLOCK: cmd_block(d, req, r, true); break;
	case C_UNBLOCK: cmd_block(d, req, r, false); break;
	case C_LOCK: cmd_lock(d, peer, r); break;
	case C_UNLOCK: cmd_unlock(d, peer, req, r); break;
	}
}
