/*
 * What a FUSE node id names, and the tables of operations by kind.
 *
 * A node id is the address of the object the kernel holds a reference to,
 * as in libfuse's passthrough_ll, with the layer it belongs to in its low
 * bit: even for an inode of the namespace (core/ns.h), odd for an entry of
 * lists/ (core/lists.h, whose objects are as aligned).  The root is
 * FUSE_ROOT_ID.  The kernel only sends ids it holds a reference on, so the
 * object is alive whenever one arrives.
 *
 * Every object has one kind and every kind one table (struct node_ops), as
 * every inode of the kernel's VFS has its inode_operations: a directory of
 * the namespace, a segment, the lists/ directory, an entry of lists/.
 * server/ops.c routes each request once, by the kind of the node it is about,
 * to that kind's function; an operation a kind has not gets the errno the
 * kernel would give for it.  Adding a kind is adding its table.
 *
 * Every function of a table replies to its request exactly once, except
 * forget, which has no reply.
 */
#ifndef SEGFS_FS_NODE_H
#define SEGFS_FS_NODE_H

#include "server/segfs.h"

struct lv_node;
struct node_ops;

struct node {
	const struct node_ops *ops;
	fuse_ino_t id;
	struct seg_inode *ino;     /* for the namespace's kinds, else NULL */
	struct lv_node *view;      /* for an entry of lists/, else NULL */
};

struct node_ops {
	const char *kind;          /* for messages */
	void (*forget)(struct segfs *fs, struct node *n, uint64_t nlookup);
	void (*getattr)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	/* statx (libfuse >= 3.18): getattr with the birth time. */
	void (*statx)(fuse_req_t req, struct node *n, int flags, int mask,
		      struct fuse_file_info *fi);
	void (*readlink)(fuse_req_t req, struct node *n);
	void (*setattr)(fuse_req_t req, struct node *n, struct stat *attr, int valid,
			struct fuse_file_info *fi);
	/* Directories. */
	void (*lookup)(fuse_req_t req, struct node *dir, const char *name);
	void (*mknod)(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		      dev_t rdev);
	void (*mkdir)(fuse_req_t req, struct node *dir, const char *name, mode_t mode);
	void (*symlink)(fuse_req_t req, const char *link, struct node *dir, const char *name);
	void (*unlink)(fuse_req_t req, struct node *dir, const char *name);
	void (*rmdir)(fuse_req_t req, struct node *dir, const char *name);
	/* newdir is of the same kind as dir: ops.c refuses the others (EXDEV). */
	void (*rename)(fuse_req_t req, struct node *dir, const char *name,
		       struct node *newdir, const char *newname, unsigned flags);
	/* Called on the directory that gets the new name. */
	void (*link)(fuse_req_t req, struct node *n, struct node *newdir, const char *newname);
	void (*create)(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		       struct fuse_file_info *fi);
	/* open(O_TMPFILE) in the directory (libfuse >= 3.15). */
	void (*tmpfile)(fuse_req_t req, struct node *dir, mode_t mode, struct fuse_file_info *fi);
	void (*opendir)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	void (*readdir)(fuse_req_t req, struct node *n, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus);
	void (*releasedir)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	/* Files. */
	void (*open)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	void (*read)(fuse_req_t req, struct node *n, size_t size, off_t off,
		     struct fuse_file_info *fi);
	void (*write_buf)(fuse_req_t req, struct node *n, struct fuse_bufvec *buf, off_t off,
			  struct fuse_file_info *fi);
	void (*flush)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	void (*release)(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
	void (*fallocate)(fuse_req_t req, struct node *n, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi);
	void (*lseek)(fuse_req_t req, struct node *n, off_t off, int whence,
		      struct fuse_file_info *fi);
	/* Called on the destination; `in` may be of any kind. */
	void (*copy_range)(fuse_req_t req, struct node *in, off_t off_in, struct node *out,
			   off_t off_out, size_t len);
	/* ioctl: the inode flags of chattr(1) (server/inode.c). */
	void (*ioctl)(fuse_req_t req, struct node *n, unsigned cmd, struct fuse_file_info *fi,
		      const void *in_buf, size_t in_bufsz, size_t out_bufsz);
	/* Extended attributes (server/xattr.c). */
	void (*getxattr)(fuse_req_t req, struct node *n, const char *name, size_t size);
	void (*listxattr)(fuse_req_t req, struct node *n, size_t size);
	void (*setxattr)(fuse_req_t req, struct node *n, const char *name, const char *value,
			 size_t size, int flags);
	void (*removexattr)(fuse_req_t req, struct node *n, const char *name);
};

/* The layer bit of a node id: set for an entry of lists/. */
#define VIEW_BIT 1u

/* The tables (server/dir.c, server/file.c, server/nodes.c, server/views.c). */
extern const struct node_ops dir_ops;
extern const struct node_ops file_ops;
extern const struct node_ops symlink_ops;
extern const struct node_ops special_ops;
extern const struct node_ops lists_dir_ops;
extern const struct node_ops view_ops;

/*
 * LOOKUP of "." or ".." in node `id`: how the kernel finds a node again
 * from a file handle once it has forgotten it (FUSE_CAP_EXPORT_SUPPORT),
 * and a directory's parent.  The id comes from a handle a process gave:
 * an id that names nothing (any more) is ENOENT, which the kernel makes
 * ESTALE.
 */
void export_lookup(fuse_req_t req, fuse_ino_t id, bool parent);

/* The node an id names. */
struct node node_of(struct segfs *fs, fuse_ino_t id);

/* The ids of a namespace inode and of a lists/ entry. */
fuse_ino_t node_id(struct segfs *fs, const struct seg_inode *ino);
fuse_ino_t node_view_id(const struct lv_node *v);

/* The filesystem of a request. */
struct segfs *fs_of(fuse_req_t req);

/* fuse_reply_err for 0 or -errno: the one place where -errno turns into errno. */
void reply_err(fuse_req_t req, int rc);

/*
 * Entry replies of the namespace's inodes, for lookup, create, mkdir, link:
 * with the mount's timeouts.  reply_entry gives the reference back if the
 * reply is lost (an interrupted request).
 */
void fill_entry(struct segfs *fs, struct fuse_entry_param *e, struct seg_inode *ino,
		const struct stat *st);
void reply_entry(fuse_req_t req, struct seg_inode *ino, const struct stat *st);
/*
 * The entry of node `id` again, for a resent request whose first answer
 * (and reference) was made: no reference is taken.
 */
void reply_entry_replayed(fuse_req_t req, fuse_ino_t id);

/*
 * For a resent opendir that was answered: replies with the handle it got
 * (its recorded result) and returns true.
 */
bool reply_opendir_replayed(fuse_req_t req, struct fuse_file_info *fi);

/*
 * Making a handle's memory again from its record, after a restart
 * (server/handles.h): a directory stream (dir.c), a lists/ file and a
 * stream of lists/ (views.c).
 */
struct handle *dir_handle_adopt(struct segfs *fs, uint64_t index, const uint64_t *words);
struct handle *vfile_adopt(struct segfs *fs, uint64_t index, const uint64_t *words);
struct handle *lists_handle_adopt(struct segfs *fs, uint64_t index, const uint64_t *words);

/*
 * seg_cred of a request's caller.  Its umask is the one the daemon must
 * apply (FUSE_CAP_DONT_MASK), else 0: the kernel applied it.
 */
struct seg_cred cred_of(fuse_req_t req);

/*
 * server/cred.c: what the header does not say about a caller, from /proc on
 * the rare paths that need it: whether it is in group `gid` (its own or a
 * supplementary one), and its effective capabilities.
 */
struct caller {
	bool in_group;
	uint64_t cap_eff;
};

int caller_query(fuse_req_t req, gid_t gid, struct caller *c);
bool caller_capable(const struct caller *c, int cap);

/* Shared by the namespace's kinds (server/dir.c). */
void inode_forget(struct segfs *fs, struct node *n, uint64_t nlookup);
void inode_getattr(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
void inode_statx(fuse_req_t req, struct node *n, int flags, int mask,
		 struct fuse_file_info *fi);
void inode_setattr(fuse_req_t req, struct node *n, struct stat *attr, int valid,
		   struct fuse_file_info *fi);
void inode_ioctl(fuse_req_t req, struct node *n, unsigned cmd, struct fuse_file_info *fi,
		 const void *in_buf, size_t in_bufsz, size_t out_bufsz);
/* FUSE_SET_ATTR_* to SEG_SET_*. */
unsigned setattr_mask(int valid);

/*
 * What a write, truncate or chown by this request's caller (without
 * CAP_FSETID) takes away: setuid, setgid as the kernel's rules say,
 * file capabilities.
 */
int inode_kill_privs(fuse_req_t req, struct seg_inode *ino);

/*
 * server/file.c: CREATE in a namespace directory makes a segment and opens it;
 * TMPFILE makes one with no name.
 */
void file_create(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		 struct fuse_file_info *fi);
void file_tmpfile(fuse_req_t req, struct node *dir, mode_t mode, struct fuse_file_info *fi);

/*
 * server/xattr.c: the read-only user.segfs.* attributes of segments and of
 * the root (README: Inspection), for the namespace's kinds.  Without
 * -o xattr main() leaves the attribute requests out of the session, so
 * libfuse replies ENOSYS and the kernel sends no more of them.
 */
void xattr_get(fuse_req_t req, struct node *n, const char *name, size_t size);
void xattr_list(fuse_req_t req, struct node *n, size_t size);
void xattr_set(fuse_req_t req, struct node *n, const char *name, const char *value,
	       size_t size, int flags);
void xattr_remove(fuse_req_t req, struct node *n, const char *name);

#endif
