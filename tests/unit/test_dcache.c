/*
 * Unit tests of core/dcache.c, the dentry table: names found by (parent,
 * name), creation order, cursors that survive removals, growth done the
 * way the namespace does it (buckets allocated by the caller), and a
 * seeded random differential test against a plain array.
 *
 * Usage: test_dcache [SEED]
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/dcache.h"

static unsigned long seed = 20261202;

/* Inodes are only pointers to the table: any distinct addresses do. */
static char inodes[1024];
#define INO(i) ((struct seg_inode *)(void *)&inodes[i])

static struct seg_dentry *add(struct seg_dcache *dc, struct dc_dir *dir, const char *name,
			      int ino)
{
	struct seg_dentry *d = dc_alloc(name, strlen(name));

	assert_non_null(d);
	dc_add(dc, dir, d, INO(ino));
	return d;
}

static struct seg_dentry *find(struct seg_dcache *dc, struct dc_dir *dir, const char *name)
{
	return dc_find(dc, dir, name, strlen(name));
}

/* Grows the table as ns_unlock does. */
static void grow(struct seg_dcache *dc)
{
	size_t n = dc_grow_size(dc);

	if (n != 0) {
		struct seg_dentry **b = seg_calloc(n, sizeof(*b));

		assert_non_null(b);
		seg_free(dc_rehash(dc, b, n));
	}
}

static void test_find_add_remove(void **state)
{
	struct seg_dcache dc;
	struct dc_dir a, b;
	struct seg_dentry *d;

	(void)state;
	assert_int_equal(dc_init(&dc), 0);
	dc_dir_init(&a);
	dc_dir_init(&b);
	add(&dc, &a, "x", 1);
	add(&dc, &b, "x", 2);           /* the same name in another directory */
	add(&dc, &a, "y", 3);
	assert_ptr_equal(find(&dc, &a, "x")->inode, INO(1));
	assert_ptr_equal(find(&dc, &b, "x")->inode, INO(2));
	assert_ptr_equal(find(&dc, &a, "y")->inode, INO(3));
	assert_null(find(&dc, &b, "y"));
	assert_null(find(&dc, &a, "xx"));
	/* Names are bytes: a NUL-free prefix is not a match. */
	assert_null(dc_find(&dc, &a, "x", 0));
	assert_int_equal(a.nentries, 2);
	assert_int_equal(dc.nentries, 3);
	d = find(&dc, &a, "x");
	dc_remove(&dc, d);
	dc_free(d);
	assert_null(find(&dc, &a, "x"));
	assert_int_equal(a.nentries, 1);
	d = find(&dc, &a, "y");
	dc_remove(&dc, d);
	dc_free(d);
	d = find(&dc, &b, "x");
	dc_remove(&dc, d);
	dc_free(d);
	assert_int_equal(dc.nentries, 0);
	/* Removed dentries are the caller's to free. */
	dc_free(NULL);
	dc_destroy(&dc);
}

/* Readdir's walk: creation order, cookies, and a parked cursor. */
static void test_order_and_cursor(void **state)
{
	struct seg_dcache dc;
	struct dc_dir dir;
	struct dc_node cursor, *n;
	struct seg_dentry *e[6];
	char name[8];
	int seen = 0;

	(void)state;
	assert_int_equal(dc_init(&dc), 0);
	dc_dir_init(&dir);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		e[i] = add(&dc, &dir, name, i);
		assert_int_equal(e[i]->cookie, DC_FIRST_COOKIE + (uint64_t)i);
	}
	/* The first entry after a cookie; none after the last. */
	assert_ptr_equal(dc_first_after(&dir, 0)->entry, e[0]);
	assert_ptr_equal(dc_first_after(&dir, e[2]->cookie)->entry, e[3]);
	assert_true(dc_end(&dir, dc_first_after(&dir, e[5]->cookie)));
	/* A cursor parked before e3 survives the removal of e2 and e3. */
	dc_cursor_init(&cursor);
	dc_park(&cursor, &e[3]->node);
	dc_remove(&dc, e[2]);
	dc_remove(&dc, e[3]);
	dc_free(e[2]);
	dc_free(e[3]);
	add(&dc, &dir, "late", 9);      /* added after: seen at the end */
	for (n = cursor.next; !dc_end(&dir, n); n = n->next) {
		if (n->entry == NULL)
			continue;
		seen++;
	}
	assert_int_equal(seen, 3);       /* e4, e5, late */
	dc_unpark(&cursor);
	/* A walk skips cursors. */
	dc_park(&cursor, &e[1]->node);
	seen = 0;
	for (n = dir.entries.next; !dc_end(&dir, n); n = n->next)
		seen += n->entry != NULL;
	assert_int_equal(seen, 5);
	dc_unpark(&cursor);
	for (n = dir.entries.next; !dc_end(&dir, n);) {
		struct seg_dentry *d = n->entry;

		n = n->next;
		dc_remove(&dc, d);
		dc_free(d);
	}
	dc_destroy(&dc);
}

/*
 * Random adds and removes in three directories against an array, growing
 * the table the namespace's way; every name stays findable.
 */
static void test_differential(void **state)
{
	enum { DIRS = 3, NAMES = 300 };
	struct seg_dcache dc;
	struct dc_dir dirs[DIRS];
	struct seg_dentry *model[DIRS][NAMES];
	char name[16];

	(void)state;
	memset(model, 0, sizeof(model));
	srandom((unsigned)seed);
	assert_int_equal(dc_init(&dc), 0);
	for (int d = 0; d < DIRS; d++)
		dc_dir_init(&dirs[d]);
	for (int step = 0; step < 20000; step++) {
		int d = (int)(random() % DIRS), i = (int)(random() % NAMES);

		snprintf(name, sizeof(name), "name-%d", i);
		if (model[d][i] == NULL) {
			assert_null(find(&dc, &dirs[d], name));
			model[d][i] = add(&dc, &dirs[d], name, i);
		} else {
			assert_ptr_equal(find(&dc, &dirs[d], name), model[d][i]);
			dc_remove(&dc, model[d][i]);
			dc_free(model[d][i]);
			model[d][i] = NULL;
		}
		grow(&dc);
		if (step % 997 != 0)
			continue;
		for (int dd = 0; dd < DIRS; dd++)
			for (int ii = 0; ii < NAMES; ii++) {
				snprintf(name, sizeof(name), "name-%d", ii);
				assert_ptr_equal(find(&dc, &dirs[dd], name), model[dd][ii]);
			}
	}
	assert_true(dc.nbuckets >= 256);
	for (int d = 0; d < DIRS; d++)
		for (int i = 0; i < NAMES; i++)
			if (model[d][i] != NULL) {
				dc_remove(&dc, model[d][i]);
				dc_free(model[d][i]);
			}
	assert_int_equal(dc.nentries, 0);
	dc_destroy(&dc);
}

/* A rehash that lost the race (the table grew meanwhile) returns the new buckets. */
static void test_rehash_race(void **state)
{
	struct seg_dcache dc;
	struct seg_dentry **b;

	(void)state;
	assert_int_equal(dc_init(&dc), 0);
	assert_int_equal(dc_grow_size(&dc), 0);   /* not full */
	b = seg_calloc(dc.nbuckets, sizeof(*b));
	assert_ptr_equal(dc_rehash(&dc, b, dc.nbuckets), b);
	seg_free(b);
	dc_destroy(&dc);
	seg_alloc_fail_after(0);
	assert_int_equal(dc_init(&dc), -ENOMEM);
	seg_alloc_fail_reset();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_add_remove),
		cmocka_unit_test(test_order_and_cursor),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_rehash_race),
	};

	if (argc > 1)
		seed = strtoul(argv[1], NULL, 0);
	printf("test_dcache: differential seed %lu\n", seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
