/* The daemon: poll loop, lifecycle and signals (daemon.h). */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "appliance/daemon.h"
#include "appliance/daemon_internal.h"
#include "appliance/daemon_sampler.h"
#include "appliance/kernel/nlsock.h"
#include "appliance/kernel/route.h"

/* Does the configured source (as last read) differ from what runs? */
bool daemon_source_differs(const struct daemon *d)
{
	return !d->source_compiles || !d->txn.running ||
	       strcmp(d->source_hash, d->txn.running->hash);
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
struct rule_hit *daemon_hit_find(struct daemon *d, const char *id)
{
	return d->n_hits ? bsearch(id, d->hits, d->n_hits, sizeof(*d->hits), cmp_hit) : NULL;
}

/* Notes counters v[0..n) (sorted by id; taken over) as d->hits, with the
 * time each one was last seen moving. */
static void take_counters(struct daemon *d, struct nftio_rule_counter *v, size_t n)
{
	struct rule_hit *hits = calloc(n ? n : 1, sizeof(*hits));
	time_t now = time(NULL);

	if (!hits) {
		free(v);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rule_hit *old = daemon_hit_find(d, v[i].comment);
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

/* Reads the counters and notes the time each one was last seen moving. */
void daemon_sample_counters(struct daemon *d)
{
	struct nftio_rule_counter *v;
	size_t n;

	d->samples_taken++;
	if (!nftio_rule_counters(NULL, &v, &n))
		take_counters(d, v, n);
}

/* Brings the VPN devices in step with the running policy when it changed
 * (start, reload, commit, confirm-revert). */
void daemon_sync_vpn(struct daemon *d)
{
	if (!d->vpn || d->vpn_gen == d->txn.running_gen)
		return;
	d->vpn_gen = d->txn.running_gen;
	int failed = vpnmgr_apply(d->vpn, d->txn.running ? d->txn.running->policy : NULL);
	if (failed)
		syslog(LOG_WARNING, "%d vpn%s not running (see above)", failed,
		       failed == 1 ? "" : "s");
}

/* Lifecycle. */

static int compile_configured(struct daemon *d, const struct conf *c, struct txn_policy **p,
			      char *err, size_t errsz)
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
	rc = nflogd_open(d->conf.nflog_group, d->conf.log_file, d->conf.log_syslog,
			 d->conf.log_rate, d->conf.log_burst, daemon_log_lookup, d, &d->log);
	if (rc)
		syslog(LOG_ERR, "NFLOG group %d: %s (logging off)", d->conf.nflog_group,
		       strerror(-rc));
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
	rc = metrics_start(d->conf.metrics_addr, d->conf.metrics_port, daemon_write_metrics, d,
			   &d->metrics);
	if (rc)
		syslog(LOG_ERR, "metrics on %s port %u: %s (metrics off)", d->conf.metrics_addr,
		       d->conf.metrics_port, strerror(-rc));
}

/* Re-reads the configuration and the policy; on any error nothing changes. */
int daemon_reload(struct daemon *d, char *err, size_t errsz)
{
	struct conf c = { 0 };
	struct txn_policy *p;
	bool applied;
	int rc;

	sd_notify(0, "RELOADING=1");
	rc = conf_load(d->conf.file, &c, err, errsz);
	if (!rc &&
	    ((c.netns == NULL) != (d->conf.netns == NULL) ||
	     (c.netns && strcmp(c.netns, d->conf.netns)) ||
	     strcmp(c.state_dir, d->conf.state_dir) || strcmp(c.socket_path, d->conf.socket_path) ||
	     c.fastpath_enabled != d->conf.fastpath_enabled ||
	     c.fastpath_queue != d->conf.fastpath_queue ||
	     c.fastpath_workers != d->conf.fastpath_workers ||
	     c.fastpath_fail_closed != d->conf.fastpath_fail_closed)) {
		snprintf(
		    err, errsz,
		    "%s: netns, state_dir, control.socket and fastpath take effect at restart only",
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
		bool logs_changed =
		    c.nflog_group != d->conf.nflog_group || c.log_rate != d->conf.log_rate ||
		    c.log_burst != d->conf.log_burst || c.log_syslog != d->conf.log_syslog ||
		    (c.log_file == NULL) != (d->conf.log_file == NULL) ||
		    (c.log_file && strcmp(c.log_file, d->conf.log_file));
		bool metrics_changed = c.metrics_enabled != d->conf.metrics_enabled ||
				       c.metrics_port != d->conf.metrics_port ||
				       strcmp(c.metrics_addr, d->conf.metrics_addr);
		conf_free(&d->conf);
		d->conf = c;
		d->txn.netns = NULL;
		if (logs_changed)
			start_logs(d);
		if (metrics_changed)
			start_metrics(d);
		control_limits(d);
	}
	syslog(LOG_INFO, "reloaded: revision %u%s", d->txn.running_rev,
	       applied ? "" : " (unchanged, not re-applied)");
	sd_notify(0, "READY=1");
	return 0;
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
			daemon_reload(d, err, sizeof(err));
		else
			d->stop = true;
	}
}

/* Samples counters for "last hit". A large ruleset makes a dump expensive
 * (a quarter second at 10000 rules here), so the pause after a sample is at
 * least SAMPLE_LOAD_FACTOR times its duration: the loop spends at most a
 * tenth of its time sampling. */
#define SAMPLE_LOAD_FACTOR 10.0

/* Asks the sampler thread for a dump when one is due; without the thread
 * (it could not start) the loop dumps itself. */
static void sample_in_background(struct daemon *d)
{
	double start = mono(), took, pause = d->conf.counter_interval_ms / 1000.0;

	if (d->sampler) {
		sampler_ask(d->sampler, d->samples_taken);
		d->next_sample = start + pause; /* a floor: took_sample() sets it */
		return;
	}
	daemon_sample_counters(d);
	took = mono() - start;
	if (took * SAMPLE_LOAD_FACTOR > pause)
		pause = took * SAMPLE_LOAD_FACTOR;
	d->next_sample = mono() + pause;
}

/* The thread's dump is ready: noted, unless the loop sampled since it was
 * asked for (then it is older than d->hits). */
static void took_sample(struct daemon *d)
{
	struct nftio_rule_counter *v;
	double took = 0, pause = d->conf.counter_interval_ms / 1000.0;
	uint64_t tag = 0;
	size_t n;
	int rc = sampler_take(d->sampler, &v, &n, &took, &tag);

	if (rc == -EAGAIN)
		return;
	if (!rc && tag == d->samples_taken)
		take_counters(d, v, n);
	else
		free(v);
	if (took * SAMPLE_LOAD_FACTOR > pause)
		pause = took * SAMPLE_LOAD_FACTOR;
	d->next_sample = mono() + pause;
}

static int poll_timeout_ms(const struct daemon *d)
{
	double wait = d->next_sample - mono();
	int ms;

	ms = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
	if (d->sampler && sampler_busy(d->sampler))
		ms = d->conf.counter_interval_ms; /* its fd wakes the loop when done */
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

/* `inspect` rules queue to the fast path's queues. How (the kernel's
 * native queue expression where it has one, else xt NFQUEUE) is
 * nftio_apply()'s choice, which probes the kernel; the probe here only
 * says in the log which one it will be. */
static void configure_fastpath(struct daemon *d)
{
	int native = nftio_probe_native_queue(NULL);
	d->txn.lower.queue_num = d->conf.fastpath_queue;
	d->txn.lower.queue_count = d->conf.fastpath_workers;
	d->txn.lower.queue_fail_closed = d->conf.fastpath_fail_closed;
	syslog(LOG_INFO, "fastpath: queues %u-%u through %s", d->conf.fastpath_queue,
	       d->conf.fastpath_queue + d->conf.fastpath_workers - 1,
	       native == 1 ? "the nft queue expression" : "the xt NFQUEUE target");
}

/* Gives the fast path the running policy's inspect rules when it changed. */
static void sync_fastpath(struct daemon *d)
{
	char err[256];

	if (!d->fp || d->fp_gen == d->txn.running_gen)
		return;
	struct fp_ruleset *rs =
	    fp_ruleset_build(d->txn.running ? d->txn.running->policy : NULL, err, sizeof(err));
	if (!rs) {
		/* the old rules stay: the new policy's inspect rules are not judged */
		syslog(LOG_ERR, "fastpath: %s; it keeps the rules of the previous policy", err);
		return;
	}
	d->fp_gen = d->txn.running_gen;
	syslog(LOG_INFO, "fastpath: %zu inspect rule%s", fp_ruleset_count(rs),
	       fp_ruleset_count(rs) == 1 ? "" : "s");
	fastpath_set_rules(d->fp, rs);
}

static void start_fastpath(struct daemon *d)
{
	int rc =
	    fastpath_start_flags(&d->fp, NULL, d->conf.fastpath_queue, d->conf.fastpath_workers,
				 d->conf.fastpath_fail_closed ? FASTPATH_FAIL_CLOSED : 0);
	if (rc) {
		/* inspected flows pass uninspected (the queue rules bypass) */
		syslog(LOG_ERR, "fastpath: queues %u-%u: %s; inspect rules pass uninspected",
		       d->conf.fastpath_queue,
		       d->conf.fastpath_queue + d->conf.fastpath_workers - 1,
		       rc == -EBUSY ? "bound by another program" : strerror(-rc));
		d->fp = NULL;
		return;
	}
	sync_fastpath(d);
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
		syslog(LOG_WARNING,
		       "link events lost (socket full): tenant routes installed again");
		d->reroute = true;
	} else if (rc < 0) {
		syslog(LOG_ERR, "link events: %s; tenant routes no longer follow interfaces",
		       strerror(-rc));
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
		int log_i = -1, met_i = -1, link_i = -1, fp_i = -1, smp_i = -1;
		char err[TXN_ERR_MAX];

		pfd[n++] = (struct pollfd){ .fd = d->sigfd, .events = POLLIN };
		if (d->log) {
			log_i = (int)n;
			pfd[n++] = (struct pollfd){ .fd = nflogd_fd(d->log), .events = POLLIN };
		}
		if (d->metrics) {
			met_i = (int)n;
			pfd[n++] =
			    (struct pollfd){ .fd = metrics_fd(d->metrics), .events = POLLIN };
		}
		if (d->links) {
			link_i = (int)n;
			pfd[n++] =
			    (struct pollfd){ .fd = linkwatch_fd(d->links), .events = POLLIN };
		}
		if (d->fp) {
			fp_i = (int)n;
			pfd[n++] =
			    (struct pollfd){ .fd = fastpath_event_fd(d->fp), .events = POLLIN };
		}
		if (d->sampler) {
			smp_i = (int)n;
			pfd[n++] =
			    (struct pollfd){ .fd = sampler_fd(d->sampler), .events = POLLIN };
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
			daemon_read_fastpath_events(d);
		/* Also without input: MHD closes timed-out connections in
		 * MHD_run, and the loop wakes at least every counter interval. */
		if (met_i >= 0)
			metrics_run(d->metrics);
		ctl_dispatch(&d->ctl, pfd + ctl_first, n_ctl);
		if (txn_tick(&d->txn, err, sizeof(err)) < 0)
			syslog(LOG_ERR, "revert failed: %s", err);
		daemon_sync_vpn(d);
		sync_fastpath(d);
		daemon_rule_index_sync(d);
		if (smp_i >= 0 && (pfd[smp_i].revents & POLLIN))
			took_sample(d);
		if (mono() >= d->next_sample && !(d->sampler && sampler_busy(d->sampler)))
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
	int saved, rc = nl_netns_enter(netns, &saved);

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
		syslog(
		    LOG_ERR,
		    "setting '%s': %s is owned by uid %u, not by root or by us; refusing to start",
		    setting, path, (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		syslog(
		    LOG_ERR,
		    "setting '%s': %s is writable by its group or by others (mode %04o); refusing "
		    "to start (chmod go-w)",
		    setting, path, (unsigned)(st.st_mode & 07777));
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
			syslog(LOG_WARNING,
			       "link events: %s; tenant routes will not follow interfaces",
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
			d.conf.socket_gid, d.conf.admin_group != NULL, d.conf.admin_gid,
			daemon_handle, &d);
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
	txn_restore_candidate(&d.txn);
	daemon_lock_restore(&d);
	if (daemon_source_differs(&d))
		syslog(
		    LOG_WARNING,
		    "the configured policy %s %s revision %u, which runs; 'hvgate reload' applies it",
		    d.conf.policy_path,
		    d.source_compiles ? "differs from" : "does not compile; it is not",
		    d.txn.running_rev);
	for (size_t i = 0; i < d.conf.n_ifaces; i++)
		if (!if_nametoindex(d.conf.ifaces[i].name))
			syslog(LOG_WARNING, "interface %s (%s) is not present (yet)",
			       d.conf.ifaces[i].name, conf_role_name(d.conf.ifaces[i].role));
	if (vpnmgr_create(&d.vpn, d.conf.state_dir))
		syslog(LOG_ERR, "vpn: out of memory; the policy's vpn blocks are not run");
	daemon_sync_vpn(&d);
	daemon_rule_index_sync(&d);
	if (d.conf.fastpath_enabled)
		start_fastpath(&d);
	start_logs(&d);
	start_metrics(&d);
	daemon_sample_counters(&d);
	d.next_sample = mono() + d.conf.counter_interval_ms / 1000.0;
	rc = sampler_start(&d.sampler);
	if (rc)
		syslog(LOG_WARNING, "counter sampler thread: %s; the loop samples itself",
		       strerror(-rc));
	rc = 0;
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
	daemon_rule_index_free(&d.rules);
	sampler_stop(d.sampler);
	txn_free(&d.txn);
	free(d.hits);
	if (d.sigfd >= 0)
		close(d.sigfd);
	conf_free(&d.conf);
	closelog();
	return rc ? 1 : 0;
}
