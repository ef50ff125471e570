/* The scanner: token kinds, texts, locations, line starts, errors. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "policy/lexer.h"
#include "tests/lib/checkmain.h"

struct expect_tok {
	enum policy_token_kind kind;
	const char *text;
	uint32_t line, col;
};

static void expect_tokens(const char *src, const struct expect_tok *want, size_t n)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lexer lx;
	policy_lexer_init(&lx, "l.hvp", src, strlen(src), &d);
	for (size_t i = 0; i < n; i++) {
		struct policy_token t;
		policy_lexer_next(&lx, &t);
		ck_assert_msg(t.kind == want[i].kind, "token %zu: kind %d, want %d", i, t.kind,
			      want[i].kind);
		ck_assert_uint_eq(t.len, strlen(want[i].text));
		ck_assert_msg(!memcmp(t.text, want[i].text, t.len), "token %zu: '%.*s' want '%s'",
			      i, (int)t.len, t.text, want[i].text);
		ck_assert_uint_eq(t.loc.line, want[i].line);
		ck_assert_uint_eq(t.loc.col, want[i].col);
		ck_assert_str_eq(t.loc.file, "l.hvp");
	}
	struct policy_token t;
	policy_lexer_next(&lx, &t);
	ck_assert_int_eq(t.kind, POLICY_TOK_EOF);
	ck_assert_uint_eq(d.n_errors, 0);
	policy_diags_free(&d);
}

START_TEST(test_words_and_punctuation)
{
	const struct expect_tok want[] = {
		{ POLICY_TOK_WORD, "define", 1, 1 },
		{ POLICY_TOK_WORD, "nets", 1, 8 },
		{ POLICY_TOK_EQUALS, "=", 1, 13 },
		{ POLICY_TOK_LBRACE, "{", 1, 15 },
		{ POLICY_TOK_WORD, "10.0.0.0/8", 1, 17 },
		{ POLICY_TOK_COMMA, ",", 1, 27 },
		{ POLICY_TOK_WORD, "2001:db8::/32", 2, 3 },
		{ POLICY_TOK_WORD, "10.0.0.1-10.0.0.9", 2, 17 },
		{ POLICY_TOK_VAR, "other", 2, 35 },
		{ POLICY_TOK_RBRACE, "}", 2, 42 },
	};
	expect_tokens("define nets = { 10.0.0.0/8,\n  2001:db8::/32 10.0.0.1-10.0.0.9 $other }",
		      want, sizeof(want) / sizeof(want[0]));
}
END_TEST

START_TEST(test_comments_strings_regex)
{
	const struct expect_tok want[] = {
		{ POLICY_TOK_WORD, "log", 2, 1 },
		{ POLICY_TOK_STRING, "a \\\"q\\\" # not a comment", 2, 5 },
		{ POLICY_TOK_WORD, "content", 3, 1 },
		{ POLICY_TOK_REGEX, "(?i)union\\s+select\\/x", 3, 9 },
		{ POLICY_TOK_WORD, "limit", 4, 1 },
		{ POLICY_TOK_WORD, "10/minute", 4, 7 },
	};
	expect_tokens("# a comment line\nlog \"a \\\"q\\\" # not a comment\" # trailing\n"
		      "content /(?i)union\\s+select\\/x/i\nlimit 10/minute",
		      want, sizeof(want) / sizeof(want[0]));
}
END_TEST

START_TEST(test_regex_flags_and_string_value)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lexer lx;
	const char *src = "/ab/ix \"x\\\\y\\\"z\"";
	policy_lexer_init(&lx, "l.hvp", src, strlen(src), &d);
	struct policy_token t;
	policy_lexer_next(&lx, &t);
	ck_assert_int_eq(t.kind, POLICY_TOK_REGEX);
	ck_assert_uint_eq(t.flags_len, 2);
	ck_assert(!memcmp(t.flags, "ix", 2));
	ck_assert_uint_eq(t.loc.len, 6);
	policy_lexer_next(&lx, &t);
	ck_assert_int_eq(t.kind, POLICY_TOK_STRING);
	char *v = policy_token_string(&t);
	ck_assert_str_eq(v, "x\\y\"z");
	free(v);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_line_start)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lexer lx;
	const char *src = "pass from a\n  block";
	policy_lexer_init(&lx, "l.hvp", src, strlen(src), &d);
	struct policy_token t;
	const bool want[] = { true, false, false, true };
	for (size_t i = 0; i < 4; i++) {
		policy_lexer_next(&lx, &t);
		ck_assert_int_eq(t.line_start, want[i]);
	}
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_errors_are_reported_and_skipped)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lexer lx;
	const char *src = "a @ b\n\"open\nc /re";
	policy_lexer_init(&lx, "l.hvp", src, strlen(src), &d);
	struct policy_token t;
	size_t words = 0;
	for (int guard = 0; guard < 20; guard++) {
		policy_lexer_next(&lx, &t);
		if (t.kind == POLICY_TOK_EOF)
			break;
		words += t.kind == POLICY_TOK_WORD;
	}
	ck_assert_int_eq(t.kind, POLICY_TOK_EOF);
	ck_assert_uint_eq(words, 3); /* a b c */
	ck_assert_uint_eq(d.n_errors, 3);
	ck_assert_str_eq(d.v[0].message, "unexpected character '@'");
	ck_assert_uint_eq(d.v[0].loc.col, 3);
	ck_assert_str_eq(d.v[1].message, "unterminated string");
	ck_assert_uint_eq(d.v[1].loc.line, 2);
	ck_assert_str_eq(d.v[2].message, "unterminated regular expression");
	ck_assert_uint_eq(d.v[2].loc.col, 3);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_nul_byte)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lexer lx;
	const char src[] = { 'a', '\0', 'b' };
	policy_lexer_init(&lx, "l.hvp", src, sizeof(src), &d);
	struct policy_token t;
	policy_lexer_next(&lx, &t);
	policy_lexer_next(&lx, &t);
	ck_assert_int_eq(t.kind, POLICY_TOK_WORD);
	ck_assert_uint_eq(t.loc.col, 3);
	ck_assert_str_eq(d.v[0].message, "NUL byte in the policy text");
	policy_diags_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lexer");
	TCase *tc = tcase_create("tokens");
	tcase_add_test(tc, test_words_and_punctuation);
	tcase_add_test(tc, test_comments_strings_regex);
	tcase_add_test(tc, test_regex_flags_and_string_value);
	tcase_add_test(tc, test_line_start);
	tcase_add_test(tc, test_errors_are_reported_and_skipped);
	tcase_add_test(tc, test_nul_byte);
	suite_add_tcase(s, tc);
	return check_main(s);
}
