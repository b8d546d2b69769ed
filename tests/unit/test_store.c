/*
 * Unit tests of core/store.c, the backing store: files made, held, stat'ed
 * and released; the descriptor budget and eviction; reservations against
 * the size limit; writes the store never sees; allocation failures.  Every
 * test runs twice: on the private tmpfs (where the process may make one)
 * and on memfds.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/store.h"

#define PAGE 4096

static bool memfd_run;

static struct seg_store *new_store(uint64_t size_limit, uint64_t fd_budget)
{
	struct store_config cfg = { .size_limit = size_limit, .fd_budget = fd_budget,
				    .memfd = memfd_run };
	struct seg_store *st = NULL;

	assert_int_equal(store_new(&cfg, &st), 0);
	assert_non_null(st);
	return st;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fd_is_open(fd);
	return n;
}

static uint64_t used_pages(struct seg_store *st)
{
	uint64_t used, total;

	store_usage(st, &used, &total);
	return used;
}

static void test_backing_and_limit(void **state)
{
	struct seg_store *st = new_store(1 << 20, 0);
	int why = -1;

	(void)state;
	if (memfd_run) {
		assert_int_equal(store_backing(st, &why), SEG_BACKING_MEMFD);
		assert_int_equal(why, 0);            /* asked for */
	} else if (store_backing(st, &why) == SEG_BACKING_MEMFD) {
		assert_true(why < 0);                /* why not the tmpfs */
	} else {
		assert_int_equal(why, 0);
	}
	assert_int_equal(store_size_limit(st), 1 << 20);
	store_free(st);
	store_free(NULL);
	/* 0: half of RAM, as tmpfs. */
	st = new_store(0, 0);
	assert_true(store_size_limit(st) > (1 << 20));
	store_free(st);
}

/*
 * huge=: one of tmpfs's four values or -EINVAL; the tmpfs has it, or
 * "never" and why not where the kernel refused it; memfds have none.
 */
static void test_huge(void **state)
{
	struct store_config cfg = { .size_limit = 1 << 20, .memfd = memfd_run,
				    .huge = "sometimes" };
	struct seg_store *st = NULL;
	const char *huge;
	char asked[16];
	int why = -1;

	(void)state;
	assert_int_equal(store_new(&cfg, &st), -EINVAL);
	assert_null(st);
	/* The value is copied: the caller's string may go. */
	snprintf(asked, sizeof(asked), "within_size");
	cfg.huge = asked;
	assert_int_equal(store_new(&cfg, &st), 0);
	memset(asked, 0, sizeof(asked));
	huge = store_huge(st, &why);
	if (store_backing(st, NULL) == SEG_BACKING_MEMFD) {
		assert_null(huge);
		assert_int_equal(why, 0);
	} else if (why == 0) {
		assert_string_equal(huge, "within_size");
	} else {
		assert_string_equal(huge, "never");
	}
	store_free(st);
	/* None asked for: the kernel's default. */
	cfg.huge = NULL;
	assert_int_equal(store_new(&cfg, &st), 0);
	huge = store_huge(st, &why);
	assert_int_equal(why, 0);
	if (huge != NULL)
		assert_string_equal(huge, "never");
	store_free(st);
}

/* A file: made empty and idle, held, resized, stat'ed, destroyed. */
static void test_file_lifecycle(void **state)
{
	int fds0 = count_fds(), fd, fd2;
	struct seg_store *st = new_store(1 << 30, 0);
	struct store_file f;
	struct store_stat m;

	(void)state;
	assert_int_equal(store_create(st, &f, 7, "seg"), 0);
	assert_int_equal(store_nfds(st), 1);
	assert_int_equal(store_stat(st, &f, &m), 0);
	assert_int_equal(m.size, 0);
	assert_int_equal(used_pages(st), 0);
	assert_int_equal(store_hold(st, &f, &fd), 0);
	assert_int_equal(store_hold(st, &f, &fd2), 0);   /* holds nest */
	assert_int_equal(fd, fd2);
	assert_int_equal(store_fd(&f), fd);
	/* Growing allocates the pages at once; shrinking gives them back. */
	assert_int_equal(store_resize(st, &f, 10000), 0);
	assert_int_equal(store_stat(st, &f, &m), 0);
	assert_int_equal(m.size, 10000);
	assert_true(m.blocks * 512 >= 3 * PAGE);
	assert_int_equal(used_pages(st), 3);
	assert_int_equal(store_resize(st, &f, 100), 0);
	assert_int_equal(used_pages(st), 1);
	assert_int_equal(store_resize(st, &f, -1), -EINVAL);
	assert_int_equal(pwrite(fd, "abc", 3, 0), 3);
	store_drop(st, &f);
	store_drop(st, &f);
	store_destroy(st, &f);
	assert_int_equal(store_nfds(st), 0);
	assert_int_equal(used_pages(st), 0);
	assert_false(fd_is_open(fd));
	store_free(st);
	assert_int_equal(count_fds(), fds0);
}

/*
 * The budget: beyond it, idle files lose their descriptors (in the tmpfs)
 * and come back by name with their bytes; stat of an evicted file answers
 * from what it was; a held file keeps its descriptor.  Memfds cannot be
 * evicted, so there every file keeps one.
 */
static void test_budget_and_eviction(void **state)
{
	int fds0 = count_fds(), fd, held;
	struct seg_store *st = new_store(1 << 30, 4);
	struct store_file f[20];
	struct store_stat m;
	char name[16], buf[16];

	(void)state;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(store_create(st, &f[i], 100 + (uint64_t)i, NULL), 0);
		assert_int_equal(store_hold(st, &f[i], &fd), 0);
		assert_int_equal(store_resize(st, &f[i], 5000 + i), 0);
		memset(name, 0, sizeof(name));
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(pwrite(fd, name, sizeof(name), 0), (ssize_t)sizeof(name));
		store_drop(st, &f[i]);
	}
	if (memfd_run || store_backing(st, NULL) == SEG_BACKING_MEMFD) {
		assert_int_equal(store_nfds(st), 20);
	} else {
		assert_true(store_nfds(st) <= 4);
		assert_true(count_fds() <= fds0 + 1 + 4);   /* the tmpfs and the budget */
	}
	/* Hold one: it keeps its descriptor however many others come back. */
	assert_int_equal(store_hold(st, &f[0], &held), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(store_stat(st, &f[i], &m), 0);
		assert_int_equal(m.size, 5000 + i);
		assert_true(m.blocks * 512 >= 5000 + i);
		assert_int_equal(store_hold(st, &f[i], &fd), 0);
		assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
		snprintf(name, sizeof(name), "f%d", i);
		assert_string_equal(buf, name);
		store_drop(st, &f[i]);
		assert_int_equal(store_fd(&f[0]), held);
		assert_true(fd_is_open(held));
	}
	store_drop(st, &f[0]);
	for (int i = 0; i < 20; i++)
		store_destroy(st, &f[i]);
	assert_int_equal(used_pages(st), 0);
	assert_int_equal(store_nfds(st), 0);
	store_free(st);
	assert_int_equal(count_fds(), fds0);
}

/*
 * The fixture of the limit tests: a store of `pages` pages (the test's
 * prestate) with two files, a and b, made and held.  Its teardown drops
 * and destroys them and frees the store: every page must be back.
 */
struct two {
	struct seg_store *st;
	struct store_file a, b;
};

static const uint64_t pages64 = 64, pages16 = 16;

static int two_setup(void **state)
{
	const uint64_t *pages = *state;
	struct two *t = calloc(1, sizeof(*t));
	int fd;

	assert_non_null(t);
	t->st = new_store(*pages * PAGE, 0);
	assert_int_equal(store_create(t->st, &t->a, 1, "a"), 0);
	assert_int_equal(store_create(t->st, &t->b, 2, "b"), 0);
	assert_int_equal(store_hold(t->st, &t->a, &fd), 0);
	assert_int_equal(store_hold(t->st, &t->b, &fd), 0);
	*state = t;
	return 0;
}

static int two_teardown(void **state)
{
	struct two *t = *state;

	store_drop(t->st, &t->a);
	store_drop(t->st, &t->b);
	store_destroy(t->st, &t->a);
	store_destroy(t->st, &t->b);
	assert_int_equal(used_pages(t->st), 0);
	store_free(t->st);
	free(t);
	return 0;
}

/* Growing past the limit is ENOSPC, and changes nothing. */
static void test_reserve_limit(void **state)
{
	struct two *t = *state;
	struct seg_store *st = t->st;
	struct store_file *a = &t->a, *b = &t->b;
	struct store_stat m;

	assert_int_equal(store_resize(st, a, 40 * PAGE), 0);
	assert_int_equal(store_resize(st, b, 30 * PAGE), -ENOSPC);
	assert_int_equal(store_stat(st, b, &m), 0);
	assert_int_equal(m.size, 0);
	assert_int_equal(used_pages(st), 40);
	assert_int_equal(store_reserve(st, b, 30 * PAGE), -ENOSPC);
	assert_int_equal(store_reserve(st, b, 20 * PAGE), 0);
	assert_int_equal(store_stat(st, b, &m), 0);
	assert_int_equal(m.size, 0);                 /* reserving keeps the size */
	assert_int_equal(used_pages(st), 60);
	/* Shrinking one makes room for the other. */
	assert_int_equal(store_resize(st, a, 0), 0);
	assert_int_equal(store_resize(st, b, 60 * PAGE), 0);
	assert_int_equal(used_pages(st), 60);
}

/*
 * fallocate counts against the limit before it allocates, allocates once
 * (a page fallocated and never written stays a hole, as on tmpfs), and
 * gives back what it counted when it fails; punching counts nothing.
 */
static void test_fallocate(void **state)
{
	struct two *t = *state;
	struct seg_store *st = t->st;
	struct store_file *a = &t->a, *b = &t->b;
	struct store_stat m;

	assert_int_equal(store_fallocate(st, a, FALLOC_FL_KEEP_SIZE, 0, 40 * PAGE), 0);
	assert_int_equal(store_stat(st, a, &m), 0);
	assert_int_equal(m.size, 0);
	assert_int_equal(used_pages(st), 40);
	/* Allocated, never written: a hole, as tmpfs's own fallocate leaves it. */
	assert_int_equal(store_resize(st, a, 8 * PAGE), 0);
	assert_int_equal(lseek(a->fd, 0, SEEK_HOLE), 0);
	assert_int_equal(store_fallocate(st, b, 0, 0, 30 * PAGE), -ENOSPC);
	assert_int_equal(store_stat(st, b, &m), 0);
	assert_int_equal(m.size, 0);
	assert_int_equal(store_fallocate(st, b, 0, 4 * PAGE, 20 * PAGE), 0);
	assert_int_equal(store_stat(st, b, &m), 0);
	assert_int_equal(m.size, 24 * PAGE);
	/* Never sparse: the pages below the range are allocated too. */
	assert_int_equal(used_pages(st), 64);
	assert_int_equal(store_fallocate(st, b, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 0, 4 * PAGE), 0);
	assert_int_equal(store_fallocate(st, b, 0, 0, 32 * PAGE), -ENOSPC);
	/* What the failed call counted was given back: with a's pages freed, it fits. */
	assert_int_equal(store_resize(st, a, 0), 0);
	assert_int_equal(store_fallocate(st, b, 0, 0, 32 * PAGE), 0);
}

/*
 * Writes the store never sees (a passthrough write()): the tmpfs refuses
 * them past the limit by itself; with memfds they are counted once
 * settled, before the next reservation and when the file stops being
 * reachable unseen.
 */
static void test_unseen_writes(void **state)
{
	struct two *t = *state;
	struct seg_store *st = t->st;
	struct store_file *f = &t->a, *g = &t->b;
	int fd = store_fd(f);
	char page[PAGE];

	memset(page, 'x', sizeof(page));
	store_set_unseen(st, f, true);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pwrite(fd, page, PAGE, (off_t)i * PAGE), PAGE);
	assert_int_equal(used_pages(st), 10);
	/* Room for 6 more pages, not 7. */
	assert_int_equal(store_resize(st, g, 7 * PAGE), -ENOSPC);
	assert_int_equal(store_resize(st, g, 6 * PAGE), 0);
	if (store_backing(st, NULL) == SEG_BACKING_TMPFS) {
		/* Full: the kernel refuses the next unseen page itself. */
		errno = 0;
		assert_int_equal(pwrite(fd, page, PAGE, 10 * PAGE), -1);
		assert_int_equal(errno, ENOSPC);
	}
	store_set_unseen(st, f, false);
}

static void test_utimens(void **state)
{
	struct seg_store *st = new_store(1 << 20, 0);
	struct timespec ts[2] = { { .tv_sec = 1000 }, { .tv_sec = 2000, .tv_nsec = 5 } };
	struct store_file f;
	struct store_stat m;
	int fd;

	(void)state;
	assert_int_equal(store_create(st, &f, 1, "f"), 0);
	assert_int_equal(store_hold(st, &f, &fd), 0);
	assert_int_equal(store_utimens(st, &f, ts), 0);
	store_drop(st, &f);
	assert_int_equal(store_stat(st, &f, &m), 0);
	assert_int_equal(m.atime.tv_sec, 1000);
	assert_int_equal(m.mtime.tv_sec, 2000);
	assert_int_equal(m.mtime.tv_nsec, 5);
	store_destroy(st, &f);
	store_free(st);
}

/* Out of memory making a store: -ENOMEM, and nothing leaks. */
static void test_enomem(void **state)
{
	struct store_config cfg = { .memfd = memfd_run };
	int fds0 = count_fds();

	(void)state;
	for (long n = 0; n < 10; n++) {
		struct seg_store *st = NULL;
		int rc;

		seg_alloc_fail_after(n);
		rc = store_new(&cfg, &st);
		seg_alloc_fail_reset();
		if (rc == 0) {
			store_free(st);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
		assert_null(st);
		assert_int_equal(count_fds(), fds0);
	}
	assert_int_equal(count_fds(), fds0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backing_and_limit),
		cmocka_unit_test(test_file_lifecycle),
		cmocka_unit_test(test_budget_and_eviction),
		cmocka_unit_test_prestate_setup_teardown(test_reserve_limit, two_setup,
							 two_teardown, (void *)&pages64),
		cmocka_unit_test_prestate_setup_teardown(test_fallocate, two_setup,
							 two_teardown, (void *)&pages64),
		cmocka_unit_test_prestate_setup_teardown(test_unseen_writes, two_setup,
							 two_teardown, (void *)&pages16),
		cmocka_unit_test(test_utimens),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_enomem),
	};
	int failed = cmocka_run_group_tests_name("tmpfs where possible", tests, NULL, NULL);

	memfd_run = true;
	return failed + cmocka_run_group_tests_name("memfd", tests, NULL, NULL);
}
