"""One process of the stress test (test_stress.py).

    python stress_worker.py MOUNTPOINT WORKER SEED OPS MANIFEST

Does OPS seeded random operations on the mount, at the same time as the
other workers: create + ftruncate + mmap + write a pattern, verify,
rename, link, unlink, writes and reads of lists/, and races on names
shared by all workers.  Its own segments must always hold their pattern;
the only errors allowed are the ones races on shared names cause (EEXIST,
ENOENT).  At the end it writes MANIFEST: its segments and their
patterns, for another process to verify.  Exit status 0 means all held.
With --keep-going (the SIGKILL test) it stops quietly at the first
error, since the daemon is gone.
"""

import errno
import json
import mmap
import os
import random
import sys

from harness import pattern   # this directory is sys.path[0]


def main():
    args = [a for a in sys.argv[1:] if a != "--keep-going"]
    keep_going = "--keep-going" in sys.argv
    mnt, wid, seed, ops, manifest = args[0], int(args[1]), int(args[2]), int(args[3]), args[4]
    r = random.Random(seed * 1000 + wid)
    mine = {}           # name -> (pattern seed, size)
    lists = {}          # name -> text
    shared_ok = (errno.EEXIST, errno.ENOENT)
    counter = 0

    def path(name):
        return os.path.join(mnt, name)

    try:
        for _ in range(ops):
            op = r.randrange(9)
            if op <= 1 or not mine:                     # create, size, map, fill
                counter += 1
                name = "w%d_%d" % (wid, counter)
                size = r.choice([1, 4095, 4096, 5000, 65536, 200000])
                pseed = r.randrange(1 << 30)
                fd = os.open(path(name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
                try:
                    os.ftruncate(fd, size)
                    with mmap.mmap(fd, size) as m:
                        m[:] = pattern(pseed, 0, size)
                finally:
                    os.close(fd)
                mine[name] = (pseed, size)
            elif op == 2:                                  # verify one
                name = r.choice(sorted(mine))
                pseed, size = mine[name]
                with open(path(name), "rb") as f:
                    data = f.read()
                assert data == pattern(pseed, 0, size), "pattern of %s" % name
            elif op == 3:                                  # rename
                name = r.choice(sorted(mine))
                counter += 1
                new = "w%d_%d" % (wid, counter)
                os.rename(path(name), path(new))
                mine[new] = mine.pop(name)
            elif op == 4:                                  # link, then drop one name
                name = r.choice(sorted(mine))
                counter += 1
                new = "w%d_%d" % (wid, counter)
                os.link(path(name), path(new))
                assert os.stat(path(new)).st_nlink == 2
                gone = r.choice([name, new])
                os.unlink(path(gone))
                mine[new if gone == name else name] = mine.pop(name)
            elif op == 5:                                  # unlink
                name = r.choice(sorted(mine))
                os.unlink(path(name))
                del mine[name]
            elif op == 6:                                  # lists/
                counter += 1
                name = "w%d_L%d" % (wid, counter % 5)
                text = "".join(r.choice(["1\n", "-2.5\n", "'abc'\n", "None\n",
                                         "b'\\x00'\n", "'%s'\n" % ("x" * r.randrange(30))])
                               for _ in range(r.randrange(1, 6)))
                with open(path(os.path.join("lists", name)), "w") as f:
                    f.write(text)
                lists[name] = text
                with open(path(os.path.join("lists", name))) as f:
                    assert f.read() == text.replace("b'\\x00'", "b''"), name
            else:                                          # races on shared names
                shared = path("shared_%d" % r.randrange(3))
                try:
                    if op == 7:
                        os.close(os.open(shared, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
                    else:
                        os.unlink(shared)
                except OSError as e:
                    if e.errno not in shared_ok:
                        raise
    except Exception as e:
        if keep_going:
            return 0
        print("worker %d: %s: %s" % (wid, type(e).__name__, e), file=sys.stderr)
        return 1
    with open(manifest, "w") as f:
        json.dump({"segments": mine, "lists": lists}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
