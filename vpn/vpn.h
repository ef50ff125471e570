/* hvgate VPN: a WireGuard-compatible VPN engine in userspace (libhvvpn.a).
 *
 * A vpn_device is one WireGuard interface: a TUN device, UDP sockets (v4 and
 * v6 on one port), optionally the cross-platform UAPI socket at
 * /var/run/wireguard/IFNAME.sock that the `wg` tool talks to, and the peers.
 * The protocol follows the WireGuard whitepaper (Noise_IKpsk2, cookies,
 * timers, cryptokey routing) and interoperates with the kernel module,
 * wireguard-go and `wg`.
 *
 * What lives in vpn/: this header (the public API) and internal.h; device.c
 * (creation, event loop, configuration), noise.c, cookie.c, peer.c,
 * allowedips.c, replay.c, send.c, receive.c, gro.c, timers.c, uapi.c,
 * socket.c, tun.c, key.c, secure.c, blake2s.c and csum.h (the internet
 * checksum, which appliance/'s fast path shares). It includes nothing of the rest of hvgate: the
 * daemon adapts a policy's vpn block to struct vpn_config.
 *
 * Errors: every function returning int returns 0 or a negative errno value
 * (vpn_key_file_error() words those of vpn_key_read_file()).
 * Memory: vpn_device_create allocates, vpn_device_destroy frees everything;
 * key material lives in sodium_malloc'd memory (locked, guarded, excluded
 * from core dumps) and is wiped when freed; a session key's copy for the
 * worker threads sits in ordinary memory for one batch and is wiped after it.
 * Threads: a device is driven either by calling vpn_device_run_once() from
 * one thread, or by vpn_device_start() (a thread of its own). The other
 * functions taking a device may be called from any thread at any time; they
 * take the device's lock. A device with a TUN also has worker threads that
 * only encrypt and decrypt batches the engine thread hands them and waits
 * for (one per online CPU besides it, at most 7; HVGATE_VPN_WORKERS=N sets
 * the total, 1 for none). They start with the first vpn_device_run_once, so
 * a process may fork between creating a device and running it;
 * vpn_device_destroy ends them.
 * Timers: all protocol durations are multiplied by the environment variable
 * HVGATE_VPN_TIME_SCALE (a positive number, default 1), read at creation:
 * 0.05 makes REKEY_AFTER_TIME 6 s instead of 120 s, for tests.
 */
#ifndef HVGATE_VPN_VPN_H
#define HVGATE_VPN_VPN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VPN_KEY_LEN        32
#define VPN_KEY_BASE64_LEN 44 /* without the terminating NUL */

struct vpn_device;

/* ---- keys ---- */
int vpn_key_generate(uint8_t priv[VPN_KEY_LEN]); /* a clamped Curve25519 private key */
int vpn_key_public(uint8_t pub[VPN_KEY_LEN], const uint8_t priv[VPN_KEY_LEN]);
int vpn_key_from_base64(uint8_t key[VPN_KEY_LEN], const char *text);
void vpn_key_to_base64(char out[VPN_KEY_BASE64_LEN + 1], const uint8_t key[VPN_KEY_LEN]);
int vpn_key_from_hex(uint8_t key[VPN_KEY_LEN], const char *text);
void vpn_key_to_hex(char out[2 * VPN_KEY_LEN + 1], const uint8_t key[VPN_KEY_LEN]);
/* Reads a base64 key from a file. Returns 0, or: the -errno of open(2)
 * (a symbolic link is not followed: -ELOOP); -EINVAL, not a regular file;
 * -EPERM, readable or writable by group or others (refused before reading);
 * -EIO, the read failed; -EBADMSG, not one base64 key of 32 bytes. */
int vpn_key_read_file(uint8_t key[VPN_KEY_LEN], const char *path);
/* What a vpn_key_read_file() result means, as a static message ("the key
 * file is accessible by group or others (chmod 600 it)"). */
const char *vpn_key_file_error(int err);

/* ---- devices ---- */
struct vpn_device_options {
	/* Interface name. NULL: a device without TUN or sockets (tests, fuzzing:
	 * it runs the protocol, and sends go nowhere). */
	const char *ifname;
	bool uapi;             /* serve /var/run/wireguard/IFNAME.sock */
	const char *state_dir; /* where the last sent TAI64N timestamp is kept;
				* NULL: /var/lib/hvgate/vpn */
	int mtu;               /* 0: 1420, wireguard-go's default */
	/* When creation fails, what could not be made is written here if
	 * given ("the UAPI socket /var/run/wireguard/wg0.sock"). */
	char *failed;
	size_t failed_len;
};
int vpn_device_create(struct vpn_device **out, const struct vpn_device_options *opts);
void vpn_device_destroy(struct vpn_device *dev);
const char *vpn_device_ifname(const struct vpn_device *dev);

/* An allowed-ip: a prefix (host bits may be set; they are ignored). */
struct vpn_prefix {
	uint8_t family; /* AF_INET, AF_INET6 */
	uint8_t cidr;
	uint8_t addr[16]; /* network order; v4 in the first 4 bytes */
};

/* Configuration from a struct, as `wg setconf` would do it. */
struct vpn_peer_config {
	uint8_t public_key[VPN_KEY_LEN];
	bool has_psk;
	uint8_t psk[VPN_KEY_LEN];
	const char *endpoint;                 /* "1.2.3.4:51820", "[2001:db8::1]:51820", or NULL */
	const struct vpn_prefix *allowed_ips; /* n_allowed_ips of them */
	size_t n_allowed_ips;
	uint16_t persistent_keepalive; /* seconds; 0 off */
};
struct vpn_config {
	bool has_private_key;
	uint8_t private_key[VPN_KEY_LEN];
	uint16_t listen_port; /* 0: any */
	uint32_t fwmark;
	bool replace_peers; /* remove peers not listed */
	const struct vpn_peer_config *peers;
	size_t n_peers;
};
int vpn_device_configure(struct vpn_device *dev, const struct vpn_config *cfg);
/* The UAPI text protocol without the socket: request is "get=1\n\n" or
 * "set=1\n...\n\n"; *reply is malloc'd (caller frees; a get reply holds the
 * private key in hex, so wipe it first) and ends with the "errno=N\n\n"
 * line. Returns the errno of the reply. */
int vpn_device_uapi(struct vpn_device *dev, const char *request, size_t len, char **reply);

/* ---- running ---- */
/* One iteration: waits up to timeout_ms for I/O, handles what arrived and
 * the timers that are due. Returns 0, or -ENODEV when the TUN went away. */
int vpn_device_run_once(struct vpn_device *dev, int timeout_ms);
/* Runs until vpn_device_stop(), or until the TUN is deleted. */
int vpn_device_run(struct vpn_device *dev);
int vpn_device_start(struct vpn_device *dev); /* vpn_device_run in a thread */
void vpn_device_stop(struct vpn_device *dev); /* and joins the thread, if any */

/* ---- observing ---- */
/* Calls emit once per metric series: name (e.g. "hvgate_vpn_rx_bytes"), a
 * label set in Prometheus syntax without braces (e.g. "ifname=\"wg0\",
 * peer=\"base64\"", maybe empty) and the value. Series: peers, handshakes
 * (initiated, responded, completed per peer), rx/tx bytes per peer, last
 * handshake time per peer, cookie replies sent, drops by reason. */
typedef void (*vpn_metric_fn)(void *ctx, const char *name, const char *labels, double value);
void vpn_device_metrics(struct vpn_device *dev, vpn_metric_fn emit, void *ctx);

#endif
