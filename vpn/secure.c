/* Memory for key material: sodium_malloc (guard pages, mlock, excluded from
 * core dumps with MADV_DONTDUMP) and sodium_free (wipes before unmapping).
 * Under LeakSanitizer the region is registered as a root, since LSan does
 * not scan libsodium's mmap'd pages and would report everything the device
 * or a peer points to as leaked. */
#include <sodium.h>

#include "vpn/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define VPN_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VPN_HAVE_LSAN 1
#endif
#endif

#ifdef VPN_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

void *vpn_secure_alloc(size_t size)
{
	void *p = sodium_malloc(size);

#ifdef VPN_HAVE_LSAN
	if (p)
		__lsan_register_root_region(p, size);
#endif
	return p;
}

void vpn_secure_free(void *p, size_t size)
{
	if (!p)
		return;
#ifdef VPN_HAVE_LSAN
	__lsan_unregister_root_region(p, size);
#else
	(void)size;
#endif
	sodium_free(p);
}
