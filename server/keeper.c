/*
 * The server's side of its supervisor.  See keeper.h and common/proto.h.
 */
#include "server/keeper.h"

#include "common/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- pins (core/store.h's pin holder) ------------------------------------ */

static int pin(void *arg, int fd, uint64_t *key)
{
	struct keeper *k = arg;
	int n, rc;

	pthread_mutex_lock(&k->lock);
	if (k->nfree > 0) {
		n = k->free[--k->nfree];
	} else if (k->next < k->limit) {
		n = k->next++;
	} else {
		pthread_mutex_unlock(&k->lock);
		return -ENOSPC;   /* the store names the file instead */
	}
	/*
	 * Sent under the lock: the supervisor sees a number given back (its
	 * P_UNPIN) before the same number given again.  Once sent it is safe:
	 * a server that dies now leaves the message for the supervisor to
	 * read (super/server.c: server_drain).
	 */
	rc = proto_send(k->ctl, P_PIN, (uint64_t)n, NULL, 0, fd);
	if (rc < 0)
		k->free[k->nfree++] = n;
	else
		k->seq[n - k->base] = ++k->sent;
	pthread_mutex_unlock(&k->lock);
	if (rc < 0)
		return rc == -ENOSPC ? -EIO : rc;
	*key = (uint64_t)n;
	return 0;
}

static void unpin(void *arg, uint64_t key)
{
	struct keeper *k = arg;
	int n = (int)key;

	if (n < k->base || n >= k->limit)
		return;
	pthread_mutex_lock(&k->lock);
	proto_send(k->ctl, P_UNPIN, key, NULL, 0, -1);
	k->free[k->nfree++] = n;
	pthread_mutex_unlock(&k->lock);
}

static void path(void *arg, uint64_t key, char buf[64])
{
	struct keeper *k = arg;

	snprintf(buf, 64, "/proc/%d/fd/%d", (int)k->pid, (int)key);
}

/*
 * Whether the supervisor holds pin `key`.  Not yet known: it is asked
 * (once for every pin sent so far), and the store keeps the file's own
 * descriptor till its answer comes.
 */
static bool ready(void *arg, uint64_t key)
{
	struct keeper *k = arg;
	int n = (int)key;
	bool r;

	if (n < k->base || n >= k->limit)
		return false;
	pthread_mutex_lock(&k->lock);
	r = k->seq[n - k->base] <= k->held;
	if (!r && k->asked < k->sent && proto_send(k->ctl, P_ASK, k->sent, NULL, 0, -1) == 0)
		k->asked = k->sent;
	pthread_mutex_unlock(&k->lock);
	return r;
}

/* ---- the supervisor ------------------------------------------------------ */

bool keeper_init(struct keeper *k)
{
	const char *s = getenv("SEGFS_PINS");
	int pid, base, limit;

	memset(k, 0, sizeof(*k));
	k->ctl = proto_env_fd("ctl");
	pthread_mutex_init(&k->lock, NULL);
	/* base == limit: the supervisor holds no pins; files are named instead. */
	if (k->ctl < 0 || s == NULL || sscanf(s, "%d:%d:%d", &pid, &base, &limit) != 3 ||
	    pid <= 0 || base < 3 || limit < base)
		return false;
	k->pid = pid;
	k->base = base;
	k->limit = limit;
	k->next = base;
	k->free = calloc((size_t)(limit - base) + 1, sizeof(*k->free));
	k->seq = calloc((size_t)(limit - base) + 1, sizeof(*k->seq));
	if (k->free == NULL || k->seq == NULL)
		return false;
	k->pins = (struct store_pins){ .pin = pin, .unpin = unpin, .path = path,
				       .ready = ready, .arg = k };
	return true;
}

void keeper_destroy(struct keeper *k)
{
	if (k->reading) {
		/* The reader ends when the socket does: shut ours down. */
		shutdown(k->ctl, SHUT_RDWR);
		pthread_join(k->reader, NULL);
	}
	free(k->free);
	free(k->seq);
	pthread_mutex_destroy(&k->lock);
}

static void *reader(void *arg)
{
	struct keeper *k = arg;
	struct proto_msg m;
	int fd;

	while (proto_recv(k->ctl, &m, &fd, 0) == 0) {
		if (fd >= 0)
			close(fd);
		if (m.type == P_PINNED) {
			pthread_mutex_lock(&k->lock);
			if (m.a > k->held)
				k->held = m.a;
			pthread_mutex_unlock(&k->lock);
		} else if (k->on_message != NULL) {
			k->on_message(k->arg, (int)m.type);
		}
	}
	pthread_mutex_lock(&k->lock);
	k->gone = true;
	pthread_mutex_unlock(&k->lock);
	if (k->on_message != NULL)
		k->on_message(k->arg, 0);
	return NULL;
}

int keeper_listen(struct keeper *k, void (*on_message)(void *arg, int type), void *arg)
{
	k->on_message = on_message;
	k->arg = arg;
	if (k->ctl < 0)
		return 0;
	if (pthread_create(&k->reader, NULL, reader, k) != 0)
		return -EAGAIN;
	k->reading = true;
	return 0;
}

int keeper_keep(struct keeper *k, uint64_t what, int fd)
{
	int rc;

	pthread_mutex_lock(&k->lock);
	rc = proto_send(k->ctl, P_KEEP, what, NULL, 0, fd);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int keeper_say(struct keeper *k, int type, const char *text)
{
	int rc;

	if (k->ctl < 0)
		return 0;
	pthread_mutex_lock(&k->lock);
	rc = proto_send(k->ctl, (enum proto_type)type, 0, text, text != NULL ? strlen(text) : 0,
			-1);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int keeper_sync(struct keeper *k, const uint64_t *keys, size_t n)
{
	unsigned char *used = calloc((size_t)(k->limit - k->base) + 1, 1);
	uint64_t batch[PROTO_TEXT_MAX / sizeof(uint64_t)];
	size_t nb = 0;
	int rc;

	if (used == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&k->lock);
	rc = proto_send(k->ctl, P_SYNC_BEGIN, 0, NULL, 0, -1);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int key = (int)keys[i];

		if (key < k->base || key >= k->limit)
			continue;
		used[key - k->base] = 1;
		/* The supervisor drained the dead server's pins before this one: held. */
		k->seq[key - k->base] = 0;
		batch[nb++] = keys[i];
		if (nb == sizeof(batch) / sizeof(batch[0])) {
			rc = proto_send(k->ctl, P_SYNC_LIVE, 0, batch, nb * sizeof(batch[0]), -1);
			nb = 0;
		}
	}
	if (rc == 0 && nb > 0)
		rc = proto_send(k->ctl, P_SYNC_LIVE, 0, batch, nb * sizeof(batch[0]), -1);
	if (rc == 0)
		rc = proto_send(k->ctl, P_SYNC_END, 0, NULL, 0, -1);
	/* Every number not in use is free again, lowest first. */
	k->nfree = 0;
	k->next = k->limit;
	for (int key = k->limit - 1; key >= k->base; key--)
		if (!used[key - k->base])
			k->free[k->nfree++] = key;
	pthread_mutex_unlock(&k->lock);
	free(used);
	return rc;
}
