/*
 * Unit tests of core/lists.c: which segments lists/ shows, entries and
 * their lifetime, storing in place or by replacement, refusals, the sync
 * hook, what the view hears from the namespace's hook, and allocation
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
#include "keep.h"

#define VIEW_BIT (UINT64_C(1) << 62)

/* Who asks: uid, gid, pid. */
#define WHO(u, g, p) (&(struct seg_cred){ .uid = (u), .gid = (g), .pid = (p) })

/* The view of the namespace the test runs on. */
static struct lv *lv;

/*
 * The second run keeps what a next server needs (keep.h): each namespace
 * gets a state tmpfs, records and a pin holder, freed with it.
 */
static bool keep_run;
static struct keep keep;

static void ns_new(struct seg_ns_config *cfg, struct seg_ns **ns)
{
	if (keep_run) {
		assert_true(keep_new(&keep));
		keep_apply(&keep, cfg);
	}
	assert_int_equal(seg_ns_new(cfg, ns), 0);
}

static void ns_free(struct seg_ns *ns)
{
	seg_ns_free(ns);
	if (keep_run)
		keep_free(&keep);
}

static struct seg_ns *new_ns_with(struct seg_ns_config *cfg)
{
	struct seg_ns *ns = NULL;

	ns_new(cfg, &ns);
	assert_int_equal(lv_new(ns, "lists", &lv), 0);
	return ns;
}

static struct seg_ns *new_ns(void)
{
	struct seg_ns_config cfg = { 0 };

	return new_ns_with(&cfg);
}

static void done(struct seg_ns *ns)
{
	lv_free(lv);
	lv = NULL;
	ns_free(ns);
}

/* seg_open with `attach` as the namespace's data path. */
static int open_with(struct seg_ns *ns, struct seg_inode *ino, int flags,
		     seg_attach_fn attach, void *arg, int *backing)
{
	seg_ns_set_data_path(ns, attach, NULL, arg);
	return seg_open(ns, ino, flags, backing);
}

/* A root segment holding `bytes`, with no reference left. */
static struct seg_inode *put(struct seg_ns *ns, const char *name, const void *bytes,
			     size_t len)
{
	struct seg_inode *ino;
	struct stat st;
	bool created;
	int backing;

	assert_int_equal(seg_create(ns, seg_ns_root(ns), name, 0640, WHO(7, 8, 0), 0,
				    &ino, &st, &created), 0);
	assert_int_equal(open_with(ns, ino, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(ftruncate(seg_inode_fd(ino), 0), 0);
	if (len)
		assert_int_equal(pwrite(seg_inode_fd(ino), bytes, len, 0), (ssize_t)len);
	seg_release(ns, ino);
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

/* The bytes of a segment, read through the namespace. */
static uint8_t *contents(struct seg_ns *ns, struct seg_inode *ino, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got;

	assert_int_equal(seg_getattr(ns, ino, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(seg_pread(ns, ino, buf, *len, 0, &got), 0);
	assert_int_equal(got, *len);
	return buf;
}

/* lv_take_fn: keeps a copy, and where the view's text was. */
struct taken {
	char *text;
	const char *where;
};

static int take(void *arg, const char *text, size_t len)
{
	struct taken *t = arg;

	t->text = malloc(len + 1);
	assert_non_null(t->text);
	memcpy(t->text, text, len);
	t->text[len] = '\0';
	t->where = text;
	return 0;
}

/* What an entry renders now, as lv_open gives it: 0 or -errno. */
static int render_rc(struct lv_node *v, struct taken *t)
{
	int rc = lv_open(lv, v, take, t);

	if (rc == 0)
		lv_release(lv, v);
	return rc;
}

static char *render(struct lv_node *v)
{
	struct taken t = { 0 };

	assert_int_equal(render_rc(v, &t), 0);
	return t.text;
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

static int collect(void *arg, const char *name, const struct stat *st, uint64_t next)
{
	struct names *c = arg;

	(void)next;
	assert_true(c->n < 8);
	snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
	c->ino[c->n++] = st->st_ino;
	return 0;
}

static void test_which_segments_show(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *lst, *d;
	struct lv_node *v;
	uint8_t zeros[100] = { 0 }, junk[40];
	struct lv_dirh *dh;
	struct names c = { .n = 0 };
	struct stat st;

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	put(ns, "plain", zeros, sizeof(zeros));   /* zero-filled: not a list */
	put(ns, "empty16", zeros, 16);            /* CPython's [] */
	put(ns, "junk", junk, sizeof(junk));
	lst = put_list(ns, "lst", "1\n'a'\n");
	assert_int_equal(seg_mkdir(ns, root, "d", 0755, WHO(0, 0, 0), &d, &st), 0);
	assert_int_equal(lv_lookup(lv, "plain", &v, &st), -ENOENT);
	assert_int_equal(lv_lookup(lv, "junk", &v, &st), -ENOENT);
	assert_int_equal(lv_lookup(lv, "d", &v, &st), -ENOENT);
	assert_int_equal(lv_lookup(lv, "nope", &v, &st), -ENOENT);
	assert_int_equal(lv_node_count(lv), 0);      /* none kept for a miss */
	assert_int_equal(lv_lookup(lv, "empty16", &v, &st), 0);
	assert_int_equal(st.st_size, 0);
	lv_forget(lv, v, 1);
	assert_int_equal(lv_lookup(lv, "lst", &v, &st), 0);
	assert_int_equal(st.st_size, 6);             /* "1\n'a'\n" */
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	lv_forget(lv, v, 1);
	/* readdir: the listed segments in the root's order, entries' numbers. */
	assert_int_equal(lv_opendir(lv, &dh), 0);
	assert_int_equal(lv_readdir(lv, dh, 2, collect, &c), 0);
	lv_releasedir(lv, dh);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.name[0], "empty16");
	assert_string_equal(c.name[1], "lst");
	assert_int_equal(seg_getattr(ns, lst, &st), 0);
	assert_int_equal(c.ino[1], st.st_ino | VIEW_BIT);
	done(ns);
}

/* A fill that takes `room` entries per call, recording names and offsets. */
struct some {
	char name[64][16];
	uint64_t next[64];
	int n, room;
};

static int collect_some(void *arg, const char *name, const struct stat *st, uint64_t next)
{
	struct some *c = arg;

	assert_true(st->st_ino != 0);
	if (c->room == 0 || c->n == 64)
		return 1;
	c->room--;
	snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
	c->next[c->n++] = next;
	return 0;
}

/* More root entries than readdir reads at a time, resumed, and seeks. */
static void test_readdir_batches(void **state)
{
	struct seg_ns *ns = new_ns();
	uint8_t zeros[100] = { 0 };
	struct lv_dirh *dh;
	struct some c = { .n = 0 };
	char name[16];
	uint64_t off = 0;
	int before;

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		if (i % 3 == 0)
			put_list(ns, name, "1\n");
		else
			put(ns, name, zeros, sizeof(zeros));
	}
	assert_int_equal(lv_opendir(lv, &dh), 0);
	/* Five at a time, each call resuming at the offset of the last taken. */
	do {
		before = c.n;
		c.room = 5;
		assert_int_equal(lv_readdir(lv, dh, off, collect_some, &c), 0);
		if (c.n > before)
			off = c.next[c.n - 1];
	} while (c.n > before);
	assert_int_equal(c.n, 2 + 34);
	assert_string_equal(c.name[0], ".");
	assert_string_equal(c.name[1], "..");
	for (int i = 0; i < 34; i++) {
		snprintf(name, sizeof(name), "n%02d", 3 * i);
		assert_string_equal(c.name[2 + i], name);
	}
	/* A seek back to the middle lists the rest again, in order. */
	{
		struct some again = { .n = 0, .room = 64 };

		assert_int_equal(lv_readdir(lv, dh, c.next[2 + 19], collect_some, &again), 0);
		assert_int_equal(again.n, 34 - 20);
		assert_string_equal(again.name[0], "n60");
	}
	lv_releasedir(lv, dh);
	done(ns);
}

static void test_view_lifetime(void **state)
{
	struct seg_ns *ns = new_ns();
	struct lv_node *v, *v2;
	struct taken t = { 0 };
	struct stat st;

	(void)state;
	put_list(ns, "a", "1\n");
	assert_int_equal(lv_lookup(lv, "a", &v, &st), 0);
	assert_int_equal(lv_lookup(lv, "a", &v2, &st), 0);
	assert_ptr_equal(v, v2);                     /* one entry per name */
	assert_int_equal(lv_node_count(lv), 1);
	assert_int_equal(lv_open(lv, v, NULL, NULL), 0);
	lv_forget(lv, v, 2);
	assert_int_equal(lv_node_count(lv), 1);      /* still open */
	lv_release(lv, v);
	assert_int_equal(lv_node_count(lv), 0);
	/* An entry of a name that lost its list answers ENOENT. */
	assert_int_equal(lv_lookup(lv, "a", &v, &st), 0);
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "a"), 0);
	assert_int_equal(lv_getattr(lv, v, &st), -ENOENT);
	assert_int_equal(render_rc(v, &t), -ENOENT);
	lv_forget(lv, v, 1);
	done(ns);
}

static void test_create_through_lists(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *seg;
	struct lv_node *v;
	uint8_t data[8] = "precious";
	struct stat st;
	bool created;
	size_t len;
	uint8_t *got;

	(void)state;
	assert_int_equal(lv_create(lv, "n", 0600, WHO(3, 4, 0), SEG_CREATE_EXCL,
				   &v, &st, &created), 0);
	assert_true(created);
	assert_int_equal(st.st_size, 0);             /* the empty list's text */
	lv_forget(lv, v, 1);
	assert_int_equal(seg_lookup(ns, root, "n", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	assert_int_equal(st.st_size, 16);
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(st.st_nlink, 1);
	got = contents(ns, seg, &len);
	assert_memory_equal(got, (uint8_t[16]){ 0 }, 16);
	free(got);
	/* Again, exclusively: EEXIST; not exclusively: the same list. */
	assert_int_equal(lv_create(lv, "n", 0600, WHO(0, 0, 0), SEG_CREATE_EXCL,
				   &v, &st, &created), -EEXIST);
	assert_int_equal(lv_create(lv, "n", 0600, WHO(0, 0, 0), 0, &v, &st, &created), 0);
	assert_false(created);
	lv_forget(lv, v, 1);
	/* A segment that holds no list is not turned into one. */
	put(ns, "data", data, sizeof(data));
	assert_int_equal(lv_create(lv, "data", 0600, WHO(0, 0, 0), 0, &v, &st, &created),
			 -EEXIST);
	assert_int_equal(seg_mkdir(ns, root, "dir", 0700, WHO(0, 0, 0), &seg, &st), 0);
	assert_int_equal(lv_create(lv, "dir", 0600, WHO(0, 0, 0), 0, &v, &st, &created),
			 -EISDIR);
	/* Bad names, as everywhere. */
	assert_int_equal(lv_create(lv, "a/b", 0600, WHO(0, 0, 0), 0, &v, &st, &created),
			 -EINVAL);
	done(ns);
}

static void test_store_in_place(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *seg, *now;
	struct lv_node *v;
	struct lv_effect eff;
	struct sl_list *l = parse("-5\n'xyz'\nNone\n");
	struct stat st;
	uint8_t *got;
	size_t len;
	char *text;

	(void)state;
	seg = put_list(ns, "p", "1\n'abc'\n2.5\n");
	assert_int_equal(lv_lookup(lv, "p", &v, &st), 0);
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), 0);
	assert_ptr_equal(eff.in_place, seg);
	assert_false(eff.replaced);
	assert_string_equal(lv_node_name(v), "p");
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "p", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_equal(now, seg);                  /* the same segment */
	text = render(v);
	assert_string_equal(text, "-5\n'xyz'\nNone\n");
	free(text);
	/* The bytes are what CPython's sl[i] = v leaves: assign the same. */
	got = contents(ns, seg, &len);
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
	lv_forget(lv, v, 1);
	done(ns);
}

static void test_store_replaces(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *seg, *now;
	struct lv_node *v;
	struct lv_effect eff;
	struct sl_list *l = parse("'a string longer than its slot'\n");
	struct stat st;
	uint8_t *before, *after;
	size_t blen, alen;
	int backing;

	(void)state;
	seg = put_list(ns, "r", "'short'\n");
	before = contents(ns, seg, &blen);
	assert_int_equal(open_with(ns, seg, O_RDONLY, NULL, NULL, &backing), 0);
	assert_int_equal(lv_lookup(lv, "r", &v, &st), 0);
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), 0);
	assert_true(eff.replaced);
	assert_null(eff.in_place);
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "r", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_not_equal(now, seg);
	assert_int_equal(st.st_mode, S_IFREG | 0640);   /* the old one's */
	assert_int_equal(st.st_uid, 7);
	/* The holder of the old segment keeps its old list, whole. */
	after = contents(ns, seg, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	assert_int_equal(seg_getattr(ns, seg, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	seg_release(ns, seg);
	free(before);
	free(after);
	/* A name that lost its segment gets a new one, with the given owner. */
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "r"), 0);
	assert_int_equal(lv_store(lv, v, l, 0604, WHO(11, 12, 0), &eff), 0);
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "r", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_int_equal(st.st_mode, S_IFREG | 0604);
	assert_int_equal(st.st_uid, 11);
	sl_list_free(l);
	lv_forget(lv, v, 1);
	done(ns);
}

static void test_store_refusals(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *seg, *d;
	struct lv_node *v;
	struct lv_effect eff;
	struct sl_list *l = parse("1\n");
	uint8_t data[24], *got;
	struct stat st;
	size_t len;

	(void)state;
	memset(data, 0xab, sizeof(data));
	put_list(ns, "x", "1\n");
	assert_int_equal(lv_lookup(lv, "x", &v, &st), 0);
	/* The name now holds a segment that is not a list: not overwritten. */
	assert_int_equal(seg_unlink(ns, root, "x"), 0);
	seg = put(ns, "x", data, sizeof(data));
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), -EEXIST);
	got = contents(ns, seg, &len);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	free(got);
	/* Or a directory. */
	assert_int_equal(seg_unlink(ns, root, "x"), 0);
	assert_int_equal(seg_mkdir(ns, root, "x", 0700, WHO(0, 0, 0), &d, &st), 0);
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), -EISDIR);
	lv_forget(lv, v, 1);
	sl_list_free(l);
	done(ns);
}

static void test_unlink_and_rename_through_lists(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *seg;
	uint8_t data[8] = "keepthis";
	struct stat st;

	(void)state;
	put_list(ns, "a", "1\n");
	put_list(ns, "b", "2\n");
	put(ns, "plain", data, sizeof(data));
	assert_int_equal(lv_rename(lv, "a", "c", 0), 0);
	assert_int_equal(seg_lookup(ns, root, "a", &seg, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, root, "c", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	/* What lists/ does not show is not there to replace or to move. */
	assert_int_equal(lv_rename(lv, "c", "plain", 0), -EEXIST);
	assert_int_equal(lv_rename(lv, "plain", "q", 0), -ENOENT);
	assert_int_equal(lv_unlink(lv, "plain"), -ENOENT);
	assert_int_equal(lv_rename(lv, "c", "b", SEG_RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(lv_rename(lv, "c", "b", 0), 0);
	assert_int_equal(lv_unlink(lv, "b"), 0);
	assert_int_equal(seg_lookup(ns, root, "b", &seg, &st), -ENOENT);
	assert_int_equal(seg_lookup(ns, root, "plain", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	done(ns);
}

struct synced {
	const struct seg_inode *seg[8];
	int n;
	struct seg_ns *ns;
};

static void record_sync(void *arg, struct seg_inode *seg)
{
	struct synced *s = arg;

	assert_true(s->n < 8);
	s->seg[s->n++] = seg;
	/* Called without the lock: this takes it, and would hang if held. */
	assert_true(seg_ns_inode_count(s->ns) > 0);
}

/*
 * The sync hook runs before the view reads a segment, for open segments
 * only, unlocked, and the reference it runs under keeps the segment alive.
 */
static void test_sync_hook(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *b;
	struct synced s = { .ns = ns };
	struct lv_node *v;
	struct lv_dirh *dh;
	struct names c = { .n = 0 };
	struct stat st;
	int backing;

	(void)state;
	put_list(ns, "a", "1\n");
	b = put_list(ns, "b", "2\n");
	assert_int_equal(open_with(ns, b, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(lv_lookup(lv, "b", &v, &st), 0);   /* no hook yet: nothing */
	lv_forget(lv, v, 1);
	lv_set_sync(lv, record_sync, &s);
	assert_int_equal(lv_opendir(lv, &dh), 0);
	assert_int_equal(lv_readdir(lv, dh, 2, collect, &c), 0);
	lv_releasedir(lv, dh);
	assert_int_equal(c.n, 2);
	assert_int_equal(s.n, 1);
	assert_ptr_equal(s.seg[0], b);        /* a is not open */
	s.n = 0;
	assert_int_equal(lv_lookup(lv, "a", &v, &st), 0);
	lv_forget(lv, v, 1);
	assert_int_equal(s.n, 0);
	assert_int_equal(lv_lookup(lv, "b", &v, &st), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(lv_getattr(lv, v, &st), 0);
	assert_int_equal(s.n, 2);
	/* The open segment lives through an unlink, and goes after. */
	assert_int_equal(seg_unlink(ns, seg_ns_root(ns), "b"), 0);
	assert_int_equal(seg_ns_inode_count(ns), 4);   /* root, lists/, a, b */
	seg_release(ns, b);
	assert_int_equal(seg_ns_inode_count(ns), 3);
	lv_forget(lv, v, 1);
	done(ns);
}

/*
 * lv_holds_list: the rule of lists/, for segments anywhere; the sync hook
 * runs first for open segments only; what is not a segment is refused; an
 * allocation failure is an error, not a "no".
 */
static void test_holds_list(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *d, *sub;
	uint8_t zeros[100] = { 0 }, junk[40] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct synced s = { .ns = ns };
	struct stat st;
	bool yes, created;
	int backing;
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
		assert_int_equal(lv_holds_list(lv, cases[i].seg, &yes), 0);
		assert_int_equal(yes, cases[i].list);
	}
	/* A segment outside the root holds a list too, though lists/ shows none. */
	assert_int_equal(seg_mkdir(ns, root, "d", 0755, WHO(0, 0, 0), &d, &st), 0);
	assert_int_equal(seg_create(ns, d, "sub", 0600, WHO(0, 0, 0), 0, &sub, &st, &created), 0);
	assert_int_equal(open_with(ns, sub, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(pwrite(seg_inode_fd(sub), zeros, 16, 0), 16);
	seg_release(ns, sub);
	assert_int_equal(lv_holds_list(lv, sub, &yes), 0);
	assert_true(yes);
	/* Not segments. */
	assert_int_equal(lv_holds_list(lv, d, &yes), -EINVAL);
	assert_int_equal(lv_holds_list(lv, root, &yes), -EINVAL);
	assert_int_equal(lv_holds_list(lv, lv_dir(lv), &yes), -EINVAL);
	/* The hook: for the open segment, not for the closed one. */
	lv_set_sync(lv, record_sync, &s);
	assert_int_equal(open_with(ns, sub, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(lv_holds_list(lv, sub, &yes), 0);
	assert_int_equal(lv_holds_list(lv, cases[4].seg, &yes), 0);
	assert_int_equal(s.n, 1);
	assert_ptr_equal(s.seg[0], sub);
	seg_release(ns, sub);
	/* Out of memory for the snapshot: an error, and *yes is left alone. */
	seg_alloc_fail_after(0);
	yes = false;
	assert_int_equal(lv_holds_list(lv, cases[4].seg, &yes), -ENOMEM);
	seg_alloc_fail_reset();
	assert_false(yes);
	seg_forget(ns, sub, 1);
	done(ns);
}

/*
 * The creator and birth of segments made through lists/: a create there
 * records its pid; a store that replaces the segment keeps the old one's,
 * like its owner; one that finds no segment records none.
 */
static void test_lists_creator(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *seg, *now;
	struct sl_list *l = parse("'a string longer than the empty list'\n");
	struct lv_node *v;
	struct lv_effect eff;
	struct seg_info was, info;
	struct stat st;
	bool created;

	(void)state;
	assert_int_equal(lv_create(lv, "n", 0600, WHO(0, 0, 31337), SEG_CREATE_EXCL,
				   &v, &st, &created), 0);
	assert_int_equal(seg_lookup(ns, root, "n", &seg, &st), 0);
	seg_forget(ns, seg, 1);
	assert_int_equal(seg_inspect(ns, seg, &was), 0);
	assert_int_equal(was.pid, 31337);
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), 0);
	assert_true(eff.replaced);
	assert_int_equal(seg_lookup(ns, root, "n", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_ptr_not_equal(now, seg);
	assert_int_equal(seg_inspect(ns, now, &info), 0);
	assert_int_equal(info.pid, 31337);
	assert_int_equal(info.btime.tv_sec, was.btime.tv_sec);
	assert_int_equal(info.btime.tv_nsec, was.btime.tv_nsec);
	assert_int_equal(seg_unlink(ns, root, "n"), 0);
	assert_int_equal(lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff), 0);
	assert_int_equal(seg_lookup(ns, root, "n", &now, &st), 0);
	seg_forget(ns, now, 1);
	assert_int_equal(seg_inspect(ns, now, &info), 0);
	assert_int_equal(info.pid, 0);
	sl_list_free(l);
	lv_forget(lv, v, 1);
	done(ns);
}

/* An attach callback that installs the sync hook, as server/ does on EPERM. */
static int attach_installs_sync(void *arg, int memfd, bool privs)
{
	(void)privs;
	(void)arg;
	(void)memfd;
	lv_set_sync(lv, record_sync, NULL);
	return 0;
}

/* Installing the sync hook from inside seg_open's callback does not deadlock. */
static void test_set_sync_in_attach(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *a;
	int backing;

	(void)state;
	a = put_list(ns, "a", "1\n");
	assert_int_equal(open_with(ns, a, O_RDWR, attach_installs_sync, NULL, &backing), 0);
	seg_release(ns, a);
	done(ns);
}

/*
 * One `cat lists/x` (LOOKUP, GETATTR, OPEN) renders once: later requests
 * reuse the text while the bytes are the same.  Bytes written behind the
 * namespace's back (a mapping) are seen all the same; and what the
 * namespace's hook reports (the name now leads elsewhere, the size was
 * set) makes the view render again even where the bytes look the same.
 */
static void test_render_once_and_hook(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *x;
	struct lv_node *v;
	struct taken t[6] = { { 0 } };
	struct stat st, attr;
	int64_t one = 1, seven = 7;
	int backing;

	(void)state;
	x = put_list(ns, "x", "1\n");
	assert_int_equal(lv_lookup(lv, "x", &v, &st), 0);
	assert_int_equal(lv_getattr(lv, v, &st), 0);
	assert_int_equal(render_rc(v, &t[0]), 0);
	assert_int_equal(render_rc(v, &t[1]), 0);
	assert_ptr_equal(t[0].where, t[1].where);    /* rendered once */
	assert_string_equal(t[1].text, "1\n");
	/* A write the namespace never sees: item 0's value is at 8 * (n + 2). */
	assert_int_equal(open_with(ns, x, O_RDWR, NULL, NULL, &backing), 0);
	assert_int_equal(pread(seg_inode_fd(x), &one, 8, 24), 8);
	assert_int_equal(one, 1);
	assert_int_equal(pwrite(seg_inode_fd(x), &seven, 8, 24), 8);
	seg_release(ns, x);
	assert_int_equal(render_rc(v, &t[2]), 0);
	assert_string_equal(t[2].text, "7\n");
	assert_int_equal(render_rc(v, &t[3]), 0);
	assert_ptr_equal(t[3].where, t[2].where);
	/*
	 * The name now leads to another segment with the very same bytes:
	 * only the hook can tell, and the view renders again.
	 */
	put_list(ns, "twin", "7\n");
	assert_int_equal(seg_rename(ns, root, "twin", root, "x", 0, NULL), 0);
	assert_int_equal(render_rc(v, &t[4]), 0);
	assert_string_equal(t[4].text, "7\n");
	assert_ptr_not_equal(t[4].where, t[3].where);
	/* A size the namespace set, to the same size: rendered again. */
	assert_int_equal(seg_lookup(ns, root, "x", &x, &st), 0);
	memset(&attr, 0, sizeof(attr));
	attr.st_size = st.st_size;
	assert_int_equal(seg_setattr(ns, x, &attr, SEG_SET_SIZE, &st), 0);
	seg_forget(ns, x, 1);
	assert_int_equal(render_rc(v, &t[5]), 0);
	assert_string_equal(t[5].text, "7\n");
	assert_ptr_not_equal(t[5].where, t[4].where);
	for (int i = 0; i < 6; i++)
		free(t[i].text);
	lv_forget(lv, v, 1);
	done(ns);
}

/* Lists whose segments lost their descriptors are read all the same. */
static void test_lists_after_eviction(void **state)
{
	struct seg_ns_config cfg = { .size_limit = 1 << 30, .fd_budget = 4 };
	struct seg_ns *ns = new_ns_with(&cfg);
	struct seg_inode *root = seg_ns_root(ns), *seg;
	struct lv_node *v;
	struct stat st;
	bool created;
	char name[16], *text;

	(void)state;
	/* Memfds cannot be evicted (the budget bounds the inodes instead). */
	if (seg_ns_backing(ns, NULL) == SEG_BACKING_MEMFD) {
		done(ns);
		skip();
	}
	assert_int_equal(lv_create(lv, "l", 0600, WHO(0, 0, 0), 0, &v, &st, &created), 0);
	lv_forget(lv, v, 1);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(seg_create(ns, root, name, 0600, WHO(0, 0, 0), 0, &seg, &st,
					    &created), 0);
		seg_forget(ns, seg, 1);
	}
	assert_int_equal(lv_lookup(lv, "l", &v, &st), 0);
	text = render(v);
	assert_string_equal(text, "");
	free(text);
	lv_forget(lv, v, 1);
	assert_int_equal(lv_unlink(lv, "l"), 0);
	done(ns);
}

/* Allocation failures while storing or creating change nothing. */
static void test_enomem(void **state)
{
	(void)state;
	for (int which = 0; which < 2; which++) {
		bool done_once = false;

		for (long n = 0; !done_once && n < 80; n++) {
			struct seg_ns *ns = new_ns();
			struct seg_inode *seg, *x;
			struct lv_node *v, *w;
			struct sl_list *l = parse("'this is longer than eight bytes'\n2\n");
			struct lv_effect eff;
			struct stat st;
			uint64_t count;
			uint8_t *before, *after;
			size_t blen, alen;
			bool created;
			int rc;

			seg = put_list(ns, "s", "1\n");
			before = contents(ns, seg, &blen);
			assert_int_equal(lv_lookup(lv, "s", &v, &st), 0);
			count = seg_ns_inode_count(ns);
			seg_alloc_fail_after(n);
			if (which == 0)
				rc = lv_store(lv, v, l, 0600, WHO(0, 0, 0), &eff);
			else
				rc = lv_create(lv, "new", 0600, WHO(0, 0, 0), 0, &w, &st, &created);
			seg_alloc_fail_reset();
			if (rc == 0) {
				done_once = true;
				if (which == 1)
					lv_forget(lv, w, 1);
			} else {
				assert_int_equal(rc, -ENOMEM);
				assert_int_equal(seg_ns_inode_count(ns), count);
				after = contents(ns, seg, &alen);
				assert_int_equal(alen, blen);
				assert_memory_equal(after, before, blen);
				free(after);
				assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "new", &x, &st),
						 -ENOENT);
			}
			lv_forget(lv, v, 1);
			free(before);
			sl_list_free(l);
			done(ns);
		}
		assert_true(done_once);
	}
	/* And lv_new itself. */
	for (long n = 0; n < 20; n++) {
		struct seg_ns_config cfg = { 0 };
		struct seg_ns *ns = NULL;
		struct lv *view = NULL;
		int rc;

		ns_new(&cfg, &ns);
		seg_alloc_fail_after(n);
		rc = lv_new(ns, "lists", &view);
		seg_alloc_fail_reset();
		if (rc == 0) {
			lv_free(view);
			ns_free(ns);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
		assert_null(view);
		assert_int_equal(seg_ns_inode_count(ns), 1);
		ns_free(ns);
	}
}

/*
 * Errors keep their cause: a list that cannot be read for lack of memory
 * is -ENOMEM from lookup, getattr, open and readdir alike, never a
 * missing entry (-ENOENT), and changes nothing.
 */
static void test_errors_keep_cause(void **state)
{
	struct seg_ns *ns = new_ns();
	struct lv_node *v;
	struct lv_dirh *dh;
	struct names c;
	struct stat st;
	struct taken t = { 0 };
	int seen_enomem = 0;

	(void)state;
	put_list(ns, "x", "1\n'two'\n3.5\n");
	for (long n = 0; n < 40; n++) {
		int rc;

		seg_alloc_fail_after(n);
		rc = lv_lookup(lv, "x", &v, &st);
		seg_alloc_fail_reset();
		assert_true(rc == 0 || rc == -ENOMEM);
		seen_enomem += rc == -ENOMEM;
		if (rc == 0) {
			lv_forget(lv, v, 1);
			break;
		}
		assert_int_equal(lv_node_count(lv), 0);
	}
	assert_true(seen_enomem > 0);
	assert_int_equal(lv_lookup(lv, "x", &v, &st), 0);
	/* A stale rendering must be made again: each failure is ENOMEM. */
	put_list(ns, "x2", "1\n");
	assert_int_equal(seg_rename(ns, seg_ns_root(ns), "x2", seg_ns_root(ns), "x", 0, NULL), 0);
	seg_alloc_fail_after(0);
	assert_int_equal(lv_getattr(lv, v, &st), -ENOMEM);
	assert_int_equal(render_rc(v, &t), -ENOMEM);
	seg_alloc_fail_reset();
	assert_int_equal(lv_opendir(lv, &dh), 0);
	seg_alloc_fail_after(0);
	c.n = 0;
	assert_int_equal(lv_readdir(lv, dh, 2, collect, &c), -ENOMEM);
	seg_alloc_fail_reset();
	assert_int_equal(c.n, 0);
	assert_int_equal(lv_readdir(lv, dh, 2, collect, &c), 0);
	assert_int_equal(c.n, 1);
	lv_releasedir(lv, dh);
	lv_forget(lv, v, 1);
	done(ns);
}

/* The directory's name is an option; a bad one is refused. */
static void test_lists_name_option(void **state)
{
	struct seg_ns_config cfg = { 0 };
	struct seg_ns *ns = NULL;
	struct seg_inode *d;
	struct lv *view = NULL;
	struct stat st;

	(void)state;
	ns_new(&cfg, &ns);
	assert_int_equal(lv_new(ns, "ShareableLists", &view), 0);
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "ShareableLists", &d, &st), 0);
	seg_forget(ns, d, 1);
	assert_ptr_equal(d, lv_dir(view));
	assert_int_equal(seg_lookup(ns, seg_ns_root(ns), "lists", &d, &st), -ENOENT);
	lv_free(view);
	view = NULL;
	assert_int_equal(lv_new(ns, "a/b", &view), -EINVAL);
	assert_null(view);
	ns_free(ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_segments_show),
		cmocka_unit_test(test_readdir_batches),
		cmocka_unit_test(test_view_lifetime),
		cmocka_unit_test(test_create_through_lists),
		cmocka_unit_test(test_store_in_place),
		cmocka_unit_test(test_store_replaces),
		cmocka_unit_test(test_store_refusals),
		cmocka_unit_test(test_unlink_and_rename_through_lists),
		cmocka_unit_test(test_sync_hook),
		cmocka_unit_test(test_set_sync_in_attach),
		cmocka_unit_test(test_holds_list),
		cmocka_unit_test(test_lists_creator),
		cmocka_unit_test(test_render_once_and_hook),
		cmocka_unit_test(test_lists_after_eviction),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_errors_keep_cause),
		cmocka_unit_test(test_lists_name_option),
	};

	int failed = cmocka_run_group_tests_name("tmpfs", tests, NULL, NULL);
	struct keep probe;

	/* Keeping needs a state tmpfs, which only a privileged process makes. */
	if (keep_new(&probe)) {
		keep_free(&probe);
		keep_run = true;
		failed += cmocka_run_group_tests_name("tmpfs, kept for a next server", tests,
						      NULL, NULL);
	}
	return failed;
}
