/* Policy files from a git repository: the tree of one commit, read with
 * libgit2 straight from the object database (no checkout, no git process),
 * offered to the compiler as a struct policy_fs.
 *
 * Paths are relative to the top of the tree; "." is the top itself, so
 * policy_load_fs(".", gitsrc_fs(g), d) compiles every *.hvp at the top.
 *
 * Error convention: 0 or negative errno, with libgit2's message in `err`.
 * Not thread-safe; one gitsrc per thread.
 */
#ifndef HVGATE_APPLIANCE_GITSRC_H
#define HVGATE_APPLIANCE_GITSRC_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

#define GITSRC_ROOT    "."
#define GITSRC_OID_HEX 41 /* 40 hex digits of a SHA-1 object id and a NUL */

struct gitsrc;

/* Opens repository `repo` and resolves `ref` (branch, tag, commit id,
 * anything git rev-parse takes) to a commit. */
int gitsrc_open(const char *repo, const char *ref, struct gitsrc **out, char *err, size_t errsz);
/* true: until the call with false, opens read no per-user git configuration
 * (~/.gitconfig, XDG): with another user's filesystem ids (peerfs.h) the
 * daemon's home cannot be read, and that user's repository needs none of
 * it. Calls pair up; not thread-safe (libgit2 options are global). */
void gitsrc_ignore_user_config(bool ignore);
const struct policy_fs *gitsrc_fs(const struct gitsrc *g);
/* The commit id in hex. */
const char *gitsrc_commit(const struct gitsrc *g);
void gitsrc_close(struct gitsrc *g);

#endif
