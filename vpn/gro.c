/* Receive-side coalescing for the TUN (the mirror of segmentation in
 * tun.c): consecutive in-order TCP segments of one flow, decrypted from one
 * batch of datagrams, are joined into one super-packet and written with a
 * virtio_net_hdr asking the kernel to treat it as TSO (GSO_TCPV4/6 with a
 * partial checksum). One write and one trip through the stack instead of up
 * to forty. Anything that is not a plain data segment of the flow being
 * built (SYN, FIN, RST, URG, options that differ, a gap in sequence numbers,
 * IP options or extension headers, fragments) flushes and goes alone. */
#include <linux/virtio_net.h>
#include <string.h>
#include <unistd.h>

#include "vpn/csum.h"
#include "vpn/internal.h"

/* TCP flag bits (RFC 9293 §3.1) */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The layout of a TCP segment we may coalesce; false for anything else. */
struct seg {
	bool v6;
	size_t ip_hl, tcp_hl, payload;
	uint8_t flags;
	uint32_t seq;
};

static bool parse(const uint8_t *p, size_t len, struct seg *s)
{
	if (len >= 20 && p[0] == 0x45) {
		/* no IP options, no fragments (MF clear, offset 0) */
		if (p[9] != IPPROTO_TCP || (p[6] & 0x3f) || p[7])
			return false;
		s->v6 = false;
		s->ip_hl = 20;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		if (p[6] != IPPROTO_TCP)
			return false;
		s->v6 = true;
		s->ip_hl = 40;
	} else {
		return false;
	}
	if (len < s->ip_hl + 20)
		return false;
	const uint8_t *th = p + s->ip_hl;
	s->tcp_hl = (size_t)(th[12] >> 4) * 4;
	if (s->tcp_hl < 20 || s->ip_hl + s->tcp_hl >= len)
		return false; /* no payload: nothing to gain */
	s->flags = th[13];
	if ((s->flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG)) || !(s->flags & TCP_ACK))
		return false;
	s->payload = len - s->ip_hl - s->tcp_hl;
	s->seq = get32(th + 4);
	return true;
}

/* Same flow and same headers but for the sequence number, the IP id and
 * lengths and checksums: then the segments differ only in their payload. */
static bool same_flow(const struct vpn_gro *g, const uint8_t *p, const struct seg *s)
{
	const uint8_t *q = g->buf + VPN_VNET_HDR_LEN;

	if (s->v6 != g->v6 || s->tcp_hl != g->tcp_hl)
		return false;
	if (s->v6) {
		if (memcmp(p, q, 4) ||
		    memcmp(p + 6, q + 6, 34)) /* version..flow, next hdr, hop limit, addresses */
			return false;
	} else {
		if (p[1] != q[1] || p[6] != q[6] || p[8] != q[8] || memcmp(p + 12, q + 12, 8))
			return false;
	}
	const uint8_t *a = p + s->ip_hl, *b = q + g->ip_hl;
	/* ports; ack number; header length; window; urgent; options */
	return !memcmp(a, b, 4) && !memcmp(a + 8, b + 8, 5) && !memcmp(a + 14, b + 14, 2) &&
	       !memcmp(a + 18, b + 18, s->tcp_hl - 18) &&
	       ((a[13] & ~TCP_PSH) == (b[13] & ~TCP_PSH));
}

static int write_tun(struct vpn_device *dev, uint8_t *start, size_t len)
{
	return write(dev->tun_fd, start, len) < 0 ? -1 : 0;
}

void vpn_gro_flush(struct vpn_device *dev)
{
	struct vpn_gro *g = &dev->batch->gro;
	uint8_t *p = g->buf + VPN_VNET_HDR_LEN;
	struct virtio_net_hdr vh = { 0 };

	if (!g->len)
		return;
	if (g->segs > 1) {
		size_t tcp_len = g->len - g->ip_hl;
		uint8_t *th = p + g->ip_hl;
		uint32_t sum;
		if (g->v6) {
			put16(p + 4, (uint16_t)(g->len - 40));
			sum = vpn_csum_add(0, p + 8, 32);
		} else {
			put16(p + 2, (uint16_t)g->len);
			p[10] = p[11] = 0;
			put16(p + 10, vpn_csum_fold(vpn_csum_add(0, p, 20)));
			sum = vpn_csum_add(0, p + 12, 8);
		}
		/* A partial checksum: the pseudo-header sum, not inverted; the
		 * kernel adds the segment when it needs the real one. */
		sum += IPPROTO_TCP + (uint32_t)tcp_len;
		put16(th + 16, (uint16_t)~vpn_csum_fold(sum));
		vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh.gso_type = g->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
		vh.hdr_len = (uint16_t)(g->ip_hl + g->tcp_hl);
		vh.gso_size = g->gso_size;
		vh.csum_start = (uint16_t)g->ip_hl;
		vh.csum_offset = 16;
	}
	memcpy(g->buf, &vh, sizeof(vh));
	write_tun(dev, g->buf, VPN_VNET_HDR_LEN + g->len);
	g->len = 0;
}

static bool try_append(struct vpn_gro *g, const uint8_t *p, const struct seg *s)
{
	if (!g->len || !same_flow(g, p, s) || s->seq != g->next_seq || s->payload > g->gso_size ||
	    g->last_short || g->psh || g->len + s->payload > VPN_MAX_PACKET)
		return false;
	memcpy(g->buf + VPN_VNET_HDR_LEN + g->len, p + s->ip_hl + s->tcp_hl, s->payload);
	g->len += s->payload;
	g->next_seq += (uint32_t)s->payload;
	g->segs++;
	g->last_short = s->payload < g->gso_size;
	if (s->flags & TCP_PSH) {
		g->psh = true;
		g->buf[VPN_VNET_HDR_LEN + g->ip_hl + 13] |= TCP_PSH;
	}
	return true;
}

void vpn_gro_write(struct vpn_device *dev, uint8_t *pkt, size_t len)
{
	struct vpn_gro *g = &dev->batch->gro;
	struct seg s;

	if (!parse(pkt, len, &s)) {
		vpn_gro_flush(dev);
		memset(pkt - VPN_VNET_HDR_LEN, 0, VPN_VNET_HDR_LEN);
		write_tun(dev, pkt - VPN_VNET_HDR_LEN, len + VPN_VNET_HDR_LEN);
		return;
	}
	if (try_append(g, pkt, &s))
		return;
	vpn_gro_flush(dev);
	memcpy(g->buf + VPN_VNET_HDR_LEN, pkt, len);
	g->len = len;
	g->v6 = s.v6;
	g->ip_hl = s.ip_hl;
	g->tcp_hl = s.tcp_hl;
	g->gso_size = (uint16_t)s.payload;
	g->next_seq = s.seq + (uint32_t)s.payload;
	g->segs = 1;
	g->last_short = false;
	g->psh = (s.flags & TCP_PSH) != 0;
}
