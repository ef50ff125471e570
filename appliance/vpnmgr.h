/* vpnmgr: the VPN interfaces of the running policy, inside hvgated.
 *
 * One vpn_device (vpn/vpn.h) per `vpn` block of the running policy, each
 * driven by its own thread. vpnmgr_apply() makes the set of devices that of a
 * policy: devices of blocks that are gone are stopped and destroyed (their
 * TUN, and with it its addresses and routes, goes away); new blocks get a
 * device, configured, brought up with the block's addresses and a route per
 * peer allowed-ip, and started; devices that stay are reconfigured in place
 * (vpnmgr_device_configure keeps the peers that stay, and their
 * sessions), and their addresses and routes brought in step. A device that
 * cannot be set up (unreadable key file, port in use) is reported and left
 * out; the other VPNs and the daemon go on.
 *
 * Namespace: every TUN, UDP socket and netlink socket is created by the
 * calling thread, and device threads are started by it, so they all belong
 * to the caller's network namespace; hvgated enters its configured
 * namespace at start, before anything calls this.
 *
 * Not thread-safe: the daemon's loop only (devices lock themselves).
 */
#ifndef HVGATE_APPLIANCE_VPNMGR_H
#define HVGATE_APPLIANCE_VPNMGR_H

#include <stddef.h>
#include <stdio.h>

#include "appliance/json.h"
#include "policy/model.h"

/* rtm_protocol of the routes to peers' allowed-ips: not route.c's
 * ROUTE_PROTO_HVGATE (211), which route_apply() flushes on every apply, and
 * not one of the numbers iproute2's rt_protos reserves. */
#define VPNMGR_ROUTE_PROTO 212

struct vpnmgr;
struct vpn_device;

/* Configures `dev` from a checked policy's `vpn` block: the adapter from
 * the policy's model to the VPN's own struct vpn_config (vpn/ knows nothing
 * of policies). Reads the private key and psk files (with
 * vpn_key_read_file's permission rule), replaces peers; peers that stay
 * keep their sessions. Addresses of the block are not set here (sync_net
 * does that netlink work). Returns 0 or a negative errno; on error *why
 * (may be NULL) names what was wrong. */
int vpnmgr_device_configure(struct vpn_device *dev, const struct policy_vpn *pv, const char **why);

/* state_dir: where devices keep their last handshake timestamp. */
int vpnmgr_create(struct vpnmgr **out, const char *state_dir);
/* Makes the devices those of `p` (NULL: none). Returns the number of VPNs
 * that failed (each logged with the location of its block, and kept as its
 * last error for vpnmgr_show). */
int vpnmgr_apply(struct vpnmgr *m, const struct policy *p);
/* Stops and destroys every device. */
void vpnmgr_free(struct vpnmgr *m);

/* Writes "vpns":[{ifname, listen_port, public_key, error, peers:[{public_key,
 * endpoint, allowed_ips, last_handshake, key_age_seconds, rx_bytes,
 * tx_bytes, keepalive}]}] into an open object. */
void vpnmgr_show(struct vpnmgr *m, struct json_buf *r);
/* Writes "vpn_errors":["IFNAME: what failed", ...] into an open object
 * when a device of the last vpnmgr_apply failed; nothing when none did. */
void vpnmgr_errors(const struct vpnmgr *m, struct json_buf *r);
/* Prometheus series of every device. */
void vpnmgr_metrics(struct vpnmgr *m, FILE *out);

#endif
