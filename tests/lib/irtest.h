/* Shared helpers of the unit tests that compile policy text to the IR
 * (tests/policy/test_lower.c, test_optimize.c, test_tenant.c,
 * tests/nat/test_lower.c): load through the real front end, lower, look
 * things up in the result.
 *
 * One table at a time: irtest_lower() keeps the policy and its diagnostics
 * (in irtest_diags, for tests that look at messages) until irtest_done(). */
#ifndef HVGATE_TESTS_IRTEST_H
#define HVGATE_TESTS_IRTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define IRTEST_FILE "t.hvp" /* the file name every location carries */

extern struct policy_diags irtest_diags;

/* Loads `text` as IRTEST_FILE and lowers it with `o` (NULL: the defaults
 * with the optimizer off, so a test sees lowering's own output). NULL on
 * failure, with the diagnostics printed and kept in irtest_diags. */
struct ir_table *irtest_lower(const char *text, const struct policy_lower_opts *o);

/* Fails the test if `t` is inconsistent (ir_table_validate), then frees it,
 * the policy and the diagnostics. */
void irtest_done(struct ir_table *t);

/* policy_emit_nft() of t as a malloc'd string (the test fails if it fails). */
char *irtest_emit_nft(const struct ir_table *t);

/* The first match on field f / statement of kind k of a rule, or NULL. */
const struct ir_match *irtest_match(const struct ir_rule *r, enum ir_field f);
const struct ir_stmt *irtest_stmt(const struct ir_rule *r, enum ir_stmt_kind k);

/* The set or map named `name`, or NULL. */
const struct ir_set *irtest_set(const struct ir_table *t, const char *name);

/* A u32 value as the IR holds it (host order). */
uint32_t irtest_u32(const struct ir_value *v);

/* "FILE:LINE: COMMENT" of a rule (its policy place: the comment, the
 * kernel id, has no line), in one of four rotating static buffers. */
const char *irtest_where(const struct ir_rule *r);
/* Does the rule's comment, or its "FILE:LINE:", start with prefix? */
bool irtest_rule_is(const struct ir_rule *r, const char *prefix);
/* Rules of chain c (NULL: none) for which irtest_rule_is(prefix). */
size_t irtest_count_comment(const struct ir_chain *c, const char *prefix);

#endif
