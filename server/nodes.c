/*
 * Symlinks (symlink_ops), and the nodes that hold no data (special_ops):
 * fifos, sockets, character and block devices, whiteouts.  The kernel
 * serves what these are for itself: it follows a symlink with the target
 * readlink gives, and opens a fifo or a device without asking us (a
 * device only where the mount allows devices).  What is left is what
 * every inode has.
 */
#include "server/node.h"

static void symlink_readlink(fuse_req_t req, struct node *n)
{
	/* The target never changes: no lock. */
	fuse_reply_readlink(req, seg_inode_target(n->ino));
}

const struct node_ops symlink_ops = {
	.kind = "symlink",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.statx = inode_statx,
	.setattr = inode_setattr,
	.readlink = symlink_readlink,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};

const struct node_ops special_ops = {
	.kind = "special file",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.statx = inode_statx,
	.setattr = inode_setattr,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
