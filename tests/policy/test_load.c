/* Loading: the shipped examples, directory sources, includes through a
 * custom file system, I/O errors, and the time a 10,000-rule policy takes. */
#include <check.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tests/lib/testdir.h"
#include "tests/lib/checkmain.h"

/* The benchmark size of the task: 10,000 rules with 100,000 addresses. */
#define BENCH_RULES          10000
#define BENCH_ADDRS_PER_RULE 10

static const char *srcdir(void)
{
	const char *s = getenv("HVGATE_SRCDIR");
	return s ? s : ".";
}

START_TEST(test_examples_pass_check)
{
	char pattern[512];
	snprintf(pattern, sizeof(pattern), "%s/conf/policies/examples/*.hvp", srcdir());
	glob_t g;
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	ck_assert_uint_ge(g.gl_pathc, 4);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct policy_diags d;
		policy_diags_init(&d);
		struct policy *p = policy_load(g.gl_pathv[i], &d);
		if (!p)
			policy_diags_print(&d, stderr);
		ck_assert_msg(p != NULL, "%s does not pass check", g.gl_pathv[i]);
		ck_assert_uint_ge(p->n_rules, 1);
		ck_assert_uint_eq(d.n_errors, 0);
		policy_free(p);
		policy_diags_free(&d);
	}
	globfree(&g);
}
END_TEST

START_TEST(test_demo_policy)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/conf/policies/demo.hvp", srcdir());
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load(path, &d);
	ck_assert_ptr_nonnull(p);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_directory_in_name_order)
{
	testdir_write("20-rules.hvp", "pass from lan to dmz service ssh\n");
	testdir_write("10-zones.hvp",
		      "zone lan { interface \"eth1\" }\nzone dmz { interface \"eth2\" }\n");
	testdir_write("30-more.hvp", "block from lan to dmz\n");
	testdir_write("README", "not a policy\n");
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load(testdir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_rules, 2);
	ck_assert_int_eq(p->rules[0].action, POLICY_PASS);
	ck_assert_int_eq(p->rules[1].action, POLICY_BLOCK);
	ck_assert_ptr_nonnull(strstr(p->rules[0].id, "/20-rules.hvp:1:"));
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_text_with_base_dir)
{
	testdir_write("zones.hvp", "zone lan { interface \"eth1\" }\n");
	const char *text = "include \"zones.hvp\"\npass from lan\n";
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("mem.hvp", text, strlen(text), testdir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_zones, 1);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_missing_file)
{
	struct policy_diags d;
	policy_diags_init(&d);
	char path[256];
	snprintf(path, sizeof(path), "%s/nope.hvp", testdir);
	ck_assert_ptr_null(policy_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, strerror(ENOENT)));
	policy_diags_free(&d);
}
END_TEST

/* An in-memory file system: the daemon reads policies from git this way. */
struct mem_file {
	const char *path, *text;
};

static const struct mem_file mem_files[] = {
	{ "repo/main.hvp", "include \"obj/*.hvp\"\npass from lan to dmz service web\n" },
	{ "repo/obj/a.hvp", "zone lan { interface \"eth1\" }\nservice web = tcp port 80\n" },
	{ "repo/obj/b.hvp", "zone dmz { interface \"eth2\" }\n" },
};
#define N_MEM_FILES (sizeof(mem_files) / sizeof(mem_files[0]))

static int mem_read(void *ctx, const char *path, char **text, size_t *len)
{
	(void)ctx;
	for (size_t i = 0; i < N_MEM_FILES; i++) {
		if (strcmp(mem_files[i].path, path))
			continue;
		*text = strdup(mem_files[i].text);
		*len = strlen(mem_files[i].text);
		return *text ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

static int mem_glob(void *ctx, const char *pattern, char ***paths)
{
	(void)ctx;
	/* enough for the pattern "DIR/obj/ *.hvp": a prefix, a star, ".hvp" */
	const char *star = strchr(pattern, '*');
	size_t pre = (size_t)(star - pattern);
	char **v = calloc(N_MEM_FILES + 1, sizeof(*v));
	int n = 0;
	for (size_t i = 0; i < N_MEM_FILES; i++) {
		const char *p = mem_files[i].path;
		if (!strncmp(p, pattern, pre) && !strchr(p + pre, '/') &&
		    !strcmp(p + strlen(p) - 4, ".hvp"))
			v[n++] = strdup(p);
	}
	*paths = v;
	return n;
}

static int mem_is_dir(void *ctx, const char *path)
{
	(void)ctx;
	return !strcmp(path, "repo") ? 1 : 0;
}

START_TEST(test_custom_fs)
{
	const struct policy_fs fs = { NULL, mem_read, mem_glob, mem_is_dir };
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_fs("repo/main.hvp", &fs, &d);
	if (!p)
		policy_diags_print(&d, stderr);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_zones, 2);
	ck_assert_str_eq(p->zones[0].name, "lan");
	ck_assert_uint_eq(p->rules[0].services[0].dports[0].lo, 80);
	ck_assert_ptr_nonnull(strstr(p->rules[0].id, "repo/main.hvp:2:"));
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_custom_fs_directory)
{
	/* a directory source through the same callbacks: repo/ *.hvp is main.hvp */
	const struct policy_fs fs = { NULL, mem_read, mem_glob, mem_is_dir };
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_fs("repo", &fs, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_zones, 2);
	ck_assert_uint_eq(p->n_rules, 1);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

/* A 10,000-rule policy with 100,000 addresses, like the benchmark: the time
 * is printed, not asserted (machines differ). */
START_TEST(test_large_policy)
{
	size_t cap = (size_t)BENCH_RULES * 256, n = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	srand(42);
	for (int z = 0; z < 20; z++)
		n +=
		    (size_t)snprintf(text + n, cap - n, "zone z%d { interface \"eth%d\" }\n", z, z);
	for (int r = 0; r < BENCH_RULES; r++) {
		n += (size_t)snprintf(text + n, cap - n, "%s from { z%d", r % 3 ? "pass" : "block",
				      rand() % 20);
		for (int a = 0; a < BENCH_ADDRS_PER_RULE / 2; a++)
			n += (size_t)snprintf(text + n, cap - n, ", 10.%d.%d.0/24", rand() % 256,
					      rand() % 256);
		n += (size_t)snprintf(text + n, cap - n, " } to { z%d", rand() % 20);
		for (int a = 0; a < BENCH_ADDRS_PER_RULE / 2; a++)
			n += (size_t)snprintf(text + n, cap - n, ", 172.%d.%d.%d", 16 + rand() % 16,
					      rand() % 256, rand() % 256);
		n += (size_t)snprintf(text + n, cap - n, " } service tcp port %d\n",
				      1 + rand() % 65000);
		ck_assert_uint_lt(n, cap - 256);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("bench.hvp", text, n, NULL, &d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!p)
		policy_diags_print(&d, stderr);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_rules, BENCH_RULES);
	size_t addrs = 0;
	for (size_t i = 0; i < p->n_rules; i++)
		addrs += p->rules[i].from.addrs.n + p->rules[i].to.addrs.n;
	ck_assert_uint_eq(addrs, (size_t)BENCH_RULES * BENCH_ADDRS_PER_RULE);
	printf("large policy: %d rules, %zu addresses, %zu bytes loaded and checked in %.3f s\n",
	       BENCH_RULES, addrs, n,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	policy_free(p);
	policy_diags_free(&d);
	free(text);
}
END_TEST

/* The shape of the benchmark generator (tests/bench/gen_policy.py): 100
 * address lists of 1,000 addresses each, one block rule per list, then pass
 * rules to single hosts and ports up to 10,000 rules. Time printed. */
START_TEST(test_benchmark_shape)
{
	const int lists = 100, per_list = 1000;
	size_t cap = (size_t)lists * per_list * 16 + (size_t)BENCH_RULES * 64 + 1024, n = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	n += (size_t)snprintf(text + n, cap - n,
			      "zone lan { interface \"lan0\" }\n"
			      "zone dmz { interface \"dmz0\" }\nzone uplink { interface \"up*\" }\n"
			      "default block\n");
	for (int k = 0; k < lists; k++) {
		n += (size_t)snprintf(text + n, cap - n, "define list_%d = {", k);
		for (int i = 0; i < per_list; i++) {
			int a = 2 * (k * per_list + i); /* never adjacent: no merging */
			n += (size_t)snprintf(text + n, cap - n, "%s 10.%d.%d.%d", i ? "," : "",
					      a >> 16, (a >> 8) & 255, a & 255);
		}
		n += (size_t)snprintf(text + n, cap - n, " }\n");
	}
	for (int k = 0; k < lists; k++)
		n += (size_t)snprintf(text + n, cap - n, "block from $list_%d to dmz\n", k);
	for (int i = 0; i < BENCH_RULES - lists; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "pass from lan to 172.16.%d.%d service tcp port %d\n",
				      (i + 1) >> 8, (i + 1) & 255, 1024 + i % 60000);
	ck_assert_uint_lt(n, cap);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("gen.hvp", text, n, NULL, &d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!p)
		policy_diags_print(&d, stderr);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->n_rules, BENCH_RULES);
	ck_assert_uint_eq(d.n, 0);
	printf(
	    "benchmark-shaped policy: %d rules, %d listed addresses, loaded and checked in %.3f s\n",
	    BENCH_RULES, lists * per_list,
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	policy_free(p);
	policy_diags_free(&d);
	free(text);
}
END_TEST

/* --- limits: refused with one clear error, quickly, never a crash ------ */

/* Chains and nestings this long overflowed the stack before the limits. */
#define HUGE_COUNT 100000
/* "within a few seconds" (it takes well under one, under ASan too). The
 * time is the process's CPU time, so that a loaded machine does not fail
 * the test. */
#define LIMIT_SECONDS 5.0

static void cpu_now(struct timespec *t)
{
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, t);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	cpu_now(&t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A growing text buffer for generated policies. */
struct gen {
	char *text;
	size_t n, cap;
};

static void gen_add(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gen_add(struct gen *g, const char *fmt, ...)
{
	if (g->cap - g->n < 128) {
		g->cap = g->cap ? g->cap * 2 : 1 << 20;
		g->text = realloc(g->text, g->cap);
		ck_assert_ptr_nonnull(g->text);
	}
	va_list ap;
	va_start(ap, fmt);
	g->n += (size_t)vsnprintf(g->text + g->n, g->cap - g->n, fmt, ap);
	va_end(ap);
}

/* Loads `g` and returns the first error; `n_errors` how many there were. */
static char *load_first_error(struct gen *g, size_t *n_errors, double *secs)
{
	struct timespec t0;
	cpu_now(&t0);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("gen.hvp", g->text, g->n, NULL, &d);
	*secs = seconds_since(&t0);
	policy_free(p);
	*n_errors = d.n_errors;
	char *first = NULL;
	for (size_t i = 0; i < d.n && !first; i++)
		if (d.v[i].severity == POLICY_ERROR)
			first = strdup(d.v[i].message);
	policy_diags_free(&d);
	free(g->text);
	memset(g, 0, sizeof(*g));
	return first;
}

/* define a1 = ...; define a2 = $a1; ...; pass from $aN */
static char *define_chain(size_t n, size_t *n_errors, double *secs)
{
	struct gen g = { 0 };
	gen_add(&g, "define a1 = 10.0.0.1\n");
	for (size_t i = 2; i <= n; i++)
		gen_add(&g, "define a%zu = $a%zu\n", i, i - 1);
	gen_add(&g, "pass from $a%zu\n", n);
	return load_first_error(&g, n_errors, secs);
}

START_TEST(test_define_chain_limit)
{
	size_t errors;
	double secs;
	char *msg = define_chain(64, &errors, &secs);
	ck_assert_ptr_null(msg); /* 64 levels are fine */
	msg = define_chain(65, &errors, &secs);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "defines refer to each other more than 64 deep");
	free(msg);
	msg = define_chain(HUGE_COUNT, &errors, &secs);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "defines refer to each other more than 64 deep");
	ck_assert_uint_eq(errors, 1);
	ck_assert_msg(secs < LIMIT_SECONDS, "took %.1f s", secs);
	free(msg);
}
END_TEST

START_TEST(test_service_chain_limit)
{
	struct gen g = { 0 };
	for (size_t i = 1; i < HUGE_COUNT; i++)
		gen_add(&g, "service s%zu = s%zu\n", i, i + 1);
	gen_add(&g, "service s%d = tcp port 80\n", HUGE_COUNT);
	size_t errors;
	double secs;
	char *msg = load_first_error(&g, &errors, &secs);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "services refer to each other more than 64 deep");
	ck_assert_uint_eq(errors, 1);
	ck_assert_msg(secs < LIMIT_SECONDS, "took %.1f s", secs);
	free(msg);
}
END_TEST

START_TEST(test_nesting_limit)
{
	struct gen g = { 0 };
	for (size_t i = 0; i < HUGE_COUNT; i++)
		gen_add(&g, "tenant t%zu {\n", i);
	struct timespec t0;
	cpu_now(&t0);
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("gen.hvp", g.text, g.n, NULL, &d));
	double secs = seconds_since(&t0);
	ck_assert_msg(secs < LIMIT_SECONDS, "took %.1f s", secs);
	/* the tenants inside tenants up to the limit, then the limit once */
	const struct policy_diag *last = &d.v[d.n - 1];
	ck_assert_str_eq(last->message, "blocks nested deeper than 32 levels");
	ck_assert_uint_eq(last->loc.line, 33);
	ck_assert_uint_eq(last->loc.col, 1);
	ck_assert_uint_le(d.n_errors, 40);
	policy_diags_free(&d);
	free(g.text);
}
END_TEST

/* A stream that counts the write()s an unbuffered stderr would make. */
struct write_count {
	size_t writes, bytes;
};

static ssize_t count_write(void *cookie, const char *buf, size_t size)
{
	(void)buf;
	struct write_count *w = cookie;
	w->writes++;
	w->bytes += size;
	return (ssize_t)size;
}

/* A 10 MB word: refused at once, and its diagnostic is a short excerpt
 * written in one go (it was one write() per byte of the caret line). */
START_TEST(test_huge_token)
{
	const size_t huge = 10u << 20;
	char *text = malloc(huge + 8);
	ck_assert_ptr_nonnull(text);
	memcpy(text, "pass ", 5);
	memset(text + 5, 'x', huge);
	text[5 + huge] = '\n';
	struct timespec t0;
	cpu_now(&t0);
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("big.hvp", text, huge + 6, NULL, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_str_eq(d.v[0].message, "word longer than 16384 bytes");
	ck_assert_uint_eq(d.v[0].loc.col, 6);
	struct write_count w = { 0 };
	cookie_io_functions_t io = { .write = count_write };
	FILE *out = fopencookie(&w, "w", io);
	ck_assert_ptr_nonnull(out);
	setvbuf(out, NULL, _IONBF, 0);
	policy_diags_print(&d, out);
	fclose(out);
	double secs = seconds_since(&t0);
	ck_assert_msg(secs < 1.0, "took %.2f s", secs);
	ck_assert_uint_le(w.writes, d.n);
	ck_assert_uint_lt(w.bytes, 1024);
	policy_diags_free(&d);
	free(text);
}
END_TEST

/* The token limit is exact: 16384 bytes pass the lexer, one more does not. */
START_TEST(test_token_limit_exact)
{
	char *text = malloc(16384 + 64);
	ck_assert_ptr_nonnull(text);
	for (size_t extra = 0; extra < 2; extra++) {
		size_t n = (size_t)sprintf(text, "pass log \"");
		memset(text + n, 'x', 16384 + extra);
		n += 16384 + extra;
		text[n++] = '"';
		struct policy_diags d;
		policy_diags_init(&d);
		ck_assert_ptr_null(policy_load_text("s.hvp", text, n, NULL, &d));
		ck_assert_str_eq(d.v[0].message, extra ? "string longer than 16384 bytes"
						       : "log prefix is longer than 127 bytes");
		policy_diags_free(&d);
	}
	free(text);
}
END_TEST

/* An include of a FIFO (or a FIFO named as the policy) is refused at once:
 * it used to block in open() until some writer came along. */
START_TEST(test_fifo_refused)
{
	char fifo[256], main_path[256];
	snprintf(fifo, sizeof(fifo), "%s/pipe.hvp", testdir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	testdir_write("main.hvp", "include \"pipe.hvp\"\n");
	snprintf(main_path, sizeof(main_path), "%s/main.hvp", testdir);
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load(main_path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	char want[512];
	snprintf(want, sizeof(want), "cannot read included file '%s': not a regular file", fifo);
	ck_assert_str_eq(d.v[0].message, want);
	ck_assert_uint_eq(d.v[0].loc.line, 1);
	ck_assert_uint_eq(d.v[0].loc.col, 9);
	policy_diags_free(&d);

	testdir_write("glob.hvp", "include \"p*.hvp\"\n");
	snprintf(main_path, sizeof(main_path), "%s/glob.hvp", testdir);
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load(main_path, &d));
	ck_assert_str_eq(d.v[0].message, want);
	policy_diags_free(&d);

	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load(fifo, &d));
	snprintf(want, sizeof(want), "cannot read '%s': not a regular file", fifo);
	ck_assert_str_eq(d.v[0].message, want);
	policy_diags_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("examples");
	tcase_add_test(tc, test_examples_pass_check);
	tcase_add_test(tc, test_demo_policy);
	tcase_add_test(tc, test_custom_fs);
	tcase_add_test(tc, test_custom_fs_directory);
	tcase_add_test(tc, test_large_policy);
	tcase_add_test(tc, test_benchmark_shape);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_define_chain_limit);
	tcase_add_test(limits, test_service_chain_limit);
	tcase_add_test(limits, test_nesting_limit);
	tcase_add_test(limits, test_huge_token);
	tcase_add_test(limits, test_token_limit_exact);
	tcase_set_timeout(limits, 60);
	suite_add_tcase(s, limits);
	TCase *files = tcase_create("files");
	tcase_add_checked_fixture(files, testdir_setup, testdir_teardown);
	tcase_add_test(files, test_directory_in_name_order);
	tcase_add_test(files, test_text_with_base_dir);
	tcase_add_test(files, test_missing_file);
	tcase_add_test(files, test_fifo_refused);
	tcase_set_timeout(files, 10);
	suite_add_tcase(s, files);
	return check_main(s);
}
