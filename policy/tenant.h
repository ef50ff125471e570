/* Tenants with overlapping address spaces: the lowering pass that keeps them
 * apart in the kernel, and the constants that the NAT pass (nat/) and the
 * routing installer (appliance/route.c) share with it.
 *
 * The mechanism (docs/nat-and-tenants.md):
 *   - raw prerouting: `ct original zone set iifname map @tenant_zone`. The
 *     zone covers the original direction only, so a reply that comes back on
 *     the shared uplink is found by its reply tuple in the default zone; NAT
 *     keeps those reply tuples unique.
 *   - prerouting (filter, -150): per segment, anti-spoofing (source must be
 *     one of the segment's addresses, else counted drop), then the packet
 *     mark = tenant mark, saved into the ct mark for new connections. Packets
 *     from elsewhere get the mark back from the ct mark (replies).
 *   - output (route, -150): the appliance's own packets of a tenant's
 *     connection (answers to its hosts) take the mark from the ct mark, so
 *     they are routed back into that tenant.
 *   - policy routing (appliance/route.c): fwmark TENANT_MARK/MASK -> table
 *     POLICY_TENANT_TABLE_BASE + tenant id, holding the tenant's segment routes.
 *   - forward (filter, -10): a new connection between segments of two
 *     different tenants is dropped and counted unless some rule names both
 *     zones (a shared-services grant; the rule itself is judged later).
 *
 * Error convention: as libhvpolicy (policy/diag.h).
 */
#ifndef HVGATE_POLICY_TENANT_H
#define HVGATE_POLICY_TENANT_H

#include <stdint.h>

#include "policy/ruleset.h"
#include "policy/diag.h"
#include "policy/ir.h"
#include "policy/model.h"

/* Mark layout. The tenant id lives in the upper 16 bits of the packet mark
 * and the ct mark; the low bits of the packet mark stay free for others. */
#define POLICY_TENANT_MARK_SHIFT 16
#define POLICY_TENANT_MARK_MASK  0xffff0000u
/* Packet mark bit of a hairpinned port forward (set with the dnat, read by
 * the snat back in postrouting); never saved in the ct mark. */
#define POLICY_TENANT_MARK_HAIRPIN 0x8000u

/* Routing table of tenant id N: POLICY_TENANT_TABLE_BASE + N. 1000 leaves
 * the tables of iproute2's rt_tables (253 default, 254 main, 255 local)
 * and the usual small hand-made numbers alone. */
#define POLICY_TENANT_TABLE_BASE 1000u

/* The tenant pass's chains, maps, sets and priorities: policy/ruleset.h. */
#define POLICY_COMMENT_INTER_TENANT "builtin:inter-tenant"
#define POLICY_COMMENT_ANTISPOOF    "antispoof:" /* + segment zone name */

static inline uint32_t policy_tenant_mark(const struct policy_tenant *t)
{
	return t->id << POLICY_TENANT_MARK_SHIFT;
}

/* The segment chain of zone index `zone`: "seg_<zone>". */
void policy_tenant_segment_chain(size_t zone, char name[IR_NAME_MAX]);

/* Adds the tenant objects above to `t`; nothing when `p` has no tenant.
 * Returns 0, or -1 with an error in `d`. */
int policy_lower_tenants(const struct policy *p, struct ir_table *t, struct policy_diags *d);

/* The isolation proof for filter rules is policy_check_isolation()
 * (policy/checker.h). This is its NAT half (policy/isolation.c): a tenant's
 * NAT out via another tenant's segment and a global forward/netmap into a
 * tenant's addresses are errors; a port forward that no pass rule lets
 * through is a warning; shadowed NAT statements too (policy_check_nat_shadow). The
 * checker calls it. Returns 0 or -1. */
int policy_check_nat_isolation(const struct policy *p, struct policy_diags *d);

/* Shadowed NAT statements (policy/nat_shadow.c): a source NAT (same tenant,
 * same outside zone) whose sources an earlier one covers, or a port forward
 * (same zone, protocol, covering ports and public address) after one that
 * takes all its packets, gets a warning at its location and a note at the
 * earlier one. Called through policy_check_nat_isolation(). Returns 0. */
int policy_check_nat_shadow(const struct policy *p, struct policy_diags *d);

/* The segments of one tenant must not share addresses (policy/isolation.c;
 * the checker calls it). Returns 0 or -1 with errors. */
int policy_check_tenant_segments(const struct policy *p, struct policy_diags *d);

#endif
