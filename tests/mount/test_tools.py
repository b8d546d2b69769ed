"""Ordinary shell tools on the mount: ls, cat, cp, dd, truncate, rm, mv, ln,
stat, df, du, find."""

import os

from harness import MiB, run


def sh(mnt, script, timeout=30):
    """Run a shell snippet in the mount; returns its stdout."""
    return run(["sh", "-euc", script], cwd=mnt, timeout=timeout).stdout


def test_ls_l_shows_size_and_mode(mnt):
    """`ls -l` shows the exact size, mode and link count of segments."""
    sh(mnt, "printf '%041d' 0 > seg41 && chmod 640 seg41 && mkdir dir")
    lines = {line.split()[-1]: line.split()
             for line in sh(mnt, "ls -l").splitlines()[1:]}
    assert lines["seg41"][0] == "-rw-r-----"
    assert lines["seg41"][1] == "1"
    assert lines["seg41"][4] == "41"
    assert lines["dir"][0].startswith("d")
    assert set(lines) == {"seg41", "dir", "lists"}


def test_cat_and_shell_redirection(mnt):
    """echo > / >> / cat behave as on any filesystem."""
    assert sh(mnt, "echo one > f && echo two >> f && cat f") == "one\ntwo\n"
    assert sh(mnt, "cat f f | wc -l").strip() == "4"


def test_cp_into_and_out_of_mount(mnt, tmp_path):
    """cp copies a file into the mount and back out byte-exactly."""
    src = tmp_path / "src.bin"
    data = os.urandom(3 * MiB + 123)
    src.write_bytes(data)
    run(["cp", src, mnt / "copy"], timeout=30)
    assert (mnt / "copy").read_bytes() == data
    run(["cp", "--preserve=mode", mnt / "copy", mnt / "copy2"], timeout=30)
    run(["cp", mnt / "copy2", tmp_path / "back.bin"], timeout=30)
    assert (tmp_path / "back.bin").read_bytes() == data


def test_dd_seek_and_read(mnt):
    """dd writes at a seek offset without truncating and reads ranges back."""
    sh(mnt, "dd if=/dev/zero of=d bs=4096 count=4 status=none")
    sh(mnt, "printf 'XYZ' | dd of=d bs=1 seek=5000 conv=notrunc status=none")
    assert os.stat(mnt / "d").st_size == 16384
    out = sh(mnt, "dd if=d bs=1 skip=5000 count=3 status=none")
    assert out == "XYZ"
    sh(mnt, "dd if=/dev/urandom of=r bs=1M count=2 status=none")
    assert os.stat(mnt / "r").st_size == 2 * MiB


def test_truncate_tool(mnt):
    """truncate -s sets exact sizes, growing and shrinking."""
    sh(mnt, "truncate -s 41 t")
    assert os.stat(mnt / "t").st_size == 41
    sh(mnt, "truncate -s +1000 t")
    assert os.stat(mnt / "t").st_size == 1041
    sh(mnt, "truncate -s 7 t")
    assert (mnt / "t").read_bytes() == bytes(7)


def test_rm_mv_ln(mnt):
    """rm, rm -r, mv (rename and over a file), ln (hard link)."""
    sh(mnt, "echo a > a && echo b > b && mkdir -p d/e && echo c > d/e/c")
    sh(mnt, "mv a moved && mv b moved")  # the second replaces the first
    assert (mnt / "moved").read_text() == "b\n"
    assert not (mnt / "a").exists() and not (mnt / "b").exists()
    sh(mnt, "ln moved hard")
    assert os.stat(mnt / "hard").st_nlink == 2
    assert os.stat(mnt / "hard").st_ino == os.stat(mnt / "moved").st_ino
    sh(mnt, "mv d dd && rm moved && rm -r dd")
    assert sorted(os.listdir(mnt)) == ["hard", "lists"]
    assert os.stat(mnt / "hard").st_nlink == 1
    res = run(["ln", "-s", "hard", mnt / "sym"], timeout=10, check=False)
    # Symlinks are refused on segfs (EPERM) and allowed on tmpfs; either
    # way ln must not hang and must report what happened.
    assert res.returncode == 0 or "Operation not permitted" in res.stderr


def test_stat_tool(mnt):
    """stat(1) prints the exact size, type and mode."""
    sh(mnt, "printf 'hello' > s && chmod 604 s")
    out = sh(mnt, "stat -c '%s %F %a %h' s").strip()
    assert out == "5 regular file 604 1"
    out = sh(mnt, "stat -f -c '%l' .").strip()  # max name length
    assert out == "255"


def test_df_used_grows(mnt):
    """`df` shows the used space growing after writing 8 MiB."""
    def used():
        line = sh(mnt, "df -P -k .").splitlines()[1].split()
        return int(line[2]) * 1024, int(line[1]) * 1024

    before, size = used()
    assert size > 0
    sh(mnt, "dd if=/dev/zero of=big bs=1M count=8 status=none")
    after, _ = used()
    assert after - before >= 7 * MiB


def test_du_counts_written_data(mnt):
    """`du` counts the blocks of written data."""
    sh(mnt, "mkdir d && dd if=/dev/urandom of=d/x bs=1M count=4 status=none")
    kib = int(sh(mnt, "du -s -k d").split()[0])
    assert 4096 <= kib < 4096 + 256
    assert sh(mnt, "du -b d/x").split()[0] == str(4 * MiB)


def test_find(mnt):
    """find walks nested directories and filters by type, name and size."""
    sh(mnt, "mkdir -p a/b/c && echo 1 > a/one && echo 22 > a/b/two "
            "&& printf '%0100d' 0 > a/b/c/big")
    files = sh(mnt, "find . -type f | sort").split()
    assert files == ["./a/b/c/big", "./a/b/two", "./a/one"]
    dirs = sh(mnt, "find . -type d | sort").split()
    assert dirs == [".", "./a", "./a/b", "./a/b/c", "./lists"]
    assert sh(mnt, "find . -name two").split() == ["./a/b/two"]
    assert sh(mnt, "find . -type f -size +50c").split() == ["./a/b/c/big"]
