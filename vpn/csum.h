/* The internet checksum (RFC 1071), the one copy in hvgate: the VPN's TSO
 * segmentation (tun.c) and receive coalescing (gro.c) and the fast path's
 * TCP resets (appliance/fastpath/packet.c) use it. It lives in vpn/, the
 * lowest layer both of them may include (vpn/ includes nothing of hvgate's,
 * appliance/ may include vpn/), and is inline because segmentation sums
 * every byte it sends.
 *
 * A sum is carried in a uint32_t between calls (start from 0; add a
 * pseudo-header's protocol and length to it directly) and folded once at
 * the end. No errors.
 */
#ifndef HVGATE_VPN_CSUM_H
#define HVGATE_VPN_CSUM_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The ones' complement sum of the 16-bit big-endian words at p (an odd last
 * byte padded with a zero), added to sum. Summed 32 bits at a time in native
 * order and swapped once at the end (RFC 1071 section 2(B): the sum is
 * byte-order independent up to that swap). */
static inline uint32_t vpn_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t acc = 0;
	uint32_t w;
	uint16_t h;

	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&w, p, 4);
		acc += w;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		acc += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = { p[0], 0 };
		memcpy(&h, last, 2);
		acc += h;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return sum + ntohs((uint16_t)acc);
}

/* The checksum field of a sum: folded to 16 bits and complemented. (A
 * partial checksum left for the kernel to finish is the folded sum not
 * complemented: ~vpn_csum_fold(sum).) */
static inline uint16_t vpn_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

#endif
