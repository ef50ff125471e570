/* The classification stage of the optimizer (policy/optimize.c calls it):
 * a run of rules of a regular chain, of any mix of shapes, becomes at most
 * four lookups in verdict maps over concatenated ranges
 *
 *   meta nfproto ipv4 ip saddr . ip daddr . meta l4proto . th dport vmap @classify_N
 *   meta nfproto ipv4 ip saddr . ip daddr . meta l4proto vmap @classify_M
 *   (the same for ipv6)
 *
 * (the kernel serves them with its pipapo set type). The header space is cut
 * into disjoint boxes, each labelled with the rules that cover it in policy
 * order up to the first one that decides there; an element goes to a small
 * chain holding those rules' counters, logs, limits and verdicts (matches
 * the boxes cannot express stay in that chain). First match, every rule's
 * counter and comment are kept. A run whose boxes would exceed the bound is
 * cut in halves, and a piece that still would stays as it was (linear, for
 * the dispatch pass). docs/ruleset.md describes the choice and its limits.
 */
#ifndef HVGATE_POLICY_CLASSIFY_H
#define HVGATE_POLICY_CLASSIFY_H

#include "policy/ir.h"
#include "policy/optimize.h"

/* Runs of fewer rules are left as they are: a few linear rules cost less
 * than four lookups and a jump. */
#define CLASSIFY_MIN_RUN 8

/* Address lists of this many elements or more stay shared sets instead of
 * being cut into a box per address (classify.c, "shared address lists"). */
#define CLASSIFY_LIST_SHARE 32

/* Bits of the content hash in the names the stage makes (64). Tests only
 * lower it, to make names collide and try their disambiguation. */
extern unsigned policy_classify_name_bits;

/* The element bound of a run: its lookups may have at most per_box
 * elements per box its rules bring (a rule, or one element of its host
 * list) plus base; a run past it is cut in halves, a half still past it
 * stays linear, and the report names the chain (classify_fallbacks).
 * Tests only lower them. */
extern unsigned policy_classify_repl_per_box, policy_classify_repl_base;

/* Lookups in the index of pieces so far (a count for the tests: building
 * must cost a few per box, whatever the port widths). */
extern unsigned long long policy_classify_index_probes;

/* Rewrites the regular chains of t; adds to the classify_* counters of r.
 * Returns 0 or -1 on ENOMEM. */
int policy_classify(struct ir_table *t, struct policy_optimize_report *r);

/* The chains that fell back (over the element bound), one line each, for
 * `compile --emit summary`; nothing when none did. */
void policy_classify_report_print(const struct policy_optimize_report *r, FILE *out);

#endif
