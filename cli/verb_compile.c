/* hvgate compile FILE|DIR --emit nft|summary [--no-optimize]: prints what
 * would be applied, without touching the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include "nat/nat.h"
#include "cli/cli.h"
#include "policy/classify.h"
#include "policy/pipeline.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvgate compile FILE|DIR [--emit nft|summary] [--no-optimize]\n"
		"                      [--nflog-group N] [--queue N [--workers W]] [--time]\n"
		"\n"
		"Compiles a policy and prints the result; touches no kernel state.\n"
		"  --emit nft       the nft script that replaces table inet hvgate (default)\n"
		"  --emit summary   counts of chains, rules and sets, and what the optimizer did\n"
		"  --no-optimize    skip the optimizer (to compare)\n"
		"  --nflog-group N  NFLOG group of `log` rules (default: kernel log)\n"
		"  --queue N        first NFQUEUE for `inspect` rules (default: inspection off)\n"
		"  --workers W      fast-path workers serving them (default 1)\n"
		"  --time           print the time of each stage to stderr\n"
		"Exit status: 0 compiled, 1 the policy is invalid, 2 usage or I/O error.\n");
}

struct compile_args {
	const char *path;
	bool summary;
	bool time;
	struct policy_lower_opts opts;
};

/* The options that change what lowering builds, shared with `check` so
 * that it checks what `compile` and `apply` with the same options build. */
int cli_lower_option(int argc, char **argv, int *i, struct policy_lower_opts *o)
{
	const char *arg = argv[*i];
	const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!strcmp(arg, "--no-optimize")) {
		o->optimize = false;
		return 1;
	}
	int *slot = NULL, w = 0;
	long lo = 0, hi = 65535, v;
	if (!strcmp(arg, "--nflog-group"))
		slot = &o->nflog_group; /* NFLOG groups are u16 (NFULA_CFG_CMD group in
					   nfnetlink_log) */
	else if (!strcmp(arg, "--queue"))
		slot = &o->queue_num;
	else if (!strcmp(arg, "--workers"))
		slot = &w, lo = 1, hi = 64;
	else
		return 0;
	if (!val || cli_parse_long(val, lo, hi, &v))
		return -1;
	*slot = (int)v;
	if (slot == &w)
		o->queue_count = (unsigned)w;
	(*i)++;
	return 1;
}

static int parse_args(int argc, char **argv, struct compile_args *a)
{
	policy_lower_opts_default(&a->opts);
	a->opts.nat_lower = nat_lower;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int lower = cli_lower_option(argc, argv, &i, &a->opts);
		if (lower < 0)
			return -1;
		if (lower)
			continue;
		if (!strcmp(arg, "--emit") && val) {
			if (strcmp(val, "nft") && strcmp(val, "summary"))
				return -1;
			a->summary = !strcmp(val, "summary");
			i++;
		} else if (!strcmp(arg, "--time")) {
			a->time = true;
		} else if (arg[0] != '-' && !a->path) {
			a->path = arg;
		} else {
			return -1;
		}
	}
	return a->path ? 0 : -1;
}

int cli_compile(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	struct compile_args a = { 0 };
	if (parse_args(argc, argv, &a)) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (access(a.path, R_OK)) {
		/* an I/O problem, not an invalid policy: exit status 2 */
		fprintf(stderr, "hvgate compile: %s: %s\n", a.path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_compiled c;
	int failed = policy_compile(a.path, &a.opts, &c, &d);
	policy_diags_print(&d, stderr);
	int rc = CLI_EXIT_FAIL;
	if (!failed) {
		rc = CLI_EXIT_OK;
		if (a.summary) {
			ir_table_summary(c.table, stdout);
			if (a.opts.optimize) {
				policy_optimize_report_print(&c.report, stdout);
				policy_classify_report_print(&c.report, stdout);
			} else
				printf("optimizer: off\n");
		} else if (fwrite(c.nft_text, 1, c.nft_len, stdout) != c.nft_len ||
			   fflush(stdout)) {
			fprintf(stderr, "hvgate compile: write error\n");
			rc = CLI_EXIT_USAGE;
		}
	}
	if (a.time && !failed) {
		const struct policy_stamp *s = c.stamps;
		fprintf(stderr,
			"time: load %.3f s, lower+optimize %.3f s, emit %.3f s "
			"(cpu: load %.3f s, lower+optimize %.3f s, emit %.3f s)\n",
			s[1].wall - s[0].wall, s[2].wall - s[1].wall, s[3].wall - s[2].wall,
			s[1].cpu - s[0].cpu, s[2].cpu - s[1].cpu, s[3].cpu - s[2].cpu);
	}
	policy_compiled_free(&c);
	policy_diags_free(&d);
	return rc;
}
