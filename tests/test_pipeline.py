from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.fakes import CountingTask, FakeExecutor, ScriptedBackend

from slmbench import pipeline
from slmbench.metrics.passk import pass_at_k
from slmbench.spec import RunSpec
from slmbench.store import Store
from slmbench.types import Usage


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


class _MeteredBackend(ScriptedBackend):
    """Every sample costs 2 J, 0.5 s and 4 tokens."""

    def generate(self, requests, decoding):
        for c in super().generate(requests, decoding):
            usage = Usage(completion_tokens=4, latency_s=0.5, energy_j=2.0)
            yield dataclasses.replace(c, usage=usage)


def test_efficiency_describes_the_samples_that_were_scored(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:

        def run(n: int, **kw):
            spec = RunSpec(model="scripted", task="counting", n=n, bootstrap=0, **kw)
            return pipeline.run(spec, store, backend=_MeteredBackend(), executor=FakeExecutor(), task=CountingTask())

        big = run(6)
        assert big.efficiency["samples"] == 30 and big.efficiency["energy_j"] == pytest.approx(60.0)
        # fewer samples and problems than the store holds: the figures follow the scores
        small = run(3, limit=2)
        assert {s.metric: s.n_problems for s in small.scores}["pass@1"] == 2
        eff = small.efficiency
        assert eff["samples"] == 6 and eff["completion_tokens"] == 24
        assert eff["energy_j"] == pytest.approx(12.0)
        assert eff["energy_per_problem_j"] == pytest.approx(6.0)  # 3 samples x 2 J
        assert eff["generation_time_s"] == pytest.approx(3.0)


class _LimitsSeen(FakeExecutor):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: set[float] = set()

    def run(self, requests):
        requests = list(requests)
        self.timeouts.update(r.limits.timeout_s for r in requests)
        return super().run(requests)


def test_other_execution_limits_execute_again_but_do_not_generate_again(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        first, _, _ = _run(store, n=3, execution={"timeout_s": 0.5})
        # workers only change the speed: the verdicts stand
        same, backend, executor = _run(store, n=3, execution={"timeout_s": 0.5, "workers": 3})
        assert backend.generated == [] and executor.ran == []
        # a raised time limit: verdicts made under the old one would be reported as the new one's
        backend, executor = ScriptedBackend(), _LimitsSeen()
        spec = RunSpec(model="scripted", task="counting", n=3, bootstrap=200, execution={"timeout_s": 5.0})
        again = pipeline.run(spec, store, backend=backend, executor=executor, task=CountingTask())
        assert again.run_id == first.run_id
        assert backend.generated == [] and len(executor.ran) == 15
        assert executor.timeouts == {5.0}
        resets = [e for e in store.events(again.run_id) if e["event"] == "executions_reset"]
        assert len(resets) == 1 and resets[0]["from"]["timeout_s"] == 0.5 and resets[0]["to"]["timeout_s"] == 5.0
        assert store.counts(again.run_id)["executions"] == 15
        assert {s.metric: s.value for s in again.scores} == {s.metric: s.value for s in first.scores}


def test_the_executor_gets_the_speed_settings_of_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict] = []

    class Recording(FakeExecutor):
        def __init__(self, **kwargs: object) -> None:
            super().__init__()
            made.append(kwargs)

    monkeypatch.setattr("slmbench.execution.pool.Executor", Recording)
    execution = {"workers": 3, "dedupe": False, "shared_builds": False}
    spec = RunSpec(model="scripted", task="counting", n=2, bootstrap=0, execution=execution)
    with Store(tmp_path / "s.db") as store:
        pipeline.run(spec, store, backend=ScriptedBackend(), task=CountingTask())
        # speed settings only: the run is not executed again under other ones
        same = RunSpec(model="scripted", task="counting", n=2, bootstrap=0)
        pipeline.run(same, store, backend=ScriptedBackend(), task=CountingTask())
    assert made == [{"workers": 3, "sandbox": "default", "dedupe": False, "shared_builds": False}]


def test_the_machine_record_names_its_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slmbench.environment import machine

    fake = tmp_path / "nvidia-smi"  # answers the query as the real one does
    fake.write_text("#!/bin/sh\necho 'NVIDIA A100-SXM4-80GB, 81920 MiB, 550.54.15'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert machine()["gpus"] == [{"name": "NVIDIA A100-SXM4-80GB", "memory": "81920 MiB", "driver": "550.54.15"}]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert machine()["gpus"] == []  # no GPU: said so, not left out


def _model_dir(root: Path, weights: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "qwen2"}')
    (root / "model.safetensors").write_bytes(weights)
    return root


def test_a_local_model_is_known_by_its_files_not_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = bytes(range(256)) * (3 * 4096 + 7)  # > 2 MiB: only its ends are hashed
    first, retrained = tmp_path / "a", tmp_path / "b"
    _model_dir(first / "model", big)
    _model_dir(retrained / "model", big[:-1] + b"\x00")  # one byte differs, at the end
    with Store(tmp_path / "s.db") as store:

        def run_in(folder: Path):
            monkeypatch.chdir(folder)  # the same relative path, other weights
            backend = ScriptedBackend()
            spec = RunSpec(model="hf:./model", task="counting", n=2, bootstrap=0)
            summary = pipeline.run(spec, store, backend=backend, executor=FakeExecutor(), task=CountingTask())
            return summary, backend

        one, _ = run_in(first)
        two, backend = run_in(retrained)
        assert two.run_id != one.run_id and len(backend.generated) == 10  # not the other model's samples
        again, backend = run_in(first)
        assert again.run_id == one.run_id and backend.generated == []
    # a copy of the same files is the same model; a hub id (no such path here) keeps a stable id
    copy = _model_dir(tmp_path / "copy", big)
    fingerprint = pipeline.local_model_fingerprint
    assert fingerprint(copy) == fingerprint(first / "model") != fingerprint(retrained / "model")
    hub = RunSpec(model="hf:Qwen/Qwen2.5-Coder-1.5B", task="counting")
    assert pipeline.resolve_spec(hub) == hub and hub.model_checksum is None
