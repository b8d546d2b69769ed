/*
 * The lists/ view: a directory of the root whose entry NAME, when the
 * root's segment NAME holds a CPython ShareableList, is that list as text
 * (one Python repr() per line); writing text there changes the list.
 *
 * A layer above the namespace (core/ns.h): it works only through the
 * namespace's functions and hears of its changes through the namespace's
 * hook; the namespace knows nothing of it.  Its parts:
 *
 *   - the directory: a fixed directory of the namespace (lv_dir), which
 *     the FUSE layer routes to the functions here;
 *   - its entries (struct lv_node): one per name the kernel holds, bound
 *     to the NAME, not to a segment.  Every operation resolves root/NAME
 *     again, so lists/NAME always shows whatever list the name holds now.
 *
 * Which segments are lists: those that decode as a ShareableList with at
 * least one item, or of exactly 16 bytes that decode as CPython's empty
 * list.  A zero-filled segment of any other size decodes as an empty list
 * too, but is only a segment that nobody has written yet.  What is not a
 * list is not there: ENOENT.  Other errors (out of memory or descriptors,
 * I/O) keep their errno.
 *
 * Rendering.  An entry keeps its last rendering with the bytes it came
 * from, so that a `cat lists/x` (LOOKUP, GETATTR, OPEN) decodes and renders
 * once: later requests read the bytes again and reuse the text when they
 * are the same.  The namespace's hook marks an entry's rendering stale
 * when its name or its segment's size changes.
 *
 * Locking: the view's lock covers its table of entries, their counts and
 * renderings.  It is never held while calling into the namespace, and the
 * namespace's hook takes it (namespace lock, then view lock).  Segment
 * bytes are read, decoded and rendered under no lock at all.
 *
 * Errors: 0 or -errno; on error nothing changed and no out-parameter was
 * written.
 */
#ifndef SEGFS_CORE_LISTS_H
#define SEGFS_CORE_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/ns.h"
#include "core/sl.h"

struct lv;
struct lv_node;
struct lv_dirh;

/*
 * Makes the view: the directory `name` in the root, fixed there, and the
 * namespace's hook.  *out is the caller's, freed with lv_free before the
 * namespace.  lv_adopt makes the view a previous server left on a
 * rebuilt namespace (core/ns.h: seg_ns_rebuild): its directory, and every
 * entry the kernel holds, from the region's records.  lv_free frees the
 * view's memory only: the records stay for a next server.
 */
int lv_new(struct seg_ns *ns, const char *name, struct lv **out);
int lv_adopt(struct seg_ns *ns, const char *name, struct lv **out);
void lv_free(struct lv *lv);

/*
 * An entry's index among the region's view records: its number, the
 * same for every server for as long as the kernel holds it.  lv_node_at
 * finds the entry again (NULL: none).
 */
uint64_t lv_node_index(const struct lv_node *v);
struct lv_node *lv_node_at(struct lv *lv, uint64_t index);

/* The view's directory, a namespace inode; lives as long as the view. */
struct seg_inode *lv_dir(const struct lv *lv);

/* Entries of lists/ the view keeps now: for tests. */
uint64_t lv_node_count(struct lv *lv);

/* NAME: fixed for the entry's life, readable without the lock. */
const char *lv_node_name(const struct lv_node *v);

/*
 * Bringing a segment up to date before it is read.  With cached FUSE I/O
 * the newest bytes of an open segment may still be dirty pages in the
 * kernel; `fn` is the caller's way of having them written back.  It is
 * called for open segments only (the kernel sends the last RELEASE of a
 * mapped file after munmap), with no lock held and a reference on the
 * segment, and may wait for other requests to be served.  NULL (the
 * default): nothing to do.  Safe to call from any thread at any time.
 */
typedef void (*lv_sync_fn)(void *arg, struct seg_inode *seg);
void lv_set_sync(struct lv *lv, lv_sync_fn fn, void *arg);

/*
 * Whether segment `seg` (anywhere in the namespace; the caller holds a
 * count on it) holds a list now, by the rule above.  -EINVAL if it is not
 * a segment.  Bytes that are not a list are not an error: *yes = false.
 */
int lv_holds_list(struct lv *lv, struct seg_inode *seg, bool *yes);

/*
 * Names in lists/.  A function that hands back an entry adds one
 * reference to it (lv_forget drops them) and fills *st with its
 * attributes: its segment's owner, mode and times, its text's size.
 */
int lv_lookup(struct lv *lv, const char *name, struct lv_node **out, struct stat *st);

/*
 * lists/NAME for a new list: an existing one is handed back (*created
 * false) unless SEG_CREATE_EXCL; else root/NAME is made, holding CPython's
 * empty list, owned by who with `mode`.  -EEXIST if root/NAME holds
 * something that is not a list (it is not turned into one), -EISDIR for a
 * directory.
 */
int lv_create(struct lv *lv, const char *name, mode_t mode, const struct seg_cred *who,
	      int flags, struct lv_node **out, struct stat *st, bool *created);

/* unlink and rename of root segments that hold lists: ENOENT for others. */
int lv_unlink(struct lv *lv, const char *name);
int lv_rename(struct lv *lv, const char *name, const char *newname, unsigned flags);

void lv_forget(struct lv *lv, struct lv_node *v, uint64_t n);

/*
 * lists/ as a directory stream: "." and "..", then the root's segments
 * that hold lists, in the root's order and at the root's offsets.  `fill`
 * gets each entry's name, number and mode (no references are taken) and
 * returns non-zero to stop before it.  The segments are read and decoded
 * under no lock.
 */
typedef int (*lv_fill_fn)(void *arg, const char *name, const struct stat *st, uint64_t next);

int lv_opendir(struct lv *lv, struct lv_dirh **out);
int lv_readdir(struct lv *lv, struct lv_dirh *dh, uint64_t off, lv_fill_fn fill, void *arg);
void lv_releasedir(struct lv *lv, struct lv_dirh *dh);

int lv_getattr(struct lv *lv, struct lv_node *v, struct stat *st);

/*
 * chmod, chown and utimes of the segment behind the entry.  The text's
 * size follows the items and cannot be set: -EINVAL.
 */
int lv_setattr(struct lv *lv, struct lv_node *v, const struct stat *attr, unsigned mask,
	       struct stat *st);

/*
 * Opens a handle: counts it, and passes `take` the text the list renders
 * now (under no lock; take copies what it keeps).  With take NULL (a
 * handle that writes new text) it only counts.  lv_release drops it.
 */
typedef int (*lv_take_fn)(void *arg, const char *text, size_t len);
int lv_open(struct lv *lv, struct lv_node *v, lv_take_fn take, void *arg);
void lv_release(struct lv *lv, struct lv_node *v);

/* What lv_store changed, for the caller to tell the kernel. */
struct lv_effect {
	/*
	 * The segment whose bytes were rewritten in place, or NULL.  Only an
	 * identity to pass on (the FUSE node id): it may be freed already.
	 */
	const struct seg_inode *in_place;
	bool replaced;     /* root/NAME now names a new segment */
};

/*
 * Makes the entry's name hold the list `l`: in place when the name holds a
 * list with as many items and every new value fits its slot (CPython's
 * sl[i] = v, so attached processes see the new values), otherwise as a new
 * segment that replaces the old one under the name at once, as rename()
 * does (holders of the old one keep a consistent old list).  A new segment
 * takes the old one's owner, mode, creator pid and creation time, or
 * who's owner and `mode`, pid 0 and now when there was none.
 * -EEXIST if the name holds a segment that is not a list (it is not
 * overwritten), -EISDIR if it holds a directory.
 */
int lv_store(struct lv *lv, struct lv_node *v, const struct sl_list *l, mode_t mode,
	     const struct seg_cred *who, struct lv_effect *eff);

#endif
