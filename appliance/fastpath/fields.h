/* Protocol fields of an inspected stream: the server name of a TLS
 * ClientHello, the host and path of HTTP/1 requests, the question name of a
 * DNS message. docs/fastpath.md ("Protocol fields") states the semantics.
 *
 * Pure functions over bytes the caller holds (a flow's assembled stream, or
 * one datagram): no allocation, no I/O, thread-safe. Each parser says
 * whether the bytes so far hold the field (FP_FIELD_FOUND, the value in the
 * caller's buffer, normalised), hold a complete message without it
 * (FP_FIELD_ABSENT), need more bytes (FP_FIELD_PENDING), or cannot be the
 * protocol's message at all (FP_FIELD_MALFORMED: bad lengths, forbidden
 * syntax, a value a receiver would refuse, or a value too long to keep).
 */
#ifndef HVGATE_APPLIANCE_FASTPATH_FIELDS_H
#define HVGATE_APPLIANCE_FASTPATH_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A name's bytes in presentation form (RFC 1035 section 2.3.4: 255 octets
 * on the wire; a DNS label's odd bytes take 4 as \DDD) and its NUL. */
#define FP_NAME_MAX (255 * 4 + 1)
/* An HTTP path after decoding, and its NUL. Longer is malformed. */
#define FP_PATH_MAX 2048

enum fp_field_state {
	FP_FIELD_PENDING,
	FP_FIELD_FOUND,
	FP_FIELD_ABSENT,
	FP_FIELD_MALFORMED,
};

/* The server name (RFC 6066 section 3) of the ClientHello that starts a
 * TLS stream, whose handshake message may span several records (RFC 8446
 * section 5.1) and any number of segments. Normalised as fp_name_normalise
 * does. FP_FIELD_ABSENT: a ClientHello without the extension. */
enum fp_field_state fp_tls_sni(const uint8_t *stream, size_t len, char name[FP_NAME_MAX]);

/* One HTTP/1 request (RFC 9112) at the start of `stream`. */
struct fp_http_request {
	size_t end;    /* bytes of the request with its body (FOUND only) */
	bool has_host; /* host holds the target's authority or the Host field */
	char host[FP_NAME_MAX];
	bool has_path; /* false for CONNECT's authority-form */
	char path[FP_PATH_MAX];
};
/* FP_FIELD_FOUND: a whole request (line, header section and body) is in
 * the bytes; ABSENT is not returned. */
enum fp_field_state fp_http_request(const uint8_t *stream, size_t len, struct fp_http_request *req);

/* The question name of one DNS message (RFC 1035 section 4.1), which must
 * ask exactly one question. Presentation form, lowercase, no trailing dot
 * (the root is ""), bytes other than letters, digits, '-' and '_' written
 * \DDD. A datagram is complete: PENDING is not returned. */
enum fp_field_state fp_dns_qname(const uint8_t *msg, size_t len, char name[FP_NAME_MAX]);
/* The same for DNS over TCP (RFC 1035 section 4.2.2, RFC 7766): the
 * message at the start of `stream` behind its two-byte length; *end is
 * the bytes it takes (FOUND only). */
enum fp_field_state fp_dns_tcp_qname(const uint8_t *stream, size_t len, char name[FP_NAME_MAX],
				     size_t *end);

/* A host name as names are compared: ASCII letters lowercased, one
 * trailing dot removed. False (name left as is) for an empty name, one
 * with an empty label, or one with a byte outside the printable ASCII
 * range or a space. */
bool fp_name_normalise(char *name);
/* Whether a normalised name is `pattern` (suffix false) or ends in
 * "." pattern (suffix true: `*.example.com` is stored as "example.com"
 * and matches a.example.com and a.b.example.com, not example.com). */
bool fp_name_matches(const char *pattern, bool suffix, const char *name);

#endif
