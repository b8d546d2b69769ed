/*
 * The text form of a ShareableList: one item per line, each exactly
 * Python's repr() of the value CPython reads back, and a parser for that
 * text plus the usual Python literal spellings of the same types.
 */
#ifndef SEGFS_CORE_SLTEXT_H
#define SEGFS_CORE_SLTEXT_H

#include <stddef.h>

#include "core/sl.h"

/* A growable byte buffer; start zeroed, free p with free(3)-compatible seg_free. */
struct sl_buf {
	char *p;
	size_t len, cap;
};

/*
 * Appends repr(v) to out, with no newline: 42, -0.0, 1e-05, 1e+16, inf,
 * nan, 'it\'s' or "it's" (Python's quote choice), '\x00', '\n', 'é',
 * b'\x00ab', None, True.  Returns 0 or -ENOMEM (out keeps what it had).
 */
int sl_repr(const struct sl_value *v, struct sl_buf *out);

/* The whole list: repr of each item followed by '\n'.  *text is owned. */
int sl_render(const struct sl_list *l, char **text, size_t *len);

/*
 * Parses one literal (surrounding blanks allowed): None, True, False; ints
 * in decimal, 0x, 0o, 0b, with underscores, optional sign, within int64;
 * floats in any Python literal form, inf, nan, with optional sign; str and
 * bytes with either quote, optional r/b/u prefixes, every escape except
 * \N{...}.  Nothing else: no expressions, no concatenation, no names.
 * Returns 0 and fills *v (which then owns its string), or -EINVAL (*v
 * untouched), or -ENOMEM.
 */
int sl_parse_value(const char *s, size_t len, struct sl_value *v);

/*
 * Parses text of one literal per line ('\n'-separated, the last newline
 * optional, lines of blanks skipped).  Returns 0 and a new list, or
 * -EINVAL with the 1-based number of the first bad line in *bad_line.
 */
int sl_parse(const char *text, size_t len, struct sl_list **out, size_t *bad_line);

#endif
