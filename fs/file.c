/*
 * Segments (file_ops): create, open, the cached fallback's I/O, release.
 *
 * With passthrough the kernel reads, writes and maps a segment's backing
 * file itself; read and write come here only in the fallback, and go to
 * the backing file, which is stable while the segment is open.
 */
#include "fs/node.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Fills the open reply for a handle whose inode has data path `backing`. */
static void set_open_flags(struct fuse_file_info *fi, int backing)
{
	/*
	 * Segments need no FLUSH: close() then costs no round trip (lists/
	 * wants FLUSH, so it stays on for the connection).
	 */
	fi->noflush = 1;
	fi->direct_io = 0;
#ifdef FUSE_CAP_PASSTHROUGH
	fi->backing_id = backing;
#endif
	/*
	 * A passthrough open must not keep the page cache (the kernel fails it
	 * with EIO).  In cached mode only the kernel changes a segment's data,
	 * so its page cache stays valid from one open to the next.
	 */
	fi->keep_cache = backing == 0;
}

static void release_segment(struct segfs *fs, struct seg_inode *ino)
{
	seg_release(fs->ns, ino);
}

void file_create(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct fuse_entry_param e;
	struct seg_inode *ino;
	struct stat st;
	bool created;
	int rc, backing;

	rc = seg_create(fs->ns, dir->ino, name, mode, &who,
			(fi->flags & O_EXCL) ? SEG_CREATE_EXCL : 0, &ino, &st, &created);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	/* An existing segment opened with O_TRUNC is truncated by seg_open. */
	rc = seg_open(fs->ns, ino, created ? fi->flags & ~O_TRUNC : fi->flags, &backing);
	if (rc == 0 && !created && (fi->flags & O_TRUNC))
		rc = seg_getattr(fs->ns, ino, &st);
	if (rc < 0) {
		seg_forget(fs->ns, ino, 1);
		reply_err(req, rc);
		return;
	}
	set_open_flags(fi, backing);
	fill_entry(fs, &e, ino, &st);
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The opener is gone: no RELEASE or FORGET will come for this. */
		release_segment(fs, ino);
		seg_forget(fs->ns, ino, 1);
	}
}

static void file_open(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	int backing, rc = seg_open(fs->ns, n->ino, fi->flags, &backing);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	set_open_flags(fi, backing);
	if (fuse_reply_open(req, fi) != 0)
		release_segment(fs, n->ino);
}

static void file_release(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	(void)fi;
	release_segment(fs_of(req), n->ino);
	reply_err(req, 0);
}

static void file_read(fuse_req_t req, struct node *n, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)fi;
	/* libfuse reads straight from the backing file into the reply. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = seg_inode_fd(n->ino);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void file_write_buf(fuse_req_t req, struct node *n, struct fuse_bufvec *in,
			   off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t w;

	(void)fi;
	/* A write past the reservation takes the pages first, or fails whole. */
	w = seg_reserve(fs_of(req)->ns, n->ino, (uint64_t)off + out.buf[0].size);
	if (w < 0) {
		reply_err(req, (int)w);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = seg_inode_fd(n->ino);
	out.buf[0].pos = off;
	w = fuse_buf_copy(&out, in, 0);
	if (w < 0)
		reply_err(req, (int)w);
	else
		fuse_reply_write(req, (size_t)w);
}

static void file_fallocate(fuse_req_t req, struct node *n, int mode, off_t off, off_t len,
			   struct fuse_file_info *fi)
{
	int rc = 0;

	(void)fi;
	/* Allocating counts against the size limit; punching a hole does not. */
	if (!(mode & FALLOC_FL_PUNCH_HOLE) && off >= 0 && len > 0)
		rc = seg_reserve(fs_of(req)->ns, n->ino, (uint64_t)off + (uint64_t)len);
	if (rc == 0 && fallocate(seg_inode_fd(n->ino), mode, off, len) < 0)
		rc = -errno;
	reply_err(req, rc);
}

static void file_lseek(fuse_req_t req, struct node *n, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	off_t r;

	(void)fi;
	/* SEEK_DATA and SEEK_HOLE: the backing file knows its holes. */
	r = lseek(seg_inode_fd(n->ino), off, whence);
	if (r < 0)
		reply_err(req, -errno);
	else
		fuse_reply_lseek(req, r);
}

const struct node_ops file_ops = {
	.kind = "segment",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.setattr = inode_setattr,
	.open = file_open,
	.read = file_read,
	.write_buf = file_write_buf,
	.release = file_release,
	.fallocate = file_fallocate,
	.lseek = file_lseek,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
