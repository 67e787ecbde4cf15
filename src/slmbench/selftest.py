"""``slmbench selftest``: prove that a task's tests and our runners judge correctly.

For every problem, ``Task.selftest_cases`` gives solutions with the expected outcome: the
reference solution must pass, a buggy solution (HumanEvalPack) or a wrong body (MultiPL-E)
must not. They run through the real Executor (same sandbox and limits as a scoring run). A
result that differs from expectation is a failure of the selftest, unless the problem is one of
the task's ``known_exceptions`` (a documented data defect), which is shown but tolerated.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slmbench.console import Reporter, reporter
from slmbench.data import DataSource
from slmbench.types import ExecResult, Verdict

_SEP = "\x1f"


@dataclass(frozen=True)
class CaseResult:
    problem_id: str
    label: str  # "canonical", "buggy", "wrong body", ...
    should_pass: bool
    result: ExecResult

    @property
    def as_expected(self) -> bool:
        return self.result.passed == self.should_pass


@dataclass(frozen=True)
class TaskSelftest:
    task: str
    cases: tuple[CaseResult, ...]
    known_exceptions: Mapping[str, str]
    seconds: float

    @property
    def unexpected(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.as_expected and c.problem_id not in self.known_exceptions]

    @property
    def tolerated(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.as_expected and c.problem_id in self.known_exceptions]

    @property
    def ok(self) -> bool:
        return not self.unexpected

    def counts(self) -> dict[str, tuple[int, int]]:
        """label -> (results as expected, total)."""
        good: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for c in self.cases:
            total[c.label] += 1
            good[c.label] += c.as_expected
        return {label: (good[label], total[label]) for label in total}


@dataclass(frozen=True)
class SelftestReport:
    tasks: tuple[TaskSelftest, ...]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tasks)

    def task(self, name: str) -> TaskSelftest:
        return next(t for t in self.tasks if t.task == name)


def selftest_task(
    task: Any,
    executor: Any,
    *,
    limit: int | None = None,
    problem_ids: Sequence[str] | None = None,
    progress: Reporter | None = None,
) -> TaskSelftest:
    """Run one (already created) task's selftest cases through ``executor``.

    With ``progress``, shows a bar whose total is the number of executions that will run (every
    case times every test suite of its problem), known only once the programs are built."""
    problems = task.problems()
    if problem_ids is not None:
        wanted = set(problem_ids)
        problems = [p for p in problems if p.problem_id in wanted]
    if limit:
        problems = problems[:limit]
    description = f"selftest {task.name}"
    if task.kind == "text":
        return _selftest_text_task(task, problems, progress, description)
    requests = []
    expected: dict[str, tuple[str, str, bool]] = {}
    for problem in problems:
        for label, solution, should_pass in task.selftest_cases(problem):
            for suite, req in task.programs(problem, solution).items():
                key = _SEP.join((problem.problem_id, label, suite))
                expected[key] = (problem.problem_id, label if suite == "test" else f"{label}/{suite}", should_pass)
                requests.append(dataclasses.replace(req, key=key))
    bar = progress.stage(description, len(requests)) if progress is not None else None
    start = time.perf_counter()
    cases = []
    for result in executor.run(requests):
        pid, label, should_pass = expected[result.key]
        cases.append(CaseResult(pid, label, should_pass, result))
        if bar is not None:
            bar.advance(1)
    # results arrive in completion order; report them in problem order
    order = {key: i for i, key in enumerate(expected)}
    cases.sort(key=lambda c: order[c.result.key])
    return TaskSelftest(
        task=task.name,
        cases=tuple(cases),
        known_exceptions=dict(getattr(task, "known_exceptions", {}) or {}),
        seconds=time.perf_counter() - start,
    )


def run_selftest(
    task_names: Sequence[str],
    source: DataSource | None = None,
    *,
    limit: int | None = None,
    workers: int = 0,
    sandbox: str = "default",
    console: Console | None = None,
    executor: Any | None = None,
) -> SelftestReport:
    """Selftest each task, print a table per task, and return the report (``report.ok``)."""
    from slmbench.tasks import create_task

    console = console or Console()
    tasks = [create_task(name, source=source or DataSource()) for name in task_names]
    owned = executor is None
    if executor is None:
        from slmbench.execution.pool import Executor

        executor = Executor(workers=workers, sandbox=sandbox, dedupe=True)
    results = []
    try:
        with reporter(console, quiet=console.quiet) as rep:
            for task in tasks:
                results.append(selftest_task(task, executor, limit=limit, progress=rep))
    finally:
        if owned:
            executor.close()
    report = SelftestReport(tuple(results))
    print_report(report, console)
    return report


def print_report(report: SelftestReport, console: Console) -> None:
    for t in report.tasks:
        table = Table(title=f"selftest {t.task} ({t.seconds:.1f} s)", title_justify="left")
        table.add_column("case")
        table.add_column("expected")
        table.add_column("as expected", justify="right")
        table.add_column("verdicts")
        for label, (good, total) in t.counts().items():
            should = next(c.should_pass for c in t.cases if c.label == label)
            verdicts = Counter(str(c.result.verdict) for c in t.cases if c.label == label)
            table.add_row(
                label,
                "pass" if should else "not pass",
                f"{good}/{total}",
                ", ".join(f"{v} {n}" for v, n in verdicts.most_common()),
            )
        console.print(table)
        for c in t.tolerated:
            console.print(
                f"  known exception {c.problem_id} ({c.label}: {c.result.verdict}): {t.known_exceptions[c.problem_id]}",
                markup=False,
            )
        for c in t.unexpected:
            want = "pass" if c.should_pass else "not pass"
            console.print(
                f"  [red]UNEXPECTED[/red] {escape(c.problem_id)} ({escape(c.label)}) should {want}, "
                f"got {c.result.verdict}: {escape(c.result.message[:200])}",
                highlight=False,
            )
        console.print(
            f"{t.task}: {'ok' if t.ok else f'{len(t.unexpected)} unexpected result(s)'}",
            style="green" if t.ok else "red",
        )


def _selftest_text_task(
    task: Any, problems: Sequence[Any], progress: Reporter | None, description: str
) -> TaskSelftest:
    """Text tasks run nothing: a case "passes" when the task accepts the text against the
    problem's reference (for BLEU tasks: the reference scores 100 against itself)."""
    todo = [(problem, case) for problem in problems for case in task.selftest_cases(problem)]
    bar = progress.stage(description, len(todo)) if progress is not None else None
    start = time.perf_counter()
    cases = []
    for problem, (label, text, should_pass) in todo:
        ok = task.selftest_passes(problem, text)
        detail = f"BLEU {task.sample_bleu(problem, text):.2f}" if hasattr(task, "sample_bleu") else ""
        result = ExecResult(
            key=_SEP.join((problem.problem_id, label)),
            verdict=Verdict.PASSED if ok else Verdict.FAILED,
            message="" if ok else detail,
        )
        cases.append(CaseResult(problem.problem_id, label, should_pass, result))
        if bar is not None:
            bar.advance(1)
    return TaskSelftest(
        task=task.name,
        cases=tuple(cases),
        known_exceptions=dict(getattr(task, "known_exceptions", {}) or {}),
        seconds=time.perf_counter() - start,
    )
