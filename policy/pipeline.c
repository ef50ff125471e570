/* policy_compile(): load, lower, optimize, verify, both backends
 * (policy/pipeline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/nftnl.h"
#include "policy/pipeline.h"

static double clock_seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stamp(struct policy_compiled *c, enum policy_stage s)
{
	c->stamps[s] = (struct policy_stamp){ clock_seconds(CLOCK_MONOTONIC),
					      clock_seconds(CLOCK_PROCESS_CPUTIME_ID) };
}

static bool has_pass(const struct policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].action == POLICY_PASS)
			return true;
	for (size_t i = 0; i < p->n_defaults; i++)
		if (p->defaults[i].action == POLICY_PASS)
			return true;
	return p->default_action == POLICY_PASS;
}

/* A policy that lets nothing through also locks out whoever manages the
 * appliance over the network: say so before it is applied. */
static void warn_blocks_everything(const struct policy *p, struct policy_diags *d)
{
	if (has_pass(p))
		return;
	policy_diag_add(d, POLICY_WARNING, NULL,
			"the policy has no pass rule and no pass default: it blocks everything, "
			"including management access to the appliance (ssh, the control port)");
}

/* The nft text, kept in memory. */
static int emit_text(struct policy_compiled *c, struct policy_diags *d)
{
	FILE *f = open_memstream(&c->nft_text, &c->nft_len);
	if (!f)
		return policy_error(d, NULL, "out of memory for the nft text");
	int rc = policy_emit_nft(c->table, f);
	if (fclose(f) || rc)
		return policy_error(d, NULL, "cannot write the nft text");
	return 0;
}

/* The libnftnl batch, built as apply builds it and thrown away: the
 * backend's own checks (value lengths, set references) run on it. The
 * queue encoding, which apply chooses by probing the kernel, is the xt
 * target here: the same messages, one expression different. */
static int emit_batch(struct policy_compiled *c, struct policy_diags *d)
{
	struct policy_nftnl_opts eo;
	policy_nftnl_opts_default(&eo);
	eo.no_commit = true;
	struct policy_nftnl_batch *b;
	if (policy_emit_nftnl(c->table, &eo, &b, d))
		return -1;
	c->n_messages = b->n_messages;
	policy_nftnl_batch_free(b);
	return 0;
}

static int compile_loaded(const struct policy_lower_opts *o, struct policy_compiled *out,
			  struct policy_diags *d)
{
	warn_blocks_everything(out->policy, d);
	/* lowered without the optimizer, which then runs here for its report */
	struct policy_lower_opts lo = *o;
	lo.optimize = false;
	out->table = policy_lower(out->policy, &lo, d);
	if (!out->table || (o->optimize && policy_optimize(out->table, &out->report, d)))
		return -1;
	stamp(out, POLICY_STAGE_LOWER);
	if (policy_verify_rules(out->table, d) || emit_text(out, d) || emit_batch(out, d))
		return -1;
	stamp(out, POLICY_STAGE_EMIT);
	return 0;
}

int policy_compile(const char *path, const struct policy_lower_opts *o, struct policy_compiled *out,
		   struct policy_diags *d)
{
	memset(out, 0, sizeof(*out));
	stamp(out, POLICY_STAGE_START);
	out->policy = policy_load(path, d);
	stamp(out, POLICY_STAGE_LOAD);
	if (out->policy && !compile_loaded(o, out, d))
		return 0;
	policy_compiled_free(out);
	return -1;
}

int policy_compile_policy(struct policy *p, const struct policy_lower_opts *o,
			  struct policy_compiled *out, struct policy_diags *d)
{
	memset(out, 0, sizeof(*out));
	stamp(out, POLICY_STAGE_START);
	out->policy = p;
	stamp(out, POLICY_STAGE_LOAD);
	if (p && !compile_loaded(o, out, d))
		return 0;
	policy_compiled_free(out);
	return -1;
}

void policy_compiled_free(struct policy_compiled *c)
{
	ir_table_free(c->table);
	if (c->policy)
		policy_free(c->policy);
	free(c->nft_text);
	c->table = NULL;
	c->policy = NULL;
	c->nft_text = NULL;
	c->nft_len = 0;
}
