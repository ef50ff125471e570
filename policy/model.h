/* The checked policy: what the front end (lexer, parser, checker) hands to
 * lowering. Every name is resolved, every list flattened, every reference
 * replaced by an index; nothing here needs the syntax tree any more.
 *
 * Ownership: a struct policy owns everything reachable from it and is freed
 * with policy_free(). Source locations point into the struct policy_diags of
 * the compilation, which must outlive the policy.
 */
#ifndef HVGATE_POLICY_MODEL_H
#define HVGATE_POLICY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"

#define POLICY_NONE ((size_t)-1) /* "no index": no tenant, any zone, ... */

/* An address set member: a prefix or an inclusive range, v4 or v6.
 * Bytes are in network order; v4 uses the first 4 bytes of lo/hi. */
#define POLICY_ADDR_NOT_PREFIX 255
struct policy_addr {
	uint8_t family;     /* AF_INET or AF_INET6 */
	uint8_t prefix_len; /* 0..32 / 0..128, or POLICY_ADDR_NOT_PREFIX */
	uint8_t lo[16];
	uint8_t hi[16];
	struct policy_loc loc;
};

/* The language's name of an L4 protocol ("tcp", "udp", "sctp", "icmp",
 * "icmpv6"), or NULL for any other number; and back (a name of `len` bytes,
 * not NUL-terminated): the number, or -1. (policy/services.c) */
const char *policy_l4proto_name(uint8_t proto);
int policy_l4proto_by_name(const char *name, size_t len);

/* The host bits of a `bits`-bit address (big-endian bytes) from bit
 * `prefix_len` on: cleared in lo, set in hi (either may be NULL). Returns
 * whether lo had any of them set (an address that is not its prefix's
 * first). The one prefix-to-range loop of hvgate. (policy/model.c) */
bool policy_prefix_fill(uint8_t *lo, uint8_t *hi, size_t prefix_len, size_t bits);

/* The first and last address of `a` (a prefix: its host bits cleared in
 * lo, set in hi; a range: lo and hi as they are). 16 bytes each, v4 in the
 * first 4. (policy/model.c) */
void policy_addr_bounds(const struct policy_addr *a, uint8_t lo[16], uint8_t hi[16]);
/* Whether x and y (of one family) share an address; whether `outer` holds
 * every address of `inner`. Addresses of two families never do. */
bool policy_addr_overlaps(const struct policy_addr *x, const struct policy_addr *y);
bool policy_addr_contains(const struct policy_addr *outer, const struct policy_addr *inner);

struct policy_addr_list {
	struct policy_addr *v;
	size_t n;
};

struct policy_port_range {
	uint16_t lo, hi; /* host order, inclusive, lo <= hi */
};

/* One protocol term of a service: "tcp port { 80, 443 }", "icmp type
 * echo-request", "udp" (all ports). A service is a list of terms; a rule
 * matches if any term matches. */
struct policy_service_term {
	uint8_t l4proto;                  /* IPPROTO_TCP, _UDP, _SCTP, _ICMP, _ICMPV6 */
	struct policy_port_range *dports; /* empty: any port */
	size_t n_dports;
	uint8_t *icmp_types; /* for ICMP/ICMPv6; empty: any type */
	size_t n_icmp_types;
	struct policy_loc loc;
};

struct policy_service {
	char *name; /* NULL for an inline service */
	struct policy_service_term *terms;
	size_t n_terms;
	struct policy_loc loc;
};

struct policy_tenant {
	char *name;
	uint16_t ct_zone; /* conntrack zone, unique per tenant, >= 1 */
	uint32_t id;      /* 1-based, stable across recompiles of the same text */
	struct policy_loc loc;
};

/* A zone: a set of interfaces. A tenant's segment is a zone with a tenant
 * and the addresses that live behind it (anti-spoofing). */
struct policy_zone {
	char *name;     /* "uplink", or "acme.web" for a tenant's segment */
	char **ifnames; /* a trailing '*' is a wildcard: "tap-*" */
	size_t n_ifnames;
	size_t tenant;                 /* index into policy.tenants, or POLICY_NONE */
	struct policy_addr_list addrs; /* segment addresses; empty for plain zones */
	bool is_vpn;                   /* the interface of a `vpn` block */
	struct policy_loc loc;
};

enum policy_endpoint_kind {
	POLICY_EP_ANY,   /* any */
	POLICY_EP_SELF,  /* the appliance itself (input / output hooks) */
	POLICY_EP_MATCH, /* zones and/or addresses below */
};

/* from/to of a rule. With both zones and addresses, a packet must be in one
 * of the zones AND have one of the addresses. Either list may be empty. */
struct policy_endpoint {
	enum policy_endpoint_kind kind;
	size_t *zones; /* indices into policy.zones */
	size_t n_zones;
	struct policy_addr_list addrs;
	struct policy_loc loc;
};

enum policy_action {
	POLICY_PASS,
	POLICY_BLOCK,  /* drop silently */
	POLICY_REJECT, /* tcp reset / icmp(v6) unreachable */
};

enum policy_rate_unit { POLICY_PER_SECOND, POLICY_PER_MINUTE, POLICY_PER_HOUR };

/* What a match of an `inspect` block looks at (docs/policy-language.md). */
enum policy_inspect_field {
	POLICY_INSPECT_CONTENT,   /* the stream's or datagram's bytes */
	POLICY_INSPECT_TLS_SNI,   /* tls.sni: the ClientHello's server name */
	POLICY_INSPECT_HTTP_HOST, /* http.host: a request's host */
	POLICY_INSPECT_HTTP_PATH, /* http.path: a request's decoded path */
	POLICY_INSPECT_DNS_QNAME, /* dns.qname: a query's question name */
};

/* A match of an `inspect` block (fast path, issue "inspection"): a PCRE2
 * pattern (regex) or, for a field, a name or path (name) to compare. */
struct policy_inspect_match {
	enum policy_action action;
	enum policy_inspect_field field;
	char *regex; /* PCRE2 pattern text, flags folded into (?i) etc.; NULL: name */
	char *name;  /* lowercase, no trailing dot (a path: as written); NULL: regex */
	bool suffix; /* name was written "*.NAME": names ending in ".NAME" */
	bool log;
	char *log_prefix;
	struct policy_loc loc;
};

struct policy_rule {
	enum policy_action action;
	struct policy_endpoint from, to;
	struct policy_service_term *services; /* flattened; empty: any */
	size_t n_services;
	bool log;
	char *log_prefix; /* NULL: the rule id is the prefix */
	bool has_limit;
	uint32_t limit_rate;
	enum policy_rate_unit limit_unit;
	uint32_t limit_burst; /* packets; 0: nft default */
	bool stateless;       /* `no state`: do not rely on conntrack */
	struct policy_inspect_match *inspect;
	size_t n_inspect;
	size_t tenant; /* the tenant whose scope holds the rule, or POLICY_NONE */
	/* The rule's label (`label "web-in"`) when it has one, else
	 * "FILE:LINE:HASH", HASH = 6 hex digits of FNV-1a over the rule's text
	 * with whitespace collapsed. Stable while the rule's text and line do
	 * not change (a label: while the label stays); names the rule in
	 * counters, metrics and logs (the kernel has kernel_id). */
	char id[96];
	/* The rule's name in the kernel (its rule comment, and its NFLOG
	 * prefix): the label, else "FILE:HASH", "FILE:HASH#N" for the Nth rule
	 * of that file with the same text. Without the line: a rule inserted or
	 * removed above it leaves its kernel rules, and their counters, as they
	 * are. The daemon maps it back to `id` (counters, logs, `show rules`). */
	char kernel_id[96];
	/* "FILE:LINE:HASH" always: where the rule is, for compare. */
	char where[96];
	bool labelled;
	struct policy_loc loc;
	/* Bytes of the rule's text from loc (it may span lines): policy_source_text(). */
	uint32_t text_len;
};

/* `default from A to B block`: what a zone pair does when no rule matched. */
struct policy_default {
	size_t from_zone; /* or POLICY_NONE: any */
	size_t to_zone;   /* or POLICY_NONE: any */
	enum policy_action action;
	bool log;
	/* The tenant whose scope holds the default, or POLICY_NONE. A tenant's
	 * default without zones applies to traffic from or to its segments. */
	size_t tenant;
	struct policy_loc loc;
};

enum policy_nat_kind {
	POLICY_NAT_MASQUERADE, /* out via zone */
	POLICY_NAT_SNAT,       /* out via zone to address/pool [port range] */
	POLICY_NAT_DNAT,       /* port forward: in via zone, proto, ports -> addr:port */
	POLICY_NAT_NETMAP,     /* 1:1 prefix <-> prefix */
};

/* NETMAP: match_src holds the inside prefix, to_addr (and public_addr) the
 * outside prefix of the same length. */
struct policy_nat {
	enum policy_nat_kind kind;
	size_t tenant;                        /* or POLICY_NONE */
	size_t via_zone;                      /* the outside zone */
	struct policy_addr_list match_src;    /* empty: the tenant's segments */
	uint8_t l4proto;                      /* DNAT: IPPROTO_TCP/UDP; 0 otherwise */
	struct policy_port_range match_ports; /* DNAT: outside ports */
	struct policy_addr to_addr;           /* SNAT pool / DNAT target / NETMAP */
	struct policy_addr public_addr;       /* DNAT/NETMAP outside address, if given */
	bool has_public_addr;
	struct policy_port_range to_ports; /* SNAT port range / DNAT target ports; 0,0 = keep */
	char id[96];
	struct policy_loc loc;
	uint32_t text_len; /* as for a rule */
};

struct policy_vpn_peer {
	char *name;
	char *public_key; /* base64 as written */
	char *psk_file;   /* or NULL */
	char *endpoint;   /* "host:port" or NULL */
	struct policy_addr_list allowed_ips;
	uint16_t keepalive; /* seconds; 0 off */
	struct policy_loc loc;
};

struct policy_vpn {
	char *ifname;
	uint16_t listen_port;
	char *private_key_file;
	struct policy_addr_list addresses;
	struct policy_vpn_peer *peers;
	size_t n_peers;
	size_t tenant; /* or POLICY_NONE */
	size_t zone;   /* the zone that stands for the VPN interface */
	struct policy_loc loc;
};

struct policy {
	struct policy_tenant *tenants;
	size_t n_tenants;
	struct policy_zone *zones;
	size_t n_zones;
	struct policy_service *services;
	size_t n_services;
	struct policy_rule *rules; /* in first-match order */
	size_t n_rules;
	struct policy_default *defaults;
	size_t n_defaults;
	enum policy_action default_action; /* `default block` (the default) */
	struct policy_nat *nats;
	size_t n_nats;
	struct policy_vpn *vpns;
	size_t n_vpns;
};

/* Whether `ep` names zone `zone` (`from lan`, `to { a, b }`); `any`, `self`
 * and bare addresses name none. (policy/model.c) */
bool policy_ep_names_zone(const struct policy_endpoint *ep, size_t zone);

/* Zone-pair slots: the zones by index, and slots of the caller's own for
 * the rest (the appliance, unzoned traffic) numbered n_zones and above.
 * Which slots endpoint `ep` of rule `r` stands for (docs/policy-language.md
 * §7, §12 "Tenant isolation"): `self` the slot `self`; zones those zones;
 * `any` and bare addresses every zone except other tenants' segments, and
 * the appliance. */
bool policy_ep_covers_slot(const struct policy *p, const struct policy_endpoint *ep,
			   const struct policy_rule *r, size_t slot, size_t self);
/* Tenant isolation: traffic between segments of two different tenants is
 * governed only by rules that name both zones; a tenant's rules govern only
 * traffic that touches one of its segments. Whether it lets `r` govern
 * slot a to slot b. */
bool policy_rule_isolation_allows(const struct policy *p, const struct policy_rule *r, size_t a,
				  size_t b);

/* The `default` that decides traffic from zone `a` to zone `b` (zone
 * indices; ta and tb their tenants, POLICY_NONE for none): the most specific
 * `default from A to B` (both zones, then from only, then to only, then
 * any/any; a tenant's own default before a global one of the same shape;
 * the first of equals). A tenant's default applies only to traffic from or
 * to its segments; between two tenants only a default naming both zones
 * applies. Its index, or POLICY_NONE (the caller's fallback: the global
 * default, or block between tenants). */
size_t policy_default_find(const struct policy *p, size_t a, size_t b, size_t ta, size_t tb);

void policy_free(struct policy *p);

#endif
