/*
 * Taking over a FUSE connection another server answered INIT on.
 *
 * The kernel sends INIT once per connection, and libfuse has no way to
 * start a session on a connection that is past it.  So the server that
 * takes over gives its own session the INIT the first server was sent
 * (kept in the region as it came: server/loop.c), as if it came from the
 * kernel: libfuse negotiates from it exactly as it did then, and calls
 * our init (server/init.c), which asks for what it asked for then.  The
 * answer goes to the kernel under an id no request has, and the kernel
 * drops it (ENOENT, which libfuse does not report).  What the new session
 * agreed on must be what the kernel was told: the same protocol, flags
 * and sizes (conn_summary), or this server cannot serve it (a build with
 * another libfuse, or other options) and refuses.
 *
 * No libfuse change is needed: fuse_session_process_buf is its public
 * API, and the loop reads requests itself (server/loop.c).  libfuse PR
 * #1219's proposal (restarting a server on a connection) would do the
 * same inside libfuse.
 *
 * Then two things the dead server left: backing ids it registered that no
 * record names (it died between the kernel's answer and its record of
 * it; closing an id no open uses costs nothing), and requests it had read
 * and not answered, which the kernel sends again when told
 * (FUSE_NOTIFY_RESEND, Linux 6.9), marked with FUSE_UNIQUE_RESEND.
 */
#include "server/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* <linux/fuse.h> of protocol 7.40 (Debian 12's headers have 7.38). */
#define OP_INIT 26
#define NOTIFY_RESEND 7
/* An id the kernel never gives a request: it counts up from 2 by 2. */
#define TAKEOVER_UNIQUE (1ULL << 62)

struct in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

void conn_summary(struct segfs *fs, uint64_t s[RG_SUMMARY_WORDS])
{
	const struct fuse_conn_info *c = fs->conn;

	memset(s, 0, RG_SUMMARY_WORDS * sizeof(s[0]));
	if (c == NULL)
		return;
	s[0] = (uint64_t)c->proto_major << 32 | c->proto_minor;
#ifdef FUSE_CAP_PASSTHROUGH
	s[1] = c->want_ext;
#else
	s[1] = c->want;
#endif
	s[2] = c->max_write;
	s[3] = c->max_readahead;
	s[4] = (uint64_t)c->max_background << 32 | c->congestion_threshold;
	s[5] = c->time_gran;
	s[6] = fs->opts->xattr;
}

int takeover_init(struct segfs *fs, char *why, size_t len)
{
	struct {
		struct in_header h;
		uint8_t arg[RG_INIT_MAX];
	} msg;
	uint64_t kept[RG_SUMMARY_WORDS], now[RG_SUMMARY_WORDS];
	struct fuse_buf fb = { .mem = &msg };
	size_t n;

	if (rg_conn_get(fs->rg, msg.arg, &n, kept) < 0) {
		snprintf(why, len, "no server answered this connection's INIT");
		return -EPROTO;
	}
	memset(&msg.h, 0, sizeof(msg.h));
	msg.h.len = (uint32_t)(sizeof(msg.h) + n);
	msg.h.opcode = OP_INIT;
	msg.h.unique = TAKEOVER_UNIQUE;
	fb.size = msg.h.len;
	fuse_session_process_buf(fs->se, &fb);
	conn_summary(fs, now);
	for (unsigned i = 0; i < RG_SUMMARY_WORDS; i++)
		if (now[i] != kept[i]) {
			snprintf(why, len, "this server agrees on other features with the kernel "
				 "than the connection's (INIT word %u: %#llx, was %#llx): another "
				 "libfuse or other options", i, (unsigned long long)now[i],
				 (unsigned long long)kept[i]);
			return -EPROTO;
		}
	return 0;
}

struct sweep {
	uint64_t *ids;
	size_t n, cap;
	bool unknown;            /* an id was being registered, not yet known */
};

static void add_id(struct sweep *s, uint64_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *p = realloc(s->ids, cap * sizeof(*p));

		if (p == NULL)
			return;
		s->ids = p;
		s->cap = cap;
	}
	s->ids[s->n++] = id;
}

static void found_intent(void *arg, const struct rg_found *f)
{
	struct sweep *s = arg;

	if (f->kind == RG_INTENT_DETACH && f->a > 0)
		add_id(s, f->a);
	if (f->kind == RG_INTENT_ATTACH) {
		if (f->a > 0)
			add_id(s, f->a);
		else
			s->unknown = true;
	}
}

/* Whether a live inode record still names backing id `id`. */
static bool id_live(struct rg *rg, uint64_t id)
{
	uint64_t used = rg_used(rg, RG_INODES);

	for (uint64_t r = 0; r < used; r++) {
		const uint64_t *w = rg_rec(rg, RG_INODES, r);

		if (w[RI_INO] != 0 && (int64_t)w[RI_BACKING] > 0 && w[RI_BACKING] == id)
			return true;
	}
	return false;
}

void takeover_sweep(struct segfs *fs)
{
	struct sweep s = { 0 };
	uint64_t max = rg_kv_get(fs->rg, RG_KV_BACKING_MAX);

	if (atomic_load(&fs->pt) != PT_ON)
		return;
	rg_each_intent(fs->rg, found_intent, &s);
	/*
	 * An id the kernel gave while its number was not yet written down is
	 * above every one written down (the kernel numbers them upwards), by
	 * at most one per serving thread.
	 */
	if (s.unknown)
		for (uint64_t id = max + 1; id <= max + 64; id++)
			add_id(&s, id);
	for (size_t i = 0; i < s.n; i++)
		if (s.ids[i] <= INT32_MAX && !id_live(fs->rg, s.ids[i]))
			passthrough_close_id(fs, (int)s.ids[i]);
	free(s.ids);
}

int takeover_resend(struct segfs *fs)
{
	struct out_header out = { .len = sizeof(out), .error = NOTIFY_RESEND, .unique = 0 };
	ssize_t w = write(fuse_session_fd(fs->se), &out, sizeof(out));

	return w == (ssize_t)sizeof(out) ? 0 : w < 0 ? -errno : -EIO;
}
