/* The optimizer: a named pass over the IR (policy_optimize), in the spirit
 * of pfctl_optimize.c. It never changes what the ruleset decides for any
 * packet, nor which rule comment counts it; it changes how many rules and
 * lookups a packet costs. docs/ruleset.md lists the passes.
 */
#ifndef HVGATE_POLICY_OPTIMIZE_H
#define HVGATE_POLICY_OPTIMIZE_H

#include <stddef.h>
#include <stdio.h>

#include "policy/diag.h"
#include "policy/ir.h"

/* What the optimizer did, for `hvgate compile --emit summary`. */
struct policy_optimize_report {
	size_t rules_before, rules_after;
	size_t rules_merged;      /* rules folded into another rule's set (same policy rule) */
	size_t rules_deduped;     /* identical to an earlier rule of the same chain */
	size_t rules_unreachable; /* after an unconditional verdict */
	size_t runs_dispatched;   /* runs of exact-match rules turned into a verdict map */
	size_t rules_dispatched;  /* rules in those runs */
	size_t sets_named;        /* anonymous address/port sets made named */
	size_t sets_shared;       /* named sets that turned out identical to another */
	size_t sets_inlined;      /* sets of one element turned into a plain compare */
	size_t chains;
	/* classification (policy/classify.h) */
	size_t runs_classified;  /* runs of rules made into concatenated-range maps */
	size_t rules_classified; /* rules in those runs */
	size_t runs_kept_linear; /* runs (or halves) over the bound, left as they were */
	size_t classify_maps, classify_elems, classify_chains;
	size_t classify_bytes; /* estimated kernel memory of those maps and chains */
	/* shared address lists (policy/classify.h): interval maps made from
	 * segments of list rules, their elements, and segments kept as rules
	 * over the bound */
	size_t classify_lists, classify_list_elems, classify_lists_linear;
	/* chains whose runs (or halves) would pass a bound of policy/classify.c
	 * (pieces, elements: replication, work): cut in halves or kept linear; the
	 * first POLICY_FALLBACKS_SHOWN are named (policy_classify_report_print) */
	size_t classify_fallbacks;
	struct policy_classify_fallback {
		char chain[64];
		size_t rules, elems, bound; /* of the first run refused (elems: counted
					     * until past the bound) */
		size_t refused;             /* runs and halves refused */
		int why;                    /* 1 pieces, 2 elements, 3 work */
	} fallback[8];
};

/* An interval of one field's values that rule `rule` (its position: the
 * lowest wins) accepts. */
struct policy_span {
	struct ir_value lo, hi;
	size_t rule;
};

/* Fills interval verdict map s (empty, one key field) from spans (sorted
 * here, in place) so that every value goes to the first rule that accepts
 * it: pieces cut at every edge, each `goto` the chain
 * t->chains[targets[rule]], neighbours of one rule joined. Returns 0 or -1
 * on ENOMEM. */
int policy_first_match_map(const struct ir_table *t, struct ir_set *s, struct policy_span *spans,
			   size_t n, const size_t *targets);

/* Bits of the content hash in the names the passes make (rule_H,
 * dispatch_H, addr4_H, ...; 64). Tests only lower it, to make names collide
 * and try their disambiguation. */
extern unsigned policy_optimize_name_bits;

/* Rewrites t in place. `r` may be NULL. Returns 0, or -1 with an error in d
 * (only on ENOMEM). */
int policy_optimize(struct ir_table *t, struct policy_optimize_report *r, struct policy_diags *d);

/* Prints the report as a few lines of "optimizer: ..." text. */
void policy_optimize_report_print(const struct policy_optimize_report *r, FILE *out);

#endif
