/*
 * Extended attributes of one inode: a list of (name, value) pairs, in the
 * order they were first set, as tmpfs's simple_xattr keeps them.
 *
 * Each attribute is one allocation, made before its owner's lock is taken
 * (xa_new) and freed after it is dropped (xa_free), so that the lock only
 * ever moves pointers: xa_set and xa_remove hand back what they replaced
 * or took out.  Values are copied out under the lock; they are at most
 * XATTR_SIZE_MAX (64 KiB), which the kernel enforces before we see them.
 *
 * Names are whole ("user.x", "trusted.y"); which namespaces exist, and
 * who may see them, is the caller's business.
 */
#ifndef SEGFS_CORE_XATTR_H
#define SEGFS_CORE_XATTR_H

#include <stdbool.h>
#include <stddef.h>

struct seg_xattr;

/*
 * A new attribute, in no list; NULL when out of memory.  With value NULL
 * its `size` bytes are the caller's to fill (xa_data).  xa_free(NULL) is a
 * no-op.
 */
struct seg_xattr *xa_new(const char *name, const void *value, size_t size);
void xa_free(struct seg_xattr *x);
void *xa_data(struct seg_xattr *x);

/*
 * The value of `name` in the list, to read or change in place (its size
 * in *size), or NULL: under the owner's lock.
 */
void *xa_value(struct seg_xattr *head, const char *name, size_t *size);

/*
 * What an attribute costs against the filesystem's inode space, as tmpfs
 * counts it (simple_xattr_space): 40 for its bookkeeping, its name (no
 * NUL), its value.
 */
size_t xa_space(const char *name, size_t size);
size_t xa_size(const struct seg_xattr *x);

/* Flags of xa_set: setxattr(2)'s. */
#define XA_CREATE  0x1   /* fail with -EEXIST if it exists */
#define XA_REPLACE 0x2   /* fail with -ENODATA if it does not */

/*
 * Puts `x` into the list `*head`, in the place of an attribute of the same
 * name if there is one (*old then receives it, for the caller to free;
 * else NULL).  -EEXIST or -ENODATA by the flags, and nothing changes.
 */
int xa_set(struct seg_xattr **head, struct seg_xattr *x, int flags, struct seg_xattr **old);

/* Takes the attribute `name` out of the list into *old: -ENODATA if none. */
int xa_remove(struct seg_xattr **head, const char *name, struct seg_xattr **old);

/*
 * Copies the value of `name` into buf (size bytes) and its length into
 * *len: -ENODATA if there is none, -ERANGE if size is too small; size 0
 * asks for the length only.
 */
int xa_get(const struct seg_xattr *head, const char *name, void *buf, size_t size,
	   size_t *len);

/*
 * The names of the list, each NUL-terminated, into buf (size bytes; 0 asks
 * for the length), leaving out those `show` refuses (show NULL: all):
 * -ERANGE if size is too small.
 */
int xa_list(const struct seg_xattr *head, char *buf, size_t size, size_t *len,
	    bool (*show)(const char *name, void *arg), void *arg);

/* Walking a list: xa_next(NULL) is NULL. */
const struct seg_xattr *xa_next(const struct seg_xattr *x);
const char *xa_name(const struct seg_xattr *x);
const void *xa_bytes(const struct seg_xattr *x);
size_t xa_value_size(const struct seg_xattr *x);

/* Takes the whole list, to free with xa_free_all once unlocked. */
struct seg_xattr *xa_take_all(struct seg_xattr **head);
void xa_free_all(struct seg_xattr *head);

/* The sum of xa_space over the list, of the names `charged` accepts (NULL: all). */
size_t xa_space_all(const struct seg_xattr *head, bool (*charged)(const char *name));

#endif
