#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Allocations left before injected failures start; < 0 means never. */
static atomic_long fail_countdown = -1;

static int should_fail(void)
{
	long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);

	if (n < 0)
		return 0;
	if (n == 0)
		return 1;
	/* Another thread may race us here; tests that inject are single threaded. */
	atomic_store_explicit(&fail_countdown, n - 1, memory_order_relaxed);
	return 0;
}

void *seg_malloc(size_t size)
{
	return should_fail() ? NULL : malloc(size);
}

void *seg_calloc(size_t nmemb, size_t size)
{
	return should_fail() ? NULL : calloc(nmemb, size);
}

void seg_free(void *p)
{
	free(p);
}

void seg_alloc_fail_after(long n)
{
	atomic_store(&fail_countdown, n);
}

void seg_alloc_fail_reset(void)
{
	atomic_store(&fail_countdown, -1);
}
