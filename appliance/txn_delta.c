/* The incremental commit: the revision marker and the plan (txn_delta.h). */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "appliance/kernel/nftio.h"
#include "appliance/kernel/nftio_internal.h"
#include "appliance/txn_delta.h"
#include "policy/hash.h"

int txn_delta_mark_add(struct ir_table *ir)
{
	struct ir_chain *c = ir_chain_add(ir, TXN_DELTA_MARK_CHAIN);
	return c ? 0 : -ENOMEM;
}

void txn_delta_size_headroom(struct ir_table *ir)
{
	for (size_t i = 0; i < ir->n_sets; i++) {
		uint32_t size = ir->sets[i].size, room = 1;
		if (!size)
			continue;
		while (room < size && room < (1u << 31))
			room <<= 1;
		ir->sets[i].size = room > size ? room : size;
	}
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

	memset(req, 0, sizeof(req)); /* attribute padding goes to the kernel */
	struct mark_ctx c = { buf, size, false };
	struct nl_sock s;
	if (!size)
		return -EINVAL;
	buf[0] = 0;
	int err = nftio_sock_open(netns, &s);
	if (err)
		return err;
	struct nftnl_chain *nc = nftnl_chain_alloc();
	if (!nc) {
		nl_sock_close(&s);
		return -ENOMEM;
	}
	nftnl_chain_set_str(nc, NFTNL_CHAIN_TABLE, IR_TABLE_NAME);
	nftnl_chain_set_str(nc, NFTNL_CHAIN_NAME, TXN_DELTA_MARK_CHAIN);
	nftnl_chain_set_u32(nc, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	struct nlmsghdr *nlh =
	    nftnl_nlmsg_build_hdr(req, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_ACK, s.seq++);
	nftnl_chain_nlmsg_build_payload(nlh, nc);
	nftnl_chain_free(nc);
	err = nl_sock_talk(&s, nlh, chain_cb, &c);
	nl_sock_close(&s);
	if (!err && c.found)
		return 0;
	/* No marker: a table of an older hvgated keeps it in its comment. */
	return nftio_table_comment(netns, buf, size);
}

struct ir_diff *txn_delta_plan(const struct ir_table *running,
			       const struct ir_diff_prints *running_prints,
			       const struct ir_table *cand,
			       const struct ir_diff_prints *cand_prints, char *mode, size_t size)
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
	if (ir_diff_compute_printed(running, running_prints, cand, cand_prints, &d)) {
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

void txn_delta_handles_free(struct txn_delta_handles *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_chains; i++)
		free(h->rule[i]);
	free(h->rule);
	free(h);
}

/* One dump's rules, in the kernel's order: chain name and handle. */
struct handle_ctx {
	const struct ir_table *t;
	struct txn_delta_handles *h;
	size_t *n;     /* per chain: handles read */
	size_t last;   /* the chain of the last rule (dumps come chain by chain) */
	size_t *index; /* chains by name: open addressing, (size_t)-1 empty */
	size_t cap;
	bool overflow;
};

static size_t name_slot(const char *name, size_t cap)
{
	return (size_t)policy_fnv64(POLICY_FNV64_OFFSET_BASIS, name, strlen(name)) & (cap - 1);
}

/* The name index of t's chains: a dump of a table of tens of thousands of
 * chains must not search them all for every chain it comes to. */
static int chain_index(struct handle_ctx *c)
{
	c->cap = 16;
	while (c->cap < 2 * c->t->n_chains)
		c->cap <<= 1;
	c->index = malloc(c->cap * sizeof(*c->index));
	if (!c->index)
		return -ENOMEM;
	memset(c->index, 0xff, c->cap * sizeof(*c->index));
	for (size_t i = 0; i < c->t->n_chains; i++) {
		size_t h = name_slot(c->t->chains[i].name, c->cap);
		while (c->index[h] != (size_t)-1)
			h = (h + 1) & (c->cap - 1);
		c->index[h] = i;
	}
	return 0;
}

static int rule_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);
	if (type == NFTA_RULE_CHAIN || type == NFTA_RULE_HANDLE)
		tb[type] = a;
	return MNL_CB_OK;
}

static size_t chain_of(struct handle_ctx *c, const char *name)
{
	if (c->last < c->t->n_chains && !strcmp(c->t->chains[c->last].name, name))
		return c->last;
	for (size_t h = name_slot(name, c->cap); c->index[h] != (size_t)-1;
	     h = (h + 1) & (c->cap - 1))
		if (!strcmp(c->t->chains[c->index[h]].name, name))
			return c->last = c->index[h];
	return (size_t)-1;
}

static int handle_cb(const struct nlmsghdr *nlh, void *data)
{
	struct handle_ctx *c = data;
	const struct nlattr *tb[NFTA_RULE_MAX + 1] = { 0 };
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), rule_attr_cb, tb) < 0 ||
	    !tb[NFTA_RULE_CHAIN] || !tb[NFTA_RULE_HANDLE] ||
	    mnl_attr_validate(tb[NFTA_RULE_CHAIN], MNL_TYPE_NUL_STRING) < 0 ||
	    mnl_attr_validate(tb[NFTA_RULE_HANDLE], MNL_TYPE_U64) < 0)
		return MNL_CB_OK;
	size_t ci = chain_of(c, mnl_attr_get_str(tb[NFTA_RULE_CHAIN]));
	if (ci == (size_t)-1 || !c->h->rule[ci])
		return MNL_CB_OK;
	if (c->n[ci] >= c->t->chains[ci].n_rules) {
		c->n[ci]++; /* more than the IR has: the row is dropped below */
		return MNL_CB_OK;
	}
	c->h->rule[ci][c->n[ci]++] = be64toh(mnl_attr_get_u64(tb[NFTA_RULE_HANDLE]));
	return MNL_CB_OK;
}

/* GETRULE dump of the table (chain NULL) or of one chain. */
static int dump_rules(struct nl_sock *s, struct handle_ctx *c, const char *chain)
{
	char req[MNL_SOCKET_BUFFER_SIZE];

	memset(req, 0, sizeof(req)); /* attribute padding goes to the kernel */
	struct nlmsghdr *nlh =
	    nftnl_nlmsg_build_hdr(req, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, s->seq++);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, IR_TABLE_NAME);
	if (chain)
		mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain);
	return nl_sock_dump(s, nlh, handle_cb, c);
}

static bool chain_read_again(const struct ir_diff *diff, size_t i,
			     const struct txn_delta_handles *prev)
{
	return !diff || diff->chain_op[i] != IR_DIFF_KEEP || diff->chain_old[i] == IR_DIFF_NONE ||
	       !prev || diff->chain_old[i] >= prev->n_chains || !prev->rule[diff->chain_old[i]];
}

int txn_delta_handles_read(const char *netns, const struct ir_table *t, const struct ir_diff *diff,
			   const struct txn_delta_handles *prev, struct txn_delta_handles **out)
{
	struct txn_delta_handles *h = calloc(1, sizeof(*h));
	size_t *n = calloc(t->n_chains ? t->n_chains : 1, sizeof(*n));
	struct nl_sock s;
	int err = -ENOMEM;
	*out = NULL;
	if (!h || !n || !(h->rule = calloc(t->n_chains ? t->n_chains : 1, sizeof(*h->rule))))
		goto fail;
	h->of = t;
	h->n_chains = t->n_chains;
	size_t to_read = 0;
	for (size_t i = 0; i < t->n_chains; i++) {
		size_t nr = t->chains[i].n_rules;
		if (!(h->rule[i] = malloc((nr ? nr : 1) * sizeof(**h->rule))))
			goto fail;
		if (chain_read_again(diff, i, prev)) {
			to_read++;
			continue;
		}
		memcpy(h->rule[i], prev->rule[diff->chain_old[i]], nr * sizeof(**h->rule));
		n[i] = nr;
	}
	if ((err = nftio_sock_open(netns, &s)))
		goto fail;
	struct handle_ctx c = { .t = t, .h = h, .n = n, .last = (size_t)-1 };
	if ((err = chain_index(&c))) {
		nl_sock_close(&s);
		goto fail;
	}
	if (!diff || to_read > t->n_chains / 4) {
		/* one dump of everything is cheaper than many: every row again */
		memset(n, 0, t->n_chains * sizeof(*n));
		err = dump_rules(&s, &c, NULL);
	} else {
		err = 0;
		for (size_t i = 0; !err && i < t->n_chains; i++)
			if (chain_read_again(diff, i, prev))
				err = dump_rules(&s, &c, t->chains[i].name);
	}
	nl_sock_close(&s);
	free(c.index);
	if (err)
		goto fail;
	for (size_t i = 0; i < t->n_chains; i++)
		if (n[i] != t->chains[i].n_rules) {
			free(h->rule[i]);
			h->rule[i] = NULL;
		}
	free(n);
	*out = h;
	return 0;
fail:
	free(n);
	txn_delta_handles_free(h);
	return err;
}

void txn_delta_handles_use(const char *netns, const struct ir_table *running,
			   struct txn_delta_handles **h, struct ir_diff *diff)
{
	if (!diff)
		return;
	if (*h && (*h)->of != running) {
		txn_delta_handles_free(*h);
		*h = NULL;
	}
	if (!*h && txn_delta_handles_read(netns, running, NULL, NULL, h))
		*h = NULL;
	diff->handles = *h ? (const uint64_t *const *)(*h)->rule : NULL;
}

void txn_delta_handles_after(const char *netns, const struct ir_table *t,
			     struct txn_delta_handles **h, const struct ir_diff *diff)
{
	struct txn_delta_handles *next = NULL;
	if (txn_delta_handles_read(netns, t, diff, diff ? *h : NULL, &next))
		next = NULL;
	txn_delta_handles_free(*h);
	*h = next;
}

struct since_slot {
	const char *id; /* NULL: empty; points into `names` */
	time_t since;
};

struct txn_delta_since {
	struct since_slot *slot;
	size_t cap;
	char *names; /* every id, NUL-separated */
};

static size_t since_hash(const char *id, size_t cap)
{
	return (size_t)policy_fnv64(POLICY_FNV64_OFFSET_BASIS, id, strlen(id)) & (cap - 1);
}

static struct since_slot *since_find(const struct txn_delta_since *s, const char *id)
{
	size_t i = since_hash(id, s->cap);
	while (s->slot[i].id && strcmp(s->slot[i].id, id))
		i = (i + 1) & (s->cap - 1);
	return &s->slot[i];
}

time_t txn_delta_since_get(const struct txn_delta_since *s, const char *id)
{
	if (!s || !id)
		return 0;
	const struct since_slot *x = since_find(s, id);
	return x->id ? x->since : 0;
}

void txn_delta_since_free(struct txn_delta_since *s)
{
	if (!s)
		return;
	free(s->slot);
	free(s->names);
	free(s);
}

/* Whether the apply by `df` sent rule r of candidate chain c. */
static bool rule_sent(const struct ir_diff *df, size_t c, size_t r)
{
	if (!df || df->chain_op[c] == IR_DIFF_ADD || df->chain_op[c] == IR_DIFF_RECREATE)
		return true;
	if (df->chain_op[c] == IR_DIFF_KEEP)
		return false;
	const struct ir_diff_rules *pl = &df->chain_rules[c];
	if (!pl->planned || !df->handles || !df->handles[df->chain_old[c]])
		return true; /* flushed and filled again */
	return pl->old_of[r] == IR_DIFF_NONE;
}

void txn_delta_since_update(struct txn_delta_since **sp, const struct ir_table *t,
			    const struct ir_diff *diff, time_t now)
{
	struct txn_delta_since *old = *sp, *s = calloc(1, sizeof(*s));
	size_t n = 0, bytes = 0;
	for (size_t c = 0; c < t->n_chains; c++)
		for (size_t r = 0; r < t->chains[c].n_rules; r++)
			if (t->chains[c].rules[r].comment[0]) {
				n++;
				bytes += strlen(t->chains[c].rules[r].comment) + 1;
			}
	*sp = NULL;
	if (!s)
		goto out;
	s->cap = 16;
	while (s->cap < 2 * n)
		s->cap <<= 1;
	s->slot = calloc(s->cap, sizeof(*s->slot));
	s->names = malloc(bytes ? bytes : 1);
	if (!s->slot || !s->names) {
		txn_delta_since_free(s);
		goto out;
	}
	char *next = s->names;
	for (size_t c = 0; c < t->n_chains; c++)
		for (size_t r = 0; r < t->chains[c].n_rules; r++) {
			const char *id = t->chains[c].rules[r].comment;
			if (!id[0])
				continue;
			struct since_slot *x = since_find(s, id);
			if (!x->id) {
				size_t len = strlen(id) + 1;
				x->id = memcpy(next, id, len);
				next += len;
				time_t before = diff ? txn_delta_since_get(old, id) : 0;
				x->since = before ? before : now;
			}
			/* a rule id whose kernel rules were (partly) sent again
			 * counts from now: its sum started again */
			if (rule_sent(diff, c, r))
				x->since = now;
		}
	*sp = s;
out:
	txn_delta_since_free(old);
}
