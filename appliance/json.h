/* A small strict JSON reader and writer for the control protocol.
 *
 * Reader: RFC 8259 without extensions (no comments, no trailing commas, no
 * leading zeros, no duplicate object keys, valid UTF-8, nesting bounded by
 * JSON_MAX_DEPTH). The result is a tree that owns all its memory.
 *
 * Writer: an append-only buffer with begin/end calls that place commas
 * themselves. Allocation failure is sticky (json_buf.oom) and checked once at
 * the end.
 *
 * Error convention: 0 on success, negative errno on failure. Not thread-safe
 * per object; distinct objects may be used from distinct threads.
 */
#ifndef HVGATE_APPLIANCE_JSON_H
#define HVGATE_APPLIANCE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper requests are not needed by any command; the bound keeps the
 * recursive parser's stack small (8 KiB at most). */
#define JSON_MAX_DEPTH 32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool boolean;
	double number;
	bool is_integer;    /* the text had no fraction or exponent */
	long long integer;  /* valid when is_integer */
	char *string;       /* owned, NUL-terminated (strings with NUL are refused) */
	struct json *items; /* ARRAY and OBJECT values, owned */
	char **keys;        /* OBJECT keys, owned */
	size_t n;
};

/* Parses exactly one JSON value from text[0..len) (surrounding whitespace
 * allowed). On error returns -EINVAL and writes a message with the byte
 * offset into err; -ENOMEM on allocation failure. */
int json_parse(const char *text, size_t len, struct json **out, char *err, size_t errsz);
void json_free(struct json *j);

/* Object member lookup; NULL if absent or `obj` is not an object. */
const struct json *json_get(const struct json *obj, const char *key);
/* The member's string, or NULL if absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);
/* 0 and the value if the member is an integer; -ENOENT absent; -EINVAL other type. */
int json_get_int(const struct json *obj, const char *key, long long *out);

struct json_buf {
	char *s; /* NUL-terminated while !oom */
	size_t len, cap;
	bool oom;
	bool need_comma;
	bool after_key;
};

void json_buf_init(struct json_buf *b);
void json_buf_free(struct json_buf *b);
void json_obj_begin(struct json_buf *b);
void json_obj_end(struct json_buf *b);
void json_arr_begin(struct json_buf *b);
void json_arr_end(struct json_buf *b);
void json_key(struct json_buf *b, const char *key);
void json_str(struct json_buf *b, const char *s); /* NULL writes null */
void json_int(struct json_buf *b, long long v);
void json_uint(struct json_buf *b, unsigned long long v);
void json_double(struct json_buf *b, double v);
void json_bool(struct json_buf *b, bool v);
void json_null(struct json_buf *b);
/* Writes an already serialized JSON value (e.g. a stored document). */
void json_raw(struct json_buf *b, const char *json_text);
/* Appends a parsed value. */
void json_value(struct json_buf *b, const struct json *v);

/* Shorthands for "key": value. */
void json_kv_str(struct json_buf *b, const char *key, const char *s);
void json_kv_int(struct json_buf *b, const char *key, long long v);
void json_kv_uint(struct json_buf *b, const char *key, unsigned long long v);
void json_kv_bool(struct json_buf *b, const char *key, bool v);
void json_kv_double(struct json_buf *b, const char *key, double v);

#endif
