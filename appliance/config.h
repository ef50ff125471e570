/* hvgated's configuration file (libconfig syntax), read and validated.
 *
 * conf/hvgate.conf is the documented default. Every setting is checked at
 * load: unknown keys, wrong types and bad values are errors of the form
 *   FILE:LINE: setting 'log.rate': must be between 1 and 1000000
 * A failed load leaves the caller's previous struct conf untouched, so a bad
 * reload changes nothing that runs. The file is only read, never written.
 *
 * Error convention: 0 on success, negative errno on failure with the message
 * in `err`. Not thread-safe (libconfig is not).
 */
#ifndef HVGATE_APPLIANCE_CONFIG_H
#define HVGATE_APPLIANCE_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONF_DEFAULT_FILE "/etc/hvgate/hvgate.conf"
#define CONF_ERR_MAX      512

enum conf_role { CONF_ROLE_UPLINK, CONF_ROLE_TENANT, CONF_ROLE_MANAGEMENT, CONF_ROLE_VPN };

struct conf_interface {
	char name[IFNAMSIZ];
	enum conf_role role;
};

enum conf_source { CONF_SOURCE_PATH, CONF_SOURCE_GIT };

struct conf {
	char *file; /* the file that was read */
	struct conf_interface *ifaces;
	size_t n_ifaces;

	enum conf_source source; /* policy.source: "path" or "git" */
	char *policy_path;       /* a file or directory; for git the repository */
	char *git_ref;           /* git: the ref to read ("main", a commit id) */

	char *state_dir;

	char *socket_path;
	mode_t socket_mode;
	char *socket_group; /* NULL: root's group */
	gid_t socket_gid;
	char *admin_group; /* NULL: only root may change things */
	gid_t admin_gid;
	/* Limits of the control socket (control.h explains them). */
	unsigned control_idle_seconds;
	unsigned control_request_seconds;
	unsigned control_max_per_uid;

	char *log_file; /* NULL: no event file */
	bool log_syslog;
	uint32_t log_rate;  /* events per second (token bucket refill) */
	uint32_t log_burst; /* bucket size */
	int nflog_group;

	bool metrics_enabled;
	char *metrics_addr; /* numeric IPv4/IPv6 address */
	uint16_t metrics_port;

	char *netns; /* NULL: the daemon's own namespace */
	bool flush_on_stop;

	uint32_t counter_interval_ms; /* how often rule counters are sampled */

	/* The inspection fast path: `inspect` rules queue to fastpath_queue ..
	 * + fastpath_workers - 1, one worker thread per queue. */
	bool fastpath_enabled;
	uint16_t fastpath_queue;
	unsigned fastpath_workers;
	bool fastpath_fail_closed; /* queues without bypass and fail-open */
	bool vpn_enabled;
};

/* Reads and validates `file` into `c`, which holds zeroes or an earlier
 * result; it is replaced (the old one freed) only on success. */
/* The first NFQUEUE of the fast path when the file names none. */
#define CONF_FASTPATH_QUEUE_DEFAULT 100

int conf_load(const char *file, struct conf *c, char *err, size_t errsz);
void conf_free(struct conf *c);
const char *conf_role_name(enum conf_role r);

#endif
