/*
 * segfs-exec's parts (exec/exec*.c): the reaper that runs the command and
 * waits for its whole job, the ways it holds that job (a subreaper with a
 * cgroup and a walk of the process tree, or a PID namespace), the report
 * of what the job left in /dev/shm, and the user namespace of a rootless
 * run.  See exec/exec.c for how they fit.
 */
#ifndef SEGFS_FS_EXEC_H
#define SEGFS_FS_EXEC_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * Whether a signal caught by segfs-exec, the child that makes a PID
 * namespace, or the reaper is the terminal's Ctrl-C: a SIGINT the kernel
 * sent (SI_KERNEL) to the foreground process group, which the command is
 * in.  It reached the command already; passing it on would send it twice.
 * SIGTERM, SIGHUP and a SIGINT sent with kill() are passed on.
 * Async-signal-safe: it only reads what the kernel handed the handler.
 */
static inline bool from_terminal(int sig, const siginfo_t *info)
{
	return sig == SIGINT && info->si_code == SI_KERNEL;
}

/* The job's cgroup v2 group (exec/exec_cgroup.c); -1 where there is none. */
struct job_cgroup {
	int dir, kill;                 /* the group, and its cgroup.kill */
	char path[PATH_MAX];
};

/* What the reaper needs to run a job (exec/exec_reaper.c). */
struct job {
	char **argv;                   /* the command */
	double grace;                  /* seconds for the rest, then SIGTERM, then SIGKILL */
	int status_fd;                 /* where the command's wait status goes */
	bool pid_ns;                   /* --pid-ns: a PID namespace of its own */
	struct job_cgroup *cgroup;     /* the job's group, or NULL */
};

/*
 * Starts the reaper, which runs the command and reaps every process of
 * the job; once the command's process has exited it gives the others
 * `grace` seconds to end, then SIGTERM and `grace` seconds more, then
 * SIGKILL.  When none is left it writes the command's wait status (an
 * int) to status_fd and exits.
 *
 * Returns the pid of our child that SIGTERM, SIGHUP and SIGINT are to be
 * sent to (the reaper, or with pid_ns the child that made its namespace),
 * or -errno.  Call it with those signals blocked: sent to that child,
 * they go to the command (and, while the others have their grace, end it
 * at once).  That child exits 1 having said why if it could not start
 * the command, else 0 once the job is gone.  If we die, the job is
 * killed: by the reaper, or with pid_ns by the kernel.
 */
pid_t reaper_start(const struct job *job);

/*
 * The reaper itself, in the child that is to be it; `parent` is the
 * process whose death ends the job (0 with pid_ns: the kernel sees to it).
 */
_Noreturn void reaper_run(const struct job *job, pid_t parent);

/*
 * --pid-ns (exec/exec_pidns.c).  pidns_start forks the child that makes
 * the PID namespace and the reaper in it, returning that child's pid or
 * -errno; pidns_own_proc, in the reaper, mounts the namespace's /proc in
 * a mount namespace of its own.
 */
pid_t pidns_start(const struct job *job);
void pidns_own_proc(void);

/*
 * The job's cgroup (exec/exec_cgroup.c).  cgroup_make makes `name` below
 * our own cgroup v2 group: 0 or -errno (then no group: all -1).
 * cgroup_fork forks a child born in it (pid, 0 in the child, or -errno,
 * with no child); cgroup_kill kills everything in it (cgroup.kill);
 * cgroup_populated says whether anything is left; cgroup_remove removes
 * it, once empty, and closes it.
 */
int cgroup_make(struct job_cgroup *cg, const char *name);
pid_t cgroup_fork(const struct job_cgroup *cg);
int cgroup_kill(const struct job_cgroup *cg);
bool cgroup_populated(const struct job_cgroup *cg);
void cgroup_remove(struct job_cgroup *cg);

/*
 * Sends sig to every process that descends from us, each through a pidfd
 * and only once it is checked to be ours (exec/exec_tree.c).  Returns how
 * many, or -errno.  What is forked meanwhile may be missed: call again.
 */
int tree_signal(int sig);

/*
 * What the tree left in the directory `dir` (a segfs mount): every
 * regular file below it but in its lists directory `lists`, counted and
 * summed.  One line on stderr, "segfs-exec: released N segments (SIZE)
 * left in DIR", if there were any; with `verbose` a line more for each,
 * with its size and, where the mount has inspection attributes
 * (-o xattr), the process that created it and when.
 */
void report_leaks(const char *dir, const char *lists, bool verbose);

/*
 * Without root (exec/exec_userns.c).  userns_enter makes a user namespace in
 * which we hold every capability, with our uid and gid mapped to
 * themselves, and a mount namespace it owns: 0 or -errno.  userns_hint
 * says what a user who may not do that can do about it.
 * userns_keep_cap_sys_admin, in a child about to exec the daemon, keeps
 * CAP_SYS_ADMIN (in the namespace) across the exec.
 */
int userns_enter(void);
const char *userns_hint(void);
int userns_keep_cap_sys_admin(void);

#endif
