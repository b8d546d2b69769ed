/*
 * The server's side of its supervisor (common/proto.h): what it hands it
 * to hold, and the pins of the segments' files (core/store.h: the pin
 * holder is the supervisor).
 */
#ifndef SEGFS_SERVER_KEEPER_H
#define SEGFS_SERVER_KEEPER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/store.h"

struct keeper {
	int ctl;                       /* the socket to the supervisor, or -1 */
	pid_t pid;                     /* the supervisor's */
	int base, limit;               /* its descriptor numbers for pins */
	pthread_mutex_t lock;          /* the numbers; seq, sent, held; sends */
	int *free;                     /* numbers below `next` given back */
	size_t nfree;
	int next;                      /* numbers from here on were never used */
	/*
	 * Per number: which P_PIN gave it (a count from 1), and how many the
	 * supervisor has said it holds (P_PINNED); `asked`, the count a P_ASK
	 * went out for.  Till a file's pin is held, it keeps the server's own
	 * descriptor (store_pins.ready): /proc/PID/fd/N would still name the
	 * file the number had before.
	 */
	uint64_t *seq;
	uint64_t sent, held, asked;
	bool gone;                     /* the supervisor's end closed */
	struct store_pins pins;
	/* P_HANDOVER and P_GO, from the reader thread. */
	void (*on_message)(void *arg, int type);
	void *arg;
	pthread_t reader;
	bool reading;
};

/*
 * From the environment (SEGFS_FDS's ctl, SEGFS_PINS): false when the
 * server runs without a supervisor (then it pins nothing).
 */
bool keeper_init(struct keeper *k);
void keeper_destroy(struct keeper *k);

/*
 * Reads what the supervisor says, in a thread of its own: P_PINNED here,
 * the rest to `on_message`, and type 0 when the supervisor's end closed.
 */
int keeper_listen(struct keeper *k, void (*on_message)(void *arg, int type), void *arg);

/* Hands `fd` to the supervisor to hold for good (P_KEEP). */
int keeper_keep(struct keeper *k, uint64_t what, int fd);

/*
 * After a rebuild: `keys` (n of them) are the pins the records name; they
 * are in use and held (ready), and the supervisor closes every other one
 * (P_SYNC_*).
 */
int keeper_sync(struct keeper *k, const uint64_t *keys, size_t n);

/* Says something to the supervisor: P_READY, P_FRAGILE, P_RESENT, ... */
int keeper_say(struct keeper *k, int type, const char *text);

#endif
