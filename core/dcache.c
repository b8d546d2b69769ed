/*
 * The dentry table.  See dcache.h.
 */
#include "core/dcache.h"

#include "core/alloc.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define INITIAL_BUCKETS 64

static void list_init(struct dc_node *head)
{
	head->prev = head->next = head;
	head->entry = NULL;
}

static void list_insert_before(struct dc_node *pos, struct dc_node *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}

static void list_del(struct dc_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/*
 * FNV-1a over the name, seeded per table and mixed with the parent's
 * address so that equal names in different directories spread.  The seed
 * makes collisions hard to arrange from outside without the cost of a
 * keyed cryptographic hash on every lookup.
 */
static uint64_t name_hash(const struct seg_dcache *dc, const struct dc_dir *parent,
			  const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ dc->seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	h ^= (uint64_t)(uintptr_t)parent;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

int dc_init(struct seg_dcache *dc)
{
	memset(dc, 0, sizeof(*dc));
	dc->buckets = seg_calloc(INITIAL_BUCKETS, sizeof(*dc->buckets));
	if (dc->buckets == NULL)
		return -ENOMEM;
	dc->nbuckets = INITIAL_BUCKETS;
	if (getrandom(&dc->seed, sizeof(dc->seed), GRND_NONBLOCK) != sizeof(dc->seed))
		dc->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)dc;
	return 0;
}

void dc_destroy(struct seg_dcache *dc)
{
	seg_free(dc->buckets);
	dc->buckets = NULL;
}

void dc_dir_init(struct dc_dir *dir)
{
	list_init(&dir->entries);
	dir->next_cookie = DC_FIRST_COOKIE;
	dir->nentries = 0;
}

struct seg_dentry *dc_alloc(const char *name, size_t len)
{
	struct seg_dentry *d = seg_malloc(sizeof(*d) + len + 1);

	if (d == NULL)
		return NULL;
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, len);
	d->name[len] = '\0';
	d->len = len;
	return d;
}

void dc_free(struct seg_dentry *d)
{
	seg_free(d);
}

struct seg_dentry *dc_find(const struct seg_dcache *dc, const struct dc_dir *dir,
			   const char *name, size_t len)
{
	uint64_t h = name_hash(dc, dir, name, len);

	for (struct seg_dentry *d = dc->buckets[h & (dc->nbuckets - 1)]; d; d = d->hnext)
		if (d->hash == h && d->parent == dir && d->len == len &&
		    memcmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

void dc_add(struct seg_dcache *dc, struct dc_dir *dir, struct seg_dentry *d,
	    struct seg_inode *ino)
{
	size_t b;

	d->parent = dir;
	d->inode = ino;
	d->hash = name_hash(dc, dir, d->name, d->len);
	d->cookie = dir->next_cookie++;
	d->node.entry = d;
	list_insert_before(&dir->entries, &d->node);
	b = d->hash & (dc->nbuckets - 1);
	d->hnext = dc->buckets[b];
	dc->buckets[b] = d;
	dc->nentries++;
	dir->nentries++;
}

void dc_remove(struct seg_dcache *dc, struct seg_dentry *d)
{
	struct seg_dentry **pp = &dc->buckets[d->hash & (dc->nbuckets - 1)];

	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	d->hnext = NULL;
	list_del(&d->node);
	dc->nentries--;
	d->parent->nentries--;
}

/* Doubles when full; chains only grow longer if memory runs out. */
size_t dc_grow_size(const struct seg_dcache *dc)
{
	if (dc->nentries < dc->nbuckets || dc->nbuckets > SIZE_MAX / 2 / sizeof(void *))
		return 0;
	return dc->nbuckets * 2;
}

struct seg_dentry **dc_rehash(struct seg_dcache *dc, struct seg_dentry **b, size_t n)
{
	struct seg_dentry **old = dc->buckets;

	/* Another thread grew it meanwhile. */
	if (n <= dc->nbuckets)
		return b;
	for (size_t i = 0; i < dc->nbuckets; i++) {
		struct seg_dentry *d = old[i], *next;

		for (; d; d = next) {
			next = d->hnext;
			d->hnext = b[d->hash & (n - 1)];
			b[d->hash & (n - 1)] = d;
		}
	}
	dc->buckets = b;
	dc->nbuckets = n;
	return old;
}

/* ---- walks ------------------------------------------------------------ */

struct dc_node *dc_first_after(struct dc_dir *dir, uint64_t off)
{
	struct dc_node *n;

	for (n = dir->entries.next; n != &dir->entries; n = n->next)
		if (n->entry != NULL && n->entry->cookie > off)
			break;
	return n;
}

bool dc_end(const struct dc_dir *dir, const struct dc_node *n)
{
	return n == &dir->entries;
}

void dc_cursor_init(struct dc_node *cursor)
{
	list_init(cursor);
}

void dc_park(struct dc_node *cursor, struct dc_node *before)
{
	list_insert_before(before, cursor);
}

void dc_unpark(struct dc_node *cursor)
{
	list_del(cursor);
}
