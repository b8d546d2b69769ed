/*
 * Node ids: what each names, and the kind that serves it.  See node.h.
 *
 * An id is a number that outlives the server, so that the ids the kernel
 * holds name the same objects for a server that takes over: twice a
 * namespace inode's number (the tree's inode number, never reused), or
 * for an entry of lists/ twice its record's index plus three (odd, and
 * never FUSE_ROOT_ID).
 */
#include "server/node.h"
#include "server/request.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>

/*
 * What an id that names nothing (any more) gets: ESTALE for everything
 * but forget, which has nothing to give back.  After a restart the kernel
 * may still hold an inode the new server freed (an unlinked file nothing
 * had open: ns.h, seg_ns_rebuild).
 */
static void stale_forget(struct segfs *fs, struct node *n, uint64_t nlookup)
{
	(void)fs;
	(void)n;
	(void)nlookup;
}

static void stale_getattr(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	(void)n;
	(void)fi;
	reply_err(req, -ESTALE);
}

static void stale_setattr(fuse_req_t req, struct node *n, struct stat *attr, int valid,
			  struct fuse_file_info *fi)
{
	(void)n;
	(void)attr;
	(void)valid;
	(void)fi;
	reply_err(req, -ESTALE);
}

static const struct node_ops stale_ops = {
	.kind = "stale",
	.forget = stale_forget,
	.getattr = stale_getattr,
	.setattr = stale_setattr,
};

struct segfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

fuse_ino_t node_id(struct segfs *fs, const struct seg_inode *ino)
{
	return ino == seg_ns_root(fs->ns) ? FUSE_ROOT_ID
	       : (fuse_ino_t)(seg_inode_number(ino) << 1);
}

fuse_ino_t node_view_id(const struct lv_node *v)
{
	return (fuse_ino_t)((lv_node_index(v) + 1) << 1) | VIEW_BIT;
}

/* The table of a namespace inode: the one its layer set, or its type's. */
static const struct node_ops *ops_of_inode(struct segfs *fs, const struct seg_inode *ino)
{
	const struct node_ops *ops = seg_inode_private(ino);

	if (ops != NULL)
		return ops;
	switch (seg_inode_type(ino)) {
	case S_IFDIR:
		return fs->dir_ops;
	case S_IFREG:
		return fs->file_ops;
	case S_IFLNK:
		return fs->symlink_ops;
	default:
		return fs->special_ops;
	}
}

struct node node_of(struct segfs *fs, fuse_ino_t id)
{
	struct node n = { .id = id };

	if (id == FUSE_ROOT_ID) {
		n.ino = seg_ns_root(fs->ns);
		n.ops = fs->dir_ops;
	} else if (id & VIEW_BIT) {
		n.view = lv_node_at(fs->lists, (id >> 1) - 1);
		n.ops = n.view != NULL ? fs->view_ops : &stale_ops;
	} else {
		n.ino = seg_ns_find(fs->ns, id >> 1);
		n.ops = n.ino != NULL ? ops_of_inode(fs, n.ino) : &stale_ops;
	}
	return n;
}

void reply_err(fuse_req_t req, int rc)
{
	assert(rc <= 0);
	fuse_reply_err(req, -rc);
}

bool reply_opendir_replayed(fuse_req_t req, struct fuse_file_info *fi)
{
	uint64_t a, b;

	if (!req_replayed(&a, &b))
		return false;
	fi->fh = a;
	fuse_reply_open(req, fi);
	return true;
}

struct seg_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct seg_cred who = { .uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid };

	if (fs_of(req)->dont_mask)
		who.umask = ctx->umask;
	return who;
}
