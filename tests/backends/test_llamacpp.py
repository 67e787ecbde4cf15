"""The llama.cpp backend on a tiny GGUF model written by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmbench.backends.base import GenerationRequest
from slmbench.errors import UserError
from slmbench.spec import DecodingSpec
from slmbench.tasks.base import truncate_at_stop
from slmbench.types import Problem

pytest.importorskip("llama_cpp")  # the [llamacpp] extra; CI installs it
from slmbench.backends.llamacpp import LlamaCppBackend  # noqa: E402

pytestmark = pytest.mark.model

PROMPT = "def add(a, b):\n"


def req(samples, stops=(), pid="p/0") -> GenerationRequest:
    return GenerationRequest(Problem("t", pid, PROMPT, entry_point="add"), PROMPT, tuple(samples), tuple(stops))


@pytest.fixture(scope="module")
def llm(gguf_path: Path):
    backend = LlamaCppBackend(str(gguf_path), {"n_ctx": "512", "n_threads": "1"})
    yield backend
    backend.close()


def gen(backend, requests, **decoding):
    return {(c.problem_id, c.sample): c for c in backend.generate(requests, DecodingSpec(**decoding))}


def test_generates_seeded_samples_with_usage(llm: LlamaCppBackend) -> None:
    a = gen(llm, [req(range(3))], max_new_tokens=16, seed=3)
    b = gen(llm, [req([2, 1, 0])], max_new_tokens=16, seed=3)
    c = gen(llm, [req(range(3))], max_new_tokens=16, seed=4)
    assert {k: v.text for k, v in a.items()} == {k: v.text for k, v in b.items()}
    assert {k: v.text for k, v in a.items()} != {k: v.text for k, v in c.items()}
    for comp in a.values():
        u = comp.usage
        assert u.prompt_tokens is not None and u.prompt_tokens > 3
        assert u.completion_tokens == 16 and comp.finish_reason == "length"
        assert u.latency_s is not None and u.ttft_s is not None and 0 < u.ttft_s <= u.latency_s
        assert u.peak_memory_bytes is not None and u.peak_memory_bytes > 1_000_000
    info = llm.info()
    assert info.parameters is not None and info.parameters > 100_000
    assert info.dtype == "F32" and info.extra["architecture"] == "llama"
    assert info.load_time_s is not None and info.load_time_s > 0


def test_stop_sequences_cut_exactly(llm: LlamaCppBackend) -> None:
    free = gen(llm, [req(range(6))], max_new_tokens=32)
    texts = [c.text for c in free.values()]
    # a two-character string present in some samples, not at their start
    stop = next(
        s
        for t in texts
        for s in (t[i : i + 2] for i in range(1, len(t) - 1))
        if s.strip() and not all(s in x for x in texts)
    )
    cut = gen(llm, [req(range(6), [stop])], max_new_tokens=32)
    for key, c in cut.items():
        assert c.text == truncate_at_stop(free[key].text, [stop])
        assert c.finish_reason == ("stop" if stop in free[key].text else "length")


def test_chat_uses_the_gguf_template(llm: LlamaCppBackend, gguf_path: Path) -> None:
    chat = LlamaCppBackend(str(gguf_path), {"n_ctx": "512", "n_threads": "1"}, chat=True)
    try:
        (c,) = chat.generate([req([0])], DecodingSpec(max_new_tokens=8))
        assert chat.form == "program" and c.form in {"program", "continuation"}
        assert c.usage.prompt_tokens > 40  # the instruction in the ChatML template, not the bare prompt
        assert c.text.strip() in c.usage.extra["chat_answer"]
    finally:
        chat.close()


def test_missing_file_and_bad_args(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="GGUF file not found"):
        LlamaCppBackend(str(tmp_path / "nope.gguf")).info()
    with pytest.raises(UserError, match="unknown --model-args"):
        LlamaCppBackend("x.gguf", {"ctx": "5"})
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(UserError, match="cannot load"):
        LlamaCppBackend(str(bad)).info()


def test_non_integer_arguments_are_user_errors() -> None:
    for key, value in (
        ("n_gpu_layers", "all"),
        ("n_ctx", "4k"),
        ("n_threads", "0"),
        ("n_batch", "-2"),
        ("n_gpu_layers", "--5"),
    ):
        with pytest.raises(UserError, match=f"{key}={value!r}"):
            LlamaCppBackend("m.gguf", {key: value})
    LlamaCppBackend("m.gguf", {"n_gpu_layers": "-1", "n_ctx": "2048"})
