/* The parser and the model it leads to: every construct of the language
 * lands in the right fields of struct policy. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "policy/parser.h"
#include "policy/policy.h"
#include "tests/lib/checkmain.h"

static struct policy *load_ok(const char *text, struct policy_diags *d)
{
	policy_diags_init(d);
	struct policy *p = policy_load_text("p.hvp", text, strlen(text), NULL, d);
	if (!p)
		policy_diags_print(d, stderr);
	ck_assert_ptr_nonnull(p);
	return p;
}

static size_t zone_index(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_zones; i++)
		if (!strcmp(p->zones[i].name, name))
			return i;
	ck_abort_msg("no zone %s", name);
	return POLICY_NONE;
}

static void assert_v4(const struct policy_addr *a, const char *lo, const char *hi, int plen)
{
	uint8_t l[4], h[4];
	ck_assert_int_eq(a->family, AF_INET);
	ck_assert_int_eq(inet_pton(AF_INET, lo, l), 1);
	ck_assert_int_eq(inet_pton(AF_INET, hi, h), 1);
	ck_assert(!memcmp(a->lo, l, 4));
	ck_assert(!memcmp(a->hi, h, 4));
	ck_assert_int_eq(a->prefix_len, plen);
}

static const char *const zones_text = "zone uplink { interface \"eth0\" }\n"
				      "zone guests { interface { \"tap-*\", \"vif7\" } }\n"
				      "zone lan { interface \"eth1\" }\n";

START_TEST(test_zones_and_defines)
{
	char text[1024];
	snprintf(
	    text, sizeof(text),
	    "%sdefine other = 198.51.100.0/24\n"
	    "define admin = { 192.0.2.0/24, 2001:db8:1::/48, 198.51.100.10-198.51.100.20, $other }\n"
	    "pass from $admin to self service ssh\n",
	    zones_text);
	struct policy_diags d;
	struct policy *p = load_ok(text, &d);
	ck_assert_uint_eq(p->n_zones, 3);
	const struct policy_zone *g = &p->zones[zone_index(p, "guests")];
	ck_assert_uint_eq(g->n_ifnames, 2);
	ck_assert_str_eq(g->ifnames[0], "tap-*");
	ck_assert_str_eq(g->ifnames[1], "vif7");
	ck_assert_uint_eq(g->tenant, POLICY_NONE);
	ck_assert_uint_eq(p->n_rules, 1);
	const struct policy_rule *r = &p->rules[0];
	ck_assert_int_eq(r->from.kind, POLICY_EP_MATCH);
	ck_assert_int_eq(r->to.kind, POLICY_EP_SELF);
	ck_assert_uint_eq(r->from.n_zones, 0);
	ck_assert_uint_eq(r->from.addrs.n, 4);
	/* defines are sorted: v4 by address, then v6 */
	assert_v4(&r->from.addrs.v[0], "192.0.2.0", "192.0.2.255", 24);
	assert_v4(&r->from.addrs.v[1], "198.51.100.0", "198.51.100.255", 24);
	assert_v4(&r->from.addrs.v[2], "198.51.100.10", "198.51.100.20", POLICY_ADDR_NOT_PREFIX);
	ck_assert_int_eq(r->from.addrs.v[3].family, AF_INET6);
	ck_assert_int_eq(r->from.addrs.v[3].prefix_len, 48);
	ck_assert_uint_eq(r->n_services, 1);
	ck_assert_int_eq(r->services[0].l4proto, IPPROTO_TCP);
	ck_assert_uint_eq(r->services[0].n_dports, 1);
	ck_assert_uint_eq(r->services[0].dports[0].lo, 22);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_rule_options)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "%sservice web = tcp port { 80, 443 }\n"
		 "pass from guests to uplink service web limit 10/minute burst 5 log no state\n"
		 "block from any to 203.0.113.0/24 log \"bogon\"\n"
		 "reject from guests to { lan, 10.9.0.0/16 } service tcp port 23 counter\n"
		 "pass from any to lan service web inspect {\n"
		 "  block content /union\\s+select/i log \"sqli\"\n"
		 "  pass content /ok/\n"
		 "}\n",
		 zones_text);
	struct policy_diags d;
	struct policy *p = load_ok(text, &d);
	ck_assert_uint_eq(p->n_rules, 4);
	const struct policy_rule *r = &p->rules[0];
	ck_assert_int_eq(r->action, POLICY_PASS);
	ck_assert_uint_eq(r->from.n_zones, 1);
	ck_assert_uint_eq(r->from.zones[0], zone_index(p, "guests"));
	ck_assert_uint_eq(r->to.zones[0], zone_index(p, "uplink"));
	ck_assert_uint_eq(r->n_services, 1);
	ck_assert_uint_eq(r->services[0].n_dports, 2);
	ck_assert_uint_eq(r->services[0].dports[1].lo, 443);
	ck_assert(r->has_limit);
	ck_assert_uint_eq(r->limit_rate, 10);
	ck_assert_int_eq(r->limit_unit, POLICY_PER_MINUTE);
	ck_assert_uint_eq(r->limit_burst, 5);
	ck_assert(r->log);
	ck_assert_ptr_null(r->log_prefix);
	ck_assert(r->stateless);
	r = &p->rules[1];
	ck_assert_int_eq(r->action, POLICY_BLOCK);
	ck_assert_int_eq(r->from.kind, POLICY_EP_ANY);
	ck_assert_str_eq(r->log_prefix, "bogon");
	ck_assert(!r->stateless);
	ck_assert_uint_eq(r->n_services, 0);
	r = &p->rules[2];
	ck_assert_int_eq(r->action, POLICY_REJECT);
	ck_assert_uint_eq(r->to.n_zones, 1);
	ck_assert_uint_eq(r->to.addrs.n, 1);
	r = &p->rules[3];
	ck_assert_uint_eq(r->n_inspect, 2);
	ck_assert_int_eq(r->inspect[0].action, POLICY_BLOCK);
	ck_assert_str_eq(r->inspect[0].regex, "(?i)union\\s+select");
	ck_assert(r->inspect[0].log);
	ck_assert_str_eq(r->inspect[0].log_prefix, "sqli");
	ck_assert_str_eq(r->inspect[1].regex, "ok");
	ck_assert_int_eq(r->inspect[1].action, POLICY_PASS);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_services_builtin_and_icmp)
{
	struct policy_diags d;
	struct policy *p =
	    load_ok("service mgmt = { ssh, tcp port 8000-8100, icmp type echo-request,"
		    " icmpv6 type { echo-request, 128, nd-neighbor-solicit } }\n"
		    "service dns2 = { dns, tcp port https }\n"
		    "pass service mgmt\npass to 10.0.0.0/8 service { dns2, ping }\n",
		    &d);
	ck_assert_uint_eq(p->n_services, 2);
	ck_assert_str_eq(p->services[0].name, "mgmt");
	const struct policy_rule *r = &p->rules[0];
	ck_assert_uint_eq(r->n_services, 4);
	ck_assert_uint_eq(r->services[1].dports[0].lo, 8000);
	ck_assert_uint_eq(r->services[1].dports[0].hi, 8100);
	ck_assert_int_eq(r->services[2].l4proto, IPPROTO_ICMP);
	ck_assert_uint_eq(r->services[2].icmp_types[0], 8);
	ck_assert_int_eq(r->services[3].l4proto, IPPROTO_ICMPV6);
	ck_assert_uint_eq(r->services[3].n_icmp_types, 3);
	ck_assert_uint_eq(r->services[3].icmp_types[2], 135);
	r = &p->rules[1];
	ck_assert_uint_eq(r->n_services, 5); /* dns: udp+tcp, https, ping: icmp+icmpv6 */
	ck_assert_int_eq(r->services[0].l4proto, IPPROTO_UDP);
	ck_assert_uint_eq(r->services[2].dports[0].lo, 443);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_rule_id)
{
	struct policy_diags d;
	struct policy *p = load_ok("\npass   from 10.0.0.0/8\n\t to   any service ssh # why\n"
				   "pass from 10.0.0.0/8 to any\n",
				   &d);
	/* FNV-1a of the rule's text with whitespace collapsed, comment excluded */
	char want[96];
	snprintf(want, sizeof(want), "p.hvp:2:%06x",
		 policy_text_hash("pass from 10.0.0.0/8 to any service ssh", 39) & 0xffffff);
	ck_assert_str_eq(p->rules[0].id, want);
	ck_assert_uint_eq(policy_text_hash(" a \n\t b ", 8), policy_text_hash("a b", 3));
	ck_assert_uint_ne(policy_text_hash("ab", 2), policy_text_hash("a b", 3));
	/* FNV-1a 32 of "a" (draft-eastlake-fnv test vectors) */
	ck_assert_uint_eq(policy_text_hash("a", 1), 0xe40c292cu);
	ck_assert_str_ne(p->rules[0].id, p->rules[1].id);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_defaults)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "%sdefault pass\ndefault from guests to uplink pass log\n"
		 "default to lan reject\n",
		 zones_text);
	struct policy_diags d;
	struct policy *p = load_ok(text, &d);
	ck_assert_int_eq(p->default_action, POLICY_PASS);
	ck_assert_uint_eq(p->n_defaults, 2);
	ck_assert_uint_eq(p->defaults[0].from_zone, zone_index(p, "guests"));
	ck_assert_uint_eq(p->defaults[0].to_zone, zone_index(p, "uplink"));
	ck_assert(p->defaults[0].log);
	ck_assert_uint_eq(p->defaults[1].from_zone, POLICY_NONE);
	ck_assert_int_eq(p->defaults[1].action, POLICY_REJECT);
	policy_free(p);
	policy_diags_free(&d);
	p = load_ok("pass\n", &d);
	ck_assert_int_eq(p->default_action, POLICY_BLOCK);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

static const char *const tenant_text =
    "zone uplink { interface \"eth0\" }\n"
    "define office = 203.0.113.0/24\n"
    "tenant acme {\n"
    "  segment web { interface \"tap-acme-web\" address 10.0.1.0/24 }\n"
    "  segment db  { interface \"tap-acme-db\"  address { 10.0.2.0/24, fd00:2::/64 } }\n"
    "  define office = 192.0.2.0/24\n"
    "  pass from web to db service tcp port 5432\n"
    "  pass from $office to web service https\n"
    "  default block log\n"
    "  nat masquerade out via uplink\n"
    "  nat snat from web out via uplink to 198.51.100.7 port 20000-29999\n"
    "  nat forward uplink tcp port 8080 to 10.0.1.10 port 80\n"
    "  nat forward uplink tcp port 8000-8009 on 198.51.100.9 to 10.0.1.20\n"
    "  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via uplink\n"
    "}\n"
    "tenant globex {\n"
    "  segment web { interface \"tap-globex\" address 10.0.1.0/24 }\n"
    "  pass from web to uplink service { http, https }\n"
    "}\n"
    "pass from $office to acme.web service ssh\n"
    "vpn wg0 {\n"
    "  listen-port 51820\n"
    "  private-key-file \"/etc/hvgate/wg0.key\"\n"
    "  address 10.99.0.1/24\n"
    "  peer branch1 { public-key \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\" preshared-key-file \"/etc/hvgate/b1.psk\"\n"
    "     endpoint \"192.0.2.50:51820\" allowed-ips { 10.99.0.2/32, 172.16.0.0/16 } keepalive 25 }\n"
    "}\n";

START_TEST(test_tenants)
{
	struct policy_diags d;
	struct policy *p = load_ok(tenant_text, &d);
	ck_assert_uint_eq(p->n_tenants, 2);
	ck_assert_str_eq(p->tenants[1].name, "globex");
	ck_assert_uint_eq(p->tenants[0].ct_zone, 1);
	ck_assert_uint_eq(p->tenants[1].ct_zone, 2);
	ck_assert_uint_eq(p->tenants[1].id, 2);
	size_t web = zone_index(p, "acme.web"), db = zone_index(p, "acme.db");
	ck_assert_uint_eq(p->zones[web].tenant, 0);
	ck_assert_uint_eq(p->zones[db].addrs.n, 2);
	ck_assert_uint_eq(p->zones[zone_index(p, "globex.web")].tenant, 1);
	const struct policy_rule *r = &p->rules[0];
	ck_assert_uint_eq(r->tenant, 0);
	ck_assert_uint_eq(r->from.zones[0], web);
	ck_assert_uint_eq(r->to.zones[0], db);
	/* the tenant's own define hides the global one */
	assert_v4(&p->rules[1].from.addrs.v[0], "192.0.2.0", "192.0.2.255", 24);
	/* globally, $office is the global one and acme.web names the segment */
	r = &p->rules[3];
	ck_assert_uint_eq(r->tenant, POLICY_NONE);
	assert_v4(&r->from.addrs.v[0], "203.0.113.0", "203.0.113.255", 24);
	ck_assert_uint_eq(r->to.zones[0], web);
	ck_assert_uint_eq(p->n_defaults, 1);
	ck_assert_uint_eq(p->defaults[0].tenant, 0);
	ck_assert_uint_eq(p->defaults[0].from_zone, POLICY_NONE);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_nat)
{
	struct policy_diags d;
	struct policy *p = load_ok(tenant_text, &d);
	size_t uplink = zone_index(p, "uplink");
	ck_assert_uint_eq(p->n_nats, 5);
	const struct policy_nat *n = &p->nats[0];
	ck_assert_int_eq(n->kind, POLICY_NAT_MASQUERADE);
	ck_assert_uint_eq(n->tenant, 0);
	ck_assert_uint_eq(n->via_zone, uplink);
	ck_assert_uint_eq(n->match_src.n, 0);
	n = &p->nats[1];
	ck_assert_int_eq(n->kind, POLICY_NAT_SNAT);
	ck_assert_uint_eq(n->match_src.n, 1);
	assert_v4(&n->match_src.v[0], "10.0.1.0", "10.0.1.255", 24);
	assert_v4(&n->to_addr, "198.51.100.7", "198.51.100.7", 32);
	ck_assert_uint_eq(n->to_ports.lo, 20000);
	ck_assert_uint_eq(n->to_ports.hi, 29999);
	n = &p->nats[2];
	ck_assert_int_eq(n->kind, POLICY_NAT_DNAT);
	ck_assert_int_eq(n->l4proto, IPPROTO_TCP);
	ck_assert_uint_eq(n->match_ports.lo, 8080);
	ck_assert_uint_eq(n->match_ports.hi, 8080);
	assert_v4(&n->to_addr, "10.0.1.10", "10.0.1.10", 32);
	ck_assert_uint_eq(n->to_ports.lo, 80);
	ck_assert(!n->has_public_addr);
	n = &p->nats[3];
	ck_assert_uint_eq(n->match_ports.hi, 8009);
	ck_assert(n->has_public_addr);
	assert_v4(&n->public_addr, "198.51.100.9", "198.51.100.9", 32);
	ck_assert_uint_eq(n->to_ports.lo, 0);
	n = &p->nats[4];
	ck_assert_int_eq(n->kind, POLICY_NAT_NETMAP);
	assert_v4(&n->match_src.v[0], "10.0.1.0", "10.0.1.255", 24);
	assert_v4(&n->to_addr, "198.51.100.0", "198.51.100.255", 24);
	ck_assert(strstr(n->id, "p.hvp:14:") == n->id);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_vpn)
{
	struct policy_diags d;
	struct policy *p = load_ok(tenant_text, &d);
	ck_assert_uint_eq(p->n_vpns, 1);
	const struct policy_vpn *v = &p->vpns[0];
	ck_assert_str_eq(v->ifname, "wg0");
	ck_assert_uint_eq(v->listen_port, 51820);
	ck_assert_str_eq(v->private_key_file, "/etc/hvgate/wg0.key");
	ck_assert_uint_eq(v->addresses.n, 1);
	ck_assert_int_eq(v->addresses.v[0].prefix_len, 24); /* interface address keeps host bits */
	ck_assert_uint_eq(v->n_peers, 1);
	ck_assert_str_eq(v->peers[0].name, "branch1");
	ck_assert_str_eq(v->peers[0].public_key, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=");
	ck_assert_str_eq(v->peers[0].psk_file, "/etc/hvgate/b1.psk");
	ck_assert_str_eq(v->peers[0].endpoint, "192.0.2.50:51820");
	ck_assert_uint_eq(v->peers[0].allowed_ips.n, 2);
	ck_assert_uint_eq(v->peers[0].keepalive, 25);
	ck_assert(p->zones[v->zone].is_vpn);
	ck_assert_str_eq(p->zones[v->zone].name, "wg0");
	ck_assert_str_eq(p->zones[v->zone].ifnames[0], "wg0");
	ck_assert_uint_eq(v->tenant, POLICY_NONE);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_service_name_vs_declaration)
{
	/* `service web` ends a rule when followed by '=' (a declaration) */
	struct policy_diags d;
	struct policy *p = load_ok("pass to 10.0.0.0/8\nservice web = tcp port 80\n"
				   "pass to 192.168.0.0/16 service web\n",
				   &d);
	ck_assert_uint_eq(p->n_rules, 2);
	ck_assert_uint_eq(p->rules[0].n_services, 0);
	ck_assert_uint_eq(p->rules[1].services[0].dports[0].lo, 80);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_inspect_fields)
{
	struct policy_diags d;
	struct policy *p = load_ok("pass to any inspect {\n"
				   "  block tls.sni \"*.Evil.Example.\" log\n"
				   "  pass http.host \"API.example\"\n"
				   "  block http.path /^\\/admin/i\n"
				   "  block dns.qname \"tracker.example\"\n"
				   "  block content /x/\n"
				   "}\n",
				   &d);
	const struct policy_rule *r = &p->rules[0];
	ck_assert_uint_eq(r->n_inspect, 5);
	ck_assert_int_eq(r->inspect[0].field, POLICY_INSPECT_TLS_SNI);
	ck_assert_str_eq(r->inspect[0].name, "evil.example");
	ck_assert(r->inspect[0].suffix);
	ck_assert(r->inspect[0].log);
	ck_assert_ptr_null(r->inspect[0].regex);
	ck_assert_int_eq(r->inspect[1].field, POLICY_INSPECT_HTTP_HOST);
	ck_assert_str_eq(r->inspect[1].name, "api.example");
	ck_assert(!r->inspect[1].suffix);
	ck_assert_int_eq(r->inspect[1].action, POLICY_PASS);
	ck_assert_int_eq(r->inspect[2].field, POLICY_INSPECT_HTTP_PATH);
	ck_assert_str_eq(r->inspect[2].regex, "(?i)^\\/admin");
	ck_assert_ptr_null(r->inspect[2].name);
	ck_assert_int_eq(r->inspect[3].field, POLICY_INSPECT_DNS_QNAME);
	ck_assert_int_eq(r->inspect[4].field, POLICY_INSPECT_CONTENT);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(test_forward_references)
{
	struct policy_diags d;
	struct policy *p = load_ok("pass from lan to $nets service web\n"
				   "zone lan { interface \"eth1\" }\n"
				   "define nets = 10.0.0.0/8\nservice web = tcp port 80\n",
				   &d);
	ck_assert_uint_eq(p->rules[0].from.n_zones, 1);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

/* Malformed policies the front end must refuse, each with its exact first
 * diagnostic. `len` is for texts with a NUL byte (0: strlen). */
struct bad_case {
	const char *text;
	size_t len;
	uint32_t line, col;
	const char *message;
};

#define STATEMENTS                                                                                 \
	"expected a statement (pass, block, reject, define, service, zone, default, "              \
	"tenant, nat, vpn, include)"
#define WITH_NUL(s) s, sizeof(s) - 1

static const struct bad_case bad_cases[] = {
	/* protocol fields of an inspect block: names and paths as the fast
	 * path compares them */
	{ "pass to any inspect { block tls.sni \"a*.b\" }", 0, 1, 37,
	  "tls.sni \"a*.b\": '*' may only be the first label, as in \"*.example.com\"" },
	{ "pass to any inspect { block http.host \"a..b\" }", 0, 1, 39,
	  "http.host \"a..b\": the name has an empty label" },
	{ "pass to any inspect { block dns.qname \"a b\" }", 0, 1, 39,
	  "dns.qname \"a b\": a name holds letters, digits, '-', '_' and '.' only" },
	{ "pass to any inspect { block http.path \"/a//b\" }", 0, 1, 39,
	  "http.path \"/a//b\": the path is compared normalised: write it without '//', '.' or "
	  "'..' segments" },
	{ "pass to any inspect { block http.path \"admin\" }", 0, 1, 39,
	  "http.path \"admin\": a path starts with '/'" },
	{ "pass to any inspect { block dns.qname 42 }", 0, 1, 39,
	  "expected a string \"...\" or a regular expression /.../, found '42'" },
	{ "pass to any inspect { block content \"x\" }", 0, 1, 37,
	  "expected a regular expression /.../, found string" },
	{ "pass to any inspect { block tls.server /x/ }", 0, 1, 29,
	  "expected 'content', 'tls.sni', 'http.host', 'http.path' or 'dns.qname', found "
	  "'tls.server'" },
	{ "pass to any inspect { block tls.sni /(/ }", 0, 1, 39,
	  "invalid regular expression: missing closing parenthesis" },
	/* a NUL, a control character or invalid UTF-8 is never compiled */
	{ WITH_NUL("zone z { interface \"dmz0\0x\" }"), 1, 25, "NUL byte in a string" },
	{ "zone z { interface \"dmz0\\0x\" }", 0, 1, 25,
	  "unknown escape '\\0' in a string (only \\\" and \\\\)" },
	{ "pass log \"a\\nb\"", 0, 1, 12, "unknown escape '\\n' in a string (only \\\" and \\\\)" },
	{ "zone z { interface \"dmz\x01\" }", 0, 1, 24, "control character 0x01 in a string" },
	{ "pass log \"a\tb\"", 0, 1, 12, "control character 0x09 in a string" },
	{ "pass log \"a\x7f\"", 0, 1, 12, "control character 0x7f in a string" },
	{ "pass log \"caf\xc3\"", 0, 1, 14, "invalid UTF-8 in a string" },
	{ "pass log \"\xed\xa0\x80\"", 0, 1, 11, "invalid UTF-8 in a string" }, /* a surrogate */
	{ "pass log \"\xc0\xaf\"", 0, 1, 11, "invalid UTF-8 in a string" },     /* overlong */
	{ "pass to any inspect { block content /a\x01/ }", 0, 1, 39,
	  "control character 0x01 in a regular expression" },
	{ WITH_NUL("# a\0b\npass"), 1, 4, "NUL byte in a comment" },
	{ "# caf\xe9\npass", 0, 1, 6, "invalid UTF-8 in a comment" },
	{ WITH_NUL("pass\0"), 1, 5, "NUL byte in the policy text" },
	{ "pass \xff", 0, 1, 6, "invalid UTF-8 byte 0xff" },
	{ "pass \xc3\xa9", 0, 1, 6, "unexpected character '\xc3\xa9'" },
	/* a stray word is named, pointed at, and a keyword suggested */
	{ "pas from any to any", 0, 1, 1, STATEMENTS ", found 'pas'; did you mean 'pass'?" },
	{ "pass from any\nallow from any", 0, 2, 1,
	  STATEMENTS ", found 'allow'; did you mean 'pass'?" },
	{ "zone z { interface \"eth0\" }\nzoen y { interface \"eth1\" }", 0, 2, 1,
	  STATEMENTS ", found 'zoen'; did you mean 'zone'?" },
	{ "pass from any\n  lgo", 0, 2, 3, STATEMENTS ", found 'lgo'; did you mean 'log'?" },
	{ "zone z {\n  interfce \"eth0\" }", 0, 2, 3,
	  "expected 'interface' or '}', found 'interfce'; did you mean 'interface'?" },
	{ "pass lgo", 0, 1, 6, "unknown option 'lgo'; did you mean 'log'?" },
	{ "pass frobnicate", 0, 1, 6, "unknown option 'frobnicate'" },
	/* a statement cut short before the next one is still reported there */
	{ "pass from lan to\nblock from any", 0, 1, 17,
	  "expected an address, a zone, '$name', 'any' or 'self' at the end of the line" },
	/* names: the nearest declared one */
	{ "zone lan { interface \"eth1\" }\npass from lna", 0, 2, 11,
	  "unknown zone 'lna'; did you mean 'lan'?" },
	{ "define nets = 10.0.0.0/8\npass from $nest", 0, 2, 11,
	  "'$nest' is not defined; did you mean '$nets'?" },
	{ "service web = tcp port 80\npass service wbe", 0, 2, 14,
	  "unknown service 'wbe'; did you mean 'web'?" },
	{ "pass service htps", 0, 1, 14, "unknown service 'htps'; did you mean 'https'?" },
	{ "tenant a { segment web { interface \"t\" address 10.0.0.0/24 } }\npass from a.wbe", 0, 2,
	  11, "unknown zone 'a.wbe'; did you mean 'a.web'?" },
};

#define N_BAD_CASES (sizeof(bad_cases) / sizeof(bad_cases[0]))

START_TEST(test_bad_case)
{
	const struct bad_case *c = &bad_cases[_i];
	size_t len = c->len ? c->len : strlen(c->text);
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("t.hvp", c->text, len, NULL, &d);
	ck_assert_msg(p == NULL, "case %d accepted: %s", _i, c->text);
	ck_assert_uint_ge(d.n, 1);
	ck_assert_int_eq(d.v[0].severity, POLICY_ERROR);
	ck_assert_str_eq(d.v[0].loc.file, "t.hvp");
	ck_assert_msg(d.v[0].loc.line == c->line && d.v[0].loc.col == c->col,
		      "case %d (%s): got %u:%u %s, want %u:%u", _i, c->text, d.v[0].loc.line,
		      d.v[0].loc.col, d.v[0].message, c->line, c->col);
	ck_assert_str_eq(d.v[0].message, c->message);
	policy_diags_free(&d);
}
END_TEST

/* UTF-8 text in strings and comments, and the two escapes, are fine. */
START_TEST(test_utf8_and_escapes_accepted)
{
	struct policy_diags d;
	struct policy *p =
	    load_ok("# caf\xc3\xa9 \xe2\x9c\x93\n"
		    "pass to any log \"caf\xc3\xa9 \xf0\x9f\x94\xa5 \\\"q\\\" \\\\\"\n",
		    &d);
	ck_assert_str_eq(p->rules[0].log_prefix, "caf\xc3\xa9 \xf0\x9f\x94\xa5 \"q\" \\");
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

static size_t count_message(const struct policy_diags *d, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += !strncmp(d->v[i].message, prefix, strlen(prefix));
	return n;
}

/* Shadowed rules and isolation breaches are reported in the same run as
 * errors of other rules, so a broken policy is not fixed in rounds. */
START_TEST(test_shadow_and_isolation_with_other_errors)
{
	const char *text = "zone lan { interface \"eth1\" }\n"
			   "pass from 10.0.0.0/8 to any\n"
			   "block from 10.1.0.0/16 to any\n" /* 3: shadowed */
			   "pass from lan to nowhere\n"      /* 4: unknown zone */
			   "tenant a { segment web { interface \"ta\" address 10.0.1.0/24 }\n"
			   "  pass from web to any }\n" /* 6: reaches b.web */
			   "tenant b { segment web { interface \"tb\" address 10.0.2.0/24 } }\n"
			   "default from nowhere block\n"; /* 8: unknown zone */
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("t.hvp", text, strlen(text), NULL, &d));
	ck_assert_uint_eq(count_message(&d, "unknown zone 'nowhere'"), 2);
	ck_assert_uint_eq(count_message(&d, "rule is shadowed by the rule at t.hvp:2"), 1);
	ck_assert_uint_eq(count_message(&d, "rule of tenant 'a' can reach zone 'b.web'"), 1);
	ck_assert_uint_eq(d.n_errors, 4);
	policy_diags_free(&d);
}
END_TEST

/* IPv4 literals read as inet_pton reads them (the parser's own dotted-quad
 * reader must accept nothing more): leading zeros, parts over 255, too few
 * or too many parts and stray characters are errors. */
START_TEST(test_ipv4_literals)
{
	static const char *good[] = { "0.0.0.0", "10.0.0.1", "255.255.255.255", "192.0.2.100" };
	static const char *bad[] = { "010.0.0.1", "1.2.3.256",  "1.2.3",  "1.2.3.4.5", "1..2.3",
				     "1.2.3.4a",  "1234.1.1.1", ".1.2.3", "1.2.3.",    "00.1.2.3" };
	struct policy_loc loc = { .file = "t", .line = 1, .col = 1 };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct policy_diags d;
		policy_diags_init(&d);
		struct policy_addr a;
		uint8_t want[4];
		ck_assert_int_eq(inet_pton(AF_INET, good[i], want), 1);
		ck_assert_msg(!policy_parse_addr(good[i], strlen(good[i]), false, &loc, &a, &d),
			      "%s", good[i]);
		ck_assert_int_eq(a.family, AF_INET);
		ck_assert_int_eq(a.prefix_len, 32);
		ck_assert(!memcmp(a.lo, want, 4));
		policy_diags_free(&d);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy_diags d;
		policy_diags_init(&d);
		struct policy_addr a;
		ck_assert_msg(policy_parse_addr(bad[i], strlen(bad[i]), false, &loc, &a, &d) == -1,
			      "%s", bad[i]);
		ck_assert_uint_ge(d.n_errors, 1);
		policy_diags_free(&d);
	}
}
END_TEST

/* Rules that failed, or that use a define that failed, take no part: they
 * could only lead to reports about rules that are not what they say. With
 * errors in declarations the analyses do not run at all. */
START_TEST(test_no_analysis_of_broken_parts)
{
	const char *text = "define a = { 10.1.0.0/16, $nope }\n"
			   "pass from 10.1.0.0/16\n"
			   "pass from 10.9.0.0/16 to $a\n"
			   "block from $a\n";
	struct policy_diags d;
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("t.hvp", text, strlen(text), NULL, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_str_eq(d.v[0].message, "'$nope' is not defined");
	policy_diags_free(&d);

	text = "zone lan { interface \"eth1\" }\nzone lan { interface \"eth2\" }\n"
	       "pass from 10.0.0.0/8\nblock from 10.1.0.0/16\n";
	policy_diags_init(&d);
	ck_assert_ptr_null(policy_load_text("t.hvp", text, strlen(text), NULL, &d));
	ck_assert_uint_eq(count_message(&d, "rule is shadowed"), 0);
	ck_assert_uint_eq(d.n_errors, 1);
	policy_diags_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("parser");
	TCase *tc = tcase_create("model");
	tcase_add_test(tc, test_zones_and_defines);
	tcase_add_test(tc, test_rule_options);
	tcase_add_test(tc, test_services_builtin_and_icmp);
	tcase_add_test(tc, test_rule_id);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_tenants);
	tcase_add_test(tc, test_nat);
	tcase_add_test(tc, test_vpn);
	tcase_add_test(tc, test_service_name_vs_declaration);
	tcase_add_test(tc, test_forward_references);
	tcase_add_test(tc, test_inspect_fields);
	tcase_add_test(tc, test_utf8_and_escapes_accepted);
	tcase_add_test(tc, test_shadow_and_isolation_with_other_errors);
	tcase_add_test(tc, test_no_analysis_of_broken_parts);
	tcase_add_test(tc, test_ipv4_literals);
	suite_add_tcase(s, tc);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, test_bad_case, 0, (int)N_BAD_CASES);
	suite_add_tcase(s, bad);
	return check_main(s);
}
