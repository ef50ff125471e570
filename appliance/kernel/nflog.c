/* NFLOG events -> JSON lines, rate limited (nflog.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/netfilter.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "appliance/kernel/nflog.h"
#include "policy/model.h"

/* Bytes of each packet the kernel copies to us: an IPv6 header (40) and
 * the ports of the transport header are all an event needs. */
#define NFLOGD_COPY_BYTES 96
#define NFLOGD_RECV_BUF   65536

struct nflogd {
	struct nflog_handle *h;
	struct nflog_g_handle *gh;
	int fd;
	int file_fd;
	bool use_syslog;
	struct nflogd_bucket bucket;
	nflogd_lookup lookup;
	void *ctx;
	char *recent[NFLOGD_RECENT];
	size_t recent_next;
	uint64_t events, written, dropped;
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void nflogd_bucket_init(struct nflogd_bucket *b, uint32_t rate, uint32_t burst, double now)
{
	b->rate = rate;
	b->burst = burst;
	b->tokens = burst;
	b->last = now;
}

bool nflogd_bucket_take(struct nflogd_bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

void nflogd_flow_json(struct json_buf *b, int family, uint8_t proto, const void *src,
		      const void *dst)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	inet_ntop(family, src, s, sizeof(s));
	inet_ntop(family, dst, d, sizeof(d));
	json_kv_str(b, "family", family == AF_INET6 ? "ip6" : "ip");
	if (policy_l4proto_name(proto))
		json_kv_str(b, "proto", policy_l4proto_name(proto));
	else
		json_kv_uint(b, "proto", proto);
	json_kv_str(b, "src", s);
	json_kv_str(b, "dst", d);
}

/* Adds family, proto, src, dst and ports from the copied packet. */
static void tuple_json(struct json_buf *b, const unsigned char *pkt, int len)
{
	const unsigned char *l4;
	uint8_t proto;
	int l4len;

	if (len >= (int)sizeof(struct iphdr) && (pkt[0] >> 4) == 4) {
		const struct iphdr *ip = (const void *)pkt;
		int hl = ip->ihl * 4;
		proto = ip->protocol;
		l4 = pkt + hl;
		l4len = len - hl;
		nflogd_flow_json(b, AF_INET, proto, &ip->saddr, &ip->daddr);
	} else if (len >= (int)sizeof(struct ip6_hdr) && (pkt[0] >> 4) == 6) {
		const struct ip6_hdr *ip6 = (const void *)pkt;
		/* Extension headers are not followed: the next header is
		 * reported as the protocol, ports only for TCP/UDP/SCTP. */
		proto = ip6->ip6_nxt;
		l4 = pkt + sizeof(*ip6);
		l4len = len - (int)sizeof(*ip6);
		nflogd_flow_json(b, AF_INET6, proto, &ip6->ip6_src, &ip6->ip6_dst);
	} else {
		return;
	}
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) && l4len >= 4) {
		json_kv_uint(b, "sport", (unsigned)(l4[0] << 8 | l4[1]));
		json_kv_uint(b, "dport", (unsigned)(l4[2] << 8 | l4[3]));
	} else if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) && l4len >= 1) {
		json_kv_uint(b, "icmp_type", l4[0]);
	}
}

static void remember(struct nflogd *l, const char *line)
{
	char *copy = strdup(line);

	if (!copy)
		return;
	free(l->recent[l->recent_next]);
	l->recent[l->recent_next] = copy;
	l->recent_next = (l->recent_next + 1) % NFLOGD_RECENT;
}

/* One event line to the recent list, the event file and syslog. */
static void write_event(struct nflogd *l, const char *line, size_t len)
{
	remember(l, line);
	if (l->file_fd >= 0) {
		struct iovec v[2] = { { (void *)line, len }, { "\n", 1 } };
		(void)!writev(l->file_fd, v, 2); /* O_APPEND: one write per line */
	}
	if (l->use_syslog)
		syslog(LOG_INFO, "event %s", line);
	l->written++;
}

void nflogd_emit(struct nflogd *l, const char *json_object)
{
	l->events++;
	if (!nflogd_bucket_take(&l->bucket, mono())) {
		l->dropped++;
		return;
	}
	write_event(l, json_object, strlen(json_object));
}

void nflogd_timestamp(char *out, size_t n)
{
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
}

static int on_packet(struct nflog_g_handle *gh, struct nfgenmsg *msg, struct nflog_data *nfa,
		     void *data)
{
	struct nflogd *l = data;
	char prefix[128] = "", ifname[IF_NAMESIZE], ts[80];
	const char *verdict = NULL, *tenant = NULL, *rule = NULL, *own = NULL,
		   *p = nflog_get_prefix(nfa);
	struct json_buf b;
	char *payload = NULL;
	int plen;
	uint32_t dev;

	(void)gh;
	(void)msg;
	l->events++;
	if (!nflogd_bucket_take(&l->bucket, mono())) {
		l->dropped++;
		return 0;
	}
	if (p) {
		/* nft puts the prefix verbatim; trailing blanks are decoration. */
		snprintf(prefix, sizeof(prefix), "%s", p);
		for (size_t n = strlen(prefix); n && (prefix[n - 1] == ' ' || prefix[n - 1] == ':');
		     n--)
			prefix[n - 1] = 0;
	}
	if (l->lookup)
		l->lookup(l->ctx, prefix, &rule, &verdict, &tenant, &own);
	nflogd_timestamp(ts, sizeof(ts));
	json_buf_init(&b);
	json_obj_begin(&b);
	json_kv_str(&b, "time", ts);
	json_kv_str(&b, "rule", rule ? rule : prefix);
	json_kv_str(&b, "prefix", own ? own : prefix);
	json_kv_str(&b, "tenant", tenant ? tenant : "");
	dev = nflog_get_indev(nfa);
	json_kv_str(&b, "in", dev && if_indextoname(dev, ifname) ? ifname : "");
	dev = nflog_get_outdev(nfa);
	json_kv_str(&b, "out", dev && if_indextoname(dev, ifname) ? ifname : "");
	plen = nflog_get_payload(nfa, &payload);
	if (plen > 0)
		tuple_json(&b, (const unsigned char *)payload, plen);
	json_kv_str(&b, "verdict", verdict ? verdict : "log");
	json_obj_end(&b);
	if (b.oom) {
		json_buf_free(&b);
		return 0;
	}
	write_event(l, b.s, b.len);
	json_buf_free(&b);
	return 0;
}

int nflogd_open(int group, const char *file, bool use_syslog, uint32_t rate, uint32_t burst,
		nflogd_lookup lookup, void *ctx, struct nflogd **out)
{
	struct nflogd *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->file_fd = -1;
	l->use_syslog = use_syslog;
	l->lookup = lookup;
	l->ctx = ctx;
	nflogd_bucket_init(&l->bucket, rate, burst, mono());
	if (file) {
		l->file_fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (l->file_fd < 0) {
			rc = -errno;
			nflogd_close(l);
			return rc;
		}
	}
	l->h = nflog_open();
	if (!l->h) {
		rc = errno ? -errno : -EIO;
		nflogd_close(l);
		return rc;
	}
	l->gh = nflog_bind_group(l->h, (uint16_t)group);
	if (!l->gh || nflog_set_mode(l->gh, NFULNL_COPY_PACKET, NFLOGD_COPY_BYTES) < 0) {
		rc = errno ? -errno : -EBUSY;
		nflogd_close(l);
		return rc;
	}
	/* One packet per message, at once: the kernel otherwise batches and
	 * waits up to a second (NFULNL_TIMEOUT_DEFAULT) before it sends. */
	nflog_set_qthresh(l->gh, 1);
	nflog_set_timeout(l->gh, 0);
	nflog_callback_register(l->gh, on_packet, l);
	l->fd = nflog_fd(l->h);
	fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
	*out = l;
	return 0;
}

int nflogd_fd(const struct nflogd *l)
{
	return l->fd;
}

void nflogd_read(struct nflogd *l)
{
	char *buf = malloc(NFLOGD_RECV_BUF);

	if (!buf)
		return;
	for (;;) {
		ssize_t n = recv(l->fd, buf, NFLOGD_RECV_BUF, 0);
		if (n <= 0) {
			/* ENOBUFS: the kernel dropped events faster than we read. */
			if (n < 0 && errno == ENOBUFS) {
				l->dropped++;
				continue;
			}
			break;
		}
		nflog_handle_packet(l->h, buf, (int)n);
	}
	free(buf);
}

void nflogd_recent(const struct nflogd *l, size_t max, struct json_buf *out)
{
	size_t have = 0;

	for (size_t i = 0; i < NFLOGD_RECENT; i++)
		have += l->recent[i] != NULL;
	if (max > have)
		max = have;
	json_arr_begin(out);
	for (size_t k = max; k > 0; k--) {
		size_t i = (l->recent_next + NFLOGD_RECENT - k) % NFLOGD_RECENT;
		if (l->recent[i])
			json_raw(out, l->recent[i]);
	}
	json_arr_end(out);
}

void nflogd_counts(const struct nflogd *l, uint64_t *events, uint64_t *written, uint64_t *dropped)
{
	*events = l->events;
	*written = l->written;
	*dropped = l->dropped;
}

void nflogd_close(struct nflogd *l)
{
	if (!l)
		return;
	if (l->gh)
		nflog_unbind_group(l->gh);
	if (l->h)
		nflog_close(l->h);
	if (l->file_fd >= 0)
		close(l->file_fd);
	for (size_t i = 0; i < NFLOGD_RECENT; i++)
		free(l->recent[i]);
	free(l);
}
