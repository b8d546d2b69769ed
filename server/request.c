/*
 * The request a serving thread is on, and the undoing of what a dead
 * server did for one it never answered.  See request.h.
 */
#include "server/request.h"

#include "server/node.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local struct request cur;

struct request *req_current(void)
{
	return &cur;
}

/* FUSE_UNIQUE_RESEND (<linux/fuse.h>, 7.40): the mark of a request sent again. */
#define UNIQUE_RESEND (1ULL << 63)

/* The net change an earlier attempt made to one counting word. */
struct net {
	uint32_t table, word;
	uint64_t index;
	int64_t sum;
};

struct gather {
	struct request *r;
	struct net *net;
	size_t n, cap;
};

/* Only counts are undone: the rest a second attempt sets again. */
static bool counting(uint32_t table, uint32_t word)
{
	return (table == RG_INODES && (word == RI_NLOOKUP || word == RI_NOPEN)) ||
	       (table == RG_VIEWS && word == RV_NLOOKUP) ||
	       (table == RG_HANDLES && word == RH_KIND);
}

static void gather_delta(void *arg, const struct rg_delta *d)
{
	struct gather *g = arg;
	int64_t change = (int64_t)(d->new - d->old);

	if (!counting(d->table, d->word))
		return;
	/* A handle's kind goes from 0 to its kind when made, back when freed. */
	if (d->table == RG_HANDLES)
		change = d->old == 0 ? 1 : d->new == 0 ? -1 : 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->net[i].table == d->table && g->net[i].word == d->word &&
		    g->net[i].index == d->index) {
			g->net[i].sum += change;
			return;
		}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct net *p = realloc(g->net, cap * sizeof(*p));

		if (p == NULL)
			return;   /* kept too many: an inode may live on, never die early */
		g->net = p;
		g->cap = cap;
	}
	g->net[g->n++] = (struct net){ .table = d->table, .word = d->word, .index = d->index,
				       .sum = change };
}

static void gather_intent(void *arg, const struct rg_found *f)
{
	struct gather *g = arg;
	struct request *r = g->r;

	if (f->kind == RG_RESULT) {
		/* The newest server's answer stands. */
		r->has_result = true;
		r->result_a = f->a;
		r->result_b = f->b;
		return;
	}
	if (r->nintents < REQ_MAX_INTENTS)
		r->intents[r->nintents++] = *f;
}

/* A resent request's nets, from req_begin to the next request. */
static _Thread_local struct gather *mine;

void req_begin(struct segfs *fs, uint64_t unique, uint32_t opcode, uint64_t nodeid,
	       const char *name)
{
	struct gather *g;

	if (mine != NULL) {
		free(mine->net);
		free(mine);
		mine = NULL;
	}
	memset(&cur, 0, sizeof(cur));
	cur.unique = unique & ~UNIQUE_RESEND;
	cur.opcode = opcode;
	cur.resent = (unique & UNIQUE_RESEND) != 0;
	if (cur.resent) {
		g = calloc(1, sizeof(*g));
		if (g != NULL) {
			g->r = &cur;
			/* Before this server's slot names it: the earlier ones only. */
			rg_find_unique(fs->rg, cur.unique, gather_delta, gather_intent, g);
		}
		mine = g;
	}
	rg_begin(fs->rg, cur.unique, opcode, nodeid, name);
}

/* The inode an inode record is of, if it still lives. */
static struct seg_inode *inode_of_record(struct segfs *fs, uint64_t index)
{
	uint64_t number = rg_rec(fs->rg, RG_INODES, index)[RI_INO];

	return number != 0 ? seg_ns_find(fs->ns, number) : NULL;
}

void req_undo(struct segfs *fs)
{
	struct gather *g = mine;

	if (g == NULL)
		return;
	if (!cur.has_result) {
		/* Handles first: giving one back gives back what it holds. */
		for (size_t i = 0; i < g->n; i++)
			if (g->net[i].table == RG_HANDLES && g->net[i].sum > 0)
				handle_drop_index(fs, g->net[i].index);
		for (size_t i = 0; i < g->n; i++) {
			struct net *n = &g->net[i];
			struct seg_inode *ino;
			struct lv_node *v;

			if (n->sum <= 0)
				continue;
			if (n->table == RG_VIEWS) {
				v = lv_node_at(fs->lists, n->index);
				if (v != NULL)
					lv_forget(fs->lists, v, (uint64_t)n->sum);
				continue;
			}
			if (n->table != RG_INODES)
				continue;
			ino = inode_of_record(fs, n->index);
			if (ino == NULL)
				continue;
			if (n->word == RI_NLOOKUP) {
				seg_forget(fs->ns, ino, (uint64_t)n->sum);
			} else if (seg_inode_is_segment(ino)) {
				/* A directory's streams were handles, dropped above. */
				for (int64_t k = 0; k < n->sum; k++)
					seg_release(fs->ns, ino);
			}
		}
	}
}

int64_t req_net(uint32_t table, uint64_t index, uint32_t word)
{
	const struct gather *g = mine;

	for (size_t i = 0; g != NULL && i < g->n; i++)
		if (g->net[i].table == table && g->net[i].index == index &&
		    g->net[i].word == word)
			return g->net[i].sum;
	return 0;
}

void req_result(struct segfs *fs, uint64_t a, uint64_t b)
{
	rg_result(fs->rg, a, b);
}

bool req_replayed(uint64_t *a, uint64_t *b)
{
	if (!cur.resent || !cur.has_result)
		return false;
	*a = cur.result_a;
	*b = cur.result_b;
	return true;
}

bool req_intent(enum rg_intent_kind kind, uint64_t *a, uint64_t *b)
{
	bool found = false;

	if (!cur.resent || cur.has_result)
		return false;
	for (size_t i = 0; i < cur.nintents; i++)
		if (cur.intents[i].kind == kind) {
			*a = cur.intents[i].a;
			*b = cur.intents[i].b;
			found = true;
		}
	return found;
}

struct seg_inode *req_made(struct segfs *fs, struct seg_inode *dir, const char *name,
			   enum rg_intent_kind kind, struct stat *st)
{
	struct seg_inode *ino;
	uint64_t a, b;

	if (!req_intent(kind, &a, &b) || seg_lookup(fs->ns, dir, name, &ino, st) < 0)
		return NULL;
	if (seg_inode_number(ino) != a) {
		seg_forget(fs->ns, ino, 1);
		return NULL;
	}
	return ino;
}

bool req_leads_to(struct segfs *fs, struct seg_inode *dir, const char *name, uint64_t number)
{
	struct seg_inode *ino;
	struct stat st;
	bool yes;

	if (seg_lookup(fs->ns, dir, name, &ino, &st) < 0)
		return false;
	yes = seg_inode_number(ino) == number;
	seg_forget(fs->ns, ino, 1);
	return yes;
}
