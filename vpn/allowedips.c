/* Cryptokey routing (whitepaper §2): a binary trie per address family maps
 * an address to the peer owning the longest matching prefix. Used both ways:
 * to pick the peer for an outgoing packet, and to check that a decrypted
 * packet's source belongs to the peer that sent it. One bit per level keeps
 * it obviously right; a lookup is at most 32 or 128 steps. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpn/internal.h"

static unsigned int family_bits(int family)
{
	return family == AF_INET6 ? 128 : 32;
}

static int bit_at(const uint8_t *addr, unsigned int i)
{
	return (addr[i / 8] >> (7 - i % 8)) & 1;
}

void vpn_allowedips_init(struct vpn_allowedips *t)
{
	t->root4 = t->root6 = NULL;
}

static void free_node(struct vpn_trie_node *n)
{
	if (!n)
		return;
	free_node(n->child[0]);
	free_node(n->child[1]);
	free(n);
}

void vpn_allowedips_free(struct vpn_allowedips *t)
{
	free_node(t->root4);
	free_node(t->root6);
	t->root4 = t->root6 = NULL;
}

static struct vpn_trie_node **root_of(struct vpn_allowedips *t, int family)
{
	return family == AF_INET6 ? &t->root6 : &t->root4;
}

/* Returns the previous owner through *old. */
int vpn_allowedips_insert(struct vpn_allowedips *t, const struct vpn_prefix *p,
			  struct vpn_peer *peer)
{
	struct vpn_trie_node **n = root_of(t, p->family);

	if (p->cidr > family_bits(p->family))
		return -EINVAL;
	for (unsigned int i = 0;; i++) {
		if (!*n) {
			*n = calloc(1, sizeof(**n));
			if (!*n)
				return -ENOMEM;
		}
		if (i == p->cidr)
			break;
		n = &(*n)->child[bit_at(p->addr, i)];
	}
	(*n)->peer = peer;
	return 0;
}

/* Drops nodes that hold no peer and have no children, bottom up. */
static bool prune(struct vpn_trie_node **n)
{
	if (!*n)
		return true;
	bool empty0 = prune(&(*n)->child[0]);
	bool empty1 = prune(&(*n)->child[1]);
	if (empty0 && empty1 && !(*n)->peer) {
		free(*n);
		*n = NULL;
		return true;
	}
	return false;
}

int vpn_allowedips_remove(struct vpn_allowedips *t, const struct vpn_prefix *p,
			  struct vpn_peer *peer)
{
	struct vpn_trie_node *n = *root_of(t, p->family);

	if (p->cidr > family_bits(p->family))
		return -EINVAL;
	for (unsigned int i = 0; n && i < p->cidr; i++)
		n = n->child[bit_at(p->addr, i)];
	if (!n || n->peer != peer)
		return -ENOENT;
	n->peer = NULL;
	prune(root_of(t, p->family));
	return 0;
}

static void clear_peer(struct vpn_trie_node *n, struct vpn_peer *peer)
{
	if (!n)
		return;
	if (n->peer == peer)
		n->peer = NULL;
	clear_peer(n->child[0], peer);
	clear_peer(n->child[1], peer);
}

void vpn_allowedips_remove_peer(struct vpn_allowedips *t, struct vpn_peer *peer)
{
	clear_peer(t->root4, peer);
	clear_peer(t->root6, peer);
	prune(&t->root4);
	prune(&t->root6);
}

struct vpn_peer *vpn_allowedips_lookup(const struct vpn_allowedips *t, int family,
				       const uint8_t *addr)
{
	const struct vpn_trie_node *n = family == AF_INET6 ? t->root6 : t->root4;
	struct vpn_peer *best = NULL;
	unsigned int bits = family_bits(family);

	for (unsigned int i = 0; n; i++) {
		if (n->peer)
			best = n->peer;
		if (i == bits)
			break;
		n = n->child[bit_at(addr, i)];
	}
	return best;
}

/* "10.0.0.0/8", "2001:db8::/32"; without a length, a host route. Host bits
 * are cleared, as wg and the kernel do. */
int vpn_prefix_parse(const char *text, struct vpn_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long cidr;

	if (alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, text, alen);
	buf[alen] = 0;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	cidr = family_bits(out->family);
	if (slash) {
		char *end;
		if (!slash[1])
			return -EINVAL;
		cidr = strtoul(slash + 1, &end, 10);
		if (*end || cidr > family_bits(out->family))
			return -EINVAL;
	}
	out->cidr = (uint8_t)cidr;
	return vpn_prefix_normalize(out);
}

int vpn_prefix_normalize(struct vpn_prefix *p)
{
	if ((p->family != AF_INET && p->family != AF_INET6) || p->cidr > family_bits(p->family))
		return -EINVAL;
	for (unsigned int i = p->cidr; i < family_bits(p->family); i++)
		p->addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
	return 0;
}

void vpn_prefix_format(const struct vpn_prefix *p, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, outlen, "%s/%u", a, p->cidr);
}
