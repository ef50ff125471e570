/* The policy evaluator (policy/eval.c) and its packet syntax
 * (policy/eval_packet.c), on policies loaded through the real front end. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/eval.h"
#include "policy/policy.h"
#include "tests/lib/checkmain.h"

static struct policy_diags diags;

static struct policy *load(const char *text)
{
	policy_diags_init(&diags);
	struct policy *p = policy_load_text("t.hvp", text, strlen(text), NULL, &diags);
	if (!p)
		policy_diags_print(&diags, stderr);
	ck_assert_ptr_nonnull(p);
	return p;
}

static void unload(struct policy *p)
{
	policy_free(p);
	policy_diags_free(&diags);
}

/* Evaluates `packet` (as `explain` reads it) in state `ct`; returns the
 * verdict and, in *line, the line of the deciding rule or default (0 for a
 * built-in decision, whose name goes to builtin). */
static enum policy_eval_verdict eval_ct(const struct policy *p, const char *packet,
					enum policy_eval_ct ct, unsigned *line,
					struct policy_eval_result *out)
{
	struct policy_eval_packet pkt;
	char err[256];
	size_t col;
	int rc = policy_eval_parse_packet(p, packet, POLICY_NONE, &pkt, err, sizeof(err), &col);
	if (rc)
		fprintf(stderr, "%s: column %zu: %s\n", packet, col, err);
	ck_assert_int_eq(rc, 0);
	pkt.ct = ct;
	struct policy_eval_result r;
	ck_assert_int_eq(policy_eval(p, &pkt, NULL, &r), 0);
	*line = r.rule ? r.rule->loc.line : r.def ? r.def->loc.line : 0;
	enum policy_eval_verdict v = r.verdict;
	if (out)
		*out = r;
	else
		policy_eval_result_free(&r);
	return v;
}

static enum policy_eval_verdict eval(const struct policy *p, const char *packet, unsigned *line)
{
	return eval_ct(p, packet, POLICY_EVAL_CT_NEW, line, NULL);
}

static const char *const site = "zone lan { interface \"lan0\" }\n"               /* 1 */
				"zone dmz { interface \"dmz*\" }\n"               /* 2 */
				"zone uplink { interface \"eth0\" }\n"            /* 3 */
				"block from lan to dmz service tcp port 23\n"     /* 4 */
				"pass from lan to dmz service { ssh, http }\n"    /* 5 */
				"reject from lan to uplink service tcp port 25\n" /* 6 */
				"pass from lan to any\n"                          /* 7 */
				"pass from any to self service ssh\n"             /* 8 */
				"pass from uplink to 192.0.2.10 service https\n"  /* 9 */
				"default from dmz to lan reject\n"                /* 10 */
				"default block\n";                                /* 11 */

/* Prefixes that end inside a byte, and at a byte, of both families: the
 * bits past the prefix never matter, the ones before always do. */
START_TEST(test_addr_in_prefix_bits)
{
	static const struct {
		int family;
		uint8_t prefix_len;
		uint8_t net[16];
		uint8_t addr[16];
		bool in;
	} cases[] = {
		{ AF_INET, 20, { 10, 1, 0x30, 0 }, { 10, 1, 0x3f, 255 }, true },
		{ AF_INET, 20, { 10, 1, 0x30, 0 }, { 10, 1, 0x40, 0 }, false },
		{ AF_INET, 20, { 10, 1, 0x30, 0 }, { 10, 1, 0x2f, 255 }, false },
		{ AF_INET, 24, { 10, 1, 2, 0 }, { 10, 1, 2, 200 }, true },
		{ AF_INET, 24, { 10, 1, 2, 0 }, { 10, 1, 3, 0 }, false },
		{ AF_INET, 1, { 128, 0, 0, 0 }, { 200, 0, 0, 1 }, true },
		{ AF_INET, 1, { 128, 0, 0, 0 }, { 127, 255, 255, 255 }, false },
		{ AF_INET, 0, { 0 }, { 1, 2, 3, 4 }, true },
		{ AF_INET, 32, { 1, 2, 3, 4 }, { 1, 2, 3, 4 }, true },
		{ AF_INET, 32, { 1, 2, 3, 4 }, { 1, 2, 3, 5 }, false },
		{ AF_INET6, 10, { 0xfe, 0x80 }, { 0xfe, 0xbf, 1 }, true },
		{ AF_INET6, 10, { 0xfe, 0x80 }, { 0xfe, 0xc0 }, false },
		{ AF_INET6, 127, { [15] = 2 }, { [15] = 3 }, true },
		{ AF_INET6, 127, { [15] = 2 }, { [15] = 4 }, false },
		{ AF_INET6, 128, { [15] = 2 }, { [15] = 2 }, true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_addr a = { .family = (uint8_t)cases[i].family,
					 .prefix_len = cases[i].prefix_len };
		memcpy(a.lo, cases[i].net, 16);
		ck_assert_msg(policy_eval_addr_in(&a, cases[i].family, cases[i].addr) ==
				  cases[i].in,
			      "case %zu", i);
		ck_assert(!policy_eval_addr_in(&a, cases[i].family == AF_INET ? AF_INET6 : AF_INET,
					       cases[i].addr));
	}
}
END_TEST

START_TEST(test_first_match_and_defaults)
{
	struct policy *p = load(site);
	unsigned line;
	ck_assert_int_eq(eval(p, "tcp 10.0.0.5:4000 -> 10.1.0.5:23 in lan0 out dmz3", &line),
			 POLICY_EVAL_BLOCK);
	ck_assert_uint_eq(line, 4);
	ck_assert_int_eq(eval(p, "tcp 10.0.0.5:4000 -> 10.1.0.5:22 in lan0 out dmz3", &line),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 5);
	ck_assert_int_eq(eval(p, "tcp 10.0.0.5:4000 -> 10.1.0.5:25 in lan0 out eth0", &line),
			 POLICY_EVAL_REJECT);
	ck_assert_uint_eq(line, 6);
	ck_assert_int_eq(eval(p, "udp 10.0.0.5:4000 -> 10.1.0.5:53 in lan0 out eth0", &line),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 7);
	/* the zone pair's default, then the global one */
	ck_assert_int_eq(eval(p, "tcp 10.1.0.5:4000 -> 10.0.0.5:80 in dmz0 out lan0", &line),
			 POLICY_EVAL_REJECT);
	ck_assert_uint_eq(line, 10);
	/* the global default has no line of its own in the model: built in */
	ck_assert_int_eq(eval(p, "tcp 10.1.0.5:4000 -> 10.0.0.5:80 in dmz0 out eth0", &line),
			 POLICY_EVAL_BLOCK);
	ck_assert_uint_eq(line, 0);
	/* self and addresses */
	ck_assert_int_eq(eval(p, "tcp 203.0.113.1:4000 -> self:22 in eth0", &line),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 8);
	ck_assert_int_eq(eval(p, "tcp 203.0.113.1:4000 -> 192.0.2.10:443 in eth0 out dmz1", &line),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 9);
	ck_assert_int_eq(eval(p, "tcp 203.0.113.1:4000 -> 192.0.2.11:443 in eth0 out dmz1", &line),
			 POLICY_EVAL_BLOCK);
	ck_assert_uint_eq(line, 0);
	unload(p);
}
END_TEST

START_TEST(test_state)
{
	struct policy *p = load(site);
	unsigned line;
	struct policy_eval_result r;
	/* replies need no rule; invalid is dropped before any rule */
	ck_assert_int_eq(eval_ct(p, "tcp 10.1.0.5:80 -> 10.0.0.5:4000 in dmz0 out lan0",
				 POLICY_EVAL_CT_ESTABLISHED, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_str_eq(r.builtin, "builtin:ct-state");
	policy_eval_result_free(&r);
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.0.5:4000 -> 10.1.0.5:22 in lan0 out dmz0",
				 POLICY_EVAL_CT_INVALID, &line, &r),
			 POLICY_EVAL_BLOCK);
	ck_assert_str_eq(r.builtin, "builtin:ct-invalid");
	policy_eval_result_free(&r);
	unload(p);
}
END_TEST

static const char *const tenants =
    "zone uplink { interface \"eth0\" }\n"                                               /* 1 */
    "tenant acme {\n"                                                                    /* 2 */
    "  segment web { interface \"tap-acme-web\" address 10.0.1.0/24 }\n"                 /* 3 */
    "  segment db  { interface \"tap-acme-db\" address { 10.0.2.0/24, fd00:2::/64 } }\n" /* 4 */
    "  pass from web to db service postgres\n"                                           /* 5 */
    "  pass from uplink to web service tcp port 8000-8009\n"                             /* 6 */
    "  pass from web to uplink\n"                                                        /* 7 */
    "  default block log\n"                                                              /* 8 */
    "  nat snat from web out via uplink to 198.51.100.7\n"                               /* 9 */
    "  nat forward uplink tcp port 8080 on 198.51.100.9 to 10.0.1.10 port 80\n"          /* 10 */
    "  pass from uplink to web service http\n"                                           /* 11 */
    "}\n"                                                                                /* 12 */
    "tenant globex { segment all { interface \"tap-globex\" address 10.0.1.0/24 }\n"     /* 13 */
    "  pass from all to uplink\n"                                                        /* 14 */
    "  nat masquerade out via uplink }\n"                                                /* 15 */
    "pass from any to any service ping\n";                                               /* 16 */

START_TEST(test_tenants)
{
	struct policy *p = load(tenants);
	unsigned line;
	struct policy_eval_result r;
	ck_assert_int_eq(eval(p, "tcp 10.0.1.5:4000 -> 10.0.2.9:5432 in tap-acme-web", &line),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 5);
	/* anti-spoofing */
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.9.5:4000 -> 10.0.2.9:5432 in tap-acme-web",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_BLOCK);
	ck_assert_str_eq(r.builtin, "antispoof:acme.web");
	policy_eval_result_free(&r);
	/* overlapping tenants: the same source is acme's or globex's by interface */
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.1.5:4000 -> 203.0.113.7:443 in tap-acme-web out eth0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 7);
	ck_assert_uint_eq(r.ct_zone, 1);
	ck_assert_ptr_nonnull(r.snat.nat);
	ck_assert_uint_eq(r.snat.addr[3], 7);
	policy_eval_result_free(&r);
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.1.5:4000 -> 203.0.113.7:443 in tap-globex out eth0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 14);
	ck_assert_uint_eq(r.ct_zone, 2);
	ck_assert(r.snat.masquerade);
	policy_eval_result_free(&r);
	/* a global `any` never joins two tenants: the ping passes to the
	 * uplink but not from one tenant to the other */
	ck_assert_int_eq(eval(p, "icmp 10.0.1.5 -> 203.0.113.7 in tap-globex out eth0", &line),
			 POLICY_EVAL_PASS);
	ck_assert_int_eq(eval_ct(p, "icmp 10.0.1.5 -> 10.0.2.9 in tap-globex out tap-acme-db",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_BLOCK);
	ck_assert_str_eq(r.builtin, "builtin:inter-tenant");
	policy_eval_result_free(&r);
	/* the port forward, filtered after translation */
	ck_assert_int_eq(eval_ct(p, "tcp 203.0.113.7:5555 -> 198.51.100.9:8080 in eth0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 11);
	ck_assert_ptr_nonnull(r.dnat.nat);
	ck_assert_uint_eq(r.dnat.port, 80);
	ck_assert_str_eq(r.oif, "tap-acme-web");
	policy_eval_result_free(&r);
	/* hairpin: from the tenant's own segment to the public address */
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.1.7:5555 -> 198.51.100.9:8080 in tap-acme-web",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_BLOCK); /* no rule from web to web: the tenant default */
	ck_assert_uint_eq(line, 8);
	ck_assert(r.dnat.nat == NULL);
	policy_eval_result_free(&r);
	unload(p);
}
END_TEST

START_TEST(test_netmap_and_blocklist)
{
	struct policy *p = load("zone uplink { interface \"eth0\" }\n"
				"tenant g { segment all { interface \"tg\" address 10.0.1.0/24 }\n"
				"  pass from all to uplink\n"
				"  pass from uplink to all service https\n"
				"  nat netmap 10.0.1.0/24 to 198.51.100.0/24 via uplink }\n");
	struct policy_eval_result r;
	unsigned line;
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.1.42:4000 -> 203.0.113.7:443 in tg out eth0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(r.snat.addr[0], 198);
	ck_assert_uint_eq(r.snat.addr[3], 42);
	policy_eval_result_free(&r);
	ck_assert_int_eq(eval_ct(p, "tcp 203.0.113.7:4000 -> 198.51.100.42:443 in eth0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(r.dnat.addr[0], 10);
	ck_assert_uint_eq(r.dnat.addr[3], 42);
	ck_assert_str_eq(r.oif, "tg");
	policy_eval_result_free(&r);

	/* the block list, by source */
	struct policy_eval_block b = { .tenant = POLICY_NONE };
	b.addr.family = AF_INET;
	b.addr.prefix_len = 32;
	memcpy(b.addr.lo, (uint8_t[]){ 203, 0, 113, 7 }, 4);
	struct policy_eval_opts o;
	policy_eval_opts_default(&o);
	o.blocked = &b;
	o.n_blocked = 1;
	struct policy_eval_packet pkt;
	char err[128];
	size_t col;
	ck_assert_int_eq(
	    policy_eval_parse_packet(p, "tcp 203.0.113.7:4000 -> 198.51.100.42:443 in eth0",
				     POLICY_NONE, &pkt, err, sizeof(err), &col),
	    0);
	ck_assert_int_eq(policy_eval(p, &pkt, &o, &r), 0);
	ck_assert_int_eq(r.verdict, POLICY_EVAL_BLOCK);
	ck_assert_str_eq(r.builtin, "builtin:blocked");
	policy_eval_result_free(&r);
	unload(p);
}
END_TEST

START_TEST(test_limit_inspect_nostate)
{
	struct policy *p =
	    load("zone lan { interface \"lan0\" }\n"
		 "zone dmz { interface \"dmz0\" }\n"
		 "pass from lan to dmz service http inspect { block content /evil/ }\n"
		 "pass from lan to dmz service ssh limit 10/minute\n"
		 "pass from lan to dmz service udp port 514 no state\n");
	unsigned line;
	struct policy_eval_result r;
	ck_assert_int_eq(eval(p, "tcp 10.0.0.1:4000 -> 10.1.0.1:80 in lan0 out dmz0", &line),
			 POLICY_EVAL_INSPECT);
	ck_assert_int_eq(eval_ct(p, "tcp 10.0.0.1:4000 -> 10.1.0.1:22 in lan0 out dmz0",
				 POLICY_EVAL_CT_NEW, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert(r.limited);
	policy_eval_result_free(&r);
	/* `no state`: untracked, so even a packet conntrack would call invalid
	 * meets the rule */
	ck_assert_int_eq(eval_ct(p, "udp 10.0.0.1:4000 -> 10.1.0.1:514 in lan0 out dmz0",
				 POLICY_EVAL_CT_INVALID, &line, &r),
			 POLICY_EVAL_PASS);
	ck_assert_uint_eq(line, 5);
	policy_eval_result_free(&r);
	unload(p);
}
END_TEST

START_TEST(test_packet_syntax)
{
	struct policy *p = load(tenants);
	struct policy_eval_packet pkt;
	char err[256], text[256];
	size_t col = 0;
	ck_assert_int_eq(
	    policy_eval_parse_packet(p, "udp [fd00:2::5]:5353 -> [2001:db8::1]:53 out eth0",
				     POLICY_NONE, &pkt, err, sizeof(err), &col),
	    0);
	ck_assert_int_eq(pkt.family, AF_INET6);
	ck_assert_str_eq(pkt.iif, "tap-acme-db");
	policy_eval_packet_text(&pkt, text, sizeof(text));
	ck_assert_str_eq(text, "udp [fd00:2::5]:5353 -> [2001:db8::1]:53 in tap-acme-db out eth0");
	/* the mistakes, with their columns */
	ck_assert_int_eq(policy_eval_parse_packet(p, "tcp 10.0.1.5:40000 => 10.0.2.9:5432",
						  POLICY_NONE, &pkt, err, sizeof(err), &col),
			 -1);
	ck_assert_uint_eq(col, 20);
	ck_assert_int_eq(policy_eval_parse_packet(p, "tcp 10.0.1.500:1 -> 10.0.2.9:5432",
						  POLICY_NONE, &pkt, err, sizeof(err), &col),
			 -1);
	ck_assert_uint_eq(col, 5);
	ck_assert_int_eq(policy_eval_parse_packet(p, "tcp 10.0.1.5:1 -> 10.0.2.9:99999 in x",
						  POLICY_NONE, &pkt, err, sizeof(err), &col),
			 -1);
	ck_assert_uint_eq(col, 28);
	/* overlapping tenants: the source alone does not say which */
	ck_assert_int_eq(policy_eval_parse_packet(p, "tcp 10.0.1.5:1 -> 10.0.2.9:80", POLICY_NONE,
						  &pkt, err, sizeof(err), &col),
			 -1);
	ck_assert(strstr(err, "--tenant") != NULL);
	ck_assert_int_eq(policy_eval_parse_packet(p, "tcp 10.0.1.5:1 -> 10.0.2.9:80", 1, &pkt, err,
						  sizeof(err), &col),
			 0);
	ck_assert_str_eq(pkt.iif, "tap-globex");
	unload(p);
}
END_TEST

/* The cache of a replay (rules per pair, long address lists as sorted
 * ranges) gives the same answers as the plain walk. */
START_TEST(test_cache_agrees)
{
	struct policy *p =
	    load("zone lan { interface \"lan0\" }\n"
		 "zone dmz { interface \"dmz0\" }\n"
		 "define many = { 10.9.0.1, 10.9.0.3, 10.9.0.5, 10.9.0.7, 10.9.0.9, 10.9.0.11,\n"
		 "  10.9.0.13, 10.9.0.15, 10.9.1.0/24, 10.9.0.64-10.9.0.80, fd00::/64, 10.9.0.2 }\n"
		 "block from $many to dmz service tcp port 22\n"
		 "pass from lan to dmz\n");
	struct policy_eval_opts plain, cached;
	policy_eval_opts_default(&plain);
	policy_eval_opts_default(&cached);
	cached.cache = policy_eval_cache_new(p);
	cached.path = false;
	ck_assert_ptr_nonnull(cached.cache);
	static const char *const pkts[] = {
		"tcp 10.9.0.1:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.0.4:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.0.2:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.0.70:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.0.81:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.1.255:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.2.0:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp 10.9.0.0:1 -> 10.1.0.1:22 in lan0 out dmz0",
		"tcp [fd00::9]:1 -> [fd01::1]:22 in lan0 out dmz0",
		"tcp [fd01::9]:1 -> [fd01::1]:22 in lan0 out dmz0",
	};
	static const enum policy_eval_verdict want[] = { POLICY_EVAL_BLOCK, POLICY_EVAL_PASS,
							 POLICY_EVAL_BLOCK, POLICY_EVAL_BLOCK,
							 POLICY_EVAL_PASS,  POLICY_EVAL_BLOCK,
							 POLICY_EVAL_PASS,  POLICY_EVAL_PASS,
							 POLICY_EVAL_BLOCK, POLICY_EVAL_PASS };
	for (size_t i = 0; i < sizeof(pkts) / sizeof(pkts[0]); i++) {
		struct policy_eval_packet pkt;
		char err[128];
		size_t col;
		ck_assert_int_eq(
		    policy_eval_parse_packet(p, pkts[i], POLICY_NONE, &pkt, err, sizeof(err), &col),
		    0);
		struct policy_eval_result a, b;
		ck_assert_int_eq(policy_eval(p, &pkt, &plain, &a), 0);
		ck_assert_int_eq(policy_eval(p, &pkt, &cached, &b), 0);
		ck_assert_msg(a.verdict == want[i], "%s: %d", pkts[i], a.verdict);
		ck_assert_int_eq(a.verdict, b.verdict);
		ck_assert_ptr_eq(a.rule, b.rule);
		ck_assert_uint_eq(b.n_steps, 0);
		policy_eval_result_free(&a);
		policy_eval_result_free(&b);
	}
	policy_eval_cache_free(cached.cache);
	unload(p);
}
END_TEST

/* ---- the index of a pair's rules against the plain walk ---- */

static uint64_t rng_state;

static uint32_t rng(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* Ports drawn from a small pool so that ranges overlap, touch and nest,
 * and packets land on their edges. */
static unsigned rand_port(void)
{
	static const unsigned pool[] = { 1,   21,   22,   23,   53,   79,   80,   81,
					 443, 1000, 1023, 1024, 1063, 1064, 1100, 65535 };
	return pool[rng(sizeof(pool) / sizeof(pool[0]))];
}

static void rand_term(char *buf, size_t size)
{
	static const char *const protos[] = { "tcp", "udp", "sctp" };
	switch (rng(6)) {
	case 0: snprintf(buf, size, "icmp type %s", rng(2) ? "echo-request" : "echo-reply"); return;
	case 1: snprintf(buf, size, "%s", protos[rng(3)]); return;
	case 2: { /* a range, narrow or wide */
		unsigned lo = rand_port(), hi = lo + (rng(2) ? rng(8) : 1000 + rng(5000));
		snprintf(buf, size, "%s port %u-%u", protos[rng(3)], lo, hi > 65535 ? 65535 : hi);
		return;
	}
	case 3:
		snprintf(buf, size, "%s port { %u, %u }", protos[rng(3)], rand_port(), rand_port());
		return;
	default: snprintf(buf, size, "%s port %u", protos[rng(3)], rand_port());
	}
}

static void rand_endpoint(char *buf, size_t size)
{
	static const char *const eps[] = { "lan", "dmz",         "up",
					   "any", "10.1.0.0/16", "{ lan, 10.2.0.0/24 }",
					   "self" };
	snprintf(buf, size, "%s", eps[rng(sizeof(eps) / sizeof(eps[0]))]);
}

/* A policy of `n` random rules over three zones. */
static char *rand_policy(size_t n)
{
	size_t cap = 256 + n * 160, len = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	len += (size_t)snprintf(text + len, cap - len,
				"zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\n"
				"zone up { interface \"up0\" }\ndefault %s\n",
				rng(2) ? "block" : "pass");
	static const char *const actions[] = { "pass", "block", "reject" };
	for (size_t i = 0; i < n; i++) {
		char from[64], to[64], t1[64], t2[64], svc[160] = "";
		rand_endpoint(from, sizeof(from));
		rand_endpoint(to, sizeof(to));
		if (!strcmp(from, "self") && !strcmp(to, "self"))
			snprintf(to, sizeof(to), "any");
		rand_term(t1, sizeof(t1));
		rand_term(t2, sizeof(t2));
		switch (rng(4)) {
		case 0: break; /* any service */
		case 1: snprintf(svc, sizeof(svc), " service { %s, %s }", t1, t2); break;
		default: snprintf(svc, sizeof(svc), " service %s", t1);
		}
		len += (size_t)snprintf(text + len, cap - len, "%s from %s to %s%s\n",
					actions[rng(3)], from, to, svc);
		ck_assert_uint_lt(len, cap);
	}
	return text;
}

/* Loads a random policy, blanking the lines the checker refuses (mostly
 * shadowed rules: an error in this language) until it accepts the rest. */
static struct policy *load_pruned(char *text)
{
	for (int round = 0; round < 50; round++) {
		policy_diags_init(&diags);
		struct policy *p = policy_load_text("t.hvp", text, strlen(text), NULL, &diags);
		if (p)
			return p;
		size_t blanked = 0;
		for (size_t i = 0; i < diags.n; i++) {
			if (diags.v[i].severity != POLICY_ERROR || diags.v[i].loc.line < 5)
				continue;
			char *s = text;
			for (uint32_t line = 1; line < diags.v[i].loc.line && *s; s++)
				line += *s == '\n';
			for (; *s && *s != '\n'; s++, blanked++)
				*s = ' ';
		}
		if (getenv("EVAL_INDEX_DEBUG") && !blanked)
			policy_diags_print(&diags, stderr);
		policy_diags_free(&diags);
		if (!blanked)
			break;
	}
	return NULL;
}

static void rand_packet(struct policy_eval_packet *pkt)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP,
					  47 };
	static const char *const ifs[] = { "lan0", "dmz0", "up0", "" };
	memset(pkt, 0, sizeof(*pkt));
	pkt->family = AF_INET;
	pkt->l4proto = protos[rng(sizeof(protos))];
	pkt->saddr[0] = pkt->daddr[0] = 10;
	pkt->saddr[1] = (uint8_t)(1 + rng(3));
	pkt->daddr[1] = (uint8_t)(1 + rng(3));
	pkt->saddr[3] = (uint8_t)(1 + rng(250));
	pkt->daddr[3] = (uint8_t)(1 + rng(250));
	pkt->sport = (uint16_t)(1024 + rng(1000));
	pkt->dport = (uint16_t)(rng(4) ? rand_port() + rng(3) - 1 : rng(65536));
	pkt->icmp_type = rng(2) ? 8 : 0;
	snprintf(pkt->iif, sizeof(pkt->iif), "%s", ifs[rng(4)]);
	pkt->to_self = rng(4) == 0;
	if (!pkt->to_self)
		snprintf(pkt->oif, sizeof(pkt->oif), "%s", ifs[rng(3)]);
	pkt->ct = POLICY_EVAL_CT_NEW;
	pkt->ct_tenant = POLICY_NONE;
}

/* Bulk replay (a cache, no path) walks only the rules its index says can
 * match; the plain walk tries every rule. On seeded random policies and
 * packets both must decide the same, by the same rule or default. */
START_TEST(test_index_agrees)
{
	size_t policies = 0, rules = 0, packets = 0, disagreements = 0;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		rng_state = seed * 0x9e3779b97f4a7c15ull;
		char *text = rand_policy(20 + rng(200));
		struct policy *p = load_pruned(text);
		free(text);
		if (!p)
			continue;
		policies++;
		rules += p->n_rules;
		struct policy_eval_opts plain, indexed;
		policy_eval_opts_default(&plain);
		policy_eval_opts_default(&indexed);
		indexed.path = false;
		indexed.cache = policy_eval_cache_new(p);
		ck_assert_ptr_nonnull(indexed.cache);
		for (int i = 0; i < 2000; i++, packets++) {
			struct policy_eval_packet pkt;
			rand_packet(&pkt);
			struct policy_eval_result a, b;
			ck_assert_int_eq(policy_eval(p, &pkt, &plain, &a), 0);
			ck_assert_int_eq(policy_eval(p, &pkt, &indexed, &b), 0);
			if (a.verdict != b.verdict || a.rule != b.rule || a.def != b.def ||
			    strcmp(a.builtin, b.builtin)) {
				char t[256];
				policy_eval_packet_text(&pkt, t, sizeof(t));
				fprintf(stderr, "seed %llu: %s: plain %s by %s, indexed %s by %s\n",
					(unsigned long long)seed, t,
					policy_eval_verdict_name(a.verdict),
					a.rule ? a.rule->id : a.builtin,
					policy_eval_verdict_name(b.verdict),
					b.rule ? b.rule->id : b.builtin);
				disagreements++;
			}
			policy_eval_result_free(&a);
			policy_eval_result_free(&b);
		}
		policy_eval_cache_free(indexed.cache);
		unload(p);
	}
	fprintf(stderr, "eval index: %zu policies (%zu rules), %zu packets, %zu disagreements\n",
		policies, rules, packets, disagreements);
	ck_assert_uint_ge(policies, 20);
	ck_assert_uint_eq(disagreements, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("eval");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_first_match_and_defaults);
	tcase_add_test(tc, test_addr_in_prefix_bits);
	tcase_add_test(tc, test_state);
	tcase_add_test(tc, test_tenants);
	tcase_add_test(tc, test_netmap_and_blocklist);
	tcase_add_test(tc, test_limit_inspect_nostate);
	tcase_add_test(tc, test_packet_syntax);
	tcase_add_test(tc, test_cache_agrees);
	tcase_add_test(tc, test_index_agrees);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
