"""lists/ against real CPython, on every CPython >= 3.9 on the machine.

sl_peer.py runs CPython's own ShareableList on segments of the mount.  For
seeded random lists of every type:
  * CPython creates a list; lists/ shows exactly repr() of what CPython
    reads back;
  * the same values written as text to lists/ give exactly CPython's bytes
    (where CPython would truncate a str, segfs keeps it whole instead, and
    CPython reads the whole value back);
  * new values written to lists/ in place give exactly the bytes of
    CPython's own sl[i] = v, and an attached CPython process sees them;
  * bad text is refused and the bytes stay as they were.
"""

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

import harness as h
from harness import write_once

pytestmark = pytest.mark.usefixtures("segfs_only")

PEER = Path(__file__).with_name("sl_peer.py")
SEED = int(os.environ.get("SEGFS_TEST_SEED", "20261122"))
COUNT = 200


def peer(exe, mnt, *args, timeout=120):
    res = h.run([exe, PEER, mnt] + [str(a) for a in args], timeout=timeout)
    return json.loads(res.stdout)


@pytest.mark.deadline(240)
@pytest.mark.parametrize("exe", h.cpython_params())
def test_differential(mnt, exe):
    """CPython's bytes and reprs against lists/, both ways, in place and
    refused, for seeded random lists of every type."""
    made = peer(exe, mnt, "make", SEED, COUNT)
    ours = []
    for i, m in enumerate(made):
        # CPython wrote it: lists/ shows repr() of what CPython reads, and
        # nothing where CPython cannot read its own list back.
        if m["readback"] is None:
            assert h.errno_of(os.stat, mnt / "lists" / m["name"]) == errno.ENOENT, m
        else:
            assert (mnt / "lists" / m["name"]).read_text() == m["readback"], m
        # The same values as text: CPython's bytes, or a whole str where
        # CPython would have cut one.
        name = "sf%d" % i
        assert write_once(mnt / "lists" / name, m["input"]) == (0, 0), m
        if not m["truncates"]:
            assert (mnt / name).read_bytes() == (mnt / m["name"]).read_bytes(), m
            ours.append(name)
    # CPython reads every value back whole from what segfs wrote, even
    # where its own encoder would have cut a str; lists/ shows the same.
    names = ["sf%d" % i for i in range(len(made))]
    for m, name, text in zip(made, names, peer(exe, mnt, "read", *names)):
        assert text == m["whole"], m
        assert (mnt / "lists" / name).read_text() == text, m
    # In place: segfs's store equals CPython's sl[i] = v, byte for byte.
    for a in peer(exe, mnt, "assign", SEED + 1, *ours):
        assert write_once(mnt / "lists" / a["name"], a["input"]) == (0, 0), a
        assert (mnt / a["name"]).read_bytes() == (mnt / a["twin"]).read_bytes(), a
        assert (mnt / "lists" / a["name"]).read_text() == a["readback"], a
    # Bad text: refused, bytes unchanged.
    for name in ours[:10]:
        before = (mnt / name).read_bytes()
        assert write_once(mnt / "lists" / name, "1\n2 +\n") == (errno.EINVAL, errno.EINVAL)
        assert write_once(mnt / "lists" / name, "[1]") == (0, errno.EINVAL)
        assert (mnt / name).read_bytes() == before


@pytest.mark.parametrize("exe", h.cpython_params()[-1:])
def test_attached_process_sees_in_place_values(mnt, exe):
    """A CPython process attached with ShareableList(name=...) sees values
    written to lists/NAME in place, without re-attaching."""
    assert write_once(mnt / "lists" / "shared", "1\n'abcdefg'\nNone\n") == (0, 0)
    p = subprocess.Popen([exe, str(PEER), str(mnt), "watch", "shared"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        assert write_once(mnt / "lists" / "shared", "42\n'xyz'\n2.5\n") == (0, 0)
        out, _ = p.communicate("go\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert json.loads(out) == "42\n'xyz'\n2.5\n"
