/* The shell's grammar: unique prefixes resolve to their keyword, ambiguous
 * and unknown words give one-line errors that say what was expected, and
 * the words that may come next are those of the table, filtered by the
 * word being typed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cli/grammar.h"
#include "tests/lib/checkmain.h"

/* Splits a literal into words (no quotes needed here). */
static int words_of(char *line, char **w)
{
	int n = 0;
	for (char *t = strtok(line, " "); t; t = strtok(NULL, " "))
		w[n++] = t;
	return n;
}

static int resolve(const char *text, char **w, char *err)
{
	static char line[256];
	int n;

	strcpy(line, text);
	n = words_of(line, w);
	err[0] = 0;
	return cli_grammar_resolve(cli_grammar_root, CLI_MODE_OP, n, w, err, 512);
}

START_TEST(prefixes)
{
	char *w[16], err[512];

	ck_assert_int_eq(resolve("sh ru", w, err), 0);
	ck_assert_str_eq(w[0], "show");
	ck_assert_str_eq(w[1], "rules");
	ck_assert_int_eq(resolve("sh ru ten acme", w, err), 0);
	ck_assert_str_eq(w[2], "tenant");
	ck_assert_str_eq(w[3], "acme");
	ck_assert_int_eq(resolve("commit conf 10m com new web rule", w, err), 0);
	ck_assert_str_eq(w[1], "confirmed");
	ck_assert_str_eq(w[3], "comment");
	/* A comment is free text: keywords inside it stay as typed. */
	ck_assert_str_eq(w[6], "rule");
	/* rules and running share "ru": rules is preferred, "run" is running. */
	ck_assert_int_eq(resolve("sh run rev 2", w, err), 0);
	ck_assert_str_eq(w[1], "running");
	ck_assert_str_eq(w[2], "revision");
	ck_assert_int_eq(resolve("hist", w, err), 0);
	ck_assert_str_eq(w[0], "history");
	/* configure and confirm share "conf": configure is preferred */
	ck_assert_int_eq(resolve("conf", w, err), 0);
	ck_assert_str_eq(w[0], "configure");
	ck_assert_int_eq(resolve("confir", w, err), 0);
	ck_assert_str_eq(w[0], "confirm");
	ck_assert_int_eq(resolve("unl f", w, err), 0);
	ck_assert_str_eq(w[0], "unlock");
	ck_assert_str_eq(w[1], "force");
	/* An exact keyword wins over longer ones it is a prefix of. */
	ck_assert_int_eq(resolve("show log lines 5", w, err), 0);
	ck_assert_int_eq(resolve("load rev 3", w, err), 0);
	ck_assert_str_eq(w[1], "revision");
	/* block and unblock take a zone or segment scope. */
	ck_assert_int_eq(resolve("block 192.0.2.7 z acme.web for 10m", w, err), 0);
	ck_assert_str_eq(w[2], "zone");
	ck_assert_str_eq(w[3], "acme.web");
	ck_assert_int_eq(resolve("unblock 192.0.2.7 zone uplink", w, err), 0);
	/* No keyword fits: the word is the path. */
	ck_assert_int_eq(resolve("load /etc/hvgate/policy.hvp", w, err), 0);
	ck_assert_str_eq(w[1], "/etc/hvgate/policy.hvp");
}
END_TEST

START_TEST(errors)
{
	char *w[16], err[512];

	ck_assert_int_eq(resolve("s", w, err), -1);
	ck_assert_msg(strstr(err, "ambiguous") && strstr(err, "status") && strstr(err, "show"),
		      "%s", err);
	ck_assert_int_eq(resolve("frobnicate", w, err), -1);
	ck_assert_msg(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	ck_assert_int_eq(resolve("show rulez", w, err), -1);
	ck_assert_msg(
	    strstr(err,
		   "after 'show': expected "
		   "rules|tenants|nat|conntrack|log|blocked|vpn|running|interfaces, got 'rulez'"),
	    "%s", err);
	ck_assert_int_eq(resolve("rollback", w, err), -1);
	ck_assert_msg(strstr(err, "after 'rollback': expected REVISION"), "%s", err);
	ck_assert_int_eq(resolve("rollback three", w, err), -1);
	ck_assert_msg(strstr(err, "expected REVISION, got 'three'"), "%s", err);
	ck_assert_int_eq(resolve("commit confirmed soon", w, err), -1);
	ck_assert_msg(strstr(err, "expected DURATION"), "%s", err);
	ck_assert_int_eq(resolve("status now", w, err), -1);
	ck_assert_msg(strstr(err, "after 'status': nothing more expected, got 'now'"), "%s", err);
	ck_assert_int_eq(resolve("show log lines", w, err), -1);
	ck_assert_msg(strstr(err, "expected N"), "%s", err);
	/* Only one line: no newline inside the message. */
	ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

static int next_words(const struct cli_node *root, const char *text, const char *partial,
		      const char **out, int *can_end)
{
	static char line[256];
	const struct cli_node *nodes[64];
	char *w[16];
	int n, k;

	strcpy(line, text);
	n = words_of(line, w);
	k = cli_grammar_next(root, CLI_MODE_OP, n, w, partial, nodes, 64, can_end);
	for (int i = 0; i < k; i++)
		out[i] = nodes[i]->word;
	return k;
}

START_TEST(next)
{
	const char *o[64];
	int end, k;

	k = next_words(cli_grammar_root, "", "sh", o, &end);
	ck_assert_int_eq(k, 1);
	ck_assert_str_eq(o[0], "show");
	ck_assert_int_eq(end, 0);
	k = next_words(cli_grammar_root, "", "s", o, &end);
	ck_assert_int_eq(k, 2); /* status, show */
	k = next_words(cli_grammar_root, "show", "", o, &end);
	ck_assert_int_eq(k, 9);
	ck_assert_int_eq(end, 0);
	k = next_words(cli_grammar_root, "show rules", "", o, &end);
	ck_assert_int_eq(k, 2);
	ck_assert_str_eq(o[0], "tenant");
	ck_assert_int_eq(end, 1);
	/* After a keyword that takes a name: the name's placeholder node. */
	k = next_words(cli_grammar_root, "sh ru ten", "a", o, &end);
	ck_assert_int_eq(k, 1);
	ck_assert_str_eq(o[0], "TENANT");
	k = next_words(cli_grammar_root, "load", "", o, &end);
	ck_assert_int_eq(k, 3);
	ck_assert_str_eq(o[2], "PATH");
	ck_assert_int_eq(end, 1);
	k = next_words(cli_grammar_root, "status", "", o, &end);
	ck_assert_int_eq(k, 0);
	ck_assert_int_eq(end, 1);
	ck_assert_int_eq(next_words(cli_grammar_root, "bogus", "", o, &end), -1);
	/* The shell offers neither itself nor the foreground engines. */
	k = next_words(cli_grammar_root, "", "", o, &end);
	for (int i = 0; i < k; i++) {
		ck_assert_str_ne(o[i], "shell");
		ck_assert_str_ne(o[i], "vpn");
		ck_assert_str_ne(o[i], "fastpath");
	}
	k = next_words(cli_grammar_pipe, "", "", o, &end);
	ck_assert_int_eq(k, 5);
	k = next_words(cli_grammar_pipe, "", "n", o, &end);
	ck_assert_int_eq(k, 1);
	ck_assert_str_eq(o[0], "no-more");
}
END_TEST

/* explain takes a policy file, or (asking hvgated) the packet itself,
 * whose first word is its protocol: offered and explained by `?` and Tab,
 * and matched only whole, so a file named like a prefix of one stays a
 * file. */
START_TEST(explain_packet)
{
	const char *o[64];
	char *w[16], err[512];
	int end, k, protos = 0, policy = 0;

	k = next_words(cli_grammar_root, "explain", "", o, &end);
	for (int i = 0; i < k; i++) {
		protos += !strcmp(o[i], "tcp") || !strcmp(o[i], "udp") || !strcmp(o[i], "icmp") ||
			  !strcmp(o[i], "icmpv6") || !strcmp(o[i], "sctp");
		policy += !strcmp(o[i], "POLICY");
	}
	ck_assert_int_eq(protos, 5);
	ck_assert_int_eq(policy, 1);
	ck_assert_int_eq(end, 0);
	k = next_words(cli_grammar_root, "explain", "icm", o, &end);
	ck_assert_int_eq(k, 3); /* icmp, icmpv6, POLICY */
	ck_assert_str_eq(o[0], "icmp");
	ck_assert_str_eq(o[1], "icmpv6");
	/* After the protocol: the packet, free text. */
	k = next_words(cli_grammar_root, "explain tcp", "", o, &end);
	ck_assert_int_eq(k, 1);
	ck_assert_str_eq(o[0], "PACKET");
	ck_assert_int_eq(
	    resolve("explain tcp 10.0.1.5:40000 -> 203.0.113.7:443 in tap-acme-web", w, err), 0);
	ck_assert_str_eq(w[1], "tcp");
	ck_assert_str_eq(w[4], "203.0.113.7:443");
	ck_assert_int_eq(resolve("explain icmpv6 fd00::1 -> fd00::2 type echo-request", w, err), 0);
	ck_assert_int_eq(resolve("explain tcp", w, err), -1);
	ck_assert_msg(strstr(err, "after 'explain tcp': expected PACKET"), "%s", err);
	/* A policy file, then the packet, as before. */
	ck_assert_int_eq(
	    resolve("explain /etc/hvgate/policy.hvp udp 10.0.1.5:5353 -> self:53", w, err), 0);
	ck_assert_str_eq(w[1], "/etc/hvgate/policy.hvp");
	/* A file named "t" is not taken for "tcp". */
	ck_assert_int_eq(resolve("explain t tcp 10.0.1.5:1 -> 10.0.2.9:80", w, err), 0);
	ck_assert_str_eq(w[1], "t");
}
END_TEST

START_TEST(common_prefix)
{
	const char *a[] = { "conntrack", "confirm", "configure" };
	const char *b[] = { "rules" };

	ck_assert_uint_eq(cli_common_prefix(a, 3), 3);
	ck_assert_uint_eq(cli_common_prefix(a + 1, 2), 5);
	ck_assert_uint_eq(cli_common_prefix(b, 1), 5);
	ck_assert_uint_eq(cli_common_prefix(a, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("grammar");
	TCase *tc = tcase_create("shell");

	tcase_add_test(tc, prefixes);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, next);
	tcase_add_test(tc, explain_packet);
	tcase_add_test(tc, common_prefix);
	suite_add_tcase(s, tc);
	return check_main(s);
}
