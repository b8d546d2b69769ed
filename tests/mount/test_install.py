"""segfs as an installed filesystem: meson install, the man page, the
systemd unit, mount -t fuse.segfs and /etc/fstab lines.

mount(8) runs mount.fuse3 with a clean PATH, so `segfs` must be installed
in a standard place; these tests bind a directory holding this build's
segfs over /usr/local/bin in a private mount namespace, which changes
nothing outside the test.
"""

import re
from pathlib import Path

import pytest

import harness as h

pytestmark = pytest.mark.usefixtures("segfs_only")

BUILD = Path(h.SEGFS).parent


def test_meson_install(tmp_path):
    """meson install puts segfs, its server (in libexec), segfs-exec,
    segfs(8) and the segfs@ systemd unit template in place; the man page
    renders cleanly and the unit runs the installed segfs with systemd's
    descriptor store, and reloads by upgrading its server."""
    res = h.run(["meson", "install", "-C", BUILD, "--destdir", tmp_path,
                 "--no-rebuild", "--quiet"], timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    prefix = "usr/local"
    for f in ["bin/segfs", "libexec/segfs/segfs-server", "bin/segfs-exec",
              "share/man/man8/segfs.8",
              "share/man/man1/segfs-exec.1",
              "lib/systemd/system/segfs@.service"]:
        assert f"{prefix}/{f}" in files, (f, sorted(files))
    man = tmp_path / prefix / "share/man/man8/segfs.8"
    res = h.run(["groff", "-man", "-ww", "-z", man], timeout=30, check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    text = h.run(["groff", "-man", "-Tascii", man], timeout=30).stdout
    for opt in ["nopassthrough", "size=", "nr_segments=", "mode=", "lists=",
                "allow_other", "auto_unmount", "fsname=", "SEGFS-EXEC", "LIMITS",
                "RESTARTS AND UPGRADES", "--upgrade", "crash_loop=", "fdstore",
                "norestart"]:
        assert opt in re.sub(r".\x08", "", text), opt
    man = tmp_path / prefix / "share/man/man1/segfs-exec.1"
    res = h.run(["groff", "-man", "-ww", "-z", man], timeout=30, check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    text = re.sub(r".\x08", "", h.run(["groff", "-man", "-Tascii", man], timeout=30).stdout)
    for opt in ["--grace=", "-q", "-v", "LEAK REPORT", "EXIT STATUS", "SIGTERM"]:
        assert opt in text, opt
    unit = (tmp_path / prefix / "lib/systemd/system/segfs@.service").read_text()
    assert "ExecStart=/usr/local/bin/segfs -f -o fdstore," in unit
    assert "ExecReload=/usr/local/bin/segfs --upgrade %f" in unit
    for line in ("Type=notify", "NotifyAccess=main", "FileDescriptorStoreMax=16",
                 "OOMScoreAdjust=-1000", "Restart=on-failure"):
        assert line in unit.splitlines(), line
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "auto_unmount" not in start   # a dead segfs's mount is the next one's


def test_help_lists_options_with_defaults():
    """--help names every option with its default."""
    out = h.run([h.SEGFS, "--help"], timeout=10).stdout
    for opt, default in [("nopassthrough", "passthrough"), ("size=", "50%"),
                         ("nr_segments=", "half of RAM"), ("mode=", "0755"),
                         ("lists=", "lists"), ("allow_other", "off"),
                         ("auto_unmount", "off"), ("fsname=", "segfs"),
                         ("entry_timeout=", "86400"), ("attr_timeout=", "1")]:
        line = next((l for l in out.splitlines() if opt in l), None)
        assert line is not None, opt
        block = out[out.index(line):out.index(line) + 400]
        assert "default" in block and default in block, (opt, block)


def in_namespace(script, timeout=60):
    """Runs a shell script in a private mount namespace in which
    /usr/local/bin holds this build's segfs."""
    bindir = Path(h.make_tempdir(Path("/tmp"), "segfs-bin-"))
    try:
        (bindir / "segfs").symlink_to(h.SEGFS)
        full = f"mount --bind {bindir} /usr/local/bin\n" + script
        return h.run(["unshare", "-m", "--propagation", "private", "sh", "-euc", full],
                     timeout=timeout, check=False)
    finally:
        (bindir / "segfs").unlink()
        bindir.rmdir()


def test_mount_helper_and_fstab(tmp_path):
    """mount -t fuse.segfs and an fstab line (with defaults, _netdev and
    nofail) mount segfs with its options; umount stops the daemon."""
    mnt = tmp_path / "m"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(f"shm {mnt} fuse.segfs defaults,size=64m,nr_segments=50,"
                     f"_netdev,nofail 0 0\n")
    res = in_namespace(f"""
        mount -t fuse.segfs segfs {mnt} -o size=1G,allow_other
        grep " {mnt} " /proc/mounts
        df -B1 --output=size {mnt} | tail -1
        echo hi > {mnt}/x && cat {mnt}/x
        umount {mnt}
        sleep 0.3
        pgrep -f "^segfs segfs {mnt}" || echo daemon-gone
        mount -T {fstab} {mnt}
        grep " {mnt} " /proc/mounts
        df --output=itotal {mnt} | tail -1
        umount {mnt}
        sleep 0.3
        pgrep -f "^segfs shm {mnt}" || echo daemon-gone
    """)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.split("\n")
    assert lines[0].startswith(f"segfs {mnt} fuse.segfs ") and "allow_other" in lines[0]
    assert int(lines[1]) == 1 << 30
    assert lines[2] == "hi" and lines[3] == "daemon-gone"
    assert lines[4].startswith(f"shm {mnt} fuse.segfs ")
    assert lines[5].strip() == "50" and lines[6] == "daemon-gone"
    assert not h.is_mounted(mnt)
