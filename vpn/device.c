/* The device: creation, the event loop that drives TUN, sockets, UAPI and
 * timers, configuration from a struct, and metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "vpn/internal.h"

#define VPN_DEFAULT_STATE_DIR "/var/lib/hvgate/vpn"
#define VPN_EPOLL_EVENTS      16

enum { TAG_TUN = 1, TAG_UDP4, TAG_UDP6, TAG_UAPI, TAG_WAKE };

uint64_t vpn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * VPN_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double time_scale_from_env(void)
{
	const char *s = getenv("HVGATE_VPN_TIME_SCALE");
	char *end;
	double v;

	if (!s || !*s)
		return 1.0;
	v = strtod(s, &end);
	return (*end || !(v > 0)) ? 1.0 : v;
}

/* ---- the last sent timestamp, kept on disk ---- */

static void timestamp_path(const struct vpn_device *dev, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.tai64n", dev->state_dir, dev->ifname);
}

static void load_timestamp(struct vpn_device *dev)
{
	char path[512];
	int fd;

	if (!dev->state_dir[0])
		return;
	timestamp_path(dev, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (read(fd, dev->last_sent_timestamp, VPN_TAI64N_LEN) != VPN_TAI64N_LEN)
		memset(dev->last_sent_timestamp, 0, VPN_TAI64N_LEN);
	close(fd);
}

/* Written through a temporary file and rename so a crash never leaves a
 * truncated timestamp. Failures are not fatal: peers accept us as long as
 * the clock does not step back. */
void vpn_device_store_timestamp(struct vpn_device *dev)
{
	char path[512], tmp[520];
	int fd;

	if (!dev->state_dir[0] || !dev->ifname[0])
		return;
	timestamp_path(dev, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = write(fd, dev->last_sent_timestamp, VPN_TAI64N_LEN) == VPN_TAI64N_LEN;
	close(fd);
	if (ok)
		rename(tmp, path);
	else
		unlink(tmp);
}

static void mkdir_p(const char *dir)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0700);
			*p = '/';
		}
	}
	mkdir(buf, 0700);
}

/* ---- creation ---- */

static int epoll_add(struct vpn_device *dev, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int open_io(struct vpn_device *dev, const struct vpn_device_options *opts)
{
	int ret =
	    vpn_tun_create(opts->ifname, dev->ifname, sizeof(dev->ifname), &dev->tun_vnet_hdr);

	if (ret < 0) {
		if (opts->failed)
			snprintf(opts->failed, opts->failed_len, "the TUN device %s", opts->ifname);
		return ret;
	}
	dev->tun_fd = ret;
	dev->tun_gro = dev->tun_vnet_hdr && !getenv("HVGATE_VPN_NO_GRO");
	vpn_tun_set_mtu(dev->ifname, dev->mtu);
	if ((ret = epoll_add(dev, dev->tun_fd, TAG_TUN)))
		return ret;
	if (opts->uapi) {
		ret = vpn_uapi_listen(dev->ifname);
		if (ret < 0) {
			if (opts->failed)
				vpn_uapi_describe(dev->ifname, opts->failed, opts->failed_len);
			return ret;
		}
		dev->uapi_fd = ret;
		if ((ret = epoll_add(dev, dev->uapi_fd, TAG_UAPI)))
			return ret;
	}
	/* Like wireguard-go, listen at once on a random port until told
	 * otherwise, so `wg show` has a port to print. */
	return vpn_device_set_listen_port(dev, 0);
}

int vpn_device_create(struct vpn_device **out, const struct vpn_device_options *opts)
{
	struct vpn_device *dev;
	int ret;

	*out = NULL;
	if (sodium_init() < 0)
		return -EIO;
	/* The device holds our static private key: locked, guarded memory
	 * that stays out of core dumps (libsodium applies MADV_DONTDUMP). */
	dev = vpn_secure_alloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	memset(dev, 0, sizeof(*dev));
	pthread_mutex_init(&dev->lock, NULL);
	dev->tun_fd = dev->udp4_fd = dev->udp6_fd = dev->uapi_fd = dev->epoll_fd = dev->wake_fd =
	    -1;
	dev->time_scale = time_scale_from_env();
	dev->mtu = opts->mtu ? opts->mtu : VPN_DEFAULT_MTU;
	vpn_allowedips_init(&dev->allowedips);
	dev->batch = malloc(sizeof(*dev->batch));
	dev->ratelimit = calloc(VPN_RATELIMIT_SLOTS, sizeof(*dev->ratelimit));
	dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	dev->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dev->batch)
		dev->batch->in_area = malloc((size_t)VPN_RECV_MSGS * VPN_RECV_BUF);
	if (!dev->batch || !dev->batch->in_area || !dev->ratelimit || dev->epoll_fd < 0 ||
	    dev->wake_fd < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	dev->batch->n_out = 0;
	dev->batch->out_used = 0;
	dev->batch->gro.len = 0;
	if ((ret = epoll_add(dev, dev->wake_fd, TAG_WAKE)))
		goto fail;
	if (opts->ifname) {
		snprintf(dev->state_dir, sizeof(dev->state_dir), "%s",
			 opts->state_dir ? opts->state_dir : VPN_DEFAULT_STATE_DIR);
		if ((ret = open_io(dev, opts)))
			goto fail;
		mkdir_p(dev->state_dir);
		load_timestamp(dev);
	}
	*out = dev;
	return 0;
fail:
	vpn_device_destroy(dev);
	return ret;
}

void vpn_device_destroy(struct vpn_device *dev)
{
	if (!dev)
		return;
	vpn_device_stop(dev);
	vpn_crypt_destroy(dev->crypt);
	while (dev->peers)
		vpn_peer_destroy(dev->peers);
	vpn_allowedips_free(&dev->allowedips);
	vpn_socket_close(dev);
	vpn_uapi_close_all(dev);
	if (dev->uapi_fd >= 0) {
		close(dev->uapi_fd);
		vpn_uapi_unlink(dev->ifname);
	}
	if (dev->tun_fd >= 0)
		close(dev->tun_fd);
	if (dev->epoll_fd >= 0)
		close(dev->epoll_fd);
	if (dev->wake_fd >= 0)
		close(dev->wake_fd);
	if (dev->batch)
		free(dev->batch->in_area);
	free(dev->batch);
	free(dev->ratelimit);
	pthread_mutex_destroy(&dev->lock);
	vpn_secure_free(dev, sizeof(*dev)); /* wipes the private key */
}

const char *vpn_device_ifname(const struct vpn_device *dev)
{
	return dev->ifname;
}

/* ---- settings ---- */

int vpn_device_set_private_key(struct vpn_device *dev, const uint8_t key[VPN_KEY_LEN])
{
	uint8_t clamped[VPN_KEY_LEN];

	memcpy(clamped, key, VPN_KEY_LEN);
	vpn_noise_clamp(clamped);
	if (dev->has_identity && !sodium_memcmp(clamped, dev->static_private, VPN_KEY_LEN)) {
		sodium_memzero(clamped, sizeof(clamped));
		return 0;
	}
	if (sodium_is_zero(key, VPN_KEY_LEN)) {
		dev->has_identity = false;
		sodium_memzero(dev->static_private, VPN_KEY_LEN);
		sodium_memzero(dev->static_public, VPN_KEY_LEN);
	} else {
		memcpy(dev->static_private, clamped, VPN_KEY_LEN);
		crypto_scalarmult_base(dev->static_public, dev->static_private);
		dev->has_identity = true;
	}
	sodium_memzero(clamped, sizeof(clamped));
	vpn_cookie_checker_init(&dev->cookie_checker, dev->static_public);
	/* A peer with our own public key would be ourselves: drop it
	 * (wireguard-go does the same). Sessions made with the old key end. */
	for (struct vpn_peer *p = dev->peers, *next; p; p = next) {
		next = p->next;
		if (dev->has_identity && !memcmp(p->public_key, dev->static_public, VPN_KEY_LEN)) {
			vpn_peer_destroy(p);
			continue;
		}
		vpn_peer_refresh_static(p);
		vpn_noise_clear_handshake(p);
		vpn_noise_clear_keypairs(p);
	}
	return 0;
}

int vpn_device_set_listen_port(struct vpn_device *dev, uint16_t port)
{
	if (dev->tun_fd < 0) {
		dev->listen_port = port; /* no I/O in this device */
		return 0;
	}
	if (port && port == dev->listen_port && dev->udp4_fd >= 0)
		return 0;
	/* The old sockets are closed by vpn_socket_open once the new ones are
	 * bound (closing also takes them out of the epoll set). */
	int ret = vpn_socket_open(dev, port);
	if (ret)
		return ret;
	if (dev->udp4_fd >= 0 && (ret = epoll_add(dev, dev->udp4_fd, TAG_UDP4)))
		return ret;
	if (dev->udp6_fd >= 0 && (ret = epoll_add(dev, dev->udp6_fd, TAG_UDP6)))
		return ret;
	return 0;
}

int vpn_device_set_fwmark(struct vpn_device *dev, uint32_t mark)
{
	dev->fwmark = mark;
	if (dev->udp4_fd >= 0)
		setsockopt(dev->udp4_fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	if (dev->udp6_fd >= 0)
		setsockopt(dev->udp6_fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	return 0;
}

void vpn_device_set_keepalive(struct vpn_peer *peer, uint16_t seconds)
{
	bool was_off = !peer->persistent_keepalive;

	peer->persistent_keepalive = seconds;
	/* wireguard-go: turning it on sends one at once, so a peer behind NAT
	 * becomes reachable without waiting. */
	if (was_off && seconds && peer->dev->has_identity && peer->endpoint.addr.sa.sa_family)
		vpn_send_keepalive(peer);
}

/* ---- configuration ---- */

static int configure_peer(struct vpn_device *dev, const struct vpn_peer_config *pc)
{
	struct vpn_peer *p;
	int ret;

	if (dev->has_identity && !memcmp(pc->public_key, dev->static_public, VPN_KEY_LEN))
		return 0;
	p = vpn_peer_lookup(dev, pc->public_key);
	if (!p && !(p = vpn_peer_create(dev, pc->public_key)))
		return -ENOMEM;
	if (pc->has_psk)
		memcpy(p->handshake.psk, pc->psk, VPN_KEY_LEN);
	else
		sodium_memzero(p->handshake.psk, VPN_KEY_LEN);
	if (pc->endpoint) {
		union vpn_sockaddr a;
		if ((ret = vpn_endpoint_parse(pc->endpoint, &a)))
			return ret;
		vpn_peer_set_endpoint(p, &a, NULL);
	}
	vpn_peer_clear_allowed(p);
	for (size_t i = 0; i < pc->n_allowed_ips; i++) {
		struct vpn_prefix pfx = pc->allowed_ips[i];
		if ((ret = vpn_prefix_normalize(&pfx)) || (ret = vpn_peer_add_allowed(p, &pfx)))
			return ret;
	}
	vpn_device_set_keepalive(p, pc->persistent_keepalive);
	return 0;
}

static int configure_locked(struct vpn_device *dev, const struct vpn_config *cfg)
{
	int ret;

	if (cfg->replace_peers) {
		for (struct vpn_peer *p = dev->peers, *next; p; p = next) {
			bool keep = false;
			next = p->next;
			for (size_t i = 0; i < cfg->n_peers && !keep; i++)
				keep =
				    !memcmp(cfg->peers[i].public_key, p->public_key, VPN_KEY_LEN);
			if (!keep)
				vpn_peer_destroy(p);
		}
	}
	if (cfg->has_private_key && (ret = vpn_device_set_private_key(dev, cfg->private_key)))
		return ret;
	if ((ret = vpn_device_set_fwmark(dev, cfg->fwmark)))
		return ret;
	if ((cfg->listen_port || dev->listen_port == 0) &&
	    (ret = vpn_device_set_listen_port(dev, cfg->listen_port)))
		return ret;
	for (size_t i = 0; i < cfg->n_peers; i++)
		if ((ret = configure_peer(dev, &cfg->peers[i])))
			return ret;
	return 0;
}

int vpn_device_configure(struct vpn_device *dev, const struct vpn_config *cfg)
{
	pthread_mutex_lock(&dev->lock);
	int ret = configure_locked(dev, cfg);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int vpn_device_uapi(struct vpn_device *dev, const char *request, size_t len, char **reply)
{
	size_t reply_len;

	pthread_mutex_lock(&dev->lock);
	int ret = vpn_uapi_process(dev, request, len, reply, &reply_len);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/* ---- the loop ---- */

static int handle_event(struct vpn_device *dev, uint32_t tag, uint32_t events)
{
	if (tag >= VPN_UAPI_TAG && tag < VPN_UAPI_TAG + VPN_UAPI_MAX_CLIENTS) {
		vpn_uapi_client_event(dev, tag - VPN_UAPI_TAG, events);
		return 0;
	}
	switch (tag) {
	case TAG_TUN: return vpn_tun_read_batch(dev) == -ENODEV ? -ENODEV : 0;
	case TAG_UDP4: vpn_socket_receive_batch(dev, dev->udp4_fd); return 0;
	case TAG_UDP6: vpn_socket_receive_batch(dev, dev->udp6_fd); return 0;
	case TAG_UAPI: vpn_uapi_accept(dev); return 0;
	case TAG_WAKE: {
		uint64_t v;
		if (read(dev->wake_fd, &v, sizeof(v)) < 0)
			return 0;
		return 0;
	}
	}
	return 0;
}

int vpn_device_run_once(struct vpn_device *dev, int timeout_ms)
{
	struct epoll_event ev[VPN_EPOLL_EVENTS];
	uint64_t now = vpn_now_ns();
	uint64_t next = dev->next_timer_ns;
	int ret = 0;

	/* The worker threads start with the loop, not with the device: `hvgate
	 * vpn run` creates the device and then forks, and a child has none of
	 * its parent's threads. Without them the engine works alone. */
	if (!dev->crypt_started && dev->tun_fd >= 0) {
		dev->crypt_started = true;
		if (vpn_crypt_create(&dev->crypt, vpn_crypt_threads_wanted(),
				     vpn_crypt_adaptive_wanted()))
			dev->crypt = NULL;
	}
	/* dev->uapi_clients is the engine thread's own: no lock to read it. */
	if (dev->next_uapi_ns && (!next || dev->next_uapi_ns < next))
		next = dev->next_uapi_ns;
	if (next) {
		uint64_t wait = next > now ? (next - now + 999999) / 1000000 : 0;
		if (timeout_ms < 0 || wait < (uint64_t)timeout_ms)
			timeout_ms = (int)wait;
	}
	uint64_t before = vpn_now_ns();
	int n = epoll_wait(dev->epoll_fd, ev, VPN_EPOLL_EVENTS, timeout_ms);
	if (n < 0 && errno != EINTR)
		return -errno;
	uint64_t after = vpn_now_ns();
	pthread_mutex_lock(&dev->lock);
	/* Whether the workers pay is judged from how much of its time the
	 * engine thread spends waiting here (crypt.c). */
	vpn_crypt_tick(dev->crypt, after, after - before);
	for (int i = 0; i < n && !ret; i++)
		ret = handle_event(dev, ev[i].data.u32, ev[i].events);
	uint64_t t = vpn_now_ns();
	dev->next_uapi_ns = vpn_uapi_expire(dev, t);
	if (dev->tun_fd >= 0 && t >= dev->next_mtu_check_ns) {
		int mtu = vpn_tun_get_mtu(dev->ifname);
		if (mtu > 0)
			dev->mtu = mtu;
		dev->next_mtu_check_ns = t + VPN_NSEC_PER_SEC;
	}
	dev->next_timer_ns = vpn_timers_run(dev, t);
	vpn_tun_flush(dev);
	vpn_send_flush(dev);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int vpn_device_run(struct vpn_device *dev)
{
	int ret = 0;

	while (!dev->stop && !ret)
		ret = vpn_device_run_once(dev, -1);
	return ret;
}

static void *run_thread(void *arg)
{
	vpn_device_run(arg);
	return NULL;
}

int vpn_device_start(struct vpn_device *dev)
{
	dev->stop = false;
	int ret = pthread_create(&dev->thread, NULL, run_thread, dev);
	if (ret)
		return -ret;
	dev->thread_running = true;
	return 0;
}

void vpn_device_stop(struct vpn_device *dev)
{
	uint64_t one = 1;

	dev->stop = true;
	if (dev->wake_fd >= 0 && write(dev->wake_fd, &one, sizeof(one)) < 0)
		(void)0;
	if (dev->thread_running) {
		pthread_join(dev->thread, NULL);
		dev->thread_running = false;
	}
}

/* ---- metrics ---- */

static const char *const drop_names[VPN_DROP__COUNT] = {
	[VPN_DROP_MAC1] = "mac1",
	[VPN_DROP_HANDSHAKE] = "handshake",
	[VPN_DROP_TIMESTAMP] = "timestamp",
	[VPN_DROP_RATELIMIT] = "under_load",
	[VPN_DROP_NO_KEYPAIR] = "no_keypair",
	[VPN_DROP_DECRYPT] = "decrypt",
	[VPN_DROP_REPLAY] = "replay",
	[VPN_DROP_ALLOWEDIPS] = "allowed_ips",
	[VPN_DROP_NO_PEER] = "no_peer",
	[VPN_DROP_MALFORMED] = "malformed",
	[VPN_DROP_STAGED_FULL] = "staged_full",
	[VPN_DROP_SEND_FAILED] = "send_failed",
};

void vpn_device_metrics(struct vpn_device *dev, vpn_metric_fn emit, void *ctx)
{
	char labels[256], b64[VPN_KEY_BASE64_LEN + 1];

	pthread_mutex_lock(&dev->lock);
	snprintf(labels, sizeof(labels), "ifname=\"%s\"", dev->ifname);
	emit(ctx, "hvgate_vpn_peers", labels, (double)dev->n_peers);
	emit(ctx, "hvgate_vpn_handshakes_initiated_total", labels,
	     (double)dev->handshakes_initiated);
	emit(ctx, "hvgate_vpn_handshakes_responded_total", labels,
	     (double)dev->handshakes_responded);
	emit(ctx, "hvgate_vpn_cookie_replies_total", labels, (double)dev->cookies_sent);
	emit(ctx, "hvgate_vpn_rx_packets_total", labels, (double)dev->rx_packets);
	emit(ctx, "hvgate_vpn_tx_packets_total", labels, (double)dev->tx_packets);
	emit(ctx, "hvgate_vpn_last_send_errno", labels, (double)dev->last_send_errno);
	uint64_t par, inl;
	bool in_use;
	vpn_crypt_stats(dev->crypt, &par, &inl, &in_use);
	emit(ctx, "hvgate_vpn_crypt_workers_in_use", labels, in_use ? 1.0 : 0.0);
	snprintf(labels, sizeof(labels), "ifname=\"%s\",by=\"workers\"", dev->ifname);
	emit(ctx, "hvgate_vpn_crypt_batches_total", labels, (double)par);
	snprintf(labels, sizeof(labels), "ifname=\"%s\",by=\"engine\"", dev->ifname);
	emit(ctx, "hvgate_vpn_crypt_batches_total", labels, (double)inl);
	for (int i = 0; i < VPN_DROP__COUNT; i++) {
		snprintf(labels, sizeof(labels), "ifname=\"%s\",reason=\"%s\"", dev->ifname,
			 drop_names[i]);
		emit(ctx, "hvgate_vpn_drops_total", labels, (double)dev->drops[i]);
	}
	for (struct vpn_peer *p = dev->peers; p; p = p->next) {
		vpn_key_to_base64(b64, p->public_key);
		snprintf(labels, sizeof(labels), "ifname=\"%s\",peer=\"%s\"", dev->ifname, b64);
		emit(ctx, "hvgate_vpn_peer_rx_bytes_total", labels, (double)p->rx_bytes);
		emit(ctx, "hvgate_vpn_peer_tx_bytes_total", labels, (double)p->tx_bytes);
		emit(ctx, "hvgate_vpn_peer_handshakes_total", labels,
		     (double)p->handshakes_completed);
		emit(ctx, "hvgate_vpn_peer_last_handshake_seconds", labels,
		     (double)p->last_handshake_wall.tv_sec);
	}
	pthread_mutex_unlock(&dev->lock);
}
