/* Tenant policy routing over rtnetlink (appliance/kernel/route.h). */
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "appliance/kernel/nlsock.h"
#include "appliance/kernel/route.h"
#include "policy/grow.h"
#include "policy/tenant.h"

/* Sends one request, its sequence number the socket's next, and runs `cb`
 * on the replies until the ack or DONE. */
static int rt_talk(struct nl_sock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	nlh->nlmsg_seq = ++s->seq;
	return nl_sock_talk(s, nlh, cb, data);
}

/* ---- flush: dump, keep what carries our protocol, delete it ---- */

struct victims {
	char (*msgs)[512];
	size_t n, cap;
	bool rules;
};

static int collect_attr_proto(const struct nlattr *a, void *data)
{
	uint8_t *proto = data;
	if (mnl_attr_get_type(a) == FRA_PROTOCOL && mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
		*proto = mnl_attr_get_u8(a);
	return MNL_CB_OK;
}

static int collect_cb(const struct nlmsghdr *nlh, void *data)
{
	struct victims *v = data;
	uint8_t proto = 0;
	if (v->rules) {
		mnl_attr_parse(nlh, sizeof(struct fib_rule_hdr), collect_attr_proto, &proto);
	} else {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
		proto = rtm->rtm_protocol;
	}
	if (proto != ROUTE_PROTO_HVGATE || nlh->nlmsg_len > sizeof(v->msgs[0]))
		return MNL_CB_OK;
	if (POLICY_GROW(v->msgs, v->cap, v->n, 16))
		return MNL_CB_ERROR;
	memcpy(v->msgs[v->n++], nlh, nlh->nlmsg_len);
	return MNL_CB_OK;
}

static int flush_kind(struct nl_sock *s, int family, bool rules, size_t *removed)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = rules ? RTM_GETRULE : RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	struct victims v = { .rules = rules };
	int rc = rt_talk(s, nlh, collect_cb, &v);
	for (size_t i = 0; !rc && i < v.n; i++) {
		struct nlmsghdr *del = (struct nlmsghdr *)v.msgs[i];
		del->nlmsg_type = rules ? RTM_DELRULE : RTM_DELROUTE;
		del->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		rc = rt_talk(s, del, NULL, NULL);
		if (rc == -ENOENT || rc == -ESRCH) /* gone meanwhile */
			rc = 0;
		else if (!rc && removed)
			(*removed)++;
	}
	free(v.msgs);
	return rc;
}

static int flush_all(struct nl_sock *s, size_t *removed)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < 2; f++) {
		int rc = flush_kind(s, fams[f], true, removed);
		if (!rc)
			rc = flush_kind(s, fams[f], false, removed);
		if (rc)
			return rc;
	}
	return 0;
}

int route_flush(const char *netns, size_t *removed)
{
	struct nl_sock s;
	int rc = nl_sock_open(&s, NETLINK_ROUTE, netns);
	if (rc)
		return rc;
	rc = flush_all(&s, removed);
	nl_sock_close(&s);
	return rc;
}

/* ---- install ---- */

/* One fib rule: `fwmark MARK/MASK` at `pref`, then lookup `table`, goto
 * rule `target`, or nop (mask 0: every packet). */
struct rule_spec {
	uint32_t pref, mark, mask;
	uint8_t action; /* FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP */
	uint32_t table, target;
};

static int add_rule(struct nl_sock *s, int family, const struct rule_spec *rs)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWRULE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (uint8_t)family;
	frh->action = rs->action;
	frh->table = RT_TABLE_UNSPEC; /* the table is in FRA_TABLE (ids > 255) */
	mnl_attr_put_u32(nlh, FRA_PRIORITY, rs->pref);
	if (rs->mask) {
		mnl_attr_put_u32(nlh, FRA_FWMARK, rs->mark);
		mnl_attr_put_u32(nlh, FRA_FWMASK, rs->mask);
	}
	if (rs->action == FR_ACT_TO_TBL)
		mnl_attr_put_u32(nlh, FRA_TABLE, rs->table);
	if (rs->action == FR_ACT_GOTO)
		mnl_attr_put_u32(nlh, FRA_GOTO, rs->target);
	mnl_attr_put_u8(nlh, FRA_PROTOCOL, ROUTE_PROTO_HVGATE);
	return rt_talk(s, nlh, NULL, NULL);
}

int route_link_change(struct nl_sock *s, const struct policy_addr *a, unsigned ifindex,
		      uint32_t table, uint8_t proto, bool add)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	size_t len = a->family == AF_INET ? 4 : 16;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = a->family;
	rtm->rtm_dst_len = a->prefix_len == POLICY_ADDR_NOT_PREFIX ? len * 8 : a->prefix_len;
	rtm->rtm_table = RT_TABLE_UNSPEC; /* the table is in RTA_TABLE (ids > 255) */
	rtm->rtm_protocol = proto;
	rtm->rtm_scope = RT_SCOPE_LINK; /* the prefix's hosts are on the link */
	rtm->rtm_type = RTN_UNICAST;
	uint8_t dst[16], last[16];
	policy_addr_bounds(a, dst, last); /* host bits cleared */
	mnl_attr_put(nlh, RTA_DST, len, dst);
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return rt_talk(s, nlh, NULL, NULL);
}

bool route_ifname_matches(const char *pattern, const char *ifname)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, ifname, n - 1);
	return !strcmp(pattern, ifname);
}

/* The namespace's interfaces, listed on the apply's own rtnetlink socket
 * (one socket per apply: if_nameindex(3) would open another, and enter the
 * namespace again for it). */
struct ifaces {
	struct iface {
		unsigned index;
		char name[IFNAMSIZ];
	} * v;
	size_t n, cap;
};

static int link_name_attr(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
		*(const char **)data = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifaces *l = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const char *name = NULL;

	if (nlh->nlmsg_type != RTM_NEWLINK || ifi->ifi_index <= 0 ||
	    mnl_attr_parse(nlh, sizeof(*ifi), link_name_attr, &name) < 0 || !name)
		return MNL_CB_OK;
	if (POLICY_GROW(l->v, l->cap, l->n, 16))
		return MNL_CB_ERROR;
	l->v[l->n].index = (unsigned)ifi->ifi_index;
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	l->n++;
	return MNL_CB_OK;
}

/* On failure the list is empty: then no segment has an interface. */
static void list_interfaces(struct nl_sock *s, struct ifaces *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* attribute padding is sent too */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	memset(out, 0, sizeof(*out));
	if (rt_talk(s, nlh, link_cb, out))
		out->n = 0;
}

/* The interface a segment's pattern names among `all`: the one with that
 * name, or the one interface a wildcard matches. 0 if there is none;
 * *several is set when a wildcard matches more than one (which of them holds
 * which host of the segment's prefix is not known, so none is used). */
static unsigned segment_ifindex(const struct ifaces *all, const char *pattern, bool *several)
{
	unsigned found = 0;
	*several = false;
	for (size_t i = 0; i < all->n; i++) {
		if (!route_ifname_matches(pattern, all->v[i].name))
			continue;
		if (found) {
			*several = true;
			found = 0;
			break;
		}
		found = all->v[i].index;
	}
	return found;
}

static int install_segment(struct nl_sock *s, const struct ifaces *all, const struct policy_zone *z,
			   uint32_t table, struct route_result *r, struct policy_diags *d)
{
	for (size_t i = 0; i < z->n_ifnames; i++) {
		const char *ifn = z->ifnames[i];
		bool several;
		unsigned idx = segment_ifindex(all, ifn, &several);
		for (size_t k = 0; k < z->addrs.n; k++) {
			const struct policy_addr *a = &z->addrs.v[k];
			if (!idx || a->prefix_len == POLICY_ADDR_NOT_PREFIX) {
				r->skipped++;
				r->ambiguous += several;
				continue;
			}
			int rc = route_link_change(s, a, idx, table, ROUTE_PROTO_HVGATE, true);
			if (rc == -ENETDOWN) { /* the link is down: its up event brings the route */
				r->skipped++;
				continue;
			}
			if (rc)
				return policy_error(d, &z->loc, "route for segment %s via %s: %s",
						    z->name, ifn, strerror(-rc)),
				       rc;
			r->routes++;
		}
	}
	return 0;
}

/* The kernel walks fib rules one by one for every routed packet, so one rule
 * per tenant would cost the last of N tenants N rule checks per packet.
 * The rules form two levels instead (ROUTE_GROUP_BITS of the tenant id per
 * group): at ROUTE_RULE_PRIORITY, "no tenant mark: goto the end" and one
 * "this group: goto its rules" per group; at ROUTE_RULE_PRIORITY + 1 + g,
 * the group's per-tenant lookups; at the end a nop that the gotos land on.
 * A packet passes at most 1 + groups + group size rules. */
static uint32_t group_of(uint32_t id)
{
	return id >> ROUTE_GROUP_BITS;
}

static int install_rules(struct nl_sock *s, const struct policy *p, struct route_result *r,
			 struct policy_diags *d)
{
	uint32_t max_id = 0;
	for (size_t t = 0; t < p->n_tenants; t++)
		if (p->tenants[t].id > max_id)
			max_id = p->tenants[t].id;
	uint32_t n_groups = group_of(max_id) + 1;
	uint32_t end = ROUTE_RULE_PRIORITY + 1 + n_groups;
	uint32_t group_mask = POLICY_TENANT_MARK_MASK << ROUTE_GROUP_BITS;
	static const int fams[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < 2; f++) {
		struct rule_spec rs = { ROUTE_RULE_PRIORITY, 0, POLICY_TENANT_MARK_MASK,
					FR_ACT_GOTO,         0, end };
		int rc = add_rule(s, fams[f], &rs);
		for (uint32_t g = 0; !rc && g < n_groups; g++) {
			struct rule_spec gs = { ROUTE_RULE_PRIORITY,
						g << (POLICY_TENANT_MARK_SHIFT + ROUTE_GROUP_BITS),
						group_mask,
						FR_ACT_GOTO,
						0,
						ROUTE_RULE_PRIORITY + 1 + g };
			rc = add_rule(s, fams[f], &gs);
		}
		for (size_t t = 0; !rc && t < p->n_tenants; t++) {
			const struct policy_tenant *tn = &p->tenants[t];
			struct rule_spec ts = { ROUTE_RULE_PRIORITY + 1 + group_of(tn->id),
						policy_tenant_mark(tn),
						POLICY_TENANT_MARK_MASK,
						FR_ACT_TO_TBL,
						POLICY_TENANT_TABLE_BASE + tn->id,
						0 };
			rc = add_rule(s, fams[f], &ts);
			r->rules += !rc;
		}
		if (!rc) {
			struct rule_spec nop = { end, 0, 0, FR_ACT_NOP, 0, 0 };
			rc = add_rule(s, fams[f], &nop);
		}
		if (rc)
			return policy_error(d, NULL, "fwmark rules of the tenants: %s",
					    strerror(-rc)),
			       rc;
	}
	return 0;
}

static int install(struct nl_sock *s, const struct policy *p, struct route_result *r,
		   struct policy_diags *d)
{
	if (!p->n_tenants)
		return 0;
	int rc = install_rules(s, p, r, d);
	if (rc)
		return rc;
	/* listed once for all segments: a reroute on every link event of a
	 * hypervisor with many VMs must not list them once per segment */
	struct ifaces all;
	list_interfaces(s, &all);
	for (size_t z = 0; !rc && z < p->n_zones; z++) {
		const struct policy_zone *zone = &p->zones[z];
		if (zone->tenant == POLICY_NONE)
			continue;
		uint32_t table = POLICY_TENANT_TABLE_BASE + p->tenants[zone->tenant].id;
		rc = install_segment(s, &all, zone, table, r, d);
	}
	free(all.v);
	return rc;
}

bool route_names_interface(const struct policy *p, const char *ifname)
{
	for (size_t z = 0; p && z < p->n_zones; z++) {
		if (p->zones[z].tenant == POLICY_NONE)
			continue;
		for (size_t i = 0; i < p->zones[z].n_ifnames; i++)
			if (route_ifname_matches(p->zones[z].ifnames[i], ifname))
				return true;
	}
	return false;
}

int route_apply(const char *netns, const struct policy *p, struct route_result *r,
		struct policy_diags *d)
{
	struct route_result local;
	if (!r)
		r = &local;
	memset(r, 0, sizeof(*r));
	struct nl_sock s;
	int rc = nl_sock_open(&s, NETLINK_ROUTE, netns);
	if (rc)
		return policy_error(d, NULL, "rtnetlink: %s", strerror(-rc)), rc;
	rc = flush_all(&s, &r->removed);
	if (rc)
		policy_error(d, NULL, "removing hvgate's routes: %s", strerror(-rc));
	else
		rc = install(&s, p, r, d);
	nl_sock_close(&s);
	return rc;
}
