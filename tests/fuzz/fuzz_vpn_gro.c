/* Fuzzes receive-side coalescing (vpn/gro.c): a sequence of inner packets
 * (each prefixed by a 2-byte length) as an authenticated peer could send
 * them, written to /dev/null standing for the TUN. */
#include <fcntl.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	static uint8_t pkt[VPN_VNET_HDR_LEN + VPN_WIRE_BUF];
	static int null_fd = -1;

	if (null_fd < 0)
		null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	f->b->tun_fd = null_fd;
	f->b->tun_vnet_hdr = f->b->tun_gro = true;
	while (size >= 2) {
		size_t len = (size_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		if (len > VPN_WIRE_BUF)
			len = VPN_WIRE_BUF;
		memcpy(pkt + VPN_VNET_HDR_LEN, data, len);
		vpn_tun_write(f->b, pkt + VPN_VNET_HDR_LEN, len);
		data += len;
		size -= len;
	}
	vpn_tun_flush(f->b);
	f->b->tun_fd = -1; /* the device must not close /dev/null */
	return 0;
}
