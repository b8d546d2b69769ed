"""Stress and faults: many processes at once, then SIGKILL in the middle.

Bounded and seeded (SEGFS_TEST_SEED): 4 workers x 600 operations each.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness as h
from harness import MiB

pytestmark = pytest.mark.usefixtures("segfs_only")

WORKER = str(Path(__file__).with_name("stress_worker.py"))
SEED = int(os.environ.get("SEGFS_TEST_SEED", "20261122"))
WORKERS, OPS = 4, 600
SLACK = 32 * MiB      # Shmem moves with the rest of the machine


def fds(pid):
    """(segment backing files, all descriptors) of a daemon."""
    return len(h.backing_files(pid)), len(os.listdir("/proc/%d/fd" % pid))


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def start_workers(mnt, tmp, extra=()):
    procs = []
    for w in range(WORKERS):
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, *extra, str(mnt), str(w), str(SEED), str(OPS),
             str(tmp / ("manifest%d.json" % w))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


@pytest.mark.deadline(240)
def test_stress(fs, tmp_path):
    """Four processes at once create, size, map, fill, verify, rename,
    link, unlink, write and read lists/, and race on shared names: no
    corruption, no unexpected error; another process then finds every
    pattern intact; and once everything is removed the daemon's fd count,
    its memory and Shmem are back where they started."""
    stress(fs, tmp_path)


@pytest.mark.deadline(240)
def test_stress_few_descriptors(start_segfs, tmp_path):
    """The same load on a daemon limited to 100 descriptors, fewer than
    the segments the workers keep: idle segments lose their descriptors to
    the budget and are reopened by name all along, under the load."""
    if h.BACKING == "memfd":
        pytest.skip("memfds each need a descriptor: the limit bounds them "
                    "(test_more_segments_than_descriptors)")
    stress(start_segfs(nofile=100), tmp_path)


def stress(fs, tmp_path):
    mnt = fs.mnt
    (_, fd0), shm0 = fds(fs.pid), h.meminfo("Shmem")
    (mnt / "warmup").write_bytes(b"x")      # libfuse's buffers, once
    os.unlink(mnt / "warmup")
    rss0 = rss(fs.pid)
    procs = start_workers(mnt, tmp_path)
    for p in procs:
        out, err = p.communicate(timeout=200)
        assert p.returncode == 0, err
    # Another process (this one) checks what every worker left.
    total = 0
    for w in range(WORKERS):
        m = json.loads((tmp_path / ("manifest%d.json" % w)).read_text())
        for name, (pseed, size) in m["segments"].items():
            assert (mnt / name).read_bytes() == h.pattern(pseed, 0, size), name
            total += 1
        for name, text in m["lists"].items():
            assert (mnt / "lists" / name).read_text() == text.replace("b'\\x00'", "b''")
    assert total > 0
    assert fs.alive()
    # Remove everything: the daemon gives back its descriptors and memory.
    for name in os.listdir(mnt):
        if name != "lists":
            os.unlink(mnt / name)
    # No segment's backing file is left; beyond that, libfuse keeps a splice pipe
    # pair per loop thread it started for the load (at most 10 idle).
    assert h.wait_until(lambda: fds(fs.pid)[0] == 0, 5), fds(fs.pid)
    assert fds(fs.pid)[1] <= fd0 + 2 * 10 + 2, (fd0, fds(fs.pid))
    assert h.wait_until(lambda: h.meminfo("Shmem") - shm0 < SLACK, 5)
    # ASan keeps freed memory in quarantine by design (256 MiB): the bound
    # is for the daemon's own memory, so it holds for uninstrumented builds.
    with open("/proc/%d/maps" % fs.pid) as f:
        asan = "libasan" in f.read()
    if not asan:
        assert rss(fs.pid) - rss0 < 16 * MiB, (rss0, rss(fs.pid))


@pytest.mark.deadline(120)
def test_sigkill_under_load(start_segfs, client, guard, tmp_path):
    """SIGKILL of an auto_unmount daemon in the middle of the stress load:
    the mount goes away by itself, the memory of unmapped segments is
    freed, a client's mapping keeps working (passthrough) and its memory
    goes when it unmaps, and a new mount on the same point works at once."""
    size = 32 * MiB
    shm0 = h.meminfo("Shmem")
    d = start_segfs(["auto_unmount"])
    fd = os.open(d.mnt / "held", os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, size)
    os.close(fd)
    c = client(d.mnt / "held")
    c.ok("open rw")
    c.ok(f"map {size}")
    c.ok("close")
    c.ok(f"fill 0 {size} 5")
    procs = start_workers(d.mnt, tmp_path, ["--keep-going"])
    time.sleep(1.0)
    os.kill(d.pid, signal.SIGKILL)
    assert d.wait() == -signal.SIGKILL
    for p in procs:
        p.communicate(timeout=60)
    assert h.wait_until(lambda: not h.is_mounted(d.mnt), 5, interval=0.05), \
        "auto_unmount left the dead mount"
    if h.MODE == "passthrough":
        # The mapping is the backing file's own pages: it outlives the daemon.
        assert c.cmd(f"verify 0 {size} 5") == "ok"
        c.ok(f"fill 0 {size} 6")
        assert c.cmd(f"verify 0 {size} 6") == "ok"
        held = size
    else:
        held = 0
    # Everything but the mapped segment is gone already.
    assert h.wait_until(lambda: h.meminfo("Shmem") - shm0 < held + SLACK, 5), \
        (shm0, h.meminfo("Shmem"))
    c.ok("unmap")
    c.quit()
    assert h.wait_until(lambda: h.meminfo("Shmem") - shm0 < SLACK, 5)
    # A new daemon mounts on the same point at once.
    again = h.Daemon(d.mnt, h.SEGFS_OPTS, log=d.log.with_name(d.log.name + ".2"))
    guard.add_mount(again)
    again.start()
    (again.mnt / "fresh").write_bytes(b"works")
    assert (again.mnt / "fresh").read_bytes() == b"works"
    assert sorted(os.listdir(again.mnt)) == ["fresh", "lists"]
    assert again.unmount() == []
