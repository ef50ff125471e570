/* The verb table of hvgate, shared by main() and the interactive shell. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct verb {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

static const struct verb verbs[] = {
	{ "check", cli_check, "check FILE|DIR: validate a policy (exit 1 with diagnostics)" },
	{ "compile", cli_compile, "compile FILE --emit nft|summary: print what would be applied" },
	{ "apply", cli_apply, "apply FILE [--netns NAME] [--check]: compile and apply atomically" },
	{ "replay", cli_replay, "replay FILE PCAP: evaluate packets against a policy offline" },
	{ "explain", cli_explain, "explain FILE PACKET: which rule decides a packet, and why" },
	{ "test", cli_test, "test DIR: run the policy's expectation files (tests/*.hvt) offline" },
	{ "vpn", cli_vpn, "vpn run IFNAME: the WireGuard-compatible VPN engine in the foreground" },
	{ "diff", cli_diff,
	  "diff REV1 REV2: what changed between two policy revisions, rule by rule" },
	{ "fastpath", cli_fastpath,
	  "fastpath run POLICY --queue Q: the inspection fast path in the foreground" },
	{ "shell", cli_shell, "shell: the interactive appliance shell" },
	{ "status", cli_daemon_client, "status: the daemon's state" },
	{ "show", cli_daemon_client, "show rules|tenants|nat|conntrack|log|vpn: running state" },
	{ "load", cli_daemon_client, "load SOURCE: make a policy the candidate" },
	{ "compare", cli_daemon_client, "compare: the candidate against the running policy" },
	{ "commit", cli_daemon_client, "commit [confirmed N] [comment TEXT]: apply the candidate" },
	{ "confirm", cli_daemon_client, "confirm: keep a commit made with 'commit confirmed'" },
	{ "rollback", cli_daemon_client, "rollback N: make revision N the candidate" },
	{ "history", cli_daemon_client, "history: the committed revisions" },
	{ "unlock", cli_daemon_client,
	  "unlock [force]: break the configure lock of a session that is gone (force: of a live one)" },
	{ "reload", cli_daemon_client, "reload: re-read configuration and policy" },
	{ "block", cli_daemon_client,
	  "block ADDR[/LEN] [tenant T | zone Z] [for DURATION]: add to the dynamic block list" },
	{ "unblock", cli_daemon_client,
	  "unblock ADDR[/LEN] [tenant T | zone Z]: remove from the dynamic block list" },
};

void cli_usage(FILE *out)
{
	fprintf(out, "usage: hvgate VERB [ARGS...]   (hvgate VERB --help for details)\n\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %s\n", verbs[i].summary);
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
		return verbs[i].fn(argc, argv);
	}
	fprintf(stderr, "hvgate: unknown verb '%s'\n", argv[0]);
	cli_usage(stderr);
	return CLI_EXIT_USAGE;
}
