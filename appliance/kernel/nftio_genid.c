/* NFT_MSG_GETGEN, the one nf_tables request every nftio call makes. */
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include "appliance/kernel/nftio_internal.h"

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

int nftio_sock_genid(struct nl_sock *s, uint32_t *genid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh =
	    nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, s->seq++);
	return nl_sock_talk(s, nlh, gen_cb, genid);
}
