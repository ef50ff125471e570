/* nat_translations(): NAT bindings read back from conntrack with a
 * ctnetlink dump over libmnl (nat/nat.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "nat/nat.h"

/* Where `ip netns add` keeps named namespaces (iproute2's NETNS_RUN_DIR). */
#define NAT_NETNS_DIR "/var/run/netns"

/* Opens a netfilter netlink socket in `netns`: a socket belongs to the
 * namespace it was created in, so the namespace is entered for socket(2)
 * only. */
static struct mnl_socket *open_in(const char *netns, int *err)
{
	int self = -1, target = -1;
	if (netns && *netns) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", NAT_NETNS_DIR, netns);
		self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		target = open(path, O_RDONLY | O_CLOEXEC);
		if (self < 0 || target < 0 || setns(target, CLONE_NEWNET)) {
			*err = -errno;
			if (self >= 0)
				close(self);
			if (target >= 0)
				close(target);
			return NULL;
		}
	}
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	*err = nl ? 0 : -errno;
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) && nl) {
			*err = -errno;
			mnl_socket_close(nl);
			nl = NULL;
		}
		close(self);
		close(target);
	}
	return nl;
}

/* ---- attribute parsing ---- */

struct attrs {
	const struct nlattr *a[CTA_MAX + 1];
};

static int collect(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);
	if (type >= 0 && type <= CTA_MAX) /* CTA_MAX bounds every nest we read */
		tb[type] = attr;
	return MNL_CB_OK;
}

static void parse_nest(const struct nlattr *nest, const struct nlattr **tb)
{
	memset(tb, 0, (CTA_MAX + 1) * sizeof(*tb));
	if (nest)
		mnl_attr_parse_nested(nest, collect, tb);
}

static void copy_attr(uint8_t *dst, const struct nlattr *a, size_t len)
{
	if (a && mnl_attr_get_payload_len(a) >= len)
		memcpy(dst, mnl_attr_get_payload(a), len);
}

static uint16_t be16_attr(const struct nlattr *a)
{
	return a && mnl_attr_get_payload_len(a) >= 2 ? ntohs(mnl_attr_get_u16(a)) : 0;
}

static uint32_t be32_attr(const struct nlattr *a)
{
	return a && mnl_attr_get_payload_len(a) >= 4 ? ntohl(mnl_attr_get_u32(a)) : 0;
}

/* CTA_TUPLE_*: addresses, protocol and ports; returns the tuple's zone
 * (directional zones are carried inside the tuple), or -1 if none. */
static int parse_tuple(const struct nlattr *nest, struct nat_translation *t, struct nat_tuple *out)
{
	const struct nlattr *tb[CTA_MAX + 1], *ip[CTA_MAX + 1], *pr[CTA_MAX + 1];
	parse_nest(nest, tb);
	parse_nest(tb[CTA_TUPLE_IP], ip);
	parse_nest(tb[CTA_TUPLE_PROTO], pr);
	if (ip[CTA_IP_V4_SRC]) {
		t->family = AF_INET;
		copy_attr(out->src, ip[CTA_IP_V4_SRC], 4);
		copy_attr(out->dst, ip[CTA_IP_V4_DST], 4);
	} else if (ip[CTA_IP_V6_SRC]) {
		t->family = AF_INET6;
		copy_attr(out->src, ip[CTA_IP_V6_SRC], 16);
		copy_attr(out->dst, ip[CTA_IP_V6_DST], 16);
	}
	if (pr[CTA_PROTO_NUM])
		t->l4proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	out->sport = be16_attr(pr[CTA_PROTO_SRC_PORT]);
	out->dport = be16_attr(pr[CTA_PROTO_DST_PORT]);
	return tb[CTA_TUPLE_ZONE] ? be16_attr(tb[CTA_TUPLE_ZONE]) : -1;
}

struct dump {
	struct nat_translation *v;
	size_t n, cap;
	int err;
};

static int entry_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *dp = data;
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), collect, tb);
	uint32_t status = be32_attr(tb[CTA_STATUS]);
	if (!(status & (IPS_SRC_NAT | IPS_DST_NAT)))
		return MNL_CB_OK;
	if (dp->n == dp->cap) {
		size_t ncap = dp->cap ? dp->cap * 2 : 64;
		struct nat_translation *nv = realloc(dp->v, ncap * sizeof(*nv));
		if (!nv) {
			dp->err = -ENOMEM;
			return MNL_CB_ERROR;
		}
		dp->v = nv;
		dp->cap = ncap;
	}
	struct nat_translation *t = &dp->v[dp->n++];
	memset(t, 0, sizeof(*t));
	int zone = parse_tuple(tb[CTA_TUPLE_ORIG], t, &t->orig);
	parse_tuple(tb[CTA_TUPLE_REPLY], t, &t->reply);
	t->zone = zone >= 0 ? (uint16_t)zone : be16_attr(tb[CTA_ZONE]);
	t->mark = be32_attr(tb[CTA_MARK]);
	t->timeout = be32_attr(tb[CTA_TIMEOUT]);
	t->snat = status & IPS_SRC_NAT;
	t->dnat = status & IPS_DST_NAT;
	return MNL_CB_OK;
}

static int dump(struct mnl_socket *nl, struct dump *dp)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	uint32_t seq = (uint32_t)time(NULL);
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC; /* both families */
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	uint32_t portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		int rc = mnl_cb_run(buf, (size_t)n, seq, portid, entry_cb, dp);
		if (rc < 0)
			return dp->err ? dp->err : -errno;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

int nat_translations(const char *netns, struct nat_translation **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int err;
	struct mnl_socket *nl = open_in(netns, &err);
	if (!nl)
		return err;
	struct dump dp = { 0 };
	err = dump(nl, &dp);
	mnl_socket_close(nl);
	if (err) {
		free(dp.v);
		return err;
	}
	*out = dp.v;
	*n = dp.n;
	return 0;
}

/* ---- text ---- */

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	case IPPROTO_SCTP: return "sctp";
	default: return "other";
	}
}

static void endpoint(char *buf, size_t size, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

char *nat_translation_format(const struct nat_translation *t, char *buf, size_t size)
{
	char from[64], to[64], snat[64], dnat[64];
	endpoint(from, sizeof(from), t->family, t->orig.src, t->orig.sport);
	endpoint(to, sizeof(to), t->family, t->orig.dst, t->orig.dport);
	/* The reply goes to where the source was translated to, and comes from
	 * where the destination was translated to. */
	endpoint(snat, sizeof(snat), t->family, t->reply.dst, t->reply.dport);
	endpoint(dnat, sizeof(dnat), t->family, t->reply.src, t->reply.sport);
	snprintf(buf, size, "%s zone %u mark 0x%x %s -> %s%s%s%s%s", proto_name(t->l4proto),
		 t->zone, t->mark, from, to, t->snat ? " snat " : "", t->snat ? snat : "",
		 t->dnat ? " dnat " : "", t->dnat ? dnat : "");
	return buf;
}
