/*
 * Command line: `segfs [options] MOUNTPOINT` or `segfs SOURCE MOUNTPOINT`
 * (the form mount(8) uses for fuse.segfs).  Our own -o options are taken
 * out here; everything else (allow_other, auto_unmount, fsname=, ro, dev,
 * suid, ...) goes on to libfuse, which refuses what it does not know.
 */
#include "common/opts.h"

#include "core/name.h"

#include <ctype.h>
#include <errno.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_SIZE,
	KEY_NR_SEGMENTS,
	KEY_NR_INODES,
	KEY_UID,
	KEY_GID,
	KEY_CRASH_LOOP,
};

#define OPT(t, field, v) { t, offsetof(struct segfs_opts, field), v }

static const struct fuse_opt spec[] = {
	OPT("nopassthrough", nopassthrough, 1),
	OPT("passthrough", nopassthrough, 0),
	OPT("io_uring", io_uring, 1),
	OPT("noio_uring", io_uring, 0),
	OPT("entry_timeout=%lf", entry_timeout, 0),
	OPT("attr_timeout=%lf", attr_timeout, 0),
	OPT("negative_timeout=%lf", negative_timeout, 0),
	OPT("mode=%o", root_mode, 0),
	OPT("lists=%s", lists_name, 0),
	OPT("huge=%s", huge, 0),
	OPT("memfd", memfd, 1),
	OPT("norestart", norestart, 1),
	OPT("fdstore", fdstore, 1),
	OPT("restart", norestart, 0),
	OPT("noxattr", xattr, XATTR_OFF),
	OPT("xattr", xattr, XATTR_INSPECT),
	FUSE_OPT_KEY("size=", KEY_SIZE),
	FUSE_OPT_KEY("nr_segments=", KEY_NR_SEGMENTS),
	/* tmpfs's names, so that a /dev/shm line of fstab means the same here. */
	FUSE_OPT_KEY("nr_inodes=", KEY_NR_INODES),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	FUSE_OPT_KEY("crash_loop=", KEY_CRASH_LOOP),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_END
};

int opts_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	if (*end == '%') {
		long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

		if (end[1] != '\0' || v == 0 || v > 100 || pages < 1 || psize < 1)
			return -EINVAL;
		*out = (uint64_t)pages * (uint64_t)psize / 100 * v;
		return 0;
	}
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end != '\0' || v == 0 || v > (ULLONG_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "segfs: %s: %s (see segfs --help)\n", what, arg);
	return -1;
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct segfs_opts *o = data;
	const char *eq = strchr(arg, '=');

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (o->mountpoint == NULL) {
			o->mountpoint = strdup(arg);
		} else if (o->source == NULL) {
			/* Two words: the first was the SOURCE. */
			o->source = o->mountpoint;
			o->mountpoint = strdup(arg);
		} else {
			return bad("too many arguments", arg);
		}
		return o->mountpoint != NULL ? 0 : -1;
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		/* libfuse prints every request with -d; it implies -f. */
		o->debug = o->foreground = 1;
		return 1;
	case KEY_SINGLE:
		o->singlethread = 1;
		return 0;
	case KEY_SIZE:
		return opts_size(eq + 1, &o->size) == 0 ? 0 : bad("bad size", arg);
	case KEY_NR_SEGMENTS:
		return opts_size(eq + 1, &o->nr_segments) == 0 ? 0
			: bad("bad nr_segments", arg);
	case KEY_NR_INODES:
		/* tmpfs's 0 is no limit at all, which segfs does not have. */
		if (opts_size(eq + 1, &o->nr_segments) < 0 || o->nr_segments == 0)
			return bad("bad nr_inodes (a count of inodes; 0, no limit, is not "
				   "supported)", arg);
		return 0;
	case KEY_UID:
	case KEY_GID: {
		char *end;
		unsigned long long v;

		/* Numbers, as tmpfs takes them; (uid_t)-1 names nobody. */
		errno = 0;
		v = strtoull(eq + 1, &end, 10);
		if (errno != 0 || end == eq + 1 || *end != '\0' || v >= UINT32_MAX)
			return bad(key == KEY_UID ? "bad uid" : "bad gid", arg);
		if (key == KEY_UID)
			o->root_uid = (int64_t)v;
		else
			o->root_gid = (int64_t)v;
		return 0;
	}
	case KEY_CRASH_LOOP: {
		char *end;
		long n = strtol(eq + 1, &end, 10);
		double s = *end == '/' ? strtod(end + 1, &end) : 0;

		if (n < 1 || n > 1000 || !(s > 0) || *end != '\0')
			return bad("bad crash_loop (N/SECONDS)", arg);
		o->crash_deaths = (int)n;
		o->crash_window = s;
		return 0;
	}
	default:
		/* Everything else is libfuse's to accept or refuse. */
		return 1;
	}
}

int opts_parse(int argc, char **argv, struct segfs_opts *o, const char *mounted)
{
	char *abs, fsname[PATH_MAX + 16];

	memset(o, 0, sizeof(*o));
	o->root_uid = o->root_gid = -1;
	/* A server that dies 5 times in 30 s dies of a request it will always die of. */
	o->crash_deaths = 5;
	o->crash_window = 30;
	o->entry_timeout = 86400;
	o->attr_timeout = 1;
	o->negative_timeout = 86400;
	/* On success fuse_opt_parse leaves in o->fuse what proc kept. */
	o->fuse = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&o->fuse, o, spec, proc) != 0)
		goto fail;
	if (o->show_help || o->show_version)
		return 0;
	if (o->mountpoint == NULL) {
		fprintf(stderr, "segfs: no mount point given (usage: segfs [options] MOUNTPOINT)\n");
		goto fail;
	}
	if (o->entry_timeout < 0 || o->attr_timeout < 0 || o->negative_timeout < 0) {
		fprintf(stderr, "segfs: timeouts must not be negative\n");
		goto fail;
	}
	if (o->root_mode > 07777) {
		fprintf(stderr, "segfs: bad mode: %o (see segfs --help)\n", o->root_mode);
		goto fail;
	}
	if (o->huge != NULL && strcmp(o->huge, "never") != 0 && strcmp(o->huge, "always") != 0 &&
	    strcmp(o->huge, "within_size") != 0 && strcmp(o->huge, "advise") != 0) {
		fprintf(stderr, "segfs: bad huge: %s (never, always, within_size or advise)\n",
			o->huge);
		goto fail;
	}
	if (o->fdstore && (o->memfd || o->norestart)) {
		fprintf(stderr, "segfs: -o fdstore keeps the private tmpfs, which -o %s does "
			"not have\n", o->memfd ? "memfd" : "norestart");
		goto fail;
	}
	if (o->lists_name != NULL && seg_name_check(o->lists_name, NULL) < 0) {
		fprintf(stderr, "segfs: bad lists name: %s (see segfs --help)\n", o->lists_name);
		goto fail;
	}
#ifndef FUSE_CAP_OVER_IO_URING
	if (o->io_uring) {
		fprintf(stderr, "segfs: -o io_uring needs libfuse >= 3.18; this segfs is built against %d.%d\n",
			FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION);
		goto fail;
	}
#else
	if (o->io_uring && o->singlethread) {
		fprintf(stderr, "segfs: -s and -o io_uring exclude each other: io-uring serves requests on a thread per CPU\n");
		goto fail;
	}
	/* libfuse's own option: it sets up the rings after INIT. */
	if (o->io_uring && fuse_opt_add_arg(&o->fuse, "-oio_uring") != 0)
		goto fail;
#endif
	/*
	 * Without its trailing slashes: realpath() would stat a directory
	 * named so, and a mount whose server is gone (one systemd kept, for
	 * -o fdstore) answers no stat until ours runs.
	 */
	for (size_t n = strlen(o->mountpoint); n > 1 && o->mountpoint[n - 1] == '/'; n--)
		o->mountpoint[n - 1] = '\0';
	abs = mounted != NULL ? strdup(mounted) : realpath(o->mountpoint, NULL);
	if (abs == NULL) {
		fprintf(stderr, "segfs: mount point %s: %s\n", o->mountpoint, strerror(errno));
		goto fail;
	}
	free(o->mountpoint);
	o->mountpoint = abs;
	/*
	 * The kernel checks permissions (default_permissions) against the
	 * owners and modes segfs reports, as it does on tmpfs; the daemon
	 * checks none itself.  The mount shows up as fuse.segfs with the
	 * source as its name.
	 */
	snprintf(fsname, sizeof(fsname), "-ofsname=%s", o->source ? o->source : "segfs");
	if (fuse_opt_add_arg(&o->fuse, "-odefault_permissions,subtype=segfs") != 0 ||
	    fuse_opt_insert_arg(&o->fuse, 1, fsname) != 0)
		goto fail;
	return 0;
fail:
	opts_free(o);
	return -EINVAL;
}

void opts_free(struct segfs_opts *o)
{
	free(o->mountpoint);
	free(o->source);
	free(o->lists_name);
	free(o->huge);
	fuse_opt_free_args(&o->fuse);
	o->mountpoint = o->source = o->lists_name = o->huge = NULL;
}

void opts_help(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n"
	       "       %s SOURCE MOUNTPOINT [-o options]   (as mount -t fuse.segfs runs it)\n"
	       "\n"
	       "Every regular file in the mount is a shared-memory segment (a file\n"
	       "in a tmpfs that only this daemon reaches); unmounting releases them\n"
	       "all.\n"
	       "\n"
	       "options:\n"
	       "  -h, --help             this text\n"
	       "  -V, --version          segfs and libfuse versions\n"
	       "  -f                     stay in the foreground\n"
	       "  -d, -o debug           print every FUSE request (implies -f)\n"
	       "  -s                     one thread\n"
	       "  -o nopassthrough       cached FUSE I/O instead of passthrough\n"
	       "                         (default: passthrough when the kernel, libfuse\n"
	       "                         and CAP_SYS_ADMIN allow it)\n"
	       "  -o io_uring            FUSE over io-uring: per-CPU request queues,\n"
	       "                         about half the latency per request (default:\n"
	       "                         off; needs Linux >= 6.14 with the fuse module's\n"
	       "                         enable_uring=Y, else /dev/fuse is used)\n"
	       "  -o io_uring_q_depth=N  requests in flight per CPU queue (default: 8)\n"
	       "  -o size=BYTES          most bytes all segments hold; k/m/g/t or %% of\n"
	       "                         RAM (default: 50%%)\n"
	       "  -o memfd               back segments with memfds, named in /proc,\n"
	       "                         instead of a private tmpfs; then a passthrough\n"
	       "                         write() past size= is not refused (default:\n"
	       "                         the tmpfs where CAP_SYS_ADMIN allows it)\n"
	       "  -o crash_loop=N/SECS   after N deaths of the server within SECS\n"
	       "                         seconds, unmount and release instead of\n"
	       "                         starting it again (default: 5/30)\n"
	       "  -o fdstore             under systemd (FileDescriptorStoreMax=):\n"
	       "                         keep the connection and the tmpfses in its\n"
	       "                         descriptor store, so that segfs itself may\n"
	       "                         be restarted too (see segfs(8))\n"
	       "  -o norestart           keep nothing for another server: the\n"
	       "                         server's death ends the mount and releases\n"
	       "                         everything (default: a new server takes\n"
	       "                         over, losing nothing)\n"
	       "  -o huge=WHEN           huge pages in the private tmpfs: never, always,\n"
	       "                         within_size (where a segment fills them) or\n"
	       "                         advise (default: within_size)\n"
	       "  -o nr_segments=N       most inodes (default: half of RAM in pages);\n"
	       "                         nr_inodes=N is the same, by tmpfs's name\n"
	       "  -o uid=N, gid=N        owner and group of the root (default: the\n"
	       "                         user and group segfs runs as)\n"
	       "  -o allow_other         let other users use the mount (default: off)\n"
	       "  -o auto_unmount        unmount when the daemon dies (default: off)\n"
	       "  -o fsname=NAME         source shown in /proc/mounts (default: segfs)\n"
	       "  -o mode=OCTAL          permissions of the root (default: 0755; 1777\n"
	       "                         for a /dev/shm: anyone creates, only owners\n"
	       "                         remove)\n"
	       "  -o lists=NAME          name of the lists directory (default: lists)\n"
	       "  -o xattr               also the read-only user.segfs.* attributes\n"
	       "                         for inspection (default: off)\n"
	       "  -o noxattr             no extended attributes and no POSIX ACLs:\n"
	       "                         saves the kernel's security.capability\n"
	       "                         question before the first truncate of each\n"
	       "                         file (default: tmpfs's attributes and ACLs)\n"
	       "  -o entry_timeout=S     kernel name cache, seconds (default: 86400)\n"
	       "  -o negative_timeout=S  kernel cache of missing names (default: 86400)\n"
	       "  -o attr_timeout=S      kernel attribute cache, seconds (default: 1)\n"
	       "\n"
	       "Other -o options (ro, dev, suid, ...) go to libfuse.\n",
	       prog, prog);
}
