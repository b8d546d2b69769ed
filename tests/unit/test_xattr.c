/*
 * Unit tests of core/xattr.c: setxattr(2)'s flags, the order listxattr(2)
 * shows, getxattr(2)'s sizes, and what an attribute costs, in the numbers
 * tmpfs charges (measured on a tmpfs of 2048 bytes of inode space: 41
 * empty attributes of 9-byte names fit, 13 of 100-byte values).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/xattr.h"

static struct seg_xattr *make(const char *name, const char *value)
{
	struct seg_xattr *x = xa_new(name, value, strlen(value));

	assert_non_null(x);
	return x;
}

/* Sets name=value with flags; returns the errno, and frees what was replaced. */
static int set(struct seg_xattr **head, const char *name, const char *value, int flags)
{
	struct seg_xattr *x = make(name, value), *old = (void *)1;
	int rc = xa_set(head, x, flags, &old);

	if (rc < 0) {
		assert_ptr_equal(old, (void *)1);
		xa_free(x);
	} else {
		xa_free(old);
	}
	return rc;
}

/* The value of name as a string, "<errno>" when there is none. */
static const char *get(const struct seg_xattr *head, const char *name)
{
	static char buf[256];
	size_t len = 0;
	int rc = xa_get(head, name, buf, sizeof buf - 1, &len);

	if (rc < 0) {
		snprintf(buf, sizeof buf, "<%d>", -rc);
		return buf;
	}
	buf[len] = '\0';
	return buf;
}

static void test_flags(void **state)
{
	struct seg_xattr *head = NULL;

	(void)state;
	assert_int_equal(set(&head, "user.a", "1", XA_REPLACE), -ENODATA);
	assert_null(head);
	assert_int_equal(set(&head, "user.a", "1", XA_CREATE), 0);
	assert_int_equal(set(&head, "user.a", "2", XA_CREATE), -EEXIST);
	assert_string_equal(get(head, "user.a"), "1");
	assert_int_equal(set(&head, "user.a", "3", XA_REPLACE), 0);
	assert_string_equal(get(head, "user.a"), "3");
	assert_int_equal(set(&head, "user.a", "", 0), 0);
	assert_string_equal(get(head, "user.a"), "");
	xa_free_all(head);
}

static bool not_trusted(const char *name, void *arg)
{
	(void)arg;
	return strncmp(name, "trusted.", 8) != 0;
}

static void test_list_order_and_filter(void **state)
{
	struct seg_xattr *head = NULL;
	char buf[64];
	size_t len = 0;

	(void)state;
	assert_int_equal(set(&head, "user.b", "x", 0), 0);
	assert_int_equal(set(&head, "trusted.t", "x", 0), 0);
	assert_int_equal(set(&head, "user.a", "x", 0), 0);
	/* Replacing keeps the place: the order is of first setting. */
	assert_int_equal(set(&head, "user.b", "yy", 0), 0);
	assert_int_equal(xa_list(head, NULL, 0, &len, NULL, NULL), 0);
	assert_int_equal(len, sizeof "user.b" + sizeof "trusted.t" + sizeof "user.a");
	assert_int_equal(xa_list(head, buf, sizeof buf, &len, NULL, NULL), 0);
	assert_memory_equal(buf, "user.b\0trusted.t\0user.a\0", len);
	assert_int_equal(xa_list(head, buf, len - 1, &len, NULL, NULL), -ERANGE);
	assert_int_equal(xa_list(head, buf, sizeof buf, &len, not_trusted, NULL), 0);
	assert_memory_equal(buf, "user.b\0user.a\0", len);
	xa_free_all(head);
}

static void test_get_sizes(void **state)
{
	struct seg_xattr *head = NULL;
	char buf[8];
	size_t len = 99;

	(void)state;
	assert_int_equal(set(&head, "user.v", "12345", 0), 0);
	assert_int_equal(xa_get(head, "user.v", NULL, 0, &len), 0);
	assert_int_equal(len, 5);
	assert_int_equal(xa_get(head, "user.v", buf, 4, &len), -ERANGE);
	assert_int_equal(xa_get(head, "user.v", buf, 5, &len), 0);
	assert_memory_equal(buf, "12345", 5);
	assert_int_equal(xa_get(head, "user.w", buf, sizeof buf, &len), -ENODATA);
	xa_free_all(head);
}

static void test_remove_and_take(void **state)
{
	struct seg_xattr *head = NULL, *old = NULL, *all;

	(void)state;
	assert_int_equal(set(&head, "user.a", "1", 0), 0);
	assert_int_equal(set(&head, "user.b", "2", 0), 0);
	assert_int_equal(xa_remove(&head, "user.c", &old), -ENODATA);
	assert_int_equal(xa_remove(&head, "user.a", &old), 0);
	assert_non_null(old);
	xa_free(old);
	assert_string_equal(get(head, "user.a"), "<61>");
	assert_string_equal(get(head, "user.b"), "2");
	all = xa_take_all(&head);
	assert_null(head);
	assert_non_null(all);
	xa_free_all(all);
	xa_free(NULL);
}

static bool only_user(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

static void test_space(void **state)
{
	struct seg_xattr *head = NULL;
	size_t n, v;

	(void)state;
	/* The tmpfs measurements of the header comment, in 2048 bytes. */
	n = 2048 / xa_space("user.a000", 0);
	assert_int_equal(n, 41);
	v = 2048 / xa_space("user.a000", 100);
	assert_int_equal(v, 13);
	assert_int_equal(set(&head, "user.a", "12345", 0), 0);
	assert_int_equal(set(&head, "trusted.b", "", 0), 0);
	assert_int_equal(xa_space_all(head, NULL), xa_space("user.a", 5) + xa_space("trusted.b", 0));
	assert_int_equal(xa_space_all(head, only_user), xa_space("user.a", 5));
	xa_free_all(head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_list_order_and_filter),
		cmocka_unit_test(test_get_sizes),
		cmocka_unit_test(test_remove_and_take),
		cmocka_unit_test(test_space),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
