/*
 * The tree in the private tmpfs.  See tree.h for its layout.
 *
 * Files are reached through /proc/self/fd/<dir>/<name> where a system
 * call has no *at form that works on every kind of file (the extended
 * attribute calls: an O_PATH descriptor does not do, and fifos and
 * sockets cannot be opened for them).  The last component is never
 * followed.
 */
#include "core/tree.h"

#include "core/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

struct seg_tree {
	int mnt;          /* the tmpfs's root (borrowed) */
	int tree, ino, gone, stage;
	uint64_t root_ino;
	uint64_t next_stage;
	/*
	 * Whether the tmpfs lists a directory's newest entries first (Linux
	 * 6.18 does; earlier ones, with stable offsets, oldest first): the
	 * walk gives entries in the order they were made either way.
	 */
	bool newest_first;
};

/* Learns the tmpfs's order from a scratch directory of two entries. */
static int probe_order(struct seg_tree *t)
{
	char dir[32];
	struct dirent *e;
	int fd, rc = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "order.%d", (int)getpid());
	if (mkdirat(t->stage, dir, 0700) < 0)
		return -errno;
	fd = openat(t->stage, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || mknodat(fd, "1", S_IFREG | 0600, 0) < 0 ||
	    mknodat(fd, "2", S_IFREG | 0600, 0) < 0) {
		rc = -errno;
		goto out;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		rc = -errno;
		goto out;
	}
	fd = -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, "1") == 0 || strcmp(e->d_name, "2") == 0) {
			t->newest_first = e->d_name[0] == '2';
			break;
		}
	}
	unlinkat(dirfd(d), "1", 0);
	unlinkat(dirfd(d), "2", 0);
	closedir(d);
out:
	if (fd >= 0)
		close(fd);
	unlinkat(t->stage, dir, AT_REMOVEDIR);
	return rc;
}

static const char *const dirs[] = { "tree", "ino", "gone", "new" };

static void num_name(uint64_t n, char name[24])
{
	snprintf(name, 24, "%" PRIu64, n);
}

/* A decimal inode number, or 0 for any other name. */
static uint64_t name_num(const char *name)
{
	char *end;
	unsigned long long v;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(name, &end, 10);
	return errno == 0 && *end == '\0' ? (uint64_t)v : 0;
}

int tree_open(int mnt, bool fresh, struct seg_tree **out)
{
	struct seg_tree *t = seg_calloc(1, sizeof(*t));
	int *fds[] = { NULL, NULL, NULL, NULL };
	struct stat st;
	int rc = 0;

	if (t == NULL)
		return -ENOMEM;
	fds[0] = &t->tree;
	fds[1] = &t->ino;
	fds[2] = &t->gone;
	fds[3] = &t->stage;
	t->mnt = mnt;
	t->tree = t->ino = t->gone = t->stage = -1;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (fresh && mkdirat(mnt, dirs[i], 0700) < 0) {
			rc = -errno;
			break;
		}
		*fds[i] = openat(mnt, dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*fds[i] < 0) {
			rc = -errno;
			break;
		}
	}
	if (rc == 0 && fstat(t->tree, &st) < 0)
		rc = -errno;
	if (rc == 0)
		rc = probe_order(t);
	if (rc < 0) {
		tree_free(t);
		return rc;
	}
	t->root_ino = st.st_ino;
	*out = t;
	return 0;
}

void tree_free(struct seg_tree *t)
{
	if (t == NULL)
		return;
	if (t->tree >= 0)
		close(t->tree);
	if (t->ino >= 0)
		close(t->ino);
	if (t->gone >= 0)
		close(t->gone);
	if (t->stage >= 0)
		close(t->stage);
	seg_free(t);
}

int tree_ino_fd(const struct seg_tree *t)
{
	return t->ino;
}

uint64_t tree_root_ino(const struct seg_tree *t)
{
	return t->root_ino;
}

/*
 * A descriptor of directory `dir` (a path below tree/), to close with
 * dir_close.  A path longer than the kernel takes in one call is opened
 * a piece at a time.
 */
static int dir_open(struct seg_tree *t, const char *dir)
{
	char piece[PATH_MAX];
	int fd = t->tree;

	if (dir == NULL || dir[0] == '\0')
		return t->tree;
	while (*dir != '\0') {
		size_t len = strlen(dir), cut = len;
		int next;

		if (len >= sizeof(piece)) {
			/* The last '/' that leaves a piece the kernel takes. */
			cut = sizeof(piece) - 1;
			while (cut > 0 && dir[cut] != '/')
				cut--;
			if (cut == 0) {
				if (fd != t->tree)
					close(fd);
				return -ENAMETOOLONG;
			}
		}
		memcpy(piece, dir, cut);
		piece[cut] = '\0';
		next = openat(fd, piece, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != t->tree)
			close(fd);
		if (next < 0)
			return -errno;
		fd = next;
		dir += cut;
		while (*dir == '/')
			dir++;
	}
	return fd;
}

static void dir_close(struct seg_tree *t, int fd)
{
	if (fd >= 0 && fd != t->tree)
		close(fd);
}

/* A name of new/ or of ino/ that no inode number can be. */
static void stage_name(struct seg_tree *t, char *name)
{
	snprintf(name, TREE_STAGE_MAX, "s%d.%" PRIu64, (int)getpid(),
		 __atomic_fetch_add(&t->next_stage, 1, __ATOMIC_RELAXED));
}

/* ---- new inodes --------------------------------------------------------- */

int tree_keep(struct seg_tree *t, int fd, uint64_t *ino)
{
	char name[24];
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	num_name(st.st_ino, name);
	/* O_TMPFILE without O_EXCL: the file may be given a name. */
	if (linkat(fd, "", t->ino, name, AT_EMPTY_PATH) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

int tree_new_file(struct seg_tree *t, uint64_t *ino)
{
	int fd = openat(t->ino, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return -errno;
	rc = tree_keep(t, fd, ino);
	close(fd);
	return rc;
}

int tree_new_symlink(struct seg_tree *t, const char *target, uint64_t *ino)
{
	char stage[TREE_STAGE_MAX], name[24];
	struct stat st;
	int rc;

	stage_name(t, stage);
	if (symlinkat(target, t->ino, stage) < 0)
		return -errno;
	if (fstatat(t->ino, stage, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	num_name(st.st_ino, name);
	if (renameat(t->ino, stage, t->ino, name) < 0)
		goto fail;
	*ino = st.st_ino;
	return 0;
fail:
	rc = -errno;
	unlinkat(t->ino, stage, 0);
	return rc;
}

int tree_new_dir(struct seg_tree *t, char *stage, uint64_t *ino)
{
	struct stat st;
	int rc;

	stage_name(t, stage);
	if (mkdirat(t->stage, stage, 0700) < 0)
		return -errno;
	if (fstatat(t->stage, stage, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		unlinkat(t->stage, stage, AT_REMOVEDIR);
		return rc;
	}
	*ino = st.st_ino;
	return 0;
}

void tree_unmake(struct seg_tree *t, uint64_t ino, const char *stage)
{
	char name[24];

	if (stage != NULL) {
		unlinkat(t->stage, stage, AT_REMOVEDIR);
		return;
	}
	num_name(ino, name);
	unlinkat(t->ino, name, 0);
}

/* ---- names ---------------------------------------------------------------- */

int tree_link(struct seg_tree *t, uint64_t ino, const char *dir, const char *name)
{
	char from[24];
	int fd = dir_open(t, dir), rc = 0;

	if (fd < 0)
		return fd;
	num_name(ino, from);
	/* Without AT_SYMLINK_FOLLOW: a symlink is linked, not its target. */
	if (linkat(t->ino, from, fd, name, 0) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_replace(struct seg_tree *t, uint64_t ino, const char *dir, const char *name)
{
	char from[24], tmp[TREE_STAGE_MAX];
	int fd, rc = 0;

	num_name(ino, from);
	stage_name(t, tmp);
	/*
	 * A second name beside ino/N, then moved over the old one: the name
	 * never goes missing.  A server that dies in between leaves ino/s...,
	 * which is no inode's number: tree_orphans removes it.
	 */
	if (linkat(t->ino, from, t->ino, tmp, 0) < 0)
		return -errno;
	fd = dir_open(t, dir);
	if (fd < 0) {
		unlinkat(t->ino, tmp, 0);
		return fd;
	}
	if (renameat(t->ino, tmp, fd, name) < 0) {
		rc = -errno;
		unlinkat(t->ino, tmp, 0);
	}
	dir_close(t, fd);
	return rc;
}

int tree_place(struct seg_tree *t, const char *stage, const char *dir, const char *name)
{
	int fd = dir_open(t, dir), rc = 0;

	if (fd < 0)
		return fd;
	if (renameat2(t->stage, stage, fd, name, RENAME_NOREPLACE) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_unlink(struct seg_tree *t, const char *dir, const char *name)
{
	int fd = dir_open(t, dir), rc = 0;

	if (fd < 0)
		return fd;
	if (unlinkat(fd, name, 0) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_rmdir(struct seg_tree *t, const char *dir, const char *name, uint64_t ino, bool keep)
{
	char to[24];
	int fd = dir_open(t, dir), rc = 0;

	if (fd < 0)
		return fd;
	num_name(ino, to);
	if (keep ? renameat2(fd, name, t->gone, to, RENAME_NOREPLACE) < 0
		 : unlinkat(fd, name, AT_REMOVEDIR) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_rename(struct seg_tree *t, const char *dir, const char *name, const char *newdir,
		const char *newname, unsigned flags)
{
	int fd = dir_open(t, dir), nfd, rc = 0;

	if (fd < 0)
		return fd;
	nfd = dir_open(t, newdir);
	if (nfd < 0) {
		dir_close(t, fd);
		return nfd;
	}
	if (renameat2(fd, name, nfd, newname, flags) < 0)
		rc = -errno;
	dir_close(t, nfd);
	dir_close(t, fd);
	return rc;
}

void tree_drop(struct seg_tree *t, uint64_t ino, bool dir)
{
	char name[24];

	num_name(ino, name);
	unlinkat(dir ? t->gone : t->ino, name, dir ? AT_REMOVEDIR : 0);
}

/* ---- attributes ------------------------------------------------------------ */

/*
 * The /proc path of an inode: "/proc/self/fd/D/NAME".  *fd is a
 * descriptor to close with dir_close once the path is used.
 */
static int at_path(struct seg_tree *t, const struct tree_at *at, char *path, size_t len,
		   int *fd)
{
	char name[24];
	const char *dir = at->dir;
	const char *slash;
	int n;

	*fd = -1;
	if (at->stage != NULL) {
		n = snprintf(path, len, "/proc/self/fd/%d/%s", t->stage, at->stage);
		return n < (int)len ? 0 : -ENAMETOOLONG;
	}
	if (at->dir == NULL) {
		num_name(at->ino, name);
		n = snprintf(path, len, "/proc/self/fd/%d/%s", at->gone ? t->gone : t->ino, name);
		return n < (int)len ? 0 : -ENAMETOOLONG;
	}
	if (dir[0] == '\0') {
		n = snprintf(path, len, "/proc/self/fd/%d/.", t->tree);
		return n < (int)len ? 0 : -ENAMETOOLONG;
	}
	/* The parent's descriptor and the last component. */
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		*fd = t->tree;
		n = snprintf(path, len, "/proc/self/fd/%d/%s", t->tree, dir);
	} else {
		char parent[TREE_PATH_MAX];
		size_t plen = (size_t)(slash - dir);

		if (plen >= sizeof(parent))
			return -ENAMETOOLONG;
		memcpy(parent, dir, plen);
		parent[plen] = '\0';
		*fd = dir_open(t, parent);
		if (*fd < 0)
			return *fd;
		n = snprintf(path, len, "/proc/self/fd/%d/%s", *fd, slash + 1);
	}
	return n < (int)len ? 0 : -ENAMETOOLONG;
}

int tree_setxattr(struct seg_tree *t, const struct tree_at *at, const char *name,
		  const void *value, size_t size)
{
	char path[PATH_MAX];
	int fd, rc = at_path(t, at, path, sizeof(path), &fd);

	if (rc == 0 && lsetxattr(path, name, value, size, 0) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_removexattr(struct seg_tree *t, const struct tree_at *at, const char *name)
{
	char path[PATH_MAX];
	int fd, rc = at_path(t, at, path, sizeof(path), &fd);

	if (rc == 0 && lremovexattr(path, name) < 0)
		rc = -errno;
	dir_close(t, fd);
	return rc;
}

int tree_listxattr(struct seg_tree *t, const struct tree_at *at, char *buf, size_t size,
		   size_t *len)
{
	char path[PATH_MAX];
	int fd, rc = at_path(t, at, path, sizeof(path), &fd);
	ssize_t n = 0;

	if (rc == 0) {
		n = llistxattr(path, buf, size);
		if (n < 0)
			rc = -errno;
	}
	dir_close(t, fd);
	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

int tree_getxattr(struct seg_tree *t, const struct tree_at *at, const char *name, void *buf,
		  size_t size, size_t *len)
{
	char path[PATH_MAX];
	int fd, rc = at_path(t, at, path, sizeof(path), &fd);
	ssize_t n = 0;

	if (rc == 0) {
		n = lgetxattr(path, name, buf, size);
		if (n < 0)
			rc = -errno;
	}
	dir_close(t, fd);
	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

int tree_readlink(struct seg_tree *t, uint64_t ino, char *buf, size_t size)
{
	char name[24];
	ssize_t n;

	num_name(ino, name);
	n = readlinkat(t->ino, name, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* ---- the walk ------------------------------------------------------------- */

/* A directory still to be read: its descriptor and what entry() made of it. */
struct pending_dir {
	int fd;
	void *cookie;
};

/* Pushes a directory to read onto the walk's stack. */
static int push(struct pending_dir **stack, size_t *n, size_t *cap, int fd, void *cookie)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pending_dir *s = seg_calloc(ncap, sizeof(*s));

		if (s == NULL)
			return -ENOMEM;
		if (*n > 0)
			memcpy(s, *stack, *n * sizeof(*s));
		seg_free(*stack);
		*stack = s;
		*cap = ncap;
	}
	(*stack)[*n].fd = fd;
	(*stack)[(*n)++].cookie = cookie;
	return 0;
}

/* The names of a directory, in the order the tmpfs lists them. */
struct names {
	char *buf;
	size_t used, size;
	struct name_at {
		size_t off;
		uint64_t ino;
		unsigned char type;    /* d_type */
	} *at;
	size_t n, cap;
};

int tree_entry_stat(const struct tree_entry *e, struct stat *st)
{
	if (fstatat(e->dirfd, e->name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* An entry of a directory, as getdents gave it. */
static int entry_of(int dirfd, const char *name, uint64_t ino, unsigned char type,
		    struct tree_entry *e)
{
	struct stat st;

	e->name = name;
	e->dirfd = dirfd;
	e->ino = ino;
	e->type = DTTOIF(type);
	/* A filesystem that does not fill d_type (tmpfs does): ask. */
	if (type == DT_UNKNOWN) {
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		e->ino = st.st_ino;
		e->type = st.st_mode & S_IFMT;
	}
	return 0;
}

static int names_add(struct names *nm, const struct dirent *de)
{
	const char *name = de->d_name;
	size_t len = strlen(name) + 1;

	if (nm->used + len > nm->size) {
		size_t size = nm->size ? nm->size * 2 : 4096;
		char *b;

		while (size < nm->used + len)
			size *= 2;
		b = seg_malloc(size);
		if (b == NULL)
			return -ENOMEM;
		if (nm->used > 0)
			memcpy(b, nm->buf, nm->used);
		seg_free(nm->buf);
		nm->buf = b;
		nm->size = size;
	}
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 64;
		struct name_at *o = seg_calloc(cap, sizeof(*o));

		if (o == NULL)
			return -ENOMEM;
		if (nm->n > 0)
			memcpy(o, nm->at, nm->n * sizeof(*o));
		seg_free(nm->at);
		nm->at = o;
		nm->cap = cap;
	}
	memcpy(nm->buf + nm->used, name, len);
	nm->at[nm->n++] = (struct name_at){ .off = nm->used, .ino = de->d_ino,
					    .type = de->d_type };
	nm->used += len;
	return 0;
}

/*
 * Reads one directory, calling entry() for each name in the order the
 * names were made, and queueing the subdirectories.  Takes `fd` over.
 */
static int read_dir(struct seg_tree *t, int fd, void *cookie, tree_entry_fn entry, void *arg,
		    struct pending_dir **stack, size_t *n, size_t *cap)
{
	struct names nm = { 0 };
	DIR *d = fdopendir(fd);
	struct dirent *e;
	int rc = 0;

	if (d == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = names_add(&nm, e);
	if (rc == 0 && errno != 0)
		rc = -errno;
	for (size_t k = 0; rc == 0 && k < nm.n; k++) {
		const struct name_at *at = &nm.at[t->newest_first ? nm.n - 1 - k : k];
		struct tree_entry te;
		void *made;
		int err = 0, sub;

		rc = entry_of(dirfd(d), nm.buf + at->off, at->ino, at->type, &te);
		if (rc < 0)
			break;
		made = entry(arg, cookie, &te, &err);
		if (err < 0) {
			rc = err;
			break;
		}
		if (!S_ISDIR(te.type))
			continue;
		sub = openat(dirfd(d), te.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = -errno;
			break;
		}
		rc = push(stack, n, cap, sub, made);
		if (rc < 0)
			close(sub);
	}
	seg_free(nm.buf);
	seg_free(nm.at);
	closedir(d);
	return rc;
}

int tree_walk(struct seg_tree *t, tree_entry_fn entry, void *arg)
{
	struct pending_dir *stack = NULL;
	size_t n = 0, cap = 0;
	int fd = openat(t->tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	rc = read_dir(t, fd, NULL, entry, arg, &stack, &n, &cap);
	while (n > 0) {
		struct pending_dir p = stack[--n];

		if (rc == 0)
			rc = read_dir(t, p.fd, p.cookie, entry, arg, &stack, &n, &cap);
		else
			close(p.fd);
	}
	seg_free(stack);
	return rc;
}

/*
 * Calls each() for the numbered entries of one of ino/ and gone/: an
 * entry's number is its name's (the file's inode number).
 */
static int numbered(int dfd, bool dir, int (*each)(void *, bool, const struct tree_entry *),
		    void *arg)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		uint64_t ino = name_num(e->d_name);
		struct tree_entry te;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (ino == 0) {
			/* A symlink a dead server was making: not an inode yet. */
			unlinkat(dfd, e->d_name, dir ? AT_REMOVEDIR : 0);
			continue;
		}
		rc = entry_of(dfd, e->d_name, e->d_ino, e->d_type, &te);
		te.ino = ino;
		if (rc == 0)
			rc = each(arg, dir, &te);
	}
	closedir(d);
	return rc;
}

/* Empties new/: directories a dead server was making. */
static void clear_stage(struct seg_tree *t)
{
	int fd = openat(t->stage, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(t->stage, e->d_name, AT_REMOVEDIR);
	closedir(d);
}

int tree_orphans(struct seg_tree *t, int (*each)(void *arg, bool dir,
						 const struct tree_entry *e), void *arg)
{
	int rc = numbered(t->ino, false, each, arg);

	if (rc == 0)
		rc = numbered(t->gone, true, each, arg);
	clear_stage(t);
	return rc;
}
