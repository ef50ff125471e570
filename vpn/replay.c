/* The sliding-window replay filter of transport counters (whitepaper §5.4.6,
 * RFC 6479): a ring of 64-bit words; the window is the ring minus one word,
 * 8128 counters, as in the kernel module and wireguard-go. */
#include <string.h>

#include "vpn/internal.h"

#define RING_WORDS (VPN_REPLAY_RING_BITS / VPN_REPLAY_WORD_BITS)

void vpn_replay_init(struct vpn_replay *r)
{
	memset(r, 0, sizeof(*r));
}

bool vpn_replay_check(struct vpn_replay *r, uint64_t counter)
{
	if (counter >= VPN_REJECT_AFTER_MESSAGES)
		return false;
	/* Shifted by one so that greatest == 0 means "nothing seen" and
	 * counter 0 is still accepted. */
	counter++;
	if (counter + VPN_REPLAY_WINDOW < r->greatest)
		return false;
	uint64_t index = counter / VPN_REPLAY_WORD_BITS;
	if (counter > r->greatest) {
		uint64_t current = r->greatest / VPN_REPLAY_WORD_BITS;
		uint64_t diff = index - current;
		if (diff > RING_WORDS)
			diff = RING_WORDS;
		for (uint64_t i = 1; i <= diff; i++)
			r->bitmap[(current + i) % RING_WORDS] = 0;
		r->greatest = counter;
	}
	uint64_t bit = 1ULL << (counter % VPN_REPLAY_WORD_BITS);
	uint64_t *word = &r->bitmap[index % RING_WORDS];
	if (*word & bit)
		return false;
	*word |= bit;
	return true;
}
