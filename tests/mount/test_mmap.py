"""mmap(MAP_SHARED) of segments: coherence between processes without msync,
SIGBUS past end of file, mappings that outlive their name."""

import mmap
import os

from harness import MiB, pattern

PAGE = mmap.PAGESIZE


def make(path, size):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    return fd


def test_mmap_write_then_read_syscall(mnt):
    """Stores through a MAP_SHARED mapping are seen by read() (no msync)."""
    fd = make(mnt / "m", 3 * PAGE + 5)
    try:
        with mmap.mmap(fd, 3 * PAGE + 5) as m:
            m[:5] = b"hello"
            m[PAGE * 3:PAGE * 3 + 5] = b"tail!"
            assert os.pread(fd, 5, 0) == b"hello"
            assert os.pread(fd, 10, PAGE * 3) == b"tail!"
            # and the other way round: write() is seen by the mapping
            os.pwrite(fd, b"WORLD", PAGE)
            assert m[PAGE:PAGE + 5] == b"WORLD"
    finally:
        os.close(fd)
    with open(mnt / "m", "rb") as f:
        data = f.read()
    assert data[:5] == b"hello" and data[PAGE:PAGE + 5] == b"WORLD"
    assert len(data) == 3 * PAGE + 5


def test_c_writes_python_sees(mnt, client):
    """A C process stores into its mapping; Python's own mapping of the same
    file sees the bytes at once, without msync."""
    size = 2 * MiB + 41
    fd = make(mnt / "shared", size)
    try:
        with mmap.mmap(fd, size) as m:
            c = client(mnt / "shared")
            c.ok("open rw")
            c.ok(f"map {size}")
            c.ok(f"fill 0 {size} 7")
            assert m[:] == pattern(7, 0, size)
            c.ok("fill 4093 10 99")
            assert m[4093:4103] == pattern(99, 4093, 10)
            c.ok("unmap")
            assert c.quit() == 0
    finally:
        os.close(fd)


def test_python_writes_c_sees(mnt, client):
    """Python stores into its mapping; a C process's mapping sees them at
    once, without msync, and its stores come back."""
    size = 1 * MiB + 3
    fd = make(mnt / "shared", size)
    try:
        with mmap.mmap(fd, size) as m:
            c = client(mnt / "shared")
            c.ok("open rw")
            c.ok(f"map {size}")
            c.ok("close")  # the mapping outlives the descriptor
            for seed in (1, 2, 3):
                m[:] = pattern(seed, 0, size)
                assert c.cmd(f"verify 0 {size} {seed}") == "ok"
                c.ok(f"poke {size - 1} {seed + 100}")
                assert m[size - 1] == seed + 100
            c.ok("unmap")
            assert c.quit() == 0
    finally:
        os.close(fd)


def test_mmap_beyond_eof_sigbus(mnt, probe):
    """Touching a mapped page wholly past EOF raises SIGBUS; the partial last
    page is accessible."""
    fd = make(mnt / "b", PAGE + 100)
    os.close(fd)
    got = probe(mnt / "b", 4 * PAGE, 0, PAGE + 99, 2 * PAGE - 1, 2 * PAGE,
                3 * PAGE + 7, f"w{2 * PAGE}", f"w{PAGE + 5}")
    assert got == {0: "ok", PAGE + 99: "ok", 2 * PAGE - 1: "ok",
                   2 * PAGE: "sigbus", 3 * PAGE + 7: "sigbus",
                   PAGE + 5: "ok"}


def test_sigbus_after_shrink_in_other_process(mnt, client):
    """A live mapping in another process gets SIGBUS past the new EOF after
    a shrink, keeps the bytes below it, and works again after a grow."""
    size = 8 * PAGE
    fd = make(mnt / "s", size)
    try:
        c = client(mnt / "s")
        c.ok("open rw")
        c.ok(f"map {size}")
        c.ok(f"fill 0 {size} 5")
        os.ftruncate(fd, 2 * PAGE + 10)
        assert c.cmd(f"peek {5 * PAGE}") == "sigbus"
        assert c.cmd(f"poke {3 * PAGE} 1") == "sigbus"
        assert c.cmd(f"verify 0 {2 * PAGE + 10} 5") == "ok"
        assert os.pread(fd, 10, 2 * PAGE) == pattern(5, 2 * PAGE, 10)
        os.ftruncate(fd, size)
        # The shrink zeroed everything past the old EOF, also in the mapping.
        assert os.pread(fd, PAGE - 10, 2 * PAGE + 10) == bytes(PAGE - 10)
        assert c.cmd(f"peek {2 * PAGE + 10}") == "ok 0"
        assert c.cmd(f"peek {5 * PAGE}") == "ok 0"
        c.ok(f"poke {5 * PAGE} 9")
        assert os.pread(fd, 1, 5 * PAGE) == b"\x09"
        c.ok("unmap")
        assert c.quit() == 0
    finally:
        os.close(fd)


def test_grow_seen_by_existing_mapping(mnt, client):
    """A mapping made larger than the file becomes usable once another
    process grows the file with ftruncate."""
    fd = make(mnt / "g", PAGE)
    try:
        c = client(mnt / "g")
        c.ok("open rw")
        c.ok(f"map {4 * PAGE}")
        assert c.cmd(f"peek {3 * PAGE}") == "sigbus"
        os.ftruncate(fd, 4 * PAGE)
        c.ok(f"fill {3 * PAGE} {PAGE} 11")
        assert os.pread(fd, PAGE, 3 * PAGE) == pattern(11, 3 * PAGE, PAGE)
        assert c.ok("size") == str(4 * PAGE)
        c.ok("unmap")
        assert c.quit() == 0
    finally:
        os.close(fd)


def test_unlink_while_mapped(mnt, client):
    """An unlinked segment stays valid for processes that map it; the name is
    reused by a different segment."""
    size = 256 * 1024
    fd = make(mnt / "gone", size)
    os.close(fd)
    c = client(mnt / "gone")
    c.ok("open rw")
    c.ok(f"map {size}")
    c.ok("close")
    c.ok(f"fill 0 {size} 21")
    os.unlink(mnt / "gone")
    assert not (mnt / "gone").exists()
    assert c.cmd(f"verify 0 {size} 21") == "ok"
    c.ok(f"fill 0 {size} 22")
    assert c.cmd(f"verify 0 {size} 22") == "ok"
    fd = make(mnt / "gone", size)
    try:
        with mmap.mmap(fd, size) as m:
            assert m[:] == bytes(size)  # a different, fresh segment
            m[:4] = b"new!"
        assert c.cmd(f"verify 0 {size} 22") == "ok"
    finally:
        os.close(fd)
    c.ok("unmap")
    assert c.quit() == 0


def test_mmap_at_offset_and_private(mnt):
    """A mapping at a page offset sees the right bytes; MAP_PRIVATE stores
    stay private."""
    data = pattern(3, 0, 4 * PAGE)
    fd = make(mnt / "o", 0)
    try:
        os.write(fd, data)
        with mmap.mmap(fd, PAGE, offset=2 * PAGE) as m:
            assert m[:] == data[2 * PAGE:3 * PAGE]
        with mmap.mmap(fd, 4 * PAGE, flags=mmap.MAP_PRIVATE) as p:
            p[:4] = b"priv"
            assert p[:4] == b"priv"
        assert os.pread(fd, 4, 0) == data[:4]
    finally:
        os.close(fd)


def test_two_python_mappings_coherent(mnt):
    """Two independent opens and mappings of one segment share pages."""
    fd1 = make(mnt / "two", 64 * 1024)
    fd2 = os.open(mnt / "two", os.O_RDWR)
    try:
        with mmap.mmap(fd1, 64 * 1024) as a, mmap.mmap(fd2, 64 * 1024) as b:
            a[1000:1004] = b"ping"
            assert b[1000:1004] == b"ping"
            b[60000:60004] = b"pong"
            assert a[60000:60004] == b"pong"
    finally:
        os.close(fd1)
        os.close(fd2)


def test_o_trunc_by_other_process_sigbus_in_mapping(mnt, client):
    """open(O_TRUNC) by one process empties the segment under another's live
    mapping: its accesses then raise SIGBUS, and the old bytes are gone."""
    size = 4 * PAGE
    fd = make(mnt / "ot", size)
    os.close(fd)
    c = client(mnt / "ot")
    c.ok("open rw")
    c.ok(f"map {size}")
    c.ok(f"fill 0 {size} 13")
    os.close(os.open(mnt / "ot", os.O_WRONLY | os.O_TRUNC))
    assert os.stat(mnt / "ot").st_size == 0
    assert c.cmd("peek 0") == "sigbus"
    assert c.cmd(f"peek {3 * PAGE}") == "sigbus"
    os.truncate(mnt / "ot", size)
    assert c.cmd("peek 0") == "ok 0"
    assert c.cmd(f"verify 0 {size} 13").startswith("bad 0 ")
    c.ok("unmap")
    assert c.quit() == 0
