/* Reading policy sources: files, directories, text in memory, includes.
 *
 * Every file read is registered with the diagnostics (so errors can quote
 * it) and parsed into one syntax tree; the checker then builds the policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/checker.h"
#include "policy/parser.h"
#include "policy/policy.h"

/* Includes nest at most this deep; deeper is almost certainly a mistake and
 * bounds the recursion. */
#define INCLUDE_DEPTH_MAX 16

/* A policy file larger than this is refused (a guard against reading a
 * device or a huge log by mistake, far above any real policy). */
#define POLICY_FILE_MAX (64u << 20)

struct frame {
	char *dir; /* directory that includes of this file are relative to */
	char *key; /* identity for cycle detection (real path if known) */
	const char *path;
};

struct loader {
	const struct policy_fs *fs;
	struct policy_diags *d;
	struct policy_ast *ast;
	struct frame stack[INCLUDE_DEPTH_MAX + 1];
	size_t depth;
};

/* --- the real file system -------------------------------------------- */

/* Opens without blocking (a FIFO would wait for a writer forever, a
 * device could), then reads only a regular file. A non-regular file is
 * -EINVAL, which the loader words as "not a regular file". */
static int real_read(void *ctx, const char *path, char **text, size_t *len)
{
	(void)ctx;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	int e = 0;
	if (fstat(fd, &st))
		e = -errno;
	else if (S_ISDIR(st.st_mode))
		e = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		e = -EINVAL;
	else if ((uint64_t)st.st_size > POLICY_FILE_MAX)
		e = -EFBIG;
	char *buf = e ? NULL : malloc((size_t)st.st_size + 1);
	if (!e && !buf)
		e = -ENOMEM;
	if (e) {
		close(fd);
		return e;
	}
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

static int real_glob(void *ctx, const char *pattern, char ***paths)
{
	(void)ctx;
	glob_t g;
	int r = glob(pattern, 0, NULL, &g);
	if (r == GLOB_NOMATCH) {
		*paths = NULL;
		return 0;
	}
	if (r)
		return r == GLOB_NOSPACE ? -ENOMEM : -EIO;
	char **v = calloc(g.gl_pathc + 1, sizeof(*v));
	if (!v) {
		globfree(&g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		v[i] = strdup(g.gl_pathv[i]);
		if (!v[i]) {
			while (i)
				free(v[--i]);
			free(v);
			globfree(&g);
			return -ENOMEM;
		}
	}
	int n = (int)g.gl_pathc;
	globfree(&g);
	*paths = v;
	return n;
}

static int real_is_dir(void *ctx, const char *path)
{
	(void)ctx;
	struct stat st;
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 1 : 0;
}

static const struct policy_fs real_fs = { NULL, real_read, real_glob, real_is_dir };

/* --- paths ----------------------------------------------------------- */

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static char *path_join(const char *dir, const char *rel)
{
	char *s;
	if (rel[0] == '/' || !dir || !strcmp(dir, "."))
		return strdup(rel);
	if (asprintf(&s, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel) < 0)
		return NULL;
	return s;
}

static bool has_glob_chars(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* The identity of a file for cycle detection: its real path on the real
 * file system, the path as written elsewhere. */
static char *file_key(const struct loader *l, const char *path)
{
	if (l->fs == &real_fs) {
		char *real = realpath(path, NULL);
		if (real)
			return real;
	}
	return strdup(path);
}

static void free_paths(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- parsing files --------------------------------------------------- */

static int include_cb(void *ctx, const char *pattern, const struct policy_loc *loc, size_t scope,
		      struct policy_ast *ast);

static const struct policy_parse_include include_hook = { include_cb, NULL };

static int oom(struct loader *l)
{
	return policy_error(l->d, NULL, "out of memory");
}

static int report_cycle(struct loader *l, const char *path, const struct policy_loc *loc)
{
	size_t len = 0;
	for (size_t i = 0; i < l->depth; i++)
		len += strlen(l->stack[i].path) + 4;
	char *chain = malloc(len + strlen(path) + 1);
	if (!chain)
		return oom(l);
	chain[0] = '\0';
	for (size_t i = 0; i < l->depth; i++) {
		strcat(chain, l->stack[i].path);
		strcat(chain, " -> ");
	}
	strcat(chain, path);
	int r = policy_error(l->d, loc, "include cycle: %s", chain);
	free(chain);
	return r;
}

/* Parses text already registered with the diagnostics as `path`. */
static int parse_registered(struct loader *l, const char *path, const char *text, size_t len,
			    char *dir, char *key, size_t scope)
{
	struct frame *f = &l->stack[l->depth++];
	f->dir = dir;
	f->key = key;
	f->path = path;
	struct policy_parse_include hook = include_hook;
	hook.ctx = l;
	int r = policy_parse(l->ast, path, text, len, scope, &hook, l->d);
	l->depth--;
	free(f->dir);
	free(f->key);
	return r;
}

/* Reads and parses one file; `loc` is the include that asked for it (NULL
 * for a file named on the command line). */
static int parse_path(struct loader *l, const char *path, size_t scope,
		      const struct policy_loc *loc)
{
	char *key = file_key(l, path);
	if (!key)
		return oom(l);
	for (size_t i = 0; i < l->depth; i++) {
		if (!strcmp(l->stack[i].key, key)) {
			free(key);
			return report_cycle(l, path, loc);
		}
	}
	if (l->depth >= INCLUDE_DEPTH_MAX) {
		free(key);
		return policy_error(l->d, loc, "includes nested deeper than %d files",
				    INCLUDE_DEPTH_MAX);
	}
	char *text = NULL;
	size_t len = 0;
	int e = l->fs->read(l->fs->ctx, path, &text, &len);
	if (e) {
		free(key);
		const char *why = e == -EINVAL ? "not a regular file" : strerror(-e);
		if (loc)
			return policy_error(l->d, loc, "cannot read included file '%s': %s", path,
					    why);
		struct policy_loc where = { .file = NULL };
		return policy_error(l->d, &where, "cannot read '%s': %s", path, why);
	}
	char *dir = dir_of(path);
	char *owned_path = strdup(path);
	if (!dir || !owned_path) {
		free(dir);
		free(owned_path);
		free(text);
		free(key);
		return oom(l);
	}
	const char *name = policy_diags_add_file(l->d, owned_path, text, len);
	if (!name) {
		free(dir);
		free(key);
		return oom(l);
	}
	return parse_registered(l, name, text, len, dir, key, scope);
}

static int include_cb(void *ctx, const char *pattern, const struct policy_loc *loc, size_t scope,
		      struct policy_ast *ast)
{
	struct loader *l = ctx;
	(void)ast;
	const char *dir = l->depth ? l->stack[l->depth - 1].dir : NULL;
	if (!dir)
		return policy_error(l->d, loc,
				    "include is not available: the policy was read "
				    "from memory without a base directory");
	char *full = path_join(dir, pattern);
	if (!full)
		return oom(l);
	int r = 0;
	if (!has_glob_chars(pattern)) {
		r = parse_path(l, full, scope, loc);
		free(full);
		return r;
	}
	char **paths = NULL;
	int n = l->fs->glob(l->fs->ctx, full, &paths);
	if (n < 0)
		r = policy_error(l->d, loc, "cannot expand include pattern '%s': %s", pattern,
				 strerror(-n));
	else if (n == 0)
		r = policy_error(l->d, loc, "include pattern '%s' matches no file", pattern);
	for (int i = 0; i < n; i++)
		if (parse_path(l, paths[i], scope, loc))
			r = -1;
	free_paths(paths, n > 0 ? n : 0);
	free(full);
	return r;
}

static struct policy *finish(struct loader *l)
{
	struct policy *p = policy_check(l->ast, l->d);
	policy_ast_free(l->ast);
	return p;
}

struct policy *policy_load_fs(const char *path, const struct policy_fs *fs, struct policy_diags *d)
{
	struct policy_ast ast;
	policy_ast_init(&ast);
	struct loader l = { .fs = fs ? fs : &real_fs, .d = d, .ast = &ast };
	int dir = l.fs->is_dir(l.fs->ctx, path);
	if (dir < 0) {
		policy_error(d, NULL, "cannot read '%s': %s", path, strerror(-dir));
		return NULL;
	}
	if (!dir) {
		parse_path(&l, path, POLICY_NONE, NULL);
		return finish(&l);
	}
	char *pattern = path_join(path, "*.hvp");
	char **paths = NULL;
	int n = pattern ? l.fs->glob(l.fs->ctx, pattern, &paths) : -ENOMEM;
	free(pattern);
	if (n <= 0) {
		if (n == 0)
			policy_error(d, NULL, "directory '%s' holds no *.hvp file", path);
		else
			policy_error(d, NULL, "cannot list '%s': %s", path, strerror(-n));
		return NULL;
	}
	for (int i = 0; i < n; i++)
		parse_path(&l, paths[i], POLICY_NONE, NULL);
	free_paths(paths, n);
	return finish(&l);
}

struct policy *policy_load(const char *path, struct policy_diags *d)
{
	return policy_load_fs(path, NULL, d);
}

struct policy *policy_load_text(const char *name, const char *text, size_t len,
				const char *base_dir, struct policy_diags *d)
{
	struct policy_ast ast;
	policy_ast_init(&ast);
	struct loader l = { .fs = &real_fs, .d = d, .ast = &ast };
	char *copy = malloc(len + 1);
	char *owned_name = strdup(name);
	char *dir = base_dir ? strdup(base_dir) : NULL;
	char *key = strdup(name);
	if (!copy || !owned_name || !key || (base_dir && !dir)) {
		free(copy);
		free(owned_name);
		free(dir);
		free(key);
		policy_error(d, NULL, "out of memory");
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	const char *reg = policy_diags_add_file(d, owned_name, copy, len);
	if (!reg) {
		free(dir);
		free(key);
		policy_error(d, NULL, "out of memory");
		return NULL;
	}
	parse_registered(&l, reg, copy, len, dir, key, POLICY_NONE);
	return finish(&l);
}
