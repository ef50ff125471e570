/* A log event of hvgated read back: one line of the event file (a JSON
 * object, also after syslog's "event " or anything else before the first
 * '{'), or one item of `hvgate show log` as it prints it
 * ("- time=... rule=... tenant=\"\" in=lan0 out=dmz0 family=ip proto=tcp
 * src=... dst=... sport=... dport=... verdict=block"). docs/operations.md
 * describes the events, docs/replay.md what `hvgate explain` does with one.
 *
 * Pure text parsing: no I/O. Error convention: 0, or -1 with a message in
 * err and the 1-based column of the mistake in *col.
 */
#ifndef HVGATE_APPLIANCE_LOGLINE_H
#define HVGATE_APPLIANCE_LOGLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lines longer than this are refused (events are a few hundred bytes). */
#define LOGLINE_MAX 8192

struct logline {
	char source[16]; /* "" (NFLOG) or "fastpath" */
	char rule[256];  /* the rule id, "default:FILE:LINE", "" */
	char prefix[128];
	char tenant[64];      /* "" none */
	char in[16], out[16]; /* "" when the hook has none */
	char verdict[16];     /* "pass", "block", "reject", "log", "" */
	int family;           /* AF_INET or AF_INET6 */
	uint8_t proto;        /* IPPROTO_* */
	uint8_t src[16], dst[16];
	bool has_ports;
	uint16_t sport, dport;
	bool has_icmp_type;
	uint8_t icmp_type;
};

/* Parses `len` bytes of `text` (no NUL needed; a trailing newline is
 * allowed). The addresses, protocol and (TCP, UDP, SCTP) ports are
 * required: an event without them names no packet. */
int logline_parse(const char *text, size_t len, struct logline *ev, char *err, size_t errsz,
		  size_t *col);

/* Does the text look like a log event rather than a packet written by
 * hand (it holds "src=" or "\"src\"")? */
bool logline_looks_like(const char *text);

#endif
