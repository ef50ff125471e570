/* The cross-platform userspace API of WireGuard (wireguard.com/xplatform):
 * a unix socket per interface, /var/run/wireguard/IFNAME.sock, speaking
 * "get=1" and "set=1" in key=value lines ended by a blank line. This is what
 * `wg` uses to talk to wireguard-go, so the same `wg` talks to us. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "vpn/internal.h"

#define VPN_UAPI_DIR "/var/run/wireguard"
/* A request larger than this is refused (a few thousand peers fit). */
#define VPN_UAPI_MAX_REQUEST (4 << 20)
/* A client that stalls mid-request must not stall the engine. */
#define VPN_UAPI_CLIENT_TIMEOUT_MS 1000

/* ---- get ---- */

static void get_peer(struct vpn_peer *p, FILE *f)
{
	char hex[2 * VPN_KEY_LEN + 1], ep[INET6_ADDRSTRLEN + 16], pfx[INET6_ADDRSTRLEN + 8];

	vpn_key_to_hex(hex, p->public_key);
	fprintf(f, "public_key=%s\n", hex);
	vpn_key_to_hex(hex, p->handshake.psk);
	fprintf(f, "preshared_key=%s\n", hex);
	sodium_memzero(hex, sizeof(hex));
	fprintf(f, "protocol_version=1\n");
	if (p->endpoint.addr.sa.sa_family) {
		vpn_endpoint_format(&p->endpoint.addr, ep, sizeof(ep));
		fprintf(f, "endpoint=%s\n", ep);
	}
	fprintf(f, "last_handshake_time_sec=%lld\n", (long long)p->last_handshake_wall.tv_sec);
	fprintf(f, "last_handshake_time_nsec=%ld\n", p->last_handshake_wall.tv_nsec);
	fprintf(f, "tx_bytes=%llu\n", (unsigned long long)p->tx_bytes);
	fprintf(f, "rx_bytes=%llu\n", (unsigned long long)p->rx_bytes);
	fprintf(f, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	for (size_t i = 0; i < p->n_allowed; i++) {
		vpn_prefix_format(&p->allowed[i], pfx, sizeof(pfx));
		fprintf(f, "allowed_ip=%s\n", pfx);
	}
}

static void uapi_get(struct vpn_device *dev, FILE *f)
{
	char hex[2 * VPN_KEY_LEN + 1];

	if (dev->has_identity) {
		vpn_key_to_hex(hex, dev->static_private);
		fprintf(f, "private_key=%s\n", hex);
		sodium_memzero(hex, sizeof(hex));
	}
	if (dev->listen_port)
		fprintf(f, "listen_port=%u\n", dev->listen_port);
	if (dev->fwmark)
		fprintf(f, "fwmark=%u\n", dev->fwmark);
	/* Oldest first, as peers were added (our list is newest first). */
	size_t n = dev->n_peers;
	struct vpn_peer **order = n ? calloc(n, sizeof(*order)) : NULL;
	size_t i = n;
	for (struct vpn_peer *p = dev->peers; p && i; p = p->next)
		order[--i] = p;
	for (i = 0; i < n && order; i++)
		get_peer(order[i], f);
	free(order);
}

/* ---- set ---- */

struct set_state {
	struct vpn_peer *peer; /* the peer being configured, NULL before one */
	bool peer_created;
	bool ignore_peer;      /* our own public key: wireguard-go ignores it */
};

static int parse_bool(const char *v)
{
	return !strcmp(v, "true") ? 1 : (!strcmp(v, "false") ? 0 : -1);
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*v) {
		*out = 0;
		return 0;
	}
	errno = 0;
	*out = strtoul(v, &end, 10);
	return (*end || errno || *out > max || *v == '-') ? -EINVAL : 0;
}

static int set_device_key(struct vpn_device *dev, const char *k, const char *v)
{
	uint8_t key[VPN_KEY_LEN];
	unsigned long n;
	int ret;

	if (!strcmp(k, "private_key")) {
		if (vpn_key_from_hex(key, v))
			return -EINVAL;
		ret = vpn_device_set_private_key(dev, key);
		sodium_memzero(key, sizeof(key));
		return ret;
	}
	if (!strcmp(k, "listen_port")) {
		if (parse_uint(v, 65535, &n))
			return -EINVAL;
		return vpn_device_set_listen_port(dev, (uint16_t)n);
	}
	if (!strcmp(k, "fwmark")) {
		if (parse_uint(v, UINT32_MAX, &n))
			return -EINVAL;
		return vpn_device_set_fwmark(dev, (uint32_t)n);
	}
	if (!strcmp(k, "replace_peers")) {
		int b = parse_bool(v);
		if (b < 0)
			return -EINVAL;
		while (b && dev->peers)
			vpn_peer_destroy(dev->peers);
		return 0;
	}
	return -EINVAL;
}

static int set_peer_key(struct set_state *st, const char *k, const char *v)
{
	struct vpn_peer *p = st->peer;
	unsigned long n;
	int b;

	if (st->ignore_peer)
		return 0;
	if (!strcmp(k, "update_only")) {
		if ((b = parse_bool(v)) < 0)
			return -EINVAL;
		if (b && st->peer_created) {
			vpn_peer_destroy(p);
			st->peer = NULL;
			st->ignore_peer = true;
		}
		return 0;
	}
	if (!strcmp(k, "remove")) {
		if ((b = parse_bool(v)) < 0)
			return -EINVAL;
		if (b) {
			vpn_peer_destroy(p);
			st->peer = NULL;
			st->ignore_peer = true;
		}
		return 0;
	}
	if (!strcmp(k, "preshared_key")) {
		if (vpn_key_from_hex(p->handshake.psk, v))
			return -EINVAL;
		return 0;
	}
	if (!strcmp(k, "endpoint")) {
		union vpn_sockaddr a;
		if (vpn_endpoint_parse(v, &a))
			return -EINVAL;
		vpn_peer_set_endpoint(p, &a, NULL);
		return 0;
	}
	if (!strcmp(k, "persistent_keepalive_interval")) {
		if (parse_uint(v, 65535, &n))
			return -EINVAL;
		vpn_device_set_keepalive(p, (uint16_t)n);
		return 0;
	}
	if (!strcmp(k, "replace_allowed_ips")) {
		if ((b = parse_bool(v)) < 0)
			return -EINVAL;
		if (b)
			vpn_peer_clear_allowed(p);
		return 0;
	}
	if (!strcmp(k, "allowed_ip")) {
		struct vpn_prefix pfx;
		if (vpn_prefix_parse(v, &pfx))
			return -EINVAL;
		return vpn_peer_add_allowed(p, &pfx);
	}
	if (!strcmp(k, "protocol_version"))
		return strcmp(v, "1") ? -EPROTONOSUPPORT : 0;
	return -EINVAL;
}

static int set_line(struct vpn_device *dev, struct set_state *st, char *line)
{
	char *eq = strchr(line, '=');

	if (!eq)
		return -EINVAL;
	*eq = 0;
	const char *k = line, *v = eq + 1;
	if (!strcmp(k, "public_key")) {
		uint8_t pub[VPN_KEY_LEN];
		if (vpn_key_from_hex(pub, v))
			return -EINVAL;
		st->ignore_peer = dev->has_identity && !memcmp(pub, dev->static_public, VPN_KEY_LEN);
		st->peer_created = false;
		st->peer = NULL;
		if (st->ignore_peer)
			return 0;
		st->peer = vpn_peer_lookup(dev, pub);
		if (!st->peer) {
			st->peer = vpn_peer_create(dev, pub);
			if (!st->peer)
				return -ENOMEM;
			st->peer_created = true;
		}
		return 0;
	}
	if (st->peer || st->ignore_peer)
		return set_peer_key(st, k, v);
	return set_device_key(dev, k, v);
}

/* The text of a set request after its "set=1" line; lines are separated by
 * '\n' and the request ends at a blank line or the end. */
static int uapi_set(struct vpn_device *dev, char *body)
{
	struct set_state st = { 0 };
	char *save = NULL;

	for (char *line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int ret = set_line(dev, &st, line);
		if (ret)
			return ret;
	}
	return 0;
}

int vpn_uapi_process(struct vpn_device *dev, const char *req, size_t len, char **reply, size_t *reply_len)
{
	FILE *f = open_memstream(reply, reply_len);
	int ret = 0;

	if (!f)
		return -ENOMEM;
	if (len >= 6 && !memcmp(req, "get=1\n", 6)) {
		uapi_get(dev, f);
		fprintf(f, "errno=0\n\n");
	} else if (len >= 6 && !memcmp(req, "set=1\n", 6)) {
		char *body = strndup(req + 6, len - 6);
		if (!body) {
			ret = -ENOMEM;
		} else {
			char *end = strstr(body, "\n\n");
			if (end)
				end[1] = 0;
			ret = uapi_set(dev, body);
			sodium_memzero(body, strlen(body));
			free(body);
		}
		/* Set replies carry a negative errno (wireguard-go ipc.go). */
		fprintf(f, "errno=%d\n\n", ret);
	} else {
		ret = -EINVAL;
		fprintf(f, "errno=%d\n\n", ret);
	}
	fclose(f);
	return ret;
}

/* ---- the socket ---- */

static void socket_path(const char *ifname, char *out, size_t len)
{
	snprintf(out, len, VPN_UAPI_DIR "/%s.sock", ifname);
}

int vpn_uapi_listen(const char *ifname)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	mkdir(VPN_UAPI_DIR, 0755);
	socket_path(ifname, sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A live socket belongs to another engine; a dead one is stale. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(sa.sun_path);
	mode_t old = umask(0077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r || listen(fd, 16)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void vpn_uapi_unlink(const char *ifname)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	socket_path(ifname, path, sizeof(path));
	unlink(path);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Serves requests on one connection until it closes (wg sends one). */
void vpn_uapi_serve_client(struct vpn_device *dev, int fd)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = VPN_UAPI_CLIENT_TIMEOUT_MS * 1000 };
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (buf) {
		char *end = len ? memmem(buf, len, "\n\n", 2) : NULL;
		if (end) {
			size_t req_len = (size_t)(end - buf) + 2;
			char *reply = NULL;
			size_t reply_len = 0;
			vpn_uapi_process(dev, buf, req_len, &reply, &reply_len);
			int w = reply ? write_all(fd, reply, reply_len) : -1;
			if (reply)
				sodium_memzero(reply, reply_len); /* it may hold the private key */
			free(reply);
			sodium_memzero(buf, req_len);
			memmove(buf, buf + req_len, len - req_len);
			len -= req_len;
			if (w)
				break;
			continue;
		}
		if (len + 1 >= cap) {
			if (cap >= VPN_UAPI_MAX_REQUEST)
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (buf) {
		sodium_memzero(buf, cap);
		free(buf);
	}
	close(fd);
}
