/*
 * Internals of the namespace, shared by its files:
 *
 *   ns.c        the namespace itself: inodes and their lifetimes, the lock,
 *               attributes, capacity, inspection and the hook;
 *   ns_names.c  name operations (lookup, create, mkdir, link, unlink,
 *               rmdir, rename, replace);
 *   ns_open.c   open handles and the segment's data (open, release,
 *               reserve, pread, pwrite);
 *   ns_dir.c    directory streams;
 *   ns_xattr.c  extended attributes;
 *   ns_acl.c    POSIX ACLs, and the mode they keep in step;
 *   ns_rebuild.c  the namespace a dead server left, from its tree and
 *               region.
 *
 * Nothing outside these files includes this.  The locks and their order
 * are in ns.h.
 */
#ifndef SEGFS_CORE_NS_I_H
#define SEGFS_CORE_NS_I_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dcache.h"
#include "core/ns.h"
#include "core/region.h"
#include "core/store.h"
#include "core/tree.h"
#include "core/xattr.h"

/* tmpfs reports directory sizes as 20 bytes per entry (BOGO_DIRENT_SIZE). */
#define BOGO_DIRENT_SIZE 20

/* What tmpfs charges an inode against its inode space (its BOGO_INODE_SIZE). */
#define BOGO_INODE_SIZE 1024

/* tmpfs keeps a symlink target shorter than this in the inode, else in a page. */
#define SHORT_SYMLINK_LEN 128

struct seg_link {
	struct seg_link *prev, *next;
};

/*
 * An inode.  Its counts and the attributes segfs keeps (mode, owner,
 * flags, device, creator, the four times) are words of its record in the
 * region (core/region.h), which outlive the server; they are read through
 * `w` and changed only with ns_set, ns_add and ns_set_time, under
 * ns->lock.  Its names are dentries (core/dcache.h) and, with a private
 * tmpfs, real names in the tree (core/tree.h); nlink counts them.
 */
struct seg_inode {
	struct seg_link all;           /* on ns->inodes while live */
	struct seg_inode *dead_next;   /* on ns->dead once freed */
	struct seg_inode *hnext;       /* ns->by_ino's chain */
	uint64_t ino;                  /* its number: the tmpfs's, never reused */
	uint64_t rec;                  /* its record in the region */
	uint64_t *w;                   /* the record's words (RI_*) */
	mode_t type;                   /* S_IFMT bits; never changes */
	uint32_t nlink;                /* names; 2 + subdirectories for a dir */
	const void *priv;              /* the layer above's (seg_inode_set_private) */
	struct seg_xattr *xattrs;      /* extended attributes (core/xattr.h) */
	union {
		struct {
			struct dc_dir d;
			struct seg_inode *parent;   /* ".." */
			struct seg_dentry *name;    /* its entry in parent (NULL: root, removed) */
			char stage[TREE_STAGE_MAX]; /* while being made (core/tree.h) */
		} dir;
		struct {
			char *target;               /* never changes */
			size_t len;
		} link;
		struct {
			/*
			 * Serializes what changes the size or the data path:
			 * lock 1 of ns.h's order.
			 */
			pthread_mutex_t lock;
			struct store_file file;     /* the store's */
			/*
			 * Whether the open period holds file (store_hold), so
			 * that its descriptor stays: from the first open until
			 * attach gives the kernel its own reference, and for
			 * good on the cached fallback, which reads and writes
			 * through it.  ns->lock.
			 */
			bool held;
		} seg;
	} u;
};

/* The words of a record, read under ns->lock (or for what never changes). */
static inline mode_t ns_mode(const struct seg_inode *i)
{
	return (mode_t)i->w[RI_MODE];
}

static inline unsigned ns_flags(const struct seg_inode *i)
{
	return (unsigned)i->w[RI_FLAGS];
}

static inline uint64_t ns_nlookup(const struct seg_inode *i)
{
	return i->w[RI_NLOOKUP];
}

static inline uint64_t ns_nopen(const struct seg_inode *i)
{
	return i->w[RI_NOPEN];
}

static inline bool ns_state(const struct seg_inode *i, uint64_t bit)
{
	return (i->w[RI_STATE] & bit) != 0;
}

static inline struct timespec ns_time(const struct seg_inode *i, unsigned word)
{
	return (struct timespec){ .tv_sec = (time_t)i->w[word],
				  .tv_nsec = (long)i->w[word + 1] };
}

struct seg_dirh {
	struct seg_inode *dir;
	struct dc_node cursor;         /* on dir's entries while linked */
	bool linked;
	bool started;                  /* a readdir has run: offset 0 is a rewind */
	uint64_t pos;                  /* offset the cursor stands for */
	uint64_t end;                  /* entries from this cookie on are newer */
};

/* The hash of live inodes by number: node ids are numbers (ns.h). */
struct ns_by_ino {
	struct seg_inode **buckets;
	size_t nbuckets;               /* a power of two */
	size_t n;
};

struct seg_ns {
	pthread_mutex_t lock;
	/* Set at creation (the hook before sharing), then read-only. */
	struct seg_store *store;       /* its own lock, taken inside ours */
	struct seg_tree *tree;         /* NULL with memfds: nothing is kept */
	struct rg *rg;                 /* the records; the namespace's, or a caller's */
	bool own_rg;
	int tmpfs;                     /* the private tmpfs's root, or -1 */
	struct seg_inode *root;
	uint64_t inode_limit;
	seg_hook_fn hook;
	void *hook_arg;
	seg_attach_fn attach;
	seg_detach_fn detach;
	void *data_arg;
	/* Protected by lock. */
	struct seg_link inodes;        /* list head of all live inodes */
	struct ns_by_ino by_ino;
	/* Live inodes, and the slots creates in progress have taken. */
	uint64_t ninodes;
	/*
	 * Bytes extended attributes take.  As on tmpfs they share the inode
	 * space with the inodes, BOGO_INODE_SIZE each: inodes and attributes
	 * together stay within inode_limit * BOGO_INODE_SIZE.  ACLs are not
	 * charged (ns_xattr_charged, in ns.c with the rest of the accounting).
	 */
	uint64_t xattr_space;
	/*
	 * Names beyond the first of each non-directory.  tmpfs charges every
	 * hard link an inode's worth of that space too (shmem_link), so a
	 * filesystem of links runs out where tmpfs's would.
	 */
	uint64_t extra_links;
	uint64_t next_ino;             /* numbers without a tmpfs (memfds) */
	struct seg_dcache dc;
	/*
	 * What died while the lock was held: ns_unlock releases them once it
	 * is dropped.  Releasing a segment closes its backing file and drops
	 * its last name in the tmpfs, and the last of those frees its pages,
	 * which takes long enough that doing it under the lock made the next
	 * request wait for it.
	 */
	struct seg_inode *dead;
	struct seg_dentry *dead_dentries;   /* chained through hnext */
};

/* Changes one word of an inode's record (logged: core/region.h). */
void ns_set(struct seg_ns *ns, struct seg_inode *i, unsigned word, uint64_t v);
void ns_add(struct seg_ns *ns, struct seg_inode *i, unsigned word, int64_t delta);
void ns_set_time(struct seg_ns *ns, struct seg_inode *i, unsigned word,
		 const struct timespec *ts);
void ns_set_mode(struct seg_ns *ns, struct seg_inode *i, mode_t mode);

/*
 * The path of directory `dir` below the tree's root into buf
 * (NS_PATH_MAX bytes; "" for the root): -ENAMETOOLONG beyond that,
 * -ENOENT for a removed one.  Under ns->lock.
 */
int ns_dir_path(const struct seg_inode *dir, char *buf, size_t size);
#define NS_PATH_MAX TREE_PATH_MAX

/*
 * Where the tree keeps an inode's extended attributes (a non-directory
 * by number, a directory by path, held in `path`).
 */
int ns_tree_at(const struct seg_inode *ino, struct tree_at *at, char *path, size_t size);

/* Inodes by number. */
struct seg_inode *ns_by_ino_find(const struct seg_ns *ns, uint64_t ino);
void ns_by_ino_add(struct seg_ns *ns, struct seg_inode *i);
void ns_by_ino_del(struct seg_ns *ns, struct seg_inode *i);
/* Grows the hash outside the lock when it is full (ns_unlock). */
void ns_by_ino_grow(struct seg_ns *ns);
/* Before an attribute goes onto i's stand-in: RI_STATE_XATTRS. */
void ns_mark_xattrs(struct seg_ns *ns, struct seg_inode *i);
/* Sizes the inode and name tables for `count` inodes at once (a rebuild). */
void ns_by_ino_reserve(struct seg_ns *ns, size_t count);

/* Immutable or append-only: its name and attributes stay (ns.h). */
static inline bool ns_pinned(const struct seg_inode *ino)
{
	return ns_flags(ino) & (SEG_FL_IMMUTABLE | SEG_FL_APPEND);
}

/* Whether entries may be added to `dir` (-EPERM if immutable). */
static inline int ns_may_add(const struct seg_inode *dir)
{
	return ns_flags(dir) & SEG_FL_IMMUTABLE ? -EPERM : 0;
}

/*
 * Whether the entry of `dir` leading to `ino` may be removed or replaced
 * (the flags' part of the kernel's may_delete): -EPERM if not.
 */
static inline int ns_may_remove(const struct seg_inode *dir, const struct seg_inode *ino)
{
	return ns_pinned(dir) || ns_pinned(ino) ? -EPERM : 0;
}

void ns_lock(struct seg_ns *ns);
/* Drops ns->lock, then releases what died and grows the tables. */
void ns_unlock(struct seg_ns *ns);

/* The parts of a namespace, fresh or on what a previous server left. */
int ns_alloc(const struct seg_ns_config *cfg, bool rebuild, struct seg_ns **out);

void ns_now(struct timespec *ts);
void ns_fill_stat(struct seg_ns *ns, struct seg_inode *ino, struct stat *st);
void ns_maybe_free(struct seg_ns *ns, struct seg_inode *ino);
/* Takes a dentry out of its directory; freed when the lock is dropped. */
void ns_drop_dentry(struct seg_ns *ns, struct seg_dentry *d);
/* mtime and ctime of a directory whose entries changed; ctime alone. */
void ns_dir_touch(struct seg_ns *ns, struct seg_inode *dir);
void ns_touch_ctime(struct seg_ns *ns, struct seg_inode *ino);
/* Tells the hook, if there is one. */
void ns_changed(struct seg_ns *ns, enum seg_change_kind kind, const struct seg_inode *dir,
		const char *name, size_t len, const struct seg_inode *ino);

/*
 * Inode slots.  ns_take_slot counts an inode that is about to be made
 * (-ENOSPC beyond the limit); ns_give_slot undoes that if it is not made
 * after all.
 */
int ns_take_slot(struct seg_ns *ns);
/* Inode space left, in bytes: what f_ffree counts in BOGO_INODE_SIZE units. */
uint64_t ns_ispace_free(const struct seg_ns *ns);
void ns_give_slot(struct seg_ns *ns);
void ns_inode_link(struct seg_ns *ns, struct seg_inode *ino);
/*
 * A name more or less for a non-directory.  ns_name_add charges the space
 * of a second or later name (-ENOSPC if there is none) and counts it;
 * ns_name_drop uncounts it, and gives that space back if it was charged.
 */
int ns_name_add(struct seg_ns *ns, struct seg_inode *ino);
void ns_name_drop(struct seg_ns *ns, struct seg_inode *ino);

/*
 * New inodes.  ns_prepare makes one without the lock, of type and bits
 * `mode` (a device's `rdev`, a symlink's `target`; `name` is what /proc
 * shows of a memfd), owned by `who`: its memory, its object in the tmpfs
 * (not yet named in tree/), its record (not yet published).  Under the
 * lock, ns_publish makes it live once nothing can fail before its name is
 * made, and ns_unpublish takes it back if making the name failed; then
 * ns_discard, without the lock, undoes ns_prepare.  ns_inode_free releases
 * a dead inode, without the lock: its backing file and its last name in
 * the tmpfs.
 */
int ns_prepare(struct seg_ns *ns, mode_t mode, dev_t rdev, const char *target,
	       const struct seg_cred *who, const char *name, struct seg_inode **out);
void ns_publish(struct seg_ns *ns, struct seg_inode *i);
void ns_unpublish(struct seg_ns *ns, struct seg_inode *i);
void ns_discard(struct seg_ns *ns, struct seg_inode *i);
void ns_inode_free(struct seg_ns *ns, struct seg_inode *ino);

/*
 * Extended attributes in the tree (ns_xattr.c), under ns->lock: the
 * value set or removed there first, so that a restart finds it.  A no-op
 * without a tmpfs.
 */
int ns_mirror_xattr(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		    const void *value, size_t size);
int ns_unmirror_xattr(struct seg_ns *ns, struct seg_inode *ino, const char *name);

/* XATTR_LIST_MAX: the most listxattr(2) returns. */
#define XATTR_LIST_BYTES 65536

/* Keeps a segment's reservation in its record, after a change of it. */
void ns_keep_reserved(struct seg_ns *ns, struct seg_inode *ino);

/*
 * What a new inode takes from the directory it is made in, under
 * ns->lock: in a setgid directory, the directory's group, and for a
 * directory the setgid bit too (as tmpfs's inode_init_owner; the kernel
 * has already taken S_ISGID off a file its caller may not have so).
 */
void ns_inherit(struct seg_ns *ns, const struct seg_inode *dir, struct seg_inode *ino);

/*
 * ACLs of new inodes (ns_acl.c).  ns_acl_prepare allocates, without the
 * lock (it takes it briefly), what a new inode of type `type` in `dir`
 * will take from the directory's default ACL; ns_acl_inherit, under the
 * lock and before the inode is visible, applies it, or the umask where
 * there is none: -EAGAIN if the default ACL changed size meanwhile (start
 * over).  ns_acl_release frees what was not used.
 */
struct ns_acl_prep {
	struct seg_xattr *access, *deflt;
	size_t size;                   /* of the default ACL, when prepared */
};

int ns_acl_prepare(struct seg_ns *ns, struct seg_inode *dir, mode_t type,
		   struct ns_acl_prep *p);
int ns_acl_inherit(struct seg_ns *ns, struct seg_inode *dir, struct seg_inode *ino,
		   mode_t umask, struct ns_acl_prep *p);
void ns_acl_release(struct ns_acl_prep *p);

/* Whether an attribute costs inode space: all but the ACLs, as on tmpfs. */
bool ns_xattr_charged(const char *name);

#endif
