/* The names of the objects of table inet hvgate (IR_TABLE_NAME): every
 * chain, set and map the compiler makes by a fixed name, and the priorities
 * of its base chains. One definition each, used by policy/ (lower.c,
 * tenant.c), nat/ (lower.c) and appliance/ (txn.c: block lists, counters);
 * docs/ruleset.md describes the layout. Names made per zone, tenant or
 * segment (from_ZONE, seg_N, nat_pre_N ...) are built where they are made.
 */
#ifndef HVGATE_POLICY_RULESET_H
#define HVGATE_POLICY_RULESET_H

#include <linux/netfilter_ipv4.h>

/* ---- the policy's own (policy/lower.c) ---- */

/* Dynamic block lists, always present, filled by the daemon (hvgate block). */
#define POLICY_SET_BLOCKED4 "blocked4"
#define POLICY_SET_BLOCKED6 "blocked6"
/* Zone-scoped block lists: `oifname . ip[6] saddr`, both ranges (a zone's
 * interface patterns, an address prefix): traffic from the address into the
 * zone, and from the zone to the address, is dropped in forward. */
#define POLICY_SET_BLOCKED_ZONE4 "blocked_zone4"
#define POLICY_SET_BLOCKED_ZONE6 "blocked_zone6"

/* Base chains. */
#define POLICY_CHAIN_INPUT          "input"
#define POLICY_CHAIN_FORWARD        "forward"
#define POLICY_CHAIN_OUTPUT         "output"
#define POLICY_CHAIN_RAW_PREROUTING "raw_prerouting" /* only with `no state` rules */
#define POLICY_CHAIN_RAW_OUTPUT     "raw_output"     /* only with `from self ... no state` */
#define POLICY_CHAIN_CT_INVALID     "ct_invalid"     /* counts and drops ct state invalid */
#define POLICY_CHAIN_INSPECT        "inspect"        /* flows under inspection: to the fast path */
/* base chains right after the filter chains (POLICY_PRI_INSPECT_DONE) that
 * turn the fast path's DONE verdict mark into the DONE label */
#define POLICY_CHAIN_INSPECT_DONE_INPUT   "inspect-done-input"
#define POLICY_CHAIN_INSPECT_DONE_FORWARD "inspect-done-forward"
#define POLICY_CHAIN_INSPECT_DONE_OUTPUT  "inspect-done-output"

/* Zone dispatch maps (docs/ruleset.md): iifname -> from_ZONE (forward),
 * oifname -> ZONE_to_ZONE (in from_ZONE, map to_from_ZONE), iifname ->
 * ZONE_to_self (input), oifname -> self_to_ZONE (output). */
#define POLICY_MAP_ZONE_FROM "zone_from"
#define POLICY_MAP_SELF_FROM "self_from"
#define POLICY_MAP_SELF_TO   "self_to"

/* The name that stands for "an interface in no zone" in chain names. */
#define POLICY_UNZONED "unzoned"

/* ---- NAT (made by policy/lower.c when a policy has NAT, filled by nat/) ---- */

#define POLICY_CHAIN_NAT_PREROUTING  "nat_prerouting"  /* dnat */
#define POLICY_CHAIN_NAT_POSTROUTING "nat_postrouting" /* snat */
#define POLICY_CHAIN_NAT_OUTPUT      "nat_output"      /* dnat of local traffic */
/* Per tenant N: nat_pre_N (hairpin dnat), nat_post_N (snat), nat_hairpin_N
 * (the snat back of a hairpinned forward), dispatched by the routing mark
 * through these maps, so the cost per packet does not grow with tenants. */
#define POLICY_MAP_NAT_PRE_TENANT  "nat_pre_tenant"
#define POLICY_MAP_NAT_POST_TENANT "nat_post_tenant"

/* ---- tenants (policy/tenant.c) ---- */

#define POLICY_CHAIN_TENANT_RAW     "tenant_raw"          /* prerouting -300: ct zone */
#define POLICY_CHAIN_TENANT_IN      "tenant_in"           /* prerouting -150: spoof, mark */
#define POLICY_CHAIN_TENANT_FORWARD "tenant_forward"      /* forward -10: isolation */
#define POLICY_CHAIN_TENANT_OUT     "tenant_out"          /* output -150 (route): mark */
#define POLICY_MAP_TENANT_ZONE      "tenant_zone"         /* iifname -> ct zone */
#define POLICY_MAP_TENANT_SEGMENT   "tenant_segment"      /* iifname -> goto seg_N */
#define POLICY_MAP_TENANT_RESTORE   "tenant_mark_restore" /* ct mark -> meta mark */
#define POLICY_SET_TENANT_IFACES    "tenant_ifaces"
#define POLICY_SET_TENANT_PAIRS     "tenant_pairs" /* iifname . oifname allowed */

/* ---- base chain priorities ---- */

/* The kernel's own (linux/netfilter_ipv4.h), as iptables' tables use them:
 * filter 0, raw -300, nat -100 before routing (dnat) and 100 after (snat). */
#define POLICY_PRI_FILTER  NF_IP_PRI_FILTER
#define POLICY_PRI_RAW     NF_IP_PRI_RAW
#define POLICY_PRI_NAT_DST NF_IP_PRI_NAT_DST
#define POLICY_PRI_NAT_SRC NF_IP_PRI_NAT_SRC
/* Just after filter: a packet the fast path accepts goes on with the next
 * base chain of its hook, this one (nf_reinject). */
#define POLICY_PRI_INSPECT_DONE (NF_IP_PRI_FILTER + 1)

/* Tenants: NF_IP_PRI_RAW is -300 and NF_IP_PRI_MANGLE -150, i.e. after
 * conntrack (-200), before nat (-100) and before the routing decision; the
 * forward check runs just before the policy's own forward chain
 * (NF_IP_PRI_FILTER, 0). */
#define POLICY_TENANT_PRI_RAW     (-300)
#define POLICY_TENANT_PRI_IN      (-150)
#define POLICY_TENANT_PRI_FORWARD (-10)
#define POLICY_TENANT_PRI_OUT     (-150)

#endif
