/* Control socket server (control.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "appliance/control.h"

/* Bytes taken from a client's socket at once; what is not yet served waits
 * here, and nothing more is read until it is. */
#define CTL_READ_CHUNK 16384

struct ctl_client {
	int fd;
	struct ctl_peer peer;
	char *in;
	size_t in_len;
	bool skipping;            /* inside an oversized line: drop bytes up to '\n' */
	char raw[CTL_READ_CHUNK]; /* read, not yet looked at */
	size_t raw_len, raw_off;
	char *out;
	size_t out_len, out_off;
	bool closing;       /* peer closed its side: flush replies, then close */
	bool in_request;    /* part of a line has come; request_started is set */
	time_t last_active; /* monotonic seconds: connect, request, reply read */
	time_t request_started;
};

static time_t mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int ctl_parse_request(const char *line, size_t len, struct json **out, char *err, size_t errsz)
{
	struct json *j;
	int rc = json_parse(line, len, &j, err, errsz);

	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return -EINVAL;
	if (j->type != JSON_OBJECT) {
		snprintf(err, errsz, "a request is a JSON object");
		json_free(j);
		return -EINVAL;
	}
	if (!json_get_str(j, "cmd")) {
		snprintf(err, errsz, "the request has no string member \"cmd\"");
		json_free(j);
		return -EINVAL;
	}
	*out = j;
	return 0;
}

void ctl_reply_error(struct json_buf *reply, const char *msg)
{
	json_obj_begin(reply);
	json_kv_bool(reply, "ok", false);
	json_kv_str(reply, "error", msg);
	json_obj_end(reply);
}

int ctl_listen(struct ctl_server *s, const char *path, mode_t mode, bool group_set, gid_t group,
	       bool admin_set, gid_t admin_group, ctl_handler h, void *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a daemon that died is stale and removed; one
	 * that answers belongs to a running daemon, which we must not cut off. */
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) ||
	    (group_set && chown(path, (uid_t)-1, group)) || listen(fd, CTL_MAX_CLIENTS)) {
		int err = -errno;
		close(fd);
		unlink(path);
		return err;
	}
	*s = (struct ctl_server){
		.fd = fd,
		.group = group,
		.has_group = group_set,
		.admin_group = admin_group,
		.has_admin_group = admin_set,
		.handler = h,
		.ctx = ctx,
		.idle_seconds = CTL_IDLE_SECONDS,
		.request_seconds = CTL_REQUEST_SECONDS,
		.max_per_uid = CTL_MAX_PER_UID,
	};
	snprintf(s->path, sizeof(s->path), "%s", path);
	return 0;
}

static void client_free(struct ctl_client *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

void ctl_close(struct ctl_server *s)
{
	for (size_t i = 0; i < s->n_clients; i++)
		client_free(s->clients[i]);
	s->n_clients = 0;
	if (s->fd >= 0) {
		close(s->fd);
		unlink(s->path);
	}
	s->fd = -1;
}

static size_t unsent(const struct ctl_client *c)
{
	return c->out_len - c->out_off;
}

/* Nothing is read from, or served to, a client that does not read. */
static bool throttled(const struct ctl_client *c)
{
	return unsent(c) > CTL_OUT_HIGH;
}

size_t ctl_pollfds(const struct ctl_server *s, struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	if (s->fd < 0 || !max)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
	for (size_t i = 0; i < s->n_clients && n < max; i++) {
		const struct ctl_client *c = s->clients[i];
		short ev = c->closing || throttled(c) || c->raw_off < c->raw_len ? 0 : POLLIN;
		if (unsent(c))
			ev |= POLLOUT;
		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
	}
	return n;
}

static bool in_groups(gid_t g, gid_t primary, const gid_t *groups, int n)
{
	if (primary == g)
		return true;
	for (int i = 0; i < n; i++)
		if (groups[i] == g)
			return true;
	return false;
}

static void peer_rights(const struct ctl_server *s, int fd, struct ctl_peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	socklen_t glen = sizeof(p->groups);

	memset(p, 0, sizeof(*p));
	p->uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return; /* no credentials: no rights */
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &glen))
		p->n_groups = (int)(glen / sizeof(gid_t));
	if (cred.uid == 0) {
		p->may_read = p->may_change = true;
		return;
	}
	p->may_change =
	    s->has_admin_group && in_groups(s->admin_group, cred.gid, p->groups, p->n_groups);
	p->may_read = p->may_change ||
		      (s->has_group && in_groups(s->group, cred.gid, p->groups, p->n_groups));
}

static size_t clients_of(const struct ctl_server *s, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_clients; i++)
		n += s->clients[i]->peer.uid == uid;
	return n;
}

/* Why a new client cannot have a slot, or NULL when it can. */
static const char *refusal(const struct ctl_server *s, const struct ctl_peer *p, char *buf,
			   size_t size)
{
	if (s->n_clients >= CTL_MAX_CLIENTS)
		return "too many clients";
	if (!p->may_change && s->n_clients >= CTL_MAX_CLIENTS - CTL_RESERVED_CLIENTS)
		return "too many clients (the remaining connections are kept for root and the admin group)";
	if (p->uid != 0 && clients_of(s, p->uid) >= s->max_per_uid) {
		snprintf(buf, size,
			 "too many connections from uid %u (control.max_clients_per_uid is %u)",
			 (unsigned)p->uid, s->max_per_uid);
		return buf;
	}
	return NULL;
}

/* Best effort: a socket with nothing queued has room for one short line. */
static void tell(int fd, const char *why)
{
	char line[256];
	int len = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);

	(void)!send(fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void refuse(int fd, const char *why)
{
	tell(fd, why);
	close(fd);
}

static void accept_clients(struct ctl_server *s)
{
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c;
		struct ctl_peer peer;
		const char *why;
		char buf[128];
		if (fd < 0)
			return;
		peer_rights(s, fd, &peer);
		why = refusal(s, &peer, buf, sizeof(buf));
		if (why) {
			s->refused++;
			refuse(fd, why);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || !(c->in = malloc(CTL_LINE_MAX + 1))) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->last_active = mono_seconds();
		c->peer = peer;
		s->clients[s->n_clients++] = c;
	}
}

/* Appends a reply line; false if the client must be dropped. */
static bool queue_reply(struct ctl_client *c, const struct json_buf *b)
{
	size_t need;
	char *p;

	if (b->oom)
		return false;
	/* What was sent goes, so that a client that reads steadily while it
	 * pipelines never reaches CTL_OUT_MAX. */
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	need = c->out_len + b->len + 1;
	if (need > CTL_OUT_MAX)
		return false;
	p = realloc(c->out, need);
	if (!p)
		return false;
	c->out = p;
	memcpy(c->out + c->out_len, b->s, b->len);
	c->out[c->out_len + b->len] = '\n';
	c->out_len = need;
	return true;
}

static bool serve_line(struct ctl_server *s, struct ctl_client *c, const char *line, size_t len)
{
	struct json_buf reply;
	struct json *req = NULL;
	char err[256];
	bool ok;

	json_buf_init(&reply);
	s->requests++;
	if (ctl_parse_request(line, len, &req, err, sizeof(err))) {
		char msg[300];
		s->bad_requests++;
		snprintf(msg, sizeof(msg), "malformed request: %s", err);
		ctl_reply_error(&reply, msg);
	} else {
		s->handler(s->ctx, &c->peer, req, &reply);
		json_free(req);
	}
	ok = queue_reply(c, &reply);
	json_buf_free(&reply);
	return ok;
}

static bool too_long(struct ctl_server *s, struct ctl_client *c)
{
	struct json_buf reply;
	bool ok;

	s->requests++;
	s->bad_requests++;
	json_buf_init(&reply);
	ctl_reply_error(&reply, "request line longer than 65536 bytes");
	ok = queue_reply(c, &reply);
	json_buf_free(&reply);
	return ok;
}

/* Takes one chunk from the socket when the last one is used up; false:
 * drop the client. */
static bool client_fill(struct ctl_client *c)
{
	ssize_t n;

	if (c->raw_off < c->raw_len || c->closing || throttled(c))
		return true;
	n = read(c->fd, c->raw, sizeof(c->raw));
	if (n == 0) {
		c->closing = true;
		return unsent(c) > 0;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	c->raw_off = 0;
	c->raw_len = (size_t)n;
	return true;
}

/* Serves at most one complete line of what was read; false: drop client. */
static bool client_serve_one(struct ctl_server *s, struct ctl_client *c, time_t now)
{
	while (c->raw_off < c->raw_len && !throttled(c)) {
		char ch = c->raw[c->raw_off++];
		if (c->skipping) {
			if (ch == '\n') {
				c->skipping = false;
				c->in_request = false;
			}
			continue;
		}
		if (ch == '\n') {
			size_t len = c->in_len;
			c->in_len = 0;
			c->in_request = false;
			if (len && c->in[len - 1] == '\r')
				len--;
			if (!len)
				continue;
			c->last_active = now;
			return serve_line(s, c, c->in, len);
		}
		if (!c->in_request) {
			c->in_request = true;
			c->request_started = now;
		}
		if (c->in_len == CTL_LINE_MAX) {
			c->in_len = 0;
			c->skipping = true;
			return too_long(s, c);
		}
		c->in[c->in_len++] = ch;
	}
	return true;
}

static bool client_write(struct ctl_client *c, time_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->out_off += (size_t)n;
		c->last_active = now;
	}
	/* A closed peer is dropped once its replies are out and the requests
	 * it sent before closing are served. */
	return !c->closing || c->raw_off < c->raw_len;
}

/* Past the idle or the request time limit. */
static bool overstayed(const struct ctl_server *s, const struct ctl_client *c, time_t now)
{
	if (c->in_request && now - c->request_started > (time_t)s->request_seconds)
		return true;
	return now - c->last_active > (time_t)s->idle_seconds;
}

bool ctl_pending(const struct ctl_server *s)
{
	for (size_t i = 0; i < s->n_clients; i++) {
		const struct ctl_client *c = s->clients[i];
		if (c->raw_off < c->raw_len && !throttled(c))
			return true;
	}
	return false;
}

static void drop_client(struct ctl_server *s, size_t k)
{
	client_free(s->clients[k]);
	s->clients[k] = s->clients[--s->n_clients];
}

static const struct pollfd *pollfd_of(const struct pollfd *pfd, size_t n, int fd)
{
	for (size_t i = 1; i < n; i++)
		if (pfd[i].fd == fd)
			return &pfd[i];
	return NULL;
}

void ctl_dispatch(struct ctl_server *s, const struct pollfd *pfd, size_t n)
{
	time_t now = mono_seconds();

	/* The pollfds were made from the clients as they were; match by fd.
	 * Each client gets one chunk read and one request served per call, so
	 * a client with a long backlog waits its turn like everyone else. */
	for (size_t k = s->n_clients; k-- > 0;) {
		struct ctl_client *c = s->clients[k];
		const struct pollfd *p = pollfd_of(pfd, n, c->fd);
		bool keep = true;
		if (p && (p->revents & (POLLIN | POLLHUP | POLLERR)))
			keep = client_fill(c);
		if (keep)
			keep = client_serve_one(s, c, now);
		if (keep && (unsent(c) || c->closing))
			keep = client_write(c, now);
		if (keep && overstayed(s, c, now)) {
			if (c->in_request && !unsent(c))
				tell(c->fd, "request not complete within control.request_seconds");
			keep = false;
		}
		if (!keep)
			drop_client(s, k);
	}
	if (n && (pfd[0].revents & POLLIN))
		accept_clients(s);
}
