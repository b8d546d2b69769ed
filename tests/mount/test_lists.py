"""lists/: segments that hold a CPython ShareableList, as text.

These pin the view's semantics with shell tools and plain file I/O; the
byte-level agreement with real CPython is test_lists_cpython.py's.
"""

import errno
import mmap
import os
import struct
import subprocess

import pytest

from harness import errno_of, run, write_once

pytestmark = pytest.mark.usefixtures("segfs_only")


def sh(mnt, script, timeout=30, check=True):
    return run(["sh", "-euc", script], cwd=mnt, timeout=timeout, check=check)


def items_of(seg_bytes):
    """(n, offsets) of a 3.9+ ShareableList segment."""
    n = struct.unpack_from("q", seg_bytes, 0)[0]
    offs = struct.unpack_from("%dq" % (n + 1), seg_bytes, 8)
    return n, offs


def test_write_creates_cpython_list(mnt):
    """printf > lists/x creates segment x with CPython's layout and size;
    cat shows one repr per line."""
    sh(mnt, "printf '1\\n2.5\\n\"x\"\\nNone\\nTrue\\nb\"\\\\x00a\"\\n' > lists/a")
    raw = (mnt / "a").read_bytes()
    # 16 + 17n + D with n = 6 and six 8-byte slots.
    assert len(raw) == 16 + 17 * 6 + 6 * 8
    n, offs = items_of(raw)
    assert n == 6 and offs == (0, 8, 16, 24, 32, 40, 48)
    assert (mnt / "lists" / "a").read_text() == \
        "1\n2.5\n'x'\nNone\nTrue\nb'\\x00a'\n"
    assert os.listdir(mnt / "lists") == ["a"]


def test_tools_read_the_text(mnt):
    """cat, wc -l, grep, cp and ls -l work on lists/ entries."""
    sh(mnt, "printf '10\\n20\\n30\\n' > lists/n")
    assert sh(mnt, "wc -l < lists/n").stdout.strip() == "3"
    assert sh(mnt, "grep -c 0 lists/n").stdout.strip() == "3"
    out = mnt.parent / (mnt.name + "-copy")
    try:
        sh(mnt, f"cp lists/n {out}")
        assert out.read_text() == "10\n20\n30\n"
    finally:
        out.unlink(missing_ok=True)
    line = sh(mnt, "ls -l lists").stdout.splitlines()[-1].split()
    assert line[-1] == "n" and line[4] == str(len("10\n20\n30\n"))
    assert os.stat(mnt / "lists" / "n").st_size == 9


def test_not_every_segment_is_a_list(mnt):
    """A zero-filled or garbage segment is not in lists/; CPython's exact
    16-byte empty list is, and shows no lines."""
    (mnt / "zeros").write_bytes(bytes(4096))
    (mnt / "junk").write_bytes(b"\xff" * 100)
    (mnt / "empty").write_bytes(bytes(16))
    assert os.listdir(mnt / "lists") == ["empty"]
    assert (mnt / "lists" / "empty").read_text() == ""
    assert errno_of(os.stat, mnt / "lists" / "zeros") == errno.ENOENT
    assert errno_of(os.open, mnt / "lists" / "junk", os.O_RDONLY) == errno.ENOENT


def test_in_place_update_seen_through_mapping(mnt):
    """Same count, values that fit: the segment is rewritten in place, so a
    process that maps it sees the new values and its layout is unchanged."""
    write_once(mnt / "lists" / "p", "1\n'abc'\n")
    fd = os.open(mnt / "p", os.O_RDWR)
    try:
        m = mmap.mmap(fd, 0)
        n, offs = items_of(m[:])
        before = len(m)
        assert write_once(mnt / "lists" / "p", "-7\n'xyz1234'\n") == (0, 0)
        ds = 8 * (n + 2)
        assert struct.unpack_from("q", m, ds)[0] == -7
        assert m[ds + 8:ds + 15] == b"xyz1234"
        assert os.fstat(fd).st_size == before
        assert (mnt / "lists" / "p").read_text() == "-7\n'xyz1234'\n"
        m.close()
    finally:
        os.close(fd)


def test_replace_when_layout_changes(mnt):
    """A longer string or another count makes a new segment under the name;
    a holder of the old one keeps a consistent old list."""
    write_once(mnt / "lists" / "r", "'a'\n")
    fd = os.open(mnt / "r", os.O_RDONLY)
    try:
        old = os.pread(fd, 4096, 0)
        assert write_once(mnt / "lists" / "r", "'a much longer string'\n1\n") == (0, 0)
        assert os.pread(fd, 4096, 0) == old       # the holder's segment
        assert (mnt / "lists" / "r").read_text() == "'a much longer string'\n1\n"
        assert items_of((mnt / "r").read_bytes())[0] == 2
        assert os.stat(mnt / "r").st_ino != os.fstat(fd).st_ino
    finally:
        os.close(fd)


def test_append_adds_items(mnt):
    """echo >> lists/x appends an item."""
    sh(mnt, "printf '1\\n' > lists/c && echo 2 >> lists/c && echo \"'three'\" >> lists/c")
    assert (mnt / "lists" / "c").read_text() == "1\n2\n'three'\n"


def test_bad_text_refused_and_list_unchanged(mnt):
    """A complete bad line fails write() with EINVAL; a bad last line fails
    close(); either way the list is exactly as it was."""
    write_once(mnt / "lists" / "b", "1\n2\n")
    raw = (mnt / "b").read_bytes()
    assert write_once(mnt / "lists" / "b", "3\nnot python\n4\n") == \
        (errno.EINVAL, errno.EINVAL)
    assert write_once(mnt / "lists" / "b", "3\n[1, 2]") == (0, errno.EINVAL)
    for bad in ["1+1\n", "'a' 'b'\n", "x\n", "0x\n", "'unterminated\n",
                "9223372036854775808\n", "'\\N{DASH}'\n", "'''x'''\n",
                "True()\n"]:
        assert write_once(mnt / "lists" / "b", bad)[0] == errno.EINVAL, bad
    assert (mnt / "b").read_bytes() == raw
    assert (mnt / "lists" / "b").read_text() == "1\n2\n"
    # The shell says so too (bash names the errno; dash says "I/O error").
    res = run(["bash", "-c", "printf 'oops\\n' > lists/b"], cwd=mnt,
              timeout=30, check=False)
    assert res.returncode != 0 and "Invalid argument" in res.stderr


def test_trunc_changes_nothing_until_close(mnt):
    """O_TRUNC does not empty the list while the new text is being written."""
    write_once(mnt / "lists" / "t", "1\n2\n")
    fd = os.open(mnt / "lists" / "t", os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"5\n")
        assert (mnt / "lists" / "t").read_text() == "1\n2\n"
    finally:
        os.close(fd)
    assert (mnt / "lists" / "t").read_text() == "5\n"


def test_rm_and_mv(mnt):
    """rm lists/x unlinks segment x; mv lists/a lists/b renames it."""
    write_once(mnt / "lists" / "m", "1\n")
    os.rename(mnt / "lists" / "m", mnt / "lists" / "m2")
    assert not (mnt / "m").exists() and (mnt / "m2").exists()
    assert (mnt / "lists" / "m2").read_text() == "1\n"
    sh(mnt, "rm lists/m2")
    assert not (mnt / "m2").exists()
    assert os.listdir(mnt / "lists") == []


def test_root_changes_show_in_lists(mnt):
    """Renaming, replacing and removing segments in the root is seen in
    lists/ at once."""
    write_once(mnt / "lists" / "s", "1\n")
    os.rename(mnt / "s", mnt / "s2")
    assert os.listdir(mnt / "lists") == ["s2"]
    assert errno_of(os.stat, mnt / "lists" / "s") == errno.ENOENT
    write_once(mnt / "lists" / "other", "'other'\n")
    os.rename(mnt / "other", mnt / "s2")
    assert (mnt / "lists" / "s2").read_text() == "'other'\n"
    os.unlink(mnt / "s2")
    assert os.listdir(mnt / "lists") == []


def test_non_list_segment_not_overwritten(mnt):
    """Creating lists/x when segment x holds no list fails EEXIST and keeps
    x's bytes."""
    (mnt / "data").write_bytes(b"precious" * 10)
    res = sh(mnt, "printf '1\\n' > lists/data", check=False)
    assert res.returncode != 0
    assert (mnt / "data").read_bytes() == b"precious" * 10
    write_once(mnt / "lists" / "l", "1\n")
    assert errno_of(os.rename, mnt / "lists" / "l", mnt / "lists" / "data") \
        == errno.EEXIST


def test_mode_and_owner_follow_segment(mnt):
    """A view shows its segment's mode and owner; chmod on it changes the
    segment."""
    write_once(mnt / "lists" / "o", "1\n")
    os.chmod(mnt / "lists" / "o", 0o600)
    assert os.stat(mnt / "o").st_mode & 0o777 == 0o600
    assert os.stat(mnt / "lists" / "o").st_mode & 0o777 == 0o600


def test_unicode_and_escapes_round_trip(mnt):
    """Text with quotes, escapes and non-ASCII comes back in Python's repr;
    trailing NULs go, as CPython's read strips them."""
    text = ("'it\\'s'\n\"say \\\"hi\\\"\"\n'é\\n\\t\\x00'\n'\\u2028'\n"
            "b'\\xff\\x00'\n-0.0\n1e-05\n1e+16\n1000000000000000.0\ninf\nnan\n"
            "0x10\n1_000\n-9223372036854775808\n")
    assert write_once(mnt / "lists" / "u", text) == (0, 0)
    assert (mnt / "lists" / "u").read_text() == (
        "\"it's\"\n'say \"hi\"'\n'é\\n\\t'\n'\\u2028'\n"
        "b'\\xff'\n-0.0\n1e-05\n1e+16\n1000000000000000.0\ninf\nnan\n"
        "16\n1000\n-9223372036854775808\n")


def test_concurrent_writers_leave_one_whole_text(mnt):
    """Two processes writing different texts to one entry: the result is
    one of the texts, whole."""
    write_once(mnt / "lists" / "w", "0\n")
    a = "\n".join(str(i) for i in range(200)) + "\n"
    b = "\n".join("'%d'" % i for i in range(150)) + "\n"
    procs = [subprocess.Popen(
        ["sh", "-c", f"for i in 1 2 3 4 5; do printf '%s' \"$T\" > {mnt}/lists/w; done"],
        env={"T": t, "PATH": os.environ["PATH"]}) for t in (a, b)]
    for p in procs:
        assert p.wait(timeout=30) == 0
    assert (mnt / "lists" / "w").read_text() in (a, b)
