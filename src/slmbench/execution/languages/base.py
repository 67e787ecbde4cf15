"""The Language interface: how to build and run one language's test programs.

The executor owns isolation, limits, parallelism and the build cache; a Language only says
which toolchain it needs, how to turn a source file into something runnable (once per distinct
program), what command runs it, and how to read the outcome. Adding a language is one file in
this folder plus one line in ``__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from slmbench.types import Verdict


@dataclass(frozen=True)
class Tool:
    """One executable a language needs, and how to get it."""

    executable: str
    version_args: tuple[str, ...] = ("--version",)
    install: str = ""  # exact command that installs it on Debian/Ubuntu

    # shutil and subprocess are imported where used: the execution worker imports this module
    # and every sample's fork copies what the worker holds
    def path(self) -> str | None:
        import shutil

        return shutil.which(self.executable)

    def version(self) -> str | None:
        import subprocess

        exe = self.path()
        if exe is None:
            return None
        try:
            out = subprocess.run([exe, *self.version_args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "unknown version"


@dataclass(frozen=True)
class Outcome:
    """What the sandbox observed of one test run; the Language turns it into a verdict."""

    exit_code: int | None  # negative: killed by that signal; None: never started
    stdout: str
    stderr: str
    timed_out: bool
    token_seen: bool  # the harness-side "tests completed" token arrived on the result channel


@dataclass(frozen=True)
class BuildOutput:
    ok: bool
    message: str = ""  # first compiler error when not ok
    seconds: float = 0.0
    log: str = ""  # the compiler's whole output when not ok (not cached): shared builds map errors to members
    member: int | None = None  # built as member ``member`` of a shared build: run with member_args(member)
    line_offset: int = 0  # lines of a shared build's source before the member's first line


# Each member of a shared build is wrapped in a namespace or module of this name and its index.
MEMBER_PREFIX = "slmbench_member_"


@dataclass(frozen=True)
class SharedSource:
    """Several programs as one source file (a shared build, see Language.shared_source)."""

    text: str
    lines: tuple[tuple[int, int], ...]  # first and last line (1-based) of each member in ``text``


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


# Runs argv sandboxed (limits, scrubbed env + Language.environment(), no network) in cwd with
# a wall-clock limit; supplied by the executor to Language.build.
CommandRunner = Callable[[Sequence[str], Path, float], CommandResult]


class Language(ABC):
    name: ClassVar[str]
    source_file: ClassVar[str]  # file name the program is written to in its work dir
    tools: ClassVar[tuple[Tool, ...]] = ()
    # True only for Python: the forked worker child executes the program in-process (no exec of
    # an interpreter), and the worker itself writes the token when the code returns normally.
    inline: ClassVar[bool] = False
    # Up to this many distinct programs may be compiled by one compiler run, each as a member
    # of one shared build (0: every program alone). Compilers pay most of their time per run,
    # not per line (start-up, standard library, linking), so this is where compiled languages
    # save most. See shared_group, shared_blocker, shared_source, member_args and builds.py.
    shared_build_limit: ClassVar[int] = 0

    def environment(self) -> Mapping[str, str]:
        """Extra environment for build and run (e.g. GOCACHE, GOFLAGS), on top of a scrubbed one."""
        return {}

    def close(self) -> None:
        """Stop what the language keeps running between samples (a warm compiler); called by
        the worker before it exits."""

    def trailer(self) -> str:
        """Source appended after the tests by the task: writes $SLMBENCH_TOKEN to fd 3."""
        return ""

    def build(self, src: Path, out_dir: Path, run: CommandRunner, timeout_s: float) -> BuildOutput:
        """Compile ``src`` into ``out_dir``; called once per distinct program (content-hash cache),
        in the worker, never charged to the test's time limit. Default: run build_commands()
        in order through the sandboxed ``run``. Override to use a warm compiler."""
        total = 0.0
        for argv in self.build_commands(src, out_dir):
            res = run(argv, out_dir, timeout_s)
            total += res.seconds
            if res.timed_out:
                return BuildOutput(False, f"compilation timed out after {timeout_s:.0f} s", total)
            if res.exit_code != 0:
                message = first_error_line(res.stderr) or first_error_line(res.stdout)
                return BuildOutput(False, message, total, log=res.stderr + res.stdout)
        return BuildOutput(True, "", total)

    def shared_group(self, program: str) -> str | None:
        """Programs with the same group may be built together (decided on their text alone, in
        the harness); None: this one is built alone."""
        return None

    def shared_blocker(self, program: str) -> str | None:
        """Why ``program`` must not be built together with others (decided in the worker, which
        may consult the toolchain); None when it may. A member must mean exactly what it means
        alone: when unsure, say no."""
        return None

    def shared_source(self, programs: Sequence[str]) -> SharedSource:
        """One source holding ``programs`` as members 0, 1, ... (all of one shared_group); it is
        built by build() like any program and member i runs with member_args(i)."""
        raise NotImplementedError(f"{self.name} has no shared builds")

    def member_args(self, member: int) -> Sequence[str]:
        """Arguments added to run_command() that run only member ``member`` of a shared build."""
        return ()

    def missing_tools(self) -> list[Tool]:
        return [t for t in self.tools if t.path() is None]

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        """Commands that compile ``src`` into ``out_dir`` (run once per distinct program,
        sandboxed, charged to the compile limit). Interpreted languages return ()."""
        return ()

    @abstractmethod
    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        """argv that runs the tests (cwd is the sample's private temp dir)."""

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        """Default: passed iff exit 0 and the harness token was seen."""
        if outcome.timed_out:
            return Verdict.TIMEOUT, "timed out"
        if outcome.exit_code == 0 and outcome.token_seen:
            return Verdict.PASSED, ""
        return Verdict.FAILED, first_error_line(outcome.stderr) or first_error_line(outcome.stdout) or (
            f"exit code {outcome.exit_code}" if outcome.exit_code != 0 else "exited before the tests finished"
        )


def first_error_line(text: str) -> str:
    """The most telling line of an error output: the last non-blank line of a traceback,
    else the first non-blank line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    if any(ln.startswith("Traceback") for ln in lines):
        return lines[-1][:500]
    return lines[0][:500]


def judge_by_markers(
    outcome: Outcome, failed_markers: Sequence[str], error_markers: Sequence[str] = ()
) -> tuple[Verdict, str]:
    """A verdict for test programs of compiled and scripting languages: passed iff exit 0 and
    the token arrived; otherwise FAILED when the output shows a failed assertion (a line holding
    one of ``failed_markers``), ERROR when it does not (exception, crash, signal). The message is
    that line, else the first line holding one of ``error_markers``, else the first error line."""
    if outcome.timed_out:
        return Verdict.TIMEOUT, "timed out"
    if outcome.exit_code == 0 and outcome.token_seen:
        return Verdict.PASSED, ""
    lines = [ln.strip() for ln in (outcome.stderr + "\n" + outcome.stdout).splitlines() if ln.strip()]
    failed = next((ln for ln in lines if any(m in ln for m in failed_markers)), "")
    if failed:
        return Verdict.FAILED, failed[:500]
    if outcome.exit_code == 0:
        return Verdict.FAILED, "exited with status 0 before the tests finished"
    errored = next((ln for ln in lines if any(m in ln for m in error_markers)), "")
    if errored:
        return Verdict.ERROR, errored[:500]
    if outcome.exit_code is not None and outcome.exit_code < 0:
        return Verdict.ERROR, f"killed by signal {-outcome.exit_code}"
    return Verdict.ERROR, first_error_line(outcome.stderr) or first_error_line(outcome.stdout) or (
        f"exit code {outcome.exit_code}"
    )
