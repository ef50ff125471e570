/* Fuzzes handshake initiations into device B: any bytes, made into a
 * 148-byte initiation with a valid mac1 so they reach the Noise parser. */
#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	uint8_t msg[VPN_MSG_INITIATION_LEN] = { 0 };

	memcpy(msg, data, size < sizeof(msg) ? size : sizeof(msg));
	msg[0] = VPN_MSG_INITIATION;
	msg[1] = msg[2] = msg[3] = 0;
	vpn_cookie_add_macs(&f->a_b->cookie, msg, sizeof(msg), vpn_now_ns(), 0);
	vpn_receive_datagram(f->b, msg, sizeof(msg), &f->from);
	/* and the raw bytes as they came, any length */
	if (size <= VPN_WIRE_BUF) {
		uint8_t raw[VPN_WIRE_BUF];
		memcpy(raw, data, size);
		vpn_receive_datagram(f->b, raw, size, &f->from);
	}
	return 0;
}
