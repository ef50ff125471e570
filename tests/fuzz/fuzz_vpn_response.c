/* Fuzzes handshake responses into device A while it waits for one: the
 * receiver index is A's pending one (or fuzzed), mac1 valid. */
#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	struct vpn_msg_initiation init;
	uint8_t msg[VPN_MSG_RESPONSE_LEN] = { 0 };

	if (vpn_noise_create_initiation(f->a_b, &init))
		return 0;
	memcpy(msg, data, size < sizeof(msg) ? size : sizeof(msg));
	msg[0] = VPN_MSG_RESPONSE;
	msg[1] = msg[2] = msg[3] = 0;
	if (size > 0 && !(data[0] & 1)) {
		uint32_t idx = htole32(f->a_b->handshake.local_index);
		memcpy(msg + 8, &idx, 4);
	}
	vpn_cookie_add_macs(&f->b_a->cookie, msg, sizeof(msg), vpn_now_ns(), 0);
	vpn_receive_datagram(f->a, msg, sizeof(msg), &f->from);
	return 0;
}
