/* Log events read back (appliance/logline.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/json.h"
#include "appliance/logline.h"

/* Members of an event (nflog.c, daemon_events.c write them); others are
 * skipped, so a newer daemon's events still read. */
#define MAX_PAIRS 32
#define VALUE_MAX 256

struct pair {
	char key[16];
	char val[VALUE_MAX];
	size_t col; /* of the value, 1-based */
	bool num;   /* a JSON number (val holds its text) */
};

struct reader {
	const char *text;
	size_t len;
	struct pair pairs[MAX_PAIRS];
	size_t n;
	char *err;
	size_t errsz, *col;
};

static int fail(struct reader *r, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct reader *r, size_t col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errsz, fmt, ap);
	va_end(ap);
	*r->col = col ? col : 1;
	return -1;
}

static bool known_key(const char *k, size_t n)
{
	static const char *const keys[] = { "time",   "source", "rule",      "prefix",
					    "tenant", "match",  "in",        "out",
					    "family", "proto",  "src",       "dst",
					    "sport",  "dport",  "icmp_type", "verdict" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i]) == n && !strncmp(keys[i], k, n))
			return true;
	return false;
}

static struct pair *find(struct reader *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->pairs[i].key, key))
			return &r->pairs[i];
	return NULL;
}

static int add_pair(struct reader *r, const char *key, size_t klen, const char *val, size_t vlen,
		    size_t col, bool num)
{
	if (!known_key(key, klen))
		return 0;
	if (r->n == MAX_PAIRS)
		return fail(r, col, "too many members");
	if (vlen >= VALUE_MAX)
		return fail(r, col, "value of '%.*s' longer than %d bytes", (int)klen, key,
			    VALUE_MAX - 1);
	char k[16];
	snprintf(k, sizeof(k), "%.*s", (int)klen, key);
	if (find(r, k))
		return fail(r, col, "'%s' given twice", k);
	struct pair *p = &r->pairs[r->n++];
	memcpy(p->key, k, sizeof(k));
	memcpy(p->val, val, vlen);
	p->val[vlen] = '\0';
	p->col = col;
	p->num = num;
	return 0;
}

/* The column of member `key` in a JSON line: where "key" is written. */
static size_t json_col(const struct reader *r, const char *key)
{
	char quoted[24];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	size_t q = strlen(quoted);
	for (size_t i = 0; i + q <= r->len; i++)
		if (!memcmp(r->text + i, quoted, q))
			return i + 1;
	return 1;
}

static int read_json(struct reader *r, size_t start)
{
	struct json *obj;
	char jerr[160];
	if (json_parse(r->text + start, r->len - start, &obj, jerr, sizeof(jerr)))
		return fail(r, start + 1, "not a JSON event: %s", jerr);
	int rc = 0;
	if (obj->type != JSON_OBJECT) {
		rc = fail(r, start + 1, "an event is a JSON object");
		goto out;
	}
	for (size_t i = 0; !rc && i < obj->n; i++) {
		const struct json *v = &obj->items[i];
		const char *k = obj->keys[i];
		char num[32];
		size_t col = json_col(r, k);
		if (v->type == JSON_STRING) {
			rc = add_pair(r, k, strlen(k), v->string, strlen(v->string), col, false);
		} else if (v->type == JSON_NUMBER && v->is_integer) {
			snprintf(num, sizeof(num), "%lld", v->integer);
			rc = add_pair(r, k, strlen(k), num, strlen(num), col, true);
		} else if (known_key(k, strlen(k))) {
			rc = fail(r, col, "'%s' is neither a string nor a whole number", k);
		}
	}
out:
	json_free(obj);
	return rc;
}

/* `show log` prints an event as KEY=VALUE words (an empty string as ""). A
 * word without '=' (or with a key events do not have) continues the value
 * before it: a log prefix may hold blanks. */
static int read_words(struct reader *r, size_t i)
{
	struct pair *last = NULL;
	while (i < r->len) {
		while (i < r->len && (r->text[i] == ' ' || r->text[i] == '\t'))
			i++;
		size_t w = i;
		while (i < r->len && r->text[i] != ' ' && r->text[i] != '\t')
			i++;
		if (w == i)
			break;
		const char *eq = memchr(r->text + w, '=', i - w);
		size_t klen = eq ? (size_t)(eq - (r->text + w)) : 0;
		if (eq && klen && known_key(r->text + w, klen)) {
			const char *v = eq + 1;
			size_t vlen = (size_t)(r->text + i - v);
			if (vlen == 2 && !memcmp(v, "\"\"", 2))
				vlen = 0;
			if (add_pair(r, r->text + w, klen, v, vlen, (size_t)(v - r->text) + 1,
				     false))
				return -1;
			last = &r->pairs[r->n - 1];
		} else if (last && (!strcmp(last->key, "prefix") || !strcmp(last->key, "rule"))) {
			/* the value goes on, blanks and all, to the end of this word */
			size_t vlen = (size_t)(r->text + i - (r->text + last->col - 1));
			if (vlen >= VALUE_MAX)
				return fail(r, last->col, "value of '%s' longer than %d bytes",
					    last->key, VALUE_MAX - 1);
			memcpy(last->val, r->text + last->col - 1, vlen);
			last->val[vlen] = '\0';
		} else if (!eq) {
			return fail(r, w + 1, "expected KEY=VALUE, found '%.*s'",
				    (int)(i - w > 40 ? 40 : i - w), r->text + w);
		} else {
			last = NULL; /* a member events do not have: skipped */
		}
	}
	return 0;
}

static int copy_str(struct reader *r, const char *key, char *out, size_t size)
{
	const struct pair *p = find(r, key);
	*out = '\0';
	if (!p)
		return 0;
	if (strlen(p->val) >= size)
		return fail(r, p->col, "'%s' longer than %zu bytes", key, size - 1);
	memcpy(out, p->val, strlen(p->val) + 1);
	return 0;
}

static int number(struct reader *r, const struct pair *p, unsigned long max, unsigned long *out)
{
	char *end;
	const char *s = p->val;
	if (*s < '0' || *s > '9')
		return fail(r, p->col, "'%s' is a number from 0 to %lu, not '%s'", p->key, max, s);
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > max)
		return fail(r, p->col, "'%s' is a number from 0 to %lu, not '%s'", p->key, max, s);
	*out = v;
	return 0;
}

static int proto_of(struct reader *r, struct logline *ev)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = { { "tcp", IPPROTO_TCP },
		      { "udp", IPPROTO_UDP },
		      { "sctp", IPPROTO_SCTP },
		      { "icmp", IPPROTO_ICMP },
		      { "icmpv6", IPPROTO_ICMPV6 } };
	const struct pair *p = find(r, "proto");
	if (!p)
		return fail(r, r->len + 1, "the event has no 'proto'");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(p->val, names[i].name)) {
			ev->proto = names[i].proto;
			return 0;
		}
	unsigned long v;
	if (number(r, p, 255, &v))
		return -1;
	ev->proto = (uint8_t)v;
	return 0;
}

static int addr_of(struct reader *r, const char *key, int *family, uint8_t out[16])
{
	const struct pair *p = find(r, key);
	if (!p)
		return fail(r, r->len + 1, "the event has no '%s'", key);
	int f = strchr(p->val, ':') ? AF_INET6 : AF_INET;
	memset(out, 0, 16);
	if (inet_pton(f, p->val, out) != 1)
		return fail(r, p->col, "'%s' is not an address: '%s'", key, p->val);
	if (*family && *family != f)
		return fail(r, p->col, "'%s' is of the other address family", key);
	*family = f;
	return 0;
}

static int interpret(struct reader *r, struct logline *ev)
{
	if (copy_str(r, "source", ev->source, sizeof(ev->source)) ||
	    copy_str(r, "rule", ev->rule, sizeof(ev->rule)) ||
	    copy_str(r, "prefix", ev->prefix, sizeof(ev->prefix)) ||
	    copy_str(r, "tenant", ev->tenant, sizeof(ev->tenant)) ||
	    copy_str(r, "in", ev->in, sizeof(ev->in)) ||
	    copy_str(r, "out", ev->out, sizeof(ev->out)) ||
	    copy_str(r, "verdict", ev->verdict, sizeof(ev->verdict)))
		return -1;
	if (proto_of(r, ev) || addr_of(r, "src", &ev->family, ev->src) ||
	    addr_of(r, "dst", &ev->family, ev->dst))
		return -1;
	const struct pair *fam = find(r, "family");
	if (fam && strcmp(fam->val, ev->family == AF_INET6 ? "ip6" : "ip"))
		return fail(r, fam->col, "family '%s' does not fit the addresses", fam->val);
	if ((ev->proto == IPPROTO_ICMP && ev->family == AF_INET6) ||
	    (ev->proto == IPPROTO_ICMPV6 && ev->family == AF_INET))
		return fail(r, find(r, "proto")->col, "%s with %s addresses", find(r, "proto")->val,
			    ev->family == AF_INET6 ? "IPv6" : "IPv4");
	const struct pair *sp = find(r, "sport"), *dp = find(r, "dport"),
			  *ty = find(r, "icmp_type");
	unsigned long v;
	if (ev->proto == IPPROTO_TCP || ev->proto == IPPROTO_UDP || ev->proto == IPPROTO_SCTP) {
		if (!sp || !dp)
			return fail(r, r->len + 1,
				    "the event has no '%s' (the logged packet was cut short)",
				    sp ? "dport" : "sport");
		if (number(r, sp, 65535, &v))
			return -1;
		ev->sport = (uint16_t)v;
		if (number(r, dp, 65535, &v))
			return -1;
		ev->dport = (uint16_t)v;
		ev->has_ports = true;
	}
	if (ty && (ev->proto == IPPROTO_ICMP || ev->proto == IPPROTO_ICMPV6)) {
		if (number(r, ty, 255, &v))
			return -1;
		ev->icmp_type = (uint8_t)v;
		ev->has_icmp_type = true;
	}
	return 0;
}

int logline_parse(const char *text, size_t len, struct logline *ev, char *err, size_t errsz,
		  size_t *col)
{
	struct reader r = { .text = text, .len = len, .err = err, .errsz = errsz, .col = col };
	memset(ev, 0, sizeof(*ev));
	while (r.len && (text[r.len - 1] == '\n' || text[r.len - 1] == '\r'))
		r.len--;
	if (r.len > LOGLINE_MAX)
		return fail(&r, LOGLINE_MAX + 1, "longer than %d bytes", LOGLINE_MAX);
	if (memchr(text, '\0', r.len))
		return fail(&r, (size_t)((const char *)memchr(text, '\0', r.len) - text) + 1,
			    "a NUL byte");
	const char *brace = memchr(text, '{', r.len);
	int rc;
	if (brace) {
		rc = read_json(&r, (size_t)(brace - text));
	} else {
		size_t i = 0;
		while (i < r.len && (text[i] == ' ' || text[i] == '\t'))
			i++;
		if (i < r.len && text[i] == '-')
			i++;
		rc = read_words(&r, i);
	}
	return rc ? -1 : interpret(&r, ev);
}

bool logline_looks_like(const char *text)
{
	return strstr(text, "src=") || strstr(text, "\"src\"");
}
