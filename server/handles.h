/*
 * Open handles that hold state of the server's (server/handles.c):
 * directory streams and lists/ files.  Segments' opens need none: the
 * namespace counts them on their inodes.
 *
 * A handle is a record of the region (core/region.h: RG_HANDLES), so a
 * server that takes over finds every handle the kernel holds: the
 * kernel's fh is the record's index plus one.  What a handle holds in
 * memory (a cursor, a text) is made again, from its record, the first
 * time a new server is asked about it (handle_get's adopt).
 */
#ifndef SEGFS_SERVER_HANDLES_H
#define SEGFS_SERVER_HANDLES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct segfs;
struct rg;

/* The kinds, in RH_KIND. */
enum handle_kind {
	HK_DIR = 1,        /* a stream of a namespace directory */
	HK_VFILE,          /* an open lists/ entry */
	HK_LISTS_DIR,      /* a stream of lists/ */
};

/* RH_FLAGS: the count the handle holds was taken (its drop gives it back). */
#define HF_COUNTED 0x1

/* Embedded in what a handle (fi->fh) stands for. */
struct handle {
	uint64_t index;
	/* Releases what the handle holds, as its RELEASE would, and frees it. */
	void (*drop)(struct segfs *fs, struct handle *h);
};

typedef struct handle *(*handle_adopt_fn)(struct segfs *fs, uint64_t index,
					  const uint64_t *words);

struct handles {
	pthread_mutex_t lock;
	struct rg *rg;
	struct handle **by_index;      /* the handles this server has in memory */
	uint64_t cap;
	handle_adopt_fn adopt[HK_LISTS_DIR + 1];
};

int handles_init(struct handles *hs, struct rg *rg);
void handles_destroy(struct handles *hs);

/*
 * A new handle of `kind` on node id `node`: its record, published.
 * -ENFILE when the table is full.
 */
int handle_add(struct handles *hs, struct handle *h,
	       void (*drop)(struct segfs *fs, struct handle *h), enum handle_kind kind,
	       uint64_t node);
/* The kernel's number for it. */
uint64_t handle_fh(const struct handle *h);
/* The record's words, to read; set them with handle_set (logged). */
uint64_t *handle_words(struct handles *hs, const struct handle *h);
void handle_set(struct handles *hs, struct handle *h, unsigned word, uint64_t value);
/* Says the count the handle holds was taken (HF_COUNTED). */
void handle_counted(struct handles *hs, struct handle *h);
/*
 * For a kind's drop: whether the handle holds its count (then it must give
 * it back), the flag cleared first so that it is never given back twice.
 */
bool handle_uncount(struct handles *hs, struct handle *h);

/*
 * The release of a handle: its drop gives back what it holds and frees
 * it, then its record goes.
 */
void handle_release(struct segfs *fs, struct handle *h);
/* A record freed alone (its handle never made, or dropped already). */
void handle_forget_index(struct handles *hs, uint64_t index);

/*
 * How a kind makes a handle a previous server left from its record (NULL
 * if it cannot be made: its record is then freed).  Set at start.
 */
void handles_set_adopt(struct handles *hs, enum handle_kind kind, handle_adopt_fn fn);

/* The handle of the kernel's number `fh`: in memory, or adopted, or NULL. */
struct handle *handle_get(struct handles *hs, struct segfs *fs, uint64_t fh);

/*
 * Gives back a handle by record index, as its release would, where the
 * kernel will never release it (a request sent again after the server
 * that made it died): in memory or from its record.
 */
void handle_drop_index(struct segfs *fs, uint64_t index);

/*
 * At the session's end (unmount): releases every handle the kernel never
 * did, in memory or only in the records.
 */
void handles_drop_all(struct handles *hs, struct segfs *fs);

#endif
