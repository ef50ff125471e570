/* The netns-aware netlink socket with one talk and one dump (nlsock.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "appliance/kernel/nlsock.h"
#include "policy/grow.h"

/* The dump buffer: twice the kernel's 32 KiB cap per dump message. */
#define NL_DUMP_BUFFER (64 * 1024)

int nl_netns_enter(const char *netns, int *saved)
{
	char path[PATH_MAX];
	*saved = -1;
	if (!netns || !*netns)
		return 0;
	if (strchr(netns, '/'))
		return -EINVAL; /* a name under NL_NETNS_DIR, never a path */
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", NL_NETNS_DIR, netns) >= sizeof(path))
		return -ENAMETOOLONG;
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	int target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		int err = -errno;
		close(self);
		return err;
	}
	int rc = setns(target, CLONE_NEWNET);
	int err = rc ? -errno : 0;
	close(target);
	if (err) {
		close(self);
		return err;
	}
	*saved = self;
	return 0;
}

int nl_netns_leave(int saved)
{
	if (saved < 0)
		return 0;
	int err = setns(saved, CLONE_NEWNET) ? -errno : 0;
	close(saved);
	return err;
}

int nl_sock_open(struct nl_sock *s, int bus, const char *netns)
{
	int saved, err;
	memset(s, 0, sizeof(*s));
	err = nl_netns_enter(netns, &saved);
	if (err)
		return err;
	s->nl = mnl_socket_open(bus);
	err = s->nl ? 0 : -errno;
	int lerr = nl_netns_leave(saved);
	if (err)
		return err;
	if (lerr) {
		/* Still in the target namespace: never go on from there. */
		nl_sock_close(s);
		return lerr;
	}
	int on = 1;
	/* Both options are best-effort: older kernels lack them and the
	 * error text is only a help. */
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &on, sizeof(on));
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &on, sizeof(on));
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		nl_sock_close(s);
		return err;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	return 0;
}

void nl_sock_close(struct nl_sock *s)
{
	if (s->owner) {
		if ((int32_t)(s->seq - s->owner->seq) > 0)
			s->owner->seq = s->seq; /* copies may nest: the highest */
		s->owner = NULL;
		s->nl = NULL;
		return;
	}
	if (s->nl)
		mnl_socket_close(s->nl);
	s->nl = NULL;
}

static int set_buf(int fd, int force_opt, int opt, size_t bytes)
{
	int v = bytes > INT_MAX ? INT_MAX : (int)bytes;
	if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) == 0)
		return 0;
	/* Not root: the plain option, capped at net.core.*mem_max. */
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) ? -errno : 0;
}

int nl_sock_set_buffers(struct nl_sock *s, size_t rcv_bytes, size_t snd_bytes)
{
	int fd = mnl_socket_get_fd(s->nl);
	int err = set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv_bytes);
	if (err)
		return err;
	return set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd_bytes);
}

/* The one send-and-receive loop: every other function here calls it. */
static int exchange(struct nl_sock *s, const void *msg, size_t len, uint32_t seq, void *buf,
		    size_t bufsz, mnl_cb_t cb, void *data)
{
	if (mnl_socket_sendto(s->nl, msg, len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, bufsz);
		if (n < 0)
			return -errno;
		errno = 0;
		int rc = mnl_cb_run(buf, (size_t)n, seq, s->portid, cb, data);
		if (rc < 0)
			return errno ? -errno : -EPROTO;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

int nl_sock_talk_raw(struct nl_sock *s, const void *msg, size_t len, uint32_t seq, mnl_cb_t cb,
		     void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	return exchange(s, msg, len, seq, buf, sizeof(buf), cb, data);
}

int nl_sock_talk(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	return nl_sock_talk_raw(s, req, req->nlmsg_len, req->nlmsg_seq, cb, data);
}

int nl_sock_dump(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	void *buf = malloc(NL_DUMP_BUFFER);
	if (!buf)
		return -ENOMEM;
	int err = exchange(s, req, req->nlmsg_len, req->nlmsg_seq, buf, NL_DUMP_BUFFER, cb, data);
	free(buf);
	return err;
}

void *nl_collect_push(struct nl_collect *c)
{
	if (policy_grow(&c->v, &c->cap, c->n, c->elem, 64)) {
		c->err = -ENOMEM;
		return NULL;
	}
	void *x = (char *)c->v + c->n++ * c->elem;
	memset(x, 0, c->elem);
	return x;
}

void *nl_collect_take(struct nl_collect *c, int *err, size_t *n)
{
	if (c->err)
		*err = c->err;
	if (*err) {
		free(c->v);
		*n = 0;
		return NULL;
	}
	*n = c->n;
	return c->v;
}
