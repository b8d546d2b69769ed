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
