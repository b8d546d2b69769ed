"""Ownership and permission checks for non-root callers (the mount uses
allow_other, so other users may enter it at all; default_permissions makes
the kernel check modes)."""

import errno
import os
import stat

import pytest

from harness import errno_of, run_as

NOBODY = 65534

pytestmark = pytest.mark.segfs_opts("allow_other")


@pytest.fixture
def shared_dir(mnt):
    """A world-writable directory in the mount."""
    d = mnt / "pub"
    d.mkdir()
    d.chmod(0o777)
    return d


def test_new_file_takes_caller_ids_and_umask(shared_dir):
    """A segment created by uid/gid 65534 with umask 027 is owned by it and
    has mode 0666 & ~027 = 0640; a directory gets 0750."""
    def create():
        fd = os.open(shared_dir / "mine", os.O_CREAT | os.O_RDWR, 0o666)
        os.write(fd, b"hi")
        st = os.fstat(fd)
        os.close(fd)
        os.mkdir(shared_dir / "mydir", 0o777)
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    assert run_as(NOBODY, NOBODY, create, umask=0o027) == \
        (NOBODY, NOBODY, 0o640)
    st = os.stat(shared_dir / "mine")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (NOBODY, NOBODY, 0o640)
    st = os.stat(shared_dir / "mydir")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (NOBODY, NOBODY, 0o750)


def test_unprivileged_cannot_open_root_0600(mnt, shared_dir):
    """default_permissions: a non-root user cannot open a root-owned 0600
    segment (EACCES), but can open a 0644 one read-only."""
    secret = shared_dir / "secret"
    secret.write_bytes(b"root only")
    secret.chmod(0o600)
    public = shared_dir / "public"
    public.write_bytes(b"everyone")
    public.chmod(0o644)

    def attempt():
        with open(public, "rb") as f:
            data = f.read()
        return (errno_of(os.open, secret, os.O_RDONLY),
                errno_of(os.open, public, os.O_WRONLY),
                os.access(secret, os.R_OK),
                data)

    assert run_as(NOBODY, NOBODY, attempt) == \
        (errno.EACCES, errno.EACCES, False, b"everyone")


def test_unprivileged_cannot_chmod_or_chown_others(shared_dir):
    """A non-owner cannot chmod (EPERM) or chown (EPERM) a root segment, nor
    delete from a sticky directory it does not own."""
    f = shared_dir / "rootfile"
    f.write_bytes(b"")
    f.chmod(0o666)
    shared_dir.chmod(0o1777)

    def attempt():
        return (errno_of(os.chmod, f, 0o777),
                errno_of(os.chown, f, NOBODY, NOBODY),
                errno_of(os.unlink, f))

    assert run_as(NOBODY, NOBODY, attempt) == \
        (errno.EPERM, errno.EPERM, errno.EPERM)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o666


def test_unprivileged_cannot_create_in_root_dir(mnt):
    """A non-root user cannot create in a 0755 root-owned directory."""
    os.mkdir(mnt / "closed", 0o755)

    def attempt():
        return errno_of(os.open, mnt / "closed" / "x",
                        os.O_CREAT | os.O_RDWR, 0o644)

    assert run_as(NOBODY, NOBODY, attempt) == errno.EACCES
    assert os.listdir(mnt / "closed") == []


def test_others_0600_segment_is_closed(mnt, shared_dir):
    """A 0600 segment of another user cannot be opened, read, truncated,
    renamed or unlinked by a non-root user (sticky world-writable dir)."""
    shared_dir.chmod(0o1777)
    seg = shared_dir / "private"
    seg.write_bytes(b"secret")
    seg.chmod(0o600)

    def attempt():
        out = {}
        for what, fn in [("open", lambda: os.open(seg, os.O_RDONLY)),
                         ("read", lambda: open(seg, "rb").read()),
                         ("truncate", lambda: os.truncate(seg, 0)),
                         ("rename", lambda: os.rename(seg, shared_dir / "mine")),
                         ("unlink", lambda: os.unlink(seg))]:
            out[what] = errno_of(fn)
        return out

    got = run_as(NOBODY, NOBODY, attempt)
    assert got == {"open": errno.EACCES, "read": errno.EACCES,
                   "truncate": errno.EACCES, "rename": errno.EPERM,
                   "unlink": errno.EPERM}, got
    assert seg.read_bytes() == b"secret"


def test_owner_chmod_chown_rules(shared_dir):
    """An owner may chmod its segment but not give it away (chown EPERM),
    nor move it to a group it is not in; root may chown anything."""
    seg = shared_dir / "owned"

    def as_owner():
        fd = os.open(seg, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(seg, 0o644)
        return (os.stat(seg).st_mode & 0o777, errno_of(os.chown, seg, 0, -1),
                errno_of(os.chown, seg, -1, 0))

    assert run_as(NOBODY, NOBODY, as_owner) == (0o644, errno.EPERM, errno.EPERM)
    os.chown(seg, 0, 0)
    assert (os.stat(seg).st_uid, os.stat(seg).st_gid) == (0, 0)


def test_without_allow_other_others_cannot_enter(start_segfs):
    """Without allow_other, no other user can enter the mount at all, not
    even a world-readable one."""
    d = start_segfs()
    os.chmod(d.mnt, 0o777)
    (d.mnt / "open").write_bytes(b"x")
    os.chmod(d.mnt / "open", 0o666)
    got = run_as(NOBODY, NOBODY, lambda: (errno_of(os.stat, d.mnt / "open"),
                                          errno_of(os.listdir, d.mnt)))
    assert got == (errno.EACCES, errno.EACCES), got


def test_unprivileged_daemon_runs_in_fallback(fuse_for_users, user_tools):
    """A daemon started by a normal user mounts through the setuid
    fusermount3 and works, in fallback mode: it lacks CAP_SYS_ADMIN, so it
    does not even try passthrough, and says so."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    import harness as h
    # Under /tmp itself: the user must reach its mount point.
    tmp_path = Path(tempfile.mkdtemp(prefix="segfs-user-", dir="/tmp"))
    tmp_path.chmod(0o755)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    os.chown(mnt, NOBODY, NOBODY)

    def drop():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    log = open(tmp_path / "daemon.log", "w+")
    p = None
    try:
        p = subprocess.Popen([user_tools.segfs, "-f", str(mnt)], stdout=log,
                             stderr=log, env=user_tools.env, preexec_fn=drop,
                             start_new_session=True)
        assert h.wait_until(lambda: h.is_mounted(mnt) and "data path" in
                            (tmp_path / "daemon.log").read_text(), 10), \
            (tmp_path / "daemon.log").read_text()
        line = (tmp_path / "daemon.log").read_text()
        # The reason: no CAP_SYS_ADMIN, or a libfuse 3.14 build, which
        # has no passthrough to try in the first place.
        assert "data path: fallback" in line and (
            "CAP_SYS_ADMIN" in line or "libfuse < 3.17" in line), line
        # Nor may it mount the private tmpfs: its segments are memfds.
        assert "backing: memfd (no private tmpfs: Operation not permitted)" \
            in line, line
        got = run_as(NOBODY, NOBODY, lambda: (
            open(mnt / "x", "wb").write(b"mine"), open(mnt / "x", "rb").read(),
            os.stat(mnt / "x").st_uid))
        assert got == (4, b"mine", NOBODY), got
        res = run_as(NOBODY, NOBODY, lambda: subprocess.run(
            [user_tools.fusermount, "-u", str(mnt)],
            capture_output=True).returncode)
        assert res == 0
        assert p.wait(timeout=10) == 0
    finally:
        if p is not None and p.poll() is None:
            h.abort_connection(mnt)
            h.lazy_umount(mnt)
            p.kill()
            p.wait()
        log.close()
        if not h.is_mounted(mnt):
            shutil.rmtree(tmp_path, ignore_errors=True)
