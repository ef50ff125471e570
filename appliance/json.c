/* Strict JSON reader and writer (see json.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/json.h"

struct reader {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errsz;
	int rc;
};

static int fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->rc)
		return r->rc;
	n = snprintf(r->err, r->errsz, "offset %zu: ", r->pos);
	if (n >= 0 && (size_t)n < r->errsz) {
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errsz - (size_t)n, fmt, ap);
		va_end(ap);
	}
	r->rc = -EINVAL;
	return r->rc;
}

static int oom(struct reader *r)
{
	if (!r->rc) {
		snprintf(r->err, r->errsz, "out of memory");
		r->rc = -ENOMEM;
	}
	return r->rc;
}

static void skip_ws(struct reader *r)
{
	while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' ||
				   r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
		r->pos++;
}

static int peek(struct reader *r)
{
	return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

static int literal(struct reader *r, const char *word)
{
	size_t n = strlen(word);

	if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n))
		return fail(r, "invalid literal");
	r->pos += n;
	return 0;
}

static int hex4(struct reader *r, unsigned *out)
{
	unsigned v = 0;

	if (r->len - r->pos < 4)
		return fail(r, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = r->s[r->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(r, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 if it is invalid. */
static size_t utf8_valid(const unsigned char *s, size_t avail)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int parse_string(struct reader *r, char **out)
{
	size_t start = ++r->pos, cap = 0;
	char *o;
	size_t n = 0;

	/* Worst case: the output is never longer than the input. */
	while (r->pos < r->len && r->s[r->pos] != '"') {
		if (r->s[r->pos] == '\\')
			r->pos++;
		r->pos++;
	}
	if (r->pos >= r->len)
		return fail(r, "unterminated string");
	cap = r->pos - start + 1;
	r->pos = start;
	o = malloc(cap);
	if (!o)
		return oom(r);
	while (r->s[r->pos] != '"') {
		unsigned char c = (unsigned char)r->s[r->pos];
		if (c < 0x20) {
			free(o);
			return fail(r, "control character in string");
		}
		if (c != '\\') {
			size_t k =
			    utf8_valid((const unsigned char *)r->s + r->pos, r->len - r->pos);
			if (!k) {
				free(o);
				return fail(r, "invalid UTF-8 in string");
			}
			memcpy(o + n, r->s + r->pos, k);
			n += k;
			r->pos += k;
			continue;
		}
		r->pos++;
		c = (unsigned char)r->s[r->pos++];
		switch (c) {
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case '/': o[n++] = '/'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(r, &cp))
				goto bad;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(r, "lone low surrogate");
				goto bad;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (r->len - r->pos < 2 || r->s[r->pos] != '\\' ||
				    r->s[r->pos + 1] != 'u') {
					fail(r, "lone high surrogate");
					goto bad;
				}
				r->pos += 2;
				if (hex4(r, &lo))
					goto bad;
				if (lo < 0xdc00 || lo > 0xdfff) {
					fail(r, "bad low surrogate");
					goto bad;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0) {
				fail(r, "NUL in string");
				goto bad;
			}
			/* A \u escape (6 bytes) never expands beyond 4 UTF-8 bytes. */
			n += utf8_put(o + n, cp);
			break;
		}
		default:
			r->pos--;
			fail(r, "bad escape");
			goto bad;
		}
	}
	r->pos++;
	o[n] = 0;
	*out = o;
	return 0;
bad:
	free(o);
	return r->rc;
}

static int parse_number(struct reader *r, struct json *j)
{
	size_t start = r->pos;
	bool integer = true;
	char buf[64];

	if (peek(r) == '-')
		r->pos++;
	if (peek(r) == '0') {
		r->pos++;
	} else if (peek(r) >= '1' && peek(r) <= '9') {
		while (peek(r) >= '0' && peek(r) <= '9')
			r->pos++;
	} else {
		return fail(r, "bad number");
	}
	if (peek(r) == '.') {
		integer = false;
		r->pos++;
		if (!(peek(r) >= '0' && peek(r) <= '9'))
			return fail(r, "bad fraction");
		while (peek(r) >= '0' && peek(r) <= '9')
			r->pos++;
	}
	if (peek(r) == 'e' || peek(r) == 'E') {
		integer = false;
		r->pos++;
		if (peek(r) == '+' || peek(r) == '-')
			r->pos++;
		if (!(peek(r) >= '0' && peek(r) <= '9'))
			return fail(r, "bad exponent");
		while (peek(r) >= '0' && peek(r) <= '9')
			r->pos++;
	}
	if (r->pos - start >= sizeof(buf))
		return fail(r, "number too long");
	memcpy(buf, r->s + start, r->pos - start);
	buf[r->pos - start] = 0;
	j->type = JSON_NUMBER;
	errno = 0;
	j->number = strtod(buf, NULL);
	if (!isfinite(j->number))
		return fail(r, "number out of range");
	if (integer) {
		errno = 0;
		j->integer = strtoll(buf, NULL, 10);
		j->is_integer = errno == 0;
	}
	return 0;
}

static int parse_value(struct reader *r, struct json *j, int depth);

static int push(struct reader *r, struct json *j, char *key)
{
	struct json *items = realloc(j->items, (j->n + 1) * sizeof(*items));
	if (!items)
		return oom(r);
	j->items = items;
	memset(&items[j->n], 0, sizeof(*items));
	if (j->type == JSON_OBJECT) {
		char **keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));
		if (!keys)
			return oom(r);
		j->keys = keys;
		keys[j->n] = key;
	}
	j->n++;
	return 0;
}

static int parse_container(struct reader *r, struct json *j, int depth)
{
	bool object = r->s[r->pos] == '{';
	char close = object ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH)
		return fail(r, "nesting deeper than %d", JSON_MAX_DEPTH);
	j->type = object ? JSON_OBJECT : JSON_ARRAY;
	r->pos++;
	skip_ws(r);
	if (peek(r) == close) {
		r->pos++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(r);
		if (object) {
			if (peek(r) != '"')
				return fail(r, "expected a member name");
			if (parse_string(r, &key))
				return r->rc;
			if (json_get(j, key)) {
				free(key);
				return fail(r, "duplicate key");
			}
			skip_ws(r);
			if (peek(r) != ':') {
				free(key);
				return fail(r, "expected ':'");
			}
			r->pos++;
		}
		if (push(r, j, key)) {
			free(key);
			return r->rc;
		}
		if (parse_value(r, &j->items[j->n - 1], depth + 1))
			return r->rc;
		skip_ws(r);
		if (peek(r) == ',') {
			r->pos++;
			continue;
		}
		if (peek(r) == close) {
			r->pos++;
			return 0;
		}
		return fail(r, "expected ',' or '%c'", close);
	}
}

static int parse_value(struct reader *r, struct json *j, int depth)
{
	skip_ws(r);
	switch (peek(r)) {
	case '{':
	case '[': return parse_container(r, j, depth);
	case '"': j->type = JSON_STRING; return parse_string(r, &j->string);
	case 't':
		j->type = JSON_BOOL;
		j->boolean = true;
		return literal(r, "true");
	case 'f': j->type = JSON_BOOL; return literal(r, "false");
	case 'n': j->type = JSON_NULL; return literal(r, "null");
	case -1: return fail(r, "unexpected end of input");
	default: return parse_number(r, j);
	}
}

static void json_clear(struct json *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_clear(&j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->string);
}

void json_free(struct json *j)
{
	if (!j)
		return;
	json_clear(j);
	free(j);
}

int json_parse(const char *text, size_t len, struct json **out, char *err, size_t errsz)
{
	struct reader r = { .s = text, .len = len, .err = err, .errsz = errsz };
	struct json *j = calloc(1, sizeof(*j));

	if (errsz)
		err[0] = 0;
	if (!j)
		return oom(&r);
	if (!parse_value(&r, j, 0)) {
		skip_ws(&r);
		if (r.pos != r.len)
			fail(&r, "trailing data after the value");
	}
	if (r.rc) {
		json_free(j);
		return r.rc;
	}
	*out = j;
	return 0;
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (obj->keys[i] && !strcmp(obj->keys[i], key))
			return &obj->items[i];
	return NULL;
}

const char *json_get_str(const struct json *obj, const char *key)
{
	const struct json *v = json_get(obj, key);
	return v && v->type == JSON_STRING ? v->string : NULL;
}

int json_get_int(const struct json *obj, const char *key, long long *out)
{
	const struct json *v = json_get(obj, key);
	if (!v)
		return -ENOENT;
	if (v->type != JSON_NUMBER || !v->is_integer)
		return -EINVAL;
	*out = v->integer;
	return 0;
}

/* Writer. */

void json_buf_init(struct json_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void json_buf_free(struct json_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static void put(struct json_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void sep(struct json_buf *b)
{
	if (b->after_key) {
		b->after_key = false;
		return;
	}
	if (b->need_comma)
		put(b, ",", 1);
}

void json_obj_begin(struct json_buf *b)
{
	sep(b);
	put(b, "{", 1);
	b->need_comma = false;
}

void json_obj_end(struct json_buf *b)
{
	put(b, "}", 1);
	b->need_comma = true;
}

void json_arr_begin(struct json_buf *b)
{
	sep(b);
	put(b, "[", 1);
	b->need_comma = false;
}

void json_arr_end(struct json_buf *b)
{
	put(b, "]", 1);
	b->need_comma = true;
}

static void put_quoted(struct json_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
		size_t k;
		switch (*p) {
		case '"': put(b, "\\\"", 2); continue;
		case '\\': put(b, "\\\\", 2); continue;
		case '\n': put(b, "\\n", 2); continue;
		case '\r': put(b, "\\r", 2); continue;
		case '\t': put(b, "\\t", 2); continue;
		}
		if (*p < 0x20) {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			put(b, esc, 6);
			continue;
		}
		k = utf8_valid(p, strnlen((const char *)p, 4));
		if (!k) {
			/* Keep the output valid JSON whatever the input bytes:
			 * an invalid byte becomes U+FFFD. */
			put(b, "\xef\xbf\xbd", 3);
			continue;
		}
		put(b, (const char *)p, k);
		p += k - 1;
	}
	put(b, "\"", 1);
}

void json_key(struct json_buf *b, const char *key)
{
	sep(b);
	put_quoted(b, key);
	put(b, ":", 1);
	b->after_key = true;
}

void json_str(struct json_buf *b, const char *s)
{
	if (!s) {
		json_null(b);
		return;
	}
	sep(b);
	put_quoted(b, s);
	b->need_comma = true;
}

static void put_fmt(struct json_buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	sep(b);
	put(b, tmp, n > 0 ? (size_t)n : 0);
	b->need_comma = true;
}

void json_int(struct json_buf *b, long long v)
{
	put_fmt(b, "%lld", v);
}

void json_uint(struct json_buf *b, unsigned long long v)
{
	put_fmt(b, "%llu", v);
}

void json_double(struct json_buf *b, double v)
{
	if (!isfinite(v))
		put_fmt(b, "null");
	else
		put_fmt(b, "%.6g", v);
}

void json_bool(struct json_buf *b, bool v)
{
	put_fmt(b, "%s", v ? "true" : "false");
}

void json_null(struct json_buf *b)
{
	put_fmt(b, "null");
}

void json_raw(struct json_buf *b, const char *json_text)
{
	sep(b);
	put(b, json_text, strlen(json_text));
	b->need_comma = true;
}

void json_value(struct json_buf *b, const struct json *v)
{
	switch (v->type) {
	case JSON_NULL: json_null(b); break;
	case JSON_BOOL: json_bool(b, v->boolean); break;
	case JSON_NUMBER:
		if (v->is_integer)
			json_int(b, v->integer);
		else
			json_double(b, v->number);
		break;
	case JSON_STRING: json_str(b, v->string); break;
	case JSON_ARRAY:
		json_arr_begin(b);
		for (size_t i = 0; i < v->n; i++)
			json_value(b, &v->items[i]);
		json_arr_end(b);
		break;
	case JSON_OBJECT:
		json_obj_begin(b);
		for (size_t i = 0; i < v->n; i++) {
			json_key(b, v->keys[i]);
			json_value(b, &v->items[i]);
		}
		json_obj_end(b);
		break;
	}
}

void json_kv_str(struct json_buf *b, const char *key, const char *s)
{
	json_key(b, key);
	json_str(b, s);
}

void json_kv_int(struct json_buf *b, const char *key, long long v)
{
	json_key(b, key);
	json_int(b, v);
}

void json_kv_uint(struct json_buf *b, const char *key, unsigned long long v)
{
	json_key(b, key);
	json_uint(b, v);
}

void json_kv_bool(struct json_buf *b, const char *key, bool v)
{
	json_key(b, key);
	json_bool(b, v);
}

void json_kv_double(struct json_buf *b, const char *key, double v)
{
	json_key(b, key);
	json_double(b, v);
}
