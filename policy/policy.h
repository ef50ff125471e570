/* libhvpolicy: the policy language compiler.
 *
 *   policy_load()    read files, lex, parse, resolve includes, check
 *   policy_lower()   lower the checked policy to the IR and optimize it
 *   policy_emit_nft()    IR -> nft text
 *   policy_emit_nftnl()  IR -> one libnftnl/libmnl batch (policy/nftnl.h)
 *
 * Nothing in this library talks to the kernel, and nothing in it calls nat/,
 * vpn/ or appliance/ (NAT lowering comes in as policy_lower_opts.nat_lower).
 * Error convention: 0 / -1 (or NULL) with diagnostics in the caller's struct
 * policy_diags (policy/diag.h). Exceptions, each stated in its header: the
 * evaluator (eval.h, eval_ct.h) and ir_diff.h return 0 or -ENOMEM;
 * policy_eval_parse_packet() a message and a column; the file hooks of
 * struct policy_fs a negative errno.
 *
 * What lives in policy/: lexer.c, parser.c, ast.c (text -> AST), load.c
 * (files, includes), checker.c, services.c, isolation.c, nat_shadow.c,
 * shadow.c, suggest.c (AST -> checked struct policy, model.h), lower.c and
 * tenant.c (-> IR, ir.h, built with ir_build.h; ir_equal.c compares IR
 * objects), optimize.c, verify.c, ir_diff.c (running table -> candidate),
 * emit_nft.c and emit_nftnl.c (the two backends), pipeline.c (all of it
 * short of the kernel); model.c the checked policy's shared semantics
 * (defaults and rules of a zone pair, address overlap; protocol names in
 * services.c); ruleset.h names the ruleset's objects; diag.c the
 * diagnostics; hash.h, hmap.h and grow.h are the shared FNV-1a, hash index
 * and array growth.
 */
#ifndef HVGATE_POLICY_POLICY_H
#define HVGATE_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "policy/diag.h"
#include "policy/ir.h"
#include "policy/model.h"

/* Reads the policy at `path` (a file, or a directory whose *.hvp files are
 * read in name order), follows includes, and checks it. Returns NULL with
 * errors in `d` if anything is wrong. Locations in the result point into `d`,
 * which must outlive the policy. */
struct policy *policy_load(const char *path, struct policy_diags *d);

/* Same, from text in memory (tests, fuzzing, git blobs). `name` is the file
 * name used in locations; includes are resolved relative to `base_dir`
 * (NULL: includes are errors). */
struct policy *policy_load_text(const char *name, const char *text, size_t len,
				const char *base_dir, struct policy_diags *d);

/* Where policy files come from: the real file system (NULL), or something
 * else, such as a git tree read by the daemon. `read` returns 0 and a
 * malloc'd NUL-terminated text, or -errno (-EINVAL: not a regular file,
 * such as a FIFO, which the real file system refuses without opening it
 * for good). `glob` expands a pattern (an
 * include of `*.hvp` in a folder; for a directory source, every `*.hvp` of
 * DIR) into sorted malloc'd paths; it returns the count or -errno. Paths use
 * '/'. */
struct policy_fs {
	void *ctx;
	int (*read)(void *ctx, const char *path, char **text, size_t *len);
	int (*glob)(void *ctx, const char *pattern, char ***paths);
	int (*is_dir)(void *ctx, const char *path); /* 1, 0, or -errno */
};

/* policy_load() through `fs` (NULL: the real file system). */
struct policy *policy_load_fs(const char *path, const struct policy_fs *fs, struct policy_diags *d);

/* The NAT lowering stage. It lives above policy/ (nat_lower() in nat/nat.h)
 * and policy/ never calls up: the caller of policy_lower() hands it in.
 * It fills `t`'s nat chains for p->nats; 0, or -1 with errors in `d`. */
typedef int (*policy_nat_lower_fn)(const struct policy *p, struct ir_table *t,
				   struct policy_diags *d);

struct policy_lower_opts {
	int nflog_group;        /* group for `log` rules; -1: kernel log */
	int queue_num;          /* first NFQUEUE for `inspect`; -1: inspect off */
	unsigned queue_count;   /* queues queue_num .. + queue_count - 1, a flow always on
				 * the same one (one per fast-path worker); 0 counts as 1.
				 * How the kernel is told to queue (the nft queue expression
				 * or the xt NFQUEUE target) is not the IR's business:
				 * nftio_apply() probes the kernel for it */
	bool queue_fail_closed; /* queue without bypass: no listener, no passage */
	bool optimize;          /* run the optimizer (default true) */
	/* NAT lowering (default NULL: a policy with `nat` statements is
	 * refused rather than lowered without them). */
	policy_nat_lower_fn nat_lower;
};

void policy_lower_opts_default(struct policy_lower_opts *o);

/* Builds the IR of `p`. Returns NULL with errors in `d`. */
struct ir_table *policy_lower(const struct policy *p, const struct policy_lower_opts *o,
			      struct policy_diags *d);

/* The checks of the lowering that concern the policy, not the IR: zones
 * whose interfaces overlap, the queue numbers that inspect rules need, the
 * warnings about inspection that is off. What policy_lower() reports first,
 * without building anything (for `hvgate explain`, which evaluates the
 * checked policy and needs no ruleset). NAT has its own: nat_check().
 * Returns 0, or -1 with errors in `d`. */
int policy_lower_check(const struct policy *p, const struct policy_lower_opts *o,
		       struct policy_diags *d);

/* Writes an nft script that replaces table inet hvgate atomically:
 * "table inet hvgate; delete table inet hvgate; table inet hvgate { ... }". */
int policy_emit_nft(const struct ir_table *t, FILE *out);

#endif
