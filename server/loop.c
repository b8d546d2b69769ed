/*
 * The serving loop: threads that read requests from /dev/fuse and hand
 * them to libfuse (fuse_session_process_buf), in place of libfuse's own
 * loop, for three things it cannot do:
 *
 *   - each request's id is seen before it is served: its slot in the
 *     region is started (server/request.c), and a request the kernel
 *     sends again after a crash is told apart (FUSE_UNIQUE_RESEND);
 *   - the kernel's INIT is kept as it came (core/region.h: rg_conn_set),
 *     so that a server that takes over can answer it again;
 *   - the loop stops when asked (an upgrade's handover), once every
 *     request read is answered: a thread blocked in read() is woken with
 *     a signal, and a thread serving finishes first.
 *
 * Threads: a fixed number (FUSE_MAX_THREADS, or one with -s), all reading
 * the one /dev/fuse descriptor the supervisor holds (no clone_fd: a
 * cloned descriptor dies with the server, and the kernel ends the
 * requests it holds then, where the shared one keeps them for the next
 * server).  The kernel wakes one reader per request.
 */
#include "server/loop.h"

#include "server/node.h"

#include "common/proto.h"

#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* As libfuse's multithreaded loop: at most 10 threads by default. */
#define MAX_THREADS 10
/* libfuse's largest request: 256 pages of data and the headers. */
#define BUF_SIZE ((256 + 16) * 4096)

struct worker {
	pthread_t tid;
	unsigned slot;
	struct loop *loop;
	bool started;
	atomic_bool done;              /* left the loop: no more waking */
};

struct loop {
	struct segfs *fs;
	atomic_bool stop;
	atomic_bool ended;             /* the connection is gone */
	atomic_bool init_seen;         /* a first server: INIT came */
	pthread_mutex_t lock;          /* for cond: stop was set */
	pthread_cond_t cond;
	pthread_t waker;
	unsigned n;
	struct worker w[MAX_THREADS];
};

static struct loop *the_loop;

/* SIGUSR2 only interrupts a read(): its handler does nothing. */
static void wake(int sig)
{
	(void)sig;
}

/*
 * The name a request is about, for a crash's report: where it is, for the
 * operations that carry one (<linux/fuse.h>'s layouts).
 */
static const char *request_name(const struct fuse_in_header *h, size_t len)
{
	const char *body = (const char *)(h + 1);
	size_t skip;

	switch (h->opcode) {
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_SYMLINK:
		skip = 0;
		break;
	case FUSE_MKDIR:
	case FUSE_LINK:
	case FUSE_RENAME:
		skip = 8;
		break;
	case FUSE_CREATE:
	case FUSE_MKNOD:
	case FUSE_RENAME2:
		skip = 16;
		break;
	default:
		return NULL;
	}
	if (len <= sizeof(*h) + skip)
		return NULL;
	/* Untrusted it is not (the kernel's), but not necessarily terminated. */
	if (memchr(body + skip, '\0', len - sizeof(*h) - skip) == NULL)
		return NULL;
	return body + skip;
}

/*
 * Whether the kernel of this INIT sends a dead server's requests again
 * when told (FUSE_HAS_RESEND: protocol 7.40, Linux 6.9; bit 39 of the
 * flags, the 8th of flags2, which Debian 12's <linux/fuse.h> lacks).
 * SEGFS_TEST_NO_RESEND makes it say no, for the tests of such a kernel.
 */
static bool kernel_resends(const char *body, size_t n)
{
	uint32_t w[5] = { 0 };

	if (getenv("SEGFS_TEST_NO_RESEND") != NULL)
		return false;
	memcpy(w, body, n < sizeof(w) ? n : sizeof(w));
	return n >= sizeof(w) && w[0] == 7 && w[1] >= 40 && (w[4] & (1U << 7));
}

/*
 * Keeps the kernel's INIT, with what the server answered it.  Without
 * resend a server's death cannot be followed: the requests it had read
 * would wait for an answer for ever.
 */
static void keep_init(struct segfs *fs, const char *buf, size_t len)
{
	uint64_t summary[RG_SUMMARY_WORDS];
	size_t n = len - sizeof(struct fuse_in_header);

	if (n > RG_INIT_MAX)
		n = RG_INIT_MAX;
	conn_summary(fs, summary);
	rg_conn_set(fs->rg, buf + sizeof(struct fuse_in_header), n, summary);
	if (!kernel_resends(buf + sizeof(struct fuse_in_header), n))
		keeper_say(&fs->keeper, P_FRAGILE, "the kernel cannot send a dead server's "
			   "requests again (FUSE_HAS_RESEND needs Linux >= 6.9)");
}

static void *serve(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->loop;
	struct segfs *fs = l->fs;
	char *buf = malloc(BUF_SIZE);

	if (buf == NULL)
		goto out;
	rg_bind(fs->rg, w->slot);
	while (!atomic_load(&l->stop)) {
		ssize_t n = read(fuse_session_fd(fs->se), buf, BUF_SIZE);
		const struct fuse_in_header *h = (const void *)buf;
		struct fuse_buf fb = { .mem = buf };

		if (n < 0) {
			/* ENOENT: the request was interrupted before we read it. */
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
				continue;
			/* ENODEV: unmounted, or aborted through fusectl. */
			if (errno != ENODEV)
				fprintf(stderr, "segfs-server: reading /dev/fuse: %s\n",
					strerror(errno));
			atomic_store(&l->ended, true);
			break;
		}
		if ((size_t)n < sizeof(*h))
			continue;
		fb.size = (size_t)n;
		req_begin(fs, h->unique, h->opcode, h->nodeid, request_name(h, (size_t)n));
		req_undo(fs);
		fuse_session_process_buf(fs->se, &fb);
		if (h->opcode == FUSE_INIT && !atomic_exchange(&l->init_seen, true))
			keep_init(fs, buf, (size_t)n);
		if (fuse_session_exited(fs->se)) {
			atomic_store(&l->ended, true);
			break;
		}
	}
	rg_unbind(fs->rg);
out:
	free(buf);
	atomic_store(&w->done, true);
	/* The others, blocked in read(), must go too: wake them. */
	loop_stop();
	return NULL;
}

/*
 * Once the loop is to stop, wakes the workers until every one has left
 * read(): a signal sent just before a worker enters it is lost, so they
 * are sent again, every 10 ms.
 */
static void *waker(void *arg)
{
	struct loop *l = arg;
	struct timespec ten_ms = { .tv_nsec = 10 * 1000 * 1000 };
	bool any;

	pthread_mutex_lock(&l->lock);
	while (!atomic_load(&l->stop))
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	do {
		any = false;
		for (unsigned i = 0; i < l->n; i++)
			if (l->w[i].started && !atomic_load(&l->w[i].done)) {
				pthread_kill(l->w[i].tid, SIGUSR2);
				any = true;
			}
		if (any)
			nanosleep(&ten_ms, NULL);
	} while (any);
	return NULL;
}

int loop_run(struct segfs *fs, bool one_thread)
{
	struct sigaction sa = { .sa_handler = wake };
	struct loop *l = calloc(1, sizeof(*l));
	int rc = 0;

	if (l == NULL)
		return -ENOMEM;
	/* No SA_RESTART: a read() it interrupts returns EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	l->fs = fs;
	l->n = one_thread ? 1 : MAX_THREADS;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	if (pthread_create(&l->waker, NULL, waker, l) != 0) {
		free(l);
		return -EAGAIN;
	}
	__atomic_store_n(&the_loop, l, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < l->n; i++) {
		l->w[i].loop = l;
		l->w[i].slot = i;
		if (pthread_create(&l->w[i].tid, NULL, serve, &l->w[i]) != 0) {
			rc = -EAGAIN;
			loop_stop();
			break;
		}
		l->w[i].started = true;
	}
	for (unsigned i = 0; i < l->n; i++)
		if (l->w[i].started)
			pthread_join(l->w[i].tid, NULL);
	/* Every worker is done, so the waker is too, once told to stop. */
	loop_stop();
	pthread_join(l->waker, NULL);
	__atomic_store_n(&the_loop, NULL, __ATOMIC_RELEASE);
	if (rc == 0)
		rc = atomic_load(&l->ended) ? LOOP_ENDED : LOOP_STOPPED;
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
	return rc;
}

void loop_stop(void)
{
	struct loop *l = __atomic_load_n(&the_loop, __ATOMIC_ACQUIRE);

	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->stop, true);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}
