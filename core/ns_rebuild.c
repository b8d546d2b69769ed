/*
 * The namespace a previous server left: rebuilt from the tree of the
 * private tmpfs (names, nodes, links, extended attributes, the segments'
 * files) and the region's records (counts, attributes).  See ns.h:
 * seg_ns_rebuild.
 *
 * The walk meets each name once, directories before what they hold.  An
 * inode is made at its first name and counted at every one; ino/N and
 * gone/N then give the inodes that have no name left.  What the dead
 * server had half made is settled here: a record with no inode, or an
 * inode with no name that nothing holds open, goes.
 */
#include "core/ns.h"

#include "core/acl.h"
#include "core/alloc.h"
#include "core/ns_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

/* Live records by inode number, while rebuilding. */
struct rec_map {
	uint64_t *ino, *rec;           /* open addressing; ino 0 is empty */
	size_t n;                      /* a power of two */
};

struct rebuild {
	struct seg_ns *ns;
	struct rec_map map;
	char *names;                   /* XATTR_LIST_BYTES, for load_xattrs */
};

static size_t map_slot(const struct rec_map *m, uint64_t ino)
{
	uint64_t x = ino * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x ^ (x >> 29)) & (m->n - 1);
}

static int map_build(struct seg_ns *ns, struct rec_map *m)
{
	uint64_t used = rg_used(ns->rg, RG_INODES);

	m->n = 64;
	while (m->n < used * 2)
		m->n *= 2;
	m->ino = seg_calloc(m->n, sizeof(uint64_t));
	m->rec = seg_calloc(m->n, sizeof(uint64_t));
	if (m->ino == NULL || m->rec == NULL)
		return -ENOMEM;
	for (uint64_t r = 0; r < used; r++) {
		uint64_t ino = rg_rec(ns->rg, RG_INODES, r)[RI_INO];
		size_t k;

		if (ino == 0)
			continue;
		for (k = map_slot(m, ino); m->ino[k] != 0; k = (k + 1) & (m->n - 1))
			if (m->ino[k] == ino)
				break;
		/* Two records of one inode: a bug of ours; the first one wins. */
		if (m->ino[k] == ino)
			continue;
		m->ino[k] = ino;
		m->rec[k] = r;
	}
	return 0;
}

/* The record of inode `ino`, or UINT64_MAX. */
static uint64_t map_get(const struct rec_map *m, uint64_t ino)
{
	for (size_t k = map_slot(m, ino); m->ino[k] != 0; k = (k + 1) & (m->n - 1))
		if (m->ino[k] == ino)
			return m->rec[k];
	return UINT64_MAX;
}

static void map_free(struct rec_map *m)
{
	seg_free(m->ino);
	seg_free(m->rec);
}

/*
 * A record for an inode found without one: only a bug of ours can do
 * that (a record is published before its name is made), but a tree
 * without records still makes a namespace, owned by root.
 */
static int record_default(struct seg_ns *ns, struct seg_inode *i, const struct stat *st)
{
	int rc = rg_alloc(ns->rg, RG_INODES, &i->rec);

	if (rc < 0)
		return rc;
	i->w = rg_rec(ns->rg, RG_INODES, i->rec);
	memset(i->w, 0, RI_WORDS * sizeof(uint64_t));
	i->w[RI_MODE] = (st->st_mode & S_IFMT) | (S_ISDIR(st->st_mode) ? 0755 : 0600);
	for (unsigned w = RI_ATIME; w <= RI_BTIME; w += 2) {
		i->w[w] = (uint64_t)st->st_mtim.tv_sec;
		i->w[w + 1] = (uint64_t)st->st_mtim.tv_nsec;
	}
	i->w[RI_RESERVED] = (uint64_t)st->st_blocks * 512;
	rg_set(ns->rg, RG_INODES, i->rec, RI_INO, i->ino);
	return 0;
}

/* Reads an inode's extended attributes back from the tree. */
static int load_xattrs(struct seg_ns *ns, struct seg_inode *i, char *names)
{
	char path[NS_PATH_MAX];
	struct tree_at at;
	size_t len = 0, off;
	int rc = ns_tree_at(i, &at, path, sizeof(path));

	if (rc == 0)
		rc = tree_listxattr(ns->tree, &at, names, XATTR_LIST_BYTES, &len);
	for (off = 0; rc == 0 && off < len; off += strlen(names + off) + 1) {
		const char *name = names + off;
		struct seg_xattr *x, *old = NULL;
		size_t size;

		rc = tree_getxattr(ns->tree, &at, name, NULL, 0, &size);
		if (rc < 0)
			break;
		x = xa_new(name, NULL, size);
		if (x == NULL) {
			rc = -ENOMEM;
			break;
		}
		rc = tree_getxattr(ns->tree, &at, name, xa_data(x), size, &size);
		if (rc == 0)
			rc = xa_set(&i->xattrs, x, 0, &old);
		if (rc < 0) {
			xa_free(x);
			break;
		}
		xa_free(old);
		ns->xattr_space += ns_xattr_charged(name) ? xa_size(x) : 0;
	}
	/* The tmpfs holds no attributes of a file it has no handler for. */
	return rc == -EOPNOTSUPP ? 0 : rc;
}

/*
 * The inode numbered e->ino, made from what the tree and its record say;
 * `dir_parent` is a directory's parent (NULL for one that was removed).
 * Only an inode without a record (a dead server made it in the tree and
 * died) costs a stat: its times and size come from its stand-in.
 */
static int make_inode(struct rebuild *b, const struct tree_entry *e, struct seg_inode *dir_parent,
		      struct seg_inode **out)
{
	struct seg_ns *ns = b->ns;
	struct seg_inode *i = seg_calloc(1, sizeof(*i));
	uint64_t rec = map_get(&b->map, e->ino);
	int rc;

	if (i == NULL)
		return -ENOMEM;
	i->ino = e->ino;
	if (rec != UINT64_MAX) {
		i->rec = rec;
		i->w = rg_rec(ns->rg, RG_INODES, rec);
	} else {
		struct stat st = { .st_mode = e->type };

		rc = e->dirfd >= 0 ? tree_entry_stat(e, &st) : 0;
		if (rc == 0)
			rc = record_default(ns, i, &st);
		if (rc < 0) {
			seg_free(i);
			return rc;
		}
	}
	i->type = ns_mode(i) & S_IFMT;
	/* The tree's kind of file must be what the record says it stands for. */
	if (S_ISDIR(i->type) != S_ISDIR(e->type) || S_ISLNK(i->type) != S_ISLNK(e->type) ||
	    (!S_ISDIR(i->type) && !S_ISLNK(i->type) && !S_ISREG(e->type))) {
		seg_free(i);
		return -EUCLEAN;
	}
	rc = 0;
	if (S_ISDIR(i->type)) {
		dc_dir_init(&i->u.dir.d);
		i->nlink = 2;
		i->u.dir.parent = dir_parent != NULL ? dir_parent : i;
	} else if (S_ISLNK(i->type)) {
		char target[SEG_TARGET_MAX];

		rc = tree_readlink(ns->tree, i->ino, target, sizeof(target));
		if (rc == 0) {
			i->u.link.len = strlen(target);
			i->u.link.target = seg_malloc(i->u.link.len + 1);
			if (i->u.link.target == NULL)
				rc = -ENOMEM;
			else
				memcpy(i->u.link.target, target, i->u.link.len + 1);
		}
	} else if (S_ISREG(i->type)) {
		rc = -pthread_mutex_init(&i->u.seg.lock, NULL);
		if (rc == 0)
			rc = store_adopt(ns->store, &i->u.seg.file, i->ino, i->w[RI_PIN] != 0,
					 i->w[RI_PIN] - 1, i->w[RI_RESERVED]);
	}
	if (rc < 0) {
		if (S_ISLNK(i->type))
			seg_free(i->u.link.target);
		seg_free(i);
		return rc;
	}
	ns_by_ino_add(ns, i);
	ns_inode_link(ns, i);
	ns->ninodes++;
	*out = i;
	return 0;
}

/* tree_walk's entry(): one name below tree/. */
static void *entry(void *arg, void *parent, const struct tree_entry *e, int *err)
{
	struct rebuild *b = arg;
	struct seg_ns *ns = b->ns;
	struct seg_inode *dir = parent != NULL ? parent : ns->root;
	struct seg_inode *i = ns_by_ino_find(ns, e->ino);
	struct seg_dentry *d = dc_alloc(e->name, strlen(e->name));
	int rc = 0;

	if (d == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	if (i == NULL) {
		rc = make_inode(b, e, dir, &i);
	} else if (S_ISDIR(i->type)) {
		rc = -EUCLEAN;   /* a directory with two names */
	}
	if (rc < 0) {
		dc_free(d);
		*err = rc;
		return NULL;
	}
	dc_add(&ns->dc, &dir->u.dir.d, d, i);
	if (S_ISDIR(i->type)) {
		i->u.dir.name = d;
		dir->nlink++;
	} else {
		if (i->nlink > 0)
			ns->extra_links++;
		i->nlink++;
	}
	return S_ISDIR(i->type) ? i : NULL;
}

/* tree_orphans's each(): an ino/N or gone/N. */
static int orphan(void *arg, bool dir, const struct tree_entry *e)
{
	struct rebuild *b = arg;
	struct seg_ns *ns = b->ns;
	uint64_t ino = e->ino;
	struct seg_inode *i = ns_by_ino_find(ns, ino);
	uint64_t rec;
	uint64_t *w;

	/* ino/N of an inode that has names: that is every one's. */
	if (i != NULL)
		return 0;
	rec = map_get(&b->map, ino);
	w = rec != UINT64_MAX ? rg_rec(ns->rg, RG_INODES, rec) : NULL;
	/*
	 * No name, and nothing holds it open: whatever references the
	 * kernel was said to hold, it forgets it without asking (a FORGET the
	 * dead server read is never sent again), or holds a removed
	 * directory as a process's working directory, which is kept.
	 */
	if (w == NULL || (w[RI_NOPEN] == 0 && !(dir && w[RI_NLOOKUP] > 0))) {
		/* A segment's pages go with its pin or its name. */
		if (w != NULL && S_ISREG(w[RI_MODE])) {
			struct store_file f;

			if (store_adopt(ns->store, &f, ino, w[RI_PIN] != 0, w[RI_PIN] - 1,
					w[RI_RESERVED]) == 0)
				store_destroy(ns->store, &f);
		}
		tree_drop(ns->tree, ino, dir);
		return 0;
	}
	if (make_inode(b, e, NULL, &i) < 0)
		return -ENOMEM;
	i->nlink = 0;
	return 0;
}

/* Frees the records no inode was found for. */
static void drop_stray_records(struct rebuild *b)
{
	struct seg_ns *ns = b->ns;

	for (size_t k = 0; k < b->map.n; k++) {
		if (b->map.ino[k] == 0 || ns_by_ino_find(ns, b->map.ino[k]) != NULL)
			continue;
		rg_set(ns->rg, RG_INODES, b->map.rec[k], RI_INO, 0);
		rg_free_index(ns->rg, RG_INODES, b->map.rec[k]);
	}
}

/*
 * What the rebuilt inodes need beside their names: their attributes,
 * and for open segments the data path they were left on.
 */
static int settle(struct rebuild *b)
{
	struct seg_ns *ns = b->ns;
	int rc = 0;

	for (struct seg_link *l = ns->inodes.next; rc == 0 && l != &ns->inodes; l = l->next) {
		struct seg_inode *i = (struct seg_inode *)((char *)l -
							   offsetof(struct seg_inode, all));
		int fd;

		if (i->w[RI_STATE] & RI_STATE_XATTRS)
			rc = load_xattrs(ns, i, b->names);
		if (rc < 0 || !S_ISREG(i->type) || ns_nopen(i) == 0)
			continue;
		if ((int64_t)i->w[RI_BACKING] > 0) {
			store_set_unseen(ns->store, &i->u.seg.file, true);
		} else {
			/* The cached fallback reads and writes through a held file. */
			rc = store_hold(ns->store, &i->u.seg.file, &fd);
			i->u.seg.held = rc == 0;
		}
	}
	return rc;
}

int seg_ns_rebuild(const struct seg_ns_config *cfg, struct seg_ns **out)
{
	struct rebuild b = { 0 };
	struct seg_inode *root = NULL;
	struct seg_ns *ns;
	int rc = ns_alloc(cfg, true, &ns);

	if (rc < 0)
		return rc;
	if (ns->tree == NULL) {
		seg_ns_free(ns);
		return -EINVAL;
	}
	b.ns = ns;
	b.names = seg_malloc(XATTR_LIST_BYTES);
	rc = b.names == NULL ? -ENOMEM : map_build(ns, &b.map);
	if (rc == 0) {
		/* The root's stand-in is tree/ itself; without a record, 0755 at 0. */
		struct tree_entry e = { .name = ".", .ino = tree_root_ino(ns->tree),
					.type = S_IFDIR, .dirfd = -1 };

		ns_by_ino_reserve(ns, rg_used(ns->rg, RG_INODES));
		rc = make_inode(&b, &e, NULL, &root);
	}
	if (rc == 0) {
		ns->root = root;
		rc = tree_walk(ns->tree, entry, &b);
	}
	if (rc == 0)
		rc = tree_orphans(ns->tree, orphan, &b);
	if (rc == 0) {
		drop_stray_records(&b);
		rc = settle(&b);
	}
	map_free(&b.map);
	seg_free(b.names);
	if (rc < 0) {
		seg_ns_free(ns);
		return rc;
	}
	*out = ns;
	return 0;
}
