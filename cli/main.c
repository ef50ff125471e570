/* hvgate: the command-line front of the appliance. Offline verbs (check,
 * compile, replay, explain) need no daemon; apply talks to the kernel
 * directly; the others are clients of hvgated's control socket. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	int rc;

	/* A reader that goes away (hvgate show | head -c1) or a daemon that
	 * closes the socket must give an error message and exit status, not a
	 * silent death by SIGPIPE: writes then fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	rc = cli_dispatch(argc - 1, argv + 1);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "hvgate: write to standard output: %s\n",
			strerror(errno ? errno : EIO));
		return CLI_EXIT_USAGE;
	}
	return rc;
}
