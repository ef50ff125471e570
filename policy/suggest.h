/* "Did you mean ...?": the nearest of a set of names to a mistyped one.
 *
 * Distance is the optimal-string-alignment form of the Damerau-Levenshtein
 * distance (insertions, deletions, substitutions and swaps of two adjacent
 * characters each count 1), so `pas` is 1 from `pass` and `lna` 1 from
 * `lan`. A candidate is suggested only if it is near enough for the word's
 * length (1 edit for short words, 2 from 6 bytes on) and it is not the word
 * itself.
 *
 * Usage: init, consider each candidate, then best. Nothing is allocated;
 * the result points at the candidate given, so it lives as long as that.
 */
#ifndef HVGATE_POLICY_SUGGEST_H
#define HVGATE_POLICY_SUGGEST_H

#include <stddef.h>

#include "policy/ast.h"
#include "policy/diag.h"

struct policy_suggest {
	const char *word;
	size_t len;
	const char *best;
	size_t best_distance;
};

void policy_suggest_init(struct policy_suggest *s, const char *word, size_t len);
void policy_suggest_consider(struct policy_suggest *s, const char *candidate);
/* The nearest candidate, or NULL if none is near enough. */
const char *policy_suggest_best(const struct policy_suggest *s);

/* The nearest of `n` candidates to `word`, or NULL. */
const char *policy_suggest(const char *word, size_t len, const char *const *candidates, size_t n);

enum policy_suggest_kind {
	POLICY_SUGGEST_ZONE,    /* zones and segments */
	POLICY_SUGGEST_DEFINE,  /* $defines; `name` without the '$' */
	POLICY_SUGGEST_SERVICE, /* declared and built-in services */
};

/* For the checker's "unknown name" errors: if a name of `kind` that `scope`
 * can see (its own and the global ones; other tenants' segments as
 * TENANT.SEGMENT) is near `name`, appends "; did you mean 'X'?" to the last
 * diagnostic of `d`. Call it right after reporting the error. */
void policy_suggest_name(struct policy_diags *d, const struct policy_ast *ast,
			 enum policy_suggest_kind kind, const char *name, size_t scope);

#endif
