"""The load that test_restart.py runs while it kills or upgrades the server.

Each part is a process of its own, started as

    python restart_load.py model DIR SEED     the model-checked stream
    python restart_load.py mapper MNT         a mapped and an unlinked segment
    python restart_load.py shm PREFIX         CPython's shared_memory, with
                                              /dev/shm bound to the mount
    python restart_load.py churn DIR          creates and unlinks, timed

Each runs until a line (or end of file) arrives on its stdin, then prints
one JSON line with what it did and exits 0.  At the first result it did
not expect it prints the operation and the result to stderr and exits 1
at once: the test sees that while the load still runs.  The mapper is
the exception: it prints "ready JSON" when set up, its JSON report on
"stop", and exits on "quit" (until then it holds its segments).

The test's side is Load below: it starts the parts, watches them, stops
them, and checks from its own process what they left.

    python restart_load.py selftest DIR SECONDS

runs the whole load on DIR (a plain tmpfs, as root: the shm part binds
DIR over /dev/shm in a mount namespace of its own) and checks it: the
model checker's own test.
"""

import errno
import hashlib
import json
import mmap
import os
import random
import select
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = os.path.abspath(__file__)
PAGE = 4096
MAXSIZE = 64 * 1024         # the largest file the model makes
MAXFDS = 8                  # descriptors the model keeps open at once
POOL = 300                  # names the model draws from
MODES = (0o600, 0o640, 0o644, 0o660, 0o700, 0o755, 0o444, 0o400, 0o666)
KEYS = ("user.a", "user.b", "user.c")
SIZES = (0, 1, 100, 4095, 4096, 4097, 12288, 30000, MAXSIZE)
MAPPED = 1 << 20            # the mapper's mapped segment
HELD = 256 * 1024           # the mapper's unlinked, held segment
HELD_STEP = 4 * PAGE        # where it writes its counter in the held one


# --------------------------------------------------------------------------
# Shared by the workers

def pattern(seed, off, n):
    """harness.pattern: byte (pos % 251 + seed) & 0xff at offset pos (here
    without importing pytest into every worker)."""
    unit = bytes((i + seed) & 0xFF for i in range(251))
    start = off % 251
    reps = (start + n) // 251 + 1
    return (unit * reps)[start:start + n]


def errname(e):
    if not e:
        return "success"
    return "%s (%s)" % (errno.errorcode.get(e, str(e)), os.strerror(e))


class Unexpected(Exception):
    """An operation's result differs from the model's: the test fails."""


def stop_requested():
    """A line or end of file on stdin: time to stop."""
    return bool(select.select([sys.stdin], [], [], 0)[0])


def read_all(fd):
    """Every byte of an open file from offset 0 (pread to end of file)."""
    out, off = [], 0
    while True:
        chunk = os.pread(fd, 1 << 16, off)
        if not chunk:
            return b"".join(out)
        out.append(chunk)
        off += len(chunk)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# The model-checked stream

class Inode:
    __slots__ = ("key", "data", "mode", "xattrs", "nlink", "ino", "opens")

    def __init__(self, key, mode, ino):
        self.key, self.mode, self.ino = key, mode, ino
        self.data = bytearray()
        self.xattrs = {}
        self.nlink = 1
        self.opens = 0


class Model:
    """Names in one directory, each pointing at an inode (hard links
    share one); each inode's bytes, mode, user.* attributes, link count
    and st_ino; the descriptors this process holds.  Every operation's
    result is predicted from it first, then checked."""

    def __init__(self, d, seed):
        self.d = d
        self.rng = random.Random(seed)
        self.names = {}         # name -> Inode
        self.fds = {}           # fd -> Inode
        self.keys = 0
        self.ops = 0
        self.expected_errors = {}
        self.maxpause = 0.0
        self.slowest = ""

    # -- running one operation against its prediction --------------------
    def do(self, desc, expect, fn, *args):
        """fn(*args) must succeed (expect 0) or fail with errno expect.
        Returns fn's result."""
        t0 = time.monotonic()
        try:
            r, got = fn(*args), 0
        except OSError as e:
            r, got = None, e.errno
        dt = time.monotonic() - t0
        self.ops += 1
        if dt > self.maxpause:
            self.maxpause, self.slowest = dt, desc
        if got != expect:
            raise Unexpected("operation %d: %s: got %s, the model says %s"
                             % (self.ops, desc, errname(got), errname(expect)))
        if expect:
            n = errno.errorcode[expect]
            self.expected_errors[n] = self.expected_errors.get(n, 0) + 1
        return r

    def check(self, ok, what):
        if not ok:
            raise Unexpected("operation %d: %s" % (self.ops, what))

    def path(self, name):
        return os.path.join(self.d, name)

    # -- choosing ---------------------------------------------------------
    def any_name(self):
        return "f%03d" % self.rng.randrange(POOL)

    def some_name(self):
        """Mostly a name that exists, sometimes any (maybe absent)."""
        if self.names and self.rng.random() < 0.85:
            return self.rng.choice(sorted(self.names))
        return self.any_name()

    def target(self):
        """("fd", fd, inode) or ("name", name, inode or None)."""
        if self.fds and self.rng.random() < 0.5:
            fd = self.rng.choice(sorted(self.fds))
            return "fd", fd, self.fds[fd]
        name = self.some_name()
        return "name", name, self.names.get(name)

    @staticmethod
    def label(kind, what):
        return ("fd %d" % what) if kind == "fd" else what

    def new_inode(self, mode, ino):
        for other in self.live():
            self.check(other.ino != ino, "a new file got st_ino %d, which "
                       "inode #%d (alive) has" % (ino, other.key))
        self.keys += 1
        return Inode(self.keys, mode, ino)

    def live(self):
        seen = {}
        for i in list(self.names.values()) + list(self.fds.values()):
            seen[i.key] = i
        return list(seen.values())

    def drop_link(self, inode):
        inode.nlink -= 1

    def keep_or_close(self, fd, inode, desc):
        if len(self.fds) < MAXFDS and self.rng.random() < 0.5:
            self.fds[fd] = inode
            inode.opens += 1
        else:
            self.do("close(%s)" % desc, 0, os.close, fd)

    # -- the operations ----------------------------------------------------
    def absent_name(self):
        """Mostly a name that does not exist yet (any, if all do)."""
        for _ in range(20):
            name = self.any_name()
            if name not in self.names:
                return name
        return self.any_name()

    def op_create(self):
        name = self.absent_name() if self.rng.random() < 0.85 else self.some_name()
        mode = self.rng.choice(MODES)
        expect = errno.EEXIST if name in self.names else 0
        desc = "open(%s, O_CREAT|O_EXCL|O_RDWR, %o)" % (name, mode)
        fd = self.do(desc, expect, os.open, self.path(name),
                     os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
        if expect:
            return
        st = self.do("fstat(new %s)" % name, 0, os.fstat, fd)
        self.check(st.st_size == 0 and stat.S_IMODE(st.st_mode) == mode
                   and st.st_nlink == 1,
                   "%s: new file has size %d, mode %o, nlink %d"
                   % (desc, st.st_size, stat.S_IMODE(st.st_mode), st.st_nlink))
        inode = self.new_inode(mode, st.st_ino)
        self.names[name] = inode
        self.keep_or_close(fd, inode, "new " + name)

    def op_open(self):
        name = self.some_name()
        inode = self.names.get(name)
        trunc = self.rng.random() < 0.3
        desc = "open(%s, O_RDWR%s)" % (name, "|O_TRUNC" if trunc else "")
        fd = self.do(desc, 0 if inode else errno.ENOENT, os.open,
                     self.path(name), os.O_RDWR | (os.O_TRUNC if trunc else 0))
        if inode is None:
            return
        if trunc:
            del inode.data[:]
        self.keep_or_close(fd, inode, name)

    def op_close(self):
        if not self.fds:
            return
        fd = self.rng.choice(sorted(self.fds))
        inode = self.fds.pop(fd)
        inode.opens -= 1
        self.do("close(fd %d)" % fd, 0, os.close, fd)

    def with_fd(self, kind, what, inode, desc, flags, fn):
        """Run fn(fd) on the target: its descriptor, or the name opened
        (ENOENT where the model has no such name) and closed after."""
        if kind == "fd":
            return fn(what)
        fd = self.do("open(%s) for %s" % (what, desc),
                     0 if inode else errno.ENOENT, os.open, self.path(what), flags)
        if inode is None:
            return None
        try:
            return fn(fd)
        finally:
            self.do("close(%s) after %s" % (what, desc), 0, os.close, fd)

    def op_write(self):
        kind, what, inode = self.target()
        off = self.rng.randrange(0, MAXSIZE - 1)
        n = self.rng.randrange(1, min(8192, MAXSIZE - off) + 1)
        data = pattern(self.rng.randrange(256), off, n)
        desc = "pwrite(%s, %d bytes at %d)" % (self.label(kind, what), n, off)

        def write(fd):
            got = self.do(desc, 0, os.pwrite, fd, data, off)
            self.check(got == n, "%s wrote %d bytes" % (desc, got))
            if len(inode.data) < off:
                inode.data.extend(bytes(off - len(inode.data)))
            inode.data[off:off + n] = data
        self.with_fd(kind, what, inode, desc, os.O_WRONLY, write)

    def op_truncate(self):
        kind, what, inode = self.target()
        size = self.rng.choice(SIZES)
        if kind == "fd":
            self.do("ftruncate(fd %d, %d)" % (what, size), 0, os.ftruncate, what, size)
        else:
            self.do("truncate(%s, %d)" % (what, size), 0 if inode else errno.ENOENT,
                    os.truncate, self.path(what), size)
        if inode is not None:
            if size < len(inode.data):
                del inode.data[size:]
            else:
                inode.data.extend(bytes(size - len(inode.data)))

    def op_read(self):
        kind, what, inode = self.target()
        desc = "read(%s)" % self.label(kind, what)

        def read(fd):
            got = self.do(desc, 0, read_all, fd)
            if got != inode.data:
                first = next((i for i, (a, b) in enumerate(zip(got, inode.data))
                              if a != b), min(len(got), len(inode.data)))
                raise Unexpected("operation %d: %s: %d bytes, the model has %d; "
                                 "first difference at %d"
                                 % (self.ops, desc, len(got), len(inode.data), first))
        self.with_fd(kind, what, inode, desc, os.O_RDONLY, read)

    def op_stat(self):
        kind, what, inode = self.target()
        if kind == "fd":
            st = self.do("fstat(fd %d)" % what, 0, os.fstat, what)
        else:
            st = self.do("stat(%s)" % what, 0 if inode else errno.ENOENT,
                         os.stat, self.path(what))
        if inode is not None:
            self.check_stat(st, inode, self.label(kind, what))

    def check_stat(self, st, inode, label):
        got = (stat.S_ISREG(st.st_mode), st.st_size, oct(stat.S_IMODE(st.st_mode)),
               st.st_nlink, st.st_ino)
        want = (True, len(inode.data), oct(inode.mode), inode.nlink, inode.ino)
        self.check(got == want, "stat(%s): (regular, size, mode, nlink, ino) is "
                   "%s, the model says %s" % (label, got, want))

    def op_chmod(self):
        kind, what, inode = self.target()
        mode = self.rng.choice(MODES)
        if kind == "fd":
            self.do("fchmod(fd %d, %o)" % (what, mode), 0, os.fchmod, what, mode)
        else:
            self.do("chmod(%s, %o)" % (what, mode), 0 if inode else errno.ENOENT,
                    os.chmod, self.path(what), mode)
        if inode is not None:
            inode.mode = mode

    def op_setxattr(self):
        kind, what, inode = self.target()
        key = self.rng.choice(KEYS)
        value = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 48)))
        flags = self.rng.choice((0, os.XATTR_CREATE, os.XATTR_REPLACE))
        if inode is None:
            expect = errno.ENOENT
        elif flags == os.XATTR_CREATE and key in inode.xattrs:
            expect = errno.EEXIST
        elif flags == os.XATTR_REPLACE and key not in inode.xattrs:
            expect = errno.ENODATA
        else:
            expect = 0
        target = what if kind == "fd" else self.path(what)
        self.do("setxattr(%s, %s, %d bytes, flags %d)"
                % (self.label(kind, what), key, len(value), flags),
                expect, os.setxattr, target, key, value, flags)
        if not expect:
            inode.xattrs[key] = value

    def op_removexattr(self):
        kind, what, inode = self.target()
        key = self.rng.choice(KEYS)
        expect = (errno.ENOENT if inode is None else
                  0 if key in inode.xattrs else errno.ENODATA)
        target = what if kind == "fd" else self.path(what)
        self.do("removexattr(%s, %s)" % (self.label(kind, what), key), expect,
                os.removexattr, target, key)
        if not expect:
            del inode.xattrs[key]

    def op_getxattrs(self):
        kind, what, inode = self.target()
        target = what if kind == "fd" else self.path(what)
        label = self.label(kind, what)
        names = self.do("listxattr(%s)" % label, 0 if inode else errno.ENOENT,
                        os.listxattr, target)
        if inode is None:
            return
        got = sorted(k for k in names if k.startswith("user."))
        self.check(got == sorted(inode.xattrs),
                   "listxattr(%s): %s, the model says %s" % (label, got, sorted(inode.xattrs)))
        for key in KEYS:
            v = self.do("getxattr(%s, %s)" % (label, key),
                        0 if key in inode.xattrs else errno.ENODATA,
                        os.getxattr, target, key)
            self.check(v == inode.xattrs.get(key), "getxattr(%s, %s): %r, the "
                       "model says %r" % (label, key, v, inode.xattrs.get(key)))

    def op_rename(self):
        a = self.some_name()
        b = self.any_name() if self.rng.random() < 0.5 else self.some_name()
        src, dst = self.names.get(a), self.names.get(b)
        self.do("rename(%s, %s)" % (a, b), 0 if src else errno.ENOENT,
                os.rename, self.path(a), self.path(b))
        if src is None or src is dst:
            return          # the same file under both names: nothing changes
        if dst is not None:
            self.drop_link(dst)
        self.names[b] = self.names.pop(a)

    def op_link(self):
        a = self.some_name()
        b = self.absent_name() if self.rng.random() < 0.8 else self.some_name()
        src = self.names.get(a)
        expect = (errno.ENOENT if src is None else
                  errno.EEXIST if b in self.names else 0)
        self.do("link(%s, %s)" % (a, b), expect, os.link, self.path(a), self.path(b))
        if not expect:
            src.nlink += 1
            self.names[b] = src

    def op_unlink(self):
        a = self.some_name()
        inode = self.names.get(a)
        self.do("unlink(%s)" % a, 0 if inode else errno.ENOENT, os.unlink, self.path(a))
        if inode is not None:
            del self.names[a]
            self.drop_link(inode)

    def op_listdir(self):
        got = sorted(self.do("listdir(%s)" % self.d, 0, os.listdir, self.d))
        self.check(got == sorted(self.names), "listdir: %d names, the model has "
                   "%d; only there: %s; only in the model: %s"
                   % (len(got), len(self.names), sorted(set(got) - set(self.names))[:5],
                      sorted(set(self.names) - set(got))[:5]))

    WEIGHTS = (("create", 14), ("open", 5), ("close", 4), ("write", 14),
               ("truncate", 6), ("read", 8), ("stat", 8), ("chmod", 5),
               ("setxattr", 6), ("removexattr", 3), ("getxattrs", 3),
               ("rename", 8), ("link", 6), ("unlink", 9), ("listdir", 1))

    def run(self, max_ops=None):
        ops = [getattr(self, "op_" + n) for n, _ in self.WEIGHTS]
        weights = [w for _, w in self.WEIGHTS]
        while not stop_requested() and (max_ops is None or self.ops < max_ops):
            self.rng.choices(ops, weights)[0]()
        for fd in sorted(self.fds):
            self.fds[fd].opens -= 1
            self.do("close(fd %d) at the end" % fd, 0, os.close, fd)
        self.fds.clear()
        self.final_check()

    def final_check(self):
        """Every name, byte and attribute, checked from this process."""
        self.op_listdir()
        for name, inode in sorted(self.names.items()):
            self.check_stat(self.do("stat(%s) at the end" % name, 0, os.stat,
                                    self.path(name)), inode, name)
            fd = self.do("open(%s) at the end" % name, 0, os.open,
                         self.path(name), os.O_RDONLY)
            try:
                self.check(read_all(fd) == inode.data, "%s: bytes differ at the end" % name)
            finally:
                os.close(fd)
            got = {k: os.getxattr(self.path(name), k)
                   for k in os.listxattr(self.path(name)) if k.startswith("user.")}
            self.check(got == inode.xattrs, "%s: attributes %s at the end, the "
                       "model says %s" % (name, got, inode.xattrs))

    def manifest(self):
        """What another process checks: names, and per inode its st_ino,
        size, bytes (sha256), mode, link count and user.* attributes."""
        inodes = {}
        for inode in self.names.values():
            inodes[str(inode.key)] = {
                "ino": inode.ino, "size": len(inode.data), "sha256": sha(inode.data),
                "mode": inode.mode, "nlink": inode.nlink,
                "xattrs": {k: v.hex() for k, v in inode.xattrs.items()}}
        return {"dir": self.d,
                "names": {n: i.key for n, i in self.names.items()},
                "inodes": inodes, "ops": self.ops,
                "expected_errors": self.expected_errors,
                "maxpause": round(self.maxpause, 3), "slowest": self.slowest}


def main_model(d, seed, max_ops=None):
    os.umask(0)
    m = Model(d, int(seed))
    m.run(int(max_ops) if max_ops else None)
    return m.manifest()


# --------------------------------------------------------------------------
# The mapper: one segment mapped, one unlinked and held, counters in both

def main_mapper(mnt):
    mapped_path = os.path.join(mnt, "mapped")
    fd_m = os.open(mapped_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd_m, MAPPED)
    mm = mmap.mmap(fd_m, MAPPED)
    mapped_ino = os.fstat(fd_m).st_ino
    held_path = os.path.join(mnt, "held")
    fd_h = os.open(held_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd_h, HELD)
    os.unlink(held_path)
    print("ready " + json.dumps({"held_fd": fd_h, "mapped_ino": mapped_ino}), flush=True)
    rng = random.Random(1)
    counter, rounds = 0, 0
    while not stop_requested():
        counter += 1
        val = struct.pack("<Q", counter)
        for off in range(0, MAPPED, PAGE):
            mm[off:off + 8] = val
        for off in range(0, HELD, HELD_STEP):
            if os.pwrite(fd_h, val, off) != 8:
                raise Unexpected("pwrite of the held segment was short")
        off = rng.randrange(0, HELD, HELD_STEP)
        got = os.pread(fd_h, 8, off)
        if got != val:
            raise Unexpected("held segment at %d: %r after writing %r" % (off, got, val))
        rounds += 1
        if rounds % 64 == 0:
            # The name still leads to the mapped pages.
            fd = os.open(mapped_path, os.O_RDONLY)
            try:
                off = rng.randrange(0, MAPPED, PAGE)
                got = os.pread(fd, 8, off)
                ino = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            if got != val or ino != mapped_ino:
                raise Unexpected("mapped: the name gives %r (ino %d) at %d; the "
                                 "mapping holds %r (ino %d)"
                                 % (got, ino, off, val, mapped_ino))
        time.sleep(0.002)
    sys.stdin.readline()
    mm.flush()
    val = struct.pack("<Q", counter)
    bad = [off for off in range(0, MAPPED, PAGE) if mm[off:off + 8] != val]
    bad += [off for off in range(0, HELD, HELD_STEP) if os.pread(fd_h, 8, off) != val]
    if bad:
        raise Unexpected("at the end, offsets %s do not hold the last counter %d"
                         % (bad[:5], counter))
    st = os.fstat(fd_h)
    report = {"last": counter, "held_fd": fd_h, "held_blocks": st.st_blocks,
              "held_nlink": st.st_nlink, "held_size": st.st_size,
              "mapped_ino": mapped_ino}
    print(json.dumps(report), flush=True)
    sys.stdin.readline()        # "quit": let go of both
    mm.close()
    os.close(fd_m)
    os.close(fd_h)
    return None


# --------------------------------------------------------------------------
# CPython's shared_memory, unmodified, on /dev/shm (the mount, bound there)

def shm_peer(conn):
    """Attach by name from another process, check the bytes, answer in
    the segment itself."""
    from multiprocessing import shared_memory
    while True:
        msg = conn.recv()
        if msg is None:
            return
        name, size, seed = msg
        try:
            shm = shared_memory.SharedMemory(name=name)
            ok = shm.size >= size and bytes(shm.buf[:size]) == pattern(seed, 0, size)
            shm.buf[:4] = b"ack!"
            shm.close()
            conn.send("ok" if ok else "bytes differ in %s" % name)
        except OSError as e:
            conn.send("attaching %s: %s" % (name, errname(e.errno)))


def main_shm(prefix, lists="lists"):
    import multiprocessing as mp
    from multiprocessing import shared_memory

    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    peer = ctx.Process(target=shm_peer, args=(child,))
    peer.start()
    rng = random.Random(7)
    rounds = lists = 0
    lists_too = lists == "lists"      # "nolists": a plain tmpfs has none
    try:
        while not stop_requested():
            rounds += 1
            name = "%s%d" % (prefix, rounds)
            size = rng.choice((4, 100, 4096, 5000, 65536, 200000))
            seed = rounds & 0xFF
            shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            shm.buf[:size] = pattern(seed, 0, size)
            conn.send((name, size, seed))
            if not conn.poll(60):
                raise Unexpected("the attached process did not answer for %s" % name)
            answer = conn.recv()
            if answer != "ok":
                raise Unexpected(answer)
            if bytes(shm.buf[:4]) != b"ack!":
                raise Unexpected("%s: the other process's store is not seen" % name)
            shm.close()
            shm.unlink()
            if os.path.exists("/dev/shm/" + name):
                raise Unexpected("%s still exists after unlink" % name)
            if rounds % 4 == 0 and lists_too:
                lists += 1
                lname = "%sL%d" % (prefix, rounds)
                values = [rounds, 2.5, "s%d" % rounds, None, True, b"\x01\x02"]
                with open("/dev/shm/lists/" + lname, "w") as f:
                    f.write("".join(repr(v) + "\n" for v in values))
                sl = shared_memory.ShareableList(name=lname)
                if list(sl) != values:
                    raise Unexpected("%s: ShareableList reads %r, lists/ was given %r"
                                     % (lname, list(sl), values))
                sl[0] = rounds + 1000
                with open("/dev/shm/lists/" + lname) as f:
                    first = f.readline()
                if first != "%d\n" % (rounds + 1000):
                    raise Unexpected("%s: lists/ shows %r after sl[0] = %d"
                                     % (lname, first, rounds + 1000))
                sl.shm.close()
                sl.shm.unlink()
                if os.path.exists("/dev/shm/lists/" + lname):
                    raise Unexpected("lists/%s still exists after unlink" % lname)
    finally:
        conn.send(None)
        peer.join(30)
    return {"rounds": rounds, "lists": lists}


# --------------------------------------------------------------------------
# Churn: create, write, close, unlink, each timed

def main_churn(d):
    ops, maxpause, slowest, i = 0, 0.0, "", 0
    while not stop_requested():
        i += 1
        path = os.path.join(d, "c%d" % (i % 64))
        fd = None
        for what, fn in (
                ("open(O_CREAT|O_EXCL) %s" % path,
                 lambda: os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)),
                ("write %s" % path, lambda: os.write(fd, b"x" * 100)),
                ("close %s" % path, lambda: os.close(fd)),
                ("unlink %s" % path, lambda: os.unlink(path))):
            t0 = time.monotonic()
            try:
                r = fn()
            except OSError as e:
                raise Unexpected("%s: %s" % (what, errname(e.errno))) from None
            dt = time.monotonic() - t0
            if what.startswith("open"):
                fd = r
            ops += 1
            if dt > maxpause:
                maxpause, slowest = dt, what
    return {"ops": ops, "maxpause": round(maxpause, 3), "slowest": slowest}


# --------------------------------------------------------------------------
# The test's side

class Worker:
    """One load process, in a process group of its own; .proc and .kill()
    let the test's guard kill it at a deadline."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.errlog = Path(workdir) / ("%s.err" % name)
        with open(self.errlog, "wb") as err:
            self.proc = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        self._buf = b""

    def send(self, line):
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no answer within %ds; stderr: %s"
                                     % (self.name, timeout, self.stderr()))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=10)
                    raise AssertionError("%s exited %s: %s" % (
                        self.name, self.proc.returncode, self.stderr()))
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def stderr(self):
        try:
            return self.errlog.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def failure(self):
        """Why the process ended early, or None while it runs."""
        if self.proc.poll() is None:
            return None
        return "%s stopped (exit %s): %s" % (self.name, self.proc.returncode,
                                            self.stderr().strip())

    def finish(self, timeout=120):
        """Stop it; its JSON report (it must exit 0)."""
        self.send("stop")
        line = self.readline(timeout)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit after its report" % self.name) from None
        assert status == 0, self.failure()
        return json.loads(line)

    def kill(self):
        import harness                  # the tests' side only
        if self.proc.poll() is None:
            harness.kill_group(self.proc)
        for p in (self.proc.stdin, self.proc.stdout):
            try:
                p.close()
            except (OSError, ValueError):
                pass


class Load:
    """The load of test_restart.py on a mount: the model stream in
    MNT/model, the mapper (MNT/mapped and an unlinked segment), and, with
    shm=True, CPython's shared_memory with /dev/shm bound to the mount
    (names rtN at its root, and lists/); with churn=True also creates and
    unlinks in MNT/churn, timed."""

    def __init__(self, mnt, workdir, seed, shm=True, churn=False, guard=None,
                 others=(), lists=True):
        self.mnt, self.workdir, self.seed = Path(mnt), Path(workdir), seed
        self.shm, self.churn = shm, churn
        self.lists = lists              # False only for the selftest's tmpfs
        self.others = list(others)      # names at the root the test made
        self.guard = guard
        self.workers = {}
        self.ready = None
        self.results = {}

    def _start(self, name, argv):
        w = Worker(name, argv, self.workdir)
        self.workers[name] = w
        if self.guard is not None:
            self.guard.clients.append(w)
        return w

    def start(self):
        py = sys.executable
        (self.mnt / "model").mkdir()
        self._start("model", [py, HERE, "model", self.mnt / "model", self.seed])
        mapper = self._start("mapper", [py, HERE, "mapper", self.mnt])
        line = mapper.readline(60)
        assert line.startswith("ready "), line
        self.ready = json.loads(line[6:])
        if self.shm:
            # Real CPython SharedMemory opens /dev/shm/NAME: in a mount
            # namespace of its own, /dev/shm is this mount; in a PID
            # namespace of its own too, so that when it ends, its resource
            # tracker and children have ended (no one holds the mount).
            self._start("shm", [
                "unshare", "--mount", "--propagation", "private", "--pid",
                "--fork", "--kill-child", "--", "sh", "-c",
                'mount --bind "$1" /dev/shm && exec "$2" "$3" shm rt "$4"',
                "sh", self.mnt, py, HERE, "lists" if self.lists else "nolists"])
        if self.churn:
            (self.mnt / "churn").mkdir()
            self._start("churn", [py, HERE, "churn", self.mnt / "churn"])
        return self

    def check(self):
        """Fail at once if a part has stopped (an unexpected result)."""
        for w in self.workers.values():
            why = w.failure()
            if why:
                raise AssertionError(why)

    def stop(self, timeout=120):
        """Stop every part; their reports (the mapper keeps holding)."""
        self.check()
        for name, w in self.workers.items():
            self.results[name] = w.finish(timeout) if name != "mapper" else None
        mapper = self.workers["mapper"]
        mapper.send("stop")
        self.results["mapper"] = json.loads(mapper.readline(timeout))
        return self.results

    def verify(self):
        """From this process: the model's names, bytes and attributes; the
        mapper's counters, through the name and through its descriptor of
        the unlinked segment; nothing else at the mount's root."""
        verify_manifest(self.results["model"])
        rep = self.results["mapper"]
        val = struct.pack("<Q", rep["last"])
        st = os.stat(self.mnt / "mapped")
        assert st.st_ino == rep["mapped_ino"], "mapped is no longer the mapped file"
        data = (self.mnt / "mapped").read_bytes()
        assert len(data) == MAPPED
        bad = [o for o in range(0, MAPPED, PAGE) if data[o:o + 8] != val]
        assert not bad, "mapped: offsets %s lack the last counter %d" % (bad[:5], rep["last"])
        assert rep["held_nlink"] == 0 and rep["held_size"] == HELD, rep
        # Another open of the unlinked segment, through the holder's fd.
        fd = os.open("/proc/%d/fd/%d" % (self.workers["mapper"].proc.pid,
                                         rep["held_fd"]), os.O_RDONLY)
        try:
            bad = [o for o in range(0, HELD, HELD_STEP) if os.pread(fd, 8, o) != val]
        finally:
            os.close(fd)
        assert not bad, "held: offsets %s lack the last counter" % bad[:5]
        # The shm part unlinked all it made; a request done twice would
        # have left a name behind.
        top = sorted(os.listdir(self.mnt))
        want = sorted(["model", "mapped"] + self.others
                      + (["lists"] if self.lists else [])
                      + (["churn"] if self.churn else []))
        assert top == want, "names at the root: %s, expected %s" % (top, want)
        if self.lists:
            lists = [n for n in os.listdir(self.mnt / "lists") if n.startswith("rt")]
            assert not lists, "lists/ still shows %s" % lists
        if self.churn:
            assert os.listdir(self.mnt / "churn") == []

    def held_bytes(self):
        """Pages of the unlinked segment the mapper holds."""
        return self.results["mapper"]["held_blocks"] * 512

    def release(self):
        """Let the mapper go (its segments with it)."""
        w = self.workers["mapper"]
        w.send("quit")
        try:
            status = w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the mapper did not exit") from None
        assert status == 0, w.failure()

    def kill(self):
        for w in self.workers.values():
            w.kill()


def verify_manifest(m):
    """The model's final state, checked by another process: the names,
    which share an inode (st_ino), and each inode's size, bytes, mode,
    link count and user.* attributes."""
    d = m["dir"]
    got = sorted(os.listdir(d))
    assert got == sorted(m["names"]), "names in %s: %s, the model has %s" % (
        d, got, sorted(m["names"]))
    inos = {}
    for name, key in m["names"].items():
        want = m["inodes"][str(key)]
        p = os.path.join(d, name)
        st = os.stat(p)
        with open(p, "rb") as f:
            data = f.read()
        xattrs = {k: os.getxattr(p, k).hex() for k in os.listxattr(p) if k.startswith("user.")}
        got = {"ino": st.st_ino, "size": st.st_size, "sha256": sha(data),
               "mode": stat.S_IMODE(st.st_mode), "nlink": st.st_nlink, "xattrs": xattrs}
        assert got == want, "%s: %s, the model says %s" % (name, got, want)
        inos.setdefault(st.st_ino, set()).add(key)
    shared = {ino: keys for ino, keys in inos.items() if len(keys) > 1}
    assert not shared, "distinct files share an st_ino: %s" % shared


def used_bytes(mnt):
    """What df says is used."""
    sv = os.statvfs(mnt)
    return (sv.f_blocks - sv.f_bfree) * sv.f_frsize


def file_bytes(mnt):
    """The pages of every segment with a name under mnt (each inode once;
    lists/ is a view of them and is skipped)."""
    seen = {}
    root = os.path.realpath(mnt)
    for d, dirs, files in os.walk(root):
        if d == root and "lists" in dirs:
            dirs.remove("lists")
        for f in files:
            st = os.lstat(os.path.join(d, f))
            if stat.S_ISREG(st.st_mode):
                seen[st.st_ino] = st.st_blocks * 512
    return sum(seen.values())


# --------------------------------------------------------------------------

def selftest(d, seconds):
    """The load on a plain directory (a tmpfs), without kills; returns its
    reports.  Raises AssertionError when something does not hold."""
    import tempfile
    work = Path(tempfile.mkdtemp(prefix="restart-load-"))
    load = Load(d, work, seed=12345, shm=True, churn=True,
                lists=os.path.isdir(os.path.join(d, "lists")))
    try:
        load.start()
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            load.check()
            time.sleep(0.2)
        res = load.stop()
        load.verify()
        used, files = used_bytes(d), file_bytes(d) + load.held_bytes()
        load.release()
        assert used == files, "df says %d bytes used, the segments have %d" % (used, files)
        m = res["model"]
        return {"model": {"ops": m["ops"], "expected_errors": m["expected_errors"],
                          "names": len(m["names"]), "inodes": len(m["inodes"]),
                          "maxpause": m["maxpause"]},
                "mapper": {"last": res["mapper"]["last"]}, "shm": res["shm"],
                "churn": res["churn"], "df used": used, "segments": files}
    finally:
        load.kill()
        import shutil
        shutil.rmtree(work, ignore_errors=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "model":
            out = main_model(*args)
        elif cmd == "mapper":
            out = main_mapper(*args)
        elif cmd == "shm":
            out = main_shm(*args)
        elif cmd == "churn":
            out = main_churn(*args)
        elif cmd == "selftest":
            out = selftest(*args)
        else:
            sys.exit("unknown command " + cmd)
    except Unexpected as e:
        print("%s: %s" % (cmd, e), file=sys.stderr, flush=True)
        return 1
    except OSError as e:
        # An operation outside the model's (shm, mapper) failed.
        import traceback
        traceback.print_exc()
        print("%s: unexpected %s: %s" % (cmd, errname(e.errno), e),
              file=sys.stderr, flush=True)
        return 1
    if out is not None:
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
