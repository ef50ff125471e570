/* The policy evaluator: what a checked policy (struct policy) does with one
 * packet, computed from the language's documented semantics
 * (docs/policy-language.md, docs/replay.md), not from the IR or the nft text.
 * It is a second implementation of the language: comparing it with the
 * kernel running the compiled ruleset checks the whole compiler.
 *
 * The walk follows the packet through the appliance as the kernel does:
 * the `no state` exemption, the tenant's conntrack zone, anti-spoofing, port
 * forwards (and hairpin, netmap inbound), the routing decision (the
 * segment holding the destination, or the interface given), inter-tenant
 * isolation, the block list, connection state, the zone pair's rules in
 * first-match order, the pair's default, then source NAT.
 *
 * Ownership: a result owns its steps; policy_eval_result_free(). The result
 * points into the policy (rules, defaults, NAT statements), which must
 * outlive it. Nothing here allocates per packet except the steps of the
 * path, and nothing keeps state: the caller supplies the connection state
 * (policy/eval_ct.h models it). Thread-safe for distinct results.
 * Error convention: 0, or -ENOMEM.
 */
#ifndef HVGATE_POLICY_EVAL_H
#define HVGATE_POLICY_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/model.h"

/* IFNAMSIZ of linux/if.h, with the terminating NUL. */
#define POLICY_EVAL_IFNAMSIZ 16

/* Connection state as nft's `ct state` sees it. */
enum policy_eval_ct {
	POLICY_EVAL_CT_NEW,
	POLICY_EVAL_CT_ESTABLISHED,
	POLICY_EVAL_CT_RELATED,
	POLICY_EVAL_CT_INVALID,
	POLICY_EVAL_CT_UNTRACKED, /* ICMPv6 neighbour discovery, `no state` */
};

enum policy_eval_verdict {
	POLICY_EVAL_PASS,
	POLICY_EVAL_BLOCK,
	POLICY_EVAL_REJECT,
	POLICY_EVAL_INSPECT, /* a pass rule with `inspect`: passes unless its content matches a
				block */
};

struct policy_eval_packet {
	int family;                   /* AF_INET or AF_INET6 */
	uint8_t l4proto;              /* IPPROTO_* */
	uint8_t saddr[16], daddr[16]; /* network order; v4 in the first 4 bytes */
	uint16_t sport, dport;        /* host order; ICMP echo: sport = id */
	uint8_t icmp_type;
	char iif[POLICY_EVAL_IFNAMSIZ]; /* "": sent by the appliance itself */
	char oif[POLICY_EVAL_IFNAMSIZ]; /* "": the segment holding the destination, else none */
	bool to_self;                   /* addressed to the appliance (input hook) */
	enum policy_eval_ct ct;
	/* The tenant of the packet's connection when it does not arrive on a
	 * segment (a reply on the uplink): the ct mark restored. POLICY_NONE. */
	size_t ct_tenant;
	/* The connection already has its NAT bindings (policy/eval_ct.h): the
	 * caller has translated the addresses the kernel translates before
	 * routing, and the NAT statements are not consulted again. */
	bool nat_bound;
};

/* One entry of the dynamic block list (`hvgate block`): a tenant's entry
 * covers that tenant's packets, a global one (tenant POLICY_NONE) all. */
struct policy_eval_block {
	size_t tenant;
	struct policy_addr addr;
};

/* A route of the main table for destinations in no segment (the uplink's
 * default route): family 0 in addr matches every destination. */
struct policy_eval_route {
	struct policy_addr addr;
	char ifname[POLICY_EVAL_IFNAMSIZ];
};

/* What a replay of many packets keeps between them: per zone pair the rules
 * that govern it, per rule its address lists as sorted ranges. Built
 * lazily; owned by the caller (policy_eval_cache_new/_free); only for the
 * policy it was made for. Not thread-safe. */
struct policy_eval_cache;

struct policy_eval_cache *policy_eval_cache_new(const struct policy *p);
void policy_eval_cache_free(struct policy_eval_cache *c);

struct policy_eval_opts {
	/* record the path (steps) of each evaluation; off for bulk replay,
	 * where only the verdict and what decided matter */
	bool path;
	struct policy_eval_cache *cache; /* NULL: none */
	const struct policy_eval_block *blocked;
	size_t n_blocked;
	const struct policy_eval_route *routes; /* in order; the first that holds the destination */
	size_t n_routes;
};

void policy_eval_opts_default(struct policy_eval_opts *o);

/* A translation done to a new connection. */
struct policy_eval_xlat {
	const struct policy_nat *nat; /* NULL: none */
	bool masquerade;              /* the address of the outgoing interface */
	bool hairpin;                 /* masquerade behind the appliance's inside address */
	uint8_t addr[16];             /* the new address (not for masquerade) */
	uint16_t port;                /* the new port, 0: unchanged */
};

enum policy_eval_step_kind {
	POLICY_EVAL_STEP_NOTE,    /* tenant, zone pair, NAT, routing */
	POLICY_EVAL_STEP_MISS,    /* a rule consulted that did not match */
	POLICY_EVAL_STEP_DECIDED, /* what decided */
};

struct policy_eval_step {
	enum policy_eval_step_kind kind;
	const struct policy_rule *rule; /* for rule steps */
	char text[192];
};

struct policy_eval_result {
	enum policy_eval_verdict verdict;
	const struct policy_rule *rule;   /* the deciding rule, or NULL */
	const struct policy_default *def; /* the deciding default, or NULL */
	/* What decided when neither a rule nor a default did: "antispoof:acme.web",
	 * "builtin:blocked", "builtin:ct-state", "builtin:ct-invalid",
	 * "builtin:inter-tenant", "builtin:loopback", "builtin:ipv6-nd",
	 * "default:builtin", "output:accept"; "" when a rule or default did. */
	char builtin[96];
	enum policy_eval_ct ct; /* the state the filter saw (untracked after `no state`) */
	bool limited;           /* the deciding rule has a limit: it decides while under the rate */
	bool logged;
	size_t tenant;             /* the packet's tenant (mark), or POLICY_NONE */
	uint16_t ct_zone;          /* its conntrack zone (original direction), 0 default */
	size_t from_zone, to_zone; /* POLICY_NONE: unzoned */
	bool from_self, to_self;
	char oif[POLICY_EVAL_IFNAMSIZ]; /* the egress interface used ("" none) */
	struct policy_eval_xlat dnat, snat;
	struct policy_eval_step *steps;
	size_t n_steps, cap_steps;
	bool no_path; /* opts.path was off: no steps */
};

/* Evaluates `pkt` against `p`. Fills *r (free it with
 * policy_eval_result_free() also on error). Returns 0 or -ENOMEM. */
int policy_eval(const struct policy *p, const struct policy_eval_packet *pkt,
		const struct policy_eval_opts *o, struct policy_eval_result *r);

void policy_eval_result_free(struct policy_eval_result *r);

/* "pass", "block", "reject", "inspect"; "new", "established", ... */
const char *policy_eval_verdict_name(enum policy_eval_verdict v);
const char *policy_eval_ct_name(enum policy_eval_ct ct);

/* The zone of interface `ifname`, or POLICY_NONE. */
size_t policy_eval_zone_of(const struct policy *p, const char *ifname);

/* Does the address (family, bytes) lie in `a`? */
bool policy_eval_addr_in(const struct policy_addr *a, int family, const uint8_t *addr);

/* The source text of the statement at `loc` (whitespace collapsed, at most
 * size - 1 bytes), from the files kept in `d`; "" if unknown. Finds the
 * line by counting from the start of the file: for many lookups, build an
 * index first (policy_eval_lines_new) and use policy_eval_lines_source. */
void policy_eval_source(const struct policy_diags *d, const struct policy_loc *loc, char *buf,
			size_t size);

/* The whole text of a statement that may span lines (`len` bytes from
 * `loc`, a rule's or NAT's text_len) on one line: comments left out,
 * blanks collapsed, "..." at the end when it does not fit; len 0: as
 * policy_eval_source. */
void policy_eval_source_span(const struct policy_diags *d, const struct policy_loc *loc, size_t len,
			     char *buf, size_t size);

struct policy_eval_lines; /* where each line of each file of `d` starts */
struct policy_eval_lines *policy_eval_lines_new(const struct policy_diags *d);
void policy_eval_lines_free(struct policy_eval_lines *l);
/* policy_eval_source_span by the index. */
void policy_eval_lines_source_span(const struct policy_eval_lines *l, const struct policy_loc *loc,
				   size_t len, char *buf, size_t size);
void policy_eval_lines_source(const struct policy_eval_lines *l, const struct policy_loc *loc,
			      char *buf, size_t size);

/* Parses a packet written as an operator thinks (docs/replay.md):
 *
 *   PROTO SRC[:PORT] -> DST[:PORT] [type ICMPTYPE] [in IFNAME] [out IFNAME|self]
 *
 * PROTO is tcp, udp, sctp, icmp, icmpv6 or a number; an IPv6 address with a
 * port is written [2001:db8::1]:443; `-> self:22` (or `out self`) is the
 * appliance itself. Without `in`, the interface is that of the segment
 * holding the source (of tenant `tenant` if not POLICY_NONE). State is NEW.
 * Returns 0, or -1 with a message and the 1-based column of the mistake. */
int policy_eval_parse_packet(const struct policy *p, const char *text, size_t tenant,
			     struct policy_eval_packet *pkt, char *err, size_t err_size,
			     size_t *err_col);

/* The packet as text in the same syntax (for output). */
void policy_eval_packet_text(const struct policy_eval_packet *pkt, char *buf, size_t size);

#endif
