/* vpnmgr_device_configure(): a policy's `vpn` block adapted to the VPN's
 * own configuration on a device without I/O, with the key-file permission
 * rule. (Moved from tests/vpn/test_uapi.c with the adapter.) */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/vpnmgr.h"
#include "policy/model.h"
#include "vpn/internal.h"
#include "tests/lib/checkmain.h"

static void write_key(char *path, const char *b64, mode_t mode)
{
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b64, strlen(b64)), (ssize_t)strlen(b64));
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(configure_from_policy)
{
	char keyfile[] = "/tmp/hvgate-vpn-pk-XXXXXX", pskfile[] = "/tmp/hvgate-vpn-psk-XXXXXX";
	struct policy_addr ips[2] = {
		{ .family = AF_INET, .prefix_len = 32, .lo = { 10, 99, 0, 2 } },
		{ .family = AF_INET, .prefix_len = 16, .lo = { 172, 16 } },
	};
	struct policy_vpn_peer peer = {
		.name = "branch1",
		.public_key = "uFmW/syc/x/G0lcqdu2hHVm80gvo5UOxXOS9hajnWjM=",
		.psk_file = pskfile,
		.endpoint = "192.0.2.7:51820",
		.allowed_ips = { .v = ips, .n = 2 },
		.keepalive = 25,
	};
	struct policy_vpn pv = { .ifname = "wg0",
				 .listen_port = 51820,
				 .private_key_file = keyfile,
				 .peers = &peer,
				 .n_peers = 1 };
	struct vpn_device *dev;
	struct vpn_device_options opts = { 0 };
	const char *why = NULL;
	uint8_t a[4] = { 172, 16, 9, 9 }, psk[32];

	write_key(keyfile, "6EtabScXwQA6E7QxVwNT26ypFGzxUMX4V1aA/rpSAno=\n", 0600);
	write_key(pskfile, "GIUVCT6VL18i6GXO8wEucvi18LWYrAMJ1drM47cPz1I=\n", 0600);
	ck_assert_int_eq(vpn_device_create(&dev, &opts), 0);
	ck_assert_int_eq(vpnmgr_device_configure(dev, &pv, &why), 0);
	ck_assert(dev->has_identity);
	ck_assert_uint_eq(dev->n_peers, 1);
	ck_assert_ptr_eq(vpn_allowedips_lookup(&dev->allowedips, AF_INET, a), dev->peers);
	ck_assert_uint_eq(dev->peers->persistent_keepalive, 25);
	ck_assert_int_eq(vpn_key_from_base64(psk, "GIUVCT6VL18i6GXO8wEucvi18LWYrAMJ1drM47cPz1I="),
			 0);
	ck_assert_mem_eq(dev->peers->handshake.psk, psk, 32);
	ck_assert_uint_eq(dev->peers->endpoint.addr.sa.sa_family, AF_INET);
	/* a psk file others can read is refused, naming the reason (-EPERM:
	 * vpn_key_read_file's rule, not the kernel's -EACCES for a file the
	 * process may not open) */
	ck_assert_int_eq(chmod(pskfile, 0644), 0);
	ck_assert_int_eq(vpnmgr_device_configure(dev, &pv, &why), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "group or others"));
	/* a bad public key is refused */
	ck_assert_int_eq(chmod(pskfile, 0600), 0);
	peer.public_key = "not a key";
	ck_assert_int_eq(vpnmgr_device_configure(dev, &pv, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	unlink(keyfile);
	unlink(pskfile);
	vpn_device_destroy(dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vpnmgr");
	TCase *tc = tcase_create("configure");
	tcase_add_test(tc, configure_from_policy);
	suite_add_tcase(s, tc);
	return check_main(s);
}
