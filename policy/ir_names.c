/* ir_names (policy/ir_names.h): chains and sets by name. */
#include <string.h>

#include "policy/hash.h"
#include "policy/ir_names.h"

struct name_probe {
	const struct ir_names *x;
	const char *name;
};

static const char *name_of(const struct ir_names *x, size_t i)
{
	return x->sets ? x->t->sets[i].name : x->t->chains[i].name;
}

static uint64_t name_hash(const char *name)
{
	return policy_fnv64(POLICY_FNV64_OFFSET_BASIS, name, strlen(name));
}

static bool name_is(void *ctx, size_t i)
{
	const struct name_probe *p = ctx;
	return !strcmp(name_of(p->x, i), p->name);
}

int ir_names_init(struct ir_names *x, const struct ir_table *t, bool sets, size_t expect)
{
	*x = (struct ir_names){ .t = t, .sets = sets };
	return policy_hmap_init(&x->map, expect);
}

int ir_names_index(struct ir_names *x, const struct ir_table *t, bool sets, size_t extra)
{
	size_t n = sets ? t->n_sets : t->n_chains;
	if (ir_names_init(x, t, sets, n + extra))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (sets && (t->sets[i].flags & IR_SET_ANONYMOUS))
			continue;
		if (ir_names_put(x, i)) {
			ir_names_free(x);
			return -1;
		}
	}
	return 0;
}

void ir_names_free(struct ir_names *x)
{
	policy_hmap_free(&x->map);
}

int ir_names_put(struct ir_names *x, size_t i)
{
	return policy_hmap_put(&x->map, name_hash(name_of(x, i)), i);
}

size_t ir_names_get(const struct ir_names *x, const char *name)
{
	struct name_probe p = { .x = x, .name = name };
	return policy_hmap_find(&x->map, name_hash(name), name_is, &p);
}
