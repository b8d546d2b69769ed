/*
 * The request a serving thread is on, and what earlier servers did for it
 * (server/request.c).
 *
 * The loop (server/loop.c) starts each request's slot in the region
 * (core/region.h) and, for a request the kernel sends again after a
 * crash (FUSE_NOTIFY_RESEND), gathers what the dead servers recorded for
 * it.  Two cases:
 *
 *   - it has a result: it was done and answered, and only the answer was
 *     lost.  The handler answers it again from the result (req_replayed),
 *     without doing anything twice.
 *   - it has none: whatever references and open handles it had taken are
 *     given back first (req_undo, by the loop), then the handler does it
 *     again; where it changes the tree, it first asks whether it already
 *     did (req_intent: the change was made before the server died).
 *
 * Handlers record a result (req_result) once the request has taken effect
 * and just before they answer.
 */
#ifndef SEGFS_SERVER_REQUEST_H
#define SEGFS_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/region.h"

#include <sys/stat.h>

struct segfs;
struct seg_inode;

#define REQ_MAX_INTENTS 32

struct request {
	uint64_t unique;           /* its id, the resend bit cleared */
	uint32_t opcode;
	bool resent;
	bool has_result;
	uint64_t result_a, result_b;
	size_t nintents;
	struct rg_found intents[REQ_MAX_INTENTS];
};

/* The calling thread's request (its fields are zero outside one). */
struct request *req_current(void);

/*
 * Starts the thread's request: `unique` as the kernel sent it, and for a
 * resent one what the region kept of it.  Called by the loop.
 */
void req_begin(struct segfs *fs, uint64_t unique, uint32_t opcode, uint64_t nodeid,
	       const char *name);

/*
 * Gives back the references and handles an unanswered resent request had
 * taken: nothing when it has a result.  Called by the loop before the
 * handler.
 */
void req_undo(struct segfs *fs);

/*
 * For a resent request: the net change earlier servers made to a counting
 * word (a release that happened shows as -1 on its inode's RI_NOPEN).
 */
int64_t req_net(uint32_t table, uint64_t index, uint32_t word);

/* Records the answer of the current request (core/region.h: rg_result). */
void req_result(struct segfs *fs, uint64_t a, uint64_t b);

/* For a resent request that has a result: true, and the result. */
bool req_replayed(uint64_t *a, uint64_t *b);

/*
 * For a resent request without a result: the last intent of `kind` an
 * earlier server recorded for it (true), with its inodes.
 */
bool req_intent(enum rg_intent_kind kind, uint64_t *a, uint64_t *b);

/*
 * For a resent request: the inode an intent of `kind` says it made, if
 * `name` in `dir` still leads to it, with one reference more (and its
 * stat in *st); NULL otherwise.
 */
struct seg_inode *req_made(struct segfs *fs, struct seg_inode *dir, const char *name,
			   enum rg_intent_kind kind, struct stat *st);

/* Whether `name` in `dir` leads to inode number `number` now. */
bool req_leads_to(struct segfs *fs, struct seg_inode *dir, const char *name, uint64_t number);

/*
 * The debug hook of the tests (SEGFS_CRASH, server/crash.c): aborts the
 * server at `point` ("create", "unlink", ...: after the change, before
 * its answer) when the environment asks for it.
 */
void crash_point(const char *point);
void crash_init(bool first_server);

#endif
