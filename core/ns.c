/*
 * The segfs namespace: inodes and their lifetimes, the lock, attributes,
 * capacity, inspection and the hook.  See ns.h for the model and the
 * contracts, ns_i.h for how the namespace is cut into files.
 *
 * Layout in memory: every live inode is on ns->inodes (so statistics can
 * walk them and seg_ns_free can release everything); names live in the
 * dentry table (core/dcache.h); a segment's backing file is its
 * store_file (core/store.h), embedded in the inode.
 */
#include "core/ns.h"

#include "core/acl.h"
#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
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

/* ---- inodes ----------------------------------------------------------- */

void ns_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static int timespec_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

static struct seg_inode *inode_alloc(uint64_t num, mode_t mode, const struct seg_cred *who)
{
	struct seg_inode *ino = seg_calloc(1, sizeof(*ino));

	if (ino == NULL)
		return NULL;
	ino->ino = num;
	ino->mode = mode;
	ino->uid = who->uid;
	ino->gid = who->gid;
	ns_now(&ino->ctime);
	ino->atime = ino->mtime = ino->btime = ino->ctime;
	return ino;
}

struct seg_inode *ns_new_dir(uint64_t num, mode_t mode, const struct seg_cred *who)
{
	struct seg_inode *d = inode_alloc(num, S_IFDIR | (mode & 07777), who);

	if (d == NULL)
		return NULL;
	d->nlink = 2;
	dc_dir_init(&d->u.dir.d);
	d->u.dir.parent = d;
	return d;
}

struct seg_inode *ns_new_node(mode_t mode, dev_t rdev, const char *target,
			      const struct seg_cred *who)
{
	struct seg_inode *ino = inode_alloc(0, mode, who);

	if (ino == NULL)
		return NULL;
	if (S_ISLNK(mode)) {
		ino->u.link.len = strlen(target);
		ino->u.link.target = seg_malloc(ino->u.link.len + 1);
		if (ino->u.link.target == NULL) {
			seg_free(ino);
			return NULL;
		}
		memcpy(ino->u.link.target, target, ino->u.link.len + 1);
	} else {
		ino->u.rdev = rdev;
	}
	return ino;
}

void ns_inherit(const struct seg_inode *dir, struct seg_inode *ino)
{
	if (!(dir->mode & S_ISGID))
		return;
	ino->gid = dir->gid;
	if (S_ISDIR(ino->mode))
		ino->mode |= S_ISGID;
}

int ns_new_segment(struct seg_ns *ns, uint64_t num, mode_t mode, const struct seg_cred *who,
		   const char *name, struct seg_inode **out)
{
	struct seg_inode *ino = inode_alloc(num, S_IFREG | (mode & 07777), who);
	int rc;

	if (ino == NULL)
		return -ENOMEM;
	rc = -pthread_mutex_init(&ino->u.seg.lock, NULL);
	if (rc < 0)
		goto fail_mutex;
	rc = store_create(ns->store, &ino->u.seg.file, num, name);
	if (rc < 0)
		goto fail_store;
	ino->u.seg.pid = who->pid;
	*out = ino;
	return 0;

fail_store:
	pthread_mutex_destroy(&ino->u.seg.lock);
fail_mutex:
	seg_free(ino);
	return rc;
}

void ns_inode_free(struct seg_ns *ns, struct seg_inode *ino)
{
	xa_free_all(ino->xattrs);
	if (S_ISREG(ino->mode)) {
		store_destroy(ns->store, &ino->u.seg.file);
		pthread_mutex_destroy(&ino->u.seg.lock);
	} else if (S_ISLNK(ino->mode)) {
		seg_free(ino->u.link.target);
	}
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

int ns_take_slot(struct seg_ns *ns, uint64_t *num)
{
	if (ns_ispace_free(ns) < BOGO_INODE_SIZE)
		return -ENOSPC;
	ns->ninodes++;
	*num = ns->next_ino++;
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
	ns->ninodes--;
	ns->xattr_space -= xa_space_all(ino->xattrs, ns_xattr_charged);
	ino->dead_next = ns->dead;
	ns->dead = ino;
}

void ns_maybe_free(struct seg_ns *ns, struct seg_inode *ino)
{
	if (ino == ns->root)
		return;
	if (ino->nlookup == 0 && ino->nopen == 0 && ino->nlink == 0)
		inode_kill(ns, ino);
}

void ns_drop_dentry(struct seg_ns *ns, struct seg_dentry *d)
{
	dc_remove(&ns->dc, d);
	d->hnext = ns->dead_dentries;
	ns->dead_dentries = d;
}

void ns_dir_touch(struct seg_inode *dir)
{
	ns_now(&dir->mtime);
	dir->ctime = dir->mtime;
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
	struct store_stat m;

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
	if (S_ISDIR(ino->mode)) {
		st->st_size = (off_t)(ino->u.dir.d.nentries + 2) * BOGO_DIRENT_SIZE;
		return;
	}
	if (S_ISLNK(ino->mode)) {
		/* As tmpfs: a short target lives in the inode, a long one in a page. */
		st->st_size = (off_t)ino->u.link.len;
		st->st_blocks = ino->u.link.len >= SHORT_SYMLINK_LEN ? PAGE / 512 : 0;
		return;
	}
	if (!S_ISREG(ino->mode)) {
		st->st_rdev = ino->u.rdev;
		return;
	}
	/* Our own backing file cannot be missing short of a bug. */
	if (store_stat(ns->store, &ino->u.seg.file, &m) == 0) {
		st->st_size = m.size;
		st->st_blocks = m.blocks;
		st->st_atim = m.atime;
		st->st_mtim = m.mtime;
		if (timespec_cmp(&m.ctime, &ino->ctime) > 0)
			st->st_ctim = m.ctime;
	}
}

/* ---- the namespace ---------------------------------------------------- */

int seg_ns_new(const struct seg_ns_config *cfg, struct seg_ns **out)
{
	struct store_config scfg = {
		.size_limit = cfg->size_limit, .memfd = cfg->memfd, .fd_budget = cfg->fd_budget,
		.huge = cfg->huge,
	};
	struct seg_cred self = { .uid = getuid(), .gid = getgid() };
	long pages = sysconf(_SC_PHYS_PAGES);
	struct seg_ns *ns;
	int rc;

	ns = seg_calloc(1, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	rc = -pthread_mutex_init(&ns->lock, NULL);
	if (rc < 0)
		goto fail_mutex;
	rc = store_new(&scfg, &ns->store);
	if (rc < 0)
		goto fail_store;
	rc = dc_init(&ns->dc);
	if (rc < 0)
		goto fail_dcache;
	ns->inodes.prev = ns->inodes.next = &ns->inodes;
	ns->next_ino = 1;
	ns->inode_limit = cfg->nr_segments;
	if (ns->inode_limit == 0) {
		/* As tmpfs; a memfd needs a descriptor, and df -i must not lie. */
		ns->inode_limit = pages > 1 ? (uint64_t)pages / 2 : 1ULL << 19;
		if (store_backing(ns->store, NULL) == SEG_BACKING_MEMFD && cfg->fd_budget != 0 &&
		    ns->inode_limit > cfg->fd_budget)
			ns->inode_limit = cfg->fd_budget;
	}
	/* The sticky bit of a 1777 root (a /dev/shm) is enforced by the kernel. */
	rc = -ENOMEM;
	ns->root = ns_new_dir(ns->next_ino++, cfg->root_mode ? cfg->root_mode : 0755, &self);
	if (ns->root == NULL)
		goto fail_root;
	ns_inode_link(ns, ns->root);
	ns->ninodes = 1;
	*out = ns;
	return 0;

fail_root:
	dc_destroy(&ns->dc);
fail_dcache:
	store_free(ns->store);
fail_store:
	pthread_mutex_destroy(&ns->lock);
fail_mutex:
	seg_free(ns);
	return rc;
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
	while (ns->inodes.next != &ns->inodes) {
		struct seg_inode *ino = inode_of_link(ns->inodes.next);

		ns->inodes.next = ino->all.next;
		ns_inode_free(ns, ino);
	}
	/* ns_unlock leaves nothing on the dead lists. */
	dc_destroy(&ns->dc);
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
	return ino->mode & S_IFMT;
}

uint64_t seg_inode_number(const struct seg_inode *ino)
{
	return ino->ino;
}

bool seg_inode_is_dir(const struct seg_inode *ino)
{
	return S_ISDIR(ino->mode);
}

bool seg_inode_is_segment(const struct seg_inode *ino)
{
	return S_ISREG(ino->mode);
}

const char *seg_inode_target(const struct seg_inode *ino)
{
	return S_ISLNK(ino->mode) ? ino->u.link.target : NULL;
}

struct timespec seg_inode_btime(const struct seg_inode *ino)
{
	return ino->btime;
}

int seg_inode_fd(const struct seg_inode *ino)
{
	return S_ISREG(ino->mode) ? store_fd(&ino->u.seg.file) : -1;
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
	ino->fixed = true;
	ns_unlock(ns);
}

/* ---- attributes ------------------------------------------------------- */

void seg_forget(struct seg_ns *ns, struct seg_inode *ino, uint64_t n)
{
	ns_lock(ns);
	/* The kernel never forgets more than it was given; clamp anyway. */
	assert(ino->nlookup >= n || ino == ns->root);
	ino->nlookup = ino->nlookup > n ? ino->nlookup - n : 0;
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
	if (ino->flags & SEG_FL_IMMUTABLE) {
		if (mask & (owner | SEG_SET_ATIME | SEG_SET_MTIME | SEG_SET_ATIME_NOW |
			    SEG_SET_MTIME_NOW))
			return -EPERM;
		/* An open descriptor may still truncate, as on tmpfs. */
		if ((mask & SEG_SET_SIZE) && !(mask & SEG_SET_FH))
			return -EPERM;
	}
	if ((ino->flags & SEG_FL_APPEND) && (mask & (owner | SEG_SET_SIZE)))
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
static void acl_follow_mode(struct seg_inode *ino)
{
	size_t size;
	uint8_t *v = xa_value(ino->xattrs, ACL_XATTR_ACCESS, &size);

	if (v != NULL)
		acl_chmod(v, size, ino->mode);
}

int seg_setattr(struct seg_ns *ns, struct seg_inode *ino,
		const struct stat *attr, unsigned mask, struct stat *st)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	bool seg = S_ISREG(ino->mode);
	struct seg_xattr *caps = NULL;
	mode_t was;
	int rc = 0;

	if ((mask & SEG_SET_SIZE) && !seg)
		return S_ISDIR(ino->mode) ? -EISDIR : -EINVAL;
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
	}
	ns_lock(ns);
	was = ino->mode;
	if (!seg) {
		struct timespec t;

		ns_now(&t);
		if (ts[0].tv_nsec != UTIME_OMIT)
			ino->atime = ts[0].tv_nsec == UTIME_NOW ? t : ts[0];
		if (ts[1].tv_nsec != UTIME_OMIT)
			ino->mtime = ts[1].tv_nsec == UTIME_NOW ? t : ts[1];
	}
	if (mask & SEG_SET_MODE) {
		ino->mode = (ino->mode & S_IFMT) | (attr->st_mode & 07777);
		acl_follow_mode(ino);
	}
	if (mask & SEG_SET_UID)
		ino->uid = attr->st_uid;
	if (mask & SEG_SET_GID)
		ino->gid = attr->st_gid;
	/* ns.h: SEG_SET_KILL_SUIDGID. */
	if (mask & SEG_SET_KILL_SUIDGID) {
		ino->mode &= ~(mode_t)S_ISUID;
		if ((ino->mode & S_IXGRP) || (mask & SEG_SET_KILL_SGID))
			ino->mode &= ~(mode_t)S_ISGID;
		if (xa_remove(&ino->xattrs, "security.capability", &caps) == 0) {
			ns->xattr_space -= xa_size(caps);
			was = ~ino->mode;   /* a change: ctime moves */
		}
	}
	if (mask & SEG_SET_CTIME)
		ino->ctime = attr->st_ctim;
	else if ((mask & ~(unsigned)SEG_SET_KILL_SUIDGID) || ino->mode != was)
		ns_now(&ino->ctime);   /* killing nothing changes nothing */
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
	*flags = ino->flags;
	ns_unlock(ns);
	return 0;
}

int seg_set_flags(struct seg_ns *ns, struct seg_inode *ino, unsigned flags)
{
	if (flags & ~(unsigned)SEG_FL_ALL)
		return -EOPNOTSUPP;
	ns_lock(ns);
	ino->flags = flags;
	ns_now(&ino->ctime);
	ns_unlock(ns);
	return 0;
}

void seg_set_origin(struct seg_ns *ns, struct seg_inode *ino, pid_t pid,
		    const struct timespec *btime)
{
	ns_lock(ns);
	if (S_ISREG(ino->mode) && ino->nlink == 0) {
		ino->u.seg.pid = pid;
		ino->btime = *btime;
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
	if (!S_ISREG(ino->mode))
		return 0;
	ns_lock(ns);
	info->segment = true;
	info->pid = ino->u.seg.pid;
	info->btime = ino->btime;
	info->nopen = ino->nopen;
	info->attached = ino->u.seg.backing > 0;   /* not the fallback (-1) */
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

		if (!S_ISREG(i->mode))
			continue;
		s.segments++;
		s.unlinked += i->nlink == 0;
		s.open += i->nopen > 0;
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
