#!/usr/bin/env python3
"""Writes the CPython-made test vectors of core/sltext.c into tests/data/.

text_repr_vectors.txt: values and their repr(), one a line:

    TYPE PAYLOAD REPR

TYPE is N (None), B (bool), I (int), F (float), S (str), Y (bytes).  PAYLOAD
is hex: the 8 bytes of the int64 or of the float's IEEE bits (big-endian, so
it reads as the number), the UTF-8 of a str, the bytes of a bytes, 0/1 for
a bool, "-" for None or an empty string.  REPR, the rest of the line, is
repr(value) in UTF-8 (repr never holds a line break).

text_parse_vectors.txt: spellings and what the parser must make of them:

    ok TYPE PAYLOAD SPELLING      (SPELLING hex-encoded: it may hold anything)
    bad SPELLING

each after a "#" line showing the spelling.  The values of "ok" lines are
Python's own (ast.literal_eval, or float() for inf/nan spellings).  Every
"bad" spelling is checked to be refused by Python too, or carries the
reason segfs refuses what Python accepts.

Deterministic (fixed seed).  Usage: gen_text_vectors.py [OUTDIR]
"""
import ast
import math
import os
import random
import struct
import sys
import unicodedata
import warnings

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def payload(v):
    """(TYPE, PAYLOAD) of a value, or None if it is not storable."""
    if v is None:
        return "N", "-"
    if type(v) is bool:
        return "B", "1" if v else "0"
    if type(v) is int:
        if not INT64_MIN <= v <= INT64_MAX:
            return None
        return "I", struct.pack(">q", v).hex()
    if type(v) is float:
        return "F", struct.pack(">d", v).hex()
    if type(v) is str:
        try:
            b = v.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return "S", b.hex() or "-"
    if type(v) is bytes:
        return "Y", v.hex() or "-"
    return None


def f64(bits):
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def floats(rng):
    xs = [0.0, -0.0, math.inf, -math.inf, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1.0, 2.0,
          1e16, 1e15, 1e17, 1e-4, 1e-5, 1e-6, 1.5e-7, 9999999999999998.0,
          1e16 + 2, 2e16 + 8, 123456789012345678.0, 5e-324, 1e-323,
          2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
          0.5, 100.0, 1e22, 1e23, 3e300, 9007199254740992.0, 9007199254740993.0]
    xs += [10.0 ** e for e in range(-30, 31)]
    xs += [float(2 ** 53 + d) for d in range(-8, 9)]
    pows = [2.0 ** k for k in range(-1074, 1024)]
    xs += pows
    for x in rng.sample(pows, 300):
        xs += [math.nextafter(x, 0), math.nextafter(x, math.inf)]
    xs += [f64(rng.getrandbits(64)) for _ in range(4000)]
    # Short decimals, the common case: 1-6 digits at any scale.
    for _ in range(1500):
        d = rng.randrange(1, 10 ** rng.randint(1, 6))
        xs.append(float("%de%d" % (d, rng.randint(-330, 310))))
    xs += [float(rng.randrange(1 << 60)) for _ in range(300)]
    xs += [-x for x in rng.sample(xs, 500)]
    xs = [x for x in xs if not math.isnan(x)]
    out = [("F", struct.pack(">d", x).hex(), repr(x)) for x in xs]
    # NaNs: repr is "nan" whatever the sign and payload.
    for bits in (0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
                 0x7FFFFFFFFFFFFFFF, 0xFFF0000000000001):
        out.append(("F", "%016x" % bits, repr(f64(bits))))
    return out


def ints(rng):
    vs = [0, 1, -1, 7, -7, 10, 100, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1]
    for k in range(64):
        vs += [1 << k, (1 << k) - 1, -(1 << k), -(1 << k) + 1]
    vs += [rng.randint(-(1 << rng.randint(1, 63)), 1 << rng.randint(1, 63) - 1)
           for _ in range(300)]
    vs = [v for v in vs if INT64_MIN <= v <= INT64_MAX]
    return vs


# Pools for random strings: every class unicode_repr treats differently.
POOLS = [
    "abcXYZ 019~",
    "'\"\\",
    "".join(map(chr, range(0x20))) + "\x7f",
    "".join(map(chr, range(0x80, 0x100))),
    "é€—…\u0378\u0600\u2028\u2029\u200b\u00ad\ufeff\ue000\uffff\u3000\u00a0",
    "\U0001f600\U00010000\U0010ffff\U000e0001\U0001d400\U000f0000\U00030000",
]


def rand_cp(rng):
    while True:
        cp = rng.randrange(0x110000)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def strs(rng):
    vs = ["", "a", "it's", 'say "hi"', "both ' and \"", "'", '"', "\\", "\\'",
          "\x00", "\x00ab", "\t\n\r", "\x0b\x0c", "\x7f", "é", "ÿ", "héllo",
          "\u00ad", "\u2028", "\ue000", "\ufeff", "\u0378", "\U0001f600",
          "\U000e0001", "\U0010ffff", "\x80\x9f\xa0", "日本語", "a" * 100,
          "\\x41", "\\u00e9", "\\N{DASH}", " lead", "trail ", "%s%d"]
    for _ in range(400):
        pool = rng.choice(POOLS + ["".join(POOLS)])
        vs.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
    # Every code point below U+3000 (surrogates have none), in chunks.
    for lo in range(0, 0x3000, 128):
        vs.append("".join(map(chr, range(lo, lo + 128))))
    for _ in range(300):
        vs.append("".join(rand_cp(rng) for _ in range(16)))
    return vs


def byteses(rng):
    vs = [b"", b"'", b'"', b"'\"", b"\\", bytes(range(256)), b"\x00ab", b"it's"]
    vs += [bytes([i]) for i in range(256)]
    for _ in range(150):
        vs.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
    return vs


def repr_vectors(rng):
    out = [("N", "-", "None"), ("B", "0", "False"), ("B", "1", "True")]
    out += [payload(v) + (repr(v),) for v in ints(rng)]
    out += floats(rng)
    out += [payload(v) + (repr(v),) for v in strs(rng)]
    out += [payload(v) + (repr(v),) for v in byteses(rng)]
    return out


# ---- parser vectors ------------------------------------------------------

ACCEPT = [
    # Names.
    "None", "True", "False", "  None", "True\t", "\fFalse \r",
    # Ints.
    "0", "00", "000", "0_0", "7", "-7", "+7", "-0", "+0", "1_000", "1_0_0",
    "123456789", "0x1f", "0X1F", "0xdeadBEEF", "0x_ff", "0o17", "0O17", "0o_7",
    "0b101", "0B1_0_1", "0b_1", "-0x10", "+0b1", "9223372036854775807",
    "-9223372036854775808", "0x7fffffffffffffff", "-0x8000000000000000",
    "0o777777777777777777777", "-0b" + "1" + "0" * 63, "0" * 50,
    # Floats.
    "1.", ".5", "1.5", "1e5", "1E5", "1e+5", "1e-5", "1E+5", "1.e5", ".5e5",
    "1_0.5e-1_0", "00.5", "007e1", "0_7.5", "07.", "0.0", "-0.0", "+0.0", "-.5",
    "+1.", "1e400", "-1e400", "1e-400", "1e99999999999999999999999999",
    "1e-99999999999999999999999999", "0e99999999999999999999999999", "0e0",
    "0.0000000000000000000000001", "0." + "0" * 400 + "1e401",
    "1" + "0" * 400 + "e-400", "1" * 300 + ".5", "4.9406564584124654e-324",
    "2.4703282292062328e-324", "2.4703282292062327e-324",
    "2.2250738585072011e-308", "1.7976931348623158e308",
    "1.7976931348623159e308", "9007199254740993.0", "0.1", "1_1.1_1e1_1",
    "1e-05", "1e+16", "1000000000000000.0", "3e+300", "5e-324", "  2.5  ",
    # Special values, as float() spells them.
    "inf", "-inf", "+inf", "nan", "-nan", "+nan", "Inf", "INF", "iNf",
    "Infinity", "-infinity", "INFINITY", "NaN", "NAN", "-NaN",
    # Strings.
    "''", '""', "'a'", '"a"', "u'a'", "U'a'", "u\"a\"", "'it\\'s'", '"it\'s"',
    "'say \"hi\"'", '"say \\"hi\\""', "'\\\\'", "'\\a\\b\\f\\n\\r\\t\\v'",
    "'\\0'", "'\\7'", "'\\77'", "'\\377'", "'\\1234'", "'\\08'", "'\\x41'",
    "'\\x4A'", "'\\xff'", "'\\u00e9'", "'\\u00E9'", "'\\uffff'",
    "'\\U0001F600'", "'\\U0010FFFF'", "'\\U00000041'", "'\\d'", "'\\8'",
    "'\\ '", "'\\é'", "'\\\\d'", "'é'", "'😀'", "'a\tb'", "'\x01\x1f\x7f'",
    "'日本語'", "'\u2028'", "'\ufeff'", " 'x' ",
    # Raw strings.
    "r'a\\n'", "R'a\\n'", "r'\\''", "r\"\\\"\"", "r'\\\\'", "r'a\\'b'",
    "r'\\x'", "r'\\N{DASH}'", "r'\\u'", "r'é'",
    # Bytes.
    "b''", "b'a'", "B'a'", 'b"a"', "b'\\x00\\xff'", "b'\\xFF'", "b'\\377'",
    "b'\\1'", "b'\\u1234'", "b'\\U00000041'", "b'\\N{DASH}'", "b'\\d'",
    "b'\\''", "b\"'\"", "b'\\a\\b\\f\\n\\r\\t\\v'", "b'\\x00ab'",
    "br'\\x'", "rb'\\x'", "Rb'a'", "bR'a'", "BR'\\''", "rB'\\\\'",
]

# Spellings refused.  A reason is given where CPython accepts the spelling
# and yields a value a ShareableList could hold; the generator fails if a
# spelling Python accepts has no reason here.
REJECT = [
    ("", None), (" ", None), ("\t\r", None),
    ("none", None), ("NONE", None), ("true", None), ("null", None), ("x", None),
    ("1+1", None), ("(1)", "parentheses are an expression"),
    ("[1]", None), ("1,", None), ("-(1)", "parentheses are an expression"),
    ("- 5", "a sign must be glued to its number"),
    ("--5", "a double sign is an expression"),
    ("+-5", "a double sign is an expression"),
    ("-+5", "a double sign is an expression"),
    ("-True", None), ("+None", None),
    ("01", None), ("0_7", None), ("1__0", None), ("_1", None), ("1_", None),
    ("1_.5", None), ("1._5", None), ("1.5_", None), ("0x", None), ("0x_", None),
    ("0xg", None), ("0b2", None), ("0o8", None), ("0x__1", None),
    ("0_x1", None), ("0x1_", None), ("1e", None), ("1e+", None), ("1e_1", None),
    ("1e1_", None), ("e5", None), (".", None), (".e5", None), ("1..2", None),
    ("1.5j", None), ("1j", None), ("0x1.8p1", None), ("1L", None),
    ("0777", None), ("1.0.0", None), ("1e5.0", None),
    ("0x1e+5", "an expression (0x1e + 5)"),
    ("9223372036854775808", "beyond int64 (struct.error in ShareableList)"),
    ("-9223372036854775809", "beyond int64 (struct.error in ShareableList)"),
    ("0x8000000000000000", "beyond int64 (struct.error in ShareableList)"),
    ("1 2", None), ("inff", None), ("infinit", None), ("nana", None),
    ("in f", None), ("i nf", None), ("1 # comment", "comments are not literals"),
    ("True False", None), ("None None", None),
    ("-'a'", None), ("'a' 'b'", "implicit concatenation is not one literal"),
    ("'a''b'", "implicit concatenation is not one literal"),
    ("'a'b", None), ("b'a'b'", None), ("'a", None), ("a'", None), ("'a\"", None),
    ("'''a'''", "triple-quoted strings are not single-line literals"),
    ('"""a"""', "triple-quoted strings are not single-line literals"),
    ("''''''", "triple-quoted strings are not single-line literals"),
    ("f'a'", "f-strings are expressions"), ("F'a'", "f-strings are expressions"),
    ("ur'a'", None), ("ub'a'", None), ("bu'a'", None), ("rr'a'", None),
    ("bb'a'", None), ("rbr'a'", None), ("c'a'", None),
    ("'\\N{LATIN SMALL LETTER A}'", "\\N{...} needs the Unicode name database"),
    ("'\\N'", None), ("'\\x4'", None), ("'\\xg0'", None), ("'\\x'", None),
    ("'\\u12'", None), ("'\\u123g'", None), ("'\\U0001F60'", None),
    ("'\\U00110000'", None),
    ("'\\ud800'", "a lone surrogate cannot be encoded in UTF-8"),
    ("'\\udfff'", "a lone surrogate cannot be encoded in UTF-8"),
    ("'\\U0000D800'", "a lone surrogate cannot be encoded in UTF-8"),
    ("'\\uDC80'", "a lone surrogate cannot be encoded in UTF-8"),
    ("b'é'", None), ("'\\400'", "octal escape above 0o377 (deprecated)"),
    ("b'\\400'", "octal escape above 0o377 (deprecated, keeps the low byte)"),
    ("'\\777'", "octal escape above 0o377 (deprecated)"),
    ("r'\\'", None), ("'\\'", None), ("b'\\'", None), ("'a\\'", None),
    ("'a\x00b'", None), ("'a\nb'", None), ("'a\rb'", None),
    ("'a\\\nb'", "a continued line is not a one-line literal"),
    ("b'\\x0'", None), ("b'\\xzz'", None), ("'\\u00e'", None),
    ("1\n2", None), ("'x'\n", "a value is one line: sl_parse splits lines"), ("\v1", None),
    (b"'\xff'", None), (b"'\xc0\x80'", None), (b"'\xed\xa0\x80'", None),
    (b"'\xe9'", None), (b"'\xf4\x90\x80\x80'", None), (b"'\xe2\x82'", None),
    (b"b'\x80'", None),
]


def python_eval(spelling):
    """What Python makes of a spelling: a storable value, or None."""
    if isinstance(spelling, bytes):
        try:
            spelling = spelling.decode("utf-8")
        except UnicodeDecodeError:
            return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = ast.literal_eval(spelling)
        except (ValueError, SyntaxError, TypeError, MemoryError):
            try:
                v = float(spelling)
            except ValueError:
                return None
            if not math.isinf(v) and not math.isnan(v):
                return None
    return v if payload(v) is not None else None


def parse_vectors():
    lines = []
    for s in ACCEPT:
        v = python_eval(s)
        p = payload(v) if (v is not None or s.strip() == "None") else None
        if s.strip() == "None":
            p = ("N", "-")
        assert p is not None, "Python refuses %r" % s
        lines.append("# %r -> %r" % (s, v))
        lines.append("ok %s %s %s" % (p[0], p[1], s.encode("utf-8").hex() or "-"))
    for s, reason in REJECT:
        v = python_eval(s)
        accepted = v is not None or (isinstance(s, str) and s.strip() == "None")
        if accepted and reason is None:
            raise SystemExit("Python accepts %r (%r): give a reason" % (s, v))
        raw = s if isinstance(s, bytes) else s.encode("utf-8")
        note = ("Python: %r; refused: %s" % (v, reason)) if accepted else \
            "Python refuses it or cannot store it" + ("; " + reason if reason else "")
        lines.append("# %r (%s)" % (s, note))
        lines.append("bad %s" % (raw.hex() or "-"))
    return lines


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "tests", "data")
    head = "# GENERATED by scripts/gen_text_vectors.py with %s %s (Unicode %s)" % (
        sys.implementation.name, ".".join(map(str, sys.version_info[:3])),
        unicodedata.unidata_version)
    rng = random.Random(20261122)
    with open(os.path.join(outdir, "text_repr_vectors.txt"), "w", encoding="utf-8") as f:
        f.write(head + "\n# TYPE PAYLOAD REPR (see the script)\n")
        for t, p, r in repr_vectors(rng):
            assert "\n" not in r and "\r" not in r
            f.write("%s %s %s\n" % (t, p, r))
    with open(os.path.join(outdir, "text_parse_vectors.txt"), "w", encoding="utf-8") as f:
        f.write(head + "\n# ok TYPE PAYLOAD SPELLING-HEX | bad SPELLING-HEX\n")
        for line in parse_vectors():
            f.write(line + "\n")


if __name__ == "__main__":
    main()
