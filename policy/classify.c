/* The classification stage (policy/classify.h).
 *
 * Each rule of a run is seen as a union of boxes over four dimensions:
 * source address, destination address, l4proto and destination port, per
 * family (a rule without an address match has a box in both). Matches on
 * these fields that the boxes express exactly are "keys"; any other match
 * (interface, source port, icmp type, ct mark, a negation) is "residual":
 * the rule's boxes then over-approximate it and the rule itself, with its
 * residual matches, is evaluated in the box's chain.
 *
 * The rules are added in order to a list of disjoint pieces. A piece
 * carries a label: the rules that cover it, in order, up to the first that
 * decides every packet in it (no residual match, a terminal verdict, no
 * limit); such a piece is closed and later rules do not reach it. A new
 * rule's box splits every open piece it overlaps (the overlap gets the rule
 * appended to its label) and fills what no piece covers yet with new pieces
 * labelled with the rule alone. Every packet of a piece then meets, in
 * policy order, exactly the rules of its label among the rules of the run.
 *
 * Ports exist for tcp, udp, dccp, sctp and udplite only; packets of other
 * protocols are looked up in maps without the port (the l4proto dimension
 * of the two kinds of map is split accordingly), so that `th dport` is
 * never read where a rule without a port would not read it.
 */
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>

#include "policy/classify.h"
#include "policy/grow.h"
#include "policy/hash.h"
#include "policy/ir_diff.h"
#include "policy/ir_names.h"
#include "policy/lower.h"
#include "policy/model.h"

/* Pieces of a run's maps: at most CLASSIFY_ELEMS_PER_RULE per rule plus a
 * constant, or CLASSIFY_ELEMS_PER_BOX per box the rules bring (a host list
 * of 80 addresses is 80 boxes: the bound is on replication, not on lists),
 * and never more than CLASSIFY_MAX_ELEMS; beyond that the run is cut in
 * halves (at most CLASSIFY_MAX_SPLITS times) and a piece that still does
 * not fit stays linear. */
#define CLASSIFY_ELEMS_PER_RULE 16
#define CLASSIFY_ELEMS_PER_BOX  4
#define CLASSIFY_ELEMS_BASE     1024
#define CLASSIFY_MAX_ELEMS      (1u << 21)
#define CLASSIFY_MAX_SPLITS     4
/* An address list of at least CLASSIFY_LIST_SHARE elements is not cut
 * into boxes (one per address, copied into every zone pair and every port
 * the rule names): the rule keeps its lookup of the list as a residual
 * match, so the list stays one named set, shared by every rule and chain
 * that uses it. Where a label holds CLASSIFY_LIST_SEGMENT or more such
 * rules in a row (on the same field, each deciding what its list holds),
 * they become one interval map from the address to the first of them that
 * lists it, named by its content and so shared by every label, pair and
 * port with the same rules there. The elements of those maps made for one
 * run are at most CLASSIFY_LIST_COPIES per listed address its rules bring
 * plus CLASSIFY_ELEMS_BASE; past that a segment stays rules (one lookup of
 * the shared list each), counted in the summary. */
#define CLASSIFY_LIST_SEGMENT 2
#define CLASSIFY_LIST_COPIES  4
/* Box comparisons spent on one run: bounds compile time the same way. */
#define CLASSIFY_WORK_PER_RULE 20000
/* Boxes one rule may bring (the product of its key sets' sizes). */
#define CLASSIFY_MAX_BOXES_PER_RULE 4096
/* Elements of a run's lookups (leaf and cut maps, a piece counted once per
 * cell it is copied into): at most policy_classify_repl_per_box per box its
 * rules bring plus policy_classify_repl_base, estimated before anything is
 * made. A box is what the linear form carries too (a rule, or one element
 * of its host list); the generated benchmark policies need at most 2.6 per
 * box (docs/ruleset.md), wildcards cut into many cells up to 64. */
unsigned policy_classify_repl_per_box = 8;
unsigned policy_classify_repl_base = 1024;

enum { DIM_SADDR, DIM_DADDR, DIM_PROTO, DIM_DPORT, DIMS };

/* Protocols with ports at offset 0 and 2 of their header: RFC 793, RFC 768,
 * RFC 4340 (DCCP), RFC 4960 (SCTP), RFC 3828 (UDP-Lite). */
static const uint8_t port_protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP, IPPROTO_SCTP,
				       IPPROTO_UDPLITE };

struct ivl {
	struct ir_value lo, hi;
};

struct ivl_list {
	struct ivl *v;
	size_t n, cap;
	bool set; /* constrained by a key match */
};

/* What the stage knows of one rule. */
struct rule_info {
	bool fam[2];                  /* may match ipv4 / ipv6 */
	struct ivl_list dim[DIMS][2]; /* per family for the addresses; [0] else */
	bool *key_match;              /* per match: expressed by the boxes */
	bool residual;
	bool decides; /* decides every packet of its boxes */
	size_t boxes; /* how many (both families, before clipping) */
	/* a lookup of a shared address list (CLASSIFY_LIST_SHARE): its match
	 * (-1: none), field and size; `listed`: it is the rule's only residual
	 * match and the rule decides every packet its list holds */
	int list_match;
	enum ir_field list_field;
	size_t list_elems;
	bool listed;
};

struct piece {
	struct ir_value lo[DIMS], hi[DIMS];
	uint32_t label;
};

struct label {
	uint32_t parent; /* 0: none */
	uint32_t rule;   /* position in the run */
	bool closed;
	size_t chain; /* target chain index, (size_t)-1 until made */
};

/* Pieces by destination port and destination address: a rule's box is
 * compared only with the pieces it can meet, which keeps building about
 * linear in practice (most rules name a few ports or hosts). The port axis
 * has PORT_LEVELS levels of cells (16, 256, 4,096 and 65,536 ports); a
 * piece's level is the finest at which it spans fewer than PORT_LEVEL_SPAN
 * cells. A piece is filed under the cells it spans at its own level and at
 * every coarser one ("all"), and at its own level also as "own". A box of
 * level L then meets exactly the pieces filed "all" in its cells at L (the
 * pieces of level L or finer) and "own" in its cells at the coarser levels:
 * a few lookups whatever the widths, where cells of one size cost a wide
 * port range one lookup per cell (4,096 for a range with a /48). In each
 * cell a piece is filed under its destination's /24 (IPv4) or /48 (IPv6)
 * when it lies in one, else under ANY, and always under ALL. Pieces only
 * shrink in place, so a filing stays a superset of where a piece is; keys
 * are hashed, and two keys that collide only give more candidates, each
 * compared in full. */
#define PORT_LEVELS     4
#define PORT_LEVEL_SPAN 4
static const unsigned port_level_shift[PORT_LEVELS] = { 4, 8, 12, 16 };
enum { KEY_ADDR, KEY_ANY, KEY_ALL };

struct id_list {
	uint32_t *v;
	size_t n, cap;
};

struct piece_index {
	uint64_t *keys; /* 0: empty slot (real keys have a class bit or a cell) */
	struct id_list *lists;
	size_t cap, n;
	uint32_t *seen; /* per piece: the query that last visited it */
	size_t cap_seen;
	uint32_t visit;
	struct id_list cand;
};

struct classify {
	struct ir_table *t;
	struct policy_optimize_report *rep;
	struct ir_names chain_names, set_names; /* the names made here */
	/* per run, its place (for its names): the id of the rule that ends
	 * the run before it (none: the chain's first run) and how many rules
	 * of that id come before that one, and which half of a cut run
	 * ('a', 'b', one per cut) */
	char run_id[128];
	size_t run_dup;
	char run_half[CLASSIFY_MAX_SPLITS + 1];
	/* per run */
	struct rule_info *info;
	struct label *labels;
	size_t n_labels, cap_labels;
	uint32_t *ext, *ext_stamp; /* label -> label with the current rule appended */
	uint32_t stamp;
	struct piece *pieces;
	size_t n_pieces, cap_pieces, max_pieces;
	uint64_t work, max_work;
	struct piece_index idx;
	size_t nd; /* dimensions of the kind being built */
	/* the part of the header space the lookups on the way down to the
	 * node being built have proved (node_rules: a cell narrows it) */
	struct ir_value reg_lo[DIMS], reg_hi[DIMS];
	/* a dry run of the lookups (node_rules): counts their elements,
	 * makes nothing, stops past dry_limit */
	bool dry;
	size_t dry_elems, dry_limit;
	/* why the last run was refused: 0 fits, 1 pieces, 2 elements, 3 work */
	int over;
	size_t over_elems, over_bound;
	size_t fallback_chain; /* 1 + the chain last noted in the report */
	/* elements of the list maps made for the current run, and their bound */
	size_t list_elems, list_limit;
};

static int vcmp(const struct ir_value *a, const struct ir_value *b)
{
	return memcmp(a->data, b->data, a->len);
}

static struct ir_value value_fill(size_t len, uint8_t byte)
{
	struct ir_value v = { .len = (uint8_t)len };
	memset(v.data, byte, len);
	return v;
}

static int ivl_push(struct ivl_list *l, const struct ir_value *lo, const struct ir_value *hi)
{
	if (POLICY_GROW(l->v, l->cap, l->n, 8))
		return -1;
	l->v[l->n].lo = *lo;
	l->v[l->n].hi = *hi;
	l->n++;
	return 0;
}

static void info_free(struct rule_info *ri)
{
	for (int d = 0; d < DIMS; d++)
		for (int f = 0; f < 2; f++)
			free(ri->dim[d][f].v);
	free(ri->key_match);
	memset(ri, 0, sizeof(*ri));
}

/* The dimension of field f and the family it implies (-1: any). */
static int field_dim(enum ir_field f, int *fam)
{
	*fam = -1;
	switch (f) {
	case IR_IP_SADDR: *fam = 0; return DIM_SADDR;
	case IR_IP_DADDR: *fam = 0; return DIM_DADDR;
	case IR_IP6_SADDR: *fam = 1; return DIM_SADDR;
	case IR_IP6_DADDR: *fam = 1; return DIM_DADDR;
	case IR_META_L4PROTO: return DIM_PROTO;
	case IR_TH_DPORT: return DIM_DPORT;
	default: return -1;
	}
}

/* The intervals a key match accepts, or -1 if it is not one. */
static int match_intervals(const struct ir_table *t, const struct ir_match *m, struct ivl_list *out)
{
	if (m->op != IR_OP_EQ || m->n_field != 1)
		return 1;
	struct ir_value lo = m->value, hi = m->value;
	switch (m->kind) {
	case IR_M_CMP: return m->wildcard ? 1 : ivl_push(out, &lo, &hi);
	case IR_M_PREFIX:
		policy_prefix_fill(NULL, hi.data, m->prefix_len, (size_t)hi.len * 8);
		return ivl_push(out, &lo, &hi);
	case IR_M_RANGE: return ivl_push(out, &lo, &m->value_end);
	case IR_M_LOOKUP: {
		const struct ir_set *s = &t->sets[m->set];
		if (s->n_key != 1 || s->data != IR_DATA_NONE ||
		    (s->flags & (IR_SET_DYNAMIC | IR_SET_TIMEOUT)) || s->key[0] != m->field[0])
			return 1;
		for (size_t i = 0; i < s->n_elems; i++)
			if (ivl_push(out, &s->elems[i].key[0], ir_elem_end(&s->elems[i])))
				return -1;
		return 0;
	}
	case IR_M_BITS: return 1;
	}
	return 1;
}

static bool stmts_ok(const struct ir_rule *r, bool *limit, bool *reject)
{
	*limit = *reject = false;
	for (size_t i = 0; i < r->n_stmts; i++)
		switch (r->stmts[i].kind) {
		case IR_S_COUNTER:
		case IR_S_LOG: break;
		case IR_S_LIMIT: *limit = true; break;
		case IR_S_REJECT: *reject = true; break;
		default: return false;
		}
	return true;
}

static bool proto_has_ports(const struct ir_value *lo, const struct ir_value *hi)
{
	for (size_t i = 0; i < sizeof(port_protos); i++)
		if (lo->data[0] <= port_protos[i] && port_protos[i] <= hi->data[0])
			return true;
	return false;
}

static bool protos_all_ported(const struct ivl_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		for (unsigned p = l->v[i].lo.data[0]; p <= l->v[i].hi.data[0]; p++) {
			struct ir_value v = ir_value_u8((uint8_t)p);
			if (!proto_has_ports(&v, &v))
				return false;
		}
	return true;
}

/* Whether m looks up a list of addresses large enough to stay a shared
 * set (CLASSIFY_LIST_SHARE). */
static bool shared_list(const struct ir_table *t, const struct ir_match *m, int d)
{
	if ((d != DIM_SADDR && d != DIM_DADDR) || m->kind != IR_M_LOOKUP || m->op != IR_OP_EQ ||
	    m->n_field != 1)
		return false;
	const struct ir_set *s = &t->sets[m->set];
	return s->n_key == 1 && s->data == IR_DATA_NONE &&
	       !(s->flags & (IR_SET_DYNAMIC | IR_SET_TIMEOUT)) && s->key[0] == m->field[0] &&
	       s->n_elems >= CLASSIFY_LIST_SHARE;
}

/* Fills ri for rule r; returns 1 if r can be part of a run, 0 if not, -1
 * on ENOMEM. */
static int rule_analyse(const struct ir_table *t, const struct ir_rule *r, struct rule_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	bool limit, reject;
	if (!r->n_matches || !stmts_ok(r, &limit, &reject))
		return 0;
	if (r->verdict.kind != IR_V_NONE && r->verdict.kind != IR_V_ACCEPT &&
	    r->verdict.kind != IR_V_DROP)
		return 0;
	ri->key_match = calloc(r->n_matches, sizeof(bool));
	if (!ri->key_match)
		return -1;
	ri->fam[0] = ri->fam[1] = true;
	ri->list_match = -1;
	bool other_residual = false;
	for (size_t i = 0; i < r->n_matches; i++) {
		const struct ir_match *m = &r->matches[i];
		if (m->field[0] == IR_META_NFPROTO && m->kind == IR_M_CMP && m->op == IR_OP_EQ) {
			ri->fam[0] = ri->fam[0] && m->value.data[0] == NFPROTO_IPV4;
			ri->fam[1] = ri->fam[1] && m->value.data[0] == NFPROTO_IPV6;
			ri->key_match[i] = true;
			continue;
		}
		int fam, d = field_dim(m->field[0], &fam);
		struct ivl_list *l = d < 0 ? NULL : &ri->dim[d][fam < 0 ? 0 : fam];
		if (shared_list(t, m, d) && ri->list_match == -1 && !l->set) {
			ri->residual = true;
			ri->list_match = (int)i;
			ri->list_field = m->field[0];
			ri->list_elems = t->sets[m->set].n_elems;
			ri->fam[!fam] = false;
			continue;
		}
		if (!l || l->set || m->n_field != 1) {
			ri->residual = other_residual = true;
			continue;
		}
		int rc = match_intervals(t, m, l);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			ri->residual = other_residual = true;
			continue;
		}
		l->set = true;
		ri->key_match[i] = true;
		if (fam >= 0)
			ri->fam[!fam] = false;
	}
	if (!ri->fam[0] && !ri->fam[1])
		return 0; /* matches nothing: not worth a case of its own */
	/* a port match needs a protocol with ports, as lowering always writes */
	if (ri->dim[DIM_DPORT][0].set &&
	    (!ri->dim[DIM_PROTO][0].set || !protos_all_ported(&ri->dim[DIM_PROTO][0])))
		return 0;
	size_t boxes = 1;
	for (int d = 0; d < DIMS; d++)
		for (int f = 0; f < 2; f++)
			if (ri->dim[d][f].set)
				boxes *= ri->dim[d][f].n ? ri->dim[d][f].n : 1;
	if (boxes > CLASSIFY_MAX_BOXES_PER_RULE)
		return 0;
	ri->boxes = boxes;
	ri->decides = !ri->residual && !limit && (reject || r->verdict.kind != IR_V_NONE);
	ri->listed = ri->list_match >= 0 && !other_residual && !limit &&
		     (reject || r->verdict.kind != IR_V_NONE);
	return 1;
}

/* ---- the map kinds ---- */

/* kind = family * 2 + (no ports) */
static size_t kind_dims(int kind)
{
	return kind & 1 ? 3 : 4;
}

static const enum ir_field kind_fields[2][DIMS] = {
	{ IR_IP_SADDR, IR_IP_DADDR, IR_META_L4PROTO, IR_TH_DPORT },
	{ IR_IP6_SADDR, IR_IP6_DADDR, IR_META_L4PROTO, IR_TH_DPORT },
};

/* The l4proto intervals of a kind: the protocols with ports, or the others. */
static size_t proto_universe(int kind, struct ivl *out)
{
	size_t n = 0;
	if (!(kind & 1)) {
		for (size_t i = 0; i < sizeof(port_protos); i++)
			out[n].lo = out[n].hi = ir_value_u8(port_protos[i]), n++;
		/* sorted for the kernel's taste and stable output */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && out[j].lo.data[0] < out[j - 1].lo.data[0];
			     j--) {
				struct ivl x = out[j];
				out[j] = out[j - 1];
				out[j - 1] = x;
			}
		return n;
	}
	unsigned start = 0;
	for (unsigned p = 0; p <= 256; p++) {
		struct ir_value v = ir_value_u8((uint8_t)p);
		if (p < 256 && !proto_has_ports(&v, &v))
			continue;
		if (p > start) {
			out[n].lo = ir_value_u8((uint8_t)start);
			out[n].hi = ir_value_u8((uint8_t)(p - 1));
			n++;
		}
		start = p + 1;
	}
	return n;
}

/* The intervals of rule ri on dimension d for kind; *n 0: none. */
static size_t dim_values(const struct rule_info *ri, int kind, int d, const struct ivl *universe,
			 size_t n_universe, struct ivl *full, const struct ivl **out)
{
	int fam = kind >> 1;
	size_t alen = fam ? 16 : 4;
	switch (d) {
	case DIM_SADDR:
	case DIM_DADDR:
		if (ri->dim[d][fam].set) {
			*out = ri->dim[d][fam].v;
			return ri->dim[d][fam].n;
		}
		full->lo = value_fill(alen, 0);
		full->hi = value_fill(alen, 0xff);
		*out = full;
		return 1;
	case DIM_PROTO:
		*out = ri->dim[d][0].set ? ri->dim[d][0].v : universe;
		return ri->dim[d][0].set ? ri->dim[d][0].n : n_universe;
	default:
		if (ri->dim[d][0].set) {
			*out = ri->dim[d][0].v;
			return ri->dim[d][0].n;
		}
		full->lo = value_fill(2, 0);
		full->hi = value_fill(2, 0xff);
		*out = full;
		return 1;
	}
}

/* ---- pieces ---- */

static bool overlap(const struct piece *a, const struct piece *b, size_t nd)
{
	for (size_t d = 0; d < nd; d++)
		if (vcmp(&a->hi[d], &b->lo[d]) < 0 || vcmp(&b->hi[d], &a->lo[d]) < 0)
			return false;
	return true;
}

static unsigned port_of(const struct ir_value *v)
{
	return (unsigned)v->data[0] << 8 | v->data[1];
}

/* The port level of a box (its first and last port in *lo, *hi); a map
 * without ports is all one coarsest cell. */
static unsigned port_level(const struct classify *c, const struct piece *p, unsigned *lo,
			   unsigned *hi)
{
	if (c->nd <= DIM_DPORT) {
		*lo = 0;
		*hi = 65535;
		return PORT_LEVELS - 1;
	}
	*lo = port_of(&p->lo[DIM_DPORT]);
	*hi = port_of(&p->hi[DIM_DPORT]);
	unsigned l = 0;
	while (l < PORT_LEVELS - 1 &&
	       (*hi >> port_level_shift[l]) - (*lo >> port_level_shift[l]) >= PORT_LEVEL_SPAN)
		l++;
	return l;
}

/* The destination prefix of a box as 48 bits, or false if it spans more. */
static bool addr_cell(const struct piece *p, uint64_t *out)
{
	size_t n = p->lo[DIM_DADDR].len == 4 ? 3 : 6;
	if (memcmp(p->lo[DIM_DADDR].data, p->hi[DIM_DADDR].data, n))
		return false;
	*out = 0;
	for (size_t i = 0; i < n; i++)
		*out = *out << 8 | p->lo[DIM_DADDR].data[i];
	return true;
}

static uint64_t index_key(unsigned level, bool own, unsigned cell, int class, uint64_t addr)
{
	uint64_t k =
	    ((uint64_t)cell << 8 | (uint64_t)level << 3 | (uint64_t)own << 2 | (uint64_t) class) *
	    0xbf58476d1ce4e5b9ull;
	k ^= (addr + 1) * 0x94d049bb133111ebull;
	k ^= k >> 31;
	return k ? k : 1; /* 0 marks an empty slot */
}

static size_t key_slot(const struct piece_index *x, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 20) & (x->cap - 1);
	while (x->keys[i] && x->keys[i] != key)
		i = (i + 1) & (x->cap - 1);
	return i;
}

unsigned long long policy_classify_index_probes;

static const struct id_list *index_get(const struct piece_index *x, uint64_t key)
{
	policy_classify_index_probes++;
	if (!x->cap)
		return NULL;
	size_t i = key_slot(x, key);
	return x->keys[i] ? &x->lists[i] : NULL;
}

static int index_grow(struct piece_index *x)
{
	size_t ncap = x->cap ? x->cap * 2 : 1024;
	uint64_t *keys = calloc(ncap, sizeof(*keys));
	struct id_list *lists = calloc(ncap, sizeof(*lists));
	if (!keys || !lists) {
		free(keys);
		free(lists);
		return -1;
	}
	struct piece_index old = *x;
	x->keys = keys;
	x->lists = lists;
	x->cap = ncap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i]) {
			size_t j = key_slot(x, old.keys[i]);
			x->keys[j] = old.keys[i];
			x->lists[j] = old.lists[i];
		}
	free(old.keys);
	free(old.lists);
	return 0;
}

static int id_push(struct id_list *l, uint32_t id)
{
	if (POLICY_GROW(l->v, l->cap, l->n, 8))
		return -1;
	l->v[l->n++] = id;
	return 0;
}

static int index_file(struct piece_index *x, uint64_t key, uint32_t id)
{
	if ((x->n + 1) * 2 > x->cap && index_grow(x))
		return -1;
	size_t i = key_slot(x, key);
	if (!x->keys[i]) {
		x->keys[i] = key;
		x->n++;
	}
	return id_push(&x->lists[i], id);
}

static int index_add(struct classify *c, uint32_t id)
{
	struct piece_index *x = &c->idx;
	if (id >= x->cap_seen) {
		size_t ncap = x->cap_seen ? x->cap_seen * 2 : 1024;
		uint32_t *v = realloc(x->seen, ncap * sizeof(*v));
		if (!v)
			return -1;
		memset(v + x->cap_seen, 0, (ncap - x->cap_seen) * sizeof(*v));
		x->seen = v;
		x->cap_seen = ncap;
	}
	const struct piece *p = &c->pieces[id];
	unsigned lo, hi, own = port_level(c, p, &lo, &hi);
	uint64_t addr = 0;
	bool narrow = addr_cell(p, &addr);
	int class = narrow ? KEY_ADDR : KEY_ANY;
	for (unsigned l = own; l < PORT_LEVELS; l++)
		for (unsigned k = lo >> port_level_shift[l]; k <= hi >> port_level_shift[l]; k++)
			for (int o = 0; o <= (l == own ? 1 : 0); o++)
				if (index_file(x, index_key(l, o, k, class, narrow ? addr : 0),
					       id) ||
				    index_file(x, index_key(l, o, k, KEY_ALL, 0), id))
					return -1;
	return 0;
}

static void index_clear(struct piece_index *x)
{
	for (size_t i = 0; i < x->cap; i++) {
		free(x->lists[i].v);
		x->lists[i] = (struct id_list){ 0 };
		x->keys[i] = 0;
	}
	x->n = 0;
	if (x->seen)
		memset(x->seen, 0, x->cap_seen * sizeof(*x->seen));
	x->visit = 0;
}

static void index_free(struct piece_index *x)
{
	index_clear(x);
	free(x->keys);
	free(x->lists);
	free(x->seen);
	free(x->cand.v);
}

static int index_take(struct piece_index *x, const struct id_list *l, size_t n)
{
	for (size_t i = 0; l && i < l->n; i++) {
		uint32_t id = l->v[i];
		if (id >= n || x->seen[id] == x->visit)
			continue;
		x->seen[id] = x->visit;
		if (id_push(&x->cand, id))
			return -1;
	}
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The pieces (below n) box b may overlap, in x->cand. */
static int index_query(struct classify *c, const struct piece *b, size_t n)
{
	struct piece_index *x = &c->idx;
	x->cand.n = 0;
	x->visit++;
	unsigned lo, hi, level = port_level(c, b, &lo, &hi);
	uint64_t addr = 0;
	bool narrow = addr_cell(b, &addr);
	int rc = 0;
	for (unsigned l = level; !rc && l < PORT_LEVELS; l++) {
		bool own = l > level; /* finer pieces are filed "all" at `level` */
		for (unsigned k = lo >> port_level_shift[l]; !rc && k <= hi >> port_level_shift[l];
		     k++) {
			if (narrow)
				rc = index_take(x,
						index_get(x, index_key(l, own, k, KEY_ADDR, addr)),
						n) ||
				     index_take(x, index_get(x, index_key(l, own, k, KEY_ANY, 0)),
						n);
			else
				rc = index_take(x, index_get(x, index_key(l, own, k, KEY_ALL, 0)),
						n);
		}
	}
	/* in the order the pieces were made, whatever the filing: the cuts
	 * below follow it */
	if (!rc && x->cand.n > 1)
		qsort(x->cand.v, x->cand.n, sizeof(*x->cand.v), id_cmp);
	return rc ? -1 : 0;
}

static int piece_push(struct classify *c, const struct piece *p)
{
	if (c->n_pieces >= c->max_pieces)
		return 1;
	if (POLICY_GROW(c->pieces, c->cap_pieces, c->n_pieces, 256))
		return -1;
	c->pieces[c->n_pieces++] = *p;
	return index_add(c, (uint32_t)(c->n_pieces - 1));
}

/* Appends to list `out` the parts of f outside box b (f overlaps b); f is
 * left as f inside b. Returns 0, 1 over the bound, -1 on ENOMEM. */
static int cut(struct piece *f, const struct piece *b, size_t nd,
	       int (*push)(void *, const struct piece *), void *ctx)
{
	for (size_t d = 0; d < nd; d++) {
		if (vcmp(&f->lo[d], &b->lo[d]) < 0) {
			struct piece below = *f;
			below.hi[d] = b->lo[d];
			ir_value_step(&below.hi[d], -1);
			int rc = push(ctx, &below);
			if (rc)
				return rc;
			f->lo[d] = b->lo[d];
		}
		if (vcmp(&f->hi[d], &b->hi[d]) > 0) {
			struct piece above = *f;
			above.lo[d] = b->hi[d];
			ir_value_step(&above.lo[d], 1);
			int rc = push(ctx, &above);
			if (rc)
				return rc;
			f->hi[d] = b->hi[d];
		}
	}
	return 0;
}

static int push_piece(void *ctx, const struct piece *p)
{
	return piece_push(ctx, p);
}

/* Fragments of a new rule's box not yet covered. */
struct frags {
	struct piece *v;
	size_t n, cap, max;
};

static int push_frag(void *ctx, const struct piece *p)
{
	struct frags *fr = ctx;
	if (fr->n >= fr->max)
		return 1;
	if (POLICY_GROW(fr->v, fr->cap, fr->n, 16))
		return -1;
	fr->v[fr->n++] = *p;
	return 0;
}

static int label_new(struct classify *c, uint32_t parent, uint32_t rule, bool closed, uint32_t *out)
{
	if (c->n_labels == c->cap_labels) {
		size_t ncap = c->cap_labels ? c->cap_labels * 2 : 256;
		struct label *v = realloc(c->labels, ncap * sizeof(*v));
		uint32_t *e = realloc(c->ext, ncap * sizeof(*e));
		if (e)
			c->ext = e;
		uint32_t *s = realloc(c->ext_stamp, ncap * sizeof(*s));
		if (s)
			c->ext_stamp = s;
		if (v)
			c->labels = v;
		if (!v || !e || !s)
			return -1;
		memset(c->ext_stamp + c->cap_labels, 0, (ncap - c->cap_labels) * sizeof(*s));
		c->cap_labels = ncap;
	}
	c->labels[c->n_labels] =
	    (struct label){ .parent = parent, .rule = rule, .closed = closed, .chain = (size_t)-1 };
	c->ext_stamp[c->n_labels] = 0;
	*out = (uint32_t)c->n_labels++;
	return 0;
}

/* The label of piece label `l` with rule j appended (one per label and rule). */
static int label_extend(struct classify *c, uint32_t l, uint32_t j, bool decides, uint32_t *out)
{
	if (c->ext_stamp[l] == c->stamp) {
		*out = c->ext[l];
		return 0;
	}
	uint32_t nl;
	if (label_new(c, l, j, decides, &nl))
		return -1;
	c->ext[l] = nl;
	c->ext_stamp[l] = c->stamp;
	*out = nl;
	return 0;
}

/* Adds box b of rule j (of the run) to the pieces. */
static int add_box(struct classify *c, const struct piece *b, size_t nd, uint32_t j, bool decides,
		   uint32_t own_label)
{
	struct frags fr = { .max = c->max_pieces };
	int rc = push_frag(&fr, b);
	if (!rc)
		rc = index_query(c, b, c->n_pieces);
	/* a copy: splitting below adds to the index */
	size_t n_cand = c->idx.cand.n;
	uint32_t *cand = malloc((n_cand ? n_cand : 1) * sizeof(*cand));
	if (!cand)
		rc = -1;
	else if (n_cand)
		memcpy(cand, c->idx.cand.v, n_cand * sizeof(*cand));
	for (size_t ci = 0; !rc && ci < n_cand && fr.n; ci++) {
		size_t i = cand[ci];
		if (++c->work > c->max_work) {
			rc = 1;
			break;
		}
		struct piece *p = &c->pieces[i];
		if (!overlap(p, b, nd))
			continue;
		const struct label *lab = &c->labels[p->label];
		if (!lab->closed && lab->rule != j) {
			/* p splits: the part inside b gets j appended */
			uint32_t nl;
			struct piece inside = *p;
			rc = cut(&inside, b, nd, push_piece, c);
			if (rc)
				break;
			rc = label_extend(c, c->pieces[i].label, j, decides, &nl);
			if (rc)
				break;
			inside.label = nl;
			c->pieces[i] = inside;
			p = &c->pieces[i];
		}
		/* what p holds is not new: take it out of the fragments */
		size_t nf = fr.n;
		for (size_t k = 0; !rc && k < nf; k++) {
			if (!overlap(&fr.v[k], p, nd))
				continue;
			struct piece f = fr.v[k];
			rc = cut(&f, p, nd, push_frag, &fr);
			fr.v[k].label = UINT32_MAX; /* consumed */
		}
		size_t out = 0;
		for (size_t k = 0; k < fr.n; k++)
			if (fr.v[k].label != UINT32_MAX)
				fr.v[out++] = fr.v[k];
		fr.n = out;
	}
	for (size_t k = 0; !rc && k < fr.n; k++) {
		fr.v[k].label = own_label;
		rc = piece_push(c, &fr.v[k]);
	}
	free(fr.v);
	free(cand);
	return rc;
}

/* The rule's protocols clipped to the kind's (universe). */
static size_t clip_protos(const struct ivl *v, size_t n, const struct ivl *universe,
			  size_t n_universe, struct ivl *out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t u = 0; u < n_universe && k < max; u++) {
			if (vcmp(&v[i].lo, &universe[u].hi) > 0 ||
			    vcmp(&universe[u].lo, &v[i].hi) > 0)
				continue;
			out[k].lo = vcmp(&v[i].lo, &universe[u].lo) < 0 ? universe[u].lo : v[i].lo;
			out[k].hi = vcmp(&v[i].hi, &universe[u].hi) > 0 ? universe[u].hi : v[i].hi;
			k++;
		}
	return k;
}

/* Every box of rule j for one kind of map. */
static int add_rule(struct classify *c, const struct rule_info *ri, int kind, uint32_t j,
		    uint32_t own_label)
{
	int fam = kind >> 1;
	if (!ri->fam[fam] || ((kind & 1) && ri->dim[DIM_DPORT][0].set))
		return 0;
	size_t nd = kind_dims(kind);
	struct ivl universe[16], full[DIMS], protos[256];
	size_t n_universe = proto_universe(kind, universe);
	const struct ivl *vals[DIMS];
	size_t n_vals[DIMS];
	for (size_t d = 0; d < nd; d++)
		n_vals[d] = dim_values(ri, kind, (int)d, universe, n_universe, &full[d], &vals[d]);
	if (ri->dim[DIM_PROTO][0].set) {
		n_vals[DIM_PROTO] = clip_protos(vals[DIM_PROTO], n_vals[DIM_PROTO], universe,
						n_universe, protos, 256);
		vals[DIM_PROTO] = protos;
	}
	size_t total = 1;
	for (size_t d = 0; d < nd; d++)
		total *= n_vals[d];
	int rc = 0;
	for (size_t i = 0; !rc && i < total; i++) {
		struct piece b = { .label = own_label };
		size_t rest = i;
		for (size_t d = 0; d < nd; d++) {
			const struct ivl *v = &vals[d][rest % n_vals[d]];
			rest /= n_vals[d];
			b.lo[d] = v->lo;
			b.hi[d] = v->hi;
		}
		rc = add_box(c, &b, nd, j, ri->decides, own_label);
	}
	return rc;
}

/* ---- names ----
 *
 * The objects made here are named by what they are, never by when they
 * were made: a name made from a running count would move with every rule
 * added before it, and the incremental commit (policy/ir_diff.c) would see
 * every object after it changed. A target chain (cls_H) is named by a hash
 * of its rules (the same rules, the same chain, shared); the lookup tree of
 * a run (its node chains clsn_H, maps classify_H and classify_cut_H) by a
 * hash of the part of the header space an object decides: the pair chain,
 * the run's first rule, the kind of lookup and the cells on the way. A
 * change to one rule then renames the target chains of its pieces and
 * changes the elements of the maps where its pieces lie, nothing else.
 *
 * A name that is taken by another content (or another region) is a
 * collision: the name gets the hash of the same content with another seed
 * appended, up to CLASSIFY_NAME_TRIES times. Which of two colliding objects
 * keeps the short name follows the order they are made in; 64-bit hashes
 * make that a case for the tests (policy_classify_name_bits). */
#define CLASSIFY_NAME_TRIES 8

unsigned policy_classify_name_bits = 64;

/* A region of a run's lookup tree, as bytes: what its name hashes. */
#define RKEY_MAX 640
struct rkey {
	uint8_t b[RKEY_MAX];
	size_t n;
};

static void rkey_put(struct rkey *k, const void *p, size_t n)
{
	if (n > RKEY_MAX - k->n)
		n = RKEY_MAX - k->n; /* cannot happen: the depth is bounded */
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void rkey_value(struct rkey *k, const struct ir_value *v)
{
	rkey_put(k, &v->len, 1);
	rkey_put(k, v->data, v->len <= IR_VALUE_MAX ? v->len : 0);
}

/* A step down the tree: tag, dimension, cell. */
static struct rkey rkey_step(const struct rkey *parent, char tag, int d, const struct ir_value *lo,
			     const struct ir_value *hi)
{
	struct rkey k = *parent;
	uint8_t head[2] = { (uint8_t)tag, (uint8_t)d };
	rkey_put(&k, head, sizeof(head));
	if (lo)
		rkey_value(&k, lo);
	if (hi)
		rkey_value(&k, hi);
	return k;
}

/* The splitmix64 finalizer: every bit of x into every bit of the name. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t seed_basis(uint64_t seed)
{
	return POLICY_FNV64_OFFSET_BASIS ^ mix64(seed + 1);
}

static uint64_t rkey_hash(const struct classify *c, const void *obj, uint64_t seed)
{
	(void)c;
	const struct rkey *k = obj;
	return mix64(policy_fnv64(seed_basis(seed), k->b, k->n));
}

static uint64_t chain_hash(const struct classify *c, const void *obj, uint64_t seed)
{
	const struct ir_chain *ch = obj;
	uint64_t h = seed_basis(seed);
	for (size_t i = 0; i < ch->n_rules; i++)
		h = ir_diff_rule_hash(c->t, &ch->rules[i], h);
	return mix64(h ^ ch->n_rules);
}

typedef uint64_t (*name_hash_fn)(const struct classify *c, const void *obj, uint64_t seed);

/* Name number `try` of obj: prefix and hash, then the hash of another seed. */
static void make_name(const struct classify *c, const char *prefix, name_hash_fn hash,
		      const void *obj, unsigned try, char *out)
{
	uint64_t h = hash(c, obj, 0);
	if (policy_classify_name_bits < 64)
		h &= (1ull << policy_classify_name_bits) - 1;
	if (!try)
		snprintf(out, IR_NAME_MAX, "%s%016llx", prefix, (unsigned long long)h);
	else
		snprintf(out, IR_NAME_MAX, "%s%016llx_%016llx", prefix, (unsigned long long)h,
			 (unsigned long long)hash(c, obj, try));
}

static bool chain_equal(const struct ir_table *t, const struct ir_chain *a,
			const struct ir_chain *b)
{
	if (a->n_rules != b->n_rules)
		return false;
	for (size_t i = 0; i < a->n_rules; i++)
		if (!ir_diff_rule_equal(t, &a->rules[i], t, &b->rules[i]))
			return false;
	return true;
}

static void chain_drop(struct ir_chain *ch)
{
	for (size_t r = 0; r < ch->n_rules; r++)
		ir_rule_clear(&ch->rules[r]);
	free(ch->rules);
	memset(ch, 0, sizeof(*ch));
}

/* Puts chain `tmp` (built outside the table) into the table under its name
 * (prefix, hash). With `share`, a chain of the same name and rules is the
 * same chain: tmp is dropped, and the sets made for it (those from
 * sets_before on, the anonymous sets of its rules) with it. Returns 0 with
 * the chain's index in *out and *made telling whether it is new. */
static int place_chain(struct classify *c, const char *prefix, name_hash_fn hash, const void *obj,
		       struct ir_chain *tmp, bool share, size_t sets_before, size_t *out,
		       bool *made)
{
	char name[IR_NAME_MAX];
	for (unsigned try = 0; try < CLASSIFY_NAME_TRIES; try++) {
		make_name(c, prefix, hash, obj, try, name);
		size_t j = ir_names_get(&c->chain_names, name);
		if (j != POLICY_HMAP_NONE) {
			if (!share || !chain_equal(c->t, &c->t->chains[j], tmp))
				continue; /* a collision */
			chain_drop(tmp);
			while (c->t->n_sets > sets_before)
				free(c->t->sets[--c->t->n_sets].elems);
			*out = j;
			*made = false;
			return 0;
		}
		struct ir_chain *ch = ir_chain_add(c->t, name);
		if (!ch)
			return -1;
		ch->rules = tmp->rules;
		ch->n_rules = tmp->n_rules;
		ch->cap_rules = tmp->cap_rules;
		memset(tmp, 0, sizeof(*tmp));
		*out = c->t->n_chains - 1;
		*made = true;
		return ir_names_put(&c->chain_names, *out);
	}
	return -1; /* CLASSIFY_NAME_TRIES 64-bit hashes all taken: not seen */
}

/* Moves set `tmp` (built outside the table) into the table as a new set
 * named `name` (free), its index in *out; tmp is left empty. */
static int adopt_set(struct classify *c, const char *name, struct ir_set *tmp, size_t *out)
{
	size_t idx = ir_set_add(c->t, name);
	if (idx == (size_t)-1)
		return -1;
	struct ir_set *s = &c->t->sets[idx];
	snprintf(tmp->name, sizeof(tmp->name), "%s", s->name);
	*s = *tmp;
	memset(tmp, 0, sizeof(*tmp));
	*out = idx;
	return ir_names_put(&c->set_names, idx);
}

/* Puts set `tmp` (built outside the table) into the table under the name of
 * region k. */
static int place_set(struct classify *c, const char *prefix, const struct rkey *k,
		     struct ir_set *tmp, size_t *out)
{
	char name[IR_NAME_MAX];
	for (unsigned try = 0; try < CLASSIFY_NAME_TRIES; try++) {
		make_name(c, prefix, rkey_hash, k, try, name);
		if (ir_names_get(&c->set_names, name) != POLICY_HMAP_NONE)
			continue;
		return adopt_set(c, name, tmp, out);
	}
	return -1;
}

/* ---- target chains ---- */

static bool has_reject(const struct ir_rule *r)
{
	for (size_t i = 0; i < r->n_stmts; i++)
		if (r->stmts[i].kind == IR_S_REJECT)
			return true;
	return false;
}

/* Copies rule r of the run into chain ch (outside the table): statements
 * and verdict, and the residual matches (the box holds the others). */
static int copy_rule(struct ir_table *t, struct ir_chain *ch, const struct ir_rule *src,
		     const struct rule_info *ri, int skip)
{
	struct ir_rule *r = ir_rule_add(ch);
	if (!r)
		return -1;
	snprintf(r->comment, sizeof(r->comment), "%s", src->comment);
	r->loc = src->loc;
	r->verdict = src->verdict;
	for (size_t i = 0; i < src->n_stmts; i++) {
		struct ir_stmt *s = ir_stmt_add(r);
		if (!s)
			return -1;
		*s = src->stmts[i];
	}
	/* nft text writes the protocol a residual match or a reject depends on
	 * (`icmp type` needs `meta l4proto icmp`, `reject with tcp reset`
	 * needs tcp) and the IR keeps every dependency explicit: those key
	 * matches stay in front of it */
	bool deps = ri->residual || has_reject(src);
	for (size_t i = 0; deps && i < src->n_matches; i++) {
		enum ir_field f = src->matches[i].field[0];
		if ((int)i == skip ||
		    (ri->key_match[i] && f != IR_META_NFPROTO && f != IR_META_L4PROTO))
			continue;
		struct ir_match *m = ir_match_add(r);
		if (!m)
			return -1;
		*m = src->matches[i];
		if (m->kind != IR_M_LOOKUP || !(t->sets[m->set].flags & IR_SET_ANONYMOUS))
			continue;
		/* an anonymous set serves one rule: the copy gets its own */
		char name[IR_NAME_MAX]; /* ir_set_add may move the sets */
		snprintf(name, sizeof(name), "%s", t->sets[m->set].name);
		size_t idx = ir_set_add(t, name);
		if (idx == (size_t)-1)
			return -1;
		struct ir_set *from = &t->sets[m->set], *to = &t->sets[idx];
		struct ir_set_elem *keep = NULL;
		size_t n = from->n_elems;
		*to = *from;
		to->elems = NULL;
		to->n_elems = to->cap_elems = 0;
		if (n && ir_set_reserve(to, n))
			return -1;
		keep = t->sets[m->set].elems;
		memcpy(to->elems, keep, n * sizeof(*keep));
		to->n_elems = n;
		m->set = idx;
	}
	return 0;
}

/* ---- shared address lists ---- */

/* Chains cost the kernel about this much per rule of expressions. */
#define CLASSIFY_RULE_BYTES 256

static int add_family(struct ir_rule *r, int kind);
static int add_vmap(struct ir_table *t, struct ir_rule *r, size_t set);

static uint64_t list_map_hash(const struct classify *c, const void *obj, uint64_t seed)
{
	(void)c;
	const struct ir_set *s = obj;
	uint64_t h = policy_fnv64(seed_basis(seed), &s->key[0], sizeof(s->key[0]));
	for (size_t i = 0; i < s->n_elems; i++) {
		const struct ir_set_elem *e = &s->elems[i];
		h = policy_fnv64(h, e->key[0].data, e->key[0].len);
		h = policy_fnv64(h, ir_elem_end(e)->data, e->key[0].len);
		h = policy_fnv64(h, e->verdict.chain, strlen(e->verdict.chain) + 1);
	}
	return mix64(h ^ s->n_elems);
}

static bool list_map_equal(const struct ir_set *a, const struct ir_set *b)
{
	if (a->n_key != 1 || a->key[0] != b->key[0] || a->n_elems != b->n_elems ||
	    a->data != b->data || a->flags != b->flags)
		return false;
	for (size_t i = 0; i < a->n_elems; i++) {
		const struct ir_set_elem *x = &a->elems[i], *y = &b->elems[i];
		if (vcmp(&x->key[0], &y->key[0]) || vcmp(ir_elem_end(x), ir_elem_end(y)) ||
		    x->verdict.kind != y->verdict.kind ||
		    strcmp(x->verdict.chain, y->verdict.chain))
			return false;
	}
	return true;
}

/* Puts list map `tmp` into the table under a name from its content, or
 * finds the same map there (made for another label, pair or port). */
static int list_map_place(struct classify *c, struct ir_set *tmp, size_t *out, bool *made)
{
	char name[IR_NAME_MAX];
	for (unsigned try = 0; try < CLASSIFY_NAME_TRIES; try++) {
		make_name(c, "clsl_", list_map_hash, tmp, try, name);
		size_t j = ir_names_get(&c->set_names, name);
		if (j != POLICY_HMAP_NONE) {
			if (!list_map_equal(&c->t->sets[j], tmp))
				continue; /* a collision */
			free(tmp->elems);
			memset(tmp, 0, sizeof(*tmp));
			*out = j;
			*made = false;
			return 0;
		}
		*made = true;
		return adopt_set(c, name, tmp, out);
	}
	return -1;
}

/* Rules pos[0..n) of the run (a segment of a label: each looks up a shared
 * list on the same field and decides what it holds) as one rule of chain
 * ch: `meta nfproto F FIELD vmap @clsl_H`, each address going to the first
 * of them that lists it, to a chain with that rule's statements and
 * verdict. Returns 0, 1 when the run's list maps would pass their bound
 * (nothing made), -1 on ENOMEM. */
static int list_lookup(struct classify *c, size_t ci, size_t from, const uint32_t *pos, size_t n,
		       struct ir_chain *ch)
{
	struct ir_table *t = c->t;
	size_t total = 0;
	for (size_t k = 0; k < n; k++)
		total += c->info[pos[k]].list_elems;
	if (c->list_elems + total > c->list_limit) {
		c->rep->classify_lists_linear++;
		return 1;
	}
	size_t *targets = malloc(n * sizeof(*targets));
	struct policy_span *spans = malloc((total ? total : 1) * sizeof(*spans));
	struct ir_set tmp = { .n_key = 1, .flags = IR_SET_INTERVAL, .data = IR_DATA_VERDICT };
	size_t n_spans = 0;
	int rc = targets && spans ? 0 : -1;
	for (size_t k = 0; !rc && k < n; k++) {
		const struct rule_info *ri = &c->info[pos[k]];
		struct ir_chain one = { 0 };
		bool made;
		size_t sets_before = t->n_sets;
		rc = copy_rule(t, &one, &t->chains[ci].rules[from + pos[k]], ri, ri->list_match);
		if (!rc)
			rc = place_chain(c, "cls_", chain_hash, &one, &one, true, sets_before,
					 &targets[k], &made);
		if (rc) {
			chain_drop(&one);
			break;
		}
		c->rep->classify_chains += made;
		const struct ir_rule *src = &t->chains[ci].rules[from + pos[k]];
		const struct ir_set *list = &t->sets[src->matches[ri->list_match].set];
		for (size_t e = 0; e < list->n_elems && n_spans < total; e++)
			spans[n_spans++] =
			    (struct policy_span){ .lo = list->elems[e].key[0],
						  .hi = *ir_elem_end(&list->elems[e]),
						  .rule = k };
	}
	tmp.key[0] = c->info[pos[0]].list_field;
	if (!rc)
		rc = policy_first_match_map(t, &tmp, spans, n_spans, targets);
	free(spans);
	free(targets);
	size_t set = 0, n_elems = tmp.n_elems;
	bool made = false;
	if (!rc)
		rc = list_map_place(c, &tmp, &set, &made);
	free(tmp.elems);
	struct ir_rule *r = rc ? NULL : ir_rule_add(ch);
	if (!r)
		return -1;
	snprintf(r->comment, sizeof(r->comment), POLICY_COMMENT_DISPATCH);
	int fam = c->info[pos[0]].list_field == IR_IP6_SADDR ||
		  c->info[pos[0]].list_field == IR_IP6_DADDR;
	if (add_family(r, fam * 2) || add_vmap(t, r, set))
		return -1;
	c->rep->classify_bytes += CLASSIFY_RULE_BYTES;
	if (made) {
		/* the kernel's rbtree: two nodes per interval */
		c->list_elems += n_elems;
		c->rep->classify_lists++;
		c->rep->classify_list_elems += n_elems;
		c->rep->classify_bytes += n_elems * 2 * 96;
	}
	return 0;
}

/* The chain for label l of the run (rules[from..]): made once per content,
 * shared by every label (of any run) with the same rules. */
static int label_chain(struct classify *c, size_t ci, size_t from, uint32_t l, size_t *out)
{
	if (c->labels[l].chain != (size_t)-1) {
		*out = c->labels[l].chain;
		return 0;
	}
	uint32_t seq[64], n = 0;
	uint32_t *big = NULL;
	size_t depth = 0;
	for (uint32_t x = l; x; x = c->labels[x].parent)
		depth++;
	uint32_t *v = seq;
	if (depth > 64) {
		big = malloc(depth * sizeof(*big));
		if (!big)
			return -1;
		v = big;
	}
	for (uint32_t x = l; x; x = c->labels[x].parent)
		v[depth - 1 - n++] = c->labels[x].rule;
	struct ir_chain tmp = { 0 };
	size_t sets_before = c->t->n_sets;
	int rc = 0;
	for (size_t i = 0; !rc && i < depth;) {
		size_t j = i;
		while (j < depth && c->info[v[j]].listed &&
		       c->info[v[j]].list_field == c->info[v[i]].list_field)
			j++;
		if (j - i >= CLASSIFY_LIST_SEGMENT) {
			rc = list_lookup(c, ci, from, v + i, j - i, &tmp);
			if (rc <= 0) {
				i = j;
				continue;
			}
			rc = 0; /* over the bound: the rules as they are */
		}
		for (j = j > i ? j : i + 1; !rc && i < j; i++)
			rc = copy_rule(c->t, &tmp, &c->t->chains[ci].rules[from + v[i]],
				       &c->info[v[i]], -1);
	}
	free(big);
	bool made = false;
	if (!rc)
		rc = place_chain(c, "cls_", chain_hash, &tmp, &tmp, true, sets_before, out, &made);
	if (rc) {
		chain_drop(&tmp);
		return -1;
	}
	if (made)
		c->rep->classify_chains++;
	c->labels[l].chain = *out;
	return 0;
}

/* ---- maps ---- */

/* A rough estimate of the kernel memory of a pipapo map (see
 * net/netfilter/nft_set_pipapo.c): per field, lookup tables of 4-bit groups
 * x 16 buckets x one bit per rule (a range becomes a few netmask rules, two
 * on average assumed here), a mapping table per rule, and the elements. */
static size_t map_bytes(size_t elems, size_t nd, const size_t *field_len)
{
	size_t rules = elems * 2, longs = (rules + 63) / 64, bytes = 0, key = 0;
	for (size_t d = 0; d < nd; d++) {
		bytes += field_len[d] * 2 * 16 * longs * 8 + rules * 8;
		key += field_len[d];
	}
	return bytes + elems * (2 * key + 64);
}

static void set_drop(struct ir_set *s)
{
	free(s->elems);
	memset(s, 0, sizeof(*s));
}

/* A concatenated-range map of pieces ids[0..n) of one kind, for region k. */
static int leaf_map(struct classify *c, size_t ci, size_t from, int kind, const uint32_t *ids,
		    size_t n, const struct rkey *k, size_t *out)
{
	size_t nd = kind_dims(kind);
	/* the target chains first: the map is made last, under its name */
	size_t *chains = malloc((n ? n : 1) * sizeof(*chains));
	if (!chains)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (label_chain(c, ci, from, c->pieces[ids[i]].label, &chains[i])) {
			free(chains);
			return -1;
		}
	struct ir_set tmp = { 0 };
	tmp.n_key = nd;
	memcpy(tmp.key, kind_fields[kind >> 1], nd * sizeof(tmp.key[0]));
	tmp.flags = IR_SET_INTERVAL;
	tmp.data = IR_DATA_VERDICT;
	int rc = ir_set_reserve(&tmp, n);
	for (size_t i = 0; !rc && i < n; i++) {
		const struct piece *p = &c->pieces[ids[i]];
		struct ir_set_elem *e = ir_set_elem_add(&tmp);
		if (!e) {
			rc = -1;
			break;
		}
		memset(e, 0, sizeof(*e));
		for (size_t d = 0; d < nd; d++) {
			e->key[d] = p->lo[d];
			if (vcmp(&p->lo[d], &p->hi[d]))
				e->key_end[d] = p->hi[d];
		}
		e->verdict.kind = c->labels[p->label].closed ? IR_V_GOTO : IR_V_JUMP;
		snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s",
			 c->t->chains[chains[i]].name);
	}
	free(chains);
	if (!rc)
		rc = ir_set_normalize(&tmp);
	struct rkey leaf = rkey_step(k, 'L', 0, NULL, NULL);
	size_t n_elems = tmp.n_elems;
	if (!rc)
		rc = place_set(c, "classify_", &leaf, &tmp, out);
	set_drop(&tmp);
	if (rc)
		return -1;
	size_t lens[DIMS];
	for (size_t d = 0; d < nd; d++)
		lens[d] = ir_field_desc(kind_fields[kind >> 1][d])->len;
	c->rep->classify_maps++;
	c->rep->classify_elems += n_elems;
	c->rep->classify_bytes += map_bytes(n_elems, nd, lens);
	return 0;
}

/* `meta nfproto` of the kind as a match of rule r: an address load
 * depends on it, and nft text would add it where the IR did not. */
static int add_family(struct ir_rule *r, int kind)
{
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return -1;
	m->kind = IR_M_CMP;
	m->field[0] = IR_META_NFPROTO;
	m->value = ir_value_u8(kind >> 1 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	return 0;
}

/* `fields vmap @set` as a statement of rule r. */
static int add_vmap(struct ir_table *t, struct ir_rule *r, size_t set)
{
	struct ir_stmt *st = ir_stmt_add(r);
	if (!st)
		return -1;
	st->kind = IR_S_VMAP;
	st->n_field = t->sets[set].n_key;
	memcpy(st->field, t->sets[set].key, st->n_field * sizeof(st->field[0]));
	st->set = set;
	return 0;
}

/* A match of rule r on field f for [lo, hi]: a compare, a prefix (an
 * aligned address block, as lowering writes it) or a range. */
static int add_interval(struct ir_rule *r, enum ir_field f, const struct ir_value *lo,
			const struct ir_value *hi)
{
	struct ir_match *m = ir_match_add(r);
	if (!m)
		return -1;
	enum ir_field_type type = ir_field_desc(f)->type;
	int plen = ir_value_prefix_len(lo, hi);
	m->field[0] = f;
	m->op = IR_OP_EQ;
	m->value = *lo;
	if (!vcmp(lo, hi)) {
		m->kind = IR_M_CMP;
	} else if ((type == IR_T_IPV4 || type == IR_T_IPV6) && plen >= 0) {
		m->kind = IR_M_PREFIX;
		m->prefix_len = (uint8_t)plen;
	} else {
		m->kind = IR_M_RANGE;
		m->value_end = *hi;
	}
	return 0;
}

/* A few pieces are tested by plain rules rather than looked up: pipapo's
 * lookup walks a bitmap per 4- or 8-bit group of the whole concatenated
 * key (11 groups at least here) whatever the element count, while a rule
 * compares only the fields the way down has not proved, and a
 * one-piece cell is common where the cuts isolate a wide rule (a port
 * range of its own). */
#define CLASSIFY_LINEAR_LEAF 2

/* Adds to chain `node` one rule per piece of ids: `meta nfproto`, the
 * piece's interval on every dimension the region (c->reg_lo, reg_hi) does
 * not prove, and a goto (closed label) or jump (open) to its label chain.
 * The pieces are disjoint, so at most one rule matches a packet, and in
 * any order. */
static int leaf_rules(struct classify *c, size_t ci, size_t from, int kind, const uint32_t *ids,
		      size_t n, struct ir_chain *node)
{
	size_t nd = kind_dims(kind);
	for (size_t i = 0; i < n; i++) {
		const struct piece *p = &c->pieces[ids[i]];
		size_t chain;
		if (label_chain(c, ci, from, p->label, &chain))
			return -1;
		struct ir_rule *r = ir_rule_add(node);
		if (!r || add_family(r, kind))
			return -1;
		snprintf(r->comment, sizeof(r->comment), POLICY_COMMENT_DISPATCH);
		for (size_t d = 0; d < nd; d++) {
			if (vcmp(&p->lo[d], &c->reg_lo[d]) <= 0 &&
			    vcmp(&p->hi[d], &c->reg_hi[d]) >= 0)
				continue;
			if (add_interval(r, kind_fields[kind >> 1][d], &p->lo[d], &p->hi[d]))
				return -1;
		}
		r->verdict.kind = c->labels[p->label].closed ? IR_V_GOTO : IR_V_JUMP;
		snprintf(r->verdict.chain, sizeof(r->verdict.chain), "%s",
			 c->t->chains[chain].name);
		c->rep->classify_bytes += CLASSIFY_RULE_BYTES;
	}
	return 0;
}

/* The region of a whole lookup: every value of every dimension (l4proto
 * too: `th dport` reads any protocol's header, so the port lookups do not
 * prove a protocol with ports). */
static void region_reset(struct classify *c, int kind)
{
	for (size_t d = 0; d < DIMS; d++) {
		size_t len = ir_field_desc(kind_fields[kind >> 1][d])->len;
		c->reg_lo[d] = value_fill(len, 0);
		c->reg_hi[d] = value_fill(len, 0xff);
	}
}

/* ---- cutting: a decision tree over interval maps ----
 *
 * The kernel's concatenated-range lookup (pipapo) costs time in proportion
 * to its elements (bitmaps of one bit per element, 64 at a time), so one
 * map of tens of thousands of elements is not flat. The pieces of a kind
 * are therefore cut, HiCuts-like, along one dimension at a time into cells
 * of at most CLASSIFY_LEAF pieces each; a one-field interval map (the
 * kernel's rbtree: logarithmic) jumps to a chain per cell, which holds a
 * small concatenated-range map of the cell's pieces or is cut again along
 * the next dimension. A piece that would be copied into more than
 * CLASSIFY_MAX_SPAN cells is not: such wide pieces of a node are cut
 * separately along the next dimension, after the cell lookup. Pieces are
 * disjoint, so a packet meets at most one of them whichever way it goes,
 * and jumps return to the pair chain when it meets none.
 *
 * The cells are aligned blocks of the axis, the nodes of a binary trie
 * over the field's bits: a block that meets more than CLASSIFY_LEAF pieces
 * is split into its two halves, unless so many pieces cover it whole that
 * no half could meet fewer. Whether and where a block is cut depends only
 * on the pieces that meet it: a rule added or changed moves the cells where
 * its pieces lie and no other (cells packed by count from one end, or
 * neighbours joined while they fit, would move every boundary after the
 * change, and the names of everything below it). */
#define CLASSIFY_LEAF     48
#define CLASSIFY_MAX_SPAN 4

struct cell {
	struct ir_value lo, hi;
	uint32_t *ids;
	size_t n, cap;
};

struct cells {
	struct cell *v;
	size_t n, cap;
};

static void cells_free(struct cell *cells, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cells[i].ids);
	free(cells);
}

/* The first of the sorted, disjoint cells that ends at or after v. */
static size_t first_cell(const struct cell *cells, size_t n_cells, const struct ir_value *v)
{
	size_t lo = 0, hi = n_cells;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (vcmp(&cells[mid].hi, v) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Bit i (0: the high one) of v. */
static unsigned bit_at(const struct ir_value *v, unsigned i)
{
	return v->data[i / 8] >> (7 - i % 8) & 1;
}

/* The block of depth `depth` (bits fixed) that starts at lo: its last
 * value. */
static struct ir_value block_end(struct ir_value lo, unsigned depth)
{
	for (unsigned i = depth; i < 8u * lo.len; i++)
		lo.data[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	return lo;
}

/* Appends a cell [lo, hi] holding ids (taken over). */
static int cells_push(struct cells *cv, const struct ir_value *lo, const struct ir_value *hi,
		      struct id_list *ids)
{
	if (POLICY_GROW(cv->v, cv->cap, cv->n, 16))
		return -1;
	cv->v[cv->n++] =
	    (struct cell){ .lo = *lo, .hi = *hi, .ids = ids->v, .n = ids->n, .cap = ids->cap };
	memset(ids, 0, sizeof(*ids));
	return 0;
}

/* Whether the pieces ids of block [lo, hi] stay one cell: few enough, or
 * the block is one value, or so many pieces cover it whole that no
 * sub-block could hold fewer than CLASSIFY_LEAF. */
static bool block_stays(const struct classify *c, const uint32_t *ids, size_t n, int d,
			const struct ir_value *lo, const struct ir_value *hi, unsigned depth)
{
	if (n <= CLASSIFY_LEAF || depth >= 8u * lo->len)
		return true;
	size_t cover = 0;
	for (size_t i = 0; i < n; i++) {
		const struct piece *p = &c->pieces[ids[i]];
		cover += vcmp(&p->lo[d], lo) <= 0 && vcmp(&p->hi[d], hi) >= 0;
	}
	return cover == n || cover >= CLASSIFY_LEAF;
}

/* The cells of the block of depth `depth` that starts at lo, for pieces
 * ids (ascending) along dimension d, appended to cv in order: the block,
 * or the cells of its two halves. */
static int block_cells(const struct classify *c, const uint32_t *ids, size_t n, int d,
		       struct ir_value lo, unsigned depth, struct cells *cv)
{
	struct ir_value hi = block_end(lo, depth);
	struct id_list half[2] = { { 0 } };
	int rc = 0;
	if (!n)
		return 0;
	if (block_stays(c, ids, n, d, &lo, &hi, depth)) {
		for (size_t i = 0; !rc && i < n; i++)
			rc = id_push(&half[0], ids[i]);
		if (!rc)
			rc = cells_push(cv, &lo, &hi, &half[0]);
		free(half[0].v);
		return rc;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		const struct piece *p = &c->pieces[ids[i]];
		unsigned a = vcmp(&p->lo[d], &lo) <= 0 ? 0 : bit_at(&p->lo[d], depth);
		unsigned b = vcmp(&p->hi[d], &hi) >= 0 ? 1 : bit_at(&p->hi[d], depth);
		for (unsigned x = a; !rc && x <= b; x++)
			rc = id_push(&half[x], ids[i]);
	}
	struct ir_value upper = lo;
	upper.data[depth / 8] |= (uint8_t)(0x80 >> (depth % 8));
	if (!rc)
		rc = block_cells(c, half[0].v, half[0].n, d, lo, depth + 1, cv);
	if (!rc)
		rc = block_cells(c, half[1].v, half[1].n, d, upper, depth + 1, cv);
	free(half[0].v);
	free(half[1].v);
	return rc;
}

/* Splits the axis of dimension d into cells for pieces ids (ascending) and
 * files every piece in the cells it meets. */
static int make_cells(const struct classify *c, const uint32_t *ids, size_t n, int d,
		      struct cell **out, size_t *n_out)
{
	struct cells cv = { 0 };
	struct ir_value zero = value_fill(n ? c->pieces[ids[0]].lo[d].len : 1, 0);
	if (block_cells(c, ids, n, d, zero, 0, &cv)) {
		cells_free(cv.v, cv.n);
		return -1;
	}
	*out = cv.v;
	*n_out = cv.n;
	return 0;
}

/* How many of the cells piece p meets (counted up to one past the span). */
static size_t cells_met(const struct cell *cells, size_t n_cells, const struct piece *p, int d)
{
	size_t met = 0;
	for (size_t k = first_cell(cells, n_cells, &p->lo[d]);
	     k < n_cells && met <= CLASSIFY_MAX_SPAN && vcmp(&cells[k].lo, &p->hi[d]) <= 0; k++)
		met++;
	return met;
}

static int build_node(struct classify *c, size_t ci, size_t from, int kind, const uint32_t *ids,
		      size_t n, const int *dims, size_t n_dims, const struct rkey *k, size_t *out);

/* Adds to chain `node` (outside the table) the rules that look up pieces
 * ids of region k: a leaf map, or cuts along dims. */
static int node_rules(struct classify *c, size_t ci, size_t from, int kind, const uint32_t *ids,
		      size_t n, const int *dims, size_t n_dims, const struct rkey *k,
		      struct ir_chain *node)
{
	if (n <= CLASSIFY_LEAF || !n_dims) {
		if (c->dry) {
			c->dry_elems += n;
			return c->dry_elems > c->dry_limit ? 1 : 0;
		}
		if (n <= CLASSIFY_LINEAR_LEAF)
			return leaf_rules(c, ci, from, kind, ids, n, node);
		size_t set;
		struct ir_rule *r;
		if (leaf_map(c, ci, from, kind, ids, n, k, &set) || !(r = ir_rule_add(node)))
			return -1;
		snprintf(r->comment, sizeof(r->comment), POLICY_COMMENT_DISPATCH);
		return add_family(r, kind) || add_vmap(c->t, r, set);
	}
	int d = dims[0];
	struct cell *cells;
	size_t n_cells;
	if (make_cells(c, ids, n, d, &cells, &n_cells))
		return -1;
	/* pieces met by too many cells stay out of them */
	uint32_t *narrow = malloc(n * sizeof(*narrow)), *wide = malloc(n * sizeof(*wide));
	size_t n_narrow = 0, n_wide = 0;
	int rc = narrow && wide ? 0 : -1;
	for (size_t i = 0; !rc && i < n; i++) {
		if (cells_met(cells, n_cells, &c->pieces[ids[i]], d) > CLASSIFY_MAX_SPAN)
			wide[n_wide++] = ids[i];
		else
			narrow[n_narrow++] = ids[i];
	}
	if (!rc && n_wide) {
		cells_free(cells, n_cells);
		cells = NULL;
		n_cells = 0;
		rc = n_narrow ? make_cells(c, narrow, n_narrow, d, &cells, &n_cells) : 0;
	}
	if (!rc && n_cells <= 1 && !n_wide) {
		/* no progress along d: the next dimension */
		struct rkey next = rkey_step(k, 'N', d, NULL, NULL);
		rc = node_rules(c, ci, from, kind, ids, n, dims + 1, n_dims - 1, &next, node);
		goto done;
	}
	if (!rc && n_cells && c->dry) {
		c->dry_elems += n_cells;
		for (size_t i = 0; !rc && i < n_cells; i++)
			rc = c->dry_elems > c->dry_limit
				 ? 1
				 : node_rules(c, ci, from, kind, cells[i].ids, cells[i].n, dims + 1,
					      n_dims - 1, k, NULL);
	} else if (!rc && n_cells) {
		/* the cells' chains first: the map is made last, under its name */
		struct ir_set tmp = { 0 };
		tmp.n_key = 1;
		tmp.key[0] = kind_fields[kind >> 1][d];
		tmp.flags = IR_SET_INTERVAL;
		tmp.data = IR_DATA_VERDICT;
		rc = ir_set_reserve(&tmp, n_cells);
		for (size_t i = 0; !rc && i < n_cells; i++) {
			size_t child;
			struct rkey sub = rkey_step(k, 'C', d, &cells[i].lo, &cells[i].hi);
			struct ir_value lo = c->reg_lo[d], hi = c->reg_hi[d];
			/* the cut map proves the cell (within the region) below */
			if (vcmp(&cells[i].lo, &lo) > 0)
				c->reg_lo[d] = cells[i].lo;
			if (vcmp(&cells[i].hi, &hi) < 0)
				c->reg_hi[d] = cells[i].hi;
			rc = build_node(c, ci, from, kind, cells[i].ids, cells[i].n, dims + 1,
					n_dims - 1, &sub, &child);
			c->reg_lo[d] = lo;
			c->reg_hi[d] = hi;
			struct ir_set_elem *e = rc ? NULL : ir_set_elem_add(&tmp);
			if (!e) {
				rc = -1;
				break;
			}
			memset(e, 0, sizeof(*e));
			e->key[0] = cells[i].lo;
			if (vcmp(&cells[i].lo, &cells[i].hi))
				e->key_end[0] = cells[i].hi;
			e->verdict.kind = IR_V_JUMP;
			snprintf(e->verdict.chain, sizeof(e->verdict.chain), "%s",
				 c->t->chains[child].name);
			c->rep->classify_elems++;
		}
		struct rkey cut = rkey_step(k, 'M', d, NULL, NULL);
		size_t set = 0, n_elems = tmp.n_elems;
		if (!rc)
			rc = place_set(c, "classify_cut_", &cut, &tmp, &set);
		set_drop(&tmp);
		struct ir_rule *r = rc ? NULL : ir_rule_add(node);
		if (!rc && !r)
			rc = -1;
		if (!rc) {
			c->rep->classify_maps++;
			snprintf(r->comment, sizeof(r->comment), POLICY_COMMENT_DISPATCH);
			rc = add_family(r, kind) || add_vmap(c->t, r, set) ? -1 : 0;
			c->rep->classify_bytes += n_elems * 96 + CLASSIFY_RULE_BYTES;
		}
	}
	if (!rc && n_wide) {
		struct rkey rest = rkey_step(k, 'W', d, NULL, NULL);
		rc = node_rules(c, ci, from, kind, wide, n_wide, dims + 1, n_dims - 1, &rest, node);
	}
done:
	cells_free(cells, n_cells);
	free(narrow);
	free(wide);
	return rc;
}

/* A chain for pieces ids of region k: a leaf map or cuts (children first,
 * the chain last, under its name). */
static int build_node(struct classify *c, size_t ci, size_t from, int kind, const uint32_t *ids,
		      size_t n, const int *dims, size_t n_dims, const struct rkey *k, size_t *out)
{
	struct ir_chain tmp = { 0 };
	bool made;
	if (node_rules(c, ci, from, kind, ids, n, dims, n_dims, k, &tmp) ||
	    place_chain(c, "clsn_", rkey_hash, k, &tmp, false, c->t->n_sets, out, &made)) {
		chain_drop(&tmp);
		return -1;
	}
	c->rep->classify_chains++;
	return 0;
}

/* The root node of a lookup of `kind` (node_rules; out NULL: counted into
 * c->dry_elems only): all pieces (ids 0 to n_pieces - 1), cut along the
 * dimensions most telling first (a kind without ports has no port to
 * cut). */
static int root_rules(struct classify *c, size_t ci, size_t from, int kind, const struct rkey *k,
		      struct ir_chain *out)
{
	static const int port_dims[] = { DIM_DPORT, DIM_DADDR, DIM_SADDR };
	static const int noport_dims[] = { DIM_DADDR, DIM_SADDR };
	const int *dims = kind & 1 ? noport_dims : port_dims;
	size_t n_dims = kind & 1 ? 2 : 3;
	uint32_t *ids = malloc(c->n_pieces * sizeof(*ids));
	if (!ids)
		return -1;
	for (size_t i = 0; i < c->n_pieces; i++)
		ids[i] = (uint32_t)i;
	int rc = node_rules(c, ci, from, kind, ids, c->n_pieces, dims, n_dims, k, out);
	free(ids);
	return rc;
}

/* The lookup of one kind from the pieces: appends to chain out (the
 * run's replacement in the pair chain) the rules of its root node (a
 * leaf map, a few plain rules, or the cuts), in place rather than behind
 * a jump to a chain of their own, which would cost every packet a rule and
 * a jump more. */
static int make_map(struct classify *c, size_t ci, size_t from, int kind, struct ir_chain *out)
{
	/* the region of the whole lookup: the pair chain, the run's place
	 * in it and the kind (not the run's own rules: removing its first
	 * one would rename all of it) */
	struct rkey k = { .n = 0 };
	const char *chain = c->t->chains[ci].name;
	uint8_t kb = (uint8_t)kind;
	uint64_t dup = c->run_dup;
	rkey_put(&k, chain, strlen(chain) + 1);
	rkey_put(&k, c->run_id, strlen(c->run_id) + 1);
	rkey_put(&k, &dup, sizeof(dup));
	rkey_put(&k, c->run_half, strlen(c->run_half) + 1);
	rkey_put(&k, &kb, 1);
	region_reset(c, kind);
	return root_rules(c, ci, from, kind, &k, out);
}

/* Counts into c->dry_elems the elements make_map would make for the pieces
 * of one kind (leaf maps and cut maps); 1 past c->dry_limit. */
static int estimate(struct classify *c, size_t ci, size_t from, int kind)
{
	struct rkey k = { .n = 0 };
	return root_rules(c, ci, from, kind, &k, NULL);
}

/* ---- runs ---- */

static void run_reset(struct classify *c)
{
	c->n_pieces = 0;
	c->n_labels = 0;
	c->work = 0;
}

/* Builds the pieces of one kind for the n rules of the run; 1 if over the
 * bound. */
static int run_pieces(struct classify *c, size_t n, int kind, const uint32_t *own)
{
	c->n_pieces = 0;
	c->nd = kind_dims(kind);
	index_clear(&c->idx);
	int rc = 0;
	for (size_t j = 0; !rc && j < n; j++) {
		c->stamp++;
		rc = add_rule(c, &c->info[j], kind, (uint32_t)j, own[j]);
	}
	return rc;
}

/* Classifies rules [from, to) of chain ci (info[] holds them from index
 * 0); appends its replacement rules (the root lookups of up to 4 kinds) to
 * chain out. Returns the number of rules written, 0 when the run stays as
 * it was (over the bound), -1 on ENOMEM. */
static int classify_run(struct classify *c, size_t ci, size_t from, size_t to, struct ir_chain *out)
{
	size_t n = to - from;
	run_reset(c);
	size_t boxes = 0;
	for (size_t j = 0; j < n; j++)
		boxes += c->info[j].boxes;
	c->max_pieces = n * CLASSIFY_ELEMS_PER_RULE + CLASSIFY_ELEMS_BASE;
	if (c->max_pieces < boxes * CLASSIFY_ELEMS_PER_BOX)
		c->max_pieces = boxes * CLASSIFY_ELEMS_PER_BOX;
	if (c->max_pieces > CLASSIFY_MAX_ELEMS)
		c->max_pieces = CLASSIFY_MAX_ELEMS;
	c->max_work = (uint64_t)n * CLASSIFY_WORK_PER_RULE;
	c->list_elems = 0;
	c->list_limit = CLASSIFY_ELEMS_BASE;
	for (size_t j = 0; j < n; j++)
		c->list_limit += c->info[j].list_elems * CLASSIFY_LIST_COPIES;
	uint32_t *own = malloc(n * sizeof(*own)), root;
	if (!own || label_new(c, 0, 0, false, &root)) {
		free(own);
		return -1;
	}
	int rc = 0;
	for (size_t j = 0; !rc && j < n; j++)
		rc = label_new(c, 0, (uint32_t)j, c->info[j].decides, &own[j]);
	/* the pieces of every kind first: nothing is made unless all fit */
	struct piece *kept[4] = { NULL };
	size_t n_kept[4] = { 0 }, budget = c->max_pieces;
	for (int kind = 0; !rc && kind < 4; kind++) {
		rc = run_pieces(c, n, kind, own);
		kept[kind] = c->pieces;
		n_kept[kind] = c->n_pieces;
		c->max_pieces -= c->n_pieces;
		c->pieces = NULL;
		c->n_pieces = c->cap_pieces = 0;
	}
	c->max_pieces = budget;
	c->over = rc > 0 ? 1 : 0;
	if (c->over) {
		/* over the pieces or the work of building them */
		c->over = c->work > c->max_work ? 3 : 1;
		c->over_bound = c->over == 3 ? (size_t)c->max_work : budget;
	}
	/* the elements the lookups would have, before any is made: past
	 * the bound per box plus a constant the run is refused */
	size_t bound = boxes * policy_classify_repl_per_box + policy_classify_repl_base;
	c->dry = true;
	c->dry_elems = 0;
	c->dry_limit = bound;
	for (int kind = 0; !rc && kind < 4; kind++) {
		c->pieces = kept[kind];
		c->n_pieces = n_kept[kind];
		if (c->n_pieces)
			rc = estimate(c, ci, from, kind);
		c->pieces = NULL;
		c->n_pieces = 0;
	}
	c->dry = false;
	if (rc > 0 && !c->over) {
		c->over = 2;
		c->over_elems = c->dry_elems;
		c->over_bound = bound;
	}
	for (int kind = 0; !rc && kind < 4; kind++) {
		c->pieces = kept[kind];
		c->n_pieces = n_kept[kind];
		if (c->n_pieces)
			rc = make_map(c, ci, from, kind, out);
		c->pieces = NULL;
		c->n_pieces = 0;
	}
	for (int kind = 0; kind < 4; kind++)
		free(kept[kind]);
	free(own);
	if (rc > 0)
		return 0;
	return rc < 0 ? -1 : (int)out->n_rules;
}

static bool same_fields(const struct ir_rule *a, const struct ir_rule *b)
{
	if (a->n_matches != b->n_matches)
		return false;
	for (size_t m = 0; m < a->n_matches; m++)
		if (a->matches[m].field[0] != b->matches[m].field[0])
			return false;
	return true;
}

/* Runs of one shape that the dispatch pass makes one hash or interval map
 * (policy/optimize.c, DISPATCH_MIN_RUN). */
#define CLASSIFY_DISPATCH_RUN 8

/* Whether dispatch leaves rules [from, to) at CLASSIFY_MIN_RUN lookups or
 * fewer: runs of one shape become one lookup each (a hash map, cheaper than
 * concatenated ranges), so such a run is left to it. An estimate: dispatch
 * may refuse a run this counts as one lookup. */
static bool dispatch_suffices(const struct ir_chain *ch, const struct rule_info *info, size_t from,
			      size_t to)
{
	size_t cost = 0;
	for (size_t i = from; i < to && cost <= CLASSIFY_MIN_RUN;) {
		size_t j = i + 1;
		while (j < to && info[j].decides && info[i].decides &&
		       same_fields(&ch->rules[i], &ch->rules[j]))
			j++;
		cost += j - i >= CLASSIFY_DISPATCH_RUN ? 1 : j - i;
		i = j;
	}
	return cost <= CLASSIFY_MIN_RUN;
}

/* The new rule list of a chain while it is rebuilt. */
struct rebuilt {
	struct ir_rule *v;
	size_t n, cap;
};

static int rebuilt_push(struct rebuilt *rb, const struct ir_rule *r)
{
	if (POLICY_GROW(rb->v, rb->cap, rb->n, 16))
		return -1;
	rb->v[rb->n++] = *r;
	return 0;
}

/* Notes in the report that a run of chain ci (of n rules) passed a bound:
 * per chain, the first such run and how many were refused. */
static void note_fallback(struct classify *c, size_t ci, size_t n)
{
	struct policy_optimize_report *r = c->rep;
	const char *name = c->t->chains[ci].name;
	size_t shown = sizeof(r->fallback) / sizeof(r->fallback[0]);
	if (c->fallback_chain == ci + 1) {
		if (r->classify_fallbacks <= shown)
			r->fallback[r->classify_fallbacks - 1].refused++;
		return;
	}
	c->fallback_chain = ci + 1;
	if (r->classify_fallbacks < shown) {
		struct policy_classify_fallback *f = &r->fallback[r->classify_fallbacks];
		snprintf(f->chain, sizeof(f->chain), "%s", name);
		f->rules = n;
		f->elems = c->over_elems;
		f->bound = c->over_bound;
		f->why = c->over;
		f->refused = 1;
	}
	r->classify_fallbacks++;
}

void policy_classify_report_print(const struct policy_optimize_report *r, FILE *out)
{
	size_t shown = sizeof(r->fallback) / sizeof(r->fallback[0]);
	if (!r->classify_fallbacks)
		return;
	static const char *const why[] = { "", "would bring more than %zu pieces",
					   "would replicate into more than %zu elements",
					   "would take more than %zu box comparisons" };
	fprintf(out,
		"  fallback   %zu chains over a bound (elements: %u per box + %u per run): "
		"their runs cut in halves, halves still over it kept linear\n",
		r->classify_fallbacks, policy_classify_repl_per_box, policy_classify_repl_base);
	for (size_t i = 0; i < r->classify_fallbacks && i < shown; i++) {
		const struct policy_classify_fallback *f = &r->fallback[i];
		fprintf(out, "    chain %s: a run of %zu rules ", f->chain, f->rules);
		fprintf(out, why[f->why > 0 && f->why < 4 ? f->why : 2], f->bound);
		fprintf(out, "; %zu runs or halves refused\n", f->refused);
	}
	if (r->classify_fallbacks > shown)
		fprintf(out, "    ... %zu more chains\n", r->classify_fallbacks - shown);
}

/* Rules [from, to) of chain ci: classified, or cut in halves, or kept. */
static int classify_segment(struct classify *c, size_t ci, struct rule_info *info, size_t from,
			    size_t to, int splits, struct rebuilt *rb)
{
	struct ir_chain out = { 0 };
	c->info = &info[from];
	c->run_half[splits] = '\0';
	int made = classify_run(c, ci, from, to, &out);
	if (made < 0) {
		chain_drop(&out);
		return -1;
	}
	if (made > 0 || (to - from < 2 * CLASSIFY_MIN_RUN || splits >= CLASSIFY_MAX_SPLITS)) {
		if (!made)
			c->rep->runs_kept_linear++;
		if (!made && c->over)
			note_fallback(c, ci, to - from);
		else {
			c->rep->runs_classified++;
			c->rep->rules_classified += to - from;
			c->rep->classify_bytes += (size_t)made * CLASSIFY_RULE_BYTES;
		}
		int rc = 0;
		for (int k = 0; !rc && k < made; k++) {
			rc = rebuilt_push(rb, &out.rules[k]);
			if (!rc)
				memset(&out.rules[k], 0, sizeof(out.rules[k])); /* moved */
		}
		chain_drop(&out);
		if (rc)
			return -1;
		for (size_t j = from; j < to; j++) {
			struct ir_rule *r = &c->t->chains[ci].rules[j];
			if (made) {
				ir_rule_clear(r);
			} else if (rebuilt_push(rb, r)) {
				return -1;
			} else {
				memset(r, 0, sizeof(*r)); /* moved */
			}
		}
		return 0;
	}
	if (c->over)
		note_fallback(c, ci, to - from);
	size_t mid = from + (to - from) / 2;
	c->run_half[splits] = 'a';
	if (classify_segment(c, ci, info, from, mid, splits + 1, rb))
		return -1;
	c->run_half[splits] = 'b';
	return classify_segment(c, ci, info, mid, to, splits + 1, rb);
}

static int classify_chain(struct classify *c, size_t ci)
{
	size_t n = c->t->chains[ci].n_rules;
	struct rule_info *info = calloc(n ? n : 1, sizeof(*info));
	bool *ok = calloc(n ? n : 1, sizeof(*ok));
	size_t *dup = calloc(n ? n : 1, sizeof(*dup));
	struct rebuilt rb = { 0 };
	int rc = info && ok && dup ? 0 : -1;
	for (size_t j = 0; !rc && j < n; j++) {
		const struct ir_rule *r = c->t->chains[ci].rules;
		int a = rule_analyse(c->t, &r[j], &info[j]);
		rc = a < 0 ? -1 : 0;
		ok[j] = a > 0;
		dup[j] = j && !strcmp(r[j].comment, r[j - 1].comment) ? dup[j - 1] + 1 : 0;
	}
	bool changed = false;
	size_t i = 0;
	c->run_id[0] = '\0';
	c->run_dup = 0;
	while (!rc && i < n) {
		size_t j = i;
		while (j < n && ok[j])
			j++;
		if (j - i >= CLASSIFY_MIN_RUN &&
		    !dispatch_suffices(&c->t->chains[ci], info, i, j)) {
			rc = classify_segment(c, ci, info, i, j, 0, &rb);
			changed = true;
		} else {
			for (size_t k = i; !rc && k < j; k++) {
				rc = rebuilt_push(&rb, &c->t->chains[ci].rules[k]);
				memset(&c->t->chains[ci].rules[k], 0, sizeof(struct ir_rule));
			}
		}
		if (j < n && !rc) {
			snprintf(c->run_id, sizeof(c->run_id), "%s",
				 c->t->chains[ci].rules[j].comment);
			c->run_dup = dup[j];
			rc = rebuilt_push(&rb, &c->t->chains[ci].rules[j]);
			memset(&c->t->chains[ci].rules[j], 0, sizeof(struct ir_rule));
			j++;
		}
		i = j;
	}
	for (size_t j = 0; info && j < n; j++)
		info_free(&info[j]);
	free(info);
	free(ok);
	free(dup);
	if (rc || !changed) {
		/* on ENOMEM the chain may have lost rules: the caller fails anyway */
		if (!rc) {
			/* nothing changed: put the rules back in place */
			struct ir_chain *ch = &c->t->chains[ci];
			memcpy(ch->rules, rb.v, rb.n * sizeof(*rb.v));
		}
		free(rb.v);
		return rc;
	}
	struct ir_chain *ch = &c->t->chains[ci];
	free(ch->rules);
	ch->rules = rb.v;
	ch->n_rules = rb.n;
	ch->cap_rules = rb.cap;
	return 0;
}

int policy_classify(struct ir_table *t, struct policy_optimize_report *r)
{
	struct classify c = { .t = t, .rep = r }; /* about 25 KiB, the port index */
	size_t n_chains = t->n_chains;            /* chains made here are not scanned */
	int rc = 0;
	if (ir_names_init(&c.chain_names, t, false, 0) || ir_names_init(&c.set_names, t, true, 0)) {
		ir_names_free(&c.chain_names);
		return -1;
	}
	for (size_t ci = 0; !rc && ci < n_chains; ci++)
		if (t->chains[ci].hook == IR_HOOK_NONE && t->chains[ci].n_rules >= CLASSIFY_MIN_RUN)
			rc = classify_chain(&c, ci);
	free(c.labels);
	free(c.ext);
	free(c.ext_stamp);
	free(c.pieces);
	ir_names_free(&c.chain_names);
	ir_names_free(&c.set_names);
	index_free(&c.idx);
	return rc;
}
