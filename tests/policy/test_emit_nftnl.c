/* policy/emit_nftnl.c: the batch for hand-made IR tables, read back with
 * libnftnl's parsers (no kernel, no root). */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdio.h>
#include "policy/ir_build.h"
#include "policy/policy.h"

#include "appliance/kernel/nftio.h"
#include "policy/nftnl.h"
#include "tests/lib/checkmain.h"

#define MAX_MSGS 4096

/* Every message of a batch, in order. */
struct msgs {
	const struct nlmsghdr *v[MAX_MSGS];
	size_t n;
	struct iovec *iov;
};

static void collect(const struct policy_nftnl_batch *b, struct msgs *m)
{
	int n_iov = nftnl_batch_iovec_len(b->batch);
	m->iov = calloc((size_t)n_iov, sizeof(*m->iov));
	ck_assert_ptr_nonnull(m->iov);
	nftnl_batch_iovec(b->batch, m->iov, (uint32_t)n_iov);
	m->n = 0;
	for (int i = 0; i < n_iov; i++) {
		const struct nlmsghdr *nlh = m->iov[i].iov_base;
		int len = (int)m->iov[i].iov_len;
		while (mnl_nlmsg_ok(nlh, len)) {
			ck_assert_uint_lt(m->n, MAX_MSGS);
			m->v[m->n++] = nlh;
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
}

static uint16_t nft_type(const struct nlmsghdr *nlh)
{
	return nlh->nlmsg_type & 0xff;
}

static const struct policy_loc rule_loc = { "p.hvp", 7, 3, 4 };

/* table with a base chain, a regular chain, a named interval set of IPv4
 * prefixes and a rule: ip saddr @s4 counter jump c comment "p.hvp:7:abc" */
static struct ir_table *small_table(void)
{
	struct ir_table *t = ir_table_new(NULL);
	ck_assert_ptr_nonnull(t);
	snprintf(t->comment, sizeof(t->comment), "hvgate rev=1");
	struct ir_chain *c = ir_chain_add(t, "forward");
	c->hook = IR_HOOK_FORWARD;
	c->policy = IR_V_DROP;
	ir_chain_add(t, "c");
	c = &t->chains[0];
	size_t si = ir_set_add(t, "s4");
	struct ir_set *s = &t->sets[si];
	s->key[0] = IR_IP_SADDR;
	s->n_key = 1;
	s->flags = IR_SET_INTERVAL;
	const uint8_t lo1[4] = { 10, 0, 0, 0 }, hi1[4] = { 10, 255, 255, 255 };
	const uint8_t one[4] = { 192, 168, 1, 1 };
	/* given out of order: the backend sorts */
	struct ir_set_elem *e = ir_set_elem_add(s);
	e->key[0] = ir_value_addr(one, AF_INET);
	e = ir_set_elem_add(s);
	e->key[0] = ir_value_addr(lo1, AF_INET);
	e->key_end[0] = ir_value_addr(hi1, AF_INET);

	struct ir_rule *r = ir_rule_add(c);
	r->loc = rule_loc;
	snprintf(r->comment, sizeof(r->comment), "p.hvp:7:abc");
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_NFPROTO;
	m->value = ir_value_u8(NFPROTO_IPV4);
	m = ir_match_add(r);
	m->kind = IR_M_LOOKUP;
	m->field[0] = IR_IP_SADDR;
	m->set = si;
	ir_stmt_add(r)->kind = IR_S_COUNTER;
	r->verdict.kind = IR_V_JUMP;
	snprintf(r->verdict.chain, sizeof(r->verdict.chain), "c");
	return t;
}

static struct policy_nftnl_batch *build(const struct ir_table *t, const struct policy_nftnl_opts *o)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_nftnl_batch *b = NULL;
	int rc = policy_emit_nftnl(t, o, &b, &d);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(d.n_errors, 0);
	policy_diags_free(&d);
	return b;
}

START_TEST(test_message_sequence)
{
	struct ir_table *t = small_table();
	struct policy_nftnl_opts o;
	policy_nftnl_opts_default(&o);
	o.seq = 100;
	struct policy_nftnl_batch *b = build(t, &o);
	struct msgs m;
	collect(b, &m);
	/* begin, table add/del/add, 2 chains, set, elements, rule, end */
	ck_assert_uint_eq(m.n, 10);
	ck_assert_uint_eq(b->n_messages, 10);
	ck_assert_uint_eq(m.v[0]->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
	const uint16_t want[] = { NFT_MSG_NEWTABLE,   NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE,
				  NFT_MSG_NEWCHAIN,   NFT_MSG_NEWCHAIN, NFT_MSG_NEWSET,
				  NFT_MSG_NEWSETELEM, NFT_MSG_NEWRULE };
	for (size_t i = 0; i < 8; i++) {
		ck_assert_uint_eq(m.v[i + 1]->nlmsg_type >> 8, NFNL_SUBSYS_NFTABLES);
		ck_assert_uint_eq(nft_type(m.v[i + 1]), want[i]);
		ck_assert(m.v[i + 1]->nlmsg_flags & NLM_F_ACK);
	}
	ck_assert_uint_eq(m.v[9]->nlmsg_type, NFNL_MSG_BATCH_END);
	for (size_t i = 0; i < m.n; i++)
		ck_assert_uint_eq(m.v[i]->nlmsg_seq, 100 + i);
	ck_assert_uint_eq(b->first_seq, 100);
	ck_assert_uint_eq(b->last_seq, 109);
	ck_assert_uint_eq(b->n_acks, 8);
	ck_assert_uint_eq(b->n_rules, 1);
	ck_assert_uint_eq(b->n_sets, 1);
	ck_assert_uint_eq(b->n_elems, 2);
	ck_assert_uint_eq(b->n_chains, 2);
	free(m.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

START_TEST(test_origin_of_rule)
{
	struct ir_table *t = small_table();
	struct policy_nftnl_batch *b = build(t, NULL);
	const struct policy_nftnl_origin *o = policy_nftnl_origin(b, b->first_seq + 8);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->kind, POLICY_NFTNL_RULE);
	ck_assert_uint_eq(o->chain, 0);
	ck_assert_uint_eq(o->rule, 0);
	ck_assert_str_eq(o->loc.file, "p.hvp");
	ck_assert_uint_eq(o->loc.line, 7);
	ck_assert_uint_eq(o->loc.col, 3);
	char what[128];
	policy_nftnl_origin_describe(o, t, what, sizeof(what));
	ck_assert_str_eq(what, "rule 1 of chain forward");
	o = policy_nftnl_origin(b, b->first_seq + 6);
	ck_assert_uint_eq(o->kind, POLICY_NFTNL_SET);
	policy_nftnl_origin_describe(o, t, what, sizeof(what));
	ck_assert_str_eq(what, "set s4");
	ck_assert_ptr_null(policy_nftnl_origin(b, b->first_seq - 1));
	ck_assert_ptr_null(policy_nftnl_origin(b, b->last_seq + 1));
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

START_TEST(test_genid_and_check_mode)
{
	struct ir_table *t = small_table();
	struct policy_nftnl_opts o;
	policy_nftnl_opts_default(&o);
	o.expect_genid_set = true;
	o.expect_genid = 0x01020304;
	o.no_commit = true;
	struct policy_nftnl_batch *b = build(t, &o);
	struct msgs m;
	collect(b, &m);
	ck_assert_uint_eq(m.n, 9); /* no BATCH_END: the kernel aborts */
	ck_assert_uint_ne(m.v[m.n - 1]->nlmsg_type, NFNL_MSG_BATCH_END);
	const struct nlattr *a;
	uint32_t genid = 0;
	mnl_attr_for_each(a, m.v[0],
			  sizeof(struct nfgenmsg)) if (mnl_attr_get_type(a) == NFNL_BATCH_GENID)
	    genid = ntohl(mnl_attr_get_u32(a));
	ck_assert_uint_eq(genid, 0x01020304);
	free(m.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

struct elem_seen {
	uint32_t key[8];
	uint32_t flags[8];
	size_t n;
};

static int elem_cb(struct nftnl_set_elem *e, void *data)
{
	struct elem_seen *s = data;
	uint32_t len;
	const uint32_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert_uint_lt(s->n, 8);
	s->key[s->n] = ntohl(*k);
	s->flags[s->n] = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS)
			     ? nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS)
			     : 0;
	s->n++;
	return 0;
}

START_TEST(test_interval_encoding)
{
	struct ir_table *t = small_table();
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs m;
	collect(b, &m);
	struct nftnl_set *s = nftnl_set_alloc();
	ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(m.v[7], s), 0);
	struct elem_seen seen = { 0 };
	nftnl_set_elem_foreach(s, elem_cb, &seen);
	/* 0 END, 10.0.0.0, 11.0.0.0 END, 192.168.1.1, 192.168.1.2 END */
	ck_assert_uint_eq(seen.n, 5);
	const uint32_t keys[] = { 0, 0x0a000000, 0x0b000000, 0xc0a80101, 0xc0a80102 };
	const uint32_t flags[] = { NFT_SET_ELEM_INTERVAL_END, 0, NFT_SET_ELEM_INTERVAL_END, 0,
				   NFT_SET_ELEM_INTERVAL_END };
	for (size_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(seen.key[i], keys[i]);
		ck_assert_uint_eq(seen.flags[i], flags[i]);
	}
	nftnl_set_free(s);

	/* the set itself: interval flag, ipv4 key type 7, key byte order big */
	s = nftnl_set_alloc();
	ck_assert_int_eq(nftnl_set_nlmsg_parse(m.v[6], s), 0);
	ck_assert_str_eq(nftnl_set_get_str(s, NFTNL_SET_NAME), "s4");
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_INTERVAL);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), 7);
	ck_assert_uint_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
	uint32_t ulen;
	const uint8_t *ud = nftnl_set_get_data(s, NFTNL_SET_USERDATA, &ulen);
	const uint8_t want_ud[] = { NFTNL_UDATA_SET_KEYBYTEORDER, 4, 2, 0, 0, 0 };
	ck_assert_uint_eq(ulen, sizeof(want_ud));
	ck_assert_mem_eq(ud, want_ud, sizeof(want_ud));
	nftnl_set_free(s);
	free(m.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

struct expr_names {
	char names[16][16];
	size_t n;
	uint32_t payload_len;
};

static int expr_cb(struct nftnl_expr *e, void *data)
{
	struct expr_names *x = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	ck_assert_uint_lt(x->n, 16);
	snprintf(x->names[x->n++], 16, "%s", name);
	if (!strcmp(name, "payload"))
		x->payload_len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
	return 0;
}

static struct nftnl_rule *parse_rule(const struct nlmsghdr *nlh, struct expr_names *x)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	ck_assert_int_eq(nftnl_rule_nlmsg_parse(nlh, r), 0);
	memset(x, 0, sizeof(*x));
	nftnl_expr_foreach(r, expr_cb, x);
	return r;
}

START_TEST(test_rule_expressions_and_comment)
{
	struct ir_table *t = small_table();
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs m;
	collect(b, &m);
	struct expr_names x;
	struct nftnl_rule *r = parse_rule(m.v[8], &x);
	const char *want[] = { "meta", "cmp", "payload", "lookup", "counter", "immediate" };
	ck_assert_uint_eq(x.n, 6);
	for (size_t i = 0; i < 6; i++)
		ck_assert_str_eq(x.names[i], want[i]);
	ck_assert_str_eq(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "forward");
	uint32_t len;
	const uint8_t *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	/* NFTNL_UDATA_RULE_COMMENT TLV, NUL-terminated, exactly as nft */
	const char comment[] = "p.hvp:7:abc";
	ck_assert_uint_eq(len, 2 + sizeof(comment));
	ck_assert_uint_eq(ud[0], NFTNL_UDATA_RULE_COMMENT);
	ck_assert_uint_eq(ud[1], sizeof(comment));
	ck_assert_mem_eq(ud + 2, comment, sizeof(comment));
	nftnl_rule_free(r);
	free(m.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

/* One rule in a chain of its own table, with one match and/or statement. */
static struct ir_table *one_rule(struct ir_rule **out)
{
	struct ir_table *t = ir_table_new(NULL);
	*out = ir_rule_add(ir_chain_add(t, "x"));
	return t;
}

START_TEST(test_prefix_trimmed_or_masked)
{
	const uint8_t net[4] = { 10, 1, 2, 0 };
	struct ir_rule *r;
	struct ir_table *t = one_rule(&r);
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_PREFIX;
	m->field[0] = IR_IP_SADDR;
	m->value = ir_value_addr(net, AF_INET);
	m->prefix_len = 16; /* byte-aligned: payload of 2 bytes, no bitwise */
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs ms;
	collect(b, &ms);
	struct expr_names x;
	nftnl_rule_free(parse_rule(ms.v[5], &x));
	ck_assert_uint_eq(x.n, 2);
	ck_assert_uint_eq(x.payload_len, 2);
	free(ms.iov);
	policy_nftnl_batch_free(b);

	m->prefix_len = 23; /* not aligned: full load, bitwise, cmp */
	b = build(t, NULL);
	collect(b, &ms);
	nftnl_rule_free(parse_rule(ms.v[5], &x));
	ck_assert_uint_eq(x.n, 3);
	ck_assert_str_eq(x.names[1], "bitwise");
	ck_assert_uint_eq(x.payload_len, 4);
	free(ms.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

/* meta mark set meta mark & KEEP | VALUE: load the mark, one bitwise
 * (mask KEEP, xor VALUE, host order like the mark), write it back */
START_TEST(test_mark_set_keeps_bits)
{
	struct ir_rule *r;
	struct ir_table *t = one_rule(&r);
	struct ir_stmt *s = ir_build_set_value(r, IR_META_MARK, ir_value_u32(0x2));
	s->keep_mask = 0xffffbfff;
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs ms;
	collect(b, &ms);
	struct expr_names x;
	struct nftnl_rule *nr = parse_rule(ms.v[5], &x);
	ck_assert_uint_eq(x.n, 3);
	ck_assert_str_eq(x.names[0], "meta");
	ck_assert_str_eq(x.names[1], "bitwise");
	ck_assert_str_eq(x.names[2], "meta");
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(nr);
	struct nftnl_expr *e = nftnl_expr_iter_next(it);
	ck_assert_uint_eq(nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY), NFT_META_MARK);
	e = nftnl_expr_iter_next(it);
	uint32_t len, mask, xor;
	memcpy(&mask, nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len), 4);
	ck_assert_uint_eq(len, 4);
	memcpy(&xor, nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &len), 4);
	ck_assert_uint_eq(mask, 0xffffbfff);
	ck_assert_uint_eq(xor, 0x2);
	e = nftnl_expr_iter_next(it);
	ck_assert(nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG));
	nftnl_expr_iter_destroy(it);
	nftnl_rule_free(nr);
	free(ms.iov);
	policy_nftnl_batch_free(b);
	/* only the mark keeps bits: anything else is refused */
	s->target = IR_CT_MARK;
	struct policy_diags d = { 0 };
	ck_assert_int_ne(ir_table_validate(t, &d), 0);
	ck_assert_ptr_nonnull(strstr(d.v[0].message, "keeps bits"));
	policy_diags_free(&d);
	ir_table_free(t);
}
END_TEST

START_TEST(test_queue_native_or_compat)
{
	struct ir_rule *r;
	struct ir_table *t = one_rule(&r);
	struct ir_stmt *s = ir_stmt_add(r);
	s->kind = IR_S_QUEUE;
	s->queue_num = 3;
	s->queue_bypass = true;
	struct policy_nftnl_opts o;
	policy_nftnl_opts_default(&o);
	for (int native = 0; native <= 1; native++) {
		o.native_queue = native;
		struct policy_nftnl_batch *b = build(t, &o);
		struct msgs ms;
		collect(b, &ms);
		struct nftnl_rule *nr = nftnl_rule_alloc();
		ck_assert_int_eq(nftnl_rule_nlmsg_parse(ms.v[5], nr), 0);
		struct nftnl_expr_iter *it = nftnl_expr_iter_create(nr);
		struct nftnl_expr *e = nftnl_expr_iter_next(it);
		ck_assert_str_eq(nftnl_expr_get_str(e, NFTNL_EXPR_NAME),
				 native ? "queue" : "target");
		if (native) {
			ck_assert_uint_eq(nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_NUM), 3);
		} else {
			ck_assert_str_eq(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME), "NFQUEUE");
			ck_assert_uint_eq(nftnl_expr_get_u32(e, NFTNL_EXPR_TG_REV), 3);
			uint32_t len;
			const uint16_t *info = nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len);
			ck_assert_uint_eq(len, 6); /* struct xt_NFQ_info_v3 */
			ck_assert_uint_eq(info[0], 3);
			ck_assert_uint_eq(info[1], 1);
			ck_assert_uint_eq(info[2], 1); /* NFQ_FLAG_BYPASS */
		}
		nftnl_expr_iter_destroy(it);
		nftnl_rule_free(nr);
		free(ms.iov);
		policy_nftnl_batch_free(b);
	}
	ir_table_free(t);
}
END_TEST

START_TEST(test_large_set_split)
{
	/* 100,000 addresses: several NEWSETELEM messages, each below the u16
	 * nest limit, all of the same set and all with their own origin. */
	struct ir_table *t = ir_table_new(NULL);
	size_t si = ir_set_add(t, "big");
	struct ir_set *s = &t->sets[si];
	s->key[0] = IR_IP_DADDR;
	s->n_key = 1;
	for (uint32_t i = 0; i < 100000; i++) {
		uint32_t a = htonl(0x0a000000 + i * 2);
		ir_set_elem_add(s)->key[0] = ir_value_addr((const uint8_t *)&a, AF_INET);
	}
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs *ms = calloc(1, sizeof(*ms));
	collect(b, ms);
	size_t n_elem_msgs = 0;
	for (size_t i = 0; i < ms->n; i++) {
		if (ms->v[i]->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES ||
		    nft_type(ms->v[i]) != NFT_MSG_NEWSETELEM)
			continue;
		n_elem_msgs++;
		ck_assert_uint_lt(ms->v[i]->nlmsg_len, 65536 + 4096);
		ck_assert_uint_eq(policy_nftnl_origin(b, ms->v[i]->nlmsg_seq)->kind,
				  POLICY_NFTNL_ELEMS);
	}
	ck_assert_uint_gt(n_elem_msgs, 10);
	ck_assert_uint_eq(b->n_elems, 100000);
	ck_assert_uint_eq(ms->n, b->n_messages);
	free(ms->iov);
	free(ms);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

START_TEST(test_malformed_ir_is_an_error)
{
	struct ir_rule *r;
	struct ir_table *t = one_rule(&r);
	r->loc = rule_loc;
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = IR_IP_SADDR;
	m->value = ir_value_u8(1); /* 1 byte for a 4-byte field */
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_nftnl_batch *b = (void *)1;
	ck_assert_int_eq(policy_emit_nftnl(t, NULL, &b, &d), -1);
	ck_assert_ptr_null(b);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[0].loc.line, 7);
	policy_diags_free(&d);
	ir_table_free(t);
}
END_TEST

/* ---- the IR corpus for tests/net/backend_agree.sh ----
 *
 * `test_emit_nftnl --write-corpus DIR` writes, for IR tables built by hand
 * that use every construct (NAT, queue-free), DIR/NAME.nft (policy_emit_nft)
 * and DIR/NAME.batch (the raw netlink batch of policy_emit_nftnl); the
 * suite applies one with `nft -f` and sends the other as it is, in two
 * namespaces, and compares the kernel objects. */

static struct ir_value v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t x[4] = { a, b, c, d };
	return ir_value_addr(x, AF_INET);
}

static struct ir_value v6(const char *text)
{
	uint8_t x[16];
	inet_pton(AF_INET6, text, x);
	return ir_value_addr(x, AF_INET6);
}

static struct ir_match *cmp(struct ir_rule *r, enum ir_field f, struct ir_value v)
{
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_CMP;
	m->field[0] = f;
	m->value = v;
	return m;
}

static void nfproto(struct ir_rule *r, int v)
{
	cmp(r, IR_META_NFPROTO, ir_value_u8((uint8_t)v));
}

static void l4(struct ir_rule *r, int proto)
{
	cmp(r, IR_META_L4PROTO, ir_value_u8((uint8_t)proto));
}

static struct ir_match *lookup(struct ir_rule *r, size_t set, const enum ir_field *f, size_t n)
{
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_LOOKUP;
	m->n_field = n;
	memcpy(m->field, f, n * sizeof(*f));
	m->set = set;
	return m;
}

static struct ir_set *new_set(struct ir_table *t, const char *name, uint32_t flags, size_t *idx,
			      const enum ir_field *key, size_t n_key)
{
	*idx = ir_set_add(t, name);
	struct ir_set *s = &t->sets[*idx];
	s->flags = flags;
	s->n_key = n_key;
	memcpy(s->key, key, n_key * sizeof(*key));
	return s;
}

static struct ir_set_elem *elem(struct ir_set *s, struct ir_value k, struct ir_value end)
{
	struct ir_set_elem *e = ir_set_elem_add(s);
	e->key[0] = k;
	e->key_end[0] = end;
	return e;
}

static void verdict(struct ir_rule *r, enum ir_verdict_kind k, const char *chain)
{
	r->verdict.kind = k;
	if (chain)
		snprintf(r->verdict.chain, sizeof(r->verdict.chain), "%s", chain);
}

/* The block lists' shape: meta mark . ip saddr with intervals. The mark is
 * host order: the lookup converts it (byteorder right after its load) and
 * the element keeps it big-endian, as nft does for concatenated intervals. */
START_TEST(test_concat_interval_host_order)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = ir_chain_add(t, "forward");
	c->hook = IR_HOOK_FORWARD;
	const enum ir_field key[2] = { IR_META_MARK, IR_IP_SADDR };
	size_t si;
	struct ir_set *s = new_set(t, "blocked4", IR_SET_INTERVAL | IR_SET_TIMEOUT, &si, key, 2);
	struct ir_set_elem *e = ir_set_elem_add(s);
	e->key[0] = ir_value_u32(0x10000);
	e->key_end[0] = ir_value_u32(0x1ffff);
	e->key[1] = v4(10, 0, 0, 0);
	e->key_end[1] = v4(10, 0, 0, 15);
	struct ir_rule *r = ir_rule_add(&t->chains[0]);
	nfproto(r, NFPROTO_IPV4);
	lookup(r, si, key, 2);
	verdict(r, IR_V_DROP, NULL);
	struct policy_nftnl_batch *b = build(t, NULL);
	struct msgs m;
	collect(b, &m);
	bool saw_rule = false, saw_elem = false;
	for (size_t i = 0; i < m.n; i++) {
		if (nft_type(m.v[i]) == NFT_MSG_NEWRULE) {
			struct expr_names x;
			struct nftnl_rule *nr = parse_rule(m.v[i], &x);
			const char *want[] = { "meta",    "cmp",    "meta",     "byteorder",
					       "payload", "lookup", "immediate" };
			ck_assert_uint_eq(x.n, 7);
			for (size_t k = 0; k < 7; k++)
				ck_assert_str_eq(x.names[k], want[k]);
			nftnl_rule_free(nr);
			saw_rule = true;
		} else if (nft_type(m.v[i]) == NFT_MSG_NEWSETELEM) {
			struct nftnl_set *ns = nftnl_set_alloc();
			ck_assert_int_eq(nftnl_set_elems_nlmsg_parse(m.v[i], ns), 0);
			struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(ns);
			struct nftnl_set_elem *ne = nftnl_set_elems_iter_next(it);
			ck_assert_ptr_nonnull(ne);
			uint32_t klen, elen;
			const uint8_t *k = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_KEY, &klen);
			const uint8_t *end = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_KEY_END, &elen);
			const uint8_t want_k[8] = { 0, 1, 0, 0, 10, 0, 0, 0 };
			const uint8_t want_end[8] = { 0, 1, 0xff, 0xff, 10, 0, 0, 15 };
			ck_assert_uint_eq(klen, 8);
			ck_assert_uint_eq(elen, 8);
			ck_assert_mem_eq(k, want_k, 8);
			ck_assert_mem_eq(end, want_end, 8);
			nftnl_set_elems_iter_destroy(it);
			nftnl_set_free(ns);
			saw_elem = true;
		}
	}
	ck_assert(saw_rule && saw_elem);
	free(m.iov);
	policy_nftnl_batch_free(b);
	ir_table_free(t);
}
END_TEST

static struct ir_table *corpus_filter(void)
{
	struct ir_table *t = ir_table_new(NULL);
	snprintf(t->comment, sizeof(t->comment), "hvgate rev=3 hash=c0ffee");
	struct ir_chain *c = ir_chain_add(t, "filter_fwd");
	c->hook = IR_HOOK_FORWARD;
	c->policy = IR_V_DROP;
	c = ir_chain_add(t, "sub");
	snprintf(c->comment, sizeof(c->comment), "a regular chain");
	c = ir_chain_add(t, "raw");
	c->hook = IR_HOOK_PREROUTING;
	c->priority = -300;

	static const enum ir_field k_v4[] = { IR_IP_SADDR }, k_v6[] = { IR_IP6_SADDR },
				   k_if[] = { IR_META_IIFNAME },
				   k_pair[] = { IR_IP_SADDR, IR_TH_DPORT },
				   k_mark[] = { IR_META_MARK }, k_port[] = { IR_TH_DPORT },
				   k_st[] = { IR_CT_STATE },
				   k_ifaddr[] = { IR_META_IIFNAME, IR_IP_SADDR };
	size_t s_v4, s_v6, s_if, s_pair, s_cidr, s_mark, s_tmo, s_vm, s_zm, s_ports, s_st, s_anon4,
	    s_ifaddr;
	struct ir_set *s = new_set(t, "v4", IR_SET_INTERVAL, &s_v4, k_v4, 1);
	elem(s, v4(192, 168, 1, 1), (struct ir_value){ 0 });
	elem(s, v4(10, 0, 0, 0), v4(10, 255, 255, 255));
	elem(s, v4(172, 16, 0, 1), v4(172, 16, 0, 9));
	elem(s, v4(240, 0, 0, 0), v4(255, 255, 255, 255)); /* open at the top */
	s = new_set(t, "v6", IR_SET_INTERVAL | IR_SET_CONSTANT, &s_v6, k_v6, 1);
	elem(s, v6("2001:db8::"), v6("2001:db8:0:ffff:ffff:ffff:ffff:ffff"));
	elem(s, v6("fd00::1"), (struct ir_value){ 0 });
	s = new_set(t, "ifs", IR_SET_INTERVAL, &s_if, k_if, 1);
	struct ir_value lo, hi;
	ir_ifname_wildcard("tap-*", &lo, &hi);
	elem(s, lo, hi);
	elem(s, ir_value_ifname("eth0"), (struct ir_value){ 0 });
	s = new_set(t, "pairs", 0, &s_pair, k_pair, 2);
	struct ir_set_elem *e = ir_set_elem_add(s);
	e->key[0] = v4(10, 0, 0, 1);
	e->key[1] = ir_value_u16_net(80);
	e = ir_set_elem_add(s);
	e->key[0] = v4(10, 0, 0, 2);
	e->key[1] = ir_value_u16_net(443);
	s = new_set(t, "cidr_ports", IR_SET_INTERVAL, &s_cidr, k_pair, 2);
	e = ir_set_elem_add(s);
	e->key[0] = v4(10, 1, 0, 0);
	e->key_end[0] = v4(10, 1, 255, 255);
	e->key[1] = ir_value_u16_net(8000);
	e->key_end[1] = ir_value_u16_net(8099);
	s = new_set(t, "marks", IR_SET_INTERVAL, &s_mark, k_mark, 1);
	elem(s, ir_value_u32(1), ir_value_u32(5));
	elem(s, ir_value_u32(300), ir_value_u32(400)); /* crosses a byte: host order */
	s = new_set(t, "blocked", IR_SET_TIMEOUT, &s_tmo, k_v4, 1);
	s->timeout_ms = 3600000;
	snprintf(s->comment, sizeof(s->comment), "block list");
	elem(s, v4(198, 51, 100, 9), (struct ir_value){ 0 })->timeout_ms = 600000;
	s = new_set(t, "vm", 0, &s_vm, k_if, 1);
	s->data = IR_DATA_VERDICT;
	e = elem(s, ir_value_ifname("eth1"), (struct ir_value){ 0 });
	e->verdict.kind = IR_V_JUMP;
	snprintf(e->verdict.chain, sizeof(e->verdict.chain), "sub");
	elem(s, ir_value_ifname("eth2"), (struct ir_value){ 0 })->verdict.kind = IR_V_ACCEPT;
	s = new_set(t, "zm", 0, &s_zm, k_if, 1);
	s->data = IR_DATA_VALUE;
	s->data_field = IR_CT_ZONE;
	e = elem(s, ir_value_ifname("eth1"), (struct ir_value){ 0 });
	uint16_t zone = 5;
	e->data.len = 2;
	memcpy(e->data.data, &zone, 2);
	s = new_set(t, "ports", IR_SET_ANONYMOUS | IR_SET_CONSTANT, &s_ports, k_port, 1);
	elem(s, ir_value_u16_net(443), (struct ir_value){ 0 });
	elem(s, ir_value_u16_net(22), (struct ir_value){ 0 });
	s = new_set(t, "st", IR_SET_ANONYMOUS | IR_SET_CONSTANT, &s_st, k_st, 1);
	s->data = IR_DATA_VERDICT;
	e = elem(s, ir_value_u32(NF_CT_STATE_INVALID_BIT), (struct ir_value){ 0 });
	e->verdict.kind = IR_V_DROP;
	e = elem(s, ir_value_u32(NF_CT_STATE_BIT(IP_CT_ESTABLISHED)), (struct ir_value){ 0 });
	e->verdict.kind = IR_V_ACCEPT;
	s = new_set(t, "anon4", IR_SET_ANONYMOUS | IR_SET_CONSTANT | IR_SET_INTERVAL, &s_anon4,
		    k_v4, 1);
	elem(s, v4(0, 0, 0, 0), v4(0, 255, 255, 255)); /* starts at 0: no leading end */
	elem(s, v4(100, 64, 0, 0), v4(100, 127, 255, 255));
	s = new_set(t, "ifaddr", IR_SET_ANONYMOUS | IR_SET_CONSTANT, &s_ifaddr, k_ifaddr, 2);
	e = ir_set_elem_add(s);
	e->key[0] = ir_value_ifname("eth3");
	e->key[1] = v4(10, 9, 9, 9);

	c = &t->chains[0];
	struct ir_rule *r = ir_rule_add(c);
	snprintf(r->comment, sizeof(r->comment), "corpus:1:aaaaaa");
	nfproto(r, NFPROTO_IPV4);
	lookup(r, s_v4, k_v4, 1);
	ir_stmt_add(r)->kind = IR_S_COUNTER;
	verdict(r, IR_V_DROP, NULL);

	r = ir_rule_add(c);
	nfproto(r, NFPROTO_IPV4);
	lookup(r, s_v4, k_v4, 1)->op = IR_OP_NEQ;
	l4(r, IPPROTO_TCP);
	lookup(r, s_ports, k_port, 1);
	verdict(r, IR_V_ACCEPT, NULL);

	r = ir_rule_add(c);
	struct ir_match *m = cmp(r, IR_META_IIFNAME, ir_value_ifname("tap-*"));
	m->wildcard = true;
	verdict(r, IR_V_JUMP, "sub");

	r = ir_rule_add(c);
	cmp(r, IR_META_OIFNAME, ir_value_ifname("eth0"));
	struct ir_stmt *st = ir_stmt_add(r);
	st->kind = IR_S_LOG;
	snprintf(st->log_prefix, sizeof(st->log_prefix), "out ");
	st->log_group = 5;
	verdict(r, IR_V_ACCEPT, NULL);

	r = ir_rule_add(c);
	nfproto(r, NFPROTO_IPV6);
	m = ir_match_add(r);
	m->kind = IR_M_PREFIX;
	m->field[0] = IR_IP6_SADDR;
	m->value = v6("2001:db8::");
	m->prefix_len = 33;
	lookup(r, s_v6, k_v6, 1);
	verdict(r, IR_V_DROP, NULL);

	for (int plen = 16; plen <= 23; plen += 7) {
		r = ir_rule_add(c);
		nfproto(r, NFPROTO_IPV4);
		m = ir_match_add(r);
		m->kind = IR_M_PREFIX;
		m->field[0] = IR_IP_DADDR;
		m->value = v4(10, 2, 0, 0);
		m->prefix_len = (uint8_t)plen;
		m->op = plen == 23 ? IR_OP_NEQ : IR_OP_EQ;
		verdict(r, IR_V_ACCEPT, NULL);
	}

	for (int neq = 0; neq <= 1; neq++) {
		r = ir_rule_add(c);
		l4(r, IPPROTO_UDP);
		m = ir_match_add(r);
		m->kind = IR_M_RANGE;
		m->field[0] = IR_TH_DPORT;
		m->value = ir_value_u16_net(1000);
		m->value_end = ir_value_u16_net(2000);
		m->op = neq ? IR_OP_NEQ : IR_OP_EQ;
		verdict(r, IR_V_DROP, NULL);
	}

	r = ir_rule_add(c);
	m = ir_match_add(r);
	m->kind = IR_M_RANGE;
	m->field[0] = IR_META_MARK;
	m->value = ir_value_u32(5);
	m->value_end = ir_value_u32(700);
	verdict(r, IR_V_DROP, NULL);

	r = ir_rule_add(c);
	m = ir_match_add(r);
	m->kind = IR_M_BITS;
	m->field[0] = IR_CT_STATE;
	m->value =
	    ir_value_u32(NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
	verdict(r, IR_V_ACCEPT, NULL);

	r = ir_rule_add(c);
	nfproto(r, NFPROTO_IPV4);
	l4(r, IPPROTO_TCP);
	lookup(r, s_pair, k_pair, 2);
	lookup(r, s_cidr, k_pair, 2);
	verdict(r, IR_V_ACCEPT, NULL);

	r = ir_rule_add(c);
	lookup(r, s_mark, k_mark, 1);
	nfproto(r, NFPROTO_IPV4);
	lookup(r, s_tmo, k_v4, 1);
	lookup(r, s_anon4, k_v4, 1);
	lookup(r, s_ifaddr, k_ifaddr, 2);
	lookup(r, s_if, k_if, 1);
	verdict(r, IR_V_DROP, NULL);

	r = ir_rule_add(c);
	st = ir_stmt_add(r);
	st->kind = IR_S_VMAP;
	st->field[0] = IR_META_IIFNAME;
	st->n_field = 1;
	st->set = s_vm;

	r = ir_rule_add(c);
	st = ir_stmt_add(r);
	st->kind = IR_S_VMAP;
	st->field[0] = IR_CT_STATE;
	st->n_field = 1;
	st->set = s_st;

	r = ir_rule_add(c);
	st = ir_stmt_add(r);
	st->kind = IR_S_SET_FROM_MAP;
	st->field[0] = IR_META_IIFNAME;
	st->n_field = 1;
	st->set = s_zm;
	st->target = IR_CT_ZONE;
	st = ir_stmt_add(r);
	st->kind = IR_S_SET_VALUE;
	st->target = IR_META_MARK;
	st->value = ir_value_u32(0x10);
	st = ir_stmt_add(r);
	st->kind = IR_S_SET_VALUE;
	st->target = IR_CT_MARK;
	st->value = ir_value_u32(0x2);

	/* a named concatenated verdict map, an anonymous concatenated interval
	 * set, an anonymous set of ICMP types and a set of ct marks */
	size_t s_cvm, s_acint, s_icmp, s_cmark;
	s = new_set(t, "cvm", 0, &s_cvm, k_pair, 2);
	s->data = IR_DATA_VERDICT;
	e = ir_set_elem_add(s);
	e->key[0] = v4(10, 7, 0, 1);
	e->key[1] = ir_value_u16_net(25);
	e->verdict.kind = IR_V_DROP;
	s = new_set(t, "acint", IR_SET_ANONYMOUS | IR_SET_CONSTANT | IR_SET_INTERVAL, &s_acint,
		    k_pair, 2);
	e = ir_set_elem_add(s);
	e->key[0] = v4(10, 8, 0, 0);
	e->key_end[0] = v4(10, 8, 0, 255);
	e->key[1] = ir_value_u16_net(53);
	static const enum ir_field k_icmp[] = { IR_ICMP_TYPE }, k_ctmark[] = { IR_CT_MARK };
	s = new_set(t, "icmps", IR_SET_ANONYMOUS | IR_SET_CONSTANT, &s_icmp, k_icmp, 1);
	elem(s, ir_value_u8(0), (struct ir_value){ 0 });
	elem(s, ir_value_u8(8), (struct ir_value){ 0 });
	s = new_set(t, "ctmarks", 0, &s_cmark, k_ctmark, 1);
	elem(s, ir_value_u32(0x100), (struct ir_value){ 0 });
	r = ir_rule_add(c);
	nfproto(r, NFPROTO_IPV4);
	l4(r, IPPROTO_UDP);
	lookup(r, s_acint, k_pair, 2)->op = IR_OP_NEQ;
	lookup(r, s_cmark, k_ctmark, 1);
	st = ir_stmt_add(r);
	st->kind = IR_S_VMAP;
	memcpy(st->field, k_pair, sizeof(k_pair));
	st->n_field = 2;
	st->set = s_cvm;
	r = ir_rule_add(c);
	l4(r, IPPROTO_ICMP);
	lookup(r, s_icmp, k_icmp, 1);
	verdict(r, IR_V_ACCEPT, NULL);

	/* anonymous maps: a data map (ct zone) and an interval verdict map */
	size_t s_azm, s_aivm;
	s = new_set(t, "azm", IR_SET_ANONYMOUS | IR_SET_CONSTANT, &s_azm, k_if, 1);
	s->data = IR_DATA_VALUE;
	s->data_field = IR_CT_ZONE;
	e = elem(s, ir_value_ifname("eth4"), (struct ir_value){ 0 });
	zone = 9;
	e->data.len = 2;
	memcpy(e->data.data, &zone, 2);
	s = new_set(t, "aivm", IR_SET_ANONYMOUS | IR_SET_CONSTANT | IR_SET_INTERVAL, &s_aivm, k_v4,
		    1);
	s->data = IR_DATA_VERDICT;
	elem(s, v4(10, 0, 0, 0), v4(10, 0, 255, 255))->verdict.kind = IR_V_ACCEPT;
	e = elem(s, v4(10, 3, 0, 0), v4(10, 3, 0, 255));
	e->verdict.kind = IR_V_GOTO;
	snprintf(e->verdict.chain, sizeof(e->verdict.chain), "sub");
	r = ir_rule_add(c);
	st = ir_stmt_add(r);
	st->kind = IR_S_SET_FROM_MAP;
	st->field[0] = IR_META_IIFNAME;
	st->n_field = 1;
	st->set = s_azm;
	st->target = IR_CT_ZONE;
	r = ir_rule_add(c);
	nfproto(r, NFPROTO_IPV4);
	st = ir_stmt_add(r);
	st->kind = IR_S_VMAP;
	st->field[0] = IR_IP_SADDR;
	st->n_field = 1;
	st->set = s_aivm;

	r = ir_rule_add(c);
	st = ir_stmt_add(r);
	st->kind = IR_S_LIMIT;
	st->rate = 10;
	st->unit = IR_PER_MINUTE;
	st->burst = 20;
	verdict(r, IR_V_ACCEPT, NULL);

	r = ir_rule_add(c);
	l4(r, IPPROTO_TCP);
	ir_stmt_add(r)->kind = IR_S_REJECT; /* tcp reset */
	for (int k = IR_REJECT_ICMPX_PORT_UNREACH; k <= IR_REJECT_ICMPX_ADMIN_PROHIBITED; k++) {
		r = ir_rule_add(c);
		st = ir_stmt_add(r);
		st->kind = IR_S_REJECT;
		st->reject = (enum ir_reject_kind)k;
	}

	r = ir_rule_add(c);
	l4(r, IPPROTO_ICMP);
	cmp(r, IR_ICMP_TYPE, ir_value_u8(8));
	verdict(r, IR_V_ACCEPT, NULL);
	r = ir_rule_add(c);
	l4(r, IPPROTO_ICMPV6);
	cmp(r, IR_ICMPV6_TYPE, ir_value_u8(128));
	verdict(r, IR_V_GOTO, "sub");

	r = ir_rule_add(&t->chains[1]);
	cmp(r, IR_META_MARK, ir_value_u32(7))->op = IR_OP_NEQ;
	verdict(r, IR_V_RETURN, NULL);
	r = ir_rule_add(&t->chains[2]);
	ir_stmt_add(r)->kind = IR_S_NOTRACK;
	return t;
}

static struct ir_stmt *nat(struct ir_rule *r, enum ir_nat_kind k, uint8_t family)
{
	struct ir_stmt *st = ir_stmt_add(r);
	st->kind = IR_S_NAT;
	st->nat.kind = k;
	st->nat.family = family;
	return st;
}

static struct ir_table *corpus_nat(void)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *post = ir_chain_add(t, "post");
	post->hook = IR_HOOK_POSTROUTING;
	post->type = IR_CHAIN_NAT;
	post->priority = 100;
	struct ir_chain *pre = ir_chain_add(t, "pre");
	pre->hook = IR_HOOK_PREROUTING;
	pre->type = IR_CHAIN_NAT;
	pre->priority = -100;
	post = &t->chains[0];

	struct ir_rule *r = ir_rule_add(post);
	cmp(r, IR_META_OIFNAME, ir_value_ifname("eth0"));
	nat(r, IR_NAT_MASQUERADE, NFPROTO_IPV4);
	r = ir_rule_add(post);
	l4(r, IPPROTO_TCP);
	struct ir_stmt *st = nat(r, IR_NAT_MASQUERADE, NFPROTO_IPV4);
	st->nat.port_lo = 1024;
	st->nat.port_hi = 65535;
	r = ir_rule_add(post);
	nfproto(r, NFPROTO_IPV4);
	l4(r, IPPROTO_TCP);
	st = nat(r, IR_NAT_SNAT, NFPROTO_IPV4);
	st->nat.addr_lo = v4(203, 0, 113, 4);
	st->nat.addr_hi = v4(203, 0, 113, 8);
	st->nat.port_lo = 1000;
	st->nat.port_hi = 2000;
	r = ir_rule_add(post);
	nfproto(r, NFPROTO_IPV4);
	struct ir_match *m = ir_match_add(r);
	m->kind = IR_M_PREFIX;
	m->field[0] = IR_IP_SADDR;
	m->value = v4(10, 0, 0, 0);
	m->prefix_len = 24;
	st = nat(r, IR_NAT_SNAT, NFPROTO_IPV4);
	st->nat.addr_lo = v4(198, 18, 0, 0);
	st->nat.addr_hi = v4(198, 18, 0, 255);
	st->nat.netmap = true;
	r = ir_rule_add(post);
	nfproto(r, NFPROTO_IPV6);
	st = nat(r, IR_NAT_SNAT, NFPROTO_IPV6);
	st->nat.addr_lo = v6("2001:db8::1");
	r = ir_rule_add(post);
	cmp(r, IR_META_OIFNAME, ir_value_ifname("eth9"));
	nat(r, IR_NAT_MASQUERADE, NFPROTO_IPV4)->nat.random_fully = true;
	r = ir_rule_add(post);
	nfproto(r, NFPROTO_IPV6);
	st = nat(r, IR_NAT_SNAT, NFPROTO_IPV6);
	st->nat.addr_lo = v6("2001:db8:1::");
	st->nat.addr_hi = v6("2001:db8:1::ffff");
	st->nat.netmap = true;

	r = ir_rule_add(&t->chains[1]);
	nfproto(r, NFPROTO_IPV4);
	l4(r, IPPROTO_TCP);
	cmp(r, IR_TH_DPORT, ir_value_u16_net(8080));
	st = nat(r, IR_NAT_DNAT, NFPROTO_IPV4);
	st->nat.addr_lo = v4(10, 0, 1, 10);
	st->nat.port_lo = st->nat.port_hi = 80;
	r = ir_rule_add(&t->chains[1]);
	nfproto(r, NFPROTO_IPV6);
	l4(r, IPPROTO_TCP);
	st = nat(r, IR_NAT_DNAT, NFPROTO_IPV6);
	st->nat.addr_lo = v6("2001:db8::2");
	st->nat.port_lo = 80;
	st->nat.port_hi = 90;
	return t;
}

static int write_one(const char *dir, const char *name, struct ir_table *t)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.nft", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || policy_emit_nft(t, f) || fclose(f))
		return -1;
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_nftnl_batch *b;
	int rc = policy_emit_nftnl(t, NULL, &b, &d);
	if (rc) {
		policy_diags_print(&d, stderr);
	} else {
		struct msgs *m = calloc(1, sizeof(*m));
		snprintf(path, sizeof(path), "%s/%s.batch", dir, name);
		f = fopen(path, "w");
		int n_iov = nftnl_batch_iovec_len(b->batch);
		struct iovec *iov = calloc((size_t)n_iov, sizeof(*iov));
		nftnl_batch_iovec(b->batch, iov, (uint32_t)n_iov);
		for (int i = 0; f && i < n_iov; i++)
			if (fwrite(iov[i].iov_base, 1, iov[i].iov_len, f) != iov[i].iov_len)
				rc = -1;
		if (!f || fclose(f))
			rc = -1;
		free(iov);
		free(m);
		policy_nftnl_batch_free(b);
	}
	policy_diags_free(&d);
	ir_table_free(t);
	return rc;
}

static int write_corpus(const char *dir)
{
	return write_one(dir, "ir_filter", corpus_filter()) ||
	       write_one(dir, "ir_nat", corpus_nat());
}

START_TEST(test_corpus_builds)
{
	/* the hand-made corpus encodes without an error */
	struct ir_table *tabs[2] = { corpus_filter(), corpus_nat() };
	for (int i = 0; i < 2; i++) {
		struct policy_nftnl_batch *b = build(tabs[i], NULL);
		ck_assert_uint_gt(b->n_rules, 5);
		policy_nftnl_batch_free(b);
		ir_table_free(tabs[i]);
	}
}
END_TEST

/* `--write-big DIR RULES ADDRS` (tests/bench/apply.sh): a table of RULES
 * rules (one host each; every tenth also looks up the address set) and one
 * interval set of ADDRS addresses, built as IR without the front end, as
 * DIR/big.nft and DIR/big.batch; prints the batch build time. */
static struct ir_table *big_table(int n_rules, int n_addrs)
{
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = ir_chain_add(t, "forward");
	c->hook = IR_HOOK_FORWARD;
	static const enum ir_field k_v4[] = { IR_IP_SADDR };
	size_t si;
	struct ir_set *s = new_set(t, "big", IR_SET_INTERVAL, &si, k_v4, 1);
	for (int i = 0; i < n_addrs; i++) {
		uint32_t a = htonl(0x0a000000u + 2u * (uint32_t)i);
		ir_set_elem_add(s)->key[0] = ir_value_addr((const uint8_t *)&a, AF_INET);
	}
	for (int i = 0; i < n_rules; i++) {
		struct ir_rule *r = ir_rule_add(&t->chains[0]);
		snprintf(r->comment, sizeof(r->comment), "big:%d", i + 1);
		nfproto(r, NFPROTO_IPV4);
		uint32_t a = htonl(0xac100001u + (uint32_t)i);
		cmp(r, IR_IP_DADDR, ir_value_addr((const uint8_t *)&a, AF_INET));
		if (i % 10 == 0)
			lookup(r, si, k_v4, 1);
		ir_stmt_add(r)->kind = IR_S_COUNTER;
		verdict(r, IR_V_ACCEPT, NULL);
	}
	return t;
}

static int write_big(const char *dir, int n_rules, int n_addrs)
{
	struct ir_table *t = big_table(n_rules, n_addrs);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_nftnl_batch *b;
	int rc = policy_emit_nftnl(t, NULL, &b, &d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	policy_diags_free(&d);
	if (rc) {
		ir_table_free(t);
		return -1;
	}
	printf("build %.3f\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	policy_nftnl_batch_free(b);
	return write_one(dir, "big", t); /* frees t */
}

/* `--apply-broken NETNS` (tests/net/apply_atomic.sh): applies through
 * nftio_apply() a table the kernel must refuse whatever the policy checker
 * does: its second rule jumps to a chain that does not exist. Prints the
 * diagnostics; exit 1 when refused (expected), 0 if it was applied. */
static int apply_broken(const char *netns)
{
	static const struct policy_loc loc = { "broken.hvp", 3, 5, 4 };
	struct ir_table *t = ir_table_new(NULL);
	struct ir_chain *c = ir_chain_add(t, "input");
	c->hook = IR_HOOK_INPUT;
	struct ir_rule *r = ir_rule_add(c);
	l4(r, IPPROTO_TCP);
	verdict(r, IR_V_ACCEPT, NULL);
	r = ir_rule_add(c);
	r->loc = loc;
	snprintf(r->comment, sizeof(r->comment), "broken.hvp:3:abcdef");
	verdict(r, IR_V_JUMP, "nowhere");
	struct policy_diags d;
	policy_diags_init(&d);
	struct nftio_apply_opts o = { .netns = netns };
	struct nftio_apply_result res;
	int err = nftio_apply(t, &o, &res, &d);
	policy_diags_print(&d, stdout);
	printf("nftio_apply: %d, generation %u -> %u\n", err, res.genid_before, res.genid_after);
	policy_diags_free(&d);
	ir_table_free(t);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--apply-broken"))
		return apply_broken(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "--write-big"))
		return write_big(argv[2], atoi(argv[3]), atoi(argv[4])) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]) ? 1 : 0;
	Suite *s = suite_create("emit_nftnl");
	TCase *tc = tcase_create("batch");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_message_sequence);
	tcase_add_test(tc, test_concat_interval_host_order);
	tcase_add_test(tc, test_origin_of_rule);
	tcase_add_test(tc, test_genid_and_check_mode);
	tcase_add_test(tc, test_interval_encoding);
	tcase_add_test(tc, test_rule_expressions_and_comment);
	tcase_add_test(tc, test_prefix_trimmed_or_masked);
	tcase_add_test(tc, test_mark_set_keeps_bits);
	tcase_add_test(tc, test_queue_native_or_compat);
	tcase_add_test(tc, test_large_set_split);
	tcase_add_test(tc, test_malformed_ir_is_an_error);
	tcase_add_test(tc, test_corpus_builds);
	suite_add_tcase(s, tc);
	return check_main(s);
}
