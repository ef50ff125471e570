/* hvgate fastpath run POLICY --queue Q: the inspection fast path in the
 * foreground, without the daemon (tests, and trying a policy's inspect
 * blocks against real traffic). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "appliance/fastpath/fastpath.h"
#include "appliance/json.h"
#include "cli/cli.h"
#include "policy/policy.h"

/* How often the loop looks at the clock and the stop signal. */
#define RUN_POLL_MS 100
/* Events taken from the fast path per wake-up. */
#define RUN_EVENT_BATCH 64

static volatile sig_atomic_t stop_signal, reload_signal;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_signal = 1;
	else
		stop_signal = sig;
}

static int usage(FILE *out)
{
	fprintf(out,
		"usage: hvgate fastpath run POLICY --queue Q [--workers W] [--netns NAME]\n"
		"                          [--seconds N]\n\n"
		"Loads the policy, compiles the content matches of its inspect rules and\n"
		"serves NFQUEUE queues Q .. Q+W-1 (W: 1 by default) until SIGINT or SIGTERM,\n"
		"or for N seconds; SIGHUP reads the policy again (an invalid one is not taken).\n"
		"Prints one JSON line on stdout per match that decides a\n"
		"flow ({\"type\":\"event\",...}) and the counters when it stops\n"
		"({\"type\":\"stats\",...}). The kernel side (the ruleset that queues flows\n"
		"and sets their labels) is not installed by this verb.\n\n"
		"  --queue Q       first queue number (0-65535)\n"
		"  --workers W     worker threads, one queue each (1-%d)\n"
		"  --netns NAME    serve the queues of network namespace NAME\n"
		"  --seconds N     stop after N seconds\n"
		"Exit: 0 stopped normally, 1 the policy is invalid or a queue cannot be bound,\n"
		"2 usage error or a policy path that does not exist.\n",
		FASTPATH_MAX_WORKERS);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

struct run_args {
	const char *policy;
	long queue;
	long workers;
	const char *netns;
	long seconds;
};

static int parse_args(int argc, char **argv, struct run_args *a)
{
	memset(a, 0, sizeof(*a));
	a->queue = -1;
	a->workers = 1;
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (arg[0] != '-') {
			if (a->policy)
				return -1;
			a->policy = arg;
			continue;
		}
		if (!val)
			return -1;
		i++;
		if (!strcmp(arg, "--queue")) {
			if (cli_parse_long(val, 0, UINT16_MAX, &a->queue))
				return -1;
		} else if (!strcmp(arg, "--workers")) {
			if (cli_parse_long(val, 1, FASTPATH_MAX_WORKERS, &a->workers))
				return -1;
		} else if (!strcmp(arg, "--seconds")) {
			if (cli_parse_long(val, 1, 86400 * 365, &a->seconds))
				return -1;
		} else if (!strcmp(arg, "--netns")) {
			a->netns = val;
		} else {
			return -1;
		}
	}
	if (!a->policy || a->queue < 0 || a->queue + a->workers - 1 > UINT16_MAX)
		return -1;
	return 0;
}

static void print_event(const struct fp_event *ev)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	struct json_buf b;

	inet_ntop(ev->family, ev->src, src, sizeof(src));
	inet_ntop(ev->family, ev->dst, dst, sizeof(dst));
	json_buf_init(&b);
	json_obj_begin(&b);
	json_kv_str(&b, "type", "event");
	json_kv_str(&b, "rule", ev->rule_id);
	json_kv_uint(&b, "inspect_rule", ev->rule);
	json_kv_uint(&b, "match", ev->match);
	json_kv_str(&b, "action", ev->action == POLICY_BLOCK ? "block" : "pass");
	json_kv_bool(&b, "log", ev->log);
	json_kv_str(&b, "prefix", ev->log_prefix);
	json_kv_str(&b, "family", ev->family == AF_INET ? "ip" : "ip6");
	json_kv_str(&b, "protocol", ev->protocol == IPPROTO_TCP ? "tcp" : "udp");
	json_kv_str(&b, "src", src);
	json_kv_uint(&b, "sport", ev->sport);
	json_kv_str(&b, "dst", dst);
	json_kv_uint(&b, "dport", ev->dport);
	json_kv_uint(&b, "ct_id", ev->ct_id);
	json_obj_end(&b);
	if (!b.oom)
		printf("%s\n", b.s);
	fflush(stdout);
	json_buf_free(&b);
}

static void print_stats(const struct fastpath *fp)
{
	struct fp_stats s;
	struct json_buf b;

	fastpath_stats(fp, &s);
	json_buf_init(&b);
	json_obj_begin(&b);
	json_kv_str(&b, "type", "stats");
	json_kv_uint(&b, "packets", s.packets);
	json_kv_uint(&b, "bytes", s.bytes);
	json_kv_uint(&b, "flows", s.flows);
	json_kv_uint(&b, "done", s.done);
	json_kv_uint(&b, "blocked", s.blocked);
	json_kv_uint(&b, "segments_dropped", s.segments_dropped);
	json_kv_uint(&b, "malformed", s.malformed);
	json_kv_uint(&b, "fragments", s.fragments);
	json_kv_uint(&b, "unknown_rule", s.unknown_rule);
	json_kv_uint(&b, "table_full", s.table_full);
	json_kv_uint(&b, "expired", s.expired);
	json_kv_uint(&b, "window_done", s.window_done);
	json_kv_uint(&b, "events_lost", s.events_lost);
	json_kv_uint(&b, "verdict_errors", s.verdict_errors);
	json_kv_uint(&b, "ct_unknown", s.ct_unknown);
	json_kv_uint(&b, "ct_requests", s.ct_requests);
	json_kv_uint(&b, "after_block", s.after_block);
	json_kv_uint(&b, "urgent", s.urgent);
	json_kv_uint(&b, "bad_end", s.bad_end);
	json_kv_uint(&b, "conflicts", s.conflicts);
	json_kv_uint(&b, "suspect", s.suspect);
	json_kv_uint(&b, "syn_data", s.syn_data);
	json_kv_uint(&b, "midstream", s.midstream);
	json_kv_uint(&b, "ext_headers", s.ext_headers);
	json_kv_uint(&b, "ip_options", s.ip_options);
	json_kv_uint(&b, "unseen_start", s.unseen_start);
	json_kv_uint(&b, "syn_changed", s.syn_changed);
	json_kv_uint(&b, "synacks", s.synacks);
	json_kv_uint(&b, "unseen_peer_isn", s.unseen_peer_isn);
	json_kv_uint(&b, "peer_isn_changed", s.peer_isn_changed);
	json_kv_uint(&b, "resets_sent", s.resets_sent);
	json_kv_uint(&b, "resets_failed", s.resets_failed);
	json_obj_end(&b);
	if (!b.oom)
		printf("%s\n", b.s);
	fflush(stdout);
	json_buf_free(&b);
}

static void drain_events(struct fastpath *fp)
{
	struct fp_event ev[RUN_EVENT_BATCH];
	size_t n;

	while ((n = fastpath_events(fp, ev, RUN_EVENT_BATCH)) > 0)
		for (size_t i = 0; i < n; i++)
			print_event(&ev[i]);
}

static double monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct fp_ruleset *load_rules(const char *path)
{
	struct policy_diags d;
	char err[512];

	policy_diags_init(&d);
	struct policy *p = policy_load(path, &d);
	policy_diags_print(&d, stderr);
	struct fp_ruleset *rs = p ? fp_ruleset_build(p, err, sizeof(err)) : NULL;
	if (p && !rs)
		fprintf(stderr, "hvgate fastpath: %s\n", err);
	policy_free(p);
	policy_diags_free(&d);
	return rs;
}

/* SIGHUP: the policy again; the workers switch to the new rules between two
 * reads, the old rules are freed when the last worker lets go of them. */
static void reload(struct fastpath *fp, const char *path)
{
	struct fp_ruleset *rs = load_rules(path);

	if (!rs) {
		fprintf(stderr, "hvgate fastpath: reload failed, the rules stay as they were\n");
		return;
	}
	size_t n = fp_ruleset_count(rs);
	fastpath_set_rules(fp, rs);
	fprintf(stderr, "hvgate fastpath: reloaded, %zu inspect rule%s\n", n, n == 1 ? "" : "s");
}

static void serve(struct fastpath *fp, const char *path, long seconds)
{
	struct pollfd pfd = { .fd = fastpath_event_fd(fp), .events = POLLIN };
	double end = seconds ? monotonic() + (double)seconds : 0;

	while (!stop_signal && (!end || monotonic() < end)) {
		if (poll(&pfd, 1, RUN_POLL_MS) > 0)
			drain_events(fp);
		if (reload_signal) {
			reload_signal = 0;
			reload(fp, path);
		}
	}
	drain_events(fp);
}

static int run(int argc, char **argv)
{
	struct run_args a;
	struct fastpath *fp;

	if (parse_args(argc, argv, &a))
		return usage(stderr);
	struct stat sb;
	if (stat(a.policy, &sb)) {
		fprintf(stderr, "hvgate fastpath: %s: %s\n", a.policy, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	struct fp_ruleset *rs = load_rules(a.policy);
	if (!rs)
		return CLI_EXIT_FAIL;
	size_t n_rules = fp_ruleset_count(rs);
	int rc = fastpath_start_netns(&fp, a.netns, (uint16_t)a.queue, (unsigned)a.workers);
	if (rc) {
		fprintf(stderr, "hvgate fastpath: queues %ld-%ld: %s\n", a.queue,
			a.queue + a.workers - 1, strerror(-rc));
		fp_ruleset_free(rs);
		return CLI_EXIT_FAIL;
	}
	fastpath_set_rules(fp, rs);
	fprintf(stderr, "hvgate fastpath: %zu inspect rule%s, queues %ld-%ld, conntrack %s\n",
		n_rules, n_rules == 1 ? "" : "s", a.queue, a.queue + a.workers - 1,
		fastpath_has_ct_glue(fp) ? "with the packets" : "over ctnetlink");
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	serve(fp, a.policy, a.seconds);
	print_stats(fp);
	fastpath_stop(fp);
	return CLI_EXIT_OK;
}

int cli_fastpath(int argc, char **argv)
{
	if (cli_wants_help(argc, argv))
		return usage(stdout);
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run(argc, argv);
	return usage(stderr);
}
