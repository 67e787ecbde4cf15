"""`slmbench selftest`: expected results pass, anything else is reported and fails the run,
except documented data exceptions."""

from __future__ import annotations

import dataclasses
import io
from typing import ClassVar

import pytest
from rich.console import Console

from slmbench.data import DataSource
from slmbench.execution.pool import Executor
from slmbench.selftest import run_selftest, selftest_task
from slmbench.tasks.base import Task
from slmbench.types import ExecLimits, ExecRequest, Problem, Verdict


class TinyTask(Task):
    """Three problems whose reference/buggy behaviour the test controls."""

    name = "tiny"
    known_exceptions: ClassVar[dict[str, str]] = {}

    def __init__(self, canonical_bodies: dict[str, str], known: dict[str, str] | None = None) -> None:
        super().__init__(DataSource())
        self.bodies = canonical_bodies
        self.known_exceptions = known or {}

    def load(self):
        problems = [
            Problem(
                task=self.name,
                problem_id=pid,
                prompt="def add(a, b):\n",
                reference=body,
                tests="assert add(2, 3) == 5\n",
                meta={"buggy_solution": "    return a - b\n"},
            )
            for pid, body in self.bodies.items()
        ]
        return problems, "tiny"

    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        return ExecRequest(key="", language="python", program=solution + "\n" + problem.tests, limits=limits)


GOOD = "    return a + b\n"


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=2) as ex:
        yield ex


def test_expected_results_make_the_selftest_pass(executor):
    t = selftest_task(TinyTask({"T/0": GOOD, "T/1": GOOD}), executor)
    assert t.ok
    assert t.counts() == {"canonical": (2, 2), "buggy": (2, 2)}
    assert all(c.result.verdict is Verdict.FAILED for c in t.cases if c.label == "buggy")


def test_a_failing_reference_is_unexpected_unless_documented(executor):
    broken = {"T/0": GOOD, "T/1": "    return a * b\n"}
    t = selftest_task(TinyTask(broken), executor)
    assert not t.ok
    assert [(c.problem_id, c.label) for c in t.unexpected] == [("T/1", "canonical")]

    documented = selftest_task(TinyTask(broken, known={"T/1": "its reference multiplies (test data defect)"}), executor)
    assert documented.ok
    assert [(c.problem_id, c.label) for c in documented.tolerated] == [("T/1", "canonical")]


class TwoSuiteTask(TinyTask):
    """Every solution runs two suites; only the first problem has a buggy case (2 cases, then 1)."""

    name = "two-suites"

    def load(self):
        problems, checksum = super().load()
        return [problems[0], *(dataclasses.replace(p, meta={}) for p in problems[1:])], checksum

    def programs(self, problem, solution, limits=None):
        req = self.program(problem, solution, limits or self.limits(problem))
        return {"base": req, "plus": req}


class RecordingReporter:
    """Records each progress stage as [total, advanced]."""

    def __init__(self) -> None:
        self.stages: dict[str, list[int]] = {}

    def stage(self, description: str, total: int):
        record = self.stages[description] = [total, 0]

        class Stage:
            def advance(self, n: int = 1) -> None:
                record[1] += n

        return Stage()


def test_progress_total_is_the_number_of_executions(data_dir, executor):
    rec = RecordingReporter()
    t = selftest_task(TwoSuiteTask({"T/0": GOOD, "T/1": GOOD, "T/2": GOOD}), executor, progress=rec)
    assert t.ok and len(t.cases) == 8  # (2 + 1 + 1 cases) x 2 suites
    assert rec.stages == {"selftest two-suites": [8, 8]}
    # cases are reported in problem order whatever order the executor finishes them in
    assert [c.problem_id for c in t.cases] == ["T/0"] * 4 + ["T/1"] * 2 + ["T/2"] * 2

    from slmbench.tasks import create_task

    text = selftest_task(create_task("codexglue-ruby", source=DataSource(data_dir)), executor, limit=3, progress=rec)
    assert rec.stages["selftest codexglue-ruby"] == [6, 6] == [len(text.cases)] * 2


def test_run_selftest_prints_a_table_per_task_and_reports(data_dir, executor):
    out = io.StringIO()
    console = Console(file=out, width=160)
    report = run_selftest(
        ["humanevalpack-python", "humaneval"],
        DataSource(data_dir=data_dir),
        limit=4,
        console=console,
        executor=executor,
    )
    text = out.getvalue()
    assert report.ok, text
    assert [t.task for t in report.tasks] == ["humanevalpack-python", "humaneval"]
    assert report.task("humanevalpack-python").counts() == {"canonical": (4, 4), "buggy": (4, 4)}
    assert "selftest humanevalpack-python" in text and "selftest humaneval " in text
    assert "4/4" in text


def test_cli_exit_status_follows_the_report(data_dir):
    from typer.testing import CliRunner

    from slmbench.cli import app

    res = CliRunner().invoke(
        app,
        ["selftest", "--task", "humanevalpack-python", "--limit", "2", "--workers", "1", "--data-dir", str(data_dir)],
    )
    assert res.exit_code == 0, res.output
    assert "humanevalpack-python: ok" in res.output


def test_text_tasks_check_bleu_of_the_reference_against_itself(data_dir, executor):
    from slmbench.tasks import create_task

    task = create_task("codexglue-ruby", source=DataSource(data_dir))
    report = selftest_task(task, executor, limit=25)
    assert report.ok
    by_label = {}
    for case in report.cases:
        by_label.setdefault(case.label, set()).add(case.result.verdict)
    assert by_label == {"reference": {Verdict.PASSED}, "empty": {Verdict.FAILED}}
    assert len(report.cases) == 50
