/* The IR: the nftables objects that hvgate wants in the kernel, as plain data.
 *
 * Lowering (policy/lower.c) builds it from a checked struct policy, the
 * optimizer rewrites it, and two backends translate it, each mechanically:
 *   - policy/emit_nft.c:   nft text (`nft -f` accepts it),
 *   - policy/emit_nftnl.c: libnftnl objects in one netlink batch.
 * Both must produce the same kernel state: a backend makes no decisions of its
 * own; every dependency (meta nfproto before ip saddr, meta l4proto before a
 * port) is explicit in the IR.
 *
 * Values are stored exactly as the kernel register holds them (see the
 * byte order of each field in ir_field_desc()): addresses and ports in network
 * order, interface names NUL-padded to IFNAMSIZ, marks/zones/ct state in host
 * order.
 *
 * Ownership: an ir_table owns everything reachable from it; ir_table_free().
 * Error convention: as libhvpolicy (policy/diag.h).
 */
#ifndef HVGATE_POLICY_IR_H
#define HVGATE_POLICY_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/diag.h"

#define IR_TABLE_NAME "hvgate"
#define IR_VALUE_MAX  16 /* IFNAMSIZ and an IPv6 address: the largest field */
#define IR_CONCAT_MAX 4  /* fields in one concatenation */
#define IR_NAME_MAX   64 /* NFT_NAME_MAXLEN (include/uapi/linux/netfilter/nf_tables.h) is 256 */

enum ir_field {
	IR_META_NFPROTO, /* u8: NFPROTO_IPV4 / NFPROTO_IPV6 */
	IR_META_L4PROTO, /* u8: IPPROTO_* */
	IR_META_IIFNAME, /* char[16] */
	IR_META_OIFNAME, /* char[16] */
	IR_META_MARK,    /* u32 host order */
	IR_IP_SADDR,     /* 4 bytes network order */
	IR_IP_DADDR,
	IR_IP6_SADDR, /* 16 bytes network order */
	IR_IP6_DADDR,
	IR_TH_SPORT,         /* u16 network order (transport header offset 0) */
	IR_TH_DPORT,         /* u16 network order (transport header offset 2) */
	IR_ICMP_TYPE,        /* u8 (transport header offset 0), with l4proto icmp */
	IR_ICMPV6_TYPE,      /* u8, with l4proto ipv6-icmp */
	IR_CT_STATE,         /* u32 host order bitmask NF_CT_STATE_BIT(...) */
	IR_CT_ZONE,          /* u16 host order */
	IR_CT_MARK,          /* u32 host order */
	IR_CT_ORIGINAL_ZONE, /* u16 host order; `ct original zone`: the zone of the original
			      * direction only (replies are looked up in the default zone) */
	IR_CT_LABEL,         /* 16 bytes: the connlabel bitmap as the register holds it (bit n
			      * in byte n / 8, value 1 << n % 8 on little-endian hosts); only
			      * single bits are tested (IR_M_BITS) and set (IR_S_SET_VALUE),
			      * as `ct label N` / `ct label set N` */
	IR_CT_DIRECTION,     /* u8: IP_CT_DIR_ORIGINAL (0) or IP_CT_DIR_REPLY (1) */
	IR_FLOW_HASH,        /* u32 host order: `symhash mod IR_FLOW_HASH_MOD`, the kernel's
			      * symmetric hash of the packet's addresses, protocol and ports */
	IR_TCP_FLAGS,        /* u8 (transport header offset 13), with l4proto tcp; only single
			      * bits are tested (IR_M_BITS) */
	IR_FIELD_COUNT
};

/* The values of IR_FLOW_HASH: 0 .. IR_FLOW_HASH_MOD - 1. As many as the
 * fast path has workers at most (appliance/fastpath/fastpath.h), so that
 * ranges of it divide flows among any number of them. */
#define IR_FLOW_HASH_MOD 64

enum ir_field_type {
	IR_T_U8,
	IR_T_U16_NET,
	IR_T_U16_HOST,
	IR_T_U32_HOST,
	IR_T_IPV4,
	IR_T_IPV6,
	IR_T_IFNAME,
	IR_T_NFPROTO,
	IR_T_L4PROTO,
	IR_T_ICMP_TYPE,
	IR_T_ICMPV6_TYPE,
	IR_T_CT_STATE,
	IR_T_PORT,
	IR_T_MARK,
	IR_T_CT_LABEL,
	IR_T_CT_DIR
};

/* What a backend needs to know about a field: its nft text, its set key type
 * name and how to load it (meta key, payload base/offset, ct key). */
struct ir_field_desc {
	const char *nft;      /* "ip saddr", "iifname", "th dport" */
	const char *set_type; /* "ipv4_addr", "ifname", "inet_service", ... */
	enum ir_field_type type;
	uint8_t len; /* bytes in the register */
	enum { IR_LOAD_META, IR_LOAD_PAYLOAD, IR_LOAD_CT, IR_LOAD_HASH } load;
	uint32_t key;     /* NFT_META_* / NFT_CT_* / IR_LOAD_HASH: the modulus */
	uint32_t base;    /* NFT_PAYLOAD_*_HEADER */
	uint32_t offset;  /* bytes into that header */
	bool ct_original; /* IR_LOAD_CT with direction IP_CT_DIR_ORIGINAL */
};

const struct ir_field_desc *ir_field_desc(enum ir_field f);

struct ir_value {
	uint8_t len;
	uint8_t data[IR_VALUE_MAX];
};

enum ir_verdict_kind {
	IR_V_NONE, /* continue with the next rule */
	IR_V_ACCEPT,
	IR_V_DROP,
	IR_V_RETURN,
	IR_V_JUMP,
	IR_V_GOTO,
};

struct ir_verdict {
	enum ir_verdict_kind kind;
	char chain[IR_NAME_MAX]; /* JUMP / GOTO */
};

struct ir_set_elem {
	struct ir_value key[IR_CONCAT_MAX]; /* one per key field */
	struct ir_value
	    key_end[IR_CONCAT_MAX]; /* interval sets: inclusive end; len 0 = same as key */
	struct ir_verdict verdict;  /* verdict maps */
	struct ir_value data;       /* data maps (ct zone, mark) */
	uint64_t timeout_ms;        /* 0: the set's default */
};

#define IR_SET_INTERVAL  (1u << 0)
#define IR_SET_CONSTANT  (1u << 1)
#define IR_SET_ANONYMOUS (1u << 2) /* inline in its one rule; kernel names it __set%d / __map%d */
#define IR_SET_TIMEOUT   (1u << 3)
#define IR_SET_DYNAMIC                                                                             \
	(1u << 4) /* updated from the control plane (block lists);                                 \
		   * a marker for the daemon, NOT the kernel's                                     \
		   * NFT_SET_EVAL: backends send no flag for it */

enum ir_set_data { IR_DATA_NONE, IR_DATA_VERDICT, IR_DATA_VALUE };

struct ir_set {
	char name[IR_NAME_MAX]; /* anonymous: a placeholder the backends replace */
	enum ir_field key[IR_CONCAT_MAX];
	size_t n_key;
	uint32_t flags;
	enum ir_set_data data;
	enum ir_field data_field; /* IR_DATA_VALUE: type of the data (IR_CT_ZONE, IR_META_MARK) */
	uint64_t timeout_ms;      /* IR_SET_TIMEOUT default */
	/* Elements the kernel should expect (NFTA_SET_DESC_SIZE, `size N`), so
	 * that it sizes its hash table once instead of growing it while the
	 * batch fills it; the kernel also takes it as the most the set may
	 * hold. 0: none. Set by the optimizer for large constant sets. */
	uint32_t size;
	struct ir_set_elem *elems;
	size_t n_elems, cap_elems;
	char comment[128];
	struct policy_loc loc; /* the policy construct that made it, for errors */
};

enum ir_match_kind {
	IR_M_CMP,    /* field OP value; IFNAME values may be a wildcard prefix */
	IR_M_PREFIX, /* address field in value/prefix_len (bitwise + cmp) */
	IR_M_RANGE,  /* field in [value, value_end] (range expression) */
	IR_M_LOOKUP, /* fields (concatenated) in @set */
	IR_M_BITS,   /* op EQ: (field & value) != 0, e.g. ct state established,related;
		      * op NEQ: (field & value) == 0, e.g. ct mark and 0x1 == 0 */
};

enum ir_cmp_op { IR_OP_EQ, IR_OP_NEQ };

struct ir_match {
	enum ir_match_kind kind;
	enum ir_field field[IR_CONCAT_MAX]; /* LOOKUP uses n_field; others field[0] */
	size_t n_field;
	enum ir_cmp_op op; /* CMP, RANGE, LOOKUP (NEQ: not in set) */
	struct ir_value value;
	struct ir_value value_end; /* RANGE */
	uint8_t prefix_len;        /* PREFIX */
	bool wildcard;             /* CMP on IFNAME: match value as a prefix ("tap-*") */
	size_t set;                /* LOOKUP: index into ir_table.sets */
};

enum ir_stmt_kind {
	IR_S_COUNTER,
	IR_S_LOG,          /* log prefix "..." group N */
	IR_S_LIMIT,        /* limit rate N/unit burst B packets */
	IR_S_VMAP,         /* fields vmap @set (verdict map) */
	IR_S_SET_FROM_MAP, /* target set fields map @set (e.g. ct zone set iifname map @m) */
	IR_S_SET_VALUE,    /* target set value (e.g. meta mark set 0x1) */
	IR_S_REJECT,       /* reject with tcp reset / icmpx port-unreachable */
	IR_S_NAT,          /* snat / dnat / masquerade */
	IR_S_NOTRACK,
	IR_S_QUEUE, /* to user space (fast path): native queue or xt NFQUEUE */
};

enum ir_reject_kind {
	IR_REJECT_TCP_RESET,
	IR_REJECT_ICMPX_PORT_UNREACH,
	IR_REJECT_ICMPX_ADMIN_PROHIBITED
};
enum ir_rate_unit { IR_PER_SECOND, IR_PER_MINUTE, IR_PER_HOUR };
enum ir_nat_kind { IR_NAT_SNAT, IR_NAT_DNAT, IR_NAT_MASQUERADE };

struct ir_nat {
	enum ir_nat_kind kind;
	uint8_t family;                   /* NFPROTO_IPV4 / NFPROTO_IPV6 */
	struct ir_value addr_lo, addr_hi; /* len 0: none (masquerade) */
	uint16_t port_lo, port_hi;        /* host order; 0: keep */
	bool netmap;                      /* 1:1 prefix mapping (NF_NAT_RANGE_NETMAP) */
	bool random_fully;
};

struct ir_stmt {
	enum ir_stmt_kind kind;
	/* LOG */
	char log_prefix[128];
	int log_group; /* NFLOG group; -1: kernel log */
	/* LIMIT */
	uint64_t rate;
	enum ir_rate_unit unit;
	uint32_t burst;
	/* VMAP, SET_FROM_MAP: key fields and map */
	enum ir_field field[IR_CONCAT_MAX];
	size_t n_field;
	size_t set;
	/* SET_FROM_MAP, SET_VALUE: what is written (IR_CT_ZONE, IR_META_MARK, IR_CT_MARK) */
	enum ir_field target;
	struct ir_value value;
	/* SET_VALUE of IR_META_MARK: nonzero keeps the bits of the mark it
	 * names: mark = (mark & keep_mask) | value (meta mark set meta mark
	 * & KEEP | VALUE); 0: mark = value. */
	uint32_t keep_mask;
	/* REJECT */
	enum ir_reject_kind reject;
	/* NAT */
	struct ir_nat nat;
	/* QUEUE */
	uint16_t queue_num, queue_count;
	bool queue_bypass;
};

struct ir_rule {
	struct ir_match *matches;
	size_t n_matches;
	struct ir_stmt *stmts; /* in order, before the verdict */
	size_t n_stmts;
	struct ir_verdict verdict;
	char comment[128];     /* the policy rule id; empty for generated glue */
	struct policy_loc loc; /* the policy construct, for kernel errors */
};

enum ir_hook {
	IR_HOOK_NONE,
	IR_HOOK_PREROUTING,
	IR_HOOK_INPUT,
	IR_HOOK_FORWARD,
	IR_HOOK_OUTPUT,
	IR_HOOK_POSTROUTING
};
enum ir_chain_type { IR_CHAIN_FILTER, IR_CHAIN_NAT, IR_CHAIN_ROUTE };

struct ir_chain {
	char name[IR_NAME_MAX];
	enum ir_hook hook; /* NONE: a regular chain */
	enum ir_chain_type type;
	int priority;                /* NF_IP_PRI_* */
	enum ir_verdict_kind policy; /* base chains: IR_V_ACCEPT or IR_V_DROP */
	struct ir_rule *rules;
	size_t n_rules, cap_rules;
	char comment[128];
};

struct ir_table {
	uint8_t family; /* NFPROTO_INET */
	char name[IR_NAME_MAX];
	/* Table comment (userdata): the daemon stores "hvgate rev=ID hash=HEX" so a
	 * restart can tell that the kernel already runs this exact ruleset. */
	char comment[128];
	struct ir_chain *chains;
	size_t n_chains, cap_chains;
	struct ir_set *sets;
	size_t n_sets, cap_sets;
};

/* Construction helpers. They return NULL / -1 only on ENOMEM. Returned
 * pointers stay valid until the next add of the same kind (arrays grow). */
struct ir_table *ir_table_new(const char *name);
void ir_table_free(struct ir_table *t);
struct ir_chain *ir_chain_add(struct ir_table *t, const char *name);
struct ir_chain *ir_chain_find(struct ir_table *t, const char *name);
struct ir_rule *ir_rule_add(struct ir_chain *c);
struct ir_match *ir_match_add(struct ir_rule *r);
struct ir_stmt *ir_stmt_add(struct ir_rule *r);
size_t ir_set_add(struct ir_table *t, const char *name); /* (size_t)-1 on ENOMEM */
struct ir_set_elem *ir_set_elem_add(struct ir_set *s);
/* Makes room for n more elements at once (a set whose size is known up
 * front grows once instead of doubling). Returns 0 or -1 on ENOMEM. */
int ir_set_reserve(struct ir_set *s, size_t n);

/* Value helpers. */
struct ir_value ir_value_u8(uint8_t v);
struct ir_value ir_value_u16_net(uint16_t host_order);
struct ir_value ir_value_u32(uint32_t host_order);
struct ir_value ir_value_ifname(const char *name); /* trailing '*' stripped */
struct ir_value ir_value_addr(const uint8_t *bytes, int family);
struct ir_value ir_value_ct_label(unsigned bit); /* the bitmap with only `bit` set */
/* The bit of a label value that has exactly one bit set; -1 otherwise. */
int ir_value_ct_label_bit(const struct ir_value *v);

/* Frees a rule's matches and statements and zeroes it (optimizer). */
void ir_rule_clear(struct ir_rule *r);

/* Puts a set into canonical form: elements sorted by key; for a set without
 * data (not a map) also duplicates removed, and for IR_SET_INTERVAL sets of
 * addresses or ports overlapping and adjacent intervals merged
 * (interface-name intervals, which stand for wildcards, are only
 * de-duplicated). Maps are only sorted: their keys must already be disjoint. Lowering and the
 * optimizer call it so that the kernel never sees overlapping elements, which it refuses (EEXIST).
 * Returns 0 or -1 on ENOMEM. */
int ir_set_normalize(struct ir_set *s);

/* The inclusive end of an element's first key (key_end, or key when key_end
 * is empty). */
const struct ir_value *ir_elem_end(const struct ir_set_elem *e);

/* The wildcard interface pattern "prefix*" as an interval: key is the
 * prefix NUL-padded, key_end the prefix padded with 0xff (inclusive). */
void ir_ifname_wildcard(const char *pattern, struct ir_value *lo, struct ir_value *hi);

/* Removes sets that no rule references (LOOKUP matches, VMAP and
 * SET_FROM_MAP statements), except IR_SET_DYNAMIC ones, and renumbers the
 * references. Returns 0 or -1 on ENOMEM. */
int ir_table_drop_unused_sets(struct ir_table *t);

/* Every set reference of t's rules (LOOKUP matches, VMAP and SET_FROM_MAP
 * statements) to set i becomes one to set map[i]. */
void ir_table_remap_sets(struct ir_table *t, const size_t *map);

/* Checks the table's internal consistency: set references in range, every
 * jump/goto (rules and map elements) names a chain of the table, every
 * anonymous set used by exactly one rule, elements of interval sets not
 * overlapping. Returns 0, or -1 with the first problem as an error in `d`
 * (at the rule's or set's policy location). For tests and fuzzing; a
 * correct compiler never fails it. */
int ir_table_validate(const struct ir_table *t, struct policy_diags *d);

/* v + 1 (dir 1) or v - 1 (dir -1) as a big-endian number of v->len bytes;
 * false if it wrapped around. */
bool ir_value_step(struct ir_value *v, int dir);

/* If [lo, hi] (same length) is exactly one prefix, its length; else -1. */
int ir_value_prefix_len(const struct ir_value *lo, const struct ir_value *hi);

/* Equality (policy/ir_equal.c): the same kernel object, field by field as
 * the kernel keeps it. Values compare by their `len` bytes; verdicts by
 * chain name only for jump and goto. A set element's timeout does not count
 * in an IR_SET_DYNAMIC set (what is left of it changes while it runs). In
 * matches and statements, named sets are the same by name and anonymous
 * ones by content; the two may come from two tables (ir_diff) or one (the
 * optimizer). */
bool ir_value_equal(const struct ir_value *a, const struct ir_value *b);
bool ir_verdict_equal(const struct ir_verdict *a, const struct ir_verdict *b);
/* Key, flags, data, timeout, size and comment: all of a set but elements. */
bool ir_set_def_equal(const struct ir_set *a, const struct ir_set *b);
bool ir_set_content_equal(const struct ir_set *a, const struct ir_set *b);
/* Key and interval end: the same element for the kernel's lookup. */
bool ir_elem_same_key(const struct ir_set *s, const struct ir_set_elem *a,
		      const struct ir_set_elem *b);
bool ir_elem_equal(const struct ir_set *s, const struct ir_set_elem *a,
		   const struct ir_set_elem *b);
bool ir_match_equal(const struct ir_table *ta, const struct ir_match *a, const struct ir_table *tb,
		    const struct ir_match *b);
bool ir_stmt_equal(const struct ir_table *ta, const struct ir_stmt *a, const struct ir_table *tb,
		   const struct ir_stmt *b);

/* Summary counts for `hvgate compile --emit summary`. */
void ir_table_summary(const struct ir_table *t, FILE *out);

#endif
