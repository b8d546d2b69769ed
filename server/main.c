/*
 * segfs: every regular file of the mount is a shared-memory segment.
 *
 * main() checks everything it can before mounting (options, mount point,
 * /dev/fuse) so that mistakes give one line and exit status 1 while still
 * in the foreground; mounts; serves until unmount or SIGINT/SIGTERM/SIGHUP;
 * then frees every segment and exits 0.
 */
#include "server/segfs.h"
#include "server/node.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fuse_log.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

/* libfuse's log levels are syslog's, number for number. */
_Static_assert(FUSE_LOG_EMERG == LOG_EMERG && FUSE_LOG_ERR == LOG_ERR &&
	       FUSE_LOG_DEBUG == LOG_DEBUG, "fuse_log levels are syslog levels");

/* Where libfuse's messages and ours go once the daemon has detached. */
static void log_to_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

static void print_version(void)
{
	printf("segfs %s\nlibfuse %s (built against %d.%d)\npassthrough: %s\nio-uring: %s\n",
	       SEGFS_VERSION, fuse_pkgversion(), FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION,
#ifdef FUSE_CAP_PASSTHROUGH
	       "compiled in",
#else
	       "not available (libfuse < 3.17)",
#endif
#ifdef FUSE_CAP_OVER_IO_URING
	       "-o io_uring (libfuse >= 3.18)"
#else
	       "not available (libfuse < 3.18)"
#endif
	);
}

/* Refuses a mount point that is missing or not a directory, in one line. */
static int check_mountpoint(const char *mnt)
{
	struct stat st;

	if (stat(mnt, &st) < 0) {
		fprintf(stderr, "segfs: mount point %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "segfs: mount point %s is not a directory\n", mnt);
		return -1;
	}
	return 0;
}

static int check_fuse_device(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "segfs: cannot use /dev/fuse: %s\n", strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Segments' backing files are held open in this process, up to a budget
 * (core/ns.h: fd_budget); memfds each need one.  Raise the file limit as
 * far as allowed: to fs.nr_open when privileged, else to the hard limit.
 * Returns the budget: the limit, less some descriptors for libfuse and the
 * process itself.
 */
static uint64_t raise_fd_limit(void)
{
	struct rlimit rl;
	unsigned long long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f != NULL) {
		if (fscanf(f, "%llu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (nr_open > rl.rlim_max) {
		struct rlimit want = { .rlim_cur = nr_open, .rlim_max = nr_open };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > 128 ? (uint64_t)rl.rlim_cur - 64 : 64;
}

/*
 * Whether passthrough works can only be learnt once the kernel has taken
 * our INIT reply, which happens inside the session loop.  This thread
 * waits for that by stat()ing the mount point (the kernel holds any
 * request until INIT is done), then probes and reports the data path.
 * That stat is the first GETATTR of the root, which also tells how
 * requests reach us: once INIT has accepted io-uring, the kernel holds
 * requests until the rings are registered, so it comes through them.
 */
static void *announce(void *arg)
{
	struct segfs *fs = arg;
	struct stat st;
	enum pt_state pt;
	char transport[200], backing[120];
	int why;

	if (stat(fs->opts->mountpoint, &st) < 0)
		return NULL;
	if (atomic_load(&fs->transport) == TRANSPORT_URING)
		snprintf(transport, sizeof(transport), "io-uring");
	else if (fs->opts->io_uring)
		snprintf(transport, sizeof(transport), "/dev/fuse (io-uring: %s)",
			 fs->uring_reason[0] != '\0' ? fs->uring_reason
			 : "libfuse could not start it, see above");
	else
		snprintf(transport, sizeof(transport), "/dev/fuse");
	if (seg_ns_backing(fs->ns, &why) == SEG_BACKING_TMPFS) {
		const char *huge = seg_ns_huge(fs->ns, &why);

		if (why == 0)
			snprintf(backing, sizeof(backing), "tmpfs (huge=%s)", huge);
		else
			snprintf(backing, sizeof(backing), "tmpfs (huge=%s: the kernel refused "
				 "huge=%s: %s)", huge, fs->opts->huge != NULL ? fs->opts->huge
				 : "within_size", strerror(-why));
	}
	else if (why == 0)
		snprintf(backing, sizeof(backing), "memfd (-o memfd)");
	else
		snprintf(backing, sizeof(backing), "memfd (no private tmpfs: %s)", strerror(-why));
	pt = segfs_probe_passthrough(fs);
	/*
	 * fuse_log: stderr in the foreground, syslog once daemonized.  The
	 * transport and the backing come first because a data path's reason
	 * may hold parentheses.
	 */
	if (pt == PT_OFF)
		fuse_log(FUSE_LOG_NOTICE, "segfs: mounted on %s, transport: %s, backing: %s, "
			 "data path: fallback (%s)\n",
			 fs->opts->mountpoint, transport, backing, fs->pt_reason);
	else
		fuse_log(FUSE_LOG_NOTICE, "segfs: mounted on %s, transport: %s, backing: %s, "
			 "data path: passthrough\n", fs->opts->mountpoint, transport, backing);
	if (fs->opts->foreground && isatty(STDERR_FILENO))
		fprintf(stderr, "segfs: stop with Ctrl-C or: fusermount3 -u %s\n",
			fs->opts->mountpoint);
	return NULL;
}

int main(int argc, char **argv)
{
	struct segfs_opts o;
	struct segfs fs = { .opts = &o, .pt_lock = PTHREAD_MUTEX_INITIALIZER };
	struct seg_ns_config cfg = { 0 };
	struct fuse_lowlevel_ops ops;
	pthread_t tid;
	bool announcing = false;
	int rc, ret = 1;

	if (opts_parse(argc, argv, &o) < 0)
		return 1;
	if (o.show_help) {
		opts_help(argv[0]);
		opts_free(&o);
		return 0;
	}
	if (o.show_version) {
		print_version();
		opts_free(&o);
		return 0;
	}
	if (check_mountpoint(o.mountpoint) < 0 || check_fuse_device() < 0)
		goto out_opts;

	handles_init(&fs.handles);
	cfg.size_limit = o.size;
	cfg.root_mode = o.root_mode;
	cfg.memfd = o.memfd;
	/*
	 * Huge pages where a segment is big enough to fill them: a fresh
	 * 2 GiB segment fills in half the time with them on these machines,
	 * and within_size never gives a segment more than its size.
	 */
	cfg.huge = o.huge != NULL ? o.huge : "within_size";
	/* 0: as tmpfs, and with memfds no more than the budget (core/ns.h). */
	cfg.nr_segments = o.nr_segments;
	cfg.fd_budget = raise_fd_limit();
	rc = seg_ns_new(&cfg, &fs.ns);
	if (rc < 0) {
		fprintf(stderr, "segfs: %s\n", strerror(-rc));
		goto out_opts;
	}
	rc = lv_new(fs.ns, o.lists_name != NULL ? o.lists_name : "lists", &fs.lists);
	if (rc < 0) {
		fprintf(stderr, "segfs: lists/: %s\n", strerror(-rc));
		goto out_ns;
	}
	/*
	 * The kinds and their tables (server/node.h): by type, and lists/ its own,
	 * set on its inode as the layer above does.
	 */
	seg_ns_set_data_path(fs.ns, passthrough_attach, passthrough_detach, &fs);
	fs.dir_ops = &dir_ops;
	fs.file_ops = &file_ops;
	fs.symlink_ops = &symlink_ops;
	fs.special_ops = &special_ops;
	fs.view_ops = &view_ops;
	seg_inode_set_private(lv_dir(fs.lists), &lists_dir_ops);
	/* libfuse prints its own one-line reason when it refuses an option. */
	/*
	 * -o noxattr: no attribute requests at all, so libfuse answers ENOSYS
	 * and the kernel stops asking (server/xattr.c: the cost).
	 */
	ops = segfs_ops;
	if (o.xattr == XATTR_OFF) {
		ops.getxattr = NULL;
		ops.listxattr = NULL;
		ops.setxattr = NULL;
		ops.removexattr = NULL;
	}
	fs.se = fuse_session_new(&o.fuse, &ops, sizeof(ops), &fs);
	if (fs.se == NULL)
		goto out_lists;
	if (fuse_set_signal_handlers(fs.se) != 0)
		goto out_session;
	if (fuse_session_mount(fs.se, o.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(o.foreground) != 0)
		goto out_unmount;
	if (!o.foreground) {
		/* stderr is /dev/null now: what the daemon says goes to syslog. */
		openlog("segfs", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(log_to_syslog);
	}

	announcing = pthread_create(&tid, NULL, announce, &fs) == 0;

	if (o.singlethread) {
		rc = fuse_session_loop(fs.se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		if (lc == NULL)
			goto out_unmount;
		rc = fuse_session_loop_mt(fs.se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* libfuse >= 3.17 returns the signal number after a signal: a clean stop. */
	ret = rc < 0 ? 1 : 0;

out_unmount:
	fuse_session_unmount(fs.se);
	/* After the unmount its stat() returns at once; it uses fs.se. */
	if (announcing)
		pthread_join(tid, NULL);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_lists:
	/* The session is over: what the kernel did not release, we do. */
	handles_drop_all(&fs.handles, &fs);
	lv_free(fs.lists);
out_ns:
	seg_ns_free(fs.ns);
out_opts:
	opts_free(&o);
	return ret;
}
