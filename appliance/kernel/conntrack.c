/* ctnetlink dumps and the one conntrack attribute codec (conntrack.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/kernel/conntrack.h"
#include "appliance/kernel/nlsock.h"
#include "policy/model.h"

#define CT_PROC_COUNT "/proc/sys/net/netfilter/nf_conntrack_count"
#define CT_PROC_MAX   "/proc/sys/net/netfilter/nf_conntrack_max"

/* ---- the codec ---- */

static int collect(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);
	if (type >= 0 && type <= CTA_MAX) /* CTA_MAX bounds every nest we read */
		tb[type] = a;
	return MNL_CB_OK;
}

static void parse_nest(const struct nlattr *nest, const struct nlattr **tb)
{
	memset(tb, 0, (CTA_MAX + 1) * sizeof(*tb));
	if (nest)
		mnl_attr_parse_nested(nest, collect, tb);
}

static bool copy_attr(uint8_t *dst, const struct nlattr *a, size_t len)
{
	if (!a || mnl_attr_get_payload_len(a) < len)
		return false;
	memcpy(dst, mnl_attr_get_payload(a), len);
	return true;
}

static uint16_t be16_attr(const struct nlattr *a)
{
	return a && mnl_attr_get_payload_len(a) >= 2 ? ntohs(mnl_attr_get_u16(a)) : 0;
}

static uint32_t be32_attr(const struct nlattr *a)
{
	return a && mnl_attr_get_payload_len(a) >= 4 ? ntohl(mnl_attr_get_u32(a)) : 0;
}

/* CTA_TUPLE_*: nested CTA_TUPLE_IP, CTA_TUPLE_PROTO and a directional
 * CTA_TUPLE_ZONE. */
static void parse_tuple(const struct nlattr *nest, struct conntrack_tuple *t)
{
	const struct nlattr *tb[CTA_MAX + 1], *ip[CTA_MAX + 1], *pr[CTA_MAX + 1];

	memset(t, 0, sizeof(*t));
	parse_nest(nest, tb);
	parse_nest(tb[CTA_TUPLE_IP], ip);
	parse_nest(tb[CTA_TUPLE_PROTO], pr);
	if (copy_attr(t->src, ip[CTA_IP_V4_SRC], 4) && copy_attr(t->dst, ip[CTA_IP_V4_DST], 4))
		t->family = AF_INET;
	else if (copy_attr(t->src, ip[CTA_IP_V6_SRC], 16) &&
		 copy_attr(t->dst, ip[CTA_IP_V6_DST], 16))
		t->family = AF_INET6;
	if (tb[CTA_TUPLE_ZONE]) {
		t->zone = be16_attr(tb[CTA_TUPLE_ZONE]);
		t->has_zone = true;
	}
	if (pr[CTA_PROTO_NUM])
		t->proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	t->sport = be16_attr(pr[CTA_PROTO_SRC_PORT]);
	t->dport = be16_attr(pr[CTA_PROTO_DST_PORT]);
	t->has_ports = pr[CTA_PROTO_SRC_PORT] && pr[CTA_PROTO_DST_PORT];
}

void conntrack_entry_parse(const struct nlmsghdr *nlh, struct conntrack_entry *e)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };

	memset(e, 0, sizeof(*e));
	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), collect, tb);
	parse_tuple(tb[CTA_TUPLE_ORIG], &e->orig);
	parse_tuple(tb[CTA_TUPLE_REPLY], &e->reply);
	if (tb[CTA_ZONE]) {
		e->zone = be16_attr(tb[CTA_ZONE]);
		e->has_zone = true;
	}
	e->status = be32_attr(tb[CTA_STATUS]);
	e->mark = be32_attr(tb[CTA_MARK]);
	e->timeout = be32_attr(tb[CTA_TIMEOUT]);
}

/* A dump of both families' entries in `netns`, each message to `cb`. */
static int ct_dump(const char *netns, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_sock s;
	int err = nl_sock_open(&s, NETLINK_NETFILTER, netns);
	if (err)
		return err;
	memset(buf, 0, sizeof(buf)); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = s.seq++;
	struct nfgenmsg *nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC; /* both families */
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	err = nl_sock_dump(&s, nlh, cb, data);
	nl_sock_close(&s);
	return err;
}

/* ---- the daemon's filtered view ---- */

struct dump {
	const struct conntrack_filter *f;
	struct json_buf *out;
	size_t matched, written, max;
};

static bool addr_in(const struct conntrack_tuple *t, const struct conntrack_filter *f)
{
	size_t n = f->family == AF_INET ? 4 : 16;
	return t->family == f->family &&
	       (!memcmp(t->src, f->addr, n) || !memcmp(t->dst, f->addr, n));
}

static void tuple_json(struct json_buf *b, const char *key, const struct conntrack_tuple *t)
{
	char s[INET6_ADDRSTRLEN] = "", d[INET6_ADDRSTRLEN] = "";

	if (t->family) {
		inet_ntop(t->family, t->src, s, sizeof(s));
		inet_ntop(t->family, t->dst, d, sizeof(d));
	}
	json_key(b, key);
	json_obj_begin(b);
	json_kv_str(b, "src", s);
	json_kv_str(b, "dst", d);
	json_kv_uint(b, "proto", t->proto);
	if (t->has_ports) {
		json_kv_uint(b, "sport", t->sport);
		json_kv_uint(b, "dport", t->dport);
	}
	json_obj_end(b);
}

static int ct_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	struct conntrack_entry e;
	bool nat;

	conntrack_entry_parse(nlh, &e);
	/* A zone set for one direction only travels in the tuple
	 * (CTA_TUPLE_ZONE); the tenant's is the original direction's. */
	if (!e.has_zone && e.orig.has_zone) {
		e.zone = e.orig.zone;
		e.has_zone = true;
	}
	nat = e.status & (IPS_SRC_NAT | IPS_DST_NAT);
	if (d->f->zone_set && e.zone != d->f->zone)
		return MNL_CB_OK;
	if (d->f->family && !addr_in(&e.orig, d->f) && !addr_in(&e.reply, d->f))
		return MNL_CB_OK;
	if (d->f->nat_only && !nat)
		return MNL_CB_OK;
	d->matched++;
	if (d->written >= d->max)
		return MNL_CB_OK;
	d->written++;
	json_obj_begin(d->out);
	tuple_json(d->out, "orig", &e.orig);
	tuple_json(d->out, "reply", &e.reply);
	json_kv_uint(d->out, "zone", e.zone);
	json_kv_uint(d->out, "mark", e.mark);
	json_kv_uint(d->out, "timeout", e.timeout);
	json_kv_bool(d->out, "assured", e.status & IPS_ASSURED);
	json_kv_bool(d->out, "snat", e.status & IPS_SRC_NAT);
	json_kv_bool(d->out, "dnat", e.status & IPS_DST_NAT);
	json_obj_end(d->out);
	return MNL_CB_OK;
}

int conntrack_dump(const struct conntrack_filter *f, struct json_buf *out, size_t *matched)
{
	struct dump d = { .f = f, .out = out, .max = f->max ? f->max : CONNTRACK_DEFAULT_MAX };

	json_arr_begin(out); /* always one array, empty on error */
	int rc = ct_dump(NULL, ct_cb, &d);
	*matched = rc ? 0 : d.matched;
	json_arr_end(out);
	return rc;
}

static int read_u64(const char *path, uint64_t *v)
{
	FILE *f = fopen(path, "re");
	unsigned long long x;
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%llu", &x) == 1;
	fclose(f);
	if (!ok)
		return -EINVAL;
	*v = x;
	return 0;
}

int conntrack_count(uint64_t *count, uint64_t *max)
{
	int rc = read_u64(CT_PROC_COUNT, count);
	return rc ? rc : read_u64(CT_PROC_MAX, max);
}

/* ---- NAT translations ---- */

static void nat_tuple(struct conntrack_nat_tuple *to, const struct conntrack_tuple *from)
{
	memcpy(to->src, from->src, sizeof(to->src));
	memcpy(to->dst, from->dst, sizeof(to->dst));
	to->sport = from->sport;
	to->dport = from->dport;
}

static int nat_cb(const struct nlmsghdr *nlh, void *data)
{
	struct conntrack_entry e;

	conntrack_entry_parse(nlh, &e);
	if (!(e.status & (IPS_SRC_NAT | IPS_DST_NAT)))
		return MNL_CB_OK;
	struct conntrack_nat *t = nl_collect_push(data);
	if (!t)
		return MNL_CB_ERROR;
	t->family = e.orig.family ? e.orig.family : e.reply.family;
	t->l4proto = e.orig.proto ? e.orig.proto : e.reply.proto;
	nat_tuple(&t->orig, &e.orig);
	nat_tuple(&t->reply, &e.reply);
	/* The tenant's zone is the original direction's. */
	t->zone = e.orig.has_zone ? e.orig.zone : e.zone;
	t->mark = e.mark;
	t->timeout = e.timeout;
	t->snat = e.status & IPS_SRC_NAT;
	t->dnat = e.status & IPS_DST_NAT;
	return MNL_CB_OK;
}

int conntrack_nat_list(const char *netns, struct conntrack_nat **out, size_t *n)
{
	struct nl_collect l = { .elem = sizeof(struct conntrack_nat) };
	int err = ct_dump(netns, nat_cb, &l);

	*out = nl_collect_take(&l, &err, n);
	return err;
}

static void endpoint(char *buf, size_t size, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

char *conntrack_nat_format(const struct conntrack_nat *t, char *buf, size_t size)
{
	char from[64], to[64], snat[64], dnat[64];
	endpoint(from, sizeof(from), t->family, t->orig.src, t->orig.sport);
	endpoint(to, sizeof(to), t->family, t->orig.dst, t->orig.dport);
	/* The reply goes to where the source was translated to, and comes from
	 * where the destination was translated to. */
	endpoint(snat, sizeof(snat), t->family, t->reply.dst, t->reply.dport);
	endpoint(dnat, sizeof(dnat), t->family, t->reply.src, t->reply.sport);
	const char *proto = policy_l4proto_name(t->l4proto);
	snprintf(buf, size, "%s zone %u mark 0x%x %s -> %s%s%s%s%s", proto ? proto : "other",
		 t->zone, t->mark, from, to, t->snat ? " snat " : "", t->snat ? snat : "",
		 t->dnat ? " dnat " : "", t->dnat ? dnat : "");
	return buf;
}
