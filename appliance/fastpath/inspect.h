/* The judgement of the inspection fast path: parse one packet that the
 * kernel queued, keep the flow's payload in order, run the inspect rule's
 * content matches and say what to do with the packet and the flow.
 *
 * Pure: no I/O, no threads, no clock (the caller passes `now`). One
 * struct fp_flows per worker thread (it also holds the worker's PCRE2 match
 * scratch); a struct fp_ruleset is read-only once built and may be shared by
 * any number of workers. docs/fastpath.md describes the behaviour.
 *
 * Error convention: constructors return NULL (with a message in `err` where
 * one is taken); fp_judge cannot fail, it counts what it could not judge in
 * struct fp_stats: a packet it cannot parse is dropped (FP_DROP_SEGMENT),
 * one it has no rule or room for passes (FP_DONE).
 */
#ifndef HVGATE_APPLIANCE_INSPECT_H
#define HVGATE_APPLIANCE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/fastpath/packet.h"
#include "policy/model.h"

/* Flows one table keeps at once; the fast path divides it among its
 * workers. Each flow under inspection holds at most FP_INSPECT_BYTES of
 * payload, so the worst case is FP_MAX_FLOWS * FP_INSPECT_BYTES = 256 MiB. */
#define FP_MAX_FLOWS 65536
/* A flow that sent nothing for this long is forgotten (the kernel's
 * established TCP timeout is days; a pending flow that went quiet this long
 * is better judged afresh than kept). */
#define FP_IDLE_SECONDS 60
/* The inspection window: bytes of a TCP stream kept and matched, and UDP
 * datagrams judged, before the flow is cleared without a decision.
 * Requests and their headers fit in 4 KiB. */
#define FP_INSPECT_BYTES   4096
#define FP_INSPECT_PACKETS 16
/* Bytes of struct fp_event's copies of the rule id and log prefix. */
#define FP_RULE_ID_MAX    96
#define FP_LOG_PREFIX_MAX 128
/* The conntrack label bitmap (nf_conntrack_labels.h: NF_CT_LABELS_MAX_SIZE). */
#define FP_LABEL_BYTES 16

enum fp_verdict {
	FP_CONTINUE,     /* accept; later packets of the flow come here too */
	FP_DONE,         /* accept and set the DONE label: the flow is cleared */
	FP_BLOCK,        /* drop and set the BLOCKED label: the kernel drops the rest */
	FP_DROP_SEGMENT, /* drop this packet only (TCP data past a gap) */
};

struct fp_stats {
	uint64_t packets, bytes;
	uint64_t flows;            /* flow entries created */
	uint64_t done, blocked;    /* verdicts FP_DONE / FP_BLOCK */
	uint64_t segments_dropped; /* FP_DROP_SEGMENT */
	uint64_t malformed;        /* truncated or inconsistent headers */
	uint64_t fragments;        /* IP fragments (nothing to inspect in them) */
	uint64_t unknown_rule;     /* label rule number 0 or past the ruleset */
	uint64_t table_full;       /* no room for a new flow: cleared unjudged */
	uint64_t expired;          /* flow entries dropped after FP_IDLE_SECONDS */
	uint64_t window_done;      /* cleared at the window's end without a match */
	uint64_t events_lost;      /* fast path: event ring full */
	uint64_t verdict_errors;   /* fast path: the kernel refused a verdict or label */
	uint64_t ct_unknown;       /* fast path: no conntrack id or labels for the packet */
	/* TCP normalisation (docs/fastpath.md): packets dropped because ... */
	uint64_t urgent;      /* ... they carry the URG flag */
	uint64_t bad_end;     /* ... a FIN or RST not at the stream's end */
	uint64_t conflicts;   /* ... a copy's bytes differ from those judged */
	uint64_t suspect;     /* ... the receiver would discard them (no ACK, old timestamp, TTL) */
	uint64_t syn_data;    /* ... a SYN carries data */
	uint64_t midstream;   /* ... a new flow that does not start with a SYN */
	uint64_t ext_headers; /* ... more IPv6 extension headers than the parser walks */
	uint64_t unseen_start; /* TCP flows whose SYN the judge does not know: never cleared */
	uint64_t syn_changed;  /* TCP flows whose SYN came again with another ISN: never cleared */
	uint64_t synacks;      /* fast path: peers' SYN-ACKs taken for their ISN (accepted) */
	uint64_t
	    unseen_peer_isn; /* TCP flows whose peer's ISN the judge does not know: never cleared */
	uint64_t peer_isn_changed; /* TCP flows whose peer's SYN-ACK came again with another ISN */
	uint64_t ip_options;       /* ... IP options or extension headers the receiver may refuse */
	uint64_t resets_sent;      /* fast path: resets sent to the ends of blocked TCP flows */
	uint64_t resets_failed;    /* fast path: resets the kernel did not take */
	uint64_t ct_requests;      /* fast path: ctnetlink requests (lookups and label updates) */
	uint64_t
	    after_block; /* fast path: packets of a flow blocked while they were queued, dropped */
};

/* What a deciding match reports (every match that matches decides). */
struct fp_event {
	uint32_t ct_id;
	char rule_id[FP_RULE_ID_MAX];
	size_t rule;               /* inspect rule number, from 1 */
	size_t match;              /* index of the match in the rule's inspect block, from 0 */
	enum policy_action action; /* POLICY_PASS or POLICY_BLOCK */
	bool log;                  /* the match has `log` */
	char log_prefix[FP_LOG_PREFIX_MAX]; /* "" when the match has none */
	int family;                         /* AF_INET or AF_INET6 */
	uint8_t protocol;                   /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t src[16], dst[16];           /* v4: the first 4 bytes */
	uint16_t sport, dport;
	/* TCP: the next byte the receiver expects of the sender (the deciding
	 * segment's first new byte) and the sender's acknowledgement number
	 * (the next byte the sender expects): where resets are taken. */
	uint32_t tcp_next_seq, tcp_ack;
};

struct fp_ruleset;
struct fp_flows;

/* What the flow table knows a flow by: its conntrack id (with the queue's
 * conntrack glue every packet brings it), or its tuple and conntrack zone
 * (over ctnetlink: learning the id costs a round trip to the kernel, the
 * tuple comes with the packet). Filled by fp_flow_key_ct or
 * fp_flow_key_tuple, which zero it first: keys are hashed and compared
 * whole, padding included. */
struct fp_flow_key {
	struct fp_tuple tuple; /* zeroed for a conntrack id */
	uint32_t ct_id;        /* 0 for a tuple */
	uint16_t zone;
};

void fp_flow_key_ct(struct fp_flow_key *key, uint32_t ct_id);
/* 0, or -EINVAL for a packet without a tuple (fp_packet_tuple_of). */
int fp_flow_key_tuple(struct fp_flow_key *key, const struct fp_packet *pk, uint16_t zone);
/* A new connection starts under key (its first packet passed): the entry
 * an earlier connection of the same key left (a stream, a closed marker)
 * is dropped, so that the new stream is judged from its own start. */
void fp_flows_forget(struct fp_flows *ft, const struct fp_flow_key *key);

/* What a TCP flow's SYN told the receiver and the judge did not keep (a
 * bare SYN makes no entry): its timestamp, its hops to live and its
 * initial sequence number; and the receiver's own initial sequence number
 * from its SYN-ACK (the reply direction, which the judge does not see
 * otherwise), without which a segment the receiver discards for its
 * acknowledgement number cannot be told from the real one. */
struct fp_syn_info {
	bool has_ts;
	uint32_t tsval;
	uint8_t ttl;
	uint32_t isn;
	bool has_peer_isn;  /* peer_isn holds the SYN-ACK's sequence number */
	bool peer_conflict; /* two SYN-ACKs with different ISNs: none is kept */
	uint32_t peer_isn;
};
/* Whether pk is a bare SYN (no ACK, no data) that the receiver cannot
 * discard for a reason the judge does not see (a TCP-MD5 or TCP-AO
 * option); then *syn is what it told. */
bool fp_syn_info_of(const struct fp_packet *pk, struct fp_syn_info *syn);
/* Whether pk is a bare SYN-ACK (no data) that the receiver of the flow's
 * SYN could have sent; then *isn is its sequence number. */
bool fp_synack_isn_of(const struct fp_packet *pk, uint32_t *isn);
/* Records the peer's ISN of a SYN-ACK in *syn. A second SYN-ACK with
 * another ISN leaves none, for good (the client holds one of them and the
 * judge cannot tell which): returns true then, the first time. */
bool fp_syn_info_peer(struct fp_syn_info *syn, uint32_t peer_isn);
/* Given before the flow's second packet is judged: opens its entry with
 * what the SYN told the receiver, so that a copy the receiver discards by
 * it (another start than the ISN's next byte, an older timestamp, fewer
 * hops, an acknowledgement number older than the peer's ISN + 1 or, before
 * the handshake's ACK, not that one) is known as such, and a decision may
 * clear the flow; without the peer's ISN (syn->has_peer_isn false) the flow
 * is judged but never cleared (unseen_peer_isn). Nothing when
 * the entry exists or the table is full (then the flow is judged as
 * without it: nothing clears it). */
void fp_flows_seed_syn(struct fp_flows *ft, const struct fp_flow_key *key,
		       const struct fp_syn_info *syn, uint64_t now, struct fp_stats *st);

/* One entry per rule of `p` with an inspect block, in policy order (entry i
 * is inspect rule number i + 1), its matches compiled (JIT where the
 * library has it). A policy without inspect rules gives an empty ruleset.
 * NULL on failure with a message in err. Free with fp_ruleset_free. */
struct fp_ruleset *fp_ruleset_build(const struct policy *p, char *err, size_t errsz);
void fp_ruleset_free(struct fp_ruleset *rs);
/* The conntrack zone of the tenant whose routing mark a packet carries
 * (policy/tenant.h: the upper 16 bits), 0 (the default zone) if none. */
uint16_t fp_ruleset_zone(const struct fp_ruleset *rs, uint32_t mark);
size_t fp_ruleset_count(const struct fp_ruleset *rs);

/* A flow table for at most max_flows flows (0: FP_MAX_FLOWS), keyed by
 * struct fp_flow_key. NULL on ENOMEM. Not thread-safe: one per worker. */
struct fp_flows *fp_flows_new(size_t max_flows);
void fp_flows_free(struct fp_flows *ft);
size_t fp_flows_count(const struct fp_flows *ft);
/* Forgets flows idle for FP_IDLE_SECONDS or more at `now` (fp_judge also
 * does this as it goes); counted in st->expired. */
void fp_flows_expire(struct fp_flows *ft, uint64_t now, struct fp_stats *st);

/* Judges one packet of the flow with conntrack id ct_id whose labels (the
 * kernel's bitmap: bit n is byte n / 8, value 1 << (n % 8)) name its inspect
 * rule. pkt is the L3 packet (IPv4 or IPv6) of len bytes; now in seconds
 * (monotonic). Counts into st. When a match decides, fills *ev (if ev is not
 * NULL) and sets *has_event (if not NULL); otherwise sets it false. */
enum fp_verdict fp_judge(struct fp_flows *ft, const struct fp_ruleset *rs, uint32_t ct_id,
			 const uint8_t labels[FP_LABEL_BYTES], const uint8_t *pkt, size_t len,
			 uint64_t now, struct fp_stats *st, struct fp_event *ev, bool *has_event);

/* The same over a packet parsed once (fp_packet_parse): the fast path
 * parses each packet once and uses the result for its conntrack lookup
 * too. These three are what an offline evaluator calls: they need no
 * daemon, socket or thread (a struct fp_flows and a struct fp_stats of
 * its own, and `now` of its own choosing). */
enum fp_verdict fp_judge_packet(struct fp_flows *ft, const struct fp_ruleset *rs, uint32_t ct_id,
				const uint8_t labels[FP_LABEL_BYTES], const struct fp_packet *pk,
				uint64_t now, struct fp_stats *st, struct fp_event *ev,
				bool *has_event);
/* The same for a flow known by key (fp_flow_key_tuple); ct_id is only
 * reported in *ev (0: not known). */
enum fp_verdict fp_judge_packet_key(struct fp_flows *ft, const struct fp_ruleset *rs,
				    const struct fp_flow_key *key, uint32_t ct_id,
				    const uint8_t labels[FP_LABEL_BYTES],
				    const struct fp_packet *pk, uint64_t now, struct fp_stats *st,
				    struct fp_event *ev, bool *has_event);
enum fp_verdict fp_judge_first_packet(struct fp_flows *scratch, const struct fp_ruleset *rs,
				      unsigned rule, const struct fp_packet *pk,
				      struct fp_stats *st, struct fp_event *ev, bool *has_event);
enum fp_verdict fp_judge_unknown_packet(const struct fp_packet *pk, struct fp_stats *st);

/* Judges the first packet of inspect rule `rule`'s new flow, one whose
 * connection conntrack cannot show yet (it came on the rule's own queue
 * block), alone in `scratch` (a table of one, emptied after the packet):
 * a TCP packet other than a SYN is dropped (a connection picked up in its
 * middle), the rest as fp_judge does. */
enum fp_verdict fp_judge_first(struct fp_flows *scratch, const struct fp_ruleset *rs, unsigned rule,
			       const uint8_t *pkt, size_t len, struct fp_stats *st,
			       struct fp_event *ev, bool *has_event);
/* A packet of an inspected flow whose connection could not be found:
 * FP_DROP_SEGMENT for one the parser cannot walk (malformed, too many
 * IPv6 extension headers), else FP_CONTINUE (counted as ct_unknown, or a
 * fragment). */
enum fp_verdict fp_judge_unknown(const uint8_t *pkt, size_t len, struct fp_stats *st);

/* Bytes of one reset that fp_tcp_resets builds (an IPv6 and a TCP header). */
#define FP_RESET_MAX 60
/* The two TCP resets that end a flow blocked by `ev` (a TCP event): one to
 * the flow's receiver as if from its sender, at the next byte the receiver
 * expects, and one to the sender as if from the receiver, at the byte the
 * sender acknowledged (RFC 5961 section 3.2: a reset is taken at exactly
 * that byte). Whole IP packets, checksums filled, into buffers of
 * FP_RESET_MAX bytes; their lengths in *len_*. 0, or -EINVAL if ev is not
 * TCP. */
int fp_tcp_resets(const struct fp_event *ev, uint8_t to_receiver[FP_RESET_MAX],
		  size_t *len_receiver, uint8_t to_sender[FP_RESET_MAX], size_t *len_sender);

/* The inspect rule number that labels carry (0: none). */
unsigned fp_label_rule(const uint8_t labels[FP_LABEL_BYTES]);
/* The labels the inspect rule with that number gives a new flow: PENDING
 * and the number's bits (policy/lower.h). */
void fp_labels_pending(uint8_t labels[FP_LABEL_BYTES], unsigned rule);
/* Sets bit n of a label bitmap. */
void fp_label_set(uint8_t labels[FP_LABEL_BYTES], unsigned bit);

#endif
