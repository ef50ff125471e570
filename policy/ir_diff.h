/* ir_diff: what has to change in the kernel to turn the running IR table
 * into a candidate, object by object.
 *
 * Granularity: rules. In a chain that stays, the rules that are the same
 * and in the same order stay; the others are deleted by their kernel handle
 * and added at their place (struct ir_diff_rules). The IR has no handles:
 * the caller reads them back from the kernel after each apply (only those
 * of the chains it changed) and hands them over in `handles`. Without them
 * a changed chain is flushed and filled again, alone. A rule that uses a
 * set that is made again is deleted and added again (it must go before the
 * set can).
 *
 * Named sets are matched by name; a set whose definition (key, flags, data,
 * timeout, size) is the same gets element deltas (elements compared by key,
 * end, data and, except for IR_SET_DYNAMIC sets, timeout); a set whose
 * definition changed is deleted and made again, and every rule that uses it
 * with it. Anonymous sets belong to their rule and compare as part of it. A
 * regular chain whose comment changed (the kernel cannot change it) is made
 * again, and every rule and map element that jumps to it with it. A base
 * chain whose hook, type, priority or comment changed cannot be changed in
 * place: the diff then asks for the full replace, as it does when the delta
 * has more objects than the candidate table.
 *
 * Ownership: the diff is owned by the caller (ir_diff_free()); it keeps
 * indices into both tables, which must outlive it unchanged.
 * Error convention: 0, or -ENOMEM.
 */
#ifndef HVGATE_POLICY_IR_DIFF_H
#define HVGATE_POLICY_IR_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/ir.h"

#define IR_DIFF_NONE ((size_t)-1)

enum ir_diff_op {
	IR_DIFF_KEEP,     /* untouched */
	IR_DIFF_ADD,      /* new: created with its rules / elements */
	IR_DIFF_REPLACE,  /* chain: flushed, rules added again; set: element delta */
	IR_DIFF_RECREATE, /* deleted and created again in the same batch */
};

struct ir_diff_elems {
	size_t *add; /* indices into the candidate set's elements */
	size_t n_add;
	size_t *del; /* indices into the running set's elements */
	size_t n_del;
};

/* The rules of a chain that stays, by position: which running rules go
 * (deleted by their kernel handle) and which candidate rules come (each
 * inserted after the rule before it). Rules of both that are the same and
 * in the same order (a longest common subsequence) stay untouched, with
 * their counters. */
struct ir_diff_rules {
	bool planned; /* false: flush the chain and add its rules again */
	size_t *del;  /* running rule indices */
	size_t n_del;
	size_t *add; /* candidate rule indices, ascending */
	size_t n_add;
	size_t *old_of; /* per candidate rule: the running rule it is, or IR_DIFF_NONE */
};

struct ir_diff {
	bool full;     /* the delta cannot (or should not) be sent: replace the table */
	char why[160]; /* for `full`: the reason, for the commit reply */
	/* Per candidate chain: op, and its index in the running table. */
	enum ir_diff_op *chain_op;
	size_t *chain_old;
	bool *chain_policy; /* base chain whose policy changed: NEWCHAIN updates it */
	struct ir_diff_rules *chain_rules; /* per candidate chain (REPLACE) */
	/* Set by the caller before emitting: the kernel handles of the running
	 * table's rules, handles[running chain][rule]; NULL (or a NULL row):
	 * unknown, and a changed chain is flushed and filled again instead. */
	const uint64_t *const *handles;
	/* Regular chains made again (their comment changed): whatever jumps
	 * to them (rules, map elements) is deleted and added again with them. */
	const char **recreated;
	size_t n_recreated;
	/* Running chains that the candidate has not: deleted. */
	size_t *chain_del;
	size_t n_chain_del;
	/* Per candidate set (anonymous ones stay KEEP: their rule carries them). */
	enum ir_diff_op *set_op;
	size_t *set_old;
	struct ir_diff_elems *set_elems; /* REPLACE */
	size_t n_objects_sets;           /* entries of set_op, set_old, set_elems */
	size_t n_objects_chains;         /* entries of chain_op, chain_old, chain_rules */
	size_t n_sets_recreated;         /* of set_op: RECREATE */
	size_t *set_del;                 /* running named sets that the candidate has not */
	size_t n_set_del;
	/* Counts for replies and the fallback decision. */
	size_t n_changed; /* chains, sets touched, plus rules and elements sent or deleted */
	size_t n_objects; /* chains, sets, rules and elements of the candidate */
	size_t n_chains_changed, n_rules_sent, n_sets_changed, n_elems_added, n_elems_deleted;
};

/* Computes the diff from `running` to `cand`. Returns 0 with *out (maybe
 * marked full), or -ENOMEM. */
int ir_diff_compute(const struct ir_table *running, const struct ir_table *cand,
		    struct ir_diff **out);

/* Fingerprints of a table's named sets and chains, made once after
 * compiling so that a diff does not read every element and rule of both
 * tables again: a 64-bit hash of each element (of what elem_equal()
 * compares) and one of each whole set; a hash of each rule
 * (ir_diff_rule_hash()) and one of each chain's rules, so that an unchanged
 * chain costs O(1) plus a look at its rules' set references, and two rules
 * are compared by 8 bytes (the same chance of a collision as below).
 * With them a set whose fingerprint is the same costs O(1), and a changed
 * one a scan of 8 bytes per element for the unchanged head and tail. Two
 * different elements with the same 64-bit hash at the same place would be
 * taken for the same (a chance of about 2^-64 per pair compared).
 *
 * Dynamic sets (IR_SET_DYNAMIC: the daemon fills them just before each
 * apply) get none. A fingerprint counts only while its set has the
 * elements array and count it was made from (a chain's: its rules array
 * and count); anything that changes a fingerprinted set's elements or a
 * chain's rules in place must make the prints again. The
 * prints belong to the caller and do not own the table. */
struct ir_diff_prints;
int ir_diff_prints_make(const struct ir_table *t, struct ir_diff_prints **out);
void ir_diff_prints_free(struct ir_diff_prints *p);
/* ir_diff_compute() with the prints of either table (each may be NULL). */
int ir_diff_compute_printed(const struct ir_table *running,
			    const struct ir_diff_prints *running_prints,
			    const struct ir_table *cand, const struct ir_diff_prints *cand_prints,
			    struct ir_diff **out);
void ir_diff_free(struct ir_diff *d);

/* Whether the diff changes nothing at all. */
bool ir_diff_empty(const struct ir_diff *d);

/* Whether two rules are the same kernel rule: named sets compared by name,
 * anonymous ones by content; the policy location does not count. */
bool ir_diff_rule_equal(const struct ir_table *ta, const struct ir_rule *a,
			const struct ir_table *tb, const struct ir_rule *b);

/* Hashes rule r of t into h (FNV-1a 64, policy/hash.h) and returns the
 * result: rules that ir_diff_rule_equal() finds the same hash the same
 * (named sets by name, anonymous ones by content), whatever their tables
 * and set indices. Names made from it stay the same across compiles. */
uint64_t ir_diff_rule_hash(const struct ir_table *t, const struct ir_rule *r, uint64_t h);

#endif
