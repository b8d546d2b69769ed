/*
 * Node ids: what each names, and the kind that serves it.  See node.h.
 */
#include "server/node.h"

#include <assert.h>
#include <stdint.h>

/* The layer bit of a node id: set for an entry of lists/. */
#define VIEW_BIT 1u

struct segfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

fuse_ino_t node_id(struct segfs *fs, const struct seg_inode *ino)
{
	return ino == seg_ns_root(fs->ns) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)ino;
}

fuse_ino_t node_view_id(const struct lv_node *v)
{
	/* malloc's alignment leaves the bit free. */
	assert(((uintptr_t)v & VIEW_BIT) == 0);
	return (fuse_ino_t)(uintptr_t)v | VIEW_BIT;
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
		n.view = (struct lv_node *)(uintptr_t)(id & ~(fuse_ino_t)VIEW_BIT);
		n.ops = fs->view_ops;
	} else {
		n.ino = (struct seg_inode *)(uintptr_t)id;
		n.ops = ops_of_inode(fs, n.ino);
	}
	return n;
}

void reply_err(fuse_req_t req, int rc)
{
	assert(rc <= 0);
	fuse_reply_err(req, -rc);
}

struct seg_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct seg_cred who = { .uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid };

	if (fs_of(req)->dont_mask)
		who.umask = ctx->umask;
	return who;
}
