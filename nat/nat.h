/* libhvnat: NAT for hvgate.
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

/* Chains made by nat_lower (the base chains are shared with policy/lower.c,
 * which creates nat_prerouting and nat_postrouting when a policy has NAT). */
#define NAT_CHAIN_PREROUTING "nat_prerouting"	/* dnat, priority -100 */
#define NAT_CHAIN_POSTROUTING "nat_postrouting" /* snat, priority 100 */
#define NAT_CHAIN_OUTPUT "nat_output"		/* dnat of local traffic, -100 */
/* Per tenant N: nat_pre_N (hairpin dnat), nat_post_N (snat), nat_hairpin_N
 * (the snat back of a hairpinned forward), dispatched by the routing mark
 * through these maps, so the cost per packet does not grow with tenants. */
#define NAT_MAP_PRE_TENANT "nat_pre_tenant"
#define NAT_MAP_POST_TENANT "nat_post_tenant"

/* Priorities of iptables' nat table (linux/netfilter_ipv4.h):
 * NF_IP_PRI_NAT_DST -100, NF_IP_PRI_NAT_SRC 100. */
#define NAT_PRI_DST (-100)
#define NAT_PRI_SRC 100

struct nat_lower_opts {
	bool hairpin;	   /* port forwards with a public address also work from inside */
	bool random_fully; /* snat/masquerade port choice fully random */
};

void nat_lower_opts_default(struct nat_lower_opts *o);

/* Adds the nat chains for p->nats to `t` (o NULL: defaults). The policy must
 * have been checked. Returns 0, or -1 with errors in `d`. */
int nat_lower(const struct policy *p, struct ir_table *t, const struct nat_lower_opts *o,
	      struct policy_diags *d);

/* Shadowed NAT statements: a source NAT (same tenant, same outside zone)
 * whose sources an earlier one covers, or a port forward (same zone,
 * protocol, covering ports and public address) after one that takes all its
 * packets, gets a warning at its location and a note at the earlier one.
 * Called by the checker through policy_check_nat_isolation(). Returns 0. */
int nat_check_shadow(const struct policy *p, struct policy_diags *d);

#endif
