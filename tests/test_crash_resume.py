"""SIGKILL a run mid-generation or mid-execution, run it again: same results, no duplicates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
N = 4
PROBLEMS = 164


def _cli(store: Path, model: str, output: Path | None = None) -> list[str]:
    cmd = [sys.executable, str(REPO / "tests" / "slow_cli.py"), "run", "--model", model, "--task", "humaneval"]
    cmd += ["--n", str(N), "--k", "1,2", "--quiet", "--store", str(store), "--bootstrap", "100"]
    if output is not None:
        cmd += ["--output", str(output)]
    return cmd


def _count(store: Path, table: str) -> int:
    if not store.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _rows(store: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(store)
    try:
        return {
            "generations": db.execute(
                "SELECT problem_id, sample, raw, solution FROM generations ORDER BY 1, 2"
            ).fetchall(),
            "executions": db.execute(
                "SELECT problem_id, sample, suite, verdict, message FROM executions ORDER BY 1, 2, 3"
            ).fetchall(),
            "scores": db.execute("SELECT metric, problem_id, value FROM scores ORDER BY 1, 2").fetchall(),
        }
    finally:
        db.close()


def _stray_processes(marker: str) -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            out.append(f"{pid}: {cmdline}")
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("baseline")
    store, output = tmp / "base.db", tmp / "base.json"
    subprocess.run(_cli(store, "reference", output), check=True, timeout=600)
    return _rows(store), json.loads(output.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "table", "threshold"),
    [
        ("slowref", "generations", 60),  # early in generation
        ("slowref", "generations", 400),  # late in generation
        ("reference", "executions", 200),  # during execution
    ],
)
def test_sigkill_then_resume_gives_identical_results(
    tmp_path: Path, uninterrupted: tuple[dict, dict], model: str, table: str, threshold: int
) -> None:
    store = tmp_path / "killed.db"
    proc = subprocess.Popen(_cli(store, model), start_new_session=True)
    deadline = time.monotonic() + 300
    while _count(store, table) < threshold:
        assert proc.poll() is None, f"the run finished before {threshold} {table} were stored: make the test slower"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count(store, table)
    assert killed_at < N * PROBLEMS, "the kill came too late to interrupt anything"
    time.sleep(0.5)
    assert _stray_processes(str(store)) == []

    output = tmp_path / "resumed.json"
    subprocess.run(_cli(store, model, output), check=True, timeout=600)
    base_rows, base_json = uninterrupted
    rows = _rows(store)
    assert len(rows["generations"]) == N * PROBLEMS
    assert len(rows["executions"]) == N * PROBLEMS
    assert rows == base_rows
    resumed = json.loads(output.read_text())
    assert resumed["scores"] == base_json["scores"]
    assert resumed["scores"]["pass@1"]["value"] == 1.0
