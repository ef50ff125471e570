/* Scanner of the policy language (see policy/lexer.h). */
#include <stdlib.h>
#include <string.h>

#include "policy/lexer.h"

void policy_lexer_init(struct policy_lexer *lx, const char *file, const char *text, size_t len,
		       struct policy_diags *d)
{
	memset(lx, 0, sizeof(*lx));
	lx->src = text;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
	lx->at_line_start = true;
	lx->file = file;
	lx->diags = d;
}

static int peek(const struct policy_lexer *lx, size_t ahead)
{
	return lx->pos + ahead < lx->len ? (unsigned char)lx->src[lx->pos + ahead] : -1;
}

static void advance(struct policy_lexer *lx)
{
	if (lx->src[lx->pos] == '\n') {
		lx->line++;
		lx->col = 1;
		lx->at_line_start = true;
	} else {
		lx->col++;
	}
	lx->pos++;
}

static bool is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
}

static void skip_space_and_comments(struct policy_lexer *lx)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
			advance(lx);
		} else if (c == '#') {
			while (peek(lx, 0) != -1 && peek(lx, 0) != '\n')
				advance(lx);
		} else {
			return;
		}
	}
}

static void start_token(struct policy_lexer *lx, struct policy_token *t, enum policy_token_kind k)
{
	memset(t, 0, sizeof(*t));
	t->kind = k;
	t->text = lx->src + lx->pos;
	t->start = t->text;
	t->line_start = lx->at_line_start;
	t->loc.file = lx->file;
	t->loc.line = lx->line;
	t->loc.col = lx->col;
	lx->at_line_start = false;
}

static void finish_token(struct policy_lexer *lx, struct policy_token *t)
{
	t->loc.len = (uint32_t)(lx->src + lx->pos - t->text);
}

/* Reads up to the closing `close` on the same line, honouring backslash
 * escapes. Returns false (and stops at the newline) if there is none. */
static bool scan_delimited(struct policy_lexer *lx, char close)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c == -1 || c == '\n')
			return false;
		if (c == close)
			return true;
		if (c == '\\' && peek(lx, 1) != -1 && peek(lx, 1) != '\n')
			advance(lx);
		advance(lx);
	}
}

static void scan_string(struct policy_lexer *lx, struct policy_token *t)
{
	advance(lx); /* opening quote */
	t->text = lx->src + lx->pos;
	bool closed = scan_delimited(lx, '"');
	t->len = (size_t)(lx->src + lx->pos - t->text);
	if (closed)
		advance(lx);
	else
		policy_error(lx->diags, &t->loc, "unterminated string");
	t->loc.len = (uint32_t)(lx->src + lx->pos - (t->text - 1));
}

static void scan_regex(struct policy_lexer *lx, struct policy_token *t)
{
	advance(lx); /* opening slash */
	t->text = lx->src + lx->pos;
	bool closed = scan_delimited(lx, '/');
	t->len = (size_t)(lx->src + lx->pos - t->text);
	if (!closed) {
		policy_error(lx->diags, &t->loc, "unterminated regular expression");
	} else {
		advance(lx);
		t->flags = lx->src + lx->pos;
		while (peek(lx, 0) >= 'a' && peek(lx, 0) <= 'z')
			advance(lx);
		t->flags_len = (size_t)(lx->src + lx->pos - t->flags);
	}
	t->loc.len = (uint32_t)(lx->src + lx->pos - (t->text - 1));
}

static void scan_token(struct policy_lexer *lx, struct policy_token *t)
{
	for (;;) {
		skip_space_and_comments(lx);
		int c = peek(lx, 0);
		if (c == -1) {
			start_token(lx, t, POLICY_TOK_EOF);
			return;
		}
		if (c == '"') {
			start_token(lx, t, POLICY_TOK_STRING);
			scan_string(lx, t);
			return;
		}
		if (c == '/') {
			start_token(lx, t, POLICY_TOK_REGEX);
			scan_regex(lx, t);
			return;
		}
		if (c == '$' && is_word_char(peek(lx, 1))) {
			start_token(lx, t, POLICY_TOK_VAR);
			advance(lx);
			t->text++;
			while (is_word_char(peek(lx, 0)))
				advance(lx);
			t->len = (size_t)(lx->src + lx->pos - t->text);
			finish_token(lx, t);
			t->loc.len++;
			return;
		}
		if (is_word_char(c)) {
			start_token(lx, t, POLICY_TOK_WORD);
			while (is_word_char(peek(lx, 0)))
				advance(lx);
			t->len = (size_t)(lx->src + lx->pos - t->text);
			finish_token(lx, t);
			return;
		}
		static const struct {
			char c;
			enum policy_token_kind k;
		} punct[] = { { '{', POLICY_TOK_LBRACE },
			      { '}', POLICY_TOK_RBRACE },
			      { ',', POLICY_TOK_COMMA },
			      { '=', POLICY_TOK_EQUALS } };
		for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++) {
			if (c != punct[i].c)
				continue;
			start_token(lx, t, punct[i].k);
			advance(lx);
			t->len = 1;
			finish_token(lx, t);
			return;
		}
		struct policy_token bad;
		start_token(lx, &bad, POLICY_TOK_EOF);
		bad.loc.len = 1;
		if (c >= 0x20 && c < 0x7f)
			policy_error(lx->diags, &bad.loc, "unexpected character '%c'", c);
		else
			policy_error(lx->diags, &bad.loc, "unexpected byte 0x%02x", (unsigned)c);
		advance(lx);
	}
}

void policy_lexer_next(struct policy_lexer *lx, struct policy_token *t)
{
	scan_token(lx, t);
	t->end = lx->src + lx->pos;
}

char *policy_token_string(const struct policy_token *t)
{
	char *s = malloc(t->len + 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->text[i];
		if (c == '\\' && i + 1 < t->len) {
			c = t->text[++i];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
		}
		s[o++] = c;
	}
	s[o] = '\0';
	return s;
}

bool policy_token_is(const struct policy_token *t, const char *word)
{
	return t->kind == POLICY_TOK_WORD && strlen(word) == t->len && !memcmp(t->text, word, t->len);
}
