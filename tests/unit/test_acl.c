/*
 * Unit tests of core/acl.c against the kernel: every expected value in
 * tests/data/acl_vectors.txt is what tmpfs made of an ACL (see
 * scripts/gen_acl_vectors.py for how and for the notation).
 *
 * SEGFS_TESTDATA names the directory of the data files (tests/data).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/acl.h"
#include "aclexample.h"

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fail_msg("out of memory");
	return p;
}

static int unhex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	fail_msg("bad hex digit %c", c);
	return 0;
}

/* Hex to bytes; "-" is empty. */
static uint8_t *unhex(const char *h, size_t *len)
{
	size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h);
	uint8_t *p;

	assert_int_equal(n % 2, 0);
	p = xmalloc(n / 2);
	for (size_t i = 0; i < n / 2; i++)
		p[i] = (uint8_t)(unhex_digit(h[2 * i]) << 4 | unhex_digit(h[2 * i + 1]));
	*len = n / 2;
	return p;
}

static mode_t octal(const char *s)
{
	return (mode_t)strtoul(s, NULL, 8);
}

/* Calls fn(argv, argc, lineno) for each vector line of `kind`; returns how many. */
static int each_vector(const char *kind, void (*fn)(char **argv, int argc, int line))
{
	const char *dir = getenv("SEGFS_TESTDATA");
	char path[4096], buf[2048];
	int n = 0, line = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/acl_vectors.txt", dir ? dir : "tests/data");
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s (set SEGFS_TESTDATA)", path);
	while (fgets(buf, sizeof buf, f) != NULL) {
		char *argv[8], *save = NULL;
		int argc = 0;

		line++;
		if (buf[0] == '#')
			continue;
		for (char *t = strtok_r(buf, " \n", &save); t != NULL && argc < 8;
		     t = strtok_r(NULL, " \n", &save))
			argv[argc++] = t;
		if (argc == 0 || strcmp(argv[0], kind) != 0)
			continue;
		fn(argv, argc, line);
		n++;
	}
	fclose(f);
	return n;
}

static void check_one(char **argv, int argc, int line)
{
	size_t size;
	uint8_t *v = unhex(argv[1], &size);
	int want = strcmp(argv[2], "OK") == 0 ? 0 : strcmp(argv[2], "EINVAL") == 0 ? -EINVAL
		   : strcmp(argv[2], "ENOTSUP") == 0 ? -EOPNOTSUPP : 1;

	assert_int_equal(argc, 3);
	if (acl_check(v, size) != want)
		fail_msg("line %d: acl_check gave %d, the kernel %s", line, acl_check(v, size),
			 argv[2]);
	free(v);
}

static void test_check(void **state)
{
	(void)state;
	assert_true(each_vector("check", check_one) >= 10);
}

static void equiv_one(char **argv, int argc, int line)
{
	size_t size;
	uint8_t *v = unhex(argv[1], &size);
	mode_t mode = octal(argv[2]) | S_IFREG;
	bool equiv;

	assert_int_equal(argc, 5);
	assert_int_equal(acl_check(v, size), 0);
	equiv = acl_equiv_mode(v, size, &mode);
	if (equiv != (strcmp(argv[3], "0") == 0) || mode != (octal(argv[4]) | S_IFREG))
		fail_msg("line %d: equiv %d mode %o, the kernel kept %s mode %s", line, equiv,
			 mode & 07777, argv[3], argv[4]);
	free(v);
}

static void test_equiv_mode(void **state)
{
	(void)state;
	assert_true(each_vector("equiv", equiv_one) >= 40);
}

static void chmod_one(char **argv, int argc, int line)
{
	size_t size, size_after;
	uint8_t *v = unhex(argv[1], &size), *after = unhex(argv[3], &size_after);

	assert_int_equal(argc, 4);
	assert_int_equal(size, size_after);
	acl_chmod(v, size, octal(argv[2]) | S_IFREG);
	if (memcmp(v, after, size) != 0)
		fail_msg("line %d: chmod %s gave another ACL than the kernel's", line, argv[2]);
	free(v);
	free(after);
}

static void test_chmod(void **state)
{
	(void)state;
	assert_true(each_vector("chmod", chmod_one) >= 10);
}

static void create_one(char **argv, int argc, int line)
{
	size_t size, size_after;
	uint8_t *v = unhex(argv[1], &size), *after = unhex(argv[4], &size_after);
	mode_t mode = octal(argv[2]) | S_IFREG;
	bool keep;

	assert_int_equal(argc, 6);
	keep = acl_create_masq(v, size, &mode);
	if (keep != (strcmp(argv[3], "1") == 0) || mode != (octal(argv[5]) | S_IFREG))
		fail_msg("line %d: keep %d mode %o, the kernel kept %s mode %s", line, keep,
			 mode & 07777, argv[3], argv[5]);
	if (keep && (size != size_after || memcmp(v, after, size) != 0))
		fail_msg("line %d: the inherited ACL is not the kernel's", line);
	free(v);
	free(after);
}

static void test_create_masq(void **state)
{
	(void)state;
	assert_true(each_vector("create", create_one) >= 40);
}

/* The example of acl.h, byte for byte. */
static void test_header_example(void **state)
{
	const uint8_t *v = acl_example;
	mode_t mode = S_IFREG | 0777;

	(void)state;
	assert_int_equal(acl_check(v, sizeof acl_example), 0);
	assert_false(acl_is_empty(v, sizeof acl_example));
	assert_false(acl_equiv_mode(v, sizeof acl_example, &mode));
	assert_int_equal(mode, S_IFREG | 0640);
	assert_true(acl_is_empty(v, 4));
	assert_int_equal(acl_check(v, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_equiv_mode),
		cmocka_unit_test(test_chmod),
		cmocka_unit_test(test_create_masq),
		cmocka_unit_test(test_header_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
