/*
 * Open files of lists/: the text of a ShareableList.
 *
 * A handle holds the text: a snapshot rendered at open for reading (and
 * for edits and appends), or, with O_TRUNC or a new entry, the text being
 * written.  Writes only change the handle.  Complete lines are checked as
 * they arrive, so a bad one fails the write() that completes it with
 * EINVAL; FLUSH (every close) parses the whole text and stores it through
 * core/lists.c, or fails with EINVAL and changes nothing.  Handles use
 * direct I/O: the kernel keeps no pages of views, whose length follows
 * the list.
 */
#include "fs/views.h"

#include "core/alloc.h"
#include "core/lists.h"
#include "core/sltext.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vfile {
	pthread_mutex_t lock;   /* a handle may be used by threads at once */
	char *buf;              /* protected by lock, as is everything below */
	size_t len, cap;
	size_t checked;         /* complete lines before this were parsed */
	bool dirty;             /* FLUSH has text to store */
	bool bad;               /* a line was refused: FLUSH refuses too */
	bool append;            /* O_APPEND: writes go to the end */
	mode_t mode;            /* for a list that has to be created */
	uid_t uid;
	gid_t gid;
};

static struct vfile *vfile_of(const struct fuse_file_info *fi)
{
	return (struct vfile *)(uintptr_t)fi->fh;
}

/* ---- telling the kernel ----------------------------------------------- */

/*
 * The daemon itself changes root entries and segment bytes when lists/ is
 * used, so the kernel's caches of them must be dropped, and when is a
 * matter of the kernel's locks:
 *
 *   - FLUSH (a store) holds no inode lock in the kernel while it waits
 *     for us, so its notices go out before the reply: once close() of
 *     lists/x returns, x's cached pages and entry are gone.
 *   - UNLINK, RENAME and CREATE in lists/ hold lists/'s lock, and dropping
 *     a root entry takes the root's, which a rename between the root and
 *     lists/ holds while it waits for lists/'s.  So those go out just after
 *     the reply; for a few microseconds the root may still show the old
 *     entry.
 *
 * A one-thread daemon sends every notice from a thread of its own: its
 * only thread may be the one that must serve what the kernel waits for.
 * So does one served over io-uring: a request waits in the queue of the
 * CPU it was made on, which has one thread, so a notice that waited there
 * for a lock held by a request in that queue would never be sent (seen as
 * a deadlock under the stress test).  Either way the notices then race
 * with the reply instead of going first.
 */
struct notice {
	struct fuse_session *se;
	fuse_ino_t ino;          /* inode to invalidate, or 0 */
	size_t n;                /* names of root entries to invalidate */
	char names[2][256];
};

static void send_notice(const struct notice *nt)
{
	if (nt->ino != 0)
		fuse_lowlevel_notify_inval_inode(nt->se, nt->ino, 0, 0);
	for (size_t i = 0; i < nt->n; i++)
		fuse_lowlevel_notify_inval_entry(nt->se, FUSE_ROOT_ID, nt->names[i],
						 strlen(nt->names[i]));
}

static void *notice_thread(void *arg)
{
	send_notice(arg);
	free(arg);
	return NULL;
}

/* Sends the notices now, or from a new thread in a one-thread daemon. */
static void notify(struct segfs *fs, fuse_ino_t ino, const char *a, const char *b)
{
	struct notice nt = { .se = fs->se, .ino = ino };
	struct notice *copy;
	pthread_t tid;

	if (a != NULL)
		snprintf(nt.names[nt.n++], sizeof(nt.names[0]), "%s", a);
	if (b != NULL)
		snprintf(nt.names[nt.n++], sizeof(nt.names[0]), "%s", b);
	if (!fs->opts->singlethread && !fs->opts->io_uring &&
	    atomic_load(&fs->transport) != TRANSPORT_URING) {
		send_notice(&nt);
		return;
	}
	copy = malloc(sizeof(*copy));
	if (copy != NULL) {
		*copy = nt;
		if (pthread_create(&tid, NULL, notice_thread, copy) == 0) {
			pthread_detach(tid);
			return;
		}
		free(copy);
	}
	/* Without a thread the caches expire on their own; better than a hang. */
}

void views_entry_changed(struct segfs *fs, const char *name, const char *name2)
{
	notify(fs, 0, name, name2);
}

/* ---- handles ---------------------------------------------------------- */

static int vfile_reserve(struct vfile *vf, size_t need)
{
	size_t cap = vf->cap ? vf->cap : 256;
	char *p;

	if (need <= vf->cap)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return -EFBIG;
		cap *= 2;
	}
	p = realloc(vf->buf, cap);
	if (p == NULL)
		return -ENOMEM;
	vf->buf = p;
	vf->cap = cap;
	return 0;
}

int views_open(struct segfs *fs, fuse_req_t req, struct seg_inode *view,
	       struct fuse_file_info *fi, bool created, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct vfile *vf = calloc(1, sizeof(*vf));
	int backing, rc;

	if (vf == NULL)
		return -ENOMEM;
	pthread_mutex_init(&vf->lock, NULL);
	vf->mode = mode;
	vf->uid = ctx->uid;
	vf->gid = ctx->gid;
	vf->append = (fi->flags & O_APPEND) != 0;
	if (created || (fi->flags & O_TRUNC)) {
		/* The new text replaces the list at close, even if it is empty. */
		vf->dirty = (fi->flags & O_ACCMODE) != O_RDONLY;
	} else {
		char *text;
		size_t len;

		seg_view_sync(fs->ns, view);
		rc = seg_view_render(fs->ns, view, &text, &len);
		if (rc < 0)
			goto fail;
		/* Own the snapshot with malloc, like every later growth. */
		rc = vfile_reserve(vf, len + 1);
		if (rc == 0) {
			memcpy(vf->buf, text, len);
			vf->len = vf->checked = len;
		}
		seg_free(text);
		if (rc < 0)
			goto fail;
	}
	rc = seg_open(fs->ns, view, 0, NULL, NULL, &backing);
	if (rc < 0)
		goto fail;
	fi->fh = (uint64_t)(uintptr_t)vf;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 0;
	return 0;
fail:
	free(vf->buf);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
	return rc;
}

void views_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct vfile *vf = vfile_of(fi);
	size_t n = 0;

	pthread_mutex_lock(&vf->lock);
	if (off >= 0 && (size_t)off < vf->len)
		n = vf->len - (size_t)off < size ? vf->len - (size_t)off : size;
	fuse_reply_buf(req, n ? vf->buf + off : NULL, n);
	pthread_mutex_unlock(&vf->lock);
}

/* Parses the complete lines not yet checked; -EINVAL at the first bad one. */
static int check_lines(struct vfile *vf)
{
	char *end = vf->len ? memrchr(vf->buf, '\n', vf->len) : NULL;
	size_t stop, at = vf->checked;

	if (end == NULL || (size_t)(end - vf->buf) < at)
		return 0;
	stop = (size_t)(end - vf->buf) + 1;
	while (at < stop) {
		char *nl = memchr(vf->buf + at, '\n', stop - at);
		size_t linelen = (size_t)(nl - (vf->buf + at));
		struct sl_list *l;
		size_t bad;
		int rc;

		/* sl_parse skips blank lines, as the final parse will. */
		rc = sl_parse(vf->buf + at, linelen, &l, &bad);
		if (rc < 0)
			return rc;
		sl_list_free(l);
		at += linelen + 1;
	}
	vf->checked = stop;
	return 0;
}

void views_write(fuse_req_t req, const char *data, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct vfile *vf = vfile_of(fi);
	size_t at;
	int rc;

	pthread_mutex_lock(&vf->lock);
	at = vf->append ? vf->len : (size_t)off;
	rc = off < 0 || at > SIZE_MAX - size ? -EFBIG : vfile_reserve(vf, at + size);
	if (rc == 0) {
		/* A write past the end leaves a hole of NULs, which no literal parses. */
		if (at > vf->len)
			memset(vf->buf + vf->len, 0, at - vf->len);
		memcpy(vf->buf + at, data, size);
		if (at + size > vf->len)
			vf->len = at + size;
		vf->dirty = true;
		/* Rewriting checked text: check again from that line on. */
		if (at < vf->checked) {
			char *nl = at ? memrchr(vf->buf, '\n', at) : NULL;

			vf->checked = nl ? (size_t)(nl - vf->buf) + 1 : 0;
		}
		rc = check_lines(vf);
		if (rc < 0)
			vf->bad = true;
	}
	pthread_mutex_unlock(&vf->lock);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

void views_flush(struct segfs *fs, fuse_req_t req, struct seg_inode *view,
		 struct fuse_file_info *fi)
{
	struct vfile *vf = vfile_of(fi);
	struct seg_view_effect eff = { 0 };
	struct sl_list *l;
	size_t bad;
	int rc = 0;

	pthread_mutex_lock(&vf->lock);
	if (vf->bad) {
		rc = -EINVAL;
	} else if (vf->dirty) {
		/* In place means over the newest bytes, not stale ones. */
		seg_view_sync(fs->ns, view);
		rc = sl_parse(vf->buf, vf->len, &l, &bad);
		if (rc == 0) {
			rc = seg_view_store(fs->ns, view, l, vf->mode, vf->uid, vf->gid, &eff);
			sl_list_free(l);
		}
		if (rc == -EINVAL)
			vf->bad = true;
		else if (rc == 0)
			vf->dirty = false;
	}
	pthread_mutex_unlock(&vf->lock);
	if (eff.in_place != NULL)
		notify(fs, (fuse_ino_t)(uintptr_t)eff.in_place, NULL, NULL);
	else if (eff.replaced)
		notify(fs, 0, eff.name, NULL);
	fuse_reply_err(req, -rc);
}

void views_truncate(struct fuse_file_info *fi, off_t size)
{
	struct vfile *vf = vfile_of(fi);

	pthread_mutex_lock(&vf->lock);
	if (size >= 0 && (size_t)size < vf->len) {
		char *nl;

		vf->len = (size_t)size;
		nl = vf->len ? memrchr(vf->buf, '\n', vf->len) : NULL;
		if (vf->checked > vf->len)
			vf->checked = nl ? (size_t)(nl - vf->buf) + 1 : 0;
	}
	vf->dirty = true;
	pthread_mutex_unlock(&vf->lock);
}

void views_release(struct segfs *fs, struct seg_inode *view, struct fuse_file_info *fi)
{
	struct vfile *vf = vfile_of(fi);
	int detach;

	seg_release(fs->ns, view, &detach);
	free(vf->buf);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
}
