/* Unit tests of core/name.c: which names an entry may have. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/name.h"

static void test_ordinary_names(void **state)
{
	size_t len = 0;

	(void)state;
	assert_int_equal(seg_name_check("a", &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(seg_name_check("psm_0123abcd", &len), 0);
	assert_int_equal(len, 12);
	/* Dots are fine except "." and ".." themselves. */
	assert_int_equal(seg_name_check("...", NULL), 0);
	assert_int_equal(seg_name_check(".hidden", NULL), 0);
	assert_int_equal(seg_name_check("sem.mp-abc", NULL), 0);
	/* Any byte but '/' and NUL, as on tmpfs: not only UTF-8. */
	assert_int_equal(seg_name_check("\xff\xfe\n\t ", NULL), 0);
}

static void test_refused_names(void **state)
{
	(void)state;
	assert_int_equal(seg_name_check("", NULL), -EINVAL);
	assert_int_equal(seg_name_check(".", NULL), -EINVAL);
	assert_int_equal(seg_name_check("..", NULL), -EINVAL);
	assert_int_equal(seg_name_check("a/b", NULL), -EINVAL);
	assert_int_equal(seg_name_check("/", NULL), -EINVAL);
}

static void test_length_limit(void **state)
{
	char name[SEG_NAME_MAX + 2];
	size_t len = 0;

	(void)state;
	memset(name, 'x', sizeof(name));
	name[SEG_NAME_MAX] = '\0';
	assert_int_equal(seg_name_check(name, &len), 0);
	assert_int_equal(len, 255);
	name[SEG_NAME_MAX] = 'x';
	name[SEG_NAME_MAX + 1] = '\0';
	len = 7;
	assert_int_equal(seg_name_check(name, &len), -ENAMETOOLONG);
	/* On error the out-parameter is untouched. */
	assert_int_equal(len, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary_names),
		cmocka_unit_test(test_refused_names),
		cmocka_unit_test(test_length_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
