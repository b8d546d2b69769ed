/*
 * Open files of lists/ (fs/views.c): text buffered per handle, stored at
 * FLUSH.  The handle is fi->fh.
 */
#ifndef SEGFS_FS_VIEWS_H
#define SEGFS_FS_VIEWS_H

#include "fs/segfs.h"

/*
 * Opens a handle on a view.  `created`: the entry was just made (its text
 * starts empty); `mode` is for a list that has to be created at FLUSH.
 * Returns 0 or -errno; on success fills fi.
 */
int views_open(struct segfs *fs, fuse_req_t req, struct seg_inode *view,
	       struct fuse_file_info *fi, bool created, mode_t mode);

/* These reply to req themselves. */
void views_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi);
void views_write(fuse_req_t req, const char *data, size_t size, off_t off,
		 struct fuse_file_info *fi);
void views_flush(struct segfs *fs, fuse_req_t req, struct seg_inode *view,
		 struct fuse_file_info *fi);

/* ftruncate() of a handle: cuts or marks its text. */
void views_truncate(struct fuse_file_info *fi, off_t size);
void views_release(struct segfs *fs, struct seg_inode *view, struct fuse_file_info *fi);

/*
 * Tells the kernel, after the reply, that root entries named `name` (and
 * `name2`, if not NULL) changed behind its back: lists/ changed them.
 */
void views_entry_changed(struct segfs *fs, const char *name, const char *name2);

#endif
