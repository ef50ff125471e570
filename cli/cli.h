/* hvgate CLI (cli/): main.c, the verb table (verbs.c), the shell (shell.c),
 * helpers shared by verbs (util.c) and one file per verb (verb_*.c); it
 * calls appliance/ and the libraries below it, nothing calls it. One
 * function per verb, `int cli_VERB(int argc, char **argv)`, argv[0] being
 * the verb. Exit codes: 0 success, 1 the thing asked about is
 * wrong (invalid policy, refused apply, daemon said no), 2 usage or I/O error. */
#ifndef HVGATE_CLI_CLI_H
#define HVGATE_CLI_CLI_H

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/* Verbs are defined in their own files (cli/verb_*.c, shell.c). */
#define CLI_VERB(name) int cli_##name(int argc, char **argv)
CLI_VERB(check);
CLI_VERB(compile);
CLI_VERB(apply);
CLI_VERB(replay);
CLI_VERB(explain);
CLI_VERB(test);
CLI_VERB(vpn);
CLI_VERB(daemon_client); /* status, show, load, compare, commit, confirm, ... */
CLI_VERB(diff);
CLI_VERB(shell);
CLI_VERB(fastpath);
#undef CLI_VERB

/* The verb table (cli/verbs.c): run argv[0] as a verb; print the usage. */
#include <stddef.h>
#include <stdio.h>
int cli_dispatch(int argc, char **argv);
void cli_usage(FILE *out);

/* Helpers shared by verbs (cli/util.c). */
int cli_wants_help(int argc, char **argv);
/* The one number parser of option values: a whole decimal `s` in [lo, hi]
 * into *out. Returns 0, or -1 (nothing stored) for anything else. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
/* The width tables are sized to: cli_out_width when >= 0 (the shell sets
 * it; 0 = no limit), else the terminal's (TIOCGWINSZ, else $COLUMNS, else
 * 80) when standard output is a terminal, else 0 (no limit). */
extern int cli_out_width;
int cli_table_width(void);

/* The lowering options of `compile`, `check` (cli/verb_compile.c):
 * --no-optimize, --nflog-group N, --queue N, --workers W at argv[*i].
 * Returns 1 and advances *i past a value if it was one, 0 if argv[*i] is
 * not one of them, -1 if its value is missing or out of range. */
struct policy_lower_opts;
int cli_lower_option(int argc, char **argv, int *i, struct policy_lower_opts *o);

#endif
