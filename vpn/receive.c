/* The receiving side: every datagram from the UDP sockets. Handshake
 * messages are checked cheaply first (mac1, then under load mac2 and a
 * per-host rate limit) before any Curve25519 work (§5.3); data messages are
 * decrypted, replay-checked, and their inner source checked against the
 * sending peer's allowed-ips (§2) before they reach the TUN. */
#include <endian.h>
#include <string.h>

#include "vpn/internal.h"

/* Under load: more handshake messages in one second than one core answers
 * comfortably. wireguard-go flags load at an eighth of its 1024-deep
 * handshake queue; we have no queue, so we count a rate with that bound. */
#define VPN_UNDER_LOAD_PER_SEC 128
/* §5.3 / kernel receive.c: load is remembered for one second. */
#define VPN_UNDER_LOAD_TIME VPN_NSEC_PER_SEC

static bool under_load(struct vpn_device *dev, uint64_t now)
{
	if (now - dev->load_window_start_ns >= VPN_NSEC_PER_SEC) {
		dev->load_window_start_ns = now;
		dev->load_window_count = 0;
	}
	if (++dev->load_window_count > VPN_UNDER_LOAD_PER_SEC)
		dev->under_load_until_ns = now + VPN_UNDER_LOAD_TIME;
	return now < dev->under_load_until_ns;
}

/* Token bucket per source host (kernel ratelimiter.c), in a small hash
 * table; a collision merely shares a bucket. */
static bool ratelimit_allow(struct vpn_device *dev, const union vpn_sockaddr *src, uint64_t now)
{
	uint8_t key[18] = { 0 };
	uint32_t h = 2166136261u; /* FNV-1a offset basis */
	const uint64_t cost = VPN_NSEC_PER_SEC / VPN_RATELIMIT_PER_SEC;
	const uint64_t burst = cost * VPN_RATELIMIT_BURST;

	if (src->sa.sa_family == AF_INET6)
		memcpy(key, &src->in6.sin6_addr, 16);
	else
		memcpy(key, &src->in4.sin_addr, 4);
	key[17] = (uint8_t)src->sa.sa_family;
	for (size_t i = 0; i < sizeof(key); i++)
		h = (h ^ key[i]) * 16777619u; /* FNV prime */
	struct vpn_ratelimit_slot *s = &dev->ratelimit[h % VPN_RATELIMIT_SLOTS];
	if (memcmp(s->key, key, sizeof(key)) || !s->last_ns) {
		memcpy(s->key, key, sizeof(key));
		s->tokens_ns = burst;
		s->last_ns = now;
	}
	s->tokens_ns += now - s->last_ns;
	if (s->tokens_ns > burst)
		s->tokens_ns = burst;
	s->last_ns = now;
	if (s->tokens_ns < cost)
		return false;
	s->tokens_ns -= cost;
	return true;
}

/* §5.4.2-§5.4.3 with the DoS mitigation of §5.3. */
static void receive_handshake(struct vpn_device *dev, uint8_t *buf, size_t len,
			      const struct vpn_endpoint *from, uint32_t sender_index)
{
	uint64_t now = vpn_now_ns();
	bool loaded = under_load(dev, now);
	uint64_t secret_age = vpn_scaled(dev, VPN_COOKIE_SECRET_MAX_AGE);
	enum vpn_cookie_verdict v = vpn_cookie_validate(&dev->cookie_checker, buf, len, &from->addr,
							loaded, now, secret_age);
	struct vpn_peer *peer;
	int why;

	if (v == VPN_COOKIE_INVALID_MAC1) {
		dev->drops[VPN_DROP_MAC1]++;
		return;
	}
	if (loaded) {
		if (v != VPN_COOKIE_VALID_MAC1_AND_MAC2) {
			struct vpn_msg_cookie reply;
			vpn_cookie_reply_create(&dev->cookie_checker, &reply, buf, len,
						sender_index, &from->addr, now, secret_age);
			vpn_send_datagram(dev, from, (uint8_t *)&reply, sizeof(reply));
			dev->cookies_sent++;
			dev->drops[VPN_DROP_RATELIMIT]++;
			return;
		}
		if (!ratelimit_allow(dev, &from->addr, now)) {
			dev->drops[VPN_DROP_RATELIMIT]++;
			return;
		}
	}
	if (len == VPN_MSG_INITIATION_LEN) {
		peer = vpn_noise_consume_initiation(dev, (struct vpn_msg_initiation *)buf, &why);
		if (!peer) {
			dev->drops[why]++;
			return;
		}
		vpn_peer_set_endpoint(peer, &from->addr, from);
		peer->rx_bytes += len;
		vpn_timers_any_authenticated_packet_received(peer);
		vpn_timers_any_authenticated_packet_traversal(peer);
		vpn_send_handshake_response(peer);
		return;
	}
	peer = vpn_noise_consume_response(dev, (struct vpn_msg_response *)buf, &why);
	if (!peer) {
		dev->drops[why]++;
		return;
	}
	if (vpn_noise_begin_session(peer))
		return;
	vpn_peer_set_endpoint(peer, &from->addr, from);
	peer->rx_bytes += len;
	vpn_timers_session_derived(peer);
	vpn_timers_handshake_complete(peer);
	vpn_timers_any_authenticated_packet_received(peer);
	vpn_timers_any_authenticated_packet_traversal(peer);
	/* The responder waits for proof that we have the keys: send staged
	 * packets, or a keepalive if there are none (§5.4.6, kernel). */
	vpn_send_keepalive(peer);
}

static void receive_cookie(struct vpn_device *dev, const uint8_t *buf)
{
	const struct vpn_msg_cookie *msg = (const struct vpn_msg_cookie *)buf;
	struct vpn_peer *peer = vpn_noise_lookup_any(dev, le32toh(msg->receiver_index));

	/* No roaming on cookie replies: they are not authenticated by the
	 * peer's static key. */
	if (!peer || vpn_cookie_reply_consume(&peer->cookie, msg, vpn_now_ns()))
		dev->drops[VPN_DROP_HANDSHAKE]++;
}

/* The inner packet's source, and its real length from its header. */
static bool inner_source(const uint8_t *p, size_t len, int *family, const uint8_t **src,
			 size_t *ip_len)
{
	if (len >= 20 && p[0] >> 4 == 4) {
		size_t tot = (size_t)p[2] << 8 | p[3];
		if (tot < 20 || tot > len)
			return false;
		*family = AF_INET;
		*src = p + 12;
		*ip_len = tot;
		return true;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		size_t tot = 40 + ((size_t)p[4] << 8 | p[5]);
		if (tot > len)
			return false;
		*family = AF_INET6;
		*src = p + 8;
		*ip_len = tot;
		return true;
	}
	return false;
}

/* §6.2: the initiator re-keys before its session gets too old to receive. */
static void keep_key_fresh_on_receive(struct vpn_peer *peer, struct vpn_keypair *kp, uint64_t now)
{
	struct vpn_device *dev = peer->dev;

	if (kp->initiator && !peer->sent_lastminute_handshake &&
	    now - kp->birth_ns >= vpn_scaled(dev, VPN_REJECT_AFTER_TIME - VPN_KEEPALIVE_TIMEOUT -
						      VPN_REKEY_TIMEOUT)) {
		peer->sent_lastminute_handshake = true;
		vpn_send_handshake_initiation(peer, false);
	}
}

/* The last inner source checked against allowed-ips within one batch (the
 * trie does not change during one): a run of packets of one flow needs one
 * lookup. */
struct src_cache {
	int family; /* 0: empty */
	uint8_t addr[16];
	struct vpn_peer *owner;
};

static struct vpn_peer *source_owner(struct vpn_device *dev, struct src_cache *c, int family,
				     const uint8_t *src)
{
	size_t alen = family == AF_INET ? 4 : 16;

	if (!c)
		return vpn_allowedips_lookup(&dev->allowedips, family, src);
	if (c->family != family || memcmp(c->addr, src, alen)) {
		c->family = family;
		memcpy(c->addr, src, alen);
		c->owner = vpn_allowedips_lookup(&dev->allowedips, family, src);
	}
	return c->owner;
}

/* An authentic data message, its plaintext at plain (with room for the
 * TUN's header before it): replay window, roaming, timers, allowed-ips. */
static void deliver_data(struct vpn_device *dev, struct vpn_peer *peer, struct vpn_keypair *kp,
			 uint64_t counter, uint8_t *plain, size_t plain_len, size_t len,
			 const struct vpn_endpoint *from, uint64_t now, struct src_cache *cache)
{
	size_t ip_len;
	const uint8_t *src;
	int family;

	if (!vpn_replay_check(&kp->replay, counter)) {
		dev->drops[VPN_DROP_REPLAY]++;
		return;
	}
	if (vpn_noise_received_with_keypair(peer, kp)) {
		vpn_timers_handshake_complete(peer);
		vpn_send_staged(peer);
	}
	vpn_peer_set_endpoint(peer, &from->addr, from);
	peer->rx_bytes += len;
	dev->rx_packets++;
	keep_key_fresh_on_receive(peer, kp, now);
	vpn_timers_any_authenticated_packet_received(peer);
	vpn_timers_any_authenticated_packet_traversal(peer);
	if (plain_len == 0)
		return; /* a keepalive */
	if (!inner_source(plain, plain_len, &family, &src, &ip_len)) {
		dev->drops[VPN_DROP_MALFORMED]++;
		return;
	}
	if (source_owner(dev, cache, family, src) != peer) {
		dev->drops[VPN_DROP_ALLOWEDIPS]++;
		return;
	}
	vpn_timers_data_received(peer);
	vpn_tun_write(dev, plain, ip_len);
}

static void receive_data(struct vpn_device *dev, const uint8_t *buf, size_t len,
			 const struct vpn_endpoint *from)
{
	const struct vpn_msg_data *hdr = (const struct vpn_msg_data *)buf;
	uint8_t *plain = dev->batch->plain + VPN_VNET_HDR_LEN;
	struct vpn_peer *peer;
	struct vpn_keypair *kp = vpn_noise_lookup_keypair(dev, le32toh(hdr->receiver_index), &peer);
	uint64_t now = vpn_now_ns();
	size_t plain_len;

	if (!kp || vpn_keypair_expired(dev, kp, now)) {
		dev->drops[VPN_DROP_NO_KEYPAIR]++;
		return;
	}
	if (len - sizeof(*hdr) > VPN_WIRE_BUF ||
	    vpn_noise_decrypt(kp, plain, buf, len, &plain_len)) {
		dev->drops[VPN_DROP_DECRYPT]++;
		return;
	}
	deliver_data(dev, peer, kp, le64toh(hdr->counter), plain, plain_len, len, from, now, NULL);
}

bool vpn_receive_is_data(const uint8_t *buf, size_t len)
{
	uint32_t type;

	if (len < VPN_MSG_DATA_MIN_LEN)
		return false;
	memcpy(&type, buf, sizeof(type));
	return le32toh(type) == VPN_MSG_DATA;
}

/* Within a run of data messages no keypair is made (only handshake messages
 * make them), so a keypair found before opening is, when looked up again,
 * the same one or gone: the verdicts are those of the one-by-one path. */
void vpn_receive_data_batch(struct vpn_device *dev, uint8_t *const *bufs, const size_t *lens,
			    const struct vpn_endpoint *const *from, unsigned int n)
{
	struct vpn_crypt_job *jobs = dev->batch->open;
	struct vpn_keypair *opened_with[VPN_BATCH];
	int job_of[VPN_BATCH];
	unsigned int n_jobs = 0;
	uint64_t now = vpn_now_ns();
	struct vpn_peer *peer;
	struct src_cache cache = { .family = 0 };

	if (n == 1)
		receive_data(dev, bufs[0], lens[0], from[0]);
	if (n <= 1)
		return;
	for (unsigned int i = 0; i < n; i++) {
		const struct vpn_msg_data *hdr = (const struct vpn_msg_data *)bufs[i];
		struct vpn_keypair *kp =
		    vpn_noise_lookup_keypair(dev, le32toh(hdr->receiver_index), &peer);

		opened_with[i] = kp;
		job_of[i] = -1;
		if (!kp || vpn_keypair_expired(dev, kp, now) ||
		    lens[i] - sizeof(*hdr) > VPN_WIRE_BUF)
			continue;
		memcpy(jobs[n_jobs].key, kp->recv_key, VPN_KEY_LEN);
		jobs[n_jobs].msg = bufs[i];
		jobs[n_jobs].len = lens[i];
		jobs[n_jobs].seal = false;
		job_of[i] = (int)n_jobs++;
	}
	vpn_crypt_run(dev->crypt, jobs, n_jobs);
	for (unsigned int i = 0; i < n; i++) {
		const struct vpn_msg_data *hdr = (const struct vpn_msg_data *)bufs[i];
		struct vpn_crypt_job *job = &jobs[job_of[i]];
		struct vpn_keypair *kp;

		if (job_of[i] < 0) {
			receive_data(dev, bufs[i], lens[i],
				     from[i]); /* untouched: the usual verdict */
			continue;
		}
		now = vpn_now_ns();
		kp = vpn_noise_lookup_keypair(dev, le32toh(hdr->receiver_index), &peer);
		if (!kp || kp != opened_with[i] || vpn_keypair_expired(dev, kp, now)) {
			dev->drops[VPN_DROP_NO_KEYPAIR]++;
			continue;
		}
		if (job->result) {
			dev->drops[VPN_DROP_DECRYPT]++;
			continue;
		}
		/* In place, after the header: 16 bytes of room for the TUN's. */
		deliver_data(dev, peer, kp, le64toh(hdr->counter), bufs[i] + sizeof(*hdr),
			     job->plain_len, lens[i], from[i], now, &cache);
	}
}

void vpn_receive_datagram(struct vpn_device *dev, uint8_t *buf, size_t len,
			  const struct vpn_endpoint *from)
{
	uint32_t type;

	if (len < sizeof(uint32_t)) {
		dev->drops[VPN_DROP_MALFORMED]++;
		return;
	}
	memcpy(&type, buf, sizeof(type));
	switch (le32toh(type)) {
	case VPN_MSG_INITIATION:
		if (len != VPN_MSG_INITIATION_LEN)
			break;
		receive_handshake(dev, buf, len, from,
				  le32toh(((struct vpn_msg_initiation *)buf)->sender_index));
		return;
	case VPN_MSG_RESPONSE:
		if (len != VPN_MSG_RESPONSE_LEN)
			break;
		receive_handshake(dev, buf, len, from,
				  le32toh(((struct vpn_msg_response *)buf)->sender_index));
		return;
	case VPN_MSG_COOKIE:
		if (len != VPN_MSG_COOKIE_LEN)
			break;
		receive_cookie(dev, buf);
		return;
	case VPN_MSG_DATA:
		if (len < VPN_MSG_DATA_MIN_LEN)
			break;
		receive_data(dev, buf, len, from);
		return;
	}
	dev->drops[VPN_DROP_MALFORMED]++;
}
