/* Peers: identity, endpoint, allowed-ips, staged packets. A peer lives in
 * sodium_malloc'd memory (locked, guarded, excluded from core dumps) since it
 * holds session keys and the pre-shared key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vpn/internal.h"

struct vpn_peer *vpn_peer_create(struct vpn_device *dev, const uint8_t public_key[VPN_KEY_LEN])
{
	struct vpn_peer *peer = vpn_secure_alloc(sizeof(*peer));

	if (!peer)
		return NULL;
	memset(peer, 0, sizeof(*peer));
	peer->dev = dev;
	memcpy(peer->public_key, public_key, VPN_KEY_LEN);
	vpn_cookie_init(&peer->cookie, public_key);
	vpn_peer_refresh_static(peer);
	peer->next = dev->peers;
	dev->peers = peer;
	dev->n_peers++;
	return peer;
}

/* Recomputed when our private key changes: DH(S_priv, S_pub_peer) is the
 * same in every handshake with this peer (§5.4.2 "ss"). Zero if the result
 * is invalid: such a peer can never complete a handshake. */
void vpn_peer_refresh_static(struct vpn_peer *peer)
{
	struct vpn_device *dev = peer->dev;

	if (!dev->has_identity || vpn_noise_dh(peer->handshake.precomputed_static_static,
					       dev->static_private, peer->public_key))
		sodium_memzero(peer->handshake.precomputed_static_static, VPN_KEY_LEN);
}

void vpn_peer_destroy(struct vpn_peer *peer)
{
	struct vpn_device *dev = peer->dev;

	for (struct vpn_peer **p = &dev->peers; *p; p = &(*p)->next) {
		if (*p == peer) {
			*p = peer->next;
			dev->n_peers--;
			break;
		}
	}
	vpn_allowedips_remove_peer(&dev->allowedips, peer);
	vpn_noise_clear_keypairs(peer);
	vpn_noise_clear_handshake(peer);
	vpn_peer_purge_staged(peer);
	free(peer->staged.buf);
	free(peer->allowed);
	vpn_secure_free(peer, sizeof(*peer));
}

struct vpn_peer *vpn_peer_lookup(struct vpn_device *dev, const uint8_t public_key[VPN_KEY_LEN])
{
	for (struct vpn_peer *p = dev->peers; p; p = p->next)
		if (!memcmp(p->public_key, public_key, VPN_KEY_LEN))
			return p;
	return NULL;
}

void vpn_peer_set_endpoint(struct vpn_peer *peer, const union vpn_sockaddr *addr,
			   const struct vpn_endpoint *local)
{
	struct vpn_endpoint *ep = &peer->endpoint;

	if (local && vpn_sockaddr_equal(&ep->addr, addr) && ep->src_family == local->src_family &&
	    !memcmp(&ep->src, &local->src, sizeof(ep->src)))
		return;
	memset(ep, 0, sizeof(*ep));
	ep->addr = *addr;
	if (local) {
		ep->src = local->src;
		ep->src_family = local->src_family;
		ep->src_ifindex = local->src_ifindex;
	}
}

static bool prefix_equal(const struct vpn_prefix *a, const struct vpn_prefix *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static void forget_prefix(struct vpn_peer *peer, const struct vpn_prefix *p)
{
	for (size_t i = 0; i < peer->n_allowed; i++) {
		if (prefix_equal(&peer->allowed[i], p)) {
			memmove(&peer->allowed[i], &peer->allowed[i + 1],
				(peer->n_allowed - i - 1) * sizeof(*p));
			peer->n_allowed--;
			return;
		}
	}
}

/* A prefix has one owner: giving it to this peer takes it from another. */
int vpn_peer_add_allowed(struct vpn_peer *peer, const struct vpn_prefix *p)
{
	for (struct vpn_peer *o = peer->dev->peers; o; o = o->next)
		forget_prefix(o, p);
	if (peer->n_allowed == peer->cap_allowed) {
		size_t cap = peer->cap_allowed ? 2 * peer->cap_allowed : 4;
		struct vpn_prefix *v = realloc(peer->allowed, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		peer->allowed = v;
		peer->cap_allowed = cap;
	}
	int ret = vpn_allowedips_insert(&peer->dev->allowedips, p, peer);
	if (ret)
		return ret;
	peer->allowed[peer->n_allowed++] = *p;
	return 0;
}

void vpn_peer_clear_allowed(struct vpn_peer *peer)
{
	vpn_allowedips_remove_peer(&peer->dev->allowedips, peer);
	peer->n_allowed = 0;
}

/* Packets wait here while there is no session (kernel send.c staged queue);
 * the oldest is dropped when full. */
void vpn_peer_stage(struct vpn_peer *peer, const uint8_t *pkt, size_t len)
{
	struct vpn_staged *s = &peer->staged;

	if (len > VPN_WIRE_BUF)
		return;
	if (!s->buf) {
		s->buf = malloc((size_t)VPN_MAX_STAGED * VPN_WIRE_BUF);
		if (!s->buf)
			return;
	}
	if (s->count == VPN_MAX_STAGED) {
		s->head = (s->head + 1) % VPN_MAX_STAGED;
		s->count--;
		peer->dev->drops[VPN_DROP_STAGED_FULL]++;
	}
	unsigned int slot = (s->head + s->count) % VPN_MAX_STAGED;
	memcpy(s->buf + (size_t)slot * VPN_WIRE_BUF, pkt, len);
	s->len[slot] = (uint16_t)len;
	s->count++;
}

void vpn_peer_purge_staged(struct vpn_peer *peer)
{
	peer->staged.head = 0;
	peer->staged.count = 0;
}
