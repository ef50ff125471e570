/* The control socket: request parsing, and a live server driven by poll in
 * this process: replies, line framing, oversized lines, peer rights. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "appliance/control.h"

START_TEST(parse_request)
{
	struct json *j;
	char err[128];

	ck_assert_int_eq(ctl_parse_request("{\"cmd\":\"status\"}", 16, &j, err, sizeof(err)), 0);
	ck_assert_str_eq(json_get_str(j, "cmd"), "status");
	json_free(j);
	ck_assert_int_eq(ctl_parse_request("[1]", 3, &j, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "a request is a JSON object");
	ck_assert_int_eq(ctl_parse_request("{\"cmd\":1}", 9, &j, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "the request has no string member \"cmd\"");
	ck_assert_int_eq(ctl_parse_request("{\"cmd\"", 6, &j, err, sizeof(err)), -EINVAL);
}
END_TEST

static void echo_handler(void *ctx, const struct ctl_peer *peer, const struct json *req, struct json_buf *r)
{
	int *calls = ctx;

	(*calls)++;
	json_obj_begin(r);
	json_kv_bool(r, "ok", true);
	json_kv_str(r, "cmd", json_get_str(req, "cmd"));
	json_kv_bool(r, "may_change", peer->may_change);
	json_kv_uint(r, "uid", peer->uid);
	json_obj_end(r);
}

/* Runs the server loop until `want` newline-terminated replies arrived on fd. */
static void serve_until(struct ctl_server *s, int fd, size_t want, char *out, size_t size)
{
	size_t len = 0, lines = 0;

	for (int round = 0; round < 2000 && lines < want; round++) {
		struct pollfd pfd[CTL_MAX_CLIENTS + 1];
		size_t n = ctl_pollfds(s, pfd, CTL_MAX_CLIENTS + 1);
		ssize_t k;
		poll(pfd, n, 5);
		ctl_dispatch(s, pfd, n);
		k = recv(fd, out + len, size - len - 1, MSG_DONTWAIT);
		if (k > 0) {
			for (ssize_t i = 0; i < k; i++)
				lines += out[len + i] == '\n';
			len += (size_t)k;
		}
	}
	out[len] = 0;
	ck_assert_uint_eq(lines, want);
}

START_TEST(live_socket)
{
	char path[64], out[4096];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server s;
	struct stat st;
	int calls = 0, fd;
	char *big;

	snprintf(path, sizeof(path), "/tmp/hvgate-ctl-test.%d.sock", getpid());
	ck_assert_int_eq(ctl_listen(&s, path, 0660, false, 0, false, 0, echo_handler, &calls), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0660);
	/* A second server on a live socket is refused. */
	{
		struct ctl_server other;
		ck_assert_int_eq(ctl_listen(&other, path, 0660, false, 0, false, 0, echo_handler, &calls), -EADDRINUSE);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	/* Two requests in one write, the second split over two writes. */
	ck_assert_int_eq(write(fd, "{\"cmd\":\"a\"}\n{\"cmd\":", 19), 19);
	serve_until(&s, fd, 1, out, sizeof(out));
	ck_assert_int_eq(write(fd, "\"b\"}\r\n", 6), 6);
	serve_until(&s, fd, 1, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "\"cmd\":\"b\""));
	ck_assert_int_eq(calls, 2);

	/* Malformed: an error reply, the handler is not called. */
	ck_assert_int_eq(write(fd, "{oops\n", 6), 6);
	serve_until(&s, fd, 1, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "\"ok\":false"));
	ck_assert_int_eq(calls, 2);

	/* A line over 64 KiB: one error, the rest of the line skipped, and
	 * the next request served. */
	big = malloc(CTL_LINE_MAX * 2 + 32);
	memset(big, 'x', CTL_LINE_MAX * 2);
	strcpy(big + CTL_LINE_MAX * 2, "\n{\"cmd\":\"c\"}\n");
	for (size_t off = 0, len = strlen(big); off < len;) {
		struct pollfd pfd[CTL_MAX_CLIENTS + 1];
		size_t n = ctl_pollfds(&s, pfd, CTL_MAX_CLIENTS + 1);
		ssize_t k = send(fd, big + off, len - off, MSG_DONTWAIT);
		if (k > 0)
			off += (size_t)k;
		poll(pfd, n, 5);
		ctl_dispatch(&s, pfd, n);
	}
	free(big);
	serve_until(&s, fd, 2, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "longer than 65536"));
	ck_assert_ptr_nonnull(strstr(out, "\"cmd\":\"c\""));
	/* Without an admin group only root may change. */
	ck_assert_ptr_nonnull(strstr(out, getuid() == 0 ? "\"may_change\":true" : "\"may_change\":false"));
	ck_assert_uint_eq(s.bad_requests, 2);

	/* An idle client is closed after idle_seconds. */
	s.idle_seconds = 1;
	for (int round = 0; round < 400 && s.n_clients; round++) {
		struct pollfd pfd[CTL_MAX_CLIENTS + 1];
		size_t n = ctl_pollfds(&s, pfd, CTL_MAX_CLIENTS + 1);
		poll(pfd, n, 10);
		ctl_dispatch(&s, pfd, n);
	}
	ck_assert_uint_eq(s.n_clients, 0);
	ck_assert_int_eq(read(fd, out, sizeof(out)), 0); /* the server closed it */

	close(fd);
	ctl_close(&s);
	ck_assert_int_eq(stat(path, &st), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, parse_request);
	tcase_add_test(tc, live_socket);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
