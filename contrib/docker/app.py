"""An example program for contrib/docker/Dockerfile: it shares memory the
way PyTorch's DataLoader workers and Python's multiprocessing do, through
/dev/shm, then asks for more than the container gives it.

Under segfs-exec -o size=256m that last request is a clean OSError
(ENOSPC) from ftruncate, which a program can handle.  On a 64 MiB tmpfs
/dev/shm, ftruncate says yes and whoever later touches a page that finds
no memory dies of SIGBUS ("DataLoader worker ... killed by signal: Bus
error").  It frees what it made, and exits 0.
"""
import errno
import os
from multiprocessing import Pool, shared_memory

BLOCK = 32 << 20


def fill(name):
    shm = shared_memory.SharedMemory(name=name)
    shm.buf[:] = b"\x01" * len(shm.buf)
    total = sum(shm.buf[::4096])
    shm.close()
    return total


def main():
    sv = os.statvfs("/dev/shm")
    free = sv.f_bavail * sv.f_frsize
    # Room left for the pool's own semaphores, which live in /dev/shm too.
    n = max(0, min(free // BLOCK - 1, 8))
    blocks = [shared_memory.SharedMemory(create=True, size=BLOCK) for _ in range(n)]
    with Pool(2) as pool:
        pages = sum(pool.map(fill, [b.name for b in blocks]))
    print(f"{n} blocks of 32 MiB shared with 2 workers ({pages} pages touched)")
    # Then more than there is: an error now, not a SIGBUS later.
    fd = os.open("/dev/shm/one-too-many", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, 4 * free)
        print("ftruncate past the free space succeeded: this /dev/shm is not segfs")
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(f"asking for {4 * free >> 20} MiB more: {e.strerror}")
    finally:
        os.close(fd)
        os.unlink("/dev/shm/one-too-many")
    for b in blocks:
        b.close()
        b.unlink()


if __name__ == "__main__":
    main()
