/* Revisions on disk (history.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/history.h"
#include "appliance/json.h"

#define BUNDLE_MAGIC "hvgate-bundle 1\n"
#define DELTA_MAGIC  "hvgate-delta 1\n"
#define DELTA_NAME   "policy.delta"
/* A stored file larger than this is not a policy file. */
#define BUNDLE_FILE_MAX (64u << 20)

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

int history_store_init(const char *state_dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/revisions", state_dir);
	return mkdir_p(p);
}

/* Makes the names in `dir` durable: a rename, create or unlink is on the
 * disk only once the directory itself is (fsync(2)). */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

/* fsync_dir() of the directory that holds `path`. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return fsync_dir(".");
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	return fsync_dir(dir);
}

/* How far write_to() goes: DURABLE, the name is on the disk too (fsync of
 * the directory); STAGED, the content is, and the caller fsyncs the
 * directory once for several files; CACHED, no fsync at all (the page
 * cache: a kill -9 of the process keeps it, a power cut may not). */
enum write_mode { DURABLE, STAGED, CACHED };

/* Writes data to path through path.tmp + write + fsync + rename + fsync of
 * the directory: on success the new content is on the disk, on failure the
 * old one is still there. */
static int write_to(const char *path, const char *data, size_t len, enum write_mode mode)
{
	char tmp[PATH_MAX + 8];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	while (len && !err) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno != EINTR)
			err = -errno;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (!err && mode != CACHED && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	else if (mode == DURABLE)
		err = fsync_parent(path);
	return err;
}

static int write_atomic(const char *path, const char *data, size_t len)
{
	return write_to(path, data, len, DURABLE);
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = p;
		}
		size_t k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
		if (k == 0)
			break;
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static int meta_write(const char *dir, const struct history_rev *m)
{
	char path[PATH_MAX + 16];
	struct json_buf b;
	int err;

	json_buf_init(&b);
	json_obj_begin(&b);
	json_kv_uint(&b, "id", m->id);
	json_kv_int(&b, "time", (long long)m->time);
	json_kv_uint(&b, "uid", m->uid);
	json_kv_str(&b, "comment", m->comment);
	json_kv_str(&b, "source", m->source);
	json_kv_str(&b, "source_rev", m->source_rev);
	json_kv_str(&b, "root", m->root);
	json_kv_str(&b, "hash", m->hash);
	json_kv_uint(&b, "previous", m->previous);
	json_kv_uint(&b, "confirm_seconds", m->confirm_seconds);
	json_obj_end(&b);
	if (b.oom) {
		json_buf_free(&b);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	err = write_to(path, b.s, b.len, STAGED);
	json_buf_free(&b);
	return err;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* The JSON file at path: read_file()'s errors, -EINVAL if it does not parse. */
static int read_json(const char *path, struct json **j)
{
	char err[128], *text;
	size_t len;
	int rc = read_file(path, &text, &len);

	if (rc)
		return rc;
	rc = json_parse(text, len, j, err, sizeof(err));
	free(text);
	return rc;
}

static int meta_read_path(const char *path, unsigned id, struct history_rev *m)
{
	struct json *j;
	long long v;
	int rc = read_json(path, &j);

	if (rc)
		return rc;
	memset(m, 0, sizeof(*m));
	m->id = id;
	if (!json_get_int(j, "time", &v))
		m->time = (time_t)v;
	if (!json_get_int(j, "uid", &v))
		m->uid = (uid_t)v;
	if (!json_get_int(j, "previous", &v) && v > 0 && v <= UINT_MAX)
		m->previous = (unsigned)v;
	if (!json_get_int(j, "confirm_seconds", &v) && v > 0 && v <= UINT_MAX)
		m->confirm_seconds = (unsigned)v;
	copy_str(m->comment, sizeof(m->comment), json_get_str(j, "comment"));
	copy_str(m->source, sizeof(m->source), json_get_str(j, "source"));
	copy_str(m->source_rev, sizeof(m->source_rev), json_get_str(j, "source_rev"));
	copy_str(m->root, sizeof(m->root), json_get_str(j, "root"));
	copy_str(m->hash, sizeof(m->hash), json_get_str(j, "hash"));
	json_free(j);
	return 0;
}

static int meta_read(const char *state_dir, unsigned id, struct history_rev *m)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/revisions/%u/meta.json", state_dir, id);
	return meta_read_path(path, id, m);
}

static int bundle_write(const char *dir, const struct policy_diags *files)
{
	char path[PATH_MAX + 16];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	if (!f)
		return -ENOMEM;
	fputs(BUNDLE_MAGIC, f);
	for (size_t i = 0; i < files->n_files; i++)
		fprintf(f, "file %zu %s\n%.*s\n", files->files[i].len, files->files[i].path,
			(int)files->files[i].len, files->files[i].text);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/policy.bundle", dir);
	err = write_to(path, buf, len, STAGED);
	free(buf);
	return err;
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

/* The ids present, ascending. */
static int list_ids(const char *state_dir, unsigned **ids, size_t *n)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	*ids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/revisions", state_dir);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char *end;
		unsigned long id = strtoul(de->d_name, &end, 10);
		if (*end || !id || de->d_name[0] == '0')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			unsigned *p = realloc(*ids, cap * sizeof(*p));
			if (!p) {
				closedir(d);
				free(*ids);
				*ids = NULL;
				return -ENOMEM;
			}
			*ids = p;
		}
		(*ids)[(*n)++] = (unsigned)id;
	}
	closedir(d);
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_uint);
	return 0;
}

static void remove_rev(const char *state_dir, unsigned id)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/revisions/%u/meta.json", state_dir, id);
	unlink(p);
	snprintf(p, sizeof(p), "%s/revisions/%u/policy.bundle", state_dir, id);
	unlink(p);
	snprintf(p, sizeof(p), "%s/revisions/%u/" DELTA_NAME, state_dir, id);
	unlink(p);
	snprintf(p, sizeof(p), "%s/revisions/%u", state_dir, id);
	rmdir(p);
}

/* The counter file: -ENOENT if missing, -EINVAL if it is not a number. */
static int read_counter(const char *state_dir, unsigned *out)
{
	char path[PATH_MAX], *text, *end;
	unsigned long v;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/last-id", state_dir);
	rc = read_file(path, &text, &len);
	if (rc)
		return rc;
	errno = 0;
	v = strtoul(text, &end, 10);
	rc = (errno || end == text || (*end && strcmp(end, "\n")) || v > UINT_MAX) ? -EINVAL : 0;
	free(text);
	if (!rc)
		*out = (unsigned)v;
	return rc;
}

unsigned history_last_id(const char *state_dir)
{
	unsigned last = 0, *ids;
	size_t n;

	/* The counter survives pruning so that ids never repeat. */
	read_counter(state_dir, &last);
	if (!list_ids(state_dir, &ids, &n)) {
		if (n && ids[n - 1] > last)
			last = ids[n - 1];
		free(ids);
	}
	return last;
}

int history_reserve_id(const char *state_dir, unsigned *id)
{
	char path[PATH_MAX], num[16];
	unsigned next = history_last_id(state_dir) + 1;
	int err;

	if (!next)
		return -EOVERFLOW;
	snprintf(path, sizeof(path), "%s/last-id", state_dir);
	snprintf(num, sizeof(num), "%u\n", next);
	/* Not fsynced: while revision `next` is stored its directory keeps
	 * the id used, and history_remove() makes the counter durable before
	 * it removes one. A power cut before either may hand out again an id
	 * that nothing was ever stored under. */
	err = write_to(path, num, strlen(num), CACHED);
	if (!err)
		*id = next;
	return err;
}

/* ---- revisions stored as the difference to a full one ----
 *
 * STATE/revisions/N/policy.delta, instead of policy.bundle:
 *   hvgate-delta 1
 *   base B                       a revision stored whole (policy.bundle)
 *   file LEN PATH                a file B has not: its LEN bytes and "\n"
 *   part P S BLEN MLEN PATH      B's file PATH (BLEN bytes long): its first
 *                                P bytes, these MLEN bytes and "\n", its
 *                                last S bytes
 * A delta is always against a full revision, never another delta: reading
 * a revision reads at most two files. */

struct delta_entry {
	const char *path;
	bool part;
	size_t p, s, base_len, mid_len;
	const char *mid;
};

struct delta {
	unsigned base;
	struct delta_entry *e;
	size_t n;
	char *raw;
};

static void delta_free(struct delta *d)
{
	free(d->e);
	free(d->raw);
	memset(d, 0, sizeof(*d));
}

static bool parse_size(char **p, size_t *out)
{
	char *end;
	if (**p < '0' || **p > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(*p, &end, 10);
	if (errno || *end != ' ' || v > BUNDLE_FILE_MAX)
		return false;
	*out = (size_t)v;
	*p = end + 1;
	return true;
}

/* Takes raw (len bytes, NUL after them). -EINVAL if malformed. */
static int delta_parse(char *raw, size_t len, struct delta *d)
{
	char *p = raw, *end = raw + len;
	size_t cap = 0;

	memset(d, 0, sizeof(*d));
	d->raw = raw;
	if (len < strlen(DELTA_MAGIC) || strncmp(raw, DELTA_MAGIC, strlen(DELTA_MAGIC)))
		goto bad;
	p += strlen(DELTA_MAGIC);
	char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || strncmp(p, "base ", 5))
		goto bad;
	*nl = 0;
	char *num_end;
	unsigned long base = strtoul(p + 5, &num_end, 10);
	if (*num_end || !base || base > UINT_MAX)
		goto bad;
	d->base = (unsigned)base;
	p = nl + 1;
	while (p < end) {
		struct delta_entry e = { 0 };
		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			goto bad;
		*nl = 0;
		if (!strncmp(p, "file ", 5)) {
			p += 5;
			if (!parse_size(&p, &e.mid_len))
				goto bad;
		} else if (!strncmp(p, "part ", 5)) {
			p += 5;
			e.part = true;
			if (!parse_size(&p, &e.p) || !parse_size(&p, &e.s) ||
			    !parse_size(&p, &e.base_len) || !parse_size(&p, &e.mid_len) ||
			    e.p + e.s > e.base_len || e.p + e.s + e.mid_len > BUNDLE_FILE_MAX)
				goto bad;
		} else {
			goto bad;
		}
		if (!*p || (size_t)(end - nl - 1) < e.mid_len + 1 || nl[1 + e.mid_len] != '\n')
			goto bad;
		e.path = p;
		e.mid = nl + 1;
		nl[1 + e.mid_len] = 0;
		p = nl + 2 + e.mid_len;
		if (d->n == cap) {
			cap = cap ? cap * 2 : 8;
			struct delta_entry *v = realloc(d->e, cap * sizeof(*v));
			if (!v) {
				delta_free(d);
				return -ENOMEM;
			}
			d->e = v;
		}
		d->e[d->n++] = e;
	}
	return 0;
bad:
	delta_free(d);
	return -EINVAL;
}

static int delta_read(const char *state_dir, unsigned id, struct delta *d)
{
	char path[PATH_MAX];
	char *raw;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/revisions/%u/" DELTA_NAME, state_dir, id);
	if ((rc = read_file(path, &raw, &len)))
		return rc;
	return delta_parse(raw, len, d);
}

/* "./a" and "a" name the same file (the compiler may tidy paths). */
static const char *tidy(const char *path)
{
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	return path;
}

static const struct policy_source_file *file_named(const struct policy_diags *f, const char *path)
{
	path = tidy(path);
	for (size_t i = 0; i < f->n_files; i++)
		if (!strcmp(tidy(f->files[i].path), path))
			return &f->files[i];
	return NULL;
}

static size_t common_prefix(const char *a, const char *b, size_t n)
{
	size_t i = 0;
	while (i + 4096 <= n && !memcmp(a + i, b + i, 4096))
		i += 4096;
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

static size_t common_suffix(const char *a, size_t na, const char *b, size_t nb, size_t max)
{
	size_t i = 0;
	while (i + 4096 <= max && !memcmp(a + na - i - 4096, b + nb - i - 4096, 4096))
		i += 4096;
	while (i < max && a[na - 1 - i] == b[nb - 1 - i])
		i++;
	return i;
}

static size_t bundle_size(const struct policy_diags *files)
{
	size_t n = strlen(BUNDLE_MAGIC);
	for (size_t i = 0; i < files->n_files; i++)
		n += (size_t)snprintf(NULL, 0, "file %zu %s\n", files->files[i].len,
				      files->files[i].path) +
		     files->files[i].len + 1;
	return n;
}

/* How revision `like`, whose files are `like_files`, relates to the full
 * revision it is (or is stored against): *base, and *ld its delta (n 0 when
 * it is the full one). -ENOENT: not usable (files that do not match). */
static int like_base(const char *state_dir, unsigned like, const struct policy_diags *like_files,
		     unsigned *base, struct delta *ld)
{
	char path[PATH_MAX];
	struct stat st;

	memset(ld, 0, sizeof(*ld));
	snprintf(path, sizeof(path), "%s/revisions/%u/policy.bundle", state_dir, like);
	if (!stat(path, &st)) {
		/* the cheap check that the caller's files are the stored ones */
		if ((size_t)st.st_size != bundle_size(like_files))
			return -ENOENT;
		*base = like;
		return 0;
	}
	if (delta_read(state_dir, like, ld))
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/revisions/%u/policy.bundle", state_dir, ld->base);
	bool ok = !stat(path, &st) && ld->n == like_files->n_files;
	for (size_t i = 0; ok && i < ld->n; i++) {
		const struct policy_source_file *f = file_named(like_files, ld->e[i].path);
		ok = f && f->len == ld->e[i].p + ld->e[i].mid_len + ld->e[i].s;
	}
	if (!ok) {
		delta_free(ld);
		return -ENOENT;
	}
	*base = ld->base;
	return 0;
}

/* Writes `files` as a delta against like's base into *buf; 1 if a delta
 * would not be much smaller than the whole (then the whole is stored). */
static int delta_build(const struct policy_diags *files, const struct policy_diags *like_files,
		       unsigned base, const struct delta *ld, char **buf, size_t *len)
{
	size_t total = 0, sent = 0;
	FILE *f = open_memstream(buf, len);

	if (!f)
		return -ENOMEM;
	fprintf(f, DELTA_MAGIC "base %u\n", base);
	for (size_t i = 0; i < files->n_files; i++) {
		const struct policy_source_file *nf = &files->files[i],
						*lf = file_named(like_files, nf->path);
		const struct delta_entry *le = NULL;
		size_t p = 0, s = 0, base_len = 0;
		bool part = lf != NULL;

		total += nf->len;
		for (size_t k = 0; part && k < ld->n && !le; k++)
			if (!strcmp(tidy(ld->e[k].path), tidy(nf->path)))
				le = &ld->e[k];
		if (ld->n && (!le || !le->part))
			part = false; /* like's own text of it is not in the base */
		if (part) {
			size_t m = lf->len < nf->len ? lf->len : nf->len;
			size_t p2 = common_prefix(lf->text, nf->text, m);
			size_t s2 = common_suffix(lf->text, lf->len, nf->text, nf->len, m - p2);
			/* like = base[0,P1) . mid . base[BLEN-S1,BLEN): what is
			 * common with like and in like's copy of the base */
			p = le && le->p < p2 ? le->p : p2;
			s = le && le->s < s2 ? le->s : s2;
			base_len = le ? le->base_len : lf->len;
			fprintf(f, "part %zu %zu %zu %zu %s\n", p, s, base_len, nf->len - p - s,
				nf->path);
			fwrite(nf->text + p, 1, nf->len - p - s, f);
			sent += nf->len - p - s;
		} else {
			fprintf(f, "file %zu %s\n", nf->len, nf->path);
			fwrite(nf->text, 1, nf->len, f);
			sent += nf->len;
		}
		fputc('\n', f);
	}
	if (fclose(f)) {
		free(*buf);
		*buf = NULL;
		return -ENOMEM;
	}
	if (sent > total / 4) {
		free(*buf);
		*buf = NULL;
		return 1;
	}
	return 0;
}

/* The base of a revision stored as a delta (its first lines); 0 for a
 * full one or when unreadable. */
static unsigned delta_base(const char *state_dir, unsigned id)
{
	char path[PATH_MAX], head[64];
	unsigned base = 0;
	int fd;
	ssize_t k;

	snprintf(path, sizeof(path), "%s/revisions/%u/" DELTA_NAME, state_dir, id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	k = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (k <= 0)
		return 0;
	head[k] = 0;
	if (strncmp(head, DELTA_MAGIC, strlen(DELTA_MAGIC)) ||
	    sscanf(head + strlen(DELTA_MAGIC), "base %u\n", &base) != 1)
		return 0;
	return base;
}

/* Removes the oldest revisions beyond the newest HISTORY_KEEP, except the
 * one that STATE/running names (a restart runs it again), the revert
 * target of an armed `commit confirmed` (the revert compiles it from its
 * bundle), and a whole one that a kept revision is stored against (its
 * policy.delta): losing any would leave the daemon nothing to return to. A
 * running or pending file that cannot be read protects nothing; the start-up
 * checks report it. ids is sorted, oldest first. */
static void prune(const char *state_dir, const unsigned *ids, size_t n)
{
	struct history_pending pend;
	unsigned running = 0, revert_to = 0, committed = 0;

	if (n <= HISTORY_KEEP)
		return;
	if (history_running_load(state_dir, &running))
		running = 0;
	if (!history_pending_load(state_dir, &pend)) {
		revert_to = pend.revert_to;
		committed = pend.committed;
	}
	/* The full revisions that the kept ones are stored against. */
	unsigned bases[HISTORY_KEEP + 3] = { 0 };
	size_t n_bases = 0;
	for (size_t i = 0; i < n; i++)
		if (i >= n - HISTORY_KEEP || ids[i] == running || ids[i] == revert_to ||
		    ids[i] == committed) {
			unsigned b = delta_base(state_dir, ids[i]);
			if (b && n_bases < sizeof(bases) / sizeof(bases[0]))
				bases[n_bases++] = b;
		}
	for (size_t i = 0; i < n - HISTORY_KEEP; i++) {
		bool base = false;
		for (size_t k = 0; k < n_bases && !base; k++)
			base = bases[k] == ids[i];
		if (ids[i] != running && ids[i] != revert_to && ids[i] != committed && !base)
			remove_rev(state_dir, ids[i]);
	}
}

int history_save(const char *state_dir, const struct history_rev *meta,
		 const struct policy_diags *files)
{
	return history_save_like(state_dir, meta, files, 0, NULL);
}

/* policy.delta against like's base, if there is one and it is worth it;
 * else policy.bundle. */
static int store_files(const char *state_dir, const char *dir, const struct policy_diags *files,
		       unsigned like, const struct policy_diags *like_files)
{
	char path[PATH_MAX + 16];
	struct delta ld;
	unsigned base;
	char *buf = NULL;
	size_t len;
	int rc;

	if (!like || !like_files || like_base(state_dir, like, like_files, &base, &ld))
		return bundle_write(dir, files);
	rc = delta_build(files, like_files, base, &ld, &buf, &len);
	delta_free(&ld);
	if (rc)
		return rc < 0 ? rc : bundle_write(dir, files);
	snprintf(path, sizeof(path), "%s/" DELTA_NAME, dir);
	rc = write_to(path, buf, len, STAGED);
	free(buf);
	return rc;
}

int history_save_like(const char *state_dir, const struct history_rev *meta,
		      const struct policy_diags *files, unsigned like,
		      const struct policy_diags *like_files)
{
	char dir[PATH_MAX];
	unsigned *ids, counter = 0;
	size_t n;
	int err;

	snprintf(dir, sizeof(dir), "%s/revisions/%u", state_dir, meta->id);
	err = mkdir_p(dir);
	if (!err)
		err = store_files(state_dir, dir, files, like, like_files);
	/* meta.json last: a revision without it is not listed. The files'
	 * contents are on the disk already; now their names and the
	 * revision's directory. */
	if (!err)
		err = meta_write(dir, meta);
	if (!err)
		err = fsync_dir(dir);
	if (!err)
		err = fsync_parent(dir);
	if (err) {
		remove_rev(state_dir, meta->id);
		return err;
	}
	if (read_counter(state_dir, &counter) || meta->id > counter) {
		/* a caller that did not reserve the id */
		char path[PATH_MAX], num[16];
		snprintf(path, sizeof(path), "%s/last-id", state_dir);
		snprintf(num, sizeof(num), "%u\n", meta->id);
		err = write_atomic(path, num, strlen(num));
		if (err)
			return err;
	}
	if (list_ids(state_dir, &ids, &n))
		return 0;
	prune(state_dir, ids, n);
	free(ids);
	return 0;
}

void history_remove(const char *state_dir, unsigned id)
{
	char p[PATH_MAX];
	int fd;

	/* The counter (written CACHED by history_reserve_id()) on the disk
	 * before the revision that kept the id used goes. */
	snprintf(p, sizeof(p), "%s/last-id", state_dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (!fsync(fd))
			fsync_dir(state_dir);
		close(fd);
	}
	remove_rev(state_dir, id);
	snprintf(p, sizeof(p), "%s/revisions", state_dir);
	fsync_dir(p);
}

int history_store_list(const char *state_dir, struct history_rev **v, size_t *n)
{
	unsigned *ids;
	size_t k;
	int err = list_ids(state_dir, &ids, &k);

	*v = NULL;
	*n = 0;
	if (err)
		return err;
	*v = calloc(k ? k : 1, sizeof(**v));
	if (!*v) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < k; i++)
		if (!meta_read(state_dir, ids[i], &(*v)[*n]))
			(*n)++;
	free(ids);
	return 0;
}

int history_store_get(const char *state_dir, unsigned id, struct history_rev *out)
{
	return meta_read(state_dir, id, out);
}

/* Bundles. */

struct bundle_file {
	char *path;
	char *text;
	size_t len;
};

struct history_bundle {
	struct bundle_file *files;
	size_t n;
	struct policy_fs fs;
	char *raw;
	char *text; /* put together from a delta: the files' texts */
};

static int bundle_read(void *ctx, const char *path, char **text, size_t *len)
{
	const struct history_bundle *b = ctx;

	path = tidy(path);
	for (size_t i = 0; i < b->n; i++) {
		if (strcmp(tidy(b->files[i].path), path))
			continue;
		*text = malloc(b->files[i].len + 1);
		if (!*text)
			return -ENOMEM;
		memcpy(*text, b->files[i].text, b->files[i].len);
		(*text)[b->files[i].len] = 0;
		*len = b->files[i].len;
		return 0;
	}
	return -ENOENT;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int bundle_glob(void *ctx, const char *pattern, char ***paths)
{
	const struct history_bundle *b = ctx;
	char **v = calloc(b->n ? b->n : 1, sizeof(*v));
	int n = 0;

	if (!v)
		return -ENOMEM;
	pattern = tidy(pattern);
	for (size_t i = 0; i < b->n; i++) {
		if (fnmatch(pattern, tidy(b->files[i].path), FNM_PATHNAME))
			continue;
		v[n] = strdup(b->files[i].path);
		if (!v[n]) {
			while (n--)
				free(v[n]);
			free(v);
			return -ENOMEM;
		}
		n++;
	}
	qsort(v, (size_t)n, sizeof(*v), cmp_str);
	*paths = v;
	return n;
}

static int bundle_is_dir(void *ctx, const char *path)
{
	const struct history_bundle *b = ctx;
	size_t plen;
	bool file = false;

	path = tidy(path);
	if (!strcmp(path, ".") || !*path)
		return b->n ? 1 : -ENOENT; /* the top of a git tree */
	plen = strlen(path);
	for (size_t i = 0; i < b->n; i++) {
		const char *f = tidy(b->files[i].path);
		if (!strncmp(f, path, plen) && f[plen] == '/')
			return 1;
		if (!strcmp(f, path))
			file = true;
	}
	return file ? 0 : -ENOENT;
}

static int bundle_load_path(const char *path, struct history_bundle **out)
{
	struct history_bundle *b;
	size_t len, cap = 0;
	char *p, *end;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = read_file(path, &b->raw, &len);
	if (err) {
		free(b);
		return err;
	}
	end = b->raw + len;
	if (strncmp(b->raw, BUNDLE_MAGIC, strlen(BUNDLE_MAGIC))) {
		history_bundle_free(b);
		return -EINVAL;
	}
	p = b->raw + strlen(BUNDLE_MAGIC);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *name;
		unsigned long flen;
		if (!nl || strncmp(p, "file ", 5))
			goto bad;
		*nl = 0;
		flen = strtoul(p + 5, &name, 10);
		if (*name != ' ' || flen > BUNDLE_FILE_MAX || (size_t)(end - nl - 1) < flen + 1)
			goto bad;
		if (b->n == cap) {
			cap = cap ? cap * 2 : 8;
			struct bundle_file *f = realloc(b->files, cap * sizeof(*f));
			if (!f) {
				history_bundle_free(b);
				return -ENOMEM;
			}
			b->files = f;
		}
		b->files[b->n].path = name + 1;
		b->files[b->n].text = nl + 1;
		b->files[b->n].len = flen;
		b->n++;
		p = nl + 1 + flen;
		*p++ = 0; /* the separating newline */
	}
	*out = b;
	return 0;
bad:
	history_bundle_free(b);
	return -EINVAL;
}

static int bundle_load_full(const char *state_dir, unsigned id, struct history_bundle **out)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/revisions/%u/policy.bundle", state_dir, id);
	return bundle_load_path(path, out);
}

static void bundle_fs_init(struct history_bundle *b)
{
	b->fs.ctx = b;
	b->fs.read = bundle_read;
	b->fs.glob = bundle_glob;
	b->fs.is_dir = bundle_is_dir;
}

static const struct bundle_file *bundle_file_named(const struct history_bundle *b, const char *path)
{
	path = tidy(path);
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(tidy(b->files[i].path), path))
			return &b->files[i];
	return NULL;
}

/* A revision stored as policy.delta: its base's files, put together. */
static int bundle_load_delta(const char *state_dir, unsigned id, struct history_bundle **out)
{
	struct history_bundle *base = NULL, *b = NULL;
	struct delta d;
	size_t total = 0;
	int rc = delta_read(state_dir, id, &d);

	if (rc)
		return rc;
	if ((rc = bundle_load_full(state_dir, d.base, &base))) {
		delta_free(&d);
		return rc == -ENOENT ? -EINVAL : rc; /* a delta without its base */
	}
	for (size_t i = 0; i < d.n; i++)
		total += d.e[i].p + d.e[i].mid_len + d.e[i].s + 1;
	rc = -ENOMEM;
	if (!(b = calloc(1, sizeof(*b))) ||
	    !(b->files = calloc(d.n ? d.n : 1, sizeof(*b->files))) ||
	    !(b->text = malloc(total ? total : 1)))
		goto out;
	rc = -EINVAL;
	char *w = b->text;
	for (size_t i = 0; i < d.n; i++) {
		const struct delta_entry *e = &d.e[i];
		b->files[i].path = (char *)e->path;
		b->files[i].text = w;
		b->files[i].len = e->p + e->mid_len + e->s;
		if (e->part) {
			const struct bundle_file *bf = bundle_file_named(base, e->path);
			if (!bf || bf->len != e->base_len)
				goto out;
			memcpy(w, bf->text, e->p);
			memcpy(w + e->p, e->mid, e->mid_len);
			memcpy(w + e->p + e->mid_len, bf->text + bf->len - e->s, e->s);
		} else {
			memcpy(w, e->mid, e->mid_len);
		}
		w += b->files[i].len;
		*w++ = 0;
	}
	b->n = d.n;
	b->raw = d.raw; /* the paths */
	d.raw = NULL;
	rc = 0;
out:
	delta_free(&d);
	history_bundle_free(base);
	if (rc)
		history_bundle_free(b);
	else
		*out = b;
	return rc;
}

int history_bundle_load(const char *state_dir, unsigned id, struct history_bundle **out)
{
	struct history_bundle *b = NULL;
	int rc = bundle_load_full(state_dir, id, &b);

	if (rc == -ENOENT)
		rc = bundle_load_delta(state_dir, id, &b);
	if (rc)
		return rc;
	bundle_fs_init(b);
	*out = b;
	return 0;
}

const char *history_bundle_name(const char *state_dir, unsigned id)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/revisions/%u/policy.bundle", state_dir, id);
	return access(path, F_OK) ? DELTA_NAME : "policy.bundle";
}

const struct policy_fs *history_bundle_fs(const struct history_bundle *b)
{
	return &b->fs;
}

void history_bundle_free(struct history_bundle *b)
{
	if (!b)
		return;
	free(b->files);
	free(b->raw);
	free(b->text);
	free(b);
}

/* Pending commit-confirm revert. */

int history_pending_save(const char *state_dir, const struct history_pending *p)
{
	char path[PATH_MAX], text[160];

	snprintf(path, sizeof(path), "%s/pending.json", state_dir);
	snprintf(text, sizeof(text), "{\"committed\":%u,\"revert_to\":%u,\"deadline_ms\":%lld}\n",
		 p->committed, p->revert_to, (long long)p->deadline_ms);
	return write_atomic(path, text, strlen(text));
}

int history_pending_load(const char *state_dir, struct history_pending *p)
{
	char path[PATH_MAX];
	struct json *j;
	long long c, r, d;
	int rc;

	snprintf(path, sizeof(path), "%s/pending.json", state_dir);
	rc = read_json(path, &j);
	if (rc)
		return rc;
	if (json_get_int(j, "deadline_ms", &d)) {
		/* whole seconds in "deadline": the file of an older hvgated */
		if (!json_get_int(j, "deadline", &d) && d >= 0 && d < INT64_MAX / 1000)
			d *= 1000;
		else
			d = -1;
	}
	if (json_get_int(j, "committed", &c) || json_get_int(j, "revert_to", &r) || c <= 0 ||
	    c > UINT_MAX || r < 0 || r > UINT_MAX || d < 0) {
		json_free(j);
		return -EINVAL;
	}
	json_free(j);
	p->committed = (unsigned)c;
	p->revert_to = (unsigned)r;
	p->deadline_ms = d;
	return 0;
}

static int unlink_durably(const char *state_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", state_dir, name);
	if (unlink(path)) {
		if (errno == ENOENT)
			return 0;
		return -errno;
	}
	return fsync_dir(state_dir);
}

/* The candidate: STATE/candidate.json (meta) and STATE/candidate.bundle.
 * The meta goes first when it is replaced and is written last: a crash in
 * between leaves no candidate, never one file's meta over another's text. */

int history_candidate_save(const char *state_dir, const struct history_rev *meta,
			   const struct policy_diags *files)
{
	char dir[PATH_MAX], from[PATH_MAX + 32], to[PATH_MAX + 32];
	int err = unlink_durably(state_dir, "candidate.json");

	snprintf(dir, sizeof(dir), "%s/candidate.tmpdir", state_dir);
	if (!err)
		err = mkdir_p(dir);
	if (!err)
		err = bundle_write(dir, files);
	if (!err)
		err = meta_write(dir, meta);
	if (!err) {
		snprintf(from, sizeof(from), "%s/policy.bundle", dir);
		snprintf(to, sizeof(to), "%s/candidate.bundle", state_dir);
		if (rename(from, to))
			err = -errno;
	}
	if (!err) {
		snprintf(from, sizeof(from), "%s/meta.json", dir);
		snprintf(to, sizeof(to), "%s/candidate.json", state_dir);
		if (rename(from, to))
			err = -errno;
	}
	if (!err)
		err = fsync_dir(state_dir);
	snprintf(from, sizeof(from), "%s/policy.bundle", dir);
	unlink(from);
	snprintf(from, sizeof(from), "%s/meta.json", dir);
	unlink(from);
	rmdir(dir);
	return err;
}

int history_candidate_load(const char *state_dir, struct history_rev *meta,
			   struct history_bundle **b)
{
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/candidate.json", state_dir);
	rc = meta_read_path(path, 0, meta);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/candidate.bundle", state_dir);
	rc = bundle_load_path(path, b);
	if (!rc)
		bundle_fs_init(*b);
	return rc;
}

int history_candidate_clear(const char *state_dir)
{
	static const char *const names[] = { "candidate.json", "candidate.bundle" };
	char path[PATH_MAX];

	/* the meta first (a crash between the two leaves no candidate), then
	 * one fsync of the directory for both names */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", state_dir, names[i]);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	return fsync_dir(state_dir);
}

/* The configure lock: STATE/lock.json. */

int history_lock_save(const char *state_dir, const struct history_lock *l)
{
	char path[PATH_MAX], text[160];

	snprintf(path, sizeof(path), "%s/lock.json", state_dir);
	snprintf(text, sizeof(text), "{\"pid\":%ld,\"uid\":%lu,\"since\":%lld,\"start\":%llu}\n",
		 (long)l->pid, (unsigned long)l->uid, (long long)l->since,
		 (unsigned long long)l->start);
	return write_atomic(path, text, strlen(text));
}

int history_lock_load(const char *state_dir, struct history_lock *l)
{
	char path[PATH_MAX];
	long long pid, uid, since, start;
	struct json *j;
	int rc;

	snprintf(path, sizeof(path), "%s/lock.json", state_dir);
	rc = read_json(path, &j);
	if (rc)
		return rc;
	rc = json_get_int(j, "pid", &pid) || json_get_int(j, "uid", &uid) ||
		     json_get_int(j, "since", &since) || json_get_int(j, "start", &start) ||
		     pid <= 0 || pid > INT_MAX || uid < 0 || uid > UINT_MAX || start < 0
		 ? -EINVAL
		 : 0;
	json_free(j);
	if (rc)
		return rc;
	l->pid = (pid_t)pid;
	l->uid = (uid_t)uid;
	l->since = (time_t)since;
	l->start = (unsigned long long)start;
	return 0;
}

int history_lock_clear(const char *state_dir)
{
	return unlink_durably(state_dir, "lock.json");
}

int history_pending_clear(const char *state_dir)
{
	return unlink_durably(state_dir, "pending.json");
}

/* The revision to run. */

int history_running_save(const char *state_dir, unsigned id)
{
	char path[PATH_MAX], num[16];

	snprintf(path, sizeof(path), "%s/running", state_dir);
	snprintf(num, sizeof(num), "%u\n", id);
	return write_atomic(path, num, strlen(num));
}

int history_running_load(const char *state_dir, unsigned *id)
{
	char path[PATH_MAX], *text, *end;
	unsigned long v;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/running", state_dir);
	rc = read_file(path, &text, &len);
	if (rc)
		return rc;
	errno = 0;
	v = strtoul(text, &end, 10);
	rc = (errno || end == text || text[0] < '0' || text[0] > '9' || strcmp(end, "\n") ||
	      v > UINT_MAX)
		 ? -EINVAL
		 : 0;
	free(text);
	if (!rc)
		*id = (unsigned)v;
	return rc;
}

int history_quarantine(const char *state_dir, const char *name, char *moved_to, size_t size)
{
	char from[PATH_MAX], to[PATH_MAX + 32];

	snprintf(from, sizeof(from), "%s/%s", state_dir, name);
	snprintf(to, sizeof(to), "%s.corrupt-%lld", from, (long long)time(NULL));
	snprintf(moved_to, size, "%s", to);
	if (rename(from, to))
		return -errno;
	return fsync_parent(to);
}
