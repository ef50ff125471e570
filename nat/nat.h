/* libhvnat: NAT for hvgate.
 *
 *   nat_lower()         the policy's `nat` statements -> the nat chains of
 *                       the IR (masquerade, snat, port forwards with
 *                       hairpin, 1:1 netmap), per tenant
 *   nat_translations()  the kernel's NAT bindings, read back from conntrack
 *
 * Statements of a tenant apply only to that tenant's traffic: they match the
 * tenant's routing mark (policy/tenant.h), so two tenants with the same
 * addresses get their own translations. What happens in which order
 * (conntrack zone, anti-spoofing, dnat, routing, filter, snat) is explained
 * in docs/nat-and-tenants.md.
 *
 * Error conventions: nat_lower as libhvpolicy (0, or -1 with an error in the
 * struct policy_diags); nat_translations returns 0 or a negative errno.
 * Nothing here keeps state between calls; not thread-safe only in that the
 * netns switch of nat_translations affects the calling thread.
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

/* One conntrack entry that was translated: its original tuple (as the
 * sender wrote it) and its reply tuple (as the answer comes back). Source
 * NAT shows in reply.dst, destination NAT in reply.src. Addresses network
 * order (v4 in the first 4 bytes), ports host order. */
struct nat_tuple {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

struct nat_translation {
	int family;	 /* AF_INET or AF_INET6 */
	uint8_t l4proto; /* IPPROTO_* */
	uint16_t zone;	 /* conntrack zone (of the original direction) */
	uint32_t mark;	 /* ct mark: tenant id << 16 for tenant traffic */
	bool snat, dnat; /* IPS_SRC_NAT / IPS_DST_NAT */
	uint32_t timeout; /* seconds left */
	struct nat_tuple orig, reply;
};

/* Lists the conntrack entries with a NAT translation in network namespace
 * `netns` (a name under /var/run/netns; NULL: the caller's own). *out is a
 * malloc'd array the caller frees; *n its length. */
int nat_translations(const char *netns, struct nat_translation **out, size_t *n);

/* Writes one translation as "tcp zone 1 mark 0x10000 10.0.1.2:40000 ->
 * 203.0.113.2:7 snat 203.0.113.1:40000" into buf; returns buf. */
char *nat_translation_format(const struct nat_translation *t, char *buf, size_t size);

#endif
