/* Protocol fields of an inspected stream (appliance/fastpath/fields.h). */
#include <string.h>

#include "appliance/fastpath/fields.h"

/* RFC 8446 section 5.1: record header, content type handshake, and the
 * largest fragment a record may carry. */
#define TLS_RECORD_HDR     5
#define TLS_TYPE_HANDSHAKE 22
#define TLS_MAX_FRAGMENT   16384
#define TLS_RECORD_MAJOR   3
/* RFC 8446 section 4: handshake header (type, 24-bit length). */
#define TLS_HANDSHAKE_HDR  4
#define TLS_CLIENT_HELLO   1
#define TLS_RANDOM         32
#define TLS_SESSION_ID_MAX 32
/* RFC 6066 section 3. */
#define TLS_EXT_SERVER_NAME 0
#define TLS_NAME_HOST       0
/* The ClientHello is assembled here: the judge's window is smaller. */
#define TLS_HELLO_MAX 8192

/* RFC 1035 section 4.1.1 / 4.1.2 / 2.3.4. */
#define DNS_HDR         12
#define DNS_LABEL_MAX   63
#define DNS_NAME_WIRE   255
#define DNS_QTYPE_CLASS 4
#define DNS_TCP_LEN     2 /* RFC 1035 section 4.2.2 */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool fp_name_normalise(char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
			return false;
	if (n && name[n - 1] == '.')
		n--;
	/* an empty label ("a..b", ".a", "a..") names nothing a resolver or
	 * a server would look up: refused rather than guessed */
	if (!n || name[0] == '.' || name[n - 1] == '.' || memmem(name, n, "..", 2))
		return false;
	for (size_t i = 0; i < n; i++)
		name[i] = lower(name[i]);
	name[n] = '\0';
	return true;
}

bool fp_name_matches(const char *pattern, bool suffix, const char *name)
{
	if (!suffix)
		return !strcmp(pattern, name);
	size_t pl = strlen(pattern), nl = strlen(name);
	return nl > pl + 1 && name[nl - pl - 1] == '.' && !strcmp(name + nl - pl, pattern);
}

/* ---- TLS ---- */

/* A cursor over a length-checked message. */
struct cursor {
	const uint8_t *p;
	size_t len;
	bool bad;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
	if (c->bad || c->len < n) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	c->len -= n;
	return p;
}

static size_t take_n(struct cursor *c, size_t bytes)
{
	const uint8_t *p = take(c, bytes);
	size_t v = 0;

	for (size_t i = 0; p && i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* A sub-cursor over a vector with a length prefix of `bytes` bytes. */
static struct cursor take_vector(struct cursor *c, size_t bytes)
{
	size_t n = take_n(c, bytes);
	const uint8_t *p = take(c, n);
	return (struct cursor){ .p = p, .len = p ? n : 0, .bad = !p };
}

static enum fp_field_state sni_list(struct cursor ext, char name[FP_NAME_MAX])
{
	struct cursor list = take_vector(&ext, 2);

	/* OpenSSL (and RFC 6066's "MUST NOT contain more than one name of the
	 * same name_type") admit one host_name; anything else is refused. */
	if (list.bad || ext.len || take_n(&list, 1) != TLS_NAME_HOST)
		return FP_FIELD_MALFORMED;
	struct cursor host = take_vector(&list, 2);
	if (host.bad || list.len || !host.len || host.len >= FP_NAME_MAX)
		return FP_FIELD_MALFORMED;
	memcpy(name, host.p, host.len);
	name[host.len] = '\0';
	if (memchr(host.p, 0, host.len) || !fp_name_normalise(name))
		return FP_FIELD_MALFORMED;
	return FP_FIELD_FOUND;
}

static enum fp_field_state client_hello(struct cursor ch, char name[FP_NAME_MAX])
{
	take(&ch, 2 + TLS_RANDOM); /* legacy_version, random */
	struct cursor sid = take_vector(&ch, 1);
	struct cursor suites = take_vector(&ch, 2);
	struct cursor comp = take_vector(&ch, 1);
	if (ch.bad || sid.len > TLS_SESSION_ID_MAX || suites.len < 2 || suites.len % 2 || !comp.len)
		return FP_FIELD_MALFORMED;
	if (!ch.len)
		return FP_FIELD_ABSENT; /* no extensions (RFC 5246 section 7.4.1.2) */
	struct cursor exts = take_vector(&ch, 2);
	if (exts.bad || ch.len)
		return FP_FIELD_MALFORMED;
	enum fp_field_state st = FP_FIELD_ABSENT;
	while (exts.len) {
		size_t type = take_n(&exts, 2);
		struct cursor ext = take_vector(&exts, 2);
		if (exts.bad)
			return FP_FIELD_MALFORMED;
		if (type != TLS_EXT_SERVER_NAME)
			continue;
		/* RFC 8446 section 4.2: one extension of a type at most. */
		if (st != FP_FIELD_ABSENT)
			return FP_FIELD_MALFORMED;
		st = sni_list(ext, name);
		if (st == FP_FIELD_MALFORMED)
			return st;
	}
	return st;
}

enum fp_field_state fp_tls_sni(const uint8_t *stream, size_t len, char name[FP_NAME_MAX])
{
	uint8_t hello[TLS_HELLO_MAX];
	size_t have = 0, need = 0;
	size_t off = 0;

	/* The handshake message is the concatenation of the fragments of
	 * consecutive handshake records; a sender may cut it anywhere. */
	for (;;) {
		if (len - off < TLS_RECORD_HDR)
			return FP_FIELD_PENDING;
		const uint8_t *r = stream + off;
		size_t rlen = get16(r + 3);
		if (r[0] != TLS_TYPE_HANDSHAKE || r[1] != TLS_RECORD_MAJOR || !rlen ||
		    rlen > TLS_MAX_FRAGMENT)
			return FP_FIELD_MALFORMED;
		size_t avail = len - off - TLS_RECORD_HDR;
		size_t n = avail < rlen ? avail : rlen;
		if (have + n > sizeof(hello))
			return FP_FIELD_MALFORMED;
		memcpy(hello + have, r + TLS_RECORD_HDR, n);
		have += n;
		if (!need && have >= TLS_HANDSHAKE_HDR) {
			if (hello[0] != TLS_CLIENT_HELLO)
				return FP_FIELD_MALFORMED;
			need = TLS_HANDSHAKE_HDR +
			       ((size_t)hello[1] << 16 | (size_t)hello[2] << 8 | hello[3]);
			if (need > sizeof(hello))
				return FP_FIELD_MALFORMED;
		}
		if (need && have >= need)
			break;
		if (n < rlen)
			return FP_FIELD_PENDING;
		off += TLS_RECORD_HDR + rlen;
	}
	struct cursor ch = { .p = hello + TLS_HANDSHAKE_HDR, .len = need - TLS_HANDSHAKE_HDR };
	return client_hello(ch, name);
}

/* ---- HTTP/1 ---- */

/* RFC 9110 section 5.6.2: token characters. */
static bool is_tchar(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* One line of the message from *pos: [*start, *start + *n) without its
 * CRLF or LF (RFC 9112 section 2.2 lets a recipient take a bare LF).
 * -1 for a line not yet complete, -2 for a bare CR or NUL inside it. */
static int next_line(const uint8_t *s, size_t len, size_t *pos, const uint8_t **start, size_t *n)
{
	const uint8_t *nl = memchr(s + *pos, '\n', len - *pos);

	if (!nl)
		return -1;
	size_t end = (size_t)(nl - s);
	*start = s + *pos;
	*n = end - *pos;
	if (*n && (*start)[*n - 1] == '\r')
		(*n)--;
	if (memchr(*start, '\r', *n) || memchr(*start, 0, *n))
		return -2;
	*pos = end + 1;
	return 0;
}

static bool eq_nocase(const uint8_t *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((char)a[i]) != b[i])
			return false;
	return true;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)lower((char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The authority's host (RFC 3986 section 3.2.2) without its port,
 * normalised. False for a userinfo, a bad port or a bad name. */
static bool set_host(struct fp_http_request *req, const uint8_t *a, size_t n)
{
	size_t hn = n;

	if (memchr(a, '@', n) || memchr(a, '/', n))
		return false;
	if (n && a[0] == '[') {
		const uint8_t *close = memchr(a, ']', n);
		if (!close)
			return false;
		hn = (size_t)(close - a) + 1;
	} else {
		const uint8_t *colon = memchr(a, ':', n);
		if (colon)
			hn = (size_t)(colon - a);
	}
	if (hn < n) {
		if (a[hn] != ':')
			return false;
		for (size_t i = hn + 1; i < n; i++)
			if (a[i] < '0' || a[i] > '9')
				return false;
	}
	if (!hn || hn >= sizeof(req->host))
		return false;
	memcpy(req->host, a, hn);
	req->host[hn] = '\0';
	req->has_host = true;
	return fp_name_normalise(req->host);
}

/* Appends one decoded segment, or pops one for "..". */
static bool path_segment(char *out, size_t *o, const char *seg, size_t n)
{
	if (!n || (n == 1 && seg[0] == '.'))
		return true; /* "//" and "/./" name the same resource */
	if (n == 2 && seg[0] == '.' && seg[1] == '.') {
		while (*o > 0 && out[--*o] != '/')
			;
		return true;
	}
	if (*o + 1 + n >= FP_PATH_MAX)
		return false;
	out[(*o)++] = '/';
	memcpy(out + *o, seg, n);
	*o += n;
	return true;
}

/* The path as a server resolves it: percent-decoded (RFC 3986 section
 * 2.1), dot segments removed (section 5.2.4), empty segments collapsed. */
static bool set_path(struct fp_http_request *req, const uint8_t *p, size_t n)
{
	char dec[FP_PATH_MAX];
	size_t d = 0, o = 0;

	for (size_t i = 0; i < n; i++) {
		if (d + 1 >= sizeof(dec))
			return false;
		if (p[i] != '%') {
			dec[d++] = (char)p[i];
			continue;
		}
		if (n - i < 3 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
			return false;
		dec[d] = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
		if (!dec[d++])
			return false;
		i += 2;
	}
	size_t seg = 0;
	for (size_t i = 0; i <= d; i++) {
		if (i < d && dec[i] != '/')
			continue;
		if (!path_segment(req->path, &o, dec + seg, i - seg))
			return false;
		seg = i + 1;
	}
	/* a path that ends in a separator (or in a dot segment) names a
	 * directory: it keeps its final '/' */
	bool dir = d && (dec[d - 1] == '/' || (d >= 2 && !memcmp(dec + d - 2, "/.", 2)) ||
			 (d >= 3 && !memcmp(dec + d - 3, "/..", 3)));
	if (!o || dir)
		req->path[o++] = '/';
	req->path[o] = '\0';
	req->has_path = true;
	return true;
}

/* RFC 9112 section 3.2: origin-form, absolute-form, authority-form
 * (CONNECT) or asterisk-form. */
static bool parse_target(struct fp_http_request *req, bool connect, const uint8_t *t, size_t n)
{
	if (connect)
		return set_host(req, t, n);
	if (n == 1 && t[0] == '*') {
		strcpy(req->path, "*");
		req->has_path = true;
		return true;
	}
	const uint8_t *auth = NULL;
	size_t auth_n = 0;
	if (t[0] != '/') {
		const uint8_t *sep = memchr(t, ':', n);
		if (!sep || n - (size_t)(sep - t) < 3 || memcmp(sep, "://", 3) ||
		    !(eq_nocase(t, (size_t)(sep - t), "http") ||
		      eq_nocase(t, (size_t)(sep - t), "https")))
			return false;
		auth = sep + 3;
		auth_n = 0;
		while (auth + auth_n < t + n && !strchr("/?#", auth[auth_n]))
			auth_n++;
		n -= (size_t)(auth + auth_n - t);
		t = auth + auth_n;
		if (!set_host(req, auth, auth_n))
			return false;
	}
	size_t pn = 0;
	while (pn < n && t[pn] != '?' && t[pn] != '#')
		pn++;
	return set_path(req, t, pn);
}

/* method SP request-target SP HTTP-version (RFC 9112 section 3). */
static bool request_line(struct fp_http_request *req, const uint8_t *l, size_t n, bool *connect)
{
	size_t m = 0;

	while (m < n && is_tchar(l[m]))
		m++;
	if (!m || m == n || l[m] != ' ')
		return false;
	*connect = m == 7 && !memcmp(l, "CONNECT", 7);
	size_t t = m + 1, te = t;
	while (te < n && l[te] > 0x20 && l[te] < 0x7f)
		te++;
	if (te == t || n - te != 9 || l[te] != ' ' || memcmp(l + te + 1, "HTTP/", 5) ||
	    l[te + 6] < '0' || l[te + 6] > '9' || l[te + 7] != '.' || l[te + 8] < '0' ||
	    l[te + 8] > '9')
		return false;
	return parse_target(req, *connect, l + t, te - t);
}

struct http_headers {
	const uint8_t *host;
	size_t host_n;
	int hosts;
	bool has_length, chunked;
	size_t length;
};

static bool field_value_ok(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return false;
	return true;
}

/* name ":" OWS value OWS (RFC 9112 section 5): no space before the colon,
 * no line folding (section 5.2). */
static bool header_line(struct http_headers *h, const uint8_t *l, size_t n)
{
	size_t c = 0;

	while (c < n && is_tchar(l[c]))
		c++;
	if (!c || c == n || l[c] != ':')
		return false;
	const uint8_t *v = l + c + 1;
	size_t vn = n - c - 1;
	while (vn && is_ows(v[0]))
		v++, vn--;
	while (vn && is_ows(v[vn - 1]))
		vn--;
	if (!field_value_ok(v, vn))
		return false;
	if (eq_nocase(l, c, "host")) {
		h->host = v, h->host_n = vn;
		h->hosts++;
	} else if (eq_nocase(l, c, "content-length")) {
		size_t len = 0;
		if (!vn || vn > 15)
			return false;
		for (size_t i = 0; i < vn; i++) {
			if (v[i] < '0' || v[i] > '9')
				return false;
			len = len * 10 + (size_t)(v[i] - '0');
		}
		if (h->has_length && h->length != len)
			return false;
		h->has_length = true;
		h->length = len;
	} else if (eq_nocase(l, c, "transfer-encoding")) {
		/* only chunked alone: a coding list is a smuggling favourite */
		if (h->chunked || !eq_nocase(v, vn, "chunked"))
			return false;
		h->chunked = true;
	}
	return true;
}

/* A chunked body (RFC 9112 section 7.1) from *pos: its end, -1 for not
 * yet complete, -2 for malformed. */
static int chunked_body(const uint8_t *s, size_t len, size_t *pos)
{
	for (;;) {
		const uint8_t *l;
		size_t n, size = 0, i = 0;
		int rc = next_line(s, len, pos, &l, &n);
		if (rc)
			return rc;
		for (; i < n && hexval(l[i]) >= 0; i++) {
			if (i >= 8)
				return -2;
			size = size << 4 | (size_t)hexval(l[i]);
		}
		if (!i || (i < n && l[i] != ';' && !is_ows(l[i])))
			return -2;
		if (!size)
			break;
		if (len - *pos < size + 1)
			return -1;
		*pos += size;
		if (s[*pos] == '\r') {
			if (len - *pos < 2)
				return -1;
			(*pos)++;
		}
		if (s[(*pos)++] != '\n')
			return -2;
	}
	for (;;) { /* trailer section, then the empty line */
		const uint8_t *l;
		size_t n;
		int rc = next_line(s, len, pos, &l, &n);
		if (rc)
			return rc;
		if (!n)
			return 0;
	}
}

static enum fp_field_state line_state(int rc)
{
	return rc == -1 ? FP_FIELD_PENDING : FP_FIELD_MALFORMED;
}

enum fp_field_state fp_http_request(const uint8_t *s, size_t len, struct fp_http_request *req)
{
	struct http_headers h = { 0 };
	const uint8_t *l;
	size_t pos = 0, n;
	bool connect;
	int rc;

	memset(req, 0, sizeof(*req));
	/* RFC 9112 section 2.2: empty lines before the request line are
	 * ignored by servers. */
	while (!(rc = next_line(s, len, &pos, &l, &n)) && !n)
		;
	if (rc)
		return line_state(rc);
	if (!request_line(req, l, n, &connect))
		return FP_FIELD_MALFORMED;
	bool target_host = req->has_host;
	for (;;) {
		if ((rc = next_line(s, len, &pos, &l, &n)))
			return line_state(rc);
		if (!n)
			break;
		if (!header_line(&h, l, n))
			return FP_FIELD_MALFORMED;
	}
	/* RFC 9112 section 3.2: more than one Host is refused; the target's
	 * authority wins over the field (section 3.2.2). */
	if (h.hosts > 1 || (h.chunked && h.has_length))
		return FP_FIELD_MALFORMED;
	if (!target_host && h.host_n && !set_host(req, h.host, h.host_n))
		return FP_FIELD_MALFORMED;
	if (h.chunked) {
		if ((rc = chunked_body(s, len, &pos)))
			return line_state(rc);
	} else if (h.has_length) {
		if (len - pos < h.length)
			return FP_FIELD_PENDING;
		pos += h.length;
	}
	req->end = pos;
	return FP_FIELD_FOUND;
}

/* ---- DNS ---- */

static bool dns_plain(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

enum fp_field_state fp_dns_qname(const uint8_t *msg, size_t len, char name[FP_NAME_MAX])
{
	size_t off = DNS_HDR, o = 0;

	if (len < DNS_HDR || get16(msg + 4) != 1)
		return FP_FIELD_MALFORMED;
	for (;;) {
		if (off >= len)
			return FP_FIELD_MALFORMED;
		size_t l = msg[off];
		/* a compression pointer or the reserved label types: nothing
		 * before the question for a pointer to name (RFC 1035 4.1.4) */
		if (l > DNS_LABEL_MAX)
			return FP_FIELD_MALFORMED;
		if (off - DNS_HDR + 1 + l > DNS_NAME_WIRE || len - off - 1 < l)
			return FP_FIELD_MALFORMED;
		if (!l)
			break;
		if (o)
			name[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[off + 1 + i];
			if (dns_plain(c)) {
				name[o++] = lower((char)c);
				continue;
			}
			name[o++] = '\\';
			name[o++] = (char)('0' + c / 100);
			name[o++] = (char)('0' + c / 10 % 10);
			name[o++] = (char)('0' + c % 10);
		}
		off += 1 + l;
	}
	name[o] = '\0';
	if (len - off - 1 < DNS_QTYPE_CLASS)
		return FP_FIELD_MALFORMED;
	return FP_FIELD_FOUND;
}

enum fp_field_state fp_dns_tcp_qname(const uint8_t *stream, size_t len, char name[FP_NAME_MAX],
				     size_t *end)
{
	if (len < DNS_TCP_LEN)
		return FP_FIELD_PENDING;
	size_t n = get16(stream);
	if (len - DNS_TCP_LEN < n)
		return FP_FIELD_PENDING;
	*end = DNS_TCP_LEN + n;
	return fp_dns_qname(stream + DNS_TCP_LEN, n, name);
}
