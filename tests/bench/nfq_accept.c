/* The baseline of inspect-udp-pps (tests/bench/fastpath.sh): the smallest
 * per-packet NFQUEUE loop, written for the benchmark and not part of
 * hvgate. One socket binds the queues named on the command line (copy
 * mode packet), reads one packet at a time and answers each with its own
 * accept verdict, until SIGTERM; then prints how many it accepted.
 *
 *   nfq_accept QUEUE...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

static volatile sig_atomic_t stop;
static unsigned long accepted;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int send_msg(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
	return mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

static int packet(const struct nlmsghdr *nlh, void *data)
{
	struct mnl_socket *nl = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	char buf[8192];

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return MNL_CB_OK;
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	struct nlmsghdr *v = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, ntohs(nfg->res_id));
	nfq_nlmsg_verdict_put(v, (int)ntohl(ph->packet_id), NF_ACCEPT);
	if (!send_msg(nl, v))
		accepted++;
	return MNL_CB_OK;
}

int main(int argc, char **argv)
{
	static char buf[0xffff + 8192]; /* one whole packet and its attributes */
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);

	if (argc < 2 || !nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "usage: nfq_accept QUEUE... (as root)\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char cbuf[8192];
		struct nlmsghdr *nlh = nfq_nlmsg_put(cbuf, NFQNL_MSG_CONFIG, atoi(argv[i]));
		nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
		nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
		if (send_msg(nl, nlh)) {
			perror("bind");
			return 1;
		}
	}
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	unsigned portid = mnl_socket_get_portid(nl);
	fprintf(stderr, "nfq_accept: ready\n");
	while (!stop) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			break;
		}
		mnl_cb_run(buf, (size_t)n, 0, portid, packet, nl);
	}
	printf("%lu\n", accepted);
	return 0;
}
