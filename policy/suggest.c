/* Nearest-name suggestions (contract in policy/suggest.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/suggest.h"

/* Words longer than this get no suggestion: names are short, and the
 * distance table below is sized for them. */
#define SUGGEST_WORD_MAX 64

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

/* Optimal string alignment distance of a and b, both at most
 * SUGGEST_WORD_MAX bytes; three rows of the table suffice. */
static size_t osa_distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t rows[3][SUGGEST_WORD_MAX + 1];
	size_t *prev2 = rows[0], *prev = rows[1], *row = rows[2];
	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		row[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			row[j] = min3(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < row[j])
				row[j] = prev2[j - 2] + 1;
		}
		size_t *t = prev2;
		prev2 = prev;
		prev = row;
		row = t;
	}
	return prev[m];
}

/* How many edits a suggestion may be away: a third of the word, at least
 * one and at most two, so `frobnicate` suggests nothing. */
static size_t max_distance(size_t len)
{
	return len < 6 ? 1 : 2;
}

void policy_suggest_init(struct policy_suggest *s, const char *word, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->word = word;
	s->len = len;
}

void policy_suggest_consider(struct policy_suggest *s, const char *candidate)
{
	size_t m = candidate ? strlen(candidate) : 0;
	if (!m || s->len > SUGGEST_WORD_MAX || m > SUGGEST_WORD_MAX)
		return;
	size_t limit = max_distance(s->len);
	if ((m > s->len ? m - s->len : s->len - m) > limit)
		return;
	size_t dist = osa_distance(s->word, s->len, candidate, m);
	if (dist == 0 || dist > limit || (s->best && dist >= s->best_distance))
		return;
	s->best = candidate;
	s->best_distance = dist;
}

const char *policy_suggest_best(const struct policy_suggest *s)
{
	return s->best;
}

const char *policy_suggest(const char *word, size_t len, const char *const *candidates, size_t n)
{
	struct policy_suggest s;
	policy_suggest_init(&s, word, len);
	for (size_t i = 0; i < n; i++)
		policy_suggest_consider(&s, candidates[i]);
	return policy_suggest_best(&s);
}

static bool visible(size_t decl_scope, size_t scope)
{
	return decl_scope == scope || decl_scope == POLICY_NONE;
}

/* Zones and segments `scope` can name; other tenants' segments as
 * TENANT.SEGMENT, formatted into `scratch` (one at a time, so only the best
 * is kept: copied into `best_buf`). */
static void consider_zones(struct policy_suggest *s, const struct policy_ast *ast, size_t scope,
			   char *best_buf, size_t best_size)
{
	for (size_t i = 0; i < ast->n_zones; i++) {
		const struct policy_ast_zone *z = &ast->zones[i];
		if (!z->name)
			continue;
		if (visible(z->scope, scope)) {
			policy_suggest_consider(s, z->name);
			continue;
		}
		if (z->scope >= ast->n_tenants || !ast->tenants[z->scope].name)
			continue;
		char scratch[2 * SUGGEST_WORD_MAX + 2];
		int n = snprintf(scratch, sizeof(scratch), "%s.%s", ast->tenants[z->scope].name,
				 z->name);
		if (n < 0 || (size_t)n >= sizeof(scratch))
			continue;
		const char *before = s->best;
		policy_suggest_consider(s, scratch);
		if (s->best != before) {
			snprintf(best_buf, best_size, "%s", scratch);
			s->best = best_buf;
		}
	}
}

void policy_suggest_name(struct policy_diags *d, const struct policy_ast *ast,
			 enum policy_suggest_kind kind, const char *name, size_t scope)
{
	if (!name)
		return;
	struct policy_suggest s;
	char best_buf[2 * SUGGEST_WORD_MAX + 2];
	policy_suggest_init(&s, name, strlen(name));
	if (kind == POLICY_SUGGEST_ZONE)
		consider_zones(&s, ast, scope, best_buf, sizeof(best_buf));
	for (size_t i = 0; kind == POLICY_SUGGEST_DEFINE && i < ast->n_defines; i++)
		if (visible(ast->defines[i].scope, scope))
			policy_suggest_consider(&s, ast->defines[i].name);
	for (size_t i = 0; kind == POLICY_SUGGEST_SERVICE && i < ast->n_services; i++)
		if (visible(ast->services[i].scope, scope))
			policy_suggest_consider(&s, ast->services[i].name);
	for (size_t i = 0; kind == POLICY_SUGGEST_SERVICE && policy_builtin_service_name(i); i++)
		policy_suggest_consider(&s, policy_builtin_service_name(i));
	const char *best = policy_suggest_best(&s);
	if (best)
		policy_diag_append(d, "; did you mean '%s%s'?",
				   kind == POLICY_SUGGEST_DEFINE ? "$" : "", best);
}
