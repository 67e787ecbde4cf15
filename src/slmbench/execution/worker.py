"""A warm execution worker: ``python -m slmbench.execution.worker --req-fd R --res-fd W ...``.

Started fresh by the Executor (never forked from the harness, which may hold a model),
it sets up its isolation once (namespaces, see sandbox.py), then loops: read a request frame,
fork one sandboxed child for it, judge, write a result frame. Python runs inline in the
child; other languages are built once per distinct program (shared build cache) and exec'ed.

Frames on the pipes: 4-byte big-endian length + UTF-8 JSON.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import random
import secrets
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slmbench.execution import sandbox
from slmbench.execution.cache import BuildCache, default_cache_root, runner_fingerprint, write_files
from slmbench.execution.languages import python as py
from slmbench.execution.languages.base import TOKEN_ENV, CommandResult, Language, Outcome, first_error_line
from slmbench.types import ExecLimits, Verdict

# Imported once here so that samples importing them pay nothing (the child is a fork).
_PRELOAD = (
    "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
    "random", "hashlib", "json", "datetime", "operator", "copy", "fractions", "decimal",
    "statistics", "traceback", "types", "dataclasses", "enum", "array",
)  # fmt: skip
# Builds run as the worker's user (root here) inside the worker's namespaces (no network,
# private /tmp, homes hidden): compilers are trusted programs reading untrusted data, and the
# shared toolchain caches (GOCACHE, precompiled headers, prebuilt crates) need one owner.
BUILD_MAX_PROCESSES = 4096


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
        self.cache = BuildCache(cache_root)
        self._fingerprints: dict[str, str] = {}
        self.toolchain_home = cache_root / "toolchain"
        if isolation.private_tmp:
            os.makedirs(sandbox.WORK_ROOT, mode=0o755, exist_ok=True)
            self.work_root = sandbox.WORK_ROOT
        else:
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
            shutil.rmtree(self.work_root, ignore_errors=True)

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
            return _result(Verdict.ERROR, f"cannot load language {msg['language']!r}: {exc}")
        self.count += 1
        work = self._make_work_dir()
        try:
            extra = dict(msg.get("extra_files") or {})
            if extra:
                write_files(Path(work), extra)
                sandbox.chown_tree(work, self.isolation.sandbox_uid)
            if lang.inline:
                return self._run_inline(lang, msg["program"], work, limits, msg.get("stdin", ""))
            return self._run_built(lang, msg, extra, work, limits)
        finally:
            try:
                os.rmdir(work)  # the common case: the program left nothing behind
            except OSError:
                shutil.rmtree(work, ignore_errors=True)

    def _make_work_dir(self) -> str:
        uid = self.isolation.sandbox_uid
        try:
            return sandbox.prepare_work_dir(self.work_root, "sample", uid)
        except FileExistsError:
            # the last sample's leftovers could not be removed: never reuse them
            shutil.rmtree(self.sample_dir, ignore_errors=True)
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
        token = secrets.token_hex(16)
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

    # ---- other languages: build once, then exec -------------------------------------
    def _run_built(
        self, lang: Language, msg: Mapping[str, Any], extra: Mapping[str, str], work: str, limits: ExecLimits
    ) -> dict[str, Any]:
        program = msg["program"]
        missing = lang.missing_tools()
        if missing:
            tool = missing[0]
            return _result(
                Verdict.SKIPPED,
                f"{tool.executable} not found" + (f"; install it: {tool.install}" if tool.install else ""),
            )
        src_probe, out_probe = Path(work) / lang.source_file, Path(work)
        needs_build = type(lang).build is not Language.build or bool(lang.build_commands(src_probe, out_probe))
        compile_s = 0.0
        if needs_build:

            def build(src: Path, out_dir: Path) -> Any:
                return lang.build(src, out_dir, self._command_runner(lang, limits), limits.compile_timeout_s)

            built = self.cache.get(lang.name, lang.source_file, program, extra, build, runner=self._fingerprint(lang))
            compile_s = 0.0 if built.cached else built.output.seconds
            if not built.output.ok:
                return _result(Verdict.COMPILE_ERROR, built.output.message or "compilation failed", compile_s=compile_s)
            src, out_dir = built.src, built.out_dir
        else:
            src, out_dir = src_probe, out_probe
            with open(src, "w") as f:
                f.write(program)
            sandbox.chown_tree(work, self.isolation.sandbox_uid)
        token = secrets.token_hex(16)
        env = sandbox.sample_environment(work, lang.environment())
        env[TOKEN_ENV] = token
        argv = [str(a) for a in lang.run_command(src, out_dir)]
        exe = shutil.which(argv[0], path=env.get("PATH")) or shutil.which(argv[0]) or argv[0]
        child = sandbox.Child(
            lambda: os.execve(exe, argv, env),
            work_dir=work,
            env=None,  # execve passes it
            limits=limits,
            isolation=self.isolation,
            uid=self.isolation.sandbox_uid,
            stdin_data=msg.get("stdin", "").encode(),
        )
        obs = child.wait()
        res = judge_outcome(lang, obs, token, limits)
        res["compile_s"] = compile_s
        return res

    def _fingerprint(self, lang: Language) -> str:
        if lang.name not in self._fingerprints:
            self._fingerprints[lang.name] = runner_fingerprint(lang)
        return self._fingerprints[lang.name]

    def _command_runner(self, lang: Language, limits: ExecLimits) -> Any:
        """The sandboxed CommandRunner handed to Language.build: no network, rlimits with the
        compile timeout as CPU limit, a wall-clock limit of ``timeout``, own process group."""
        home = self.toolchain_home
        home.mkdir(parents=True, exist_ok=True)

        def run(argv: Sequence[str], cwd: Path, timeout: float) -> CommandResult:
            env = sandbox.sample_environment(str(cwd), lang.environment())
            env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "SLMBENCH_CACHE": str(home)})
            exe = shutil.which(argv[0], path=env.get("PATH")) or shutil.which(argv[0]) or argv[0]
            argl = [str(a) for a in argv]
            blimits = ExecLimits(
                timeout_s=timeout,
                wall_timeout_s=timeout,
                memory_mb=max(limits.memory_mb, 16384),
                max_output_bytes=limits.max_output_bytes,
                max_file_bytes=max(limits.max_file_bytes, 1 << 30),
                max_processes=BUILD_MAX_PROCESSES,
            )
            child = sandbox.Child(
                lambda: os.execve(exe, argl, env),
                work_dir=str(cwd),
                env=None,  # execve passes it
                limits=blimits,
                isolation=self.isolation,
                uid=None,
            )
            obs = child.wait()
            timed_out = obs.wall_killed or obs.signal == signal.SIGXCPU
            return CommandResult(
                exit_code=obs.exit_code,
                stdout=obs.stdout.decode(errors="replace"),
                stderr=obs.stderr.decode(errors="replace"),
                seconds=obs.wall_s,
                timed_out=timed_out,
            )

        return run


# ---- judging ----------------------------------------------------------------------------
def _timed_out(obs: sandbox.Observation, limits: ExecLimits) -> bool:
    # CPU time, not wall time, decides: a loaded machine slows a program down but does not
    # make it use more CPU. The wall clock only stops sleepers (see Child.wait).
    return obs.wall_killed or obs.cpu_killed or obs.signal == signal.SIGXCPU or obs.cpu_s > limits.timeout_s


def _timeout_message(obs: sandbox.Observation, limits: ExecLimits) -> str:
    if obs.cpu_killed:
        return f"timed out: its processes used more than {limits.timeout_s:g} s CPU time together"
    if obs.wall_killed and obs.cpu_s < limits.timeout_s:
        return f"timed out: still running after {obs.wall_s:.1f} s wall time ({obs.cpu_s:.2f} s CPU)"
    return f"timed out: more than {limits.timeout_s:g} s CPU time"


def judge_inline(obs: sandbox.Observation, token: str, limits: ExecLimits) -> dict[str, Any]:
    common = _common(obs)
    if _timed_out(obs, limits):
        return _result(Verdict.TIMEOUT, _timeout_message(obs, limits), **common)
    record = obs.result
    if obs.exit_code == 0 and record == py.PASSED + token.encode():
        return _result(Verdict.PASSED, "", **common)
    kind, text = record[:1], record[1:].decode(errors="replace")
    if kind == py.SYNTAX:
        return _result(Verdict.ERROR, text, **common)
    if kind in (py.EXCEPTION, py.EXITED) and obs.exit_code == 1:
        return _result(Verdict.FAILED, text, **common)
    if obs.signal is not None:
        return _result(Verdict.ERROR, f"killed by {_signame(obs.signal)}", **common)
    if obs.exit_code == 125:
        return _result(Verdict.ERROR, first_error_line(obs.stderr.decode(errors="replace")), **common)
    if obs.exit_code == 0:
        return _result(Verdict.FAILED, "exited before the tests finished (exit code 0)", **common)
    return _result(Verdict.FAILED, f"exited before the tests finished (exit code {obs.exit_code})", **common)


def judge_outcome(lang: Language, obs: sandbox.Observation, token: str, limits: ExecLimits) -> dict[str, Any]:
    common = _common(obs)
    timed_out = _timed_out(obs, limits)
    outcome = Outcome(
        exit_code=obs.exit_code,
        stdout=common["stdout"],
        stderr=common["stderr"],
        timed_out=timed_out,
        token_seen=token.encode() in obs.result,
    )
    verdict, message = lang.judge(outcome)
    if timed_out and verdict is Verdict.TIMEOUT:
        message = _timeout_message(obs, limits)
    elif verdict is Verdict.PASSED and not (outcome.token_seen and obs.exit_code == 0):
        # A Language may not pass what the harness did not see complete.
        verdict, message = Verdict.FAILED, "exited before the tests finished"
    elif obs.signal is not None and verdict is not Verdict.PASSED and not message:
        message = f"killed by {_signame(obs.signal)}"
    return _result(verdict, message, **common)


def _common(obs: sandbox.Observation) -> dict[str, Any]:
    return {
        "exit_code": obs.exit_code,
        "cpu_s": round(obs.cpu_s, 6),
        "wall_s": round(obs.wall_s, 6),
        "stdout": obs.stdout.decode(errors="replace"),
        "stderr": obs.stderr.decode(errors="replace"),
    }


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _result(verdict: Verdict, message: str, **fields: Any) -> dict[str, Any]:
    return {"verdict": verdict.value, "message": message, **fields}


# ---- entry point ------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slmbench.execution.worker")
    parser.add_argument("--req-fd", type=int, required=True)
    parser.add_argument("--res-fd", type=int, required=True)
    parser.add_argument("--sandbox", choices=sandbox.LEVELS, default="default")
    parser.add_argument("--cache-dir", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness handles Ctrl-C and closes us
    if os.geteuid() == 0:
        # ahead of its samples (which run at 0): a fork bomb cannot starve the one process
        # that measures and kills it
        os.setpriority(os.PRIO_PROCESS, 0, -5)
    cache_root = Path(args.cache_dir)
    cache_root.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_root, 0o755)
    # the shared toolchain cache (slmbench.toolchains) must stay visible and writable too
    keep = list(dict.fromkeys([str(cache_root), str(default_cache_root())]))
    for path in keep:
        os.makedirs(path, exist_ok=True)
    sandbox.prepare_worker_environment()
    config = read_frame(args.req_fd) or {}
    isolation = sandbox.enter_worker_namespaces(args.sandbox, keep_paths=keep, host_pid=config.get("host_pid"))
    sandbox.set_no_new_privs()  # inherited by every sample and build
    # Samples that use random without seeding it get the same numbers on every run (children
    # inherit this state: see sandbox.fork).
    random.seed(0)
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    py.prepare_worker(_PRELOAD)
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
                out = worker.execute(msg)
            except Exception as exc:  # noqa: BLE001 - one broken request must not end the worker
                out = _result(Verdict.ERROR, f"executor error: {type(exc).__name__}: {exc}")
            out["id"] = msg["id"]
            out.setdefault("wall_s", time.monotonic() - started)
            write_frame(res, out)
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
