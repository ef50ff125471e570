/* Link events over rtnetlink (appliance/linkwatch.h). */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "appliance/kernel/linkwatch.h"

struct linkwatch {
	struct mnl_socket *nl;
};

int linkwatch_open(struct linkwatch **out)
{
	struct linkwatch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->nl || mnl_socket_bind(w->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		int rc = -errno;
		if (w->nl)
			mnl_socket_close(w->nl);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void linkwatch_close(struct linkwatch *w)
{
	if (!w)
		return;
	mnl_socket_close(w->nl);
	free(w);
}

int linkwatch_fd(const struct linkwatch *w)
{
	return mnl_socket_get_fd(w->nl);
}

struct visit {
	void (*on_link)(const char *ifname, void *ctx);
	void *ctx;
	int events;
};

static int ifname_attr(const struct nlattr *a, void *data)
{
	const char **name = data;
	if (mnl_attr_get_type(a) == IFLA_IFNAME && !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
		*name = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

static int on_msg(const struct nlmsghdr *nlh, void *data)
{
	struct visit *v = data;
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct ifinfomsg)))
		return MNL_CB_OK; /* too short to hold a link */
	const char *name = NULL;
	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), ifname_attr, &name);
	if (name && strnlen(name, IFNAMSIZ) < IFNAMSIZ) {
		v->events++;
		v->on_link(name, v->ctx);
	}
	return MNL_CB_OK;
}

/* Datagrams read per call: the loop gets back to its other work even while
 * a burst of events goes on (the rest waits in the socket). */
#define LINKWATCH_MAX_READS 64

int linkwatch_read(struct linkwatch *w, void (*on_link)(const char *ifname, void *ctx), void *ctx)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct visit v = { on_link, ctx, 0 };
	for (int i = 0; i < LINKWATCH_MAX_READS; i++) {
		ssize_t n = mnl_socket_recvfrom(w->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno; /* ENOBUFS: events were lost */
		}
		/* multicast from the kernel: no sequence or port to check (only
		 * CAP_NET_ADMIN may send to rtnetlink groups) */
		mnl_cb_run(buf, (size_t)n, 0, 0, on_msg, &v);
	}
	return v.events;
}
