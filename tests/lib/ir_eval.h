/* A small evaluator of the IR (policy/ir.h) for the differential tests:
 * what a ruleset decides for one packet, evaluated the way the kernel's
 * nf_tables does (rules in order, first terminal verdict wins, jump returns,
 * goto replaces, a map lookup that misses falls through).
 *
 * It models one packet as the register loads see it; what the kernel would
 * read from other header bytes (th dport of an ICMP packet) is simply the
 * packet's own field, the same for every form of a ruleset, which is all a
 * differential test needs. `limit` statements pass or stop as the packet's
 * limit_pass says.
 *
 * The trace names every counter (by rule comment), log and reject on the
 * way, then the verdict: two forms of one ruleset agree on a packet when
 * their traces are equal. Not thread-safe; no allocation per packet.
 */
#ifndef HVGATE_TESTS_IR_EVAL_H
#define HVGATE_TESTS_IR_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/ir.h"

struct ir_packet {
	uint8_t nfproto; /* NFPROTO_IPV4 / NFPROTO_IPV6 */
	uint8_t l4proto;
	char iif[16], oif[16];
	uint8_t saddr[16], daddr[16]; /* IPv4: the first 4 bytes */
	uint16_t sport, dport;        /* host order */
	uint8_t icmp_type;
	uint32_t ct_state; /* NF_CT_STATE_BIT(...) */
	uint32_t mark, ct_mark;
	uint16_t ct_zone;
	bool limit_pass;
};

#define IR_EVAL_TRACE_MAX 4096

struct ir_eval_result {
	enum ir_verdict_kind verdict; /* IR_V_ACCEPT or IR_V_DROP (reject too) */
	char trace[IR_EVAL_TRACE_MAX];
	size_t trace_len;
	bool overflow; /* trace cut, or jumps nested too deep */
};

/* Evaluates `chain` of t (a base chain: its policy ends it) for p. */
void ir_eval(const struct ir_table *t, const char *chain, const struct ir_packet *p,
	     struct ir_eval_result *out);

#endif
