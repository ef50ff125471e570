/* Diagnostics of the policy compiler.
 *
 * Every stage reports problems into one `struct policy_diags` sink instead of
 * printing or aborting, so that all errors of a policy are reported, each with
 * its source location, and the caller decides where they go.
 *
 * Error convention of libhvpolicy: functions return 0 on success and -1 on
 * failure; on failure at least one diagnostic of severity POLICY_ERROR has
 * been added to the sink that was passed in. Out-of-memory is also reported
 * as a diagnostic (without location).
 *
 * Not thread-safe: one sink per compilation.
 */
#ifndef HVGATE_POLICY_DIAG_H
#define HVGATE_POLICY_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A place in a policy file. `file` points into the file-name table of the
 * compilation (struct policy_sources) and lives as long as it. Lines and
 * columns count from 1; col counts bytes. line 0 means "no location". */
struct policy_loc {
	const char *file;
	uint32_t line;
	uint32_t col;
	uint32_t len; /* bytes of the token or construct; 0 if unknown */
};

enum policy_severity {
	POLICY_NOTE,
	POLICY_WARNING,
	POLICY_ERROR,
};

struct policy_diag {
	enum policy_severity severity;
	struct policy_loc loc;
	char *message; /* owned */
};

/* Keeps the text of every file that was read, so a diagnostic can quote the
 * source line under it. */
struct policy_source_file {
	char *path; /* owned; as given or resolved relative to the includer */
	char *text; /* owned; NUL-terminated */
	size_t len;
};

struct policy_diags {
	struct policy_diag *v;
	size_t n, cap;
	size_t n_errors;
	struct policy_source_file *files;
	size_t n_files, cap_files;
};

void policy_diags_init(struct policy_diags *d);
void policy_diags_free(struct policy_diags *d);

/* Adds a diagnostic; printf-style message without "error:" and without a
 * trailing newline. Returns -1 for POLICY_ERROR (so `return policy_error(...)`
 * reads naturally) and 0 otherwise. */
int policy_diag_add(struct policy_diags *d, enum policy_severity sev, const struct policy_loc *loc,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int policy_error(struct policy_diags *d, const struct policy_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int policy_note(struct policy_diags *d, const struct policy_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends printf-style text to the message of the last diagnostic (a hint
 * such as "; did you mean 'pass'?"). Does nothing if there is none or
 * memory runs out. */
void policy_diag_append(struct policy_diags *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers a file's text (takes ownership of path and text); returns the
 * stable path pointer to use in struct policy_loc, or NULL on ENOMEM. */
const char *policy_diags_add_file(struct policy_diags *d, char *path, char *text, size_t len);

/* Prints every diagnostic as
 *   FILE:LINE:COL: error: message
 *     <the source line>
 *     ^~~~
 * in the order they were added. */
void policy_diags_print(const struct policy_diags *d, FILE *out);

#endif
