/* ir_diff: what has to change in the kernel to turn the running IR table
 * into a candidate, object by object.
 *
 * Granularity (why a chain and not a rule): a changed chain is flushed and
 * its rules are added again, alone. Changing single rules needs the kernel's
 * rule handles of the running table, which the IR does not have; reading
 * them back after every apply costs a dump of every rule (31,000 for the
 * large benchmark policy), and a stale handle would delete the wrong rule.
 * The optimizer splits zone pairs into short per-rule chains, so a chain is
 * usually a few rules; a flush keeps everything else (other chains' counters,
 * sets and their elements, element timeouts, conntrack) untouched.
 *
 * Named sets are matched by name; a set whose definition (key, flags, data,
 * timeout, size) is the same gets element deltas (elements compared by key,
 * end, data and, except for IR_SET_DYNAMIC sets, timeout); a set whose
 * definition changed is deleted and made again, and every chain with a rule
 * that uses it is replaced with it. Anonymous sets belong to their rule and
 * compare as part of it. A chain whose hook, type or priority changed cannot
 * be changed in place: the diff then asks for the full replace, as it does
 * when the delta has more objects than the candidate table.
 *
 * Ownership: the diff is owned by the caller (ir_diff_free()); it keeps
 * indices into both tables, which must outlive it unchanged.
 * Error convention: 0, or -ENOMEM.
 */
#ifndef HVGATE_POLICY_IR_DIFF_H
#define HVGATE_POLICY_IR_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/ir.h"

#define IR_DIFF_NONE ((size_t)-1)

enum ir_diff_op {
	IR_DIFF_KEEP,	   /* untouched */
	IR_DIFF_ADD,	   /* new: created with its rules / elements */
	IR_DIFF_REPLACE,   /* chain: flushed, rules added again; set: element delta */
	IR_DIFF_RECREATE,  /* deleted and created again in the same batch */
};

struct ir_diff_elems {
	size_t *add; /* indices into the candidate set's elements */
	size_t n_add;
	size_t *del; /* indices into the running set's elements */
	size_t n_del;
};

struct ir_diff {
	bool full;	 /* the delta cannot (or should not) be sent: replace the table */
	char why[160];	 /* for `full`: the reason, for the commit reply */
	/* Per candidate chain: op, and its index in the running table. */
	enum ir_diff_op *chain_op;
	size_t *chain_old;
	bool *chain_policy; /* base chain whose policy changed: NEWCHAIN updates it */
	/* Running chains that the candidate has not: deleted. */
	size_t *chain_del;
	size_t n_chain_del;
	/* Per candidate set (anonymous ones stay KEEP: their rule carries them). */
	enum ir_diff_op *set_op;
	size_t *set_old;
	struct ir_diff_elems *set_elems; /* REPLACE */
	size_t n_objects_sets; /* entries of set_op, set_old, set_elems */
	size_t *set_del; /* running named sets that the candidate has not */
	size_t n_set_del;
	/* Counts for replies and the fallback decision. */
	size_t n_changed;  /* chains, sets touched, plus rules and elements sent or deleted */
	size_t n_objects;  /* chains, sets, rules and elements of the candidate */
	size_t n_chains_changed, n_rules_sent, n_sets_changed, n_elems_added, n_elems_deleted;
};

/* Computes the diff from `running` to `cand`. Returns 0 with *out (maybe
 * marked full), or -ENOMEM. */
int ir_diff_compute(const struct ir_table *running, const struct ir_table *cand, struct ir_diff **out);
void ir_diff_free(struct ir_diff *d);

/* Whether the diff changes nothing at all. */
bool ir_diff_empty(const struct ir_diff *d);

/* Whether two rules are the same kernel rule: named sets compared by name,
 * anonymous ones by content; the policy location does not count. */
bool ir_diff_rule_equal(const struct ir_table *ta, const struct ir_rule *a, const struct ir_table *tb,
			const struct ir_rule *b);

#endif
