/*
 * segfs-exec: runs a command, and every process it starts, with a fresh
 * segfs as its /dev/shm.
 *
 *   segfs-exec [-q] [-v] [--grace=SECONDS] [--pid-ns] [-o segfs-options] [--] COMMAND [ARGS...]
 *
 * In a new private mount namespace, segfs is mounted on /dev/shm, so the
 * command's shm_open(), sem_open() and Python's multiprocessing all use it
 * unmodified.  The command runs under a reaper (exec/exec_reaper.c) that
 * holds its whole job: by default on the machine's process ids, as a child
 * subreaper with a cgroup of the job's own where we may make one
 * (exec/exec_cgroup.c); with --pid-ns in a PID namespace of its own
 * (exec/exec_pidns.c).  When the command exits, the processes it left
 * (Python's resource tracker, helpers, daemons) get a grace period to end,
 * then SIGTERM, then SIGKILL.  Only when none is left does segfs-exec say
 * what they left in /dev/shm (exec/exec_report.c) and stop the daemon, which
 * unmounts and frees every segment: no process of the job ever finds
 * /dev/shm gone.
 *
 * Exit status: the command's, 128 + the signal if it died of one (or if
 * the signal came before the command started, which then never runs), 127
 * if it could not be run, and 1 if segfs-exec itself failed (it says why).
 *
 * Processes: the daemon runs in its own process group, so a Ctrl-C meant
 * for the command does not unmount /dev/shm under it; the command runs in
 * ours.  SIGTERM, SIGHUP and SIGINT sent to segfs-exec go to the command
 * through the reaper (a Ctrl-C reaches it through the process group, and
 * is not sent twice).  If segfs-exec dies, the daemon gets SIGTERM and the
 * reaper kills the job (PR_SET_PDEATHSIG); if the reaper dies, we kill what
 * the job's cgroup holds.  SIGKILL to both leaves the job's processes
 * running without a /dev/shm, except with --pid-ns, where the kernel
 * kills them.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
/* How long the daemon may take to mount, and to exit after SIGTERM. */
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
/* Seconds the command's other processes get to end, by default. */
#define GRACE 3.0

static void usage(FILE *f)
{
	fprintf(f, "usage: segfs-exec [-q] [-v] [--grace=SECONDS] [--pid-ns] [-o segfs-options]\n"
		"                  [--] COMMAND [ARGS...]\n"
		"Runs COMMAND, and every process it starts, with a fresh segfs mounted on\n"
		"/dev/shm in private namespaces; when they have ended, every segment they\n"
		"left is released.\n"
		"  -o OPTS          options for segfs (mode=1777,allow_other are given;\n"
		"                   see segfs --help)\n"
		"  --grace=SECONDS  once COMMAND has exited, how long the processes it\n"
		"                   left may run on before SIGTERM, and after it before\n"
		"                   SIGKILL (default: 3)\n"
		"  --pid-ns         run the job in a PID namespace of its own: the kernel\n"
		"                   kills it if segfs-exec is killed, but it sees process\n"
		"                   ids of its own, which jobs side by side share\n"
		"  -q               say nothing of the segments left in /dev/shm\n"
		"  -v               show segfs's startup line (its data path), how the job's\n"
		"                   processes are held, and each segment left, with its\n"
		"                   creator (segfs -o xattr)\n"
		"As root, or as a user where users may make user namespaces and open\n"
		"/dev/fuse (then without FUSE passthrough: cached I/O).\n");
}

/* The segfs beside this program, so a build tree runs its own daemon. */
static int find_segfs(char *path, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(path, size, "%s/segfs", self) >= size)
		return -ENAMETOOLONG;
	return access(path, X_OK) == 0 ? 0 : -errno;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Waits up to timeout_ms for pid; returns its wait status or -ETIMEDOUT.
 * SIGCHLD is not caught, so this polls; it only runs at start and stop.
 */
static int wait_for(pid_t pid, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

static volatile sig_atomic_t reaper_pid, pending_signal;

/*
 * Reads the daemon's stderr until its startup line ("segfs: mounted on
 * ...", printed once the kernel has finished INIT, so /dev/shm serves
 * requests).  Returns 0 when it came, -EINTR when a signal we pass on
 * came first (the command is not to run), or -1 when the daemon failed
 * first (what it said has been copied to our stderr).
 */
static int await_mount(int fd, bool verbose)
{
	long deadline = now_ms() + START_TIMEOUT_MS;
	char buf[4096];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = deadline - now_ms();
		char *nl;
		ssize_t r;

		if (left <= 0) {
			fprintf(stderr, "segfs-exec: segfs did not mount %s within %d s\n",
				SHM_DIR, START_TIMEOUT_MS / 1000);
			return -1;
		}
		if (pending_signal)
			return -EINTR;
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* The daemon exited without mounting. */
			if (len > 0)
				fwrite(buf, 1, len, stderr);
			return -1;
		}
		len += (size_t)r;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			size_t line = (size_t)(nl - buf) + 1;
			bool ready = strncmp(buf, "segfs: mounted on ", 18) == 0;

			if (!ready || verbose)
				fwrite(buf, 1, line, stderr);
			memmove(buf, buf + line, len - line + 1);
			len -= line;
			if (ready)
				return 0;
		}
		if (len == sizeof(buf) - 1)
			len = 0;   /* a line this long is not the one we wait for */
	}
}

/* Copies what the daemon says later (errors, mostly) to our stderr. */
static void *forward(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR))
		if (r > 0 && write(STDERR_FILENO, buf, (size_t)r) < 0)
			break;
	close(fd);
	return NULL;
}

/*
 * In a child: have the kernel send SIGTERM when segfs-exec dies.  If it
 * died before prctl, the signal will never come: leave now instead.
 */
static void die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
}

static pid_t start_daemon(const char *segfs, const char *opts, int errpipe[2],
			  bool rootless)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	/* Child: segfs in the foreground, its stderr into our pipe. */
	die_with_parent(parent);
	setpgid(0, 0);
	dup2(errpipe[1], STDERR_FILENO);
	close(errpipe[0]);
	close(errpipe[1]);
	/* In our user namespace it mounts as we may: keep what lets it. */
	if (rootless) {
		int rc = userns_keep_cap_sys_admin();

		if (rc < 0) {
			fprintf(stderr, "segfs-exec: cannot pass CAP_SYS_ADMIN on to segfs: %s\n",
				strerror(-rc));
			_exit(1);
		}
	}
	execl(segfs, segfs, "-f", "-o", opts, SHM_DIR, (char *)NULL);
	fprintf(stderr, "segfs-exec: cannot run %s: %s\n", segfs, strerror(errno));
	_exit(1);
}

/*
 * SIGTERM, SIGHUP and SIGINT sent to us go to the reaper, which passes
 * them on to the command; one that arrives before the reaper runs ends
 * the job before the command starts.
 */
static void pass_on(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (from_terminal(sig, info))
		return;
	if (reaper_pid > 0)
		kill((pid_t)reaper_pid, sig);
	else
		pending_signal = sig;
}

/* The lists directory's name in the segfs options (the last lists= wins). */
static const char *lists_name(const char *opts, char *buf, size_t size)
{
	const char *name = "lists";

	for (const char *p = opts; p != NULL; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, "lists=", 6) == 0) {
			size_t n = strcspn(p + 6, ",");

			snprintf(buf, size, "%.*s", (int)n, p + 6);
			name = buf;
		}
	}
	return name;
}

/* Stops the daemon: SIGTERM makes it unmount, free everything and exit 0. */
static int stop_daemon(pid_t daemon)
{
	int status;

	kill(daemon, SIGTERM);
	status = wait_for(daemon, STOP_TIMEOUT_MS);
	if (status == -ETIMEDOUT) {
		fprintf(stderr, "segfs-exec: segfs did not stop; killing it\n");
		kill(daemon, SIGKILL);
		wait_for(daemon, STOP_TIMEOUT_MS);
		return -1;
	}
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "segfs-exec: segfs ended badly (status %d)\n", status);
		return -1;
	}
	return 0;
}

static int parse_grace(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= 0 && *out <= 86400 ? 0
	       : -EINVAL;
}

/*
 * How the job's processes are held, by default: a cgroup of the job's own
 * where we may make one, else the reaper's walk of the process tree alone.
 * -v says which, since the guarantees differ (README, "segfs-exec").
 */
static void hold_job(struct job *job, struct job_cgroup *cg, bool verbose)
{
	char name[64];
	int rc;

	cg->dir = cg->kill = -1;
	cg->path[0] = '\0';
	if (job->pid_ns) {
		if (verbose)
			fprintf(stderr, "segfs-exec: the job's processes: a PID namespace of its own\n");
		return;
	}
	snprintf(name, sizeof(name), "segfs-exec.%d", (int)getpid());
	rc = cgroup_make(cg, name);
	if (rc == 0)
		job->cgroup = cg;
	if (!verbose)
		return;
	if (rc == 0)
		fprintf(stderr, "segfs-exec: the job's processes: child subreaper, cgroup %s\n",
			cg->path);
	else
		fprintf(stderr, "segfs-exec: the job's processes: child subreaper, no cgroup "
			"(cannot make one: %s)\n", strerror(-rc));
}

/*
 * Once the reaper has gone: whatever the job's cgroup still holds (a
 * process moved out of the reaper's reach, or the job of a reaper that
 * was killed) is killed, and the group removed.
 */
static void release_job(struct job_cgroup *cg)
{
	if (cg->dir < 0)
		return;
	for (int i = 0; i < 1000 && cgroup_populated(cg); i++) {
		cgroup_kill(cg);
		usleep(10000);
	}
	cgroup_remove(cg);
}

/* The command's wait status as our exit status. */
static int exit_status(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "grace", required_argument, NULL, 'g' },
		{ "pid-ns", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* A /dev/shm is everyone's: all may create, only owners remove. */
	char segfs[PATH_MAX], opts[4096] = "mode=1777,allow_other", lists[256];
	bool verbose = false, quiet = false, rootless = false;
	int errpipe[2], statpipe[2], status, rc, c;
	struct job job = { .grace = GRACE };
	struct job_cgroup cg;
	struct sigaction act = { .sa_sigaction = pass_on, .sa_flags = SA_SIGINFO };
	pid_t daemon, reaper;
	sigset_t pass, unblocked;
	pthread_t tid;

	while ((c = getopt_long(argc, argv, "+o:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (strlen(opts) + 1 + strlen(optarg) >= sizeof(opts)) {
				fprintf(stderr, "segfs-exec: options too long\n");
				return 1;
			}
			strcat(opts, ",");
			strcat(opts, optarg);
			break;
		case 'g':
			if (parse_grace(optarg, &job.grace) < 0) {
				fprintf(stderr, "segfs-exec: bad --grace: %s (seconds, 0 to 86400)\n",
					optarg);
				return 1;
			}
			break;
		case 'P':
			job.pid_ns = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("segfs-exec %s\n", SEGFS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	/* -v names each segment left with its creator: the daemon must keep them. */
	if (verbose && !quiet && strlen(opts) + sizeof(",xattr") <= sizeof(opts))
		strcat(opts, ",xattr");
	rc = find_segfs(segfs, sizeof(segfs));
	if (rc < 0) {
		fprintf(stderr, "segfs-exec: no segfs beside segfs-exec: %s\n", strerror(-rc));
		return 1;
	}
	/*
	 * /dev/fuse must be ours to open (root may anyway); the daemon would
	 * say so too, but not what to do about it.
	 */
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		fprintf(stderr, "segfs-exec: cannot use /dev/fuse: %s (%s)\n", strerror(errno),
			errno == ENOENT ? "load the fuse module: modprobe fuse"
			: "run it as root, or let users open it: mode 0666, as Debian's "
			  "udev rule makes it");
		return 1;
	}
	/* As root, a mount namespace; else a user namespace that owns one. */
	if (unshare(CLONE_NEWNS) < 0) {
		if (errno != EPERM) {
			fprintf(stderr, "segfs-exec: cannot make a private mount namespace: %s\n",
				strerror(errno));
			return 1;
		}
		rc = userns_enter();
		if (rc < 0) {
			/* The kernel's word for "the limit allows no more" is ENOSPC. */
			fprintf(stderr, "segfs-exec: cannot make a user namespace: %s (%s)\n",
				rc == -ENOSPC ? "the user namespace limit allows no more"
				: strerror(-rc), userns_hint());
			return 1;
		}
		rootless = true;
	}
	/* Our mounts must not leak out into the namespace we came from. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "segfs-exec: cannot make mounts private: %s\n", strerror(errno));
		return 1;
	}
	/*
	 * SIGTERM, SIGHUP and SIGINT are passed on to the command; a Ctrl-C
	 * and Ctrl-\ reach it through the process group.  Either way we wait
	 * for the job to end, then clean up.
	 */
	signal(SIGQUIT, SIG_IGN);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	if (pipe2(errpipe, O_CLOEXEC) < 0 || pipe2(statpipe, O_CLOEXEC) < 0) {
		perror("segfs-exec: pipe");
		return 1;
	}
	daemon = start_daemon(segfs, opts, errpipe, rootless);
	if (daemon < 0) {
		perror("segfs-exec: fork");
		return 1;
	}
	close(errpipe[1]);
	rc = await_mount(errpipe[0], verbose);
	if (rc < 0) {
		kill(daemon, SIGKILL);
		wait_for(daemon, STOP_TIMEOUT_MS);
		return rc == -EINTR ? 128 + pending_signal : 1;
	}
	hold_job(&job, &cg, verbose);
	/*
	 * SIGTERM, SIGHUP and SIGINT are blocked from here until reaper_pid is
	 * set, and for good in the forwarding thread, which inherits this mask.
	 * Were they open there, one sent while this thread has them blocked
	 * would run pass_on in that thread, which could read reaper_pid
	 * before we set it and store pending_signal after we last look at
	 * it: the signal was lost and the command ran on (the copy-on-write
	 * faults after fork() widen that window; SIGTERM sent right after
	 * the mount was lost 2 times in about 400 runs on a loaded machine).
	 */
	sigemptyset(&pass);
	sigaddset(&pass, SIGTERM);
	sigaddset(&pass, SIGHUP);
	sigaddset(&pass, SIGINT);
	pthread_sigmask(SIG_BLOCK, &pass, &unblocked);
	/* Even if whoever started us had them blocked: they are ours to pass on. */
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);
	sigdelset(&unblocked, SIGINT);
	if (pthread_create(&tid, NULL, forward, (void *)(intptr_t)errpipe[0]) == 0)
		pthread_detach(tid);
	/* A signal that came while the daemon was starting: the command never runs. */
	if (pending_signal) {
		cgroup_remove(&cg);
		stop_daemon(daemon);
		return 128 + pending_signal;
	}
	job.argv = argv + optind;
	job.status_fd = statpipe[1];
	reaper = reaper_start(&job);
	if (reaper > 0)
		reaper_pid = reaper;
	pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
	if (reaper < 0) {
		fprintf(stderr, "segfs-exec: cannot start the command: %s\n", strerror((int)-reaper));
		cgroup_remove(&cg);
		stop_daemon(daemon);
		return 1;
	}
	close(statpipe[1]);
	while (waitpid(reaper, &rc, 0) < 0 && errno == EINTR)
		;
	/* The reaper writes the command's status once the whole job is gone. */
	if (read(statpipe[0], &status, sizeof(status)) != (ssize_t)sizeof(status)) {
		/* Exit status 1: it said why already. */
		if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 1)
			fprintf(stderr, "segfs-exec: the command's processes ended abnormally\n");
		status = 1 << 8;
	}
	release_job(&cg);
	if (!quiet)
		report_leaks(SHM_DIR, lists_name(opts, lists, sizeof(lists)), verbose);
	if (stop_daemon(daemon) < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	return exit_status(status);
}
