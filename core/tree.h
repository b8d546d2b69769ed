/*
 * The tree: the namespace's names, kept as real ones in a private tmpfs
 * of their own (the state tmpfs: not the segments', whose every file a
 * client's mapping could keep alive, names and all), so that a server
 * that starts on a tree another one left can rebuild the namespace by
 * walking it (core/ns.h: seg_ns_rebuild).
 *
 * Layout of that tmpfs, whose root only the server and its supervisor
 * reach:
 *
 *   tree/      the namespace's root.  Directories are directories; a
 *              symlink is a symlink; every other inode (segment, fifo,
 *              socket, device, whiteout) is an empty file that stands for
 *              it: a segment's pages are in its own file, in the other
 *              tmpfs (core/store.h).  Hard links are hard links.
 *   ino/N      one more name for every non-directory inode, N its inode
 *              number, from its making to its freeing: it reaches the
 *              inode without a path (reopening a segment, linking it), and
 *              keeps an inode that has lost its last name (open after
 *              unlink, O_TMPFILE) alive across a restart.
 *   gone/N     removed directories that the kernel may still use (a
 *              process's working directory), until it forgets them.
 *   new/       directories being made: a name appears in tree/ complete,
 *              with one rename, or not at all.
 *
 * What the tmpfs cannot keep as segfs means it (mode, owner, the four
 * times, flags, a node's type and device, where a segment's pages are) is
 * in the region's inode records (core/region.h); extended attributes are
 * the tmpfs's own, on the file that stands for the inode.
 *
 * A directory is named by its path below tree/: "" for the root, else
 * "a/b".  Every function makes its change with one system call at the
 * point that counts (its commit), so that a server that dies leaves each
 * change done or not done.  The caller serializes changes (the namespace
 * lock).  0 or -errno.
 */
#ifndef SEGFS_CORE_TREE_H
#define SEGFS_CORE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct seg_tree;

/*
 * The tree of the private tmpfs whose root is `mnt` (borrowed, not
 * closed): made afresh (`fresh`), or an existing one opened.
 */
int tree_open(int mnt, bool fresh, struct seg_tree **out);
void tree_free(struct seg_tree *t);

/* ino/, where the store opens a segment's file again by its number. */
int tree_ino_fd(const struct seg_tree *t);

/* The tmpfs inode number of the namespace's root (tree/). */
uint64_t tree_root_ino(const struct seg_tree *t);

/*
 * New inodes, not yet named in tree/.  tree_keep names a new file (an
 * O_TMPFILE descriptor: a segment, or a node's stand-in) ino/N;
 * tree_new_symlink makes a symlink at ino/N; tree_new_dir makes a
 * directory in new/, under a name it writes to stage[] (at least
 * TREE_STAGE_MAX bytes).  *ino (or `ino`) is its number.
 */
#define TREE_STAGE_MAX 32

/* The longest directory path the tree takes (longer ones: -ENAMETOOLONG). */
#define TREE_PATH_MAX 16384

int tree_keep(struct seg_tree *t, int fd, uint64_t *ino);
/* An empty file that stands for a node without data (fifo, device, ...). */
int tree_new_file(struct seg_tree *t, uint64_t *ino);
int tree_new_symlink(struct seg_tree *t, const char *target, uint64_t *ino);
int tree_new_dir(struct seg_tree *t, char *stage, uint64_t *ino);
/* Undoes one of those for an inode that is not made after all. */
void tree_unmake(struct seg_tree *t, uint64_t ino, const char *stage);

/*
 * Names.  tree_link names non-directory inode `ino` `name` in `dir`;
 * tree_place moves a directory made by tree_new_dir into place.  Both
 * fail with -EEXIST rather than replace.
 */
int tree_link(struct seg_tree *t, uint64_t ino, const char *dir, const char *name);
/* Names `ino` `name` in `dir`, replacing what is there in one step. */
int tree_replace(struct seg_tree *t, uint64_t ino, const char *dir, const char *name);
int tree_place(struct seg_tree *t, const char *stage, const char *dir, const char *name);
int tree_unlink(struct seg_tree *t, const char *dir, const char *name);
/* Removes an empty directory; `keep` moves it to gone/N instead. */
int tree_rmdir(struct seg_tree *t, const char *dir, const char *name, uint64_t ino, bool keep);
/* renameat2(2) with `flags` RENAME_NOREPLACE or RENAME_EXCHANGE (or 0). */
int tree_rename(struct seg_tree *t, const char *dir, const char *name, const char *newdir,
		const char *newname, unsigned flags);

/*
 * Frees an inode for good: a non-directory's ino/N, a removed
 * directory's gone/N.  It is the last name: the pages of a segment no
 * process holds go with it, which may take long.
 */
void tree_drop(struct seg_tree *t, uint64_t ino, bool dir);

/*
 * Extended attributes of an inode: a non-directory by its number, a
 * directory by its path (`dir` not NULL; a removed one by its number
 * with dir NULL and `gone`; one being made by its name in new/).
 */
struct tree_at {
	uint64_t ino;
	const char *dir;       /* a directory's path, or NULL */
	bool gone;             /* a removed directory, in gone/ */
	const char *stage;     /* a directory being made, in new/ */
};

int tree_setxattr(struct seg_tree *t, const struct tree_at *at, const char *name,
		  const void *value, size_t size);
int tree_removexattr(struct seg_tree *t, const struct tree_at *at, const char *name);
/* listxattr(2) into buf (size 0: the length only), as the tmpfs orders them. */
int tree_listxattr(struct seg_tree *t, const struct tree_at *at, char *buf, size_t size,
		   size_t *len);
/* getxattr(2): *len is the value's size (size 0: the length only). */
int tree_getxattr(struct seg_tree *t, const struct tree_at *at, const char *name, void *buf,
		  size_t size, size_t *len);

/* A symlink's target, read back (rebuild): at most `size` bytes, NUL-terminated. */
int tree_readlink(struct seg_tree *t, uint64_t ino, char *buf, size_t size);

/*
 * The walk of a rebuild.  tree_walk calls `entry` for every name below
 * tree/, a directory's entries in the tmpfs's order (creation order, as
 * tmpfs keeps its offsets), parents before children: `parent` is what
 * `entry` returned for the directory the name is in (NULL for the root's
 * entries); what it returns for a directory is passed to that directory's
 * entries (return NULL with *err set to stop the walk).  Then
 * tree_orphans calls `each` for every ino/N and gone/N (dir true), and
 * removes what new/ holds.
 *
 * An entry is its number and kind as the directory lists them (getdents
 * has both: a rebuild of 10k segments would spend a third of its time
 * on a stat of each); tree_entry_stat gives the rest when it is needed.
 */
struct tree_entry {
	const char *name;
	uint64_t ino;
	mode_t type;                   /* S_IFMT bits */
	int dirfd;                     /* the directory it is in */
};

int tree_entry_stat(const struct tree_entry *e, struct stat *st);

typedef void *(*tree_entry_fn)(void *arg, void *parent, const struct tree_entry *e, int *err);

int tree_walk(struct seg_tree *t, tree_entry_fn entry, void *arg);
int tree_orphans(struct seg_tree *t, int (*each)(void *arg, bool dir,
						 const struct tree_entry *e), void *arg);

#endif
