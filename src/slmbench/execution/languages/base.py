"""The Language interface: how to build and run one language's test programs.

The executor owns isolation, limits, parallelism and the build cache; a Language only says
which toolchain it needs, how to turn a source file into something runnable (once per distinct
program), what command runs it, and how to read the outcome. Adding a language is one file in
this folder plus one line in ``__init__.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

from slmbench.types import Verdict


@dataclass(frozen=True)
class Tool:
    """One executable a language needs, and how to get it."""

    executable: str
    version_args: tuple[str, ...] = ("--version",)
    install: str = ""  # exact command that installs it on Debian/Ubuntu

    def path(self) -> str | None:
        return shutil.which(self.executable)

    def version(self) -> str | None:
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


class Language(ABC):
    name: ClassVar[str]
    source_file: ClassVar[str]  # file name the program is written to in its work dir
    tools: ClassVar[tuple[Tool, ...]] = ()

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
