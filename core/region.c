/*
 * The region.  See region.h for what it keeps and why it survives.
 *
 * Layout of the file (offsets in bytes, all page-aligned):
 *
 *   header    one page: magic, format, sizes, the undo entry, the
 *             connection, the small values
 *   slots     RG_AREAS * RG_SLOTS_PER_AREA slots
 *   tables    inodes, views, handles: arrays of records of 64-bit words
 *
 * The file is made at its full size and stays sparse: a page costs memory
 * only once a record on it is used.  Each table keeps a high-water mark
 * of the records ever used, so that rg_open scans only those.
 */
#include "core/region.h"

#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "segfs-rg"
/*
 * The format.  A server refuses a region of another format (an upgrade to
 * a server that keeps other records is refused, and the running one goes
 * on serving): change it with every change to the layout below or to the
 * meaning of a word.
 */
#define FORMAT 1
#define PAGE 4096u

static uint64_t format = FORMAT;

void rg_test_format(uint64_t f)
{
	format = f;
}
#define FILE_NAME "region"

static const unsigned table_words[RG_NTABLES] = { RI_WORDS, RV_WORDS, RH_WORDS };

/* The undo entry: the one change that may be half done. */
struct undo {
	uint64_t valid;
	uint64_t table, index, word, old;
	uint64_t slot;          /* whose delta it is, or UINT64_MAX */
	uint64_t ndeltas;       /* the slot's count before the delta */
};

struct header {
	char magic[8];
	uint64_t format;
	uint64_t size;                       /* of the file */
	uint64_t generation;
	uint64_t cap[RG_NTABLES];
	uint64_t off[RG_NTABLES];
	uint64_t hwm[RG_NTABLES];            /* records ever used */
	uint64_t off_slots;
	struct undo undo;
	uint64_t conn_len;                   /* 0: no INIT yet */
	uint8_t conn_init[RG_INIT_MAX];
	uint64_t conn_summary[RG_SUMMARY_WORDS];
	uint64_t kv[RG_KV_COUNT];
	char pt_reason[160];
};
_Static_assert(sizeof(struct header) <= PAGE, "the header fits its page");

struct slot {
	uint64_t unique;                     /* 0: unused */
	uint64_t opcode;
	uint64_t ndeltas;
	uint64_t nintents;
	struct { uint64_t kind, a, b; } intent[RG_MAX_INTENTS];
	uint64_t result_set, result_a, result_b;
	uint64_t nodeid;
	char name[RG_SLOT_NAME];
	struct rg_delta d[RG_MAX_DELTAS];
};

struct rg {
	struct header *h;
	void *base;
	size_t size;
	bool durable;
	unsigned area;                       /* this server's area of slots */
	pthread_mutex_t lock;                /* every logged change; innermost */
	pthread_mutex_t alloc_lock;          /* the free pools */
	/* Free records below the high-water mark, per table (a stack). */
	uint64_t *pool[RG_NTABLES];
	uint64_t npool[RG_NTABLES];
	uint64_t poolcap[RG_NTABLES];      /* >= the high-water mark */
};

/* The slot the calling thread records its deltas in, if any. */
static _Thread_local struct slot *cur_slot;
static _Thread_local uint64_t cur_slot_no;

/* ---- layout ----------------------------------------------------------- */

static size_t round_page(size_t n)
{
	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

static struct slot *slot_at(struct rg *rg, uint64_t n)
{
	return (struct slot *)((char *)rg->base + rg->h->off_slots) + n;
}

static uint64_t *word_at(struct rg *rg, unsigned t, uint64_t index, unsigned word)
{
	return (uint64_t *)((char *)rg->base + rg->h->off[t]) +
	       index * table_words[t] + word;
}

/* Sizes the tables and returns the file's size. */
static size_t plan(struct header *h, const struct rg_params *p)
{
	size_t off = PAGE;

	h->off_slots = off;
	off += round_page(sizeof(struct slot) * RG_AREAS * RG_SLOTS_PER_AREA);
	h->cap[RG_INODES] = p->inodes;
	h->cap[RG_VIEWS] = p->views;
	h->cap[RG_HANDLES] = p->handles;
	for (unsigned t = 0; t < RG_NTABLES; t++) {
		h->off[t] = off;
		off += round_page(h->cap[t] * table_words[t] * sizeof(uint64_t));
	}
	return off;
}

static int map(struct rg *rg, int fd, size_t size)
{
	rg->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			fd, 0);
	if (rg->base == MAP_FAILED)
		return -errno;
	rg->size = size;
	rg->h = rg->base;
	return 0;
}

static struct rg *rg_alloc_struct(void)
{
	struct rg *rg = seg_calloc(1, sizeof(*rg));

	if (rg == NULL)
		return NULL;
	pthread_mutex_init(&rg->lock, NULL);
	pthread_mutex_init(&rg->alloc_lock, NULL);
	return rg;
}

void rg_close(struct rg *rg)
{
	if (rg == NULL)
		return;
	if (rg->base != NULL && rg->base != MAP_FAILED)
		munmap(rg->base, rg->size);
	for (unsigned t = 0; t < RG_NTABLES; t++)
		seg_free(rg->pool[t]);
	pthread_mutex_destroy(&rg->lock);
	pthread_mutex_destroy(&rg->alloc_lock);
	seg_free(rg);
}

/* Builds the free pools from the high-water marks. */
static int build_pools(struct rg *rg)
{
	for (unsigned t = 0; t < RG_NTABLES; t++) {
		uint64_t hwm = rg->h->hwm[t];

		rg->npool[t] = 0;
		rg->poolcap[t] = hwm > 64 ? hwm : 64;
		rg->pool[t] = seg_calloc(rg->poolcap[t], sizeof(uint64_t));
		if (rg->pool[t] == NULL)
			return -ENOMEM;
		/* Highest first on the stack, so that low records are reused first. */
		for (uint64_t i = hwm; i-- > 0;)
			if (*word_at(rg, t, i, 0) == 0)
				rg->pool[t][rg->npool[t]++] = i;
	}
	return 0;
}

int rg_create(int dirfd, const struct rg_params *p, struct rg **out)
{
	struct header plan_h = { 0 };
	size_t size = plan(&plan_h, p);
	struct rg *rg = rg_alloc_struct();
	int fd = -1, rc;

	if (rg == NULL)
		return -ENOMEM;
	if (dirfd >= 0) {
		fd = openat(dirfd, FILE_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	rc = map(rg, fd, size);
	if (rc < 0)
		goto fail;
	rg->durable = fd >= 0;
	if (fd >= 0)
		close(fd);
	fd = -1;
	*rg->h = plan_h;
	rg->h->size = size;
	rg->h->format = format;
	rg->h->generation = 1;
	rg->area = 0;
	rc = build_pools(rg);
	if (rc < 0)
		goto fail;
	/* Published last: a region without its magic is not one. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(rg->h->magic, MAGIC, sizeof(rg->h->magic));
	*out = rg;
	return 0;
fail:
	if (fd >= 0) {
		close(fd);
		unlinkat(dirfd, FILE_NAME, 0);
	}
	rg_close(rg);
	return rc;
}

/* Whether the header at `h` (of a file of `size` bytes) is one we read. */
static int check_header(const struct header *h, size_t size, char *why, size_t whylen)
{
	if (size < PAGE || memcmp(h->magic, MAGIC, sizeof(h->magic)) != 0) {
		snprintf(why, whylen, "the saved state is not a segfs region");
		return -EPROTO;
	}
	if (h->format != format) {
		snprintf(why, whylen, "the saved state has format %llu, this server reads "
			 "format %llu", (unsigned long long)h->format, (unsigned long long)format);
		return -EPROTO;
	}
	if (h->size != size) {
		snprintf(why, whylen, "the saved state is %zu bytes, its header says %llu",
			 size, (unsigned long long)h->size);
		return -EPROTO;
	}
	return 0;
}

static int open_file(int dirfd, size_t *size)
{
	struct stat st;
	int fd = openat(dirfd, FILE_NAME, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int rg_check(int dirfd, char *why, size_t whylen)
{
	struct header h;
	size_t size;
	int fd = open_file(dirfd, &size), rc;

	if (fd < 0) {
		snprintf(why, whylen, "no saved state: %s", strerror(-fd));
		return fd;
	}
	rc = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) ? 0 : -EPROTO;
	close(fd);
	if (rc < 0) {
		snprintf(why, whylen, "the saved state is too short");
		return rc;
	}
	return check_header(&h, size, why, whylen);
}

/* Rolls back the change a dead server left half done. */
static void undo(struct rg *rg)
{
	struct undo *u = &rg->h->undo;

	if (!u->valid)
		return;
	if (u->table < RG_NTABLES && u->index < rg->h->cap[u->table] &&
	    u->word < table_words[u->table])
		*word_at(rg, (unsigned)u->table, u->index, (unsigned)u->word) = u->old;
	if (u->slot < (uint64_t)RG_AREAS * RG_SLOTS_PER_AREA)
		slot_at(rg, u->slot)->ndeltas = u->ndeltas;
	__atomic_store_n(&u->valid, 0, __ATOMIC_RELEASE);
}

int rg_open(int dirfd, struct rg **out, char *why, size_t whylen)
{
	struct rg *rg;
	size_t size;
	int fd, rc;

	rc = rg_check(dirfd, why, whylen);
	if (rc < 0)
		return rc;
	fd = open_file(dirfd, &size);
	if (fd < 0)
		return fd;
	rg = rg_alloc_struct();
	rc = rg == NULL ? -ENOMEM : map(rg, fd, size);
	close(fd);
	if (rc < 0)
		goto fail;
	rg->durable = true;
	/* Checked again on the mapping: the file is ours from here on. */
	rc = check_header(rg->h, size, why, whylen);
	if (rc < 0)
		goto fail;
	undo(rg);
	rg->h->generation++;
	rg->area = (unsigned)((rg->h->generation - 1) % RG_AREAS);
	/* The area is this server's: what an older one left there is gone. */
	for (unsigned i = 0; i < RG_SLOTS_PER_AREA; i++) {
		struct slot *s = slot_at(rg, (uint64_t)rg->area * RG_SLOTS_PER_AREA + i);

		s->unique = 0;
		s->ndeltas = 0;
		s->nintents = 0;
		s->result_set = 0;
	}
	rc = build_pools(rg);
	if (rc < 0)
		goto fail;
	*out = rg;
	return 0;
fail:
	rg_close(rg);
	return rc;
}

int rg_open_readonly(int dirfd, struct rg **out, char *why, size_t whylen)
{
	struct rg *rg;
	size_t size;
	int fd, rc = rg_check(dirfd, why, whylen);

	if (rc < 0)
		return rc;
	fd = open_file(dirfd, &size);
	if (fd < 0)
		return fd;
	rg = rg_alloc_struct();
	rc = -ENOMEM;
	if (rg != NULL) {
		rg->base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		rc = rg->base == MAP_FAILED ? -errno : 0;
	}
	close(fd);
	if (rc < 0) {
		rg_close(rg);
		return rc;
	}
	rg->size = size;
	rg->h = rg->base;
	rg->durable = true;
	*out = rg;
	return 0;
}

bool rg_durable(const struct rg *rg)
{
	return rg->durable;
}

uint64_t rg_generation(const struct rg *rg)
{
	return rg->h->generation;
}

/* ---- records ---------------------------------------------------------- */

uint64_t *rg_rec(struct rg *rg, enum rg_table t, uint64_t index)
{
	return word_at(rg, t, index, 0);
}

uint64_t rg_capacity(const struct rg *rg, enum rg_table t)
{
	return rg->h->cap[t];
}

uint64_t rg_used(const struct rg *rg, enum rg_table t)
{
	return __atomic_load_n(&rg->h->hwm[t], __ATOMIC_ACQUIRE);
}

int rg_alloc(struct rg *rg, enum rg_table t, uint64_t *index)
{
	int rc = 0;

	pthread_mutex_lock(&rg->alloc_lock);
	if (rg->npool[t] > 0) {
		*index = rg->pool[t][--rg->npool[t]];
	} else if (rg->h->hwm[t] < rg->h->cap[t]) {
		/* The pool must be able to take back every record handed out. */
		if (rg->h->hwm[t] >= rg->poolcap[t]) {
			uint64_t *grown = seg_calloc(rg->poolcap[t] * 2, sizeof(uint64_t));

			if (grown == NULL) {
				pthread_mutex_unlock(&rg->alloc_lock);
				return -ENOMEM;
			}
			if (rg->npool[t] > 0)
				memcpy(grown, rg->pool[t], rg->npool[t] * sizeof(uint64_t));
			seg_free(rg->pool[t]);
			rg->pool[t] = grown;
			rg->poolcap[t] *= 2;
		}
		/*
		 * Raised before the record is used: a dead server's half-made
		 * record is then scanned, and found free.
		 */
		*index = __atomic_fetch_add(&rg->h->hwm[t], 1, __ATOMIC_RELEASE);
	} else {
		rc = -ENOSPC;
	}
	pthread_mutex_unlock(&rg->alloc_lock);
	return rc;
}

void rg_free_index(struct rg *rg, enum rg_table t, uint64_t index)
{
	pthread_mutex_lock(&rg->alloc_lock);
	/* The pool has room for every record below the high-water mark. */
	rg->pool[t][rg->npool[t]++] = index;
	pthread_mutex_unlock(&rg->alloc_lock);
}

void rg_unreserve(struct rg *rg, enum rg_table t, uint64_t index)
{
	rg_free_index(rg, t, index);
}

void rg_init(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, uint64_t value)
{
	*word_at(rg, t, index, word) = value;
}

void rg_init_bytes(struct rg *rg, enum rg_table t, uint64_t index, unsigned word,
		   const void *bytes, size_t len)
{
	memcpy(word_at(rg, t, index, word), bytes, len);
}

uint64_t rg_set(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, uint64_t value)
{
	uint64_t *w = word_at(rg, t, index, word);
	struct undo *u = &rg->h->undo;
	struct slot *s = cur_slot;
	uint64_t old;

	pthread_mutex_lock(&rg->lock);
	old = *w;
	u->table = t;
	u->index = index;
	u->word = word;
	u->old = old;
	u->slot = s != NULL ? cur_slot_no : UINT64_MAX;
	u->ndeltas = s != NULL ? s->ndeltas : 0;
	__atomic_store_n(&u->valid, 1, __ATOMIC_RELEASE);
	/*
	 * A slot full of deltas keeps recording over its last entry: what a
	 * request sent again needs (forget and release the references it
	 * took) is lost for that one only, which can keep an inode alive
	 * until unmount but never frees one too early.
	 */
	if (s != NULL) {
		uint64_t n = s->ndeltas < RG_MAX_DELTAS ? s->ndeltas : RG_MAX_DELTAS - 1;

		s->d[n] = (struct rg_delta){ .table = t, .word = word, .index = index,
					     .old = old, .new = value };
		__atomic_store_n(&s->ndeltas, n + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(w, value, __ATOMIC_RELEASE);
	__atomic_store_n(&u->valid, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&rg->lock);
	return old;
}

uint64_t rg_add(struct rg *rg, enum rg_table t, uint64_t index, unsigned word, int64_t delta)
{
	uint64_t v = *word_at(rg, t, index, word) + (uint64_t)delta;

	/* Counts change under their owner's lock: no one races the read. */
	rg_set(rg, t, index, word, v);
	return v;
}

/* ---- slots ------------------------------------------------------------ */

void rg_bind(struct rg *rg, unsigned slot)
{
	cur_slot_no = (uint64_t)rg->area * RG_SLOTS_PER_AREA + slot % RG_SLOTS_PER_AREA;
	cur_slot = slot_at(rg, cur_slot_no);
}

void rg_unbind(struct rg *rg)
{
	(void)rg;
	cur_slot = NULL;
}

void rg_begin(struct rg *rg, uint64_t unique, uint32_t opcode, uint64_t nodeid,
	      const char *name)
{
	struct slot *s = cur_slot;

	(void)rg;
	if (s == NULL)
		return;
	/* Emptied before it names the new request. */
	__atomic_store_n(&s->unique, 0, __ATOMIC_RELEASE);
	s->ndeltas = 0;
	s->nintents = 0;
	s->result_set = 0;
	s->opcode = opcode;
	s->nodeid = nodeid;
	snprintf(s->name, sizeof(s->name), "%s", name != NULL ? name : "");
	__atomic_store_n(&s->unique, unique, __ATOMIC_RELEASE);
}

void rg_result(struct rg *rg, uint64_t a, uint64_t b)
{
	struct slot *s = cur_slot;

	(void)rg;
	if (s == NULL)
		return;
	s->result_a = a;
	s->result_b = b;
	__atomic_store_n(&s->result_set, 1, __ATOMIC_RELEASE);
}

void rg_intent(struct rg *rg, enum rg_intent_kind kind, uint64_t a, uint64_t b)
{
	struct slot *s = cur_slot;
	uint64_t n;

	(void)rg;
	if (s == NULL)
		return;
	/* Written, then counted: a dead server's half-written one is not seen. */
	n = s->nintents < RG_MAX_INTENTS ? s->nintents : RG_MAX_INTENTS - 1;
	s->intent[n].kind = kind;
	s->intent[n].a = a;
	s->intent[n].b = b;
	__atomic_store_n(&s->nintents, n + 1, __ATOMIC_RELEASE);
}

int rg_find_unique(struct rg *rg, uint64_t unique,
		   void (*each)(void *arg, const struct rg_delta *d),
		   void (*intent)(void *arg, const struct rg_found *f), void *arg)
{
	unsigned first = (rg->area + 1) % RG_AREAS;
	int found = 0;

	if (unique == 0)
		return 0;
	/* Oldest area first: deltas in the order they were made. */
	for (unsigned k = 0; k < RG_AREAS; k++) {
		unsigned area = (first + k) % RG_AREAS;

		for (unsigned i = 0; i < RG_SLOTS_PER_AREA; i++) {
			struct slot *s = slot_at(rg, (uint64_t)area * RG_SLOTS_PER_AREA + i);
			uint64_t n;

			if (__atomic_load_n(&s->unique, __ATOMIC_ACQUIRE) != unique)
				continue;
			found++;
			n = s->ndeltas < RG_MAX_DELTAS ? s->ndeltas : RG_MAX_DELTAS;
			for (uint64_t j = 0; each != NULL && j < n; j++)
				each(arg, &s->d[j]);
			for (uint64_t j = 0; intent != NULL && j < s->nintents &&
					    j < RG_MAX_INTENTS; j++) {
				struct rg_found f = {
					.kind = (enum rg_intent_kind)s->intent[j].kind,
					.a = s->intent[j].a, .b = s->intent[j].b,
				};

				intent(arg, &f);
			}
			if (intent != NULL && s->result_set) {
				struct rg_found f = { .kind = RG_RESULT, .a = s->result_a,
						      .b = s->result_b };

				intent(arg, &f);
			}
		}
	}
	return found;
}

void rg_each_intent(struct rg *rg, void (*fn)(void *arg, const struct rg_found *f), void *arg)
{
	for (uint64_t i = 0; i < (uint64_t)RG_AREAS * RG_SLOTS_PER_AREA; i++) {
		struct slot *s = slot_at(rg, i);

		if (s->unique == 0)
			continue;
		for (uint64_t j = 0; j < s->nintents && j < RG_MAX_INTENTS; j++) {
			struct rg_found f = { .kind = (enum rg_intent_kind)s->intent[j].kind,
					      .a = s->intent[j].a, .b = s->intent[j].b };

			fn(arg, &f);
		}
	}
}

void rg_last_requests(struct rg *rg, void (*each)(void *arg, uint64_t unique,
						  uint32_t opcode, uint64_t nodeid,
						  const char *name), void *arg)
{
	unsigned area = (rg->area + RG_AREAS - 1) % RG_AREAS;

	if (rg->h->generation < 2)
		return;
	for (unsigned i = 0; i < RG_SLOTS_PER_AREA; i++) {
		struct slot *s = slot_at(rg, (uint64_t)area * RG_SLOTS_PER_AREA + i);

		if (s->unique != 0 && !s->result_set) {
			char name[RG_SLOT_NAME];

			snprintf(name, sizeof(name), "%.*s", RG_SLOT_NAME - 1, s->name);
			each(arg, s->unique, (uint32_t)s->opcode, s->nodeid, name);
		}
	}
}

/* ---- the connection and small values ---------------------------------- */

int rg_conn_set(struct rg *rg, const void *init_in, size_t len,
		const uint64_t summary[RG_SUMMARY_WORDS])
{
	if (len == 0 || len > RG_INIT_MAX)
		return -EINVAL;
	memcpy(rg->h->conn_init, init_in, len);
	memcpy(rg->h->conn_summary, summary, sizeof(rg->h->conn_summary));
	__atomic_store_n(&rg->h->conn_len, len, __ATOMIC_RELEASE);
	return 0;
}

int rg_conn_get(struct rg *rg, void *init_in, size_t *len, uint64_t summary[RG_SUMMARY_WORDS])
{
	size_t n = __atomic_load_n(&rg->h->conn_len, __ATOMIC_ACQUIRE);

	if (n == 0)
		return -ENOENT;
	memcpy(init_in, rg->h->conn_init, n);
	*len = n;
	if (summary != NULL)
		memcpy(summary, rg->h->conn_summary, sizeof(rg->h->conn_summary));
	return 0;
}

uint64_t rg_kv_get(struct rg *rg, enum rg_kv key)
{
	return __atomic_load_n(&rg->h->kv[key], __ATOMIC_ACQUIRE);
}

void rg_kv_set(struct rg *rg, enum rg_kv key, uint64_t value)
{
	__atomic_store_n(&rg->h->kv[key], value, __ATOMIC_RELEASE);
}

void rg_kv_max(struct rg *rg, enum rg_kv key, uint64_t value)
{
	uint64_t cur = __atomic_load_n(&rg->h->kv[key], __ATOMIC_ACQUIRE);

	while (value > cur && !__atomic_compare_exchange_n(&rg->h->kv[key], &cur, value, false,
							    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

void rg_pt_reason_set(struct rg *rg, const char *why)
{
	snprintf(rg->h->pt_reason, sizeof(rg->h->pt_reason), "%s", why != NULL ? why : "");
}

void rg_pt_reason_get(struct rg *rg, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int)sizeof(rg->h->pt_reason) - 1, rg->h->pt_reason);
}
