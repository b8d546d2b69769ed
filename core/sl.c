/*
 * The byte codec of CPython's multiprocessing.shared_memory.ShareableList.
 *
 * Which CPython: the layout below is the one of CPython 3.9 to 3.14
 * (bpo-38891 introduced it in 3.9; Lib/multiprocessing/shared_memory.py has
 * not changed it since).  CPython 3.8 wrote a different header, N and then
 * N slot *sizes* with no leading 0, and the two cannot read each other.
 * This codec refuses 3.8 segments with -EBADMSG: the word where we expect
 * off[0] = 0 holds 3.8's first slot size, which is at least 8, and an empty
 * 3.8 list is 8 bytes, shorter than the 16-byte minimum below.
 *
 * SHAREABLELIST OVERALL LAYOUT
 * ============================
 *
 * Every integer is a struct "q": a signed 64-bit integer in NATIVE byte
 * order (CPython's formats carry no "<" or "=" prefix), so a segment made on
 * a little-endian host reads as garbage on a big-endian one.  Everything up
 * to the codes is a multiple of 8 bytes, so native alignment adds no
 * padding.  Offsets count from the start of the data area.
 *
 *   <N> <off[0]=0> <off[1]> ... <off[N]> <data> <fmt[0]> ... <fmt[N-1]> <codes>
 *
 *   at 0                 N           int64, >= 0
 *   at 8                 off[0..N]   int64, off[0] = 0, non-decreasing;
 *                                    item i's slot is off[i+1] - off[i]
 *   at DS = 8(N+2)       data        D = off[N] bytes; item i occupies
 *                                    [DS + off[i], DS + off[i+1])
 *   at FS = DS + D       formats     8 bytes per item: an ASCII struct
 *                                    format, NUL-padded
 *   at CS = FS + 8N      codes       1 byte per item (signed char)
 *
 * Size: 16 + 17N + D, exactly what CPython passes to SharedMemory (not
 * rounded to 8 or to a page).  Bytes after that are ignored when reading,
 * as CPython does.
 *
 * PER TYPE
 * ========
 *
 *   type   format       code  slot             data at the slot start
 *   int    "q"          0     8                int64
 *   float  "d"          0     8                IEEE-754 binary64
 *   bool   "xxxxxxx?"   0     8                7 zero bytes, then 00 or 01
 *   None   "xxxxxx?x"   3     8                8 zero bytes (the "?" is byte 6)
 *   str    "%ds" % slot 1     8*(chars//8+1)   UTF-8, NUL-padded to the slot
 *   bytes  "%ds" % slot 2     8*(len//8+1)     raw, NUL-padded to the slot
 *
 * CPython reads an item by unpacking its format at the slot start, then
 * applying its code: 0 keeps the value (so it is the format, not the code,
 * that says int, float or bool), 1 strips ALL trailing NULs and decodes
 * UTF-8 strictly, 2 strips all trailing NULs, 3 gives None whatever the
 * data.  Any other code raises KeyError.  So b'ab\0' reads back as b'ab'.
 *
 * A str slot is sized from the character count, and CPython's struct "s"
 * silently truncates a longer UTF-8 encoding at creation ('ééééé', 10
 * bytes, gets slot 8 and reads back as 'éééé'; a cut inside a character
 * makes the item unreadable, gh-145261).  sl_encode does not truncate: such
 * a str gets 8*(utf8len//8+1) instead, which CPython reads back whole.
 * The format must fit its 8 bytes, so the largest slot CPython makes is
 * "9999992s", for up to 9,999,991 characters (str) or bytes.  Ours is the
 * same slot, so the limit is 9,999,991 bytes of UTF-8 for a str: a longer
 * one that CPython would store truncated is refused (-EINVAL).
 *
 * EXAMPLE
 * =======
 *
 * ShareableList([7, 'ab', b'cd', None]) on x86_64, 116 bytes:
 *
 *   [0x00] 04 00 00 00 00 00 00 00   N = 4
 *   [0x08] 00 00 00 00 00 00 00 00   off[0] = 0
 *   [0x10] 08 00 00 00 00 00 00 00   off[1] = 8
 *   [0x18] 10 00 00 00 00 00 00 00   off[2] = 16
 *   [0x20] 18 00 00 00 00 00 00 00   off[3] = 24
 *   [0x28] 20 00 00 00 00 00 00 00   off[4] = 32 = D
 *   [0x30] 07 00 00 00 00 00 00 00   item 0: 7          (DS = 0x30)
 *   [0x38] 61 62 00 00 00 00 00 00   item 1: "ab"
 *   [0x40] 63 64 00 00 00 00 00 00   item 2: "cd"
 *   [0x48] 00 00 00 00 00 00 00 00   item 3: None
 *   [0x50] 71 00 00 00 00 00 00 00   fmt 0: "q"         (FS = 0x50)
 *   [0x58] 38 73 00 00 00 00 00 00   fmt 1: "8s"
 *   [0x60] 38 73 00 00 00 00 00 00   fmt 2: "8s"
 *   [0x68] 78 78 78 78 78 78 3f 78   fmt 3: "xxxxxx?x"
 *   [0x70] 00 01 02 03               codes: int, str, bytes, None (CS = 0x70)
 *
 * VALIDATION
 * ==========
 *
 * The segment is untrusted and may be rewritten by another process while we
 * read it (CPython takes no lock).  So, in the manner of Redis's listpack
 * validation: every field is read once, through memcpy (never through a
 * cast pointer, which could be misaligned), into a local that is checked
 * and then used; all arithmetic is bounded before it is done; strings are
 * copied out before they are stripped and checked.  We accept what CPython
 * would read back as a value, with the formats CPython writes: "q", "d",
 * "xxxxxxx?", "xxxxxx?x" and "<decimal>s" whose number is at most the slot
 * (the true-length formats proposed in PR gh-145266 stay readable).  struct
 * would also unpack spellings CPython never writes ("<q", "7x?", "08s");
 * they are refused, as are items that do not fit their own slot, which
 * CPython would read out of the next item.
 */
#include "core/sl.h"

#include "core/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* "q" and "d" are host int64 and binary64, as native struct has them. */
_Static_assert(sizeof(double) == 8, "struct 'd' is 8 bytes");

/* CPython's _alignment: a scalar's slot, and the granule of str slots. */
#define SL_ALIGN 8

/* Each format field; "%ds" must fit in it, so a slot has at most 7 digits. */
#define SL_FMT_LEN 8
#define SL_SLOT_MAX UINT64_C(9999999)

/* N and off[0]: the smallest segment, the empty list. */
#define SL_MIN_SIZE 16

/* Per item outside the data area: one offset, one format, one code. */
#define SL_ITEM_META (8 + SL_FMT_LEN + 1)

/* The back-transform codes (CPython's _back_transforms_mapping). */
enum {
	CODE_VALUE = 0,
	CODE_STR = 1,
	CODE_BYTES = 2,
	CODE_NONE = 3,
};

enum fmt_kind {
	FMT_INT,        /* "q" */
	FMT_FLOAT,      /* "d" */
	FMT_BOOL,       /* "xxxxxxx?": the bool is byte 7 */
	FMT_NONE,       /* "xxxxxx?x": a bool in byte 6, which code 3 ignores */
	FMT_BYTES,      /* "<count>s" */
};

struct fmt {
	enum fmt_kind kind;
	uint64_t count;         /* FMT_BYTES: bytes unpacked from the slot */
};

/* Where the areas start, from a checked header; all within the segment. */
struct layout {
	size_t data;            /* DS */
	size_t formats;         /* FS */
	size_t codes;           /* CS */
};

/* One item's place in the data area, asked of read_header(). */
struct span {
	size_t index;
	uint64_t off, slot;
};

static int64_t get_i64(const uint8_t *p)
{
	int64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static void put_i64(uint8_t *p, int64_t v)
{
	memcpy(p, &v, sizeof v);
}

/*
 * Strict UTF-8, as CPython's decoder: no overlong forms, no surrogates
 * (ED A0..BF), nothing above U+10FFFF, no truncated sequence.
 */
static bool utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t more, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (len - i - 1 < more)
			return false;
		/* Only the second byte has a narrowed range. */
		for (k = 1; k <= more; k++) {
			uint8_t b = s[i + k];

			if (b < lo || b > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
		i += more + 1;
	}
	return true;
}

/* Python's len() of valid UTF-8: the bytes that start a character. */
static size_t utf8_chars(const uint8_t *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += (s[i] & 0xc0) != 0x80;
	return n;
}

/*
 * Reads N once and checks that the fixed part of the layout, 16 + 17N
 * bytes, fits in the segment.  Written as a division so that no N, however
 * absurd, can overflow.
 */
static int read_count(const uint8_t *seg, size_t size, size_t *n)
{
	int64_t count;

	if (size < SL_MIN_SIZE)
		return -EBADMSG;
	count = get_i64(seg);
	if (count < 0 || (uint64_t)count > (size - SL_MIN_SIZE) / SL_ITEM_META)
		return -EBADMSG;
	*n = (size_t)count;
	return 0;
}

/*
 * Reads off[0..n] once each and checks them: off[0] = 0, non-decreasing,
 * and off[n] = D no bigger than the room the fixed part leaves, so the
 * formats and codes fit too.  Every offset is compared against that bound
 * before it is used, so the sums below cannot overflow.  Fills slot[0..n-1]
 * if slot is not NULL, and want->off/slot if want->index < n.
 */
static int read_header(const uint8_t *seg, size_t size, size_t n, uint64_t *slot,
		       struct span *want, struct layout *lay)
{
	size_t room = size - SL_MIN_SIZE - n * SL_ITEM_META;
	int64_t prev, cur;
	size_t i;

	prev = get_i64(seg + 8);
	if (prev != 0)
		return -EBADMSG;
	for (i = 0; i < n; i++) {
		cur = get_i64(seg + 16 + 8 * i);
		if (cur < prev || (uint64_t)cur > room)
			return -EBADMSG;
		if (slot)
			slot[i] = (uint64_t)(cur - prev);
		if (want && want->index == i) {
			want->off = (uint64_t)prev;
			want->slot = (uint64_t)(cur - prev);
		}
		prev = cur;
	}
	lay->data = 8 * (n + 2);
	lay->formats = lay->data + (size_t)prev;
	lay->codes = lay->formats + SL_FMT_LEN * n;
	return 0;
}

/*
 * Parses a format field as CPython does (strip the trailing NULs, what is
 * left is the format), accepting only the spellings CPython writes, and
 * checks that the item it describes lies within its slot.
 */
static int parse_format(const uint8_t raw[SL_FMT_LEN], uint64_t slot, struct fmt *f)
{
	size_t len = SL_FMT_LEN, i;
	uint64_t count = 0;

	while (len > 0 && raw[len - 1] == '\0')
		len--;
	if (len == 1 && raw[0] == 'q') {
		f->kind = FMT_INT;
	} else if (len == 1 && raw[0] == 'd') {
		f->kind = FMT_FLOAT;
	} else if (len == 8 && memcmp(raw, "xxxxxxx?", 8) == 0) {
		f->kind = FMT_BOOL;
	} else if (len == 8 && memcmp(raw, "xxxxxx?x", 8) == 0) {
		f->kind = FMT_NONE;
	} else if (len >= 2 && raw[len - 1] == 's') {
		/* "%d" output only: no sign, no leading zero (but "0s" is fine). */
		if (raw[0] == '0' && len > 2)
			return -EBADMSG;
		/* At most 7 digits: no overflow. */
		for (i = 0; i < len - 1; i++) {
			if (raw[i] < '0' || raw[i] > '9')
				return -EBADMSG;
			count = count * 10 + (uint64_t)(raw[i] - '0');
		}
		if (count > slot)
			return -EBADMSG;
		f->kind = FMT_BYTES;
		f->count = count;
		return 0;
	} else {
		return -EBADMSG;
	}
	/* Every scalar format unpacks 8 bytes; CPython would read past a smaller slot. */
	if (slot < SL_ALIGN)
		return -EBADMSG;
	return 0;
}

/*
 * Copies `count` bytes of the slot into a new NUL-terminated buffer,
 * stripping all trailing NULs if asked, and checking the UTF-8 of a str on
 * the private copy, where nobody can change it after the check.
 */
static int copy_out(const uint8_t *p, uint64_t count, bool strip, bool utf8,
		    struct sl_value *v)
{
	size_t len = (size_t)count;
	char *s;

	s = seg_malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, len);
	if (strip)
		while (len > 0 && s[len - 1] == '\0')
			len--;
	if (utf8 && !utf8_valid((const uint8_t *)s, len)) {
		seg_free(s);
		return -EBADMSG;
	}
	s[len] = '\0';
	v->type = utf8 ? SL_STR : SL_BYTES;
	v->u.s.p = s;
	v->u.s.len = len;
	return 0;
}

/*
 * Item i, the way CPython's __getitem__ reads it: unpack the format at the
 * slot start, then apply the code.  The value is that of the type CPython
 * would return, e.g. bytes (untouched, trailing NULs and all) for code 0
 * with an "s" format, and a bool for code 0 with None's format.  Formats
 * code 3 ignores must still be valid, because CPython unpacks them first.
 */
static int decode_item(const uint8_t *seg, const struct layout *lay, size_t i,
		       uint64_t off, uint64_t slot, struct sl_value *v)
{
	const uint8_t *p = seg + lay->data + off;
	uint8_t raw[SL_FMT_LEN];
	uint8_t code;
	struct fmt f;
	int64_t iv;
	double dv;
	int rc;

	memcpy(raw, seg + lay->formats + SL_FMT_LEN * i, SL_FMT_LEN);
	code = seg[lay->codes + i];
	rc = parse_format(raw, slot, &f);
	if (rc < 0)
		return rc;

	switch (code) {
	case CODE_NONE:
		v->type = SL_NONE;
		return 0;
	case CODE_STR:
	case CODE_BYTES:
		/* Anything but bytes has no rstrip(): AttributeError. */
		if (f.kind != FMT_BYTES)
			return -EBADMSG;
		return copy_out(p, f.count, true, code == CODE_STR, v);
	case CODE_VALUE:
		break;
	default:
		/* KeyError: any other signed char, -128..-1 and 4..127. */
		return -EBADMSG;
	}

	switch (f.kind) {
	case FMT_INT:
		iv = get_i64(p);
		v->type = SL_INT;
		v->u.i = iv;
		return 0;
	case FMT_FLOAT:
		memcpy(&dv, p, sizeof dv);
		v->type = SL_FLOAT;
		v->u.d = dv;
		return 0;
	case FMT_BOOL:
	case FMT_NONE:
		v->type = SL_BOOL;
		v->u.b = p[f.kind == FMT_BOOL ? 7 : 6] != 0;
		return 0;
	case FMT_BYTES:
		return copy_out(p, f.count, false, false, v);
	}
	return -EBADMSG;
}

int sl_decode(const uint8_t *seg, size_t size, struct sl_list **out)
{
	struct layout lay;
	struct sl_list *l;
	uint64_t off = 0;
	size_t n, i;
	int rc;

	rc = read_count(seg, size, &n);
	if (rc < 0)
		return rc;

	/*
	 * n <= size / 17, so these allocations are bounded by the segment.
	 * Zeroed values are SL_NONE and own nothing, so sl_list_free can
	 * release a list that is decoded only in part.
	 */
	l = seg_calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	if (n > 0) {
		l->v = seg_calloc(n, sizeof *l->v);
		if (!l->v) {
			rc = -ENOMEM;
			goto fail;
		}
		l->n = n;
		l->slot = seg_calloc(n, sizeof *l->slot);
		if (!l->slot) {
			rc = -ENOMEM;
			goto fail;
		}
	}

	rc = read_header(seg, size, n, l->slot, NULL, &lay);
	if (rc < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		rc = decode_item(seg, &lay, i, off, l->slot[i], &l->v[i]);
		if (rc < 0)
			goto fail;
		off += l->slot[i];
	}
	*out = l;
	return 0;

fail:
	sl_list_free(l);
	return rc;
}

void sl_value_clear(struct sl_value *v)
{
	if (v->type == SL_STR || v->type == SL_BYTES)
		seg_free(v->u.s.p);
	memset(v, 0, sizeof *v);
}

void sl_list_free(struct sl_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		sl_value_clear(&l->v[i]);
	seg_free(l->v);
	seg_free(l->slot);
	seg_free(l);
}

/* CPython's slot for a length: 8*(len//8+1), always one spare unit. */
static uint64_t granule(uint64_t len)
{
	return SL_ALIGN * (len / SL_ALIGN + 1);
}

/*
 * The slot sl_encode gives a value: CPython's, except that a str whose
 * UTF-8 outgrows its character-count slot is sized from its bytes.
 */
static int value_slot(const struct sl_value *v, uint64_t *slot)
{
	const uint8_t *s;
	uint64_t len;

	switch (v->type) {
	case SL_NONE:
	case SL_BOOL:
	case SL_INT:
	case SL_FLOAT:
		*slot = SL_ALIGN;
		return 0;
	case SL_STR:
	case SL_BYTES:
		break;
	default:
		return -EINVAL;
	}
	s = (const uint8_t *)v->u.s.p;
	len = v->u.s.len;
	/* Checked first so that granule() cannot overflow. */
	if (len >= SL_SLOT_MAX)
		return -EINVAL;
	if (v->type == SL_STR) {
		/* CPython cannot encode lone surrogates or other non-UTF-8. */
		if (!utf8_valid(s, len))
			return -EINVAL;
		*slot = granule(utf8_chars(s, len));
		if (len > *slot)
			*slot = granule(len);
	} else {
		*slot = granule(len);
	}
	/* CPython's assert len(fmt) <= 8: "9999992s" is the largest. */
	if (*slot > SL_SLOT_MAX)
		return -EINVAL;
	return 0;
}

static uint8_t code_of(enum sl_type t)
{
	switch (t) {
	case SL_STR:
		return CODE_STR;
	case SL_BYTES:
		return CODE_BYTES;
	case SL_NONE:
		return CODE_NONE;
	default:
		return CODE_VALUE;
	}
}

/* The format field of a value in a slot, NUL-padded as struct "8s" packs it. */
static void format_of(const struct sl_value *v, uint64_t slot, uint8_t fmt[SL_FMT_LEN])
{
	char tmp[24];
	const char *s;
	int len;

	switch (v->type) {
	case SL_INT:
		s = "q";
		break;
	case SL_FLOAT:
		s = "d";
		break;
	case SL_BOOL:
		s = "xxxxxxx?";
		break;
	case SL_NONE:
		s = "xxxxxx?x";
		break;
	default:
		/* slot <= SL_SLOT_MAX was checked: at most 7 digits and the "s". */
		snprintf(tmp, sizeof tmp, "%" PRIu64 "s", slot);
		s = tmp;
		break;
	}
	len = (int)strlen(s);
	memset(fmt, 0, SL_FMT_LEN);
	memcpy(fmt, s, (size_t)len);
}

/*
 * The data of a value, as struct packs it at the slot start.  A scalar is
 * 8 bytes, zero-filled first (bool's and None's pad bytes, None's "?" being
 * False), and the rest of a bigger slot is left alone, as CPython leaves
 * it.  A str or bytes is NUL-padded over the whole slot.  Built privately
 * and copied once, so a concurrent reader sees old or new bytes, not a
 * half-cleared word.
 */
static void pack_value(uint8_t *p, uint64_t slot, const struct sl_value *v)
{
	uint8_t w[8] = { 0 };

	switch (v->type) {
	case SL_INT:
		put_i64(w, v->u.i);
		break;
	case SL_FLOAT:
		memcpy(w, &v->u.d, sizeof w);
		break;
	case SL_BOOL:
		w[7] = v->u.b ? 1 : 0;
		break;
	case SL_NONE:
		break;
	case SL_STR:
	case SL_BYTES:
		memcpy(p, v->u.s.p, v->u.s.len);
		memset(p + v->u.s.len, 0, (size_t)slot - v->u.s.len);
		return;
	}
	memcpy(p, w, sizeof w);
}

int sl_encoded_size(const struct sl_list *l, size_t *size)
{
	uint64_t total = SL_MIN_SIZE, slot;
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++) {
		rc = value_slot(&l->v[i], &slot);
		if (rc < 0)
			return rc;
		if (__builtin_add_overflow(total, slot + SL_ITEM_META, &total))
			return -EINVAL;
	}
	/* N and every offset are int64 in the segment. */
	if (total > INT64_MAX || total > SIZE_MAX)
		return -EINVAL;
	*size = (size_t)total;
	return 0;
}

int sl_encode(const struct sl_list *l, uint8_t *buf, size_t size)
{
	size_t need, n = l->n, i, data = 8 * (n + 2), formats;
	uint64_t off = 0, slot;
	int rc;

	rc = sl_encoded_size(l, &need);
	if (rc < 0)
		return rc;
	if (size != need)
		return -EINVAL;

	/* All padding is zero, as in the fresh segment CPython packs into. */
	memset(buf, 0, size);
	put_i64(buf, (int64_t)n);
	for (i = 0; i < n; i++) {
		(void)value_slot(&l->v[i], &slot);      /* checked above */
		pack_value(buf + data + off, slot, &l->v[i]);
		off += slot;
		put_i64(buf + 16 + 8 * i, (int64_t)off);
	}
	formats = data + (size_t)off;
	for (i = 0; i < n; i++) {
		(void)value_slot(&l->v[i], &slot);
		format_of(&l->v[i], slot, buf + formats + SL_FMT_LEN * i);
		buf[formats + SL_FMT_LEN * n + i] = code_of(l->v[i].type);
	}
	return 0;
}

bool sl_fits(const struct sl_value *v, uint64_t slot)
{
	switch (v->type) {
	case SL_NONE:
	case SL_BOOL:
	case SL_INT:
	case SL_FLOAT:
		/* CPython would write 8 bytes even into a smaller slot. */
		return slot >= SL_ALIGN;
	case SL_STR:
		if (!utf8_valid((const uint8_t *)v->u.s.p, v->u.s.len))
			return false;
		/* fallthrough */
	case SL_BYTES:
		/* And the "%ds" format of the slot must fit its field. */
		return v->u.s.len <= slot && slot <= SL_SLOT_MAX;
	}
	return false;
}

int sl_assign(uint8_t *seg, size_t size, size_t index, const struct sl_value *v)
{
	struct span want = { .index = index };
	struct layout lay;
	uint8_t fmt[SL_FMT_LEN];
	size_t n;
	int rc;

	/*
	 * CPython uses the N and offsets it cached at attach; we have none, so
	 * the header is read again, once, and only the checked locals are used
	 * for the writes below, whatever happens to the segment meanwhile.
	 */
	rc = read_count(seg, size, &n);
	if (rc < 0)
		return rc;
	rc = read_header(seg, size, n, NULL, &want, &lay);
	if (rc < 0)
		return rc;
	if (index >= n)
		return -ERANGE;
	if ((unsigned)v->type > SL_BYTES || (v->type == SL_STR &&
	    !utf8_valid((const uint8_t *)v->u.s.p, v->u.s.len)))
		return -EINVAL;
	/* Checked before anything is written, as CPython raises ValueError. */
	if (!sl_fits(v, want.slot))
		return -ENOSPC;

	/*
	 * CPython keeps the current format of a str slot when it ends in "s";
	 * in every segment CPython writes that is "%ds" % slot, which is what
	 * we write.  A shorter "<count>s" (another writer's) is replaced rather
	 * than kept: CPython would truncate the value to it.
	 */
	format_of(v, want.slot, fmt);
	memcpy(seg + lay.formats + SL_FMT_LEN * index, fmt, SL_FMT_LEN);
	seg[lay.codes + index] = code_of(v->type);
	pack_value(seg + lay.data + want.off, want.slot, v);
	return 0;
}

int sl_assign_all(uint8_t *seg, size_t size, const struct sl_list *l)
{
	struct layout lay;
	uint64_t *slot, off = 0;
	size_t n;
	int rc;

	rc = read_count(seg, size, &n);
	if (rc < 0)
		return rc;
	if (n != l->n)
		return -ERANGE;
	if (n == 0)
		return 0;
	slot = seg_calloc(n, sizeof(*slot));
	if (slot == NULL)
		return -ENOMEM;
	rc = read_header(seg, size, n, slot, NULL, &lay);
	/* Every value is checked before the first byte is written. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct sl_value *v = &l->v[i];

		if ((unsigned)v->type > SL_BYTES || (v->type == SL_STR &&
		    !utf8_valid((const uint8_t *)v->u.s.p, v->u.s.len)))
			rc = -EINVAL;
		else if (!sl_fits(v, slot[i]))
			rc = -ENOSPC;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t fmt[SL_FMT_LEN];

		/* The same three writes as sl_assign, in the same order. */
		format_of(&l->v[i], slot[i], fmt);
		memcpy(seg + lay.formats + SL_FMT_LEN * i, fmt, SL_FMT_LEN);
		seg[lay.codes + i] = code_of(l->v[i].type);
		pack_value(seg + lay.data + off, slot[i], &l->v[i]);
		off += slot[i];
	}
	seg_free(slot);
	return rc;
}
