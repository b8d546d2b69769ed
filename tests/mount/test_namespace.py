"""Names and metadata: rename, link, readdir, directories, attributes,
statfs, access."""

import ctypes
import errno
import os
import stat
import threading
import time

import pytest

from harness import MiB, errno_of, wait_until

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                            ctypes.c_char_p, ctypes.c_uint]


def renameat2(old, new, flags):
    """renameat2(2) through ctypes; raises OSError like os.rename."""
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                       os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def get(path):
    with open(path, "rb") as f:
        return f.read()


# -- rename ------------------------------------------------------------------

def test_rename_moves_name(mnt):
    """rename moves a segment to a new name, keeping inode and data."""
    put(mnt / "a", b"payload")
    ino = os.stat(mnt / "a").st_ino
    os.rename(mnt / "a", mnt / "b")
    assert errno_of(os.stat, mnt / "a") == errno.ENOENT
    assert os.stat(mnt / "b").st_ino == ino
    assert get(mnt / "b") == b"payload"
    assert sorted(os.listdir(mnt)) == ["b", "lists"]


def test_rename_over_existing_keeps_old_for_holder(mnt):
    """rename over an existing segment replaces it; a reader holding the old
    one keeps the old data."""
    put(mnt / "target", b"old contents")
    put(mnt / "tmp", b"new contents")
    fd = os.open(mnt / "target", os.O_RDONLY)
    try:
        os.rename(mnt / "tmp", mnt / "target")
        assert get(mnt / "target") == b"new contents"
        assert not (mnt / "tmp").exists()
        assert os.pread(fd, 100, 0) == b"old contents"
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)


def test_rename_over_existing_is_atomic(mnt):
    """While a name is repeatedly replaced by rename, every open of it finds
    a complete segment: never ENOENT, never a mix."""
    put(mnt / "live", b"A" * 8192)
    stop = threading.Event()
    seen = {"opens": 0, "bad": []}

    def reader():
        while not stop.is_set():
            try:
                data = get(mnt / "live")
            except OSError as e:
                seen["bad"].append(f"open: {e}")
                continue
            seen["opens"] += 1
            if len(data) != 8192 or len(set(data)) != 1:
                seen["bad"].append(f"mixed: {data[:8]!r} len {len(data)}")

    t = threading.Thread(target=reader)
    t.start()
    try:
        deadline = time.monotonic() + 1.0
        i = 0
        while time.monotonic() < deadline or seen["opens"] < 20:
            put(mnt / "next", bytes([66 + i % 20]) * 8192)
            os.rename(mnt / "next", mnt / "live")
            i += 1
            if time.monotonic() > deadline + 10:
                break
    finally:
        stop.set()
        t.join(10)
    assert seen["opens"] >= 20
    assert seen["bad"] == []


def test_rename_noreplace(mnt):
    """RENAME_NOREPLACE fails EEXIST onto an existing name, works otherwise."""
    put(mnt / "a", b"a")
    put(mnt / "b", b"b")
    assert errno_of(renameat2, mnt / "a", mnt / "b",
                    RENAME_NOREPLACE) == errno.EEXIST
    assert get(mnt / "a") == b"a" and get(mnt / "b") == b"b"
    renameat2(mnt / "a", mnt / "c", RENAME_NOREPLACE)
    assert get(mnt / "c") == b"a" and not (mnt / "a").exists()


def test_rename_exchange(mnt):
    """RENAME_EXCHANGE swaps two names atomically; holders are unaffected."""
    put(mnt / "x", b"xxx")
    put(mnt / "y", b"yyyyy")
    ix, iy = os.stat(mnt / "x").st_ino, os.stat(mnt / "y").st_ino
    fd = os.open(mnt / "x", os.O_RDONLY)
    try:
        renameat2(mnt / "x", mnt / "y", RENAME_EXCHANGE)
        assert get(mnt / "x") == b"yyyyy" and get(mnt / "y") == b"xxx"
        assert os.stat(mnt / "x").st_ino == iy
        assert os.stat(mnt / "y").st_ino == ix
        assert os.pread(fd, 10, 0) == b"xxx"
    finally:
        os.close(fd)
    assert errno_of(renameat2, mnt / "x", mnt / "nope",
                    RENAME_EXCHANGE) == errno.ENOENT


def test_rename_same_inode_noop(mnt):
    """rename of a name onto a hard link of the same inode changes nothing."""
    put(mnt / "a", b"1")
    os.link(mnt / "a", mnt / "b")
    os.rename(mnt / "a", mnt / "b")
    assert (mnt / "a").exists() and (mnt / "b").exists()
    assert os.stat(mnt / "a").st_nlink == 2


def test_rename_directories(mnt):
    """Directories rename with their contents; the errors match tmpfs."""
    os.makedirs(mnt / "d1" / "sub")
    put(mnt / "d1" / "sub" / "f", b"deep")
    os.rename(mnt / "d1", mnt / "d2")
    assert get(mnt / "d2" / "sub" / "f") == b"deep"
    os.mkdir(mnt / "empty")
    os.rename(mnt / "d2", mnt / "empty")  # over an empty directory
    assert get(mnt / "empty" / "sub" / "f") == b"deep"
    assert not (mnt / "d2").exists()
    os.mkdir(mnt / "full")
    put(mnt / "full" / "x", b"")
    assert errno_of(os.rename, mnt / "empty", mnt / "full") == errno.ENOTEMPTY
    assert errno_of(os.rename, mnt / "empty",
                    mnt / "empty" / "sub" / "in") == errno.EINVAL
    put(mnt / "file", b"")
    assert errno_of(os.rename, mnt / "file", mnt / "full") == errno.EISDIR
    assert errno_of(os.rename, mnt / "full", mnt / "file") == errno.ENOTDIR
    os.rename(mnt / "file", mnt / "empty" / "sub" / "moved")
    assert (mnt / "empty" / "sub" / "moved").is_file()


# -- link --------------------------------------------------------------------

def test_hard_links_share_data(mnt):
    """Hard links share one segment: data, inode and st_nlink; unlinking one
    name keeps the other."""
    put(mnt / "one", b"shared")
    os.link(mnt / "one", mnt / "two")
    os.mkdir(mnt / "dir")
    os.link(mnt / "one", mnt / "dir" / "three")
    s1, s2 = os.stat(mnt / "one"), os.stat(mnt / "two")
    assert s1.st_ino == s2.st_ino
    assert s1.st_nlink == s2.st_nlink == 3
    with open(mnt / "two", "r+b") as f:
        f.write(b"SHARED")
    assert get(mnt / "one") == b"SHARED"
    assert get(mnt / "dir" / "three") == b"SHARED"
    os.unlink(mnt / "one")
    assert os.stat(mnt / "two").st_nlink == 2
    assert get(mnt / "two") == b"SHARED"
    os.unlink(mnt / "dir" / "three")
    assert os.stat(mnt / "two").st_nlink == 1
    assert get(mnt / "two") == b"SHARED"


def test_link_errors(mnt):
    """link onto an existing name fails EEXIST; linking a directory EPERM."""
    put(mnt / "a", b"")
    put(mnt / "b", b"")
    os.mkdir(mnt / "d")
    assert errno_of(os.link, mnt / "a", mnt / "b") == errno.EEXIST
    assert errno_of(os.link, mnt / "d", mnt / "d2") == errno.EPERM
    assert errno_of(os.link, mnt / "missing", mnt / "c") == errno.ENOENT


# -- readdir -----------------------------------------------------------------

@pytest.mark.deadline(90)
def test_readdir_5000_entries(mnt):
    """readdir lists all of 5000 entries, through os.listdir, ls and ls -l."""
    from harness import run

    os.mkdir(mnt / "many")
    names = {f"seg{i:05d}" for i in range(5000)}
    for n in names:
        os.close(os.open(mnt / "many" / n, os.O_CREAT | os.O_WRONLY, 0o644))
    assert set(os.listdir(mnt / "many")) == names
    with os.scandir(mnt / "many") as it:
        entries = list(it)
    assert {e.name for e in entries} == names
    assert all(e.is_file() for e in entries)
    ls = run(["ls", "-1", "-f", mnt / "many"], timeout=60).stdout.split()
    assert set(ls) - {".", ".."} == names and len(ls) == 5002
    lsl = run(["ls", "-l", mnt / "many"], timeout=60).stdout.splitlines()
    assert lsl[0].startswith("total")
    assert len(lsl) == 5001
    assert all(line.startswith("-rw-r--r--") for line in lsl[1:])
    assert {line.split()[-1] for line in lsl[1:]} == names


def test_readdir_root_and_dots(mnt):
    """The root lists lists/ and new entries; . and .. are reported."""
    put(mnt / "f", b"")
    os.mkdir(mnt / "d")
    assert sorted(os.listdir(mnt)) == ["d", "f", "lists"]
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    os.close(fd)
    from harness import run
    out = run(["ls", "-1a", mnt], timeout=10).stdout.split()
    assert out == [".", "..", "d", "f", "lists"]


# -- directories -----------------------------------------------------------

def test_lists_dir_exists(mnt):
    """The root holds an empty directory lists/."""
    st = os.stat(mnt / "lists")
    assert stat.S_ISDIR(st.st_mode)
    assert os.listdir(mnt / "lists") == []


def test_mkdir_rmdir(mnt):
    """mkdir/rmdir, nested dirs, ENOTEMPTY, EEXIST, ENOTDIR, ENOENT."""
    os.mkdir(mnt / "a", 0o750)
    st = os.stat(mnt / "a")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    os.makedirs(mnt / "a" / "b" / "c" / "d")
    put(mnt / "a" / "b" / "c" / "d" / "seg", b"x")
    assert get(mnt / "a" / "b" / "c" / "d" / "seg") == b"x"
    assert errno_of(os.mkdir, mnt / "a") == errno.EEXIST
    assert errno_of(os.rmdir, mnt / "a") == errno.ENOTEMPTY
    assert errno_of(os.rmdir, mnt / "a" / "b" / "c" / "d") == errno.ENOTEMPTY
    assert errno_of(os.rmdir, mnt / "a" / "b" / "c" / "d" / "seg") \
        == errno.ENOTDIR
    assert errno_of(os.unlink, mnt / "a") in (errno.EISDIR, errno.EPERM)
    assert errno_of(os.mkdir, mnt / "nope" / "x") == errno.ENOENT
    os.unlink(mnt / "a" / "b" / "c" / "d" / "seg")
    for p in ("a/b/c/d", "a/b/c", "a/b", "a"):
        os.rmdir(mnt / p)
    assert not (mnt / "a").exists()
    assert errno_of(os.rmdir, mnt / "a") == errno.ENOENT


def test_directory_nlink(mnt):
    """A directory's st_nlink is 2 plus its subdirectories, as on tmpfs."""
    os.mkdir(mnt / "p")
    assert os.stat(mnt / "p").st_nlink == 2
    os.mkdir(mnt / "p" / "c1")
    os.mkdir(mnt / "p" / "c2")
    put(mnt / "p" / "f", b"")
    assert os.stat(mnt / "p").st_nlink == 4
    os.rmdir(mnt / "p" / "c1")
    assert os.stat(mnt / "p").st_nlink == 3


def test_unlink_open_directory_handle(mnt):
    """rmdir of a directory that a process has open succeeds; the handle
    then reads as empty."""
    os.mkdir(mnt / "d")
    fd = os.open(mnt / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(mnt / "d")
        assert errno_of(os.stat, mnt / "d") == errno.ENOENT
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)


# -- attributes --------------------------------------------------------------

def test_stat_fields(mnt):
    """stat reports type, size, blocks, nlink, owner and recent times."""
    now = time.time()
    put(mnt / "s", b"x" * 10000)
    st = os.stat(mnt / "s")
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 10000
    assert st.st_blocks * 512 >= 10000
    assert st.st_nlink == 1
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    for t in (st.st_mtime, st.st_ctime):
        assert now - 60 < t < now + 60
    assert st.st_blksize > 0


def test_chmod(mnt):
    """chmod changes the permission bits and ctime, also on an open file."""
    put(mnt / "c", b"")
    before = os.stat(mnt / "c")
    time.sleep(0.01)
    os.chmod(mnt / "c", 0o4751)
    st = os.stat(mnt / "c")
    assert stat.S_IMODE(st.st_mode) == 0o4751
    assert st.st_ctime_ns > before.st_ctime_ns
    fd = os.open(mnt / "c", os.O_RDONLY)
    try:
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)
    os.mkdir(mnt / "d")
    os.chmod(mnt / "d", 0o1777)
    assert stat.S_IMODE(os.stat(mnt / "d").st_mode) == 0o1777


def test_chown_as_root(mnt):
    """Root can chown a segment to any uid/gid; -1 leaves a field alone."""
    put(mnt / "o", b"")
    os.chown(mnt / "o", 1234, 5678)
    st = os.stat(mnt / "o")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(mnt / "o", -1, 42)
    st = os.stat(mnt / "o")
    assert (st.st_uid, st.st_gid) == (1234, 42)
    os.mkdir(mnt / "d")
    os.chown(mnt / "d", 7, 8)
    st = os.stat(mnt / "d")
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_utimens_nanoseconds(mnt):
    """os.utime with ns sets atime/mtime exactly, to the nanosecond."""
    put(mnt / "t", b"")
    atime, mtime = 1_234_567_890_123_456_789, 1_111_111_111_987_654_321
    os.utime(mnt / "t", ns=(atime, mtime))
    st = os.stat(mnt / "t")
    assert st.st_atime_ns == atime
    assert st.st_mtime_ns == mtime
    now = time.time_ns()
    os.utime(mnt / "t")  # both to now
    st = os.stat(mnt / "t")
    assert abs(st.st_mtime_ns - now) < 60 * 10**9
    assert abs(st.st_atime_ns - now) < 60 * 10**9


def test_access(mnt):
    """access() answers like tmpfs for root: R/W always, X only with a bit."""
    put(mnt / "a", b"")
    os.chmod(mnt / "a", 0o644)
    assert os.access(mnt / "a", os.R_OK | os.W_OK)
    assert os.access(mnt / "a", os.F_OK)
    assert not os.access(mnt / "a", os.X_OK)
    os.chmod(mnt / "a", 0o744)
    assert os.access(mnt / "a", os.X_OK)
    assert not os.access(mnt / "missing", os.F_OK)
    assert os.access(mnt / "lists", os.R_OK | os.X_OK)


# -- statfs ------------------------------------------------------------------

def test_statvfs_capacity_and_usage(mnt):
    """statvfs reports a nonzero capacity and 255-byte names; used blocks
    grow after writing 16 MiB."""
    before = os.statvfs(mnt)
    assert before.f_blocks > 0 and before.f_frsize > 0 and before.f_bsize > 0
    assert before.f_bavail <= before.f_bfree <= before.f_blocks
    assert before.f_namemax == 255
    with open(mnt / "big", "wb") as f:
        for _ in range(16):
            f.write(b"\xa5" * MiB)
    after = os.statvfs(mnt)
    used = lambda s: (s.f_blocks - s.f_bfree) * s.f_frsize  # noqa: E731
    assert used(after) - used(before) >= 15 * MiB
    os.unlink(mnt / "big")
    # FUSE sends RELEASE and FORGET asynchronously: allow them a moment.
    freed = wait_until(
        lambda: used(os.statvfs(mnt)) - used(before) < 1 * MiB, 3)
    assert freed, f"{used(os.statvfs(mnt)) - used(before)} bytes still used"


def test_df_shows_size(mnt):
    """`df -P` reports the mount with a nonzero size."""
    from harness import run

    out = run(["df", "-P", "-k", mnt], timeout=10).stdout.splitlines()
    assert len(out) == 2
    fields = out[1].split()
    assert fields[-1] == str(mnt)
    assert int(fields[1]) > 0  # 1024-blocks


def test_directory_times_follow_changes(mnt):
    """A directory's mtime and ctime advance when entries are created,
    renamed or removed in it."""
    os.mkdir(mnt / "d")

    def age():
        os.utime(mnt / "d", ns=(10**9, 10**9))
        return os.stat(mnt / "d")

    for change in (lambda: put(mnt / "d" / "f", b""),
                   lambda: os.rename(mnt / "d" / "f", mnt / "d" / "g"),
                   lambda: os.link(mnt / "d" / "g", mnt / "d" / "h"),
                   lambda: os.unlink(mnt / "d" / "g"),
                   lambda: os.mkdir(mnt / "d" / "sub")):
        before = age()
        change()
        after = os.stat(mnt / "d")
        assert after.st_mtime_ns > before.st_mtime_ns
        assert after.st_ctime_ns >= before.st_ctime_ns


@pytest.mark.deadline(60)
def test_unlink_every_entry_while_reading_dir(mnt):
    """Unlinking entries while a readdir stream walks the directory (what
    rm -r does) still visits every entry exactly once."""
    from harness import run

    os.mkdir(mnt / "big")
    names = {f"f{i:04d}" for i in range(3000)}
    for n in names:
        os.close(os.open(mnt / "big" / n, os.O_CREAT | os.O_WRONLY, 0o644))
    seen = []
    with os.scandir(mnt / "big") as it:
        for e in it:
            seen.append(e.name)
            os.unlink(e.path)
    assert sorted(seen) == sorted(names)
    assert os.listdir(mnt / "big") == []
    os.makedirs(mnt / "tree" / "a" / "b")
    for i in range(500):
        put(mnt / "tree" / "a" / f"x{i}", b"")
        put(mnt / "tree" / "a" / "b" / f"y{i}", b"")
    run(["rm", "-r", mnt / "tree", mnt / "big"], timeout=60)
    assert sorted(os.listdir(mnt)) == ["lists"]


@pytest.mark.deadline(60)
def test_concurrent_create_write_unlink(mnt):
    """4 processes creating, writing, checking and unlinking their own files
    in one directory at once never see each other's data or lose a file."""
    import select

    n, rounds = 4, 150
    gate_r, gate_w = os.pipe()
    pids = []
    for w in range(n):
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                os.close(gate_w)
                select.select([gate_r], [], [], 20)
                for i in range(rounds):
                    p = mnt / f"w{w}-{i % 7}"
                    data = f"{w}:{i}:".encode() * (1 + i % 50)
                    put(p, data)
                    if get(p) != data:
                        os._exit(2)
                    if i % 3 == 0:
                        os.rename(p, mnt / f"w{w}-r")
                        p = mnt / f"w{w}-r"
                    if get(p) != data:
                        os._exit(3)
                    os.unlink(p)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(gate_r)
    os.close(gate_w)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0] * n
    assert sorted(os.listdir(mnt)) == ["lists"]
