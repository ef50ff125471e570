/* The inspection fast path's judgement (appliance/fastpath/inspect.h): the
 * ruleset, the labels, the matches and the TCP / UDP judgement. The flow
 * table is flows.c, packet parsing and resets packet.c. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/fastpath/fields.h"
#include "appliance/fastpath/flows.h"
#include "appliance/fastpath/inspect.h"
#include "policy/lower.h"
#include "policy/tenant.h"

/* Linux's TCP_PAWS_WINDOW (include/net/tcp.h): a timestamp this far behind
 * the newest one the receiver holds still passes its PAWS test. */
#define TCP_PAWS_WINDOW 1

struct fp_match {
	pcre2_code *code; /* NULL: compare `name` */
	enum policy_inspect_field field;
	char *name;
	bool suffix;
	enum policy_action action;
	bool log;
	char *log_prefix; /* NULL: none */
};

struct fp_rule {
	char id[FP_RULE_ID_MAX];
	struct fp_match *matches;
	size_t n_matches;
};

/* A tenant's routing mark and conntrack zone (policy/tenant.h). */
struct fp_zone {
	uint32_t mark;
	uint16_t zone;
};

struct fp_ruleset {
	struct fp_rule *rules;
	size_t n_rules;
	struct fp_zone *zones;
	size_t n_zones;
};

/* ---- the ruleset ---- */

static void rule_free(struct fp_rule *r)
{
	for (size_t i = 0; i < r->n_matches; i++) {
		pcre2_code_free(r->matches[i].code);
		free(r->matches[i].name);
		free(r->matches[i].log_prefix);
	}
	free(r->matches);
}

void fp_ruleset_free(struct fp_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n_rules; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	free(rs->zones);
	free(rs);
}

uint16_t fp_ruleset_zone(const struct fp_ruleset *rs, uint32_t mark)
{
	for (size_t i = 0; rs && i < rs->n_zones; i++)
		if (rs->zones[i].mark == (mark & POLICY_TENANT_MARK_MASK))
			return rs->zones[i].zone;
	return 0;
}

size_t fp_ruleset_count(const struct fp_ruleset *rs)
{
	return rs ? rs->n_rules : 0;
}

static int match_build(struct fp_match *m, const struct policy_inspect_match *pm, char *err,
		       size_t errsz)
{
	int code;
	PCRE2_SIZE off;

	m->action = pm->action;
	m->field = pm->field;
	m->suffix = pm->suffix;
	m->log = pm->log;
	if ((pm->log_prefix && !(m->log_prefix = strdup(pm->log_prefix))) ||
	    (pm->name && !(m->name = strdup(pm->name)))) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (!pm->regex)
		return 0;
	m->code = pcre2_compile((PCRE2_SPTR)pm->regex, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (!m->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errsz, "/%s/: %s at offset %zu", pm->regex, (const char *)msg,
			 (size_t)off);
		return -EINVAL;
	}
	/* Without JIT (or where it is refused) the interpreter does the same. */
	(void)pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE);
	return 0;
}

static int rule_build(struct fp_rule *r, const struct policy_rule *pr, char *err, size_t errsz)
{
	snprintf(r->id, sizeof(r->id), "%s", pr->id);
	r->matches = calloc(pr->n_inspect, sizeof(*r->matches));
	if (!r->matches) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < pr->n_inspect; i++) {
		r->n_matches = i + 1;
		if (match_build(&r->matches[i], &pr->inspect[i], err, errsz))
			return -EINVAL;
	}
	return 0;
}

struct fp_ruleset *fp_ruleset_build(const struct policy *p, char *err, size_t errsz)
{
	struct fp_ruleset *rs = calloc(1, sizeof(*rs));
	size_t n = 0;

	if (!rs) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].n_inspect > 0;
	if (n && !(rs->rules = calloc(n, sizeof(*rs->rules)))) {
		snprintf(err, errsz, "out of memory");
		free(rs);
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		if (!p->rules[i].n_inspect)
			continue;
		rs->n_rules++;
		if (rule_build(&rs->rules[rs->n_rules - 1], &p->rules[i], err, errsz)) {
			fp_ruleset_free(rs);
			return NULL;
		}
	}
	if (p->n_tenants && !(rs->zones = calloc(p->n_tenants, sizeof(*rs->zones)))) {
		snprintf(err, errsz, "out of memory");
		fp_ruleset_free(rs);
		return NULL;
	}
	for (size_t i = 0; i < p->n_tenants; i++)
		rs->zones[rs->n_zones++] =
		    (struct fp_zone){ policy_tenant_mark(&p->tenants[i]), p->tenants[i].ct_zone };
	return rs;
}

/* ---- labels ---- */

static bool label_bit(const uint8_t labels[FP_LABEL_BYTES], unsigned bit)
{
	return labels[bit / 8] & (1u << (bit % 8));
}

void fp_label_set(uint8_t labels[FP_LABEL_BYTES], unsigned bit)
{
	if (bit < FP_LABEL_BYTES * 8)
		labels[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

void fp_labels_pending(uint8_t labels[FP_LABEL_BYTES], unsigned rule)
{
	memset(labels, 0, FP_LABEL_BYTES);
	fp_label_set(labels, POLICY_CT_LABEL_PENDING);
	for (unsigned i = 0; i < POLICY_CT_LABEL_RULE_BITS; i++)
		if (rule >> i & 1)
			fp_label_set(labels, POLICY_CT_LABEL_RULE_SHIFT + i);
}

unsigned fp_label_rule(const uint8_t labels[FP_LABEL_BYTES])
{
	unsigned n = 0;

	for (unsigned i = 0; i < POLICY_CT_LABEL_RULE_BITS; i++)
		if (label_bit(labels, POLICY_CT_LABEL_RULE_SHIFT + i))
			n |= 1u << i;
	return n;
}

/* ---- matching ---- */

static void fill_event(struct fp_event *ev, uint32_t ct_id, unsigned rule_no,
		       const struct fp_rule *r, size_t mi, const struct fp_packet *pk)
{
	const struct fp_match *m = &r->matches[mi];

	memset(ev, 0, sizeof(*ev));
	ev->ct_id = ct_id;
	snprintf(ev->rule_id, sizeof(ev->rule_id), "%s", r->id);
	ev->rule = rule_no;
	ev->match = mi;
	ev->action = m->action;
	ev->log = m->log;
	snprintf(ev->log_prefix, sizeof(ev->log_prefix), "%s", m->log_prefix ? m->log_prefix : "");
	ev->family = pk->family;
	ev->protocol = pk->protocol;
	memcpy(ev->src, pk->src, sizeof(ev->src));
	memcpy(ev->dst, pk->dst, sizeof(ev->dst));
	ev->sport = pk->sport;
	ev->dport = pk->dport;
	ev->tcp_ack = pk->ack;
}

enum match_result { MATCH_NO, MATCH_YES, MATCH_PENDING };

/* A match that errs (its backtracking budget spent) counts as not
 * matching. */
static bool regex_matches(struct fp_flows *ft, const struct fp_match *m, const void *text,
			  size_t len)
{
	return pcre2_match(m->code, (PCRE2_SPTR)text, len, 0, 0, ft->md, ft->mctx) >= 0;
}

static bool value_matches(struct fp_flows *ft, const struct fp_match *m, const char *value)
{
	if (m->code)
		return regex_matches(ft, m, value, strlen(value));
	if (m->field == POLICY_INSPECT_HTTP_PATH)
		return !strcmp(m->name, value);
	return fp_name_matches(m->name, m->suffix, value);
}

/* docs/fastpath.md, "Protocol fields": what the parser's state means for a
 * match. A message the parser refuses (or that the window ends inside)
 * cannot be shown to be harmless: a block match takes it, a pass match
 * does not. */
static enum match_result field_state(const struct fp_match *m, enum fp_field_state st,
				     bool window_full)
{
	if (st == FP_FIELD_PENDING && !window_full)
		return MATCH_PENDING;
	if (st == FP_FIELD_PENDING || st == FP_FIELD_MALFORMED)
		return m->action == POLICY_BLOCK ? MATCH_YES : MATCH_NO;
	return MATCH_NO;
}

/* Every request of the stream so far, one after another. */
static enum match_result http_match(struct fp_flows *ft, const struct fp_match *m,
				    const uint8_t *text, size_t len, bool window_full)
{
	struct fp_http_request req;

	for (size_t off = 0; off < len;) {
		enum fp_field_state st = fp_http_request(text + off, len - off, &req);
		if (st != FP_FIELD_FOUND)
			return field_state(m, st, window_full);
		const char *v = m->field == POLICY_INSPECT_HTTP_HOST
				    ? (req.has_host ? req.host : NULL)
				    : (req.has_path ? req.path : NULL);
		if (v && value_matches(ft, m, v))
			return MATCH_YES;
		off += req.end;
	}
	return len ? MATCH_NO : MATCH_PENDING;
}

/* Every DNS message of a TCP stream so far. */
static enum match_result dns_tcp_match(struct fp_flows *ft, const struct fp_match *m,
				       const uint8_t *text, size_t len, bool window_full)
{
	/* zeroed: PCRE2's JIT may read a little past the subject's end */
	char name[FP_NAME_MAX] = "";
	size_t end = 0;

	for (size_t off = 0; off < len; off += end) {
		enum fp_field_state st = fp_dns_tcp_qname(text + off, len - off, name, &end);
		if (st != FP_FIELD_FOUND)
			return field_state(m, st, window_full);
		if (value_matches(ft, m, name))
			return MATCH_YES;
	}
	return len ? MATCH_NO : MATCH_PENDING;
}

/* Whether match m decides on text: a TCP stream's bytes so far (tcp) or
 * one datagram. */
static enum match_result match_one(struct fp_flows *ft, const struct fp_match *m, bool tcp,
				   const uint8_t *text, size_t len, bool window_full)
{
	/* zeroed: PCRE2's JIT may read a little past the subject's end */
	char name[FP_NAME_MAX] = "";
	enum fp_field_state st;

	switch (m->field) {
	case POLICY_INSPECT_CONTENT: return regex_matches(ft, m, text, len) ? MATCH_YES : MATCH_NO;
	case POLICY_INSPECT_TLS_SNI:
		if (!tcp)
			return MATCH_NO; /* QUIC is not parsed: docs/fastpath.md */
		st = fp_tls_sni(text, len, name);
		break;
	case POLICY_INSPECT_HTTP_HOST:
	case POLICY_INSPECT_HTTP_PATH:
		return tcp ? http_match(ft, m, text, len, window_full) : MATCH_NO;
	case POLICY_INSPECT_DNS_QNAME:
		if (tcp)
			return dns_tcp_match(ft, m, text, len, window_full);
		st = fp_dns_qname(text, len, name);
		break;
	default: return MATCH_NO;
	}
	if (st == FP_FIELD_FOUND)
		return value_matches(ft, m, name) ? MATCH_YES : MATCH_NO;
	return field_state(m, st, window_full);
}

/* The index of the first match of r that decides on text, -1 for none,
 * -2 when a match before any deciding one waits for more of its message
 * (first match wins: a later match may not decide before it). */
static long run_matches(struct fp_flows *ft, const struct fp_rule *r, bool tcp, const uint8_t *text,
			size_t len, bool window_full)
{
	for (size_t i = 0; i < r->n_matches; i++) {
		switch (match_one(ft, &r->matches[i], tcp, text, len, window_full)) {
		case MATCH_YES: return (long)i;
		case MATCH_PENDING: return -2;
		case MATCH_NO: break;
		}
	}
	return -1;
}

/* ---- the judgement ---- */

struct judge {
	struct fp_flows *ft;
	const struct fp_ruleset *rs;
	const struct fp_flow_key *key;
	uint32_t ct_id; /* for the event */
	unsigned rule_no;
	uint64_t now;
	uint32_t next_seq; /* TCP: the flow's next byte before this segment */
	struct fp_stats *st;
	struct fp_event *ev;
	bool *has_event;
	const struct fp_packet *pk;
};

/* Runs the rule's matches over text. may_clear false: no decision that
 * clears the flow (a pass match, the window's end) is taken on it. */
static enum fp_verdict decide(struct judge *j, const uint8_t *text, size_t len, bool window_full,
			      bool may_clear)
{
	const struct fp_rule *r = &j->rs->rules[j->rule_no - 1];
	long mi = run_matches(j->ft, r, j->pk->protocol == IPPROTO_TCP, text, len, window_full);

	if (mi == -2)
		return FP_CONTINUE;
	if (mi < 0)
		return window_full && may_clear ? FP_DONE : FP_CONTINUE;
	if (r->matches[mi].action != POLICY_BLOCK && !may_clear)
		return FP_CONTINUE;
	if (j->ev) {
		fill_event(j->ev, j->ct_id, j->rule_no, r, (size_t)mi, j->pk);
		j->ev->tcp_next_seq = j->next_seq;
		if (j->has_event)
			*j->has_event = true;
	}
	return r->matches[mi].action == POLICY_BLOCK ? FP_BLOCK : FP_DONE;
}

static uint32_t flow_get(struct judge *j, bool *full)
{
	uint32_t i = fp_flow_find(j->ft, j->key);

	*full = false;
	if (i != FLOW_NONE && j->ft->flows[i].closed) {
		fp_flow_set_closed(j->ft, i, false, j->now);
		j->st->flows++;
		return i;
	}
	if (i != FLOW_NONE) {
		fp_list_unlink(j->ft, i);
		j->ft->flows[i].last_seen = j->now;
		fp_list_push(j->ft, i);
		return i;
	}
	i = fp_flow_add(j->ft, j->key, j->now);
	if (i == FLOW_NONE) {
		*full = true;
		j->st->table_full++;
		return FLOW_NONE;
	}
	j->st->flows++;
	return i;
}

static enum fp_verdict judge_udp(struct judge *j)
{
	bool full;
	uint32_t i = flow_get(j, &full);

	if (i == FLOW_NONE)
		return FP_DONE;
	struct flow *f = &j->ft->flows[i];
	f->data_packets++;
	enum fp_verdict v = decide(j, j->pk->payload, j->pk->payload_len,
				   f->data_packets >= FP_INSPECT_PACKETS, true);
	if (v == FP_DONE && f->data_packets >= FP_INSPECT_PACKETS && !*j->has_event)
		j->st->window_done++;
	if (v != FP_CONTINUE)
		fp_flow_remove(j->ft, i);
	return v;
}

/* The sequence number of a segment's first data byte: a SYN takes one
 * number before its data (RFC 9293 section 3.4). */
static uint32_t data_seq(const struct fp_packet *pk)
{
	return pk->seq + ((pk->tcp_flags & FP_TCP_SYN) ? 1 : 0);
}

/* The stream starts where the first packet of the flow seen here says: the
 * handshake's last ACK, or the first data. */
static void tcp_start(struct flow *f, const struct fp_packet *pk)
{
	if (f->has_seq)
		return;
	f->has_seq = true;
	f->base_seq = f->next_seq = data_seq(pk);
}

static enum fp_verdict drop(uint64_t *counter)
{
	(*counter)++;
	return FP_DROP_SEGMENT;
}

/* Whether the segment acknowledges what the receiver never sent, by its
 * ISN (from its SYN-ACK): before the handshake's ACK the receiver takes
 * only an ACK of its ISN + 1 (RFC 9293 section 3.10.7.3; Linux:
 * tcp_check_req answers any other with a reset), and after it none older
 * than that (section 3.10.7.4). Conntrack lets ACKs about 64 KiB old by,
 * and without the ISN a sender's first ACK could be any old number. */
static bool tcp_ack_before_peer(const struct flow *f, const struct fp_packet *pk)
{
	if (!f->has_peer_isn || !(pk->tcp_flags & FP_TCP_ACK) || (pk->tcp_flags & FP_TCP_RST))
		return false;
	uint32_t first = f->peer_isn + 1;
	if (!f->has_ack)
		return pk->ack != first;
	return (int32_t)(pk->ack - first) < 0;
}

/* Whether the receiver would discard the segment for a reason the judge
 * can see. Such a copy must not change what the judge believes the stream
 * holds, and dropping it costs a real sender nothing. */
static bool tcp_receiver_discards(const struct flow *f, const struct fp_packet *pk)
{
	/* RFC 9293 section 3.10.7.4: a segment without ACK is dropped once
	 * the connection is synchronised (Linux: tcp_rcv_established). */
	if (!(pk->tcp_flags & (FP_TCP_ACK | FP_TCP_RST)))
		return true;
	/* A copy sent with fewer hops to live than the flow's others can die
	 * between here and the receiver. */
	if (f->ttl && pk->ttl < f->ttl)
		return true;
	/* PAWS (RFC 7323 section 5.3): an older timestamp than the newest
	 * taken is discarded; a reset is exempt. */
	if (pk->has_ts && f->has_ts && !(pk->tcp_flags & FP_TCP_RST) &&
	    (int32_t)(f->ts_recent - pk->tsval) > TCP_PAWS_WINDOW)
		return true;
	/* An acknowledgement older than one the sender gave before: Linux
	 * discards a segment whose ACK is older than its oldest unacknowledged
	 * byte by more than it has had acknowledged (RFC 5961 section 5.2;
	 * at a connection's start, by anything), and conntrack lets ACKs 64
	 * KiB old by. A sender's ACKs only grow; a reordered segment is sent
	 * again with the newest. */
	if (f->has_ack && (pk->tcp_flags & FP_TCP_ACK) && !(pk->tcp_flags & FP_TCP_RST) &&
	    (int32_t)(pk->ack - f->acked) < 0)
		return true;
	return tcp_ack_before_peer(f, pk);
}

/* What a segment the judge took tells it about the flow's next ones. */
static void tcp_took(struct flow *f, const struct fp_packet *pk)
{
	if (pk->ttl > f->ttl)
		f->ttl = pk->ttl;
	if (pk->has_ts && !(pk->tcp_flags & FP_TCP_RST) &&
	    (!f->has_ts || (int32_t)(pk->tsval - f->ts_recent) > 0)) {
		f->has_ts = true;
		f->ts_recent = pk->tsval;
	}
	if ((pk->tcp_flags & FP_TCP_ACK) && !(pk->tcp_flags & FP_TCP_RST) &&
	    (!f->has_ack || (int32_t)(pk->ack - f->acked) > 0)) {
		f->has_ack = true;
		f->acked = pk->ack;
	}
}

/* A SYN again before the stream started, with another sequence number
 * than the one the entry was opened with: the receiver holds one of the
 * two (the first it took; a later one if the first was lost or refused),
 * and the judge cannot tell which, so nothing may clear the flow. */
static void tcp_syn_again(struct judge *j)
{
	uint32_t i = fp_flow_find(j->ft, j->key);
	if (i == FLOW_NONE)
		return;
	struct flow *f = &j->ft->flows[i];
	if (f->closed || f->has_seq || !f->seeded || f->isn == j->pk->seq || f->unverified)
		return;
	f->unverified = true;
	j->st->syn_changed++;
}

enum append_result { APPEND_OK, APPEND_GAP, APPEND_UNSEEN, APPEND_CONFLICT };

/* Appends the part of the segment past what the flow has seen. Every copy
 * is judged: the bytes it shares with what the flow kept must be the same
 * (a first copy the receiver discarded must not stand for the second). */
static enum append_result tcp_append(struct flow *f, const struct fp_packet *pk, bool *new_data)
{
	uint32_t seq = data_seq(pk);

	*new_data = false;
	/* Bytes before the stream's start were never seen here: not a
	 * retransmission of what the flow has, but data nobody inspected (or a
	 * sender that opened with a bogus sequence number to make the real
	 * data look old). The window ends long before the distance could wrap. */
	if ((int32_t)(seq - f->base_seq) < 0)
		return APPEND_UNSEEN;
	int32_t ahead = (int32_t)(seq - f->next_seq);
	if (ahead > 0)
		return APPEND_GAP;
	size_t skip = (size_t)(-(int64_t)ahead);
	size_t at = seq - f->base_seq;
	size_t shared = skip < pk->payload_len ? skip : pk->payload_len;
	if (at < f->buf_len) {
		size_t n = f->buf_len - at < shared ? f->buf_len - at : shared;
		if (memcmp(f->buf + at, pk->payload, n))
			return APPEND_CONFLICT;
	}
	if (skip >= pk->payload_len)
		return APPEND_OK; /* a retransmission of what the flow has */
	size_t fresh = pk->payload_len - skip;
	size_t room = FP_INSPECT_BYTES - f->buf_len;
	size_t take = fresh < room ? fresh : room;
	memcpy(f->buf + f->buf_len, pk->payload + skip, take);
	f->buf_len += take;
	f->next_seq += (uint32_t)fresh;
	*new_data = take > 0;
	return APPEND_OK;
}

static enum fp_verdict tcp_data(struct judge *j, uint32_t i)
{
	struct flow *f = &j->ft->flows[i];
	bool new_data;

	/* zeroed once: PCRE2's JIT may read a little past the bytes kept */
	if (!f->buf && !(f->buf = calloc(1, FP_INSPECT_BYTES))) {
		fp_flow_remove(j->ft, i);
		j->st->table_full++;
		return FP_DONE;
	}
	j->next_seq = f->next_seq;
	switch (tcp_append(f, j->pk, &new_data)) {
	case APPEND_OK: break;
	case APPEND_CONFLICT: return drop(&j->st->conflicts);
	case APPEND_GAP:
	case APPEND_UNSEEN: return drop(&j->st->segments_dropped);
	}
	/* A signature the judge cannot check: the receiver may discard the
	 * copy, so no decision to clear the flow may rest on it. */
	if (j->pk->signed_opt)
		f->unverified = true;
	if (!new_data)
		return FP_CONTINUE;
	f->data_packets++;
	/* The window is a number of bytes, never of segments: a sender that
	 * cuts its request into many small segments (TCP_NODELAY) gets it
	 * judged whole all the same. */
	bool window_full = f->buf_len >= FP_INSPECT_BYTES;
	enum fp_verdict v = decide(j, f->buf, f->buf_len, window_full, !f->unverified);
	if (v == FP_DONE && window_full && !*j->has_event)
		j->st->window_done++;
	return v;
}

/* The receiver takes a reset only at the next byte it expects (RFC 5961
 * section 3.2; others in the window get a challenge ACK), and a FIN only
 * at the end of the data before it: anywhere else it does not end the
 * stream, and here it is dropped. */
static bool tcp_end_valid(const struct flow *f, const struct fp_packet *pk)
{
	if (pk->tcp_flags & FP_TCP_RST)
		return data_seq(pk) == f->next_seq;
	return data_seq(pk) + (uint32_t)pk->payload_len == f->next_seq;
}

/* A bare ACK after the end whose number is neither the end's nor the one
 * after it (the sender's last ACK) belongs to a new connection over the
 * same addresses and ports: conntrack gives a connection re-created at the
 * same place and tuple the same id (nf_ct_get_id hashes the entry's
 * address and tuple). The entry starts afresh at it; the old stream was
 * over (its FIN or RST was taken), so nothing of it can follow. */
static bool tcp_new_connection(const struct flow *f, const struct fp_packet *pk)
{
	uint32_t from_end = data_seq(pk) - f->next_seq;
	return !pk->payload_len && !(pk->tcp_flags & (FP_TCP_FIN | FP_TCP_RST)) &&
	       (pk->tcp_flags & FP_TCP_ACK) && from_end > 1;
}

/* A packet of a flow that has ended: a retransmission of what it held (the
 * same bytes) or of its end passes; data past the end is dropped. */
static enum fp_verdict tcp_after_end(struct judge *j, uint32_t i)
{
	struct flow *f = &j->ft->flows[i];
	const struct fp_packet *pk = j->pk;
	bool end = pk->tcp_flags & (FP_TCP_FIN | FP_TCP_RST);
	bool new_data;

	if (!pk->payload_len && !end)
		return FP_CONTINUE; /* the sender's last ACK (or a new connection's) */
	if (tcp_receiver_discards(f, pk))
		return drop(&j->st->suspect);
	if (pk->payload_len && !(pk->tcp_flags & FP_TCP_RST)) {
		if ((int32_t)(data_seq(pk) + (uint32_t)pk->payload_len - f->next_seq) > 0)
			return drop(&j->st->segments_dropped);
		if (!f->buf || tcp_append(f, pk, &new_data) != APPEND_OK)
			return drop(&j->st->conflicts);
	}
	if (end && !tcp_end_valid(f, pk))
		return drop(&j->st->bad_end);
	return FP_CONTINUE;
}

static enum fp_verdict judge_tcp(struct judge *j)
{
	const struct fp_packet *pk = j->pk;
	bool end = pk->tcp_flags & (FP_TCP_FIN | FP_TCP_RST);
	uint32_t i;

	/* Urgent data is read apart from the stream (RFC 9293 section 3.8.5;
	 * Linux takes the byte the urgent pointer names out of it), and the
	 * pointer may name a byte of a later segment: the judge would see
	 * bytes the application does not. Such a segment is dropped. */
	if (pk->tcp_flags & FP_TCP_URG)
		return drop(&j->st->urgent);
	/* A SYN's data: the server's stack may take it (TCP Fast Open) and the
	 * stream then starts before what the handshake's ACK says. A sender
	 * without a Fast Open cookie sends it again after the handshake. A
	 * bare SYN makes no entry: spoofed SYNs that never complete the
	 * handshake would fill the table. */
	if (pk->tcp_flags & FP_TCP_SYN) {
		if (pk->payload_len)
			return drop(&j->st->syn_data);
		tcp_syn_again(j);
		return FP_CONTINUE;
	}
	i = fp_flow_find(j->ft, j->key);
	if (i == FLOW_NONE && !pk->payload_len && end)
		return FP_CONTINUE; /* nothing to end */
	if (i != FLOW_NONE && j->ft->flows[i].closed && !tcp_new_connection(&j->ft->flows[i], pk))
		return tcp_after_end(j, i);
	bool full;
	if ((i = flow_get(j, &full)) == FLOW_NONE)
		return FP_DONE;
	struct flow *f = &j->ft->flows[i];
	/* A stream whose SYN the entry was not opened with
	 * (fp_flows_seed_syn: the worker's memo of it was taken, a connection
	 * picked up after the judge ended its stream): the receiver holds what
	 * the SYN told it (its sequence number, timestamp, hops to live), the
	 * judge does not, and cannot tell a copy the receiver discards (out of
	 * its window, older than the SYN) from the real one. Judged, but no
	 * decision to clear the flow may rest on it. */
	if (!f->has_seq && !f->seeded) {
		f->unverified = true;
		j->st->unseen_start++;
	}
	/* Nor without the peer's ISN (its SYN-ACK not seen, or two with
	 * different ones): a copy with an acknowledgement number the receiver
	 * refuses cannot be told from the real one. */
	if (!f->has_seq && f->seeded && !f->has_peer_isn && !f->unverified) {
		f->unverified = true;
		j->st->unseen_peer_isn++;
	}
	/* The stream starts right after the SYN's sequence number; a first
	 * packet elsewhere is out of the receiver's window (or ahead of it,
	 * where it keeps data out of order and never delivers it). */
	if (!f->has_seq && f->seeded && data_seq(pk) != f->isn + 1)
		return drop(&j->st->suspect);
	/* An ACK the receiver refuses (tcp_ack_before_peer) starts nothing,
	 * not even where the stream begins, and is dropped, bare or not. */
	if (tcp_ack_before_peer(f, pk))
		return drop(&j->st->suspect);
	tcp_start(f, pk);
	bool discards = tcp_receiver_discards(f, pk);
	if ((pk->payload_len || end) && discards)
		return drop(&j->st->suspect);
	enum fp_verdict v = FP_CONTINUE;
	if (pk->payload_len && !(pk->tcp_flags & FP_TCP_RST)) {
		v = tcp_data(j, i);
		if (v == FP_DONE || v == FP_BLOCK)
			fp_flow_remove(j->ft, i);
		if (v != FP_CONTINUE)
			return v;
	}
	if (end && !tcp_end_valid(f, pk))
		return drop(&j->st->bad_end);
	if (!discards)
		tcp_took(f, pk);
	if (end)
		fp_flow_end(j->ft, i, j->now);
	return FP_CONTINUE;
}

/* What the parse alone decides, whatever the flow (true, *v set): a packet
 * the parser cannot walk is dropped; a fragment has nothing to inspect. */
static bool parse_decides(const struct fp_packet *pk, struct fp_stats *st, enum fp_verdict *v)
{
	switch (pk->parsed) {
	case FP_PARSE_MALFORMED: *v = drop(&st->malformed); return true;
	case FP_PARSE_EXT_HEADERS: *v = drop(&st->ext_headers); return true;
	case FP_PARSE_IP_OPTIONS: *v = drop(&st->ip_options); return true;
	case FP_PARSE_FRAGMENT:
		st->fragments++;
		*v = FP_CONTINUE;
		return true;
	case FP_PARSE_OTHER:
	case FP_PARSE_OK: break;
	}
	return false;
}

static enum fp_verdict count(struct fp_stats *st, enum fp_verdict v)
{
	if (v == FP_DONE)
		st->done++;
	else if (v == FP_BLOCK)
		st->blocked++;
	return v;
}

void fp_flow_key_ct(struct fp_flow_key *key, uint32_t ct_id)
{
	memset(key, 0, sizeof(*key));
	key->ct_id = ct_id;
}

int fp_flow_key_tuple(struct fp_flow_key *key, const struct fp_packet *pk, uint16_t zone)
{
	memset(key, 0, sizeof(*key));
	key->zone = zone;
	return fp_packet_tuple_of(pk, &key->tuple);
}

void fp_flows_forget(struct fp_flows *ft, const struct fp_flow_key *key)
{
	uint32_t i = fp_flow_find(ft, key);

	if (i != FLOW_NONE)
		fp_flow_remove(ft, i);
}

bool fp_syn_info_of(const struct fp_packet *pk, struct fp_syn_info *syn)
{
	if (pk->parsed != FP_PARSE_OK || pk->protocol != IPPROTO_TCP ||
	    (pk->tcp_flags & (FP_TCP_SYN | FP_TCP_ACK | FP_TCP_RST)) != FP_TCP_SYN ||
	    pk->payload_len || pk->signed_opt)
		return false;
	*syn = (struct fp_syn_info){ pk->has_ts, pk->tsval, pk->ttl, pk->seq, false, false, 0 };
	return true;
}

bool fp_synack_isn_of(const struct fp_packet *pk, uint32_t *isn)
{
	if (pk->parsed != FP_PARSE_OK || pk->protocol != IPPROTO_TCP ||
	    (pk->tcp_flags & (FP_TCP_SYN | FP_TCP_ACK | FP_TCP_RST)) != (FP_TCP_SYN | FP_TCP_ACK) ||
	    pk->payload_len)
		return false;
	*isn = pk->seq;
	return true;
}

bool fp_syn_info_peer(struct fp_syn_info *syn, uint32_t peer_isn)
{
	if (syn->peer_conflict)
		return false;
	if (syn->has_peer_isn && syn->peer_isn != peer_isn) {
		syn->has_peer_isn = false;
		syn->peer_conflict = true;
		return true;
	}
	syn->has_peer_isn = true;
	syn->peer_isn = peer_isn;
	return false;
}

void fp_flows_seed_syn(struct fp_flows *ft, const struct fp_flow_key *key,
		       const struct fp_syn_info *syn, uint64_t now, struct fp_stats *st)
{
	if (fp_flow_find(ft, key) != FLOW_NONE)
		return;
	uint32_t i = fp_flow_add(ft, key, now);
	if (i == FLOW_NONE)
		return;
	st->flows++;
	struct flow *f = &ft->flows[i];
	f->seeded = true;
	f->has_ts = syn->has_ts;
	f->ts_recent = syn->tsval;
	f->ttl = syn->ttl;
	f->isn = syn->isn;
	f->has_peer_isn = syn->has_peer_isn;
	f->peer_isn = syn->peer_isn;
}

enum fp_verdict fp_judge_packet(struct fp_flows *ft, const struct fp_ruleset *rs, uint32_t ct_id,
				const uint8_t labels[FP_LABEL_BYTES], const struct fp_packet *pk,
				uint64_t now, struct fp_stats *st, struct fp_event *ev,
				bool *has_event)
{
	struct fp_flow_key key;

	fp_flow_key_ct(&key, ct_id);
	return fp_judge_packet_key(ft, rs, &key, ct_id, labels, pk, now, st, ev, has_event);
}

enum fp_verdict fp_judge_packet_key(struct fp_flows *ft, const struct fp_ruleset *rs,
				    const struct fp_flow_key *key, uint32_t ct_id,
				    const uint8_t labels[FP_LABEL_BYTES],
				    const struct fp_packet *pk, uint64_t now, struct fp_stats *st,
				    struct fp_event *ev, bool *has_event)
{
	bool ignored = false;
	struct judge j = {
		.ft = ft,
		.rs = rs,
		.key = key,
		.ct_id = ct_id,
		.now = now,
		.st = st,
		.ev = ev,
		.pk = pk,
		.has_event = has_event ? has_event : &ignored,
	};

	*j.has_event = false;
	st->packets++;
	st->bytes += pk->len;
	fp_flows_expire(ft, now, st);
	j.rule_no = fp_label_rule(labels);
	if (j.rule_no == 0 || j.rule_no > fp_ruleset_count(rs)) {
		st->unknown_rule++;
		return count(st, FP_DONE);
	}
	enum fp_verdict v;
	if (parse_decides(pk, st, &v))
		return v;
	if (pk->parsed == FP_PARSE_OTHER)
		return count(st, FP_DONE);
	if (pk->protocol == IPPROTO_UDP)
		return count(st, judge_udp(&j));
	return count(st, judge_tcp(&j));
}

enum fp_verdict fp_judge(struct fp_flows *ft, const struct fp_ruleset *rs, uint32_t ct_id,
			 const uint8_t labels[FP_LABEL_BYTES], const uint8_t *pkt, size_t len,
			 uint64_t now, struct fp_stats *st, struct fp_event *ev, bool *has_event)
{
	struct fp_packet pk;

	fp_packet_parse(&pk, pkt, len);
	return fp_judge_packet(ft, rs, ct_id, labels, &pk, now, st, ev, has_event);
}

enum fp_verdict fp_judge_first_packet(struct fp_flows *scratch, const struct fp_ruleset *rs,
				      unsigned rule, const struct fp_packet *pk,
				      struct fp_stats *st, struct fp_event *ev, bool *has_event)
{
	uint8_t labels[FP_LABEL_BYTES];
	struct fp_stats unused = { 0 };

	if (has_event)
		*has_event = false;
	/* A TCP connection starts with a SYN; any other first packet is one
	 * that conntrack picked up in the middle of a connection (its entry
	 * was dropped, or it began before the ruleset): the stream's start is
	 * lost, so nothing of it may pass. */
	if (pk->parsed == FP_PARSE_OK && pk->protocol == IPPROTO_TCP &&
	    (pk->tcp_flags & (FP_TCP_SYN | FP_TCP_ACK | FP_TCP_RST)) != FP_TCP_SYN) {
		st->packets++;
		st->bytes += pk->len;
		return drop(&st->midstream);
	}
	fp_labels_pending(labels, rule);
	enum fp_verdict v = fp_judge_packet(scratch, rs, 0, labels, pk, 0, st, ev, has_event);
	/* judged alone: the scratch table is emptied after each packet */
	fp_flows_expire(scratch, FP_IDLE_SECONDS, &unused);
	return v;
}

enum fp_verdict fp_judge_first(struct fp_flows *scratch, const struct fp_ruleset *rs, unsigned rule,
			       const uint8_t *pkt, size_t len, struct fp_stats *st,
			       struct fp_event *ev, bool *has_event)
{
	struct fp_packet pk;

	fp_packet_parse(&pk, pkt, len);
	return fp_judge_first_packet(scratch, rs, rule, &pk, st, ev, has_event);
}

enum fp_verdict fp_judge_unknown_packet(const struct fp_packet *pk, struct fp_stats *st)
{
	st->packets++;
	st->bytes += pk->len;
	enum fp_verdict v;
	if (parse_decides(pk, st, &v))
		return v;
	st->ct_unknown++;
	return FP_CONTINUE;
}

enum fp_verdict fp_judge_unknown(const uint8_t *pkt, size_t len, struct fp_stats *st)
{
	struct fp_packet pk;

	fp_packet_parse(&pk, pkt, len);
	return fp_judge_unknown_packet(&pk, st);
}
