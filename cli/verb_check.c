/* hvgate check FILE|DIR: validate a policy without applying it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "nat/nat.h"
#include "cli/cli.h"
#include "policy/pipeline.h"

static void check_usage(FILE *out)
{
	fprintf(out, "usage: hvgate check FILE|DIR [--no-optimize] [--nflog-group N]\n"
		     "                    [--queue N [--workers W]]\n\n"
		     "Reads the policy (a file, or every *.hvp of a directory in name order),\n"
		     "follows its includes and runs the whole pipeline that apply runs, short of\n"
		     "the kernel: checks, lowering, the optimizer, a check of every emitted rule,\n"
		     "and both backends (nft text and the netlink batch); `compile` runs the same\n"
		     "function, with the same options. Prints a one-line summary and exits 0 when\n"
		     "it is valid; prints every diagnostic on stderr and exits 1 when not; exits\n"
		     "2 on usage or I/O errors.\n");
}

int cli_check(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		check_usage(stdout);
		return CLI_EXIT_OK;
	}
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		int lower = cli_lower_option(argc, argv, &i, &o);
		if (lower > 0)
			continue;
		if (lower < 0 || argv[i][0] == '-' || path) {
			check_usage(stderr);
			return CLI_EXIT_USAGE;
		}
		path = argv[i];
	}
	if (!path) {
		check_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	struct stat st;
	if (stat(path, &st)) {
		fprintf(stderr, "hvgate check: %s: %s\n", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_compiled c;
	int failed = policy_compile(path, &o, &c, &d);
	policy_diags_print(&d, stderr);
	int rc = CLI_EXIT_OK;
	if (failed) {
		fprintf(stderr, "%zu error%s\n", d.n_errors, d.n_errors == 1 ? "" : "s");
		rc = CLI_EXIT_FAIL;
	} else {
		const struct policy *p = c.policy;
		size_t rules = 0;
		for (size_t i = 0; i < c.table->n_chains; i++)
			rules += c.table->chains[i].n_rules;
		printf("ok: %zu rules, %zu zones, %zu tenants (%zu nft rules, %zu netlink "
		       "messages)\n",
		       p->n_rules, p->n_zones, p->n_tenants, rules, c.n_messages);
	}
	policy_compiled_free(&c);
	policy_diags_free(&d);
	return rc;
}
