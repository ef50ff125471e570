/* A small model of conntrack for replaying captures through the evaluator
 * (policy/eval.h, docs/replay.md "What the replay models"): which packets
 * are new, established, related or invalid as the kernel decides it for
 * TCP handshakes (with the kernel's default loose pickup of mid-stream
 * ACKs), UDP request and reply, ICMP echo and ICMP errors about a flow,
 * SCTP associations started by INIT, per-tenant conntrack zones (the original direction only, as
 * the ruleset sets them), and the NAT bindings of a flow with their reverse translation. It does
 * not model TCP window tracking, invalid transitions inside a flow, helpers, timeouts or table
 * limits.
 *
 * Ownership: the table owns its flows; policy_eval_ct_free(). Not
 * thread-safe. Error convention: 0, or -ENOMEM.
 */
#ifndef HVGATE_POLICY_EVAL_CT_H
#define HVGATE_POLICY_EVAL_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/eval.h"

/* TCP flags (RFC 9293 section 3.1). */
#define POLICY_EVAL_TCP_FIN 0x01
#define POLICY_EVAL_TCP_SYN 0x02
#define POLICY_EVAL_TCP_RST 0x04
#define POLICY_EVAL_TCP_ACK 0x10

struct policy_eval_tuple {
	int family;
	uint8_t l4proto;
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* ICMP echo: the id in both */
};

/* A decoded packet as the replay sees it. */
struct policy_eval_ct_packet {
	struct policy_eval_packet pkt; /* addresses as on the wire */
	uint8_t tcp_flags;
	int sctp_chunk;                 /* type of the first SCTP chunk, -1: none */
	bool icmp_error;                /* an ICMP error quoting `inner` */
	struct policy_eval_tuple inner; /* the quoted packet's header */
};

struct policy_eval_flow {
	struct policy_eval_tuple orig, reply; /* reply: as the answer arrives */
	uint16_t zone;                        /* original direction */
	size_t tenant;
	bool seen_reply;
	bool masquerade_unknown; /* masquerade to an address not given: match replies by ports */
	bool dnat, snat;
};

struct policy_eval_ct_table {
	struct policy_eval_flow *flows;
	size_t n, cap;
};

/* Where a packet stands: its state for the ruleset, and the flow and
 * direction it belongs to (flow POLICY_NONE: none). */
struct policy_eval_ct_match {
	enum policy_eval_ct state;
	size_t flow;
	bool reply;
	const char *why; /* a short reason for invalid ("SYN/ACK without a connection") */
};

void policy_eval_ct_init(struct policy_eval_ct_table *ct);
void policy_eval_ct_free(struct policy_eval_ct_table *ct);

/* The state of packet `cp` arriving in conntrack zone `zone`. */
void policy_eval_ct_lookup(const struct policy_eval_ct_table *ct,
			   const struct policy_eval_ct_packet *cp, uint16_t zone,
			   struct policy_eval_ct_match *m);

/* Applies the translation the kernel makes before routing to the packet of
 * an existing flow (orig: its destination NAT; reply: the undoing of its
 * source NAT) and sets pkt->nat_bound and ct_tenant. */
void policy_eval_ct_pre(const struct policy_eval_ct_table *ct, const struct policy_eval_ct_match *m,
			struct policy_eval_packet *pkt);

/* The translation after the filter (orig: source NAT; reply: the undoing
 * of destination NAT), on `pkt` as returned by policy_eval_ct_pre(). */
void policy_eval_ct_post(const struct policy_eval_ct_table *ct,
			 const struct policy_eval_ct_match *m, struct policy_eval_packet *pkt);

/* After the evaluator let the packet through: a new flow is created (with
 * the result's NAT; `masq_addr` is the outgoing interface's address for a
 * masquerade, NULL if not known), a reply marks its flow as answered.
 * `wire` is the packet as it arrived. Returns 0 or -ENOMEM. */
int policy_eval_ct_commit(struct policy_eval_ct_table *ct, const struct policy_eval_ct_match *m,
			  const struct policy_eval_packet *wire, const struct policy_eval_result *r,
			  uint16_t zone, const uint8_t *masq_addr);

#endif
