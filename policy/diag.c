/* The diagnostics sink of the policy compiler (contract in policy/diag.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/grow.h"
#include "policy/diag.h"

/* Message of the out-of-memory diagnostic, kept static so that reporting it
 * needs no allocation of its own. */
static char oom_message[] = "out of memory";

void policy_diags_init(struct policy_diags *d)
{
	memset(d, 0, sizeof(*d));
}

void policy_diags_free(struct policy_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].message != oom_message)
			free(d->v[i].message);
	free(d->v);
	for (size_t i = 0; i < d->n_files; i++) {
		free(d->files[i].path);
		free(d->files[i].text);
	}
	free(d->files);
	memset(d, 0, sizeof(*d));
}

static int diag_vadd(struct policy_diags *d, enum policy_severity sev, const struct policy_loc *loc,
		     const char *fmt, va_list ap)
{
	if (sev == POLICY_ERROR)
		d->n_errors++;
	if (policy_grow((void **)&d->v, &d->cap, d->n, sizeof(*d->v), 16))
		return sev == POLICY_ERROR ? -1 : 0;
	struct policy_diag *g = &d->v[d->n++];
	memset(g, 0, sizeof(*g));
	g->severity = sev;
	if (loc)
		g->loc = *loc;
	if (vasprintf(&g->message, fmt, ap) < 0)
		g->message = oom_message;
	return sev == POLICY_ERROR ? -1 : 0;
}

int policy_diag_add(struct policy_diags *d, enum policy_severity sev, const struct policy_loc *loc,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_vadd(d, sev, loc, fmt, ap);
	va_end(ap);
	return r;
}

int policy_error(struct policy_diags *d, const struct policy_loc *loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_vadd(d, POLICY_ERROR, loc, fmt, ap);
	va_end(ap);
	return r;
}

int policy_note(struct policy_diags *d, const struct policy_loc *loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_vadd(d, POLICY_NOTE, loc, fmt, ap);
	va_end(ap);
	return r;
}

void policy_diag_append(struct policy_diags *d, const char *fmt, ...)
{
	if (!d->n || d->v[d->n - 1].message == oom_message)
		return;
	struct policy_diag *g = &d->v[d->n - 1];
	char *tail, *joined;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&tail, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (asprintf(&joined, "%s%s", g->message, tail) >= 0) {
		free(g->message);
		g->message = joined;
	}
	free(tail);
}

const char *policy_diags_add_file(struct policy_diags *d, char *path, char *text, size_t len)
{
	if (policy_grow((void **)&d->files, &d->cap_files, d->n_files, sizeof(*d->files), 16)) {
		free(path);
		free(text);
		return NULL;
	}
	struct policy_source_file *f = &d->files[d->n_files++];
	f->path = path;
	f->text = text;
	f->len = len;
	return path;
}

/* Where each line of a file starts, built once per print so that quoting
 * thousands of diagnostics does not rescan the file for each. */
struct line_index {
	size_t *start; /* byte offset of line N at start[N - 1] */
	size_t n;
	bool built;
};

static void index_lines(struct line_index *ix, const struct policy_source_file *f)
{
	ix->built = true;
	size_t n = 1;
	for (size_t i = 0; i < f->len; i++)
		n += f->text[i] == '\n';
	ix->start = malloc(n * sizeof(*ix->start));
	if (!ix->start)
		return; /* quoting is a courtesy: without memory, skip it */
	ix->start[0] = 0;
	ix->n = 1;
	for (size_t i = 0; i < f->len; i++)
		if (f->text[i] == '\n')
			ix->start[ix->n++] = i + 1;
}

/* A quoted line is cut to this many bytes around the column, so that an
 * error in a megabyte-long line prints a readable excerpt, not the line. */
#define EXCERPT_WIDTH 160

static bool is_utf8_continuation(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

/* Quotes the line of `loc` and puts a caret under its column; tabs of the
 * source are repeated in the caret line so that the caret stays aligned,
 * and a UTF-8 character counts as one column. A long line is cut to a
 * window around the column, marked with "...". */
static void print_excerpt(const struct policy_source_file *f, const struct line_index *ix,
			  const struct policy_loc *loc, FILE *out)
{
	if (!ix->start || loc->line > ix->n)
		return;
	const char *p = f->text + ix->start[loc->line - 1], *end = f->text + f->len;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
	size_t col = loc->col - 1 < n ? loc->col - 1 : n;
	size_t from = 0, to = n;
	if (n > EXCERPT_WIDTH) {
		from = col > EXCERPT_WIDTH / 4 ? col - EXCERPT_WIDTH / 4 : 0;
		to = from + EXCERPT_WIDTH < n ? from + EXCERPT_WIDTH : n;
		while (from < col && is_utf8_continuation(p[from]))
			from++;
		while (to < n && to > col && is_utf8_continuation(p[to]))
			to--;
	}
	const char *more_before = from ? "..." : "", *more_after = to < n ? "..." : "";
	fprintf(out, "  %s%.*s%s\n  %s", more_before, (int)(to - from), p + from, more_after,
		from ? "   " : "");
	for (size_t c = from; c < col; c++)
		if (!is_utf8_continuation(p[c]))
			fputc(p[c] == '\t' ? '\t' : ' ', out);
	fputc('^', out);
	for (size_t i = 1; i < loc->len && col + i < to; i++)
		if (!is_utf8_continuation(p[col + i]))
			fputc('~', out);
	fputc('\n', out);
}

static size_t find_file(const struct policy_diags *d, const char *path)
{
	for (size_t i = d->n_files; i-- > 0;)
		if (d->files[i].path == path)
			return i;
	return (size_t)-1;
}

/* Formats one diagnostic with its excerpt into `out`. */
static void print_one(const struct policy_diags *d, const struct policy_diag *g,
		      struct line_index *ix, size_t *last, const char **last_path, FILE *out)
{
	static const char *const sev_name[] = { "note", "warning", "error" };
	if (g->loc.line && g->loc.file)
		fprintf(out, "%s:%u:%u: ", g->loc.file, g->loc.line, g->loc.col);
	else if (g->loc.file)
		fprintf(out, "%s: ", g->loc.file);
	fprintf(out, "%s: %s\n", sev_name[g->severity], g->message);
	if (!g->loc.line || !g->loc.file || !ix)
		return;
	if (g->loc.file != *last_path) { /* diagnostics come in runs per file */
		*last = find_file(d, g->loc.file);
		*last_path = g->loc.file;
	}
	if (*last == (size_t)-1)
		return;
	if (!ix[*last].built)
		index_lines(&ix[*last], &d->files[*last]);
	print_excerpt(&d->files[*last], &ix[*last], &g->loc, out);
}

void policy_diags_print(const struct policy_diags *d, FILE *out)
{
	struct line_index *ix = calloc(d->n_files + 1, sizeof(*ix));
	size_t last = (size_t)-1;
	const char *last_path = NULL;
	/* Each diagnostic is formatted in memory and written at once: `out` is
	 * often an unbuffered stderr, where every character would otherwise be
	 * a write() of its own. */
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	for (size_t i = 0; i < d->n; i++) {
		if (!mem) {
			print_one(d, &d->v[i], ix, &last, &last_path, out);
			continue;
		}
		rewind(mem);
		print_one(d, &d->v[i], ix, &last, &last_path, mem);
		fflush(mem);
		fwrite(buf, 1, (size_t)ftell(mem), out);
	}
	if (mem)
		fclose(mem);
	free(buf);
	for (size_t f = 0; ix && f < d->n_files; f++)
		free(ix[f].start);
	free(ix);
}
