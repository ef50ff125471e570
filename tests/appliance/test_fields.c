/* Protocol fields of the fast path (appliance/fastpath/fields.c): the TLS
 * server name, HTTP host and path, DNS question name; normalisation,
 * messages cut anywhere, and what is malformed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/fastpath/fields.h"
#include "tests/lib/checkmain.h"

/* ---- TLS ---- */

static size_t put_vec(uint8_t *o, size_t lenbytes, const void *data, size_t n)
{
	for (size_t i = 0; i < lenbytes; i++)
		o[i] = (uint8_t)(n >> (8 * (lenbytes - 1 - i)));
	memcpy(o + lenbytes, data, n);
	return lenbytes + n;
}

/* A server_name extension with one host_name (or two when `second`). */
static size_t sni_ext(uint8_t *o, const char *name, size_t name_len, const char *second)
{
	uint8_t list[600];
	size_t l = 0;
	list[l++] = 0;
	l += put_vec(list + l, 2, name, name_len);
	if (second) {
		list[l++] = 0;
		l += put_vec(list + l, 2, second, strlen(second));
	}
	uint8_t body[620];
	size_t b = put_vec(body, 2, list, l);
	o[0] = 0, o[1] = 0; /* type server_name */
	return 2 + put_vec(o + 2, 2, body, b);
}

/* A ClientHello handshake message (header included) with a supported
 * groups extension, then the extensions in `more`. */
static size_t hello_with(uint8_t *o, const uint8_t *more, size_t more_len)
{
	uint8_t exts[2000], body[2200];
	size_t e = 0, b = 0;
	static const uint8_t groups[] = { 0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d };
	memcpy(exts, groups, sizeof(groups));
	e = sizeof(groups);
	memcpy(exts + e, more, more_len);
	e += more_len;
	body[b++] = 3, body[b++] = 3;
	memset(body + b, 0x42, 32);
	b += 32;
	body[b++] = 0;                            /* session id */
	b += put_vec(body + b, 2, "\x13\x01", 2); /* one suite */
	b += put_vec(body + b, 1, "", 1);         /* compression null */
	b += put_vec(body + b, 2, exts, e);
	o[0] = 1;
	o[1] = (uint8_t)(b >> 16), o[2] = (uint8_t)(b >> 8), o[3] = (uint8_t)b;
	memcpy(o + 4, body, b);
	return 4 + b;
}

/* The same with `n_sni` server_name extensions naming sni (0: none). */
static size_t hello_msg(uint8_t *o, const char *sni, int n_sni)
{
	uint8_t more[1400] = { 0 };
	size_t e = 0;
	for (int i = 0; i < n_sni; i++)
		e += sni_ext(more + e, sni, strlen(sni), NULL);
	return hello_with(o, more, e);
}

/* The message in records of at most `frag` bytes each. */
static size_t records(uint8_t *o, const uint8_t *msg, size_t n, size_t frag)
{
	size_t out = 0;
	for (size_t off = 0; off < n; off += frag) {
		size_t k = n - off < frag ? n - off : frag;
		o[out++] = 22, o[out++] = 3, o[out++] = 1;
		out += put_vec(o + out, 2, msg + off, k);
	}
	return out;
}

START_TEST(tls_sni_found_and_normalised)
{
	uint8_t msg[2300], rec[2400];
	char name[FP_NAME_MAX];
	size_t n = records(rec, msg, hello_msg(msg, "WWW.Example.COM.", 1), 16384);

	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_FOUND);
	ck_assert_str_eq(name, "www.example.com");
	/* every cut before the end is pending, never a verdict */
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(fp_tls_sni(rec, k, name), FP_FIELD_PENDING);
	/* bytes after the ClientHello (a record that follows) change nothing */
	memcpy(rec + n, "\x14\x03\x03\x00\x01\x01", 6);
	ck_assert_int_eq(fp_tls_sni(rec, n + 6, name), FP_FIELD_FOUND);
}
END_TEST

START_TEST(tls_sni_across_records)
{
	uint8_t msg[2300], rec[4000];
	char name[FP_NAME_MAX];
	size_t m = hello_msg(msg, "evil.example", 1);

	/* one byte per record at first, then the handshake header split */
	for (size_t frag = 1; frag < 80; frag += 7) {
		size_t n = records(rec, msg, m, frag);
		ck_assert_uint_le(n, sizeof(rec));
		ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_FOUND);
		ck_assert_str_eq(name, "evil.example");
		ck_assert_int_eq(fp_tls_sni(rec, n - 1, name), FP_FIELD_PENDING);
	}
}
END_TEST

START_TEST(tls_sni_absent_and_malformed)
{
	uint8_t msg[2300], rec[2400];
	char name[FP_NAME_MAX];
	size_t n;

	n = records(rec, msg, hello_msg(msg, "x", 0), 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_ABSENT);
	/* two server_name extensions */
	n = records(rec, msg, hello_msg(msg, "a.example", 2), 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	/* not a TLS handshake at all */
	ck_assert_int_eq(fp_tls_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name),
			 FP_FIELD_MALFORMED);
	/* a handshake that is not a ClientHello */
	n = records(rec, msg, hello_msg(msg, "a.example", 1), 16384);
	rec[5] = 2;
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	/* an extension length past the message */
	size_t m = hello_msg(msg, "a.example", 1);
	msg[m - 2 - 9 - 2] ^= 0x40; /* the server_name list length's high byte */
	n = records(rec, msg, m, 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	/* two names in one list, a name with a NUL, an empty name */
	uint8_t ext[700];
	size_t e = sni_ext(ext, "a.example", 9, "b.example");
	n = records(rec, msg, hello_with(msg, ext, e), 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	e = sni_ext(ext, "evil\0.good", 10, NULL);
	n = records(rec, msg, hello_with(msg, ext, e), 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	e = sni_ext(ext, "", 0, NULL);
	n = records(rec, msg, hello_with(msg, ext, e), 16384);
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	/* a record type other than handshake before the hello is complete */
	n = records(rec, msg, hello_msg(msg, "a.example", 1), 30);
	rec[35] = 23;
	ck_assert_int_eq(fp_tls_sni(rec, n, name), FP_FIELD_MALFORMED);
	/* a zero-length handshake record (RFC 8446 section 5.1 forbids it) */
	ck_assert_int_eq(fp_tls_sni((const uint8_t *)"\x16\x03\x01\x00\x00", 5, name),
			 FP_FIELD_MALFORMED);
}
END_TEST

/* ---- HTTP ---- */

static enum fp_field_state http(const char *s, struct fp_http_request *r)
{
	return fp_http_request((const uint8_t *)s, strlen(s), r);
}

START_TEST(http_host_and_path)
{
	struct fp_http_request r;
	const char *req =
	    "GET /a/b?x=1#f HTTP/1.1\r\nUser-Agent: t\r\nHost: Example.COM.:8080\r\n\r\n";

	ck_assert_int_eq(http(req, &r), FP_FIELD_FOUND);
	ck_assert(r.has_host && r.has_path);
	ck_assert_str_eq(r.host, "example.com");
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_uint_eq(r.end, strlen(req));
	for (size_t k = 0; k < strlen(req); k++)
		ck_assert_int_eq(fp_http_request((const uint8_t *)req, k, &r), FP_FIELD_PENDING);
	/* bare LF line ends, empty lines before the request */
	ck_assert_int_eq(http("\r\n\nGET / HTTP/1.0\nhost:\tA.b\t\n\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.host, "a.b");
	ck_assert_str_eq(r.path, "/");
	/* no Host: absent, the path is still there */
	ck_assert_int_eq(http("GET /x HTTP/1.0\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert(!r.has_host);
	ck_assert_str_eq(r.path, "/x");
	/* an IPv6 literal keeps its brackets, loses its port */
	ck_assert_int_eq(http("GET / HTTP/1.1\r\nHost: [FD00::1]:80\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.host, "[fd00::1]");
}
END_TEST

START_TEST(http_path_is_decoded_and_normalised)
{
	struct fp_http_request r;

	ck_assert_int_eq(http("GET /x/%2e%2E/ADMIN/./p//q HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/ADMIN/p/q");
	ck_assert_int_eq(http("GET /%61dmin/ HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/admin/");
	ck_assert_int_eq(http("GET /../../etc/.. HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/");
	ck_assert_int_eq(http("GET /a%2fb HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_int_eq(http("OPTIONS * HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "*");
	/* bad or NUL escapes are refused, as servers refuse them */
	ck_assert_int_eq(http("GET /a%zz HTTP/1.1\r\n\r\n", &r), FP_FIELD_MALFORMED);
	ck_assert_int_eq(http("GET /a%00b HTTP/1.1\r\n\r\n", &r), FP_FIELD_MALFORMED);
	ck_assert_int_eq(http("GET /a% HTTP/1.1\r\n\r\n", &r), FP_FIELD_MALFORMED);
}
END_TEST

START_TEST(http_target_forms)
{
	struct fp_http_request r;

	/* the absolute form's authority wins over Host (RFC 9112 3.2.2) */
	ck_assert_int_eq(
	    http("GET HTTP://Evil.Example:81/p?q HTTP/1.1\r\nHost: good.example\r\n\r\n", &r),
	    FP_FIELD_FOUND);
	ck_assert_str_eq(r.host, "evil.example");
	ck_assert_str_eq(r.path, "/p");
	ck_assert_int_eq(http("GET http://a.example HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/");
	ck_assert_int_eq(http("CONNECT Evil.Example:443 HTTP/1.1\r\n\r\n", &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.host, "evil.example");
	ck_assert(!r.has_path);
	ck_assert_int_eq(http("GET ftp://a/ HTTP/1.1\r\n\r\n", &r), FP_FIELD_MALFORMED);
	ck_assert_int_eq(http("GET http://u@a/ HTTP/1.1\r\n\r\n", &r), FP_FIELD_MALFORMED);
}
END_TEST

START_TEST(http_malformed)
{
	struct fp_http_request r;
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before ':' */
		"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",         /* obs-fold */
		"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",         /* bare CR */
		"GET /  HTTP/1.1\r\n\r\n",                      /* two spaces */
		"GET /\r\n\r\n",                                /* HTTP/0.9 */
		"\x16\x03\x01\x02\x05hello\r\n\r\n",            /* not HTTP */
		"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",          /* a port that is no number */
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",          /* a space in the name */
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(http(bad[i], &r) == FP_FIELD_MALFORMED, "case %zu accepted", i);
}
END_TEST

START_TEST(http_bodies_delimit_the_next_request)
{
	struct fp_http_request r;
	const char *cl =
	    "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n";
	const char *ch = "POST /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
			 "3;x=y\r\nabc\r\n0\r\nTrailer: t\r\n\r\nGET /c HTTP/1.1\r\n\r\n";

	ck_assert_int_eq(http(cl, &r), FP_FIELD_FOUND);
	ck_assert_uint_eq(r.end, strlen(cl) - strlen("GET /b HTTP/1.1\r\n\r\n"));
	ck_assert_int_eq(http(cl + r.end, &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/b");
	ck_assert_int_eq(http(ch, &r), FP_FIELD_FOUND);
	ck_assert_int_eq(http(ch + r.end, &r), FP_FIELD_FOUND);
	ck_assert_str_eq(r.path, "/c");
	/* a body not yet whole: pending */
	ck_assert_int_eq(fp_http_request((const uint8_t *)cl, 42, &r), FP_FIELD_PENDING);
	for (size_t k = 0; k < strlen(ch) - strlen("GET /c HTTP/1.1\r\n\r\n"); k++)
		ck_assert_int_eq(fp_http_request((const uint8_t *)ch, k, &r), FP_FIELD_PENDING);
}
END_TEST

/* ---- DNS ---- */

static size_t dns_query(uint8_t *o, const void *qname, size_t n, uint8_t qdcount)
{
	static const uint8_t hdr[12] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01 };
	memcpy(o, hdr, 12);
	o[5] = qdcount;
	memcpy(o + 12, qname, n);
	memcpy(o + 12 + n, "\x00\x01\x00\x01", 4);
	return 12 + n + 4;
}

START_TEST(dns_qname_found_and_normalised)
{
	uint8_t m[600];
	char name[FP_NAME_MAX];
	size_t n = dns_query(m,
			     "\x03WwW\x07"
			     "Example\x03"
			     "com\x00",
			     17, 1);

	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_FOUND);
	ck_assert_str_eq(name, "www.example.com");
	/* a label holding a dot, a space or a byte past ASCII is escaped:
	 * "a.b" as one label is not the name a.b */
	n = dns_query(m,
		      "\x03"
		      "a.b\x02\xc3\xa9\x00",
		      8, 1);
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_FOUND);
	ck_assert_str_eq(name, "a\\046b.\\195\\169");
	/* the root */
	n = dns_query(m, "\x00", 1, 1);
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_FOUND);
	ck_assert_str_eq(name, "");
}
END_TEST

START_TEST(dns_qname_malformed)
{
	uint8_t m[600], big[300];
	char name[FP_NAME_MAX];
	size_t n;

	n = dns_query(m,
		      "\x01"
		      "a\x00",
		      3, 2); /* two questions */
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_MALFORMED);
	n = dns_query(m,
		      "\x01"
		      "a\x00",
		      3, 0); /* none */
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_MALFORMED);
	n = dns_query(m,
		      "\x01"
		      "a\xc0\x0c",
		      4, 1); /* a compression pointer */
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_MALFORMED);
	n = dns_query(m,
		      "\x05"
		      "a\x00",
		      3, 1); /* a label past the message */
	ck_assert_int_eq(fp_dns_qname(m, n - 4, name), FP_FIELD_MALFORMED);
	n = dns_query(m,
		      "\x01"
		      "a\x00",
		      3, 1);
	ck_assert_int_eq(fp_dns_qname(m, n - 1, name), FP_FIELD_MALFORMED); /* no qclass */
	ck_assert_int_eq(fp_dns_qname(m, 11, name), FP_FIELD_MALFORMED);
	/* 256 octets of name on the wire (RFC 1035: at most 255) */
	for (size_t i = 0; i < 4; i++) {
		big[i * 64] = 63;
		memset(big + i * 64 + 1, 'a', 63);
	}
	big[256] = 0;
	n = dns_query(m, big, 257, 1);
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_MALFORMED);
	big[192] = 61; /* 255 octets: fine */
	big[254] = 0;
	n = dns_query(m, big, 255, 1);
	ck_assert_int_eq(fp_dns_qname(m, n, name), FP_FIELD_FOUND);
}
END_TEST

START_TEST(dns_over_tcp)
{
	uint8_t s[600];
	char name[FP_NAME_MAX];
	size_t end, n = dns_query(s + 2,
				  "\x04"
				  "Evil\x00",
				  6, 1);

	s[0] = (uint8_t)(n >> 8), s[1] = (uint8_t)n;
	for (size_t k = 0; k < n + 2; k++)
		ck_assert_int_eq(fp_dns_tcp_qname(s, k, name, &end), FP_FIELD_PENDING);
	ck_assert_int_eq(fp_dns_tcp_qname(s, n + 2, name, &end), FP_FIELD_FOUND);
	ck_assert_uint_eq(end, n + 2);
	ck_assert_str_eq(name, "evil");
}
END_TEST

/* ---- names ---- */

START_TEST(names_compare_exactly_or_by_suffix)
{
	char n[32] = "A.Example.COM.";

	ck_assert(fp_name_normalise(n));
	ck_assert_str_eq(n, "a.example.com");
	ck_assert(fp_name_matches("a.example.com", false, n));
	ck_assert(fp_name_matches("example.com", true, n));
	ck_assert(fp_name_matches("com", true, n));
	ck_assert(!fp_name_matches("example.com", false, n));
	ck_assert(!fp_name_matches("a.example.com", true, n)); /* *.x is not x */
	ck_assert(!fp_name_matches("ample.com", true, n));     /* a label boundary */
	char dot[] = ".", empty[] = "", sp[] = "a b", ctl[] = "a\x01", dots[] = "a..",
	     lead[] = ".a", mid[] = "a..b";
	ck_assert(!fp_name_normalise(dots));
	ck_assert(!fp_name_normalise(lead));
	ck_assert(!fp_name_normalise(mid));
	ck_assert(!fp_name_normalise(dot));
	ck_assert(!fp_name_normalise(empty));
	ck_assert(!fp_name_normalise(sp));
	ck_assert(!fp_name_normalise(ctl));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fields");
	TCase *tc = tcase_create("fields");

	tcase_add_test(tc, tls_sni_found_and_normalised);
	tcase_add_test(tc, tls_sni_across_records);
	tcase_add_test(tc, tls_sni_absent_and_malformed);
	tcase_add_test(tc, http_host_and_path);
	tcase_add_test(tc, http_path_is_decoded_and_normalised);
	tcase_add_test(tc, http_target_forms);
	tcase_add_test(tc, http_malformed);
	tcase_add_test(tc, http_bodies_delimit_the_next_request);
	tcase_add_test(tc, dns_qname_found_and_normalised);
	tcase_add_test(tc, dns_qname_malformed);
	tcase_add_test(tc, dns_over_tcp);
	tcase_add_test(tc, names_compare_exactly_or_by_suffix);
	suite_add_tcase(s, tc);
	return check_main(s);
}
