/* The netns enter/leave and the mnl socket that every nftio call uses. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "appliance/kernel/nftio_internal.h"

int nftio_netns_enter(const char *netns, int *saved)
{
	char path[PATH_MAX];
	*saved = -1;
	if (!netns || !*netns)
		return 0;
	if (strchr(netns, '/'))
		return -EINVAL; /* a name under NFTIO_NETNS_DIR, never a path */
	snprintf(path, sizeof(path), "%s/%s", NFTIO_NETNS_DIR, netns);
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

int nftio_netns_leave(int saved)
{
	if (saved < 0)
		return 0;
	int err = setns(saved, CLONE_NEWNET) ? -errno : 0;
	close(saved);
	return err;
}

int nftio_sock_open(const char *netns, struct nftio_sock *s)
{
	int saved, err;
	memset(s, 0, sizeof(*s));
	err = nftio_netns_enter(netns, &saved);
	if (err)
		return err;
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	err = s->nl ? 0 : -errno;
	int lerr = nftio_netns_leave(saved);
	if (err)
		return err;
	if (lerr) {
		/* Still in the target namespace: never go on from there. */
		nftio_sock_close(s);
		return lerr;
	}
	int on = 1;
	/* Both options are best-effort: older kernels lack them and the
	 * error text is only a help. */
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &on, sizeof(on));
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &on, sizeof(on));
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		nftio_sock_close(s);
		return err;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	/* Any start works; time-based like nft so that replies to an earlier
	 * process's socket are never taken for ours. */
	s->seq = (uint32_t)time(NULL);
	return 0;
}

void nftio_sock_close(struct nftio_sock *s)
{
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

int nftio_sock_set_buffers(struct nftio_sock *s, size_t rcv_bytes, size_t snd_bytes)
{
	int fd = mnl_socket_get_fd(s->nl);
	int err = set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv_bytes);
	if (err)
		return err;
	return set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd_bytes);
}

int nftio_sock_talk(struct nftio_sock *s, const struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	if (mnl_socket_sendto(s->nl, req, req->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		int rc = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, s->portid, cb, data);
		if (rc < 0)
			return errno ? -errno : -EPROTO;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen = nftnl_gen_alloc();
	if (!gen)
		return MNL_CB_ERROR;
	int ok = nftnl_gen_nlmsg_parse(nlh, gen) == 0;
	if (ok)
		*(uint32_t *)data = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return ok ? MNL_CB_OK : MNL_CB_ERROR;
}

int nftio_sock_genid(struct nftio_sock *s, uint32_t *genid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh =
		nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, s->seq++);
	return nftio_sock_talk(s, nlh, gen_cb, genid);
}
