/*
 * Unit tests of core/sltext.c: repr() against CPython's own output
 * (tests/data/text_repr_vectors.txt), parse(repr(v)) == v for all of them,
 * the parser's accepted and refused spellings with CPython's values
 * (tests/data/text_parse_vectors.txt), line handling of sl_parse, a seeded
 * random render/parse round trip, and allocation failures.
 * scripts/gen_text_vectors.py makes both data files.
 *
 * Only sltext.h is called: the lists and values made here are freed by
 * hand, so this test does not depend on sl.c.
 *
 * Usage: test_sltext [SEED]   (the random round trip's seed)
 */
#include <errno.h>
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
#include "core/sltext.h"

static unsigned long seed = 20261122;

/* ---- helpers ---------------------------------------------------------- */


static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes hex (or "-" for empty) into a new seg_malloc'ed, NUL-ended buffer. */
static char *unhex(const char *h, size_t *len)
{
	size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h);
	char *p;

	assert_int_equal(n % 2, 0);
	p = seg_malloc(n / 2 + 1);
	assert_non_null(p);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);

		assert_true(hi >= 0 && lo >= 0);
		p[i] = (char)(hi << 4 | lo);
	}
	p[n / 2] = '\0';
	*len = n / 2;
	return p;
}

static uint64_t hex64(const char *h)
{
	assert_int_equal(strlen(h), 16);
	return strtoull(h, NULL, 16);
}

/* A value from the TYPE and PAYLOAD fields of the vector files. */
static void value_from(const char *type, const char *pl, struct sl_value *v)
{
	uint64_t u;

	memset(v, 0, sizeof(*v));
	switch (type[0]) {
	case 'N':
		v->type = SL_NONE;
		break;
	case 'B':
		v->type = SL_BOOL;
		v->u.b = pl[0] == '1';
		break;
	case 'I':
		v->type = SL_INT;
		u = hex64(pl);
		memcpy(&v->u.i, &u, sizeof(u));
		break;
	case 'F':
		v->type = SL_FLOAT;
		u = hex64(pl);
		memcpy(&v->u.d, &u, sizeof(u));
		break;
	case 'S':
	case 'Y':
		v->type = type[0] == 'S' ? SL_STR : SL_BYTES;
		v->u.s.p = unhex(pl, &v->u.s.len);
		break;
	default:
		fail_msg("bad vector type %s", type);
	}
}

/* Reads a data file whole; the caller frees it with free(). */
static char *slurp(const char *name, size_t *len)
{
	const char *dir = getenv("SEGFS_TESTDATA");
	char path[4096];
	FILE *f;
	char *p;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s (set SEGFS_TESTDATA)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p[n] = '\0';
	*len = (size_t)n;
	return p;
}

/* Splits the next line of *pos in place; NULL at the end. */
static char *next_line(char **pos)
{
	char *line = *pos, *nl;

	if (*line == '\0')
		return NULL;
	nl = strchr(line, '\n');
	if (nl != NULL) {
		*nl = '\0';
		*pos = nl + 1;
	} else {
		*pos = line + strlen(line);
	}
	return line;
}

/* Splits off the next space-separated field of *pos in place. */
static char *next_field(char **pos)
{
	char *f = *pos, *sp = strchr(f, ' ');

	if (sp != NULL) {
		*sp = '\0';
		*pos = sp + 1;
	} else {
		*pos = f + strlen(f);
	}
	return f;
}

static char *repr_of(const struct sl_value *v)
{
	struct sl_buf b = { 0 };

	assert_int_equal(sl_repr(v, &b), 0);
	assert_int_equal(strlen(b.p), b.len);
	return b.p;
}

/* ---- repr ------------------------------------------------------------- */

/* sltext.h's examples and more of repr()'s corner cases, readable here. */
static void test_repr_examples(void **state)
{
	static const struct {
		struct sl_value v;
		const char *repr;
	} t[] = {
		{ { .type = SL_INT, .u.i = 42 }, "42" },
		{ { .type = SL_INT, .u.i = INT64_MIN }, "-9223372036854775808" },
		{ { .type = SL_FLOAT, .u.d = -0.0 }, "-0.0" },
		{ { .type = SL_FLOAT, .u.d = 2.5 }, "2.5" },
		{ { .type = SL_FLOAT, .u.d = 2.0 }, "2.0" },
		{ { .type = SL_FLOAT, .u.d = 1e-05 }, "1e-05" },
		{ { .type = SL_FLOAT, .u.d = 1e-4 }, "0.0001" },
		{ { .type = SL_FLOAT, .u.d = 1e16 }, "1e+16" },
		{ { .type = SL_FLOAT, .u.d = 1e15 }, "1000000000000000.0" },
		{ { .type = SL_FLOAT, .u.d = 1.5e-7 }, "1.5e-07" },
		{ { .type = SL_FLOAT, .u.d = 3e300 }, "3e+300" },
		{ { .type = SL_FLOAT, .u.d = 0.1 }, "0.1" },
		{ { .type = SL_FLOAT, .u.d = INFINITY }, "inf" },
		{ { .type = SL_FLOAT, .u.d = -INFINITY }, "-inf" },
		{ { .type = SL_FLOAT, .u.d = NAN }, "nan" },
		{ { .type = SL_FLOAT, .u.d = -NAN }, "nan" },
		{ { .type = SL_BOOL, .u.b = true }, "True" },
		{ { .type = SL_BOOL, .u.b = false }, "False" },
		{ { .type = SL_NONE }, "None" },
		{ { .type = SL_STR, .u.s = { "it's", 4 } }, "\"it's\"" },
		{ { .type = SL_STR, .u.s = { "it's \"x\"", 8 } }, "'it\\'s \"x\"'" },
		{ { .type = SL_STR, .u.s = { "\0\n\x7f", 3 } }, "'\\x00\\n\\x7f'" },
		{ { .type = SL_STR, .u.s = { "\xc3\xa9", 2 } }, "'\xc3\xa9'" },
		{ { .type = SL_STR, .u.s = { "\xc2\xad\xe2\x80\xa8", 5 } }, "'\\xad\\u2028'" },
		{ { .type = SL_STR, .u.s = { "\xf3\xa0\x80\x81", 4 } }, "'\\U000e0001'" },
		/* Not UTF-8: cannot come from sl_decode, but must not crash. */
		{ { .type = SL_STR, .u.s = { "a\xff", 2 } }, "'a\\udcff'" },
		{ { .type = SL_BYTES, .u.s = { "\0ab", 3 } }, "b'\\x00ab'" },
		{ { .type = SL_BYTES, .u.s = { "'\xff", 2 } }, "b\"'\\xff\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *r = repr_of(&t[i].v);

		assert_string_equal(r, t[i].repr);
		seg_free(r);
	}
}

/*
 * Every vector: repr() must be CPython's byte for byte, and parsing it
 * must give the value back.  Mismatches are all printed before failing.
 */
static void test_repr_vectors(void **state)
{
	size_t len, count = 0, bad = 0;
	char *text = slurp("text_repr_vectors.txt", &len), *pos = text, *line;

	(void)state;
	while ((line = next_line(&pos)) != NULL) {
		char *type, *pl, *r;
		struct sl_value v, back;
		int rc;

		if (line[0] == '#')
			continue;
		type = next_field(&line);
		pl = next_field(&line);
		value_from(type, pl, &v);
		r = repr_of(&v);
		if (strcmp(r, line) != 0 && bad++ < 20)
			print_error("repr %s %s: got %s, CPython %s\n", type, pl, r, line);
		rc = sl_parse_value(r, strlen(r), &back);
		if (rc != 0 || !slv_equal(&v, &back)) {
			if (bad++ < 20)
				print_error("parse(repr) %s %s: rc %d for %s\n", type, pl, rc, r);
		}
		if (rc == 0)
			sl_value_clear(&back);
		sl_value_clear(&v);
		seg_free(r);
		count++;
	}
	free(text);
	assert_true(count > 10000);
	assert_int_equal(bad, 0);
}

/*
 * sl_repr appends; when the buffer must grow and cannot, it fails with
 * the buffer exactly as it was.  Each append is first tried with every
 * allocation failing: it succeeds only if it needed no growth.
 */
static void test_repr_appends_and_enomem(void **state)
{
	struct sl_value s = { .type = SL_STR, .u.s = { "\xc3\xa9\n'\"", 5 } };
	struct sl_value i = { .type = SL_INT, .u.i = -5 };
	struct sl_buf b = { 0 };
	int failures = 0;

	(void)state;
	assert_int_equal(sl_repr(&i, &b), 0);
	for (int k = 0; k < 100; k++) {
		char *before = seg_malloc(b.len + 1), *p = b.p;
		size_t blen = b.len, cap = b.cap;
		int rc;

		assert_non_null(before);
		memcpy(before, b.p, b.len);
		seg_alloc_fail_after(0);
		rc = sl_repr(&s, &b);
		seg_alloc_fail_reset();
		if (rc < 0) {
			assert_int_equal(rc, -ENOMEM);
			assert_true(p == b.p && blen == b.len && cap == b.cap);
			assert_memory_equal(b.p, before, blen);
			failures++;
			assert_int_equal(sl_repr(&s, &b), 0);
		}
		/* One quote kind is escaped when the text holds both. */
		assert_int_equal(b.len, blen + 9);
		assert_memory_equal(b.p + blen, "'\xc3\xa9\\n\\'\"'", 9);
		assert_int_equal(b.p[b.len], '\0');
		seg_free(before);
	}
	assert_memory_equal(b.p, "-5'", 3);
	assert_true(failures >= 3);
	seg_free(b.p);
}

/* ---- parse ------------------------------------------------------------ */

/*
 * The spellings of text_parse_vectors.txt: each "ok" one gives CPython's
 * value, each "bad" one -EINVAL with the output untouched.
 */
static void test_parse_vectors(void **state)
{
	size_t len, nok = 0, nbad = 0, failed = 0;
	char *text = slurp("text_parse_vectors.txt", &len), *pos = text, *line, *comment = "";

	(void)state;
	while ((line = next_line(&pos)) != NULL) {
		char *kind, *sp;
		struct sl_value want, got;
		size_t slen;
		int rc;

		if (line[0] == '#') {
			comment = line;
			continue;
		}
		kind = next_field(&line);
		memset(&got, 0x5a, sizeof(got));
		if (strcmp(kind, "ok") == 0) {
			char *type = next_field(&line), *pl = next_field(&line);

			value_from(type, pl, &want);
			sp = unhex(line, &slen);
			rc = sl_parse_value(sp, slen, &got);
			if (rc != 0 || !slv_equal(&want, &got)) {
				print_error("%s: rc %d\n", comment, rc);
				failed++;
			}
			if (rc == 0)
				sl_value_clear(&got);
			sl_value_clear(&want);
			nok++;
		} else {
			struct sl_value untouched;

			assert_string_equal(kind, "bad");
			memset(&untouched, 0x5a, sizeof(untouched));
			sp = unhex(line, &slen);
			rc = sl_parse_value(sp, slen, &got);
			if (rc != -EINVAL || memcmp(&got, &untouched, sizeof(got)) != 0) {
				print_error("%s: rc %d, want -EINVAL\n", comment, rc);
				failed++;
				if (rc == 0)
					sl_value_clear(&got);
			}
			nbad++;
		}
		seg_free(sp);
	}
	free(text);
	assert_true(nok > 150 && nbad > 100);
	assert_int_equal(failed, 0);
}

/* What the vectors cannot say: signs of zeros and NaNs, lengths not strlen. */
static void test_parse_details(void **state)
{
	struct sl_value v;

	(void)state;
	assert_int_equal(sl_parse_value("-nan", 4, &v), 0);
	assert_true(isnan(v.u.d) && signbit(v.u.d));
	assert_int_equal(sl_parse_value("nan", 3, &v), 0);
	assert_true(isnan(v.u.d) && !signbit(v.u.d));
	assert_int_equal(sl_parse_value("-0.0", 4, &v), 0);
	assert_true(v.u.d == 0 && signbit(v.u.d));
	assert_int_equal(sl_parse_value("-0", 2, &v), 0);
	assert_int_equal(v.type, SL_INT);
	assert_int_equal(v.u.i, 0);

	/* The length bounds the literal: what follows is not read. */
	assert_int_equal(sl_parse_value("12345", 2, &v), 0);
	assert_int_equal(v.u.i, 12);
	assert_int_equal(sl_parse_value("1.5e10", 3, &v), 0);
	assert_true(v.u.d == 1.5);
	assert_int_equal(sl_parse_value("'ab'c", 4, &v), 0);
	assert_int_equal(v.u.s.len, 2);
	assert_string_equal(v.u.s.p, "ab");
	sl_value_clear(&v);
	assert_int_equal(sl_parse_value("'ab'", 3, &v), -EINVAL);

	/* Embedded NULs come from escapes, and p[len] is a NUL. */
	assert_int_equal(sl_parse_value("b'a\\x00b'", 9, &v), 0);
	assert_int_equal(v.type, SL_BYTES);
	assert_int_equal(v.u.s.len, 3);
	assert_memory_equal(v.u.s.p, "a\0b", 4);
	sl_value_clear(&v);
}

static struct sl_list *parse_ok(const char *text, size_t n)
{
	struct sl_list *l = NULL;
	size_t bad = 12345;

	assert_int_equal(sl_parse(text, strlen(text), &l, &bad), 0);
	assert_non_null(l);
	assert_int_equal(l->n, n);
	assert_null(l->slot);
	assert_int_equal(bad, 12345);
	return l;
}

static void test_parse_lines(void **state)
{
	static const struct {
		const char *text;
		size_t line;
	} bad[] = {
		{ "x", 1 },
		{ "1\nx\n3", 2 },
		{ "1\n\n\nx", 4 },
		{ "  \n\t\n1\n2\n'a\n'b'", 5 },
		{ "1\r\nx\r\n", 2 },
		{ "1\nbad\nworse\n", 2 },
		{ "\n\n\n'\\N{DASH}'\n", 4 },
		{ "1\n2\n3\n4 4", 4 },
	};
	struct sl_list *l;
	size_t line;

	(void)state;
	l = parse_ok("", 0);
	sl_list_free(l);
	l = parse_ok("\n \n\t\r\n", 0);
	sl_list_free(l);

	/* Blank lines are skipped; the last newline is optional; CRLF reads. */
	l = parse_ok("\n42\n\n  'a b'  \n2.5", 3);
	assert_int_equal(l->v[0].type, SL_INT);
	assert_int_equal(l->v[0].u.i, 42);
	assert_int_equal(l->v[1].type, SL_STR);
	assert_string_equal(l->v[1].u.s.p, "a b");
	assert_true(l->v[2].type == SL_FLOAT && l->v[2].u.d == 2.5);
	sl_list_free(l);
	l = parse_ok("None\r\nTrue\r\nb''\r\n", 3);
	assert_int_equal(l->v[0].type, SL_NONE);
	assert_true(l->v[1].type == SL_BOOL && l->v[1].u.b);
	assert_true(l->v[2].type == SL_BYTES && l->v[2].u.s.len == 0);
	sl_list_free(l);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l = (struct sl_list *)&line;
		line = 0;
		assert_int_equal(sl_parse(bad[i].text, strlen(bad[i].text), &l, &line), -EINVAL);
		assert_ptr_equal(l, (struct sl_list *)&line);
		assert_int_equal(line, bad[i].line);
	}
}

/* ---- render ----------------------------------------------------------- */

static void test_render(void **state)
{
	const char *in = "  1_000\n\n0x10\n-.5e1\nINF\n\"it's\"\nu'\\u00e9\\t'\nrb'\\x'\nNone\nFalse\n";
	const char *want = "1000\n16\n-5.0\ninf\n\"it's\"\n'\xc3\xa9\\t'\nb'\\\\x'\nNone\nFalse\n";
	struct sl_list *l = parse_ok(in, 9), empty = { 0 };
	char *text;
	size_t len;

	(void)state;
	assert_int_equal(sl_render(l, &text, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(text, want);
	seg_free(text);
	sl_list_free(l);

	assert_int_equal(sl_render(&empty, &text, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(text, "");
	seg_free(text);
}

/* ---- random round trip ------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: enough for test data, reproducible from the seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void random_value(struct sl_value *v)
{
	static const uint32_t cps[] = {
		'a', ' ', '\'', '"', '\\', 0, '\t', '\n', '\r', 0x1f, 0x7f, 0x80, 0xad,
		0xe9, 0xff, 0x378, 0x2028, 0x20ac, 0xe000, 0xfeff, 0xffff, 0x1f600,
		0xe0001, 0x10ffff,
	};
	size_t n;
	char *p;

	memset(v, 0, sizeof(*v));
	switch (rnd() % 6) {
	case 0:
		v->type = SL_NONE;
		break;
	case 1:
		v->type = SL_BOOL;
		v->u.b = rnd() & 1;
		break;
	case 2:
		v->type = SL_INT;
		v->u.i = (int64_t)(rnd() >> (rnd() % 64));
		break;
	case 3: {
		uint64_t u = rnd();

		v->type = SL_FLOAT;
		memcpy(&v->u.d, &u, sizeof(u));
		break;
	}
	case 4:
		/* A random mix of the characters repr() treats differently. */
		v->type = SL_STR;
		n = rnd() % 12;
		p = seg_malloc(4 * n + 1);
		assert_non_null(p);
		v->u.s.p = p;
		for (size_t i = 0; i < n; i++) {
			uint32_t cp = cps[rnd() % (sizeof(cps) / sizeof(cps[0]))];
			char *o = p + v->u.s.len;

			if (cp < 0x80) {
				o[0] = (char)cp;
				v->u.s.len += 1;
			} else if (cp < 0x800) {
				o[0] = (char)(0xc0 | cp >> 6);
				o[1] = (char)(0x80 | (cp & 0x3f));
				v->u.s.len += 2;
			} else if (cp < 0x10000) {
				o[0] = (char)(0xe0 | cp >> 12);
				o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
				o[2] = (char)(0x80 | (cp & 0x3f));
				v->u.s.len += 3;
			} else {
				o[0] = (char)(0xf0 | cp >> 18);
				o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
				o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
				o[3] = (char)(0x80 | (cp & 0x3f));
				v->u.s.len += 4;
			}
		}
		p[v->u.s.len] = '\0';
		break;
	default:
		v->type = SL_BYTES;
		n = rnd() % 12;
		p = seg_malloc(n + 1);
		assert_non_null(p);
		for (size_t i = 0; i < n; i++)
			p[i] = (char)rnd();
		p[n] = '\0';
		v->u.s.p = p;
		v->u.s.len = n;
		break;
	}
}

/* render(list), then parse(text), gives the list back. */
static void test_random_round_trip(void **state)
{
	(void)state;
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (int iter = 0; iter < 2000; iter++) {
		struct sl_list l = { .n = rnd() % 16 }, *back = NULL;
		struct sl_value v[16];
		size_t len, line = 0;
		char *text;

		l.v = v;
		for (size_t i = 0; i < l.n; i++)
			random_value(&v[i]);
		assert_int_equal(sl_render(&l, &text, &len), 0);
		assert_int_equal(sl_parse(text, len, &back, &line), 0);
		assert_int_equal(back->n, l.n);
		for (size_t i = 0; i < l.n; i++) {
			if (!slv_equal(&v[i], &back->v[i]))
				fail_msg("seed %lu iter %d item %zu: %s", seed, iter, i, text);
			sl_value_clear(&v[i]);
		}
		sl_list_free(back);
		seg_free(text);
	}
}

/* ---- allocation failures ---------------------------------------------- */

/*
 * sl_parse and sl_render with the Nth allocation failing, N = 0, 1, ...
 * until they succeed: -ENOMEM, no output, no leak (ASan and valgrind see
 * to the last).  The text has long strings and a float too long for the
 * parser's stack buffer, so every allocation site is reached.
 */
static void test_enomem(void **state)
{
	char text[2048];
	int tlen;
	bool parsed = false;

	(void)state;
	tlen = snprintf(text, sizeof(text),
			"1\n'%0300d'\nb'\\x00'\n\n0.%0200d1\n\"\\u00e9\" \nNone\n", 0, 0);
	assert_true(tlen > 0 && (size_t)tlen < sizeof(text));
	for (long n = 0; !parsed && n < 100; n++) {
		struct sl_list *l = (struct sl_list *)text;
		size_t line = 777;
		int rc;

		seg_alloc_fail_after(n);
		rc = sl_parse(text, (size_t)tlen, &l, &line);
		seg_alloc_fail_reset();
		if (rc == 0) {
			parsed = true;
			assert_int_equal(l->n, 6);
			assert_int_equal(line, 777);
			for (long m = 0; m < 100; m++) {
				char *out = (char *)text;
				size_t olen = 4242;

				seg_alloc_fail_after(m);
				rc = sl_render(l, &out, &olen);
				seg_alloc_fail_reset();
				if (rc == 0) {
					assert_int_equal(olen, strlen(out));
					seg_free(out);
					break;
				}
				assert_int_equal(rc, -ENOMEM);
				assert_ptr_equal(out, text);
				assert_int_equal(olen, 4242);
				assert_true(m < 99);
			}
			sl_list_free(l);
		} else {
			assert_int_equal(rc, -ENOMEM);
			assert_ptr_equal(l, (struct sl_list *)text);
			assert_int_equal(line, 777);
		}
	}
	assert_true(parsed);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repr_examples),
		cmocka_unit_test(test_repr_vectors),
		cmocka_unit_test(test_repr_appends_and_enomem),
		cmocka_unit_test(test_parse_vectors),
		cmocka_unit_test(test_parse_details),
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_enomem),
	};

	if (argc > 1)
		seed = strtoul(argv[1], NULL, 0);
	printf("test_sltext: round-trip seed %lu\n", seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
