/*
 * The segfs namespace: segments, directories, the names that lead to them,
 * and the counts that decide when a segment's memory is given back.
 *
 * A segment is an inode that owns one backing file: an unnamed file in a
 * private tmpfs of the namespace's own, or a memfd where no such tmpfs can
 * be made (seg_ns_backing).  Names are directory entries, so one segment
 * may have several names (link) and keeps living after its last name is
 * gone for as long as anyone holds it.  An inode is freed, and its backing
 * file closed, when all three of these are zero:
 *
 *   nlink    names that lead to it;
 *   nlookup  references the kernel holds (FUSE lookup count: every reply
 *            that hands the kernel an inode adds one, FORGET removes some);
 *   nopen    open handles.
 *
 * Mappings need no count of their own: the kernel keeps a file open for as
 * long as it is mapped, and with FUSE passthrough the mapping holds the
 * backing file itself, so a segment's pages live until the last munmap even after
 * the daemon has closed its fd.
 *
 * Concurrency: every function takes the namespace's lock, so each call is
 * atomic with respect to the others.  The lock is not held across calls;
 * a caller keeps an inode alive between calls by holding a count on it
 * (a lookup reference or an open handle), exactly as the kernel does.
 *
 * Errors: every function that can fail returns 0 or a negative errno and,
 * on error, changes nothing and writes no out-parameter.
 */
#ifndef SEGFS_CORE_NS_H
#define SEGFS_CORE_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

struct seg_ns;
struct seg_inode;
struct seg_dirh;

struct seg_ns_config {
	uint64_t size_limit;       /* bytes segments may hold (0: half of RAM) */
	uint64_t nr_segments;      /* inodes, enforced at create (0: as tmpfs) */
	const char *lists_name;    /* name of the reserved directory ("lists") */
	mode_t root_mode;          /* permission bits of the root (0: 0755) */
	bool memfd;                /* back segments with memfds, not a tmpfs */
	/*
	 * Descriptors the namespace may hold for idle segments (0: as many
	 * as there are segments).  With the private tmpfs the least recently
	 * used idle segments beyond it are reached by name instead, so there
	 * may be many more segments than descriptors; memfds each need one.
	 */
	uint64_t fd_budget;
};

/*
 * Creates an empty namespace: the root and its reserved lists directory.
 * cfg->nr_segments 0 means as tmpfs's nr_inodes (half of RAM in pages),
 * and with memfds no more than fd_budget.
 */
int seg_ns_new(const struct seg_ns_config *cfg, struct seg_ns **out);

/*
 * What holds the segments' pages.  A private tmpfs (made with the new mount
 * API, attached nowhere, sized to the size limit) lets the kernel itself
 * refuse what we never see: a FUSE passthrough write() past the limit fails
 * with ENOSPC.  Making one needs CAP_SYS_ADMIN; without it (or with
 * cfg->memfd) segments are memfds, whose growth only we can bound.
 */
enum seg_backing {
	SEG_BACKING_TMPFS,
	SEG_BACKING_MEMFD,
};

/*
 * The namespace's backing.  For SEG_BACKING_MEMFD, *why (if not NULL) is 0
 * when memfds were asked for, else the -errno that refused the tmpfs.
 */
enum seg_backing seg_ns_backing(const struct seg_ns *ns, int *why);

/* Frees every inode and closes every backing file.  seg_ns_free(NULL) is a no-op. */
void seg_ns_free(struct seg_ns *ns);

/* The root directory (inode number 1); it is never freed before the ns. */
struct seg_inode *seg_ns_root(struct seg_ns *ns);

/* Number of live inodes, directories included: for tests and statistics. */
uint64_t seg_ns_inode_count(struct seg_ns *ns);

/*
 * The backing file of an open segment.  It never changes while the segment
 * is open, so a caller that holds an open handle may use it without the
 * lock; it is borrowed and must not be closed.
 */
int seg_inode_fd(const struct seg_inode *ino);

/* True for a segment: not a directory, nor an entry of lists/. */
bool seg_inode_is_segment(const struct seg_inode *ino);

/* True for the reserved lists directory. */
bool seg_inode_is_lists(const struct seg_inode *ino);

/*
 * Name operations.  `dir` must be a directory the caller holds a count on.
 * Every function that hands back an inode (lookup, create, mkdir, link)
 * adds one kernel reference (nlookup) to it and fills *st.
 */
int seg_lookup(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode **out, struct stat *st);

/* Flags of seg_create. */
#define SEG_CREATE_EXCL 0x1   /* fail with -EEXIST if the name exists */

/*
 * Creates a segment (an empty backing file) called `name` in `dir`, owned by
 * uid:gid with permission bits `mode & 07777`, on behalf of process `pid`
 * (0 if unknown), which seg_inspect reports.  Without SEG_CREATE_EXCL an
 * existing segment of that name is returned instead (an existing directory
 * gives -EISDIR), and *created says which happened.
 */
int seg_create(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       mode_t mode, uid_t uid, gid_t gid, pid_t pid, int flags,
	       struct seg_inode **out, struct stat *st, bool *created);

int seg_mkdir(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	      mode_t mode, uid_t uid, gid_t gid,
	      struct seg_inode **out, struct stat *st);

/* Adds the name `name` in `dir` for the segment `ino` (not a directory). */
int seg_link(struct seg_ns *ns, struct seg_inode *ino, struct seg_inode *dir,
	     const char *name, struct stat *st);

int seg_unlink(struct seg_ns *ns, struct seg_inode *dir, const char *name);
int seg_rmdir(struct seg_ns *ns, struct seg_inode *dir, const char *name);

/* Flags of seg_rename: the values of renameat2(2)'s. */
#define SEG_RENAME_NOREPLACE 0x1
#define SEG_RENAME_EXCHANGE  0x2

/*
 * Moves the entry `name` of `dir` to `newname` in `newdir`, replacing what
 * is there (atomically: no moment exists at which `newname` is missing),
 * with the rules of rename(2): a directory replaces only an empty directory,
 * a non-directory only a non-directory, and a directory never moves below
 * itself.
 */
int seg_rename(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode *newdir, const char *newname, unsigned flags);

/* Drops `n` kernel references; may free the inode. */
void seg_forget(struct seg_ns *ns, struct seg_inode *ino, uint64_t n);

int seg_getattr(struct seg_ns *ns, struct seg_inode *ino, struct stat *st);

/* What seg_setattr changes: a mask of these. */
#define SEG_SET_MODE      0x01
#define SEG_SET_UID       0x02
#define SEG_SET_GID       0x04
#define SEG_SET_SIZE      0x08
#define SEG_SET_ATIME     0x10
#define SEG_SET_MTIME     0x20
#define SEG_SET_ATIME_NOW 0x40
#define SEG_SET_MTIME_NOW 0x80
#define SEG_SET_CTIME     0x100

/*
 * Changes the attributes named by `mask`, taking the values from `attr`
 * (st_mode, st_uid, st_gid, st_size, st_atim, st_mtim, st_ctim).
 * Permission checks are the kernel's (default_permissions); this only
 * applies the change.  Fills *st with the result.
 */
int seg_setattr(struct seg_ns *ns, struct seg_inode *ino,
		const struct stat *attr, unsigned mask, struct stat *st);

/*
 * Open handles.  The data path of an open segment (the FUSE layer's
 * passthrough backing id) belongs to the inode, not to the handle: the
 * kernel allows one backing file per inode, shared by all its opens.  So
 * seg_open calls `attach(arg, fd)` under the lock when it opens the
 * first handle of an inode that has no data path yet; attach returns a
 * positive id, 0 for "none, use the fallback", or a negative errno that
 * fails the open.  *backing receives the inode's id (0 if none).
 * O_TRUNC in `flags` truncates the segment to 0 first.
 */
typedef int (*seg_attach_fn)(void *arg, int fd);

int seg_open(struct seg_ns *ns, struct seg_inode *ino, int flags,
	     seg_attach_fn attach, void *arg, int *backing);

/*
 * Closes one open handle.  When it was the inode's last, the data-path id
 * is detached and returned in *detach (else 0) for the caller to close;
 * the inode may be freed.  Never fails.
 */
void seg_release(struct seg_ns *ns, struct seg_inode *ino, int *detach);

/*
 * Directory streams.  A stream keeps its place with a cursor that lives in
 * the directory's entry list, so entries added or removed while it is open
 * never make it skip or repeat a surviving entry, and resuming costs O(1).
 * Offsets: 1 is ".", 2 is "..", entries follow in creation order.
 */
int seg_opendir(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out);
void seg_releasedir(struct seg_ns *ns, struct seg_dirh *dh);

/*
 * Called for each entry from offset `off` on: `next` is the offset to resume
 * after this entry.  `st` is complete when the caller asked for attributes
 * (plus), else only st_ino and st_mode are set.  `ino` is NULL for entries
 * of lists/, whose view inodes only a lookup makes: they come without
 * attributes or references even with plus.  Returns 0 to go on and
 * non-zero when the entry did not fit (it is then not consumed and, with
 * plus, gets no kernel reference).
 */
typedef int (*seg_fill_fn)(void *arg, const char *name, struct seg_inode *ino,
			   const struct stat *st, uint64_t next);

/*
 * Lists entries from offset `off`.  With `plus`, every entry passed to fill
 * other than "." and ".." gets one kernel reference if fill accepts it.
 */
int seg_readdir(struct seg_ns *ns, struct seg_dirh *dh, uint64_t off, bool plus,
		seg_fill_fn fill, void *arg);

/*
 * Reserves (and allocates) a segment's pages up to byte `end`, without
 * changing its size, for a write or fallocate that may extend it: -ENOSPC
 * when the size limit or memory does not allow.
 */
int seg_reserve(struct seg_ns *ns, struct seg_inode *ino, uint64_t end);

/* Capacity and use, as statfs(2) reports them. */
int seg_statfs(struct seg_ns *ns, struct statvfs *sv);

/*
 * Inspection: what the FUSE layer shows as extended attributes.
 *
 * seg_inspect describes one inode.  Only a segment has anything to show;
 * for a directory or a lists/ view `segment` is false and the rest zero.
 */
struct seg_info {
	bool segment;
	pid_t pid;                 /* of the process that created it; 0: unknown */
	struct timespec btime;     /* when it was created (CLOCK_REALTIME) */
	uint32_t nopen;            /* open handles */
	bool attached;             /* has a data-path id (open, with passthrough) */
};

int seg_inspect(struct seg_ns *ns, struct seg_inode *ino, struct seg_info *info);

/*
 * The whole namespace at once.  This walks every inode and reads each
 * segment's size from its backing file, under the lock: O(segments), for
 * inspection, not for a fast path.
 */
struct seg_ns_stats {
	uint64_t segments;         /* live segments, named or only held */
	uint64_t unlinked;         /* of those, the ones no name leads to */
	uint64_t open;             /* of those, the ones with open handles */
	uint64_t bytes;            /* the sum of their sizes */
	uint64_t reserved;         /* bytes they hold against size_limit */
	uint64_t size_limit;
	uint64_t inodes;           /* live inodes, directories and views too */
	uint64_t inode_limit;      /* what nr_segments limits: inodes */
};

int seg_ns_stats(struct seg_ns *ns, struct seg_ns_stats *out);

#endif
