/*
 * The FUSE side of segfs: what the files of server/ share.  Only server/ includes
 * libfuse; core/ knows nothing of FUSE.
 *
 *   main.c         main(): options, the namespace and the view, the session
 *   init.c         the connection: what INIT asks the kernel for
 *   ops.c          the one dispatch point: every request, routed by kind
 *   node.c         node ids, and the tables of operations by kind (node.h)
 *   inode.c        what the namespace's inodes share (entries, attributes)
 *   dir.c          the namespace's directories
 *   nodes.c        symlinks, and the nodes that hold no data
 *   file.c         segments: open, I/O of the cached fallback, release
 *   views.c        lists/ and its entries: the view's FUSE side
 *   passthrough.c  the data path: FUSE passthrough, or the cached fallback
 *   xattr.c        extended attributes and POSIX ACLs, as tmpfs has them
 *   inspect.c      the read-only user.segfs.* attributes (-o xattr)
 *   cred.c         a caller's groups and capabilities, from /proc
 */
#ifndef SEGFS_FS_SEGFS_H
#define SEGFS_FS_SEGFS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>

/* What the libfuse built against can do beyond 3.14. */
#define SEGFS_HAVE_TMPFILE (FUSE_VERSION >= FUSE_MAKE_VERSION(3, 15))
#define SEGFS_HAVE_STATX   (FUSE_VERSION >= FUSE_MAKE_VERSION(3, 18))
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/lists.h"
#include "common/opts.h"
#include "core/ns.h"
#include "core/region.h"
#include "server/handles.h"
#include "server/keeper.h"
#include "server/request.h"

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

struct node_ops;

struct segfs {
	struct seg_ns *ns;
	struct lv *lists;                /* the lists/ view */
	/*
	 * The tables of the kinds node ids name by default (server/node.h), set by
	 * main() before the session starts.
	 */
	const struct node_ops *dir_ops, *file_ops, *symlink_ops, *special_ops, *view_ops;
	struct fuse_session *se;
	const struct segfs_opts *opts;
	_Atomic int pt;                  /* enum pt_state */
	pthread_mutex_t pt_lock;         /* serializes leaving PT_UNKNOWN */
	/* Written once under pt_lock, before pt becomes PT_OFF; read after. */
	char pt_reason[160];
	_Atomic int transport;           /* enum transport */
	/* Set in init, read after: what the kernel left to us. */
	bool dont_mask;                  /* the umask (FUSE_CAP_DONT_MASK) */
	bool posix_acl;                  /* ACLs are enforced (FUSE_CAP_POSIX_ACL) */
	bool killpriv;                   /* FUSE_CAP_HANDLE_KILLPRIV_V2 */
	bool epoch;                      /* names are dropped by FUSE_NOTIFY_INC_EPOCH */
	/* Set in init, read after: why -o io_uring is not in use, if known. */
	char uring_reason[160];
	/* Directory streams and lists/ files, until released (server/handles.c). */
	struct handles handles;
	/*
	 * What outlives this server (core/region.h, server/keeper.c): the
	 * records, the state tmpfs (its root, -1 without one), and the
	 * supervisor that holds them.  Set by main() before the session.
	 */
	struct rg *rg;
	int state;
	struct keeper keeper;
	bool takeover;                   /* this server took a connection over */
	/*
	 * An upgrade's server answering INIT again only to check it agrees
	 * (server/main.c): nothing is decided or written then.
	 */
	bool probing;
	/* The conn of INIT, for the summary a takeover compares (server/takeover.c). */
	struct fuse_conn_info *conn;
};

extern const struct fuse_lowlevel_ops segfs_ops;

/*
 * server/passthrough.c.  passthrough_why_not says why passthrough cannot be
 * had whatever the kernel offers (NULL: it may be), and passthrough_off
 * settles the fallback, with the reason, before any open.
 * segfs_probe_passthrough decides the data path once the connection is
 * up: registers and closes a backing file for a scratch memfd, and
 * returns the resulting state.  passthrough_attach and passthrough_detach
 * are core/ns.h's data path (arg: the segfs).
 */
const char *passthrough_why_not(const struct segfs *fs);
void passthrough_off(struct segfs *fs, const char *why);
/* A server that takes over: the data path the first one chose, and an id to close. */
void passthrough_resume(struct segfs *fs);
void passthrough_close_id(struct segfs *fs, int id);
enum pt_state segfs_probe_passthrough(struct segfs *fs);
int passthrough_attach(void *arg, int fd, bool privs);
void passthrough_detach(void *arg, int id);

/*
 * server/init.c: INIT, and asking for a feature (true if the kernel offers
 * it) or refusing one.
 */
void segfs_init(void *userdata, struct fuse_conn_info *conn);

/*
 * server/takeover.c: taking a connection over from a server that died or
 * stopped.  conn_summary is what INIT agreed on, as words to compare;
 * takeover_init answers the kept INIT again in this server's session and
 * checks it agrees (-EPROTO with why[]); takeover_sweep closes backing ids
 * a dead server registered and no record names; takeover_resend has the
 * kernel send again every request the dead server had read.
 */
void conn_summary(struct segfs *fs, uint64_t summary[RG_SUMMARY_WORDS]);
int takeover_init(struct segfs *fs, char *why, size_t len);
void takeover_sweep(struct segfs *fs);
int takeover_resend(struct segfs *fs);
bool want(struct fuse_conn_info *conn, uint64_t flag);
void unwant(struct fuse_conn_info *conn, uint64_t flag);

#endif
