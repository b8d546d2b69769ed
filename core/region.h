/*
 * The region: what the server keeps that the kernel's side of the
 * connection depends on and that no file in the private tmpfs can hold,
 * in a file of a second private tmpfs (the state tmpfs) that the server
 * maps.  The supervisor holds that tmpfs, so the region outlives the
 * server: a new server maps the same pages and finds every count the
 * kernel relies on.
 *
 * What lives here:
 *
 *   - one record per inode: the kernel's references (nlookup), open
 *     handles (nopen), the passthrough backing id, and the attributes the
 *     tmpfs cannot keep as segfs means them (mode, owner, flags, device,
 *     creator, the four times);
 *   - one record per lists/ entry the kernel holds, and one per open
 *     handle that holds state (directory streams, lists/ files);
 *   - one slot per request being served: its id, what it is about to do
 *     to the tree (its intent), and every record word it changed (its
 *     deltas), so that a request the kernel sends again after a crash can
 *     be answered exactly once;
 *   - the connection: the kernel's INIT and what the server answered.
 *
 * Crash consistency.  A process that dies leaves every store it made in
 * the shared pages, in program order, and none it did not make: there is
 * no torn write of an aligned word, and no power failure to survive.  So
 * records are arrays of 64-bit words, each changed by one store, and a
 * change that must be undone if the server dies half way is logged:
 * rg_set writes an undo entry into the header, the delta into the
 * request's slot, then the word, then clears the undo entry, all under
 * one lock.  At most one change is ever half done, and rg_open rolls it
 * back.  Words of a record that is free are nobody's: a new record is
 * filled in unlogged and then published by a logged store of its key
 * (word 0).
 *
 * Slots come in areas, one per server generation, used in turn: the
 * slots of the last few servers survive the next ones, so a request sent
 * again after several crashes in a row still finds everything that was
 * done for it (rg_find_unique).
 *
 * Without a state tmpfs (no CAP_SYS_ADMIN: segments in memfds) the region
 * is anonymous memory: the same code, nothing survives.
 *
 * Errors: 0 or -errno.
 */
#ifndef SEGFS_CORE_REGION_H
#define SEGFS_CORE_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rg;

/* The tables of records. */
enum rg_table {
	RG_INODES,
	RG_VIEWS,
	RG_HANDLES,
	RG_NTABLES
};

/* Words of an inode record.  Word 0 is the key: 0 for a free record. */
enum {
	RI_INO,          /* the inode's number (its tmpfs inode number) */
	RI_NLOOKUP,
	RI_NOPEN,
	RI_BACKING,      /* data-path id while open (see core/ns.h), else 0 */
	RI_MODE,         /* type and permission bits */
	RI_UID,
	RI_GID,
	RI_FLAGS,        /* SEG_FL_* */
	RI_STATE,        /* RI_STATE_* below */
	RI_PID,          /* creator */
	RI_RDEV,
	RI_ATIME, RI_ATIME_NS,
	RI_MTIME, RI_MTIME_NS,
	RI_CTIME, RI_CTIME_NS,
	RI_BTIME, RI_BTIME_NS,
	RI_RESERVED,     /* a segment's reservation (core/store.h) */
	RI_PIN,          /* its file's pin key + 1 (core/store.h), 0: named */
	RI_WORDS
};

/* RI_STATE bits. */
#define RI_STATE_LINKABLE 0x1   /* made by O_TMPFILE, may still be named */
#define RI_STATE_FIXED    0x2   /* a layer above keeps its name (lists/) */
/*
 * Its stand-in in the tree may have extended attributes: set before one
 * is written there, never cleared, so that a rebuild asks only these
 * (a listxattr per inode was a third of a rebuild of 10k segments).
 */
#define RI_STATE_XATTRS   0x4

/*
 * Words of a lists/ entry record: the key is the name's length plus one
 * (0: free); the name follows the counts.
 */
enum {
	RV_KEY,
	RV_NLOOKUP,
	RV_NOPEN,
	RV_NAME,         /* RV_NAME_WORDS words of name bytes */
	RV_NAME_WORDS = 32,
	RV_WORDS = RV_NAME + RV_NAME_WORDS
};

/*
 * Words of a handle record: the key is its kind (0: free); then what the
 * kind keeps.  A directory stream keeps the node it reads and where it
 * stands; the name of the entry it handed out last lets a new server find
 * that place again in a directory it has rebuilt.
 */
enum {
	RH_KIND,
	RH_NODE,         /* the node id it is about */
	RH_FLAGS,
	RH_A, RH_B, RH_C,  /* the kind's (a stream: offsets handed out) */
	RH_NAME,         /* RV_NAME_WORDS words: a name the kind keeps */
	RH_NAME2 = RH_NAME + RV_NAME_WORDS,
	RH_WORDS = RH_NAME2 + RV_NAME_WORDS
};

/* What a request may be about to do to the tree (rg_intent). */
enum rg_intent_kind {
	RG_INTENT_NONE,
	RG_INTENT_NEW,       /* name a new inode (a): create, mkdir, mknod, symlink */
	RG_INTENT_REMOVE,    /* remove the name leading to inode (a) */
	RG_INTENT_RENAME,    /* move inode (a); (b) the one exchanged with, if any */
	RG_INTENT_LINK,      /* add a name for inode (a) */
	RG_INTENT_REPLACE,   /* lists/: name the rebuilt segment (a) instead of (b) */
	RG_INTENT_XATTR,     /* set or remove an attribute of inode (a) */
	RG_INTENT_DETACH,    /* close backing id (a): it is no inode's any more */
	RG_INTENT_ATTACH,    /* a backing id is being registered; (a) once known */
	/*
	 * Not an intent: what rg_result recorded, the request's answer
	 * (a, b), made once it had taken effect and before it was sent.
	 */
	RG_RESULT,
};

/* One change a request made to a record word. */
struct rg_delta {
	uint32_t table;
	uint32_t word;
	uint64_t index;
	uint64_t old, new;
};

/* Sizes of the tables, fixed when the region is made. */
struct rg_params {
	uint64_t inodes;     /* records; the inode table grows up to this */
	uint64_t views;
	uint64_t handles;
};

/*
 * Makes a region.  `dirfd` is the state tmpfs's root, in which the file
 * "region" is made (-1: anonymous memory, not durable).
 */
int rg_create(int dirfd, const struct rg_params *p, struct rg **out);

/*
 * Maps the region a previous server left in `dirfd`, rolls back its
 * half-done change, and takes the next area of slots.  -EPROTO with a
 * sentence in why[] when its format is not this program's.
 */
int rg_open(int dirfd, struct rg **out, char *why, size_t whylen);

/*
 * What rg_open would say of the region in `dirfd`, without changing it:
 * for an upgrade, before the running server is asked to stop.
 * rg_open_readonly maps it, as it is, to read (the connection kept).
 */
int rg_check(int dirfd, char *why, size_t whylen);
int rg_open_readonly(int dirfd, struct rg **out, char *why, size_t whylen);

/*
 * The tests' hook: the format this program claims to read and write
 * (SEGFS_TEST_FORMAT), so that an upgrade to it is refused.
 */
void rg_test_format(uint64_t format);

void rg_close(struct rg *rg);

/* Whether the region outlives this process (it has a state tmpfs). */
bool rg_durable(const struct rg *rg);

/* How many servers have mapped it: 1 for the first. */
uint64_t rg_generation(const struct rg *rg);

/*
 * Records.  rg_rec is a record's words, to read; change them with rg_set
 * (a free record's words with rg_init).  rg_alloc finds a free record of
 * a table (its key is 0) and reserves it for the caller until the caller
 * publishes its key or gives it back with rg_unreserve; rg_free_index
 * returns a record whose key was set to 0 to the free pool.  -ENOSPC when
 * a table is full.  Records never move: pointers to them stay valid.
 */
uint64_t *rg_rec(struct rg *rg, enum rg_table t, uint64_t index);
int rg_alloc(struct rg *rg, enum rg_table t, uint64_t *index);
void rg_unreserve(struct rg *rg, enum rg_table t, uint64_t index);
void rg_free_index(struct rg *rg, enum rg_table t, uint64_t index);
void rg_init(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, uint64_t value);
/* Copies bytes into a free record's words from `word` on (unlogged). */
void rg_init_bytes(struct rg *rg, enum rg_table t, uint64_t index, unsigned word,
		   const void *bytes, size_t len);
uint64_t rg_capacity(const struct rg *rg, enum rg_table t);
/* Records ever used: every live one is below this (for a rebuild's scan). */
uint64_t rg_used(const struct rg *rg, enum rg_table t);

/* A logged change of one word; returns the old value. */
uint64_t rg_set(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, uint64_t value);
/* The same for a count: adds `delta`, returns the new value. */
uint64_t rg_add(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, int64_t delta);

/*
 * Slots.  A serving thread binds one slot (rg_bind, by number within the
 * current area, 0 .. RG_SLOTS_PER_AREA - 1) and starts it afresh for each
 * request (rg_begin: its id, with FUSE's resend bit cleared, and opcode).
 * Every rg_set of the thread then records its delta there.  rg_intent
 * says what the request is about to do to the tree, before it does it.
 * A thread with no slot bound records no deltas.  A request records up
 * to RG_MAX_INTENTS intents (more overwrite the last).
 */
#define RG_SLOTS_PER_AREA 32
#define RG_AREAS 8
#define RG_MAX_DELTAS 2048
#define RG_MAX_INTENTS 4

void rg_bind(struct rg *rg, unsigned slot);
void rg_unbind(struct rg *rg);
/*
 * `nodeid` and `name` (may be NULL; cut at RG_SLOT_NAME bytes) say what
 * the request is about, for a crash loop's report (rg_last_requests).
 */
#define RG_SLOT_NAME 64
void rg_begin(struct rg *rg, uint64_t unique, uint32_t opcode, uint64_t nodeid,
	      const char *name);
void rg_intent(struct rg *rg, enum rg_intent_kind kind, uint64_t a, uint64_t b);
/*
 * The request's answer, recorded before it is sent: a request the kernel
 * sends again because the answer never reached it is answered the same
 * (rg_find_unique reports it as RG_RESULT).  An intent recorded after it
 * does not replace it.
 */
void rg_result(struct rg *rg, uint64_t a, uint64_t b);

/*
 * What was done for request `unique` by the servers that died while
 * serving it: every delta of every slot that holds it, in the order made,
 * and the intents and results they recorded (oldest server first).
 * `each` is called for every delta, `intent` for every intent and result
 * (either may be NULL).  Returns the number of slots that held it (0:
 * none).
 */
struct rg_found {
	enum rg_intent_kind kind;
	uint64_t a, b;
};

int rg_find_unique(struct rg *rg, uint64_t unique,
		   void (*each)(void *arg, const struct rg_delta *d),
		   void (*intent)(void *arg, const struct rg_found *f), void *arg);

/* Every intent of every slot, of every server kept (a restart's sweep). */
void rg_each_intent(struct rg *rg, void (*fn)(void *arg, const struct rg_found *f), void *arg);

/*
 * The requests in the slots of the area of the server before this one
 * (the ones that may be sent again): `each` gets each one's id and
 * opcode.  For the supervisor's log of a crash loop.
 */
void rg_last_requests(struct rg *rg, void (*each)(void *arg, uint64_t unique,
						  uint32_t opcode, uint64_t nodeid,
						  const char *name), void *arg);

/*
 * The connection.  rg_conn_set records the kernel's INIT request (its
 * fuse_init_in) and a summary of what the server answered; rg_conn_get
 * reads them back (-ENOENT before the first INIT).
 */
#define RG_INIT_MAX 128
#define RG_SUMMARY_WORDS 8

int rg_conn_set(struct rg *rg, const void *init_in, size_t len,
		const uint64_t summary[RG_SUMMARY_WORDS]);
int rg_conn_get(struct rg *rg, void *init_in, size_t *len, uint64_t summary[RG_SUMMARY_WORDS]);

/*
 * Small values of the mount kept across servers (data path decided,
 * largest backing id registered, ...): RG_KV_* keys, unlogged single
 * words.
 */
enum rg_kv {
	RG_KV_PT,            /* data path: 0 unknown, 1 passthrough, 2 fallback */
	RG_KV_BACKING_MAX,   /* the largest backing id ever registered */
	RG_KV_EPOCH_STEPS,   /* lists/: epochs sent */
	RG_KV_COUNT = 16
};

uint64_t rg_kv_get(struct rg *rg, enum rg_kv key);
void rg_kv_set(struct rg *rg, enum rg_kv key, uint64_t value);
/* Raises a value to `value` if it is below (atomically). */
void rg_kv_max(struct rg *rg, enum rg_kv key, uint64_t value);

/* The reason for passthrough's absence, kept with RG_KV_PT. */
void rg_pt_reason_set(struct rg *rg, const char *why);
void rg_pt_reason_get(struct rg *rg, char *buf, size_t len);

#endif
