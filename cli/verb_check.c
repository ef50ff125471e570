/* hvgate check FILE|DIR: validate a policy without applying it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "policy/policy.h"

static void check_usage(FILE *out)
{
	fprintf(out, "usage: hvgate check FILE|DIR\n\n"
		     "Reads the policy (a file, or every *.hvp of a directory in name order),\n"
		     "follows its includes and checks it. Prints a one-line summary and exits 0\n"
		     "when it is valid; prints every diagnostic on stderr and exits 1 when not;\n"
		     "exits 2 on usage or I/O errors.\n");
}

int cli_check(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		check_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		check_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	struct stat st;
	if (stat(argv[1], &st)) {
		fprintf(stderr, "hvgate check: %s: %s\n", argv[1], strerror(errno));
		return CLI_EXIT_USAGE;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load(argv[1], &d);
	policy_diags_print(&d, stderr);
	int rc = CLI_EXIT_OK;
	if (!p) {
		fprintf(stderr, "%zu error%s\n", d.n_errors, d.n_errors == 1 ? "" : "s");
		rc = CLI_EXIT_FAIL;
	} else {
		printf("ok: %zu rules, %zu zones, %zu tenants\n", p->n_rules, p->n_zones,
		       p->n_tenants);
	}
	policy_free(p);
	policy_diags_free(&d);
	return rc;
}
