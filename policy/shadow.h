/* Shadowed-rule analysis: a rule that can never match because the rules
 * before it (first match wins) already match every packet it could match.
 *
 * Each rule is a box per address family over five dimensions: source zones,
 * source addresses, destination zones, destination addresses and the
 * protocol/port (or ICMP type) space. A rule is shadowed when its boxes minus
 * the boxes of all earlier rules of the same scope (the global rules, or one
 * tenant's) is empty, so coverage by the union of several earlier rules
 * counts. Rules with `limit` cover nothing: they do not always match.
 *
 * Zones are treated as disjoint sets of interfaces (a rule from zone A
 * never covers one from zone B even if their interface patterns overlap),
 * which can miss a shadow but never reports a false one.
 *
 * Before subtracting, a cheap necessary condition is tested: in each
 * dimension the overlapping earlier rules must together cover the rule's
 * extent (a rule from an address-only endpoint is never covered by rules
 * that all name one zone, whatever their addresses).
 *
 * The work per rule is capped (POLICY_SHADOW_MAX_BOXES pieces or
 * POLICY_SHADOW_MAX_INTERVALS intervals of remaining space); a rule whose
 * analysis was cut short gets a note, not an error.
 */
#ifndef HVGATE_POLICY_SHADOW_H
#define HVGATE_POLICY_SHADOW_H

#include "policy/diag.h"
#include "policy/model.h"

/* Pieces of a rule's not-yet-covered space kept at most; past this the
 * analysis of that rule stops (a cost bound, not a semantic limit). */
#define POLICY_SHADOW_MAX_BOXES 512
/* Likewise for the intervals all those pieces hold together (large address
 * sets split into many intervals). */
#define POLICY_SHADOW_MAX_INTERVALS 65536

/* Reports each shadowed rule as an error with a note at the rule(s) that
 * shadow it. Returns 0 or -1 if a rule is shadowed. */
int policy_shadow_check(const struct policy *p, struct policy_diags *d);

#endif
