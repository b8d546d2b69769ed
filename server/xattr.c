/*
 * Extended attributes, as tmpfs has them.
 *
 *   user.*       on regular files and directories (the kernel refuses the
 *                other kinds before asking us);
 *   trusted.*    for CAP_SYS_ADMIN: the kernel checks getting and setting,
 *                and listings leave them out for other callers, as
 *                tmpfs's simple_xattr_list does;
 *   security.*   as the kernel and its LSMs allow;
 *   system.posix_acl_access, system.posix_acl_default
 *                POSIX ACLs, which the kernel enforces (FUSE_POSIX_ACL)
 *                and the namespace keeps in step with the mode
 *                (core/ns.h: seg_set_acl).
 *
 * Other names are EOPNOTSUPP, as on tmpfs.  The kernel refuses names over
 * 255 bytes (ERANGE) and values over 64 KiB (E2BIG) before we see them.
 * With -o xattr the read-only inspection attributes user.segfs.*
 * (server/inspect.c) come first; without, such names are user.* like any
 * other.  lists/ entries (views) have no attributes of their own.
 *
 * The cost.  A filesystem that answers getxattr is asked, by the kernel's
 * do_truncate and file_remove_privs, for security.capability before a
 * truncate and before a write, unless the inode is known to have none
 * (S_NOSEC).  With FUSE_HANDLE_KILLPRIV_V2 (server/init.c) a write sets that
 * flag until the inode's attributes are next refreshed, but a truncate
 * never does: the first ftruncate of every new segment costs one more
 * round trip (7 requests in a create-ftruncate-unlink lifecycle instead
 * of 6).  -o noxattr leaves the attribute requests out of the session:
 * libfuse answers ENOSYS once and the kernel stops asking, with no
 * extended attributes and no ACLs.
 */
#include "server/node.h"
#include "server/inspect.h"

#include "core/acl.h"
#include "core/xattr.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>

static bool has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

static bool is_acl(const char *name)
{
	return strcmp(name, ACL_XATTR_ACCESS) == 0 || strcmp(name, ACL_XATTR_DEFAULT) == 0;
}

/* The namespaces tmpfs keeps. */
static bool supported(const char *name)
{
	return has_prefix(name, "user.") || has_prefix(name, "trusted.") ||
	       has_prefix(name, "security.") || is_acl(name);
}

/* Whether `name` is an inspection attribute and inspection is on. */
static bool inspected(const struct segfs *fs, const char *name)
{
	return fs->opts->xattr == XATTR_INSPECT && inspect_is_ours(name);
}

/*
 * getxattr and listxattr answer alike: a caller's size of 0 asks for the
 * length, a smaller one than needed is ERANGE.
 */
static void reply_sized(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

void xattr_get(fuse_req_t req, struct node *n, const char *name, size_t size)
{
	struct segfs *fs = fs_of(req);
	char small[INSPECT_VALUE_MAX], *buf = small;
	size_t len = 0;
	int rc;

	if (inspected(fs, name)) {
		rc = inspect_value(fs, n, name, buf, &len);
		if (rc < 0)
			reply_err(req, rc);
		else
			reply_sized(req, buf, len, size);
		return;
	}
	if (n->ino == NULL || !supported(name)) {
		reply_err(req, n->ino == NULL ? -ENODATA : -EOPNOTSUPP);
		return;
	}
	if (size > sizeof(small)) {
		buf = malloc(size);
		if (buf == NULL) {
			reply_err(req, -ENOMEM);
			return;
		}
	}
	rc = seg_getxattr(fs->ns, n->ino, name, buf, size, &len);
	if (rc < 0)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	if (buf != small)
		free(buf);
}

/* listxattr's filter: trusted.* only for callers the caller allows. */
static bool show_name(const char *name, void *arg)
{
	const int *trusted = arg;

	return *trusted || !has_prefix(name, "trusted.");
}

/* Notes, under the namespace lock, whether any trusted.* name is there. */
static bool note_trusted(const char *name, void *arg)
{
	bool *seen = arg;

	*seen |= has_prefix(name, "trusted.");
	return true;
}

void xattr_list(fuse_req_t req, struct node *n, size_t size)
{
	struct segfs *fs = fs_of(req);
	size_t ours = 0, len = 0;
	const char *names = "";
	bool seen = false;
	int trusted = 1, rc;
	char *buf;

	if (fs->opts->xattr == XATTR_INSPECT)
		names = inspect_names(n, &ours);
	if (n->ino == NULL) {
		reply_sized(req, names, ours, size);
		return;
	}
	/*
	 * trusted.* names only for CAP_SYS_ADMIN, which costs a /proc read:
	 * asked only when there are such names.
	 */
	rc = seg_listxattr(fs->ns, n->ino, NULL, 0, &len, note_trusted, &seen);
	if (rc == 0 && seen) {
		struct caller c;

		trusted = caller_query(req, 0, &c) == 0 && caller_capable(&c, CAP_SYS_ADMIN);
		if (!trusted)
			rc = seg_listxattr(fs->ns, n->ino, NULL, 0, &len, show_name, &trusted);
	}
	if (rc < 0 || size == 0) {
		if (rc < 0)
			reply_err(req, rc);
		else
			fuse_reply_xattr(req, len + ours);
		return;
	}
	if (size < ours) {
		reply_err(req, -ERANGE);
		return;
	}
	buf = malloc(size);
	if (buf == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	/* (A capacity of 0 would ask for the length: there is no room.) */
	if (size == ours)
		rc = len > 0 ? -ERANGE : 0;
	else
		rc = seg_listxattr(fs->ns, n->ino, buf, size - ours, &len, show_name, &trusted);
	if (rc < 0) {
		reply_err(req, rc);
	} else {
		memcpy(buf + len, names, ours);
		fuse_reply_buf(req, buf, len + ours);
	}
	free(buf);
}

/*
 * Setting an access ACL takes setgid away from a setter outside the
 * file's group without CAP_FSETID, as the kernel's posix_acl_update_mode
 * does (libfuse does not pass on the kernel's FUSE_SETXATTR_ACL_KILL_SGID,
 * so we ask /proc, only for a file that is setgid).
 */
static bool acl_kills_sgid(fuse_req_t req, struct node *n)
{
	struct segfs *fs = fs_of(req);
	struct caller c;
	struct stat st;

	if (seg_getattr(fs->ns, n->ino, &st) < 0 || !(st.st_mode & S_ISGID))
		return false;
	if (caller_query(req, st.st_gid, &c) < 0)
		return false;
	return !c.in_group && !caller_capable(&c, CAP_FSETID);
}

/*
 * A resent set or removal that a dead server made (its answer recorded,
 * or its intent recorded and the attribute now as asked): done.  Without
 * that, XATTR_CREATE would be EEXIST the second time, and a removal
 * ENODATA.
 */
static bool set_already(struct segfs *fs, struct node *n, const char *name, const char *value,
			size_t size)
{
	uint64_t a, b;
	size_t len;
	char *have;
	bool same;

	if (req_replayed(&a, &b))
		return true;
	if (!req_intent(RG_INTENT_XATTR, &a, &b) || a != seg_inode_number(n->ino))
		return false;
	have = malloc(size ? size : 1);
	same = have != NULL && seg_getxattr(fs->ns, n->ino, name, have, size, &len) == 0 &&
	       len == size && memcmp(have, value, size) == 0;
	free(have);
	return same;
}

static bool removed_already(struct segfs *fs, struct node *n, const char *name)
{
	uint64_t a, b;
	size_t len;

	if (req_replayed(&a, &b))
		return true;
	return req_intent(RG_INTENT_XATTR, &a, &b) && a == seg_inode_number(n->ino) &&
	       seg_getxattr(fs->ns, n->ino, name, NULL, 0, &len) == -ENODATA;
}

void xattr_set(fuse_req_t req, struct node *n, const char *name, const char *value,
	       size_t size, int flags)
{
	struct segfs *fs = fs_of(req);
	int rc;

	if (inspected(fs, name)) {
		reply_err(req, -EPERM);    /* ours, and read-only */
		return;
	}
	if (n->ino == NULL || !supported(name)) {
		reply_err(req, -EOPNOTSUPP);
		return;
	}
	if (set_already(fs, n, name, value, size)) {
		reply_err(req, 0);
		return;
	}
	if (is_acl(name))
		rc = seg_set_acl(fs->ns, n->ino, strcmp(name, ACL_XATTR_DEFAULT) == 0, value,
				 size, strcmp(name, ACL_XATTR_ACCESS) == 0 &&
				 acl_kills_sgid(req, n));
	else
		rc = seg_setxattr(fs->ns, n->ino, name, value, size, flags);
	if (rc == 0)
		req_result(fs, 0, 0);
	reply_err(req, rc);
}

void xattr_remove(fuse_req_t req, struct node *n, const char *name)
{
	struct segfs *fs = fs_of(req);
	int rc;

	if (inspected(fs, name)) {
		reply_err(req, inspect_carries(n, name) ? -EPERM : -ENODATA);
		return;
	}
	if (n->ino == NULL || !supported(name)) {
		reply_err(req, n->ino == NULL ? -ENODATA : -EOPNOTSUPP);
		return;
	}
	if (removed_already(fs, n, name)) {
		reply_err(req, 0);
		return;
	}
	if (is_acl(name)) {
		size_t len;

		/* Removing what is not there is ENODATA, as for any name. */
		rc = seg_getxattr(fs->ns, n->ino, name, NULL, 0, &len);
		if (rc == 0)
			rc = seg_set_acl(fs->ns, n->ino, strcmp(name, ACL_XATTR_DEFAULT) == 0,
					 NULL, 0, false);
	} else {
		rc = seg_removexattr(fs->ns, n->ino, name);
	}
	if (rc == 0)
		req_result(fs, 0, 0);
	reply_err(req, rc);
}
