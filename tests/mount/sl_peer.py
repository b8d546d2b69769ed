"""The CPython side of the lists/ differential tests.

Runs under any CPython >= 3.9 (the interpreter under test) as

    python sl_peer.py MOUNTPOINT COMMAND [ARGS...]

and uses the real multiprocessing.shared_memory.ShareableList on segments
of the mount: SharedMemory is replaced by a class that maps MOUNTPOINT/NAME
(as CPython's maps /dev/shm/NAME), so every byte is read and written by
CPython's own ShareableList code, and no resource tracker unlinks anything.

Commands (results as JSON on stdout):
  make SEED COUNT     create COUNT random lists named cpI with ShareableList;
                      report each one's input text (repr of the values
                      given), read-back text (repr of what CPython reads),
                      the text CPython reads from a segment that keeps
                      every value whole, and whether CPython truncated a str
  read NAME...        repr text of what CPython reads from each list
  assign SEED NAME... create twin NAME_cp of each list (same values), then
                      assign random new values that fit every slot with
                      sl[i] = v; report the new values' text
  watch NAME          attach, print "ready", wait for a line on stdin,
                      then report what the attached list reads
"""

import json
import math
import mmap
import os
import random
import struct
import sys
from multiprocessing import shared_memory

MNT = sys.argv[1]


class FileShm:
    """SharedMemory over MNT/NAME instead of /dev/shm/NAME."""

    def __init__(self, name=None, create=False, size=0):
        self.name = self._name = name
        path = os.path.join(MNT, name)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self.size = os.fstat(fd).st_size
            self._mmap = mmap.mmap(fd, self.size)
        finally:
            os.close(fd)
        self.buf = memoryview(self._mmap)

    def close(self):
        self.buf.release()
        self._mmap.close()

    def unlink(self):
        os.unlink(os.path.join(MNT, self.name))


shared_memory.SharedMemory = FileShm
ShareableList = shared_memory.ShareableList

# Characters whose printability is the same in every CPython 3.9-3.13 (so
# repr agrees with segfs's table): ASCII with quotes, backslash and
# controls, Latin-1, Greek, CJK, an emoji, and some that repr escapes.
CHARS = ("abcXYZ019 '\"\\\n\t\r\x00\x01\x7f"
         "\xe9\xff\xa0\xad\u03b1\u4e2d\u2028\ue000\ufeff\U0001f600")


def rand_str(r):
    return "".join(r.choice(CHARS) for _ in range(r.randrange(0, 20)))


def rand_float(r):
    x = r.choice([0.0, -0.0, math.inf, -math.inf, math.nan, 1e16, 1e15, 1e-5,
                  1e-4, 0.1, 5e-324, 1.7976931348623157e308, 2.0, -1.5,
                  struct.unpack("d", bytes(r.randrange(256) for _ in range(8)))[0]])
    # One NaN: CPython's own (segfs parses "nan" to it).
    return math.nan if math.isnan(x) else x


def rand_value(r):
    k = r.randrange(6)
    if k == 0:
        return r.choice([0, 1, -1, 2**63 - 1, -2**63, r.randrange(-2**63, 2**63),
                         r.randrange(-1000, 1000)])
    if k == 1:
        return rand_float(r)
    if k == 2:
        return r.random() < 0.5
    if k == 3:
        return None
    if k == 4:
        return rand_str(r)
    return bytes(r.randrange(256) for _ in range(r.randrange(0, 20)))


def text_of(values):
    return "".join(repr(v) + "\n" for v in values)


def truncates(v):
    """CPython sizes a str slot by characters and cuts longer UTF-8."""
    return isinstance(v, str) and len(v.encode()) > 8 * (len(v) // 8 + 1)


def stripped(v):
    """What CPython reads back of a value stored whole: str and bytes lose
    their trailing NULs (rstrip), nothing else changes."""
    if isinstance(v, str):
        return v.rstrip("\x00")
    if isinstance(v, bytes):
        return v.rstrip(b"\x00")
    return v


def read_text(name):
    """repr text of what CPython reads, or None when CPython cannot read
    the list back (its own cut of a str through a UTF-8 sequence)."""
    sl = ShareableList(name=name)
    try:
        return text_of([sl[i] for i in range(len(sl))])
    except UnicodeDecodeError:
        return None
    finally:
        sl.shm.close()


def fitting_value(r, old, slot):
    """A random new value for an item whose slot has `slot` bytes."""
    while True:
        v = rand_value(r)
        if isinstance(v, (str, bytes)):
            enc = v.encode() if isinstance(v, str) else v
            if len(enc) > slot:
                continue
        return v


def main():
    cmd, args = sys.argv[2], sys.argv[3:]
    out = []
    if cmd == "make":
        r = random.Random(int(args[0]))
        for i in range(int(args[1])):
            values = [rand_value(r) for _ in range(r.randrange(1, 12))]
            name = "cp%d" % i
            sl = ShareableList(values, name=name)
            sl.shm.close()
            out.append({"name": name, "input": text_of(values),
                        "readback": read_text(name),
                        "whole": text_of(stripped(v) for v in values),
                        "truncates": any(truncates(v) for v in values)})
    elif cmd == "read":
        out = [read_text(name) for name in args]
    elif cmd == "assign":
        r = random.Random(int(args[0]))
        for name in args[1:]:
            sl = ShareableList(name=name)
            values = [sl[i] for i in range(len(sl))]
            offs = sl._allocated_offsets
            sl.shm.close()
            twin = ShareableList(values, name=name + "_cp")
            new = [fitting_value(r, values[i], offs[i + 1] - offs[i])
                   for i in range(len(values))]
            for i, v in enumerate(new):
                twin[i] = v
            twin.shm.close()
            out.append({"name": name, "twin": name + "_cp", "input": text_of(new),
                        "readback": read_text(name + "_cp")})
    elif cmd == "watch":
        sl = ShareableList(name=args[0])
        print("ready", flush=True)
        sys.stdin.readline()
        out = text_of(sl[i] for i in range(len(sl)))
        sl.shm.close()
    else:
        sys.exit("unknown command " + cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
