/* The conntrack table of the namespace hvgated works in, read with a
 * ctnetlink dump over libmnl (IPCTNL_MSG_CT_GET), filtered by ct zone (the
 * tenant), address, or NAT. Counts and the limit come from
 * /proc/sys/net/netfilter.
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_CONNTRACK_H
#define HVGATE_APPLIANCE_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/json.h"

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

#endif
