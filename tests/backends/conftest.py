"""Fixtures: tiny random-weight models saved to disk (built once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.backends.models import build_model, train_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_tokenizer(512)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {arch: build_model(root / arch, arch, tokenizer=tiny_tokenizer) for arch in ("qwen2", "llama", "gpt2")}


@pytest.fixture(scope="session")
def qwen2_dir(model_dirs: dict[str, Path]) -> Path:
    return model_dirs["qwen2"]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # the test machine is shared: torch's intra-op threads spinning against other processes make
    # tiny models 20x slower, so the tests run torch single-threaded
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def gguf_path(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")  # CI installs it (see the backends' test requirements)
    from tests.backends.models import write_gguf

    return write_gguf(model_dirs["llama"], tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")
