"""The plain data that flows between stages.

Every stage (task -> backend -> store -> executor -> metrics) hands these frozen
dataclasses to the next one; nothing else crosses a stage boundary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One benchmark problem, as the task loaded it."""

    task: str
    problem_id: str  # stable id from the dataset, e.g. "HumanEval/0"
    prompt: str  # the text shown to the model (zero-shot form)
    language: str = "python"
    entry_point: str = ""
    reference: str = ""  # canonical solution (completion form) or reference summary
    tests: str = ""  # test code, as the dataset ships it
    # Anything task-specific (buggy solution, atol, test inputs, ...). Not part of equality.
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Usage:
    """What one completion cost. None means "not measured here", never zero."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None  # wall time attributed to this sample
    ttft_s: float | None = None  # time to first token, where streaming
    peak_memory_bytes: int | None = None  # VRAM (GPU) or RSS (CPU) of the model's process
    energy_j: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Completion:
    """One sample of one problem, as a backend produced it (raw, before post-processing)."""

    problem_id: str
    sample: int  # 0-based sample index within the problem
    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "replay" | "reference" | "error"
    usage: Usage = field(default_factory=Usage)
    # "continuation" (follows the prompt) or "program" (stands alone); None = the backend's default
    form: str | None = None


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # ran, tests did not pass
    TIMEOUT = "timeout"
    ERROR = "error"  # crashed before/while testing (syntax error, exception outside tests, killed)
    COMPILE_ERROR = "compile_error"
    SKIPPED = "skipped"  # not run (e.g. toolchain missing); never counted as passed


@dataclass(frozen=True)
class ExecLimits:
    """Resource limits for one sandboxed program."""

    timeout_s: float = 10.0  # CPU seconds for the test run (the verdict-bearing limit)
    wall_timeout_s: float | None = None  # backstop for sleeping programs; default derived from timeout_s
    memory_mb: int = 4096  # address space; numpy needs well over 1 GiB of it
    max_output_bytes: int = 64 * 1024  # per stream, the rest is dropped
    max_file_bytes: int = 64 * 1024 * 1024
    max_processes: int = 64
    compile_timeout_s: float = 60.0  # not charged to timeout_s

    @property
    def wall_s(self) -> float:
        return self.wall_timeout_s if self.wall_timeout_s is not None else max(3 * self.timeout_s, self.timeout_s + 5)


@dataclass(frozen=True)
class ExecRequest:
    """A whole program to run, and how."""

    key: str  # caller's id, echoed in the result (e.g. "HumanEval/0#3")
    language: str  # name in the languages registry
    program: str  # full source text (the task already assembled prompt + completion + tests)
    limits: ExecLimits = field(default_factory=ExecLimits)
    stdin: str = ""
    extra_files: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def digest(self) -> str:
        """Content hash of what is run: equal digests give equal verdicts (used for caching)."""
        import hashlib  # here: the execution worker imports this module, and its forks copy what it holds

        h = hashlib.sha256()
        h.update(self.language.encode())
        h.update(b"\0")
        h.update(self.program.encode())
        h.update(b"\0")
        h.update(self.stdin.encode())
        for name in sorted(self.extra_files):
            h.update(b"\0" + name.encode() + b"\0" + self.extra_files[name].encode())
        return h.hexdigest()


@dataclass(frozen=True)
class ExecResult:
    key: str
    verdict: Verdict
    message: str = ""  # first failure line (assertion, exception, compiler error), "" when passed
    exit_code: int | None = None  # negative: killed by that signal
    cpu_s: float = 0.0  # user + sys CPU of the test run (children included)
    wall_s: float = 0.0
    compile_s: float = 0.0  # build time, charged separately
    stdout: str = ""  # capped
    stderr: str = ""  # capped
    cached: bool = False  # verdict reused from an identical program

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED


@dataclass(frozen=True)
class Score:
    """One metric value of one run on one task (overall or per problem)."""

    metric: str  # "pass@1", "bleu", "beyond@1", "pass@1/plus", ...
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n_problems: int = 0
    n_samples: int = 0
    problem_id: str | None = None  # None for the task-level figure
