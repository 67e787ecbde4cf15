"""vLLM needs a GPU and the vllm package: without them, one line says what is missing."""

from __future__ import annotations

import importlib.util

import pytest

from slmbench.backends import create_backend
from slmbench.backends.vllm import missing_requirements
from slmbench.errors import UserError


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not missing_requirements(), reason="this machine can run vLLM")
def test_without_gpu_or_vllm_a_one_line_error_names_what_is_missing() -> None:
    backend = create_backend("vllm:Qwen/Qwen2.5-Coder-0.5B")
    with pytest.raises(UserError) as info:
        backend.info()
    message = str(info.value)
    assert "\n" not in message
    if importlib.util.find_spec("vllm") is None:
        assert "vLLM is not installed" in message and "slmbench[vllm]" in message
    if not _has_gpu():
        assert "no CUDA GPU" in message


def test_unknown_arguments_are_rejected_before_loading() -> None:
    with pytest.raises(UserError, match="unknown --model-args for vllm: gpu_mem"):
        create_backend("vllm:m", {"gpu_mem": "0.5"})


def test_request_times_come_from_vllms_stamps_else_the_chunk_wall_time() -> None:
    from types import SimpleNamespace

    from slmbench.backends.vllm import _request_times

    v1 = SimpleNamespace(arrival_time=1e9, queued_ts=100.0, first_token_ts=100.5, last_token_ts=102.0)
    assert _request_times(v1, 9.0) == (2.0, 0.5, "vllm request timestamps")
    v0 = SimpleNamespace(arrival_time=50.0, first_token_time=50.25, finished_time=51.0)
    assert _request_times(v0, 9.0) == (1.0, 0.25, "vllm request timestamps")
    # statistics off: every request of the chunk was submitted together and came back with the last
    latency, ttft, source = _request_times(None, 9.0)
    assert (latency, ttft) == (9.0, None) and source.startswith("chunk wall time")


@pytest.mark.parametrize(
    ("name", "value"),
    [("chunk", "0"), ("chunk", "many"), ("tensor_parallel_size", "-1"), ("max_model_len", "4k"),
     ("gpu_memory_utilization", "90"), ("gpu_memory_utilization", "abc")],
)  # fmt: skip
def test_bad_numbers_are_rejected_before_loading(name: str, value: str) -> None:
    # at construction: on a GPU machine they would otherwise surface as a traceback (a ValueError
    # for chunk=0 too) only after the model had loaded
    with pytest.raises(UserError, match=f"{name}={value!r}"):
        create_backend("vllm:m", {name: value})
    create_backend("vllm:m", {"chunk": "64", "gpu_memory_utilization": "0.5", "max_model_len": "2048"})
