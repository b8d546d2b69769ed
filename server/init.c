/*
 * The connection: what segfs asks the kernel for, and refuses, at INIT.
 */
#include "server/segfs.h"

#include <stdio.h>

/*
 * libfuse 3.17 keeps the wanted features in 64-bit want_ext and treats a
 * change to both it and the legacy 32-bit want as a conflict, so each
 * version gets exactly one of the two APIs.
 */
bool want(struct fuse_conn_info *conn, uint64_t flag)
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

void unwant(struct fuse_conn_info *conn, uint64_t flag)
{
#ifdef FUSE_CAP_PASSTHROUGH
	fuse_unset_feature_flag(conn, flag);
#else
	conn->want &= ~(unsigned)flag;
#endif
}

void segfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct segfs *fs = userdata;
	const char *why;

	/* What a server taking over compares its own INIT with (server/takeover.c). */
	fs->conn = conn;
	/* chattr on directories too (server/inode.c: inode_ioctl). */
	want(conn, FUSE_CAP_IOCTL_DIR);
	/*
	 * File handles that outlive the kernel's inode, as tmpfs's do: node ids
	 * are inode numbers, found again by a LOOKUP of "." (export_lookup).
	 */
	want(conn, FUSE_CAP_EXPORT_SUPPORT);
	/*
	 * POSIX ACLs, enforced by the kernel (which keeps default_permissions
	 * on); the daemon keeps them and the mode in step and makes new inodes
	 * inherit them, so it applies the umask itself (DONT_MASK): not where a
	 * default ACL says otherwise.
	 */
	fs->posix_acl = fs->opts->xattr != XATTR_OFF && want(conn, FUSE_CAP_POSIX_ACL);
	fs->dont_mask = fs->posix_acl && want(conn, FUSE_CAP_DONT_MASK);
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	/*
	 * Without it the kernel asks for security.capability before every
	 * write() and truncate, passthrough writes included (about 20 us
	 * each here); with it the kernel asks once per inode until its
	 * attributes are next refreshed (S_NOSEC), and tells us when a write,
	 * truncate or chown by one without CAP_FSETID must drop setuid and
	 * setgid (server/file.c: the passthrough writes it cannot tell us of).
	 */
	fs->killpriv = want(conn, FUSE_CAP_HANDLE_KILLPRIV_V2);
#endif
	/*
	 * FUSE_NOTIFY_INC_EPOCH (protocol 7.44, Linux 6.16): the kernel
	 * revalidates every name it caches at its next use, and takes no lock
	 * to be told so (server/views.c: why that matters, and how a libfuse
	 * older than 3.18 sends it).  proto_minor is the kernel's own.
	 */
	fs->epoch = conn->proto_major > 7 || (conn->proto_major == 7 && conn->proto_minor >= 44);
	/*
	 * O_TRUNC arrives with OPEN instead of costing a SETATTR first (and
	 * lists/ needs it so: the kernel's separate truncate would not say
	 * which handle it is for).  server/file.c drops setuid and setgid then.
	 */
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
	why = passthrough_why_not(fs);
#ifdef FUSE_CAP_PASSTHROUGH
	if (why == NULL && !want(conn, FUSE_CAP_PASSTHROUGH))
		why = "the kernel does not offer FUSE passthrough (needs Linux >= 6.9)";
#endif
	if (why != NULL)
		passthrough_off(fs, why);
}
