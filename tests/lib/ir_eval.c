/* The IR evaluator of the differential tests (tests/lib/ir_eval.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <string.h>

#include "tests/lib/ir_eval.h"

/* NFT_JUMP_STACK_SIZE (net/netfilter/nf_tables_core.c) */
#define EVAL_MAX_DEPTH 16

enum eval_outcome { EVAL_CONTINUE, EVAL_ACCEPT, EVAL_DROP };

struct eval {
	const struct ir_table *t;
	struct ir_packet p; /* a copy: `meta mark set` changes it */
	struct ir_eval_result *out;
};

static void trace(struct eval *e, const char *kind, const char *what)
{
	struct ir_eval_result *o = e->out;
	int n = snprintf(o->trace + o->trace_len, sizeof(o->trace) - o->trace_len, "%s %s\n", kind,
			 what);
	if (n < 0 || (size_t)n >= sizeof(o->trace) - o->trace_len) {
		o->overflow = true;
		return;
	}
	o->trace_len += (size_t)n;
}

static bool host_order(enum ir_field f)
{
	enum ir_field_type ty = ir_field_desc(f)->type;
	return ty == IR_T_U16_HOST || ty == IR_T_U32_HOST || ty == IR_T_MARK || ty == IR_T_CT_STATE;
}

/* The register's content for field f. */
static struct ir_value load(const struct ir_packet *p, enum ir_field f)
{
	struct ir_value v = { .len = ir_field_desc(f)->len };
	switch (f) {
	case IR_META_NFPROTO: v.data[0] = p->nfproto; break;
	case IR_META_L4PROTO: v.data[0] = p->l4proto; break;
	case IR_META_IIFNAME: memcpy(v.data, p->iif, 16); break;
	case IR_META_OIFNAME: memcpy(v.data, p->oif, 16); break;
	case IR_META_MARK: memcpy(v.data, &p->mark, 4); break;
	case IR_IP_SADDR: memcpy(v.data, p->saddr, 4); break;
	case IR_IP_DADDR: memcpy(v.data, p->daddr, 4); break;
	case IR_IP6_SADDR: memcpy(v.data, p->saddr, 16); break;
	case IR_IP6_DADDR: memcpy(v.data, p->daddr, 16); break;
	case IR_TH_SPORT: v = ir_value_u16_net(p->sport); break;
	case IR_TH_DPORT: v = ir_value_u16_net(p->dport); break;
	case IR_ICMP_TYPE:
	case IR_ICMPV6_TYPE: v.data[0] = p->icmp_type; break;
	case IR_CT_STATE: memcpy(v.data, &p->ct_state, 4); break;
	case IR_CT_ZONE:
	case IR_CT_ORIGINAL_ZONE: memcpy(v.data, &p->ct_zone, 2); break;
	case IR_CT_MARK: memcpy(v.data, &p->ct_mark, 4); break;
	default: break; /* ct label, direction: zero (original, no labels) */
	}
	return v;
}

/* Big-endian form of a register value, so that memcmp orders it. */
static struct ir_value ordered(enum ir_field f, struct ir_value v)
{
	if (!host_order(f))
		return v;
	struct ir_value r = v;
	for (size_t i = 0; i < v.len; i++)
		r.data[i] = v.data[v.len - 1 - i];
	return r;
}

static int vcmp(const struct ir_value *a, const struct ir_value *b)
{
	return memcmp(a->data, b->data, a->len < b->len ? a->len : b->len);
}

static bool match_prefix(const struct ir_value *v, const struct ir_value *net, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));
		if ((v->data[i / 8] & m) != (net->data[i / 8] & m))
			return false;
	}
	return true;
}

/* Whether key part k of element e holds v (a loaded register value). */
static bool elem_part_has(const struct ir_set *s, const struct ir_set_elem *e, size_t k,
			  const struct ir_value *v)
{
	enum ir_field f = s->key[k];
	const struct ir_value *lo = &e->key[k];
	const struct ir_value *hi = e->key_end[k].len ? &e->key_end[k] : lo;
	if (!(s->flags & IR_SET_INTERVAL))
		return !memcmp(lo->data, v->data, lo->len);
	/* interval sets keep host-order integers big-endian (policy/emit_nftnl.c) */
	struct ir_value x = ordered(f, *v);
	struct ir_value l = *lo, h = *hi;
	if (!(s->n_key > 1) && host_order(f)) {
		l = ordered(f, l);
		h = ordered(f, h);
	}
	return vcmp(&l, &x) <= 0 && vcmp(&x, &h) <= 0;
}

/* The element of set s that holds the packet's fields, or NULL. */
static const struct ir_set_elem *lookup(const struct eval *e, size_t set,
					const enum ir_field *fields, size_t n)
{
	const struct ir_set *s = &e->t->sets[set];
	struct ir_value v[IR_CONCAT_MAX];
	for (size_t k = 0; k < n && k < IR_CONCAT_MAX; k++)
		v[k] = load(&e->p, fields[k]);
	for (size_t i = 0; i < s->n_elems; i++) {
		bool all = true;
		for (size_t k = 0; all && k < n; k++)
			all = elem_part_has(s, &s->elems[i], k, &v[k]);
		if (all)
			return &s->elems[i];
	}
	return NULL;
}

static bool match(const struct eval *e, const struct ir_match *m)
{
	struct ir_value v = load(&e->p, m->field[0]);
	bool hit = false;
	switch (m->kind) {
	case IR_M_CMP:
		if (m->wildcard)
			hit = !strncmp((const char *)v.data, (const char *)m->value.data,
				       strnlen((const char *)m->value.data, 16));
		else
			hit = !memcmp(v.data, m->value.data, v.len);
		break;
	case IR_M_PREFIX: hit = match_prefix(&v, &m->value, m->prefix_len); break;
	case IR_M_RANGE: {
		struct ir_value x = ordered(m->field[0], v), lo = ordered(m->field[0], m->value),
				hi = ordered(m->field[0], m->value_end);
		hit = vcmp(&lo, &x) <= 0 && vcmp(&x, &hi) <= 0;
		break;
	}
	case IR_M_LOOKUP: hit = lookup(e, m->set, m->field, m->n_field) != NULL; break;
	case IR_M_BITS: {
		bool any = false;
		for (size_t i = 0; i < v.len; i++)
			any = any || (v.data[i] & m->value.data[i]);
		return m->op == IR_OP_EQ ? any : !any;
	}
	}
	return m->op == IR_OP_EQ ? hit : !hit;
}

static enum eval_outcome eval_chain(struct eval *e, const char *name, int depth);

/* Follows a verdict; *done says evaluation of the current chain ends with
 * the returned outcome. */
static enum eval_outcome follow(struct eval *e, const struct ir_verdict *v, int depth, bool *done)
{
	*done = true;
	switch (v->kind) {
	case IR_V_NONE: *done = false; return EVAL_CONTINUE;
	case IR_V_ACCEPT: return EVAL_ACCEPT;
	case IR_V_DROP: return EVAL_DROP;
	case IR_V_RETURN: return EVAL_CONTINUE;
	case IR_V_GOTO: return eval_chain(e, v->chain, depth + 1);
	case IR_V_JUMP: {
		/* a chain that ends returns to the rule after the jumping one */
		enum eval_outcome o = eval_chain(e, v->chain, depth + 1);
		*done = o != EVAL_CONTINUE;
		return o;
	}
	}
	return EVAL_DROP;
}

/* Runs the statements and verdict of a rule whose matches hold; *done as
 * for follow(). */
static enum eval_outcome run_rule(struct eval *e, const struct ir_rule *r, int depth, bool *done)
{
	char what[256];
	for (size_t i = 0; i < r->n_stmts; i++) {
		const struct ir_stmt *st = &r->stmts[i];
		switch (st->kind) {
		case IR_S_COUNTER: trace(e, "counter", r->comment); break;
		case IR_S_LOG:
			snprintf(what, sizeof(what), "%s group %d", st->log_prefix, st->log_group);
			trace(e, "log", what);
			break;
		case IR_S_LIMIT:
			if (!e->p.limit_pass) {
				*done = false;
				return EVAL_CONTINUE; /* over the limit: the rule does not match */
			}
			break;
		case IR_S_REJECT:
			snprintf(what, sizeof(what), "%d", (int)st->reject);
			trace(e, "reject", what);
			*done = true;
			return EVAL_DROP;
		case IR_S_VMAP: {
			const struct ir_set_elem *hit = lookup(e, st->set, st->field, st->n_field);
			if (!hit)
				break;
			/* a jump that returns ends this rule too: the next rule follows */
			return follow(e, &hit->verdict, depth, done);
		}
		case IR_S_SET_VALUE:
			if (st->target == IR_META_MARK) {
				uint32_t v;
				memcpy(&v, st->value.data, 4);
				e->p.mark = (e->p.mark & st->keep_mask) | v;
			} else if (st->target == IR_CT_MARK)
				memcpy(&e->p.ct_mark, st->value.data, 4);
			trace(e, "set", ir_field_desc(st->target)->nft);
			break;
		default:
			snprintf(what, sizeof(what), "%d", (int)st->kind);
			trace(e, "stmt", what);
			break;
		}
	}
	return follow(e, &r->verdict, depth, done);
}

static enum eval_outcome eval_chain(struct eval *e, const char *name, int depth)
{
	const struct ir_chain *c = NULL;
	for (size_t i = 0; i < e->t->n_chains && !c; i++)
		if (!strcmp(e->t->chains[i].name, name))
			c = &e->t->chains[i];
	if (!c || depth > EVAL_MAX_DEPTH) {
		e->out->overflow = true;
		return EVAL_DROP;
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct ir_rule *r = &c->rules[i];
		bool all = true;
		for (size_t m = 0; all && m < r->n_matches; m++)
			all = match(e, &r->matches[m]);
		if (!all)
			continue;
		bool done = false;
		enum eval_outcome o = run_rule(e, r, depth, &done);
		if (done)
			return o;
	}
	if (c->hook != IR_HOOK_NONE)
		return c->policy == IR_V_DROP ? EVAL_DROP : EVAL_ACCEPT;
	return EVAL_CONTINUE;
}

void ir_eval(const struct ir_table *t, const char *chain, const struct ir_packet *p,
	     struct ir_eval_result *out)
{
	memset(out, 0, sizeof(*out));
	struct eval e = { .t = t, .p = *p, .out = out };
	enum eval_outcome o = eval_chain(&e, chain, 0);
	out->verdict = o == EVAL_ACCEPT     ? IR_V_ACCEPT
		       : o == EVAL_CONTINUE ? IR_V_ACCEPT
					    : IR_V_DROP;
	trace(&e, "verdict", o == EVAL_DROP ? "drop" : "accept");
}
