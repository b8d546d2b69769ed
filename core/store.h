/*
 * The backing store: the files that hold the segments' pages.
 *
 * By default a private tmpfs, made with the new mount API, attached
 * nowhere and sized to the size limit, in which each segment is an
 * O_TMPFILE file.  Only this process reaches it, through its descriptor,
 * so a daemon that dies for any reason leaves nothing behind but the pages
 * clients still map; and the kernel itself refuses, with ENOSPC, a FUSE
 * passthrough write() that would take the mount past the limit, a write
 * the daemon never sees.  Making it needs CAP_SYS_ADMIN; without it (or
 * when asked to) each segment is a memfd, whose growth only we can bound.
 *
 * Outliving the server.  A file's descriptor dies with the process that
 * holds it, and with it the file, unless something else holds it.  A
 * pin holder (store_set_pins: the supervisor, which outlives the server)
 * takes a descriptor of every file at its making, so that a new server
 * finds every segment, and so that the death of both processes still
 * frees every segment no client maps.  Names would not do: any file a
 * client maps holds the whole tmpfs, and every file named in it.  When
 * the holder can take no more (its own file limit) a file is named in
 * the tmpfs instead, as eviction names it (below), and lives as long as
 * the tmpfs does.
 *
 * The store also keeps:
 *
 *   - the descriptor budget.  Every file is held open by a descriptor
 *     until the budget is reached; then, in the tmpfs, the least recently
 *     used idle files are named by their number and their descriptors
 *     closed, to be opened again by name when needed.  So there may be far
 *     more segments than descriptors.  A memfd has no name to be opened by
 *     again: with memfds every file keeps its descriptor.
 *   - reservations.  Growing a file allocates its pages at once
 *     (fallocate), so that a full mount or machine says ENOSPC then, not
 *     SIGBUS later in whoever touches the page.  With memfds the store
 *     counts the pages against the limit itself, and settles what writes
 *     it never saw (passthrough) took; the tmpfs counts them exactly.
 *
 * Holding.  A file's descriptor is stable while the file is held
 * (store_hold ... store_drop): it is never closed then, nor its file
 * evicted.  An idle file may lose its descriptor at any time.
 *
 * Locking.  The store has a mutex of its own, taken innermost: no function
 * holds it while calling out.  It covers the counts and lists, and the
 * short metadata syscalls that must not race with eviction (fstat of an
 * idle file, opening one again by name, and eviction's own fstat, linkat
 * and close, which is never a file's last); never fallocate, ftruncate,
 * I/O or a file's last close.  Per file, the caller serializes the calls
 * that change its size (store_resize, store_reserve, store_fallocate,
 * store_utimens).
 *
 * Errors: 0 or -errno; on error nothing changed unless said otherwise.
 */
#ifndef SEGFS_CORE_STORE_H
#define SEGFS_CORE_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct seg_store;

/* What holds the pages: the private tmpfs, or memfds. */
enum seg_backing {
	SEG_BACKING_TMPFS,
	SEG_BACKING_MEMFD,
};

struct store_config {
	uint64_t size_limit;   /* bytes the files may hold (0: half of RAM) */
	bool memfd;            /* memfds even where the tmpfs could be made */
	/*
	 * A private tmpfs to use rather than make one (a previous server's:
	 * its size and huge= are what it was made with); the store closes it
	 * with store_free.  0 or -1: make one.
	 */
	int tmpfs;
	/*
	 * The private tmpfs's huge= ("never", "always", "within_size",
	 * "advise", else store_new is -EINVAL; NULL: the kernel's default,
	 * never).  A kernel that refuses it (no transparent huge pages for
	 * shmem) gets a tmpfs without it.  Not kept: it may go after store_new.
	 */
	const char *huge;
	/* Descriptors the store may hold (0: no budget). */
	uint64_t fd_budget;
};

/* What store_stat reports of a file. */
struct store_stat {
	off_t size;
	blkcnt_t blocks;       /* 512-byte units, as st_blocks */
	/*
	 * The backing's own: a tmpfs reports its huge page size where huge=
	 * would give the file huge pages (within_size: once it is that big),
	 * which is also the step SEEK_HOLE and SEEK_DATA move in there.
	 */
	blksize_t blksize;
	struct timespec atime, mtime, ctime;
};

/*
 * One backing file, embedded in its owner's object (the namespace's
 * inode).  Its fields are the store's, protected by the store's lock;
 * the owner only passes it in.
 */
struct store_file {
	struct store_file *prev, *next; /* on idle while unheld with fd >= 0 */
	uint64_t id;                    /* its name in the tmpfs, once named */
	uint64_t reserved;              /* bytes it holds against the limit */
	int fd;                         /* -1 while evicted (then named) */
	uint32_t holds;
	bool named;                     /* linked in the tmpfs under id */
	bool pinned;                    /* the pin holder has it, as pin */
	uint64_t pin;
	bool unseen;                    /* writes may reach it unseen */
	/*
	 * While evicted: what fstat said when its descriptor was closed.
	 * Nothing can change the file meanwhile (it is open nowhere: a
	 * mapping keeps a handle open, so it would be held), so stat of such
	 * a file costs no syscall.
	 */
	struct store_stat snap;
	bool snap_due;                  /* adopted: taken at the first store_stat */
};

/*
 * Makes a store: the private tmpfs where possible.  *out is the caller's,
 * freed with store_free once every file has been destroyed.
 */
int store_new(const struct store_config *cfg, struct seg_store **out);

/* store_free(NULL) does nothing. */
void store_free(struct seg_store *st);

/* The private tmpfs's root (-1 with memfds), to keep across restarts. */
int store_tmpfs(const struct seg_store *st);

/*
 * The pin holder.  pin() takes a descriptor of a new file for good and
 * names it with *key, or says -ENOSPC when it can take no more; unpin()
 * lets it go; path() writes a path that opens it again (at most 64
 * bytes: /proc/PID/fd/N), once ready() says so (NULL: at once): till
 * then the file keeps the store's own descriptor.  Set once, before the
 * store is shared.
 */
struct store_pins {
	int (*pin)(void *arg, int fd, uint64_t *key);
	void (*unpin)(void *arg, uint64_t key);
	void (*path)(void *arg, uint64_t key, char buf[64]);
	bool (*ready)(void *arg, uint64_t key);
	void *arg;
};

void store_set_pins(struct seg_store *st, const struct store_pins *pins);

/*
 * The backing in use.  For SEG_BACKING_MEMFD, *why (if not NULL) is 0 when
 * memfds were asked for, else the -errno that refused the tmpfs.
 */
enum seg_backing store_backing(const struct seg_store *st, int *why);

/*
 * The huge= the private tmpfs has ("never" where the kernel refused the
 * one asked for: *why, if not NULL, is then its -errno, else 0), or NULL
 * with memfds, whose pages follow the system's shmem_enabled.
 */
const char *store_huge(const struct seg_store *st, int *why);

/* The size limit in bytes (the configured one, or half of RAM). */
uint64_t store_size_limit(const struct seg_store *st);

/*
 * Makes `f` a new, empty backing file, idle (not held), pinned when there
 * is a pin holder (else named `id`, if the holder is full).  `id` names
 * it in the tmpfs should it ever be named: unique in this store, never
 * reused.  `name` (may be NULL) is what /proc shows of a memfd.  Running
 * out of descriptors is -ENOSPC: out of inodes, as tmpfs would say.
 */
int store_create(struct seg_store *st, struct store_file *f, uint64_t id, const char *name);

/*
 * How a new server finds `f` again: pinned (*key set) or named (false).
 * For the caller to keep, with store_reserved's count, across restarts.
 */
bool store_pin_key(struct seg_store *st, const struct store_file *f, uint64_t *key);
uint64_t store_reserved(struct seg_store *st, const struct store_file *f);

/*
 * Makes `f` the file of a segment a previous server left: pinned as `key`
 * (pinned true) or named `id`, holding `reserved` bytes against the limit.
 * It starts evicted; its snapshot is taken through its pin or name when
 * first asked for (a rebuild adopts every segment, and a stat of each
 * would be a third of its time).
 */
int store_adopt(struct seg_store *st, struct store_file *f, uint64_t id, bool pinned,
		uint64_t key, uint64_t reserved);

/*
 * Releases a file that is not held: its reservation, descriptor, pin and
 * name go, and its pages with the last reference to it (ours, or a
 * client's mapping).  Makes syscalls that may take long (the last close
 * frees the pages): call it with no lock of the caller's held.
 */
void store_destroy(struct seg_store *st, struct store_file *f);

/*
 * Lets `f`'s memory go without freeing the file: for a server that stops
 * for another, which adopts it (its pin and name stay).
 */
void store_forsake(struct seg_store *st, struct store_file *f);

/*
 * Holds `f` and gives its descriptor, opened again by name if it was
 * evicted.  The descriptor stays valid, and is the same, until the
 * matching store_drop.  Holds nest.
 */
int store_hold(struct seg_store *st, struct store_file *f, int *fd);
void store_drop(struct seg_store *st, struct store_file *f);

/* The descriptor of a held file; no lock needed. */
int store_fd(const struct store_file *f);

/* Size, blocks and times of the file, held or not. */
int store_stat(struct seg_store *st, struct store_file *f, struct store_stat *out);

/*
 * Sets the size of a held file.  Growing reserves and allocates the new
 * pages first: -ENOSPC when the limit or memory does not allow (out of
 * memory is ENOSPC too: the promise is "ENOSPC now, not SIGBUS later").
 * Shrinking gives pages back.  On error the size is unchanged.
 */
int store_resize(struct seg_store *st, struct store_file *f, off_t size);

/*
 * Reserves and allocates the pages of a held file up to byte `end`,
 * keeping its size: for a write or fallocate that may extend it.
 */
int store_reserve(struct seg_store *st, struct store_file *f, uint64_t end);

/*
 * fallocate(2) of a held file with `mode`: what it allocates is reserved
 * as store_reserve would (and the pages below the range that store_reserve
 * would allocate are), but the range is allocated once, by this call, as
 * on tmpfs.  0 or -errno (ENOSPC where the memory or the limit is short).
 */
int store_fallocate(struct seg_store *st, struct store_file *f, int mode, off_t off,
		    off_t len);

/* futimens(2) on a held file. */
int store_utimens(struct seg_store *st, struct store_file *f, const struct timespec ts[2]);

/*
 * Says whether writes may reach a file without the store seeing them (a
 * FUSE passthrough data path).  With memfds such a file, which must be
 * held, has its growth settled (read back from the file) before every
 * reservation and when this is turned off.  In the tmpfs such a file may
 * be idle and lose its descriptor: store_stat then asks the file by name,
 * and turning this off takes its snapshot again.
 */
void store_set_unseen(struct seg_store *st, struct store_file *f, bool unseen);

/*
 * Whether an idle file's descriptor may be closed and the file opened
 * again by its name (the tmpfs), so that holding it spares a descriptor.
 */
bool store_reopens(const struct seg_store *st);

/* Pages held against the limit, and the limit in pages, as statfs says. */
void store_usage(struct seg_store *st, uint64_t *used, uint64_t *total);

/* Descriptors of files the store holds now (for tests and statistics). */
uint64_t store_nfds(struct seg_store *st);

#endif
