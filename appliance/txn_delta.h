/* txn_delta: the incremental commit of hvgated. The running revision's IR
 * (struct txn.running) is what the kernel has; a new revision is sent as
 * the delta to it (policy/ir_diff.h, policy_emit_nftnl_delta()) in one
 * guarded batch, and the full replace of table inet hvgate stays the
 * fallback: nothing running, a table changed by someone else, a delta
 * larger than the table, or a delta the kernel refused.
 *
 * The revision marker: the kernel cannot change a table's comment, so the
 * revision and hash ("hvgate rev=N hash=H") live in the comment of an empty
 * regular chain, TXN_DELTA_MARK_CHAIN, which every apply makes again; the
 * table's own comment is the constant "hvgate". Start-up reads the marker
 * to tell whether the kernel already runs a revision (the table comment of
 * an older hvgated is still understood).
 *
 * Error convention: 0 or negative errno. The daemon's loop only.
 */
#ifndef HVGATE_APPLIANCE_TXN_DELTA_H
#define HVGATE_APPLIANCE_TXN_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "policy/ir.h"
#include "policy/ir_diff.h"

#define TXN_DELTA_MARK_CHAIN "hvgate_revision"
#define TXN_DELTA_MODE_MAX   192
/* Set in hvgated's environment: every apply is a full replace (the tests'
 * reference, and a way out should a delta ever be wrong). */
#define TXN_DELTA_FULL_ENV "HVGATED_FULL_REPLACE"

/* Adds the (empty) marker chain to a compiled table. */
int txn_delta_mark_add(struct ir_table *ir);
/* The optimizer gives large hash sets their element count as `size`, which
 * the kernel also takes as the most they may hold: one element more would
 * have to make the set again. The daemon rounds it up to a power of two, so
 * that sets grow by deltas (both ways of applying see the same size). */
void txn_delta_size_headroom(struct ir_table *ir);
/* Writes revision and hash into the marker chain and the constant table comment. */
void txn_delta_mark_set(struct ir_table *ir, unsigned rev, const char *hash);
/* The marker's comment as the kernel has it, else the table comment; -ENOENT
 * if there is no table. */
int txn_delta_kernel_mark(const char *netns, char *buf, size_t size);

/* The kernel handles of a table's rules, by IR chain and rule index, read
 * back after each apply so that the next delta can delete and place single
 * rules (policy/ir_diff.h). A row is NULL where the kernel's chain did not
 * have exactly the IR's number of rules. */
struct txn_delta_handles {
	const struct ir_table *of; /* the table they belong to */
	size_t n_chains;
	uint64_t **rule;
};

/* Reads the handles of `t` as the kernel has them after an apply: with
 * `diff` (the delta that was sent, from the table `prev` belongs to) only
 * the chains it changed are read and the others copied from `prev`;
 * without, every rule of the table (one dump). */
int txn_delta_handles_read(const char *netns, const struct ir_table *t, const struct ir_diff *diff,
			   const struct txn_delta_handles *prev, struct txn_delta_handles **out);
void txn_delta_handles_free(struct txn_delta_handles *h);
/* Before a delta from `running`: makes *h the handles of `running` (read
 * whole if they belong to another table, e.g. after a restart) and hands
 * them to `diff` (may be NULL). Without handles the delta flushes changed
 * chains instead. */
void txn_delta_handles_use(const char *netns, const struct ir_table *running,
			   struct txn_delta_handles **h, struct ir_diff *diff);
/* After an apply of `t` (by `diff`, or whole when NULL): *h becomes the
 * handles of `t` (NULL if they cannot be read). */
void txn_delta_handles_after(const char *netns, const struct ir_table *t,
			     struct txn_delta_handles **h, const struct ir_diff *diff);

/* When the counters of each policy rule (by rule comment, the policy rule
 * id) started: the apply that last sent one of its kernel rules. */
struct txn_delta_since;
/* After an apply of `t` at time `now` (by `diff`, whose handles decided
 * which rules were sent, or whole when NULL): *s describes `t`. On ENOMEM
 * *s is dropped (times unknown). */
void txn_delta_since_update(struct txn_delta_since **s, const struct ir_table *t,
			    const struct ir_diff *diff, time_t now);
/* The start of the counters of rule `id`; 0: unknown. */
time_t txn_delta_since_get(const struct txn_delta_since *s, const char *id);
void txn_delta_since_free(struct txn_delta_since *s);

/* The diff from `running` to `cand` (with their set fingerprints, each may
 * be NULL: policy/ir_diff.h), or NULL (and why in `mode`) when the
 * full replace must be used. `mode` gets "incremental (N objects changed)"
 * or "full replace (WHY)". */
struct ir_diff *txn_delta_plan(const struct ir_table *running,
			       const struct ir_diff_prints *running_prints,
			       const struct ir_table *cand,
			       const struct ir_diff_prints *cand_prints, char *mode, size_t size);

#endif
