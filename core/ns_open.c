/*
 * Open handles of segments and their data: open, release, reserve, and
 * the reads and writes of a layer above.  See ns.h for the contracts.
 *
 * An open segment keeps its data-path id from its first open to its last
 * release.  On the cached fallback it also holds its backing file
 * (store_hold) all that time, so that fs/'s reads and writes find a stable
 * descriptor.  With passthrough it holds it only until attach has given
 * the kernel a reference of its own: after that the daemon needs the
 * descriptor only now and then (a truncate, a fallocate, SEEK_DATA), and
 * holds it just for those, so the store may close it meanwhile.  One
 * process may keep as many segments open as its own file limit allows,
 * which is often the daemon's too (a daemon without CAP_SYS_RESOURCE
 * cannot raise it): pinning a descriptor per open segment ran the daemon
 * out first (ENOSPC at the limit's last few thousand opens, LTP's open04).
 * What may take long (the first open's attach, O_TRUNC, reservations)
 * runs under the segment's own lock only.
 */
#include "core/ns.h"

#include "core/ns_i.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/*
 * backing's value while an open period runs without a data-path id,
 * because attach chose the fallback: later opens of the period must not
 * try again (the kernel refuses to mix a cached open with a passthrough
 * one of the same inode).
 */
#define FALLBACK (-1)

/* Counts one more handle; the first holds the backing file.  Under ns->lock. */
static int get_handle(struct seg_ns *ns, struct seg_inode *ino)
{
	int fd, rc;

	if (ns_nopen(ino) >= UINT32_MAX)
		return -EMFILE;
	if (ns_nopen(ino) == 0) {
		rc = store_hold(ns->store, &ino->u.seg.file, &fd);
		if (rc < 0)
			return rc;
		ino->u.seg.held = true;
	}
	ns_add(ns, ino, RI_NOPEN, 1);
	return 0;
}

/*
 * Lets the open period's hold go once the kernel has the file by its
 * data-path id.  Under ns->lock.
 */
static void unpin(struct seg_ns *ns, struct seg_inode *ino)
{
	/*
	 * A memfd cannot be opened again, and the store settles the unseen
	 * writes of held files only: memfds stay held.
	 */
	if (ino->u.seg.held && (int64_t)ino->w[RI_BACKING] > 0 && store_reopens(ns->store)) {
		ino->u.seg.held = false;
		store_drop(ns->store, &ino->u.seg.file);
	}
}

/*
 * Drops one handle; the last one lets the backing file go and returns the
 * data-path id to detach (else 0).  Under ns->lock.
 */
static int put_handle(struct seg_ns *ns, struct seg_inode *ino)
{
	struct store_file *f = &ino->u.seg.file;
	int id = (int)(int64_t)ino->w[RI_BACKING];

	ns_add(ns, ino, RI_NOPEN, -1);
	if (ns_nopen(ino) > 0)
		return 0;
	/* Recorded first: a restart closes an id a dead server let go of. */
	if (id > 0)
		rg_intent(ns->rg, RG_INTENT_DETACH, (uint64_t)id, 0);
	ns_set(ns, ino, RI_BACKING, 0);
	if (id == FALLBACK)
		id = 0;
	/* Unopened, it can be written by nobody: what it grew to is settled. */
	store_set_unseen(ns->store, f, false);
	if (ino->u.seg.held)
		store_drop(ns->store, f);
	ino->u.seg.held = false;
	ns_maybe_free(ns, ino);
	return id;
}

/* Drops one handle, then detaches what the last one gave back. */
static void release(struct seg_ns *ns, struct seg_inode *ino)
{
	int id;

	ns_lock(ns);
	id = put_handle(ns, ino);
	ns_unlock(ns);
	if (id > 0 && ns->detach != NULL)
		ns->detach(ns->data_arg, id);
}

/* What the inode flags allow of an open (the kernel's may_open). */
static int may_open(const struct seg_inode *ino, int flags)
{
	bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);

	if ((ns_flags(ino) & SEG_FL_IMMUTABLE) && writes)
		return -EPERM;
	if ((ns_flags(ino) & SEG_FL_APPEND) && writes && (!(flags & O_APPEND) || (flags & O_TRUNC)))
		return -EPERM;
	return 0;
}

/*
 * Holds a segment's backing file for one use of its descriptor: an open
 * segment need not hold it (above), so every such use does.  -EINVAL for
 * what is not a segment.
 */
static int hold(struct seg_ns *ns, struct seg_inode *ino, int *fd)
{
	if (!S_ISREG(ino->type))
		return -EINVAL;
	return store_hold(ns->store, &ino->u.seg.file, fd);
}

static void drop(struct seg_ns *ns, struct seg_inode *ino)
{
	store_drop(ns->store, &ino->u.seg.file);
}

/* O_TRUNC's truncate.  Under the segment's lock. */
static int truncate_held(struct seg_ns *ns, struct seg_inode *ino)
{
	int fd, rc = hold(ns, ino, &fd);

	if (rc < 0)
		return rc;
	rc = store_resize(ns->store, &ino->u.seg.file, 0);
	drop(ns, ino);
	if (rc == 0)
		ns_keep_reserved(ns, ino);
	return rc;
}

int seg_open(struct seg_ns *ns, struct seg_inode *ino, int flags, int *backing)
{
	struct store_file *f = &ino->u.seg.file;
	size_t capsize;
	bool privs;
	mode_t mode;
	int rc, id;

	if (S_ISDIR(ino->type))
		return -EISDIR;
	if (!S_ISREG(ino->type))
		return -EINVAL;
	pthread_mutex_lock(&ino->u.seg.lock);
	ns_lock(ns);
	rc = may_open(ino, flags);
	if (rc == 0)
		rc = get_handle(ns, ino);
	id = (int)(int64_t)ino->w[RI_BACKING];
	mode = ns_mode(ino);
	privs = (mode & (S_ISUID | S_ISGID)) ||
		xa_value(ino->xattrs, "security.capability", &capsize) != NULL;
	ns_unlock(ns);
	if (rc < 0)
		goto out;
	/*
	 * Attach at the first open.  The segment's lock keeps a second opener
	 * from attaching another id meanwhile; a release cannot take this one
	 * away while our handle is counted.
	 */
	if (id == 0 && ns->attach != NULL) {
		/*
		 * An id the kernel gave a dead server before it could record
		 * it would hold the file for good: a restart looks for it.
		 */
		rg_intent(ns->rg, RG_INTENT_ATTACH, 0, 0);
		id = ns->attach(ns->data_arg, store_fd(f), privs);
		if (id > 0)
			rg_intent(ns->rg, RG_INTENT_ATTACH, (uint64_t)id, 0);
		if (id < 0) {
			rc = id;
			goto undo;
		}
		ns_lock(ns);
		ns_set(ns, ino, RI_BACKING, (uint64_t)(int64_t)(id > 0 ? id : FALLBACK));
		ns_unlock(ns);
	}
	if (id > 0)
		store_set_unseen(ns->store, f, true);
	if (flags & O_TRUNC) {
		rc = truncate_held(ns, ino);
		if (rc < 0)
			goto undo;
		ns_lock(ns);
		ns_changed(ns, SEG_CHANGE_SIZE, NULL, NULL, 0, ino);
		ns_unlock(ns);
	}
	ns_lock(ns);
	unpin(ns, ino);
	ns_unlock(ns);
	*backing = id > 0 ? id : 0;
	goto out;
undo:
	/* No reply has carried a fresh id yet: it may be closed at once. */
	release(ns, ino);
out:
	pthread_mutex_unlock(&ino->u.seg.lock);
	return rc;
}

void seg_release(struct seg_ns *ns, struct seg_inode *ino)
{
	release(ns, ino);
}

int seg_reserve(struct seg_ns *ns, struct seg_inode *ino, uint64_t end)
{
	int fd, rc;

	if (!S_ISREG(ino->type))
		return -EINVAL;
	pthread_mutex_lock(&ino->u.seg.lock);
	rc = hold(ns, ino, &fd);
	if (rc == 0) {
		rc = store_reserve(ns->store, &ino->u.seg.file, end);
		drop(ns, ino);
	}
	if (rc == 0)
		ns_keep_reserved(ns, ino);
	pthread_mutex_unlock(&ino->u.seg.lock);
	return rc;
}

int seg_fallocate(struct seg_ns *ns, struct seg_inode *ino, int mode, off_t off, off_t len)
{
	int fd, rc;

	if (!S_ISREG(ino->type))
		return -EINVAL;
	/* Only allocating (KEEP_SIZE or not) is allowed on an append-only file. */
	rc = seg_may_fallocate(ns, ino, (mode & ~FALLOC_FL_KEEP_SIZE) == 0);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ino->u.seg.lock);
	rc = hold(ns, ino, &fd);
	if (rc == 0) {
		rc = store_fallocate(ns->store, &ino->u.seg.file, mode, off, len);
		drop(ns, ino);
	}
	if (rc == 0)
		ns_keep_reserved(ns, ino);
	pthread_mutex_unlock(&ino->u.seg.lock);
	return rc;
}

int seg_copy_range(struct seg_ns *ns, struct seg_inode *in, off_t off_in,
		   struct seg_inode *out, off_t off_out, size_t len, size_t *copied)
{
	struct stat st;
	int fd_in, fd_out, rc;

	*copied = 0;
	if (!S_ISREG(in->type) || !S_ISREG(out->type))
		return -EINVAL;
	ns_lock(ns);
	rc = ns_flags(out) & SEG_FL_IMMUTABLE ? -EPERM : 0;
	ns_unlock(ns);
	if (rc < 0)
		return rc;
	rc = hold(ns, in, &fd_in);
	if (rc < 0)
		return rc;
	if (fstat(fd_in, &st) < 0) {
		rc = -errno;
		goto out_in;
	}
	/* Only what the source has: the reservation is for bytes that come. */
	if (off_in >= st.st_size)
		goto out_in;
	if (len > (uint64_t)(st.st_size - off_in))
		len = (size_t)(st.st_size - off_in);
	rc = seg_reserve(ns, out, (uint64_t)off_out + len);
	if (rc < 0)
		goto out_in;
	rc = hold(ns, out, &fd_out);
	if (rc < 0)
		goto out_in;
	while (*copied < len) {
		ssize_t r = copy_file_range(fd_in, &off_in, fd_out, &off_out, len - *copied, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = *copied > 0 ? 0 : -errno;
			break;
		}
		if (r == 0)
			break;
		*copied += (size_t)r;
	}
	drop(ns, out);
out_in:
	drop(ns, in);
	return rc;
}

int seg_lseek(struct seg_ns *ns, struct seg_inode *ino, off_t off, int whence, off_t *out)
{
	int fd, rc = hold(ns, ino, &fd);

	if (rc < 0)
		return rc;
	*out = lseek(fd, off, whence);
	if (*out < 0)
		rc = -errno;
	drop(ns, ino);
	return rc;
}

int seg_may_fallocate(struct seg_ns *ns, struct seg_inode *ino, bool allocate_only)
{
	int rc = 0;

	ns_lock(ns);
	if ((ns_flags(ino) & SEG_FL_IMMUTABLE) || ((ns_flags(ino) & SEG_FL_APPEND) && !allocate_only))
		rc = -EPERM;
	ns_unlock(ns);
	return rc;
}

int seg_pread(struct seg_ns *ns, struct seg_inode *ino, void *buf, size_t len,
	      off_t off, size_t *got)
{
	size_t done = 0;
	int fd, rc = hold(ns, ino, &fd);

	if (rc < 0)
		return rc;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	drop(ns, ino);
	if (rc == 0)
		*got = done;
	return rc;
}

int seg_pwrite(struct seg_ns *ns, struct seg_inode *ino, const void *buf, size_t len,
	       off_t off)
{
	struct store_file *f = &ino->u.seg.file;
	struct store_stat m;
	size_t done = 0;
	int fd, rc;

	if (!S_ISREG(ino->type))
		return -EINVAL;
	/* Under the segment's lock, no truncate through us can move its end. */
	pthread_mutex_lock(&ino->u.seg.lock);
	ns_lock(ns);
	rc = ns_pinned(ino) ? -EPERM : 0;
	ns_unlock(ns);
	if (rc == 0)
		rc = hold(ns, ino, &fd);
	if (rc < 0)
		goto out;
	rc = store_stat(ns->store, f, &m);
	if (rc == 0 && (off < 0 || (uint64_t)off > (uint64_t)m.size ||
			len > (uint64_t)m.size - (uint64_t)off))
		rc = -ENXIO;
	while (rc == 0 && done < len) {
		ssize_t w = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -errno;
		else
			done += (size_t)w;
	}
	drop(ns, ino);
out:
	pthread_mutex_unlock(&ino->u.seg.lock);
	return rc;
}
