/* hvgate apply FILE|DIR [--netns NAME] [--check]: compiles a policy and
 * replaces table inet hvgate with it in one netlink transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nat/nat.h"
#include "appliance/kernel/nftio.h"
#include "appliance/kernel/route.h"
#include "cli/cli.h"
#include "policy/policy.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvgate apply FILE|DIR [--netns NAME] [--check] [--expect-genid N]\n"
		"                    [--nflog-group N] [--queue N [--workers W]] [--no-optimize]\n"
		"\n"
		"Compiles a policy and replaces table inet hvgate with it in ONE netlink\n"
		"transaction: either all of it is in the kernel afterwards or nothing changed.\n"
		"No other table is touched.\n"
		"  --netns NAME      work in network namespace NAME (/var/run/netns/NAME)\n"
		"  --check           let the kernel validate the whole batch, then abort it\n"
		"  --expect-genid N  refuse if the ruleset generation is no longer N\n"
		"  --nflog-group N   NFLOG group of `log` rules (default: kernel log)\n"
		"  --queue N         first NFQUEUE for `inspect` rules (default: inspection off)\n"
		"  --workers W       fast-path workers serving them (default 1), as for\n"
		"                    `hvgate fastpath run`: the queue layout depends on it\n"
		"  --no-optimize     skip the optimizer\n"
		"Exit status: 0 applied (or checked), 1 invalid policy or refused by the\n"
		"kernel (nothing changed), 2 usage or I/O error.\n");
}

struct apply_args {
	const char *path;
	struct nftio_apply_opts apply;
	struct policy_lower_opts lower;
};

static int parse_args(int argc, char **argv, struct apply_args *a)
{
	long v;
	policy_lower_opts_default(&a->lower);
	a->lower.nat_lower = nat_lower;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(arg, "--netns") && val) {
			a->apply.netns = val;
			i++;
		} else if (!strcmp(arg, "--check")) {
			a->apply.check_only = true;
		} else if (!strcmp(arg, "--expect-genid") && val) {
			if (cli_parse_long(val, 0, UINT32_MAX, &v))
				return -1;
			a->apply.expect_genid_set = true;
			a->apply.expect_genid = (uint32_t)v;
			i++;
		} else if (!strcmp(arg, "--nflog-group") && val) {
			/* NFLOG groups are u16 (nfnetlink_log) */
			if (cli_parse_long(val, 0, 65535, &v))
				return -1;
			a->lower.nflog_group = (int)v;
			i++;
		} else if (!strcmp(arg, "--queue") && val) {
			if (cli_parse_long(val, 0, 65535, &v))
				return -1;
			a->lower.queue_num = (int)v;
			i++;
		} else if (!strcmp(arg, "--workers") && val) {
			if (cli_parse_long(val, 1, 64, &v))
				return -1;
			a->lower.queue_count = (unsigned)v;
			i++;
		} else if (!strcmp(arg, "--no-optimize")) {
			a->lower.optimize = false;
		} else if (arg[0] != '-' && !a->path) {
			a->path = arg;
		} else {
			return -1;
		}
	}
	return a->path ? 0 : -1;
}

static void count(const struct ir_table *t, size_t *rules, size_t *sets, size_t *elems)
{
	*rules = *sets = *elems = 0;
	for (size_t i = 0; i < t->n_chains; i++)
		*rules += t->chains[i].n_rules;
	for (size_t i = 0; i < t->n_sets; i++) {
		*sets += 1;
		*elems += t->sets[i].n_elems;
	}
}

static int apply_table(const struct apply_args *a, struct ir_table *t, struct policy_diags *d)
{
	struct nftio_apply_result r;
	int err = nftio_apply(t, &a->apply, &r, d);
	if (err) {
		policy_diags_print(d, stderr);
		if (err == -ERESTART)
			return CLI_EXIT_FAIL;
		/* not allowed to talk to the kernel at all: a usage problem;
		 * anything else (a refusal, a changed ruleset) is a failure */
		return err == -EPERM || err == -EACCES ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	size_t rules, sets, elems;
	count(t, &rules, &sets, &elems);
	double ms = (r.build_seconds + r.kernel_seconds) * 1000.0;
	if (a->apply.check_only)
		printf("checked: %zu rules, %zu sets, %zu elements in %.1f ms "
		       "(kernel accepted the batch; nothing changed, generation %u)\n",
		       rules, sets, elems, ms, r.genid_after);
	else
		printf("applied: %zu rules, %zu sets, %zu elements in %.1f ms "
		       "(generation %u -> %u)\n",
		       rules, sets, elems, ms, r.genid_before, r.genid_after);
	printf("  %zu netlink messages; build %.1f ms, kernel %.1f ms\n", r.n_messages,
	       r.build_seconds * 1000.0, r.kernel_seconds * 1000.0);
	return CLI_EXIT_OK;
}

/* The tenants' policy routing (appliance/kernel/route.h) follows the ruleset. */
static int apply_routes(const struct apply_args *a, const struct policy *p, struct policy_diags *d)
{
	struct route_result r;
	if (route_apply(a->apply.netns, p, &r, d)) {
		policy_diags_print(d, stderr);
		return CLI_EXIT_FAIL;
	}
	if (r.rules || r.removed)
		printf(
		    "  tenant routing: %zu fwmark rules, %zu routes (%zu skipped), %zu removed\n",
		    r.rules, r.routes, r.skipped, r.removed);
	if (r.ambiguous)
		printf(
		    "  warning: %zu segment prefix%s without a route: its wildcard matches several "
		    "interfaces\n",
		    r.ambiguous, r.ambiguous == 1 ? "" : "es");
	return CLI_EXIT_OK;
}

int cli_apply(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	struct apply_args a = { 0 };
	if (parse_args(argc, argv, &a)) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	/* nftio_apply() picks the queue encoding itself (it probes the
	 * kernel); probing here only refuses early a namespace nf_tables
	 * cannot be reached in, when inspection is on. */
	int native = a.lower.queue_num >= 0 ? nftio_probe_native_queue(a.apply.netns) : 0;
	if (native < 0) {
		fprintf(stderr, "hvgate apply: cannot talk to nf_tables%s%s: %s\n",
			a.apply.netns ? " in namespace " : "", a.apply.netns ? a.apply.netns : "",
			strerror(-native));
		return CLI_EXIT_USAGE;
	}

	struct policy_diags d;
	policy_diags_init(&d);
	int rc = CLI_EXIT_FAIL;
	struct ir_table *t = NULL;
	struct policy *p = policy_load(a.path, &d);
	if (p)
		t = policy_lower(p, &a.lower, &d);
	if (!t)
		policy_diags_print(&d, stderr);
	else
		rc = apply_table(&a, t, &d);
	if (rc == CLI_EXIT_OK && !a.apply.check_only)
		rc = apply_routes(&a, p, &d);
	ir_table_free(t);
	if (p)
		policy_free(p);
	policy_diags_free(&d);
	return rc;
}
