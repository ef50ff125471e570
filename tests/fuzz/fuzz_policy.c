/* Fuzz target: lexer, parser, checker and shadow analysis on arbitrary text
 * (policy_load_text without includes), then printing the diagnostics. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("fuzz.hvp", (const char *)data, size, NULL, &d);
	/* a policy exactly when there is no error */
	if ((p != NULL) != (d.n_errors == 0))
		__builtin_trap();
	FILE *sink = fopen("/dev/null", "w");
	if (sink) {
		policy_diags_print(&d, sink);
		fclose(sink);
	}
	policy_free(p);
	policy_diags_free(&d);
	return 0;
}
