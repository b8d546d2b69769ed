"""Helpers for the segfs mount tests: start and stop daemons, find and abort
FUSE connections, run subprocesses with timeouts, drive the C clients.

Everything here is written so that a broken daemon makes a test fail, never
hang: every wait has a timeout, and a stuck FUSE connection can always be
aborted through fusectl (every blocked syscall then returns ENOTCONN).
"""

import glob
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Absolute: tests match it against daemons' command lines and link to it.
SEGFS = os.path.abspath(os.environ.get("SEGFS") or str(REPO / "build" / "segfs"))
# segfs-exec runs the segfs beside it.
SEGFS_EXEC = str(Path(SEGFS).with_name("segfs-exec"))
SEGFS_OPTS = [o for o in os.environ.get("SEGFS_OPTS", "").split(",") if o]
REFERENCE = os.environ.get("SEGFS_REFERENCE", "")
IS_TMPFS = REFERENCE == "tmpfs"
MODE = os.environ.get("SEGFS_MODE") or (
    "fallback" if "nopassthrough" in SEGFS_OPTS else "passthrough")
# The transport the startup line must report: io-uring iff asked for.
TRANSPORT = os.environ.get("SEGFS_TRANSPORT") or (
    "io-uring" if "io_uring" in SEGFS_OPTS else "/dev/fuse")
# What holds the segments' pages: the daemon's private tmpfs (root can make
# one) unless -o memfd.
BACKING = os.environ.get("SEGFS_BACKING") or (
    "memfd" if "memfd" in SEGFS_OPTS else "tmpfs")
CLIENTS_ENV = os.environ.get("SEGFS_CLIENTS", "")

_BUNDLED_FUSERMOUNT = REPO / "build/deps/libfuse/bin/fusermount3"
FUSERMOUNT = (os.environ.get("SEGFS_FUSERMOUNT")
              or (str(_BUNDLED_FUSERMOUNT) if _BUNDLED_FUSERMOUNT.exists()
                  else shutil.which("fusermount3") or "fusermount3"))

CONN_DIR = Path("/sys/fs/fuse/connections")
MiB = 1 << 20

# Seconds allowed for a daemon to mount, and to exit after an unmount request.
START_TIMEOUT = 10
EXIT_TIMEOUT = 10

STARTUP_RE = re.compile(
    r"^segfs: mounted on (?P<mnt>.+), "
    r"transport: (?P<transport>io-uring|/dev/fuse)(?: \((?P<treason>[^()]+)\))?, "
    r"backing: (?P<backing>tmpfs|memfd)(?: \((?P<breason>[^()]+)\))?, "
    r"data path: (?P<mode>passthrough|fallback)(?: \((?P<reason>.+)\))?$")


def shmem_thp():
    """Whether a tmpfs can have transparent huge pages here: the kernel
    has them and shmem_enabled does not deny them."""
    p = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
    return p.exists() and "[deny]" not in p.read_text()


class HarnessError(Exception):
    """The harness could not set up or tear down a mount cleanly."""


# --------------------------------------------------------------------------
# Subprocesses

def run(cmd, timeout=30, check=True, **kw):
    """subprocess.run with a timeout, text output captured; raises
    AssertionError with the output on a non-zero exit when check is set."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    res = subprocess.run([str(c) for c in cmd], timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {res.returncode}\n"
            f"stdout: {res.stdout}\nstderr: {res.stderr}")
    return res


_libfuse_built = None


def libfuse_built():
    """The libfuse version segfs was built against, as (major, minor):
    what it can do beyond 3.14 (O_TMPFILE from 3.15, statx from 3.18).
    On the tmpfs reference, or without a binary, anything."""
    global _libfuse_built
    if _libfuse_built is None:
        _libfuse_built = (99, 99)
        if not IS_TMPFS and os.access(SEGFS, os.X_OK):
            out = run([SEGFS, "--version"], check=False).stdout
            m = re.search(r"built against (\d+)\.(\d+)", out)
            if m:
                _libfuse_built = (int(m.group(1)), int(m.group(2)))
    return _libfuse_built


# --------------------------------------------------------------------------
# Mount table

def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts():
    """Entries of /proc/self/mountinfo as dicts: mnt, fstype, source, dev
    (major, minor)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            major, minor = fields[2].split(":")
            out.append({"mnt": _unescape(fields[4]), "fstype": rfields[0],
                        "source": _unescape(rfields[1]),
                        "dev": (int(major), int(minor))})
    return out


def find_mount(path):
    """The topmost mount entry at path, or None.  Works for dead FUSE mounts,
    which fail stat() and `mountpoint -q` with ENOTCONN."""
    path = str(path)
    found = None
    for m in mounts():
        if m["mnt"] == path:
            found = m
    return found


def is_mounted(path):
    return find_mount(path) is not None


def mounts_under(prefix):
    prefix = str(prefix).rstrip("/") + "/"
    return [m for m in mounts() if (m["mnt"] + "/").startswith(prefix)]


# Whether this process mounted fusectl (then the session unmounts it).
fusectl_mounted_here = False


def ensure_fusectl():
    """Mount fusectl on /sys/fs/fuse/connections if it is not mounted yet."""
    global fusectl_mounted_here
    if any(m["fstype"] == "fusectl" for m in mounts()):
        return
    res = run(["mount", "-t", "fusectl", "fusectl", CONN_DIR], timeout=10,
              check=False)
    fusectl_mounted_here = res.returncode == 0


def abort_connection(path):
    """Abort the FUSE connection of the mount at path.  Every syscall blocked
    on it returns ENOTCONN, and the daemon's next read of /dev/fuse fails.
    Returns True when a connection was aborted."""
    m = find_mount(path)
    if m is None or not m["fstype"].startswith("fuse"):
        return False
    ensure_fusectl()
    abort = CONN_DIR / str(m["dev"][1]) / "abort"
    try:
        abort.write_text("1")
        return True
    except OSError:
        return False


def lazy_umount(path):
    """umount -l until nothing is mounted at path (stacked mounts too)."""
    for _ in range(8):
        if not is_mounted(path):
            return
        run(["umount", "-l", path], timeout=10, check=False)


def wait_until(pred, timeout, interval=0.02):
    """Poll pred() until it is true or timeout seconds have passed; returns
    its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def meminfo(field):
    """A /proc/meminfo field in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name == field:
                return int(rest.split()[0]) * 1024
    raise KeyError(field)


# --------------------------------------------------------------------------
# Mounts

def backing_files(pid):
    """The /proc/PID/fd/N paths of a daemon's segment backing files, each
    file once: the files of its private tmpfs (whose root it holds open, a
    directory that /proc shows as "/" on a device no mount has), or its
    memfds.  pid is the supervisor's: the files are its server's and its
    own (the server hands each to it, at its own pace, to keep across a
    restart)."""
    seen = {}
    for p in [pid] + servers_under(pid, depth=1):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{p}/fd/{fd}"
            try:
                seen[path] = (os.readlink(path), os.stat(path))
            except OSError:
                continue
    root_dev = os.stat("/").st_dev
    stores = {st.st_dev for link, st in seen.values()
              if link == "/" and stat.S_ISDIR(st.st_mode) and st.st_dev != root_dev}
    files = {}
    for path, (link, st) in seen.items():
        if stat.S_ISREG(st.st_mode) and (st.st_dev in stores or link.startswith("/memfd:")):
            files.setdefault((st.st_dev, st.st_ino), path)
    return list(files.values())


def backing_of(pid, size):
    """The /proc path of the daemon's one backing file of `size` bytes (a
    size the test chose to be unique), or None."""
    found = [p for p in backing_files(pid) if os.stat(p).st_size == size]
    assert len(found) <= 1, f"{len(found)} backing files of {size} bytes"
    return found[0] if found else None


def kill_group(proc):
    """SIGKILL to the process group of proc (started with
    start_new_session: the group's id is its pid) and to proc, which is
    then reaped; never fails.  The group is killed even when proc has
    been reaped already, for what it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def proc_stat(pid):
    """(comm, state, ppid, starttime) of a process from /proc/PID/stat, or
    None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    comm = head.partition("(")[2]
    fields = rest.split()
    # fields[0] is field 3 (state); starttime is field 22.
    return comm, fields[0], int(fields[1]), int(fields[19])


def children_of(pid):
    """Pids of pid's live children, scanning /proc (this kernel may lack
    /proc/PID/task/TID/children)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(name)
            if st is not None and st[2] == pid and st[1] != "Z":
                out.append(int(name))
    return out


def descendants(pid, depth=8):
    """Pids of pid's live descendants, at most depth generations down,
    parents before their children."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(name)
            if st is not None and st[1] != "Z":
                kids.setdefault(st[2], []).append(int(name))
    out, level = [], [pid]
    for _ in range(depth):
        nxt = []
        for p in level:
            nxt += kids.get(p, [])
        if not nxt:
            break
        out += nxt
        level = nxt
    return out


def servers_under(pid, depth=8):
    """Live processes named segfs-server among pid's descendants (at most
    depth generations down), oldest first."""
    found = []
    for c in descendants(pid, depth):
        st = proc_stat(c)
        if st is not None and st[0] == "segfs-server":
            found.append((st[3], c))
    return [p for _, p in sorted(found)]


def group_alive(pgid):
    """Pids of the processes left in process group pgid (a daemon's, whose
    group is its pid: start_new_session) that have not finished exiting.
    A zombie has, unless some thread of it still runs: a thread group's
    leader shows as a zombie while its other threads exit, and the
    process's descriptors (a /dev/fuse one among them) close only with
    the last thread."""
    states = {}
    for key, st in group_threads(pgid).items():
        states.setdefault(int(key.split("/")[0]), []).append(st)
    return [pid for pid, sts in states.items() if any(st not in ("Z", "X") for st in sts)]


def group_threads(pgid):
    """{"pid/tid comm": state} for every thread of process group pgid, as
    /proc shows them now (R, S, D, T, Z ...)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            if int(fields[2]) != pgid:
                continue
            for tid in os.listdir(f"/proc/{name}/task"):
                with open(f"/proc/{name}/task/{tid}/stat") as f:
                    text = f.read()
                comm = text[text.index("(") + 1:text.rindex(")")]
                out[f"{name}/{tid} {comm}"] = text.rpartition(")")[2].split()[0]
        except (OSError, IndexError, ValueError):
            continue
    return out


def stop_group(pgid, timeout=5.0):
    """SIGSTOP to process group pgid, then wait until every thread of it
    has stopped: kill() returns once the signal is queued, and a thread
    stops only when it next runs.  Returns the threads' states."""
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while True:
        states = group_threads(pgid)
        if all(st in ("T", "t", "Z", "X") for st in states.values()) \
           or time.monotonic() > deadline:
            return states
        time.sleep(0.005)


def answers(path, timeout):
    """Whether a statfs of path succeeds within timeout seconds.  It runs
    in a thread: on a mount whose server is gone it blocks."""
    ok = threading.Event()

    def ask():
        try:
            os.statvfs(path)
            ok.set()
        except OSError:
            pass

    threading.Thread(target=ask, daemon=True, name="segfs-statfs").start()
    return ok.wait(timeout)


def make_tempdir(base, prefix):
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    # Other uids (the permission tests) must be able to walk into the mount.
    d.chmod(0o755)
    return d


class Daemon:
    """One segfs daemon run in the foreground (-f) on its own mount point,
    its stderr going to a log file."""

    def __init__(self, mnt, opts=(), log=None, args=(), nofile=None, env=None):
        self.mnt = Path(mnt)
        self.opts = list(opts)
        self.args = list(args)      # words before the mount point
        self.nofile = nofile        # the daemon's RLIMIT_NOFILE, if set
        self.env = dict(env or {})  # extra environment (SEGFS_CRASH, ...)
        self.log = Path(log) if log else self.mnt.with_name(
            self.mnt.name + ".log")
        self.proc = None
        self.startup_line = None
        self.aborted = False

    # -- starting ----------------------------------------------------------
    def command(self):
        cmd = [SEGFS, "-f"] + self.args
        if self.opts:
            cmd += ["-o", ",".join(self.opts)]
        return cmd + [str(self.mnt)]

    def start(self, timeout=START_TIMEOUT):
        """Start the daemon and wait until it is mounted and has printed its
        startup line.  Raises HarnessError (after cleaning up) otherwise."""
        if not os.access(SEGFS, os.X_OK):
            raise HarnessError(f"no segfs binary at {SEGFS} (set SEGFS)")
        logf = open(self.log, "wb")
        try:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                stderr=logf, start_new_session=True,
                env=dict(os.environ, **self.env) if self.env else None,
                preexec_fn=self._limit if (self.nofile or self.env) else None)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = find_mount(self.mnt)
            line = self._startup_line()
            if m is not None and m["fstype"].startswith("fuse") and line:
                self.startup_line = line
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        status = self.proc.poll()
        self.kill_and_clean()
        raise HarnessError(
            f"segfs did not mount {self.mnt} within {timeout}s "
            f"(exit status {status}); stderr:\n{self.stderr()}")

    def _limit(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (self.nofile, self.nofile))
        if "SEGFS_CRASH" in self.env:
            # The server aborts on purpose: no core file in the cwd.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def _startup_line(self):
        for line in self.stderr().splitlines():
            if STARTUP_RE.match(line):
                return line
        return None

    # -- state ------------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- the server (build/segfs is the supervisor; segfs-server its child) -
    def server_pids(self):
        """Live (not zombie) children of the supervisor whose comm is
        segfs-server, oldest first.  Usually one; during an upgrade the
        new server runs beside the old one for a moment."""
        if self.proc is None:
            return []
        return servers_under(self.proc.pid, depth=1)

    def server_pid(self):
        """The server's pid, or None when there is none.  While two run
        (an upgrade being checked), the older: the one serving."""
        pids = self.server_pids()
        return pids[0] if pids else None

    def kill_server(self, sig=signal.SIGKILL):
        """Send sig to the server; returns its pid (None: no server)."""
        pid = self.server_pid()
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pid

    def wait_server_change(self, old_pid, timeout=START_TIMEOUT):
        """Wait until a server other than old_pid runs, alone, and the
        mount answers a statfs (which the kernel always sends to the
        server: no cache answers it).  Returns the new server's pid, or
        None on timeout."""
        deadline = time.monotonic() + timeout

        def changed():
            pids = self.server_pids()
            return pids[0] if len(pids) == 1 and pids[0] != old_pid else None

        new = wait_until(changed, timeout)
        if new is None:
            return None
        if not answers(self.mnt, max(0.1, deadline - time.monotonic())):
            return None
        return new

    def wait(self, timeout=EXIT_TIMEOUT):
        """The supervisor's exit status (negative: killed by that signal),
        once its server has gone too, or None on timeout.  The server dies
        with the supervisor (PR_SET_PDEATHSIG), a moment later: until it
        has, requests already sent end with ECONNABORTED, not ENOTCONN."""
        deadline = time.monotonic() + timeout
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        while group_alive(self.proc.pid):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return status

    # -- stopping ----------------------------------------------------------
    def abort(self):
        self.aborted = abort_connection(self.mnt) or self.aborted
        # Over io-uring an abort ends only the requests the daemon has not
        # taken yet; the others end when the daemon dies.
        if TRANSPORT == "io-uring" and self.alive():
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill_and_clean(self):
        """Last resort, never fails: abort the connection, unmount lazily,
        SIGKILL the daemon and reap it."""
        if is_mounted(self.mnt) and find_mount(self.mnt)["fstype"].startswith(
                "fuse"):
            self.abort()
        lazy_umount(self.mnt)
        if self.proc is not None:
            # The whole process group: no server may outlive the test, even
            # one whose supervisor is already gone.
            kill_group(self.proc)

    def unmount(self):
        """The clean path: fusermount3 -u, then wait for exit status 0 and
        the mount to be gone.  Returns a list of problems (empty when all
        went well); the caller runs kill_and_clean() if it is not empty."""
        problems = []
        if not self.alive():
            problems.append(
                f"daemon was no longer running (exit status "
                f"{self.proc.returncode})")
            return problems
        try:
            res = run([FUSERMOUNT, "-u", self.mnt], timeout=10, check=False)
            if res.returncode != 0:
                problems.append(f"fusermount3 -u exited {res.returncode}: "
                                f"{res.stderr.strip()}")
                return problems
        except subprocess.TimeoutExpired:
            problems.append("fusermount3 -u timed out")
            return problems
        status = self.wait()
        if status is None:
            problems.append(f"daemon did not exit within {EXIT_TIMEOUT}s "
                            f"of fusermount3 -u")
        elif status != 0:
            problems.append(f"daemon exited with status {status} after "
                            f"fusermount3 -u (expected 0)")
        if is_mounted(self.mnt):
            problems.append("mount still present after fusermount3 -u")
        return problems


def backing_huge(opts):
    """The huge= a tmpfs needs to give files the huge pages segfs's backing
    gives them with options opts: huge= or within_size for its private
    tmpfs; for memfds, the kernel's shmem_enabled (deny and force are
    never and always to a mount)."""
    if "memfd" not in ",".join(opts).split(",") and BACKING != "memfd":
        for opt in ",".join(opts).split(","):
            if opt.startswith("huge="):
                return opt[5:]
        return "within_size"
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read_text()
    except OSError:
        return "never"
    m = re.search(r"\[(\w+)\]", text)
    value = m.group(1) if m else "never"
    return {"deny": "never", "force": "always"}.get(value, value)


class TmpfsMount:
    """The reference: a fresh tmpfs with an empty lists/ directory.  Its
    mount options are a /dev/shm's (nosuid, nodev), as a FUSE mount's are
    by default, and the segfs options tmpfs knows under its own names."""

    def __init__(self, mnt, opts=(), lists=True):
        self.mnt = Path(mnt)
        self.opts = list(opts)
        self.lists = lists
        self.proc = None
        self.startup_line = None
        self.log = None

    # segfs's options that tmpfs has too, under tmpfs's names.
    TMPFS_NAMES = {"size": "size", "nr_segments": "nr_inodes", "mode": "mode",
                   "huge": "huge", "nr_inodes": "nr_inodes", "uid": "uid", "gid": "gid"}

    def tmpfs_opts(self):
        # The huge pages segfs's backing has: its private tmpfs's huge=
        # (within_size unless told), or for memfds the kernel's shmem_enabled.
        out = {"mode": "755", "huge": backing_huge(self.opts)}
        for opt in ",".join(self.opts).split(","):
            key, _, value = opt.partition("=")
            if key in self.TMPFS_NAMES and value:
                out[self.TMPFS_NAMES[key]] = value
        return ",".join(f"{k}={v}" for k, v in out.items()) + ",nosuid,nodev"

    def start(self):
        run(["mount", "-t", "tmpfs", "-o", self.tmpfs_opts(), "segfs-ref",
             self.mnt], timeout=10)
        if self.lists:
            (self.mnt / "lists").mkdir()
        return self

    def alive(self):
        return is_mounted(self.mnt)

    def stderr(self):
        return ""

    def abort(self):
        pass

    def kill_and_clean(self):
        lazy_umount(self.mnt)

    def unmount(self):
        res = run(["umount", self.mnt], timeout=10, check=False)
        if res.returncode != 0:
            return [f"umount exited {res.returncode}: {res.stderr.strip()}"]
        return []


# --------------------------------------------------------------------------
# The C clients

def pattern(seed, off, n):
    """The bytes segmap's pattern(SEED) holds at file offsets [off, off+n):
    byte (pos % 251 + seed) & 0xff."""
    unit = bytes((i + seed) & 0xFF for i in range(251))
    start = off % 251
    reps = (start + n) // 251 + 1
    return (unit * reps)[start:start + n]


class Client:
    """A running segmap process: send one command, get its one-line reply."""

    def __init__(self, exe, path):
        self.proc = subprocess.Popen(
            [str(exe), str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buf = b""

    def cmd(self, line, timeout=30):
        """Send a command; return its reply line.  A client that does not
        answer within timeout seconds is killed and the test fails."""
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"segmap died before {line!r}: "
                                 f"{self._stderr()}") from None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(
                    f"segmap gave no reply to {line!r} within {timeout}s")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    status = self.proc.wait(timeout=5)
                    raise AssertionError(
                        f"segmap exited ({status}) on {line!r}: "
                        f"{self._stderr()}")
                self._buf += chunk
        reply, _, self._buf = self._buf.partition(b"\n")
        return reply.decode()

    def ok(self, line, timeout=30):
        """Send a command that must succeed; return what follows "ok"."""
        reply = self.cmd(line, timeout)
        assert reply == "ok" or reply.startswith("ok "), \
            f"segmap {line!r} -> {reply!r}"
        return reply[3:]

    def _stderr(self):
        try:
            r, _, _ = select.select([self.proc.stderr], [], [], 0)
            return os.read(self.proc.stderr.fileno(), 4096).decode() if r else ""
        except OSError:
            return ""

    def quit(self, timeout=10):
        """Ask the client to exit and reap it; returns its exit status."""
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("segmap did not exit on quit") from None
        finally:
            self._close_pipes()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close_pipes()

    def _close_pipes(self):
        for p in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                p.close()
            except (OSError, ValueError):
                pass


# --------------------------------------------------------------------------
# Running code as another user

def run_as(uid, gid, func, umask=None, timeout=20):
    """Run func() in a forked child with the given uid/gid (no supplementary
    groups) and umask.  Returns func's return value; an OSError raised in the
    child comes back as ("OSError", errno)."""
    import pickle

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            if umask is not None:
                os.umask(umask)
            try:
                result = func()
            except OSError as e:
                result = ("OSError", e.errno)
            data = pickle.dumps(result)
            os.write(wfd, data)
        except BaseException:  # noqa: BLE001 - report anything as failure
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"child as uid {uid} timed out")
            r, _, _ = select.select([rfd], [], [], left)
            if not r:
                continue
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, \
        f"child as uid {uid} failed (status {status})"
    return pickle.loads(data)


class UserTools:
    """Paths of segfs, segfs-exec and fusermount3 that another user can
    execute, and env: the environment to run segfs in as that user."""

    def __init__(self, segfs, segfs_exec, fusermount, env):
        self.segfs = segfs
        self.segfs_exec = segfs_exec
        self.fusermount = fusermount
        self.env = env


def user_tools(uid, gid, dest):
    """segfs, segfs-exec and fusermount3 as uid/gid can run them: a
    UserTools.  Needs root.

    A checkout under a directory only root may enter (a 0700 mktemp -d, a
    0700 home) hides the build from every other user.  What uid/gid cannot
    execute where it is gets copied into dest, a 0755 directory made here
    that the caller removes: segfs, segfs-server and segfs-exec together
    (segfs-exec runs the segfs beside it, which runs the segfs-server
    beside it), and fusermount3 still setuid root if it was.
    libfuse runs the fusermount3 of its install prefix and, when it cannot
    (the user cannot reach it), the first one on PATH; env puts the copy
    first there, so the daemon mounts with the same fusermount3 as from a
    checkout anyone may read."""
    def can_run(path):
        return run_as(uid, gid, lambda: os.access(path, os.X_OK))

    def copy(src):
        dest.mkdir(exist_ok=True)
        dest.chmod(0o755)
        st = os.stat(src)
        setuid = (st.st_mode & stat.S_ISUID and st.st_uid == 0
                  and os.geteuid() == 0)
        if setuid and os.statvfs(dest).f_flag & os.ST_NOSUID:
            raise HarnessError(f"{dest} is on a nosuid filesystem, so a copy "
                               f"of the setuid {src} would not work there")
        dst = dest / Path(src).name
        shutil.copyfile(src, dst)
        dst.chmod(0o4755 if setuid else 0o755)
        return str(dst)

    segfs, segfs_exec, fusermount = SEGFS, SEGFS_EXEC, FUSERMOUNT
    server = str(Path(SEGFS).with_name("segfs-server"))
    env = dict(os.environ)
    if not (can_run(SEGFS) and can_run(SEGFS_EXEC) and can_run(server)):
        segfs, segfs_exec = copy(SEGFS), copy(SEGFS_EXEC)
        copy(server)
    if os.path.isabs(FUSERMOUNT) and not can_run(FUSERMOUNT):
        fusermount = copy(FUSERMOUNT)
        env["PATH"] = str(dest) + os.pathsep + env.get("PATH", os.defpath)
    return UserTools(segfs, segfs_exec, fusermount, env)


def errno_of(func, *args, **kw):
    """Call func; return 0 if it succeeds, else the errno of its OSError."""
    try:
        func(*args, **kw)
    except OSError as e:
        return e.errno
    return 0



def write_once(path, text, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """Writes text in one write() and closes: (write errno, close errno),
    0 for success.  lists/ refuses bad text at either step."""
    fd = os.open(path, flags, 0o644)
    werr = cerr = 0
    try:
        os.write(fd, text.encode())
    except OSError as e:
        werr = e.errno
    try:
        os.close(fd)
    except OSError as e:
        cerr = e.errno
    return werr, cerr


def cpythons():
    """Every CPython >= 3.9 on the machine, oldest first, as (version, path):
    the system's and pyenv's."""
    found = {}
    for exe in [sys.executable, "/usr/bin/python3"] + sorted(
            glob.glob("/root/.pyenv/versions/3.*/bin/python3")):
        if not os.access(exe, os.X_OK):
            continue
        try:
            v = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if v and tuple(map(int, v.split("."))) >= (3, 9):
            found.setdefault(v, exe)
    return sorted(found.items(), key=lambda kv: tuple(map(int, kv[0].split("."))))


def cpython_params():
    """cpythons() as pytest parameters with ids like cpython3.11."""
    return [pytest.param(exe, id="cpython" + v) for v, exe in cpythons()]
