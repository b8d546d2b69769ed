/*
 * segfs-server: the server the supervisor (`segfs`, super/) runs, on a
 * connection the supervisor mounted (common/proto.h says how it starts).
 *
 * Three ways to start: the first server of a mount makes the namespace,
 * its state tmpfs and records, hands the supervisor what it must hold,
 * and answers the kernel's INIT; a server after a crash ("restart")
 * rebuilds the namespace from what the supervisor held, takes the
 * connection over and has the kernel send again what the dead one had
 * taken; an upgrade's server ("check") first says whether it can, and
 * takes over when told.  It serves until the connection ends (unmount),
 * SIGTERM/SIGINT/SIGHUP, or a handover.
 */
#include "server/segfs.h"
#include "server/loop.h"
#include "server/node.h"

#include "common/fdlimit.h"
#include "common/proto.h"
#include "core/lists.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fuse_log.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
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
	printf("segfs-server %s\nlibfuse %s (built against %d.%d)\npassthrough: %s\nio-uring: %s\n",
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

/*
 * Segments' backing files are held open in this process, up to a budget
 * (core/ns.h: fd_budget); memfds each need one.  The budget is the file
 * limit, raised as far as allowed, less some descriptors for libfuse and
 * the process itself.
 */
static uint64_t fd_budget(void)
{
	uint64_t limit = fdlimit_raise();

	return limit > 128 ? limit - 64 : 64;
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
	char transport[200], backing[120], line[PATH_MAX + 600];
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
		snprintf(line, sizeof(line), "segfs: mounted on %s, transport: %s, backing: %s, "
			 "data path: fallback (%s)", fs->opts->mountpoint, transport, backing,
			 fs->pt_reason);
	else
		snprintf(line, sizeof(line), "segfs: mounted on %s, transport: %s, backing: %s, "
			 "data path: passthrough", fs->opts->mountpoint, transport, backing);
	fuse_log(FUSE_LOG_NOTICE, "%s\n", line);
	/* Serving: the supervisor tells systemd (Type=notify). */
	keeper_say(&fs->keeper, P_READY, line);
	if (fs->opts->foreground && isatty(STDERR_FILENO))
		fprintf(stderr, "segfs: stop with Ctrl-C or: fusermount3 -u %s\n",
			fs->opts->mountpoint);
	return NULL;
}

/* ---- what the supervisor says, and signals ---------------------------- */

enum stop_reason { STOP_NONE, STOP_SIGNAL, STOP_HANDOVER };

static atomic_int stop_reason;
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static bool go;

/*
 * keeper_listen's: P_HANDOVER ends serving, P_GO starts it; 0, the
 * supervisor gone, ends the wait for P_GO.
 */
static void on_message(void *arg, int type)
{
	(void)arg;
	if (type == P_HANDOVER) {
		atomic_store(&stop_reason, STOP_HANDOVER);
		loop_stop();
	} else if (type == P_GO || type == 0) {
		pthread_mutex_lock(&go_lock);
		go = go || type == P_GO;
		pthread_cond_broadcast(&go_cond);
		pthread_mutex_unlock(&go_lock);
	}
}

/*
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken here:
 * the loop stops (the supervisor unmounts and releases).
 */
static void *signals(void *arg)
{
	sigset_t *set = arg;
	int sig;

	if (sigwait(set, &sig) == 0) {
		atomic_store(&stop_reason, STOP_SIGNAL);
		loop_stop();
	}
	return NULL;
}

/* ---- what outlives the server ----------------------------------------- */

/*
 * The state tmpfs: a private tmpfs of its own for the tree and the
 * records (not the segments': core/tree.h says why), attached nowhere.
 */
static int make_state_tmpfs(int *out)
{
	int fs = fsopen("tmpfs", FSOPEN_CLOEXEC), mnt, rc;

	if (fs < 0)
		return -errno;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", "0", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0)
		goto fail;
	close(fs);
	*out = mnt;
	return 0;
fail:
	rc = -errno;
	close(fs);
	return rc;
}

/* How many records: as many inodes as the mount may have, and some. */
static struct rg_params region_params(const struct segfs_opts *o)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	uint64_t inodes = o->nr_segments ? o->nr_segments
			  : pages > 1 ? (uint64_t)pages / 2 : 1ULL << 19;

	return (struct rg_params){ .inodes = inodes + 1024, .views = 1 << 16,
				   .handles = 1 << 16 };
}

/*
 * The pins records name, for the supervisor to keep (and close the
 * others): every live segment's.
 */
static int sync_pins(struct segfs *fs)
{
	uint64_t used = rg_used(fs->rg, RG_INODES), *keys, n = 0;
	int rc;

	keys = calloc(used ? used : 1, sizeof(*keys));
	if (keys == NULL)
		return -ENOMEM;
	for (uint64_t r = 0; r < used; r++) {
		const uint64_t *w = rg_rec(fs->rg, RG_INODES, r);

		if (w[RI_INO] != 0 && S_ISREG(w[RI_MODE]) && w[RI_PIN] != 0)
			keys[n++] = w[RI_PIN] - 1;
	}
	rc = keeper_sync(&fs->keeper, keys, n);
	free(keys);
	return rc;
}

static const char *opcode_name(uint32_t op)
{
	static const char *const names[] = {
		[1] = "LOOKUP", [2] = "FORGET", [3] = "GETATTR", [4] = "SETATTR",
		[5] = "READLINK", [6] = "SYMLINK", [8] = "MKNOD", [9] = "MKDIR",
		[10] = "UNLINK", [11] = "RMDIR", [12] = "RENAME", [13] = "LINK", [14] = "OPEN",
		[15] = "READ", [16] = "WRITE", [17] = "STATFS", [18] = "RELEASE", [20] = "FSYNC",
		[21] = "SETXATTR", [22] = "GETXATTR", [23] = "LISTXATTR", [24] = "REMOVEXATTR",
		[25] = "FLUSH", [26] = "INIT", [27] = "OPENDIR", [28] = "READDIR",
		[29] = "RELEASEDIR", [30] = "FSYNCDIR", [35] = "CREATE", [36] = "INTERRUPT",
		[39] = "IOCTL", [42] = "BATCH_FORGET", [43] = "FALLOCATE", [44] = "READDIRPLUS",
		[45] = "RENAME2", [46] = "LSEEK", [47] = "COPY_FILE_RANGE", [51] = "TMPFILE",
		[52] = "STATX",
	};

	return op < sizeof(names) / sizeof(names[0]) && names[op] != NULL ? names[op] : "?";
}

/* Tells the supervisor what the dead server was serving (rg_last_requests). */
static void report_resent(void *arg, uint64_t unique, uint32_t opcode, uint64_t nodeid,
			  const char *name)
{
	struct segfs *fs = arg;
	char line[200];

	(void)unique;
	if (name[0] != '\0')
		snprintf(line, sizeof(line), "%s '%s' in node %llu", opcode_name(opcode), name,
			 (unsigned long long)nodeid);
	else
		snprintf(line, sizeof(line), "%s of node %llu", opcode_name(opcode),
			 (unsigned long long)nodeid);
	keeper_say(&fs->keeper, P_RESENT, line);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Says why this server cannot go on, to the supervisor and the log. */
static int refuse(struct segfs *fs, const char *why)
{
	fuse_log(FUSE_LOG_ERR, "segfs-server: cannot take over: %s\n", why);
	keeper_say(&fs->keeper, P_FATAL, why);
	return PROTO_EXIT_REFUSE;
}

/* The format a server built for the tests may claim (SEGFS_TEST_FORMAT). */
static void test_format(void)
{
	const char *f = getenv("SEGFS_TEST_FORMAT");

	if (f != NULL && *f != '\0')
		rg_test_format(strtoul(f, NULL, 10));
}

/*
 * A session on the connection the supervisor mounted: libfuse is told
 * it is mounted already (/dev/fd/N), and the session takes `fd`.
 */
static struct fuse_session *start_session(struct segfs *fs, struct segfs_opts *o,
					  const struct fuse_lowlevel_ops *ops, int fd)
{
	struct fuse_session *se;
	char dev[32];

	if (fd < 0)
		return NULL;
	se = fuse_session_new(&o->fuse, ops, sizeof(*ops), fs);
	if (se == NULL) {
		close(fd);
		return NULL;
	}
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
	if (fuse_session_mount(se, dev) != 0) {
		fuse_session_destroy(se);
		close(fd);
		return NULL;
	}
	return se;
}

/* ---- main ----------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct segfs_opts o;
	struct segfs fs = { .opts = &o, .pt_lock = PTHREAD_MUTEX_INITIALIZER, .state = -1 };
	struct seg_ns_config cfg = { 0 };
	struct fuse_lowlevel_ops ops;
	const char *takeover = getenv("SEGFS_TAKEOVER");
	bool check = takeover != NULL && strcmp(takeover, "check") == 0;
	bool announcing = false, kept, own_rg = false;
	char why[300];
	double t0 = now_ms();
	pthread_t tid, sigtid;
	sigset_t sigs;
	int fuse_fd, rc, ret = 1;

	if (opts_parse(argc, argv, &o, getenv("SEGFS_MOUNTPOINT")) < 0)
		return PROTO_EXIT_USAGE;
	if (o.show_help) {
		opts_help("segfs");
		opts_free(&o);
		return 0;
	}
	if (o.show_version) {
		print_version();
		opts_free(&o);
		return 0;
	}
	fuse_fd = proto_env_fd("fuse");
	kept = keeper_init(&fs.keeper);
	if (fuse_fd < 0 || !kept) {
		fprintf(stderr, "segfs-server: run by segfs, which mounts and keeps what it "
			"needs (SEGFS_FDS and SEGFS_PINS are not set)\n");
		opts_free(&o);
		return PROTO_EXIT_USAGE;
	}
	fs.takeover = takeover != NULL && *takeover != '\0';
	/* Whatever happens to the supervisor happens to us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != fs.keeper.pid)
		return 1;
	if (getenv("SEGFS_SYSLOG") != NULL) {
		openlog("segfs", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(log_to_syslog);
	}
	test_format();
	crash_init(!fs.takeover);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rc = keeper_listen(&fs.keeper, on_message, &fs);
	if (rc < 0)
		goto out_opts;

	cfg.size_limit = o.size;
	cfg.root_mode = o.root_mode;
	cfg.root_uid_set = o.root_uid >= 0;
	cfg.root_uid = (uid_t)o.root_uid;
	cfg.root_gid_set = o.root_gid >= 0;
	cfg.root_gid = (gid_t)o.root_gid;
	cfg.memfd = o.memfd;
	/*
	 * Huge pages where a segment is big enough to fill them: a fresh
	 * 2 GiB segment fills in half the time with them on these machines,
	 * and within_size never gives a segment more than its size.
	 */
	cfg.huge = o.huge != NULL ? o.huge : "within_size";
	/* 0: as tmpfs, and with memfds no more than the budget (core/ns.h). */
	cfg.nr_segments = o.nr_segments;
	cfg.fd_budget = fd_budget();

	if (check) {
		/* An upgrade: first whether the saved state is ours to read. */
		fs.state = proto_env_fd("state");
		rc = fs.state < 0 ? -ENOENT : rg_check(fs.state, why, sizeof(why));
		if (rc < 0) {
			ret = refuse(&fs, fs.state < 0 ? "no saved state" : why);
			goto out_opts;
		}
	}
	if (fs.takeover) {
		fs.state = proto_env_fd("state");
		cfg.tmpfs = proto_env_fd("data");
		if (fs.state < 0 || (cfg.tmpfs < 0 && !o.memfd)) {
			ret = refuse(&fs, "the supervisor kept no state for a server to take over");
			goto out_opts;
		}
	} else if (o.norestart || make_state_tmpfs(&fs.state) < 0) {
		fs.state = -1;
	} else if (mkdirat(fs.state, "h", 0700) < 0) {
		/* h/: the texts of lists/'s open files (server/views.c). */
		close(fs.state);
		fs.state = -1;
	}
	if (fs.state >= 0) {
		cfg.state = fs.state;
		cfg.pins = &fs.keeper.pins;
	}
	ops = segfs_ops;
	/*
	 * -o noxattr: no attribute requests at all, so libfuse answers ENOSYS
	 * and the kernel stops asking (server/xattr.c: the cost).
	 */
	if (o.xattr == XATTR_OFF) {
		ops.getxattr = NULL;
		ops.listxattr = NULL;
		ops.setxattr = NULL;
		ops.removexattr = NULL;
	}
	if (check) {
		/*
		 * The INIT answered again, in a session of this process's own on
		 * a duplicate of the descriptor: what it agrees on is checked
		 * before the running server is asked to go.
		 */
		struct rg *probe = NULL;

		rc = rg_open_readonly(fs.state, &probe, why, sizeof(why));
		if (rc == 0) {
			fs.rg = probe;
			fs.probing = true;
			fs.se = start_session(&fs, &o, &ops, dup(fuse_fd));
			rc = fs.se != NULL ? takeover_init(&fs, why, sizeof(why)) : -EIO;
			fs.probing = false;
			if (fs.se == NULL)
				snprintf(why, sizeof(why), "libfuse refused the options");
			fuse_session_destroy(fs.se);
			fs.se = NULL;
			fs.rg = NULL;
			fs.conn = NULL;
			rg_close(probe);
		}
		if (rc < 0) {
			ret = refuse(&fs, why);
			goto out_opts;
		}
		keeper_say(&fs.keeper, P_COMPATIBLE, NULL);
		pthread_mutex_lock(&go_lock);
		while (!go && !fs.keeper.gone)
			pthread_cond_wait(&go_cond, &go_lock);
		pthread_mutex_unlock(&go_lock);
		if (!go)
			goto out_opts;
		t0 = now_ms();
	}
	fs.se = start_session(&fs, &o, &ops, fuse_fd);
	if (fs.se == NULL)
		goto out_opts;

	if (fs.takeover) {
		rc = rg_open(fs.state, &fs.rg, why, sizeof(why));
		if (rc < 0) {
			ret = refuse(&fs, why);
			goto out_session;
		}
		own_rg = true;
		cfg.rg = fs.rg;
		rc = seg_ns_rebuild(&cfg, &fs.ns);
		if (rc < 0) {
			snprintf(why, sizeof(why), "rebuilding the namespace: %s", strerror(-rc));
			ret = refuse(&fs, why);
			goto out_rg;
		}
		rc = lv_adopt(fs.ns, o.lists_name != NULL ? o.lists_name : "lists", &fs.lists);
	} else {
		if (fs.state >= 0) {
			struct rg_params p = region_params(&o);

			rc = rg_create(fs.state, &p, &fs.rg);
			if (rc < 0) {
				fprintf(stderr, "segfs-server: the region: %s\n", strerror(-rc));
				goto out_session;
			}
			own_rg = true;
			cfg.rg = fs.rg;
		}
		rc = seg_ns_new(&cfg, &fs.ns);
		if (rc < 0) {
			fprintf(stderr, "segfs-server: %s\n", strerror(-rc));
			goto out_rg;
		}
		if (fs.rg == NULL)
			fs.rg = seg_ns_region(fs.ns);
		rc = lv_new(fs.ns, o.lists_name != NULL ? o.lists_name : "lists", &fs.lists);
	}
	if (rc < 0) {
		fprintf(stderr, "segfs-server: lists/: %s\n", strerror(-rc));
		goto out_ns;
	}
	rc = handles_init(&fs.handles, fs.rg);
	if (rc < 0)
		goto out_lists;
	handles_set_adopt(&fs.handles, HK_DIR, dir_handle_adopt);
	handles_set_adopt(&fs.handles, HK_VFILE, vfile_adopt);
	handles_set_adopt(&fs.handles, HK_LISTS_DIR, lists_handle_adopt);
	/*
	 * The kinds and their tables (server/node.h): by type, and lists/ its
	 * own, set on its inode as the layer above does.
	 */
	seg_ns_set_data_path(fs.ns, passthrough_attach, passthrough_detach, &fs);
	fs.dir_ops = &dir_ops;
	fs.file_ops = &file_ops;
	fs.symlink_ops = &symlink_ops;
	fs.special_ops = &special_ops;
	fs.view_ops = &view_ops;
	seg_inode_set_private(lv_dir(fs.lists), &lists_dir_ops);

	if (!fs.takeover && fs.state >= 0) {
		/* Held by the supervisor from here on: a crash loses none of it. */
		rc = keeper_keep(&fs.keeper, PROTO_KEEP_STATE, fs.state);
		if (rc == 0 && seg_ns_tmpfs(fs.ns) >= 0)
			rc = keeper_keep(&fs.keeper, PROTO_KEEP_DATA, seg_ns_tmpfs(fs.ns));
		if (rc < 0)
			goto out_handles;
	}
	if (fs.state < 0)
		keeper_say(&fs.keeper, P_FRAGILE, o.norestart ? "-o norestart"
			   : "no state tmpfs (the server cannot make a tmpfs): segments are "
			   "memfds only it holds");
	else if (o.io_uring)
		keeper_say(&fs.keeper, P_FRAGILE, "-o io_uring: the rings die with the "
			   "server that registered them");

	if (fs.takeover) {
		rc = takeover_init(&fs, why, sizeof(why));
		if (rc < 0) {
			ret = refuse(&fs, why);
			goto out_handles;
		}
		passthrough_resume(&fs);
		takeover_sweep(&fs);
		rc = sync_pins(&fs);
		if (rc == 0) {
			rg_last_requests(fs.rg, report_resent, &fs);
			rc = takeover_resend(&fs);
		}
		if (rc < 0) {
			fprintf(stderr, "segfs-server: taking over: %s\n", strerror(-rc));
			goto out_handles;
		}
		snprintf(why, sizeof(why), "segfs: server %d took over %s (server %llu) in "
			 "%.1f ms: %llu inodes", (int)getpid(), o.mountpoint,
			 (unsigned long long)rg_generation(fs.rg), now_ms() - t0,
			 (unsigned long long)seg_ns_inode_count(fs.ns));
		fuse_log(FUSE_LOG_NOTICE, "%s\n", why);
		keeper_say(&fs.keeper, P_READY, why);
	} else {
		announcing = pthread_create(&tid, NULL, announce, &fs) == 0;
	}
	if (pthread_create(&sigtid, NULL, signals, &sigs) != 0)
		goto out_handles;
	pthread_detach(sigtid);

	rc = loop_run(&fs, o.singlethread);
	if (atomic_load(&stop_reason) == STOP_HANDOVER) {
		/*
		 * Every request read is answered, and the next server takes all
		 * of it as it is: nothing here may change a record now.
		 */
		keeper_say(&fs.keeper, P_STOPPED, NULL);
		_exit(0);
	}
	ret = rc < 0 ? 1 : 0;
	/* The end: what the kernel never released, we do. */
	handles_drop_all(&fs.handles, &fs);
out_handles:
	/* After the loop its stat() returns at once (the mount is going). */
	if (announcing)
		pthread_join(tid, NULL);
	handles_destroy(&fs.handles);
out_lists:
	lv_free(fs.lists);
out_ns:
	seg_ns_free(fs.ns);
out_rg:
	if (own_rg)
		rg_close(fs.rg);
out_session:
	fuse_session_destroy(fs.se);
out_opts:
	keeper_destroy(&fs.keeper);
	opts_free(&o);
	return ret;
}
