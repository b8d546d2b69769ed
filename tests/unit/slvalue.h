/* What the codec tests share: equality of ShareableList values. */
#ifndef SEGFS_TESTS_SLVALUE_H
#define SEGFS_TESTS_SLVALUE_H

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/sl.h"

/*
 * Floats bit for bit (-0.0 is not 0.0), any NaN matching any NaN; strings
 * by length and bytes, each NUL-terminated as sl.h promises.
 */
static inline bool slv_equal(const struct sl_value *a, const struct sl_value *b)
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
		return a->u.s.len == b->u.s.len &&
		       memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0 &&
		       a->u.s.p[a->u.s.len] == '\0' && b->u.s.p[b->u.s.len] == '\0';
	}
	return false;
}

/* A str/bytes value's length without its trailing NULs, which CPython drops. */
static inline size_t slv_stripped_len(const struct sl_value *v)
{
	size_t n = v->u.s.len;

	while (n > 0 && v->u.s.p[n - 1] == '\0')
		n--;
	return n;
}

/*
 * Equal as CPython reads them back from a segment: like slv_equal, but
 * str and bytes compared without their trailing NULs.
 */
static inline bool slv_equal_read(const struct sl_value *a, const struct sl_value *b)
{
	if (a->type != b->type)
		return false;
	if (a->type != SL_STR && a->type != SL_BYTES)
		return slv_equal(a, b);
	return slv_stripped_len(a) == slv_stripped_len(b) &&
	       memcmp(a->u.s.p, b->u.s.p, slv_stripped_len(a)) == 0;
}

#endif
