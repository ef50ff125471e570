/* The control-socket client shared by cli/verb_client.c and cli/verb_diff.c. */
#ifndef HVGATE_CLI_CLIENT_H
#define HVGATE_CLI_CLIENT_H

#include <stdbool.h>

#include "appliance/json.h"

struct cli_client_opts {
	bool json;
	const char *socket;
};

/* Takes --json and --socket PATH out of argv (argv[0] stays). -1 on usage error. */
int cli_client_opts(int *argc, char **argv, struct cli_client_opts *o);
/* Sends one request line, reads one reply line. CLI_EXIT_OK with the parsed
 * reply and its text (caller frees both), else CLI_EXIT_USAGE (I/O). */
int cli_client_call(const struct cli_client_opts *o, const char *request, struct json **reply,
		    char **raw);
/* Prints added/removed/changed lines of a compare or diff reply. */
void cli_client_print_compare(const struct json *reply);

#endif
