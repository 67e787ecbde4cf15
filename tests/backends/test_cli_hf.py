"""End to end: `slmbench run --model hf:<tiny model dir>` generates, executes, scores and shows
the efficiency figures beside pass@k."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]


def slmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # shared machine: see conftest's _one_torch_thread
    return subprocess.run(
        [sys.executable, "-m", "slmbench", *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env
    )


def test_run_and_show_with_a_tiny_hf_model(qwen2_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    common = ["--store", str(tmp_path / "s.db")]
    run = slmbench(
        "run", "--model", f"hf:{qwen2_dir}", "--task", "humaneval", "--limit", "3", "--n", "2",
        "--k", "1,2", "--max-new-tokens", "16", "--bootstrap", "0", "--workers", "1",
        "--data-dir", str(data_dir), "--quiet", "--output", str(tmp_path / "out.json"), *common,
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and "Loading" not in run.stderr  # --quiet: no bars, not even the runtime's
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["n_problems"] == 3 and "pass@1" in out["scores"]
    assert 0.0 <= out["scores"]["pass@1"]["value"] <= 1.0  # random weights: almost surely 0, but scored
    eff = out["efficiency"]
    assert eff["samples"] == 6 and eff["completion_tokens"] is not None and 6 <= eff["completion_tokens"] <= 96
    assert eff["tokens_per_s"] > 0 and eff["peak_memory_bytes"] > 0 and eff["parameters"] > 100_000
    assert eff["device"] == "cpu" and eff["load_time_s"] > 0
    assert eff["peak_memory_kind"] == "RSS"  # a CPU run has no VRAM figure
    assert out["backend_info"]["parameters"] == eff["parameters"] and out["spec"]["model"] == f"hf:{qwen2_dir}"
    show = slmbench("show", out["run_id"], *common, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "pass@1" in show.stdout and "tokens_per_s" in show.stdout and "peak_memory_bytes" in show.stdout
