"""The OOM back-off of the transformers backend reaches the store through the pipeline, even
when the run fails after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes import CountingTask, FakeExecutor

from slmbench import pipeline
from slmbench.spec import RunSpec
from slmbench.store import Store

torch = pytest.importorskip("torch")  # the [hf] extra; CI installs it
from slmbench.backends.hf import HFBackend  # noqa: E402

pytestmark = pytest.mark.model


def _spec(seed: int = 0) -> RunSpec:
    # 5 problems x 2 samples, batch of 4: halved to 2 by the first forward pass's OOM
    return RunSpec(
        model="hf:tiny",
        task="counting",
        n=2,
        k=(1,),
        bootstrap=10,
        decoding={"max_new_tokens": 4, "batch_size": 4, "seed": seed},
    )


def _failing(backend: HFBackend, monkeypatch: pytest.MonkeyPatch, *, fail_at: int | None = None) -> dict[str, int]:
    """The first forward pass raises the real OOM type; pass ``fail_at`` to crash on that call."""
    forward = backend.model.forward
    calls = {"n": 0}

    def patched(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        if calls["n"] == fail_at:
            raise RuntimeError("the machine fell over")
        return forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", patched)
    return calls


def _backoffs(store: Store, run_id: str) -> list[tuple[int, int]]:
    return [(e["batch_size_from"], e["batch_size_to"]) for e in store.events(run_id) if e["event"] == "oom_backoff"]


def test_oom_backoff_is_stored_with_the_run(qwen2_dir: Path, tmp_path: Path, monkeypatch) -> None:
    backend = HFBackend(str(qwen2_dir))
    _failing(backend, monkeypatch)
    with Store(tmp_path / "s.db") as store:
        summary = pipeline.run(_spec(), store, backend=backend, executor=FakeExecutor(), task=CountingTask())
        assert store.counts(summary.run_id)["generations"] == 10
        assert _backoffs(store, summary.run_id) == [(4, 2)]
        # the same backend in a second run (as in a study): the first run's event is not repeated
        again = pipeline.run(_spec(seed=1), store, backend=backend, executor=FakeExecutor(), task=CountingTask())
        assert again.run_id != summary.run_id
        assert _backoffs(store, again.run_id) == []
        assert _backoffs(store, summary.run_id) == [(4, 2)]


# call 3: before any sample is finished; call 12: after some are stored
@pytest.mark.parametrize("fail_at", [3, 12])
def test_oom_backoff_is_stored_when_the_run_crashes_afterwards(
    qwen2_dir: Path, tmp_path: Path, monkeypatch, fail_at: int
) -> None:
    backend = HFBackend(str(qwen2_dir))
    calls = _failing(backend, monkeypatch, fail_at=fail_at)
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(RuntimeError, match="fell over"):
            pipeline.run(_spec(), store, backend=backend, executor=FakeExecutor(), task=CountingTask())
        assert calls["n"] == fail_at
        (run,) = store.runs()
        assert _backoffs(store, run.run_id) == [(4, 2)]
        stored = store.counts(run.run_id)["generations"]
        assert (stored == 0) if fail_at == 3 else (0 < stored < 10)
