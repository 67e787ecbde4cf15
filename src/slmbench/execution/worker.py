"""A warm execution worker: ``python -m slmbench.execution.worker --req-fd R --res-fd W ...``.

Started fresh by the Executor (never forked from the harness, which may hold a model),
it sets up its isolation once (namespaces, see sandbox.py), then loops: take in the request
frames that have come (the harness keeps several queued, prefetch.py), compile their inline
programs, run each in a sandboxed child of its own, judge, and write the result frames (the
inline samples that came together go to the zygote together, Worker.run_group). Python runs
inline in the child, which the worker's zygote forks (zygote.py); other languages are built
once per distinct program (shared build cache) and exec'ed.

Frames on the pipes: 4-byte big-endian length + UTF-8 JSON.
"""

from __future__ import annotations

import gc
import importlib
import json
import marshal
import os
import signal
import struct
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from slmbench.execution import inline, sandbox
from slmbench.execution.judging import judge_inline, result_record
from slmbench.execution.languages.base import Language
from slmbench.execution.zygote import CLEAR_SHM, MAKE_DIR, Request, Sample, Zygote, ZygoteDied, write_all
from slmbench.types import ExecLimits, Verdict

# Imported once by the zygote (and by a worker that forks its samples itself) so that samples
# importing them pay nothing (the child is a fork). Each module held also makes every fork
# dearer (a C extension adds five memory mappings, ~5 us per fork and exit; a megabyte of
# objects ~25 us), so only what benchmark programs commonly import is here (counted in the
# programs of HumanEval, MBPP, HumanEval+, MBPP+ and published generations of real models:
# typing, re, math, collections, heapq, itertools, random, copy, string, ...), and what a
# failing sample needs (traceback, and ast, which traceback imports to underline the failing
# expression: 1.7 ms of every failing sample's, ~0.5 MB here). hashlib, decimal, datetime,
# dataclasses (it brings inspect, a megabyte) and friends are imported by the few that use them.
PRELOAD = (
    "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
    "random", "operator", "copy", "traceback", "ast", "types", "enum",
)  # fmt: skip


# ---- framing (shared with pool.py) ----------------------------------------------------
def write_frame(fd: int, obj: Any) -> None:
    write_frames(fd, [obj])


def write_frames(fd: int, objs: Sequence[Any]) -> None:
    """The frames in one write: whoever reads them wakes once."""
    write_all(fd, b"".join(encode_frame(obj) for obj in objs))


def encode_frame(obj: Any) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


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


class FrameReader:
    """The frames of a pipe, as many at a time as have come: the worker takes in every request
    the harness has queued (pool.py keeps several in flight) and compiles them together."""

    CHUNK = 64 * 1024  # (not more: a read allocates what it asks for, above 128 KiB by mmap)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def read(self) -> list[Any] | None:
        """Every whole frame that has come, at least one (waiting for it); None at EOF."""
        frames: list[Any] = []
        while not frames:
            chunk = os.read(self.fd, self.CHUNK)
            if not chunk:
                return None
            self.buf += chunk
            frames = take_frames(self.buf)
        return frames


def take_frames(buf: bytearray) -> list[Any]:
    """The whole frames at the start of ``buf``, taken out of it (a partial one stays)."""
    frames = []
    at = 0
    while len(buf) - at >= 4:
        size = int.from_bytes(buf[at : at + 4], "big")
        if len(buf) - at - 4 < size:
            break
        frames.append(json.loads(buf[at + 4 : at + 4 + size]))
        at += 4 + size
    del buf[:at]
    return frames


# ---- the worker -----------------------------------------------------------------------
class Worker:
    def __init__(
        self, isolation: sandbox.Isolation, cache_root: Path, zygote_library: str | None = None, cpu: int | None = None
    ) -> None:
        self.isolation = isolation
        self.cache_root = cache_root
        # inline Python samples are forked by a zygote where the library was built (zygote.py)
        self.zygote_library = zygote_library
        self.cpu = cpu
        self._forking = False  # prepared to fork inline samples itself (prepare_forking)
        self.compile = Compiler()
        self._limits: dict[tuple, ExecLimits] = {}  # requests mostly share a few
        self.zygote: Zygote | None = None  # started on the first inline sample
        self._zygote_for: tuple[dict[str, str], str] | None = None
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
        if self.zygote is not None:
            self.zygote.close()
        for lang in self.languages.values():
            lang.close()
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

    def take(self, batch: Sequence[Mapping[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """The result records of a batch of requests, in their order, a group at a time: the
        inline samples that come one after another go to the zygote together (run_group),
        anything else runs alone."""
        ahead = self.compile_ahead(batch)
        i = 0
        while i < len(batch):
            j = i
            while j < len(batch) and ahead[j] is not None and batch[j]["language"] == batch[i]["language"]:
                j += 1
            if j - i >= 2:
                yield self.run_group(batch[i:j], ahead[i:j])  # type: ignore[arg-type]
                i = j
            else:
                yield [self.one(batch[i], ahead[i])]
                i += 1

    def one(self, msg: Mapping[str, Any], ahead: Compiled | None = None) -> dict[str, Any]:
        """The result record of one request, run alone."""
        started = time.monotonic()
        try:
            out = self.build_shared(msg) if msg.get("op") == "build" else self.execute(msg, ahead)
        except Exception as exc:  # noqa: BLE001 - one broken request must not end the worker
            out = _executor_error(exc)
        out["id"] = msg["id"]
        out.setdefault("wall_s", time.monotonic() - started)
        return out

    def run_group(self, msgs: Sequence[Mapping[str, Any]], ahead: Sequence[Compiled]) -> list[dict[str, Any]]:
        """The result records of inline samples of one language, compiled ahead: sent to the
        zygote together (as many as its socket holds) and their answers taken together (it
        holds them back, zygote.c), so that the worker wakes once for them, not once a sample.
        What the zygote could not answer runs alone, as ever: after a sample that left files
        behind (its successors find the work dir taken), and after the zygote died (the first
        sample without an answer is the one it died with: lost, as run alone; the rest are run
        again)."""
        started = time.monotonic()
        lang = self.language(msgs[0]["language"], msgs[0]["language_path"])
        work = self.sample_dir
        src = os.path.join(work, lang.source_file)
        zygote = self._zygote(sandbox.sample_environment(work, lang.environment()), src)
        outs: dict[int, dict[str, Any]] = {}
        k = 0
        while zygote is not None and zygote.alive and k < len(msgs):
            sent, k = self._submit_group(zygote, msgs, ahead, k, outs)
            self._collect_group(zygote, work, sent, outs)
        for k, msg in enumerate(msgs):
            out = outs.get(k)
            if out is None:
                outs[k] = self.one(msg, ahead[k])
            else:
                out["id"] = msg["id"]
                out.setdefault("wall_s", time.monotonic() - started)
        return [outs[k] for k in range(len(msgs))]

    def _submit_group(
        self,
        zygote: Zygote,
        msgs: Sequence[Mapping[str, Any]],
        ahead: Sequence[Compiled],
        k: int,
        outs: dict[int, dict[str, Any]],
    ) -> tuple[list[tuple[int, str, ExecLimits, str]], int]:
        """Send the zygote the samples from the k-th on, as many as its socket holds unread (past
        that, the worker would wait for the zygote to read while the zygote waits for its answers
        to be read): what was sent, and where the next group begins (past the end: the rest run
        alone, the zygote died or a request is wrong)."""
        sent: list[tuple[int, str, ExecLimits, str]] = []
        size = 0
        try:
            while k < len(msgs):
                msg, compiled = msgs[k], ahead[k]
                if isinstance(compiled.code, bytes):  # it does not compile: nothing would run
                    self.count += 1
                    outs[k] = _syntax_error(compiled.code, compiled.warned)
                    k += 1
                    continue
                limits = self._limits_of(msg["limits"])
                request, token = self._zygote_request(
                    zygote, msg["program"], compiled.code, msg.get("stdin", ""), limits
                )
                if sent and size + len(request.data) > zygote.room:
                    break
                zygote.submit(request)
                self.count += 1
                size += len(request.data)
                sent.append((k, token, limits, compiled.warned))
                k += 1
        except Exception:  # noqa: BLE001 - the zygote died, or a request is wrong: the rest run alone
            k = len(msgs)
        return sent, k

    def _collect_group(
        self, zygote: Zygote, work: str, sent: list[tuple[int, str, ExecLimits, str]], outs: dict[int, dict[str, Any]]
    ) -> None:
        """The answers to what _submit_group sent, judged into ``outs``; none for what the
        zygote could not answer."""
        retidy = False
        for k, token, limits, warned in sent:
            try:
                obs, leftovers = zygote.collect()
            except ZygoteDied as exc:
                self._tidy(work)
                if self._lost_zygote(zygote) and exc.started:
                    outs[k] = result_record(Verdict.ERROR, f"the sandbox lost its sample: {exc.strerror}")
                return
            except FileExistsError:  # a sample before it left files behind: it runs alone
                retidy = True
                continue
            except OSError as exc:
                outs[k] = _executor_error(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - answers not understood: the rest run alone
                outs[k] = _executor_error(exc)
                self._tidy(work)
                zygote.close()  # (the next sample gets a new one)
                return
            retidy |= leftovers
            outs[k] = _judged(obs, token, limits, warned)
        if retidy:
            self._tidy(work)

    def compile_ahead(self, batch: Sequence[Mapping[str, Any]]) -> list[Compiled | None]:
        """The inline programs of a batch of requests, compiled one after another before any
        runs (see Compiled): None for the rest, and for any this cannot compile here."""
        ahead: list[Compiled | None] = []
        for msg in batch:
            compiled = None
            if len(batch) > 1 and msg.get("op") != "build" and not msg.get("extra_files"):
                try:
                    lang = self.language(msg["language"], msg["language_path"])
                    if lang.inline:
                        src = os.path.join(self.sample_dir, lang.source_file)
                        compiled = Compiled(src, *self.compile(msg["program"], src))
                except Exception:  # noqa: BLE001 - execute() meets it again, and reports it
                    compiled = None
            ahead.append(compiled)
        return ahead

    def execute(self, msg: Mapping[str, Any], ahead: Compiled | None = None) -> dict[str, Any]:
        limits = self._limits_of(msg["limits"])
        try:
            lang = self.language(msg["language"], msg["language_path"])
        except Exception as exc:  # noqa: BLE001 - reported as this request's error
            return result_record(Verdict.ERROR, f"cannot load language {msg['language']!r}: {exc}")
        self.count += 1
        if lang.inline and not msg.get("extra_files"):
            out = self._run_in_zygote(lang, msg["program"], limits, msg.get("stdin", ""), ahead)
            if out is not None:
                return out
        work = self._make_work_dir()
        try:
            extra = dict(msg.get("extra_files") or {})
            if extra:
                from slmbench.execution.cache import write_files

                write_files(Path(work), extra)
                sandbox.chown_tree(work, self.isolation.sandbox_uid)
            if lang.inline:
                return self._run_inline(lang, msg["program"], work, limits, msg.get("stdin", ""), ahead)
            self._own_environment()
            return self._built_runner().run(lang, msg, extra, work, limits)
        finally:
            try:
                os.rmdir(work)  # the common case: the program left nothing behind
            except OSError:
                _remove_tree(work)
            if self.isolation.private_shm:
                sandbox.clear_shared_memory()

    def _limits_of(self, record: Mapping[str, Any]) -> ExecLimits:
        key = tuple(record.items())
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = ExecLimits(**record)
        return limits

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

    def _inline_environment(self, env: dict[str, str]) -> sandbox.PreparedEnvironment:
        if self.inline_env is None or self.inline_env.env != env:
            self.inline_env = sandbox.PreparedEnvironment(env)
        return self.inline_env

    # ---- python, compiled here, run in a child of the zygote (or of this process) ------------
    def _run_in_zygote(
        self, lang: Any, program: str, limits: ExecLimits, stdin: str, ahead: Compiled | None = None
    ) -> dict[str, Any] | None:
        """The sample run by the zygote, which makes and removes its work dir (the worker's one
        sample dir); None when it cannot: fork it here."""
        work = self.sample_dir
        src = os.path.join(work, lang.source_file)
        env = sandbox.sample_environment(work, lang.environment())
        zygote = self._zygote(env, src)
        if zygote is None:
            return None
        compiled, warned = self._compiled(program, src, ahead)
        if isinstance(compiled, bytes):  # it does not compile: nothing would run
            return _syntax_error(compiled, warned)
        request, token = self._zygote_request(zygote, program, compiled, stdin, limits)
        for attempt in (1, 2):
            try:
                zygote.submit(request)
                obs, leftovers = zygote.collect()
                break
            except ZygoteDied as exc:
                self._tidy(work)  # what the zygote could not
                if self._lost_zygote(zygote) and exc.started:
                    return result_record(Verdict.ERROR, f"the sandbox lost its sample: {exc.strerror}")
                return None
            except FileExistsError:  # leftovers of a sample before: never reuse them
                self._tidy(work)
                if attempt == 2:
                    return None
        if leftovers:
            self._tidy(work)
        return _judged(obs, token, limits, warned)

    def _zygote_request(
        self, zygote: Zygote, program: str, code: inline.Compiled | None, stdin: str, limits: ExecLimits
    ) -> tuple[Request, str]:
        """The zygote's request to run a compiled program in the sample dir (None: the child
        compiles it), and the token of its pass record."""
        token = os.urandom(16).hex()
        sample = Sample(marshal.dumps(code) if code is not None else b"", program, inline.PASSED + token.encode())
        tidy = MAKE_DIR | (CLEAR_SHM if self.isolation.private_shm else 0)
        request = zygote.request(self.sample_dir, sample, stdin.encode(), limits, self.isolation.sandbox_uid, tidy)
        return request, token

    def _compiled(self, program: str, src: str, ahead: Compiled | None) -> tuple[inline.Compiled | None, str]:
        # compiled ahead as this source path, or now
        if ahead is not None and ahead.source_path == src:
            return ahead.code, ahead.warned
        return self.compile(program, src)

    def _tidy(self, work: str) -> None:
        _remove_tree(work)
        if self.isolation.private_shm:
            sandbox.clear_shared_memory()

    def _run_inline(
        self, lang: Any, program: str, work: str, limits: ExecLimits, stdin: str, ahead: Compiled | None = None
    ) -> dict[str, Any]:
        """The sample forked here (no zygote, or files to give it)."""
        src = os.path.join(work, lang.source_file)
        compiled, warned = self._compiled(program, src, ahead)
        if isinstance(compiled, bytes):  # it does not compile: nothing would run
            return _syntax_error(compiled, warned)
        token = os.urandom(16).hex()
        if not self._forking:
            prepare_forking()
            self._forking = True
        env = sandbox.sample_environment(work, lang.environment())
        child = sandbox.Child(
            lambda: inline.run(program, src, token, compiled),
            work_dir=work,
            env=self._inline_environment(env) if work == self.sample_dir else env,
            limits=limits,
            isolation=self.isolation,
            uid=self.isolation.sandbox_uid,
            stdin_data=stdin.encode(),
            reset_signals=False,  # keep Python's own SIGPIPE/SIGXFSZ handling (errors, not kills)
        )
        return _judged(child.wait(), token, limits, warned)

    def start_zygote(self, name: str, path: str) -> None:
        """Start the zygote for this inline language's samples now, not on the first one."""
        lang = self.language(name, path)
        if lang.inline:
            self._zygote(
                sandbox.sample_environment(self.sample_dir, lang.environment()),
                os.path.join(self.sample_dir, lang.source_file),
            )

    def _zygote(self, env: dict[str, str], source_path: str) -> Zygote | None:
        """The zygote for samples with this environment and source path, started if need be;
        None: none can be (no library, or one would not start here)."""
        if self.zygote_library is None:
            return None
        zygote = self.zygote
        if zygote is not None and zygote.alive and self._zygote_for == (env, source_path):
            return zygote
        if zygote is not None:
            zygote.close()
        try:
            self.zygote = Zygote(self.zygote_library, env, PRELOAD, source_path, self.cpu)
        except OSError:
            self.zygote = None
            self.zygote_library = None  # fork the samples here from now on
            return None
        self._zygote_for = (env, source_path)
        return self.zygote

    def _lost_zygote(self, zygote: Zygote) -> bool:
        """Forget a zygote that died; whether its sample may have run (else: fork it here)."""
        zygote.close()
        if self.zygote is zygote:
            self.zygote = None
        if zygote.served == 0:  # it never answered: it cannot run here, fork from now on
            self.zygote_library = None
            return False
        return True


class Compiled(NamedTuple):
    """A program compiled ahead of its turn, as ``source_path`` (Compiler's result: the code, or
    a syntax error's record, and the compiler's warnings). The worker compiles the programs of
    all the requests it has in hand before it runs the first: one compile after another, the
    compiler's code and data stay in the CPU's caches, where between two samples' processes
    they did not (HumanEval, on one core: 215 -> 175 us of the worker's time a sample in
    batches of 4, and the zygote's 198 -> 183 us)."""

    source_path: str
    code: inline.Compiled | None
    warned: str


# Larger programs are compiled in their sample's process, under its limits: the worker's own
# memory and time stay bounded (CPython compiles ~1 MB of source a second, at ~100x its size
# in memory at worst).
COMPILE_LIMIT = 256 * 1024


class Compiler:
    """Compiles programs as their sample's process would (inline.compile_program), with the
    warnings the compiler gives (SyntaxWarning, ...): they belong on the sample's stderr, not on
    the worker's. It takes over ``warnings.showwarning`` for the worker's life (one
    ``catch_warnings`` per program cost ~15 us); what is not a compile's goes to the original.
    It keeps the code of the tests it compiled (inline.CompiledTests: a guarded program's, or
    the tail plain programs share, inline.SharedTails) for the next samples."""

    def __init__(self) -> None:
        self._caught: list[str] | None = None
        self._show = warnings.showwarning
        warnings.showwarning = self._showwarning
        self._tests = inline.CompiledTests(warned=lambda: len(self._caught or ()))
        self._tails = inline.SharedTails()

    def _showwarning(
        self, message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if self._caught is None:
            self._show(message, category, filename, lineno, file, line)
        else:
            self._caught.append(warnings.formatwarning(message, category, filename, lineno, line))

    def __call__(self, program: str, source_path: str) -> tuple[inline.Compiled | None, str]:
        """The compiled program (None: too large, its process compiles it) and its warnings."""
        if len(program) > COMPILE_LIMIT:
            return None, ""
        self._caught = caught = []
        try:
            return inline.compile_program(program, source_path, self._tests, self._tails), "".join(caught)
        finally:
            self._caught = None


def _judged(obs: sandbox.Observation, token: str, limits: ExecLimits, warned: str) -> dict[str, Any]:
    # the compiler's warnings belong on the sample's stderr, first, as its process prints them
    if warned:
        obs.stderr = warned.encode(errors="replace") + obs.stderr
    return judge_inline(obs, token, limits)


def _executor_error(exc: Exception) -> dict[str, Any]:
    return result_record(Verdict.ERROR, f"executor error: {type(exc).__name__}: {exc}")


def _syntax_error(record: bytes, warned: str) -> dict[str, Any]:
    # what a sample's process reports for a program that does not compile (nothing ran)
    text = record[1:].decode(errors="replace")  # after the SYNTAX kind
    return result_record(Verdict.ERROR, text, exit_code=1, cpu_s=0.0, wall_s=0.0, stdout="", stderr=warned)


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
    zygote: str | None = None  # the zygote library (zygote.library_path), if built
    cpu: int | None = None  # the CPU its zygote and samples run on (see pool.py)


def parse_args(argv: Sequence[str]) -> WorkerArgs:
    """The pool's command line: ``--name value`` pairs. (Not argparse, which loads shutil and the
    compression modules, nor getopt, which loads gettext: ~10 ms of each worker's start.)"""
    names = {"req-fd", "res-fd", "cache-dir", "sandbox", "toolchain-dir", "zygote", "cpu"}
    given: dict[str, str] = {}
    if len(argv) % 2:
        raise SystemExit(f"slmbench.execution.worker: expected --name value pairs, got {list(argv)}")
    for name, value in zip(argv[::2], argv[1::2], strict=True):
        if not name.startswith("--") or name[2:] not in names:
            raise SystemExit(f"slmbench.execution.worker: unknown option {name!r}")
        given[name[2:].replace("-", "_")] = value
    missing = [n for n in ("req_fd", "res_fd", "cache_dir") if n not in given]
    if missing:
        raise SystemExit(f"slmbench.execution.worker: missing --{', --'.join(m.replace('_', '-') for m in missing)}")
    if given.get("sandbox", "default") not in sandbox.LEVELS:
        raise SystemExit(f"slmbench.execution.worker: --sandbox must be one of {', '.join(sandbox.LEVELS)}")
    try:
        numbers = {n: int(given.pop(n)) for n in ("req_fd", "res_fd", "cpu") if n in given}
    except ValueError as exc:
        raise SystemExit(f"slmbench.execution.worker: {exc}") from None
    return WorkerArgs(**numbers, **given)  # type: ignore[arg-type]


def prepare_forking() -> None:
    """Make this process the one inline Python samples are forked from (when there is no zygote):
    what a zygote does at its start (zygote.serve)."""
    inline.prepare_worker(PRELOAD)
    # as a sample's environment says (PYTHONDONTWRITEBYTECODE, no bytecode cache of ours): its
    # imports read the bytecode beside the sources and write none
    sys.pycache_prefix = None
    sys.dont_write_bytecode = True
    # Everything allocated so far is permanent: the garbage collector of a forked child then
    # never walks (and so never copies) this process's pages.
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # read at the start (sys.pycache_prefix): what this process starts gets none of it
    os.environ.pop("PYTHONPYCACHEPREFIX", None)
    # What the worker creates on its private tmpfs (the way down to the bind-mounted caches,
    # the work root) must be traversable by the sandbox uid, whatever the harness's umask;
    # each sample's own dir is made 0700 and handed to that uid explicitly.
    os.umask(0o022)
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
    worker = Worker(isolation, cache_root, args.zygote, args.cpu)
    if config.get("inline"):  # Python samples are coming: the zygote starts beside us
        worker.start_zygote(*config["inline"])
    requests, res = FrameReader(args.req_fd), args.res_fd
    write_frame(
        res,
        {
            "hello": True,
            "level": isolation.level,
            "namespaces": list(isolation.namespaces),
            "sandbox_uid": isolation.sandbox_uid,
            "private_tmp": isolation.private_tmp,
            "read_only_root": isolation.read_only_root,
            "zygote": args.zygote is not None,
            "notes": list(isolation.notes),
        },
    )
    try:
        while (batch := requests.read()) is not None:
            for results in worker.take(batch):
                write_frames(res, results)
    finally:
        worker.close()
    # The harness waits for this exit: the interpreter's own teardown (~12 ms of freeing
    # modules and objects the kernel frees anyway) is skipped.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
