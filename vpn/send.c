/* The sending side: handshake messages, and packets from the TUN encrypted
 * with the current session (§5.4.6), queued into the device's batch and
 * flushed with sendmmsg or UDP GSO. */
#include <endian.h>
#include <string.h>

#include "vpn/internal.h"

/* Handshake messages are rare: they go out at once, not through the batch. */
static void send_handshake_message(struct vpn_peer *peer, uint8_t *msg, size_t len)
{
	struct vpn_device *dev = peer->dev;

	vpn_cookie_add_macs(&peer->cookie, msg, len, vpn_now_ns(),
			    vpn_scaled(dev, VPN_COOKIE_SECRET_MAX_AGE - VPN_COOKIE_SECRET_LATENCY));
	vpn_timers_any_authenticated_packet_traversal(peer);
	vpn_timers_any_authenticated_packet_sent(peer);
	if (vpn_send_datagram(dev, &peer->endpoint, msg, len) == 0)
		peer->tx_bytes += len;
}

void vpn_send_handshake_initiation(struct vpn_peer *peer, bool is_retry)
{
	struct vpn_device *dev = peer->dev;
	struct vpn_msg_initiation msg;
	uint64_t now = vpn_now_ns();

	if (!is_retry)
		peer->handshake_attempts = 0;
	/* §6.4: at most one initiation per REKEY_TIMEOUT. */
	if (peer->last_sent_handshake_ns &&
	    now - peer->last_sent_handshake_ns < vpn_scaled(dev, VPN_REKEY_TIMEOUT))
		return;
	if (!peer->endpoint.addr.sa.sa_family)
		return;
	if (vpn_noise_create_initiation(peer, &msg))
		return;
	peer->last_sent_handshake_ns = now;
	dev->handshakes_initiated++;
	send_handshake_message(peer, (uint8_t *)&msg, sizeof(msg));
	vpn_timers_handshake_initiated(peer);
}

void vpn_send_handshake_response(struct vpn_peer *peer)
{
	struct vpn_msg_response msg;

	if (vpn_noise_create_response(peer, &msg))
		return;
	if (vpn_noise_begin_session(peer))
		return;
	vpn_timers_session_derived(peer);
	peer->last_sent_handshake_ns = vpn_now_ns();
	peer->dev->handshakes_responded++;
	send_handshake_message(peer, (uint8_t *)&msg, sizeof(msg));
}

/* The keypair to send with, or NULL if a handshake is needed first. */
static struct vpn_keypair *sending_keypair(struct vpn_peer *peer, uint64_t now)
{
	struct vpn_keypair *kp = peer->current;

	if (!kp || vpn_keypair_expired(peer->dev, kp, now))
		return NULL;
	return kp;
}

/* §6.2: the initiator re-keys after REKEY_AFTER_TIME; either side after
 * REKEY_AFTER_MESSAGES. */
static void keep_key_fresh(struct vpn_peer *peer, struct vpn_keypair *kp, uint64_t now)
{
	if (kp->send_counter > VPN_REKEY_AFTER_MESSAGES ||
	    (kp->initiator && now - kp->birth_ns >= vpn_scaled(peer->dev, VPN_REKEY_AFTER_TIME)))
		vpn_send_handshake_initiation(peer, false);
}

/* Queues one packet into the batch; vpn_send_flush encrypts the batch. */
static void queue_data(struct vpn_peer *peer, struct vpn_keypair *kp, const uint8_t *pkt,
		       size_t len)
{
	struct vpn_device *dev = peer->dev;
	struct vpn_batch *b = dev->batch;
	size_t need = sizeof(struct vpn_msg_data) + len + VPN_MSG_PADDING + VPN_AEAD_TAG;

	if (b->n_out == VPN_BATCH || b->out_used + need > VPN_OUT_AREA)
		vpn_send_flush(dev);
	if (need > VPN_OUT_AREA)
		return;
	uint8_t *out = b->out_area + b->out_used;
	size_t wire =
	    vpn_noise_encrypt_prepare(kp, out, pkt, len, kp->send_counter++, (size_t)dev->mtu);
	struct vpn_crypt_job *job = &b->seal[b->n_out];
	memcpy(job->key, kp->send_key, VPN_KEY_LEN);
	job->msg = out;
	job->len = wire;
	job->seal = true;
	b->out_off[b->n_out] = (uint32_t)b->out_used;
	b->out_len[b->n_out] = (uint16_t)wire;
	b->out_ep[b->n_out] = peer->endpoint;
	b->n_out++;
	b->out_used += wire;
	peer->tx_bytes += wire;
	dev->tx_packets++;
	vpn_timers_any_authenticated_packet_traversal(peer);
	vpn_timers_any_authenticated_packet_sent(peer);
	if (len)
		vpn_timers_data_sent(peer);
}

void vpn_send_keepalive(struct vpn_peer *peer)
{
	uint64_t now = vpn_now_ns();
	struct vpn_keypair *kp;

	if (peer->staged.count) {
		vpn_send_staged(peer);
		return;
	}
	kp = sending_keypair(peer, now);
	if (!kp) {
		vpn_send_handshake_initiation(peer, false);
		return;
	}
	queue_data(peer, kp, NULL, 0);
	keep_key_fresh(peer, kp, now);
	vpn_send_flush(peer->dev);
}

void vpn_send_staged(struct vpn_peer *peer)
{
	struct vpn_staged *s = &peer->staged;
	uint64_t now = vpn_now_ns();
	struct vpn_keypair *kp = sending_keypair(peer, now);

	if (!kp || !peer->endpoint.addr.sa.sa_family) {
		vpn_send_handshake_initiation(peer, false);
		return;
	}
	while (s->count) {
		queue_data(peer, kp, s->buf + (size_t)s->head * VPN_WIRE_BUF, s->len[s->head]);
		s->head = (s->head + 1) % VPN_MAX_STAGED;
		s->count--;
	}
	keep_key_fresh(peer, kp, now);
	vpn_send_flush(peer->dev);
}

struct vpn_peer *vpn_send_route(struct vpn_device *dev, const uint8_t *pkt, size_t len,
				bool *malformed)
{
	*malformed = false;
	if (len >= 20 && pkt[0] >> 4 == 4)
		return vpn_allowedips_lookup(&dev->allowedips, AF_INET, pkt + 16);
	if (len >= 40 && pkt[0] >> 4 == 6)
		return vpn_allowedips_lookup(&dev->allowedips, AF_INET6, pkt + 24);
	*malformed = true;
	return NULL;
}

void vpn_send_to_peer(struct vpn_device *dev, struct vpn_peer *peer, const uint8_t *pkt, size_t len)
{
	uint64_t now;

	if (!peer || !peer->endpoint.addr.sa.sa_family) {
		dev->drops[VPN_DROP_NO_PEER]++;
		return;
	}
	now = vpn_now_ns();
	struct vpn_keypair *kp = sending_keypair(peer, now);
	if (!kp || peer->staged.count) {
		vpn_peer_stage(peer, pkt, len);
		vpn_send_staged(peer);
		return;
	}
	queue_data(peer, kp, pkt, len);
	keep_key_fresh(peer, kp, now);
}

void vpn_send_packet(struct vpn_device *dev, const uint8_t *pkt, size_t len)
{
	bool malformed;
	struct vpn_peer *peer = vpn_send_route(dev, pkt, len, &malformed);

	if (malformed) {
		dev->drops[VPN_DROP_MALFORMED]++;
		return;
	}
	vpn_send_to_peer(dev, peer, pkt, len);
}
