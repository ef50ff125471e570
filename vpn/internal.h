/* Internal structures of the VPN library, shared by its files and by its
 * unit tests and fuzz targets. Not part of the contract (that is vpn/vpn.h).
 *
 * The engine is one event loop per device: every function here runs on the
 * loop's thread, with dev->lock held, so nothing inside needs atomics. The
 * one exception is vpn_crypt_job_run, which the AEAD worker threads of
 * crypt.c also run, on jobs the engine thread handed over and waits for. */
#ifndef HVGATE_VPN_INTERNAL_H
#define HVGATE_VPN_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "vpn/vpn.h"

/* ---- sizes from the whitepaper §5.4 ---- */
#define VPN_BLAKE2S_BLOCK    64
#define VPN_BLAKE2S_OUT      32
#define VPN_MAC_LEN          16 /* mac1, mac2, and the cookie τ */
#define VPN_AEAD_TAG         16 /* Poly1305 */
#define VPN_TAI64N_LEN       12 /* §5.4.2: 8-byte seconds, 4-byte nanoseconds */
#define VPN_COOKIE_NONCE_LEN 24 /* XChaCha20 nonce, §5.4.7 */

/* §5.4.2-§5.4.7: message types (first byte, followed by 3 zero bytes). */
enum vpn_msg_type {
	VPN_MSG_INITIATION = 1,
	VPN_MSG_RESPONSE = 2,
	VPN_MSG_COOKIE = 3,
	VPN_MSG_DATA = 4,
};

struct vpn_msg_macs {
	uint8_t mac1[VPN_MAC_LEN];
	uint8_t mac2[VPN_MAC_LEN];
} __attribute__((packed));

/* §5.4.2 */
struct vpn_msg_initiation {
	uint32_t type; /* little endian */
	uint32_t sender_index;
	uint8_t ephemeral[VPN_KEY_LEN];
	uint8_t encrypted_static[VPN_KEY_LEN + VPN_AEAD_TAG];
	uint8_t encrypted_timestamp[VPN_TAI64N_LEN + VPN_AEAD_TAG];
	struct vpn_msg_macs macs;
} __attribute__((packed));

/* §5.4.3 */
struct vpn_msg_response {
	uint32_t type;
	uint32_t sender_index;
	uint32_t receiver_index;
	uint8_t ephemeral[VPN_KEY_LEN];
	uint8_t encrypted_nothing[VPN_AEAD_TAG];
	struct vpn_msg_macs macs;
} __attribute__((packed));

/* §5.4.7 */
struct vpn_msg_cookie {
	uint32_t type;
	uint32_t receiver_index;
	uint8_t nonce[VPN_COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[VPN_MAC_LEN + VPN_AEAD_TAG];
} __attribute__((packed));

/* §5.4.6: header of a transport data message; the ciphertext follows. */
struct vpn_msg_data {
	uint32_t type;
	uint32_t receiver_index;
	uint64_t counter; /* little endian */
} __attribute__((packed));

#define VPN_MSG_INITIATION_LEN 148
#define VPN_MSG_RESPONSE_LEN   92
#define VPN_MSG_COOKIE_LEN     64
#define VPN_MSG_DATA_MIN_LEN   (16 + VPN_AEAD_TAG) /* a keepalive */
#define VPN_MSG_PADDING        16                  /* §5.4.6: plaintext padded to 16 */

/* ---- protocol constants, §6.1 (durations in nanoseconds, before scaling) ---- */
#define VPN_NSEC_PER_SEC          1000000000ULL
#define VPN_REKEY_AFTER_MESSAGES  (1ULL << 60)
#define VPN_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))
#define VPN_REKEY_AFTER_TIME      (120 * VPN_NSEC_PER_SEC)
#define VPN_REJECT_AFTER_TIME     (180 * VPN_NSEC_PER_SEC)
#define VPN_REKEY_ATTEMPT_TIME    (90 * VPN_NSEC_PER_SEC)
#define VPN_REKEY_TIMEOUT         (5 * VPN_NSEC_PER_SEC)
#define VPN_KEEPALIVE_TIMEOUT     (10 * VPN_NSEC_PER_SEC)
#define VPN_COOKIE_SECRET_MAX_AGE (120 * VPN_NSEC_PER_SEC) /* §5.4.7 */
#define VPN_COOKIE_SECRET_LATENCY (5 * VPN_NSEC_PER_SEC)   /* kernel cookie.c */
/* Kernel timers.c: retries are jittered by up to a third of a second. */
#define VPN_REKEY_TIMEOUT_JITTER_MAX (VPN_NSEC_PER_SEC / 3)
/* §6.4: 90 s of attempts at one per REKEY_TIMEOUT. */
#define VPN_MAX_HANDSHAKE_ATTEMPTS (VPN_REKEY_ATTEMPT_TIME / VPN_REKEY_TIMEOUT)
/* Kernel noise.c: at most 50 initiations per second are accepted from a
 * peer; timestamps are whitened to the power of two below 1 s / 50. */
#define VPN_INITIATIONS_PER_SECOND 50
#define VPN_TAI64N_WHITENING       (1U << 24)
/* TAI64 label: 2^62 plus the 10 s TAI-UTC offset of 1972 (tai64 format). */
#define VPN_TAI64_BASE 0x400000000000000aULL
/* Kernel queueing.h: packets queued for a peer while it has no session. */
#define VPN_MAX_STAGED 128
/* Largest inner packet we carry: 65535-byte IP packets are what a TUN with
 * offloads hands us; without offloads it is the MTU. */
#define VPN_MAX_PACKET 65535
/* wireguard-go's default MTU for the TUN it creates (1500 - 80 of overhead). */
#define VPN_DEFAULT_MTU 1420
/* Room for one datagram on the wire: an MTU-sized inner packet, padding, the
 * data header and the tag; 2048 covers jumbo-free links with margin. */
#define VPN_WIRE_BUF     2048
#define VPN_VNET_HDR_LEN 10 /* struct virtio_net_hdr, linux/virtio_net.h */
/* Packets handled per system call in the batch paths. */
#define VPN_BATCH 64

/* ---- memory for secrets (secure.c) ---- */
void *vpn_secure_alloc(size_t size);
void vpn_secure_free(void *p, size_t size);

/* ---- BLAKE2s (blake2s.c) ---- */
struct vpn_blake2s {
	uint32_t h[8];
	uint32_t t[2];
	uint8_t buf[VPN_BLAKE2S_BLOCK];
	size_t buflen;
	size_t outlen;
};
void vpn_blake2s_init(struct vpn_blake2s *s, size_t outlen);
void vpn_blake2s_init_key(struct vpn_blake2s *s, size_t outlen, const uint8_t *key, size_t keylen);
void vpn_blake2s_update(struct vpn_blake2s *s, const uint8_t *in, size_t inlen);
void vpn_blake2s_final(struct vpn_blake2s *s, uint8_t *out);
void vpn_blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *in,
		 size_t inlen);
void vpn_hmac_blake2s(uint8_t out[VPN_BLAKE2S_OUT], const uint8_t *key, size_t keylen,
		      const uint8_t *in, size_t inlen);

/* ---- replay window (replay.c), RFC 6479 with the kernel's sizes ---- */
#define VPN_REPLAY_WORD_BITS 64
#define VPN_REPLAY_RING_BITS 8192 /* kernel noise.h: 128 words of 64 bits */
#define VPN_REPLAY_WINDOW    (VPN_REPLAY_RING_BITS - VPN_REPLAY_WORD_BITS) /* 8128 */
struct vpn_replay {
	uint64_t greatest; /* highest counter seen, plus one (0: none) */
	uint64_t bitmap[VPN_REPLAY_RING_BITS / VPN_REPLAY_WORD_BITS];
};
void vpn_replay_init(struct vpn_replay *r);
/* True if counter is new (and records it); false if replayed, too old, or at
 * or beyond VPN_REJECT_AFTER_MESSAGES. Call after authenticating. */
bool vpn_replay_check(struct vpn_replay *r, uint64_t counter);

/* ---- endpoints ---- */
union vpn_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};
struct vpn_endpoint {
	union vpn_sockaddr addr; /* family 0: none */
	/* The local address the peer reached us on (IP_PKTINFO), used as the
	 * source of our replies; family 0: let the kernel choose. */
	union {
		struct in_addr in4;
		struct in6_addr in6;
	} src;
	int src_family;
	int src_ifindex;
};
int vpn_endpoint_parse(const char *text, union vpn_sockaddr *out);
void vpn_endpoint_format(const union vpn_sockaddr *a, char *out, size_t outlen);
socklen_t vpn_sockaddr_len(const union vpn_sockaddr *a);
bool vpn_sockaddr_equal(const union vpn_sockaddr *a, const union vpn_sockaddr *b);

/* ---- allowed-ips trie (allowedips.c) ---- */
struct vpn_peer;
struct vpn_trie_node {
	struct vpn_trie_node *child[2];
	struct vpn_peer *peer; /* the peer owning exactly this prefix, or NULL */
};
struct vpn_allowedips {
	struct vpn_trie_node *root4, *root6;
};
void vpn_allowedips_init(struct vpn_allowedips *t);
void vpn_allowedips_free(struct vpn_allowedips *t);
/* Assigns a prefix to a peer (moving it from its previous owner). */
int vpn_allowedips_insert(struct vpn_allowedips *t, const struct vpn_prefix *p,
			  struct vpn_peer *peer);
int vpn_allowedips_remove(struct vpn_allowedips *t, const struct vpn_prefix *p,
			  struct vpn_peer *peer);
void vpn_allowedips_remove_peer(struct vpn_allowedips *t, struct vpn_peer *peer);
/* Longest-prefix match; addr is 4 or 16 bytes, network order. */
struct vpn_peer *vpn_allowedips_lookup(const struct vpn_allowedips *t, int family,
				       const uint8_t *addr);
int vpn_prefix_parse(const char *text, struct vpn_prefix *out);
/* Checks family and length and clears the host bits: 0 or -EINVAL. */
int vpn_prefix_normalize(struct vpn_prefix *p);
void vpn_prefix_format(const struct vpn_prefix *p, char *out, size_t outlen);

/* ---- keys and sessions (noise.c) ---- */
struct vpn_keypair {
	uint8_t send_key[VPN_KEY_LEN];
	uint8_t recv_key[VPN_KEY_LEN];
	uint64_t send_counter;
	struct vpn_replay replay;
	uint64_t birth_ns;
	uint32_t local_index;
	uint32_t remote_index;
	bool initiator;
	bool valid;
	bool in_use; /* slot taken */
};

enum vpn_handshake_state {
	VPN_HS_NONE,
	VPN_HS_CREATED_INITIATION,
	VPN_HS_CONSUMED_INITIATION,
	VPN_HS_CREATED_RESPONSE,
	VPN_HS_CONSUMED_RESPONSE,
};

struct vpn_handshake {
	enum vpn_handshake_state state;
	uint8_t ephemeral_private[VPN_KEY_LEN];
	uint8_t remote_ephemeral[VPN_KEY_LEN];
	uint8_t precomputed_static_static[VPN_KEY_LEN];
	uint8_t psk[VPN_KEY_LEN];
	uint8_t hash[VPN_BLAKE2S_OUT];
	uint8_t chaining_key[VPN_BLAKE2S_OUT];
	uint8_t latest_timestamp[VPN_TAI64N_LEN];
	uint64_t last_initiation_consumption_ns;
	uint32_t local_index;
	uint32_t remote_index;
};

/* Index table (noise.c): receiver indices of messages find their handshake
 * or keypair here. Entries are embedded in peers: no allocation. */
struct vpn_index_entry {
	uint32_t index;
	struct vpn_peer *peer;
	struct vpn_keypair *keypair; /* NULL: the peer's handshake */
	struct vpn_index_entry *next;
};
#define VPN_INDEX_BUCKETS 1024

/* ---- cookies (cookie.c), §5.4.4 and §5.4.7 ---- */
struct vpn_cookie_checker {
	uint8_t secret[VPN_KEY_LEN];
	uint64_t secret_birth_ns;
	uint8_t mac1_key[VPN_KEY_LEN];              /* Hash(LABEL_MAC1 || our public) */
	uint8_t cookie_encryption_key[VPN_KEY_LEN]; /* Hash(LABEL_COOKIE || our public) */
};
struct vpn_cookie {
	uint8_t mac1_key[VPN_KEY_LEN];              /* Hash(LABEL_MAC1 || peer public) */
	uint8_t cookie_decryption_key[VPN_KEY_LEN]; /* Hash(LABEL_COOKIE || peer public) */
	uint8_t cookie[VPN_MAC_LEN];
	uint64_t birth_ns; /* 0: no cookie */
	uint8_t last_mac1_sent[VPN_MAC_LEN];
	bool have_sent_mac1;
};
enum vpn_cookie_verdict {
	VPN_COOKIE_INVALID_MAC1,
	VPN_COOKIE_VALID_MAC1,          /* mac1 good, mac2 missing or bad */
	VPN_COOKIE_VALID_MAC1_AND_MAC2, /* both good: the sender proved its address */
};

struct vpn_device;
void vpn_cookie_checker_init(struct vpn_cookie_checker *c, const uint8_t our_public[VPN_KEY_LEN]);
void vpn_cookie_init(struct vpn_cookie *c, const uint8_t peer_public[VPN_KEY_LEN]);
/* msg ends with struct vpn_msg_macs; len is the whole message. */
void vpn_cookie_add_macs(struct vpn_cookie *c, uint8_t *msg, size_t len, uint64_t now_ns,
			 uint64_t cookie_max_age_ns);
enum vpn_cookie_verdict vpn_cookie_validate(struct vpn_cookie_checker *c, const uint8_t *msg,
					    size_t len, const union vpn_sockaddr *src,
					    bool check_mac2, uint64_t now_ns,
					    uint64_t secret_max_age_ns);
int vpn_cookie_reply_create(struct vpn_cookie_checker *c, struct vpn_msg_cookie *out,
			    const uint8_t *msg, size_t len, uint32_t receiver_index,
			    const union vpn_sockaddr *src, uint64_t now_ns,
			    uint64_t secret_max_age_ns);
int vpn_cookie_reply_consume(struct vpn_cookie *c, const struct vpn_msg_cookie *msg,
			     uint64_t now_ns);

/* ---- peers (peer.c) ---- */
struct vpn_staged {
	uint8_t *buf; /* VPN_MAX_STAGED slots of VPN_WIRE_BUF, allocated on first use */
	uint16_t len[VPN_MAX_STAGED];
	unsigned int head, count;
};

struct vpn_peer {
	struct vpn_device *dev;
	struct vpn_peer *next;
	uint8_t public_key[VPN_KEY_LEN];
	struct vpn_handshake handshake;
	struct vpn_keypair slots[4]; /* current, previous, next, and one being made */
	struct vpn_keypair *current, *previous, *next_keypair;
	struct vpn_index_entry hs_entry;
	struct vpn_index_entry kp_entry[4];
	struct vpn_cookie cookie;
	struct vpn_endpoint endpoint;
	uint16_t persistent_keepalive; /* seconds, 0 off */
	/* allowed-ips in insertion order, for the UAPI (the trie has the truth) */
	struct vpn_prefix *allowed;
	size_t n_allowed, cap_allowed;
	/* timers (timers.c): absolute monotonic deadlines in ns, 0 = disarmed */
	uint64_t t_retransmit_handshake;
	uint64_t t_send_keepalive;
	uint64_t t_new_handshake;
	uint64_t t_zero_key_material;
	uint64_t t_persistent_keepalive;
	unsigned int handshake_attempts;
	bool sent_lastminute_handshake;
	bool need_another_keepalive;
	uint64_t last_sent_handshake_ns;     /* 0: never */
	struct timespec last_handshake_wall; /* zero: never */
	uint64_t rx_bytes, tx_bytes;
	uint64_t handshakes_completed;
	struct vpn_staged staged;
};

/* ---- the device (device.c) ---- */
enum vpn_drop_reason {
	VPN_DROP_MAC1,
	VPN_DROP_HANDSHAKE,  /* failed to decrypt or authenticate */
	VPN_DROP_TIMESTAMP,  /* replayed or flooded initiation */
	VPN_DROP_RATELIMIT,  /* under load, without a valid cookie */
	VPN_DROP_NO_KEYPAIR, /* data for an unknown or expired index */
	VPN_DROP_DECRYPT,
	VPN_DROP_REPLAY,
	VPN_DROP_ALLOWEDIPS, /* inner source not in the peer's allowed-ips */
	VPN_DROP_NO_PEER,    /* no route to a peer for an outgoing packet */
	VPN_DROP_MALFORMED,
	VPN_DROP_STAGED_FULL,
	VPN_DROP_SEND_FAILED, /* the socket refused (buffer full, no route) */
	VPN_DROP__COUNT,
};

/* Per-source rate limit of handshakes under load (kernel ratelimiter.c:
 * 20 per second with a burst of 5). */
#define VPN_RATELIMIT_PER_SEC 20
#define VPN_RATELIMIT_BURST   5
#define VPN_RATELIMIT_SLOTS   4096
struct vpn_ratelimit_slot {
	uint8_t key[18]; /* address (16) and nothing else: per host, not port */
	uint64_t tokens_ns;
	uint64_t last_ns;
};

/* A super-packet being built from received TCP segments (gro.c). */
struct vpn_gro {
	uint8_t buf[VPN_VNET_HDR_LEN + VPN_MAX_PACKET];
	size_t len; /* IP packet length after the header room; 0: empty */
	size_t ip_hl, tcp_hl;
	uint32_t next_seq;
	uint16_t gso_size;
	unsigned int segs;
	bool v6, last_short, psh;
};

/* One AEAD operation of the data path, in place on a whole data message
 * (crypt.c). A copy of the key travels with it, so a worker never reads a
 * keypair the engine thread may change; it is wiped after the run. */
struct vpn_crypt_job {
	uint8_t key[VPN_KEY_LEN];
	uint8_t *msg;     /* header, body, tag */
	size_t len;       /* of the whole message */
	size_t plain_len; /* open: the plaintext's length, at msg + 16 */
	int result;       /* open: 0 or -EBADMSG */
	bool seal;
};
/* Threads doing AEAD work, the engine thread included: one per online CPU,
 * at most this many; HVGATE_VPN_WORKERS=N sets N (1: the engine alone). */
#define VPN_CRYPT_MAX_THREADS 8
/* A batch smaller than this is not worth waking a worker for: waking one
 * costs about what sealing 16 KiB does (measured here, ChaCha20-Poly1305
 * near 1 GB/s per core, a futex wake and switch some microseconds); a
 * batch of TCP acknowledgements stays on the engine thread. */
#define VPN_CRYPT_PARALLEL_MIN_BYTES 16384
struct vpn_crypt;
unsigned int vpn_crypt_threads_wanted(void);
/* False when HVGATE_VPN_PARALLEL=always: every batch big enough goes to
 * the workers, whatever the load (the behaviour before the policy). */
bool vpn_crypt_adaptive_wanted(void);
/* threads <= 1: *out is NULL and vpn_crypt_run works inline. adaptive:
 * batches go to the workers only when the policy below says they pay
 * (vpn_crypt_tick drives it); otherwise always. */
int vpn_crypt_create(struct vpn_crypt **out, unsigned int threads, bool adaptive);
/* The engine thread, once per loop: now, and how long it has just been
 * blocked waiting for events. Every VPN_CRYPT_WINDOW_NS it closes a window
 * and steps the policy. */
void vpn_crypt_tick(struct vpn_crypt *c, uint64_t now_ns, uint64_t waited_ns);
/* Batches run by the workers and the engine thread, and whether the
 * workers are in use now (metrics; the engine thread's, under dev->lock). */
void vpn_crypt_stats(const struct vpn_crypt *c, uint64_t *parallel, uint64_t *inline_batches,
		     bool *in_use);

/* When the workers pay (crypt.c). Handing half a batch to a worker speeds
 * the engine thread up only if the worker gets a CPU at once; otherwise the
 * wake-ups, the cache lines crossing cores and the waits for a worker not
 * yet scheduled cost more than the work they share. On a 2-core machine
 * with both iperf3 ends on it the engine alone was faster when the machine
 * was otherwise quiet, and the workers (more threads, so more of a
 * contended CPU) were faster under other processes' load: neither the load
 * nor the core count predicts it, so the engine thread measures it, in
 * windows of 100 ms:
 * - the engine alone, until a window where the engine thread was busy (not
 *   blocked waiting for events) at least half the time;
 * - then a trial: VPN_CRYPT_TRIAL_PAIRS pairs of windows, one alone and one
 *   with the workers, interleaved (load that drifts over the trial weighs
 *   on both alike), comparing the bytes sealed and opened per second;
 * - the workers win if they moved at least 3% more (the engine alone costs
 *   less CPU for the same bytes); the winner is kept for
 *   VPN_CRYPT_KEEP_WINDOWS windows, twice as long each time the same mode
 *   wins again (up to VPN_CRYPT_KEEP_MAX), then measured afresh; a tunnel
 *   that is no longer busy goes back to the engine alone.
 * Order is unaffected either way: a batch is done whole before the engine
 * thread goes on. */
#define VPN_CRYPT_WINDOW_NS    (100 * 1000 * 1000ull)
#define VPN_CRYPT_TRIAL_PAIRS  6
#define VPN_CRYPT_KEEP_WINDOWS 40
#define VPN_CRYPT_KEEP_MAX     320
struct vpn_crypt_sample {
	uint64_t window_ns; /* wall time of the window */
	uint64_t busy_ns;   /* of it, the engine thread not blocked waiting for events */
	uint64_t bytes;     /* data messages sealed and opened in it */
};
enum vpn_crypt_phase {
	VPN_CRYPT_IDLE,  /* the engine alone, waiting for a busy window */
	VPN_CRYPT_TRIAL, /* alternating, measuring both */
	VPN_CRYPT_KEEP,  /* the winner, for `keep` windows */
};
struct vpn_crypt_policy {
	bool parallel; /* batches go to the workers */
	enum vpn_crypt_phase phase;
	unsigned int windows; /* in this phase */
	unsigned int keep;    /* windows the winner is kept this time */
	bool last_winner_parallel;
	uint64_t bytes[2], ns[2]; /* of the trial: [0] alone, [1] with the workers */
};
void vpn_crypt_policy_step(struct vpn_crypt_policy *p, const struct vpn_crypt_sample *s);
void vpn_crypt_destroy(struct vpn_crypt *c);
/* Runs every job (c may be NULL) and returns when all are done; wipes
 * their keys. Called by the engine thread only. */
void vpn_crypt_run(struct vpn_crypt *c, struct vpn_crypt_job *jobs, unsigned int n);
void vpn_crypt_job_run(struct vpn_crypt_job *job);
/* Wipes the session key from the calling thread's cipher context. */
void vpn_crypt_forget_keys(void);

/* Messages per recvmmsg, and the room for each: a coalesced run of
 * datagrams is at most 64 KiB (the kernel's UDP GRO limit). */
#define VPN_RECV_MSGS VPN_BATCH
#define VPN_RECV_BUF  65536
/* Preallocated I/O buffers of a device: the hot paths allocate nothing. */
#define VPN_OUT_AREA (VPN_BATCH * VPN_WIRE_BUF)
struct vpn_batch {
	/* Outgoing datagrams, back to back so that a run of equal-sized ones
	 * to one endpoint can leave in one UDP GSO send. */
	uint8_t out_area[VPN_OUT_AREA];
	size_t out_used;
	unsigned int n_out;
	uint32_t out_off[VPN_BATCH];
	uint16_t out_len[VPN_BATCH];
	struct vpn_endpoint out_ep[VPN_BATCH];
	/* Outgoing datagrams are sealed together at the flush. */
	struct vpn_crypt_job seal[VPN_BATCH];
	/* Received data messages, opened together (receive.c). */
	struct vpn_crypt_job open[VPN_BATCH];
	/* Incoming datagrams (recvmmsg): VPN_RECV_MSGS buffers of
	 * VPN_RECV_BUF, each a datagram or a run of them coalesced by the
	 * kernel (UDP GRO); allocated with the batch, pages touched as used. */
	uint8_t *in_area;
	/* One packet read from the TUN (a TSO super-packet with offloads). */
	uint8_t tun_buf[VPN_VNET_HDR_LEN + VPN_MAX_PACKET];
	/* A decrypted packet on its way to the TUN, after a zeroed vnet header. */
	uint8_t plain[VPN_VNET_HDR_LEN + VPN_WIRE_BUF];
	/* Scratch for segmenting a super-packet. */
	uint8_t seg[VPN_WIRE_BUF];
	struct vpn_gro gro;
};

/* A connection to the UAPI socket, served by the engine thread without
 * ever blocking it (uapi.c). */
#define VPN_UAPI_MAX_CLIENTS 8
/* epoll tags of the UAPI connections: VPN_UAPI_TAG + slot. */
#define VPN_UAPI_TAG 64
struct vpn_uapi_client {
	bool used;
	bool eof; /* the client has sent all it will */
	int fd;
	char *in;
	size_t in_len, in_cap;
	char *out; /* replies not yet written */
	size_t out_len, out_off;
	uint64_t deadline_ns; /* the request must be in and its reply out by then */
};

struct vpn_device {
	pthread_mutex_t lock;
	char ifname[16];
	char state_dir[256];
	int tun_fd, udp4_fd, udp6_fd, uapi_fd, epoll_fd, wake_fd;
	struct vpn_uapi_client uapi_clients[VPN_UAPI_MAX_CLIENTS];
	uint64_t next_uapi_ns; /* earliest UAPI deadline; 0: none */
	bool tun_vnet_hdr;
	bool tun_gro; /* coalesce received TCP (gro.c); HVGATE_VPN_NO_GRO clears it */
	bool udp_gso; /* the kernel takes UDP_SEGMENT */
	uint16_t listen_port;
	uint32_t fwmark;
	int mtu;
	double time_scale;
	bool has_identity;
	uint8_t static_private[VPN_KEY_LEN];
	uint8_t static_public[VPN_KEY_LEN];
	struct vpn_cookie_checker cookie_checker;
	struct vpn_peer *peers;
	size_t n_peers;
	struct vpn_allowedips allowedips;
	struct vpn_index_entry *index[VPN_INDEX_BUCKETS];
	uint8_t last_sent_timestamp[VPN_TAI64N_LEN];
	/* under-load detection (receive.c) */
	uint64_t load_window_start_ns;
	unsigned int load_window_count;
	uint64_t under_load_until_ns;
	struct vpn_ratelimit_slot *ratelimit;
	/* statistics */
	uint64_t drops[VPN_DROP__COUNT];
	uint64_t handshakes_initiated, handshakes_responded, cookies_sent;
	uint64_t rx_packets, tx_packets;
	int last_send_errno;
	/* loop */
	volatile bool stop;
	bool thread_running;
	pthread_t thread;
	uint64_t next_timer_ns;
	uint64_t next_mtu_check_ns; /* `ip link set mtu` changes what padding may reach */
	struct vpn_batch *batch;
	struct vpn_crypt *crypt; /* NULL: the engine thread does all AEAD work */
	bool crypt_started;      /* the first run_once made the workers */
};

static inline uint64_t vpn_scaled(const struct vpn_device *dev, uint64_t ns)
{
	return (uint64_t)((double)ns * dev->time_scale);
}
uint64_t vpn_now_ns(void); /* CLOCK_MONOTONIC (CLOCK_BOOTTIME where it exists) */

/* noise.c */
int vpn_noise_dh(uint8_t out[VPN_KEY_LEN], const uint8_t priv[VPN_KEY_LEN],
		 const uint8_t pub[VPN_KEY_LEN]);
void vpn_noise_clamp(uint8_t key[VPN_KEY_LEN]);
void vpn_noise_tai64n(uint8_t out[VPN_TAI64N_LEN]);
int vpn_noise_create_initiation(struct vpn_peer *peer, struct vpn_msg_initiation *msg);
struct vpn_peer *vpn_noise_consume_initiation(struct vpn_device *dev,
					      const struct vpn_msg_initiation *msg,
					      int *drop_reason);
int vpn_noise_create_response(struct vpn_peer *peer, struct vpn_msg_response *msg);
struct vpn_peer *vpn_noise_consume_response(struct vpn_device *dev,
					    const struct vpn_msg_response *msg, int *drop_reason);
/* Turns a finished handshake into the peer's newest keypair. */
int vpn_noise_begin_session(struct vpn_peer *peer);
/* The keypair a received index names; NULL if none. */
struct vpn_keypair *vpn_noise_lookup_keypair(struct vpn_device *dev, uint32_t index,
					     struct vpn_peer **peer);
/* A responder's "next" keypair becomes current on first use (§5.4.6). */
bool vpn_noise_received_with_keypair(struct vpn_peer *peer, struct vpn_keypair *kp);
/* The peer owning an index, whether handshake or keypair (cookie replies). */
struct vpn_peer *vpn_noise_lookup_any(struct vpn_device *dev, uint32_t index);
void vpn_noise_index_remove(struct vpn_device *dev, struct vpn_index_entry *e);
void vpn_noise_index_add(struct vpn_device *dev, struct vpn_index_entry *e);
void vpn_noise_clear_keypairs(struct vpn_peer *peer);
void vpn_noise_clear_handshake(struct vpn_peer *peer);
bool vpn_keypair_expired(const struct vpn_device *dev, const struct vpn_keypair *kp, uint64_t now);
/* Transport (§5.4.6): out gets the data message; room for the header,
 * padding and tag is the caller's. Padding rounds len up to 16 but not past
 * mtu (kernel send.c: a full-MTU packet must not grow); mtu 0: no cap. */
void vpn_noise_aead_nonce(uint8_t nonce[12], uint64_t counter);
/* The data message without its encryption (header, plaintext, padding):
 * returns the length it will have; vpn_crypt_job_run seals it. */
size_t vpn_noise_encrypt_prepare(const struct vpn_keypair *kp, uint8_t *out, const uint8_t *plain,
				 size_t len, uint64_t counter, size_t mtu);
size_t vpn_noise_encrypt(struct vpn_keypair *kp, uint8_t *out, const uint8_t *plain, size_t len,
			 uint64_t counter, size_t mtu);
int vpn_noise_decrypt(struct vpn_keypair *kp, uint8_t *out, const uint8_t *msg, size_t len,
		      size_t *plain_len);

/* peer.c */
struct vpn_peer *vpn_peer_create(struct vpn_device *dev, const uint8_t public_key[VPN_KEY_LEN]);
void vpn_peer_destroy(struct vpn_peer *peer);
struct vpn_peer *vpn_peer_lookup(struct vpn_device *dev, const uint8_t public_key[VPN_KEY_LEN]);
void vpn_peer_refresh_static(struct vpn_peer *peer);
void vpn_peer_set_endpoint(struct vpn_peer *peer, const union vpn_sockaddr *addr,
			   const struct vpn_endpoint *local);
int vpn_peer_add_allowed(struct vpn_peer *peer, const struct vpn_prefix *p);
void vpn_peer_clear_allowed(struct vpn_peer *peer);
void vpn_peer_stage(struct vpn_peer *peer, const uint8_t *pkt, size_t len);
void vpn_peer_purge_staged(struct vpn_peer *peer);

/* timers.c, §6 */
void vpn_timers_data_sent(struct vpn_peer *peer);
void vpn_timers_data_received(struct vpn_peer *peer);
void vpn_timers_any_authenticated_packet_sent(struct vpn_peer *peer);
void vpn_timers_any_authenticated_packet_received(struct vpn_peer *peer);
void vpn_timers_any_authenticated_packet_traversal(struct vpn_peer *peer);
void vpn_timers_handshake_initiated(struct vpn_peer *peer);
void vpn_timers_handshake_complete(struct vpn_peer *peer);
void vpn_timers_session_derived(struct vpn_peer *peer);
void vpn_timers_stop(struct vpn_peer *peer);
/* Runs whatever is due; returns the next deadline (0: none). */
uint64_t vpn_timers_run(struct vpn_device *dev, uint64_t now);

/* send.c */
void vpn_send_handshake_initiation(struct vpn_peer *peer, bool is_retry);
void vpn_send_handshake_response(struct vpn_peer *peer);
void vpn_send_keepalive(struct vpn_peer *peer);
void vpn_send_staged(struct vpn_peer *peer);
/* A packet read from the TUN (plain IP). */
void vpn_send_packet(struct vpn_device *dev, const uint8_t *pkt, size_t len);
/* The two halves of vpn_send_packet, for the segments of one super-packet
 * (one destination): the peer its destination routes to (NULL: none;
 * *malformed if it is no IP packet), and the send to that peer. */
struct vpn_peer *vpn_send_route(struct vpn_device *dev, const uint8_t *pkt, size_t len,
				bool *malformed);
void vpn_send_to_peer(struct vpn_device *dev, struct vpn_peer *peer, const uint8_t *pkt,
		      size_t len);
/* Flushes queued datagrams (sendmmsg / UDP GSO). */
void vpn_send_flush(struct vpn_device *dev);
int vpn_send_datagram(struct vpn_device *dev, const struct vpn_endpoint *ep, const uint8_t *buf,
		      size_t len);

/* receive.c */
void vpn_receive_datagram(struct vpn_device *dev, uint8_t *buf, size_t len,
			  const struct vpn_endpoint *from);
/* True for a datagram that vpn_receive_data_batch takes. */
bool vpn_receive_is_data(const uint8_t *buf, size_t len);
/* n (at most VPN_BATCH) data messages, in arrival order: opened together
 * (in place), then handled one by one in that order as
 * vpn_receive_datagram would. */
void vpn_receive_data_batch(struct vpn_device *dev, uint8_t *const *bufs, const size_t *lens,
			    const struct vpn_endpoint *const *from, unsigned int n);

/* socket.c */
int vpn_socket_open(struct vpn_device *dev, uint16_t port);
void vpn_socket_close(struct vpn_device *dev);
/* Reads a batch from one UDP socket and hands each datagram to receive. */
int vpn_socket_receive_batch(struct vpn_device *dev, int fd);

/* tun.c */
int vpn_tun_create(const char *ifname, char *actual, size_t actual_len, bool *vnet_hdr);
int vpn_tun_set_mtu(const char *ifname, int mtu);
int vpn_tun_get_mtu(const char *ifname);
int vpn_tun_read_batch(struct vpn_device *dev);
/* Writes (or, with offloads, coalesces) a packet; pkt must have
 * VPN_VNET_HDR_LEN bytes of room before it. vpn_tun_flush writes what is
 * being coalesced. */
int vpn_tun_write(struct vpn_device *dev, uint8_t *pkt, size_t len);
void vpn_tun_flush(struct vpn_device *dev);
/* gro.c */
void vpn_gro_write(struct vpn_device *dev, uint8_t *pkt, size_t len);
void vpn_gro_flush(struct vpn_device *dev);

/* uapi.c */
int vpn_uapi_listen(const char *ifname);
void vpn_uapi_unlink(const char *ifname);
/* "the UAPI socket PATH" for error messages. */
void vpn_uapi_describe(const char *ifname, char *out, size_t len);
/* The engine thread, with dev->lock held: accepts on uapi_fd; serves a
 * readable or writable connection; closes those past their deadline and
 * returns the next deadline (0: none); closes all. */
void vpn_uapi_accept(struct vpn_device *dev);
void vpn_uapi_client_event(struct vpn_device *dev, unsigned slot, uint32_t events);
uint64_t vpn_uapi_expire(struct vpn_device *dev, uint64_t now_ns);
void vpn_uapi_close_all(struct vpn_device *dev);

/* device.c: settings shared by the UAPI and the struct configuration */
void vpn_device_store_timestamp(struct vpn_device *dev);
int vpn_device_set_private_key(struct vpn_device *dev, const uint8_t key[VPN_KEY_LEN]);
int vpn_device_set_listen_port(struct vpn_device *dev, uint16_t port);
int vpn_device_set_fwmark(struct vpn_device *dev, uint32_t mark);
void vpn_device_set_keepalive(struct vpn_peer *peer, uint16_t seconds);
/* uapi.c: the text protocol; dev->lock held. *reply is malloc'd. */
int vpn_uapi_process(struct vpn_device *dev, const char *req, size_t len, char **reply,
		     size_t *reply_len);

#endif
