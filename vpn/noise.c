/* Noise_IKpsk2 for WireGuard (whitepaper §5.4): the handshake, the session
 * keys it yields, the index table that maps receiver indices to handshakes
 * and keypairs, and transport encryption (§5.4.6). */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "vpn/internal.h"

/* §5.4: the protocol name and identifier strings hashed into the state. */
static const char noise_construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char noise_identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/* ---- primitives of §5.4 ---- */

static void mix_hash(uint8_t hash[VPN_BLAKE2S_OUT], const uint8_t *in, size_t len)
{
	struct vpn_blake2s s;

	vpn_blake2s_init(&s, VPN_BLAKE2S_OUT);
	vpn_blake2s_update(&s, hash, VPN_BLAKE2S_OUT);
	vpn_blake2s_update(&s, in, len);
	vpn_blake2s_final(&s, hash);
}

/* Kdf_n of §5.4: HMAC chains keyed by the chaining key. Outputs may be NULL. */
static void kdf(uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t ck[VPN_BLAKE2S_OUT],
		const uint8_t *in, size_t len)
{
	uint8_t prk[VPN_BLAKE2S_OUT], t[VPN_BLAKE2S_OUT + 1];

	vpn_hmac_blake2s(prk, ck, VPN_BLAKE2S_OUT, in, len);
	t[0] = 1;
	vpn_hmac_blake2s(t, prk, sizeof(prk), t, 1);
	if (out1)
		memcpy(out1, t, VPN_BLAKE2S_OUT);
	if (out2 || out3) {
		t[VPN_BLAKE2S_OUT] = 2;
		vpn_hmac_blake2s(t, prk, sizeof(prk), t, VPN_BLAKE2S_OUT + 1);
		if (out2)
			memcpy(out2, t, VPN_BLAKE2S_OUT);
	}
	if (out3) {
		t[VPN_BLAKE2S_OUT] = 3;
		vpn_hmac_blake2s(t, prk, sizeof(prk), t, VPN_BLAKE2S_OUT + 1);
		memcpy(out3, t, VPN_BLAKE2S_OUT);
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
}

void vpn_noise_clamp(uint8_t key[VPN_KEY_LEN])
{
	/* RFC 7748 §5 decodeScalar25519 */
	key[0] &= 248;
	key[31] = (uint8_t)((key[31] & 127) | 64);
}

/* DH of §5.4; an all-zero result (a low-order point) is refused, §5.4.2
 * footnote and kernel noise.c. */
int vpn_noise_dh(uint8_t out[VPN_KEY_LEN], const uint8_t priv[VPN_KEY_LEN],
		 const uint8_t pub[VPN_KEY_LEN])
{
	if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, VPN_KEY_LEN)) {
		sodium_memzero(out, VPN_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

/* (ck, key) = Kdf2(ck, DH(priv, pub)) */
static int mix_dh(uint8_t ck[VPN_BLAKE2S_OUT], uint8_t *key, const uint8_t priv[VPN_KEY_LEN],
		  const uint8_t pub[VPN_KEY_LEN])
{
	uint8_t dh[VPN_KEY_LEN];

	if (vpn_noise_dh(dh, priv, pub))
		return -EINVAL;
	kdf(ck, key, NULL, ck, dh, sizeof(dh));
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

void vpn_noise_aead_nonce(uint8_t nonce[12], uint64_t counter)
{
	/* RFC 8439 nonce: 32 zero bits, then the counter little endian (§5.4.6) */
	memset(nonce, 0, 4);
	uint64_t le = htole64(counter);
	memcpy(nonce + 4, &le, 8);
}

/* Noise's EncryptAndHash (§5.2 of the Noise specification): `len` bytes
 * sealed into dst (len + VPN_AEAD_TAG bytes) with the hash as associated
 * data, then the sealed bytes mixed into the hash. */
static void aead_seal(uint8_t *dst, const uint8_t key[VPN_KEY_LEN], const uint8_t *plain,
		      size_t len, uint8_t hash[VPN_BLAKE2S_OUT])
{
	uint8_t nonce[12];

	vpn_noise_aead_nonce(nonce, 0);
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, NULL, plain, len, hash, VPN_BLAKE2S_OUT,
						  NULL, nonce, key);
	mix_hash(hash, dst, len + VPN_AEAD_TAG);
}

/* Noise's DecryptAndHash: `len` sealed bytes (the tag included) opened
 * into dst, and mixed into the hash when they open. */
static int aead_open(uint8_t *dst, const uint8_t key[VPN_KEY_LEN], const uint8_t *sealed,
		     size_t len, uint8_t hash[VPN_BLAKE2S_OUT])
{
	uint8_t nonce[12];

	vpn_noise_aead_nonce(nonce, 0);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL, sealed, len, hash,
						      VPN_BLAKE2S_OUT, nonce, key))
		return -EBADMSG;
	mix_hash(hash, sealed, len);
	return 0;
}

static void handshake_start(uint8_t ck[VPN_BLAKE2S_OUT], uint8_t hash[VPN_BLAKE2S_OUT],
			    const uint8_t responder_static[VPN_KEY_LEN])
{
	vpn_blake2s(ck, VPN_BLAKE2S_OUT, NULL, 0, (const uint8_t *)noise_construction,
		    strlen(noise_construction));
	memcpy(hash, ck, VPN_BLAKE2S_OUT);
	mix_hash(hash, (const uint8_t *)noise_identifier, strlen(noise_identifier));
	mix_hash(hash, responder_static, VPN_KEY_LEN);
}

/* ---- TAI64N, §5.4.2 ---- */

void vpn_noise_tai64n(uint8_t out[VPN_TAI64N_LEN])
{
	struct timespec now;
	uint64_t secs;
	uint32_t nsec;

	clock_gettime(CLOCK_REALTIME, &now);
	secs = htobe64(VPN_TAI64_BASE + (uint64_t)now.tv_sec);
	/* Whitened so the timestamp reveals less than the clock (kernel noise.c). */
	nsec = htobe32((uint32_t)now.tv_nsec & ~(VPN_TAI64N_WHITENING - 1));
	memcpy(out, &secs, 8);
	memcpy(out + 8, &nsec, 4);
}

/* Never send a timestamp that is not newer than the last one sent, even if
 * the clock stepped back (e.g. after a reboot): peers would refuse it. */
static void next_timestamp(struct vpn_device *dev, uint8_t out[VPN_TAI64N_LEN])
{
	vpn_noise_tai64n(out);
	if (memcmp(out, dev->last_sent_timestamp, VPN_TAI64N_LEN) > 0)
		goto done;
	uint64_t secs;
	uint32_t nsec;
	memcpy(&secs, dev->last_sent_timestamp, 8);
	memcpy(&nsec, dev->last_sent_timestamp + 8, 4);
	secs = be64toh(secs);
	nsec = be32toh(nsec) + VPN_TAI64N_WHITENING;
	if (nsec >= VPN_NSEC_PER_SEC) {
		nsec -= (uint32_t)VPN_NSEC_PER_SEC;
		secs++;
	}
	secs = htobe64(secs);
	nsec = htobe32(nsec);
	memcpy(out, &secs, 8);
	memcpy(out + 8, &nsec, 4);
done:
	memcpy(dev->last_sent_timestamp, out, VPN_TAI64N_LEN);
	vpn_device_store_timestamp(dev);
}

/* ---- index table ---- */

static struct vpn_index_entry **index_bucket(struct vpn_device *dev, uint32_t index)
{
	return &dev->index[(index ^ (index >> 16)) & (VPN_INDEX_BUCKETS - 1)];
}

static struct vpn_index_entry *index_find(struct vpn_device *dev, uint32_t index)
{
	for (struct vpn_index_entry *e = *index_bucket(dev, index); e; e = e->next)
		if (e->index == index)
			return e;
	return NULL;
}

void vpn_noise_index_remove(struct vpn_device *dev, struct vpn_index_entry *e)
{
	for (struct vpn_index_entry **p = index_bucket(dev, e->index); *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			e->next = NULL;
			e->index = 0;
			return;
		}
	}
}

void vpn_noise_index_add(struct vpn_device *dev, struct vpn_index_entry *e)
{
	struct vpn_index_entry **b = index_bucket(dev, e->index);

	e->next = *b;
	*b = e;
}

/* A fresh random index (§5.4.2: "a random 32-bit index"), unused locally. */
static void index_assign(struct vpn_device *dev, struct vpn_index_entry *e)
{
	uint32_t idx;

	do
		idx = randombytes_random();
	while (idx == 0 || index_find(dev, idx));
	e->index = idx;
	vpn_noise_index_add(dev, e);
}

/* ---- the handshake ---- */

/* A handshake message made: the handshake's entry in the index table under
 * a fresh index, in place of any it had, and its state `made`. Returns the
 * index as the message's sender_index (little endian). */
static uint32_t handshake_sent(struct vpn_peer *peer, enum vpn_handshake_state made)
{
	if (peer->hs_entry.index)
		vpn_noise_index_remove(peer->dev, &peer->hs_entry);
	peer->hs_entry.peer = peer;
	peer->hs_entry.keypair = NULL;
	index_assign(peer->dev, &peer->hs_entry);
	peer->handshake.local_index = peer->hs_entry.index;
	peer->handshake.state = made;
	return htole32(peer->handshake.local_index);
}

/* A message read and proven good: what its reader worked out becomes the
 * handshake's, which moves to state `read`. */
static void handshake_consumed(struct vpn_handshake *hs, const uint8_t ck[VPN_BLAKE2S_OUT],
			       const uint8_t hash[VPN_BLAKE2S_OUT],
			       const uint8_t ephemeral[VPN_KEY_LEN], uint32_t sender_index_le,
			       enum vpn_handshake_state read)
{
	memcpy(hs->remote_ephemeral, ephemeral, VPN_KEY_LEN);
	memcpy(hs->hash, hash, VPN_BLAKE2S_OUT);
	memcpy(hs->chaining_key, ck, VPN_BLAKE2S_OUT);
	hs->remote_index = le32toh(sender_index_le);
	hs->state = read;
}

/* The e step of either message for its reader: (ck) = Kdf1(ck, e),
 * h = Hash(h || e). */
static void mix_ephemeral(uint8_t ck[VPN_BLAKE2S_OUT], uint8_t hash[VPN_BLAKE2S_OUT],
			  const uint8_t ephemeral[VPN_KEY_LEN])
{
	kdf(ck, NULL, NULL, ck, ephemeral, VPN_KEY_LEN);
	mix_hash(hash, ephemeral, VPN_KEY_LEN);
}

/* The e step of either message for its maker: a fresh ephemeral key pair,
 * the public half into the message and mixed into the handshake. */
static void new_ephemeral(struct vpn_handshake *hs, uint8_t ephemeral_public[VPN_KEY_LEN])
{
	randombytes_buf(hs->ephemeral_private, VPN_KEY_LEN);
	vpn_noise_clamp(hs->ephemeral_private);
	crypto_scalarmult_base(ephemeral_public, hs->ephemeral_private);
	mix_ephemeral(hs->chaining_key, hs->hash, ephemeral_public);
}

void vpn_noise_clear_handshake(struct vpn_peer *peer)
{
	struct vpn_handshake *hs = &peer->handshake;

	if (peer->hs_entry.index)
		vpn_noise_index_remove(peer->dev, &peer->hs_entry);
	sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	sodium_memzero(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
	sodium_memzero(hs->hash, sizeof(hs->hash));
	sodium_memzero(hs->chaining_key, sizeof(hs->chaining_key));
	hs->local_index = 0;
	hs->remote_index = 0;
	hs->state = VPN_HS_NONE;
}

int vpn_noise_create_initiation(struct vpn_peer *peer, struct vpn_msg_initiation *msg)
{
	struct vpn_device *dev = peer->dev;
	struct vpn_handshake *hs = &peer->handshake;
	uint8_t key[VPN_KEY_LEN], ts[VPN_TAI64N_LEN];
	int ret = -EINVAL;

	if (!dev->has_identity || sodium_is_zero(hs->precomputed_static_static, VPN_KEY_LEN))
		return -ENOKEY;
	vpn_noise_clear_handshake(peer);
	memset(msg, 0, sizeof(*msg));
	msg->type = htole32(VPN_MSG_INITIATION);
	handshake_start(hs->chaining_key, hs->hash, peer->public_key);

	/* e */
	new_ephemeral(hs, msg->ephemeral);
	/* es */
	if (mix_dh(hs->chaining_key, key, hs->ephemeral_private, peer->public_key))
		goto out;
	/* s */
	aead_seal(msg->encrypted_static, key, dev->static_public, VPN_KEY_LEN, hs->hash);
	/* ss */
	kdf(hs->chaining_key, key, NULL, hs->chaining_key, hs->precomputed_static_static,
	    VPN_KEY_LEN);
	/* {t} */
	next_timestamp(dev, ts);
	aead_seal(msg->encrypted_timestamp, key, ts, VPN_TAI64N_LEN, hs->hash);

	msg->sender_index = handshake_sent(peer, VPN_HS_CREATED_INITIATION);
	ret = 0;
out:
	sodium_memzero(key, sizeof(key));
	return ret;
}

struct vpn_peer *vpn_noise_consume_initiation(struct vpn_device *dev,
					      const struct vpn_msg_initiation *msg,
					      int *drop_reason)
{
	uint8_t ck[VPN_BLAKE2S_OUT], hash[VPN_BLAKE2S_OUT], key[VPN_KEY_LEN];
	uint8_t s[VPN_KEY_LEN], ts[VPN_TAI64N_LEN];
	struct vpn_peer *peer = NULL, *ret = NULL;
	uint64_t now = vpn_now_ns();

	*drop_reason = VPN_DROP_HANDSHAKE;
	if (!dev->has_identity)
		return NULL;
	handshake_start(ck, hash, dev->static_public);
	/* e */
	mix_ephemeral(ck, hash, msg->ephemeral);
	/* es */
	if (mix_dh(ck, key, dev->static_private, msg->ephemeral))
		goto out;
	/* s */
	if (aead_open(s, key, msg->encrypted_static, sizeof(msg->encrypted_static), hash))
		goto out;
	peer = vpn_peer_lookup(dev, s);
	if (!peer || sodium_is_zero(peer->handshake.precomputed_static_static, VPN_KEY_LEN))
		goto out;
	/* ss */
	kdf(ck, key, NULL, ck, peer->handshake.precomputed_static_static, VPN_KEY_LEN);
	/* {t} */
	if (aead_open(ts, key, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), hash))
		goto out;

	/* §5.1: only a strictly newer timestamp, and not faster than
	 * INITIATIONS_PER_SECOND, protects against replay and floods. */
	struct vpn_handshake *hs = &peer->handshake;
	if (memcmp(ts, hs->latest_timestamp, VPN_TAI64N_LEN) <= 0 ||
	    (hs->last_initiation_consumption_ns &&
	     now - hs->last_initiation_consumption_ns <
		 VPN_NSEC_PER_SEC / VPN_INITIATIONS_PER_SECOND)) {
		*drop_reason = VPN_DROP_TIMESTAMP;
		goto out;
	}
	vpn_noise_clear_handshake(peer);
	handshake_consumed(hs, ck, hash, msg->ephemeral, msg->sender_index,
			   VPN_HS_CONSUMED_INITIATION);
	memcpy(hs->latest_timestamp, ts, VPN_TAI64N_LEN);
	hs->last_initiation_consumption_ns = now;
	ret = peer;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(hash, sizeof(hash));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(s, sizeof(s));
	return ret;
}

/* The psk step shared by both sides of the response: (ck, τ, k) = Kdf3(ck, Q). */
static void mix_psk(uint8_t ck[VPN_BLAKE2S_OUT], uint8_t hash[VPN_BLAKE2S_OUT],
		    uint8_t key[VPN_KEY_LEN], const uint8_t psk[VPN_KEY_LEN])
{
	uint8_t tau[VPN_BLAKE2S_OUT];

	kdf(ck, tau, key, ck, psk, VPN_KEY_LEN);
	mix_hash(hash, tau, sizeof(tau));
	sodium_memzero(tau, sizeof(tau));
}

static int mix_dh_ck(uint8_t ck[VPN_BLAKE2S_OUT], const uint8_t priv[VPN_KEY_LEN],
		     const uint8_t pub[VPN_KEY_LEN])
{
	return mix_dh(ck, NULL, priv, pub);
}

int vpn_noise_create_response(struct vpn_peer *peer, struct vpn_msg_response *msg)
{
	struct vpn_handshake *hs = &peer->handshake;
	uint8_t key[VPN_KEY_LEN];
	int ret = -EINVAL;

	if (hs->state != VPN_HS_CONSUMED_INITIATION)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	msg->type = htole32(VPN_MSG_RESPONSE);
	msg->receiver_index = htole32(hs->remote_index);
	/* e */
	new_ephemeral(hs, msg->ephemeral);
	/* ee, se */
	if (mix_dh_ck(hs->chaining_key, hs->ephemeral_private, hs->remote_ephemeral) ||
	    mix_dh_ck(hs->chaining_key, hs->ephemeral_private, peer->public_key))
		goto out;
	/* psk */
	mix_psk(hs->chaining_key, hs->hash, key, hs->psk);
	/* {} */
	aead_seal(msg->encrypted_nothing, key, NULL, 0, hs->hash);

	msg->sender_index = handshake_sent(peer, VPN_HS_CREATED_RESPONSE);
	ret = 0;
out:
	sodium_memzero(key, sizeof(key));
	return ret;
}

struct vpn_peer *vpn_noise_consume_response(struct vpn_device *dev,
					    const struct vpn_msg_response *msg, int *drop_reason)
{
	uint8_t ck[VPN_BLAKE2S_OUT], hash[VPN_BLAKE2S_OUT], key[VPN_KEY_LEN];
	struct vpn_index_entry *e = index_find(dev, le32toh(msg->receiver_index));
	struct vpn_peer *ret = NULL;

	*drop_reason = VPN_DROP_HANDSHAKE;
	if (!e || e->keypair || !dev->has_identity)
		return NULL;
	struct vpn_peer *peer = e->peer;
	struct vpn_handshake *hs = &peer->handshake;
	if (hs->state != VPN_HS_CREATED_INITIATION)
		return NULL;
	memcpy(ck, hs->chaining_key, sizeof(ck));
	memcpy(hash, hs->hash, sizeof(hash));
	/* e */
	mix_ephemeral(ck, hash, msg->ephemeral);
	/* ee, se */
	if (mix_dh_ck(ck, hs->ephemeral_private, msg->ephemeral) ||
	    mix_dh_ck(ck, dev->static_private, msg->ephemeral))
		goto out;
	/* psk */
	mix_psk(ck, hash, key, hs->psk);
	/* {} */
	if (aead_open(NULL, key, msg->encrypted_nothing, sizeof(msg->encrypted_nothing), hash))
		goto out;

	handshake_consumed(hs, ck, hash, msg->ephemeral, msg->sender_index,
			   VPN_HS_CONSUMED_RESPONSE);
	ret = peer;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(hash, sizeof(hash));
	sodium_memzero(key, sizeof(key));
	return ret;
}

/* ---- sessions ---- */

static void keypair_release(struct vpn_peer *peer, struct vpn_keypair **slot)
{
	struct vpn_keypair *kp = *slot;

	if (!kp)
		return;
	struct vpn_index_entry *e = &peer->kp_entry[kp - peer->slots];
	if (e->index)
		vpn_noise_index_remove(peer->dev, e);
	sodium_memzero(kp, sizeof(*kp));
	*slot = NULL;
}

void vpn_noise_clear_keypairs(struct vpn_peer *peer)
{
	keypair_release(peer, &peer->current);
	keypair_release(peer, &peer->previous);
	keypair_release(peer, &peer->next_keypair);
}

static struct vpn_keypair *free_slot(struct vpn_peer *peer)
{
	for (size_t i = 0; i < sizeof(peer->slots) / sizeof(peer->slots[0]); i++)
		if (!peer->slots[i].in_use)
			return &peer->slots[i];
	return NULL; /* cannot happen: at most three slots are referenced */
}

int vpn_noise_begin_session(struct vpn_peer *peer)
{
	struct vpn_handshake *hs = &peer->handshake;
	struct vpn_keypair *kp;
	bool initiator;

	if (hs->state == VPN_HS_CONSUMED_RESPONSE)
		initiator = true;
	else if (hs->state == VPN_HS_CREATED_RESPONSE)
		initiator = false;
	else
		return -EINVAL;
	kp = free_slot(peer);
	if (!kp)
		return -ENOSPC;
	memset(kp, 0, sizeof(*kp));
	kp->in_use = true;
	/* §5.4.5: (T_send, T_recv) = Kdf2(C, ε), swapped for the responder. */
	if (initiator)
		kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
	else
		kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
	vpn_replay_init(&kp->replay);
	kp->initiator = initiator;
	kp->birth_ns = vpn_now_ns();
	kp->remote_index = hs->remote_index;
	kp->valid = true;
	/* The keypair takes over the handshake's index: the peer addresses its
	 * data to the index it saw in our handshake message. */
	struct vpn_index_entry *e = &peer->kp_entry[kp - peer->slots];
	uint32_t index = hs->local_index;
	vpn_noise_clear_handshake(peer);
	e->peer = peer;
	e->keypair = kp;
	e->index = index;
	vpn_noise_index_add(peer->dev, e);
	kp->local_index = index;

	/* Kernel noise.c add_new_keypair: the initiator uses the new keypair at
	 * once; the responder keeps it as "next" until the initiator has
	 * proven it has it (its first data packet). */
	if (initiator) {
		if (peer->next_keypair) {
			keypair_release(peer, &peer->previous);
			peer->previous = peer->next_keypair;
			peer->next_keypair = NULL;
			keypair_release(peer, &peer->current);
		} else {
			keypair_release(peer, &peer->previous);
			peer->previous = peer->current;
		}
		peer->current = kp;
	} else {
		keypair_release(peer, &peer->next_keypair);
		peer->next_keypair = kp;
		keypair_release(peer, &peer->previous);
	}
	return 0;
}

struct vpn_keypair *vpn_noise_lookup_keypair(struct vpn_device *dev, uint32_t index,
					     struct vpn_peer **peer)
{
	struct vpn_index_entry *e = index_find(dev, index);

	if (!e || !e->keypair)
		return NULL;
	*peer = e->peer;
	return e->keypair;
}

struct vpn_peer *vpn_noise_lookup_any(struct vpn_device *dev, uint32_t index)
{
	struct vpn_index_entry *e = index_find(dev, index);

	return e ? e->peer : NULL;
}

bool vpn_noise_received_with_keypair(struct vpn_peer *peer, struct vpn_keypair *kp)
{
	if (kp != peer->next_keypair)
		return false;
	keypair_release(peer, &peer->previous);
	peer->previous = peer->current;
	peer->current = kp;
	peer->next_keypair = NULL;
	return true;
}

bool vpn_keypair_expired(const struct vpn_device *dev, const struct vpn_keypair *kp, uint64_t now)
{
	return !kp->valid || now - kp->birth_ns >= vpn_scaled(dev, VPN_REJECT_AFTER_TIME) ||
	       kp->send_counter >= VPN_REJECT_AFTER_MESSAGES;
}

/* ---- transport, §5.4.6 ---- */

size_t vpn_noise_encrypt_prepare(const struct vpn_keypair *kp, uint8_t *out, const uint8_t *plain,
				 size_t len, uint64_t counter, size_t mtu)
{
	struct vpn_msg_data *hdr = (struct vpn_msg_data *)out;
	size_t padded = (len + VPN_MSG_PADDING - 1) & ~(size_t)(VPN_MSG_PADDING - 1);

	if (mtu && padded > mtu)
		padded = len > mtu ? len : mtu;
	uint8_t *body = out + sizeof(*hdr);

	hdr->type = htole32(VPN_MSG_DATA);
	hdr->receiver_index = htole32(kp->remote_index);
	hdr->counter = htole64(counter);
	if (len && body != plain) /* a keepalive has no plaintext (plain may be NULL) */
		memmove(body, plain, len);
	memset(body + len, 0, padded - len);
	return sizeof(*hdr) + padded + VPN_AEAD_TAG;
}

size_t vpn_noise_encrypt(struct vpn_keypair *kp, uint8_t *out, const uint8_t *plain, size_t len,
			 uint64_t counter, size_t mtu)
{
	struct vpn_crypt_job job = { .msg = out, .seal = true };

	job.len = vpn_noise_encrypt_prepare(kp, out, plain, len, counter, mtu);
	memcpy(job.key, kp->send_key, VPN_KEY_LEN);
	vpn_crypt_job_run(&job);
	sodium_memzero(job.key, sizeof(job.key));
	return job.len;
}

int vpn_noise_decrypt(struct vpn_keypair *kp, uint8_t *out, const uint8_t *msg, size_t len,
		      size_t *plain_len)
{
	const struct vpn_msg_data *hdr = (const struct vpn_msg_data *)msg;
	uint8_t nonce[12];
	unsigned long long mlen;

	if (len < VPN_MSG_DATA_MIN_LEN)
		return -EBADMSG;
	vpn_noise_aead_nonce(nonce, le64toh(hdr->counter));
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, msg + sizeof(*hdr),
						      len - sizeof(*hdr), NULL, 0, nonce,
						      kp->recv_key))
		return -EBADMSG;
	*plain_len = (size_t)mlen;
	return 0;
}
