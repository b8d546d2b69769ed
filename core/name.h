/*
 * Segment names: what a directory entry of segfs may be called.
 */
#ifndef SEGFS_CORE_NAME_H
#define SEGFS_CORE_NAME_H

#include <stddef.h>

/* The longest name, in bytes, as on tmpfs (NAME_MAX). */
#define SEG_NAME_MAX 255

/*
 * Checks that `name` (NUL-terminated) can name an entry: 1 to SEG_NAME_MAX
 * bytes, no '/', not "." or "..".  Any other byte, including non-UTF-8, is
 * allowed, as on tmpfs.  Returns 0, -EINVAL, or -ENAMETOOLONG; on success
 * stores the length in *len when len is not NULL.
 */
int seg_name_check(const char *name, size_t *len);

#endif
