/*
 * The segfs namespace.  See ns.h for the model and the contracts.
 *
 * Layout in memory:
 *
 *   - every live inode is on ns->inodes (so statfs can sum use and
 *     seg_ns_free can release everything);
 *   - every name is a seg_dentry, found through ONE hash table keyed by
 *     (parent directory, name), as the kernel's dcache does: a directory
 *     with one entry costs no table of its own;
 *   - each directory also keeps its entries on a list in creation order,
 *     which is what readdir walks.  Open directory streams put a cursor
 *     node on that list, the way tmpfs's dcache_readdir does.
 *
 * Workload: tens of thousands of segments in one directory (a /dev/shm) are
 * expected, so lookups are O(1) and the per-segment overhead is a few
 * hundred bytes plus the name.  One mutex serializes the namespace; each
 * call holds it for a few microseconds at most, except statfs, which walks
 * every inode.
 */
#include "core/ns.h"

#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

/*
 * memfd names are limited to 249 bytes ("memfd:" makes 255); the name is
 * only shown in /proc, so a longer segment name is cut.
 */
#define MEMFD_NAME_MAX 249

/* ---- helpers ---------------------------------------------------------- */

void seg__now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

bool seg__is_dir(const struct seg_inode *ino)
{
	return S_ISDIR(ino->mode);
}

static int timespec_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

static void list_init(struct seg_node *head)
{
	head->prev = head->next = head;
	head->entry = NULL;
}

static void list_insert_before(struct seg_node *pos, struct seg_node *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}

static void list_del(struct seg_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/*
 * FNV-1a over the name, seeded per namespace and mixed with the parent's
 * address so that equal names in different directories spread.  The seed
 * makes collisions hard to arrange from outside without the cost of a
 * keyed cryptographic hash on every lookup.
 */
static uint64_t name_hash(const struct seg_ns *ns, const struct seg_inode *parent,
			  const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ ns->seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	h ^= (uint64_t)(uintptr_t)parent;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

struct seg_dentry *seg__d_find(const struct seg_ns *ns, const struct seg_inode *dir,
				 const char *name, size_t len)
{
	uint64_t h = name_hash(ns, dir, name, len);

	for (struct seg_dentry *d = ns->buckets[h & (ns->nbuckets - 1)]; d; d = d->hnext)
		if (d->hash == h && d->parent == dir && d->len == len &&
		    memcmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

/* Doubles the table when it is full.  Failure is harmless: chains grow. */
static void d_grow(struct seg_ns *ns)
{
	size_t n = ns->nbuckets * 2;
	struct seg_dentry **b;

	if (ns->nentries < ns->nbuckets || n > SIZE_MAX / sizeof(*b))
		return;
	b = seg_calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < ns->nbuckets; i++) {
		struct seg_dentry *d = ns->buckets[i], *next;

		for (; d; d = next) {
			next = d->hnext;
			d->hnext = b[d->hash & (n - 1)];
			b[d->hash & (n - 1)] = d;
		}
	}
	seg_free(ns->buckets);
	ns->buckets = b;
	ns->nbuckets = n;
}

struct seg_dentry *seg__d_alloc(const char *name, size_t len)
{
	struct seg_dentry *d = seg_malloc(sizeof(*d) + len + 1);

	if (d == NULL)
		return NULL;
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, len);
	d->name[len] = '\0';
	d->len = len;
	return d;
}

/* Puts a dentry made by d_alloc into `dir` under its name, pointing at `ino`. */
void seg__d_add(struct seg_ns *ns, struct seg_inode *dir, struct seg_dentry *d,
		  struct seg_inode *ino)
{
	size_t b;

	d->parent = dir;
	d->inode = ino;
	d->hash = name_hash(ns, dir, d->name, d->len);
	d->cookie = dir->next_cookie++;
	d->node.entry = d;
	list_insert_before(&dir->entries, &d->node);
	b = d->hash & (ns->nbuckets - 1);
	d->hnext = ns->buckets[b];
	ns->buckets[b] = d;
	ns->nentries++;
	dir->nentries++;
	d_grow(ns);
}

/* Takes a dentry out of its directory and frees it; the inode is untouched. */
void seg__d_remove(struct seg_ns *ns, struct seg_dentry *d)
{
	struct seg_dentry **pp = &ns->buckets[d->hash & (ns->nbuckets - 1)];

	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	list_del(&d->node);
	ns->nentries--;
	d->parent->nentries--;
	seg_free(d);
}

void seg__dir_touch(struct seg_inode *dir)
{
	seg__now(&dir->mtime);
	dir->ctime = dir->mtime;
}

struct seg_inode *seg__inode_alloc(struct seg_ns *ns, mode_t mode, uid_t uid, gid_t gid)
{
	struct seg_inode *ino = seg_calloc(1, sizeof(*ino));

	if (ino == NULL)
		return NULL;
	ino->mode = mode;
	ino->uid = uid;
	ino->gid = gid;
	ino->fd = -1;
	seg__now(&ino->ctime);
	ino->atime = ino->mtime = ino->btime = ino->ctime;
	list_init(&ino->entries);
	ino->next_cookie = FIRST_COOKIE;
	(void)ns;
	return ino;
}

/* Makes an allocated inode live: numbered and on ns->inodes. */
void seg__inode_link(struct seg_ns *ns, struct seg_inode *ino)
{
	ino->ino = ns->next_ino++;
	ino->next = &ns->inodes;
	ino->prev = ns->inodes.prev;
	ns->inodes.prev->next = ino;
	ns->inodes.prev = ino;
	ns->ninodes++;
}

bool seg_inode_is_segment(const struct seg_inode *ino)
{
	return S_ISREG(ino->mode) && !ino->view;
}

/* The lists of segments by use: ns->open and ns->idle. */
static void olist_add(struct seg_inode *head, struct seg_inode *ino)
{
	ino->onext = head;
	ino->oprev = head->oprev;
	head->oprev->onext = ino;
	head->oprev = ino;
}

static void olist_del(struct seg_inode *ino)
{
	ino->oprev->onext = ino->onext;
	ino->onext->oprev = ino->oprev;
	ino->onext = ino->oprev = NULL;
}

/* A segment's name in the private tmpfs: its inode number, never reused. */
static void store_name(const struct seg_inode *ino, char name[24])
{
	snprintf(name, 24, "%llu", (unsigned long long)ino->ino);
}

/*
 * Closes the descriptor of an idle segment, naming its file in the tmpfs
 * first (once) so that seg__fd can open it again.
 */
static int evict(struct seg_ns *ns, struct seg_inode *ino)
{
	char name[24];
	struct stat st;

	if (fstat(ino->fd, &st) < 0)
		return -errno;
	if (!ino->named) {
		store_name(ino, name);
		/* O_TMPFILE without O_EXCL: the file may be given a name. */
		if (linkat(ino->fd, "", ns->store, name, AT_EMPTY_PATH) < 0)
			return -errno;
		ino->named = true;
	}
	ino->snap.size = st.st_size;
	ino->snap.blocks = st.st_blocks;
	ino->snap.atime = st.st_atim;
	ino->snap.mtime = st.st_mtim;
	ino->snap.ctime = st.st_ctim;
	olist_del(ino);
	close(ino->fd);
	ino->fd = -1;
	ns->nfds--;
	return 0;
}

/*
 * Keeps the descriptors within the budget before one more is opened, by
 * closing those of the least recently used idle segments: never one handed
 * out since the lock was taken, which its caller may still be using.
 */
static void make_room(struct seg_ns *ns)
{
	if (ns->store < 0 || ns->fd_budget == 0)
		return;
	while (ns->nfds >= ns->fd_budget && ns->idle.onext != &ns->idle &&
	       ns->idle.onext->used != ns->epoch)
		if (evict(ns, ns->idle.onext) < 0)
			return;
}

int seg__open_named(const struct seg_ns *ns, const struct seg_inode *ino, int flags)
{
	char name[24];
	int fd;

	if (!seg_inode_is_segment(ino) || !ino->named)
		return -EINVAL;
	store_name(ino, name);
	fd = openat(ns->store, name, flags | O_CLOEXEC);
	/* Out of descriptors: as the client sees it, the system is. */
	return fd >= 0 ? fd : errno == EMFILE ? -ENFILE : -errno;
}

int seg__fd(struct seg_ns *ns, struct seg_inode *ino)
{
	int fd;

	if (ino->fd < 0) {
		make_room(ns);
		fd = seg__open_named(ns, ino, O_RDWR);
		if (fd < 0)
			return fd;
		ino->fd = fd;
		ns->nfds++;
	} else if (ino->nopen == 0) {
		olist_del(ino);   /* to the end: most recently used */
	}
	if (ino->nopen == 0)
		olist_add(&ns->idle, ino);
	ino->used = ns->epoch;
	return ino->fd;
}

/* Takes an inode out of the namespace; seg__unlock releases it. */
static void inode_destroy(struct seg_ns *ns, struct seg_inode *ino)
{
	ino->prev->next = ino->next;
	ino->next->prev = ino->prev;
	ns->ninodes--;
	ns->reserved -= ino->reserved;
	if (ino->fd >= 0)
		ns->nfds--;
	if (ino->onext != NULL)
		olist_del(ino);
	ino->next = ns->dead;
	ns->dead = ino;
}

/* Closes and unnames the backing files of dead inodes, and frees them. */
static void release_dead(struct seg_ns *ns, struct seg_inode *dead)
{
	char name[24];

	while (dead != NULL) {
		struct seg_inode *next = dead->next;

		if (dead->named) {
			store_name(dead, name);
			unlinkat(ns->store, name, 0);
		}
		if (dead->fd >= 0)
			close(dead->fd);
		seg_free(dead);
		dead = next;
	}
}

void seg__unlock(struct seg_ns *ns)
{
	struct seg_inode *dead = ns->dead;

	ns->dead = NULL;
	ns->epoch++;
	pthread_mutex_unlock(&ns->lock);
	release_dead(ns, dead);
}

/* Frees an inode that nothing refers to any more. */
void seg__maybe_free(struct seg_ns *ns, struct seg_inode *ino)
{
	if (ino == ns->root || ino == ns->lists)
		return;
	if (ino->nlookup != 0 || ino->nopen != 0)
		return;
	/* A view lives for as long as the kernel refers to it, name and all. */
	if (ino->view) {
		seg__d_remove(ns, ino->vdentry);
		inode_destroy(ns, ino);
	} else if (ino->nlink == 0) {
		inode_destroy(ns, ino);
	}
}

/*
 * fstat of a segment's backing file: of its descriptor, or for one without
 * (an idle segment beyond the budget) what fstat said when it was closed.
 */
static int backing_stat(const struct seg_inode *ino, struct stat *m)
{
	if (ino->fd >= 0)
		return fstat(ino->fd, m) == 0 ? 0 : -errno;
	if (!ino->named)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->st_size = ino->snap.size;
	m->st_blocks = ino->snap.blocks;
	m->st_atim = ino->snap.atime;
	m->st_mtim = ino->snap.mtime;
	m->st_ctim = ino->snap.ctime;
	return 0;
}

void seg__fill_stat(const struct seg_inode *ino, struct stat *st)
{
	struct stat m;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino->ino;
	st->st_mode = ino->mode;
	st->st_nlink = ino->nlink;
	st->st_uid = ino->uid;
	st->st_gid = ino->gid;
	st->st_blksize = 4096;
	st->st_atim = ino->atime;
	st->st_mtim = ino->mtime;
	st->st_ctim = ino->ctime;
	if (seg__is_dir(ino)) {
		st->st_size = (off_t)(ino->nentries + 2) * BOGO_DIRENT_SIZE;
		return;
	}
	/* Our own backing file cannot be missing short of a bug. */
	if (backing_stat(ino, &m) == 0) {
		st->st_size = m.st_size;
		st->st_blocks = m.st_blocks;
		st->st_atim = m.st_atim;
		st->st_mtim = m.st_mtim;
		if (timespec_cmp(&m.st_ctim, &ino->ctime) > 0)
			st->st_ctim = m.st_ctim;
	}
}

/* Common checks of a directory argument and a new name in it. */
int seg__check_dir_name(const struct seg_inode *dir, const char *name, size_t *len)
{
	if (!seg__is_dir(dir))
		return -ENOTDIR;
	return seg_name_check(name, len);
}

/* ---- the backing store ----------------------------------------------- */

#define PAGE 4096ULL

/*
 * Makes the private tmpfs that holds the segments' pages, and returns its
 * root in *out.  It is attached to no mount point: only this process
 * reaches it, through the descriptor, and the kernel tears it down with
 * the last file open on it.  So, as with memfds, a daemon that dies for
 * any reason leaves nothing behind but the pages that clients still map.
 *
 * size= is the size limit, rounded down to pages (tmpfs would round up,
 * and 0 would mean no limit at all, so at least one page).  That is what
 * makes the kernel refuse, with ENOSPC, a FUSE passthrough write() that
 * would take the mount past the limit: such a write goes straight to the
 * backing file and never reaches us.  nr_inodes=0 leaves inode counting to
 * nr_segments, which we enforce at every create.
 */
static int store_open(uint64_t size_limit, int *out)
{
	char size[24];
	uint64_t pages = size_limit / PAGE;
	int fsfd, mnt, rc;

	fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return -errno;
	snprintf(size, sizeof(size), "%llu",
		 (unsigned long long)((pages > 0 ? pages : 1) * PAGE));
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "nr_inodes", "0", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		goto fail;
	close(fsfd);
	*out = mnt;
	return 0;
fail:
	rc = -errno;
	close(fsfd);
	return rc;
}

/* A new, empty backing file: -errno on failure. */
static int store_file(const struct seg_ns *ns, const char *name)
{
	char mname[MEMFD_NAME_MAX + 1];
	int fd;

	/* Unnamed: it goes away with its last reference, as a memfd does. */
	if (ns->store >= 0) {
		fd = openat(ns->store, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		return fd >= 0 ? fd : -errno;
	}
	snprintf(mname, sizeof(mname), "%s", name);
	fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return fd >= 0 ? fd : -errno;
}

enum seg_backing seg_ns_backing(const struct seg_ns *ns, int *why)
{
	if (why != NULL)
		*why = ns->store >= 0 ? 0 : ns->store_err;
	return ns->store >= 0 ? SEG_BACKING_TMPFS : SEG_BACKING_MEMFD;
}

/* ---- the namespace ---------------------------------------------------- */

static int make_dir(struct seg_ns *ns, struct seg_inode *parent, mode_t mode,
		    uid_t uid, gid_t gid, struct seg_inode **out)
{
	struct seg_inode *d = seg__inode_alloc(ns, S_IFDIR | (mode & 07777), uid, gid);

	if (d == NULL)
		return -ENOMEM;
	d->nlink = 2;
	d->parent = parent != NULL ? parent : d;
	*out = d;
	return 0;
}

int seg_ns_new(const struct seg_ns_config *cfg, struct seg_ns **out)
{
	struct seg_ns *ns;
	struct seg_dentry *ld;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	const char *lname = cfg->lists_name != NULL ? cfg->lists_name : "lists";
	size_t llen;
	int rc;

	rc = seg_name_check(lname, &llen);
	if (rc < 0)
		return rc;
	ns = seg_calloc(1, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	rc = -pthread_mutex_init(&ns->lock, NULL);
	if (rc < 0)
		goto fail_mutex;
	ns->inodes.prev = ns->inodes.next = &ns->inodes;
	ns->open.oprev = ns->open.onext = &ns->open;
	ns->idle.oprev = ns->idle.onext = &ns->idle;
	ns->next_ino = 1;
	ns->nbuckets = 64;
	rc = -ENOMEM;
	ns->buckets = seg_calloc(ns->nbuckets, sizeof(*ns->buckets));
	if (ns->buckets == NULL)
		goto fail_buckets;
	if (getrandom(&ns->seed, sizeof(ns->seed), GRND_NONBLOCK) != sizeof(ns->seed))
		ns->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ns;
	/* The defaults of tmpfs: half of RAM, and as many inodes as half its pages. */
	if (pages < 1 || psize < 1)
		pages = 1L << 20, psize = 4096;
	ns->size_limit = cfg->size_limit ? cfg->size_limit
					 : (uint64_t)pages * (uint64_t)psize / 2;
	ns->store = -1;
	ns->store_err = cfg->memfd ? 0 : store_open(ns->size_limit, &ns->store);
	ns->fd_budget = cfg->fd_budget;
	ns->inode_limit = cfg->nr_segments;
	if (ns->inode_limit == 0) {
		/* As tmpfs; a memfd needs a descriptor, and df -i must not lie. */
		ns->inode_limit = (uint64_t)pages / 2;
		if (ns->store < 0 && ns->fd_budget != 0 && ns->inode_limit > ns->fd_budget)
			ns->inode_limit = ns->fd_budget;
	}

	/* The sticky bit of a 1777 root (a /dev/shm) is enforced by the kernel. */
	rc = make_dir(ns, NULL, cfg->root_mode ? cfg->root_mode : 0755,
		      getuid(), getgid(), &ns->root);
	if (rc < 0)
		goto fail_root;
	rc = make_dir(ns, ns->root, 0755, getuid(), getgid(), &ns->lists);
	if (rc < 0)
		goto fail_lists;
	rc = -ENOMEM;
	ld = seg__d_alloc(lname, llen);
	if (ld == NULL)
		goto fail_dentry;
	seg__inode_link(ns, ns->root);
	seg__inode_link(ns, ns->lists);
	ns->lists->lists = true;
	seg__d_add(ns, ns->root, ld, ns->lists);
	ns->root->nlink++;
	*out = ns;
	return 0;

fail_dentry:
	seg_free(ns->lists);
fail_lists:
	seg_free(ns->root);
fail_root:
	if (ns->store >= 0)
		close(ns->store);
	seg_free(ns->buckets);
fail_buckets:
	pthread_mutex_destroy(&ns->lock);
fail_mutex:
	seg_free(ns);
	return rc;
}

void seg_ns_free(struct seg_ns *ns)
{
	if (ns == NULL)
		return;
	for (size_t i = 0; i < ns->nbuckets; i++) {
		struct seg_dentry *d = ns->buckets[i], *next;

		for (; d; d = next) {
			next = d->hnext;
			seg_free(d);
		}
	}
	while (ns->inodes.next != &ns->inodes)
		inode_destroy(ns, ns->inodes.next);
	release_dead(ns, ns->dead);
	if (ns->store >= 0)
		close(ns->store);
	seg_free(ns->buckets);
	pthread_mutex_destroy(&ns->lock);
	seg_free(ns);
}

struct seg_inode *seg_ns_root(struct seg_ns *ns)
{
	return ns->root;
}

uint64_t seg_ns_inode_count(struct seg_ns *ns)
{
	uint64_t n;

	pthread_mutex_lock(&ns->lock);
	n = ns->ninodes;
	seg__unlock(ns);
	return n;
}

int seg_inode_fd(const struct seg_inode *ino)
{
	return ino->fd;
}


bool seg_inode_is_lists(const struct seg_inode *ino)
{
	return ino->lists;
}

/* ---- names ------------------------------------------------------------ */

int seg_lookup(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode **out, struct stat *st)
{
	struct seg_dentry *d;
	size_t len;
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = seg__check_dir_name(dir, name, &len);
	if (rc < 0)
		goto out;
	if (dir->lists) {
		rc = seg__lists_lookup(ns, name, len, out, st);
		goto out;
	}
	d = seg__d_find(ns, dir, name, len);
	if (d == NULL) {
		rc = -ENOENT;
		goto out;
	}
	d->inode->nlookup++;
	seg__fill_stat(d->inode, st);
	*out = d->inode;
out:
	seg__unlock(ns);
	return rc;
}

/* Checks shared by everything that adds a name to `dir`. */
static int check_new_name(struct seg_ns *ns, struct seg_inode *dir, const char *name,
			  size_t *len, struct seg_dentry **existing)
{
	int rc = seg__check_dir_name(dir, name, len);

	if (rc < 0)
		return rc;
	/* A removed directory that is still open takes no new entries. */
	if (dir->nlink == 0)
		return -ENOENT;
	/* lists/ holds views of segments, made only by seg_create. */
	if (dir->lists)
		return -EPERM;
	*existing = seg__d_find(ns, dir, name, *len);
	return 0;
}

/* ---- the size limit -------------------------------------------------- */

static uint64_t page_up(uint64_t n)
{
	return n > UINT64_MAX - (PAGE - 1) ? UINT64_MAX : (n + PAGE - 1) & ~(PAGE - 1);
}

/*
 * Brings a segment's reservation up to what its backing file really holds:
 * with passthrough, a write() that extends it never reaches us.
 */
static void settle(struct seg_ns *ns, struct seg_inode *ino)
{
	struct stat st;
	uint64_t held;

	if (ino->fd < 0 || fstat(ino->fd, &st) < 0)
		return;
	held = (uint64_t)st.st_blocks * 512;
	if (held > ino->reserved) {
		ns->reserved += held - ino->reserved;
		ino->reserved = held;
	}
}

/*
 * Only open segments with a passthrough data path can have grown unseen
 * (in the cached fallback every write comes to us); settle those.
 */
static void settle_open(struct seg_ns *ns)
{
	for (struct seg_inode *o = ns->open.onext; o != &ns->open; o = o->onext)
		if (o->backing > 0)
			settle(ns, o);
}

/*
 * Reserves and allocates ino's pages up to `want` (page-aligned).  With the
 * private tmpfs the kernel keeps the exact count, so its fallocate is the
 * whole check; with memfds we are the only accountant, and must first
 * learn what passthrough writes took unseen (O(open segments)).
 */
static int reserve(struct seg_ns *ns, struct seg_inode *ino, uint64_t want)
{
	uint64_t more;
	int fd;

	if (want <= ino->reserved)
		return 0;
	if (ns->store < 0) {
		settle_open(ns);
		if (want <= ino->reserved)
			return 0;
	}
	more = want - ino->reserved;
	if (ns->store < 0 && (more > ns->size_limit || ns->reserved > ns->size_limit - more))
		return -ENOSPC;
	fd = seg__fd(ns, ino);
	if (fd < 0)
		return fd;
	/*
	 * Allocate now, keeping the size: this is where a full mount or a full
	 * machine says ENOSPC, instead of a SIGBUS in whoever touches the page
	 * later.  Pages a passthrough write already took are not counted twice.
	 */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)ino->reserved, (off_t)more) < 0)
		return errno == EINTR ? -EINTR : -ENOSPC;
	ns->reserved += more;
	ino->reserved = want;
	return 0;
}

int seg__resize(struct seg_ns *ns, struct seg_inode *ino, off_t size)
{
	uint64_t want;
	int rc, fd;

	if (size < 0)
		return -EINVAL;
	want = page_up((uint64_t)size);
	rc = reserve(ns, ino, want);
	if (rc < 0)
		return rc;
	fd = seg__fd(ns, ino);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		return errno == EINVAL ? -EFBIG : -errno;
	/* Shrinking gave pages back (ftruncate freed them). */
	if (want < ino->reserved) {
		ns->reserved -= ino->reserved - want;
		ino->reserved = want;
	}
	return 0;
}

int seg_reserve(struct seg_ns *ns, struct seg_inode *ino, uint64_t end)
{
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = !seg_inode_is_segment(ino) ? -EINVAL : reserve(ns, ino, page_up(end));
	seg__unlock(ns);
	return rc;
}

int seg__new_segment(struct seg_ns *ns, const char *name, mode_t mode,
		     uid_t uid, gid_t gid, pid_t pid, struct seg_inode **out)
{
	struct seg_inode *ino;
	int fd;

	if (ns->ninodes >= ns->inode_limit)
		return -ENOSPC;
	ino = seg__inode_alloc(ns, S_IFREG | (mode & 07777), uid, gid);
	if (ino == NULL)
		return -ENOMEM;
	make_room(ns);
	fd = store_file(ns, name);
	if (fd < 0) {
		seg_free(ino);
		/* Out of descriptors is out of inodes, as tmpfs would say. */
		return fd == -EMFILE || fd == -ENFILE ? -ENOSPC : fd;
	}
	ino->fd = fd;
	ns->nfds++;
	olist_add(&ns->idle, ino);
	ino->used = ns->epoch;
	ino->pid = pid;
	seg__inode_link(ns, ino);
	*out = ino;
	return 0;
}

int seg_create(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       mode_t mode, uid_t uid, gid_t gid, pid_t pid, int flags,
	       struct seg_inode **out, struct stat *st, bool *created)
{
	struct seg_dentry *d, *old;
	struct seg_inode *ino;
	size_t len;
	int rc;

	pthread_mutex_lock(&ns->lock);
	if (dir->lists) {
		rc = seg__check_dir_name(dir, name, &len);
		if (rc == 0)
			rc = seg__lists_create(ns, name, len, mode, uid, gid, pid, flags,
					       out, st, created);
		goto out;
	}
	rc = check_new_name(ns, dir, name, &len, &old);
	if (rc < 0)
		goto out;
	if (old != NULL) {
		if (flags & SEG_CREATE_EXCL)
			rc = -EEXIST;
		else if (seg__is_dir(old->inode))
			rc = -EISDIR;
		if (rc < 0)
			goto out;
		old->inode->nlookup++;
		seg__fill_stat(old->inode, st);
		*out = old->inode;
		*created = false;
		goto out;
	}
	rc = -ENOMEM;
	d = seg__d_alloc(name, len);
	if (d == NULL)
		goto out;
	rc = seg__new_segment(ns, name, mode, uid, gid, pid, &ino);
	if (rc < 0) {
		seg_free(d);
		goto out;
	}
	ino->nlink = 1;
	ino->nlookup = 1;
	seg__d_add(ns, dir, d, ino);
	seg__dir_touch(dir);
	seg__fill_stat(ino, st);
	*out = ino;
	*created = true;
out:
	seg__unlock(ns);
	return rc;
}

int seg_mkdir(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	      mode_t mode, uid_t uid, gid_t gid,
	      struct seg_inode **out, struct stat *st)
{
	struct seg_dentry *d, *old;
	struct seg_inode *sub;
	size_t len;
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = check_new_name(ns, dir, name, &len, &old);
	if (rc < 0)
		goto out;
	rc = -EEXIST;
	if (old != NULL)
		goto out;
	rc = -ENOSPC;
	if (ns->ninodes >= ns->inode_limit)
		goto out;
	rc = make_dir(ns, dir, mode, uid, gid, &sub);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	d = seg__d_alloc(name, len);
	if (d == NULL) {
		seg_free(sub);
		goto out;
	}
	seg__inode_link(ns, sub);
	sub->nlookup = 1;
	seg__d_add(ns, dir, d, sub);
	dir->nlink++;
	seg__dir_touch(dir);
	seg__fill_stat(sub, st);
	*out = sub;
	rc = 0;
out:
	seg__unlock(ns);
	return rc;
}

int seg_link(struct seg_ns *ns, struct seg_inode *ino, struct seg_inode *dir,
	     const char *name, struct stat *st)
{
	struct seg_dentry *d, *old;
	size_t len;
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = check_new_name(ns, dir, name, &len, &old);
	if (rc < 0)
		goto out;
	rc = -EEXIST;
	if (old != NULL)
		goto out;
	rc = -EPERM;
	if (seg__is_dir(ino) || ino->view)
		goto out;
	/* A segment whose last name is gone cannot be linked again, as on tmpfs. */
	rc = -ENOENT;
	if (ino->nlink == 0)
		goto out;
	rc = -EMLINK;
	if (ino->nlink == UINT32_MAX)
		goto out;
	rc = -ENOMEM;
	d = seg__d_alloc(name, len);
	if (d == NULL)
		goto out;
	seg__d_add(ns, dir, d, ino);
	ino->nlink++;
	ino->nlookup++;
	seg__now(&ino->ctime);
	seg__dir_touch(dir);
	seg__fill_stat(ino, st);
	rc = 0;
out:
	seg__unlock(ns);
	return rc;
}

/* Finds the entry `name` of `dir` for a removal. */
static int find_entry(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		      struct seg_dentry **out)
{
	size_t len;
	int rc = seg__check_dir_name(dir, name, &len);

	if (rc < 0)
		return rc;
	*out = seg__d_find(ns, dir, name, len);
	return *out != NULL ? 0 : -ENOENT;
}

int seg__unlink_locked(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_dentry *d;
	struct seg_inode *ino;
	int rc;

	if (dir->lists)
		return seg__lists_unlink(ns, name);
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		return rc;
	ino = d->inode;
	if (seg__is_dir(ino))
		return -EISDIR;
	seg__d_remove(ns, d);
	ino->nlink--;
	seg__now(&ino->ctime);
	seg__dir_touch(dir);
	seg__maybe_free(ns, ino);
	return 0;
}

int seg_unlink(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = seg__unlink_locked(ns, dir, name);
	seg__unlock(ns);
	return rc;
}

/* Marks a directory that lost its name as dead (its entries are gone). */
static void dir_kill(struct seg_ns *ns, struct seg_inode *sub)
{
	sub->parent->nlink--;
	sub->nlink = 0;
	seg__now(&sub->ctime);
	seg__maybe_free(ns, sub);
}

int seg_rmdir(struct seg_ns *ns, struct seg_inode *dir, const char *name)
{
	struct seg_dentry *d;
	struct seg_inode *sub;
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = -ENOTDIR;
	if (dir->lists)
		goto out;
	rc = find_entry(ns, dir, name, &d);
	if (rc < 0)
		goto out;
	sub = d->inode;
	rc = -ENOTDIR;
	if (!seg__is_dir(sub))
		goto out;
	rc = -EPERM;
	if (sub->lists)
		goto out;
	rc = -ENOTEMPTY;
	if (sub->nentries != 0)
		goto out;
	seg__d_remove(ns, d);
	seg__dir_touch(dir);
	dir_kill(ns, sub);
	rc = 0;
out:
	seg__unlock(ns);
	return rc;
}

/* True when `dir` is `anc` or lies below it. */
static bool is_below(const struct seg_inode *dir, const struct seg_inode *anc)
{
	for (;;) {
		if (dir == anc)
			return true;
		if (dir->parent == dir)
			return false;
		dir = dir->parent;
	}
}

/* Moves a directory inode from one parent to another (counts and ".."). */
static void reparent(struct seg_inode *sub, struct seg_inode *from, struct seg_inode *to)
{
	if (!seg__is_dir(sub) || from == to)
		return;
	from->nlink--;
	to->nlink++;
	sub->parent = to;
}

static int rename_exchange(struct seg_dentry *a, struct seg_dentry *b)
{
	struct seg_inode *ia = a->inode, *ib = b->inode;

	if (ia == ib)
		return 0;
	if (ia->lists || ib->lists)
		return -EPERM;
	if (seg__is_dir(ia) && a->parent != b->parent && is_below(b->parent, ia))
		return -EINVAL;
	if (seg__is_dir(ib) && a->parent != b->parent && is_below(a->parent, ib))
		return -EINVAL;
	reparent(ia, a->parent, b->parent);
	reparent(ib, b->parent, a->parent);
	a->inode = ib;
	b->inode = ia;
	seg__now(&ia->ctime);
	ib->ctime = ia->ctime;
	seg__dir_touch(a->parent);
	seg__dir_touch(b->parent);
	return 0;
}

int seg__rename_locked(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		       struct seg_inode *newdir, const char *newname, unsigned flags)
{
	struct seg_dentry *src, *dst, *nd = NULL;
	struct seg_inode *ino, *victim = NULL;
	size_t len;
	int rc;

	if (flags & ~(unsigned)(SEG_RENAME_NOREPLACE | SEG_RENAME_EXCHANGE) ||
	    flags == (SEG_RENAME_NOREPLACE | SEG_RENAME_EXCHANGE))
		return -EINVAL;
	/*
	 * lists/ renames rename the segments; between lists/ and elsewhere
	 * they are refused as a move across filesystems, so mv(1) copies
	 * the text instead, which turns text into a list and back.
	 */
	if (dir->lists || newdir->lists) {
		if (!dir->lists || !newdir->lists)
			return seg__is_dir(dir) && seg__is_dir(newdir) ? -EXDEV : -ENOTDIR;
		return seg__lists_rename(ns, name, newname, flags);
	}
	rc = find_entry(ns, dir, name, &src);
	if (rc < 0)
		goto out;
	rc = seg__check_dir_name(newdir, newname, &len);
	if (rc < 0)
		goto out;
	dst = seg__d_find(ns, newdir, newname, len);
	ino = src->inode;
	if (flags & SEG_RENAME_EXCHANGE) {
		rc = dst != NULL ? rename_exchange(src, dst) : -ENOENT;
		goto out;
	}
	rc = 0;
	/* rename(2): renaming a name onto a link to the same inode does nothing. */
	if (dst != NULL && dst->inode == ino)
		goto out;
	rc = -EEXIST;
	if (dst != NULL && (flags & SEG_RENAME_NOREPLACE))
		goto out;
	rc = -EPERM;
	if (ino->lists || (dst != NULL && dst->inode->lists) ||
	    (newdir->lists && dir != newdir))
		goto out;
	rc = -ENOENT;
	if (newdir->nlink == 0)
		goto out;
	if (seg__is_dir(ino)) {
		rc = -EINVAL;
		if (is_below(newdir, ino))
			goto out;
		if (dst != NULL) {
			rc = -ENOTDIR;
			if (!seg__is_dir(dst->inode))
				goto out;
			rc = -ENOTEMPTY;
			if (dst->inode->nentries != 0)
				goto out;
		}
	} else if (dst != NULL && seg__is_dir(dst->inode)) {
		rc = -EISDIR;
		goto out;
	}
	if (dst == NULL) {
		rc = -ENOMEM;
		nd = seg__d_alloc(newname, len);
		if (nd == NULL)
			goto out;
	}

	/* Nothing can fail from here on. */
	if (dst != NULL) {
		/* Repoint the existing entry: the new name never disappears. */
		victim = dst->inode;
		dst->inode = ino;
	} else {
		seg__d_add(ns, newdir, nd, ino);
	}
	seg__d_remove(ns, src);
	reparent(ino, dir, newdir);
	seg__now(&ino->ctime);
	seg__dir_touch(dir);
	seg__dir_touch(newdir);
	if (victim != NULL) {
		if (seg__is_dir(victim)) {
			dir_kill(ns, victim);
		} else {
			victim->nlink--;
			victim->ctime = ino->ctime;
			seg__maybe_free(ns, victim);
		}
	}
	rc = 0;
out:
	return rc;
}

int seg_rename(struct seg_ns *ns, struct seg_inode *dir, const char *name,
	       struct seg_inode *newdir, const char *newname, unsigned flags)
{
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = seg__rename_locked(ns, dir, name, newdir, newname, flags);
	seg__unlock(ns);
	return rc;
}

void seg_forget(struct seg_ns *ns, struct seg_inode *ino, uint64_t n)
{
	pthread_mutex_lock(&ns->lock);
	/* The kernel never forgets more than it was given; clamp anyway. */
	assert(ino->nlookup >= n || ino == ns->root);
	ino->nlookup = ino->nlookup > n ? ino->nlookup - n : 0;
	seg__maybe_free(ns, ino);
	seg__unlock(ns);
}

/* ---- attributes ------------------------------------------------------- */

int seg_getattr(struct seg_ns *ns, struct seg_inode *ino, struct stat *st)
{
	int rc = 0;

	pthread_mutex_lock(&ns->lock);
	if (ino->view)
		rc = seg__view_getattr(ns, ino, st);
	else
		seg__fill_stat(ino, st);
	seg__unlock(ns);
	return rc;
}

int seg__setattr_locked(struct seg_ns *ns, struct seg_inode *ino,
			const struct stat *attr, unsigned mask, struct stat *st)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	int rc = 0;

	if (ino->view)
		return seg__view_setattr(ns, ino, attr, mask, st);
	if (mask & SEG_SET_SIZE) {
		rc = seg__is_dir(ino) ? -EISDIR : seg__resize(ns, ino, attr->st_size);
		if (rc < 0)
			goto out;
	}
	if (mask & SEG_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (mask & SEG_SET_ATIME)
		ts[0] = attr->st_atim;
	if (mask & SEG_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (mask & SEG_SET_MTIME)
		ts[1] = attr->st_mtim;
	if (seg__is_dir(ino)) {
		struct timespec t;

		seg__now(&t);
		if (ts[0].tv_nsec != UTIME_OMIT)
			ino->atime = ts[0].tv_nsec == UTIME_NOW ? t : ts[0];
		if (ts[1].tv_nsec != UTIME_OMIT)
			ino->mtime = ts[1].tv_nsec == UTIME_NOW ? t : ts[1];
	} else if (ts[0].tv_nsec != UTIME_OMIT || ts[1].tv_nsec != UTIME_OMIT) {
		int fd = seg__fd(ns, ino);

		rc = fd < 0 ? fd : futimens(fd, ts) < 0 ? -errno : 0;
		if (rc < 0)
			goto out;
	}
	if (mask & SEG_SET_MODE)
		ino->mode = (ino->mode & S_IFMT) | (attr->st_mode & 07777);
	if (mask & SEG_SET_UID)
		ino->uid = attr->st_uid;
	if (mask & SEG_SET_GID)
		ino->gid = attr->st_gid;
	if (mask & SEG_SET_CTIME)
		ino->ctime = attr->st_ctim;
	else if (mask)
		seg__now(&ino->ctime);
	seg__fill_stat(ino, st);
out:
	return rc;
}

int seg_setattr(struct seg_ns *ns, struct seg_inode *ino,
		const struct stat *attr, unsigned mask, struct stat *st)
{
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = seg__setattr_locked(ns, ino, attr, mask, st);
	seg__unlock(ns);
	return rc;
}

/* ---- open handles ----------------------------------------------------- */

int seg_open(struct seg_ns *ns, struct seg_inode *ino, int flags,
	     seg_attach_fn attach, void *arg, int *backing)
{
	int rc = 0, fd;

	pthread_mutex_lock(&ns->lock);
	if (seg__is_dir(ino)) {
		rc = -EISDIR;
		goto out;
	}
	rc = -EMFILE;
	if (ino->nopen == UINT32_MAX)
		goto out;
	/* A view's text lives in the caller's handle. */
	if (ino->view) {
		ino->nopen++;
		*backing = 0;
		rc = 0;
		goto out;
	}
	/* An open segment keeps its descriptor: seg_inode_fd serves it. */
	fd = seg__fd(ns, ino);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	/*
	 * A data path left attached by a failed open (below) is reused, so an
	 * inode never has two; otherwise attach at the first open.
	 */
	if (ino->backing == 0 && attach != NULL) {
		rc = attach(arg, fd);
		if (rc < 0)
			goto out;
		ino->backing = rc;
	}
	if (flags & O_TRUNC) {
		rc = seg__resize(ns, ino, 0);
		if (rc < 0)
			goto out;
	}
	if (ino->nopen++ == 0) {
		olist_del(ino);
		olist_add(&ns->open, ino);
	}
	*backing = ino->backing;
	rc = 0;
out:
	seg__unlock(ns);
	return rc;
}

void seg_release(struct seg_ns *ns, struct seg_inode *ino, int *detach)
{
	pthread_mutex_lock(&ns->lock);
	assert(ino->nopen > 0);
	*detach = 0;
	if (--ino->nopen == 0) {
		*detach = ino->backing;
		ino->backing = 0;
		if (!ino->view) {
			olist_del(ino);
			olist_add(&ns->idle, ino);
			ino->used = ns->epoch;
			/* What it grew to while open; the tmpfs counts by itself. */
			if (ns->store < 0)
				settle(ns, ino);
		}
		seg__maybe_free(ns, ino);
	}
	seg__unlock(ns);
}

/* ---- directory streams ------------------------------------------------ */

int seg_opendir(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out)
{
	struct seg_dirh *dh;
	int rc = 0;

	pthread_mutex_lock(&ns->lock);
	rc = -ENOTDIR;
	if (!seg__is_dir(dir))
		goto out;
	rc = -ENOMEM;
	dh = seg_calloc(1, sizeof(*dh));
	if (dh == NULL)
		goto out;
	dh->dir = dir;
	list_init(&dh->cursor);
	dir->nopen++;
	*out = dh;
	rc = 0;
out:
	seg__unlock(ns);
	return rc;
}

void seg_releasedir(struct seg_ns *ns, struct seg_dirh *dh)
{
	struct seg_inode *dir;

	if (dh == NULL)
		return;
	pthread_mutex_lock(&ns->lock);
	dir = dh->dir;
	if (dh->linked)
		list_del(&dh->cursor);
	seg_free(dh);
	dir->nopen--;
	seg__maybe_free(ns, dir);
	seg__unlock(ns);
}

/* Emits "." or "..": type and number only, and never a kernel reference. */
static int fill_dot(seg_fill_fn fill, void *arg, const char *name,
		    struct seg_inode *ino, uint64_t next)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino->ino;
	st.st_mode = ino->mode;
	return fill(arg, name, ino, &st, next);
}

int seg_readdir(struct seg_ns *ns, struct seg_dirh *dh, uint64_t off, bool plus,
		seg_fill_fn fill, void *arg)
{
	struct seg_inode *dir = dh->dir;
	/* lists/ shows the root's segments that hold lists, in the root's order. */
	struct seg_inode *walk = dir->lists ? ns->root : dir;
	struct seg_node *n;
	struct stat st;

	pthread_mutex_lock(&ns->lock);
	if (off == 0 && fill_dot(fill, arg, ".", dir, 1))
		goto out;
	if (off <= 1 && fill_dot(fill, arg, "..", dir->parent, 2))
		goto out;
	if (dh->linked && dh->pos == off && off >= FIRST_COOKIE - 1) {
		n = dh->cursor.next;
	} else {
		/* A seek (or the first call): find the first entry after `off`. */
		for (n = walk->entries.next; n != &walk->entries; n = n->next)
			if (n->entry != NULL && n->entry->cookie > off)
				break;
	}
	if (dh->linked)
		list_del(&dh->cursor);
	for (; n != &walk->entries; n = n->next) {
		struct seg_dentry *d = n->entry;
		struct seg_inode *ino;

		if (d == NULL)
			continue;   /* another stream's cursor */
		ino = d->inode;
		if (dir->lists) {
			if (seg__is_dir(ino) || !seg__lists_shows(ns, ino))
				continue;
			/* Views are made by lookup: no reference from here. */
			memset(&st, 0, sizeof(st));
			seg__lists_ino(ino, &st);
			if (fill(arg, d->name, NULL, &st, d->cookie))
				break;
			off = d->cookie;
			continue;
		}
		if (plus) {
			seg__fill_stat(ino, &st);
		} else {
			memset(&st, 0, sizeof(st));
			st.st_ino = ino->ino;
			st.st_mode = ino->mode;
		}
		if (fill(arg, d->name, ino, &st, d->cookie))
			break;
		if (plus)
			ino->nlookup++;
		off = d->cookie;
	}
	/* Park the cursor before the first entry not handed out. */
	list_insert_before(n, &dh->cursor);
	dh->linked = true;
	dh->pos = off < FIRST_COOKIE - 1 ? FIRST_COOKIE - 1 : off;
out:
	seg__unlock(ns);
	return 0;
}

/* ---- capacity --------------------------------------------------------- */

/*
 * Pages held against the size limit, and the limit in pages.  The private
 * tmpfs counts them itself, exactly and in O(1); memfds need settling.
 */
static void usage(struct seg_ns *ns, uint64_t *used, uint64_t *blocks)
{
	struct statfs k;

	if (ns->store >= 0 && fstatfs(ns->store, &k) == 0) {
		*blocks = k.f_blocks;
		*used = k.f_blocks - k.f_bfree;
		return;
	}
	settle_open(ns);
	*blocks = ns->size_limit / PAGE;
	*used = (ns->reserved + PAGE - 1) / PAGE;
}

int seg_statfs(struct seg_ns *ns, struct statvfs *sv)
{
	uint64_t used, blocks;

	pthread_mutex_lock(&ns->lock);
	usage(ns, &used, &blocks);
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = PAGE;
	sv->f_blocks = blocks;
	sv->f_bfree = sv->f_bavail = blocks > used ? blocks - used : 0;
	sv->f_files = ns->inode_limit;
	sv->f_ffree = sv->f_favail = ns->inode_limit > ns->ninodes
				   ? ns->inode_limit - ns->ninodes : 0;
	sv->f_namemax = SEG_NAME_MAX;
	seg__unlock(ns);
	return 0;
}

/* ---- inspection ------------------------------------------------------- */

int seg_inspect(struct seg_ns *ns, struct seg_inode *ino, struct seg_info *info)
{
	memset(info, 0, sizeof(*info));
	/* Views and directories have no backing file: nothing of theirs to show. */
	if (!seg_inode_is_segment(ino))
		return 0;
	pthread_mutex_lock(&ns->lock);
	info->segment = true;
	info->pid = ino->pid;
	info->btime = ino->btime;
	info->nopen = ino->nopen;
	info->attached = ino->backing > 0;
	seg__unlock(ns);
	return 0;
}

int seg_ns_stats(struct seg_ns *ns, struct seg_ns_stats *out)
{
	struct seg_ns_stats s = { 0 };
	uint64_t used, blocks;
	struct stat st;

	pthread_mutex_lock(&ns->lock);
	usage(ns, &used, &blocks);
	for (struct seg_inode *i = ns->inodes.next; i != &ns->inodes; i = i->next) {
		if (!seg_inode_is_segment(i))
			continue;
		s.segments++;
		s.unlinked += i->nlink == 0;
		s.open += i->nopen > 0;
		/* Our own backing file cannot be missing short of a bug. */
		if (backing_stat(i, &st) == 0)
			s.bytes += (uint64_t)st.st_size;
	}
	s.reserved = used * PAGE;
	s.size_limit = ns->size_limit;
	s.inodes = ns->ninodes;
	s.inode_limit = ns->inode_limit;
	seg__unlock(ns);
	*out = s;
	return 0;
}
