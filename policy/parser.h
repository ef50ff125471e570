/* The policy language parser: tokens of one file -> statements appended to a
 * struct policy_ast.
 *
 * Syntax errors are reported into the diagnostics and the parser resumes at
 * the next statement keyword, so one pass reports every broken statement.
 * Values that parse but are wrong (a CIDR with host bits set, a port above
 * 65535, a bad regular expression) are reported too and mark the statement
 * `broken`; the checker then leaves it alone instead of adding noise.
 *
 * `include "PATTERN"` is handed to the caller's callback (policy/load.c
 * resolves it relative to the including file), which parses the files into
 * the same tree in the scope of the include.
 */
#ifndef HVGATE_POLICY_PARSER_H
#define HVGATE_POLICY_PARSER_H

#include <stddef.h>

#include "policy/ast.h"
#include "policy/diag.h"

struct policy_parse_include {
	/* Returns 0, or -1 with diagnostics. `loc` is the include's pattern. */
	int (*include)(void *ctx, const char *pattern, const struct policy_loc *loc, size_t scope,
		       struct policy_ast *ast);
	void *ctx;
};

/* Parses `text` (named `file` in locations; `file` must outlive the AST, so
 * pass the pointer from policy_diags_add_file) in `scope` (POLICY_NONE or a
 * tenant index). Returns 0, or -1 if any error was reported. */
int policy_parse(struct policy_ast *ast, const char *file, const char *text, size_t len,
		 size_t scope, const struct policy_parse_include *inc, struct policy_diags *d);

/* Parses an address literal (v4, v6, CIDR, range "a-b") into `out`. With
 * `allow_host_bits`, "10.0.0.1/24" is an interface address (kept as written,
 * prefix_len 24); otherwise it is an error. Returns 0 or -1 with an error at
 * `loc`. */
int policy_parse_addr(const char *text, size_t len, bool allow_host_bits,
		      const struct policy_loc *loc, struct policy_addr *out,
		      struct policy_diags *d);

/* FNV-1a (32 bit) over `text` with every run of whitespace counted as one
 * space and leading/trailing whitespace ignored. */
uint32_t policy_text_hash(const char *text, size_t len);

#endif
