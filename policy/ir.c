/* The IR's constructors, field table and summary. */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/grow.h"
#include "policy/ir.h"

/* Payload offsets: RFC 791 section 3.1 (saddr at 12, daddr at 16), RFC 8200
 * section 3 (saddr at 8, daddr at 24), and the port / ICMP type fields at the
 * start of the transport header (RFC 793, RFC 768, RFC 792, RFC 4443). */
static const struct ir_field_desc field_descs[IR_FIELD_COUNT] = {
	[IR_META_NFPROTO] = { "meta nfproto", "nf_proto", IR_T_NFPROTO, 1, IR_LOAD_META,
			      NFT_META_NFPROTO, 0, 0, false },
	[IR_META_L4PROTO] = { "meta l4proto", "inet_proto", IR_T_L4PROTO, 1, IR_LOAD_META,
			      NFT_META_L4PROTO, 0, 0, false },
	[IR_META_IIFNAME] = { "iifname", "ifname", IR_T_IFNAME, IFNAMSIZ, IR_LOAD_META,
			      NFT_META_IIFNAME, 0, 0, false },
	[IR_META_OIFNAME] = { "oifname", "ifname", IR_T_IFNAME, IFNAMSIZ, IR_LOAD_META,
			      NFT_META_OIFNAME, 0, 0, false },
	[IR_META_MARK] = { "meta mark", "mark", IR_T_MARK, 4, IR_LOAD_META, NFT_META_MARK, 0, 0,
			   false },
	[IR_IP_SADDR] = { "ip saddr", "ipv4_addr", IR_T_IPV4, 4, IR_LOAD_PAYLOAD, 0,
			  NFT_PAYLOAD_NETWORK_HEADER, 12, false },
	[IR_IP_DADDR] = { "ip daddr", "ipv4_addr", IR_T_IPV4, 4, IR_LOAD_PAYLOAD, 0,
			  NFT_PAYLOAD_NETWORK_HEADER, 16, false },
	[IR_IP6_SADDR] = { "ip6 saddr", "ipv6_addr", IR_T_IPV6, 16, IR_LOAD_PAYLOAD, 0,
			   NFT_PAYLOAD_NETWORK_HEADER, 8, false },
	[IR_IP6_DADDR] = { "ip6 daddr", "ipv6_addr", IR_T_IPV6, 16, IR_LOAD_PAYLOAD, 0,
			   NFT_PAYLOAD_NETWORK_HEADER, 24, false },
	[IR_TH_SPORT] = { "th sport", "inet_service", IR_T_PORT, 2, IR_LOAD_PAYLOAD, 0,
			  NFT_PAYLOAD_TRANSPORT_HEADER, 0, false },
	[IR_TH_DPORT] = { "th dport", "inet_service", IR_T_PORT, 2, IR_LOAD_PAYLOAD, 0,
			  NFT_PAYLOAD_TRANSPORT_HEADER, 2, false },
	[IR_ICMP_TYPE] = { "icmp type", "icmp_type", IR_T_ICMP_TYPE, 1, IR_LOAD_PAYLOAD, 0,
			   NFT_PAYLOAD_TRANSPORT_HEADER, 0, false },
	[IR_ICMPV6_TYPE] = { "icmpv6 type", "icmpv6_type", IR_T_ICMPV6_TYPE, 1, IR_LOAD_PAYLOAD, 0,
			     NFT_PAYLOAD_TRANSPORT_HEADER, 0, false },
	[IR_CT_STATE] = { "ct state", "ct_state", IR_T_CT_STATE, 4, IR_LOAD_CT, NFT_CT_STATE, 0, 0,
			  false },
	[IR_CT_ZONE] = { "ct zone", NULL, IR_T_U16_HOST, 2, IR_LOAD_CT, NFT_CT_ZONE, 0, 0, false },
	[IR_CT_MARK] = { "ct mark", "mark", IR_T_MARK, 4, IR_LOAD_CT, NFT_CT_MARK, 0, 0, false },
	[IR_CT_ORIGINAL_ZONE] = { "ct original zone", NULL, IR_T_U16_HOST, 2, IR_LOAD_CT,
				  NFT_CT_ZONE, 0, 0, true },
	/* NF_CT_LABELS_MAX_SIZE: 128 bits (include/net/netfilter/nf_conntrack_labels.h) */
	[IR_CT_LABEL] = { "ct label", NULL, IR_T_CT_LABEL, 16, IR_LOAD_CT, NFT_CT_LABELS, 0, 0,
			  false },
	[IR_CT_DIRECTION] = { "ct direction", NULL, IR_T_CT_DIR, 1, IR_LOAD_CT, NFT_CT_DIRECTION, 0,
			      0, false },
	[IR_FLOW_HASH] = { "symhash mod 64", NULL, IR_T_U32_HOST, 4, IR_LOAD_HASH, IR_FLOW_HASH_MOD,
			   0, 0, false },
	/* the flags byte: RFC 9293 section 3.1 (CWR ECE URG ACK PSH RST SYN FIN) */
	[IR_TCP_FLAGS] = { "tcp flags", NULL, IR_T_U8, 1, IR_LOAD_PAYLOAD, 0,
			   NFT_PAYLOAD_TRANSPORT_HEADER, 13, false },
};

const struct ir_field_desc *ir_field_desc(enum ir_field f)
{
	if ((unsigned)f >= IR_FIELD_COUNT)
		return NULL;
	return &field_descs[f];
}

struct ir_table *ir_table_new(const char *name)
{
	struct ir_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->family = NFPROTO_INET;
	snprintf(t->name, sizeof(t->name), "%s", name ? name : IR_TABLE_NAME);
	return t;
}

static void rule_free(struct ir_rule *r)
{
	free(r->matches);
	free(r->stmts);
}

void ir_table_free(struct ir_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_chains; i++) {
		for (size_t j = 0; j < t->chains[i].n_rules; j++)
			rule_free(&t->chains[i].rules[j]);
		free(t->chains[i].rules);
	}
	free(t->chains);
	for (size_t i = 0; i < t->n_sets; i++)
		free(t->sets[i].elems);
	free(t->sets);
	free(t);
}

struct ir_chain *ir_chain_add(struct ir_table *t, const char *name)
{
	if (policy_grow((void **)&t->chains, &t->cap_chains, t->n_chains, sizeof(*t->chains), 1))
		return NULL;
	struct ir_chain *c = &t->chains[t->n_chains++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->policy = IR_V_ACCEPT;
	return c;
}

struct ir_chain *ir_chain_find(struct ir_table *t, const char *name)
{
	for (size_t i = 0; i < t->n_chains; i++)
		if (!strcmp(t->chains[i].name, name))
			return &t->chains[i];
	return NULL;
}

struct ir_rule *ir_rule_add(struct ir_chain *c)
{
	if (policy_grow((void **)&c->rules, &c->cap_rules, c->n_rules, sizeof(*c->rules), 1))
		return NULL;
	struct ir_rule *r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* Matches and statements are few per rule: grow one at a time. A zeroed
 * element `elem` bytes long at the end of *v (*n of them), or NULL. */
static void *add_zeroed(void **v, size_t *n, size_t elem)
{
	if (policy_grow_one(v, *n, elem))
		return NULL;
	void *e = (char *)*v + (*n)++ * elem;
	memset(e, 0, elem);
	return e;
}

struct ir_match *ir_match_add(struct ir_rule *r)
{
	struct ir_match *m = add_zeroed((void **)&r->matches, &r->n_matches, sizeof(*m));
	if (m)
		m->n_field = 1;
	return m;
}

struct ir_stmt *ir_stmt_add(struct ir_rule *r)
{
	struct ir_stmt *s = add_zeroed((void **)&r->stmts, &r->n_stmts, sizeof(*s));
	if (s)
		s->log_group = -1;
	return s;
}

size_t ir_set_add(struct ir_table *t, const char *name)
{
	if (policy_grow((void **)&t->sets, &t->cap_sets, t->n_sets, sizeof(*t->sets), 1))
		return (size_t)-1;
	struct ir_set *s = &t->sets[t->n_sets];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	return t->n_sets++;
}

int ir_set_reserve(struct ir_set *s, size_t n)
{
	if (s->n_elems + n <= s->cap_elems)
		return 0;
	struct ir_set_elem *v = realloc(s->elems, (s->n_elems + n) * sizeof(*v));
	if (!v)
		return -1;
	s->elems = v;
	s->cap_elems = s->n_elems + n;
	return 0;
}

struct ir_set_elem *ir_set_elem_add(struct ir_set *s)
{
	if (policy_grow((void **)&s->elems, &s->cap_elems, s->n_elems, sizeof(*s->elems), 1))
		return NULL;
	struct ir_set_elem *e = &s->elems[s->n_elems++];
	memset(e, 0, sizeof(*e));
	return e;
}

struct ir_value ir_value_u8(uint8_t v)
{
	struct ir_value x = { .len = 1 };
	x.data[0] = v;
	return x;
}

struct ir_value ir_value_u16_net(uint16_t host_order)
{
	struct ir_value x = { .len = 2 };
	uint16_t n = htons(host_order);
	memcpy(x.data, &n, 2);
	return x;
}

struct ir_value ir_value_u32(uint32_t host_order)
{
	struct ir_value x = { .len = 4 };
	memcpy(x.data, &host_order, 4);
	return x;
}

struct ir_value ir_value_ct_label(unsigned bit)
{
	struct ir_value x = { .len = 16 };
	if (bit < 128)
		x.data[bit / 8] = (uint8_t)(1u << (bit % 8));
	return x;
}

int ir_value_ct_label_bit(const struct ir_value *v)
{
	int bit = -1;
	for (unsigned i = 0; i < v->len && i < IR_VALUE_MAX; i++)
		for (unsigned b = 0; b < 8; b++) {
			if (!(v->data[i] >> b & 1))
				continue;
			if (bit >= 0)
				return -1;
			bit = (int)(i * 8 + b);
		}
	return v->len == 16 ? bit : -1;
}

struct ir_value ir_value_ifname(const char *name)
{
	struct ir_value x = { .len = IFNAMSIZ };
	size_t n = strnlen(name, IFNAMSIZ - 1);
	if (n && name[n - 1] == '*')
		n--;
	memcpy(x.data, name, n);
	return x;
}

struct ir_value ir_value_addr(const uint8_t *bytes, int family)
{
	struct ir_value x = { .len = family == AF_INET6 ? 16 : 4 };
	memcpy(x.data, bytes, x.len);
	return x;
}

void ir_rule_clear(struct ir_rule *r)
{
	rule_free(r);
	memset(r, 0, sizeof(*r));
}

const struct ir_value *ir_elem_end(const struct ir_set_elem *e)
{
	return e->key_end[0].len ? &e->key_end[0] : &e->key[0];
}

void ir_ifname_wildcard(const char *pattern, struct ir_value *lo, struct ir_value *hi)
{
	*lo = ir_value_ifname(pattern);
	*hi = *lo;
	size_t n = strnlen(pattern, IFNAMSIZ - 1);
	if (n && pattern[n - 1] == '*')
		n--;
	memset(hi->data + n, 0xff, IFNAMSIZ - n);
}

/* Compares the concatenated keys of two elements byte by byte: every field is
 * stored big-endian (network order) or as a string, so byte order is value
 * order. */
static int elem_cmp(const void *a, const void *b)
{
	const struct ir_set_elem *x = a, *y = b;
	for (size_t i = 0; i < IR_CONCAT_MAX; i++) {
		if (x->key[i].len != y->key[i].len)
			return x->key[i].len < y->key[i].len ? -1 : 1;
		int c = memcmp(x->key[i].data, y->key[i].data, x->key[i].len);
		if (c)
			return c;
	}
	const struct ir_value *ex = ir_elem_end(x), *ey = ir_elem_end(y);
	return memcmp(ex->data, ey->data, ex->len);
}

/* v + 1 in big-endian; false if it wrapped (v was all ones). */
static bool value_succ(struct ir_value *v)
{
	for (size_t i = v->len; i-- > 0;)
		if (++v->data[i])
			return true;
	return false;
}

int ir_set_normalize(struct ir_set *s)
{
	if (!s->n_elems)
		return 0;
	qsort(s->elems, s->n_elems, sizeof(*s->elems), elem_cmp);
	if (s->data != IR_DATA_NONE)
		return 0; /* maps: sorted only; their keys must not overlap */
	bool intervals = (s->flags & IR_SET_INTERVAL) && s->n_key == 1;
	bool merge_adjacent = intervals && ir_field_desc(s->key[0])->type != IR_T_IFNAME;
	size_t out = 0;
	for (size_t i = 0; i < s->n_elems; i++) {
		struct ir_set_elem *e = &s->elems[i];
		if (out == 0) {
			s->elems[out++] = *e;
			continue;
		}
		struct ir_set_elem *last = &s->elems[out - 1];
		if (!intervals) {
			if (elem_cmp(last, e))
				s->elems[out++] = *e;
			continue;
		}
		struct ir_value last_end = *ir_elem_end(last);
		struct ir_value next = last_end;
		bool has_next = value_succ(&next);
		/* e starts inside last, or right after it (adjacent). */
		bool overlaps = memcmp(e->key[0].data, last_end.data, last_end.len) <= 0;
		bool adjacent =
		    merge_adjacent && has_next && !memcmp(e->key[0].data, next.data, next.len);
		if (!overlaps && !adjacent) {
			s->elems[out++] = *e;
			continue;
		}
		const struct ir_value *e_end = ir_elem_end(e);
		if (memcmp(e_end->data, last_end.data, last_end.len) > 0)
			last_end = *e_end;
		last->key_end[0] = last_end;
	}
	s->n_elems = out;
	return 0;
}

int ir_table_drop_unused_sets(struct ir_table *t)
{
	size_t *map = calloc(t->n_sets ? t->n_sets : 1, sizeof(*map));
	if (!map)
		return -1;
	for (size_t i = 0; i < t->n_sets; i++)
		map[i] = (t->sets[i].flags & IR_SET_DYNAMIC) ? 1 : 0;
	for (size_t c = 0; c < t->n_chains; c++)
		for (size_t r = 0; r < t->chains[c].n_rules; r++) {
			const struct ir_rule *rule = &t->chains[c].rules[r];
			for (size_t m = 0; m < rule->n_matches; m++)
				if (rule->matches[m].kind == IR_M_LOOKUP)
					map[rule->matches[m].set] = 1;
			for (size_t s = 0; s < rule->n_stmts; s++)
				if (rule->stmts[s].kind == IR_S_VMAP ||
				    rule->stmts[s].kind == IR_S_SET_FROM_MAP)
					map[rule->stmts[s].set] = 1;
		}
	/* map[i] becomes the new index of kept set i */
	size_t out = 0;
	for (size_t i = 0; i < t->n_sets; i++) {
		if (!map[i]) {
			free(t->sets[i].elems);
			continue;
		}
		map[i] = out;
		t->sets[out++] = t->sets[i];
	}
	t->n_sets = out;
	ir_table_remap_sets(t, map);
	free(map);
	return 0;
}

void ir_table_remap_sets(struct ir_table *t, const size_t *map)
{
	for (size_t c = 0; c < t->n_chains; c++)
		for (size_t r = 0; r < t->chains[c].n_rules; r++) {
			struct ir_rule *rule = &t->chains[c].rules[r];
			for (size_t m = 0; m < rule->n_matches; m++)
				if (rule->matches[m].kind == IR_M_LOOKUP)
					rule->matches[m].set = map[rule->matches[m].set];
			for (size_t s = 0; s < rule->n_stmts; s++)
				if (rule->stmts[s].kind == IR_S_VMAP ||
				    rule->stmts[s].kind == IR_S_SET_FROM_MAP)
					rule->stmts[s].set = map[rule->stmts[s].set];
		}
}

static bool verdict_ok(const struct ir_table *t, const struct ir_verdict *v)
{
	if (v->kind != IR_V_JUMP && v->kind != IR_V_GOTO)
		return true;
	for (size_t i = 0; i < t->n_chains; i++)
		if (!strcmp(t->chains[i].name, v->chain))
			return true;
	return false;
}

static int set_validate(const struct ir_table *t, const struct ir_set *s, struct policy_diags *d)
{
	for (size_t i = 0; i < s->n_elems; i++)
		if (s->data == IR_DATA_VERDICT && !verdict_ok(t, &s->elems[i].verdict)) {
			return policy_error(d, &s->loc, "set %s: element goes to unknown chain %s",
					    s->name, s->elems[i].verdict.chain);
		}
	if (!(s->flags & IR_SET_INTERVAL) || s->n_key != 1 || s->n_elems < 2)
		return 0;
	/* the kernel takes elements in any order, but refuses overlaps */
	struct ir_set_elem *v = malloc(s->n_elems * sizeof(*v));
	if (!v)
		return policy_error(d, NULL, "out of memory");
	memcpy(v, s->elems, s->n_elems * sizeof(*v));
	qsort(v, s->n_elems, sizeof(*v), elem_cmp);
	int rc = 0;
	for (size_t i = 1; !rc && i < s->n_elems; i++) {
		const struct ir_value *prev_end = ir_elem_end(&v[i - 1]);
		if (memcmp(v[i].key[0].data, prev_end->data, prev_end->len) <= 0)
			rc = policy_error(d, &s->loc, "set %s: elements overlap", s->name);
	}
	free(v);
	return rc;
}

int ir_table_validate(const struct ir_table *t, struct policy_diags *d)
{
	size_t *uses = calloc(t->n_sets ? t->n_sets : 1, sizeof(*uses));
	if (!uses)
		return policy_error(d, NULL, "out of memory");
	int rc = 0;
	for (size_t c = 0; !rc && c < t->n_chains; c++)
		for (size_t r = 0; !rc && r < t->chains[c].n_rules; r++) {
			const struct ir_rule *rule = &t->chains[c].rules[r];
			if (!verdict_ok(t, &rule->verdict)) {
				rc = policy_error(d, &rule->loc,
						  "chain %s: rule %zu goes to unknown chain %s",
						  t->chains[c].name, r, rule->verdict.chain);
			}
			for (size_t m = 0; !rc && m < rule->n_matches; m++) {
				const struct ir_match *mt = &rule->matches[m];
				if (mt->field[0] == IR_CT_LABEL &&
				    (mt->kind != IR_M_BITS || mt->op != IR_OP_EQ ||
				     ir_value_ct_label_bit(&mt->value) < 0)) {
					rc = policy_error(
					    d, &rule->loc,
					    "chain %s: rule %zu: a ct label match tests "
					    "one bit being set (`ct label N`)",
					    t->chains[c].name, r);
				}
				if (rule->matches[m].kind != IR_M_LOOKUP)
					continue;
				if (rule->matches[m].set >= t->n_sets) {
					rc = policy_error(
					    d, &rule->loc,
					    "chain %s: rule %zu: set index out of range",
					    t->chains[c].name, r);
				} else {
					uses[rule->matches[m].set]++;
				}
			}
			for (size_t s = 0; !rc && s < rule->n_stmts; s++) {
				const struct ir_stmt *st = &rule->stmts[s];
				if (st->kind == IR_S_SET_VALUE && st->target == IR_CT_LABEL &&
				    ir_value_ct_label_bit(&st->value) < 0) {
					rc = policy_error(
					    d, &rule->loc,
					    "chain %s: rule %zu: `ct label set` sets one bit",
					    t->chains[c].name, r);
				}
				if (st->kind == IR_S_SET_VALUE && st->keep_mask &&
				    (st->target != IR_META_MARK || st->value.len != 4)) {
					rc = policy_error(
					    d, &rule->loc,
					    "chain %s: rule %zu: only `meta mark set meta mark & ...` keeps bits",
					    t->chains[c].name, r);
				}
				if (st->kind != IR_S_VMAP && st->kind != IR_S_SET_FROM_MAP)
					continue;
				if (st->set >= t->n_sets) {
					rc = policy_error(
					    d, &rule->loc,
					    "chain %s: rule %zu: map index out of range",
					    t->chains[c].name, r);
				} else {
					uses[st->set]++;
				}
			}
		}
	for (size_t i = 0; !rc && i < t->n_sets; i++) {
		if ((t->sets[i].flags & IR_SET_ANONYMOUS) && uses[i] != 1)
			rc = policy_error(d, &t->sets[i].loc, "anonymous set %zu used by %zu rules",
					  i, uses[i]);
		if (!rc)
			rc = set_validate(t, &t->sets[i], d);
	}
	free(uses);
	return rc;
}

bool ir_value_step(struct ir_value *v, int dir)
{
	for (size_t i = v->len; i-- > 0;) {
		v->data[i] = (uint8_t)(v->data[i] + dir);
		if (v->data[i] != (dir > 0 ? 0x00 : 0xff))
			return true;
	}
	return false;
}

int ir_value_prefix_len(const struct ir_value *lo, const struct ir_value *hi)
{
	if (lo->len != hi->len)
		return -1;
	size_t bits = (size_t)lo->len * 8, p = 0;
	/* the common leading bits form the prefix ... */
	while (p < bits) {
		uint8_t m = 0x80 >> (p % 8);
		if ((lo->data[p / 8] & m) != (hi->data[p / 8] & m))
			break;
		p++;
	}
	/* ... after which lo must be all zeros and hi all ones */
	for (size_t i = p; i < bits; i++) {
		uint8_t m = 0x80 >> (i % 8);
		if ((lo->data[i / 8] & m) || !(hi->data[i / 8] & m))
			return -1;
	}
	return (int)p;
}

/* Chains and sets listed by name in a summary; the rest are counted. */
#define IR_SUMMARY_MAX_LINES 64

void ir_table_summary(const struct ir_table *t, FILE *out)
{
	size_t rules = 0, elems = 0, base = 0, maps = 0;
	for (size_t i = 0; i < t->n_chains; i++) {
		rules += t->chains[i].n_rules;
		base += t->chains[i].hook != IR_HOOK_NONE;
	}
	for (size_t i = 0; i < t->n_sets; i++) {
		elems += t->sets[i].n_elems;
		maps += t->sets[i].data != IR_DATA_NONE;
	}
	fprintf(out, "table inet %s\n", t->name);
	fprintf(out, "  chains   %zu (%zu base)\n", t->n_chains, base);
	fprintf(out, "  rules    %zu\n", rules);
	fprintf(out, "  sets     %zu (%zu maps), %zu elements\n", t->n_sets, maps, elems);
	/* a summary, not a listing: large policies have thousands of chains */
	size_t shown = 0;
	for (size_t i = 0; i < t->n_chains && shown < IR_SUMMARY_MAX_LINES; i++, shown++)
		fprintf(out, "  chain %-32s %6zu rules\n", t->chains[i].name, t->chains[i].n_rules);
	if (t->n_chains > shown)
		fprintf(out, "  ... %zu more chains\n", t->n_chains - shown);
	shown = 0;
	size_t named = 0;
	for (size_t i = 0; i < t->n_sets; i++) {
		if (t->sets[i].flags & IR_SET_ANONYMOUS)
			continue;
		named++;
		if (shown++ < IR_SUMMARY_MAX_LINES)
			fprintf(out, "  %s %-34s %6zu elements\n",
				t->sets[i].data == IR_DATA_NONE ? "set" : "map", t->sets[i].name,
				t->sets[i].n_elems);
	}
	if (named > IR_SUMMARY_MAX_LINES)
		fprintf(out, "  ... %zu more sets\n", named - IR_SUMMARY_MAX_LINES);
}
