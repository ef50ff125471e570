/* The TUN device: plain IP packets in and out. With offloads (IFF_VNET_HDR
 * and TUNSETOFFLOAD with TSO), the kernel hands us TCP super-packets of up to
 * 64 KiB which we cut into MTU-sized segments here: one read instead of
 * forty, which is where userspace WireGuard gains most. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vpn/csum.h"
#include "vpn/internal.h"

int vpn_tun_create(const char *ifname, char *actual, size_t actual_len, bool *vnet_hdr)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	bool offload = !getenv("HVGATE_VPN_NO_OFFLOAD");

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		int err = -errno;
		close(fd);
		return err;
	}
	/* With IFF_VNET_HDR every packet carries the header, whether or not
	 * the kernel accepts the offloads; without TSO it just stays zero. */
	*vnet_hdr = offload;
	if (offload) {
		int hdr = VPN_VNET_HDR_LEN;
		if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) ||
		    ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6))
			ioctl(fd, TUNSETOFFLOAD, 0);
	}
	snprintf(actual, actual_len, "%s", ifr.ifr_name);
	return fd;
}

int vpn_tun_get_mtu(const char *ifname)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ret = ioctl(s, SIOCGIFMTU, &ifr) ? -errno : ifr.ifr_mtu;
	close(s);
	return ret;
}

int vpn_tun_set_mtu(const char *ifname, int mtu)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr))
		ret = -errno;
	close(s);
	return ret;
}

int vpn_tun_write(struct vpn_device *dev, uint8_t *pkt, size_t len)
{
	if (dev->tun_fd < 0)
		return 0;
	if (dev->tun_vnet_hdr && dev->tun_gro) {
		vpn_gro_write(dev, pkt, len);
		return 0;
	}
	if (dev->tun_vnet_hdr) {
		/* room before pkt (batch->plain): a zero header, no offload */
		pkt -= VPN_VNET_HDR_LEN;
		memset(pkt, 0, VPN_VNET_HDR_LEN);
		len += VPN_VNET_HDR_LEN;
	}
	return write(dev->tun_fd, pkt, len) < 0 ? -errno : 0;
}

void vpn_tun_flush(struct vpn_device *dev)
{
	if (dev->tun_fd >= 0 && dev->tun_vnet_hdr && dev->tun_gro)
		vpn_gro_flush(dev);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the kernel
 * put the pseudo-header sum at csum_offset; we add the payload. */
static void finish_csum(uint8_t *pkt, size_t len, size_t start, size_t offset)
{
	if (start + offset + 2 > len)
		return;
	uint32_t sum = (uint32_t)pkt[start + offset] << 8 | pkt[start + offset + 1];
	pkt[start + offset] = pkt[start + offset + 1] = 0;
	sum = vpn_csum_add(sum, pkt + start, len - start);
	uint16_t c = vpn_csum_fold(sum);
	put16(pkt + start + offset, c);
}

/* TCP checksum over the pseudo-header of IPv4 or IPv6. */
static void tcp_csum(uint8_t *pkt, size_t ip_hl, size_t len, bool v6)
{
	uint32_t sum = 0;
	size_t tcp_len = len - ip_hl;
	uint8_t *tcp = pkt + ip_hl;

	if (v6)
		sum = vpn_csum_add(sum, pkt + 8, 32);
	else
		sum = vpn_csum_add(sum, pkt + 12, 8);
	sum += IPPROTO_TCP + (uint32_t)tcp_len;
	tcp[16] = tcp[17] = 0;
	sum = vpn_csum_add(sum, tcp, tcp_len);
	put16(tcp + 16, vpn_csum_fold(sum));
}

/* Cuts a TSO super-packet into segments of gso_size payload bytes, each a
 * valid IP/TCP packet, and sends them. */
static void segment_tcp(struct vpn_device *dev, uint8_t *pkt, size_t len,
			const struct virtio_net_hdr *vh)
{
	bool v6 = (pkt[0] >> 4) == 6;
	size_t ip_hl = v6 ? 40 : (size_t)(pkt[0] & 0x0f) * 4;
	size_t hdr_len, gso = vh->gso_size;
	uint8_t *seg = dev->batch->seg;

	if (len < ip_hl + 20 || gso == 0)
		return;
	hdr_len = ip_hl + (size_t)(pkt[ip_hl + 12] >> 4) * 4;
	if (hdr_len > len || hdr_len + gso > VPN_WIRE_BUF - 64)
		return;
	uint32_t seq = (uint32_t)pkt[ip_hl + 4] << 24 | (uint32_t)pkt[ip_hl + 5] << 16 |
		       (uint32_t)pkt[ip_hl + 6] << 8 | pkt[ip_hl + 7];
	uint16_t ip_id = v6 ? 0 : (uint16_t)(pkt[4] << 8 | pkt[5]);
	uint8_t flags = pkt[ip_hl + 13];
	/* Every segment has the super-packet's destination: one lookup. */
	bool malformed;
	struct vpn_peer *peer = vpn_send_route(dev, pkt, len, &malformed);
	if (malformed) {
		dev->drops[VPN_DROP_MALFORMED]++;
		return;
	}
	for (size_t off = hdr_len; off < len; off += gso) {
		size_t pay = len - off < gso ? len - off : gso;
		bool last = off + pay >= len;
		size_t total = hdr_len + pay;
		memcpy(seg, pkt, hdr_len);
		memcpy(seg + hdr_len, pkt + off, pay);
		uint32_t s = seq + (uint32_t)(off - hdr_len);
		seg[ip_hl + 4] = (uint8_t)(s >> 24);
		seg[ip_hl + 5] = (uint8_t)(s >> 16);
		seg[ip_hl + 6] = (uint8_t)(s >> 8);
		seg[ip_hl + 7] = (uint8_t)s;
		/* As the kernel's TSO (tcp_gso_segment): FIN and PSH only on
		 * the last segment, CWR only on the first. */
		uint8_t f = last ? flags : (uint8_t)(flags & ~(0x01 | 0x08));
		if (off != hdr_len)
			f &= (uint8_t)~0x80;
		seg[ip_hl + 13] = f;
		if (v6) {
			put16(seg + 4, (uint16_t)(total - 40));
		} else {
			put16(seg + 2, (uint16_t)total);
			put16(seg + 4, ip_id++);
			seg[10] = seg[11] = 0;
			put16(seg + 10, vpn_csum_fold(vpn_csum_add(0, seg, ip_hl)));
		}
		tcp_csum(seg, ip_hl, total, v6);
		vpn_send_to_peer(dev, peer, seg, total);
	}
}

static void handle_tun_packet(struct vpn_device *dev, uint8_t *buf, size_t n)
{
	struct virtio_net_hdr vh;
	uint8_t *pkt = buf;
	size_t len = n;

	if (!dev->tun_vnet_hdr) {
		vpn_send_packet(dev, pkt, len);
		return;
	}
	if (n < VPN_VNET_HDR_LEN)
		return;
	memcpy(&vh, buf, sizeof(vh));
	pkt += VPN_VNET_HDR_LEN;
	len -= VPN_VNET_HDR_LEN;
	uint8_t type = vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) {
		segment_tcp(dev, pkt, len, &vh);
		return;
	}
	if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		finish_csum(pkt, len, vh.csum_start, vh.csum_offset);
	vpn_send_packet(dev, pkt, len);
}

/* Reads up to a batch of packets; returns -ENODEV when the interface is gone. */
int vpn_tun_read_batch(struct vpn_device *dev)
{
	int n = 0;

	for (; n < VPN_BATCH; n++) {
		ssize_t r = read(dev->tun_fd, dev->batch->tun_buf, sizeof(dev->batch->tun_buf));
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			vpn_send_flush(dev);
			return -ENODEV;
		}
		handle_tun_packet(dev, dev->batch->tun_buf, (size_t)r);
	}
	vpn_send_flush(dev);
	return n;
}
