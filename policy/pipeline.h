/* policy_compile(): the whole pipeline that `apply` runs, short of the
 * kernel, as ONE function that `hvgate check` and `hvgate compile` share (so
 * they can never disagree):
 *
 *   load (lex, parse, includes, check) -> lower -> optimize
 *     -> verify every emitted rule (policy_verify_rules)
 *     -> nft text (policy_emit_nft)  and  libnftnl batch (policy_emit_nftnl)
 *
 * A policy that passes has been through both backends; what remains is the
 * kernel itself (`hvgate apply --check`).
 *
 * Ownership: a struct policy_compiled owns its policy, table and text;
 * policy_compiled_free(). Locations point into the caller's struct
 * policy_diags, which must outlive it. Error convention: libhvpolicy's.
 */
#ifndef HVGATE_POLICY_PIPELINE_H
#define HVGATE_POLICY_PIPELINE_H

#include <stddef.h>

#include "policy/optimize.h"
#include "policy/policy.h"

/* Wall and CPU time at the end of a stage (for `compile --time`). */
struct policy_stamp {
	double wall, cpu;
};

enum policy_stage {
	POLICY_STAGE_START,
	POLICY_STAGE_LOAD,
	POLICY_STAGE_LOWER,
	POLICY_STAGE_EMIT,
	POLICY_STAGE_COUNT
};

struct policy_compiled {
	struct policy *policy;
	struct ir_table *table;
	struct policy_optimize_report report; /* when opts->optimize */
	char *nft_text;                       /* the nft script (NUL-terminated) */
	size_t nft_len;
	size_t n_messages; /* netlink messages of the batch */
	struct policy_stamp stamps[POLICY_STAGE_COUNT];
};

/* Runs the pipeline on the policy at `path` (as policy_load()). Returns 0
 * with everything in *out, or -1 with errors in `d` (and *out empty). */
int policy_compile(const char *path, const struct policy_lower_opts *o, struct policy_compiled *out,
		   struct policy_diags *d);

/* The same from a policy already loaded (tests, policy_load_text()); takes
 * ownership of `p` (NULL: fails at once). */
int policy_compile_policy(struct policy *p, const struct policy_lower_opts *o,
			  struct policy_compiled *out, struct policy_diags *d);

void policy_compiled_free(struct policy_compiled *c);

/* Checks every rule of `t` for its family and expression types: an
 * `ip daddr` in a rule that matches `meta nfproto ipv6`, a NAT to an address
 * of the other family, a lookup in a set of other key types, a value of the
 * wrong length; jumps to chains that do not exist, anonymous sets that do
 * not serve exactly one rule. Errors are reported at the policy line behind
 * the rule. Linear in the size of the table. Returns 0 or -1. */
int policy_verify_rules(const struct ir_table *t, struct policy_diags *d);

#endif
