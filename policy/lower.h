/* Lowering: a checked struct policy -> the IR (policy_lower() in
 * policy/policy.h). The names of the generated ruleset's objects are in
 * policy/ruleset.h; this header adds the rule comments and the ct label
 * bits other parts of hvgate read; docs/ruleset.md describes the layout.
 */
#ifndef HVGATE_POLICY_LOWER_H
#define HVGATE_POLICY_LOWER_H

#include "policy/ruleset.h" /* the chain, set and map names */

/* Comments of generated rules that are not policy rules. */
#define POLICY_COMMENT_BLOCKED         "builtin:blocked"
#define POLICY_COMMENT_CT              "builtin:ct-state"
#define POLICY_COMMENT_CT_INVALID      "builtin:ct-invalid"
#define POLICY_COMMENT_LOOPBACK        "builtin:loopback"
#define POLICY_COMMENT_ND              "builtin:ipv6-nd"
#define POLICY_COMMENT_DHCPV6          "builtin:dhcpv6-client"
#define POLICY_COMMENT_DISPATCH        "builtin:dispatch"
#define POLICY_COMMENT_DEFAULT_BUILTIN "default:builtin"
#define POLICY_COMMENT_INSPECT         "builtin:inspect"
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
/* The DONE decision travels with the verdict: the fast path accepts the
 * deciding packet with this bit added to its mark (NFQA_MARK), and the
 * packet goes on with the next base chain of its hook, inspect-done-HOOK
 * (priority filter + 1), whose one rule `meta mark and 0x00004000 != 0
 * ct label 0 ct label set 1 meta mark set meta mark and 0xffffbfff` sets
 * the DONE label and takes the bit off again (the mark's other bits are
 * the tenants': policy/tenant.h). No conntrack request (the kernel's
 * `ct label set` ORs the bit in, as the conntrack update did). */
#define POLICY_MARK_INSPECT_DONE 0x4000u

#define POLICY_CT_LABEL_PENDING    0
#define POLICY_CT_LABEL_DONE       1
#define POLICY_CT_LABEL_BLOCKED    2
#define POLICY_CT_LABEL_RULE_SHIFT 8
#define POLICY_CT_LABEL_RULE_BITS  16

/* Burst of `limit` when the policy gives none: nft's own default (the
 * limit statement of nftables' parser uses 5 packets), made explicit so both
 * backends send the same value. */
#define POLICY_LIMIT_BURST_DEFAULT 5

#endif
