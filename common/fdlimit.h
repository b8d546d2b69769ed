/*
 * The file-descriptor limit, raised as far as allowed: both processes
 * hold a descriptor per segment (the server its open or recent files,
 * the supervisor its pins).
 */
#ifndef SEGFS_COMMON_FDLIMIT_H
#define SEGFS_COMMON_FDLIMIT_H

#include <stdint.h>

/*
 * Raises RLIMIT_NOFILE to fs.nr_open where privileged (CAP_SYS_RESOURCE),
 * else to the hard limit.  Returns the soft limit now (0 if unknown).
 */
uint64_t fdlimit_raise(void);

#endif
