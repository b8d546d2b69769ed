"""Inspection (issue #7): the read-only user.segfs.* extended attributes of
segments and of the root, as getfattr(1) and os.getxattr show them with
-o xattr, their refusals and permissions; their absence by default, where
segfs keeps tmpfs's extended attributes and nothing more; -o noxattr, with
the round trip it saves.  segfs-only: tmpfs has none of these.  The
attributes tmpfs has are test_parity's."""

import ctypes
import errno
import mmap
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness as h
from harness import MiB, errno_of, run_as

# The inspection attributes are shown only when asked for (README: Inspection).
pytestmark = [pytest.mark.usefixtures("segfs_only"), pytest.mark.segfs_opts("xattr")]

SEG_NAMES = ["user.segfs.pid", "user.segfs.btime", "user.segfs.open",
             "user.segfs.passthrough", "user.segfs.list"]
NOBODY = 65534
PAGE = 4096


def attr(path, name):
    return os.getxattr(path, name).decode()


def getfattr_dump(path):
    """`getfattr -d PATH` as {name: value}, getfattr's quoting undone."""
    if shutil.which("getfattr") is None:
        pytest.skip("getfattr (package attr) is not installed")
    out = h.run(["getfattr", "-d", "--absolute-names", path]).stdout
    got = {}
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        assert value.startswith('"') and value.endswith('"'), line
        got[name] = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                           value[1:-1])
    return got


def stats(mnt):
    text = attr(mnt, "user.segfs.stats")
    assert text.endswith("\n")
    pairs = [line.split("=", 1) for line in text.splitlines()]
    return {k: v for k, v in pairs}


def make(path, size=0, mode=0o600):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def wait_attr(path, name, want, timeout=5):
    """The kernel sends RELEASE after close() returns: poll for it."""
    return h.wait_until(lambda: attr(path, name) == want, timeout)


def btime_ns(text):
    assert re.fullmatch(r"\d+\.\d{9}", text), text
    sec, ns = text.split(".")
    return int(sec) * 10**9 + int(ns)


# --------------------------------------------------------------------------
# What there is to see

def test_segment_attributes(mnt):
    """getfattr -d shows the five attributes of a segment with their
    values: this process made it, just now, nobody holds it, its data path
    is the mount's, and it holds no list; listxattr names them in order."""
    t0 = time.time_ns()
    make(mnt / "seg", 10000)
    t1 = time.time_ns()
    assert wait_attr(mnt / "seg", "user.segfs.open", "0")
    assert os.listxattr(mnt / "seg") == SEG_NAMES
    got = getfattr_dump(mnt / "seg")
    assert sorted(got) == sorted(SEG_NAMES)
    assert got["user.segfs.pid"] == str(os.getpid())
    assert t0 - 10**9 <= btime_ns(got["user.segfs.btime"]) <= t1 + 10**9
    assert got["user.segfs.open"] == "0"
    assert got["user.segfs.passthrough"] == ("1" if h.MODE == "passthrough" else "0")
    assert got["user.segfs.list"] == "0"
    # Nothing changes the creator or the birth: not writes, chmod, rename.
    (mnt / "seg").write_bytes(b"x" * 100)
    os.chmod(mnt / "seg", 0o644)
    os.rename(mnt / "seg", mnt / "moved")
    again = getfattr_dump(mnt / "moved")
    assert again["user.segfs.pid"] == got["user.segfs.pid"]
    assert again["user.segfs.btime"] == got["user.segfs.btime"]


def test_root_stats(fs, mnt):
    """The root's user.segfs.stats counts segments, their bytes and pages,
    open and unlinked ones, and agrees with statfs about the limits."""
    assert os.listxattr(mnt) == ["user.segfs.stats"]
    s = stats(mnt)
    assert s["segments"] == "0" and s["bytes"] == "0" and s["reserved"] == "0"
    sizes = [0, 1, PAGE, 5000, MiB]
    for i, size in enumerate(sizes):
        make(mnt / f"s{i}", size)
    os.mkdir(mnt / "d")
    make(mnt / "d" / "deep", 3)
    sizes.append(3)
    fd = os.open(mnt / "s1", os.O_RDONLY)
    try:
        os.unlink(mnt / "s1")          # gone from the namespace, still held
        assert h.wait_until(lambda: stats(mnt)["open"] == "1", 5)
        s = stats(mnt)
        sv = os.statvfs(mnt)
        assert s["segments"] == str(len(sizes))
        assert s["unlinked"] == "1"
        assert s["bytes"] == str(sum(sizes))
        assert s["reserved"] == str(sum(-(-n // PAGE) * PAGE for n in sizes))
        assert int(s["size_limit"]) // sv.f_frsize == sv.f_blocks
        assert s["nr_segments_limit"] == str(sv.f_files)
        assert s["inodes"] == str(sv.f_files - sv.f_ffree)
        assert s["inodes"] == str(2 + 1 + len(sizes))   # root, lists/, d
        assert s["data_path"] == h.MODE
        assert s["backing"] == h.BACKING
        assert s["huge"] == ("system" if h.BACKING == "memfd"
                             else "within_size" if h.shmem_thp() else "never")
        assert s["daemon_pid"] == str(fs.pid)
        dumped = getfattr_dump(mnt)
        assert list(dumped) == ["user.segfs.stats"]
        assert dumped["user.segfs.stats"].startswith("segments=")
    finally:
        os.close(fd)
    assert h.wait_until(lambda: stats(mnt)["segments"] == str(len(sizes) - 1), 5)
    assert stats(mnt)["unlinked"] == "0"


def test_directories_and_views_have_none(mnt):
    """Only segments and the root carry attributes: not lists/, not its
    entries (views of segments), not other directories."""
    (mnt / "lists" / "l").write_text("1\n2\n")
    os.mkdir(mnt / "d")
    for p in (mnt / "lists", mnt / "lists" / "l", mnt / "d"):
        assert os.listxattr(p) == [], p
        assert errno_of(os.getxattr, p, "user.segfs.pid") == errno.ENODATA
        assert errno_of(os.getxattr, p, "user.segfs.stats") == errno.ENODATA
    # The segment behind lists/l has them, and it holds a list.
    assert attr(mnt / "l", "user.segfs.list") == "1"
    assert attr(mnt / "l", "user.segfs.pid") == str(os.getpid())


def test_readdir_shows_nothing_new(mnt):
    """Attributes live in no directory entry: a listing is what was made."""
    make(mnt / "a", 10)
    os.mknod(mnt / "b", 0o600 | stat.S_IFREG)
    for p in (mnt, mnt / "a", mnt / "b"):
        for name in os.listxattr(p):
            os.getxattr(p, name)
    assert sorted(os.listdir(mnt)) == ["a", "b", "lists"]
    assert os.listdir(mnt / "lists") == []
    assert h.run(["ls", "-a", mnt]).stdout.split() == [".", "..", "a", "b", "lists"]


# --------------------------------------------------------------------------
# Each value

def test_pid_of_creator(mnt):
    """user.segfs.pid is the pid of the process whose open(O_CREAT) or
    mknod made the segment; opening it later changes nothing."""
    code = ("import os, stat, sys\n"
            "p = sys.argv[1]\n"
            "if sys.argv[2] == 'open':\n"
            "    os.close(os.open(p, os.O_CREAT | os.O_RDWR, 0o644))\n"
            "else:\n"
            "    os.mknod(p, 0o644 | stat.S_IFREG)\n"
            "print(os.getpid())\n")
    for how in ("open", "mknod"):
        out = h.run([sys.executable, "-c", code, mnt / how, how]).stdout
        assert attr(mnt / how, "user.segfs.pid") == out.strip(), how
        assert out.strip() != str(os.getpid())
    # A later O_CREAT on the existing name is an open, not a creation.
    os.close(os.open(mnt / "open", os.O_CREAT | os.O_RDWR))
    assert attr(mnt / "open", "user.segfs.pid") != str(os.getpid())


def test_open_count(mnt):
    """user.segfs.open counts open handles: each open() once (a dup or a
    fork shares it), a process that holds one, and a mapping until munmap."""
    p = mnt / "o"
    make(p, PAGE)
    assert wait_attr(p, "user.segfs.open", "0")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; f = open(sys.argv[1], 'rb'); print('ready', flush=True);"
         " sys.stdin.readline()", p],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert attr(p, "user.segfs.open") == "1"
        fd = os.open(p, os.O_RDWR)
        fd2 = os.dup(fd)
        assert attr(p, "user.segfs.open") == "2"
        os.close(fd2)
        m = mmap.mmap(fd, PAGE)
        os.close(fd)
        assert attr(p, "user.segfs.open") == "2"   # the mapping holds it
        m.close()
        assert wait_attr(p, "user.segfs.open", "1")
    finally:
        holder.communicate("done\n", timeout=10)
    assert wait_attr(p, "user.segfs.open", "0")


def test_passthrough_matches_mode(mnt):
    """user.segfs.passthrough is the data path the mount reports, closed or
    open, and so is the root's data_path."""
    want = "1" if h.MODE == "passthrough" else "0"
    make(mnt / "p", PAGE)
    assert attr(mnt / "p", "user.segfs.passthrough") == want
    with open(mnt / "p", "r+b") as f:
        assert attr(mnt / "p", "user.segfs.passthrough") == want
        f.write(b"x")
    assert stats(mnt)["data_path"] == h.MODE


HOLDER = r"""
import sys
mnt, name, here = sys.argv[1:4]
sys.path.insert(0, here)
sys.argv = sys.argv[:2]             # sl_peer maps segments of argv[1]
import sl_peer                      # CPython's ShareableList over mnt/NAME
sl = sl_peer.ShareableList([1, "two", 3.5, None, b"x", True], name=name)
print("ready", flush=True)
sys.stdin.readline()
sl.shm.close()
"""


def test_list_flag_follows_cpython(mnt):
    """user.segfs.list is 1 exactly when lists/ shows the segment: a list
    that real CPython creates and still maps (its bytes may still be in
    the page cache, in fallback mode) is one; zeros, and the same list
    once its header is damaged, are not."""
    make(mnt / "plain", PAGE)
    assert attr(mnt / "plain", "user.segfs.list") == "0"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, mnt, "sl", Path(__file__).parent],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert attr(mnt / "sl", "user.segfs.list") == "1"
        assert attr(mnt / "sl", "user.segfs.pid") == str(holder.pid)
        assert attr(mnt / "sl", "user.segfs.open") == "1"   # its mapping
        assert (mnt / "lists" / "sl").exists()
    finally:
        holder.communicate("done\n", timeout=10)
    assert holder.returncode == 0
    assert attr(mnt / "sl", "user.segfs.list") == "1"
    fd = os.open(mnt / "sl", os.O_WRONLY)
    try:
        os.pwrite(fd, b"\xff" * 8, 0)      # an absurd item count
    finally:
        os.close(fd)
    assert attr(mnt / "sl", "user.segfs.list") == "0"
    assert not (mnt / "lists" / "sl").exists()


# --------------------------------------------------------------------------
# Refusals, sizes, permissions

def test_refusals(mnt):
    """Ours are read-only (EPERM), and so are names under user.segfs. that
    are not ours; other names are stored as tmpfs stores them; names that
    are not there are ENODATA, security.capability included."""
    make(mnt / "r", 10)
    for p, name in ((mnt / "r", "user.segfs.pid"), (mnt / "r", "user.segfs.new"),
                    (mnt, "user.segfs.stats")):
        assert errno_of(os.setxattr, p, name, b"1") == errno.EPERM
    assert errno_of(os.removexattr, mnt / "r", "user.segfs.pid") == errno.EPERM
    assert errno_of(os.removexattr, mnt, "user.segfs.stats") == errno.EPERM
    os.setxattr(mnt / "r", "user.note", b"1")
    os.setxattr(mnt, "user.note", b"2")
    assert os.getxattr(mnt / "r", "user.note") == b"1"
    os.removexattr(mnt / "r", "user.note")
    assert errno_of(os.removexattr, mnt / "r", "user.note") == errno.ENODATA
    for name in ("user.segfs.nope", "user.segfs.stats", "user.other",
                 "security.capability", "trusted.x"):
        assert errno_of(os.getxattr, mnt / "r", name) == errno.ENODATA, name
    assert errno_of(os.getxattr, mnt, "user.segfs.pid") == errno.ENODATA
    assert os.listxattr(mnt / "r") == SEG_NAMES   # the note is gone
    assert os.listxattr(mnt) == ["user.note", "user.segfs.stats"]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                           ctypes.c_size_t]
_libc.getxattr.restype = ctypes.c_ssize_t
_libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.listxattr.restype = ctypes.c_ssize_t


def raw(call, *args, size):
    """getxattr/listxattr with a buffer of `size` bytes (NULL for 0):
    (length, bytes) or (-errno, None)."""
    buf = ctypes.create_string_buffer(size) if size else None
    n = call(*args, buf, size)
    if n < 0:
        return -ctypes.get_errno(), None
    return n, (buf.raw[:n] if size else None)


def test_sizes_and_erange(mnt):
    """Size 0 asks for the length; a buffer one byte short is ERANGE; an
    exact one gets the value, with no NUL: for values and for names."""
    make(mnt / "e", 10)
    path = bytes(mnt / "e")
    names = b"".join(n.encode() + b"\0" for n in SEG_NAMES)
    for name in SEG_NAMES:
        value = os.getxattr(mnt / "e", name)
        n, _ = raw(_libc.getxattr, path, name.encode(), size=0)
        assert n == len(value), name
        if n > 1:   # (a size of 0 asks for the length)
            assert raw(_libc.getxattr, path, name.encode(), size=n - 1) == \
                (-errno.ERANGE, None)
        assert raw(_libc.getxattr, path, name.encode(), size=n) == (n, value)
        assert not value.endswith(b"\0")
    assert raw(_libc.listxattr, path, size=0) == (len(names), None)
    assert raw(_libc.listxattr, path, size=len(names) - 1) == (-errno.ERANGE, None)
    assert raw(_libc.listxattr, path, size=len(names)) == (len(names), names)
    root = bytes(mnt)
    value = os.getxattr(mnt, "user.segfs.stats")
    assert raw(_libc.getxattr, root, b"user.segfs.stats", size=0)[0] == len(value)
    assert raw(_libc.getxattr, root, b"user.segfs.stats", size=10) == \
        (-errno.ERANGE, None)


@pytest.mark.segfs_opts("xattr", "allow_other")   # the closest marker wins
def test_non_owner_needs_read_permission(mnt):
    """The kernel checks read permission for user.* values: a non-owner
    without it gets EACCES (names are listed without a check, as on any
    filesystem); with it, the values; the root's stats need only its r."""
    make(mnt / "secret", 10, 0o600)
    make(mnt / "public", 10, 0o644)
    os.chmod(mnt / "secret", 0o600)
    os.chmod(mnt / "public", 0o644)

    def look():
        out = {}
        for n in ("secret", "public"):
            try:
                out[n] = os.getxattr(mnt / n, "user.segfs.pid").decode()
            except OSError as e:
                out[n] = e.errno
        out["names"] = os.listxattr(mnt / "secret")
        out["stats"] = os.getxattr(mnt, "user.segfs.stats").decode()
        return out

    got = run_as(NOBODY, NOBODY, look)
    assert got["secret"] == errno.EACCES
    assert got["public"] == str(os.getpid())
    assert got["names"] == SEG_NAMES
    assert got["stats"].startswith("segments=2\n")


# --------------------------------------------------------------------------
# Without -o xattr; -o noxattr, and the round trip it saves

@pytest.mark.parametrize("opts", [[], ["xattr", "noxattr"]], ids=["default", "xattr-then-noxattr"])
def test_hidden_by_default(start_segfs, opts):
    """By default the inspection attributes are not there at all: user.segfs.*
    are user.* names like any other, as on tmpfs, so that cp -a and rsync -X
    carry nothing of ours out.  The last of xattr/noxattr wins."""
    d = start_segfs(opts)
    make(d.mnt / "n", 10)
    if "noxattr" in opts:
        assert errno_of(os.getxattr, d.mnt / "n", "user.segfs.pid") == errno.EOPNOTSUPP
    else:
        assert errno_of(os.getxattr, d.mnt / "n", "user.segfs.pid") == errno.ENODATA
        assert errno_of(os.getxattr, d.mnt, "user.segfs.stats") == errno.ENODATA
        assert os.listxattr(d.mnt / "n") == []
        os.setxattr(d.mnt / "n", "user.segfs.pid", b"mine")
        assert os.getxattr(d.mnt / "n", "user.segfs.pid") == b"mine"
    assert d.unmount() == []


def test_noxattr_has_none(start_segfs):
    """-o noxattr: no extended attributes at all (EOPNOTSUPP), and no ACLs."""
    d = start_segfs(["noxattr"])
    make(d.mnt / "n", 10)
    assert errno_of(os.getxattr, d.mnt / "n", "user.x") == errno.EOPNOTSUPP
    assert errno_of(os.listxattr, d.mnt / "n") == errno.EOPNOTSUPP
    assert errno_of(os.setxattr, d.mnt / "n", "user.x", b"1") == errno.EOPNOTSUPP
    assert errno_of(os.setxattr, d.mnt / "n", "system.posix_acl_access",
                    bytes.fromhex("02000000" "01000600ffffffff" "04000400ffffffff"
                                  "20000000ffffffff")) == errno.EOPNOTSUPP
    assert d.unmount() == []


def test_help_lists_xattr():
    """--help names the options and their defaults."""
    out = h.run([h.SEGFS, "--help"]).stdout
    assert "-o xattr" in out and "-o noxattr" in out
    assert "for inspection (default: off)" in out


GETXATTR = re.compile(r"opcode: GETXATTR \(")


def getxattr_requests(d, since):
    return len(GETXATTR.findall(d.stderr()[since:]))


@pytest.mark.parametrize("opts", [[], ["noxattr"]], ids=["default", "noxattr"])
def test_round_trips(start_segfs, opts):
    """What extended attributes cost (README: Inspection).  With them the
    kernel asks for security.capability before the first truncate of each
    new segment (a truncate never marks an inode as having none) and before
    the first write, and not again while the inode's attributes stand
    (FUSE_HANDLE_KILLPRIV_V2); with -o noxattr it asks once, is told
    ENOSYS, and never again."""
    d = start_segfs(opts, args=["-d"])
    make(d.mnt / "warm", 1)              # the first question, either way
    since = len(d.stderr())
    cycles = 10
    for i in range(cycles):
        p = d.mnt / f"c{i}"
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, PAGE)
        m = mmap.mmap(fd, PAGE)
        m[0] = 1
        m.close()
        os.close(fd)
        os.unlink(p)
    after_cycles = len(d.stderr())
    fd = os.open(d.mnt / "w", os.O_CREAT | os.O_RDWR, 0o600)
    for _ in range(cycles):
        os.write(fd, b"x" * 100)
    os.close(fd)
    assert d.stderr()[since:after_cycles].count("opcode: CREATE") == cycles
    if "noxattr" in opts:
        assert getxattr_requests(d, since) == 0
    else:
        assert getxattr_requests(d, since) - getxattr_requests(d, after_cycles) == cycles
        if h.libfuse_built() >= (3, 17):
            # Ten writes, one question at most: the first; then S_NOSEC.
            assert getxattr_requests(d, after_cycles) <= 1
        else:
            # Without FUSE_HANDLE_KILLPRIV_V2 (libfuse 3.14): every write asks.
            assert getxattr_requests(d, after_cycles) == cycles
    assert d.unmount() == []
