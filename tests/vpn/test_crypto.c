/* The primitives against their published vectors: BLAKE2s (RFC 7693 §B and
 * the Appendix E self-test), keyed BLAKE2s-128 and HMAC-BLAKE2s (against
 * OpenSSL's independent implementation), X25519 (RFC 7748 §5.2, §6.1),
 * ChaCha20-Poly1305 (RFC 8439 §2.8.2), XChaCha20-Poly1305
 * (draft-irtf-cfrg-xchacha-03 §A.3.1). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <sodium.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

static void unhex(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	ck_assert_int_eq(sodium_hex2bin(out, n, hex, strlen(hex), NULL, NULL, NULL), 0);
}

#define ck_assert_hex(buf, len, hex)                                                               \
	do {                                                                                       \
		char h_[2 * 512 + 1];                                                              \
		sodium_bin2hex(h_, sizeof(h_), (buf), (len));                                      \
		ck_assert_str_eq(h_, (hex));                                                       \
	} while (0)

START_TEST(blake2s_abc)
{
	uint8_t out[32];
	/* RFC 7693 Appendix B */
	vpn_blake2s(out, 32, NULL, 0, (const uint8_t *)"abc", 3);
	ck_assert_hex(out, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}
END_TEST

/* RFC 7693 Appendix E: a deterministic sequence hashed at several lengths,
 * keyed and unkeyed, everything hashed again into one 32-byte result. */
static void selftest_seq(uint8_t *out, size_t len, uint32_t seed)
{
	uint32_t a = 0xDEAD4BAD * seed, b = 1, t;
	for (size_t i = 0; i < len; i++) {
		t = a + b;
		a = b;
		b = t;
		out[i] = (uint8_t)(t >> 24);
	}
}

START_TEST(blake2s_rfc7693_selftest)
{
	static const size_t md_len[4] = { 16, 20, 28, 32 };
	static const size_t in_len[6] = { 0, 3, 64, 65, 255, 1024 };
	uint8_t in[1024], md[32], key[32], res[32];
	struct vpn_blake2s ctx;

	vpn_blake2s_init(&ctx, 32);
	for (int i = 0; i < 4; i++) {
		size_t outlen = md_len[i];
		for (int j = 0; j < 6; j++) {
			size_t inlen = in_len[j];
			selftest_seq(in, inlen, (uint32_t)inlen);
			vpn_blake2s(md, outlen, NULL, 0, in, inlen);
			vpn_blake2s_update(&ctx, md, outlen);
			selftest_seq(key, outlen, (uint32_t)outlen);
			vpn_blake2s(md, outlen, key, outlen, in, inlen);
			vpn_blake2s_update(&ctx, md, outlen);
		}
	}
	vpn_blake2s_final(&ctx, res);
	ck_assert_hex(res, 32, "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
}
END_TEST

START_TEST(blake2s_incremental_equals_oneshot)
{
	uint8_t in[300], a[32], b[32];
	struct vpn_blake2s s;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	for (size_t split = 0; split <= sizeof(in); split += 37) {
		vpn_blake2s(a, 32, NULL, 0, in, sizeof(in));
		vpn_blake2s_init(&s, 32);
		vpn_blake2s_update(&s, in, split);
		vpn_blake2s_update(&s, in + split, sizeof(in) - split);
		vpn_blake2s_final(&s, b);
		ck_assert_mem_eq(a, b, 32);
	}
}
END_TEST

/* mac1/mac2: keyed BLAKE2s with a 16-byte output set in the parameter block
 * is OpenSSL's BLAKE2SMAC with size 16; a truncated 32-byte MAC differs. */
START_TEST(blake2s_mac128_matches_openssl)
{
	uint8_t key[32], msg[116], ours[16], theirs[16], full[32];
	size_t outl = 0, size = 16;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
	ck_assert_ptr_nonnull(mac);

	for (size_t i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i ^ 0x5a);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
				OSSL_PARAM_construct_end() };
	ck_assert_int_eq(EVP_MAC_init(ctx, key, 32, params), 1);
	ck_assert_int_eq(EVP_MAC_update(ctx, msg, sizeof(msg)), 1);
	ck_assert_int_eq(EVP_MAC_final(ctx, theirs, &outl, sizeof(theirs)), 1);
	ck_assert_uint_eq(outl, 16);
	vpn_blake2s(ours, 16, key, 32, msg, sizeof(msg));
	ck_assert_mem_eq(ours, theirs, 16);
	vpn_blake2s(full, 32, key, 32, msg, sizeof(msg));
	ck_assert_int_ne(memcmp(full, ours, 16), 0);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}
END_TEST

START_TEST(hmac_blake2s_matches_openssl)
{
	uint8_t key[32], msg[77], ours[32], theirs[32];
	unsigned int len = 0;

	for (size_t klen = 0; klen <= 32; klen += 16) {
		for (size_t i = 0; i < 32; i++)
			key[i] = (uint8_t)(255 - i);
		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (uint8_t)(i * 3);
		ck_assert_ptr_nonnull(
		    HMAC(EVP_blake2s256(), key, (int)klen, msg, sizeof(msg), theirs, &len));
		ck_assert_uint_eq(len, 32);
		vpn_hmac_blake2s(ours, key, klen, msg, sizeof(msg));
		ck_assert_mem_eq(ours, theirs, 32);
	}
}
END_TEST

START_TEST(x25519_rfc7748)
{
	uint8_t k[32], u[32], out[32], a[32], b[32], apub[32], bpub[32], s1[32], s2[32];

	/* §5.2, first vector */
	unhex(k, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
	unhex(u, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
	ck_assert_int_eq(vpn_noise_dh(out, k, u), 0);
	ck_assert_hex(out, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
	/* §6.1 */
	unhex(a, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	unhex(b, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	ck_assert_int_eq(vpn_key_public(apub, a), 0);
	ck_assert_int_eq(vpn_key_public(bpub, b), 0);
	ck_assert_hex(apub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	ck_assert_hex(bpub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	ck_assert_int_eq(vpn_noise_dh(s1, a, bpub), 0);
	ck_assert_int_eq(vpn_noise_dh(s2, b, apub), 0);
	ck_assert_mem_eq(s1, s2, 32);
	ck_assert_hex(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}
END_TEST

START_TEST(x25519_low_order_rejected)
{
	uint8_t k[32], zero[32] = { 0 }, one[32] = { 1 }, out[32];

	unhex(k, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
	ck_assert_int_ne(vpn_noise_dh(out, k, zero), 0);
	ck_assert_int_ne(vpn_noise_dh(out, k, one), 0);
	ck_assert(sodium_is_zero(out, 32));
}
END_TEST

static const char sunscreen[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
    "for the future, sunscreen would be it.";

START_TEST(chacha20poly1305_rfc8439)
{
	uint8_t key[32], nonce[12], aad[12], out[sizeof(sunscreen) - 1 + 16],
	    back[sizeof(sunscreen)];
	size_t n = sizeof(sunscreen) - 1;
	unsigned long long clen, mlen;

	unhex(key, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	unhex(nonce, "070000004041424344454647");
	unhex(aad, "50515253c0c1c2c3c4c5c6c7");
	crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, (const uint8_t *)sunscreen, n, aad,
						  12, NULL, nonce, key);
	ck_assert_uint_eq(clen, n + 16);
	ck_assert_hex(
	    out, n,
	    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e06"
	    "0b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d265"
	    "86cec64b6116");
	ck_assert_hex(out + n, 16, "1ae10b594f09e26a7e902ecbd0600691");
	ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_decrypt(back, &mlen, NULL, out, clen,
								   aad, 12, nonce, key),
			 0);
	ck_assert_mem_eq(back, sunscreen, n);
	out[3] ^= 1;
	ck_assert_int_ne(crypto_aead_chacha20poly1305_ietf_decrypt(back, &mlen, NULL, out, clen,
								   aad, 12, nonce, key),
			 0);
}
END_TEST

START_TEST(xchacha20poly1305_draft)
{
	uint8_t key[32], nonce[24], aad[12], out[sizeof(sunscreen) - 1 + 16];
	size_t n = sizeof(sunscreen) - 1;
	unsigned long long clen;

	unhex(key, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	unhex(nonce, "404142434445464748494a4b4c4d4e4f5051525354555657");
	unhex(aad, "50515253c0c1c2c3c4c5c6c7");
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, (const uint8_t *)sunscreen, n, aad,
						   12, NULL, nonce, key);
	ck_assert_hex(
	    out, n,
	    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54"
	    "c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f6"
	    "15c68b13b52e");
	ck_assert_hex(out + n, 16, "c0875924c1c7987947deafd8780acf49");
}
END_TEST

START_TEST(key_encodings)
{
	uint8_t k[32], back[32];
	char b64[VPN_KEY_BASE64_LEN + 1], hex[65];

	ck_assert_int_eq(vpn_key_generate(k), 0);
	ck_assert_int_eq(k[0] & 7, 0);
	ck_assert_int_eq(k[31] & 0xc0, 0x40);
	vpn_key_to_base64(b64, k);
	ck_assert_int_eq(vpn_key_from_base64(back, b64), 0);
	ck_assert_mem_eq(k, back, 32);
	vpn_key_to_hex(hex, k);
	ck_assert_int_eq(vpn_key_from_hex(back, hex), 0);
	ck_assert_mem_eq(k, back, 32);
	ck_assert_int_ne(vpn_key_from_base64(back, "short"), 0);
	ck_assert_int_ne(vpn_key_from_hex(back, "zz"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_crypto");
	TCase *tc = tcase_create("vectors");

	if (sodium_init() < 0)
		return 1;
	tcase_add_test(tc, blake2s_abc);
	tcase_add_test(tc, blake2s_rfc7693_selftest);
	tcase_add_test(tc, blake2s_incremental_equals_oneshot);
	tcase_add_test(tc, blake2s_mac128_matches_openssl);
	tcase_add_test(tc, hmac_blake2s_matches_openssl);
	tcase_add_test(tc, x25519_rfc7748);
	tcase_add_test(tc, x25519_low_order_rejected);
	tcase_add_test(tc, chacha20poly1305_rfc8439);
	tcase_add_test(tc, xchacha20poly1305_draft);
	tcase_add_test(tc, key_encodings);
	suite_add_tcase(s, tc);
	return check_main(s);
}
