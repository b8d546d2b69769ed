/*
 * The segfs namespace: inodes, the names that lead to them, and the counts
 * that decide when an inode is freed.
 *
 * Kinds of inode: directories; segments, regular files that each own one
 * backing file of the store (core/store.h); and the nodes that hold no
 * data, as on tmpfs: symlinks, fifos, sockets, character and block
 * devices (and whiteouts, character devices 0/0).  The namespace
 * knows nothing of views such as lists/ (core/lists.h): they are a layer
 * above that uses these functions and hears of changes through one hook
 * (seg_ns_set_hook).
 *
 * Names are directory entries (core/dcache.h), so one segment may have
 * several names (link) and keeps living after its last name is gone for as
 * long as anyone holds it.  An inode is freed, and its backing file
 * released, when all three of these are zero:
 *
 *   nlink    names that lead to it;
 *   nlookup  references: the kernel's (FUSE lookup count: every reply that
 *            hands the kernel an inode adds one, FORGET removes some), and
 *            those a layer above takes (seg_lookup) while it works;
 *   nopen    open handles.
 *
 * Mappings need no count of their own: the kernel keeps a file open for as
 * long as it is mapped, and with FUSE passthrough the mapping holds the
 * backing file itself, so a segment's pages live until the last munmap
 * even after the daemon has let the file go.
 *
 * Concurrency.  Three locks, always taken in this order:
 *
 *   1. a segment's own lock: it serializes what changes the segment's size
 *      or data path (truncate, reserve, the first open's attach), which
 *      may take long: growing by 2 GiB allocates 2 GiB;
 *   2. the namespace lock: the tree and the counts, nothing slower.  No
 *      allocation or freeing, no backing-file syscall but a stat, no
 *      callback but the hook happens under it;
 *   3. the store's lock (core/store.h).
 *
 * Every function takes what it needs; none is held across calls.  A caller
 * keeps an inode alive between calls by holding a count on it (a reference
 * or an open handle), exactly as the kernel does: while a request is being
 * served, the kernel holds the inode it names.
 *
 * Errors: every function that can fail returns 0 or a negative errno and,
 * on error, changes nothing and writes no out-parameter.
 */
#ifndef SEGFS_CORE_NS_H
#define SEGFS_CORE_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "core/store.h"

struct seg_ns;
struct seg_inode;
struct seg_dirh;

struct seg_ns_config {
	uint64_t size_limit;       /* bytes segments may hold (0: half of RAM) */
	uint64_t nr_segments;      /* inodes, enforced at create (0: as tmpfs) */
	mode_t root_mode;          /* permission bits of the root (0: 0755) */
	/* Owner and group of a new root (tmpfs's uid= and gid=), where set. */
	bool root_uid_set, root_gid_set;
	uid_t root_uid;
	gid_t root_gid;
	bool memfd;                /* back segments with memfds, not a tmpfs */
	/*
	 * Descriptors the store may hold (0: as many as there are segments).
	 * With the private tmpfs the least recently used idle segments beyond
	 * it are reached by name instead, so there may be many more segments
	 * than descriptors; memfds each need one.
	 */
	uint64_t fd_budget;
	/*
	 * Huge pages in the private tmpfs: its huge= ("never", "always",
	 * "within_size", "advise"; else seg_ns_new is -EINVAL).  NULL: the
	 * kernel's default, never.  Nothing with memfds.
	 */
	const char *huge;
	/*
	 * What outlives the server (see "Restarts" below).  `tmpfs`: the
	 * private tmpfs of the segments' files to use (the namespace closes
	 * it), made by the caller or left by a previous server; 0 or -1: the
	 * namespace makes one (or uses memfds).  `state`: the root of a
	 * second private tmpfs, the caller's, for the tree of names
	 * (core/tree.h); 0 or -1: none, and nothing is kept.  `rg`: the
	 * records (core/region.h), the caller's; NULL: the namespace's own,
	 * in memory that does not outlive it.  `pins`: what holds the
	 * segments' files for a next server (core/store.h); NULL: none.
	 */
	int tmpfs;
	int state;
	struct rg *rg;
	const struct store_pins *pins;
};

/* Who asks: the caller of a request, as the kernel reports it. */
struct seg_cred {
	uid_t uid;
	gid_t gid;
	pid_t pid;                 /* 0 if unknown */
	/*
	 * The umask a new inode's mode is still to be masked with, where its
	 * directory has no default ACL (0: the kernel applied it already).
	 */
	mode_t umask;
};

/*
 * Creates an empty namespace: the root directory.  cfg->nr_segments 0
 * means as tmpfs's nr_inodes (half of RAM in pages), and with memfds no
 * more than fd_budget.
 */
int seg_ns_new(const struct seg_ns_config *cfg, struct seg_ns **out);

/*
 * Restarts.  With a state tmpfs, the namespace keeps its names in the
 * tmpfs's tree (core/tree.h), its counts and attributes in the records of
 * the region (core/region.h), and its segments' files with the pin
 * holder: every change is made there first.  seg_ns_rebuild makes the
 * namespace a server that died (or stopped for another) left, from
 * cfg->tmpfs, cfg->state, cfg->rg and cfg->pins: every name, node, link,
 * attribute, count and open inode, with the same numbers.
 * What the dead server had half made is finished or undone: a name
 * appears complete or not at all, and an inode nothing holds any more
 * (no name, no open handle) is freed, whatever references the kernel
 * was said to hold: a FORGET the dead server read and never applied
 * is not sent again.  -EINVAL without the tmpfs, the state and records.
 */
int seg_ns_rebuild(const struct seg_ns_config *cfg, struct seg_ns **out);

/* The private tmpfs's root (-1 with memfds), to keep across restarts. */
int seg_ns_tmpfs(const struct seg_ns *ns);

/* The records the namespace keeps its counts in. */
struct rg *seg_ns_region(const struct seg_ns *ns);

/*
 * The live inode numbered `number` (seg_inode_number), or NULL.  Numbers
 * are never reused: a number the kernel holds names the same inode for
 * as long as it lives, across restarts.
 */
struct seg_inode *seg_ns_find(struct seg_ns *ns, uint64_t number);

/*
 * Frees the namespace's memory.  What outlives the server is left as it
 * is (the pinned files, the tree, the records) for a next server, or goes
 * once their holders let go.  NULL: no-op.
 */
void seg_ns_free(struct seg_ns *ns);

/* The backing of the store; see store_backing. */
enum seg_backing seg_ns_backing(const struct seg_ns *ns, int *why);

/* The private tmpfs's huge=, NULL with memfds; see store_huge. */
const char *seg_ns_huge(const struct seg_ns *ns, int *why);

/* The root directory (st_ino 1); it is never freed before the ns. */
struct seg_inode *seg_ns_root(struct seg_ns *ns);

/* Number of live inodes, directories included: for tests and statistics. */
uint64_t seg_ns_inode_count(struct seg_ns *ns);

/*
 * What never changes about an inode, readable without the lock: its type
 * (the S_IFMT bits) and its number.
 */
mode_t seg_inode_type(const struct seg_inode *ino);
uint64_t seg_inode_number(const struct seg_inode *ino);
/* Its record in the region (core/region.h), and its data-path id (0: none). */
uint64_t seg_inode_record(const struct seg_inode *ino);
int seg_inode_backing(struct seg_ns *ns, const struct seg_inode *ino);
bool seg_inode_is_dir(const struct seg_inode *ino);
bool seg_inode_is_segment(const struct seg_inode *ino);

/* A symlink's target (NULL for other kinds); it never changes. */
const char *seg_inode_target(const struct seg_inode *ino);

/* When the inode was made (CLOCK_REALTIME): statx's birth time. */
struct timespec seg_inode_btime(const struct seg_inode *ino);

/*
 * The backing file of a segment open on the cached fallback (seg_open
 * gave no data-path id).  It never changes while the segment is so open,
 * so a caller that holds such a handle may use it without the lock; it is
 * borrowed and must not be closed.  With passthrough an open segment
 * holds no descriptor (ns_open.c): -1 or one that may go at any moment.
 */
int seg_inode_fd(const struct seg_inode *ino);

/*
 * A pointer the layer above keeps with an inode (as the kernel's
 * i_private); the namespace never reads it.  Set it before the inode is
 * shared between threads (or publish it some other way).
 */
void seg_inode_set_private(struct seg_inode *ino, const void *priv);
const void *seg_inode_private(const struct seg_inode *ino);

/*
 * Fixes an inode's name for good, as a mount point's: the namespace then
 * refuses, with -EPERM, to remove or move it and to rename anything over
 * it.  For a directory a layer above serves (lists/).
 */
void seg_inode_fix(struct seg_ns *ns, struct seg_inode *ino);

/*
 * Name operations.  `dir` must be a directory the caller holds a count on.
 * Every function that hands back an inode (lookup, create, mkdir, link,
 * tmpfile) adds one reference (nlookup) to it and fills *st.
 */
/*
 * An inode by number, with a reference, as a lookup gives one; or with
 * `parent`, the parent of the directory of that number.  For file handles:
 * the number comes from outside, so it is looked up, and referenced, under
 * the lock that frees inodes.  -ENOENT for none (a freed inode, or a number
 * never given), -ENOTDIR for the parent of what is no directory.
 */
int seg_lookup_number(struct seg_ns *ns, uint64_t number, bool parent,
		      struct seg_inode **out, struct stat *st);

int seg_lookup(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode **out, struct stat *st);

/* Flags of seg_create. */
#define SEG_CREATE_EXCL 0x1   /* fail with -EEXIST if the name exists */

/*
 * Creates a segment (an empty backing file) called `name` in `dir`, owned by
 * who->uid:who->gid with permission bits `mode & 07777`, on behalf of
 * process who->pid, which seg_inspect reports.  Without SEG_CREATE_EXCL an
 * existing segment of that name is returned instead (an existing directory
 * gives -EISDIR), and *created says which happened.
 */
int seg_create(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       mode_t mode, const struct seg_cred *who, int flags,
	       struct seg_inode **out, struct stat *st, bool *created);

/*
 * A segment with no name (nlink 0), as open(O_TMPFILE) makes: it has one
 * reference, and goes when that is forgotten unless seg_link or
 * seg_replace names it first.  `dir` is where it is made.
 */
int seg_tmpfile(struct seg_ns *ns, struct seg_inode *dir, mode_t mode,
		const struct seg_cred *who, struct seg_inode **out, struct stat *st);

int seg_mkdir(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	      mode_t mode, const struct seg_cred *who,
	      struct seg_inode **out, struct stat *st);

/*
 * A node that holds no data, as mknod(2) makes one: a fifo or a socket
 * (`rdev` ignored), or a character or block device `rdev` (whether it can
 * be opened is the mount's business: nodev).  It takes an inode slot and
 * no memory from the size limit; -EINVAL for other types (a regular file
 * is seg_create's, a directory seg_mkdir's).
 */
int seg_mknod(struct seg_ns *ns, struct seg_inode *dir, const char *name, mode_t mode,
	      dev_t rdev, const struct seg_cred *who, struct seg_inode **out, struct stat *st);

/* The longest symlink target, its NUL included, as tmpfs: a page. */
#define SEG_TARGET_MAX 4096

/*
 * A symbolic link to `target`, a non-empty string shorter than
 * SEG_TARGET_MAX (-ENAMETOOLONG); its mode is 0777, its size the target's.
 */
int seg_symlink(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		const char *target, const struct seg_cred *who,
		struct seg_inode **out, struct stat *st);

/*
 * Adds the name `name` in `dir` for the segment `ino` (not a directory).
 * A segment whose last name is gone cannot be named again (-ENOENT), as
 * on tmpfs, unless seg_tmpfile made it.
 */
int seg_link(struct seg_ns *ns, struct seg_inode *ino, struct seg_inode *dir,
	     const char *name, struct stat *st);

int seg_unlink(struct seg_ns *ns, struct seg_inode *dir, const char *name);
int seg_rmdir(struct seg_ns *ns, struct seg_inode *dir, const char *name);

/* Flags of seg_rename: the values of renameat2(2)'s. */
#define SEG_RENAME_NOREPLACE 0x1
#define SEG_RENAME_EXCHANGE  0x2
#define SEG_RENAME_WHITEOUT  0x4

/* A whiteout, as overlayfs and tmpfs make it: a character device 0/0. */
#define SEG_WHITEOUT_MODE 0
#define SEG_WHITEOUT_DEV  0

/*
 * Moves the entry `name` of `dir` to `newname` in `newdir`, replacing what
 * is there (atomically: no moment exists at which `newname` is missing),
 * with the rules of rename(2): a directory replaces only an empty directory,
 * a non-directory only a non-directory, and a directory never moves below
 * itself.  SEG_RENAME_WHITEOUT leaves a whiteout owned by `who` at the old
 * name (an inode: -ENOSPC beyond the limit); with SEG_RENAME_EXCHANGE no
 * other flag goes (-EINVAL).
 */
int seg_rename(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode *newdir, const char *newname, unsigned flags,
	       const struct seg_cred *who);

/*
 * Makes `name` in `dir` lead to the unnamed segment `ino` (from
 * seg_tmpfile), atomically, as rename() over it would: provided the name
 * leads to `expect` now, or to nothing when `expect` is NULL; else
 * -EAGAIN and nothing changes.  For a layer above that rebuilds a segment
 * outside the lock and must not overwrite what changed meanwhile.
 */
int seg_replace(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		struct seg_inode *expect, struct seg_inode *ino);

/* Drops `n` references; may free the inode. */
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
 * What a write, truncate or chown by one without CAP_FSETID takes away
 * (the kernel's setattr_should_drop_suidgid, left to us by
 * FUSE_HANDLE_KILLPRIV_V2): setuid, setgid where the group may execute,
 * and file capabilities (security.capability); with SEG_SET_KILL_SGID
 * setgid in any case (the caller is not in the file's group).
 */
#define SEG_SET_KILL_SUIDGID 0x200
#define SEG_SET_KILL_SGID    0x400
/* The change comes through an open handle (ftruncate): flags allow more. */
#define SEG_SET_FH           0x800
/* Nothing but a change: ctime becomes now, as chown(f, -1, -1) makes it. */
#define SEG_SET_TOUCH        0x1000

/*
 * Changes the attributes named by `mask`, taking the values from `attr`
 * (st_mode, st_uid, st_gid, st_size, st_atim, st_mtim, st_ctim): the size
 * first (nothing else changes if that fails), then the times, then the
 * rest.  Permission checks are the kernel's (default_permissions); this
 * only applies the change.  Fills *st with the result.
 */
int seg_setattr(struct seg_ns *ns, struct seg_inode *ino,
		const struct stat *attr, unsigned mask, struct stat *st);

/*
 * Creator and birth of an unnamed segment (from seg_tmpfile): for a layer
 * above that rebuilds a segment in another's stead, so that it is still
 * the same one to its users.
 */
void seg_set_origin(struct seg_ns *ns, struct seg_inode *ino, pid_t pid,
		    const struct timespec *btime);

/*
 * The data path: the FUSE layer's passthrough backing id of a segment.
 * It belongs to the inode, not to a handle (the kernel allows one backing
 * file per inode, shared by all its opens), from its first open to its
 * last release.  It is not kept longer: the connection holds the backing
 * file for as long as the id is registered, and a killed daemon's
 * connection lives on while any client still maps a segment, so idle
 * segments with ids would outlive the daemon.
 *
 * `attach(arg, fd, privs)` is called at the first open of a segment, under
 * the segment's lock only; `privs` says whether it has what a write may
 * have to take away (setuid, setgid, security.capability).  It returns a
 * positive id, 0 for "none: the cached fallback, until the last release",
 * or a negative errno that fails the open.  `detach(arg, id)`
 * is called with no lock held after the last release, when no open can
 * be using the id any more.  Set them before the namespace is shared;
 * without them segments have no id.
 */
typedef int (*seg_attach_fn)(void *arg, int fd, bool privs);
typedef void (*seg_detach_fn)(void *arg, int id);

void seg_ns_set_data_path(struct seg_ns *ns, seg_attach_fn attach, seg_detach_fn detach,
			  void *arg);

/*
 * Opens a handle: *backing receives the segment's data-path id (0 if
 * none).  O_TRUNC in `flags` truncates the segment to 0 first.
 */
int seg_open(struct seg_ns *ns, struct seg_inode *ino, int flags, int *backing);

/* Closes one open handle; the inode may be freed.  Never fails. */
void seg_release(struct seg_ns *ns, struct seg_inode *ino);

/*
 * Reads or writes a segment's bytes for a layer above, outside every lock
 * but the segment's own (the caller holds a count on it).  seg_pread reads
 * up to `len` bytes at `off` and says how many in *got (fewer at the end).
 * seg_pwrite writes all `len` bytes and never extends the segment: a range
 * that does not lie within its size is -ENXIO and writes nothing.
 */
int seg_pread(struct seg_ns *ns, struct seg_inode *ino, void *buf, size_t len,
	      off_t off, size_t *got);
int seg_pwrite(struct seg_ns *ns, struct seg_inode *ino, const void *buf, size_t len,
	       off_t off);

/*
 * Directory streams.  A stream keeps its place with a cursor, so entries
 * added or removed while it is open never make it skip or repeat a
 * surviving entry, and resuming costs O(1).  Offsets: 1 is ".", 2 is "..",
 * entries follow in creation order.  As on tmpfs, a stream lists only
 * the entries made before it was opened (or rewound, to offset 0): a name
 * made or renamed while it is open comes after that end, so it is never
 * listed twice; it may be missed, as POSIX allows.
 */
int seg_opendir(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out);
void seg_releasedir(struct seg_ns *ns, struct seg_dirh *dh);

/*
 * A stream a previous server opened, whose count the directory's record
 * holds already: seg_opendir_adopt counts nothing, and
 * seg_releasedir_adopted gives the count back only if `counted`.
 */
int seg_opendir_adopt(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out);
void seg_releasedir_adopted(struct seg_ns *ns, struct seg_dirh *dh, bool counted);

/*
 * The offset that follows entry `name` of `dir` (seg_readdir's `next`),
 * for a stream to go on after it: -ENOENT if there is none.
 */
int seg_dir_cookie(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		   uint64_t *cookie);

/*
 * Called, under the namespace lock, for each entry from offset `off` on:
 * `next` is the offset to resume after this entry.  `st` is complete when
 * the caller asked for attributes (plus), else only st_ino and st_mode are
 * set.  Returns 0 to go on and non-zero to stop before this entry (it is
 * then not consumed and, with plus, gets no reference).  It must not call
 * into the namespace.
 */
typedef int (*seg_fill_fn)(void *arg, const char *name, struct seg_inode *ino,
			   const struct stat *st, uint64_t next);

/*
 * Lists entries from offset `off`.  With `plus`, every entry passed to fill
 * other than "." and ".." gets one reference if fill accepts it.
 */
int seg_readdir(struct seg_ns *ns, struct seg_dirh *dh, uint64_t off, bool plus,
		seg_fill_fn fill, void *arg);

/*
 * Reserves (and allocates) an open segment's pages up to byte `end`,
 * without changing its size, for a write that may extend it: -ENOSPC
 * when the size limit or memory does not allow.
 */
int seg_reserve(struct seg_ns *ns, struct seg_inode *ino, uint64_t end);

/*
 * What the inode flags let fallocate(2) do, as vfs_fallocate checks them
 * even through a descriptor opened before: nothing to an immutable inode,
 * only plain allocation (`allocate_only`: no hole punched, no range
 * zeroed, collapsed or inserted) to an append-only one; else -EPERM.
 */
int seg_may_fallocate(struct seg_ns *ns, struct seg_inode *ino, bool allocate_only);

/*
 * fallocate(2) of an open segment, `mode` as the call's: the inode flags'
 * rules (seg_may_fallocate), then the allocation, reserved against the
 * size limit first and made once, so that what it leaves reads as
 * tmpfs's fallocate leaves it (SEEK_HOLE: allocated, never written pages
 * are a hole).  -EINVAL for what is not a segment.
 */
int seg_fallocate(struct seg_ns *ns, struct seg_inode *ino, int mode, off_t off, off_t len);

/*
 * copy_file_range(2) from one open segment to another, between their
 * backing files: up to `len` bytes from `off_in` (fewer at the source's
 * end), to `off_out`, whose pages are reserved first as a write's are
 * (-ENOSPC, nothing copied).  -EPERM when the destination is immutable:
 * the kernel checks that itself for a filesystem whose inode flags it
 * knows, and FUSE does not tell it ours.  *copied is what was copied.
 */
int seg_copy_range(struct seg_ns *ns, struct seg_inode *in, off_t off_in,
		   struct seg_inode *out, off_t off_out, size_t len, size_t *copied);

/* lseek(2) of a segment's backing file, for SEEK_DATA and SEEK_HOLE. */
int seg_lseek(struct seg_ns *ns, struct seg_inode *ino, off_t off, int whence, off_t *out);

/*
 * Extended attributes, any name (which namespaces exist and who may use
 * them is the caller's business), as tmpfs keeps them: in the order first
 * set, sharing the inode space with the inodes (-ENOSPC when it is full).
 * Sizes and flags as getxattr(2) and friends: size 0 asks for the length,
 * too small a size is -ERANGE, a missing name -ENODATA; XA_CREATE and
 * XA_REPLACE (core/xattr.h) are -EEXIST and -ENODATA.  Setting or removing
 * one changes ctime.  seg_listxattr leaves out the names `show` refuses
 * (called under the lock; NULL shows all).
 */
int seg_getxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name, void *buf,
		 size_t size, size_t *len);
int seg_setxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		 const void *value, size_t size, int flags);
int seg_removexattr(struct seg_ns *ns, struct seg_inode *ino, const char *name);
int seg_listxattr(struct seg_ns *ns, struct seg_inode *ino, char *buf, size_t size,
		  size_t *len, bool (*show)(const char *name, void *arg), void *arg);

/*
 * POSIX ACLs (core/acl.h): sets (value not NULL) or removes the access ACL
 * or, for a directory, the default ACL (`deflt`), as tmpfs does with the
 * mode: an access ACL sets the permission bits it implies, and is not kept
 * when those bits say all it says; with `kill_sgid` (the setter is neither
 * in the file's group nor CAP_FSETID) the setgid bit goes.  A malformed
 * ACL is -EINVAL; a default ACL on a non-directory -EACCES.  chmod keeps
 * the access ACL in step, and new inodes inherit default ACLs (the umask
 * in `who` applies only where there is none).
 */
int seg_set_acl(struct seg_ns *ns, struct seg_inode *ino, bool deflt, const void *value,
		size_t size, bool kill_sgid);

/*
 * Inode flags, as chattr(1) sets them: the values of <linux/fs.h>'s
 * FS_*_FL, the four tmpfs keeps.  An immutable inode cannot be opened for
 * writing, truncated by name, changed in mode, owner, times or extended
 * attributes, linked, removed or renamed; nor can entries be added to or
 * removed from an immutable directory.  An append-only inode can be opened
 * for writing only with O_APPEND and never truncated, and is otherwise as
 * immutable but for times set to now; an append-only directory takes new
 * entries but loses none.  As on tmpfs, descriptors already open, and
 * mappings, are not affected.  Who may set them is the kernel's to check.
 */
#define SEG_FL_IMMUTABLE 0x10
#define SEG_FL_APPEND    0x20
#define SEG_FL_NODUMP    0x40
#define SEG_FL_NOATIME   0x80
#define SEG_FL_ALL (SEG_FL_IMMUTABLE | SEG_FL_APPEND | SEG_FL_NODUMP | SEG_FL_NOATIME)

/* The flags; setting others than SEG_FL_ALL is -EOPNOTSUPP.  Sets ctime. */
int seg_get_flags(struct seg_ns *ns, struct seg_inode *ino, unsigned *flags);
int seg_set_flags(struct seg_ns *ns, struct seg_inode *ino, unsigned flags);

/* Capacity and use, as statfs(2) reports them. */
int seg_statfs(struct seg_ns *ns, struct statvfs *sv);

/*
 * The hook: what a layer above hears of the namespace's changes.  Called
 * under the namespace lock, right after the change, so it must be quick,
 * must not allocate or free, and must not call into the namespace.  Bytes
 * that change through a passthrough write or a mapping change unseen: a
 * layer that keeps what a segment holds must still check it.
 */
enum seg_change_kind {
	SEG_CHANGE_NAME,    /* an entry was added, removed or repointed */
	SEG_CHANGE_SIZE,    /* the namespace changed a segment's size */
};

struct seg_change {
	enum seg_change_kind kind;
	const struct seg_inode *dir;    /* NAME: the directory */
	const char *name;               /* NAME: the entry's name */
	size_t len;
	/* NAME: what the entry leads to now (NULL: gone); SIZE: the segment. */
	const struct seg_inode *ino;
};

typedef void (*seg_hook_fn)(void *arg, const struct seg_change *c);

/* Sets the one hook (NULL: none).  Call it before the namespace is shared. */
void seg_ns_set_hook(struct seg_ns *ns, seg_hook_fn fn, void *arg);

/*
 * Inspection: what the FUSE layer shows as extended attributes.
 *
 * seg_inspect describes one inode.  Only a segment has anything to show;
 * for a directory `segment` is false and the rest zero.
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
 * segment's size, under the lock: O(segments), for inspection, not for a
 * fast path.
 */
struct seg_ns_stats {
	uint64_t segments;         /* live segments, named or only held */
	uint64_t unlinked;         /* of those, the ones no name leads to */
	uint64_t open;             /* of those, the ones with open handles */
	uint64_t bytes;            /* the sum of their sizes */
	uint64_t reserved;         /* bytes they hold against size_limit */
	uint64_t size_limit;
	uint64_t inodes;           /* live inodes, directories too */
	uint64_t inode_limit;      /* what nr_segments limits: inodes */
};

int seg_ns_stats(struct seg_ns *ns, struct seg_ns_stats *out);

#endif
