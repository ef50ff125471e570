/* Candidate, commit, confirm, rollback and the history of applies (txn.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "nat/nat.h"
#include "appliance/gitsrc.h"
#include "appliance/kernel/nftio.h"
#include "appliance/kernel/route.h"
#include "appliance/txn.h"
#include "policy/eval.h"
#include "policy/hash.h"
#include "policy/ir_build.h"
#include "appliance/txn_delta.h"
#include "policy/tenant.h"

/* A failed revert is tried again after this long. */
#define TXN_REVERT_RETRY_SECONDS 5

static void diags_to_err(const struct policy_diags *d, const char *what, char *err, size_t errsz)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		snprintf(err, errsz, "%s (out of memory)", what);
		return;
	}
	policy_diags_print(d, f);
	fclose(f);
	/* Drop the trailing newline: the message goes into one JSON string. */
	while (len && buf[len - 1] == '\n')
		buf[--len] = 0;
	snprintf(err, errsz, "%s%s%s", what, len ? ":\n" : "", buf ? buf : "");
	free(buf);
}

void txn_policy_free(struct txn_policy *p)
{
	if (!p)
		return;
	ir_diff_prints_free(p->prints);
	if (p->ir)
		ir_table_free(p->ir);
	if (p->policy)
		policy_free(p->policy);
	policy_diags_free(&p->diags);
	free(p);
}

static int ruleset_hash(const struct ir_table *ir, char out[TXN_HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ok;

	if (!f)
		return -ENOMEM;
	ok = policy_emit_nft(ir, f) == 0;
	if (fclose(f))
		ok = 0;
	if (ok)
		ok = EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) == 1;
	free(buf);
	if (!ok)
		return -EIO;
	for (size_t i = 0; i < (TXN_HASH_HEX - 1) / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* With the fast path off (no queue), an `inspect` block inspects nothing:
 * the daemon refuses such a policy rather than let it pass its traffic
 * uninspected with only a compiler warning nobody reads. */
static int refuse_uninspected(const struct txn *t, struct txn_policy *p)
{
	int refused = 0;

	if (t->lower.queue_num >= 0)
		return 0;
	for (size_t i = 0; i < p->policy->n_rules; i++)
		if (p->policy->rules[i].n_inspect) {
			policy_error(
			    &p->diags, &p->policy->rules[i].loc,
			    "the rule has an inspect block, and the fast path is disabled "
			    "(fastpath.enabled = false): nothing would be inspected; enable the "
			    "fast path and restart hvgated, or remove the inspect block");
			refused = -1;
		}
	return refused;
}

static int compile_fs(const struct txn *t, const char *root, const struct policy_fs *fs,
		      const char *source, const char *source_rev, struct txn_policy **out,
		      char *err, size_t errsz)
{
	struct txn_policy *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	policy_diags_init(&p->diags);
	snprintf(p->source, sizeof(p->source), "%s", source);
	snprintf(p->source_rev, sizeof(p->source_rev), "%s", source_rev ? source_rev : "");
	snprintf(p->root, sizeof(p->root), "%s", root);
	p->policy = policy_load_fs(root, fs, &p->diags);
	if (!p->policy) {
		diags_to_err(&p->diags, "the policy has errors", err, errsz);
		txn_policy_free(p);
		return -EINVAL;
	}
	if (refuse_uninspected(t, p)) {
		diags_to_err(&p->diags, "the policy inspects flows, and the fast path is disabled",
			     err, errsz);
		txn_policy_free(p);
		return -EINVAL;
	}
	p->ir = policy_lower(p->policy, &t->lower, &p->diags);
	if (!p->ir) {
		diags_to_err(&p->diags, "the policy cannot be lowered", err, errsz);
		txn_policy_free(p);
		return -EINVAL;
	}
	/* lowering makes the block lists and their drop rules (policy/lower.c) */
	txn_delta_size_headroom(p->ir);
	if (txn_delta_mark_add(p->ir) || ruleset_hash(p->ir, p->hash) ||
	    ir_diff_prints_make(p->ir, &p->prints)) {
		snprintf(err, errsz, "out of memory building the ruleset");
		txn_policy_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

int txn_compile_path(const struct txn *t, const char *path, struct txn_policy **out, char *err,
		     size_t errsz)
{
	return compile_fs(t, path, NULL, path, NULL, out, err, errsz);
}

int txn_compile_git(const struct txn *t, const char *repo, const char *ref, struct txn_policy **out,
		    char *err, size_t errsz)
{
	char source[PATH_MAX + 64];
	struct gitsrc *g;
	int rc = gitsrc_open(repo, ref, &g, err, errsz);

	if (rc)
		return rc;
	snprintf(source, sizeof(source), "git:%s@%s", repo, ref);
	rc = compile_fs(t, GITSRC_ROOT, gitsrc_fs(g), source, gitsrc_commit(g), out, err, errsz);
	gitsrc_close(g);
	return rc;
}

int txn_compile_rev(const struct txn *t, unsigned rev, struct txn_policy **out, char *err,
		    size_t errsz)
{
	struct history_bundle *b;
	struct history_rev meta;
	int rc = history_store_get(t->state_dir, rev, &meta);

	if (rc) {
		snprintf(err, errsz, "revision %u: %s/revisions/%u/meta.json: %s", rev,
			 t->state_dir, rev,
			 rc == -ENOENT   ? "not in the history"
			 : rc == -EINVAL ? "corrupt"
					 : strerror(-rc));
		return rc;
	}
	rc = history_bundle_load(t->state_dir, rev, &b);
	if (rc) {
		snprintf(err, errsz, "revision %u: %s/revisions/%u/%s: %s", rev, t->state_dir, rev,
			 history_bundle_name(t->state_dir, rev),
			 rc == -EINVAL ? "corrupt or truncated" : strerror(-rc));
		return rc;
	}
	rc = compile_fs(t, meta.root, history_bundle_fs(b), meta.source, meta.source_rev, out, err,
			errsz);
	history_bundle_free(b);
	return rc;
}

/* Compare. */

/* A compared rule's text: the whole statement on one line, up to this many
 * bytes. */
#define ITEM_TEXT_MAX 1024
/* Changed rules are paired by the similarity of their words only among
 * this many candidates (else by place only): compare stays linear-ish. */
#define PAIR_CANDIDATES_MAX 64

/* The parts of a rule's meaning compare tells apart: from, to, services,
 * the rest (action, log, limit, state, inspect matches). */
#define MEANING_PARTS 4

struct item {
	const char *id, *kind;
	const char *file; /* relative to the policy's root */
	unsigned line;
	const char *tenant; /* "" for a global rule */
	uint32_t text_hash; /* the parser's hash of the whole text */
	uint64_t key;       /* FNV-1a of kind, tenant and text: same_content() only if equal */
	char text[ITEM_TEXT_MAX];
	const char *where;   /* FILE:LINE:HASH */
	bool labelled;       /* id is the rule's label */
	size_t changed_from; /* 1 + the index of the rule in `from` this one changed, or 0 */
	size_t partner;      /* 1 + the index of the same rule on the other side, or 0 */
	bool used;
	/* `to` items: its place among the other matched items of its kind is
	 * the same as in `from` (else it moved: first match, the order counts) */
	bool kept;
	/* What the rule matches, resolved (addresses, zones, services: what
	 * its defines, services and zones stood for), hashed per part; a rule
	 * whose text is the same but whose parts differ is changed. */
	uint64_t meaning[MEANING_PARTS];
	bool redefined; /* `to` items: same text, another meaning */
};

/* Line `line` of `file` as the compiler read it (the policy keeps the text
 * of every file), blanks trimmed; "" if it is not there. */
void txn_source_line(const struct txn_policy *p, const char *file, unsigned line, char *out,
		     size_t size)
{
	out[0] = 0;
	for (size_t i = 0; i < p->diags.n_files; i++) {
		const struct policy_source_file *f = &p->diags.files[i];
		const char *s = f->text, *end;
		if (strcmp(f->path, file) || !s)
			continue;
		for (unsigned l = 1; l < line && s; l++)
			s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL;
		if (!s)
			return;
		while (*s == ' ' || *s == '\t')
			s++;
		end = s + strcspn(s, "\n");
		while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		snprintf(out, size, "%.*s", (int)(end - s), s);
		return;
	}
}

void txn_rule_text(const struct txn_policy *p, const struct policy_loc *loc, uint32_t text_len,
		   char *out, size_t size)
{
	policy_eval_source_span(&p->diags, loc, text_len, out, size);
}

/* The file of a rule relative to the policy root, so that one policy read
 * from two places (a candidate file beside the running one, a git tree and a
 * directory) compares rule by rule: "" for the root file itself. */
static const char *relative_file(const char *file, const char *root)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (!strcmp(file, root))
		return "";
	if (!strncmp(file, root, n) && file[n] == '/')
		return file + n + 1;
	if (!strncmp(file, "./", 2))
		return file + 2;
	return file;
}

/* id: what names the item (a label, or FILE:LINE:HASH); where: always
 * FILE:LINE:HASH. */
static void item_of(struct item *it, const char *id, const char *where, bool labelled,
		    const char *kind, const struct txn_policy *p,
		    const struct policy_eval_lines *lines, const struct policy_loc *loc,
		    uint32_t text_len, size_t tenant)
{
	const char *file = loc->file ? loc->file : "";

	memset(it, 0, sizeof(*it));
	it->id = id;
	it->where = where;
	it->labelled = labelled;
	it->kind = kind;
	it->tenant = tenant == POLICY_NONE ? "" : p->policy->tenants[tenant].name;
	it->line = loc->line;
	if (lines)
		policy_eval_lines_source_span(lines, loc, text_len, it->text, sizeof(it->text));
	else
		txn_rule_text(p, loc, text_len, it->text, sizeof(it->text));
	it->file = relative_file(file, p->root);
	const char *h = strrchr(where, ':');
	it->text_hash = h ? (uint32_t)strtoul(h + 1, NULL, 16) : 0;
	it->key = POLICY_FNV64_OFFSET_BASIS;
	for (const char *parts[] = { kind, "\n", it->tenant, "\n", it->text }, **q = parts;
	     q < parts + 5; q++)
		it->key = policy_fnv64(it->key, *q, strlen(*q));
}

/* policy/hash.h's FNV-1a, short: a rule's meaning is hashed field by field. */
#define fnv       policy_fnv64
#define FNV_START POLICY_FNV64_OFFSET_BASIS

/* A set's hash: the sum of its members' (their order does not count). */
static uint64_t addrs_meaning(const struct policy_addr_list *l)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct policy_addr *a = &l->v[i];
		uint64_t h = fnv(FNV_START, &a->family, 1);
		h = fnv(h, &a->prefix_len, 1);
		h = fnv(h, a->lo, sizeof(a->lo));
		sum += fnv(h, a->hi, sizeof(a->hi));
	}
	return sum;
}

/* An endpoint: its kind, its zones (their names, interfaces and, for a
 * segment, addresses) and its addresses. */
static uint64_t endpoint_meaning(const struct policy *p, const struct policy_endpoint *e)
{
	uint64_t h = fnv(FNV_START, &e->kind, sizeof(e->kind)), zones = 0;

	for (size_t i = 0; i < e->n_zones; i++) {
		const struct policy_zone *z = &p->zones[e->zones[i]];
		uint64_t zh = fnv(FNV_START, z->name, strlen(z->name) + 1), ifs = 0;
		for (size_t k = 0; k < z->n_ifnames; k++)
			ifs += fnv(FNV_START, z->ifnames[k], strlen(z->ifnames[k]));
		uint64_t za = addrs_meaning(&z->addrs);
		zh = fnv(zh, &ifs, sizeof(ifs));
		zones += fnv(zh, &za, sizeof(za));
	}
	uint64_t ea = addrs_meaning(&e->addrs);
	h = fnv(h, &zones, sizeof(zones));
	return fnv(h, &ea, sizeof(ea));
}

static void rule_meaning(const struct policy *p, const struct policy_rule *r,
			 uint64_t m[MEANING_PARTS])
{
	uint64_t terms = 0, h = FNV_START;

	m[0] = endpoint_meaning(p, &r->from);
	m[1] = endpoint_meaning(p, &r->to);
	for (size_t i = 0; i < r->n_services; i++) {
		const struct policy_service_term *t = &r->services[i];
		uint64_t th = fnv(FNV_START, &t->l4proto, 1), ports = 0, types = 0;
		for (size_t k = 0; k < t->n_dports; k++)
			ports += fnv(FNV_START, &t->dports[k], sizeof(t->dports[k]));
		for (size_t k = 0; k < t->n_icmp_types; k++)
			types += fnv(FNV_START, &t->icmp_types[k], 1);
		th = fnv(th, &ports, sizeof(ports));
		terms += fnv(th, &types, sizeof(types));
	}
	m[2] = fnv(fnv(FNV_START, &r->n_services, sizeof(r->n_services)), &terms, sizeof(terms));
	h = fnv(h, &r->action, sizeof(r->action));
	h = fnv(h, &r->log, sizeof(r->log));
	h = fnv(h, &r->has_limit, sizeof(r->has_limit));
	h = fnv(h, &r->limit_rate, sizeof(r->limit_rate));
	h = fnv(h, &r->limit_unit, sizeof(r->limit_unit));
	h = fnv(h, &r->limit_burst, sizeof(r->limit_burst));
	h = fnv(h, &r->stateless, sizeof(r->stateless));
	for (size_t i = 0; i < r->n_inspect; i++) {
		const struct policy_inspect_match *x = &r->inspect[i];
		h = fnv(h, &x->action, sizeof(x->action));
		h = fnv(h, &x->field, sizeof(x->field));
		h = fnv(h, x->regex ? x->regex : "", x->regex ? strlen(x->regex) + 1 : 1);
		h = fnv(h, x->name ? x->name : "", x->name ? strlen(x->name) + 1 : 1);
		h = fnv(h, &x->suffix, sizeof(x->suffix));
	}
	m[3] = h;
}

/* The names a rule's text uses that a definition gives a meaning to:
 * `$define`s, and the words after `service` (names of services). */
static void used_names(const char *text, char *out, size_t size)
{
	size_t len = 0;
	bool after_service = false;

	out[0] = 0;
	for (const char *s = text; *s;) {
		size_t n;
		s += strspn(s, " \t{},");
		n = strcspn(s, " \t{},");
		if (!n)
			break;
		bool is_kw = (n == 4 && !memcmp(s, "port", 4)) ||
			     (n == 4 && !memcmp(s, "type", 4)) || policy_l4proto_by_name(s, n) >= 0;
		if ((*s == '$' || (after_service && !is_kw && !(*s >= '0' && *s <= '9'))) &&
		    *s != '"' && len + n + 3 < size) {
			len += (size_t)snprintf(out + len, size - len, "%s%.*s", len ? ", " : "",
						(int)n, s);
		}
		if (n == 7 && !memcmp(s, "service", 7))
			after_service = true;
		else if ((n == 4 && !memcmp(s, "from", 4)) || (n == 2 && !memcmp(s, "to", 2)) ||
			 (n == 3 && !memcmp(s, "log", 3)) || (n == 5 && !memcmp(s, "label", 5)) ||
			 (n == 5 && !memcmp(s, "limit", 5)) || (n == 2 && !memcmp(s, "no", 2)) ||
			 (n == 7 && !memcmp(s, "inspect", 7)))
			after_service = false;
		s += n;
	}
}

static struct item *items_of(const struct txn_policy *p, size_t *n)
{
	size_t k = 0, total = p ? p->policy->n_rules + p->policy->n_nats : 0;
	struct item *v = calloc(total ? total : 1, sizeof(*v));
	/* where each line starts: the texts are found without reading the files again per rule */
	struct policy_eval_lines *lines;

	*n = 0;
	if (!v)
		return NULL;
	lines = p ? policy_eval_lines_new(&p->diags) : NULL;
	for (size_t i = 0; p && i < p->policy->n_rules; i++) {
		const struct policy_rule *r = &p->policy->rules[i];
		item_of(&v[k], r->id, r->where, r->labelled, "rule", p, lines, &r->loc, r->text_len,
			r->tenant);
		rule_meaning(p->policy, r, v[k++].meaning);
	}
	for (size_t i = 0; p && i < p->policy->n_nats; i++) {
		const struct policy_nat *m = &p->policy->nats[i];
		item_of(&v[k++], m->id, m->id, false, "nat", p, lines, &m->loc, m->text_len,
			m->tenant);
	}
	policy_eval_lines_free(lines);
	*n = k;
	return v;
}

/* The same rule: same kind, same tenant, the same text (blanks and
 * comments aside). Where it is does not matter. */
static bool same_content(const struct item *a, const struct item *b)
{
	size_t n = strlen(a->text);

	if (strcmp(a->kind, b->kind) || strcmp(a->tenant, b->tenant) || strcmp(a->text, b->text))
		return false;
	/* a text cut short ("...") is told apart by the parser's hash of all of it */
	return n < 3 || strcmp(a->text + n - 3, "...") || a->text_hash == b->text_hash;
}

/* How alike two texts are: the words they share (each word counted once
 * per occurrence), per mille of the longer one's words. */
static unsigned similarity(const char *a, const char *b)
{
	const char *wa[64] = { NULL }, *wb[64] = { NULL };
	size_t la[64] = { 0 }, lb[64] = { 0 }, na = 0, nb = 0, common = 0;
	bool taken[64] = { false };

	for (const char *s = a; *s && na < 64; s += strspn(s, " ")) {
		wa[na] = s;
		la[na++] = strcspn(s, " ");
		s += strcspn(s, " ");
	}
	for (const char *s = b; *s && nb < 64; s += strspn(s, " ")) {
		wb[nb] = s;
		lb[nb++] = strcspn(s, " ");
		s += strcspn(s, " ");
	}
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (!taken[j] && la[i] == lb[j] && !memcmp(wa[i], wb[j], la[i])) {
				taken[j] = true;
				common++;
				break;
			}
	return na || nb ? (unsigned)(common * 1000 / (na > nb ? na : nb)) : 0;
}

/* Orders of `from`'s items: by key (then place in the policy), and by
 * file and line; binary searches in them keep compare near n log n. */
static int by_key(const void *a, const void *b, void *ctx)
{
	const struct item *f = ctx, *x = &f[*(const size_t *)a], *y = &f[*(const size_t *)b];

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int by_place(const void *a, const void *b, void *ctx)
{
	const struct item *f = ctx, *x = &f[*(const size_t *)a], *y = &f[*(const size_t *)b];
	int c = strcmp(x->file, y->file);

	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The first position in ord (sorted by cmp) whose item is not before
 * `probe`'s key or place. */
static size_t lower_bound(const size_t *ord, size_t n, const struct item *f,
			  const struct item *probe, bool place)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct item *x = &f[ord[mid]];
		bool before = place ? (strcmp(x->file, probe->file) < 0 ||
				       (!strcmp(x->file, probe->file) && x->line < probe->line))
				    : x->key < probe->key;
		if (before)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void match(struct item *f, size_t j, struct item *t, size_t i)
{
	f[j].used = t[i].used = true;
	f[j].partner = i + 1;
	t[i].partner = j + 1;
}

static void item_json(struct json_buf *b, const struct item *it)
{
	char loc[PATH_MAX + 16];
	const char *colon = strrchr(it->where, ':');

	json_obj_begin(b);
	json_kv_str(b, "id", it->id);
	json_kv_str(b, "kind", it->kind);
	/* The location as FILE:LINE:HASH has it (FILE:LINE). */
	snprintf(loc, sizeof(loc), "%.*s",
		 colon ? (int)(colon - it->where) : (int)strlen(it->where), it->where);
	json_kv_str(b, "location", loc);
	json_kv_str(b, "tenant", it->tenant);
	json_kv_str(b, "text", it->text);
	json_obj_end(b);
}

/* VPN blocks and their peers, compared by interface name and peer name
 * (the policy's names): each is an item of kind "vpn" (id: the interface)
 * or "peer" (id: INTERFACE/PEER) whose text is its settings on one line,
 * public keys abbreviated; a changed one also lists the fields that
 * changed. */

static void addrs_text(const struct policy_addr_list *l, char *out, size_t size)
{
	size_t k = 0;

	out[0] = 0;
	for (size_t i = 0; i < l->n && k < size; i++) {
		const struct policy_addr *a = &l->v[i];
		char lo[INET6_ADDRSTRLEN], hi[INET6_ADDRSTRLEN];

		inet_ntop(a->family, a->lo, lo, sizeof(lo));
		if (a->prefix_len != POLICY_ADDR_NOT_PREFIX) {
			k += (size_t)snprintf(out + k, size - k, "%s%s/%u", i ? "," : "", lo,
					      a->prefix_len);
		} else {
			inet_ntop(a->family, a->hi, hi, sizeof(hi));
			k += (size_t)snprintf(out + k, size - k, "%s%s-%s", i ? "," : "", lo, hi);
		}
	}
}

struct vpn_fields {
	char port[8], addrs[512], keyfile[PATH_MAX];
};

struct peer_fields {
	char key[16], psk[PATH_MAX], endpoint[288], allowed[512], keepalive[8];
};

static void vpn_fields_of(const struct policy_vpn *v, struct vpn_fields *f)
{
	snprintf(f->port, sizeof(f->port), "%u", v->listen_port);
	addrs_text(&v->addresses, f->addrs, sizeof(f->addrs));
	snprintf(f->keyfile, sizeof(f->keyfile), "%s",
		 v->private_key_file ? v->private_key_file : "");
}

static void peer_fields_of(const struct policy_vpn_peer *p, struct peer_fields *f)
{
	const char *key = p->public_key ? p->public_key : "";

	/* Enough of the key to tell two apart, not the whole key. */
	snprintf(f->key, sizeof(f->key), "%.8s%s", key, strlen(key) > 8 ? "..." : "");
	snprintf(f->psk, sizeof(f->psk), "%s", p->psk_file ? p->psk_file : "");
	snprintf(f->endpoint, sizeof(f->endpoint), "%s", p->endpoint ? p->endpoint : "");
	addrs_text(&p->allowed_ips, f->allowed, sizeof(f->allowed));
	snprintf(f->keepalive, sizeof(f->keepalive), "%u", p->keepalive);
}

static void vpn_item(struct json_buf *b, const struct policy_vpn *v,
		     const struct policy_vpn_peer *peer)
{
	char id[160], loc[PATH_MAX + 16], text[2 * PATH_MAX];
	const struct policy_loc *l = peer ? &peer->loc : &v->loc;

	if (peer) {
		struct peer_fields f = { 0 };

		peer_fields_of(peer, &f);
		snprintf(id, sizeof(id), "%s/%s", v->ifname, peer->name);
		snprintf(text, sizeof(text),
			 "peer %s public-key %s%s%s%s%s allowed-ips %s keepalive %s", peer->name,
			 f.key, *f.psk ? " preshared-key-file " : "", f.psk,
			 *f.endpoint ? " endpoint " : "", f.endpoint, *f.allowed ? f.allowed : "-",
			 f.keepalive);
	} else {
		struct vpn_fields f = { 0 };

		vpn_fields_of(v, &f);
		snprintf(id, sizeof(id), "%s", v->ifname);
		snprintf(text, sizeof(text),
			 "vpn %s listen-port %s address %s private-key-file %s (%zu peers)",
			 v->ifname, f.port, *f.addrs ? f.addrs : "-", f.keyfile, v->n_peers);
	}
	snprintf(loc, sizeof(loc), "%s:%u", l->file ? l->file : "", l->line);
	json_obj_begin(b);
	json_kv_str(b, "id", id);
	json_kv_str(b, "kind", peer ? "peer" : "vpn");
	json_kv_str(b, "location", loc);
	json_kv_str(b, "text", text);
	json_obj_end(b);
}

/* Writes the names of the fields that differ into b as an array; returns
 * how many. */
static size_t vpn_changed_fields(struct json_buf *b, const struct policy_vpn *x,
				 const struct policy_vpn *y, const struct policy_vpn_peer *px,
				 const struct policy_vpn_peer *py)
{
	size_t n = 0;

	if (b)
		json_arr_begin(b);
	if (px) {
		struct peer_fields f = { 0 }, g = { 0 };

		peer_fields_of(px, &f);
		peer_fields_of(py, &g);
		const char *pkx = px->public_key ? px->public_key : "",
			   *pky = py->public_key ? py->public_key : "";
		const char *names[] = { "public-key", "preshared-key-file", "endpoint",
					"allowed-ips", "keepalive" };
		bool diff[] = { strcmp(pkx, pky) != 0, strcmp(f.psk, g.psk) != 0,
				strcmp(f.endpoint, g.endpoint) != 0,
				strcmp(f.allowed, g.allowed) != 0,
				strcmp(f.keepalive, g.keepalive) != 0 };
		for (size_t i = 0; i < sizeof(diff) / sizeof(diff[0]); i++)
			if (diff[i]) {
				n++;
				if (b)
					json_str(b, names[i]);
			}
	} else {
		struct vpn_fields f = { 0 }, g = { 0 };

		vpn_fields_of(x, &f);
		vpn_fields_of(y, &g);
		const char *names[] = { "listen-port", "address", "private-key-file" };
		bool diff[] = { strcmp(f.port, g.port) != 0, strcmp(f.addrs, g.addrs) != 0,
				strcmp(f.keyfile, g.keyfile) != 0 };
		for (size_t i = 0; i < sizeof(diff) / sizeof(diff[0]); i++)
			if (diff[i]) {
				n++;
				if (b)
					json_str(b, names[i]);
			}
	}
	if (b)
		json_arr_end(b);
	return n;
}

static const struct policy_vpn *vpn_named(const struct txn_policy *p, const char *ifname)
{
	for (size_t i = 0; p && i < p->policy->n_vpns; i++)
		if (!strcmp(p->policy->vpns[i].ifname, ifname))
			return &p->policy->vpns[i];
	return NULL;
}

static const struct policy_vpn_peer *peer_named(const struct policy_vpn *v, const char *name)
{
	for (size_t i = 0; v && i < v->n_peers; i++)
		if (!strcmp(v->peers[i].name, name))
			return &v->peers[i];
	return NULL;
}

static void vpn_changed(struct json_buf *b, const struct policy_vpn *x, const struct policy_vpn *y,
			const struct policy_vpn_peer *px, const struct policy_vpn_peer *py,
			size_t *unchanged)
{
	if (!vpn_changed_fields(NULL, x, y, px, py)) {
		++*unchanged;
		return;
	}
	json_obj_begin(b);
	json_key(b, "from");
	vpn_item(b, x, px);
	json_key(b, "to");
	vpn_item(b, y, py);
	json_key(b, "fields");
	vpn_changed_fields(b, x, y, px, py);
	json_obj_end(b);
}

/* which: 0 changed (and counts the unchanged ones), 1 added, 2 removed. */
static void vpn_compare(const struct txn_policy *from, const struct txn_policy *to,
			struct json_buf *b, int which, size_t *unchanged)
{
	const struct txn_policy *side = which == 2 ? from : to, *other = which == 2 ? to : from;

	for (size_t i = 0; side && i < side->policy->n_vpns; i++) {
		const struct policy_vpn *v = &side->policy->vpns[i],
					*o = vpn_named(other, v->ifname);

		if (which && !o) {
			vpn_item(b, v, NULL);
			for (size_t k = 0; k < v->n_peers; k++)
				vpn_item(b, v, &v->peers[k]);
			continue;
		}
		if (!o)
			continue;
		if (!which)
			vpn_changed(b, o, v, NULL, NULL, unchanged);
		for (size_t k = 0; k < v->n_peers; k++) {
			const struct policy_vpn_peer *op = peer_named(o, v->peers[k].name);

			if (which && !op)
				vpn_item(b, v, &v->peers[k]);
			else if (!which && op)
				vpn_changed(b, o, v, op, &v->peers[k], unchanged);
		}
	}
}

/* Pairs the rules of `to` that no rule of `from` has the same content as
 * with one of `from` they replaced (same kind and tenant): the one at the
 * same file and line between the same unchanged neighbours; else the one
 * most alike (at least half its words), between those neighbours first.
 * Likeness is weighed among at most PAIR_CANDIDATES_MAX rules: all the
 * rules left when there are that few, else those between the neighbours
 * when they are that few; else only the same place counts. by_place: the
 * indices of f by file and line. */
static void pair_changed(struct item *f, size_t nf, struct item *t, size_t nt,
			 const size_t *by_place)
{
	size_t *next = calloc(nt + 1, sizeof(*next)), lo = 0, n_free = 0;

	for (size_t j = 0; j < nf; j++)
		n_free += !f[j].used && !f[j].labelled;
	/* next[i]: the place in `from` of the first unchanged rule at or after i */
	for (size_t i = nt + 1; next && i-- > 0;)
		next[i] = i == nt ? nf : t[i].partner ? t[i].partner - 1 : next[i + 1];
	for (size_t i = 0; next && i < nt && n_free; i++) {
		size_t hi = next[i + 1], best = 0;
		unsigned best_score = 0;
		bool global = n_free <= PAIR_CANDIDATES_MAX, gap, placed = false;
		/* the unchanged neighbours' places in `from` bound the search */
		if (t[i].partner)
			lo = t[i].partner;
		if (t[i].used || t[i].labelled)
			continue;
		gap = lo < hi && hi - lo <= PAIR_CANDIDATES_MAX;
		/* the same place, between the neighbours */
		for (size_t k = lower_bound(by_place, nf, f, &t[i], true); k < nf && !best; k++) {
			size_t j = by_place[k];
			if (strcmp(f[j].file, t[i].file) || f[j].line != t[i].line)
				break;
			if (j >= lo && j < hi && !f[j].used && !f[j].labelled &&
			    !strcmp(f[j].kind, t[i].kind) && !strcmp(f[j].tenant, t[i].tenant)) {
				best = j + 1;
				placed = true;
			}
		}
		for (size_t j = global ? 0 : lo;
		     !placed && (global || gap) && j < (global ? nf : hi); j++) {
			bool in_gap = j >= lo && j < hi;
			unsigned sim;
			if (f[j].used || f[j].labelled || strcmp(f[j].kind, t[i].kind) ||
			    strcmp(f[j].tenant, t[i].tenant))
				continue;
			sim = similarity(f[j].text, t[i].text);
			if (sim >= 500 && sim + (in_gap ? 1000u : 0u) > best_score) {
				best_score = sim + (in_gap ? 1000u : 0u);
				best = j + 1;
			}
		}
		if (best) {
			f[best - 1].used = true;
			t[i].used = true;
			t[i].changed_from = best;
			n_free--;
		}
	}
	free(next);
}

/* Marks which matched `to` items of `kind` kept their place: of the items
 * with the same content (partner), those in a longest run whose `from`
 * indices increase in `to` order (O(n log n)), among the items of one
 * tenant; a changed item
 * (changed_from), if it still sits between the kept ones around it. The
 * others moved (first match: a rule that moved past another can change
 * what decides). */
static int mark_kept_of(struct item *t, size_t nt, const char *kind, const char *tenant)
{
	size_t *idx = malloc((nt ? nt : 1) * sizeof(*idx)),
	       *tail = malloc((nt ? nt : 1) * sizeof(*tail));
	size_t *prev = malloc((nt ? nt : 1) * sizeof(*prev)), n = 0, len = 0;

	if (!idx || !tail || !prev) {
		free(idx);
		free(tail);
		free(prev);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nt; i++)
		if (t[i].partner && !strcmp(t[i].kind, kind) && !strcmp(t[i].tenant, tenant))
			idx[n++] = i;
	/* tail[k]: the position in idx of the smallest end of an increasing run
	 * of length k + 1; prev: the element before, in its run. */
	for (size_t p = 0; p < n; p++) {
		size_t lo = 0, hi = len, m = t[idx[p]].partner;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (t[idx[tail[mid]]].partner < m)
				lo = mid + 1;
			else
				hi = mid;
		}
		prev[p] = lo ? tail[lo - 1] : SIZE_MAX;
		tail[lo] = p;
		if (lo == len)
			len++;
	}
	for (size_t p = len ? tail[len - 1] : SIZE_MAX; p != SIZE_MAX; p = prev[p])
		t[idx[p]].kept = true;
	/* A changed item kept its place if it is still between the kept items
	 * around it. */
	for (size_t i = 0, before = 0; i < nt; i++) {
		size_t after = 0;
		if (strcmp(t[i].kind, kind) || strcmp(t[i].tenant, tenant) ||
		    (!t[i].partner && !t[i].changed_from))
			continue;
		if (t[i].partner) {
			before = t[i].kept ? t[i].partner : before;
			continue;
		}
		for (size_t k = i + 1; k < nt && !after; k++)
			if (t[k].kept && t[k].partner && !strcmp(t[k].kind, kind) &&
			    !strcmp(t[k].tenant, tenant))
				after = t[k].partner;
		t[i].kept = t[i].changed_from > before && (!after || t[i].changed_from < after);
	}
	free(idx);
	free(tail);
	free(prev);
	return 0;
}

/* mark_kept_of() for each tenant's items of `kind` (the global ones: ""):
 * a tenant's rules are decided apart from the others', so only the order
 * within one tenant (or among the global rules) counts. */
static int mark_kept(struct item *t, size_t nt, const char *kind)
{
	const char **seen = malloc((nt ? nt : 1) * sizeof(*seen));
	size_t n_seen = 0;
	int rc = seen ? 0 : -ENOMEM;

	for (size_t i = 0; !rc && i < nt; i++) {
		size_t k = 0;
		while (k < n_seen && strcmp(seen[k], t[i].tenant))
			k++;
		if (k < n_seen)
			continue;
		seen[n_seen++] = t[i].tenant;
		rc = mark_kept_of(t, nt, kind, t[i].tenant);
	}
	free(seen);
	return rc;
}

/* For a rule of the same text whose meaning changed: which parts, and
 * the names of definitions its text uses ("redefined" in the reply). */
static void redefined_json(struct json_buf *out, const struct item *from, const struct item *to)
{
	static const char *const part[MEANING_PARTS] = { "from", "to", "service",
							 "action/options" };
	char names[256];

	json_key(out, "redefined");
	json_obj_begin(out);
	json_key(out, "parts");
	json_arr_begin(out);
	for (int k = 0; k < MEANING_PARTS; k++)
		if (from->meaning[k] != to->meaning[k])
			json_str(out, part[k]);
	json_arr_end(out);
	used_names(to->text, names, sizeof(names));
	json_kv_str(out, "uses", names);
	json_obj_end(out);
}

static void pair_json(struct json_buf *out, const struct item *from, const struct item *to,
		      bool moved)
{
	json_obj_begin(out);
	json_key(out, "from");
	item_json(out, from);
	json_key(out, "to");
	item_json(out, to);
	if (moved)
		json_kv_bool(out, "moved", true);
	if (to->redefined)
		redefined_json(out, from, to);
	json_obj_end(out);
}

void txn_compare(const struct txn_policy *from, const struct txn_policy *to, struct json_buf *out)
{
	size_t nf, nt, unchanged = 0;
	struct item *f = items_of(from, &nf), *t = items_of(to, &nt);
	size_t *ord = calloc(nf ? nf : 1, sizeof(*ord));

	if (!f || !t || !ord) {
		out->oom = true;
		goto done;
	}
	/* The same label is the same rule, wherever it went: unchanged with
	 * the same text, else changed. */
	for (size_t i = 0; i < nt; i++)
		for (size_t j = 0; j < nf && t[i].labelled && !t[i].used; j++)
			if (!f[j].used && f[j].labelled && !strcmp(f[j].kind, t[i].kind) &&
			    !strcmp(f[j].id, t[i].id)) {
				if (same_content(&f[j], &t[i])) {
					match(f, j, t, i);
				} else {
					f[j].used = t[i].used = true;
					t[i].changed_from = j + 1;
				}
			}
	/* The same content is the same rule, wherever it is: at the same file
	 * and line first, then in the same file, then anywhere (another file,
	 * another source: a directory, a git tree), identical rules in their
	 * order. */
	for (size_t j = 0; j < nf; j++)
		ord[j] = j;
	qsort_r(ord, nf, sizeof(*ord), by_key, f);
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < nt; i++)
			for (size_t k = lower_bound(ord, nf, f, &t[i], false);
			     k < nf && f[ord[k]].key == t[i].key && !t[i].used && !t[i].labelled;
			     k++) {
				size_t j = ord[k];
				if (!f[j].used && !f[j].labelled && same_content(&f[j], &t[i]) &&
				    (pass == 2 || !strcmp(f[j].file, t[i].file)) &&
				    (pass >= 1 || f[j].line == t[i].line))
					match(f, j, t, i);
			}
	qsort_r(ord, nf, sizeof(*ord), by_place, f);
	pair_changed(f, nf, t, nt, ord);
	if (mark_kept(t, nt, "rule") || mark_kept(t, nt, "nat")) {
		out->oom = true;
		goto done;
	}
	/* The same text that now stands for other addresses, zones or
	 * services (a define, service or zone it uses changed): changed. */
	for (size_t i = 0; i < nt; i++)
		t[i].redefined = t[i].partner && memcmp(t[i].meaning, f[t[i].partner - 1].meaning,
							sizeof(t[i].meaning));
	json_key(out, "changed");
	json_arr_begin(out);
	for (size_t i = 0; i < nt; i++)
		if (t[i].changed_from)
			pair_json(out, &f[t[i].changed_from - 1], &t[i], !t[i].kept);
		else if (t[i].redefined)
			pair_json(out, &f[t[i].partner - 1], &t[i], !t[i].kept);
	vpn_compare(from, to, out, 0, &unchanged);
	json_arr_end(out);
	/* The same content in another place among the others: moved. */
	json_key(out, "moved");
	json_arr_begin(out);
	for (size_t i = 0; i < nt; i++)
		if (t[i].partner && !t[i].kept && !t[i].redefined)
			pair_json(out, &f[t[i].partner - 1], &t[i], false);
		else if (t[i].partner && !t[i].redefined)
			unchanged++;
	json_arr_end(out);
	json_key(out, "added");
	json_arr_begin(out);
	for (size_t i = 0; i < nt; i++)
		if (!t[i].used)
			item_json(out, &t[i]);
	vpn_compare(from, to, out, 1, NULL);
	json_arr_end(out);
	json_key(out, "removed");
	json_arr_begin(out);
	for (size_t j = 0; j < nf; j++)
		if (!f[j].used)
			item_json(out, &f[j]);
	vpn_compare(from, to, out, 2, NULL);
	json_arr_end(out);
	json_kv_uint(out, "unchanged", unchanged);
done:
	free(f);
	free(t);
	free(ord);
}

/* Applying. */

static size_t array_len(const struct json *obj, const char *key)
{
	const struct json *a = json_get(obj, key);
	return a && a->type == JSON_ARRAY ? a->n : 0;
}

void txn_note_candidate_changes(struct txn *t, const char *compare_json, size_t len)
{
	struct json *j = NULL;
	char err[64];

	t->candidate_changes.known = false;
	if (!t->candidate || json_parse(compare_json, len, &j, err, sizeof(err)))
		return;
	t->candidate_changes = (struct txn_changes){ .known = true,
						     .running_gen = t->running_gen,
						     .candidate = t->candidate,
						     .added = array_len(j, "added"),
						     .removed = array_len(j, "removed"),
						     .changed = array_len(j, "changed"),
						     .moved = array_len(j, "moved") };
	json_free(j);
}

const struct txn_changes *txn_candidate_changes(const struct txn *t)
{
	const struct txn_changes *c = &t->candidate_changes;
	return c->known && t->candidate && c->candidate == t->candidate &&
		       c->running_gen == t->running_gen
		   ? c
		   : NULL;
}

static const struct policy_tenant *tenant_by_mark(const struct policy *p, uint32_t mark)
{
	for (size_t i = 0; p && i < p->n_tenants; i++)
		if (policy_tenant_mark(&p->tenants[i]) == mark)
			return &p->tenants[i];
	return NULL;
}

/* A tenant's block-list entry follows its tenant by name into policy `to`
 * (a tenant's mark is its position, which an edit may change); false if
 * that tenant is gone. At start-up (nothing running yet) the kernel's
 * entries keep their marks. */
static bool follow_tenant(const struct txn *t, const struct policy *to, struct nftio_set_elem *e)
{
	const struct policy_tenant *from =
	    tenant_by_mark(t->running ? t->running->policy : NULL, e->mark_lo);

	if (!t->running || (e->mark_lo == 0 && e->mark_hi == UINT32_MAX) || !from)
		return true;
	for (size_t i = 0; i < to->n_tenants; i++)
		if (!strcmp(to->tenants[i].name, from->name)) {
			e->mark_lo = policy_tenant_mark(&to->tenants[i]);
			e->mark_hi = e->mark_lo | ~POLICY_TENANT_MARK_MASK;
			return true;
		}
	syslog(LOG_NOTICE, "block list: tenant %s is gone; its entries are dropped", from->name);
	return false;
}

/* The interface range of pattern k of zone z, NUL-padded (ir.h). */
static void pattern_range(const struct policy_zone *z, size_t k, char lo[IFNAMSIZ],
			  char hi[IFNAMSIZ])
{
	struct ir_value vlo, vhi;

	ir_ifname_wildcard(z->ifnames[k], &vlo, &vhi);
	memcpy(lo, vlo.data, IFNAMSIZ);
	memcpy(hi, vhi.data, IFNAMSIZ);
}

/* Whether pattern k of z is covered by another of its patterns ("tap-a" by
 * "tap-*"; of two equal ones the later): an element for it would overlap,
 * which the kernel refuses. */
static bool pattern_covered(const struct policy_zone *z, size_t k)
{
	char klo[IFNAMSIZ], khi[IFNAMSIZ], lo[IFNAMSIZ], hi[IFNAMSIZ];

	pattern_range(z, k, klo, khi);
	for (size_t i = 0; i < z->n_ifnames; i++) {
		if (i == k)
			continue;
		pattern_range(z, i, lo, hi);
		if (memcmp(lo, klo, IFNAMSIZ) > 0 || memcmp(hi, khi, IFNAMSIZ) < 0)
			continue;
		if (memcmp(lo, klo, IFNAMSIZ) || memcmp(hi, khi, IFNAMSIZ) || i < k)
			return true;
	}
	return false;
}

/* The elements of a zone-scoped entry: base (address, timeout) once per
 * interface pattern of zone `zone` of p. Caller frees *out. */
static int zone_elems(const struct policy *p, size_t zone, const struct nftio_set_elem *base,
		      struct nftio_set_elem **out, size_t *n)
{
	const struct policy_zone *z = &p->zones[zone];

	*n = 0;
	*out = calloc(z->n_ifnames ? z->n_ifnames : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t k = 0; k < z->n_ifnames; k++) {
		struct nftio_set_elem *e = &(*out)[*n];
		if (pattern_covered(z, k))
			continue;
		*e = *base;
		e->by_ifname = true;
		e->mark_lo = e->mark_hi = 0;
		pattern_range(z, k, e->ifname_lo, e->ifname_hi);
		(*n)++;
	}
	return 0;
}

static size_t zone_of_elem(const struct policy *p, const struct nftio_set_elem *e)
{
	char lo[IFNAMSIZ], hi[IFNAMSIZ];

	for (size_t z = 0; p && z < p->n_zones; z++)
		for (size_t k = 0; k < p->zones[z].n_ifnames; k++) {
			pattern_range(&p->zones[z], k, lo, hi);
			if (!memcmp(lo, e->ifname_lo, IFNAMSIZ) &&
			    !memcmp(hi, e->ifname_hi, IFNAMSIZ))
				return z;
		}
	return POLICY_NONE;
}

size_t txn_block_zone_of(const struct txn *t, const struct nftio_set_elem *e)
{
	return zone_of_elem(t->running ? t->running->policy : NULL, e);
}

static bool carry_elem(struct ir_set *set, const struct nftio_set_elem *v)
{
	struct ir_set_elem *e = ir_set_elem_add(set);

	if (!e)
		return false;
	if (v->by_ifname) {
		e->key[0] = ir_value_ifname("");
		memcpy(e->key[0].data, v->ifname_lo, IFNAMSIZ);
		e->key_end[0] = ir_value_ifname("");
		memcpy(e->key_end[0].data, v->ifname_hi, IFNAMSIZ);
	} else {
		e->key[0] = ir_value_u32(v->mark_lo);
		e->key_end[0] = ir_value_u32(v->mark_hi);
	}
	e->key[1] = ir_value_addr(v->addr, v->family);
	e->key_end[1] = ir_value_addr(v->addr_end, v->family);
	e->timeout_ms = v->timeout_ms ? v->expires_ms : 0;
	return true;
}

/* Zone-scoped entries follow their zone by name into policy `to`, with its
 * interfaces there (an edit may change them); dropped if the zone is gone.
 * One entry is one element per pattern: each is carried once. At start-up
 * (nothing running) and for an element no running zone explains, the
 * kernel's elements are kept as they are. */
static void carry_zone_elems(const struct txn *t, const struct policy *to, struct ir_set *set,
			     const struct nftio_set_elem *v, size_t n)
{
	const struct policy *from = t->running ? t->running->policy : NULL;
	struct nftio_set_elem *done = calloc(n ? n : 1, sizeof(*done)), *exp;
	size_t n_done = 0, n_exp;

	for (size_t k = 0; k < n; k++) {
		size_t zf = zone_of_elem(from, &v[k]), zt = POLICY_NONE;
		bool seen = false;

		if (v[k].timeout_ms && !v[k].expires_ms)
			continue; /* expiring right now */
		if (!from || zf == POLICY_NONE) {
			carry_elem(set, &v[k]);
			continue;
		}
		for (size_t i = 0; i < to->n_zones && zt == POLICY_NONE; i++)
			if (!strcmp(to->zones[i].name, from->zones[zf].name))
				zt = i;
		if (zt == POLICY_NONE) {
			syslog(LOG_NOTICE, "block list: zone %s is gone; its entries are dropped",
			       from->zones[zf].name);
			continue;
		}
		for (size_t i = 0; done && i < n_done && !seen; i++)
			seen = done[i].mark_lo == zt && done[i].family == v[k].family &&
			       !memcmp(done[i].addr, v[k].addr, 16) &&
			       !memcmp(done[i].addr_end, v[k].addr_end, 16);
		if (seen || !done)
			continue;
		done[n_done] = v[k];
		done[n_done++].mark_lo = (uint32_t)zt; /* the zone, for the test above */
		if (zone_elems(to, zt, &v[k], &exp, &n_exp))
			continue;
		for (size_t i = 0; i < n_exp; i++)
			carry_elem(set, &exp[i]);
		free(exp);
	}
	free(done);
}

/* The global and tenant-scoped entries, with the time they have left. */
static void carry_mark_elems(const struct txn *t, const struct policy *to, struct ir_table *ir)
{
	static const char *names[] = { POLICY_SET_BLOCKED4, POLICY_SET_BLOCKED6 };

	for (size_t i = 0; i < 2; i++) {
		size_t idx = ir_build_set_find(ir, names[i]);
		struct nftio_set_elem *v;
		size_t n;

		if (idx == (size_t)-1)
			continue;
		ir->sets[idx].n_elems = 0; /* a dynamic set has no static elements */
		if (nftio_set_elems(t->netns, names[i], &v, &n))
			continue; /* no table yet: nothing to carry */
		for (size_t k = 0; k < n; k++) {
			if (v[k].timeout_ms && !v[k].expires_ms)
				continue; /* expiring right now */
			if (!follow_tenant(t, to, &v[k]))
				continue;
			if (!carry_elem(&ir->sets[idx], &v[k]))
				break;
		}
		free(v);
	}
}

/* Puts the kernel's current block-list elements into the batch, with the
 * time they have left. */
static void carry_dynamic(const struct txn *t, const struct policy *to, struct ir_table *ir)
{
	static const char *zone_names[] = { POLICY_SET_BLOCKED_ZONE4, POLICY_SET_BLOCKED_ZONE6 };

	for (size_t i = 0; i < 2; i++) {
		size_t idx = ir_build_set_find(ir, zone_names[i]);
		struct nftio_set_elem *v;
		size_t n;

		if (idx == (size_t)-1)
			continue;
		ir->sets[idx].n_elems = 0;
		if (nftio_set_elems_by_ifname(t->netns, zone_names[i], &v, &n))
			continue;
		carry_zone_elems(t, to, &ir->sets[idx], v, n);
		free(v);
	}
	carry_mark_elems(t, to, ir);
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t clock_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t txn_pending_left_ms(const struct txn *t)
{
	return t->pending ? t->deadline_mono_ms - clock_ms(CLOCK_MONOTONIC) : 0;
}

/* The tenants' policy routing follows the ruleset (appliance/kernel/route.h). The
 * ruleset is in the kernel already, so a failure here is logged, not undone. */
static void apply_routes(const char *netns, const struct policy *pol)
{
	struct policy_diags d;
	policy_diags_init(&d);
	struct route_result rr;
	if (route_apply(netns, pol, &rr, &d))
		syslog(LOG_ERR, "tenant routing not installed: %s",
		       d.n ? d.v[d.n - 1].message : "rtnetlink error");
	else if (rr.rules || rr.removed)
		syslog(LOG_INFO,
		       "tenant routing: %zu fwmark rules, %zu routes (%zu skipped), %zu removed",
		       rr.rules, rr.routes, rr.skipped, rr.removed);
	if (rr.ambiguous)
		syslog(LOG_WARNING,
		       "tenant routing: %zu segment prefix%s without a route: its wildcard "
		       "matches several interfaces",
		       rr.ambiguous, rr.ambiguous == 1 ? "" : "es");
	policy_diags_free(&d);
}

void txn_phases_json(const struct txn *t, struct json_buf *b)
{
	const struct txn_phases *ph = &t->phases;
	const struct {
		const char *name;
		double seconds;
	} v[] = { { "storage_ms", ph->storage }, { "prepare_ms", ph->prepare },
		  { "guard_ms", ph->guard },     { "plan_ms", ph->plan },
		  { "plan_diff_ms", ph->diff },  { "plan_handles_ms", ph->handles },
		  { "kernel_ms", ph->kernel },   { "after_ms", ph->after },
		  { "routes_ms", ph->routes },   { "candidate_ms", ph->candidate } };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		json_kv_double(b, v[i].name, v[i].seconds * 1000);
}

void txn_reroute(struct txn *t)
{
	if (t->running && t->running->policy->n_tenants)
		apply_routes(t->netns, t->running->policy);
}

/* Reads the generation and the digest of our table together; the digest
 * stays unknown if it cannot be read (the guard then falls back to the
 * generation alone). */
static void remember_table(struct txn *t)
{
	uint32_t genid;

	t->digest_known = !nftio_table_digest(t->netns, &genid, t->digest);
	if (t->digest_known) {
		t->genid = genid;
		t->genid_known = true;
	} else if (!nftio_genid(t->netns, &t->genid)) {
		t->genid_known = true;
	}
}

/* The guard: 0 if nobody but us changed table inet hvgate since our last
 * change, with *expect the generation for the batch; -ERESTART otherwise.
 * A moved generation alone (another program's table) is no change of ours. */
static int check_guard(struct txn *t, uint32_t *expect, char *err, size_t errsz)
{
	unsigned char now[NFTIO_DIGEST_LEN];
	uint32_t genid;

	*expect = t->genid;
	if (nftio_genid(t->netns, &genid) || genid == t->genid)
		return 0; /* unread: the kernel's check of t->genid decides */
	if (t->digest_known && !nftio_table_digest(t->netns, &genid, now) &&
	    !memcmp(now, t->digest, sizeof(now))) {
		syslog(
		    LOG_INFO,
		    "ruleset generation %u -> %u: other tables changed, table inet hvgate did not",
		    t->genid, genid);
		*expect = genid;
		return 0;
	}
	snprintf(
	    err, errsz,
	    "table inet hvgate was changed outside hvgated since its last apply (ruleset generation %u, "
	    "now %u); nothing was applied: look at 'nft list table inet hvgate', then 'commit force' or "
	    "'reload'",
	    t->genid, genid);
	return -ERESTART;
}

static int apply_pinned(struct txn *t, struct txn_policy *p, unsigned rev, bool guard, char *err,
			size_t errsz)
{
	struct nftio_apply_opts o = { .netns = t->netns };
	struct nftio_apply_result r = { 0 };
	struct policy_diags d;
	double start = now_seconds();
	int rc;

	struct ir_diff *diff = NULL;
	double plan_s = 0;
	uint32_t ours;

	double mark = now_seconds();
	txn_delta_mark_set(p->ir, rev, p->hash);
	carry_dynamic(t, p->policy, p->ir);
	o.expect_genid_set = guard && t->genid_known;
	t->phases.prepare = now_seconds() - mark;
	mark = now_seconds();
	if (o.expect_genid_set && (rc = check_guard(t, &o.expect_genid, err, errsz))) {
		t->stats.apply_errors++;
		return rc;
	}
	t->phases.guard = now_seconds() - mark;
	/* The delta only from a table nobody else changed (not after a
	 * `commit force` over someone's edit: that one is replaced). */
	snprintf(t->last_apply_mode, sizeof(t->last_apply_mode), "full replace (%s)",
		 !t->running ? "nothing known to run"
			     : "the table was changed outside hvgated or is unread");
	if (t->running && t->genid_known && (guard || !check_guard(t, &ours, err, errsz))) {
		carry_dynamic(t, t->running->policy,
			      t->running->ir); /* the kernel's, as they are */
		plan_s = now_seconds();
		diff = txn_delta_plan(t->running->ir, t->running->prints, p->ir, p->prints,
				      t->last_apply_mode, sizeof(t->last_apply_mode));
		mark = now_seconds();
		t->phases.diff = mark - plan_s;
		txn_delta_handles_use(t->netns, t->running->ir, &t->handles, diff);
		t->phases.handles = now_seconds() - mark;
		plan_s = now_seconds() - plan_s;
		o.running = t->running->ir;
		o.diff = diff;
	}
	policy_diags_init(&d);
	mark = now_seconds();
	rc = nftio_apply(p->ir, &o, &r, &d);
	if (diff && rc && rc != -ERESTART && rc != -EAGAIN) {
		syslog(LOG_WARNING,
		       "the kernel refused the delta to revision %u; replacing the table", rev);
		snprintf(t->last_apply_mode, sizeof(t->last_apply_mode),
			 "full replace (the kernel refused the delta)");
		o.diff = NULL;
		policy_diags_free(&d);
		policy_diags_init(&d);
		rc = nftio_apply(p->ir, &o, &r, &d);
	}
	t->phases.kernel = now_seconds() - mark;
	t->phases.plan = plan_s;
	mark = now_seconds();
	if (!rc && o.diff) {
		/* after the reply: txn_settle() */
		t->settle.diff = diff;
		t->settle.ir = p->ir;
		t->settle.at = time(NULL);
		diff = NULL;
	} else if (!rc) {
		txn_delta_since_update(&t->since, p->ir, NULL, time(NULL));
		txn_delta_handles_after(t->netns, p->ir, &t->handles, NULL);
	}
	t->phases.after = now_seconds() - mark;
	ir_diff_free(diff);
	t->stats.last_apply_seconds = now_seconds() - start;
	if (rc == -ERESTART || rc == -EAGAIN) {
		uint32_t now = 0;
		nftio_genid(t->netns, &now);
		snprintf(
		    err, errsz,
		    "the ruleset was changed outside hvgated while it applied (generation %u, now %u); "
		    "nothing was applied: look at 'nft list table inet hvgate', then 'commit force' or "
		    "'reload'",
		    o.expect_genid, now);
	} else if (rc) {
		diags_to_err(&d, "the kernel refused the ruleset", err, errsz);
	}
	policy_diags_free(&d);
	if (rc) {
		t->stats.apply_errors++;
		return rc;
	}
	t->stats.applies++;
	t->stats.apply_seconds_total += t->stats.last_apply_seconds;
	t->genid = r.genid_after;
	t->genid_known = true;
	/* The digest counts only if nobody changed anything since our batch. */
	uint32_t read_at;
	/* After a delta the digest (a dump of the whole table) is read by the
	 * next txn_tick(), after the reply: the commit costs what it changed. */
	t->digest_pending = o.diff != NULL;
	t->digest_known = !t->digest_pending &&
			  !nftio_table_digest(t->netns, &read_at, t->digest) &&
			  read_at == r.genid_after;
	syslog(
	    LOG_INFO,
	    "applied revision %u (hash %s, %s, %zu messages, delta planned in %.3f s, kernel %.3f s, "
	    "%.3f s)",
	    rev, p->hash, t->last_apply_mode, r.n_messages, plan_s, r.kernel_seconds,
	    t->stats.last_apply_seconds);
	mark = now_seconds();
	apply_routes(t->netns, p->policy);
	t->phases.routes = now_seconds() - mark;
	return 0;
}

/* One apply on one nf_tables socket (the guard's reads, the batch, the
 * handle reads): each socket of its own would enter the namespace again. */
static int apply(struct txn *t, struct txn_policy *p, unsigned rev, bool guard, char *err,
		 size_t errsz)
{
	txn_settle(t); /* the handles of the last delta, before the next one */
	double storage = t->phases.storage;
	memset(&t->phases, 0, sizeof(t->phases));
	t->phases.storage = storage;
	bool pinned = !nftio_pin(t->netns);
	int rc = apply_pinned(t, p, rev, guard, err, errsz);
	if (pinned)
		nftio_unpin();
	return rc;
}

/* Does the kernel already run exactly this ruleset? */
static bool kernel_runs(const struct txn *t, const struct txn_policy *p)
{
	char comment[128], want[64];

	if (txn_delta_kernel_mark(t->netns, comment, sizeof(comment)))
		return false;
	snprintf(want, sizeof(want), "hash=%s", p->hash);
	return strstr(comment, want) != NULL;
}

static int save_rev(struct txn *t, const struct txn_policy *p, unsigned rev, uid_t who,
		    const char *comment, unsigned confirm_seconds)
{
	struct history_rev m = { .id = rev,
				 .time = time(NULL),
				 .uid = who,
				 .previous = t->running_rev,
				 .confirm_seconds = confirm_seconds };
	int rc;

	snprintf(m.comment, sizeof(m.comment), "%s", comment ? comment : "");
	snprintf(m.source, sizeof(m.source), "%s", p->source);
	snprintf(m.source_rev, sizeof(m.source_rev), "%s", p->source_rev);
	snprintf(m.root, sizeof(m.root), "%s", p->root);
	snprintf(m.hash, sizeof(m.hash), "%s", p->hash);
	rc = history_save_like(t->state_dir, &m, &p->diags, t->running ? t->running_text_rev : 0,
			       t->running ? &t->running->diags : NULL);
	if (rc)
		syslog(LOG_ERR, "cannot store revision %u in %s: %s", rev, t->state_dir,
		       strerror(-rc));
	return rc;
}

/* STATE/running back to what it was after a failed change; logged, as the
 * caller is already reporting the first failure. */
static void restore_running_file(struct txn *t, unsigned rev)
{
	int rc = history_running_save(t->state_dir, rev);
	if (rc)
		syslog(LOG_ERR, "%s/running: cannot restore revision %u: %s", t->state_dir, rev,
		       strerror(-rc));
}

static void set_running(struct txn *t, struct txn_policy *p, unsigned rev)
{
	/* A delta left to settle is of p, just applied; anything else (a
	 * revert to nothing) settles it while the table it came from lives. */
	if (t->settle.diff && (!p || t->settle.ir != p->ir))
		txn_settle(t);
	/* Handles belong to the table that was applied; another one (a start
	 * that found its ruleset running, a revert to nothing) reads its own.
	 * After a delta they are still the running table's until txn_settle(). */
	if (t->handles && (!p || t->handles->of != p->ir) &&
	    !(p && t->settle.diff && t->settle.ir == p->ir)) {
		txn_delta_handles_free(t->handles);
		t->handles = NULL;
	}
	txn_policy_free(t->retired);
	t->retired = t->running;
	t->running = p;
	t->running_rev = rev;
	t->running_text_rev = p ? rev : 0;
	t->running_gen++;
}

/* The revision to record `p` under: the running one or the newest one if
 * it has the same ruleset (*is_new false), else a newly reserved id. */
static int rev_for(const struct txn *t, const struct txn_policy *p, unsigned *rev, bool *is_new)
{
	unsigned last = history_last_id(t->state_dir);
	struct history_rev m;

	*is_new = false;
	if (t->running && !strcmp(t->running->hash, p->hash)) {
		*rev = t->running_rev;
		return 0;
	}
	if (last && !history_store_get(t->state_dir, last, &m) && !strcmp(m.hash, p->hash)) {
		*rev = last;
		return 0;
	}
	*is_new = true;
	return history_reserve_id(t->state_dir, rev);
}

static void storage_err(const struct txn *t, const char *what, int rc, char *err, size_t errsz)
{
	snprintf(err, errsz, "%s in %s: %s; nothing was applied", what, t->state_dir,
		 strerror(-rc));
}

/* Stores `p` (owned) durably as a revision and as STATE/running, then
 * applies it unless the kernel already runs it. A storage failure changes
 * nothing in the kernel. */
static int make_running(struct txn *t, struct txn_policy *p, const char *why, bool *applied,
			char *err, size_t errsz)
{
	unsigned rev, prev = t->running_rev;
	bool is_new;
	int rc;

	*applied = false;
	double mark = now_seconds();
	rc = rev_for(t, p, &rev, &is_new);
	if (rc) {
		storage_err(t, "cannot reserve a revision id", rc, err, errsz);
		goto fail;
	}
	if (is_new && (rc = save_rev(t, p, rev, 0, why, 0))) {
		storage_err(t, "cannot store the revision", rc, err, errsz);
		goto fail;
	}
	rc = history_running_save(t->state_dir, rev);
	if (rc) {
		storage_err(t, "cannot store the running revision", rc, err, errsz);
		goto undo;
	}
	t->phases.storage = now_seconds() - mark;
	if (!kernel_runs(t, p)) {
		rc = apply(t, p, rev, false, err, errsz);
		if (rc) {
			restore_running_file(t, prev);
			goto undo;
		}
		*applied = true;
	} else {
		remember_table(t);
	}
	set_running(t, p, rev);
	if (!is_new)
		t->running_text_rev = 0; /* rev has the same ruleset, maybe from other text */
	return 0;
undo:
	if (is_new)
		history_remove(t->state_dir, rev);
fail:
	txn_policy_free(p);
	return rc;
}

static int revert(struct txn *t, char *err, size_t errsz)
{
	struct txn_policy *p = NULL;
	unsigned to = t->pend.revert_to;
	int rc;

	if (to == 0) {
		struct policy_diags d;
		policy_diags_init(&d);
		rc = nftio_flush(t->netns, &d);
		policy_diags_free(&d);
		if (!rc)
			route_flush(t->netns, NULL);
		if (rc) {
			snprintf(err, errsz, "revert: cannot remove the ruleset: %s",
				 strerror(-rc));
			return rc;
		}
		set_running(t, NULL, 0);
	} else {
		rc = txn_compile_rev(t, to, &p, err, errsz);
		if (!rc)
			rc = apply(t, p, to, false, err, errsz);
		if (rc) {
			txn_policy_free(p);
			return rc;
		}
		set_running(t, p, to);
	}
	remember_table(t);
	t->pending = false;
	/* STATE/running before pending.json goes: a crash in between reverts
	 * again at start, never runs the unconfirmed revision. */
	rc = history_running_save(t->state_dir, to);
	if (rc)
		syslog(LOG_ERR, "%s/running: cannot store revision %u: %s", t->state_dir, to,
		       strerror(-rc));
	else if ((rc = history_pending_clear(t->state_dir)))
		syslog(LOG_ERR, "%s/pending.json: cannot remove it: %s", t->state_dir,
		       strerror(-rc));
	t->stats.reverts++;
	syslog(LOG_WARNING, "commit of revision %u was not confirmed: reverted to revision %u",
	       t->pend.committed, to);
	return 0;
}

int txn_init(struct txn *t, const char *state_dir, const char *netns, int nflog_group)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->state_dir, sizeof(t->state_dir), "%s", state_dir);
	t->netns = netns;
	policy_lower_opts_default(&t->lower);
	t->lower.nat_lower = nat_lower;
	t->lower.nflog_group = nflog_group;
	t->lower.queue_num = -1;
	return history_store_init(state_dir);
}

void txn_free(struct txn *t)
{
	txn_policy_free(t->running);
	txn_policy_free(t->candidate);
	txn_policy_free(t->retired);
	t->running = t->candidate = t->retired = NULL;
	ir_diff_free(t->settle.diff);
	t->settle.diff = NULL;
	txn_delta_handles_free(t->handles);
	t->handles = NULL;
	txn_delta_since_free(t->since);
	t->since = NULL;
}

/* Start with a `commit confirmed` pending: the unconfirmed revision runs
 * until the deadline, then the revert happens as if we had never stopped. */
static int start_pending(struct txn *t, bool *applied, char *err, size_t errsz)
{
	struct txn_policy *committed = NULL;
	int64_t left = t->pend.deadline_ms - clock_ms(CLOCK_REALTIME);
	int rc;

	t->pending = true;
	if (left <= 0) {
		rc = revert(t, err, errsz);
		*applied = rc == 0;
		return rc;
	}
	/* a wall clock that jumped back cannot stretch the wait */
	if (left > TXN_CONFIRM_MAX_SECONDS * 1000LL)
		left = TXN_CONFIRM_MAX_SECONDS * 1000LL;
	t->deadline_mono_ms = clock_ms(CLOCK_MONOTONIC) + left;
	rc = txn_compile_rev(t, t->pend.committed, &committed, err, errsz);
	if (rc)
		return rc;
	if (!kernel_runs(t, committed)) {
		rc = apply(t, committed, t->pend.committed, false, err, errsz);
		if (rc) {
			txn_policy_free(committed);
			return rc;
		}
		*applied = true;
	} else {
		remember_table(t);
	}
	set_running(t, committed, t->pend.committed);
	syslog(LOG_NOTICE, "revision %u still waits for confirm (deadline in %.1f s)",
	       t->pend.committed, left / 1000.0);
	return 0;
}

/* A state file that cannot be read is reported with its name and moved
 * aside, so that the start goes on with what is left. */
static void report_bad_state_file(struct txn *t, const char *name, int rc)
{
	char moved[PATH_MAX + 48];

	if (rc != -EINVAL) {
		syslog(LOG_ERR, "%s/%s: %s; ignored", t->state_dir, name, strerror(-rc));
		return;
	}
	if (history_quarantine(t->state_dir, name, moved, sizeof(moved)))
		syslog(LOG_ERR, "%s/%s is corrupt; ignored (it could not be moved aside: %m)",
		       t->state_dir, name);
	else
		syslog(LOG_ERR, "%s/%s is corrupt; ignored and moved to %s", t->state_dir, name,
		       moved);
}

/* Start from STATE/running: the revision last committed (or reloaded, or
 * reverted to). 1: nothing usable there. */
static int start_running(struct txn *t, bool *applied, char *err, size_t errsz)
{
	struct txn_policy *p = NULL;
	unsigned rev = 0;
	int rc = history_running_load(t->state_dir, &rev);

	if (rc) {
		if (rc != -ENOENT)
			report_bad_state_file(t, "running", rc);
		return 1;
	}
	if (!rev)
		return 1;
	rc = txn_compile_rev(t, rev, &p, err, errsz);
	if (rc) {
		syslog(LOG_ERR, "the committed revision cannot be run: %s", err);
		return 1;
	}
	if (!kernel_runs(t, p)) {
		rc = apply(t, p, rev, false, err, errsz);
		if (rc) {
			txn_policy_free(p);
			return rc;
		}
		*applied = true;
	} else {
		remember_table(t);
	}
	set_running(t, p, rev);
	return 0;
}

/* pending.json was there but unreadable: a `commit confirmed` was waiting.
 * If STATE/running names a revision committed with `confirmed`, nobody
 * confirmed it: revert now to the revision that ran before it. 0: pend is
 * set up for that. */
static int pending_from_running(struct txn *t)
{
	struct history_rev m;
	unsigned rev;

	if (history_running_load(t->state_dir, &rev) || !rev ||
	    history_store_get(t->state_dir, rev, &m) || !m.confirm_seconds)
		return -ENOENT;
	t->pend =
	    (struct history_pending){ .committed = rev, .revert_to = m.previous, .deadline_ms = 0 };
	syslog(LOG_WARNING,
	       "revision %u was committed with 'confirmed' and its pending revert is unreadable: "
	       "reverting to revision %u",
	       rev, m.previous);
	return 0;
}

int txn_start(struct txn *t, struct txn_policy *p, const char *why, bool *applied, char *err,
	      size_t errsz)
{
	int rc;

	*applied = false;
	rc = history_pending_load(t->state_dir, &t->pend);
	if (!rc) {
		txn_policy_free(p);
		return start_pending(t, applied, err, errsz);
	}
	if (rc != -ENOENT) {
		report_bad_state_file(t, "pending.json", rc);
		if (!pending_from_running(t)) {
			txn_policy_free(p);
			return start_pending(t, applied, err, errsz);
		}
	}
	rc = start_running(t, applied, err, errsz);
	if (rc <= 0) {
		txn_policy_free(p);
		return rc;
	}
	if (!p) {
		snprintf(
		    err, errsz,
		    "no committed revision to run, and the configured policy does not compile");
		return -EINVAL;
	}
	return make_running(t, p, why, applied, err, errsz);
}

int txn_reload(struct txn *t, struct txn_policy *p, bool *applied, char *err, size_t errsz)
{
	int rc;

	t->stats.reloads++;
	if (t->pending) {
		txn_policy_free(p);
		snprintf(
		    err, errsz,
		    "a confirmed commit is pending: confirm it or let it revert before a reload");
		t->stats.reload_errors++;
		return -EBUSY;
	}
	rc = make_running(t, p, "reload", applied, err, errsz);
	if (rc)
		t->stats.reload_errors++;
	return rc;
}

int txn_set_candidate(struct txn *t, struct txn_policy *p, char *err, size_t errsz)
{
	struct history_rev m = { .time = time(NULL) };
	int rc;

	txn_settle(t); /* the last commit's candidate goes before this one comes */

	snprintf(m.source, sizeof(m.source), "%s", p->source);
	snprintf(m.source_rev, sizeof(m.source_rev), "%s", p->source_rev);
	snprintf(m.root, sizeof(m.root), "%s", p->root);
	snprintf(m.hash, sizeof(m.hash), "%s", p->hash);
	/* on the disk: a candidate outlives a restart of hvgated; a full or
	 * read-only state directory keeps it in memory only, and says so */
	rc = history_candidate_save(t->state_dir, &m, &p->diags);
	if (rc) {
		snprintf(err, errsz,
			 "cannot store the candidate in %s: %s; it is lost if hvgated restarts",
			 t->state_dir, strerror(-rc));
		syslog(LOG_WARNING, "%s", err);
	}
	txn_policy_free(t->candidate);
	t->candidate = p;
	t->candidate_changes.known = false;
	return rc;
}

void txn_restore_candidate(struct txn *t)
{
	char err[TXN_ERR_MAX];
	struct history_bundle *b = NULL;
	struct history_rev m;
	struct txn_policy *p;
	int rc = history_candidate_load(t->state_dir, &m, &b);

	if (rc) {
		if (rc != -ENOENT)
			report_bad_state_file(t, "candidate.json", rc);
		history_bundle_free(b);
		return;
	}
	rc = compile_fs(t, m.root, history_bundle_fs(b), m.source, m.source_rev, &p, err,
			sizeof(err));
	history_bundle_free(b);
	if (rc) {
		syslog(LOG_WARNING,
		       "the stored candidate (%s) does not compile any more: %s; dropped", m.source,
		       err);
		history_candidate_clear(t->state_dir);
		return;
	}
	txn_policy_free(t->candidate);
	t->candidate = p;
	t->candidate_changes.known = false;
	syslog(LOG_INFO, "candidate %s restored from %s", m.source, t->state_dir);
}

int txn_commit(struct txn *t, uid_t who, const char *comment, unsigned confirm_seconds, bool force,
	       char *err, size_t errsz)
{
	unsigned rev, prev = t->running_rev;
	struct history_pending pend;
	int rc;

	if (!t->candidate) {
		snprintf(err, errsz, "no candidate: 'load' a policy or 'rollback N' first");
		return -ENOENT;
	}
	if (t->pending) {
		snprintf(err, errsz,
			 "revision %u waits for 'confirm'; confirm it (or let it revert) first",
			 t->pend.committed);
		return -EBUSY;
	}
	if (confirm_seconds > TXN_CONFIRM_MAX_SECONDS) {
		snprintf(err, errsz, "confirm within at most %u seconds", TXN_CONFIRM_MAX_SECONDS);
		return -ERANGE;
	}
	/* Everything on the disk first: a commit that cannot be stored
	 * changes nothing in the kernel. */
	double mark = now_seconds();
	rc = history_reserve_id(t->state_dir, &rev);
	if (rc) {
		storage_err(t, "cannot reserve a revision id", rc, err, errsz);
		return rc;
	}
	rc = save_rev(t, t->candidate, rev, who, comment, confirm_seconds);
	if (rc) {
		storage_err(t, "cannot store the revision", rc, err, errsz);
		return rc;
	}
	if (confirm_seconds) {
		pend = (struct history_pending){ .committed = rev, .revert_to = prev };
		pend.deadline_ms = clock_ms(CLOCK_REALTIME) + confirm_seconds * 1000LL;
		rc = history_pending_save(t->state_dir, &pend);
		if (rc) {
			storage_err(t, "cannot store the pending revert", rc, err, errsz);
			goto undo_rev;
		}
	}
	rc = history_running_save(t->state_dir, rev);
	if (rc) {
		storage_err(t, "cannot store the running revision", rc, err, errsz);
		goto undo_pending;
	}
	t->phases.storage = now_seconds() - mark;
	rc = apply(t, t->candidate, rev, !force, err, errsz);
	if (rc) {
		restore_running_file(t, prev);
		goto undo_pending;
	}
	set_running(t, t->candidate, rev);
	t->candidate = NULL;
	/* The stored candidate goes after the reply (txn_settle()): it is not
	 * part of the commit (a crash before leaves it as the candidate at the
	 * next start, the same ruleset as the one that runs), and removing a
	 * large one is a tenth of a small commit. */
	t->settle.candidate = true;
	t->phases.candidate = 0;
	if (confirm_seconds) {
		t->pend = pend;
		t->pending = true;
		t->deadline_mono_ms = clock_ms(CLOCK_MONOTONIC) + confirm_seconds * 1000LL;
	}
	return 0;
undo_pending:
	if (confirm_seconds)
		history_pending_clear(t->state_dir);
undo_rev:
	history_remove(t->state_dir, rev);
	return rc;
}

int txn_confirm(struct txn *t, char *err, size_t errsz)
{
	int rc;

	if (!t->pending) {
		snprintf(err, errsz, "nothing waits for confirm");
		return -ENOENT;
	}
	rc = history_pending_clear(t->state_dir);
	if (rc) {
		/* the file would revert the confirmed revision at the next start */
		snprintf(err, errsz,
			 "%s/pending.json: cannot remove it: %s; still waiting for confirm",
			 t->state_dir, strerror(-rc));
		return rc;
	}
	t->pending = false;
	syslog(LOG_INFO, "revision %u confirmed", t->pend.committed);
	return 0;
}

int txn_rollback(struct txn *t, unsigned rev, char *err, size_t errsz)
{
	struct txn_policy *p;
	int rc = txn_compile_rev(t, rev, &p, err, errsz);

	if (rc)
		return rc;
	txn_set_candidate(t, p, t->candidate_warning, sizeof(t->candidate_warning));
	return 0;
}

void txn_settle(struct txn *t)
{
	if (t->settle.candidate) {
		t->settle.candidate = false;
		int rc = history_candidate_clear(t->state_dir);
		if (rc)
			syslog(
			    LOG_WARNING,
			    "%s/candidate.json: cannot remove it: %s; it comes back as the candidate "
			    "at the next start",
			    t->state_dir, strerror(-rc));
	}
	if (!t->settle.diff)
		return;
	double mark = now_seconds();
	bool pinned = !nftio_pin(t->netns);
	txn_delta_since_update(&t->since, t->settle.ir, t->settle.diff, t->settle.at);
	txn_delta_handles_after(t->netns, t->settle.ir, &t->handles, t->settle.diff);
	if (pinned)
		nftio_unpin();
	ir_diff_free(t->settle.diff);
	t->settle.diff = NULL;
	t->settle.ir = NULL;
	t->settle.seconds = now_seconds() - mark;
}

int txn_tick(struct txn *t, char *err, size_t errsz)
{
	txn_settle(t); /* before `retired`, which its delta came from, goes */
	txn_policy_free(t->retired);
	t->retired = NULL;
	if (t->digest_pending) {
		uint32_t now, read_at;
		t->digest_pending = false;
		/* valid only if nobody changed anything since our batch */
		if (!nftio_genid(t->netns, &now) && now == t->genid)
			t->digest_known = !nftio_table_digest(t->netns, &read_at, t->digest) &&
					  read_at == t->genid;
	}
	if (!t->pending || txn_pending_left_ms(t) > 0)
		return 0;
	if (!revert(t, err, errsz))
		return 1;
	/* Keep trying, but not in a tight loop: the kernel or the state
	 * directory may recover. */
	t->deadline_mono_ms = clock_ms(CLOCK_MONOTONIC) + TXN_REVERT_RETRY_SECONDS * 1000LL;
	return -EIO;
}

/* Our own element change moves the generation too; keep the guard in step
 * unless someone else had already moved it. */
static void after_own_change(struct txn *t, uint32_t before, bool before_ok)
{
	if (before_ok && t->genid_known && before == t->genid)
		remember_table(t);
}

static const char *block_set(const struct nftio_set_elem *e)
{
	if (e->by_ifname)
		return e->family == AF_INET ? POLICY_SET_BLOCKED_ZONE4 : POLICY_SET_BLOCKED_ZONE6;
	return e->family == AF_INET ? POLICY_SET_BLOCKED4 : POLICY_SET_BLOCKED6;
}

int txn_block(struct txn *t, const struct nftio_set_elem *e)
{
	uint32_t before = 0;
	bool ok = !nftio_genid(t->netns, &before);
	int rc = nftio_set_elem_add(t->netns, block_set(e), e);
	if (!rc)
		after_own_change(t, before, ok);
	return rc;
}

int txn_unblock(struct txn *t, const struct nftio_set_elem *e)
{
	uint32_t before = 0;
	bool ok = !nftio_genid(t->netns, &before);
	int rc = nftio_set_elem_del(t->netns, block_set(e), e);

	if (!rc)
		after_own_change(t, before, ok);
	return rc;
}

int txn_block_zone(struct txn *t, size_t zone, const struct nftio_set_elem *e)
{
	struct nftio_set_elem *v;
	size_t n;
	int rc;

	if (!t->running || zone >= t->running->policy->n_zones)
		return -ENOENT;
	rc = zone_elems(t->running->policy, zone, e, &v, &n);
	if (!rc && !n)
		rc = -ENXIO; /* no interface: nothing could be blocked */
	for (size_t i = 0; !rc && i < n; i++) {
		rc = txn_block(t, &v[i]);
		while (rc && i-- > 0) /* all or nothing */
			txn_unblock(t, &v[i]);
	}
	free(v);
	return rc;
}

int txn_unblock_zone(struct txn *t, size_t zone, const struct nftio_set_elem *e)
{
	struct nftio_set_elem *v;
	size_t n;
	int rc, first = 0;

	if (!t->running || zone >= t->running->policy->n_zones)
		return -ENOENT;
	rc = zone_elems(t->running->policy, zone, e, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = txn_unblock(t, &v[i]);
		if (rc && !first)
			first = rc;
	}
	free(v);
	return first;
}
