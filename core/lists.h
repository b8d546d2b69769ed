/*
 * The lists/ view: lists/NAME shows segment NAME of the root, when it holds
 * a CPython ShareableList, as text (one Python repr() per line), and
 * writing text there changes the list.
 *
 * A view is an inode of its own, bound to the NAME, not to a segment: every
 * operation resolves root/NAME again, so lists/NAME always shows whatever
 * list the name holds now.  The name operations of ns.h (lookup, create,
 * mknod, unlink, rename, readdir) work on the lists directory too and act
 * on the root's segments; what is not a segment's list is not there.
 *
 * Which segments are lists: those that decode as a ShareableList with at
 * least one item, or of exactly 16 bytes that decode as CPython's empty
 * list.  A zero-filled segment of any other size decodes as an empty list
 * too, but is only a segment that nobody has written yet.
 */
#ifndef SEGFS_CORE_LISTS_H
#define SEGFS_CORE_LISTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/ns.h"
#include "core/sl.h"

/*
 * Bringing memfds up to date before lists/ reads them.  With cached FUSE
 * I/O the newest bytes of an open segment may still be dirty pages in the
 * kernel; `fn` is the caller's way of having them written back.  Only an
 * open segment can have such bytes (the kernel sends the last RELEASE of
 * a mapped file after munmap).  fn is called without the namespace lock,
 * with the segment pinned, and may wait for other requests to be served.
 * NULL (the default): nothing to do.  seg_ns_set_sync takes no lock, so
 * it may be called from anywhere, an attach callback included.
 */
typedef void (*seg_sync_fn)(void *arg, const struct seg_inode *seg);
void seg_ns_set_sync(struct seg_ns *ns, seg_sync_fn fn, void *arg);

/*
 * Runs the sync function for open root segment NAME, or for every open
 * root segment when name is NULL; for a view, for its name.  Best effort:
 * nothing fails.
 */
void seg_lists_sync(struct seg_ns *ns, const char *name);
void seg_view_sync(struct seg_ns *ns, struct seg_inode *view);

/* True for a view inode (an entry of lists/). */
bool seg_inode_is_view(const struct seg_inode *ino);

/*
 * Whether segment `seg` holds a list now, by the rule lists/ applies to
 * the root's segments (above), for a segment in any directory.  An open
 * segment is synced first, without the lock, so the caller must hold a
 * count on it.  *yes is set on success; -EINVAL if `seg` is not a segment,
 * -ENOMEM.  Bytes that are not a list are not an error: *yes = false.
 */
int seg_holds_list(struct seg_ns *ns, struct seg_inode *seg, bool *yes);

/*
 * Renders the list that the view shows now: *text (owned by the caller,
 * free with seg_free) gets one repr() per line.  -ENOENT if the name no
 * longer holds a list.
 */
int seg_view_render(struct seg_ns *ns, struct seg_inode *view, char **text, size_t *len);

/* What seg_view_store changed, for the caller to tell the kernel. */
struct seg_view_effect {
	/*
	 * The segment whose bytes were rewritten in place, or NULL.  Only an
	 * identity to pass on (the FUSE node id): it may be freed already.
	 */
	const struct seg_inode *in_place;
	bool replaced;     /* root/NAME now names a new segment */
	char name[256];    /* NAME */
};

/*
 * Makes the view's name hold the list `l`: in place when the name holds a
 * list with as many items and every new value fits its slot (CPython's
 * sl[i] = v, so attached processes see the new values), otherwise as a new
 * segment that replaces the old one under the name at once, as rename()
 * does (holders of the old one keep a consistent old list).  A new segment
 * takes the old one's owner, mode, creator pid and creation time, or
 * uid/gid/mode, pid 0 and now when there was none.
 * -EEXIST if the name holds a segment that is not a list (it is not
 * overwritten), -EISDIR if it holds a directory.
 */
int seg_view_store(struct seg_ns *ns, struct seg_inode *view, const struct sl_list *l,
		   mode_t mode, uid_t uid, gid_t gid, struct seg_view_effect *eff);

#endif
