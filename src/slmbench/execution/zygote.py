"""The zygote: a lean, warm Python process that forks a worker's inline Python samples.

What a sample costs beyond its own work is mostly what the kernel does for its process: fork
copies the page tables of the forking process, every page either side then writes costs a
fault (a copy, for the child), and exit unmaps it all. So the process that forks should be
small and should write little between two forks, and the child should write little besides
the program's own work. The zygote is built for that:

* It is a fresh interpreter (``python -S``), started by the worker once, holding only what
  samples need: the modules benchmark programs commonly import (worker.PRELOAD), the inline
  runtime (inline.py), this module and ctypes. A fork of the worker (~11 MB, 145 mappings)
  cost each sample ~0.15 ms more than one of this (~7 MB, 90 mappings).
* Its loop is C (``zygote.c``, built once into the toolchain cache): receive a request,
  unmarshal the program's code, make the sample's stdin and output pipes, fork, watch the child
  (output, CPU time, wall clock), end it and whatever it left behind, and send back what it
  saw. Between two forks it writes a handful of pages, where Python (monitoring, judging)
  writes ~250; and the worker, which judges and compiles, wakes once for the samples it sent
  together (the zygote holds their answers back until the last: see Zygote.submit), not
  once an event.
* The program arrives compiled: the worker compiles it (worker.py; the worker never forks, so
  the compiler's memory is already its own there), and the child runs the code. Compiling in
  the child cost ~0.5 ms a sample in faults alone (HumanEval: 0.9 ms of CPU for the compile in
  a fresh fork, 0.16 ms in a warm process).
* In the child, every page written first is a copy (~1.7 us here, ~120 a HumanEval sample):
  the child makes no object it can do without. The program's text stays in the zygote's C
  memory until something asks for it (a traceback, through the linecache entry the zygote made
  once), and the zygote has run a sample's path once itself, so that what Python writes down
  the first time (its type attribute cache, lazily made state) is already written.

The child applies the sandbox set-up in C (fds, session, priority 0, rlimits, work dir, the
sandbox uid, ``no_new_privs``) and calls into Python to run the sample. What the zygote watches
and when it kills are the rules of the worker's own monitor (sandbox.Child.wait), written in C;
it is a child subreaper, so whatever a sample leaves behind comes to it to be killed and reaped
(sandbox.kill_everything). The worker judges. The zygote runs as the worker's user, so a sample
under the sandbox uid cannot signal it; where a sample can (no sandbox uid: ``--sandbox
none``, or not root) and kills or stops it, that sample is an error (its outcome is unknown)
and the next one gets a new zygote.

The zygote's process environment is the sample environment, so its children start with it, and
``PYTHONHASHSEED`` there is 0: hashing (set and dict orders of strings) is the same in every
sample and every run, as unseeded ``random`` is (the zygote seeds it with 0).

The library is compiled once per C compiler and source by the harness (``library_path``);
without a C compiler, or with ``SLMBENCH_ZYGOTE=off``, the worker forks its samples itself.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import signal
import struct
import sys
import time
import types
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.c")
ENV_SWITCH = "SLMBENCH_ZYGOTE"
LIBRARY = "libslmbench-zygote.so"
MAGIC = 0x736C6D7A
MAX_PAYLOAD = (1 << 32) - 1  # struct slm_request's payload_len (larger: the worker forks it)
SOCKET_FD = 3  # the zygote's socket, in its own process
WALL_KILLED, CPU_KILLED, TRUNCATED, LEFTOVERS = 1, 2, 4, 8  # struct slm_outcome's flags
_OUTCOME = struct.Struct("=12q")  # struct slm_outcome
# How long past a sample's own last deadline the worker waits for the zygote's answer before it
# takes the zygote for lost (stopped by a sample that could signal it, say).
ANSWER_GRACE_S = 30.0


# struct slm_request: magic, payload_len, code_len, stdin_len, then cpu_s, as_bytes,
# fsize_bytes, nproc, uid, wall_us, timeout_us, check_us, output_cap, result_cap, tidy
_REQUEST = struct.Struct("=4I11q")
MAKE_DIR, CLEAR_SHM = 1, 2  # tidy: the zygote makes and removes the work dir, empties /dev/shm


class ZygoteDied(OSError):
    """The zygote is gone (or answered nonsense). ``started``: the sample may have run (its
    outcome is unknown); else it never reached the zygote."""

    def __init__(self, message: str, started: bool) -> None:
        super().__init__(0, message)
        self.started = started


# ---- the harness's side: build once, hand the path to the workers -----------------------------
@functools.cache
def library_path() -> str | None:
    """The built library, or None (the worker then forks its samples itself)."""
    import subprocess
    from pathlib import Path

    from slmbench.errors import UserError
    from slmbench.execution import native

    if native.switched_off(ENV_SWITCH):
        return None
    try:
        path = native.build("zygote", Path(SOURCE), LIBRARY, [["-shared", "-fPIC"]])
        if path is None:
            return None
        _load(str(path))  # loads and has the symbols (Python's among them)
        return str(path)
    except (OSError, AttributeError, UserError, subprocess.SubprocessError):
        return None


def _load(path: str) -> Any:
    lib = ctypes.PyDLL(path, use_errno=True)  # PyDLL: the GIL stays held (fork, Python's C API)
    lib.slm_zygote.argtypes = [ctypes.c_int] + [ctypes.py_object] * 6
    lib.slm_zygote.restype = None
    lib.slm_pair.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib.slm_pair.restype = ctypes.c_int
    lib.slm_send_buffer.argtypes = [ctypes.c_int]
    lib.slm_send_buffer.restype = ctypes.c_int
    lib.slm_program.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.slm_program.restype = ctypes.c_ssize_t
    return lib


# ---- the worker's side --------------------------------------------------------------------------
class Sample(NamedTuple):
    """What the zygote's child gets: ``code``, the marshalled compiled program (b"": the child
    compiles ``program`` itself), the program's text, and what it writes to the result channel
    when the program returns normally. (Not a dataclass: dataclasses would bring inspect and a
    megabyte into the zygote, which imports this module.)"""

    code: bytes
    program: str
    passed: bytes

    def data(self) -> bytes:
        # the pass record holds no NUL (inline.PASSED and a hex token); the program may (it then
        # fails to compile)
        return self.passed + b"\0" + self.program.encode("utf-8", "surrogatepass")


class Request(NamedTuple):
    """A request to run a sample, as sent (struct slm_request and its payload)."""

    data: bytes
    limits: Any  # the sample's ExecLimits


class Zygote:
    """One zygote process, started now by the worker: ``environ`` is the environment its samples
    run with, ``preload`` the modules it imports for them, ``source_path`` where their programs
    are said to be (``__file__``, tracebacks; the same for all: one sample dir per worker),
    ``cpu`` the one it and its samples run on (None: any)."""

    def __init__(
        self, library: str, environ: Mapping[str, str], preload: Sequence[str], source_path: str, cpu: int | None = None
    ) -> None:
        # (imported here: this module is the zygote's too, which must hold nothing it does not need;
        # select is a C extension)
        import select

        from slmbench.execution import sandbox

        lib = _load(library)
        pair = (ctypes.c_int * 2)()
        err = lib.slm_pair(pair)
        if err != 0:
            raise OSError(-err, f"socketpair: {os.strerror(-err)}")
        sock, zygote_sock = pair[0], pair[1]
        env = dict(environ)
        drop = [] if "PYTHONPATH" in env else ["PYTHONPATH"]  # for its start only
        env.setdefault("PYTHONPATH", sandbox.import_path())
        argv = [
            sys.executable,
            "-S",  # as the worker (see pool.py): no site-packages hooks, the import path from PYTHONPATH
            "-c",
            "from slmbench.execution.zygote import serve; serve()",
            library,
            ",".join(preload),
            ",".join(drop),
            source_path,
            "" if cpu is None else str(cpu),
        ]
        # dup2 onto a fixed number in the new process, from another: dup2 of an fd onto itself
        # would keep its close-on-exec flag
        moved = _above(zygote_sock, SOCKET_FD)
        os.close(zygote_sock)
        try:
            self.pid = os.posix_spawn(sys.executable, argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, moved, SOCKET_FD)])
        except BaseException:
            os.close(sock)
            raise
        finally:
            os.close(moved)
        self.sock = sock
        self.alive = True
        self.served = 0  # samples it answered for: one that dies before its first is broken
        self._inbox = bytearray()  # answers read and not yet collected
        # What the socket holds unread (its send buffer counts the kernel's overhead too: half)
        self.room = max(lib.slm_send_buffer(sock), 0) // 2
        self._unanswered = 0  # samples sent and not yet collected
        self._answer_by = 0.0  # when the last of those has had all its time
        self._fields: dict[tuple[Any, int | None], tuple[int, ...]] = {}
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._sandbox = sandbox

    def request(
        self, work_dir: str, sample: Sample, stdin: bytes, limits: Any, uid: int | None, tidy: int = 0
    ) -> Request:
        """The request to run ``sample`` in ``work_dir`` as sandbox.Child would run it with these
        limits (an ExecLimits) and ``uid``, for ``submit``; ``tidy`` (MAKE_DIR, CLEAR_SHM) asks
        the zygote to make and remove the work dir and empty /dev/shm. ``collect`` gives what
        it saw, as a sandbox.Observation, and whether it left behind what the zygote could not
        remove."""
        fields = self._fields.get((limits, uid))
        if fields is None:
            fields = self._fields[(limits, uid)] = self._limit_fields(limits, uid)
        data = b"".join((work_dir.encode(), b"\0", sample.code, stdin, sample.data()))
        if len(data) > MAX_PAYLOAD:
            raise ValueError("a sample too large for the zygote")
        head = _REQUEST.pack(MAGIC, len(data), len(sample.code), len(stdin), *fields, tidy)
        return Request(head + data, limits)

    def submit(self, request: Request) -> None:
        """Send a request to be run after those sent before: their answers come in the same
        order from ``collect``. Under a sandbox uid, the answers to requests sent together come
        together (the zygote holds them back while more requests have come), so the worker
        wakes once for them. Requests sent before the answers are collected should add up to
        no more than ``room``: past it, this waits for the zygote to read them, which may be
        waiting for its answers to be read."""
        now = time.monotonic()
        try:
            write_all(self.sock, request.data)
        except OSError as exc:
            self.close()
            raise ZygoteDied(f"the zygote does not take requests: {exc.strerror}", started=False) from None
        # the answer may wait for every sample sent before it, each to its own last deadline
        wall = request.limits.wall_s
        longest = max(10 * wall, wall + 10 * request.limits.timeout_s) + 1.0
        self._answer_by = (self._answer_by if self._unanswered else now) + longest
        self._unanswered += 1

    def collect(self) -> tuple[Any, bool]:
        """The answer to the oldest request sent and not yet collected (see request)."""
        deadline = self._answer_by + ANSWER_GRACE_S
        self._receive(_OUTCOME.size, deadline)
        pid, status, utime_us, stime_us, maxrss, minflt, majflt, wall_us, flags, n_out, n_err, n_res = (
            _OUTCOME.unpack_from(self._inbox)
        )
        size = _OUTCOME.size + n_out + n_err + n_res
        self._receive(size, deadline)
        reply = bytes(self._inbox[:size])
        del self._inbox[:size]
        self._unanswered -= 1
        if pid < 0:
            raise OSError(-pid, f"starting the sample: {os.strerror(-pid)}")
        self.served += 1
        at = _OUTCOME.size
        observed = self._sandbox.Observation(
            exit_code=os.waitstatus_to_exitcode(status),
            stdout=reply[at : at + n_out],
            stderr=reply[at + n_out : at + n_out + n_err],
            result=reply[at + n_out + n_err : size],
            cpu_s=(utime_us + stime_us) / 1e6,
            wall_s=wall_us / 1e6,
            wall_killed=bool(flags & WALL_KILLED),
            cpu_killed=bool(flags & CPU_KILLED),
            truncated=bool(flags & TRUNCATED),
            rusage={"ru_maxrss": maxrss, "ru_minflt": minflt, "ru_majflt": majflt},
        )
        return observed, bool(flags & LEFTOVERS)

    def _limit_fields(self, limits: Any, uid: int | None) -> tuple[int, ...]:
        """struct slm_request's fields from cpu_s on, for these limits and uid: what
        sandbox.Child applies and enforces."""
        sandbox = self._sandbox
        return (
            max(1, math.ceil(limits.timeout_s)),
            limits.memory_mb * 1024 * 1024,
            limits.max_file_bytes,
            limits.max_processes,
            -1 if uid is None else uid,
            round(limits.wall_s * 1e6),
            round(limits.timeout_s * 1e6),
            round(sandbox.CPU_CHECK_S * 1e6),
            limits.max_output_bytes,
            sandbox.RESULT_CAP,
        )

    def _receive(self, size: int, deadline: float) -> None:
        """Until the inbox holds at least ``size`` bytes (answers come whole, one write each
        answer or each group of them)."""
        while len(self._inbox) < size:
            if not self.alive:  # (what it answered before is still collected)
                raise ZygoteDied("the zygote died", started=True)
            if not self._poller.poll(max(0, math.ceil((deadline - time.monotonic()) * 1000))):
                self.close()
                raise ZygoteDied("the zygote stopped answering", started=True)
            try:
                # (not more: a read allocates what it asks for, above 128 KiB by mmap and munmap)
                chunk = os.read(self.sock, 64 * 1024)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.close()
                raise ZygoteDied("the zygote died", started=True)
            self._inbox += chunk

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            os.close(self.sock)
        except OSError:
            pass
        # The socket's EOF ends the zygote; kill it anyway (it may be stuck behind a sample).
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _above(fd: int, floor: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered above ``floor``."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor + 1)


# ---- the zygote's side ----------------------------------------------------------------------------
def serve() -> NoReturn:  # pragma: no cover - the zygote process, then each of its children
    """The zygote's main (argv: library, preloaded modules, names to drop from the environment,
    the programs' source path, a CPU or ""): get ready, then loop in C, which runs each child's
    sample (a plain program's code itself, anything else through ``sample``)."""
    # Only its socket (and stdio) of the worker's fds: the worker's pipes to the harness must close
    # when the worker dies, and a sample must not inherit them.
    os.closerange(SOCKET_FD + 1, max(os.sysconf("SC_OPEN_MAX"), 1024))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the worker
    library, preload, drop, source_path, cpu = sys.argv[1:6]
    if cpu:
        # Its samples are forked and run on the CPU its worker was given (pool.py): a sample's
        # fork, faults and exit stay on one CPU's caches and TLB (~5% of a sample's CPU time).
        try:
            os.sched_setaffinity(0, {int(cpu)})
        except OSError:
            pass  # a CPU taken away since: run anywhere
    for name in filter(None, drop.split(",")):
        os.environ.pop(name, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness handles Ctrl-C
    import gc

    from slmbench.execution import inline

    inline.prepare_worker(list(filter(None, preload.split(","))))
    # What every sample's process would set up first (a fresh __main__, argv, path), set up once
    # here: each child gets its own copy of it, untouched by any other sample.
    main = inline.main_module(source_path)

    lib = _load(library)
    text_at = ctypes.c_void_p()

    def program_text() -> str:
        # the running sample's program, which the C side holds: read only if something asks
        size = lib.slm_program(ctypes.byref(text_at))
        return ctypes.string_at(text_at, size).decode("utf-8", "surrogatepass") if size >= 0 else ""

    inline.show_source(source_path, program_text)

    # A plain program's code the C side runs itself; these run the rest. Everything a sample's
    # process does costs it page copies (see above): they make no object they can do without.
    def sample(code: inline.Compiled | None = None, *, write: Any = os.write, fd: int = inline.RESULT_FD) -> bool:
        # A guarded program, or one to compile here: whether it passed (the C side then writes
        # the pass record; nothing of the sample's can touch it there); a failure's record is
        # written here, with the os.write of before.
        if code is None:
            code = inline.compile_program(program_text(), source_path)
        record = inline.execute(code, program_text, source_path, main)
        if record is not None:
            write(fd, record)
        return record is None

    def failed(exc: BaseException, *, write: Any = os.write, fd: int = inline.RESULT_FD) -> None:
        # a plain program raised exc (the C side has made it the exception's own traceback)
        write(fd, inline.failure_record(exc, program_text, source_path))

    # What a process does the first time it does it, it writes down: Python's type attribute
    # cache, the types' version tags, state made lazily. Done first in each sample's process,
    # each such write is a page copy (~10 a sample). So the zygote runs a sample's path once
    # itself, on an empty program (which cannot fail: the socket, at the result channel's fd
    # here, is never written to).
    sample(compile("", source_path, "exec", dont_inherit=True))
    # Everything allocated so far is permanent: the garbage collector of a child then never
    # walks (and so never copies) the zygote's pages.
    gc.collect()
    gc.freeze()
    # The start-up's freed memory back to the system: every page the zygote holds is copied into
    # each fork's page tables and unmapped at its exit (~0.5 MB here).
    libc.malloc_trim(0)
    try:
        # returns only when the worker is gone
        lib.slm_zygote(SOCKET_FD, sample, main.__dict__, failed, types.CodeType, list, sys.__dict__)
    finally:
        os._exit(0)
