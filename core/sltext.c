/*
 * The text form of a ShareableList (see sltext.h): Python's repr() of each
 * item, and a parser for Python's literal spellings of the five types.
 *
 * The renderer reproduces CPython 3.11 byte for byte:
 *
 *   - int: decimal.
 *   - float: float_repr() with float_repr_style 'short', i.e.
 *     PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0): the shortest
 *     digits that read back as x (dtoa mode 0), in exponent form iff the
 *     decimal point position is <= -4 or > 16.
 *   - str: unicode_repr(); bytes: PyBytes_Repr(smartquotes=1).
 *
 * The parser accepts one literal per line, in the grammar below (the
 * tokens of Python's reference manual, "Lexical analysis"), with no
 * expression around it except a sign glued to a number:
 *
 *   line     := blank* literal blank*         blank: space \t \f \r
 *   literal  := "None" | "True" | "False" | int | float | string
 *   int      := [sign] (decint | "0" ("x"|"X") (["_"] hexdigit)+
 *                              | "0" ("o"|"O") (["_"] octdigit)+
 *                              | "0" ("b"|"B") (["_"] bindigit)+)
 *   decint   := nonzero (["_"] digit)* | "0"+ (["_"] "0")*
 *   float    := [sign] (pointfloat | expfloat | "inf" | "infinity" | "nan")
 *               (the last three in any case, as float() takes them)
 *   pointfloat := [digitpart] "." digitpart | digitpart "."
 *   expfloat := (digitpart | pointfloat) ("e"|"E") ["+"|"-"] digitpart
 *   digitpart := digit (["_"] digit)*
 *   string   := [prefix] ("'" item* "'" | '"' item* '"')   (one line)
 *   prefix   := "u" | "r" | "b" | "br" | "rb"               (any case)
 *   item     := any character but the quote, "\", NUL, CR, LF | "\" char
 *
 * An int must fit int64 (CPython's struct.error otherwise); a float literal
 * too large for a double is inf, as in Python.  In a non-raw literal the
 * escapes are \\ \' \" \a \b \f \n \r \t \v \ooo (at most 0o377) \xhh,
 * and in str also \uXXXX and \UXXXXXXXX (a code point UTF-8 can encode:
 * not a surrogate); \N{name} is refused in str; any other backslash stays
 * a backslash, as in Python.  A raw literal keeps every backslash, though
 * one still protects a quote.  A bytes literal is ASCII; a str literal is
 * UTF-8, since the file is.
 *
 * All allocation goes through seg_malloc, and outputs are written only on
 * success.  strtod() is only ever given digits and an exponent, and only
 * the digits of snprintf's "%e" are read, so LC_NUMERIC cannot change a
 * result.
 */
#include "core/sltext.h"

#include "core/alloc.h"
#include "core/uniprint.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdigits[] = "0123456789abcdef";   /* Py_hexdigits */

/* ---- growable buffer -------------------------------------------------- */

/*
 * Makes room for `extra` more bytes plus a NUL, which sl_repr keeps after
 * the text for the caller's convenience.  There is no seg_realloc, so a
 * growth is allocate, copy, free; capacity doubles, so that is amortized.
 */
static int buf_reserve(struct sl_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - 1 - b->len)
		return -ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = seg_malloc(cap);
	if (p == NULL)
		return -ENOMEM;
	if (b->len > 0)
		memcpy(p, b->p, b->len);
	seg_free(b->p);
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_append(struct sl_buf *b, const char *s, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc < 0)
		return rc;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * Decodes the sequence at s[0..n), n >= 1.  Returns its length and sets
 * *cp, or returns 0 if it is not well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), which is exactly what
 * Python's strict 'utf-8' codec accepts.
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Writes cp (not a surrogate, <= U+10FFFF) as UTF-8; returns the length. */
static size_t utf8_encode(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- repr: numbers ---------------------------------------------------- */

/* Longest repr of an int64 or a double ("-1.2345678901234567e-308"), + NUL. */
#define NUM_REPR_MAX 32

static size_t repr_int(int64_t i, char *o)
{
	/* The magnitude in unsigned arithmetic, so INT64_MIN needs no case. */
	uint64_t m = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
	char tmp[20];
	size_t n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m > 0);
	if (i < 0)
		o[len++] = '-';
	while (n > 0)
		o[len++] = tmp[--n];
	return len;
}

/* True if the decimal dig[0..n) x 10^exp reads back as exactly x. */
static bool round_trips(const char *dig, size_t n, int exp, double x)
{
	char s[40];
	double y;

	/* "ddd...e-N": no decimal point for the locale to disagree with. */
	memcpy(s, dig, n);
	snprintf(s + n, sizeof(s) - n, "e%d", exp);
	y = strtod(s, NULL);
	return memcmp(&x, &y, sizeof(x)) == 0;
}

/*
 * The digits _Py_dg_dtoa(x, 0, ...) gives for a finite x > 0: the shortest
 * decimal that reads back as x, and of those the nearest to x.  Returns the
 * digit count (trailing zeros removed) and sets *decpt so that x is
 * 0.d1d2...dn x 10^decpt, dtoa's convention.
 *
 * glibc's "%.*e" rounds correctly, so for each length n = 1..17 it gives
 * the nearest n-digit decimal; if any n-digit decimal round-trips, that one
 * does, except when x is a power of two: then the gap to the next double
 * below is half the gap above, the nearest candidate can sit below x but
 * outside the interval that rounds to x, and the next candidate up (farther,
 * but on the wide side) is the shortest one dtoa returns.  For example
 * 2**-1017 is 7.120236347223045e-307, where "%.15e" gives ...0444e-307.
 * So each length also tries the nearest candidate's upper neighbour.  17
 * digits always round-trip.  Checked against CPython's repr() for every
 * power of two and thousands of other doubles (text_repr_vectors.txt).
 */
static size_t shortest_digits(double x, char *dig, int *decpt)
{
	char s[40];
	size_t n = 0;
	int exp = 0;

	for (int prec = 0; prec <= 16; prec++) {
		const char *e;
		size_t i;

		snprintf(s, sizeof(s), "%.*e", prec, x);
		/* Keep the digits, skipping the locale's decimal point. */
		n = 0;
		for (e = s; *e != 'e'; e++)
			if (*e >= '0' && *e <= '9')
				dig[n++] = *e;
		exp = atoi(e + 1);
		/* dig[0..n) x 10^(exp - prec) is the candidate. */
		if (round_trips(dig, n, exp - prec, x))
			break;
		for (i = n; i > 0 && dig[i - 1] == '9'; i--)
			dig[i - 1] = '0';
		if (i > 0) {
			dig[i - 1]++;
		} else {
			/* 9.99 went up to 10.0: one digit more in front, one less behind. */
			dig[0] = '1';
			exp++;
		}
		if (round_trips(dig, n, exp - prec, x))
			break;
	}
	while (n > 1 && dig[n - 1] == '0')
		n--;
	*decpt = exp + 1;
	return n;
}

/*
 * format_float_short() for 'r' with Py_DTSF_ADD_DOT_0.  CPython switches to
 * exponent form at 1e16 rather than 1e17 because a 16-digit shortest repr
 * would otherwise be padded with a made-up zero (2e16+8 would read
 * 20000000000000010.0).
 */
static size_t repr_float(double x, char *o)
{
	char dig[20];
	size_t n, len = 0;
	int decpt;

	/* CPython writes "nan" whatever the sign and payload. */
	if (isnan(x))
		return (size_t)sprintf(o, "nan");
	if (signbit(x))
		o[len++] = '-';
	if (isinf(x))
		return len + (size_t)sprintf(o + len, "inf");
	if (x == 0)
		return len + (size_t)sprintf(o + len, "0.0");

	n = shortest_digits(fabs(x), dig, &decpt);
	if (decpt <= -4 || decpt > 16) {
		int e = decpt - 1;

		o[len++] = dig[0];
		if (n > 1) {
			o[len++] = '.';
			memcpy(o + len, dig + 1, n - 1);
			len += n - 1;
		}
		/* Like "%+.02d": a sign and at least two digits. */
		len += (size_t)sprintf(o + len, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
	} else if (decpt <= 0) {
		/* 0.000ddd */
		o[len++] = '0';
		o[len++] = '.';
		memset(o + len, '0', (size_t)-decpt);
		len += (size_t)-decpt;
		memcpy(o + len, dig, n);
		len += n;
	} else if ((size_t)decpt >= n) {
		/* ddd000.0: the ".0" is Py_DTSF_ADD_DOT_0. */
		memcpy(o + len, dig, n);
		len += n;
		memset(o + len, '0', (size_t)decpt - n);
		len += (size_t)decpt - n;
		o[len++] = '.';
		o[len++] = '0';
	} else {
		memcpy(o + len, dig, (size_t)decpt);
		len += (size_t)decpt;
		o[len++] = '.';
		memcpy(o + len, dig + decpt, n - (size_t)decpt);
		len += n - (size_t)decpt;
	}
	o[len] = '\0';
	return len;
}

/* ---- repr: str and bytes ---------------------------------------------- */

/* Writes \xhh, \uhhhh or \Uhhhhhhhh (ndig hex digits, lowercase). */
static size_t put_escape(char *o, char kind, uint32_t v, int ndig)
{
	o[0] = '\\';
	o[1] = kind;
	for (int i = 0; i < ndig; i++)
		o[2 + i] = hexdigits[v >> (4 * (ndig - 1 - i)) & 0xf];
	return 2 + (size_t)ndig;
}

/* The quote repr() uses: ' unless the text has ' and no ". */
static char pick_quote(const char *p, size_t len)
{
	return memchr(p, '\'', len) && !memchr(p, '"', len) ? '"' : '\'';
}

/*
 * Escapes one character the way unicode_repr() and PyBytes_Repr() agree
 * on: the quote and the backslash, \t \n \r, and \xhh for the other ASCII
 * controls and DEL.  Returns the length written to o, or 0 if c is
 * printable ASCII to copy as is.
 */
static size_t escape_ascii(uint32_t c, char quote, char *o)
{
	if (c == (uint32_t)quote || c == '\\') {
		o[0] = '\\';
		o[1] = (char)c;
		return 2;
	}
	if (c == '\t' || c == '\n' || c == '\r') {
		o[0] = '\\';
		o[1] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
		return 2;
	}
	if (c < ' ' || c == 0x7f)
		return put_escape(o, 'x', c, 2);
	return 0;
}

/*
 * The body of repr(str) between the quotes, into o, or only its length if
 * o is NULL (unicode_repr() too sizes its output in a first pass).
 * Non-ASCII characters stay literal if printable, else become \xhh,
 * \uhhhh or \Uhhhhhhhh by size.  A byte that is not UTF-8 cannot come from
 * sl_decode or sl_parse; should one appear anyway, it is shown as the lone
 * surrogate \udcXX that Python's surrogateescape would make of it.
 */
static size_t str_body(const char *p, size_t len, char quote, char *o)
{
	char tmp[10];
	size_t olen = 0;

	for (size_t i = 0; i < len;) {
		const unsigned char *s = (const unsigned char *)p + i;
		uint32_t cp;
		size_t n = utf8_decode(s, len - i, &cp), k;
		const char *src = tmp;

		if (n == 0) {
			k = put_escape(tmp, 'u', 0xdc00 | s[0], 4);
			n = 1;
		} else if (cp < 0x80) {
			k = escape_ascii(cp, quote, tmp);
			if (k == 0)
				src = (const char *)s, k = 1;
		} else if (seg_uni_isprintable(cp)) {
			src = (const char *)s, k = n;
		} else if (cp <= 0xff) {
			k = put_escape(tmp, 'x', cp, 2);
		} else if (cp <= 0xffff) {
			k = put_escape(tmp, 'u', cp, 4);
		} else {
			k = put_escape(tmp, 'U', cp, 8);
		}
		if (o != NULL)
			memcpy(o + olen, src, k);
		olen += k;
		i += n;
	}
	return olen;
}

/* The body of repr(bytes): printable ASCII as is, the rest escaped. */
static size_t bytes_body(const char *p, size_t len, char quote, char *o)
{
	char tmp[4];
	size_t olen = 0;

	for (size_t i = 0; i < len; i++) {
		uint32_t c = (unsigned char)p[i];
		size_t k = c >= 0x80 ? put_escape(tmp, 'x', c, 2) : escape_ascii(c, quote, tmp);

		if (o != NULL) {
			if (k == 0)
				o[olen] = (char)c;
			else
				memcpy(o + olen, tmp, k);
		}
		olen += k == 0 ? 1 : k;
	}
	return olen;
}

static int repr_string(const struct sl_value *v, struct sl_buf *out)
{
	bool bytes = v->type == SL_BYTES;
	const char *p = v->u.s.p;
	size_t len = v->u.s.len, body, total;
	char quote = pick_quote(p, len), *o;
	int rc;

	body = bytes ? bytes_body(p, len, quote, NULL) : str_body(p, len, quote, NULL);
	/* Sized first, so that a failure leaves out as it was. */
	total = body + 2 + bytes;
	rc = buf_reserve(out, total);
	if (rc < 0)
		return rc;
	o = out->p + out->len;
	if (bytes)
		*o++ = 'b';
	*o++ = quote;
	if (bytes)
		o += bytes_body(p, len, quote, o);
	else
		o += str_body(p, len, quote, o);
	*o = quote;
	out->len += total;
	out->p[out->len] = '\0';
	return 0;
}

int sl_repr(const struct sl_value *v, struct sl_buf *out)
{
	char num[NUM_REPR_MAX];

	switch (v->type) {
	case SL_NONE:
		return buf_append(out, "None", 4);
	case SL_BOOL:
		return v->u.b ? buf_append(out, "True", 4) : buf_append(out, "False", 5);
	case SL_INT:
		return buf_append(out, num, repr_int(v->u.i, num));
	case SL_FLOAT:
		return buf_append(out, num, repr_float(v->u.d, num));
	case SL_STR:
	case SL_BYTES:
		return repr_string(v, out);
	}
	/* Not a type of sl.h: the caller's bug. */
	assert(!"sl_repr: bad type");
	return -EINVAL;
}

int sl_render(const struct sl_list *l, char **text, size_t *len)
{
	struct sl_buf b = { 0 };
	int rc;

	/* An empty list is an empty text, still allocated so it can be freed. */
	rc = buf_reserve(&b, 0);
	if (rc < 0)
		goto fail;
	b.p[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		rc = sl_repr(&l->v[i], &b);
		if (rc < 0)
			goto fail;
		rc = buf_append(&b, "\n", 1);
		if (rc < 0)
			goto fail;
	}
	*text = b.p;
	*len = b.len;
	return 0;

fail:
	seg_free(b.p);
	return rc;
}

/* ---- parse ------------------------------------------------------------ */

/* Python's whitespace between tokens, plus \r so CRLF text reads too. */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The value of c as a digit in `base`, or -1. */
static int digit_value(char c, unsigned base)
{
	int d;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	else
		return -1;
	return (unsigned)d < base ? d : -1;
}

static bool equals_nocase(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n && word[i] != '\0'; i++)
		if ((s[i] | 0x20) != word[i])
			return false;
	return i == n && word[i] == '\0';
}

/*
 * Scans digits of `base` in which single underscores may separate digits:
 * digit (["_"] digit)*, or with lead_underscore, (["_"] digit)+ as after a
 * 0x prefix.  Returns the end (s if there is no digit); an underscore not
 * followed by a digit is left for the caller to reject as trailing text.
 */
static size_t scan_digits(const char *s, size_t n, unsigned base, bool lead_underscore)
{
	size_t i = 0;

	while (i < n) {
		if (digit_value(s[i], base) >= 0)
			i++;
		else if (s[i] == '_' && (i > 0 || lead_underscore) && i + 1 < n &&
			 digit_value(s[i + 1], base) >= 0)
			i += 2;
		else
			break;
	}
	return i;
}

/* Accumulates the digits of s[0..n) (underscores skipped); false past max. */
static bool digits_value(const char *s, size_t n, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++) {
		int d = digit_value(s[i], base);

		if (d < 0)
			continue;
		if (m > (max - (uint64_t)d) / base)
			return false;
		m = m * base + (uint64_t)d;
	}
	*out = m;
	return true;
}

/*
 * Reads the exponent digits, saturating: past 10^17 every exponent gives
 * the same double (inf or 0) for any mantissa a computer can hold.
 */
static int64_t exponent_value(const char *s, size_t n)
{
	int64_t e = 0;

	for (size_t i = 0; i < n; i++)
		if (is_digit(s[i]) && e < 100000000000000000)
			e = e * 10 + (s[i] - '0');
	return e;
}

/*
 * A float literal's mantissa digits and power of ten go to strtod() as
 * "DIGITSe-N", with no decimal point (locale-proof) and no underscores.
 * Python's float literals are correctly rounded, as glibc's strtod is.
 */
static int float_value(const char *mant, size_t mlen, int64_t exp, double *out)
{
	char small[128], *s = small;
	size_t cap = mlen + 24, k = 0;

	if (mlen > SIZE_MAX - 24)
		return -ENOMEM;
	if (cap > sizeof(small)) {
		s = seg_malloc(cap);
		if (s == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < mlen; i++)
		if (is_digit(mant[i]))
			s[k++] = mant[i];
	snprintf(s + k, cap - k, "e%lld", (long long)exp);
	*out = strtod(s, NULL);
	if (s != small)
		seg_free(s);
	return 0;
}

/* The base a "0?" prefix letter names, or 0. */
static unsigned prefix_base(char c)
{
	switch (c | 0x20) {
	case 'x':
		return 16;
	case 'o':
		return 8;
	case 'b':
		return 2;
	}
	return 0;
}

/* Sets an int from checked digits; -EINVAL outside int64, like struct.pack('q'). */
static int int_value(const char *s, size_t n, unsigned base, bool neg, struct sl_value *v)
{
	/* -2^63 is the one magnitude past INT64_MAX that fits. */
	uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, m;

	if (!digits_value(s, n, base, max, &m))
		return -EINVAL;
	v->type = SL_INT;
	v->u.i = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

/* s[0..n) after the sign: [digitpart] ["." [digitpart]] [exponent]. */
static int parse_float(const char *s, size_t n, bool neg, struct sl_value *v)
{
	size_t ilen = scan_digits(s, n, 10, false), flen = 0, i = ilen;
	int64_t exp = 0, fdigits = 0;
	bool point = false;
	double d;
	int rc;

	if (i < n && s[i] == '.') {
		point = true;
		i++;
		flen = scan_digits(s + i, n - i, 10, false);
		for (size_t k = i; k < i + flen; k++)
			fdigits += is_digit(s[k]);
		i += flen;
	}
	if (ilen == 0 && flen == 0)
		return -EINVAL;                 /* ".", ".e5", "e5", "_1" */
	if (i < n && (s[i] | 0x20) == 'e') {
		size_t j = i + 1, elen;
		bool eneg = false;

		if (j < n && (s[j] == '+' || s[j] == '-'))
			eneg = s[j++] == '-';
		elen = scan_digits(s + j, n - j, 10, false);
		if (elen == 0 || j + elen != n)
			return -EINVAL;
		exp = exponent_value(s + j, elen);
		if (eneg)
			exp = -exp;
	} else if (i != n || !point) {
		return -EINVAL;                 /* "1x", "1_", "1.5j", "1..2" */
	}
	/* The mantissa is s[0..i); float_value() skips its '.' and '_'. */
	rc = float_value(s, i, exp - fdigits, &d);
	if (rc < 0)
		return rc;
	v->type = SL_FLOAT;
	v->u.d = neg ? -d : d;
	return 0;
}

static int parse_number(const char *s, size_t n, struct sl_value *v)
{
	bool neg = false;
	size_t ilen;
	unsigned base;

	/* Only a sign glued to the number: "- 5" and "--5" are expressions. */
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		s++;
		n--;
	}

	/*
	 * float()'s spellings of the special values (repr() writes inf, -inf
	 * and nan); "-nan" is float('-nan'), a NaN with the sign bit set.
	 */
	if (equals_nocase(s, n, "inf") || equals_nocase(s, n, "infinity") ||
	    equals_nocase(s, n, "nan")) {
		double d = (s[0] | 0x20) == 'n' ? (double)NAN : (double)INFINITY;

		v->type = SL_FLOAT;
		v->u.d = neg ? -d : d;
		return 0;
	}

	if (n >= 2 && s[0] == '0' && (base = prefix_base(s[1])) != 0) {
		/* "0x_ff" is valid: one '_' may follow the prefix. */
		if (n == 2 || 2 + scan_digits(s + 2, n - 2, base, true) != n)
			return -EINVAL;
		return int_value(s + 2, n - 2, base, neg, v);
	}

	ilen = scan_digits(s, n, 10, false);
	if (ilen < n)
		return parse_float(s, n, neg, v);
	if (ilen == 0)
		return -EINVAL;
	/* "0", "00" and "0_0" are ints; "01" is not (it was Python 2's octal). */
	if (s[0] == '0')
		for (size_t k = 0; k < n; k++)
			if (s[k] != '0' && s[k] != '_')
				return -EINVAL;
	return int_value(s, n, 10, neg, v);
}

/*
 * The string prefixes of Python 3, in any case: u, r, b, br, rb.  Returns
 * the prefix length, or -1 if s is not a prefix and then a quote.
 */
static int string_prefix(const char *s, size_t n, bool *raw, bool *bytes)
{
	size_t i;

	*raw = *bytes = false;
	for (i = 0; i < n && s[i] != '\'' && s[i] != '"'; i++) {
		switch (s[i] | 0x20) {
		case 'r':
			if (*raw)
				return -1;
			*raw = true;
			break;
		case 'b':
			if (*bytes)
				return -1;
			*bytes = true;
			break;
		case 'u':
			/* Only alone: "ur" was dropped in Python 3, "ub" never was. */
			if (i > 0 || (n > 1 && s[1] != '\'' && s[1] != '"'))
				return -1;
			break;
		default:
			return -1;
		}
	}
	if (i == n)
		return -1;
	return (int)i;
}

/* Reads exactly `ndig` hex digits at s[0..n); false if there are fewer. */
static bool hex_escape(const char *s, size_t n, int ndig, uint32_t *out)
{
	uint32_t c = 0;

	if (n < (size_t)ndig)
		return false;
	for (int i = 0; i < ndig; i++) {
		int d = digit_value(s[i], 16);

		if (d < 0)
			return false;
		c = c << 4 | (uint32_t)d;
	}
	*out = c;
	return true;
}

/*
 * Decodes the body of a string literal (between the quotes) into o, which
 * has room for n bytes: no escape decodes to more bytes than its spelling.
 * Returns 0 and the length in *olen, or -EINVAL.
 */
static int decode_body(const char *s, size_t n, bool raw, bool bytes, char *o, size_t *olen)
{
	size_t i = 0, len = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t k;

		if (c >= 0x80) {
			/* Python: "bytes can only contain ASCII literal characters". */
			if (bytes)
				return -EINVAL;
			k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
			if (k == 0)
				return -EINVAL;
			memcpy(o + len, s + i, k);
			len += k;
			i += k;
			continue;
		}
		/* Source code cannot hold a NUL; a line break would end the line. */
		if (c == '\0' || c == '\n' || c == '\r')
			return -EINVAL;
		if (c != '\\' || raw) {
			/* A raw backslash stays, and so does the quote it protects. */
			o[len++] = (char)c;
			i++;
			continue;
		}
		/* parse_string() never ends a body on a lone backslash. */
		assert(i + 1 < n);
		c = (unsigned char)s[i + 1];
		i += 2;
		switch (c) {
		case '\\': case '\'': case '"':
			cp = c;
			break;
		case 'a': cp = '\a'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'v': cp = '\v'; break;
		case '0': case '1': case '2': case '3':
		case '4': case '5': case '6': case '7':
			/*
			 * One to three octal digits.  Above 0o377 CPython 3.11
			 * warns (a DeprecationWarning, to become an error), and
			 * bytes keep only the low 8 bits: refused here.
			 */
			cp = c - '0';
			for (k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
				cp = cp * 8 + (uint32_t)(s[i++] - '0');
			if (cp > 0377)
				return -EINVAL;
			break;
		case 'x':
			if (!hex_escape(s + i, n - i, 2, &cp))
				return -EINVAL;
			i += 2;
			break;
		case 'u':
		case 'U':
			/* In bytes these are unknown escapes, kept below. */
			if (!bytes) {
				int ndig = c == 'u' ? 4 : 8;

				/* A lone surrogate is valid Python but not UTF-8. */
				if (!hex_escape(s + i, n - i, ndig, &cp) || cp > 0x10ffff ||
				    (cp >= 0xd800 && cp <= 0xdfff))
					return -EINVAL;
				i += (size_t)ndig;
				break;
			}
			/* fall through */
		default:
			/*
			 * \N{name} needs the Unicode name database: refused in
			 * str (in bytes it is an unknown escape).  Any other
			 * escape keeps its backslash, as in Python (which warns);
			 * the character after it is then read as usual.
			 */
			if (c == 'N' && !bytes)
				return -EINVAL;
			o[len++] = '\\';
			i--;
			continue;
		}
		if (bytes)
			o[len++] = (char)cp;
		else
			len += utf8_encode(cp, o + len);
	}
	*olen = len;
	return 0;
}

static int parse_string(const char *s, size_t n, struct sl_value *v)
{
	bool raw, bytes;
	int plen = string_prefix(s, n, &raw, &bytes), rc;
	size_t i, start, len;
	char quote, *p;

	if (plen < 0)
		return -EINVAL;
	quote = s[plen];
	start = (size_t)plen + 1;
	/*
	 * The closing quote is the first one no backslash protects (raw or
	 * not), and it must end the literal: "'a' 'b'" and "'''a'''" are
	 * refused as trailing text, and so is "r'\'" (unterminated in Python).
	 */
	for (i = start; i < n && s[i] != quote; i++)
		if (s[i] == '\\')
			i++;
	if (i != n - 1)
		return -EINVAL;
	p = seg_malloc(i - start + 1);
	if (p == NULL)
		return -ENOMEM;
	rc = decode_body(s + start, i - start, raw, bytes, p, &len);
	if (rc < 0) {
		seg_free(p);
		return rc;
	}
	p[len] = '\0';
	v->type = bytes ? SL_BYTES : SL_STR;
	v->u.s.p = p;
	v->u.s.len = len;
	return 0;
}

int sl_parse_value(const char *s, size_t len, struct sl_value *v)
{
	struct sl_value tmp;
	int rc;

	while (len > 0 && is_blank(s[0]))
		s++, len--;
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	if (len == 0)
		return -EINVAL;

	if (len == 4 && memcmp(s, "None", 4) == 0) {
		tmp.type = SL_NONE;
	} else if (len == 4 && memcmp(s, "True", 4) == 0) {
		tmp.type = SL_BOOL;
		tmp.u.b = true;
	} else if (len == 5 && memcmp(s, "False", 5) == 0) {
		tmp.type = SL_BOOL;
		tmp.u.b = false;
	} else if (s[len - 1] == '\'' || s[len - 1] == '"') {
		rc = parse_string(s, len, &tmp);
		if (rc < 0)
			return rc;
	} else {
		rc = parse_number(s, len, &tmp);
		if (rc < 0)
			return rc;
	}
	*v = tmp;
	return 0;
}

static bool line_is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_blank(s[i]))
			return false;
	return true;
}

/* The end of the line at p: its '\n', or the end of the text. */
static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl != NULL ? nl : end;
}

int sl_parse(const char *text, size_t len, struct sl_list **out, size_t *bad_line)
{
	const char *p, *e, *end = text + len;
	struct sl_value *v = NULL;
	struct sl_list *l;
	size_t count = 0, n = 0, line;
	int rc;

	/* Count the items first, to allocate them at once and exactly. */
	for (p = text; p < end; p = e + (e < end)) {
		e = line_end(p, end);
		count += !line_is_blank(p, (size_t)(e - p));
	}
	l = seg_calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	if (count > 0) {
		v = seg_calloc(count, sizeof(*v));
		if (v == NULL) {
			rc = -ENOMEM;
			goto fail_values;
		}
	}
	for (p = text, line = 1; p < end; p = e + (e < end), line++) {
		e = line_end(p, end);
		if (line_is_blank(p, (size_t)(e - p)))
			continue;
		rc = sl_parse_value(p, (size_t)(e - p), &v[n]);
		if (rc < 0)
			goto fail_parse;
		n++;
	}
	l->n = count;
	l->v = v;
	*out = l;
	return 0;

fail_parse:
	if (rc == -EINVAL && bad_line != NULL)
		*bad_line = line;
	/* The n values parsed so far are freed with the list. */
	l->n = n;
	l->v = v;
	sl_list_free(l);
	return rc;
fail_values:
	seg_free(l);
	return rc;
}
