/*
 * The lists/ view.  See lists.h for what it shows; here is how.
 *
 * Reading a segment: its bytes are untrusted and may change while we read,
 * so each use takes one private snapshot with pread() and decodes that.
 * The snapshot covers the list's layout (16 + 17n + D bytes, learnt from
 * the header), not the whole segment, which may be far larger.
 *
 * Writing in place: the daemon never maps a segment.  Another process may
 * truncate it at any moment, and a store through a mapping past the new
 * end would kill the daemon with SIGBUS.  Instead the new values are
 * assigned into a private copy with CPython's rules, and only the bytes
 * that changed are written back with pwrite(): the memfd's pages are the
 * ones every client maps, so attached Python processes see the values at
 * once, as they would see another process's sl[i] = v.
 *
 * Every function here runs with ns->lock held, except the public ones,
 * which take it.
 */
#include "core/lists.h"

#include "core/alloc.h"
#include "core/name.h"
#include "core/ns_i.h"
#include "core/sltext.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sets views' st_ino apart from every segment's: bit 62 of the segment's. */
#define VIEW_INO_BIT (UINT64_C(1) << 62)

/* CPython's empty list: 16 bytes, count and first offset both zero. */
#define EMPTY_LIST_SIZE 16

void seg_ns_set_sync(struct seg_ns *ns, seg_sync_fn fn, void *arg)
{
	/* The argument first: a reader that sees fn sees its argument. */
	atomic_store(&ns->sync_arg, arg);
	atomic_store(&ns->sync, fn);
}

void seg_lists_sync(struct seg_ns *ns, const char *name)
{
	struct seg_inode **pinned = NULL, *one;
	seg_sync_fn fn;
	size_t n = 0, cap = 0;
	void *arg;

	fn = atomic_load(&ns->sync);
	arg = atomic_load(&ns->sync_arg);
	if (fn == NULL)
		return;
	pthread_mutex_lock(&ns->lock);
	if (name != NULL) {
		/* One name: found through the hash, pinned on the stack. */
		struct seg_dentry *d = seg__d_find(ns, ns->root, name, strlen(name));

		if (d != NULL && seg_inode_is_segment(d->inode) && d->inode->nopen > 0) {
			d->inode->nlookup++;
			one = d->inode;
			pinned = &one;
			n = 1;
		}
	} else {
		/* Pin the open segments: a kernel reference keeps each alive. */
		for (struct seg_node *nd = ns->root->entries.next;
		     nd != &ns->root->entries; nd = nd->next) {
			struct seg_dentry *d = nd->entry;
			struct seg_inode **more;

			if (d == NULL || !seg_inode_is_segment(d->inode) || d->inode->nopen == 0)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				more = seg_malloc(cap * sizeof(*more));
				if (more == NULL)
					break;
				if (n)
					memcpy(more, pinned, n * sizeof(*more));
				seg_free(pinned);
				pinned = more;
			}
			d->inode->nlookup++;
			pinned[n++] = d->inode;
		}
	}
	seg__unlock(ns);
	for (size_t i = 0; i < n; i++)
		fn(arg, pinned[i]);
	if (n > 0) {
		pthread_mutex_lock(&ns->lock);
		for (size_t i = 0; i < n; i++) {
			pinned[i]->nlookup--;
			seg__maybe_free(ns, pinned[i]);
		}
		seg__unlock(ns);
	}
	if (pinned != &one)
		seg_free(pinned);
}

void seg_view_sync(struct seg_ns *ns, struct seg_inode *view)
{
	char name[256];

	pthread_mutex_lock(&ns->lock);
	memcpy(name, view->vdentry->name, view->vdentry->len + 1);
	seg__unlock(ns);
	seg_lists_sync(ns, name);
}

bool seg_inode_is_view(const struct seg_inode *ino)
{
	return ino->view;
}

static int pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = pread(fd, buf, len, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EBADMSG;   /* shrunk under us: not a whole list now */
		buf += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

static int pwrite_full(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/*
 * Takes a private copy of the bytes of the list `fd` holds.  Returns
 * -EBADMSG when the header already shows it is not one; sl_decode judges
 * the rest.  On success *bytes (seg_free) holds *len bytes.
 */
static int snapshot_fd(int fd, uint8_t **bytes, size_t *len)
{
	struct stat st;
	uint64_t size, need;
	int64_t n, d;
	uint8_t *buf;
	int rc;

	if (fstat(fd, &st) < 0)
		return -EBADMSG;
	size = (uint64_t)st.st_size;
	if (size < EMPTY_LIST_SIZE)
		return -EBADMSG;
	rc = pread_full(fd, (uint8_t *)&n, sizeof(n), 0);
	if (rc < 0)
		return rc;
	/*
	 * A zero-filled segment reads as an empty list; only CPython's exact
	 * 16-byte [] is one.  The bound keeps 16 + 17n from overflowing.
	 */
	if (n < 0 || (n == 0 && size != EMPTY_LIST_SIZE) ||
	    (uint64_t)n > (size - EMPTY_LIST_SIZE) / 17)
		return -EBADMSG;
	/* off[n], the size of the data area, sits at 8 + 8n < 16 + 17n. */
	rc = pread_full(fd, (uint8_t *)&d, sizeof(d), 8 + 8 * (off_t)n);
	if (rc < 0)
		return rc;
	if (d < 0 || (uint64_t)d > size - EMPTY_LIST_SIZE - 17 * (uint64_t)n)
		return -EBADMSG;
	need = EMPTY_LIST_SIZE + 17 * (uint64_t)n + (uint64_t)d;
	if (need > SIZE_MAX)
		return -EFBIG;
	buf = seg_malloc(need);
	if (buf == NULL)
		return -ENOMEM;
	rc = pread_full(fd, buf, need, 0);
	if (rc < 0) {
		seg_free(buf);
		return rc;
	}
	*bytes = buf;
	*len = need;
	return 0;
}

/*
 * snapshot_fd of a segment.  One whose descriptor was closed is read
 * through a descriptor of its own, so that a scan of lists/ over many such
 * segments neither churns nor exhausts the descriptors they share.
 */
static int snapshot(struct seg_ns *ns, struct seg_inode *seg, uint8_t **bytes, size_t *len)
{
	int fd, rc;

	if (!seg_inode_is_segment(seg))
		return -EBADMSG;
	if (seg->fd >= 0)
		return snapshot_fd(seg->fd, bytes, len);
	fd = seg__open_named(ns, seg, O_RDONLY);
	if (fd < 0)
		return fd == -ENOMEM ? fd : -EBADMSG;
	rc = snapshot_fd(fd, bytes, len);
	close(fd);
	return rc;
}

/* The list a segment holds now: -EBADMSG if it holds none. */
static int read_list(struct seg_ns *ns, struct seg_inode *seg, struct sl_list **out)
{
	uint8_t *bytes;
	size_t len;
	int rc = snapshot(ns, seg, &bytes, &len);

	if (rc < 0)
		return rc;
	rc = sl_decode(bytes, len, out);
	seg_free(bytes);
	return rc;
}

int seg_holds_list(struct seg_ns *ns, struct seg_inode *seg, bool *yes)
{
	seg_sync_fn fn = atomic_load(&ns->sync);
	void *arg = atomic_load(&ns->sync_arg);
	struct sl_list *l;
	bool open;
	int rc;

	if (!seg_inode_is_segment(seg))
		return -EINVAL;
	pthread_mutex_lock(&ns->lock);
	open = seg->nopen > 0;
	seg__unlock(ns);
	/* Only an open segment can have bytes its backing file has not seen yet. */
	if (fn != NULL && open)
		fn(arg, seg);
	pthread_mutex_lock(&ns->lock);
	rc = read_list(ns, seg, &l);
	seg__unlock(ns);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0)
		sl_list_free(l);
	*yes = rc == 0;
	return 0;
}

bool seg__lists_shows(struct seg_ns *ns, struct seg_inode *seg)
{
	struct sl_list *l;

	if (!seg_inode_is_segment(seg) || read_list(ns, seg, &l) < 0)
		return false;
	sl_list_free(l);
	return true;
}

void seg__lists_ino(const struct seg_inode *seg, struct stat *st)
{
	st->st_ino = seg->ino | VIEW_INO_BIT;
	st->st_mode = S_IFREG | (seg->mode & 07777);
}

/* The segment root/NAME, or NULL when the name is missing or a directory. */
static struct seg_inode *root_segment(struct seg_ns *ns, const char *name, size_t len)
{
	struct seg_dentry *d = seg__d_find(ns, ns->root, name, len);

	return d != NULL && !seg__is_dir(d->inode) ? d->inode : NULL;
}

/* Attributes of a view of `seg`, which holds `l`: the segment's, sized as text. */
static int view_stat(const struct seg_inode *seg, const struct sl_list *l, struct stat *st)
{
	char *text;
	size_t len;
	int rc = sl_render(l, &text, &len);

	if (rc < 0)
		return rc;
	seg_free(text);
	seg__fill_stat(seg, st);
	seg__lists_ino(seg, st);
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
	return 0;
}

/*
 * Making a view takes two allocations; prepare them before anything else
 * changes, so that a failure changes nothing.
 */
struct view_slot {
	struct seg_inode *view;     /* the existing view, or the new one */
	struct seg_dentry *d;       /* the new view's name, if new */
};

static int view_prepare(struct seg_ns *ns, const char *name, size_t len,
			struct view_slot *vs)
{
	struct seg_dentry *d = seg__d_find(ns, ns->lists, name, len);

	vs->d = NULL;
	if (d != NULL) {
		vs->view = d->inode;
		return 0;
	}
	vs->d = seg__d_alloc(name, len);
	vs->view = seg__inode_alloc(ns, S_IFREG, 0, 0);
	if (vs->d == NULL || vs->view == NULL) {
		seg_free(vs->d);
		seg_free(vs->view);
		return -ENOMEM;
	}
	return 0;
}

static void view_abandon(struct view_slot *vs)
{
	if (vs->d != NULL) {
		seg_free(vs->d);
		seg_free(vs->view);
	}
}

/* Makes the prepared view live and hands the kernel a reference to it. */
static struct seg_inode *view_install(struct seg_ns *ns, struct view_slot *vs)
{
	struct seg_inode *v = vs->view;

	if (vs->d != NULL) {
		v->view = true;
		v->vdentry = vs->d;
		v->nlink = 1;
		seg__inode_link(ns, v);
		seg__d_add(ns, ns->lists, vs->d, v);
	}
	v->nlookup++;
	return v;
}

int seg__lists_lookup(struct seg_ns *ns, const char *name, size_t len,
		      struct seg_inode **out, struct stat *st)
{
	struct seg_inode *seg = root_segment(ns, name, len);
	struct view_slot vs;
	struct sl_list *l;
	int rc;

	if (seg == NULL)
		return -ENOENT;
	rc = read_list(ns, seg, &l);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -ENOENT;
	rc = view_stat(seg, l, st);
	sl_list_free(l);
	if (rc == 0)
		rc = view_prepare(ns, name, len, &vs);
	if (rc == 0)
		*out = view_install(ns, &vs);
	return rc;
}

int seg__lists_create(struct seg_ns *ns, const char *name, size_t len,
		      mode_t mode, uid_t uid, gid_t gid, pid_t pid, int flags,
		      struct seg_inode **out, struct stat *st, bool *created)
{
	struct seg_dentry *d = seg__d_find(ns, ns->root, name, len), *nd;
	struct seg_inode *seg;
	struct view_slot vs;
	int rc;

	if (d != NULL) {
		if (seg__is_dir(d->inode))
			return -EISDIR;
		/* A segment that holds no list is not turned into one. */
		if ((flags & SEG_CREATE_EXCL) || !seg__lists_shows(ns, d->inode))
			return -EEXIST;
		rc = seg__lists_lookup(ns, name, len, out, st);
		if (rc == 0)
			*created = false;
		return rc;
	}
	/* A new segment holding CPython's empty list: 16 zero bytes. */
	nd = seg__d_alloc(name, len);
	if (nd == NULL)
		return -ENOMEM;
	rc = view_prepare(ns, name, len, &vs);
	if (rc < 0)
		goto fail_view;
	rc = seg__new_segment(ns, name, mode, uid, gid, pid, &seg);
	if (rc < 0)
		goto fail_segment;
	rc = seg__resize(ns, seg, EMPTY_LIST_SIZE);
	if (rc < 0) {
		seg__maybe_free(ns, seg);   /* no name, no reference: freed */
		goto fail_segment;
	}
	seg->nlink = 1;
	seg__d_add(ns, ns->root, nd, seg);
	seg__dir_touch(ns->root);
	*out = view_install(ns, &vs);
	seg__fill_stat(seg, st);
	seg__lists_ino(seg, st);
	st->st_nlink = 1;
	st->st_size = 0;
	st->st_blocks = 0;
	*created = true;
	return 0;

fail_segment:
	view_abandon(&vs);
fail_view:
	seg_free(nd);
	return rc;
}

/* The segment behind lists/NAME, which must hold a list. */
static int listed_segment(struct seg_ns *ns, const char *name, struct seg_inode **out)
{
	struct seg_inode *seg = root_segment(ns, name, strlen(name));

	if (seg == NULL || !seg__lists_shows(ns, seg))
		return -ENOENT;
	*out = seg;
	return 0;
}

int seg__lists_unlink(struct seg_ns *ns, const char *name)
{
	struct seg_inode *seg;
	int rc = listed_segment(ns, name, &seg);

	return rc < 0 ? rc : seg__unlink_locked(ns, ns->root, name);
}

int seg__lists_rename(struct seg_ns *ns, const char *name, const char *newname,
		      unsigned flags)
{
	struct seg_dentry *dst;
	struct seg_inode *seg;
	size_t len;
	int rc = listed_segment(ns, name, &seg);

	if (rc < 0)
		return rc;
	rc = seg_name_check(newname, &len);
	if (rc < 0)
		return rc;
	/*
	 * What lists/ does not show is not there for it to replace: a
	 * segment holding no list (or a directory) keeps its name.
	 */
	dst = seg__d_find(ns, ns->root, newname, len);
	if (dst != NULL && (seg__is_dir(dst->inode) || !seg__lists_shows(ns, dst->inode)))
		return -EEXIST;
	return seg__rename_locked(ns, ns->root, name, ns->root, newname, flags);
}

int seg__view_getattr(struct seg_ns *ns, struct seg_inode *view, struct stat *st)
{
	struct seg_inode *seg;
	struct sl_list *l;
	int rc = listed_segment(ns, view->vdentry->name, &seg);

	if (rc < 0)
		return rc;
	rc = read_list(ns, seg, &l);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -ENOENT;
	rc = view_stat(seg, l, st);
	sl_list_free(l);
	return rc;
}

int seg__view_setattr(struct seg_ns *ns, struct seg_inode *view,
		      const struct stat *attr, unsigned mask, struct stat *st)
{
	struct seg_inode *seg;
	int rc;

	/* The text's length follows the items; it is not set directly. */
	if (mask & SEG_SET_SIZE)
		return -EINVAL;
	rc = listed_segment(ns, view->vdentry->name, &seg);
	if (rc < 0)
		return rc;
	rc = seg__setattr_locked(ns, seg, attr, mask, st);
	return rc < 0 ? rc : seg__view_getattr(ns, view, st);
}

int seg_view_render(struct seg_ns *ns, struct seg_inode *view, char **text, size_t *len)
{
	struct seg_inode *seg;
	struct sl_list *l;
	int rc;

	pthread_mutex_lock(&ns->lock);
	rc = listed_segment(ns, view->vdentry->name, &seg);
	if (rc == 0)
		rc = read_list(ns, seg, &l);
	if (rc == 0) {
		rc = sl_render(l, text, len);
		sl_list_free(l);
	}
	seg__unlock(ns);
	return rc == -EBADMSG ? -ENOENT : rc;
}

/*
 * Writes back the bytes of `now` that differ from `was` within [from, to),
 * run by run.
 */
static int write_changes(int fd, const uint8_t *was, const uint8_t *now,
			 size_t from, size_t to)
{
	size_t i = from;

	while (i < to) {
		size_t j;
		int rc;

		if (was[i] == now[i]) {
			i++;
			continue;
		}
		for (j = i; j < to && was[j] != now[j]; j++)
			;
		rc = pwrite_full(fd, now + i, j - i, (off_t)i);
		if (rc < 0)
			return rc;
		i = j;
	}
	return 0;
}

/*
 * sl[i] = l[i] for every item, on a private copy of the segment's list, then
 * only what changed goes back: formats, then codes, then data, the order
 * in which CPython's __setitem__ writes.
 */
static int store_in_place(struct seg_ns *ns, struct seg_inode *seg, const uint8_t *was,
			  size_t len, const struct sl_list *l)
{
	size_t ds = 8 * (l->n + 2), fs = len - 9 * l->n, cs = len - l->n;
	int fd = seg__fd(ns, seg), rc;
	uint8_t *now;

	if (fd < 0)
		return fd;
	now = seg_malloc(len);
	if (now == NULL)
		return -ENOMEM;
	memcpy(now, was, len);
	rc = sl_assign_all(now, len, l);
	if (rc == 0)
		rc = write_changes(fd, was, now, fs, cs);
	if (rc == 0)
		rc = write_changes(fd, was, now, cs, len);
	if (rc == 0)
		rc = write_changes(fd, was, now, ds, fs);
	seg_free(now);
	return rc;
}

/* A new segment holding `l`, with no name yet. */
static int build_segment(struct seg_ns *ns, const char *name, const struct sl_list *l,
			 mode_t mode, uid_t uid, gid_t gid, struct seg_inode **out)
{
	struct seg_inode *seg;
	uint8_t *bytes;
	size_t size;
	int rc = sl_encoded_size(l, &size);

	if (rc < 0)
		return rc;
	bytes = seg_malloc(size);
	if (bytes == NULL)
		return -ENOMEM;
	rc = sl_encode(l, bytes, size);
	if (rc == 0)
		rc = seg__new_segment(ns, name, mode, uid, gid, 0, &seg);
	if (rc == 0) {
		rc = seg__resize(ns, seg, (off_t)size);
		/* A new segment has its descriptor until the lock is dropped. */
		if (rc == 0)
			rc = pwrite_full(seg->fd, bytes, size, 0);
		if (rc < 0)
			seg__maybe_free(ns, seg);
		else
			*out = seg;
	}
	seg_free(bytes);
	return rc;
}

int seg_view_store(struct seg_ns *ns, struct seg_inode *view, const struct sl_list *l,
		   mode_t mode, uid_t uid, gid_t gid, struct seg_view_effect *eff)
{
	const struct seg_dentry *vd = view->vdentry;
	struct seg_dentry *d, *nd = NULL;
	struct seg_inode *old = NULL, *seg = NULL;
	struct sl_list *cur = NULL;
	uint8_t *was = NULL;
	size_t len;
	int rc;

	memset(eff, 0, sizeof(*eff));
	memcpy(eff->name, vd->name, vd->len + 1);
	pthread_mutex_lock(&ns->lock);
	d = seg__d_find(ns, ns->root, vd->name, vd->len);
	if (d != NULL) {
		old = d->inode;
		rc = -EISDIR;
		if (seg__is_dir(old))
			goto out;
		rc = snapshot(ns, old, &was, &len);
		if (rc == 0)
			rc = sl_decode(was, len, &cur);
		/* A segment that holds no list is not overwritten. */
		if (rc == -EBADMSG)
			rc = -EEXIST;
		if (rc < 0)
			goto out;
		if (cur->n == l->n) {
			bool fits = true;

			for (size_t i = 0; i < l->n && fits; i++)
				fits = sl_fits(&l->v[i], cur->slot[i]);
			if (fits) {
				rc = store_in_place(ns, old, was, len, l);
				if (rc == 0)
					eff->in_place = old;
				goto out;
			}
		}
		mode = old->mode;
		uid = old->uid;
		gid = old->gid;
	} else {
		rc = -ENOMEM;
		nd = seg__d_alloc(vd->name, vd->len);
		if (nd == NULL)
			goto out;
	}
	rc = build_segment(ns, vd->name, l, mode, uid, gid, &seg);
	if (rc < 0) {
		seg_free(nd);
		goto out;
	}
	/* As rename() over it: the name never goes missing. */
	seg->nlink = 1;
	if (old != NULL) {
		/* Still the same list to its users: its creator and birth go on. */
		seg->pid = old->pid;
		seg->btime = old->btime;
		d->inode = seg;
		old->nlink--;
		seg__now(&old->ctime);
		seg__maybe_free(ns, old);
	} else {
		seg__d_add(ns, ns->root, nd, seg);
	}
	seg__dir_touch(ns->root);
	eff->replaced = true;
out:
	seg__unlock(ns);
	sl_list_free(cur);
	seg_free(was);
	return rc;
}
