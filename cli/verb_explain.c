/* hvgate explain POLICY PACKET: which rule decides a packet, and why
 * (docs/replay.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fnmatch.h>
#include <limits.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "nat/nat.h"
#include "cli/explain.h"
#include "appliance/logline.h"

/* The checks of `check` that concern the policy (the language's, and those
 * of the lowering and of NAT that need no ruleset: policy_lower_check,
 * nat_check), without compiling: the evaluator needs the checked policy
 * only, and lowering, optimizing and emitting a 10,000-rule policy take
 * several times longer than loading it. Takes ownership of p (NULL: the
 * load failed). 0, or -1 with the diagnostics printed as check prints them. */
static int check_loaded(struct policy *p, struct policy_compiled *c, struct policy_diags *d)
{
	memset(c, 0, sizeof(*c));
	if (p) {
		struct policy_lower_opts o;
		policy_lower_opts_default(&o);
		o.nat_lower = nat_lower;
		int bad = policy_lower_check(p, &o, d);
		bad |= nat_check(p, d);
		if (!bad && !d->n_errors) {
			c->policy = p;
			return 0;
		}
		policy_free(p);
	}
	policy_diags_print(d, stderr);
	fprintf(stderr, "%zu error%s\n", d->n_errors, d->n_errors == 1 ? "" : "s");
	return -1;
}

/* Policy files at least this large get the heap of heap_prepare(). */
#define HEAP_PREPARE_MIN_POLICY (256u << 10)
/* The heap a policy's load touches, per byte of its text, with room (the
 * 10,000-rule benchmark policy: about 30). */
#define HEAP_PER_POLICY_BYTE 48
#define HEAP_PREPARE_MAX     ((size_t)1 << 30)
#define HUGE_PAGE            ((uintptr_t)2 << 20)
/* The block that makes the heap grow: more than the top of a fresh heap
 * holds (glibc's first growth: 132 KiB). */
#define HEAP_PROBE (1u << 20)

/* The part of the grown heap below its first huge-page boundary, held
 * while the policy loads: transparent huge pages back only whole aligned
 * 2 MiB, so what lands below the boundary (first of all the policy's text,
 * the load's first big block) is faulted in 4 KiB at a time, and in a
 * virtual machine a fault costs about as much as zeroing a huge page. The
 * block is never touched (no memory); freed after the load. */
static void *heap_head;

/* Loading, checking and indexing a large policy touches tens of megabytes of
 * heap, and at 4 KiB a page its page faults cost as much as the parsing
 * (issue 12: explain under 50 ms on 10,000 rules). For these short-lived
 * verbs the heap is grown once to what the load will need, big arrays are
 * kept in it (no mmap per array, no trimming between phases), and
 * transparent huge pages are asked for on it, where the system grants them
 * on request (/sys/kernel/mm/transparent_hugepage/enabled: madvise or
 * always). Elsewhere, or under another allocator (the sanitizer's: the
 * range check below fails), nothing changes but the malloc settings. */
static void heap_prepare(off_t policy_bytes)
{
	if (policy_bytes < (off_t)HEAP_PREPARE_MIN_POLICY)
		return;
	size_t pad = (size_t)policy_bytes < HEAP_PREPARE_MAX / HEAP_PER_POLICY_BYTE
			 ? (size_t)policy_bytes * HEAP_PER_POLICY_BYTE
			 : HEAP_PREPARE_MAX;
	mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's largest */
	mallopt(M_TRIM_THRESHOLD, (int)(pad < INT_MAX ? pad : INT_MAX));
	mallopt(M_TOP_PAD, (int)(pad < INT_MAX ? pad : INT_MAX));
	/* a block the top of the heap cannot hold: the heap grows by it and the pad */
	char *probe = malloc(HEAP_PROBE);
	char *top = sbrk(0);
	if (probe && top != (char *)-1 && probe < top &&
	    (size_t)(top - probe) <= pad + (2u << 20)) {
		/* Growing wrote the header of the new top block just past the
		 * probe, and a 2 MiB range already holding a 4 KiB page never
		 * gets a huge page: the huge pages start above that header. */
		uintptr_t lo =
		    ((uintptr_t)probe + HEAP_PROBE + 2 * sizeof(size_t) + HUGE_PAGE - 1) &
		    ~(HUGE_PAGE - 1);
		uintptr_t hi = (uintptr_t)top & ~(HUGE_PAGE - 1);
		if (lo < hi && !madvise((void *)lo, hi - lo, MADV_HUGEPAGE)) {
			/* The probe's block, freed, is where the next block
			 * starts: one reaching the boundary (a block's header is
			 * one word) moves the load's blocks above it. */
			size_t head = lo - (uintptr_t)probe - sizeof(size_t);
			free(probe);
			probe = NULL;
			heap_head = malloc(head);
		}
	}
	free(probe);
}

static void heap_release(void)
{
	free(heap_head);
	heap_head = NULL;
}

int cli_explain_load(const char *verb, const char *path, struct policy_compiled *c,
		     struct policy_diags *d)
{
	struct stat st;
	memset(c, 0, sizeof(*c));
	if (stat(path, &st)) {
		fprintf(stderr, "hvgate %s: %s: %s\n", verb, path, strerror(errno));
		return -2;
	}
	if (S_ISREG(st.st_mode))
		heap_prepare(st.st_size);
	struct policy *p = policy_load(path, d);
	heap_release();
	return check_loaded(p, c, d);
}

size_t cli_explain_tenant(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_tenants; i++)
		if (!strcmp(p->tenants[i].name, name))
			return i;
	return POLICY_NONE;
}

void cli_explain_decider(const struct policy_diags *d, const struct policy_eval_result *r,
			 char *buf, size_t size)
{
	char text[320];
	if (r->rule) {
		policy_eval_source_span(d, &r->rule->loc, r->rule->text_len, text, sizeof(text));
		snprintf(buf, size, "%s:%u (%s)", r->rule->loc.file, r->rule->loc.line, text);
	} else if (r->def) {
		policy_eval_source(d, &r->def->loc, text, sizeof(text));
		snprintf(buf, size, "default at %s:%u (%s)", r->def->loc.file, r->def->loc.line,
			 text);
	} else {
		snprintf(buf, size, "%s", r->builtin);
	}
}

static void endpoint(int family, const uint8_t *a, uint16_t port, bool ports, char *buf,
		     size_t size)
{
	char s[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, a, s, sizeof(s)))
		snprintf(s, sizeof(s), "?");
	if (!ports)
		snprintf(buf, size, "%s", s);
	else if (family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", s, port);
	else
		snprintf(buf, size, "%s:%u", s, port);
}

void cli_explain_nat(const struct policy_eval_packet *pkt, const struct policy_eval_result *r,
		     char *buf, size_t size)
{
	bool ports = pkt->l4proto == IPPROTO_TCP || pkt->l4proto == IPPROTO_UDP ||
		     pkt->l4proto == IPPROTO_SCTP;
	char to[80], from[80];
	size_t n = 0;
	*buf = '\0';
	if (r->dnat.nat) {
		uint16_t port = r->dnat.port ? r->dnat.port : pkt->dport;
		endpoint(pkt->family, r->dnat.addr, port, ports, to, sizeof(to));
		endpoint(pkt->family, pkt->daddr, pkt->dport, ports, from, sizeof(from));
		n += (size_t)snprintf(buf + n, size - n, "dnat %s -> %s (replies from %s)", from,
				      to, from);
	}
	if (r->snat.nat && n < size) {
		endpoint(pkt->family, pkt->saddr, pkt->sport, ports, from, sizeof(from));
		if (r->snat.masquerade)
			snprintf(to, sizeof(to), "masquerade%s%s", *r->oif ? " on " : "", r->oif);
		else
			endpoint(pkt->family, r->snat.addr,
				 r->snat.port ? r->snat.port : pkt->sport, ports, to, sizeof(to));
		n += (size_t)snprintf(buf + n, size - n, "%ssnat %s -> %s (replies to %s)",
				      n ? "; " : "", from, to, from);
	}
}

void cli_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void explain_usage(FILE *out)
{
	fprintf(out,
		"usage: hvgate explain POLICY PACKET [--tenant NAME] [--state new|established]\n"
		"                      [--json]\n"
		"       hvgate explain PACKET [...] [--socket PATH]\n\n"
		"Evaluates one packet against a policy offline, from the language's semantics\n"
		"(not from the compiled ruleset), and prints the verdict, the NAT it gets, and\n"
		"the path: interface, tenant and conntrack zone, anti-spoofing, the zone pair,\n"
		"every rule consulted (FILE:LINE and its text) and what decided. PACKET:\n"
		"  tcp 10.0.1.5:40000 -> 203.0.113.7:443 in tap-acme-web [out eth0]\n"
		"  icmp 10.0.1.5 -> 10.0.2.9 type echo-request\n"
		"  udp [fd00:2::5]:5353 -> self:53 in tap-acme-db\n"
		"(one argument, or the words of one), or a log event as one argument: a line\n"
		"of the event file or an item of `hvgate show log` (its packet, interfaces and\n"
		"tenant; says whether the policy decides as the event says). Without POLICY\n"
		"(the first word is the packet's protocol, or the event), asks hvgated for its\n"
		"running revision's source and its block list, and evaluates the packet\n"
		"against them. Exits 0; 1 for an invalid\n"
		"policy (the diagnostics of check); 2 for a malformed packet (with its column),\n"
		"usage, or a daemon that cannot be asked.\n");
}

static const char *step_kind(enum policy_eval_step_kind k)
{
	return k == POLICY_EVAL_STEP_MISS      ? "rule"
	       : k == POLICY_EVAL_STEP_DECIDED ? "decided"
					       : "note";
}

static bool event_agrees(const struct logline *ev, const struct policy_eval_result *r);

static void print_json(const struct policy *p, const struct policy_diags *d,
		       const struct policy_eval_packet *pkt, const struct policy_eval_result *r,
		       const struct logline *ev)
{
	char buf[512];
	policy_eval_packet_text(pkt, buf, sizeof(buf));
	printf("{\"packet\":");
	cli_json_string(stdout, buf);
	printf(",\"state\":\"%s\",\"verdict\":\"%s\",\"limited\":%s,\"log\":%s,",
	       policy_eval_ct_name(pkt->ct), policy_eval_verdict_name(r->verdict),
	       r->limited ? "true" : "false", r->logged ? "true" : "false");
	printf("\"rule\":");
	if (r->rule) {
		policy_eval_source_span(d, &r->rule->loc, r->rule->text_len, buf, sizeof(buf));
		printf("{\"id\":");
		cli_json_string(stdout, r->rule->id);
		printf(",\"kernel_id\":");
		cli_json_string(stdout, r->rule->kernel_id);
		printf(",\"file\":");
		cli_json_string(stdout, r->rule->loc.file);
		printf(",\"line\":%u,\"text\":", r->rule->loc.line);
		cli_json_string(stdout, buf);
		printf("}");
	} else {
		printf("null");
	}
	printf(",\"default\":");
	if (r->def) {
		policy_eval_source(d, &r->def->loc, buf, sizeof(buf));
		printf("{\"file\":");
		cli_json_string(stdout, r->def->loc.file);
		printf(",\"line\":%u,\"text\":", r->def->loc.line);
		cli_json_string(stdout, buf);
		printf("}");
	} else {
		printf("null");
	}
	printf(",\"builtin\":");
	if (*r->builtin)
		cli_json_string(stdout, r->builtin);
	else
		printf("null");
	printf(",\"tenant\":");
	if (r->tenant != POLICY_NONE)
		cli_json_string(stdout, p->tenants[r->tenant].name);
	else
		printf("null");
	printf(",\"ct_zone\":%u,\"from_zone\":", r->ct_zone);
	if (r->from_self)
		printf("\"self\"");
	else if (r->from_zone != POLICY_NONE)
		cli_json_string(stdout, p->zones[r->from_zone].name);
	else
		printf("null");
	printf(",\"to_zone\":");
	if (r->to_self)
		printf("\"self\"");
	else if (r->to_zone != POLICY_NONE)
		cli_json_string(stdout, p->zones[r->to_zone].name);
	else
		printf("null");
	cli_explain_nat(pkt, r, buf, sizeof(buf));
	printf(",\"nat\":");
	cli_json_string(stdout, buf);
	printf(",\"path\":[");
	for (size_t i = 0; i < r->n_steps; i++) {
		printf("%s{\"kind\":\"%s\",\"text\":", i ? "," : "", step_kind(r->steps[i].kind));
		cli_json_string(stdout, r->steps[i].text);
		printf("}");
	}
	printf("]");
	if (ev) {
		printf(",\"event\":{\"rule\":");
		cli_json_string(stdout, ev->rule);
		printf(",\"verdict\":");
		cli_json_string(stdout, ev->verdict);
		printf(",\"source\":");
		cli_json_string(stdout, *ev->source ? ev->source : "nflog");
		printf(",\"agrees\":%s}", event_agrees(ev, r) ? "true" : "false");
	}
	printf("}\n");
}

static void print_text(const struct policy_diags *d, const struct policy_eval_packet *pkt,
		       const struct policy_eval_result *r)
{
	char buf[512];
	/* a 10,000-rule pair lists 10,000 rules: find their lines by index */
	struct policy_eval_lines *lines = policy_eval_lines_new(d);
	policy_eval_packet_text(pkt, buf, sizeof(buf));
	printf("packet:  %s (%s)\n", buf, policy_eval_ct_name(pkt->ct));
	printf("path:\n");
	for (size_t i = 0; i < r->n_steps; i++) {
		const struct policy_eval_step *s = &r->steps[i];
		if (s->rule) {
			if (lines)
				policy_eval_lines_source_span(lines, &s->rule->loc,
							      s->rule->text_len, buf, sizeof(buf));
			else
				policy_eval_source_span(d, &s->rule->loc, s->rule->text_len, buf,
							sizeof(buf));
			printf("  %s %s\n      %s\n",
			       s->kind == POLICY_EVAL_STEP_DECIDED ? "*" : "-", s->text, buf);
		} else {
			printf("  %s %s\n", s->kind == POLICY_EVAL_STEP_DECIDED ? "*" : " ",
			       s->text);
		}
	}
	cli_explain_decider(d, r, buf, sizeof(buf));
	printf("verdict: %s by %s%s\n", policy_eval_verdict_name(r->verdict), buf,
	       r->limited ? " (while under its limit)" : "");
	cli_explain_nat(pkt, r, buf, sizeof(buf));
	printf("nat:     %s\n", *buf ? buf : "none");
	policy_eval_lines_free(lines);
}

/* ---- the running revision, asked of hvgated ---- */

/* The files of `show source` as a file system for the loader: the running
 * revision is evaluated as the daemon read it, not as the files on disk
 * are now. */
struct source_fs {
	const struct json *files; /* [{path, text}] */
};

static const struct json *source_file(const struct source_fs *s, const char *path)
{
	for (size_t i = 0; s->files && i < s->files->n; i++) {
		const char *p = json_get_str(&s->files->items[i], "path");
		if (p && !strcmp(p, path))
			return &s->files->items[i];
	}
	return NULL;
}

static int source_read(void *ctx, const char *path, char **text, size_t *len)
{
	const struct json *f = source_file(ctx, path);
	const char *t = f ? json_get_str(f, "text") : NULL;
	if (!t)
		return -ENOENT;
	if (!(*text = strdup(t)))
		return -ENOMEM;
	*len = strlen(t);
	return 0;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int source_glob(void *ctx, const char *pattern, char ***paths)
{
	const struct source_fs *s = ctx;
	size_t n = 0;
	*paths = calloc(s->files ? s->files->n + 1 : 1, sizeof(**paths));
	if (!*paths)
		return -ENOMEM;
	for (size_t i = 0; s->files && i < s->files->n; i++) {
		const char *p = json_get_str(&s->files->items[i], "path");
		if (p && !fnmatch(pattern, p, FNM_PATHNAME) && !((*paths)[n++] = strdup(p)))
			return -ENOMEM;
	}
	qsort(*paths, n, sizeof(**paths), path_cmp);
	return (int)n;
}

static int source_is_dir(void *ctx, const char *path)
{
	const struct source_fs *s = ctx;
	size_t len = strlen(path);
	if (source_file(s, path))
		return 0;
	for (size_t i = 0; s->files && i < s->files->n; i++) {
		const char *p = json_get_str(&s->files->items[i], "path");
		if (p && !strncmp(p, path, len) && p[len] == '/')
			return 1;
	}
	return -ENOENT;
}

static bool request_ok(const struct json *reply, const char *raw, const char *what)
{
	const struct json *ok = json_get(reply, "ok");
	if (ok && ok->type == JSON_BOOL && ok->boolean)
		return true;
	fprintf(stderr, "hvgate explain: %s: %s\n", what,
		json_get_str(reply, "error") ? json_get_str(reply, "error") : raw);
	return false;
}

/* Compiles the running revision from its source as hvgated keeps it (the
 * pipeline of check, so it refuses what check refuses). 0, -1 (invalid:
 * diagnostics printed) or -2 (the daemon cannot be asked). */
static int load_running(const struct cli_client_opts *co, struct policy_compiled *c,
			struct policy_diags *d, unsigned long long *rev)
{
	struct json *reply;
	char *raw;
	if (cli_client_call(co, "{\"cmd\":\"show\",\"what\":\"source\"}", &reply, &raw))
		return -2;
	int rc = -2;
	struct source_fs s = { .files = json_get(reply, "files") };
	const char *source = json_get_str(reply, "source");
	if (!request_ok(reply, raw, "show source"))
		goto out;
	if (!s.files || s.files->type != JSON_ARRAY || !s.files->n || !source) {
		fprintf(stderr, "hvgate explain: hvgated sent no source files\n");
		goto out;
	}
	long long r = 0;
	json_get_int(reply, "revision", &r);
	*rev = (unsigned long long)r;
	/* the root: the source when it is a file or a folder of the files sent
	 * (a path), else the first file read (a git source) */
	const char *root =
	    source_is_dir(&s, source) >= 0 ? source : json_get_str(&s.files->items[0], "path");
	struct policy_fs fs = {
		.ctx = &s, .read = source_read, .glob = source_glob, .is_dir = source_is_dir
	};
	rc = check_loaded(policy_load_fs(root, &fs, d), c, d);
out:
	json_free(reply);
	free(raw);
	return rc;
}

/* An entry of `show blocked`: ADDR, ADDR/LEN or LO-HI. */
static int block_addr(const char *text, struct policy_addr *a)
{
	char lo[INET6_ADDRSTRLEN + 8];
	snprintf(lo, sizeof(lo), "%s", text);
	char *dash = strchr(lo, '-');
	if (!dash)
		return cli_parse_addr(lo, a);
	*dash = '\0';
	struct policy_addr hi;
	if (cli_parse_addr(lo, a) || cli_parse_addr(dash + 1, &hi) || hi.family != a->family)
		return -1;
	memcpy(a->hi, hi.lo, sizeof(a->hi));
	a->prefix_len = POLICY_ADDR_NOT_PREFIX;
	return 0;
}

/* The daemon's block list (`show blocked`) as the evaluator's. Entries
 * scoped to a zone (an interface set) are not in the evaluator's model:
 * they are counted in *skipped. */
static int load_blocked(const struct cli_client_opts *co, const struct policy *p,
			struct policy_eval_block **out, size_t *n, size_t *skipped)
{
	struct json *reply;
	char *raw;
	*out = NULL;
	*n = *skipped = 0;
	if (cli_client_call(co, "{\"cmd\":\"blocked\"}", &reply, &raw))
		return -2;
	int rc = -2;
	const struct json *v = json_get(reply, "blocked");
	if (!request_ok(reply, raw, "show blocked"))
		goto out;
	if (!v || v->type != JSON_ARRAY) {
		rc = 0;
		goto out;
	}
	if (!(*out = calloc(v->n ? v->n : 1, sizeof(**out))))
		goto out;
	for (size_t i = 0; i < v->n; i++) {
		const char *addr = json_get_str(&v->items[i], "addr");
		const char *tenant = json_get_str(&v->items[i], "tenant");
		const char *zone = json_get_str(&v->items[i], "zone");
		struct policy_eval_block *b = &(*out)[*n];
		if (!addr || (zone && *zone) || block_addr(addr, &b->addr)) {
			(*skipped)++;
			continue;
		}
		b->tenant = tenant && *tenant ? cli_explain_tenant(p, tenant) : POLICY_NONE;
		if (tenant && *tenant && b->tenant == POLICY_NONE) {
			(*skipped)++;
			continue;
		}
		(*n)++;
	}
	rc = 0;
out:
	json_free(reply);
	free(raw);
	return rc;
}

/* The first word of a packet (its protocol): without a POLICY before it,
 * explain asks the running daemon. */
static bool is_packet_start(const char *word)
{
	static const char *const protos[] = { "tcp", "udp", "sctp", "icmp", "icmpv6" };
	word += strspn(word, " \t");
	/* a log event: the whole line as one argument, or its first word */
	if (logline_looks_like(word) || *word == '{' || !strcmp(word, "-") ||
	    !strncmp(word, "time=", 5))
		return true;
	size_t len = strcspn(word, " \t"); /* the packet may be one argument */
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strlen(protos[i]) == len && !strncmp(word, protos[i], len))
			return true;
	return len && strspn(word, "0123456789") == len;
}

/* ---- a log event as the packet ---- */

/* The event's packet in the syntax of policy_eval_parse_packet: the
 * interfaces it was logged with (an input-hook event has no `out`: to the
 * appliance; an output-hook one no `in`: from it, marked by *from_self). */
static void event_packet_text(const struct logline *ev, char *buf, size_t size, bool *from_self)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], proto[8];
	static const struct {
		uint8_t p;
		const char *name;
	} names[] = { { IPPROTO_TCP, "tcp" },
		      { IPPROTO_UDP, "udp" },
		      { IPPROTO_SCTP, "sctp" },
		      { IPPROTO_ICMP, "icmp" },
		      { IPPROTO_ICMPV6, "icmpv6" } };
	snprintf(proto, sizeof(proto), "%u", ev->proto);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].p == ev->proto)
			snprintf(proto, sizeof(proto), "%s", names[i].name);
	inet_ntop(ev->family, ev->src, s, sizeof(s));
	inet_ntop(ev->family, ev->dst, d, sizeof(d));
	bool v6 = ev->family == AF_INET6;
	size_t n = 0;
	if (ev->has_ports)
		n += (size_t)snprintf(buf + n, size - n,
				      v6 ? "%s [%s]:%u -> [%s]:%u" : "%s %s:%u -> %s:%u", proto, s,
				      ev->sport, d, ev->dport);
	else
		n += (size_t)snprintf(buf + n, size - n, "%s %s -> %s", proto, s, d);
	if (ev->has_icmp_type && n < size)
		n += (size_t)snprintf(buf + n, size - n, " type %u", ev->icmp_type);
	*from_self = !*ev->in && *ev->out;
	if (n < size && (*ev->in || *from_self))
		n += (size_t)snprintf(buf + n, size - n, " in %s", *from_self ? "lo" : ev->in);
	if (n < size && *ev->in && !*ev->out && strcmp(ev->source, "fastpath"))
		n += (size_t)snprintf(buf + n, size - n, " out self");
	else if (n < size && *ev->out)
		snprintf(buf + n, size - n, " out %s", ev->out);
}

/* The id the event would carry for what decided: a rule's id, a logging
 * default's "default:FILE:LINE", else the built-in name. */
static void decider_id(const struct policy_eval_result *r, char *buf, size_t size)
{
	if (r->rule)
		snprintf(buf, size, "%s", r->rule->id);
	else if (r->def)
		snprintf(buf, size, "default:%s:%u", r->def->loc.file, r->def->loc.line);
	else
		snprintf(buf, size, "%s", r->builtin);
}

/* Does the evaluation say what the event says: the same rule, and the same
 * verdict where the event has one ("log": a rule that only logs)? */
/* A rule id without the folders of its file: the daemon names the file as
 * it read it, explain as it was given ("default:" kept). */
static const char *id_base(const char *id, char *buf, size_t size)
{
	const char *slash = strrchr(id, '/');
	if (!slash)
		return id;
	snprintf(buf, size, "%s%s", strncmp(id, "default:", 8) ? "" : "default:", slash + 1);
	return buf;
}

static bool event_agrees(const struct logline *ev, const struct policy_eval_result *r)
{
	char id[256], a[256], b[256];
	decider_id(r, id, sizeof(id));
	if (*ev->rule && strcmp(id_base(ev->rule, a, sizeof(a)), id_base(id, b, sizeof(b))))
		return false;
	const char *v = policy_eval_verdict_name(r->verdict);
	if (r->verdict == POLICY_EVAL_INSPECT)
		v = "pass"; /* the fast path's events say pass or block */
	return !*ev->verdict || !strcmp(ev->verdict, "log") || !strcmp(ev->verdict, v) ||
	       (!strcmp(ev->source, "fastpath") && r->verdict == POLICY_EVAL_INSPECT);
}

int cli_explain(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		explain_usage(stdout);
		return CLI_EXIT_OK;
	}
	struct cli_client_opts co;
	if (cli_client_opts(&argc, argv, &co)) /* --json, and --socket for the daemon */
		return CLI_EXIT_USAGE;
	const char *path = NULL, *tenant = NULL, *state = "new";
	bool json = co.json, running = false;
	char packet[1024] = "";
	for (int i = 1; i < argc; i++) {
		if (!path && !running && is_packet_start(argv[i]))
			running = true; /* no POLICY: the daemon's running revision */
		if (!strcmp(argv[i], "--tenant") && i + 1 < argc) {
			tenant = argv[++i];
		} else if (!strcmp(argv[i], "--state") && i + 1 < argc) {
			state = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			explain_usage(stderr);
			return CLI_EXIT_USAGE;
		} else if (!path && !running) {
			path = argv[i];
		} else {
			size_t n = strlen(packet);
			if (n + strlen(argv[i]) + 2 >= sizeof(packet)) {
				fprintf(stderr, "hvgate explain: packet too long\n");
				return CLI_EXIT_USAGE;
			}
			snprintf(packet + n, sizeof(packet) - n, "%s%s", n ? " " : "", argv[i]);
		}
	}
	enum policy_eval_ct ct;
	if (!strcmp(state, "new"))
		ct = POLICY_EVAL_CT_NEW;
	else if (!strcmp(state, "established"))
		ct = POLICY_EVAL_CT_ESTABLISHED;
	else {
		fprintf(stderr, "hvgate explain: --state is new or established, not '%s'\n", state);
		return CLI_EXIT_USAGE;
	}
	if ((!path && !running) || !*packet) {
		explain_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	struct policy_diags d;
	policy_diags_init(&d);
	struct policy_compiled c;
	unsigned long long rev = 0;
	int rc =
	    running ? load_running(&co, &c, &d, &rev) : cli_explain_load("explain", path, &c, &d);
	if (rc) {
		policy_diags_free(&d);
		return rc == -1 ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
	}
	struct policy_eval_opts opts;
	policy_eval_opts_default(&opts);
	struct policy_eval_block *blocked = NULL;
	size_t n_blocked = 0, skipped = 0;
	const struct policy *p = c.policy;
	size_t t = POLICY_NONE;
	if (tenant && (t = cli_explain_tenant(p, tenant)) == POLICY_NONE) {
		fprintf(stderr, "hvgate explain: the policy has no tenant '%s'\n", tenant);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	struct policy_eval_packet pkt;
	char err[256];
	size_t col = 0;
	struct logline ev;
	bool is_event = logline_looks_like(packet);
	if (is_event) {
		/* a line of the event file or of `show log` */
		const char *line = packet + strspn(packet, " \t");
		char text[256];
		bool from_self = false;
		if (logline_parse(line, strlen(line), &ev, err, sizeof(err), &col)) {
			fprintf(stderr, "event:%zu: error: %s\n", col + (size_t)(line - packet),
				err);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (*ev.tenant && t == POLICY_NONE &&
		    (t = cli_explain_tenant(p, ev.tenant)) == POLICY_NONE) {
			fprintf(stderr,
				"hvgate explain: the event's tenant '%s' is not in the policy\n",
				ev.tenant);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		event_packet_text(&ev, text, sizeof(text), &from_self);
		if (policy_eval_parse_packet(p, text, t, &pkt, err, sizeof(err), &col)) {
			fprintf(stderr, "event: error: %s\n  (the event's packet: %s)\n", err,
				text);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (from_self)
			*pkt.iif = '\0';
	} else if (policy_eval_parse_packet(p, packet, t, &pkt, err, sizeof(err), &col)) {
		fprintf(stderr, "packet:%zu: error: %s\n  %s\n  %*s^\n", col, err, packet,
			(int)(col - 1), "");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	pkt.ct = ct;
	if (t != POLICY_NONE)
		pkt.ct_tenant = t;
	if (running) {
		if (load_blocked(&co, p, &blocked, &n_blocked, &skipped)) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		opts.blocked = blocked;
		opts.n_blocked = n_blocked;
		if (skipped)
			fprintf(
			    stderr,
			    "hvgate explain: %zu entr%s of the block list scoped to a zone not modelled\n",
			    skipped, skipped == 1 ? "y" : "ies");
		if (!json)
			printf("policy:  running revision %llu of hvgated, %zu block-list entr%s\n",
			       rev, n_blocked, n_blocked == 1 ? "y" : "ies");
	}
	struct policy_eval_result r;
	if (policy_eval(p, &pkt, &opts, &r)) {
		policy_eval_result_free(&r);
		fprintf(stderr, "hvgate explain: out of memory\n");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (json) {
		print_json(p, &d, &pkt, &r, is_event ? &ev : NULL);
	} else {
		if (is_event)
			printf("event:   %s by %s%s%s\n", *ev.verdict ? ev.verdict : "?",
			       *ev.rule ? ev.rule : "?", *ev.source ? " from the " : "", ev.source);
		print_text(&d, &pkt, &r);
		if (is_event)
			printf(
			    "event:   %s\n",
			    event_agrees(&ev, &r)
				? "the policy decides as the event says"
				: "the policy decides otherwise than the event says (another revision?)");
	}
	policy_eval_result_free(&r);
	rc = CLI_EXIT_OK;
out:
	free(blocked);
	policy_compiled_free(&c);
	policy_diags_free(&d);
	return rc;
}
