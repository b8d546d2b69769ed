/*
 * Name operations of the namespace: lookup, create, tmpfile, mkdir, link,
 * unlink, rmdir, rename and replace.  See ns.h for their contracts.
 *
 * Each does its allocations (dentry, inode, backing file) before taking
 * the lock and its freeing after dropping it (ns_drop_dentry, the dead
 * list), so that the lock covers only the tree and the counts.  A create,
 * which must make a backing file, looks first (most opens with O_CREAT
 * find the name), makes the file without the lock, then looks again.
 */
#include "core/ns.h"

#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"

#include <errno.h>
#include <string.h>

/* Common checks of a directory argument and a name in it. */
static int check_dir_name(const struct seg_inode *dir, const char *name, size_t *len)
{
	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	return seg_name_check(name, len);
}

static struct seg_dentry *find(struct seg_ns *ns, struct seg_inode *dir,
			       const char *name, size_t len)
{
	return dc_find(&ns->dc, &dir->u.dir.d, name, len);
}

/* Names a live inode in `dir` with a prepared dentry, and says so. */
static void add_name(struct seg_ns *ns, struct seg_inode *dir, struct seg_dentry *d,
		     struct seg_inode *ino)
{
	dc_add(&ns->dc, &dir->u.dir.d, d, ino);
	ns_dir_touch(dir);
	ns_changed(ns, SEG_CHANGE_NAME, dir, d->name, d->len, ino);
}

int seg_lookup(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode **out, struct stat *st)
{
	struct seg_dentry *d;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	ns_lock(ns);
	d = find(ns, dir, name, len);
	if (d == NULL) {
		rc = -ENOENT;
	} else {
		d->inode->nlookup++;
		ns_fill_stat(ns, d->inode, st);
		*out = d->inode;
	}
	ns_unlock(ns);
	return rc;
}

/*
 * What a create finds at its name: 0 for nothing, 1 after handing back the
 * existing segment, or -errno.
 */
static int existing(struct seg_ns *ns, struct seg_inode *dir, const char *name, size_t len,
		    int flags, struct seg_inode **out, struct stat *st)
{
	struct seg_dentry *d;

	/* A removed directory that is still open takes no new entries. */
	if (dir->nlink == 0)
		return -ENOENT;
	d = find(ns, dir, name, len);
	if (d == NULL)
		return 0;
	if (flags & SEG_CREATE_EXCL)
		return -EEXIST;
	if (S_ISDIR(d->inode->mode))
		return -EISDIR;
	d->inode->nlookup++;
	ns_fill_stat(ns, d->inode, st);
	*out = d->inode;
	return 1;
}

int seg_create(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       mode_t mode, const struct seg_cred *who, int flags,
	       struct seg_inode **out, struct stat *st, bool *created)
{
	struct seg_inode *ino = NULL;
	struct seg_dentry *d;
	uint64_t num;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	ns_lock(ns);
	rc = existing(ns, dir, name, len, flags, out, st);
	if (rc == 0)
		rc = ns_take_slot(ns, &num);
	ns_unlock(ns);
	if (rc != 0)
		goto found;

	/* Made without the lock: nothing can see them yet. */
	d = dc_alloc(name, len);
	rc = d == NULL ? -ENOMEM : ns_new_segment(ns, num, mode, who, name, &ino);
	ns_lock(ns);
	if (rc == 0)
		rc = existing(ns, dir, name, len, flags, out, st);
	if (rc != 0) {
		ns_give_slot(ns);
		ns_unlock(ns);
		dc_free(d);
		if (ino != NULL)
			ns_inode_free(ns, ino);
		goto found;
	}
	ns_inode_link(ns, ino);
	ino->nlink = 1;
	ino->nlookup = 1;
	add_name(ns, dir, d, ino);
	ns_fill_stat(ns, ino, st);
	ns_unlock(ns);
	*out = ino;
	*created = true;
	return 0;
found:
	if (rc == 1)
		*created = false;
	return rc < 0 ? rc : 0;
}

int seg_tmpfile(struct seg_ns *ns, struct seg_inode *dir, mode_t mode,
		const struct seg_cred *who, struct seg_inode **out, struct stat *st)
{
	struct seg_inode *ino;
	uint64_t num;
	int rc;

	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	ns_lock(ns);
	rc = dir->nlink == 0 ? -ENOENT : ns_take_slot(ns, &num);
	ns_unlock(ns);
	if (rc < 0)
		return rc;
	rc = ns_new_segment(ns, num, mode, who, NULL, &ino);
	ns_lock(ns);
	if (rc < 0) {
		ns_give_slot(ns);
	} else {
		ns_inode_link(ns, ino);
		ino->nlookup = 1;
		ino->linkable = true;
		ns_fill_stat(ns, ino, st);
		*out = ino;
	}
	ns_unlock(ns);
	return rc;
}

int seg_mkdir(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	      mode_t mode, const struct seg_cred *who,
	      struct seg_inode **out, struct stat *st)
{
	struct seg_dentry *d;
	struct seg_inode *sub;
	uint64_t num;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	d = dc_alloc(name, len);
	sub = ns_new_dir(0, mode, who);
	rc = -ENOMEM;
	if (d == NULL || sub == NULL)
		goto fail;
	ns_lock(ns);
	rc = dir->nlink == 0 ? -ENOENT : find(ns, dir, name, len) ? -EEXIST
	     : ns_take_slot(ns, &num);
	if (rc < 0) {
		ns_unlock(ns);
		goto fail;
	}
	sub->ino = num;
	sub->u.dir.parent = dir;
	ns_inode_link(ns, sub);
	sub->nlookup = 1;
	dir->nlink++;
	add_name(ns, dir, d, sub);
	ns_fill_stat(ns, sub, st);
	ns_unlock(ns);
	*out = sub;
	return 0;
fail:
	dc_free(d);
	seg_free(sub);
	return rc;
}

int seg_link(struct seg_ns *ns, struct seg_inode *ino, struct seg_inode *dir,
	     const char *name, struct stat *st)
{
	struct seg_dentry *d;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	d = dc_alloc(name, len);
	if (d == NULL)
		return -ENOMEM;
	ns_lock(ns);
	rc = -ENOENT;
	if (dir->nlink == 0)
		goto out;
	rc = -EEXIST;
	if (find(ns, dir, name, len) != NULL)
		goto out;
	rc = -EPERM;
	if (S_ISDIR(ino->mode))
		goto out;
	/* A segment whose last name is gone cannot be linked again, as on tmpfs. */
	rc = -ENOENT;
	if (ino->nlink == 0 && !ino->linkable)
		goto out;
	rc = -EMLINK;
	if (ino->nlink == UINT32_MAX)
		goto out;
	ino->nlink++;
	ino->linkable = false;
	ino->nlookup++;
	ns_now(&ino->ctime);
	add_name(ns, dir, d, ino);
	d = NULL;
	ns_fill_stat(ns, ino, st);
	rc = 0;
out:
	ns_unlock(ns);
	dc_free(d);
	return rc;
}

/* Finds the entry `name` of `dir` for a removal. */
static int find_entry(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		      struct seg_dentry **out)
{
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	*out = find(ns, dir, name, len);
	return *out != NULL ? 0 : -ENOENT;
}

/* Takes the name `d` away, and says so. */
static void remove_name(struct seg_ns *ns, struct seg_dentry *d, struct seg_inode *dir)
{
	ns_changed(ns, SEG_CHANGE_NAME, dir, d->name, d->len, NULL);
	ns_drop_dentry(ns, d);
	ns_dir_touch(dir);
}

int seg_unlink(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_dentry *d;
	struct seg_inode *ino;
	int rc;

	ns_lock(ns);
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		goto out;
	ino = d->inode;
	rc = -EISDIR;
	if (S_ISDIR(ino->mode))
		goto out;
	rc = -EPERM;
	if (ino->fixed)
		goto out;
	remove_name(ns, d, dir);
	ino->nlink--;
	ns_now(&ino->ctime);
	ns_maybe_free(ns, ino);
	rc = 0;
out:
	ns_unlock(ns);
	return rc;
}

/* Marks a directory that lost its name as dead (its entries are gone). */
static void dir_kill(struct seg_ns *ns, struct seg_inode *sub)
{
	sub->u.dir.parent->nlink--;
	sub->nlink = 0;
	ns_now(&sub->ctime);
	ns_maybe_free(ns, sub);
}

int seg_rmdir(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_dentry *d;
	struct seg_inode *sub;
	int rc;

	ns_lock(ns);
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		goto out;
	sub = d->inode;
	rc = -ENOTDIR;
	if (!S_ISDIR(sub->mode))
		goto out;
	rc = -EPERM;
	if (sub->fixed)
		goto out;
	rc = -ENOTEMPTY;
	if (sub->u.dir.d.nentries != 0)
		goto out;
	remove_name(ns, d, dir);
	dir_kill(ns, sub);
	rc = 0;
out:
	ns_unlock(ns);
	return rc;
}

/* True when `dir` is `anc` or lies below it. */
static bool is_below(const struct seg_inode *dir, const struct seg_inode *anc)
{
	for (;;) {
		if (dir == anc)
			return true;
		if (dir->u.dir.parent == dir)
			return false;
		dir = dir->u.dir.parent;
	}
}

/* Moves a directory inode from one parent to another (counts and ".."). */
static void reparent(struct seg_inode *sub, struct seg_inode *from, struct seg_inode *to)
{
	if (!S_ISDIR(sub->mode) || from == to)
		return;
	from->nlink--;
	to->nlink++;
	sub->u.dir.parent = to;
}

static struct seg_inode *parent_of(const struct seg_dentry *d)
{
	return (struct seg_inode *)((char *)d->parent - offsetof(struct seg_inode, u.dir.d));
}

static int rename_exchange(struct seg_ns *ns, struct seg_dentry *a, struct seg_dentry *b)
{
	struct seg_inode *ia = a->inode, *ib = b->inode;
	struct seg_inode *pa = parent_of(a), *pb = parent_of(b);

	if (ia == ib)
		return 0;
	if (ia->fixed || ib->fixed)
		return -EPERM;
	if (S_ISDIR(ia->mode) && pa != pb && is_below(pb, ia))
		return -EINVAL;
	if (S_ISDIR(ib->mode) && pa != pb && is_below(pa, ib))
		return -EINVAL;
	reparent(ia, pa, pb);
	reparent(ib, pb, pa);
	a->inode = ib;
	b->inode = ia;
	ns_now(&ia->ctime);
	ib->ctime = ia->ctime;
	ns_dir_touch(pa);
	ns_dir_touch(pb);
	ns_changed(ns, SEG_CHANGE_NAME, pa, a->name, a->len, ib);
	ns_changed(ns, SEG_CHANGE_NAME, pb, b->name, b->len, ia);
	return 0;
}

/*
 * The checks of a plain rename from `src` to `newname` in `newdir`, where
 * `dst` is (NULL if nothing is there): 1 if there is nothing to do, 0 to
 * go ahead, or -errno.
 */
static int rename_check(struct seg_dentry *src, struct seg_inode *newdir,
			struct seg_dentry *dst, unsigned flags)
{
	struct seg_inode *ino = src->inode;

	/* rename(2): renaming a name onto a link to the same inode does nothing. */
	if (dst != NULL && dst->inode == ino)
		return 1;
	if (dst != NULL && (flags & SEG_RENAME_NOREPLACE))
		return -EEXIST;
	if (ino->fixed || (dst != NULL && dst->inode->fixed))
		return -EPERM;
	if (newdir->nlink == 0)
		return -ENOENT;
	if (S_ISDIR(ino->mode)) {
		if (is_below(newdir, ino))
			return -EINVAL;
		if (dst != NULL && !S_ISDIR(dst->inode->mode))
			return -ENOTDIR;
		if (dst != NULL && dst->inode->u.dir.d.nentries != 0)
			return -ENOTEMPTY;
	} else if (dst != NULL && S_ISDIR(dst->inode->mode)) {
		return -EISDIR;
	}
	return 0;
}

int seg_rename(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode *newdir, const char *newname, unsigned flags)
{
	struct seg_dentry *src, *dst, *nd;
	struct seg_inode *ino, *victim = NULL;
	size_t len;
	int rc;

	if (flags & ~(unsigned)(SEG_RENAME_NOREPLACE | SEG_RENAME_EXCHANGE) ||
	    flags == (SEG_RENAME_NOREPLACE | SEG_RENAME_EXCHANGE))
		return -EINVAL;
	rc = check_dir_name(newdir, newname, &len);
	if (rc < 0)
		return rc;
	/* The new name's dentry, should it be needed. */
	nd = dc_alloc(newname, len);
	if (nd == NULL)
		return -ENOMEM;
	ns_lock(ns);
	rc = find_entry(ns, dir, name, &src);
	if (rc < 0)
		goto out;
	dst = find(ns, newdir, newname, len);
	if (flags & SEG_RENAME_EXCHANGE) {
		rc = dst != NULL ? rename_exchange(ns, src, dst) : -ENOENT;
		goto out;
	}
	rc = rename_check(src, newdir, dst, flags);
	if (rc != 0) {
		rc = rc < 0 ? rc : 0;
		goto out;
	}

	/* Nothing can fail from here on. */
	ino = src->inode;
	if (dst != NULL) {
		/* Repoint the existing entry: the new name never disappears. */
		victim = dst->inode;
		dst->inode = ino;
		ns_dir_touch(newdir);
		ns_changed(ns, SEG_CHANGE_NAME, newdir, dst->name, dst->len, ino);
	} else {
		add_name(ns, newdir, nd, ino);
		nd = NULL;
	}
	remove_name(ns, src, dir);
	reparent(ino, dir, newdir);
	ns_now(&ino->ctime);
	if (victim != NULL) {
		if (S_ISDIR(victim->mode)) {
			dir_kill(ns, victim);
		} else {
			victim->nlink--;
			victim->ctime = ino->ctime;
			ns_maybe_free(ns, victim);
		}
	}
out:
	ns_unlock(ns);
	dc_free(nd);
	return rc;
}

int seg_replace(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		struct seg_inode *expect, struct seg_inode *ino)
{
	struct seg_dentry *d, *nd;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	nd = dc_alloc(name, len);
	if (nd == NULL)
		return -ENOMEM;
	ns_lock(ns);
	d = find(ns, dir, name, len);
	rc = -EINVAL;
	if (!S_ISREG(ino->mode) || !ino->linkable)
		goto out;
	rc = -ENOENT;
	if (dir->nlink == 0)
		goto out;
	rc = -EAGAIN;
	if (expect != NULL ? d == NULL || d->inode != expect : d != NULL)
		goto out;
	ino->nlink = 1;
	ino->linkable = false;
	ns_now(&ino->ctime);
	if (d != NULL) {
		/* As rename() over it: the name never goes missing. */
		d->inode = ino;
		expect->nlink--;
		expect->ctime = ino->ctime;
		ns_dir_touch(dir);
		ns_changed(ns, SEG_CHANGE_NAME, dir, d->name, d->len, ino);
		ns_maybe_free(ns, expect);
	} else {
		add_name(ns, dir, nd, ino);
		nd = NULL;
	}
	rc = 0;
out:
	ns_unlock(ns);
	dc_free(nd);
	return rc;
}
