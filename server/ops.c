/*
 * The one dispatch point: every FUSE request, routed once by the kind of
 * the node it is about to that kind's table (server/node.h).  What a kind has
 * not is answered here with the errno the kernel gives for it; what
 * concerns the whole mount (INIT, statfs) is answered here too.
 *
 * Data path: with passthrough, read, write and mmap of a segment go from
 * the kernel straight to its backing file and never reach the daemon; the
 * tables' read and write serve the cached fallback and lists/.  INIT is
 * server/init.c's.
 */
#include "server/node.h"

#include <errno.h>
#include <stdio.h>

static void segfs_statfs(fuse_req_t req, fuse_ino_t id)
{
	struct statvfs sv;

	(void)id;
	seg_statfs(fs_of(req)->ns, &sv);
	fuse_reply_statfs(req, &sv);
}

/* ---- routing ---------------------------------------------------------- */

/* The node of a request's id. */
#define NODE(req, id) node_of(fs_of(req), (id))

/*
 * Calls n's function for `op`, or answers `err` when its kind has none:
 * the errno the kernel gives for that operation on such a node.
 */
#define ROUTE(req, n, op, err, ...)                      \
	do {                                             \
		if ((n).ops->op != NULL)                 \
			(n).ops->op(__VA_ARGS__);        \
		else                                     \
			reply_err((req), -(err));        \
	} while (0)

static void segfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node dir = NODE(req, parent);

	/* The kernel's own "." and ".." (file handles); no path has them. */
	if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
		export_lookup(req, parent, name[1] == '.');
		return;
	}

	ROUTE(req, dir, lookup, ENOTDIR, req, &dir, name);
}

static void forget_one(struct segfs *fs, fuse_ino_t id, uint64_t nlookup)
{
	struct node n = node_of(fs, id);

	n.ops->forget(fs, &n, nlookup);
}

static void segfs_forget(fuse_req_t req, fuse_ino_t id, uint64_t nlookup)
{
	forget_one(fs_of(req), id, nlookup);
	fuse_reply_none(req);
}

static void segfs_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void segfs_getattr(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct node n = node_of(fs, id);

	/* The first GETATTR of the root tells how requests reach us. */
	if (id == FUSE_ROOT_ID && atomic_load_explicit(&fs->transport, memory_order_relaxed)
	    == TRANSPORT_UNKNOWN) {
#ifdef FUSE_CAP_OVER_IO_URING
		atomic_store(&fs->transport, fuse_req_is_uring(req) ? TRANSPORT_URING
								     : TRANSPORT_DEV);
#else
		atomic_store(&fs->transport, TRANSPORT_DEV);
#endif
	}
	n.ops->getattr(req, &n, fi);
}

#if SEGFS_HAVE_STATX
static void segfs_statx(fuse_req_t req, fuse_ino_t id, int flags, int mask,
			struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, statx, ENOSYS, req, &n, flags, mask, fi);
}
#endif

static void segfs_readlink(fuse_req_t req, fuse_ino_t id)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, readlink, EINVAL, req, &n);
}

static void segfs_setattr(fuse_req_t req, fuse_ino_t id, struct stat *attr, int valid,
			  struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	n.ops->setattr(req, &n, attr, valid, fi);
}

static void segfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, mknod, ENOTDIR, req, &dir, name, mode, rdev);
}

static void segfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, mkdir, ENOTDIR, req, &dir, name, mode);
}

static void segfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, symlink, ENOTDIR, req, link, &dir, name);
}

static void segfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, unlink, ENOTDIR, req, &dir, name);
}

static void segfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, rmdir, ENOTDIR, req, &dir, name);
}

static void segfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned flags)
{
	struct node dir = NODE(req, parent), newdir = NODE(req, newparent);

	/*
	 * Between directories of different kinds, as between mounts: mv(1)
	 * then copies, which turns text into a list and back.
	 */
	if (dir.ops != newdir.ops) {
		reply_err(req, -EXDEV);
		return;
	}
	ROUTE(req, dir, rename, ENOTDIR, req, &dir, name, &newdir, newname, flags);
}

static void segfs_link(fuse_req_t req, fuse_ino_t id, fuse_ino_t newparent,
		       const char *newname)
{
	struct node n = NODE(req, id), newdir = NODE(req, newparent);

	ROUTE(req, newdir, link, ENOTDIR, req, &n, &newdir, newname);
}

static void segfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct node dir = NODE(req, parent);

	ROUTE(req, dir, create, ENOTDIR, req, &dir, name, mode, fi);
}

#if SEGFS_HAVE_TMPFILE
static void segfs_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
			  struct fuse_file_info *fi)
{
	struct node dir = NODE(req, parent);

	/* Not in lists/: EOPNOTSUPP, as for a filesystem without O_TMPFILE. */
	ROUTE(req, dir, tmpfile, EOPNOTSUPP, req, &dir, mode, fi);
}
#endif

static void segfs_open(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, open, EISDIR, req, &n, fi);
}

static void segfs_read(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, read, EISDIR, req, &n, size, off, fi);
}

static void segfs_write_buf(fuse_req_t req, fuse_ino_t id, struct fuse_bufvec *buf,
			    off_t off, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, write_buf, EISDIR, req, &n, buf, off, fi);
}

static void segfs_flush(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	/* Nothing to flush but what a kind keeps itself. */
	ROUTE(req, n, flush, 0, req, &n, fi);
}

static void segfs_release(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, release, 0, req, &n, fi);
}

/*
 * Memory has nothing to sync to: fsync and fsyncdir of every kind.  ENOSYS
 * tells the kernel so, and it answers every later one itself with 0 (each
 * was a round trip: 11-30 us here, against 0.2 us on tmpfs, and SQLite
 * makes one per commit).  What fsync must still do, the kernel does before
 * it would ask: the fallback's dirty pages are written back to the segment
 * first.  The kernel keeps what it learnt across a server's restart.
 */
static void segfs_fsync(fuse_req_t req, fuse_ino_t id, int datasync,
			struct fuse_file_info *fi)
{
	(void)id;
	(void)datasync;
	(void)fi;
	reply_err(req, -ENOSYS);
}

static void segfs_fallocate(fuse_req_t req, fuse_ino_t id, int mode, off_t off, off_t len,
			    struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, fallocate, EOPNOTSUPP, req, &n, mode, off, len, fi);
}

static void segfs_copy_file_range(fuse_req_t req, fuse_ino_t id_in, off_t off_in,
				  struct fuse_file_info *fi_in, fuse_ino_t id_out, off_t off_out,
				  struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct node in = NODE(req, id_in), out = NODE(req, id_out);

	(void)fi_in;
	(void)fi_out;
	/* copy_file_range(2) has no flags yet; the kernel refuses them before us. */
	if (flags != 0) {
		reply_err(req, -EINVAL);
		return;
	}
	/* Other kinds: the kernel copies through reads and writes instead. */
	ROUTE(req, out, copy_range, EOPNOTSUPP, req, &in, off_in, &out, off_out, len);
}

static void segfs_lseek(fuse_req_t req, fuse_ino_t id, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	/* Only SEEK_DATA and SEEK_HOLE come here; ENOSYS would turn lseek off for all. */
	ROUTE(req, n, lseek, EINVAL, req, &n, off, whence, fi);
}

static void segfs_opendir(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, opendir, ENOTDIR, req, &n, fi);
}

static void segfs_readdir(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, readdir, ENOTDIR, req, &n, size, off, fi, false);
}

static void segfs_readdirplus(fuse_req_t req, fuse_ino_t id, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, readdir, ENOTDIR, req, &n, size, off, fi, true);
}

static void segfs_releasedir(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, releasedir, 0, req, &n, fi);
}

static void segfs_ioctl(fuse_req_t req, fuse_ino_t id, unsigned int cmd, void *arg,
			struct fuse_file_info *fi, unsigned flags, const void *in_buf,
			size_t in_bufsz, size_t out_bufsz)
{
	struct node n = NODE(req, id);

	(void)arg;
	(void)flags;
	ROUTE(req, n, ioctl, ENOTTY, req, &n, cmd, fi, in_buf, in_bufsz, out_bufsz);
}

/* Attributes a kind does not keep: none to get, none to set. */
static void segfs_getxattr(fuse_req_t req, fuse_ino_t id, const char *name, size_t size)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, getxattr, ENODATA, req, &n, name, size);
}

static void segfs_listxattr(fuse_req_t req, fuse_ino_t id, size_t size)
{
	struct node n = NODE(req, id);

	if (n.ops->listxattr != NULL)
		n.ops->listxattr(req, &n, size);
	else if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static void segfs_setxattr(fuse_req_t req, fuse_ino_t id, const char *name,
			   const char *value, size_t size, int flags)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, setxattr, EOPNOTSUPP, req, &n, name, value, size, flags);
}

static void segfs_removexattr(fuse_req_t req, fuse_ino_t id, const char *name)
{
	struct node n = NODE(req, id);

	ROUTE(req, n, removexattr, ENODATA, req, &n, name);
}

const struct fuse_lowlevel_ops segfs_ops = {
	.init = segfs_init,
	.lookup = segfs_lookup,
	.forget = segfs_forget,
	.forget_multi = segfs_forget_multi,
	.getattr = segfs_getattr,
	.setattr = segfs_setattr,
	.readlink = segfs_readlink,
	.mknod = segfs_mknod,
	.mkdir = segfs_mkdir,
	.symlink = segfs_symlink,
	.link = segfs_link,
	.unlink = segfs_unlink,
	.rmdir = segfs_rmdir,
	.rename = segfs_rename,
	.statfs = segfs_statfs,
	.create = segfs_create,
	.open = segfs_open,
	.release = segfs_release,
	.read = segfs_read,
	.write_buf = segfs_write_buf,
	.flush = segfs_flush,
	.fsync = segfs_fsync,
	.fallocate = segfs_fallocate,
	.copy_file_range = segfs_copy_file_range,
	.lseek = segfs_lseek,
	.opendir = segfs_opendir,
	.readdir = segfs_readdir,
	.readdirplus = segfs_readdirplus,
	.releasedir = segfs_releasedir,
	.fsyncdir = segfs_fsync,
	.getxattr = segfs_getxattr,
	.listxattr = segfs_listxattr,
	.setxattr = segfs_setxattr,
	.removexattr = segfs_removexattr,
	.ioctl = segfs_ioctl,
#if SEGFS_HAVE_TMPFILE
	.tmpfile = segfs_tmpfile,
#endif
#if SEGFS_HAVE_STATX
	.statx = segfs_statx,
#endif
};
