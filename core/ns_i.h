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
 *   ns_acl.c    POSIX ACLs, and the mode they keep in step.
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
#include "core/store.h"
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

struct seg_inode {
	struct seg_link all;           /* on ns->inodes while live */
	struct seg_inode *dead_next;   /* on ns->dead once freed */
	uint64_t ino;
	/* Counts and attributes are protected by ns->lock. */
	uint64_t nlookup;              /* references */
	uint32_t nlink;                /* names; 2 + subdirectories for a dir */
	uint32_t nopen;                /* open handles and directory streams */
	mode_t mode;                   /* type (never changes) and permission bits */
	uid_t uid;
	gid_t gid;
	bool fixed;                    /* its name stays (seg_inode_fix) */
	unsigned flags;                /* SEG_FL_* (ns.h: inode flags) */
	bool linkable;                 /* made by seg_tmpfile and not named yet */
	const void *priv;              /* the layer above's (seg_inode_set_private) */
	struct seg_xattr *xattrs;      /* extended attributes (core/xattr.h) */
	/*
	 * A segment's atime and mtime are its backing file's own, which FUSE
	 * passthrough writes keep current without us; ctime is the later of
	 * the backing file's and this one, which records name and owner
	 * changes.  Directories keep all three here.
	 */
	struct timespec atime, mtime, ctime;
	struct timespec btime;         /* creation; never changes */
	union {
		struct {
			struct dc_dir d;
			struct seg_inode *parent;   /* ".." */
		} dir;
		struct {
			char *target;               /* never changes */
			size_t len;
		} link;
		dev_t rdev;                         /* devices, fifos, sockets */
		struct {
			/*
			 * Serializes what changes the size or the data path:
			 * lock 1 of ns.h's order.
			 */
			pthread_mutex_t lock;
			struct store_file file;     /* the store's */
			int backing;                /* data-path id, 0: none; ns->lock */
			/*
			 * Whether the open period holds file (store_hold), so
			 * that its descriptor stays: from the first open until
			 * attach gives the kernel its own reference, and for
			 * good on the cached fallback, which reads and writes
			 * through it.  ns->lock.
			 */
			bool held;
			pid_t pid;                  /* creator; 0: unknown */
		} seg;
	} u;
};

struct seg_dirh {
	struct seg_inode *dir;
	struct dc_node cursor;         /* on dir's entries while linked */
	bool linked;
	uint64_t pos;                  /* offset the cursor stands for */
};

struct seg_ns {
	pthread_mutex_t lock;
	/* Set at creation (the hook before sharing), then read-only. */
	struct seg_store *store;       /* its own lock, taken inside ours */
	struct seg_inode *root;
	uint64_t inode_limit;
	seg_hook_fn hook;
	void *hook_arg;
	seg_attach_fn attach;
	seg_detach_fn detach;
	void *data_arg;
	/* Protected by lock. */
	struct seg_link inodes;        /* list head of all live inodes */
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
	uint64_t next_ino;
	struct seg_dcache dc;
	/*
	 * What died while the lock was held: ns_unlock releases them once it
	 * is dropped.  Releasing a segment closes its backing file, and the
	 * last close frees its pages, which takes long enough that doing it
	 * under the lock made the next request wait for it.
	 */
	struct seg_inode *dead;
	struct seg_dentry *dead_dentries;   /* chained through hnext */
};

/* Immutable or append-only: its name and attributes stay (ns.h). */
static inline bool ns_pinned(const struct seg_inode *ino)
{
	return ino->flags & (SEG_FL_IMMUTABLE | SEG_FL_APPEND);
}

/* Whether entries may be added to `dir` (-EPERM if immutable). */
static inline int ns_may_add(const struct seg_inode *dir)
{
	return dir->flags & SEG_FL_IMMUTABLE ? -EPERM : 0;
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
/* Drops ns->lock, then releases what died and grows the dentry table. */
void ns_unlock(struct seg_ns *ns);

void ns_now(struct timespec *ts);
void ns_fill_stat(struct seg_ns *ns, struct seg_inode *ino, struct stat *st);
void ns_maybe_free(struct seg_ns *ns, struct seg_inode *ino);
/* Takes a dentry out of its directory; freed when the lock is dropped. */
void ns_drop_dentry(struct seg_ns *ns, struct seg_dentry *d);
void ns_dir_touch(struct seg_inode *dir);
/* Tells the hook, if there is one. */
void ns_changed(struct seg_ns *ns, enum seg_change_kind kind, const struct seg_inode *dir,
		const char *name, size_t len, const struct seg_inode *ino);

/*
 * Inode slots.  ns_take_slot counts an inode that is about to be made
 * (-ENOSPC beyond the limit) and gives it a number; ns_give_slot undoes
 * that if it is not made after all.  ns_inode_link makes a made inode
 * live (on ns->inodes), in its slot.
 */
int ns_take_slot(struct seg_ns *ns, uint64_t *num);
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
 * New inodes, made without the lock and not yet live.  ns_new_segment
 * makes its backing file too; ns_inode_free frees one that never went
 * live (or died), releasing its backing file: without the lock.
 */
int ns_new_segment(struct seg_ns *ns, uint64_t num, mode_t mode, const struct seg_cred *who,
		   const char *name, struct seg_inode **out);
struct seg_inode *ns_new_dir(uint64_t num, mode_t mode, const struct seg_cred *who);
/* A node of type `mode & S_IFMT` that holds no data (not a directory or segment). */
struct seg_inode *ns_new_node(mode_t mode, dev_t rdev, const char *target,
			      const struct seg_cred *who);
void ns_inode_free(struct seg_ns *ns, struct seg_inode *ino);

/*
 * What a new inode takes from the directory it is made in, under
 * ns->lock: in a setgid directory, the directory's group, and for a
 * directory the setgid bit too (as tmpfs's inode_init_owner; the kernel
 * has already taken S_ISGID off a file its caller may not have so).
 */
void ns_inherit(const struct seg_inode *dir, struct seg_inode *ino);

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
int ns_acl_inherit(struct seg_inode *dir, struct seg_inode *ino,
		   mode_t umask, struct ns_acl_prep *p);
void ns_acl_release(struct ns_acl_prep *p);

/* Whether an attribute costs inode space: all but the ACLs, as on tmpfs. */
bool ns_xattr_charged(const char *name);

#endif
