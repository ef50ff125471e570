/* policy_compile() (policy/pipeline.h), the function `hvgate check` and
 * `hvgate compile` share: unit tests here, and the driver of the
 * check-versus-kernel property test.
 *
 * `test_pipeline --check-kernel NETNS SECONDS DIR` runs, for each .hvp file of DIR
 * in name order (tests/policy/gen_corpus.py writes them), the pipeline of
 * `hvgate check`; for a policy it accepts, it writes the nft text to
 * DIR/NAME.nft and lets the kernel of namespace NETNS validate the netlink
 * batch that `hvgate apply --check` sends (the transaction is aborted). One
 * line per policy:
 *   NAME accepted                 check and the kernel accept it
 *   NAME refused                  check refused it (first error follows)
 *   NAME DISAGREE kernel: ...     check accepted it, the kernel refused it
 * and a last line "compared N accepted A refused R disagreements D". It stops
 * early (at a policy boundary) after SECONDS of wall time. Exit status 0
 * unless something disagreed or failed to run.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nat/nat.h"
#include "appliance/kernel/nftio.h"
#include "policy/pipeline.h"
#include "tests/lib/checkmain.h"

#define TEST_FILE "p.hvp"

static int compile_text(const char *text, struct policy_compiled *c, struct policy_diags *d)
{
	policy_diags_init(d);
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	struct policy *p = policy_load_text(TEST_FILE, text, strlen(text), NULL, d);
	return policy_compile_policy(p, &o, c, d);
}

/* A valid policy comes out with its table, its nft text and its batch. */
START_TEST(test_compile_gives_everything)
{
	struct policy_diags d;
	struct policy_compiled c;
	ck_assert_int_eq(compile_text("zone lan { interface \"eth1\" }\n"
				      "zone up { interface \"eth0\" }\n"
				      "pass from lan to up service https\n",
				      &c, &d),
			 0);
	ck_assert_ptr_nonnull(c.policy);
	ck_assert_ptr_nonnull(c.table);
	ck_assert_ptr_nonnull(c.nft_text);
	ck_assert_ptr_nonnull(strstr(c.nft_text, "table inet hvgate"));
	ck_assert_ptr_nonnull(strstr(c.nft_text, "th dport 443"));
	ck_assert_uint_eq(strlen(c.nft_text), c.nft_len);
	ck_assert_uint_gt(c.n_messages, 3);
	policy_compiled_free(&c);
	policy_diags_free(&d);
}
END_TEST

/* An error of lowering (not of the checker) fails the pipeline, and leaves
 * nothing behind. */
START_TEST(test_lowering_error_fails)
{
	struct policy_diags d;
	struct policy_compiled c;
	ck_assert_int_eq(compile_text("zone a { interface \"tap-*\" }\n"
				      "zone b { interface \"tap-7\" }\n"
				      "pass from a to b\n",
				      &c, &d),
			 -1);
	ck_assert_ptr_null(c.policy);
	ck_assert_ptr_null(c.table);
	ck_assert_ptr_null(c.nft_text);
	ck_assert_uint_eq(d.n_errors, 1);
	policy_compiled_free(&c);
	policy_diags_free(&d);
}
END_TEST

/* ---- the property-test driver ---- */

static double wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hvp_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return n > 4 && !strcmp(e->d_name + n - 4, ".hvp");
}

static const char *first_error(const struct policy_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].severity == POLICY_ERROR)
			return d->v[i].message;
	return "(no message)";
}

static int write_text(const char *path, const struct policy_compiled *c)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	size_t n = fwrite(c->nft_text, 1, c->nft_len, f);
	return fclose(f) || n != c->nft_len ? -1 : 0;
}

struct tally {
	unsigned compared, accepted, refused, disagree, broken;
};

static void one_policy(const char *netns, const char *dir, const char *name, struct tally *t)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	struct policy_compiled c;
	t->compared++;
	if (policy_compile(path, &o, &c, &d)) {
		t->refused++;
		printf("%s refused %s\n", name, first_error(&d));
		policy_diags_free(&d);
		return;
	}
	snprintf(path + strlen(path) - 4, 5, ".nft");
	if (write_text(path, &c)) {
		t->broken++;
		printf("%s BROKEN cannot write %s\n", name, path);
	}
	struct nftio_apply_opts ao = { .netns = netns, .check_only = true };
	struct nftio_apply_result r;
	struct policy_diags kd;
	policy_diags_init(&kd);
	int err = nftio_apply(c.table, &ao, &r, &kd);
	if (err) {
		t->disagree++;
		printf("%s DISAGREE kernel: %s (%d)\n", name, first_error(&kd), err);
	} else {
		t->accepted++;
		printf("%s accepted\n", name);
	}
	policy_diags_free(&kd);
	policy_compiled_free(&c);
	policy_diags_free(&d);
}

static int check_kernel(const char *netns, double seconds, const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, hvp_filter, alphasort);
	if (n < 0) {
		perror(dir);
		return 2;
	}
	/* a line per policy as it is done: a crash shows which one */
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct tally t = { 0 };
	double end = wall_seconds() + seconds;
	for (int i = 0; i < n; i++) {
		if (wall_seconds() < end)
			one_policy(netns, dir, names[i]->d_name, &t);
		free(names[i]);
	}
	free(names);
	printf("compared %u accepted %u refused %u disagreements %u\n", t.compared, t.accepted,
	       t.refused, t.disagree);
	return t.disagree || t.broken ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--check-kernel"))
		return check_kernel(argv[2], atof(argv[3]), argv[4]);
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("compile");
	tcase_add_test(tc, test_compile_gives_everything);
	tcase_add_test(tc, test_lowering_error_fails);
	suite_add_tcase(s, tc);
	return check_main(s);
}
