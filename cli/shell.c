/* `hvgate shell`: the interactive appliance shell (libedit).
 *
 * A line is a command of the grammar in cli/grammar.c, run in this process
 * by the verb of the same name ("show rules", "commit confirmed 60 comment
 * new web rule"). Keywords may be shortened to a unique prefix ("sh ru").
 * Words split on blanks; single or double quotes keep blanks in a word.
 * After the command, `| match REGEX`, `| except REGEX`, `| count`, `| json`
 * and `| no-more` filter its output; output longer than the terminal goes
 * through a pager. Tab completes keywords, names the daemon knows (tenants,
 * rules, revisions, VPN interfaces) and, where a path is expected, files;
 * `?` lists what may come next. Ctrl-C cancels the line, Ctrl-D leaves.
 * History is kept in ~/.hvgate_history, saved after every command. With
 * stdin not a terminal the shell reads commands without a prompt, so it can
 * be scripted; its exit status is that of the last command (2 if a line
 * could not be parsed).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <histedit.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "appliance/json.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/grammar.h"

#define SHELL_MAX_WORDS 64
#define SHELL_PROMPT "hvgate> "
#define SHELL_HISTORY_FILE ".hvgate_history"
#define SHELL_HISTORY_LINES 1000
#define SHELL_MAX_CANDIDATES 512
/* Names fetched from the daemon are reused for this long: a Tab pressed
 * twice asks once, and a restarted daemon is asked again soon. */
#define SHELL_NAMES_TTL_SECONDS 3
/* A completion must not hang the line on a daemon that does not answer. */
#define SHELL_LINE_MAX 4096

/* An unquoted `|` is a word of its own, told apart from a quoted "|" by
 * its address. */
static char pipe_token[] = "|";

struct names {
	char **v;
	size_t n;
	time_t fetched;
};

struct shell {
	EditLine *el;
	History *hist;
	char hist_path[4096];
	unsigned mode;
	int cancelled;
	int interactive;
	struct names names[CLI_NAME_KINDS];
};

static volatile sig_atomic_t shell_interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	shell_interrupted = 1;
}

/* Splits `line` into words stored in `store` (at least 2 * strlen(line) + 2
 * bytes: every character once, and a NUL per word); quotes group, backslash
 * escapes one character, an unquoted '|' is pipe_token. Returns the number
 * of words, or -1 for an unterminated quote or too many words. With
 * open_quote not NULL, a line that ends inside quotes sets it and returns
 * the count of the words before that one. */
static int split_words(const char *line, char *store, char **words, int max, int *open_quote)
{
	int n = 0;
	const char *in = line;
	char *out = store;

	if (open_quote)
		*open_quote = 0;
	while (*in) {
		while (*in == ' ' || *in == '\t' || *in == '\n')
			in++;
		if (!*in || *in == '#')
			break;
		if (n == max)
			return -1;
		if (*in == '|') {
			words[n++] = pipe_token;
			in++;
			continue;
		}
		words[n++] = out;
		char quote = 0;
		while (*in && (quote || (*in != ' ' && *in != '\t' && *in != '\n' && *in != '|'))) {
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
		*out++ = '\0';
		if (quote) {
			if (open_quote) {
				*open_quote = 1;
				return n - 1;
			}
			return -1;
		}
	}
	return n;
}

/* --- names from the daemon ------------------------------------------- */

static void names_clear(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	nm->v = NULL;
	nm->n = 0;
}

static void names_add(struct names *nm, const char *s)
{
	char **v = realloc(nm->v, (nm->n + 1) * sizeof(*v));

	if (!v)
		return;
	nm->v = v;
	if ((nm->v[nm->n] = strdup(s)))
		nm->n++;
}

/* One request to the daemon with its complaints kept off the screen (a Tab
 * against a stopped daemon completes nothing, quietly). */
static struct json *quiet_call(const char *request)
{
	struct cli_client_opts o = { .json = true, .socket = getenv("HVGATE_SOCKET") };
	struct json *reply = NULL;
	char *raw = NULL;
	int saved, devnull;

	if (!o.socket || !*o.socket)
		o.socket = "/run/hvgate/control.sock";
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDERR_FILENO);
		close(devnull);
	}
	if (cli_client_call(&o, request, &reply, &raw))
		reply = NULL;
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	free(raw);
	return reply;
}

static void fetch_names(enum cli_arg kind, struct names *nm)
{
	static const struct {
		const char *request, *array, *field;
	} src[CLI_NAME_KINDS] = {
		[CLI_TENANT] = { "{\"cmd\":\"show\",\"what\":\"tenants\"}", "tenants", "name" },
		[CLI_RULE] = { "{\"cmd\":\"show\",\"what\":\"rules\"}", "rules", "id" },
		[CLI_REVISION] = { "{\"cmd\":\"history\"}", "revisions", "revision" },
		[CLI_VPN_IF] = { "{\"cmd\":\"show\",\"what\":\"vpn\"}", "vpns", "ifname" },
	};
	struct json *reply;
	const struct json *arr;

	if (kind == CLI_KW || kind >= CLI_NAME_KINDS || !src[kind].request)
		return;
	if (nm->fetched && time(NULL) - nm->fetched < SHELL_NAMES_TTL_SECONDS)
		return;
	names_clear(nm);
	nm->fetched = time(NULL);
	reply = quiet_call(src[kind].request);
	arr = reply ? json_get(reply, src[kind].array) : NULL;
	for (size_t i = 0; arr && arr->type == JSON_ARRAY && i < arr->n; i++) {
		const struct json *v = json_get(&arr->items[i], src[kind].field);
		char num[32];
		if (v && v->type == JSON_STRING) {
			names_add(nm, v->string);
		} else if (v && v->type == JSON_NUMBER) {
			snprintf(num, sizeof(num), "%lld", v->integer);
			names_add(nm, num);
		}
	}
	if (reply)
		json_free(reply);
}

/* --- candidates for Tab and ? ----------------------------------------- */

struct candidates {
	const char *v[SHELL_MAX_CANDIDATES];
	char dir[SHELL_MAX_CANDIDATES]; /* a directory: no blank after it */
	size_t n;
	glob_t g;
	int globbed;
};

static void cand_add(struct candidates *c, const char *s, int dir)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i], s))
			return;
	if (c->n < SHELL_MAX_CANDIDATES) {
		c->dir[c->n] = (char)dir;
		c->v[c->n++] = s;
	}
}

static void add_paths(struct candidates *c, const char *partial)
{
	char pattern[SHELL_LINE_MAX + 2];

	snprintf(pattern, sizeof(pattern), "%s*", partial);
	if (glob(pattern, GLOB_MARK | GLOB_TILDE, NULL, &c->g))
		return;
	c->globbed = 1;
	for (size_t i = 0; i < c->g.gl_pathc; i++) {
		const char *p = c->g.gl_pathv[i];
		cand_add(c, p, p[0] && p[strlen(p) - 1] == '/');
	}
}

/* The words before the cursor: the command, or what follows its last '|'. */
struct context {
	char buf[SHELL_LINE_MAX];
	char store[2 * SHELL_LINE_MAX + 2];
	char *words[SHELL_MAX_WORDS];
	int n;			    /* complete words of the segment */
	const char *partial;	    /* the word being typed ("" after a blank) */
	const struct cli_node *root; /* the grammar of the segment */
	int open_quote;
};

static int context_of(const LineInfo *li, struct context *cx)
{
	size_t len = (size_t)(li->cursor - li->buffer);
	int n, start = 0;

	if (len >= sizeof(cx->buf))
		return -1;
	memcpy(cx->buf, li->buffer, len);
	cx->buf[len] = 0;
	n = split_words(cx->buf, cx->store, cx->words, SHELL_MAX_WORDS - 1, &cx->open_quote);
	if (n < 0)
		return -1;
	/* The last word is complete only if a blank (or a '|') follows it. */
	cx->partial = "";
	if (!cx->open_quote && n > 0 && len && li->buffer[len - 1] != ' ' && li->buffer[len - 1] != '\t' &&
	    cx->words[n - 1] != pipe_token)
		cx->partial = cx->words[--n];
	cx->root = cli_grammar_root;
	for (int i = 0; i < n; i++)
		if (cx->words[i] == pipe_token)
			start = i + 1;
	if (start) {
		cx->root = cli_grammar_pipe;
		memmove(cx->words, cx->words + start, (size_t)(n - start) * sizeof(char *));
		n -= start;
	}
	cx->n = n;
	return 0;
}

/* Fills c with what may replace the partial word; returns the grammar's
 * nodes count (-1: the words before do not fit the grammar). */
static int candidates_of(struct shell *sh, struct context *cx, struct candidates *c, const struct cli_node **nodes,
			 int max, int *can_end)
{
	int k = cli_grammar_next(cx->root, sh->mode, cx->n, cx->words, cx->partial, nodes, max, can_end);

	for (int i = 0; i < k; i++) {
		const struct cli_node *nd = nodes[i];
		if (nd->arg == CLI_KW) {
			cand_add(c, nd->word, 0);
		} else if (nd->arg < CLI_NAME_KINDS) {
			struct names *nm = &sh->names[nd->arg];
			fetch_names(nd->arg, nm);
			for (size_t j = 0; j < nm->n; j++)
				if (!strncmp(nm->v[j], cx->partial, strlen(cx->partial)))
					cand_add(c, nm->v[j], 0);
		} else if (nd->arg == CLI_PATH) {
			add_paths(c, cx->partial);
		}
	}
	return k;
}

static void candidates_free(struct candidates *c)
{
	if (c->globbed)
		globfree(&c->g);
}

static int term_cols(void)
{
	struct winsize ws;

	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static int term_rows(void)
{
	struct winsize ws;

	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

/* Candidates in columns, as a shell lists them. */
static void print_columns(FILE *out, const struct candidates *c)
{
	size_t width = 0;
	int cols = term_cols(), per_line;

	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->v[i]) > width)
			width = strlen(c->v[i]);
	per_line = (int)((size_t)cols / (width + 2));
	if (per_line < 1)
		per_line = 1;
	for (size_t i = 0; i < c->n; i++)
		fprintf(out, "%-*s%s", (int)width + 2, c->v[i], (i + 1) % (size_t)per_line && i + 1 < c->n ? "" : "\n");
}

static unsigned char key_complete(EditLine *el, int ch)
{
	struct shell *sh;
	struct context cx;
	struct candidates c = { .n = 0 };
	const struct cli_node *nodes[64];
	int can_end, k;
	size_t common, plen;
	unsigned char rc = CC_REFRESH;

	(void)ch;
	el_get(el, EL_CLIENTDATA, &sh);
	if (context_of(el_line(el), &cx) || cx.open_quote)
		return CC_ERROR;
	k = candidates_of(sh, &cx, &c, nodes, 64, &can_end);
	plen = strlen(cx.partial);
	if (k < 0 || (!c.n && !k)) {
		rc = CC_ERROR;
	} else if (c.n == 1) {
		if (strlen(c.v[0]) > plen || !c.dir[0]) {
			char ins[SHELL_LINE_MAX];
			snprintf(ins, sizeof(ins), "%s%s", c.v[0] + plen, c.dir[0] ? "" : " ");
			el_insertstr(el, ins);
		}
	} else if (c.n > 1 && (common = cli_common_prefix(c.v, c.n)) > plen) {
		char ins[SHELL_LINE_MAX];
		snprintf(ins, sizeof(ins), "%.*s", (int)(common - plen), c.v[0] + plen);
		el_insertstr(el, ins);
	} else if (c.n > 1) {
		fputc('\n', stdout);
		print_columns(stdout, &c);
		rc = CC_REDISPLAY;
	} else {
		/* Only free values fit here (an address, a duration): say so. */
		fputc('\n', stdout);
		for (int i = 0; i < k; i++)
			printf("  %-14s %s\n", nodes[i]->word, nodes[i]->help);
		rc = CC_REDISPLAY;
	}
	candidates_free(&c);
	fflush(stdout);
	return rc;
}

/* `?`: what may come next, one line of help each. Typed inside quotes or
 * into free text (a comment, a regular expression) it is a plain '?'. */
static unsigned char key_help(EditLine *el, int ch)
{
	struct shell *sh;
	struct context cx;
	struct candidates c = { .n = 0 };
	const struct cli_node *nodes[64];
	int can_end, k;

	(void)ch;
	el_get(el, EL_CLIENTDATA, &sh);
	if (context_of(el_line(el), &cx) || cx.open_quote)
		goto literal;
	k = cli_grammar_next(cx.root, sh->mode, cx.n, cx.words, cx.partial, nodes, 64, &can_end);
	if (k > 0 && *cx.partial && (nodes[0]->arg == CLI_TEXT || nodes[0]->arg == CLI_REGEX))
		goto literal;
	fputc('\n', stdout);
	if (k < 0) {
		char err[512];
		struct context full;
		/* Say why the words before do not fit, as Enter would. */
		if (!context_of(el_line(el), &full) &&
		    cli_grammar_resolve(full.root, sh->mode, full.n, full.words, err, sizeof(err)))
			printf("  %s\n", err);
		return CC_REDISPLAY;
	}
	printf("Possible completions:\n");
	for (int i = 0; i < k; i++) {
		const struct cli_node *nd = nodes[i];
		printf("  %-14s %s\n", nd->word, nd->help);
		if (nd->arg < CLI_NAME_KINDS && nd->arg != CLI_KW) {
			struct names *nm = &sh->names[nd->arg];
			c.n = 0;
			fetch_names(nd->arg, nm);
			for (size_t j = 0; j < nm->n; j++)
				if (!strncmp(nm->v[j], cx.partial, strlen(cx.partial)))
					cand_add(&c, nm->v[j], 0);
			for (size_t j = 0; j < c.n; j++)
				printf("    %s\n", c.v[j]);
			if (!nm->n)
				printf("    (none known: is hvgated running?)\n");
		}
	}
	if (can_end)
		printf("  %-14s %s\n", "<Enter>", "run the command");
	if (can_end && cx.root == cli_grammar_root)
		printf("  %-14s %s\n", "|", "filter the output (match, except, count, json, no-more)");
	fflush(stdout);
	return CC_REDISPLAY;
literal:
	el_insertstr(el, "?");
	return CC_REFRESH;
}

/* Ctrl-C: the line is dropped, shown ending in ^C, and a fresh prompt
 * follows (the terminal's own SIGINT is off while a line is edited). */
static unsigned char key_cancel(EditLine *el, int ch)
{
	struct shell *sh;
	const LineInfo *li = el_line(el);

	(void)ch;
	el_get(el, EL_CLIENTDATA, &sh);
	sh->cancelled = 1;
	el_cursor(el, (int)(li->lastchar - li->cursor));
	el_insertstr(el, "^C");
	el_push(el, "\n");
	return CC_REFRESH;
}

/* --- running a line ---------------------------------------------------- */

struct pipeline {
	regex_t re[8];
	int negate[8];
	int nre;
	int count, json, no_more;
};

static void pipeline_free(struct pipeline *p)
{
	for (int i = 0; i < p->nre; i++)
		regfree(&p->re[i]);
}

static const char *shell_keys =
	"Keys: Tab completes (keywords, names from hvgated, files where a path goes);\n"
	"  ? lists what may come next; keywords may be shortened (sh ru = show rules);\n"
	"  | match REGEX, | except REGEX, | count, | json, | no-more after a command;\n"
	"  Ctrl-C cancels the line, Ctrl-D or 'exit' leaves; Up/Down walk the history.\n";

static void print_help(unsigned mode)
{
	printf("Commands:\n");
	for (const struct cli_node *c = cli_grammar_root; c->word; c++)
		if (!c->modes || (c->modes & mode))
			printf("  %-10s %s\n", c->word, c->help);
	fputs(shell_keys, stdout);
}

/* Reads a key for the pager, the terminal in non-canonical mode. */
static int pager_key(void)
{
	struct termios saved, raw;
	unsigned char ch = 'q';

	if (tcgetattr(STDIN_FILENO, &saved))
		return 'q';
	raw = saved;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	if (read(STDIN_FILENO, &ch, 1) != 1)
		ch = 'q';
	tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	return ch;
}

/* Prints captured output through the filters, and the pager when the
 * shell is interactive and the output does not fit the terminal. */
static void emit_output(struct shell *sh, FILE *cap, struct pipeline *p)
{
	char *line = NULL;
	size_t cap_len = 0;
	long count = 0;
	int page = sh->interactive && !p->no_more && !p->count ? term_rows() - 1 : 0, shown = 0;

	rewind(cap);
	while (getline(&line, &cap_len, cap) >= 0) {
		int keep = 1;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[len - 1] = 0;
		for (int i = 0; i < p->nre && keep; i++)
			keep = (regexec(&p->re[i], line, 0, NULL, 0) == 0) != p->negate[i];
		if (!keep)
			continue;
		count++;
		if (p->count)
			continue;
		if (page > 0 && shown >= page) {
			fputs("--More-- (Space: next page, Enter: next line, q: stop)", stdout);
			fflush(stdout);
			int key = pager_key();
			fputs("\r\033[K", stdout);
			if (key == 'q' || key == 'Q' || key == 3 /* Ctrl-C */)
				break;
			shown = key == '\n' || key == '\r' ? page - 1 : 0;
		}
		puts(line);
		shown++;
	}
	if (p->count)
		printf("Count: %ld lines\n", count);
	free(line);
	fflush(stdout);
}

/* Resolves the pipe segments words[start..n) split at pipe tokens. */
static int parse_pipeline(struct shell *sh, char **words, int n, struct pipeline *p)
{
	int i = 0;
	char err[512];

	memset(p, 0, sizeof(*p));
	while (i < n) {
		int j = i;
		while (j < n && words[j] != pipe_token)
			j++;
		if (j == i) {
			fprintf(stderr, "hvgate: after '|': expected match|except|count|json|no-more\n");
			return -1;
		}
		if (cli_grammar_resolve(cli_grammar_pipe, sh->mode, j - i, words + i, err, sizeof(err))) {
			fprintf(stderr, "hvgate: | %s\n", err);
			return -1;
		}
		if (!strcmp(words[i], "match") || !strcmp(words[i], "except")) {
			if (p->nre == (int)(sizeof(p->re) / sizeof(p->re[0])) ||
			    regcomp(&p->re[p->nre], words[i + 1], REG_EXTENDED | REG_NOSUB)) {
				fprintf(stderr, "hvgate: | %s '%s': not a regular expression\n", words[i], words[i + 1]);
				return -1;
			}
			p->negate[p->nre++] = !strcmp(words[i], "except");
		} else if (!strcmp(words[i], "count")) {
			p->count = 1;
		} else if (!strcmp(words[i], "json")) {
			p->json = 1;
		} else {
			p->no_more = 1;
		}
		i = j + 1;
	}
	return 0;
}

static int is_daemon_verb(const char *v)
{
	static const char *const verbs[] = { "status",	 "show",   "load",   "compare", "commit", "confirm", "rollback",
					     "history",	 "reload", "block",  "unblock", "diff",	  NULL };
	for (int i = 0; verbs[i]; i++)
		if (!strcmp(v, verbs[i]))
			return 1;
	return 0;
}

/* Runs a verb of the shell: help, or the verb of the same name. */
static int run_verb(struct shell *sh, int argc, char **argv)
{
	if (!strcmp(argv[0], "help")) {
		print_help(sh->mode);
		return CLI_EXIT_OK;
	}
	return cli_dispatch(argc, argv);
}

/* Runs the verb with standard output captured, then filters and pages. */
static int run_captured(struct shell *sh, int argc, char **argv, struct pipeline *p)
{
	FILE *cap = tmpfile();
	int saved, rc;

	if (!cap)
		return run_verb(sh, argc, argv);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	if (saved < 0) {
		fclose(cap);
		return run_verb(sh, argc, argv);
	}
	dup2(fileno(cap), STDOUT_FILENO);
	rc = run_verb(sh, argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	emit_output(sh, cap, p);
	fclose(cap);
	return rc;
}

/* Runs the words of one line (words has room for one more and a NULL). */
static int run_words(struct shell *sh, char **words, int n, int *quit)
{
	char err[512];
	int cmd_n = 0, rc;
	struct pipeline p;

	while (cmd_n < n && words[cmd_n] != pipe_token)
		cmd_n++;
	if (n == 0)
		return CLI_EXIT_OK;
	if (cli_grammar_resolve(cli_grammar_root, sh->mode, cmd_n, words, err, sizeof(err))) {
		fprintf(stderr, "hvgate: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (parse_pipeline(sh, words + cmd_n + 1, cmd_n < n ? n - cmd_n - 1 : 0, &p)) {
		pipeline_free(&p);
		return CLI_EXIT_USAGE;
	}
	if (cmd_n < n && cmd_n + 1 == n) {
		fprintf(stderr, "hvgate: after '|': expected match|except|count|json|no-more\n");
		pipeline_free(&p);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(words[0], "exit") || !strcmp(words[0], "quit")) {
		*quit = 1;
		pipeline_free(&p);
		return CLI_EXIT_OK;
	}
	if (p.json && !is_daemon_verb(words[0])) {
		fprintf(stderr, "hvgate: | json: only for commands answered by hvgated\n");
		pipeline_free(&p);
		return CLI_EXIT_USAGE;
	}
	if (p.json)
		words[cmd_n++] = "--json";
	words[cmd_n] = NULL;
	shell_interrupted = 0;
	rc = run_captured(sh, cmd_n, words, &p);
	fflush(stderr);
	pipeline_free(&p);
	return rc;
}

/* Runs one line; *quit set on exit/quit. Returns the command's exit code. */
static int run_line(struct shell *sh, const char *line, int *quit)
{
	char *words[SHELL_MAX_WORDS + 1];
	char *store = malloc(2 * strlen(line) + 2);
	int n = store ? split_words(line, store, words, SHELL_MAX_WORDS - 1, NULL) : -1, rc;

	if (n < 0) {
		fprintf(stderr, "hvgate: unterminated quote or more than %d words\n", SHELL_MAX_WORDS - 2);
		rc = CLI_EXIT_USAGE;
	} else {
		rc = run_words(sh, words, n, quit);
	}
	free(store);
	return rc;
}

static int shell_batch(struct shell *sh, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = CLI_EXIT_OK, quit = 0;

	while (!quit && getline(&line, &cap, in) >= 0)
		rc = run_line(sh, line, &quit);
	free(line);
	return rc;
}

static void history_path(char *buf, size_t size)
{
	const char *home = getenv("HOME");
	snprintf(buf, size, "%s/%s", home && *home ? home : ".", SHELL_HISTORY_FILE);
}

static char *prompt(EditLine *el)
{
	(void)el;
	return SHELL_PROMPT;
}

static void history_save(struct shell *sh)
{
	HistEvent ev;

	if (history(sh->hist, &ev, H_SAVE, sh->hist_path) < 0 && errno != ENOENT)
		fprintf(stderr, "hvgate: could not save history to %s\n", sh->hist_path);
}

/* libedit's history_init(), which appliance/history.c's history_init()
 * (the revision store, linked into this binary) hides from the linker:
 * asked of libedit itself. */
static History *edit_history_init(void)
{
	void *lib = dlopen("libedit.so.2", RTLD_LAZY | RTLD_NOLOAD);
	History *(*init)(void) = NULL;

	if (lib)
		*(void **)&init = dlsym(lib, "history_init");
	return init ? init() : NULL;
}

static int shell_interactive(struct shell *sh)
{
	HistEvent ev;
	struct sigaction sa = { .sa_handler = on_sigint };
	int rc = CLI_EXIT_OK, quit = 0;

	/* SIGINT while a command runs interrupts its wait (the command fails
	 * with EINTR) and never ends the shell. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	history_path(sh->hist_path, sizeof(sh->hist_path));
	sh->hist = edit_history_init();
	if (sh->hist) {
		history(sh->hist, &ev, H_SETSIZE, SHELL_HISTORY_LINES);
		history(sh->hist, &ev, H_SETUNIQUE, 1);
		history(sh->hist, &ev, H_LOAD, sh->hist_path);
	}
	sh->el = el_init("hvgate", stdin, stdout, stderr);
	el_set(sh->el, EL_CLIENTDATA, sh);
	el_set(sh->el, EL_EDITOR, "emacs");
	if (sh->hist)
		el_set(sh->el, EL_HIST, history, sh->hist);
	el_set(sh->el, EL_PROMPT, prompt);
	el_set(sh->el, EL_SETTY, "-d", "-isig", NULL);
	el_set(sh->el, EL_ADDFN, "hv-complete", "complete the word", key_complete);
	el_set(sh->el, EL_ADDFN, "hv-help", "list what may come next", key_help);
	el_set(sh->el, EL_ADDFN, "hv-cancel", "cancel the line", key_cancel);
	el_set(sh->el, EL_BIND, "^I", "hv-complete", NULL);
	el_set(sh->el, EL_BIND, "?", "hv-help", NULL);
	el_set(sh->el, EL_BIND, "^C", "hv-cancel", NULL);
	el_source(sh->el, NULL); /* ~/.editrc, as other libedit programs */
	printf("hvgate shell. 'help' lists the commands, '?' what may come next, Ctrl-D leaves.\n");
	while (!quit) {
		int len = 0;
		const char *got;
		sh->cancelled = 0;
		got = el_gets(sh->el, &len);
		if (!got) {
			putchar('\n');
			break;
		}
		if (sh->cancelled)
			continue;
		char *line = strdup(got);
		if (!line)
			break;
		line[strcspn(line, "\n")] = 0;
		for (size_t end = strlen(line); end && (line[end - 1] == ' ' || line[end - 1] == '\t'); end--)
			line[end - 1] = 0; /* a completion leaves a blank */
		if (sh->hist && line[strspn(line, " \t")]) {
			history(sh->hist, &ev, H_ENTER, line);
			history_save(sh);
		}
		rc = run_line(sh, line, &quit);
		free(line);
	}
	if (sh->hist) {
		history_save(sh);
		history_end(sh->hist);
	}
	el_end(sh->el);
	for (int i = 0; i < CLI_NAME_KINDS; i++)
		names_clear(&sh->names[i]);
	return rc;
}

int cli_shell(int argc, char **argv)
{
	struct shell sh = { .mode = CLI_MODE_OP };

	if (cli_wants_help(argc, argv)) {
		printf("usage: hvgate shell\n\nThe interactive appliance shell; 'help' inside lists its commands.\n%s",
		       shell_keys);
		return CLI_EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: hvgate shell\n");
		return CLI_EXIT_USAGE;
	}
	if (!isatty(STDIN_FILENO))
		return shell_batch(&sh, stdin);
	sh.interactive = isatty(STDOUT_FILENO);
	return shell_interactive(&sh);
}
