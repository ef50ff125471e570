/* MAC1, MAC2 and cookie replies (whitepaper §5.3, §5.4.4, §5.4.7): mac1
 * proves the sender knows our public key; under load, mac2 proves it can
 * receive at its source address, from a cookie we sent there. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "vpn/internal.h"

/* §5.4.4 labels */
static const char label_mac1[] = "mac1----";
static const char label_cookie[] = "cookie--";

static void label_key(uint8_t out[VPN_KEY_LEN], const char *label, const uint8_t pub[VPN_KEY_LEN])
{
	struct vpn_blake2s s;

	vpn_blake2s_init(&s, VPN_KEY_LEN);
	vpn_blake2s_update(&s, (const uint8_t *)label, strlen(label));
	vpn_blake2s_update(&s, pub, VPN_KEY_LEN);
	vpn_blake2s_final(&s, out);
}

void vpn_cookie_checker_init(struct vpn_cookie_checker *c, const uint8_t our_public[VPN_KEY_LEN])
{
	label_key(c->mac1_key, label_mac1, our_public);
	label_key(c->cookie_encryption_key, label_cookie, our_public);
}

void vpn_cookie_init(struct vpn_cookie *c, const uint8_t peer_public[VPN_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	label_key(c->mac1_key, label_mac1, peer_public);
	label_key(c->cookie_decryption_key, label_cookie, peer_public);
}

/* mac1 covers the message up to mac1; mac2 up to mac2 (§5.4.4). */
static void compute_mac1(uint8_t out[VPN_MAC_LEN], const uint8_t key[VPN_KEY_LEN],
			 const uint8_t *msg, size_t len)
{
	vpn_blake2s(out, VPN_MAC_LEN, key, VPN_KEY_LEN, msg, len - sizeof(struct vpn_msg_macs));
}

static void compute_mac2(uint8_t out[VPN_MAC_LEN], const uint8_t cookie[VPN_MAC_LEN],
			 const uint8_t *msg, size_t len)
{
	vpn_blake2s(out, VPN_MAC_LEN, cookie, VPN_MAC_LEN, msg, len - VPN_MAC_LEN);
}

void vpn_cookie_add_macs(struct vpn_cookie *c, uint8_t *msg, size_t len, uint64_t now_ns,
			 uint64_t cookie_max_age_ns)
{
	struct vpn_msg_macs *macs =
	    (struct vpn_msg_macs *)(msg + len - sizeof(struct vpn_msg_macs));

	compute_mac1(macs->mac1, c->mac1_key, msg, len);
	memcpy(c->last_mac1_sent, macs->mac1, VPN_MAC_LEN);
	c->have_sent_mac1 = true;
	if (c->birth_ns && now_ns - c->birth_ns < cookie_max_age_ns)
		compute_mac2(macs->mac2, c->cookie, msg, len);
	else
		memset(macs->mac2, 0, VPN_MAC_LEN);
}

/* τ = Mac(Rm, Am): the cookie for a source address (§5.4.7). The secret
 * changes every two minutes. */
static void make_cookie(struct vpn_cookie_checker *c, uint8_t out[VPN_MAC_LEN],
			const union vpn_sockaddr *src, uint64_t now_ns, uint64_t secret_max_age_ns)
{
	uint8_t am[16 + 2];
	size_t n;

	if (!c->secret_birth_ns || now_ns - c->secret_birth_ns >= secret_max_age_ns) {
		randombytes_buf(c->secret, sizeof(c->secret));
		c->secret_birth_ns = now_ns ? now_ns : 1;
	}
	if (src->sa.sa_family == AF_INET6) {
		memcpy(am, &src->in6.sin6_addr, 16);
		memcpy(am + 16, &src->in6.sin6_port, 2);
		n = 18;
	} else {
		memcpy(am, &src->in4.sin_addr, 4);
		memcpy(am + 4, &src->in4.sin_port, 2);
		n = 6;
	}
	vpn_blake2s(out, VPN_MAC_LEN, c->secret, sizeof(c->secret), am, n);
}

enum vpn_cookie_verdict vpn_cookie_validate(struct vpn_cookie_checker *c, const uint8_t *msg,
					    size_t len, const union vpn_sockaddr *src,
					    bool check_mac2, uint64_t now_ns,
					    uint64_t secret_max_age_ns)
{
	const struct vpn_msg_macs *macs =
	    (const struct vpn_msg_macs *)(msg + len - sizeof(struct vpn_msg_macs));
	uint8_t expect[VPN_MAC_LEN], cookie[VPN_MAC_LEN];
	enum vpn_cookie_verdict v = VPN_COOKIE_INVALID_MAC1;

	compute_mac1(expect, c->mac1_key, msg, len);
	if (sodium_memcmp(expect, macs->mac1, VPN_MAC_LEN))
		goto out;
	v = VPN_COOKIE_VALID_MAC1;
	if (!check_mac2)
		goto out;
	make_cookie(c, cookie, src, now_ns, secret_max_age_ns);
	compute_mac2(expect, cookie, msg, len);
	if (!sodium_memcmp(expect, macs->mac2, VPN_MAC_LEN))
		v = VPN_COOKIE_VALID_MAC1_AND_MAC2;
out:
	sodium_memzero(cookie, sizeof(cookie));
	return v;
}

int vpn_cookie_reply_create(struct vpn_cookie_checker *c, struct vpn_msg_cookie *out,
			    const uint8_t *msg, size_t len, uint32_t receiver_index,
			    const union vpn_sockaddr *src, uint64_t now_ns,
			    uint64_t secret_max_age_ns)
{
	const struct vpn_msg_macs *macs =
	    (const struct vpn_msg_macs *)(msg + len - sizeof(struct vpn_msg_macs));
	uint8_t cookie[VPN_MAC_LEN];

	out->type = htole32(VPN_MSG_COOKIE);
	out->receiver_index = htole32(receiver_index);
	randombytes_buf(out->nonce, sizeof(out->nonce));
	make_cookie(c, cookie, src, now_ns, secret_max_age_ns);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out->encrypted_cookie, NULL, cookie,
						   sizeof(cookie), macs->mac1, VPN_MAC_LEN, NULL,
						   out->nonce, c->cookie_encryption_key);
	sodium_memzero(cookie, sizeof(cookie));
	return 0;
}

int vpn_cookie_reply_consume(struct vpn_cookie *c, const struct vpn_msg_cookie *msg,
			     uint64_t now_ns)
{
	uint8_t cookie[VPN_MAC_LEN];

	if (!c->have_sent_mac1)
		return -EINVAL;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		cookie, NULL, NULL, msg->encrypted_cookie, sizeof(msg->encrypted_cookie),
		c->last_mac1_sent, VPN_MAC_LEN, msg->nonce, c->cookie_decryption_key))
		return -EBADMSG;
	memcpy(c->cookie, cookie, sizeof(cookie));
	c->birth_ns = now_ns ? now_ns : 1;
	c->have_sent_mac1 = false;
	sodium_memzero(cookie, sizeof(cookie));
	return 0;
}
