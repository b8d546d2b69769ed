/*
 * segfs-exec's parts (fs/exec*.c): the reaper that runs the command's
 * whole process tree in a PID namespace of its own, and the report of
 * what the tree left in /dev/shm.  See fs/exec.c for how they fit.
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
 * SIGKILL.  SIGTERM and SIGHUP sent to the reaper go to the command (and
 * while the others are given their grace, end it at once).  When the
 * namespace is empty it writes the command's wait status (an int) to
 * status_fd and exits 0.  Returns the reaper's pid (in our namespace), or
 * -errno; the reaper dies, and the kernel kills the whole namespace with
 * it, if we die.
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

#endif
