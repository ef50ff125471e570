/* Recursive-descent parser of the policy language (see policy/parser.h and
 * docs/policy-language.md for the grammar). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/hash.h"
#include "policy/lexer.h"
#include "policy/limits.h"
#include "policy/parser.h"
#include "policy/suggest.h"

/* Interface names are at most IFNAMSIZ - 1 bytes (linux/if.h: IFNAMSIZ 16). */
#define IFNAME_MAX 15

/* Largest port (a 16-bit field, RFC 793 section 3.1). */
#define PORT_MAX 65535
/* Largest ICMP / ICMPv6 type (an 8-bit field, RFC 792 / RFC 4443 section 2.1). */
#define ICMP_TYPE_MAX 255

/* Longest log prefix: NF_LOG_PREFIXLEN (linux/netfilter/nf_log.h) is 128
 * bytes including the terminating NUL. */
#define LOG_PREFIX_MAX 127

/* Lookahead: `service NAME =` (a declaration) and `service NAME` (a rule's
 * clause) differ only in the third token. */
#define LOOKAHEAD 3

struct parser {
	struct policy_lexer lx;
	struct policy_token la[LOOKAHEAD];
	const char *prev_end;       /* end of the last consumed token */
	struct policy_loc prev_loc; /* and its location */
	struct policy_ast *ast;
	struct policy_diags *d;
	const struct policy_parse_include *inc;
	bool quiet;       /* a syntax error was reported; silent until the next statement */
	bool value_error; /* the current statement had a value error */
	int depth;        /* braces opened and not yet closed */
	bool abandoned;   /* the rest of the file is not parsed (nesting too deep) */
};

static const struct policy_token *cur(const struct parser *p)
{
	return &p->la[0];
}

static void next(struct parser *p)
{
	if (p->la[0].kind == POLICY_TOK_LBRACE)
		p->depth++;
	else if (p->la[0].kind == POLICY_TOK_RBRACE && p->depth > 0)
		p->depth--;
	p->prev_end = p->la[0].end;
	p->prev_loc = p->la[0].loc;
	p->prev_loc.len = (uint32_t)(p->la[0].end - p->la[0].start);
	memmove(&p->la[0], &p->la[1], sizeof(p->la[0]) * (LOOKAHEAD - 1));
	if (p->la[LOOKAHEAD - 2].kind == POLICY_TOK_EOF)
		p->la[LOOKAHEAD - 1] = p->la[LOOKAHEAD - 2];
	else
		policy_lexer_next(&p->lx, &p->la[LOOKAHEAD - 1]);
}

static bool is(const struct parser *p, const char *word)
{
	return policy_token_is(cur(p), word);
}

static bool accept_word(struct parser *p, const char *word)
{
	if (!is(p, word))
		return false;
	next(p);
	return true;
}

static bool accept_kind(struct parser *p, enum policy_token_kind k)
{
	if (cur(p)->kind != k)
		return false;
	next(p);
	return true;
}

static const char *kind_name(enum policy_token_kind k)
{
	switch (k) {
	case POLICY_TOK_EOF: return "end of file";
	case POLICY_TOK_WORD: return "word";
	case POLICY_TOK_VAR: return "$name";
	case POLICY_TOK_STRING: return "string";
	case POLICY_TOK_REGEX: return "regular expression";
	case POLICY_TOK_LBRACE: return "'{'";
	case POLICY_TOK_RBRACE: return "'}'";
	case POLICY_TOK_COMMA: return "','";
	case POLICY_TOK_EQUALS: return "'='";
	}
	return "token";
}

/* Appends "; did you mean 'X'?" if the word `t` is near one of the words
 * quoted in `expected` ("'interface', 'address' or '}'"). */
static void suggest_expected(struct parser *p, const struct policy_token *t, const char *expected)
{
	struct policy_suggest s;
	policy_suggest_init(&s, t->text, t->len);
	char word[32];
	for (const char *q = strchr(expected, '\''); q; q = strchr(q + 1, '\'')) {
		const char *end = strchr(q + 1, '\'');
		if (!end)
			break;
		size_t n = (size_t)(end - q - 1);
		if (n && n < sizeof(word) && isalpha((unsigned char)q[1])) {
			memcpy(word, q + 1, n);
			word[n] = '\0';
			const char *before = s.best;
			policy_suggest_consider(&s, word);
			if (s.best != before) /* keep the candidate past this buffer */
				s.best = q + 1;
		}
		q = end;
	}
	if (s.best)
		policy_diag_append(p->d, "; did you mean '%.*s'?", (int)strcspn(s.best, "'"),
				   s.best);
}

/* Does `t` begin the next statement (or end the input), so that the
 * statement before it stopped short? */
static bool ends_statement(const struct policy_token *t);

/* A syntax error: reported unless one was already reported in this
 * statement; the caller returns -1 and the statement loop recovers. */
static int syntax_error(struct parser *p, const char *expected)
{
	if (p->quiet)
		return -1;
	p->quiet = true;
	const struct policy_token *t = cur(p);
	if (t->line_start && p->prev_loc.line && p->prev_loc.line < t->loc.line &&
	    ends_statement(t)) {
		/* the statement stopped short at the end of a line: say so there,
		 * not at the next statement's first word */
		struct policy_loc at = p->prev_loc;
		at.col += at.len;
		at.len = 1;
		return policy_error(p->d, &at, "expected %s at the end of the line", expected);
	}
	if (t->kind == POLICY_TOK_WORD || t->kind == POLICY_TOK_VAR) {
		policy_error(p->d, &t->loc, "expected %s, found '%.*s'", expected,
			     (int)(t->end - t->start), t->start);
		if (t->kind == POLICY_TOK_WORD)
			suggest_expected(p, t, expected);
		return -1;
	}
	return policy_error(p->d, &t->loc, "expected %s, found %s", expected, kind_name(t->kind));
}

/* A value error: reported, parsing goes on, the statement is marked. */
static void value_error(struct parser *p)
{
	p->value_error = true;
}

static int expect(struct parser *p, enum policy_token_kind k)
{
	if (accept_kind(p, k))
		return 0;
	return syntax_error(p, kind_name(k));
}

static char *token_dup(const struct policy_token *t)
{
	return t->kind == POLICY_TOK_STRING ? policy_token_string(t) : strndup(t->text, t->len);
}

static int oom(struct parser *p)
{
	p->quiet = true;
	return policy_error(p->d, NULL, "out of memory");
}

static bool is_name_text(const char *s, size_t n, bool dotted)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c == '_' || c == '-' || (dotted && c == '.')))
			return false;
	}
	return !dotted || (s[n - 1] != '.' && !memmem(s, n, "..", 2));
}

static const char *const statement_keywords[] = {
	"include", "define", "service", "zone",   "segment", "default",
	"pass",    "block",  "reject",  "tenant", "nat",     "vpn",
};

/* Words of other firewalls' languages, and what this one calls them. */
static const struct {
	const char *word, *keyword;
} statement_synonyms[] = {
	{ "allow", "pass" }, { "accept", "pass" }, { "permit", "pass" },
	{ "deny", "block" }, { "drop", "block" },
};

static const char *const rule_options[] = {
	"from", "to", "service", "log", "counter", "limit", "no", "inspect", "label",
};

static bool is_statement_keyword(const struct policy_token *t)
{
	/* every keyword starts with a lowercase letter: addresses and numbers,
	 * most of a large policy's words, are passed over at once */
	if (t->kind != POLICY_TOK_WORD || !t->len || t->text[0] < 'a' || t->text[0] > 'z')
		return false;
	for (size_t i = 0; i < sizeof(statement_keywords) / sizeof(statement_keywords[0]); i++)
		if (policy_token_is(t, statement_keywords[i]))
			return true;
	return false;
}

static bool ends_statement(const struct policy_token *t)
{
	return t->kind == POLICY_TOK_EOF || t->kind == POLICY_TOK_RBRACE || is_statement_keyword(t);
}

/* Words that cannot name a zone, segment, service or define: they would be
 * read as a keyword where the name is used. */
static const char *const reserved[] = {
	"any",     "self", "tcp",     "udp",   "sctp",    "icmp", "icmpv6", "from", "to",
	"service", "log",  "counter", "limit", "inspect", "no",   "port",   "type",
};

static bool is_reserved(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == n && !memcmp(reserved[i], s, n))
			return true;
	return false;
}

/* A name being declared. */
static int parse_decl_name(struct parser *p, const char *what, char **out, struct policy_loc *loc)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || is_statement_keyword(t))
		return syntax_error(p, what);
	*loc = t->loc;
	if (!is_name_text(t->text, t->len, false)) {
		policy_error(p->d, &t->loc,
			     "invalid name '%.*s': a name starts with a letter "
			     "and holds letters, digits, '_' and '-'",
			     (int)t->len, t->text);
		value_error(p);
	} else if (is_reserved(t->text, t->len)) {
		policy_error(p->d, &t->loc, "'%.*s' is a reserved word and cannot be a name",
			     (int)t->len, t->text);
		value_error(p);
	}
	*out = token_dup(t);
	next(p);
	return *out ? 0 : oom(p);
}

static int parse_number(struct parser *p, const char *s, size_t n, uint64_t max,
			const struct policy_loc *loc, const char *what, uint64_t *out)
{
	uint64_t v = 0;
	if (!n)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max) {
			policy_error(p->d, loc, "%s %.*s out of range (0-%llu)", what, (int)n, s,
				     (unsigned long long)max);
			value_error(p);
			return -1;
		}
	}
	*out = v;
	return 0;
bad:
	policy_error(p->d, loc, "invalid %s '%.*s'", what, (int)n, s);
	value_error(p);
	return -1;
}

/* A whole-token number. */
static int parse_number_token(struct parser *p, uint64_t max, const char *what, uint64_t *out)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD)
		return syntax_error(p, what);
	/* a bad value is reported and marks the statement; parsing goes on */
	parse_number(p, t->text, t->len, max, &t->loc, what, out);
	next(p);
	return 0;
}

/* --- addresses ------------------------------------------------------- */

/* Dotted-quad IPv4 as inet_pton reads it (four decimal parts of one to
 * three digits, no leading zero, each at most 255), without the copy and
 * the call: a policy may hold a hundred thousand addresses. false: not of
 * that form (inet_pton decides). */
static bool parse_v4_quad(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part && (i >= n || s[i++] != '.'))
			return false;
		size_t start = i;
		unsigned v = 0;
		while (i < n && i - start < 3 && s[i] >= '0' && s[i] <= '9')
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		out[part] = (uint8_t)v;
	}
	return i == n;
}

static int parse_plain_addr(const char *s, size_t n, struct policy_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 1];
	if (n >= sizeof(buf))
		return -1;
	memset(a->lo, 0, sizeof(a->lo));
	if (parse_v4_quad(s, n, a->lo)) {
		a->family = AF_INET;
		return 0;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, a->lo) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a->lo) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

static size_t addr_bytes(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

static void format_addr(const struct policy_addr *a, const uint8_t *bytes, char *buf, size_t n)
{
	inet_ntop(a->family, bytes, buf, (socklen_t)n);
}

static int parse_prefix(const char *text, size_t len, const char *slash, bool allow_host_bits,
			const struct policy_loc *loc, struct policy_addr *out,
			struct policy_diags *d)
{
	if (parse_plain_addr(text, (size_t)(slash - text), out))
		return policy_error(d, loc, "invalid address '%.*s'", (int)len, text);
	unsigned max = out->family == AF_INET ? 32 : 128;
	const char *ls = slash + 1;
	size_t ln = len - (size_t)(ls - text);
	unsigned plen = 0;
	if (!ln || ln > 3)
		goto bad_len;
	for (size_t i = 0; i < ln; i++) {
		if (ls[i] < '0' || ls[i] > '9')
			goto bad_len;
		plen = plen * 10 + (unsigned)(ls[i] - '0');
	}
	if (plen > max)
		return policy_error(d, loc, "prefix length /%u out of range for %s (0-%u)", plen,
				    out->family == AF_INET ? "IPv4" : "IPv6", max);
	out->prefix_len = (uint8_t)plen;
	size_t nb = addr_bytes(out->family);
	uint8_t net[16];
	memcpy(net, out->lo, sizeof(net));
	memcpy(out->hi, out->lo, sizeof(out->hi));
	for (size_t i = 0; i < nb; i++) {
		unsigned bits = plen >= (i + 1) * 8 ? 8 : plen > i * 8 ? plen - (unsigned)i * 8 : 0;
		uint8_t mask = (uint8_t)(bits ? 0xff << (8 - bits) : 0);
		net[i] &= mask;
		out->hi[i] = (uint8_t)(out->lo[i] | (uint8_t)~mask);
	}
	if (!memcmp(net, out->lo, nb) || allow_host_bits)
		return 0;
	char buf[INET6_ADDRSTRLEN];
	format_addr(out, net, buf, sizeof(buf));
	return policy_error(d, loc, "host bits set in %.*s; did you mean %s/%u?", (int)len, text,
			    buf, plen);
bad_len:
	return policy_error(d, loc, "invalid prefix length in '%.*s'", (int)len, text);
}

int policy_parse_addr(const char *text, size_t len, bool allow_host_bits,
		      const struct policy_loc *loc, struct policy_addr *out, struct policy_diags *d)
{
	memset(out, 0, sizeof(*out));
	out->loc = *loc;
	const char *dash = memchr(text, '-', len);
	const char *slash = memchr(text, '/', len);
	if (dash) {
		struct policy_addr hi;
		size_t ln = (size_t)(dash - text);
		if (slash || parse_plain_addr(text, ln, out) ||
		    parse_plain_addr(dash + 1, len - ln - 1, &hi))
			return policy_error(d, loc, "invalid address range '%.*s'", (int)len, text);
		if (hi.family != out->family)
			return policy_error(d, loc, "address range '%.*s' mixes IPv4 and IPv6",
					    (int)len, text);
		memcpy(out->hi, hi.lo, sizeof(out->hi));
		out->prefix_len = POLICY_ADDR_NOT_PREFIX;
		if (memcmp(out->lo, out->hi, addr_bytes(out->family)) > 0)
			return policy_error(d, loc, "address range '%.*s' is upside down", (int)len,
					    text);
		return 0;
	}
	if (slash)
		return parse_prefix(text, len, slash, allow_host_bits, loc, out, d);
	if (parse_plain_addr(text, len, out))
		return policy_error(d, loc, "invalid address '%.*s'", (int)len, text);
	memcpy(out->hi, out->lo, sizeof(out->hi));
	out->prefix_len = (uint8_t)(out->family == AF_INET ? 32 : 128);
	return 0;
}

static bool looks_like_addr(const struct policy_token *t)
{
	return t->kind == POLICY_TOK_WORD && t->len &&
	       (isdigit((unsigned char)t->text[0]) || memchr(t->text, ':', t->len));
}

/* --- endpoint and address lists -------------------------------------- */

#define EP_ALLOW_ADDR     (1u << 0)
#define EP_ALLOW_VAR      (1u << 1)
#define EP_ALLOW_NAME     (1u << 2)
#define EP_ALLOW_ANY_SELF (1u << 3)
#define EP_HOST_BITS      (1u << 4) /* interface addresses: 10.0.0.1/24 */
#define EP_ADDRS          (EP_ALLOW_ADDR | EP_ALLOW_VAR)
#define EP_ENDPOINT       (EP_ALLOW_ADDR | EP_ALLOW_VAR | EP_ALLOW_NAME | EP_ALLOW_ANY_SELF)

static const char *ep_expected(unsigned allow)
{
	if (allow & EP_ALLOW_NAME)
		return "an address, a zone, '$name', 'any' or 'self'";
	if (allow & EP_ALLOW_VAR)
		return "an address or '$name'";
	return "an address";
}

static int parse_ep_item(struct parser *p, struct policy_ast_ep *ep, unsigned allow)
{
	const struct policy_token *t = cur(p);
	struct policy_ast_ep_item item = { .loc = t->loc };
	if (t->kind == POLICY_TOK_VAR && (allow & EP_ALLOW_VAR)) {
		item.kind = POLICY_AST_EP_VAR;
	} else if (looks_like_addr(t) && (allow & EP_ALLOW_ADDR)) {
		item.kind = POLICY_AST_EP_ADDR;
		if (policy_parse_addr(t->text, t->len, allow & EP_HOST_BITS, &t->loc, &item.addr,
				      p->d)) {
			value_error(p);
			next(p);
			return 0;
		}
	} else if ((policy_token_is(t, "any") || policy_token_is(t, "self")) &&
		   (allow & EP_ALLOW_ANY_SELF)) {
		item.kind = t->text[0] == 'a' ? POLICY_AST_EP_ANY : POLICY_AST_EP_SELF;
	} else if (t->kind == POLICY_TOK_WORD && (allow & EP_ALLOW_NAME) &&
		   !is_statement_keyword(t) && !looks_like_addr(t) &&
		   !is_reserved(t->text, t->len)) {
		item.kind = POLICY_AST_EP_NAME;
		if (!is_name_text(t->text, t->len, true)) {
			policy_error(p->d, &t->loc, "invalid name '%.*s'", (int)t->len, t->text);
			value_error(p);
			next(p);
			return 0;
		}
	} else {
		return syntax_error(p, ep_expected(allow));
	}
	if (item.kind == POLICY_AST_EP_VAR || item.kind == POLICY_AST_EP_NAME) {
		item.name = token_dup(t);
		if (!item.name)
			return oom(p);
	}
	next(p);
	struct policy_ast_ep_item *slot = POLICY_AST_PUSH(ep->v, ep->n, ep->cap);
	if (!slot) {
		free(item.name);
		return oom(p);
	}
	*slot = item;
	return 0;
}

/* ITEM | { ITEM [,] ITEM ... } */
static int parse_ep_list(struct parser *p, struct policy_ast_ep *ep, unsigned allow)
{
	ep->present = true;
	ep->loc = cur(p)->loc;
	if (!accept_kind(p, POLICY_TOK_LBRACE))
		return parse_ep_item(p, ep, allow);
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		if (parse_ep_item(p, ep, allow))
			return -1;
		accept_kind(p, POLICY_TOK_COMMA);
	}
	return 0;
}

/* --- services -------------------------------------------------------- */

static int l4proto_by_name(const struct policy_token *t)
{
	return t->kind == POLICY_TOK_WORD ? policy_l4proto_by_name(t->text, t->len) : -1;
}

static bool is_icmp(uint8_t proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

/* A port "80", "8000-8100" or "ssh" at token `t`. */
static int port_value(struct parser *p, const struct policy_token *t, const char *s, size_t n,
		      uint16_t *out)
{
	if (n && !isdigit((unsigned char)s[0])) {
		int port = policy_port_by_name(s, n);
		if (port < 0) {
			policy_error(p->d, &t->loc, "unknown port name '%.*s'", (int)n, s);
			value_error(p);
			return -1;
		}
		*out = (uint16_t)port;
		return 0;
	}
	uint64_t v;
	if (parse_number(p, s, n, PORT_MAX, &t->loc, "port", &v))
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_port_range_token(struct parser *p, const struct policy_token *t,
				  struct policy_port_range *r)
{
	const char *dash = isdigit((unsigned char)t->text[0]) ? memchr(t->text, '-', t->len) : NULL;
	if (!dash) {
		if (port_value(p, t, t->text, t->len, &r->lo))
			return -1;
		r->hi = r->lo;
		return 0;
	}
	size_t ln = (size_t)(dash - t->text);
	if (port_value(p, t, t->text, ln, &r->lo) ||
	    port_value(p, t, dash + 1, t->len - ln - 1, &r->hi))
		return -1;
	if (r->lo > r->hi) {
		policy_error(p->d, &t->loc, "port range %u-%u is upside down", r->lo, r->hi);
		value_error(p);
		return -1;
	}
	return 0;
}

static int add_port(struct parser *p, struct policy_service_term *term)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || is_statement_keyword(t))
		return syntax_error(p, "a port, a port range or a port name");
	struct policy_port_range r;
	if (!parse_port_range_token(p, t, &r)) {
		void *nv = realloc(term->dports, (term->n_dports + 1) * sizeof(*term->dports));
		if (!nv)
			return oom(p);
		term->dports = nv;
		term->dports[term->n_dports++] = r;
	}
	next(p);
	return 0;
}

static int add_icmp_type(struct parser *p, struct policy_service_term *term)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || is_statement_keyword(t))
		return syntax_error(p, "an ICMP type name or number");
	int type = -1;
	if (isdigit((unsigned char)t->text[0])) {
		uint64_t v;
		if (!parse_number(p, t->text, t->len, ICMP_TYPE_MAX, &t->loc, "ICMP type", &v))
			type = (int)v;
	} else {
		type = policy_icmp_type_by_name(term->l4proto, t->text, t->len);
		if (type < 0) {
			policy_error(p->d, &t->loc, "unknown %s type '%.*s'",
				     policy_l4proto_name(term->l4proto), (int)t->len, t->text);
			value_error(p);
		}
	}
	if (type >= 0) {
		void *nv = realloc(term->icmp_types, term->n_icmp_types + 1);
		if (!nv)
			return oom(p);
		term->icmp_types = nv;
		term->icmp_types[term->n_icmp_types++] = (uint8_t)type;
	}
	next(p);
	return 0;
}

static int parse_value_list(struct parser *p, struct policy_service_term *term,
			    int (*add)(struct parser *, struct policy_service_term *))
{
	if (!accept_kind(p, POLICY_TOK_LBRACE))
		return add(p, term);
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		if (add(p, term))
			return -1;
		accept_kind(p, POLICY_TOK_COMMA);
	}
	return 0;
}

/* PROTO [port PORTS | type TYPES] */
static int parse_term(struct parser *p, struct policy_service_term *term)
{
	term->loc = cur(p)->loc;
	term->l4proto = (uint8_t)l4proto_by_name(cur(p));
	next(p);
	const struct policy_token *t = cur(p);
	if (policy_token_is(t, "port")) {
		if (is_icmp(term->l4proto)) {
			policy_error(p->d, &t->loc, "%s has no ports; use 'type'",
				     policy_l4proto_name(term->l4proto));
			value_error(p);
		}
		next(p);
		return parse_value_list(p, term, add_port);
	}
	if (policy_token_is(t, "type")) {
		if (!is_icmp(term->l4proto)) {
			policy_error(p->d, &t->loc, "'type' applies to icmp and icmpv6 only");
			value_error(p);
			next(p);
			struct policy_service_term scratch = { .l4proto = IPPROTO_ICMP };
			int r = parse_value_list(p, &scratch, add_icmp_type);
			policy_service_term_free(&scratch);
			return r;
		}
		next(p);
		return parse_value_list(p, term, add_icmp_type);
	}
	return 0;
}

static int parse_svc_item(struct parser *p, struct policy_ast_svc *svc)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || is_statement_keyword(t) || looks_like_addr(t))
		return syntax_error(p,
				    "a service name or a protocol (tcp, udp, sctp, icmp, icmpv6)");
	struct policy_ast_svc_item *item = POLICY_AST_PUSH(svc->v, svc->n, svc->cap);
	if (!item)
		return oom(p);
	item->loc = t->loc;
	if (l4proto_by_name(t) >= 0) {
		item->kind = POLICY_AST_SVC_TERM;
		return parse_term(p, &item->term);
	}
	item->kind = POLICY_AST_SVC_NAME;
	if (!is_name_text(t->text, t->len, false)) {
		policy_error(p->d, &t->loc, "invalid service name '%.*s'", (int)t->len, t->text);
		value_error(p);
	}
	item->name = token_dup(t);
	next(p);
	return item->name ? 0 : oom(p);
}

static int parse_svc_list(struct parser *p, struct policy_ast_svc *svc)
{
	svc->present = true;
	svc->loc = cur(p)->loc;
	if (!accept_kind(p, POLICY_TOK_LBRACE))
		return parse_svc_item(p, svc);
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		if (parse_svc_item(p, svc))
			return -1;
		accept_kind(p, POLICY_TOK_COMMA);
	}
	return 0;
}

/* --- rules ----------------------------------------------------------- */

static int parse_action(struct parser *p, enum policy_action *a)
{
	if (accept_word(p, "pass"))
		*a = POLICY_PASS;
	else if (accept_word(p, "block"))
		*a = POLICY_BLOCK;
	else if (accept_word(p, "reject"))
		*a = POLICY_REJECT;
	else
		return syntax_error(p, "'pass', 'block' or 'reject'");
	return 0;
}

static void duplicate_option(struct parser *p, const struct policy_token *t)
{
	policy_error(p->d, &t->loc, "duplicate option '%.*s'", (int)t->len, t->text);
	value_error(p);
}

/* log ["prefix"] */
static int parse_log(struct parser *p, bool *log, char **prefix)
{
	if (*log)
		duplicate_option(p, cur(p));
	next(p);
	*log = true;
	if (cur(p)->kind == POLICY_TOK_STRING) {
		free(*prefix);
		*prefix = policy_token_string(cur(p));
		if (!*prefix)
			return oom(p);
		if (strlen(*prefix) > LOG_PREFIX_MAX) {
			policy_error(p->d, &cur(p)->loc, "log prefix is longer than %d bytes",
				     LOG_PREFIX_MAX);
			value_error(p);
		}
		next(p);
	}
	return 0;
}

/* limit N/second|minute|hour [burst N] */
static int parse_limit(struct parser *p, struct policy_ast_rule *r)
{
	if (r->has_limit)
		duplicate_option(p, cur(p));
	next(p);
	r->has_limit = true;
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || !memchr(t->text, '/', t->len))
		return syntax_error(p, "a rate N/second, N/minute or N/hour");
	r->limit_loc = t->loc;
	const char *slash = memchr(t->text, '/', t->len);
	size_t nlen = (size_t)(slash - t->text), ulen = t->len - nlen - 1;
	uint64_t rate = 0;
	if (!parse_number(p, t->text, nlen, UINT32_MAX, &t->loc, "rate", &rate) && rate == 0) {
		policy_error(p->d, &t->loc,
			     "limit of 0 never matches; the rate must be at least 1");
		value_error(p);
	}
	r->limit_rate = (uint32_t)rate;
	static const char *const units[] = { "second", "minute", "hour" };
	bool unit_ok = false;
	for (size_t i = 0; i < 3; i++) {
		if (strlen(units[i]) == ulen && !memcmp(units[i], slash + 1, ulen)) {
			r->limit_unit = (enum policy_rate_unit)i;
			unit_ok = true;
		}
	}
	if (!unit_ok) {
		policy_error(p->d, &t->loc, "unknown rate unit '%.*s' (second, minute or hour)",
			     (int)ulen, slash + 1);
		value_error(p);
	}
	next(p);
	if (accept_word(p, "burst")) {
		uint64_t burst = 0;
		const struct policy_loc bloc = cur(p)->loc;
		if (parse_number_token(p, UINT32_MAX, "burst", &burst))
			return -1;
		if (!burst && !p->value_error) {
			policy_error(p->d, &bloc, "burst of 0 packets; it must be at least 1");
			value_error(p);
		}
		r->limit_burst = (uint32_t)burst;
	}
	return 0;
}

/* Folds /regex/flags into PCRE2 options and checks that it compiles. */
static int check_regex(struct parser *p, const struct policy_token *t, char **out)
{
	uint32_t options = 0;
	char inline_flags[8];
	size_t nf = 0;
	for (size_t i = 0; i < t->flags_len; i++) {
		char f = t->flags[i];
		uint32_t opt = f == 'i'   ? PCRE2_CASELESS
			       : f == 'm' ? PCRE2_MULTILINE
			       : f == 's' ? PCRE2_DOTALL
			       : f == 'x' ? PCRE2_EXTENDED
					  : 0;
		if (!opt) {
			struct policy_loc loc = t->loc;
			loc.col += (uint32_t)(t->flags + i - t->start);
			loc.len = 1;
			policy_error(p->d, &loc,
				     "unknown regular expression flag '%c' (i, m, s, x)", f);
			value_error(p);
			return 0;
		}
		if (!(options & opt) && nf < sizeof(inline_flags) - 1)
			inline_flags[nf++] = f;
		options |= opt;
	}
	int err;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)t->text, t->len, options, &err, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof(msg));
		struct policy_loc loc = t->loc;
		loc.col += 1 + (uint32_t)off;
		loc.len = 1;
		policy_error(p->d, &loc, "invalid regular expression: %s", (const char *)msg);
		value_error(p);
		return 0;
	}
	pcre2_code_free(re);
	if (asprintf(out, "%s%.*s%s%.*s", nf ? "(?" : "", (int)nf, inline_flags, nf ? ")" : "",
		     (int)t->len, t->text) < 0) {
		*out = NULL;
		return oom(p);
	}
	return 0;
}

/* What a match of an inspect block may look at. */
static const struct {
	const char *word;
	enum policy_inspect_field field;
} inspect_fields[] = {
	{ "content", POLICY_INSPECT_CONTENT },     { "tls.sni", POLICY_INSPECT_TLS_SNI },
	{ "http.host", POLICY_INSPECT_HTTP_HOST }, { "http.path", POLICY_INSPECT_HTTP_PATH },
	{ "dns.qname", POLICY_INSPECT_DNS_QNAME },
};

/* RFC 1035 section 2.3.4: a name in text is at most 253 characters. */
#define FIELD_NAME_MAX 253

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/* Why a host name to compare with is refused, or NULL; lowercases it and
 * drops one trailing dot, as the fast path does with the names it sees. */
static const char *field_name_problem(char *n)
{
	size_t len = strlen(n);
	if (len && n[len - 1] == '.')
		n[--len] = '\0';
	if (!len)
		return "the name is empty";
	if (len > FIELD_NAME_MAX)
		return "the name is longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		n[i] = (char)tolower((unsigned char)n[i]);
		if (n[i] == '*')
			return "'*' may only be the first label, as in \"*.example.com\"";
		if (!name_char(n[i]))
			return "a name holds letters, digits, '-', '_' and '.' only";
	}
	if (n[0] == '.' || strstr(n, ".."))
		return "the name has an empty label";
	return NULL;
}

/* Why a path to compare with http.path is refused, or NULL: the fast path
 * compares the decoded path with dot segments and repeated '/' removed. */
static const char *field_path_problem(const char *s)
{
	size_t n = strlen(s);
	if (!strcmp(s, "*"))
		return NULL;
	if (s[0] != '/')
		return "a path starts with '/'";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '?' || s[i] == '#' ||
		    s[i] == '%')
			return "the path is compared decoded and without its query: write it "
			       "without '%', '?', '#', spaces or control characters";
	if (strstr(s, "//") || strstr(s, "/./") || strstr(s, "/../") ||
	    (n >= 2 && !strcmp(s + n - 2, "/.")) || (n >= 3 && !strcmp(s + n - 3, "/..")))
		return "the path is compared normalised: write it without '//', '.' or '..' "
		       "segments";
	return NULL;
}

/* "NAME", "*.NAME" or "/path" after a field word. */
static int parse_field_string(struct parser *p, struct policy_inspect_match *m, const char *word)
{
	const struct policy_token *t = cur(p);
	char *s = policy_token_string(t);
	if (!s)
		return oom(p);
	const char *why;
	if (m->field == POLICY_INSPECT_HTTP_PATH) {
		why = field_path_problem(s);
	} else {
		if (!strncmp(s, "*.", 2)) {
			m->suffix = true;
			memmove(s, s + 2, strlen(s + 2) + 1);
		}
		why = field_name_problem(s);
	}
	if (why) {
		policy_error(p->d, &t->loc, "%s \"%.*s\": %s", word, (int)t->len, t->text, why);
		value_error(p);
	}
	m->name = s;
	return 0;
}

/* content /re/flags | FIELD "name" | FIELD /re/flags */
static int parse_match_target(struct parser *p, struct policy_inspect_match *m)
{
	size_t f = 0, nf = sizeof(inspect_fields) / sizeof(inspect_fields[0]);
	while (f < nf && !is(p, inspect_fields[f].word))
		f++;
	if (f == nf)
		return syntax_error(p, "'content', 'tls.sni', 'http.host', 'http.path' or "
				       "'dns.qname'");
	m->field = inspect_fields[f].field;
	next(p);
	if (m->field != POLICY_INSPECT_CONTENT && cur(p)->kind == POLICY_TOK_STRING) {
		if (parse_field_string(p, m, inspect_fields[f].word))
			return -1;
		next(p);
		return 0;
	}
	if (cur(p)->kind != POLICY_TOK_REGEX)
		return syntax_error(p, m->field == POLICY_INSPECT_CONTENT
					   ? "a regular expression /.../"
					   : "a string \"...\" or a regular expression /.../");
	if (check_regex(p, cur(p), &m->regex))
		return -1;
	next(p);
	return 0;
}

/* inspect { (block|pass) (content|FIELD) (/re/flags|"name") [log ["prefix"]] ... } */
static int parse_inspect(struct parser *p, struct policy_ast_rule *r)
{
	if (r->n_inspect)
		duplicate_option(p, cur(p));
	if (r->action != POLICY_PASS) {
		policy_error(p->d, &cur(p)->loc,
			     "'inspect' applies to pass rules only: "
			     "a blocked flow has no content to inspect");
		value_error(p);
	}
	next(p);
	if (expect(p, POLICY_TOK_LBRACE))
		return -1;
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		struct policy_inspect_match *m =
		    POLICY_AST_PUSH(r->inspect, r->n_inspect, r->cap_inspect);
		if (!m)
			return oom(p);
		m->loc = cur(p)->loc;
		if (is(p, "reject"))
			return syntax_error(p, "'block' or 'pass' (inspection cannot reject)");
		if (!is(p, "block") && !is(p, "pass"))
			return syntax_error(p, "'block', 'pass' or '}'");
		parse_action(p, &m->action);
		if (parse_match_target(p, m))
			return -1;
		if (is(p, "log") && parse_log(p, &m->log, &m->log_prefix))
			return -1;
	}
	return 0;
}

/* True if the next tokens begin a `service NAME =` declaration. */
static bool at_service_decl(const struct parser *p)
{
	return policy_token_is(&p->la[0], "service") && p->la[1].kind == POLICY_TOK_WORD &&
	       p->la[2].kind == POLICY_TOK_EQUALS;
}

static bool is_rule_option(const struct policy_token *t)
{
	for (size_t i = 0; i < sizeof(rule_options) / sizeof(rule_options[0]); i++)
		if (policy_token_is(t, rule_options[i]))
			return true;
	return false;
}

static bool at_rule_end(const struct parser *p)
{
	const struct policy_token *t = cur(p);
	if (t->kind == POLICY_TOK_EOF || t->kind == POLICY_TOK_RBRACE)
		return true;
	if (policy_token_is(t, "service"))
		return at_service_decl(p);
	if (is_statement_keyword(t))
		return true;
	/* a word that is no option and starts a line is more likely a
	 * mistyped statement than a mistyped option: the statement loop
	 * reports it as such */
	return t->line_start && t->kind == POLICY_TOK_WORD && !is_rule_option(t);
}

static int parse_rule_clause(struct parser *p, struct policy_ast_rule *r)
{
	const struct policy_token *t = cur(p);
	if (policy_token_is(t, "from") || policy_token_is(t, "to")) {
		struct policy_ast_ep *ep = t->text[0] == 'f' ? &r->from : &r->to;
		if (ep->present)
			duplicate_option(p, t);
		policy_ast_ep_free(ep);
		next(p);
		return parse_ep_list(p, ep, EP_ENDPOINT);
	}
	if (policy_token_is(t, "service")) {
		if (r->svc.present)
			duplicate_option(p, t);
		policy_ast_svc_free(&r->svc);
		next(p);
		return parse_svc_list(p, &r->svc);
	}
	if (policy_token_is(t, "log"))
		return parse_log(p, &r->log, &r->log_prefix);
	if (policy_token_is(t, "label")) {
		if (r->label)
			duplicate_option(p, t);
		next(p);
		if (cur(p)->kind != POLICY_TOK_STRING)
			return syntax_error(p, "a label in quotes (label \"web-in\")");
		free(r->label);
		r->label = policy_token_string(cur(p));
		if (!r->label)
			return oom(p);
		r->label_loc = cur(p)->loc;
		next(p);
		return 0;
	}
	if (policy_token_is(t, "counter")) {
		next(p); /* every rule counts; accepted for readability */
		return 0;
	}
	if (policy_token_is(t, "limit"))
		return parse_limit(p, r);
	if (policy_token_is(t, "no")) {
		next(p);
		if (!accept_word(p, "state"))
			return syntax_error(p, "'state' after 'no'");
		if (r->stateless)
			policy_error(p->d, &t->loc, "duplicate option 'no state'");
		r->stateless = true;
		return 0;
	}
	if (policy_token_is(t, "inspect"))
		return parse_inspect(p, r);
	if (t->kind == POLICY_TOK_WORD) {
		if (!p->quiet) {
			policy_error(p->d, &t->loc, "unknown option '%.*s'", (int)t->len, t->text);
			const char *hint =
			    policy_suggest(t->text, t->len, rule_options,
					   sizeof(rule_options) / sizeof(rule_options[0]));
			if (hint)
				policy_diag_append(p->d, "; did you mean '%s'?", hint);
		}
		p->quiet = true;
		return -1;
	}
	return syntax_error(p, "'from', 'to', 'service' or an option");
}

static uint32_t span_hash(const char *start, const char *end)
{
	return policy_text_hash(start, (size_t)(end - start));
}

static int parse_rule(struct parser *p, size_t scope)
{
	const struct policy_token *first = cur(p);
	struct policy_ast_rule *r =
	    POLICY_AST_PUSH(p->ast->rules, p->ast->n_rules, p->ast->cap_rules);
	if (!r)
		return oom(p);
	r->scope = scope;
	r->loc = first->loc;
	const char *start = first->start;
	parse_action(p, &r->action);
	while (!at_rule_end(p))
		if (parse_rule_clause(p, r))
			return -1;
	r->text_hash = span_hash(start, p->prev_end);
	r->text_len = (uint32_t)(p->prev_end - start);
	return 0;
}

/* --- declarations ---------------------------------------------------- */

static int parse_define(struct parser *p, size_t scope)
{
	next(p);
	struct policy_ast_define *def =
	    POLICY_AST_PUSH(p->ast->defines, p->ast->n_defines, p->ast->cap_defines);
	if (!def)
		return oom(p);
	def->scope = scope;
	if (parse_decl_name(p, "a name", &def->name, &def->loc) || expect(p, POLICY_TOK_EQUALS))
		return -1;
	return parse_ep_list(p, &def->value, EP_ADDRS);
}

static int parse_service_decl(struct parser *p, size_t scope)
{
	next(p);
	struct policy_ast_service *s =
	    POLICY_AST_PUSH(p->ast->services, p->ast->n_services, p->ast->cap_services);
	if (!s)
		return oom(p);
	s->scope = scope;
	if (parse_decl_name(p, "a service name", &s->name, &s->loc) || expect(p, POLICY_TOK_EQUALS))
		return -1;
	return parse_svc_list(p, &s->value);
}

static int add_ifname(struct parser *p, struct policy_ast_zone *z)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_STRING)
		return syntax_error(p, "an interface name in quotes");
	char *name = policy_token_string(t);
	if (!name)
		return oom(p);
	size_t n = strlen(name);
	const char *star = strchr(name, '*');
	if (!n || n > IFNAME_MAX || (star && star != name + n - 1) || strchr(name, '/') ||
	    strpbrk(name, " \t\n")) {
		policy_error(p->d, &t->loc,
			     "invalid interface name \"%s\": 1 to %d characters, "
			     "no '/' or blanks, '*' only at the end",
			     name, IFNAME_MAX);
		value_error(p);
	}
	char **nv = realloc(z->ifnames, (z->n_ifnames + 1) * sizeof(*nv));
	if (!nv) {
		free(name);
		return oom(p);
	}
	z->ifnames = nv;
	z->ifnames[z->n_ifnames++] = name;
	next(p);
	return 0;
}

/* zone NAME { interface IFS }  |  segment NAME { interface IFS address ADDRS } */
static int parse_zone(struct parser *p, size_t scope, bool segment)
{
	const struct policy_token *kw = cur(p);
	if (segment && scope == POLICY_NONE) {
		policy_error(p->d, &kw->loc, "'segment' is only allowed inside a tenant");
		value_error(p);
	}
	next(p);
	struct policy_ast_zone *z =
	    POLICY_AST_PUSH(p->ast->zones, p->ast->n_zones, p->ast->cap_zones);
	if (!z)
		return oom(p);
	z->scope = scope;
	z->is_segment = segment;
	if (parse_decl_name(p, segment ? "a segment name" : "a zone name", &z->name, &z->loc) ||
	    expect(p, POLICY_TOK_LBRACE))
		return -1;
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		const struct policy_token *t = cur(p);
		if (policy_token_is(t, "interface")) {
			next(p);
			if (cur(p)->kind == POLICY_TOK_LBRACE) {
				next(p);
				while (!accept_kind(p, POLICY_TOK_RBRACE)) {
					if (add_ifname(p, z))
						return -1;
					accept_kind(p, POLICY_TOK_COMMA);
				}
			} else if (add_ifname(p, z)) {
				return -1;
			}
		} else if (segment && policy_token_is(t, "address")) {
			if (z->addrs.present)
				duplicate_option(p, t);
			next(p);
			if (parse_ep_list(p, &z->addrs, EP_ADDRS))
				return -1;
		} else {
			return syntax_error(p, segment ? "'interface', 'address' or '}'"
						       : "'interface' or '}'");
		}
	}
	return 0;
}

/* default [from ZONE] [to ZONE] ACTION [log] */
static int parse_default(struct parser *p, size_t scope)
{
	struct policy_ast_default *df =
	    POLICY_AST_PUSH(p->ast->defaults, p->ast->n_defaults, p->ast->cap_defaults);
	if (!df)
		return oom(p);
	df->scope = scope;
	df->loc = cur(p)->loc;
	next(p);
	for (int i = 0; i < 2; i++) {
		bool from = is(p, "from");
		if (!from && !is(p, "to"))
			break;
		next(p);
		char **name = from ? &df->from : &df->to;
		const struct policy_token *t = cur(p);
		if (*name)
			duplicate_option(p, t);
		if (t->kind != POLICY_TOK_WORD || is_statement_keyword(t) ||
		    !is_name_text(t->text, t->len, true))
			return syntax_error(p, "a zone name");
		free(*name);
		*name = policy_token_is(t, "any") ? NULL : token_dup(t);
		if (!policy_token_is(t, "any") && !*name)
			return oom(p);
		*(from ? &df->from_loc : &df->to_loc) = t->loc;
		next(p);
	}
	if (parse_action(p, &df->action))
		return -1;
	if (is(p, "log")) {
		char *prefix = NULL;
		int r = parse_log(p, &df->log, &prefix);
		if (prefix) {
			policy_error(p->d, &df->loc, "a default has no log prefix of its own");
			value_error(p);
			free(prefix);
		}
		return r;
	}
	return 0;
}

/* ZONE PROTO port PORTS [on ADDR] to ADDR [port PORTS] (after `nat forward`) */
static int parse_nat_forward(struct parser *p, struct policy_ast_nat *n)
{
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || !is_name_text(t->text, t->len, true))
		return syntax_error(p, "the outside zone");
	n->via = token_dup(t);
	n->via_loc = t->loc;
	if (!n->via)
		return oom(p);
	next(p);
	int proto = l4proto_by_name(cur(p));
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return syntax_error(p, "'tcp', 'udp' or 'sctp'");
	n->l4proto = (uint8_t)proto;
	next(p);
	if (!accept_word(p, "port"))
		return syntax_error(p, "'port'");
	if (cur(p)->kind != POLICY_TOK_WORD)
		return syntax_error(p, "a port or port range");
	parse_port_range_token(p, cur(p), &n->match_ports);
	next(p);
	if (accept_word(p, "on")) {
		if (!looks_like_addr(cur(p)))
			return syntax_error(p, "an address");
		n->has_public_addr = true;
		if (policy_parse_addr(cur(p)->text, cur(p)->len, false, &cur(p)->loc,
				      &n->public_addr, p->d))
			value_error(p);
		next(p);
	}
	return 0;
}

static int parse_nat_addr(struct parser *p, struct policy_addr *a)
{
	if (!looks_like_addr(cur(p)))
		return syntax_error(p, "an address");
	if (policy_parse_addr(cur(p)->text, cur(p)->len, false, &cur(p)->loc, a, p->d))
		value_error(p);
	next(p);
	return 0;
}

static int parse_nat_via(struct parser *p, struct policy_ast_nat *n)
{
	if (!accept_word(p, "via"))
		return syntax_error(p, "'via'");
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_WORD || !is_name_text(t->text, t->len, true))
		return syntax_error(p, "the outside zone");
	n->via = token_dup(t);
	n->via_loc = t->loc;
	next(p);
	return n->via ? 0 : oom(p);
}

static int parse_nat(struct parser *p, size_t scope)
{
	const char *start = cur(p)->start;
	struct policy_ast_nat *n = POLICY_AST_PUSH(p->ast->nats, p->ast->n_nats, p->ast->cap_nats);
	if (!n)
		return oom(p);
	n->scope = scope;
	n->loc = cur(p)->loc;
	next(p);
	if (accept_word(p, "masquerade") || is(p, "snat")) {
		n->kind = accept_word(p, "snat") ? POLICY_NAT_SNAT : POLICY_NAT_MASQUERADE;
		if (accept_word(p, "from") && parse_ep_list(p, &n->from, EP_ADDRS | EP_ALLOW_NAME))
			return -1;
		if (!accept_word(p, "out"))
			return syntax_error(p, "'out via ZONE'");
		if (parse_nat_via(p, n))
			return -1;
		if (n->kind == POLICY_NAT_SNAT) {
			if (!accept_word(p, "to"))
				return syntax_error(p, "'to' and the address to translate to");
			if (parse_nat_addr(p, &n->to_addr))
				return -1;
		}
	} else if (accept_word(p, "forward")) {
		n->kind = POLICY_NAT_DNAT;
		if (parse_nat_forward(p, n) || (!accept_word(p, "to") && syntax_error(p, "'to'")) ||
		    parse_nat_addr(p, &n->to_addr))
			return -1;
	} else if (accept_word(p, "netmap")) {
		n->kind = POLICY_NAT_NETMAP;
		if (parse_ep_list(p, &n->from, EP_ALLOW_ADDR))
			return -1;
		if (!accept_word(p, "to"))
			return syntax_error(p, "'to'");
		if (parse_nat_addr(p, &n->to_addr) || parse_nat_via(p, n))
			return -1;
		n->public_addr = n->to_addr;
		n->has_public_addr = true;
	} else {
		return syntax_error(p, "'masquerade', 'snat', 'forward' or 'netmap'");
	}
	if (n->kind != POLICY_NAT_MASQUERADE && n->kind != POLICY_NAT_NETMAP &&
	    accept_word(p, "port")) {
		if (cur(p)->kind != POLICY_TOK_WORD)
			return syntax_error(p, "a port or port range");
		parse_port_range_token(p, cur(p), &n->to_ports);
		next(p);
	}
	n->text_hash = span_hash(start, p->prev_end);
	n->text_len = (uint32_t)(p->prev_end - start);
	return 0;
}

static int parse_string_option(struct parser *p, char **out)
{
	const struct policy_token *kw = cur(p);
	if (*out)
		duplicate_option(p, kw);
	next(p);
	if (cur(p)->kind != POLICY_TOK_STRING)
		return syntax_error(p, "a string in quotes");
	free(*out);
	*out = policy_token_string(cur(p));
	next(p);
	return *out ? 0 : oom(p);
}

static int parse_u16_option(struct parser *p, uint16_t *out, const char *what)
{
	next(p);
	uint64_t v = 0;
	if (parse_number_token(p, UINT16_MAX, what, &v))
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_peer(struct parser *p, struct policy_ast_vpn *v)
{
	next(p);
	struct policy_ast_peer *peer = POLICY_AST_PUSH(v->peers, v->n_peers, v->cap_peers);
	if (!peer)
		return oom(p);
	if (parse_decl_name(p, "a peer name", &peer->name, &peer->loc) ||
	    expect(p, POLICY_TOK_LBRACE))
		return -1;
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		int r;
		if (is(p, "public-key"))
			r = parse_string_option(p, &peer->public_key);
		else if (is(p, "preshared-key-file"))
			r = parse_string_option(p, &peer->psk_file);
		else if (is(p, "endpoint"))
			r = parse_string_option(p, &peer->endpoint);
		else if (is(p, "keepalive"))
			r = parse_u16_option(p, &peer->keepalive, "keepalive interval");
		else if (accept_word(p, "allowed-ips"))
			r = parse_ep_list(p, &peer->allowed_ips, EP_ALLOW_ADDR);
		else
			r = syntax_error(p, "'public-key', 'preshared-key-file', 'endpoint', "
					    "'allowed-ips', 'keepalive' or '}'");
		if (r)
			return -1;
	}
	return 0;
}

static int parse_vpn(struct parser *p, size_t scope)
{
	next(p);
	struct policy_ast_vpn *v = POLICY_AST_PUSH(p->ast->vpns, p->ast->n_vpns, p->ast->cap_vpns);
	if (!v)
		return oom(p);
	v->scope = scope;
	if (parse_decl_name(p, "an interface name", &v->ifname, &v->loc))
		return -1;
	if (strlen(v->ifname) > IFNAME_MAX) {
		policy_error(p->d, &v->loc, "interface name '%s' is longer than %d characters",
			     v->ifname, IFNAME_MAX);
		value_error(p);
	}
	if (expect(p, POLICY_TOK_LBRACE))
		return -1;
	while (!accept_kind(p, POLICY_TOK_RBRACE)) {
		int r;
		if (is(p, "listen-port"))
			r = parse_u16_option(p, &v->listen_port, "port");
		else if (is(p, "private-key-file"))
			r = parse_string_option(p, &v->private_key_file);
		else if (accept_word(p, "address"))
			r = parse_ep_list(p, &v->addresses, EP_ALLOW_ADDR | EP_HOST_BITS);
		else if (is(p, "peer"))
			r = parse_peer(p, v);
		else
			r = syntax_error(p, "'listen-port', 'private-key-file', 'address', 'peer' "
					    "or '}'");
		if (r)
			return -1;
	}
	return 0;
}

static int parse_include(struct parser *p, size_t scope)
{
	next(p);
	const struct policy_token *t = cur(p);
	if (t->kind != POLICY_TOK_STRING)
		return syntax_error(p, "a file name or pattern in quotes");
	char *pattern = policy_token_string(t);
	if (!pattern)
		return oom(p);
	struct policy_loc loc = t->loc;
	next(p);
	/* Errors of the included files are reported in them; the include
	 * statement itself parsed fine, so no recovery is needed here. */
	if (!p->inc || !p->inc->include)
		policy_error(p->d, &loc, "include is not available here (policy read from memory)");
	else
		p->inc->include(p->inc->ctx, pattern, &loc, scope, p->ast);
	free(pattern);
	return 0;
}

static int parse_statements(struct parser *p, size_t scope, bool in_block);

/* Blocks nested deeper than POLICY_NESTING_MAX: reported once, and the
 * rest of the file is skipped (every enclosing block is then unclosed, and
 * each would report that again). */
static int too_deep(struct parser *p, const struct policy_loc *at)
{
	if (!p->quiet)
		policy_error(p->d, at, "blocks nested deeper than %d levels", POLICY_NESTING_MAX);
	p->quiet = true;
	p->abandoned = true;
	while (cur(p)->kind != POLICY_TOK_EOF)
		next(p);
	return -1;
}

static int parse_tenant(struct parser *p, size_t scope)
{
	const struct policy_loc at = cur(p)->loc;
	const struct policy_token *kw = cur(p);
	if (scope != POLICY_NONE) {
		policy_error(p->d, &kw->loc, "a tenant cannot be declared inside a tenant");
		value_error(p);
	}
	next(p);
	struct policy_ast_tenant *t =
	    POLICY_AST_PUSH(p->ast->tenants, p->ast->n_tenants, p->ast->cap_tenants);
	if (!t)
		return oom(p);
	size_t index = p->ast->n_tenants - 1;
	if (parse_decl_name(p, "a tenant name", &t->name, &t->loc) || expect(p, POLICY_TOK_LBRACE))
		return -1;
	if (p->depth > POLICY_NESTING_MAX)
		return too_deep(p, &at);
	parse_statements(p, index, true);
	return expect(p, POLICY_TOK_RBRACE);
}

/* A word where a statement must start: named, pointed at, and a keyword
 * suggested (a near statement keyword, a synonym, or a near rule option
 * for a continuation line of a rule). */
static int unknown_statement(struct parser *p)
{
	const struct policy_token *t = cur(p);
	bool report = !p->quiet;
	syntax_error(p, "a statement (pass, block, reject, define, service, zone, default, "
			"tenant, nat, vpn, include)");
	if (!report || t->kind != POLICY_TOK_WORD)
		return -1;
	const char *hint =
	    policy_suggest(t->text, t->len, statement_keywords,
			   sizeof(statement_keywords) / sizeof(statement_keywords[0]));
	for (size_t i = 0; !hint && i < sizeof(statement_synonyms) / sizeof(statement_synonyms[0]);
	     i++)
		if (policy_token_is(t, statement_synonyms[i].word))
			hint = statement_synonyms[i].keyword;
	if (!hint)
		hint = policy_suggest(t->text, t->len, rule_options,
				      sizeof(rule_options) / sizeof(rule_options[0]));
	if (hint)
		policy_diag_append(p->d, "; did you mean '%s'?", hint);
	return -1;
}

static int parse_statement(struct parser *p, size_t scope)
{
	const struct policy_token *t = cur(p);
	if (is(p, "pass") || is(p, "block") || is(p, "reject"))
		return parse_rule(p, scope);
	if (is(p, "define"))
		return parse_define(p, scope);
	if (is(p, "service"))
		return parse_service_decl(p, scope);
	if (is(p, "zone") || is(p, "segment"))
		return parse_zone(p, scope, t->text[0] == 's');
	if (is(p, "default"))
		return parse_default(p, scope);
	if (is(p, "tenant"))
		return parse_tenant(p, scope);
	if (is(p, "nat"))
		return parse_nat(p, scope);
	if (is(p, "vpn"))
		return parse_vpn(p, scope);
	if (is(p, "include"))
		return parse_include(p, scope);
	return unknown_statement(p);
}

/* Skips to a place where a statement can start: a statement keyword at the
 * brace depth where the broken statement began, the '}' that closes the
 * enclosing block, or the end. A statement keyword that starts a line inside
 * braces the broken statement left open also ends the skip (an unclosed
 * block should not swallow the rest of the file); `pass` and `block` do not,
 * as they also start the matches of an inspect block. */
static void recover(struct parser *p, const char *stmt_start, int stmt_depth)
{
	for (;;) {
		const struct policy_token *t = cur(p);
		if (t->kind == POLICY_TOK_EOF)
			break;
		bool moved = t->start != stmt_start;
		if (p->depth <= stmt_depth && moved) {
			if (t->kind == POLICY_TOK_RBRACE)
				break;
			if (is_statement_keyword(t) &&
			    (t->line_start || !policy_token_is(t, "service") || at_service_decl(p)))
				break;
		}
		if (p->depth > stmt_depth && t->line_start && is_statement_keyword(t) &&
		    !policy_token_is(t, "block") && !policy_token_is(t, "pass"))
			break;
		next(p);
	}
	p->depth = stmt_depth;
}

/* Statement counts before a statement, to find what it added. */
struct mark {
	size_t rules, nats, defaults, zones;
};

static struct mark mark_now(const struct parser *p)
{
	return (struct mark){ p->ast->n_rules, p->ast->n_nats, p->ast->n_defaults,
			      p->ast->n_zones };
}

/* Marks the rule, NAT or default that the last statement added as broken,
 * so the checker does not pile errors on top of the parser's. */
static void mark_broken(struct parser *p, const struct mark *m)
{
	if (p->ast->n_rules > m->rules)
		p->ast->rules[p->ast->n_rules - 1].broken = true;
	if (p->ast->n_nats > m->nats)
		p->ast->nats[p->ast->n_nats - 1].broken = true;
	if (p->ast->n_defaults > m->defaults)
		p->ast->defaults[p->ast->n_defaults - 1].broken = true;
	if (p->ast->n_zones > m->zones)
		p->ast->zones[p->ast->n_zones - 1].broken = true;
}

static int parse_statements(struct parser *p, size_t scope, bool in_block)
{
	int result = 0;
	for (;;) {
		const struct policy_token *t = cur(p);
		if (t->kind == POLICY_TOK_EOF)
			break;
		if (t->kind == POLICY_TOK_RBRACE) {
			if (in_block)
				break;
			if (!p->quiet)
				policy_error(p->d, &t->loc, "unexpected '}'");
			result = -1;
			next(p);
			continue;
		}
		const char *start = t->start;
		int depth = p->depth;
		struct mark before = mark_now(p);
		p->value_error = false;
		if (parse_statement(p, scope)) {
			result = -1;
			mark_broken(p, &before);
			recover(p, start, depth);
			p->quiet = p->abandoned;
			continue;
		}
		if (p->value_error)
			mark_broken(p, &before);
		p->quiet = p->abandoned;
	}
	return result;
}

uint32_t policy_text_hash(const char *text, size_t len)
{
	uint32_t h = POLICY_FNV32_OFFSET_BASIS;
	bool pending_space = false, any = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (isspace(c)) {
			pending_space = any;
			continue;
		}
		if (pending_space) {
			h = policy_fnv32_byte(h, ' ');
			pending_space = false;
		}
		h = policy_fnv32_byte(h, c);
		any = true;
	}
	return h;
}

int policy_parse(struct policy_ast *ast, const char *file, const char *text, size_t len,
		 size_t scope, const struct policy_parse_include *inc, struct policy_diags *d)
{
	struct parser p = { .ast = ast, .d = d, .inc = inc };
	size_t errors = d->n_errors;
	policy_lexer_init(&p.lx, file, text, len, d);
	for (size_t i = 0; i < LOOKAHEAD; i++)
		policy_lexer_next(&p.lx, &p.la[i]);
	p.prev_end = text;
	parse_statements(&p, scope, false);
	return d->n_errors > errors ? -1 : 0;
}
