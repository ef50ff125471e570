/* The daemon's events: NFLOG lookups and the fast path's decisions (daemon_internal.h). */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "appliance/daemon_internal.h"
#include "policy/hash.h"

/* Lookups for the NFLOG reader. */

static uint64_t name_hash(const char *name)
{
	return policy_fnv64(POLICY_FNV64_OFFSET_BASIS, name, strlen(name));
}

struct name_probe {
	const struct daemon_rule_index *x;
	const char *name;
};

static bool is_rule_id(void *ctx, size_t i)
{
	const struct name_probe *q = ctx;
	return !strcmp(q->x->p->rules[i].id, q->name);
}

static bool is_kernel_id(void *ctx, size_t i)
{
	const struct name_probe *q = ctx;
	return !strcmp(q->x->p->rules[i].kernel_id, q->name);
}

static bool is_default_id(void *ctx, size_t i)
{
	const struct name_probe *q = ctx;
	return !strcmp(q->x->default_ids[i], q->name);
}

void daemon_rule_index_free(struct daemon_rule_index *x)
{
	policy_hmap_free(&x->by_id);
	policy_hmap_free(&x->by_kernel_id);
	policy_hmap_free(&x->defaults);
	free(x->default_ids);
	memset(x, 0, sizeof(*x));
}

/* Entries are put in the policy's order, so a name two rules share finds
 * the first, as a pass over the rules would. */
static int rule_index_build(struct daemon_rule_index *x, const struct policy *p)
{
	size_t n_rules = p ? p->n_rules : 0, n_defaults = p ? p->n_defaults : 0;

	x->p = p;
	if (policy_hmap_init(&x->by_id, n_rules) || policy_hmap_init(&x->by_kernel_id, n_rules) ||
	    policy_hmap_init(&x->defaults, n_defaults))
		return -1;
	for (size_t i = 0; i < n_rules; i++)
		if (policy_hmap_put(&x->by_id, name_hash(p->rules[i].id), i) ||
		    policy_hmap_put(&x->by_kernel_id, name_hash(p->rules[i].kernel_id), i))
			return -1;
	if (n_defaults && !(x->default_ids = calloc(n_defaults, sizeof(*x->default_ids))))
		return -1;
	for (size_t i = 0; i < n_defaults; i++) {
		const struct policy_default *df = &p->defaults[i];
		if (!df->log || !df->loc.file)
			continue;
		snprintf(x->default_ids[i], sizeof(x->default_ids[i]), "default:%s:%u",
			 df->loc.file, df->loc.line);
		if (policy_hmap_put(&x->defaults, name_hash(x->default_ids[i]), i))
			return -1;
	}
	return 0;
}

void daemon_rule_index_sync(struct daemon *d)
{
	struct daemon_rule_index *x = &d->rules;

	uint64_t gen = d->txn.running_gen;

	if (x->built && x->gen == gen)
		return;
	bool said = x->failed && x->gen == gen;
	daemon_rule_index_free(x);
	x->gen = gen;
	if (rule_index_build(x, d->txn.running ? d->txn.running->policy : NULL)) {
		daemon_rule_index_free(x);
		x->gen = gen;
		x->failed = true;
		if (!said)
			syslog(LOG_ERR,
			       "events: out of memory indexing the rules; events name no rule");
		return;
	}
	x->built = true;
}

/* The rule named `name` by its kernel id or its id, the first in the
 * policy's order; POLICY_HMAP_NONE if none. */
static size_t rule_named(const struct daemon_rule_index *x, const char *name)
{
	struct name_probe q = { .x = x, .name = name };
	uint64_t h = name_hash(name);
	size_t by_kernel_id = policy_hmap_find(&x->by_kernel_id, h, is_kernel_id, &q);
	size_t by_id = policy_hmap_find(&x->by_id, h, is_rule_id, &q);
	return by_kernel_id < by_id ? by_kernel_id : by_id; /* POLICY_HMAP_NONE is the largest */
}

/* The prefix is a rule's kernel id (an NFLOG prefix), its id (a fast path
 * event names the rule by its id, FILE:LINE:HASH) or a default's
 * "default:FILE:LINE" (policy/lower.c). An id has the line a kernel id
 * lacks, and a label is both: neither can name another rule. */
void daemon_log_lookup(void *ctx, const char *prefix, const char **rule_id, const char **verdict,
		       const char **tenant, const char **log_prefix)
{
	struct daemon *d = ctx;
	const struct daemon_rule_index *x = &d->rules;

	daemon_rule_index_sync(d);
	if (!x->built || !x->p)
		return;
	const struct policy *p = x->p;
	size_t i = rule_named(x, prefix);
	if (i != POLICY_HMAP_NONE) {
		*rule_id = p->rules[i].id;
		*verdict = daemon_action_name(p->rules[i].action);
		*log_prefix = p->rules[i].log_prefix;
		if (p->rules[i].tenant != POLICY_NONE)
			*tenant = p->tenants[p->rules[i].tenant].name;
		return;
	}
	struct name_probe q = { .x = x, .name = prefix };
	i = policy_hmap_find(&x->defaults, name_hash(prefix), is_default_id, &q);
	if (i == POLICY_HMAP_NONE)
		return;
	*verdict = daemon_action_name(p->defaults[i].action);
	if (p->defaults[i].tenant != POLICY_NONE)
		*tenant = p->tenants[p->defaults[i].tenant].name;
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
