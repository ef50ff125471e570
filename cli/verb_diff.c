/* hvgate diff REV1 REV2: what changed between two committed revisions, rule
 * by rule (added, removed, changed, with their locations), computed by
 * hvgated from the stored revisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

int cli_diff(int argc, char **argv)
{
	struct cli_client_opts o;
	struct json *reply;
	const struct json *ok;
	char req[128], *raw, *end1, *end2;
	long long a, b;
	int rc;

	if (cli_wants_help(argc, argv)) {
		printf("usage: hvgate diff REV1 REV2 [--json] [--socket PATH]\n");
		return CLI_EXIT_OK;
	}
	if (cli_client_opts(&argc, argv, &o))
		return CLI_EXIT_USAGE;
	if (argc != 3) {
		fprintf(stderr, "usage: hvgate diff REV1 REV2 [--json] [--socket PATH]\n");
		return CLI_EXIT_USAGE;
	}
	a = strtoll(argv[1], &end1, 10);
	b = strtoll(argv[2], &end2, 10);
	if (*end1 || *end2 || a <= 0 || b <= 0) {
		fprintf(stderr, "hvgate: diff: revisions are positive numbers (see 'hvgate history')\n");
		return CLI_EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"diff\",\"from\":%lld,\"to\":%lld}", a, b);
	rc = cli_client_call(&o, req, &reply, &raw);
	if (rc)
		return rc;
	ok = json_get(reply, "ok");
	rc = ok && ok->type == JSON_BOOL && ok->boolean ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (o.json)
		puts(raw);
	else if (rc)
		fprintf(stderr, "hvgate: %s\n", json_get_str(reply, "error") ? json_get_str(reply, "error") : raw);
	else
		cli_client_print_compare(reply);
	json_free(reply);
	free(raw);
	return rc;
}
