/* The UAPI text protocol (vpn/uapi.c) on a device without I/O, the struct
 * configuration, and the key-file permission rule. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

#define PRIV_HEX "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
#define PUB1_HEX "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
#define PSK_HEX  "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52"

static char *ask(struct vpn_device *dev, const char *req, int *ret)
{
	char *reply = NULL;
	*ret = vpn_device_uapi(dev, req, strlen(req), &reply);
	ck_assert_ptr_nonnull(reply);
	return reply;
}

START_TEST(set_then_get)
{
	struct vpn_device *dev;
	struct vpn_device_options opts = { 0 };
	int ret;

	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	char *r = ask(
	    dev,
	    "set=1\nprivate_key=" PRIV_HEX "\nlisten_port=51820\nreplace_peers=true\n"
	    "public_key=" PUB1_HEX "\npreshared_key=" PSK_HEX "\nendpoint=[2001:db8::1]:51821\n"
	    "persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/8\n"
	    "allowed_ip=2001:db8:1::/48\nprotocol_version=1\n\n",
	    &ret);
	ck_assert_int_eq(ret, 0);
	ck_assert_str_eq(r, "errno=0\n\n");
	free(r);
	r = ask(dev, "get=1\n\n", &ret);
	ck_assert_str_eq(
	    r,
	    "private_key=" PRIV_HEX "\nlisten_port=51820\n"
	    "public_key=" PUB1_HEX "\npreshared_key=" PSK_HEX "\nprotocol_version=1\n"
	    "endpoint=[2001:db8::1]:51821\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
	    "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=25\n"
	    "allowed_ip=10.0.0.0/8\nallowed_ip=2001:db8:1::/48\nerrno=0\n\n");
	free(r);
	/* remove the peer; an unknown key and a bad value are refused */
	r = ask(dev, "set=1\npublic_key=" PUB1_HEX "\nremove=true\n\n", &ret);
	ck_assert_int_eq(ret, 0);
	free(r);
	ck_assert_uint_eq(dev->n_peers, 0);
	r = ask(dev, "set=1\nbogus=1\n\n", &ret);
	ck_assert_int_lt(ret, 0);
	ck_assert_str_eq(r, "errno=-22\n\n");
	free(r);
	r = ask(dev, "set=1\npublic_key=" PUB1_HEX "\nallowed_ip=10.0.0.0/40\n\n", &ret);
	ck_assert_int_lt(ret, 0);
	free(r);
	r = ask(dev, "set=1\npublic_key=zz\n\n", &ret);
	ck_assert_int_lt(ret, 0);
	free(r);
	vpn_device_destroy(dev);
}
END_TEST

START_TEST(update_only_and_own_key)
{
	struct vpn_device *dev;
	struct vpn_device_options opts = { 0 };
	char own_pub_hex[65];
	int ret;

	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	char *r = ask(
	    dev, "set=1\nprivate_key=" PRIV_HEX "\npublic_key=" PUB1_HEX "\nupdate_only=true\n\n",
	    &ret);
	ck_assert_int_eq(ret, 0);
	free(r);
	ck_assert_uint_eq(dev->n_peers, 0);
	vpn_key_to_hex(own_pub_hex, dev->static_public);
	char req[256];
	snprintf(req, sizeof(req), "set=1\npublic_key=%s\nallowed_ip=10.0.0.1/32\n\n", own_pub_hex);
	r = ask(dev, req, &ret);
	ck_assert_int_eq(ret, 0);
	free(r);
	ck_assert_uint_eq(dev->n_peers, 0);
	vpn_device_destroy(dev);
}
END_TEST

START_TEST(struct_configuration)
{
	struct vpn_device *dev;
	struct vpn_device_options opts = { 0 };
	const struct vpn_prefix ips[] = { { .family = AF_INET, .cidr = 16, .addr = { 192, 168 } } };
	struct vpn_peer_config pc = { .endpoint = "192.0.2.1:51820",
				      .allowed_ips = ips,
				      .n_allowed_ips = 1,
				      .persistent_keepalive = 0 };
	struct vpn_config cfg = { .has_private_key = true,
				  .listen_port = 1234,
				  .peers = &pc,
				  .n_peers = 1,
				  .replace_peers = true };
	uint8_t a[4] = { 192, 168, 3, 4 };

	ck_assert_int_eq(vpn_key_from_hex(cfg.private_key, PRIV_HEX), 0);
	ck_assert_int_eq(vpn_key_from_hex(pc.public_key, PUB1_HEX), 0);
	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	ck_assert_int_eq(vpn_device_configure(dev, &cfg), 0);
	ck_assert_uint_eq(dev->n_peers, 1);
	ck_assert_ptr_eq(vpn_allowedips_lookup(&dev->allowedips, AF_INET, a), dev->peers);
	ck_assert_uint_eq(dev->listen_port, 1234);
	cfg.n_peers = 0;
	ck_assert_int_eq(vpn_device_configure(dev, &cfg), 0);
	ck_assert_uint_eq(dev->n_peers, 0);
	ck_assert_ptr_null(vpn_allowedips_lookup(&dev->allowedips, AF_INET, a));
	pc.endpoint = "not-an-endpoint";
	cfg.n_peers = 1;
	ck_assert_int_eq(vpn_device_configure(dev, &cfg), -EINVAL);
	vpn_device_destroy(dev);
}
END_TEST

START_TEST(key_file_permissions)
{
	char path[] = "/tmp/hvgate-vpn-key-XXXXXX";
	uint8_t k[32];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "6EtabScXwQA6E7QxVwNT26ypFGzxUMX4V1aA/rpSAno=\n", 45), 45);
	close(fd);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(vpn_key_read_file(k, path), 0);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(vpn_key_read_file(k, path), -EPERM);
	ck_assert_ptr_nonnull(strstr(vpn_key_file_error(-EPERM), "group or others"));
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(vpn_key_read_file(k, path), -EPERM);
	/* not a key: refused by what it holds, not by its mode */
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "not a key\n", 10), 10);
	close(fd);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(vpn_key_read_file(k, path), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(vpn_key_file_error(-EBADMSG), "base64"));
	unlink(path);
	ck_assert_int_eq(vpn_key_read_file(k, path), -ENOENT);
	ck_assert_ptr_nonnull(strstr(vpn_key_file_error(-ENOENT), "cannot open"));
}
END_TEST

/* The embedded way: the engine in its own thread, configured and observed
 * from another, then stopped. */
static void count_metric(void *ctx, const char *name, const char *labels, double value)
{
	(void)labels;
	(void)value;
	if (!strcmp(name, "hvgate_vpn_peers"))
		++*(int *)ctx;
}

START_TEST(thread_start_configure_stop)
{
	struct vpn_device *dev;
	struct vpn_device_options opts = { 0 };
	int ret, seen = 0;

	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	ck_assert_int_eq(vpn_device_start(dev), 0);
	for (int i = 0; i < 50; i++) {
		char *r = ask(dev,
			      "set=1\nprivate_key=" PRIV_HEX "\npublic_key=" PUB1_HEX
			      "\nallowed_ip=10.0.0.0/8\n\n",
			      &ret);
		ck_assert_int_eq(ret, 0);
		free(r);
		r = ask(dev, "get=1\n\n", &ret);
		ck_assert_ptr_nonnull(strstr(r, "allowed_ip=10.0.0.0/8"));
		free(r);
	}
	vpn_device_metrics(dev, count_metric, &seen);
	ck_assert_int_eq(seen, 1);
	vpn_device_stop(dev);
	vpn_device_destroy(dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpn_uapi");
	TCase *tc = tcase_create("uapi");

	tcase_add_test(tc, set_then_get);
	tcase_add_test(tc, update_only_and_own_key);
	tcase_add_test(tc, struct_configuration);
	tcase_add_test(tc, key_file_permissions);
	tcase_add_test(tc, thread_start_configure_stop);
	suite_add_tcase(s, tc);
	return check_main(s);
}
