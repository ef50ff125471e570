/* nftio: hvgate's netlink I/O with nf_tables (libmnl + libnftnl).
 *
 * Everything that sends to or reads from the kernel's nf_tables lives here;
 * libhvpolicy only builds objects. Every function takes the network
 * namespace to work in (NULL: the caller's own; else the name of a namespace
 * under /var/run/netns, entered for the call and left again).
 *
 * Error convention: 0 on success, negative errno on failure. Functions that
 * take a struct policy_diags also add a diagnostic that says what failed and,
 * for a kernel error on a rule/set/chain, the policy location that made it.
 * Not thread-safe; one call at a time per process.
 */
#ifndef HVGATE_APPLIANCE_NFTIO_H
#define HVGATE_APPLIANCE_NFTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h> /* IFNAMSIZ */

#include "policy/diag.h"
#include "policy/ir.h"

struct ir_diff;

struct nftio_apply_opts {
	const char *netns;     /* NULL: current namespace */
	bool check_only;       /* let the kernel validate the batch, then abort it */
	bool expect_genid_set; /* refuse (-ERESTART / -EAGAIN) if the ruleset changed since */
	uint32_t expect_genid;
	/* Set both: send the delta from `running` (what the kernel has) to the
	 * table instead of the replace (policy_emit_nftnl_delta()). */
	const struct ir_table *running;
	const struct ir_diff *diff;
};

struct nftio_apply_result {
	uint32_t genid_before;
	uint32_t genid_after;
	size_t n_messages;     /* netlink messages in the batch */
	double build_seconds;  /* IR -> batch */
	double kernel_seconds; /* send + all acks */
};

/* Replaces table inet hvgate with `t` in ONE transaction (delete and add in
 * the same batch; no other table is touched). On any error nothing changes. */
int nftio_apply(const struct ir_table *t, const struct nftio_apply_opts *o,
		struct nftio_apply_result *r, struct policy_diags *d);

/* Removes table inet hvgate (if present) in one transaction. */
int nftio_flush(const char *netns, struct policy_diags *d);

/* The ruleset generation id (NFT_MSG_GETGEN). */
int nftio_genid(const char *netns, uint32_t *genid);

/* One NETLINK_NETFILTER socket for a run of calls (one apply): between
 * nftio_pin(netns) and nftio_unpin() every nftio call (and the txn_delta
 * reads) for that namespace borrows the pinned socket instead of opening
 * its own, which costs entering the namespace each time. Per thread; not
 * nested (a second pin is refused with -EBUSY). A pin that fails leaves
 * every call opening its own socket, as without it. */
int nftio_pin(const char *netns);
void nftio_unpin(void);

/* A digest (SHA-256) of table inet hvgate as the kernel has it: the table,
 * its chains, sets and rules, without what moves by itself (counter values,
 * set elements), and the generation at which it was read (the dump is read
 * again if the ruleset changed meanwhile; -EAGAIN if it kept changing). An
 * absent table has a digest too. Other tables do not count: the daemon's
 * guard compares this, not the ruleset generation, so that other programs
 * may keep their own tables beside hvgate's. */
#define NFTIO_DIGEST_LEN 32
int nftio_table_digest(const char *netns, uint32_t *genid, unsigned char digest[NFTIO_DIGEST_LEN]);

/* The comment of table inet hvgate into buf; -ENOENT if no such table. */
int nftio_table_comment(const char *netns, char *buf, size_t size);

/* Per-rule counters of table inet hvgate, keyed by the rule comment (the
 * policy rule id). Rules of one id in several chains are summed. */
struct nftio_rule_counter {
	char comment[128];
	uint64_t packets;
	uint64_t bytes;
};
int nftio_rule_counters(const char *netns, struct nftio_rule_counter **out, size_t *n);

/* Elements of the block lists (sets blocked4 / blocked6, keyed `meta mark
 * . ip[6] saddr` with intervals: policy/lower.c): the addresses addr ..
 * addr_end (inclusive) of `family` (AF_INET or AF_INET6) in packets whose
 * mark is in mark_lo .. mark_hi. Add with timeout_ms (0: none), delete (the
 * same key and end), list; `set` the IR set name. An element that would
 * begin or end inside another is refused by the kernel (-ENOTEMPTY). */
struct nftio_set_elem {
	int family;
	uint8_t addr[16], addr_end[16];
	uint32_t mark_lo, mark_hi;
	/* by_ifname: the zone-scoped lists (blocked_zone4 / blocked_zone6, keyed
	 * `oifname . ip[6] saddr`): interface names ifname_lo .. ifname_hi
	 * (NUL-padded; one name, or a wildcard's range) instead of marks. */
	bool by_ifname;
	char ifname_lo[IFNAMSIZ], ifname_hi[IFNAMSIZ];
	uint64_t timeout_ms, expires_ms;
};
int nftio_set_elem_add(const char *netns, const char *set, const struct nftio_set_elem *e);
int nftio_set_elem_del(const char *netns, const char *set, const struct nftio_set_elem *e);
int nftio_set_elems(const char *netns, const char *set, struct nftio_set_elem **out, size_t *n);
/* The same for a set keyed by interface name (by_ifname set in every one). */
int nftio_set_elems_by_ifname(const char *netns, const char *set, struct nftio_set_elem **out,
			      size_t *n);

/* Probes whether the kernel has the native nft queue expression; if not, the
 * xt NFQUEUE target through nft_compat is used. 1 native, 0 compat, <0 error. */
int nftio_probe_native_queue(const char *netns);

#endif
