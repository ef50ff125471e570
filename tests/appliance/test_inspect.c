/* The fast path's judgement (appliance/fastpath/inspect.c): parsing, TCP assembly,
 * UDP, the window, decisions and events, and the table's limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "appliance/fastpath/inspect.h"
#include "policy/lower.h"
#include "policy/policy.h"
#include "policy/tenant.h"
#include "tests/lib/checkmain.h"

static const char policy_text[] = "zone lan { interface \"lan0\" }\n"
				  "zone dmz { interface \"dmz0\" }\n"
				  "pass from lan to dmz service tcp port 80 inspect {\n"
				  "  block content /(?i)union\\s+select/ log \"sqli\"\n"
				  "  pass content /^GET \\/health/\n"
				  "}\n"
				  "pass from lan to dmz service tcp port 22\n"
				  "pass from lan to dmz service udp port 53 inspect {\n"
				  "  block content /evil/ log\n"
				  "}\n";

static struct policy_diags diags;
static struct policy *pol;
static struct fp_ruleset *rs;
static struct fp_flows *ft;
static struct fp_stats st;
static uint8_t labels_tcp[FP_LABEL_BYTES], labels_udp[FP_LABEL_BYTES];

static void setup(void)
{
	char err[256] = "";

	policy_diags_init(&diags);
	pol = policy_load_text("t.hvp", policy_text, strlen(policy_text), NULL, &diags);
	ck_assert_msg(pol, "policy does not load");
	rs = fp_ruleset_build(pol, err, sizeof(err));
	ck_assert_msg(rs, "%s", err);
	ft = fp_flows_new(0);
	ck_assert(ft);
	memset(&st, 0, sizeof(st));
	fp_labels_pending(labels_tcp, 1);
	fp_labels_pending(labels_udp, 2);
}

static void teardown(void)
{
	fp_flows_free(ft);
	fp_ruleset_free(rs);
	policy_free(pol);
	policy_diags_free(&diags);
}

/* ---- packet builders ---- */

#define TCP_ACK 0x10
#define TCP_PSH 0x08
#define TCP_FIN 0x01
#define TCP_RST 0x04
#define TCP_SYN 0x02

struct pkt {
	uint8_t b[2048];
	size_t len;
};

static size_t l4_tcp(uint8_t *p, uint32_t seq, uint8_t flags, const void *data, size_t n)
{
	memset(p, 0, 20);
	p[0] = 0x9c, p[1] = 0x40; /* 40000 */
	p[2] = 0, p[3] = 80;
	p[4] = (uint8_t)(seq >> 24), p[5] = (uint8_t)(seq >> 16), p[6] = (uint8_t)(seq >> 8),
	p[7] = (uint8_t)seq;
	p[12] = 5 << 4;
	p[13] = flags;
	memcpy(p + 20, data, n);
	return 20 + n;
}

static size_t l4_udp(uint8_t *p, const void *data, size_t n)
{
	p[0] = 0x9c, p[1] = 0x40, p[2] = 0, p[3] = 53;
	p[4] = (uint8_t)((8 + n) >> 8), p[5] = (uint8_t)(8 + n);
	p[6] = p[7] = 0;
	memcpy(p + 8, data, n);
	return 8 + n;
}

static void ipv4(struct pkt *k, uint8_t proto, size_t l4len)
{
	uint8_t *p = k->b;
	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)((20 + l4len) >> 8), p[3] = (uint8_t)(20 + l4len);
	p[8] = 64;
	p[9] = proto;
	inet_pton(AF_INET, "10.10.1.2", p + 12);
	inet_pton(AF_INET, "10.10.2.2", p + 16);
	k->len = 20 + l4len;
}

static struct pkt tcp4(uint32_t seq, uint8_t flags, const char *data)
{
	struct pkt k;
	size_t n = l4_tcp(k.b + 20, seq, flags, data, strlen(data));
	ipv4(&k, IPPROTO_TCP, n);
	return k;
}

/* A TCP segment with options (a multiple of 4 bytes) before its data. */
static struct pkt tcp4_opt(uint32_t seq, uint8_t flags, const void *opt, size_t optlen,
			   const char *data)
{
	struct pkt k;
	uint8_t *p = k.b + 20;
	size_t n = strlen(data);
	l4_tcp(p, seq, flags, "", 0);
	p[12] = (uint8_t)((20 + optlen) / 4 << 4);
	memcpy(p + 20, opt, optlen);
	memcpy(p + 20 + optlen, data, n);
	ipv4(&k, IPPROTO_TCP, 20 + optlen + n);
	return k;
}

/* RFC 7323 timestamps option, NOP-padded to 12 bytes. */
static struct pkt tcp4_ts(uint32_t seq, uint8_t flags, uint32_t tsval, const char *data)
{
	uint8_t opt[12] = { 1, 1, 8, 10 };
	opt[4] = (uint8_t)(tsval >> 24), opt[5] = (uint8_t)(tsval >> 16);
	opt[6] = (uint8_t)(tsval >> 8), opt[7] = (uint8_t)tsval;
	return tcp4_opt(seq, flags, opt, sizeof(opt), data);
}

/* RFC 2385 TCP-MD5 option (kind 19, length 18) with a digest nobody checks. */
static const uint8_t md5_option[20] = { 1, 1, 19, 18, 0xde, 0xad, 0xbe, 0xef };

static struct pkt udp4(const char *data)
{
	struct pkt k;
	size_t n = l4_udp(k.b + 20, data, strlen(data));
	ipv4(&k, IPPROTO_UDP, n);
	return k;
}

/* IPv6 with a hop-by-hop (8 bytes), a destination options (16 bytes) and
 * an atomic fragment header in front of the TCP header. */
static struct pkt tcp6_ext(uint32_t seq, const char *data)
{
	struct pkt k;
	uint8_t *p = k.b;
	memset(p, 0, 40 + 8 + 16 + 8);
	p[0] = 0x60;
	p[6] = IPPROTO_HOPOPTS;
	p[7] = 64;
	inet_pton(AF_INET6, "fd00:10:1::2", p + 8);
	inet_pton(AF_INET6, "fd00:10:2::2", p + 24);
	uint8_t *h = p + 40;
	h[0] = IPPROTO_DSTOPTS, h[1] = 0, h[2] = 1, h[3] = 4; /* PadN */
	h += 8;
	h[0] = IPPROTO_FRAGMENT, h[1] = 1, h[2] = 1, h[3] = 12;
	h += 16;
	h[0] = IPPROTO_TCP; /* offset 0, M 0: an atomic fragment (RFC 6946) */
	h += 8;
	size_t n = l4_tcp(h, seq, TCP_ACK | TCP_PSH, data, strlen(data));
	size_t plen = (size_t)(h - p) - 40 + n;
	p[4] = (uint8_t)(plen >> 8), p[5] = (uint8_t)plen;
	k.len = 40 + plen;
	return k;
}

static enum fp_verdict judge_ev(const uint8_t *labels, uint32_t ct, const struct pkt *k,
				uint64_t now, struct fp_event *ev, bool *has)
{
	return fp_judge(ft, rs, ct, labels, k->b, k->len, now, &st, ev, has);
}

static enum fp_verdict judge(uint32_t ct, const struct pkt *k)
{
	return judge_ev(labels_tcp, ct, k, 100, NULL, NULL);
}

/* Opens flow ct's entry in t as the worker does after the flow's SYN
 * (sequence number isn, no timestamp, the TTL of these packets) and its
 * peer's SYN-ACK (sequence number peer_isn): only a flow whose SYN and
 * SYN-ACK the judge knows may be cleared. */
static void seed_in_peer(struct fp_flows *t, uint32_t ct, uint32_t isn, uint32_t peer_isn)
{
	struct fp_syn_info syn = { false, 0, 64, isn, true, false, peer_isn };
	struct fp_flow_key key;

	fp_flow_key_ct(&key, ct);
	fp_flows_seed_syn(t, &key, &syn, 100, &st);
}

/* ... with the peer's ISN whose next number is the acknowledgement number
 * 0 that tcp4() gives its segments. */
#define PEER_ISN_ACK0 0xffffffffu
static void seed_in(struct fp_flows *t, uint32_t ct, uint32_t isn)
{
	seed_in_peer(t, ct, isn, PEER_ISN_ACK0);
}

/* A TCP segment with its acknowledgement number. */
static struct pkt tcp4_ack(uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
	struct pkt k = tcp4(seq, flags, data);
	uint8_t *p = k.b + 20 + 8;
	p[0] = (uint8_t)(ack >> 24), p[1] = (uint8_t)(ack >> 16), p[2] = (uint8_t)(ack >> 8);
	p[3] = (uint8_t)ack;
	return k;
}

/* ---- tests ---- */

START_TEST(ruleset_numbers_inspect_rules)
{
	ck_assert_uint_eq(fp_ruleset_count(rs), 2);
	uint8_t l[FP_LABEL_BYTES];
	fp_labels_pending(l, 0x8001);
	ck_assert_uint_eq(fp_label_rule(l), 0x8001);
	ck_assert(l[POLICY_CT_LABEL_RULE_SHIFT / 8] & 1);
	ck_assert(l[0] & 1); /* PENDING is bit 0 of byte 0 */

	/* A policy without inspect rules: empty, not NULL. */
	struct policy_diags d;
	char err[128];
	const char *t = "zone a { interface \"a\" }\npass from a to any\n";
	policy_diags_init(&d);
	struct policy *p = policy_load_text("e.hvp", t, strlen(t), NULL, &d);
	ck_assert(p);
	struct fp_ruleset *e = fp_ruleset_build(p, err, sizeof(err));
	ck_assert(e);
	ck_assert_uint_eq(fp_ruleset_count(e), 0);
	fp_ruleset_free(e);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(ruleset_knows_tenant_zones)
{
	struct policy_diags d;
	char err[128];
	const char *t = "tenant x { segment s { interface \"tx\" address 10.0.1.0/24 } }\n"
			"tenant y { segment s { interface \"ty\" address 10.0.1.0/24 } }\n";
	policy_diags_init(&d);
	struct policy *p = policy_load_text("z.hvp", t, strlen(t), NULL, &d);
	ck_assert(p);
	struct fp_ruleset *z = fp_ruleset_build(p, err, sizeof(err));
	ck_assert(z);
	for (size_t i = 0; i < p->n_tenants; i++) {
		uint32_t mark = policy_tenant_mark(&p->tenants[i]);
		ck_assert_uint_eq(fp_ruleset_zone(z, mark), p->tenants[i].ct_zone);
		/* the low bits (a hairpin's bit 15) do not change the tenant */
		ck_assert_uint_eq(fp_ruleset_zone(z, mark | 0x8000), p->tenants[i].ct_zone);
	}
	ck_assert_uint_ne(p->tenants[0].ct_zone, p->tenants[1].ct_zone);
	ck_assert_uint_eq(fp_ruleset_zone(z, 0), 0);
	ck_assert_uint_eq(fp_ruleset_zone(z, 99u << 16), 0); /* no such tenant */
	ck_assert_uint_eq(fp_ruleset_zone(rs, policy_tenant_mark(&p->tenants[0])),
			  0); /* no tenants */
	fp_ruleset_free(z);
	policy_free(p);
	policy_diags_free(&d);
}
END_TEST

START_TEST(block_match_blocks_with_event)
{
	struct fp_event ev;
	bool has;
	struct pkt k = tcp4(1000, TCP_ACK | TCP_PSH, "GET /?q=1 UNION  SeLeCt pw HTTP/1.1\r\n");

	ck_assert_int_eq(judge_ev(labels_tcp, 7, &k, 100, &ev, &has), FP_BLOCK);
	ck_assert(has);
	ck_assert_uint_eq(ev.ct_id, 7);
	ck_assert_str_eq(ev.rule_id, pol->rules[0].id);
	ck_assert_uint_eq(ev.rule, 1);
	ck_assert_uint_eq(ev.match, 0);
	ck_assert_int_eq(ev.action, POLICY_BLOCK);
	ck_assert(ev.log);
	ck_assert_str_eq(ev.log_prefix, "sqli");
	ck_assert_int_eq(ev.family, AF_INET);
	ck_assert_uint_eq(ev.protocol, IPPROTO_TCP);
	ck_assert_uint_eq(ev.sport, 40000);
	ck_assert_uint_eq(ev.dport, 80);
	ck_assert_mem_eq(ev.src, "\x0a\x0a\x01\x02", 4);
	ck_assert_mem_eq(ev.dst, "\x0a\x0a\x02\x02", 4);
	ck_assert_uint_eq(st.blocked, 1);
	ck_assert_uint_eq(fp_flows_count(ft), 0); /* the kernel drops the rest */
}
END_TEST

START_TEST(pass_match_is_done)
{
	struct fp_event ev;
	bool has;
	struct pkt k = tcp4(5, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt hs_ack = tcp4(5, TCP_ACK, "");

	seed_in(ft, 8, 4);
	ck_assert_int_eq(judge(8, &hs_ack), FP_CONTINUE); /* the handshake's ACK */
	ck_assert_int_eq(judge_ev(labels_tcp, 8, &k, 100, &ev, &has), FP_DONE);
	ck_assert(has);
	ck_assert_uint_eq(ev.match, 1);
	ck_assert_int_eq(ev.action, POLICY_PASS);
	ck_assert(!ev.log);
	ck_assert_str_eq(ev.log_prefix, "");
	ck_assert_uint_eq(st.done, 1);
	ck_assert_uint_eq(st.window_done, 0);
}
END_TEST

START_TEST(benign_data_continues)
{
	struct pkt k = tcp4(5, TCP_ACK | TCP_PSH, "GET /index.html HTTP/1.1\r\n");
	bool has = true;

	ck_assert_int_eq(judge_ev(labels_tcp, 9, &k, 100, NULL, &has), FP_CONTINUE);
	ck_assert(!has);
	ck_assert_uint_eq(fp_flows_count(ft), 1);
	ck_assert_uint_eq(st.flows, 1);
}
END_TEST

START_TEST(handshake_packets_continue)
{
	struct pkt k = tcp4(5, TCP_SYN, "");

	ck_assert_int_eq(judge(10, &k), FP_CONTINUE);
	/* A bare SYN makes no entry (spoofed SYNs must not fill the table). */
	ck_assert_uint_eq(fp_flows_count(ft), 0);
	k = tcp4(6, TCP_ACK, "");
	ck_assert_int_eq(judge(10, &k), FP_CONTINUE);
	/* The handshake's last ACK makes it: that fixes the stream's start. */
	ck_assert_uint_eq(fp_flows_count(ft), 1);
	ck_assert_uint_eq(st.done + st.blocked + st.segments_dropped, 0);
}
END_TEST

START_TEST(handshake_ack_sets_the_sequence)
{
	struct pkt ack = tcp4(100, TCP_ACK, "");
	struct pkt late = tcp4(108, TCP_ACK | TCP_PSH, "SELECT 1");
	struct pkt first = tcp4(100, TCP_ACK | TCP_PSH, "x UNION ");

	ck_assert_int_eq(judge(33, &ack), FP_CONTINUE);
	/* Data past the handshake's ACK is a gap, even as the first data. */
	ck_assert_int_eq(judge(33, &late), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(33, &first), FP_CONTINUE);
	ck_assert_int_eq(judge(33, &late), FP_BLOCK);
}
END_TEST

START_TEST(data_before_the_stream_is_dropped)
{
	/* A sender opens with a bogus sequence number far ahead, hoping its
	 * real data then looks like an old retransmission and passes unseen. */
	struct pkt bogus = tcp4(100000, TCP_ACK, "");
	struct pkt real = tcp4(1, TCP_ACK | TCP_PSH, "x UNION SELECT 1");
	struct pkt bogus_data = tcp4(200000, TCP_ACK | TCP_PSH, "hello");

	ck_assert_int_eq(judge(34, &bogus), FP_CONTINUE);
	ck_assert_int_eq(judge(34, &real), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(35, &bogus_data), FP_CONTINUE);
	ck_assert_int_eq(judge(35, &real), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.segments_dropped, 2);
}
END_TEST

START_TEST(syn_with_data_is_dropped)
{
	/* TCP Fast Open: a server could take data in the SYN that the stream
	 * (fixed by the handshake's ACK) would not count. */
	struct pkt syn = tcp4(41, TCP_SYN, "GET /?a=UNION");
	struct pkt bare = tcp4(41, TCP_SYN, "");

	ck_assert_int_eq(judge(36, &syn), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.syn_data, 1);
	ck_assert_int_eq(judge(36, &bare), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
}
END_TEST

START_TEST(pattern_split_across_segments)
{
	struct pkt a = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 UNI");
	struct pkt b = tcp4(100 + 13, TCP_ACK | TCP_PSH, "ON SELECT 1");

	ck_assert_int_eq(judge(11, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(11, &b), FP_BLOCK);
}
END_TEST

/* Over ctnetlink the worker keys a flow by its tuple and zone: the same
 * tuple in another zone is another stream, and a new connection of the
 * tuple (its first packet passed) starts its own. */
static enum fp_verdict judge_key(const struct fp_flow_key *key, const struct pkt *k)
{
	struct fp_packet pk;

	fp_packet_parse(&pk, k->b, k->len);
	return fp_judge_packet_key(ft, rs, key, 0, labels_tcp, &pk, 100, &st, NULL, NULL);
}

START_TEST(flows_keyed_by_tuple_and_zone)
{
	struct pkt a = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 UNI");
	struct pkt b = tcp4(100 + 13, TCP_ACK | TCP_PSH, "ON SELECT 1");
	struct fp_packet pk;
	struct fp_flow_key z0, z7, again;

	fp_packet_parse(&pk, a.b, a.len);
	ck_assert_int_eq(fp_flow_key_tuple(&z0, &pk, 0), 0);
	ck_assert_int_eq(fp_flow_key_tuple(&z7, &pk, 7), 0);
	ck_assert_int_eq(judge_key(&z0, &a), FP_CONTINUE);
	/* zone 7 has no such stream: this one starts at "ON SELECT" */
	ck_assert_int_eq(judge_key(&z7, &b), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 2);
	/* the same tuple and zone, from another packet of the flow: one key */
	fp_packet_parse(&pk, b.b, b.len);
	ck_assert_int_eq(fp_flow_key_tuple(&again, &pk, 0), 0);
	ck_assert_int_eq(judge_key(&again, &b), FP_BLOCK);
	/* a new connection of the tuple drops what the old one left */
	ck_assert_int_eq(judge_key(&z0, &a), FP_CONTINUE);
	fp_flows_forget(ft, &z0);
	ck_assert_int_eq(judge_key(&z0, &b), FP_CONTINUE); /* a stream of its own */
	/* a fragment has no tuple */
	struct pkt frag = tcp4(100, TCP_ACK, "");
	frag.b[6] = 0x20; /* more fragments */
	fp_packet_parse(&pk, frag.b, frag.len);
	ck_assert_int_eq(fp_flow_key_tuple(&z0, &pk, 0), -EINVAL);
}
END_TEST

START_TEST(retransmission_must_match_what_was_judged)
{
	struct pkt a = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 UNI");
	/* Overlaps "UNI" with other bytes: one of the two copies the receiver
	 * discards, and the judge cannot tell which: the second is dropped. */
	struct pkt b = tcp4(100 + 10, TCP_ACK | TCP_PSH, "XXXON SELECT 1");
	struct pkt whole = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 UNI");
	struct pkt same = tcp4(100 + 10, TCP_ACK | TCP_PSH, "UNION SELECT 1");

	ck_assert_int_eq(judge(12, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(12, &whole), FP_CONTINUE); /* a pure retransmission */
	ck_assert_int_eq(judge(12, &b), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.conflicts, 1);
	ck_assert_int_eq(judge(12, &same), FP_BLOCK);
	ck_assert_uint_eq(st.segments_dropped, 0);
}
END_TEST

START_TEST(decoy_first_copy_does_not_stand_for_the_real_one)
{
	/* A first copy with harmless bytes that the receiver discards (here a
	 * TCP-MD5 option it has no key for), then the real copy at the same
	 * sequence number: the real one is judged too, and differs. */
	struct pkt head = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 ");
	struct pkt decoy = tcp4_opt(13, TCP_ACK | TCP_PSH, md5_option, sizeof(md5_option),
				    "ORDER BY 1 harmless ok");
	struct pkt real = tcp4(13, TCP_ACK | TCP_PSH, "UNION SELECT pw FROM t");

	ck_assert_int_eq(judge(50, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(50, &decoy), FP_CONTINUE);
	ck_assert_int_eq(judge(50, &real), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.conflicts, 1);
	/* and the other way round: the real copy first is judged and blocks */
	ck_assert_int_eq(judge(51, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(51, &real), FP_BLOCK);
}
END_TEST

START_TEST(signed_copy_never_clears_the_flow)
{
	/* A pass match or the window's end on bytes the receiver may have
	 * discarded (a signature the judge cannot check) would let the real
	 * copy pass uninspected: the flow stays under inspection. */
	struct pkt health = tcp4_opt(1, TCP_ACK | TCP_PSH, md5_option, sizeof(md5_option),
				     "GET /health HTTP/1.1\r\n");
	struct pkt more = tcp4(23, TCP_ACK | TCP_PSH, "x");
	struct pkt evil = tcp4(24, TCP_ACK | TCP_PSH, "UNION SELECT");

	ck_assert_int_eq(judge(52, &health), FP_CONTINUE);
	ck_assert_int_eq(judge(52, &more), FP_CONTINUE);
	ck_assert_uint_eq(st.done, 0);
	ck_assert_int_eq(judge(52, &evil), FP_BLOCK);
	/* the same request without the option, after the handshake's ACK,
	 * is cleared at once */
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");
	struct pkt plain = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	seed_in(ft, 53, 0);
	ck_assert_int_eq(judge(53, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(53, &plain), FP_DONE);
}
END_TEST

START_TEST(data_before_the_handshake_ack_never_clears)
{
	/* Data that opens the entry: the receiver took the SYN's timestamp,
	 * the judge did not keep it, so a pass match or the window's end on
	 * these bytes must not clear the flow; a block match still blocks. */
	struct pkt health = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt evil = tcp4(23, TCP_ACK | TCP_PSH, "UNION SELECT");

	ck_assert_int_eq(judge(54, &health), FP_CONTINUE);
	ck_assert_uint_eq(st.unseen_start, 1);
	ck_assert_uint_eq(st.done, 0);
	ck_assert_int_eq(judge(54, &evil), FP_BLOCK);
}
END_TEST

START_TEST(syn_seed_is_what_the_receiver_holds)
{
	/* The worker opens the entry with what the SYN told (timestamp
	 * 1000000, TTL 64): a handshake ACK and data older than it are
	 * discarded by the receiver, so the ACK changes nothing and the data
	 * is dropped; the real request then decides, and may clear the flow
	 * (the entry knows the SYN: not unseen_start). */
	struct fp_syn_info syn;
	struct pkt syn_pkt = tcp4_ts(0, TCP_SYN, 1000000, "");
	struct fp_packet pk;
	fp_packet_parse(&pk, syn_pkt.b, syn_pkt.len);
	ck_assert(fp_syn_info_of(&pk, &syn));
	ck_assert(syn.has_ts && syn.tsval == 1000000 && syn.ttl == 64);
	/* and the peer's SYN-ACK, whose next number is the ACK 0 of these */
	ck_assert(!fp_syn_info_peer(&syn, PEER_ISN_ACK0));
	struct fp_flow_key key;
	fp_flow_key_ct(&key, 56);
	fp_flows_seed_syn(ft, &key, &syn, 100, &st);
	struct pkt old_ack = tcp4_ts(1, TCP_ACK, 900000, "");
	struct pkt decoy = tcp4_ts(1, TCP_ACK | TCP_PSH, 900000, "GET /health HTTP/1.1\r\n");
	struct pkt real = tcp4_ts(1, TCP_ACK | TCP_PSH, 1000010, "GET /health HTTP/1.1\r\n");
	ck_assert_int_eq(judge(56, &old_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(56, &decoy), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 1);
	ck_assert_int_eq(judge(56, &real), FP_DONE);
	ck_assert_uint_eq(st.unseen_start, 0);
	/* a packet with an ACK is not a SYN to keep */
	fp_packet_parse(&pk, real.b, real.len);
	ck_assert(!fp_syn_info_of(&pk, &syn));
}
END_TEST

START_TEST(unseeded_flow_never_clears)
{
	/* The judge does not know the flow's SYN (the worker's memo of it was
	 * taken): a pass match must not clear it, a block match still blocks. */
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");
	struct pkt health = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt evil = tcp4(23, TCP_ACK | TCP_PSH, "UNION SELECT");

	ck_assert_int_eq(judge(60, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(60, &health), FP_CONTINUE);
	ck_assert_uint_eq(st.unseen_start, 1);
	ck_assert_uint_eq(st.done, 0);
	ck_assert_int_eq(judge(60, &evil), FP_BLOCK);
}
END_TEST

START_TEST(stream_starts_right_after_the_syn)
{
	/* A first packet ahead of the SYN's next byte (decoys there would be
	 * kept out of order by the receiver, never delivered) is dropped. */
	struct pkt ahead = tcp4(10001, TCP_ACK, "");
	struct pkt decoy = tcp4(10001, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");
	struct pkt health = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");

	seed_in(ft, 61, 0);
	ck_assert_int_eq(judge(61, &ahead), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(61, &decoy), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 2);
	ck_assert_int_eq(judge(61, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(61, &health), FP_DONE);
}
END_TEST

START_TEST(older_ack_is_a_copy_the_receiver_discards)
{
	/* After the handshake's ACK (5000), a segment acknowledging less is
	 * discarded by the receiver (RFC 5961 section 5.2): dropped, so that
	 * decoys of that kind cannot fill the window. */
	struct pkt hs_ack = tcp4_ack(1, 5000, TCP_ACK, "");
	struct pkt head = tcp4_ack(1, 5000, TCP_ACK | TCP_PSH, "GET /x?id=1 ");
	struct pkt decoy = tcp4_ack(13, 1000, TCP_ACK | TCP_PSH, "ORDER BY 1");
	struct pkt real = tcp4_ack(13, 5000, TCP_ACK | TCP_PSH, "UNION SELECT");

	seed_in_peer(ft, 62, 0, 4999);
	ck_assert_int_eq(judge(62, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(62, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(62, &decoy), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 1);
	ck_assert_int_eq(judge(62, &real), FP_BLOCK);
}
END_TEST

START_TEST(ack_older_than_the_peer_isn_is_discarded)
{
	/* Before the handshake's ACK, decoys at the stream's start whose
	 * ACK is 5000 older than the peer's ISN + 1 (5000): the receiver
	 * discards them, conntrack lets them by. They must neither fill the
	 * window (4096 bytes) nor start the stream: dropped as suspect. */
	char fill[1401];
	memset(fill, 'a', 1400);
	fill[1400] = '\0';
	struct pkt bare = tcp4_ack(1, 0, TCP_ACK, "");
	struct pkt hs_ack = tcp4_ack(1, 5000, TCP_ACK, "");
	struct pkt real = tcp4_ack(1, 5000, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION SELECT");
	struct pkt late = tcp4_ack(25, 4000, TCP_ACK | TCP_PSH, "xx");

	seed_in_peer(ft, 64, 0, 4999);
	for (uint32_t i = 0; i < 3; i++) { /* 4200 bytes: past the window */
		struct pkt decoy = tcp4_ack(1 + i * 1400, 0, TCP_ACK | TCP_PSH, fill);
		ck_assert_int_eq(judge(64, &decoy), FP_DROP_SEGMENT);
	}
	ck_assert_int_eq(judge(64, &bare), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 4);
	ck_assert_uint_eq(st.done, 0);
	ck_assert_int_eq(judge(64, &hs_ack), FP_CONTINUE);
	/* after the handshake's ACK: still none older than ISN + 1 */
	ck_assert_int_eq(judge(64, &late), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(64, &real), FP_BLOCK);
	ck_assert_uint_eq(st.unseen_peer_isn, 0);
}
END_TEST

START_TEST(first_ack_is_the_peer_isn_next)
{
	/* Before the handshake's ACK the receiver takes only ISN + 1: a
	 * newer number (of data it never sent) is dropped too; the flow then
	 * starts with the real ACK and may be cleared. */
	struct pkt ahead = tcp4_ack(1, 9000, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt health = tcp4_ack(1, 5000, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");

	seed_in_peer(ft, 65, 0, 4999);
	ck_assert_int_eq(judge(65, &ahead), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 1);
	ck_assert_int_eq(judge(65, &health), FP_DONE);
}
END_TEST

START_TEST(unknown_peer_isn_never_clears)
{
	/* The SYN is known, its SYN-ACK not (not queued, the memo's slot
	 * taken, two with different ISNs): judged, never cleared. */
	struct fp_syn_info syn = { false, 0, 64, 0, false, false, 0 };
	struct fp_flow_key key;
	struct pkt health = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");
	struct pkt evil = tcp4(23, TCP_ACK | TCP_PSH, "UNION SELECT");

	fp_flow_key_ct(&key, 66);
	fp_flows_seed_syn(ft, &key, &syn, 100, &st);
	ck_assert_int_eq(judge(66, &health), FP_CONTINUE);
	ck_assert_uint_eq(st.unseen_peer_isn, 1);
	ck_assert_uint_eq(st.done, 0);
	ck_assert_int_eq(judge(66, &evil), FP_BLOCK);
}
END_TEST

START_TEST(synack_again_with_another_isn_leaves_none)
{
	struct fp_syn_info syn = { false, 0, 64, 0, false, false, 0 };
	struct pkt synack = tcp4_ack(7000, 1, TCP_SYN | TCP_ACK, "");
	struct pkt syn_pkt = tcp4(0, TCP_SYN, "");
	struct fp_packet pk;
	uint32_t isn;

	fp_packet_parse(&pk, synack.b, synack.len);
	ck_assert(fp_synack_isn_of(&pk, &isn));
	ck_assert_uint_eq(isn, 7000);
	fp_packet_parse(&pk, syn_pkt.b, syn_pkt.len);
	ck_assert(!fp_synack_isn_of(&pk, &isn));
	/* the same one again: kept; another: none, for good */
	ck_assert(!fp_syn_info_peer(&syn, 7000));
	ck_assert(!fp_syn_info_peer(&syn, 7000));
	ck_assert(syn.has_peer_isn && syn.peer_isn == 7000);
	ck_assert(fp_syn_info_peer(&syn, 8000));
	ck_assert(!syn.has_peer_isn);
	ck_assert(!fp_syn_info_peer(&syn, 7000));
	ck_assert(!syn.has_peer_isn);
}
END_TEST

START_TEST(syn_again_with_another_isn_never_clears)
{
	/* Two SYNs with different sequence numbers: the judge cannot tell
	 * which one the receiver holds. */
	struct pkt syn2 = tcp4(40000, TCP_SYN, "");
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");
	struct pkt health = tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");

	seed_in(ft, 63, 0);
	ck_assert_int_eq(judge(63, &syn2), FP_CONTINUE);
	ck_assert_uint_eq(st.syn_changed, 1);
	ck_assert_int_eq(judge(63, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(judge(63, &health), FP_CONTINUE);
	ck_assert_uint_eq(st.done, 0);
	/* a signed SYN is no SYN to open an entry with */
	struct pkt signed_syn = tcp4_opt(0, TCP_SYN, md5_option, sizeof(md5_option), "");
	struct fp_packet pk;
	struct fp_syn_info syn;
	fp_packet_parse(&pk, signed_syn.b, signed_syn.len);
	ck_assert(!fp_syn_info_of(&pk, &syn));
}
END_TEST

START_TEST(stream_after_its_end_never_clears)
{
	/* A bare ACK past a FIN opens the entry afresh (a new connection over
	 * the tuple): the FIN may have been a copy the receiver discarded, so
	 * the new stream is never cleared. */
	struct pkt head = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION");
	struct pkt fin = tcp4(18, TCP_ACK | TCP_FIN, "");
	struct pkt past = tcp4(23, TCP_ACK, "");
	struct pkt health = tcp4(23, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\n");

	seed_in(ft, 64, 0);
	ck_assert_int_eq(judge(64, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(64, &fin), FP_CONTINUE);
	ck_assert_int_eq(judge(64, &past), FP_CONTINUE);
	ck_assert_int_eq(judge(64, &health), FP_CONTINUE);
	ck_assert_uint_eq(st.done, 0);
}
END_TEST

/* An IPv6 TCP segment behind one extension header `h` of hlen bytes (its
 * next-header byte is set here). */
static struct pkt tcp6_behind(uint8_t nh, const uint8_t *h, size_t hlen, const char *data)
{
	struct pkt k;
	uint8_t *p = k.b;
	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = nh;
	p[7] = 64;
	inet_pton(AF_INET6, "fd00:10:1::2", p + 8);
	inet_pton(AF_INET6, "fd00:10:2::2", p + 24);
	memcpy(p + 40, h, hlen);
	p[40] = IPPROTO_TCP;
	size_t n = l4_tcp(p + 40 + hlen, 1, TCP_ACK | TCP_PSH, data, strlen(data));
	size_t plen = hlen + n;
	p[4] = (uint8_t)(plen >> 8), p[5] = (uint8_t)plen;
	k.len = 40 + plen;
	return k;
}

START_TEST(ip_options_the_receiver_acts_on_are_dropped)
{
	/* a destination option whose type says discard, an authentication
	 * header, a routing header with a segment left, an IPv4 option: the
	 * receiver may refuse the packet where the judge cannot see it */
	static const uint8_t discard[8] = { 0, 0, 0x41, 4 };
	static const uint8_t padn[8] = { 0, 0, 1, 4 };
	static const uint8_t ah[24] = { 0, 4, 0, 0, 0, 0, 0x12, 0x34 };
	uint8_t rh[24] = { 0, 2, 0, 1 };
	struct fp_packet pk;

	struct pkt k = tcp6_behind(IPPROTO_DSTOPTS, discard, sizeof(discard), "GET /");
	ck_assert_int_eq(fp_packet_parse(&pk, k.b, k.len), FP_PARSE_IP_OPTIONS);
	ck_assert_int_eq(judge(65, &k), FP_DROP_SEGMENT);
	k = tcp6_behind(IPPROTO_AH, ah, sizeof(ah), "GET /");
	ck_assert_int_eq(judge(65, &k), FP_DROP_SEGMENT);
	k = tcp6_behind(IPPROTO_ROUTING, rh, sizeof(rh), "GET /");
	ck_assert_int_eq(judge(65, &k), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.ip_options, 3);
	/* also when its connection cannot be found */
	ck_assert_int_eq(fp_judge_unknown(k.b, k.len, &st), FP_DROP_SEGMENT);
	/* padding, and a routing header with no segment left, are taken */
	k = tcp6_behind(IPPROTO_DSTOPTS, padn, sizeof(padn), "GET /");
	ck_assert_int_eq(fp_packet_parse(&pk, k.b, k.len), FP_PARSE_OK);
	rh[3] = 0;
	k = tcp6_behind(IPPROTO_ROUTING, rh, sizeof(rh), "GET /");
	ck_assert_int_eq(fp_packet_parse(&pk, k.b, k.len), FP_PARSE_OK);
	/* IPv4: a record-route option; NOPs alone are taken */
	struct pkt v4 = tcp4(1, TCP_ACK | TCP_PSH, "GET /");
	memmove(v4.b + 24, v4.b + 20, v4.len - 20);
	v4.b[0] = 0x46;
	v4.b[20] = 7, v4.b[21] = 3, v4.b[22] = 4, v4.b[23] = 0;
	v4.len += 4;
	v4.b[2] = (uint8_t)(v4.len >> 8), v4.b[3] = (uint8_t)v4.len;
	ck_assert_int_eq(fp_packet_parse(&pk, v4.b, v4.len), FP_PARSE_IP_OPTIONS);
	memset(v4.b + 20, 1, 4);
	ck_assert_int_eq(fp_packet_parse(&pk, v4.b, v4.len), FP_PARSE_OK);
}
END_TEST

START_TEST(copies_the_receiver_discards_are_dropped)
{
	struct pkt ack = tcp4_ts(1, TCP_ACK, 5000, "");
	struct pkt no_ack = tcp4_ts(1, TCP_PSH, 5001, "harmless");
	struct pkt old_ts = tcp4_ts(1, TCP_ACK | TCP_PSH, 4000, "harmless");
	struct pkt low_ttl = tcp4_ts(1, TCP_ACK | TCP_PSH, 5001, "harmless");
	struct pkt real = tcp4_ts(1, TCP_ACK | TCP_PSH, 5002, "UNION SELECT");

	low_ttl.b[8] = 2; /* dies on the way: the flow's others had 64 */
	ck_assert_int_eq(judge(54, &ack), FP_CONTINUE);
	ck_assert_int_eq(judge(54, &no_ack), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(54, &old_ts), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(54, &low_ttl), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.suspect, 3);
	ck_assert_int_eq(judge(54, &real), FP_BLOCK);
	/* a timestamp one behind passes the receiver's PAWS test, and here */
	struct pkt a = tcp4_ts(1, TCP_ACK | TCP_PSH, 5000, "abc");
	struct pkt b = tcp4_ts(4, TCP_ACK | TCP_PSH, 4999, "def");
	ck_assert_int_eq(judge(55, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(55, &b), FP_CONTINUE);
}
END_TEST

START_TEST(urgent_data_is_dropped)
{
	/* send("... UNION"), send("X", MSG_OOB), send("   SELECT"): the
	 * application reads "UNION   SELECT", a judge of the bytes sees
	 * "UNIONX   SELECT". */
	struct pkt head = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION");
	struct pkt oob = tcp4(18, TCP_ACK | TCP_PSH | 0x20, "X");
	struct pkt ptr = tcp4(18, TCP_ACK | 0x20, "");
	struct pkt tail = tcp4(19, TCP_ACK | TCP_PSH, "   SELECT pw");

	ck_assert_int_eq(judge(56, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(56, &oob), FP_DROP_SEGMENT);
	/* an urgent pointer without data names a byte of a later segment */
	ck_assert_int_eq(judge(56, &ptr), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.urgent, 2);
	ck_assert_int_eq(judge(56, &tail), FP_DROP_SEGMENT); /* a gap now */
}
END_TEST

START_TEST(fin_or_rst_not_at_the_end_is_dropped)
{
	struct pkt head = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION");
	struct pkt fin_ahead = tcp4(19, TCP_ACK | TCP_FIN, "");
	struct pkt fin_inside = tcp4(5, TCP_ACK | TCP_FIN, "");
	struct pkt rst_window = tcp4(118, TCP_RST, "");
	struct pkt tail = tcp4(18, TCP_ACK | TCP_PSH, "   SELECT pw");

	ck_assert_int_eq(judge(57, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(57, &fin_ahead), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(57, &fin_inside), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(57, &rst_window), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.bad_end, 3);
	ck_assert_uint_eq(fp_flows_count(ft), 1);
	/* the stream goes on where it was: the injection is found */
	ck_assert_int_eq(judge(57, &tail), FP_BLOCK);
}
END_TEST

START_TEST(data_after_the_end_is_dropped)
{
	struct pkt head = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION");
	struct pkt rst = tcp4(18, TCP_RST | TCP_ACK, "");
	struct pkt tail = tcp4(18, TCP_ACK | TCP_PSH, "   SELECT pw");
	struct pkt again = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 UNION");
	struct pkt other = tcp4(1, TCP_ACK | TCP_PSH, "GET /x?id=1 OTHER");

	ck_assert_int_eq(judge(58, &head), FP_CONTINUE);
	ck_assert_int_eq(judge(58, &rst), FP_CONTINUE); /* at the next byte: taken */
	ck_assert_uint_eq(fp_flows_count(ft), 0);
	/* the entry remembers the stream: nothing starts afresh after it */
	ck_assert_int_eq(judge(58, &tail), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(58, &again), FP_CONTINUE);
	ck_assert_int_eq(judge(58, &other), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.flows, 1);
}
END_TEST

START_TEST(first_packet_must_be_a_syn)
{
	struct fp_flows *scratch = fp_flows_new(1);
	struct pkt syn = tcp4(1, TCP_SYN, "");
	struct pkt mid = tcp4(100, TCP_ACK | TCP_PSH, "   SELECT pw");
	struct pkt ack = tcp4(100, TCP_ACK, "");
	struct pkt syn_data = tcp4(1, TCP_SYN, "UNION");
	struct pkt evil = udp4("an evil query");
	struct pkt fine = udp4("fine");

	ck_assert_int_eq(fp_judge_first(scratch, rs, 1, syn.b, syn.len, &st, NULL, NULL),
			 FP_CONTINUE);
	/* conntrack picked a connection up in its middle: its start is lost */
	ck_assert_int_eq(fp_judge_first(scratch, rs, 1, mid.b, mid.len, &st, NULL, NULL),
			 FP_DROP_SEGMENT);
	ck_assert_int_eq(fp_judge_first(scratch, rs, 1, ack.b, ack.len, &st, NULL, NULL),
			 FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.midstream, 2);
	ck_assert_int_eq(fp_judge_first(scratch, rs, 1, syn_data.b, syn_data.len, &st, NULL, NULL),
			 FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.syn_data, 1);
	/* UDP: the first datagram is judged alone */
	ck_assert_int_eq(fp_judge_first(scratch, rs, 2, fine.b, fine.len, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge_first(scratch, rs, 2, evil.b, evil.len, &st, NULL, NULL),
			 FP_BLOCK);
	ck_assert_uint_eq(fp_flows_count(scratch), 0);
	fp_flows_free(scratch);
}
END_TEST

START_TEST(unknown_connection_unparsable_is_dropped)
{
	struct pkt ok = tcp4(1, TCP_ACK, "x");
	struct pkt cut = tcp4(1, TCP_ACK, "x");
	cut.b[3] = 200; /* total length past the packet */

	ck_assert_int_eq(fp_judge_unknown(ok.b, ok.len, &st), FP_CONTINUE);
	ck_assert_uint_eq(st.ct_unknown, 1);
	ck_assert_int_eq(fp_judge_unknown(cut.b, cut.len, &st), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.malformed, 1);
	ck_assert_uint_eq(st.packets, 2);
}
END_TEST

START_TEST(gap_is_dropped_then_in_order_passes)
{
	struct pkt a = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 ");
	struct pkt late = tcp4(100 + 10 + 6, TCP_ACK | TCP_PSH, "SELECT 1");
	struct pkt mid = tcp4(100 + 10, TCP_ACK | TCP_PSH, "UNION ");

	ck_assert_int_eq(judge(13, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(13, &late), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.segments_dropped, 1);
	ck_assert_int_eq(judge(13, &mid), FP_CONTINUE);
	ck_assert_int_eq(judge(13, &late), FP_BLOCK);
}
END_TEST

START_TEST(sequence_wraps)
{
	struct pkt a = tcp4(0xfffffffa, TCP_ACK | TCP_PSH, "xx UNION");
	struct pkt b = tcp4(2, TCP_ACK | TCP_PSH, " SELECT");

	ck_assert_int_eq(judge(14, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(14, &b), FP_BLOCK);
}
END_TEST

START_TEST(window_bytes_then_done)
{
	char chunk[1001];
	uint32_t seq = 1;
	enum fp_verdict v = FP_CONTINUE;
	int n = 0;

	memset(chunk, 'a', 1000);
	chunk[1000] = 0;
	struct pkt hs_ack = tcp4(seq, TCP_ACK, "");
	seed_in(ft, 15, 0);
	ck_assert_int_eq(judge(15, &hs_ack), FP_CONTINUE); /* the handshake's ACK */
	while (v == FP_CONTINUE && n < 10) {
		struct pkt k = tcp4(seq, TCP_ACK, chunk);
		v = judge(15, &k);
		seq += 1000;
		n++;
	}
	ck_assert_int_eq(v, FP_DONE);
	ck_assert_int_eq(n, 5); /* 4096 bytes are reached with the fifth */
	ck_assert_uint_eq(st.window_done, 1);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
}
END_TEST

START_TEST(window_counts_bytes_not_segments)
{
	/* A request cut into one-byte segments is judged whole: as many
	 * segments as it takes do not end the window. */
	const char *req = "GET /x?id=1 UNION SELECT pw";
	uint32_t seq = 1;
	enum fp_verdict v = FP_CONTINUE;
	for (size_t i = 0; req[i] && v == FP_CONTINUE; i++) {
		char one[2] = { req[i], 0 };
		struct pkt k = tcp4(seq++, TCP_ACK, one);
		v = judge(16, &k);
		ck_assert_int_ne(v, FP_DONE);
	}
	ck_assert_int_eq(v, FP_BLOCK);
	ck_assert_uint_gt(strlen(req), FP_INSPECT_PACKETS);
	ck_assert_uint_eq(st.window_done, 0);
}
END_TEST

START_TEST(fin_and_rst_end_the_entry)
{
	struct pkt a = tcp4(1, TCP_ACK, "abc");
	struct pkt fin = tcp4(4, TCP_ACK | TCP_FIN, "");
	struct pkt rst = tcp4(4, TCP_RST, "");

	ck_assert_int_eq(judge(17, &a), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 1);
	ck_assert_int_eq(judge(17, &fin), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
	ck_assert_int_eq(judge(18, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(18, &rst), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
}
END_TEST

START_TEST(ipv6_extension_headers)
{
	struct pkt a = tcp6_ext(1, "GET / UNION");
	struct pkt b = tcp6_ext(12, " SELECT");
	struct fp_event ev;
	bool has;

	ck_assert_int_eq(judge(19, &a), FP_CONTINUE);
	ck_assert_int_eq(judge_ev(labels_tcp, 19, &b, 100, &ev, &has), FP_BLOCK);
	ck_assert(has);
	ck_assert_int_eq(ev.family, AF_INET6);
	ck_assert_uint_eq(ev.dport, 80);
	ck_assert_uint_eq(ev.dst[15], 2);
	ck_assert_uint_eq(st.malformed, 0);
}
END_TEST

START_TEST(ipv6_fragment_continues)
{
	struct pkt k = tcp6_ext(1, "UNION SELECT");
	k.b[40 + 8 + 16 + 3] = 1; /* M flag */
	ck_assert_int_eq(judge(20, &k), FP_CONTINUE);
	ck_assert_uint_eq(st.fragments, 1);
	k.b[40 + 8 + 16 + 3] = 0;
	k.b[40 + 8 + 16 + 2] = 1; /* offset 32 */
	ck_assert_int_eq(judge(20, &k), FP_CONTINUE);
	ck_assert_uint_eq(st.fragments, 2);
}
END_TEST

START_TEST(ipv4_fragment_continues)
{
	struct pkt k = tcp4(1, TCP_ACK, "UNION SELECT");
	k.b[6] = 0x00, k.b[7] = 0x10; /* offset 16 * 8 */
	ck_assert_int_eq(judge(21, &k), FP_CONTINUE);
	ck_assert_uint_eq(st.fragments, 1);
}
END_TEST

START_TEST(truncated_packets_are_malformed)
{
	struct pkt full = tcp4(1, TCP_ACK, "UNION SELECT");
	struct pkt v6 = tcp6_ext(1, "UNION SELECT");
	uint64_t before;

	/* Every prefix of a packet that cuts a header, or that its lengths
	 * claim to exceed, is malformed and dropped (ASan checks the reads). */
	for (size_t len = 0; len < full.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, full.b, len);
		before = st.malformed;
		ck_assert_int_eq(fp_judge(ft, rs, 22, labels_tcp, copy, len, 100, &st, NULL, NULL),
				 FP_DROP_SEGMENT);
		ck_assert_uint_eq(st.malformed, before + 1);
		free(copy);
	}
	for (size_t len = 0; len < v6.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, v6.b, len);
		before = st.malformed;
		ck_assert_int_eq(fp_judge(ft, rs, 23, labels_tcp, copy, len, 100, &st, NULL, NULL),
				 FP_DROP_SEGMENT);
		ck_assert_uint_eq(st.malformed, before + 1);
		free(copy);
	}
}
END_TEST

START_TEST(inconsistent_headers_are_malformed)
{
	struct pkt k = tcp4(1, TCP_ACK, "UNION SELECT");
	k.b[0] = 0x44; /* IHL 16 bytes */
	ck_assert_int_eq(judge(24, &k), FP_DROP_SEGMENT);
	k = tcp4(1, TCP_ACK, "UNION SELECT");
	k.b[20 + 12] = 0xf0; /* data offset 60 > segment */
	ck_assert_int_eq(judge(24, &k), FP_DROP_SEGMENT);
	k = tcp4(1, TCP_ACK, "UNION SELECT");
	k.b[20 + 12] = 0x40; /* data offset 16 < 20 */
	ck_assert_int_eq(judge(24, &k), FP_DROP_SEGMENT);
	k = udp4("evil");
	k.b[20 + 5] = 200; /* UDP length past the packet */
	ck_assert_int_eq(judge_ev(labels_udp, 25, &k, 100, NULL, NULL), FP_DROP_SEGMENT);
	k = tcp6_ext(1, "x");
	k.b[40 + 1] = 200; /* hop-by-hop longer than the packet */
	ck_assert_int_eq(judge(26, &k), FP_DROP_SEGMENT);
	k = tcp4(1, TCP_ACK, "x");
	k.b[0] = 0x75; /* version 7 */
	ck_assert_int_eq(judge(27, &k), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.malformed, 6);
	ck_assert_uint_eq(st.blocked, 0);
}
END_TEST

START_TEST(ipv6_header_chain_is_bounded)
{
	struct pkt k;
	uint8_t *p = k.b;
	size_t n = 12; /* more destination options headers than the walk takes */

	memset(p, 0, sizeof(k.b));
	p[0] = 0x60;
	p[6] = IPPROTO_DSTOPTS;
	for (size_t i = 0; i < n; i++)
		p[40 + 8 * i] = i + 1 < n ? IPPROTO_DSTOPTS : IPPROTO_TCP;
	size_t t = l4_tcp(p + 40 + 8 * n, 1, TCP_ACK, "UNION SELECT", 12);
	size_t plen = 8 * n + t;
	p[4] = (uint8_t)(plen >> 8), p[5] = (uint8_t)plen;
	k.len = 40 + plen;
	/* The kernel walks them all: the packet is not passed unjudged. */
	ck_assert_int_eq(judge(28, &k), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.ext_headers, 1);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_int_eq(fp_judge_unknown(k.b, k.len, &st), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.ext_headers, 2);
}
END_TEST

START_TEST(other_protocols_are_done)
{
	struct pkt k = tcp4(1, TCP_ACK, "x");
	k.b[9] = IPPROTO_ICMP;
	ck_assert_int_eq(judge(29, &k), FP_DONE);
	ck_assert_uint_eq(st.done, 1);
}
END_TEST

START_TEST(udp_each_datagram_alone)
{
	struct pkt a = udp4("ev");
	struct pkt b = udp4("il");
	struct pkt c = udp4("an evil query");
	struct fp_event ev;
	bool has;

	ck_assert_int_eq(judge_ev(labels_udp, 30, &a, 100, NULL, NULL), FP_CONTINUE);
	/* Datagrams are not a stream: "ev" + "il" is no match. */
	ck_assert_int_eq(judge_ev(labels_udp, 30, &b, 100, NULL, NULL), FP_CONTINUE);
	ck_assert_int_eq(judge_ev(labels_udp, 30, &c, 100, &ev, &has), FP_BLOCK);
	ck_assert(has);
	ck_assert_uint_eq(ev.rule, 2);
	ck_assert_uint_eq(ev.protocol, IPPROTO_UDP);
	ck_assert(ev.log);
	ck_assert_uint_eq(ev.dport, 53);
}
END_TEST

START_TEST(udp_datagram_count_window)
{
	struct pkt a = udp4("fine");
	for (int i = 1; i <= FP_INSPECT_PACKETS; i++)
		ck_assert_int_eq(judge_ev(labels_udp, 31, &a, 100, NULL, NULL),
				 i < FP_INSPECT_PACKETS ? FP_CONTINUE : FP_DONE);
	ck_assert_uint_eq(st.window_done, 1);
}
END_TEST

START_TEST(unknown_rule_number_is_done)
{
	uint8_t l[FP_LABEL_BYTES];
	struct pkt k = tcp4(1, TCP_ACK, "UNION SELECT");

	fp_labels_pending(l, 0);
	ck_assert_int_eq(fp_judge(ft, rs, 32, l, k.b, k.len, 100, &st, NULL, NULL), FP_DONE);
	fp_labels_pending(l, 3);
	ck_assert_int_eq(fp_judge(ft, rs, 32, l, k.b, k.len, 100, &st, NULL, NULL), FP_DONE);
	ck_assert_uint_eq(st.unknown_rule, 2);
	ck_assert_uint_eq(st.blocked, 0);
}
END_TEST

START_TEST(table_full_is_done)
{
	struct fp_flows *small = fp_flows_new(2);
	struct pkt k = tcp4(1, TCP_ACK, "abc");

	ck_assert_int_eq(fp_judge(small, rs, 1, labels_tcp, k.b, k.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, k.b, k.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 3, labels_tcp, k.b, k.len, 100, &st, NULL, NULL),
			 FP_DONE);
	ck_assert_uint_eq(st.table_full, 1);
	ck_assert_uint_eq(fp_flows_count(small), 2);
	/* A known flow still goes on. */
	k = tcp4(4, TCP_ACK, "def");
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, k.b, k.len, 101, &st, NULL, NULL),
			 FP_CONTINUE);
	fp_flows_free(small);
}
END_TEST

START_TEST(idle_flows_expire)
{
	struct fp_flows *small = fp_flows_new(2);
	struct pkt k = tcp4(1, TCP_ACK, "GET / UNION");
	struct pkt rest = tcp4(12, TCP_ACK, " SELECT");

	ck_assert_int_eq(fp_judge(small, rs, 1, labels_tcp, k.b, k.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, k.b, k.len, 130, &st, NULL, NULL),
			 FP_CONTINUE);
	fp_flows_expire(small, 100 + FP_IDLE_SECONDS - 1, &st);
	ck_assert_uint_eq(fp_flows_count(small), 2);
	fp_flows_expire(small, 100 + FP_IDLE_SECONDS, &st);
	ck_assert_uint_eq(fp_flows_count(small), 1);
	ck_assert_uint_eq(st.expired, 1);
	/* Flow 1 starts afresh: its old bytes are gone, " SELECT" alone passes. */
	ck_assert_int_eq(fp_judge(small, rs, 1, labels_tcp, rest.b, rest.len, 161, &st, NULL, NULL),
			 FP_CONTINUE);
	/* Flow 2, seen at 130, is still whole at 161. */
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, rest.b, rest.len, 161, &st, NULL, NULL),
			 FP_BLOCK);
	fp_flows_free(small);
}
END_TEST

START_TEST(many_flows_reuse_entries)
{
	struct fp_flows *small = fp_flows_new(64);
	struct pkt k = tcp4(1, TCP_ACK, "GET /health");
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");

	/* Each decided flow frees its entry: far more flows than entries. */
	for (uint32_t ct = 1; ct <= 1000; ct++) {
		seed_in(small, ct, 0);
		ck_assert_int_eq(
		    fp_judge(small, rs, ct, labels_tcp, hs_ack.b, hs_ack.len, 100, &st, NULL, NULL),
		    FP_CONTINUE);
		ck_assert_int_eq(
		    fp_judge(small, rs, ct, labels_tcp, k.b, k.len, 100, &st, NULL, NULL), FP_DONE);
	}
	ck_assert_uint_eq(fp_flows_count(small), 0);
	ck_assert_uint_eq(st.table_full, 0);
	fp_flows_free(small);
}
END_TEST

START_TEST(closed_flow_leaves_a_marker)
{
	struct pkt a = tcp4(1, TCP_ACK, "abc");
	struct pkt fin = tcp4(4, TCP_ACK | TCP_FIN, "");
	struct pkt last_ack = tcp4(5, TCP_ACK, "");

	ck_assert_int_eq(judge(40, &a), FP_CONTINUE);
	ck_assert_int_eq(judge(40, &fin), FP_CONTINUE);
	/* The sender's last ACK after its FIN opens no new entry (it would
	 * idle for a minute: one per connection at thousands a second). */
	ck_assert_int_eq(judge(40, &last_ack), FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
	ck_assert_uint_eq(st.flows, 1);
	/* A retransmission of the FIN with its data passes; other bytes in
	 * its place, or data past the FIN, are dropped. */
	struct pkt same = tcp4(1, TCP_ACK | TCP_FIN, "abc");
	struct pkt again = tcp4(1, TCP_ACK | TCP_FIN, "UNION SELECT");
	struct pkt past = tcp4(4, TCP_ACK, "UNION SELECT");
	ck_assert_int_eq(judge(40, &same), FP_CONTINUE);
	ck_assert_int_eq(judge(40, &again), FP_DROP_SEGMENT);
	ck_assert_int_eq(judge(40, &past), FP_DROP_SEGMENT);
	ck_assert_uint_eq(st.flows, 1);
	ck_assert_uint_eq(fp_flows_count(ft), 0);
	/* A new connection with the same tuple that conntrack gave the same
	 * id: its handshake ACK is far from the old end, and its stream is
	 * judged afresh (the old marker would drop all of its data). */
	struct pkt new_ack = tcp4(90001, TCP_ACK, "");
	struct pkt new_data = tcp4(90001, TCP_ACK | TCP_PSH, "x UNION SELECT 1");
	ck_assert_int_eq(judge(40, &new_ack), FP_CONTINUE);
	ck_assert_uint_eq(st.flows, 2);
	ck_assert_int_eq(judge(40, &new_data), FP_BLOCK);
}
END_TEST

START_TEST(closed_markers_make_room)
{
	struct fp_flows *small = fp_flows_new(2);
	struct pkt a = tcp4(1, TCP_ACK, "abc");
	struct pkt fin = tcp4(4, TCP_ACK | TCP_FIN, "");
	struct pkt udp = udp4("fine");

	ck_assert_int_eq(fp_judge(small, rs, 1, labels_tcp, a.b, a.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 1, labels_tcp, fin.b, fin.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, a.b, a.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	/* Full but for a marker: the marker makes room for the new flow. */
	ck_assert_int_eq(fp_judge(small, rs, 3, labels_tcp, a.b, a.len, 100, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_uint_eq(st.table_full, 0);
	ck_assert_uint_eq(fp_flows_count(small), 2);
	/* Markers go after a few seconds; a live flow only when idle. */
	ck_assert_int_eq(fp_judge(small, rs, 3, labels_tcp, fin.b, fin.len, 101, &st, NULL, NULL),
			 FP_CONTINUE);
	fp_flows_expire(small, 110, &st);
	ck_assert_uint_eq(fp_flows_count(small), 1);
	ck_assert_uint_eq(st.expired, 0);
	/* A UDP flow whose conntrack id a marker still holds (ids are reused). */
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_tcp, fin.b, fin.len, 111, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_int_eq(fp_judge(small, rs, 2, labels_udp, udp.b, udp.len, 111, &st, NULL, NULL),
			 FP_CONTINUE);
	ck_assert_uint_eq(fp_flows_count(small), 1);
	fp_flows_free(small);
}
END_TEST

/* The ones' complement sum of a TCP segment with its pseudo-header: 0xffff
 * when the checksum in it is right. */
static uint16_t tcp_sum(const uint8_t *ip, size_t len)
{
	bool v4 = ip[0] >> 4 == 4;
	size_t hl = v4 ? 20 : 40, alen = v4 ? 4 : 16;
	const uint8_t *src = v4 ? ip + 12 : ip + 8;
	uint32_t sum = IPPROTO_TCP + (uint32_t)(len - hl);
	for (size_t i = 0; i < 2 * alen; i += 2)
		sum += (uint32_t)(src[i] << 8 | src[i + 1]);
	for (size_t i = hl; i + 1 < len; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(block_resets_both_ends)
{
	struct pkt head = tcp4(100, TCP_ACK | TCP_PSH, "GET /?q=1 UNI");
	/* overlaps "UNI": the receiver's next byte is 113, not the segment's 110 */
	struct pkt rest = tcp4(110, TCP_ACK | TCP_PSH, "UNION SELECT 1");
	struct fp_event ev;
	bool has;
	uint8_t to_receiver[FP_RESET_MAX], to_sender[FP_RESET_MAX];
	size_t lr, ls;

	rest.b[20 + 8] = 0x00, rest.b[20 + 9] = 0x01, rest.b[20 + 10] = 0x02,
		    rest.b[20 + 11] = 0x03;
	ck_assert_int_eq(judge(60, &head), FP_CONTINUE);
	ck_assert_int_eq(judge_ev(labels_tcp, 60, &rest, 100, &ev, &has), FP_BLOCK);
	ck_assert_uint_eq(ev.tcp_next_seq, 113);
	ck_assert_uint_eq(ev.tcp_ack, 0x00010203);
	ck_assert_int_eq(fp_tcp_resets(&ev, to_receiver, &lr, to_sender, &ls), 0);
	ck_assert_uint_eq(lr, 40);
	ck_assert_uint_eq(ls, 40);
	/* to the receiver, from the sender: at the byte it expects */
	ck_assert_mem_eq(to_receiver + 12, "\x0a\x0a\x01\x02\x0a\x0a\x02\x02", 8);
	ck_assert_mem_eq(to_receiver + 20, "\x9c\x40\x00\x50", 4);
	ck_assert_uint_eq(be32(to_receiver + 24), 113);
	ck_assert_uint_eq(to_receiver[33], TCP_RST | TCP_ACK);
	ck_assert_uint_eq(tcp_sum(to_receiver, lr), 0xffff);
	/* the IPv4 header checksum */
	uint32_t sum = 0;
	for (size_t i = 0; i < 20; i += 2)
		sum += (uint32_t)(to_receiver[i] << 8 | to_receiver[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ck_assert_uint_eq(sum, 0xffff);
	/* to the sender, from the receiver: at the byte the sender acknowledged */
	ck_assert_mem_eq(to_sender + 12, "\x0a\x0a\x02\x02\x0a\x0a\x01\x02", 8);
	ck_assert_mem_eq(to_sender + 20, "\x00\x50\x9c\x40", 4);
	ck_assert_uint_eq(be32(to_sender + 24), 0x00010203);
	ck_assert_uint_eq(be32(to_sender + 28), 113);
	ck_assert_uint_eq(tcp_sum(to_sender, ls), 0xffff);

	/* IPv6 */
	struct pkt a6 = tcp6_ext(7, "x union select");
	ck_assert_int_eq(judge_ev(labels_tcp, 61, &a6, 100, &ev, &has), FP_BLOCK);
	ck_assert_int_eq(fp_tcp_resets(&ev, to_receiver, &lr, to_sender, &ls), 0);
	ck_assert_uint_eq(lr, 60);
	ck_assert_uint_eq(to_receiver[0] >> 4, 6);
	ck_assert_uint_eq(to_receiver[6], IPPROTO_TCP);
	ck_assert_uint_eq(be32(to_receiver + 40 + 4), 7);
	ck_assert_uint_eq(tcp_sum(to_receiver, lr), 0xffff);
	ck_assert_uint_eq(tcp_sum(to_sender, ls), 0xffff);

	/* UDP: nothing to reset */
	struct pkt u = udp4("evil");
	ck_assert_int_eq(judge_ev(labels_udp, 62, &u, 100, &ev, &has), FP_BLOCK);
	ck_assert_int_eq(fp_tcp_resets(&ev, to_receiver, &lr, to_sender, &ls), -EINVAL);
}
END_TEST

/* ---- protocol fields ---- */

static const char fields_text[] = "zone lan { interface \"lan0\" }\n"
				  "zone dmz { interface \"dmz0\" }\n"
				  "pass from lan to dmz service tcp port 443 inspect {\n"
				  "  block tls.sni \"*.Evil.Example.\" log \"sni\"\n"
				  "}\n"
				  "pass from lan to dmz service tcp port 80 inspect {\n"
				  "  pass http.path \"/health\"\n"
				  "  block http.host \"evil.example\"\n"
				  "  block http.path /^\\/admin/i\n"
				  "}\n"
				  "pass from lan to dmz service udp port 53 inspect {\n"
				  "  block dns.qname \"*.tracker.example\"\n"
				  "  block content /never/\n"
				  "}\n";

struct fields_fixture {
	struct policy_diags d;
	struct policy *p;
	struct fp_ruleset *rs;
	struct fp_flows *ft;
	uint8_t l_tls[FP_LABEL_BYTES], l_http[FP_LABEL_BYTES], l_dns[FP_LABEL_BYTES];
};

static void fields_open(struct fields_fixture *f)
{
	char err[256] = "";
	policy_diags_init(&f->d);
	f->p = policy_load_text("f.hvp", fields_text, strlen(fields_text), NULL, &f->d);
	ck_assert_msg(f->p, "fields policy does not load");
	f->rs = fp_ruleset_build(f->p, err, sizeof(err));
	ck_assert_msg(f->rs, "%s", err);
	f->ft = fp_flows_new(0);
	fp_labels_pending(f->l_tls, 1);
	fp_labels_pending(f->l_http, 2);
	fp_labels_pending(f->l_dns, 3);
}

static void fields_close(struct fields_fixture *f)
{
	fp_flows_free(f->ft);
	fp_ruleset_free(f->rs);
	policy_free(f->p);
	policy_diags_free(&f->d);
}

static struct pkt tcp4_n(uint32_t seq, const void *data, size_t n)
{
	struct pkt k;
	ck_assert_uint_le(n, sizeof(k.b) - 40);
	size_t l = l4_tcp(k.b + 20, seq, TCP_ACK | TCP_PSH, data, n);
	ipv4(&k, IPPROTO_TCP, l);
	return k;
}

static struct pkt udp4_n(const void *data, size_t n)
{
	struct pkt k;
	size_t l = l4_udp(k.b + 20, data, n);
	ipv4(&k, IPPROTO_UDP, l);
	return k;
}

static enum fp_verdict fjudge(struct fields_fixture *f, const uint8_t *labels, uint32_t ct,
			      const struct pkt *k)
{
	return fp_judge(f->ft, f->rs, ct, labels, k->b, k->len, 100, &st, NULL, NULL);
}

/* A one-record ClientHello naming `sni` (a supported groups extension
 * before the server name, as clients send). */
static size_t client_hello(uint8_t *o, const char *sni)
{
	size_t sl = strlen(sni), b = 0;
	uint8_t body[512];
	body[b++] = 3, body[b++] = 3;
	memset(body + b, 7, 32), b += 32;
	body[b++] = 0;
	memcpy(body + b, "\x00\x02\x13\x01\x01\x00", 6), b += 6;
	size_t ext_len = 8 + 4 + 5 + sl;
	body[b++] = (uint8_t)(ext_len >> 8), body[b++] = (uint8_t)ext_len;
	memcpy(body + b, "\x00\x0a\x00\x04\x00\x02\x00\x1d", 8), b += 8;
	body[b++] = 0, body[b++] = 0, body[b++] = 0, body[b++] = (uint8_t)(5 + sl);
	body[b++] = 0, body[b++] = (uint8_t)(3 + sl), body[b++] = 0;
	body[b++] = 0, body[b++] = (uint8_t)sl;
	memcpy(body + b, sni, sl), b += sl;
	o[0] = 22, o[1] = 3, o[2] = 1, o[3] = (uint8_t)((b + 4) >> 8), o[4] = (uint8_t)(b + 4);
	o[5] = 1, o[6] = 0, o[7] = (uint8_t)(b >> 8), o[8] = (uint8_t)b;
	memcpy(o + 9, body, b);
	return 9 + b;
}

START_TEST(tls_sni_split_across_segments_is_blocked)
{
	struct fields_fixture f;
	uint8_t ch[600];
	fields_open(&f);
	size_t n = client_hello(ch, "WWW.EVIL.EXAMPLE.");

	/* the name itself cut in two: the first segment alone decides nothing */
	for (size_t cut = 1; cut < n; cut += 13) {
		uint32_t ct = 500 + (uint32_t)cut;
		struct pkt a = tcp4_n(1, ch, cut), b = tcp4_n(1 + (uint32_t)cut, ch + cut, n - cut);
		ck_assert_int_eq(fjudge(&f, f.l_tls, ct, &a), FP_CONTINUE);
		ck_assert_int_eq(fjudge(&f, f.l_tls, ct, &b), FP_BLOCK);
	}
	/* the bare suffix and another name are not blocked */
	n = client_hello(ch, "evil.example");
	struct pkt apex = tcp4_n(1, ch, n);
	ck_assert_int_eq(fjudge(&f, f.l_tls, 600, &apex), FP_CONTINUE);
	n = client_hello(ch, "good.example");
	struct pkt good = tcp4_n(1, ch, n);
	ck_assert_int_eq(fjudge(&f, f.l_tls, 601, &good), FP_CONTINUE);
	/* not TLS on a tls.sni rule: malformed, which a block match takes */
	struct pkt plain = tcp4_n(1, "GET / HTTP/1.1\r\n\r\n", 18);
	ck_assert_int_eq(fjudge(&f, f.l_tls, 602, &plain), FP_BLOCK);
	fields_close(&f);
}
END_TEST

START_TEST(http_fields_decide_in_order)
{
	struct fields_fixture f;
	fields_open(&f);
	struct pkt health =
	    tcp4(1, TCP_ACK | TCP_PSH, "GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n");
	struct pkt hs_ack = tcp4(1, TCP_ACK, "");
	/* first match wins: /health passes before the host is looked at */
	seed_in(f.ft, 700, 0);
	ck_assert_int_eq(fjudge(&f, f.l_http, 700, &hs_ack), FP_CONTINUE);
	ck_assert_int_eq(fjudge(&f, f.l_http, 700, &health), FP_DONE);

	/* the Host line split across segments, in upper case */
	struct pkt h1 = tcp4(1, TCP_ACK | TCP_PSH, "GET / HTTP/1.1\r\nHo");
	struct pkt h2 = tcp4(19, TCP_ACK | TCP_PSH, "st: EVIL.example.\r\n");
	struct pkt h3 = tcp4(38, TCP_ACK | TCP_PSH, "\r\n");
	ck_assert_int_eq(fjudge(&f, f.l_http, 701, &h1), FP_CONTINUE);
	ck_assert_int_eq(fjudge(&f, f.l_http, 701, &h2), FP_CONTINUE);
	ck_assert_int_eq(fjudge(&f, f.l_http, 701, &h3), FP_BLOCK);

	/* an encoded path: decoded before it is compared */
	struct pkt enc =
	    tcp4(1, TCP_ACK | TCP_PSH, "GET /x/..//%41dmin HTTP/1.1\r\nHost: good\r\n\r\n");
	ck_assert_int_eq(fjudge(&f, f.l_http, 702, &enc), FP_BLOCK);
	/* a second request on the connection is judged too */
	struct pkt two = tcp4(1, TCP_ACK | TCP_PSH,
			      "GET /a HTTP/1.1\r\nHost: good\r\n\r\nGET /admin HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(fjudge(&f, f.l_http, 703, &two), FP_BLOCK);
	/* a good request: no decision, the flow stays under inspection */
	struct pkt ok =
	    tcp4(1, TCP_ACK | TCP_PSH, "GET /index HTTP/1.1\r\nHost: good.example\r\n\r\n");
	ck_assert_int_eq(fjudge(&f, f.l_http, 704, &ok), FP_CONTINUE);
	/* two Host fields: malformed, blocked */
	struct pkt dup = tcp4(1, TCP_ACK | TCP_PSH,
			      "GET / HTTP/1.1\r\nHost: good\r\nHost: evil.example\r\n\r\n");
	ck_assert_int_eq(fjudge(&f, f.l_http, 705, &dup), FP_BLOCK);
	/* a header section the window ends inside is malformed */
	char big[FP_INSPECT_BYTES + 1];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	big[sizeof(big) - 1] = '\0';
	uint32_t seq = 1;
	enum fp_verdict v = FP_CONTINUE;
	for (size_t off = 0; off < FP_INSPECT_BYTES; off += 1000) {
		size_t n = FP_INSPECT_BYTES - off < 1000 ? FP_INSPECT_BYTES - off : 1000;
		struct pkt k = tcp4_n(seq, big + off, n);
		v = fjudge(&f, f.l_http, 706, &k);
		seq += (uint32_t)n;
	}
	ck_assert_int_eq(v, FP_BLOCK);
	fields_close(&f);
}
END_TEST

START_TEST(dns_qname_over_udp)
{
	struct fields_fixture f;
	fields_open(&f);
	uint8_t q[64] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01 };
	static const char name[] = "\x03WWW\x07TRACKER\x07"
				   "EXAMPLE\x00\x00\x01\x00\x01";
	memcpy(q + 12, name, sizeof(name) - 1);
	struct pkt bad = udp4_n(q, 12 + sizeof(name) - 1);
	ck_assert_int_eq(fjudge(&f, f.l_dns, 800, &bad), FP_BLOCK);
	q[13] = 'x'; /* xWW.tracker.example: still under the suffix */
	bad = udp4_n(q, 12 + sizeof(name) - 1);
	ck_assert_int_eq(fjudge(&f, f.l_dns, 801, &bad), FP_BLOCK);
	q[12 + 4 + 7] = 'Y'; /* www.trackeY.example */
	struct pkt fine = udp4_n(q, 12 + sizeof(name) - 1);
	ck_assert_int_eq(fjudge(&f, f.l_dns, 802, &fine), FP_CONTINUE);
	/* not DNS on a dns.qname rule: malformed */
	struct pkt junk = udp4("hello there");
	ck_assert_int_eq(fjudge(&f, f.l_dns, 803, &junk), FP_BLOCK);
	fields_close(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inspect");
	TCase *tc = tcase_create("inspect");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ruleset_numbers_inspect_rules);
	tcase_add_test(tc, ruleset_knows_tenant_zones);
	tcase_add_test(tc, block_match_blocks_with_event);
	tcase_add_test(tc, pass_match_is_done);
	tcase_add_test(tc, benign_data_continues);
	tcase_add_test(tc, handshake_packets_continue);
	tcase_add_test(tc, handshake_ack_sets_the_sequence);
	tcase_add_test(tc, data_before_the_stream_is_dropped);
	tcase_add_test(tc, syn_with_data_is_dropped);
	tcase_add_test(tc, pattern_split_across_segments);
	tcase_add_test(tc, retransmission_must_match_what_was_judged);
	tcase_add_test(tc, decoy_first_copy_does_not_stand_for_the_real_one);
	tcase_add_test(tc, signed_copy_never_clears_the_flow);
	tcase_add_test(tc, data_before_the_handshake_ack_never_clears);
	tcase_add_test(tc, syn_seed_is_what_the_receiver_holds);
	tcase_add_test(tc, copies_the_receiver_discards_are_dropped);
	tcase_add_test(tc, urgent_data_is_dropped);
	tcase_add_test(tc, fin_or_rst_not_at_the_end_is_dropped);
	tcase_add_test(tc, data_after_the_end_is_dropped);
	tcase_add_test(tc, first_packet_must_be_a_syn);
	tcase_add_test(tc, unknown_connection_unparsable_is_dropped);
	tcase_add_test(tc, block_resets_both_ends);
	tcase_add_test(tc, gap_is_dropped_then_in_order_passes);
	tcase_add_test(tc, sequence_wraps);
	tcase_add_test(tc, window_bytes_then_done);
	tcase_add_test(tc, window_counts_bytes_not_segments);
	tcase_add_test(tc, fin_and_rst_end_the_entry);
	tcase_add_test(tc, closed_flow_leaves_a_marker);
	tcase_add_test(tc, closed_markers_make_room);
	tcase_add_test(tc, ipv6_extension_headers);
	tcase_add_test(tc, ipv6_fragment_continues);
	tcase_add_test(tc, ipv4_fragment_continues);
	tcase_add_test(tc, truncated_packets_are_malformed);
	tcase_add_test(tc, inconsistent_headers_are_malformed);
	tcase_add_test(tc, ipv6_header_chain_is_bounded);
	tcase_add_test(tc, other_protocols_are_done);
	tcase_add_test(tc, udp_each_datagram_alone);
	tcase_add_test(tc, udp_datagram_count_window);
	tcase_add_test(tc, unknown_rule_number_is_done);
	tcase_add_test(tc, table_full_is_done);
	tcase_add_test(tc, tls_sni_split_across_segments_is_blocked);
	tcase_add_test(tc, http_fields_decide_in_order);
	tcase_add_test(tc, dns_qname_over_udp);
	tcase_add_test(tc, flows_keyed_by_tuple_and_zone);
	tcase_add_test(tc, idle_flows_expire);
	tcase_add_test(tc, many_flows_reuse_entries);
	tcase_add_test(tc, unseeded_flow_never_clears);
	tcase_add_test(tc, ack_older_than_the_peer_isn_is_discarded);
	tcase_add_test(tc, first_ack_is_the_peer_isn_next);
	tcase_add_test(tc, unknown_peer_isn_never_clears);
	tcase_add_test(tc, synack_again_with_another_isn_leaves_none);
	tcase_add_test(tc, stream_starts_right_after_the_syn);
	tcase_add_test(tc, older_ack_is_a_copy_the_receiver_discards);
	tcase_add_test(tc, syn_again_with_another_isn_never_clears);
	tcase_add_test(tc, stream_after_its_end_never_clears);
	tcase_add_test(tc, ip_options_the_receiver_acts_on_are_dropped);
	suite_add_tcase(s, tc);
	return check_main(s);
}
