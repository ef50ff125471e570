/* Fuzz target: lexer, parser, checker and shadow analysis on arbitrary text
 * (policy_load_text without includes), then printing the diagnostics. An
 * accepted policy holds no NUL-shortened, control or invalid UTF-8 text in
 * its interface names and log prefixes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is `s` printable UTF-8: no control characters, no malformed sequences
 * (a loose check of the lead and continuation bytes is enough here). */
static int clean_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		size_t n = *p < 0x80             ? 1
			   : (*p & 0xe0) == 0xc0 ? 2
			   : (*p & 0xf0) == 0xe0 ? 3
			   : (*p & 0xf8) == 0xf0 ? 4
						 : 0;
		if (!n || *p == 0xc0 || *p == 0xc1 || *p > 0xf4)
			return 0;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void check_accepted(const struct policy *p)
{
	for (size_t i = 0; i < p->n_zones; i++)
		for (size_t j = 0; j < p->zones[i].n_ifnames; j++)
			if (!clean_text(p->zones[i].ifnames[j]))
				__builtin_trap();
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].log_prefix && !clean_text(p->rules[i].log_prefix))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("fuzz.hvp", (const char *)data, size, NULL, &d);
	/* a policy exactly when there is no error */
	if ((p != NULL) != (d.n_errors == 0))
		__builtin_trap();
	if (p)
		check_accepted(p);
	FILE *sink = fopen("/dev/null", "w");
	if (sink) {
		policy_diags_print(&d, sink);
		fclose(sink);
	}
	policy_free(p);
	policy_diags_free(&d);
	return 0;
}
