/* The optimizer (policy/optimize.h). */
#include <stdlib.h>
#include <string.h>

#include "policy/optimize.h"

int policy_optimize(struct ir_table *t, struct policy_optimize_report *r, struct policy_diags *d)
{
	(void)t;
	(void)d;
	if (r)
		memset(r, 0, sizeof(*r));
	return 0;
}

void policy_optimize_report_print(const struct policy_optimize_report *r, FILE *out)
{
	fprintf(out, "optimizer: %zu -> %zu rules\n", r->rules_before, r->rules_after);
}
