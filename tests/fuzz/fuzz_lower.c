/* Fuzz target: every policy the front end accepts must lower, optimize and
 * emit without error into a consistent IR (ir_table_validate), and emitting
 * is deterministic. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat/nat.h"
#include "policy/optimize.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The text of t, malloc'd. */
static char *emit(const struct ir_table *t, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		__builtin_trap();
	if (policy_emit_nft(t, f))
		__builtin_trap();
	fclose(f);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("fuzz.hvp", (const char *)data, size, NULL, &d);
	if (!p) {
		policy_diags_free(&d);
		return 0;
	}
	struct policy_lower_opts o;
	policy_lower_opts_default(&o);
	o.nat_lower = nat_lower;
	o.queue_num = 0;
	for (int optimize = 0; optimize < 2; optimize++) {
		o.optimize = optimize;
		struct ir_table *a = policy_lower(p, &o, &d);
		struct ir_table *b = policy_lower(p, &o, &d);
		/* lowering fails only for reasons it reports (overlapping zones) */
		if ((a == NULL) != (b == NULL) || (!a && !d.n_errors))
			__builtin_trap();
		if (a) {
			struct policy_diags vd = { 0 };
			if (ir_table_validate(a, &vd)) {
				policy_diags_print(&vd, stderr);
				__builtin_trap();
			}
			policy_diags_free(&vd);
			size_t la, lb;
			char *ta = emit(a, &la), *tb = emit(b, &lb);
			if (la != lb || memcmp(ta, tb, la))
				__builtin_trap();
			free(ta);
			free(tb);
		}
		ir_table_free(a);
		ir_table_free(b);
	}
	policy_free(p);
	policy_diags_free(&d);
	return 0;
}
