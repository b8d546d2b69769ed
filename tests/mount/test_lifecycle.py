"""The daemon's life: how it ends (unmount, signals, being killed), that it
releases every segment when it does, auto_unmount, bad command lines, and
the harness's own way out of a stuck connection.  Each test runs its own
daemons (skipped on the tmpfs reference)."""

import errno
import mmap
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import harness as h
from harness import MiB

pytestmark = pytest.mark.usefixtures("segfs_only")

# The machine is shared: other processes may move Shmem a little.
SLACK = 32 * MiB


def shmem():
    return h.meminfo("Shmem")


def fill_segments(mnt, total, count, seed=0):
    """Create count segments holding total bytes of pattern data, written
    with write() so every page is really allocated."""
    per = total // count
    for i in range(count):
        fd = os.open(mnt / f"seg{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            for off in range(0, per, MiB):
                os.write(fd, h.pattern(seed + i, off, MiB))
        finally:
            os.close(fd)


def assert_released(before, amount, what):
    """Shmem falls by amount (within SLACK) from its value before the event.
    Judging the drop across the event, rather than against a value taken
    before the segments were written, keeps other processes' slow drift on
    this shared machine out of the measurement."""
    dropped = h.wait_until(lambda: before - shmem() > amount - SLACK, 5)
    assert dropped, (f"Shmem fell only {(before - shmem()) / MiB:.0f} MiB of "
                     f"{amount / MiB:.0f} MiB after {what}: segments were "
                     f"not released")


STOPS = {
    "fusermount3 -u": lambda d: h.run([h.FUSERMOUNT, "-u", d.mnt], timeout=10),
    "umount": lambda d: h.run(["umount", d.mnt], timeout=10),
    "SIGTERM": lambda d: os.kill(d.pid, signal.SIGTERM),
    "SIGINT": lambda d: os.kill(d.pid, signal.SIGINT),
}


@pytest.mark.parametrize("how", list(STOPS))
def test_clean_stop_releases_segments(start_segfs, how):
    """With 128 MiB of segments, each way of stopping the daemon makes it
    exit 0, removes the mount and returns Shmem to its start value."""
    base = shmem()
    d = start_segfs()
    fill_segments(d.mnt, 128 * MiB, 4)
    before = shmem()
    assert before - base >= 128 * MiB - SLACK, \
        "the segments did not show in Shmem"
    STOPS[how](d)
    status = d.wait()
    assert status == 0, f"daemon exit status {status} after {how}"
    assert h.wait_until(lambda: not h.is_mounted(d.mnt), 5), \
        f"mount still present after {how}"
    assert_released(before, 128 * MiB, how)


def test_sigkill_releases_segments_after_cleanup(start_segfs):
    """SIGKILL leaves a dead mount (ENOTCONN) that the harness cleans up;
    then every segment is released."""
    base = shmem()
    d = start_segfs()
    fill_segments(d.mnt, 128 * MiB, 4)
    before = shmem()
    assert before - base >= 128 * MiB - SLACK
    os.kill(d.pid, signal.SIGKILL)
    assert d.wait() == -signal.SIGKILL
    assert h.is_mounted(d.mnt), "the killed daemon's mount vanished by itself"
    # Over io-uring the kernel may first fail a request it had already
    # queued on a ring with ECONNABORTED; later ones get ENOTCONN.
    dead = ((errno.ENOTCONN, errno.ECONNABORTED) if h.TRANSPORT == "io-uring"
            else (errno.ENOTCONN,))
    assert h.errno_of(os.stat, d.mnt / "seg0") in dead
    d.kill_and_clean()
    assert not h.is_mounted(d.mnt)
    assert_released(before, 128 * MiB, "SIGKILL and cleanup")


@pytest.mark.deadline(60)
def test_sigkill_while_mapped(start_segfs, passthrough_only, client):
    """Passthrough: after SIGKILL of the daemon a client's mapping keeps
    working (old data readable, stores work); the unmapped segment is freed
    at cleanup and the mapped one once the client unmaps."""
    size = 96 * MiB
    base = shmem()
    d = start_segfs()
    fill_segments(d.mnt, 2 * size, 2, seed=10)  # seg0 (mapped), seg1
    c = client(d.mnt / "seg0")
    c.ok("open rw")
    c.ok(f"map {size}")
    c.ok("close")
    assert c.cmd(f"verify 0 {size} 10") == "ok"
    before = shmem()
    assert before - base >= 2 * size - SLACK

    os.kill(d.pid, signal.SIGKILL)
    assert d.wait() == -signal.SIGKILL
    assert c.cmd(f"verify 0 {size} 10") == "ok"
    c.ok(f"fill 0 {size} 77")
    assert c.cmd(f"verify 0 {size} 77") == "ok"

    d.kill_and_clean()
    assert not h.is_mounted(d.mnt)
    assert c.cmd(f"verify 0 {size} 77") == "ok"
    assert_released(before, size, "SIGKILL and cleanup (one of two mapped)")
    held = shmem()
    assert before - held < size + SLACK, "the mapped segment was released"

    c.ok("unmap")
    assert c.quit() == 0
    assert_released(held, size, "the client unmapped")


def test_auto_unmount_after_sigkill(start_segfs):
    """-o auto_unmount: after SIGKILL of the daemon the mount disappears by
    itself within a few seconds."""
    d = start_segfs(["auto_unmount"])
    (d.mnt / "x").write_bytes(b"x")
    os.kill(d.pid, signal.SIGKILL)
    assert d.wait() == -signal.SIGKILL
    gone = h.wait_until(lambda: not h.is_mounted(d.mnt), 5, interval=0.05)
    assert gone, "the mount of a killed auto_unmount daemon stayed"


def test_auto_unmount_clean_exit(start_segfs):
    """-o auto_unmount does not disturb a normal fusermount3 -u: exit 0."""
    d = start_segfs(["auto_unmount"])
    assert d.unmount() == []


BAD = {
    "unknown -o option": lambda mnt, f: ["-f", "-o", "no_such_option_xyz",
                                         mnt],
    "missing mount point": lambda mnt, f: ["-f"],
    "nonexistent mount point": lambda mnt, f: ["-f", mnt / "missing"],
    "regular file as mount point": lambda mnt, f: ["-f", f],
    "-s with -o io_uring": lambda mnt, f: ["-f", "-s", "-o", "io_uring", mnt],
    "an unknown huge=": lambda mnt, f: ["-f", "-o", "huge=sometimes", mnt],
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_command_line(tmp_path, case):
    """Bad command lines exit 1 with exactly one line on stderr and mount
    nothing."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    f = tmp_path / "file"
    f.write_bytes(b"")
    args = [str(a) for a in BAD[case](mnt, f)]
    try:
        res = h.run([h.SEGFS] + args, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        res = None
    finally:
        # Only paths of this test: other sessions may mount segfs meanwhile.
        mounted = [p for p in (mnt, mnt / "missing", f) if h.is_mounted(p)]
        for p in mounted:
            h.abort_connection(p)
            h.lazy_umount(p)
    assert res is not None, f"{case}: segfs kept running (10 s)"
    assert not mounted, f"{case}: something got mounted on {mounted}"
    assert res.returncode == 1, \
        f"{case}: exit status {res.returncode}, stderr {res.stderr!r}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, f"{case}: stderr is not one line: {res.stderr!r}"
    assert res.stdout == ""


def test_harness_abort_unblocks_stuck_syscall(start_segfs):
    """The harness's escape hatch works: with the daemon stopped (SIGSTOP to
    its group: the supervisor and the server), a stat on the mount blocks,
    and aborting the connection through fusectl makes it fail
    (ECONNABORTED/ENOTCONN).  Over io-uring the kernel ends
    only the requests the daemon has not taken, so there the stat returns
    once the daemon is killed, which the harness does next."""
    d = start_segfs()
    result = {}

    def stuck():
        start = time.monotonic()
        result["errno"] = h.errno_of(os.stat, d.mnt / "nothing-cached")
        result["took"] = time.monotonic() - start

    t = threading.Thread(target=stuck, daemon=True)
    try:
        states = h.stop_group(d.pid)
        t.start()
        t.join(0.5)
        assert t.is_alive(), \
            f"stat did not block on a stopped daemon: {result}, threads {states}, " \
            f"now {h.group_threads(d.pid)}"
        assert h.abort_connection(d.mnt)
        t.join(5)
        ended = (errno.ECONNABORTED, errno.ENOTCONN)
        if h.TRANSPORT == "io-uring" and t.is_alive():
            os.killpg(d.pid, signal.SIGKILL)
            os.killpg(d.pid, signal.SIGCONT)
            t.join(5)
            ended += (errno.ECANCELED,)   # the ring's teardown ends it
        assert not t.is_alive(), "stat still blocked after abort"
        # ECONNABORTED for a request in flight, ENOTCONN for new ones.
        assert result["errno"] in ended
    finally:
        os.killpg(d.pid, signal.SIGCONT)
        d.kill_and_clean()
    assert not h.is_mounted(d.mnt)


def test_source_mountpoint_form(start_segfs):
    """`segfs SOURCE MOUNTPOINT` (as mount -t fuse.segfs runs it): SOURCE
    becomes the mount's source, the type is fuse.segfs, and it serves."""
    d = start_segfs(args=["my-source"])
    m = h.find_mount(d.mnt)
    assert m["source"] == "my-source"
    assert m["fstype"] == "fuse.segfs"
    (d.mnt / "x").write_bytes(b"abc")
    assert (d.mnt / "x").read_bytes() == b"abc"
    assert d.unmount() == []


def test_single_threaded(start_segfs):
    """-s serves every request from one thread: files, mmap and a second
    process all work, and it stops cleanly."""
    if "io_uring" in h.SEGFS_OPTS:
        pytest.skip("-s excludes -o io_uring (test_bad_command_line)")
    d = start_segfs(args=["-s"])
    assert len(os.listdir(f"/proc/{d.pid}/task")) <= 2   # loop + announcer
    fd = os.open(d.mnt / "s", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, 4096)
        with mmap.mmap(fd, 4096) as mm:
            mm[:3] = b"one"
            out = h.run(["cat", str(d.mnt / "s")], timeout=10)
            assert out.stdout.startswith("one")
    finally:
        os.close(fd)
    assert d.unmount() == []


def test_help_and_version():
    """-h lists the options with defaults; -V names segfs and the libfuse
    it runs with; both exit 0 without mounting anything."""
    res = h.run([h.SEGFS, "-h"], timeout=10)
    assert res.returncode == 0
    for opt in ("nopassthrough", "size=", "nr_segments=", "allow_other",
                "auto_unmount", "fsname=", "crash_loop=", "norestart",
                "--upgrade", "default"):
        assert opt in res.stdout
    res = h.run([h.SEGFS, "-V"], timeout=10)
    assert res.returncode == 0
    assert re.search(r"^segfs \d+\.\d+", res.stdout, re.M)
    assert re.search(r"^libfuse 3\.\d+", res.stdout, re.M)


def test_daemonized_logs_to_syslog(tmp_path):
    """Without -f the daemon detaches (the command returns 0 once mounted)
    and what it says goes to syslog: the startup line arrives on /dev/log,
    tagged segfs[pid] with the daemon facility."""
    import socket

    if os.path.exists("/dev/log"):
        pytest.skip("a syslog already owns /dev/log here; the test stands in "
                    "for one only where there is none")
    mnt = tmp_path / "m"
    mnt.mkdir()
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind("/dev/log")
    log.settimeout(10)
    try:
        res = h.run([h.SEGFS] + (["-o", ",".join(h.SEGFS_OPTS)] if h.SEGFS_OPTS else [])
                    + [str(mnt)], timeout=20, check=False)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert h.is_mounted(mnt)
        msg = log.recv(4096).decode()
        assert re.match(r"<29>.* segfs\[\d+\]: segfs: mounted on %s, transport: .*"
                        r"data path: %s" % (re.escape(str(mnt)), h.MODE), msg), msg
    finally:
        log.close()
        os.unlink("/dev/log")
        if h.is_mounted(mnt):
            if h.run([h.FUSERMOUNT, "-u", mnt], timeout=10, check=False).returncode:
                h.abort_connection(mnt)
                h.lazy_umount(mnt)
    assert h.wait_until(lambda: subprocess.run(
        ["pgrep", "-f", "^%s %s$" % (re.escape(h.SEGFS), re.escape(str(mnt)))],
        capture_output=True).returncode != 0, 10), "the daemon did not exit"
