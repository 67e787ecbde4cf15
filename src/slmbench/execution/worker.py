"""A warm execution worker: ``python -m slmbench.execution.worker --req-fd R --res-fd W ...``.

Started fresh by the Executor (never forked from the harness, which may hold a model),
it sets up its isolation once (namespaces, see sandbox.py), then loops: read a request frame,
fork one sandboxed child for it, judge, write a result frame. Python runs inline in the
child; other languages are built once per distinct program (shared build cache) and exec'ed.

Frames on the pipes: 4-byte big-endian length + UTF-8 JSON.
"""

from __future__ import annotations

import gc
import getopt
import importlib
import json
import os
import random
import signal
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmbench.execution import sandbox
from slmbench.execution.judging import judge_inline, result_record
from slmbench.execution.languages import python as py
from slmbench.execution.languages.base import Language
from slmbench.types import ExecLimits, Verdict

# Imported once here so that samples importing them pay nothing (the child is a fork). Each
# module the worker holds also makes every fork dearer (a C extension adds five memory mappings,
# ~10 us per fork and exit), so only what benchmark programs commonly import is here (measured
# on HumanEval and MBPP: typing, math, re, collections, heapq, itertools, random, copy, string,
# ...); hashlib, decimal, datetime, statistics and friends are imported by the few that use them.
PRELOAD = (
    "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
    "random", "operator", "copy", "traceback", "types", "dataclasses", "enum",
)  # fmt: skip


# ---- framing (shared with pool.py) ----------------------------------------------------
def write_frame(fd: int, obj: Any) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    buf = memoryview(struct.pack(">I", len(data)) + data)
    while buf:
        n = os.write(fd, buf)
        buf = buf[n:]


def read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any | None:
    head = read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    body = read_exact(fd, size)
    return None if body is None else json.loads(body)


# ---- the worker -----------------------------------------------------------------------
class Worker:
    def __init__(self, isolation: sandbox.Isolation, cache_root: Path) -> None:
        self.isolation = isolation
        self.cache_root = cache_root
        self._built: Any = None  # builds.BuiltRunner, made on the first built-language request
        if isolation.private_tmp:
            os.makedirs(sandbox.WORK_ROOT, mode=0o755, exist_ok=True)
            self.work_root = sandbox.WORK_ROOT
        else:
            import tempfile

            self.work_root = tempfile.mkdtemp(prefix="slmbench-work-")
            os.chmod(self.work_root, 0o755)
        self.languages: dict[str, Language] = {}
        self.count = 0
        # One sample at a time: each gets this same (emptied, re-made) directory, so the inline
        # Python environment (HOME, TMPDIR) is the same for all and is installed only once.
        self.sample_dir = os.path.join(self.work_root, "sample")
        self.inline_env: sandbox.PreparedEnvironment | None = None

    def close(self) -> None:
        if not self.isolation.private_tmp:
            _remove_tree(self.work_root)

    def language(self, name: str, path: str) -> Language:
        lang = self.languages.get(name)
        if lang is None:
            module, _, attr = path.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            lang = self.languages[name] = obj()
        return lang

    def execute(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        limits = ExecLimits(**msg["limits"])
        try:
            lang = self.language(msg["language"], msg["language_path"])
        except Exception as exc:  # noqa: BLE001 - reported as this request's error
            return result_record(Verdict.ERROR, f"cannot load language {msg['language']!r}: {exc}")
        self.count += 1
        work = self._make_work_dir()
        try:
            extra = dict(msg.get("extra_files") or {})
            if extra:
                from slmbench.execution.cache import write_files

                write_files(Path(work), extra)
                sandbox.chown_tree(work, self.isolation.sandbox_uid)
            if lang.inline:
                return self._run_inline(lang, msg["program"], work, limits, msg.get("stdin", ""))
            self._own_environment()
            return self._built_runner().run(lang, msg, extra, work, limits)
        finally:
            try:
                os.rmdir(work)  # the common case: the program left nothing behind
            except OSError:
                _remove_tree(work)
            if self.isolation.private_shm:
                sandbox.clear_shared_memory()

    def build_shared(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """A shared build (see builds.BuiltRunner.build_shared): no sample runs here; the
        members' own requests follow and find their builds in the cache."""
        lang = self.language(msg["language"], msg["language_path"])
        self._own_environment()
        shares = self._built_runner().build_shared(lang, msg["programs"], ExecLimits(**msg["limits"]))
        return {"compile_s": shares}

    def _own_environment(self) -> None:
        """Before anything but an inline Python sample: the worker's own process environment
        (the next Python sample installs its own again)."""
        if self.inline_env is not None:
            self.inline_env.uninstall()
            self.inline_env = None

    def _built_runner(self) -> Any:
        if self._built is None:
            from slmbench.execution.builds import BuiltRunner

            self._built = BuiltRunner(self.isolation, self.cache_root)
        return self._built

    def _make_work_dir(self) -> str:
        uid = self.isolation.sandbox_uid
        try:
            return sandbox.prepare_work_dir(self.work_root, "sample", uid)
        except FileExistsError:
            # the last sample's leftovers could not be removed: never reuse them
            _remove_tree(self.sample_dir)
            try:
                return sandbox.prepare_work_dir(self.work_root, "sample", uid)
            except FileExistsError:
                return sandbox.prepare_work_dir(self.work_root, f"s{self.count}", uid)

    def _inline_environment(self, lang: Language, work: str) -> sandbox.PreparedEnvironment | dict[str, str]:
        env = sandbox.sample_environment(work, lang.environment())
        if work != self.sample_dir:
            return env
        if self.inline_env is None or self.inline_env.env != env:
            self.inline_env = sandbox.PreparedEnvironment(env)
        return self.inline_env

    # ---- python, in the forked child ------------------------------------------------
    def _run_inline(self, lang: Any, program: str, work: str, limits: ExecLimits, stdin: str) -> dict[str, Any]:
        # not written to disk: the child has the text (fork) and feeds linecache itself
        src = os.path.join(work, lang.source_file)
        token = os.urandom(16).hex()
        env = self._inline_environment(lang, work)
        child = sandbox.Child(
            lambda: lang.run_inline(program, src, token),
            work_dir=work,
            env=env,
            limits=limits,
            isolation=self.isolation,
            uid=self.isolation.sandbox_uid,
            stdin_data=stdin.encode(),
            reset_signals=False,  # keep Python's own SIGPIPE/SIGXFSZ handling (errors, not kills)
        )
        obs = child.wait()
        return judge_inline(obs, token, limits)


def _remove_tree(path: str) -> None:
    # shutil is imported only when a sample left files behind: it loads the compression
    # modules, and everything the worker holds is copied into each sample's fork
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# ---- entry point ------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerArgs:
    req_fd: int
    res_fd: int
    cache_dir: str
    sandbox: str = "default"
    toolchain_dir: str | None = None  # the shared toolchain cache (slmbench.toolchains)


def parse_args(argv: Sequence[str]) -> WorkerArgs:
    """The pool's command line. (getopt, not argparse: argparse loads shutil and with it the
    compression modules into the worker, and so into every sample's fork.)"""
    options = ["req-fd=", "res-fd=", "cache-dir=", "sandbox=", "toolchain-dir="]
    try:
        pairs, rest = getopt.getopt(list(argv), "", options)
    except getopt.GetoptError as exc:
        raise SystemExit(f"slmbench.execution.worker: {exc}") from None
    given = {name.removeprefix("--").replace("-", "_"): value for name, value in pairs}
    missing = [o.rstrip("=") for o in options[:3] if o.rstrip("=").replace("-", "_") not in given]
    if rest or missing:
        raise SystemExit(f"slmbench.execution.worker: unexpected {rest} or missing --{', --'.join(missing)}")
    if given.get("sandbox", "default") not in sandbox.LEVELS:
        raise SystemExit(f"slmbench.execution.worker: --sandbox must be one of {', '.join(sandbox.LEVELS)}")
    return WorkerArgs(
        req_fd=int(given.pop("req_fd")), res_fd=int(given.pop("res_fd")), cache_dir=given.pop("cache_dir"), **given
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # What the worker creates on its private tmpfs (the way down to the bind-mounted caches,
    # the work root) must be traversable by the sandbox uid, whatever the harness's umask;
    # each sample's own dir is made 0700 and handed to that uid explicitly.
    os.umask(0o022)
    # Started without site (see pool.py): give samples the builtins an ordinary Python has
    # (exit, quit, help, copyright, ...), without site's path set-up and .pth hooks.
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness handles Ctrl-C and closes us
    if os.geteuid() == 0:
        # ahead of its samples (which run at 0): a fork bomb cannot starve the one process
        # that measures and kills it
        os.setpriority(os.PRIO_PROCESS, 0, -5)
    cache_root = Path(args.cache_dir)
    cache_root.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_root, 0o755)
    # the shared toolchain cache (slmbench.toolchains) must stay visible and writable too
    toolchain_dir = args.toolchain_dir
    if toolchain_dir is None:
        from slmbench.execution.cache import default_cache_root

        toolchain_dir = str(default_cache_root())
    keep = list(dict.fromkeys([str(cache_root), toolchain_dir]))
    for path in keep:
        os.makedirs(path, exist_ok=True)
    sandbox.prepare_worker_environment()
    config = read_frame(args.req_fd) or {}
    isolation = sandbox.enter_worker_namespaces(args.sandbox, keep_paths=keep, host_pid=config.get("host_pid"))
    sandbox.set_no_new_privs()  # inherited by every sample and build
    # Samples that use random without seeding it get the same numbers on every run (children
    # inherit this state: see sandbox.fork).
    random.seed(0)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    py.prepare_worker(PRELOAD)
    worker = Worker(isolation, cache_root)
    # Everything allocated so far is permanent: the garbage collector of a forked child then
    # never walks (and so never copies) the worker's pages.
    gc.collect()
    gc.freeze()
    req, res = args.req_fd, args.res_fd
    write_frame(
        res,
        {
            "hello": True,
            "level": isolation.level,
            "namespaces": list(isolation.namespaces),
            "sandbox_uid": isolation.sandbox_uid,
            "private_tmp": isolation.private_tmp,
            "read_only_root": isolation.read_only_root,
            "notes": list(isolation.notes),
        },
    )
    try:
        while True:
            msg = read_frame(req)
            if msg is None:
                return 0
            started = time.monotonic()
            try:
                out = worker.build_shared(msg) if msg.get("op") == "build" else worker.execute(msg)
            except Exception as exc:  # noqa: BLE001 - one broken request must not end the worker
                out = result_record(Verdict.ERROR, f"executor error: {type(exc).__name__}: {exc}")
            out["id"] = msg["id"]
            out.setdefault("wall_s", time.monotonic() - started)
            write_frame(res, out)
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
