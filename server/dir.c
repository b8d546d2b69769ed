/*
 * Directories of the namespace (dir_ops).
 *
 * Each handler does its work through core/ns.h (0 or -errno) and then
 * replies exactly once.  Once a reply that hands the kernel an inode is
 * out, the kernel may forget it, and a FORGET on another thread free it:
 * nothing here looks at an inode after replying.
 */
#include "server/node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ------------------------------------------------------------ */

/* The reply to what makes a node: its entry, or the error. */
static void reply_made(fuse_req_t req, int rc, struct seg_inode *ino, const struct stat *st)
{
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, ino, st);
}

static void dir_lookup(fuse_req_t req, struct node *dir, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino;
	struct stat st;
	int rc = seg_lookup(fs->ns, dir->ino, name, &ino, &st);

	if (rc == 0) {
		reply_entry(req, ino, &st);
	} else if (rc == -ENOENT && fs->opts->negative_timeout > 0) {
		/* A node id of 0 lets the kernel cache the absence. */
		struct fuse_entry_param e = { .ino = 0 };

		e.entry_timeout = fs->opts->negative_timeout;
		fuse_reply_entry(req, &e);
	} else {
		reply_err(req, rc);
	}
}

static void dir_mknod(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		      dev_t rdev)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	bool created;
	int rc;

	/* A regular file is a segment; fifos, sockets and devices hold no data. */
	if (S_ISREG(mode))
		rc = seg_create(fs->ns, dir->ino, name, mode, &who, SEG_CREATE_EXCL, &ino, &st,
				&created);
	else
		rc = seg_mknod(fs->ns, dir->ino, name, mode, rdev, &who, &ino, &st);
	reply_made(req, rc, ino, &st);
}

static void dir_mkdir(fuse_req_t req, struct node *dir, const char *name, mode_t mode)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	int rc = seg_mkdir(fs->ns, dir->ino, name, mode, &who, &ino, &st);

	reply_made(req, rc, ino, &st);
}

static void dir_symlink(fuse_req_t req, const char *link, struct node *dir, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	int rc = seg_symlink(fs->ns, dir->ino, name, link, &who, &ino, &st);

	reply_made(req, rc, ino, &st);
}

static void dir_link(fuse_req_t req, struct node *n, struct node *newdir, const char *newname)
{
	struct segfs *fs = fs_of(req);
	struct stat st;
	int rc;

	/* Only the namespace's inodes have names here (not lists/ entries). */
	if (n->ino == NULL) {
		reply_err(req, -EPERM);
		return;
	}
	rc = seg_link(fs->ns, n->ino, newdir->ino, newname, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, n->ino, &st);
}

static void dir_unlink(fuse_req_t req, struct node *dir, const char *name)
{
	reply_err(req, seg_unlink(fs_of(req)->ns, dir->ino, name));
}

static void dir_rmdir(fuse_req_t req, struct node *dir, const char *name)
{
	reply_err(req, seg_rmdir(fs_of(req)->ns, dir->ino, name));
}

static void dir_rename(fuse_req_t req, struct node *dir, const char *name,
		       struct node *newdir, const char *newname, unsigned flags)
{
	struct seg_cred who = cred_of(req);

	reply_err(req, seg_rename(fs_of(req)->ns, dir->ino, name, newdir->ino, newname, flags,
				  &who));
}

/* ---- streams ---------------------------------------------------------- */

/* A directory stream, kept on the session's list until released. */
struct dir_handle {
	struct handle h;
	struct seg_dirh *dh;
};

static struct dir_handle *dir_handle_of(const struct fuse_file_info *fi)
{
	return (struct dir_handle *)(uintptr_t)fi->fh;
}

static void dir_handle_drop(struct segfs *fs, struct handle *h)
{
	struct dir_handle *d = (struct dir_handle *)h;

	seg_releasedir(fs->ns, d->dh);
	free(d);
}

static void dir_opendir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct dir_handle *d = malloc(sizeof(*d));
	int rc = d != NULL ? seg_opendir(fs->ns, n->ino, &d->dh) : -ENOMEM;

	if (rc < 0) {
		free(d);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	handle_add(&fs->handles, &d->h, dir_handle_drop);
	if (fuse_reply_open(req, fi) != 0) {
		handle_del(&fs->handles, &d->h);
		dir_handle_drop(fs, &d->h);
	}
}

struct dirbuf {
	fuse_req_t req;
	struct segfs *fs;
	char *p;
	size_t size, used;
	bool plus;
};

/* seg_fill_fn: appends one entry; non-zero when it does not fit. */
static int dir_fill(void *arg, const char *name, struct seg_inode *ino,
		    const struct stat *st, uint64_t next)
{
	struct dirbuf *b = arg;
	size_t room = b->size - b->used, n;

	if (b->plus) {
		struct fuse_entry_param e;
		bool dot = name[0] == '.' && (name[1] == '\0' ||
					      (name[1] == '.' && name[2] == '\0'));

		fill_entry(b->fs, &e, ino, st);
		/* Node id 0: no reference taken, as the kernel expects for dots. */
		if (dot)
			e.ino = 0;
		n = fuse_add_direntry_plus(b->req, b->p + b->used, room, name, &e, (off_t)next);
	} else {
		n = fuse_add_direntry(b->req, b->p + b->used, room, name, st, (off_t)next);
	}
	if (n > room)
		return 1;
	b->used += n;
	return 0;
}

static void dir_readdir(fuse_req_t req, struct node *n, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = { .req = req, .fs = fs_of(req), .size = size, .plus = plus };
	int rc;

	(void)n;
	b.p = malloc(size);
	if (b.p == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	rc = seg_readdir(b.fs->ns, dir_handle_of(fi)->dh, (uint64_t)off, plus,
			 dir_fill, &b);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, b.p, b.used);
	free(b.p);
}

static void dir_releasedir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct dir_handle *d = dir_handle_of(fi);

	(void)n;
	handle_del(&fs->handles, &d->h);
	dir_handle_drop(fs, &d->h);
	reply_err(req, 0);
}

const struct node_ops dir_ops = {
	.kind = "directory",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.statx = inode_statx,
	.setattr = inode_setattr,
	.lookup = dir_lookup,
	.mknod = dir_mknod,
	.mkdir = dir_mkdir,
	.symlink = dir_symlink,
	.unlink = dir_unlink,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.link = dir_link,
	.create = file_create,
	.tmpfile = file_tmpfile,
	.opendir = dir_opendir,
	.readdir = dir_readdir,
	.releasedir = dir_releasedir,
	.ioctl = inode_ioctl,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
