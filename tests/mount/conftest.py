"""pytest fixtures for the segfs mount tests.

Environment (see run.sh):
  SEGFS            the daemon binary (default: build/segfs)
  SEGFS_OPTS       extra -o options, comma separated (e.g. nopassthrough)
  SEGFS_MODE       passthrough | fallback: the data path the startup line
                   must report (default: fallback iff SEGFS_OPTS has
                   nopassthrough)
  SEGFS_TRANSPORT  io-uring | /dev/fuse: the transport the startup line
                   must report (default: io-uring iff SEGFS_OPTS has io_uring)
  SEGFS_BACKING    tmpfs | memfd: the backing the startup line must report
                   (default: memfd iff SEGFS_OPTS has memfd)
  SEGFS_CLIENTS    directory holding the built C clients (segmap,
                   sigbus_probe); if unset, build/tests/clients, else they
                   are compiled with gcc into the session's temp dir
  SEGFS_REFERENCE  "tmpfs": mount a fresh tmpfs (with an empty lists/)
                   instead of segfs; FUSE-only tests skip
  SEGFS_KEEP       "1": keep the temp dir (daemon logs) after the session

Guarantees: every test runs under a deadline (default 30 s, or
@pytest.mark.deadline(SECONDS)); when it expires the watchdog aborts the
test's FUSE connections, so blocked syscalls return ENOTCONN and the test
fails instead of hanging.  Every mount is unmounted and every daemon reaped
at teardown, at session end and at exit, whatever happened.
"""

import atexit
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path

import pytest

import harness as h

DEFAULT_DEADLINE = 30
# After aborting the connections, how long the watchdog waits before it
# interrupts the main thread itself.
GRACE = 10

_MAIN_THREAD = threading.main_thread().ident
_session = {"base": None, "daemons": [], "guard": None}


class DeadlineExceeded(Exception):
    """Raised in the main thread when a test outlives its deadline."""


def _on_deadline_signal(signum, frame):
    g = _session["guard"]
    if g is not None and g.expired.is_set():
        raise DeadlineExceeded(f"test exceeded its {g.deadline}s deadline")


# --------------------------------------------------------------------------
# Session set-up and the cleanup that always runs

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deadline(seconds): per-test deadline for the watchdog")
    config.addinivalue_line(
        "markers", "segfs_opts(*opts): extra -o options for the test's mount")
    signal.signal(signal.SIGUSR2, _on_deadline_signal)
    atexit.register(_final_cleanup)


def _fuse_unusable():
    """Why /dev/fuse cannot be used here, or None when it can."""
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse is unusable here: {e.strerror}"
    return None


def pytest_collection_modifyitems(config, items):
    """Without a usable /dev/fuse no segfs test can run: skip them all,
    saying why (the tmpfs reference run needs no FUSE)."""
    why = None if h.IS_TMPFS else _fuse_unusable()
    if why:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


def pytest_report_header(config):
    what = ("reference: tmpfs" if h.IS_TMPFS else
            f"segfs: {h.SEGFS} -o {','.join(h.SEGFS_OPTS) or '(none)'} "
            f"expecting {h.MODE}")
    return [what, f"fusermount3: {h.FUSERMOUNT}"]


def _base():
    if _session["base"] is None:
        _session["base"] = Path(tempfile.mkdtemp(prefix="segfs-test-",
                                                 dir="/tmp"))
        _session["base"].chmod(0o755)
    return _session["base"]


# The other user that tests run programs as (nobody).
NOBODY = 65534


@pytest.fixture(scope="session")
def user_tools():
    """segfs, segfs-exec and fusermount3 as uid 65534 can run them
    (harness.user_tools): the build's own, or copies under the session's
    temp dir when the checkout lies where that user cannot go.  The copies
    are removed at session end, even with SEGFS_KEEP=1, since one may be
    setuid root."""
    if os.geteuid() != 0:
        pytest.skip("only root can run a program as another user")
    dest = _base() / "user-tools"
    try:
        tools = h.user_tools(NOBODY, NOBODY, dest)
    except h.HarnessError as e:
        shutil.rmtree(dest, ignore_errors=True)
        pytest.fail(str(e), pytrace=False)
    yield tools
    shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture
def fuse_for_users():
    """/dev/fuse usable by a normal user, as Debian's udev rule makes it
    (0666).  A machine without udev leaves it 0600: root then opens it up
    for this test alone and puts the mode back."""
    def usable():
        return h.run_as(NOBODY, NOBODY, lambda: h.errno_of(
            lambda: os.close(os.open("/dev/fuse", os.O_RDWR)))) == 0

    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    changed = False
    if not usable() and os.geteuid() == 0:
        os.chmod("/dev/fuse", 0o666)
        changed = True
    try:
        if not usable():
            pytest.skip("/dev/fuse cannot be opened by a normal user on this "
                        "machine (mode %o), and this is not root" % mode)
        yield
    finally:
        if changed:
            os.chmod("/dev/fuse", mode)


def _final_cleanup():
    """Idempotent: reap every daemon we started, unmount everything under the
    session's temp dir, remove it.  Returns a list of what had leaked."""
    leaked = []
    for d in _session["daemons"]:
        if d.alive() or h.is_mounted(d.mnt):
            leaked.append(f"{d.mnt} (pid {getattr(d.proc, 'pid', '-')})")
            d.kill_and_clean()
    base = _session["base"]
    if base is not None:
        for m in reversed(h.mounts_under(base)):
            leaked.append(m["mnt"])
            h.abort_connection(m["mnt"])
            h.lazy_umount(m["mnt"])
        if not h.mounts_under(base) and os.environ.get("SEGFS_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)
    if h.fusectl_mounted_here:
        # Leave the system as found; not lazily, so a concurrent user of
        # fusectl keeps it (umount then fails with EBUSY).
        h.run(["umount", h.CONN_DIR], timeout=10, check=False)
        h.fusectl_mounted_here = False
    return leaked


def pytest_sessionfinish(session, exitstatus):
    leaked = _final_cleanup()
    if leaked:
        print("\nsegfs harness: cleaned up leaked mounts/daemons: "
              + ", ".join(leaked))


# --------------------------------------------------------------------------
# Reporting: the daemon's stderr is shown for every failing test

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    g = _session["guard"]
    if rep.when == "call" and g is not None:
        g.call_done.set()  # teardown has timeouts of its own
    if rep.failed:
        for m in getattr(item, "_segfs_mounts", []):
            text = m.stderr()
            if text:
                rep.sections.append((f"segfs stderr ({m.mnt})", text))
        notes = getattr(item, "_segfs_notes", [])
        if notes:
            rep.sections.append(("segfs harness", "\n".join(notes)))


def _test_failed(item):
    rep = getattr(item, "rep_call", None)
    return rep is not None and rep.failed


# --------------------------------------------------------------------------
# The per-test guard: deadline watchdog plus owner of mounts and clients

class Guard:
    def __init__(self, item, deadline):
        self.item = item
        self.deadline = deadline
        self.mounts = []
        self.clients = []
        self.expired = threading.Event()
        self.call_done = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True,
                                       name="segfs-watchdog")

    def _watch(self):
        if self.done.wait(self.deadline):
            return
        self.expired.set()
        self.note(f"deadline of {self.deadline}s expired: aborting FUSE "
                  f"connections")
        for m in list(self.mounts):
            m.abort()
        for c in list(self.clients):
            try:
                os.kill(c.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.done.wait(GRACE) or self.call_done.is_set():
            return
        self.note("test still running after abort: interrupting it")
        signal.pthread_kill(_MAIN_THREAD, signal.SIGUSR2)

    def note(self, text):
        self.item.__dict__.setdefault("_segfs_notes", []).append(text)

    def add_mount(self, m):
        self.mounts.append(m)
        self.item.__dict__.setdefault("_segfs_mounts", []).append(m)
        if isinstance(m, h.Daemon):
            _session["daemons"].append(m)

    def kill_clients(self):
        for c in self.clients:
            c.kill()
        self.clients.clear()


@pytest.fixture(autouse=True)
def guard(request):
    """Per-test deadline watchdog and owner of the test's mounts/clients."""
    marker = request.node.get_closest_marker("deadline")
    deadline = marker.args[0] if marker else DEFAULT_DEADLINE
    g = Guard(request.node, deadline)
    _session["guard"] = g
    g.thread.start()
    yield g
    g.done.set()
    g.kill_clients()
    for m in g.mounts:
        if not getattr(m, "finalized", False) and (
                m.alive() or h.is_mounted(m.mnt)):
            g.note(f"{m.mnt} still mounted or running at teardown: "
                   f"forced cleanup")
            m.kill_and_clean()
    _session["guard"] = None
    if g.expired.is_set() and not _test_failed(request.node):
        pytest.fail(f"deadline of {deadline}s exceeded (FUSE connection "
                    f"aborted)", pytrace=False)


# --------------------------------------------------------------------------
# Mounts

def _opts_for(request):
    marker = request.node.get_closest_marker("segfs_opts")
    extra = list(marker.args) if marker else []
    return h.SEGFS_OPTS + extra


def _start(guard, opts, reference_ok=True, args=(), nofile=None, env=None):
    base = _base()
    mnt = h.make_tempdir(base, "mnt-")
    if h.IS_TMPFS and reference_ok:
        m = h.TmpfsMount(mnt, opts)
    else:
        m = h.Daemon(mnt, opts, log=base / (mnt.name + ".log"), args=args,
                     nofile=nofile, env=env)
    guard.add_mount(m)
    try:
        m.start()
    except h.HarnessError as e:
        m.finalized = True
        pytest.fail(str(e), pytrace=False)
    return m


@pytest.fixture
def fs(request, guard):
    """A fresh mount (segfs, or tmpfs with SEGFS_REFERENCE=tmpfs), unmounted
    at teardown with fusermount3 -u; the daemon must then exit 0."""
    m = _start(guard, _opts_for(request))
    if isinstance(m, h.Daemon):
        got = h.STARTUP_RE.match(m.startup_line)
        if (got["mode"] != h.MODE or got["mnt"] != str(m.mnt)
                or got["transport"] != h.TRANSPORT
                or got["backing"] != h.BACKING):
            m.kill_and_clean()
            m.finalized = True
            pytest.fail(f"startup line {m.startup_line!r} does not report "
                        f"'{h.MODE}' over {h.TRANSPORT} in {h.BACKING} "
                        f"on {m.mnt}", pytrace=False)
    yield m
    guard.kill_clients()
    problems = m.unmount()
    if problems:
        m.kill_and_clean()
    m.finalized = True
    if problems:
        msg = f"teardown of {m.mnt}: " + "; ".join(problems)
        if _test_failed(request.node) or guard.expired.is_set():
            guard.note(msg)
        else:
            pytest.fail(msg, pytrace=False)


@pytest.fixture
def tmpfs_ref(request, guard):
    """A fresh tmpfs beside the test's mount, whatever the run: the
    reference a test compares segfs with, step by step.  It takes the
    test's segfs_opts that tmpfs has (size=, nr_segments= as nr_inodes=)."""
    m = h.TmpfsMount(h.make_tempdir(_base(), "ref-"), _opts_for(request), lists=False)
    guard.add_mount(m)
    m.start()
    yield m
    if m.unmount():
        m.kill_and_clean()
    m.finalized = True


@pytest.fixture
def mnt(fs):
    """The mount point of a fresh mount, as a Path."""
    return fs.mnt


@pytest.fixture
def segfs_only():
    """Skip on the tmpfs reference: the test is about the FUSE daemon."""
    if h.IS_TMPFS:
        pytest.skip("segfs-specific (SEGFS_REFERENCE=tmpfs)")


@pytest.fixture
def passthrough_only(segfs_only):
    if h.MODE != "passthrough":
        pytest.skip("needs the passthrough data path; this run is fallback "
                    "(cached FUSE I/O, no zero copy)")


@pytest.fixture
def start_segfs(guard, segfs_only):
    """Factory for extra daemons a test manages itself (lifecycle tests):
    start_segfs(opts, args, nofile, env) -> a started harness.Daemon; args
    are command line words before the mount point, nofile the daemon's
    file limit, env extra environment variables for it (SEGFS_CRASH).
    Leftovers are killed and unmounted at teardown."""
    def start(opts=(), args=(), nofile=None, env=None):
        return _start(guard, h.SEGFS_OPTS + list(opts), reference_ok=False,
                      args=args, nofile=nofile, env=env)
    return start


# --------------------------------------------------------------------------
# C clients

@pytest.fixture(scope="session")
def clients_dir():
    """Directory holding segmap and sigbus_probe (built if necessary)."""
    names = ("segmap", "sigbus_probe")
    candidates = [h.CLIENTS_ENV] if h.CLIENTS_ENV else [
        str(h.REPO / "build" / "tests" / "clients")]
    for c in candidates:
        if c and all(os.access(os.path.join(c, n), os.X_OK) for n in names):
            return Path(c)
    if h.CLIENTS_ENV:
        pytest.fail(f"SEGFS_CLIENTS={h.CLIENTS_ENV} lacks {names}")
    out = _base() / "clients"
    out.mkdir(exist_ok=True)
    src = h.REPO / "tests" / "clients"
    for n in names:
        h.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Wpedantic",
               "-Werror", "-D_GNU_SOURCE", "-o", out / n, src / f"{n}.c"],
              timeout=60)
    return out


@pytest.fixture
def client(guard, clients_dir):
    """Factory: client(path) -> a running segmap (harness.Client) on path,
    killed at teardown if still running."""
    def start(path):
        c = h.Client(clients_dir / "segmap", path)
        guard.clients.append(c)
        return c
    return start


@pytest.fixture
def probe(clients_dir):
    """probe(path, maplen, *offsets) -> {offset: 'ok'|'sigbus'} from
    sigbus_probe ('wOFF' stores instead of loading)."""
    def run_probe(path, maplen, *offsets):
        res = h.run([clients_dir / "sigbus_probe", path, maplen, *offsets],
                    timeout=30, check=False)
        assert res.returncode in (0, 3), \
            f"sigbus_probe failed ({res.returncode}): {res.stderr}"
        out = {}
        for line in res.stdout.splitlines():
            off, what = line.split()
            out[int(off)] = what
        return out
    return run_probe
