/* The control socket of hvgated: a unix stream socket, one JSON request per
 * line, one JSON reply line per request (docs/control-protocol.md).
 *
 * Non-blocking and poll-driven: the daemon's loop asks for the fds to wait
 * on (ctl_pollfds) and hands back what poll() said (ctl_dispatch). A request
 * line longer than CTL_LINE_MAX gets an error reply and is skipped up to its
 * newline; a client that does not read its replies is dropped once
 * CTL_OUT_MAX bytes are queued. Peer credentials (SO_PEERCRED and
 * SO_PEERGROUPS) decide what a client may do.
 *
 * No client can take the socket away from the others: clients are served
 * round-robin, one request per client per ctl_dispatch(); a client with more
 * than CTL_OUT_HIGH bytes of unsent replies is not read from until it has
 * read them (its requests wait in its own socket buffer, not in our memory);
 * each uid other than root may hold max_per_uid connections; the last
 * CTL_RESERVED_CLIENTS slots are kept for root and the admin group; a
 * request line must be complete within request_seconds of its first byte.
 *
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_CONTROL_H
#define HVGATE_APPLIANCE_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "appliance/json.h"

#define CTL_LINE_MAX    (64 * 1024)       /* the issue: > 64 KiB is refused */
#define CTL_OUT_MAX     (8 * 1024 * 1024) /* replies queued for one client */
#define CTL_MAX_CLIENTS 64
/* Slots only root and the admin group may take, so that a confirm can get
 * in when read-only clients hold all the others. */
#define CTL_RESERVED_CLIENTS 8
/* Unsent replies above which a client's further requests are not read. */
#define CTL_OUT_HIGH (256 * 1024)
/* A connection that completes no request and reads no reply for this long
 * is closed, so idle or stuck clients cannot hold slots for ever. */
#define CTL_IDLE_SECONDS 300
/* A request line must be complete this long after its first byte: a client
 * dribbling a byte at a time is not "active". */
#define CTL_REQUEST_SECONDS 10
#define CTL_MAX_PER_UID     16
#define CTL_DEFAULT_SOCKET  "/run/hvgate/control.sock"

/* Supplementary groups of a peer we look at; more are ignored. */
#define CTL_PEER_GROUPS_MAX 256

struct ctl_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[CTL_PEER_GROUPS_MAX]; /* supplementary, SO_PEERGROUPS */
	int n_groups;
	bool may_read;   /* root, or in the socket group or the admin group */
	bool may_change; /* root, or in the admin group */
};

/* Called once per complete request; writes one JSON object into `reply`. */
typedef void (*ctl_handler)(void *ctx, const struct ctl_peer *peer, const struct json *req,
			    struct json_buf *reply);

struct ctl_client;

struct ctl_server {
	int fd;
	char path[108];
	gid_t group, admin_group;
	bool has_group, has_admin_group;
	struct ctl_client *clients[CTL_MAX_CLIENTS];
	size_t n_clients;
	ctl_handler handler;
	void *ctx;
	unsigned long requests, bad_requests;
	/* CTL_IDLE_SECONDS, CTL_REQUEST_SECONDS and CTL_MAX_PER_UID unless
	 * changed after ctl_listen */
	unsigned idle_seconds, request_seconds, max_per_uid;
	unsigned long refused; /* connections turned away by the limits */
};

/* Creates the socket at `path` (replacing a stale one), mode `mode`, owned
 * by root:group (group_set false: root's group). */
int ctl_listen(struct ctl_server *s, const char *path, mode_t mode, bool group_set, gid_t group,
	       bool admin_set, gid_t admin_group, ctl_handler h, void *ctx);
void ctl_close(struct ctl_server *s);
/* Fills up to `max` pollfds; returns how many. */
size_t ctl_pollfds(const struct ctl_server *s, struct pollfd *pfd, size_t max);
/* Serves what the pollfds from ctl_pollfds() report (one request per
 * client), and closes clients past idle_seconds or request_seconds (call it
 * at least every few seconds). */
void ctl_dispatch(struct ctl_server *s, const struct pollfd *pfd, size_t n);
/* True when some client has requests already read and waiting: the caller
 * must not sleep in poll() before the next ctl_dispatch(). */
bool ctl_pending(const struct ctl_server *s);

/* Parses one request line: a JSON object with a string member "cmd".
 * 0, or -EINVAL with the reason in err. Used by the server and the fuzzer. */
int ctl_parse_request(const char *line, size_t len, struct json **out, char *err, size_t errsz);
/* Writes {"ok":false,"error":msg}. */
void ctl_reply_error(struct json_buf *reply, const char *msg);

#endif
