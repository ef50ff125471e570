/* hvgate diff REV1 REV2: what changed between two policy revisions, rule by
 * rule (added, removed, changed, with their locations), computed by hvgated.
 * A revision is a committed revision number or, with a git source, git:REF. */
#include <limits.h>
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
	char req[256], from[96] = "", to[96] = "", *raw;
	int rc;

	if (cli_wants_help(argc, argv)) {
		printf(
		    "usage: hvgate diff REV1 REV2 [--json] [--socket PATH]   (REV: a revision number or git:REF)\n");
		return CLI_EXIT_OK;
	}
	if (cli_client_opts(&argc, argv, &o))
		return CLI_EXIT_USAGE;
	if (argc != 3) {
		fprintf(stderr, "usage: hvgate diff REV1 REV2 [--json] [--socket PATH]\n");
		return CLI_EXIT_USAGE;
	}
	for (int i = 1; i <= 2; i++) {
		long rev;
		char part[96];
		if (!strncmp(argv[i], "git:", 4) && strlen(argv[i]) < 80 &&
		    !strpbrk(argv[i], "\"\\")) {
			snprintf(part, sizeof(part), "\"%s\"", argv[i]);
		} else if (!cli_parse_long(argv[i], 1, LONG_MAX, &rev)) {
			snprintf(part, sizeof(part), "%ld", rev);
		} else {
			fprintf(
			    stderr,
			    "hvgate: diff: a revision is a number (see 'hvgate history') or git:REF\n");
			return CLI_EXIT_USAGE;
		}
		snprintf(i == 1 ? from : to, 96, "%s", part);
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"diff\",\"from\":%s,\"to\":%s}", from, to);
	rc = cli_client_call(&o, req, &reply, &raw);
	if (rc)
		return rc;
	ok = json_get(reply, "ok");
	rc = ok && ok->type == JSON_BOOL && ok->boolean ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (o.json)
		puts(raw);
	else if (rc)
		fprintf(stderr, "hvgate: %s\n",
			json_get_str(reply, "error") ? json_get_str(reply, "error") : raw);
	else
		cli_client_print_compare(reply);
	json_free(reply);
	free(raw);
	return rc;
}
