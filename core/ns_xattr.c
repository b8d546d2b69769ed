/*
 * Extended attributes of the namespace's inodes.  See ns.h for the
 * contracts and core/xattr.h for how an inode keeps them.
 *
 * An attribute is made before the lock is taken and the one it replaces
 * freed after the lock is dropped; under the lock only the list, the
 * inode space and the tmpfs change.  With a private tmpfs the attribute
 * is set on the file that stands for the inode in the tree first (its
 * commit), so that a server that starts after this one finds it there;
 * the list is what this server answers from.  As on tmpfs, attributes
 * and inodes share the inode space: an attribute that does not fit is
 * -ENOSPC.
 */
#include "core/ns.h"

#include "core/alloc.h"
#include "core/ns_i.h"

#include <errno.h>
#include <string.h>

/* Sets (value != NULL) or removes `name` on ino's stand-in in the tree. */
static int mirror(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		  const void *value, size_t size)
{
	char path[NS_PATH_MAX];
	struct tree_at at;
	int rc;

	if (ns->tree == NULL)
		return 0;
	rc = ns_tree_at(ino, &at, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (value != NULL)
		ns_mark_xattrs(ns, ino);
	rg_intent(ns->rg, RG_INTENT_XATTR, ino->ino, 0);
	return value != NULL ? tree_setxattr(ns->tree, &at, name, value, size)
	       : tree_removexattr(ns->tree, &at, name);
}

int ns_mirror_xattr(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		    const void *value, size_t size)
{
	/* An empty value is still a value: never NULL here. */
	return mirror(ns, ino, name, value != NULL ? value : "", size);
}

int ns_unmirror_xattr(struct seg_ns *ns, struct seg_inode *ino, const char *name)
{
	int rc = mirror(ns, ino, name, NULL, 0);

	/* Already gone there (a server that died after removing it). */
	return rc == -ENODATA ? 0 : rc;
}

int seg_getxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name, void *buf,
		 size_t size, size_t *len)
{
	int rc;

	ns_lock(ns);
	rc = xa_get(ino->xattrs, name, buf, size, len);
	ns_unlock(ns);
	return rc;
}

/*
 * The names as the tree's tmpfs lists them, which is the order a server
 * that rebuilds finds them in, and tmpfs's own: every server answers
 * alike.  Under ns->lock.
 */
static int list_tree(struct seg_ns *ns, struct seg_inode *ino, char *all, char *buf,
		     size_t size, size_t *len, bool (*show)(const char *name, void *arg),
		     void *arg)
{
	char path[NS_PATH_MAX];
	struct tree_at at;
	size_t n = 0, out = 0;
	int rc = ns_tree_at(ino, &at, path, sizeof(path));

	if (rc == 0)
		rc = tree_listxattr(ns->tree, &at, all, XATTR_LIST_BYTES, &n);
	for (size_t off = 0; rc == 0 && off < n; off += strlen(all + off) + 1) {
		size_t l = strlen(all + off) + 1;

		if (show != NULL && !show(all + off, arg))
			continue;
		if (size != 0 && out + l > size)
			return -ERANGE;
		if (size != 0)
			memcpy(buf + out, all + off, l);
		out += l;
	}
	if (rc == 0)
		*len = out;
	return rc;
}

int seg_listxattr(struct seg_ns *ns, struct seg_inode *ino, char *buf, size_t size,
		  size_t *len, bool (*show)(const char *name, void *arg), void *arg)
{
	char *all = NULL;
	int rc;

	if (ns->tree != NULL) {
		all = seg_malloc(XATTR_LIST_BYTES);
		if (all == NULL)
			return -ENOMEM;
	}
	ns_lock(ns);
	rc = all != NULL ? list_tree(ns, ino, all, buf, size, len, show, arg)
			 : xa_list(ino->xattrs, buf, size, len, show, arg);
	ns_unlock(ns);
	seg_free(all);
	return rc;
}

int seg_setxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		 const void *value, size_t size, int flags)
{
	struct seg_xattr *x = xa_new(name, value, size), *old = NULL;
	size_t want, have;
	int rc;

	if (x == NULL)
		return -ENOMEM;
	want = xa_size(x);
	ns_lock(ns);
	/*
	 * As shmem_xattr_handler_set: the new value must fit beside the old
	 * one, which is given back only once replaced.
	 */
	rc = ns_pinned(ino) ? -EPERM : want > ns_ispace_free(ns) ? -ENOSPC : 0;
	/* The flags' answer first: the tmpfs must not be asked in vain. */
	if (rc == 0 && (flags & (XA_CREATE | XA_REPLACE))) {
		bool exists = xa_value(ino->xattrs, name, &have) != NULL;

		if ((flags & XA_CREATE) && exists)
			rc = -EEXIST;
		else if ((flags & XA_REPLACE) && !exists)
			rc = -ENODATA;
	}
	if (rc == 0)
		rc = ns_mirror_xattr(ns, ino, name, value, size);
	if (rc == 0)
		rc = xa_set(&ino->xattrs, x, 0, &old);
	if (rc == 0) {
		ns->xattr_space += want - (old != NULL ? xa_size(old) : 0);
		ns_touch_ctime(ns, ino);
		x = NULL;
	}
	ns_unlock(ns);
	xa_free(x);
	xa_free(old);
	return rc;
}

int seg_removexattr(struct seg_ns *ns, struct seg_inode *ino, const char *name)
{
	struct seg_xattr *old = NULL;
	size_t have;
	int rc;

	ns_lock(ns);
	rc = ns_pinned(ino) ? -EPERM : xa_value(ino->xattrs, name, &have) == NULL ? -ENODATA : 0;
	if (rc == 0)
		rc = ns_unmirror_xattr(ns, ino, name);
	if (rc == 0)
		rc = xa_remove(&ino->xattrs, name, &old);
	if (rc == 0) {
		ns->xattr_space -= xa_size(old);
		ns_touch_ctime(ns, ino);
	}
	ns_unlock(ns);
	xa_free(old);
	return rc;
}
