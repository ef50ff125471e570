/* Transactions of hvgated: a candidate policy is compiled, compared with
 * the running one, committed (optionally `confirmed N`: reverted unless
 * confirmed within N seconds), and every commit becomes a revision in the
 * history (history.h). Applies go through nftio_apply() guarded against
 * changes by someone else to table inet hvgate since our last apply, which
 * are reported instead of overwritten: when the ruleset generation moved, a
 * digest of our own table (nftio_table_digest()) decides, so that other
 * programs' tables beside ours (libvirt, fail2ban) do not trip the guard;
 * the batch then carries the generation just read, so a change racing the
 * commit is refused by the kernel.
 *
 * The dynamic block lists (sets blocked4 / blocked6, `meta mark . address`
 * with intervals: an entry is a prefix, global over every mark or scoped to
 * a tenant's mark range; and blocked_zone4 / blocked_zone6, `oifname .
 * address`, an entry scoped to a zone being one element per interface
 * pattern of the zone) are part of every ruleset; their elements are read
 * from the kernel before each apply and put into the new batch, so they
 * survive reloads and commits.
 *
 * Error convention: 0 or negative errno, with a message in `err` (several
 * lines for policy diagnostics). Not thread-safe: the daemon's loop only.
 */
#ifndef HVGATE_APPLIANCE_TXN_H
#define HVGATE_APPLIANCE_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "appliance/history.h"
#include "appliance/json.h"
#include "appliance/kernel/nftio.h"
#include "policy/ir_diff.h"
#include "policy/policy.h"
#include "policy/ruleset.h"

#define TXN_HASH_HEX 17 /* 64 bits of SHA-256 in hex, and a NUL */
#define TXN_ERR_MAX  4096
/* `commit confirmed D`: the longest D, one day. */
#define TXN_CONFIRM_MAX_SECONDS 86400u
/* `block ADDR for D`: the longest D. nft set timeouts are u64 ms, but a year
 * is more than any block list needs. */
#define TXN_BLOCK_MAX_SECONDS (366ull * 24 * 3600)

/* One compiled policy. */
struct txn_policy {
	struct policy_diags diags; /* also keeps the text of every file read */
	struct policy *policy;
	struct ir_table *ir;
	struct ir_diff_prints *prints; /* of ir's sets, for the delta (NULL: none) */
	char hash[TXN_HASH_HEX];       /* of the emitted ruleset, without dynamic elements */
	char source[PATH_MAX];         /* what was loaded: a path or "git:REPO@REF" */
	char source_rev[48];           /* git commit id or "" */
	char root[PATH_MAX];           /* the path given to the compiler */
};

struct txn_stats {
	uint64_t applies, apply_errors, reloads, reload_errors, reverts;
	double last_apply_seconds, apply_seconds_total;
};

/* Where the last commit (or other apply) spent its time, in seconds, for
 * the commit reply and the log: storage (revision id, revision files,
 * STATE/running, pending.json), prepare (revision marker, block-list
 * elements carried over), guard (the generation check), plan (the
 * delta: diff, and the kernel handles it uses: handles), kernel (batch built, sent, acked), after
 * (the handles and counter times of the new table after a full replace;
 * after a delta they are settled by txn_settle(), after the reply), routes
 * (tenant policy routing), candidate (0: candidate.json is removed by
 * txn_settle(), after the reply). */
struct txn_phases {
	double storage, prepare, guard, plan, kernel, after, routes, candidate;
	double diff, handles; /* the two parts of plan */
};

/* What `compare` says of the candidate against the running policy, kept
 * from the `load` that computed it (the commit preview reads it from
 * `status` instead of comparing 10,000 rules again). Valid while
 * `running_gen` is the txn's and the candidate is the one it was made for. */
struct txn_changes {
	bool known;
	uint64_t running_gen;
	const struct txn_policy *candidate;
	size_t added, removed, changed, moved;
};

struct txn {
	char state_dir[PATH_MAX];
	const char *netns; /* NULL: the daemon's own namespace */
	struct policy_lower_opts lower;
	struct txn_policy *running;
	/* The policy that ran before the last change of `running`: freed by
	 * the next txn_tick(), after the reply (freeing a large IR took about
	 * a tenth of a second of a one-rule commit). */
	struct txn_policy *retired;
	unsigned running_rev;
	/* The revision whose stored files are running's text (0: not known):
	 * a new revision is stored as the difference to it (history.h). */
	unsigned running_text_rev;
	/* The running policy's generation: moves with every change of `running`
	 * (start, reload, commit, revert of a `commit confirmed`), also when the
	 * same ruleset runs again as a new object. Compare it, not the pointer:
	 * a freed policy's address may come back. 0: nothing has run yet. */
	uint64_t running_gen;
	struct txn_policy *candidate;
	struct txn_changes candidate_changes;
	/* why the candidate set last by txn_rollback is in memory only ("": stored) */
	char candidate_warning[TXN_ERR_MAX];
	bool pending; /* a `commit confirmed` waits for `confirm` */
	struct history_pending pend;
	int64_t deadline_mono_ms; /* pend's deadline on CLOCK_MONOTONIC */
	bool genid_known;
	uint32_t genid; /* after our last own change */
	bool digest_known;
	unsigned char digest[NFTIO_DIGEST_LEN]; /* of table inet hvgate at genid */
	bool digest_pending;                    /* after a delta: read by the next txn_tick() */
	struct txn_stats stats;
	struct txn_phases phases;
	/* How the last apply went: "incremental (N objects changed)" or
	 * "full replace (why)" (appliance/txn_delta.h). */
	char last_apply_mode[192];
	struct txn_delta_handles *handles; /* of the running table's rules, for the next delta */
	struct txn_delta_since *since;     /* when each rule's counters started */
	/* What a commit leaves for after its reply, done by txn_settle() (the
	 * next txn_tick(), the next request or apply, whichever is first): the
	 * committed candidate's files to remove, and after a delta the handles
	 * of the chains it changed and the counter times. `diff` is the delta
	 * that was sent, from `retired` (kept until then) to `running`. */
	struct {
		bool candidate; /* the committed candidate's files to remove */
		struct ir_diff *diff;
		const struct ir_table *ir; /* the table the delta made */
		time_t at;
		double seconds; /* the last settle took */
	} settle;
};

/* Notes the candidate's changes from txn_compare()'s output (an object). */
void txn_note_candidate_changes(struct txn *t, const char *compare_json, size_t len);
/* The noted changes if they still hold for the candidate and the running
 * policy, else NULL. */
const struct txn_changes *txn_candidate_changes(const struct txn *t);

/* Compiles a file or directory, a git ref, or a stored revision. */
int txn_compile_path(const struct txn *t, const char *path, struct txn_policy **out, char *err,
		     size_t errsz);
int txn_compile_git(const struct txn *t, const char *repo, const char *ref, struct txn_policy **out,
		    char *err, size_t errsz);
int txn_compile_rev(const struct txn *t, unsigned rev, struct txn_policy **out, char *err,
		    size_t errsz);
void txn_policy_free(struct txn_policy *p);

/* Writes {"added":[..],"removed":[..],"changed":[..],"moved":[..],
 * "unchanged":N}: rules and NAT rules matched by their label, their text
 * hash (in the same file), then by file and line. Rules are decided by the
 * first match, so order counts: a matched rule whose place among the other
 * matched rules (of its kind) changed is "moved" ({"from","to"}), or, if its
 * text changed too, "changed" with "moved":true; the fewest such rules are
 * named (those off a longest run kept in order). Unchanged: same text, same
 * place in the order.
 * VPN blocks (kind "vpn", id the interface) and their peers (kind "peer",
 * id INTERFACE/PEER) matched by name, their settings as text (public keys
 * abbreviated), a changed one with "fields": the settings that differ. */
void txn_compare(const struct txn_policy *from, const struct txn_policy *to, struct json_buf *out);
/* Line `line` of `file` as the compiler read it for p, blanks trimmed, into
 * out (always terminated; "" if the file or line is not there). */
void txn_source_line(const struct txn_policy *p, const char *file, unsigned line, char *out,
		     size_t size);
/* The whole text of a rule or NAT statement of p (loc, text_len of
 * struct policy_rule) on one line, comments left out. */
void txn_rule_text(const struct txn_policy *p, const struct policy_loc *loc, uint32_t text_len,
		   char *out, size_t size);

int txn_init(struct txn *t, const char *state_dir, const char *netns, int nflog_group);

/* Installs the running policy's tenant routing again (appliance/kernel/route.h):
 * for an interface that a segment names and that appeared, went up or down
 * or went away since. Failures are logged. */
void txn_reroute(struct txn *t);
/* The phases of the last apply as JSON members "NAME_ms": n of an open object. */
void txn_phases_json(const struct txn *t, struct json_buf *b);
void txn_free(struct txn *t);

/* Start-up: re-arm or carry out a persisted revert; otherwise run the
 * revision in STATE/running (the last one committed, reloaded or reverted
 * to); only without one make `p`, the configured policy (may be NULL: it did
 * not compile), the running policy. Ownership of `p` is taken. Applies only
 * if the kernel does not already run the same ruleset; `*applied` says
 * whether the kernel changed. Corrupt state files are logged by name, moved
 * aside and ignored. */
int txn_start(struct txn *t, struct txn_policy *p, const char *why, bool *applied, char *err,
	      size_t errsz);
/* reload: make `p` (owned) running; a no-op in the kernel if unchanged.
 * Like a commit, the revision is stored before the kernel is changed. */
int txn_reload(struct txn *t, struct txn_policy *p, bool *applied, char *err, size_t errsz);

/* Makes p (owned) the candidate, and stores it in the state directory so
 * that it outlives a restart. Negative errno (with a warning in err) when it
 * could not be stored: the candidate is set all the same, in memory only. */
int txn_set_candidate(struct txn *t, struct txn_policy *p, char *err, size_t errsz);
/* At start: the candidate stored by txn_set_candidate, compiled again (one
 * that does not compile any more is dropped, and logged). */
void txn_restore_candidate(struct txn *t);
/* Applies the candidate. confirm_seconds 0: permanent, else at most
 * TXN_CONFIRM_MAX_SECONDS. force: skip the genid guard. The revision (and a
 * pending revert) is stored durably first; if that fails, or the kernel
 * refuses the ruleset, nothing is left of the commit (its id is not used
 * again). */
int txn_commit(struct txn *t, uid_t who, const char *comment, unsigned confirm_seconds, bool force,
	       char *err, size_t errsz);
int txn_confirm(struct txn *t, char *err, size_t errsz);
/* Makes revision `rev` the candidate. */
int txn_rollback(struct txn *t, unsigned rev, char *err, size_t errsz);
/* Reverts if a pending deadline has passed; returns 1 if it reverted. */
int txn_tick(struct txn *t, char *err, size_t errsz);
/* Finishes what the last commit left for after its reply (t->settle): the
 * committed candidate's files removed, and after a delta the kernel handles
 * of the chains it changed and when each rule's counters started. Does
 * nothing if nothing is left. The daemon calls it before every request. */
void txn_settle(struct txn *t);
/* Milliseconds until a pending revert (CLOCK_MONOTONIC); 0 if none. */
int64_t txn_pending_left_ms(const struct txn *t);

/* Block list changes (also keep the genid guard in step); nftio.h for the
 * entry (e->timeout_ms for txn_block). */
int txn_block(struct txn *t, const struct nftio_set_elem *e);
int txn_unblock(struct txn *t, const struct nftio_set_elem *e);
/* A zone-scoped entry (`block ADDR zone Z`): e's address and timeout for
 * zone index `zone` of the running policy, one element per interface
 * pattern of the zone in the zone lists; all or nothing (-ENXIO: the zone
 * has no interface). */
int txn_block_zone(struct txn *t, size_t zone, const struct nftio_set_elem *e);
int txn_unblock_zone(struct txn *t, size_t zone, const struct nftio_set_elem *e);
/* The zone (index in the running policy) of a zone-list element, or
 * POLICY_NONE when no zone's pattern gives its interface range. */
size_t txn_block_zone_of(const struct txn *t, const struct nftio_set_elem *e);

#endif
