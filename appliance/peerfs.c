/* Reading files with a control client's rights (peerfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "appliance/peerfs.h"

/* The raw system call: glibc's setgroups() changes every thread of the
 * process, the fast path's workers included. */
static int thread_setgroups(int n, const gid_t *groups)
{
	return syscall(SYS_setgroups, (size_t)n, groups) ? -errno : 0;
}

int peerfs_enter(const struct ctl_peer *peer, struct peerfs_saved *saved)
{
	int rc;

	saved->active = false;
	if (peer->uid == 0)
		return 0;
	saved->n_groups = getgroups(CTL_PEER_GROUPS_MAX, saved->groups);
	if (saved->n_groups < 0)
		return -errno;
	rc = thread_setgroups(peer->n_groups, peer->groups);
	if (rc)
		return rc;
	/* setfsgid/setfsuid report the previous value, not failure: ask again. */
	setfsgid(peer->gid);
	setfsuid(peer->uid);
	saved->active = true;
	if ((gid_t)setfsgid((gid_t)-1) != peer->gid || (uid_t)setfsuid((uid_t)-1) != peer->uid) {
		peerfs_leave(saved);
		return -EPERM;
	}
	return 0;
}

void peerfs_leave(struct peerfs_saved *saved)
{
	if (!saved->active)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	thread_setgroups(saved->n_groups, saved->groups);
	saved->active = false;
}

static int cannot_read(const char *path, int rc, char *err, size_t errsz)
{
	snprintf(err, errsz, "cannot read '%s': %s", path, strerror(-rc));
	return rc;
}

static bool policy_file_type(const struct stat *st)
{
	return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
}

int peerfs_check_path(const char *path, char *err, size_t errsz)
{
	int fd = open(path, O_PATH | O_CLOEXEC); /* opens nothing: no FIFO wait */
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return cannot_read(path, -errno, err, errsz);
	if (fstat(fd, &st))
		rc = cannot_read(path, -errno, err, errsz);
	close(fd);
	if (rc)
		return rc;
	if (!policy_file_type(&st))
		goto not_file;
	/* Now that it is known not to wait: may the caller read it? (A FIFO
	 * swapped in meanwhile does not block either with O_NONBLOCK.) */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cannot_read(path, -errno, err, errsz);
	if (fstat(fd, &st))
		rc = cannot_read(path, -errno, err, errsz);
	close(fd);
	if (rc || policy_file_type(&st))
		return rc;
not_file:
	snprintf(err, errsz, "'%s' is not a regular file or a directory", path);
	return -EINVAL;
}
