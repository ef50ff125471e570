/* Scanner of the policy language (see policy/lexer.h). */
#include <stdlib.h>
#include <string.h>

#include "policy/lexer.h"
#include "policy/limits.h"

/* Highest Unicode code point and the UTF-16 surrogates, which UTF-8 must not
 * encode (RFC 3629 section 3). */
#define UNICODE_MAX     0x10ffffu
#define SURROGATE_FIRST 0xd800u
#define SURROGATE_LAST  0xdfffu
/* ASCII DEL, a control character like those below 0x20. */
#define ASCII_DEL 0x7f

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

/* Bytes of the well-formed UTF-8 character at `s` (of `n` available), or 0
 * if it is not one: overlong forms, surrogates and code points above
 * U+10FFFF are refused (RFC 3629 section 4). */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
	static const uint32_t min_code[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	uint32_t code = s[0] & (0x7fu >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		code = code << 6 | (s[i] & 0x3fu);
	}
	if (code < min_code[len] || code > UNICODE_MAX ||
	    (code >= SURROGATE_FIRST && code <= SURROGATE_LAST))
		return 0;
	return len;
}

static size_t char_len_here(const struct policy_lexer *lx)
{
	return utf8_char_len((const unsigned char *)lx->src + lx->pos, lx->len - lx->pos);
}

/* The location of the byte under the lexer. */
static struct policy_loc here(const struct policy_lexer *lx)
{
	return (struct policy_loc){ .file = lx->file, .line = lx->line, .col = lx->col, .len = 1 };
}

/* The bytes of a word: letters, digits and _ . : / - (a table: the lexer
 * looks at every byte of a policy of megabytes). */
static const bool word_chars[256] = {
	['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true, ['_'] = true,
	['.'] = true,         [':'] = true,         ['/'] = true,         ['-'] = true,
};

static bool is_word_char(int c)
{
	return c >= 0 && c < 256 && word_chars[c];
}

/* A comment may hold any text but a NUL byte and invalid UTF-8 (which
 * would end up in logs and terminals when the line is quoted); the first
 * such byte of a comment is reported. */
static void skip_comment(struct policy_lexer *lx)
{
	bool reported = false;
	while (peek(lx, 0) != -1 && peek(lx, 0) != '\n') {
		size_t n = char_len_here(lx);
		if ((peek(lx, 0) == 0 || !n) && !reported) {
			struct policy_loc at = here(lx);
			policy_error(lx->diags, &at,
				     peek(lx, 0) == 0 ? "NUL byte in a comment"
						      : "invalid UTF-8 in a comment");
			reported = true;
		}
		for (size_t i = 0; i < (n ? n : 1); i++)
			advance(lx);
	}
}

static void skip_space_and_comments(struct policy_lexer *lx)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
			advance(lx);
		} else if (c == '#') {
			skip_comment(lx);
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

/* Checks the character under the lexer inside a string or regular
 * expression (`what`): a NUL byte, another control character or invalid
 * UTF-8 would be compiled into names and log prefixes the kernel cuts short
 * or that garble logs, so each is an error (the first of the token only).
 * Returns the bytes to skip. */
static size_t check_quoted_char(struct policy_lexer *lx, const char *what, bool *reported)
{
	int c = peek(lx, 0);
	size_t n = char_len_here(lx);
	bool control = c < 0x20 || c == ASCII_DEL;
	if ((control || !n) && !*reported) {
		struct policy_loc at = here(lx);
		if (c == 0)
			policy_error(lx->diags, &at, "NUL byte in %s", what);
		else if (control)
			policy_error(lx->diags, &at, "control character 0x%02x in %s", (unsigned)c,
				     what);
		else
			policy_error(lx->diags, &at, "invalid UTF-8 in %s", what);
		*reported = true;
	}
	return n ? n : 1;
}

/* Reads up to the closing `close` on the same line, honouring backslash
 * escapes. Returns false (and stops at the newline) if there is none. In a
 * string (`strict`), only \" and \\ are escapes. */
static bool scan_delimited(struct policy_lexer *lx, char close, const char *what, bool strict)
{
	bool reported = false;
	for (;;) {
		int c = peek(lx, 0);
		if (c == -1 || c == '\n')
			return false;
		if (c == close)
			return true;
		if (c == '\\' && peek(lx, 1) != -1 && peek(lx, 1) != '\n') {
			int e = peek(lx, 1);
			if (strict && e != '"' && e != '\\' && !reported) {
				struct policy_loc at = here(lx);
				at.len = 2;
				if (e >= 0x20 && e < ASCII_DEL)
					policy_error(lx->diags, &at,
						     "unknown escape '\\%c' in %s "
						     "(only \\\" and \\\\)",
						     e, what);
				else
					policy_error(lx->diags, &at,
						     "unknown escape in %s "
						     "(only \\\" and \\\\)",
						     what);
				reported = true;
			}
			advance(lx);
		}
		for (size_t n = check_quoted_char(lx, what, &reported); n; n--)
			advance(lx);
	}
}

static void scan_string(struct policy_lexer *lx, struct policy_token *t)
{
	advance(lx); /* opening quote */
	t->text = lx->src + lx->pos;
	bool closed = scan_delimited(lx, '"', "a string", true);
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
	bool closed = scan_delimited(lx, '/', "a regular expression", false);
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

/* A token longer than POLICY_TOKEN_MAX is reported and dropped: quoting it
 * in later messages would print megabytes. Returns true if `t` is one. */
static bool too_long(struct policy_lexer *lx, const struct policy_token *t)
{
	if (t->len <= POLICY_TOKEN_MAX)
		return false;
	static const char *const what[] = {
		[POLICY_TOK_WORD] = "word",
		[POLICY_TOK_VAR] = "name",
		[POLICY_TOK_STRING] = "string",
		[POLICY_TOK_REGEX] = "regular expression",
	};
	policy_error(lx->diags, &t->loc, "%s longer than %d bytes", what[t->kind],
		     POLICY_TOKEN_MAX);
	return true;
}

/* A byte that starts no token: reported (a whole UTF-8 character at once)
 * and skipped. */
static void stray_char(struct policy_lexer *lx, int c)
{
	struct policy_loc at = here(lx);
	size_t n = char_len_here(lx);
	if (c >= 0x20 && c < ASCII_DEL)
		policy_error(lx->diags, &at, "unexpected character '%c'", c);
	else if (c == 0)
		policy_error(lx->diags, &at, "NUL byte in the policy text");
	else if (n > 1)
		policy_error(lx->diags, &at, "unexpected character '%.*s'", (int)n,
			     lx->src + lx->pos);
	else if (n == 0)
		policy_error(lx->diags, &at, "invalid UTF-8 byte 0x%02x", (unsigned)c);
	else
		policy_error(lx->diags, &at, "unexpected byte 0x%02x", (unsigned)c);
	for (size_t i = 0; i < (n ? n : 1); i++)
		advance(lx);
}

static void scan_word(struct policy_lexer *lx, struct policy_token *t)
{
	/* advance() without its newline case: a word holds none */
	size_t p = lx->pos;
	while (p < lx->len && word_chars[(unsigned char)lx->src[p]])
		p++;
	lx->col += (uint32_t)(p - lx->pos);
	lx->pos = p;
	t->len = (size_t)(lx->src + lx->pos - t->text);
	finish_token(lx, t);
}

/* Scans one token; false if it was dropped (too long). */
static bool scan_one(struct policy_lexer *lx, struct policy_token *t, int c)
{
	if (c == '"') {
		start_token(lx, t, POLICY_TOK_STRING);
		scan_string(lx, t);
	} else if (c == '/') {
		start_token(lx, t, POLICY_TOK_REGEX);
		scan_regex(lx, t);
	} else if (c == '$' && is_word_char(peek(lx, 1))) {
		start_token(lx, t, POLICY_TOK_VAR);
		advance(lx);
		t->text++;
		scan_word(lx, t);
		t->loc.len++;
	} else {
		start_token(lx, t, POLICY_TOK_WORD);
		scan_word(lx, t);
	}
	return !too_long(lx, t);
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
		if (c == '"' || c == '/' || (c == '$' && is_word_char(peek(lx, 1))) ||
		    is_word_char(c)) {
			if (scan_one(lx, t, c))
				return;
			continue;
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
		lx->at_line_start = false;
		stray_char(lx, c);
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
		if (c == '\\' && i + 1 < t->len)
			c = t->text[++i];
		s[o++] = c;
	}
	s[o] = '\0';
	return s;
}
