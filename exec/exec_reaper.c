/*
 * The reaper: PID 1 of the command's own PID namespace (exec/exec.h).
 *
 * Why a PID namespace.  segfs-exec must not unmount /dev/shm while any
 * process the command started still runs: Python's resource tracker, for
 * one, outlives the program and unlinks what it left.  In a PID namespace
 * "the command's processes" is exact: nothing started in it can leave it
 * (double forks, setsid, daemons all stay), orphans come to its init to be
 * reaped, kill(-1, sig) from that init reaches every process in it and
 * nothing else, and when the init dies the kernel kills them all.  A child
 * subreaper would collect orphans too, but finding the processes whose
 * parents still live would mean walking /proc while they fork.
 *
 * Why a /proc of its own.  PIDs inside are the namespace's, so the tree
 * gets a /proc that numbers processes as it does (a mount namespace of
 * its own, nested in segfs-exec's, holds that mount).  The daemon stays
 * outside both: FUSE tells it callers' PIDs in its own namespace, which
 * the outer /proc it keeps reading numbers alike.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t command, hurry;

/* SIGTERM or SIGHUP: the command's to act on; and no more waiting. */
static void pass_on(int sig)
{
	if (command > 0)
		kill((pid_t)command, sig);
	hurry = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Reaps what has ended; returns false once no process is left in the
 * namespace (every process in it descends from us, so none is left when
 * we have no child).  Records the command's status when it ends.
 */
static bool reap(int *status, bool block)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, block ? 0 : WNOHANG);

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			return false;           /* ECHILD: all gone */
		if (pid == 0)
			return true;            /* some still run */
		if (pid == (pid_t)command) {
			*status = st;
			command = 0;
		}
		if (block)
			return true;
	}
}

/* Waits up to `secs` (or until told to hurry) for the namespace to empty. */
static bool wait_empty(double secs, int *status)
{
	double deadline = now() + secs;

	while (reap(status, false)) {
		if (hurry || now() >= deadline)
			return false;
		usleep(10000);
	}
	return true;
}

static void run_command(char **argv, const sigset_t *mask)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(argv[0], argv);
	fprintf(stderr, "segfs-exec: %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* PID 1 of the namespace.  Never returns. */
static void reaper(char **argv, double grace, int status_fd, int alive_fd)
{
	int status = 1 << 8;   /* exit 1, if the command cannot even be forked */
	sigset_t pass, mask;
	pid_t pid;

	/* Die with segfs-exec; it may have died before this took effect. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (poll(&(struct pollfd){ .fd = alive_fd, .events = POLLIN }, 1, 0) != 0)
		_exit(1);
	close(alive_fd);
	/*
	 * The tree's own /proc, in a mount namespace nested in segfs-exec's,
	 * which holds /dev/shm.  Without it (a /proc we may not mount over),
	 * the tree still runs, with the outer one.
	 */
	if (unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	/* Ctrl-C reaches the command through its process group, not us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	/*
	 * SIGTERM and SIGHUP stay blocked across the fork (segfs-exec blocked
	 * them already), so that one passed on at once is neither lost before
	 * `command` is set nor caught by our handler in the child.
	 */
	sigemptyset(&pass);
	sigaddset(&pass, SIGTERM);
	sigaddset(&pass, SIGHUP);
	sigprocmask(SIG_BLOCK, &pass, &mask);
	sigdelset(&mask, SIGTERM);
	sigdelset(&mask, SIGHUP);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = pass_on }, NULL);
	sigaction(SIGHUP, &(struct sigaction){ .sa_handler = pass_on }, NULL);
	pid = fork();
	if (pid == 0)
		run_command(argv, &mask);
	if (pid > 0)
		command = pid;
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if (pid > 0) {
		while (command > 0 && reap(&status, true))
			;
		/*
		 * The rest of the tree: grace, then SIGTERM, grace, SIGKILL.  A
		 * SIGTERM or SIGHUP to us (ever) cuts the first grace short, one
		 * while the second runs cuts that short too.
		 */
		if (!wait_empty(grace, &status)) {
			hurry = 0;
			kill(-1, SIGTERM);
			if (!wait_empty(grace, &status)) {
				kill(-1, SIGKILL);
				while (reap(&status, true))
					;
			}
		}
	} else {
		fprintf(stderr, "segfs-exec: fork: %s\n", strerror(errno));
	}
	if (write(status_fd, &status, sizeof(status)) != (ssize_t)sizeof(status))
		_exit(1);
	_exit(0);
}

/*
 * The midwife: a child of segfs-exec that makes the namespace, forks the
 * reaper into it, then only passes signals on and waits.  unshare() would
 * change where segfs-exec's own later children are born, for good once the
 * reaper is gone (no process can be born in a namespace whose init has
 * died), and segfs-exec may still fork: a sanitizer's leak check at its
 * exit does.  Never returns.
 */
static volatile sig_atomic_t reaper_pid;

static void to_reaper(int sig)
{
	if (reaper_pid > 0)
		kill((pid_t)reaper_pid, sig);
}

static void midwife(char **argv, double grace, int status_fd, pid_t parent)
{
	int alive[2], status;
	sigset_t pass;
	pid_t pid;

	/* Die with segfs-exec, which may have died before this took effect. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* segfs-exec blocked SIGTERM and SIGHUP: they wait for reaper_pid. */
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = to_reaper }, NULL);
	sigaction(SIGHUP, &(struct sigaction){ .sa_handler = to_reaper }, NULL);
	if (pipe2(alive, O_CLOEXEC) < 0 || unshare(CLONE_NEWPID) < 0) {
		fprintf(stderr, "segfs-exec: cannot make a PID namespace: %s\n", strerror(errno));
		_exit(1);
	}
	pid = fork();
	if (pid == 0) {
		close(alive[1]);
		reaper(argv, grace, status_fd, alive[0]);
	}
	if (pid < 0) {
		fprintf(stderr, "segfs-exec: fork: %s\n", strerror(errno));
		_exit(1);
	}
	/* alive[1] is never written: it closes when we die, which the reaper checks. */
	close(alive[0]);
	close(status_fd);
	reaper_pid = pid;
	sigemptyset(&pass);
	sigaddset(&pass, SIGTERM);
	sigaddset(&pass, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &pass, NULL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

pid_t reaper_start(char **argv, double grace, int status_fd)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0)
		midwife(argv, grace, status_fd, parent);
	return pid < 0 ? -errno : pid;
}
