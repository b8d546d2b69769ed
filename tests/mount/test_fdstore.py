"""segfs -o fdstore: systemd's descriptor store keeps the mount across a
death of segfs itself.

Under systemd (Type=notify, FileDescriptorStoreMax=), segfs hands systemd
the /dev/fuse connection and its two private tmpfses (sd_notify's
FDSTORE=1).  When segfs dies, or is restarted with a new binary, systemd
starts it again with them (LISTEN_FDS, LISTEN_FDNAMES), and the new segfs
takes the connection over as after a server's crash; when the service
stops, segfs unmounts, removes them from the store and releases
everything.

No systemd runs here (the machine's PID 1 is not systemd): FakeSystemd
below is systemd's side of the two documented protocols, sd_notify(3)
and sd_listen_fds(3), exactly as segfs sees them: a datagram socket named
by $NOTIFY_SOCKET, and on a restart the stored descriptors from 3 on
with $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES.
"""

import errno
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import harness as h
from harness import MiB

pytestmark = pytest.mark.usefixtures("segfs_only")


class FakeSystemd:
    """The notification socket and the descriptor store of one service."""

    def __init__(self, tmp):
        tmp.mkdir(exist_ok=True)
        self.path = str(tmp / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.store = {}            # FDNAME -> descriptor
        self.ready = 0             # READY=1 messages
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 16)
            except OSError:
                return
            if not msg and not fds:
                return
            kv = dict(line.split("=", 1) for line in msg.decode().splitlines()
                      if "=" in line)
            with self.lock:
                name = kv.get("FDNAME", "stored")
                if kv.get("FDSTORE") == "1" and fds:
                    old = self.store.pop(name, None)
                    if old is not None:
                        os.close(old)
                    self.store[name] = fds[0]
                    fds = fds[1:]
                elif kv.get("FDSTOREREMOVE") == "1" and name in self.store:
                    os.close(self.store.pop(name))
                for fd in fds:
                    os.close(fd)
                if kv.get("READY") == "1":
                    self.ready += 1

    def names(self):
        with self.lock:
            return sorted(self.store)

    def start(self, args, log):
        """Runs segfs as systemd would: NOTIFY_SOCKET, and what the store
        holds passed from descriptor 3 on (LISTEN_*)."""
        with self.lock:
            names = list(self.store)
            fds = [self.store[n] for n in names]
        # A launcher puts the stored descriptors at 3, 4, ... and sets
        # LISTEN_PID to the pid segfs will have (exec keeps it).
        launch = ("import os, sys\n"
                  "n = int(sys.argv[1]); src = [int(x) for x in sys.argv[2:2 + n]]\n"
                  "high = [os.dup(f) for f in src]\n"
                  "for i, f in enumerate(high):\n"
                  "    os.dup2(f, 3 + i)\n"
                  "    os.set_inheritable(3 + i, True)\n"
                  "for f in set(high + src) - set(range(3, 3 + n)):\n"
                  "    os.close(f)\n"
                  "os.environ['LISTEN_PID'] = str(os.getpid())\n"
                  "os.execv(sys.argv[2 + n], sys.argv[2 + n:])\n")
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        if fds:
            env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names))
        logf = open(log, "ab")
        try:
            return subprocess.Popen([sys.executable, "-c", launch, str(len(fds))]
                                    + [str(f) for f in fds] + list(args),
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    env=env, pass_fds=fds, start_new_session=True)
        finally:
            logf.close()

    def close(self):
        self.sock.close()
        with self.lock:
            for fd in self.store.values():
                os.close(fd)
            self.store.clear()


class StoredDaemon(h.Daemon):
    """A harness.Daemon run by FakeSystemd: the harness's cleanup (abort,
    lazy unmount, SIGKILL of the group) applies to it as to any other."""

    def __init__(self, mnt, fake, log):
        super().__init__(mnt, ["fdstore"], log=log)
        self.fake = fake

    def run(self, timeout=h.START_TIMEOUT):
        """Starts it (again) and waits for its READY=1."""
        ready = self.fake.ready
        self.proc = self.fake.start(self.command(), self.log)
        if not h.wait_until(lambda: self.fake.ready > ready, timeout):
            raise h.HarnessError(f"segfs -o fdstore sent no READY=1 within "
                                 f"{timeout} s; stderr:\n{self.stderr()}")
        return self


@pytest.fixture
def fake(tmp_path):
    f = FakeSystemd(tmp_path)
    yield f
    f.close()


@pytest.mark.deadline(90)
def test_segfs_dies_and_systemd_restarts_it(guard, fake, tmp_path):
    """segfs -o fdstore: systemd's store holds fuse, data and state; SIGKILL
    of segfs itself (its server dies with it) under a client calling
    statvfs: the segfs systemd starts again takes the mount over, and the
    client saw a pause, no error.  Names, bytes, a hard link, an attribute
    and a mapping made before all survive, the mapping still the file's
    pages.  Then the service stops (SIGTERM): segfs exits 0, empties the
    store, the mount goes, and every segment but the mapped one is freed
    at once."""
    mnt = h.make_tempdir(tmp_path, "mnt-")
    d = StoredDaemon(mnt, fake, tmp_path / "segfs.log")
    guard.add_mount(d)
    d.run()
    assert fake.names() == ["data", "fuse", "state"], d.stderr()
    (mnt / "d").mkdir()
    (mnt / "d" / "a").write_bytes(b"kept across segfs's death")
    os.link(mnt / "d" / "a", mnt / "b")
    os.setxattr(mnt / "b", "user.why", b"fdstore")
    ballast = mnt / "ballast"
    with open(ballast, "wb") as f:
        for off in range(0, 64 * MiB, MiB):
            f.write(h.pattern(5, off, MiB))
    fd = os.open(mnt / "mapped", os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, MiB)
    m = mmap.mmap(fd, MiB)
    m[:5] = b"first"
    errors, calls, stop = [], [0], threading.Event()

    def client():
        while not stop.is_set():
            try:
                os.statvfs(mnt)
                calls[0] += 1
            except OSError as e:
                errors.append(e)
                return

    t = threading.Thread(target=client, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        old = d.proc.pid
        os.killpg(old, signal.SIGKILL)          # segfs and its server
        assert d.proc.wait(10) == -signal.SIGKILL
        before = calls[0]
        d.run()                                  # systemd's Restart=
        assert d.proc.pid != old
        assert h.wait_until(lambda: calls[0] > before, 10), "the client is still waiting"
    finally:
        stop.set()
        t.join(10)
    assert not errors, f"the client got {errors[0]!r}"
    assert "taking" in d.stderr() and "descriptor store" in d.stderr(), d.stderr()
    assert (mnt / "d" / "a").read_bytes() == b"kept across segfs's death"
    assert os.stat(mnt / "b").st_ino == os.stat(mnt / "d" / "a").st_ino
    assert os.stat(mnt / "b").st_nlink == 2
    assert os.getxattr(mnt / "b", "user.why") == b"fdstore"
    with open(ballast, "rb") as f:
        assert f.read(MiB) == h.pattern(5, 0, MiB)
    m[5:10] = b"again"
    assert os.pread(fd, 10, 0) == b"firstagain"
    assert fake.names() == ["data", "fuse", "state"]

    # The service stops.
    shm = h.meminfo("Shmem")
    os.kill(d.proc.pid, signal.SIGTERM)
    assert d.proc.wait(h.EXIT_TIMEOUT) == 0, d.stderr()
    d.finalized = True
    assert h.wait_until(lambda: not h.is_mounted(mnt), 5), "the mount stayed"
    assert h.wait_until(lambda: fake.names() == [], 5), fake.names()
    assert h.wait_until(lambda: shm - h.meminfo("Shmem") > 48 * MiB, 5), \
        "the ballast's memory did not come back"
    # The mapping outlives it all, as on tmpfs.
    assert m[:10] == b"firstagain"
    m.close()
    os.close(fd)


def test_fdstore_needs_systemd(tmp_path):
    """-o fdstore outside systemd (no NOTIFY_SOCKET) is refused with one
    line, and nothing is mounted; with -o memfd it is refused too (memfds
    have no tmpfs to keep)."""
    mnt = h.make_tempdir(tmp_path, "mnt-")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    for opts, says in (("fdstore", "NOTIFY_SOCKET"), ("fdstore,memfd", "memfd")):
        res = subprocess.run([h.SEGFS, "-f", "-o", opts, str(mnt)], env=env,
                             capture_output=True, text=True, timeout=20)
        assert res.returncode != 0
        assert len(res.stderr.splitlines()) == 1 and says in res.stderr, res.stderr
        assert not h.is_mounted(mnt)


@pytest.mark.deadline(60)
def test_a_stopped_segfs_starts_afresh(guard, fake, tmp_path):
    """After a clean stop the store is empty, so the next start mounts a
    fresh, empty segfs; one whose store holds a connection that ended (the
    mount gone under it) is not handed one either, since stopping removed
    it: the next start is fresh too."""
    mnt = h.make_tempdir(tmp_path, "mnt-")
    d = StoredDaemon(mnt, fake, tmp_path / "segfs.log")
    guard.add_mount(d)
    d.run()
    (mnt / "x").write_bytes(b"x")
    assert d.unmount() == []          # fusermount3 -u: the server ends, segfs exits 0
    assert h.wait_until(lambda: fake.names() == [], 5), fake.names()
    d.run()
    assert os.listdir(mnt) == ["lists"]
    assert "descriptor store" not in d.stderr().split("mounted on")[-1]
    os.kill(d.proc.pid, signal.SIGTERM)
    assert d.proc.wait(h.EXIT_TIMEOUT) == 0
    d.finalized = True
    assert errno.ENOENT == h.errno_of(os.stat, mnt / "x")


@pytest.mark.deadline(60)
def test_a_store_systemd_gave_up_on(guard, fake, tmp_path):
    """segfs dies and systemd gives up restarting it (the unit failed):
    the store is closed, the connection with it, and the mount is left
    dead (ENOTCONN).  The next segfs started there unmounts the dead one,
    says so, and mounts a fresh segfs; by then the memory of the dead
    one's segments has come back.  (Not always at the store's close: with
    passthrough the kernel holds a segment's backing file from its first
    open until the server gives the id back after the last release, and
    the release of the close just before the kill is sent to the server
    asynchronously; what the dead server never gave back, the connection
    keeps until its mount goes.)"""
    mnt = h.make_tempdir(tmp_path, "mnt-")
    d = StoredDaemon(mnt, fake, tmp_path / "segfs.log")
    guard.add_mount(d)
    d.run()
    with open(mnt / "ballast", "wb") as f:
        for off in range(0, 64 * MiB, MiB):
            f.write(h.pattern(6, off, MiB))
    shm = h.meminfo("Shmem")
    os.killpg(d.proc.pid, signal.SIGKILL)
    d.proc.wait(10)
    assert h.wait_until(lambda: not h.group_alive(d.proc.pid), 10)
    fake.close()                                 # the unit failed for good
    assert h.errno_of(os.stat, mnt / "ballast") in (errno.ENOTCONN, errno.ECONNABORTED)
    again = FakeSystemd(tmp_path / "again")
    try:
        d2 = StoredDaemon(mnt, again, tmp_path / "segfs2.log")
        guard.add_mount(d2)
        d2.run()
        assert "unmounted the dead segfs" in d2.stderr(), d2.stderr()
        assert os.listdir(mnt) == ["lists"]
        assert h.wait_until(lambda: shm - h.meminfo("Shmem") > 48 * MiB, 5), \
            "the dead segfs's segments were not freed"
        assert d2.unmount() == []
        d2.finalized = True
    finally:
        again.close()
    assert h.wait_until(lambda: not h.is_mounted(mnt), 5)
    d.finalized = True
