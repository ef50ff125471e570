/* policy/emit_nftnl.c: the batch for hand-made IR tables, read back with
 * libnftnl's parsers (no kernel, no root). */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "policy/nftnl.h"

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
	const uint16_t want[] = { NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE, NFT_MSG_NEWCHAIN,
				  NFT_MSG_NEWCHAIN, NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWRULE };
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
	mnl_attr_for_each(a, m.v[0], sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFNL_BATCH_GENID)
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
				 ? nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) : 0;
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
		ck_assert_str_eq(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), native ? "queue" : "target");
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
		ck_assert_uint_eq(policy_nftnl_origin(b, ms->v[i]->nlmsg_seq)->kind, POLICY_NFTNL_ELEMS);
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

int main(void)
{
	Suite *s = suite_create("emit_nftnl");
	TCase *tc = tcase_create("batch");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_message_sequence);
	tcase_add_test(tc, test_origin_of_rule);
	tcase_add_test(tc, test_genid_and_check_mode);
	tcase_add_test(tc, test_interval_encoding);
	tcase_add_test(tc, test_rule_expressions_and_comment);
	tcase_add_test(tc, test_prefix_trimmed_or_masked);
	tcase_add_test(tc, test_queue_native_or_compat);
	tcase_add_test(tc, test_large_set_split);
	tcase_add_test(tc, test_malformed_ir_is_an_error);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
