/* The daemon's events: NFLOG lookups and the fast path's decisions (daemon_internal.h). */
#include <string.h>
#include <syslog.h>

#include "appliance/daemon_internal.h"

/* Lookups for the NFLOG reader. */

/* The prefix is a rule's kernel id (an NFLOG prefix), its id (a fast path
 * event names the rule by its id, FILE:LINE:HASH) or a default's
 * "default:FILE:LINE" (policy/lower.c). An id has the line a kernel id
 * lacks, and a label is both: neither can name another rule. */
void daemon_log_lookup(void *ctx, const char *prefix, const char **rule_id, const char **verdict,
		       const char **tenant, const char **log_prefix)
{
	const struct daemon *d = ctx;
	const struct policy *p = d->txn.running ? d->txn.running->policy : NULL;
	char id[128]; /* as long as the comment policy/lower.c makes, truncated alike */

	for (size_t i = 0; p && i < p->n_rules; i++) {
		if (strcmp(p->rules[i].kernel_id, prefix) && strcmp(p->rules[i].id, prefix))
			continue;
		*rule_id = p->rules[i].id;
		*verdict = daemon_action_name(p->rules[i].action);
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
		*verdict = daemon_action_name(df->action);
		if (df->tenant != POLICY_NONE)
			*tenant = p->tenants[df->tenant].name;
		return;
	}
}

/* The fast path's decisions become events like the NFLOG ones (with
 * "source":"fastpath"), in the event file, syslog and `show log`. */
void daemon_read_fastpath_events(struct daemon *d)
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

			daemon_log_lookup(d, e->rule_id, &rule, &verdict, &tenant, &own);
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
