/* Fuzzes cookie replies into device A, addressed to its pending handshake. */
#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	struct vpn_msg_initiation init;
	uint8_t msg[VPN_MSG_COOKIE_LEN] = { 0 };

	if (vpn_noise_create_initiation(f->a_b, &init))
		return 0;
	vpn_cookie_add_macs(&f->a_b->cookie, (uint8_t *)&init, sizeof(init), vpn_now_ns(), 0);
	memcpy(msg, data, size < sizeof(msg) ? size : sizeof(msg));
	msg[0] = VPN_MSG_COOKIE;
	msg[1] = msg[2] = msg[3] = 0;
	if (size > 0 && !(data[0] & 1)) {
		uint32_t idx = htole32(f->a_b->handshake.local_index);
		memcpy(msg + 4, &idx, 4);
	}
	vpn_receive_datagram(f->a, msg, sizeof(msg), &f->from);
	/* a genuine reply for the same initiation, with fuzzed tail bytes:
	 * the XChaCha20-Poly1305 open must refuse every change */
	struct vpn_msg_cookie reply;
	vpn_cookie_reply_create(&f->b->cookie_checker, &reply, (uint8_t *)&init, sizeof(init),
				le32toh(init.sender_index), &f->from.addr, vpn_now_ns(),
				VPN_COOKIE_SECRET_MAX_AGE);
	for (size_t i = 0; i < size && i < sizeof(reply.encrypted_cookie); i++)
		reply.encrypted_cookie[i] ^= data[i];
	vpn_receive_datagram(f->a, (uint8_t *)&reply, sizeof(reply), &f->from);
	return 0;
}
