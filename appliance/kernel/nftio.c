/* nftio: the atomic apply of an IR table, and the small reads around it
 * (generation id, table comment, queue probe). See appliance/kernel/nftio.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "appliance/kernel/nftio.h"
#include "appliance/kernel/nftio_internal.h"
#include "policy/nftnl.h"

/* Receive-buffer bytes per expected ack: an ack is a small skb, but the
 * buffer is charged its truesize (about 1 KiB; nft reserves 1024 per
 * command in mnl_batch_talk()); twice that leaves room. */
#define ACK_RCVBUF_BYTES 2048u
#define RCVBUF_MIN       (1u << 20)
/* The kernel queues every ack before sendmsg() returns; this only bounds
 * a wait for acks that should already be there. */
#define ACK_WAIT_MS 5000
/* Errors reported for one batch; later ones are usually consequences. */
#define MAX_REPORTED_ERRORS 8
#define RECV_BUF_BYTES      (65536u + 4096u)

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ack_state {
	const struct policy_nftnl_batch *b;
	size_t acks; /* messages acknowledged without error */
	size_t n_errors;
	bool overrun; /* ENOBUFS: the kernel dropped acks */
	struct {
		uint32_t seq;
		int err;
		char msg[160];
	} errors[MAX_REPORTED_ERRORS];
};

/* The kernel's extended-ack text (NETLINK_EXT_ACK), if it sent one. */
static void extack_text(const struct nlmsghdr *nlh, char *out, size_t size)
{
	out[0] = 0;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += mnl_nlmsg_get_payload_len(&err->msg);
	const struct nlattr *a;
	mnl_attr_for_each(a, nlh, off)
	{
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(out, size, "%s", mnl_attr_get_str(a));
	}
}

static void take_reply(struct ack_state *st, const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_type != NLMSG_ERROR)
		return; /* nothing else is expected for a batch */
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
		return;
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	if (err->error == 0) {
		st->acks++;
		return;
	}
	if (st->n_errors < MAX_REPORTED_ERRORS) {
		typeof(st->errors[0]) *e = &st->errors[st->n_errors];
		e->seq = err->msg.nlmsg_seq;
		e->err = err->error;
		extack_text(nlh, e->msg, sizeof(e->msg));
	}
	st->n_errors++;
}

/* Reads replies until every ack is in or an error arrived and nothing more
 * is queued. Returns 0 or a negative errno of the socket itself. */
static int read_acks(struct nl_sock *s, struct ack_state *st)
{
	char *buf = malloc(RECV_BUF_BYTES);
	if (!buf)
		return -ENOMEM;
	int fd = mnl_socket_get_fd(s->nl);
	int rc = 0;
	for (;;) {
		bool done = st->acks >= st->b->n_acks || st->n_errors;
		ssize_t n = recv(fd, buf, RECV_BUF_BYTES, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			st->overrun = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (done || st->overrun)
				break;
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int pr = poll(&p, 1, ACK_WAIT_MS);
			if (pr == 0) {
				rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (n < 0) {
			rc = -errno;
			break;
		}
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;
		while (mnl_nlmsg_ok(nlh, len)) {
			if (nlh->nlmsg_pid == s->portid || nlh->nlmsg_pid == 0)
				take_reply(st, nlh);
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
	free(buf);
	return rc;
}

static int send_batch(struct nl_sock *s, const struct policy_nftnl_batch *b)
{
	int n_iov = nftnl_batch_iovec_len(b->batch);
	struct iovec *iov = calloc((size_t)n_iov, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	nftnl_batch_iovec(b->batch, iov, (uint32_t)n_iov);
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct msghdr msg = {
		.msg_name = &kernel,
		.msg_namelen = sizeof(kernel),
		.msg_iov = iov,
		.msg_iovlen = (size_t)n_iov,
	};
	ssize_t sent = sendmsg(mnl_socket_get_fd(s->nl), &msg, 0);
	int err = sent < 0 ? -errno : 0;
	free(iov);
	return err;
}

static void report_errors(const struct ack_state *st, const struct ir_table *t,
			  const struct nftio_apply_opts *o, uint32_t genid_before,
			  struct policy_diags *d)
{
	size_t shown = st->n_errors < MAX_REPORTED_ERRORS ? st->n_errors : MAX_REPORTED_ERRORS;
	for (size_t i = 0; i < shown; i++) {
		int err = -st->errors[i].err;
		const struct policy_nftnl_origin *org =
		    policy_nftnl_origin(st->b, st->errors[i].seq);
		const char *extra = st->errors[i].msg[0] ? st->errors[i].msg : NULL;
		if (org && org->kind == POLICY_NFTNL_BATCH && err == ERESTART) {
			policy_error(d, NULL,
				     "ruleset changed by someone else since generation %u "
				     "(now %u); nothing applied",
				     o->expect_genid, genid_before);
			continue;
		}
		char what[160];
		if (org)
			policy_nftnl_origin_describe(org, t, what, sizeof(what));
		else
			snprintf(what, sizeof(what), "message %u", st->errors[i].seq);
		const char *noun =
		    !org                                                               ? "batch"
		    : org->kind == POLICY_NFTNL_RULE                                   ? "rule"
		    : org->kind == POLICY_NFTNL_SET || org->kind == POLICY_NFTNL_ELEMS ? "set"
		    : org->kind == POLICY_NFTNL_CHAIN                                  ? "chain"
										       : "table";
		policy_error(d, org && org->loc.line ? &org->loc : NULL,
			     "kernel refused %s: %s (%s)%s%s", noun, strerror(err), what,
			     extra ? ": " : "", extra ? extra : "");
	}
	if (st->n_errors > shown)
		policy_note(d, NULL, "%zu more kernel errors not shown", st->n_errors - shown);
}

/* Sends `b` on `s` and collects every ack; returns 0, the first kernel
 * error (negative errno), or a socket error. */
static int talk_batch(struct nl_sock *s, const struct policy_nftnl_batch *b, struct ack_state *st)
{
	size_t rcv = b->n_acks * ACK_RCVBUF_BYTES;
	int err = nl_sock_set_buffers(s, rcv < RCVBUF_MIN ? RCVBUF_MIN : rcv, b->bytes + 65536);
	if (err)
		return err;
	memset(st, 0, sizeof(*st));
	st->b = b;
	err = send_batch(s, b);
	if (err)
		return err;
	err = read_acks(s, st);
	if (err)
		return err;
	if (st->n_errors)
		return st->errors[0].err < 0 ? st->errors[0].err : -st->errors[0].err;
	return 0;
}

static bool table_queues(const struct ir_table *t)
{
	for (size_t i = 0; i < t->n_chains; i++)
		for (size_t j = 0; j < t->chains[i].n_rules; j++)
			for (size_t k = 0; k < t->chains[i].rules[j].n_stmts; k++)
				if (t->chains[i].rules[j].stmts[k].kind == IR_S_QUEUE)
					return true;
	return false;
}

int nftio_apply(const struct ir_table *t, const struct nftio_apply_opts *o,
		struct nftio_apply_result *r, struct policy_diags *d)
{
	struct nftio_apply_opts none = { 0 };
	struct nftio_apply_result scratch;
	if (!o)
		o = &none;
	if (!r)
		r = &scratch;
	memset(r, 0, sizeof(*r));

	struct nl_sock s;
	int err = nftio_sock_open(o->netns, &s);
	if (err) {
		policy_error(d, NULL, "cannot open netlink in namespace %s: %s",
			     o->netns ? o->netns : "(current)", strerror(-err));
		return err;
	}
	err = nftio_sock_genid(&s, &r->genid_before);
	if (err) {
		policy_error(d, NULL, "cannot read the ruleset generation: %s", strerror(-err));
		nl_sock_close(&s);
		return err;
	}
	/* Only a table that queues needs to know which queue the kernel has
	 * (the probe is a validated-and-aborted batch: milliseconds). */
	int probe = table_queues(t) ? nftio_probe_native_queue(o->netns) : 0;

	double t0 = now_seconds();
	struct policy_nftnl_opts eo;
	policy_nftnl_opts_default(&eo);
	eo.seq = s.seq;
	eo.native_queue = probe == 1;
	eo.expect_genid_set = o->expect_genid_set;
	eo.expect_genid = o->expect_genid;
	eo.no_commit = o->check_only;
	struct policy_nftnl_batch *b;
	if (o->diff ? policy_emit_nftnl_delta(o->running, t, o->diff, &eo, &b, d)
		    : policy_emit_nftnl(t, &eo, &b, d)) {
		nl_sock_close(&s);
		return -EINVAL;
	}
	s.seq += (uint32_t)b->n_messages;
	double t1 = now_seconds();
	r->build_seconds = t1 - t0;
	r->n_messages = b->n_messages;

	struct ack_state *st = calloc(1, sizeof(*st));
	err = st ? talk_batch(&s, b, st) : -ENOMEM;
	r->kernel_seconds = now_seconds() - t1;
	if (err && st && st->n_errors) {
		report_errors(st, t, o, r->genid_before, d);
		if (st->errors[0].seq == b->first_seq && -st->errors[0].err == ERESTART)
			err = -ERESTART;
	} else if (err) {
		policy_error(d, NULL, "sending the batch failed: %s", strerror(-err));
	} else if (st->overrun) {
		/* Acks were lost, so success is unproven: say so rather
		 * than guess (the generation below tells what happened). */
		err = -ENOBUFS;
		policy_error(d, NULL,
			     "kernel acks were lost (receive buffer overrun); "
			     "check the ruleset generation");
	}
	free(st);
	int gerr = nftio_sock_genid(&s, &r->genid_after);
	if (gerr && !err)
		err = gerr;
	policy_nftnl_batch_free(b);
	nl_sock_close(&s);
	return err;
}

/* A batch of NEWTABLE + DELTABLE: the table is gone afterwards whether it
 * was there or not, in one transaction. */
int nftio_flush(const char *netns, struct policy_diags *d)
{
	struct ir_table *t = ir_table_new(IR_TABLE_NAME);
	if (!t)
		return policy_error(d, NULL, "out of memory"), -ENOMEM;
	struct nl_sock s;
	int err = nftio_sock_open(netns, &s);
	if (err) {
		ir_table_free(t);
		policy_error(d, NULL, "cannot open netlink: %s", strerror(-err));
		return err;
	}
	struct nftnl_batch *batch =
	    nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE);
	struct nftnl_table *nt = nftnl_table_alloc();
	if (!batch || !nt) {
		err = -ENOMEM;
		goto out;
	}
	nftnl_table_set_str(nt, NFTNL_TABLE_NAME, t->name);
	nftnl_table_set_u32(nt, NFTNL_TABLE_FAMILY, t->family);
	uint32_t first = s.seq;
	nftnl_batch_begin(nftnl_batch_buffer(batch), s.seq++);
	nftnl_batch_update(batch);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(batch), NFT_MSG_NEWTABLE,
						     t->family, NLM_F_CREATE | NLM_F_ACK, s.seq++);
	nftnl_table_nlmsg_build_payload(nlh, nt);
	nftnl_batch_update(batch);
	nlh = nftnl_nlmsg_build_hdr(nftnl_batch_buffer(batch), NFT_MSG_DELTABLE, t->family,
				    NLM_F_ACK, s.seq++);
	nftnl_table_nlmsg_build_payload(nlh, nt);
	nftnl_batch_update(batch);
	nftnl_batch_end(nftnl_batch_buffer(batch), s.seq++);
	nftnl_batch_update(batch);

	struct policy_nftnl_origin origins[4] = { 0 };
	struct policy_nftnl_batch b = {
		.batch = batch,
		.first_seq = first,
		.last_seq = first + 3,
		.origins = origins,
		.n_messages = 4,
		.n_acks = 2,
		.bytes = nftnl_batch_buffer_len(batch),
	};
	origins[1].kind = origins[2].kind = POLICY_NFTNL_TABLE;
	struct ack_state st;
	err = talk_batch(&s, &b, &st);
	if (err)
		policy_error(d, NULL, "kernel refused to remove table inet %s: %s", t->name,
			     strerror(-err));
out:
	if (nt)
		nftnl_table_free(nt);
	if (batch)
		nftnl_batch_free(batch);
	nl_sock_close(&s);
	ir_table_free(t);
	return err;
}

static __thread struct {
	bool on;
	struct nl_sock s;
	char netns[256];
} pin;

static bool same_netns(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

int nftio_pin(const char *netns)
{
	if (pin.on)
		return -EBUSY;
	if (netns && strlen(netns) >= sizeof(pin.netns))
		return -ENAMETOOLONG;
	int err = nl_sock_open(&pin.s, NETLINK_NETFILTER, netns);
	if (err)
		return err;
	snprintf(pin.netns, sizeof(pin.netns), "%s", netns ? netns : "");
	pin.on = true;
	return 0;
}

void nftio_unpin(void)
{
	if (!pin.on)
		return;
	nl_sock_close(&pin.s);
	pin.on = false;
}

int nftio_sock_open(const char *netns, struct nl_sock *s)
{
	if (!pin.on || !same_netns(netns, pin.netns))
		return nl_sock_open(s, NETLINK_NETFILTER, netns);
	/* A call before us may have stopped reading early (an error in a
	 * dump, lost acks): drop whatever is left so no stale reply is read
	 * as ours. Bounded: the buffer holds finitely many messages. */
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int fd = mnl_socket_get_fd(pin.s.nl);
	for (int i = 0; i < 65536; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno != ENOBUFS)
			break;
	*s = pin.s;
	s->owner = &pin.s;
	return 0;
}

int nftio_genid(const char *netns, uint32_t *genid)
{
	struct nl_sock s;
	int err = nftio_sock_open(netns, &s);
	if (err)
		return err;
	err = nftio_sock_genid(&s, genid);
	nl_sock_close(&s);
	return err;
}

struct comment_ctx {
	char *buf;
	size_t size;
	bool found;
};

static int comment_udata_cb(const struct nftnl_udata *attr, void *data)
{
	struct comment_ctx *c = data;
	if (nftnl_udata_type(attr) != NFTNL_UDATA_TABLE_COMMENT)
		return 0;
	const char *v = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);
	if (!len || v[len - 1] != 0)
		return -1; /* nft writes the comment NUL-terminated */
	snprintf(c->buf, c->size, "%s", v);
	return 0;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct comment_ctx *c = data;
	struct nftnl_table *nt = nftnl_table_alloc();
	if (!nt)
		return MNL_CB_ERROR;
	if (nftnl_table_nlmsg_parse(nlh, nt) < 0) {
		nftnl_table_free(nt);
		return MNL_CB_ERROR;
	}
	c->found = true;
	uint32_t len = 0;
	const void *ud = nftnl_table_get_data(nt, NFTNL_TABLE_USERDATA, &len);
	if (ud && len)
		nftnl_udata_parse(ud, len, comment_udata_cb, c);
	nftnl_table_free(nt);
	return MNL_CB_OK;
}

int nftio_table_comment(const char *netns, char *buf, size_t size)
{
	if (!size)
		return -EINVAL;
	buf[0] = 0;
	struct nl_sock s;
	int err = nftio_sock_open(netns, &s);
	if (err)
		return err;
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *nt = nftnl_table_alloc();
	if (!nt) {
		nl_sock_close(&s);
		return -ENOMEM;
	}
	nftnl_table_set_str(nt, NFTNL_TABLE_NAME, IR_TABLE_NAME);
	nftnl_table_set_u32(nt, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	struct nlmsghdr *nlh =
	    nftnl_nlmsg_build_hdr(req, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, s.seq++);
	nftnl_table_nlmsg_build_payload(nlh, nt);
	nftnl_table_free(nt);
	struct comment_ctx c = { buf, size, false };
	err = nl_sock_talk(&s, nlh, table_cb, &c);
	nl_sock_close(&s);
	if (!err && !c.found)
		err = -ENOENT;
	return err;
}

/* Name of the throw-away table the probe asks the kernel to validate. */
#define PROBE_TABLE "hvgate_probe"

/* Asks the kernel to validate (and then abort) a batch with one rule using
 * the native queue expression: the kernel refuses an expression it has no
 * module for with ENOENT (after trying to load it), and nothing changes. */
int nftio_probe_native_queue(const char *netns)
{
	struct ir_table *t = ir_table_new(PROBE_TABLE);
	struct ir_chain *c = t ? ir_chain_add(t, "probe") : NULL;
	struct ir_rule *r = c ? ir_rule_add(c) : NULL;
	struct ir_stmt *q = r ? ir_stmt_add(r) : NULL;
	if (!q) {
		ir_table_free(t);
		return -ENOMEM;
	}
	q->kind = IR_S_QUEUE;
	q->queue_bypass = true;
	struct nl_sock s;
	int err = nftio_sock_open(netns, &s);
	if (err) {
		ir_table_free(t);
		return err;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_nftnl_opts eo;
	policy_nftnl_opts_default(&eo);
	eo.seq = s.seq;
	eo.native_queue = true;
	eo.no_commit = true;
	struct policy_nftnl_batch *b;
	if (policy_emit_nftnl(t, &eo, &b, &d)) {
		err = -ENOMEM;
	} else {
		struct ack_state st;
		err = talk_batch(&s, b, &st);
		policy_nftnl_batch_free(b);
	}
	policy_diags_free(&d);
	nl_sock_close(&s);
	ir_table_free(t);
	if (err == -ENOENT || err == -EOPNOTSUPP)
		return 0;
	return err ? err : 1;
}
