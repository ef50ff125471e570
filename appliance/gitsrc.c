/* libgit2 tree reader behind struct policy_fs (gitsrc.h). */
#include <errno.h>
#include <fnmatch.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/gitsrc.h"

struct gitsrc {
	git_repository *repo;
	git_commit *commit;
	git_tree *tree;
	char oid[GITSRC_OID_HEX];
	struct policy_fs fs;
};

static void git_err(char *err, size_t errsz, const char *what)
{
	const git_error *e = git_error_last();
	snprintf(err, errsz, "%s: %s", what,
		 e && e->message ? e->message : "unknown libgit2 error");
}

/* "./a/b" -> "a/b"; "." and "" -> "". */
static const char *rel(const char *path)
{
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (!strcmp(path, "."))
		return "";
	return path;
}

/* The tree at `dir` ("" for the top); caller frees unless it is g->tree. */
static int subtree(const struct gitsrc *g, const char *dir, git_tree **out)
{
	git_tree_entry *e;
	int rc;

	if (!*dir) {
		*out = g->tree;
		return 0;
	}
	if (git_tree_entry_bypath(&e, g->tree, dir))
		return -ENOENT;
	if (git_tree_entry_type(e) != GIT_OBJECT_TREE) {
		git_tree_entry_free(e);
		return -ENOTDIR;
	}
	rc = git_tree_lookup(out, g->repo, git_tree_entry_id(e));
	git_tree_entry_free(e);
	return rc ? -EIO : 0;
}

static int fs_read(void *ctx, const char *path, char **text, size_t *len)
{
	const struct gitsrc *g = ctx;
	git_tree_entry *e;
	git_blob *blob;
	size_t n;

	if (git_tree_entry_bypath(&e, g->tree, rel(path)))
		return -ENOENT;
	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB) {
		git_tree_entry_free(e);
		return -EISDIR;
	}
	if (git_blob_lookup(&blob, g->repo, git_tree_entry_id(e))) {
		git_tree_entry_free(e);
		return -EIO;
	}
	git_tree_entry_free(e);
	n = (size_t)git_blob_rawsize(blob);
	*text = malloc(n + 1);
	if (!*text) {
		git_blob_free(blob);
		return -ENOMEM;
	}
	memcpy(*text, git_blob_rawcontent(blob), n);
	(*text)[n] = 0;
	*len = n;
	git_blob_free(blob);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Wildcards only in the last component, as in include "dir/ *.hvp". */
static int fs_glob(void *ctx, const char *pattern, char ***paths)
{
	const struct gitsrc *g = ctx;
	const char *slash = strrchr(pattern, '/');
	char dir[1024];
	size_t prefix_len = slash ? (size_t)(slash - pattern) : 0;
	const char *base = slash ? slash + 1 : pattern;
	git_tree *t;
	char **v;
	int n = 0, err;

	if (prefix_len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, pattern, prefix_len);
	dir[prefix_len] = 0;
	err = subtree(g, rel(dir), &t);
	if (err == -ENOENT || err == -ENOTDIR) {
		*paths = calloc(1, sizeof(char *));
		return *paths ? 0 : -ENOMEM;
	}
	if (err)
		return err;
	v = calloc(git_tree_entrycount(t) + 1, sizeof(*v));
	if (!v) {
		if (t != g->tree)
			git_tree_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *name = git_tree_entry_name(e);
		if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || fnmatch(base, name, FNM_PERIOD))
			continue;
		if (asprintf(&v[n], "%s%s%s", dir, prefix_len ? "/" : "", name) < 0) {
			while (n--)
				free(v[n]);
			free(v);
			if (t != g->tree)
				git_tree_free(t);
			return -ENOMEM;
		}
		n++;
	}
	if (t != g->tree)
		git_tree_free(t);
	qsort(v, (size_t)n, sizeof(*v), cmp_str);
	*paths = v;
	return n;
}

static int fs_is_dir(void *ctx, const char *path)
{
	const struct gitsrc *g = ctx;
	git_tree_entry *e;
	int dir;

	if (!*rel(path))
		return 1;
	if (git_tree_entry_bypath(&e, g->tree, rel(path)))
		return -ENOENT;
	dir = git_tree_entry_type(e) == GIT_OBJECT_TREE;
	git_tree_entry_free(e);
	return dir;
}

int gitsrc_open(const char *repo, const char *ref, struct gitsrc **out, char *err, size_t errsz)
{
	struct gitsrc *g = calloc(1, sizeof(*g));
	git_object *obj = NULL;

	if (!g)
		return -ENOMEM;
	/* Reference-counted inside libgit2: one init per open, one shutdown per close. */
	git_libgit2_init();
	if (git_repository_open(&g->repo, repo)) {
		git_err(err, errsz, repo);
		gitsrc_close(g);
		return -ENOENT;
	}
	if (git_revparse_single(&obj, g->repo, ref) ||
	    git_object_peel((git_object **)&g->commit, obj, GIT_OBJECT_COMMIT)) {
		git_err(err, errsz, ref);
		git_object_free(obj);
		gitsrc_close(g);
		return -ENOENT;
	}
	git_object_free(obj);
	if (git_commit_tree(&g->tree, g->commit)) {
		git_err(err, errsz, ref);
		gitsrc_close(g);
		return -EIO;
	}
	git_oid_tostr(g->oid, sizeof(g->oid), git_commit_id(g->commit));
	g->fs.ctx = g;
	g->fs.read = fs_read;
	g->fs.glob = fs_glob;
	g->fs.is_dir = fs_is_dir;
	*out = g;
	return 0;
}

void gitsrc_ignore_user_config(bool ignore)
{
	/* The init/shutdown pair keeps libgit2 (and these options) alive
	 * across the opens in between. NULL restores the default paths. */
	if (ignore)
		git_libgit2_init();
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, ignore ? "" : NULL);
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, ignore ? "" : NULL);
	if (!ignore)
		git_libgit2_shutdown();
}

const struct policy_fs *gitsrc_fs(const struct gitsrc *g)
{
	return &g->fs;
}

const char *gitsrc_commit(const struct gitsrc *g)
{
	return g->oid;
}

void gitsrc_close(struct gitsrc *g)
{
	if (!g)
		return;
	git_tree_free(g->tree);
	git_commit_free(g->commit);
	git_repository_free(g->repo);
	free(g);
	git_libgit2_shutdown();
}
