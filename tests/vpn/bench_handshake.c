/* Handshakes per second one hvgate instance completes as responder, and the
 * X25519 operations per second of this machine that bound it. Run by
 * tests/bench/vpn.sh (not a unit test). The responder's work per handshake
 * is measured in-process with the engine's own code: mac1 check, consuming
 * the initiation, creating the response with its macs, deriving the
 * session; initiations are made beforehand by many distinct peers so that
 * the per-peer flood limit (50/s) is not what is measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "vpn/internal.h"

#define N_PEERS 256
#define ROUNDS  8
/* Responder X25519 operations per handshake (whitepaper §5.4.3): ephemeral
 * key generation, DH(S_r, E_i) for "es", DH(E_r, E_i) and DH(E_r, S_i);
 * "ss" is precomputed per peer. */
#define DH_PER_HANDSHAKE 4

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	struct vpn_device_options opts = { 0 };
	struct vpn_device *a, *b;
	static uint8_t priv[N_PEERS][32];
	static struct vpn_msg_initiation msgs[ROUNDS][N_PEERS];
	uint8_t kb[32], pb[32], pub[32];
	union vpn_sockaddr src = { .in4 = { .sin_family = AF_INET } };

	if (vpn_device_create(&a, &opts) || vpn_device_create(&b, &opts))
		return 1;
	vpn_key_generate(kb);
	vpn_key_public(pb, kb);
	vpn_device_set_private_key(b, kb);
	for (int i = 0; i < N_PEERS; i++) {
		vpn_key_generate(priv[i]);
		vpn_key_public(pub, priv[i]);
		if (!vpn_peer_create(b, pub))
			return 1;
	}
	struct vpn_peer *a_b = NULL;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N_PEERS; i++) {
			vpn_device_set_private_key(a, priv[i]);
			if (!a_b)
				a_b = vpn_peer_create(a, pb);
			if (vpn_noise_create_initiation(a_b, &msgs[r][i]))
				return 1;
			vpn_cookie_add_macs(&a_b->cookie, (uint8_t *)&msgs[r][i],
					    sizeof(msgs[r][i]), vpn_now_ns(), 0);
		}
	}

	/* Handshakes and the X25519 loop alternate round by round, so that a
	 * change in the machine's load hits both sides of the ratio alike. */
	uint8_t out[32], k[32], u[32];
	vpn_key_generate(k);
	vpn_key_public(u, priv[0]);
	int done = 0;
	long dh = 0;
	double hs_time = 0, dh_time = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_s();
		for (int i = 0; i < N_PEERS; i++) {
			struct vpn_msg_response resp;
			int why;
			if (vpn_cookie_validate(&b->cookie_checker, (uint8_t *)&msgs[r][i],
						sizeof(msgs[r][i]), &src, false, vpn_now_ns(),
						VPN_COOKIE_SECRET_MAX_AGE) ==
			    VPN_COOKIE_INVALID_MAC1)
				continue;
			struct vpn_peer *p = vpn_noise_consume_initiation(b, &msgs[r][i], &why);
			if (!p || vpn_noise_create_response(p, &resp) || vpn_noise_begin_session(p))
				continue;
			vpn_cookie_add_macs(&p->cookie, (uint8_t *)&resp, sizeof(resp),
					    vpn_now_ns(), 0);
			done++;
		}
		double t1 = now_s();
		hs_time += t1 - t0;
		for (int i = 0; i < DH_PER_HANDSHAKE * N_PEERS; i++)
			if (crypto_scalarmult(out, k, u) == 0)
				dh++;
		dh_time += now_s() - t1;
	}
	double hs_rate = done / hs_time;
	double dh_rate = dh / dh_time;

	printf("handshakes_completed %d of %d\n", done, ROUNDS * N_PEERS);
	printf("handshakes_per_sec %.0f\n", hs_rate);
	printf("x25519_per_sec %.0f\n", dh_rate);
	printf("dh_per_handshake %d\n", DH_PER_HANDSHAKE);
	vpn_device_destroy(a);
	vpn_device_destroy(b);
	return done == ROUNDS * N_PEERS ? 0 : 1;
}
