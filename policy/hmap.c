/* policy_hmap (policy/hmap.h): linear probing in a table at most half full. */
#include <stdlib.h>
#include <string.h>

#include "policy/hmap.h"

void policy_hmap_free(struct policy_hmap *m)
{
	free(m->hash);
	free(m->idx);
	memset(m, 0, sizeof(*m));
}

static int alloc_slots(struct policy_hmap *m, size_t cap)
{
	m->hash = malloc(cap * sizeof(*m->hash));
	m->idx = malloc(cap * sizeof(*m->idx));
	if (!m->hash || !m->idx) {
		policy_hmap_free(m);
		return -1;
	}
	memset(m->idx, 0xff, cap * sizeof(*m->idx)); /* POLICY_HMAP_NONE */
	m->cap = cap;
	m->n = 0;
	return 0;
}

int policy_hmap_init(struct policy_hmap *m, size_t expect)
{
	memset(m, 0, sizeof(*m));
	size_t cap = 16;
	while (cap / 2 < expect) {
		if (cap > SIZE_MAX / 2 / sizeof(uint64_t))
			return -1;
		cap *= 2;
	}
	return alloc_slots(m, cap);
}

size_t policy_hmap_find(const struct policy_hmap *m, uint64_t h, bool (*eq)(void *ctx, size_t idx),
			void *ctx)
{
	if (!m->cap)
		return POLICY_HMAP_NONE;
	for (size_t i = h & (m->cap - 1); m->idx[i] != POLICY_HMAP_NONE; i = (i + 1) & (m->cap - 1))
		if (m->hash[i] == h && eq(ctx, m->idx[i]))
			return m->idx[i];
	return POLICY_HMAP_NONE;
}

/* Puts into the first empty slot from h: after every entry with the same
 * hash, so find() meets them in the order they were put. */
static void place(struct policy_hmap *m, uint64_t h, size_t idx)
{
	size_t i = h & (m->cap - 1);
	while (m->idx[i] != POLICY_HMAP_NONE)
		i = (i + 1) & (m->cap - 1);
	m->hash[i] = h;
	m->idx[i] = idx;
	m->n++;
}

int policy_hmap_put(struct policy_hmap *m, uint64_t h, size_t idx)
{
	if (!policy_hmap_has_room(m)) {
		struct policy_hmap bigger;
		size_t cap = m->cap ? m->cap * 2 : 16;
		if (cap < m->cap || cap > SIZE_MAX / sizeof(uint64_t) || alloc_slots(&bigger, cap))
			return -1;
		/* each run of full slots in probe order, starting after an
		 * empty slot (there is one: the map is half full at most), so
		 * entries of one hash keep their order */
		size_t start = 0;
		while (start < m->cap && m->idx[start] != POLICY_HMAP_NONE)
			start++;
		for (size_t k = 1; k <= m->cap; k++) {
			size_t i = (start + k) & (m->cap - 1);
			if (m->idx[i] != POLICY_HMAP_NONE)
				place(&bigger, m->hash[i], m->idx[i]);
		}
		policy_hmap_free(m);
		*m = bigger;
	}
	place(m, h, idx);
	return 0;
}
