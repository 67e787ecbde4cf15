from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes import CountingTask, FakeExecutor, ScriptedBackend

from slmbench import pipeline
from slmbench.metrics.passk import pass_at_k
from slmbench.spec import RunSpec
from slmbench.store import Store


def _run(store: Store, n: int, **kw):
    backend, executor = ScriptedBackend(), FakeExecutor()
    spec = RunSpec(model="scripted", task="counting", n=n, bootstrap=200, **kw)
    summary = pipeline.run(spec, store, backend=backend, executor=executor, task=CountingTask())
    return summary, backend, executor


def _expected_pass1(n: int) -> float:
    values = []
    for i in range(5):
        c = sum(1 for s in range(n) if (i + s) % 3 == 0)
        values.append(pass_at_k(n, c, 1))
    return sum(values) / len(values)


def test_first_run_generates_executes_and_scores(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        summary, backend, executor = _run(store, n=3, k=(1, 2, 5))
        assert len(backend.generated) == 15 and len(executor.ran) == 15
        scores = {s.metric: s for s in summary.scores}
        assert scores["pass@1"].value == pytest.approx(_expected_pass1(3))
        assert "pass@5" not in scores and summary.dropped_k == [5]
        assert scores["pass@1"].ci_low <= scores["pass@1"].value <= scores["pass@1"].ci_high
        assert store.run(summary.run_id).status == "complete"
        assert any(e["event"] == "k_dropped" for e in store.events(summary.run_id))


def test_rerun_of_a_finished_run_does_no_work(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        first, _, _ = _run(store, n=3)
        again, backend, executor = _run(store, n=3)
        assert backend.generated == [] and executor.ran == []
        assert [(s.metric, s.value) for s in again.scores] == [(s.metric, s.value) for s in first.scores]


def test_more_samples_extend_the_run_without_redoing_the_first(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        first, _, _ = _run(store, n=3)
        more, backend, executor = _run(store, n=6)
        assert more.run_id == first.run_id
        assert sorted({s for _, s in backend.generated}) == [3, 4, 5]
        assert len(executor.ran) == 15
        assert store.counts(more.run_id)["generations"] == 30
        assert {s.metric: s.value for s in more.scores}["pass@1"] == pytest.approx(_expected_pass1(6))
        # asking for fewer samples scores only the first ones again, without generating
        fewer, backend, _ = _run(store, n=3)
        assert backend.generated == []
        assert {s.metric: s.value for s in fewer.scores}["pass@1"] == pytest.approx(_expected_pass1(3))


def test_limit_selects_the_first_problems(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        summary, backend, _ = _run(store, n=2, limit=2)
        assert {p for p, _ in backend.generated} == {"P/0", "P/1"}
        assert summary.n_problems == 2
