/* The grammar of the interactive shell (cli/shell.c): one table of verbs and
 * their arguments drives prefix matching, Tab completion, `?` help and the
 * one-line errors. Pure logic, no I/O: names that come from the daemon
 * (tenants, zones, rules, revisions, VPN interfaces) are asked of a callback. */
#ifndef HVGATE_CLI_GRAMMAR_H
#define HVGATE_CLI_GRAMMAR_H

#include <stddef.h>

/* What a position of a command holds. */
enum cli_arg {
	CLI_KW = 0,                /* the keyword `word` (or a unique prefix of it) */
	CLI_TENANT,                /* names fetched from the daemon ... */
	CLI_RULE,                  /* rule ids */
	CLI_REVISION,              /* stored revision numbers */
	CLI_VPN_IF,                /* interfaces of the running policy's vpn blocks */
	CLI_IFACE,                 /* interfaces of the configuration (status) */
	CLI_ZONE,                  /* zones and segments ("acme.web") of the running policy */
	CLI_NAME_KINDS,            /* (count of the kinds above) */
	CLI_PATH = CLI_NAME_KINDS, /* a file or directory: completed from the file system */
	CLI_DURATION,              /* 90, 90s, 10m, 2h */
	CLI_ADDR,                  /* ADDR or ADDR/LEN */
	CLI_NUMBER,
	CLI_WORD,  /* any one word (a git ref) */
	CLI_TEXT,  /* the rest of the line, any words */
	CLI_REGEX, /* one word, a regular expression */
};

/* Modes a node is offered in. */
#define CLI_MODE_OP   1u /* hvgate> */
#define CLI_MODE_CONF 2u /* hvgate# */
#define CLI_MODE_ALL  3u

/* Node flags. */
#define CLI_END    1u /* the command may end after this word */
#define CLI_PREFER 2u /* wins a prefix shared with other keywords (sh ru: rules, not running) */
#define CLI_EXACT                                                                                  \
	4u /* matched only when typed whole (Tab still completes it): a                            \
	    * prefix of it may be a file name (`explain t`) */

struct cli_node {
	const char *word; /* the keyword, or the placeholder shown in help (NAME) */
	enum cli_arg arg;
	const char *help;
	const struct cli_node *next; /* what may follow, terminated by a NULL word */
	unsigned flags;
	unsigned modes; /* 0: all modes */
};

/* The shell's commands, and what may follow a `|`. */
extern const struct cli_node cli_grammar_root[];
extern const struct cli_node cli_grammar_pipe[];

/* Resolves n words against the grammar in `mode`: keywords given as unique
 * prefixes are replaced by the keyword itself (words[i] then points at the
 * table's string). Returns 0 if the words make a complete command, else -1
 * with a one-line error in err ("show: expected rules, tenants, ... after
 * 'show', got 'x'"). */
int cli_grammar_resolve(const struct cli_node *root, unsigned mode, int n, char **words, char *err,
			size_t errlen);

/* The nodes that may follow the n (complete) words, in `mode`, whose keyword
 * starts with `partial` (argument nodes are always included). Returns how
 * many were stored in out (at most max), or -1 if the n words do not match
 * the grammar. *can_end is set when the n words already form a command. */
int cli_grammar_next(const struct cli_node *root, unsigned mode, int n, char **words,
		     const char *partial, const struct cli_node **out, int max, int *can_end);

/* The longest common prefix of the strings (length). */
size_t cli_common_prefix(const char *const *s, size_t n);

#endif
