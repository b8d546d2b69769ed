"""Python's shared memory and multiprocessing, unmodified, on a /dev/shm.

    python mp_features.py fork|spawn

Run under segfs-exec (so /dev/shm is segfs) by test_devshm.py, with every
CPython >= 3.9.  Each check asserts its result across processes; the last
line printed is "ok" when all passed.  Works on any /dev/shm: the lists/
checks are skipped where there is no lists/ directory.
"""

import os
import pickle
import sys
import time
import multiprocessing as mp
from multiprocessing import shared_memory
from multiprocessing.managers import SharedMemoryManager

SHM = "/dev/shm"


# ---- worker functions (module level, so spawn can import them) ------------

def write_block(name, data):
    shm = shared_memory.SharedMemory(name=name)
    shm.buf[:len(data)] = data
    shm.close()


def bump_list(sl, i):
    # sl arrives pickled: ShareableList reduces to an attach by name.
    sl[i] = sl[i] + 1
    sl.shm.close()


def add_under_lock(lock, value, n):
    for _ in range(n):
        with lock:
            v = value.value
            time.sleep(0)
            value.value = v + 1


def add_under_rlock(rlock, value, n):
    for _ in range(n):
        with rlock:
            with rlock:     # re-entrant
                value.value += 1


def hold_semaphore(sem, active, peak, lock):
    with sem:
        with lock:
            active.value += 1
            peak.value = max(peak.value, active.value)
        time.sleep(0.05)
        with lock:
            active.value -= 1


def wait_condition(cond, flag, seen):
    with cond:
        cond.wait_for(lambda: flag.value == 1, timeout=30)
        seen.value += 1


def wait_event(ev, seen):
    if ev.wait(30):
        with seen.get_lock():
            seen.value += 1


def cross_barrier(barrier, arr, i):
    arr[i] = 1
    barrier.wait(30)
    # Past the barrier, everyone has written.
    arr[i + 3] = sum(arr[:3])


def produce(q, n):
    for i in range(n):
        q.put(("item", i, b"x" * i))
    q.put(None)


def consume_joinable(q, out):
    while True:
        item = q.get()
        out.put(item * 2)
        q.task_done()


def square(x):
    return x * x


def fill_array(arr):
    for i in range(len(arr)):
        arr[i] = i * 1.5


# ---- checks ----------------------------------------------------------------

def run(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(60)
    assert p.exitcode == 0, (target.__name__, p.exitcode)


def check_shared_memory(ctx):
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        assert shm.name.startswith("psm_") and len(shm.name) == 12, shm.name
        assert os.path.exists(os.path.join(SHM, shm.name))
        assert shm.size == 4096
        run(ctx, write_block, shm.name, b"hello from a child")
        assert bytes(shm.buf[:18]) == b"hello from a child"
        again = shared_memory.SharedMemory(name=shm.name)
        assert bytes(again.buf[:5]) == b"hello" and again.size == 4096
        again.close()
        for bad in [dict(create=True, size=0), dict(create=True, size=-1)]:
            try:
                shared_memory.SharedMemory(**bad)
                raise AssertionError("size check missing: %r" % bad)
            except ValueError:
                pass
        try:
            shared_memory.SharedMemory(name=shm.name, create=True, size=10)
            raise AssertionError("FileExistsError expected")
        except FileExistsError:
            pass
    finally:
        shm.close()
        shm.unlink()
    try:
        shared_memory.SharedMemory(name=shm.name)
        raise AssertionError("FileNotFoundError expected after unlink")
    except FileNotFoundError:
        pass


def check_shareable_list(ctx):
    sl = shared_memory.ShareableList([1, 2.5, "text", b"raw", None, True])
    try:
        other = shared_memory.ShareableList(name=sl.shm.name)
        other[2] = "new"
        assert sl[2] == "new"
        other.shm.close()
        # Pickled (to a child, under spawn too): attaches by name.
        assert pickle.loads(pickle.dumps(sl)).shm.name == sl.shm.name
        run(ctx, bump_list, sl, 0)
        assert sl[0] == 2
    finally:
        sl.shm.close()
        sl.shm.unlink()


def check_lists_dir():
    lists = os.path.join(SHM, "lists")
    if not os.path.isdir(lists):
        return
    sl = shared_memory.ShareableList([1, "two", 3.0], name="x")
    try:
        with open(os.path.join(lists, "x")) as f:
            assert f.read() == "1\n'two'\n3.0\n"
        with open(os.path.join(lists, "x"), "w") as f:
            f.write("7\n'xyz'\n-1.5\n")
        assert [sl[0], sl[1], sl[2]] == [7, "xyz", -1.5]   # in place, seen
        sl[0] = 8
        with open(os.path.join(lists, "x")) as f:
            assert f.read().startswith("8\n")
    finally:
        sl.shm.close()
        sl.shm.unlink()
    with open(os.path.join(lists, "y"), "w") as f:
        f.write("None\nb'\\x00a'\n'it\\'s'\n")
    y = shared_memory.ShareableList(name="y")
    try:
        assert [y[0], y[1], y[2]] == [None, b"\x00a", "it's"]
    finally:
        y.shm.close()
        y.shm.unlink()


def check_manager():
    with SharedMemoryManager() as smm:
        blk = smm.SharedMemory(size=128)
        lst = smm.ShareableList(range(5))
        names = [blk.name, lst.shm.name]
        blk.buf[0] = 42
        assert lst[4] == 4
        assert all(os.path.exists(os.path.join(SHM, n)) for n in names)
        blk.close()
        lst.shm.close()
    # shutdown released them
    assert not any(os.path.exists(os.path.join(SHM, n)) for n in names), names


def check_sync(ctx):
    value = ctx.Value("i", 0)
    lock = ctx.Lock()
    procs = [ctx.Process(target=add_under_lock, args=(lock, value, 200))
             for _ in range(3)]
    [p.start() for p in procs]
    [p.join(60) for p in procs]
    assert value.value == 600, value.value

    rvalue = ctx.Value("i", 0, lock=False)
    rlock = ctx.RLock()
    procs = [ctx.Process(target=add_under_rlock, args=(rlock, rvalue, 100))
             for _ in range(3)]
    [p.start() for p in procs]
    [p.join(60) for p in procs]
    assert rvalue.value == 300, rvalue.value

    for sem in (ctx.Semaphore(2), ctx.BoundedSemaphore(2)):
        active, peak = ctx.Value("i", 0), ctx.Value("i", 0)
        guard = ctx.Lock()
        procs = [ctx.Process(target=hold_semaphore, args=(sem, active, peak, guard))
                 for _ in range(5)]
        [p.start() for p in procs]
        [p.join(60) for p in procs]
        assert 1 <= peak.value <= 2, peak.value
    bounded = ctx.BoundedSemaphore(1)
    try:
        bounded.release()
        raise AssertionError("BoundedSemaphore released past its bound")
    except ValueError:
        pass

    cond, flag, seen = ctx.Condition(), ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [ctx.Process(target=wait_condition, args=(cond, flag, seen))
             for _ in range(3)]
    [p.start() for p in procs]
    time.sleep(0.2)
    with cond:
        flag.value = 1
        cond.notify_all()
    [p.join(60) for p in procs]
    assert seen.value == 3, seen.value

    ev, seen = ctx.Event(), ctx.Value("i", 0)
    procs = [ctx.Process(target=wait_event, args=(ev, seen)) for _ in range(3)]
    [p.start() for p in procs]
    ev.set()
    [p.join(60) for p in procs]
    assert seen.value == 3 and ev.is_set()

    barrier = ctx.Barrier(3)
    arr = ctx.Array("i", 6)
    procs = [ctx.Process(target=cross_barrier, args=(barrier, arr, i)) for i in range(3)]
    [p.start() for p in procs]
    [p.join(60) for p in procs]
    assert list(arr) == [1, 1, 1, 3, 3, 3], list(arr)


def check_queues(ctx):
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, 50))
    p.start()
    got = []
    while True:
        item = q.get(timeout=30)
        if item is None:
            break
        got.append(item)
    p.join(60)
    assert got == [("item", i, b"x" * i) for i in range(50)]

    jq, out = ctx.JoinableQueue(), ctx.Queue()
    p = ctx.Process(target=consume_joinable, args=(jq, out), daemon=True)
    p.start()
    for i in range(20):
        jq.put(i)
    jq.join()          # returns once every item is task_done
    assert sorted(out.get(timeout=30) for _ in range(20)) == [i * 2 for i in range(20)]
    p.terminate()
    p.join(30)


def check_values_and_pool(ctx):
    arr = ctx.Array("d", 8)
    run(ctx, fill_array, arr)
    assert list(arr) == [i * 1.5 for i in range(8)]
    with ctx.Pool(2) as pool:
        assert pool.map(square, range(20)) == [i * i for i in range(20)]
        assert pool.apply_async(square, (12,)).get(30) == 144


def main():
    method = sys.argv[1]
    ctx = mp.get_context(method)
    for check in (lambda: check_shared_memory(ctx), lambda: check_shareable_list(ctx),
                  check_lists_dir, check_manager, lambda: check_sync(ctx),
                  lambda: check_queues(ctx), lambda: check_values_and_pool(ctx)):
        check()
    print("ok")


if __name__ == "__main__":
    main()
