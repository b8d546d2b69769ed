/*
 * Segments (file_ops): create, open, the cached fallback's I/O, release.
 *
 * With passthrough the kernel reads, writes and maps a segment's backing
 * file itself; read and write come here only in the fallback, and go to
 * the backing file, which is stable while the segment is open.
 */
#include "server/node.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <unistd.h>

/*
 * What a write by one without CAP_FSETID takes away, when the kernel says
 * so (FUSE_HANDLE_KILLPRIV_V2).  Without that flag the kernel does it
 * itself for writes.
 */
static int kill_on_write(fuse_req_t req, struct seg_inode *ino,
			 const struct fuse_file_info *fi)
{
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	return fi->kill_suidgid ? inode_kill_privs(req, ino) : 0;
#else
	(void)req;
	(void)ino;
	(void)fi;
	return 0;
#endif
}

/*
 * The same for an open with O_TRUNC (FUSE_CAP_ATOMIC_O_TRUNC: the kernel
 * sends no truncate of its own).  Without FUSE_HANDLE_KILLPRIV_V2 to tell
 * us, we ask /proc whether the caller has CAP_FSETID, only for a file
 * that has something to lose.
 */
static void kill_on_trunc(fuse_req_t req, struct seg_inode *ino,
			  const struct fuse_file_info *fi)
{
	struct caller c;
	struct stat st;
	size_t len;

#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	if (fs_of(req)->killpriv) {
		kill_on_write(req, ino, fi);
		return;
	}
#else
	(void)fi;
#endif
	if (seg_getattr(fs_of(req)->ns, ino, &st) < 0)
		return;
	if (!(st.st_mode & (S_ISUID | S_ISGID)) &&
	    seg_getxattr(fs_of(req)->ns, ino, "security.capability", NULL, 0, &len) < 0)
		return;
	if (caller_query(req, st.st_gid, &c) == 0 && caller_capable(&c, CAP_FSETID))
		return;
	inode_kill_privs(req, ino);
}

/* Fills the open reply for a handle whose inode has data path `backing`. */
static void set_open_flags(struct segfs *fs, struct fuse_file_info *fi, int backing)
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
	 * with EIO).  In a cached mount only the kernel changes a segment's
	 * data, so its page cache stays valid from one open to the next; not
	 * in a passthrough mount, where a file cached for a while (a setuid
	 * one) is written through passthrough opens in between.
	 */
	fi->keep_cache = backing == 0 && atomic_load(&fs->pt) == PT_OFF;
}

static void release_segment(struct segfs *fs, struct seg_inode *ino)
{
	seg_release(fs->ns, ino);
}

/*
 * The end of a create: `ino`, with one reference from the create, is open
 * if rc is 0 (data path `backing`, attributes *st).  Replies, and on
 * failure gives the open and the reference back.
 */
static void reply_created(fuse_req_t req, struct seg_inode *ino, int rc, int backing,
			  const struct stat *st, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e;

	if (rc < 0) {
		seg_forget(fs->ns, ino, 1);
		reply_err(req, rc);
		return;
	}
	set_open_flags(fs, fi, backing);
	fill_entry(fs, &e, ino, st);
	req_result(fs, e.ino, 0);
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The opener is gone: no RELEASE or FORGET will come for this. */
		release_segment(fs, ino);
		seg_forget(fs->ns, ino, 1);
	}
}

/*
 * A resent create or tmpfile whose first answer was made (its open and
 * reference stand): the same entry and data path again.
 */
static bool create_replayed(fuse_req_t req, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e;
	uint64_t a, b;
	struct node n;
	struct stat st;

	if (!req_replayed(&a, &b))
		return false;
	n = node_of(fs, a);
	if (n.ino == NULL || seg_getattr(fs->ns, n.ino, &st) < 0) {
		reply_err(req, -ESTALE);
		return true;
	}
	set_open_flags(fs, fi, seg_inode_backing(fs->ns, n.ino));
	fill_entry(fs, &e, n.ino, &st);
	fuse_reply_create(req, &e, fi);
	return true;
}

/*
 * A resent create whose segment a dead server made (its intent names it,
 * and the name leads to it): the references and open it took were given
 * back (server/request.h), so it is looked up and opened as the first
 * answer would have it.  True if so.
 */
static bool created_already(fuse_req_t req, struct node *dir, const char *name,
			    struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct stat st;
	struct seg_inode *ino = req_made(fs, dir->ino, name, RG_INTENT_NEW, &st);
	int rc, backing = 0;

	if (ino == NULL)
		return false;
	crash_point("create");
	/* It was new: nothing to truncate. */
	rc = seg_open(fs->ns, ino, fi->flags & ~O_TRUNC, &backing);
	if (rc == 0)
		rc = seg_getattr(fs->ns, ino, &st);
	reply_created(req, ino, rc, backing, &st, fi);
	return true;
}

void file_create(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino;
	struct stat st;
	bool created;
	int rc, backing = 0;

	if (create_replayed(req, fi) || created_already(req, dir, name, fi))
		return;
	rc = seg_create(fs->ns, dir->ino, name, mode, &who,
			(fi->flags & O_EXCL) ? SEG_CREATE_EXCL : 0, &ino, &st, &created);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (created)
		crash_point("create");
	/* An existing segment opened with O_TRUNC is truncated by seg_open. */
	rc = seg_open(fs->ns, ino, created ? fi->flags & ~O_TRUNC : fi->flags, &backing);
	if (rc == 0 && !created && (fi->flags & O_TRUNC)) {
		kill_on_trunc(req, ino, fi);
		rc = seg_getattr(fs->ns, ino, &st);
		if (rc < 0)
			release_segment(fs, ino);
	}
	reply_created(req, ino, rc, backing, &st, fi);
}

/*
 * open(O_TMPFILE): a segment with no name, open.  The kernel lets it be
 * linked (linkat, /proc/self/fd) unless O_EXCL said otherwise; if nothing
 * names it, it goes with its last close.  A resent one whose answer was
 * lost made one that nothing holds now (its references were given back):
 * it is gone, and this makes another.
 */
void file_tmpfile(fuse_req_t req, struct node *dir, mode_t mode, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino;
	struct stat st;
	int rc, backing = 0;

	if (create_replayed(req, fi))
		return;
	rc = seg_tmpfile(fs->ns, dir->ino, mode, &who, &ino, &st);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	rc = seg_open(fs->ns, ino, fi->flags & ~O_TRUNC, &backing);
	reply_created(req, ino, rc, backing, &st, fi);
}

static void file_open(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	uint64_t a, b;
	int backing, rc;

	if (req_replayed(&a, &b)) {
		set_open_flags(fs, fi, seg_inode_backing(fs->ns, n->ino));
		fuse_reply_open(req, fi);
		return;
	}
	rc = seg_open(fs->ns, n->ino, fi->flags, &backing);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (fi->flags & O_TRUNC)
		kill_on_trunc(req, n->ino, fi);
	crash_point("open");
	set_open_flags(fs, fi, backing);
	req_result(fs, 0, 0);
	if (fuse_reply_open(req, fi) != 0)
		release_segment(fs, n->ino);
}

static void file_release(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	uint64_t a, b;

	(void)fi;
	/*
	 * Released already by a server that died before answering: its
	 * count shows it (one fewer open), or its answer does.
	 */
	if (!req_replayed(&a, &b) &&
	    req_net(RG_INODES, seg_inode_record(n->ino), RI_NOPEN) >= 0)
		release_segment(fs, n->ino);
	req_result(fs, 0, 0);
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

	/* A write past the reservation takes the pages first, or fails whole. */
	w = seg_reserve(fs_of(req)->ns, n->ino, (uint64_t)off + out.buf[0].size);
	if (w == 0)
		w = kill_on_write(req, n->ino, fi);
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
	(void)fi;
	/*
	 * The kernel cannot check the inode flags (FUSE does not tell it them):
	 * seg_fallocate does, and counts what it allocates against the limit.
	 */
	reply_err(req, seg_fallocate(fs_of(req)->ns, n->ino, mode, off, len));
}

/*
 * copy_file_range(2) between segments, in the private tmpfs.  Without it
 * the kernel copies through reads and writes of its own, and its check
 * that the destination is not immutable never fires for a FUSE file (it
 * knows no inode flags of ours): tmpfs answers EPERM there.  A source
 * that is no segment (a lists/ view) is left to the kernel that way.
 */
static void file_copy_range(fuse_req_t req, struct node *in, off_t off_in, struct node *out,
			    off_t off_out, size_t len)
{
	size_t copied;
	int rc;

	if (in->ino == NULL) {
		reply_err(req, -EOPNOTSUPP);
		return;
	}
	rc = seg_copy_range(fs_of(req)->ns, in->ino, off_in, out->ino, off_out, len, &copied);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_write(req, copied);
}

static void file_lseek(fuse_req_t req, struct node *n, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	off_t r;
	int rc;

	(void)fi;
	/* SEEK_DATA and SEEK_HOLE: the backing file knows its holes. */
	rc = seg_lseek(fs_of(req)->ns, n->ino, off, whence, &r);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_lseek(req, r);
}

const struct node_ops file_ops = {
	.kind = "segment",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.statx = inode_statx,
	.setattr = inode_setattr,
	.open = file_open,
	.read = file_read,
	.write_buf = file_write_buf,
	.release = file_release,
	.fallocate = file_fallocate,
	.lseek = file_lseek,
	.copy_range = file_copy_range,
	.ioctl = inode_ioctl,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
