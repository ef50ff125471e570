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
 * Error convention: 0 or negative errno. Not thread-safe.
 */
#ifndef HVGATE_APPLIANCE_CONTROL_H
#define HVGATE_APPLIANCE_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "appliance/json.h"

#define CTL_LINE_MAX (64 * 1024)       /* the issue: > 64 KiB is refused */
#define CTL_OUT_MAX (8 * 1024 * 1024)  /* replies queued for one client */
#define CTL_MAX_CLIENTS 64
/* A connection that sends nothing for this long is closed, so idle or
 * stuck clients cannot hold the CTL_MAX_CLIENTS slots for ever. */
#define CTL_IDLE_SECONDS 300
#define CTL_DEFAULT_SOCKET "/run/hvgate/control.sock"

struct ctl_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool may_read;	 /* root, or in the socket group or the admin group */
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
	unsigned idle_seconds; /* CTL_IDLE_SECONDS unless changed after ctl_listen */
};

/* Creates the socket at `path` (replacing a stale one), mode `mode`, owned
 * by root:group (group_set false: root's group). */
int ctl_listen(struct ctl_server *s, const char *path, mode_t mode, bool group_set, gid_t group,
	       bool admin_set, gid_t admin_group, ctl_handler h, void *ctx);
void ctl_close(struct ctl_server *s);
/* Fills up to `max` pollfds; returns how many. */
size_t ctl_pollfds(const struct ctl_server *s, struct pollfd *pfd, size_t max);
/* Serves what the pollfds from ctl_pollfds() report, and closes clients
 * idle for CTL_IDLE_SECONDS (call it at least every few seconds). */
void ctl_dispatch(struct ctl_server *s, const struct pollfd *pfd, size_t n);

/* Parses one request line: a JSON object with a string member "cmd".
 * 0, or -EINVAL with the reason in err. Used by the server and the fuzzer. */
int ctl_parse_request(const char *line, size_t len, struct json **out, char *err, size_t errsz);
/* Writes {"ok":false,"error":msg}. */
void ctl_reply_error(struct json_buf *reply, const char *msg);

#endif
