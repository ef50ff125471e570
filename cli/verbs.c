/* The verb table of hvgate, shared by main() and the interactive shell. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct verb {
	const char *name;
	int (**fn)(int, char **);
	const char *summary;
};

static int (*fn_check)(int, char **) = cli_check;
static int (*fn_compile)(int, char **) = cli_compile;
static int (*fn_apply)(int, char **) = cli_apply;
static int (*fn_replay)(int, char **) = cli_replay;
static int (*fn_explain)(int, char **) = cli_explain;
static int (*fn_test)(int, char **) = cli_test;
static int (*fn_vpn)(int, char **) = cli_vpn;
static int (*fn_client)(int, char **) = cli_daemon_client;
static int (*fn_diff)(int, char **) = cli_diff;
static int (*fn_shell)(int, char **) = cli_shell;
static int (*fn_fastpath)(int, char **) = cli_fastpath;

static const struct verb verbs[] = {
	{ "check", &fn_check, "check FILE|DIR: validate a policy (exit 1 with diagnostics)" },
	{ "compile", &fn_compile, "compile FILE --emit nft|summary: print what would be applied" },
	{ "apply", &fn_apply, "apply FILE [--netns NAME] [--check]: compile and apply atomically" },
	{ "replay", &fn_replay, "replay FILE PCAP: evaluate packets against a policy offline" },
	{ "explain", &fn_explain, "explain FILE PACKET: which rule decides a packet, and why" },
	{ "test", &fn_test, "test DIR: run the policy's expectation files (tests/*.hvt) offline" },
	{ "vpn", &fn_vpn, "vpn run IFNAME: the WireGuard-compatible VPN engine in the foreground" },
	{ "diff", &fn_diff, "diff REV1 REV2: what changed between two policy revisions, rule by rule" },
	{ "fastpath", &fn_fastpath, "fastpath run POLICY --queue Q: the inspection fast path in the foreground" },
	{ "shell", &fn_shell, "shell: the interactive appliance shell" },
	{ "status", &fn_client, "status: the daemon's state" },
	{ "show", &fn_client, "show rules|tenants|nat|conntrack|log|vpn: running state" },
	{ "load", &fn_client, "load SOURCE: make a policy the candidate" },
	{ "compare", &fn_client, "compare: the candidate against the running policy" },
	{ "commit", &fn_client, "commit [confirmed N] [comment TEXT]: apply the candidate" },
	{ "confirm", &fn_client, "confirm: keep a commit made with 'commit confirmed'" },
	{ "rollback", &fn_client, "rollback N: make revision N the candidate" },
	{ "history", &fn_client, "history: the committed revisions" },
	{ "unlock", &fn_client, "unlock [force]: break the configure lock of a session that is gone (force: of a live one)" },
	{ "reload", &fn_client, "reload: re-read configuration and policy" },
	{ "block", &fn_client, "block ADDR[/LEN] [tenant T | zone Z] [for DURATION]: add to the dynamic block list" },
	{ "unblock", &fn_client, "unblock ADDR[/LEN] [tenant T | zone Z]: remove from the dynamic block list" },
};

void cli_usage(FILE *out)
{
	fprintf(out, "usage: hvgate VERB [ARGS...]   (hvgate VERB --help for details)\n\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (*verbs[i].fn)
			fprintf(out, "  %s\n", verbs[i].summary);
}

const char *cli_verb_name(size_t i)
{
	if (i >= sizeof(verbs) / sizeof(verbs[0]))
		return NULL;
	return *verbs[i].fn ? verbs[i].name : "";
}

int cli_dispatch(int argc, char **argv)
{
	if (argc < 1) {
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[0], verbs[i].name))
			continue;
		if (!*verbs[i].fn) {
			fprintf(stderr, "hvgate: '%s' is not built into this binary\n", argv[0]);
			return CLI_EXIT_USAGE;
		}
		return (*verbs[i].fn)(argc, argv);
	}
	fprintf(stderr, "hvgate: unknown verb '%s'\n", argv[0]);
	cli_usage(stderr);
	return CLI_EXIT_USAGE;
}
