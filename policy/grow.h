/* The one array-growth step of hvgate's libraries: arrays of (v, n, cap)
 * that double when full. Inline, because IR building calls it per rule and
 * per statement.
 */
#ifndef HVGATE_POLICY_GROW_H
#define HVGATE_POLICY_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes room for element `n` of *v (*cap elements of `elem` bytes): when
 * n == *cap the capacity doubles (to `first` from zero). The new room is not
 * zeroed. Returns 0, or -1 when memory runs out or the size would overflow,
 * with *v and *cap as they were. */
static inline int policy_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : first;
	if (ncap < *cap || ncap > SIZE_MAX / elem)
		return -1;
	void *nv = realloc(*v, ncap * elem);
	if (!nv)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* policy_grow() for a typed array `arr` with capacity `cap` (lvalues). */
#define POLICY_GROW(arr, cap, n, first) \
	policy_grow((void **)&(arr), &(cap), (n), sizeof(*(arr)), (first))

#endif
