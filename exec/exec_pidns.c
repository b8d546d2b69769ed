/*
 * --pid-ns: the job in a PID namespace of its own (exec/exec.h).
 *
 * In a PID namespace "the job's processes" is exact by the kernel's own
 * word: nothing started in it can leave it, orphans come to its init (the
 * reaper), kill(-1, sig) from that init reaches every process in it and
 * nothing else, and when the init dies the kernel kills them all, even
 * if segfs-exec and the reaper are killed with SIGKILL.  The price is
 * that the job sees process ids of its own, which two jobs side by side
 * share: each one's command is pid 2, and whatever names files after its
 * pid (Open MPI's session directories, pid and lock files) collides.  So
 * it is an option, not the default.
 *
 * Why a /proc of its own.  Process ids inside are the namespace's, so the
 * job gets a /proc that numbers processes as it does (a mount namespace of
 * its own, nested in segfs-exec's, holds that mount).  The daemon stays
 * outside both: FUSE tells it callers' process ids in its own namespace,
 * which the outer /proc it keeps reading numbers alike.
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
#include <unistd.h>

void pidns_own_proc(void)
{
	/*
	 * The job's own /proc, in a mount namespace nested in segfs-exec's,
	 * which holds /dev/shm.  Without it (a /proc we may not mount over),
	 * the job still runs, with the outer one.
	 */
	if (unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
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

static void to_reaper(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (from_terminal(sig, info))
		return;
	if (reaper_pid > 0)
		kill((pid_t)reaper_pid, sig);
}

static _Noreturn void midwife(const struct job *job, pid_t parent)
{
	struct sigaction act = { .sa_sigaction = to_reaper, .sa_flags = SA_SIGINFO };
	int alive[2], status;
	sigset_t pass;
	pid_t pid;

	/* Die with segfs-exec, which may have died before this took effect. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* segfs-exec blocked SIGTERM, SIGHUP and SIGINT: they wait for reaper_pid. */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	if (pipe2(alive, O_CLOEXEC) < 0 || unshare(CLONE_NEWPID) < 0) {
		fprintf(stderr, "segfs-exec: cannot make a PID namespace: %s\n", strerror(errno));
		_exit(1);
	}
	pid = fork();
	if (pid == 0) {
		close(alive[1]);
		/*
		 * The reaper dies with us (pidns_own_proc), and we may have died
		 * before that took effect: alive[1] is never written, and reads
		 * as closed once we are gone.
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (poll(&(struct pollfd){ .fd = alive[0], .events = POLLIN }, 1, 0) != 0)
			_exit(1);
		close(alive[0]);
		reaper_run(job, 0);
	}
	if (pid < 0) {
		fprintf(stderr, "segfs-exec: fork: %s\n", strerror(errno));
		_exit(1);
	}
	close(alive[0]);
	close(job->status_fd);
	reaper_pid = pid;
	sigemptyset(&pass);
	sigaddset(&pass, SIGTERM);
	sigaddset(&pass, SIGHUP);
	sigaddset(&pass, SIGINT);
	sigprocmask(SIG_UNBLOCK, &pass, NULL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

pid_t pidns_start(const struct job *job)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0)
		midwife(job, parent);
	return pid < 0 ? -errno : pid;
}
