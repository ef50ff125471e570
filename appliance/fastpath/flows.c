/* The fast path's flow table (appliance/fastpath/flows.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "appliance/fastpath/flows.h"
#include "policy/hash.h"

/* PCRE2's backtracking budget per match call: a pattern written badly
 * (nested quantifiers) must cost a packet a bounded time, not a worker.
 * PCRE2's default match limit is 10,000,000; 4 KiB of text needs far less. */
#define FP_MATCH_LIMIT 200000
#define FP_DEPTH_LIMIT 10000

/* ---- the flow table ---- */

struct fp_flows *fp_flows_new(size_t max_flows)
{
	struct fp_flows *ft = calloc(1, sizeof(*ft));

	if (!ft)
		return NULL;
	if (!max_flows || max_flows > FP_MAX_FLOWS)
		max_flows = FP_MAX_FLOWS;
	ft->cap = (uint32_t)max_flows;
	for (ft->n_buckets = 16; ft->n_buckets < ft->cap; ft->n_buckets *= 2)
		;
	ft->flows = calloc(ft->cap, sizeof(*ft->flows));
	ft->buckets = malloc(ft->n_buckets * sizeof(*ft->buckets));
	ft->md = pcre2_match_data_create(1, NULL);
	ft->mctx = pcre2_match_context_create(NULL);
	if (!ft->flows || !ft->buckets || !ft->md || !ft->mctx) {
		fp_flows_free(ft);
		return NULL;
	}
	/* without randomness the table still works, only more predictably */
	if (getrandom(&ft->seed, sizeof(ft->seed), GRND_NONBLOCK) != sizeof(ft->seed))
		ft->seed = (uint32_t)(uintptr_t)ft;
	pcre2_set_match_limit(ft->mctx, FP_MATCH_LIMIT);
	pcre2_set_depth_limit(ft->mctx, FP_DEPTH_LIMIT);
	for (uint32_t i = 0; i < ft->n_buckets; i++)
		ft->buckets[i] = FLOW_NONE;
	for (uint32_t i = 0; i < ft->cap; i++)
		ft->flows[i].next = i + 1 < ft->cap ? i + 1 : FLOW_NONE;
	ft->free_head = 0;
	ft->idle.oldest = ft->idle.newest = FLOW_NONE;
	ft->closed.oldest = ft->closed.newest = FLOW_NONE;
	return ft;
}

void fp_flows_free(struct fp_flows *ft)
{
	if (!ft)
		return;
	if (ft->flows)
		for (uint32_t i = 0; i < ft->cap; i++)
			free(ft->flows[i].buf);
	free(ft->flows);
	free(ft->buckets);
	pcre2_match_data_free(ft->md);
	pcre2_match_context_free(ft->mctx);
	free(ft);
}

size_t fp_flows_count(const struct fp_flows *ft)
{
	return ft->count;
}

static uint32_t bucket_of(const struct fp_flows *ft, const struct fp_flow_key *key)
{
	/* FNV-1a over the whole key (its padding zeroed: fp_flow_key_*),
	 * from the table's own random seed */
	const uint8_t *b = (const uint8_t *)key;
	uint32_t h = POLICY_FNV32_OFFSET_BASIS ^ ft->seed;
	for (size_t i = 0; i < sizeof(*key); i++)
		h = policy_fnv32_byte(h, b[i]);
	return h & (ft->n_buckets - 1);
}

uint32_t fp_flow_find(const struct fp_flows *ft, const struct fp_flow_key *key)
{
	for (uint32_t i = ft->buckets[bucket_of(ft, key)]; i != FLOW_NONE; i = ft->flows[i].next)
		if (!memcmp(&ft->flows[i].key, key, sizeof(*key)))
			return i;
	return FLOW_NONE;
}

static struct flow_list *list_of(struct fp_flows *ft, uint32_t i)
{
	return ft->flows[i].closed ? &ft->closed : &ft->idle;
}

void fp_list_unlink(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	struct flow_list *l = list_of(ft, i);

	if (f->older != FLOW_NONE)
		ft->flows[f->older].newer = f->newer;
	else
		l->oldest = f->newer;
	if (f->newer != FLOW_NONE)
		ft->flows[f->newer].older = f->older;
	else
		l->newest = f->older;
}

void fp_list_push(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	struct flow_list *l = list_of(ft, i);

	f->older = l->newest;
	f->newer = FLOW_NONE;
	if (l->newest != FLOW_NONE)
		ft->flows[l->newest].newer = i;
	else
		l->oldest = i;
	l->newest = i;
}

void fp_flow_remove(struct fp_flows *ft, uint32_t i)
{
	struct flow *f = &ft->flows[i];
	uint32_t *link = &ft->buckets[bucket_of(ft, &f->key)];

	while (*link != i)
		link = &ft->flows[*link].next;
	*link = f->next;
	fp_list_unlink(ft, i);
	if (!f->closed)
		ft->count--;
	uint8_t *buf = f->buf; /* kept for the entry's next flow */
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->next = ft->free_head;
	ft->free_head = i;
}

/* Turns a flow into a closed marker, or a marker back into a fresh flow. */
void fp_flow_set_closed(struct fp_flows *ft, uint32_t i, bool closed, uint64_t now)
{
	struct flow *f = &ft->flows[i];

	fp_list_unlink(ft, i);
	if (closed)
		ft->count--;
	else
		ft->count++;
	f->closed = closed;
	f->has_seq = false;
	f->has_ts = false;
	f->has_ack = false;
	f->unverified = false;
	f->seeded = false;
	f->has_peer_isn = false;
	f->ttl = 0;
	f->data_packets = 0;
	f->buf_len = 0;
	f->last_seen = now;
	fp_list_push(ft, i);
}

void fp_flows_expire(struct fp_flows *ft, uint64_t now, struct fp_stats *st)
{
	while (ft->idle.oldest != FLOW_NONE &&
	       ft->flows[ft->idle.oldest].last_seen + FP_IDLE_SECONDS <= now) {
		fp_flow_remove(ft, ft->idle.oldest);
		st->expired++;
	}
	while (ft->closed.oldest != FLOW_NONE &&
	       ft->flows[ft->closed.oldest].last_seen + FLOW_CLOSED_SECONDS <= now)
		fp_flow_remove(ft, ft->closed.oldest);
}

uint32_t fp_flow_add(struct fp_flows *ft, const struct fp_flow_key *key, uint64_t now)
{
	/* A full table gives up the oldest closed marker before a new flow. */
	if (ft->free_head == FLOW_NONE && ft->closed.oldest != FLOW_NONE)
		fp_flow_remove(ft, ft->closed.oldest);
	uint32_t i = ft->free_head;
	if (i == FLOW_NONE)
		return FLOW_NONE;
	struct flow *f = &ft->flows[i];
	ft->free_head = f->next;
	memcpy(&f->key, key, sizeof(*key)); /* padding too: keys are compared whole */
	f->last_seen = now;
	uint32_t b = bucket_of(ft, key);
	f->next = ft->buckets[b];
	ft->buckets[b] = i;
	fp_list_push(ft, i);
	ft->count++;
	return i;
}

/* A FIN or RST that the receiver takes ends the stream: the entry stays a
 * while as a closed marker that still knows the stream's bytes and its
 * end, so that nothing after the end starts a stream afresh. */
void fp_flow_end(struct fp_flows *ft, uint32_t i, uint64_t now)
{
	struct flow *f = &ft->flows[i];

	fp_list_unlink(ft, i);
	ft->count--;
	f->closed = true;
	f->last_seen = now;
	fp_list_push(ft, i);
}
