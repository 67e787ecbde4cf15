"""Mercury: the hub schema (through the fixtures in tests/fixtures/mercury), pass@k and Beyond@k."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slmbench.data import DataSource
from slmbench.errors import UserError
from slmbench.tasks import TASKS, create_task
from slmbench.tasks import mercury as mercury_module
from slmbench.tasks.base import ProblemOutcomes, SampleOutcome
from slmbench.tasks.mercury import Mercury
from slmbench.types import Completion

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mercury"
FIXTURE_FILE = FIXTURES / "mercury" / "Mercury_eval.jsonl"
# bigcode-evaluation-harness bigcode_eval/tasks/mercury.py
HARNESS_STOP_WORDS = [
    "\nclass",
    "\ndef",
    "\n#",
    "\n@",
    "\nprint",
    "\nif",
    "\n```",
    "<file_sep>",
    "<｜end▁of▁sentence｜>",
]


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE_FILE.read_text().splitlines() if line]


@pytest.fixture()
def task(tmp_path: Path) -> Mercury:
    return create_task("mercury", source=DataSource(data_dir=FIXTURES), cache_dir=tmp_path / "cache")


def test_loads_the_hub_schema_with_the_harness_prompt_and_stops(task: Mercury) -> None:
    assert TASKS.get("mercury") is Mercury
    rows = fixture_rows()
    problems = task.problems()
    assert [p.problem_id for p in problems] == [r["slug_name"] for r in rows]
    p, row = problems[0], rows[0]
    assert task.prompt(p) == f"'''{row['pretty_content'][0]}'''\n{row['prompt']}"
    assert list(task.stop_sequences) == HARNESS_STOP_WORDS
    assert p.entry_point == "twoSum" and p.meta["difficulty"] == "Easy"
    assert len(p.meta["solutions"]) == 3 and p.reference == row["solutions"][0]["solution"]
    body = "seen = {}\n        return [0, 1]"
    assert task.postprocess(p, Completion(p.problem_id, 0, body), "continuation") == task.prompt(p) + body
    assert task.headline_metrics([1, 5]) == ["pass@1", "beyond@1", "pass@5", "beyond@5"]


def test_hub_rows_go_through_the_same_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="Mercury data not found"):
        Mercury(DataSource(data_dir=tmp_path)).problems()
    calls = []

    def fake_hub(path, *, name=None, split, source):
        calls.append((path, split))
        return fixture_rows()

    monkeypatch.setattr(mercury_module, "load_hub_dataset", fake_hub)
    hub = Mercury(DataSource(data_dir=tmp_path, allow_download=True))
    local = Mercury(DataSource(data_dir=FIXTURES))
    assert calls == [] and [p.problem_id for p in hub.problems()] == [p.problem_id for p in local.problems()]
    assert calls == [("Elfsong/Mercury", "eval")]
    assert [p.prompt for p in hub.problems()] == [p.prompt for p in local.problems()]


def test_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    rows = fixture_rows()
    rows[1]["test_cases"] = "[{not json"
    (tmp_path / "mercury").mkdir()
    path = tmp_path / "mercury" / "Mercury_eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"{path}:2: test_cases is not valid JSON"):
        Mercury(DataSource(data_dir=tmp_path)).problems()
    del rows[1]["test_cases"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"{path}:2: missing field\(s\) test_cases"):
        Mercury(DataSource(data_dir=tmp_path)).problems()


def _run(executor, task: Mercury, problem, solutions: list[str]) -> ProblemOutcomes:
    requests = {}
    for i, code in enumerate(solutions):
        req = task.programs(problem, code)["test"]
        requests[str(i)] = dataclasses.replace(req, key=str(i))
    results = {r.key: r for r in executor.run(list(requests.values()))}
    return ProblemOutcomes(problem, [SampleOutcome(i, s, {"test": results[str(i)]}) for i, s in enumerate(solutions)])


def test_beyond_ranks_a_slow_correct_solution_below_a_fast_one(task: Mercury) -> None:
    from slmbench.execution.pool import Executor

    with Executor(workers=0, dedupe=False) as ex:
        task.executor = ex
        problems = task.problems()
        fast = [_run(ex, task, p, [p.meta["solutions"][0]] * 2) for p in problems]
        slow = [_run(ex, task, p, [p.meta["solutions"][-1]] * 2) for p in problems]
        wrong_code = [task.selftest_cases(p)[-1][1] for p in problems]
        wrong = [_run(ex, task, p, [w] * 2) for p, w in zip(problems, wrong_code, strict=True)]
        by_model = {}
        for label, outs in (("fast", fast), ("slow", slow), ("wrong", wrong)):
            by_model[label] = {(s.metric, s.problem_id): s.value for s in task.score(outs, [1, 2], bootstrap=50)}
    for p in problems:
        pid = p.problem_id
        assert by_model["fast"][("pass@1", pid)] == 1.0 and by_model["slow"][("pass@1", pid)] == 1.0
        assert by_model["fast"][("beyond@1", pid)] > by_model["slow"][("beyond@1", pid)] + 0.3, pid
        assert by_model["wrong"][("pass@1", pid)] == 0.0 and by_model["wrong"][("beyond@1", pid)] == 0.0
    assert by_model["fast"][("beyond@1", None)] > 0.7 > 0.3 > by_model["slow"][("beyond@1", None)]
    assert by_model["fast"][("beyond@2", None)] >= by_model["fast"][("beyond@1", None)]

    # reference runtimes were measured once and cached per machine: no executor needed again
    cached = json.loads(task.reference_cache_path().read_text())
    assert set(cached) == {p.problem_id for p in problems}
    assert all(len(cached[p.problem_id]) == len(p.meta["solutions"]) for p in problems)

    class NoRuns:
        def run(self, requests):
            raise AssertionError("reference solutions were measured again")

    again = create_task("mercury", source=task.source, cache_dir=task.cache_dir, executor=NoRuns())
    assert again.reference_runtimes() == cached


@pytest.mark.slow
def test_selftest_cases_cover_every_reference_and_a_wrong_answer(task: Mercury) -> None:
    from slmbench.execution.pool import Executor
    from slmbench.selftest import selftest_task

    with Executor(workers=0) as ex:
        report = selftest_task(task, ex)
    assert report.ok
    counts = report.counts()
    assert counts["wrong"] == (4, 4) and counts["reference#0"] == (4, 4) and counts["reference#1"] == (4, 4)
