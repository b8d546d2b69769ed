"""File I/O on segments: create, open flags, read/write, offsets, sizes."""

import errno
import mmap
import os
import select
import stat
import time

import pytest

import harness as h
from harness import MiB, errno_of

PAGE = mmap.PAGESIZE


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def test_create_is_empty_regular_file(mnt):
    """open(O_CREAT) makes an empty regular file with the requested mode."""
    fd = os.open(mnt / "seg", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 0
    assert stat.S_IMODE(st.st_mode) == 0o640 & ~_umask()
    assert st.st_nlink == 1
    assert os.stat(mnt / "seg").st_ino == st.st_ino


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_open_missing_enoent(mnt):
    """Opening a name that does not exist without O_CREAT fails ENOENT."""
    assert errno_of(os.open, mnt / "nope", os.O_RDONLY) == errno.ENOENT
    assert errno_of(os.stat, mnt / "nope") == errno.ENOENT
    assert errno_of(os.unlink, mnt / "nope") == errno.ENOENT


def test_o_excl_existing_eexist(mnt):
    """O_CREAT|O_EXCL on an existing name fails EEXIST and leaves it intact."""
    write_file(mnt / "x", b"keep")
    assert errno_of(os.open, mnt / "x",
                    os.O_RDWR | os.O_CREAT | os.O_EXCL) == errno.EEXIST
    assert read_file(mnt / "x") == b"keep"


def test_o_excl_race_one_winner(mnt):
    """8 processes racing O_CREAT|O_EXCL on one name: exactly one wins."""
    n = 8
    gate_r, gate_w = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 99
            try:
                os.close(gate_w)
                select.select([gate_r], [], [], 20)  # wait for the gate
                try:
                    fd = os.open(mnt / "race",
                                 os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                    os.write(fd, b"winner %d" % i)
                    os.close(fd)
                    code = 0
                except OSError as e:
                    code = e.errno
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(gate_r)
    os.close(gate_w)  # opens the gate: every child wakes at once
    codes = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    assert sorted(codes) == [0] + [errno.EEXIST] * (n - 1), codes
    winner = codes.index(0)
    assert read_file(mnt / "race") == b"winner %d" % winner


def test_write_read_roundtrip(mnt):
    """Bytes written are read back exactly; st_size follows the writes."""
    data = os.urandom(3 * MiB + 17)
    write_file(mnt / "f", data)
    assert os.stat(mnt / "f").st_size == len(data)
    assert read_file(mnt / "f") == data


def test_o_trunc(mnt):
    """O_TRUNC empties an existing segment; a holder's fstat sees size 0."""
    write_file(mnt / "t", b"x" * 10000)
    holder = os.open(mnt / "t", os.O_RDONLY)
    try:
        fd = os.open(mnt / "t", os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        assert os.stat(mnt / "t").st_size == 0
        assert os.fstat(holder).st_size == 0
        assert os.pread(holder, 100, 0) == b""
    finally:
        os.close(holder)
    write_file(mnt / "t", b"new")
    assert read_file(mnt / "t") == b"new"


def test_o_append(mnt):
    """O_APPEND writes go to end of file, even after another fd grew it."""
    write_file(mnt / "a", b"head;")
    a1 = os.open(mnt / "a", os.O_WRONLY | os.O_APPEND)
    a2 = os.open(mnt / "a", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(a1, b"one;")
        os.write(a2, b"two;")
        os.write(a1, b"three;")
        os.lseek(a2, 0, os.SEEK_SET)
        os.write(a2, b"four;")
    finally:
        os.close(a1)
        os.close(a2)
    assert read_file(mnt / "a") == b"head;one;two;three;four;"


def test_pwrite_pread_offsets(mnt):
    """pwrite/pread at arbitrary offsets, including ones that span pages."""
    fd = os.open(mnt / "p", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 64 * 1024)
        spots = {0: b"A", 1: b"BC", 4095: b"DE", 4097: b"F" * 9000,
                 65535: b"G"}
        for off, data in spots.items():
            assert os.pwrite(fd, data, off) == len(data)
        for off, data in spots.items():
            assert os.pread(fd, len(data), off) == data
        assert os.fstat(fd).st_size == 64 * 1024
        assert os.pread(fd, 2, 3) == b"\0\0"
    finally:
        os.close(fd)


def test_pwrite_far_beyond_eof_leaves_zero_hole(mnt):
    """A pwrite far beyond EOF sets st_size exactly; the hole reads zeros."""
    off = 100_000_007
    fd = os.open(mnt / "far", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"start")
        assert os.pwrite(fd, b"end!", off) == 4
        assert os.fstat(fd).st_size == off + 4
        assert os.pread(fd, 4, off) == b"end!"
        assert os.pread(fd, 5, 0) == b"start"
        for hole in (5, 4096, 50_000_000, off - MiB):
            assert os.pread(fd, MiB, hole) == bytes(MiB), hole
        assert os.pread(fd, 100, off + 4) == b""
        assert os.pread(fd, 100, off + 1000) == b""
    finally:
        os.close(fd)
    assert os.stat(mnt / "far").st_size == off + 4


def test_read_at_and_past_eof(mnt):
    """read returns short counts at EOF and b'' past it."""
    write_file(mnt / "e", b"0123456789")
    fd = os.open(mnt / "e", os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 6) == b"6789"
        assert os.pread(fd, 100, 10) == b""
        assert os.pread(fd, 1, 11) == b""
        assert os.read(fd, 4) == b"0123"
        assert os.read(fd, 100) == b"456789"
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [41, 4095, 4097, 1 * MiB + 1])
def test_ftruncate_grow_exact_size(mnt, size):
    """ftruncate grows to the exact byte size (not page-rounded), zero-filled."""
    fd = os.open(mnt / "g", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abc")
        os.ftruncate(fd, size)
        assert os.fstat(fd).st_size == size
        assert os.stat(mnt / "g").st_size == size
        data = os.pread(fd, size + 100, 0)
        assert data == b"abc" + bytes(size - 3)
    finally:
        os.close(fd)


def test_truncate_shrink_then_grow_zeroes_tail(mnt):
    """Shrinking discards the tail: growing again reads zeros there."""
    write_file(mnt / "s", b"\xff" * 10000)
    os.truncate(mnt / "s", 41)
    assert os.stat(mnt / "s").st_size == 41
    assert read_file(mnt / "s") == b"\xff" * 41
    os.truncate(mnt / "s", 9000)
    assert read_file(mnt / "s") == b"\xff" * 41 + bytes(9000 - 41)
    os.truncate(mnt / "s", 0)
    assert os.stat(mnt / "s").st_size == 0
    assert read_file(mnt / "s") == b""


def test_truncate_seen_by_other_holder(mnt):
    """A truncate through one fd is seen at once by fstat on another fd."""
    write_file(mnt / "h", b"z" * 5000)
    fd = os.open(mnt / "h", os.O_RDONLY)
    try:
        os.truncate(mnt / "h", 123)
        assert os.fstat(fd).st_size == 123
        assert os.pread(fd, 9999, 0) == b"z" * 123
    finally:
        os.close(fd)


def test_unlink_while_open_keeps_data(mnt):
    """unlink of an open segment: the holder keeps its data, the name is free
    at once, and a new file of that name is a different segment."""
    old = os.urandom(50000)
    write_file(mnt / "u", old)
    fd = os.open(mnt / "u", os.O_RDWR)
    try:
        os.unlink(mnt / "u")
        assert errno_of(os.stat, mnt / "u") == errno.ENOENT
        assert "u" not in os.listdir(mnt)
        assert os.fstat(fd).st_nlink == 0
        write_file(mnt / "u", b"new one")
        assert read_file(mnt / "u") == b"new one"
        assert os.stat(mnt / "u").st_ino != os.fstat(fd).st_ino
        assert os.pread(fd, len(old) + 10, 0) == old
        os.pwrite(fd, b"still writable", 0)
        assert os.pread(fd, 14, 0) == b"still writable"
        assert os.fstat(fd).st_size == len(old)
        assert read_file(mnt / "u") == b"new one"
    finally:
        os.close(fd)
    assert read_file(mnt / "u") == b"new one"


def test_name_length_limits(mnt):
    """A 255-byte name works; 256 bytes fails ENAMETOOLONG."""
    ok = "n" * 255
    write_file(mnt / ok, b"1")
    assert ok in os.listdir(mnt)
    assert os.stat(mnt / ok).st_size == 1
    os.unlink(mnt / ok)
    bad = "n" * 256
    assert errno_of(os.open, mnt / bad, os.O_CREAT | os.O_RDWR) \
        == errno.ENAMETOOLONG
    assert errno_of(os.stat, mnt / bad) == errno.ENAMETOOLONG
    assert errno_of(os.mkdir, mnt / bad) == errno.ENAMETOOLONG


def test_write_updates_mtime_and_size(mnt):
    """write() advances mtime/ctime and st_size as on tmpfs."""
    write_file(mnt / "m", b"1")
    os.utime(mnt / "m", ns=(1_000_000_000, 1_000_000_000))
    before = os.stat(mnt / "m")
    fd = os.open(mnt / "m", os.O_WRONLY)
    try:
        os.pwrite(fd, b"22", 1)
    finally:
        os.close(fd)
    after = os.stat(mnt / "m")
    assert after.st_size == 3
    assert after.st_mtime_ns > before.st_mtime_ns
    assert after.st_mtime_ns > time.time_ns() - 60 * 10**9


def test_open_directory_for_write_eisdir(mnt):
    """Opening a directory for writing fails EISDIR; O_DIRECTORY on a file
    fails ENOTDIR."""
    os.mkdir(mnt / "d")
    assert errno_of(os.open, mnt / "d", os.O_WRONLY) == errno.EISDIR
    write_file(mnt / "f", b"")
    assert errno_of(os.open, mnt / "f",
                    os.O_RDONLY | os.O_DIRECTORY) == errno.ENOTDIR


def test_fsync_and_fdatasync_succeed(mnt):
    """fsync/fdatasync on a segment succeed (cheap no-ops)."""
    fd = os.open(mnt / "y", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    assert read_file(mnt / "y") == b"data"


def test_fsync_asked_once_then_the_kernel_answers(start_segfs):
    """fsync, fdatasync and fsyncdir reach segfs once each per mount: it
    answers ENOSYS, and the kernel answers every later one itself with 0,
    still doing first what fsync must do: in the fallback, bytes stored
    through a mapping are in the segment's backing file when fsync returns
    (with passthrough they are there at once)."""
    d = start_segfs([], args=["-d"])
    size = 5 * PAGE + 77                     # no other segment has this size
    fd = os.open(d.mnt / "s", os.O_CREAT | os.O_RDWR, 0o600)
    dfd = os.open(d.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        since = len(d.stderr())
        for i in range(5):
            m[i * PAGE:i * PAGE + 9] = b"round %d.." % i
            (os.fsync if i % 2 == 0 else os.fdatasync)(fd)
            os.fsync(dfd)
            with open(h.backing_of(d.proc.pid, size), "rb") as f:
                assert f.read() == m[:], f"round {i}: the backing file misses the stores"
        m.close()
    finally:
        os.close(dfd)
        os.close(fd)
    log = d.stderr()[since:]
    assert log.count("opcode: FSYNC (") == 1, log.count("opcode: FSYNC (")
    assert log.count("opcode: FSYNCDIR (") == 1, log.count("opcode: FSYNCDIR (")
    assert d.unmount() == []


FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2


def _fallocate(fd, mode, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                               ctypes.c_int64]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_fallocate_grow_and_punch_hole(mnt):
    """posix_fallocate grows a segment to the exact size; punching a hole
    zeroes the range and keeps the size, as on tmpfs."""
    fd = os.open(mnt / "fa", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"\x77" * 20000)
        os.posix_fallocate(fd, 0, 50001)
        assert os.fstat(fd).st_size == 50001
        assert os.pread(fd, 20000, 0) == b"\x77" * 20000
        assert os.pread(fd, 30001, 20000) == bytes(30001)
        _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)
        assert os.fstat(fd).st_size == 50001
        data = os.pread(fd, 20000, 0)
        assert data == b"\x77" * 4096 + bytes(8192) + b"\x77" * (20000 - 12288)
    finally:
        os.close(fd)
