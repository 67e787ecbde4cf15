"""Languages that are built, then exec'ed (everything but inline Python), in a worker.

Each distinct program is built once (shared, content-addressed BuildCache) by the language's
``build()`` through a sandboxed command runner, alone or with others as a member of a shared
build (``build_shared``), then run in a sandboxed child that execve's the language's
``run_command``. Imported by the worker on the first such request only: a worker that
runs Python alone never loads the build machinery (each module it holds is copied into every
sample's fork).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slmbench.execution import sandbox
from slmbench.execution.cache import BuildCache, runner_fingerprint
from slmbench.execution.channel import TOKEN_ENV
from slmbench.execution.judging import judge_outcome, result_record
from slmbench.execution.languages.base import MEMBER_PREFIX, BuildOutput, CommandResult, Language
from slmbench.execution.spawner import helper_path
from slmbench.types import ExecLimits, Verdict

# Builds run as the worker's user (root here) inside the worker's namespaces (no network,
# private /tmp, homes hidden): compilers are trusted programs reading untrusted data, and the
# shared toolchain caches (GOCACHE, precompiled headers, prebuilt crates) need one owner.
BUILD_MAX_PROCESSES = 4096


class BuiltRunner:
    def __init__(self, isolation: sandbox.Isolation, cache_root: Path) -> None:
        self.isolation = isolation
        self.cache = BuildCache(cache_root)
        self.toolchain_home = cache_root / "toolchain"
        self._fingerprints: dict[str, str] = {}
        # programs and compilers start through the exec helper where it could be built
        self.helper = helper_path()

    def run(
        self, lang: Language, msg: Mapping[str, Any], extra: Mapping[str, str], work: str, limits: ExecLimits
    ) -> dict[str, Any]:
        program = msg["program"]
        missing = lang.missing_tools()
        if missing:
            tool = missing[0]
            return result_record(
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
                message = program_relative(built.output.message, lang.source_file, 0)
                return result_record(Verdict.COMPILE_ERROR, message or "compilation failed", compile_s=compile_s)
            src, out_dir, member, offset = built.src, built.out_dir, built.output.member, built.output.line_offset
        else:
            src, out_dir, member, offset = src_probe, out_probe, None, 0
            with open(src, "w") as f:
                f.write(program)
            sandbox.chown_tree(work, self.isolation.sandbox_uid)
        token = os.urandom(16).hex()
        env = sandbox.sample_environment(work, lang.environment())
        env[TOKEN_ENV] = token
        argv = [str(a) for a in lang.run_command(src, out_dir)]
        if member is not None:
            argv += [str(a) for a in lang.member_args(member)]
        exe = shutil.which(argv[0], path=env.get("PATH")) or shutil.which(argv[0]) or argv[0]
        child = sandbox.Child(
            exec_args=(exe, argv, env),
            helper=self.helper,
            work_dir=work,
            env=None,  # execve passes it
            limits=limits,
            isolation=self.isolation,
            uid=self.isolation.sandbox_uid,
            stdin_data=msg.get("stdin", "").encode(),
        )
        obs = child.wait()
        res = judge_outcome(lang, obs, token, limits)
        res["message"] = program_relative(res["message"], lang.source_file, offset)
        res["compile_s"] = compile_s
        return res

    def build_shared(self, lang: Language, programs: Sequence[str], limits: ExecLimits) -> list[float | None]:
        """Build ``programs`` (distinct, one shared_group) together and enter each in the build
        cache as a member of the shared build. Returns per program its share of the compile
        time, or None where it was not built here (already cached, or to be built alone: it
        may not share, or the shared build failed at its lines; its own build then gives its
        own error message). Compile errors are mapped to members by line: those members are
        dropped and the rest built again, once."""
        runner = self._fingerprint(lang)
        shares: list[float | None] = [None] * len(programs)
        if lang.missing_tools():
            return shares
        todo = [
            i
            for i, program in enumerate(programs)
            if not self.cache.has(lang.name, program, {}, runner) and lang.shared_blocker(program) is None
        ]
        for _attempt in range(2):
            if len(todo) < 2:
                break
            shared = lang.shared_source([programs[i] for i in todo])
            out_dir = Path(tempfile.mkdtemp(prefix="shared.", dir=self.cache.staging))
            try:
                src = out_dir / lang.source_file
                src.write_text(shared.text)
                output = lang.build(src, out_dir, self._command_runner(lang, limits), limits.compile_timeout_s)
                if output.ok:
                    share = output.seconds / len(todo)
                    for member, i in enumerate(todo):
                        offset = shared.lines[member][0] - 1
                        done = BuildOutput(True, "", share, member=member, line_offset=offset)
                        if self.cache.publish(lang.name, lang.source_file, programs[i], out_dir, done, runner):
                            shares[i] = share
                    break
            finally:
                shutil.rmtree(out_dir, ignore_errors=True)
            failed = failed_members(output.log, lang.source_file, shared.lines)
            if not failed:
                break  # not a member's fault (or not known whose): each is built alone
            todo = [i for member, i in enumerate(todo) if member not in failed]
        return shares

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
                exec_args=(exe, argl, env),
                helper=self.helper,
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


def failed_members(log: str, source_file: str, lines: Sequence[tuple[int, int]]) -> set[int]:
    """Members of a shared build that a compiler's output blames (``<source_file>:LINE:`` as
    g++ and rustc print it); empty when it blames a line outside every member, or none."""
    blamed = {int(n) for n in re.findall(re.escape(source_file) + r":(\d+):", log)}
    members = {m for m, (first, last) in enumerate(lines) for n in blamed if first <= n <= last}
    covered = {n for n in blamed if any(first <= n <= last for first, last in lines)}
    return members if blamed and covered == blamed else set()


def program_relative(message: str, source_file: str, line_offset: int) -> str:
    """A message as the program's own build gives it, whoever built it: its file by name alone
    (the build directory is temporary) at its own lines, and no shared build's member prefix."""

    def own_line(found: re.Match[str]) -> str:
        return f"{source_file}:{int(found[1]) - line_offset}"

    message = re.sub(r"(?:/[^\s:'\"]*/)?" + re.escape(source_file) + r":(\d+)", own_line, message)
    return re.sub(MEMBER_PREFIX + r"\d+::", "", message)
