/* Shared set-up of the VPN fuzz targets (fuzz_vpn_*.c): two in-process
 * devices without I/O, A and B, that know each other, with an established
 * session, so that fuzzed messages reach the parsers behind the MAC and
 * index checks and not only the first length test. */
#ifndef HVGATE_TESTS_FUZZ_VPN_COMMON_H
#define HVGATE_TESTS_FUZZ_VPN_COMMON_H

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "vpn/internal.h"

struct fuzz_vpn {
	struct vpn_device *a, *b;
	struct vpn_peer *a_b, *b_a;
	struct vpn_endpoint from;
};

static void fuzz_vpn_key(uint8_t k[VPN_KEY_LEN], uint8_t seed)
{
	for (int i = 0; i < VPN_KEY_LEN; i++)
		k[i] = (uint8_t)(seed * 31 + i);
	vpn_noise_clamp(k);
}

/* A completes a handshake with B (the state fuzzing then mutates). */
static void fuzz_vpn_handshake(struct fuzz_vpn *f)
{
	struct vpn_msg_initiation init;
	struct vpn_msg_response resp;
	int why;

	f->b_a->handshake.last_initiation_consumption_ns = 0;
	memset(f->b_a->handshake.latest_timestamp, 0, VPN_TAI64N_LEN);
	if (vpn_noise_create_initiation(f->a_b, &init) ||
	    vpn_noise_consume_initiation(f->b, &init, &why) != f->b_a ||
	    vpn_noise_create_response(f->b_a, &resp) || vpn_noise_begin_session(f->b_a) ||
	    vpn_noise_consume_response(f->a, &resp, &why) != f->a_b ||
	    vpn_noise_begin_session(f->a_b))
		abort();
}

static struct fuzz_vpn fuzz_vpn_state;

static void fuzz_vpn_cleanup(void)
{
	vpn_device_destroy(fuzz_vpn_state.a);
	vpn_device_destroy(fuzz_vpn_state.b);
}

static struct fuzz_vpn *fuzz_vpn_get(void)
{
	struct fuzz_vpn *const fp = &fuzz_vpn_state;
#define f (*fp)
	struct vpn_device_options opts = { 0 };
	const char *const allowed_a[] = { "10.0.0.1/32", "fd00::1/128" };
	uint8_t ka[32], kb[32], pa[32], pb[32];

	if (f.a)
		return &f;
	if (vpn_device_create(&f.a, &opts) || vpn_device_create(&f.b, &opts))
		abort();
	fuzz_vpn_key(ka, 1);
	fuzz_vpn_key(kb, 2);
	vpn_key_public(pa, ka);
	vpn_key_public(pb, kb);
	vpn_device_set_private_key(f.a, ka);
	vpn_device_set_private_key(f.b, kb);
	f.a_b = vpn_peer_create(f.a, pb);
	f.b_a = vpn_peer_create(f.b, pa);
	for (size_t i = 0; i < 2; i++) {
		struct vpn_prefix p;
		vpn_prefix_parse(allowed_a[i], &p);
		vpn_peer_add_allowed(f.b_a, &p);
	}
	f.from.addr.in4.sin_family = AF_INET;
	f.from.addr.in4.sin_port = htobe16(51820);
	f.from.addr.in4.sin_addr.s_addr = htobe32(0xc0000201);
	fuzz_vpn_handshake(&f);
	atexit(fuzz_vpn_cleanup);
	return &f;
#undef f
}

#endif
