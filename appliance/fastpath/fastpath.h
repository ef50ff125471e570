/* The inspection fast path: worker threads that serve NFQUEUE queues
 * Q .. Q+W-1 and judge each queued packet with appliance/fastpath/inspect.h.
 *
 * Worker w binds queue Q + w (copy mode packet, fail-open, GSO, and
 * conntrack information where the kernel gives it), judges every packet and
 * answers with a verdict; a flow that is cleared or blocked gets the DONE or
 * BLOCKED conntrack label (policy/lower.h), so the kernel stops queueing it
 * or drops the rest of it. docs/fastpath.md describes it.
 *
 * Two ways to learn and set a flow's labels, chosen when a queue is bound:
 *  - conntrack glue (CONFIG_NETFILTER_NETLINK_GLUE_CT, distribution kernels):
 *    the kernel sends the conntrack id and labels with each packet (NFQA_CT)
 *    and takes the new label with the verdict;
 *  - without it (the kernel refuses NFQA_CFG_F_CONNTRACK): the worker looks
 *    the flow up in conntrack by the packet's addresses and ports over
 *    ctnetlink (appliance/kernel/nlsock.h); it sets BLOCKED with a conntrack
 *    update before the verdict, and DONE with the verdict itself: the packet
 *    is accepted with POLICY_MARK_INSPECT_DONE added to its mark, and the
 *    ruleset's inspect-done chain after the queue's turns that into the
 *    label (policy/lower.h).
 *    A tenant's flows are looked up in the tenant's ct zone, named by the
 *    routing mark the packet carries (appliance/fastpath/inspect.h, fp_ruleset_zone),
 *    then in the default zone (a port forward into a tenant).
 *
 * Threads: fastpath_start/stop from one thread; fastpath_set_rules,
 * fastpath_events and fastpath_stats from any thread while workers run.
 * Error convention: 0 or a negative errno.
 */
#ifndef HVGATE_APPLIANCE_FASTPATH_H
#define HVGATE_APPLIANCE_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/fastpath/inspect.h"

/* Events kept for the daemon between two reads; more are counted lost. */
#define FASTPATH_EVENT_RING 1024
/* Workers at most (one queue each). */
#define FASTPATH_MAX_WORKERS 64

struct fastpath;

/* Starts `workers` threads serving queues queue .. queue+workers-1 in the
 * current network namespace, with an empty ruleset (every flow is cleared
 * until fastpath_set_rules). -EPERM: a queue is bound by another socket. */
int fastpath_start(struct fastpath **out, uint16_t queue, unsigned workers);
/* The same in network namespace `netns` (a name under /var/run/netns;
 * NULL: the current one). Only the sockets live there; threads do not move. */
int fastpath_start_netns(struct fastpath **out, const char *netns, uint16_t queue,
			 unsigned workers);
/* Flags of fastpath_start_flags. FASTPATH_FAIL_CLOSED: bind the queues
 * without NFQA_CFG_F_FAIL_OPEN (a full queue drops instead of accepting;
 * the ruleset's queue rules go without bypass to match). */
#define FASTPATH_FAIL_CLOSED 0x1u
int fastpath_start_flags(struct fastpath **out, const char *netns, uint16_t queue, unsigned workers,
			 unsigned flags);

/* The kernel's counters of one of the fast path's queues
 * (/proc/net/netfilter/nfnetlink_queue). */
struct fastpath_queue_stat {
	uint16_t queue;
	uint32_t waiting;       /* packets waiting for a verdict */
	uint32_t queue_dropped; /* dropped (or, failing open, accepted) for a full queue */
	uint32_t user_dropped;  /* the kernel could not deliver to the socket */
};
/* Fills at most max entries, one per queue bound by the fast path (block
 * 0 first), read in its namespace; returns how many. */
size_t fastpath_queue_stats(const struct fastpath *fp, struct fastpath_queue_stat *out, size_t max);

/* Unbinds the queues, joins the workers (within half a second) and frees
 * everything. NULL is a no-op. */
void fastpath_stop(struct fastpath *fp);

/* True when the kernel gives conntrack information with the packets (the
 * glue way above); false: the ctnetlink way. */
bool fastpath_has_ct_glue(const struct fastpath *fp);

/* Replaces the ruleset; takes ownership of rs. The old one is freed once no
 * worker judges with it any more. */
void fastpath_set_rules(struct fastpath *fp, struct fp_ruleset *rs);

/* An eventfd that is readable while events are queued. */
int fastpath_event_fd(const struct fastpath *fp);
/* Moves up to max queued events (oldest first) into out; returns how many. */
size_t fastpath_events(struct fastpath *fp, struct fp_event *out, size_t max);

/* The sums of all workers' counters. */
void fastpath_stats(const struct fastpath *fp, struct fp_stats *out);

#endif
