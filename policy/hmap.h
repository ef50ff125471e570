/* The one hash index of hvgate's libraries: open addressing from a 64-bit
 * hash (policy/hash.h) to an index into the caller's own array. The map
 * holds no keys: two entries may have the same hash, and the caller's
 * `eq` says which candidate is the one it looks for. Used by the optimizer
 * (rules, sets and action chains by content), by ir_diff (elements by key)
 * and by ir_names.h (chains and sets by name).
 *
 * Error convention: 0, or -1 when memory runs out (the map is unchanged).
 */
#ifndef HVGATE_POLICY_HMAP_H
#define HVGATE_POLICY_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_HMAP_NONE ((size_t)-1)

struct policy_hmap {
	uint64_t *hash;
	size_t *idx; /* POLICY_HMAP_NONE: empty slot */
	size_t cap;  /* a power of two, at least twice n */
	size_t n;
};

/* An empty map with room for `expect` entries before it grows. */
int policy_hmap_init(struct policy_hmap *m, size_t expect);
void policy_hmap_free(struct policy_hmap *m);

/* The first entry with hash `h` for which eq(ctx, idx) holds, in the order
 * they were put, or POLICY_HMAP_NONE. */
size_t policy_hmap_find(const struct policy_hmap *m, uint64_t h, bool (*eq)(void *ctx, size_t idx),
			void *ctx);

/* Adds `idx` under `h` (after those already there), doubling the room when
 * the map is half full. */
int policy_hmap_put(struct policy_hmap *m, uint64_t h, size_t idx);

/* Whether one more entry fits without growing. */
static inline bool policy_hmap_has_room(const struct policy_hmap *m)
{
	return (m->n + 1) * 2 <= m->cap;
}

#endif
