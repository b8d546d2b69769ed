/*
 * The lists/ view.  See lists.h for what it shows; here is how.
 *
 * Reading a segment: its bytes are untrusted and may change while we read,
 * so each use takes one private snapshot with seg_pread() and decodes
 * that.  The snapshot covers the list's layout (16 + 17n + D bytes, learnt
 * from the header), not the whole segment, which may be far larger.
 *
 * Writing in place: the daemon never maps a segment.  Another process may
 * truncate it at any moment, and a store through a mapping past the new
 * end would kill the daemon with SIGBUS.  Instead the new values are
 * assigned into a private copy with CPython's rules, and only the bytes
 * that changed are written back with seg_pwrite(): the backing file's
 * pages are the ones every client maps, so attached Python processes see
 * the values at once, as they would see another process's sl[i] = v.
 *
 * Replacing: the new segment is built unnamed (seg_tmpfile), then put
 * under the name with seg_replace, which fails if the name changed since
 * we looked; then we look again.
 *
 * Decisions are taken on what a snapshot showed and applied to the name
 * an instant later: an unlink or rename through lists/ that races with a
 * process turning the same root name into a non-list acts on the name as
 * unlink(2) and rename(2) would.
 */
#include "core/lists.h"

#include "core/alloc.h"
#include "core/name.h"
#include "core/region.h"
#include "core/sltext.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Sets views' st_ino apart from every segment's: bit 62 of the segment's. */
#define VIEW_INO_BIT (UINT64_C(1) << 62)

/* CPython's empty list: 16 bytes, count and first offset both zero. */
#define EMPTY_LIST_SIZE 16

/* Times a store or create looks again after the name changed under it. */
#define RETRIES 16

/* How many root entries readdir reads and decodes at a time. */
#define BATCH 32

/* A rendering of a list and the snapshot it came from; shared, counted. */
struct lv_text {
	uint32_t refs;                 /* under lv->lock */
	off_t size;                    /* of the segment */
	uint8_t *bytes;                /* the snapshot */
	size_t nbytes;
	char *text;
	size_t len;
};

/*
 * An entry.  Its counts (the kernel's references, open handles) and its
 * name are words of its record in the region (core/region.h), so that a
 * next server finds every entry the kernel holds, under the same node
 * id (the record's index: lv_node_index); they change under lv->lock.
 */
struct lv_node {
	struct lv_node *hnext;
	uint64_t rec;
	uint64_t *w;                   /* the record's words (RV_*) */
	bool published;                /* the record is the entry's (its key set) */
	/* Protected by lv->lock. */
	struct lv_text *cache;
	bool stale;                    /* the hook says: render again */
	size_t len;
	char name[];
};

struct lv {
	struct seg_ns *ns;
	struct rg *rg;
	struct lv_node **by_index;     /* by record index; under lock */
	struct seg_inode *root;
	struct seg_inode *dir;         /* lists/: we hold a reference */
	_Atomic(lv_sync_fn) sync;
	void *_Atomic sync_arg;
	pthread_mutex_t lock;
	/* Protected by lock: the entries, by name. */
	struct lv_node **buckets;
	size_t nbuckets;               /* a power of two */
	uint64_t nnodes;
};

struct pending {
	uint64_t cookie;
	uint64_t ino;
	mode_t mode;
	char name[256];
};

struct lv_dirh {
	struct seg_dirh *root;         /* a stream over the root */
	uint64_t pos;                  /* the offset handed out last */
	uint64_t root_off;             /* where the root stream stands */
	bool eof;
	size_t n, at;                  /* pending[at..n): shown, not handed out */
	struct pending pending[BATCH];
};

/* ---- renderings ------------------------------------------------------- */

static void text_free(struct lv_text *t)
{
	if (t == NULL)
		return;
	seg_free(t->bytes);
	seg_free(t->text);
	seg_free(t);
}

/* Drops a reference; returns the rendering to free after unlocking, if any. */
static struct lv_text *text_put_locked(struct lv_text *t)
{
	return t != NULL && --t->refs == 0 ? t : NULL;
}

static void text_put(struct lv *lv, struct lv_text *t)
{
	pthread_mutex_lock(&lv->lock);
	t = text_put_locked(t);
	pthread_mutex_unlock(&lv->lock);
	text_free(t);
}

/* ---- the table of entries --------------------------------------------- */

static uint64_t hash_name(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static struct lv_node **slot_of(struct lv *lv, const char *name, size_t len)
{
	struct lv_node **pp = &lv->buckets[hash_name(name, len) & (lv->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->len != len || memcmp((*pp)->name, name, len) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

/* Doubles the table when full, with buckets allocated by the caller. */
static struct lv_node **rehash(struct lv *lv, struct lv_node **b, size_t n)
{
	struct lv_node **old = lv->buckets;

	if (n <= lv->nbuckets)
		return b;
	for (size_t i = 0; i < lv->nbuckets; i++) {
		struct lv_node *v = old[i], *next;

		for (; v != NULL; v = next) {
			size_t k = hash_name(v->name, v->len) & (n - 1);

			next = v->hnext;
			v->hnext = b[k];
			b[k] = v;
		}
	}
	lv->buckets = b;
	lv->nbuckets = n;
	return old;
}

/*
 * The entry for `name` with one more reference: the existing one, or `nv`
 * (prepared by the caller; *nv is set to NULL when it was used).
 */
static struct lv_node *node_get(struct lv *lv, const char *name, size_t len,
				struct lv_node **nv)
{
	struct lv_node **pp, *v;
	size_t grow = 0;

	pthread_mutex_lock(&lv->lock);
	pp = slot_of(lv, name, len);
	v = *pp;
	if (v == NULL) {
		v = *nv;
		*nv = NULL;
		*pp = v;
		lv->nnodes++;
		if (lv->nnodes > lv->nbuckets)
			grow = lv->nbuckets * 2;
		rg_set(lv->rg, RG_VIEWS, v->rec, RV_KEY, len + 1);
		v->published = true;
		lv->by_index[v->rec] = v;
	}
	rg_add(lv->rg, RG_VIEWS, v->rec, RV_NLOOKUP, 1);
	pthread_mutex_unlock(&lv->lock);
	if (grow != 0) {
		struct lv_node **b = seg_calloc(grow, sizeof(*b));

		if (b != NULL) {
			pthread_mutex_lock(&lv->lock);
			b = rehash(lv, b, grow);
			pthread_mutex_unlock(&lv->lock);
			seg_free(b);
		}
	}
	return v;
}

/* A new entry with a record of its own, not yet published (node_get does). */
static struct lv_node *node_alloc(struct lv *lv, const char *name, size_t len)
{
	struct lv_node *v = seg_calloc(1, sizeof(*v) + len + 1);

	if (v == NULL)
		return NULL;
	if (rg_alloc(lv->rg, RG_VIEWS, &v->rec) < 0) {
		seg_free(v);
		return NULL;
	}
	v->w = rg_rec(lv->rg, RG_VIEWS, v->rec);
	memset(v->w, 0, RV_WORDS * sizeof(uint64_t));
	rg_init_bytes(lv->rg, RG_VIEWS, v->rec, RV_NAME, name, len);
	memcpy(v->name, name, len);
	v->name[len] = '\0';
	v->len = len;
	return v;
}

/* Frees an entry node_get did not take. */
static void node_discard(struct lv *lv, struct lv_node *v)
{
	if (v == NULL)
		return;
	rg_unreserve(lv->rg, RG_VIEWS, v->rec);
	seg_free(v);
}

/*
 * Takes out an entry nothing refers to any more, its record freed.  Under
 * lv->lock; returns it, for the caller to free.
 */
static struct lv_node *node_maybe_unhash(struct lv *lv, struct lv_node *v)
{
	if (v->w[RV_NLOOKUP] != 0 || v->w[RV_NOPEN] != 0)
		return NULL;
	*slot_of(lv, v->name, v->len) = v->hnext;
	lv->nnodes--;
	lv->by_index[v->rec] = NULL;
	rg_set(lv->rg, RG_VIEWS, v->rec, RV_KEY, 0);
	rg_free_index(lv->rg, RG_VIEWS, v->rec);
	return v;
}

static void node_free(struct lv_node *v, struct lv_text *cache)
{
	text_free(cache);
	seg_free(v);
}

void lv_forget(struct lv *lv, struct lv_node *v, uint64_t n)
{
	struct lv_text *t = NULL;

	pthread_mutex_lock(&lv->lock);
	rg_set(lv->rg, RG_VIEWS, v->rec, RV_NLOOKUP,
	       v->w[RV_NLOOKUP] > n ? v->w[RV_NLOOKUP] - n : 0);
	v = node_maybe_unhash(lv, v);
	if (v != NULL)
		t = text_put_locked(v->cache);
	pthread_mutex_unlock(&lv->lock);
	if (v != NULL)
		node_free(v, t);
}

uint64_t lv_node_count(struct lv *lv)
{
	uint64_t n;

	pthread_mutex_lock(&lv->lock);
	n = lv->nnodes;
	pthread_mutex_unlock(&lv->lock);
	return n;
}

const char *lv_node_name(const struct lv_node *v)
{
	return v->name;
}

/* ---- the namespace's hook --------------------------------------------- */

/*
 * Under the namespace lock: marks renderings stale, nothing more (no
 * allocation, no call back).  A name of the root that changed, or a
 * segment whose size the namespace changed (whose name we do not know:
 * every entry that rendered it is marked, by its size).
 */
static void hook(void *arg, const struct seg_change *c)
{
	struct lv *lv = arg;

	if (c->kind == SEG_CHANGE_NAME && c->dir != lv->root)
		return;
	pthread_mutex_lock(&lv->lock);
	if (c->kind == SEG_CHANGE_NAME) {
		struct lv_node *v = *slot_of(lv, c->name, c->len);

		if (v != NULL)
			v->stale = true;
	} else {
		/* Rare (a size set through the namespace), and entries are few. */
		for (size_t i = 0; i < lv->nbuckets; i++)
			for (struct lv_node *v = lv->buckets[i]; v != NULL; v = v->hnext)
				v->stale = true;
	}
	pthread_mutex_unlock(&lv->lock);
}

/* ---- the view --------------------------------------------------------- */

/* The parts of a view on `ns`, without its directory. */
static int view_alloc(struct seg_ns *ns, const char *name, struct lv **out)
{
	struct lv *lv;
	int rc;

	rc = seg_name_check(name, NULL);
	if (rc < 0)
		return rc;
	lv = seg_calloc(1, sizeof(*lv));
	if (lv == NULL)
		return -ENOMEM;
	rc = -pthread_mutex_init(&lv->lock, NULL);
	if (rc < 0)
		goto fail_mutex;
	rc = -ENOMEM;
	lv->nbuckets = 64;
	lv->buckets = seg_calloc(lv->nbuckets, sizeof(*lv->buckets));
	lv->rg = seg_ns_region(ns);
	lv->by_index = seg_calloc(rg_capacity(lv->rg, RG_VIEWS), sizeof(*lv->by_index));
	if (lv->buckets == NULL || lv->by_index == NULL)
		goto fail_buckets;
	lv->ns = ns;
	lv->root = seg_ns_root(ns);
	*out = lv;
	return 0;

fail_buckets:
	seg_free(lv->buckets);
	seg_free(lv->by_index);
	pthread_mutex_destroy(&lv->lock);
fail_mutex:
	seg_free(lv);
	return rc;
}

static void view_free(struct lv *lv)
{
	seg_free(lv->buckets);
	seg_free(lv->by_index);
	pthread_mutex_destroy(&lv->lock);
	seg_free(lv);
}

int lv_new(struct seg_ns *ns, const char *name, struct lv **out)
{
	struct seg_cred self = { .uid = getuid(), .gid = getgid() };
	struct lv *lv;
	struct stat st;
	int rc = view_alloc(ns, name, &lv);

	if (rc < 0)
		return rc;
	rc = seg_mkdir(ns, lv->root, name, 0755, &self, &lv->dir, &st);
	if (rc < 0) {
		view_free(lv);
		return rc;
	}
	/*
	 * Fixed, the directory keeps its name for as long as the namespace
	 * lives: the view needs no reference on it.
	 */
	seg_inode_fix(ns, lv->dir);
	seg_forget(ns, lv->dir, 1);
	seg_ns_set_hook(ns, hook, lv);
	*out = lv;
	return 0;
}

/* Puts back the entry that record `rec` keeps.  Under no lock (not yet shared). */
static int adopt_entry(struct lv *lv, uint64_t rec)
{
	uint64_t *w = rg_rec(lv->rg, RG_VIEWS, rec);
	size_t len = (size_t)w[RV_KEY] - 1;
	struct lv_node *v;

	if (len == 0 || len > RV_NAME_WORDS * sizeof(uint64_t) - 1)
		return -EUCLEAN;
	v = seg_calloc(1, sizeof(*v) + len + 1);
	if (v == NULL)
		return -ENOMEM;
	v->rec = rec;
	v->w = w;
	v->published = true;
	memcpy(v->name, &w[RV_NAME], len);
	v->name[len] = '\0';
	v->len = len;
	v->stale = true;
	v->hnext = *slot_of(lv, v->name, len);
	*slot_of(lv, v->name, len) = v;
	lv->by_index[rec] = v;
	lv->nnodes++;
	return 0;
}

int lv_adopt(struct seg_ns *ns, const char *name, struct lv **out)
{
	struct lv *lv;
	struct stat st;
	uint64_t used;
	int rc = view_alloc(ns, name, &lv);

	if (rc < 0)
		return rc;
	rc = seg_lookup(ns, lv->root, name, &lv->dir, &st);
	if (rc == 0) {
		seg_forget(ns, lv->dir, 1);
		rc = S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	}
	used = rg_used(lv->rg, RG_VIEWS);
	for (uint64_t r = 0; rc == 0 && r < used; r++) {
		if (rg_rec(lv->rg, RG_VIEWS, r)[RV_KEY] == 0)
			continue;
		/* The table grows here, before the view is shared. */
		if (lv->nnodes >= lv->nbuckets) {
			struct lv_node **b = seg_calloc(lv->nbuckets * 2, sizeof(*b));

			if (b == NULL) {
				rc = -ENOMEM;
				break;
			}
			seg_free(rehash(lv, b, lv->nbuckets * 2));
		}
		rc = adopt_entry(lv, r);
	}
	if (rc < 0) {
		lv_free(lv);
		return rc;
	}
	seg_ns_set_hook(ns, hook, lv);
	*out = lv;
	return 0;
}

void lv_free(struct lv *lv)
{
	if (lv == NULL)
		return;
	if (lv->dir != NULL)
		seg_ns_set_hook(lv->ns, NULL, NULL);
	/* Memory only: the records stay for a next server's lv_adopt. */
	for (size_t i = 0; i < lv->nbuckets; i++) {
		struct lv_node *v = lv->buckets[i], *next;

		for (; v != NULL; v = next) {
			next = v->hnext;
			node_free(v, v->cache);
		}
	}
	view_free(lv);
}

uint64_t lv_node_index(const struct lv_node *v)
{
	return v->rec;
}

struct lv_node *lv_node_at(struct lv *lv, uint64_t index)
{
	struct lv_node *v;

	if (index >= rg_capacity(lv->rg, RG_VIEWS))
		return NULL;
	pthread_mutex_lock(&lv->lock);
	v = lv->by_index[index];
	pthread_mutex_unlock(&lv->lock);
	return v;
}

struct seg_inode *lv_dir(const struct lv *lv)
{
	return lv->dir;
}

void lv_set_sync(struct lv *lv, lv_sync_fn fn, void *arg)
{
	/* The argument first: a reader that sees fn sees its argument. */
	atomic_store(&lv->sync_arg, arg);
	atomic_store(&lv->sync, fn);
}

/* ---- reading a list --------------------------------------------------- */

/* Brings an open segment's bytes up to date (cached FUSE I/O). */
static void sync_segment(struct lv *lv, struct seg_inode *seg)
{
	lv_sync_fn fn = atomic_load(&lv->sync);
	void *arg = atomic_load(&lv->sync_arg);
	struct seg_info info;

	if (fn == NULL)
		return;
	/* Only an open segment can have bytes its backing file has not seen yet. */
	if (seg_inspect(lv->ns, seg, &info) == 0 && info.nopen > 0)
		fn(arg, seg);
}

/* Reads exactly `len` bytes at `off`: -EBADMSG if the segment is shorter now. */
static int read_exact(struct lv *lv, struct seg_inode *seg, void *buf, size_t len, off_t off)
{
	size_t got;
	int rc = seg_pread(lv->ns, seg, buf, len, off, &got);

	if (rc == 0 && got < len)
		rc = -EBADMSG;   /* shrunk under us: not a whole list now */
	return rc;
}

/*
 * Takes a private copy of the bytes of the list `seg` holds, and its size.
 * -EBADMSG when the header already shows it is not one; sl_decode judges
 * the rest.  On success *bytes (seg_free) holds *len bytes.
 */
static int snapshot(struct lv *lv, struct seg_inode *seg, uint8_t **bytes, size_t *len,
		    off_t *segsize)
{
	struct stat st;
	uint64_t size, need;
	int64_t n, d;
	uint8_t *buf;
	int rc;

	rc = seg_getattr(lv->ns, seg, &st);
	if (rc < 0)
		return rc;
	size = (uint64_t)st.st_size;
	if (size < EMPTY_LIST_SIZE)
		return -EBADMSG;
	rc = read_exact(lv, seg, &n, sizeof(n), 0);
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
	rc = read_exact(lv, seg, &d, sizeof(d), 8 + 8 * (off_t)n);
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
	rc = read_exact(lv, seg, buf, need, 0);
	if (rc < 0) {
		seg_free(buf);
		return rc;
	}
	*bytes = buf;
	*len = need;
	*segsize = st.st_size;
	return 0;
}

/* The list a segment holds now: -EBADMSG if it holds none. */
static int read_list(struct lv *lv, struct seg_inode *seg, struct sl_list **out)
{
	uint8_t *bytes;
	size_t len;
	off_t size;
	int rc;

	sync_segment(lv, seg);
	rc = snapshot(lv, seg, &bytes, &len, &size);
	if (rc < 0)
		return rc;
	rc = sl_decode(bytes, len, out);
	seg_free(bytes);
	return rc;
}

int lv_holds_list(struct lv *lv, struct seg_inode *seg, bool *yes)
{
	struct sl_list *l;
	int rc;

	if (!seg_inode_is_segment(seg))
		return -EINVAL;
	rc = read_list(lv, seg, &l);
	if (rc == -EBADMSG) {
		*yes = false;
		return 0;
	}
	if (rc < 0)
		return rc;
	sl_list_free(l);
	*yes = true;
	return 0;
}

/*
 * The segment root/NAME, with a reference: -ENOENT if the name is missing
 * or a directory (lists/ shows neither).
 */
static int root_segment(struct lv *lv, const char *name, struct seg_inode **out,
			struct stat *st)
{
	struct seg_inode *seg;
	int rc = seg_lookup(lv->ns, lv->root, name, &seg, st);

	if (rc < 0)
		return rc;
	if (!seg_inode_is_segment(seg)) {
		seg_forget(lv->ns, seg, 1);
		return -ENOENT;
	}
	*out = seg;
	return 0;
}

/*
 * The rendering of the list `seg` holds now, with a reference: v's, if
 * the bytes are the same and nothing made it stale, else a new one, which
 * becomes v's (v may be NULL).  -EBADMSG when `seg` holds no list.
 */
static int render(struct lv *lv, struct lv_node *v, struct seg_inode *seg,
		  struct lv_text **out)
{
	struct lv_text *t, *old = NULL;
	struct sl_list *l;
	int rc;

	t = seg_calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	sync_segment(lv, seg);
	rc = snapshot(lv, seg, &t->bytes, &t->nbytes, &t->size);
	if (rc < 0)
		goto fail;
	if (v != NULL) {
		pthread_mutex_lock(&lv->lock);
		old = v->cache;
		if (old != NULL && !v->stale && old->size == t->size &&
		    old->nbytes == t->nbytes && memcmp(old->bytes, t->bytes, t->nbytes) == 0) {
			old->refs++;
			pthread_mutex_unlock(&lv->lock);
			text_free(t);
			*out = old;
			return 0;
		}
		pthread_mutex_unlock(&lv->lock);
	}
	rc = sl_decode(t->bytes, t->nbytes, &l);
	if (rc < 0)
		goto fail;
	rc = sl_render(l, &t->text, &t->len);
	sl_list_free(l);
	if (rc < 0)
		goto fail;
	t->refs = 1;
	if (v != NULL) {
		pthread_mutex_lock(&lv->lock);
		old = text_put_locked(v->cache);
		v->cache = t;
		v->stale = false;
		t->refs++;
		pthread_mutex_unlock(&lv->lock);
		text_free(old);
	}
	*out = t;
	return 0;
fail:
	text_free(t);
	return rc;
}

/* What an entry shows: its segment's attributes, sized as its text. */
static void view_stat(struct stat *st, size_t len)
{
	st->st_ino = (ino_t)((uint64_t)st->st_ino | VIEW_INO_BIT);
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
}

/*
 * The current rendering for entry `v` (NULL: none yet) of name `name`,
 * and the attributes to show: -ENOENT when the name holds no list.
 */
static int current(struct lv *lv, struct lv_node *v, const char *name,
		   struct lv_text **out, struct stat *st)
{
	struct seg_inode *seg;
	int rc = root_segment(lv, name, &seg, st);

	if (rc < 0)
		return rc;
	rc = render(lv, v, seg, out);
	/* Attributes after the sync and read: the newest times. */
	if (rc == 0)
		rc = seg_getattr(lv->ns, seg, st);
	seg_forget(lv->ns, seg, 1);
	if (rc == -EBADMSG)
		return -ENOENT;
	if (rc == 0)
		view_stat(st, (*out)->len);
	return rc;
}

/* ---- names ------------------------------------------------------------ */

/*
 * The entry for `name` with one more reference, rendered now: *st gets its
 * attributes.  nv is a prepared entry, used if there is none yet.
 */
static int lookup(struct lv *lv, const char *name, size_t len, struct lv_node **out,
		  struct stat *st)
{
	struct lv_node *nv = node_alloc(lv, name, len), *v;
	struct lv_text *t;
	int rc;

	if (nv == NULL)
		return -ENOMEM;
	v = node_get(lv, name, len, &nv);
	node_discard(lv, nv);
	rc = current(lv, v, name, &t, st);
	if (rc < 0) {
		lv_forget(lv, v, 1);
		return rc;
	}
	text_put(lv, t);
	*out = v;
	return 0;
}

int lv_lookup(struct lv *lv, const char *name, struct lv_node **out, struct stat *st)
{
	size_t len;
	int rc = seg_name_check(name, &len);

	return rc < 0 ? rc : lookup(lv, name, len, out, st);
}

/* A new unnamed segment of `size` bytes holding `bytes` (NULL: zeros). */
static int build(struct lv *lv, mode_t mode, const struct seg_cred *who,
		 const uint8_t *bytes, size_t size, struct seg_inode **out)
{
	struct stat st, attr = { .st_size = (off_t)size };
	struct seg_inode *seg;
	int rc = seg_tmpfile(lv->ns, lv->root, mode, who, &seg, &st);

	if (rc < 0)
		return rc;
	rc = seg_setattr(lv->ns, seg, &attr, SEG_SET_SIZE, &st);
	if (rc == 0 && bytes != NULL)
		rc = seg_pwrite(lv->ns, seg, bytes, size, 0);
	if (rc < 0) {
		seg_forget(lv->ns, seg, 1);   /* unnamed: freed */
		return rc;
	}
	*out = seg;
	return 0;
}

/*
 * Makes root/NAME hold CPython's empty list (16 zero bytes), if nothing is
 * there, and hands back its entry: -EAGAIN if something is.  Everything
 * that can fail happens before the name is taken, so a failure changes
 * nothing.
 */
static int create_new(struct lv *lv, const char *name, size_t len, mode_t mode,
		      const struct seg_cred *who, struct lv_node **out, struct stat *st)
{
	struct lv_node *nv = node_alloc(lv, name, len);
	struct seg_inode *seg;
	int rc;

	if (nv == NULL)
		return -ENOMEM;
	rc = build(lv, mode, who, NULL, EMPTY_LIST_SIZE, &seg);
	if (rc < 0)
		goto out;
	rc = seg_replace(lv->ns, lv->root, name, NULL, seg);
	if (rc == 0) {
		/* Its text is the empty list's: nothing to render. */
		seg_getattr(lv->ns, seg, st);
		view_stat(st, 0);
		*out = node_get(lv, name, len, &nv);
	}
	seg_forget(lv->ns, seg, 1);
out:
	node_discard(lv, nv);
	return rc;
}

int lv_create(struct lv *lv, const char *name, mode_t mode, const struct seg_cred *who,
	      int flags, struct lv_node **out, struct stat *st, bool *created)
{
	struct seg_inode *seg;
	struct stat sst;
	size_t len;
	bool yes;
	int rc = seg_name_check(name, &len);

	for (int i = 0; rc == 0 && i < RETRIES; i++) {
		rc = seg_lookup(lv->ns, lv->root, name, &seg, &sst);
		if (rc == -ENOENT) {
			rc = create_new(lv, name, len, mode, who, out, st);
			if (rc == 0)
				*created = true;
			if (rc != -EAGAIN)
				return rc;
			rc = 0;   /* made meanwhile: look again */
			continue;
		}
		if (rc < 0)
			return rc;
		if (seg_inode_is_dir(seg))
			rc = -EISDIR;
		else if (flags & SEG_CREATE_EXCL)
			rc = -EEXIST;
		else
			rc = lv_holds_list(lv, seg, &yes);
		seg_forget(lv->ns, seg, 1);
		/* A segment that holds no list is not turned into one. */
		if (rc == 0 && !yes)
			rc = -EEXIST;
		if (rc < 0)
			return rc;
		rc = lookup(lv, name, len, out, st);
		if (rc == 0)
			*created = false;
		if (rc != -ENOENT)
			return rc;
		rc = 0;   /* gone since we looked: look again */
	}
	return rc < 0 ? rc : -EBUSY;
}

/* Whether root/NAME holds a list now: -ENOENT if not. */
static int listed(struct lv *lv, const char *name)
{
	struct seg_inode *seg;
	struct stat st;
	bool yes;
	int rc = root_segment(lv, name, &seg, &st);

	if (rc < 0)
		return rc;
	rc = lv_holds_list(lv, seg, &yes);
	seg_forget(lv->ns, seg, 1);
	return rc < 0 ? rc : yes ? 0 : -ENOENT;
}

int lv_unlink(struct lv *lv, const char *name)
{
	int rc = seg_name_check(name, NULL);

	if (rc == 0)
		rc = listed(lv, name);
	return rc < 0 ? rc : seg_unlink(lv->ns, lv->root, name);
}

int lv_rename(struct lv *lv, const char *name, const char *newname, unsigned flags)
{
	int rc = seg_name_check(name, NULL);

	if (rc == 0)
		rc = listed(lv, name);
	if (rc == 0)
		rc = seg_name_check(newname, NULL);
	if (rc < 0)
		return rc;
	/*
	 * What lists/ does not show is not there for it to replace: a segment
	 * holding no list (or a directory) keeps its name.
	 */
	rc = listed(lv, newname);
	if (rc == -ENOENT) {
		struct seg_inode *there;
		struct stat st;

		if (seg_lookup(lv->ns, lv->root, newname, &there, &st) == 0) {
			seg_forget(lv->ns, there, 1);
			return -EEXIST;
		}
	} else if (rc < 0) {
		return rc;
	}
	/* lists/ shows lists, not whiteouts: no RENAME_WHITEOUT (NULL owner). */
	return seg_rename(lv->ns, lv->root, name, lv->root, newname, flags, NULL);
}

/* ---- entries ---------------------------------------------------------- */

int lv_getattr(struct lv *lv, struct lv_node *v, struct stat *st)
{
	struct lv_text *t;
	int rc = current(lv, v, v->name, &t, st);

	if (rc == 0)
		text_put(lv, t);
	return rc;
}

int lv_setattr(struct lv *lv, struct lv_node *v, const struct stat *attr, unsigned mask,
	       struct stat *st)
{
	struct seg_inode *seg;
	struct stat sst;
	int rc;

	/* The text's length follows the items; it is not set directly. */
	if (mask & SEG_SET_SIZE)
		return -EINVAL;
	rc = listed(lv, v->name);
	if (rc == 0)
		rc = root_segment(lv, v->name, &seg, &sst);
	if (rc < 0)
		return rc;
	rc = seg_setattr(lv->ns, seg, attr, mask, &sst);
	seg_forget(lv->ns, seg, 1);
	return rc < 0 ? rc : lv_getattr(lv, v, st);
}

int lv_open(struct lv *lv, struct lv_node *v, lv_take_fn take, void *arg)
{
	struct lv_text *t;
	struct stat st;
	int rc;

	if (take != NULL) {
		rc = current(lv, v, v->name, &t, &st);
		if (rc < 0)
			return rc;
		rc = take(arg, t->text, t->len);
		text_put(lv, t);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&lv->lock);
	rg_add(lv->rg, RG_VIEWS, v->rec, RV_NOPEN, 1);
	pthread_mutex_unlock(&lv->lock);
	return 0;
}

void lv_release(struct lv *lv, struct lv_node *v)
{
	struct lv_text *t = NULL;

	pthread_mutex_lock(&lv->lock);
	rg_add(lv->rg, RG_VIEWS, v->rec, RV_NOPEN, -1);
	v = node_maybe_unhash(lv, v);
	if (v != NULL)
		t = text_put_locked(v->cache);
	pthread_mutex_unlock(&lv->lock);
	if (v != NULL)
		node_free(v, t);
}

/* ---- storing ---------------------------------------------------------- */

/*
 * Writes back the bytes of `now` that differ from `was` within [from, to),
 * run by run.
 */
static int write_changes(struct lv *lv, struct seg_inode *seg, const uint8_t *was,
			 const uint8_t *now, size_t from, size_t to)
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
		rc = seg_pwrite(lv->ns, seg, now + i, j - i, (off_t)i);
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
static int store_in_place(struct lv *lv, struct seg_inode *seg, const uint8_t *was,
			  size_t len, const struct sl_list *l)
{
	size_t ds = 8 * (l->n + 2), fs = len - 9 * l->n, cs = len - l->n;
	uint8_t *now = seg_malloc(len);
	int rc;

	if (now == NULL)
		return -ENOMEM;
	memcpy(now, was, len);
	rc = sl_assign_all(now, len, l);
	if (rc == 0)
		rc = write_changes(lv, seg, was, now, fs, cs);
	if (rc == 0)
		rc = write_changes(lv, seg, was, now, cs, len);
	if (rc == 0)
		rc = write_changes(lv, seg, was, now, ds, fs);
	seg_free(now);
	return rc;
}

/* Whether every value of `l` fits the slot of the list `cur`, item for item. */
static bool fits(const struct sl_list *cur, const struct sl_list *l)
{
	if (cur->n != l->n)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (!sl_fits(&l->v[i], cur->slot[i]))
			return false;
	return true;
}

/*
 * One attempt at storing `l` under the name, whose segment is `old` (NULL:
 * none).  -EAGAIN when the name changed under us.
 */
static int store_once(struct lv *lv, const char *name, struct seg_inode *old,
		      const struct sl_list *l, mode_t mode, const struct seg_cred *who,
		      struct lv_effect *eff)
{
	struct seg_cred owner = *who;
	struct seg_inode *seg;
	struct sl_list *cur = NULL;
	struct seg_info info = { 0 };
	uint8_t *was = NULL, *bytes = NULL;
	size_t len, size;
	off_t segsize;
	int rc = 0;

	if (old != NULL) {
		struct stat st;

		sync_segment(lv, old);
		rc = snapshot(lv, old, &was, &len, &segsize);
		if (rc == 0)
			rc = sl_decode(was, len, &cur);
		/* A segment that holds no list is not overwritten. */
		if (rc == -EBADMSG)
			rc = -EEXIST;
		if (rc < 0)
			goto out;
		if (fits(cur, l)) {
			rc = store_in_place(lv, old, was, len, l);
			/* Shrunk under us: look again. */
			if (rc == -ENXIO)
				rc = -EAGAIN;
			if (rc == 0)
				eff->in_place = old;
			goto out;
		}
		/* Still the same list to its users: owner, mode, creator, birth. */
		rc = seg_getattr(lv->ns, old, &st);
		if (rc == 0)
			rc = seg_inspect(lv->ns, old, &info);
		if (rc < 0)
			goto out;
		mode = st.st_mode;
		owner.uid = st.st_uid;
		owner.gid = st.st_gid;
		owner.pid = info.pid;
	} else {
		owner.pid = 0;
	}
	rc = sl_encoded_size(l, &size);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	bytes = seg_malloc(size);
	if (bytes == NULL)
		goto out;
	rc = sl_encode(l, bytes, size);
	if (rc == 0)
		rc = build(lv, mode, &owner, bytes, size, &seg);
	if (rc < 0)
		goto out;
	if (old != NULL)
		seg_set_origin(lv->ns, seg, info.pid, &info.btime);
	rc = seg_replace(lv->ns, lv->root, name, old, seg);
	seg_forget(lv->ns, seg, 1);
	if (rc == 0)
		eff->replaced = true;
out:
	sl_list_free(cur);
	seg_free(was);
	seg_free(bytes);
	return rc;
}

int lv_store(struct lv *lv, struct lv_node *v, const struct sl_list *l, mode_t mode,
	     const struct seg_cred *who, struct lv_effect *eff)
{
	struct seg_inode *old;
	struct stat st;
	int rc;

	memset(eff, 0, sizeof(*eff));
	for (int i = 0; i < RETRIES; i++) {
		rc = seg_lookup(lv->ns, lv->root, v->name, &old, &st);
		if (rc == -ENOENT)
			old = NULL;
		else if (rc < 0)
			return rc;
		if (old != NULL && seg_inode_is_dir(old))
			rc = -EISDIR;
		else
			rc = store_once(lv, v->name, old, l, mode, who, eff);
		if (old != NULL)
			seg_forget(lv->ns, old, 1);
		if (rc != -EAGAIN)
			return rc;
	}
	return -EBUSY;
}

/* ---- the directory ---------------------------------------------------- */

int lv_opendir(struct lv *lv, struct lv_dirh **out)
{
	struct lv_dirh *dh = seg_calloc(1, sizeof(*dh));
	int rc;

	if (dh == NULL)
		return -ENOMEM;
	rc = seg_opendir(lv->ns, lv->root, &dh->root);
	if (rc < 0) {
		seg_free(dh);
		return rc;
	}
	dh->pos = UINT64_MAX;
	*out = dh;
	return 0;
}

void lv_releasedir(struct lv *lv, struct lv_dirh *dh)
{
	if (dh == NULL)
		return;
	seg_releasedir(lv->ns, dh->root);
	seg_free(dh);
}

/* A batch of root entries, each with a reference (seg_readdir's plus). */
struct batch {
	size_t n;
	struct {
		struct seg_inode *ino;
		uint64_t cookie;
		char name[256];
	} e[BATCH];
};

/* seg_fill_fn, under the namespace lock: records, nothing more. */
static int collect(void *arg, const char *name, struct seg_inode *ino,
		   const struct stat *st, uint64_t next)
{
	struct batch *b = arg;

	(void)st;
	if (b->n == BATCH)
		return 1;
	b->e[b->n].ino = ino;
	b->e[b->n].cookie = next;
	snprintf(b->e[b->n].name, sizeof(b->e[0].name), "%s", name);
	b->n++;
	return 0;
}

/*
 * Reads the next batch of root entries and keeps, as pending, the
 * segments among them that hold lists.  Reading and decoding happen here,
 * under no lock.  Errors other than "not a list" end the listing.
 */
static int refill(struct lv *lv, struct lv_dirh *dh)
{
	struct batch *b = seg_malloc(sizeof(*b));
	int rc = 0;

	if (b == NULL)
		return -ENOMEM;
	b->n = 0;
	dh->n = dh->at = 0;
	seg_readdir(lv->ns, dh->root, dh->root_off, true, collect, b);
	if (b->n < BATCH)
		dh->eof = true;
	for (size_t i = 0; i < b->n; i++) {
		struct seg_inode *ino = b->e[i].ino;
		bool yes = false;

		if (rc == 0 && seg_inode_is_segment(ino))
			rc = lv_holds_list(lv, ino, &yes);
		if (rc == 0 && yes) {
			struct pending *p = &dh->pending[dh->n++];
			struct stat st;

			seg_getattr(lv->ns, ino, &st);
			p->cookie = b->e[i].cookie;
			p->ino = seg_inode_number(ino) | VIEW_INO_BIT;
			p->mode = S_IFREG | (st.st_mode & 07777);
			memcpy(p->name, b->e[i].name, sizeof(p->name));
		}
		dh->root_off = b->e[i].cookie;
		seg_forget(lv->ns, ino, 1);
	}
	seg_free(b);
	return rc;
}

/* Emits "." or "..". */
static int fill_dot(lv_fill_fn fill, void *arg, const char *name, struct seg_inode *ino,
		    uint64_t next)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = seg_inode_number(ino);
	st.st_mode = S_IFDIR;
	return fill(arg, name, &st, next);
}

int lv_readdir(struct lv *lv, struct lv_dirh *dh, uint64_t off, lv_fill_fn fill, void *arg)
{
	int rc;

	if (off == 0 && fill_dot(fill, arg, ".", lv->dir, 1))
		return 0;
	if (off <= 1 && fill_dot(fill, arg, "..", lv->root, 2))
		return 0;
	if (off < 2)
		off = 2;
	/* A seek, or the first call: start the root's stream there. */
	if (off != dh->pos) {
		dh->n = dh->at = 0;
		dh->eof = false;
		dh->root_off = off;
		dh->pos = off;
	}
	for (;;) {
		for (; dh->at < dh->n; dh->at++) {
			struct pending *p = &dh->pending[dh->at];
			struct stat st;

			memset(&st, 0, sizeof(st));
			st.st_ino = p->ino;
			st.st_mode = p->mode;
			if (fill(arg, p->name, &st, p->cookie))
				return 0;
			dh->pos = p->cookie;
		}
		if (dh->eof)
			return 0;
		rc = refill(lv, dh);
		if (rc < 0) {
			/* Start over at the next call, from where we were. */
			dh->pos = UINT64_MAX;
			return rc;
		}
	}
}
