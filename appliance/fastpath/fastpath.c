/* The inspection fast path's NFQUEUE workers (appliance/fastpath/fastpath.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include "appliance/fastpath/fastpath.h"
#include "appliance/kernel/nlsock.h"
#include "policy/hash.h"
#include "policy/lower.h"

/* How long a worker's first read of a round waits (SO_RCVTIMEO) before it
 * looks at the stop flag: fastpath_stop returns within this (the header
 * promises half a second). */
#define WORKER_WAIT_MS 100
/* Bytes of a packet the kernel copies to us: all of an IP packet, GSO ones
 * included (NFQNL_COPY_PACKET range is a u32; IP lengths are 16 bits). */
#define COPY_RANGE 0xffff
/* A receive buffer holds one full-size packet message plus its headers and
 * attributes (libnetfilter_queue's own examples add half of
 * MNL_SOCKET_BUFFER_SIZE, a page of at most 8 KiB; that macro calls
 * sysconf each time it is read, so the size is fixed here). */
#define RECV_HEADROOM 4096
#define RECV_BUF_SIZE (COPY_RANGE + RECV_HEADROOM)
/* A verdict or a queue command: headers, the verdict and a conntrack nest
 * with two 16-byte label attributes take under 128 bytes. */
#define VERDICT_BUF_SIZE 256
/* Packets read from the socket in one round before their verdicts go out
 * together in one send (the kernel takes several netlink messages in one
 * datagram: nfnetlink hands each to nfqnl_recv_verdict). Bounded so that
 * a packet waits at most this many others' judgements for its verdict. */
#define BATCH_PACKETS  64
#define BATCH_BUF_SIZE (BATCH_PACKETS * VERDICT_BUF_SIZE)
/* Packet messages one recvmmsg takes (each in a buffer of RECV_BUF_SIZE:
 * a message cut short loses its packet's verdict): the round's first read
 * waits for one and takes those that wait behind it in the same system
 * call (MSG_WAITFORONE), the next reads drain what waits without waiting.
 * A round of one packet costs one read and one send. */
#define DRAIN_MSGS 16

/* Connections a worker looked up over ctnetlink, remembered so that a
 * flow's later packets need no round trip to the kernel: slots in a
 * direct-mapped array (a power of two) keyed by the tuple and zone. An
 * entry is good for CT_CACHE_SECONDS, with the ruleset it was made under,
 * until the worker sets the flow's label. */
#define CT_CACHE_SLOTS   4096
#define CT_CACHE_SECONDS 5
/* Flows a worker labelled over ctnetlink, by tuple and zone (direct-mapped,
 * a power of two; a newer flow takes an older one's slot). Only such a
 * flow's packet on a rule's queue block is looked up (packet_ct_needed). */
#define LABELLED_SLOTS 4096
/* Connections a worker blocked, by conntrack id (direct-mapped), for
 * BLOCKED_SECONDS: a packet of theirs queued before the BLOCKED label was
 * set is dropped even when the labels it came with do not show it. With
 * the conntrack glue they are the labels of when it was queued, so a
 * packet in flight while the deciding one was judged would otherwise be
 * judged afresh, as the start of a new stream, and could pass. */
#define BLOCKED_SLOTS   1024
#define BLOCKED_SECONDS 5
/* Receive buffer of a queue socket: room for a burst of thousands of small
 * packets (each takes its skb's true size, about 1 KiB for a 64-byte
 * datagram), so that fewer wait on a full socket: the kernel drops those
 * (fail-closed) or lets them pass uninspected (fail-open, NFQA_CFG_F_FAIL_OPEN). */
#define QUEUE_RCVBUF (8u << 20)

/* A connection the worker blocked (at: when, in seconds plus one; 0 free). */
struct blocked_id {
	uint32_t id;
	uint64_t at;
};

struct rules_ref {
	struct fp_ruleset *rs;
	unsigned refs; /* workers judging with it, plus one while current */
};

struct worker {
	struct fastpath *fp;
	uint16_t queue;         /* its queue of block 0: flows under inspection */
	unsigned blocks;        /* queue blocks bound: 0 and 1 .. blocks - 1 (policy/lower.h) */
	struct fp_flows *first; /* scratch for a first packet whose connection is unknown */
	struct mnl_socket *nl;  /* the queue */
	struct nl_sock ct;      /* conntrack lookups and updates (no glue; nlsock.h) */
	uint32_t portid;
	int raw4, raw6; /* the resets of blocked TCP flows (-1: none) */
	bool glue;
	struct fp_flows *flows;
	/* The worker's own counters, touched by it alone and without a lock;
	 * a copy is published after each round (under stats_lock, held for
	 * the copy only) for fastpath_stats to read. */
	struct fp_stats stats;
	pthread_mutex_t stats_lock;
	struct fp_stats published;
	struct ct_cache_entry *ct_cache; /* CT_CACHE_SLOTS, the ctnetlink way */
	struct labelled *labelled;       /* LABELLED_SLOTS, the ctnetlink way */
	struct blocked_id *blocked;      /* BLOCKED_SLOTS */
	/* verdicts of the round, sent together */
	uint8_t *batch;
	size_t batch_len;
	unsigned batch_msgs;
	/* accepts without attributes not yet in the batch: every packet of
	 * queue run_queue up to id run_last (one NFQNL_MSG_VERDICT_BATCH) */
	unsigned run_msgs;
	uint16_t run_queue;
	uint32_t run_last;
	/* a packet may be left without its verdict (a packet message could not
	 * be read, a send of verdicts failed, the kernel refused one): no more
	 * runs, verdicts one by one, as a run would accept it */
	bool no_run;
	struct rules_ref *rules; /* held while a batch is judged */
	uint8_t *buf;            /* DRAIN_MSGS buffers of RECV_BUF_SIZE */
	pthread_t thread;
	bool running;
};

struct fastpath {
	struct worker *workers;
	unsigned n_workers;
	unsigned flags; /* FASTPATH_FAIL_CLOSED */
	char *netns;    /* NULL: the current namespace */
	uint16_t queue; /* the first */
	atomic_int stop;
	pthread_mutex_t rules_lock;
	struct rules_ref *current;
	pthread_mutex_t events_lock;
	struct fp_event ring[FASTPATH_EVENT_RING];
	size_t ev_head, ev_count;
	uint64_t events_lost;
	int event_fd;
};

/* ---- rules ---- */

static struct rules_ref *rules_ref_new(struct fp_ruleset *rs)
{
	struct rules_ref *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->rs = rs;
	r->refs = 1;
	return r;
}

static void rules_put_locked(struct rules_ref *r)
{
	if (r && --r->refs == 0) {
		fp_ruleset_free(r->rs);
		free(r);
	}
}

static struct rules_ref *rules_get(struct fastpath *fp)
{
	pthread_mutex_lock(&fp->rules_lock);
	struct rules_ref *r = fp->current;
	r->refs++;
	pthread_mutex_unlock(&fp->rules_lock);
	return r;
}

static void rules_put(struct fastpath *fp, struct rules_ref *r)
{
	pthread_mutex_lock(&fp->rules_lock);
	rules_put_locked(r);
	pthread_mutex_unlock(&fp->rules_lock);
}

void fastpath_set_rules(struct fastpath *fp, struct fp_ruleset *rs)
{
	struct rules_ref *r = rules_ref_new(rs);
	if (!r) {
		/* Keep judging with the old rules rather than with none. */
		fp_ruleset_free(rs);
		return;
	}
	pthread_mutex_lock(&fp->rules_lock);
	struct rules_ref *old = fp->current;
	fp->current = r;
	rules_put_locked(old);
	pthread_mutex_unlock(&fp->rules_lock);
}

/* ---- events ---- */

static void event_push(struct fastpath *fp, const struct fp_event *ev)
{
	uint64_t one = 1;

	pthread_mutex_lock(&fp->events_lock);
	if (fp->ev_count == FASTPATH_EVENT_RING) {
		fp->events_lost++;
		pthread_mutex_unlock(&fp->events_lock);
		return;
	}
	fp->ring[(fp->ev_head + fp->ev_count) % FASTPATH_EVENT_RING] = *ev;
	fp->ev_count++;
	pthread_mutex_unlock(&fp->events_lock);
	/* Non-blocking eventfd: a counter at its maximum is readable anyway. */
	if (write(fp->event_fd, &one, sizeof(one)) < 0) {
	}
}

int fastpath_event_fd(const struct fastpath *fp)
{
	return fp->event_fd;
}

size_t fastpath_events(struct fastpath *fp, struct fp_event *out, size_t max)
{
	uint64_t n;
	size_t got = 0;

	if (read(fp->event_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing signalled; the ring is looked at anyway. */
	}
	pthread_mutex_lock(&fp->events_lock);
	while (got < max && fp->ev_count) {
		out[got++] = fp->ring[fp->ev_head];
		fp->ev_head = (fp->ev_head + 1) % FASTPATH_EVENT_RING;
		fp->ev_count--;
	}
	bool more = fp->ev_count > 0;
	pthread_mutex_unlock(&fp->events_lock);
	if (more) {
		n = 1;
		if (write(fp->event_fd, &n, sizeof(n)) < 0) {
		}
	}
	return got;
}

/* ---- stats ---- */

static void stats_add(struct fp_stats *sum, const struct fp_stats *s)
{
	const uint64_t *from = (const uint64_t *)s;
	uint64_t *to = (uint64_t *)sum;

	/* struct fp_stats is nothing but uint64_t counters. */
	for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
		to[i] += from[i];
}

void fastpath_stats(const struct fastpath *fp, struct fp_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < fp->n_workers; i++) {
		struct worker *w = &fp->workers[i];
		pthread_mutex_lock(&w->stats_lock);
		stats_add(out, &w->published);
		pthread_mutex_unlock(&w->stats_lock);
	}
	pthread_mutex_lock((pthread_mutex_t *)&fp->events_lock);
	out->events_lost += fp->events_lost;
	pthread_mutex_unlock((pthread_mutex_t *)&fp->events_lock);
}

bool fastpath_has_ct_glue(const struct fastpath *fp)
{
	return fp->n_workers && fp->workers[0].glue;
}

/* ---- netlink helpers ---- */

static struct mnl_socket *socket_open(const char *netns, uint32_t *portid)
{
	int saved;
	if (nl_netns_enter(netns, &saved))
		return NULL;
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl_netns_leave(saved)) {
		/* Still in the target namespace: never go on from there. */
		abort();
	}
	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	int on = 1;
	/* A burst the socket cannot hold: the kernel accepts what it could
	 * not deliver (NFQA_CFG_F_FAIL_OPEN); ENOBUFS would tell us nothing
	 * we could act on. */
	mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &on, sizeof(on));
	*portid = mnl_socket_get_portid(nl);
	int rcv = (int)QUEUE_RCVBUF;
	/* root: above net.core.rmem_max; else as much as it allows */
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)))
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return nl;
}

/* A raw socket of the namespace that sends whole IP packets (IPPROTO_RAW:
 * the header is ours, its source address too). -1 on failure. */
static int raw_open(const char *netns, int family)
{
	int saved;
	if (nl_netns_enter(netns, &saved))
		return -1;
	int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (nl_netns_leave(saved))
		abort(); /* still in the target namespace: never go on from there */
	return fd;
}

/* A blocked TCP flow ends at both ends at once (a reset each way) instead
 * of its sender retransmitting into the drop rule until it gives up. The
 * resets go out from this host, as if each came from the other end. */
static void send_resets(struct worker *w, const struct fp_event *ev)
{
	uint8_t rst[2][FP_RESET_MAX];
	size_t len[2];
	int fd = ev->family == AF_INET ? w->raw4 : w->raw6;

	if (fd < 0 || fp_tcp_resets(ev, rst[0], &len[0], rst[1], &len[1]))
		return;
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage to = { 0 };
		socklen_t tolen;
		const uint8_t *dst = i == 0 ? ev->dst : ev->src;
		if (ev->family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&to;
			a->sin_family = AF_INET;
			memcpy(&a->sin_addr, dst, 4);
			tolen = sizeof(*a);
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&to;
			a->sin6_family = AF_INET6;
			memcpy(&a->sin6_addr, dst, 16);
			tolen = sizeof(*a);
		}
		if (sendto(fd, rst[i], len[i], 0, (struct sockaddr *)&to, tolen) < 0)
			w->stats.resets_failed++;
		else
			w->stats.resets_sent++;
	}
}

/* ---- conntrack over ctnetlink (kernels without the queue's ct glue) ---- */

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct fp_tuple *t, bool reverse)
{
	const uint8_t *src = reverse ? t->dst : t->src, *dst = reverse ? t->src : t->dst;
	uint16_t sport = reverse ? t->dport : t->sport, dport = reverse ? t->sport : t->dport;

	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (t->family == AF_INET) {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->protocol);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

/* A conntrack request (headers, a tuple of two addresses, protocol and
 * ports, a zone, labels and mask) takes under 200 bytes. */
#define CT_REQUEST_SIZE 256

/* A conntrack request in buf, zeroed first: attribute and struct padding
 * is sent too, and buf last held the kernel's previous answer. */
static struct nlmsghdr *ct_msg(struct worker *w, uint8_t *buf, uint16_t type, int family)
{
	memset(buf, 0, CT_REQUEST_SIZE);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	/* the ack ends the exchange: a GET that finds nothing sends no data */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = w->ct.seq++;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

struct ct_info {
	bool has_id;
	uint32_t id;
	uint8_t labels[FP_LABEL_BYTES];
};

static int ct_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, CTA_MAX) < 0)
		return MNL_CB_OK;
	if (type == CTA_ID && mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	tb[type] = a;
	return MNL_CB_OK;
}

/* Reads CTA_ID and CTA_LABELS of a conntrack attribute stream. */
static void ct_info_from(struct ct_info *ci, const struct nlattr **tb)
{
	if (tb[CTA_ID]) {
		ci->has_id = true;
		ci->id = ntohl(mnl_attr_get_u32(tb[CTA_ID]));
	}
	if (tb[CTA_LABELS]) {
		size_t n = mnl_attr_get_payload_len(tb[CTA_LABELS]);
		memcpy(ci->labels, mnl_attr_get_payload(tb[CTA_LABELS]),
		       n < FP_LABEL_BYTES ? n : FP_LABEL_BYTES);
	}
}

static int ct_get_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), ct_attr_cb, tb) < 0)
		return MNL_CB_OK;
	ct_info_from(data, tb);
	return MNL_CB_OK;
}

/* Where a connection was found: which of its tuples the packet's is, and
 * the conntrack zone it lives in. */
struct ct_where {
	bool by_reply;
	uint16_t zone;
	bool found; /* false: learnt from the flow's first packet, not looked up */
};

/* The packet travels in the flow's original direction: its tuple is the
 * original one unless NAT changed it before the queue (DNAT in prerouting),
 * then its reverse is the reply tuple. A tenant's connection lives in the
 * tenant's zone (the packet's routing mark names the tenant); one that
 * entered from outside (a port forward) in the default zone, although its
 * packets carry the tenant's mark. */
static int ct_lookup(struct worker *w, const struct fp_tuple *t, uint16_t zone, struct ct_info *ci,
		     struct ct_where *where)
{
	uint8_t buf[CT_REQUEST_SIZE];
	const uint16_t zones[2] = { zone, 0 };

	for (int z = 0; z < (zone ? 2 : 1); z++)
		for (int reply = 0; reply < 2; reply++) {
			struct nlmsghdr *nlh = ct_msg(w, buf, IPCTNL_MSG_CT_GET, t->family);
			put_tuple(nlh, reply ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG, t, reply);
			if (zones[z])
				mnl_attr_put_u16(nlh, CTA_ZONE, htons(zones[z]));
			memset(ci, 0, sizeof(*ci));
			w->stats.ct_requests++;
			int rc = nl_sock_talk(&w->ct, nlh, ct_get_cb, ci);
			if (!rc && ci->has_id) {
				*where = (struct ct_where){ reply, zones[z], true };
				return 0;
			}
		}
	return -ENOENT;
}

static int ct_set_label(struct worker *w, const struct fp_tuple *t, const struct ct_where *where,
			unsigned bit)
{
	uint8_t buf[CT_REQUEST_SIZE];
	uint8_t labels[FP_LABEL_BYTES] = { 0 };

	fp_label_set(labels, bit);
	struct nlmsghdr *nlh = ct_msg(w, buf, IPCTNL_MSG_CT_NEW, t->family);
	put_tuple(nlh, where->by_reply ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG, t, where->by_reply);
	if (where->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(where->zone));
	/* Label and mask alike: the kernel ORs the one bit in. */
	mnl_attr_put(nlh, CTA_LABELS, FP_LABEL_BYTES, labels);
	mnl_attr_put(nlh, CTA_LABELS_MASK, FP_LABEL_BYTES, labels);
	w->stats.ct_requests++;
	return nl_sock_talk(&w->ct, nlh, NULL, NULL);
}

/* ---- the queue ---- */

static void count_verdict_error(struct worker *w)
{
	w->stats.verdict_errors++;
}

static void run_close(struct worker *w);

/* Sends the round's verdicts in one datagram. */
static void batch_flush(struct worker *w)
{
	run_close(w);
	if (!w->batch_len)
		return;
	if (mnl_socket_sendto(w->nl, w->batch, w->batch_len) < 0) {
		w->stats.verdict_errors += w->batch_msgs;
		w->no_run = true;
	}
	w->batch_len = 0;
	w->batch_msgs = 0;
}

/* A queue command in buf (zeroed: struct padding is sent too); a bind
 * copies whole packets with `flags`. */
static struct nlmsghdr *config_msg(uint8_t *buf, uint16_t queue, uint8_t cmd, uint32_t flags)
{
	memset(buf, 0, VERDICT_BUF_SIZE);
	struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, cmd);
	if (cmd == NFQNL_CFG_CMD_BIND) {
		nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
		mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
		mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	}
	return nlh;
}

static uint32_t bind_flags(const struct worker *w, bool glue)
{
	bool fail_open = !(w->fp->flags & FASTPATH_FAIL_CLOSED);
	return (fail_open ? NFQA_CFG_F_FAIL_OPEN : 0) | NFQA_CFG_F_GSO |
	       (glue ? NFQA_CFG_F_CONNTRACK : 0);
}

static int queue_config(struct worker *w, uint8_t cmd, uint32_t flags)
{
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = config_msg(buf, w->queue, cmd, flags);
	struct nl_sock queue = { .nl = w->nl, .portid = w->portid }; /* borrowed: not closed */

	nlh->nlmsg_seq = 1;
	nlh->nlmsg_flags |= NLM_F_ACK;
	/* No packet can arrive before the bind succeeds, so the answer is the
	 * first message to read. */
	return nl_sock_talk(&queue, nlh, NULL, NULL);
}

static int queue_bind(struct worker *w)
{
	int rc = queue_config(w, NFQNL_CFG_CMD_BIND, bind_flags(w, true));

	w->glue = !rc;
	if (rc == -EOPNOTSUPP)
		rc = queue_config(w, NFQNL_CFG_CMD_BIND, bind_flags(w, false));
	return rc;
}

/* The queue of block k of this worker: block k of the queues starts at
 * the first queue + k * workers (policy/lower.h). */
static uint16_t block_queue(const struct worker *w, unsigned k)
{
	return (uint16_t)(w->queue + k * w->fp->n_workers);
}

/* Binds the worker's queues of blocks up to `blocks` - 1 (one per inspect
 * rule; block 0 is bound at start). Packets already arrive on the socket,
 * so no acknowledgement is awaited: a refused bind comes back as an error
 * message, counted like a refused verdict, and its queue's packets pass
 * (bypass). Queues of rules that went away stay bound, unused. */
static void bind_blocks(struct worker *w, unsigned blocks)
{
	for (; w->blocks < blocks; w->blocks++) {
		uint8_t buf[VERDICT_BUF_SIZE];
		struct nlmsghdr *nlh = config_msg(buf, block_queue(w, w->blocks),
						  NFQNL_CFG_CMD_BIND, bind_flags(w, w->glue));
		if (mnl_socket_sendto(w->nl, nlh, nlh->nlmsg_len) < 0) {
			count_verdict_error(w);
			return; /* tried again on the next round */
		}
	}
}

/* A verdict message at the end of the round's batch (room for it made). */
static struct nlmsghdr *batch_msg(struct worker *w, uint16_t type, uint16_t queue, uint32_t id,
				  int verdict)
{
	if (BATCH_BUF_SIZE - w->batch_len < VERDICT_BUF_SIZE) {
		/* send what the batch holds; keep the open run for later */
		size_t len = w->batch_len;
		w->batch_len = 0;
		if (len && mnl_socket_sendto(w->nl, w->batch, len) < 0) {
			w->stats.verdict_errors += w->batch_msgs;
			w->no_run = true;
		}
		w->batch_msgs = 0;
	}
	uint8_t *buf = w->batch + w->batch_len;
	memset(buf, 0, VERDICT_BUF_SIZE); /* struct padding is sent too */
	struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf, type, queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	return nlh;
}

/* Ends the open run of plain accepts: one NFQNL_MSG_VERDICT_BATCH, which
 * the kernel applies to every packet of the queue up to the run's last id
 * (find_dequeue_entries in nfnetlink_queue.c). Every lower id of the queue
 * has had its verdict already: a queue's packets reach the socket in the
 * order of their ids, every packet read gets its verdict in the round it
 * was read, and the verdicts go out in the order they were given. (A
 * packet message that cannot be read has an id that got no verdict: from
 * then on the worker sends no runs, no_run.) */
static void run_close(struct worker *w)
{
	if (!w->run_msgs)
		return;
	struct nlmsghdr *nlh =
	    batch_msg(w, NFQNL_MSG_VERDICT_BATCH, w->run_queue, w->run_last, NF_ACCEPT);
	w->batch_len += NLMSG_ALIGN(nlh->nlmsg_len);
	w->batch_msgs += w->run_msgs;
	w->run_msgs = 0;
}

/* Adds a verdict to the round's batch (sent by batch_flush), with the
 * packet's new mark if `mark` is not NULL. A plain accept joins the open
 * run of its queue. */
static void send_verdict(struct worker *w, uint16_t queue, uint32_t id, int verdict, int label_bit,
			 const uint32_t *mark)
{
	bool plain = verdict == NF_ACCEPT && !(label_bit >= 0 && w->glue) && !mark;
	if (plain && !w->no_run && w->run_msgs && w->run_queue == queue &&
	    (int32_t)(id - w->run_last) > 0) {
		w->run_last = id;
		w->run_msgs++;
		return;
	}
	run_close(w);
	if (plain && !w->no_run) {
		w->run_queue = queue;
		w->run_last = id;
		w->run_msgs = 1;
		return;
	}
	struct nlmsghdr *nlh = batch_msg(w, NFQNL_MSG_VERDICT, queue, id, verdict);
	if (mark)
		nfq_nlmsg_verdict_put_mark(nlh, *mark);
	if (label_bit >= 0 && w->glue) {
		uint8_t labels[FP_LABEL_BYTES] = { 0 };
		fp_label_set(labels, (unsigned)label_bit);
		struct nlattr *ct = mnl_attr_nest_start(nlh, NFQA_CT);
		mnl_attr_put(nlh, CTA_LABELS, FP_LABEL_BYTES, labels);
		mnl_attr_put(nlh, CTA_LABELS_MASK, FP_LABEL_BYTES, labels);
		mnl_attr_nest_end(nlh, ct);
	}
	w->batch_len += NLMSG_ALIGN(nlh->nlmsg_len);
	w->batch_msgs++;
}

static uint64_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

struct ct_cache_entry {
	bool used;
	uint16_t zone; /* the zone the lookup started in (the packet's mark) */
	struct fp_tuple t;
	struct ct_info ci;
	struct ct_where where;
	const struct fp_ruleset *rs;
	uint64_t at;
	/* a TCP flow's SYN (ct_cache_put_first): what it told the receiver,
	 * given to the flow table with the flow's next packet */
	bool has_syn;
	struct fp_syn_info syn;
	/* the ISN of the tuple's last SYN, kept after has_syn is used, and
	 * whether two SYNs of the tuple came with different ISNs */
	bool syn_seen, syn_conflict;
	uint32_t syn_isn;
};

/* What the worker knows of a queued packet's connection before judging
 * it, worked out once a packet (conn_of): its flow key of tuple and zone
 * (the zone its mark names), and the hash that places the tuple in the
 * worker's memos (ct_cache, labelled). */
struct pkt_conn {
	bool has_tuple; /* false: malformed, a fragment, not TCP or UDP */
	struct fp_flow_key key;
	uint32_t hash;
};

/* What the memo knew of the SYNs of the packet's tuple before entry e is rewritten
 * for it: a SYN with another ISN than one seen moments ago (two SYNs
 * before conntrack confirmed the first one's connection, or a SYN sent
 * again with a new ISN) leaves no SYN to open the flow's entry with: the
 * receiver holds one of them and the judge cannot tell which, so the flow
 * is judged but never cleared (counted as syn_changed). */
struct memo_syns {
	bool seen, conflict;
	uint32_t isn;
	struct fp_syn_info syn; /* seen: the last one, with its peer's ISN */
};

static struct memo_syns memo_syns_of(const struct ct_cache_entry *e, const struct pkt_conn *pc)
{
	struct memo_syns m = { 0 };
	if (e->used && e->syn_seen && e->zone == pc->key.zone &&
	    !memcmp(&e->t, &pc->key.tuple, sizeof(pc->key.tuple)) &&
	    now_seconds() - e->at < CT_CACHE_SECONDS)
		m = (struct memo_syns){ true, e->syn_conflict, e->syn_isn, e->syn };
	return m;
}

static void memo_put_syn(struct worker *w, struct ct_cache_entry *e, struct memo_syns before,
			 const struct fp_packet *pk)
{
	struct fp_syn_info syn;
	if (!fp_syn_info_of(pk, &syn)) {
		e->has_syn = false;
		return;
	}
	bool conflict = before.conflict || (before.seen && before.isn != syn.isn);
	if (conflict && !before.conflict)
		w->stats.syn_changed++;
	e->syn_seen = true;
	e->syn_isn = syn.isn;
	e->syn_conflict = conflict;
	e->has_syn = !conflict;
	/* the same SYN again (its SYN-ACK lost on the way to the client):
	 * what the SYN-ACK told stays */
	if (before.seen && before.isn == syn.isn) {
		syn.has_peer_isn = before.syn.has_peer_isn;
		syn.peer_conflict = before.syn.peer_conflict;
		syn.peer_isn = before.syn.peer_isn;
	}
	e->syn = syn;
}

static uint32_t tuple_hash(const struct fp_tuple *t, uint16_t zone)
{
	/* FNV-1a over the tuple (zeroed padding included: fp_flow_key_tuple
	 * clears it) and the zone */
	const uint8_t *b = (const uint8_t *)t;
	uint32_t h = POLICY_FNV32_OFFSET_BASIS ^ zone;
	for (size_t i = 0; i < sizeof(*t); i++)
		h = policy_fnv32_byte(h, b[i]);
	return h;
}

static void conn_of(const struct worker *w, const struct fp_packet *pk, uint32_t mark,
		    struct pkt_conn *pc)
{
	pc->has_tuple = !fp_flow_key_tuple(&pc->key, pk, fp_ruleset_zone(w->rules->rs, mark));
	pc->hash = pc->has_tuple ? tuple_hash(&pc->key.tuple, pc->key.zone) : 0;
}

static struct ct_cache_entry *ct_cache_slot(struct worker *w, const struct pkt_conn *pc)
{
	return &w->ct_cache[pc->hash & (CT_CACHE_SLOTS - 1)];
}

static bool ct_cache_holds(const struct ct_cache_entry *e, const struct pkt_conn *pc)
{
	return e->used && e->zone == pc->key.zone &&
	       !memcmp(&e->t, &pc->key.tuple, sizeof(pc->key.tuple));
}

/* The memo of the packet's connection, if it holds one that is good (of
 * the rules of now, not too old): its labels and where it lives in *ci and
 * *where. NULL if none. */
static struct ct_cache_entry *ct_cache_get(struct worker *w, const struct pkt_conn *pc,
					   struct ct_info *ci, struct ct_where *where)
{
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	if (!ct_cache_holds(e, pc) || e->rs != w->rules->rs ||
	    now_seconds() - e->at >= CT_CACHE_SECONDS)
		return NULL;
	*ci = e->ci;
	*where = e->where;
	return e;
}

static struct ct_cache_entry *ct_cache_put(struct worker *w, const struct pkt_conn *pc,
					   const struct ct_info *ci, const struct ct_where *where)
{
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->zone = pc->key.zone;
	/* padding too (zeroed by fp_flow_key_tuple): entries are compared whole */
	memcpy(&e->t, &pc->key.tuple, sizeof(e->t));
	e->ci = *ci;
	e->where = *where;
	e->rs = w->rules->rs;
	e->at = now_seconds();
	return e;
}

/* The first packet of inspect rule `rule`'s new flow passed (it came on
 * the rule's block, judged alone): the kernel labelled its connection
 * PENDING with the rule's number, and the flow's next packets come on
 * block 0 with those labels. Remembered like a lookup's answer, so that
 * they need none; only where the connection lives (needed for a BLOCKED
 * label) and its id are not known (ct_where.found false). */
static void ct_cache_put_first(struct worker *w, const struct pkt_conn *pc, unsigned rule,
			       const struct fp_packet *pk)
{
	struct ct_info ci = { 0 };
	struct ct_where where = { false, pc->key.zone, false };

	fp_labels_pending(ci.labels, rule);
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	struct memo_syns before = memo_syns_of(e, pc);
	ct_cache_put(w, pc, &ci, &where);
	memo_put_syn(w, e, before, pk);
}

/* The flow's packet after its SYN: its entry opens with what the SYN told
 * the receiver (once; the memo is direct-mapped, so spoofed SYNs cannot
 * fill the flow table with it). The memo is found by the packet's tuple
 * and zone (its slot worked out once, conn_of), whichever key the flow
 * table uses, and whether or not the lookup used it. */
static void seed_from_syn(struct worker *w, const struct pkt_conn *pc,
			  const struct fp_flow_key *key)
{
	if (!pc->has_tuple)
		return;
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	if (!e->has_syn || !ct_cache_holds(e, pc))
		return;
	e->has_syn = false;
	fp_flows_seed_syn(w->flows, key, &e->syn, now_seconds(), &w->stats);
}

/* With the glue a flow's SYN is judged as a flow (its connection comes
 * with it) and no lookup fills the memo: a bare SYN is kept there for
 * seed_from_syn all the same (without the glue, ct_cache_put_first). */
static void glue_remember_syn(struct worker *w, const struct fp_packet *pk,
			      const struct pkt_conn *pc)
{
	struct fp_syn_info syn;
	if (!pc->has_tuple || !fp_syn_info_of(pk, &syn))
		return;
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	struct memo_syns before = memo_syns_of(e, pc);
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->zone = pc->key.zone;
	memcpy(&e->t, &pc->key.tuple, sizeof(e->t));
	e->rs = w->rules->rs;
	e->at = now_seconds();
	memo_put_syn(w, e, before, pk);
}

/* A bare SYN-ACK of the peer of a flow whose SYN the memo holds: the
 * ruleset queues the reply-direction SYN-ACK of a PENDING connection to
 * block 0 (policy/lower.h), and its ISN is noted next to the SYN's for
 * seed_from_syn (the judge needs it to know which acknowledgement numbers
 * the receiver takes). The memo is found by the reverse of the packet's
 * tuple (the client's, as the flow's packets show it) and the zone its
 * mark names (a reply gets the tenant's mark back from the ct mark). True:
 * taken, and the packet is accepted (it is information only, and never
 * dropped). False: the memo knows no such SYN (a client's own SYN-ACK, or
 * the memo's slot taken); the packet is judged as any other. A SYN-ACK
 * after the flow's entry was opened changes only the memo: the entry
 * keeps the ISN the client's first ACK was checked against. */
static bool take_synack(struct worker *w, const struct fp_packet *pk, const struct pkt_conn *pc)
{
	uint32_t isn;
	if (!pc->has_tuple || !fp_synack_isn_of(pk, &isn))
		return false;
	struct pkt_conn client = *pc;
	struct fp_tuple *t = &client.key.tuple;
	uint8_t addr[sizeof(t->src)];
	memcpy(addr, t->src, sizeof(addr));
	memcpy(t->src, t->dst, sizeof(addr));
	memcpy(t->dst, addr, sizeof(addr));
	uint16_t port = t->sport;
	t->sport = t->dport;
	t->dport = port;
	client.hash = tuple_hash(t, client.key.zone);
	struct ct_cache_entry *e = ct_cache_slot(w, &client);
	if (!ct_cache_holds(e, &client) || !e->syn_seen)
		return false;
	w->stats.packets++;
	w->stats.bytes += pk->len;
	w->stats.synacks++;
	if (fp_syn_info_peer(&e->syn, isn))
		w->stats.peer_isn_changed++;
	return true;
}

static void ct_cache_forget(struct worker *w, const struct pkt_conn *pc)
{
	struct ct_cache_entry *e = ct_cache_slot(w, pc);
	if (ct_cache_holds(e, pc))
		e->used = false;
}

struct labelled {
	bool used;
	uint16_t zone;
	struct fp_tuple t;
};

static void labelled_put(struct worker *w, const struct pkt_conn *pc)
{
	struct labelled *e = &w->labelled[pc->hash & (LABELLED_SLOTS - 1)];
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->zone = pc->key.zone;
	memcpy(&e->t, &pc->key.tuple, sizeof(e->t));
}

static bool labelled_get(const struct worker *w, const struct pkt_conn *pc)
{
	const struct labelled *e = &w->labelled[pc->hash & (LABELLED_SLOTS - 1)];
	return e->used && e->zone == pc->key.zone &&
	       !memcmp(&e->t, &pc->key.tuple, sizeof(pc->key.tuple));
}

/* Whether a packet on a rule's queue block (ct state new, and no PENDING
 * label yet: with the label it would have come on block 0) is looked up
 * over ctnetlink. Its connection is new and unconfirmed, so the lookup
 * fails in every zone and direction (up to four round trips) and the
 * packet is judged alone, unless its connection is a UDP flow that this
 * worker cleared (DONE) before its first reply: the kernel's inspect chain
 * lets such a flow by (`ct label 1 return`), the rule then queues its
 * datagrams to the rule's block again, and the lookup finds the DONE label
 * (the datagram is accepted as before). Labelled flows are remembered by
 * tuple and zone (labelled_put); one forgotten (its slot taken) has its
 * datagram judged alone, by the rule's matches: stricter, never looser. */
static bool packet_ct_needed(const struct worker *w, const struct pkt_conn *pc)
{
	return pc->has_tuple && pc->key.tuple.protocol == IPPROTO_UDP && labelled_get(w, pc);
}

/* Where the packet's conntrack id and labels come from: the NFQA_CT the
 * kernel attached, or a ctnetlink lookup (for a packet of block 0, a flow
 * under inspection, remembered: ct_cache_get). A first packet (block k) is always looked up: its
 * connection is new, and a remembered entry of the same tuple would be an
 * older connection's. */
static int packet_ct(struct worker *w, const struct nlattr *ct_attr, const struct pkt_conn *pc,
		     bool first, struct ct_info *ci, struct ct_where *where)
{
	memset(ci, 0, sizeof(*ci));
	if (ct_attr) {
		const struct nlattr *tb[CTA_MAX + 1] = { 0 };
		if (mnl_attr_parse_nested(ct_attr, ct_attr_cb, tb) < 0)
			return -EINVAL;
		ct_info_from(ci, tb);
		return ci->has_id ? 0 : -ENOENT;
	}
	if (w->glue || !w->ct.nl || !pc->has_tuple)
		return -ENOENT;
	if (!first && ct_cache_get(w, pc, ci, where))
		return 0;
	int rc = ct_lookup(w, &pc->key.tuple, pc->key.zone, ci, where);
	if (!rc && !first)
		ct_cache_put(w, pc, ci, where);
	return rc;
}

static struct blocked_id *blocked_slot(struct worker *w, uint32_t id)
{
	return &w->blocked[(id * 2654435761u) >> 22 & (BLOCKED_SLOTS - 1)];
}

static void blocked_put(struct worker *w, uint32_t id)
{
	struct blocked_id *e = blocked_slot(w, id);
	e->id = id;
	e->at = now_seconds() + 1; /* never 0 */
}

static bool blocked_get(struct worker *w, uint32_t id)
{
	const struct blocked_id *e = blocked_slot(w, id);
	return e->at && e->id == id && now_seconds() + 1 - e->at <= BLOCKED_SECONDS;
}

/* The first packet of an inspect rule's new flow (it came on the rule's
 * own queue block) whose connection conntrack cannot show yet: it is not
 * confirmed until the packet goes on. The queue names the rule; the packet
 * is judged alone (fp_judge_first; the connection's later packets come
 * with their labels and are judged as a flow). No label can be set on it,
 * so a cleared flow's next packets come here again and a blocked flow dies
 * with its dropped first packet. */
static enum fp_verdict judge_first(struct worker *w, unsigned rule, const struct fp_packet *pk,
				   struct fp_event *ev, bool *has_event)
{
	return fp_judge_first_packet(w->first, w->rules->rs, rule, pk, &w->stats, ev, has_event);
}

/* The flow table's key of a packet's flow: its conntrack id with the glue,
 * else its tuple and zone (no round trip needed to know it). */
static void flow_key(const struct worker *w, const struct pkt_conn *pc, const struct ct_info *ci,
		     struct fp_flow_key *key)
{
	if (w->glue)
		fp_flow_key_ct(key, ci->id);
	else
		memcpy(key, &pc->key, sizeof(*key)); /* padding too: keys are hashed whole */
}

/* Sets the BLOCKED label of a flow known from its first packet only: its
 * connection is looked up first (where it lives, its id). */
static int block_label(struct worker *w, const struct fp_tuple *t, uint16_t zone,
		       struct ct_info *ci, struct ct_where *where)
{
	if (!where->found) {
		struct ct_info found;
		if (ct_lookup(w, t, zone, &found, where))
			return -ENOENT;
		ci->has_id = found.has_id;
		ci->id = found.id;
	}
	return ct_set_label(w, t, where, POLICY_CT_LABEL_BLOCKED);
}

static void judge_packet(struct worker *w, uint16_t queue, uint32_t id, const uint8_t *pkt,
			 size_t len, uint32_t mark, const struct nlattr *ct_attr)
{
	struct ct_info ci = { 0 };
	struct ct_where where = { false, 0, false };
	struct pkt_conn pc;
	struct fp_flow_key key;
	struct fp_event ev;
	bool has_event = false;
	enum fp_verdict v;
	unsigned rule = (unsigned)(queue - w->queue) / w->fp->n_workers; /* 0: block 0 */
	struct fp_packet pk;

	fp_packet_parse(&pk, pkt, len); /* once: for the lookup and the judge */
	conn_of(w, &pk, mark, &pc);     /* once: its tuple, zone and memo slot */
	if (!rule && take_synack(w, &pk, &pc)) {
		send_verdict(w, queue, id, NF_ACCEPT, -1, NULL);
		return;
	}
	/* A packet of a rule's block over ctnetlink is judged alone without
	 * a lookup (packet_ct_needed): a TCP one is a SYN (a bare one passes,
	 * found or not; one with data is dropped either way) or a connection
	 * picked up in its middle (dropped), a UDP one its flow's first
	 * datagram (the next ones come on block 0 with the PENDING label). */
	int rc = rule && !ct_attr && !packet_ct_needed(w, &pc)
		     ? -ENOENT
		     : packet_ct(w, ct_attr, &pc, rule != 0, &ci, &where);
	if (rc && rule) {
		v = judge_first(w, rule, &pk, &ev, &has_event);
		rc = -ENOENT; /* no connection to label */
		if ((v == FP_CONTINUE || v == FP_DONE) && !w->glue && pc.has_tuple) {
			/* a new connection of this tuple: what an older one left
			 * is not its stream; its next packets need no lookup */
			fp_flows_forget(w->flows, &pc.key);
			ct_cache_put_first(w, &pc, rule, &pk);
		}
	} else if (rc) {
		/* Nothing to judge by: it passes (fail-open), unless the parser
		 * cannot walk it (then nobody could judge it). */
		v = fp_judge_unknown_packet(&pk, &w->stats);
	} else if ((ci.labels[POLICY_CT_LABEL_BLOCKED / 8] &
		    (1u << (POLICY_CT_LABEL_BLOCKED % 8))) ||
		   (ci.has_id && blocked_get(w, ci.id))) {
		/* Queued before its flow was blocked (in flight while the worker
		 * judged the deciding packet): the kernel drops the flow's later
		 * packets, this one is dropped here. Judged afresh it would start
		 * a new stream and could pass. Its labels may not show BLOCKED:
		 * with the glue they are those of when it was queued, so the
		 * worker remembers the connections it blocked (blocked_put). */
		w->stats.packets++;
		w->stats.bytes += pk.len;
		w->stats.after_block++;
		v = FP_DROP_SEGMENT;
		rc = -ENOENT; /* labelled already */
	} else {
		flow_key(w, &pc, &ci, &key);
		seed_from_syn(w, &pc, &key);
		if (w->glue)
			glue_remember_syn(w, &pk, &pc);
		v = fp_judge_packet_key(w->flows, w->rules->rs, &key, ci.id, ci.labels, &pk,
					now_seconds(), &w->stats, &ev, &has_event);
	}

	int label = rc              ? -1
		    : v == FP_DONE  ? POLICY_CT_LABEL_DONE
		    : v == FP_BLOCK ? POLICY_CT_LABEL_BLOCKED
				    : -1;
	uint32_t done_mark = mark | POLICY_MARK_INSPECT_DONE;
	const uint32_t *new_mark = NULL;
	if (label >= 0 && !w->glue) {
		/* the flow's next packets (in flight) are looked up afresh */
		ct_cache_forget(w, &pc);
		if (label == POLICY_CT_LABEL_DONE) {
			/* the kernel sets the label as the packet goes on
			 * (policy/lower.h, POLICY_MARK_INSPECT_DONE) */
			new_mark = &done_mark;
		} else if (block_label(w, &pc.key.tuple, pc.key.zone, &ci, &where)) {
			count_verdict_error(w);
			label = -1;
		}
		if (label >= 0 && pc.key.tuple.protocol == IPPROTO_UDP)
			labelled_put(w, &pc);
	}
	if (!rc && v == FP_BLOCK && ci.has_id)
		blocked_put(w, ci.id);
	if (has_event) {
		ev.ct_id = ci.has_id ? ci.id : 0; /* a cleared flow's may not be known */
		event_push(w->fp, &ev);
	}
	int verdict = v == FP_BLOCK || v == FP_DROP_SEGMENT ? NF_DROP : NF_ACCEPT;
	send_verdict(w, queue, id, verdict, label, new_mark);
	if (v == FP_BLOCK && has_event && ev.protocol == IPPROTO_TCP) {
		/* the BLOCKED label first, then the resets */
		batch_flush(w);
		send_resets(w, &ev);
	}
}

static void packet_cb(const struct nlmsghdr *nlh, struct worker *w)
{
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr)) {
		/* a packet without a verdict: a run would accept it (run_close) */
		w->no_run = true;
		count_verdict_error(w);
		return;
	}
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	const uint8_t *pkt = NULL;
	size_t len = 0;
	if (attr[NFQA_PAYLOAD]) {
		pkt = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	uint16_t queue = ntohs(nfg->res_id);
	if (queue < w->queue || (queue - w->queue) % w->fp->n_workers)
		return; /* not one of ours */
	uint32_t mark = attr[NFQA_MARK] && mnl_attr_get_payload_len(attr[NFQA_MARK]) == 4
			    ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK]))
			    : 0;
	judge_packet(w, queue, id, pkt, len, mark, attr[NFQA_CT]);
}

/* Handles every message of one read. Not mnl_cb_run: it stops at the first
 * error message (a verdict the kernel refused), and the packets after it
 * in the same read would never get theirs. */
static void handle_messages(struct worker *w, const uint8_t *buf, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(*e)) && e->error) {
				/* a verdict refused leaves its packet queued */
				count_verdict_error(w);
				w->no_run = true;
			}
			continue;
		}
		if ((nlh->nlmsg_type & 0xff) == NFQNL_MSG_PACKET &&
		    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nfgenmsg)))
			packet_cb(nlh, w);
	}
}

/* Reads up to `max` (at most DRAIN_MSGS) packet messages into w->buf's
 * buffers, their lengths into len[] (0: cut short, MSG_TRUNC; a buffer of
 * a whole packet's size prevents it, and then a packet may have lost its
 * verdict: no more runs, run_close). With `wait`, waits up to
 * WORKER_WAIT_MS for the first and takes those behind it that wait
 * already in the same call (MSG_WAITFORONE); else takes only what waits.
 * How many were read (0: none). */
static unsigned queue_recv(struct worker *w, unsigned max, bool wait, size_t *len)
{
	struct iovec iov[DRAIN_MSGS];
	struct mmsghdr msgs[DRAIN_MSGS];

	memset(msgs, 0, sizeof(msgs));
	for (unsigned i = 0; i < max; i++) {
		iov[i] = (struct iovec){ w->buf + (size_t)i * RECV_BUF_SIZE, RECV_BUF_SIZE };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	int n = recvmmsg(mnl_socket_get_fd(w->nl), msgs, max, wait ? MSG_WAITFORONE : MSG_DONTWAIT,
			 NULL);
	for (int i = 0; i < n; i++) {
		len[i] = msgs[i].msg_len;
		if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			w->no_run = true;
			count_verdict_error(w);
			len[i] = 0;
		}
	}
	return n > 0 ? (unsigned)n : 0;
}

/* Handles the n messages queue_recv read, in order. */
static void queue_handle(struct worker *w, unsigned n, const size_t *len)
{
	for (unsigned i = 0; i < n; i++)
		if (len[i])
			handle_messages(w, w->buf + (size_t)i * RECV_BUF_SIZE, len[i]);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t len[DRAIN_MSGS];

	while (!atomic_load(&w->fp->stop)) {
		/* The first read of a round waits (no poll before it: one
		 * system call less per packet when packets come one by one),
		 * and takes the packets behind the first that wait already. */
		unsigned got = queue_recv(w, DRAIN_MSGS, true, len);
		/* one reference a round: the batch is judged with the rules of
		 * now, and the queues of their rules are bound */
		w->rules = rules_get(w->fp);
		/* Drain what waits (DRAIN_MSGS packets a system call), up to
		 * BATCH_PACKETS, the verdicts going out together; what the
		 * socket could not hold, the kernel dropped or (failing open)
		 * accepted. A read that found fewer than it could take found
		 * the socket empty. */
		for (unsigned n = 0, want = DRAIN_MSGS; got;) {
			queue_handle(w, got, len);
			n += got;
			if (got < want || n >= BATCH_PACKETS)
				break;
			want = BATCH_PACKETS - n < DRAIN_MSGS ? BATCH_PACKETS - n : DRAIN_MSGS;
			got = queue_recv(w, want, false, len);
		}
		batch_flush(w);
		bind_blocks(w, (unsigned)fp_ruleset_count(w->rules->rs) + 1);
		rules_put(w->fp, w->rules);
		w->rules = NULL;
		pthread_mutex_lock(&w->stats_lock);
		w->published = w->stats;
		pthread_mutex_unlock(&w->stats_lock);
	}
	return NULL;
}

/* ---- start and stop ---- */

static void worker_close(struct worker *w)
{
	if (w->nl) {
		queue_config(w, NFQNL_CFG_CMD_UNBIND, 0);
		mnl_socket_close(w->nl);
	}
	nl_sock_close(&w->ct);
	if (w->raw4 >= 0)
		close(w->raw4);
	if (w->raw6 >= 0)
		close(w->raw6);
	fp_flows_free(w->flows);
	fp_flows_free(w->first);
	free(w->buf);
	free(w->batch);
	free(w->ct_cache);
	free(w->labelled);
	free(w->blocked);
	pthread_mutex_destroy(&w->stats_lock);
}

static int worker_open(struct fastpath *fp, struct worker *w, const char *netns, uint16_t queue,
		       size_t max_flows)
{
	w->fp = fp;
	w->queue = queue;
	pthread_mutex_init(&w->stats_lock, NULL);
	/* without them a blocked flow still ends, its ends time out */
	w->raw4 = raw_open(netns, AF_INET);
	w->raw6 = raw_open(netns, AF_INET6);
	/* zeroed once: a datagram is matched where it lies, and PCRE2's JIT
	 * may read a little past its end */
	w->buf = calloc(DRAIN_MSGS, RECV_BUF_SIZE);
	w->batch = malloc(BATCH_BUF_SIZE);
	w->ct_cache = calloc(CT_CACHE_SLOTS, sizeof(*w->ct_cache));
	w->labelled = calloc(LABELLED_SLOTS, sizeof(*w->labelled));
	w->blocked = calloc(BLOCKED_SLOTS, sizeof(*w->blocked));
	w->flows = fp_flows_new(max_flows);
	w->first = fp_flows_new(1);
	w->blocks = 1;
	if (!w->buf || !w->batch || !w->ct_cache || !w->labelled || !w->blocked || !w->flows ||
	    !w->first)
		return -ENOMEM;
	if (!(w->nl = socket_open(netns, &w->portid)))
		return -errno ? -errno : -EIO;
	int rc = queue_bind(w);
	if (rc) {
		mnl_socket_close(w->nl);
		w->nl = NULL;
		return rc;
	}
	/* from now on the worker drains it: a read waits at most
	 * WORKER_WAIT_MS (the unbind at stop reads its answer the same way) */
	struct timeval tv = { 0, WORKER_WAIT_MS * 1000 };
	if (setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	if (!w->glue && (rc = nl_sock_open(&w->ct, NETLINK_NETFILTER, netns)))
		return rc;
	return 0;
}

void fastpath_stop(struct fastpath *fp)
{
	if (!fp)
		return;
	atomic_store(&fp->stop, 1);
	for (unsigned i = 0; i < fp->n_workers; i++)
		if (fp->workers[i].running)
			pthread_join(fp->workers[i].thread, NULL);
	for (unsigned i = 0; i < fp->n_workers; i++)
		worker_close(&fp->workers[i]);
	free(fp->workers);
	rules_put_locked(fp->current);
	pthread_mutex_destroy(&fp->rules_lock);
	pthread_mutex_destroy(&fp->events_lock);
	if (fp->event_fd >= 0)
		close(fp->event_fd);
	free(fp->netns);
	free(fp);
}

int fastpath_start_flags(struct fastpath **out, const char *netns, uint16_t queue, unsigned workers,
			 unsigned flags)
{
	*out = NULL;
	if (!workers || workers > FASTPATH_MAX_WORKERS || queue + workers - 1 > UINT16_MAX)
		return -EINVAL;
	struct fastpath *fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	pthread_mutex_init(&fp->rules_lock, NULL);
	pthread_mutex_init(&fp->events_lock, NULL);
	fp->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fp->workers = calloc(workers, sizeof(*fp->workers));
	fp->flags = flags;
	fp->queue = queue;
	fp->netns = netns ? strdup(netns) : NULL;
	if (fp->event_fd < 0 || !fp->workers || (netns && !fp->netns)) {
		fastpath_stop(fp);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < workers; i++)
		fp->workers[i].raw4 = fp->workers[i].raw6 = -1;
	/* An empty ruleset: every label names an unknown rule, flows clear. */
	struct policy none = { 0 };
	char err[64];
	fp->current = rules_ref_new(fp_ruleset_build(&none, err, sizeof(err)));
	if (!fp->current || !fp->current->rs) {
		fastpath_stop(fp);
		return -ENOMEM;
	}
	fp->n_workers = workers;
	for (unsigned i = 0; i < workers; i++) {
		int rc = worker_open(fp, &fp->workers[i], netns, (uint16_t)(queue + i),
				     FP_MAX_FLOWS / workers);
		if (rc) {
			fastpath_stop(fp);
			return rc;
		}
	}
	/* Workers start with every signal blocked (they inherit the mask), so
	 * the caller's handlers run on the caller's thread and never cut a
	 * worker's conntrack request short. */
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	int rc = 0;
	for (unsigned i = 0; i < workers && !rc; i++) {
		struct worker *w = &fp->workers[i];
		rc = pthread_create(&w->thread, NULL, worker_main, w);
		w->running = !rc;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc) {
		fastpath_stop(fp);
		return -rc;
	}
	*out = fp;
	return 0;
}

int fastpath_start_netns(struct fastpath **out, const char *netns, uint16_t queue, unsigned workers)
{
	return fastpath_start_flags(out, netns, queue, workers, 0);
}

/* The kernel's table of queues, one line per queue in the reading thread's
 * namespace (nfnetlink_queue.c, seq_show): number, peer port id, packets
 * waiting, copy mode, copy range, dropped for a full queue, dropped for a
 * full socket, the last packet id, 1. */
#define QUEUE_TABLE "/proc/thread-self/net/netfilter/nfnetlink_queue"

size_t fastpath_queue_stats(const struct fastpath *fp, struct fastpath_queue_stat *out, size_t max)
{
	size_t n = 0;
	int saved;

	/* block 0 and one per inspect rule of the current rules (the workers
	 * bind them; their own count is theirs to touch) */
	pthread_mutex_lock((pthread_mutex_t *)&fp->rules_lock);
	unsigned blocks = (unsigned)fp_ruleset_count(fp->current->rs) + 1;
	pthread_mutex_unlock((pthread_mutex_t *)&fp->rules_lock);
	unsigned last = fp->queue + blocks * fp->n_workers; /* past our queues */
	if (nl_netns_enter(fp->netns, &saved))
		return 0;
	FILE *f = fopen(QUEUE_TABLE, "re");
	if (nl_netns_leave(saved))
		abort(); /* still in the target namespace: never go on from there */
	if (!f)
		return 0;
	unsigned q, portid, waiting, mode, range, qdrop, udrop, seq, one;
	while (n < max && fscanf(f, "%u %u %u %u %u %u %u %u %u", &q, &portid, &waiting, &mode,
				 &range, &qdrop, &udrop, &seq, &one) == 9) {
		if (q < fp->queue || q >= last)
			continue;
		out[n++] = (struct fastpath_queue_stat){ (uint16_t)q, waiting, qdrop, udrop };
	}
	fclose(f);
	return n;
}

int fastpath_start(struct fastpath **out, uint16_t queue, unsigned workers)
{
	return fastpath_start_netns(out, NULL, queue, workers);
}
