/* The one array-growth step of hvgate's libraries: arrays of (v, n, cap)
 * that double when full, or until a known need fits. Inline, because IR
 * building calls it per rule and per statement.
 */
#ifndef HVGATE_POLICY_GROW_H
#define HVGATE_POLICY_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes room for `need` elements of `elem` bytes in *v (*cap of them now):
 * the capacity doubles (from `first` when zero) until it is enough. The new
 * room is not zeroed. Returns 0, or -1 when memory runs out or the size
 * would overflow, with *v and *cap as they were. */
static inline int policy_reserve(void **v, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : first;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -1;
	void *nv = realloc(*v, ncap * elem);
	if (!nv)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Makes room for element `n` of *v: policy_reserve() of n + 1 (the
 * capacity doubles when n == *cap). */
static inline int policy_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first)
{
	return n < *cap ? 0 : policy_reserve(v, cap, n + 1, elem, first);
}

/* policy_grow() for a typed array `arr` with capacity `cap` (lvalues). */
#define POLICY_GROW(arr, cap, n, first) \
	policy_grow((void **)&(arr), &(cap), (n), sizeof(*(arr)), (first))

/* policy_reserve() for a typed array `arr` with capacity `cap` (lvalues). */
#define POLICY_RESERVE(arr, cap, need, first) \
	policy_reserve((void **)&(arr), &(cap), (need), sizeof(*(arr)), (first))

#endif
