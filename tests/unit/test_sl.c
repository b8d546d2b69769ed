/*
 * Unit tests of core/sl.c, the ShareableList byte codec.
 *
 * Golden data comes from real CPython (scripts/gen_sl_vectors.py, run with
 * CPython 3.11): every vector of shareablelist_vectors.txt and
 * sl_codec_vectors.txt is decoded to the values CPython reads back and
 * encoded back to CPython's bytes, and sl_assign is compared byte for byte
 * with CPython's sl[i] = v (sl_assign_vectors.txt).  Then: truncated and
 * corrupt segments, a 3.8 segment, strict UTF-8 against a reference
 * decoder, allocation failures, a seeded differential test against a small
 * model, and a seeded fuzz loop that only asks for no crash (it is meant to
 * run under ASan and UBSan).
 *
 * Usage: test_sl [SEED]   (seed of the random tests; default fixed)
 * SEGFS_TESTDATA names the directory of the data files (tests/data).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "slvalue.h"
#include "core/sl.h"

static unsigned long seed = 20261122;

/* ---- helpers ---------------------------------------------------------- */

/* xorshift64*: the same sequence on every platform, unlike random(3). */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static void rng_seed(uint64_t s)
{
	rng_state = s * UINT64_C(0x9e3779b97f4a7c15) + 1;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	assert_non_null(p);
	return p;
}

/* A heap copy of exactly n bytes, so that ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = xmalloc(n);

	if (n)
		memcpy(q, p, n);
	return q;
}

static void put64(uint8_t *p, int64_t v)
{
	memcpy(p, &v, sizeof v);
}

static int64_t get64(const uint8_t *p)
{
	int64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static int unhex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	fail_msg("bad hex digit '%c'", c);
	return 0;
}

/* Hex to bytes; "-" is empty. */
static uint8_t *unhex(const char *h, size_t *len)
{
	size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h), i;
	uint8_t *p;

	assert_int_equal(n % 2, 0);
	p = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++)
		p[i] = (uint8_t)(unhex_digit(h[2 * i]) << 4 | unhex_digit(h[2 * i + 1]));
	p[n / 2] = 0;
	*len = n / 2;
	return p;
}

static char *slurp(const char *name)
{
	const char *dir = getenv("SEGFS_TESTDATA");
	char path[4096];
	FILE *f;
	long n;
	char *s;

	snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (set SEGFS_TESTDATA)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	s = xmalloc((size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Splits text into lines in place; returns the next line or NULL. */
static char *next_line(char **cur)
{
	char *s = *cur, *nl;

	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*cur = nl + 1;
	} else {
		*cur = s + strlen(s);
	}
	return s;
}

static struct sl_value str_value(enum sl_type t, const void *p, size_t len)
{
	struct sl_value v = { .type = t };

	v.u.s.p = xmalloc(len + 1);
	memcpy(v.u.s.p, p, len);
	v.u.s.p[len] = '\0';
	v.u.s.len = len;
	return v;
}

/* A value in the notation of scripts/gen_sl_vectors.py. */
static struct sl_value parse_value(const char *s)
{
	struct sl_value v = { .type = SL_NONE };
	const char *arg = strchr(s, ' ');
	uint8_t *b;
	size_t len;

	arg = arg ? arg + 1 : "";
	if (strcmp(s, "none") == 0) {
		v.type = SL_NONE;
	} else if (strncmp(s, "bool ", 5) == 0) {
		v.type = SL_BOOL;
		v.u.b = strcmp(arg, "1") == 0;
	} else if (strncmp(s, "int ", 4) == 0) {
		v.type = SL_INT;
		v.u.i = strtoll(arg, NULL, 10);
	} else if (strncmp(s, "float ", 6) == 0) {
		v.type = SL_FLOAT;
		v.u.d = strtod(arg, NULL);
	} else if (strncmp(s, "str ", 4) == 0 || strncmp(s, "bytes ", 6) == 0) {
		b = unhex(arg, &len);
		v = str_value(s[0] == 's' ? SL_STR : SL_BYTES, b, len);
		free(b);
	} else {
		fail_msg("bad value notation: %s", s);
	}
	return v;
}


static void assert_value(const struct sl_value *got, const struct sl_value *want,
			 const char *what, size_t i)
{
	if (!slv_equal(got, want))
		fail_msg("%s: item %zu: type %d vs %d", what, i, (int)got->type,
			 (int)want->type);
}

/* A growable array of values, the test's side of a list. */
struct vals {
	struct sl_value *v;
	size_t n, cap;
	bool error;     /* CPython could not read the list back */
};

static void vals_push(struct vals *a, struct sl_value v)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = realloc(a->v, a->cap * sizeof *a->v);
		assert_non_null(a->v);
	}
	a->v[a->n++] = v;
}

static void vals_free(struct vals *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		sl_value_clear(&a->v[i]);
	free(a->v);
	memset(a, 0, sizeof *a);
}

static struct sl_list as_list(const struct vals *a)
{
	struct sl_list l = { .n = a->n, .v = a->v, .slot = NULL };

	return l;
}

/*
 * Decodes an exact-size copy and compares with the expected values, or
 * expects -EBADMSG (with *out untouched) if CPython could not read it.
 */
static void check_decode(const uint8_t *seg, size_t len, const struct vals *want,
			 const char *what)
{
	struct sl_list *l = (struct sl_list *)&l;
	uint8_t *copy = dup_exact(seg, len);
	int rc = sl_decode(copy, len, &l);
	size_t i;

	if (want->error) {
		if (rc != -EBADMSG)
			fail_msg("%s: decoded %d, want -EBADMSG", what, rc);
		assert_ptr_equal(l, (struct sl_list *)&l);
		free(copy);
		return;
	}
	if (rc != 0)
		fail_msg("%s: decode gives %d", what, rc);
	assert_int_equal(l->n, want->n);
	for (i = 0; i < l->n; i++) {
		assert_value(&l->v[i], &want->v[i], what, i);
		/* slot[i] is off[i+1] - off[i], read from the bytes here. */
		assert_int_equal(l->slot[i], get64(seg + 16 + 8 * i) - get64(seg + 8 + 8 * i));
	}
	sl_list_free(l);
	free(copy);
}

static void check_encode(const struct vals *in, const uint8_t *want, size_t len,
			 const char *what)
{
	struct sl_list l = as_list(in);
	size_t size = 0;
	uint8_t *buf;

	assert_int_equal(sl_encoded_size(&l, &size), 0);
	if (size != len)
		fail_msg("%s: encoded size %zu, CPython %zu", what, size, len);
	buf = xmalloc(len + 1);
	memset(buf, 0xa5, len + 1);
	/* A buffer of the wrong size is refused and left alone. */
	assert_int_equal(sl_encode(&l, buf, len + 1), -EINVAL);
	assert_int_equal(buf[0], 0xa5);
	assert_int_equal(sl_encode(&l, buf, len), 0);
	if (memcmp(buf, want, len) != 0)
		fail_msg("%s: encoded bytes differ from CPython's", what);
	free(buf);
}

/* ---- golden vectors from CPython ---------------------------------------- */

struct block {
	char *lit;
	uint8_t *cpython, *ours;
	size_t cpython_len, ours_len;
	struct vals in, read, oursread;
};

static void block_free(struct block *b)
{
	free(b->cpython);
	free(b->ours);
	vals_free(&b->in);
	vals_free(&b->read);
	vals_free(&b->oursread);
	memset(b, 0, sizeof *b);
}

static void read_into(struct vals *a, const char *s)
{
	if (strncmp(s, "error ", 6) == 0)
		a->error = true;
	else
		vals_push(a, parse_value(s));
}

/* Reads the next "vector ... end" block; false at the end of the text. */
static bool next_block(char **cur, struct block *b)
{
	char *s;

	memset(b, 0, sizeof *b);
	while ((s = next_line(cur)) && strcmp(s, "vector") != 0)
		assert_true(s[0] == '#' || s[0] == '\0');
	if (!s)
		return false;
	while ((s = next_line(cur)) && strcmp(s, "end") != 0) {
		if (strncmp(s, "lit ", 4) == 0)
			b->lit = s + 4;
		else if (strncmp(s, "cpython ", 8) == 0)
			b->cpython = unhex(s + 8, &b->cpython_len);
		else if (strncmp(s, "ours ", 5) == 0)
			b->ours = unhex(s + 5, &b->ours_len);
		else if (strncmp(s, "in ", 3) == 0)
			vals_push(&b->in, parse_value(s + 3));
		else if (strncmp(s, "read ", 5) == 0)
			read_into(&b->read, s + 5);
		else if (strncmp(s, "oursread ", 9) == 0)
			read_into(&b->oursread, s + 9);
		else
			fail_msg("unexpected line: %s", s);
	}
	assert_non_null(s);
	assert_non_null(b->lit);
	return true;
}

/*
 * Both ways: CPython's bytes decode to what CPython reads back (bytes
 * past the layout ignored), and the values it was given encode to its
 * bytes, or to "ours" where segfs declines to truncate a str; CPython read
 * those back whole when they were generated.
 */
static void check_block(const struct block *b)
{
	uint8_t *padded;

	check_decode(b->cpython, b->cpython_len, &b->read, b->lit);
	padded = xmalloc(b->cpython_len + 100);
	memcpy(padded, b->cpython, b->cpython_len);
	memset(padded + b->cpython_len, 0xee, 100);
	check_decode(padded, b->cpython_len + 100, &b->read, b->lit);
	free(padded);

	if (b->ours) {
		check_encode(&b->in, b->ours, b->ours_len, b->lit);
		check_decode(b->ours, b->ours_len, &b->oursread, b->lit);
	} else {
		check_encode(&b->in, b->cpython, b->cpython_len, b->lit);
	}
}

/* Every block of the shared vector file, whose values the generator wrote apart. */
static void test_shared_vectors(void **state)
{
	char *vec = slurp("shareablelist_vectors.txt");
	char *val = slurp("sl_vectors_values.txt");
	char *vcur = vec, *wcur = val, *lit, *hex, *blank;
	struct block b;
	size_t count = 0;
	bool seen_ours = false;

	(void)state;
	while ((lit = next_line(&vcur))) {
		hex = next_line(&vcur);
		blank = next_line(&vcur);
		assert_non_null(hex);
		assert_true(blank && blank[0] == '\0');
		assert_true(next_block(&wcur, &b));
		assert_string_equal(b.lit, lit);
		b.cpython = unhex(hex, &b.cpython_len);
		if (b.ours) {
			/* Only 'ééééé': CPython truncates it to 'éééé', we do not. */
			assert_string_equal(lit, "['\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9']");
			assert_int_equal(b.oursread.n, 1);
			assert_int_equal(b.oursread.v[0].u.s.len, 10);
			assert_int_equal(b.read.v[0].u.s.len, 8);
			seen_ours = true;
		}
		check_block(&b);
		block_free(&b);
		count++;
	}
	assert_false(next_block(&wcur, &b));
	assert_int_equal(count, 13);
	assert_true(seen_ours);
	free(vec);
	free(val);
}

static void test_codec_vectors(void **state)
{
	char *text = slurp("sl_codec_vectors.txt"), *cur = text;
	struct block b;
	size_t count = 0, errors = 0;

	(void)state;
	while (next_block(&cur, &b)) {
		assert_non_null(b.cpython);
		errors += b.read.error;
		check_block(&b);
		block_free(&b);
		count++;
	}
	assert_true(count >= 18);
	/* The mid-character truncations CPython cannot read back. */
	assert_true(errors >= 2);
	free(text);
}

/*
 * One case: sl_assign on an exact-size copy of `before` gives CPython's
 * `after` and CPython's read of the item, or, where CPython raised,
 * ValueError -> -ENOSPC (and sl_fits said no), IndexError -> -ERANGE,
 * with nothing written.
 */
static void check_assign_case(const char *label, const uint8_t *before, size_t len,
			      size_t index, const struct sl_value *v, const char *error,
			      const uint8_t *after, size_t after_len,
			      const struct sl_value *read)
{
	uint8_t *seg = dup_exact(before, len);
	struct sl_list *l;
	int rc = sl_assign(seg, len, index, v), want = 0;

	if (error)
		want = strcmp(error, "ValueError") == 0 ? -ENOSPC : -ERANGE;
	if (rc != want)
		fail_msg("%s: sl_assign gives %d, want %d", label, rc, want);
	assert_int_equal(sl_decode(seg, len, &l), 0);
	if (error) {
		assert_memory_equal(seg, before, len);
		if (want == -ENOSPC)
			assert_false(sl_fits(v, l->slot[index]));
	} else {
		assert_int_equal(after_len, len);
		if (memcmp(seg, after, len) != 0)
			fail_msg("%s: bytes differ from CPython's", label);
		assert_value(&l->v[index], read, label, index);
		assert_true(sl_fits(v, l->slot[index]));
	}
	sl_list_free(l);
	free(seg);
}

/* sl[i] = v against CPython's bytes, including its stale tails and refusals. */
static void test_assign_vectors(void **state)
{
	char *text = slurp("sl_assign_vectors.txt"), *cur = text, *s, *label = NULL;
	uint8_t *before = NULL, *after = NULL;
	size_t before_len = 0, after_len = 0, index = 0, count = 0;
	struct sl_value v = { .type = SL_NONE }, read = { .type = SL_NONE };
	const char *error = NULL;

	(void)state;
	while ((s = next_line(&cur))) {
		if (s[0] == '#' || s[0] == '\0')
			continue;
		if (strncmp(s, "case ", 5) == 0) {
			label = s + 5;
		} else if (strncmp(s, "before ", 7) == 0) {
			before = unhex(s + 7, &before_len);
		} else if (strncmp(s, "index ", 6) == 0) {
			index = strtoul(s + 6, NULL, 10);
		} else if (strncmp(s, "value ", 6) == 0) {
			v = parse_value(s + 6);
		} else if (strncmp(s, "after ", 6) == 0) {
			after = unhex(s + 6, &after_len);
		} else if (strncmp(s, "read ", 5) == 0) {
			read = parse_value(s + 5);
		} else if (strncmp(s, "error ", 6) == 0) {
			error = s + 6;
		} else if (strcmp(s, "end") == 0) {
			assert_non_null(before);
			assert_true(error || after);
			check_assign_case(label, before, before_len, index, &v, error,
					  after, after_len, &read);
			free(before);
			free(after);
			before = after = NULL;
			error = NULL;
			sl_value_clear(&v);
			sl_value_clear(&read);
			count++;
		} else {
			fail_msg("unexpected line: %s", s);
		}
	}
	assert_true(count >= 30);
	free(text);
}

/* ---- the example of the header comment of core/sl.c --------------------- */

/* ShareableList([7, 'ab', b'cd', None]): DS 0x30, FS 0x50, CS 0x70. */
static const char example_hex[] =
	"0400000000000000" "0000000000000000" "0800000000000000"
	"1000000000000000" "1800000000000000" "2000000000000000"
	"0700000000000000" "6162000000000000" "6364000000000000"
	"0000000000000000" "7100000000000000" "3873000000000000"
	"3873000000000000" "7878787878783f78" "00010203";

enum { EX_LEN = 116, EX_DS = 0x30, EX_FS = 0x50, EX_CS = 0x70 };

static uint8_t *example(size_t *len)
{
	uint8_t *p = unhex(example_hex, len);

	assert_int_equal(*len, EX_LEN);
	return p;
}

static void test_header_example(void **state)
{
	struct vals in = { 0 };
	uint8_t *seg;
	size_t len;

	(void)state;
	seg = example(&len);
	vals_push(&in, parse_value("int 7"));
	vals_push(&in, parse_value("str 6162"));
	vals_push(&in, parse_value("bytes 6364"));
	vals_push(&in, parse_value("none"));
	check_encode(&in, seg, len, "example");
	check_decode(seg, len, &in, "example");
	vals_free(&in);
	free(seg);
}

/* ---- truncated and corrupt segments ------------------------------------- */

static void expect_bad(const uint8_t *seg, size_t len, const char *what)
{
	struct vals bad = { .error = true };

	check_decode(seg, len, &bad, what);
}

/* Decodes the example after a patch, expecting item `i` to be `want`. */
static void expect_item(const uint8_t *seg, size_t i, const char *want, const char *what)
{
	struct sl_list *l = NULL;
	struct sl_value v = parse_value(want);
	uint8_t *copy = dup_exact(seg, EX_LEN);
	int rc = sl_decode(copy, EX_LEN, &l);

	if (rc != 0)
		fail_msg("%s: decode gives %d", what, rc);
	assert_value(&l->v[i], &v, what, i);
	sl_list_free(l);
	sl_value_clear(&v);
	free(copy);
}

/*
 * The layout has no slack: vectors are exactly 16 + 17N + D bytes, so every
 * proper prefix must be refused, at every length, including 0 with NULL.
 */
static void test_prefixes(void **state)
{
	const char *files[] = { "shareablelist_vectors.txt", "sl_codec_vectors.txt" };
	struct sl_list *l = NULL;
	size_t f, k, tested = 0;

	(void)state;
	assert_int_equal(sl_decode(NULL, 0, &l), -EBADMSG);
	assert_null(l);
	for (f = 0; f < 2; f++) {
		char *text = slurp(files[f]), *cur = text, *s;

		while ((s = next_line(&cur))) {
			uint8_t *seg;
			size_t len;

			if (f == 0 && (s[0] == '[' || s[0] == '\0'))
				continue;
			if (f == 1 && strncmp(s, "cpython ", 8) != 0)
				continue;
			seg = unhex(f == 0 ? s : s + 8, &len);
			for (k = 0; k < len; k++) {
				char what[64];

				snprintf(what, sizeof what, "%s prefix %zu/%zu", files[f], k, len);
				expect_bad(seg, k, what);
				tested++;
			}
			free(seg);
		}
		free(text);
	}
	assert_true(tested > 1000);
}

static void test_bad_count(void **state)
{
	const int64_t bad[] = {
		-1, INT64_MIN, INT64_MAX, INT64_C(1) << 60,  /* 17N overflows */
		(int64_t)(UINT64_MAX / 17 + 1), 6,           /* 16 + 17*6 > 116 */
		5,                                           /* fits; off[5] is data */
	};
	uint8_t *seg, empty[16] = { 0 };
	size_t len, i;

	(void)state;
	seg = example(&len);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put64(seg, bad[i]);
		expect_bad(seg, len, "count");
	}
	/* The smallest list, and one byte short of it. */
	{
		struct vals none = { 0 };

		check_decode(empty, 16, &none, "[]");
		expect_bad(empty, 15, "[] - 1");
		put64(empty, 1);
		expect_bad(empty, 16, "N=1 in 16 bytes");
	}
	free(seg);
}

static void test_bad_offsets(void **state)
{
	const struct { size_t at; int64_t v; } bad[] = {
		{ 8, 8 }, { 8, -1 }, { 8, INT64_MIN },        /* off[0] != 0 */
		{ 16, -8 },                                   /* negative */
		{ 24, 4 },                                    /* decreasing */
		{ 40, 33 },                                   /* D one past the end */
		{ 40, INT64_MAX }, { 40, INT64_MIN }, { 40, -1 },
		{ 32, INT64_MAX },
		{ 16, 0 },                                    /* q in a 0-byte slot */
		{ 16, 4 },                                    /* q in a 4-byte slot */
	};
	uint8_t *seg, *orig;
	size_t len, i;

	(void)state;
	orig = example(&len);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seg = dup_exact(orig, len);
		put64(seg + bad[i].at, bad[i].v);
		expect_bad(seg, len, "offsets");
		free(seg);
	}
	free(orig);
}

/*
 * CPython 3.8's layout, which 3.9 replaced (bpo-38891; see the top of
 * core/sl.c): N, then N slot sizes.  Its [] is 8 bytes and the word we
 * read as off[0] is its first slot size, never 0.
 */
static void test_python38_refused(void **state)
{
	uint8_t *seg;
	size_t len;

	(void)state;
	seg = unhex("0300000000000000" "0800000000000000" "0800000000000000"
		    "0800000000000000" "0100000000000000" "feffffffffffffff"
		    "0300000000000000" "7100000000000000" "7100000000000000"
		    "7100000000000000" "000000", &len);
	assert_int_equal(len, 83);
	expect_bad(seg, len, "3.8 [1, -2, 3]");
	expect_bad(seg, 8, "3.8 []");
	free(seg);
}

static void set_fmt(uint8_t *seg, size_t i, const char *fmt, size_t fmtlen)
{
	memset(seg + EX_FS + 8 * i, 0, 8);
	memcpy(seg + EX_FS + 8 * i, fmt, fmtlen);
}

#define SET_FMT(seg, i, lit) set_fmt(seg, i, lit, sizeof(lit) - 1)

static void test_formats(void **state)
{
	static const struct { const char *f; size_t len; } bad[] = {
#define F(lit) { lit, sizeof(lit) - 1 }
		F("zz"), F("99999999"), F("9999999s"), F("s"), F("-8s"), F("+8s"),
		F("16s"), F("9s"), F("08s"), F(" 8s"), F("8s "), F("8 s"), F("8S"),
		F("8s\0x"), F("\0\0\0\0\0\0\0x"), F(""), F("q"), F("8p"), F("8ss"),
		F("\xff" "8s"), F("@8s"), F("<8s"),
#undef F
	};
	static const struct { const char *f; size_t len; } bad0[] = {
#define F(lit) { lit, sizeof(lit) - 1 }
		F("Q"), F("qq"), F("<q"), F("@q"), F("=q"), F("i"), F("l"), F("f"),
		F("7x?"), F("xxxxxxx"), F("xxxxxx?"), F("?"), F("q\0\0\0\0\0\0d"),
		F("0s0s"), F("xxxxx?xx"), F("xxxxxxx!"),
#undef F
	};
	uint8_t *orig, *seg;
	size_t len, i;

	(void)state;
	orig = example(&len);
	/* Item 1 is str 'ab' in an 8-byte slot. */
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seg = dup_exact(orig, len);
		set_fmt(seg, 1, bad[i].f, bad[i].len);
		expect_bad(seg, len, bad[i].f);
		free(seg);
	}
	/* Item 0 is int 7. */
	for (i = 0; i < sizeof bad0 / sizeof bad0[0]; i++) {
		seg = dup_exact(orig, len);
		set_fmt(seg, 0, bad0[i].f, bad0[i].len);
		expect_bad(seg, len, bad0[i].f);
		free(seg);
	}

	/* A count below the slot (another writer's true length) is read as such. */
	seg = dup_exact(orig, len);
	SET_FMT(seg, 1, "2s");
	expect_item(seg, 1, "str 6162", "2s");
	SET_FMT(seg, 1, "1s");
	expect_item(seg, 1, "str 61", "1s");
	SET_FMT(seg, 1, "0s");
	expect_item(seg, 1, "str -", "0s");
	SET_FMT(seg, 1, "8s");
	expect_item(seg, 1, "str 6162", "8s");

	/* Code 0 keeps what the format unpacks, whatever type that is. */
	SET_FMT(seg, 2, "8s");
	seg[EX_CS + 2] = 0;
	expect_item(seg, 2, "bytes 6364000000000000", "code 0 8s");
	SET_FMT(seg, 0, "d");
	expect_item(seg, 0, "float 0x0.0000000000007p-1022", "code 0 d");
	SET_FMT(seg, 0, "xxxxxxx?");
	expect_item(seg, 0, "bool 0", "code 0 bool, byte 7 is 0");
	seg[EX_DS + 7] = 0x80;
	expect_item(seg, 0, "bool 1", "code 0 bool, byte 7 non-zero");
	seg[EX_CS + 3] = 0;
	expect_item(seg, 3, "bool 0", "code 0 on None's format");
	seg[EX_DS + 24 + 6] = 2;
	expect_item(seg, 3, "bool 1", "code 0 on None's format, byte 6 set");

	/* Code 3 is None whatever the data and the (valid) format. */
	seg[EX_CS + 0] = 3;
	expect_item(seg, 0, "none", "code 3 on bool");
	SET_FMT(seg, 0, "q");
	expect_item(seg, 0, "none", "code 3 on q");
	SET_FMT(seg, 0, "zz");
	expect_bad(seg, len, "code 3 on a bad format");
	free(seg);
	free(orig);
}

static void test_codes(void **state)
{
	static const struct { size_t i; uint8_t code; } bad[] = {
		{ 1, 4 }, { 1, 0xff }, { 1, 0x80 }, { 1, 0x7f }, { 3, 4 },
		{ 0, 1 }, { 0, 2 },                  /* rstrip on an int */
		{ 3, 1 }, { 3, 2 },                  /* ... on a bool */
	};
	uint8_t *orig, *seg;
	size_t len, i;

	(void)state;
	orig = example(&len);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seg = dup_exact(orig, len);
		seg[EX_CS + bad[i].i] = bad[i].code;
		expect_bad(seg, len, "code");
		free(seg);
	}
	/* str and bytes differ only by their code. */
	seg = dup_exact(orig, len);
	seg[EX_CS + 2] = 1;
	expect_item(seg, 2, "str 6364", "bytes as str");
	seg[EX_CS + 1] = 2;
	expect_item(seg, 1, "bytes 6162", "str as bytes");
	free(seg);
	free(orig);
}

/*
 * An independent model of strict UTF-8: decode by bit pattern, then refuse
 * overlong forms, surrogates and code points past U+10FFFF.
 */
static bool ref_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0, k, j;
	uint32_t c, min;

	while (i < n) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, c &= 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, c &= 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, c &= 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (s[i + j] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Decodes `s` as the str item 1 of the example (8-byte slot, code 1). */
static void check_str_item(uint8_t *seg, const uint8_t *s, size_t n)
{
	struct sl_list *l = NULL;
	struct sl_value v;
	size_t stripped = n;
	bool valid;
	int rc;

	memset(seg + EX_DS + 8, 0, 8);
	memcpy(seg + EX_DS + 8, s, n);
	while (stripped > 0 && s[stripped - 1] == 0)
		stripped--;
	valid = ref_utf8(s, stripped);
	rc = sl_decode(seg, EX_LEN, &l);
	if (rc != (valid ? 0 : -EBADMSG))
		fail_msg("utf-8 %02x %02x %02x %02x (%zu): %d", s[0], n > 1 ? s[1] : 0,
			 n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, rc);
	if (valid) {
		v = str_value(SL_STR, s, stripped);
		assert_value(&l->v[1], &v, "utf-8", 1);
		sl_value_clear(&v);
		/* The same bytes as bytes are always fine. */
		assert_true(sl_fits(&l->v[1], 8));
		sl_list_free(l);
	}
	/* And what we refuse to read, we refuse to write. */
	v = str_value(SL_STR, s, stripped);
	assert_int_equal(sl_fits(&v, 8), valid);
	sl_value_clear(&v);
}

static void test_utf8(void **state)
{
	static const uint8_t alpha[] = {
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
		0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
		0xf4, 0xf5, 0xf8, 0xfe, 0xff,
	};
	const size_t na = sizeof alpha;
	uint8_t *seg, s[8];
	size_t len, a, b, c, i, k;

	(void)state;
	seg = example(&len);
	/* Every string of up to 3 bytes over the interesting alphabet... */
	for (a = 0; a < na; a++) {
		s[0] = alpha[a];
		check_str_item(seg, s, 1);
		for (b = 0; b < na; b++) {
			s[1] = alpha[b];
			check_str_item(seg, s, 2);
			for (c = 0; c < na; c++) {
				s[2] = alpha[c];
				check_str_item(seg, s, 3);
			}
		}
	}
	/* ... every 4-byte one with a multi-byte lead, every 2-byte string... */
	for (a = 0; a < na; a++) {
		if (alpha[a] < 0xe0)
			continue;
		s[0] = alpha[a];
		for (b = 0; b < na * na * na; b++) {
			s[1] = alpha[b % na];
			s[2] = alpha[b / na % na];
			s[3] = alpha[b / na / na];
			check_str_item(seg, s, 4);
		}
	}
	/* ... and random 4- to 8-byte ones. */
	for (a = 0; a < 65536; a++) {
		s[0] = (uint8_t)(a >> 8);
		s[1] = (uint8_t)a;
		check_str_item(seg, s, 2);
	}
	rng_seed(seed);
	for (i = 0; i < 20000; i++) {
		size_t n = 4 + rnd_below(5);

		for (k = 0; k < n; k++)
			s[k] = rnd() & 1 ? alpha[rnd_below(na)] : (uint8_t)rnd();
		check_str_item(seg, s, n);
	}
	free(seg);
}

/* ---- encoding limits and bad values -------------------------------------- */

static void test_encode_limits(void **state)
{
	struct vals in = { 0 };
	struct sl_list l;
	size_t size = 12345, big = 9999991, i;
	char *p;
	uint8_t *buf;

	(void)state;
	/* The empty list is 16 bytes. */
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), 0);
	assert_int_equal(size, 16);

	/* "9999992s" is the longest format: 9,999,991 bytes fit, one more does not. */
	p = xmalloc(big + 2);
	memset(p, 'x', big + 1);
	vals_push(&in, str_value(SL_BYTES, p, big));
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), 0);
	assert_int_equal(size, 16 + 17 + 9999992);
	buf = xmalloc(size);
	assert_int_equal(sl_encode(&l, buf, size), 0);
	assert_memory_equal(buf + 24 + 9999992, "9999992s", 8);
	free(buf);
	vals_free(&in);
	vals_push(&in, str_value(SL_STR, p, big + 1));
	l = as_list(&in);
	size = 12345;
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	assert_int_equal(size, 12345);
	vals_free(&in);
	/*
	 * 'é' * 4999995 (CPython's slot 5000000) needs a 9999992-byte slot to
	 * hold its UTF-8, the largest there is; one 'é' more, CPython would
	 * store truncated, and we refuse.
	 */
	for (i = 0; i < big + 1; i += 2)
		p[i] = (char)0xc3, p[i + 1] = (char)0xa9;
	vals_push(&in, str_value(SL_STR, p, 9999990));	/* 4999995 chars */
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), 0);
	assert_int_equal(size, 16 + 17 + 9999992);
	vals_free(&in);
	vals_push(&in, str_value(SL_STR, p, 9999992));
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	vals_free(&in);
	free(p);

	/* Lone surrogates and other non-UTF-8 cannot be encoded, as in CPython. */
	vals_push(&in, str_value(SL_STR, "\xed\xb2\x80", 3));
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	buf = xmalloc(16 + 17 + 8);
	memset(buf, 0xa5, 16 + 17 + 8);
	assert_int_equal(sl_encode(&l, buf, 16 + 17 + 8), -EINVAL);
	assert_int_equal(buf[0], 0xa5);
	free(buf);
	vals_free(&in);

	/* Lengths so absurd that slot arithmetic would wrap (never read). */
	vals_push(&in, (struct sl_value){ .type = SL_BYTES, .u.s = { (char *)"", SIZE_MAX } });
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	assert_false(sl_fits(&in.v[0], UINT64_MAX));
	in.v[0].u.s.len = SIZE_MAX - 7;
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	in.v[0].type = SL_NONE;
	vals_free(&in);

	/* Not a type at all. */
	vals_push(&in, parse_value("int 1"));
	in.v[0].type = (enum sl_type)42;
	l = as_list(&in);
	assert_int_equal(sl_encoded_size(&l, &size), -EINVAL);
	assert_false(sl_fits(&in.v[0], 8));
	in.v[0].type = SL_INT;
	vals_free(&in);
}

/* ---- assignment edges ------------------------------------------------------ */

static void test_assign_edges(void **state)
{
	struct sl_value v;
	struct sl_list *l;
	uint8_t *orig, *seg;
	size_t len;

	(void)state;
	orig = example(&len);

	/* No allocation: assignment works with the allocator failing. */
	seg = dup_exact(orig, len);
	seg_alloc_fail_after(0);
	v = (struct sl_value){ .type = SL_INT, .u.i = -5 };
	assert_int_equal(sl_assign(seg, len, 3, &v), 0);
	seg_alloc_fail_reset();
	expect_item(seg, 3, "int -5", "assign int");
	assert_int_equal(seg[EX_CS + 3], 0);
	assert_memory_equal(seg + EX_FS + 24, "q\0\0\0\0\0\0\0", 8);

	/* Out of range, and a header gone bad since decoding: nothing written. */
	memcpy(seg, orig, len);
	assert_int_equal(sl_assign(seg, len, 4, &v), -ERANGE);
	assert_int_equal(sl_assign(seg, len, SIZE_MAX, &v), -ERANGE);
	put64(seg + 24, 4);
	assert_int_equal(sl_assign(seg, len, 0, &v), -EBADMSG);
	memcpy(seg, orig, len);
	assert_int_equal(sl_assign(seg, len - 1, 0, &v), -EBADMSG);
	assert_int_equal(sl_assign(seg, 0, 0, &v), -EBADMSG);
	assert_memory_equal(seg, orig, len);

	/* Too long: -ENOSPC, nothing written; exactly the slot: no NUL left. */
	v = str_value(SL_STR, "123456789", 9);
	assert_false(sl_fits(&v, 8));
	assert_int_equal(sl_assign(seg, len, 1, &v), -ENOSPC);
	assert_memory_equal(seg, orig, len);
	v.u.s.len = 8;
	assert_true(sl_fits(&v, 8));
	assert_int_equal(sl_assign(seg, len, 1, &v), 0);
	assert_memory_equal(seg + EX_DS + 8, "12345678", 8);
	sl_value_clear(&v);

	/* Invalid UTF-8 is refused before anything is written. */
	memcpy(seg, orig, len);
	v = str_value(SL_STR, "\xc3", 1);
	assert_int_equal(sl_assign(seg, len, 1, &v), -EINVAL);
	assert_memory_equal(seg, orig, len);
	v.type = SL_BYTES;
	assert_int_equal(sl_assign(seg, len, 1, &v), 0);
	sl_value_clear(&v);

	/*
	 * Another writer's short "2s" in the 8-byte slot: CPython would keep
	 * it and cut the value to 2 bytes; we write "8s" and keep all of it.
	 */
	memcpy(seg, orig, len);
	SET_FMT(seg, 1, "2s");
	v = str_value(SL_STR, "wxyz", 4);
	assert_int_equal(sl_assign(seg, len, 1, &v), 0);
	assert_memory_equal(seg + EX_FS + 8, "8s\0\0\0\0\0\0", 8);
	expect_item(seg, 1, "str 7778797a", "short format replaced");
	sl_value_clear(&v);

	/* A scalar cannot go in a slot under 8 bytes (CPython would spill). */
	memcpy(seg, orig, len);
	put64(seg + 16, 4);                     /* item 0: 4 bytes, item 1: 4 */
	SET_FMT(seg, 0, "4s");
	seg[EX_CS] = 2;
	SET_FMT(seg, 1, "4s");
	assert_int_equal(sl_decode(seg, len, &l), 0);
	assert_int_equal(l->slot[0], 4);
	sl_list_free(l);
	v = (struct sl_value){ .type = SL_NONE };
	assert_false(sl_fits(&v, 4));
	assert_int_equal(sl_assign(seg, len, 0, &v), -ENOSPC);
	v = str_value(SL_BYTES, "abcd", 4);
	assert_int_equal(sl_assign(seg, len, 0, &v), 0);
	sl_value_clear(&v);

	/* Bytes past the layout are neither read nor written. */
	free(seg);
	seg = xmalloc(len + 8);
	memcpy(seg, orig, len);
	memset(seg + len, 0xee, 8);
	v = str_value(SL_STR, "", 0);
	assert_int_equal(sl_assign(seg, len + 8, 3, &v), 0);
	assert_memory_equal(seg + EX_DS + 24, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(seg[EX_CS + 3], 1);
	assert_int_equal(seg[len], 0xee);
	assert_int_equal(seg[len + 7], 0xee);
	sl_value_clear(&v);

	/* A huge slot, possible only from another writer, takes no str. */
	v = str_value(SL_BYTES, "a", 1);
	assert_false(sl_fits(&v, 10000000));
	assert_true(sl_fits(&v, 9999999));
	sl_value_clear(&v);
	free(seg);
	free(orig);
}

/* ---- allocation failures ------------------------------------------------- */

/*
 * Fails the 1st, 2nd, ... allocation of sl_decode until it succeeds: each
 * time -ENOMEM, *out untouched, nothing leaked (ASan and valgrind check).
 */
static void test_decode_enomem(void **state)
{
	struct sl_list *l, *sentinel = (struct sl_list *)&sentinel;
	uint8_t *seg;
	size_t len;
	long n;
	int rc;
	char *text = slurp("shareablelist_vectors.txt"), *cur = text, *s;

	(void)state;
	/* The ['héllo', ..., b'x'*17] vector: a list, values, slots, 2 strings. */
	while ((s = next_line(&cur)) && strncmp(s, "['h\xc3\xa9llo'", 9) != 0)
		;
	assert_non_null(s);
	seg = unhex(next_line(&cur), &len);
	for (n = 0;; n++) {
		l = sentinel;
		seg_alloc_fail_after(n);
		rc = sl_decode(seg, len, &l);
		seg_alloc_fail_reset();
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_ptr_equal(l, sentinel);
	}
	assert_int_equal(n, 5);
	assert_int_equal(l->n, 6);
	sl_list_free(l);
	sl_list_free(NULL);

	/* Encoding never allocates. */
	{
		struct vals in = { 0 };
		struct sl_list el;
		size_t size;
		uint8_t *buf;

		vals_push(&in, parse_value("str 68c3a96c6c6f"));
		el = as_list(&in);
		seg_alloc_fail_after(0);
		assert_int_equal(sl_encoded_size(&el, &size), 0);
		buf = xmalloc(size);
		assert_int_equal(sl_encode(&el, buf, size), 0);
		assert_true(sl_fits(&in.v[0], 8));
		seg_alloc_fail_reset();
		free(buf);
		vals_free(&in);
	}
	free(seg);
	free(text);
}

/* ---- seeded differential test against a model -------------------------- */

static size_t rnd_utf8(uint8_t *p)
{
	uint32_t c;

	switch (rnd_below(6)) {
	case 0:
		p[0] = 0;               /* NULs: embedded and trailing */
		return 1;
	case 1:
	case 2:
		p[0] = (uint8_t)(0x20 + rnd_below(0x5f));
		return 1;
	case 3:
		c = 0x80 + (uint32_t)rnd_below(0x800 - 0x80);
		p[0] = (uint8_t)(0xc0 | c >> 6);
		p[1] = (uint8_t)(0x80 | (c & 0x3f));
		return 2;
	case 4:
		do
			c = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800);
		while (c >= 0xd800 && c <= 0xdfff);
		p[0] = (uint8_t)(0xe0 | c >> 12);
		p[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		p[2] = (uint8_t)(0x80 | (c & 0x3f));
		return 3;
	default:
		c = 0x10000 + (uint32_t)rnd_below(0x110000 - 0x10000);
		p[0] = (uint8_t)(0xf0 | c >> 18);
		p[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
		p[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		p[3] = (uint8_t)(0x80 | (c & 0x3f));
		return 4;
	}
}

static struct sl_value rnd_value(void)
{
	static const int64_t ints[] = { 0, 1, -1, INT64_MAX, INT64_MIN };
	struct sl_value v = { .type = (enum sl_type)rnd_below(6) };
	uint8_t buf[200];
	size_t len = 0, want;
	uint64_t bits;

	switch (v.type) {
	case SL_NONE:
		break;
	case SL_BOOL:
		v.u.b = rnd() & 1;
		break;
	case SL_INT:
		v.u.i = rnd() & 1 ? (int64_t)rnd() : ints[rnd_below(5)];
		break;
	case SL_FLOAT:
		bits = rnd();
		memcpy(&v.u.d, &bits, sizeof bits);
		break;
	case SL_STR:
		want = rnd_below(4) ? rnd_below(20) : rnd_below(40);
		while (len < want)
			len += rnd_utf8(buf + len);
		v = str_value(SL_STR, buf, len);
		break;
	case SL_BYTES:
		len = rnd_below(4) ? rnd_below(20) : rnd_below(150);
		for (want = 0; want < len; want++)
			buf[want] = rnd() & 1 ? 0 : (uint8_t)rnd();
		v = str_value(SL_BYTES, buf, len);
		break;
	}
	return v;
}

/* What CPython reads back of a value we wrote: trailing NULs stripped. */
static struct sl_value model_read(const struct sl_value *v)
{
	size_t len;

	if (v->type != SL_STR && v->type != SL_BYTES)
		return *v;
	len = v->u.s.len;
	while (len > 0 && v->u.s.p[len - 1] == '\0')
		len--;
	return str_value(v->type, v->u.s.p, len);
}

/* The model's slot: CPython's sizing, by bytes when the UTF-8 outgrows it. */
static uint64_t model_slot(const struct sl_value *v)
{
	size_t chars = 0, i;
	uint64_t slot;

	if (v->type == SL_BYTES)
		return 8 * (v->u.s.len / 8 + 1);
	if (v->type != SL_STR)
		return 8;
	for (i = 0; i < v->u.s.len; i++)
		chars += ((uint8_t)v->u.s.p[i] & 0xc0) != 0x80;
	slot = 8 * (chars / 8 + 1);
	return v->u.s.len > slot ? 8 * (v->u.s.len / 8 + 1) : slot;
}

static void test_differential(void **state)
{
	size_t round, i, k, size, expect_size;
	struct vals in, model;
	uint64_t *slots;
	struct sl_list l, *got;
	uint8_t *seg;

	(void)state;
	rng_seed(seed);
	for (round = 0; round < 300; round++) {
		size_t n = rnd_below(4) ? rnd_below(8) : rnd_below(60);

		memset(&in, 0, sizeof in);
		memset(&model, 0, sizeof model);
		slots = xmalloc((n + 1) * sizeof *slots);
		expect_size = 16;
		for (i = 0; i < n; i++) {
			vals_push(&in, rnd_value());
			vals_push(&model, model_read(&in.v[i]));
			slots[i] = model_slot(&in.v[i]);
			expect_size += 17 + slots[i];
		}
		l = as_list(&in);
		assert_int_equal(sl_encoded_size(&l, &size), 0);
		assert_int_equal(size, expect_size);
		seg = xmalloc(size);
		assert_int_equal(sl_encode(&l, seg, size), 0);
		check_decode(seg, size, &model, "differential encode");

		/* Random assignments, each checked against the model. */
		for (k = 0; k < 40 && n > 0; k++) {
			struct sl_value v = rnd_value();
			bool fits;
			int rc;

			i = rnd_below(n);
			fits = v.type == SL_STR || v.type == SL_BYTES ?
			       v.u.s.len <= slots[i] : slots[i] >= 8;
			assert_int_equal(sl_fits(&v, slots[i]), fits);
			rc = sl_assign(seg, size, i, &v);
			assert_int_equal(rc, fits ? 0 : -ENOSPC);
			if (fits) {
				sl_value_clear(&model.v[i]);
				model.v[i] = model_read(&v);
			}
			if (v.type == SL_STR || v.type == SL_BYTES)
				sl_value_clear(&v);
			assert_int_equal(sl_assign(seg, size, n, &model.v[0]), -ERANGE);
		}
		assert_int_equal(sl_decode(seg, size, &got), 0);
		for (i = 0; i < n; i++) {
			assert_value(&got->v[i], &model.v[i], "differential", i);
			assert_int_equal(got->slot[i], slots[i]);
		}
		sl_list_free(got);
		free(seg);
		free(slots);
		vals_free(&in);
		vals_free(&model);
	}
}

/*
 * sl_assign_all writes exactly the bytes of successive sl_assign calls, and
 * refuses a list that does not fit, or has another count, writing nothing.
 */
static void test_assign_all(void **state)
{
	size_t round, i, size;
	struct vals a, b;
	struct sl_list la, lb;
	uint8_t *seg, *one, *all;

	(void)state;
	rng_seed(seed + 1);
	for (round = 0; round < 200; round++) {
		size_t n = 1 + rnd_below(30);
		struct sl_value big = { .type = SL_BYTES };

		memset(&a, 0, sizeof a);
		memset(&b, 0, sizeof b);
		for (i = 0; i < n; i++)
			vals_push(&a, rnd_value());
		la = as_list(&a);
		assert_int_equal(sl_encoded_size(&la, &size), 0);
		seg = xmalloc(size);
		one = xmalloc(size);
		all = xmalloc(size);
		assert_int_equal(sl_encode(&la, seg, size), 0);
		for (i = 0; i < n; i++) {
			struct sl_value v = rnd_value();

			while (!sl_fits(&v, model_slot(&a.v[i]))) {
				if (v.type == SL_STR || v.type == SL_BYTES)
					sl_value_clear(&v);
				v = rnd_value();
			}
			vals_push(&b, v);
		}
		lb = as_list(&b);
		memcpy(one, seg, size);
		memcpy(all, seg, size);
		for (i = 0; i < n; i++)
			assert_int_equal(sl_assign(one, size, i, &b.v[i]), 0);
		assert_int_equal(sl_assign_all(all, size, &lb), 0);
		assert_memory_equal(one, all, size);

		/* One value too long for its slot: nothing at all is written. */
		memcpy(all, seg, size);
		big.u.s.len = model_slot(&a.v[n - 1]) + 1;
		big.u.s.p = xmalloc(big.u.s.len + 1);
		memset(big.u.s.p, 'x', big.u.s.len);
		big.u.s.p[big.u.s.len] = '\0';
		sl_value_clear(&b.v[n - 1]);
		b.v[n - 1] = big;
		assert_int_equal(sl_assign_all(all, size, &lb), -ENOSPC);
		assert_memory_equal(all, seg, size);
		lb.n = n - 1;
		assert_int_equal(sl_assign_all(all, size, &lb), -ERANGE);
		assert_memory_equal(all, seg, size);

		free(seg);
		free(one);
		free(all);
		vals_free(&a);
		vals_free(&b);
	}
}

/* ---- fuzz ------------------------------------------------------------------ */

/*
 * Whatever sl_decode accepts must be self-consistent: every value fits its
 * own slot, and assigning it back in place gives a segment that decodes to
 * the same value (bytes losing trailing NULs, since code 2 strips them).
 */
static bool huge_str(const struct sl_list *l, size_t i)
{
	return l->slot[i] > 9999999 &&
	       (l->v[i].type == SL_STR || l->v[i].type == SL_BYTES);
}

static void check_accepted(const uint8_t *seg, size_t size, const struct sl_list *l)
{
	uint8_t *copy = dup_exact(seg, size);
	struct sl_list *again;
	struct sl_value want;
	size_t i;
	int rc;

	assert_true(l->n <= (size - 16) / 17);
	for (i = 0; i < l->n; i++) {
		/* Only another writer makes slots over "9999999s": no str there. */
		if (huge_str(l, i)) {
			assert_false(sl_fits(&l->v[i], l->slot[i]));
			continue;
		}
		assert_true(sl_fits(&l->v[i], l->slot[i]));
		rc = sl_assign(copy, size, i, &l->v[i]);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(sl_decode(copy, size, &again), 0);
	assert_int_equal(again->n, l->n);
	for (i = 0; i < l->n; i++) {
		if (huge_str(l, i))
			continue;
		want = model_read(&l->v[i]);
		assert_value(&again->v[i], &want, "re-assigned", i);
		if (want.type == SL_STR || want.type == SL_BYTES)
			sl_value_clear(&want);
	}
	sl_list_free(again);
	free(copy);
}

static void fuzz_one(uint8_t *seg, size_t size, size_t *accepted)
{
	struct sl_list *l = NULL;
	struct sl_value v;
	uint8_t *copy;
	int rc;

	rc = sl_decode(seg, size, &l);
	if (rc != 0 && rc != -EBADMSG)
		fail_msg("fuzz: sl_decode gives %d", rc);
	if (rc == 0) {
		check_accepted(seg, size, l);
		sl_list_free(l);
		++*accepted;
	}
	/* Assignment into whatever this is: never out of bounds. */
	if (rnd_below(4) == 0) {
		copy = dup_exact(seg, size);
		v = rnd_value();
		rc = sl_assign(copy, size, rnd_below(6), &v);
		if (rc != 0 && rc != -EBADMSG && rc != -ERANGE && rc != -ENOSPC)
			fail_msg("fuzz: sl_assign gives %d", rc);
		if (v.type == SL_STR || v.type == SL_BYTES)
			sl_value_clear(&v);
		free(copy);
	}
}

static void mutate(uint8_t *p, size_t size)
{
	static const uint8_t bytes[] = {
		0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 'q', 'd', 'x', '?', 's', '0', '8', '9',
		0xc3, 0xa9, 0xed, 0xf4,
	};
	static const int64_t words[] = {
		0, 1, -1, 8, 16, INT64_MAX, INT64_MIN, 0x7fffffff, -8, 1 << 20,
	};
	size_t at, k, nmut = 1 + rnd_below(4);
	int64_t w;

	for (k = 0; k < nmut && size > 0; k++) {
		at = rnd_below(size);
		switch (rnd_below(4)) {
		case 0:
			p[at] ^= (uint8_t)(1u << rnd_below(8));
			break;
		case 1:
			p[at] = bytes[rnd_below(sizeof bytes)];
			break;
		case 2:
			p[at] = (uint8_t)rnd();
			break;
		default:
			/* An aligned int64 field: N or an offset, most likely. */
			at &= ~(size_t)7;
			if (at + 8 > size)
				break;
			w = rnd_below(3) ? words[rnd_below(sizeof words / sizeof words[0])] :
			    (int64_t)rnd_below(size + 8) - 4;
			put64(p + at, w);
			break;
		}
	}
}

static void test_fuzz(void **state)
{
	uint8_t *bases[64], *seg;
	size_t lens[64], nbases = 0, i, size, accepted = 0;
	char *text = slurp("sl_codec_vectors.txt"), *cur = text, *s;
	struct vals in;
	struct sl_list l;

	(void)state;
	rng_seed(seed ^ 0xf022);
	while ((s = next_line(&cur)) && nbases < 32)
		if (strncmp(s, "cpython ", 8) == 0) {
			bases[nbases] = unhex(s + 8, &lens[nbases]);
			nbases++;
		}
	free(text);
	/* Plus freshly encoded random lists. */
	while (nbases < 64) {
		size_t n = rnd_below(6);

		memset(&in, 0, sizeof in);
		for (i = 0; i < n; i++)
			vals_push(&in, rnd_value());
		l = as_list(&in);
		assert_int_equal(sl_encoded_size(&l, &lens[nbases]), 0);
		bases[nbases] = xmalloc(lens[nbases]);
		assert_int_equal(sl_encode(&l, bases[nbases], lens[nbases]), 0);
		nbases++;
		vals_free(&in);
	}

	for (i = 0; i < 200000; i++) {
		if (i % 8 == 0) {
			/* Random bytes, often with a plausible N in front. */
			size = rnd_below(120);
			seg = xmalloc(size);
			for (size_t k = 0; k < size; k++)
				seg[k] = (uint8_t)rnd();
			if (size >= 8 && rnd() & 1)
				put64(seg, (int64_t)rnd_below(6));
		} else {
			size_t b = rnd_below(nbases);

			size = lens[b];
			/* Sometimes truncated, sometimes padded. */
			if (rnd_below(8) == 0)
				size = rnd_below(size + 1);
			else if (rnd_below(8) == 0)
				size += rnd_below(16);
			seg = xmalloc(size);
			memset(seg, 0, size);
			memcpy(seg, bases[b], size < lens[b] ? size : lens[b]);
			mutate(seg, size);
		}
		fuzz_one(seg, size, &accepted);
		free(seg);
	}
	printf("test_sl: fuzz: %zu of 200000 segments accepted\n", accepted);
	/* The mutations must leave enough valid segments to exercise check_accepted. */
	assert_true(accepted > 10000);
	for (i = 0; i < nbases; i++)
		free(bases[i]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_vectors),
		cmocka_unit_test(test_codec_vectors),
		cmocka_unit_test(test_assign_vectors),
		cmocka_unit_test(test_header_example),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_bad_count),
		cmocka_unit_test(test_bad_offsets),
		cmocka_unit_test(test_python38_refused),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_assign_edges),
		cmocka_unit_test(test_decode_enomem),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_assign_all),
		cmocka_unit_test(test_fuzz),
	};

	if (argc > 1)
		seed = strtoul(argv[1], NULL, 0);
	printf("test_sl: random seed %lu\n", seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
