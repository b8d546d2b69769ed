/*
 * CPython's multiprocessing.shared_memory.ShareableList, byte for byte
 * (the layout of CPython 3.9 to 3.14; sl.c opens with its byte-level spec
 * and a worked example).
 *
 * Segment bytes are untrusted: any process may have written anything and
 * may be writing while we read.  Decoding reads every shared field once
 * into a local, bounds-checks it with overflow-safe arithmetic, and copies
 * every string out, so the result never points into the segment.
 */
#ifndef SEGFS_CORE_SL_H
#define SEGFS_CORE_SL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_type {
	SL_NONE,
	SL_BOOL,
	SL_INT,
	SL_FLOAT,
	SL_STR,      /* UTF-8, valid */
	SL_BYTES,
};

struct sl_value {
	enum sl_type type;
	union {
		bool b;
		int64_t i;
		double d;
		struct {
			char *p;     /* owned: by the sl_list, or see sl_value_clear */
			size_t len;  /* bytes; p[len] is a NUL for convenience */
		} s;
	} u;
};

struct sl_list {
	size_t n;
	struct sl_value *v;     /* n values */
	/*
	 * Decoded lists only (else NULL): each item's slot, the bytes between
	 * its offset and the next, which an in-place assignment may not exceed.
	 */
	uint64_t *slot;
};

/* Frees a list made by sl_decode or sl_parse; NULL is a no-op. */
void sl_list_free(struct sl_list *l);

/* Frees what a value owns (the string of SL_STR/SL_BYTES) and zeroes it. */
void sl_value_clear(struct sl_value *v);

/*
 * Decodes `size` bytes of a segment.  Returns 0 and a new list in *out, or
 * -EBADMSG when the bytes are not a ShareableList CPython could read (bad
 * count, offsets, formats or codes; a str that is not UTF-8; too short),
 * or -ENOMEM.  Bytes past the end of the layout are ignored, as CPython
 * does.  Never reads outside [seg, seg + size).
 */
int sl_decode(const uint8_t *seg, size_t size, struct sl_list **out);

/*
 * The exact size CPython gives the segment of these values (16 + 17n + D),
 * with one difference: a str whose UTF-8 is longer than CPython's slot
 * (sized by character count, which CPython then silently truncates) gets
 * a slot that holds all of it.  -EINVAL if a value cannot be stored (a
 * str/bytes needing a format longer than 8 characters).
 */
int sl_encoded_size(const struct sl_list *l, size_t *size);

/*
 * Writes the segment of these values into buf, which must be exactly
 * sl_encoded_size() bytes: the bytes CPython's ShareableList(values)
 * writes, except for the str slot sizing above.
 */
int sl_encode(const struct sl_list *l, uint8_t *buf, size_t size);

/* True if `v` can be assigned in place to an item whose slot is `slot`. */
bool sl_fits(const struct sl_value *v, uint64_t slot);

/*
 * sl[index] = v, in place, with CPython's rules and bytes: the slot never
 * grows, a str/bytes longer than it gives -ENOSPC (nothing written), a
 * scalar written into a larger slot leaves the same stale tail bytes
 * CPython leaves; format, then code, then data are written.  The header is
 * re-read and checked (-EBADMSG), index >= n gives -ERANGE.
 */
int sl_assign(uint8_t *seg, size_t size, size_t index, const struct sl_value *v);

/*
 * sl[i] = l->v[i] for every item: the bytes of l->n successive sl_assign
 * calls, but the header is read and checked once, so it costs O(size)
 * rather than O(n * size).  -ERANGE if the segment's count is not l->n,
 * -ENOSPC (nothing written) if any value does not fit its slot.
 */
int sl_assign_all(uint8_t *seg, size_t size, const struct sl_list *l);

#endif
