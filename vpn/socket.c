/* UDP transport: one IPv4 and one IPv6 socket on the same port, read in
 * batches with recvmmsg (with the local address each datagram reached, so
 * replies leave from it), written with sendmmsg, or with UDP GSO when a run
 * of equal-sized datagrams goes to one endpoint. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vpn/internal.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h */
#endif
/* Kernel UDP_MAX_SEGMENTS (include/linux/udp.h). */
#define VPN_GSO_MAX_SEGMENTS 64
/* One GSO send is one UDP datagram to the stack: at most 65535 bytes minus
 * the UDP (8) and IPv6 (40) headers, else EMSGSIZE. */
#define VPN_GSO_MAX_BYTES (65535 - 8 - 40)
/* Socket buffers large enough for a burst at line rate (wireguard-go later
 * versions ask for 7 MiB). */
#define VPN_SOCKET_BUFFER (7 << 20)
#ifndef UDP_GRO
#define UDP_GRO 104 /* linux/udp.h */
#endif
#define CMSG_SPACE_ALL (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)))
/* Received: the local address and the segment size of a coalesced datagram. */
#define CMSG_SPACE_RECV (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)))

/* ---- endpoints ---- */

socklen_t vpn_sockaddr_len(const union vpn_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in4);
}

bool vpn_sockaddr_equal(const union vpn_sockaddr *a, const union vpn_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_port == b->in4.sin_port &&
		       a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) &&
		       a->in6.sin6_scope_id == b->in6.sin6_scope_id;
	return true;
}

/* "1.2.3.4:51820" or "[2001:db8::1]:51820" (numeric only: the UAPI gets
 * resolved addresses from wg). */
int vpn_endpoint_parse(const char *text, union vpn_sockaddr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs = text;
	size_t hl;
	char *end;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hs = text + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - text);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port == 0 || port > 65535)
		return -EINVAL;
	char *pct = strchr(host, '%'); /* scope id of a link-local address */
	if (pct)
		*pct = 0;
	if (inet_pton(AF_INET, host, &out->in4.sin_addr) == 1) {
		out->in4.sin_family = AF_INET;
		out->in4.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons((uint16_t)port);
		if (pct)
			out->in6.sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
		return 0;
	}
	return -EINVAL;
}

void vpn_endpoint_format(const union vpn_sockaddr *a, char *out, size_t outlen)
{
	char h[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, h, sizeof(h));
		snprintf(out, outlen, "%s:%u", h, ntohs(a->in4.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, h, sizeof(h));
		if (a->in6.sin6_scope_id)
			snprintf(out, outlen, "[%s%%%u]:%u", h, a->in6.sin6_scope_id,
				 ntohs(a->in6.sin6_port));
		else
			snprintf(out, outlen, "[%s]:%u", h, ntohs(a->in6.sin6_port));
	} else {
		snprintf(out, outlen, "(none)");
	}
}

/* ---- sockets ---- */

static int open_one(int family, uint16_t port, uint32_t fwmark)
{
	union vpn_sockaddr a;
	int one = 1, size = VPN_SOCKET_BUFFER;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
	} else {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
	}
	/* Force variants need CAP_NET_ADMIN; fall back to the plain ones. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (fwmark)
		setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark));
	/* Runs of datagrams from one sender arrive as one (UDP GRO): a UDP
	 * GSO send of a peer crosses a veth or a GRO-capable NIC whole, and
	 * is read with one copy instead of one receive per datagram. A
	 * kernel without it delivers datagrams one by one, as before. */
	setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
	if (bind(fd, &a.sa, vpn_sockaddr_len(&a))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	union vpn_sockaddr a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, &a.sa, &len))
		return 0;
	return ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in4.sin_port);
}

/* Port 0 picks one that is free in both families (a few tries, as
 * wireguard-go does). */
#define VPN_BIND_TRIES 100
int vpn_socket_open(struct vpn_device *dev, uint16_t port)
{
	int fd4 = -1, fd6 = -1;

	for (int tries = 0; tries < VPN_BIND_TRIES; tries++) {
		fd4 = open_one(AF_INET, port, dev->fwmark);
		if (fd4 < 0)
			return fd4;
		uint16_t p = bound_port(fd4);
		fd6 = open_one(AF_INET6, p, dev->fwmark);
		if (fd6 >= 0 || fd6 == -EAFNOSUPPORT) {
			vpn_socket_close(dev);
			dev->udp4_fd = fd4;
			dev->udp6_fd = fd6 >= 0 ? fd6 : -1;
			dev->listen_port = p;
			int seg = 1200; /* probe: any size works for the question */
			dev->udp_gso =
			    setsockopt(fd4, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
			seg = 0;
			setsockopt(fd4, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
			return 0;
		}
		close(fd4);
		if (port)
			return fd6;
	}
	return -EADDRINUSE;
}

void vpn_socket_close(struct vpn_device *dev)
{
	if (dev->udp4_fd >= 0)
		close(dev->udp4_fd);
	if (dev->udp6_fd >= 0)
		close(dev->udp6_fd);
	dev->udp4_fd = dev->udp6_fd = -1;
}

/* ---- sending ---- */

static size_t put_source(struct msghdr *mh, const struct vpn_endpoint *ep, uint8_t *ctl,
			 size_t ctl_len)
{
	struct cmsghdr *c;

	mh->msg_control = ctl;
	mh->msg_controllen = ctl_len;
	memset(ctl, 0, ctl_len);
	if (!ep->src_family || ep->src_family != ep->addr.sa.sa_family) {
		mh->msg_controllen = 0;
		mh->msg_control = NULL;
		return 0;
	}
	c = CMSG_FIRSTHDR(mh);
	if (ep->src_family == AF_INET) {
		struct in_pktinfo pi = { .ipi_spec_dst = ep->src.in4 };
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	struct in6_pktinfo pi6 = { .ipi6_addr = ep->src.in6,
				   .ipi6_ifindex = (unsigned int)ep->src_ifindex };
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi6));
	memcpy(CMSG_DATA(c), &pi6, sizeof(pi6));
	return CMSG_SPACE(sizeof(pi6));
}

static int fd_for(struct vpn_device *dev, const union vpn_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? dev->udp6_fd : dev->udp4_fd;
}

int vpn_send_datagram(struct vpn_device *dev, const struct vpn_endpoint *ep, const uint8_t *buf,
		      size_t len)
{
	uint8_t ctl[CMSG_SPACE_ALL];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)&ep->addr,
			     .msg_namelen = vpn_sockaddr_len(&ep->addr),
			     .msg_iov = &iov,
			     .msg_iovlen = 1 };
	int fd = fd_for(dev, &ep->addr);

	if (fd < 0 || !ep->addr.sa.sa_family)
		return -ENOTCONN;
	mh.msg_controllen = put_source(&mh, ep, ctl, sizeof(ctl));
	if (sendmsg(fd, &mh, 0) >= 0)
		return 0;
	if (errno == EINVAL && mh.msg_controllen) {
		/* The source address went away: let the kernel choose. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		if (sendmsg(fd, &mh, 0) >= 0)
			return 0;
	}
	return -errno;
}

/* Datagrams [i, j) go to one endpoint and have one size (the last may be
 * shorter): the condition of UDP GSO. */
static unsigned int gso_run(struct vpn_batch *b, unsigned int i)
{
	unsigned int j = i + 1;
	size_t total = b->out_len[i];

	while (j < b->n_out && j - i < VPN_GSO_MAX_SEGMENTS && b->out_len[j] <= b->out_len[i] &&
	       total + b->out_len[j] <= VPN_GSO_MAX_BYTES &&
	       b->out_off[j] == b->out_off[j - 1] + b->out_len[j - 1] &&
	       vpn_sockaddr_equal(&b->out_ep[j].addr, &b->out_ep[i].addr)) {
		total += b->out_len[j];
		if (b->out_len[j] < b->out_len[i]) {
			j++;
			break;
		}
		j++;
	}
	return j;
}

void vpn_send_flush(struct vpn_device *dev)
{
	struct vpn_batch *b = dev->batch;
	struct mmsghdr mm[VPN_BATCH];
	struct iovec iov[VPN_BATCH];
	uint8_t ctl[VPN_BATCH][CMSG_SPACE_ALL];
	unsigned int n = 0;

	if (!b->n_out)
		return;
	vpn_crypt_run(dev->crypt, b->seal, b->n_out);
	for (unsigned int i = 0; i < b->n_out;) {
		unsigned int j = dev->udp_gso ? gso_run(b, i) : i + 1;
		struct msghdr *mh = &mm[n].msg_hdr;
		memset(&mm[n], 0, sizeof(mm[n]));
		iov[n].iov_base = b->out_area + b->out_off[i];
		iov[n].iov_len = b->out_off[j - 1] + b->out_len[j - 1] - b->out_off[i];
		mh->msg_name = &b->out_ep[i].addr;
		mh->msg_namelen = vpn_sockaddr_len(&b->out_ep[i].addr);
		mh->msg_iov = &iov[n];
		mh->msg_iovlen = 1;
		size_t cl = put_source(mh, &b->out_ep[i], ctl[n], sizeof(ctl[n]));
		if (j - i > 1) {
			struct cmsghdr *c = (struct cmsghdr *)(ctl[n] + cl);
			uint16_t seg = b->out_len[i];
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
			cl += CMSG_SPACE(sizeof(seg));
			mh->msg_control = ctl[n];
		}
		mh->msg_controllen = cl;
		if (!cl)
			mh->msg_control = NULL;
		n++;
		i = j;
	}
	/* One family per sendmmsg: split by socket, keeping order. */
	for (unsigned int i = 0; i < n;) {
		int fd = fd_for(dev, (union vpn_sockaddr *)mm[i].msg_hdr.msg_name);
		unsigned int j = i + 1;
		while (j < n && fd_for(dev, (union vpn_sockaddr *)mm[j].msg_hdr.msg_name) == fd)
			j++;
		if (fd >= 0) {
			unsigned int done = 0;
			while (done < j - i) {
				int r = sendmmsg(fd, &mm[i + done], j - i - done, 0);
				if (r <= 0) {
					if (r < 0 && errno == EIO && dev->udp_gso)
						dev->udp_gso =
						    false; /* no checksum offload: GSO refused */
					dev->drops[VPN_DROP_SEND_FAILED] += j - i - done;
					dev->last_send_errno = r < 0 ? errno : 0;
					break; /* the rest is lost, as UDP allows */
				}
				done += (unsigned int)r;
			}
		}
		i = j;
	}
	b->n_out = 0;
	b->out_used = 0;
}

/* ---- receiving ---- */

static void read_source(struct msghdr *mh, struct vpn_endpoint *ep)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			ep->src.in4 = pi.ipi_addr;
			ep->src_family = AF_INET;
			ep->src_ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi6;
			memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
			ep->src.in6 = pi6.ipi6_addr;
			ep->src_family = AF_INET6;
			ep->src_ifindex = (int)pi6.ipi6_ifindex;
		}
	}
}

/* The segment size of a datagram the kernel coalesced (UDP_GRO); 0: none. */
static size_t gro_size(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v > 0 ? (size_t)v : 0;
		}
	}
	return 0;
}

int vpn_socket_receive_batch(struct vpn_device *dev, int fd)
{
	struct vpn_batch *b = dev->batch;
	struct mmsghdr mm[VPN_RECV_MSGS];
	struct iovec iov[VPN_RECV_MSGS];
	struct vpn_endpoint from[VPN_RECV_MSGS];
	uint8_t ctl[VPN_RECV_MSGS][CMSG_SPACE_RECV];
	int n;

	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < VPN_RECV_MSGS; i++) {
		iov[i].iov_base = b->in_area + (size_t)i * VPN_RECV_BUF;
		iov[i].iov_len = VPN_RECV_BUF;
		mm[i].msg_hdr.msg_name = &from[i].addr;
		mm[i].msg_hdr.msg_namelen = sizeof(from[i].addr);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = ctl[i];
		mm[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
	}
	n = recvmmsg(fd, mm, VPN_RECV_MSGS, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	uint8_t *data[VPN_BATCH];
	size_t data_len[VPN_BATCH];
	const struct vpn_endpoint *data_from[VPN_BATCH];
	unsigned int n_data = 0;
	/* Runs of data messages are opened together (at most VPN_BATCH at a
	 * time); anything else (a handshake may change keypairs) is handled
	 * between runs, in order. A coalesced message (UDP_GRO) is a run of
	 * datagrams of one size from one sender, the last maybe shorter. */
	for (int i = 0; i < n; i++) {
		uint8_t *buf = iov[i].iov_base;
		size_t len = mm[i].msg_len;
		size_t seg;

		from[i].src_family = 0;
		read_source(&mm[i].msg_hdr, &from[i]);
		if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
			continue;
		seg = gro_size(&mm[i].msg_hdr);
		if (!seg || seg > len)
			seg = len;
		size_t off = 0;
		do {
			uint8_t *d = buf + off;
			size_t dl = len - off < seg ? len - off : seg;

			if (vpn_receive_is_data(d, dl)) {
				data[n_data] = d;
				data_len[n_data] = dl;
				data_from[n_data++] = &from[i];
				if (n_data == VPN_BATCH) {
					vpn_receive_data_batch(dev, data, data_len, data_from,
							       n_data);
					n_data = 0;
				}
			} else {
				vpn_receive_data_batch(dev, data, data_len, data_from, n_data);
				n_data = 0;
				vpn_receive_datagram(dev, d, dl, &from[i]);
			}
			off += seg;
		} while (off < len);
	}
	vpn_receive_data_batch(dev, data, data_len, data_from, n_data);
	vpn_tun_flush(dev);
	vpn_send_flush(dev);
	return n;
}
