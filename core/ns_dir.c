/*
 * Directory streams of the namespace.  See ns.h for the offsets and the
 * guarantees; the cursors themselves are core/dcache.h's.
 */
#include "core/ns.h"

#include "core/alloc.h"
#include "core/ns_i.h"

#include <errno.h>
#include <string.h>

static int opendir_counting(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out,
			    bool count)
{
	struct seg_dirh *dh;

	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	dh = seg_calloc(1, sizeof(*dh));
	if (dh == NULL)
		return -ENOMEM;
	dh->dir = dir;
	dc_cursor_init(&dh->cursor);
	ns_lock(ns);
	dh->end = dir->u.dir.d.next_cookie;
	if (count)
		ns_add(ns, dir, RI_NOPEN, 1);
	ns_unlock(ns);
	*out = dh;
	return 0;
}

int seg_opendir(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out)
{
	return opendir_counting(ns, dir, out, true);
}

int seg_opendir_adopt(struct seg_ns *ns, struct seg_inode *dir, struct seg_dirh **out)
{
	return opendir_counting(ns, dir, out, false);
}

void seg_releasedir_adopted(struct seg_ns *ns, struct seg_dirh *dh, bool counted)
{
	struct seg_inode *dir;

	if (dh == NULL)
		return;
	ns_lock(ns);
	dir = dh->dir;
	if (dh->linked)
		dc_unpark(&dh->cursor);
	if (counted) {
		ns_add(ns, dir, RI_NOPEN, -1);
		ns_maybe_free(ns, dir);
	}
	ns_unlock(ns);
	seg_free(dh);
}

int seg_dir_cookie(struct seg_ns *ns, struct seg_inode *dir, const char *name,
		   uint64_t *cookie)
{
	struct seg_dentry *d;
	int rc = -ENOENT;

	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	ns_lock(ns);
	d = dc_find(&ns->dc, &dir->u.dir.d, name, strlen(name));
	if (d != NULL) {
		*cookie = d->cookie;
		rc = 0;
	}
	ns_unlock(ns);
	return rc;
}

void seg_releasedir(struct seg_ns *ns, struct seg_dirh *dh)
{
	seg_releasedir_adopted(ns, dh, true);
}

/* Emits "." or "..": type and number only, and never a reference. */
static int fill_dot(seg_fill_fn fill, void *arg, const char *name,
		    struct seg_inode *ino, uint64_t next)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino->u.dir.parent == ino ? 1 : ino->ino;
	st.st_mode = ns_mode(ino);
	return fill(arg, name, ino, &st, next);
}

int seg_readdir(struct seg_ns *ns, struct seg_dirh *dh, uint64_t off, bool plus,
		seg_fill_fn fill, void *arg)
{
	struct seg_inode *dir = dh->dir;
	struct dc_dir *d = &dir->u.dir.d;
	struct dc_node *n;
	struct stat st;

	ns_lock(ns);
	/*
	 * tmpfs's end of a stream (libfs's offset directories): what is made
	 * or renamed after it opened, or last rewound, has a cookie from
	 * `end` on, and lies after every older entry, where the stream stops.
	 * Without it, a name renamed away and back while the stream runs came
	 * again at its end (measured: 15,001 names from 15,000 files).
	 */
	if (off == 0 && dh->started)
		dh->end = d->next_cookie;
	dh->started = true;
	if (off == 0 && fill_dot(fill, arg, ".", dir, 1))
		goto out;
	if (off <= 1 && fill_dot(fill, arg, "..", dir->u.dir.parent, 2))
		goto out;
	if (dh->linked && dh->pos == off && off >= DC_FIRST_COOKIE - 1)
		n = dh->cursor.next;
	else
		n = dc_first_after(d, off);   /* a seek, or the first call */
	if (dh->linked)
		dc_unpark(&dh->cursor);
	for (; !dc_end(d, n); n = n->next) {
		struct seg_dentry *e = n->entry;
		struct seg_inode *ino;

		if (e == NULL)
			continue;   /* another stream's cursor */
		if (e->cookie >= dh->end)
			break;      /* newer than the stream */
		ino = e->inode;
		if (plus) {
			ns_fill_stat(ns, ino, &st);
		} else {
			memset(&st, 0, sizeof(st));
			st.st_ino = ino->ino;
			st.st_mode = ns_mode(ino);
		}
		if (fill(arg, e->name, ino, &st, e->cookie))
			break;
		if (plus)
			ns_add(ns, ino, RI_NLOOKUP, 1);
		off = e->cookie;
	}
	/* Park the cursor before the first entry not handed out. */
	dc_park(&dh->cursor, n);
	dh->linked = true;
	dh->pos = off < DC_FIRST_COOKIE - 1 ? DC_FIRST_COOKIE - 1 : off;
out:
	ns_unlock(ns);
	return 0;
}
