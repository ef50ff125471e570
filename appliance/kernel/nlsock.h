/* appliance/kernel/: all of hvgate's I/O with the kernel, part of
 * libhvappliance. Above it the daemon (appliance/) and the CLI (cli/); it
 * uses policy/ only for the IR it sends, the diagnostics it reports and
 * its array growth (policy/grow.h).
 *   nlsock.c      this header: the one netlink socket layer
 *   nftio*.c      nf_tables: apply a ruleset in one batch, generation and
 *                 digest, rule counters, block-list elements (nftio.h)
 *   conntrack.c   ctnetlink dumps with one attribute codec (conntrack.h)
 *   route.c       tenant policy routing over rtnetlink (route.h)
 *   linkwatch.c   link events, rtnetlink multicast (linkwatch.h)
 *   nflog.c       NFLOG events of `log` rules (nflog.h)
 * Error convention of the whole folder: 0 or a negative errno.
 *
 * The one netlink socket layer: every request hvgated and hvgate send to the
 * kernel (nf_tables, ctnetlink, rtnetlink) goes through nl_sock_talk() or
 * nl_sock_dump(), on a socket opened by nl_sock_open() in the namespace it
 * names. (Two exceptions, each with a reason: nftio.c sends its ruleset
 * batch with sendmsg and reads the acks without blocking, and the fast
 * path's queue sockets are drained without blocking, their verdicts sent in
 * batches; its queue configuration, conntrack lookups and label updates
 * use nl_sock_talk.)
 *
 * A netlink socket belongs to the network namespace it was created in, so
 * nl_sock_open() enters the namespace only for socket(2) and returns to the
 * caller's namespace at once; everything sent on the socket afterwards acts
 * in the target namespace. A namespace is a name under NL_NETNS_DIR, never a
 * path; if returning to the caller's namespace fails the socket is closed
 * and the error returned, so no caller goes on in the wrong namespace.
 *
 * Error convention: 0 or a negative errno (the kernel's, or the socket's).
 * A socket is used by one thread at a time.
 */
#ifndef HVGATE_APPLIANCE_KERNEL_NLSOCK_H
#define HVGATE_APPLIANCE_KERNEL_NLSOCK_H

#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

/* Where `ip netns add` puts its namespaces (iproute2's NETNS_RUN_DIR). */
#define NL_NETNS_DIR "/var/run/netns"

/* Enters namespace `netns` (NULL or "": stay). On success *saved holds an fd
 * of the caller's namespace to pass to nl_netns_leave() (-1 if nothing was
 * entered). */
int nl_netns_enter(const char *netns, int *saved);
/* Returns to the namespace saved by nl_netns_enter() and closes the fd. */
int nl_netns_leave(int saved);

struct nl_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq; /* next sequence number to use */
	/* Set on a borrowed copy of another socket (nftio_pin): closing the
	 * copy hands its sequence number back to `owner` and keeps the
	 * socket open. */
	struct nl_sock *owner;
};

/* Opens and binds a netlink socket of `bus` (NETLINK_NETFILTER,
 * NETLINK_ROUTE) in `netns` (NULL: the current one). Sets NETLINK_EXT_ACK and
 * NETLINK_CAP_ACK (best effort) so errors carry the kernel's message and not
 * a copy of our request. The sequence starts from the clock, like nft, so a
 * reply meant for an earlier process's socket is never taken for ours. */
int nl_sock_open(struct nl_sock *s, int bus, const char *netns);
void nl_sock_close(struct nl_sock *s);

/* Grows the socket's receive and send buffers to at least the sizes given
 * (root: SO_*BUFFORCE, above net.core.*mem_max). Large batches need it: the
 * kernel queues every ack before we read one. */
int nl_sock_set_buffers(struct nl_sock *s, size_t rcv_bytes, size_t snd_bytes);

/* Sends `len` bytes at `msg` (one message or a batch) and runs `cb` (NULL:
 * none) on every reply carrying sequence number `seq` until NLMSG_DONE or the
 * ack. Replies are read MNL_SOCKET_BUFFER_SIZE at a time. */
int nl_sock_talk_raw(struct nl_sock *s, const void *msg, size_t len, uint32_t seq, mnl_cb_t cb,
		     void *data);

/* One request (a single message, its own sequence number) and its replies. */
int nl_sock_talk(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data);

/* A dump request (NLM_F_DUMP) and its replies, read with a 64 KiB buffer:
 * the kernel fills each dump message up to the reader's buffer (capped at
 * 32 KiB, netlink_recvmsg in net/netlink/af_netlink.c), so a large buffer
 * means fewer rounds. */
int nl_sock_dump(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data);

/* What a dump's callback collects: elements of `elem` bytes it appends with
 * nl_collect_push(), and its own error (-ENOMEM, -EPROTO; 0 until one),
 * which nl_collect_take() reports in preference to the dump's. Start from
 * (struct nl_collect){ .elem = sizeof(element) }. */
struct nl_collect {
	void *v;
	size_t n, cap, elem;
	int err;
};

/* Appends a zeroed element and returns it; NULL, with err = -ENOMEM, when
 * memory runs out. */
void *nl_collect_push(struct nl_collect *c);

/* Ends a collection whose dump returned *err: *err becomes the callback's
 * error if it had one. On an error the elements are freed, *n is 0 and
 * NULL is returned; else the elements (malloc'd, the caller frees them),
 * *n of them. */
void *nl_collect_take(struct nl_collect *c, int *err, size_t *n);

#endif
