/* The syntax tree of the policy language, private to the front end.
 *
 * The parser fills one struct policy_ast for a whole compilation (includes
 * append to the same tree at the point where they occur, so rule order is
 * source order); the checker resolves it into a struct policy. Every
 * statement records the scope it was written in: the index of its tenant in
 * `tenants`, or POLICY_NONE for the global scope.
 *
 * Names are malloc'd copies; everything is freed by policy_ast_free().
 */
#ifndef HVGATE_POLICY_AST_H
#define HVGATE_POLICY_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/model.h"

/* One member of an endpoint or address list. */
enum policy_ast_ep_kind {
	POLICY_AST_EP_ANY,
	POLICY_AST_EP_SELF,
	POLICY_AST_EP_NAME, /* a zone or segment ("web", "acme.web") */
	POLICY_AST_EP_VAR,  /* $define */
	POLICY_AST_EP_ADDR, /* a literal, already parsed */
};

struct policy_ast_ep_item {
	enum policy_ast_ep_kind kind;
	char *name; /* NAME, VAR */
	struct policy_addr addr;
	struct policy_loc loc;
};

struct policy_ast_ep {
	struct policy_ast_ep_item *v;
	size_t n, cap;
	bool present; /* written in the source at all */
	struct policy_loc loc;
};

enum policy_ast_svc_kind {
	POLICY_AST_SVC_NAME, /* a defined or built-in service */
	POLICY_AST_SVC_TERM, /* an inline term "tcp port 80" */
};

struct policy_ast_svc_item {
	enum policy_ast_svc_kind kind;
	char *name;
	struct policy_service_term term; /* owns dports and icmp_types */
	struct policy_loc loc;
};

struct policy_ast_svc {
	struct policy_ast_svc_item *v;
	size_t n, cap;
	bool present;
	struct policy_loc loc;
};

struct policy_ast_define {
	char *name;
	struct policy_ast_ep value;
	size_t scope;
	struct policy_loc loc;
};

struct policy_ast_service {
	char *name;
	struct policy_ast_svc value;
	size_t scope;
	struct policy_loc loc;
};

struct policy_ast_zone {
	char *name; /* as written; the checker prefixes segments with "TENANT." */
	char **ifnames;
	size_t n_ifnames;
	struct policy_ast_ep addrs; /* segments */
	bool is_segment;
	bool broken; /* syntax error inside: its contents are incomplete */
	size_t scope;
	struct policy_loc loc;
};

struct policy_ast_tenant {
	char *name;
	struct policy_loc loc;
};

struct policy_ast_rule {
	enum policy_action action;
	struct policy_ast_ep from, to;
	struct policy_ast_svc svc;
	bool log;
	char *log_prefix;
	char *label; /* `label "web-in"`; NULL: none */
	struct policy_loc label_loc;
	bool has_limit;
	uint32_t limit_rate;
	enum policy_rate_unit limit_unit;
	uint32_t limit_burst;
	struct policy_loc limit_loc;
	bool stateless;
	struct policy_inspect_match *inspect;
	size_t n_inspect, cap_inspect;
	size_t scope;
	uint32_t text_hash; /* FNV-1a of the statement's text, whitespace collapsed */
	uint32_t text_len;  /* bytes of the statement's text, from loc to its last token */
	bool broken;        /* had a value error while parsing: checker skips it */
	struct policy_loc loc;
};

struct policy_ast_default {
	char *from, *to; /* NULL: any */
	struct policy_loc from_loc, to_loc;
	enum policy_action action;
	bool log;
	size_t scope;
	bool broken;
	struct policy_loc loc;
};

struct policy_ast_nat {
	enum policy_nat_kind kind;
	char *via; /* the outside zone */
	struct policy_loc via_loc;
	struct policy_ast_ep from; /* masquerade/snat: source match; netmap: inside prefix */
	uint8_t l4proto;
	struct policy_port_range match_ports;
	struct policy_addr to_addr;
	bool has_public_addr;
	struct policy_addr public_addr;
	struct policy_port_range to_ports;
	size_t scope;
	uint32_t text_hash;
	uint32_t text_len; /* as for a rule */
	bool broken;
	struct policy_loc loc;
};

struct policy_ast_peer {
	char *name;
	char *public_key;
	char *psk_file;
	char *endpoint;
	struct policy_ast_ep allowed_ips;
	uint16_t keepalive;
	struct policy_loc loc;
};

struct policy_ast_vpn {
	char *ifname;
	uint16_t listen_port;
	char *private_key_file;
	struct policy_ast_ep addresses;
	struct policy_ast_peer *peers;
	size_t n_peers, cap_peers;
	size_t scope;
	struct policy_loc loc;
};

struct policy_ast {
	struct policy_ast_tenant *tenants;
	size_t n_tenants, cap_tenants;
	struct policy_ast_define *defines;
	size_t n_defines, cap_defines;
	struct policy_ast_service *services;
	size_t n_services, cap_services;
	struct policy_ast_zone *zones;
	size_t n_zones, cap_zones;
	struct policy_ast_rule *rules;
	size_t n_rules, cap_rules;
	struct policy_ast_default *defaults;
	size_t n_defaults, cap_defaults;
	struct policy_ast_nat *nats;
	size_t n_nats, cap_nats;
	struct policy_ast_vpn *vpns;
	size_t n_vpns, cap_vpns;
	bool has_global_default;
	enum policy_action global_default;
	struct policy_loc global_default_loc;
};

void policy_ast_init(struct policy_ast *a);
void policy_ast_free(struct policy_ast *a);

/* Grows a (v, n, cap) array by one zeroed element and returns it, or NULL
 * on ENOMEM. */
void *policy_ast_grow(void **v, size_t *n, size_t *cap, size_t elem);
#define POLICY_AST_PUSH(arr, n, cap)                                                               \
	((__typeof__(arr))policy_ast_grow((void **)&(arr), &(n), &(cap), sizeof(*(arr))))

void policy_ast_ep_free(struct policy_ast_ep *e);
void policy_ast_svc_free(struct policy_ast_svc *s);
void policy_service_term_free(struct policy_service_term *t);

/* Built-in names (policy/services.c). */

/* A well-known port name ("ssh", "https") as usable in a port list, or -1. */
int policy_port_by_name(const char *name, size_t len);

/* An ICMP (l4proto IPPROTO_ICMP) or ICMPv6 type name as nft spells it
 * ("echo-request", "nd-neighbor-solicit"), or -1. */
int policy_icmp_type_by_name(uint8_t l4proto, const char *name, size_t len);

/* The terms of a built-in service ("ssh", "dns", "ping"). Returns 1 and
 * malloc'd terms (free each with policy_service_term_free, then the array),
 * 0 if there is no such built-in, -1 on ENOMEM. */
int policy_builtin_service(const char *name, struct policy_service_term **terms, size_t *n);

/* The name of the i-th built-in service (for suggestions), NULL past the
 * last. */
const char *policy_builtin_service_name(size_t i);

#endif
