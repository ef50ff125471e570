/* Revisions on disk: save, list, prune to HISTORY_KEEP, ids never repeat,
 * bundles read back through policy_fs, the pending revert file. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/history.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hvgate-hist.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(history_init(dir), 0);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void files_of(struct policy_diags *d, const char *a_text)
{
	memset(d, 0, sizeof(*d));
	d->files = calloc(2, sizeof(*d->files));
	d->files[0] = (struct policy_source_file){ strdup("/p/main.hvp"), strdup(a_text), strlen(a_text) };
	d->files[1] = (struct policy_source_file){ strdup("/p/objects/x.hvp"), strdup("define x = { 1.2.3.4 }\n"), 23 };
	d->n_files = d->cap_files = 2;
}

static void files_free(struct policy_diags *d)
{
	for (size_t i = 0; i < d->n_files; i++) {
		free(d->files[i].path);
		free(d->files[i].text);
	}
	free(d->files);
}

static void save(unsigned id, const char *text)
{
	struct history_rev m = { .id = id, .time = 1000 + id, .uid = 42 };
	struct policy_diags d;

	snprintf(m.comment, sizeof(m.comment), "rev %u", id);
	snprintf(m.source, sizeof(m.source), "/p");
	snprintf(m.root, sizeof(m.root), "/p");
	snprintf(m.hash, sizeof(m.hash), "%016x", id);
	files_of(&d, text);
	ck_assert_int_eq(history_save(dir, &m, &d), 0);
	files_free(&d);
}

START_TEST(save_list_get)
{
	struct history_rev *v, one;
	size_t n;

	ck_assert_uint_eq(history_last_id(dir), 0);
	save(1, "zone a { interface \"x\" }\n");
	save(2, "zone b { interface \"y\" }\n");
	ck_assert_int_eq(history_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].id, 1);
	ck_assert_uint_eq(v[1].uid, 42);
	ck_assert_str_eq(v[1].comment, "rev 2");
	free(v);
	ck_assert_int_eq(history_get(dir, 2, &one), 0);
	ck_assert_str_eq(one.hash, "0000000000000002");
	ck_assert_int_eq(history_get(dir, 3, &one), -ENOENT);
	ck_assert_uint_eq(history_last_id(dir), 2);
}
END_TEST

START_TEST(prunes_and_never_reuses)
{
	struct history_rev *v;
	size_t n;

	for (unsigned i = 1; i <= HISTORY_KEEP + 5; i++)
		save(i, "x\n");
	ck_assert_int_eq(history_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, HISTORY_KEEP);
	ck_assert_uint_eq(v[0].id, 6);
	free(v);
	ck_assert_uint_eq(history_last_id(dir), HISTORY_KEEP + 5);
}
END_TEST

START_TEST(bundle_fs)
{
	struct history_bundle *b;
	const struct policy_fs *fs;
	char *text, **paths;
	size_t len;
	int n;

	save(1, "zone a { interface \"x\" }\n\nwith\nnewlines\n");
	ck_assert_int_eq(history_bundle_load(dir, 1, &b), 0);
	fs = history_bundle_fs(b);
	ck_assert_int_eq(fs->read(fs->ctx, "/p/main.hvp", &text, &len), 0);
	ck_assert_str_eq(text, "zone a { interface \"x\" }\n\nwith\nnewlines\n");
	ck_assert_uint_eq(len, strlen(text));
	free(text);
	ck_assert_int_eq(fs->read(fs->ctx, "/p/none.hvp", &text, &len), -ENOENT);
	ck_assert_int_eq(fs->is_dir(fs->ctx, "/p"), 1);
	ck_assert_int_eq(fs->is_dir(fs->ctx, "/p/main.hvp"), 0);
	ck_assert_int_eq(fs->is_dir(fs->ctx, "/q"), -ENOENT);
	n = fs->glob(fs->ctx, "/p/*.hvp", &paths);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(paths[0], "/p/main.hvp");
	free(paths[0]);
	free(paths);
	n = fs->glob(fs->ctx, "/p/objects/*.hvp", &paths);
	ck_assert_int_eq(n, 1);
	free(paths[0]);
	free(paths);
	history_bundle_free(b);
	ck_assert_int_eq(history_bundle_load(dir, 9, &b), -ENOENT);
}
END_TEST

START_TEST(pending)
{
	struct history_pending p = { .committed = 7, .revert_to = 6, .deadline = 1234567890 }, q;

	ck_assert_int_eq(history_pending_load(dir, &q), -ENOENT);
	ck_assert_int_eq(history_pending_save(dir, &p), 0);
	ck_assert_int_eq(history_pending_load(dir, &q), 0);
	ck_assert_uint_eq(q.committed, 7);
	ck_assert_uint_eq(q.revert_to, 6);
	ck_assert_int_eq(q.deadline, 1234567890);
	ck_assert_int_eq(history_pending_clear(dir), 0);
	ck_assert_int_eq(history_pending_load(dir, &q), -ENOENT);
	ck_assert_int_eq(history_pending_clear(dir), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, save_list_get);
	tcase_add_test(tc, prunes_and_never_reuses);
	tcase_add_test(tc, bundle_fs);
	tcase_add_test(tc, pending);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
