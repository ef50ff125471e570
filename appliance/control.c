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

/* Supplementary groups of a peer we look at; more are ignored. */
#define CTL_PEER_GROUPS_MAX 256

struct ctl_client {
	int fd;
	struct ctl_peer peer;
	char *in;
	size_t in_len;
	bool skipping; /* inside an oversized line: drop bytes up to '\n' */
	char *out;
	size_t out_len, out_off;
	bool closing; /* peer closed its side: flush replies, then close */
	time_t last_active; /* monotonic seconds */
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
	s->fd = fd;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->group = group;
	s->has_group = group_set;
	s->admin_group = admin_group;
	s->has_admin_group = admin_set;
	s->handler = h;
	s->ctx = ctx;
	s->idle_seconds = CTL_IDLE_SECONDS;
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

size_t ctl_pollfds(const struct ctl_server *s, struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	if (s->fd < 0 || !max)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
	for (size_t i = 0; i < s->n_clients && n < max; i++) {
		const struct ctl_client *c = s->clients[i];
		short ev = c->closing ? 0 : POLLIN;
		if (c->out_len > c->out_off)
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
	gid_t groups[CTL_PEER_GROUPS_MAX];
	socklen_t glen = sizeof(groups);
	int ng = 0;

	memset(p, 0, sizeof(*p));
	p->uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return; /* no credentials: no rights */
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen))
		ng = (int)(glen / sizeof(gid_t));
	if (cred.uid == 0) {
		p->may_read = p->may_change = true;
		return;
	}
	p->may_change = s->has_admin_group && in_groups(s->admin_group, cred.gid, groups, ng);
	p->may_read = p->may_change || (s->has_group && in_groups(s->group, cred.gid, groups, ng));
}

static void accept_clients(struct ctl_server *s)
{
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c;
		if (fd < 0)
			return;
		if (s->n_clients == CTL_MAX_CLIENTS) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";
			(void)!write(fd, busy, sizeof(busy) - 1);
			close(fd);
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
		peer_rights(s, fd, &c->peer);
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
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
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

/* Reads what is there and serves every complete line; false: drop client. */
static bool client_read(struct ctl_server *s, struct ctl_client *c)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n == 0) {
			c->closing = true;
			return c->out_len > c->out_off;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->last_active = mono_seconds();
		for (ssize_t i = 0; i < n; i++) {
			char ch = buf[i];
			if (c->skipping) {
				if (ch == '\n')
					c->skipping = false;
				continue;
			}
			if (ch == '\n') {
				size_t len = c->in_len;
				c->in_len = 0;
				if (len && c->in[len - 1] == '\r')
					len--;
				if (len && !serve_line(s, c, c->in, len))
					return false;
				continue;
			}
			if (c->in_len == CTL_LINE_MAX) {
				c->in_len = 0;
				c->skipping = true;
				if (!too_long(s, c))
					return false;
				continue;
			}
			c->in[c->in_len++] = ch;
		}
	}
}

static bool client_write(struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->out_off += (size_t)n;
	}
	return !c->closing;
}

void ctl_dispatch(struct ctl_server *s, const struct pollfd *pfd, size_t n)
{
	struct ctl_client *seen[CTL_MAX_CLIENTS];
	size_t n_seen = 0;
	time_t now = mono_seconds();

	/* The pollfds were made from the clients as they were; match by fd. */
	for (size_t i = 1; i < n; i++) {
		for (size_t k = 0; k < s->n_clients; k++) {
			struct ctl_client *c = s->clients[k];
			bool keep = true;
			if (c->fd != pfd[i].fd)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				keep = client_read(s, c);
			if (keep && (c->out_len > c->out_off || c->closing))
				keep = client_write(c);
			if (!keep)
				seen[n_seen++] = c;
			break;
		}
	}
	for (size_t k = 0; k < s->n_clients; k++) {
		bool listed = false;
		for (size_t i = 0; i < n_seen; i++)
			listed |= seen[i] == s->clients[k];
		if (!listed && now - s->clients[k]->last_active > (time_t)s->idle_seconds)
			seen[n_seen++] = s->clients[k];
	}
	for (size_t i = 0; i < n_seen; i++) {
		for (size_t k = 0; k < s->n_clients; k++) {
			if (s->clients[k] != seen[i])
				continue;
			client_free(seen[i]);
			s->clients[k] = s->clients[--s->n_clients];
			break;
		}
	}
	if (n && (pfd[0].revents & POLLIN))
		accept_clients(s);
}
