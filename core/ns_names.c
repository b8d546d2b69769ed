/*
 * Name operations of the namespace: lookup, create, tmpfile, mkdir, link,
 * unlink, rmdir, rename and replace.  See ns.h for their contracts.
 *
 * Each does its allocations (dentry, inode, its object in the tmpfs, its
 * record) before taking the lock and its freeing after dropping it
 * (ns_drop_dentry, the dead list), so that the lock covers only the tree,
 * the counts and the one system call that makes the change in the
 * tmpfs's tree (core/tree.h): its commit.  Under the lock every change
 * goes the same way: the checks; the request's intent, for a server that
 * must find out after a crash whether the change was made (core/region.h);
 * the commit; then the memory here, which cannot fail.  A create, which
 * must make a backing file, looks first (most opens with O_CREAT find the
 * name), makes the file without the lock, then looks again.
 */
#include "core/ns.h"

#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Common checks of a directory argument and a name in it. */
static int check_dir_name(const struct seg_inode *dir, const char *name, size_t *len)
{
	if (!S_ISDIR(dir->type))
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
	if (S_ISDIR(ino->type))
		ino->u.dir.name = d;
	ns_dir_touch(ns, dir);
	ns_changed(ns, SEG_CHANGE_NAME, dir, d->name, d->len, ino);
}

/* The path of `dir` in the tree, when there is a tree.  Under ns->lock. */
static int tree_path(struct seg_ns *ns, const struct seg_inode *dir, char *buf)
{
	if (ns->tree == NULL) {
		buf[0] = '\0';
		return 0;
	}
	return ns_dir_path(dir, buf, NS_PATH_MAX);
}

int seg_lookup_number(struct seg_ns *ns, uint64_t number, bool parent,
		      struct seg_inode **out, struct stat *st)
{
	struct seg_inode *ino;
	int rc = 0;

	ns_lock(ns);
	ino = ns_by_ino_find(ns, number);
	if (ino == NULL)
		rc = -ENOENT;
	else if (parent && !S_ISDIR(ino->type))
		rc = -ENOTDIR;
	else if (parent)
		ino = ino->u.dir.parent;
	if (rc == 0) {
		ns_add(ns, ino, RI_NLOOKUP, 1);
		ns_fill_stat(ns, ino, st);
		*out = ino;
	}
	ns_unlock(ns);
	return rc;
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
		ns_add(ns, d->inode, RI_NLOOKUP, 1);
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
	if (S_ISDIR(d->inode->type))
		return -EISDIR;
	ns_add(ns, d->inode, RI_NLOOKUP, 1);
	ns_fill_stat(ns, d->inode, st);
	*out = d->inode;
	return 1;
}

/*
 * The attributes a new inode took (its inherited ACLs), onto its object
 * in the tmpfs before it is named.  Under ns->lock.
 */
static int mirror_new_xattrs(struct seg_ns *ns, struct seg_inode *ino)
{
	struct tree_at at = { .ino = ino->ino };
	const struct seg_xattr *x;
	int rc = 0;

	if (ns->tree == NULL)
		return 0;
	if (S_ISDIR(ino->type))
		at.stage = ino->u.dir.stage;
	if (ino->xattrs != NULL)
		ns_mark_xattrs(ns, ino);
	for (x = ino->xattrs; x != NULL && rc == 0; x = xa_next(x))
		rc = tree_setxattr(ns->tree, &at, xa_name(x), xa_bytes(x), xa_value_size(x));
	return rc;
}

/*
 * Publishes a prepared inode and names it `d->name` in `dir` in the tree
 * (its commit): 0, or -errno with nothing changed.  Under ns->lock, after
 * every check.
 */
static int commit_new(struct seg_ns *ns, struct seg_inode *dir, const struct seg_dentry *d,
		      struct seg_inode *ino)
{
	char path[NS_PATH_MAX];
	int rc;

	/*
	 * Its stand-in may have attributes if the directory has any: the
	 * tmpfs itself gives it the directory's default ACL.
	 */
	if (ns_state(dir, RI_STATE_XATTRS))
		ns_mark_xattrs(ns, ino);
	rc = mirror_new_xattrs(ns, ino);
	if (rc == 0)
		rc = tree_path(ns, dir, path);
	if (rc < 0)
		return rc;
	ns_publish(ns, ino);
	if (ns->tree == NULL)
		return 0;
	rg_intent(ns->rg, RG_INTENT_NEW, ino->ino, 0);
	if (S_ISDIR(ino->type))
		rc = tree_place(ns->tree, ino->u.dir.stage, path, d->name);
	else
		rc = tree_link(ns->tree, ino->ino, path, d->name);
	if (rc < 0) {
		ns_unpublish(ns, ino);
		return rc;
	}
	if (S_ISDIR(ino->type))
		ino->u.dir.stage[0] = '\0';
	return 0;
}

int seg_create(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       mode_t mode, const struct seg_cred *who, int flags,
	       struct seg_inode **out, struct stat *st, bool *created)
{
	struct ns_acl_prep acl;
	struct seg_inode *ino;
	struct seg_dentry *d;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	/* Round again only if the directory's default ACL changed meanwhile. */
	do {
		ino = NULL;
		memset(&acl, 0, sizeof(acl));
		ns_lock(ns);
		rc = existing(ns, dir, name, len, flags, out, st);
		if (rc == 0)
			rc = ns_may_add(dir);
		if (rc == 0)
			rc = ns_take_slot(ns);
		ns_unlock(ns);
		if (rc != 0)
			break;

		/* Made without the lock: nothing can see them yet. */
		d = dc_alloc(name, len);
		rc = d == NULL ? -ENOMEM : ns_prepare(ns, S_IFREG | (mode & 07777), 0, NULL,
							 who, name, &ino);
		if (rc == 0)
			rc = ns_acl_prepare(ns, dir, S_IFREG, &acl);
		ns_lock(ns);
		if (rc == 0)
			rc = existing(ns, dir, name, len, flags, out, st);
		if (rc == 0)
			rc = ns_may_add(dir);
		if (rc == 0) {
			ns_inherit(ns, dir, ino);
			rc = ns_acl_inherit(ns, dir, ino, who->umask, &acl);
		}
		if (rc == 0)
			rc = commit_new(ns, dir, d, ino);
		if (rc != 0) {
			ns_give_slot(ns);
			ns_unlock(ns);
			dc_free(d);
			if (ino != NULL)
				ns_discard(ns, ino);
			ns_acl_release(&acl);
			continue;
		}
		ino->nlink = 1;
		ns_add(ns, ino, RI_NLOOKUP, 1);
		add_name(ns, dir, d, ino);
		ns_fill_stat(ns, ino, st);
		ns_unlock(ns);
		ns_acl_release(&acl);
		*out = ino;
		*created = true;
		return 0;
	} while (rc == -EAGAIN);
	if (rc == 1)
		*created = false;
	return rc < 0 ? rc : 0;
}

int seg_tmpfile(struct seg_ns *ns, struct seg_inode *dir, mode_t mode,
		const struct seg_cred *who, struct seg_inode **out, struct stat *st)
{
	struct ns_acl_prep acl;
	struct seg_inode *ino;
	int rc;

	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	do {
		ino = NULL;
		memset(&acl, 0, sizeof(acl));
		ns_lock(ns);
		rc = dir->nlink == 0 ? -ENOENT : ns_may_add(dir);
		if (rc == 0)
			rc = ns_take_slot(ns);
		ns_unlock(ns);
		if (rc < 0)
			return rc;
		rc = ns_prepare(ns, S_IFREG | (mode & 07777), 0, NULL, who, NULL, &ino);
		if (rc == 0)
			rc = ns_acl_prepare(ns, dir, S_IFREG, &acl);
		ns_lock(ns);
		if (rc == 0) {
			ns_inherit(ns, dir, ino);
			rc = ns_acl_inherit(ns, dir, ino, who->umask, &acl);
		}
		/* No name: ino/N alone keeps it, until it is linked or closed. */
		if (rc == 0)
			rc = mirror_new_xattrs(ns, ino);
		if (rc < 0) {
			ns_give_slot(ns);
		} else {
			ns_set(ns, ino, RI_STATE, ino->w[RI_STATE] | RI_STATE_LINKABLE);
			ns_publish(ns, ino);
			ns_add(ns, ino, RI_NLOOKUP, 1);
			ns_fill_stat(ns, ino, st);
			*out = ino;
		}
		ns_unlock(ns);
		if (rc < 0 && ino != NULL)
			ns_discard(ns, ino);
		ns_acl_release(&acl);
	} while (rc == -EAGAIN);
	return rc;
}

/*
 * Names `sub`, a prepared inode that holds no data, `d->name` in `dir`,
 * with one reference.  Under ns->lock.
 */
static int add_new(struct seg_ns *ns, struct seg_inode *dir, struct seg_dentry *d,
		   struct seg_inode *sub, mode_t umask, struct ns_acl_prep *acl, struct stat *st)
{
	int rc;

	/* A removed directory that is still open takes no new entries. */
	rc = dir->nlink == 0 ? -ENOENT : find(ns, dir, d->name, d->len) ? -EEXIST
	     : ns_may_add(dir);
	if (rc == 0)
		rc = ns_take_slot(ns);
	if (rc < 0)
		return rc;
	ns_inherit(ns, dir, sub);
	rc = ns_acl_inherit(ns, dir, sub, umask, acl);
	if (rc == 0)
		rc = commit_new(ns, dir, d, sub);
	if (rc < 0) {
		ns_give_slot(ns);
		return rc;
	}
	if (S_ISDIR(sub->type)) {
		sub->u.dir.parent = dir;
		dir->nlink++;
	} else {
		sub->nlink = 1;
	}
	ns_add(ns, sub, RI_NLOOKUP, 1);
	add_name(ns, dir, d, sub);
	ns_fill_stat(ns, sub, st);
	return 0;
}

/*
 * Makes and names a node: the common part of mkdir, mknod and symlink.
 */
static int make(struct seg_ns *ns, struct seg_inode *dir, const char *name, mode_t mode,
		dev_t rdev, const char *target, const struct seg_cred *who, mode_t umask,
		struct seg_inode **out, struct stat *st)
{
	struct ns_acl_prep acl = { 0 };
	struct seg_inode *sub = NULL;
	struct seg_dentry *d = NULL;
	size_t len;
	int rc = check_dir_name(dir, name, &len);

	if (rc == 0) {
		d = dc_alloc(name, len);
		rc = d == NULL ? -ENOMEM : 0;
	}
	if (rc == 0)
		rc = ns_prepare(ns, mode, rdev, target, who, NULL, &sub);
	/* Round again only if the directory's default ACL changed meanwhile. */
	while (rc == 0) {
		rc = ns_acl_prepare(ns, dir, mode & S_IFMT, &acl);
		if (rc < 0)
			break;
		/* What a failed round's ns_inherit may have set goes back. */
		sub->w[RI_MODE] = mode;
		sub->w[RI_GID] = who->gid;
		ns_lock(ns);
		rc = add_new(ns, dir, d, sub, umask, &acl, st);
		ns_unlock(ns);
		ns_acl_release(&acl);
		if (rc != -EAGAIN)
			break;
		xa_free_all(sub->xattrs);
		sub->xattrs = NULL;
		rc = 0;
	}
	if (rc < 0) {
		dc_free(d);
		if (sub != NULL)
			ns_discard(ns, sub);
		return rc;
	}
	*out = sub;
	return 0;
}

int seg_mkdir(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	      mode_t mode, const struct seg_cred *who,
	      struct seg_inode **out, struct stat *st)
{
	return make(ns, dir, name, S_IFDIR | (mode & 07777), 0, NULL, who, who->umask, out, st);
}

int seg_mknod(struct seg_ns *ns, struct seg_inode *dir, const char *name, mode_t mode,
	      dev_t rdev, const struct seg_cred *who, struct seg_inode **out, struct stat *st)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return make(ns, dir, name, (mode & S_IFMT) | (mode & 07777), rdev, NULL, who,
		    who->umask, out, st);
}

int seg_symlink(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		const char *target, const struct seg_cred *who,
		struct seg_inode **out, struct stat *st)
{
	size_t len = strlen(target);

	/* As tmpfs: the target and its NUL fit a page. */
	if (len == 0)
		return -ENOENT;
	if (len >= SEG_TARGET_MAX)
		return -ENAMETOOLONG;
	return make(ns, dir, name, S_IFLNK | 0777, 0, target, who, 0, out, st);
}

int seg_link(struct seg_ns *ns, struct seg_inode *ino, struct seg_inode *dir,
	     const char *name, struct stat *st)
{
	char path[NS_PATH_MAX];
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
	rc = ns_may_add(dir);
	if (rc < 0)
		goto out;
	rc = -EPERM;
	if (S_ISDIR(ino->type) || ns_pinned(ino))
		goto out;
	/* A segment whose last name is gone cannot be linked again, as on tmpfs. */
	rc = -ENOENT;
	if (ino->nlink == 0 && !ns_state(ino, RI_STATE_LINKABLE))
		goto out;
	rc = -EMLINK;
	if (ino->nlink == UINT32_MAX)
		goto out;
	rc = tree_path(ns, dir, path);
	if (rc < 0)
		goto out;
	rc = ns_name_add(ns, ino);
	if (rc < 0)
		goto out;
	if (ns->tree != NULL) {
		rg_intent(ns->rg, RG_INTENT_LINK, ino->ino, 0);
		rc = tree_link(ns->tree, ino->ino, path, name);
		if (rc < 0) {
			ns_name_drop(ns, ino);
			goto out;
		}
	}
	ns_set(ns, ino, RI_STATE, ino->w[RI_STATE] & ~(uint64_t)RI_STATE_LINKABLE);
	ns_add(ns, ino, RI_NLOOKUP, 1);
	ns_touch_ctime(ns, ino);
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
	ns_dir_touch(ns, dir);
}

int seg_unlink(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	char path[NS_PATH_MAX];
	struct seg_dentry *d;
	struct seg_inode *ino;
	int rc;

	ns_lock(ns);
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		goto out;
	ino = d->inode;
	rc = -EISDIR;
	if (S_ISDIR(ino->type))
		goto out;
	rc = -EPERM;
	if (ns_state(ino, RI_STATE_FIXED) || ns_may_remove(dir, ino) < 0)
		goto out;
	rc = tree_path(ns, dir, path);
	if (rc < 0)
		goto out;
	if (ns->tree != NULL) {
		rg_intent(ns->rg, RG_INTENT_REMOVE, ino->ino, 0);
		rc = tree_unlink(ns->tree, path, name);
		if (rc < 0)
			goto out;
	}
	remove_name(ns, d, dir);
	ns_name_drop(ns, ino);
	ns_touch_ctime(ns, ino);
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
	sub->u.dir.name = NULL;
	ns_touch_ctime(ns, sub);
	ns_maybe_free(ns, sub);
}

/* Whether the kernel or a stream still uses `ino`: kept in gone/ if removed. */
static bool held(const struct seg_inode *ino)
{
	return ns_nlookup(ino) > 0 || ns_nopen(ino) > 0;
}

int seg_rmdir(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	char path[NS_PATH_MAX];
	struct seg_dentry *d;
	struct seg_inode *sub;
	int rc;

	ns_lock(ns);
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		goto out;
	sub = d->inode;
	rc = -ENOTDIR;
	if (!S_ISDIR(sub->type))
		goto out;
	rc = -EPERM;
	if (ns_state(sub, RI_STATE_FIXED) || ns_may_remove(dir, sub) < 0)
		goto out;
	rc = -ENOTEMPTY;
	if (sub->u.dir.d.nentries != 0)
		goto out;
	rc = tree_path(ns, dir, path);
	if (rc < 0)
		goto out;
	if (ns->tree != NULL) {
		rg_intent(ns->rg, RG_INTENT_REMOVE, sub->ino, 0);
		rc = tree_rmdir(ns->tree, path, name, sub->ino, held(sub));
		if (rc < 0)
			goto out;
	}
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
	if (!S_ISDIR(sub->type) || from == to)
		return;
	from->nlink--;
	to->nlink++;
	sub->u.dir.parent = to;
}

static struct seg_inode *parent_of(const struct seg_dentry *d)
{
	return (struct seg_inode *)((char *)d->parent - offsetof(struct seg_inode, u.dir.d));
}

/*
 * Exchanges the inodes of names `a` and `b`.  Each name is then its
 * directory's newest, b's newer still, as tmpfs orders them (the
 * kernel's d_exchange puts both first, b's name in front): `na` and `nb`
 * are their new dentries, a's name and b's.
 */
static int rename_exchange(struct seg_ns *ns, struct seg_dentry *a, struct seg_dentry *b,
			   struct seg_dentry *na, struct seg_dentry *nb)
{
	struct seg_inode *ia = a->inode, *ib = b->inode;
	struct seg_inode *pa = parent_of(a), *pb = parent_of(b);
	char path_a[NS_PATH_MAX], path_b[NS_PATH_MAX];
	struct timespec now;
	int rc;

	if (ia == ib)
		return 0;
	if (ns_state(ia, RI_STATE_FIXED) || ns_state(ib, RI_STATE_FIXED) ||
	    ns_may_remove(pa, ia) < 0 || ns_may_remove(pb, ib) < 0)
		return -EPERM;
	if (S_ISDIR(ia->type) && pa != pb && is_below(pb, ia))
		return -EINVAL;
	if (S_ISDIR(ib->type) && pa != pb && is_below(pa, ib))
		return -EINVAL;
	rc = tree_path(ns, pa, path_a);
	if (rc == 0)
		rc = tree_path(ns, pb, path_b);
	if (rc < 0)
		return rc;
	if (ns->tree != NULL) {
		rg_intent(ns->rg, RG_INTENT_RENAME, ia->ino, ib->ino);
		rc = tree_rename(ns->tree, path_a, a->name, path_b, b->name, RENAME_EXCHANGE);
		if (rc < 0)
			return rc;
	}
	reparent(ia, pa, pb);
	reparent(ib, pb, pa);
	ns_drop_dentry(ns, a);
	ns_drop_dentry(ns, b);
	add_name(ns, pa, na, ib);
	add_name(ns, pb, nb, ia);
	ns_now(&now);
	ns_set_time(ns, ia, RI_CTIME, &now);
	ns_set_time(ns, ib, RI_CTIME, &now);
	return 0;
}

/*
 * The checks of a plain rename from `src` to `newname` in `newdir`, where
 * `dst` is (NULL if nothing is there): 1 if there is nothing to do, 0 to
 * go ahead, or -errno.
 */
static int rename_check(struct seg_inode *dir, struct seg_dentry *src, struct seg_inode *newdir,
			struct seg_dentry *dst, unsigned flags)
{
	struct seg_inode *ino = src->inode;

	/* rename(2): renaming a name onto a link to the same inode does nothing. */
	if (dst != NULL && dst->inode == ino)
		return 1;
	if (dst != NULL && (flags & SEG_RENAME_NOREPLACE))
		return -EEXIST;
	/* The kernel's may_delete, then may_create or may_delete. */
	if (ns_may_remove(dir, ino) < 0 ||
	    (dst != NULL ? ns_may_remove(newdir, dst->inode) : ns_may_add(newdir)) < 0)
		return -EPERM;
	if (ns_state(ino, RI_STATE_FIXED) ||
	    (dst != NULL && ns_state(dst->inode, RI_STATE_FIXED)))
		return -EPERM;
	if (newdir->nlink == 0)
		return -ENOENT;
	if (S_ISDIR(ino->type)) {
		if (is_below(newdir, ino))
			return -EINVAL;
		if (dst != NULL && !S_ISDIR(dst->inode->type))
			return -ENOTDIR;
		if (dst != NULL && dst->inode->u.dir.d.nentries != 0)
			return -ENOTEMPTY;
	} else if (dst != NULL && S_ISDIR(dst->inode->type)) {
		return -EISDIR;
	}
	return 0;
}

/*
 * The rename in the tree, with the whiteout `wo` (if any) named at the
 * old name after it: undone if that fails, so that both or neither are
 * made.  Under ns->lock.
 */
static int tree_rename_with(struct seg_ns *ns, struct seg_inode *dir, const char *name,
			    struct seg_inode *newdir, const char *newname, unsigned flags,
			    struct seg_inode *ino, struct seg_inode *wo)
{
	char path[NS_PATH_MAX], newpath[NS_PATH_MAX];
	int rc;

	if (ns->tree == NULL)
		return 0;
	rc = tree_path(ns, dir, path);
	if (rc == 0)
		rc = tree_path(ns, newdir, newpath);
	if (rc < 0)
		return rc;
	rg_intent(ns->rg, RG_INTENT_RENAME, ino->ino, wo != NULL ? wo->ino : 0);
	rc = tree_rename(ns->tree, path, name, newpath, newname,
			 (flags & SEG_RENAME_NOREPLACE) ? RENAME_NOREPLACE : 0);
	if (rc < 0 || wo == NULL)
		return rc;
	rc = tree_link(ns->tree, wo->ino, path, name);
	if (rc < 0)
		tree_rename(ns->tree, newpath, newname, path, name, RENAME_NOREPLACE);
	return rc;
}

int seg_rename(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode *newdir, const char *newname, unsigned flags,
	       const struct seg_cred *who)
{
	struct seg_dentry *src, *dst, *nd, *wd = NULL;
	struct seg_inode *ino, *victim = NULL, *wo = NULL;
	bool slot = false;
	size_t len, wlen;
	int rc;

	if (flags & ~(unsigned)(SEG_RENAME_NOREPLACE | SEG_RENAME_EXCHANGE | SEG_RENAME_WHITEOUT) ||
	    ((flags & SEG_RENAME_EXCHANGE) && (flags & ~(unsigned)SEG_RENAME_EXCHANGE)) ||
	    ((flags & SEG_RENAME_WHITEOUT) && who == NULL))
		return -EINVAL;
	rc = check_dir_name(newdir, newname, &len);
	if (rc == 0 && (flags & (SEG_RENAME_WHITEOUT | SEG_RENAME_EXCHANGE)))
		rc = check_dir_name(dir, name, &wlen);
	if (rc < 0)
		return rc;
	/*
	 * The new name's dentry, and the old name's again for a whiteout or
	 * an exchange.
	 */
	nd = dc_alloc(newname, len);
	rc = nd == NULL ? -ENOMEM : 0;
	if (rc == 0 && (flags & (SEG_RENAME_WHITEOUT | SEG_RENAME_EXCHANGE))) {
		wd = dc_alloc(name, wlen);
		rc = wd == NULL ? -ENOMEM : 0;
	}
	if (rc == 0 && (flags & SEG_RENAME_WHITEOUT))
		rc = ns_prepare(ns, S_IFCHR | SEG_WHITEOUT_MODE, SEG_WHITEOUT_DEV, NULL, who,
				NULL, &wo);
	if (rc < 0)
		goto free;
	ns_lock(ns);
	rc = find_entry(ns, dir, name, &src);
	if (rc < 0)
		goto out;
	dst = find(ns, newdir, newname, len);
	if (flags & SEG_RENAME_EXCHANGE) {
		rc = dst != NULL ? rename_exchange(ns, src, dst, wd, nd) : -ENOENT;
		if (rc == 0 && src->inode != dst->inode)
			wd = nd = NULL;   /* named now (two links to one inode: nothing done) */
		goto out;
	}
	rc = rename_check(dir, src, newdir, dst, flags);
	/* A whiteout is an inode: it needs a slot. */
	if (rc == 0 && wo != NULL) {
		rc = ns_take_slot(ns);
		slot = rc == 0;
	}
	if (rc == 0 && wo != NULL) {
		ns_inherit(ns, dir, wo);
		ns_publish(ns, wo);
	}
	if (rc == 0) {
		rc = tree_rename_with(ns, dir, name, newdir, newname, flags, src->inode, wo);
		if (rc < 0 && wo != NULL)
			ns_unpublish(ns, wo);
	}
	if (rc != 0) {
		if (slot)
			ns_give_slot(ns);
		rc = rc < 0 ? rc : 0;
		goto out;
	}

	/*
	 * Nothing can fail from here on.  The new name is the directory's
	 * newest, over an old one or not, as tmpfs makes it (and so the tree:
	 * a restarted server lists what the dead one did, in its order).  No
	 * lookup sees the name missing: they wait for ns->lock.
	 */
	ino = src->inode;
	if (dst != NULL) {
		victim = dst->inode;
		ns_drop_dentry(ns, dst);
	}
	add_name(ns, newdir, nd, ino);
	nd = NULL;
	remove_name(ns, src, dir);
	reparent(ino, dir, newdir);
	ns_touch_ctime(ns, ino);
	if (victim != NULL) {
		if (S_ISDIR(victim->type)) {
			dir_kill(ns, victim);
		} else {
			ns_name_drop(ns, victim);
			ns_set(ns, victim, RI_CTIME, ino->w[RI_CTIME]);
			ns_set(ns, victim, RI_CTIME_NS, ino->w[RI_CTIME_NS]);
			ns_maybe_free(ns, victim);
		}
	}
	/* What overlayfs asks for: the old name now shows a whiteout. */
	if (wo != NULL) {
		wo->nlink = 1;
		add_name(ns, dir, wd, wo);
		wo = NULL;
		wd = NULL;
	}
out:
	ns_unlock(ns);
free:
	dc_free(nd);
	dc_free(wd);
	if (wo != NULL)
		ns_discard(ns, wo);
	return rc;
}

int seg_replace(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		struct seg_inode *expect, struct seg_inode *ino)
{
	char path[NS_PATH_MAX];
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
	if (!S_ISREG(ino->type) || !ns_state(ino, RI_STATE_LINKABLE))
		goto out;
	rc = -ENOENT;
	if (dir->nlink == 0)
		goto out;
	rc = -EAGAIN;
	if (expect != NULL ? d == NULL || d->inode != expect : d != NULL)
		goto out;
	rc = expect != NULL ? ns_may_remove(dir, expect) : ns_may_add(dir);
	if (rc == 0)
		rc = tree_path(ns, dir, path);
	if (rc < 0)
		goto out;
	if (ns->tree != NULL) {
		rg_intent(ns->rg, RG_INTENT_REPLACE, ino->ino, expect != NULL ? expect->ino : 0);
		rc = d != NULL ? tree_replace(ns->tree, ino->ino, path, name)
			       : tree_link(ns->tree, ino->ino, path, name);
		if (rc < 0)
			goto out;
	}
	ino->nlink = 1;
	ns_set(ns, ino, RI_STATE, ino->w[RI_STATE] & ~(uint64_t)RI_STATE_LINKABLE);
	ns_touch_ctime(ns, ino);
	if (d != NULL) {
		/* As rename() over it: the name never goes missing. */
		d->inode = ino;
		ns_name_drop(ns, expect);
		ns_set(ns, expect, RI_CTIME, ino->w[RI_CTIME]);
		ns_set(ns, expect, RI_CTIME_NS, ino->w[RI_CTIME_NS]);
		ns_dir_touch(ns, dir);
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
