/* The IR's constructors, field table and summary. */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/ir.h"

/* Payload offsets: RFC 791 section 3.1 (saddr at 12, daddr at 16), RFC 8200
 * section 3 (saddr at 8, daddr at 24), and the port / ICMP type fields at the
 * start of the transport header (RFC 793, RFC 768, RFC 792, RFC 4443). */
static const struct ir_field_desc field_descs[IR_FIELD_COUNT] = {
	[IR_META_NFPROTO] = { "meta nfproto", "nf_proto", IR_T_NFPROTO, 1, IR_LOAD_META, NFT_META_NFPROTO, 0, 0 },
	[IR_META_L4PROTO] = { "meta l4proto", "inet_proto", IR_T_L4PROTO, 1, IR_LOAD_META, NFT_META_L4PROTO, 0, 0 },
	[IR_META_IIFNAME] = { "iifname", "ifname", IR_T_IFNAME, IFNAMSIZ, IR_LOAD_META, NFT_META_IIFNAME, 0, 0 },
	[IR_META_OIFNAME] = { "oifname", "ifname", IR_T_IFNAME, IFNAMSIZ, IR_LOAD_META, NFT_META_OIFNAME, 0, 0 },
	[IR_META_MARK] = { "meta mark", "mark", IR_T_MARK, 4, IR_LOAD_META, NFT_META_MARK, 0, 0 },
	[IR_IP_SADDR] = { "ip saddr", "ipv4_addr", IR_T_IPV4, 4, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_NETWORK_HEADER, 12 },
	[IR_IP_DADDR] = { "ip daddr", "ipv4_addr", IR_T_IPV4, 4, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_NETWORK_HEADER, 16 },
	[IR_IP6_SADDR] = { "ip6 saddr", "ipv6_addr", IR_T_IPV6, 16, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_NETWORK_HEADER, 8 },
	[IR_IP6_DADDR] = { "ip6 daddr", "ipv6_addr", IR_T_IPV6, 16, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_NETWORK_HEADER, 24 },
	[IR_TH_SPORT] = { "th sport", "inet_service", IR_T_PORT, 2, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_TRANSPORT_HEADER, 0 },
	[IR_TH_DPORT] = { "th dport", "inet_service", IR_T_PORT, 2, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_TRANSPORT_HEADER, 2 },
	[IR_ICMP_TYPE] = { "icmp type", "icmp_type", IR_T_ICMP_TYPE, 1, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_TRANSPORT_HEADER, 0 },
	[IR_ICMPV6_TYPE] = { "icmpv6 type", "icmpv6_type", IR_T_ICMPV6_TYPE, 1, IR_LOAD_PAYLOAD, 0, NFT_PAYLOAD_TRANSPORT_HEADER, 0 },
	[IR_CT_STATE] = { "ct state", "ct_state", IR_T_CT_STATE, 4, IR_LOAD_CT, NFT_CT_STATE, 0, 0 },
	[IR_CT_ZONE] = { "ct zone", NULL, IR_T_U16_HOST, 2, IR_LOAD_CT, NFT_CT_ZONE, 0, 0 },
	[IR_CT_MARK] = { "ct mark", "mark", IR_T_MARK, 4, IR_LOAD_CT, NFT_CT_MARK, 0, 0 },
};

const struct ir_field_desc *ir_field_desc(enum ir_field f)
{
	if ((unsigned)f >= IR_FIELD_COUNT)
		return NULL;
	return &field_descs[f];
}

/* Grows *v (of *cap elements of `size` bytes) to hold n + 1; zeroes the new tail. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return -1;
	memset((char *)nv + *cap * size, 0, (ncap - *cap) * size);
	*v = nv;
	*cap = ncap;
	return 0;
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
	if (grow((void **)&t->chains, &t->cap_chains, t->n_chains, sizeof(*t->chains)))
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
	if (grow((void **)&c->rules, &c->cap_rules, c->n_rules, sizeof(*c->rules)))
		return NULL;
	struct ir_rule *r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* Matches and statements are few per rule: grow one at a time. */
struct ir_match *ir_match_add(struct ir_rule *r)
{
	struct ir_match *v = realloc(r->matches, (r->n_matches + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->matches = v;
	struct ir_match *m = &v[r->n_matches++];
	memset(m, 0, sizeof(*m));
	m->n_field = 1;
	return m;
}

struct ir_stmt *ir_stmt_add(struct ir_rule *r)
{
	struct ir_stmt *v = realloc(r->stmts, (r->n_stmts + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->stmts = v;
	struct ir_stmt *s = &v[r->n_stmts++];
	memset(s, 0, sizeof(*s));
	s->log_group = -1;
	return s;
}

size_t ir_set_add(struct ir_table *t, const char *name)
{
	if (grow((void **)&t->sets, &t->cap_sets, t->n_sets, sizeof(*t->sets)))
		return (size_t)-1;
	struct ir_set *s = &t->sets[t->n_sets];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	return t->n_sets++;
}

struct ir_set_elem *ir_set_elem_add(struct ir_set *s)
{
	if (grow((void **)&s->elems, &s->cap_elems, s->n_elems, sizeof(*s->elems)))
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
	for (size_t i = 0; i < t->n_chains; i++)
		fprintf(out, "  chain %-32s %6zu rules\n", t->chains[i].name, t->chains[i].n_rules);
	for (size_t i = 0; i < t->n_sets; i++)
		if (!(t->sets[i].flags & IR_SET_ANONYMOUS))
			fprintf(out, "  %s %-34s %6zu elements\n",
				t->sets[i].data == IR_DATA_NONE ? "set" : "map", t->sets[i].name,
				t->sets[i].n_elems);
}
