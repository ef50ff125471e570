/* Shared by `explain`, `test` and `replay` (cli/verb_explain.c): loading a
 * policy as `check` does, and saying what decided a packet. */
#ifndef HVGATE_CLI_EXPLAIN_H
#define HVGATE_CLI_EXPLAIN_H

#include <stdio.h>

#include "policy/eval.h"
#include "policy/pipeline.h"

/* Loads `path` with the checks of `check` that concern the policy (not
 * the compiler's backends: c->table stays NULL, only c->policy is set); on
 * failure prints the diagnostics as check does and returns -1 (-2: no such
 * file). `d` must be initialized by the caller and outlive `c`. */
int cli_explain_load(const char *verb, const char *path, struct policy_compiled *c,
		     struct policy_diags *d);

/* "t.hvp:41 (block from any to db service postgres)", "default at t.hvp:9
 * (default block log)" or the built-in name ("antispoof:acme.web"). */
void cli_explain_decider(const struct policy_diags *d, const struct policy_eval_result *r,
			 char *buf, size_t size);

/* The NAT of a result in words ("" when none). */
void cli_explain_nat(const struct policy_eval_packet *pkt, const struct policy_eval_result *r,
		     char *buf, size_t size);

/* A JSON string literal of s (quotes included). */
void cli_json_string(FILE *out, const char *s);

/* The tenant index of name, POLICY_NONE if unknown. */
size_t cli_explain_tenant(const struct policy *p, const char *name);

/* An address or prefix (ADDR, ADDR/LEN; "any" or "default": family 0,
 * every address) as --iif-map and `show blocked` write it. 0 or -1. */
int cli_parse_addr(const char *s, struct policy_addr *a);

#endif
