/* nftio internals shared by appliance/nftio*.c: the netns enter/leave and
 * the one mnl socket per call. Not a public header: only appliance/ uses it.
 *
 * A netlink socket belongs to the network namespace it was created in, so
 * nftio_sock_open() enters the namespace only for socket(2) and returns to
 * the caller's namespace at once; everything sent on the socket afterwards
 * acts in the target namespace. Error convention: 0 or negative errno.
 */
#ifndef HVGATE_APPLIANCE_NFTIO_INTERNAL_H
#define HVGATE_APPLIANCE_NFTIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

/* Where `ip netns add` puts its namespaces (iproute2's NETNS_RUN_DIR). */
#define NFTIO_NETNS_DIR "/var/run/netns"

/* Enters namespace `netns` (NULL or "": stay). On success *saved holds an fd
 * of the caller's namespace to pass to nftio_netns_leave() (-1 if nothing
 * was entered). */
int nftio_netns_enter(const char *netns, int *saved);
/* Returns to the namespace saved by nftio_netns_enter() and closes the fd. */
int nftio_netns_leave(int saved);

struct nftio_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq; /* next sequence number to use */
};

/* Opens a NETLINK_NETFILTER socket in `netns` (NULL: the current one).
 * Sets NETLINK_EXT_ACK and NETLINK_CAP_ACK so errors carry the kernel's
 * message and not a copy of our request. */
int nftio_sock_open(const char *netns, struct nftio_sock *s);
void nftio_sock_close(struct nftio_sock *s);

/* Grows the socket's receive and send buffers to at least `bytes` (root:
 * SO_*BUFFORCE, above net.core.*mem_max). Large batches need it: the kernel
 * queues every ack before we read one. */
int nftio_sock_set_buffers(struct nftio_sock *s, size_t rcv_bytes, size_t snd_bytes);

/* Sends one request (a single netlink message, not a batch) and runs `cb` on
 * every reply until NLMSG_DONE or the ack. Returns 0 or the negative errno the
 * kernel (or `cb`) reported. */
int nftio_sock_talk(struct nftio_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data);

/* NFT_MSG_GETGEN over an open socket. */
int nftio_sock_genid(struct nftio_sock *s, uint32_t *genid);

#endif
