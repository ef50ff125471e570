/* Parsing a queued packet once, and the resets of a blocked flow
 * (appliance/fastpath/packet.h, appliance/fastpath/inspect.h). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/fastpath/inspect.h"
#include "appliance/fastpath/packet.h"
#include "vpn/csum.h"

/* RFC 791 section 3.1: IHL counts 32-bit words, at least 5. */
#define IPV4_MIN_HDR     20
#define IPV4_FLAG_MF     0x2000
#define IPV4_FRAG_OFFSET 0x1fff
/* RFC 8200 section 3 and 4. */
#define IPV6_HDR         40
#define IPV6_FRAG_HDR    8
#define IPV6_FRAG_OFFSET 0xfff8
#define IPV6_FRAG_MORE   0x0001
/* Extension headers walked before giving up (RFC 8200 section 4.1 lists
 * each at most once or twice; more is an evasion attempt). */
#define IPV6_MAX_EXT_HEADERS 8
/* RFC 791 section 3.1 and RFC 8200 section 4.2: the options that only pad
 * (IPv4 end of list and no-operation, IPv6 Pad1 and PadN). */
#define IPV4_OPT_END  0
#define IPV4_OPT_NOP  1
#define IPV6_OPT_PAD1 0
#define IPV6_OPT_PADN 1
/* RFC 8200 section 4.4: the routing header's segments-left byte. */
#define IPV6_RH_SEGMENTS_LEFT 3
/* RFC 9293 section 3.1: data offset counts 32-bit words, at least 5. */
#define TCP_MIN_HDR 20
/* RFC 9293 section 3.2: option kinds 0 (end) and 1 (no-operation) have no
 * length byte; the others do. */
#define TCP_OPT_END           0
#define TCP_OPT_NOP           1
#define TCP_OPT_TIMESTAMP     8  /* RFC 7323 section 3: kind, length 10, TSval, TSecr */
#define TCP_OPT_MD5           19 /* RFC 2385 */
#define TCP_OPT_AO            29 /* RFC 5925 */
#define TCP_OPT_TIMESTAMP_LEN 10
#define UDP_HDR               8 /* RFC 768 */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The options a receiver may discard a segment for (a signature it checks,
 * a timestamp older than the last). A malformed option list ends the walk,
 * as it ends the kernel's (tcp_parse_options). */
static void parse_tcp_options(struct fp_packet *pk, const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = opt[i];
		if (kind == TCP_OPT_END)
			return;
		if (kind == TCP_OPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2 || opt[i + 1] < 2 || opt[i + 1] > len - i)
			return;
		if (kind == TCP_OPT_MD5 || kind == TCP_OPT_AO)
			pk->signed_opt = true;
		if (kind == TCP_OPT_TIMESTAMP && opt[i + 1] == TCP_OPT_TIMESTAMP_LEN) {
			pk->has_ts = true;
			pk->tsval = get32(opt + i + 2);
		}
		i += opt[i + 1];
	}
}

static enum fp_parse parse_l4(struct fp_packet *pk, const uint8_t *l4, size_t len)
{
	if (pk->protocol == IPPROTO_UDP) {
		if (len < UDP_HDR)
			return FP_PARSE_MALFORMED;
		size_t udp_len = get16(l4 + 4);
		/* A length of 0 is a jumbogram's (RFC 2675); past the packet, a lie. */
		if (udp_len && (udp_len < UDP_HDR || udp_len > len))
			return FP_PARSE_MALFORMED;
		pk->sport = get16(l4);
		pk->dport = get16(l4 + 2);
		pk->payload = l4 + UDP_HDR;
		pk->payload_len = (udp_len ? udp_len : len) - UDP_HDR;
		return FP_PARSE_OK;
	}
	if (pk->protocol != IPPROTO_TCP)
		return FP_PARSE_OTHER;
	if (len < TCP_MIN_HDR)
		return FP_PARSE_MALFORMED;
	size_t doff = (size_t)(l4[12] >> 4) * 4;
	if (doff < TCP_MIN_HDR || doff > len)
		return FP_PARSE_MALFORMED;
	pk->sport = get16(l4);
	pk->dport = get16(l4 + 2);
	pk->seq = get32(l4 + 4);
	pk->ack = get32(l4 + 8);
	pk->tcp_flags = l4[13];
	parse_tcp_options(pk, l4 + TCP_MIN_HDR, doff - TCP_MIN_HDR);
	pk->payload = l4 + doff;
	pk->payload_len = len - doff;
	return FP_PARSE_OK;
}

/* Whether IPv4 options hold anything but padding. The receiver acts on
 * them (a source route, a security label it checks) where the judge does
 * not see it; TCP and UDP traffic carries none. */
static bool ipv4_options_act(const uint8_t *opt, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (opt[i] == IPV4_OPT_END)
			return false;
		if (opt[i] != IPV4_OPT_NOP)
			return true;
	}
	return false;
}

/* Whether an IPv6 hop-by-hop or destination options header (its options
 * are bytes 2.. of hlen) holds an option other than padding: the receiver
 * discards a packet with an option it does not know whose type says so
 * (RFC 8200 section 4.2), and which it knows is its own affair. */
static bool ipv6_options_act(const uint8_t *h, size_t hlen)
{
	for (size_t i = 2; i < hlen;) {
		if (h[i] == IPV6_OPT_PAD1) {
			i++;
			continue;
		}
		if (h[i] != IPV6_OPT_PADN)
			return true;
		if (hlen - i < 2)
			return true;
		i += 2 + (size_t)h[i + 1];
	}
	return false;
}

static enum fp_parse parse_ipv4(struct fp_packet *pk, const uint8_t *p, size_t len)
{
	if (len < IPV4_MIN_HDR)
		return FP_PARSE_MALFORMED;
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	size_t total = get16(p + 2);
	/* A GSO packet past 64 KiB (BIG TCP) carries total length 0. */
	if (total == 0 && len > 0xffff)
		total = len;
	if (ihl < IPV4_MIN_HDR || total < ihl || total > len)
		return FP_PARSE_MALFORMED;
	pk->family = AF_INET;
	pk->protocol = p[9];
	pk->ttl = p[8];
	memcpy(pk->src, p + 12, 4);
	memcpy(pk->dst, p + 16, 4);
	/* Conntrack reassembles before the queue sees a packet, so a fragment
	 * here is unusual; judging part of a segment would corrupt the stream. */
	if (get16(p + 6) & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET))
		return FP_PARSE_FRAGMENT;
	enum fp_parse rc = parse_l4(pk, p + ihl, total - ihl);
	if (rc == FP_PARSE_OK && ipv4_options_act(p + IPV4_MIN_HDR, ihl - IPV4_MIN_HDR))
		return FP_PARSE_IP_OPTIONS;
	return rc;
}

static bool ipv6_is_ext(uint8_t nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

static enum fp_parse parse_ipv6(struct fp_packet *pk, const uint8_t *p, size_t len)
{
	if (len < IPV6_HDR)
		return FP_PARSE_MALFORMED;
	size_t total = IPV6_HDR + get16(p + 4);
	/* Payload length 0: a jumbogram or a BIG TCP GSO packet. */
	if (total == IPV6_HDR && len > IPV6_HDR)
		total = len;
	if (total > len)
		return FP_PARSE_MALFORMED;
	pk->family = AF_INET6;
	pk->ttl = p[7];
	memcpy(pk->src, p + 8, 16);
	memcpy(pk->dst, p + 24, 16);
	uint8_t nh = p[6];
	size_t off = IPV6_HDR;
	bool acts = false; /* a header the receiver may refuse or act on */
	for (int n = 0; ipv6_is_ext(nh); n++) {
		size_t hlen;
		if (n == IPV6_MAX_EXT_HEADERS)
			return FP_PARSE_EXT_HEADERS;
		if (total - off < 8)
			return FP_PARSE_MALFORMED;
		const uint8_t *h = p + off;
		if (nh == IPPROTO_FRAGMENT) {
			if (get16(h + 2) & (IPV6_FRAG_OFFSET | IPV6_FRAG_MORE))
				return FP_PARSE_FRAGMENT;
			hlen = IPV6_FRAG_HDR;
		} else if (nh == IPPROTO_AH) {
			/* RFC 4302 section 2.2; the receiver drops it without
			 * the SA, which the judge cannot know */
			hlen = ((size_t)h[1] + 2) * 4;
			acts = true;
		} else {
			hlen = ((size_t)h[1] + 1) * 8; /* RFC 8200 section 4.3 */
		}
		if (hlen > total - off)
			return FP_PARSE_MALFORMED;
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_DSTOPTS)
			acts |= ipv6_options_act(h, hlen);
		/* segments left: the packet is bound elsewhere, or refused */
		if (nh == IPPROTO_ROUTING && h[IPV6_RH_SEGMENTS_LEFT])
			acts = true;
		nh = h[0];
		off += hlen;
	}
	pk->protocol = nh;
	enum fp_parse rc = parse_l4(pk, p + off, total - off);
	return rc == FP_PARSE_OK && acts ? FP_PARSE_IP_OPTIONS : rc;
}

static enum fp_parse parse_l3(struct fp_packet *pk, const uint8_t *p, size_t len)
{
	if (!len)
		return FP_PARSE_MALFORMED;
	switch (p[0] >> 4) {
	case 4: return parse_ipv4(pk, p, len);
	case 6: return parse_ipv6(pk, p, len);
	default: return FP_PARSE_MALFORMED;
	}
}

enum fp_parse fp_packet_parse(struct fp_packet *pk, const uint8_t *p, size_t len)
{
	memset(pk, 0, sizeof(*pk));
	enum fp_parse rc = parse_l3(pk, p, len);
	pk->parsed = rc;
	pk->len = len;
	return rc;
}

int fp_packet_tuple_of(const struct fp_packet *pk, struct fp_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (pk->parsed != FP_PARSE_OK)
		return -EINVAL;
	t->family = pk->family;
	t->protocol = pk->protocol;
	memcpy(t->src, pk->src, sizeof(t->src));
	memcpy(t->dst, pk->dst, sizeof(t->dst));
	t->sport = pk->sport;
	t->dport = pk->dport;
	return 0;
}

int fp_packet_tuple(const uint8_t *pkt, size_t len, struct fp_tuple *t)
{
	struct fp_packet pk;

	fp_packet_parse(&pk, pkt, len);
	return fp_packet_tuple_of(&pk, t);
}

/* ---- resets ---- */

#define IPV4_DEFAULT_TTL 64 /* RFC 1700; Linux's net.ipv4.ip_default_ttl */
#define IPV4_FLAG_DF     0x4000

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* One reset from src:sport to dst:dport with seq and ack. */
static size_t build_reset(uint8_t *out, int family, const uint8_t *src, const uint8_t *dst,
			  uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack)
{
	size_t alen = family == AF_INET ? 4 : 16;
	size_t ip = family == AF_INET ? IPV4_MIN_HDR : IPV6_HDR;
	uint8_t *t = out + ip;
	uint32_t sum;

	memset(out, 0, ip + TCP_MIN_HDR);
	if (family == AF_INET) {
		out[0] = 0x45;
		put16(out + 2, (uint16_t)(ip + TCP_MIN_HDR));
		put16(out + 6, IPV4_FLAG_DF);
		out[8] = IPV4_DEFAULT_TTL;
		out[9] = IPPROTO_TCP;
		memcpy(out + 12, src, 4);
		memcpy(out + 16, dst, 4);
		put16(out + 10, vpn_csum_fold(vpn_csum_add(0, out, IPV4_MIN_HDR)));
	} else {
		out[0] = 0x60;
		put16(out + 4, TCP_MIN_HDR);
		out[6] = IPPROTO_TCP;
		out[7] = IPV4_DEFAULT_TTL;
		memcpy(out + 8, src, 16);
		memcpy(out + 24, dst, 16);
	}
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (TCP_MIN_HDR / 4) << 4;
	t[13] = FP_TCP_RST | FP_TCP_ACK;
	/* RFC 9293 section 3.1 / RFC 8200 section 8.1: the pseudo-header */
	sum = vpn_csum_add(0, src, alen);
	sum = vpn_csum_add(sum, dst, alen);
	sum += IPPROTO_TCP + TCP_MIN_HDR;
	sum = vpn_csum_add(sum, t, TCP_MIN_HDR);
	put16(t + 16, vpn_csum_fold(sum));
	return ip + TCP_MIN_HDR;
}

int fp_tcp_resets(const struct fp_event *ev, uint8_t to_receiver[FP_RESET_MAX],
		  size_t *len_receiver, uint8_t to_sender[FP_RESET_MAX], size_t *len_sender)
{
	if (ev->protocol != IPPROTO_TCP || (ev->family != AF_INET && ev->family != AF_INET6))
		return -EINVAL;
	*len_receiver = build_reset(to_receiver, ev->family, ev->src, ev->dst, ev->sport, ev->dport,
				    ev->tcp_next_seq, ev->tcp_ack);
	*len_sender = build_reset(to_sender, ev->family, ev->dst, ev->src, ev->dport, ev->sport,
				  ev->tcp_ack, ev->tcp_next_seq);
	return 0;
}
