/*
 * The FUSE low-level operations.
 *
 * Each handler does its work through core/ (which returns 0 or -errno) and
 * then replies exactly once: fuse_reply_err(req, -rc) on failure, the
 * operation's own reply on success.
 *
 * Node ids: the kernel's node id of an inode is its address (the root is
 * FUSE_ROOT_ID), as in libfuse's passthrough_ll.  The kernel only sends ids
 * it holds a lookup reference on, so the inode is alive whenever one
 * arrives.  st_ino is the inode's own small number.
 *
 * Data path: with passthrough, read, write and mmap of a segment go from
 * the kernel straight to its backing file and never reach this file; the
 * handlers for read and write serve the cached fallback only.
 */
#include "fs/segfs.h"
#include "fs/views.h"

#include "core/lists.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static struct segfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct seg_inode *inode_of(struct segfs *fs, fuse_ino_t n)
{
	return n == FUSE_ROOT_ID ? seg_ns_root(fs->ns) : (struct seg_inode *)(uintptr_t)n;
}

static fuse_ino_t nodeid_of(struct segfs *fs, struct seg_inode *ino)
{
	return ino == seg_ns_root(fs->ns) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)ino;
}

static void reply_err(fuse_req_t req, int rc)
{
	assert(rc <= 0);
	fuse_reply_err(req, -rc);
}

/* Seconds the kernel may keep an inode's attributes. */
static double attr_timeout(struct segfs *fs, const struct seg_inode *ino)
{
	/*
	 * A view's size and very existence follow bytes that any process may
	 * rewrite through a mapping, unseen by us: never cache them.
	 */
	return seg_inode_is_view(ino) ? 0 : fs->opts->attr_timeout;
}

static void fill_entry(struct segfs *fs, struct fuse_entry_param *e,
		       struct seg_inode *ino, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->attr = *st;
	/* No inode: an entry of lists/ listed without a reference. */
	if (ino == NULL)
		return;
	e->ino = nodeid_of(fs, ino);
	e->attr_timeout = attr_timeout(fs, ino);
	e->entry_timeout = seg_inode_is_view(ino) ? 0 : fs->opts->entry_timeout;
}

/* Replies to an operation that handed the kernel a new reference. */
static void reply_entry(fuse_req_t req, struct seg_inode *ino, const struct stat *st)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e;

	fill_entry(fs, &e, ino, st);
	/* An interrupted request's reply is lost: give the reference back. */
	if (fuse_reply_entry(req, &e) != 0)
		seg_forget(fs->ns, ino, 1);
}

/* ---- passthrough ------------------------------------------------------ */

/*
 * The backing-file ioctls of <linux/fuse.h> (kernel 6.9, protocol 7.40).
 * libfuse's fuse_passthrough_open() wraps the same call but needs a
 * request (the probe has none), logs every failure and may clobber errno,
 * which we need to tell "not permitted" (fall back for good) from a
 * per-file failure.  libfuse does not install fuse_kernel.h, and Debian
 * 12's kernel headers predate these, so the ABI is spelled out here.
 */
#ifdef FUSE_CAP_PASSTHROUGH
struct backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define BACKING_OPEN  _IOW(229, 1, struct backing_map)
#define BACKING_CLOSE _IOW(229, 2, uint32_t)

static int backing_open(struct segfs *fs, int fd)
{
	struct backing_map map = { .fd = fd };
	int id = ioctl(fuse_session_fd(fs->se), BACKING_OPEN, &map);

	return id > 0 ? id : id == 0 ? -EIO : -errno;
}

static void backing_close(struct segfs *fs, int id)
{
	uint32_t u = (uint32_t)id;

	ioctl(fuse_session_fd(fs->se), BACKING_CLOSE, &u);
}
#else
static int backing_open(struct segfs *fs, int fd)
{
	(void)fs;
	(void)fd;
	return -EOPNOTSUPP;
}

static void backing_close(struct segfs *fs, int id)
{
	(void)fs;
	(void)id;
}
#endif

/*
 * seg_sync_fn for cached mode: an open segment's newest bytes may be dirty
 * pages in the kernel.  Invalidating them makes the kernel write them back
 * first (launder), as WRITE requests that other loop threads serve, so
 * lists/ reads what processes wrote through their mappings.
 */
static void sync_segment(void *arg, const struct seg_inode *seg)
{
	struct segfs *fs = arg;

	fuse_lowlevel_notify_inval_inode(fs->se, nodeid_of(fs, (struct seg_inode *)seg), 0, 0);
}

/*
 * Moves the data path out of PT_UNKNOWN, once: to PT_ON, or to PT_OFF with
 * the reason.  The init thread and any opener may race here.
 */
static void pt_decide(struct segfs *fs, enum pt_state to, const char *why)
{
	pthread_mutex_lock(&fs->pt_lock);
	if (atomic_load(&fs->pt) == PT_UNKNOWN) {
		if (why != NULL)
			snprintf(fs->pt_reason, sizeof(fs->pt_reason), "%s", why);
		atomic_store(&fs->pt, to);
		/*
		 * Cached mode needs lists/ to sync segments first; a one-thread
		 * daemon cannot, since its thread would have to serve the writes
		 * it waits for (README: limits).
		 */
		if (to == PT_OFF && !fs->opts->singlethread)
			seg_ns_set_sync(fs->ns, sync_segment, fs);
	}
	pthread_mutex_unlock(&fs->pt_lock);
}

/* Switches the whole mount to the cached data path, saying why. */
static void pt_disable(struct segfs *fs, const char *why)
{
	pt_decide(fs, PT_OFF, why);
}

/*
 * seg_attach_fn: registers a segment's backing file (a file of the private
 * tmpfs, or a memfd) with the kernel as the FUSE backing file of its
 * inode.  EPERM means the daemon lacks CAP_SYS_ADMIN (or the kernel
 * refused passthrough at INIT): that will not change, so the whole mount
 * falls back.  Other errors fail this open only.
 */
static int attach(void *arg, int fd)
{
	struct segfs *fs = arg;
	int id;

	if (atomic_load(&fs->pt) == PT_OFF)
		return 0;
	id = backing_open(fs, fd);
	if (id > 0) {
		if (atomic_load(&fs->pt) == PT_UNKNOWN)
			pt_decide(fs, PT_ON, NULL);
		return id;
	}
	if (id == -EPERM && atomic_load(&fs->pt) == PT_UNKNOWN) {
		pt_disable(fs, "registering a backing file was refused: "
			   "Operation not permitted (passthrough needs CAP_SYS_ADMIN)");
		return 0;
	}
	return id;
}

enum pt_state segfs_probe_passthrough(struct segfs *fs)
{
	int memfd, id;

	if (atomic_load(&fs->pt) != PT_UNKNOWN)
		return atomic_load(&fs->pt);
	/*
	 * What the probe learns (EPERM or not) is the connection's, not the
	 * file's: a memfd stands in for either backing.
	 */
	memfd = memfd_create("segfs-probe", MFD_CLOEXEC);
	if (memfd < 0)
		return atomic_load(&fs->pt);
	id = attach(fs, memfd);
	if (id > 0)
		backing_close(fs, id);
	close(memfd);
	return atomic_load(&fs->pt);
}

/* Fills the open reply for a handle whose inode has data path `backing`. */
static void set_open_flags(struct fuse_file_info *fi, int backing)
{
	/*
	 * Segments need no FLUSH: close() then costs no round trip (lists/
	 * will want FLUSH, so it stays on for the connection).
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

/*
 * Closes one open handle of a segment.  The backing id lives until the
 * inode's last release: closing it any sooner races with openers that have
 * our reply but have not yet looked the id up (spec/fuse.md, "Lifetime of
 * backing ids").
 */
static void release_segment(struct segfs *fs, struct seg_inode *ino)
{
	int detach;

	seg_release(fs->ns, ino, &detach);
	if (detach > 0)
		backing_close(fs, detach);
}

/* ---- lifecycle -------------------------------------------------------- */

/*
 * libfuse 3.17 keeps the wanted features in 64-bit want_ext and treats a
 * change to both it and the legacy 32-bit want as a conflict, so each
 * version gets exactly one of the two APIs.
 */
static bool want(struct fuse_conn_info *conn, uint64_t flag)
{
#ifdef FUSE_CAP_PASSTHROUGH
	return fuse_set_feature_flag(conn, flag);
#else
	if (!(conn->capable & flag))
		return false;
	conn->want |= (unsigned)flag;
	return true;
#endif
}

static void unwant(struct fuse_conn_info *conn, uint64_t flag)
{
#ifdef FUSE_CAP_PASSTHROUGH
	fuse_unset_feature_flag(conn, flag);
#else
	conn->want &= ~(unsigned)flag;
#endif
}

#ifdef FUSE_CAP_PASSTHROUGH
/*
 * Whether this process holds CAP_SYS_ADMIN, which registering a backing
 * file needs (in the initial user namespace); read from CapEff rather than
 * attempting the ioctl, so that the fallback can say why.
 */
static bool has_sys_admin(void)
{
	unsigned long long eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool found = false;

	if (f == NULL)
		return true;   /* cannot tell: let the ioctl decide */
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return !found || (eff >> 21) & 1;   /* CAP_SYS_ADMIN is 21 */
}
#endif

static void segfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct segfs *fs = userdata;

	/* O_TRUNC arrives with OPEN instead of costing a SETATTR first. */
	want(conn, FUSE_CAP_ATOMIC_O_TRUNC);
	/*
	 * Only the kernel changes segment data, so cached pages need not be
	 * dropped when mtime moves (which every write in cached mode does).
	 */
	unwant(conn, FUSE_CAP_AUTO_INVAL_DATA);
	/* Passthrough and the writeback cache exclude each other: never ask for it. */
	unwant(conn, FUSE_CAP_WRITEBACK_CACHE);
	/*
	 * Splicing requests out of /dev/fuse saves no copy here (a write's
	 * data is copied into the backing file either way), and libfuse 3.18
	 * sizes its pipe for 1 MiB + 4 KiB, beyond fs.pipe-max-size: without
	 * CAP_SYS_RESOURCE it then makes and drops a pipe for every request
	 * (pipe2, F_SETPIPE_SZ, reading pipe-max-size, close), measured at
	 * about a fifth of the daemon's time per request.
	 */
	unwant(conn, FUSE_CAP_SPLICE_READ);
#ifdef FUSE_CAP_OVER_IO_URING
	if (fs->opts->io_uring && !(conn->capable_ext & FUSE_CAP_OVER_IO_URING))
		snprintf(fs->uring_reason, sizeof(fs->uring_reason),
			 "the kernel does not offer it: it needs Linux >= 6.14 and "
			 "/sys/module/fuse/parameters/enable_uring set to Y");
#endif
#ifdef FUSE_CAP_PASSTHROUGH
	if (fs->opts->nopassthrough)
		pt_disable(fs, "-o nopassthrough");
	else if (!has_sys_admin())
		pt_disable(fs, "the daemon lacks CAP_SYS_ADMIN, which passthrough needs");
	else if (!want(conn, FUSE_CAP_PASSTHROUGH))
		pt_disable(fs, "the kernel does not offer FUSE passthrough (needs Linux >= 6.9)");
#else
	pt_disable(fs, fs->opts->nopassthrough ? "-o nopassthrough"
		   : "built against libfuse < 3.17, which has no passthrough");
#endif
}

/* ---- names ------------------------------------------------------------ */

static void segfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *dir = inode_of(fs, parent), *ino;
	struct stat st;
	int rc;

	if (seg_inode_is_lists(dir))
		seg_lists_sync(fs->ns, name);
	rc = seg_lookup(fs->ns, dir, name, &ino, &st);
	if (rc == 0) {
		reply_entry(req, ino, &st);
	} else if (rc == -ENOENT && fs->opts->negative_timeout > 0 &&
		   !seg_inode_is_lists(dir)) {
		/* A node id of 0 lets the kernel cache the absence. */
		struct fuse_entry_param e = { .ino = 0 };

		e.entry_timeout = fs->opts->negative_timeout;
		fuse_reply_entry(req, &e);
	} else {
		reply_err(req, rc);
	}
}

static void segfs_forget(fuse_req_t req, fuse_ino_t n, uint64_t nlookup)
{
	struct segfs *fs = fs_of(req);

	seg_forget(fs->ns, inode_of(fs, n), nlookup);
	fuse_reply_none(req);
}

static void segfs_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	struct segfs *fs = fs_of(req);

	for (size_t i = 0; i < count; i++)
		seg_forget(fs->ns, inode_of(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void segfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	struct segfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct seg_inode *ino;
	struct stat st;
	bool created, view;
	int rc;

	(void)rdev;
	/* Only regular files are segments; fifos, sockets and devices are not. */
	if (!S_ISREG(mode)) {
		reply_err(req, -EPERM);
		return;
	}
	rc = seg_create(fs->ns, inode_of(fs, parent), name, mode, ctx->uid, ctx->gid,
			ctx->pid, SEG_CREATE_EXCL, &ino, &st, &created);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	/*
	 * Once the reply is out, the kernel may forget `ino`, and a FORGET on
	 * another thread free it: ask before replying.
	 */
	view = seg_inode_is_view(ino);
	reply_entry(req, ino, &st);
	if (view)
		views_entry_changed(fs, name, NULL);
}

static void segfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct segfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct seg_inode *ino;
	struct stat st;
	int rc = seg_mkdir(fs->ns, inode_of(fs, parent), name, mode, ctx->uid, ctx->gid,
			   &ino, &st);

	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, ino, &st);
}

static void segfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	/* A symlink is not a segment; say so rather than ENOSYS. */
	reply_err(req, -EPERM);
}

static void segfs_link(fuse_req_t req, fuse_ino_t n, fuse_ino_t newparent,
		       const char *newname)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);
	struct stat st;
	int rc = seg_link(fs->ns, ino, inode_of(fs, newparent), newname, &st);

	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, ino, &st);
}

static void segfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *dir = inode_of(fs, parent);
	bool lists = seg_inode_is_lists(dir);   /* before the reply, as in mknod */
	int rc = seg_unlink(fs->ns, dir, name);

	reply_err(req, rc);
	if (rc == 0 && lists)
		views_entry_changed(fs, name, NULL);
}

static void segfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct segfs *fs = fs_of(req);

	reply_err(req, seg_rmdir(fs->ns, inode_of(fs, parent), name));
}

static void segfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned flags)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *dir = inode_of(fs, parent);
	bool lists = seg_inode_is_lists(dir);   /* before the reply, as in mknod */
	int rc = seg_rename(fs->ns, dir, name, inode_of(fs, newparent), newname, flags);

	reply_err(req, rc);
	if (rc == 0 && lists)
		views_entry_changed(fs, name, newname);
}

/* ---- attributes ------------------------------------------------------- */

static enum transport req_transport(fuse_req_t req)
{
#ifdef FUSE_CAP_OVER_IO_URING
	if (fuse_req_is_uring(req))
		return TRANSPORT_URING;
#else
	(void)req;
#endif
	return TRANSPORT_DEV;
}

static void segfs_getattr(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);
	struct stat st;
	int rc;

	(void)fi;
	if (n == FUSE_ROOT_ID && atomic_load_explicit(&fs->transport, memory_order_relaxed)
	    == TRANSPORT_UNKNOWN)
		atomic_store(&fs->transport, req_transport(req));
	if (seg_inode_is_view(ino))
		seg_view_sync(fs->ns, ino);
	rc = seg_getattr(fs->ns, ino, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, ino));
}

static void segfs_setattr(fuse_req_t req, fuse_ino_t n, struct stat *attr,
			  int valid, struct fuse_file_info *fi)
{
	static const struct { int fuse; unsigned seg; } map[] = {
		{ FUSE_SET_ATTR_MODE, SEG_SET_MODE },
		{ FUSE_SET_ATTR_UID, SEG_SET_UID },
		{ FUSE_SET_ATTR_GID, SEG_SET_GID },
		{ FUSE_SET_ATTR_SIZE, SEG_SET_SIZE },
		{ FUSE_SET_ATTR_ATIME, SEG_SET_ATIME },
		{ FUSE_SET_ATTR_MTIME, SEG_SET_MTIME },
		{ FUSE_SET_ATTR_ATIME_NOW, SEG_SET_ATIME_NOW },
		{ FUSE_SET_ATTR_MTIME_NOW, SEG_SET_MTIME_NOW },
		{ FUSE_SET_ATTR_CTIME, SEG_SET_CTIME },
	};
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);
	unsigned mask = 0;
	struct stat st;
	int rc;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fuse)
			mask |= map[i].seg;
	/* ftruncate() of an open view cuts the text it is writing. */
	if (seg_inode_is_view(ino) && (mask & SEG_SET_SIZE) && fi != NULL) {
		views_truncate(fi, attr->st_size);
		mask &= ~(unsigned)SEG_SET_SIZE;
	}
	rc = mask ? seg_setattr(fs->ns, ino, attr, mask, &st) : seg_getattr(fs->ns, ino, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, ino));
}

static void segfs_statfs(fuse_req_t req, fuse_ino_t n)
{
	struct segfs *fs = fs_of(req);
	struct statvfs sv;

	(void)n;
	seg_statfs(fs->ns, &sv);
	fuse_reply_statfs(req, &sv);
}

/* ---- open files ------------------------------------------------------- */

static void segfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct seg_inode *ino;
	struct stat st;
	bool created;
	int rc, backing;

	rc = seg_create(fs->ns, inode_of(fs, parent), name, mode, ctx->uid, ctx->gid,
			ctx->pid, (fi->flags & O_EXCL) ? SEG_CREATE_EXCL : 0,
			&ino, &st, &created);
	if (rc < 0)
		goto fail;
	if (seg_inode_is_view(ino)) {
		rc = views_open(fs, req, ino, fi, created, mode);
		if (rc < 0) {
			seg_forget(fs->ns, ino, 1);
			goto fail;
		}
		fill_entry(fs, &e, ino, &st);
		if (fuse_reply_create(req, &e, fi) != 0) {
			views_release(fs, ino, fi);
			seg_forget(fs->ns, ino, 1);
		}
		if (created)
			views_entry_changed(fs, name, NULL);
		return;
	}
	/* An existing segment opened with O_TRUNC is truncated by seg_open. */
	rc = seg_open(fs->ns, ino, created ? fi->flags & ~O_TRUNC : fi->flags,
		      attach, fs, &backing);
	if (rc < 0) {
		seg_forget(fs->ns, ino, 1);
		goto fail;
	}
	if (!created && (fi->flags & O_TRUNC))
		seg_getattr(fs->ns, ino, &st);
	set_open_flags(fi, backing);
	fill_entry(fs, &e, ino, &st);
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The opener is gone: no RELEASE or FORGET will come for this. */
		release_segment(fs, ino);
		seg_forget(fs->ns, ino, 1);
	}
	return;
fail:
	reply_err(req, rc);
}

static void segfs_open(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);
	int backing, rc;

	if (seg_inode_is_view(ino)) {
		rc = views_open(fs, req, ino, fi, false, 0600);
		if (rc < 0)
			reply_err(req, rc);
		else if (fuse_reply_open(req, fi) != 0)
			views_release(fs, ino, fi);
		return;
	}
	rc = seg_open(fs->ns, ino, fi->flags, attach, fs, &backing);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	set_open_flags(fi, backing);
	if (fuse_reply_open(req, fi) != 0)
		release_segment(fs, ino);
}

static void segfs_release(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);

	if (seg_inode_is_view(ino))
		views_release(fs, ino, fi);
	else
		release_segment(fs, ino);
	fuse_reply_err(req, 0);
}

static void segfs_read(fuse_req_t req, fuse_ino_t n, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (seg_inode_is_view(inode_of(fs, n))) {
		views_read(req, size, off, fi);
		return;
	}
	/* libfuse reads (or splices) straight from the backing file. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = seg_inode_fd(inode_of(fs, n));
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void segfs_write_buf(fuse_req_t req, fuse_ino_t n, struct fuse_bufvec *in,
			    off_t off, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t w;

	if (seg_inode_is_view(inode_of(fs, n))) {
		/* Views take text in memory: gather it first (it may be a pipe). */
		char *data = malloc(out.buf[0].size ? out.buf[0].size : 1);

		out.buf[0].mem = data;
		w = data != NULL ? fuse_buf_copy(&out, in, 0) : -ENOMEM;
		if (w < 0)
			reply_err(req, (int)w);
		else
			views_write(req, data, (size_t)w, off, fi);
		free(data);
		return;
	}
	/* A write past the reservation takes the pages first, or fails whole. */
	w = seg_reserve(fs->ns, inode_of(fs, n), (uint64_t)off + out.buf[0].size);
	if (w < 0) {
		reply_err(req, (int)w);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = seg_inode_fd(inode_of(fs, n));
	out.buf[0].pos = off;
	w = fuse_buf_copy(&out, in, 0);
	if (w < 0)
		reply_err(req, (int)w);
	else
		fuse_reply_write(req, (size_t)w);
}

static void segfs_flush(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = inode_of(fs, n);

	/* close() of a lists/ entry stores its text, or says why not. */
	if (seg_inode_is_view(ino))
		views_flush(fs, req, ino, fi);
	else
		fuse_reply_err(req, 0);   /* segments are opened noflush */
}

static void segfs_fsync(fuse_req_t req, fuse_ino_t n, int datasync,
			struct fuse_file_info *fi)
{
	(void)n;
	(void)datasync;
	(void)fi;
	/* Memory has nothing to sync to. */
	fuse_reply_err(req, 0);
}

static void segfs_fallocate(fuse_req_t req, fuse_ino_t n, int mode, off_t off,
			    off_t len, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);

	(void)fi;
	struct seg_inode *ino = inode_of(fs, n);
	int rc = 0;

	/* A view's text has no storage to reserve (its fd is -1). */
	if (seg_inode_is_view(ino))
		rc = -EOPNOTSUPP;
	/* Allocating counts against the size limit; punching a hole does not. */
	else if (!(mode & FALLOC_FL_PUNCH_HOLE) && off >= 0 && len > 0)
		rc = seg_reserve(fs->ns, ino, (uint64_t)off + (uint64_t)len);
	if (rc == 0 && fallocate(seg_inode_fd(ino), mode, off, len) < 0)
		rc = -errno;
	reply_err(req, rc);
}

static void segfs_lseek(fuse_req_t req, fuse_ino_t n, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	off_t r;

	(void)fi;
	/*
	 * Only SEEK_DATA and SEEK_HOLE come here; the backing file knows its
	 * holes.  A view has none to tell (and ENOSYS would turn lseek off for
	 * all).
	 */
	if (seg_inode_is_view(inode_of(fs, n))) {
		reply_err(req, -EINVAL);
		return;
	}
	r = lseek(seg_inode_fd(inode_of(fs, n)), off, whence);
	if (r < 0)
		reply_err(req, -errno);
	else
		fuse_reply_lseek(req, r);
}

/* ---- directories ------------------------------------------------------ */

static void segfs_opendir(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_dirh *dh;
	int rc = seg_opendir(fs->ns, inode_of(fs, n), &dh);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi) != 0)
		seg_releasedir(fs->ns, dh);
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

static void do_readdir(fuse_req_t req, fuse_ino_t n, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = { .req = req, .fs = fs_of(req), .size = size, .plus = plus };
	struct seg_dirh *dh = (struct seg_dirh *)(uintptr_t)fi->fh;
	int rc;

	b.p = malloc(size);
	if (b.p == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (off == 0 && seg_inode_is_lists(inode_of(b.fs, n)))
		seg_lists_sync(b.fs->ns, NULL);
	rc = seg_readdir(b.fs->ns, dh, (uint64_t)off, plus, dir_fill, &b);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, b.p, b.used);
	free(b.p);
}

static void segfs_readdir(fuse_req_t req, fuse_ino_t n, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	do_readdir(req, n, size, off, fi, false);
}

static void segfs_readdirplus(fuse_req_t req, fuse_ino_t n, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	do_readdir(req, n, size, off, fi, true);
}

static void segfs_releasedir(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);

	(void)n;
	seg_releasedir(fs->ns, (struct seg_dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void segfs_fsyncdir(fuse_req_t req, fuse_ino_t n, int datasync,
			   struct fuse_file_info *fi)
{
	segfs_fsync(req, n, datasync, fi);
}

const struct fuse_lowlevel_ops segfs_ops = {
	.init = segfs_init,
	.lookup = segfs_lookup,
	.forget = segfs_forget,
	.forget_multi = segfs_forget_multi,
	.getattr = segfs_getattr,
	.setattr = segfs_setattr,
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
	.lseek = segfs_lseek,
	.opendir = segfs_opendir,
	.readdir = segfs_readdir,
	.readdirplus = segfs_readdirplus,
	.releasedir = segfs_releasedir,
	.fsyncdir = segfs_fsyncdir,
	.getxattr = segfs_getxattr,
	.listxattr = segfs_listxattr,
	.setxattr = segfs_setxattr,
	.removexattr = segfs_removexattr,
};
