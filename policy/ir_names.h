/* The chains of an IR table, or its named sets, by name: a policy_hmap
 * (policy/hmap.h) of indices into the table, hashed by name. The one name
 * index of libhvpolicy: ir_diff finds the running table's chains and sets
 * in it, the optimizer and the classifier the names they have already
 * given, so that a hash-made name that is taken is seen as a collision.
 *
 * The index holds no names, only indices: a name changed, or an object
 * removed, while it is indexed leaves the index stale. The table may grow
 * (ir_chain_add, ir_set_add) while indexed; its objects are read through
 * the table each time.
 *
 * Error convention: 0, or -1 when memory runs out (as policy/hmap.h).
 */
#ifndef HVGATE_POLICY_IR_NAMES_H
#define HVGATE_POLICY_IR_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/hmap.h"
#include "policy/ir.h"

struct ir_names {
	struct policy_hmap map;
	const struct ir_table *t;
	bool sets; /* the table's sets; false: its chains */
};

/* An empty index of t's chains (sets false) or sets, with room for `expect`
 * names before it grows. */
int ir_names_init(struct ir_names *x, const struct ir_table *t, bool sets, size_t expect);
/* An index of all of t's chains, or of its named sets (an anonymous set has
 * no name to find), with room for `extra` more; on -1 nothing is left to
 * free. */
int ir_names_index(struct ir_names *x, const struct ir_table *t, bool sets, size_t extra);
void ir_names_free(struct ir_names *x);

/* Indexes chain or set `i` of the table under the name it has now. */
int ir_names_put(struct ir_names *x, size_t i);
/* The index of the first chain or set indexed under `name`, or
 * POLICY_HMAP_NONE. */
size_t ir_names_get(const struct ir_names *x, const char *name);

#endif
