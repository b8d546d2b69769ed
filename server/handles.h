/*
 * Open handles the kernel may never release (server/handles.c).
 */
#ifndef SEGFS_FS_HANDLES_H
#define SEGFS_FS_HANDLES_H

#include <pthread.h>

struct segfs;

/* Embedded in what a handle (fi->fh) points at. */
struct handle {
	struct handle *prev, *next;
	/* Releases the handle as its RELEASE would, and frees it. */
	void (*drop)(struct segfs *fs, struct handle *h);
};

/* The list of a session's open handles. */
struct handles {
	pthread_mutex_t lock;
	struct handle head;
};

void handles_init(struct handles *hs);
/* From the open's reply on; `drop` is for a release that never comes. */
void handle_add(struct handles *hs, struct handle *h,
		void (*drop)(struct segfs *fs, struct handle *h));
/* At its release, before it is freed. */
void handle_del(struct handles *hs, struct handle *h);
/* Once no request runs any more: drops what is left. */
void handles_drop_all(struct handles *hs, struct segfs *fs);

#endif
