/*
 * fuse-floor: the least a FUSE daemon can do for the C lifecycle of
 * segfs-bench (open(O_CREAT|O_EXCL) + ftruncate + mmap + touch + munmap +
 * close + unlink), so that scripts/bench can tell what FUSE itself costs on
 * a machine from what segfs adds to it.
 *
 *   fuse-floor [-o nodefault_permissions] [libfuse options] MOUNTPOINT
 *
 * It keeps no state: every name is missing (LOOKUP says so, with a cached
 * negative entry), CREATE hands out a new node id on one memfd that was
 * registered as a passthrough backing file once, SETATTR and GETATTR answer
 * from constants, UNLINK and RELEASE succeed.  The kernel sends it the
 * same requests it sends segfs (the lifecycle is LOOKUP, CREATE, SETATTR,
 * two GETATTRs of the root, UNLINK, then RELEASE and FORGET), so the
 * difference is segfs's own work.  With -o nodefault_permissions the kernel
 * leaves permission checks to the daemon, which this one skips: the two
 * GETATTRs of the root, which the kernel needs for its checks, go away.
 *
 * Nothing else works on it.  It is a measuring stick, not a filesystem.
 */
#define FUSE_USE_VERSION 317

#include <fuse_lowlevel.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct floor {
	int fd;                        /* the one backing file */
	_Atomic int backing;           /* its id, once registered; 0 before */
	atomic_ulong next_ino;
};

static struct floor *floor_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill(struct stat *st, fuse_ino_t n, off_t size)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (n == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0777;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = size;
	}
}

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* As segfs: passthrough, and no splice reads (see server/ops.c). */
	fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH);
	fuse_unset_feature_flag(conn, FUSE_CAP_SPLICE_READ);
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .ino = 0, .entry_timeout = 86400 };

	(void)parent;
	(void)name;
	fuse_reply_entry(req, &e);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill(&st, n, 4096);
	fuse_reply_attr(req, &st, 1.0);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t n, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill(&st, n, (valid & FUSE_SET_ATTR_SIZE) ? attr->st_size : 0);
	fuse_reply_attr(req, &st, 1.0);
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct floor *f = floor_of(req);
	struct fuse_entry_param e = { .entry_timeout = 86400, .attr_timeout = 1.0 };
	int id = atomic_load(&f->backing);

	(void)parent;
	(void)name;
	(void)mode;
	/*
	 * Racing first creates may each register the file; the kernel lets
	 * inodes share a backing file, so any of the ids will do.
	 */
	if (id == 0) {
		id = fuse_passthrough_open(req, f->fd);
		if (id <= 0) {
			fuse_reply_err(req, EIO);
			return;
		}
		atomic_store(&f->backing, id);
	}
	e.ino = atomic_fetch_add(&f->next_ino, 1);
	fill(&e.attr, e.ino, 0);
	fi->backing_id = id;
	fi->noflush = 1;
	fi->keep_cache = 0;
	fuse_reply_create(req, &e, fi);
}

static void ff_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent;
	(void)name;
	fuse_reply_err(req, 0);
}

static void ff_release(fuse_req_t req, fuse_ino_t n, struct fuse_file_info *fi)
{
	(void)n;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ff_forget(fuse_req_t req, fuse_ino_t n, uint64_t nlookup)
{
	(void)n;
	(void)nlookup;
	fuse_reply_none(req);
}

static void ff_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	(void)count;
	(void)f;
	fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.create = ff_create,
	.unlink = ff_unlink,
	.release = ff_release,
	.forget = ff_forget,
	.forget_multi = ff_forget_multi,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts o = { 0 };
	struct floor f = { .next_ino = 2 };
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	int nodp = 0, ret = 1;
	const struct fuse_opt spec[] = {
		{ "nodefault_permissions", 0, 1 },
		FUSE_OPT_END
	};

	if (fuse_opt_parse(&args, &nodp, spec, NULL) != 0 ||
	    fuse_parse_cmdline(&args, &o) != 0 || o.mountpoint == NULL) {
		fprintf(stderr, "usage: fuse-floor [-o nodefault_permissions] MOUNTPOINT\n");
		goto out_args;
	}
	f.fd = memfd_create("fuse-floor", MFD_CLOEXEC);
	if (f.fd < 0 || ftruncate(f.fd, 1 << 20) < 0) {
		perror("fuse-floor: memfd");
		goto out_args;
	}
	if (!nodp && fuse_opt_add_arg(&args, "-odefault_permissions") != 0)
		goto out_fd;
	se = fuse_session_new(&args, &ops, sizeof(ops), &f);
	if (se == NULL)
		goto out_fd;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, o.mountpoint) != 0)
		goto out_signals;
	fprintf(stderr, "fuse-floor: mounted on %s%s\n", o.mountpoint,
		nodp ? " (no default_permissions)" : "");
	lc = fuse_loop_cfg_create();
	if (lc != NULL)
		ret = fuse_session_loop_mt(se, lc) < 0;
	fuse_loop_cfg_destroy(lc);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fd:
	close(f.fd);
out_args:
	free(o.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
