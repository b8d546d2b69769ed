/*
 * Inspection: the read-only user.segfs.* attributes (server/inspect.c), shown
 * with -o xattr.
 */
#ifndef SEGFS_FS_INSPECT_H
#define SEGFS_FS_INSPECT_H

#include "server/node.h"

/* Big enough for every value; stats is the longest, at about 300 bytes. */
#define INSPECT_VALUE_MAX 512

/* Whether `name` is in the user.segfs. namespace. */
bool inspect_is_ours(const char *name);

/* The names `n` carries, NUL-terminated, `*len` bytes in all (0: none). */
const char *inspect_names(const struct node *n, size_t *len);
bool inspect_carries(const struct node *n, const char *name);

/*
 * The value of one of ours (INSPECT_VALUE_MAX bytes of buf at most):
 * -ENODATA for a name `n` does not carry.
 */
int inspect_value(struct segfs *fs, const struct node *n, const char *name, char *buf,
		  size_t *len);

#endif
