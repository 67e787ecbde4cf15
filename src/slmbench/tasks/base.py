"""The Task interface: what a benchmark must say so the pipeline can run it.

A task loads its problems, builds the prompt the model sees, turns a raw completion into a
*solution* (the whole code the model is credited with: prompt + continuation for base models,
or the program it wrote), and either assembles the test program for that solution
(execution-scored tasks) or names the reference text (BLEU-scored tasks). Scoring is a hook so
that tasks with several test suites (EvalPlus base/plus) or other metrics (Beyond@k, BLEU) fit
the same pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from slmbench.data import DataSource
from slmbench.types import Completion, ExecLimits, ExecRequest, ExecResult, Problem, Score

# How a completion relates to the prompt: "continuation" text follows the prompt (base models),
# "program" text stands alone (instruct models, EvalPlus "solution", BigCode generations.json).
CompletionForm = Literal["continuation", "program"]

DEFAULT_SUITE = "test"


def truncate_at_stop(text: str, stop_sequences: Sequence[str], start: int = 0) -> str:
    """Cut ``text`` at the earliest stop sequence found at or after ``start``.

    Never mutates ``stop_sequences``. An empty stop string is ignored.
    """
    cut = len(text)
    for stop in stop_sequences:
        if not stop:
            continue
        i = text.find(stop, start)
        if i != -1 and i < cut:
            cut = i
    return text[:cut]


@dataclass(frozen=True)
class SampleOutcome:
    """Everything known about one sample when scoring: its solution and its executions by suite."""

    sample: int
    solution: str
    results: Mapping[str, ExecResult] = field(default_factory=dict)

    def passed(self, suite: str = DEFAULT_SUITE) -> bool:
        r = self.results.get(suite)
        return r is not None and r.passed


@dataclass(frozen=True)
class ProblemOutcomes:
    problem: Problem
    samples: Sequence[SampleOutcome]


class Task(ABC):
    """One benchmark. Subclasses register themselves in ``slmbench.tasks``."""

    name: ClassVar[str]
    languages: ClassVar[tuple[str, ...]] = ("python",)
    kind: ClassVar[Literal["execution", "text"]] = "execution"
    description: ClassVar[str] = ""
    # default stop sequences; instances may be configured with others (never mutate the class's)
    default_stop_sequences: ClassVar[tuple[str, ...]] = ()
    # Whether ``prompt(problem, shots>0)`` works (a study checks before it runs). The default
    # shot_examples draws them from the task's own problems: for tasks whose prompt followed by
    # its reference is a whole, known-good solution; a task with an example pool overrides it.
    offers_shots: ClassVar[bool] = False

    def __init__(self, source: DataSource | None = None, *, stop_sequences: Sequence[str] | None = None) -> None:
        self.source = source or DataSource()
        self.stop_sequences: tuple[str, ...] = (
            tuple(stop_sequences) if stop_sequences is not None else self.default_stop_sequences
        )
        self._problems: list[Problem] | None = None
        self._checksum: str | None = None

    # ---- data -------------------------------------------------------------------------
    @abstractmethod
    def load(self) -> tuple[list[Problem], str]:
        """Read the dataset: (problems in dataset order, checksum of what was read)."""

    def problems(self) -> list[Problem]:
        if self._problems is None:
            self._problems, self._checksum = self.load()
        return self._problems

    def dataset_checksum(self) -> str:
        self.problems()
        assert self._checksum is not None
        return self._checksum

    def problem(self, problem_id: str) -> Problem | None:
        index = getattr(self, "_index", None)
        if index is None:
            index = {p.problem_id: p for p in self.problems()}
            self._index = index
        return index.get(problem_id)

    # ---- generation -------------------------------------------------------------------
    def prompt(self, problem: Problem, shots: int = 0) -> str:
        return self.shot_examples(problem, shots) + problem.prompt

    def shot_examples(self, problem: Problem, shots: int) -> str:
        """The text shown before the prompt for ``shots`` solved examples ("" for zero-shot).

        With ``offers_shots``: the first problems of the dataset other than this one, each
        as its prompt followed by its reference solution. The same examples precede every
        problem (but the examples' own), so a k-shot run differs from the zero-shot one only by
        that context. The solution of a sample is still its own prompt plus the continuation."""
        if shots <= 0:
            return ""
        from slmbench.errors import UserError

        if not self.offers_shots:
            raise UserError(f"task {self.name} has no few-shot examples", hint="use --shots 0")
        chosen = [p for p in self.problems() if p.problem_id != problem.problem_id and p.reference][:shots]
        if len(chosen) < shots:
            raise UserError(
                f"task {self.name} has {len(chosen)} problems to show as examples, not {shots}",
                hint=f"use --shots {len(chosen)} or fewer",
            )
        return "".join(p.prompt.rstrip("\n") + "\n" + p.reference.strip("\n") + "\n\n\n" for p in chosen)

    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        """What the `reference` backend emits for this problem (a known-good answer)."""
        return problem.reference, "continuation"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        """Raw completion -> solution. Default: prompt + continuation, or the program as is."""
        if form == "program":
            return completion.text
        return problem.prompt + completion.text

    # ---- scoring ----------------------------------------------------------------------
    # CPU seconds per test run; None keeps ExecLimits' default. Tasks take it as a constructor option.
    timeout_s: float | None = None

    def limits(self, problem: Problem) -> ExecLimits:
        return ExecLimits() if self.timeout_s is None else ExecLimits(timeout_s=self.timeout_s)

    def programs(self, problem: Problem, solution: str, limits: ExecLimits | None = None) -> Mapping[str, ExecRequest]:
        """The test programs to run for one solution, by suite name. Text tasks return {}."""
        if self.kind == "text":
            return {}
        return {DEFAULT_SUITE: self.program(problem, solution, limits or self.limits(problem))}

    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        raise NotImplementedError(f"{type(self).__name__} must implement program() or programs()")

    def score(
        self, outcomes: Sequence[ProblemOutcomes], ks: Sequence[int], bootstrap: int, seed: int = 0
    ) -> list[Score]:
        """Task-level and per-problem scores. Default: pass@k on the single test suite."""
        from slmbench.metrics.passk import passk_scores

        return passk_scores(outcomes, ks, bootstrap=bootstrap, seed=seed, suite=DEFAULT_SUITE)

    # problem_id -> why its reference (or buggy) solution does not behave as expected: a data
    # defect, documented, with the evidence in a test. `slmbench selftest` tolerates exactly these.
    known_exceptions: ClassVar[Mapping[str, str]] = {}

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        """(label, solution, should_pass) triples for `slmbench selftest`: the reference solution
        must pass; a buggy solution (HumanEvalPack's ``meta["buggy_solution"]``) must fail."""
        text, form = self.reference_completion(problem)
        cases = [("canonical", self.postprocess(problem, Completion(problem.problem_id, 0, text), form), True)]
        buggy = problem.meta.get("buggy_solution")
        if buggy:
            cases.append(
                ("buggy", self.postprocess(problem, Completion(problem.problem_id, 0, buggy), "continuation"), False)
            )
        return cases

    def headline_metrics(self, ks: Sequence[int]) -> list[str]:
        """Metric names shown in summary tables, in order."""
        return [f"pass@{k}" for k in ks]
