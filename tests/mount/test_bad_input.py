"""Bad input: a clear errno, the daemon alive, nothing else changed.

The table below is the one in the README.  Cases covered elsewhere:
eight processes racing O_CREAT|O_EXCL (test_files.py), concurrent writers
to one lists/ entry (test_lists.py), write() past -o size=
(test_segfs.py), and the parsers under libFuzzer (scripts/fuzz).
"""

import ctypes
import errno
import json
import os
import stat
import random
import struct
import sys
from pathlib import Path

import pytest

import harness as h
from harness import MiB, errno_of, write_once

pytestmark = pytest.mark.usefixtures("segfs_only")

LONG = "n" * 256
PEER = Path(__file__).with_name("sl_peer.py")


def snapshot(mnt):
    """Every name under the mount with its bytes (or None for a dir)."""
    out = {}
    for root, dirs, files in os.walk(mnt):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), mnt)] = None
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, mnt)] = open(p, "rb").read()
    return out


def seed(mnt):
    (mnt / "seg").write_bytes(b"segment bytes")
    (mnt / "plain").write_bytes(b"\xff" * 64)
    os.mkdir(mnt / "dir")
    assert write_once(mnt / "lists" / "l", "1\n'two'\n") == (0, 0)


def make_excl(mnt):
    return os.open(mnt / "seg", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)


# (what, action, errno).  Every action runs on a mount prepared by seed().
CASES = [
    ("create a name of 256 bytes", lambda m: os.open(m / LONG, os.O_CREAT | os.O_RDWR),
     errno.ENAMETOOLONG),
    ("mkdir a name of 256 bytes", lambda m: os.mkdir(m / LONG), errno.ENAMETOOLONG),
    ("rename to a name of 256 bytes", lambda m: os.rename(m / "seg", m / LONG),
     errno.ENAMETOOLONG),
    ("link to a name of 256 bytes", lambda m: os.link(m / "seg", m / LONG),
     errno.ENAMETOOLONG),
    ("O_CREAT|O_EXCL on an existing name", make_excl, errno.EEXIST),
    ("ftruncate past -o size=", lambda m: os.truncate(m / "seg", 64 * MiB), errno.ENOSPC),
    ("fallocate past -o size=", lambda m: _fallocate(m / "seg", 64 * MiB),
     errno.ENOSPC),
    ("rmdir lists/", lambda m: os.rmdir(m / "lists"), errno.EPERM),
    ("unlink lists/", lambda m: os.unlink(m / "lists"), errno.EISDIR),
    ("rename lists/", lambda m: os.rename(m / "lists", m / "other"), errno.EPERM),
    ("rename a directory over lists/", lambda m: os.rename(m / "dir", m / "lists"),
     errno.EPERM),
    ("mkdir in lists/", lambda m: os.mkdir(m / "lists" / "d"), errno.EPERM),
    ("link into lists/", lambda m: os.link(m / "seg", m / "lists" / "x"), errno.EPERM),
    ("rename a plain segment into lists/", lambda m: os.rename(m / "seg", m / "lists" / "x"),
     errno.EXDEV),
    ("rename a list over a segment that is not one", lambda m: os.rename(
        m / "lists" / "l", m / "lists" / "plain"), errno.EEXIST),
    ("write a list over a segment that is not one", lambda m: os.open(
        m / "lists" / "plain", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), errno.EEXIST),
    ("list text that does not parse", lambda m: _raise(write_once(
        m / "lists" / "l", "1\n2 + 3\n")), errno.EINVAL),
    ("list text whose last line does not parse", lambda m: _raise(write_once(
        m / "lists" / "l", "1\n[2]")), errno.EINVAL),
    ("an int beyond int64", lambda m: _raise(write_once(
        m / "lists" / "l", "9223372036854775808\n")), errno.EINVAL),
    ("a str with a lone surrogate", lambda m: _raise(write_once(
        m / "lists" / "l", "'\\ud800'\n")), errno.EINVAL),
    ("symlink to a target of 4096 bytes", lambda m: os.symlink("t" * 4096, m / "sym"),
     errno.ENAMETOOLONG),
    ("an extended attribute outside tmpfs's namespaces",
     lambda m: os.setxattr(m / "seg", "other.x", b"1"), errno.EOPNOTSUPP),
    ("a device node in lists/", lambda m: os.mknod(m / "lists" / "n", 0o600 | stat.S_IFCHR),
     errno.EPERM),
    ("a whiteout in lists/", lambda m: _whiteout(m / "lists" / "l", m / "lists" / "w"),
     errno.EINVAL),
    ("O_TMPFILE in lists/", lambda m: os.open(m / "lists", os.O_TMPFILE | os.O_RDWR, 0o600),
     errno.EOPNOTSUPP),
]


def _whiteout(src, dst):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, str(src).encode(), -100, str(dst).encode(), 4) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _fallocate(path, size):
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def _raise(errnos):
    """write_once's (write, close) errnos as an OSError, for the table."""
    for e in errnos:
        if e:
            raise OSError(e, os.strerror(e))


@pytest.mark.segfs_opts("size=16m")
@pytest.mark.parametrize("what,action,want", CASES, ids=[c[0] for c in CASES])
def test_bad_input(fs, what, action, want):
    """Each bad request gets its errno; nothing else changes; the daemon
    lives."""
    mnt = fs.mnt
    seed(mnt)
    before = snapshot(mnt)
    assert errno_of(action, mnt) == want, what
    assert snapshot(mnt) == before, what
    assert fs.alive()


CORRUPTIONS = {
    "absurd count": lambda b: struct.pack("q", 1 << 60) + b[8:],
    "negative count": lambda b: struct.pack("q", -1) + b[8:],
    "negative offset": lambda b: b[:16] + struct.pack("q", -8) + b[24:],
    "overflowing offset": lambda b: b[:16] + struct.pack("q", 2**63 - 1) + b[24:],
    "decreasing offsets": lambda b: b[:16] + struct.pack("q", 24) + struct.pack("q", 8) + b[32:],
    "bad format": lambda b: b[:len(b) - 2 - 16] + b"zz\0\0\0\0\0\0" + b[len(b) - 2 - 8:],
    "bad code": lambda b: b[:-1] + b"\x07",
    "truncated": lambda b: b[:20],
    "invalid UTF-8 in a str": lambda b: b[:8 * 5] + b"\xff\xfe" + b[8 * 5 + 2:],
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_list_is_not_shown(fs, how):
    """A list whose bytes another process corrupted is no list: lists/
    does not show it (ENOENT); an open handle keeps its snapshot; the
    segment's bytes are not touched; the daemon lives."""
    mnt = fs.mnt
    assert write_once(mnt / "lists" / "c", "1\n'ab'\n") == (0, 0)
    with open(mnt / "lists" / "c") as held:
        raw = (mnt / "c").read_bytes()
        bad = CORRUPTIONS[how](raw)
        with open(mnt / "c", "r+b") as f:
            f.write(bad)
            f.truncate(len(bad))
        assert errno_of(os.stat, mnt / "lists" / "c") == errno.ENOENT
        assert "c" not in os.listdir(mnt / "lists")
        assert held.read() == "1\n'ab'\n"
    assert (mnt / "c").read_bytes() == bad
    assert fs.alive()


@pytest.mark.deadline(120)
def test_random_segments_through_lists(fs):
    """Hundreds of segments of random bytes, and of real lists with random
    damage, all read through lists/: nothing crashes, and every entry that
    lists/ shows is exactly what CPython's own ShareableList reads."""
    mnt = fs.mnt
    r = random.Random(20261122)
    good = []
    for i in range(60):
        text = "".join(r.choice(["1\n", "-2.5\n", "'x'\n", "b'\\x00y'\n", "None\n",
                                 "True\n", "'%s'\n" % ("é" * r.randrange(12))])
                       for _ in range(r.randrange(1, 6)))
        assert write_once(mnt / "lists" / ("g%d" % i), text) == (0, 0)
        good.append((mnt / ("g%d" % i)).read_bytes())
    for i in range(300):
        if i % 3 == 0:
            blob = bytes(r.randrange(256) for _ in range(r.randrange(0, 200)))
        else:
            blob = bytearray(r.choice(good))
            for _ in range(r.randrange(1, 4)):
                blob[r.randrange(len(blob))] = r.randrange(256)
            if r.random() < 0.2:
                blob = blob[:r.randrange(len(blob) + 1)]
            blob = bytes(blob)
        (mnt / ("r%d" % i)).write_bytes(blob)
    shown = sorted(os.listdir(mnt / "lists"))
    assert {"g%d" % i for i in range(60)} <= set(shown)
    # CPython's own ShareableList reads each shown segment (sl_peer.py).
    read = json.loads(h.run([sys.executable, PEER, mnt, "read", *shown],
                            timeout=120).stdout)
    assert len(read) == len(shown)
    for name, want in zip(shown, read):
        assert (mnt / "lists" / name).read_text() == want, name
    assert fs.alive()
