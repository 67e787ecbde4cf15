"""The main commands end to end on real data: the reference backend is the pipeline's self-check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def slmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmbench", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_reference_run_passes_every_humaneval_problem(tmp_path: Path) -> None:
    proc = slmbench(
        "run",
        "--model",
        "reference",
        "--task",
        "humaneval",
        "--n",
        "1",
        "--k",
        "1",
        "--quiet",
        "--output",
        "r.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n_problems"] == 164
    assert result["scores"]["pass@1"]["value"] == 1.0
    assert len(result["per_problem"]) == 164

    shown = slmbench("show", result["run_id"], "--output", "shown.json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "pass@1" in shown.stdout and "1.000" in shown.stdout
    assert json.loads((tmp_path / "shown.json").read_text())["scores"] == result["scores"]

    listed = slmbench("show", cwd=tmp_path)
    assert result["run_id"] in listed.stdout


def test_default_k_beyond_n_is_dropped_with_a_note(tmp_path: Path) -> None:
    args = ("run", "--model", "reference", "--task", "humaneval", "--n", "2", "--limit", "3", "-o", "r.json")
    proc = slmbench(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "pass@5, pass@10 dropped" in proc.stdout
    assert set(json.loads((tmp_path / "r.json").read_text())["scores"]) == {"pass@1"}
    quiet = slmbench(*args, "--quiet", cwd=tmp_path)
    assert quiet.stdout == "" and "pass@5, pass@10 dropped" in quiet.stderr


def test_list_names_tasks_backends_and_languages(tmp_path: Path) -> None:
    proc = slmbench("list", cwd=tmp_path)
    assert proc.returncode == 0
    for name in ("humaneval", "reference", "replay", "python"):
        assert name in proc.stdout


def test_results_json_is_complete_and_show_keeps_the_dropped_k(tmp_path: Path) -> None:
    args = ("run", "--model", "reference", "--task", "humaneval", "--n", "2", "--limit", "2", "-q", "-o", "r.json")
    assert slmbench(*args, cwd=tmp_path).returncode == 0
    ran = json.loads((tmp_path / "r.json").read_text())
    shown_proc = slmbench("show", ran["run_id"], "-o", "shown.json", cwd=tmp_path)
    assert shown_proc.returncode == 0, shown_proc.stderr
    # `show` reads the run back from the store: k dropped then are still dropped, and said so
    assert "pass@5, pass@10 dropped" in shown_proc.stdout
    shown = json.loads((tmp_path / "shown.json").read_text())
    for result in (ran, shown):
        assert result["dropped_k"] == [5, 10]
        # what a reader of the file needs to trust and reproduce the figures
        assert result["spec"]["n"] == 2 and result["spec"]["k"] == [1, 5, 10]
        assert result["spec"]["decoding"]["temperature"] == 0.2 and result["spec"]["decoding"]["top_p"] == 0.95
        assert len(result["dataset_checksum"]) == 64
        assert result["environment"]["packages"]["slmbench"] and result["environment"]["machine"]["cpu_count"]
        assert result["backend_info"]["backend"] == "reference"
        assert result["status"] == "complete"
        assert {"event": "k_dropped", "k": [5, 10], "n": 2} in [
            {k: v for k, v in e.items() if k != "time"} for e in result["events"]
        ]


def test_a_k_shot_run_is_its_own_run_and_scores_the_problem_itself(tmp_path: Path) -> None:
    # the few-shot ablation (study-protocol.md): examples only add context; the reference
    # answers still make whole programs of each problem's own prompt
    args = ["--model", "reference", "--task", "humanevalpack-python", "--limit", "3", "--n", "1", "--k", "1"]
    runs = {}
    for shots in ("0", "2"):
        out = f"r{shots}.json"
        proc = slmbench("run", *args, "--shots", shots, "--quiet", "--output", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        runs[shots] = json.loads((tmp_path / out).read_text())
    assert runs["2"]["scores"]["pass@1"]["value"] == 1.0 and runs["2"]["n_problems"] == 3
    assert runs["2"]["run_id"] != runs["0"]["run_id"]
