/* The incremental commit: the revision marker and the plan (txn_delta.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "appliance/nftio.h"
#include "appliance/nftio_internal.h"
#include "appliance/txn_delta.h"

int txn_delta_mark_add(struct ir_table *ir)
{
	struct ir_chain *c = ir_chain_add(ir, TXN_DELTA_MARK_CHAIN);
	return c ? 0 : -ENOMEM;
}

void txn_delta_mark_set(struct ir_table *ir, unsigned rev, const char *hash)
{
	struct ir_chain *c = ir_chain_find(ir, TXN_DELTA_MARK_CHAIN);
	snprintf(ir->comment, sizeof(ir->comment), "hvgate");
	if (c)
		snprintf(c->comment, sizeof(c->comment), "hvgate rev=%u hash=%s", rev, hash);
}

struct mark_ctx {
	char *buf;
	size_t size;
	bool found;
};

static int mark_udata_cb(const struct nftnl_udata *attr, void *data)
{
	struct mark_ctx *c = data;
	const char *v = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);
	if (nftnl_udata_type(attr) != NFTNL_UDATA_CHAIN_COMMENT || !len || v[len - 1] != 0)
		return 0;
	snprintf(c->buf, c->size, "%s", v);
	c->found = true;
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *nc = nftnl_chain_alloc();
	uint32_t len = 0;
	if (!nc)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, nc) < 0) {
		nftnl_chain_free(nc);
		return MNL_CB_ERROR;
	}
	const void *ud = nftnl_chain_get_data(nc, NFTNL_CHAIN_USERDATA, &len);
	if (ud && len)
		nftnl_udata_parse(ud, len, mark_udata_cb, data);
	nftnl_chain_free(nc);
	return MNL_CB_OK;
}

int txn_delta_kernel_mark(const char *netns, char *buf, size_t size)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct mark_ctx c = { buf, size, false };
	struct nftio_sock s;
	if (!size)
		return -EINVAL;
	buf[0] = 0;
	int err = nftio_sock_open(netns, &s);
	if (err)
		return err;
	struct nftnl_chain *nc = nftnl_chain_alloc();
	if (!nc) {
		nftio_sock_close(&s);
		return -ENOMEM;
	}
	nftnl_chain_set_str(nc, NFTNL_CHAIN_TABLE, IR_TABLE_NAME);
	nftnl_chain_set_str(nc, NFTNL_CHAIN_NAME, TXN_DELTA_MARK_CHAIN);
	nftnl_chain_set_u32(nc, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_ACK, s.seq++);
	nftnl_chain_nlmsg_build_payload(nlh, nc);
	nftnl_chain_free(nc);
	err = nftio_sock_talk(&s, nlh, chain_cb, &c);
	nftio_sock_close(&s);
	if (!err && c.found)
		return 0;
	/* No marker: a table of an older hvgated keeps it in its comment. */
	return nftio_table_comment(netns, buf, size);
}

struct ir_diff *txn_delta_plan(const struct ir_table *running, const struct ir_table *cand, char *mode, size_t size)
{
	struct ir_diff *d = NULL;
	if (!running) {
		snprintf(mode, size, "full replace (nothing known to run)");
		return NULL;
	}
	if (getenv(TXN_DELTA_FULL_ENV)) {
		snprintf(mode, size, "full replace (%s is set)", TXN_DELTA_FULL_ENV);
		return NULL;
	}
	if (ir_diff_compute(running, cand, &d)) {
		snprintf(mode, size, "full replace (out of memory for the delta)");
		return NULL;
	}
	if (d->full) {
		snprintf(mode, size, "full replace (%s)", d->why);
		ir_diff_free(d);
		return NULL;
	}
	snprintf(mode, size, "incremental (%zu objects changed)", d->n_changed);
	return d;
}
