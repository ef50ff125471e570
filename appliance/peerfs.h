/* Reading files with a control client's rights.
 *
 * hvgated runs as root; a `load` from a member of the admin group who is not
 * root must not read what that user could not (/etc/shadow quoted back in a
 * parse error). Between peerfs_enter() and peerfs_leave() the calling
 * thread's filesystem uid, gid and supplementary groups are the peer's, so
 * the kernel checks every open() (the file, its includes, a directory's
 * listing) as it would for the peer; the capabilities that bypass file
 * permissions are off while the fsuid is not 0. Other threads are not
 * affected (setfsuid and the raw setgroups system call are per thread).
 *
 * peerfs_check_path() refuses what a policy path may not be: anything but a
 * regular file or a directory (a FIFO would block the daemon in open()).
 *
 * Error convention: 0 or negative errno; messages in `err`.
 */
#ifndef HVGATE_APPLIANCE_PEERFS_H
#define HVGATE_APPLIANCE_PEERFS_H

#include <stdbool.h>
#include <stddef.h>

#include "appliance/control.h"

struct peerfs_saved {
	gid_t groups[CTL_PEER_GROUPS_MAX];
	int n_groups;
	bool active;
};

/* For root does nothing (and returns 0). */
int peerfs_enter(const struct ctl_peer *peer, struct peerfs_saved *saved);
void peerfs_leave(struct peerfs_saved *saved);
/* 0 if `path` is a regular file or a directory that the caller (with the
 * current filesystem ids) may open for reading. The type is checked before
 * anything is opened for reading (O_PATH), so a FIFO or a device is never
 * opened and nothing blocks. */
int peerfs_check_path(const char *path, char *err, size_t errsz);

#endif
