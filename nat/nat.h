/* libhvnat: NAT for hvgate. What lives in nat/: lower.c, NAT lowering. It
 * calls only policy/ (the model, the IR builders, tenant marks); policy/
 * does not call it: callers of policy_lower() hand nat_lower in.
 *
 *   nat_lower()         the policy's `nat` statements -> the nat chains of
 *                       the IR (masquerade, snat, port forwards with
 *                       hairpin, 1:1 netmap), per tenant
 * (The kernel's NAT bindings are read back by appliance/kernel/conntrack.h:
 * libhvnat does no kernel I/O.)
 *
 * Statements of a tenant apply only to that tenant's traffic: they match the
 * tenant's routing mark (policy/tenant.h), so two tenants with the same
 * addresses get their own translations. What happens in which order
 * (conntrack zone, anti-spoofing, dnat, routing, filter, snat) is explained
 * in docs/nat-and-tenants.md.
 *
 * Error convention: as libhvpolicy (0, or -1 with an error in the struct
 * policy_diags). Nothing here keeps state between calls.
 */
#ifndef HVGATE_NAT_NAT_H
#define HVGATE_NAT_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"
#include "policy/ir.h"
#include "policy/model.h"

/* The nat chains, maps and priorities are named in policy/ruleset.h. */

/* Adds the nat chains for p->nats to `t`. Port forwards with a public
 * address also work from inside (hairpin). The policy must have been
 * checked. Returns 0, or -1 with errors in `d`.
 *
 * policy/ does not call this: it is a policy_nat_lower_fn (policy/policy.h)
 * that the caller of policy_lower() hands in, as in
 *     policy_lower_opts_default(&o);
 *     o.nat_lower = nat_lower;
 */
int nat_lower(const struct policy *p, struct ir_table *t, struct policy_diags *d);

/* The errors of nat_lower() that concern the statements themselves, without
 * building anything (nat_lower() runs it first): for `hvgate explain`,
 * which evaluates the checked policy. Returns 0, or -1 with errors in `d`. */
int nat_check(const struct policy *p, struct policy_diags *d);

#endif
