/*
 * What every inode of the namespace shares, whatever its kind: entry
 * replies, forget, getattr and setattr.
 */
#include "server/node.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

void fill_entry(struct segfs *fs, struct fuse_entry_param *e, struct seg_inode *ino,
		const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->attr = *st;
	e->ino = node_id(fs, ino);
	e->attr_timeout = fs->opts->attr_timeout;
	e->entry_timeout = fs->opts->entry_timeout;
}

void reply_entry(fuse_req_t req, struct seg_inode *ino, const struct stat *st)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e;

	fill_entry(fs, &e, ino, st);
	/* An interrupted request's reply is lost: give the reference back. */
	if (fuse_reply_entry(req, &e) != 0)
		seg_forget(fs->ns, ino, 1);
}

void reply_entry_replayed(fuse_req_t req, fuse_ino_t id)
{
	struct segfs *fs = fs_of(req);
	struct node n = node_of(fs, id);
	struct fuse_entry_param e;
	struct stat st;

	if (n.ino == NULL || seg_getattr(fs->ns, n.ino, &st) < 0) {
		reply_err(req, -ESTALE);
		return;
	}
	fill_entry(fs, &e, n.ino, &st);
	fuse_reply_entry(req, &e);
}

void inode_forget(struct segfs *fs, struct node *n, uint64_t nlookup)
{
	seg_forget(fs->ns, n->ino, nlookup);
}

void inode_getattr(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct stat st;
	int rc = seg_getattr(fs->ns, n->ino, &st);

	(void)fi;
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, fs->opts->attr_timeout);
}

/* statx: getattr with the birth time (only routed with libfuse >= 3.18). */
void inode_statx(fuse_req_t req, struct node *n, int flags, int mask,
		 struct fuse_file_info *fi)
{
#if SEGFS_HAVE_STATX
	struct segfs *fs = fs_of(req);
	struct timespec b = seg_inode_btime(n->ino);
	struct statx sx;
	struct stat st;
	int rc = seg_getattr(fs->ns, n->ino, &st);

	(void)flags;
	(void)mask;
	(void)fi;
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	memset(&sx, 0, sizeof(sx));
	sx.stx_mask = STATX_BASIC_STATS | STATX_BTIME;
	sx.stx_blksize = (uint32_t)st.st_blksize;
	sx.stx_nlink = (uint32_t)st.st_nlink;
	sx.stx_uid = st.st_uid;
	sx.stx_gid = st.st_gid;
	sx.stx_mode = (uint16_t)st.st_mode;
	sx.stx_ino = st.st_ino;
	sx.stx_size = (uint64_t)st.st_size;
	sx.stx_blocks = (uint64_t)st.st_blocks;
	sx.stx_atime.tv_sec = st.st_atim.tv_sec;
	sx.stx_atime.tv_nsec = (uint32_t)st.st_atim.tv_nsec;
	sx.stx_btime.tv_sec = b.tv_sec;
	sx.stx_btime.tv_nsec = (uint32_t)b.tv_nsec;
	sx.stx_ctime.tv_sec = st.st_ctim.tv_sec;
	sx.stx_ctime.tv_nsec = (uint32_t)st.st_ctim.tv_nsec;
	sx.stx_mtime.tv_sec = st.st_mtim.tv_sec;
	sx.stx_mtime.tv_nsec = (uint32_t)st.st_mtim.tv_nsec;
	sx.stx_rdev_major = major(st.st_rdev);
	sx.stx_rdev_minor = minor(st.st_rdev);
	fuse_reply_statx(req, 0, &sx, fs->opts->attr_timeout);
#else
	(void)n;
	(void)flags;
	(void)mask;
	(void)fi;
	reply_err(req, -ENOSYS);
#endif
}

unsigned setattr_mask(int valid)
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
		/*
		 * The kernel's FATTR_KILL_SUIDGID (FUSE_HANDLE_KILLPRIV_V2): a
		 * truncate or chown by one without CAP_FSETID.  libfuse passes
		 * it on under this name (the same bit).
		 */
		{ FUSE_SET_ATTR_KILL_SUID, SEG_SET_KILL_SUIDGID },
	};
	unsigned mask = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fuse)
			mask |= map[i].seg;
	return mask;
}

/*
 * The part of the kernel's setattr_should_drop_suidgid that needs to know
 * the caller: setgid on a file its group may not execute goes when the
 * caller is neither in the file's group nor CAP_FSETID.  Asked of /proc
 * only for such a file.
 */
static unsigned kill_sgid(fuse_req_t req, struct seg_inode *ino)
{
	struct caller c;
	struct stat st;

	if (seg_getattr(fs_of(req)->ns, ino, &st) < 0 ||
	    (st.st_mode & (S_ISGID | S_IXGRP)) != S_ISGID)
		return 0;
	if (caller_query(req, st.st_gid, &c) < 0)
		return SEG_SET_KILL_SGID;   /* cannot tell: as for an outsider */
	return !c.in_group && !caller_capable(&c, CAP_FSETID) ? SEG_SET_KILL_SGID : 0;
}

/*
 * An empty SETATTR.  FUSE passes on neither the ctime change of
 * chown(f, -1, -1) nor (with FUSE_HANDLE_KILLPRIV_V2) the setuid and
 * setgid it drops from a non-directory; and the kernel's file_remove_privs,
 * when a write must drop file capabilities (which it removes itself
 * beforehand), sends the same empty request.  Both change ctime.  Both
 * drop setuid and setgid as setattr_should_drop_suidgid says when the
 * caller lacks CAP_FSETID; with it a write keeps them and a chown drops
 * them, and the two cannot be told apart here: they are kept.
 */
static unsigned empty_setattr_kill(fuse_req_t req, struct seg_inode *ino)
{
	struct caller c;
	struct stat st;
	bool known;

	if (seg_getattr(fs_of(req)->ns, ino, &st) < 0 || S_ISDIR(st.st_mode) ||
	    !(st.st_mode & (S_ISUID | S_ISGID)))
		return 0;
	known = caller_query(req, st.st_gid, &c) == 0;
	if (known && caller_capable(&c, CAP_FSETID))
		return 0;
	/* Cannot tell: as for an outsider, who loses the most. */
	return SEG_SET_KILL_SUIDGID | (known && c.in_group ? 0 : SEG_SET_KILL_SGID);
}

int inode_kill_privs(fuse_req_t req, struct seg_inode *ino)
{
	struct stat attr, st;

	memset(&attr, 0, sizeof(attr));
	return seg_setattr(fs_of(req)->ns, ino, &attr, SEG_SET_KILL_SUIDGID | kill_sgid(req, ino),
			   &st);
}

void inode_setattr(fuse_req_t req, struct node *n, struct stat *attr, int valid,
		   struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	unsigned mask = setattr_mask(valid);
	struct stat st;
	int rc;

	if (mask & SEG_SET_KILL_SUIDGID)
		mask |= kill_sgid(req, n->ino);
	if (valid == 0)
		mask = SEG_SET_TOUCH | empty_setattr_kill(req, n->ino);
	/* ftruncate: an immutable file's open descriptor may still truncate. */
	if (fi != NULL)
		mask |= SEG_SET_FH;
	/*
	 * Sent again after a crash, it is done again: every value is set as
	 * the request says, whatever part of it was set before.
	 */
	rc = mask ? seg_setattr(fs->ns, n->ino, attr, mask, &st) : seg_getattr(fs->ns, n->ino, &st);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (mask != 0)
		crash_point("setattr");
	fuse_reply_attr(req, &st, fs->opts->attr_timeout);
}

/* ---- inode flags ------------------------------------------------------ */

_Static_assert(SEG_FL_IMMUTABLE == FS_IMMUTABLE_FL && SEG_FL_APPEND == FS_APPEND_FL &&
	       SEG_FL_NODUMP == FS_NODUMP_FL && SEG_FL_NOATIME == FS_NOATIME_FL,
	       "SEG_FL_* are <linux/fs.h>'s FS_*_FL");

/* The fsxattr flags (FS_IOC_FSGETXATTR) of ours, and back. */
static const struct { unsigned fl, xfl; } xflags[] = {
	{ SEG_FL_IMMUTABLE, FS_XFLAG_IMMUTABLE },
	{ SEG_FL_APPEND, FS_XFLAG_APPEND },
	{ SEG_FL_NODUMP, FS_XFLAG_NODUMP },
	{ SEG_FL_NOATIME, FS_XFLAG_NOATIME },
};

/*
 * chattr(1) and lsattr(1).  Since Linux 5.13 the kernel turns their
 * FS_IOC_GETFLAGS and FS_IOC_SETFLAGS (and FS_IOC_FS[GS]ETXATTR) into
 * ioctls of its own to us, on a file it opens for the purpose, with the
 * sizes of the kernel's structures; it has already checked who may set
 * which flag (owner, CAP_LINUX_IMMUTABLE).  The flags are tmpfs's four
 * (ns.h); others are EOPNOTSUPP to set, as on tmpfs, and other ioctls
 * ENOTTY.
 */
void inode_ioctl(fuse_req_t req, struct node *n, unsigned cmd, struct fuse_file_info *fi,
		 const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct segfs *fs = fs_of(req);
	unsigned flags = 0;
	struct fsxattr fx;
	int rc;

	(void)fi;
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC_FSGETXATTR:
		rc = seg_get_flags(fs->ns, n->ino, &flags);
		if (rc < 0)
			break;
		if (cmd == FS_IOC_GETFLAGS) {
			int out = (int)flags;

			if (out_bufsz < sizeof(out)) {
				rc = -EINVAL;
				break;
			}
			fuse_reply_ioctl(req, 0, &out, sizeof(out));
			return;
		}
		memset(&fx, 0, sizeof(fx));
		for (size_t i = 0; i < sizeof(xflags) / sizeof(xflags[0]); i++)
			if (flags & xflags[i].fl)
				fx.fsx_xflags |= xflags[i].xfl;
		if (out_bufsz < sizeof(fx)) {
			rc = -EINVAL;
			break;
		}
		fuse_reply_ioctl(req, 0, &fx, sizeof(fx));
		return;
	case FS_IOC_SETFLAGS:
		if (in_bufsz < sizeof(int)) {
			rc = -EINVAL;
			break;
		}
		memcpy(&flags, in_buf, sizeof(int));
		rc = seg_set_flags(fs->ns, n->ino, flags);
		break;
	case FS_IOC_FSSETXATTR:
		if (in_bufsz < sizeof(fx)) {
			rc = -EINVAL;
			break;
		}
		memcpy(&fx, in_buf, sizeof(fx));
		rc = 0;
		for (size_t i = 0; i < sizeof(xflags) / sizeof(xflags[0]); i++)
			if (fx.fsx_xflags & xflags[i].xfl) {
				flags |= xflags[i].fl;
				fx.fsx_xflags &= ~xflags[i].xfl;
			}
		/* What tmpfs does not keep (extent sizes, projects, other flags). */
		if (fx.fsx_xflags || fx.fsx_extsize || fx.fsx_projid || fx.fsx_cowextsize)
			rc = -EOPNOTSUPP;
		if (rc == 0)
			rc = seg_set_flags(fs->ns, n->ino, flags);
		break;
	default:
		rc = -ENOTTY;
		break;
	}
	/*
	 * A flag set is a ctime changed, and the kernel takes our ioctl's
	 * reply for no change of attributes: its cached ctime would hold
	 * until attr_timeout.  The notice drops attributes only (a negative
	 * offset), which takes none of the kernel's locks, so it is safe
	 * before the reply on any transport.
	 */
	if (rc == 0 && (cmd == FS_IOC_SETFLAGS || cmd == FS_IOC_FSSETXATTR))
		fuse_lowlevel_notify_inval_inode(fs->se, n->id, -1, 0);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}
