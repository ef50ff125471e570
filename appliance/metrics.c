/* Prometheus text over libmicrohttpd, driven by the daemon's loop (metrics.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/metrics.h"

/* The exposition format's content type (Prometheus text format 0.0.4). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Connections at once: a scraper or two need a handful; more are refused
 * (closed at accept) so that slow clients cannot use up the daemon's file
 * descriptors, which the control socket and netlink need too. */
#define METRICS_CONNECTION_LIMIT 32
/* Seconds a connection may sit without a complete request or reply read. */
#define METRICS_CONNECTION_TIMEOUT 10

struct metrics {
	struct MHD_Daemon *mhd;
	metrics_writer write;
	void *ctx;
};

void metrics_label(FILE *out, const char *v)
{
	fputc('"', out);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', out);
		if (*v == '\n') {
			fputs("\\n", out);
			continue;
		}
		fputc(*v, out);
	}
	fputc('"', out);
}

void metrics_counters(FILE *out, const char *name, const char *help, const char *label,
		      const struct metrics_count *series, size_t n)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s{%s=\"%s\"} %llu\n", name, label, series[i].value, series[i].count);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	else if (strcmp(url, "/metrics"))
		status = MHD_HTTP_NOT_FOUND;
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	if (status == MHD_HTTP_OK)
		m->write(m->ctx, f);
	else
		fputs(status == MHD_HTTP_NOT_FOUND ? "not found: try /metrics\n" : "GET only\n", f);
	if (fclose(f)) {
		free(buf);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int metrics_start(const char *addr, uint16_t port, metrics_writer w, void *ctx,
		  struct metrics **out)
{
	struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_EPOLL;
	struct metrics *m;

	if (inet_pton(AF_INET, addr, &sa4.sin_addr) == 1) {
		sa = (const struct sockaddr *)&sa4;
	} else if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) == 1) {
		sa = (const struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else {
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->write = w;
	m->ctx = ctx;
	m->mhd = MHD_start_daemon(flags, port, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, sa,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)METRICS_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)METRICS_CONNECTION_LIMIT, MHD_OPTION_END);
	if (!m->mhd) {
		free(m);
		return -EADDRNOTAVAIL;
	}
	*out = m;
	return 0;
}

int metrics_fd(const struct metrics *m)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}

void metrics_run(struct metrics *m)
{
	MHD_run(m->mhd);
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}
