/*
 * The segfs namespace: inodes and their lifetimes, the lock, attributes,
 * capacity, inspection and the hook.  See ns.h for the model and the
 * contracts, ns_i.h for how the namespace is cut into files.
 *
 * Layout in memory: every live inode is on ns->inodes (so statistics can
 * walk them and seg_ns_free can release everything) and in ns->by_ino
 * (node ids are inode numbers); names live in the dentry table
 * (core/dcache.h); a segment's backing file is its store_file
 * (core/store.h), embedded in the inode.  What must outlive the process
 * is elsewhere: the names, in the tree of the private tmpfs
 * (core/tree.h), and the counts and attributes, in the region's records
 * (core/region.h).  Every change is made there first, under the lock,
 * then mirrored here: a server that dies between the two leaves the
 * change made, and the next one rebuilds this from there (ns_rebuild.c).
 */
#include "core/ns.h"

#include "core/acl.h"
#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define PAGE 4096ULL

/* ---- locking ---------------------------------------------------------- */

void ns_lock(struct seg_ns *ns)
{
	pthread_mutex_lock(&ns->lock);
}

void ns_unlock(struct seg_ns *ns)
{
	struct seg_inode *dead = ns->dead;
	struct seg_dentry *dd = ns->dead_dentries;
	size_t grow = dc_grow_size(&ns->dc);

	ns->dead = NULL;
	ns->dead_dentries = NULL;
	pthread_mutex_unlock(&ns->lock);
	while (dead != NULL) {
		struct seg_inode *next = dead->dead_next;

		ns_inode_free(ns, dead);
		dead = next;
	}
	while (dd != NULL) {
		struct seg_dentry *next = dd->hnext;

		dc_free(dd);
		dd = next;
	}
	ns_by_ino_grow(ns);
	/* The table's new buckets are allocated here, then swapped in. */
	if (grow != 0) {
		struct seg_dentry **b = seg_calloc(grow, sizeof(*b));

		if (b != NULL) {
			pthread_mutex_lock(&ns->lock);
			b = dc_rehash(&ns->dc, b, grow);
			pthread_mutex_unlock(&ns->lock);
			seg_free(b);
		}
	}
}

/* ---- records ------------------------------------------------------------ */

void ns_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

void ns_set(struct seg_ns *ns, struct seg_inode *i, unsigned word, uint64_t v)
{
	/* A record not yet published is nobody's: no log needed. */
	if (i->w[RI_INO] == 0)
		i->w[word] = v;
	else if (i->w[word] != v)
		rg_set(ns->rg, RG_INODES, i->rec, word, v);
}

void ns_add(struct seg_ns *ns, struct seg_inode *i, unsigned word, int64_t delta)
{
	ns_set(ns, i, word, i->w[word] + (uint64_t)delta);
}

void ns_set_time(struct seg_ns *ns, struct seg_inode *i, unsigned word,
		 const struct timespec *ts)
{
	ns_set(ns, i, word, (uint64_t)ts->tv_sec);
	ns_set(ns, i, word + 1, (uint64_t)ts->tv_nsec);
}

void ns_set_mode(struct seg_ns *ns, struct seg_inode *i, mode_t mode)
{
	ns_set(ns, i, RI_MODE, (ns_mode(i) & S_IFMT) | (mode & 07777));
}

static int timespec_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

/* ---- inodes by number ---------------------------------------------------- */

static size_t by_ino_slot(const struct ns_by_ino *h, uint64_t ino)
{
	uint64_t x = ino * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x ^ (x >> 32)) & (h->nbuckets - 1);
}

struct seg_inode *ns_by_ino_find(const struct seg_ns *ns, uint64_t ino)
{
	const struct ns_by_ino *h = &ns->by_ino;
	struct seg_inode *i;

	for (i = h->buckets[by_ino_slot(h, ino)]; i != NULL; i = i->hnext)
		if (i->ino == ino)
			return i;
	return NULL;
}

void ns_by_ino_add(struct seg_ns *ns, struct seg_inode *i)
{
	struct ns_by_ino *h = &ns->by_ino;
	size_t k = by_ino_slot(h, i->ino);

	i->hnext = h->buckets[k];
	h->buckets[k] = i;
	h->n++;
}

void ns_by_ino_del(struct seg_ns *ns, struct seg_inode *i)
{
	struct ns_by_ino *h = &ns->by_ino;
	struct seg_inode **pp = &h->buckets[by_ino_slot(h, i->ino)];

	while (*pp != NULL && *pp != i)
		pp = &(*pp)->hnext;
	if (*pp != NULL) {
		*pp = i->hnext;
		h->n--;
	}
}

/* Rehashes the table into `n` buckets (a power of two), if it has fewer. */
static void by_ino_resize(struct seg_ns *ns, size_t n)
{
	struct ns_by_ino *h = &ns->by_ino;
	struct seg_inode **b, **old;
	size_t oldn;

	b = seg_calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	pthread_mutex_lock(&ns->lock);
	if (n <= h->nbuckets) {
		pthread_mutex_unlock(&ns->lock);
		seg_free(b);
		return;
	}
	old = h->buckets;
	oldn = h->nbuckets;
	h->buckets = b;
	h->nbuckets = n;
	for (size_t k = 0; k < oldn; k++) {
		struct seg_inode *i = old[k], *next;

		for (; i != NULL; i = next) {
			size_t j = by_ino_slot(h, i->ino);

			next = i->hnext;
			i->hnext = b[j];
			b[j] = i;
		}
	}
	pthread_mutex_unlock(&ns->lock);
	seg_free(old);
}

void ns_mark_xattrs(struct seg_ns *ns, struct seg_inode *i)
{
	if (!(i->w[RI_STATE] & RI_STATE_XATTRS))
		ns_set(ns, i, RI_STATE, i->w[RI_STATE] | RI_STATE_XATTRS);
}

void ns_by_ino_grow(struct seg_ns *ns)
{
	struct ns_by_ino *h = &ns->by_ino;

	if (__atomic_load_n(&h->n, __ATOMIC_RELAXED) >= h->nbuckets)
		by_ino_resize(ns, h->nbuckets * 2);
}

void ns_by_ino_reserve(struct seg_ns *ns, size_t count)
{
	size_t n = 64;

	while (n < count)
		n *= 2;
	by_ino_resize(ns, n);
	/* The names: about one per inode. */
	if (n > ns->dc.nbuckets) {
		struct seg_dentry **b = seg_calloc(n, sizeof(*b));

		if (b != NULL) {
			pthread_mutex_lock(&ns->lock);
			b = dc_rehash(&ns->dc, b, n);
			pthread_mutex_unlock(&ns->lock);
			seg_free(b);
		}
	}
}

/* ---- paths of the tree ---------------------------------------------------- */

int ns_dir_path(const struct seg_inode *dir, char *buf, size_t size)
{
	const struct seg_inode *d;
	size_t len = 0, pos;

	/* Measured first, then written from the end. */
	for (d = dir; d->u.dir.parent != d; d = d->u.dir.parent) {
		if (d->u.dir.name == NULL)
			return -ENOENT;
		len += d->u.dir.name->len + 1;
	}
	if (len == 0) {
		buf[0] = '\0';
		return 0;
	}
	len--;   /* no separator before the first name */
	if (len + 1 > size)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	pos = len;
	for (d = dir; d->u.dir.parent != d; d = d->u.dir.parent) {
		const struct seg_dentry *e = d->u.dir.name;

		pos -= e->len;
		memcpy(buf + pos, e->name, e->len);
		if (pos > 0)
			buf[--pos] = '/';
	}
	return 0;
}

int ns_tree_at(const struct seg_inode *ino, struct tree_at *at, char *path, size_t size)
{
	memset(at, 0, sizeof(*at));
	at->ino = ino->ino;
	if (!S_ISDIR(ns_mode(ino)))
		return 0;
	if (ino->nlink == 0) {
		at->gone = true;
		return 0;
	}
	at->dir = path;
	return ns_dir_path(ino, path, size);
}

/* ---- inodes ----------------------------------------------------------- */

/*
 * A fresh record for `i` (number i->ino, type and bits `mode`), filled in
 * but not published: it becomes the inode's when ns_publish sets its key.
 */
static int record_new(struct seg_ns *ns, struct seg_inode *i, mode_t mode,
		      const struct seg_cred *who, dev_t rdev)
{
	struct timespec now;
	int rc = rg_alloc(ns->rg, RG_INODES, &i->rec);

	if (rc < 0)
		return rc == -ENOSPC ? -ENOSPC : rc;
	i->w = rg_rec(ns->rg, RG_INODES, i->rec);
	memset(i->w, 0, RI_WORDS * sizeof(uint64_t));
	ns_now(&now);
	i->w[RI_MODE] = mode;
	i->w[RI_UID] = who->uid;
	i->w[RI_GID] = who->gid;
	i->w[RI_PID] = S_ISREG(mode) && who->pid > 0 ? (uint64_t)who->pid : 0;
	i->w[RI_RDEV] = rdev;
	/* As tmpfs: a new inode's four times are one moment. */
	for (unsigned w = RI_ATIME; w <= RI_BTIME; w += 2) {
		i->w[w] = (uint64_t)now.tv_sec;
		i->w[w + 1] = (uint64_t)now.tv_nsec;
	}
	return 0;
}

/* Publishes a new inode's record and makes it live.  Under ns->lock. */
void ns_publish(struct seg_ns *ns, struct seg_inode *i)
{
	rg_set(ns->rg, RG_INODES, i->rec, RI_INO, i->ino);
	ns_by_ino_add(ns, i);
	ns_inode_link(ns, i);
}

/* Undoes ns_publish for an inode whose name could not be made.  Under ns->lock. */
void ns_unpublish(struct seg_ns *ns, struct seg_inode *i)
{
	i->all.prev->next = i->all.next;
	i->all.next->prev = i->all.prev;
	ns_by_ino_del(ns, i);
	rg_set(ns->rg, RG_INODES, i->rec, RI_INO, 0);
}

/* The number of an inode made without a tmpfs (memfds). */
static uint64_t next_number(struct seg_ns *ns)
{
	return __atomic_fetch_add(&ns->next_ino, 1, __ATOMIC_RELAXED);
}

int ns_prepare(struct seg_ns *ns, mode_t mode, dev_t rdev, const char *target,
	       const struct seg_cred *who, const char *name, struct seg_inode **out)
{
	struct seg_inode *i = seg_calloc(1, sizeof(*i));
	mode_t type = mode & S_IFMT;
	int rc = 0;

	if (i == NULL)
		return -ENOMEM;
	i->rec = UINT64_MAX;
	i->type = type;
	if (S_ISREG(type)) {
		rc = -pthread_mutex_init(&i->u.seg.lock, NULL);
		if (rc < 0)
			goto fail_mem;
		/* Its stand-in in the tree gives it its number; then its file. */
		if (ns->tree != NULL)
			rc = tree_new_file(ns->tree, &i->ino);
		else
			i->ino = next_number(ns);
		if (rc == 0) {
			rc = store_create(ns->store, &i->u.seg.file, i->ino, name);
			if (rc < 0 && ns->tree != NULL)
				tree_unmake(ns->tree, i->ino, NULL);
		}
		if (rc < 0) {
			pthread_mutex_destroy(&i->u.seg.lock);
			goto fail_mem;
		}
	} else if (S_ISDIR(type)) {
		i->nlink = 2;
		dc_dir_init(&i->u.dir.d);
		i->u.dir.parent = i;
		if (ns->tree != NULL)
			rc = tree_new_dir(ns->tree, i->u.dir.stage, &i->ino);
		else
			i->ino = next_number(ns);
		if (rc < 0)
			goto fail_mem;
	} else if (S_ISLNK(type)) {
		i->u.link.len = strlen(target);
		i->u.link.target = seg_malloc(i->u.link.len + 1);
		if (i->u.link.target == NULL) {
			rc = -ENOMEM;
			goto fail_mem;
		}
		memcpy(i->u.link.target, target, i->u.link.len + 1);
		if (ns->tree != NULL)
			rc = tree_new_symlink(ns->tree, target, &i->ino);
		else
			i->ino = next_number(ns);
		if (rc < 0) {
			seg_free(i->u.link.target);
			goto fail_mem;
		}
	} else {
		if (ns->tree != NULL)
			rc = tree_new_file(ns->tree, &i->ino);
		else
			i->ino = next_number(ns);
		if (rc < 0)
			goto fail_mem;
	}
	rc = record_new(ns, i, mode, who, rdev);
	if (rc < 0)
		goto fail_made;
	if (S_ISREG(type)) {
		uint64_t key;

		if (store_pin_key(ns->store, &i->u.seg.file, &key))
			i->w[RI_PIN] = key + 1;
	}
	*out = i;
	return 0;

fail_made:
	ns_discard(ns, i);
	return rc;
fail_mem:
	seg_free(i);
	return rc == -EMFILE || rc == -ENFILE ? -ENOSPC : rc;
}

void ns_discard(struct seg_ns *ns, struct seg_inode *i)
{
	if (i->rec != UINT64_MAX)
		rg_unreserve(ns->rg, RG_INODES, i->rec);
	if (ns->tree != NULL && i->ino != 0)
		tree_unmake(ns->tree, i->ino, S_ISDIR(i->type) ? i->u.dir.stage : NULL);
	xa_free_all(i->xattrs);
	if (S_ISREG(i->type)) {
		store_destroy(ns->store, &i->u.seg.file);
		pthread_mutex_destroy(&i->u.seg.lock);
	} else if (S_ISLNK(i->type)) {
		seg_free(i->u.link.target);
	}
	seg_free(i);
}

void ns_inherit(struct seg_ns *ns, const struct seg_inode *dir, struct seg_inode *ino)
{
	if (!(ns_mode(dir) & S_ISGID))
		return;
	ns_set(ns, ino, RI_GID, dir->w[RI_GID]);
	if (S_ISDIR(ns_mode(ino)))
		ns_set(ns, ino, RI_MODE, ns_mode(ino) | S_ISGID);
}

void ns_inode_free(struct seg_ns *ns, struct seg_inode *ino)
{
	mode_t type = ino->type;

	xa_free_all(ino->xattrs);
	if (S_ISREG(type)) {
		store_destroy(ns->store, &ino->u.seg.file);
		pthread_mutex_destroy(&ino->u.seg.lock);
	} else if (S_ISLNK(type)) {
		seg_free(ino->u.link.target);
	}
	/* The last name, after the descriptor: the pages go with it. */
	if (ns->tree != NULL && ino != ns->root)
		tree_drop(ns->tree, ino->ino, S_ISDIR(type));
	seg_free(ino);
}

uint64_t ns_ispace_free(const struct seg_ns *ns)
{
	uint64_t total = ns->inode_limit > UINT64_MAX / BOGO_INODE_SIZE ? UINT64_MAX
			 : ns->inode_limit * BOGO_INODE_SIZE;
	uint64_t used = (ns->ninodes + ns->extra_links) * BOGO_INODE_SIZE + ns->xattr_space;

	return total > used ? total - used : 0;
}

bool ns_xattr_charged(const char *name)
{
	return strcmp(name, ACL_XATTR_ACCESS) != 0 && strcmp(name, ACL_XATTR_DEFAULT) != 0;
}

int ns_take_slot(struct seg_ns *ns)
{
	if (ns_ispace_free(ns) < BOGO_INODE_SIZE)
		return -ENOSPC;
	ns->ninodes++;
	return 0;
}

void ns_give_slot(struct seg_ns *ns)
{
	ns->ninodes--;
}

int ns_name_add(struct seg_ns *ns, struct seg_inode *ino)
{
	/* The first name of an O_TMPFILE inode was paid for when it was made. */
	if (ino->nlink > 0) {
		if (ns_ispace_free(ns) < BOGO_INODE_SIZE)
			return -ENOSPC;
		ns->extra_links++;
	}
	ino->nlink++;
	return 0;
}

void ns_name_drop(struct seg_ns *ns, struct seg_inode *ino)
{
	if (ino->nlink > 1)
		ns->extra_links--;
	ino->nlink--;
}

void ns_inode_link(struct seg_ns *ns, struct seg_inode *ino)
{
	ino->all.next = &ns->inodes;
	ino->all.prev = ns->inodes.prev;
	ns->inodes.prev->next = &ino->all;
	ns->inodes.prev = &ino->all;
}

static struct seg_inode *inode_of_link(struct seg_link *l)
{
	return (struct seg_inode *)((char *)l - offsetof(struct seg_inode, all));
}

/* Takes an inode out of the namespace; ns_unlock releases it. */
static void inode_kill(struct seg_ns *ns, struct seg_inode *ino)
{
	ino->all.prev->next = ino->all.next;
	ino->all.next->prev = ino->all.prev;
	ns_by_ino_del(ns, ino);
	ns->ninodes--;
	ns->xattr_space -= xa_space_all(ino->xattrs, ns_xattr_charged);
	/* The record goes now: what is left to do needs only the type. */
	rg_set(ns->rg, RG_INODES, ino->rec, RI_INO, 0);
	rg_free_index(ns->rg, RG_INODES, ino->rec);
	ino->dead_next = ns->dead;
	ns->dead = ino;
}

void ns_maybe_free(struct seg_ns *ns, struct seg_inode *ino)
{
	if (ino == ns->root)
		return;
	if (ns_nlookup(ino) == 0 && ns_nopen(ino) == 0 && ino->nlink == 0)
		inode_kill(ns, ino);
}

void ns_drop_dentry(struct seg_ns *ns, struct seg_dentry *d)
{
	dc_remove(&ns->dc, d);
	d->hnext = ns->dead_dentries;
	ns->dead_dentries = d;
}

void ns_dir_touch(struct seg_ns *ns, struct seg_inode *dir)
{
	struct timespec now;

	ns_now(&now);
	ns_set_time(ns, dir, RI_MTIME, &now);
	ns_set_time(ns, dir, RI_CTIME, &now);
}

void ns_touch_ctime(struct seg_ns *ns, struct seg_inode *ino)
{
	struct timespec now;

	ns_now(&now);
	ns_set_time(ns, ino, RI_CTIME, &now);
}

void ns_changed(struct seg_ns *ns, enum seg_change_kind kind, const struct seg_inode *dir,
		const char *name, size_t len, const struct seg_inode *ino)
{
	struct seg_change c = {
		.kind = kind, .dir = dir, .name = name, .len = len, .ino = ino,
	};

	if (ns->hook != NULL)
		ns->hook(ns->hook_arg, &c);
}

void ns_fill_stat(struct seg_ns *ns, struct seg_inode *ino, struct stat *st)
{
	mode_t mode = ns_mode(ino);
	struct store_stat m;
	struct timespec t;

	memset(st, 0, sizeof(*st));
	/* The root is 1, as on tmpfs; the tmpfs's own root is never shown. */
	st->st_ino = ino == ns->root ? 1 : ino->ino;
	st->st_mode = mode;
	st->st_nlink = ino->nlink;
	st->st_uid = (uid_t)ino->w[RI_UID];
	st->st_gid = (gid_t)ino->w[RI_GID];
	st->st_blksize = 4096;
	st->st_atim = ns_time(ino, RI_ATIME);
	st->st_mtim = ns_time(ino, RI_MTIME);
	st->st_ctim = ns_time(ino, RI_CTIME);
	if (S_ISDIR(mode)) {
		st->st_size = (off_t)(ino->u.dir.d.nentries + 2) * BOGO_DIRENT_SIZE;
		return;
	}
	if (S_ISLNK(mode)) {
		/* As tmpfs: a short target lives in the inode, a long one in a page. */
		st->st_size = (off_t)ino->u.link.len;
		st->st_blocks = ino->u.link.len >= SHORT_SYMLINK_LEN ? PAGE / 512 : 0;
		return;
	}
	if (!S_ISREG(mode)) {
		st->st_rdev = (dev_t)ino->w[RI_RDEV];
		return;
	}
	/*
	 * Our own backing file cannot be missing short of a bug.  Its times
	 * move with the writes and reads that passthrough serves without us;
	 * the record's with what we do.  The later of each is the segment's.
	 */
	if (store_stat(ns->store, &ino->u.seg.file, &m) == 0) {
		st->st_size = m.size;
		st->st_blocks = m.blocks;
		st->st_blksize = m.blksize;
		t = st->st_atim;
		if (timespec_cmp(&m.atime, &t) > 0)
			st->st_atim = m.atime;
		t = st->st_mtim;
		if (timespec_cmp(&m.mtime, &t) > 0)
			st->st_mtim = m.mtime;
		t = st->st_ctim;
		if (timespec_cmp(&m.ctime, &t) > 0)
			st->st_ctim = m.ctime;
	}
}

/* ---- the namespace ---------------------------------------------------- */

/* The inode space tmpfs would have: half of RAM in pages. */
static uint64_t default_inodes(const struct seg_ns_config *cfg, bool memfd)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	uint64_t n = pages > 1 ? (uint64_t)pages / 2 : 1ULL << 19;

	/* A memfd needs a descriptor, and df -i must not lie. */
	if (memfd && cfg->fd_budget != 0 && n > cfg->fd_budget)
		n = cfg->fd_budget;
	return n;
}

/*
 * The parts every namespace has: the lock, the store, the tree (with a
 * tmpfs), the records, the tables.  Fresh, or opened on what a previous
 * server left (`rebuild`).
 */
int ns_alloc(const struct seg_ns_config *cfg, bool rebuild, struct seg_ns **out)
{
	struct store_config scfg = {
		.size_limit = cfg->size_limit, .memfd = cfg->memfd, .fd_budget = cfg->fd_budget,
		.huge = cfg->huge, .tmpfs = cfg->tmpfs > 0 ? cfg->tmpfs : -1,
	};
	struct seg_ns *ns;
	int rc;

	/* A rebuild needs what the previous server kept, all of it. */
	if (rebuild && (cfg->state <= 0 || cfg->rg == NULL ||
			(cfg->tmpfs <= 0 && !(cfg->memfd && cfg->pins != NULL))))
		return -EINVAL;
	ns = seg_calloc(1, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	ns->tmpfs = -1;
	rc = -pthread_mutex_init(&ns->lock, NULL);
	if (rc < 0)
		goto fail_mutex;
	rc = store_new(&scfg, &ns->store);
	if (rc < 0)
		goto fail_store;
	rc = dc_init(&ns->dc);
	if (rc < 0)
		goto fail_dcache;
	ns->by_ino.nbuckets = 64;
	ns->by_ino.buckets = seg_calloc(ns->by_ino.nbuckets, sizeof(*ns->by_ino.buckets));
	rc = -ENOMEM;
	if (ns->by_ino.buckets == NULL)
		goto fail_hash;
	ns->inodes.prev = ns->inodes.next = &ns->inodes;
	ns->next_ino = 2;
	ns->tmpfs = store_tmpfs(ns->store);
	if (cfg->pins != NULL)
		store_set_pins(ns->store, cfg->pins);
	if (cfg->state > 0) {
		rc = tree_open(cfg->state, !rebuild, &ns->tree);
		if (rc < 0)
			goto fail_tree;
	}
	ns->inode_limit = cfg->nr_segments != 0 ? cfg->nr_segments
			  : default_inodes(cfg, ns->tmpfs < 0);
	if (cfg->rg != NULL) {
		ns->rg = cfg->rg;
	} else {
		/* Records in anonymous memory: nothing to keep without a tmpfs. */
		struct rg_params p = { .inodes = ns->inode_limit + 16, .views = 1 << 16,
				     .handles = 1 << 16 };

		rc = rg_create(-1, &p, &ns->rg);
		if (rc < 0)
			goto fail_rg;
		ns->own_rg = true;
	}
	*out = ns;
	return 0;

fail_rg:
	tree_free(ns->tree);
fail_tree:
	seg_free(ns->by_ino.buckets);
fail_hash:
	dc_destroy(&ns->dc);
fail_dcache:
	store_free(ns->store);
fail_store:
	pthread_mutex_destroy(&ns->lock);
fail_mutex:
	seg_free(ns);
	return rc;
}

int seg_ns_new(const struct seg_ns_config *cfg, struct seg_ns **out)
{
	struct seg_cred self = {
		.uid = cfg->root_uid_set ? cfg->root_uid : getuid(),
		.gid = cfg->root_gid_set ? cfg->root_gid : getgid(),
	};
	struct seg_inode *root;
	struct seg_ns *ns;
	int rc = ns_alloc(cfg, false, &ns);

	if (rc < 0)
		return rc;
	root = seg_calloc(1, sizeof(*root));
	rc = -ENOMEM;
	if (root == NULL)
		goto fail;
	root->nlink = 2;
	root->type = S_IFDIR;
	dc_dir_init(&root->u.dir.d);
	root->u.dir.parent = root;
	root->ino = ns->tree != NULL ? tree_root_ino(ns->tree) : 1;
	/* The sticky bit of a 1777 root (a /dev/shm) is enforced by the kernel. */
	rc = record_new(ns, root, S_IFDIR | (cfg->root_mode ? cfg->root_mode & 07777 : 0755),
			&self, 0);
	if (rc < 0) {
		seg_free(root);
		goto fail;
	}
	ns->root = root;
	ns_publish(ns, root);
	ns->ninodes = 1;
	*out = ns;
	return 0;
fail:
	seg_ns_free(ns);
	return rc;
}

int seg_ns_tmpfs(const struct seg_ns *ns)
{
	return ns->tmpfs;
}

struct rg *seg_ns_region(const struct seg_ns *ns)
{
	return ns->rg;
}

struct seg_inode *seg_ns_find(struct seg_ns *ns, uint64_t number)
{
	struct seg_inode *i;

	ns_lock(ns);
	i = ns_by_ino_find(ns, number);
	ns_unlock(ns);
	return i;
}

void seg_ns_free(struct seg_ns *ns)
{
	if (ns == NULL)
		return;
	for (size_t i = 0; i < ns->dc.nbuckets; i++) {
		struct seg_dentry *d = ns->dc.buckets[i], *next;

		for (; d; d = next) {
			next = d->hnext;
			dc_free(d);
		}
	}
	/*
	 * Only memory goes: the tmpfs and the records are the caller's (or
	 * go with the store and the region), and a server that stops for
	 * another to take over must leave them as they are.
	 */
	while (ns->inodes.next != &ns->inodes) {
		struct seg_inode *ino = inode_of_link(ns->inodes.next);

		ns->inodes.next = ino->all.next;
		xa_free_all(ino->xattrs);
		if (S_ISREG(ino->type)) {
			store_forsake(ns->store, &ino->u.seg.file);
			pthread_mutex_destroy(&ino->u.seg.lock);
		} else if (S_ISLNK(ino->type)) {
			seg_free(ino->u.link.target);
		}
		seg_free(ino);
	}
	/* ns_unlock leaves nothing on the dead lists. */
	dc_destroy(&ns->dc);
	seg_free(ns->by_ino.buckets);
	tree_free(ns->tree);
	if (ns->own_rg)
		rg_close(ns->rg);
	store_free(ns->store);
	pthread_mutex_destroy(&ns->lock);
	seg_free(ns);
}

const char *seg_ns_huge(const struct seg_ns *ns, int *why)
{
	return store_huge(ns->store, why);
}

enum seg_backing seg_ns_backing(const struct seg_ns *ns, int *why)
{
	return store_backing(ns->store, why);
}

struct seg_inode *seg_ns_root(struct seg_ns *ns)
{
	return ns->root;
}

uint64_t seg_ns_inode_count(struct seg_ns *ns)
{
	uint64_t n;

	ns_lock(ns);
	n = ns->ninodes;
	ns_unlock(ns);
	return n;
}

void seg_ns_set_data_path(struct seg_ns *ns, seg_attach_fn attach, seg_detach_fn detach,
			  void *arg)
{
	ns->attach = attach;
	ns->detach = detach;
	ns->data_arg = arg;
}

void seg_ns_set_hook(struct seg_ns *ns, seg_hook_fn fn, void *arg)
{
	ns->hook_arg = arg;
	ns->hook = fn;
}

/* ---- what an inode is ------------------------------------------------- */

mode_t seg_inode_type(const struct seg_inode *ino)
{
	return ns_mode(ino) & S_IFMT;
}

uint64_t seg_inode_number(const struct seg_inode *ino)
{
	return ino->ino;
}

uint64_t seg_inode_record(const struct seg_inode *ino)
{
	return ino->rec;
}

int seg_inode_backing(struct seg_ns *ns, const struct seg_inode *ino)
{
	int64_t id;

	ns_lock(ns);
	id = (int64_t)ino->w[RI_BACKING];
	ns_unlock(ns);
	return id > 0 ? (int)id : 0;
}

bool seg_inode_is_dir(const struct seg_inode *ino)
{
	return S_ISDIR(ns_mode(ino));
}

bool seg_inode_is_segment(const struct seg_inode *ino)
{
	return S_ISREG(ns_mode(ino));
}

const char *seg_inode_target(const struct seg_inode *ino)
{
	return S_ISLNK(ns_mode(ino)) ? ino->u.link.target : NULL;
}

struct timespec seg_inode_btime(const struct seg_inode *ino)
{
	return ns_time(ino, RI_BTIME);
}

int seg_inode_fd(const struct seg_inode *ino)
{
	return S_ISREG(ns_mode(ino)) ? store_fd(&ino->u.seg.file) : -1;
}

void seg_inode_set_private(struct seg_inode *ino, const void *priv)
{
	ino->priv = priv;
}

const void *seg_inode_private(const struct seg_inode *ino)
{
	return ino->priv;
}

void seg_inode_fix(struct seg_ns *ns, struct seg_inode *ino)
{
	ns_lock(ns);
	ns_set(ns, ino, RI_STATE, ino->w[RI_STATE] | RI_STATE_FIXED);
	ns_unlock(ns);
}

/* ---- attributes ------------------------------------------------------- */

void seg_forget(struct seg_ns *ns, struct seg_inode *ino, uint64_t n)
{
	ns_lock(ns);
	/* The kernel never forgets more than it was given; clamp anyway. */
	assert(ns_nlookup(ino) >= n || ino == ns->root);
	ns_set(ns, ino, RI_NLOOKUP, ns_nlookup(ino) > n ? ns_nlookup(ino) - n : 0);
	ns_maybe_free(ns, ino);
	ns_unlock(ns);
}

int seg_getattr(struct seg_ns *ns, struct seg_inode *ino, struct stat *st)
{
	ns_lock(ns);
	ns_fill_stat(ns, ino, st);
	ns_unlock(ns);
	return 0;
}

/*
 * What the inode flags allow of a setattr (ns.h: inode flags): what
 * notify_change, vfs_truncate and do_ftruncate refuse with -EPERM.
 */
static int may_setattr(const struct seg_inode *ino, unsigned mask)
{
	/* Times given, not "now" (the kernel sends both bits for "now"). */
	bool times_set = ((mask & SEG_SET_ATIME) && !(mask & SEG_SET_ATIME_NOW)) ||
			 ((mask & SEG_SET_MTIME) && !(mask & SEG_SET_MTIME_NOW));
	unsigned owner = SEG_SET_MODE | SEG_SET_UID | SEG_SET_GID;

	if (times_set)
		owner |= SEG_SET_ATIME | SEG_SET_MTIME;
	if (ns_flags(ino) & SEG_FL_IMMUTABLE) {
		if (mask & (owner | SEG_SET_ATIME | SEG_SET_MTIME | SEG_SET_ATIME_NOW |
			    SEG_SET_MTIME_NOW))
			return -EPERM;
		/* An open descriptor may still truncate, as on tmpfs. */
		if ((mask & SEG_SET_SIZE) && !(mask & SEG_SET_FH))
			return -EPERM;
	}
	if ((ns_flags(ino) & SEG_FL_APPEND) && (mask & (owner | SEG_SET_SIZE)))
		return -EPERM;
	return 0;
}

/* The size and times of a segment, under its own lock, outside ours. */
static int set_data_attrs(struct seg_ns *ns, struct seg_inode *ino, const struct stat *attr,
			  unsigned mask, const struct timespec ts[2])
{
	struct store_file *f = &ino->u.seg.file;
	int fd, rc;

	rc = store_hold(ns->store, f, &fd);
	if (rc < 0)
		return rc;
	if (mask & SEG_SET_SIZE)
		rc = store_resize(ns->store, f, attr->st_size);
	if (rc == 0 && (ts[0].tv_nsec != UTIME_OMIT || ts[1].tv_nsec != UTIME_OMIT))
		rc = store_utimens(ns->store, f, ts);
	store_drop(ns->store, f);
	return rc;
}

/* chmod's part (posix_acl_chmod): the access ACL follows the new mode. */
static int acl_follow_mode(struct seg_ns *ns, struct seg_inode *ino)
{
	size_t size;
	uint8_t *v = xa_value(ino->xattrs, ACL_XATTR_ACCESS, &size);

	if (v == NULL)
		return 0;
	acl_chmod(v, size, ns_mode(ino));
	return ns_mirror_xattr(ns, ino, ACL_XATTR_ACCESS, v, size);
}

/* Keeps a segment's reservation across a restart (core/store.h). */
void ns_keep_reserved(struct seg_ns *ns, struct seg_inode *ino)
{
	uint64_t r = store_reserved(ns->store, &ino->u.seg.file);

	ns_lock(ns);
	ns_set(ns, ino, RI_RESERVED, r);
	ns_unlock(ns);
}

int seg_setattr(struct seg_ns *ns, struct seg_inode *ino,
		const struct stat *attr, unsigned mask, struct stat *st)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	bool seg = S_ISREG(ns_mode(ino));
	struct seg_xattr *caps = NULL;
	struct timespec now;
	mode_t was, mode;
	int rc = 0;

	if ((mask & SEG_SET_SIZE) && !seg)
		return S_ISDIR(ns_mode(ino)) ? -EISDIR : -EINVAL;
	if (mask & SEG_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (mask & SEG_SET_ATIME)
		ts[0] = attr->st_atim;
	if (mask & SEG_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (mask & SEG_SET_MTIME)
		ts[1] = attr->st_mtim;
	if (seg)
		pthread_mutex_lock(&ino->u.seg.lock);
	ns_lock(ns);
	rc = may_setattr(ino, mask);
	ns_unlock(ns);
	if (rc < 0)
		goto out;
	if (seg && (mask & SEG_SET_SIZE || ts[0].tv_nsec != UTIME_OMIT ||
		    ts[1].tv_nsec != UTIME_OMIT)) {
		rc = set_data_attrs(ns, ino, attr, mask, ts);
		if (rc < 0)
			goto out;
		if (mask & SEG_SET_SIZE)
			ns_keep_reserved(ns, ino);
	}
	ns_lock(ns);
	/* Killing file capabilities is the tree's first, as every change. */
	if ((mask & SEG_SET_KILL_SUIDGID) &&
	    xa_value(ino->xattrs, "security.capability", &(size_t){ 0 }) != NULL) {
		rc = ns_unmirror_xattr(ns, ino, "security.capability");
		if (rc < 0) {
			ns_unlock(ns);
			goto out;
		}
	}
	was = ns_mode(ino);
	ns_now(&now);
	if (ts[0].tv_nsec != UTIME_OMIT)
		ns_set_time(ns, ino, RI_ATIME, ts[0].tv_nsec == UTIME_NOW ? &now : &ts[0]);
	if (ts[1].tv_nsec != UTIME_OMIT)
		ns_set_time(ns, ino, RI_MTIME, ts[1].tv_nsec == UTIME_NOW ? &now : &ts[1]);
	mode = ns_mode(ino);
	if (mask & SEG_SET_MODE)
		mode = (mode & S_IFMT) | (attr->st_mode & 07777);
	if (mask & SEG_SET_UID)
		ns_set(ns, ino, RI_UID, attr->st_uid);
	if (mask & SEG_SET_GID)
		ns_set(ns, ino, RI_GID, attr->st_gid);
	/* ns.h: SEG_SET_KILL_SUIDGID. */
	if (mask & SEG_SET_KILL_SUIDGID) {
		mode &= ~(mode_t)S_ISUID;
		if ((mode & S_IXGRP) || (mask & SEG_SET_KILL_SGID))
			mode &= ~(mode_t)S_ISGID;
		if (xa_remove(&ino->xattrs, "security.capability", &caps) == 0) {
			ns->xattr_space -= xa_size(caps);
			was = ~mode;   /* a change: ctime moves */
		}
	}
	ns_set(ns, ino, RI_MODE, mode);
	if (mask & SEG_SET_MODE)
		rc = acl_follow_mode(ns, ino);
	if (mask & SEG_SET_CTIME)
		ns_set_time(ns, ino, RI_CTIME, &attr->st_ctim);
	else if ((mask & ~(unsigned)SEG_SET_KILL_SUIDGID) || mode != was)
		ns_set_time(ns, ino, RI_CTIME, &now);   /* killing nothing changes nothing */
	if (mask & SEG_SET_SIZE)
		ns_changed(ns, SEG_CHANGE_SIZE, NULL, NULL, 0, ino);
	ns_fill_stat(ns, ino, st);
	ns_unlock(ns);
	xa_free(caps);
out:
	if (seg)
		pthread_mutex_unlock(&ino->u.seg.lock);
	return rc;
}

int seg_get_flags(struct seg_ns *ns, struct seg_inode *ino, unsigned *flags)
{
	ns_lock(ns);
	*flags = ns_flags(ino);
	ns_unlock(ns);
	return 0;
}

int seg_set_flags(struct seg_ns *ns, struct seg_inode *ino, unsigned flags)
{
	if (flags & ~(unsigned)SEG_FL_ALL)
		return -EOPNOTSUPP;
	ns_lock(ns);
	ns_set(ns, ino, RI_FLAGS, flags);
	ns_touch_ctime(ns, ino);
	ns_unlock(ns);
	return 0;
}

void seg_set_origin(struct seg_ns *ns, struct seg_inode *ino, pid_t pid,
		    const struct timespec *btime)
{
	ns_lock(ns);
	if (S_ISREG(ns_mode(ino)) && ino->nlink == 0) {
		ns_set(ns, ino, RI_PID, pid > 0 ? (uint64_t)pid : 0);
		ns_set_time(ns, ino, RI_BTIME, btime);
	}
	ns_unlock(ns);
}

/* ---- capacity and inspection ------------------------------------------ */

int seg_statfs(struct seg_ns *ns, struct statvfs *sv)
{
	uint64_t used, blocks;

	store_usage(ns->store, &used, &blocks);
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = PAGE;
	sv->f_blocks = blocks;
	sv->f_bfree = sv->f_bavail = blocks > used ? blocks - used : 0;
	sv->f_namemax = SEG_NAME_MAX;
	ns_lock(ns);
	sv->f_files = ns->inode_limit;
	sv->f_ffree = sv->f_favail = ns_ispace_free(ns) / BOGO_INODE_SIZE;
	ns_unlock(ns);
	return 0;
}

int seg_inspect(struct seg_ns *ns, struct seg_inode *ino, struct seg_info *info)
{
	memset(info, 0, sizeof(*info));
	/* Directories have no backing file: nothing of theirs to show. */
	if (!S_ISREG(ns_mode(ino)))
		return 0;
	ns_lock(ns);
	info->segment = true;
	info->pid = (pid_t)ino->w[RI_PID];
	info->btime = ns_time(ino, RI_BTIME);
	info->nopen = (uint32_t)ns_nopen(ino);
	info->attached = (int64_t)ino->w[RI_BACKING] > 0;   /* not the fallback (-1) */
	ns_unlock(ns);
	return 0;
}

int seg_ns_stats(struct seg_ns *ns, struct seg_ns_stats *out)
{
	struct seg_ns_stats s = { 0 };
	uint64_t used, blocks;
	struct store_stat m;

	store_usage(ns->store, &used, &blocks);
	ns_lock(ns);
	for (struct seg_link *l = ns->inodes.next; l != &ns->inodes; l = l->next) {
		struct seg_inode *i = inode_of_link(l);

		if (!S_ISREG(ns_mode(i)))
			continue;
		s.segments++;
		s.unlinked += i->nlink == 0;
		s.open += ns_nopen(i) > 0;
		/* Our own backing file cannot be missing short of a bug. */
		if (store_stat(ns->store, &i->u.seg.file, &m) == 0)
			s.bytes += (uint64_t)m.size;
	}
	s.inodes = ns->ninodes;
	ns_unlock(ns);
	s.reserved = used * PAGE;
	s.size_limit = store_size_limit(ns->store);
	s.inode_limit = ns->inode_limit;
	*out = s;
	return 0;
}
