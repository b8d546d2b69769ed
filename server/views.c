/*
 * lists/ and its entries, the FUSE side of the view (core/lists.h): the
 * tables lists_dir_ops (the directory) and view_ops (its entries).
 *
 * An open entry holds text: a snapshot rendered at open for reading (and
 * for edits and appends), or, with O_TRUNC or a new entry, the text being
 * written.  Writes only change the handle.  Complete lines are checked as
 * they arrive, so a bad one fails the write() that completes it with
 * EINVAL; FLUSH (every close) parses the whole text and stores it through
 * the view, or fails with EINVAL and changes nothing.  Handles use direct
 * I/O: the kernel keeps no pages of entries, whose length follows the
 * list, and neither their names nor their attributes, which any process
 * may change by writing to a segment through a mapping, unseen by us.
 */
#include "server/node.h"

#include "core/sltext.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * An open entry.  It is a handle (server/handles.h) whose record keeps
 * its flags, mode and opener; its text is also kept in a file of the
 * state tmpfs, h/INDEX, written as the handle's text changes, so that a
 * server that takes over (vfile_adopt) has the text a process was
 * writing, and stores it at its close.  Without a state tmpfs the text
 * is only in memory.
 */
struct vfile {
	struct handle h;
	struct lv_node *v;      /* the entry, for a release that never comes */
	pthread_mutex_t lock;   /* a handle may be used by threads at once */
	char *buf;              /* protected by lock, as is everything below */
	size_t len, cap;
	size_t checked;         /* complete lines before this were parsed */
	bool dirty;             /* FLUSH has text to store */
	bool bad;               /* a line was refused: FLUSH refuses too */
	bool append;            /* O_APPEND: writes go to the end */
	mode_t mode;            /* for a list that has to be created */
	struct seg_cred who;    /* the opener, owner of such a list */
	int fd;                 /* h/INDEX, or -1 */
};

/* The record's flags beside HF_COUNTED. */
#define VF_DIRTY  0x10
#define VF_BAD    0x20
#define VF_APPEND 0x40

static struct vfile *vfile_of(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);

	return (struct vfile *)handle_get(&fs->handles, fs, fi->fh);
}

/* Keeps the handle's flags in its record (the lock is held). */
static void vfile_keep_flags(struct segfs *fs, struct vfile *vf)
{
	uint64_t *w = handle_words(&fs->handles, &vf->h);
	uint64_t f = (w[RH_FLAGS] & HF_COUNTED) | (vf->dirty ? VF_DIRTY : 0) |
		     (vf->bad ? VF_BAD : 0) | (vf->append ? VF_APPEND : 0);

	if (f != w[RH_FLAGS])
		handle_set(&fs->handles, &vf->h, RH_FLAGS, f);
}

/* The name of its text in the state tmpfs. */
static void vfile_name(const struct vfile *vf, char name[32])
{
	snprintf(name, 32, "h/%llu", (unsigned long long)vf->h.index);
}

/* Writes `len` bytes of its text, at `at`, to its file too (the lock is held). */
static int vfile_keep_text(struct vfile *vf, size_t at, size_t len)
{
	ssize_t w;

	if (vf->fd < 0)
		return 0;
	if (ftruncate(vf->fd, (off_t)vf->len) < 0)
		return -errno;
	w = len > 0 ? pwrite(vf->fd, vf->buf + at, len, (off_t)at) : 0;
	return w < 0 ? -errno : (size_t)w == len ? 0 : -EIO;
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
 *
 * And a thread that waits in the kernel for a directory's lock cannot die:
 * if the daemon is killed then, and the lock's holder waits for a reply
 * from the daemon, neither ever goes on, the daemon never exits, its
 * connection is never aborted, and the mount hangs until someone aborts
 * it by hand (seen, 1 run in 6, when SIGKILL met the stress test).  So
 * where the kernel has FUSE_NOTIFY_INC_EPOCH (Linux 6.16), root entries
 * are dropped by that instead, which takes no lock: every cached name of
 * the mount is looked up again at its next use, a LOOKUP each, which
 * changes through lists/ are rare enough to pay for.
 */
struct notice {
	struct fuse_session *se;
	bool epoch;              /* drop names by a new epoch, not one by one */
	fuse_ino_t ino;          /* inode to invalidate, or 0 */
	size_t n;                /* names of root entries to invalidate */
	char names[2][256];
};

/*
 * FUSE_NOTIFY_INC_EPOCH.  libfuse has a call for it from 3.18; with an
 * older one (the build against Debian 12's 3.14) the message is written
 * as libfuse would write it: a fuse_out_header alone, unique 0 and the
 * notice's code in its error field.  The kernel takes it whatever minor
 * version INIT agreed on, so the old libfuse loses nothing but the call.
 */
static int notify_new_epoch(struct fuse_session *se)
{
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 18)
	return fuse_lowlevel_notify_increment_epoch(se);
#else
	enum { NOTIFY_INC_EPOCH = 8 };  /* <linux/fuse.h>, protocol 7.44 */
	struct { uint32_t len; int32_t error; uint64_t unique; } out = {
		.len = sizeof(out), .error = NOTIFY_INC_EPOCH, .unique = 0,
	};
	ssize_t w = write(fuse_session_fd(se), &out, sizeof(out));

	return w == (ssize_t)sizeof(out) ? 0 : w < 0 ? -errno : -EIO;
#endif
}

static void send_notice(const struct notice *nt)
{
	if (nt->ino != 0)
		fuse_lowlevel_notify_inval_inode(nt->se, nt->ino, 0, 0);
	if (nt->n > 0 && nt->epoch && notify_new_epoch(nt->se) == 0)
		return;
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

/* Sends the notices now, or from a new thread where the above says so. */
static void notify(struct segfs *fs, fuse_ino_t ino, const char *a, const char *b)
{
	struct notice nt = { .se = fs->se, .epoch = fs->epoch, .ino = ino };
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

/* ---- entry replies ---------------------------------------------------- */

/*
 * Replies with an entry of lists/: never cached, since any process may
 * turn a segment into a list or out of one through a mapping.
 */
static void reply_view_entry(fuse_req_t req, struct lv_node *v, const struct stat *st)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e = { .ino = node_view_id(v), .attr = *st };

	req_result(fs, e.ino, 0);
	if (fuse_reply_entry(req, &e) != 0)
		lv_forget(fs->lists, v, 1);
}

/* A resent request whose entry was answered: the same again, no reference. */
static bool view_entry_replayed(fuse_req_t req)
{
	struct segfs *fs = fs_of(req);
	struct fuse_entry_param e = { 0 };
	uint64_t a, b;
	struct node n;

	if (!req_replayed(&a, &b))
		return false;
	n = node_of(fs, a);
	if (n.view == NULL || lv_getattr(fs->lists, n.view, &e.attr) < 0) {
		reply_err(req, -ESTALE);
		return true;
	}
	e.ino = a;
	fuse_reply_entry(req, &e);
	return true;
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

/* lv_take_fn: the handle keeps a copy of the text. */
static int take_text(void *arg, const char *text, size_t len)
{
	struct vfile *vf = arg;
	int rc = vfile_reserve(vf, len + 1);

	if (rc == 0) {
		memcpy(vf->buf, text, len);
		vf->len = vf->checked = len;
		rc = vfile_keep_text(vf, 0, len);
	}
	return rc;
}

static void vfile_free(struct segfs *fs, struct vfile *vf)
{
	char name[32];

	if (vf->fd >= 0) {
		close(vf->fd);
		vfile_name(vf, name);
		unlinkat(fs->state, name, 0);
	}
	free(vf->buf);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
}

/*
 * server/handles.c: a release, or one that never came.  Its text is not
 * stored (FLUSH does that).
 */
static void vfile_drop(struct segfs *fs, struct handle *h)
{
	struct vfile *vf = (struct vfile *)h;

	if (handle_uncount(&fs->handles, h))
		lv_release(fs->lists, vf->v);
	vfile_free(fs, vf);
}

static struct vfile *vfile_alloc(void)
{
	struct vfile *vf = calloc(1, sizeof(*vf));

	if (vf != NULL) {
		pthread_mutex_init(&vf->lock, NULL);
		vf->fd = -1;
	}
	return vf;
}

/* Its text's file, made empty (`make`) or opened as a dead server left it. */
static int vfile_open_text(struct segfs *fs, struct vfile *vf, bool make)
{
	char name[32];

	if (fs->state < 0)
		return 0;
	vfile_name(vf, name);
	vf->fd = openat(fs->state, name, O_RDWR | O_CLOEXEC | (make ? O_CREAT | O_TRUNC : 0),
			0600);
	return vf->fd < 0 ? -errno : 0;
}

static int check_lines(struct vfile *vf);

struct handle *vfile_adopt(struct segfs *fs, uint64_t index, const uint64_t *w)
{
	struct node n = node_of(fs, w[RH_NODE]);
	struct vfile *vf;
	struct stat st;

	if (n.view == NULL)
		return NULL;
	vf = vfile_alloc();
	if (vf == NULL)
		return NULL;
	vf->h.index = index;
	vf->h.drop = vfile_drop;
	vf->v = n.view;
	vf->mode = (mode_t)w[RH_A];
	vf->who.uid = (uid_t)w[RH_B];
	vf->who.gid = (gid_t)w[RH_C];
	vf->dirty = (w[RH_FLAGS] & VF_DIRTY) != 0;
	vf->bad = (w[RH_FLAGS] & VF_BAD) != 0;
	vf->append = (w[RH_FLAGS] & VF_APPEND) != 0;
	if (vfile_open_text(fs, vf, false) < 0 || fstat(vf->fd, &st) < 0 ||
	    vfile_reserve(vf, (size_t)st.st_size + 1) < 0 ||
	    pread(vf->fd, vf->buf, (size_t)st.st_size, 0) != st.st_size) {
		vfile_free(fs, vf);
		return NULL;
	}
	vf->len = (size_t)st.st_size;
	/* Its lines are checked again, from the first. */
	if (check_lines(vf) < 0)
		vf->bad = true;
	return &vf->h;
}

/*
 * Opens a handle on an entry.  `created`: the entry was just made (its
 * text starts empty); `mode` is for a list that has to be created at
 * FLUSH.  On success fills fi.
 */
static int vfile_open(struct segfs *fs, fuse_req_t req, struct lv_node *v,
		      struct fuse_file_info *fi, bool created, mode_t mode)
{
	struct vfile *vf = vfile_alloc();
	int rc;

	if (vf == NULL)
		return -ENOMEM;
	vf->mode = mode;
	vf->who = cred_of(req);
	vf->who.pid = 0;
	vf->append = (fi->flags & O_APPEND) != 0;
	vf->v = v;
	rc = handle_add(&fs->handles, &vf->h, vfile_drop, HK_VFILE, node_view_id(v));
	if (rc < 0) {
		pthread_mutex_destroy(&vf->lock);
		free(vf);
		return rc;
	}
	handle_set(&fs->handles, &vf->h, RH_A, mode);
	handle_set(&fs->handles, &vf->h, RH_B, vf->who.uid);
	handle_set(&fs->handles, &vf->h, RH_C, vf->who.gid);
	rc = vfile_open_text(fs, vf, true);
	if (rc == 0 && (created || (fi->flags & O_TRUNC))) {
		/* The new text replaces the list at close, even if it is empty. */
		vf->dirty = (fi->flags & O_ACCMODE) != O_RDONLY;
		rc = lv_open(fs->lists, v, NULL, NULL);
	} else if (rc == 0) {
		rc = lv_open(fs->lists, v, take_text, vf);
	}
	if (rc < 0) {
		handle_release(fs, &vf->h);
		return rc;
	}
	handle_counted(&fs->handles, &vf->h);
	vfile_keep_flags(fs, vf);
	fi->fh = handle_fh(&vf->h);
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 0;
	return 0;
}

/* A resent open whose answer was recorded: the same handle again. */
static bool open_replayed(struct fuse_file_info *fi)
{
	uint64_t a, b;

	if (!req_replayed(&a, &b))
		return false;
	fi->fh = b;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 0;
	return true;
}

static void view_open(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	int rc;

	if (open_replayed(fi)) {
		fuse_reply_open(req, fi);
		return;
	}
	rc = vfile_open(fs, req, n->view, fi, false, 0600);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	req_result(fs, 0, fi->fh);
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, &vfile_of(req, fi)->h);
}

static void view_read(fuse_req_t req, struct node *n, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct vfile *vf = vfile_of(req, fi);
	size_t len = 0;

	(void)n;
	if (vf == NULL) {
		reply_err(req, -EBADF);
		return;
	}
	pthread_mutex_lock(&vf->lock);
	if (off >= 0 && (size_t)off < vf->len)
		len = vf->len - (size_t)off < size ? vf->len - (size_t)off : size;
	fuse_reply_buf(req, len ? vf->buf + off : NULL, len);
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

/* Puts `size` bytes of `data` into the handle's text at `off`. */
static int vfile_write(struct segfs *fs, struct vfile *vf, const char *data, size_t size,
		       off_t off)
{
	size_t at, from;
	int rc;

	pthread_mutex_lock(&vf->lock);
	from = vf->len;
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
		/* The file keeps all of it: a write past the end, its hole too. */
		if (vfile_keep_text(vf, at > from ? from : at, at + size - (at > from ? from : at))
		    < 0 && rc == 0)
			rc = -EIO;
		vfile_keep_flags(fs, vf);
	}
	pthread_mutex_unlock(&vf->lock);
	return rc;
}

static void view_write_buf(fuse_req_t req, struct node *n, struct fuse_bufvec *in, off_t off,
			   struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	/* Entries take text in memory: gather it first (it may be a pipe). */
	char *data = malloc(out.buf[0].size ? out.buf[0].size : 1);
	ssize_t w;
	int rc;

	struct vfile *vf = vfile_of(req, fi);

	(void)n;
	out.buf[0].mem = data;
	w = data != NULL ? fuse_buf_copy(&out, in, 0) : -ENOMEM;
	if (vf == NULL)
		w = -EBADF;
	/* A write sent again writes the same bytes at the same place. */
	rc = w < 0 ? (int)w : vfile_write(fs_of(req), vf, data, (size_t)w, off);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_write(req, (size_t)w);
	free(data);
}

/*
 * A resent store that a dead server made by replacing the segment: the
 * name leads to the new one its intent names.  (A store in place writes
 * the same bytes again, which changes nothing.)
 */
static bool stored_already(struct segfs *fs, struct node *n)
{
	struct stat st;
	struct seg_inode *seg = req_made(fs, seg_ns_root(fs->ns), lv_node_name(n->view),
					 RG_INTENT_REPLACE, &st);

	if (seg == NULL)
		return false;
	seg_forget(fs->ns, seg, 1);
	return true;
}

/* close() of an entry stores its text, or says why not. */
static void view_flush(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct vfile *vf = vfile_of(req, fi);
	struct lv_effect eff = { 0 };
	struct sl_list *l;
	uint64_t a, b;
	size_t bad;
	int rc = 0;

	if (vf == NULL) {
		reply_err(req, -EBADF);
		return;
	}
	pthread_mutex_lock(&vf->lock);
	if (vf->dirty && req_replayed(&a, &b)) {
		vf->dirty = false;
	} else if (vf->dirty && stored_already(fs, n)) {
		vf->dirty = false;
		crash_point("lists-write");
	}
	if (vf->bad) {
		rc = -EINVAL;
	} else if (vf->dirty) {
		rc = sl_parse(vf->buf, vf->len, &l, &bad);
		if (rc == 0) {
			rc = lv_store(fs->lists, n->view, l, vf->mode, &vf->who, &eff);
			sl_list_free(l);
		}
		if (rc == -EINVAL)
			vf->bad = true;
		else if (rc == 0)
			vf->dirty = false;
		if (rc == 0)
			crash_point("lists-write");
	}
	vfile_keep_flags(fs, vf);
	pthread_mutex_unlock(&vf->lock);
	if (eff.in_place != NULL)
		notify(fs, node_id(fs, eff.in_place), NULL, NULL);
	else if (eff.replaced)
		notify(fs, 0, lv_node_name(n->view), NULL);
	if (rc == 0)
		req_result(fs, 0, 0);
	reply_err(req, rc);
}

static void view_release(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct vfile *vf = vfile_of(req, fi);

	(void)n;
	/* Released already by a server that died before answering: gone. */
	if (vf != NULL)
		handle_release(fs, &vf->h);
	req_result(fs, 0, 0);
	reply_err(req, 0);
}

static void view_forget(struct segfs *fs, struct node *n, uint64_t nlookup)
{
	lv_forget(fs->lists, n->view, nlookup);
}

static void view_getattr(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = lv_getattr(fs_of(req)->lists, n->view, &st);

	(void)fi;
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, 0);
}

static void view_setattr(fuse_req_t req, struct node *n, struct stat *attr, int valid,
			 struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	unsigned mask = setattr_mask(valid);
	struct stat st;
	int rc;

	/* ftruncate() of an open entry cuts the text it is writing. */
	if ((mask & SEG_SET_SIZE) && fi != NULL && vfile_of(req, fi) != NULL) {
		struct vfile *vf = vfile_of(req, fi);

		pthread_mutex_lock(&vf->lock);
		if (attr->st_size >= 0 && (size_t)attr->st_size < vf->len) {
			char *nl;

			vf->len = (size_t)attr->st_size;
			nl = vf->len ? memrchr(vf->buf, '\n', vf->len) : NULL;
			if (vf->checked > vf->len)
				vf->checked = nl ? (size_t)(nl - vf->buf) + 1 : 0;
		}
		vf->dirty = true;
		vfile_keep_text(vf, vf->len, 0);
		vfile_keep_flags(fs, vf);
		pthread_mutex_unlock(&vf->lock);
		mask &= ~(unsigned)SEG_SET_SIZE;
	}
	rc = mask ? lv_setattr(fs->lists, n->view, attr, mask, &st)
		  : lv_getattr(fs->lists, n->view, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, 0);
}

const struct node_ops view_ops = {
	.kind = "lists/ entry",
	.forget = view_forget,
	.getattr = view_getattr,
	.setattr = view_setattr,
	.open = view_open,
	.read = view_read,
	.write_buf = view_write_buf,
	.flush = view_flush,
	.release = view_release,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};

/* ---- the directory ---------------------------------------------------- */

static void lists_lookup(fuse_req_t req, struct node *dir, const char *name)
{
	struct lv_node *v;
	struct stat st;
	int rc;

	(void)dir;
	if (view_entry_replayed(req))
		return;
	rc = lv_lookup(fs_of(req)->lists, name, &v, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_view_entry(req, v, &st);
}

static void lists_create(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct fuse_entry_param e = { 0 };
	struct lv_node *v;
	bool created;
	int rc;

	(void)dir;
	if (open_replayed(fi)) {
		struct node n = node_of(fs, req_current()->result_a);

		if (n.view == NULL || lv_getattr(fs->lists, n.view, &e.attr) < 0) {
			reply_err(req, -ESTALE);
			return;
		}
		e.ino = n.id;
		fuse_reply_create(req, &e, fi);
		return;
	}
	/*
	 * Sent again after a crash: what the first attempt took was given
	 * back; a list it made is found, as an existing one, not made again
	 * (O_EXCL would refuse it).
	 */
	rc = lv_create(fs->lists, name, mode, &who,
		       (fi->flags & O_EXCL) && !req_current()->resent ? SEG_CREATE_EXCL : 0,
		       &v, &e.attr, &created);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	rc = vfile_open(fs, req, v, fi, created, mode);
	if (rc < 0) {
		lv_forget(fs->lists, v, 1);
		reply_err(req, rc);
		return;
	}
	e.ino = node_view_id(v);
	req_result(fs, e.ino, fi->fh);
	if (fuse_reply_create(req, &e, fi) != 0) {
		handle_release(fs, &vfile_of(req, fi)->h);
		lv_forget(fs->lists, v, 1);
	}
	if (created)
		notify(fs, 0, name, NULL);
}

static void lists_mknod(fuse_req_t req, struct node *dir, const char *name, mode_t mode,
			dev_t rdev)
{
	struct segfs *fs = fs_of(req);
	struct seg_cred who = cred_of(req);
	struct lv_node *v;
	struct stat st;
	bool created;
	int rc;

	(void)dir;
	(void)rdev;
	/* Only regular files are lists. */
	if (!S_ISREG(mode)) {
		reply_err(req, -EPERM);
		return;
	}
	if (view_entry_replayed(req))
		return;
	rc = lv_create(fs->lists, name, mode, &who,
		       req_current()->resent ? 0 : SEG_CREATE_EXCL, &v, &st, &created);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	reply_view_entry(req, v, &st);
	notify(fs, 0, name, NULL);
}

/* lists/ holds entries of the root's segments, made only by create. */
static void lists_refuse_mkdir(fuse_req_t req, struct node *dir, const char *name,
			       mode_t mode)
{
	(void)dir;
	(void)name;
	(void)mode;
	reply_err(req, -EPERM);
}

static void lists_refuse_symlink(fuse_req_t req, const char *link, struct node *dir,
				 const char *name)
{
	(void)link;
	(void)dir;
	(void)name;
	reply_err(req, -EPERM);
}

static void lists_refuse_link(fuse_req_t req, struct node *n, struct node *newdir,
			      const char *newname)
{
	(void)n;
	(void)newdir;
	(void)newname;
	reply_err(req, -EPERM);
}

static void lists_unlink(fuse_req_t req, struct node *dir, const char *name)
{
	struct segfs *fs = fs_of(req);
	uint64_t a, b;
	int rc;

	(void)dir;
	/* Done by a server that died before answering: its intent says. */
	if (req_replayed(&a, &b) ||
	    (req_intent(RG_INTENT_REMOVE, &a, &b) && !req_leads_to(fs, seg_ns_root(fs->ns), name, a)))
		rc = 0;
	else
		rc = lv_unlink(fs->lists, name);
	if (rc == 0)
		req_result(fs, 0, 0);
	reply_err(req, rc);
	if (rc == 0)
		notify(fs, 0, name, NULL);
}

static void lists_rename(fuse_req_t req, struct node *dir, const char *name,
			 struct node *newdir, const char *newname, unsigned flags)
{
	struct segfs *fs = fs_of(req);
	uint64_t a, b;
	int rc;

	(void)dir;
	(void)newdir;
	if (req_replayed(&a, &b) ||
	    (req_intent(RG_INTENT_RENAME, &a, &b) && req_leads_to(fs, seg_ns_root(fs->ns), newname, a) &&
	     !req_leads_to(fs, seg_ns_root(fs->ns), name, a)))
		rc = 0;
	else
		rc = lv_rename(fs->lists, name, newname, flags);
	if (rc == 0)
		req_result(fs, 0, 0);
	reply_err(req, rc);
	if (rc == 0)
		notify(fs, 0, name, newname);
}

/*
 * A stream of lists/: a handle (server/handles.h).  A server that takes
 * over opens the stream again at its first use, and goes on from the
 * offset the kernel gives, an offset of the root as the dead server
 * numbered it.
 */
struct lists_handle {
	struct handle h;
	struct lv_dirh *dh;
};

static struct lists_handle *lists_handle_of(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);

	return (struct lists_handle *)handle_get(&fs->handles, fs, fi->fh);
}

static void lists_handle_drop(struct segfs *fs, struct handle *h)
{
	struct lists_handle *l = (struct lists_handle *)h;

	handle_uncount(&fs->handles, h);
	lv_releasedir(fs->lists, l->dh);
	free(l);
}

struct handle *lists_handle_adopt(struct segfs *fs, uint64_t index, const uint64_t *w)
{
	struct lists_handle *l = malloc(sizeof(*l));

	(void)index;
	(void)w;
	if (l == NULL)
		return NULL;
	if (lv_opendir(fs->lists, &l->dh) < 0) {
		free(l);
		return NULL;
	}
	l->h.drop = lists_handle_drop;
	return &l->h;
}

static void lists_opendir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct lists_handle *l;
	int rc;

	if (reply_opendir_replayed(req, fi))
		return;
	l = malloc(sizeof(*l));
	rc = l != NULL ? handle_add(&fs->handles, &l->h, lists_handle_drop, HK_LISTS_DIR, n->id)
		       : -ENOMEM;
	if (rc < 0) {
		free(l);
		reply_err(req, rc);
		return;
	}
	rc = lv_opendir(fs->lists, &l->dh);
	if (rc < 0) {
		handle_forget_index(&fs->handles, l->h.index);
		free(l);
		reply_err(req, rc);
		return;
	}
	fi->fh = handle_fh(&l->h);
	req_result(fs, fi->fh, 0);
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, &l->h);
}

struct dirbuf {
	fuse_req_t req;
	char *p;
	size_t size, used;
	bool plus;
};

/* lv_fill_fn: appends one entry, without a reference; non-zero when full. */
static int lists_fill(void *arg, const char *name, const struct stat *st, uint64_t next)
{
	struct dirbuf *b = arg;
	size_t room = b->size - b->used, n;

	if (b->plus) {
		/* Node id 0: entries are made by lookup, not by listing. */
		struct fuse_entry_param e = { .ino = 0, .attr = *st };

		n = fuse_add_direntry_plus(b->req, b->p + b->used, room, name, &e, (off_t)next);
	} else {
		n = fuse_add_direntry(b->req, b->p + b->used, room, name, st, (off_t)next);
	}
	if (n > room)
		return 1;
	b->used += n;
	return 0;
}

static void lists_readdir(fuse_req_t req, struct node *n, size_t size, off_t off,
			  struct fuse_file_info *fi, bool plus)
{
	struct dirbuf b = { .req = req, .size = size, .plus = plus };
	int rc;

	(void)n;
	b.p = malloc(size);
	if (b.p == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	struct lists_handle *l = lists_handle_of(req, fi);

	rc = l != NULL ? lv_readdir(fs_of(req)->lists, l->dh, (uint64_t)off, lists_fill, &b)
		       : -EBADF;
	/* What was listed before an error is still worth its reply. */
	if (rc < 0 && b.used == 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, b.p, b.used);
	free(b.p);
}

static void lists_releasedir(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct segfs *fs = fs_of(req);
	struct lists_handle *l = lists_handle_of(req, fi);

	(void)n;
	if (l != NULL)
		handle_release(fs, &l->h);
	req_result(fs, 0, 0);
	reply_err(req, 0);
}

const struct node_ops lists_dir_ops = {
	.kind = "lists/",
	.forget = inode_forget,
	.getattr = inode_getattr,
	.setattr = inode_setattr,
	.lookup = lists_lookup,
	.mknod = lists_mknod,
	.mkdir = lists_refuse_mkdir,
	.symlink = lists_refuse_symlink,
	.link = lists_refuse_link,
	.unlink = lists_unlink,
	.rename = lists_rename,
	.create = lists_create,
	.opendir = lists_opendir,
	.readdir = lists_readdir,
	.releasedir = lists_releasedir,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.setxattr = xattr_set,
	.removexattr = xattr_remove,
};
