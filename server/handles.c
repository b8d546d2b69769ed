/*
 * Open handles that hold state of the server's.  See handles.h.
 *
 * The kernel sends RELEASE and RELEASEDIR after close() has returned, and
 * a server stopped at that moment for good (segfs-exec stops it as soon
 * as the last process is gone; a signal; an unmount) never reads them:
 * handles_drop_all releases what is left then, from memory and records.
 * A server that stops for another (a crash, an upgrade) leaves them all
 * to it.
 */
#include "server/handles.h"

#include "core/alloc.h"
#include "core/region.h"
#include "server/segfs.h"

#include <errno.h>
#include <stdlib.h>

int handles_init(struct handles *hs, struct rg *rg)
{
	hs->rg = rg;
	hs->cap = rg_capacity(rg, RG_HANDLES);
	hs->by_index = calloc(hs->cap ? hs->cap : 1, sizeof(*hs->by_index));
	if (hs->by_index == NULL)
		return -ENOMEM;
	pthread_mutex_init(&hs->lock, NULL);
	return 0;
}

void handles_destroy(struct handles *hs)
{
	free(hs->by_index);
	hs->by_index = NULL;
	pthread_mutex_destroy(&hs->lock);
}

void handles_set_adopt(struct handles *hs, enum handle_kind kind, handle_adopt_fn fn)
{
	hs->adopt[kind] = fn;
}

int handle_add(struct handles *hs, struct handle *h,
	       void (*drop)(struct segfs *fs, struct handle *h), enum handle_kind kind,
	       uint64_t node)
{
	uint64_t *w;
	int rc = rg_alloc(hs->rg, RG_HANDLES, &h->index);

	if (rc < 0)
		return rc == -ENOSPC ? -ENFILE : rc;
	h->drop = drop;
	w = rg_rec(hs->rg, RG_HANDLES, h->index);
	for (unsigned i = 0; i < RH_WORDS; i++)
		w[i] = 0;
	w[RH_NODE] = node;
	pthread_mutex_lock(&hs->lock);
	hs->by_index[h->index] = h;
	pthread_mutex_unlock(&hs->lock);
	/* Published last: a record is a handle once it has a kind. */
	rg_set(hs->rg, RG_HANDLES, h->index, RH_KIND, kind);
	return 0;
}

uint64_t handle_fh(const struct handle *h)
{
	return h->index + 1;
}

uint64_t *handle_words(struct handles *hs, const struct handle *h)
{
	return rg_rec(hs->rg, RG_HANDLES, h->index);
}

void handle_set(struct handles *hs, struct handle *h, unsigned word, uint64_t value)
{
	rg_set(hs->rg, RG_HANDLES, h->index, word, value);
}

void handle_counted(struct handles *hs, struct handle *h)
{
	uint64_t *w = handle_words(hs, h);

	rg_set(hs->rg, RG_HANDLES, h->index, RH_FLAGS, w[RH_FLAGS] | HF_COUNTED);
}

/* The handle at record `index`, adopted from its record if need be. */
static struct handle *get_index(struct handles *hs, struct segfs *fs, uint64_t index)
{
	struct handle *h;
	uint64_t *w, kind;

	if (index >= hs->cap)
		return NULL;
	pthread_mutex_lock(&hs->lock);
	h = hs->by_index[index];
	w = rg_rec(hs->rg, RG_HANDLES, index);
	kind = w[RH_KIND];
	/*
	 * Adopted under the lock: two threads asked about one handle at once
	 * must not both make it.  Adopting calls into the namespace, never
	 * back here.
	 */
	if (h == NULL && kind != 0 && kind <= HK_LISTS_DIR && hs->adopt[kind] != NULL) {
		h = hs->adopt[kind](fs, index, w);
		if (h != NULL) {
			h->index = index;
			hs->by_index[index] = h;
		}
	}
	pthread_mutex_unlock(&hs->lock);
	return h;
}

struct handle *handle_get(struct handles *hs, struct segfs *fs, uint64_t fh)
{
	return fh == 0 ? NULL : get_index(hs, fs, fh - 1);
}

void handle_drop_index(struct segfs *fs, uint64_t index)
{
	struct handle *h = get_index(&fs->handles, fs, index);

	/*
	 * What it holds is given back first, then its record goes: a server
	 * that dies in between finds a handle that holds nothing (drop clears
	 * HF_COUNTED before it gives the count back), and gives back nothing
	 * twice.
	 */
	if (h != NULL)
		handle_release(fs, h);
	else if (index < fs->handles.cap && rg_rec(fs->rg, RG_HANDLES, index)[RH_KIND] != 0)
		handle_forget_index(&fs->handles, index);
}

void handle_release(struct segfs *fs, struct handle *h)
{
	uint64_t index = h->index;

	pthread_mutex_lock(&fs->handles.lock);
	fs->handles.by_index[index] = NULL;
	pthread_mutex_unlock(&fs->handles.lock);
	h->drop(fs, h);
	handle_forget_index(&fs->handles, index);
}

void handle_forget_index(struct handles *hs, uint64_t index)
{
	rg_set(hs->rg, RG_HANDLES, index, RH_KIND, 0);
	rg_free_index(hs->rg, RG_HANDLES, index);
}

bool handle_uncount(struct handles *hs, struct handle *h)
{
	uint64_t *w = handle_words(hs, h);

	if (!(w[RH_FLAGS] & HF_COUNTED))
		return false;
	rg_set(hs->rg, RG_HANDLES, h->index, RH_FLAGS, w[RH_FLAGS] & ~(uint64_t)HF_COUNTED);
	return true;
}

void handles_drop_all(struct handles *hs, struct segfs *fs)
{
	uint64_t used = rg_used(hs->rg, RG_HANDLES);

	for (uint64_t i = 0; i < used; i++)
		if (rg_rec(hs->rg, RG_HANDLES, i)[RH_KIND] != 0)
			handle_drop_index(fs, i);
}
