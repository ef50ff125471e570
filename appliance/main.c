/* hvgated: the appliance daemon (see appliance/daemon.h).
 *
 *   hvgated [-c FILE]                  run in the foreground (systemd: Type=notify)
 *   hvgated --check-config [-c FILE]   validate the configuration and exit
 *
 * Exit codes: 0 ok, 1 bad configuration or failed start, 2 usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "appliance/daemon.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvgated [-c FILE] [--check-config]\n"
		"  -c, --config FILE   configuration (default " CONF_DEFAULT_FILE ")\n"
		"  --check-config      validate the configuration and exit (0 valid, 1 invalid)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "check-config", no_argument, NULL, 'C' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *file = CONF_DEFAULT_FILE;
	int check = 0, o;

	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': file = optarg; break;
		case 'C': check = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check) {
		char err[CONF_ERR_MAX];
		struct conf c = { 0 };
		if (conf_load(file, &c, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("%s: ok\n", file);
		conf_free(&c);
		return 0;
	}
	{
		/* Reloads re-read the file after any chdir: keep it absolute. */
		char *abs = realpath(file, NULL);
		int rc = daemon_run(abs ? abs : file);
		free(abs);
		return rc;
	}
}
