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

#include "policy/ir.h"
#include "policy/ir_diff.h"

#define TXN_DELTA_MARK_CHAIN "hvgate_revision"
#define TXN_DELTA_MODE_MAX 192
/* Set in hvgated's environment: every apply is a full replace (the tests'
 * reference, and a way out should a delta ever be wrong). */
#define TXN_DELTA_FULL_ENV "HVGATED_FULL_REPLACE"

/* Adds the (empty) marker chain to a compiled table. */
int txn_delta_mark_add(struct ir_table *ir);
/* Writes revision and hash into the marker chain and the constant table comment. */
void txn_delta_mark_set(struct ir_table *ir, unsigned rev, const char *hash);
/* The marker's comment as the kernel has it, else the table comment; -ENOENT
 * if there is no table. */
int txn_delta_kernel_mark(const char *netns, char *buf, size_t size);

/* The diff from `running` to `cand`, or NULL (and why in `mode`) when the
 * full replace must be used. `mode` gets "incremental (N objects changed)"
 * or "full replace (WHY)". */
struct ir_diff *txn_delta_plan(const struct ir_table *running, const struct ir_table *cand, char *mode,
			       size_t size);

#endif
