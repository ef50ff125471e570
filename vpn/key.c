/* Keys: generation, encodings (base64 for people and wg, hex for the UAPI),
 * and reading private keys from files that only their owner can read. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "vpn/internal.h"

int vpn_key_generate(uint8_t priv[VPN_KEY_LEN])
{
	if (sodium_init() < 0)
		return -EIO;
	randombytes_buf(priv, VPN_KEY_LEN);
	vpn_noise_clamp(priv);
	return 0;
}

int vpn_key_public(uint8_t pub[VPN_KEY_LEN], const uint8_t priv[VPN_KEY_LEN])
{
	if (sodium_init() < 0)
		return -EIO;
	return crypto_scalarmult_base(pub, priv) ? -EINVAL : 0;
}

int vpn_key_from_base64(uint8_t key[VPN_KEY_LEN], const char *text)
{
	size_t len = 0;
	const char *end;

	if (strlen(text) != VPN_KEY_BASE64_LEN || text[VPN_KEY_BASE64_LEN - 1] != '=')
		return -EINVAL;
	if (sodium_base642bin(key, VPN_KEY_LEN, text, VPN_KEY_BASE64_LEN, NULL, &len, &end,
			      sodium_base64_VARIANT_ORIGINAL) ||
	    len != VPN_KEY_LEN || *end)
		return -EINVAL;
	return 0;
}

void vpn_key_to_base64(char out[VPN_KEY_BASE64_LEN + 1], const uint8_t key[VPN_KEY_LEN])
{
	sodium_bin2base64(out, VPN_KEY_BASE64_LEN + 1, key, VPN_KEY_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
}

int vpn_key_from_hex(uint8_t key[VPN_KEY_LEN], const char *text)
{
	size_t len = 0;
	const char *end;

	if (strlen(text) != 2 * VPN_KEY_LEN)
		return -EINVAL;
	if (sodium_hex2bin(key, VPN_KEY_LEN, text, 2 * VPN_KEY_LEN, NULL, &len, &end) ||
	    len != VPN_KEY_LEN || *end)
		return -EINVAL;
	return 0;
}

void vpn_key_to_hex(char out[2 * VPN_KEY_LEN + 1], const uint8_t key[VPN_KEY_LEN])
{
	sodium_bin2hex(out, 2 * VPN_KEY_LEN + 1, key, VPN_KEY_LEN);
}

int vpn_key_read_file(uint8_t key[VPN_KEY_LEN], const char *path)
{
	char buf[VPN_KEY_BASE64_LEN + 64];
	struct stat st;
	ssize_t n;
	int fd, ret = -EBADMSG;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (!vpn_key_from_base64(key, buf))
		ret = 0;
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

const char *vpn_key_file_error(int err)
{
	switch (err) {
	case -EINVAL: return "the key file is not a regular file";
	case -EPERM: return "the key file is accessible by group or others (chmod 600 it)";
	case -EIO: return "cannot read the key file";
	case -EBADMSG: return "the key file does not hold one base64 key of 32 bytes";
	default: return "cannot open the key file";
	}
}
