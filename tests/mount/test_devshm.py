"""segfs as /dev/shm: segfs-exec, and unmodified programs inside it.

Real C programs (shm_open, sem_open across processes, races) and real
Python programs (shared_memory and multiprocessing, fork and spawn, on
every CPython >= 3.9) run under segfs-exec, with their results checked;
then nothing may be left: no daemon, no mount, no memory.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import harness as h
from harness import MiB

pytestmark = pytest.mark.usefixtures("segfs_only")

EXEC = h.SEGFS_EXEC
MP = str(Path(__file__).with_name("mp_features.py"))
OPTS = ["-o", ",".join(h.SEGFS_OPTS)] if h.SEGFS_OPTS else []


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("segfs-exec needs root")


def segfs_exec(*cmd, timeout=120, check=False):
    return h.run([EXEC] + OPTS + ["--"] + [str(c) for c in cmd],
                 timeout=timeout, check=check)


def daemons():
    """segfs daemons that segfs-exec of this build started (still running)."""
    out = subprocess.run(["pgrep", "-f", "^%s -f -o mode=1777" % re.escape(h.SEGFS)],
                         capture_output=True, text=True).stdout
    return out.split()


def ipc(clients_dir):
    return str(Path(clients_dir) / "posix_ipc")


def test_inside_is_segfs_outside_untouched():
    """Inside, /dev/shm is a segfs mount (1777, with lists/); outside,
    /dev/shm stays what it was and shows nothing of it."""
    before = h.find_mount("/dev/shm")
    res = segfs_exec("sh", "-c", "grep ' /dev/shm ' /proc/self/mounts | tail -1; "
                     "stat -c %a /dev/shm; ls /dev/shm; echo x > /dev/shm/inside",
                     check=True)
    lines = res.stdout.splitlines()
    assert " fuse.segfs " in lines[0]
    assert lines[1] == "1777"
    assert lines[2:] == ["lists"]
    assert h.find_mount("/dev/shm") == before
    assert not os.path.exists("/dev/shm/inside")


def test_c_shm_open(clients_dir):
    """shm_open/ftruncate/mmap shared with a process that opens by name,
    shm_unlink, the mapping outliving the name."""
    res = segfs_exec(ipc(clients_dir), "shm", "/segfs-test")
    assert res.returncode == 0, res.stderr


def test_c_named_semaphores(clients_dir):
    """sem_open/sem_wait/sem_post/sem_unlink: 4 processes keep a shared
    counter right under a named semaphore."""
    res = segfs_exec(ipc(clients_dir), "sem", "/segfs-sem", 4, 3000)
    assert res.returncode == 0, res.stderr


def test_c_sem_open_race(clients_dir):
    """8 processes race sem_open and shm_open with O_CREAT|O_EXCL: exactly
    one of each wins, the rest get EEXIST."""
    for _ in range(3):
        res = segfs_exec(ipc(clients_dir), "race", "/segfs-race", 8)
        assert res.returncode == 0, res.stderr


@pytest.mark.deadline(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("exe", h.cpython_params())
def test_python_multiprocessing(exe, method):
    """SharedMemory, ShareableList (and lists/), SharedMemoryManager, Lock,
    RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier, Queue,
    JoinableQueue, Value, Array and Pool, unmodified, across processes."""
    res = segfs_exec(exe, MP, method, timeout=100)
    assert res.returncode == 0 and res.stdout.splitlines()[-1:] == ["ok"], \
        res.stdout + res.stderr


class Runner:
    """segfs-exec as root, or as uid 65534 in a user namespace of its own
    (its copy of segfs-exec, /dev/fuse opened up as Debian's udev does)."""

    def __init__(self, exe, user):
        self.exe, self.user = exe, user

    def argv(self, *args):
        cmd = [self.exe, *[str(a) for a in args]]
        if self.user:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        return cmd

    def env(self):
        """Root's, or for the user a PATH without root's own directories
        (where execvp's search meets EACCES, a missing command is that)."""
        if not self.user:
            return None
        return dict(os.environ, PATH="/usr/local/bin:/usr/bin:/bin")

    def run(self, *args, timeout=120):
        """segfs-exec ARGS (its options, --, the command), from / (see
        as_nobody)."""
        return h.run(self.argv(*args), timeout=timeout, check=False, cwd="/",
                     env=self.env())

    def __call__(self, *cmd, timeout=120):
        return self.run(*OPTS, "--", *cmd, timeout=timeout)

    def daemons(self):
        daemon = str(Path(self.exe).with_name("segfs"))
        return subprocess.run(["pgrep", "-f", "^%s -f -o mode=1777" % re.escape(daemon)],
                              capture_output=True, text=True).stdout.split()


@pytest.fixture(params=["root", "user"])
def who(request):
    if request.param == "root":
        return Runner(EXEC, False)
    request.getfixturevalue("fuse_for_users")
    return Runner(request.getfixturevalue("user_tools").segfs_exec, True)


def test_exit_status(who):
    """The command's status comes back: its exit code, 128+signal, 127
    when it cannot be run."""
    assert who("true").returncode == 0
    assert who("sh", "-c", "exit 7").returncode == 7
    assert who("sh", "-c", "kill -9 $$").returncode == 128 + 9
    res = who("no-such-command-xyz")
    assert res.returncode == 127 and "no-such-command-xyz" in res.stderr


def test_leaks_die_with_the_command():
    """A command that leaves 128 MiB of segments behind: afterwards no
    segment, no memory (Shmem back), no daemon, no mount."""
    base = h.meminfo("Shmem")
    res = segfs_exec("sh", "-c",
                     "dd if=/dev/zero of=/dev/shm/leak bs=1M count=128 status=none && "
                     "grep '^Shmem:' /proc/meminfo", check=True)
    during = int(res.stdout.split()[1]) * 1024
    assert during - base >= 100 * MiB, (base, during)
    assert h.wait_until(lambda: h.meminfo("Shmem") - base < 32 * MiB, 5), \
        (base, h.meminfo("Shmem"))
    assert daemons() == []
    assert not os.path.exists("/dev/shm/leak")


def test_sticky_root():
    """/dev/shm is 1777 with sticky-bit semantics: anyone creates, only the
    owner (or root) removes or renames."""
    script = """
        touch /dev/shm/rootfile && chmod 666 /dev/shm/rootfile
        setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '
            touch /dev/shm/mine || exit 10
            rm -f /dev/shm/rootfile 2>/dev/null && exit 11
            mv /dev/shm/rootfile /dev/shm/stolen 2>/dev/null && exit 12
            mv /dev/shm/mine /dev/shm/mine2 || exit 13
            rm /dev/shm/mine2 || exit 14
            exit 0'
        rc=$?; [ $rc -eq 0 ] || exit $rc
        rm /dev/shm/rootfile
    """
    res = segfs_exec("sh", "-c", script)
    assert res.returncode == 0, (res.returncode, res.stderr)


def test_lists_option_renames_lists():
    """-o lists=NAME renames the lists directory, so a segment may be
    called lists."""
    res = h.run([EXEC, "-o", "lists=ShareableLists", "--", "sh", "-c",
                 "ls /dev/shm && echo data > /dev/shm/lists && cat /dev/shm/lists"],
                timeout=60, check=True)
    assert res.stdout.split() == ["ShareableLists", "data"]


# --------------------------------------------------------------------------
# Without root: a user namespace of its own

NOBODY = 65534


def as_nobody(args, timeout=120):
    # From /: the checkout, our working directory, may be where uid 65534
    # cannot go, and multiprocessing's spawn goes back to the parent's.
    return h.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  *[str(a) for a in args]], timeout=timeout, check=False, cwd="/")


@pytest.fixture
def user_dir(clients_dir):
    """A directory uid 65534 can read, with what the tests below run: the
    checkout may lie where that user cannot go."""



    d = Path(tempfile.mkdtemp(prefix="segfs-user-", dir="/tmp"))
    d.chmod(0o755)
    for src in (MP, ipc(clients_dir)):
        shutil.copy(src, d)
    (d / "leaker.py").write_text(LEAKER)
    for f in d.iterdir():
        f.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def user_daemons(user_tools):
    return subprocess.run(["pgrep", "-f", "^%s -f -o mode=1777" % re.escape(user_tools.segfs)],
                          capture_output=True, text=True).stdout.split()


@pytest.mark.deadline(200)
def test_without_root(fuse_for_users, user_tools, user_dir):
    """A normal user's segfs-exec makes a user namespace of its own (its
    uid and gid mapped to themselves) and mounts segfs there, on the cached
    path (passthrough needs CAP_SYS_ADMIN in the initial namespace), and
    says why with -v.  shm_open, sem_open and Python's multiprocessing with
    fork and spawn work; the command runs as the user, without
    capabilities; nothing is left."""
    script = (f"id -u; grep -c ' /dev/shm fuse.segfs ' /proc/self/mounts; "
              f"grep '^CapEff' /proc/self/status; "
              f"{user_dir}/posix_ipc shm /u-shm && {user_dir}/posix_ipc sem /u-sem 4 300 && "
              f"{sys.executable} {user_dir}/{Path(MP).name} fork | tail -1 && "
              f"{sys.executable} {user_dir}/{Path(MP).name} spawn | tail -1")
    res = as_nobody([user_tools.segfs_exec, "-v", "--", "sh", "-c", script], timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.split()
    assert out[:3] == ["65534", "1", "CapEff:"] and int(out[3], 16) == 0, out
    assert out[-2:] == ["ok", "ok"], res.stdout + res.stderr
    # The reason: no CAP_SYS_ADMIN where it counts, or a libfuse 3.14
    # build, which has no passthrough to try.
    assert re.search(r"data path: fallback \(.*(CAP_SYS_ADMIN|libfuse < 3.17)", res.stderr), \
        res.stderr
    assert h.wait_until(lambda: user_daemons(user_tools) == [], 5)


def run_where_users_make_no_user_namespaces(args):
    """Runs args as uid 65534 where user.max_user_namespaces is 0: in a user
    namespace of root's that maps root and 65534 to themselves and sets
    that limit for itself (its own sysctl, which even a root that may not
    change the machine's may change).  Returns (status, stderr)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER = 0x10000000
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(mapped_w)
            if libc.unshare(CLONE_NEWUSER) != 0:
                os._exit(90)
            os.write(ready_w, b"x")
            os.read(mapped_r, 1)
            Path("/proc/sys/user/max_user_namespaces").write_text("0")
            os.dup2(err_w, 2)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.execv(args[0], [str(a) for a in args])
        finally:
            os._exit(91)
    os.close(ready_w)
    os.close(mapped_r)
    os.close(err_w)
    os.read(ready_r, 1)
    for what in ("uid_map", "gid_map"):
        Path(f"/proc/{pid}/{what}").write_text(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
    os.write(mapped_w, b"x")
    err = b""
    while chunk := os.read(err_r, 4096):
        err += chunk
    _, status = os.waitpid(pid, 0)
    for fd in (ready_r, mapped_w, err_r):
        os.close(fd)
    return os.waitstatus_to_exitcode(status), err.decode()


def test_without_user_namespaces_says_so(fuse_for_users, user_tools):
    """Where users may not make user namespaces, one line says what is
    missing and how to get it; exit 1."""
    status, err = run_where_users_make_no_user_namespaces(
        [user_tools.segfs_exec, "--", "true"])
    assert status == 1, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "user namespace" in lines[0] and "sysctl" in lines[0], lines


def test_without_dev_fuse_says_so(user_tools):
    """A user who may not open /dev/fuse is told so, and how to get it;
    exit 1."""
    import stat as st

    mode = st.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o600)
    try:
        res = as_nobody([user_tools.segfs_exec, "--", "true"], timeout=30)
    finally:
        os.chmod("/dev/fuse", mode)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "/dev/fuse" in lines[0] and "0666" in lines[0], lines


def test_sigterm_passed_on_and_cleaned_up(who):
    """SIGTERM to segfs-exec goes to the command; segfs-exec then cleans up
    and reports 128+15; no daemon is left."""
    p = subprocess.Popen(who.argv("-v", *OPTS, "--", "sleep", "60"),
                         stderr=subprocess.PIPE, text=True, cwd="/", env=who.env())
    try:
        assert "segfs: mounted on /dev/shm" in p.stderr.readline()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert h.wait_until(lambda: who.daemons() == [], 5)


def leftover_cgroups():
    """Job cgroups of segfs-exec (root's runs make them) still there."""
    return glob.glob("/sys/fs/cgroup/**/segfs-exec.*", recursive=True)


@pytest.mark.deadline(200)
@pytest.mark.parametrize("sig,times", [(signal.SIGTERM, 50), (signal.SIGINT, 10),
                                       (signal.SIGHUP, 10)], ids=["TERM", "INT", "HUP"])
def test_signal_at_any_moment(who, sig, times):
    """SIGTERM (50 times), SIGINT and SIGHUP (10 times each) sent 0, 1, 5,
    20 and 100 ms after segfs-exec starts (before the mount, during it,
    while the command starts, once it runs): every time segfs-exec ends
    within seconds with 128+signal, and no daemon, command or job cgroup
    is left.  (Sent before segfs-exec has its handler, the signal kills it
    outright, which a shell reports as 128+signal too; it has started
    nothing by then.)  A signal lost on the way hung it."""
    def commands():
        return subprocess.run(["pgrep", "-f", "-x", "sleep 61"], capture_output=True,
                              text=True).stdout.split()

    for delay in (0, 0.001, 0.005, 0.02, 0.1):
        for _ in range(times):
            p = subprocess.Popen(who.argv(*OPTS, "--", "sleep", "61"), stdin=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, cwd="/", env=who.env())
            time.sleep(delay)
            p.send_signal(sig)
            try:
                _, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                pytest.fail(f"{sig!r} {delay * 1000:g} ms after the start: segfs-exec "
                            f"still ran 20 s later; it said: {err!r}")
            assert p.returncode in (128 + sig, -sig), (delay, p.returncode, err)
    assert h.wait_until(lambda: who.daemons() == [] and commands() == []
                        and leftover_cgroups() == [], 5), \
        (who.daemons(), commands(), leftover_cgroups())


def test_killed_segfs_exec_takes_the_job_with_it(who):
    """SIGKILL to segfs-exec: its reaper kills the job (which has no
    /dev/shm any more) and removes its cgroup, and the daemon unmounts;
    nothing is left running."""
    p = subprocess.Popen(who.argv(*OPTS, "--", "sh", "-c",
                                  "(setsid sleep 62 < /dev/null > /dev/null 2>&1 &); "
                                  "echo started; sleep 63"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd="/", env=who.env())
    try:
        assert p.stdout.readline() == "started\n"
        p.kill()
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

    def sleeps():
        return subprocess.run(["pgrep", "-f", "-x", "sleep 6[23]"], capture_output=True,
                              text=True).stdout.split()

    assert h.wait_until(lambda: sleeps() == [] and who.daemons() == []
                        and leftover_cgroups() == [], 10), \
        (sleeps(), who.daemons(), leftover_cgroups())


def test_signal_reaches_the_running_command(who):
    """Once the command runs, SIGTERM, SIGINT and SIGHUP sent to segfs-exec
    reach it (it reports each), and segfs-exec ends with its status."""
    script = ("trap 'echo TERM; exit 3' TERM; trap 'echo INT; exit 4' INT; "
              "trap 'echo HUP; exit 5' HUP; echo ready; while :; do sleep 0.05; done")
    for sig, name, code in ((signal.SIGTERM, "TERM", 3), (signal.SIGINT, "INT", 4),
                            (signal.SIGHUP, "HUP", 5)):
        p = subprocess.Popen(who.argv(*OPTS, "--", "sh", "-c", script), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd="/", env=who.env())
        try:
            assert p.stdout.readline() == "ready\n"
            p.send_signal(sig)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert (out, p.returncode) == (name + "\n", code), err
    assert who.daemons() == []


def test_ctrl_c_reaches_the_command_once(who):
    """Ctrl-C on segfs-exec's terminal reaches the command through the
    process group they share, and only that way: segfs-exec and its
    reaper, in that group too, neither die of it nor pass it on a second
    time.  (A second SIGINT right behind the first often merges with it
    while pending, so the count catches a doubling only when it shows.)"""
    import pty

    script = "trap 'echo INT' INT; echo ready; sleep 2; sleep 0.5; echo end"
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir("/")
            argv = who.argv(*OPTS, "--", "sh", "-c", script)
            os.execvpe(argv[0], argv, who.env() or os.environ)
        finally:
            os._exit(127)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in out and time.monotonic() < deadline:
            out += os.read(fd, 4096)
        os.write(fd, b"\x03")
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:   # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    text = out.decode(errors="replace").replace("\r", "")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert text.count("INT\n") == 1 and "end\n" in text, text
    assert who.daemons() == []


# --------------------------------------------------------------------------
# The whole process tree, and what it leaves

LEAK_LINE = re.compile(r"^segfs-exec: released (\d+) segments? \(([^)]+)\) left in /dev/shm$",
                       re.M)


def test_child_outlives_the_command(who):
    """A child that outlives the command by a second keeps a working
    /dev/shm until it exits; segfs-exec waits for it, and the exit status
    stays the command's."""
    t0 = time.monotonic()
    res = who("sh", "-c", "(sleep 1; echo late > /dev/shm/late && cat /dev/shm/late"
              " && rm /dev/shm/late) & exit 5")
    assert res.returncode == 5, res.stderr
    assert res.stdout.split() == ["late"]
    assert "not connected" not in res.stderr and LEAK_LINE.search(res.stderr) is None
    assert time.monotonic() - t0 >= 1
    assert who.daemons() == []


def test_grace_then_sigterm_then_sigkill(who):
    """Once the command has exited, what it left gets --grace seconds, then
    SIGTERM (which one child takes to finish its work), then --grace more,
    then SIGKILL (for one that ignores SIGTERM); then the mount goes."""
    script = ("(trap 'echo term > /dev/shm/termed; exit 0' TERM; while :; do sleep 0.1; done) & "
              "(trap '' TERM; exec sleep 60) & "
              "sleep 0.3; exit 0")
    t0 = time.monotonic()
    res = who.run("--grace=1", *OPTS, "--", "sh", "-c", script, timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert 2 <= took < 20, took
    # The child that took SIGTERM wrote before the mount went.
    m = LEAK_LINE.search(res.stderr)
    assert m and m.group(1) == "1", res.stderr
    assert who.daemons() == []


def test_grace_is_checked():
    res = h.run([EXEC, "--grace=soon", "--", "true"], timeout=30, check=False)
    assert res.returncode == 1 and "--grace" in res.stderr


def test_sigterm_during_grace_ends_it():
    """SIGTERM to segfs-exec while the command's leftovers have their grace
    ends the grace at once: they get SIGTERM."""
    p = subprocess.Popen([EXEC, "--grace=60"] + OPTS + ["--", "sh", "-c",
                         "(exec sleep 60) & echo started; exit 0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "started"
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        assert time.monotonic() - t0 < 20
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert h.wait_until(lambda: daemons() == [], 5)


LEAKER = r"""
import os, sys
from multiprocessing import shared_memory, resource_tracker
keep = []
for i in range(3):
    sm = shared_memory.SharedMemory(create=True, size=1 << 20)
    sm.buf[0] = 1
    if sys.argv[1] == "untracked":
        # The common way out of the tracker's unlinking: it then leaks.
        resource_tracker.unregister(sm._name, "shared_memory")
    keep.append(sm)
print("made", " ".join(sm.name for sm in keep), flush=True)
if sys.argv[2] == "_exit":
    os._exit(0)
"""


@pytest.mark.parametrize("how", ["exit", "_exit"])
@pytest.mark.parametrize("tracked", ["tracked", "untracked"])
def test_python_leaks(who, user_dir, tracked, how):
    """A Python program that leaves segments behind, exiting normally or by
    os._exit: its resource tracker outlives it and finds /dev/shm still
    there (no ENOTCONN warning); what the tracker does not unlink, the leak
    line reports; nothing is left after."""
    base = h.meminfo("Shmem")
    res = who(sys.executable, user_dir / "leaker.py", tracked, how, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Transport endpoint" not in res.stderr and "Errno 107" not in res.stderr, res.stderr
    m = LEAK_LINE.search(res.stderr)
    if tracked == "untracked":
        assert m and m.group(1) == "3" and m.group(2) == "3 MiB", res.stderr
    else:
        # The tracker unlinked them (and said so, as Python does).
        assert m is None, res.stderr
        assert "leaked shared_memory" in res.stderr, res.stderr
    assert h.wait_until(lambda: h.meminfo("Shmem") - base < 16 * MiB, 5)
    assert who.daemons() == []


def test_quiet_and_verbose(who):
    """-q says nothing of what was left; -v names each segment, with its
    size and creator; a command that leaves nothing gets no line."""
    leave = "echo x > /dev/shm/a; head -c 5000 /dev/zero > /dev/shm/b; mkdir /dev/shm/d; " \
            "echo y > /dev/shm/d/c"
    res = who.run("-q", *OPTS, "--", "sh", "-c", leave, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = who("sh", "-c", leave, timeout=60)
    assert LEAK_LINE.search(res.stderr).groups() == ("3", "4.9 KiB"), res.stderr
    assert len(res.stderr.splitlines()) == 1
    res = who.run("-v", *OPTS, "--", "sh", "-c", leave, timeout=60)
    lines = [l for l in res.stderr.splitlines() if l.startswith("segfs-exec:   ")]
    names = sorted(l.split()[1] for l in lines)
    assert names == ["/dev/shm/a", "/dev/shm/b", "/dev/shm/d/c"], res.stderr
    assert all(re.search(r" made by pid \d+ at \d\d:\d\d:\d\d$", l) for l in lines), lines
    res = who("sh", "-c", "echo x > /dev/shm/a; rm /dev/shm/a", timeout=60)
    assert res.stderr == ""


def test_pid_ns_option(who):
    """--pid-ns: the job runs in a PID namespace of its own, with a /proc
    that numbers processes as it does (so /proc/$$ is the shell itself)."""
    res = who.run("--pid-ns", *OPTS, "--", "sh", "-c", "echo $$; cat /proc/$$/comm")
    assert res.returncode == 0, res.stderr
    pid, comm = res.stdout.split()
    assert int(pid) <= 3 and comm == "sh"
    assert who.daemons() == []


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def test_job_keeps_the_machines_pids(who):
    """By default the command's pid is the one the machine sees: its
    /proc/PID is the shell, and its parent (the reaper) is segfs-exec's
    child.  -v says how the job's processes are held: with a cgroup of the
    job's own as root, with the subreaper alone where none can be made."""
    p = subprocess.Popen(who.argv("-v", *OPTS, "--", "sh", "-c", "echo $$; read x"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd="/", env=who.env())
    try:
        pid = int(p.stdout.readline())
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "sh"
        assert parent_of(parent_of(pid)) == p.pid
        with open(f"/proc/{pid}/cgroup") as f:
            in_group = f"/segfs-exec.{p.pid}\n" in f.read()
        _, err = p.communicate("\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    held = re.search(r"^segfs-exec: the job's processes: (.*)$", err, re.M)
    assert held, err
    group = re.fullmatch(r"child subreaper, cgroup (/\S+/segfs-exec\.%d)" % p.pid,
                         held.group(1))
    # A user has no group here (no delegated subtree); root has one
    # wherever the cgroup v2 hierarchy is mounted writable.
    if who.user or not cgroup2_writable():
        assert held.group(1).startswith("child subreaper, no cgroup (cannot make one: "), err
        assert not in_group
    else:
        assert group and in_group, err
        assert not Path(group.group(1)).exists()
    assert who.daemons() == []


def cgroup2_writable():
    """Whether root may make a group below its own in the cgroup v2
    hierarchy (mounted, and not read-only as in most containers)."""
    with open("/proc/self/mountinfo") as f:
        points = [l.split()[4] for l in f
                  if " - cgroup2 " in l and l.split()[3] == "/"]
    with open("/proc/self/cgroup") as f:
        own = [l[3:].strip() for l in f if l.startswith("0::")]
    if not points or not own:
        return False
    probe = Path(points[0] + own[0].rstrip("/")) / f"segfs-test-probe.{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


# Each job: a file named after its pid in /tmp, a segment in /dev/shm, and
# a daemonized grandchild (double fork, setsid) that outlives the job by a
# second, then reads the job's segment; the job exits at once.
SIDE_BY_SIDE_JOB = r"""
set -e
f=$1.$$
echo $$ > "$f"; [ "$(cat "$f")" = $$ ]
echo "job $$" > /dev/shm/seg.$$
(setsid sh -c 'echo $$ > "$1.gc"; sleep 1; cat /dev/shm/seg.$2 > "$1.gcsaw"' gc "$f" $$ \
    < /dev/null > /dev/null 2>&1 &) &
wait
while [ ! -s "$f.gc" ]; do sleep 0.01; done
echo "pid $$ gc $(cat "$f.gc") shm $(ls /dev/shm | tr '\n' ' ')"
"""


@pytest.mark.deadline(120)
def test_five_jobs_side_by_side(who):
    """Five segfs-exec jobs at once, each writing and checking a file named
    after its pid and a segment of its own, and leaving a daemonized
    grandchild behind: each job sees only its own segment, its grandchild
    ran to its end with /dev/shm in place (segfs-exec waited for it) and is
    gone when the job returns, and no two jobs share a pid."""
    # In /tmp itself: uid 65534 may not reach pytest's own temporary folders.
    d = Path(tempfile.mkdtemp(prefix="segfs-jobs-", dir="/tmp"))
    d.chmod(0o777)
    jobs = [subprocess.Popen(who.argv(*OPTS, "--", "sh", "-c", SIDE_BY_SIDE_JOB, "job",
                                      d / f"j{i}"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd="/", env=who.env())
            for i in range(5)]
    pids = []
    try:
        for i, p in enumerate(jobs):
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            m = re.fullmatch(r"pid (\d+) gc (\d+) shm lists seg\.(\d+) \n", out)
            assert m and m.group(1) == m.group(3), out
            pid, gc = int(m.group(1)), int(m.group(2))
            # The grandchild read the job's segment a second after the job exited.
            assert (d / f"j{i}.{pid}.gcsaw").read_text() == f"job {pid}\n"
            assert not Path(f"/proc/{gc}").exists(), gc
            pids.append(pid)
    finally:
        for p in jobs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)
    assert len(set(pids)) == 5, pids
    assert who.daemons() == []


def test_one_jobs_crash_leaves_the_others_alone(who):
    """Three jobs at once, each keeping a segment and a child; the middle
    one's segfs-exec is killed with SIGKILL.  Its processes go, and the two
    others never notice: each finishes, reads back its own segment, and
    returns 0."""
    script = ("echo mine-$$ > /dev/shm/seg; (sleep 30 &); echo ready; "
              "read x; [ \"$(cat /dev/shm/seg)\" = mine-$$ ] && ls /dev/shm")
    jobs = [subprocess.Popen(who.argv(*OPTS, "--", "sh", "-c", script),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd="/", env=who.env())
            for _ in range(3)]
    try:
        for p in jobs:
            assert p.stdout.readline() == "ready\n"
        jobs[1].kill()
        jobs[1].wait(timeout=10)
        time.sleep(0.5)
        for p in (jobs[0], jobs[2]):
            out, err = p.communicate("go\n", timeout=60)
            assert p.returncode == 0 and out.split() == ["lists", "seg"], (out, err)
    finally:
        for p in jobs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert h.wait_until(lambda: who.daemons() == [] and leftover_cgroups() == [], 10), \
        (who.daemons(), leftover_cgroups())


FORK_BOMB = r"""
import os, resource, signal, sys, time
# A limit of what this user runs now, plus 100: every fork beyond fails.
uid, n = os.getuid(), 0
for p in os.listdir("/proc"):
    try:
        if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid:
            n += len(os.listdir(f"/proc/{p}/task"))
    except OSError:
        pass
resource.setrlimit(resource.RLIMIT_NPROC, (n + 100, n + 100))
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:   # segfs-fork-bomb
        try:
            os.fork()
        except OSError:
            time.sleep(0.001)
time.sleep(0.5)
print("forking", flush=True)
"""


def bomb_processes():
    out = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and b"segfs-fork-bomb" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.append(int(p))
        except OSError:
            pass
    return out


@pytest.mark.deadline(120)
def test_fork_bomb_is_killed(who):
    """A fork bomb (as uid 65534, bounded by RLIMIT_NPROC, ignoring
    SIGTERM) that is still forking when the grace period ends is killed
    completely: segfs-exec returns the command's status, and no process
    of the bomb is left."""
    cmd = [sys.executable, "-c", FORK_BOMB]
    if not who.user:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    t0 = time.monotonic()
    res = who.run("--grace=0.5", *OPTS, "--", *cmd, timeout=90)
    assert res.returncode == 0 and res.stdout == "forking\n", res.stderr
    assert time.monotonic() - t0 < 60
    assert bomb_processes() == []
    assert who.daemons() == []


@pytest.fixture(scope="module")
def mpi_job():
    """tests/clients/mpi_job built with Open MPI's mpicc, where uid 65534
    can run it; skips where Open MPI is missing (scripts/setup installs
    it from Debian)."""
    mpicc = shutil.which("mpicc")
    if mpicc is None or shutil.which("mpirun") is None:
        pytest.skip("Open MPI is not installed (scripts/setup installs openmpi-bin "
                    "and libopenmpi-dev)")
    d = Path(tempfile.mkdtemp(prefix="segfs-mpi-", dir="/tmp"))
    d.chmod(0o755)
    try:
        h.run([mpicc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", d / "mpi_job",
               h.REPO / "tests" / "clients" / "mpi_job.c"], timeout=120)
        yield d / "mpi_job"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.deadline(240)
def test_three_open_mpi_jobs_side_by_side(who, mpi_job):
    """Three `segfs-exec -- mpirun -np 2` jobs at once (Open MPI's on-node
    transport, vader, keeps its files in /dev/shm; its session directory
    and job id come from mpirun's pid): each passes its ping-pong and its
    MPI_Win_allocate_shared check, on pids of its own.  Under a PID
    namespace per job, every mpirun was pid 2 and they collided."""
    args = ["mpirun", "-np", "2", "--bind-to", "none", "--mca", "btl", "self,vader",
            str(mpi_job)]
    if not who.user:
        args.insert(1, "--allow-run-as-root")
    jobs = [subprocess.Popen(who.argv(*OPTS, "--", *args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd="/", env=who.env())
            for _ in range(3)]
    pids = []
    try:
        for p in jobs:
            out, err = p.communicate(timeout=200)
            assert p.returncode == 0, out + err
            lines = sorted(out.splitlines())
            assert [re.sub(r"pid \d+", "pid N", l) for l in lines] == \
                ["rank 0 pid N ok", "rank 1 pid N ok"], out + err
            pids += [int(l.split()[3]) for l in lines]
    finally:
        for p in jobs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(set(pids)) == 6, pids
    assert who.daemons() == []


def _postgres_bin():
    """The newest PostgreSQL's bin directory (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


PG_PARALLEL = ("set parallel_setup_cost = 0; set parallel_tuple_cost = 0; "
               "set min_parallel_table_scan_size = 0; set work_mem = '4MB'; ")


def _postgres(script, opts):
    """Runs script (sh, as the postgres user, under segfs-exec, with the
    options given) around a fresh PostgreSQL cluster in a fresh directory:
    $PG is its bin directory, `q SQL` runs SQL (psql -A -t), and the server
    is started before and stopped by pg_ctl after, all inside.  Returns
    segfs-exec's result and the server's log; skips without PostgreSQL."""
    pg = _postgres_bin()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql)")
    try:
        import pwd
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")


    d = tempfile.mkdtemp(prefix="segfs-pg.")
    try:
        shutil.chown(d, "postgres")
        os.chmod(d, 0o755)
        # cd first: the checkout this runs from may be closed to postgres.
        full = f"""set -e
cd {d}
PG={pg}
q() {{ $PG/psql -h {d} -X -q -A -t -d postgres -v ON_ERROR_STOP=1 -c "$1"; }}
$PG/initdb -D {d}/db -A trust >/dev/null
printf "listen_addresses = ''\\nunix_socket_directories = '{d}'\\n" >> {d}/db/postgresql.conf
printf "dynamic_shared_memory_type = posix\\nmax_parallel_workers_per_gather = 4\\n" >> {d}/db/postgresql.conf
$PG/pg_ctl -D {d}/db -l {d}/log -w start >/dev/null
echo "segments: $(ls /dev/shm | grep -c '^PostgreSQL[.]')"
q "create table t as select i, md5(i::text) s from generate_series(1, 300000) i; analyze t"
{script}
$PG/pg_ctl -D {d}/db -w stop -m fast >/dev/null
"""
        res = h.run([EXEC] + opts + ["--", "su", "postgres", "-s", "/bin/sh", "-c", full],
                    timeout=240, check=False)
        log = Path(d, "log").read_text(errors="replace") if Path(d, "log").exists() else ""
        return res, log
    finally:
        shutil.rmtree(d, ignore_errors=True)


PG_PARALLEL = ("set parallel_setup_cost = 0; set parallel_tuple_cost = 0; "
               "set min_parallel_table_scan_size = 0; set work_mem = '4MB'; ")


def test_postgresql_parallel_queries():
    """PostgreSQL, unmodified, keeps the dynamic shared memory of its
    parallel queries in /dev/shm (dynamic_shared_memory_type=posix:
    shm_open, then ftruncate and posix_fallocate as a segment grows).  A
    parallel scan and a parallel hash join, 4 workers each, give the right
    answers, and the server, started and stopped inside, leaves nothing."""
    res, log = _postgres(f"""
q "{PG_PARALLEL} explain (analyze, costs off) select count(*), sum(i) from t" | grep 'Workers Launched'
q "{PG_PARALLEL} select count(*), sum(i) from t"
q "{PG_PARALLEL} explain (analyze, costs off) select count(*) from t a join t b using (i)" | grep -E 'Workers Launched|Parallel Hash Join'
q "{PG_PARALLEL} select count(*), sum(a.i), count(distinct b.s) from t a join t b using (i)"
""", OPTS)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{log}"
    out = res.stdout.splitlines()
    assert int(out[0].split()[1]) >= 1, out      # its control segment
    assert out[1].strip() == "Workers Launched: 4", out
    assert out[2] == "300000|45000150000", out
    assert "Parallel Hash Join" in res.stdout and res.stdout.count("Workers Launched: 4") == 2, out
    assert out[-1] == "300000|45000150000|300000", out
    assert "released" not in res.stderr, res.stderr
    assert "ERROR" not in log and "FATAL" not in log, log


def test_postgresql_full_shm_is_an_error_not_a_crash():
    """With a /dev/shm too small for a parallel hash join's segments, it
    fails with PostgreSQL's own ENOSPC error (its posix_fallocate gets it)
    and the server runs on: the next query answers.  On a full tmpfs the
    same happens; what must never happen is a SIGBUS that takes the server
    down."""
    opts = ["-o", ",".join(h.SEGFS_OPTS + ["size=2m"])]
    res, log = _postgres(f"""
q "{PG_PARALLEL} select count(*) from t a join t b using (i)" || echo "failed: $?"
q "set max_parallel_workers_per_gather = 0; select count(*), sum(i) from t"
""", opts)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{log}"
    assert res.stdout.splitlines()[-2:] == ["failed: 1", "300000|45000150000"], res.stdout
    assert re.search(r"could not resize shared memory segment .*: No space left on device",
                     res.stderr), res.stderr
    assert "terminated by signal" not in log, log


# --------------------------------------------------------------------------
# Containers: contrib/docker

DOCKER = h.REPO / "contrib" / "docker"


def test_container_example():
    """The example program of contrib/docker/Dockerfile, under its
    entrypoint (segfs-exec -o size=256m): it shares what fits with two
    workers, then gets ENOSPC for more; it cleans up, so no leak line."""
    ep = dockerfile_entrypoint()
    assert ep[0] == "segfs-exec" and ep[-1] == "--", ep
    res = h.run([EXEC, *ep[1:-1]] + OPTS + ["--", sys.executable, DOCKER / "app.py"],
                timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert re.match(r"^[1-8] blocks of 32 MiB shared with 2 workers", lines[0]), lines
    assert lines[1].endswith("No space left on device"), lines
    assert LEAK_LINE.search(res.stderr) is None, res.stderr
    assert daemons() == []


def dockerfile_entrypoint():
    import json
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            return json.loads(line[len("ENTRYPOINT "):])
    raise AssertionError("no ENTRYPOINT")


def test_dockerfile_runs_only_what_the_build_runs():
    """Every command of the Dockerfile is one scripts/build and the tests
    run: its build stage runs scripts/build; its runtime stage installs
    with apt-get only packages scripts/setup installs, and copies what the
    build makes."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    setup = (h.REPO / "scripts" / "setup").read_text()
    pkgs = set(re.search(r"pkgs=\(([^)]*)\)", setup).group(1).split())
    runs = [l[4:].strip() for l in text.splitlines() if l.startswith("RUN ")]
    assert runs[0] == "./scripts/build", runs
    for cmd in runs[1:]:
        for part in cmd.split("&&"):
            words = part.split()
            if "apt-get" in words and "install" in words:
                wanted = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
                assert wanted and set(wanted) <= pkgs, (wanted, pkgs)
            else:
                assert words[:2] in (["apt-get", "update"], ["rm", "-rf"]), part
    for line in text.splitlines():
        if line.startswith("COPY --from=build"):
            for src in line.split()[2:-1]:
                assert src.startswith("/src/build/") and \
                    (Path(h.SEGFS).parent / src[len("/src/build/"):]).exists(), src
        elif line.startswith("COPY ") and not line.startswith("COPY . "):
            assert (h.REPO / line.split()[1]).exists(), line
