"""Errors a user can cause: one line on stderr naming what to do, exit code 2, no traceback,
and nothing half-written presented as a result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def slmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmbench", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_unknown_task_suggests_the_closest(tmp_path: Path) -> None:
    proc = slmbench("run", "--model", "reference", "--task", "humaneva", "--store", "s.db", cwd=tmp_path)
    assert_user_error(proc, "unknown task 'humaneva'", "did you mean humaneval")


def test_unknown_backend(tmp_path: Path) -> None:
    proc = slmbench("run", "--model", "nosuch:thing", "--task", "humaneval", "--limit", "1", cwd=tmp_path)
    assert_user_error(proc, "unknown backend 'nosuch'")


def test_unreadable_data_dir(tmp_path: Path) -> None:
    proc = slmbench(
        "run", "--model", "reference", "--task", "humaneval", "--data-dir", str(tmp_path / "missing"), cwd=tmp_path
    )
    assert_user_error(proc, "missing", "--data-dir")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n", "0"], "n"),
        (["--k", "1,x"], "--k"),
        (["--model-args", "dtype"], "key=value"),
        (["--temperature", "-1"], "temperature"),
    ],
)
def test_invalid_options(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = slmbench("run", "--model", "reference", "--task", "humaneval", *args, cwd=tmp_path)
    assert_user_error(proc, needle)


def test_missing_samples_file(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = slmbench("score", "--samples", "nope.jsonl", "--task", "humaneval", "--output", str(out), cwd=tmp_path)
    assert_user_error(proc, "nope.jsonl")
    assert not out.exists()


def test_show_without_store(tmp_path: Path) -> None:
    proc = slmbench("show", "--store", "absent.db", cwd=tmp_path)
    assert_user_error(proc, "absent.db")


def test_foreign_store(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database")
    proc = slmbench("run", "--model", "reference", "--task", "humaneval", "--store", "notes.db", cwd=tmp_path)
    assert_user_error(proc, "not an SQLite database")
    assert (tmp_path / "notes.db").read_text() == "not a database"


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        (['{"task_id": "HumanEval/0", "completion": "    return 1\\n"}', "{not json"], ["bad.jsonl:2", "JSON"]),
        (['{"task_id": "HumanEval/9999", "completion": "x"}'], ["bad.jsonl:1", "HumanEval/9999"]),
        (['{"task_id": "HumanEval/0"}'], ["bad.jsonl:1", "completion"]),
    ],
)
def test_malformed_samples_file_leaves_no_run_behind(tmp_path: Path, lines: list[str], needles: list[str]) -> None:
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "results.json"
    proc = slmbench(
        "score",
        "--samples",
        "bad.jsonl",
        "--task",
        "humaneval",
        "--n",
        "1",
        "--store",
        "s.db",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert_user_error(proc, *needles)
    assert not out.exists()
    if (tmp_path / "s.db").exists():
        import sqlite3

        db = sqlite3.connect(tmp_path / "s.db")
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        db.close()
