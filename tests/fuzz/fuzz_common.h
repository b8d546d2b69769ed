/*
 * What the fuzz targets share: comparing lists the way CPython reads them.
 */
#ifndef SEGFS_FUZZ_COMMON_H
#define SEGFS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sl.h"
#include "core/sltext.h"
#include "tests/unit/slvalue.h"

/* A broken invariant: libFuzzer records the input that made it. */
#define REQUIRE(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
		abort(); \
	} \
} while (0)

static inline bool same_list(const struct sl_list *a, const struct sl_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!slv_equal_read(&a->v[i], &b->v[i]))
			return false;
	return true;
}

/* render -> parse gives the same values; encode -> decode too. */
static inline void check_round_trips(const struct sl_list *l)
{
	struct sl_list *back;
	uint8_t *seg;
	size_t len, size, bad;
	char *text;

	if (sl_render(l, &text, &len) == 0) {
		REQUIRE(sl_parse(text, len, &back, &bad) == 0);
		REQUIRE(same_list(l, back));
		sl_list_free(back);
		free(text);
	}
	if (sl_encoded_size(l, &size) != 0)
		return;   /* a str too long for any CPython slot: refused, fine */
	seg = malloc(size);
	REQUIRE(seg != NULL);
	REQUIRE(sl_encode(l, seg, size) == 0);
	REQUIRE(sl_decode(seg, size, &back) == 0);
	REQUIRE(same_list(l, back));
	sl_list_free(back);
	free(seg);
}

#endif
