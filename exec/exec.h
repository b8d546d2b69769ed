/*
 * segfs-exec's parts (exec/exec*.c): the reaper that runs the command's
 * whole process tree in a PID namespace of its own, and the report of
 * what the tree left in /dev/shm.  See exec/exec.c for how they fit.
 */
#ifndef SEGFS_FS_EXEC_H
#define SEGFS_FS_EXEC_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Starts the reaper: PID 1 of a new PID namespace, in a mount namespace of
 * its own with that namespace's /proc.  It runs argv, reaps every process
 * of the tree, and once argv's process has exited gives the others
 * `grace` seconds to end, then SIGTERM and `grace` seconds more, then
 * SIGKILL.  When the namespace is empty it writes the command's wait
 * status (an int) to status_fd and exits.
 *
 * Returns the pid of our child that stands between us and the reaper (it
 * makes the namespace so that we need not), or -errno.  Call it with
 * SIGTERM and SIGHUP blocked: sent to that child, they go to the reaper,
 * which passes them on to the command (and, while the others have their
 * grace, ends it at once).  That child exits 1 having said why if it
 * could not start the reaper, else 0 once the reaper is gone.  If we die,
 * it dies, the reaper dies, and the kernel kills the whole namespace.
 */
pid_t reaper_start(char **argv, double grace, int status_fd);

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
