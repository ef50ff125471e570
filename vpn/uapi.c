/* The cross-platform userspace API of WireGuard (wireguard.com/xplatform):
 * a unix socket per interface, /var/run/wireguard/IFNAME.sock, speaking
 * "get=1" and "set=1" in key=value lines ended by a blank line. This is what
 * `wg` uses to talk to wireguard-go, so the same `wg` talks to us. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "vpn/internal.h"

#define VPN_UAPI_DIR "/var/run/wireguard"
/* A request larger than this is refused (a few thousand peers fit). */
#define VPN_UAPI_MAX_REQUEST (4 << 20)
/* A request must be read and its reply written within this long (the engine
 * thread serves the socket between packets and never waits for a client);
 * wg needs milliseconds. */
#define VPN_UAPI_CLIENT_TIMEOUT_MS 2000

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
	bool ignore_peer; /* our own public key: wireguard-go ignores it */
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
		st->ignore_peer =
		    dev->has_identity && !memcmp(pub, dev->static_public, VPN_KEY_LEN);
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

int vpn_uapi_process(struct vpn_device *dev, const char *req, size_t len, char **reply,
		     size_t *reply_len)
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

void vpn_uapi_describe(const char *ifname, char *out, size_t len)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	socket_path(ifname, path, sizeof(path));
	snprintf(out, len, "the UAPI socket %s", path);
}

int vpn_uapi_listen(const char *ifname)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	/* A directory we cannot make (a read-only /run under a sandbox) is
	 * the error to report, not the bind() that fails after it. */
	if (mkdir(VPN_UAPI_DIR, 0755) && errno != EEXIST)
		return -errno;
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

static void client_close(struct vpn_device *dev, struct vpn_uapi_client *c)
{
	epoll_ctl(dev->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	/* Both may hold the private key (a set=1 request, a get=1 reply). */
	if (c->in)
		sodium_memzero(c->in, c->in_cap);
	if (c->out)
		sodium_memzero(c->out, c->out_len);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
}

static uint64_t client_deadline(uint64_t now_ns)
{
	return now_ns + (uint64_t)VPN_UAPI_CLIENT_TIMEOUT_MS * 1000000;
}

void vpn_uapi_accept(struct vpn_device *dev)
{
	for (;;) {
		int fd = accept4(dev->uapi_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vpn_uapi_client *c;
		if (fd < 0)
			return;
		unsigned slot = 0;
		while (slot < VPN_UAPI_MAX_CLIENTS && dev->uapi_clients[slot].used)
			slot++;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = VPN_UAPI_TAG + slot };
		if (slot == VPN_UAPI_MAX_CLIENTS ||
		    epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd); /* busy: wg will say so */
			continue;
		}
		c = &dev->uapi_clients[slot];
		*c = (struct vpn_uapi_client){ .used = true,
					       .fd = fd,
					       .deadline_ns = client_deadline(vpn_now_ns()) };
		if (!dev->next_uapi_ns || c->deadline_ns < dev->next_uapi_ns)
			dev->next_uapi_ns = c->deadline_ns;
	}
}

/* Serves the complete requests in c->in; false: close the connection. */
static bool client_process(struct vpn_device *dev, struct vpn_uapi_client *c)
{
	char *end;

	while (c->in_len && (end = memmem(c->in, c->in_len, "\n\n", 2))) {
		size_t req_len = (size_t)(end - c->in) + 2;
		char *reply = NULL, *nb;
		size_t reply_len = 0;
		vpn_uapi_process(dev, c->in, req_len, &reply, &reply_len);
		if (!reply)
			return false;
		nb = realloc(c->out, c->out_len + reply_len);
		if (!nb) {
			sodium_memzero(reply, reply_len);
			free(reply);
			return false;
		}
		c->out = nb;
		memcpy(c->out + c->out_len, reply, reply_len);
		c->out_len += reply_len;
		sodium_memzero(reply, reply_len);
		free(reply);
		sodium_memzero(c->in, req_len);
		memmove(c->in, c->in + req_len, c->in_len - req_len);
		c->in_len -= req_len;
		/* The next request has a time limit of its own. */
		c->deadline_ns = client_deadline(vpn_now_ns());
	}
	return true;
}

/* Reads what there is; false: close the connection. */
static bool client_read(struct vpn_uapi_client *c)
{
	for (;;) {
		if (c->in_len + 1 >= c->in_cap) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
			char *nb;
			if (cap > VPN_UAPI_MAX_REQUEST)
				return false;
			nb = malloc(cap);
			if (!nb)
				return false;
			if (c->in) {
				memcpy(nb, c->in, c->in_len);
				sodium_memzero(c->in, c->in_cap);
				free(c->in);
			}
			c->in = nb;
			c->in_cap = cap;
		}
		ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
		if (r == 0) {
			c->eof = true;
			return true;
		}
		if (r < 0)
			return errno == EAGAIN || errno == EINTR;
		c->in_len += (size_t)r;
	}
}

/* Writes what it can; false: close the connection. */
static bool client_write(struct vpn_uapi_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR;
		c->out_off += (size_t)w;
	}
	sodium_memzero(c->out, c->out_len);
	c->out_off = c->out_len = 0;
	return true;
}

void vpn_uapi_client_event(struct vpn_device *dev, unsigned slot, uint32_t events)
{
	struct vpn_uapi_client *c = &dev->uapi_clients[slot];
	bool keep = true;

	if (!c->used)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		keep = client_read(c) && client_process(dev, c);
	if (keep)
		keep = client_write(c);
	if (keep && c->eof && !c->out_len)
		keep = false; /* all asked, all answered */
	if (!keep) {
		client_close(dev, c);
		return;
	}
	struct epoll_event ev = { .events = (c->eof ? 0 : EPOLLIN) | (c->out_len ? EPOLLOUT : 0),
				  .data.u32 = VPN_UAPI_TAG + slot };
	epoll_ctl(dev->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

uint64_t vpn_uapi_expire(struct vpn_device *dev, uint64_t now_ns)
{
	uint64_t next = 0;

	for (unsigned i = 0; i < VPN_UAPI_MAX_CLIENTS; i++) {
		struct vpn_uapi_client *c = &dev->uapi_clients[i];
		if (!c->used)
			continue;
		if (now_ns >= c->deadline_ns) {
			client_close(dev, c); /* too slow: the tunnel does not wait */
			continue;
		}
		if (!next || c->deadline_ns < next)
			next = c->deadline_ns;
	}
	return next;
}

void vpn_uapi_close_all(struct vpn_device *dev)
{
	for (unsigned i = 0; i < VPN_UAPI_MAX_CLIENTS; i++)
		if (dev->uapi_clients[i].used)
			client_close(dev, &dev->uapi_clients[i]);
}
