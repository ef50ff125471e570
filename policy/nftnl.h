/* policy_emit_nftnl(): the IR as libnftnl objects in ONE netlink batch.
 *
 * The batch replaces table inet hvgate atomically, exactly as the nft text of
 * policy_emit_nft() does ("table; delete table; table { ... }"): NEWTABLE,
 * DELTABLE, NEWTABLE, then chains, named sets with their elements, the rules
 * (an anonymous set right before the one rule that uses it). Every object is
 * encoded the way nft 1.0.x encodes the same text (set userdata, interval end
 * elements, register allocation, rule and table comments as userdata), so
 * that `nft list` shows the same thing for either backend. Conventions both
 * backends share: a named set is declared with `typeof` only when a key or
 * data field has no nft type name (ct zone); IR_SET_DYNAMIC sets no kernel
 * flag (the control plane adds elements over netlink); host-order integer
 * interval sets are stored big-endian with a byteorder before the lookup.
 * IR_S_QUEUE is the one construct whose encoding depends on the kernel (see
 * opts->native_queue); nft text cannot express the xt NFQUEUE fallback.
 *
 * Nothing here talks to the kernel: appliance/kernel/nftio.c sends the batch.
 *
 * Every message gets its own sequence number, counted up from opts->seq, and
 * an origin: which IR object made it and the policy location behind it, so
 * a kernel error on sequence number S is reported at the user's line.
 *
 * Ownership: the batch owns its pages and origins; policy_nftnl_batch_free().
 * The origins copy the locations; their `file` pointers live in the
 * struct policy_diags of the compilation. Error convention: libhvpolicy's.
 */
#ifndef HVGATE_POLICY_NFTNL_H
#define HVGATE_POLICY_NFTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"
#include "policy/ir.h"

struct nftnl_batch;

struct policy_nftnl_opts {
	uint32_t seq;          /* sequence number of the first message (BATCH_BEGIN) */
	bool native_queue;     /* IR_S_QUEUE as the nft queue expression; else xt NFQUEUE */
	bool expect_genid_set; /* BATCH_BEGIN carries NFNL_BATCH_GENID */
	uint32_t expect_genid;
	bool no_commit; /* leave out BATCH_END: the kernel validates, then aborts */
	bool ack;       /* NLM_F_ACK on every object message (default true) */
};

void policy_nftnl_opts_default(struct policy_nftnl_opts *o);

enum policy_nftnl_kind {
	POLICY_NFTNL_BATCH, /* BATCH_BEGIN / BATCH_END */
	POLICY_NFTNL_TABLE, /* the add / delete / add of the table */
	POLICY_NFTNL_SET,   /* NEWSET */
	POLICY_NFTNL_ELEMS, /* NEWSETELEM (a set may need several) */
	POLICY_NFTNL_CHAIN, /* NEWCHAIN */
	POLICY_NFTNL_RULE,  /* NEWRULE */
};

struct policy_nftnl_origin {
	uint16_t msg_type;         /* NFT_MSG_* or NFNL_MSG_BATCH_* */
	uint8_t kind;              /* enum policy_nftnl_kind */
	bool ack;                  /* the message asked for an ack */
	uint32_t chain, rule, set; /* IR indices; (uint32_t)-1 where none */
	struct policy_loc loc;     /* line 0: generated, no policy location */
};

struct policy_nftnl_batch {
	struct nftnl_batch *batch; /* the pages; see nftnl_batch_iovec() */
	uint32_t first_seq, last_seq;
	struct policy_nftnl_origin *origins;       /* [seq - first_seq] */
	size_t n_messages;                         /* = last_seq - first_seq + 1 */
	size_t n_acks;                             /* messages with NLM_F_ACK */
	size_t bytes;                              /* total length of all pages */
	size_t n_chains, n_rules, n_sets, n_elems; /* IR objects (elements as in the IR) */
};

/* Builds the batch of `t`. Returns 0 and *out, or -1 with errors in `d`
 * (ENOMEM, or an IR the kernel could not be given: a value of the wrong
 * length, a set index out of range). */
int policy_emit_nftnl(const struct ir_table *t, const struct policy_nftnl_opts *o,
		      struct policy_nftnl_batch **out, struct policy_diags *d);

/* The delta from `running` (what the kernel has) to `t` as ONE batch
 * (policy/ir_diff.h says what it changes): deletes first (chains flushed,
 * elements, sets, chains), then new chains, sets, elements, and the rules
 * of every chain made or replaced. The table message is left out, so the
 * table comment stays as the last full replace wrote it. Origins index `t`;
 * objects only `running` has get NO index. -1 with errors in `d` for a diff
 * marked full, ENOMEM or an IR that cannot be encoded. */
struct ir_diff;
int policy_emit_nftnl_delta(const struct ir_table *running, const struct ir_table *t,
			    const struct ir_diff *diff, const struct policy_nftnl_opts *o,
			    struct policy_nftnl_batch **out, struct policy_diags *d);

void policy_nftnl_batch_free(struct policy_nftnl_batch *b);

/* The origin of message `seq`, or NULL if it is not one of this batch. */
const struct policy_nftnl_origin *policy_nftnl_origin(const struct policy_nftnl_batch *b,
						      uint32_t seq);

/* "rule 3 of chain forward", "set addr_v4", "table inet hvgate" into buf. */
void policy_nftnl_origin_describe(const struct policy_nftnl_origin *o, const struct ir_table *t,
				  char *buf, size_t size);

#endif
