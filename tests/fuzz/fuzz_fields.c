/* Fuzz target: the protocol field parsers (appliance/fastpath/fields.c).
 *   byte 0: which parser (mod 4: TLS, HTTP, DNS datagram, DNS over TCP)
 *   the rest: the stream or datagram, also tried cut at every 61st byte
 * so that the "pending" paths see the same bytes as the complete ones. A
 * found name must be normalised (no upper case, no trailing dot). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "appliance/fastpath/fields.h"

static void check_name(const char *n)
{
	size_t len = strlen(n);
	if (len >= FP_NAME_MAX || (len && n[len - 1] == '.'))
		__builtin_trap();
	for (size_t i = 0; i < len; i++)
		if (n[i] >= 'A' && n[i] <= 'Z')
			__builtin_trap();
}

static void one(uint8_t which, const uint8_t *d, size_t n)
{
	char name[FP_NAME_MAX];
	struct fp_http_request req;
	size_t end = 0;

	switch (which % 4) {
	case 0:
		if (fp_tls_sni(d, n, name) == FP_FIELD_FOUND)
			check_name(name);
		break;
	case 1:
		/* every request of a stream, as the judge walks them */
		for (size_t off = 0; off < n;) {
			if (fp_http_request(d + off, n - off, &req) != FP_FIELD_FOUND)
				break;
			if (req.has_host)
				check_name(req.host);
			if (req.has_path &&
			    (strlen(req.path) >= FP_PATH_MAX || strstr(req.path, "//")))
				__builtin_trap();
			if (!req.end || req.end > n - off)
				__builtin_trap();
			off += req.end;
		}
		break;
	case 2:
		if (fp_dns_qname(d, n, name) == FP_FIELD_FOUND)
			check_name(name);
		break;
	default:
		for (size_t off = 0; off < n; off += end)
			if (fp_dns_tcp_qname(d + off, n - off, name, &end) != FP_FIELD_FOUND)
				break;
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	one(data[0], data + 1, size - 1);
	for (size_t cut = 0; cut < size - 1; cut += 61)
		one(data[0], data + 1, cut);
	return 0;
}
