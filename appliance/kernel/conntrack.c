/* ctnetlink dump with libmnl, filtered (conntrack.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "appliance/kernel/conntrack.h"

#define CT_PROC_COUNT "/proc/sys/net/netfilter/nf_conntrack_count"
#define CT_PROC_MAX "/proc/sys/net/netfilter/nf_conntrack_max"

struct tuple {
	int family;
	uint8_t src[16], dst[16];
	uint8_t proto;
	uint16_t sport, dport; /* host order */
	bool has_ports;
	bool has_zone; /* a directional zone (ct zone set ... in one direction) */
	uint16_t zone;
};

struct entry {
	struct tuple orig, reply;
	uint16_t zone;
	uint32_t status, mark, timeout;
	bool has_zone;
};

struct dump {
	const struct conntrack_filter *f;
	struct json_buf *out;
	size_t matched, written, max;
};

static int nest_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, CTA_MAX) > 0)
		tb[type] = a;
	return MNL_CB_OK;
}

/* Parses CTA_TUPLE_* (nested CTA_TUPLE_IP and CTA_TUPLE_PROTO). */
static void parse_tuple(const struct nlattr *nest, struct tuple *t)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 }, *ip[CTA_MAX + 1] = { 0 }, *pr[CTA_MAX + 1] = { 0 };

	memset(t, 0, sizeof(*t));
	mnl_attr_parse_nested(nest, nest_cb, tb);
	if (tb[CTA_TUPLE_IP]) {
		mnl_attr_parse_nested(tb[CTA_TUPLE_IP], nest_cb, ip);
		if (ip[CTA_IP_V4_SRC] && ip[CTA_IP_V4_DST]) {
			t->family = AF_INET;
			memcpy(t->src, mnl_attr_get_payload(ip[CTA_IP_V4_SRC]), 4);
			memcpy(t->dst, mnl_attr_get_payload(ip[CTA_IP_V4_DST]), 4);
		} else if (ip[CTA_IP_V6_SRC] && ip[CTA_IP_V6_DST]) {
			t->family = AF_INET6;
			memcpy(t->src, mnl_attr_get_payload(ip[CTA_IP_V6_SRC]), 16);
			memcpy(t->dst, mnl_attr_get_payload(ip[CTA_IP_V6_DST]), 16);
		}
	}
	if (tb[CTA_TUPLE_ZONE]) {
		t->zone = ntohs(mnl_attr_get_u16(tb[CTA_TUPLE_ZONE]));
		t->has_zone = true;
	}
	if (tb[CTA_TUPLE_PROTO]) {
		mnl_attr_parse_nested(tb[CTA_TUPLE_PROTO], nest_cb, pr);
		if (pr[CTA_PROTO_NUM])
			t->proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
		if (pr[CTA_PROTO_SRC_PORT] && pr[CTA_PROTO_DST_PORT]) {
			t->sport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]));
			t->dport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]));
			t->has_ports = true;
		}
	}
}

static bool addr_in(const struct tuple *t, const struct conntrack_filter *f)
{
	size_t n = f->family == AF_INET ? 4 : 16;
	return t->family == f->family && (!memcmp(t->src, f->addr, n) || !memcmp(t->dst, f->addr, n));
}

static void tuple_json(struct json_buf *b, const char *key, const struct tuple *t)
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
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	struct entry e = { 0 };
	bool nat;

	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), nest_cb, tb);
	if (tb[CTA_TUPLE_ORIG])
		parse_tuple(tb[CTA_TUPLE_ORIG], &e.orig);
	if (tb[CTA_TUPLE_REPLY])
		parse_tuple(tb[CTA_TUPLE_REPLY], &e.reply);
	if (tb[CTA_ZONE]) {
		e.zone = ntohs(mnl_attr_get_u16(tb[CTA_ZONE]));
		e.has_zone = true;
	}
	/* A zone set for one direction only travels in the tuple
	 * (CTA_TUPLE_ZONE); the tenant's is the original direction's. */
	if (!e.has_zone && e.orig.has_zone) {
		e.zone = e.orig.zone;
		e.has_zone = true;
	}
	if (tb[CTA_STATUS])
		e.status = ntohl(mnl_attr_get_u32(tb[CTA_STATUS]));
	if (tb[CTA_MARK])
		e.mark = ntohl(mnl_attr_get_u32(tb[CTA_MARK]));
	if (tb[CTA_TIMEOUT])
		e.timeout = ntohl(mnl_attr_get_u32(tb[CTA_TIMEOUT]));
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
	char *buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	struct dump d = { .f = f, .out = out, .max = f->max ? f->max : CONNTRACK_DEFAULT_MAX };
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfh;
	uint32_t seq = (uint32_t)time(NULL), portid;
	int rc = 0;

	*matched = 0;
	json_arr_begin(out); /* always one array, empty on error */
	if (!buf) {
		json_arr_end(out);
		return -ENOMEM;
	}
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		if (nl)
			mnl_socket_close(nl);
		free(buf);
		json_arr_end(out);
		return rc;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE);
		int r;
		if (n < 0) {
			rc = -errno;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, portid, ct_cb, &d);
		if (r <= MNL_CB_STOP) {
			if (r < 0)
				rc = -errno;
			break;
		}
	}
	*matched = d.matched;
out:
	json_arr_end(out);
	mnl_socket_close(nl);
	free(buf);
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
