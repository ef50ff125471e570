/* nftio internals shared by appliance/kernel/nftio*.c (and txn_delta.c,
 * which reads rule handles over the pinned socket). Not a public header.
 * The socket layer itself, and entering a namespace, is nlsock.h.
 * Error convention: 0 or negative errno.
 */
#ifndef HVGATE_APPLIANCE_NFTIO_INTERNAL_H
#define HVGATE_APPLIANCE_NFTIO_INTERNAL_H

#include <stdint.h>

#include "appliance/kernel/nlsock.h"

/* A NETLINK_NETFILTER socket in `netns` (NULL: the current one): a
 * borrowed copy of the pinned one (nftio_pin) when `netns` is the pinned
 * namespace, else a new one. Closed with nl_sock_close() either way. */
int nftio_sock_open(const char *netns, struct nl_sock *s);

/* NFT_MSG_GETGEN over an open socket. */
int nftio_sock_genid(struct nl_sock *s, uint32_t *genid);

#endif
