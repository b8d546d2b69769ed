/*
 * What every inode of the namespace shares, whatever its kind: entry
 * replies, forget, getattr and setattr.
 */
#include "fs/node.h"

#include <string.h>

void fill_entry(struct segfs *fs, struct fuse_entry_param *e, struct seg_inode *ino,
		const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->attr = *st;
	e->ino = node_id(fs, ino);
	e->attr_timeout = fs->opts->attr_timeout;
	e->entry_timeout = fs->opts->entry_timeout;
}

void reply_entry(fuse_req_t req, struct seg_inode *ino, const struct stat *st)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e;

	fill_entry(fs, &e, ino, st);
	/* An interrupted request's reply is lost: give the reference back. */
	if (fuse_reply_entry(req, &e) != 0)
		seg_forget(fs->ns, ino, 1);
}

void inode_forget(struct segfs *fs, struct node *n, uint64_t nlookup)
{
	seg_forget(fs->ns, n->ino, nlookup);
}

void inode_getattr(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct stat st;
	int rc = seg_getattr(fs->ns, n->ino, &st);

	(void)fi;
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, fs->opts->attr_timeout);
}

unsigned setattr_mask(int valid)
{
	static const struct { int fuse; unsigned seg; } map[] = {
		{ FUSE_SET_ATTR_MODE, SEG_SET_MODE },
		{ FUSE_SET_ATTR_UID, SEG_SET_UID },
		{ FUSE_SET_ATTR_GID, SEG_SET_GID },
		{ FUSE_SET_ATTR_SIZE, SEG_SET_SIZE },
		{ FUSE_SET_ATTR_ATIME, SEG_SET_ATIME },
		{ FUSE_SET_ATTR_MTIME, SEG_SET_MTIME },
		{ FUSE_SET_ATTR_ATIME_NOW, SEG_SET_ATIME_NOW },
		{ FUSE_SET_ATTR_MTIME_NOW, SEG_SET_MTIME_NOW },
		{ FUSE_SET_ATTR_CTIME, SEG_SET_CTIME },
	};
	unsigned mask = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fuse)
			mask |= map[i].seg;
	return mask;
}

void inode_setattr(fuse_req_t req, struct node *n, struct stat *attr, int valid,
		   struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	unsigned mask = setattr_mask(valid);
	struct stat st;
	int rc;

	(void)fi;
	rc = mask ? seg_setattr(fs->ns, n->ino, attr, mask, &st) : seg_getattr(fs->ns, n->ino, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, fs->opts->attr_timeout);
}
