/*
 * Unit tests of core/ns.c: names, counts and lifetimes, rename rules,
 * directory streams, limits, allocation failures, and a seeded random
 * differential test against a small reference model.  Every test runs
 * three times: with segments in the namespace's private tmpfs (where the
 * process may make one) and in memfds, and again in the tmpfs with what a
 * next server needs kept (the tree, the records, pinned files: keep.h).
 *
 * Usage: test_ns [SEED]   (the differential test's seed; default fixed)
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
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/ns.h"
#include "aclexample.h"
#include "keep.h"

static unsigned long seed = 20261122;

/* The run: memfds asked for (cfg.memfd), or the tmpfs where possible. */
static bool memfd_run;

/* The run that keeps the tree, the records and pinned files (keep.h). */
static bool keep_run;
static struct keep keep;

/*
 * seg_ns_new and seg_ns_free of every test: in the keeping run, each
 * namespace gets a fresh state tmpfs, region and pin holder, freed with it.
 */
static int ns_new_failing(struct seg_ns_config *cfg, struct seg_ns **out, long fail_after)
{
	int rc;

	if (keep_run) {
		assert_true(keep_new(&keep));
		keep_apply(&keep, cfg);
	}
	/* Allocations fail in the namespace, not in what the test keeps for it. */
	seg_alloc_fail_after(fail_after);
	rc = seg_ns_new(cfg, out);
	seg_alloc_fail_reset();
	if (rc < 0 && keep_run)
		keep_free(&keep);
	return rc;
}

static int ns_new(struct seg_ns_config *cfg, struct seg_ns **out)
{
	return ns_new_failing(cfg, out, -1);
}

static void ns_free(struct seg_ns *ns)
{
	seg_ns_free(ns);
	if (keep_run && ns != NULL)
		keep_free(&keep);
}

/* Who asks: uid, gid, pid. */
#define WHO(u, g, p) (&(struct seg_cred){ .uid = (u), .gid = (g), .pid = (p) })

/*
 * Adds what a layer above adds to the root, as the lists/ view does: a
 * fixed directory called "lists".  The counts below include it.
 */
static struct seg_inode *fix_lists(struct seg_ns *ns)
{
	struct seg_inode *d = NULL;
	struct stat st;

	assert_int_equal(seg_mkdir(ns, seg_ns_root(ns), "lists", 0755, WHO(0, 0, 0), &d, &st), 0);
	seg_inode_fix(ns, d);
	seg_forget(ns, d, 1);
	return d;
}

static struct seg_ns *new_ns(uint64_t nr_segments)
{
	struct seg_ns_config cfg = { .nr_segments = nr_segments, .size_limit = 1 << 30,
				     .memfd = memfd_run };
	struct seg_ns *ns = NULL;

	assert_int_equal(ns_new(&cfg, &ns), 0);
	assert_non_null(ns);
	fix_lists(ns);
	return ns;
}

static struct seg_inode *mk(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_inode *ino = NULL;
	struct stat st;
	bool created = false;

	assert_int_equal(seg_create(ns, dir, name, 0640, WHO(1000, 100, 0), SEG_CREATE_EXCL,
				    &ino, &st, &created), 0);
	assert_true(created);
	return ino;
}

static struct seg_inode *mkd(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_inode *ino = NULL;
	struct stat st;

	assert_int_equal(seg_mkdir(ns, dir, name, 0755, WHO(0, 0, 0), &ino, &st), 0);
	return ino;
}

/* Looks a name up and gives the kernel reference straight back. */
static int peek(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		struct seg_inode **ino, struct stat *st)
{
	struct seg_inode *i;
	struct stat s;
	int rc = seg_lookup(ns, dir, name, &i, &s);

	if (rc == 0) {
		seg_forget(ns, i, 1);
		if (ino)
			*ino = i;
		if (st)
			*st = s;
	}
	return rc;
}

static void detach_rec(void *arg, int id);

/* seg_open with `attach` as the namespace's data path (detach_rec gives back). */
static int open_with(struct seg_ns *ns, struct seg_inode *ino, int flags,
		     seg_attach_fn attach, void *arg, int *backing)
{
	seg_ns_set_data_path(ns, attach, detach_rec, arg);
	return seg_open(ns, ino, flags, backing);
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* ---- basics ----------------------------------------------------------- */

static void test_new_has_root_and_fixed_dir(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *lists, *d;
	struct stat st;

	(void)state;
	assert_int_equal(seg_getattr(ns, root, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_ino, 1);
	assert_int_equal(st.st_nlink, 3);   /* ".", its name, lists/.. */
	assert_int_equal(peek(ns, root, "lists", &lists, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_true(seg_inode_is_dir(lists));
	assert_int_equal(seg_inode_fd(lists), -1);
	assert_int_equal(seg_ns_inode_count(ns), 2);
	/* A fixed directory stays: not removed, moved, or replaced. */
	assert_int_equal(seg_rmdir(ns, root, "lists"), -EPERM);
	assert_int_equal(seg_rename(ns, root, "lists", root, "x", 0, NULL), -EPERM);
	assert_int_equal(seg_unlink(ns, root, "lists"), -EISDIR);
	d = mkd(ns, root, "empty");
	assert_int_equal(seg_rename(ns, root, "empty", root, "lists", 0, NULL), -EPERM);
	assert_int_equal(seg_rename(ns, root, "empty", root, "lists", SEG_RENAME_EXCHANGE, NULL),
			 -EPERM);
	assert_int_equal(peek(ns, root, "lists", &d, NULL), 0);
	assert_ptr_equal(d, lists);
	ns_free(ns);
	ns_free(NULL);
}

static void test_create_and_lookup(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b;
	struct stat st;
	bool created = true;

	(void)state;
	a = mk(ns, root, "a");
	assert_true(fd_is_open(seg_inode_fd(a)));
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 100);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, 0);
	/* O_EXCL loses; without it the existing segment comes back. */
	assert_int_equal(seg_create(ns, root, "a", 0600, WHO(0, 0, 0), SEG_CREATE_EXCL,
				    &b, &st, &created), -EEXIST);
	assert_int_equal(seg_create(ns, root, "a", 0600, WHO(0, 0, 0), 0, &b, &st, &created), 0);
	assert_false(created);
	assert_ptr_equal(a, b);
	assert_int_equal(st.st_mode & 07777, 0640);
	seg_forget(ns, b, 1);
	/* Names: not found, too long, in a non-directory. */
	assert_int_equal(peek(ns, root, "nope", NULL, NULL), -ENOENT);
	char longname[300];
	memset(longname, 'n', sizeof(longname));
	longname[256] = '\0';
	assert_int_equal(peek(ns, root, longname, NULL, NULL), -ENAMETOOLONG);
	assert_int_equal(seg_create(ns, root, longname, 0600, WHO(0, 0, 0), 0, &b, &st, &created),
			 -ENAMETOOLONG);
	assert_int_equal(peek(ns, a, "x", NULL, NULL), -ENOTDIR);
	ns_free(ns);
}

/* ---- lifetimes -------------------------------------------------------- */

static void test_unlink_while_open(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *a2;
	int fd, backing;

	(void)state;
	a = mk(ns, root, "a");                        /* nlookup 1 */
	fd = seg_inode_fd(a);
	assert_int_equal(open_with(ns, a, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(backing, 0);
	assert_int_equal(pwrite(fd, "data", 4, 0), 4);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	/* The name is free at once and names a new segment. */
	assert_int_equal(peek(ns, root, "a", NULL, NULL), -ENOENT);
	a2 = mk(ns, root, "a");
	assert_ptr_not_equal(a, a2);
	assert_int_equal(seg_ns_inode_count(ns), 4);
	/* The holder still has the old data. */
	char buf[4];
	assert_int_equal(pread(seg_inode_fd(a), buf, 4, 0), 4);
	assert_memory_equal(buf, "data", 4);
	seg_release(ns, a);
	assert_int_equal(seg_ns_inode_count(ns), 4);  /* the kernel still refers to it */
	seg_forget(ns, a, 1);
	assert_int_equal(seg_ns_inode_count(ns), 3);
	assert_false(fd_is_open(fd) && fd != seg_inode_fd(a2));
	ns_free(ns);
}

static void test_forget_then_release(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a;
	int backing;

	(void)state;
	a = mk(ns, root, "a");
	assert_int_equal(open_with(ns, a, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	seg_forget(ns, a, 1);
	assert_int_equal(seg_ns_inode_count(ns), 3);   /* still open */
	seg_release(ns, a);
	assert_int_equal(seg_ns_inode_count(ns), 2);
	ns_free(ns);
}

static int attach_calls;

static int attach_ok(void *arg, int memfd, bool privs)
{
	(void)privs;
	(void)arg;
	assert_true(memfd >= 0);
	attach_calls++;
	return 40 + attach_calls;
}

static int attach_none(void *arg, int memfd, bool privs)
{
	(void)privs;
	(void)arg;
	(void)memfd;
	attach_calls++;
	return 0;
}

static int attach_fail(void *arg, int memfd, bool privs)
{
	(void)privs;
	(void)arg;
	(void)memfd;
	attach_calls++;
	return -ENOMEM;
}

/* Ids given back (seg_detach_fn). */
static int detached[8], ndetached;

static void detach_rec(void *arg, int id)
{
	(void)arg;
	assert_true(ndetached < 8);
	detached[ndetached++] = id;
}

static void test_open_attaches_once(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a = mk(ns, root, "a"), *b;
	int b1 = 0, b2 = 0;

	(void)state;
	attach_calls = 0;
	ndetached = 0;
	assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &b1), 0);
	assert_int_equal(open_with(ns, a, O_RDONLY, attach_ok, NULL, &b2), 0);
	/* One backing id per inode, shared by every open. */
	assert_int_equal(attach_calls, 1);
	assert_int_equal(b1, 41);
	assert_int_equal(b2, 41);
	seg_release(ns, a);
	assert_int_equal(ndetached, 0);
	seg_release(ns, a);
	assert_int_equal(ndetached, 1);
	assert_int_equal(detached[0], 41);   /* the last release gives it back */
	assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &b1), 0);
	assert_int_equal(b1, 42);
	seg_release(ns, a);
	assert_int_equal(ndetached, 2);
	assert_int_equal(detached[1], 42);

	/* A failed attach fails the open and changes nothing. */
	b = mk(ns, root, "b");
	assert_int_equal(open_with(ns, b, O_RDWR, attach_fail, NULL, &b1), -ENOMEM);
	assert_int_equal(b1, 42);
	seg_forget(ns, b, 1);
	assert_int_equal(seg_ns_inode_count(ns), 4);   /* still named */
	/* "No passthrough": the open works with no id. */
	attach_calls = 0;
	assert_int_equal(open_with(ns, b, O_RDWR, attach_none, NULL, &b1), 0);
	assert_int_equal(b1, 0);
	seg_release(ns, b);
	assert_int_equal(ndetached, 2);                /* b had none */
	/* Directories are not opened as segments. */
	assert_int_equal(open_with(ns, root, O_RDONLY, NULL, NULL, &b1), -EISDIR);
	ns_free(ns);
}

static void test_open_trunc(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *a = mk(ns, seg_ns_root(ns), "a");
	struct stat st;
	int b;

	(void)state;
	assert_int_equal(pwrite(seg_inode_fd(a), "12345", 5, 0), 5);
	assert_int_equal(open_with(ns, a, O_RDWR, NULL, NULL, &b), 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(open_with(ns, a, O_RDWR | O_TRUNC, NULL, NULL, &b), 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_size, 0);
	seg_release(ns, a);
	seg_release(ns, a);
	ns_free(ns);
}

/* ---- links and renames ------------------------------------------------ */

static void test_link(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b, *d;
	struct stat st;

	(void)state;
	a = mk(ns, root, "a");
	d = mkd(ns, root, "d");
	assert_int_equal(seg_link(ns, a, d, "b", &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(peek(ns, d, "b", &b, &st), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(seg_link(ns, a, root, "a", &st), -EEXIST);
	assert_int_equal(seg_link(ns, d, root, "d2", &st), -EPERM);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(seg_unlink(ns, d, "b"), 0);
	/* Once nameless, a segment cannot be linked again (tmpfs says ENOENT). */
	assert_int_equal(seg_link(ns, a, root, "again", &st), -ENOENT);
	seg_forget(ns, a, 2);   /* create + link */
	assert_int_equal(seg_ns_inode_count(ns), 3);
	ns_free(ns);
}

static void test_rename_files(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b, *x, *d;
	struct stat st;
	int backing;

	(void)state;
	a = mk(ns, root, "a");
	b = mk(ns, root, "b");
	d = mkd(ns, root, "d");
	/* Over an existing segment: b loses its name but lives while open. */
	assert_int_equal(open_with(ns, b, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(seg_rename(ns, root, "a", root, "b", 0, NULL), 0);
	assert_int_equal(peek(ns, root, "a", NULL, NULL), -ENOENT);
	assert_int_equal(peek(ns, root, "b", &x, NULL), 0);
	assert_ptr_equal(x, a);
	assert_int_equal(seg_getattr(ns, b, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	seg_release(ns, b);
	seg_forget(ns, b, 1);
	assert_int_equal(seg_ns_inode_count(ns), 4);   /* root lists a d */
	/* NOREPLACE and EXCHANGE. */
	struct seg_inode *c = mk(ns, d, "c");
	assert_int_equal(seg_rename(ns, root, "b", d, "c", SEG_RENAME_NOREPLACE, NULL), -EEXIST);
	assert_int_equal(seg_rename(ns, root, "b", d, "c", SEG_RENAME_EXCHANGE, NULL), 0);
	assert_int_equal(peek(ns, root, "b", &x, NULL), 0);
	assert_ptr_equal(x, c);
	assert_int_equal(peek(ns, d, "c", &x, NULL), 0);
	assert_ptr_equal(x, a);
	assert_int_equal(seg_rename(ns, root, "b", d, "none", SEG_RENAME_EXCHANGE, NULL), -ENOENT);
	assert_int_equal(seg_rename(ns, root, "b", d, "c",
				    SEG_RENAME_EXCHANGE | SEG_RENAME_NOREPLACE, NULL), -EINVAL);
	/* Onto another name of the same segment: nothing happens. */
	assert_int_equal(seg_link(ns, c, root, "c2", &st), 0);
	assert_int_equal(seg_rename(ns, root, "b", root, "c2", 0, NULL), 0);
	assert_int_equal(peek(ns, root, "b", NULL, NULL), 0);
	/* A file does not replace a directory. */
	assert_int_equal(seg_rename(ns, root, "b", root, "d", 0, NULL), -EISDIR);
	assert_int_equal(seg_rename(ns, root, "nope", root, "x", 0, NULL), -ENOENT);
	ns_free(ns);
}

static void test_rename_dirs(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *p, *q, *r, *e;
	struct stat st;

	(void)state;
	p = mkd(ns, root, "p");
	q = mkd(ns, root, "q");
	r = mkd(ns, p, "r");
	mk(ns, root, "f");
	/* Below itself. */
	assert_int_equal(seg_rename(ns, root, "p", r, "p", 0, NULL), -EINVAL);
	assert_int_equal(seg_rename(ns, root, "p", p, "p", 0, NULL), -EINVAL);
	/* A directory replaces only an empty directory. */
	assert_int_equal(seg_rename(ns, root, "q", root, "f", 0, NULL), -ENOTDIR);
	assert_int_equal(seg_rename(ns, root, "q", root, "p", 0, NULL), -ENOTEMPTY);
	/* Moving r from p to q moves a link count with it. */
	assert_int_equal(seg_getattr(ns, p, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	assert_int_equal(seg_rename(ns, p, "r", q, "r", 0, NULL), 0);
	assert_int_equal(seg_getattr(ns, p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(seg_getattr(ns, q, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	/* Now p is empty and can be replaced by q. */
	e = mkd(ns, root, "e");
	assert_int_equal(seg_rename(ns, root, "q", root, "p", 0, NULL), 0);
	assert_int_equal(seg_getattr(ns, p, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(peek(ns, root, "p", &e, NULL), 0);
	assert_ptr_equal(e, q);
	assert_int_equal(seg_getattr(ns, root, &st), 0);
	assert_int_equal(st.st_nlink, 5);   /* 2 + lists, p(=q), e */
	/* A removed directory takes no new entries. */
	struct seg_inode *x;
	bool created;
	assert_int_equal(seg_create(ns, p, "x", 0600, WHO(0, 0, 0), 0, &x, &st, &created), -ENOENT);
	/* rmdir rules. */
	assert_int_equal(seg_rmdir(ns, root, "p"), -ENOTEMPTY);
	assert_int_equal(seg_rmdir(ns, root, "f"), -ENOTDIR);
	assert_int_equal(seg_unlink(ns, root, "e"), -EISDIR);
	assert_int_equal(seg_rmdir(ns, root, "e"), 0);
	assert_int_equal(seg_rmdir(ns, q, "r"), 0);
	assert_int_equal(seg_rmdir(ns, root, "p"), 0);
	assert_int_equal(seg_getattr(ns, root, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	(void)r;
	ns_free(ns);
}

/* ---- attributes and capacity ------------------------------------------ */

static void test_setattr(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *a = mk(ns, seg_ns_root(ns), "a");
	struct stat in, st, m;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.st_size = 41;   /* an exact size, as ShareableList([0]) asks */
	assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_SIZE, &st), 0);
	assert_int_equal(st.st_size, 41);
	assert_int_equal(fstat(seg_inode_fd(a), &m), 0);
	assert_int_equal(m.st_size, 41);
	in.st_mode = 0604;
	in.st_uid = 7;
	in.st_gid = 8;
	in.st_mtim.tv_sec = 1000000000;
	in.st_mtim.tv_nsec = 5;
	assert_int_equal(seg_setattr(ns, a, &in,
				     SEG_SET_MODE | SEG_SET_UID | SEG_SET_GID | SEG_SET_MTIME,
				     &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0604);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	assert_int_equal(st.st_size, 41);
	in.st_size = -1;
	assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_SIZE, &st), -EINVAL);
	assert_int_equal(seg_setattr(ns, seg_ns_root(ns), &in, SEG_SET_SIZE, &st), -EISDIR);
	ns_free(ns);
}

static void test_statfs_and_limit(void **state)
{
	struct seg_ns *ns = new_ns(5);
	struct seg_inode *root = seg_ns_root(ns), *a, *x;
	struct statvfs sv0, sv1;
	struct stat st;
	bool created;
	char page[4096];

	(void)state;
	assert_int_equal(seg_statfs(ns, &sv0), 0);
	assert_int_equal(sv0.f_files, 5);
	assert_int_equal(sv0.f_ffree, 3);
	assert_int_equal(sv0.f_blocks, (1 << 30) / 4096);
	assert_int_equal(sv0.f_namemax, 255);
	a = mk(ns, root, "a");
	/* Written as passthrough writes it: open, behind the daemon's back. */
	int backing;
	assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &backing), 0);
	memset(page, 1, sizeof(page));
	for (int i = 0; i < 16; i++)
		assert_int_equal(pwrite(seg_inode_fd(a), page, sizeof(page), i * 4096), 4096);
	assert_int_equal(seg_statfs(ns, &sv1), 0);
	assert_int_equal(sv1.f_ffree, 2);
	assert_int_equal(sv0.f_bfree - sv1.f_bfree, 16);
	seg_release(ns, a);   /* settled: still counted */
	assert_int_equal(seg_statfs(ns, &sv1), 0);
	assert_int_equal(sv0.f_bfree - sv1.f_bfree, 16);
	mk(ns, root, "b");
	mkd(ns, root, "c");
	/* nr_segments counts inodes, as tmpfs's nr_inodes does. */
	assert_int_equal(seg_create(ns, root, "d", 0600, WHO(0, 0, 0), 0, &x, &st, &created), -ENOSPC);
	assert_int_equal(seg_mkdir(ns, root, "d", 0700, WHO(0, 0, 0), &x, &st), -ENOSPC);
	ns_free(ns);
}

static bool ts_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/*
 * seg_inspect: the creator's pid and the birth time stay what creation
 * made them (a second create, chmod and rename change neither); the open
 * count and the data path follow opens; directories show nothing.
 */
static void test_inspect(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b, *d;
	struct seg_info info;
	struct timespec t0, t1;
	struct stat st, attr = { .st_mode = 0600 };
	bool created;
	int b1, b2;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &t0);
	assert_int_equal(seg_create(ns, root, "a", 0600, WHO(1, 2, 4242), SEG_CREATE_EXCL,
				    &a, &st, &created), 0);
	clock_gettime(CLOCK_REALTIME, &t1);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_true(info.segment);
	assert_int_equal(info.pid, 4242);
	assert_true(ts_le(&t0, &info.btime) && ts_le(&info.btime, &t1));
	assert_int_equal(info.nopen, 0);
	assert_false(info.attached);
	struct timespec born = info.btime;

	/* Opening an existing name creates nothing: the creator stays. */
	assert_int_equal(seg_create(ns, root, "a", 0600, WHO(1, 2, 99), 0, &b, &st, &created), 0);
	assert_false(created);
	seg_forget(ns, b, 1);
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_MODE, &st), 0);
	assert_int_equal(seg_rename(ns, root, "a", root, "a2", 0, NULL), 0);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_int_equal(info.pid, 4242);
	assert_int_equal(info.btime.tv_sec, born.tv_sec);
	assert_int_equal(info.btime.tv_nsec, born.tv_nsec);

	/* Opens: counted; the data path is the inode's while it is open. */
	attach_calls = 0;
	assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &b1), 0);
	assert_int_equal(open_with(ns, a, O_RDONLY, attach_ok, NULL, &b2), 0);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_int_equal(info.nopen, 2);
	assert_true(info.attached);
	seg_release(ns, a);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_int_equal(info.nopen, 1);
	seg_release(ns, a);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_int_equal(info.nopen, 0);
	assert_false(info.attached);
	assert_int_equal(open_with(ns, a, O_RDWR, attach_none, NULL, &b1), 0);
	assert_int_equal(seg_inspect(ns, a, &info), 0);
	assert_false(info.attached);   /* the fallback */
	seg_release(ns, a);

	/* Directories, the root and lists/ included, have nothing to show. */
	d = mkd(ns, root, "d");
	assert_int_equal(peek(ns, root, "lists", &b, NULL), 0);
	struct seg_inode *dirs[] = { root, d, b };
	for (size_t i = 0; i < 3; i++) {
		memset(&info, 0xff, sizeof(info));
		assert_int_equal(seg_inspect(ns, dirs[i], &info), 0);
		assert_false(info.segment);
		assert_int_equal(info.pid, 0);
		assert_int_equal(info.nopen, 0);
	}
	ns_free(ns);
}

/*
 * seg_ns_stats counts segments (not directories or views) with their
 * sizes, reservations, open and unlinked ones, and reports the limits.
 */
static void test_ns_stats(void **state)
{
	struct seg_ns *ns = new_ns(100);
	struct seg_inode *root = seg_ns_root(ns), *a, *c, *d, *x;
	struct seg_ns_stats s;
	struct stat st, attr = { .st_size = 10000 };
	int backing;

	(void)state;
	assert_int_equal(seg_ns_stats(ns, &s), 0);
	assert_int_equal(s.segments, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(s.reserved, 0);
	assert_int_equal(s.inodes, 2);            /* the root and lists/ */
	assert_int_equal(s.inode_limit, 100);
	assert_int_equal(s.size_limit, 1 << 30);

	a = mk(ns, root, "a");
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_SIZE, &st), 0);
	mk(ns, root, "b");
	d = mkd(ns, root, "d");
	c = mk(ns, d, "c");
	assert_int_equal(open_with(ns, c, O_RDWR, attach_ok, NULL, &backing), 0);
	/* A write that grew c unseen, as passthrough does: counted once settled. */
	assert_int_equal(pwrite(seg_inode_fd(c), "hello", 5, 0), 5);
	assert_int_equal(seg_unlink(ns, d, "c"), 0);
	/*
	 * A list as lists/ makes one: a segment of 16 bytes.  (Entries of
	 * lists/ are the view's, not inodes of the namespace.)
	 */
	x = mk(ns, root, "x");
	attr.st_size = 16;
	assert_int_equal(seg_setattr(ns, x, &attr, SEG_SET_SIZE, &st), 0);
	seg_forget(ns, x, 1);

	assert_int_equal(seg_ns_stats(ns, &s), 0);
	assert_int_equal(s.segments, 4);          /* a, b, c (unlinked), x */
	assert_int_equal(s.unlinked, 1);
	assert_int_equal(s.open, 1);
	assert_int_equal(s.bytes, 10000 + 0 + 5 + 16);
	assert_int_equal(s.reserved, 12288 + 4096 + 4096);
	assert_int_equal(s.inodes, 2 + 4 + 1);   /* + d */

	seg_release(ns, c);              /* c goes */
	seg_forget(ns, c, 1);
	assert_int_equal(seg_ns_stats(ns, &s), 0);
	assert_int_equal(s.segments, 3);
	assert_int_equal(s.unlinked, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.bytes, 10000 + 16);
	assert_int_equal(s.reserved, 12288 + 4096);
	assert_int_equal(s.inodes, 2 + 3 + 1);
	ns_free(ns);
}

/*
 * -o size=: growing reserves and allocates pages against the limit, so a
 * full mount fails the ftruncate (ENOSPC, size unchanged); shrinking,
 * O_TRUNC and freeing give the pages back.
 */
static void test_size_limit(void **state)
{
	struct seg_ns_config cfg = { .size_limit = 64 * 1024, .memfd = memfd_run };
	struct seg_ns *ns = NULL;
	struct seg_inode *root, *a, *b;
	struct statvfs sv;
	struct stat in, st, m;
	int backing;

	(void)state;
	assert_int_equal(ns_new(&cfg, &ns), 0);
	root = seg_ns_root(ns);
	a = mk(ns, root, "a");
	b = mk(ns, root, "b");
	memset(&in, 0, sizeof(in));
	in.st_size = 40000;                          /* 10 pages */
	assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_SIZE, &st), 0);
	/* Allocated at once, not when touched. */
	assert_int_equal(fstat(seg_inode_fd(a), &m), 0);
	assert_true(m.st_blocks * 512 >= 40000);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, 16 - 10);
	in.st_size = 30000;                          /* 8 more pages: too many */
	assert_int_equal(seg_setattr(ns, b, &in, SEG_SET_SIZE, &st), -ENOSPC);
	assert_int_equal(seg_getattr(ns, b, &st), 0);
	assert_int_equal(st.st_size, 0);
	in.st_size = 1ll << 40;
	assert_int_equal(seg_setattr(ns, b, &in, SEG_SET_SIZE, &st), -ENOSPC);
	assert_int_equal(seg_reserve(ns, b, 7 * 4096), -ENOSPC);
	assert_int_equal(seg_reserve(ns, b, 6 * 4096), 0);   /* exactly full */
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, 0);
	/* Shrinking a gives back what b needs. */
	in.st_size = 4096;
	assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_SIZE, &st), 0);
	in.st_size = 30000;
	assert_int_equal(seg_setattr(ns, b, &in, SEG_SET_SIZE, &st), 0);
	/* O_TRUNC gives back; so does freeing the segment. */
	assert_int_equal(open_with(ns, b, O_RDWR | O_TRUNC, NULL, NULL, &backing), 0);
	seg_release(ns, b);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, 16 - 1);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	seg_forget(ns, a, 1);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, 16);
	ns_free(ns);
}

/*
 * The backing: memfds when asked for; otherwise the private tmpfs, unless
 * the process may not mount one (no CAP_SYS_ADMIN: -EPERM; valgrind does
 * not know fsopen: -ENOSYS), and then memfds with the reason.
 */
static void test_backing(void **state)
{
	struct seg_ns *ns = new_ns(0);
	enum seg_backing b;
	int why = 1;

	(void)state;
	b = seg_ns_backing(ns, &why);
	if (memfd_run) {
		assert_int_equal(b, SEG_BACKING_MEMFD);
		assert_int_equal(why, 0);
	} else if (b == SEG_BACKING_MEMFD) {
		assert_true(why == -EPERM || why == -ENOSYS);
	} else {
		assert_int_equal(why, 0);
	}
	ns_free(ns);
}

/*
 * A write to the backing file that the namespace never sees, as a FUSE
 * passthrough write() is.  In the private tmpfs the kernel refuses it past
 * the size limit, and statfs counts what it took at once; a memfd takes
 * it (the limit only holds for growth we see) and it is counted once
 * settled, at the latest when the segment is closed.
 */
static void test_unseen_write_past_limit(void **state)
{
	struct seg_ns_config cfg = { .size_limit = 64 * 1024, .memfd = memfd_run };
	struct seg_ns *ns = NULL;
	struct seg_inode *a;
	struct statvfs sv;
	char page[4096];
	ssize_t w = 0, n;
	int backing;

	(void)state;
	assert_int_equal(ns_new(&cfg, &ns), 0);
	a = mk(ns, seg_ns_root(ns), "a");
	assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &backing), 0);
	memset(page, 7, sizeof(page));
	while (w < 32 * 4096 && (n = pwrite(seg_inode_fd(a), page, sizeof(page), w)) > 0)
		w += n;
	if (seg_ns_backing(ns, NULL) == SEG_BACKING_TMPFS) {
		assert_int_equal(w, 16 * 4096);
		assert_int_equal(errno, ENOSPC);
		assert_int_equal(seg_statfs(ns, &sv), 0);
		assert_int_equal(sv.f_bfree, 0);
		/* Shrinking gives it back, to the kernel's count as to ours. */
		struct stat in = { .st_size = 4096 }, st;
		assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_SIZE, &st), 0);
		assert_int_equal(seg_statfs(ns, &sv), 0);
		assert_int_equal(sv.f_bfree, 15);
	} else {
		assert_int_equal(w, 32 * 4096);
		assert_int_equal(seg_statfs(ns, &sv), 0);   /* settled while open */
		assert_int_equal(sv.f_bfree, 0);
		seg_release(ns, a);   /* and at the last close */
		assert_int_equal(seg_statfs(ns, &sv), 0);
		assert_int_equal(sv.f_bfree, 0);
		assert_int_equal(open_with(ns, a, O_RDWR, attach_ok, NULL, &backing), 0);
	}
	seg_release(ns, a);
	ns_free(ns);
}

/* Descriptors this process has open. */
static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fd_is_open(fd);
	return n;
}

/*
 * A descriptor budget of 4.  With the private tmpfs, 40 segments live on
 * it: the idle ones beyond the budget are found by name, their bytes,
 * sizes and lists intact, they can be opened, resized and removed (which
 * gives their pages back), and the process never holds more than the
 * budget.  With memfds every segment needs a descriptor, so by default
 * the budget bounds the inodes instead.
 */
static void test_more_segments_than_descriptors(void **state)
{
	struct seg_ns_config cfg = { .size_limit = 1 << 30, .fd_budget = 4,
				     .memfd = memfd_run };
	struct seg_ns *ns = NULL;
	struct seg_inode *root, *segs[40], *l, *x;
	struct statvfs sv0, sv;
	struct stat st, in;
	char name[16], buf[16];
	bool created;
	int fds0, backing, i;

	(void)state;
	fds0 = count_fds();
	assert_int_equal(ns_new(&cfg, &ns), 0);
	fix_lists(ns);
	root = seg_ns_root(ns);
	if (seg_ns_backing(ns, NULL) == SEG_BACKING_MEMFD) {
		assert_int_equal(seg_statfs(ns, &sv), 0);
		assert_int_equal(sv.f_files, 4);   /* the root, lists/ and two */
		mk(ns, root, "a");
		mk(ns, root, "b");
		assert_int_equal(seg_create(ns, root, "c", 0600, WHO(0, 0, 0), 0, &x, &st,
					    &created), -ENOSPC);
		ns_free(ns);
		return;
	}
	assert_int_equal(seg_statfs(ns, &sv0), 0);
	assert_true(sv0.f_files > 40);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		segs[i] = mk(ns, root, name);
		memset(&in, 0, sizeof(in));
		in.st_size = 4096 + i;
		assert_int_equal(seg_setattr(ns, segs[i], &in, SEG_SET_SIZE, &st), 0);
		assert_int_equal(open_with(ns, segs[i], O_RDWR, NULL, NULL, &backing), 0);
		assert_int_equal(pwrite(seg_inode_fd(segs[i]), name, strlen(name) + 1, 100),
				 (ssize_t)strlen(name) + 1);
		seg_release(ns, segs[i]);
		/* The tmpfs, the budget, and what is kept: state and tree/, ino/, gone/, new/. */
		assert_true(count_fds() <= fds0 + 1 + 4 + (keep_run ? 5 : 0));
	}
	/* One more, then pushed out by other segments (test_lists does it for a list). */
	l = mk(ns, root, "l");
	in.st_size = 16;
	assert_int_equal(seg_setattr(ns, l, &in, SEG_SET_SIZE, &st), 0);
	seg_forget(ns, l, 1);
	for (i = 0; i < 8; i++)
		assert_int_equal(peek(ns, root, "s1", NULL, &st), 0);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(peek(ns, root, name, NULL, &st), 0);
		assert_int_equal(st.st_size, 4096 + i);
		assert_true(st.st_blocks * 512 >= 4096 + i);
	}
	assert_int_equal(peek(ns, root, "l", NULL, &st), 0);
	assert_int_equal(st.st_size, 16);
	/*
	 * Each one reopens with its bytes, and with the attributes that stat
	 * gave while it had no descriptor; a closed one can be resized.
	 */
	for (i = 0; i < 40; i++) {
		struct stat m;

		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(peek(ns, root, name, NULL, &st), 0);
		assert_int_equal(open_with(ns, segs[i], O_RDONLY, NULL, NULL, &backing), 0);
		assert_int_equal(fstat(seg_inode_fd(segs[i]), &m), 0);
		assert_int_equal(m.st_size, st.st_size);
		assert_int_equal(m.st_blocks, st.st_blocks);
		assert_int_equal(m.st_mtim.tv_sec, st.st_mtim.tv_sec);
		assert_int_equal(m.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
		assert_int_equal(pread(seg_inode_fd(segs[i]), buf, sizeof(buf), 100), (ssize_t)sizeof(buf));
		assert_string_equal(buf, name);
		seg_release(ns, segs[i]);
		in.st_size = 3 * 4096;
		assert_int_equal(seg_setattr(ns, segs[i], &in, SEG_SET_SIZE, &st), 0);
		assert_int_equal(st.st_size, 3 * 4096);
		assert_true(count_fds() <= fds0 + 1 + 4 + (keep_run ? 5 : 0));
	}
	/* Open segments keep their descriptors, past the budget if need be. */
	for (i = 0; i < 6; i++)
		assert_int_equal(open_with(ns, segs[i], O_RDWR, NULL, NULL, &backing), 0);
	for (i = 0; i < 6; i++)
		assert_true(fd_is_open(seg_inode_fd(segs[i])));
	for (i = 0; i < 6; i++)
		seg_release(ns, segs[i]);
	/* Removing them gives every page back, named or not. */
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(seg_unlink(ns, root, name), 0);
		seg_forget(ns, segs[i], 1);
	}
	assert_int_equal(seg_unlink(ns, root, "l"), 0);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, sv0.f_bfree);
	assert_int_equal(sv.f_ffree, sv0.f_ffree);
	ns_free(ns);
	assert_int_equal(count_fds(), fds0);
}

/* ---- directory streams ------------------------------------------------ */

struct collect {
	char names[64][16];
	uint64_t next[64];
	int n;
	int room;   /* entries accepted before "full" */
};

static int collect(void *arg, const char *name, struct seg_inode *ino,
		   const struct stat *st, uint64_t next)
{
	struct collect *c = arg;

	(void)ino;
	assert_true(st->st_ino != 0);
	if (c->room == 0 || c->n == 64)
		return 1;
	c->room--;
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
	c->next[c->n++] = next;
	return 0;
}

static bool has(const struct collect *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0)
			return true;
	return false;
}

static void test_readdir_order_and_cursor(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *d = mkd(ns, root, "d");
	struct seg_dirh *dh;
	struct collect c = { .room = 4 };
	char name[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		mk(ns, d, name);
	}
	assert_int_equal(seg_opendir(ns, d, &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &c), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.names[0], ".");
	assert_string_equal(c.names[1], "..");
	assert_string_equal(c.names[2], "e0");
	assert_string_equal(c.names[3], "e1");
	/* Between calls: remove the next entry and one already seen, add one. */
	assert_int_equal(seg_unlink(ns, d, "e2"), 0);
	assert_int_equal(seg_unlink(ns, d, "e0"), 0);
	mk(ns, d, "new");
	c.room = 64;
	assert_int_equal(seg_readdir(ns, dh, c.next[3], false, collect, &c), 0);
	/*
	 * Every survivor exactly once, nothing removed; the new entry is newer
	 * than the stream, as on tmpfs, and so is a renamed one.
	 */
	assert_int_equal(c.n, 4 + 5);
	assert_false(has(&c, "e2"));
	assert_false(has(&c, "new"));
	assert_string_equal(c.names[4], "e3");
	assert_string_equal(c.names[8], "e7");
	/* Seeking back (rewinddir) starts over, with what is there now. */
	assert_int_equal(seg_rename(ns, d, "e3", d, "e3b", 0, NULL), 0);
	struct collect c2 = { .room = 64 };
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &c2), 0);
	assert_int_equal(c2.n, 2 + 7);
	assert_true(has(&c2, "new") && has(&c2, "e3b") && !has(&c2, "e3"));
	/* Renamed after the rewind: not again, never twice. */
	struct collect c5 = { .room = 64 };
	assert_int_equal(seg_rename(ns, d, "e4", d, "e4b", 0, NULL), 0);
	assert_int_equal(seg_readdir(ns, dh, c2.next[c2.n - 1], false, collect, &c5), 0);
	assert_int_equal(c5.n, 0);
	/* A second stream does not disturb the first. */
	struct seg_dirh *dh2;
	struct collect c3 = { .room = 3 };
	assert_int_equal(seg_opendir(ns, d, &dh2), 0);
	assert_int_equal(seg_readdir(ns, dh2, 0, false, collect, &c3), 0);
	struct collect c4 = { .room = 64 };
	assert_int_equal(seg_readdir(ns, dh, 2, false, collect, &c4), 0);
	assert_int_equal(c4.n, 6);   /* a seek is no rewind: e4b stays newer */
	seg_releasedir(ns, dh2);
	seg_releasedir(ns, dh);
	ns_free(ns);
}

static void test_readdirplus_references(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *d = mkd(ns, root, "d"), *a;
	struct seg_dirh *dh;
	struct collect c = { .room = 3 };   /* ".", "..", "a" fit; "b" does not */

	(void)state;
	a = mk(ns, d, "a");
	mk(ns, d, "b");
	seg_forget(ns, a, 1);
	assert_int_equal(seg_unlink(ns, d, "a"), 0);
	assert_int_equal(seg_ns_inode_count(ns), 5 - 1);
	a = mk(ns, d, "a");    /* recreate: order b, a */
	seg_forget(ns, a, 1);
	assert_int_equal(seg_opendir(ns, d, &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 0, true, collect, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.names[2], "b");
	/* "b" got one kernel reference from readdirplus, "a" none. */
	struct seg_inode *b = NULL;
	assert_int_equal(peek(ns, d, "b", &b, NULL), 0);
	assert_int_equal(seg_unlink(ns, d, "b"), 0);
	uint64_t before = seg_ns_inode_count(ns);
	seg_forget(ns, b, 1);    /* mk's reference */
	assert_int_equal(seg_ns_inode_count(ns), before);
	seg_forget(ns, b, 1);    /* readdirplus's */
	assert_int_equal(seg_ns_inode_count(ns), before - 1);
	assert_int_equal(seg_unlink(ns, d, "a"), 0);
	assert_int_equal(seg_ns_inode_count(ns), before - 2);
	seg_releasedir(ns, dh);
	ns_free(ns);
}

static void test_opendir_keeps_removed_dir(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *d = mkd(ns, root, "d");
	struct seg_dirh *dh;
	struct collect c = { .room = 64 };

	(void)state;
	assert_int_equal(seg_opendir(ns, d, &dh), 0);
	assert_int_equal(seg_rmdir(ns, root, "d"), 0);
	seg_forget(ns, d, 1);
	assert_int_equal(seg_ns_inode_count(ns), 3);
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &c), 0);
	assert_int_equal(c.n, 2);
	seg_releasedir(ns, dh);
	assert_int_equal(seg_ns_inode_count(ns), 2);
	assert_int_equal(seg_opendir(ns, mk(ns, root, "f"), &dh), -ENOTDIR);
	ns_free(ns);
}

/* ---- allocation failures ---------------------------------------------- */

/* u::rw-,g::r--,o::r--: a mode says it all. */
static const uint8_t acl_minimal[] = {
	0x02, 0, 0, 0,
	0x01, 0, 0x06, 0, 0xff, 0xff, 0xff, 0xff,
	0x04, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,
	0x20, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,
};

/*
 * Runs `op` with the Nth allocation failing for N = 0, 1, ... until it
 * succeeds; every failure must be -ENOMEM with the namespace unchanged.
 */
static void test_enomem_everywhere(void **state)
{
	(void)state;
	for (int which = 0; which < 11; which++) {
		bool done = false;

		for (long n = 0; !done && n < 50; n++) {
			struct seg_ns *ns = new_ns(0);
			struct seg_inode *root = seg_ns_root(ns), *a = mk(ns, root, "a"), *x;
			struct seg_dirh *dh = NULL;
			struct stat st, st_a;
			bool created;
			uint64_t count = seg_ns_inode_count(ns);
			size_t len;
			int rc = 0;

			/* Creates in a directory with a default ACL allocate more. */
			if (which == 9)
				assert_int_equal(seg_set_acl(ns, root, true, acl_example,
							     sizeof acl_example, false), 0);
			assert_int_equal(seg_getattr(ns, a, &st_a), 0);
			seg_alloc_fail_after(n);
			switch (which) {
			case 0:
				rc = seg_create(ns, root, "b", 0600, WHO(0, 0, 0), 0, &x, &st, &created);
				break;
			case 1:
				rc = seg_mkdir(ns, root, "b", 0700, WHO(0, 0, 0), &x, &st);
				break;
			case 2:
				rc = seg_link(ns, a, root, "b", &st);
				break;
			case 3:
				rc = seg_rename(ns, root, "a", root, "b", 0, NULL);
				break;
			case 4:
				rc = seg_opendir(ns, root, &dh);
				break;
			case 5:
				rc = seg_mknod(ns, root, "b", S_IFIFO | 0600, 0, WHO(0, 0, 0), &x, &st);
				break;
			case 6:
				rc = seg_symlink(ns, root, "b", "a", WHO(0, 0, 0), &x, &st);
				break;
			case 7:
				rc = seg_rename(ns, root, "a", root, "b", SEG_RENAME_WHITEOUT,
						WHO(0, 0, 0));
				break;
			case 8:
				rc = seg_setxattr(ns, a, "user.b", "1", 1, 0);
				break;
			case 9:
				rc = seg_mkdir(ns, root, "b", 0700, WHO(0, 0, 0), &x, &st);
				break;
			case 10:
				rc = seg_set_acl(ns, a, false, acl_example, sizeof acl_example, false);
				break;
			}
			seg_alloc_fail_reset();
			if (rc == 0) {
				done = true;
				seg_releasedir(ns, dh);
			} else {
				/* Nothing changed. */
				assert_int_equal(rc, -ENOMEM);
				assert_int_equal(seg_ns_inode_count(ns), count);
				assert_int_equal(peek(ns, root, "b", NULL, NULL), -ENOENT);
				assert_int_equal(peek(ns, root, "a", NULL, NULL), 0);
				assert_int_equal(seg_getxattr(ns, a, "user.b", NULL, 0, &len), -ENODATA);
				assert_int_equal(seg_getxattr(ns, a, "system.posix_acl_access", NULL, 0,
							      &len), -ENODATA);
				assert_int_equal(seg_getattr(ns, a, &st), 0);
				assert_int_equal(st.st_mode, st_a.st_mode);
			}
			ns_free(ns);
		}
		assert_true(done);
	}
	/* And seg_ns_new itself. */
	for (long n = 0; n < 50; n++) {
		struct seg_ns_config cfg = { .memfd = memfd_run };
		struct seg_ns *ns = NULL;
		int rc;

		rc = ns_new_failing(&cfg, &ns, n);
		if (rc == 0) {
			ns_free(ns);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
		assert_null(ns);
	}
}

/* ---- nodes that are not segments ------------------------------------- */

/*
 * Fifos, sockets, devices and symlinks: an inode slot each and no memory;
 * a symlink's size is its target's, its mode 0777, and tmpfs gives a
 * target of 128 bytes or more a page (st_blocks 8).
 */
static void test_node_types(void **state)
{
	struct seg_ns *ns = new_ns(8);
	struct seg_inode *root = seg_ns_root(ns), *x, *l;
	struct statvfs sv0, sv1;
	struct stat st;
	char longer[SEG_TARGET_MAX + 1];

	(void)state;
	assert_int_equal(seg_statfs(ns, &sv0), 0);
	assert_int_equal(seg_mknod(ns, root, "p", S_IFIFO | 0640, 0, WHO(1, 2, 0), &x, &st), 0);
	assert_int_equal(st.st_mode, S_IFIFO | 0640);
	assert_int_equal(st.st_uid, 1);
	assert_false(seg_inode_is_segment(x));
	seg_forget(ns, x, 1);
	assert_int_equal(seg_mknod(ns, root, "s", S_IFSOCK | 0600, 0, WHO(0, 0, 0), &x, &st), 0);
	seg_forget(ns, x, 1);
	assert_int_equal(seg_mknod(ns, root, "c", S_IFCHR | 0600, makedev(1, 3), WHO(0, 0, 0),
				   &x, &st), 0);
	assert_int_equal(st.st_rdev, makedev(1, 3));
	seg_forget(ns, x, 1);
	assert_int_equal(seg_mknod(ns, root, "r", S_IFREG | 0600, 0, WHO(0, 0, 0), &x, &st),
			 -EINVAL);
	assert_int_equal(seg_mknod(ns, root, "p", S_IFIFO | 0600, 0, WHO(0, 0, 0), &x, &st),
			 -EEXIST);

	assert_int_equal(seg_symlink(ns, root, "l", "p", WHO(5, 6, 0), &l, &st), 0);
	assert_int_equal(st.st_mode, S_IFLNK | 0777);
	assert_int_equal(st.st_size, 1);
	assert_int_equal(st.st_blocks, 0);
	assert_string_equal(seg_inode_target(l), "p");
	seg_forget(ns, l, 1);
	memset(longer, 'x', sizeof longer);
	longer[128] = '\0';
	assert_int_equal(seg_symlink(ns, root, "l128", longer, WHO(0, 0, 0), &l, &st), 0);
	assert_int_equal(st.st_blocks, 8);
	seg_forget(ns, l, 1);
	longer[SEG_TARGET_MAX] = '\0';
	longer[128] = 'x';
	assert_int_equal(seg_symlink(ns, root, "l4096", longer, WHO(0, 0, 0), &l, &st),
			 -ENAMETOOLONG);
	longer[SEG_TARGET_MAX - 1] = '\0';
	assert_int_equal(seg_symlink(ns, root, "l4095", longer, WHO(0, 0, 0), &l, &st), 0);
	seg_forget(ns, l, 1);
	assert_int_equal(seg_symlink(ns, root, "empty", "", WHO(0, 0, 0), &l, &st), -ENOENT);

	/* Six inodes, the last ones, and no blocks. */
	assert_int_equal(seg_statfs(ns, &sv1), 0);
	assert_int_equal(sv0.f_ffree - sv1.f_ffree, 6);
	assert_int_equal(sv0.f_bfree, sv1.f_bfree);
	assert_int_equal(seg_mknod(ns, root, "full", S_IFIFO | 0600, 0, WHO(0, 0, 0), &x, &st),
			 -ENOSPC);
	assert_int_equal(seg_unlink(ns, root, "l128"), 0);
	assert_int_equal(seg_unlink(ns, root, "c"), 0);
	assert_int_equal(seg_statfs(ns, &sv1), 0);
	assert_int_equal(sv0.f_ffree - sv1.f_ffree, 4);
	ns_free(ns);
}

/* tmpfs charges every name beyond an inode's first an inode slot. */
static void test_links_take_slots(void **state)
{
	struct seg_ns *ns = new_ns(6);
	struct seg_inode *root = seg_ns_root(ns), *a, *t;
	struct statvfs sv;
	struct stat st;

	(void)state;
	a = mk(ns, root, "a");              /* root, lists/, a: 3 free */
	assert_int_equal(seg_link(ns, a, root, "b", &st), 0);
	assert_int_equal(seg_link(ns, a, root, "c", &st), 0);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_ffree, 1);
	/* The last slot: a new inode would take it, but t's first name does not. */
	assert_int_equal(seg_tmpfile(ns, root, 0600, WHO(0, 0, 0), &t, &st), 0);
	assert_int_equal(seg_link(ns, a, root, "d", &st), -ENOSPC);
	assert_int_equal(seg_link(ns, t, root, "t", &st), 0);
	assert_int_equal(seg_link(ns, t, root, "t2", &st), -ENOSPC);
	assert_int_equal(seg_unlink(ns, root, "b"), 0);
	assert_int_equal(seg_link(ns, t, root, "t2", &st), 0);
	/* Renaming over a's second name gives that name's slot back. */
	assert_int_equal(seg_rename(ns, root, "t2", root, "c", 0, NULL), 0);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_ffree, 1);
	assert_int_equal(seg_unlink(ns, root, "c"), 0);
	assert_int_equal(seg_unlink(ns, root, "t"), 0);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	seg_forget(ns, t, 3);
	seg_forget(ns, a, 3);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_ffree, 4);
	assert_int_equal(seg_ns_inode_count(ns), 2);
	ns_free(ns);
}

static void test_rename_whiteout(void **state)
{
	struct seg_ns *ns = new_ns(5);
	struct seg_inode *root = seg_ns_root(ns), *a, *w;
	struct stat st;

	(void)state;
	a = mk(ns, root, "a");
	assert_int_equal(seg_rename(ns, root, "a", root, "b",
				    SEG_RENAME_WHITEOUT | SEG_RENAME_EXCHANGE, WHO(0, 0, 0)), -EINVAL);
	assert_int_equal(seg_rename(ns, root, "a", root, "b", SEG_RENAME_WHITEOUT,
				    WHO(7, 8, 0)), 0);
	assert_int_equal(peek(ns, root, "a", &w, &st), 0);
	assert_int_equal(st.st_mode, S_IFCHR | SEG_WHITEOUT_MODE);
	assert_int_equal(st.st_rdev, SEG_WHITEOUT_DEV);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	assert_int_equal(peek(ns, root, "b", &w, &st), 0);
	assert_ptr_equal(w, a);
	/* A whiteout is an inode: with the last slot taken there is none. */
	mk(ns, root, "c");
	assert_int_equal(seg_rename(ns, root, "c", root, "d", SEG_RENAME_WHITEOUT,
				    WHO(0, 0, 0)), -ENOSPC);
	assert_int_equal(peek(ns, root, "c", NULL, NULL), 0);
	assert_int_equal(peek(ns, root, "d", NULL, NULL), -ENOENT);
	ns_free(ns);
}

/* In a setgid directory, new inodes take its group, and directories the bit. */
static void test_setgid_dir(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *d, *x;
	struct stat attr = { .st_mode = S_IFDIR | 02775 }, st;
	bool created;

	(void)state;
	d = mkd(ns, root, "d");
	assert_int_equal(seg_setattr(ns, d, &attr, SEG_SET_MODE, &st), 0);
	attr.st_gid = 50;
	assert_int_equal(seg_setattr(ns, d, &attr, SEG_SET_GID, &st), 0);
	assert_int_equal(seg_create(ns, d, "f", 0644, WHO(1, 2, 0), 0, &x, &st, &created), 0);
	assert_int_equal(st.st_gid, 50);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(seg_mkdir(ns, d, "sub", 0700, WHO(1, 2, 0), &x, &st), 0);
	assert_int_equal(st.st_gid, 50);
	assert_int_equal(st.st_mode, S_IFDIR | 02700);
	assert_int_equal(seg_mknod(ns, x, "p", S_IFIFO | 0600, 0, WHO(1, 2, 0), &x, &st), 0);
	assert_int_equal(st.st_gid, 50);
	assert_int_equal(seg_symlink(ns, root, "l", "d", WHO(1, 2, 0), &x, &st), 0);
	assert_int_equal(st.st_gid, 2);
	ns_free(ns);
}

/*
 * A file capability as setcap(8) writes it: VFS_CAP_REVISION_2, permitted
 * CAP_NET_BIND_SERVICE.  The kernel refuses malformed ones, the tree's
 * tmpfs too.
 */
static const char fcap[20] = { 0, 0, 0, 2, 0, 4, 0, 0 };

/* What a write or truncate by one without CAP_FSETID takes away. */
static void test_kill_suid_sgid(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b;
	struct stat attr = { .st_mode = S_IFREG | 06755 }, st, before;

	(void)state;
	a = mk(ns, root, "a");
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_MODE, &st), 0);
	assert_int_equal(seg_setxattr(ns, a, "security.capability", fcap, sizeof(fcap), 0), 0);
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_KILL_SUIDGID, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0755);
	assert_int_equal(seg_getxattr(ns, a, "security.capability", NULL, 0, &(size_t){ 0 }),
			 -ENODATA);
	/* setgid without group execute is mandatory locking: it stays ... */
	b = mk(ns, root, "b");
	attr.st_mode = S_IFREG | 02644;
	assert_int_equal(seg_setattr(ns, b, &attr, SEG_SET_MODE, &before), 0);
	assert_int_equal(seg_setattr(ns, b, &attr, SEG_SET_KILL_SUIDGID, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 02644);
	/* ... and nothing changed, not even ctime. */
	assert_int_equal(st.st_ctim.tv_sec, before.st_ctim.tv_sec);
	assert_int_equal(st.st_ctim.tv_nsec, before.st_ctim.tv_nsec);
	/* An empty change (chown(f, -1, -1)) moves ctime and nothing else. */
	assert_int_equal(seg_setattr(ns, b, &attr, SEG_SET_TOUCH, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 02644);
	assert_true(st.st_ctim.tv_sec > before.st_ctim.tv_sec ||
		    (st.st_ctim.tv_sec == before.st_ctim.tv_sec &&
		     st.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
	/* ... but for one outside the file's group. */
	assert_int_equal(seg_setattr(ns, b, &attr, SEG_SET_KILL_SUIDGID | SEG_SET_KILL_SGID, &st),
			 0);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	ns_free(ns);
}

static void test_acls(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *d, *x;
	struct stat attr = { .st_mode = S_IFREG | 0750 }, st;
	uint8_t buf[64];
	size_t len;
	bool created;

	(void)state;
	a = mk(ns, root, "a");
	assert_int_equal(seg_set_acl(ns, a, false, acl_example, sizeof acl_example, false), 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(seg_getxattr(ns, a, "system.posix_acl_access", buf, sizeof buf, &len), 0);
	assert_memory_equal(buf, acl_example, sizeof acl_example);
	/* chmod rewrites the owner, mask and other entries. */
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_MODE, &st), 0);
	assert_int_equal(seg_getxattr(ns, a, "system.posix_acl_access", buf, sizeof buf, &len), 0);
	assert_int_equal(buf[4 + 2], 07);         /* USER_OBJ */
	assert_int_equal(buf[4 + 3 * 8 + 2], 05); /* MASK */
	assert_int_equal(buf[4 + 4 * 8 + 2], 00); /* OTHER */
	/* An ACL the mode says all of sets the mode and is not kept. */
	assert_int_equal(seg_set_acl(ns, a, false, acl_minimal, sizeof acl_minimal, false), 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(seg_getxattr(ns, a, "system.posix_acl_access", buf, sizeof buf, &len),
			 -ENODATA);
	assert_int_equal(seg_set_acl(ns, a, true, acl_example, sizeof acl_example, false), -EACCES);
	assert_int_equal(seg_set_acl(ns, a, false, acl_example, 7, false), -EINVAL);

	/* Default ACLs: inherited instead of the umask, masked by the mode. */
	d = mkd(ns, root, "d");
	assert_int_equal(seg_set_acl(ns, d, true, acl_example, sizeof acl_example, false), 0);
	struct seg_cred who = { .uid = 1, .gid = 1, .umask = 077 };
	assert_int_equal(seg_create(ns, d, "f", 0600, &who, 0, &x, &st, &created), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(seg_getxattr(ns, x, "system.posix_acl_access", buf, sizeof buf, &len), 0);
	assert_int_equal(len, sizeof acl_example);
	assert_int_equal(buf[4 + 3 * 8 + 2], 00); /* the mask, from the mode's group bits */
	assert_int_equal(seg_mkdir(ns, d, "sub", 0777, &who, &x, &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 0640);
	assert_int_equal(seg_getxattr(ns, x, "system.posix_acl_default", buf, sizeof buf, &len), 0);
	assert_memory_equal(buf, acl_example, sizeof acl_example);
	/* Without one, the umask. */
	assert_int_equal(seg_create(ns, root, "g", 0666, &who, 0, &x, &st, &created), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	/* Removing a default ACL. */
	assert_int_equal(seg_set_acl(ns, d, true, NULL, 0, false), 0);
	assert_int_equal(seg_create(ns, d, "h", 0666, &who, 0, &x, &st, &created), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	ns_free(ns);
}

/*
 * Attributes share the inode space with inodes at tmpfs's price (40 + the
 * name + the value); a replacement must fit beside the old value; ACLs
 * cost nothing; an inode's attributes go back with it.
 */
static void test_xattr_space(void **state)
{
	struct seg_ns *ns = new_ns(4);  /* root, lists/: 2048 bytes left */
	struct seg_inode *root = seg_ns_root(ns), *a;
	struct statvfs sv;
	char value[1000] = { 0 }, name[32];
	int n = 0;

	(void)state;
	a = mk(ns, root, "a");              /* 1024 bytes left */
	for (;; n++) {
		snprintf(name, sizeof name, "user.a%03d", n);
		int rc = seg_setxattr(ns, a, name, value, 100, 0);

		if (rc < 0) {
			assert_int_equal(rc, -ENOSPC);
			break;
		}
	}
	assert_int_equal(n, 1024 / (40 + 9 + 100));
	assert_int_equal(seg_setxattr(ns, a, "user.a000", value, 100, 0), -ENOSPC);
	assert_int_equal(seg_set_acl(ns, a, false, acl_example, sizeof acl_example, false), 0);
	assert_int_equal(seg_removexattr(ns, a, "user.a001"), 0);
	assert_int_equal(seg_setxattr(ns, a, "user.a000", value, 100, 0), 0);
	assert_int_equal(seg_setxattr(ns, a, "user.big", value, 1000, 0), -ENOSPC);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	seg_forget(ns, a, 1);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_ffree, 2);
	ns_free(ns);
}

/* chattr's flags: what an immutable or append-only inode refuses. */
static void test_inode_flags(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *d, *x;
	struct stat attr = { .st_mode = S_IFREG | 0600, .st_size = 0 }, st;
	unsigned flags;
	int backing;
	bool created;

	(void)state;
	a = mk(ns, root, "a");
	d = mkd(ns, root, "d");
	assert_int_equal(seg_set_flags(ns, a, 0x1), -EOPNOTSUPP);
	assert_int_equal(seg_set_flags(ns, a, SEG_FL_IMMUTABLE | SEG_FL_NODUMP), 0);
	assert_int_equal(seg_get_flags(ns, a, &flags), 0);
	assert_int_equal(flags, SEG_FL_IMMUTABLE | SEG_FL_NODUMP);
	assert_int_equal(seg_open(ns, a, O_RDWR, &backing), -EPERM);
	assert_int_equal(seg_may_fallocate(ns, a, true), -EPERM);
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_MODE, &st), -EPERM);
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_SIZE, &st), -EPERM);
	assert_int_equal(seg_setxattr(ns, a, "user.x", "1", 1, 0), -EPERM);
	assert_int_equal(seg_link(ns, a, root, "b", &st), -EPERM);
	assert_int_equal(seg_unlink(ns, root, "a"), -EPERM);
	assert_int_equal(seg_rename(ns, root, "a", d, "a", 0, NULL), -EPERM);

	assert_int_equal(seg_set_flags(ns, a, SEG_FL_APPEND), 0);
	assert_int_equal(seg_open(ns, a, O_WRONLY, &backing), -EPERM);
	assert_int_equal(seg_open(ns, a, O_WRONLY | O_APPEND | O_TRUNC, &backing), -EPERM);
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_SIZE | SEG_SET_FH, &st), -EPERM);
	assert_int_equal(seg_may_fallocate(ns, a, true), 0);
	assert_int_equal(seg_may_fallocate(ns, a, false), -EPERM);
	assert_int_equal(seg_unlink(ns, root, "a"), -EPERM);

	/* An append-only directory takes entries and loses none. */
	assert_int_equal(seg_set_flags(ns, d, SEG_FL_APPEND), 0);
	assert_int_equal(seg_create(ns, d, "f", 0600, WHO(0, 0, 0), 0, &x, &st, &created), 0);
	assert_int_equal(seg_unlink(ns, d, "f"), -EPERM);
	/* An immutable one neither. */
	assert_int_equal(seg_set_flags(ns, d, SEG_FL_IMMUTABLE), 0);
	assert_int_equal(seg_create(ns, d, "g", 0600, WHO(0, 0, 0), 0, &x, &st, &created),
			 -EPERM);
	assert_int_equal(seg_set_flags(ns, d, 0), 0);
	assert_int_equal(seg_unlink(ns, d, "f"), 0);
	assert_int_equal(seg_set_flags(ns, a, 0), 0);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	ns_free(ns);
}

/* ---- the hook -------------------------------------------------------- */

struct heard {
	int n;
	struct {
		enum seg_change_kind kind;
		const struct seg_inode *dir, *ino;
		char name[16];
	} ev[32];
};

static void record(void *arg, const struct seg_change *c)
{
	struct heard *h = arg;

	assert_true(h->n < 32);
	h->ev[h->n].kind = c->kind;
	h->ev[h->n].dir = c->dir;
	h->ev[h->n].ino = c->ino;
	snprintf(h->ev[h->n].name, sizeof(h->ev[0].name), "%.*s", (int)c->len,
		 c->name != NULL ? c->name : "");
	h->n++;
}

/* Whether event i is a NAME change of `name` in `dir`, now leading to `ino`. */
static bool heard_name(const struct heard *h, int i, const struct seg_inode *dir,
		       const char *name, const struct seg_inode *ino)
{
	return i < h->n && h->ev[i].kind == SEG_CHANGE_NAME && h->ev[i].dir == dir &&
	       strcmp(h->ev[i].name, name) == 0 && h->ev[i].ino == ino;
}

/*
 * What a layer above hears: every name added, removed or repointed, with
 * its directory and what it leads to now, and every size the namespace
 * sets; nothing for what changes no name or size.
 */
static void test_hook(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *b, *d, *t;
	struct heard h = { .n = 0 };
	struct stat st, attr = { .st_size = 100, .st_mode = 0600 };
	int backing;

	(void)state;
	seg_ns_set_hook(ns, record, &h);
	a = mk(ns, root, "a");
	assert_true(heard_name(&h, 0, root, "a", a));
	d = mkd(ns, root, "d");
	assert_true(heard_name(&h, 1, root, "d", d));
	assert_int_equal(seg_link(ns, a, d, "l", &st), 0);
	assert_true(heard_name(&h, 2, d, "l", a));
	assert_int_equal(seg_rename(ns, root, "a", root, "c", 0, NULL), 0);
	assert_true(heard_name(&h, 3, root, "c", a));
	assert_true(heard_name(&h, 4, root, "a", NULL));
	b = mk(ns, root, "b");
	assert_true(heard_name(&h, 5, root, "b", b));
	assert_int_equal(seg_rename(ns, root, "b", root, "c", SEG_RENAME_EXCHANGE, NULL), 0);
	assert_true(heard_name(&h, 6, root, "b", a));
	assert_true(heard_name(&h, 7, root, "c", b));
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_SIZE, &st), 0);
	assert_true(h.n == 9 && h.ev[8].kind == SEG_CHANGE_SIZE && h.ev[8].ino == a);
	/* A mode, a lookup, an open without O_TRUNC: no name, no size. */
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_MODE, &st), 0);
	assert_int_equal(peek(ns, root, "b", NULL, NULL), 0);
	assert_int_equal(open_with(ns, a, O_RDWR, NULL, NULL, &backing), 0);
	seg_release(ns, a);
	assert_int_equal(h.n, 9);
	assert_int_equal(open_with(ns, a, O_RDWR | O_TRUNC, NULL, NULL, &backing), 0);
	seg_release(ns, a);
	assert_true(h.n == 10 && h.ev[9].kind == SEG_CHANGE_SIZE && h.ev[9].ino == a);
	/* A segment made unnamed, then put in the name's place. */
	assert_int_equal(seg_tmpfile(ns, root, 0600, WHO(0, 0, 0), &t, &st), 0);
	assert_int_equal(h.n, 10);
	assert_int_equal(seg_replace(ns, root, "b", NULL, t), -EAGAIN);
	assert_int_equal(seg_replace(ns, root, "b", a, t), 0);
	assert_true(heard_name(&h, 10, root, "b", t));
	seg_forget(ns, t, 1);
	assert_int_equal(seg_unlink(ns, d, "l"), 0);
	assert_true(heard_name(&h, 11, d, "l", NULL));
	assert_int_equal(seg_rmdir(ns, root, "d"), 0);
	assert_true(heard_name(&h, 12, root, "d", NULL));
	/* Refused changes say nothing. */
	assert_int_equal(seg_unlink(ns, root, "nope"), -ENOENT);
	assert_int_equal(seg_rmdir(ns, root, "lists"), -EPERM);
	assert_int_equal(h.n, 13);
	seg_ns_set_hook(ns, NULL, NULL);
	ns_free(ns);
}

/*
 * tmpfile and replace: an unnamed segment is freed when forgotten, or
 * named in another's place (which then goes), as rename() over it would.
 */
static void test_tmpfile_and_replace(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *root = seg_ns_root(ns), *a, *t, *now;
	struct stat st;
	uint64_t count = seg_ns_inode_count(ns);

	(void)state;
	assert_int_equal(seg_tmpfile(ns, root, 0640, WHO(5, 6, 0), &t, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(seg_ns_inode_count(ns), count + 1);
	seg_forget(ns, t, 1);
	assert_int_equal(seg_ns_inode_count(ns), count);
	/* Named where nothing is. */
	assert_int_equal(seg_tmpfile(ns, root, 0600, WHO(0, 0, 0), &t, &st), 0);
	assert_int_equal(seg_replace(ns, root, "x", NULL, t), 0);
	seg_forget(ns, t, 1);
	assert_int_equal(peek(ns, root, "x", &now, &st), 0);
	assert_ptr_equal(now, t);
	assert_int_equal(st.st_nlink, 1);
	/* A named one is not unnamed: no second replace. */
	a = mk(ns, root, "a");
	assert_int_equal(seg_replace(ns, root, "y", NULL, a), -EINVAL);
	/* In another's place: the other goes once nothing holds it. */
	assert_int_equal(seg_tmpfile(ns, root, 0600, WHO(0, 0, 0), &t, &st), 0);
	assert_int_equal(seg_replace(ns, root, "a", t, t), -EAGAIN);
	assert_int_equal(seg_replace(ns, root, "a", a, t), 0);
	assert_int_equal(peek(ns, root, "a", &now, NULL), 0);
	assert_ptr_equal(now, t);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	seg_forget(ns, a, 1);
	seg_forget(ns, t, 1);
	assert_int_equal(seg_ns_inode_count(ns), count + 2);   /* x and a */
	/* A tmpfile may be linked once, as O_TMPFILE allows. */
	assert_int_equal(seg_tmpfile(ns, root, 0600, WHO(0, 0, 0), &t, &st), 0);
	assert_int_equal(seg_link(ns, t, root, "linked", &st), 0);
	assert_int_equal(st.st_nlink, 1);
	seg_forget(ns, t, 2);
	ns_free(ns);
}

/* seg_pread and seg_pwrite: a layer above's I/O, which never extends. */
static void test_pread_pwrite(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *a = mk(ns, seg_ns_root(ns), "a");
	struct stat st, attr = { .st_size = 10 };
	char buf[16];
	size_t got;

	(void)state;
	assert_int_equal(seg_setattr(ns, a, &attr, SEG_SET_SIZE, &st), 0);
	assert_int_equal(seg_pwrite(ns, a, "0123456789", 10, 0), 0);
	assert_int_equal(seg_pwrite(ns, a, "ab", 2, 9), -ENXIO);
	assert_int_equal(seg_pwrite(ns, a, "ab", 2, 8), 0);
	assert_int_equal(seg_pread(ns, a, buf, sizeof(buf), 0, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(buf, "01234567ab", 10);
	assert_int_equal(seg_pread(ns, a, buf, sizeof(buf), 20, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(seg_getattr(ns, a, &st), 0);
	assert_int_equal(st.st_size, 10);
	assert_int_equal(seg_pread(ns, seg_ns_root(ns), buf, 1, 0, &got), -EINVAL);
	ns_free(ns);
}

/* ---- differential test ------------------------------------------------ */

/*
 * A reference model of the names in three directories (root, d0, d1),
 * each with the names n0..n5, every name holding a segment id or nothing.
 * Random creates, links, unlinks and renames go to both; return codes,
 * contents and link counts must agree.
 */
#define MDIRS 3
#define MNAMES 6

struct model {
	int slot[MDIRS][MNAMES];   /* segment id or 0 */
	int nlink[256];
	int next_id;
};

static int model_count_links(const struct model *m, int id)
{
	int n = 0;

	for (int d = 0; d < MDIRS; d++)
		for (int i = 0; i < MNAMES; i++)
			n += m->slot[d][i] == id;
	return n;
}

static void test_differential(void **state)
{
	struct seg_ns *ns = new_ns(0);
	struct seg_inode *dirs[MDIRS];
	struct model m;
	char name[8], name2[8];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.next_id = 1;
	srandom((unsigned)seed);
	dirs[0] = seg_ns_root(ns);
	dirs[1] = mkd(ns, dirs[0], "d0");
	dirs[2] = mkd(ns, dirs[0], "d1");
	/* Keep every segment's id in its first 4 bytes to identify it. */
	for (int step = 0; step < 20000 && m.next_id < 250; step++) {
		int op = (int)(random() % 4), d = (int)(random() % MDIRS), i = (int)(random() % MNAMES);
		int d2 = (int)(random() % MDIRS), i2 = (int)(random() % MNAMES);
		int *s = &m.slot[d][i], *s2 = &m.slot[d2][i2];
		struct seg_inode *ino;
		struct stat st;
		bool created;
		int rc, want;

		snprintf(name, sizeof(name), "n%d", i);
		snprintf(name2, sizeof(name2), "n%d", i2);
		switch (op) {
		case 0:   /* create, O_EXCL */
			want = *s ? -EEXIST : 0;
			rc = seg_create(ns, dirs[d], name, 0600, WHO(0, 0, 0), SEG_CREATE_EXCL,
					&ino, &st, &created);
			assert_int_equal(rc, want);
			if (rc == 0) {
				*s = m.next_id++;
				assert_int_equal(pwrite(seg_inode_fd(ino), s, sizeof(*s), 0), sizeof(*s));
				seg_forget(ns, ino, 1);
			}
			break;
		case 1:   /* unlink */
			want = *s ? 0 : -ENOENT;
			assert_int_equal(seg_unlink(ns, dirs[d], name), want);
			*s = 0;
			break;
		case 2:   /* link s -> s2 */
			if (*s == 0)
				break;
			want = *s2 ? -EEXIST : 0;
			assert_int_equal(peek(ns, dirs[d], name, &ino, NULL), 0);
			assert_int_equal(seg_link(ns, ino, dirs[d2], name2, &st), want);
			if (want == 0) {
				*s2 = *s;
				seg_forget(ns, ino, 1);
			}
			break;
		case 3: { /* rename s -> s2, with random flags */
			unsigned flags = (unsigned)(random() % 3);

			if (*s == 0)
				want = -ENOENT;
			else if (flags == SEG_RENAME_EXCHANGE)
				want = *s2 ? 0 : -ENOENT;
			else if (flags == SEG_RENAME_NOREPLACE && *s2 && *s2 != *s)
				want = -EEXIST;
			else
				want = 0;
			assert_int_equal(seg_rename(ns, dirs[d], name, dirs[d2], name2, flags, NULL), want);
			if (want == 0 && flags == SEG_RENAME_EXCHANGE) {
				int t = *s;
				*s = *s2;
				*s2 = t;
			} else if (want == 0 && *s2 != *s) {
				*s2 = *s;
				*s = 0;
			}
			break;
		}
		}
		/* Every few steps, compare the whole namespace. */
		if (step % 97 != 0)
			continue;
		for (int dd = 0; dd < MDIRS; dd++) {
			for (int ii = 0; ii < MNAMES; ii++) {
				int id = 0;

				snprintf(name, sizeof(name), "n%d", ii);
				rc = peek(ns, dirs[dd], name, &ino, &st);
				assert_int_equal(rc, m.slot[dd][ii] ? 0 : -ENOENT);
				if (rc < 0)
					continue;
				assert_int_equal(pread(seg_inode_fd(ino), &id, sizeof(id), 0), sizeof(id));
				assert_int_equal(id, m.slot[dd][ii]);
				assert_int_equal(st.st_nlink, model_count_links(&m, id));
			}
		}
	}
	/* Everything unnamed and unreferenced is gone: root, lists, d0, d1 + live. */
	int live = 0;
	for (int id = 1; id < m.next_id; id++)
		live += model_count_links(&m, id) > 0;
	assert_int_equal(seg_ns_inode_count(ns), 4 + (uint64_t)live);
	ns_free(ns);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_has_root_and_fixed_dir),
		cmocka_unit_test(test_create_and_lookup),
		cmocka_unit_test(test_unlink_while_open),
		cmocka_unit_test(test_forget_then_release),
		cmocka_unit_test(test_open_attaches_once),
		cmocka_unit_test(test_open_trunc),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_rename_files),
		cmocka_unit_test(test_rename_dirs),
		cmocka_unit_test(test_setattr),
		cmocka_unit_test(test_statfs_and_limit),
		cmocka_unit_test(test_inspect),
		cmocka_unit_test(test_ns_stats),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_backing),
		cmocka_unit_test(test_unseen_write_past_limit),
		cmocka_unit_test(test_more_segments_than_descriptors),
		cmocka_unit_test(test_readdir_order_and_cursor),
		cmocka_unit_test(test_readdirplus_references),
		cmocka_unit_test(test_opendir_keeps_removed_dir),
		cmocka_unit_test(test_enomem_everywhere),
		cmocka_unit_test(test_hook),
		cmocka_unit_test(test_tmpfile_and_replace),
		cmocka_unit_test(test_pread_pwrite),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_node_types),
		cmocka_unit_test(test_links_take_slots),
		cmocka_unit_test(test_rename_whiteout),
		cmocka_unit_test(test_setgid_dir),
		cmocka_unit_test(test_kill_suid_sgid),
		cmocka_unit_test(test_acls),
		cmocka_unit_test(test_xattr_space),
		cmocka_unit_test(test_inode_flags),
	};

	if (argc > 1)
		seed = strtoul(argv[1], NULL, 0);
	printf("test_ns: differential seed %lu\n", seed);
	int failed = cmocka_run_group_tests_name("tmpfs where possible", tests, NULL, NULL);
	struct keep probe;

	memfd_run = true;
	failed += cmocka_run_group_tests_name("memfd", tests, NULL, NULL);
	memfd_run = false;
	/* Keeping needs a state tmpfs, which only a privileged process makes. */
	if (keep_new(&probe)) {
		keep_free(&probe);
		keep_run = true;
		failed += cmocka_run_group_tests_name("tmpfs, kept for a next server", tests,
						      NULL, NULL);
	}
	return failed;
}
