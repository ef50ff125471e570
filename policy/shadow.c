/* Shadowed-rule analysis (see policy/shadow.h).
 *
 * Every dimension of a box is a set of integers kept as sorted, disjoint
 * intervals: zones are numbered (0..n_zones-1, then one number for `self`
 * and one for "no zone"), addresses are integers of their family, and the
 * service space is (l4proto << 16 | port or ICMP type). Subtracting box B
 * from box A splits A into at most one piece per dimension.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/grow.h"
#include "policy/shadow.h"

typedef unsigned __int128 u128;

enum { DIM_SRC_ZONE, DIM_SRC_ADDR, DIM_DST_ZONE, DIM_DST_ADDR, DIM_SERVICE, DIM_COUNT };

/* The service space: 256 protocols (an 8-bit field, RFC 791) times 65536
 * ports (a 16-bit field, RFC 793). */
#define SERVICE_PROTO_SHIFT 16
#define SERVICE_SPACE_END   (((u128)256 << SERVICE_PROTO_SHIFT) - 1)

/* Shadowing rules named in one diagnostic at most (the rest are counted). */
#define MAX_NAMED_SHADOWERS 8

struct iv {
	u128 lo, hi;
};

struct ivset {
	struct iv *v;
	size_t n;
};

struct box {
	int family; /* AF_INET or AF_INET6: boxes of different families never meet */
	struct ivset d[DIM_COUNT];
};

struct boxes {
	struct box *v;
	size_t n, cap;
};

/* A coarse fingerprint of a set of integers: the value space is cut into
 * blocks, and each block the set touches sets one bit chosen by a hash of
 * the block number. Two sets that overlap touch a common block, so their
 * signatures share a bit; signatures without a common bit prove the sets
 * disjoint at the cost of a few AND instructions. */
#define SIG_WORDS 4
#define SIG_BITS  (SIG_WORDS * 64)
/* A set touching more blocks than this just sets every bit. */
#define SIG_MAX_BLOCKS 16

struct sig {
	uint64_t w[SIG_WORDS];
};

#define ZMASK_ZONES 64

/* Block sizes (log2) per dimension: zones one by one; IPv4 by /16 and IPv6
 * by /32 (the sizes of typical site allocations); services by 16 ports, so
 * that rules for single ports rarely share a bit (a range of more than
 * SIG_MAX_BLOCKS blocks, 256 ports, is wild). */
static const unsigned sig_shift_v4[DIM_COUNT] = { 0, 16, 0, 16, 4 };
static const unsigned sig_shift_v6[DIM_COUNT] = { 0, 96, 0, 96, 4 };

/* A rule's boxes (one per address family it can match) with their hull and
 * signatures, to skip rules that cannot overlap without looking at boxes. */
struct rule_space {
	struct boxes boxes;
	u128 lo[DIM_COUNT], hi[DIM_COUNT];
	struct sig sig[DIM_COUNT];
	unsigned families; /* bit 0: IPv4 box present, bit 1: IPv6 */
	/* The source and destination zone numbers of all its boxes as bits
	 * (all ones when there are more than ZMASK_ZONES zone numbers): two rules
	 * meet only if these meet, and a rule is covered only if the earlier
	 * rules' masks together hold all of its own. */
	uint64_t zmask[2];
	bool names_both;   /* `from` and `to` both list zones */
	bool cross_tenant; /* it names a zone of one tenant and one of another */
};

/* What the search for overlapping earlier rules reads of every candidate,
 * kept apart and small (one cache line) so that the quadratic part of the
 * search streams through little memory: the zone masks, the scope, and the
 * hulls of the address and service dimensions squeezed to 64 bits by a
 * non-decreasing map (squeeze()), so that hulls that overlap still overlap
 * when squeezed. A candidate that passes is then tested on its full hull. */
enum { PRE_SRC_ADDR, PRE_DST_ADDR, PRE_SERVICE, PRE_DIMS };

struct pre {
	uint64_t zmask[2];
	uint64_t lo[PRE_DIMS], hi[PRE_DIMS];
	size_t tenant;
	uint8_t families;
	bool has_limit;
	bool names_both;
};

/* Earlier rules by signature bit, per dimension, to find the rules that
 * can overlap a rule without looking at every earlier one. */
struct postings {
	uint32_t *v;
	size_t n, cap;
};

struct sig_index {
	struct postings bit[DIM_COUNT][SIG_BITS];
	struct postings wild[DIM_COUNT];   /* rules whose signature is all ones */
	uint64_t wild_zmask[DIM_COUNT][2]; /* their zone masks, together */
};

struct shadow {
	const struct policy *p;
	struct sig_index *index;
	uint32_t *candidates;    /* earlier rules that may overlap the rule analysed */
	uint32_t *scratch;       /* as large, for merging into candidates */
	const struct box **over; /* scratch: boxes of candidates overlapping a box */
	size_t cap_over;
	struct policy_diags *d;
	struct rule_space *rules;
	struct pre *pre;       /* per rule */
	size_t universe_zones; /* zone numbers: zones, self, none */
	size_t cut_short;      /* rules whose analysis hit the cap */
	size_t first_cut_short;
	bool oom;
};

static void ivset_free(struct ivset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void box_free(struct box *b)
{
	for (int i = 0; i < DIM_COUNT; i++)
		ivset_free(&b->d[i]);
}

static void boxes_free(struct boxes *bs)
{
	for (size_t i = 0; i < bs->n; i++)
		box_free(&bs->v[i]);
	free(bs->v);
	bs->v = NULL;
	bs->n = bs->cap = 0;
}

static int boxes_push(struct boxes *bs, struct box *b)
{
	if (POLICY_GROW(bs->v, bs->cap, bs->n, 4))
		return -1;
	bs->v[bs->n++] = *b;
	return 0;
}

static int iv_cmp(const void *a, const void *b)
{
	const struct iv *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges overlapping or adjacent intervals in place. */
static void ivset_normalize(struct ivset *s)
{
	if (s->n < 2)
		return;
	bool sorted = true;
	for (size_t i = 1; i < s->n && sorted; i++)
		sorted = s->v[i - 1].lo <= s->v[i].lo;
	if (!sorted)
		qsort(s->v, s->n, sizeof(*s->v), iv_cmp);
	size_t o = 0;
	for (size_t i = 1; i < s->n; i++) {
		if (s->v[i].lo <= s->v[o].hi || s->v[i].lo - 1 == s->v[o].hi) {
			if (s->v[i].hi > s->v[o].hi)
				s->v[o].hi = s->v[i].hi;
		} else {
			s->v[++o] = s->v[i];
		}
	}
	s->n = o + 1;
}

static bool ivset_overlaps(const struct ivset *a, const struct ivset *b)
{
	size_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i].hi < b->v[j].lo)
			i++;
		else if (b->v[j].hi < a->v[i].lo)
			j++;
		else
			return true;
	}
	return false;
}

static int ivset_copy(struct ivset *dst, const struct ivset *src)
{
	dst->n = src->n;
	dst->v = NULL;
	if (!src->n)
		return 0;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (!dst->v)
		return -1;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	return 0;
}

static int ivset_intersect(struct ivset *out, const struct ivset *a, const struct ivset *b)
{
	out->n = 0;
	out->v = malloc((a->n + b->n + 1) * sizeof(*out->v));
	if (!out->v)
		return -1;
	size_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		u128 lo = a->v[i].lo > b->v[j].lo ? a->v[i].lo : b->v[j].lo;
		u128 hi = a->v[i].hi < b->v[j].hi ? a->v[i].hi : b->v[j].hi;
		if (lo <= hi)
			out->v[out->n++] = (struct iv){ lo, hi };
		if (a->v[i].hi < b->v[j].hi)
			i++;
		else
			j++;
	}
	return 0;
}

static int ivset_subtract(struct ivset *out, const struct ivset *a, const struct ivset *b)
{
	out->n = 0;
	out->v = malloc((a->n + b->n + 1) * sizeof(*out->v));
	if (!out->v)
		return -1;
	size_t j = 0;
	for (size_t i = 0; i < a->n; i++) {
		u128 lo = a->v[i].lo, hi = a->v[i].hi;
		bool done = false;
		while (j < b->n && b->v[j].hi < lo)
			j++;
		for (size_t k = j; k < b->n && b->v[k].lo <= hi; k++) {
			if (b->v[k].lo > lo)
				out->v[out->n++] = (struct iv){ lo, b->v[k].lo - 1 };
			if (b->v[k].hi >= hi) {
				done = true;
				break;
			}
			lo = b->v[k].hi + 1;
		}
		if (!done)
			out->v[out->n++] = (struct iv){ lo, hi };
	}
	return 0;
}

static bool box_overlaps(const struct box *a, const struct box *b)
{
	if (a->family != b->family)
		return false;
	for (int i = 0; i < DIM_COUNT; i++)
		if (!ivset_overlaps(&a->d[i], &b->d[i]))
			return false;
	return true;
}

/* Appends the pieces of a - b to `out` (a and b overlap). */
static int box_subtract(struct boxes *out, const struct box *a, const struct box *b)
{
	struct box rest;
	memset(&rest, 0, sizeof(rest));
	rest.family = a->family;
	for (int i = 0; i < DIM_COUNT; i++)
		if (ivset_copy(&rest.d[i], &a->d[i]))
			goto fail;
	for (int i = 0; i < DIM_COUNT; i++) {
		struct ivset diff, inter;
		if (ivset_subtract(&diff, &rest.d[i], &b->d[i]))
			goto fail;
		if (diff.n) {
			struct box piece;
			memset(&piece, 0, sizeof(piece));
			piece.family = a->family;
			piece.d[i] = diff;
			for (int k = 0; k < DIM_COUNT; k++) {
				if (k != i && ivset_copy(&piece.d[k], &rest.d[k])) {
					box_free(&piece);
					goto fail;
				}
			}
			if (boxes_push(out, &piece)) {
				box_free(&piece);
				goto fail;
			}
		} else {
			ivset_free(&diff);
		}
		if (ivset_intersect(&inter, &rest.d[i], &b->d[i]))
			goto fail;
		ivset_free(&rest.d[i]);
		rest.d[i] = inter;
	}
	box_free(&rest);
	return 0;
fail:
	box_free(&rest);
	return -1;
}

/* --- building a rule's boxes ----------------------------------------- */

static int ivset_add(struct ivset *s, u128 lo, u128 hi)
{
	struct iv *nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	s->v = nv;
	s->v[s->n++] = (struct iv){ lo, hi };
	return 0;
}

static u128 addr_value(const uint8_t *bytes, int family)
{
	u128 v = 0;
	for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
		v = v << 8 | bytes[i];
	return v;
}

static u128 family_max(int family)
{
	return family == AF_INET ? (u128)UINT32_MAX : ~(u128)0;
}

/* The endpoint's zone numbers. */
static int zone_dim(const struct shadow *s, const struct policy_endpoint *e, struct ivset *out)
{
	size_t self = s->p->n_zones;
	if (e->kind == POLICY_EP_SELF)
		return ivset_add(out, self, self);
	if (e->kind == POLICY_EP_ANY || !e->n_zones)
		return ivset_add(out, 0, s->universe_zones - 1);
	for (size_t i = 0; i < e->n_zones; i++)
		if (ivset_add(out, e->zones[i], e->zones[i]))
			return -1;
	ivset_normalize(out);
	return 0;
}

/* The endpoint's addresses of `family`; empty if it has addresses but none
 * of that family (the rule has no box for it). */
static int addr_dim(const struct policy_endpoint *e, int family, struct ivset *out)
{
	if (e->kind != POLICY_EP_MATCH || !e->addrs.n)
		return ivset_add(out, 0, family_max(family));
	/* room for all at once (ivset_add grows by one) */
	struct iv *v = realloc(out->v, (out->n + e->addrs.n) * sizeof(*v));
	if (!v)
		return -1;
	out->v = v;
	for (size_t i = 0; i < e->addrs.n; i++) {
		const struct policy_addr *a = &e->addrs.v[i];
		if (a->family == family)
			out->v[out->n++] =
			    (struct iv){ addr_value(a->lo, family), addr_value(a->hi, family) };
	}
	ivset_normalize(out);
	return 0;
}

static int term_dim(const struct policy_service_term *t, struct ivset *out)
{
	u128 base = (u128)t->l4proto << SERVICE_PROTO_SHIFT;
	if (!t->n_dports && !t->n_icmp_types)
		return ivset_add(out, base, base | 0xffff);
	for (size_t i = 0; i < t->n_dports; i++)
		if (ivset_add(out, base | t->dports[i].lo, base | t->dports[i].hi))
			return -1;
	for (size_t i = 0; i < t->n_icmp_types; i++)
		if (ivset_add(out, base | t->icmp_types[i], base | t->icmp_types[i]))
			return -1;
	return 0;
}

static int service_dim(const struct policy_rule *r, int family, struct ivset *out)
{
	if (!r->n_services)
		return ivset_add(out, 0, SERVICE_SPACE_END);
	for (size_t i = 0; i < r->n_services; i++) {
		const struct policy_service_term *t = &r->services[i];
		if ((t->l4proto == IPPROTO_ICMP && family != AF_INET) ||
		    (t->l4proto == IPPROTO_ICMPV6 && family != AF_INET6))
			continue;
		if (term_dim(t, out))
			return -1;
	}
	ivset_normalize(out);
	return 0;
}

static void sig_add(struct sig *sg, const struct ivset *set, unsigned shift)
{
	/* 64-bit golden-ratio multiplier (Knuth, TAOCP vol. 3, 6.4) */
	const uint64_t golden = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < set->n; i++) {
		u128 lo = set->v[i].lo >> shift, hi = set->v[i].hi >> shift;
		if (hi - lo >= SIG_MAX_BLOCKS) {
			memset(sg->w, 0xff, sizeof(sg->w));
			return;
		}
		for (u128 b = lo; b <= hi; b++) {
			uint64_t h = ((uint64_t)b ^ (uint64_t)(b >> 64)) * golden;
			unsigned bit = (unsigned)(h >> 56) % SIG_BITS;
			sg->w[bit / 64] |= 1ull << (bit % 64);
		}
	}
}

/* Whether endpoint e can match an address of `family`: not when it lists
 * addresses and none of them is of the family (addr_dim() would find the
 * dimension empty). */
static bool ep_has_family(const struct policy_endpoint *e, int family)
{
	if (e->kind != POLICY_EP_MATCH || !e->addrs.n)
		return true;
	for (size_t i = 0; i < e->addrs.n; i++)
		if (e->addrs.v[i].family == family)
			return true;
	return false;
}

static int rule_box(const struct shadow *s, const struct policy_rule *r, int family,
		    struct rule_space *rs)
{
	/* a rule of the other family only: no box, before allocating its dimensions */
	if (!ep_has_family(&r->from, family) || !ep_has_family(&r->to, family))
		return 0;
	struct box b;
	memset(&b, 0, sizeof(b));
	b.family = family;
	if (zone_dim(s, &r->from, &b.d[DIM_SRC_ZONE]) || zone_dim(s, &r->to, &b.d[DIM_DST_ZONE]) ||
	    addr_dim(&r->from, family, &b.d[DIM_SRC_ADDR]) ||
	    addr_dim(&r->to, family, &b.d[DIM_DST_ADDR]) ||
	    service_dim(r, family, &b.d[DIM_SERVICE]))
		goto fail;
	for (int i = 0; i < DIM_COUNT; i++) {
		if (!b.d[i].n) { /* matches nothing of this family */
			box_free(&b);
			return 0;
		}
	}
	for (int i = 0; i < DIM_COUNT; i++) {
		u128 lo = b.d[i].v[0].lo, hi = b.d[i].v[b.d[i].n - 1].hi;
		if (!rs->boxes.n || lo < rs->lo[i])
			rs->lo[i] = lo;
		if (!rs->boxes.n || hi > rs->hi[i])
			rs->hi[i] = hi;
	}
	for (int i = 0; i < DIM_COUNT; i++)
		sig_add(&rs->sig[i], &b.d[i],
			family == AF_INET ? sig_shift_v4[i] : sig_shift_v6[i]);
	static const int zone_dims[2] = { DIM_SRC_ZONE, DIM_DST_ZONE };
	for (int z = 0; z < 2; z++) {
		const struct ivset *zs = &b.d[zone_dims[z]];
		if (s->universe_zones > ZMASK_ZONES)
			rs->zmask[z] = ~0ull;
		for (size_t k = 0; s->universe_zones <= ZMASK_ZONES && k < zs->n; k++)
			for (u128 n = zs->v[k].lo; n <= zs->v[k].hi; n++)
				rs->zmask[z] |= 1ull << n;
	}
	if (boxes_push(&rs->boxes, &b))
		goto fail;
	rs->families |= family == AF_INET ? 1u : 2u;
	return 0;
fail:
	box_free(&b);
	return -1;
}

static bool sigs_meet(const struct rule_space *a, const struct rule_space *b)
{
	for (int i = 0; i < DIM_COUNT; i++) {
		uint64_t any = 0;
		for (int w = 0; w < SIG_WORDS; w++)
			any |= a->sig[i].w[w] & b->sig[i].w[w];
		if (!any)
			return false;
	}
	return true;
}

static bool hulls_overlap(const struct rule_space *a, const struct rule_space *b)
{
	if (!(a->families & b->families))
		return false;
	for (int i = 0; i < DIM_COUNT; i++)
		if (a->hi[i] < b->lo[i] || b->hi[i] < a->lo[i])
			return false;
	return sigs_meet(a, b);
}

/* Exact below 2^63 (IPv4 addresses, services), coarse above (IPv6), and
 * never decreasing, so [squeeze(lo), squeeze(hi)] holds squeeze(x) for
 * every x of [lo, hi]. */
static uint64_t squeeze(u128 x)
{
	if (x < ((u128)1 << 63))
		return (uint64_t)x;
	return (1ull << 63) + (uint64_t)(x >> 65);
}

static void pre_fill(struct pre *pr, const struct policy_rule *r, const struct rule_space *rs)
{
	static const int dims[PRE_DIMS] = { DIM_SRC_ADDR, DIM_DST_ADDR, DIM_SERVICE };
	pr->zmask[0] = rs->zmask[0];
	pr->zmask[1] = rs->zmask[1];
	for (int k = 0; k < PRE_DIMS; k++) {
		pr->lo[k] = squeeze(rs->lo[dims[k]]);
		pr->hi[k] = squeeze(rs->hi[dims[k]]);
	}
	pr->tenant = r->tenant;
	pr->families = (uint8_t)rs->families;
	pr->has_limit = r->has_limit;
	pr->names_both = rs->names_both;
}

/* A necessary condition for `o` to overlap `me` (and be a candidate of
 * it): as analyse_rule's test, on the squeezed hulls. */
static bool pre_meets(const struct pre *me, const struct pre *o, bool cross_tenant)
{
	if (!(me->zmask[0] & o->zmask[0]) || !(me->zmask[1] & o->zmask[1]) ||
	    me->tenant != o->tenant || o->has_limit || !(me->families & o->families) ||
	    (cross_tenant && !o->names_both))
		return false;
	for (int k = 0; k < PRE_DIMS; k++)
		if (me->hi[k] < o->lo[k] || o->hi[k] < me->lo[k])
			return false;
	return true;
}

/* --- the analysis ---------------------------------------------------- */

/* Subtracts every box of `by` from `remaining`. Returns 1 if that changed
 * anything, 0 if not, -1 on ENOMEM. */
static int subtract_rule(struct boxes *remaining, const struct rule_space *by)
{
	int changed = 0;
	for (size_t e = 0; e < by->boxes.n; e++) {
		struct boxes next = { 0 };
		for (size_t i = 0; i < remaining->n; i++) {
			struct box *r = &remaining->v[i];
			if (box_overlaps(r, &by->boxes.v[e])) {
				changed = 1;
				if (box_subtract(&next, r, &by->boxes.v[e]))
					goto fail;
			} else {
				if (boxes_push(&next, r))
					goto fail;
				memset(r, 0, sizeof(*r)); /* moved */
			}
		}
		boxes_free(remaining);
		*remaining = next;
		continue;
	fail:
		boxes_free(&next);
		return -1;
	}
	return changed;
}

static void report(struct shadow *s, size_t rule, const size_t *by, size_t n_by)
{
	const struct policy_rule *r = &s->p->rules[rule];
	const struct policy_rule *last = &s->p->rules[by[n_by - 1]];
	if (n_by == 1) {
		policy_error(s->d, &r->loc, "rule is shadowed by the rule at %s:%u", last->loc.file,
			     last->loc.line);
		policy_note(s->d, &last->loc, "this earlier rule matches every packet of it");
		return;
	}
	policy_error(s->d, &r->loc,
		     "rule is shadowed by the rule at %s:%u together with %zu earlier rule%s",
		     last->loc.file, last->loc.line, n_by - 1, n_by == 2 ? "" : "s");
	for (size_t i = 0; i < n_by && i < MAX_NAMED_SHADOWERS; i++)
		policy_note(s->d, &s->p->rules[by[i]].loc, "this earlier rule matches part of it");
}

static int copy_boxes(struct boxes *dst, const struct boxes *src)
{
	for (size_t k = 0; k < src->n; k++) {
		struct box copy;
		memset(&copy, 0, sizeof(copy));
		copy.family = src->v[k].family;
		for (int dd = 0; dd < DIM_COUNT; dd++) {
			if (ivset_copy(&copy.d[dd], &src->v[k].d[dd])) {
				box_free(&copy);
				return -1;
			}
		}
		if (boxes_push(dst, &copy)) {
			box_free(&copy);
			return -1;
		}
	}
	return 0;
}

/* Does rule `by` alone cover rule `i`? (To name one rule instead of a union
 * when one suffices.) 1 yes, 0 no, -1 ENOMEM. */
static int covers_alone(const struct shadow *s, size_t i, size_t by)
{
	struct boxes remaining = { 0 };
	int r = copy_boxes(&remaining, &s->rules[i].boxes);
	if (!r)
		r = subtract_rule(&remaining, &s->rules[by]);
	if (r >= 0)
		r = remaining.n == 0;
	boxes_free(&remaining);
	return r;
}

static int postings_add(struct postings *p, uint32_t rule)
{
	if (POLICY_GROW(p->v, p->cap, p->n, 8))
		return -1;
	p->v[p->n++] = rule;
	return 0;
}

static bool sig_is_wild(const struct sig *sg)
{
	for (int w = 0; w < SIG_WORDS; w++)
		if (sg->w[w] != ~0ull)
			return false;
	return true;
}

static int index_add(struct shadow *s, uint32_t rule)
{
	const struct rule_space *rs = &s->rules[rule];
	for (int d = 0; d < DIM_COUNT; d++) {
		if (sig_is_wild(&rs->sig[d])) {
			if (postings_add(&s->index->wild[d], rule))
				return -1;
			s->index->wild_zmask[d][0] |= rs->zmask[0];
			s->index->wild_zmask[d][1] |= rs->zmask[1];
			continue;
		}
		for (int w = 0; w < SIG_WORDS; w++)
			for (uint64_t bits = rs->sig[d].w[w]; bits; bits &= bits - 1)
				if (postings_add(&s->index->bit[d][w * 64 + __builtin_ctzll(bits)],
						 rule))
					return -1;
	}
	return 0;
}

/* Merges the ascending list `add` into the ascending, duplicate-free
 * candidates (n of them) through the scratch array; returns the new count. */
static size_t merge_candidates(struct shadow *s, size_t n, const struct postings *add)
{
	size_t i = 0, k = 0, out = 0;
	while (i < n || k < add->n) {
		uint32_t v;
		if (k == add->n || (i < n && s->candidates[i] < add->v[k]))
			v = s->candidates[i++];
		else if (i == n || add->v[k] < s->candidates[i])
			v = add->v[k++];
		else {
			v = s->candidates[i++];
			k++;
		}
		s->scratch[out++] = v;
	}
	uint32_t *swap = s->candidates;
	s->candidates = s->scratch;
	s->scratch = swap;
	return out;
}

/* The dimension where the rule's signature is the most selective (the
 * fewest earlier rules share a bit with it), or -1 if it is all ones in
 * every dimension. */
static int best_dim(const struct shadow *s, const struct rule_space *me)
{
	int best = -1;
	size_t best_cost = SIZE_MAX;
	for (int d = 0; d < DIM_COUNT; d++) {
		if (sig_is_wild(&me->sig[d]))
			continue;
		size_t cost = s->index->wild[d].n;
		for (int w = 0; w < SIG_WORDS; w++)
			for (uint64_t bits = me->sig[d].w[w]; bits; bits &= bits - 1)
				cost += s->index->bit[d][w * 64 + __builtin_ctzll(bits)].n;
		if (cost < best_cost) {
			best_cost = cost;
			best = d;
		}
	}
	return best;
}

/* The earlier rules sharing a bit of dimension `best` with rule `i`,
 * ascending, with (`with_wild`) or without those whose signature is all
 * ones there (or all earlier rules when best < 0). Every posting list is
 * ascending (rules are indexed in order), so they are merged, not sorted.
 * Returns the count. */
static size_t gather_candidates(struct shadow *s, uint32_t i, int best, bool with_wild)
{
	const struct rule_space *me = &s->rules[i];
	size_t n = 0;
	if (best < 0) { /* matches everything in every dimension: all earlier rules */
		for (uint32_t j = 0; j < i; j++)
			s->candidates[n++] = j;
		return n;
	}
	if (with_wild)
		n = merge_candidates(s, 0, &s->index->wild[best]);
	for (int w = 0; w < SIG_WORDS; w++)
		for (uint64_t bits = me->sig[best].w[w]; bits; bits &= bits - 1)
			n = merge_candidates(s, n,
					     &s->index->bit[best][w * 64 + __builtin_ctzll(bits)]);
	return n;
}

static size_t boxes_intervals(const struct boxes *bs)
{
	size_t n = 0;
	for (size_t i = 0; i < bs->n; i++)
		for (int d = 0; d < DIM_COUNT; d++)
			n += bs->v[i].d[d].n;
	return n;
}

/* A necessary condition for coverage, cheap to refute: in every dimension,
 * the earlier rules that overlap a box of the rule must together cover that
 * box's extent. (If the rule is covered, so is each of its projections.)
 * Returns 1 if coverage is still possible, 0 if not, -1 on ENOMEM. The
 * cheap dimensions (zones, services) are tried before the addresses. */
static int projections_cover(struct shadow *s, const struct rule_space *me, const uint32_t *cands,
			     size_t n_cands)
{
	static const int order[DIM_COUNT] = { DIM_SRC_ZONE, DIM_DST_ZONE, DIM_SERVICE, DIM_SRC_ADDR,
					      DIM_DST_ADDR };
	for (size_t k = 0; k < me->boxes.n; k++) {
		const struct box *b = &me->boxes.v[k];
		/* the earlier boxes that overlap this one, found once for all dimensions */
		size_t n_over = 0;
		for (size_t c = 0; c < n_cands; c++) {
			const struct boxes *eb = &s->rules[cands[c]].boxes;
			for (size_t e = 0; e < eb->n; e++) {
				if (!box_overlaps(b, &eb->v[e]))
					continue;
				if (POLICY_GROW(s->over, s->cap_over, n_over, 64))
					return -1;
				s->over[n_over++] = &eb->v[e];
			}
		}
		for (int o = 0; o < DIM_COUNT; o++) {
			int d = order[o];
			size_t total = 0;
			for (size_t e = 0; e < n_over; e++)
				total += s->over[e]->d[d].n;
			struct ivset u = { .v = malloc((total + 1) * sizeof(*u.v)) };
			if (!u.v)
				return -1;
			for (size_t e = 0; e < n_over; e++) {
				memcpy(u.v + u.n, s->over[e]->d[d].v,
				       s->over[e]->d[d].n * sizeof(*u.v));
				u.n += s->over[e]->d[d].n;
			}
			ivset_normalize(&u);
			struct ivset rest;
			int e = ivset_subtract(&rest, &b->d[d], &u);
			ivset_free(&u);
			size_t left = rest.n;
			ivset_free(&rest);
			if (e)
				return -1;
			if (left)
				return 0;
		}
	}
	return 1;
}

static int analyse_rule(struct shadow *s, size_t i)
{
	const struct rule_space *me = &s->rules[i];
	struct boxes remaining = { 0 };
	size_t *by = NULL, n_by = 0;
	int result = 0;
	uint64_t zcover[2] = { 0, 0 };
	const struct pre *mp = &s->pre[i];
	int best = best_dim(s, me);
	/* A bound first, without the rules that are wild where the rule is
	 * most selective (they are candidates of every rule there; a rule
	 * under a few broad rules would test them all): the zones of the other
	 * candidates that pass the small test, and of all the wild ones. If
	 * even that does not cover the rule's zones, the tests below cannot. */
	if (best >= 0) {
		size_t n_some = gather_candidates(s, (uint32_t)i, best, false);
		zcover[0] = s->index->wild_zmask[best][0];
		zcover[1] = s->index->wild_zmask[best][1];
		for (size_t c = 0; c < n_some; c++) {
			const struct pre *o = &s->pre[s->candidates[c]];
			if (pre_meets(mp, o, me->cross_tenant)) {
				zcover[0] |= o->zmask[0];
				zcover[1] |= o->zmask[1];
			}
		}
		if ((me->zmask[0] & ~zcover[0]) || (me->zmask[1] & ~zcover[1]))
			return 0;
		zcover[0] = zcover[1] = 0;
	}
	size_t n_all = gather_candidates(s, (uint32_t)i, best, true), n_candidates = 0;
	/* the zones first: a bit test settles most rules that are not covered,
	 * and the rules that pass the small test are a superset of those that
	 * pass the full one, so if their zones do not cover the rule's, the
	 * full test cannot change that */
	for (size_t c = 0; c < n_all; c++) {
		const struct pre *o = &s->pre[s->candidates[c]];
		if (pre_meets(mp, o, me->cross_tenant)) {
			s->candidates[n_candidates++] = s->candidates[c];
			zcover[0] |= o->zmask[0];
			zcover[1] |= o->zmask[1];
		}
	}
	if ((me->zmask[0] & ~zcover[0]) || (me->zmask[1] & ~zcover[1]))
		return 0;
	n_all = n_candidates;
	n_candidates = 0;
	zcover[0] = zcover[1] = 0;
	for (size_t c = 0; c < n_all; c++) {
		uint32_t j = s->candidates[c];
		const struct rule_space *o = &s->rules[j];
		if (hulls_overlap(me, o)) {
			s->candidates[n_candidates++] = j;
			zcover[0] |= o->zmask[0];
			zcover[1] |= o->zmask[1];
		}
	}
	bool zones_covered = !(me->zmask[0] & ~zcover[0]) && !(me->zmask[1] & ~zcover[1]);
	if (!zones_covered || !n_candidates)
		return 0;
	if (copy_boxes(&remaining, &me->boxes))
		goto oom;
	int possible = projections_cover(s, me, s->candidates, n_candidates);
	if (possible < 0)
		goto oom;
	if (!possible)
		goto out;
	for (size_t c = 0; c < n_candidates && remaining.n; c++) {
		size_t j = s->candidates[c];
		int changed = subtract_rule(&remaining, &s->rules[j]);
		if (changed < 0)
			goto oom;
		if (changed) {
			size_t *nb = realloc(by, (n_by + 1) * sizeof(*nb));
			if (!nb)
				goto oom;
			by = nb;
			by[n_by++] = j;
		}
		if (remaining.n > POLICY_SHADOW_MAX_BOXES ||
		    boxes_intervals(&remaining) > POLICY_SHADOW_MAX_INTERVALS) {
			if (!s->cut_short++)
				s->first_cut_short = i;
			goto out;
		}
	}
	if (!remaining.n && n_by) {
		if (n_by > 1 && covers_alone(s, i, by[n_by - 1]) == 1) {
			by[0] = by[n_by - 1];
			n_by = 1;
		}
		report(s, i, by, n_by);
		result = -1;
	}
out:
	boxes_free(&remaining);
	free(by);
	return result;
oom:
	s->oom = true;
	result = policy_error(s->d, NULL, "out of memory");
	goto out;
}

static bool names_tenant_zone(const struct policy *p, const struct policy_endpoint *e,
			      size_t other_than, size_t *tenant)
{
	for (size_t i = 0; e->kind == POLICY_EP_MATCH && i < e->n_zones; i++) {
		size_t t = p->zones[e->zones[i]].tenant;
		if (t != POLICY_NONE && t != other_than) {
			*tenant = t;
			return true;
		}
	}
	return false;
}

/* Lowering lets a rule govern traffic between two tenants' zones only if it
 * names both zones (`any` never joins tenants). So a rule that names zones
 * of two tenants can only be covered, on those pairs, by rules that name
 * zones on both sides; the boxes alone would let `block from any to any`
 * cover it. */
static void note_tenant_pairs(const struct policy *p, const struct policy_rule *r,
			      struct rule_space *rs)
{
	rs->names_both = r->from.kind == POLICY_EP_MATCH && r->from.n_zones &&
			 r->to.kind == POLICY_EP_MATCH && r->to.n_zones;
	size_t tf, tt;
	for (size_t i = 0; rs->names_both && i < r->from.n_zones && !rs->cross_tenant; i++) {
		tf = p->zones[r->from.zones[i]].tenant;
		if (tf != POLICY_NONE && names_tenant_zone(p, &r->to, tf, &tt))
			rs->cross_tenant = true;
	}
}

int policy_shadow_check(const struct policy *p, struct policy_diags *d)
{
	struct shadow s = { .p = p, .d = d, .universe_zones = p->n_zones + 2 };
	int result = 0;
	s.rules = calloc(p->n_rules + 1, sizeof(*s.rules));
	s.index = calloc(1, sizeof(*s.index));
	s.candidates = calloc(p->n_rules + 1, sizeof(*s.candidates));
	s.scratch = calloc(p->n_rules + 1, sizeof(*s.scratch));
	s.pre = calloc(p->n_rules + 1, sizeof(*s.pre));
	if (!s.rules || !s.index || !s.candidates || !s.scratch || !s.pre) {
		result = policy_error(d, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		if (rule_box(&s, &p->rules[i], AF_INET, &s.rules[i]) ||
		    rule_box(&s, &p->rules[i], AF_INET6, &s.rules[i])) {
			result = policy_error(d, NULL, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		note_tenant_pairs(p, &p->rules[i], &s.rules[i]);
		pre_fill(&s.pre[i], &p->rules[i], &s.rules[i]);
	}
	for (size_t i = 0; i < p->n_rules && !s.oom; i++) {
		if (!s.rules[i].boxes.n)
			continue;
		if (analyse_rule(&s, i))
			result = -1;
		/* a rule with a limit does not always match: it covers nothing */
		if (!p->rules[i].has_limit && index_add(&s, (uint32_t)i)) {
			result = policy_error(d, NULL, "out of memory");
			goto out;
		}
	}
	if (s.cut_short)
		policy_note(d, &p->rules[s.first_cut_short].loc,
			    "shadow analysis of this rule%s was cut short (more than %d pieces or "
			    "%d intervals of uncovered space); it may be shadowed without a report",
			    s.cut_short > 1 ? " and others" : "", POLICY_SHADOW_MAX_BOXES,
			    POLICY_SHADOW_MAX_INTERVALS);
out:
	for (size_t i = 0; s.rules && i < p->n_rules; i++)
		boxes_free(&s.rules[i].boxes);
	free(s.rules);
	for (int dd = 0; s.index && dd < DIM_COUNT; dd++) {
		free(s.index->wild[dd].v);
		for (unsigned b = 0; b < SIG_BITS; b++)
			free(s.index->bit[dd][b].v);
	}
	free(s.index);
	free(s.candidates);
	free(s.scratch);
	free(s.pre);
	free(s.over);
	return result;
}
