/* The sender of inspect-udp-pps (tests/bench/fastpath.sh), written for the
 * benchmark and not part of hvgate: 64-byte IPv4 UDP datagrams (20 bytes of
 * IPv4 header, 8 of UDP, 36 of payload) to ADDR:PORT as fast as PROCS
 * processes can send them for SECONDS, built whole on a raw socket and
 * handed to the kernel BATCH at a time with sendmmsg, so that neither a
 * socket per flow nor an interpreter bounds the rate.
 *
 * Every FLOW_DATAGRAMS datagrams a new flow begins: the next source port,
 * and after the last port the next source address of SOURCES addresses
 * from FIRST_SOURCE (which need not be assigned: no answer comes back).
 * Processes take the addresses in turn (process p: FIRST_SOURCE + p,
 * + p + PROCS, ...), so no tuple is used twice in a run: no flow ever
 * holds more than FLOW_DATAGRAMS datagrams, fewer than the fast path's
 * window of 16 (FP_INSPECT_PACKETS), and every datagram is judged. If the
 * tuples run out the run fails instead of using one again.
 *
 * Prints "sent N refused M cpu S": datagrams the kernel took, those it
 * refused (ENOBUFS: the client's backlog was full, the sender outran the
 * kernel's forwarding), and the CPU seconds (user and system) the sending
 * processes were charged, which include whatever of the forwarding the
 * kernel ran in their system calls and charged to them.
 *
 *   udp_blast ADDR PORT SECONDS PROCS FIRST_SOURCE SOURCES   (as root)
 */
#define _GNU_SOURCE /* sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATAGRAM_BYTES 64   /* the benchmark's packet: IPv4 total length */
#define FLOW_DATAGRAMS 8    /* half the fast path's UDP window of 16 */
#define BATCH          64   /* datagrams per sendmmsg: 8 whole flows */
#define FIRST_PORT     1024 /* source ports FIRST_PORT..65535 */
#define MAX_PROCS      16

struct counts {
	unsigned long long sent, refused;
	int out_of_tuples;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void datagram_init(uint8_t *p, uint32_t daddr, uint16_t dport)
{
	struct iphdr *ip = (struct iphdr *)p;
	struct udphdr *udp = (struct udphdr *)(p + sizeof(*ip));

	memset(p, 'x', DATAGRAM_BYTES);
	memset(ip, 0, sizeof(*ip) + sizeof(*udp));
	ip->version = 4;
	ip->ihl = sizeof(*ip) / 4;
	ip->tot_len = htons(DATAGRAM_BYTES);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->daddr = daddr; /* id and header checksum: the kernel fills them (raw(7)) */
	udp->dest = dport;
	udp->len = htons(DATAGRAM_BYTES - sizeof(*ip));
	/* checksum 0: none, allowed for UDP over IPv4 (RFC 768) */
}

/* one process's run; source address index p, p + procs, ... below sources */
static void blast(struct counts *c, uint32_t daddr, uint16_t dport, double seconds, unsigned p,
		  unsigned procs, uint32_t first_source, unsigned sources)
{
	static uint8_t pkt[BATCH][DATAGRAM_BYTES];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = daddr };
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0) {
		perror("udp_blast: raw socket");
		c->out_of_tuples = 1;
		return;
	}
	memset(msg, 0, sizeof(msg));
	for (int i = 0; i < BATCH; i++) {
		datagram_init(pkt[i], daddr, dport);
		iov[i] = (struct iovec){ .iov_base = pkt[i], .iov_len = DATAGRAM_BYTES };
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
		msg[i].msg_hdr.msg_name = &to;
		msg[i].msg_hdr.msg_namelen = sizeof(to);
	}
	unsigned source = p;
	unsigned port = FIRST_PORT;
	double end = now() + seconds;
	while (now() < end) {
		for (int f = 0; f < BATCH / FLOW_DATAGRAMS; f++) {
			if (port > 65535) {
				port = FIRST_PORT;
				source += procs;
			}
			if (source >= sources) {
				c->out_of_tuples = 1;
				close(fd);
				return;
			}
			for (int i = f * FLOW_DATAGRAMS; i < (f + 1) * FLOW_DATAGRAMS; i++) {
				struct iphdr *ip = (struct iphdr *)pkt[i];
				struct udphdr *udp = (struct udphdr *)(pkt[i] + sizeof(*ip));
				ip->saddr = htonl(ntohl(first_source) + source);
				udp->source = htons((uint16_t)port);
			}
			port++;
		}
		for (int i = 0; i < BATCH;) {
			int n = sendmmsg(fd, msg + i, (unsigned)(BATCH - i), 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				c->refused++; /* a datagram lost is never sent again */
				i++;
				continue;
			}
			c->sent += (unsigned)n;
			i += n;
		}
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct in_addr daddr, first;
	if (argc != 7 || inet_pton(AF_INET, argv[1], &daddr) != 1 ||
	    inet_pton(AF_INET, argv[5], &first) != 1) {
		fprintf(stderr, "usage: udp_blast ADDR PORT SECONDS PROCS FIRST_SOURCE SOURCES\n");
		return 2;
	}
	uint16_t dport = htons((uint16_t)atoi(argv[2]));
	double seconds = atof(argv[3]);
	unsigned procs = (unsigned)atoi(argv[4]), sources = (unsigned)atoi(argv[6]);
	if (procs < 1 || procs > MAX_PROCS || sources < procs) {
		fprintf(stderr, "udp_blast: 1 to %d processes, at least one source each\n",
			MAX_PROCS);
		return 2;
	}
	struct counts *c = mmap(NULL, sizeof(*c) * procs, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return 1;
	memset(c, 0, sizeof(*c) * procs);
	for (unsigned p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			blast(&c[p], daddr.s_addr, dport, seconds, p, procs, first.s_addr, sources);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	unsigned long long sent = 0, refused = 0;
	int failed = 0;
	for (unsigned p = 0; p < procs; p++) {
		sent += c[p].sent;
		refused += c[p].refused;
		failed |= c[p].out_of_tuples;
	}
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("sent %llu refused %llu cpu %.2f\n", sent, refused, cpu);
	if (failed)
		fprintf(stderr, "udp_blast: out of unused tuples (or no raw socket)\n");
	return failed;
}
