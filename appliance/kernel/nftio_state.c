/* nftio: reading and changing the state of a running table inet hvgate
 * without replacing it: rule counters, dynamic set elements (nftio.h).
 * nftio_rule_counters() returns its entries sorted by comment (strcmp), so
 * callers may bsearch them. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "appliance/kernel/nftio.h"
#include "appliance/kernel/nftio_internal.h"
#include "policy/ir.h"

/* Rule counters. */

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **out = data;
	const char *value = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);

	/* The comment TLV of nft (NFTNL_UDATA_RULE_COMMENT), NUL-terminated. */
	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT && len > 0 && value[len - 1] == 0)
		*out = value;
	return MNL_CB_OK;
}

static int counter_expr_cb(struct nftnl_expr *e, void *data)
{
	uint64_t *pb = data;

	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter"))
		return MNL_CB_OK;
	pb[0] += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	pb[1] += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	pb[2] = 1;
	return MNL_CB_OK;
}

static int counters_add(struct nl_collect *c, const char *comment, uint64_t packets, uint64_t bytes)
{
	struct nftio_rule_counter *x = nl_collect_push(c);
	if (!x)
		return -ENOMEM;
	snprintf(x->comment, sizeof(x->comment), "%s", comment);
	x->packets = packets;
	x->bytes = bytes;
	return 0;
}

static int cmp_comment(const void *a, const void *b)
{
	return strcmp(((const struct nftio_rule_counter *)a)->comment,
		      ((const struct nftio_rule_counter *)b)->comment);
}

/* Sorts by comment and sums the rules of one id: O(n log n), where a
 * lookup per rule would be quadratic in rulesets of thousands of rules.
 * Returns how many are left. */
static size_t counters_merge(struct nftio_rule_counter *v, size_t n)
{
	size_t out = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_comment);
	for (size_t i = 1; i < n; i++) {
		if (!strcmp(v[i].comment, v[out].comment)) {
			v[out].packets += v[i].packets;
			v[out].bytes += v[i].bytes;
		} else {
			v[++out] = v[i];
		}
	}
	return out + 1;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_collect *c = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	const char *comment = NULL;
	uint64_t pb[3] = { 0, 0, 0 };
	uint32_t udlen = 0;
	const void *ud;

	if (!r) {
		c->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		nftnl_rule_free(r);
		c->err = -EPROTO;
		return MNL_CB_ERROR;
	}
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	if (ud && udlen)
		nftnl_udata_parse(ud, udlen, comment_cb, &comment);
	nftnl_expr_foreach(r, counter_expr_cb, pb);
	/* Only rules that carry a policy rule id and a counter count. */
	if (comment && *comment && pb[2] && counters_add(c, comment, pb[0], pb[1])) {
		c->err = -ENOMEM;
		nftnl_rule_free(r);
		return MNL_CB_ERROR;
	}
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

/* The kernel resumes a rule dump by walking the chain from its start, so
 * the cost grows with (rules / rules per message) * rules: nl_sock_dump()
 * reads with a buffer large enough for the kernel's largest dump message. */

int nftio_rule_counters(const char *netns, struct nftio_rule_counter **out, size_t *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_collect c = { .elem = sizeof(struct nftio_rule_counter) };
	struct nl_sock s;
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	int err;

	*out = NULL;
	*n = 0;
	memset(buf, 0, sizeof(buf)); /* attribute padding goes out too */
	err = nftio_sock_open(netns, &s);
	if (err)
		return err;
	r = nftnl_rule_alloc();
	if (!r) {
		nl_sock_close(&s);
		return -ENOMEM;
	}
	nlh = nftnl_rule_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, s.seq++);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, IR_TABLE_NAME);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	err = nl_sock_dump(&s, nlh, rule_cb, &c);
	nl_sock_close(&s);
	*out = nl_collect_take(&c, &err, n);
	*n = counters_merge(*out, *n);
	return err;
}

/* The digest of table inet hvgate. */

/* NFTA_SET_COUNT of linux/netfilter/nf_tables.h (kernels from 6.x): the
 * number of elements, which moves with every block and expiry. */
#define DIGEST_SET_COUNT_ATTR 20

/* Expressions whose dumped data moves with traffic, not with changes. */
static bool volatile_expr(const char *name)
{
	return !strcmp(name, "counter") || !strcmp(name, "quota") || !strcmp(name, "last");
}

static bool digest_attr(EVP_MD_CTX *md, const struct nlattr *a)
{
	return EVP_DigestUpdate(md, a, mnl_attr_get_len(a)) == 1;
}

/* The rule's expressions without the state of counters (and the like). */
static bool digest_exprs(EVP_MD_CTX *md, const struct nlattr *list)
{
	const struct nlattr *elem, *x;

	mnl_attr_for_each_nested(elem, list)
	{
		const char *name = NULL;
		mnl_attr_for_each_nested(x, elem) if (mnl_attr_get_type(x) == NFTA_EXPR_NAME) name =
		    mnl_attr_get_str(x);
		mnl_attr_for_each_nested(x, elem)
		{
			if (mnl_attr_get_type(x) == NFTA_EXPR_DATA && name && volatile_expr(name))
				continue;
			if (!digest_attr(md, x))
				return false;
		}
	}
	return true;
}

struct digest_state {
	EVP_MD_CTX *md;
	uint16_t msg_type; /* NFT_MSG_NEWTABLE, NEWCHAIN, NEWRULE, NEWSET */
	int err;
};

/* Every top-level attribute of an object of table inet hvgate (the table
 * name is attribute 1 of tables, chains, rules and sets alike), except the
 * chain's counters, the sets' element counts and the rules' counter data. */
static int digest_cb(const struct nlmsghdr *nlh, void *data)
{
	struct digest_state *st = data;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	const char *table = NULL;
	uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);

	if (g->nfgen_family != NFPROTO_INET)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*g)) if (mnl_attr_get_type(a) == 1 &&
						  !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
	    table = mnl_attr_get_str(a);
	if (!table || strcmp(table, IR_TABLE_NAME))
		return MNL_CB_OK;
	if (EVP_DigestUpdate(st->md, &type, sizeof(type)) != 1)
		goto fail;
	mnl_attr_for_each(a, nlh, sizeof(*g))
	{
		uint16_t at = mnl_attr_get_type(a);
		bool ok;
		if ((type == NFT_MSG_NEWCHAIN && at == NFTA_CHAIN_COUNTERS) ||
		    (type == NFT_MSG_NEWSET && at == DIGEST_SET_COUNT_ATTR))
			continue;
		if (type == NFT_MSG_NEWRULE && at == NFTA_RULE_EXPRESSIONS)
			ok = digest_exprs(st->md, a);
		else
			ok = digest_attr(st->md, a);
		if (!ok)
			goto fail;
	}
	return MNL_CB_OK;
fail:
	st->err = -EIO;
	return MNL_CB_ERROR;
}

static int digest_dump(struct nl_sock *s, uint16_t msg, struct digest_state *st)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf));
	nlh = nftnl_nlmsg_build_hdr(buf, msg, NFPROTO_INET, NLM_F_DUMP, s->seq++);
	if (msg == NFT_MSG_GETRULE)
		mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, IR_TABLE_NAME);
	int err = nl_sock_dump(s, nlh, digest_cb, st);
	return st->err ? st->err : err;
}

/* How often the dump is tried again when the ruleset changed under it. */
#define NFTIO_DIGEST_TRIES 5

int nftio_table_digest(const char *netns, uint32_t *genid, unsigned char digest[NFTIO_DIGEST_LEN])
{
	static const uint16_t dumps[] = { NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN, NFT_MSG_GETSET,
					  NFT_MSG_GETRULE };
	struct nl_sock s;
	int err = nftio_sock_open(netns, &s);

	if (err)
		return err;
	err = -EAGAIN;
	for (int tries = 0; tries < NFTIO_DIGEST_TRIES && err == -EAGAIN; tries++) {
		struct digest_state st = { .md = EVP_MD_CTX_new() };
		uint32_t before = 0, after = 0;
		unsigned int len = 0;

		if (!st.md) {
			err = -ENOMEM;
			break;
		}
		err = nftio_sock_genid(&s, &before);
		if (!err && EVP_DigestInit_ex(st.md, EVP_sha256(), NULL) != 1)
			err = -EIO;
		for (size_t i = 0; !err && i < sizeof(dumps) / sizeof(dumps[0]); i++)
			err = digest_dump(&s, dumps[i], &st);
		if (!err)
			err = nftio_sock_genid(&s, &after);
		if (!err && EVP_DigestFinal_ex(st.md, digest, &len) != 1)
			err = -EIO;
		EVP_MD_CTX_free(st.md);
		if (!err && before != after)
			err = -EAGAIN; /* changed while we read: read again */
		if (!err)
			*genid = before;
	}
	nl_sock_close(&s);
	return err;
}

/* Set elements. A change is a batch of one message (nf_tables only takes
 * changes inside NFNL_MSG_BATCH_BEGIN/END). */

static int send_elem_batch(const char *netns, uint16_t type, const char *set, const uint8_t *key,
			   const uint8_t *key_end, size_t key_len, uint64_t timeout_ms)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_nlmsg_batch *batch;
	struct nftnl_set *s;
	struct nftnl_set_elem *e;
	struct nl_sock sock;
	struct nlmsghdr *nlh;
	uint32_t elem_seq;
	int err;

	memset(buf, 0, sizeof(buf)); /* attribute padding goes out too */
	s = nftnl_set_alloc();
	e = nftnl_set_elem_alloc();
	if (!s || !e) {
		nftnl_set_free(s);
		nftnl_set_elem_free(e);
		return -ENOMEM;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, IR_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)key_len);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, key_end, (uint32_t)key_len);
	if (timeout_ms)
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
	nftnl_set_elem_add(s, e);

	err = nftio_sock_open(netns, &sock);
	if (err) {
		nftnl_set_free(s);
		return err;
	}
	batch = mnl_nlmsg_batch_start(buf, sizeof(buf));
	nftnl_batch_begin(mnl_nlmsg_batch_current(batch), sock.seq++);
	mnl_nlmsg_batch_next(batch);
	elem_seq = sock.seq++;
	nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), type, NFPROTO_INET,
				    (type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0) | NLM_F_ACK,
				    elem_seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	mnl_nlmsg_batch_next(batch);
	nftnl_batch_end(mnl_nlmsg_batch_current(batch), sock.seq++);
	mnl_nlmsg_batch_next(batch);
	nftnl_set_free(s);

	/* One ack (or error) for the one message that asked for it. */
	err = nl_sock_talk_raw(&sock, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch),
			       elem_seq, NULL, NULL);
	mnl_nlmsg_batch_stop(batch);
	nl_sock_close(&sock);
	return err;
}

static int addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : -EAFNOSUPPORT;
}

/* The key of a concatenation mark . address: each field in its own 32-bit
 * register (NFT_REG32_SIZE); the mark big-endian, as interval sets keep
 * host-order integers (the lookup converts the packet's: emit_nftnl.c). */
#define ELEM_MARK_LEN 4

/* An interface name in a key: IFNAMSIZ bytes, NUL-padded, compared from the
 * left (a string: no byte swap). */
#define ELEM_SCOPE_MAX IFNAMSIZ

static int elem_keys(const struct nftio_set_elem *e, uint8_t key[ELEM_SCOPE_MAX + 16],
		     uint8_t key_end[ELEM_SCOPE_MAX + 16])
{
	int len = addr_len(e->family);
	if (len < 0)
		return len;
	if (e->by_ifname) {
		memcpy(key, e->ifname_lo, IFNAMSIZ);
		memcpy(key + IFNAMSIZ, e->addr, (size_t)len);
		memcpy(key_end, e->ifname_hi, IFNAMSIZ);
		memcpy(key_end + IFNAMSIZ, e->addr_end, (size_t)len);
		return IFNAMSIZ + len;
	}
	uint32_t lo = htonl(e->mark_lo), hi = htonl(e->mark_hi);
	memcpy(key, &lo, ELEM_MARK_LEN);
	memcpy(key + ELEM_MARK_LEN, e->addr, (size_t)len);
	memcpy(key_end, &hi, ELEM_MARK_LEN);
	memcpy(key_end + ELEM_MARK_LEN, e->addr_end, (size_t)len);
	return ELEM_MARK_LEN + len;
}

int nftio_set_elem_add(const char *netns, const char *set, const struct nftio_set_elem *e)
{
	uint8_t key[ELEM_SCOPE_MAX + 16], key_end[ELEM_SCOPE_MAX + 16];
	int len = elem_keys(e, key, key_end);
	if (len < 0)
		return len;
	return send_elem_batch(netns, NFT_MSG_NEWSETELEM, set, key, key_end, (size_t)len,
			       e->timeout_ms);
}

int nftio_set_elem_del(const char *netns, const char *set, const struct nftio_set_elem *e)
{
	uint8_t key[ELEM_SCOPE_MAX + 16], key_end[ELEM_SCOPE_MAX + 16];
	int len = elem_keys(e, key, key_end);
	if (len < 0)
		return len;
	return send_elem_batch(netns, NFT_MSG_DELSETELEM, set, key, key_end, (size_t)len, 0);
}

struct elems {
	struct nl_collect c;
	bool by_ifname;
};

static int elems_push(struct elems *l, struct nftnl_set_elem *e)
{
	struct nftio_set_elem *x;
	uint32_t klen = 0, elen = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	const uint8_t *end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen);

	uint32_t scope_len = l->by_ifname ? IFNAMSIZ : ELEM_MARK_LEN;

	if (!key || (klen != scope_len + 4 && klen != scope_len + 16))
		return 0;
	x = nl_collect_push(&l->c);
	if (!x)
		return -ENOMEM;
	x->family = klen == scope_len + 4 ? AF_INET : AF_INET6;
	if (!end || elen != klen)
		end = key;
	if (l->by_ifname) {
		x->by_ifname = true;
		memcpy(x->ifname_lo, key, IFNAMSIZ);
		memcpy(x->ifname_hi, end, IFNAMSIZ);
		memcpy(x->addr, key + IFNAMSIZ, klen - IFNAMSIZ);
		memcpy(x->addr_end, end + IFNAMSIZ, klen - IFNAMSIZ);
		goto timeouts;
	}
	memcpy(&x->mark_lo, key, ELEM_MARK_LEN);
	memcpy(x->addr, key + ELEM_MARK_LEN, klen - ELEM_MARK_LEN);
	memcpy(&x->mark_hi, end, ELEM_MARK_LEN);
	memcpy(x->addr_end, end + ELEM_MARK_LEN, klen - ELEM_MARK_LEN);
	x->mark_lo = ntohl(x->mark_lo);
	x->mark_hi = ntohl(x->mark_hi);
timeouts:
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT))
		x->timeout_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION))
		x->expires_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elems *l = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!s) {
		l->c.err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		l->c.err = -EPROTO;
		return MNL_CB_ERROR;
	}
	it = nftnl_set_elems_iter_create(s);
	for (e = it ? nftnl_set_elems_iter_next(it) : NULL; e; e = nftnl_set_elems_iter_next(it)) {
		if (elems_push(l, e)) {
			l->c.err = -ENOMEM;
			break;
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return l->c.err ? MNL_CB_ERROR : MNL_CB_OK;
}

static int set_elems(const char *netns, const char *set, bool by_ifname,
		     struct nftio_set_elem **out, size_t *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct elems l = { .c.elem = sizeof(struct nftio_set_elem), .by_ifname = by_ifname };
	struct nl_sock sock;
	struct nftnl_set *s;
	struct nlmsghdr *nlh;
	int err;

	*out = NULL;
	*n = 0;
	memset(buf, 0, sizeof(buf)); /* attribute padding goes out too */
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	err = nftio_sock_open(netns, &sock);
	if (err) {
		nftnl_set_free(s);
		return err;
	}
	nftnl_set_set_str(s, NFTNL_SET_TABLE, IR_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, sock.seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	err = nl_sock_talk(&sock, nlh, elems_cb, &l);
	nl_sock_close(&sock);
	*out = nl_collect_take(&l.c, &err, n);
	return err;
}

int nftio_set_elems(const char *netns, const char *set, struct nftio_set_elem **out, size_t *n)
{
	return set_elems(netns, set, false, out, n);
}

int nftio_set_elems_by_ifname(const char *netns, const char *set, struct nftio_set_elem **out,
			      size_t *n)
{
	return set_elems(netns, set, true, out, n);
}
