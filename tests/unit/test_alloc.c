/* Unit tests of core/alloc.c: the allocation seam and its fault injector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/alloc.h"

static void test_no_injection(void **state)
{
	void *p, *q;

	(void)state;
	seg_alloc_fail_reset();
	p = seg_malloc(16);
	q = seg_calloc(4, 4);
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal(((unsigned char *)q)[15], 0);
	seg_free(p);
	seg_free(q);
	seg_free(NULL);
}

static void test_fail_after(void **state)
{
	void *a, *b;

	(void)state;
	seg_alloc_fail_after(2);
	a = seg_malloc(8);
	b = seg_calloc(1, 8);
	assert_non_null(a);
	assert_non_null(b);
	/* The third and every later allocation fail until reset. */
	assert_null(seg_malloc(8));
	assert_null(seg_calloc(1, 8));
	seg_alloc_fail_reset();
	seg_free(a);
	seg_free(b);
	a = seg_malloc(8);
	assert_non_null(a);
	seg_free(a);
}

static void test_fail_first(void **state)
{
	(void)state;
	seg_alloc_fail_after(0);
	assert_null(seg_malloc(1));
	seg_alloc_fail_after(-1);
	seg_free(seg_malloc(1));
	seg_alloc_fail_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_injection),
		cmocka_unit_test(test_fail_after),
		cmocka_unit_test(test_fail_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
