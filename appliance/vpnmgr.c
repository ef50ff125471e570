/* The VPNs of the running policy inside hvgated (appliance/vpnmgr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sodium.h>

#include "appliance/kernel/nlsock.h"
#include "appliance/kernel/route.h"
#include "appliance/vpnmgr.h"
#include "vpn/vpn.h"

#define VPNMGR_ERR_MAX 256

struct vm_dev {
	char *ifname;
	struct vpn_device *dev;    /* NULL: setting it up failed (see err) */
	bool seen;                 /* in the policy being applied */
	struct policy_addr *addrs; /* installed on the TUN */
	size_t n_addrs;
	struct policy_addr *routes; /* installed through the TUN */
	size_t n_routes;
	char err[VPNMGR_ERR_MAX];
};

struct vpnmgr {
	char state_dir[PATH_MAX];
	struct vm_dev *devs;
	size_t n_devs;
};

/* ---- rtnetlink ---- */

/* Sends one request and waits for its ack. */
static int nl_do(struct nl_sock *s, struct nlmsghdr *nlh)
{
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++s->seq;
	return nl_sock_talk(s, nlh, NULL, NULL);
}

static int link_up(struct nl_sock *s, unsigned ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_do(s, nlh);
}

static unsigned addr_bytes(const struct policy_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

static unsigned addr_plen(const struct policy_addr *a)
{
	return a->prefix_len == POLICY_ADDR_NOT_PREFIX ? addr_bytes(a) * 8 : a->prefix_len;
}

/* An interface address as written in `address`: host part kept. */
static int addr_change(struct nl_sock *s, unsigned ifindex, const struct policy_addr *a, bool add)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	if (add)
		nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = a->family;
	ifa->ifa_prefixlen = (uint8_t)addr_plen(a);
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, addr_bytes(a), a->lo);
	mnl_attr_put(nlh, IFA_ADDRESS, addr_bytes(a), a->lo);
	return nl_do(s, nlh);
}

/* A route to a peer's allowed-ip prefix through the TUN, in the main table. */
static int route_change(struct nl_sock *s, unsigned ifindex, const struct policy_addr *a, bool add)
{
	return route_link_change(s, a, ifindex, RT_TABLE_MAIN, VPNMGR_ROUTE_PROTO, add);
}

static bool addr_same(const struct policy_addr *a, const struct policy_addr *b)
{
	return a->family == b->family && a->prefix_len == b->prefix_len &&
	       !memcmp(a->lo, b->lo, addr_bytes(a));
}

static bool addr_in(const struct policy_addr *a, const struct policy_addr *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (addr_same(a, &v[i]))
			return true;
	return false;
}

/* Makes what is installed (*have) the list `want`: removes what is no longer
 * wanted, adds (replace) the rest. *have becomes a copy of want. */
static int sync_list(struct nl_sock *s, unsigned ifindex, struct policy_addr **have, size_t *n_have,
		     const struct policy_addr *want, size_t n_want,
		     int (*change)(struct nl_sock *, unsigned, const struct policy_addr *, bool),
		     const char **why)
{
	int rc = 0;

	for (size_t i = 0; i < *n_have; i++)
		if (!addr_in(&(*have)[i], want, n_want))
			change(s, ifindex, &(*have)[i], false); /* gone already is fine */
	for (size_t i = 0; i < n_want && !rc; i++)
		if ((rc = change(s, ifindex, &want[i], true)))
			*why =
			    change == addr_change ? "cannot set an address" : "cannot add a route";
	struct policy_addr *copy = calloc(n_want + 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	if (n_want)
		memcpy(copy, want, n_want * sizeof(*copy));
	free(*have);
	*have = copy;
	*n_have = n_want;
	return rc;
}

/* The routes a block wants: every peer's allowed-ips, but no /0: that
 * would take over the uplink's default route (wg-quick's fwmark trick is a
 * routing policy the operator decides, not something a `vpn` block does). */
static int wanted_routes(const struct policy_vpn *pv, struct policy_addr **out, size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < pv->n_peers; i++)
		total += pv->peers[i].allowed_ips.n;
	*out = calloc(total + 1, sizeof(**out));
	*n = 0;
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < pv->n_peers; i++)
		for (size_t j = 0; j < pv->peers[i].allowed_ips.n; j++) {
			const struct policy_addr *a = &pv->peers[i].allowed_ips.v[j];
			if (a->prefix_len != 0 && !addr_in(a, *out, *n))
				(*out)[(*n)++] = *a;
		}
	return 0;
}

static int sync_net(struct vm_dev *v, const struct policy_vpn *pv, const char **why)
{
	struct nl_sock s;
	struct policy_addr *routes = NULL;
	size_t n_routes = 0;
	unsigned ifindex = if_nametoindex(v->ifname);
	int rc;

	if (!ifindex) {
		*why = "the TUN interface is gone";
		return -ENODEV;
	}
	if ((rc = nl_sock_open(&s, NETLINK_ROUTE, NULL))) {
		*why = "cannot open rtnetlink";
		return rc;
	}
	if ((rc = link_up(&s, ifindex)))
		*why = "cannot bring the interface up";
	/* Addresses first: a route needs the link up, and v6 routes a link
	 * with an address. */
	if (!rc)
		rc = sync_list(&s, ifindex, &v->addrs, &v->n_addrs, pv->addresses.v,
			       pv->addresses.n, addr_change, why);
	if (!rc && !(rc = wanted_routes(pv, &routes, &n_routes)))
		rc = sync_list(&s, ifindex, &v->routes, &v->n_routes, routes, n_routes,
			       route_change, why);
	free(routes);
	nl_sock_close(&s);
	return rc;
}

/* ---- the policy's vpn block -> the VPN's own configuration ---- */

int vpnmgr_device_configure(struct vpn_device *dev, const struct policy_vpn *pv, const char **why)
{
	struct vpn_config cfg = { .replace_peers = true, .listen_port = pv->listen_port };
	struct vpn_peer_config *peers = NULL;
	struct vpn_prefix *prefixes = NULL;
	size_t n_prefixes = 0, total = 0;
	const char *dummy;
	int ret = 0;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (pv->private_key_file) {
		if ((ret = vpn_key_read_file(cfg.private_key, pv->private_key_file))) {
			*why = vpn_key_file_error(ret);
			return ret;
		}
		cfg.has_private_key = true;
	}
	for (size_t i = 0; i < pv->n_peers; i++)
		total += pv->peers[i].allowed_ips.n;
	/* The peers hold preshared keys: guarded memory, wiped when freed
	 * (sodium_free). sodium_malloc aligns the end of the block to a page: the size must be
	 * a multiple of the element's alignment for the start to be aligned. */
	size_t peers_size = (pv->n_peers ? pv->n_peers : 1) * sizeof(*peers);
	peers = sodium_malloc(peers_size);
	prefixes = calloc(total + 1, sizeof(*prefixes));
	if (!peers || !prefixes) {
		ret = -ENOMEM;
		goto out;
	}
	memset(peers, 0, pv->n_peers * sizeof(*peers));
	for (size_t i = 0; i < pv->n_peers; i++) {
		const struct policy_vpn_peer *pp = &pv->peers[i];
		struct vpn_peer_config *pc = &peers[i];
		if (vpn_key_from_base64(pc->public_key, pp->public_key)) {
			*why = "a peer's public key is not a base64 key of 32 bytes";
			ret = -EINVAL;
			goto out;
		}
		if (pp->psk_file) {
			if ((ret = vpn_key_read_file(pc->psk, pp->psk_file))) {
				*why = vpn_key_file_error(ret);
				goto out;
			}
			pc->has_psk = true;
		}
		pc->endpoint = pp->endpoint;
		pc->persistent_keepalive = pp->keepalive;
		pc->allowed_ips = &prefixes[n_prefixes];
		for (size_t j = 0; j < pp->allowed_ips.n; j++) {
			const struct policy_addr *a = &pp->allowed_ips.v[j];
			struct vpn_prefix *x = &prefixes[n_prefixes++];
			if (a->prefix_len == POLICY_ADDR_NOT_PREFIX) {
				*why = "allowed-ips must be prefixes, not ranges";
				ret = -EINVAL;
				goto out;
			}
			x->family = (uint8_t)a->family;
			x->cidr = (uint8_t)a->prefix_len;
			memcpy(x->addr, a->lo, sizeof(x->addr));
		}
		pc->n_allowed_ips = pp->allowed_ips.n;
	}
	cfg.peers = peers;
	cfg.n_peers = pv->n_peers;
	ret = vpn_device_configure(dev, &cfg);
	if (ret && !*why)
		*why = "the configuration was refused (an endpoint must be numeric host:port)";
out:
	sodium_memzero(cfg.private_key, sizeof(cfg.private_key));
	free(prefixes);
	sodium_free(peers); /* wipes the preshared keys */
	return ret;
}

/* ---- devices ---- */

static void dev_release(struct vm_dev *v)
{
	if (v->dev) {
		vpn_device_stop(v->dev);
		vpn_device_destroy(v->dev); /* the TUN, its addresses and routes go with it */
	}
	free(v->ifname);
	free(v->addrs);
	free(v->routes);
	memset(v, 0, sizeof(*v));
}

static void report(struct vm_dev *v, const struct policy_vpn *pv, const char *why, int rc)
{
	char port[64];

	/* vpn_device_configure cannot tell a taken port from a bad endpoint. */
	if (rc == -EADDRINUSE) {
		snprintf(port, sizeof(port), "listen-port %u", pv->listen_port);
		why = port;
	}
	snprintf(v->err, sizeof(v->err), "%s: %s", why ? why : "error", strerror(-rc));
	syslog(LOG_ERR, "%s:%" PRIu32 ":%" PRIu32 ": vpn %s: %s", pv->loc.file ? pv->loc.file : "?",
	       pv->loc.line, pv->loc.col, pv->ifname, v->err);
}

/* Creates, configures, brings up and starts the device of a block. */
static int dev_setup(struct vpnmgr *m, struct vm_dev *v, const struct policy_vpn *pv)
{
	char failed[160] = "", what[192];
	struct vpn_device_options o = { .ifname = pv->ifname,
					.uapi = true,
					.state_dir = m->state_dir,
					.failed = failed,
					.failed_len = sizeof(failed) };
	const char *why = NULL;
	int rc = vpn_device_create(&v->dev, &o);

	if (rc) {
		snprintf(what, sizeof(what), "cannot create %s", failed[0] ? failed : "the device");
		report(v, pv, what, rc);
		v->dev = NULL;
		return rc;
	}
	if (!(rc = vpnmgr_device_configure(v->dev, pv, &why)) && !(rc = sync_net(v, pv, &why)) &&
	    (rc = vpn_device_start(v->dev)))
		why = "cannot start the device thread";
	if (rc) {
		report(v, pv, why, rc);
		vpn_device_destroy(v->dev);
		v->dev = NULL;
		free(v->addrs);
		free(v->routes);
		v->addrs = v->routes = NULL;
		v->n_addrs = v->n_routes = 0;
		return rc;
	}
	v->err[0] = 0;
	syslog(LOG_INFO, "vpn %s: up, %zu peers", pv->ifname, pv->n_peers);
	return 0;
}

/* Reconfigures a running device in place: peers that stay keep their
 * sessions; on error the device keeps running with what it had. */
static int dev_update(struct vm_dev *v, const struct policy_vpn *pv)
{
	const char *why = NULL;
	int rc = vpnmgr_device_configure(v->dev, pv, &why);

	if (!rc)
		rc = sync_net(v, pv, &why);
	if (rc) {
		report(v, pv, why, rc);
		return rc;
	}
	v->err[0] = 0;
	return 0;
}

int vpnmgr_create(struct vpnmgr **out, const char *state_dir)
{
	struct vpnmgr *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	snprintf(m->state_dir, sizeof(m->state_dir), "%s/vpn",
		 state_dir ? state_dir : "/var/lib/hvgate");
	if (mkdir(m->state_dir, 0700) && errno != EEXIST)
		syslog(LOG_WARNING, "cannot create %s: %m", m->state_dir);
	*out = m;
	return 0;
}

static struct vm_dev *find_dev(struct vpnmgr *m, const char *ifname)
{
	for (size_t i = 0; i < m->n_devs; i++)
		if (!strcmp(m->devs[i].ifname, ifname))
			return &m->devs[i];
	return NULL;
}

int vpnmgr_apply(struct vpnmgr *m, const struct policy *p)
{
	size_t n_vpns = p ? p->n_vpns : 0;
	int failed = 0;

	for (size_t i = 0; i < m->n_devs; i++)
		m->devs[i].seen = false;
	for (size_t i = 0; i < n_vpns; i++) {
		struct vm_dev *v = find_dev(m, p->vpns[i].ifname);
		if (v)
			v->seen = true;
	}
	/* Gone first, so that a port or name they held is free for new ones. */
	for (size_t i = 0; i < m->n_devs;) {
		if (m->devs[i].seen) {
			i++;
			continue;
		}
		syslog(LOG_INFO, "vpn %s: removed", m->devs[i].ifname);
		dev_release(&m->devs[i]);
		m->devs[i] = m->devs[--m->n_devs];
	}
	for (size_t i = 0; i < n_vpns; i++) {
		const struct policy_vpn *pv = &p->vpns[i];
		struct vm_dev *v = find_dev(m, pv->ifname);
		if (!v) {
			struct vm_dev *grown = realloc(m->devs, (m->n_devs + 1) * sizeof(*grown));
			if (!grown)
				return failed + (int)(n_vpns - i);
			m->devs = grown;
			v = &m->devs[m->n_devs];
			memset(v, 0, sizeof(*v));
			if (!(v->ifname = strdup(pv->ifname)))
				return failed + (int)(n_vpns - i);
			m->n_devs++;
		}
		if (v->dev ? dev_update(v, pv) : dev_setup(m, v, pv))
			failed++;
	}
	return failed;
}

void vpnmgr_free(struct vpnmgr *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_devs; i++)
		dev_release(&m->devs[i]);
	free(m->devs);
	free(m);
}

/* ---- observing ---- */

static void hex_to_b64(const char *hex, char out[VPN_KEY_BASE64_LEN + 1])
{
	uint8_t key[VPN_KEY_LEN];

	out[0] = 0;
	if (!vpn_key_from_hex(key, hex))
		vpn_key_to_base64(out, key);
	sodium_memzero(key, sizeof(key));
}

/* One device from its UAPI "get" reply (the wg tool's view). */
void vpnmgr_errors(const struct vpnmgr *m, struct json_buf *r)
{
	bool any = false;
	for (size_t i = 0; i < m->n_devs; i++) {
		const struct vm_dev *v = &m->devs[i];
		if (!v->err[0])
			continue;
		if (!any) {
			json_key(r, "vpn_errors");
			json_arr_begin(r);
			any = true;
		}
		char line[VPNMGR_ERR_MAX + IFNAMSIZ + 2];
		snprintf(line, sizeof(line), "%s: %s", v->ifname, v->err);
		json_str(r, line);
	}
	if (any)
		json_arr_end(r);
}

static void show_dev(struct vm_dev *v, struct json_buf *r)
{
	char *reply = NULL, b64[VPN_KEY_BASE64_LEN + 1];
	bool in_peer = false, in_ips = false;
	long long hs_sec = 0;
	time_t now = time(NULL);

	json_obj_begin(r);
	json_kv_str(r, "ifname", v->ifname);
	json_kv_bool(r, "up", v->dev != NULL);
	json_kv_str(r, "error", v->err[0] ? v->err : NULL);
	if (!v->dev || vpn_device_uapi(v->dev, "get=1\n\n", 7, &reply) || !reply) {
		json_key(r, "peers");
		json_raw(r, "[]");
		json_obj_end(r);
		free(reply);
		return;
	}
	size_t len = strlen(reply);
	for (char *line = reply, *next; *line; line = next) {
		char *nl = strchr(line, '\n'), *eq;
		next = nl ? nl + 1 : line + strlen(line);
		if (nl)
			*nl = 0;
		if (!(eq = strchr(line, '=')))
			continue;
		*eq = 0;
		const char *k = line, *val = eq + 1;
		if (in_ips && strcmp(k, "allowed_ip")) {
			json_arr_end(r);
			in_ips = false;
		}
		if (!strcmp(k, "private_key")) {
			uint8_t priv[VPN_KEY_LEN], pub[VPN_KEY_LEN];
			if (!vpn_key_from_hex(priv, val) && !vpn_key_public(pub, priv)) {
				vpn_key_to_base64(b64, pub);
				json_kv_str(r, "public_key", b64);
			}
			sodium_memzero(priv, sizeof(priv));
		} else if (!strcmp(k, "listen_port") && !in_peer) {
			json_kv_int(r, "listen_port", atoll(val));
		} else if (!strcmp(k, "public_key")) {
			if (in_peer) {
				json_obj_end(r);
			} else {
				json_key(r, "peers");
				json_arr_begin(r);
			}
			in_peer = true;
			json_obj_begin(r);
			hex_to_b64(val, b64);
			json_kv_str(r, "public_key", b64);
		} else if (in_peer && !strcmp(k, "endpoint")) {
			json_kv_str(r, "endpoint", val);
		} else if (in_peer && !strcmp(k, "last_handshake_time_sec")) {
			hs_sec = atoll(val);
			json_kv_int(r, "last_handshake", hs_sec);
			/* The session keys are made by the handshake: their age is
			 * the time since it (none yet: null). */
			json_key(r, "key_age_seconds");
			if (hs_sec)
				json_int(r, (long long)now - hs_sec);
			else
				json_null(r);
		} else if (in_peer && !strcmp(k, "rx_bytes")) {
			json_kv_uint(r, "rx_bytes", strtoull(val, NULL, 10));
		} else if (in_peer && !strcmp(k, "tx_bytes")) {
			json_kv_uint(r, "tx_bytes", strtoull(val, NULL, 10));
		} else if (in_peer && !strcmp(k, "persistent_keepalive_interval")) {
			json_kv_int(r, "keepalive", atoll(val));
		} else if (in_peer && !strcmp(k, "allowed_ip")) {
			if (!in_ips) {
				json_key(r, "allowed_ips");
				json_arr_begin(r);
			}
			in_ips = true;
			json_str(r, val);
		}
	}
	if (in_ips)
		json_arr_end(r);
	if (in_peer) {
		json_obj_end(r);
		json_arr_end(r);
	} else {
		json_key(r, "peers");
		json_raw(r, "[]");
	}
	json_obj_end(r);
	sodium_memzero(reply, len);
	free(reply);
}

void vpnmgr_show(struct vpnmgr *m, struct json_buf *r)
{
	json_key(r, "vpns");
	json_arr_begin(r);
	for (size_t i = 0; m && i < m->n_devs; i++)
		show_dev(&m->devs[i], r);
	json_arr_end(r);
}

struct vm_series {
	char *name, *labels;
	double value;
};

struct vm_collect {
	struct vm_series *v;
	size_t n, cap;
};

static void collect(void *ctx, const char *name, const char *labels, double value)
{
	struct vm_collect *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct vm_series *grown = realloc(c->v, cap * sizeof(*grown));
		if (!grown)
			return;
		c->v = grown;
		c->cap = cap;
	}
	struct vm_series *s = &c->v[c->n];
	s->name = strdup(name);
	s->labels = strdup(labels ? labels : "");
	s->value = value;
	if (!s->name || !s->labels) {
		free(s->name);
		free(s->labels);
		return;
	}
	c->n++;
}

static int cmp_series(const void *a, const void *b)
{
	const struct vm_series *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->labels, y->labels);
}

/* The exposition format wants the samples of one metric together: the
 * series of all devices are gathered and sorted by name first. */
void vpnmgr_metrics(struct vpnmgr *m, FILE *out)
{
	struct vm_collect c = { 0 };

	fputs("# HELP hvgate_vpn_up Whether a vpn block of the policy has a running device.\n"
	      "# TYPE hvgate_vpn_up gauge\n",
	      out);
	for (size_t i = 0; m && i < m->n_devs; i++)
		fprintf(out, "hvgate_vpn_up{ifname=\"%s\"} %d\n", m->devs[i].ifname,
			m->devs[i].dev != NULL);
	for (size_t i = 0; m && i < m->n_devs; i++)
		if (m->devs[i].dev)
			vpn_device_metrics(m->devs[i].dev, collect, &c);
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), cmp_series);
	for (size_t i = 0; i < c.n; i++) {
		if (!i || strcmp(c.v[i].name, c.v[i - 1].name)) {
			size_t len = strlen(c.v[i].name);
			/* Prometheus naming: counters end in _total. */
			bool counter = len > 6 && !strcmp(c.v[i].name + len - 6, "_total");
			fprintf(out, "# TYPE %s %s\n", c.v[i].name, counter ? "counter" : "gauge");
		}
		fprintf(out, "%s{%s} %.17g\n", c.v[i].name, c.v[i].labels, c.v[i].value);
	}
	for (size_t i = 0; i < c.n; i++) {
		free(c.v[i].name);
		free(c.v[i].labels);
	}
	free(c.v);
}
