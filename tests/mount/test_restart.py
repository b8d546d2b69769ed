"""segfs outlives its own process: a crash or an upgrade loses no segment,
no name, no open file.

build/segfs is the supervisor: it mounts, runs build/segfs-server as its
child and holds what must outlive it.  When the server dies, the
supervisor starts a new one, which takes over the same FUSE connection;
the kernel sends again what the dead one had taken, and each request is
answered once.  A client sees a pause, nothing else.  `segfs --upgrade`
replaces the server the same way, or refuses and leaves it serving.  A
server that keeps dying ends the mount, as one crash did before.

Here the server is SIGKILLed under load, made to abort() at named points
(SEGFS_CRASH), upgraded under load, refused an upgrade, and crashed in a
loop, while real clients check every result: restart_load.py's processes
(a model-checked stream among them), CPython's own shared_memory, and
CPython's shared_memory tests under segfs-exec.

Restart is refused with -o io_uring (a crash is the end there, as
before): these tests skip on such runs.  The fallback data path
(nopassthrough) and memfds (-o memfd, whose files the supervisor holds
as it holds the private tmpfs's) restart like the rest and run them all.
"""

import errno
import os
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import harness as h
from harness import MiB, errno_of, write_once
from restart_load import Load, Worker, file_bytes, used_bytes

pytestmark = pytest.mark.usefixtures("segfs_only")

# Printed by each test that uses it: SEGFS_TEST_SEED=N repeats its choices.
SEED = int(os.environ.get("SEGFS_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
# The kills here are deliberate and fast (up to 5 a second): the default
# crash loop (5 deaths in 30 s) would end the mount.  100 in 10 s is far
# above them and still a limit.
RELAXED = "crash_loop=100/10"
KILLS = 50
# The supervisor's line for each restart (super/main.c).
RESTART_RE = re.compile(r"^segfs: the server died \(.*\); starting another")
SLACK = 32 * MiB      # Shmem moves with the rest of the machine
OWN_SERVER = Path(h.SEGFS).with_name("segfs-server")


@pytest.fixture
def restartable(segfs_only):
    """Skip where segfs refuses restart: -o io_uring (the server's rings
    are the connection and die with it)."""
    if "io_uring" in h.SEGFS_OPTS or h.TRANSPORT == "io-uring":
        pytest.skip("-o io_uring: segfs refuses restart there (a crash of "
                    "the server is the end of the mount)")


def shmem():
    return h.meminfo("Shmem")


def assert_released(before, amount, what):
    """Shmem falls by amount (within SLACK) from before (as in
    test_lifecycle.py: judged across the event, not against a value from
    before the segments were made)."""
    dropped = h.wait_until(lambda: before - shmem() > amount - SLACK, 5)
    assert dropped, (f"Shmem fell only {(before - shmem()) / MiB:.0f} MiB of "
                     f"{amount / MiB:.0f} MiB after {what}: segments were "
                     f"not released")


def restarts(d):
    """The supervisor's restart lines (not its crash loop line)."""
    return [line for line in d.stderr().splitlines()
            if RESTART_RE.search(line) and "crash loop" not in line]


def exe_of(pid):
    """The program a process runs (a rebuilt one shows as deleted)."""
    return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")


def assert_no_server_left(d, servers):
    """After the supervisor exits: nothing is left of its process group,
    and none of the servers it ran."""
    assert h.wait_until(lambda: not h.group_alive(d.pid), 5), \
        f"processes left in the daemon's group: {h.group_alive(d.pid)}"
    left = [p for p in servers if p and h.proc_stat(p) and h.proc_stat(p)[1] != "Z"
            and h.proc_stat(p)[0] == "segfs-server"]
    assert not left, f"servers outlived the supervisor: {left}"


def assert_df_is_segments(mnt, load):
    """What df calls used is exactly the pages the segments hold.

    segfs takes whole pages for a segment (ftruncate reserves them all;
    a write reserves the pages it touches) and nothing else, as tmpfs does
    (restart_load.py's selftest checks the same relation on a tmpfs).
    Sizes rounded up to pages would not do: a passthrough pwrite past the
    end leaves a hole, and huge pages round up further; st_blocks counts
    what is really held, so the sum is over st_blocks of every segment
    with a name, each inode once, plus the unlinked one the mapper still
    holds.  A segment lost across a restart (no name, no holder, still
    pinned by the supervisor) would show as the difference."""
    def both():
        return used_bytes(mnt), file_bytes(mnt) + load.held_bytes()
    assert h.wait_until(lambda: (lambda u, f: u == f)(*both()), 5), \
        "df says %d bytes used, the segments hold %d" % both()


# --------------------------------------------------------------------------
# SIGKILL under load

def write_ballast(mnt, size=64 * MiB):
    """A segment of pattern(3) written with write(): the memory the
    unmount must give back is then well above the noise."""
    fd = os.open(mnt / "ballast", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        for off in range(0, size, MiB):
            os.write(fd, h.pattern(3, off, MiB))
    finally:
        os.close(fd)


def check_ballast(mnt, size=64 * MiB):
    with open(mnt / "ballast", "rb") as f:
        for off in range(0, size, MiB):
            assert f.read(MiB) == h.pattern(3, off, MiB), f"ballast at {off}"


def run_for(load, seconds):
    """Let the load run, failing as soon as a part of it fails."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        load.check()
        time.sleep(min(0.05, max(0, end - time.monotonic())))


@pytest.mark.deadline(300)
def test_kills_under_load(start_segfs, restartable, guard, tmp_path):
    """50 SIGKILLs of the server at random intervals of 0.2 to 1 s, under
    load: a model-checked stream of creates (O_EXCL), pwrites, truncates,
    renames (over existing names too), links, unlinks, user.* attributes
    and chmods, each result predicted by its model; a process writing
    counters into a mapped segment and into an unlinked one it holds
    open; and CPython's unmodified SharedMemory and ShareableList (created,
    attached from another process, unlinked; lists written as text
    through lists/), run in a mount namespace where /dev/shm is this very
    mount bound there, so the kills hit their server.  No operation may
    fail or differ from the model (no ENOTCONN, no EIO, no spurious EEXIST
    or ENOENT); afterwards every name, byte and attribute is the model's,
    both counters are the last written, the mapped file is still the
    named one, df's used bytes are exactly the segments' pages, and the
    unmount gives the memory back."""
    if os.geteuid() != 0:
        pytest.skip("binding the mount over /dev/shm needs root")
    print(f"seed {SEED} (SEGFS_TEST_SEED)")
    rng = random.Random(SEED)
    d = start_segfs([RELAXED])
    write_ballast(d.mnt)
    servers = [d.server_pid()]
    assert servers[0], "no segfs-server under the supervisor"
    load = Load(d.mnt, tmp_path, SEED, shm=True, guard=guard,
                others=["ballast"]).start()
    for i in range(KILLS):
        run_for(load, rng.uniform(0.2, 1.0))
        old = d.kill_server()
        assert old is not None, f"kill {i + 1}: no server to kill"
        new = d.wait_server_change(old, 15)
        assert new, (f"kill {i + 1} of {KILLS}: no new server answered "
                     f"within 15 s (seed {SEED})")
        servers.append(new)
    run_for(load, 1.0)              # and on the last server
    results = load.stop()
    print("model:", {k: results["model"][k] for k in
                     ("ops", "expected_errors", "maxpause", "slowest")},
          "shm:", results["shm"], "mapper:", results["mapper"]["last"])
    assert results["model"]["ops"] > 1000 and results["shm"]["rounds"] > 10, results
    load.verify()
    check_ballast(d.mnt)
    assert_df_is_segments(d.mnt, load)
    got = restarts(d)
    assert len(got) == KILLS, f"{len(got)} restart lines for {KILLS} kills"

    load.release()
    before, used = shmem(), used_bytes(d.mnt)
    assert d.unmount() == []
    assert_no_server_left(d, servers)
    assert_released(before, used, "the unmount after 50 restarts")


# --------------------------------------------------------------------------
# A crash at each named point: the request is done once

def must(what, fn, *args):
    """fn(*args), or a failure that names the operation and its errno."""
    try:
        return fn(*args)
    except OSError as e:
        raise AssertionError(f"{what}: {errno.errorcode.get(e.errno, e.errno)} "
                             f"({e.strerror})") from None


def names(mnt):
    return sorted(n for n in os.listdir(mnt) if n != "lists")


def make(mnt, name, data=b""):
    """A new segment holding data (CREATE, WRITEs, no SETATTR when data is
    empty)."""
    fd = os.open(mnt / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def crash_create(mnt):
    fd = must("open(f, O_CREAT|O_EXCL|O_RDWR, 0640)", os.open, mnt / "f",
              os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
    try:
        must("write through the descriptor the create returned", os.write, fd, b"created")
        assert os.fstat(fd).st_size == 7
    finally:
        os.close(fd)
    assert names(mnt) == ["f"]
    assert (mnt / "f").read_bytes() == b"created"
    st = os.stat(mnt / "f")
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_nlink == 1


def crash_unlink(mnt):
    make(mnt, "f", b"doomed")
    must("unlink(f)", os.unlink, mnt / "f")
    assert names(mnt) == []
    assert errno_of(os.stat, mnt / "f") == errno.ENOENT


def crash_rename(mnt):
    make(mnt, "a", b"A" * 5000)
    make(mnt, "b", b"B" * 3000)
    must("rename(a, b) over an existing b", os.rename, mnt / "a", mnt / "b")
    assert names(mnt) == ["b"], "not one rename: " + str(names(mnt))
    assert (mnt / "b").read_bytes() == b"A" * 5000
    assert os.stat(mnt / "b").st_nlink == 1


def crash_link(mnt):
    make(mnt, "f", b"linked")
    must("link(f, g)", os.link, mnt / "f", mnt / "g")
    assert names(mnt) == ["f", "g"]
    f, g = os.stat(mnt / "f"), os.stat(mnt / "g")
    assert f.st_ino == g.st_ino
    assert f.st_nlink == g.st_nlink == 2, f"nlink {f.st_nlink}, {g.st_nlink}"
    assert (mnt / "g").read_bytes() == b"linked"


def crash_chmod(mnt):
    make(mnt, "f")
    must("chmod(f, 0604)", os.chmod, mnt / "f", 0o604)
    must("truncate(f, 12345)", os.truncate, mnt / "f", 12345)
    st = os.stat(mnt / "f")
    assert (stat.S_IMODE(st.st_mode), st.st_size) == (0o604, 12345)
    assert (mnt / "f").read_bytes() == bytes(12345)
    assert names(mnt) == ["f"]


def crash_mkdir(mnt):
    must("mkdir(d, 0750)", os.mkdir, mnt / "d", 0o750)
    st = os.stat(mnt / "d")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    assert names(mnt) == ["d"] and os.listdir(mnt / "d") == []
    (mnt / "d" / "inner").write_bytes(b"x")
    assert os.listdir(mnt / "d") == ["inner"]


def crash_lists_new(mnt):
    text = "1\n'two'\n3.5\n"
    assert write_once(mnt / "lists" / "x", text) == (0, 0), \
        "writing lists/x failed"
    assert h.run(["cat", mnt / "lists" / "x"], timeout=10).stdout == text
    assert names(mnt) == ["x"] and os.listdir(mnt / "lists") == ["x"]


def crash_lists_again(mnt):
    assert write_once(mnt / "lists" / "x", "1\n'abc'\n") == (0, 0)
    assert write_once(mnt / "lists" / "x", "7\n'xyz'\n") == (0, 0), \
        "rewriting lists/x failed"
    assert h.run(["cat", mnt / "lists" / "x"], timeout=10).stdout == "7\n'xyz'\n"
    assert names(mnt) == ["x"] and os.listdir(mnt / "lists") == ["x"]


def crash_open(mnt):
    make(mnt, "f", b"old content")
    fd = must("open(f, O_WRONLY|O_TRUNC)", os.open, mnt / "f", os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        must("write through the descriptor the open returned", os.write, fd, b"new")
    finally:
        os.close(fd)
    assert (mnt / "f").read_bytes() == b"new"
    assert names(mnt) == ["f"]


# SEGFS_CRASH value -> the client's side.  POINT:N aborts at the N-th time:
# setattr:commit:2 is the truncate after the chmod, lists-write:commit:2
# the rewrite of a list (in place) rather than its first write.
CRASHES = {
    "create:commit": crash_create,
    "unlink:commit": crash_unlink,
    "rename:commit": crash_rename,
    "link:commit": crash_link,
    "setattr:commit": crash_chmod,
    "setattr:commit:2": crash_chmod,
    "mkdir:commit": crash_mkdir,
    "lists-write:commit": crash_lists_new,
    "lists-write:commit:2": crash_lists_again,
    "open:commit": crash_open,
}


@pytest.mark.deadline(60)
@pytest.mark.parametrize("point", list(CRASHES))
def test_crash_points(start_segfs, restartable, point):
    """The server aborts once the request has taken effect and before it
    replies (SEGFS_CRASH=POINT); its successor answers the request the
    kernel sends again, once: the client gets success exactly as tmpfs
    gives it (an O_EXCL create is not EEXIST, an unlink not ENOENT, a
    rename leaves no third name, a link makes nlink 2, not 3), and the
    result is there.  The server did crash, and the supervisor said so."""
    d = start_segfs(env={"SEGFS_CRASH": point})
    first = d.server_pid()
    assert first, "no segfs-server under the supervisor"
    CRASHES[point](d.mnt)
    second = d.wait_server_change(first, 15)
    assert second, f"the server did not crash at {point} (pid {first} still serves)"
    assert len(restarts(d)) == 1, "no single restart line in the log"
    assert d.unmount() == []
    assert_no_server_left(d, [first, second])


# --------------------------------------------------------------------------
# Upgrades

def other_build(tmp_path):
    """The segfs-server of the other build: the plain one from the ASan
    run, the ASan one from the plain run.  The libfuse 3.14 build (compat)
    has no other build of its libfuse, whose INIT it must agree on: it
    upgrades to a copy of its own server, a program of another path.
    None if there is none."""
    server = Path(h.SEGFS).resolve().with_name("segfs-server")
    asan = (h.REPO / "build" / "asan").resolve()
    if server.parent.name == "compat":
        # Named as the harness finds servers: by their name.
        other = tmp_path / "copy" / "segfs-server"
        other.parent.mkdir()
        shutil.copy2(server, other)
    elif asan == server.parent:
        other = h.REPO / "build" / "segfs-server"
    else:
        other = asan / "segfs-server"
    return other if os.access(other, os.X_OK) else None


def upgrade(d, server):
    """segfs --upgrade --server=SERVER MNT: (exit status, its output)."""
    res = h.run([h.SEGFS, "--upgrade", f"--server={server}", d.mnt],
                timeout=60, check=False)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.deadline(180)
def test_upgrade_under_load(start_segfs, restartable, guard, tmp_path):
    """segfs --upgrade three times under load, between two builds (the
    ASan one and the plain one): each exits 0 saying "upgraded", a new
    server runs the program asked for, and the load (the model stream and
    the mapper of test_kills_under_load) sees no error and no difference
    from its model."""
    other = other_build(tmp_path)
    if other is None:
        pytest.skip("no other build of segfs-server to upgrade to: "
                    "build/asan/segfs-server is missing (scripts/test builds "
                    "it before the ASan mount tests, which run this test)")
    print(f"seed {SEED} (SEGFS_TEST_SEED); upgrading between {OWN_SERVER} and {other}")
    d = start_segfs()
    servers = [d.server_pid()]
    load = Load(d.mnt, tmp_path, SEED, shm=False, guard=guard).start()
    run_for(load, 1.0)
    for target in (other, OWN_SERVER, other):
        old = d.server_pid()
        status, out = upgrade(d, target)
        assert status == 0 and "upgraded" in out, \
            f"upgrade to {target}: exit {status}: {out}"
        new = d.wait_server_change(old, 15)
        assert new, f"upgrade to {target}: no new server answers"
        assert exe_of(new) == os.path.realpath(target), exe_of(new)
        servers.append(new)
        run_for(load, 1.5)
    load.stop()
    load.verify()
    assert_df_is_segments(d.mnt, load)
    load.release()
    assert d.unmount() == []
    assert_no_server_left(d, servers)


@pytest.mark.deadline(90)
def test_upgrade_refused(start_segfs, restartable, guard, tmp_path):
    """An upgrade to a server that cannot read the running one's saved
    state (SEGFS_TEST_FORMAT=999 makes it claim another format) is
    refused: segfs --upgrade exits non-zero saying "refused" and why, and
    the old server keeps serving, uninterrupted: a client creating and
    unlinking all along sees no error and no pause of 1 s."""
    wrapper = tmp_path / "segfs-server-format999"
    wrapper.write_text("#!/bin/sh\nSEGFS_TEST_FORMAT=999 exec "
                       f"{shlex.quote(str(OWN_SERVER))} \"$@\"\n")
    wrapper.chmod(0o755)
    d = start_segfs()
    server = d.server_pid()
    assert server, "no segfs-server under the supervisor"
    exe = exe_of(server)
    (d.mnt / "churn").mkdir()
    churn = Worker("churn", [sys.executable, Path(__file__).with_name("restart_load.py"),
                             "churn", d.mnt / "churn"], tmp_path)
    guard.clients.append(churn)
    time.sleep(0.5)
    status, out = upgrade(d, wrapper)
    assert status != 0, f"the upgrade to format 999 was not refused: {out}"
    assert re.search(r"refused\W+\w", out), f"no reason given: {out!r}"
    time.sleep(1.0)
    assert churn.failure() is None, churn.failure()
    report = churn.finish()
    print("churn:", report)
    assert report["ops"] > 100, report
    assert report["maxpause"] < 1.0, f"a pause of {report['maxpause']} s ({report['slowest']})"
    assert d.server_pids() == [server], "the refused upgrade replaced the server"
    assert exe_of(server) == exe
    assert d.unmount() == []
    assert_no_server_left(d, [server])


# --------------------------------------------------------------------------
# A crash loop ends the mount

@pytest.mark.deadline(90)
def test_crash_loop(start_segfs, restartable):
    """A request that kills every server (SEGFS_CRASH=unlink:commit!)
    with -o crash_loop=3/30: after the third death the supervisor gives
    up: the unlink fails (the mount is gone), the supervisor exits
    non-zero within 30 s with one "crash loop" line naming UNLINK and the
    file, the mount is gone, and a 64 MiB segment's memory comes back."""
    d = start_segfs(["crash_loop=3/30"], env={"SEGFS_CRASH": "unlink:commit!"})
    first = d.server_pid()
    write_ballast(d.mnt)
    make(d.mnt, "victim", b"v")
    before = shmem()
    result = {}

    def unlink():
        result["errno"] = errno_of(os.unlink, d.mnt / "victim")

    t = threading.Thread(target=unlink, daemon=True)
    t.start()
    status = d.wait(30)
    assert status is not None, "the supervisor still runs 30 s into the crash loop"
    assert status != 0, "the supervisor exited 0 after a crash loop"
    t.join(10)
    assert not t.is_alive(), "the unlink still blocks after the supervisor exited"
    assert result["errno"] in (errno.ENOTCONN, errno.ECONNABORTED), \
        f"unlink returned {errno.errorcode.get(result['errno'], result['errno'])}"
    assert h.wait_until(lambda: not h.is_mounted(d.mnt), 5), "the mount stayed"
    lines = [line for line in d.stderr().splitlines() if "crash loop" in line]
    assert len(lines) == 1, f"{len(lines)} crash loop lines: {lines}"
    assert "UNLINK" in lines[0] and "victim" in lines[0], lines[0]
    assert len(restarts(d)) == 2, "three deaths are two restarts"
    assert_no_server_left(d, [first])
    assert_released(before, 64 * MiB, "the crash loop")


def assert_death_releases(d, why):
    """Kill d's server: the supervisor says in one line why it cannot run
    another (why), unmounts, exits non-zero, and the 64 MiB ballast's
    memory comes back, as one crash did before segfs outlived its server."""
    write_ballast(d.mnt)
    before = shmem()
    server = d.server_pid()
    assert server, "no segfs-server under the supervisor"
    os.kill(server, signal.SIGKILL)
    status = d.wait(30)
    assert status is not None and status != 0, f"the supervisor: {status}"
    assert h.wait_until(lambda: not h.is_mounted(d.mnt), 5), "the mount stayed"
    lines = [line for line in d.stderr().splitlines() if "cannot be followed" in line]
    assert len(lines) == 1 and why in lines[0], d.stderr()
    assert not restarts(d), "a server was started after all"
    assert_no_server_left(d, [server])
    assert_released(before, 64 * MiB, "the server's death")


@pytest.mark.deadline(60)
def test_io_uring_server_death_releases(start_segfs):
    """With -o io_uring a server's death cannot be followed: its rings are
    registered to it, and die with it."""
    if h.libfuse_built() < (3, 18):
        pytest.skip("-o io_uring needs a segfs built with libfuse >= 3.18")
    opts = [] if "io_uring" in h.SEGFS_OPTS else ["io_uring"]
    assert_death_releases(start_segfs(opts), "io_uring")


@pytest.mark.deadline(60)
def test_norestart_server_death_releases(start_segfs):
    """-o norestart keeps nothing for another server: its death ends the
    mount, and an upgrade is refused."""
    d = start_segfs(["norestart"])
    status, out = upgrade(d, OWN_SERVER)
    assert status != 0 and "refused" in out and "norestart" in out, out
    assert_death_releases(d, "-o norestart")


@pytest.mark.deadline(60)
def test_no_resend_server_death_releases(start_segfs, restartable):
    """On a kernel without FUSE_NOTIFY_RESEND (Linux < 6.9; faked here by
    SEGFS_TEST_NO_RESEND, which makes the server read the kernel's INIT as
    lacking FUSE_HAS_RESEND) the requests a dead server had read could
    never be answered: its death ends the mount instead, and an upgrade is
    refused."""
    d = start_segfs(env={"SEGFS_TEST_NO_RESEND": "1"})
    assert h.wait_until(lambda: d.server_pid() is not None, 5)
    status, out = upgrade(d, OWN_SERVER)
    assert status != 0 and "refused" in out and "resend" in out.lower(), out
    assert_death_releases(d, "FUSE_HAS_RESEND")


# --------------------------------------------------------------------------
# CPython's own shared_memory tests, the server killed every second

def shm_tests_in(root):
    """The names of the shared_memory tests of the `test` package in root,
    under each start method ([] if it has none)."""
    test = Path(root) / "test"
    if not (test / "_test_multiprocessing.py").exists():
        return []
    tests = []
    for method in ("spawn", "fork", "forkserver"):
        mod = test / f"test_multiprocessing_{method}"
        if mod.is_dir():                              # 3.12 on
            tests.append(f"test.test_multiprocessing_{method}.test_processes."
                         f"WithProcessesTestSharedMemory")
        elif mod.with_suffix(".py").exists():         # up to 3.11
            tests.append(f"test.test_multiprocessing_{method}."
                         f"WithProcessesTestSharedMemory")
    return tests


def cpython_shm_tests():
    """(python, PYTHONPATH or None, test names): CPython's shared_memory
    tests, of the newest CPython here whose test suite is installed
    (pyenv's are; Debian's needs libpython3.X-testsuite).
    SEGFS_CPYTHON_TESTS may name a directory holding a complete `test`
    package for the system python3 instead."""
    extra = os.environ.get("SEGFS_CPYTHON_TESTS")
    if extra:
        tests = shm_tests_in(extra)
        if not tests:
            pytest.skip(f"SEGFS_CPYTHON_TESTS={extra} holds no test package "
                        f"with the multiprocessing tests")
        return "/usr/bin/python3", extra, tests
    for ver, py in reversed(h.cpythons()):
        stdlib = h.run([py, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                       timeout=30).stdout.strip()
        tests = shm_tests_in(stdlib)
        if tests:
            print(f"CPython {ver}: {py}")
            return py, None, tests
    pytest.skip("no CPython here has its test suite installed (Debian: "
                "libpython3.X-testsuite; or set SEGFS_CPYTHON_TESTS to a "
                "directory holding a test package)")


@pytest.mark.deadline(300)
def test_cpython_shared_memory_under_kills(restartable, tmp_path):
    """CPython's own shared_memory tests (WithProcessesTestSharedMemory,
    under spawn, fork and forkserver) run under segfs-exec, again and
    again, while the server of that segfs-exec's segfs is SIGKILLed every
    second: every round passes ("OK"), and nothing is left after."""
    py, pythonpath, tests = cpython_shm_tests()
    stop = tmp_path / "stop"
    script = ('py=$1; stop=$2; shift 2; n=0\n'
              'while :; do\n'
              '  n=$((n + 1)); echo "round $n" >&2\n'
              '  "$py" -m unittest -v "$@" || exit $?\n'
              '  [ -e "$stop" ] && break\n'
              'done\n'
              'echo "rounds: $n"\n')
    cmd = [h.SEGFS_EXEC, "-o", ",".join(h.SEGFS_OPTS + [RELAXED]), "--",
           "sh", "-c", script, "sh", py, str(stop)] + tests
    print("command:", shlex.join(map(str, cmd)))
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd="/")
    killed, seen = [], set()
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            servers = h.servers_under(proc.pid)
            seen.update(servers)
            seen.update(p for p in h.descendants(proc.pid)
                        if (h.proc_stat(p) or ("",))[0] == "segfs")
            if servers:
                try:
                    os.kill(servers[0], signal.SIGKILL)
                    killed.append(servers[0])
                except ProcessLookupError:
                    pass
            if len(killed) >= 10:
                stop.touch()
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            for p in reversed(h.descendants(proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    text = out.read_text(errors="replace")
    rounds = re.search(r"^rounds: (\d+)$", text, re.M)
    assert status == 0 and rounds, f"exit {status}, {len(killed)} kills:\n{text[-6000:]}"
    oks = len(re.findall(r"^OK\b", text, re.M))
    assert oks == int(rounds[1]), \
        f"{oks} OK lines in {rounds[1]} rounds:\n{text[-6000:]}"
    assert len(killed) >= 10, f"only {len(killed)} servers were killed (none found "\
        f"under segfs-exec?)"
    left = [p for p in seen if h.proc_stat(p) and h.proc_stat(p)[1] != "Z"]
    assert not left, f"left running after segfs-exec: {left}"
