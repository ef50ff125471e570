/* Committed revisions of the policy, kept in the state directory:
 *
 *   STATE/revisions/N/meta.json      when, who, why, where from, ruleset hash
 *   STATE/revisions/N/policy.bundle  the text of every file the policy read
 *   STATE/revisions/N/policy.delta   or: that text as the difference to a
 *                                    revision stored whole (see below)
 *   STATE/pending.json               an armed `commit confirmed` revert
 *   STATE/running                    the revision to run at start
 *   STATE/last-id                    the highest id ever handed out
 *
 * A bundle stores each file under the path the compiler read it from, so the
 * revision can be compiled again through history_bundle_fs() exactly as it
 * was, whatever happened to the source since. A commit costs what it
 * changes (history_save_like()): a revision is stored as policy.delta, per
 * file a common head and tail with a revision stored whole and the bytes
 * between, when that is at most a quarter of the text; a delta's base is
 * always a whole one (reading a revision reads at most two). The newest
 * HISTORY_KEEP revisions are kept, and older ones only while STATE/running
 * names one, an armed `commit confirmed` reverts to one, or a kept one is
 * stored against it. Files are written to a temporary name, fsynced,
 * renamed, and the directory fsynced: a crash never leaves half a revision,
 * and a function that returned 0 has its data on the disk.
 *
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_HISTORY_H
#define HVGATE_APPLIANCE_HISTORY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "policy/diag.h"
#include "policy/policy.h"

#define HISTORY_KEEP 50 /* the issue: the last 50 committed revisions */

struct history_rev {
	unsigned id;
	time_t time;
	uid_t uid;
	char comment[256];
	char source[PATH_MAX];    /* a path, or "git:REPO@REF" */
	char source_rev[48];      /* git commit id, or "" */
	char root[PATH_MAX];      /* the path the compiler was given */
	char hash[20];            /* ruleset hash, hex */
	unsigned previous;        /* the revision that ran when this one was committed */
	unsigned confirm_seconds; /* committed with `confirmed`; 0: plain */
};

int history_store_init(const char *state_dir);

/* Hands out the next revision id, never twice, even across a kill -9: the
 * counter is written at once (not fsynced: the stored revision keeps its id
 * used, and history_remove() makes the counter durable before it removes
 * one; a power cut may only hand out again an id nothing was stored under). */
int history_reserve_id(const char *state_dir, unsigned *id);
/* Stores revision meta->id with the files in `files`; prunes old ones. On
 * failure nothing of the revision is left. */
int history_save(const char *state_dir, const struct history_rev *meta,
		 const struct policy_diags *files);
/* history_save(), stored as the difference to what revision `like` is
 * stored as, when `like_files` are its files (the running revision's text,
 * kept in memory: the commit then reads no stored text; a cheap check of
 * their sizes against the store stands guard) and the difference is small;
 * else whole. like 0: whole. */
int history_save_like(const char *state_dir, const struct history_rev *meta,
		      const struct policy_diags *files, unsigned like,
		      const struct policy_diags *like_files);
/* The revisions present, oldest first (caller frees *v). */
int history_store_list(const char *state_dir, struct history_rev **v, size_t *n);
int history_store_get(const char *state_dir, unsigned id, struct history_rev *out);
/* The highest id ever stored (0 if none); ids never repeat. */
unsigned history_last_id(const char *state_dir);
/* Removes a stored revision (a commit that the kernel then refused). */
void history_remove(const char *state_dir, unsigned id);

/* A stored revision's files, as a struct policy_fs. */
struct history_bundle;
int history_bundle_load(const char *state_dir, unsigned id, struct history_bundle **out);
const struct policy_fs *history_bundle_fs(const struct history_bundle *b);
/* The file revision `id` keeps its text in: "policy.bundle" or "policy.delta". */
const char *history_bundle_name(const char *state_dir, unsigned id);
void history_bundle_free(struct history_bundle *b);

struct history_pending {
	unsigned committed;  /* the revision applied by `commit confirmed` */
	unsigned revert_to;  /* the revision to return to; 0: flush */
	int64_t deadline_ms; /* wall clock (CLOCK_REALTIME), milliseconds */
};
int history_pending_save(const char *state_dir, const struct history_pending *p);
/* -ENOENT when nothing is pending, -EINVAL when the file is corrupt. */
int history_pending_load(const char *state_dir, struct history_pending *p);
int history_pending_clear(const char *state_dir);

/* STATE/running: the revision the operator last put in the kernel (commit,
 * reload, revert), run again at start. -ENOENT: none yet; -EINVAL: corrupt. */
int history_running_save(const char *state_dir, unsigned id);
int history_running_load(const char *state_dir, unsigned *id);

/* STATE/candidate.json and STATE/candidate.bundle: the candidate (its
 * meta without id, and its files), so that it outlives a restart.
 * history_candidate_load: -ENOENT when there is none. */
int history_candidate_save(const char *state_dir, const struct history_rev *meta,
			   const struct policy_diags *files);
int history_candidate_load(const char *state_dir, struct history_rev *meta,
			   struct history_bundle **b);
int history_candidate_clear(const char *state_dir);
/* STATE/lock.json: who holds the configure lock. `start` is the holder's
 * start time (/proc/PID/stat, clock ticks since boot), so that a pid used
 * again by another process is not taken for the holder. */
struct history_lock {
	pid_t pid;
	uid_t uid;
	time_t since;
	unsigned long long start;
};
int history_lock_save(const char *state_dir, const struct history_lock *l);
/* -ENOENT: no lock; -EINVAL: corrupt. */
int history_lock_load(const char *state_dir, struct history_lock *l);
int history_lock_clear(const char *state_dir);
/* Renames STATE/NAME to STATE/NAME.corrupt-TIME (its path in moved_to), so
 * that a corrupt file is kept for a person to look at and not read again. */
int history_quarantine(const char *state_dir, const char *name, char *moved_to, size_t size);

#endif
