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
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "appliance/json.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/grammar.h"

#define SHELL_MAX_WORDS      64
#define SHELL_HISTORY_FILE   ".hvgate_history"
#define SHELL_HISTORY_LINES  1000
#define SHELL_MAX_CANDIDATES 512
/* Grammar nodes that may follow at one place: more than any command has. */
#define SHELL_MAX_NEXT 64
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
	char prompt[64];
	char edit_dir[64]; /* copies of the candidate's files for `edit` ("": none yet) */
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
		[CLI_IFACE] = { "{\"cmd\":\"status\"}", "interfaces", "name" },
		[CLI_ZONE] = { "{\"cmd\":\"show\",\"what\":\"tenants\"}", "zones", "name" },
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
	/* `show rules rule ID` also takes the implicit rows (default:..., builtin:...) */
	arr = reply && kind == CLI_RULE ? json_get(reply, "implicit") : NULL;
	for (size_t i = 0; arr && arr->type == JSON_ARRAY && i < arr->n; i++) {
		const struct json *v = json_get(&arr->items[i], "id");
		if (v && v->type == JSON_STRING)
			names_add(nm, v->string);
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
	int n;                       /* complete words of the segment */
	const char *partial;         /* the word being typed ("" after a blank) */
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
	if (!cx->open_quote && n > 0 && len && li->buffer[len - 1] != ' ' &&
	    li->buffer[len - 1] != '\t' && cx->words[n - 1] != pipe_token)
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

/* Adds to c the names of kind `arg` known to the daemon that start with
 * `partial`; returns how many it knows of that kind. */
static size_t add_names(struct shell *sh, struct candidates *c, enum cli_arg arg,
			const char *partial)
{
	struct names *nm = &sh->names[arg];

	fetch_names(arg, nm);
	for (size_t j = 0; j < nm->n; j++)
		if (!strncmp(nm->v[j], partial, strlen(partial)))
			cand_add(c, nm->v[j], 0);
	return nm->n;
}

/* Where a key bound to completion (Tab, '?') is pressed: the shell, the
 * words before the cursor and the grammar's nodes that may come next. */
struct key_context {
	struct shell *sh;
	struct context cx;
	const struct cli_node *nodes[SHELL_MAX_NEXT];
	int k; /* nodes found; -1: the words before do not fit the grammar */
	int can_end;
};

/* -1 inside quotes or on a line too long to take apart. */
static int key_context_of(EditLine *el, struct key_context *kc)
{
	el_get(el, EL_CLIENTDATA, &kc->sh);
	if (context_of(el_line(el), &kc->cx) || kc->cx.open_quote)
		return -1;
	kc->k = cli_grammar_next(kc->cx.root, kc->sh->mode, kc->cx.n, kc->cx.words, kc->cx.partial,
				 kc->nodes, SHELL_MAX_NEXT, &kc->can_end);
	return 0;
}

/* Fills c with what may replace the partial word. */
static void candidates_of(struct key_context *kc, struct candidates *c)
{
	for (int i = 0; i < kc->k; i++) {
		const struct cli_node *nd = kc->nodes[i];
		if (nd->arg == CLI_KW) {
			cand_add(c, nd->word, 0);
		} else if (nd->arg < CLI_NAME_KINDS) {
			add_names(kc->sh, c, nd->arg, kc->cx.partial);
		} else if (nd->arg == CLI_PATH) {
			add_paths(c, kc->cx.partial);
		}
	}
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
		fprintf(out, "%-*s%s", (int)width + 2, c->v[i],
			(i + 1) % (size_t)per_line && i + 1 < c->n ? "" : "\n");
}

static unsigned char key_complete(EditLine *el, int ch)
{
	struct key_context kc;
	struct candidates c = { .n = 0 };
	size_t common, plen;
	unsigned char rc = CC_REFRESH;

	(void)ch;
	if (key_context_of(el, &kc))
		return CC_ERROR;
	candidates_of(&kc, &c);
	plen = strlen(kc.cx.partial);
	if (kc.k < 0 || (!c.n && !kc.k)) {
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
		for (int i = 0; i < kc.k; i++)
			printf("  %-14s %s\n", kc.nodes[i]->word, kc.nodes[i]->help);
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
	struct key_context kc;
	struct candidates c = { .n = 0 };

	(void)ch;
	if (key_context_of(el, &kc))
		goto literal;
	if (kc.k > 0 && *kc.cx.partial &&
	    (kc.nodes[0]->arg == CLI_TEXT || kc.nodes[0]->arg == CLI_REGEX))
		goto literal;
	fputc('\n', stdout);
	if (kc.k < 0) {
		char err[512];
		struct context full;
		/* Say why the words before do not fit, as Enter would. */
		if (!context_of(el_line(el), &full) &&
		    cli_grammar_resolve(full.root, kc.sh->mode, full.n, full.words, err,
					sizeof(err)))
			printf("  %s\n", err);
		return CC_REDISPLAY;
	}
	printf("Possible completions:\n");
	for (int i = 0; i < kc.k; i++) {
		const struct cli_node *nd = kc.nodes[i];
		printf("  %-14s %s\n", nd->word, nd->help);
		if (nd->arg < CLI_NAME_KINDS && nd->arg != CLI_KW) {
			c.n = 0;
			size_t known = add_names(kc.sh, &c, nd->arg, kc.cx.partial);
			for (size_t j = 0; j < c.n; j++)
				printf("    %s\n", c.v[j]);
			if (!known)
				printf("    (none known: is hvgated running?)\n");
		}
	}
	if (kc.can_end)
		printf("  %-14s %s\n", "<Enter>", "run the command");
	if (kc.can_end && kc.cx.root == cli_grammar_root)
		printf("  %-14s %s\n", "|",
		       "filter the output (match, except, count, json, no-more)");
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
	int count, json, no_more, compare;
	const char *compare_rev; /* | compare revision N */
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
	int cols = page > 0 ? term_cols() : 0;

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
		/* a line longer than the terminal takes more than one row of it */
		shown += cols > 0 && len > (size_t)cols
			     ? (int)((len - 1 + (size_t)cols - 1) / (size_t)cols)
			     : 1;
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
			fprintf(stderr,
				"hvgate: after '|': expected match|except|count|json|no-more\n");
			return -1;
		}
		if (cli_grammar_resolve(cli_grammar_pipe, sh->mode, j - i, words + i, err,
					sizeof(err))) {
			fprintf(stderr, "hvgate: | %s\n", err);
			return -1;
		}
		if (!strcmp(words[i], "match") || !strcmp(words[i], "except")) {
			if (p->nre == (int)(sizeof(p->re) / sizeof(p->re[0])) ||
			    regcomp(&p->re[p->nre], words[i + 1], REG_EXTENDED | REG_NOSUB)) {
				fprintf(stderr, "hvgate: | %s '%s': not a regular expression\n",
					words[i], words[i + 1]);
				return -1;
			}
			p->negate[p->nre++] = !strcmp(words[i], "except");
		} else if (!strcmp(words[i], "count")) {
			p->count = 1;
		} else if (!strcmp(words[i], "json")) {
			p->json = 1;
		} else if (!strcmp(words[i], "compare")) {
			p->compare = 1;
			p->compare_rev = j - i == 3 ? words[i + 2] : NULL;
		} else {
			p->no_more = 1;
		}
		i = j + 1;
	}
	return 0;
}

static int is_daemon_verb(const char *v)
{
	static const char *const verbs[] = { "status",  "show",     "load",    "compare", "commit",
					     "confirm", "rollback", "history", "reload",  "block",
					     "unblock", "diff",     "unlock",  NULL };
	for (int i = 0; verbs[i]; i++)
		if (!strcmp(v, verbs[i]))
			return 1;
	return 0;
}

/* --- configure mode ---------------------------------------------------- */

/* One request whose failure is printed as one line; NULL then. */
static struct json *daemon_call(const char *request)
{
	struct cli_client_opts o = { .json = true, .socket = getenv("HVGATE_SOCKET") };
	struct json *reply = NULL;
	const struct json *ok;
	char *raw = NULL;

	if (!o.socket || !*o.socket)
		o.socket = "/run/hvgate/control.sock";
	if (cli_client_call(&o, request, &reply, &raw))
		return NULL;
	free(raw);
	ok = json_get(reply, "ok");
	if (!ok || ok->type != JSON_BOOL || !ok->boolean) {
		fprintf(stderr, "hvgate: %s\n",
			json_get_str(reply, "error") ? json_get_str(reply, "error") : "refused");
		json_free(reply);
		return NULL;
	}
	return reply;
}

/* The prompt, computed once per line: a pending `commit confirmed` shows
 * its countdown, configure mode ends in '#'. */
static void prompt_update(struct shell *sh)
{
	char mark = sh->mode == CLI_MODE_CONF ? '#' : '>';
	struct json *st = quiet_call("{\"cmd\":\"status\"}");
	const struct json *pending = st ? json_get(st, "pending") : NULL;
	long long left = -1;

	if (pending && pending->type == JSON_OBJECT)
		json_get_int(pending, "seconds_left", &left);
	if (left >= 0)
		snprintf(sh->prompt, sizeof(sh->prompt), "hvgate(confirm %02lld:%02lld)%c ",
			 left / 60, left % 60, mark);
	else
		snprintf(sh->prompt, sizeof(sh->prompt), "hvgate%c ", mark);
	if (st)
		json_free(st);
}

/* 1 if the candidate differs from the running policy, 0 if there is none
 * or it is the same, -1 if the daemon cannot say. */
static int candidate_dirty(void)
{
	struct json *st = daemon_call("{\"cmd\":\"status\"}"), *cmp;
	const struct json *cand = st ? json_get(st, "candidate") : NULL;
	size_t changes = 0;

	if (!st)
		return -1;
	if (!cand || cand->type != JSON_OBJECT) {
		json_free(st);
		return 0;
	}
	json_free(st);
	cmp = daemon_call("{\"cmd\":\"compare\"}");
	if (!cmp)
		return -1;
	static const char *const parts[] = { "added", "removed", "changed", "moved" };
	for (int i = 0; i < 4; i++) {
		const struct json *a = json_get(cmp, parts[i]);
		changes += a && a->type == JSON_ARRAY ? a->n : 0;
	}
	json_free(cmp);
	return changes > 0;
}

static int conf_enter(struct shell *sh)
{
	struct json *r = daemon_call("{\"cmd\":\"lock\"}");

	if (!r)
		return CLI_EXIT_FAIL;
	json_free(r);
	sh->mode = CLI_MODE_CONF;
	printf("Configure mode: the candidate is locked for this session ('exit' leaves).\n");
	/* a candidate left by an earlier session (kept across restarts) */
	if (candidate_dirty() > 0)
		printf("The candidate differs from the running policy: 'show | compare' shows how, "
		       "'discard' drops it.\n");
	return CLI_EXIT_OK;
}

/* The candidate back to the running revision. */
static int conf_discard(void)
{
	struct json *st = daemon_call("{\"cmd\":\"status\"}"), *r;
	long long rev = 0;
	char req[96];

	if (!st)
		return CLI_EXIT_FAIL;
	json_get_int(json_get(st, "running"), "revision", &rev);
	json_free(st);
	if (rev <= 0) {
		fprintf(stderr, "hvgate: discard: no running revision to go back to\n");
		return CLI_EXIT_FAIL;
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"rollback\",\"revision\":%lld}", rev);
	if (!(r = daemon_call(req)))
		return CLI_EXIT_FAIL;
	json_free(r);
	printf("Candidate discarded: it is the running revision %lld again.\n", rev);
	return CLI_EXIT_OK;
}

static int conf_leave(struct shell *sh, int discard)
{
	int dirty = candidate_dirty();
	struct json *r;

	if (dirty > 0 && !discard) {
		fprintf(stderr, "hvgate: the candidate has uncommitted changes: commit, discard, "
				"or 'exit discard'\n");
		return CLI_EXIT_FAIL;
	}
	if (dirty > 0 && conf_discard())
		return CLI_EXIT_FAIL;
	if ((r = daemon_call("{\"cmd\":\"unlock\"}")))
		json_free(r);
	sh->mode = CLI_MODE_OP;
	return CLI_EXIT_OK;
}

/* `show` and `check` alone in configure mode: the candidate. */
static int conf_show(int check)
{
	struct json *st = daemon_call("{\"cmd\":\"status\"}");
	const struct json *cand = st ? json_get(st, "candidate") : NULL;
	long long rules = 0;

	if (!st)
		return CLI_EXIT_FAIL;
	if (!cand || cand->type != JSON_OBJECT) {
		printf("No candidate: load, edit or rollback makes one.\n");
		json_free(st);
		return check ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	json_get_int(cand, "rules", &rules);
	printf("%s: %lld rules from %s (hash %s)\n", check ? "Candidate compiles" : "Candidate",
	       rules, json_get_str(cand, "source"), json_get_str(cand, "hash"));
	json_free(st);
	return CLI_EXIT_OK;
}

/* Runs argv (NULL-terminated) and waits; its exit status, or -1. */
static int run_program(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Asks a yes/no question on the terminal; default yes. */
static int ask_yes(const char *question)
{
	char answer[16];

	printf("%s [Y/n] ", question);
	fflush(stdout);
	if (!fgets(answer, sizeof(answer), stdin))
		return 0;
	return answer[0] != 'n' && answer[0] != 'N';
}

#define EDIT_ROUNDS_MAX 20

/* `edit`: $EDITOR on a copy of the candidate's (else the running
 * policy's) files, checked on save; errors offer another round; a policy
 * that checks becomes the candidate. */
static int conf_edit(struct shell *sh)
{
	struct json *st = daemon_call("{\"cmd\":\"status\"}");
	const struct json *pol;
	char src[4096], dst[4096 + 64], cmd[4096];
	const char *editor = getenv("VISUAL");

	if (!st)
		return CLI_EXIT_FAIL;
	pol = json_get(st, "candidate");
	if (!pol || pol->type != JSON_OBJECT)
		pol = json_get(st, "running");
	if (!pol || pol->type != JSON_OBJECT || !json_get_str(pol, "source") ||
	    (json_get_str(pol, "source_rev") && *json_get_str(pol, "source_rev"))) {
		fprintf(
		    stderr,
		    "hvgate: edit: the candidate is not a file or directory (load one first)\n");
		json_free(st);
		return CLI_EXIT_FAIL;
	}
	snprintf(src, sizeof(src), "%s", json_get_str(pol, "source"));
	json_free(st);
	if (!sh->edit_dir[0]) {
		snprintf(sh->edit_dir, sizeof(sh->edit_dir), "/tmp/hvgate-edit.XXXXXX");
		if (!mkdtemp(sh->edit_dir)) {
			fprintf(stderr, "hvgate: edit: %s\n", strerror(errno));
			sh->edit_dir[0] = 0;
			return CLI_EXIT_FAIL;
		}
	}
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	snprintf(dst, sizeof(dst), "%s/%s", sh->edit_dir, base);
	if (strcmp(src, dst)) {
		char *rm[] = { "rm", "-rf", "--", dst, NULL },
		     *cp[] = { "cp", "-a", "--", src, dst, NULL };
		if (run_program(rm) || run_program(cp)) {
			fprintf(stderr, "hvgate: edit: cannot copy %s\n", src);
			return CLI_EXIT_FAIL;
		}
	}
	if (!editor || !*editor)
		editor = getenv("EDITOR");
	if (!editor || !*editor)
		editor = "vi";
	/* $EDITOR may carry arguments ("emacs -nw"): the shell splits it. */
	snprintf(cmd, sizeof(cmd), "%s \"$1\"", editor);
	for (int round = 0; round < EDIT_ROUNDS_MAX; round++) {
		char *ed[] = { "/bin/sh", "-c", cmd, "sh", dst, NULL };
		char *check[] = { "check", dst, NULL };
		if (run_program(ed)) {
			fprintf(stderr, "hvgate: edit: %s failed; the candidate is unchanged\n",
				editor);
			return CLI_EXIT_FAIL;
		}
		if (cli_dispatch(2, check) == CLI_EXIT_OK) {
			char *load[] = { "load", dst, NULL };
			fflush(stdout);
			return cli_dispatch(2, load);
		}
		fflush(stdout);
		fflush(stderr);
		if (!ask_yes("The policy has errors. Edit again?")) {
			printf("Edit abandoned: the candidate is unchanged (your copy: %s).\n",
			       dst);
			return CLI_EXIT_FAIL;
		}
	}
	return CLI_EXIT_FAIL;
}

static void edit_dir_remove(struct shell *sh)
{
	if (sh->edit_dir[0]) {
		char *rm[] = { "rm", "-rf", "--", sh->edit_dir, NULL };
		run_program(rm);
		sh->edit_dir[0] = 0;
	}
}

/* Runs a verb of the shell: help, or the verb of the same name. */
static int run_verb(struct shell *sh, int argc, char **argv)
{
	if (!strcmp(argv[0], "help")) {
		print_help(sh->mode);
		return CLI_EXIT_OK;
	}
	if (sh->mode == CLI_MODE_CONF && argc == 1 && !strcmp(argv[0], "check"))
		return conf_show(1);
	if (sh->mode == CLI_MODE_CONF && argc == 1 && !strcmp(argv[0], "show"))
		return conf_show(0);
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
	/* tables fit the terminal, unless the lines are filtered, counted or
	 * asked for whole (| match, | except, | count, | no-more) */
	cli_out_width = sh->interactive && !p->no_more && !p->count && !p->nre ? term_cols() : 0;
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
	cli_out_width = -1;
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
	if (p.compare && !(cmd_n == 1 && !strcmp(words[0], "show"))) {
		fprintf(stderr, "hvgate: | compare: only after 'show' (show | compare)\n");
		pipeline_free(&p);
		return CLI_EXIT_USAGE;
	}
	if (p.compare) {
		words[0] = "compare";
		if (p.compare_rev) {
			words[1] = "revision";
			words[2] = (char *)p.compare_rev;
			cmd_n = 3;
		}
	}
	if (!strcmp(words[0], "exit") || !strcmp(words[0], "quit")) {
		pipeline_free(&p);
		if (sh->mode == CLI_MODE_CONF) {
			rc = conf_leave(sh, cmd_n > 1);
			if (!rc && !strcmp(words[0], "quit"))
				*quit = 1;
			return rc;
		}
		*quit = 1;
		return CLI_EXIT_OK;
	}
	if (!strcmp(words[0], "configure") || !strcmp(words[0], "edit") ||
	    !strcmp(words[0], "discard")) {
		pipeline_free(&p);
		rc = words[0][0] == 'c'   ? conf_enter(sh)
		     : words[0][0] == 'e' ? conf_edit(sh)
					  : conf_discard();
		fflush(stdout);
		fflush(stderr);
		return rc;
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
		fprintf(stderr, "hvgate: unterminated quote or more than %d words\n",
			SHELL_MAX_WORDS - 2);
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
	/* The input ended in configure mode: as `exit` when nothing changed;
	 * uncommitted changes stay locked for an operator to look at. */
	if (sh->mode == CLI_MODE_CONF && conf_leave(sh, 0)) {
		fprintf(stderr,
			"hvgate: the input ended in configure mode: the candidate stays locked "
			"('hvgate unlock' breaks the lock)\n");
		sh->mode = CLI_MODE_OP;
		return CLI_EXIT_FAIL;
	}
	return rc;
}

static void history_path(char *buf, size_t size)
{
	const char *home = getenv("HOME");
	snprintf(buf, size, "%s/%s", home && *home ? home : ".", SHELL_HISTORY_FILE);
}

static char *prompt(EditLine *el)
{
	struct shell *sh;

	el_get(el, EL_CLIENTDATA, &sh);
	return sh->prompt;
}

static void history_save(struct shell *sh)
{
	HistEvent ev;

	if (history(sh->hist, &ev, H_SAVE, sh->hist_path) < 0 && errno != ENOENT)
		fprintf(stderr, "hvgate: could not save history to %s\n", sh->hist_path);
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
	sh->hist = history_init();
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
		prompt_update(sh);
		got = el_gets(sh->el, &len);
		if (!got && sh->mode == CLI_MODE_CONF &&
		    tcgetattr(STDIN_FILENO, &(struct termios){ 0 })) {
			/* the terminal went away (no Ctrl-D): the lock stays */
			fprintf(stderr,
				"\nhvgate: the terminal went away in configure mode: the candidate "
				"stays locked ('hvgate unlock' breaks the lock)\n");
			sh->mode = CLI_MODE_OP;
			rc = CLI_EXIT_FAIL;
			break;
		}
		if (!got && sh->mode == CLI_MODE_CONF) {
			/* Ctrl-D in configure mode is `exit`. */
			putchar('\n');
			conf_leave(sh, 0);
			continue;
		}
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
		for (size_t end = strlen(line);
		     end && (line[end - 1] == ' ' || line[end - 1] == '\t'); end--)
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
	if (sh->mode == CLI_MODE_CONF) {
		struct json *r = quiet_call("{\"cmd\":\"unlock\"}");
		if (r)
			json_free(r);
	}
	edit_dir_remove(sh);
	el_end(sh->el);
	for (int i = 0; i < CLI_NAME_KINDS; i++)
		names_clear(&sh->names[i]);
	return rc;
}

int cli_shell(int argc, char **argv)
{
	struct shell sh = { .mode = CLI_MODE_OP };

	if (cli_wants_help(argc, argv)) {
		printf("usage: hvgate shell\n\nThe interactive appliance shell; 'help' inside "
		       "lists its commands.\n%s",
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
