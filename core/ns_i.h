/*
 * Internals of the namespace, shared by its files:
 *
 *   ns.c        the namespace itself: inodes and their lifetimes, the lock,
 *               attributes, capacity, inspection and the hook;
 *   ns_names.c  name operations (lookup, create, mkdir, link, unlink,
 *               rmdir, rename, replace);
 *   ns_open.c   open handles and the segment's data (open, release,
 *               reserve, pread, pwrite);
 *   ns_dir.c    directory streams.
 *
 * Nothing outside these files includes this.  The locks and their order
 * are in ns.h.
 */
#ifndef SEGFS_CORE_NS_I_H
#define SEGFS_CORE_NS_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dcache.h"
#include "core/ns.h"
#include "core/store.h"

/* tmpfs reports directory sizes as 20 bytes per entry (BOGO_DIRENT_SIZE). */
#define BOGO_DIRENT_SIZE 20

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
	bool linkable;                 /* made by seg_tmpfile and not named yet */
	const void *priv;              /* the layer above's (seg_inode_set_private) */
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
			/*
			 * Serializes what changes the size or the data path:
			 * lock 1 of ns.h's order.
			 */
			pthread_mutex_t lock;
			struct store_file file;     /* the store's */
			int backing;                /* data-path id, 0: none; ns->lock */
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
void ns_give_slot(struct seg_ns *ns);
void ns_inode_link(struct seg_ns *ns, struct seg_inode *ino);

/*
 * New inodes, made without the lock and not yet live.  ns_new_segment
 * makes its backing file too; ns_inode_free frees one that never went
 * live (or died), releasing its backing file: without the lock.
 */
int ns_new_segment(struct seg_ns *ns, uint64_t num, mode_t mode, const struct seg_cred *who,
		   const char *name, struct seg_inode **out);
struct seg_inode *ns_new_dir(uint64_t num, mode_t mode, const struct seg_cred *who);
void ns_inode_free(struct seg_ns *ns, struct seg_inode *ino);

#endif
