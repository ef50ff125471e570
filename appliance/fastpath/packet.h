/* One packet the kernel queued, parsed once: its addresses, ports, TCP
 * header fields and payload (IPv4 or IPv6, TCP or UDP). Pure functions,
 * thread-safe; a struct fp_packet points into the caller's bytes and lives
 * no longer than they do. docs/fastpath.md, "What a packet gets". */
#ifndef HVGATE_APPLIANCE_FASTPATH_PACKET_H
#define HVGATE_APPLIANCE_FASTPATH_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 9293 section 3.1: the TCP flags the judge looks at. */
#define FP_TCP_FIN 0x01
#define FP_TCP_SYN 0x02
#define FP_TCP_RST 0x04
#define FP_TCP_ACK 0x10
#define FP_TCP_URG 0x20

enum fp_parse {
	FP_PARSE_OK,
	FP_PARSE_MALFORMED,   /* truncated or inconsistent headers */
	FP_PARSE_EXT_HEADERS, /* more IPv6 extension headers than the parser walks */
	FP_PARSE_FRAGMENT,    /* an IP fragment: nothing to inspect in it */
	/* IPv4 options or IPv6 extension headers the receiver may refuse or
	 * act on where the judge cannot see (an option other than padding,
	 * an authentication header, a routing header with segments left) */
	FP_PARSE_IP_OPTIONS,
	FP_PARSE_OTHER, /* a protocol other than TCP and UDP */
};

struct fp_packet {
	enum fp_parse parsed; /* what fp_packet_parse found */
	size_t len;           /* bytes of the whole packet */
	int family;
	uint8_t protocol;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t tcp_flags;
	uint32_t ack;    /* the acknowledgement number */
	uint8_t ttl;     /* IPv4 TTL or IPv6 hop limit */
	bool signed_opt; /* a TCP-MD5 or TCP-AO option: the judge cannot check it */
	bool has_ts;
	uint32_t tsval;
	uint32_t seq;
	const uint8_t *payload;
	size_t payload_len;
};

/* Parses the L3 packet of len bytes into *pk (pk->parsed is the result,
 * also returned); the other fields are valid for FP_PARSE_OK. */
enum fp_parse fp_packet_parse(struct fp_packet *pk, const uint8_t *p, size_t len);

/* The addresses, protocol and ports of a packet (conntrack's tuple of the
 * direction it travels). */
struct fp_tuple {
	int family; /* AF_INET or AF_INET6 */
	uint8_t protocol;
	uint8_t src[16], dst[16]; /* v4: the first 4 bytes */
	uint16_t sport, dport;
};
/* 0, or -EINVAL for a malformed packet, a fragment or a protocol other
 * than TCP and UDP. */
int fp_packet_tuple(const uint8_t *pkt, size_t len, struct fp_tuple *t);
int fp_packet_tuple_of(const struct fp_packet *pk, struct fp_tuple *t);

#endif
