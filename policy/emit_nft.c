/* The nft text backend: IR -> an nft script (policy_emit_nft).
 *
 * Mechanical: every IR construct has one spelling that nft 1.0.6 parses into
 * exactly the expressions the netlink backend builds from the same IR (the
 * IR carries every dependency, so nft adds none of its own). The output is a
 * pure function of the IR: same IR, byte-identical text. Layout: the table
 * is created (so that it can be deleted whether or not it existed), deleted
 * and declared again, all in one `nft -f` transaction; inside, sets and maps
 * come before chains, one rule a line, every rule with its comment.
 */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"

/* nft strings cannot hold a '"' (its scanner has no escapes) nor control
 * characters; comments and log prefixes come from policy text, so replace
 * them rather than fail. */
static void put_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++)
		fputc((*s == '"' || (unsigned char)*s < 0x20 || *s == 0x7f) ? '\'' : *s, out);
	fputc('"', out);
}

/* nft's name of a protocol: the language's, but for ICMPv6 (nft has it
 * from /etc/protocols). */
static const char *l4proto_name(uint8_t p)
{
	return p == IPPROTO_ICMPV6 ? "ipv6-icmp" : policy_l4proto_name(p);
}

/* Names nft knows for ICMP (RFC 792) and ICMPv6 (RFC 4443, RFC 4861) types;
 * others are printed as numbers, which nft accepts too. */
static const char *icmp_name(uint8_t t)
{
	switch (t) {
	case 0: return "echo-reply";
	case 3: return "destination-unreachable";
	case 5: return "redirect";
	case 8: return "echo-request";
	case 11: return "time-exceeded";
	case 12: return "parameter-problem";
	default: return NULL;
	}
}

static const char *icmpv6_name(uint8_t t)
{
	switch (t) {
	case 1: return "destination-unreachable";
	case 2: return "packet-too-big";
	case 3: return "time-exceeded";
	case 4: return "parameter-problem";
	case 128: return "echo-request";
	case 129: return "echo-reply";
	case 133: return "nd-router-solicit";
	case 134: return "nd-router-advert";
	case 135: return "nd-neighbor-solicit";
	case 136: return "nd-neighbor-advert";
	case 137: return "nd-redirect";
	default: return NULL;
	}
}

static uint32_t value_u32(const struct ir_value *v)
{
	uint32_t x = 0;
	memcpy(&x, v->data, v->len < 4 ? v->len : 4);
	return x;
}

static void put_ct_state(FILE *out, uint32_t bits)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = { { NF_CT_STATE_INVALID_BIT, "invalid" },
		      { NF_CT_STATE_BIT(IP_CT_ESTABLISHED), "established" },
		      { NF_CT_STATE_BIT(IP_CT_RELATED), "related" },
		      { NF_CT_STATE_BIT(IP_CT_NEW), "new" },
		      { NF_CT_STATE_UNTRACKED_BIT, "untracked" } };
	const char *sep = "";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bits & names[i].bit) {
			fprintf(out, "%s%s", sep, names[i].name);
			sep = ",";
			bits &= ~names[i].bit;
		}
	if (bits)
		fprintf(out, "%s0x%08x", sep, bits);
}

/* An interface name; `wild` appends the '*' of a prefix match. */
static void put_ifname(FILE *out, const struct ir_value *v, bool wild)
{
	char name[IFNAMSIZ + 2];
	size_t n = strnlen((const char *)v->data, IFNAMSIZ);
	memcpy(name, v->data, n);
	if (wild)
		name[n++] = '*';
	name[n] = '\0';
	put_string(out, name);
}

static void put_value(FILE *out, enum ir_field f, const struct ir_value *v)
{
	const struct ir_field_desc *fd = ir_field_desc(f);
	char buf[INET6_ADDRSTRLEN];
	const char *name;
	switch (fd->type) {
	case IR_T_IPV4:
	case IR_T_IPV6:
		inet_ntop(fd->type == IR_T_IPV4 ? AF_INET : AF_INET6, v->data, buf, sizeof(buf));
		fputs(buf, out);
		return;
	case IR_T_IFNAME: put_ifname(out, v, false); return;
	case IR_T_PORT:
	case IR_T_U16_NET: fprintf(out, "%u", (unsigned)(v->data[0] << 8 | v->data[1])); return;
	case IR_T_NFPROTO:
		if (v->data[0] == NFPROTO_IPV4 || v->data[0] == NFPROTO_IPV6)
			fputs(v->data[0] == NFPROTO_IPV4 ? "ipv4" : "ipv6", out);
		else
			fprintf(out, "%u", v->data[0]);
		return;
	case IR_T_L4PROTO:
		name = l4proto_name(v->data[0]);
		name ? (void)fputs(name, out) : (void)fprintf(out, "%u", v->data[0]);
		return;
	case IR_T_ICMP_TYPE:
	case IR_T_ICMPV6_TYPE:
		name = fd->type == IR_T_ICMP_TYPE ? icmp_name(v->data[0]) : icmpv6_name(v->data[0]);
		name ? (void)fputs(name, out) : (void)fprintf(out, "%u", v->data[0]);
		return;
	case IR_T_CT_STATE: put_ct_state(out, value_u32(v)); return;
	case IR_T_U16_HOST: fprintf(out, "%u", (unsigned)(value_u32(v) & 0xffff)); return;
	case IR_T_U8: fprintf(out, "%u", v->data[0]); return;
	case IR_T_U32_HOST:
	case IR_T_MARK: fprintf(out, "0x%08x", value_u32(v)); return;
	case IR_T_CT_LABEL: /* one bit: its number (ir_table_validate) */
		fprintf(out, "%d", ir_value_ct_label_bit(v));
		return;
	case IR_T_CT_DIR:
		fputs(v->data[0] == IP_CT_DIR_ORIGINAL ? "original" : "reply", out);
		return;
	}
}

/* An interval [lo, hi]: "a/len" for a prefix, "name*" for an interface
 * wildcard, else "a-b". */
static void put_interval(FILE *out, enum ir_field f, const struct ir_value *lo,
			 const struct ir_value *hi)
{
	const struct ir_field_desc *fd = ir_field_desc(f);
	if (fd->type == IR_T_IFNAME) {
		put_ifname(out, lo, true);
		return;
	}
	int plen = ir_value_prefix_len(lo, hi);
	put_value(out, f, lo);
	if ((fd->type == IR_T_IPV4 || fd->type == IR_T_IPV6) && plen >= 0) {
		fprintf(out, "/%d", plen);
		return;
	}
	fputc('-', out);
	put_value(out, f, hi);
}

static void put_fields(FILE *out, const enum ir_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? " . " : "", ir_field_desc(f[i])->nft);
}

static void put_verdict(FILE *out, const struct ir_verdict *v)
{
	switch (v->kind) {
	case IR_V_NONE: return;
	case IR_V_ACCEPT: fputs("accept", out); return;
	case IR_V_DROP: fputs("drop", out); return;
	case IR_V_RETURN: fputs("return", out); return;
	case IR_V_JUMP: fprintf(out, "jump %s", v->chain); return;
	case IR_V_GOTO: fprintf(out, "goto %s", v->chain); return;
	}
}

static void put_elem(FILE *out, const struct ir_set *s, const struct ir_set_elem *e)
{
	for (size_t k = 0; k < s->n_key; k++) {
		if (k)
			fputs(" . ", out);
		if (e->key_end[k].len && memcmp(e->key_end[k].data, e->key[k].data, e->key[k].len))
			put_interval(out, s->key[k], &e->key[k], &e->key_end[k]);
		else
			put_value(out, s->key[k], &e->key[k]);
	}
	if (e->timeout_ms)
		fprintf(out, " timeout %llums", (unsigned long long)e->timeout_ms);
	if (s->data == IR_DATA_VERDICT) {
		fputs(" : ", out);
		put_verdict(out, &e->verdict);
	} else if (s->data == IR_DATA_VALUE) {
		fputs(" : ", out);
		put_value(out, s->data_field, &e->data);
	}
}

/* { a, b, c } on one line (anonymous sets, inline in their rule). */
static void put_inline_elems(FILE *out, const struct ir_set *s)
{
	fputs("{ ", out);
	for (size_t i = 0; i < s->n_elems; i++) {
		if (i)
			fputs(", ", out);
		put_elem(out, s, &s->elems[i]);
	}
	fputs(" }", out);
}

static void put_set_ref(FILE *out, const struct ir_table *t, size_t set)
{
	const struct ir_set *s = &t->sets[set];
	if (s->flags & IR_SET_ANONYMOUS)
		put_inline_elems(out, s);
	else
		fprintf(out, "@%s", s->name);
}

static void put_match(FILE *out, const struct ir_table *t, const struct ir_match *m)
{
	const char *neq = m->op == IR_OP_NEQ ? "!= " : "";
	switch (m->kind) {
	case IR_M_CMP:
		fprintf(out, "%s %s", ir_field_desc(m->field[0])->nft, neq);
		if (m->wildcard)
			put_ifname(out, &m->value, true);
		else
			put_value(out, m->field[0], &m->value);
		return;
	case IR_M_PREFIX:
		fprintf(out, "%s %s", ir_field_desc(m->field[0])->nft, neq);
		put_value(out, m->field[0], &m->value);
		fprintf(out, "/%u", m->prefix_len);
		return;
	case IR_M_RANGE:
		fprintf(out, "%s %s", ir_field_desc(m->field[0])->nft, neq);
		put_value(out, m->field[0], &m->value);
		fputc('-', out);
		put_value(out, m->field[0], &m->value_end);
		return;
	case IR_M_LOOKUP:
		put_fields(out, m->field, m->n_field);
		fprintf(out, " %s", neq);
		put_set_ref(out, t, m->set);
		return;
	case IR_M_BITS:
		if (m->field[0] == IR_CT_STATE && m->op == IR_OP_EQ) {
			fputs("ct state ", out);
			put_ct_state(out, value_u32(&m->value));
			return;
		}
		if (m->field[0] == IR_CT_LABEL) { /* `ct label N`: bit N is set */
			fputs("ct label ", out);
			put_value(out, m->field[0], &m->value);
			return;
		}
		fprintf(out, "%s and ", ir_field_desc(m->field[0])->nft);
		put_value(out, m->field[0], &m->value);
		fputs(m->op == IR_OP_EQ ? " != 0" : " == 0", out);
		return;
	}
}

static const char *rate_unit(enum ir_rate_unit u)
{
	return u == IR_PER_SECOND ? "second" : u == IR_PER_MINUTE ? "minute" : "hour";
}

static void put_nat(FILE *out, const struct ir_nat *n)
{
	if (n->kind == IR_NAT_MASQUERADE) {
		fputs("masquerade", out);
	} else {
		/* 1:1 prefix mapping is "prefix to" in nft 1.0.6 (NF_NAT_RANGE_NETMAP) */
		fprintf(out, "%s %s %sto ", n->kind == IR_NAT_SNAT ? "snat" : "dnat",
			n->family == NFPROTO_IPV6 ? "ip6" : "ip", n->netmap ? "prefix " : "");
		enum ir_field af = n->family == NFPROTO_IPV6 ? IR_IP6_SADDR : IR_IP_SADDR;
		bool v6 = n->family == NFPROTO_IPV6;
		if (v6 && n->port_lo)
			fputc('[', out);
		if (n->netmap)
			put_interval(out, af, &n->addr_lo, &n->addr_hi);
		else if (n->addr_hi.len && memcmp(n->addr_hi.data, n->addr_lo.data, n->addr_lo.len))
			put_interval(out, af, &n->addr_lo, &n->addr_hi);
		else
			put_value(out, af, &n->addr_lo);
		if (v6 && n->port_lo)
			fputc(']', out);
	}
	if (n->port_lo) {
		fprintf(out, n->kind == IR_NAT_MASQUERADE ? " to :%u" : ":%u", n->port_lo);
		if (n->port_hi && n->port_hi != n->port_lo)
			fprintf(out, "-%u", n->port_hi);
	}
	if (n->random_fully)
		fputs(" fully-random", out);
}

static void put_stmt(FILE *out, const struct ir_table *t, const struct ir_stmt *s)
{
	switch (s->kind) {
	case IR_S_COUNTER: fputs("counter", out); return;
	case IR_S_LOG:
		fputs("log prefix ", out);
		put_string(out, s->log_prefix);
		if (s->log_group >= 0)
			fprintf(out, " group %d", s->log_group);
		return;
	case IR_S_LIMIT:
		fprintf(out, "limit rate %llu/%s burst %u packets", (unsigned long long)s->rate,
			rate_unit(s->unit), s->burst);
		return;
	case IR_S_VMAP:
		put_fields(out, s->field, s->n_field);
		fputs(" vmap ", out);
		put_set_ref(out, t, s->set);
		return;
	case IR_S_SET_FROM_MAP:
		fprintf(out, "%s set ", ir_field_desc(s->target)->nft);
		put_fields(out, s->field, s->n_field);
		fputs(" map ", out);
		put_set_ref(out, t, s->set);
		return;
	case IR_S_SET_VALUE:
		fprintf(out, "%s set ", ir_field_desc(s->target)->nft);
		if (s->keep_mask) {
			/* the bits kept, then those set (meta mark only) */
			uint32_t v = 0;
			memcpy(&v, s->value.data, s->value.len == 4 ? 4 : 0);
			fprintf(out, "%s and 0x%08x", ir_field_desc(s->target)->nft, s->keep_mask);
			if (v)
				fprintf(out, " or 0x%08x", v);
			return;
		}
		put_value(out, s->target, &s->value);
		return;
	case IR_S_REJECT:
		fputs(s->reject == IR_REJECT_TCP_RESET ? "reject with tcp reset"
		      : s->reject == IR_REJECT_ICMPX_PORT_UNREACH
			  ? "reject with icmpx port-unreachable"
			  : "reject with icmpx admin-prohibited",
		      out);
		return;
	case IR_S_NAT: put_nat(out, &s->nat); return;
	case IR_S_NOTRACK: fputs("notrack", out); return;
	case IR_S_QUEUE:
		fprintf(out, "queue num %u", s->queue_num);
		if (s->queue_count > 1)
			fprintf(out, "-%u", (unsigned)(s->queue_num + s->queue_count - 1));
		if (s->queue_bypass)
			fputs(" bypass", out);
		return;
	}
}

static void put_rule(FILE *out, const struct ir_table *t, const struct ir_rule *r)
{
	const char *sep = "";
	fputs("\t\t", out);
	for (size_t i = 0; i < r->n_matches; i++, sep = " ") {
		fputs(sep, out);
		put_match(out, t, &r->matches[i]);
	}
	for (size_t i = 0; i < r->n_stmts; i++, sep = " ") {
		fputs(sep, out);
		put_stmt(out, t, &r->stmts[i]);
	}
	if (r->verdict.kind != IR_V_NONE) {
		fputs(sep, out);
		put_verdict(out, &r->verdict);
		sep = " ";
	}
	if (r->comment[0]) {
		fprintf(out, "%scomment ", sep);
		put_string(out, r->comment);
	}
	fputc('\n', out);
}

static const char *hook_name(enum ir_hook h)
{
	switch (h) {
	case IR_HOOK_PREROUTING: return "prerouting";
	case IR_HOOK_INPUT: return "input";
	case IR_HOOK_FORWARD: return "forward";
	case IR_HOOK_OUTPUT: return "output";
	case IR_HOOK_POSTROUTING: return "postrouting";
	case IR_HOOK_NONE: break;
	}
	return "?";
}

static const char *chain_type(enum ir_chain_type t)
{
	return t == IR_CHAIN_NAT ? "nat" : t == IR_CHAIN_ROUTE ? "route" : "filter";
}

static void put_chain(FILE *out, const struct ir_table *t, const struct ir_chain *c)
{
	fprintf(out, "\tchain %s {\n", c->name);
	if (c->comment[0]) {
		fputs("\t\tcomment ", out);
		put_string(out, c->comment);
		fputc('\n', out);
	}
	if (c->hook != IR_HOOK_NONE)
		fprintf(out, "\t\ttype %s hook %s priority %d; policy %s;\n", chain_type(c->type),
			hook_name(c->hook), c->priority,
			c->policy == IR_V_DROP ? "drop" : "accept");
	for (size_t i = 0; i < c->n_rules; i++)
		put_rule(out, t, &c->rules[i]);
	fputs("\t}\n", out);
}

static void put_set_type(FILE *out, const struct ir_set *s)
{
	bool typed = true;
	for (size_t k = 0; k < s->n_key; k++)
		typed = typed && ir_field_desc(s->key[k])->set_type;
	if (s->data == IR_DATA_VALUE)
		typed = typed && ir_field_desc(s->data_field)->set_type;
	/* `typeof` for keys without a type name of their own (ct zone) */
	fputs(typed ? "\t\ttype " : "\t\ttypeof ", out);
	for (size_t k = 0; k < s->n_key; k++) {
		const struct ir_field_desc *fd = ir_field_desc(s->key[k]);
		fprintf(out, "%s%s", k ? " . " : "", typed ? fd->set_type : fd->nft);
	}
	if (s->data == IR_DATA_VERDICT)
		fputs(" : verdict", out);
	else if (s->data == IR_DATA_VALUE)
		fprintf(out, " : %s",
			typed ? ir_field_desc(s->data_field)->set_type
			      : ir_field_desc(s->data_field)->nft);
	fputc('\n', out);
}

static void put_set(FILE *out, const struct ir_set *s)
{
	fprintf(out, "\t%s %s {\n", s->data == IR_DATA_NONE ? "set" : "map", s->name);
	put_set_type(out, s);
	if (s->size)
		fprintf(out, "\t\tsize %u\n", s->size);
	const char *flags[3];
	size_t n = 0;
	if (s->flags & IR_SET_CONSTANT)
		flags[n++] = "constant";
	if (s->flags & IR_SET_INTERVAL)
		flags[n++] = "interval";
	if (s->flags & IR_SET_TIMEOUT)
		flags[n++] = "timeout";
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "\t\tflags ", flags[i]);
	if (n)
		fputc('\n', out);
	if (s->timeout_ms)
		fprintf(out, "\t\ttimeout %llums\n", (unsigned long long)s->timeout_ms);
	if (s->comment[0]) {
		fputs("\t\tcomment ", out);
		put_string(out, s->comment);
		fputc('\n', out);
	}
	if (s->n_elems) {
		/* one element a line: diffs of large sets stay readable */
		fputs("\t\telements = {\n", out);
		for (size_t i = 0; i < s->n_elems; i++) {
			fputs("\t\t\t", out);
			put_elem(out, s, &s->elems[i]);
			fputs(i + 1 < s->n_elems ? ",\n" : "\n", out);
		}
		fputs("\t\t}\n", out);
	}
	fputs("\t}\n", out);
}

int policy_emit_nft(const struct ir_table *t, FILE *out)
{
	const char *fam = "inet";
	fprintf(out, "table %s %s\ndelete table %s %s\ntable %s %s {\n", fam, t->name, fam, t->name,
		fam, t->name);
	if (t->comment[0]) {
		fputs("\tcomment ", out);
		put_string(out, t->comment);
		fputc('\n', out);
	}
	for (size_t i = 0; i < t->n_sets; i++)
		if (!(t->sets[i].flags & IR_SET_ANONYMOUS))
			put_set(out, &t->sets[i]);
	for (size_t i = 0; i < t->n_chains; i++)
		put_chain(out, t, &t->chains[i]);
	fputs("}\n", out);
	return ferror(out) ? -1 : 0;
}
