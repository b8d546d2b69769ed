/*
 * Signalling the job's processes by walking the process tree
 * (exec/exec.h), for a reaper on the machine's process ids.
 *
 * The reaper is a child subreaper, so every process of the job is its
 * descendant: an orphan comes to it rather than to init.  Which processes
 * those are, /proc tells, but only as of the moment it was read: by the
 * time a signal goes out, a process may have exited, been reaped by its
 * parent, and its number been given to a process that is none of ours.
 * So each one is signalled through a pidfd, and only after checking,
 * with that pidfd held, that the process it names is still the child of
 * a parent that is itself still ours: the reaper, or a process already
 * checked whose own pidfd says it has not exited.  A process that exits
 * meanwhile is skipped (its children come to the reaper, and the next
 * walk finds them there).
 *
 * A walk does not see a process forked after it read /proc; the caller
 * walks again until no process is left.  Killing from the top down, every
 * process a walk finds either dies or was born to a parent that is dying,
 * so a tree that keeps forking still runs out.
 */
#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

struct proc {
	pid_t pid, ppid;
	int pidfd;     /* once checked, else -1 */
};

/* The parent's pid from /proc/PID/stat ("PID (COMM) STATE PPID ..."); -errno. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	const char *close_paren;
	ssize_t n;
	int fd, ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ESRCH;
	buf[n] = '\0';
	/* The command name may hold anything, parentheses and spaces too. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return -EIO;
	return (pid_t)ppid;
}

/* Whether the process behind pidfd has not exited (a zombie has). */
static bool running(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* Every process of the machine, with its parent, as /proc lists them now. */
static int read_procs(struct proc **out, size_t *count)
{
	DIR *d = opendir("/proc");
	struct proc *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		pid_t ppid;

		if (*end != '\0' || pid <= 0)
			continue;
		ppid = parent_of((pid_t)pid);
		if (ppid < 0)
			continue;   /* gone meanwhile */
		if (n == cap) {
			struct proc *bigger = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*v));

			if (bigger == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = bigger;
		}
		v[n++] = (struct proc){ .pid = (pid_t)pid, .ppid = ppid, .pidfd = -1 };
	}
	closedir(d);
	*out = v;
	*count = n;
	return 0;
}

/*
 * Checks v[i] as described above, given that its parent is `self` or the
 * checked v[parent]; sends sig and keeps its pidfd open for its children.
 */
static bool check_and_signal(struct proc *v, size_t i, pid_t self, const struct proc *parent,
			     int sig)
{
	int fd = pidfd_open(v[i].pid, 0);

	if (fd < 0)
		return false;
	if (parent_of(v[i].pid) != (parent != NULL ? parent->pid : self) ||
	    (parent != NULL && !running(parent->pidfd)) || !running(fd)) {
		close(fd);
		return false;
	}
	pidfd_send_signal(fd, sig, NULL, 0);
	v[i].pidfd = fd;
	return true;
}

int tree_signal(int sig)
{
	pid_t self = getpid();
	struct proc *v = NULL;
	size_t n = 0, *queue, head = 0, tail = 0;
	int rc = read_procs(&v, &n), sent = 0;

	if (rc < 0)
		return rc;
	queue = malloc((n + 1) * sizeof(*queue));
	if (queue == NULL) {
		free(v);
		return -ENOMEM;
	}
	/*
	 * Breadth first from us: a parent is checked (and signalled) before
	 * its children, which is what their check leans on, and a tree is
	 * killed from the top down.  Quadratic in the worst case; the job's
	 * processes are few next to the machine's, and this runs only while
	 * a job ends.
	 */
	for (size_t i = 0; i < n; i++)
		if (v[i].ppid == self && check_and_signal(v, i, self, NULL, sig)) {
			queue[tail++] = i;
			sent++;
		}
	while (head < tail) {
		const struct proc *parent = &v[queue[head++]];

		for (size_t i = 0; i < n; i++)
			if (v[i].ppid == parent->pid && v[i].pidfd < 0 &&
			    check_and_signal(v, i, self, parent, sig)) {
				queue[tail++] = i;
				sent++;
			}
	}
	for (size_t i = 0; i < tail; i++)
		close(v[queue[i]].pidfd);
	free(queue);
	free(v);
	return sent;
}
