/* FNV-1a, the one non-cryptographic hash of policy/ (and of nat/ and
 * appliance/ when they need one): Fowler, Noll, Vo, draft-eastlake-fnv,
 * section 2 gives the offset bases and primes. Inline: the optimizer and the
 * lowering hash in their inner loops. (vpn/ keeps its own copy for the
 * cookie ratelimiter: it includes nothing of policy/.)
 */
#ifndef HVGATE_POLICY_HASH_H
#define HVGATE_POLICY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_FNV32_OFFSET_BASIS 2166136261u
#define POLICY_FNV32_PRIME        16777619u
#define POLICY_FNV64_OFFSET_BASIS 0xcbf29ce484222325ull
#define POLICY_FNV64_PRIME        0x100000001b3ull

/* One more byte into a 32-bit hash (start from POLICY_FNV32_OFFSET_BASIS). */
static inline uint32_t policy_fnv32_byte(uint32_t h, uint8_t byte)
{
	return (h ^ byte) * POLICY_FNV32_PRIME;
}

/* `n` bytes at `p` into a 64-bit hash (start from POLICY_FNV64_OFFSET_BASIS). */
static inline uint64_t policy_fnv64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * POLICY_FNV64_PRIME;
	return h;
}

#endif
