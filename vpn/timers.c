/* The timer state machine of whitepaper §6, organised as in the kernel
 * module's timers.c: events (data sent, handshake done, ...) arm or disarm
 * per-peer deadlines; vpn_timers_run fires the ones that are due. Durations
 * are scaled by HVGATE_VPN_TIME_SCALE (dev->time_scale). */
#include <sodium.h>

#include "vpn/internal.h"

static uint64_t jitter(const struct vpn_device *dev)
{
	return vpn_scaled(dev, randombytes_uniform((uint32_t)VPN_REKEY_TIMEOUT_JITTER_MAX));
}

void vpn_timers_data_sent(struct vpn_peer *peer)
{
	struct vpn_device *dev = peer->dev;

	/* §6.2: if we send and hear nothing back for a while, re-handshake. */
	if (!peer->t_new_handshake)
		peer->t_new_handshake = vpn_now_ns() +
					vpn_scaled(dev, VPN_KEEPALIVE_TIMEOUT + VPN_REKEY_TIMEOUT) +
					jitter(dev);
}

void vpn_timers_data_received(struct vpn_peer *peer)
{
	/* §6.5: answer data with a keepalive unless we send something first. */
	if (!peer->t_send_keepalive)
		peer->t_send_keepalive =
		    vpn_now_ns() + vpn_scaled(peer->dev, VPN_KEEPALIVE_TIMEOUT);
	else
		peer->need_another_keepalive = true;
}

void vpn_timers_any_authenticated_packet_sent(struct vpn_peer *peer)
{
	peer->t_send_keepalive = 0;
}

void vpn_timers_any_authenticated_packet_received(struct vpn_peer *peer)
{
	peer->t_new_handshake = 0;
}

void vpn_timers_any_authenticated_packet_traversal(struct vpn_peer *peer)
{
	if (peer->persistent_keepalive)
		peer->t_persistent_keepalive =
		    vpn_now_ns() +
		    vpn_scaled(peer->dev, (uint64_t)peer->persistent_keepalive * VPN_NSEC_PER_SEC);
}

void vpn_timers_handshake_initiated(struct vpn_peer *peer)
{
	peer->t_retransmit_handshake =
	    vpn_now_ns() + vpn_scaled(peer->dev, VPN_REKEY_TIMEOUT) + jitter(peer->dev);
}

void vpn_timers_handshake_complete(struct vpn_peer *peer)
{
	peer->t_retransmit_handshake = 0;
	peer->handshake_attempts = 0;
	peer->sent_lastminute_handshake = false;
	peer->handshakes_completed++;
	clock_gettime(CLOCK_REALTIME, &peer->last_handshake_wall);
}

void vpn_timers_session_derived(struct vpn_peer *peer)
{
	/* §6.3: keys older than three times the reject time are erased. */
	peer->t_zero_key_material = vpn_now_ns() + vpn_scaled(peer->dev, 3 * VPN_REJECT_AFTER_TIME);
}

void vpn_timers_stop(struct vpn_peer *peer)
{
	peer->t_retransmit_handshake = 0;
	peer->t_send_keepalive = 0;
	peer->t_new_handshake = 0;
	peer->t_zero_key_material = 0;
	peer->t_persistent_keepalive = 0;
}

static void retransmit_handshake(struct vpn_peer *peer, uint64_t now)
{
	if (peer->handshake_attempts > VPN_MAX_HANDSHAKE_ATTEMPTS) {
		/* §6.4: give up after REKEY_ATTEMPT_TIME; drop what waited. */
		peer->t_send_keepalive = 0;
		vpn_peer_purge_staged(peer);
		if (!peer->t_zero_key_material)
			peer->t_zero_key_material =
			    now + vpn_scaled(peer->dev, 3 * VPN_REJECT_AFTER_TIME);
		return;
	}
	peer->handshake_attempts++;
	/* The endpoint's source may be stale (address change): let the
	 * kernel pick again. */
	peer->endpoint.src_family = 0;
	vpn_send_handshake_initiation(peer, true);
}

static void send_keepalive(struct vpn_peer *peer, uint64_t now)
{
	vpn_send_keepalive(peer);
	if (peer->need_another_keepalive) {
		peer->need_another_keepalive = false;
		peer->t_send_keepalive = now + vpn_scaled(peer->dev, VPN_KEEPALIVE_TIMEOUT);
	}
}

static void zero_key_material(struct vpn_peer *peer)
{
	vpn_noise_clear_keypairs(peer);
	vpn_noise_clear_handshake(peer);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

/* Each deadline is cleared before its action runs, since the action may
 * re-arm it. */
#define FIRE(field, action)                                                                        \
	do {                                                                                       \
		if (peer->field && peer->field <= now) {                                           \
			peer->field = 0;                                                           \
			action;                                                                    \
		}                                                                                  \
	} while (0)

uint64_t vpn_timers_run(struct vpn_device *dev, uint64_t now)
{
	uint64_t next = 0;

	for (struct vpn_peer *peer = dev->peers; peer; peer = peer->next) {
		FIRE(t_retransmit_handshake, retransmit_handshake(peer, now));
		FIRE(t_send_keepalive, send_keepalive(peer, now));
		FIRE(t_new_handshake,
		     (peer->endpoint.src_family = 0, vpn_send_handshake_initiation(peer, false)));
		FIRE(t_zero_key_material, zero_key_material(peer));
		FIRE(t_persistent_keepalive, vpn_send_keepalive(peer));
		next = earliest(next, peer->t_retransmit_handshake);
		next = earliest(next, peer->t_send_keepalive);
		next = earliest(next, peer->t_new_handshake);
		next = earliest(next, peer->t_zero_key_material);
		next = earliest(next, peer->t_persistent_keepalive);
	}
	return next;
}
