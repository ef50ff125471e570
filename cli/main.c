/* hvgate: the command-line front of the appliance. Offline verbs (check,
 * compile, replay, explain) need no daemon; apply talks to the kernel
 * directly; the others are clients of hvgated's control socket. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_dispatch(argc - 1, argv + 1);
}
