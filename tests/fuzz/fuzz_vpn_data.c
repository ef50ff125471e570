/* Fuzzes transport data into device B: as raw messages (header and
 * ciphertext fuzzed) and, when the first byte is odd, as properly
 * encrypted inner packets so the inner-packet and allowed-ips checks run
 * on fuzzed plaintext. */
#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	static uint8_t msg[VPN_WIRE_BUF + 64];

	if (size == 0 || size > VPN_WIRE_BUF - 64)
		return 0;
	if (!f->a_b->current)
		fuzz_vpn_handshake(f);
	if (data[0] & 1) {
		size_t n =
		    vpn_noise_encrypt(f->a_b->current, msg, data + 1, size - 1,
				      f->a_b->current->send_counter++, data[0] & 2 ? 1420 : 0);
		vpn_receive_datagram(f->b, msg, n, &f->from);
		return 0;
	}
	memcpy(msg, data, size);
	if (size >= 8) {
		msg[0] = VPN_MSG_DATA;
		msg[1] = msg[2] = msg[3] = 0;
		if (data[1] & 1) {
			uint32_t idx = htole32(f->a_b->current->remote_index);
			memcpy(msg + 4, &idx, 4);
		}
	}
	vpn_receive_datagram(f->b, msg, size, &f->from);
	return 0;
}
