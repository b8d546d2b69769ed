/*
 * Directories of the namespace (dir_ops).
 *
 * Each handler does its work through core/ns.h (0 or -errno) and then
 * replies exactly once.  Once a reply that hands the kernel an inode is
 * out, the kernel may forget it, and a FORGET on another thread free it:
 * nothing here looks at an inode after replying.
 *
 * Exactly once (server/request.h).  A request the kernel sends again
 * after a crash is answered from the result a dead server recorded, if it
 * got that far; otherwise what it had taken was given back, and it is
 * done again, but a change of the tree it had made already (its intent
 * says which inode, and the tree shows whether) is not made twice: an
 * O_EXCL create that succeeded does not come back EEXIST, an unlink not
 * ENOENT, a rename is not done twice.
 */
#include "server/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ------------------------------------------------------------ */

/* The reply to what makes a node: its entry, or the error. */
static void reply_made(fuse_req_t req, int rc, struct seg_inode *ino, const struct stat *st)
{
	struct segfs *fs = fs_of(req);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	req_result(fs, node_id(fs, ino), 0);
	reply_entry(req, ino, st);
}

/*
 * A resent request that already made `name` in `dir` (an intent of
 * `kind` names its inode, and the name leads to it): answered with its
 * entry, one reference more, as the first answer would have.  True if so.
 * It passes the request's crash point again (a crash loop's server dies
 * there as the first did).
 */
static bool made_already(fuse_req_t req, struct node *dir, const char *name,
			 enum rg_intent_kind kind, const char *point)
{
	struct stat st;
	struct seg_inode *ino = req_made(fs_of(req), dir->ino, name, kind, &st);

	if (ino == NULL)
		return false;
	crash_point(point);
	reply_made(req, 0, ino, &st);
	return true;
}

/* A resent request whose answer a dead server recorded: an entry, again. */
static bool entry_replayed(fuse_req_t req)
{
	uint64_t a, b;

	if (!req_replayed(&a, &b))
		return false;
	reply_entry_replayed(req, a);
	return true;
}

static void dir_lookup(fuse_req_t req, struct node *dir, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino;
	struct stat st;
	int rc;

	if (entry_replayed(req))
		return;
	rc = seg_lookup(fs->ns, dir->ino, name, &ino, &st);
	if (rc == 0) {
		reply_made(req, 0, ino, &st);
	} else if (rc == -ENOENT && fs->opts->negative_timeout > 0) {
		/* A node id of 0 lets the kernel cache the absence. */
		struct fuse_entry_param e = { .ino = 0 };

		e.entry_timeout = fs->opts->negative_timeout;
		fuse_reply_entry(req, &e);
	} else {
		reply_err(req, rc);
	}
}

void export_lookup(fuse_req_t req, fuse_ino_t id, bool parent)
{
	struct segfs *fs = fs_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	int rc;

	if (entry_replayed(req))
		return;
	if (id == FUSE_ROOT_ID)
		rc = seg_lookup_number(fs->ns, seg_inode_number(seg_ns_root(fs->ns)), parent,
				       &ino, &st);
	else if (id & VIEW_BIT)
		rc = -ENOENT;   /* a lists/ view has no number to come back by */
	else
		rc = seg_lookup_number(fs->ns, id >> 1, parent, &ino, &st);
	reply_made(req, rc, ino, &st);
}

static void dir_mknod(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
		      dev_t rdev)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	bool created;
	int rc;

	if (entry_replayed(req) || made_already(req, dir, name, RG_INTENT_NEW, "mknod"))
		return;
	/* A regular file is a segment; fifos, sockets and devices hold no data. */
	if (S_ISREG(mode))
		rc = seg_create(fs->ns, dir->ino, name, mode, &who, SEG_CREATE_EXCL, &ino, &st,
				&created);
	else
		rc = seg_mknod(fs->ns, dir->ino, name, mode, rdev, &who, &ino, &st);
	if (rc == 0)
		crash_point("mknod");
	reply_made(req, rc, ino, &st);
}

static void dir_mkdir(fuse_req_t req, struct node *dir, const char *name, mode_t mode)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	int rc;

	if (entry_replayed(req) || made_already(req, dir, name, RG_INTENT_NEW, "mkdir"))
		return;
	rc = seg_mkdir(fs->ns, dir->ino, name, mode, &who, &ino, &st);
	if (rc == 0)
		crash_point("mkdir");
	reply_made(req, rc, ino, &st);
}

static void dir_symlink(fuse_req_t req, const char *link, struct node *dir, const char *name)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct seg_inode *ino = NULL;
	struct stat st;
	int rc;

	if (entry_replayed(req) || made_already(req, dir, name, RG_INTENT_NEW, "symlink"))
		return;
	rc = seg_symlink(fs->ns, dir->ino, name, link, &who, &ino, &st);
	if (rc == 0)
		crash_point("symlink");
	reply_made(req, rc, ino, &st);
}

static void dir_link(fuse_req_t req, struct node *n, struct node *newdir, const char *newname)
{
	struct segfs *fs = fs_of(req);
	struct stat st;
	int rc;

	/* Only the namespace's inodes have names here (not lists/ entries). */
	if (n->ino == NULL) {
		reply_err(req, -EPERM);
		return;
	}
	if (entry_replayed(req) || made_already(req, newdir, newname, RG_INTENT_LINK, "link"))
		return;
	rc = seg_link(fs->ns, n->ino, newdir->ino, newname, &st);
	if (rc == 0) {
		crash_point("link");
		req_result(fs, n->id, 0);
		reply_entry(req, n->ino, &st);
	} else {
		reply_err(req, rc);
	}
}

/*
 * A resent removal that already removed `name`: its intent names the
 * inode, and the name no longer leads to it (the kernel holds the
 * directory's lock meanwhile, so nothing else made it again).
 */
static bool removed_already(struct segfs *fs, struct node *dir, const char *name)
{
	uint64_t a, b;

	return req_intent(RG_INTENT_REMOVE, &a, &b) && !req_leads_to(fs, dir->ino, name, a);
}

/* Answers a request with its plain result: 0, or the error. */
static void reply_done(fuse_req_t req, int rc)
{
	if (rc == 0)
		req_result(fs_of(req), 0, 0);
	reply_err(req, rc);
}

/* unlink and rmdir: `what` names the request for crash_point. */
static void dir_remove(fuse_req_t req, struct node *dir, const char *name,
		       int (*remove)(struct seg_ns *, struct seg_inode *, const char *),
		       const char *what)
{
	struct segfs *fs = fs_of(req);
	uint64_t a, b;
	int rc;

	if (req_replayed(&a, &b)) {
		reply_done(req, 0);
		return;
	}
	rc = removed_already(fs, dir, name) ? 0 : remove(fs->ns, dir->ino, name);
	if (rc == 0)
		crash_point(what);
	reply_done(req, rc);
}

static void dir_unlink(fuse_req_t req, struct node *dir, const char *name)
{
	dir_remove(req, dir, name, seg_unlink, "unlink");
}

static void dir_rmdir(fuse_req_t req, struct node *dir, const char *name)
{
	dir_remove(req, dir, name, seg_rmdir, "rmdir");
}

/*
 * A resent rename that was made: its intent names the inode moved (a) and
 * the one exchanged with it or the whiteout left (b), and the new name
 * leads to a (and, exchanged, the old name to b).
 */
static bool renamed_already(struct segfs *fs, struct node *dir, const char *name,
			    struct node *newdir, const char *newname, unsigned flags)
{
	uint64_t a, b;

	if (!req_intent(RG_INTENT_RENAME, &a, &b))
		return false;
	if (!req_leads_to(fs, newdir->ino, newname, a))
		return false;
	if ((flags & SEG_RENAME_EXCHANGE) || (flags & SEG_RENAME_WHITEOUT))
		return req_leads_to(fs, dir->ino, name, b);
	return !req_leads_to(fs, dir->ino, name, a);
}

static void dir_rename(fuse_req_t req, struct node *dir, const char *name,
		       struct node *newdir, const char *newname, unsigned flags)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	uint64_t a, b;
	int rc;

	if (req_replayed(&a, &b)) {
		reply_done(req, 0);
		return;
	}
	rc = renamed_already(fs, dir, name, newdir, newname, flags) ? 0
	     : seg_rename(fs->ns, dir->ino, name, newdir->ino, newname, flags, &who);
	if (rc == 0)
		crash_point("rename");
	reply_done(req, rc);
}

/* ---- streams ---------------------------------------------------------- */

/*
 * A directory stream.  Its record (server/handles.h) keeps the last two
 * offsets handed out, each with the name of the entry it follows, so that
 * a server that rebuilt the directory (whose offsets are new) goes on
 * after the same entry when the kernel asks from either.
 */
struct dir_handle {
	struct handle h;
	struct seg_dirh *dh;
	struct seg_inode *dir;
	/* An adopted stream's offsets are a dead server's till mapped. */
	bool adopted;
};

static struct dir_handle *dir_handle_get(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);

	return (struct dir_handle *)handle_get(&fs->handles, fs, fi->fh);
}

static void dir_handle_drop(struct segfs *fs, struct handle *h)
{
	struct dir_handle *d = (struct dir_handle *)h;

	seg_releasedir_adopted(fs->ns, d->dh, handle_uncount(&fs->handles, h));
	free(d);
}

struct handle *dir_handle_adopt(struct segfs *fs, uint64_t index, const uint64_t *w)
{
	struct node n = node_of(fs, w[RH_NODE]);
	struct dir_handle *d;

	(void)index;
	if (n.ino == NULL || !seg_inode_is_dir(n.ino))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	if (seg_opendir_adopt(fs->ns, n.ino, &d->dh) < 0) {
		free(d);
		return NULL;
	}
	d->dir = n.ino;
	d->adopted = true;
	d->h.drop = dir_handle_drop;
	return &d->h;
}

static void dir_opendir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct dir_handle *d;
	int rc;

	if (reply_opendir_replayed(req, fi))
		return;
	d = calloc(1, sizeof(*d));
	rc = d != NULL ? handle_add(&fs->handles, &d->h, dir_handle_drop, HK_DIR, n->id)
		       : -ENOMEM;
	if (rc < 0) {
		free(d);
		reply_err(req, rc);
		return;
	}
	d->dir = n->ino;
	rc = seg_opendir(fs->ns, n->ino, &d->dh);
	if (rc < 0) {
		handle_release(fs, &d->h);
		reply_err(req, rc);
		return;
	}
	handle_counted(&fs->handles, &d->h);
	fi->fh = handle_fh(&d->h);
	req_result(fs, fi->fh, 0);
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, &d->h);
}

struct dirbuf {
	fuse_req_t req;
	struct segfs *fs;
	char *p;
	size_t size, used;
	bool plus;
	uint64_t last;                 /* the offset after the last entry added */
	char last_name[256];
};

/* seg_fill_fn: appends one entry; non-zero when it does not fit. */
static int dir_fill(void *arg, const char *name, struct seg_inode *ino,
		    const struct stat *st, uint64_t next)
{
	struct dirbuf *b = arg;
	size_t room = b->size - b->used, n;

	if (b->plus) {
		struct fuse_entry_param e;
		bool dot = name[0] == '.' && (name[1] == '\0' ||
					      (name[1] == '.' && name[2] == '\0'));

		fill_entry(b->fs, &e, ino, st);
		/* Node id 0: no reference taken, as the kernel expects for dots. */
		if (dot)
			e.ino = 0;
		n = fuse_add_direntry_plus(b->req, b->p + b->used, room, name, &e, (off_t)next);
	} else {
		n = fuse_add_direntry(b->req, b->p + b->used, room, name, st, (off_t)next);
	}
	if (n > room)
		return 1;
	b->used += n;
	b->last = next;
	snprintf(b->last_name, sizeof(b->last_name), "%s", name);
	return 0;
}

/*
 * Where a stream goes on from: `off` as the kernel says, or for a stream a
 * dead server handed out the offsets of, the offset that now follows the
 * entry its offset followed then.
 */
static uint64_t resume_at(struct segfs *fs, struct dir_handle *d, uint64_t off)
{
	const uint64_t *w = handle_words(&fs->handles, &d->h);
	char name[RV_NAME_WORDS * sizeof(uint64_t)];
	uint64_t cookie;
	unsigned word;

	if (!d->adopted || off <= 2)
		return off;
	if (off == w[RH_A])
		word = RH_NAME;
	else if (off == w[RH_B])
		word = RH_NAME2;
	else
		return off;
	memcpy(name, &w[word], sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (strcmp(name, ".") == 0)
		return 1;
	if (strcmp(name, "..") == 0)
		return 2;
	return seg_dir_cookie(fs->ns, d->dir, name, &cookie) == 0 ? cookie : off;
}

/* Keeps where the stream stands: the last two offsets and their entries. */
static void keep_position(struct segfs *fs, struct dir_handle *d, const struct dirbuf *b)
{
	uint64_t *w = handle_words(&fs->handles, &d->h);
	char name[RV_NAME_WORDS * sizeof(uint64_t)] = { 0 };

	if (b->used == 0)
		return;
	snprintf(name, sizeof(name), "%s", b->last_name);
	/* Names are hints: written plainly; the offsets that pick them, logged. */
	memcpy(&w[RH_NAME2], &w[RH_NAME], sizeof(name));
	handle_set(&fs->handles, &d->h, RH_B, w[RH_A]);
	memcpy(&w[RH_NAME], name, sizeof(name));
	handle_set(&fs->handles, &d->h, RH_A, b->last);
	d->adopted = false;
}

static void dir_readdir(fuse_req_t req, struct node *n, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = { .req = req, .fs = fs_of(req), .size = size, .plus = plus };
	struct dir_handle *d = dir_handle_get(req, fi);
	int rc;

	(void)n;
	if (d == NULL) {
		reply_err(req, -EBADF);
		return;
	}
	b.p = malloc(size);
	if (b.p == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	rc = seg_readdir(b.fs->ns, d->dh, resume_at(b.fs, d, (uint64_t)off), plus,
			 dir_fill, &b);
	if (rc < 0) {
		reply_err(req, rc);
	} else {
		keep_position(b.fs, d, &b);
		fuse_reply_buf(req, b.p, b.used);
	}
	free(b.p);
}

static void dir_releasedir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct dir_handle *d;
	uint64_t a, b;

	(void)n;
	/* Released already by a server that died before answering: done. */
	if (!req_replayed(&a, &b)) {
		d = dir_handle_get(req, fi);
		if (d != NULL)
			handle_release(fs, &d->h);
	}
	reply_done(req, 0);
}

const struct node_ops dir_ops = {
	.kind = "directory",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.statx = inode_statx,
	.setattr = inode_setattr,
	.lookup = dir_lookup,
	.mknod = dir_mknod,
	.mkdir = dir_mkdir,
	.symlink = dir_symlink,
	.unlink = dir_unlink,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.link = dir_link,
	.create = file_create,
	.tmpfile = file_tmpfile,
	.opendir = dir_opendir,
	.readdir = dir_readdir,
	.releasedir = dir_releasedir,
	.ioctl = inode_ioctl,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
