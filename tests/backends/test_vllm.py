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
