#!/usr/bin/env python3
"""Generates the ShareableList golden files of tests/unit/test_sl.c.

Every byte and every expected value in the output comes from the CPython
that runs this script (3.11 is the reference; the layout is the same from
3.9 to 3.14), through multiprocessing.shared_memory itself:

tests/data/sl_vectors_values.txt
    The values of each block of tests/data/shareablelist_vectors.txt (which
    this script reads and never writes): what ShareableList was given ("in")
    and what CPython reads back ("read").  Where segfs encodes the values
    differently from CPython (a str whose UTF-8 is longer than CPython's
    character-count slot, which CPython silently truncates), an "ours" line
    gives the bytes segfs must write and "oursread" what CPython reads back
    from them, i.e. the untruncated value.

tests/data/sl_codec_vectors.txt
    More blocks of the same form, with CPython's bytes inline ("cpython"):
    slot boundaries, truncation cutting a character (which CPython cannot
    read back: "read error UnicodeDecodeError"), NUL stripping, special
    floats, code points at the UTF-8 length boundaries, a longer list.

tests/data/sl_assign_vectors.txt
    sl[i] = v: the segment before, the index and value, and the segment
    after CPython's __setitem__ with the item CPython then reads, or the
    exception CPython raised (ValueError: too long; IndexError) with the
    segment unchanged.

"ours" bytes are made by CPython too: a ShareableList whose str slots are
sized for the UTF-8 length (with a placeholder of that many ASCII
characters), then the real str assigned in place, which CPython NUL-pads
over the slot.  They are checked by writing them into a fresh POSIX shm
object with os.pwrite and attaching ShareableList(name=...) to it.

Value notation, one per line after its keyword:
    none | bool 0|1 | int <decimal> | float <float.hex(), inf, -inf, nan>
    str <hex of the UTF-8, "-" if empty> | bytes <hex, "-" if empty>
    error <exception class name>   (read lines only)

Usage: gen_sl_vectors.py [DATADIR]   (default: tests/data next to this script)
Output is deterministic; every shm segment made is unlinked in a finally
block, and attach-only handles are unregistered from the resource tracker
so that it neither warns nor unlinks twice.
"""
import ast
import os
import struct
import sys

import _posixshmem
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import ShareableList

_NAME_SEQ = [0]


def shm_name():
    _NAME_SEQ[0] += 1
    return "/segfs_gen_%d_%d" % (os.getpid(), _NAME_SEQ[0])


def value_line(v):
    if v is None:
        return "none"
    if type(v) is bool:
        return "bool %d" % v
    if type(v) is int:
        return "int %d" % v
    if type(v) is float:
        return "float %s" % v.hex()
    if type(v) is str:
        return "str %s" % (v.encode("utf8").hex() or "-")
    if type(v) is bytes:
        return "bytes %s" % (v.hex() or "-")
    raise TypeError(type(v))


def read_lines(sl, n):
    """CPython's sl[i] for each item, or the exception it raises."""
    out = []
    for i in range(n):
        try:
            out.append(value_line(sl[i]))
        except Exception as e:  # noqa: BLE001 - the class name is the datum
            out.append("error %s" % type(e).__name__)
    return out


def segment(sl):
    return bytes(sl.shm.buf[:sl.shm.size])


def made_by_cpython(seq):
    """CPython's bytes for ShareableList(seq) and what it reads back."""
    sl = ShareableList(seq)
    try:
        raw = segment(sl)
        n = len(seq)
        assert len(raw) == 16 + 17 * n + struct.unpack_from("q", raw, 8 + 8 * n)[0]
        return raw, read_lines(sl, n)
    finally:
        sl.shm.close()
        sl.shm.unlink()


def attach_raw(raw):
    """Writes raw into a new shm object (no ShareableList involved) and
    returns what ShareableList(name=...) reads from it."""
    name = shm_name()
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        os.ftruncate(fd, len(raw))
        os.pwrite(fd, raw, 0)
        sl = ShareableList(name=name[1:])
        try:
            return read_lines(sl, len(sl))
        finally:
            resource_tracker.unregister(sl.shm._name, "shared_memory")
            sl.shm.close()
    finally:
        os.close(fd)
        _posixshmem.shm_unlink(name)


def ours(seq):
    """The bytes segfs writes for seq: CPython's, except that a str slot
    holds the whole UTF-8 (8*(utf8len//8+1) when that is bigger than
    CPython's 8*(len//8+1)).  Made by CPython: placeholders first, then
    each long str assigned in place."""
    def long_str(v):
        return type(v) is str and len(v.encode("utf8")) > 8 * (len(v) // 8 + 1)

    placeholder = ["x" * len(v.encode("utf8")) if long_str(v) else v for v in seq]
    sl = ShareableList(placeholder)
    try:
        for i, v in enumerate(seq):
            if long_str(v):
                sl[i] = v
        return segment(sl)
    finally:
        sl.shm.close()
        sl.shm.unlink()


def block(seq, raw, reads, with_hex):
    lines = ["vector", "lit %r" % (seq,)]
    if with_hex:
        lines.append("cpython %s" % raw.hex())
    lines += ["in %s" % value_line(v) for v in seq]
    lines += ["read %s" % r for r in reads]
    mine = ours(seq)
    if mine != raw:
        back = attach_raw(mine)
        # The point of the different slot: CPython reads back all of it.
        assert back == [value_line(v) for v in seq], (seq, back)
        lines.append("ours %s" % mine.hex())
        lines += ["oursread %s" % r for r in back]
    # The raw bytes read the same when attached without ShareableList(seq).
    assert attach_raw(raw) == reads, seq
    lines.append("end")
    return "\n".join(lines) + "\n"


def shared_vectors(path):
    text = open(path, encoding="utf-8").read().split("\n")
    out = []
    for k in range(0, len(text) - 2, 3):
        lit, hx = text[k], text[k + 1]
        assert text[k + 2] == "", "blank line expected after block %d" % k
        out.append((lit, ast.literal_eval(lit), bytes.fromhex(hx)))
    return out


EXTRA = [
    [''],
    [b''],
    ['1234567', '12345678', 'x' * 15, 'x' * 16, 'x' * 100],
    [b'1234567', b'12345678', b'\xff' * 16],
    ['a\x00b\x00'],                       # only trailing NULs are lost
    [b'\x00'],                             # reads back as b''
    [b'\x00' * 8, b'\x00a\x00'],
    ['\u00e9' * 4],                        # 8 bytes: fills the slot exactly
    ['\u00e9' * 7],                        # 14 bytes in 8: cut between chars
    ['\u20ac' * 3],                        # 9 bytes in 8: cut inside a char
    ['0\U00010000\U00010000'],             # gh-145261: unreadable in CPython
    ['\U0001f600' * 2],                    # 8 bytes, 2 characters
    ['\x7f\x80', '\u07ff\u0800', '\uffff', '\U00010000\U0010ffff'],
    [float('inf'), float('-inf'), float('nan'), 5e-324, -0.0, 1e16,
     2.0 ** 1023, -1.7976931348623157e308],
    [True, False, None, None, True],
    [2**63 - 1, -2**63, 0, -1, 1 << 32],
    [b'\xff\xfe', '\u00fc', 1, None, 2.5, False, '', b''],
    list(range(40)) + ['s%d' % i for i in range(9)] + [None],
]

ASSIGN = [
    # label, initial list, assignments made before the snapshot, index, value
    ("int to str that fits in 8 bytes", [1], [], 0, "abc"),
    ("int to str filling 8 bytes, no NUL", [1], [], 0, "abcdefgh"),
    ("int to 9-byte str: too long", [1], [], 0, "abcdefghi"),
    ("int to bytes", [1, 2], [], 1, b"\x00z"),
    ("int to 8 NUL bytes", [1], [], 0, b"\x00" * 8),
    ("str to int leaves a stale tail", ["hello world"], [], 0, 7),
    ("str to None leaves a stale tail", ["hello world"], [], 0, None),
    ("str to bool leaves a stale tail", ["hello world"], [], 0, True),
    ("str to float", ["abcdefghijklmnopqrst"], [], 0, -2.5),
    ("None to str", [None], [], 0, "hi"),
    ("None to bytes", [None, 1], [], 0, b""),
    ("bytes filling a 16-byte slot", [b"12345678"], [], 0, b"0123456789abcdef"),
    ("bytes one over a 16-byte slot", [b"12345678"], [], 0, b"0123456789abcdefg"),
    ("float to bool", [1.5], [], 0, True),
    ("bool to float", [True], [], 0, 2.5),
    ("bool to False", [True], [], 0, False),
    ("None to None", [None], [], 0, None),
    ("str to bytes keeps the format", ["ab"], [], 0, b"cd"),
    ("str to empty str", ["abc"], [], 0, ""),
    ("str to str with embedded NUL", [b"abc"], [], 0, "a\x00"),
    ("2-byte chars filling the slot", ["h\u00e9llo"], [], 0, "\u00e9" * 4),
    ("2-byte chars over the slot", ["h\u00e9llo"], [], 0, "\u00e9" * 5),
    ("3-byte chars in a 16-byte slot", ["12345678"], [], 0, "\u20ac" * 5),
    ("middle item of three", [1, "x" * 20, 3], [], 1, "y"),
    ("24-byte slot filled", ["x" * 20], [], 0, "y" * 24),
    ("24-byte slot overflowed", ["x" * 20], [], 0, "y" * 25),
    ("int extremes", [0, 0], [(0, -2**63)], 1, 2**63 - 1),
    ("float -0.0", [0], [], 0, -0.0),
    ("float nan", [0], [], 0, float("nan")),
    ("8s to d to 8s", ["ab"], [(0, 1.5)], 0, "zz"),
    ("xxxxxx?x to 8s", [None, None], [], 1, "q"),
    ("int to str in a former str slot", ["x" * 20], [(0, 5)], 0, "z" * 24),
    ("int after a long str", ["x" * 20], [(0, "y" * 24)], 0, 1),
    ("index past the end", [1, 2, 3], [], 3, 5),
    ("index past the end of []", [], [], 0, None),
]


def assign_block(label, initial, pre, index, value):
    sl = ShareableList(initial)
    try:
        for i, v in pre:
            sl[i] = v
        before = segment(sl)
        lines = ["case %s" % label, "before %s" % before.hex(),
                 "index %d" % index, "value %s" % value_line(value)]
        try:
            sl[index] = value
        except (ValueError, IndexError) as e:
            # Both are raised before anything is written.
            assert segment(sl) == before, label
            lines.append("error %s" % type(e).__name__)
        else:
            after = segment(sl)
            assert attach_raw(after)[index] == read_lines(sl, len(initial))[index]
            lines.append("after %s" % after.hex())
            lines.append("read %s" % read_lines(sl, len(initial))[index])
        lines.append("end")
        return "\n".join(lines) + "\n"
    finally:
        sl.shm.close()
        sl.shm.unlink()


def check_limits():
    """The longest str/bytes CPython stores: its format must fit 8 chars."""
    sl = ShareableList([b"x" * 9999991])
    try:
        assert sl.format == "9999992s"
    finally:
        sl.shm.close()
        sl.shm.unlink()
    try:
        ShareableList([b"x" * 9999992])
    except AssertionError:
        pass
    else:
        raise SystemExit("CPython accepted a 10M item: limits changed (or -O)")


def write(path, header, blocks):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(header)
        f.write("".join(blocks))


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "tests", "data")
    ver = sys.version.split()[0]
    head = ("# Generated by scripts/gen_sl_vectors.py with CPython %s; do not edit.\n"
            "# The notation is described in that script.\n" % ver)

    blocks = []
    for lit, seq, raw in shared_vectors(os.path.join(data, "shareablelist_vectors.txt")):
        mine, reads = made_by_cpython(seq)
        assert mine == raw, "vector %s differs with this CPython" % lit
        blocks.append(block(seq, raw, reads, False))
    write(os.path.join(data, "sl_vectors_values.txt"),
          head + "# One block per block of shareablelist_vectors.txt, in order.\n",
          blocks)

    blocks = []
    for seq in EXTRA:
        raw, reads = made_by_cpython(seq)
        blocks.append(block(seq, raw, reads, True))
    write(os.path.join(data, "sl_codec_vectors.txt"), head, blocks)

    write(os.path.join(data, "sl_assign_vectors.txt"), head,
          [assign_block(*case) for case in ASSIGN])
    check_limits()


if __name__ == "__main__":
    main()
