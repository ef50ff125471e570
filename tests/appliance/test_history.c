/* Revisions on disk: save, list, prune to HISTORY_KEEP, ids never repeat,
 * bundles read back through policy_fs, the pending revert file. */
#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/history.h"
#include "tests/lib/checkmain.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hvgate-hist.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(history_store_init(dir), 0);
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
	d->files[0] =
	    (struct policy_source_file){ strdup("/p/main.hvp"), strdup(a_text), strlen(a_text) };
	d->files[1] = (struct policy_source_file){ strdup("/p/objects/x.hvp"),
						   strdup("define x = { 1.2.3.4 }\n"), 23 };
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

/* The candidate and the configure lock outlive a restart: read back as
 * written; replaced whole; gone after clear; a corrupt lock is -EINVAL. */
START_TEST(candidate_and_lock)
{
	struct history_rev m = { .time = 7 }, got;
	struct history_bundle *b = NULL;
	struct history_lock l = { .pid = 4242,
				  .uid = 7,
				  .since = 1700000000,
				  .start = 123456789ull },
			    lg;
	struct policy_diags d;
	char path[128], *text;
	size_t len;
	FILE *f;

	ck_assert_int_eq(history_candidate_load(dir, &got, &b), -ENOENT);
	snprintf(m.source, sizeof(m.source), "/p/new.hvp");
	snprintf(m.root, sizeof(m.root), "/p/new.hvp");
	files_of(&d, "pass from lan to dmz\n");
	ck_assert_int_eq(history_candidate_save(dir, &m, &d), 0);
	files_free(&d);
	files_of(&d, "pass from lan to dmz service tcp port 25\n");
	snprintf(m.source, sizeof(m.source), "/p/newer.hvp");
	ck_assert_int_eq(history_candidate_save(dir, &m, &d), 0);
	files_free(&d);
	ck_assert_int_eq(history_candidate_load(dir, &got, &b), 0);
	ck_assert_str_eq(got.source, "/p/newer.hvp");
	ck_assert_int_eq(
	    history_bundle_fs(b)->read(history_bundle_fs(b)->ctx, "/p/main.hvp", &text, &len), 0);
	ck_assert_str_eq(text, "pass from lan to dmz service tcp port 25\n");
	free(text);
	history_bundle_free(b);
	snprintf(path, sizeof(path), "%s/candidate.tmpdir", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_int_eq(history_candidate_clear(dir), 0);
	ck_assert_int_eq(history_candidate_load(dir, &got, &b), -ENOENT);

	ck_assert_int_eq(history_lock_load(dir, &lg), -ENOENT);
	ck_assert_int_eq(history_lock_save(dir, &l), 0);
	ck_assert_int_eq(history_lock_load(dir, &lg), 0);
	ck_assert_int_eq(lg.pid, 4242);
	ck_assert_int_eq(lg.uid, 7);
	ck_assert_int_eq(lg.since, 1700000000);
	ck_assert(lg.start == 123456789ull);
	ck_assert_int_eq(history_lock_clear(dir), 0);
	ck_assert_int_eq(history_lock_load(dir, &lg), -ENOENT);
	snprintf(path, sizeof(path), "%s/lock.json", dir);
	f = fopen(path, "w");
	fputs("{\"pid\":-1,\"uid\":0,\"since\":0,\"start\":0}\n", f);
	fclose(f);
	ck_assert_int_eq(history_lock_load(dir, &lg), -EINVAL);
}
END_TEST

START_TEST(save_list_get)
{
	struct history_rev *v, one;
	size_t n;

	ck_assert_uint_eq(history_last_id(dir), 0);
	save(1, "zone a { interface \"x\" }\n");
	save(2, "zone b { interface \"y\" }\n");
	ck_assert_int_eq(history_store_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].id, 1);
	ck_assert_uint_eq(v[1].uid, 42);
	ck_assert_str_eq(v[1].comment, "rev 2");
	free(v);
	ck_assert_int_eq(history_store_get(dir, 2, &one), 0);
	ck_assert_str_eq(one.hash, "0000000000000002");
	ck_assert_int_eq(history_store_get(dir, 3, &one), -ENOENT);
	ck_assert_uint_eq(history_last_id(dir), 2);
}
END_TEST

START_TEST(prunes_and_never_reuses)
{
	struct history_rev *v;
	size_t n;

	for (unsigned i = 1; i <= HISTORY_KEEP + 5; i++)
		save(i, "x\n");
	ck_assert_int_eq(history_store_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, HISTORY_KEEP);
	ck_assert_uint_eq(v[0].id, 6);
	free(v);
	ck_assert_uint_eq(history_last_id(dir), HISTORY_KEEP + 5);
}
END_TEST

/* Pruning keeps the newest HISTORY_KEEP revisions, and never the revision
 * that STATE/running names (a restart runs it) nor the revert target of an
 * armed `commit confirmed` (the revert compiles it from its bundle), however
 * old they are. */
START_TEST(prune_keeps_running_and_revert_target)
{
	struct history_pending pend = { .committed = 2, .revert_to = 1, .deadline_ms = 1 };
	struct history_rev *v, m;
	size_t n;

	save(1, "x\n");
	save(2, "x\n");
	ck_assert_int_eq(history_running_save(dir, 2), 0); /* `commit confirmed` of 2 over 1 */
	ck_assert_int_eq(history_pending_save(dir, &pend), 0);
	for (unsigned i = 3; i <= HISTORY_KEEP + 10; i++)
		save(i, "x\n");
	ck_assert_int_eq(history_store_get(dir, 1, &m), 0);
	ck_assert_int_eq(history_store_get(dir, 2, &m), 0);
	ck_assert_int_eq(history_store_get(dir, 10, &m), -ENOENT);
	ck_assert_int_eq(history_store_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, HISTORY_KEEP + 2);
	ck_assert_uint_eq(v[0].id, 1);
	ck_assert_uint_eq(v[1].id, 2);
	ck_assert_uint_eq(v[2].id, 11);
	free(v);
	/* once neither is named any more, both go with the next prune */
	ck_assert_int_eq(history_pending_clear(dir), 0);
	ck_assert_int_eq(history_running_save(dir, HISTORY_KEEP + 10), 0);
	save(HISTORY_KEEP + 11, "x\n");
	ck_assert_int_eq(history_store_get(dir, 1, &m), -ENOENT);
	ck_assert_int_eq(history_store_get(dir, 2, &m), -ENOENT);
	ck_assert_int_eq(history_store_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, HISTORY_KEEP);
	free(v);
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
	struct history_pending p = { .committed = 7,
				     .revert_to = 6,
				     .deadline_ms = 1234567890123LL },
			       q;

	ck_assert_int_eq(history_pending_load(dir, &q), -ENOENT);
	ck_assert_int_eq(history_pending_save(dir, &p), 0);
	ck_assert_int_eq(history_pending_load(dir, &q), 0);
	ck_assert_uint_eq(q.committed, 7);
	ck_assert_uint_eq(q.revert_to, 6);
	ck_assert_int_eq(q.deadline_ms, 1234567890123LL);
	ck_assert_int_eq(history_pending_clear(dir), 0);
	ck_assert_int_eq(history_pending_load(dir, &q), -ENOENT);
	ck_assert_int_eq(history_pending_clear(dir), 0);
}
END_TEST

static void write_text(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* A truncated or garbled pending.json is -EINVAL (not "nothing pending",
 * not a revert to revision 0). */
START_TEST(pending_corrupt)
{
	struct history_pending q;
	char moved[256], path[128];

	write_text("pending.json", "{\"committed\":3,\"revert_to\":2,\"dead");
	ck_assert_int_eq(history_pending_load(dir, &q), -EINVAL);
	write_text("pending.json", "{\"committed\":0,\"revert_to\":2,\"deadline_ms\":5}");
	ck_assert_int_eq(history_pending_load(dir, &q), -EINVAL);
	write_text("pending.json", "");
	ck_assert_int_eq(history_pending_load(dir, &q), -EINVAL);
	write_text("pending.json", "{\"committed\":3,\"revert_to\":2}");
	ck_assert_int_eq(history_pending_load(dir, &q), -EINVAL);
	/* an older hvgated wrote whole seconds */
	write_text("pending.json", "{\"committed\":3,\"revert_to\":2,\"deadline\":1700000000}");
	ck_assert_int_eq(history_pending_load(dir, &q), 0);
	ck_assert_int_eq(q.deadline_ms, 1700000000000LL);
	write_text("pending.json", "{\"committed\":3,\"revert_to\":2,\"deadline_ms\":-1}");
	ck_assert_int_eq(history_pending_load(dir, &q), -EINVAL);
	ck_assert_int_eq(history_quarantine(dir, "pending.json", moved, sizeof(moved)), 0);
	ck_assert_int_eq(history_pending_load(dir, &q), -ENOENT);
	ck_assert_int_eq(access(moved, F_OK), 0);
	snprintf(path, sizeof(path), "%s/pending.json.corrupt-", dir);
	ck_assert_int_eq(strncmp(moved, path, strlen(path)), 0);
}
END_TEST

START_TEST(running_file)
{
	unsigned id = 99;

	ck_assert_int_eq(history_running_load(dir, &id), -ENOENT);
	ck_assert_int_eq(history_running_save(dir, 12), 0);
	ck_assert_int_eq(history_running_load(dir, &id), 0);
	ck_assert_uint_eq(id, 12);
	write_text("running", "1");
	ck_assert_int_eq(history_running_load(dir, &id), -EINVAL);
	write_text("running", "x\n");
	ck_assert_int_eq(history_running_load(dir, &id), -EINVAL);
	ck_assert_uint_eq(id, 12);
}
END_TEST

/* A reserved id is on the disk before it is used: a revision that was never
 * stored (the process died, or the store failed) does not give its id away
 * again, and neither does a removed one. */
START_TEST(reserved_ids_never_repeat)
{
	unsigned a, b, c;

	ck_assert_int_eq(history_reserve_id(dir, &a), 0);
	ck_assert_uint_eq(a, 1);
	ck_assert_int_eq(history_reserve_id(dir, &b), 0); /* a was never saved */
	ck_assert_uint_eq(b, 2);
	save(b, "x\n");
	history_remove(dir, b);
	ck_assert_int_eq(history_reserve_id(dir, &c), 0);
	ck_assert_uint_eq(c, 3);
	write_text("last-id", "garbage");
	save(3, "x\n");
	ck_assert_int_eq(history_reserve_id(dir, &c), 0); /* from the revisions present */
	ck_assert_uint_eq(c, 4);
}
END_TEST

/* A commit whose revision cannot be stored leaves nothing behind. */
START_TEST(save_failure_leaves_nothing)
{
	struct history_rev m = { .id = 5 }, *v;
	struct policy_diags d;
	char path[128];
	size_t n;

	snprintf(path, sizeof(path), "%s/revisions/5", dir);
	ck_assert_int_eq(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/revisions/5/meta.json.tmp", dir);
	ck_assert_int_eq(mkdir(path, 0750), 0); /* meta.json cannot be written */
	files_of(&d, "x\n");
	ck_assert_int_ne(history_save(dir, &m, &d), 0);
	files_free(&d);
	ck_assert_int_eq(history_store_list(dir, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	snprintf(path, sizeof(path), "%s/revisions/5/policy.bundle", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* Saves revision id with main.hvp = text, stored like revision `like`
 * (whose main.hvp was like_text). */
static void save_like(unsigned id, const char *text, unsigned like, const char *like_text)
{
	struct history_rev m = { .id = id, .time = 1000 + id };
	struct policy_diags d, l;

	snprintf(m.root, sizeof(m.root), "/p");
	files_of(&d, text);
	files_of(&l, like_text);
	ck_assert_int_eq(history_save_like(dir, &m, &d, like, &l), 0);
	files_free(&d);
	files_free(&l);
}

static void read_back(unsigned id, const char *want)
{
	struct history_bundle *b;
	char *text;
	size_t len;

	ck_assert_int_eq(history_bundle_load(dir, id, &b), 0);
	const struct policy_fs *fs = history_bundle_fs(b);
	ck_assert_int_eq(fs->read(fs->ctx, "/p/main.hvp", &text, &len), 0);
	ck_assert_str_eq(text, want);
	ck_assert_uint_eq(len, strlen(want));
	free(text);
	ck_assert_int_eq(fs->read(fs->ctx, "/p/objects/x.hvp", &text, &len), 0);
	ck_assert_str_eq(text, "define x = { 1.2.3.4 }\n");
	free(text);
	history_bundle_free(b);
}

static bool stored_as(unsigned id, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/revisions/%u/%s", dir, id, name);
	return !access(path, F_OK) && !strcmp(history_bundle_name(dir, id), name);
}

/* A small change is stored as the difference to a whole revision (also
 * when the revision it is like is itself a difference), reads back as it
 * was, keeps its base from the prune, and a large change is stored whole. */
START_TEST(delta_store)
{
	char big[4][4096];
	for (int k = 0; k < 4; k++) {
		memset(big[k], 'a', sizeof(big[k]) - 1);
		big[k][sizeof(big[k]) - 1] = 0;
	}
	memcpy(big[1] + 100, "pass x\n", 7); /* 1: an edit near the head */
	memcpy(big[2] + 100, "pass x\n", 7); /* 2: 1 and one more after it */
	memcpy(big[2] + 200, "pass y\n", 7);
	for (int i = 0; i < 3000; i++) /* 3: most of it rewritten */
		big[3][i] = (char)('b' + i % 20);
	save(1, big[0]);
	ck_assert(stored_as(1, "policy.bundle"));
	save_like(2, big[1], 1, big[0]);
	ck_assert(stored_as(2, "policy.delta"));
	read_back(2, big[1]);
	save_like(3, big[2], 2, big[1]); /* against 1, through 2 */
	ck_assert(stored_as(3, "policy.delta"));
	read_back(3, big[2]);
	save_like(4, big[3], 3, big[2]);
	ck_assert(stored_as(4, "policy.bundle"));
	read_back(4, big[3]);
	/* `like` whose files are not the ones given (the sizes tell): whole */
	save_like(5, big[1], 4, "short\n");
	ck_assert(stored_as(5, "policy.bundle"));
	read_back(5, big[1]);
	/* a delta whose base is gone is corrupt, not silently empty */
	save_like(6, big[2], 5, big[1]);
	ck_assert(stored_as(6, "policy.delta"));
	/* the base (5) stays while 6 is kept, however old it gets */
	ck_assert_int_eq(history_running_save(dir, 6), 0);
	for (unsigned i = 7; i <= HISTORY_KEEP + 10; i++)
		save(i, "x\n");
	struct history_rev m;
	ck_assert_int_eq(history_store_get(dir, 5, &m), 0);
	ck_assert_int_eq(history_store_get(dir, 4, &m), -ENOENT);
	read_back(6, big[2]);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/revisions/5/policy.bundle", dir);
	ck_assert_int_eq(unlink(path), 0);
	struct history_bundle *b;
	ck_assert_int_eq(history_bundle_load(dir, 6, &b), -EINVAL);
}
END_TEST

/* A stored delta that was cut short or edited is refused as corrupt. */
START_TEST(delta_corrupt)
{
	char a[2048], b2[2048], path[PATH_MAX];
	struct history_bundle *b;
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = 0;
	memcpy(b2, a, sizeof(a));
	b2[1000] = 'z';
	save(1, a);
	save_like(2, b2, 1, a);
	ck_assert(stored_as(2, "policy.delta"));
	snprintf(path, sizeof(path), "%s/revisions/2/policy.delta", dir);
	FILE *f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	char text[512];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	const char *bad[] = { "hvgate-delta 1\nbase 1\n",
			      "hvgate-delta 1\nbase 1\npart 2000 2000 2047 1 /p/main.hvp\nz\n",
			      "hvgate-delta 1\nbase 1\npart 1 1 9999 1 /p/main.hvp\nz\n",
			      "hvgate-delta 1\nbase 7\n",
			      "hvgate-delta 1\nbase 1\nfile 99 /p/main.hvp\nz\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		int rc = history_bundle_load(dir, 2, &b);
		if (i == 0) { /* no files at all is a valid (empty) revision */
			ck_assert_int_eq(rc, 0);
			history_bundle_free(b);
			continue;
		}
		ck_assert_msg(rc == -EINVAL, "case %zu: %d", i, rc);
	}
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	read_back(2, b2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");

	tcase_add_checked_fixture(tc, setup, teardown);
	/* every save syncs its files and directories: slow on a busy disk */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, save_list_get);
	tcase_add_test(tc, candidate_and_lock);
	tcase_add_test(tc, prunes_and_never_reuses);
	tcase_add_test(tc, prune_keeps_running_and_revert_target);
	tcase_add_test(tc, bundle_fs);
	tcase_add_test(tc, pending);
	tcase_add_test(tc, pending_corrupt);
	tcase_add_test(tc, running_file);
	tcase_add_test(tc, reserved_ids_never_repeat);
	tcase_add_test(tc, save_failure_leaves_nothing);
	tcase_add_test(tc, delta_store);
	tcase_add_test(tc, delta_corrupt);
	suite_add_tcase(s, tc);
	return check_main(s);
}
