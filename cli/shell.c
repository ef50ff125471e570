/* `hvgate shell`: the interactive appliance shell (libedit).
 *
 * Every line is a verb with its arguments, exactly as on the command line
 * ("show rules", "commit confirmed 60 comment 'new web rule'"), run in this
 * process. Words split on blanks; single or double quotes keep blanks in a
 * word. History is kept in ~/.hvgate_history. With stdin not a terminal the
 * shell reads commands without a prompt, so it can be scripted; its exit
 * status is that of the last command (or 2 if a line could not be parsed).
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define SHELL_MAX_WORDS 64
#define SHELL_PROMPT "hvgate> "
#define SHELL_HISTORY_FILE ".hvgate_history"
#define SHELL_HISTORY_LINES 1000

/* Splits `line` in place into words; quotes group, backslash escapes one
 * character. Returns the number of words, or -1 for an unterminated quote
 * or too many words. */
static int split_words(char *line, char **words, int max)
{
	int n = 0;
	char *in = line, *out = line;

	while (*in) {
		while (*in == ' ' || *in == '\t' || *in == '\n')
			in++;
		if (!*in || *in == '#')
			break;
		if (n == max)
			return -1;
		words[n++] = out;
		char quote = 0;
		while (*in && (quote || (*in != ' ' && *in != '\t' && *in != '\n'))) {
			if (quote && *in == quote) {
				quote = 0;
				in++;
			} else if (!quote && (*in == '\'' || *in == '"')) {
				quote = *in++;
			} else if (*in == '\\' && in[1] && quote != '\'') {
				in++;
				*out++ = *in++;
			} else {
				*out++ = *in++;
			}
		}
		if (quote)
			return -1;
		if (*in)
			in++;
		*out++ = '\0';
	}
	return n;
}

static const char *shell_help =
	"Type a verb with its arguments, as after 'hvgate' on the command line.\n"
	"'help' lists the verbs, 'VERB --help' explains one, 'exit' or Ctrl-D leaves.\n";

/* Runs one line; *quit set on exit/quit. Returns the command's exit code. */
static int run_line(char *line, int *quit)
{
	char *words[SHELL_MAX_WORDS];
	int n = split_words(line, words, SHELL_MAX_WORDS);

	if (n < 0) {
		fprintf(stderr, "hvgate: unterminated quote or more than %d words\n", SHELL_MAX_WORDS);
		return CLI_EXIT_USAGE;
	}
	if (n == 0)
		return CLI_EXIT_OK;
	if (!strcmp(words[0], "exit") || !strcmp(words[0], "quit")) {
		*quit = 1;
		return CLI_EXIT_OK;
	}
	if (!strcmp(words[0], "shell")) {
		fprintf(stderr, "hvgate: already in the shell\n");
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(words[0], "help") || !strcmp(words[0], "?")) {
		fputs(shell_help, stdout);
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	words[n] = NULL;
	int rc = cli_dispatch(n, words);
	fflush(stdout);
	fflush(stderr);
	return rc;
}

static char *complete_verb(const char *text, int state)
{
	static size_t next;
	static const char *const builtins[] = { "help", "exit", "quit" };
	size_t len = strlen(text);

	if (!state)
		next = 0;
	for (;;) {
		const char *name;
		size_t i = next++;
		if (i < sizeof(builtins) / sizeof(builtins[0])) {
			name = builtins[i];
		} else {
			name = cli_verb_name(i - sizeof(builtins) / sizeof(builtins[0]));
			if (!name)
				return NULL;
		}
		if (*name && !strncmp(name, text, len) && strcmp(name, "shell"))
			return strdup(name);
	}
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	if (start != 0)
		return NULL; /* arguments: let libedit complete file names */
	return rl_completion_matches(text, complete_verb);
}

static int shell_batch(FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = CLI_EXIT_OK, quit = 0;

	while (!quit && getline(&line, &cap, in) >= 0)
		rc = run_line(line, &quit);
	free(line);
	return rc;
}

static void history_path(char *buf, size_t size)
{
	const char *home = getenv("HOME");
	snprintf(buf, size, "%s/%s", home && *home ? home : ".", SHELL_HISTORY_FILE);
}

static int shell_interactive(void)
{
	char hist[4096];
	int rc = CLI_EXIT_OK, quit = 0;

	history_path(hist, sizeof(hist));
	rl_readline_name = "hvgate";
	rl_attempted_completion_function = complete;
	using_history();
	stifle_history(SHELL_HISTORY_LINES);
	read_history(hist);
	printf("hvgate shell. 'help' lists the verbs, Ctrl-D leaves.\n");
	while (!quit) {
		char *line = readline(SHELL_PROMPT);
		if (!line) {
			putchar('\n');
			break;
		}
		if (*line)
			add_history(line);
		rc = run_line(line, &quit);
		free(line);
	}
	if (write_history(hist) != 0 && errno != ENOENT)
		fprintf(stderr, "hvgate: could not save history to %s\n", hist);
	return rc;
}

int cli_shell(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		printf("usage: hvgate shell\n\n%s", shell_help);
		return CLI_EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: hvgate shell\n");
		return CLI_EXIT_USAGE;
	}
	if (!isatty(STDIN_FILENO))
		return shell_batch(stdin);
	return shell_interactive();
}
