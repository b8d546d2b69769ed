/*
 * Internals of the namespace shared by core/ns.c and core/lists.c (the
 * lists/ view).  Nothing outside core/ includes this.  Every function here
 * expects ns->lock to be held.
 */
#ifndef SEGFS_CORE_NS_I_H
#define SEGFS_CORE_NS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/ns.h"

/* tmpfs reports directory sizes as 20 bytes per entry (BOGO_DIRENT_SIZE). */
#define BOGO_DIRENT_SIZE 20

/* The first readdir offset that names an entry: 1 is ".", 2 is "..". */
#define FIRST_COOKIE 3

/* A node of a directory's entry list: an entry, or a stream's cursor. */
struct seg_node {
	struct seg_node *prev, *next;
	struct seg_dentry *entry;      /* NULL for a cursor */
};

struct seg_dentry {
	struct seg_node node;          /* on parent->entries */
	struct seg_dentry *hnext;      /* hash chain */
	struct seg_inode *parent;
	struct seg_inode *inode;
	uint64_t cookie;               /* readdir offset that follows it */
	uint64_t hash;
	size_t len;
	char name[];
};

struct seg_inode {
	struct seg_inode *prev, *next; /* ns->inodes */
	uint64_t ino;
	uint64_t nlookup;              /* kernel references */
	uint32_t nlink;                /* names; 2 + subdirectories for a dir */
	uint32_t nopen;                /* open handles and directory streams */
	mode_t mode;                   /* type and permission bits */
	uid_t uid;
	gid_t gid;
	pid_t pid;                     /* of a segment's creator; 0: unknown */
	/*
	 * A segment's backing file, or -1: for a directory or a view, and for
	 * an idle segment whose descriptor was closed to stay within the
	 * descriptor budget (then `named`).  seg__fd opens it again.
	 */
	int fd;
	int backing;                   /* data-path id of the FUSE layer */
	bool lists;                    /* the reserved lists directory */
	bool view;                     /* an entry of lists/ (core/lists.c) */
	bool named;                    /* linked in the private tmpfs by its number */
	uint32_t used;                 /* ns->epoch when seg__fd last gave out fd */
	/*
	 * While a segment has no descriptor, what fstat said of its backing
	 * file when the descriptor was closed.  Nothing can change the file
	 * meanwhile: it is closed everywhere (a mapping keeps a handle open),
	 * and we open it again before we change it.  So stat, readdirplus and
	 * ls -l of such segments cost no syscall.
	 */
	struct {
		off_t size;
		blkcnt_t blocks;
		struct timespec atime, mtime, ctime;
	} snap;
	/*
	 * Bytes of ns->size_limit this segment holds: its size rounded up to
	 * pages, taken (fallocate) when it grew, or more if a passthrough
	 * write() grew it unseen (settled while it is open and at its last
	 * release).
	 */
	uint64_t reserved;
	/* On ns->open while open; on ns->idle while closed with fd >= 0. */
	struct seg_inode *onext, *oprev;
	struct seg_dentry *vdentry;    /* a view's name in lists/ */
	/*
	 * A segment's atime and mtime are its backing file's own, which FUSE
	 * passthrough writes keep current without us; ctime is the later of
	 * the backing file's and this one, which records name and owner changes.
	 * Directories keep all three here.
	 */
	struct timespec atime, mtime, ctime;
	struct timespec btime;         /* creation; never changes */
	/* Directories only. */
	struct seg_node entries;       /* list head, creation order */
	struct seg_inode *parent;      /* ".." */
	uint64_t next_cookie;
	uint64_t nentries;
};

struct seg_dirh {
	struct seg_inode *dir;
	struct seg_node cursor;        /* on dir->entries while linked */
	bool linked;
	uint64_t pos;                  /* offset the cursor stands for */
};

struct seg_ns {
	pthread_mutex_t lock;
	/* Everything below is protected by lock. */
	struct seg_inode *root;
	struct seg_inode *lists;
	struct seg_inode inodes;       /* list head of all live inodes */
	uint64_t ninodes;
	uint64_t next_ino;
	struct seg_dentry **buckets;
	size_t nbuckets;               /* a power of two */
	size_t nentries;
	uint64_t seed;
	uint64_t size_limit;
	uint64_t inode_limit;
	/*
	 * The private tmpfs (its root, as fsmount(2) gave it) that backing
	 * files are made in, or -1 for memfds; then store_err is why (0: asked
	 * for).  With the tmpfs the kernel counts the pages against the limit
	 * itself, passthrough writes included, and its count is exact.
	 */
	int store;
	int store_err;
	uint64_t reserved;             /* sum of the segments' reservations */
	struct seg_inode open;         /* list head: segments with nopen > 0 */
	/*
	 * List head: closed segments that hold a descriptor, least recently
	 * used first.  Beyond fd_budget descriptors (0: no budget) the first
	 * of them is named in the private tmpfs and its descriptor closed, so
	 * the number of segments is not bounded by the file limit.  Only the
	 * tmpfs allows that: a memfd has no name to be opened by again.
	 */
	struct seg_inode idle;
	uint64_t nfds;                 /* segments' descriptors held */
	uint64_t fd_budget;
	/*
	 * Counts seg__unlock calls, so that a descriptor handed out while the
	 * lock is held is never closed before it is dropped.
	 */
	uint32_t epoch;
	/*
	 * Inodes freed under the lock, chained through ->next: seg__unlock
	 * closes their backing files and frees them once the lock is
	 * dropped.  Closing the last reference to a backing file frees its
	 * pages, which takes long enough that doing it under the lock made
	 * the next request wait for it.
	 */
	struct seg_inode *dead;
	/*
	 * lists.h's sync hook.  Atomic, not under lock: it is set from the
	 * FUSE layer's attach callback, which seg_open calls with lock held.
	 */
	void (*_Atomic sync)(void *arg, const struct seg_inode *seg);
	void *_Atomic sync_arg;
};

/* Drops ns->lock, then releases the inodes that died while it was held. */
void seg__unlock(struct seg_ns *ns);

void seg__now(struct timespec *ts);
bool seg__is_dir(const struct seg_inode *ino);
struct seg_dentry *seg__d_find(const struct seg_ns *ns, const struct seg_inode *dir,
			       const char *name, size_t len);
struct seg_dentry *seg__d_alloc(const char *name, size_t len);
void seg__d_add(struct seg_ns *ns, struct seg_inode *dir, struct seg_dentry *d,
		struct seg_inode *ino);
void seg__d_remove(struct seg_ns *ns, struct seg_dentry *d);
void seg__dir_touch(struct seg_inode *dir);
struct seg_inode *seg__inode_alloc(struct seg_ns *ns, mode_t mode, uid_t uid, gid_t gid);
void seg__inode_link(struct seg_ns *ns, struct seg_inode *ino);
void seg__maybe_free(struct seg_ns *ns, struct seg_inode *ino);
void seg__fill_stat(const struct seg_inode *ino, struct stat *st);

/*
 * The backing file of segment `ino`, opened again if its descriptor was
 * closed: >= 0, or -errno.  It stays valid until the lock is dropped (no
 * descriptor handed out since the lock was taken is closed before), and
 * for as long as the segment is open.
 */
int seg__fd(struct seg_ns *ns, struct seg_inode *ino);

/*
 * A new descriptor (the caller's to close) of a segment whose own was
 * closed, opened with `flags`: >= 0, or -errno.
 */
int seg__open_named(const struct seg_ns *ns, const struct seg_inode *ino, int flags);
int seg__check_dir_name(const struct seg_inode *dir, const char *name, size_t *len);

/*
 * A new, empty segment with no name yet (nlink, nlookup and nopen 0): its
 * backing file (a memfd is named `name` for /proc) and inode.  The caller names it.
 */
int seg__new_segment(struct seg_ns *ns, const char *name, mode_t mode,
		     uid_t uid, gid_t gid, pid_t pid, struct seg_inode **out);
/*
 * Sets a segment's size.  Growing reserves the new pages against the size
 * limit and allocates them now, so that running out of memory is ENOSPC
 * here rather than SIGBUS later in whoever touches them; shrinking gives
 * pages back.  On error nothing changed.
 */
int seg__resize(struct seg_ns *ns, struct seg_inode *ino, off_t size);

int seg__setattr_locked(struct seg_ns *ns, struct seg_inode *ino,
			const struct stat *attr, unsigned mask, struct stat *st);
int seg__unlink_locked(struct seg_ns *ns, struct seg_inode *dir, const char *name);
int seg__rename_locked(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		       struct seg_inode *newdir, const char *newname, unsigned flags);

/*
 * core/lists.c: the lists/ directory.  ns.c hands over every operation
 * whose directory is lists/ or whose inode is a view.
 */
int seg__lists_lookup(struct seg_ns *ns, const char *name, size_t len,
		      struct seg_inode **out, struct stat *st);
int seg__lists_create(struct seg_ns *ns, const char *name, size_t len,
		      mode_t mode, uid_t uid, gid_t gid, pid_t pid, int flags,
		      struct seg_inode **out, struct stat *st, bool *created);
int seg__lists_unlink(struct seg_ns *ns, const char *name);
int seg__lists_rename(struct seg_ns *ns, const char *name, const char *newname,
		      unsigned flags);
bool seg__lists_shows(struct seg_ns *ns, struct seg_inode *seg);
void seg__lists_ino(const struct seg_inode *seg, struct stat *st);
int seg__view_getattr(struct seg_ns *ns, struct seg_inode *view, struct stat *st);
int seg__view_setattr(struct seg_ns *ns, struct seg_inode *view,
		      const struct stat *attr, unsigned mask, struct stat *st);

#endif
