/* linkwatch: interfaces appearing, changing state or going away, from the
 * kernel's rtnetlink link group (RTNLGRP_LINK), for the daemon's loop.
 *
 * The tenants' routes go through segment interfaces (appliance/kernel/route.h):
 * a VM's tap device that is created after the policy was applied, or that
 * went down and up again (the kernel drops the routes of a link that goes
 * down), needs its routes installed again. The daemon polls linkwatch_fd()
 * and reads the events with linkwatch_read().
 *
 * The socket belongs to the network namespace of the caller of
 * linkwatch_open(). Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_LINKWATCH_H
#define HVGATE_APPLIANCE_LINKWATCH_H

#include <stdbool.h>

struct linkwatch;

int linkwatch_open(struct linkwatch **out);
void linkwatch_close(struct linkwatch *w);
int linkwatch_fd(const struct linkwatch *w);

/* Reads every pending event without blocking and calls on_link(name, ctx)
 * for each interface named in one. Returns the number of events, or
 * -ENOBUFS when the kernel dropped events because the socket was full: the
 * caller must then assume that any interface changed. */
int linkwatch_read(struct linkwatch *w, void (*on_link)(const char *ifname, void *ctx), void *ctx);

#endif
