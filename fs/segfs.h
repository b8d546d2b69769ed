/*
 * The FUSE side of segfs: what fs/main.c, fs/opts.c and fs/ops.c share.
 * Only fs/ includes libfuse; core/ knows nothing of FUSE.
 */
#ifndef SEGFS_FS_SEGFS_H
#define SEGFS_FS_SEGFS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ns.h"

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
	int io_uring;              /* -o io_uring: ask libfuse for FUSE over io-uring */
	uint64_t size;             /* 0: default (half of RAM) */
	uint64_t nr_segments;      /* 0: default (as tmpfs) */
	unsigned root_mode;        /* -o mode=, octal; 0: 0755 */
	char *lists_name;          /* -o lists=NAME; NULL: "lists" */
	int noxattr;               /* -o noxattr: no user.segfs.* attributes */
	double entry_timeout;      /* seconds the kernel may keep a name */
	double attr_timeout;       /* seconds the kernel may keep attributes */
	double negative_timeout;   /* seconds the kernel may keep "no such name" */
	struct fuse_args fuse;     /* what goes on to fuse_session_new */
};

/*
 * Parses argv.  Returns 0, or -EINVAL after printing one line to stderr.
 * On success the caller owns *o and frees it with opts_free().
 */
int opts_parse(int argc, char **argv, struct segfs_opts *o);
void opts_free(struct segfs_opts *o);
void opts_help(const char *prog);

/* Data-path modes. */
enum pt_state {
	PT_UNKNOWN,     /* passthrough requested, not yet confirmed */
	PT_ON,          /* backing files register: read/write/mmap bypass us */
	PT_OFF,         /* cached FUSE I/O; pt_reason says why */
};

/* How requests reach us, learnt from the first GETATTR of the root. */
enum transport {
	TRANSPORT_UNKNOWN,
	TRANSPORT_DEV,      /* read(2)/writev(2) on /dev/fuse */
	TRANSPORT_URING,    /* FUSE over io-uring: per-CPU queues */
};

struct segfs {
	struct seg_ns *ns;
	struct fuse_session *se;
	const struct segfs_opts *opts;
	_Atomic int pt;                  /* enum pt_state */
	pthread_mutex_t pt_lock;         /* serializes leaving PT_UNKNOWN */
	/* Written once under pt_lock, before pt becomes PT_OFF; read after. */
	char pt_reason[160];
	_Atomic int transport;           /* enum transport */
	/* Set in init, read after: why -o io_uring is not in use, if known. */
	char uring_reason[160];
};

extern const struct fuse_lowlevel_ops segfs_ops;

/*
 * Decides the data path once the connection is up: registers and closes a
 * backing file for a scratch memfd.  Returns the resulting state.
 */
enum pt_state segfs_probe_passthrough(struct segfs *fs);

/*
 * fs/xattr.c: the read-only user.segfs.* attributes of segments and of the
 * root (README: Inspection).  Without -o xattr main() leaves them out of
 * the session's ops, so libfuse replies ENOSYS and the kernel sends no
 * more requests of that kind.
 */
void segfs_getxattr(fuse_req_t req, fuse_ino_t n, const char *name, size_t size);
void segfs_listxattr(fuse_req_t req, fuse_ino_t n, size_t size);
void segfs_setxattr(fuse_req_t req, fuse_ino_t n, const char *name,
		    const char *value, size_t size, int flags);
void segfs_removexattr(fuse_req_t req, fuse_ino_t n, const char *name);

#endif
