/*
 * Extended attributes of the namespace's inodes.  See ns.h for the
 * contracts and core/xattr.h for how an inode keeps them.
 *
 * An attribute is made before the lock is taken and the one it replaces
 * freed after the lock is dropped; under the lock only the list and the
 * inode space change.  As on tmpfs, attributes and inodes share the inode
 * space: an attribute that does not fit is -ENOSPC.
 */
#include "core/ns.h"

#include "core/ns_i.h"

#include <errno.h>

int seg_getxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name, void *buf,
		 size_t size, size_t *len)
{
	int rc;

	ns_lock(ns);
	rc = xa_get(ino->xattrs, name, buf, size, len);
	ns_unlock(ns);
	return rc;
}

int seg_listxattr(struct seg_ns *ns, struct seg_inode *ino, char *buf, size_t size,
		  size_t *len, bool (*show)(const char *name, void *arg), void *arg)
{
	int rc;

	ns_lock(ns);
	rc = xa_list(ino->xattrs, buf, size, len, show, arg);
	ns_unlock(ns);
	return rc;
}

int seg_setxattr(struct seg_ns *ns, struct seg_inode *ino, const char *name,
		 const void *value, size_t size, int flags)
{
	struct seg_xattr *x = xa_new(name, value, size), *old = NULL;
	size_t want;
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
	if (rc == 0)
		rc = xa_set(&ino->xattrs, x, flags, &old);
	if (rc == 0) {
		ns->xattr_space += want - (old != NULL ? xa_size(old) : 0);
		ns_now(&ino->ctime);
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
	int rc;

	ns_lock(ns);
	rc = ns_pinned(ino) ? -EPERM : xa_remove(&ino->xattrs, name, &old);
	if (rc == 0) {
		ns->xattr_space -= xa_size(old);
		ns_now(&ino->ctime);
	}
	ns_unlock(ns);
	xa_free(old);
	return rc;
}
