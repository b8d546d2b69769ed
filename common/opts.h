/*
 * The command line of segfs, shared by the supervisor (which mounts and
 * runs the server) and the server (which serves): `segfs [options]
 * MOUNTPOINT` or `segfs SOURCE MOUNTPOINT` (the form mount(8) uses for
 * fuse.segfs).  Only libfuse's option parser is used here.
 */
#ifndef SEGFS_COMMON_OPTS_H
#define SEGFS_COMMON_OPTS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <stdint.h>

enum { XATTR_ON, XATTR_INSPECT, XATTR_OFF };

/* The command line, parsed.  Strings are owned by the struct (opts_free). */
struct segfs_opts {
	char *mountpoint;          /* absolute */
	char *source;              /* the dummy SOURCE of `segfs SOURCE MNT` */
	int foreground;
	int debug;
	int singlethread;
	int show_help;
	int show_version;
	int nopassthrough;
	int memfd;                 /* -o memfd: memfds, not the private tmpfs */
	int norestart;             /* -o norestart: no state kept for another server */
	int fdstore;               /* -o fdstore: systemd's descriptor store keeps it all */
	int io_uring;              /* -o io_uring: ask libfuse for FUSE over io-uring */
	uint64_t size;             /* 0: default (half of RAM) */
	uint64_t nr_segments;      /* 0: default (as tmpfs) */
	int crash_deaths;          /* -o crash_loop=N/SECONDS: the supervisor's */
	double crash_window;
	unsigned root_mode;        /* -o mode=, octal; 0: 0755 */
	int64_t root_uid, root_gid;   /* -o uid=, gid= of the root; -1: segfs's own */
	char *lists_name;          /* -o lists=NAME; NULL: "lists" */
	char *huge;                /* -o huge=: the private tmpfs's; NULL: within_size */
	/*
	 * Extended attributes: XATTR_ON (tmpfs's, the default), XATTR_INSPECT
	 * (-o xattr: and the read-only user.segfs.* ones), XATTR_OFF
	 * (-o noxattr: none, and no POSIX ACLs).
	 */
	int xattr;
	double entry_timeout;      /* seconds the kernel may keep a name */
	double attr_timeout;       /* seconds the kernel may keep attributes */
	double negative_timeout;   /* seconds the kernel may keep "no such name" */
	struct fuse_args fuse;     /* what goes on to fuse_session_new */
};

/*
 * Parses argv.  Returns 0, or -EINVAL after printing one line to stderr.
 * On success the caller owns *o and frees it with opts_free().
 *
 * The mount point is made absolute with realpath(), unless `mounted`
 * gives it: the server's is the supervisor's (SEGFS_MOUNTPOINT), because
 * once segfs is mounted there, resolving it asks the mount's own server
 * for the root's attributes, and a server that takes over after a crash
 * is the only one that could answer.
 */
int opts_parse(int argc, char **argv, struct segfs_opts *o, const char *mounted);
void opts_free(struct segfs_opts *o);
void opts_help(const char *prog);

/* Parses "123", "64k", "1G", "50%" (of RAM) into bytes: 0 or -EINVAL. */
int opts_size(const char *s, uint64_t *out);

#endif
