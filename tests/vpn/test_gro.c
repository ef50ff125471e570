/* Receive-side coalescing (vpn/gro.c) into a datagram socket standing for
 * the TUN: in-order segments of one flow become one super-packet whose
 * virtio_net_hdr asks for TSO, whose IP header is valid, and whose partial TCP checksum,
 * completed the way the kernel does, equals the checksum computed from
 * scratch; anything else passes unchanged and in order. */
#include <check.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

static struct vpn_device *dev;
static int rd;

static void setup(void)
{
	struct vpn_device_options opts = { 0 };
	int p[2];

	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	int size = 1 << 20;

	/* datagrams keep packet boundaries, as a TUN does */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, p), 0);
	setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(p[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	rd = p[0];
	dev->tun_fd = p[1];
	dev->tun_vnet_hdr = dev->tun_gro = true;
}

static void teardown(void)
{
	close(rd);
	close(dev->tun_fd);
	dev->tun_fd = -1;
	vpn_device_destroy(dev);
}

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* A TCP segment (IPv4 or IPv6) with a correct checksum, in buf after the
 * vnet header room; returns the IP length. */
static size_t make_segment(uint8_t *buf, bool v6, uint32_t seq, size_t payload, uint8_t flags,
			   uint8_t fill)
{
	uint8_t *p = buf + VPN_VNET_HDR_LEN;
	size_t ip_hl = v6 ? 40 : 20, tcp_hl = 32, len = ip_hl + tcp_hl + payload;

	memset(p, 0, ip_hl + tcp_hl);
	if (v6) {
		p[0] = 0x60;
		p[4] = (uint8_t)((len - 40) >> 8);
		p[5] = (uint8_t)(len - 40);
		p[6] = IPPROTO_TCP;
		p[7] = 64;
		p[8] = 0xfd, p[23] = 1;
		p[24] = 0xfd, p[39] = 2;
	} else {
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
		p[6] = 0x40; /* DF */
		p[8] = 64;
		p[9] = IPPROTO_TCP;
		p[12] = 10, p[15] = 1;
		p[16] = 10, p[19] = 2;
		uint16_t c = (uint16_t)~fold(sum16(0, p, 20));
		p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
	}
	uint8_t *t = p + ip_hl;
	t[0] = 0x1f, t[1] = 0x90, t[2] = 0xc3, t[3] = 0x50;
	t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8),
	t[7] = (uint8_t)seq;
	t[11] = 77; /* ack */
	t[12] = (uint8_t)((tcp_hl / 4) << 4);
	t[13] = flags;
	t[14] = 0x10;                                /* window */
	t[20] = 1, t[21] = 1, t[22] = 8, t[23] = 10; /* NOP NOP timestamps */
	t[27] = 5;
	memset(t + tcp_hl, fill, payload);
	uint32_t s = v6 ? sum16(0, p + 8, 32) : sum16(0, p + 12, 8);
	s += IPPROTO_TCP + (uint32_t)(tcp_hl + payload);
	s = sum16(s, t, tcp_hl + payload);
	uint16_t c = (uint16_t)~fold(s);
	t[16] = (uint8_t)(c >> 8), t[17] = (uint8_t)c;
	return len;
}

static ssize_t read_packet(uint8_t *buf, size_t cap)
{
	return read(rd, buf, cap);
}

/* What the kernel does with NEEDS_CSUM: sum from csum_start to the end
 * with the partial value in place, store the complement. */
static void complete_checksum(uint8_t *p, size_t len, const struct virtio_net_hdr *vh)
{
	uint32_t s = sum16(0, p + vh->csum_start, len - vh->csum_start);
	uint16_t c = (uint16_t)~fold(s);
	p[vh->csum_start + vh->csum_offset] = (uint8_t)(c >> 8);
	p[vh->csum_start + vh->csum_offset + 1] = (uint8_t)c;
}

static void check_coalesced(bool v6)
{
	static uint8_t in[VPN_VNET_HDR_LEN + 2048], out[VPN_VNET_HDR_LEN + 65536],
	    ref[VPN_VNET_HDR_LEN + 65536];
	const size_t mss = 1000, n = 5;
	size_t ip_hl = v6 ? 40 : 20;
	struct virtio_net_hdr vh;

	for (size_t i = 0; i < n; i++) {
		size_t len =
		    make_segment(in, v6, 1000 + (uint32_t)(i * mss), i == n - 1 ? 300 : mss,
				 i == n - 1 ? 0x18 : 0x10, (uint8_t)(i + 1));
		vpn_tun_write(dev, in + VPN_VNET_HDR_LEN, len);
	}
	vpn_tun_flush(dev);
	ssize_t r = read_packet(out, sizeof(out));
	size_t total = ip_hl + 32 + (n - 1) * mss + 300;
	ck_assert_int_eq(r, (ssize_t)(VPN_VNET_HDR_LEN + total));
	memcpy(&vh, out, sizeof(vh));
	ck_assert_uint_eq(vh.gso_type, v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(vh.gso_size, mss);
	ck_assert_uint_eq(vh.hdr_len, ip_hl + 32);
	ck_assert_uint_eq(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	ck_assert_uint_eq(vh.csum_start, ip_hl);
	ck_assert_uint_eq(vh.csum_offset, 16);
	uint8_t *p = out + VPN_VNET_HDR_LEN;
	if (!v6)
		ck_assert_uint_eq(fold(sum16(0, p, 20)), 0xffff); /* valid IP header checksum */
	/* payload bytes in order, PSH of the last segment kept */
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(p[ip_hl + 32 + i * mss], i + 1);
	ck_assert_uint_eq(p[ip_hl + 13], 0x18);
	/* the completed checksum is the true one of the super-packet */
	complete_checksum(p, total, &vh);
	memcpy(ref, out, (size_t)r);
	uint8_t *q = ref + VPN_VNET_HDR_LEN, *t = q + ip_hl;
	t[16] = t[17] = 0;
	uint32_t s = v6 ? sum16(0, q + 8, 32) : sum16(0, q + 12, 8);
	s += IPPROTO_TCP + (uint32_t)(total - ip_hl);
	uint16_t c = (uint16_t)~fold(sum16(s, t, total - ip_hl));
	ck_assert_uint_eq(p[ip_hl + 16], c >> 8);
	ck_assert_uint_eq(p[ip_hl + 17], c & 0xff);
}

START_TEST(coalesce_v4)
{
	check_coalesced(false);
}
END_TEST

START_TEST(coalesce_v6)
{
	check_coalesced(true);
}
END_TEST

START_TEST(gap_and_syn_pass_alone)
{
	static uint8_t in[VPN_VNET_HDR_LEN + 2048], out[VPN_VNET_HDR_LEN + 65536];
	struct virtio_net_hdr vh;
	size_t len;

	len = make_segment(in, false, 1000, 500, 0x10, 1);
	vpn_tun_write(dev, in + VPN_VNET_HDR_LEN, len);
	len = make_segment(in, false, 9000, 500, 0x10, 2); /* a gap: not appended */
	vpn_tun_write(dev, in + VPN_VNET_HDR_LEN, len);
	len = make_segment(in, false, 9500, 0, 0x02, 3); /* a SYN: alone, after the rest */
	vpn_tun_write(dev, in + VPN_VNET_HDR_LEN, len);
	vpn_tun_flush(dev);
	for (int i = 0; i < 3; i++) {
		ssize_t r = read_packet(out, sizeof(out));
		ck_assert_int_eq(r, VPN_VNET_HDR_LEN + 20 + 32 + (i < 2 ? 500 : 0));
		memcpy(&vh, out, sizeof(vh));
		ck_assert_uint_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
		ck_assert_uint_eq(vh.flags, 0);
		/* untouched: the original checksum still verifies */
		uint8_t *p = out + VPN_VNET_HDR_LEN;
		size_t tl = (size_t)r - VPN_VNET_HDR_LEN - 20;
		uint32_t s = sum16(0, p + 12, 8) + IPPROTO_TCP + (uint32_t)tl;
		ck_assert_uint_eq(fold(sum16(s, p + 20, tl)), 0xffff);
	}
	ck_assert_int_lt(read_packet(out, sizeof(out)), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_gro");
	TCase *tc = tcase_create("gro");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, coalesce_v4);
	tcase_add_test(tc, coalesce_v6);
	tcase_add_test(tc, gap_and_syn_pass_alone);
	suite_add_tcase(s, tc);
	return check_main(s);
}
