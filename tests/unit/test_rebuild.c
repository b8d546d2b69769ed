/*
 * Unit tests of core/ns_rebuild.c: a namespace rebuilt from what its
 * server kept (the tree, the records, pinned files: keep.h) is the one
 * that server left: every name, node, link, attribute, time, extended
 * attribute, byte and count; the inodes that only references or open
 * handles hold; inode numbers.  A "crash" here is seg_ns_free: whatever
 * the process held in memory is gone, and nothing was cleaned up.
 *
 * The region's own crash consistency (a change half done when the
 * process dies) is tested with real deaths: a child killed at random.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/ns.h"
#include "core/region.h"
#include "core/xattr.h"
#include "aclexample.h"
#include "keep.h"

#define WHO(u, g, p) (&(struct seg_cred){ .uid = (u), .gid = (g), .pid = (p) })

static struct keep keep;
static bool kept;   /* the process may make a state tmpfs (not under valgrind 3.19) */
/* The data tmpfs, as the supervisor keeps it for the next server. */
static int data_tmpfs = -1;

static int setup(void **state)
{
	(void)state;
	kept = keep_new(&keep);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (kept)
		keep_free(&keep);
	kept = false;
	if (data_tmpfs >= 0)
		close(data_tmpfs);
	data_tmpfs = -1;
	return 0;
}

static struct seg_ns_config config(void)
{
	struct seg_ns_config cfg = { .size_limit = 1 << 30 };

	keep_apply(&keep, &cfg);
	return cfg;
}

static struct seg_ns *new_ns(void)
{
	struct seg_ns_config cfg = config();
	struct seg_ns *ns = NULL;

	if (!kept)
		skip();
	assert_int_equal(seg_ns_new(&cfg, &ns), 0);
	data_tmpfs = dup(seg_ns_tmpfs(ns));
	assert_true(data_tmpfs >= 0);
	return ns;
}

/* What a new server makes: the namespace the last one kept. */
static struct seg_ns *restart(struct seg_ns *old)
{
	struct seg_ns_config cfg;
	struct seg_ns *ns = NULL;

	seg_ns_free(old);
	assert_int_equal(keep_restart(&keep), 0);
	cfg = config();
	cfg.tmpfs = dup(data_tmpfs);
	assert_int_equal(seg_ns_rebuild(&cfg, &ns), 0);
	return ns;
}

/* ---- a dump of everything a client can see ------------------------------ */

struct entry {
	char name[256];
	struct seg_inode *ino;
};

struct listing {
	struct entry *e;
	size_t n, cap;
};

static int collect(void *arg, const char *name, struct seg_inode *ino, const struct stat *st,
		   uint64_t next)
{
	struct listing *l = arg;

	(void)st;
	(void)next;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
		assert_non_null(l->e);
	}
	snprintf(l->e[l->n].name, sizeof(l->e[l->n].name), "%s", name);
	l->e[l->n++].ino = ino;
	return 0;
}

static void dump_inode(struct seg_ns *ns, struct seg_inode *ino, FILE *out)
{
	char names[4096], value[4096], target[64], data[32] = "";
	struct seg_info info;
	struct stat st;
	size_t len, vlen;

	/*
	 * The bytes first: reading a segment may move its atime (relatime),
	 * once; the attributes are shown as they are after.
	 */
	assert_int_equal(seg_getattr(ns, ino, &st), 0);
	if (S_ISREG(st.st_mode)) {
		uint64_t h = 1469598103934665603ULL;
		char *buf = malloc((size_t)st.st_size + 1);
		size_t got = 0;

		assert_non_null(buf);
		assert_int_equal(seg_pread(ns, ino, buf, (size_t)st.st_size, 0, &got), 0);
		assert_int_equal(got, (size_t)st.st_size);
		for (size_t i = 0; i < got; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
		snprintf(data, sizeof(data), " data=%016llx", (unsigned long long)h);
		free(buf);
	}
	assert_int_equal(seg_getattr(ns, ino, &st), 0);
	fprintf(out, " ino=%llu mode=%o nlink=%lu uid=%u gid=%u size=%lld blocks=%lld rdev=%u:%u",
		(unsigned long long)st.st_ino, st.st_mode, (unsigned long)st.st_nlink, st.st_uid,
		st.st_gid, (long long)st.st_size, (long long)st.st_blocks, major(st.st_rdev),
		minor(st.st_rdev));
	fprintf(out, " a=%lld.%09ld m=%lld.%09ld c=%lld.%09ld b=%lld.%09ld",
		(long long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec,
		st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
		(long long)seg_inode_btime(ino).tv_sec, seg_inode_btime(ino).tv_nsec);
	if (seg_get_flags(ns, ino, &(unsigned){ 0 }) == 0) {
		unsigned flags;

		seg_get_flags(ns, ino, &flags);
		fprintf(out, " flags=%x", flags);
	}
	assert_int_equal(seg_inspect(ns, ino, &info), 0);
	fprintf(out, " pid=%d nopen=%u", info.pid, info.nopen);
	if (S_ISLNK(st.st_mode)) {
		snprintf(target, sizeof(target), "%.40s", seg_inode_target(ino));
		fprintf(out, " -> %s(%zu)", target, strlen(seg_inode_target(ino)));
	}
	assert_int_equal(seg_listxattr(ns, ino, names, sizeof(names), &len, NULL, NULL), 0);
	/* In a set's order: the tmpfs lists a restarted server's its own way. */
	for (size_t off = 0; off < len; off += strlen(names + off) + 1) {
		assert_int_equal(seg_getxattr(ns, ino, names + off, value, sizeof(value), &vlen), 0);
		fprintf(out, " [%s=", names + off);
		for (size_t i = 0; i < vlen; i++)
			fprintf(out, "%02x", (unsigned char)value[i]);
		fprintf(out, "]");
	}
	fprintf(out, "%s\n", data);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void dump_dir(struct seg_ns *ns, struct seg_inode *dir, const char *path, FILE *out)
{
	struct listing l = { 0 };
	struct seg_dirh *dh;

	assert_int_equal(seg_opendir(ns, dir, &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &l), 0);
	seg_releasedir(ns, dh);
	qsort(l.e, l.n, sizeof(*l.e), by_name);
	for (size_t i = 0; i < l.n; i++) {
		char sub[1024];

		snprintf(sub, sizeof(sub), "%s/%s", path, l.e[i].name);
		fprintf(out, "%s", sub);
		dump_inode(ns, l.e[i].ino, out);
		if (seg_inode_is_dir(l.e[i].ino))
			dump_dir(ns, l.e[i].ino, sub, out);
	}
	free(l.e);
}

/* Everything, and the inodes numbered in `extra` (nameless ones), as text. */
static char *dump(struct seg_ns *ns, const uint64_t *extra, size_t nextra)
{
	struct seg_ns_stats s;
	struct statvfs sv;
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	assert_non_null(out);
	fprintf(out, "/");
	dump_inode(ns, seg_ns_root(ns), out);
	dump_dir(ns, seg_ns_root(ns), "", out);
	for (size_t i = 0; i < nextra; i++) {
		struct seg_inode *ino = seg_ns_find(ns, extra[i]);

		fprintf(out, "#%llu", (unsigned long long)extra[i]);
		if (ino == NULL)
			fprintf(out, " gone\n");
		else
			dump_inode(ns, ino, out);
	}
	assert_int_equal(seg_ns_stats(ns, &s), 0);
	assert_int_equal(seg_statfs(ns, &sv), 0);
	fprintf(out, "segments=%llu unlinked=%llu open=%llu bytes=%llu inodes=%llu "
		"reserved=%llu ffree=%llu bfree=%llu\n",
		(unsigned long long)s.segments, (unsigned long long)s.unlinked,
		(unsigned long long)s.open, (unsigned long long)s.bytes,
		(unsigned long long)s.inodes, (unsigned long long)s.reserved,
		(unsigned long long)sv.f_ffree, (unsigned long long)sv.f_bfree);
	fclose(out);
	return text;
}

/*
 * The two dumps are the same; where they are not, both are left in
 * $TMPDIR (or /tmp) as rebuild-before.txt and rebuild-after.txt.
 */
static void same(const char *before, const char *after)
{
	const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	char path[512];
	FILE *f;

	if (strcmp(before, after) == 0)
		return;
	snprintf(path, sizeof(path), "%s/rebuild-before.txt", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs(before, f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/rebuild-after.txt", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs(after, f);
		fclose(f);
	}
	fail_msg("the namespace changed across the restart: see %s/rebuild-*.txt", dir);
}

/* ---- the tests ------------------------------------------------------------ */

static struct seg_inode *mk(struct seg_ns *ns, struct seg_inode *dir, const char *name,
			    mode_t mode, const struct seg_cred *who)
{
	struct seg_inode *ino = NULL;
	struct stat st;
	bool created;

	assert_int_equal(seg_create(ns, dir, name, mode, who, SEG_CREATE_EXCL, &ino, &st,
				    &created), 0);
	return ino;
}

static void resize(struct seg_ns *ns, struct seg_inode *ino, off_t size)
{
	struct stat in = { .st_size = size }, st;

	assert_int_equal(seg_setattr(ns, ino, &in, SEG_SET_SIZE, &st), 0);
}

static void put(struct seg_ns *ns, struct seg_inode *ino, const char *text, off_t off)
{
	assert_int_equal(seg_pwrite(ns, ino, text, strlen(text), off), 0);
}

/*
 * Every kind of state, then a restart: the dump is the same, and so are
 * the counts the kernel relies on.
 */
static void test_everything_survives(void **state)
{
	static const char fcap[20] = { 0, 0, 0, 2, 0, 4, 0, 0 };
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *d, *sub, *a, *b, *x, *tmp, *gone, *held;
	struct stat st, in = { 0 };
	char long_target[300];
	uint64_t extra[3];
	char *before, *after;
	int backing;

	(void)state;
	assert_int_equal(seg_mkdir(ns, root, "d", 02775, WHO(1000, 50, 0), &d, &st), 0);
	assert_int_equal(seg_mkdir(ns, d, "sub", 0700, WHO(1000, 100, 0), &sub, &st), 0);
	assert_int_equal(seg_set_acl(ns, d, true, acl_example, sizeof acl_example, false), 0);
	a = mk(ns, root, "a", 0640, WHO(1000, 100, 4242));
	resize(ns, a, 10000);
	put(ns, a, "hello, restart", 100);
	b = mk(ns, d, "b", 0600, WHO(1001, 100, 7));   /* takes d's group and ACL */
	resize(ns, b, 3 * 4096 + 5);
	put(ns, b, "second", 4096);
	assert_int_equal(seg_link(ns, a, sub, "a-again", &st), 0);
	assert_int_equal(seg_symlink(ns, root, "short", "a", WHO(1000, 100, 0), &x, &st), 0);
	memset(long_target, 'x', sizeof(long_target) - 1);
	long_target[sizeof(long_target) - 1] = '\0';
	assert_int_equal(seg_symlink(ns, sub, "long", long_target, WHO(0, 0, 0), &x, &st), 0);
	assert_int_equal(seg_mknod(ns, root, "fifo", S_IFIFO | 0620, 0, WHO(5, 6, 0), &x, &st), 0);
	assert_int_equal(seg_mknod(ns, root, "sock", S_IFSOCK | 0777, 0, WHO(5, 6, 0), &x, &st), 0);
	assert_int_equal(seg_mknod(ns, d, "null", S_IFCHR | 0666, makedev(1, 3), WHO(0, 0, 0),
				   &x, &st), 0);
	assert_int_equal(seg_mknod(ns, d, "blk", S_IFBLK | 0600, makedev(8, 1), WHO(0, 0, 0),
				   &x, &st), 0);
	assert_int_equal(seg_link(ns, x, root, "blk-link", &st), 0);
	/* A whiteout left by a rename. */
	mk(ns, root, "moved", 0600, WHO(0, 0, 0));
	assert_int_equal(seg_rename(ns, root, "moved", sub, "moved-here",
				    SEG_RENAME_WHITEOUT, WHO(0, 0, 0)), 0);
	/* Attributes, flags, times. */
	assert_int_equal(seg_setxattr(ns, a, "user.note", "kept", 4, 0), 0);
	assert_int_equal(seg_setxattr(ns, a, "trusted.t", "", 0, 0), 0);
	assert_int_equal(seg_setxattr(ns, a, "security.capability", fcap, sizeof(fcap), 0), 0);
	assert_int_equal(seg_setxattr(ns, d, "user.dir", "x", 1, 0), 0);
	assert_int_equal(seg_set_acl(ns, a, false, acl_example, sizeof acl_example, false), 0);
	assert_int_equal(seg_set_flags(ns, b, SEG_FL_APPEND | SEG_FL_NODUMP), 0);
	in.st_atim = (struct timespec){ .tv_sec = 1000000000, .tv_nsec = 1 };
	in.st_mtim = (struct timespec){ .tv_sec = 1200000000, .tv_nsec = 999999999 };
	assert_int_equal(seg_setattr(ns, sub, &in, SEG_SET_ATIME | SEG_SET_MTIME, &st), 0);
	assert_int_equal(seg_setattr(ns, a, &in, SEG_SET_MTIME, &st), 0);
	in.st_mode = 04750;
	in.st_uid = 33;
	assert_int_equal(seg_setattr(ns, x, &in, SEG_SET_MODE | SEG_SET_UID, &st), 0);
	/* A segment open after its last name went; an O_TMPFILE; a removed dir held. */
	held = mk(ns, root, "held", 0600, WHO(0, 0, 0));
	resize(ns, held, 8192);
	put(ns, held, "still here", 0);
	assert_int_equal(seg_open(ns, held, O_RDWR, &backing), 0);
	assert_int_equal(seg_unlink(ns, root, "held"), 0);
	assert_int_equal(seg_tmpfile(ns, d, 0600, WHO(1000, 100, 0), &tmp, &st), 0);
	assert_int_equal(seg_open(ns, tmp, O_RDWR, &backing), 0);
	resize(ns, tmp, 100);
	assert_int_equal(seg_mkdir(ns, root, "rm", 0755, WHO(0, 0, 0), &gone, &st), 0);
	assert_int_equal(seg_rmdir(ns, root, "rm"), 0);
	extra[0] = seg_inode_number(held);
	extra[1] = seg_inode_number(tmp);
	extra[2] = seg_inode_number(gone);

	before = dump(ns, extra, 3);
	ns = restart(ns);
	after = dump(ns, extra, 3);
	same(before, after);
	free(before);
	free(after);

	/* The same numbers, and the counts: the last forget frees each. */
	root = seg_ns_root(ns);
	held = seg_ns_find(ns, extra[0]);
	tmp = seg_ns_find(ns, extra[1]);
	gone = seg_ns_find(ns, extra[2]);
	assert_non_null(held);
	assert_non_null(tmp);
	assert_non_null(gone);
	seg_release(ns, held);
	assert_non_null(seg_ns_find(ns, extra[0]));   /* the create's reference */
	seg_forget(ns, held, 1);
	assert_null(seg_ns_find(ns, extra[0]));
	/* The O_TMPFILE can still be named, then forgotten and closed. */
	assert_int_equal(seg_link(ns, tmp, root, "named-later", &st), 0);
	seg_forget(ns, tmp, 2);
	seg_release(ns, tmp);
	assert_int_equal(seg_lookup(ns, root, "named-later", &tmp, &st), 0);
	assert_int_equal(st.st_size, 100);
	seg_forget(ns, tmp, 1);
	seg_forget(ns, gone, 1);
	assert_null(seg_ns_find(ns, extra[2]));
	/* And it goes on: a second restart sees the changes made after the first. */
	before = dump(ns, NULL, 0);
	ns = restart(ns);
	after = dump(ns, NULL, 0);
	same(before, after);
	free(before);
	free(after);
	seg_ns_free(ns);
}

/*
 * What nothing holds goes at a restart: an unlinked segment nobody has
 * open, whatever references the kernel was said to hold (its FORGET may
 * have died with the server), and its pages with it.
 */
static void test_unheld_freed(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *a, *b;
	struct statvfs sv0, sv;
	uint64_t na;
	struct stat st;

	(void)state;
	assert_int_equal(seg_statfs(ns, &sv0), 0);
	a = mk(ns, root, "a", 0600, WHO(0, 0, 0));
	resize(ns, a, 1 << 20);
	b = mk(ns, root, "b", 0600, WHO(0, 0, 0));
	resize(ns, b, 1 << 20);
	na = seg_inode_number(a);
	/* The kernel holds a (one reference), and b twice. */
	assert_int_equal(seg_lookup(ns, root, "b", &b, &st), 0);
	assert_int_equal(seg_unlink(ns, root, "a"), 0);
	assert_non_null(seg_ns_find(ns, na));
	ns = restart(ns);
	root = seg_ns_root(ns);
	assert_null(seg_ns_find(ns, na));
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv0.f_bfree - sv.f_bfree, 256);   /* b's megabyte only */
	/* b kept both references: two forgets after its unlink free it. */
	assert_int_equal(seg_lookup(ns, root, "b", &b, &st), 0);
	seg_forget(ns, b, 1);
	assert_int_equal(seg_unlink(ns, root, "b"), 0);
	seg_forget(ns, b, 1);
	assert_non_null(seg_ns_find(ns, st.st_ino));
	seg_forget(ns, b, 1);
	assert_null(seg_ns_find(ns, st.st_ino));
	assert_int_equal(seg_statfs(ns, &sv), 0);
	assert_int_equal(sv.f_bfree, sv0.f_bfree);
	seg_ns_free(ns);
}

/* Entries keep their order across a restart, creation order, as tmpfs lists them. */
static void test_order(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *x;
	struct listing l = { 0 };
	struct seg_dirh *dh;
	struct stat st;
	char name[16];

	(void)state;
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%d", (i * 37) % 50);
		if (i % 7 == 3)
			assert_int_equal(seg_mkdir(ns, root, name, 0700, WHO(0, 0, 0), &x, &st), 0);
		else
			mk(ns, root, name, 0600, WHO(0, 0, 0));
	}
	ns = restart(ns);
	assert_int_equal(seg_opendir(ns, seg_ns_root(ns), &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &l), 0);
	seg_releasedir(ns, dh);
	assert_int_equal(l.n, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%d", (i * 37) % 50);
		assert_string_equal(l.e[i].name, name);
	}
	free(l.e);
	seg_ns_free(ns);
}

/* A directory's names, in the order readdir gives them, as one string. */
static char *names_of(struct seg_ns *ns, struct seg_inode *dir)
{
	struct listing l = { 0 };
	struct seg_dirh *dh;
	size_t cap = 1;
	char *out;

	assert_int_equal(seg_opendir(ns, dir, &dh), 0);
	assert_int_equal(seg_readdir(ns, dh, 0, false, collect, &l), 0);
	seg_releasedir(ns, dh);
	for (size_t i = 0; i < l.n; i++)
		cap += strlen(l.e[i].name) + 1;
	out = calloc(1, cap);
	assert_non_null(out);
	for (size_t i = 0; i < l.n; i++) {
		strcat(out, l.e[i].name);
		strcat(out, " ");
	}
	free(l.e);
	return out;
}

/*
 * Renames (plain, over a name, across directories, exchanges, with a
 * whiteout) and links leave the order the tree gives a restarted server:
 * the new name is its directory's newest, as on tmpfs, so a stream that
 * resumes by name after a restart neither repeats nor skips an entry.
 */
static void test_order_after_renames(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *d, *x;
	struct seg_cred *who = WHO(0, 0, 0);
	struct stat st;
	char *before[2], *after[2];
	char name[16];

	(void)state;
	assert_int_equal(seg_mkdir(ns, root, "d", 0700, who, &d, &st), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		mk(ns, root, name, 0600, who);
		snprintf(name, sizeof(name), "m%d", i);
		mk(ns, d, name, 0600, who);
	}
	assert_int_equal(seg_rename(ns, root, "n2", root, "n9", 0, NULL), 0);       /* over */
	assert_int_equal(seg_rename(ns, root, "n3", root, "new", 0, NULL), 0);      /* plain */
	assert_int_equal(seg_rename(ns, root, "n4", d, "m1", 0, NULL), 0);          /* across, over */
	assert_int_equal(seg_rename(ns, d, "m5", root, "n0", 0, NULL), 0);          /* back, over */
	assert_int_equal(seg_rename(ns, root, "n6", root, "n1", SEG_RENAME_EXCHANGE, NULL), 0);
	assert_int_equal(seg_rename(ns, root, "n7", d, "m8", SEG_RENAME_EXCHANGE, NULL), 0);
	assert_int_equal(seg_rename(ns, d, "m9", d, "w", SEG_RENAME_WHITEOUT, who), 0);
	assert_int_equal(seg_lookup(ns, root, "n10", &x, &st), 0);
	assert_int_equal(seg_link(ns, x, d, "l10", &st), 0);
	seg_forget(ns, x, 2);
	assert_int_equal(seg_rename(ns, root, "n10", d, "l10", 0, NULL), 0);       /* same inode */
	before[0] = names_of(ns, root);
	before[1] = names_of(ns, d);
	ns = restart(ns);
	root = seg_ns_root(ns);
	assert_int_equal(seg_lookup(ns, root, "d", &d, &st), 0);
	after[0] = names_of(ns, root);
	after[1] = names_of(ns, d);
	seg_forget(ns, d, 1);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(after[i], before[i]);
		free(before[i]);
		free(after[i]);
	}
	seg_ns_free(ns);
}

/* A pin holder that is full: files are named in the data tmpfs, and still found. */
static void test_pins_full(void **state)
{
	struct seg_ns *ns = new_ns();
	struct seg_inode *root = seg_ns_root(ns), *a;
	char *before, *after;

	(void)state;
	mk(ns, root, "pinned", 0600, WHO(0, 0, 0));
	keep.full = true;
	a = mk(ns, root, "named", 0600, WHO(0, 0, 0));
	resize(ns, a, 5000);
	put(ns, a, "by name", 4000);
	keep.full = false;
	before = dump(ns, NULL, 0);
	ns = restart(ns);
	after = dump(ns, NULL, 0);
	same(before, after);
	free(before);
	free(after);
	root = seg_ns_root(ns);
	assert_int_equal(seg_unlink(ns, root, "named"), 0);
	assert_int_equal(seg_unlink(ns, root, "pinned"), 0);
	seg_ns_free(ns);
}

static void add_delta(void *arg, const struct rg_delta *d)
{
	*(uint64_t *)arg += d->new - d->old;
}

/* The sum of what request `unique`'s slots recorded. */
static uint64_t recorded(struct rg *rg, uint64_t unique)
{
	uint64_t n = 0;

	rg_find_unique(rg, unique, add_delta, NULL, &n);
	return n;
}

/*
 * The region across deaths: a child counts in one word, one logged
 * change at a time, each recorded in its slot, and is killed at random.
 * Whatever moment it died at, the word equals what its slot recorded: a
 * change is either made and recorded, or neither (the half-done one is
 * rolled back when the region is mapped again).
 */
static void test_region_deaths(void **state)
{
	unsigned died_midway = 0;

	(void)state;
	if (!kept)
		skip();
	srand(20261207);
	for (int round = 0; round < 40; round++) {
		struct rg_params p = { .inodes = 16, .views = 1, .handles = 1 };
		struct keep k;
		struct rg *rg;
		uint64_t idx, n;
		pid_t pid;
		char why[160];

		assert_true(keep_new(&k));
		/* The test's own small region, in place of keep's. */
		rg_close(k.rg);
		assert_int_equal(unlinkat(k.state, "region", 0), 0);
		assert_int_equal(rg_create(k.state, &p, &rg), 0);
		assert_int_equal(rg_alloc(rg, RG_INODES, &idx), 0);
		rg_set(rg, RG_INODES, idx, RI_INO, 77);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			rg_bind(rg, 0);
			rg_begin(rg, 1000, 1, 1, NULL);
			for (int i = 0; i < RG_MAX_DELTAS - 1; i++) {
				rg_add(rg, RG_INODES, idx, RI_NLOOKUP, 1);
				for (volatile int spin = 0; spin < 2000; spin++)
					;
			}
			pause();
			_exit(0);
		}
		usleep((useconds_t)(rand() % 4000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		rg_close(rg);
		assert_int_equal(rg_open(k.state, &rg, why, sizeof(why)), 0);
		n = rg_rec(rg, RG_INODES, idx)[RI_NLOOKUP];
		/* Killed before it began: nothing counted, nothing recorded. */
		if (rg_find_unique(rg, 1000, NULL, NULL, NULL) == 0)
			assert_int_equal(n, 0);
		else
			assert_int_equal(n, recorded(rg, 1000));
		died_midway += n > 0 && n < RG_MAX_DELTAS - 1;
		k.rg = rg;
		keep_free(&k);
	}
	/* The deaths must have come while it counted, not only after. */
	assert_true(died_midway > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_everything_survives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unheld_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_after_renames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pins_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_deaths, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
