/* The policy checker: a parsed struct policy_ast -> a checked struct policy.
 *
 * Resolves every name (tenant-local first, then global), flattens defines and
 * services, checks values that need context (address families that can never
 * meet, `self` on both sides, unknown zones in defaults, NAT and VPN
 * consistency), computes rule ids, and runs the shadowed-rule analysis
 * (policy/shadow.h) and the tenant isolation check.
 */
#ifndef HVGATE_POLICY_CHECKER_H
#define HVGATE_POLICY_CHECKER_H

#include "policy/ast.h"
#include "policy/diag.h"
#include "policy/model.h"

/* Returns the checked policy, or NULL with errors in `d` (also if `d`
 * already held errors from parsing: the policy is then not built). */
struct policy *policy_check(const struct policy_ast *ast, struct policy_diags *d);

/* Tenant isolation: a pass rule of one tenant that can reach a zone of
 * another tenant (through `any`, or addresses that overlap that zone's) must
 * name that zone. Global rules are left to lowering, which never lets `any`
 * join two tenants. Returns 0 or -1 with errors. */
int policy_check_isolation(const struct policy *p, struct policy_diags *d);

/* An address as diagnostics show it: "10.0.1.10", "10.8.0.0/24" or
 * "10.0.0.1-10.0.0.9" (policy/isolation.c). */
void policy_addr_format(const struct policy_addr *a, char *out, size_t n);

#endif
