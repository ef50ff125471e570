/* The conntrack table read with a ctnetlink dump (IPCTNL_MSG_CT_GET) over
 * the kernel layer's socket (nlsock.h), decoded by one attribute codec
 * (conntrack_entry_parse):
 *   conntrack_dump()      the daemon's view, filtered by ct zone (the
 *                         tenant), address, or NAT, as JSON
 *   conntrack_nat_list()  the entries with a NAT translation in a namespace
 * Counts and the limit come from /proc/sys/net/netfilter.
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_CONNTRACK_H
#define HVGATE_APPLIANCE_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>

#include "appliance/json.h"

/* One direction of a conntrack entry. Addresses network order (v4 in the
 * first 4 bytes), ports host order (0 when the protocol has none). */
struct conntrack_tuple {
	int family; /* AF_INET, AF_INET6; 0 if the entry had no addresses */
	uint8_t src[16], dst[16];
	uint8_t proto; /* IPPROTO_* */
	uint16_t sport, dport;
	bool has_ports;
	bool has_zone; /* a directional zone (ct zone set ... in one direction) */
	uint16_t zone;
};

/* One entry as the kernel sent it. */
struct conntrack_entry {
	struct conntrack_tuple orig, reply;
	bool has_zone; /* CTA_ZONE: a zone for both directions */
	uint16_t zone;
	uint32_t status, mark, timeout; /* IPS_* bits; ct mark; seconds left */
};

/* Decodes one IPCTNL_MSG_CT_NEW message of a dump into *e (absent
 * attributes read as 0). */
void conntrack_entry_parse(const struct nlmsghdr *nlh, struct conntrack_entry *e);

struct conntrack_filter {
	bool zone_set;
	uint16_t zone;
	int family; /* 0: no address filter; AF_INET / AF_INET6 */
	uint8_t addr[16];
	bool nat_only;
	size_t max; /* entries written at most; 0: CONNTRACK_DEFAULT_MAX */
};

#define CONNTRACK_DEFAULT_MAX 1000

/* Writes matching entries as a JSON array; *matched counts all matches. */
int conntrack_dump(const struct conntrack_filter *f, struct json_buf *out, size_t *matched);
int conntrack_count(uint64_t *count, uint64_t *max);

/* One conntrack entry that was translated: its original tuple (as the
 * sender wrote it) and its reply tuple (as the answer comes back). Source
 * NAT shows in reply.dst, destination NAT in reply.src. Addresses network
 * order (v4 in the first 4 bytes), ports host order. */
struct conntrack_nat_tuple {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

struct conntrack_nat {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t l4proto;  /* IPPROTO_* */
	uint16_t zone;    /* conntrack zone (of the original direction) */
	uint32_t mark;    /* ct mark: tenant id << 16 for tenant traffic */
	bool snat, dnat;  /* IPS_SRC_NAT / IPS_DST_NAT */
	uint32_t timeout; /* seconds left */
	struct conntrack_nat_tuple orig, reply;
};

/* Lists the conntrack entries with a NAT translation in network namespace
 * `netns` (a name under /var/run/netns; NULL: the caller's own). *out is a
 * malloc'd array the caller frees; *n its length. */
int conntrack_nat_list(const char *netns, struct conntrack_nat **out, size_t *n);

/* Writes one translation as "tcp zone 1 mark 0x10000 10.0.1.2:40000 ->
 * 203.0.113.2:7 snat 203.0.113.1:40000" into buf; returns buf. */
char *conntrack_nat_format(const struct conntrack_nat *t, char *buf, size_t size);

#endif
