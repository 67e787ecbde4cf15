"""Isolation and limits for one untrusted program: the OS-level half of the executor.

Two scopes:

* once per *worker* (``enter_worker_namespaces``): new network, mount, PID, IPC and UTS
  namespaces when the OS allows it (root here). The worker becomes PID 1 of its own PID
  namespace (orphans come to it; it dies with the harness, and with it every process left in
  the namespace). In its mount namespace every existing mount turns read-only; /tmp,
  /var/tmp, /dev/shm and /run/lock get private, root-owned tmpfs mounts; homes that others
  cannot enter get an empty tmpfs with only the interpreter and toolchain dirs bound back.
  So the sample's own work dir is the only place it can write. Doing this per worker rather
  than per sample keeps the per-sample cost to one fork (creating a network namespace costs
  milliseconds; tearing one down is slower still).
* once per *sample* (``Child``): fork, own session/process group, rlimits (CPU, address
  space, file size, process count, no core dumps), stdin/stdout/stderr/result pipes,
  a scrubbed environment, the work dir as cwd, and, when the worker is root, a switch to an
  unprivileged uid that is unique to the worker (root ignores RLIMIT_NPROC, and a unique uid
  makes the process count exactly the sample's own processes, and lets us find and kill every
  process it left behind, setsid() or not).

The monitor (``Child.wait``) reads capped output, enforces the CPU budget of all the sample's
processes and the wall-clock backstop, and returns what it saw; judging the verdict is the
worker's job.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import math
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slmbench.types import ExecLimits

LEVELS = ("default", "bwrap", "none")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

# Directories any user may write to on a stock Debian system; each gets a private, root-owned
# tmpfs in the worker's mount namespace so a sample cannot leave files there (or read another
# sample's leftovers).
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lib/php/sessions")
# Of those, the one samples may write to (POSIX semaphores and shared memory live there:
# multiprocessing needs it); the worker empties it after every sample (clear_shared_memory).
SAMPLE_SHM = "/dev/shm"


def tmpfs_mode(path: str) -> str:
    return "1777" if path == SAMPLE_SHM else "0755"


WORK_ROOT = "/tmp/slmbench-work"  # inside the worker's private /tmp when namespaced
# Toolchains commonly installed under a home directory; visible (read-only) to samples.
TOOLCHAIN_DIRS = (".pyenv", ".cargo", ".rustup", ".nvm", ".local/lib", ".local/bin", "go", ".sdkman", ".deno", ".bun")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Per-worker sandbox uids: UID_BASE + the worker's host pid. Unique while the worker lives, so
# two executors (or two engineers' test runs) never share one, and "kill every process of
# this uid" only ever hits this worker's sample.
UID_BASE = 1_000_000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 (Linux >= 5.12)
MOUNT_ATTR_RDONLY = 0x1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000


def set_read_only(path: str, read_only: bool) -> None:
    """Flip the read-only flag of every mount at and below ``path`` (this namespace only)."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY, 0, 0)
    ret = _libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        path.encode(),
        ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(ret, f"mount_setattr {path}")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), 0, 0, 0), "prctl")


# Set in this process (and so inherited by every child): the child skips its own prctl call.
_no_new_privs = False


def set_no_new_privs() -> None:
    """No process started from here on gains privileges through exec (setuid binaries such as
    su or ping gain nothing). Dropping to the sandbox uid is still allowed."""
    global _no_new_privs
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _no_new_privs = True


# glibc's fork() called with the GIL held, without CPython's before/after-fork work: os.fork()
# re-initialises the interpreter's thread state and runs the at-fork hooks of threading and
# random in the child, which costs a single-threaded worker ~0.4 ms and ~200 copy-on-write page
# faults per sample (a third of a trivial sample's whole cost). Only safe with no other
# threads, which fork() checks each time.
_glibc_fork = ctypes.PyDLL(None, use_errno=True).fork
_glibc_fork.restype = ctypes.c_int


def fork() -> int:
    """os.fork(), minus CPython's at-fork hooks when this process has one thread. So the
    child's ``random`` state is the parent's: every sample of a worker starts from the same
    one (the worker seeds it), which makes unseeded randomness repeatable."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() != 1:
        return os.fork()
    pid = _glibc_fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid


@dataclass(frozen=True)
class Isolation:
    """What the worker actually got: reported to the harness and recorded with results."""

    level: str
    namespaces: tuple[str, ...] = ()  # subset of ("net", "mnt", "pid", "ipc", "uts")
    sandbox_uid: int | None = None  # None: samples run as the worker's own user
    private_tmp: bool = False
    private_shm: bool = False  # /dev/shm is the worker's own (emptied after each sample)
    read_only_root: bool = False  # everything but the work dir (and the build cache) is read-only
    pid1: bool = False  # the worker is PID 1 of its own PID namespace (and reaps all orphans)
    notes: tuple[str, ...] = ()


def enter_worker_namespaces(level: str, keep_paths: Sequence[str] = (), host_pid: int | None = None) -> Isolation:
    """Called once at worker start. For ``default`` (root only), unshares namespaces and forks:
    the *child* returns (it is PID 1 of the new PID namespace and runs the worker loop); the
    original process stays as a shim that waits for it and exits with its status.

    ``keep_paths`` are host directories (the build cache) that must stay visible at the same
    path even when they live under a directory that gets a private tmpfs.
    """
    host_pid = host_pid or os.getpid()
    uid = UID_BASE + host_pid if os.geteuid() == 0 and level != "none" else None
    if level == "bwrap":
        # bubblewrap (started by the harness) already made the namespaces and mounts
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        in_pid_ns = os.getpid() != host_pid
        return Isolation(
            level=level,
            namespaces=("net", "mnt", "pid", "ipc", "uts"),
            sandbox_uid=uid,
            private_tmp=True,
            private_shm=True,  # inside its own fresh /dev
            read_only_root=True,
            notes=() if in_pid_ns else ("bwrap without a PID namespace",),
        )
    if level != "default" or os.geteuid() != 0:
        notes = () if level != "default" else ("not root: no namespaces, samples share the network",)
        if uid is not None:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        return Isolation(level=level, sandbox_uid=uid, notes=notes)
    try:
        unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)
    except OSError as exc:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        return Isolation(level=level, sandbox_uid=uid, notes=(f"namespaces unavailable ({exc.strerror})",))
    exposed = [p for p in exposed_paths() if p not in keep_paths]
    hidden = hidden_roots([*exposed, *keep_paths, os.path.expanduser("~")])
    # fds opened before the tmpfs mounts hide the paths; bind mounts bring them back
    keep = [(p, os.open(p, os.O_RDONLY | os.O_DIRECTORY), False) for p in keep_paths if os.path.isdir(p)]
    keep += [(p, os.open(p, os.O_RDONLY | os.O_DIRECTORY), True) for p in exposed if os.path.isdir(p)]
    pid = os.fork()
    if pid:
        _shim_wait(pid)  # never returns
    # (getppid() is 0 here: the shim lives outside this PID namespace)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    notes: list[str] = []
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    read_only_root = True
    try:
        # every existing mount read-only (for us and our samples); the mounts added below
        # (proc, private tmpfs, the cache) are the only writable places
        set_read_only("/", True)
    except OSError as exc:
        read_only_root = False
        notes.append(f"root file system stays writable ({exc.strerror})")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    private = []
    for d in SHARED_WRITABLE:
        if os.path.isdir(d) and not os.path.islink(d):
            try:
                mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={tmpfs_mode(d)},size=1g")
                private.append(d)
            except OSError as exc:
                notes.append(f"{d} not private ({exc.strerror})")
    for d in hidden:
        try:
            mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
        except OSError as exc:
            notes.append(f"{d} not hidden ({exc.strerror})")
    for path, fd, read_only in keep:
        try:
            if not _same_dir(path, fd):
                os.makedirs(path, exist_ok=True)
                mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            if not read_only and read_only_root:
                set_read_only(path, False)
        except OSError as exc:
            notes.append(f"{path} not visible ({exc.strerror})")
        finally:
            os.close(fd)
    return Isolation(
        level=level,
        namespaces=("net", "mnt", "pid", "ipc", "uts"),
        sandbox_uid=uid,
        private_tmp="/tmp" in private,
        private_shm=SAMPLE_SHM in private,
        read_only_root=read_only_root,
        pid1=True,
        notes=tuple(notes),
    )


def exposed_paths() -> list[str]:
    """Host directories samples and builds must see: this interpreter (its prefix and import
    path) and toolchains installed under a private home (rustup, pyenv, nvm, ...)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths.update(os.path.abspath(p) for p in sys.path if p and os.path.isdir(p))
    for home in {os.path.expanduser("~"), *_homes_of(paths)}:
        for sub in TOOLCHAIN_DIRS:
            paths.add(os.path.join(home, sub))
    return sorted(p for p in paths if os.path.isdir(p) and _may_expose(p))


def import_path() -> str:
    """PYTHONPATH for a fresh interpreter of ours (a worker, a zygote) started with ``-S``: this
    package's root first (found even if installed by an import hook), then this process's own
    resolved import path, so that it imports the same packages (numpy included)."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *(os.path.abspath(p or os.curdir) for p in sys.path)]
    return os.pathsep.join(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def _may_expose(path: str) -> bool:
    """Never bind back a shared writable place or the home itself, nor a directory holding one:
    that would undo its private tmpfs (a script in /tmp puts /tmp on sys.path, ``python -m``
    run from the home puts the home there). A directory *below* one is fine and needed: a
    checkout or virtualenv in /tmp is where the worker imports slmbench and its languages from."""
    protected = (*SHARED_WRITABLE, os.path.expanduser("~"))
    inside = path.rstrip("/") + "/"
    return not any(d == path or (d + "/").startswith(inside) for d in protected)


def _homes_of(paths: set[str]) -> set[str]:
    return {os.path.join("/", *Path(p).parts[1:3]) for p in paths if p.startswith("/home/")} | {
        "/root" for p in paths if p.startswith("/root/")
    }


def hidden_roots(paths: Sequence[str]) -> list[str]:
    """The outermost directories on the way to ``paths`` that other users cannot enter (a
    0700 home): each gets an empty tmpfs in the worker, so a sample sees none of the secrets
    there (~/.ssh, API key files, tokens), and the needed paths are bind-mounted back."""
    roots: set[str] = set()
    for p in paths:
        parts = Path(p).parts
        for i in range(2, len(parts) + 1):
            d = os.path.join(*parts[:i])
            try:
                mode = os.stat(d).st_mode
            except OSError:
                break
            if not mode & 0o001:
                roots.add(d)
                break
    return sorted(roots)


def _same_dir(path: str, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _shim_wait(pid: int) -> None:
    # The shim holds no pipes of interest; it only mirrors the worker's exit status and dies
    # with the harness (the worker, PID 1 of its namespace, dies with the shim).
    for fd in range(3, 256):
        try:
            os.close(fd)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 1)


def sample_environment(work_dir: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment a sample sees: nothing inherited from the harness."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": work_dir,
        "TMPDIR": work_dir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        # one BLAS/OpenMP thread: CPU time stays comparable and RLIMIT_AS/NPROC stay roomy
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.update(extra)
    return env


def prepare_worker_environment() -> None:
    """Give the worker the parts of the sample environment that never change (what the
    worker itself needs, PATH first, stays), so each child only applies a few differences."""
    for key, value in sample_environment("/", {}).items():
        if key not in ("PATH", "HOME", "TMPDIR"):
            os.environ[key] = value


class PreparedEnvironment:
    """One sample environment, installed once in the worker so that its children start with it.

    The process environment (what exec'ed programs inherit, os.putenv/getenv in C) is set to
    ``env`` here; the worker's own ``os.environ`` keeps the worker's values (it finds toolchains
    and caches through them). A child swaps in ``environ``, an ``os.environ`` built from ``env``,
    instead of replaying a dozen putenv calls per sample. Use one per worker, for its one
    fixed sample directory."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        for key in list(os.environ):
            if key not in self.env:
                os.unsetenv(key)
        for key, value in self.env.items():
            os.putenv(key, value)
        proto = os.environ
        data = {proto.encodekey(k): proto.encodevalue(v) for k, v in self.env.items()}
        self.environ = type(proto)(data, proto.encodekey, proto.decodekey, proto.encodevalue, proto.decodevalue)

    def uninstall(self) -> None:
        """Give the process environment back the worker's values: compilers and toolchain probes
        started by the worker (subprocess without env=) inherit it, not ``os.environ``; with a
        sample's HOME and PATH, rustup's ``rustc`` finds no toolchain."""
        for key in self.env:
            if key not in os.environ:
                os.unsetenv(key)
        for key, value in os.environ.items():
            os.putenv(key, value)


@dataclass
class Observation:
    """What the monitor saw of one child."""

    exit_code: int | None  # negative: killed by that signal
    stdout: bytes
    stderr: bytes
    result: bytes  # what arrived on the result channel (capped)
    cpu_s: float
    wall_s: float
    wall_killed: bool  # the wall-clock backstop fired
    cpu_killed: bool = False  # all its processes together used more CPU than allowed
    truncated: bool = False
    rusage: object | None = field(default=None, repr=False)

    @property
    def signal(self) -> int | None:
        return -self.exit_code if self.exit_code is not None and self.exit_code < 0 else None


RESULT_CAP = 64 * 1024


class Child:
    """Fork one sandboxed child; ``target`` runs in it after isolation is in place.

    ``uid``: run as this unprivileged uid (needs root); ``sweep_uid``: after the child ends,
    kill every process of that uid (only for a uid no one else uses).

    ``env``: what ``os.environ`` holds when ``target`` runs; None leaves it as it is (a target
    that calls execve with its own environment). ``target`` must never return normally into the
    caller's code: it ends with os._exit or os.execve. The child's fds are: 0 stdin (a file),
    1/2 capture pipes, 3 the result pipe.

    A program that is exec'ed is given as ``exec_args`` (path, argv, environment) instead of a
    target; with ``helper`` (spawner.helper_path()) it starts through the exec helper, without
    a fork of this process, else in a forked child that execs it.
    """

    def __init__(
        self,
        target: Callable[[], None] | None = None,
        *,
        exec_args: tuple[str, Sequence[str], Mapping[str, str]] | None = None,
        helper: str | None = None,
        work_dir: str,
        env: Mapping[str, str] | PreparedEnvironment | None,
        limits: ExecLimits,
        isolation: Isolation,
        stdin_data: bytes = b"",
        cpu_limit_s: float | None = None,
        max_processes: int | None = None,
        memory_mb: int | None = None,
        uid: int | None = None,
        sweep_uid: bool = True,
        reset_signals: bool = True,
    ) -> None:
        if target is None and exec_args is None:
            raise ValueError("Child needs a target or exec_args")
        self.limits = limits
        self.isolation = isolation
        self.start = time.monotonic()
        stdin_fd = os.memfd_create("stdin", 0) if stdin_data else os.open(os.devnull, os.O_RDONLY)
        if stdin_data:
            os.write(stdin_fd, stdin_data)
            os.lseek(stdin_fd, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        cpu = cpu_limit_s if cpu_limit_s is not None else limits.timeout_s
        nproc = max_processes if max_processes is not None else limits.max_processes
        mem = memory_mb if memory_mb is not None else limits.memory_mb
        fds = (stdin_fd, out_w, err_w, res_w)
        if exec_args is not None and helper is not None and min(fds) > 3:
            try:
                pid = _spawn(helper, exec_args, fds, work_dir, uid, cpu, nproc, mem, limits)
            except BaseException:
                for fd in (*fds, out_r, err_r, res_r):
                    os.close(fd)
                raise
        else:
            if target is None:
                exe, argv, exec_env = exec_args  # type: ignore[misc]
                target = functools.partial(os.execve, exe, list(argv), exec_env)
            pid = fork()
            if pid == 0:  # pragma: no cover - runs in the child, reported through its exit status
                try:
                    _setup_child(fds, work_dir, env, uid, cpu, nproc, mem, limits, reset_signals)
                except BaseException as exc:  # noqa: BLE001 - never fall through into the worker's code
                    try:
                        os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
                    finally:
                        os._exit(125)
                try:
                    target()
                finally:
                    os._exit(124)
        for fd in (stdin_fd, out_w, err_w, res_w):
            os.close(fd)
        self.pid = pid
        self.uid = uid if sweep_uid else None
        self.cpu_budget = cpu
        self._fds = (out_r, err_r, res_r)  # stdout, stderr, result

    # ---- monitoring ------------------------------------------------------------------
    def wait(self) -> Observation:
        limits = self.limits
        cap = limits.max_output_bytes
        # stdout, stderr, result: one read per readiness event (blocking fds, so no fcntl to set
        # them otherwise; poll says a read will not block), at most ``caps`` kept
        bufs = (bytearray(), bytearray(), bytearray())
        caps = (cap, cap, RESULT_CAP)
        slots = dict(zip(self._fds, range(3), strict=True))
        open_fds = set(self._fds)  # not at EOF yet
        poller = select.poll()
        for fd in self._fds:
            poller.register(fd, select.POLLIN)
        pidfd = os.pidfd_open(self.pid)  # readable once the child ended
        poller.register(pidfd, select.POLLIN)
        wall = limits.wall_s
        deadline = self.start + wall
        # CPU-bound children get more wall time (see below), up to this: RLIMIT_CPU ends them
        # long before on anything but a machine that gives them under a tenth of a core.
        hard_deadline = self.start + max(10 * wall, wall + 10 * limits.timeout_s)
        wall_killed = cpu_killed = truncated = False
        exited = False
        # The CPU of *all* the sample's processes counts (a fork bomb's children each stay
        # under RLIMIT_CPU): checked every CPU_CHECK_S through its private uid.
        next_cpu_check = self.start + CPU_CHECK_S if self.uid is not None else math.inf
        try:
            while not exited:
                now = time.monotonic()
                if now >= next_cpu_check:
                    if _uid_cpu_seconds(self.uid) > self.cpu_budget:  # type: ignore[arg-type]
                        cpu_killed = True
                        self._kill_group()
                        break
                    next_cpu_check = now + CPU_CHECK_S
                if now >= deadline:
                    # A CPU-bound child starved by a loaded machine is not a sleeper: give it
                    # more wall time (RLIMIT_CPU still stops it), so load never flips a verdict.
                    if now < hard_deadline and _busy_fraction(self.pid, now - self.start) > 0.5:
                        deadline = now + wall / 2
                    else:
                        wall_killed = True
                        self._kill_group()
                        break
                timeout_ms = math.ceil(max(0.0, min(deadline, next_cpu_check) - now) * 1000)
                for fd, _ in poller.poll(timeout_ms):
                    if fd == pidfd:
                        exited = True
                    else:
                        truncated |= _read_into(fd, bufs[slots[fd]], caps[slots[fd]], poller, open_fds)
            # the child is gone (or killed): reap it, then everything it left behind
            _, status, rusage = os.wait4(self.pid, 0)
            wall_s = time.monotonic() - self.start
            self._kill_all()
            # remaining output: writers are dead now, so EOF comes quickly
            poller.unregister(pidfd)
            end = time.monotonic() + 1.0
            while open_fds and time.monotonic() < end:
                for fd, _ in poller.poll(100):
                    truncated |= _read_into(fd, bufs[slots[fd]], caps[slots[fd]], poller, open_fds)
        finally:
            for fd in (*self._fds, pidfd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return Observation(
            exit_code=os.waitstatus_to_exitcode(status),
            stdout=bytes(bufs[0]),
            stderr=bytes(bufs[1]),
            result=bytes(bufs[2]),
            cpu_s=rusage.ru_utime + rusage.ru_stime,
            wall_s=wall_s,
            wall_killed=wall_killed,
            cpu_killed=cpu_killed,
            truncated=truncated,
            rusage=rusage,
        )

    def _kill_group(self) -> None:
        # (the leader may not have reached setsid() yet: kill it by pid too)
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.uid is not None:
            _kill_uid(self.uid)

    def _kill_all(self) -> None:
        kill_everything(self.pid, self.uid, self.isolation)


def kill_everything(pgid: int, uid: int | None, isolation: Isolation) -> None:
    """Kill the sample's process group and every process that escaped it, then reap.

    Escapees (setsid, double fork) are found by uid: the worker's sandbox uid is used by
    nothing but its current sample, so a helper running as that uid does kill(-1), which the
    kernel applies to every process of the uid at once (fork bombs included). Processes of the
    worker itself (e.g. a language's warm compiler) are never touched."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is not None and ("pid" not in isolation.namespaces or _uid_has_processes(uid)):
        _kill_uid(uid)
        # Killed processes linger as zombies (still counted by RLIMIT_NPROC for the next
        # sample) until reaped; orphans are ours to reap (PID 1 or child subreaper).
        deadline = time.monotonic() + 5.0
        while True:
            _reap()
            if not _uid_has_processes(uid) or time.monotonic() > deadline:
                break
            _kill_uid(uid)
            time.sleep(0.005)
    _reap()


CPU_CHECK_S = 0.5
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _uid_cpu_seconds(uid: int) -> float:
    """utime + stime of every live process of ``uid`` (threads included)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / _CLK_TCK


def _uid_has_processes(uid: int) -> bool:
    # In our PID namespace every process a sample leaves behind becomes our child (we are PID 1
    # or a child subreaper), or a descendant of one: with no child of the uid, nothing is left
    # (a small file read and a stat per child, in the common case).
    children = _children()
    if children is not None and all(_uid_of(pid) != uid for pid in children):
        return False
    # Inside our PID namespace /proc lists only this worker's processes: still cheaper than the
    # helper fork.
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                continue
    return False


def _uid_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _children() -> set[int] | None:
    """This thread's children, or None where the kernel does not list them."""
    try:
        fd = os.open("/proc/thread-self/children", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    return {int(pid) for pid in data.split()}


def _kill_uid(uid: int) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - helper child
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            # kill(-1) as this uid: every process of the uid except the helper itself. Stopped
            # first, so that a fork bomb cannot fork faster than it is killed.
            for sig in (signal.SIGSTOP, signal.SIGSTOP, signal.SIGKILL, signal.SIGKILL):
                try:
                    os.kill(-1, sig)
                except ProcessLookupError:
                    break
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _reap() -> None:
    # Orphans are re-parented to us (PID 1 of the namespace, or a child subreaper).
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _read_into(fd: int, buf: bytearray, cap: int, poller: select.poll, open_fds: set[int]) -> bool:
    """One read from a readable ``fd``: keep at most ``cap`` bytes in ``buf`` and discard the
    rest (never buffer unbounded); at EOF, stop polling it. Whether anything was discarded."""
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        chunk = b""
    if not chunk:
        poller.unregister(fd)
        open_fds.discard(fd)
        return False
    room = cap - len(buf)
    if room > 0:
        buf += chunk[:room]
    return len(chunk) > room


def _busy_fraction(pid: int, elapsed: float) -> float:
    """Fraction of the elapsed wall time the child spent running or waiting for a CPU
    (/proc/PID/schedstat): near 1 for a CPU-bound process on a loaded machine, near 0 for a
    sleeper or one blocked on I/O."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run_ns, wait_ns, _ = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 0.0
    return (run_ns + wait_ns) / 1e9 / max(elapsed, 1e-9)


def _spawn(
    helper: str,
    exec_args: tuple[str, Sequence[str], Mapping[str, str]],
    fds: tuple[int, int, int, int],
    work_dir: str,
    uid: int | None,
    cpu_s: float,
    nproc: int,
    memory_mb: int,
    limits: ExecLimits,
) -> int:
    """Start an exec'ed program through the exec helper (spawner.py), which applies what
    _setup_child applies (the same limits, uid, session, work dir) and then execs it."""
    # (imported here: spawner brings the toolchain cache code, which a worker running only
    # inline Python never needs, and every module the worker holds is copied into its forks)
    from slmbench.execution.spawner import helper_argv

    exe, argv, env = exec_args
    args = helper_argv(
        helper,
        exe,
        list(argv),
        work_dir=work_dir,
        uid=uid,
        cpu_s=max(1, math.ceil(cpu_s)),
        memory_bytes=memory_mb * 1024 * 1024,
        file_bytes=limits.max_file_bytes,
        processes=nproc,
    )
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
    return os.posix_spawn(helper, args, dict(env), file_actions=actions)


def _setup_child(
    fds: tuple[int, int, int, int],
    work_dir: str,
    env: Mapping[str, str] | PreparedEnvironment | None,
    uid: int | None,
    cpu_s: float,
    nproc: int,
    memory_mb: int,
    limits: ExecLimits,
    reset_signals: bool,
) -> None:  # pragma: no cover - runs in the child
    # Every line here runs once per sample in a fresh fork, where the first write to any page
    # of the worker's memory costs a copy-on-write fault: the cheap paths below (no fd dance,
    # no prctl, a prepared environment) save ~200 faults, a third of a trivial sample's cost.
    os.setsid()
    if os.geteuid() == 0 and os.getpriority(os.PRIO_PROCESS, 0) < 0:
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # the worker runs at -5 to stay in charge
    if min(fds) > 3:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
    else:  # move the four fds above anything they could collide with, then into 0..3
        high = [_dup_high(fd) for fd in fds]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
    os.closerange(4, _max_fd())
    if reset_signals:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
    cpu = max(1, math.ceil(cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    os.chdir(work_dir)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError(errno.EPERM, "could not drop privileges")
    if not _no_new_privs:
        prctl(PR_SET_NO_NEW_PRIVS, 1)  # setuid binaries (su, ping, ...) gain nothing
    if isinstance(env, PreparedEnvironment):
        os.environ = env.environ  # noqa: B003 - the process environment already is this one
    elif env is not None:
        # Only the differences to the worker's environment (which already holds the common
        # part, see prepare_worker_environment).
        environ = os.environ
        for key in [k for k in environ if k not in env]:
            del environ[key]
        for key, value in env.items():
            if environ.get(key) != value:
                environ[key] = value


def _dup_high(fd: int) -> int:
    # (fcntl is imported at module level: an import statement in the child, even of a loaded
    # module, walks the import machinery and costs hundreds of copy-on-write page faults)
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(soft, 65536) if soft != resource.RLIM_INFINITY else 65536


def clear_shared_memory() -> None:
    """Remove what the last sample left in the worker's private /dev/shm (semaphores, shared
    memory segments), so that the next one starts from an empty one as from an empty work dir."""
    try:
        names = os.listdir(SAMPLE_SHM)
    except OSError:
        return
    for name in names:
        path = os.path.join(SAMPLE_SHM, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def prepare_work_dir(root: str, name: str, uid: int | None) -> str:
    path = os.path.join(root, name)
    os.mkdir(path, 0o700)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def chown_tree(path: Path | str, uid: int | None) -> None:
    if uid is None:
        return
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, uid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, uid)
