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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "appliance/control.h"
#include "tests/lib/checkmain.h"

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

static void echo_handler(void *ctx, const struct ctl_peer *peer, const struct json *req,
			 struct json_buf *r)
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
		ck_assert_int_eq(
		    ctl_listen(&other, path, 0660, false, 0, false, 0, echo_handler, &calls),
		    -EADDRINUSE);
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
	ck_assert_ptr_nonnull(
	    strstr(out, getuid() == 0 ? "\"may_change\":true" : "\"may_change\":false"));
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

/* Replies of 64 KiB: a few of them pass CTL_OUT_HIGH. */
static void big_handler(void *ctx, const struct ctl_peer *peer, const struct json *req,
			struct json_buf *r)
{
	static char filler[64 * 1024];
	int *calls = ctx;

	(void)peer;
	(*calls)++;
	memset(filler, 'y', sizeof(filler) - 1);
	json_obj_begin(r);
	json_kv_bool(r, "ok", true);
	json_kv_str(r, "cmd", json_get_str(req, "cmd"));
	json_kv_str(r, "filler", filler);
	json_obj_end(r);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void run_rounds(struct ctl_server *s, int rounds)
{
	for (int round = 0; round < rounds; round++) {
		struct pollfd pfd[CTL_MAX_CLIENTS + 1];
		size_t n = ctl_pollfds(s, pfd, CTL_MAX_CLIENTS + 1);
		poll(pfd, n, ctl_pending(s) ? 0 : 5);
		ctl_dispatch(s, pfd, n);
	}
}

/* A client that pipelines requests and never reads is served only until
 * CTL_OUT_HIGH of replies wait for it (the rest stay in its socket), and
 * another client's request is answered at once meanwhile. */
START_TEST(pipelining_client_is_throttled)
{
	char path[64], out[512 * 1024];
	struct ctl_server s;
	int calls = 0, hog, other;
	size_t sent = 0;
	char line[] = "{\"cmd\":\"hog\"}\n";

	snprintf(path, sizeof(path), "/tmp/hvgate-ctl-hog.%d.sock", getpid());
	ck_assert_int_eq(ctl_listen(&s, path, 0660, false, 0, false, 0, big_handler, &calls), 0);
	hog = connect_to(path);
	run_rounds(&s, 2);
	/* As many requests as the socket takes: thousands. */
	for (int i = 0; i < 100000; i++) {
		ssize_t k = send(hog, line, sizeof(line) - 1, MSG_DONTWAIT);
		if (k <= 0)
			break;
		sent++;
	}
	ck_assert_uint_gt(sent, 100);
	run_rounds(&s, 300);
	/* Before the limit, every request was read and answered in one go. */
	ck_assert_int_le(calls, (CTL_OUT_HIGH + (512 * 1024)) / (64 * 1024) + 4);
	ck_assert_uint_eq(s.n_clients, 1);
	other = connect_to(path);
	ck_assert_int_eq(write(other, "{\"cmd\":\"other\"}\n", 16), 16);
	serve_until(&s, other, 1, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "\"cmd\":\"other\""));
	/* Once the hog reads, it is served again; reading a little at a time
	 * (its queue never empty), it gets far more than CTL_OUT_MAX in all
	 * without being dropped. */
	{
		int before = calls;
		for (int i = 0; i < 3000 && calls - before < 200; i++) {
			run_rounds(&s, 1);
			(void)!recv(hog, out, 48 * 1024, MSG_DONTWAIT);
		}
		ck_assert_int_ge(calls - before, 200); /* 200 x 64 KiB > 8 MiB */
		ck_assert_uint_eq(s.n_clients, 2);
	}
	close(hog);
	close(other);
	ctl_close(&s);
}
END_TEST

/* A request dribbled a byte at a time is cut off after request_seconds,
 * with an error, though each byte kept the connection "active". */
START_TEST(dribbling_client_is_dropped)
{
	char path[64], out[1024];
	struct ctl_server s;
	int calls = 0, fd;
	ssize_t k;
	time_t start = time(NULL);

	snprintf(path, sizeof(path), "/tmp/hvgate-ctl-drib.%d.sock", getpid());
	ck_assert_int_eq(ctl_listen(&s, path, 0660, false, 0, false, 0, echo_handler, &calls), 0);
	s.request_seconds = 1;
	s.idle_seconds = 60;
	fd = connect_to(path);
	for (int i = 0; i < 60 && time(NULL) - start < 6; i++) {
		if (send(fd, "{", 1, MSG_NOSIGNAL) != 1)
			break;
		run_rounds(&s, 10); /* about 50 ms */
		if (!s.n_clients)
			break;
	}
	ck_assert_uint_eq(s.n_clients, 0);
	ck_assert_int_le(time(NULL) - start, 4);
	k = read(fd, out, sizeof(out) - 1);
	ck_assert_int_gt(k, 0);
	out[k] = 0;
	ck_assert_ptr_nonnull(strstr(out, "request_seconds"));
	ck_assert_int_eq(calls, 0);
	close(fd);
	ctl_close(&s);
}
END_TEST

/* As root: a uid other than root gets max_per_uid connections; root, over
 * no limit of its own, still gets in. */
START_TEST(per_uid_limit_and_reserved_slots)
{
	char path[64], out[4096];
	struct ctl_server s;
	int calls = 0, root_fd, sv[2];
	pid_t child;

	if (getuid() != 0)
		return; /* needs setuid(); the namespace suite daemon_abuse covers it too */
	snprintf(path, sizeof(path), "/tmp/hvgate-ctl-uid.%d.sock", getpid());
	ck_assert_int_eq(ctl_listen(&s, path, 0666, false, 0, false, 0, echo_handler, &calls), 0);
	s.max_per_uid = 3;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	child = fork();
	if (child == 0) {
		/* Four connections as nobody; reports what the fourth was told. */
		int fds[4];
		char buf[512] = "";
		ssize_t k;
		if (setgid(65534) || setuid(65534))
			_exit(1);
		for (int i = 0; i < 4; i++)
			fds[i] = connect_to(path);
		(void)!write(sv[1], "c", 1);
		k = read(fds[3], buf, sizeof(buf) - 1);
		buf[k > 0 ? k : 0] = 0;
		(void)!write(sv[1], buf, strlen(buf) + 1);
		(void)!read(sv[1], buf, 1); /* hold the three until told */
		_exit(0);
	}
	{
		char buf[512];
		ssize_t k = 0;
		for (int i = 0; i < 400 && k <= 0; i++) {
			run_rounds(&s, 1);
			k = recv(sv[0], buf, 1, MSG_DONTWAIT);
		}
		ck_assert_int_eq(k, 1);
		k = 0;
		for (int i = 0; i < 400 && k <= 0; i++) {
			run_rounds(&s, 1);
			k = recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
		}
		ck_assert_int_gt(k, 0);
		ck_assert_ptr_nonnull(strstr(buf, "too many connections from uid 65534"));
		ck_assert_uint_eq(s.n_clients, 3);
		ck_assert_uint_eq(s.refused, 1);
	}
	root_fd = connect_to(path);
	ck_assert_int_eq(write(root_fd, "{\"cmd\":\"root\"}\n", 15), 15);
	serve_until(&s, root_fd, 1, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "\"uid\":0"));
	(void)!write(sv[0], "x", 1);
	waitpid(child, NULL, 0);
	close(sv[0]);
	close(sv[1]);
	close(root_fd);
	ctl_close(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");

	tcase_add_test(tc, parse_request);
	tcase_add_test(tc, live_socket);
	tcase_add_test(tc, pipelining_client_is_throttled);
	tcase_add_test(tc, dribbling_client_is_dropped);
	tcase_add_test(tc, per_uid_limit_and_reserved_slots);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return check_main(s);
}
