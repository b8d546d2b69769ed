/*
 * The backing store.  See store.h for what it keeps and its lock.
 *
 * Lists: every file with a descriptor is on exactly one of st->idle (not
 * held; least recently used first, the order eviction takes them in) and
 * st->busy (held).  An evicted file is on neither.
 */
#include "core/store.h"

#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#define PAGE 4096ULL

/*
 * memfd names are limited to 249 bytes ("memfd:" makes 255); the name is
 * only shown in /proc, so a longer one is cut.
 */
#define MEMFD_NAME_MAX 249

struct seg_store {
	pthread_mutex_t lock;
	/* Set at creation, then read-only. */
	int tmpfs;                 /* root of the private tmpfs, or -1: memfds */
	struct store_pins pins;    /* pin holder; pins.pin NULL: none */
	int tmpfs_err;             /* memfds: 0 if asked for, else why not the tmpfs */
	const char *huge;          /* the tmpfs's huge=, one of huge_values */
	int huge_err;              /* why not the huge= asked for, or 0 */
	uint64_t size_limit;
	uint64_t fd_budget;        /* 0: none */
	/* Protected by lock. */
	struct store_file idle;    /* list heads */
	struct store_file busy;
	uint64_t nfds;             /* descriptors of files held open */
	uint64_t reserved;         /* the sum of the files' reservations */
};

/* ---- lists ------------------------------------------------------------ */

static void list_init(struct store_file *head)
{
	head->prev = head->next = head;
}

static void list_add_tail(struct store_file *head, struct store_file *f)
{
	f->next = head;
	f->prev = head->prev;
	head->prev->next = f;
	head->prev = f;
}

static void list_del(struct store_file *f)
{
	f->prev->next = f->next;
	f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

static uint64_t page_up(uint64_t n)
{
	return n > UINT64_MAX - (PAGE - 1) ? UINT64_MAX : (n + PAGE - 1) & ~(PAGE - 1);
}

/* ---- the private tmpfs ------------------------------------------------ */

/*
 * Makes the private tmpfs and returns its root in *out.  size= is the
 * limit rounded down to pages (tmpfs would round up, and 0 would mean no
 * limit at all, so at least one page).  nr_inodes=0 leaves counting inodes
 * to the namespace, which enforces nr_segments at every create.  huge=, if
 * given and refused, is left out and *huge_err says why.
 */
static int tmpfs_open(uint64_t size_limit, const char *huge, int *huge_err, int *out)
{
	char size[24];
	uint64_t pages = size_limit / PAGE;
	int fsfd, mnt, rc;

	*huge_err = 0;
	fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return -errno;
	snprintf(size, sizeof(size), "%llu",
		 (unsigned long long)((pages > 0 ? pages : 1) * PAGE));
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "nr_inodes", "0", 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0)
		goto fail;
	/* Without CONFIG_TRANSPARENT_HUGEPAGE tmpfs knows no huge= at all. */
	if (huge != NULL && fsconfig(fsfd, FSCONFIG_SET_STRING, "huge", huge, 0) < 0)
		*huge_err = -errno;
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
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

/* A file's name in the tmpfs: its id, never reused. */
static void file_name(const struct store_file *f, char name[24])
{
	snprintf(name, 24, "%llu", (unsigned long long)f->id);
}

/* What tmpfs's huge= takes ("deny" and "force" are shmem_enabled's only). */
static const char *const huge_values[] = { "never", "always", "within_size", "advise" };

static const char *huge_value(const char *s)
{
	for (size_t i = 0; i < sizeof(huge_values) / sizeof(huge_values[0]); i++)
		if (strcmp(s, huge_values[i]) == 0)
			return huge_values[i];
	return NULL;
}

int store_new(const struct store_config *cfg, struct seg_store **out)
{
	struct seg_store *st;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	const char *huge = cfg->huge != NULL ? huge_value(cfg->huge) : NULL;
	int rc;

	if (cfg->huge != NULL && huge == NULL)
		return -EINVAL;
	st = seg_calloc(1, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	rc = -pthread_mutex_init(&st->lock, NULL);
	if (rc < 0) {
		seg_free(st);
		return rc;
	}
	/* tmpfs's default: half of RAM. */
	if (pages < 1 || psize < 1)
		pages = 1L << 20, psize = 4096;
	st->size_limit = cfg->size_limit ? cfg->size_limit
					 : (uint64_t)pages * (uint64_t)psize / 2;
	st->fd_budget = cfg->fd_budget;
	st->tmpfs = -1;
	if (cfg->tmpfs > 0)
		st->tmpfs = cfg->tmpfs;
	else
		st->tmpfs_err = cfg->memfd ? 0 : tmpfs_open(st->size_limit, huge, &st->huge_err,
							      &st->tmpfs);
	st->huge = huge == NULL || st->huge_err != 0 ? huge_values[0] : huge;
	list_init(&st->idle);
	list_init(&st->busy);
	*out = st;
	return 0;
}

void store_free(struct seg_store *st)
{
	if (st == NULL)
		return;
	if (st->tmpfs >= 0)
		close(st->tmpfs);
	pthread_mutex_destroy(&st->lock);
	seg_free(st);
}

int store_tmpfs(const struct seg_store *st)
{
	return st->tmpfs;
}

void store_set_pins(struct seg_store *st, const struct store_pins *pins)
{
	st->pins = *pins;
}

const char *store_huge(const struct seg_store *st, int *why)
{
	if (why != NULL)
		*why = st->tmpfs >= 0 ? st->huge_err : 0;
	return st->tmpfs >= 0 ? st->huge : NULL;
}

enum seg_backing store_backing(const struct seg_store *st, int *why)
{
	if (why != NULL)
		*why = st->tmpfs >= 0 ? 0 : st->tmpfs_err;
	return st->tmpfs >= 0 ? SEG_BACKING_TMPFS : SEG_BACKING_MEMFD;
}

uint64_t store_size_limit(const struct seg_store *st)
{
	return st->size_limit;
}

uint64_t store_nfds(struct seg_store *st)
{
	uint64_t n;

	pthread_mutex_lock(&st->lock);
	n = st->nfds;
	pthread_mutex_unlock(&st->lock);
	return n;
}

/* ---- descriptors ------------------------------------------------------ */

/* What store_stat reports, from the backing's fstat. */
static void stat_of(const struct stat *m, struct store_stat *out)
{
	out->size = m->st_size;
	out->blocks = m->st_blocks;
	out->blksize = m->st_blksize;
	out->atime = m->st_atim;
	out->mtime = m->st_mtim;
	out->ctime = m->st_ctim;
}

/* Names a file in the tmpfs, so that it can be opened again by its id. */
static int name_file(struct seg_store *st, struct store_file *f)
{
	char name[24];

	file_name(f, name);
	/* O_TMPFILE without O_EXCL: the file may be given a name. */
	if (linkat(f->fd, "", st->tmpfs, name, AT_EMPTY_PATH) < 0)
		return -errno;
	f->named = true;
	return 0;
}

/*
 * Where an evicted file is opened again: its pin's path, or its name in
 * the tmpfs (dirfd set to the tmpfs).
 */
static const char *reopen_path(struct seg_store *st, const struct store_file *f, char buf[64],
			       int *dirfd)
{
	*dirfd = st->tmpfs;
	if (f->pinned) {
		st->pins.path(st->pins.arg, f->pin, buf);
		*dirfd = AT_FDCWD;
		return buf;
	}
	file_name(f, buf);
	return buf;
}

/*
 * Closes the descriptor of an idle file, naming it in the tmpfs first
 * (once) unless its pin holder has it, so that it can be opened again.
 * The pin or the name holds the file, so this close is never its last.
 * Under st->lock.
 */
static int evict(struct seg_store *st, struct store_file *f)
{
	struct stat m;
	int rc;

	if (fstat(f->fd, &m) < 0)
		return -errno;
	if (!f->named && !f->pinned) {
		rc = name_file(st, f);
		if (rc < 0)
			return rc;
	}
	stat_of(&m, &f->snap);
	f->snap_due = false;
	list_del(f);
	close(f->fd);
	f->fd = -1;
	st->nfds--;
	return 0;
}

/*
 * Keeps the descriptors within the budget, before one more is opened, by
 * evicting the least recently used idle files.  Only the tmpfs can: a
 * memfd has no name to be opened by again.  Under st->lock.
 */
static void make_room(struct seg_store *st)
{
	struct store_file *f = st->idle.next;

	if ((st->tmpfs < 0 && st->pins.pin == NULL) || st->fd_budget == 0)
		return;
	/*
	 * A memfd its holder does not have cannot be opened again, nor a file
	 * its holder has not taken yet: they stay.
	 */
	while (st->nfds >= st->fd_budget && f != &st->idle) {
		struct store_file *next = f->next;
		bool ready = f->pinned && (st->pins.ready == NULL ||
					   st->pins.ready(st->pins.arg, f->pin));

		if ((ready || (!f->pinned && st->tmpfs >= 0)) && evict(st, f) < 0)
			return;
		f = next;
	}
}

int store_create(struct seg_store *st, struct store_file *f, uint64_t id, const char *name)
{
	char mname[MEMFD_NAME_MAX + 1];
	int fd;

	/* Made unnamed: it goes with its last reference, as a memfd does. */
	if (st->tmpfs >= 0) {
		fd = openat(st->tmpfs, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	} else {
		snprintf(mname, sizeof(mname), "%s", name != NULL ? name : "segfs");
		fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	}
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? -ENOSPC : -errno;
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->fd = fd;
	/*
	 * Held by the pin holder from the start, or named where it is full,
	 * so that the file outlives this process; a memfd that can be neither
	 * is one segment too many.
	 */
	if (st->pins.pin != NULL) {
		int rc = st->pins.pin(st->pins.arg, fd, &f->pin);

		f->pinned = rc == 0;
		if (rc == -ENOSPC && st->tmpfs >= 0)
			rc = name_file(st, f);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	pthread_mutex_lock(&st->lock);
	/*
	 * Made first, counted after: concurrent creators may pass the budget
	 * by a few descriptors for a moment, which its headroom allows.
	 */
	make_room(st);
	st->nfds++;
	list_add_tail(&st->idle, f);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

void store_destroy(struct seg_store *st, struct store_file *f)
{
	char name[24];
	int fd;

	pthread_mutex_lock(&st->lock);
	fd = f->fd;
	if (fd >= 0) {
		list_del(f);
		st->nfds--;
		f->fd = -1;
	}
	st->reserved -= f->reserved;
	f->reserved = 0;
	pthread_mutex_unlock(&st->lock);
	if (f->named) {
		file_name(f, name);
		unlinkat(st->tmpfs, name, 0);
	}
	if (f->pinned)
		st->pins.unpin(st->pins.arg, f->pin);
	if (fd >= 0)
		close(fd);
}

void store_forsake(struct seg_store *st, struct store_file *f)
{
	int fd;

	pthread_mutex_lock(&st->lock);
	fd = f->fd;
	if (fd >= 0) {
		list_del(f);
		st->nfds--;
		f->fd = -1;
	}
	st->reserved -= f->reserved;
	pthread_mutex_unlock(&st->lock);
	if (fd >= 0)
		close(fd);
}

bool store_pin_key(struct seg_store *st, const struct store_file *f, uint64_t *key)
{
	bool pinned;

	pthread_mutex_lock(&st->lock);
	pinned = f->pinned;
	*key = f->pin;
	pthread_mutex_unlock(&st->lock);
	return pinned;
}

uint64_t store_reserved(struct seg_store *st, const struct store_file *f)
{
	uint64_t r;

	pthread_mutex_lock(&st->lock);
	r = f->reserved;
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_adopt(struct seg_store *st, struct store_file *f, uint64_t id, bool pinned,
		uint64_t key, uint64_t reserved)
{
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->fd = -1;
	f->pinned = pinned;
	f->pin = key;
	f->named = !pinned;
	if ((pinned && st->pins.pin == NULL) || (!pinned && st->tmpfs < 0))
		return -EUCLEAN;
	f->snap_due = true;
	f->reserved = reserved;
	pthread_mutex_lock(&st->lock);
	st->reserved += reserved;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int store_hold(struct seg_store *st, struct store_file *f, int *fd)
{
	char name[64];
	int rc = 0;

	pthread_mutex_lock(&st->lock);
	if (f->fd < 0) {
		const char *path;
		int dirfd;

		make_room(st);
		path = reopen_path(st, f, name, &dirfd);
		f->fd = openat(dirfd, path, O_RDWR | O_CLOEXEC);
		if (f->fd < 0) {
			/* Out of descriptors: as the client sees it, the system is. */
			rc = errno == EMFILE ? -ENFILE : -errno;
			goto out;
		}
		st->nfds++;
		list_add_tail(&st->busy, f);
	} else if (f->holds == 0) {
		list_del(f);
		list_add_tail(&st->busy, f);
	}
	f->holds++;
	*fd = f->fd;
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void store_drop(struct seg_store *st, struct store_file *f)
{
	pthread_mutex_lock(&st->lock);
	if (--f->holds == 0) {
		list_del(f);
		list_add_tail(&st->idle, f);   /* most recently used */
	}
	pthread_mutex_unlock(&st->lock);
}

int store_fd(const struct store_file *f)
{
	return f->fd;
}

int store_stat(struct seg_store *st, struct store_file *f, struct store_stat *out)
{
	char name[64];
	const char *path = name;
	struct stat m;
	int dirfd = -1, rc = 0;

	pthread_mutex_lock(&st->lock);
	/*
	 * An evicted file's snapshot holds until it is opened again, unless
	 * the kernel may write it meanwhile through a passthrough open, which
	 * holds no descriptor of ours: that one is asked by name.
	 */
	if (f->fd < 0 && (f->unseen || f->snap_due))
		path = reopen_path(st, f, name, &dirfd);
	if (f->fd >= 0 || f->unseen || f->snap_due) {
		if (f->fd >= 0 ? fstat(f->fd, &m) == 0 : fstatat(dirfd, path, &m, 0) == 0) {
			stat_of(&m, out);
			if (f->fd < 0 && !f->unseen && f->snap_due) {
				f->snap_due = false;
				stat_of(&m, &f->snap);
			}
		} else {
			rc = -errno;
		}
	} else {
		*out = f->snap;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---- reservations ----------------------------------------------------- */

/*
 * Brings a file's reservation up to what it really holds: a passthrough
 * write() that extends it never reaches us.  Under st->lock; f has a
 * descriptor.
 */
static void settle(struct seg_store *st, struct store_file *f)
{
	struct stat m;
	uint64_t held;

	if (fstat(f->fd, &m) < 0)
		return;
	held = (uint64_t)m.st_blocks * 512;
	if (held > f->reserved) {
		st->reserved += held - f->reserved;
		f->reserved = held;
	}
}

/* Settles every held file that writes may reach unseen (memfds only). */
static void settle_unseen(struct seg_store *st)
{
	for (struct store_file *f = st->busy.next; f != &st->busy; f = f->next)
		if (f->unseen)
			settle(st, f);
}

/*
 * Reserves and allocates f's pages up to `want` (page-aligned).  With the
 * private tmpfs the kernel keeps the exact count, so its fallocate is the
 * whole check; with memfds the store is the only accountant, and must
 * first learn what unseen writes took (O(such files)).  The count is taken
 * under the lock and the pages allocated outside it, then given back if
 * that failed.
 */
/*
 * Counts [f->reserved, want) against the limit and raises f->reserved to
 * it: 0, 1 when nothing was to count, or -ENOSPC.  *from gets the old mark.
 */
static int claim(struct seg_store *st, struct store_file *f, uint64_t want, uint64_t *from)
{
	uint64_t more;

	pthread_mutex_lock(&st->lock);
	if (want > f->reserved && st->tmpfs < 0)
		settle_unseen(st);
	*from = f->reserved;
	if (want <= f->reserved) {
		pthread_mutex_unlock(&st->lock);
		return 1;
	}
	more = want - f->reserved;
	if (st->tmpfs < 0 && (more > st->size_limit || st->reserved > st->size_limit - more)) {
		pthread_mutex_unlock(&st->lock);
		return -ENOSPC;
	}
	st->reserved += more;
	f->reserved = want;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* Gives back what claim counted, after the allocation failed. */
static void unclaim(struct seg_store *st, struct store_file *f, uint64_t from, uint64_t want)
{
	/* Settling may have raised the reservation meanwhile: give back ours. */
	pthread_mutex_lock(&st->lock);
	st->reserved -= want - from;
	f->reserved -= want - from;
	pthread_mutex_unlock(&st->lock);
}

static int reserve(struct seg_store *st, struct store_file *f, uint64_t want)
{
	uint64_t from;
	int rc = claim(st, f, want, &from);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	/*
	 * Allocate now, keeping the size: this is where a full mount or a full
	 * machine says ENOSPC, instead of a SIGBUS in whoever touches the page
	 * later.  Pages a passthrough write already took are not counted twice.
	 */
	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(want - from)) == 0)
		return 0;
	rc = errno == ENOMEM ? -ENOSPC : -errno;
	unclaim(st, f, from, want);
	return rc;
}

int store_reserve(struct seg_store *st, struct store_file *f, uint64_t end)
{
	return reserve(st, f, page_up(end));
}

int store_fallocate(struct seg_store *st, struct store_file *f, int mode, off_t off,
		    off_t len)
{
	uint64_t from = 0, want = 0, below;
	bool claimed = false;
	int rc;

	/*
	 * Counted first, then allocated once.  The reservation's rule (never
	 * sparse) still allocates what lies between the pages held so far and
	 * the range; the range itself is allocated by the caller's own
	 * fallocate only.  Twice would not be the same: a tmpfs page
	 * fallocated twice reads as data (SEEK_DATA), once as a hole, as
	 * tmpfs's own fallocate leaves it.  Punching a hole counts nothing.
	 */
	if (!(mode & FALLOC_FL_PUNCH_HOLE) && off >= 0 && len > 0) {
		want = page_up((uint64_t)off + (uint64_t)len);
		rc = claim(st, f, want, &from);
		if (rc < 0)
			return rc;
		claimed = rc == 0;
		below = (uint64_t)off & ~(uint64_t)(PAGE - 1);
		if (claimed && from < below &&
		    fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(below - from)) < 0)
			goto fail;
	}
	if (fallocate(f->fd, mode, off, len) == 0)
		return 0;
fail:
	rc = errno == ENOMEM ? -ENOSPC : -errno;
	if (claimed)
		unclaim(st, f, from, want);
	return rc;
}

int store_resize(struct seg_store *st, struct store_file *f, off_t size)
{
	uint64_t want;
	int rc;

	if (size < 0)
		return -EINVAL;
	want = page_up((uint64_t)size);
	rc = reserve(st, f, want);
	if (rc < 0)
		return rc;
	/*
	 * Only shrinking gives pages back: growing a file frees none of those
	 * a fallocate(FALLOC_FL_KEEP_SIZE) holds past its end.  (Asked only
	 * when some are held past the new size, which a lifecycle never does.)
	 */
	if (want < f->reserved) {
		struct stat old;

		if (fstat(f->fd, &old) < 0)
			return -errno;
		if (size >= old.st_size)
			want = f->reserved;
	}
	if (ftruncate(f->fd, size) < 0)
		return errno == EINVAL ? -EFBIG : -errno;
	/* Shrinking gave pages back (ftruncate freed them). */
	pthread_mutex_lock(&st->lock);
	if (want < f->reserved) {
		st->reserved -= f->reserved - want;
		f->reserved = want;
	}
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int store_utimens(struct seg_store *st, struct store_file *f, const struct timespec ts[2])
{
	(void)st;
	return futimens(f->fd, ts) < 0 ? -errno : 0;
}

void store_set_unseen(struct seg_store *st, struct store_file *f, bool unseen)
{
	char name[64];
	const char *path;
	struct stat m;
	int dirfd;

	pthread_mutex_lock(&st->lock);
	/* What it grew to meanwhile; the tmpfs counts by itself. */
	if (f->unseen && !unseen && st->tmpfs < 0)
		settle(st, f);
	/* Evicted while written unseen: its snapshot is taken again. */
	if (f->unseen && !unseen && f->fd < 0 && (f->named || f->pinned)) {
		path = reopen_path(st, f, name, &dirfd);
		if (fstatat(dirfd, path, &m, 0) == 0) {
			stat_of(&m, &f->snap);
			f->snap_due = false;
		}
	}
	f->unseen = unseen;
	pthread_mutex_unlock(&st->lock);
}

bool store_reopens(const struct seg_store *st)
{
	return st->tmpfs >= 0 || st->pins.pin != NULL;
}

void store_usage(struct seg_store *st, uint64_t *used, uint64_t *total)
{
	struct statfs k;

	/* The private tmpfs counts its pages itself, exactly and in O(1). */
	if (st->tmpfs >= 0 && fstatfs(st->tmpfs, &k) == 0) {
		*total = k.f_blocks;
		*used = k.f_blocks - k.f_bfree;
		return;
	}
	pthread_mutex_lock(&st->lock);
	settle_unseen(st);
	*total = st->size_limit / PAGE;
	*used = (st->reserved + PAGE - 1) / PAGE;
	pthread_mutex_unlock(&st->lock);
}
