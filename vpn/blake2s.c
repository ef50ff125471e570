/* BLAKE2s (RFC 7693) and the three ways WireGuard uses it (whitepaper §5.4):
 * the 32-byte hash, HMAC-BLAKE2s (RFC 2104) for the key derivation, and the
 * keyed 16-byte MAC for mac1/mac2, whose output length lives in the parameter
 * block (so it is not a truncated 32-byte hash). Written here rather than
 * taken from libcrypto because EVP_MAC contexts cost an allocation per use and
 * libsodium 1.0.18 has no BLAKE2s. */
#include <string.h>

#include <sodium.h>

#include "vpn/internal.h"

/* RFC 7693 §2.6: the SHA-256 initial value. */
static const uint32_t blake2s_iv[8] = {
	0x6A09E667UL, 0xBB67AE85UL, 0x3C6EF372UL, 0xA54FF53AUL,
	0x510E527FUL, 0x9B05688CUL, 0x1F83D9ABUL, 0x5BE0CD19UL,
};

/* RFC 7693 §2.7: message word schedule, 10 rounds for BLAKE2s. */
static const uint8_t blake2s_sigma[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static inline uint32_t ror32(uint32_t w, unsigned int c)
{
	return (w >> c) | (w << (32 - c));
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* RFC 7693 §3.1, with BLAKE2s's rotation constants (16, 12, 8, 7). */
#define G(a, b, c, d, x, y)                                                                        \
	do {                                                                                       \
		v[a] = v[a] + v[b] + (x);                                                          \
		v[d] = ror32(v[d] ^ v[a], 16);                                                     \
		v[c] = v[c] + v[d];                                                                \
		v[b] = ror32(v[b] ^ v[c], 12);                                                     \
		v[a] = v[a] + v[b] + (y);                                                          \
		v[d] = ror32(v[d] ^ v[a], 8);                                                      \
		v[c] = v[c] + v[d];                                                                \
		v[b] = ror32(v[b] ^ v[c], 7);                                                      \
	} while (0)

/* RFC 7693 §3.2. */
static void blake2s_compress(struct vpn_blake2s *s, const uint8_t block[VPN_BLAKE2S_BLOCK],
			     int last)
{
	uint32_t m[16], v[16];

	for (int i = 0; i < 16; i++)
		m[i] = load_le32(block + 4 * i);
	for (int i = 0; i < 8; i++) {
		v[i] = s->h[i];
		v[i + 8] = blake2s_iv[i];
	}
	v[12] ^= s->t[0];
	v[13] ^= s->t[1];
	if (last)
		v[14] = ~v[14];
	for (int r = 0; r < 10; r++) {
		const uint8_t *sg = blake2s_sigma[r];
		G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
		G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
		G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
		G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
		G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
		G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
		G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
		G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
	}
	for (int i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
	sodium_memzero(m, sizeof(m));
	sodium_memzero(v, sizeof(v));
}

static void blake2s_add_count(struct vpn_blake2s *s, uint32_t inc)
{
	s->t[0] += inc;
	if (s->t[0] < inc)
		s->t[1]++;
}

void vpn_blake2s_init_key(struct vpn_blake2s *s, size_t outlen, const uint8_t *key, size_t keylen)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->h, blake2s_iv, sizeof(s->h));
	/* Parameter block word 0: digest length, key length, fanout 1, depth 1. */
	s->h[0] ^= 0x01010000UL ^ ((uint32_t)keylen << 8) ^ (uint32_t)outlen;
	s->outlen = outlen;
	if (keylen) {
		memcpy(s->buf, key, keylen);
		s->buflen = VPN_BLAKE2S_BLOCK; /* the key is a full first block */
	}
}

void vpn_blake2s_init(struct vpn_blake2s *s, size_t outlen)
{
	vpn_blake2s_init_key(s, outlen, NULL, 0);
}

void vpn_blake2s_update(struct vpn_blake2s *s, const uint8_t *in, size_t inlen)
{
	while (inlen > 0) {
		/* Keep the last block buffered: it must be compressed with the
		 * final flag, and we cannot know which one is last yet. */
		if (s->buflen == VPN_BLAKE2S_BLOCK) {
			blake2s_add_count(s, VPN_BLAKE2S_BLOCK);
			blake2s_compress(s, s->buf, 0);
			s->buflen = 0;
		}
		size_t take = VPN_BLAKE2S_BLOCK - s->buflen;
		if (take > inlen)
			take = inlen;
		memcpy(s->buf + s->buflen, in, take);
		s->buflen += take;
		in += take;
		inlen -= take;
	}
}

void vpn_blake2s_final(struct vpn_blake2s *s, uint8_t *out)
{
	uint8_t full[VPN_BLAKE2S_OUT];

	blake2s_add_count(s, (uint32_t)s->buflen);
	memset(s->buf + s->buflen, 0, VPN_BLAKE2S_BLOCK - s->buflen);
	blake2s_compress(s, s->buf, 1);
	for (int i = 0; i < 8; i++) {
		full[4 * i] = (uint8_t)s->h[i];
		full[4 * i + 1] = (uint8_t)(s->h[i] >> 8);
		full[4 * i + 2] = (uint8_t)(s->h[i] >> 16);
		full[4 * i + 3] = (uint8_t)(s->h[i] >> 24);
	}
	memcpy(out, full, s->outlen);
	sodium_memzero(full, sizeof(full));
	sodium_memzero(s, sizeof(*s));
}

void vpn_blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *in,
		 size_t inlen)
{
	struct vpn_blake2s s;

	vpn_blake2s_init_key(&s, outlen, key, keylen);
	vpn_blake2s_update(&s, in, inlen);
	vpn_blake2s_final(&s, out);
}

/* RFC 2104 with BLAKE2s as H (block 64 bytes). WireGuard's keys are never
 * longer than a block, so the key-hashing branch of RFC 2104 is not needed;
 * longer keys are hashed anyway for correctness. */
void vpn_hmac_blake2s(uint8_t out[VPN_BLAKE2S_OUT], const uint8_t *key, size_t keylen,
		      const uint8_t *in, size_t inlen)
{
	uint8_t k[VPN_BLAKE2S_BLOCK] = { 0 }, inner[VPN_BLAKE2S_OUT];
	struct vpn_blake2s s;

	if (keylen > VPN_BLAKE2S_BLOCK)
		vpn_blake2s(k, VPN_BLAKE2S_OUT, NULL, 0, key, keylen);
	else
		memcpy(k, key, keylen);
	for (int i = 0; i < VPN_BLAKE2S_BLOCK; i++)
		k[i] ^= 0x36;
	vpn_blake2s_init(&s, VPN_BLAKE2S_OUT);
	vpn_blake2s_update(&s, k, sizeof(k));
	vpn_blake2s_update(&s, in, inlen);
	vpn_blake2s_final(&s, inner);
	for (int i = 0; i < VPN_BLAKE2S_BLOCK; i++)
		k[i] ^= 0x36 ^ 0x5c;
	vpn_blake2s_init(&s, VPN_BLAKE2S_OUT);
	vpn_blake2s_update(&s, k, sizeof(k));
	vpn_blake2s_update(&s, inner, sizeof(inner));
	vpn_blake2s_final(&s, out);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(inner, sizeof(inner));
}
