/*
 * The serving loop (server/loop.c).
 */
#ifndef SEGFS_SERVER_LOOP_H
#define SEGFS_SERVER_LOOP_H

#include <stdbool.h>

struct segfs;

/* What loop_run returns when it did not fail. */
#define LOOP_ENDED   1   /* the connection is gone: unmounted or aborted */
#define LOOP_STOPPED 2   /* loop_stop: every request read was answered */

/* Serves until the connection ends or loop_stop is called; or -errno. */
int loop_run(struct segfs *fs, bool one_thread);

/* Asks the running loop to stop, from any thread (a signal handler not). */
void loop_stop(void);

#endif
