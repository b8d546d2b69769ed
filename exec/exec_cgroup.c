/*
 * The job's cgroup (exec/exec.h): a cgroup v2 group of its own, made as a
 * child of the one segfs-exec runs in, where segfs-exec may make one
 * (root, or a delegated subtree such as a systemd user session's).
 *
 * Why a cgroup.  The job keeps the machine's process ids, so there is no
 * PID namespace whose init the kernel would kill for us.  A cgroup holds
 * every process forked inside it whatever it does to its parentage or
 * session, and cgroup.kill (Linux 5.14) kills all of them in one step,
 * with no window in which a process forks a child that escapes: the
 * kernel marks the group and kills what is born into it meanwhile.  The
 * command is born in the group (clone3 with CLONE_INTO_CGROUP), so
 * everything it starts is too; segfs-exec, the daemon and the reaper stay
 * outside.  Born there rather than moved there: a move (a write to
 * cgroup.procs) takes the cgroup core's process-wide lock for writing,
 * which waits for an RCU grace period and cost 11 ms a job here (median
 * of 30 segfs-exec runs of `true`: 47 ms against 36 ms without a group).
 *
 * Only the cgroup v2 core files are used (cgroup.kill, cgroup.events), so no controller needs to be enabled; that also keeps
 * clear of the rule that a group with controllers enabled for its
 * children may hold no process, which a child group of our own never
 * meets: ours has none enabled when it holds processes.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>   /* struct clone_args, CLONE_INTO_CGROUP */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The cgroup v2 hierarchy's mount point: the first cgroup2 line of
 * mountinfo ("ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - cgroup2 ...").
 * A hybrid system mounts it at /sys/fs/cgroup/unified.
 */
static int cgroup2_mount(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], root[PATH_MAX], point[PATH_MAX];
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *dash = strstr(line, " - cgroup2 ");

		if (dash == NULL || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2)
			continue;
		/* Its root is ours (no cgroup namespace hides a part of it). */
		if (strcmp(root, "/") != 0)
			continue;
		if ((size_t)snprintf(out, size, "%s", point) >= size) {
			rc = -ENAMETOOLONG;
			break;
		}
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* Our own cgroup v2 path, from the "0::PATH" line of /proc/self/cgroup. */
static int own_cgroup(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* "/": the root, where no child's path needs a second slash. */
		rc = (size_t)snprintf(out, size, "%s", strcmp(line + 3, "/") == 0 ? ""
				      : line + 3) >= size ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return rc;
}

int cgroup_make(struct job_cgroup *cg, const char *name)
{
	char mnt[PATH_MAX], own[PATH_MAX];
	int rc;

	cg->dir = cg->kill = -1;
	cg->path[0] = '\0';
	rc = cgroup2_mount(mnt, sizeof(mnt));
	if (rc == 0)
		rc = own_cgroup(own, sizeof(own));
	if (rc < 0)
		return rc;
	if ((size_t)snprintf(cg->path, sizeof(cg->path), "%s%s/%s", mnt, own, name)
	    >= sizeof(cg->path))
		return -ENAMETOOLONG;
	if (mkdir(cg->path, 0755) < 0) {
		rc = -errno;
		cg->path[0] = '\0';
		return rc;
	}
	cg->dir = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* No cgroup.kill before 5.14: without it the group is no better than the walk. */
	if (cg->dir >= 0)
		cg->kill = openat(cg->dir, "cgroup.kill", O_WRONLY | O_CLOEXEC);
	if (cg->kill < 0) {
		rc = -errno;
		cgroup_remove(cg);
		return rc;
	}
	return 0;
}

pid_t cgroup_fork(const struct job_cgroup *cg)
{
	/*
	 * fork() as glibc's clone3 wrapper would do it, had glibc 2.36 one to
	 * call: no stack, SIGCHLD at exit.  The child is a copy of a process
	 * with one thread and goes straight to exec, so what glibc's fork()
	 * does besides (atfork handlers, the thread's cached id) is not
	 * missed.
	 */
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cg->dir,
	};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	return pid < 0 ? -errno : (pid_t)pid;
}

int cgroup_kill(const struct job_cgroup *cg)
{
	if (cg->kill < 0)
		return -EBADF;
	return write(cg->kill, "1", 1) == 1 ? 0 : -errno;
}

bool cgroup_populated(const struct job_cgroup *cg)
{
	char buf[256];
	ssize_t n;
	int fd;

	if (cg->dir < 0)
		return false;
	fd = openat(cg->dir, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "populated 1") != NULL;
}

void cgroup_remove(struct job_cgroup *cg)
{
	/*
	 * A process leaves its group when it exits, before its parent reaps
	 * it, so an empty group is removable at once; a few tries cover a
	 * process still on its way out when this runs.
	 */
	if (cg->path[0] != '\0')
		for (int i = 0; i < 100 && rmdir(cg->path) < 0 && errno == EBUSY; i++)
			usleep(10000);
	if (cg->kill >= 0)
		close(cg->kill);
	if (cg->dir >= 0)
		close(cg->dir);
	cg->dir = cg->kill = -1;
	cg->path[0] = '\0';
}
