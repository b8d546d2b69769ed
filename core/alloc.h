/*
 * The one allocation seam of core/.
 *
 * Every allocation in core/ goes through these wrappers so that the unit
 * tests can make the Nth allocation fail and check that each operation then
 * returns -ENOMEM, leaks nothing and leaves its object unchanged (the habit
 * of SQLite's test_malloc.c).  Fault injection costs one relaxed atomic load
 * when it is off.
 */
#ifndef SEGFS_CORE_ALLOC_H
#define SEGFS_CORE_ALLOC_H

#include <stddef.h>

/* Like malloc(3), calloc(3) and free(3).  seg_free(NULL) does nothing. */
void *seg_malloc(size_t size);
void *seg_calloc(size_t nmemb, size_t size);
void seg_free(void *p);

/*
 * Test hook: the next `n` allocations succeed, the one after that and every
 * later one fail, until seg_alloc_fail_reset().  n < 0 turns injection off.
 */
void seg_alloc_fail_after(long n);
void seg_alloc_fail_reset(void);

#endif
