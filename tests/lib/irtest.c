#include <check.h>
#include <stdio.h>
#include <string.h>

#include "nat/nat.h"
#include "tests/lib/irtest.h"

struct policy_diags irtest_diags;
static struct policy *irtest_policy;

struct ir_table *irtest_lower(const char *text, const struct policy_lower_opts *o)
{
	struct policy_lower_opts defaults;

	policy_diags_init(&irtest_diags);
	irtest_policy = policy_load_text(IRTEST_FILE, text, strlen(text), NULL, &irtest_diags);
	if (!irtest_policy) {
		policy_diags_print(&irtest_diags, stderr);
		return NULL;
	}
	if (!o) {
		policy_lower_opts_default(&defaults);
		defaults.nat_lower = nat_lower;
		defaults.optimize = false;
		o = &defaults;
	}
	return policy_lower(irtest_policy, o, &irtest_diags);
}

void irtest_done(struct ir_table *t)
{
	if (t) {
		struct policy_diags d = { 0 };
		if (ir_table_validate(t, &d))
			ck_abort_msg("invalid IR: %s", d.n ? d.v[d.n - 1].message : "?");
		policy_diags_free(&d);
	}
	ir_table_free(t);
	if (irtest_policy)
		policy_free(irtest_policy);
	irtest_policy = NULL;
	policy_diags_free(&irtest_diags);
}

char *irtest_emit_nft(const struct ir_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(policy_emit_nft(t, f), 0);
	fclose(f);
	return buf;
}

const struct ir_match *irtest_match(const struct ir_rule *r, enum ir_field f)
{
	for (size_t i = 0; i < r->n_matches; i++)
		if (r->matches[i].field[0] == f)
			return &r->matches[i];
	return NULL;
}

const struct ir_stmt *irtest_stmt(const struct ir_rule *r, enum ir_stmt_kind k)
{
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == k)
			return &r->stmts[i];
	return NULL;
}

const char *irtest_where(const struct ir_rule *r)
{
	static char buf[4][256];
	static unsigned next;
	char *b = buf[next++ % 4];

	snprintf(b, sizeof(buf[0]), "%s:%u: %s", r->loc.file ? r->loc.file : "-", r->loc.line,
		 r->comment);
	return b;
}

bool irtest_rule_is(const struct ir_rule *r, const char *prefix)
{
	return !strncmp(r->comment, prefix, strlen(prefix)) ||
	       !strncmp(irtest_where(r), prefix, strlen(prefix));
}

size_t irtest_count_comment(const struct ir_chain *c, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; c && i < c->n_rules; i++)
		n += irtest_rule_is(&c->rules[i], prefix);
	return n;
}

const struct ir_set *irtest_set(const struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_sets; i++)
		if (!strcmp(t->sets[i].name, name))
			return &t->sets[i];
	return NULL;
}

uint32_t irtest_u32(const struct ir_value *v)
{
	uint32_t x;
	memcpy(&x, v->data, sizeof(x));
	return x;
}
