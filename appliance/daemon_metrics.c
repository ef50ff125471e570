/* The daemon's metrics text, in the Prometheus text format (daemon_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "appliance/kernel/conntrack.h"
#include "appliance/daemon_internal.h"

/* The `rule` label of a rule's series: its label, else its id without the
 * line (FILE:HASH), so that the series lasts while the rule's text does,
 * wherever it moves in its file; the second and later rules of one file
 * with the same text get "#2", "#3", ... in policy order. */
struct series {
	char name[112];
	size_t rule;
};

static int series_cmp(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->rule < y->rule ? -1 : x->rule > y->rule;
}

static struct series *series_names(const struct policy *p)
{
	struct series *v = p && p->n_rules ? calloc(p->n_rules, sizeof(*v)) : NULL, *byrule;

	if (!v)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		const char *h = strrchr(r->where, ':'), *l = h;
		while (l && l > r->where && l[-1] != ':')
			l--;
		v[i].rule = i;
		if (r->labelled || !h || l <= r->where)
			snprintf(v[i].name, sizeof(v[i].name), "%s", r->id);
		else
			snprintf(v[i].name, sizeof(v[i].name), "%.*s%s", (int)(l - r->where),
				 r->where, h + 1);
	}
	qsort(v, p->n_rules, sizeof(*v), series_cmp);
	for (size_t i = 1, k = 1; i < p->n_rules; i++) {
		k = strcmp(v[i].name, v[i - 1].name) ? 1 : k + 1;
		if (k > 1) {
			size_t n = strlen(v[i].name);
			snprintf(v[i].name + n, sizeof(v[i].name) - n, "#%zu", k);
		}
	}
	/* back in policy order */
	byrule = calloc(p->n_rules, sizeof(*byrule));
	if (!byrule) {
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++)
		byrule[v[i].rule] = v[i];
	free(v);
	return byrule;
}

/* The two counters of a rule and of a tenant: k 0 packets, 1 bytes. */
static const struct {
	const char *unit, *rule_help, *tenant_help;
} counter_kinds[2] = {
	{ "packets", "# HELP hvgate_rule_packets_total Packets matched by a policy rule.\n",
	  "# HELP hvgate_tenant_packets_total Packets matched by the rules of a tenant.\n" },
	{ "bytes", "# HELP hvgate_rule_bytes_total Bytes matched by a policy rule.\n",
	  "# HELP hvgate_tenant_bytes_total Bytes matched by the rules of a tenant.\n" },
};

void daemon_write_metrics(void *ctx, FILE *out)
{
	struct daemon *d = ctx;
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
	uint64_t count = 0, max = 0, ev = 0, wr = 0, dr = 0;

	struct series *names = series_names(p);

	daemon_sample_counters(d);
	for (int k = 0; k < 2; k++) {
		fputs(counter_kinds[k].rule_help, out);
		fprintf(out, "# TYPE hvgate_rule_%s_total counter\n", counter_kinds[k].unit);
		for (size_t i = 0; p && i < p->n_rules; i++) {
			const struct rule_hit *h = daemon_hit_find(d, p->rules[i].kernel_id);
			fprintf(out, "hvgate_rule_%s_total{rule=", counter_kinds[k].unit);
			metrics_label(out, names ? names[i].name : p->rules[i].id);
			fprintf(out, "} %llu\n",
				(unsigned long long)(h ? (k ? h->bytes : h->packets) : 0));
		}
	}
	free(names);
	fputs(
	    "# HELP hvgate_implicit_packets_total Packets dropped by no rule of the policy: a default, the "
	    "block list, invalid state, anti-spoofing, the inter-tenant check.\n"
	    "# TYPE hvgate_implicit_packets_total counter\n",
	    out);
	for (size_t i = 0; i < d->n_hits; i++) {
		if (!daemon_implicit_kind(p, d->hits[i].id))
			continue;
		fputs("hvgate_implicit_packets_total{rule=", out);
		metrics_label(out, d->hits[i].id);
		fprintf(out, ",kind=\"%s\",tenant=", daemon_implicit_kind(p, d->hits[i].id));
		metrics_label(out, daemon_implicit_tenant(p, d->hits[i].id));
		fprintf(out, "} %llu\n", (unsigned long long)d->hits[i].packets);
	}
	/* Per tenant: one pass over the rules, summing packets and bytes. */
	uint64_t *sums = p && p->n_tenants ? calloc(p->n_tenants * 2, sizeof(*sums)) : NULL;
	for (size_t i = 0; sums && i < p->n_rules; i++) {
		const struct rule_hit *h;
		if (p->rules[i].tenant >= p->n_tenants ||
		    !(h = daemon_hit_find(d, p->rules[i].kernel_id)))
			continue;
		sums[2 * p->rules[i].tenant] += h->packets;
		sums[2 * p->rules[i].tenant + 1] += h->bytes;
	}
	for (int k = 0; k < 2; k++) {
		fputs(counter_kinds[k].tenant_help, out);
		fprintf(out, "# TYPE hvgate_tenant_%s_total counter\n", counter_kinds[k].unit);
		for (size_t t = 0; p && t < p->n_tenants; t++) {
			fprintf(out, "hvgate_tenant_%s_total{tenant=", counter_kinds[k].unit);
			metrics_label(out, p->tenants[t].name);
			fprintf(out, "} %llu\n", (unsigned long long)(sums ? sums[2 * t + k] : 0));
		}
	}
	free(sums);
	if (!conntrack_count(&count, &max))
		fprintf(out,
			"# HELP hvgate_conntrack_entries Entries in the conntrack table.\n"
			"# TYPE hvgate_conntrack_entries gauge\nhvgate_conntrack_entries %llu\n"
			"# HELP hvgate_conntrack_limit nf_conntrack_max.\n"
			"# TYPE hvgate_conntrack_limit gauge\nhvgate_conntrack_limit %llu\n",
			(unsigned long long)count, (unsigned long long)max);
	fprintf(
	    out,
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
	    (unsigned long long)d->txn.stats.reloads,
	    (unsigned long long)d->txn.stats.reload_errors,
	    (unsigned long long)d->txn.stats.reverts, (unsigned long long)d->errors,
	    d->ctl.requests, d->ctl.bad_requests, d->txn.running_rev);
	if (d->log) {
		nflogd_counts(d->log, &ev, &wr, &dr);
		const struct metrics_count events[] = {
			{ "received", ev },
			{ "written", wr },
			{ "dropped", dr },
		};
		metrics_counters(out, "hvgate_log_events_total",
				 "NFLOG events received, written, and dropped by the rate limit.",
				 "result", events, sizeof(events) / sizeof(events[0]));
	}
	if (d->fp) {
		struct fp_stats st;
		fastpath_stats(d->fp, &st);
		fprintf(
		    out,
		    "# HELP hvgate_fastpath_packets_total Packets the inspection fast path judged.\n"
		    "# TYPE hvgate_fastpath_packets_total counter\nhvgate_fastpath_packets_total %llu\n",
		    (unsigned long long)st.packets);
		const struct metrics_count flows[] = {
			{ "inspected", st.flows },
			{ "cleared", st.done },
			{ "blocked", st.blocked },
		};
		metrics_counters(out, "hvgate_fastpath_flows_total",
				 "Flows the fast path took up, cleared and blocked.", "verdict",
				 flows, sizeof(flows) / sizeof(flows[0]));
		const struct metrics_count errors[] = {
			{ "malformed", st.malformed },    { "ct_unknown", st.ct_unknown },
			{ "table_full", st.table_full },  { "unknown_rule", st.unknown_rule },
			{ "verdict", st.verdict_errors }, { "events_lost", st.events_lost },
		};
		metrics_counters(out, "hvgate_fastpath_errors_total",
				 "Packets the fast path could not judge, by cause.", "cause",
				 errors, sizeof(errors) / sizeof(errors[0]));
		const struct metrics_count normalised[] = {
			{ "urgent", st.urgent },           { "bad_end", st.bad_end },
			{ "conflict", st.conflicts },      { "suspect", st.suspect },
			{ "syn_data", st.syn_data },       { "midstream", st.midstream },
			{ "ext_headers", st.ext_headers }, { "ip_options", st.ip_options },
		};
		metrics_counters(
		    out, "hvgate_fastpath_normalised_total",
		    "TCP packets the fast path dropped rather than let walk around its judgement, by cause.",
		    "cause", normalised, sizeof(normalised) / sizeof(normalised[0]));
		const struct metrics_count resets[] = {
			{ "sent", st.resets_sent },
			{ "failed", st.resets_failed },
		};
		metrics_counters(out, "hvgate_fastpath_resets_total",
				 "TCP resets sent to the ends of blocked flows.", "result", resets,
				 sizeof(resets) / sizeof(resets[0]));
		struct fastpath_queue_stat qs[FASTPATH_MAX_WORKERS * 4];
		size_t nq = fastpath_queue_stats(d->fp, qs, sizeof(qs) / sizeof(qs[0]));
		fprintf(
		    out,
		    "# HELP hvgate_fastpath_queue_dropped_total Packets the kernel could not queue to the fast path (full: the queue was full, socket: its socket was), per queue.\n"
		    "# TYPE hvgate_fastpath_queue_dropped_total counter\n");
		for (size_t i = 0; i < nq; i++)
			fprintf(
			    out,
			    "hvgate_fastpath_queue_dropped_total{queue=\"%u\",cause=\"full\"} %u\n"
			    "hvgate_fastpath_queue_dropped_total{queue=\"%u\",cause=\"socket\"} %u\n",
			    qs[i].queue, qs[i].queue_dropped, qs[i].queue, qs[i].user_dropped);
	}
	vpnmgr_metrics(d->vpn, out);
}
