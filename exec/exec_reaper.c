/*
 * The reaper (exec/exec.h): the one process that waits for the whole job.
 *
 * segfs-exec must not unmount /dev/shm while any process the command
 * started still runs: Python's resource tracker, for one, outlives the
 * program and unlinks what it left.  So the command runs as the child of
 * a reaper that collects every process of the job, however it leaves its
 * parent (double forks, setsid, daemons), and once the command has ended
 * gives the rest a grace period, then SIGTERM and a grace more, then
 * SIGKILL.  When none is left it writes the command's wait status for
 * segfs-exec, which then reports what the job left and unmounts.
 *
 * Two ways to hold the job, one loop:
 *
 *   - By default the job keeps the machine's process ids.  The reaper is
 *     a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans of the job
 *     come to it, and "some process of the job runs" is "the reaper has a
 *     child".  The rest are signalled by walking the tree (exec_tree.c),
 *     and where segfs-exec could make one, killed through the job's cgroup
 *     (exec_cgroup.c), which no fork escapes.  If segfs-exec dies, the
 *     reaper kills the job at once (it has no /dev/shm any more).
 *   - With --pid-ns, the reaper is PID 1 of a PID namespace of the job's
 *     own (exec_pidns.c): kill(-1) reaches the job and nothing else, and
 *     when the reaper dies the kernel kills the rest.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The signal the kernel sends the reaper when segfs-exec dies. */
#define ORPHANED SIGUSR1

static volatile sig_atomic_t command, hurry, orphaned;

/*
 * SIGTERM, SIGHUP or SIGINT: the command's to act on; and no more waiting.
 */
static void pass_on(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (from_terminal(sig, info))
		return;
	if (command > 0)
		kill((pid_t)command, sig);
	hurry = 1;
}

static void parent_died(int sig)
{
	(void)sig;
	orphaned = hurry = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Reaps what has ended; returns false once no process of the job is left
 * (every one descends from us, so none is when we have no child).
 * Records the command's status when it ends.  Blocking, it returns after
 * one child, or when a signal asks us to hurry.
 */
static bool reap(int *status, bool block)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, block ? 0 : WNOHANG);

		if (pid < 0 && errno == EINTR) {
			if (hurry)
				return true;
			continue;
		}
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

/* Waits up to `secs` (or until told to hurry) for the job to end. */
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

/* SIGTERM (or any signal) to every process of the job but the command's. */
static void signal_rest(const struct job *job, int sig)
{
	if (job->pid_ns)
		kill(-1, sig);    /* PID 1: the namespace's processes, not us */
	else
		tree_signal(sig);
}

/*
 * SIGKILL to the whole job until it is gone.  A walk misses what is
 * forked after it read /proc: walk again until none is left.  The
 * cgroup's kill misses nothing, but a process may have been moved out of
 * the group by someone allowed to; the walk still finds it.
 */
static void kill_rest(const struct job *job, int *status)
{
	while (reap(status, false)) {
		if (job->pid_ns) {
			kill(-1, SIGKILL);
		} else {
			if (job->cgroup != NULL)
				cgroup_kill(job->cgroup);
			tree_signal(SIGKILL);
		}
		usleep(1000);
	}
}

static _Noreturn void run_command(const struct job *job, const sigset_t *mask)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(ORPHANED, SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(job->argv[0], job->argv);
	fprintf(stderr, "segfs-exec: %s: %s\n", job->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

void reaper_run(const struct job *job, pid_t parent)
{
	int status = 1 << 8;   /* exit 1, if the command cannot even be forked */
	struct sigaction act = { .sa_sigaction = pass_on, .sa_flags = SA_SIGINFO };
	sigset_t pass, mask;
	pid_t pid;

	if (job->pid_ns) {
		pidns_own_proc();
	} else {
		/* Orphans of the job come to us, not to init. */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		sigaction(ORPHANED, &(struct sigaction){ .sa_handler = parent_died }, NULL);
		prctl(PR_SET_PDEATHSIG, ORPHANED);
		if (getppid() != parent)
			orphaned = hurry = 1;
	}
	signal(SIGQUIT, SIG_IGN);
	/*
	 * SIGTERM, SIGHUP and SIGINT stay blocked across the fork (segfs-exec
	 * blocked them already), so that one passed on at once is neither
	 * lost before `command` is set nor caught by our handler in the
	 * child.  No SA_RESTART: a blocking wait returns to look at hurry.
	 */
	sigemptyset(&pass);
	sigaddset(&pass, SIGTERM);
	sigaddset(&pass, SIGHUP);
	sigaddset(&pass, SIGINT);
	sigprocmask(SIG_BLOCK, &pass, &mask);
	sigdelset(&mask, SIGTERM);
	sigdelset(&mask, SIGHUP);
	sigdelset(&mask, SIGINT);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	pid = -1;
	/*
	 * Born in the job's group; where the kernel will not (EPERM or
	 * EACCES for a group we may make but not fork into), without one:
	 * the walk still finds the job, with no kill that misses nothing.
	 */
	if (!orphaned && job->cgroup != NULL)
		pid = cgroup_fork(job->cgroup);
	if (!orphaned && pid < 0)
		pid = fork();
	if (pid == 0)
		run_command(job, &mask);
	if (pid > 0)
		command = pid;
	else if (!orphaned)
		fprintf(stderr, "segfs-exec: fork: %s\n", strerror(errno));
	sigprocmask(SIG_SETMASK, &mask, NULL);
	while (command > 0 && !orphaned && reap(&status, true))
		;
	/*
	 * The rest of the job: grace, then SIGTERM, grace, SIGKILL.  A
	 * SIGTERM, SIGHUP or SIGINT to us (ever) cuts the first grace short,
	 * one while the second runs cuts that short too.  Without segfs-exec
	 * there is no /dev/shm to wait for: SIGKILL at once.
	 */
	if (!orphaned && !wait_empty(job->grace, &status) && !orphaned) {
		hurry = 0;
		signal_rest(job, SIGTERM);
		wait_empty(job->grace, &status);
	}
	kill_rest(job, &status);
	/* segfs-exec would have removed the group; it cannot now. */
	if (orphaned && job->cgroup != NULL)
		cgroup_remove(job->cgroup);
	if (write(job->status_fd, &status, sizeof(status)) != (ssize_t)sizeof(status))
		_exit(1);
	_exit(0);
}

pid_t reaper_start(const struct job *job)
{
	pid_t parent = getpid(), pid;

	if (job->pid_ns)
		return pidns_start(job);
	pid = fork();
	if (pid == 0)
		reaper_run(job, parent);
	return pid < 0 ? -errno : pid;
}
