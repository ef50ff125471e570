/* The array-growth steps of hvgate's libraries, all of them: arrays of
 * (v, n, cap) that double when full, or until a known need fits; and, for
 * arrays that carry no capacity, one more element exactly
 * (policy_grow_one) or the next power of two (policy_push_pow2). Inline,
 * because IR building calls them per rule and per statement.
 */
#ifndef HVGATE_POLICY_GROW_H
#define HVGATE_POLICY_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
#define POLICY_GROW(arr, cap, n, first)                                                            \
	policy_grow((void **)&(arr), &(cap), (n), sizeof(*(arr)), (first))

/* policy_reserve() for a typed array `arr` with capacity `cap` (lvalues). */
#define POLICY_RESERVE(arr, cap, need, first)                                                      \
	policy_reserve((void **)&(arr), &(cap), (need), sizeof(*(arr)), (first))

/* An array without a capacity that is always exactly `n` elements long
 * (a copy may allocate it so): *v grows to n + 1 elements. Returns 0, or -1
 * when memory runs out, with *v as it was. */
static inline int policy_grow_one(void **v, size_t n, size_t elem)
{
	if (n + 1 > SIZE_MAX / elem)
		return -1;
	void *nv = realloc(*v, (n + 1) * elem);
	if (!nv)
		return -1;
	*v = nv;
	return 0;
}

/* An array without a capacity whose room is implied by its count: `first`
 * (a power of two) elements, doubling each time the count reaches a power
 * of two from `first` on. Only for arrays made by this function alone.
 * Appends a zeroed element to *v (*n of them) and returns it, or NULL when
 * memory runs out (*v and *n as they were). */
static inline void *policy_push_pow2(void **v, size_t *n, size_t elem, size_t first)
{
	if (*n == 0 || (*n >= first && !(*n & (*n - 1)))) {
		size_t cap = *n ? *n * 2 : first;
		if (cap < *n || cap > SIZE_MAX / elem)
			return NULL;
		void *nv = realloc(*v, cap * elem);
		if (!nv)
			return NULL;
		*v = nv;
	}
	char *slot = (char *)*v + (*n)++ * elem;
	memset(slot, 0, elem);
	return slot;
}

#endif
