"""The transformers backend on tiny random-weight models loaded from disk."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest

from slmbench.backends.base import GenerationRequest
from slmbench.errors import UserError
from slmbench.metrics.efficiency import summarize
from slmbench.spec import DecodingSpec
from slmbench.tasks.base import truncate_at_stop
from slmbench.types import Problem

torch = pytest.importorskip("torch")  # the [hf] extra; CI installs it
from slmbench.backends.hf import HFBackend, sample_seed  # noqa: E402

pytestmark = pytest.mark.model

PROMPTS = {
    "p/short": "def add(a, b):\n",
    "p/long": 'from typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n    """ Is the balance ever below zero?\n    """\n',
}


def request(pid: str, samples, stops=()) -> GenerationRequest:
    prompt = PROMPTS[pid]
    return GenerationRequest(Problem("t", pid, prompt), prompt, tuple(samples), tuple(stops))


def run(backend, requests, **decoding):
    out = list(backend.generate(requests, DecodingSpec(**decoding)))
    return {(c.problem_id, c.sample): c for c in out}


@pytest.fixture(scope="module")
def qwen(qwen2_dir: Path) -> HFBackend:
    return HFBackend(str(qwen2_dir))


def test_every_requested_sample_once_with_usage(qwen: HFBackend) -> None:
    reqs = [request("p/short", [0, 2, 5]), request("p/long", [1])]
    out = list(qwen.generate(reqs, DecodingSpec(max_new_tokens=12, batch_size=3)))
    assert sorted((c.problem_id, c.sample) for c in out) == [
        ("p/long", 1),
        ("p/short", 0),
        ("p/short", 2),
        ("p/short", 5),
    ]
    tok = qwen.tokenizer
    for c in out:
        u = c.usage
        assert u.prompt_tokens == len(tok(PROMPTS[c.problem_id])["input_ids"])
        assert u.completion_tokens == 12 and c.finish_reason == "length"
        assert u.latency_s is not None and u.latency_s > 0
        assert u.ttft_s is not None and 0 < u.ttft_s
        assert u.peak_memory_bytes is not None and u.peak_memory_bytes > 10_000_000  # RSS of a torch process
        assert u.energy_j is None or u.energy_j >= 0  # RAPL only where readable
    info = qwen.info()
    assert info.parameters == sum(p.numel() for p in qwen.model.parameters())
    assert info.load_time_s is not None and info.load_time_s > 0
    assert (info.device, info.dtype, info.extra["architecture"]) == ("cpu", "float32", "qwen2")


def test_latency_is_the_wall_time_from_submission(qwen: HFBackend) -> None:
    # 6 samples in one batch, no stop sequences: they run side by side and end at the same step
    t0 = time.perf_counter()
    out = list(
        qwen.generate(
            [request("p/short", range(4)), request("p/long", range(2))], DecodingSpec(max_new_tokens=8, batch_size=6)
        )
    )
    elapsed = time.perf_counter() - t0
    for c in out:
        u = c.usage
        assert 0 < u.extra["queue_s"] < u.ttft_s <= u.latency_s <= elapsed
    # concurrent samples each wait for the whole batch: their latencies overlap (the old equal
    # split of each step made them add up to less than the call took)
    assert sum(c.usage.latency_s for c in out) >= elapsed
    # the compute shares do not overlap: they add up to at most the time the last sample took
    compute = [c.usage.extra["compute_s"] for c in out]
    assert all(x > 0 for x in compute) and sum(compute) <= max(c.usage.latency_s for c in out)
    summary = summarize([c.usage for c in out])
    assert summary["generation_time_s"] == pytest.approx(sum(compute))
    assert summary["tokens_per_s"] == pytest.approx(6 * 8 / sum(compute))
    assert summary["p50_latency_s"] >= summary["mean_ttft_s"]


def test_waiting_for_a_place_in_the_batch_counts_in_latency(qwen: HFBackend) -> None:
    # 4 samples of one prompt, 2 places: the last two are admitted when the first two finish
    out = list(qwen.generate([request("p/short", range(4))], DecodingSpec(max_new_tokens=6, batch_size=2)))
    by_admission = sorted((c.usage for c in out), key=lambda u: u.extra["queue_s"])
    first, second = by_admission[:2], by_admission[2:]
    # the second pair waited at least as long as the first pair took, and that wait is in its times
    assert min(u.extra["queue_s"] for u in second) >= max(u.latency_s for u in first)
    assert all(u.extra["queue_s"] < u.ttft_s <= u.latency_s for u in second)


def _stop_in_some(texts: list[str]) -> str:
    """A short string that occurs in some texts but not all, and not at the very start."""
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update({text[i : i + 2] for i in range(1, len(text) - 1)})
    for stop, k in counts.most_common():
        if k < len(texts) and stop.strip():
            return stop
    raise AssertionError("no usable stop string in the free-running samples")


def test_stopping_is_per_sequence_and_exact(qwen: HFBackend) -> None:
    free = run(qwen, [request("p/short", range(6)), request("p/long", range(6))], max_new_tokens=40, batch_size=12)
    stop = _stop_in_some([c.text for c in free.values()])
    cut = run(
        qwen,
        [request("p/short", range(6), [stop]), request("p/long", range(6), [stop])],
        max_new_tokens=40,
        batch_size=12,
    )
    stopped = early = 0
    for key, c in cut.items():
        whole = free[key].text
        # the same token stream, cut exactly at the first occurrence of the stop sequence
        assert c.text == truncate_at_stop(whole, [stop])
        if stop in whole:
            stopped += 1
            assert c.finish_reason == "stop"
            assert c.usage.completion_tokens <= free[key].usage.completion_tokens
            early += c.usage.completion_tokens < 40
        else:  # the others ran on to the token limit
            assert c.finish_reason == "length" and c.usage.completion_tokens == 40 and c.text == whole
    assert 0 < stopped < len(cut)
    assert early > 0  # stopped sequences left the batch before the token limit


def test_same_seed_same_samples(qwen: HFBackend) -> None:
    reqs = [request("p/short", range(4)), request("p/long", range(4))]
    a = run(qwen, reqs, max_new_tokens=16, seed=7)
    b = run(qwen, reqs, max_new_tokens=16, seed=7)
    c = run(qwen, reqs, max_new_tokens=16, seed=8)
    assert {k: v.text for k, v in a.items()} == {k: v.text for k, v in b.items()}
    assert {k: v.text for k, v in a.items()} != {k: v.text for k, v in c.items()}
    assert len({v.text for v in a.values()}) > 1  # samples of one prompt differ from each other
    assert sample_seed(7, "p/short", 0) != sample_seed(7, "p/short", 1)


def test_sample_does_not_depend_on_its_batch(qwen: HFBackend) -> None:
    together = run(qwen, [request("p/short", range(6)), request("p/long", range(3))], max_new_tokens=16, batch_size=9)
    alone = run(qwen, [request("p/short", [4])], max_new_tokens=16, batch_size=1)
    assert alone[("p/short", 4)].text == together[("p/short", 4)].text


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gpt2"])
def test_left_padded_batch_matches_transformers_generate(model_dirs: dict[str, Path], arch: str) -> None:
    backend = HFBackend(str(model_dirs[arch]))
    batched = run(backend, [request("p/short", [0]), request("p/long", [0])], temperature=0.0, max_new_tokens=10)
    tok, model = backend.tokenizer, backend.model
    for pid, prompt in PROMPTS.items():
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        ref = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=10, min_new_tokens=10
        )
        expected = tok.decode(ref[0, ids.shape[1] :])
        assert batched[(pid, 0)].text == expected, f"{arch} {pid}"


def test_samples_share_the_prompt_prefill(qwen: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    model = qwen.model
    shapes: list[tuple[int, int]] = []
    forward = model.forward

    def spy(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    run(qwen, [request("p/short", range(5)), request("p/long", range(5))], max_new_tokens=4, batch_size=10)
    long_len = len(qwen.tokenizer(PROMPTS["p/long"])["input_ids"])
    assert shapes[0] == (2, long_len)  # one prefill row per distinct prompt, left-padded to the longest
    assert all(s == (10, 1) for s in shapes[1:])  # then one token per sequence per step


def test_oom_halves_the_batch_and_the_run_goes_on(qwen2_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = [request("p/short", range(8)), request("p/long", range(4))]
    expected = run(HFBackend(str(qwen2_dir)), reqs, max_new_tokens=8, batch_size=8)
    backend = HFBackend(str(qwen2_dir))
    model = backend.model
    forward = model.forward
    calls = {"n": 0}

    def first_attempt_fails(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", first_attempt_fails)
    got = run(backend, reqs, max_new_tokens=8, batch_size=8)
    assert backend.events()[0]["event"] == "oom_backoff"
    assert (backend.events()[0]["batch_size_from"], backend.events()[0]["batch_size_to"]) == (8, 4)
    assert len(backend.events()) == 1
    assert {k: v.text for k, v in got.items()} == {k: v.text for k, v in expected.items()}
    assert all(c.usage.extra["batch_size"] == 4 for c in got.values())


def test_oom_at_batch_size_one_is_a_user_error(qwen: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def always(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(qwen.model, "forward", always)
    with pytest.raises(UserError, match="out of memory"):
        run(qwen, [request("p/short", [0, 1])], max_new_tokens=4, batch_size=2)
    assert [e["batch_size_to"] for e in qwen.events()][-1:] == [1]


def test_chat_applies_the_template_and_returns_programs(qwen2_dir: Path) -> None:
    backend = HFBackend(str(qwen2_dir), chat=True)
    assert backend.form == "program"
    out = run(backend, [request("p/short", [0, 1], stops=["\n"])], max_new_tokens=20)
    templated = backend.tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    )
    assert templated.startswith("<|im_start|>user")
    for c in out.values():
        assert c.form in {"program", "continuation"}
        answer = c.usage.extra["chat_answer"]
        assert c.usage.prompt_tokens > len(backend.tokenizer(PROMPTS["p/short"])["input_ids"]) + 10
        # the task's stop sequences do not cut a chat answer; the code is taken from the answer
        assert "\n" in answer or c.usage.completion_tokens == 20 or c.finish_reason == "stop"
        assert c.text.strip() in answer


def test_chat_without_template_is_a_user_error(qwen2_dir: Path, tmp_path: Path) -> None:
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(qwen2_dir, plain)
    for name in ("chat_template.jinja", "chat_template.json"):
        (plain / name).unlink(missing_ok=True)
    cfg = plain / "tokenizer_config.json"
    import json

    data = json.loads(cfg.read_text())
    data.pop("chat_template", None)
    cfg.write_text(json.dumps(data))
    with pytest.raises(UserError, match="no chat template"):
        run(HFBackend(str(plain), chat=True), [request("p/short", [0])], max_new_tokens=2)


def test_bad_model_and_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown --model-args"):
        HFBackend("x", {"dtpye": "float16"})
    with pytest.raises(UserError, match="cannot load model"):
        HFBackend(str(tmp_path / "missing")).info()
    with pytest.raises(UserError, match="allow-download"):
        HFBackend("some-org/not-cached-model-xyz").info()
    with pytest.raises(UserError, match="dtype"):
        HFBackend(str(tmp_path), {"dtype": "float7"}).info()


def test_continuous_batching_refills_and_reuses_each_prefill(qwen: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    free = run(qwen, [request("p/short", range(5)), request("p/long", range(5))], max_new_tokens=24, batch_size=10)
    stop = _stop_in_some([c.text for c in free.values()])
    reqs = [request("p/short", range(5), [stop]), request("p/long", range(5), [stop])]
    alone = run(qwen, reqs, max_new_tokens=24, batch_size=1)
    model = qwen.model
    shapes: list[tuple[int, int]] = []
    forward = model.forward

    def spy(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    refilled = run(qwen, reqs, max_new_tokens=24, batch_size=3)
    # sequences admitted into a running batch (left-padded KV merged in) give the same samples
    assert {k: v.text for k, v in refilled.items()} == {k: v.text for k, v in alone.items()}
    assert any(c.finish_reason == "stop" for c in refilled.values())
    prefills = [s for s in shapes if s[1] > 1]
    assert len(prefills) == 2  # one prefill per prompt, although its samples joined at different times
    assert max(s[0] for s in shapes if s[1] == 1) == 3  # never more rows than the batch size


def test_model_arguments_and_models_transformers_rejects_are_user_errors(qwen2_dir: Path, tmp_path: Path) -> None:
    for value in ("abc", "0", "-1"):
        with pytest.raises(UserError, match="batch_size"):
            HFBackend(str(qwen2_dir), {"batch_size": value})
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        HFBackend(str(qwen2_dir), {"device": "tpu"}).info()
    # transformers raises ValueError for these: one line naming the model, not a traceback
    with pytest.raises(UserError, match="cannot load model.*attn_implementation"):
        HFBackend(str(qwen2_dir), {"attn_implementation": "nonsense"}).info()
    with pytest.raises(UserError, match="cannot load model.*device_map"):
        HFBackend(str(qwen2_dir), {"device_map": "nonsense"}).info()
    # a folder whose weights do not fit its config (RuntimeError from the weight loader)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in qwen2_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    config = (broken / "config.json").read_text().replace('"hidden_size": 64', '"hidden_size": 32')
    assert config != (broken / "config.json").read_text()
    (broken / "config.json").write_text(config)
    with pytest.raises(UserError, match="cannot load model"):
        HFBackend(str(broken)).info()
