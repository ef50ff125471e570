/* Lowering: a checked struct policy -> the IR (policy_lower() in
 * policy/policy.h). This header names the objects of the generated ruleset
 * that other parts of hvgate look up by name (the daemon adds block-list
 * elements, reads counters); docs/ruleset.md describes the whole layout.
 */
#ifndef HVGATE_POLICY_LOWER_H
#define HVGATE_POLICY_LOWER_H

/* Dynamic block lists, always present, filled by the daemon (hvgate block). */
#define POLICY_SET_BLOCKED4 "blocked4"
#define POLICY_SET_BLOCKED6 "blocked6"
/* Zone-scoped block lists: `oifname . ip[6] saddr`, both ranges (a zone's
 * interface patterns, an address prefix): traffic from the address into the
 * zone, and from the zone to the address, is dropped in forward. */
#define POLICY_SET_BLOCKED_ZONE4 "blocked_zone4"
#define POLICY_SET_BLOCKED_ZONE6 "blocked_zone6"

/* Base chains. */
#define POLICY_CHAIN_INPUT "input"
#define POLICY_CHAIN_FORWARD "forward"
#define POLICY_CHAIN_OUTPUT "output"
#define POLICY_CHAIN_RAW_PREROUTING "raw_prerouting" /* only with `no state` rules */
#define POLICY_CHAIN_RAW_OUTPUT "raw_output"	    /* only with `from self ... no state` */
#define POLICY_CHAIN_NAT_PREROUTING "nat_prerouting"  /* only with NAT */
#define POLICY_CHAIN_NAT_POSTROUTING "nat_postrouting"
#define POLICY_CHAIN_CT_INVALID "ct_invalid" /* counts and drops ct state invalid */
#define POLICY_CHAIN_INSPECT "inspect"	     /* flows under inspection: to the fast path */

/* Zone dispatch maps (docs/ruleset.md): iifname -> from_ZONE (forward),
 * oifname -> ZONE_to_ZONE (in from_ZONE, map to_from_ZONE), iifname ->
 * ZONE_to_self (input), oifname -> self_to_ZONE (output). */
#define POLICY_MAP_ZONE_FROM "zone_from"
#define POLICY_MAP_SELF_FROM "self_from"
#define POLICY_MAP_SELF_TO "self_to"

/* The name that stands for "an interface in no zone" in chain names. */
#define POLICY_UNZONED "unzoned"

/* Comments of generated rules that are not policy rules. */
#define POLICY_COMMENT_BLOCKED "builtin:blocked"
#define POLICY_COMMENT_CT "builtin:ct-state"
#define POLICY_COMMENT_CT_INVALID "builtin:ct-invalid"
#define POLICY_COMMENT_LOOPBACK "builtin:loopback"
#define POLICY_COMMENT_ND "builtin:ipv6-nd"
#define POLICY_COMMENT_DHCPV6 "builtin:dhcpv6-client"
#define POLICY_COMMENT_DISPATCH "builtin:dispatch"
#define POLICY_COMMENT_DEFAULT_BUILTIN "default:builtin"
#define POLICY_COMMENT_INSPECT "builtin:inspect"
#define POLICY_COMMENT_INSPECT_BLOCKED "builtin:inspect-blocked"

/* The inspection fast path keeps its state of a flow in conntrack labels
 * (the kernel's 128-bit connlabel bitmap; `ct label N` in nft), not in the
 * ct mark, which belongs to the tenants' routing.
 *
 * The `inspect` rule that accepts a new flow sets PENDING and the bits of
 * its inspect rule number; from then on every packet of the flow in its
 * original direction goes to the fast path's queue (one chain at the top of
 * the filter hooks), until the fast path sets DONE (the flow is cleared:
 * later packets stay in the kernel) or BLOCKED (the kernel drops the rest of
 * the flow). Inspect rule numbers count the policy's rules that have an
 * inspect block, in policy order, from 1; bit RULE_SHIFT + i of the label
 * is bit i of the number.
 *
 * Queues, with Q the first and W workers: the inspect chain sends to
 * Q .. Q+W-1 (block 0); inspect rule k sends the first packet of its new
 * flows to Q + k*W .. Q + k*W + W-1 (block k), where the queue itself names
 * the rule: that packet's connection is not confirmed yet, and a kernel
 * that does not send conntrack data with queued packets cannot give its
 * labels to user space. */
#define POLICY_CT_LABEL_PENDING 0
#define POLICY_CT_LABEL_DONE 1
#define POLICY_CT_LABEL_BLOCKED 2
#define POLICY_CT_LABEL_RULE_SHIFT 8
#define POLICY_CT_LABEL_RULE_BITS 16

/* Burst of `limit` when the policy gives none: nft's own default (the
 * limit statement of nftables' parser uses 5 packets), made explicit so both
 * backends send the same value. */
#define POLICY_LIMIT_BURST_DEFAULT 5

#endif
