/* Fuzz target: log events read back for `hvgate explain` (appliance/logline.h),
 * both forms (an event-file JSON line, a `show log` item). What is accepted
 * names a packet: an address family, strings that end, ports for the
 * protocols that have them; an error has a column inside the line (or just
 * past it). */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/logline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logline ev;
	char err[256];
	size_t col = 0;

	if (size > LOGLINE_MAX + 16)
		return 0;
	if (logline_parse((const char *)data, size, &ev, err, sizeof(err), &col)) {
		if (col < 1 || col > size + 1 || !memchr(err, '\0', sizeof(err)) || !*err)
			__builtin_trap();
		return 0;
	}
	if (ev.family != AF_INET && ev.family != AF_INET6)
		__builtin_trap();
	if (!memchr(ev.rule, '\0', sizeof(ev.rule)) || !memchr(ev.in, '\0', sizeof(ev.in)) ||
	    !memchr(ev.out, '\0', sizeof(ev.out)) || !memchr(ev.tenant, '\0', sizeof(ev.tenant)) ||
	    !memchr(ev.prefix, '\0', sizeof(ev.prefix)) ||
	    !memchr(ev.verdict, '\0', sizeof(ev.verdict)) ||
	    !memchr(ev.source, '\0', sizeof(ev.source)))
		__builtin_trap();
	bool ports = ev.proto == IPPROTO_TCP || ev.proto == IPPROTO_UDP || ev.proto == IPPROTO_SCTP;
	if (ports != ev.has_ports)
		__builtin_trap();
	return 0;
}
