/* Fuzz target: the fast path's judgement (appliance/fastpath/inspect.c). The input
 * is a label rule number and a run of packets for a few flows:
 *   byte 0: the inspect rule number in the labels (0..255)
 *   then records: [flow 1 byte][seconds since the last 1 byte]
 *                 [length 2 bytes, big endian][that many bytes of L3 packet]
 * judged one after another against one small flow table and a fixed
 * ruleset, so TCP assembly, gaps, windows and expiry all get exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/fastpath/inspect.h"
#include "policy/policy.h"

static const char policy_text[] = "zone lan { interface \"lan0\" }\n"
				  "zone dmz { interface \"dmz0\" }\n"
				  "pass from lan to dmz service tcp port 80 inspect {\n"
				  "  block content /(?i)union\\s+select/ log \"sqli\"\n"
				  "  pass content /^GET \\/health/\n"
				  "}\n"
				  "pass from lan to dmz service udp port 53 inspect {\n"
				  "  block content /ev(il)+/ log\n"
				  "  pass content /(a|b)*c/s\n"
				  "}\n"
				  "pass from lan to dmz service tcp port 443 inspect {\n"
				  "  pass http.path \"/health\"\n"
				  "  block tls.sni \"*.evil.example\"\n"
				  "  block http.host /^ev/\n"
				  "  block dns.qname \"tracker.example\"\n"
				  "}\n";

/* Flows the fuzzer's packets are spread over, and the table's room: fewer
 * entries than flows, so a full table is reached too. */
#define FUZZ_FLOWS 8
#define FUZZ_TABLE 6

static struct fp_ruleset *rules(void)
{
	static struct fp_ruleset *rs;
	static struct policy_diags d;
	char err[256];

	if (rs)
		return rs;
	policy_diags_init(&d);
	struct policy *p = policy_load_text("fuzz.hvp", policy_text, strlen(policy_text), NULL, &d);
	if (!p)
		__builtin_trap();
	rs = fp_ruleset_build(p, err, sizeof(err));
	if (!rs)
		__builtin_trap();
	policy_free(p);
	return rs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fp_ruleset *rs = rules();
	uint8_t labels[FP_LABEL_BYTES];
	struct fp_stats st = { 0 };
	struct fp_event ev;
	bool has;
	uint64_t now = 1000;

	if (size < 1)
		return 0;
	fp_labels_pending(labels, data[0]); /* rule numbers 0..255 */
	struct fp_flows *ft = fp_flows_new(FUZZ_TABLE);
	if (!ft)
		return 0;
	size_t off = 1;
	while (size - off >= 4) {
		uint32_t flow = data[off] % FUZZ_FLOWS;
		now += data[off + 1];
		size_t len = (size_t)data[off + 2] << 8 | data[off + 3];
		off += 4;
		if (len > size - off)
			len = size - off;
		/* A copy of exactly len bytes, so ASan sees any read past it. */
		uint8_t *pkt = malloc(len ? len : 1);
		if (!pkt)
			break;
		memcpy(pkt, data + off, len);
		enum fp_verdict v = fp_judge(ft, rs, flow, labels, pkt, len, now, &st, &ev, &has);
		if (v > FP_DROP_SEGMENT || (has && (ev.match > 3 || ev.rule == 0)))
			__builtin_trap();
		free(pkt);
		off += len;
	}
	if (fp_flows_count(ft) > FUZZ_TABLE)
		__builtin_trap();
	fp_flows_free(ft);
	return 0;
}
