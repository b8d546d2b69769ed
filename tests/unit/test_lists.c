/*
 * Unit tests of core/lists.c: which segments lists/ shows, views and their
 * lifetime, storing in place or by replacement, refusals, and allocation
 * failures that must change nothing.
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
#include "core/lists.h"
#include "core/ns.h"
#include "core/sltext.h"

#define VIEW_BIT (UINT64_C(1) << 62)

static struct seg_ns *new_ns(void)
{
	struct seg_ns_config cfg = { 0 };
	struct seg_ns *ns = NULL;

	assert_int_equal(seg_ns_new(&cfg, &ns), 0);
	return ns;
}

static struct seg_inode *lists_dir(struct seg_ns *ns)
{
	struct seg_inode *l;
	struct stat st;

	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "lists", &l, &st), 0);
	seg_forget(ns, l, 1);
	return l;
}

/* A root segment holding `bytes`, with no kernel reference left. */
static struct seg_inode *put(struct seg_ns *ns, const char *name, const void *bytes,
			     size_t len)
{
	struct seg_inode *ino;
	struct stat st;
	bool created;

	assert_int_equal(seg_create(ns, seg_ns_root(ns), name, 0640, 7, 8, 0, 0,
				    &ino, &st, &created), 0);
	assert_int_equal(ftruncate(seg_inode_fd(ino), 0), 0);
	if (len)
		assert_int_equal(pwrite(seg_inode_fd(ino), bytes, len, 0), (ssize_t)len);
	seg_forget(ns, ino, 1);
	return ino;
}

/* A root segment holding CPython's bytes for the list in `text`. */
static struct seg_inode *put_list(struct seg_ns *ns, const char *name, const char *text)
{
	struct sl_list *l;
	struct seg_inode *ino;
	uint8_t *bytes;
	size_t size, bad;

	assert_int_equal(sl_parse(text, strlen(text), &l, &bad), 0);
	assert_int_equal(sl_encoded_size(l, &size), 0);
	bytes = malloc(size);
	assert_non_null(bytes);
	assert_int_equal(sl_encode(l, bytes, size), 0);
	ino = put(ns, name, bytes, size);
	free(bytes);
	sl_list_free(l);
	return ino;
}

static uint8_t *contents(struct seg_inode *ino, size_t *len)
{
	struct stat st;
	uint8_t *buf;

	assert_int_equal(fstat(seg_inode_fd(ino), &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(pread(seg_inode_fd(ino), buf, *len, 0), (ssize_t)*len);
	return buf;
}

static char *render(struct seg_ns *ns, struct seg_inode *view)
{
	char *text;
	size_t len;

	assert_int_equal(seg_view_render(ns, view, &text, &len), 0);
	return text;
}

static struct sl_list *parse(const char *text)
{
	struct sl_list *l;
	size_t bad;

	assert_int_equal(sl_parse(text, strlen(text), &l, &bad), 0);
	return l;
}

struct names {
	char name[8][16];
	uint64_t ino[8];
	int n;
};

static int collect(void *arg, const char *name, struct seg_inode *ino,
		   const struct stat *st, uint64_t next)
{
	struct names *c = arg;

	(void)next;
	assert_null(ino);          /* lists/ entries come without references */
	assert_true(c->n < 8);
	snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
	c->ino[c->n++] = st->st_ino;
	return 0;
}

static void test_which_segments_show(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v, *lst, *d;
	uint8_t zeros[100] = { 0 }, junk[40];
	struct seg_dirh *dh;
	struct names c = { .n = 0 };
	struct stat st;

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	put(ns, "plain", zeros, sizeof(zeros));   /* zero-filled: not a list */
	put(ns, "empty16", zeros, 16);            /* CPython's [] */
	put(ns, "junk", junk, sizeof(junk));
	lst = put_list(ns, "lst", "1\n'a'\n");
	assert_int_equal(seg_mkdir(ns, root, "d", 0755, 0, 0, &d, &st), 0);
	assert_int_equal(seg_lookup(ns, lists, "plain", &v, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, lists, "junk", &v, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, lists, "d", &v, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, lists, "nope", &v, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, lists, "empty16", &v, &st), 0);
	assert_int_equal(st.st_size, 0);
	seg_forget(ns, v, 1);
	assert_int_equal(seg_lookup(ns, lists, "lst", &v, &st), 0);
	assert_true(seg_inode_is_view(v));
	assert_int_equal(st.st_size, 6);             /* "1\n'a'\n" */
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	seg_forget(ns, v, 1);
	/* readdir: the listed segments in the root's order, views' numbers. */
	assert_int_equal(seg_opendir(ns, lists, &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 2, true, collect, &c), 0);
	seg_releasedir(ns, dh);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.name[0], "empty16");
	assert_string_equal(c.name[1], "lst");
	assert_int_equal(seg_getattr(ns, lst, &st), 0);
	assert_int_equal(c.ino[1], st.st_ino | VIEW_BIT);
	seg_ns_free(ns);
}

static void test_view_lifetime(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *lists = lists_dir(ns), *v, *v2;
	uint64_t base;
	struct stat st;
	int backing, detach;

	(void)state;
	put_list(ns, "a", "1\n");
	base = seg_ns_inode_count(ns);
	assert_int_equal(seg_lookup(ns, lists, "a", &v, &st), 0);
	assert_int_equal(seg_lookup(ns, lists, "a", &v2, &st), 0);
	assert_ptr_equal(v, v2);                     /* one view per name */
	assert_int_equal(seg_ns_inode_count(ns), base + 1);
	assert_int_equal(seg_open(ns, v, O_RDONLY, NULL, NULL, &backing), 0);
	seg_forget(ns, v, 2);
	assert_int_equal(seg_ns_inode_count(ns), base + 1);   /* still open */
	seg_release(ns, v, &detach);
	assert_int_equal(seg_ns_inode_count(ns), base);
	/* A view of a name that lost its list answers ENOENT. */
	assert_int_equal(seg_lookup(ns, lists, "a", &v, &st), 0);
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "a"), 0);
	assert_int_equal(seg_getattr(ns, v, &st), -ENOENT);
	char *text;
	size_t len;
	assert_int_equal(seg_view_render(ns, v, &text, &len), -ENOENT);
	seg_forget(ns, v, 1);
	seg_ns_free(ns);
}

static void test_create_through_lists(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v, *seg;
	uint8_t data[8] = "precious";
	struct stat st;
	bool created;
	size_t len;
	uint8_t *got;

	(void)state;
	assert_int_equal(seg_create(ns, lists, "n", 0600, 3, 4, 0, SEG_CREATE_EXCL,
				    &v, &st, &created), 0);
	assert_true(created);
	seg_forget(ns, v, 1);
	assert_int_equal(seg_lookup(ns, root, "n", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	assert_int_equal(st.st_size, 16);
	assert_int_equal(st.st_uid, 3);
	got = contents(seg, &len);
	assert_memory_equal(got, (uint8_t[16]){ 0 }, 16);
	free(got);
	/* Again, exclusively: EEXIST; not exclusively: the same list. */
	assert_int_equal(seg_create(ns, lists, "n", 0600, 0, 0, 0, SEG_CREATE_EXCL,
				    &v, &st, &created), -EEXIST);
	assert_int_equal(seg_create(ns, lists, "n", 0600, 0, 0, 0, 0, &v, &st, &created), 0);
	assert_false(created);
	seg_forget(ns, v, 1);
	/* A segment that holds no list is not turned into one. */
	put(ns, "data", data, sizeof(data));
	assert_int_equal(seg_create(ns, lists, "data", 0600, 0, 0, 0, 0, &v, &st, &created),
			 -EEXIST);
	assert_int_equal(seg_mkdir(ns, root, "dir", 0700, 0, 0, &seg, &st), 0);
	assert_int_equal(seg_create(ns, lists, "dir", 0600, 0, 0, 0, 0, &v, &st, &created),
			 -EISDIR);
	seg_ns_free(ns);
}

static void test_store_in_place(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *lists = lists_dir(ns), *v, *seg, *now;
	struct seg_view_effect eff;
	struct sl_list *l = parse("-5\n'xyz'\nNone\n");
	struct stat st;
	uint8_t *got;
	size_t len;
	char *text;

	(void)state;
	seg = put_list(ns, "p", "1\n'abc'\n2.5\n");
	assert_int_equal(seg_lookup(ns, lists, "p", &v, &st), 0);
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), 0);
	assert_ptr_equal(eff.in_place, seg);
	assert_false(eff.replaced);
	assert_string_equal(eff.name, "p");
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "p", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_equal(now, seg);                  /* the same segment */
	text = render(ns, v);
	assert_string_equal(text, "-5\n'xyz'\nNone\n");
	seg_free(text);
	/* The bytes are what CPython's sl[i] = v leaves: assign the same. */
	got = contents(seg, &len);
	{
		struct sl_list *orig = parse("1\n'abc'\n2.5\n");
		uint8_t *want;
		size_t size;

		assert_int_equal(sl_encoded_size(orig, &size), 0);
		assert_int_equal(size, len);
		want = malloc(size);
		assert_non_null(want);
		assert_int_equal(sl_encode(orig, want, size), 0);
		for (size_t i = 0; i < l->n; i++)
			assert_int_equal(sl_assign(want, size, i, &l->v[i]), 0);
		assert_memory_equal(got, want, size);
		free(want);
		sl_list_free(orig);
	}
	free(got);
	sl_list_free(l);
	seg_forget(ns, v, 1);
	seg_ns_free(ns);
}

static void test_store_replaces(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *lists = lists_dir(ns), *v, *seg, *now;
	struct seg_view_effect eff;
	struct sl_list *l = parse("'a string longer than its slot'\n");
	struct stat st;
	uint8_t *before, *after;
	size_t blen, alen;
	int backing, detach;

	(void)state;
	seg = put_list(ns, "r", "'short'\n");
	before = contents(seg, &blen);
	assert_int_equal(seg_open(ns, seg, O_RDONLY, NULL, NULL, &backing), 0);
	assert_int_equal(seg_lookup(ns, lists, "r", &v, &st), 0);
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), 0);
	assert_true(eff.replaced);
	assert_null(eff.in_place);
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "r", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_not_equal(now, seg);
	assert_int_equal(st.st_mode, S_IFREG | 0640);   /* the old one's */
	assert_int_equal(st.st_uid, 7);
	/* The holder of the old segment keeps its old list, whole. */
	after = contents(seg, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	assert_int_equal(seg_getattr(ns, seg, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	seg_release(ns, seg, &detach);
	free(before);
	free(after);
	/* A name that lost its segment gets a new one, with the given owner. */
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "r"), 0);
	assert_int_equal(seg_view_store(ns, v, l, 0604, 11, 12, &eff), 0);
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "r", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_int_equal(st.st_mode, S_IFREG | 0604);
	assert_int_equal(st.st_uid, 11);
	sl_list_free(l);
	seg_forget(ns, v, 1);
	seg_ns_free(ns);
}

static void test_store_refusals(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v, *seg, *d;
	struct seg_view_effect eff;
	struct sl_list *l = parse("1\n");
	uint8_t data[24], *got;
	struct stat st;
	size_t len;

	(void)state;
	memset(data, 0xab, sizeof(data));
	seg = put_list(ns, "x", "1\n");
	assert_int_equal(seg_lookup(ns, lists, "x", &v, &st), 0);
	/* The name now holds a segment that is not a list: not overwritten. */
	assert_int_equal(seg_unlink(ns, root, "x"), 0);
	seg = put(ns, "x", data, sizeof(data));
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), -EEXIST);
	got = contents(seg, &len);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	free(got);
	/* Or a directory. */
	assert_int_equal(seg_unlink(ns, root, "x"), 0);
	assert_int_equal(seg_mkdir(ns, root, "x", 0700, 0, 0, &d, &st), 0);
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), -EISDIR);
	seg_forget(ns, v, 1);
	sl_list_free(l);
	seg_ns_free(ns);
}

static void test_unlink_and_rename_through_lists(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v;
	uint8_t data[8] = "keepthis";
	struct stat st;

	(void)state;
	put_list(ns, "a", "1\n");
	put_list(ns, "b", "2\n");
	put(ns, "plain", data, sizeof(data));
	assert_int_equal(seg_rename(ns, lists, "a", lists, "c", 0), 0);
	assert_int_equal(seg_lookup(ns, root, "a", &v, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, root, "c", &v, &st), 0);
	seg_forget(ns, v, 1);
	/* What lists/ does not show is not there to replace or to move. */
	assert_int_equal(seg_rename(ns, lists, "c", lists, "plain", 0), -EEXIST);
	assert_int_equal(seg_rename(ns, lists, "plain", lists, "q", 0), -ENOENT);
	assert_int_equal(seg_unlink(ns, lists, "plain"), -ENOENT);
	assert_int_equal(seg_rename(ns, lists, "c", lists, "b", SEG_RENAME_NOREPLACE),
			 -EEXIST);
	assert_int_equal(seg_rename(ns, lists, "c", lists, "b", 0), 0);
	assert_int_equal(seg_unlink(ns, lists, "b"), 0);
	assert_int_equal(seg_lookup(ns, root, "b", &v, &st), -ENOENT);
	assert_int_equal(seg_rmdir(ns, lists, "plain"), -ENOTDIR);
	assert_int_equal(seg_lookup(ns, root, "plain", &v, &st), 0);
	seg_forget(ns, v, 1);
	seg_ns_free(ns);
}

struct synced {
	const struct seg_inode *seg[4];
	int n;
	struct seg_ns *ns;
};

static void record_sync(void *arg, const struct seg_inode *seg)
{
	struct synced *s = arg;

	assert_true(s->n < 4);
	s->seg[s->n++] = seg;
	/* Called without the lock: this takes it, and would hang if held. */
	assert_true(seg_ns_inode_count(s->ns) > 0);
}

/* The sync hook sees exactly the open root segments, pinned, unlocked. */
static void test_sync_hook(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *a, *b, *lists = lists_dir(ns), *v;
	struct synced s = { .ns = ns };
	struct stat st;
	int backing, detach;

	(void)state;
	a = put_list(ns, "a", "1\n");
	b = put_list(ns, "b", "2\n");
	assert_int_equal(seg_open(ns, b, O_RDWR, NULL, NULL, &backing), 0);
	seg_lists_sync(ns, NULL);            /* no hook yet: nothing */
	seg_ns_set_sync(ns, record_sync, &s);
	seg_lists_sync(ns, NULL);
	assert_int_equal(s.n, 1);
	assert_ptr_equal(s.seg[0], b);        /* a is not open */
	s.n = 0;
	seg_lists_sync(ns, "a");
	assert_int_equal(s.n, 0);
	assert_int_equal(seg_lookup(ns, lists, "b", &v, &st), 0);
	seg_view_sync(ns, v);
	assert_int_equal(s.n, 1);
	/* The pin kept b alive through an unlink, and let it go after. */
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "b"), 0);
	seg_release(ns, b, &detach);
	seg_forget(ns, v, 1);
	(void)a;
	seg_ns_free(ns);
}

/*
 * seg_holds_list: the rule of lists/, for segments anywhere; the sync hook
 * runs first for open segments only; what is not a segment is refused; an
 * allocation failure is an error, not a "no".
 */
static void test_holds_list(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v, *d, *sub;
	uint8_t zeros[100] = { 0 }, junk[40] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct synced s = { .ns = ns };
	struct stat st;
	bool yes, created;
	int backing, detach;
	struct {
		struct seg_inode *seg;
		bool list;
	} cases[] = {
		{ put(ns, "plain", zeros, sizeof(zeros)), false },
		{ put(ns, "empty16", zeros, 16), true },
		{ put(ns, "junk", junk, sizeof(junk)), false },   /* absurd count */
		{ put(ns, "nothing", NULL, 0), false },
		{ put_list(ns, "lst", "1\n'a'\nNone\n"), true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		yes = !cases[i].list;
		assert_int_equal(seg_holds_list(ns, cases[i].seg, &yes), 0);
		assert_int_equal(yes, cases[i].list);
	}
	/* A segment outside the root holds a list too, though lists/ shows none. */
	assert_int_equal(seg_mkdir(ns, root, "d", 0755, 0, 0, &d, &st), 0);
	assert_int_equal(seg_create(ns, d, "sub", 0600, 0, 0, 0, 0, &sub, &st, &created), 0);
	assert_int_equal(pwrite(seg_inode_fd(sub), zeros, 16, 0), 16);
	assert_int_equal(seg_holds_list(ns, sub, &yes), 0);
	assert_true(yes);
	/* Not segments. */
	assert_int_equal(seg_lookup(ns, lists, "lst", &v, &st), 0);
	assert_int_equal(seg_holds_list(ns, v, &yes), -EINVAL);
	assert_int_equal(seg_holds_list(ns, d, &yes), -EINVAL);
	assert_int_equal(seg_holds_list(ns, root, &yes), -EINVAL);
	/* The hook: for the open segment, not for the closed one. */
	seg_ns_set_sync(ns, record_sync, &s);
	assert_int_equal(seg_open(ns, sub, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(seg_holds_list(ns, sub, &yes), 0);
	assert_int_equal(seg_holds_list(ns, cases[4].seg, &yes), 0);
	assert_int_equal(s.n, 1);
	assert_ptr_equal(s.seg[0], sub);
	seg_release(ns, sub, &detach);
	/* Out of memory for the snapshot: an error, and *yes is left alone. */
	seg_alloc_fail_after(0);
	yes = false;
	assert_int_equal(seg_holds_list(ns, cases[4].seg, &yes), -ENOMEM);
	seg_alloc_fail_reset();
	assert_false(yes);
	seg_forget(ns, v, 1);
	seg_forget(ns, sub, 1);
	seg_ns_free(ns);
}

/*
 * The creator and birth of segments made through lists/: a create there
 * records its pid; a store that replaces the segment keeps the old one's,
 * like its owner; one that finds no segment records none.
 */
static void test_lists_creator(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lists = lists_dir(ns), *v, *seg, *now;
	struct sl_list *l = parse("'a string longer than the empty list'\n");
	struct seg_view_effect eff;
	struct seg_info was, info;
	struct stat st;
	bool created;

	(void)state;
	assert_int_equal(seg_create(ns, lists, "n", 0600, 0, 0, 31337, SEG_CREATE_EXCL,
				    &v, &st, &created), 0);
	assert_int_equal(seg_lookup(ns, root, "n", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	assert_int_equal(seg_inspect(ns, seg, &was), 0);
	assert_int_equal(was.pid, 31337);
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), 0);
	assert_true(eff.replaced);
	assert_int_equal(seg_lookup(ns, root, "n", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_not_equal(now, seg);
	assert_int_equal(seg_inspect(ns, now, &info), 0);
	assert_int_equal(info.pid, 31337);
	assert_int_equal(info.btime.tv_sec, was.btime.tv_sec);
	assert_int_equal(info.btime.tv_nsec, was.btime.tv_nsec);
	assert_int_equal(seg_unlink(ns, root, "n"), 0);
	assert_int_equal(seg_view_store(ns, v, l, 0600, 0, 0, &eff), 0);
	assert_int_equal(seg_lookup(ns, root, "n", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_int_equal(seg_inspect(ns, now, &info), 0);
	assert_int_equal(info.pid, 0);
	sl_list_free(l);
	seg_forget(ns, v, 1);
	seg_ns_free(ns);
}

static struct seg_ns *attach_ns;

/* An attach callback that installs the hook, as fs/ does on EPERM. */
static int attach_installs_sync(void *arg, int memfd)
{
	(void)arg;
	(void)memfd;
	seg_ns_set_sync(attach_ns, record_sync, NULL);
	return 0;
}

/* Installing the hook from inside seg_open's callback does not deadlock. */
static void test_set_sync_under_lock(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *a;
	int backing, detach;

	(void)state;
	a = put_list(ns, "a", "1\n");
	attach_ns = ns;
	assert_int_equal(seg_open(ns, a, O_RDWR, attach_installs_sync, NULL, &backing), 0);
	seg_release(ns, a, &detach);
	seg_ns_free(ns);
}

/* Allocation failures while storing or creating change nothing. */
static void test_enomem(void **state)
{
	(void)state;
	for (int which = 0; which < 2; which++) {
		bool done = false;

		for (long n = 0; !done && n < 60; n++) {
			struct seg_ns *ns = new_ns();
			struct seg_inode *lists = lists_dir(ns), *v, *seg;
			struct sl_list *l = parse("'this is longer than eight bytes'\n2\n");
			struct seg_view_effect eff;
			struct stat st;
			uint64_t count;
			uint8_t *before, *after;
			size_t blen, alen;
			bool created;
			int rc;

			seg = put_list(ns, "s", "1\n");
			before = contents(seg, &blen);
			assert_int_equal(seg_lookup(ns, lists, "s", &v, &st), 0);
			count = seg_ns_inode_count(ns);
			seg_alloc_fail_after(n);
			if (which == 0)
				rc = seg_view_store(ns, v, l, 0600, 0, 0, &eff);
			else
				rc = seg_create(ns, lists, "new", 0600, 0, 0, 0, 0, &v, &st, &created);
			seg_alloc_fail_reset();
			if (rc == 0) {
				done = true;
			} else {
				assert_int_equal(rc, -ENOMEM);
				assert_int_equal(seg_ns_inode_count(ns), count);
				after = contents(seg, &alen);
				assert_int_equal(alen, blen);
				assert_memory_equal(after, before, blen);
				free(after);
				assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "new", &v, &st),
						 -ENOENT);
			}
			free(before);
			sl_list_free(l);
			seg_ns_free(ns);
		}
		assert_true(done);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_segments_show),
		cmocka_unit_test(test_view_lifetime),
		cmocka_unit_test(test_create_through_lists),
		cmocka_unit_test(test_store_in_place),
		cmocka_unit_test(test_store_replaces),
		cmocka_unit_test(test_store_refusals),
		cmocka_unit_test(test_unlink_and_rename_through_lists),
		cmocka_unit_test(test_sync_hook),
		cmocka_unit_test(test_set_sync_under_lock),
		cmocka_unit_test(test_holds_list),
		cmocka_unit_test(test_lists_creator),
		cmocka_unit_test(test_enomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
