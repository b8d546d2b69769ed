/*
 * segfs-exec without root (exec/exec.h): a user namespace of its own, as
 * rootless container tools make one.
 *
 * The caller's uid and gid are mapped to themselves, the one mapping an
 * unprivileged process may write (setgroups denied first, as the kernel
 * requires), so files in /dev/shm belong to the caller inside as outside,
 * and the command runs as the caller, not as a root of the namespace
 * (PostgreSQL, for one, refuses to run as root).  The creator of a user
 * namespace holds every capability in it, and so may make the mount and
 * PID namespaces it owns, mount FUSE and tmpfs, and mount /proc.  What it
 * may not have is CAP_SYS_ADMIN in the initial namespace, which FUSE
 * passthrough needs: the daemon serves the cached path, and says so.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -errno;
	close(fd);
	return rc;
}

int userns_enter(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int rc;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -errno;
	rc = write_proc("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (rc == 0)
		rc = write_proc("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (rc == 0)
		rc = write_proc("/proc/self/gid_map", map);
	return rc;
}

const char *userns_hint(void)
{
	/* Debian's and Ubuntu's own switches, where the kernel has them. */
	if (access("/proc/sys/kernel/unprivileged_userns_clone", F_OK) == 0)
		return "run it as root, or let users make user namespaces: "
		       "sysctl kernel.unprivileged_userns_clone=1";
	if (access("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", F_OK) == 0)
		return "run it as root, or let users make user namespaces: "
		       "sysctl kernel.apparmor_restrict_unprivileged_userns=0";
	return "run it as root, or let users make user namespaces: "
	       "sysctl user.max_user_namespaces=N with N > 0";
}

int userns_keep_cap_sys_admin(void)
{
	struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	/*
	 * A process whose uid is not 0 in its namespace loses its capabilities
	 * at execve unless they are ambient, and only an inheritable one may
	 * be made ambient.
	 */
	if (syscall(SYS_capget, &head, data) < 0)
		return -errno;
	data[CAP_TO_INDEX(CAP_SYS_ADMIN)].inheritable |= CAP_TO_MASK(CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &head, data) < 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) < 0)
		return -errno;
	return 0;
}
