/*
 * Open handles the kernel may never release.  It sends RELEASE and
 * RELEASEDIR after close() has returned, and a daemon stopped at that
 * moment (segfs-exec stops its daemon as soon as the last process is gone;
 * a signal; an unmount) never reads them: what the handle holds would be
 * lost, and a leak checker says so.  So the handles the daemon allocates
 * (directory streams, lists/ files) are kept on a list from their open to
 * their release, and what is left on it when the session has ended is
 * released then.  Segment handles hold nothing of their own: the
 * namespace frees their inodes, opens and all.
 */
#include "server/handles.h"

#include <stddef.h>

void handles_init(struct handles *hs)
{
	pthread_mutex_init(&hs->lock, NULL);
	hs->head.prev = hs->head.next = &hs->head;
}

void handle_add(struct handles *hs, struct handle *h,
		void (*drop)(struct segfs *fs, struct handle *h))
{
	h->drop = drop;
	pthread_mutex_lock(&hs->lock);
	h->next = &hs->head;
	h->prev = hs->head.prev;
	hs->head.prev->next = h;
	hs->head.prev = h;
	pthread_mutex_unlock(&hs->lock);
}

void handle_del(struct handles *hs, struct handle *h)
{
	pthread_mutex_lock(&hs->lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = NULL;
	pthread_mutex_unlock(&hs->lock);
}

void handles_drop_all(struct handles *hs, struct segfs *fs)
{
	while (hs->head.next != &hs->head) {
		struct handle *h = hs->head.next;

		handle_del(hs, h);
		h->drop(fs, h);
	}
	pthread_mutex_destroy(&hs->lock);
}
