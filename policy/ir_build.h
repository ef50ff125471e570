/* Builders of IR objects, for the passes that make them: lowering
 * (policy/lower.c), the tenant pass (policy/tenant.c), NAT lowering
 * (nat/lower.c) and the daemon's block lists (appliance/txn.c). Each adds
 * one object and fills the fields every caller fills; the IR itself is
 * policy/ir.h.
 *
 * Error convention: a pointer to the new object (an index for a set), or
 * NULL ((size_t)-1) when
 * memory ran out (the IR then holds what was added so far; the caller frees
 * the table). Pointers stay valid until the next add of the same kind.
 */
#ifndef HVGATE_POLICY_IR_BUILD_H
#define HVGATE_POLICY_IR_BUILD_H

#include <stddef.h>

#include "policy/ir.h"
#include "policy/model.h"

/* A base chain of table `t`: hook, type, priority and policy (verdict when
 * no rule decides). */
struct ir_chain *ir_build_base_chain(struct ir_table *t, const char *name, enum ir_hook hook,
				     enum ir_chain_type type, int prio,
				     enum ir_verdict_kind policy);

/* A rule at the end of chain `chain` (looked up by name: adding chains moves
 * them), with `comment` (NULL: none). NULL also when there is no such chain. */
struct ir_rule *ir_build_rule(struct ir_table *t, const char *chain, const char *comment);

/* A rule at the end of chain `c`, with `comment` (NULL: none) and the
 * location of the policy statement it lowers (NULL: none). */
struct ir_rule *ir_build_chain_rule(struct ir_chain *c, const char *comment,
				    const struct policy_loc *loc);

/* `f op v` (IR_M_CMP). */
struct ir_match *ir_build_cmp(struct ir_rule *r, enum ir_field f, struct ir_value v,
			      enum ir_cmp_op op);

/* `f` within lo .. hi: a compare when they are equal (IR_M_CMP), a prefix
 * when the range is one and f is an address (IR_M_PREFIX), else a range
 * (IR_M_RANGE). */
struct ir_match *ir_build_range(struct ir_rule *r, enum ir_field f, struct ir_value lo,
				struct ir_value hi);

/* The concatenation of the `n` fields `f` looked up in set index `set`
 * (IR_OP_NEQ: not in it). */
struct ir_match *ir_build_lookup(struct ir_rule *r, const enum ir_field *f, size_t n, size_t set,
				 enum ir_cmp_op op);

/* A statement of kind `k`, otherwise zeroed. */
struct ir_stmt *ir_build_stmt(struct ir_rule *r, enum ir_stmt_kind k);

/* A set (or map) named `name` keyed by the concatenation of the `n_key`
 * fields `key`, with `flags` (IR_SET_*) and `data`, without elements: its
 * index, or (size_t)-1 on ENOMEM. */
size_t ir_build_set(struct ir_table *t, const char *name, const enum ir_field *key, size_t n_key,
		    uint32_t flags, enum ir_set_data data);

/* The concatenation of the `n` fields `f` looked up in verdict map index
 * `set` (IR_S_VMAP). */
struct ir_stmt *ir_build_vmap(struct ir_rule *r, const enum ir_field *f, size_t n, size_t set);

/* `target set f map @set` (IR_S_SET_FROM_MAP: ct zone from iifname ...). */
struct ir_stmt *ir_build_set_from_map(struct ir_rule *r, enum ir_field target, enum ir_field f,
				      size_t set);

/* `target set v` (IR_S_SET_VALUE: meta mark, ct mark, ct zone ...). */
struct ir_stmt *ir_build_set_value(struct ir_rule *r, enum ir_field target, struct ir_value v);

/* The index of set `name` in `t`, or (size_t)-1. */
size_t ir_build_set_find(const struct ir_table *t, const char *name);

/* The inclusive range of a policy address (prefix or range) as IR values
 * of its family's length: the prefix's host bits cleared in *lo, set in
 * *hi. */
void ir_build_addr_range(const struct policy_addr *a, struct ir_value *lo, struct ir_value *hi);

#endif
