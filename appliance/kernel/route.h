/* route: the policy routing of tenants, over rtnetlink (libmnl).
 *
 * For every tenant of a policy: one routing table, POLICY_TENANT_TABLE_BASE +
 * tenant id (policy/tenant.h), holding a route to each of its segments'
 * prefixes through the segment's interface (for a wildcard, the one existing
 * interface it matches; none if it matches several); and per family a rule
 * "fwmark TENANT_MARK/POLICY_TENANT_MARK_MASK lookup TABLE", ahead of the
 * main table (reached through a goto per group of tenants, so the number of
 * rules a packet passes grows with the square root of the tenants, not
 * linearly). The marks are set by the tenant chains of the ruleset, so a
 * tenant's packets (and the replies to them) are routed by its own table,
 * also when two tenants use the same addresses. Destinations a tenant's table
 * does not hold fall through to the main table (the uplink's default route).
 *
 * Everything hvgate installs carries protocol ROUTE_PROTO_HVGATE, which is how
 * route_flush() finds exactly what to remove; nothing else is touched.
 * Every function takes the network namespace to work in (NULL: the
 * caller's own; else a name under /var/run/netns).
 *
 * Error convention: 0 or negative errno; with a struct policy_diags, a
 * diagnostic says what failed. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_ROUTE_H
#define HVGATE_APPLIANCE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"
#include "policy/model.h"

/* rtm_protocol / FRA_PROTOCOL of hvgate's routes and rules: not one of the
 * numbers reserved in iproute2's rt_protos (0-18, 42, 99, 186-192). */
#define ROUTE_PROTO_HVGATE 211
/* Priority of the fwmark rules: after the local table (0), before main
 * (32766) and default (32767), as in ip-rule(8). The rules of tenant group
 * g sit at ROUTE_RULE_PRIORITY + 1 + g (see route.c: a two-level walk). */
#define ROUTE_RULE_PRIORITY 1000
/* Tenants per group of fwmark rules: 2^4. 200 tenants make 13 groups, so a
 * packet checks at most 1 + 13 + 16 rules instead of 200. */
#define ROUTE_GROUP_BITS 4

struct route_result {
	size_t rules;     /* per-tenant fwmark lookup rules installed (both families) */
	size_t routes;    /* routes installed */
	size_t skipped;   /* segment prefixes skipped: interface absent or down, wildcard
			   * matching none or several, an address range (not a prefix) */
	size_t ambiguous; /* of those, skipped because a wildcard matched several */
	size_t removed;   /* rules and routes removed before */
};

/* Makes the kernel's tenant routing that of `p`: removes everything hvgate
 * installed before (route_flush), then installs p's tables and rules. A
 * policy without tenants leaves nothing installed. */
int route_apply(const char *netns, const struct policy *p, struct route_result *r,
		struct policy_diags *d);

/* Whether interface `ifname` is one that segment pattern `pattern` names:
 * the same name, or for "prefix*" any name starting with prefix. */
bool route_ifname_matches(const char *pattern, const char *ifname);

/* Whether a segment of one of p's tenants names interface `ifname`: its
 * appearing, going up or going away changes what route_apply installs. */
bool route_names_interface(const struct policy *p, const char *ifname);

struct nl_sock;
/* A route to `a` (a prefix, host bits ignored; a range: its first address
 * alone) out of interface `ifindex`, scope link, in routing table `table`,
 * with rtm_protocol `proto`: added, replacing one to the same prefix, or
 * deleted. One rtnetlink request on `s` (NETLINK_ROUTE); 0 or -errno. The
 * tenants' routes and the VPN's routes to peers are both made by it. */
int route_link_change(struct nl_sock *s, const struct policy_addr *a, unsigned ifindex,
		      uint32_t table, uint8_t proto, bool add);

/* Removes every rule and route with protocol ROUTE_PROTO_HVGATE; *removed
 * (if not NULL) counts them. */
int route_flush(const char *netns, size_t *removed);

#endif
