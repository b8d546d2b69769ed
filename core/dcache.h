/*
 * The dentry table: the names of the namespace.
 *
 * Every name is a seg_dentry, found through ONE hash table keyed by
 * (parent directory, name), as the kernel's dcache does: a directory with
 * one entry costs no table of its own.  Each directory also keeps its
 * entries on a list in creation order, which readdir walks.  A directory
 * stream keeps its place with a cursor node on that list, the way tmpfs's
 * dcache_readdir does, so entries added or removed while it is open never
 * make it skip or repeat a surviving entry, and resuming costs O(1).
 *
 * Workload: tens of thousands of entries in one directory (a /dev/shm) are
 * expected, so lookups are O(1) and an entry costs its struct and its name.
 *
 * The table knows nothing of inodes but a pointer to each; the caller (the
 * namespace) serializes every call with its own lock.  Nothing here
 * allocates or frees except dc_alloc, dc_free and the table's growth,
 * which the caller does outside its lock (dc_grow_size, dc_rehash).
 */
#ifndef SEGFS_CORE_DCACHE_H
#define SEGFS_CORE_DCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seg_inode;

/* The first readdir offset that names an entry: 1 is ".", 2 is "..". */
#define DC_FIRST_COOKIE 3

/* A node of a directory's entry list: an entry, or a stream's cursor. */
struct dc_node {
	struct dc_node *prev, *next;
	struct seg_dentry *entry;      /* NULL for a cursor or the list head */
};

/* The entries of one directory; embedded in its inode. */
struct dc_dir {
	struct dc_node entries;        /* list head, creation order */
	uint64_t next_cookie;
	uint64_t nentries;
};

struct seg_dentry {
	struct dc_node node;           /* on parent->entries */
	struct seg_dentry *hnext;      /* hash chain; dead list once removed */
	struct dc_dir *parent;
	struct seg_inode *inode;
	uint64_t cookie;               /* readdir offset that follows it */
	uint64_t hash;
	size_t len;
	char name[];
};

struct seg_dcache {
	struct seg_dentry **buckets;
	size_t nbuckets;               /* a power of two */
	size_t nentries;
	uint64_t seed;
};

/* An empty table; -ENOMEM.  dc_destroy frees the table, not the entries. */
int dc_init(struct seg_dcache *dc);
void dc_destroy(struct seg_dcache *dc);

void dc_dir_init(struct dc_dir *dir);

/* A new dentry named name[0..len), not in any directory; NULL if out of memory. */
struct seg_dentry *dc_alloc(const char *name, size_t len);
/* Frees a dentry that is in no directory.  dc_free(NULL) does nothing. */
void dc_free(struct seg_dentry *d);

struct seg_dentry *dc_find(const struct seg_dcache *dc, const struct dc_dir *dir,
			   const char *name, size_t len);

/* Puts `d` into `dir` under its name, leading to `ino`, last in order. */
void dc_add(struct seg_dcache *dc, struct dc_dir *dir, struct seg_dentry *d,
	    struct seg_inode *ino);

/* Takes `d` out of its directory; the caller frees it (dc_free). */
void dc_remove(struct seg_dcache *dc, struct seg_dentry *d);

/*
 * Growth.  dc_grow_size is the bucket count the table wants (0: none).
 * The caller allocates that many zeroed buckets outside its lock and hands
 * them to dc_rehash under it, which returns the array to free: the old
 * one, or the new one if the table no longer wants it.
 */
size_t dc_grow_size(const struct seg_dcache *dc);
struct seg_dentry **dc_rehash(struct seg_dcache *dc, struct seg_dentry **b, size_t n);

/*
 * Directory walks.  A walk goes from node to node (n->next) until dc_end,
 * skipping nodes without an entry (other streams' cursors).
 * dc_first_after(dir, off) is the first node holding an entry with a
 * cookie above `off` (the list head if none).  A cursor is parked with
 * dc_park (before `n`) and taken off with dc_unpark.
 */
struct dc_node *dc_first_after(struct dc_dir *dir, uint64_t off);
bool dc_end(const struct dc_dir *dir, const struct dc_node *n);
void dc_cursor_init(struct dc_node *cursor);
void dc_park(struct dc_node *cursor, struct dc_node *before);
void dc_unpark(struct dc_node *cursor);

#endif
