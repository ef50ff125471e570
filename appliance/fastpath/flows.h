/* The fast path's flow table (struct fp_flows, appliance/fastpath/inspect.h):
 * the entries of flows under inspection and closed markers, keyed by
 * struct fp_flow_key (a conntrack id, or a tuple and zone), in one array with hash chains and two
 * lists (least recently seen first). Internal to the fast path: the judge (inspect.c) reads and
 * writes the entries; nothing else should. Not thread-safe: one table per
 * worker. */
#ifndef HVGATE_APPLIANCE_FASTPATH_FLOWS_H
#define HVGATE_APPLIANCE_FASTPATH_FLOWS_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "appliance/fastpath/inspect.h"

/* One flow under inspection. Entries live in one array; `next` chains a
 * hash bucket, `older`/`newer` the entry's list (least recently seen first),
 * all as indexes, FLOW_NONE ending a list. */
#define FLOW_NONE UINT32_MAX

/* How long the entry of a TCP flow whose sender closed it (FIN) stays, as a
 * marker: the sender's last ACK follows within a round trip, and without
 * the marker it would open a new entry that idles for FP_IDLE_SECONDS. */
#define FLOW_CLOSED_SECONDS 5

struct flow {
	struct fp_flow_key key;
	uint32_t next, older, newer;
	uint64_t last_seen;
	bool closed; /* on the closed list: a marker, not inspected any more */
	bool has_seq;
	bool has_ts;           /* ts_recent holds a timestamp */
	bool unverified;       /* took a segment with a signature it cannot check */
	bool seeded;           /* opened with what its SYN told (fp_flows_seed_syn) */
	bool has_ack;          /* acked holds an acknowledgement number */
	bool has_peer_isn;     /* seeded with the peer's SYN-ACK: peer_isn holds its ISN */
	uint8_t ttl;           /* the highest TTL / hop limit of the flow's packets */
	uint32_t isn;          /* seeded: the SYN's sequence number */
	uint32_t peer_isn;     /* has_peer_isn: the SYN-ACK's sequence number */
	uint32_t acked;        /* the newest acknowledgement number of a segment taken */
	uint32_t ts_recent;    /* the newest TSval of a segment taken */
	uint32_t base_seq;     /* the stream's first byte */
	uint32_t next_seq;     /* the next byte expected (after a FIN or RST: its number) */
	uint32_t data_packets; /* TCP segments with new data, or UDP datagrams */
	uint8_t *buf;          /* FP_INSPECT_BYTES, TCP only, allocated at first data */
	size_t buf_len;
};

struct flow_list {
	uint32_t oldest, newest;
};

struct fp_flows {
	struct flow *flows;
	uint32_t cap;
	uint32_t count;    /* flows under inspection (not closed markers) */
	uint32_t *buckets; /* n_buckets, a power of two */
	/* Mixed into the bucket hash: a tuple key is chosen by whoever sends
	 * the packets, and must not let them pile their flows into one chain
	 * that every packet walks. */
	uint32_t seed;
	uint32_t n_buckets;
	uint32_t free_head; /* unused entries chained by `next` */
	struct flow_list idle, closed;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
};

/* The entry of key, or FLOW_NONE. */
uint32_t fp_flow_find(const struct fp_flows *ft, const struct fp_flow_key *key);
/* A new entry for key (the oldest closed marker gives way if the table
 * is full), or FLOW_NONE. */
uint32_t fp_flow_add(struct fp_flows *ft, const struct fp_flow_key *key, uint64_t now);
void fp_flow_remove(struct fp_flows *ft, uint32_t i);
/* Turns a flow into a closed marker, or a marker back into a fresh flow. */
void fp_flow_set_closed(struct fp_flows *ft, uint32_t i, bool closed, uint64_t now);
/* Ends a flow's stream: the entry becomes a closed marker that keeps the
 * stream's bytes and end for FLOW_CLOSED_SECONDS. */
void fp_flow_end(struct fp_flows *ft, uint32_t i, uint64_t now);
/* Moves an entry out of / onto its list (to the newest end). */
void fp_list_unlink(struct fp_flows *ft, uint32_t i);
void fp_list_push(struct fp_flows *ft, uint32_t i);

#endif
