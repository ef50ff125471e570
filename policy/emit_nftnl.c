/* IR -> libnftnl objects in one netlink batch (see policy/nftnl.h).
 *
 * Where nft has a choice of encodings, this file picks the one nft 1.0.x
 * picks for the same text, so that both backends leave identical kernel
 * state; tests/net/backend_agree.sh holds us to it.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include "policy/grow.h"
#include "policy/ir_diff.h"
#include "policy/nftnl.h"

/* Batch pages: nft uses 2 MiB pages and lets one message overrun a page by
 * the largest nf_tables message, a set element list whose nest length is a
 * u16 (nftables src/mnl.c, BATCH_PAGE_SIZE and NFT_NLMSG_MAXSIZE). */
#define PAGE_BYTES   (2u * 1024 * 1024)
#define PAGE_OVERRUN (65535u + 4096u)
/* Start a new NEWSETELEM message before the element nest would pass the
 * u16 attribute length, with room for one more element. */
#define ELEMS_NEST_LIMIT 60000u
/* Userdata of one object: NFT_USERDATA_MAXLEN in nf_tables.h. */
#define UDATA_MAX 256
/* nft datatype ids (nftables include/datatype.h, enum datatypes) and the
 * bits one field takes in a concatenated type id (TYPE_BITS). */
enum nft_dtype {
	DT_VERDICT = 1,
	DT_NFPROTO = 2,
	DT_INTEGER = 4,
	DT_IPADDR = 7,
	DT_IP6ADDR = 8,
	DT_INET_PROTOCOL = 12,
	DT_INET_SERVICE = 13,
	DT_ICMP_TYPE = 14,
	DT_MARK = 19,
	DT_CT_STATE = 26,
	DT_ICMP6_TYPE = 29,
	DT_IFNAME = 41,
};
#define DT_BITS 6
/* nft byte orders kept in set userdata (include/expression.h, byteorder). */
enum { BO_INVALID = 0, BO_HOST = 1, BO_BIG = 2 };
/* nft expression kinds and protocol descriptions kept in "typeof" userdata
 * (include/expression.h enum expr_types; include/proto.h enum
 * proto_desc_id and the header field templates). */
enum { EXPR_VERDICT = 1, EXPR_PAYLOAD = 7, EXPR_META = 9, EXPR_CT = 12, EXPR_CONCAT = 13 };
enum { DESC_ICMP = 4, DESC_TH = 11, DESC_IP = 12, DESC_IP6 = 13, DESC_ICMPV6 = 14 };

/* What nft knows about a field beyond the IR's field table. */
struct field_nft {
	uint32_t dtype;
	uint8_t byteorder;
	uint32_t desc, tmpl; /* payload fields: typeof description */
};

static const struct field_nft field_nft[IR_FIELD_COUNT] = {
	[IR_META_NFPROTO] = { DT_NFPROTO, BO_HOST, 0, 0 },
	[IR_META_L4PROTO] = { DT_INET_PROTOCOL, BO_HOST, 0, 0 }, /* meta template: host */
	[IR_META_IIFNAME] = { DT_IFNAME, BO_HOST, 0, 0 },
	[IR_META_OIFNAME] = { DT_IFNAME, BO_HOST, 0, 0 },
	[IR_META_MARK] = { DT_MARK, BO_HOST, 0, 0 },
	[IR_IP_SADDR] = { DT_IPADDR, BO_BIG, DESC_IP, 11 },
	[IR_IP_DADDR] = { DT_IPADDR, BO_BIG, DESC_IP, 12 },
	[IR_IP6_SADDR] = { DT_IP6ADDR, BO_BIG, DESC_IP6, 8 },
	[IR_IP6_DADDR] = { DT_IP6ADDR, BO_BIG, DESC_IP6, 9 },
	[IR_TH_SPORT] = { DT_INET_SERVICE, BO_BIG, DESC_TH, 1 },
	[IR_TH_DPORT] = { DT_INET_SERVICE, BO_BIG, DESC_TH, 2 },
	[IR_ICMP_TYPE] = { DT_ICMP_TYPE, BO_BIG, DESC_ICMP, 1 },
	[IR_ICMPV6_TYPE] = { DT_ICMP6_TYPE, BO_BIG, DESC_ICMPV6, 1 },
	[IR_CT_STATE] = { DT_CT_STATE, BO_HOST, 0, 0 },
	[IR_CT_ZONE] = { DT_INTEGER, BO_HOST, 0, 0 },
	[IR_CT_MARK] = { DT_MARK, BO_HOST, 0, 0 },
	[IR_CT_ORIGINAL_ZONE] = { DT_INTEGER, BO_HOST, 0, 0 },
	/* never set keys: no data type of their own needed */
	[IR_CT_LABEL] = { DT_INTEGER, BO_HOST, 0, 0 },
	[IR_CT_DIRECTION] = { DT_INTEGER, BO_HOST, 0, 0 },
	[IR_FLOW_HASH] = { DT_INTEGER, BO_HOST, 0, 0 },
	[IR_TCP_FLAGS] = { DT_INTEGER, BO_BIG, 0, 0 },
};

#define NO_INDEX ((uint32_t)-1)

struct emit {
	const struct ir_table *t;
	struct policy_nftnl_opts o;
	struct policy_nftnl_batch *b;
	struct policy_diags *d;
	size_t cap_origins;
	uint32_t next_set_id;
	uint32_t *set_ids; /* per IR set, NFTA_SET_ID */
};

static uint32_t pad4(uint32_t len)
{
	return (len + 3) & ~3u;
}

/* nft's register numbering: registers are counted in 32-bit units from
 * NFT_REG_1; a unit offset on a 16-byte boundary is named by its 128-bit
 * register (kept for old kernels), others by NFT_REG32_xx (nftables
 * netlink_put_register()). */
static uint32_t reg_at(uint32_t units)
{
	if (units % 4 == 0)
		return NFT_REG_1 + units / 4;
	return NFT_REG32_00 + units;
}

static int oom(struct emit *e)
{
	return policy_error(e->d, NULL, "out of memory building the netlink batch");
}

/* ---- messages and origins ---- */

static struct nlmsghdr *msg_start(struct emit *e, uint16_t type, uint16_t flags, uint8_t kind,
				  uint32_t chain, uint32_t rule, uint32_t set,
				  const struct policy_loc *loc)
{
	struct policy_nftnl_batch *b = e->b;
	if (POLICY_GROW(b->origins, e->cap_origins, b->n_messages, 256))
		return NULL;
	uint32_t seq = b->first_seq + (uint32_t)b->n_messages;
	bool ack = e->o.ack && kind != POLICY_NFTNL_BATCH;
	struct policy_nftnl_origin *o = &b->origins[b->n_messages++];
	memset(o, 0, sizeof(*o));
	o->msg_type = type;
	o->kind = kind;
	o->ack = ack;
	o->chain = chain;
	o->rule = rule;
	o->set = set;
	if (loc)
		o->loc = *loc;
	b->last_seq = seq;
	b->n_acks += ack;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->batch), type, e->t->family,
				     flags | (ack ? NLM_F_ACK : 0), seq);
}

static int msg_end(struct emit *e)
{
	return nftnl_batch_update(e->b->batch) < 0 ? oom(e) : 0;
}

static int batch_begin(struct emit *e)
{
	struct policy_nftnl_batch *b = e->b;
	if (!msg_start(e, NFNL_MSG_BATCH_BEGIN, 0, POLICY_NFTNL_BATCH, NO_INDEX, NO_INDEX, NO_INDEX,
		       NULL))
		return oom(e);
	/* nftnl_nlmsg_build_hdr() wrote a NEWTABLE-style header; a batch
	 * begin is addressed to the subsystem instead (nfnetlink.h). */
	struct nlmsghdr *nlh = nftnl_batch_buffer(b->batch);
	nlh->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	if (e->o.expect_genid_set)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(e->o.expect_genid));
	return msg_end(e);
}

static int batch_end(struct emit *e)
{
	if (!msg_start(e, NFNL_MSG_BATCH_END, 0, POLICY_NFTNL_BATCH, NO_INDEX, NO_INDEX, NO_INDEX,
		       NULL))
		return oom(e);
	struct nlmsghdr *nlh = nftnl_batch_buffer(e->b->batch);
	nlh->nlmsg_type = NFNL_MSG_BATCH_END;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	return msg_end(e);
}

/* ---- table and chains ---- */

static int put_comment_udata(struct nftnl_udata_buf **out, uint8_t type, const char *comment)
{
	*out = NULL;
	if (!comment || !*comment)
		return 0;
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(UDATA_MAX);
	if (!u || !nftnl_udata_put_strz(u, type, comment)) {
		if (u)
			nftnl_udata_buf_free(u);
		return -1;
	}
	*out = u;
	return 0;
}

static int emit_table_msg(struct emit *e, uint16_t type, bool with_comment)
{
	struct nftnl_table *nt = nftnl_table_alloc();
	struct nftnl_udata_buf *u = NULL;
	if (!nt ||
	    (with_comment && put_comment_udata(&u, NFTNL_UDATA_TABLE_COMMENT, e->t->comment)))
		goto nomem;
	nftnl_table_set_str(nt, NFTNL_TABLE_NAME, e->t->name);
	nftnl_table_set_u32(nt, NFTNL_TABLE_FAMILY, e->t->family);
	if (u && nftnl_table_set_data(nt, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(u),
				      nftnl_udata_buf_len(u)) < 0)
		goto nomem;
	uint16_t flags = type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0;
	struct nlmsghdr *nlh =
	    msg_start(e, type, flags, POLICY_NFTNL_TABLE, NO_INDEX, NO_INDEX, NO_INDEX, NULL);
	if (!nlh)
		goto nomem;
	nftnl_table_nlmsg_build_payload(nlh, nt);
	nftnl_table_free(nt);
	if (u)
		nftnl_udata_buf_free(u);
	return msg_end(e);
nomem:
	if (nt)
		nftnl_table_free(nt);
	if (u)
		nftnl_udata_buf_free(u);
	return oom(e);
}

static const uint32_t hooknum[] = {
	[IR_HOOK_PREROUTING] = NF_INET_PRE_ROUTING,   [IR_HOOK_INPUT] = NF_INET_LOCAL_IN,
	[IR_HOOK_FORWARD] = NF_INET_FORWARD,          [IR_HOOK_OUTPUT] = NF_INET_LOCAL_OUT,
	[IR_HOOK_POSTROUTING] = NF_INET_POST_ROUTING,
};
static const char *const chain_type[] = {
	[IR_CHAIN_FILTER] = "filter", [IR_CHAIN_NAT] = "nat", [IR_CHAIN_ROUTE] = "route"
};

static int emit_chain(struct emit *e, uint32_t ci)
{
	const struct ir_chain *c = &e->t->chains[ci];
	struct nftnl_chain *nc = nftnl_chain_alloc();
	struct nftnl_udata_buf *u = NULL;
	if (!nc || put_comment_udata(&u, NFTNL_UDATA_CHAIN_COMMENT, c->comment))
		goto nomem;
	nftnl_chain_set_str(nc, NFTNL_CHAIN_TABLE, e->t->name);
	nftnl_chain_set_str(nc, NFTNL_CHAIN_NAME, c->name);
	nftnl_chain_set_u32(nc, NFTNL_CHAIN_FAMILY, e->t->family);
	if (c->hook != IR_HOOK_NONE) {
		if ((unsigned)c->hook > IR_HOOK_POSTROUTING || (unsigned)c->type > IR_CHAIN_ROUTE) {
			nftnl_chain_free(nc);
			if (u)
				nftnl_udata_buf_free(u);
			return policy_error(e->d, NULL, "chain %s: bad hook or type in the IR",
					    c->name);
		}
		nftnl_chain_set_u32(nc, NFTNL_CHAIN_HOOKNUM, hooknum[c->hook]);
		nftnl_chain_set_s32(nc, NFTNL_CHAIN_PRIO, c->priority);
		nftnl_chain_set_str(nc, NFTNL_CHAIN_TYPE, chain_type[c->type]);
		nftnl_chain_set_u32(nc, NFTNL_CHAIN_POLICY,
				    c->policy == IR_V_DROP ? NF_DROP : NF_ACCEPT);
	}
	if (u && nftnl_chain_set_data(nc, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(u),
				      nftnl_udata_buf_len(u)) < 0)
		goto nomem;
	struct nlmsghdr *nlh = msg_start(e, NFT_MSG_NEWCHAIN, NLM_F_CREATE, POLICY_NFTNL_CHAIN, ci,
					 NO_INDEX, NO_INDEX, NULL);
	if (!nlh)
		goto nomem;
	nftnl_chain_nlmsg_build_payload(nlh, nc);
	nftnl_chain_free(nc);
	if (u)
		nftnl_udata_buf_free(u);
	e->b->n_chains++;
	return msg_end(e);
nomem:
	if (nc)
		nftnl_chain_free(nc);
	if (u)
		nftnl_udata_buf_free(u);
	return oom(e);
}

/* ---- set keys and values ---- */

static bool field_ok(enum ir_field f)
{
	return (unsigned)f < IR_FIELD_COUNT;
}

/* Bytes of a concatenated key: each field padded to a 32-bit register. */
static uint32_t key_len(const enum ir_field *fields, size_t n)
{
	if (n == 1)
		return ir_field_desc(fields[0])->len;
	uint32_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += pad4(ir_field_desc(fields[i])->len);
	return len;
}

/* Writes the key of one element as the kernel stores it; -1 if a value
 * does not have its field's length. */
static int elem_key(const enum ir_field *fields, size_t n, const struct ir_value *vals,
		    uint8_t *out, uint32_t *len)
{
	uint32_t off = 0;
	memset(out, 0, IR_CONCAT_MAX * IR_VALUE_MAX);
	for (size_t i = 0; i < n; i++) {
		uint8_t flen = ir_field_desc(fields[i])->len;
		if (vals[i].len != flen)
			return -1;
		memcpy(out + off, vals[i].data, flen);
		off += n == 1 ? flen : pad4(flen);
	}
	*len = off;
	return 0;
}

/* Interval arithmetic on one field's value, in its byte order. */
static int val_cmp(const uint8_t *a, const uint8_t *b, uint32_t len, bool host)
{
	for (uint32_t i = 0; i < len; i++) {
		uint32_t k = host ? len - 1 - i : i;
		if (a[k] != b[k])
			return a[k] < b[k] ? -1 : 1;
	}
	return 0;
}

static bool val_all(const uint8_t *v, uint32_t len, uint8_t byte)
{
	for (uint32_t i = 0; i < len; i++)
		if (v[i] != byte)
			return false;
	return true;
}

static void val_incr(uint8_t *v, uint32_t len, bool host)
{
	for (uint32_t i = 0; i < len; i++) {
		uint32_t k = host ? i : len - 1 - i;
		if (++v[k])
			return;
	}
}

/* ---- set userdata, as nft writes it ---- */

static bool put_typeof_field(struct nftnl_udata_buf *u, enum ir_field f)
{
	const struct ir_field_desc *fd = ir_field_desc(f);
	const struct field_nft *fn = &field_nft[f];
	uint32_t kind = fd->load == IR_LOAD_META ? EXPR_META
			: fd->load == IR_LOAD_CT ? EXPR_CT
						 : EXPR_PAYLOAD;
	if (!nftnl_udata_put_u32(u, 0 /* NFTNL_UDATA_SET_TYPEOF_EXPR */, kind))
		return false;
	struct nftnl_udata *data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (!data)
		return false;
	bool ok;
	/* Per-expression layouts: nftables src/meta.c, ct.c, payload.c
	 * *_build_udata(): key (and ct direction, none = -1), or the
	 * protocol description and header template. */
	if (kind == EXPR_META)
		ok = nftnl_udata_put_u32(u, 0, fd->key);
	else if (kind == EXPR_CT)
		ok = nftnl_udata_put_u32(u, 0, fd->key) && nftnl_udata_put_u32(u, 1, (uint32_t)-1);
	else
		ok = nftnl_udata_put_u32(u, 0, fn->desc) && nftnl_udata_put_u32(u, 1, fn->tmpl);
	nftnl_udata_nest_end(u, data);
	return ok;
}

/* "typeof" of a key: one field, or a concatenation whose data nests one
 * entry per field (numbered from 0); `with_fields` false writes the bare
 * concatenation nft writes for a `type a . b` declaration. */
static bool put_typeof(struct nftnl_udata_buf *u, uint8_t attr, const enum ir_field *fields,
		       size_t n, bool with_fields)
{
	struct nftnl_udata *nest = nftnl_udata_nest_start(u, attr);
	if (!nest)
		return false;
	bool ok = true;
	if (n == 1) {
		ok = put_typeof_field(u, fields[0]);
	} else {
		ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, EXPR_CONCAT);
		struct nftnl_udata *data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
		ok = ok && data;
		for (size_t i = 0; ok && with_fields && i < n; i++) {
			struct nftnl_udata *one = nftnl_udata_nest_start(u, (uint8_t)i);
			ok = one && put_typeof_field(u, fields[i]);
			if (one)
				nftnl_udata_nest_end(u, one);
		}
		if (data)
			nftnl_udata_nest_end(u, data);
	}
	nftnl_udata_nest_end(u, nest);
	return ok;
}

/* A named set is declared with `typeof` when one of its fields has no nft
 * type name (ct zone); otherwise with `type` (policy/emit_nft.c does the
 * same). Anonymous sets always carry the key's expression. */
static bool set_uses_typeof(const struct ir_set *s)
{
	if (s->flags & IR_SET_ANONYMOUS)
		return true;
	for (size_t i = 0; i < s->n_key; i++)
		if (!ir_field_desc(s->key[i])->set_type)
			return true;
	return s->data == IR_DATA_VALUE && !ir_field_desc(s->data_field)->set_type;
}

static bool put_typeof_verdict(struct nftnl_udata_buf *u)
{
	struct nftnl_udata *nest = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_DATA_TYPEOF);
	if (!nest)
		return false;
	bool ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, EXPR_VERDICT);
	struct nftnl_udata *data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (data)
		nftnl_udata_nest_end(u, data);
	nftnl_udata_nest_end(u, nest);
	return ok && data;
}

static struct nftnl_udata_buf *set_udata(const struct ir_set *s)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(UDATA_MAX);
	if (!u)
		return NULL;
	bool concat = s->n_key > 1;
	bool ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER,
				      concat ? BO_INVALID : field_nft[s->key[0]].byteorder);
	if (ok && s->data != IR_DATA_NONE)
		ok = nftnl_udata_put_u32(
		    u, NFTNL_UDATA_SET_DATABYTEORDER,
		    s->data == IR_DATA_VALUE ? field_nft[s->data_field].byteorder : BO_INVALID);
	/* nft merges adjacent intervals of anonymous sets, not maps. */
	if (ok && (s->flags & IR_SET_ANONYMOUS) && (s->flags & IR_SET_INTERVAL) &&
	    s->data == IR_DATA_NONE)
		ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);
	bool typeof_ = set_uses_typeof(s);
	bool anon_map = (s->flags & IR_SET_ANONYMOUS) && s->data != IR_DATA_NONE;
	/* nft 1.0.6 keeps no key expression for an anonymous map, and for an
	 * anonymous verdict map an empty "typeof verdict" of the data. */
	if (ok && !anon_map && (typeof_ || concat))
		ok = put_typeof(u, NFTNL_UDATA_SET_KEY_TYPEOF, s->key, s->n_key, typeof_);
	if (ok && !anon_map && s->data == IR_DATA_VALUE && typeof_)
		ok = put_typeof(u, NFTNL_UDATA_SET_DATA_TYPEOF, &s->data_field, 1, true);
	if (ok && anon_map && s->data == IR_DATA_VERDICT)
		ok = put_typeof_verdict(u);
	if (ok && s->data != IR_DATA_NONE)
		ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	if (ok && s->comment[0] && !(s->flags & IR_SET_ANONYMOUS))
		ok = nftnl_udata_put_strz(u, NFTNL_UDATA_SET_COMMENT, s->comment);
	if (!ok) {
		nftnl_udata_buf_free(u);
		return NULL;
	}
	return u;
}

/* ---- set elements ---- */

/* One element as the kernel gets it. */
struct kelem {
	uint8_t key[IR_CONCAT_MAX * IR_VALUE_MAX];
	uint8_t key_end[IR_CONCAT_MAX * IR_VALUE_MAX];
	uint32_t key_len;
	bool has_key_end;              /* concatenated intervals: inclusive end */
	uint32_t flags;                /* NFT_SET_ELEM_INTERVAL_END */
	bool open;                     /* the last interval reaches the top value */
	const struct ir_set_elem *src; /* data/verdict/timeout; NULL for end elements */
};

struct kelems {
	struct kelem *v;
	size_t n, cap;
};

static struct kelem *kelem_add(struct kelems *k)
{
	if (POLICY_GROW(k->v, k->cap, k->n, 16))
		return NULL;
	struct kelem *x = &k->v[k->n++];
	memset(x, 0, sizeof(*x));
	return x;
}

struct sort_item {
	const struct ir_set_elem *e;
	bool host;
	uint32_t len;
};

static int sort_cmp(const void *pa, const void *pb)
{
	const struct sort_item *a = pa, *b = pb;
	return val_cmp(a->e->key[0].data, b->e->key[0].data, a->len, a->host);
}

/* Interval sets keep host-order integers big-endian, so that the kernel's
 * byte-wise comparison orders them; lookups convert first (nft does both). */
static void put_interval_key(uint8_t *dst, const uint8_t *src, uint32_t len, bool host)
{
	uint8_t tmp[IR_VALUE_MAX];
	memcpy(tmp, src, len);
	for (uint32_t i = 0; i < len; i++)
		dst[i] = host ? tmp[len - 1 - i] : tmp[i];
}

static bool concat_interval(const struct ir_set *s)
{
	return (s->flags & IR_SET_INTERVAL) && s->n_key > 1;
}

static bool needs_hton(const struct ir_set *s)
{
	const struct ir_field_desc *fd = ir_field_desc(s->key[0]);
	return (s->flags & IR_SET_INTERVAL) && s->n_key == 1 && fd->len > 1 &&
	       fd->type != IR_T_IFNAME && field_nft[s->key[0]].byteorder == BO_HOST;
}

/* A one-field interval set the way nft sends it (nftables intervals.c
 * set_to_intervals()): sorted; an end element (flag INTERVAL_END, key =
 * inclusive end + 1) after every interval, except after one that ends at
 * the top value, which is marked open instead; and a leading end element
 * at 0 when the first interval does not start there. */
static int interval_elems(const struct ir_set *s, struct kelems *k, bool lead)
{
	const struct ir_field_desc *fd = ir_field_desc(s->key[0]);
	/* Host-order integers count from their low byte; strings (ifname,
	 * kept "host order" by nft) and network-order values from the left. */
	bool host = field_nft[s->key[0]].byteorder == BO_HOST && fd->type != IR_T_IFNAME;
	uint32_t len = fd->len;
	if (!s->n_elems)
		return 0;
	struct sort_item *items = calloc(s->n_elems, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_elems; i++) {
		items[i] = (struct sort_item){ &s->elems[i], host, len };
		if (s->elems[i].key[0].len != len ||
		    (s->elems[i].key_end[0].len && s->elems[i].key_end[0].len != len)) {
			free(items);
			return -EINVAL;
		}
	}
	qsort(items, s->n_elems, sizeof(*items), sort_cmp);
	if (lead && !val_all(items[0].e->key[0].data, len, 0)) {
		struct kelem *z = kelem_add(k);
		if (!z)
			goto nomem;
		z->key_len = len;
		z->flags = NFT_SET_ELEM_INTERVAL_END;
	}
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = items[i].e;
		const struct ir_value *hi = e->key_end[0].len ? &e->key_end[0] : &e->key[0];
		struct kelem *st = kelem_add(k);
		if (!st)
			goto nomem;
		put_interval_key(st->key, e->key[0].data, len, host);
		st->key_len = len;
		st->src = e;
		if (val_all(hi->data, len, 0xff)) {
			st->open = true;
			continue;
		}
		struct kelem *end = kelem_add(k);
		if (!end)
			goto nomem;
		memcpy(end->key, hi->data, len);
		val_incr(end->key, len, host);
		put_interval_key(end->key, end->key, len, host);
		end->key_len = len;
		end->flags = NFT_SET_ELEM_INTERVAL_END;
	}
	free(items);
	return 0;
nomem:
	free(items);
	return -ENOMEM;
}

/* Whether field f is a host-order integer that interval sets keep
 * big-endian (strings such as ifname count from the left already). */
static bool host_integer(enum ir_field f)
{
	const struct ir_field_desc *fd = ir_field_desc(f);
	return field_nft[f].byteorder == BO_HOST && fd->len > 1 && fd->type != IR_T_IFNAME;
}

/* The host-order fields of a concatenated key, big-endian in place (nft
 * does the same for concatenated intervals: pipapo compares bytes). */
static void concat_key_to_big_endian(const struct ir_set *s, uint8_t *key)
{
	uint32_t off = 0;
	for (size_t f = 0; f < s->n_key; f++) {
		uint32_t len = ir_field_desc(s->key[f])->len;
		if (host_integer(s->key[f]))
			put_interval_key(key + off, key + off, len, true);
		off += pad4(len);
	}
}

/* lead: the leading end element at 0 of a whole interval set; a delta
 * (elements added to or deleted from a set the kernel has) leaves it out:
 * the set has it already, and deleting it would open the range below. */
static int set_kelems_lead(const struct ir_set *s, struct kelems *k, bool lead)
{
	if ((s->flags & IR_SET_INTERVAL) && s->n_key == 1)
		return interval_elems(s, k, lead);
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = &s->elems[i];
		struct kelem *x = kelem_add(k);
		if (!x)
			return -ENOMEM;
		if (elem_key(s->key, s->n_key, e->key, x->key, &x->key_len))
			return -EINVAL;
		x->src = e;
		if (s->flags & IR_SET_INTERVAL) {
			/* Concatenated intervals (pipapo) carry the inclusive end
			 * in the same element; fields without an end are exact. */
			struct ir_value ends[IR_CONCAT_MAX];
			for (size_t f = 0; f < s->n_key; f++)
				ends[f] = e->key_end[f].len ? e->key_end[f] : e->key[f];
			uint32_t elen;
			if (elem_key(s->key, s->n_key, ends, x->key_end, &elen))
				return -EINVAL;
			x->has_key_end = true;
			concat_key_to_big_endian(s, x->key);
			concat_key_to_big_endian(s, x->key_end);
		}
	}
	return 0;
}

static int set_kelems(const struct ir_set *s, struct kelems *k)
{
	return set_kelems_lead(s, k, true);
}

static void set_verdict_data(struct nftnl_set_elem *ne, const struct ir_verdict *v)
{
	static const int code[] = {
		[IR_V_ACCEPT] = NF_ACCEPT, [IR_V_DROP] = NF_DROP,  [IR_V_RETURN] = NFT_RETURN,
		[IR_V_JUMP] = NFT_JUMP,    [IR_V_GOTO] = NFT_GOTO,
	};
	nftnl_set_elem_set_u32(ne, NFTNL_SET_ELEM_VERDICT, (uint32_t)code[v->kind]);
	if (v->kind == IR_V_JUMP || v->kind == IR_V_GOTO)
		nftnl_set_elem_set_str(ne, NFTNL_SET_ELEM_CHAIN, v->chain);
}

static struct nftnl_set_elem *kelem_build(const struct ir_set *s, const struct kelem *x)
{
	struct nftnl_set_elem *ne = nftnl_set_elem_alloc();
	if (!ne)
		return NULL;
	nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY, x->key, x->key_len);
	if (x->has_key_end)
		nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY_END, x->key_end, x->key_len);
	if (x->flags)
		nftnl_set_elem_set_u32(ne, NFTNL_SET_ELEM_FLAGS, x->flags);
	if (x->src && s->data == IR_DATA_VERDICT)
		set_verdict_data(ne, &x->src->verdict);
	if (x->src && s->data == IR_DATA_VALUE)
		nftnl_set_elem_set(ne, NFTNL_SET_ELEM_DATA, x->src->data.data, x->src->data.len);
	if (x->src && x->src->timeout_ms)
		nftnl_set_elem_set_u64(ne, NFTNL_SET_ELEM_TIMEOUT, x->src->timeout_ms);
	if (x->open) {
		/* nft marks the open last interval in element userdata
		 * (libnftnl udata.h, NFTNL_SET_ELEM_F_INTERVAL_OPEN). */
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(UDATA_MAX);
		if (!u || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_ELEM_FLAGS,
					       NFTNL_SET_ELEM_F_INTERVAL_OPEN)) {
			if (u)
				nftnl_udata_buf_free(u);
			nftnl_set_elem_free(ne);
			return NULL;
		}
		nftnl_set_elem_set(ne, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	return ne;
}

static const char *set_kernel_name(const struct ir_set *s)
{
	if (!(s->flags & IR_SET_ANONYMOUS))
		return s->name;
	/* The kernel picks the number (nf_tables_set_alloc_name()). */
	return s->data != IR_DATA_NONE ? "__map%d" : "__set%d";
}

/* Elements `k` of set `s` (IR index si, for the origin) in NEWSETELEM or
 * DELSETELEM messages of at most ELEMS_NEST_LIMIT bytes each. */
static int emit_elems_msg(struct emit *e, const struct ir_set *s, uint32_t si, uint16_t type,
			  const struct kelems *k)
{
	size_t i = 0;
	while (i < k->n) {
		struct nlmsghdr *nlh =
		    msg_start(e, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
			      POLICY_NFTNL_ELEMS, NO_INDEX, NO_INDEX, si, &s->loc);
		if (!nlh)
			return oom(e);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, e->t->name);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set_kernel_name(s));
		if (si < e->t->n_sets && e->set_ids[si])
			mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, htonl(e->set_ids[si]));
		struct nlattr *nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (; i < k->n; i++) {
			if (mnl_nlmsg_get_payload_tail(nlh) - (void *)nest > (long)ELEMS_NEST_LIMIT)
				break;
			struct nftnl_set_elem *ne = kelem_build(s, &k->v[i]);
			if (!ne)
				return oom(e);
			/* Each element nests as NFTA_LIST_ELEM (the kernel
			 * ignores the type; libnftnl's parser insists). */
			nftnl_set_elem_nlmsg_build(nlh, ne, NFTA_LIST_ELEM);
			nftnl_set_elem_free(ne);
		}
		mnl_attr_nest_end(nlh, nest);
		if (msg_end(e))
			return -1;
	}
	return 0;
}

static int emit_elems(struct emit *e, uint32_t si, const struct kelems *k)
{
	return emit_elems_msg(e, &e->t->sets[si], si, NFT_MSG_NEWSETELEM, k);
}

static int emit_set(struct emit *e, uint32_t si)
{
	const struct ir_set *s = &e->t->sets[si];
	if (s->n_key < 1 || s->n_key > IR_CONCAT_MAX)
		return policy_error(e->d, &s->loc, "set %s: %zu key fields", s->name, s->n_key);
	for (size_t i = 0; i < s->n_key; i++)
		if (!field_ok(s->key[i]))
			return policy_error(e->d, &s->loc, "set %s: bad key field", s->name);
	if (s->data == IR_DATA_VALUE && !field_ok(s->data_field))
		return policy_error(e->d, &s->loc, "set %s: bad data field", s->name);

	struct kelems k = { 0 };
	int err = set_kelems(s, &k);
	if (err) {
		free(k.v);
		if (err == -ENOMEM)
			return oom(e);
		return policy_error(e->d, &s->loc, "set %s: element of the wrong length", s->name);
	}

	uint32_t flags = 0, key_type = 0;
	if (s->flags & IR_SET_ANONYMOUS)
		flags |= NFT_SET_ANONYMOUS;
	if (s->flags & (IR_SET_CONSTANT | IR_SET_ANONYMOUS))
		flags |= NFT_SET_CONSTANT;
	if (s->flags & IR_SET_INTERVAL)
		flags |= NFT_SET_INTERVAL;
	if (s->data != IR_DATA_NONE)
		flags |= NFT_SET_MAP;
	if (s->flags & IR_SET_TIMEOUT)
		flags |= NFT_SET_TIMEOUT;
	if ((s->flags & IR_SET_INTERVAL) && s->n_key > 1)
		flags |= NFT_SET_CONCAT;
	for (size_t i = 0; i < s->n_key; i++)
		key_type = key_type << DT_BITS | field_nft[s->key[i]].dtype;

	struct nftnl_set *ns = nftnl_set_alloc();
	struct nftnl_udata_buf *u = set_udata(s);
	if (!ns || !u)
		goto nomem;
	e->set_ids[si] = e->next_set_id++;
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, e->t->family);
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, e->t->name);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, set_kernel_name(s));
	nftnl_set_set_u32(ns, NFTNL_SET_ID, e->set_ids[si]);
	nftnl_set_set_u32(ns, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_TYPE, key_type);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_LEN, key_len(s->key, s->n_key));
	if (s->data == IR_DATA_VERDICT) {
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_LEN, NFT_REG_SIZE);
	} else if (s->data == IR_DATA_VALUE) {
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_TYPE, field_nft[s->data_field].dtype);
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_LEN, ir_field_desc(s->data_field)->len);
	}
	if ((s->flags & IR_SET_TIMEOUT) && s->timeout_ms)
		nftnl_set_set_u64(ns, NFTNL_SET_TIMEOUT, s->timeout_ms);
	if (flags & NFT_SET_CONSTANT)
		nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, (uint32_t)k.n);
	else if (s->size)
		nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, s->size);
	if (flags & NFT_SET_CONCAT) {
		uint8_t field_len[IR_CONCAT_MAX];
		for (size_t i = 0; i < s->n_key; i++)
			field_len[i] = ir_field_desc(s->key[i])->len;
		nftnl_set_set_data(ns, NFTNL_SET_DESC_CONCAT, field_len, (uint32_t)s->n_key);
	}
	if (nftnl_set_set_data(ns, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
			       nftnl_udata_buf_len(u)) < 0)
		goto nomem;
	struct nlmsghdr *nlh = msg_start(e, NFT_MSG_NEWSET, NLM_F_CREATE, POLICY_NFTNL_SET,
					 NO_INDEX, NO_INDEX, si, &s->loc);
	if (!nlh)
		goto nomem;
	nftnl_set_nlmsg_build_payload(nlh, ns);
	nftnl_set_free(ns);
	nftnl_udata_buf_free(u);
	ns = NULL;
	u = NULL;
	if (msg_end(e) || emit_elems(e, si, &k)) {
		free(k.v);
		return -1;
	}
	free(k.v);
	e->b->n_sets++;
	e->b->n_elems += s->n_elems;
	return 0;
nomem:
	if (ns)
		nftnl_set_free(ns);
	if (u)
		nftnl_udata_buf_free(u);
	free(k.v);
	return oom(e);
}

/* ---- rule expressions ---- */

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *x)
{
	if (!x)
		return -1;
	nftnl_rule_add_expr(r, x);
	return 0;
}

/* Loads `f` into register `reg`; `len` < field length loads only the
 * first bytes of a payload field (nft's trimmed prefix match). */
static int load_field(struct nftnl_rule *r, enum ir_field f, uint32_t reg, uint32_t len)
{
	const struct ir_field_desc *fd = ir_field_desc(f);
	struct nftnl_expr *x;
	switch (fd->load) {
	case IR_LOAD_META:
		x = nftnl_expr_alloc("meta");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, fd->key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, reg);
		break;
	case IR_LOAD_CT:
		x = nftnl_expr_alloc("ct");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, fd->key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, reg);
		if (fd->ct_original)
			nftnl_expr_set_u8(x, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
		break;
	case IR_LOAD_HASH:
		/* nft's `symhash mod N`: the skb's symmetric flow hash */
		x = nftnl_expr_alloc("hash");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_HASH_TYPE, NFT_HASH_SYM);
		nftnl_expr_set_u32(x, NFTNL_EXPR_HASH_MODULUS, fd->key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_HASH_OFFSET, 0);
		nftnl_expr_set_u32(x, NFTNL_EXPR_HASH_DREG, reg);
		break;
	default:
		x = nftnl_expr_alloc("payload");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, fd->base);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, fd->offset);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, reg);
		break;
	}
	return add_expr(r, x);
}

static int add_cmp(struct nftnl_rule *r, uint32_t reg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("cmp");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
	return add_expr(r, x);
}

/* reg = (reg & mask) ^ xor, over len bytes */
static int add_bitwise_xor(struct nftnl_rule *r, uint32_t reg, const uint8_t *mask,
			   const uint8_t * xor, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("bitwise");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, xor, len);
	return add_expr(r, x);
}

static int add_bitwise(struct nftnl_rule *r, uint32_t reg, const uint8_t *mask, uint32_t len)
{
	static const uint8_t zero[IR_VALUE_MAX];
	return add_bitwise_xor(r, reg, mask, zero, len);
}

/* Loads fields one after another in 32-bit register units, as nft does for
 * a concatenation; returns the first register. */
static int add_byteorder_hton_reg(struct nftnl_rule *r, uint32_t reg, uint32_t len);

/* Loads fields into consecutive registers; with `hton` (a lookup in a
 * concatenated interval set) each host-order integer is converted right
 * after its load, as nft does (netlink_linearize.c, concat keys). */
static int load_concat(struct nftnl_rule *r, const enum ir_field *fields, size_t n, bool hton)
{
	uint32_t units = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t len = ir_field_desc(fields[i])->len;
		/* nft converts one-byte host-order fields too (meta l4proto:
		 * `hton(reg, 2, 1)`, which the kernel runs as a no-op); the
		 * same expression keeps the two backends' objects identical */
		bool host = field_nft[fields[i]].byteorder == BO_HOST &&
			    ir_field_desc(fields[i])->type != IR_T_IFNAME;
		if (load_field(r, fields[i], reg_at(units), len) ||
		    (hton && host && add_byteorder_hton_reg(r, reg_at(units), len)))
			return -1;
		units += pad4(len) / 4;
	}
	return 0;
}

static int add_lookup(struct emit *e, struct nftnl_rule *r, size_t set, bool inv, int dreg)
{
	struct nftnl_expr *x = nftnl_expr_alloc("lookup");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, set_kernel_name(&e->t->sets[set]));
	if (e->set_ids[set]) /* 0: a set the kernel has already (a delta) */
		nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SET_ID, e->set_ids[set]);
	if (dreg >= 0)
		nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
	if (inv)
		nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	return add_expr(r, x);
}

static int add_byteorder_hton(struct nftnl_rule *r, uint32_t len)
{
	return add_byteorder_hton_reg(r, NFT_REG_1, len);
}

static int add_byteorder_hton_reg(struct nftnl_rule *r, uint32_t reg, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("byteorder");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_SREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_DREG, reg);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_LEN, len);
	nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_SIZE, len > 1 ? len : 2); /* as nft sends it */
	return add_expr(r, x);
}

static void to_big_endian(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		dst[i] = src[len - 1 - i];
}

static int match_range(struct nftnl_rule *r, const struct ir_match *m)
{
	const struct ir_field_desc *fd = ir_field_desc(m->field[0]);
	uint8_t lo[IR_VALUE_MAX], hi[IR_VALUE_MAX];
	uint32_t len = fd->len;
	memcpy(lo, m->value.data, len);
	memcpy(hi, m->value_end.data, len);
	if (load_field(r, m->field[0], NFT_REG_1, len))
		return -1;
	if (field_nft[m->field[0]].byteorder == BO_HOST && len > 1) {
		/* Ranges compare as big-endian bytes: nft converts first. */
		if (add_byteorder_hton(r, len))
			return -1;
		to_big_endian(lo, m->value.data, len);
		to_big_endian(hi, m->value_end.data, len);
	}
	if (m->op == IR_OP_EQ)
		return add_cmp(r, NFT_REG_1, NFT_CMP_GTE, lo, len) ||
		       add_cmp(r, NFT_REG_1, NFT_CMP_LTE, hi, len);
	struct nftnl_expr *x = nftnl_expr_alloc("range");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(x, NFTNL_EXPR_RANGE_OP, NFT_RANGE_NEQ);
	nftnl_expr_set(x, NFTNL_EXPR_RANGE_FROM_DATA, lo, len);
	nftnl_expr_set(x, NFTNL_EXPR_RANGE_TO_DATA, hi, len);
	return add_expr(r, x);
}

static int match_prefix(struct nftnl_rule *r, const struct ir_match *m)
{
	const struct ir_field_desc *fd = ir_field_desc(m->field[0]);
	uint32_t len = fd->len, plen = m->prefix_len;
	uint32_t op = m->op == IR_OP_EQ ? NFT_CMP_EQ : NFT_CMP_NEQ;
	if (plen > len * 8)
		return -1;
	if (plen % 8 == 0 && fd->load == IR_LOAD_PAYLOAD) {
		/* Byte-aligned: load only the prefix bytes (nft trims). */
		return load_field(r, m->field[0], NFT_REG_1, plen / 8) ||
		       add_cmp(r, NFT_REG_1, op, m->value.data, plen / 8);
	}
	uint8_t mask[IR_VALUE_MAX] = { 0 }, val[IR_VALUE_MAX];
	for (uint32_t i = 0; i < plen; i++)
		mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	for (uint32_t i = 0; i < len; i++)
		val[i] = m->value.data[i] & mask[i];
	return load_field(r, m->field[0], NFT_REG_1, len) || add_bitwise(r, NFT_REG_1, mask, len) ||
	       add_cmp(r, NFT_REG_1, op, val, len);
}

static int emit_match(struct emit *e, struct nftnl_rule *r, const struct ir_match *m)
{
	size_t nf = m->kind == IR_M_LOOKUP ? m->n_field : 1;
	if (nf < 1 || nf > IR_CONCAT_MAX)
		return -1;
	for (size_t i = 0; i < nf; i++)
		if (!field_ok(m->field[i]))
			return -1;
	const struct ir_field_desc *fd = ir_field_desc(m->field[0]);
	uint32_t op = m->op == IR_OP_EQ ? NFT_CMP_EQ : NFT_CMP_NEQ;
	static const uint8_t zero[IR_VALUE_MAX];
	switch (m->kind) {
	case IR_M_CMP: {
		uint32_t len = fd->len;
		if (m->wildcard && fd->type == IR_T_IFNAME)
			len = (uint32_t)strnlen((const char *)m->value.data, fd->len);
		else if (m->value.len != fd->len)
			return -1;
		return load_field(r, m->field[0], NFT_REG_1, fd->len) ||
		       add_cmp(r, NFT_REG_1, op, m->value.data, len);
	}
	case IR_M_PREFIX: return match_prefix(r, m);
	case IR_M_RANGE: return match_range(r, m);
	case IR_M_BITS:
		return load_field(r, m->field[0], NFT_REG_1, fd->len) ||
		       add_bitwise(r, NFT_REG_1, m->value.data, fd->len) ||
		       add_cmp(r, NFT_REG_1, NFT_CMP_NEQ, zero, fd->len);
	case IR_M_LOOKUP:
		if (m->set >= e->t->n_sets)
			return -1;
		return load_concat(r, m->field, nf, concat_interval(&e->t->sets[m->set])) ||
		       (needs_hton(&e->t->sets[m->set]) &&
			add_byteorder_hton(r, ir_field_desc(m->field[0])->len)) ||
		       add_lookup(e, r, m->set, m->op == IR_OP_NEQ, -1);
	}
	return -1;
}

static int add_immediate_data(struct nftnl_rule *r, uint32_t reg, const void *data, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("immediate");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, reg);
	nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, data, len);
	return add_expr(r, x);
}

/* Writes register 1 into `target` (meta mark set, ct zone set, ...). */
static int set_from_reg(struct nftnl_rule *r, enum ir_field target)
{
	const struct ir_field_desc *fd = ir_field_desc(target);
	struct nftnl_expr *x;
	if (fd->load == IR_LOAD_META) {
		x = nftnl_expr_alloc("meta");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, fd->key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_SREG, NFT_REG_1);
	} else if (fd->load == IR_LOAD_CT) {
		x = nftnl_expr_alloc("ct");
		if (!x)
			return -1;
		nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, fd->key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_CT_SREG, NFT_REG_1);
		if (fd->ct_original)
			nftnl_expr_set_u8(x, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
	} else {
		return -1; /* packet payload is never written */
	}
	return add_expr(r, x);
}

/* nft's limit units are seconds (nftables src/statement.c). */
static uint64_t unit_seconds(enum ir_rate_unit u)
{
	return u == IR_PER_HOUR ? 3600 : u == IR_PER_MINUTE ? 60 : 1;
}

static int stmt_nat(struct nftnl_rule *r, const struct ir_nat *n)
{
	/* nft gives each NAT operand its own 128-bit register, in order. */
	uint32_t reg = NFT_REG_1, flags = 0;
	uint32_t amin = 0, amax = 0, pmin = 0, pmax = 0;
	if (n->addr_lo.len) {
		amin = reg++;
		if (add_immediate_data(r, amin, n->addr_lo.data, n->addr_lo.len))
			return -1;
		if (n->addr_hi.len &&
		    (n->netmap || memcmp(n->addr_hi.data, n->addr_lo.data, n->addr_lo.len))) {
			amax = reg++;
			if (add_immediate_data(r, amax, n->addr_hi.data, n->addr_hi.len))
				return -1;
		}
	}
	if (n->port_lo) {
		uint16_t lo = htons(n->port_lo), hi = htons(n->port_hi);
		pmin = reg++;
		if (add_immediate_data(r, pmin, &lo, 2))
			return -1;
		if (n->port_hi && n->port_hi != n->port_lo) {
			pmax = reg++;
			if (add_immediate_data(r, pmax, &hi, 2))
				return -1;
		}
		flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
	}
	if (n->netmap)
		flags |= NF_NAT_RANGE_NETMAP;
	if (n->random_fully)
		flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
	struct nftnl_expr *x;
	if (n->kind == IR_NAT_MASQUERADE) {
		x = nftnl_expr_alloc("masq");
		if (!x)
			return -1;
		if (pmin)
			nftnl_expr_set_u32(x, NFTNL_EXPR_MASQ_REG_PROTO_MIN, pmin);
		if (pmax)
			nftnl_expr_set_u32(x, NFTNL_EXPR_MASQ_REG_PROTO_MAX, pmax);
		if (flags)
			nftnl_expr_set_u32(x, NFTNL_EXPR_MASQ_FLAGS, flags);
		return add_expr(r, x);
	}
	x = nftnl_expr_alloc("nat");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE,
			   n->kind == IR_NAT_SNAT ? NFT_NAT_SNAT : NFT_NAT_DNAT);
	nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, n->family);
	if (amin)
		nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, amin);
	if (amax)
		nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MAX, amax);
	if (pmin)
		nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, pmin);
	if (pmax)
		nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MAX, pmax);
	if (flags)
		nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FLAGS, flags);
	return add_expr(r, x);
}

/* The xt NFQUEUE target revision that carries queues_total and flags
 * (linux/netfilter/xt_NFQUEUE.h, struct xt_NFQ_info_v3). */
#define NFQUEUE_TARGET_REV 3

static int stmt_queue(struct emit *e, struct nftnl_rule *r, const struct ir_stmt *s)
{
	uint16_t total = s->queue_count > 1 ? s->queue_count : 1;
	struct nftnl_expr *x;
	if (e->o.native_queue) {
		x = nftnl_expr_alloc("queue");
		if (!x)
			return -1;
		nftnl_expr_set_u16(x, NFTNL_EXPR_QUEUE_NUM, s->queue_num);
		if (total > 1)
			nftnl_expr_set_u16(x, NFTNL_EXPR_QUEUE_TOTAL, total);
		if (s->queue_bypass)
			nftnl_expr_set_u16(x, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
		return add_expr(r, x);
	}
	struct xt_NFQ_info_v3 info = {
		.queuenum = s->queue_num,
		.queues_total = total,
		.flags = s->queue_bypass ? NFQ_FLAG_BYPASS : 0,
	};
	x = nftnl_expr_alloc("target");
	if (!x)
		return -1;
	nftnl_expr_set_str(x, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(x, NFTNL_EXPR_TG_REV, NFQUEUE_TARGET_REV);
	/* libnftnl keeps the pointer and frees it with the expression. */
	void *copy = malloc(sizeof(info));
	if (!copy) {
		nftnl_expr_free(x);
		return -1;
	}
	memcpy(copy, &info, sizeof(info));
	nftnl_expr_set(x, NFTNL_EXPR_TG_INFO, copy, sizeof(info));
	return add_expr(r, x);
}

static int emit_stmt(struct emit *e, struct nftnl_rule *r, const struct ir_stmt *s)
{
	struct nftnl_expr *x;
	switch (s->kind) {
	case IR_S_COUNTER: return add_expr(r, nftnl_expr_alloc("counter"));
	case IR_S_LOG:
		x = nftnl_expr_alloc("log");
		if (!x)
			return -1;
		if (s->log_prefix[0])
			nftnl_expr_set_str(x, NFTNL_EXPR_LOG_PREFIX, s->log_prefix);
		if (s->log_group >= 0)
			nftnl_expr_set_u16(x, NFTNL_EXPR_LOG_GROUP, (uint16_t)s->log_group);
		return add_expr(r, x);
	case IR_S_LIMIT:
		x = nftnl_expr_alloc("limit");
		if (!x)
			return -1;
		nftnl_expr_set_u64(x, NFTNL_EXPR_LIMIT_RATE, s->rate);
		nftnl_expr_set_u64(x, NFTNL_EXPR_LIMIT_UNIT, unit_seconds(s->unit));
		nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_BURST, s->burst);
		nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_FLAGS, 0);
		return add_expr(r, x);
	case IR_S_VMAP:
	case IR_S_SET_FROM_MAP:
		if (s->set >= e->t->n_sets || s->n_field < 1 || s->n_field > IR_CONCAT_MAX)
			return -1;
		for (size_t i = 0; i < s->n_field; i++)
			if (!field_ok(s->field[i]))
				return -1;
		if (load_concat(r, s->field, s->n_field, concat_interval(&e->t->sets[s->set])))
			return -1;
		if (needs_hton(&e->t->sets[s->set]) &&
		    add_byteorder_hton(r, ir_field_desc(s->field[0])->len))
			return -1;
		if (s->kind == IR_S_VMAP)
			return add_lookup(e, r, s->set, false, NFT_REG_VERDICT);
		return !field_ok(s->target) || add_lookup(e, r, s->set, false, NFT_REG_1) ||
		       set_from_reg(r, s->target);
	case IR_S_SET_VALUE:
		if (s->keep_mask)
			return s->target != IR_META_MARK || s->value.len != 4 ||
			       load_field(r, IR_META_MARK, NFT_REG_1, 4) ||
			       add_bitwise_xor(r, NFT_REG_1, (const uint8_t *)&s->keep_mask,
					       s->value.data, 4) ||
			       set_from_reg(r, s->target);
		return !field_ok(s->target) ||
		       add_immediate_data(r, NFT_REG_1, s->value.data, s->value.len) ||
		       set_from_reg(r, s->target);
	case IR_S_REJECT:
		x = nftnl_expr_alloc("reject");
		if (!x)
			return -1;
		if (s->reject == IR_REJECT_TCP_RESET) {
			nftnl_expr_set_u32(x, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
			nftnl_expr_set_u8(x, NFTNL_EXPR_REJECT_CODE, 0);
		} else {
			nftnl_expr_set_u32(x, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
			nftnl_expr_set_u8(x, NFTNL_EXPR_REJECT_CODE,
					  s->reject == IR_REJECT_ICMPX_ADMIN_PROHIBITED
					      ? NFT_REJECT_ICMPX_ADMIN_PROHIBITED
					      : NFT_REJECT_ICMPX_PORT_UNREACH);
		}
		return add_expr(r, x);
	case IR_S_NAT: return stmt_nat(r, &s->nat);
	case IR_S_NOTRACK: return add_expr(r, nftnl_expr_alloc("notrack"));
	case IR_S_QUEUE: return stmt_queue(e, r, s);
	}
	return -1;
}

static int emit_verdict(struct nftnl_rule *r, const struct ir_verdict *v)
{
	static const int code[] = {
		[IR_V_ACCEPT] = NF_ACCEPT, [IR_V_DROP] = NF_DROP,  [IR_V_RETURN] = NFT_RETURN,
		[IR_V_JUMP] = NFT_JUMP,    [IR_V_GOTO] = NFT_GOTO,
	};
	if (v->kind == IR_V_NONE)
		return 0;
	if ((unsigned)v->kind > IR_V_GOTO)
		return -1;
	struct nftnl_expr *x = nftnl_expr_alloc("immediate");
	if (!x)
		return -1;
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, (uint32_t)code[v->kind]);
	if (v->kind == IR_V_JUMP || v->kind == IR_V_GOTO)
		nftnl_expr_set_str(x, NFTNL_EXPR_IMM_CHAIN, v->chain);
	return add_expr(r, x);
}

/* The anonymous sets a rule uses go into the batch right before it. */
static int emit_rule_sets(struct emit *e, const struct ir_rule *ir, bool *emitted)
{
	for (size_t i = 0; i < ir->n_matches; i++) {
		const struct ir_match *m = &ir->matches[i];
		if (m->kind == IR_M_LOOKUP && m->set < e->t->n_sets && !emitted[m->set] &&
		    (e->t->sets[m->set].flags & IR_SET_ANONYMOUS)) {
			emitted[m->set] = true;
			if (emit_set(e, (uint32_t)m->set))
				return -1;
		}
	}
	for (size_t i = 0; i < ir->n_stmts; i++) {
		const struct ir_stmt *s = &ir->stmts[i];
		if ((s->kind == IR_S_VMAP || s->kind == IR_S_SET_FROM_MAP) &&
		    s->set < e->t->n_sets && !emitted[s->set] &&
		    (e->t->sets[s->set].flags & IR_SET_ANONYMOUS)) {
			emitted[s->set] = true;
			if (emit_set(e, (uint32_t)s->set))
				return -1;
		}
	}
	return 0;
}

/* Where a rule of a delta goes: after the kernel rule `handle`, after the
 * rule of this batch with NFTA_RULE_ID `after_id`, at the head of the chain
 * (neither), or appended (append_tail, as in a whole table). */
struct rule_pos {
	bool append_tail;
	uint64_t handle;
	uint32_t after_id;
	uint32_t id; /* NFTA_RULE_ID of this rule; 0: none */
};

static int emit_rule_at(struct emit *e, uint32_t ci, uint32_t ri, const struct rule_pos *pos);

static int emit_rule(struct emit *e, uint32_t ci, uint32_t ri)
{
	struct rule_pos tail = { .append_tail = true };
	return emit_rule_at(e, ci, ri, &tail);
}

static int emit_rule_at(struct emit *e, uint32_t ci, uint32_t ri, const struct rule_pos *pos)
{
	const struct ir_chain *c = &e->t->chains[ci];
	const struct ir_rule *ir = &c->rules[ri];
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		return oom(e);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, e->t->family);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, e->t->name);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, c->name);
	int bad = 0;
	for (size_t i = 0; !bad && i < ir->n_matches; i++)
		bad = emit_match(e, r, &ir->matches[i]);
	for (size_t i = 0; !bad && i < ir->n_stmts; i++)
		bad = emit_stmt(e, r, &ir->stmts[i]);
	if (!bad)
		bad = emit_verdict(r, &ir->verdict);
	struct nftnl_udata_buf *u = NULL;
	if (!bad && put_comment_udata(&u, NFTNL_UDATA_RULE_COMMENT, ir->comment))
		bad = 1;
	if (!bad && u &&
	    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
				nftnl_udata_buf_len(u)) < 0)
		bad = 1;
	if (u)
		nftnl_udata_buf_free(u);
	if (bad) {
		nftnl_rule_free(r);
		return policy_error(
		    e->d, &ir->loc,
		    "rule %u of chain %s cannot be encoded (malformed IR or out of memory)", ri + 1,
		    c->name);
	}
	uint16_t flags = NLM_F_CREATE | NLM_F_APPEND;
	if (pos->handle)
		nftnl_rule_set_u64(r, NFTNL_RULE_POSITION, pos->handle);
	else if (pos->after_id)
		nftnl_rule_set_u32(r, NFTNL_RULE_POSITION_ID, pos->after_id);
	else if (!pos->append_tail)
		flags = NLM_F_CREATE; /* no position, no append: the head of the chain */
	if (pos->id)
		nftnl_rule_set_u32(r, NFTNL_RULE_ID, pos->id);
	struct nlmsghdr *nlh =
	    msg_start(e, NFT_MSG_NEWRULE, flags, POLICY_NFTNL_RULE, ci, ri, NO_INDEX, &ir->loc);
	if (!nlh) {
		nftnl_rule_free(r);
		return oom(e);
	}
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	e->b->n_rules++;
	return msg_end(e);
}

/* ---- the batch ---- */

void policy_nftnl_opts_default(struct policy_nftnl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seq = 1;
	o->ack = true;
}

void policy_nftnl_batch_free(struct policy_nftnl_batch *b)
{
	if (!b)
		return;
	if (b->batch)
		nftnl_batch_free(b->batch);
	free(b->origins);
	free(b);
}

const struct policy_nftnl_origin *policy_nftnl_origin(const struct policy_nftnl_batch *b,
						      uint32_t seq)
{
	uint32_t i = seq - b->first_seq; /* wraps for seq < first_seq */
	if (!b->n_messages || i >= b->n_messages)
		return NULL;
	return &b->origins[i];
}

void policy_nftnl_origin_describe(const struct policy_nftnl_origin *o, const struct ir_table *t,
				  char *buf, size_t size)
{
	switch (o->kind) {
	case POLICY_NFTNL_TABLE: snprintf(buf, size, "table inet %s", t->name); return;
	case POLICY_NFTNL_CHAIN:
		snprintf(buf, size, "chain %s",
			 o->chain < t->n_chains ? t->chains[o->chain].name : "?");
		return;
	case POLICY_NFTNL_RULE:
		snprintf(buf, size, "rule %u of chain %s", o->rule + 1,
			 o->chain < t->n_chains ? t->chains[o->chain].name : "?");
		return;
	case POLICY_NFTNL_SET:
	case POLICY_NFTNL_ELEMS:
		snprintf(buf, size, "%s %s",
			 o->kind == POLICY_NFTNL_SET ? "set" : "elements of set",
			 o->set < t->n_sets ? t->sets[o->set].name : "?");
		return;
	default: snprintf(buf, size, "the batch");
	}
}

static int emit_all(struct emit *e)
{
	const struct ir_table *t = e->t;
	if (batch_begin(e) || emit_table_msg(e, NFT_MSG_NEWTABLE, false) ||
	    emit_table_msg(e, NFT_MSG_DELTABLE, false) || emit_table_msg(e, NFT_MSG_NEWTABLE, true))
		return -1;
	/* nft's order for a table block: chains, named sets with their
	 * elements (a verdict map's jump needs its chain), then every rule. */
	for (uint32_t i = 0; i < t->n_chains; i++)
		if (emit_chain(e, i))
			return -1;
	for (uint32_t i = 0; i < t->n_sets; i++)
		if (!(t->sets[i].flags & IR_SET_ANONYMOUS) && emit_set(e, i))
			return -1;
	bool *emitted = calloc(t->n_sets ? t->n_sets : 1, sizeof(*emitted));
	if (!emitted)
		return oom(e);
	for (uint32_t i = 0; i < t->n_chains; i++) {
		for (uint32_t j = 0; j < t->chains[i].n_rules; j++) {
			if (emit_rule_sets(e, &t->chains[i].rules[j], emitted) ||
			    emit_rule(e, i, j)) {
				free(emitted);
				return -1;
			}
		}
	}
	free(emitted);
	if (!e->o.no_commit && batch_end(e))
		return -1;
	return 0;
}

/* The batch's state for table e->t: options (NULL: the defaults), the
 * batch and the set ids. -1 (with the diagnostic) when out of memory. */
static int emit_open(struct emit *e, const struct policy_nftnl_opts *o)
{
	if (o)
		e->o = *o;
	else
		policy_nftnl_opts_default(&e->o);
	e->b = calloc(1, sizeof(*e->b));
	e->set_ids = calloc(e->t->n_sets ? e->t->n_sets : 1, sizeof(*e->set_ids));
	if (e->b)
		e->b->batch = nftnl_batch_alloc(PAGE_BYTES, PAGE_OVERRUN);
	if (!e->b || !e->set_ids || !e->b->batch) {
		free(e->set_ids);
		policy_nftnl_batch_free(e->b);
		return oom(e);
	}
	e->b->first_seq = e->o.seq;
	return 0;
}

/* Ends what emit_open() began: on `failed` frees the batch and returns -1;
 * otherwise counts its bytes and hands it to *out. */
static int emit_close(struct emit *e, bool failed, struct policy_nftnl_batch **out)
{
	free(e->set_ids);
	if (failed) {
		policy_nftnl_batch_free(e->b);
		return -1;
	}
	int n_iov = nftnl_batch_iovec_len(e->b->batch);
	struct iovec *iov = calloc((size_t)n_iov, sizeof(*iov));
	if (!iov) {
		policy_nftnl_batch_free(e->b);
		return oom(e);
	}
	nftnl_batch_iovec(e->b->batch, iov, (uint32_t)n_iov);
	for (int i = 0; i < n_iov; i++)
		e->b->bytes += iov[i].iov_len;
	free(iov);
	*out = e->b;
	return 0;
}

int policy_emit_nftnl(const struct ir_table *t, const struct policy_nftnl_opts *o,
		      struct policy_nftnl_batch **out, struct policy_diags *d)
{
	struct emit e = { .t = t, .d = d, .next_set_id = 1 };
	*out = NULL;
	if (emit_open(&e, o))
		return -1;
	return emit_close(&e, emit_all(&e) != 0, out);
}

/* ---- the delta batch (policy/ir_diff.h) ---- */

/* A message that names one object of the running table to delete, or (for
 * DELRULE without a handle) flushes a chain. */
static int emit_del_named(struct emit *e, uint16_t type, uint8_t kind, uint32_t chain, uint32_t set,
			  const char *name)
{
	struct nlmsghdr *nlh = msg_start(e, type, 0, kind, chain, NO_INDEX, set, NULL);
	if (!nlh)
		return oom(e);
	if (type == NFT_MSG_DELSET) {
		mnl_attr_put_strz(nlh, NFTA_SET_TABLE, e->t->name);
		mnl_attr_put_strz(nlh, NFTA_SET_NAME, name);
	} else {
		/* NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are 1, *_CHAIN / *_NAME 2 */
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, e->t->name);
		mnl_attr_put_strz(nlh, type == NFT_MSG_DELRULE ? NFTA_RULE_CHAIN : NFTA_CHAIN_NAME,
				  name);
	}
	return msg_end(e);
}

/* Elements `idx` of `s` (candidate set si, for the origin and the name). */
static int emit_elem_subset(struct emit *e, const struct ir_set *s, uint32_t si, const size_t *idx,
			    size_t n, uint16_t type)
{
	if (!n)
		return 0;
	struct ir_set sub = *s;
	sub.elems = malloc(n * sizeof(*sub.elems));
	if (!sub.elems)
		return oom(e);
	for (size_t i = 0; i < n; i++)
		sub.elems[i] = s->elems[idx[i]];
	sub.n_elems = sub.cap_elems = n;
	struct kelems k = { 0 };
	int err = set_kelems_lead(&sub, &k, false);
	if (!err && type == NFT_MSG_DELSETELEM)
		for (size_t i = 0; i < k.n; i++)
			k.v[i].src = NULL; /* a delete names the key only */
	if (!err)
		err = emit_elems_msg(e, &sub, si, type, &k) ? -1 : 0;
	else
		err = err == -ENOMEM ? oom(e)
				     : policy_error(e->d, &s->loc,
						    "set %s: element of the wrong length", s->name);
	free(k.v);
	free(sub.elems);
	return err ? -1 : 0;
}

/* The kernel handles of the running rules of candidate chain i, if the
 * chain is changed rule by rule; NULL: flush it and add every rule. */
static const uint64_t *by_rule(const struct ir_diff *df, uint32_t i)
{
	if (df->chain_op[i] != IR_DIFF_REPLACE || !df->chain_rules[i].planned || !df->handles ||
	    df->chain_old[i] == IR_DIFF_NONE)
		return NULL;
	return df->handles[df->chain_old[i]];
}

static int emit_del_rule(struct emit *e, uint32_t ci, const char *chain, uint64_t handle)
{
	struct nlmsghdr *nlh =
	    msg_start(e, NFT_MSG_DELRULE, 0, POLICY_NFTNL_CHAIN, ci, NO_INDEX, NO_INDEX, NULL);
	if (!nlh)
		return oom(e);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, e->t->name);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain);
	mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(handle));
	return msg_end(e);
}

/* The new rules of chain i, each after the rule before it. */
static int emit_rules_by_position(struct emit *e, const struct ir_diff *df, uint32_t i,
				  const uint64_t *h, bool *emitted, uint32_t *next_id)
{
	const struct ir_diff_rules *pl = &df->chain_rules[i];
	uint32_t prev_id = 0;
	for (size_t k = 0; k < pl->n_add; k++) {
		size_t j = pl->add[k];
		struct rule_pos pos = { .id = (*next_id)++ };
		if (j > 0 && pl->old_of[j - 1] != IR_DIFF_NONE)
			pos.handle = h[pl->old_of[j - 1]];
		else if (j > 0)
			pos.after_id = prev_id; /* the rule before is new too: added just before */
		prev_id = pos.id;
		if (emit_rule_sets(e, &e->t->chains[i].rules[j], emitted) ||
		    emit_rule_at(e, i, (uint32_t)j, &pos))
			return -1;
	}
	return 0;
}

static bool chain_resent(const struct ir_diff *df, uint32_t i)
{
	return df->chain_op[i] != IR_DIFF_KEEP;
}

static int emit_delta_deletes(struct emit *e, const struct ir_table *run, const struct ir_diff *df)
{
	const struct ir_table *t = e->t;
	/* Rules first: what they use (sets, chains) can go afterwards. */
	for (uint32_t i = 0; i < t->n_chains; i++) {
		if (df->chain_op[i] != IR_DIFF_REPLACE && df->chain_op[i] != IR_DIFF_RECREATE)
			continue;
		const uint64_t *h = by_rule(df, i);
		if (!h) {
			if (emit_del_named(e, NFT_MSG_DELRULE, POLICY_NFTNL_CHAIN, i, NO_INDEX,
					   t->chains[i].name))
				return -1;
			continue;
		}
		for (size_t k = 0; k < df->chain_rules[i].n_del; k++)
			if (emit_del_rule(e, i, t->chains[i].name, h[df->chain_rules[i].del[k]]))
				return -1;
	}
	for (size_t k = 0; k < df->n_chain_del; k++)
		if (emit_del_named(e, NFT_MSG_DELRULE, POLICY_NFTNL_CHAIN, NO_INDEX, NO_INDEX,
				   run->chains[df->chain_del[k]].name))
			return -1;
	for (uint32_t i = 0; i < t->n_sets; i++)
		if (df->set_op[i] == IR_DIFF_REPLACE &&
		    emit_elem_subset(e, &run->sets[df->set_old[i]], i, df->set_elems[i].del,
				     df->set_elems[i].n_del, NFT_MSG_DELSETELEM))
			return -1;
	for (uint32_t i = 0; i < t->n_sets; i++)
		if (df->set_op[i] == IR_DIFF_RECREATE &&
		    emit_del_named(e, NFT_MSG_DELSET, POLICY_NFTNL_SET, NO_INDEX, i,
				   t->sets[i].name))
			return -1;
	for (size_t k = 0; k < df->n_set_del; k++)
		if (emit_del_named(e, NFT_MSG_DELSET, POLICY_NFTNL_SET, NO_INDEX, NO_INDEX,
				   run->sets[df->set_del[k]].name))
			return -1;
	for (uint32_t i = 0; i < t->n_chains; i++)
		if (df->chain_op[i] == IR_DIFF_RECREATE &&
		    emit_del_named(e, NFT_MSG_DELCHAIN, POLICY_NFTNL_CHAIN, i, NO_INDEX,
				   t->chains[i].name))
			return -1;
	for (size_t k = 0; k < df->n_chain_del; k++)
		if (emit_del_named(e, NFT_MSG_DELCHAIN, POLICY_NFTNL_CHAIN, NO_INDEX, NO_INDEX,
				   run->chains[df->chain_del[k]].name))
			return -1;
	return 0;
}

static int emit_delta_adds(struct emit *e, const struct ir_diff *df)
{
	const struct ir_table *t = e->t;
	for (uint32_t i = 0; i < t->n_chains; i++)
		if ((df->chain_op[i] == IR_DIFF_ADD || df->chain_op[i] == IR_DIFF_RECREATE ||
		     df->chain_policy[i]) &&
		    emit_chain(e, i))
			return -1;
	for (uint32_t i = 0; i < t->n_sets; i++)
		if ((df->set_op[i] == IR_DIFF_ADD || df->set_op[i] == IR_DIFF_RECREATE) &&
		    emit_set(e, i))
			return -1;
	for (uint32_t i = 0; i < t->n_sets; i++)
		if (df->set_op[i] == IR_DIFF_REPLACE &&
		    emit_elem_subset(e, &t->sets[i], i, df->set_elems[i].add,
				     df->set_elems[i].n_add, NFT_MSG_NEWSETELEM))
			return -1;
	bool *emitted = calloc(t->n_sets ? t->n_sets : 1, sizeof(*emitted));
	if (!emitted)
		return oom(e);
	uint32_t next_id = 1;
	for (uint32_t i = 0; i < t->n_chains; i++) {
		if (!chain_resent(df, i))
			continue;
		const uint64_t *h = by_rule(df, i);
		if (h) {
			if (emit_rules_by_position(e, df, i, h, emitted, &next_id)) {
				free(emitted);
				return -1;
			}
			continue;
		}
		for (uint32_t j = 0; j < t->chains[i].n_rules; j++)
			if (emit_rule_sets(e, &t->chains[i].rules[j], emitted) ||
			    emit_rule(e, i, j)) {
				free(emitted);
				return -1;
			}
	}
	free(emitted);
	return 0;
}

int policy_emit_nftnl_delta(const struct ir_table *running, const struct ir_table *t,
			    const struct ir_diff *diff, const struct policy_nftnl_opts *o,
			    struct policy_nftnl_batch **out, struct policy_diags *d)
{
	struct emit e = { .t = t, .d = d, .next_set_id = 1 };
	*out = NULL;
	if (diff->full)
		return policy_error(d, NULL, "the delta asks for a full replace (%s)", diff->why);
	if (emit_open(&e, o))
		return -1;
	/* Deletes before adds: a set or chain made again under its old name
	 * must be gone first, and what is deleted may be what the old rules
	 * used. The table itself is not touched (its comment cannot change). */
	int bad = batch_begin(&e) || emit_delta_deletes(&e, running, diff) ||
		  emit_delta_adds(&e, diff) || (!e.o.no_commit && batch_end(&e));
	return emit_close(&e, bad, out);
}
