"""The Executor: a pool of warm, lean worker processes that run ExecRequests in sandboxes.

    with Executor(workers=0, sandbox="default", dedupe=True) as ex:
        for result in ex.run(requests):   # as they finish, any order; result.key == request.key
            ...

Workers are fresh interpreters (``python -m slmbench.execution.worker``) started with
posix_spawn-style process creation, never forks of the harness, which may hold a model and
gigabytes of memory; they talk to the harness over pipes. Each worker forks one sandboxed
child per sample (see worker.py and sandbox.py). With ``dedupe``, identical programs
(same ``ExecRequest.digest`` and limits) run once; the others get that verdict with
``cached=True``. With ``shared_builds``, programs of a language that can (C++, Rust) are held
back (gathering.py) and sent to a worker as one shared build, then run one by one as usual.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import os
import selectors
import shutil
import subprocess
import sys
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmbench.errors import UserError
from slmbench.execution import sandbox as sb
from slmbench.execution.cache import default_cache_root
from slmbench.execution.gathering import Gatherer
from slmbench.execution.prefetch import Prefetch
from slmbench.execution.worker import encode_frame, read_frame, take_frames, write_all, write_frame
from slmbench.execution.zygote import library_path as zygote_library
from slmbench.types import ExecLimits, ExecRequest, ExecResult, Verdict

F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
PIPE_SIZE = 1 << 20  # a whole request fits: the harness never blocks on a busy worker
# Reads ask for at most this much: os.read allocates what it asks for, and above glibc's mmap
# threshold (128 KiB) that is an mmap and a munmap per read (~9 us, against 0.6 us).
READ_SIZE = 64 * 1024

START_TIMEOUT_S = 180.0  # generous: a worker starts in ~0.1 s, but machines get overloaded
MAX_ATTEMPTS = 2  # a request whose worker died is retried once on a fresh worker

Progress = Callable[[ExecResult], None]


def default_workers(zygotes: bool = False) -> int:
    """One worker per usable core, plus one, unless the run's samples are forked by zygotes.

    A worker that forks and watches its samples itself sleeps while its sample runs, and the
    sample's process sleeps while its worker judges and forks the next: on each hand-over a
    core idles for a wake-up, and the extra worker fills those gaps (HumanEval x10 on 2 cores:
    3.0 s with 2 workers, 2.7 s with 3). A zygote's C loop watches the sample and wakes its
    worker once a sample, and each worker has its next request queued already: there the
    extra worker only competes for a pinned core (HumanEval x10: 1.80 s with 2 workers, 1.89 s
    with 3, 1.92 s with 4; start-up 0.09, 0.12, 0.16 s of it)."""
    return len(os.sched_getaffinity(0)) + (0 if zygotes else 1)


@dataclass
class _Job:
    id: int
    request: ExecRequest
    dedupe_key: Any
    attempts: int = 0
    members: list[_Job] = field(default_factory=list)  # non-empty: a shared build of their programs
    compile_s: float | None = None  # its share of the shared build that built it
    frame_bytes: int = 0  # its request, as sent


@dataclass
class _Worker:
    proc: subprocess.Popen
    req_w: int
    res_r: int
    info: dict[str, Any] = field(default_factory=dict)
    inflight: dict[int, _Job] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)  # request frames not yet written
    pipe_size: int = PIPE_SIZE  # of its request pipe
    buf: bytearray = field(default_factory=bytearray)
    alive: bool = True

    @property
    def inflight_bytes(self) -> int:
        """Of the requests in flight: in its pipe, or taken in."""
        return sum(job.frame_bytes for job in self.inflight.values())


class Executor:
    def __init__(
        self,
        workers: int = 0,
        sandbox: str = "default",
        dedupe: bool = True,
        cache_dir: Path | str | None = None,
        progress: Progress | bool | None = None,
        shared_builds: bool = True,
        pin_cpus: bool = True,
    ) -> None:
        if sandbox not in sb.LEVELS:
            raise UserError(f"unknown sandbox level {sandbox!r}", hint=f"use one of: {', '.join(sb.LEVELS)}")
        if sandbox == "bwrap" and shutil.which("bwrap") is None:
            raise UserError("--sandbox bwrap needs bubblewrap", hint="install it: apt-get install -y bubblewrap")
        if sandbox == "none":
            warnings.warn(
                "sandbox 'none': generated programs run with your own privileges, network and files "
                "(only rlimits, a process group and a temp dir); use it only for trusted debugging",
                RuntimeWarning,
                stacklevel=2,
            )
        self.workers = workers  # 0: default_workers(), settled when the first run starts
        self.sandbox = sandbox
        self.dedupe = dedupe
        # compile several distinct programs in one compiler run where the language can (much
        # faster; each still runs alone): see Language.shared_build_limit
        self.shared_builds = shared_builds
        # Each worker's inline Python samples run on one CPU, the workers' CPUs taken in turn
        # (zygote.py says why); off, they run wherever the scheduler puts them.
        cpus = sorted(os.sched_getaffinity(0))
        self._cpus = cpus if pin_cpus and len(cpus) > 1 else []
        self._launched = 0
        self._inline: tuple[str, str] | None = None  # the inline language a run started with
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_root()
        self.progress = progress
        self._pool: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._pool)
        self._next_id = 0
        self._lang_paths: dict[str, str] = {}
        self._limits_json: dict[ExecLimits, dict[str, Any]] = {}  # requests mostly share a few
        self._languages: dict[str, Any] = {}

    # ---- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        _shutdown(self._pool)

    @property
    def isolation(self) -> dict[str, Any]:
        """What the workers report they got (namespaces, sandbox uid, private /tmp, notes)."""
        self._ensure_workers()
        return dict(self._pool[0].info)

    def _ensure_workers(self, language: str | None = None) -> None:
        if language is not None and self._inline is None:
            self._inline = self._inline_language(language)
        self._pool[:] = [w for w in self._pool if w.alive]
        if self.workers <= 0:
            self.workers = default_workers(zygotes=self._inline is not None and zygote_library() is not None)
        # all started first, then greeted: they set themselves up side by side
        starting = [self._launch() for _ in range(self.workers - len(self._pool))]
        for i, w in enumerate(starting):
            try:
                self._greet(w)
            except BaseException:
                for other in starting[i + 1 :]:
                    _kill_worker(other)
                raise
            self._pool.append(w)

    def _spawn(self) -> _Worker:
        w = self._launch()
        self._greet(w)
        return w

    def _launch(self) -> _Worker:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        for fd in (req_w, res_w):
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # a smaller pipe only costs some latency
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            # No site: the worker gets the harness's resolved import path (PYTHONPATH below)
            # and none of the .pth import hooks or sitecustomize of the environment, which would
            # otherwise be loaded into the worker and so into every sample's fork.
            "-S",
            "-m",
            "slmbench.execution.worker",
            "--req-fd",
            str(req_r),
            "--res-fd",
            str(res_w),
            "--sandbox",
            self.sandbox,
            "--cache-dir",
            str(self.cache_dir.resolve()),
            "--toolchain-dir",
            str(default_cache_root().resolve()),
        ]
        library = zygote_library()
        if library is not None:
            cmd += ["--zygote", library]
        if self._cpus:
            cmd += ["--cpu", str(self._cpus[self._launched % len(self._cpus)])]
        self._launched += 1
        if self.sandbox == "bwrap":
            cmd = _bwrap_prefix(self.cache_dir.resolve()) + cmd
        # Without preexec_fn/start_new_session, subprocess uses vfork/posix_spawn: starting a
        # worker costs the same from a harness holding a model as from a lean one.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(req_r, res_w),
            env=_worker_env(self.cache_dir.resolve() / "pycache"),
            close_fds=True,
        )
        os.close(req_r)
        os.close(res_w)
        w = _Worker(proc=proc, req_w=req_w, res_r=res_r, pipe_size=fcntl.fcntl(req_w, F_GETPIPE_SZ))
        # The host pid of the process we started names the worker's private sandbox uid (the
        # worker may not see its host pid: inside bubblewrap it is PID 2).
        # With ``inline``, the worker starts its zygote before it greets us (worker.py).
        write_frame(req_w, {"host_pid": proc.pid, "inline": self._inline})
        return w

    def _greet(self, w: _Worker) -> None:
        started = time.monotonic()
        hello = _read_with_timeout(w.res_r, START_TIMEOUT_S)
        if not hello or not hello.get("hello"):
            code = w.proc.poll()
            _kill_worker(w)
            why = f"no answer after {time.monotonic() - started:.0f} s" if code is None else f"exit code {code}"
            raise RuntimeError(f"execution worker ({self.sandbox}) failed to start: {why}; see its stderr above")
        w.info = hello

    # ---- running -------------------------------------------------------------------------
    def run(self, requests: Iterable[ExecRequest]) -> Iterator[ExecResult]:
        """Yield one ExecResult per request, as they finish (any order)."""
        total = len(requests) if hasattr(requests, "__len__") else None  # type: ignore[arg-type]
        report, finish = self._progress(total)
        try:
            yield from self._run(iter(requests), report)
        finally:
            finish()

    def _run(self, requests: Iterator[ExecRequest], report: Progress) -> Iterator[ExecResult]:
        first = next(requests, None)
        if first is None:
            return
        requests = itertools.chain([first], requests)
        self._ensure_workers(first.language)
        queue: deque[_Job] = deque()
        waiting: dict[Any, list[ExecRequest]] = {}  # dedupe key in flight -> duplicates
        done: dict[Any, ExecResult] = {}
        exhausted = False

        gathered: Gatherer[_Job] = Gatherer(self._shared_group)

        def next_job() -> _Job | None:
            nonlocal exhausted
            if queue:
                return queue.popleft()
            while not exhausted:
                try:
                    req = next(requests)
                except StopIteration:
                    exhausted = True
                    break
                dkey = (req.digest, req.limits) if self.dedupe else None
                if dkey is not None:
                    if dkey in done:
                        pending_dupes.append(dataclasses.replace(done[dkey], key=req.key, cached=True))
                        continue
                    if dkey in waiting:
                        waiting[dkey].append(req)
                        continue
                    waiting[dkey] = []
                self._next_id += 1
                job = _Job(self._next_id, req, dkey)
                group = gathered.hold(job, req)
                if group is None:
                    return job
                if group:
                    return self._shared_build(group)
            group = gathered.take()
            return None if group is None else self._shared_build(group)

        pending_dupes: list[ExecResult] = []
        prefetch = Prefetch()
        sel = selectors.DefaultSelector()
        try:
            for w in self._pool:
                sel.register(w.res_r, selectors.EVENT_READ, w)
            while True:
                # Keep every worker fed: a job each, then more queued behind it (prefetch.py: how
                # many), so that a worker never waits for the harness. A job queued behind another
                # waits for it however long it runs (a test looping to its time limit) while
                # another worker may run dry: so never at the end of the work, and never a shared
                # build (it holds many programs) or anything behind one.
                for depth in range(1, prefetch.depth + 1):
                    for w in list(self._pool):
                        while w.alive and len(w.inflight) < depth:
                            if depth > 1 and exhausted and len(queue) + len(gathered) < len(self._pool):
                                break
                            if depth > 1 and w.inflight_bytes >= w.pipe_size // 2:
                                break  # the pipe keeps room: writing to it never waits for the worker
                            job = next_job()
                            if job is None:
                                break
                            if depth > 1 and (job.members or any(j.members for j in w.inflight.values())):
                                queue.appendleft(job)
                                break
                            self._send(w, job)
                for w in self._pool:
                    self._flush(w)
                while pending_dupes:
                    res = pending_dupes.pop()
                    report(res)
                    yield res
                if not any(w.inflight for w in self._pool):
                    if exhausted and not queue and not gathered:
                        return
                    continue
                for key, _ in sel.select(timeout=1.0):
                    w = key.data
                    for res_msg in self._receive(w):
                        job = w.inflight.pop(res_msg.get("id"), None)
                        if job is None:
                            continue
                        if job.members:  # built: now run them, first
                            shares = res_msg.get("compile_s") or []
                            for member, share in zip(job.members, shares, strict=False):
                                member.compile_s = share
                            queue.extendleft(reversed(job.members))
                            continue
                        result = _to_result(job.request.key, res_msg)
                        prefetch.observe(result.wall_s)
                        if job.compile_s is not None:
                            result = dataclasses.replace(result, compile_s=job.compile_s)
                        if job.dedupe_key is not None:
                            done[job.dedupe_key] = result
                            for dup in waiting.pop(job.dedupe_key, []):
                                pending_dupes.append(dataclasses.replace(result, key=dup.key, cached=True))
                        report(result)
                        yield result
                    if not w.alive:
                        sel.unregister(w.res_r)
                        for job in w.inflight.values():
                            if job.members:  # its programs are built alone instead
                                queue.extendleft(reversed(job.members))
                                continue
                            job.attempts += 1
                            if job.attempts >= MAX_ATTEMPTS:
                                result = ExecResult(job.request.key, Verdict.ERROR, "the execution worker died")
                                if job.dedupe_key is not None:
                                    done[job.dedupe_key] = result
                                    for dup in waiting.pop(job.dedupe_key, []):
                                        pending_dupes.append(dataclasses.replace(result, key=dup.key, cached=True))
                                report(result)
                                yield result
                            else:
                                queue.appendleft(job)
                        w.inflight.clear()
                        _kill_worker(w)
                        self._pool.remove(w)
                        fresh = self._spawn()
                        self._pool.append(fresh)
                        sel.register(fresh.res_r, selectors.EVENT_READ, fresh)
        finally:
            sel.close()
            # Abandoned mid-run (the caller stopped iterating): workers still busy with our
            # requests are replaced, so a later run never sees their stale results.
            for w in [w for w in self._pool if w.inflight]:
                _kill_worker(w)
                self._pool.remove(w)

    def _shared_group(self, req: ExecRequest) -> tuple[Any, int] | None:
        """Where ``req`` may be built together with others (see gathering.py), or None."""
        if not self.shared_builds or req.extra_files:
            return None
        if req.language not in self._languages:
            from slmbench.execution.languages import LANGUAGES

            cls = LANGUAGES.get(req.language)
            # an instance only for languages that share builds (their shared_group is text-only)
            self._languages[req.language] = cls() if cls.shared_build_limit >= 2 else None
        lang = self._languages[req.language]
        if lang is None:
            return None
        group = lang.shared_group(req.program)
        return None if group is None else ((req.language, group, req.limits), lang.shared_build_limit)

    def _shared_build(self, members: list[_Job]) -> _Job:
        if len(members) == 1:
            return members[0]
        self._next_id += 1
        return _Job(self._next_id, members[0].request, None, members=members)

    def _send(self, w: _Worker, job: _Job) -> None:
        req = job.request
        msg: dict[str, Any] = {
            "id": job.id,
            "language": req.language,
            "language_path": self._language_path(req.language),
            "limits": self._limits_record(req.limits),
        }
        if job.members:
            msg.update(op="build", programs=[m.request.program for m in job.members])
        else:
            msg.update(program=req.program, stdin=req.stdin, extra_files=dict(req.extra_files))
        frame = encode_frame(msg)
        w.outbox.append(frame)
        job.frame_bytes = len(frame)
        w.inflight[job.id] = job

    def _flush(self, w: _Worker) -> None:
        # what was sent it since, in one write: a worker takes in the requests that have come
        # together (worker.FrameReader), and runs their inline samples together
        if w.outbox:
            try:
                write_all(w.req_w, b"".join(w.outbox))
            except OSError:
                w.alive = False
            w.outbox.clear()

    def _limits_record(self, limits: ExecLimits) -> dict[str, Any]:
        record = self._limits_json.get(limits)
        if record is None:
            record = self._limits_json[limits] = dataclasses.asdict(limits)
        return record

    def _receive(self, w: _Worker) -> list[dict[str, Any]]:
        try:
            chunk = os.read(w.res_r, READ_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            w.alive = False
            return []
        w.buf += chunk
        return take_frames(w.buf)

    def _inline_language(self, name: str) -> tuple[str, str] | None:
        """(name, path) of an inline language (Python), else None."""
        from slmbench.execution.languages import LANGUAGES

        try:
            inline = LANGUAGES.get(name).inline
        except UserError:
            return None  # reported with its requests
        return (name, self._language_path(name)) if inline else None

    def _language_path(self, name: str) -> str:
        path = self._lang_paths.get(name)
        if path is None:
            from slmbench.execution.languages import LANGUAGES

            cls = LANGUAGES.get(name)
            path = self._lang_paths[name] = f"{cls.__module__}:{cls.__qualname__}"
        return path

    def _progress(self, total: int | None) -> tuple[Progress, Callable[[], None]]:
        if callable(self.progress):
            return self.progress, lambda: None
        if not self.progress:
            return (lambda r: None), lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("execute"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.speed} /s"),
            TimeRemainingColumn(),
        )
        task = bar.add_task("execute", total=total)
        bar.start()
        return (lambda r: bar.advance(task)), bar.stop


def _to_result(key: str, msg: dict[str, Any]) -> ExecResult:
    return ExecResult(
        key=key,
        verdict=Verdict(msg["verdict"]),
        message=msg.get("message", ""),
        exit_code=msg.get("exit_code"),
        cpu_s=float(msg.get("cpu_s", 0.0)),
        wall_s=float(msg.get("wall_s", 0.0)),
        compile_s=float(msg.get("compile_s", 0.0)),
        stdout=msg.get("stdout", ""),
        stderr=msg.get("stderr", ""),
    )


def _read_with_timeout(fd: int, timeout: float) -> dict[str, Any] | None:
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
    finally:
        sel.close()
    try:
        return read_frame(fd)
    except (OSError, ValueError):
        return None


def _worker_env(pycache: Path) -> dict[str, str]:
    # Workers inherit nothing secret from the harness (inline Python samples are forks of a
    # worker); only what is needed to find the interpreter and this package.
    env = {
        "PATH": os.environ.get("PATH", sb.SAFE_PATH),
        "PYTHONPATH": sb.import_path(),
        "LANG": "C.UTF-8",
        # The bytecode of what a worker imports is kept in our cache (never beside the sources:
        # a checkout bound into its namespace stays untouched), whatever the harness's
        # PYTHONDONTWRITEBYTECODE says: with it set (as container images often do), an editable
        # install's modules were compiled afresh by every worker, 15 ms of its 35 ms of imports.
        # Samples never see it (worker.main, prepare_forking).
        "PYTHONPYCACHEPREFIX": str(pycache),
        # as in the zygote (zygote.py): samples a worker forks itself hash as every other does
        "PYTHONHASHSEED": "0",
    }
    # where the shared toolchain cache lives (slmbench.toolchains); not secrets
    for name in ("HOME", "SLMBENCH_CACHE", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _bwrap_prefix(cache_dir: Path) -> list[str]:
    """Run the worker inside bubblewrap: a read-only view of the root file system, private
    tmpfs /tmp (and the other world-writable dirs), homes that others cannot enter replaced
    by empty tmpfs with only the interpreter and toolchains bound back read-only, no network,
    own PID/IPC/UTS namespaces, killed with the harness. The build caches stay writable for
    the worker (root-owned; samples only read them)."""
    from slmbench.execution.cache import default_cache_root

    keep = list(dict.fromkeys([str(cache_dir), str(default_cache_root())]))
    for k in keep:
        os.makedirs(k, exist_ok=True)
    exposed = [p for p in sb.exposed_paths() if p not in keep]
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for d in sb.SHARED_WRITABLE:
        if os.path.isdir(d) and not os.path.islink(d):
            args += ["--perms", sb.tmpfs_mode(d), "--tmpfs", d]
    hidden = sb.hidden_roots([*exposed, *keep, os.path.expanduser("~")])
    for d in hidden:
        args += ["--perms", "0755", "--tmpfs", d]
    # directories bubblewrap would create on the way to a bind target are 0700: make them 0755
    made: set[str] = set()
    for p in [*exposed, *keep]:
        for h in hidden:
            if p.startswith(h + "/"):
                parts = Path(p).relative_to(h).parts
                for i in range(1, len(parts)):
                    d = str(Path(h, *parts[:i]))
                    if d not in made:
                        made.add(d)
                        args += ["--perms", "0755", "--dir", d]
    for p in exposed:
        args += ["--ro-bind", p, p]
    for k in keep:
        args += ["--bind", k, k]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--"]
    return args


def _close_fds(w: _Worker) -> None:
    for name in ("req_w", "res_r"):
        fd = getattr(w, name)
        if fd >= 0:
            setattr(w, name, -1)
            try:
                os.close(fd)
            except OSError:
                pass


def _kill_worker(w: _Worker) -> None:
    w.alive = False
    _close_fds(w)
    if w.proc.poll() is None:
        w.proc.kill()
    try:
        w.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _shutdown(pool: list[_Worker]) -> None:
    # Closing the request pipe tells a worker to exit once its current sample is done; it is
    # killed if it does not (its sandbox children die with it: PID 1 of their namespace).
    for w in pool:
        if w.req_w >= 0:
            try:
                os.close(w.req_w)
            except OSError:
                pass
            w.req_w = -1
    deadline = time.monotonic() + 5
    for w in pool:
        try:
            w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
        _close_fds(w)
        w.alive = False
    pool.clear()
