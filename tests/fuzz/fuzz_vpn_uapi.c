/* Fuzzes the UAPI text protocol (set and get requests) on a device. */
#include "tests/fuzz/fuzz_vpn_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vpn *f = fuzz_vpn_get();
	char *req = malloc(size + 8), *reply = NULL;

	if (!req)
		return 0;
	/* Mostly set requests: prefix the verb unless the input has one. */
	size_t off = 0;
	if (size < 6 || (memcmp(data, "set=1\n", 6) && memcmp(data, "get=1\n", 6))) {
		memcpy(req, "set=1\n", 6);
		off = 6;
	}
	memcpy(req + off, data, size);
	vpn_device_uapi(f->b, req, size + off, &reply);
	free(reply);
	free(req);
	/* keep the harness's own peer for the other targets */
	if (!vpn_peer_lookup(f->b, f->a_b->dev->static_public) && f->b->has_identity) {
		f->b_a = vpn_peer_create(f->b, f->a->static_public);
	}
	return 0;
}
