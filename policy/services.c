/* Built-in service, port, protocol and ICMP type names of the policy
 * language. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "policy/ast.h"
#include "policy/model.h"

/* Port numbers: the IANA service name and port number registry, as in
 * /etc/services of netbase. */
static const struct {
	const char *name;
	uint16_t port;
} port_names[] = {
	{ "ftp", 21 },    { "ssh", 22 },        { "telnet", 23 },     { "smtp", 25 },
	{ "dns", 53 },    { "domain", 53 },     { "http", 80 },       { "pop3", 110 },
	{ "ntp", 123 },   { "imap", 143 },      { "snmp", 161 },      { "bgp", 179 },
	{ "ldap", 389 },  { "https", 443 },     { "syslog", 514 },    { "submission", 587 },
	{ "ldaps", 636 }, { "imaps", 993 },     { "pop3s", 995 },     { "mysql", 3306 },
	{ "rdp", 3389 },  { "postgres", 5432 }, { "http-alt", 8080 },
};

/* ICMP types: RFC 792 and the IANA ICMP parameters registry; the names are
 * those of nft(8) "ICMP TYPE TYPE". */
static const struct {
	const char *name;
	uint8_t type;
} icmp_names[] = {
	{ "echo-reply", 0 },           { "destination-unreachable", 3 },
	{ "source-quench", 4 },        { "redirect", 5 },
	{ "echo-request", 8 },         { "router-advertisement", 9 },
	{ "router-solicitation", 10 }, { "time-exceeded", 11 },
	{ "parameter-problem", 12 },   { "timestamp-request", 13 },
	{ "timestamp-reply", 14 },     { "info-request", 15 },
	{ "info-reply", 16 },          { "address-mask-request", 17 },
	{ "address-mask-reply", 18 },
};

/* ICMPv6 types: RFC 4443, RFC 4861 (neighbour discovery), RFC 2710 and
 * RFC 3810 (MLD); names of nft(8) "ICMPV6 TYPE TYPE". */
static const struct {
	const char *name;
	uint8_t type;
} icmpv6_names[] = {
	{ "destination-unreachable", 1 }, { "packet-too-big", 2 },
	{ "time-exceeded", 3 },           { "parameter-problem", 4 },
	{ "echo-request", 128 },          { "echo-reply", 129 },
	{ "mld-listener-query", 130 },    { "mld-listener-report", 131 },
	{ "mld-listener-done", 132 },     { "mld-listener-reduction", 132 },
	{ "nd-router-solicit", 133 },     { "nd-router-advert", 134 },
	{ "nd-neighbor-solicit", 135 },   { "nd-neighbor-advert", 136 },
	{ "nd-redirect", 137 },           { "router-renumbering", 138 },
	{ "ind-neighbor-solicit", 141 },  { "ind-neighbor-advert", 142 },
	{ "mld2-listener-report", 143 },
};

/* A built-in service is up to this many terms. */
#define BUILTIN_MAX_TERMS 2

struct builtin_term {
	uint8_t l4proto;
	uint16_t port; /* 0: any (or no ports for ICMP) */
	int icmp_type; /* -1: any */
};

static const struct {
	const char *name;
	struct builtin_term terms[BUILTIN_MAX_TERMS];
	size_t n_terms;
} builtin_services[] = {
	{ "ftp", { { IPPROTO_TCP, 21, -1 } }, 1 },
	{ "ssh", { { IPPROTO_TCP, 22, -1 } }, 1 },
	{ "telnet", { { IPPROTO_TCP, 23, -1 } }, 1 },
	{ "smtp", { { IPPROTO_TCP, 25, -1 } }, 1 },
	{ "dns", { { IPPROTO_UDP, 53, -1 }, { IPPROTO_TCP, 53, -1 } }, 2 },
	{ "http", { { IPPROTO_TCP, 80, -1 } }, 1 },
	{ "pop3", { { IPPROTO_TCP, 110, -1 } }, 1 },
	{ "ntp", { { IPPROTO_UDP, 123, -1 } }, 1 },
	{ "imap", { { IPPROTO_TCP, 143, -1 } }, 1 },
	{ "snmp", { { IPPROTO_UDP, 161, -1 } }, 1 },
	{ "bgp", { { IPPROTO_TCP, 179, -1 } }, 1 },
	{ "ldap", { { IPPROTO_TCP, 389, -1 }, { IPPROTO_UDP, 389, -1 } }, 2 },
	{ "https", { { IPPROTO_TCP, 443, -1 } }, 1 },
	{ "syslog", { { IPPROTO_UDP, 514, -1 } }, 1 },
	{ "submission", { { IPPROTO_TCP, 587, -1 } }, 1 },
	{ "ldaps", { { IPPROTO_TCP, 636, -1 } }, 1 },
	{ "imaps", { { IPPROTO_TCP, 993, -1 } }, 1 },
	{ "pop3s", { { IPPROTO_TCP, 995, -1 } }, 1 },
	{ "mysql", { { IPPROTO_TCP, 3306, -1 } }, 1 },
	{ "rdp", { { IPPROTO_TCP, 3389, -1 } }, 1 },
	{ "postgres", { { IPPROTO_TCP, 5432, -1 } }, 1 },
	/* echo-request: type 8 in ICMP (RFC 792), 128 in ICMPv6 (RFC 4443) */
	{ "ping", { { IPPROTO_ICMP, 0, 8 }, { IPPROTO_ICMPV6, 0, 128 } }, 2 },
	{ "icmp", { { IPPROTO_ICMP, 0, -1 } }, 1 },
	{ "icmpv6", { { IPPROTO_ICMPV6, 0, -1 } }, 1 },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool name_eq(const char *table_name, const char *name, size_t len)
{
	return strlen(table_name) == len && !memcmp(table_name, name, len);
}

/* The protocols the language names (`tcp port 22`, `icmpv6 type ...`). */
static const struct {
	const char *name;
	uint8_t proto;
} l4proto_names[] = {
	{ "tcp", IPPROTO_TCP },   { "udp", IPPROTO_UDP },       { "sctp", IPPROTO_SCTP },
	{ "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 },
};

const char *policy_l4proto_name(uint8_t proto)
{
	for (size_t i = 0; i < ARRAY_SIZE(l4proto_names); i++)
		if (l4proto_names[i].proto == proto)
			return l4proto_names[i].name;
	return NULL;
}

int policy_l4proto_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(l4proto_names); i++)
		if (name_eq(l4proto_names[i].name, name, len))
			return l4proto_names[i].proto;
	return -1;
}

int policy_port_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(port_names); i++)
		if (name_eq(port_names[i].name, name, len))
			return port_names[i].port;
	return -1;
}

int policy_icmp_type_by_name(uint8_t l4proto, const char *name, size_t len)
{
	if (l4proto == IPPROTO_ICMP) {
		for (size_t i = 0; i < ARRAY_SIZE(icmp_names); i++)
			if (name_eq(icmp_names[i].name, name, len))
				return icmp_names[i].type;
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(icmpv6_names); i++)
			if (name_eq(icmpv6_names[i].name, name, len))
				return icmpv6_names[i].type;
	}
	return -1;
}

static int make_term(const struct builtin_term *b, struct policy_service_term *t)
{
	memset(t, 0, sizeof(*t));
	t->l4proto = b->l4proto;
	if (b->port) {
		t->dports = malloc(sizeof(*t->dports));
		if (!t->dports)
			return -1;
		t->dports[0].lo = t->dports[0].hi = b->port;
		t->n_dports = 1;
	}
	if (b->icmp_type >= 0) {
		t->icmp_types = malloc(1);
		if (!t->icmp_types)
			return -1;
		t->icmp_types[0] = (uint8_t)b->icmp_type;
		t->n_icmp_types = 1;
	}
	return 0;
}

int policy_builtin_service(const char *name, struct policy_service_term **terms, size_t *n)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin_services); i++) {
		if (strcmp(builtin_services[i].name, name))
			continue;
		size_t nt = builtin_services[i].n_terms;
		struct policy_service_term *v = calloc(nt, sizeof(*v));
		if (!v)
			return -1;
		for (size_t j = 0; j < nt; j++) {
			if (make_term(&builtin_services[i].terms[j], &v[j])) {
				for (size_t k = 0; k <= j; k++)
					policy_service_term_free(&v[k]);
				free(v);
				return -1;
			}
		}
		*terms = v;
		*n = nt;
		return 1;
	}
	return 0;
}

const char *policy_builtin_service_name(size_t i)
{
	return i < ARRAY_SIZE(builtin_services) ? builtin_services[i].name : NULL;
}
