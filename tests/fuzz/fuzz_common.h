/*
 * What the fuzz targets share: comparing lists the way CPython reads them.
 */
#ifndef SEGFS_FUZZ_COMMON_H
#define SEGFS_FUZZ_COMMON_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sl.h"
#include "core/sltext.h"

/* A broken invariant: libFuzzer records the input that made it. */
#define REQUIRE(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
		abort(); \
	} \
} while (0)

/* Length of a str/bytes value without its trailing NULs, which CPython drops. */
static inline size_t stripped_len(const struct sl_value *v)
{
	size_t n = v->u.s.len;

	while (n > 0 && v->u.s.p[n - 1] == '\0')
		n--;
	return n;
}

/* Values equal as CPython reads them back: floats bitwise, NaNs alike. */
static inline bool same_value(const struct sl_value *a, const struct sl_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case SL_NONE:
		return true;
	case SL_BOOL:
		return a->u.b == b->u.b;
	case SL_INT:
		return a->u.i == b->u.i;
	case SL_FLOAT:
		return (isnan(a->u.d) && isnan(b->u.d)) ||
		       memcmp(&a->u.d, &b->u.d, sizeof(a->u.d)) == 0;
	case SL_STR:
	case SL_BYTES:
		return stripped_len(a) == stripped_len(b) &&
		       memcmp(a->u.s.p, b->u.s.p, stripped_len(a)) == 0;
	}
	return false;
}

static inline bool same_list(const struct sl_list *a, const struct sl_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!same_value(&a->v[i], &b->v[i]))
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
