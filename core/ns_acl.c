/*
 * POSIX ACLs of the namespace's inodes (core/acl.h): kept as the extended
 * attributes system.posix_acl_access and system.posix_acl_default, with
 * the mode kept in step as tmpfs keeps it.  The kernel enforces them
 * (FUSE_POSIX_ACL) and checks who may set them; the namespace applies:
 *
 *   - setting an access ACL sets the permission bits it implies, and is
 *     not kept when the mode says it all (posix_acl_update_mode);
 *   - chmod rewrites the access ACL's owner, group class and other
 *     entries (posix_acl_chmod: seg_setattr, in ns.c, does it);
 *   - a new inode in a directory with a default ACL takes that ACL, masked
 *     by its mode, instead of the umask, and a new directory takes the
 *     default ACL too (posix_acl_create); elsewhere the umask applies.
 *
 * Unlike other attributes, ACLs cost no inode space: tmpfs keeps them in
 * the inode (i_acl), outside the simple_xattrs it charges.  With a
 * private tmpfs they are the tree's own ACLs of the file that stands for
 * the inode (the server's, which no permission check of its files asks
 * about): what a next server reads back.
 *
 * As everywhere in the namespace, the attributes a new inode takes are
 * allocated before the lock is taken (ns_acl_prepare) and filled in under
 * it (ns_acl_inherit); if the directory's default ACL changed size in
 * between, the create starts over.
 */
#include "core/ns.h"

#include "core/acl.h"
#include "core/ns_i.h"

#include <errno.h>
#include <string.h>

int seg_set_acl(struct seg_ns *ns, struct seg_inode *ino, bool deflt, const void *value,
		size_t size, bool kill_sgid)
{
	const char *name = deflt ? ACL_XATTR_DEFAULT : ACL_XATTR_ACCESS;
	struct seg_xattr *x = NULL, *old = NULL;
	mode_t mode = 0;
	bool keep = true;
	int rc;

	if (value != NULL) {
		rc = acl_check(value, size);
		if (rc < 0)
			return rc;
		if (acl_is_empty(value, size))
			value = NULL;
	}
	if (deflt && !S_ISDIR(ino->type))
		return value != NULL ? -EACCES : 0;
	if (S_ISLNK(ino->type))
		return -EOPNOTSUPP;
	/* An access ACL a mode says all of is not kept: only its bits are. */
	if (value != NULL && !deflt)
		keep = !acl_equiv_mode(value, size, &mode);
	if (value != NULL && keep) {
		x = xa_new(name, value, size);
		if (x == NULL)
			return -ENOMEM;
	}
	ns_lock(ns);
	rc = -EPERM;
	if (ns_pinned(ino))
		goto out;
	/* The tree first: what a next server will find. */
	rc = x != NULL ? ns_mirror_xattr(ns, ino, name, value, size)
		       : ns_unmirror_xattr(ns, ino, name);
	if (rc < 0)
		goto out;
	if (x != NULL) {
		xa_set(&ino->xattrs, x, 0, &old);
		x = NULL;
	} else {
		xa_remove(&ino->xattrs, name, &old);
	}
	if (value != NULL && !deflt) {
		mode_t m = (ns_mode(ino) & ~(mode_t)(S_IRWXU | S_IRWXG | S_IRWXO)) |
			   (mode & (S_IRWXU | S_IRWXG | S_IRWXO));

		/* The kernel's rule: a setter outside the group loses setgid. */
		if (kill_sgid)
			m &= ~(mode_t)S_ISGID;
		ns_set(ns, ino, RI_MODE, m);
	}
	ns_touch_ctime(ns, ino);
	rc = 0;
out:
	ns_unlock(ns);
	xa_free(x);
	xa_free(old);
	return rc;
}

int ns_acl_prepare(struct seg_ns *ns, struct seg_inode *dir, mode_t type,
		   struct ns_acl_prep *p)
{
	memset(p, 0, sizeof(*p));
	/* Symlinks take neither ACLs nor the umask. */
	if (S_ISLNK(type))
		return 0;
	ns_lock(ns);
	if (xa_value(dir->xattrs, ACL_XATTR_DEFAULT, &p->size) == NULL)
		p->size = 0;
	ns_unlock(ns);
	if (p->size == 0)
		return 0;
	p->access = xa_new(ACL_XATTR_ACCESS, NULL, p->size);
	if (S_ISDIR(type))
		p->deflt = xa_new(ACL_XATTR_DEFAULT, NULL, p->size);
	if (p->access == NULL || (S_ISDIR(type) && p->deflt == NULL)) {
		ns_acl_release(p);
		return -ENOMEM;
	}
	return 0;
}

int ns_acl_inherit(struct seg_ns *ns, struct seg_inode *dir, struct seg_inode *ino,
		   mode_t umask, struct ns_acl_prep *p)
{
	size_t size = 0;
	const uint8_t *d;
	struct seg_xattr *unused;
	mode_t mode = ns_mode(ino);

	if (S_ISLNK(ino->type))
		return 0;
	d = xa_value(dir->xattrs, ACL_XATTR_DEFAULT, &size);
	if (d == NULL)
		size = 0;
	if (size != p->size)
		return -EAGAIN;
	if (size == 0) {
		ns_set(ns, ino, RI_MODE, mode & ~(umask & 0777));
		return 0;
	}
	memcpy(xa_data(p->access), d, size);
	if (acl_create_masq(xa_data(p->access), size, &mode)) {
		xa_set(&ino->xattrs, p->access, 0, &unused);
		p->access = NULL;
	}
	ns_set(ns, ino, RI_MODE, mode);
	if (p->deflt != NULL) {
		memcpy(xa_data(p->deflt), d, size);
		xa_set(&ino->xattrs, p->deflt, 0, &unused);
		p->deflt = NULL;
	}
	return 0;
}

void ns_acl_release(struct ns_acl_prep *p)
{
	xa_free(p->access);
	xa_free(p->deflt);
	p->access = p->deflt = NULL;
}
