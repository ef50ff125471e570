/* hvgate test POLICY_DIR: the expectation files kept next to a policy
 * (tests/NAME.hvt), checked offline with the evaluator (docs/replay.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "cli/explain.h"

enum test_format { FORMAT_TEXT, FORMAT_TAP, FORMAT_JUNIT };

struct test_case {
	char *file;
	unsigned line;
	char *text;    /* the expectation as written */
	char *failure; /* NULL: passed */
};

struct test_run {
	const struct policy *p;
	const struct policy_diags *d;
	struct test_case *v;
	size_t n, cap, failed;
};

static int add_case(struct test_run *t, const char *file, unsigned line, const char *text,
		    const char *failure)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		struct test_case *v = realloc(t->v, ncap * sizeof(*v));
		if (!v)
			return -1;
		t->v = v;
		t->cap = ncap;
	}
	struct test_case *c = &t->v[t->n++];
	c->file = strdup(file);
	c->line = line;
	c->text = strdup(text);
	c->failure = failure ? strdup(failure) : NULL;
	if (failure)
		t->failed++;
	return c->file && c->text && (!failure || c->failure) ? 0 : -1;
}

static bool take_word(const char **s, const char *kw)
{
	size_t n = strlen(kw);
	while (**s == ' ' || **s == '\t')
		(*s)++;
	if (strncmp(*s, kw, n) || ((*s)[n] != ' ' && (*s)[n] != '\t' && (*s)[n]))
		return false;
	*s += n;
	while (**s == ' ' || **s == '\t')
		(*s)++;
	return true;
}

/* `=> masquerade`, `=> snat ADDR[:PORT]`, `=> dnat ADDR[:PORT]`, `=> none`:
 * does the result's NAT say that? */
static bool nat_matches(const struct policy_eval_packet *pkt, const struct policy_eval_result *r,
			const char *want, char *got, size_t got_size)
{
	cli_explain_nat(pkt, r, got, got_size);
	if (!*got)
		snprintf(got, got_size, "none");
	const char *s = want;
	if (take_word(&s, "none"))
		return !r->snat.nat && !r->dnat.nat;
	if (take_word(&s, "masquerade"))
		return r->snat.masquerade;
	bool snat = take_word(&s, "snat");
	if (!snat && !take_word(&s, "dnat"))
		return false;
	const struct policy_eval_xlat *x = snat ? &r->snat : &r->dnat;
	if (!x->nat || x->masquerade)
		return false;
	char addr[INET6_ADDRSTRLEN + 8];
	snprintf(addr, sizeof(addr), "%s", s);
	char *end = addr + strlen(addr);
	while (end > addr && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	unsigned long port = 0;
	char *a = addr;
	if (*a == '[') {
		char *close = strchr(a, ']');
		if (!close)
			return false;
		*close = '\0';
		a++;
		if (close[1] == ':')
			port = strtoul(close + 2, NULL, 10);
	} else {
		char *colon = strchr(a, ':');
		if (colon && !strchr(colon + 1, ':')) {
			*colon = '\0';
			port = strtoul(colon + 1, NULL, 10);
		}
	}
	uint8_t bytes[16] = { 0 };
	if (inet_pton(pkt->family, a, bytes) != 1)
		return false;
	size_t len = pkt->family == AF_INET ? 4 : 16;
	uint16_t got_port = x->port ? x->port : snat ? pkt->sport : pkt->dport;
	return !memcmp(bytes, x->addr, len) && (!port || port == got_port);
}

static enum policy_eval_verdict verdict_of(const char *w, bool *ok)
{
	static const char *names[] = { "pass", "block", "reject", "inspect" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(w, names[i])) {
			*ok = true;
			return (enum policy_eval_verdict)i;
		}
	*ok = false;
	return POLICY_EVAL_PASS;
}

/* One `expect` line; returns -1 on out of memory only. */
static int run_line(struct test_run *t, const char *file, unsigned line, char *text)
{
	char failure[768];
	const char *s = text;
	if (!take_word(&s, "expect")) {
		snprintf(failure, sizeof(failure),
			 "%s:%u:1: error: expected 'expect', found '%.20s'", file, line, s);
		return add_case(t, file, line, text, failure);
	}
	char want[16] = "";
	size_t wn = strcspn(s, " \t");
	snprintf(want, sizeof(want), "%.*s", (int)(wn < sizeof(want) - 1 ? wn : sizeof(want) - 1),
		 s);
	bool nat = !strcmp(want, "nat"), ok = nat;
	enum policy_eval_verdict v = nat ? POLICY_EVAL_PASS : verdict_of(want, &ok);
	if (!ok) {
		snprintf(
		    failure, sizeof(failure),
		    "%s:%u:%zu: error: expected pass, block, reject, inspect or nat, found '%s'",
		    file, line, (size_t)(s - text) + 1, want);
		return add_case(t, file, line, text, failure);
	}
	s += wn;
	enum policy_eval_ct ct = POLICY_EVAL_CT_NEW;
	size_t tenant = POLICY_NONE;
	for (;;) {
		if (take_word(&s, "established")) {
			ct = POLICY_EVAL_CT_ESTABLISHED;
		} else if (take_word(&s, "tenant")) {
			size_t n = strcspn(s, " \t");
			char name[128];
			snprintf(name, sizeof(name), "%.*s",
				 (int)(n < sizeof(name) - 1 ? n : sizeof(name) - 1), s);
			if ((tenant = cli_explain_tenant(t->p, name)) == POLICY_NONE) {
				snprintf(failure, sizeof(failure),
					 "%s:%u:%zu: error: the policy has no tenant '%s'", file,
					 line, (size_t)(s - text) + 1, name);
				return add_case(t, file, line, text, failure);
			}
			s += n;
		} else {
			break;
		}
	}
	char packet[512];
	const char *arrow = nat ? strstr(s, "=>") : NULL;
	size_t plen = arrow ? (size_t)(arrow - s) : strlen(s);
	snprintf(packet, sizeof(packet), "%.*s",
		 (int)(plen < sizeof(packet) - 1 ? plen : sizeof(packet) - 1), s);
	if (nat && !arrow) {
		snprintf(failure, sizeof(failure),
			 "%s:%u:%zu: error: expected '=> masquerade|snat ADDR|dnat ADDR|none'",
			 file, line, strlen(text) + 1);
		return add_case(t, file, line, text, failure);
	}
	struct policy_eval_packet pkt;
	char err[256];
	size_t col = 0;
	if (policy_eval_parse_packet(t->p, packet, tenant, &pkt, err, sizeof(err), &col)) {
		snprintf(failure, sizeof(failure), "%s:%u:%zu: error: %s", file, line,
			 (size_t)(s - text) + col, err);
		return add_case(t, file, line, text, failure);
	}
	pkt.ct = ct;
	if (tenant != POLICY_NONE)
		pkt.ct_tenant = tenant;
	struct policy_eval_result r;
	if (policy_eval(t->p, &pkt, NULL, &r)) {
		policy_eval_result_free(&r);
		return -1;
	}
	char by[256], got[256];
	cli_explain_decider(t->d, &r, by, sizeof(by));
	bool passes = r.verdict == POLICY_EVAL_PASS || r.verdict == POLICY_EVAL_INSPECT;
	int rc;
	if (nat && !passes) {
		snprintf(failure, sizeof(failure), "%s:%u: expected nat, got %s by %s", file, line,
			 policy_eval_verdict_name(r.verdict), by);
		rc = add_case(t, file, line, text, failure);
	} else if (nat && !nat_matches(&pkt, &r, arrow + 2, got, sizeof(got))) {
		snprintf(failure, sizeof(failure), "%s:%u: expected nat%s, got %s", file, line,
			 arrow + 2, got);
		rc = add_case(t, file, line, text, failure);
	} else if (!nat && r.verdict != v) {
		snprintf(failure, sizeof(failure), "%s:%u: expected %s, got %s by %s", file, line,
			 want, policy_eval_verdict_name(r.verdict), by);
		rc = add_case(t, file, line, text, failure);
	} else {
		rc = add_case(t, file, line, text, NULL);
	}
	policy_eval_result_free(&r);
	return rc;
}

static int run_file(struct test_run *t, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "hvgate test: %s: %s\n", path, strerror(errno));
		return -2;
	}
	char buf[1024];
	unsigned line = 0;
	int rc = 0;
	while (!rc && fgets(buf, sizeof(buf), f)) {
		line++;
		buf[strcspn(buf, "\r\n")] = '\0';
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *s = buf;
		while (*s == ' ' || *s == '\t')
			s++;
		char *end = s + strlen(s);
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*s)
			rc = run_line(t, path, line, s);
	}
	fclose(f);
	return rc;
}

static void xml_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*s, out);
		}
	}
}

static void report(const struct test_run *t, enum test_format fmt)
{
	if (fmt == FORMAT_TAP) {
		printf("TAP version 13\n1..%zu\n", t->n);
		for (size_t i = 0; i < t->n; i++) {
			const struct test_case *c = &t->v[i];
			printf("%s %zu - %s:%u: %s\n", c->failure ? "not ok" : "ok", i + 1, c->file,
			       c->line, c->text);
			if (c->failure)
				printf("  ---\n  message: \"%s\"\n  ...\n", c->failure);
		}
		return;
	}
	if (fmt == FORMAT_JUNIT) {
		printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<testsuite name=\"hvgate test\" tests=\"%zu\" failures=\"%zu\">\n",
		       t->n, t->failed);
		for (size_t i = 0; i < t->n; i++) {
			const struct test_case *c = &t->v[i];
			printf("  <testcase classname=\"");
			xml_text(stdout, c->file);
			printf("\" name=\"%u: ", c->line);
			xml_text(stdout, c->text);
			if (!c->failure) {
				printf("\"/>\n");
				continue;
			}
			printf("\">\n    <failure message=\"");
			xml_text(stdout, c->failure);
			printf("\"/>\n  </testcase>\n");
		}
		printf("</testsuite>\n");
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].failure)
			printf("%s\n", t->v[i].failure);
	printf("%zu expectations: %zu passed, %zu failed\n", t->n, t->n - t->failed, t->failed);
}

static void test_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: hvgate test POLICY_DIR [FILE.hvt ...] [--tap|--junit]\n\n"
	    "Loads the policy of POLICY_DIR (its *.hvp, as check does) and checks every\n"
	    "line of its expectation files (POLICY_DIR/tests/*.hvt, or the files given)\n"
	    "with the offline evaluator:\n"
	    "  expect pass|block|reject|inspect [established] [tenant T] PACKET\n"
	    "  expect nat [established] [tenant T] PACKET => masquerade|snat ADDR[:PORT]|dnat ADDR[:PORT]|none\n"
	    "PACKET as for `hvgate explain`. Prints each failure as\n"
	    "  FILE:LINE: expected pass, got block by policy.hvp:41 (rule text)\n"
	    "and a summary; --tap and --junit print TAP or JUnit XML instead. Exits 0 when\n"
	    "every expectation holds, 1 when one does not or the policy is invalid, 2 on\n"
	    "usage or I/O errors (no expectation file).\n");
}

int cli_test(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		test_usage(stdout);
		return CLI_EXIT_OK;
	}
	enum test_format fmt = FORMAT_TEXT;
	const char *dir = NULL;
	char **files = calloc((size_t)argc, sizeof(*files));
	size_t n_files = 0;
	if (!files)
		return CLI_EXIT_USAGE;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tap")) {
			fmt = FORMAT_TAP;
		} else if (!strcmp(argv[i], "--junit")) {
			fmt = FORMAT_JUNIT;
		} else if (argv[i][0] == '-') {
			free(files);
			test_usage(stderr);
			return CLI_EXIT_USAGE;
		} else if (!dir) {
			dir = argv[i];
		} else {
			files[n_files++] = argv[i];
		}
	}
	if (!dir) {
		free(files);
		test_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	glob_t g = { 0 };
	if (!n_files) {
		char pattern[4096];
		snprintf(pattern, sizeof(pattern), "%s/tests/*.hvt", dir);
		if (glob(pattern, 0, NULL, &g) || !g.gl_pathc) {
			fprintf(stderr, "hvgate test: no expectation file %s\n", pattern);
			globfree(&g);
			free(files);
			return CLI_EXIT_USAGE;
		}
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_compiled c;
	int rc = cli_explain_load("test", dir, &c, &d);
	if (rc) {
		globfree(&g);
		free(files);
		policy_diags_free(&d);
		return rc == -1 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
	}
	struct test_run t = { .p = c.policy, .d = &d };
	size_t n = n_files ? n_files : g.gl_pathc;
	for (size_t i = 0; !rc && i < n; i++)
		rc = run_file(&t, n_files ? files[i] : g.gl_pathv[i]);
	if (!rc)
		report(&t, fmt);
	else if (rc == -1)
		fprintf(stderr, "hvgate test: out of memory\n");
	int exit_code = rc ? CLI_EXIT_USAGE : t.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	for (size_t i = 0; i < t.n; i++) {
		free(t.v[i].file);
		free(t.v[i].text);
		free(t.v[i].failure);
	}
	free(t.v);
	globfree(&g);
	free(files);
	policy_compiled_free(&c);
	policy_diags_free(&d);
	return exit_code;
}
