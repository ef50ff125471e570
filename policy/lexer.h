/* The policy language scanner: turns a file's text into tokens.
 *
 * The language is newline-insensitive; newlines only matter for locations and
 * for the parser's error recovery (a statement keyword that starts a line is
 * a good place to resume), so every token says whether it starts a line.
 *
 * Words are maximal runs of letters, digits and `_ . : / -`, so that
 * `10.0.0.0/8`, `2001:db8::/32`, `8000-8100`, `10/minute` and `echo-request`
 * are each one token; the parser decides what a word means. A `/` that
 * starts a token opens a regular expression `/pattern/flags`.
 */
#ifndef HVGATE_POLICY_LEXER_H
#define HVGATE_POLICY_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "policy/diag.h"

enum policy_token_kind {
	POLICY_TOK_EOF,
	POLICY_TOK_WORD,   /* keyword, name, number, address, range */
	POLICY_TOK_VAR,    /* $name; text is the name without '$' */
	POLICY_TOK_STRING, /* "..."; text is the raw inside, escapes kept */
	POLICY_TOK_REGEX,  /* /pattern/flags; text is the pattern, flags separate */
	POLICY_TOK_LBRACE,
	POLICY_TOK_RBRACE,
	POLICY_TOK_COMMA,
	POLICY_TOK_EQUALS,
};

struct policy_token {
	enum policy_token_kind kind;
	const char *start; /* first byte of the token in the source */
	const char *end;   /* one past its last byte */
	const char *text;  /* points into the source; not NUL-terminated */
	size_t len;
	const char *flags; /* REGEX only */
	size_t flags_len;
	bool line_start; /* first token on its line */
	struct policy_loc loc;
};

struct policy_lexer {
	const char *src;
	size_t len, pos;
	uint32_t line, col;
	bool at_line_start;
	const char *file;
	struct policy_diags *diags;
};

void policy_lexer_init(struct policy_lexer *lx, const char *file, const char *text, size_t len,
		       struct policy_diags *d);

/* Scans the next token into `t`. Malformed input (a stray character, an
 * unterminated string or regex) is reported into the diagnostics and
 * skipped, so this always returns a token; POLICY_TOK_EOF at the end. */
void policy_lexer_next(struct policy_lexer *lx, struct policy_token *t);

/* The value of a STRING token with its escapes (\" \\) resolved;
 * malloc'd, NULL on ENOMEM. */
char *policy_token_string(const struct policy_token *t);

/* Does the token have exactly this text? */
static inline bool policy_token_is(const struct policy_token *t, const char *word)
{
	/* inline: the parser asks it of every token, with literal words whose
	 * length the compiler knows */
	return t->kind == POLICY_TOK_WORD && strlen(word) == t->len &&
	       !memcmp(t->text, word, t->len);
}

#endif
