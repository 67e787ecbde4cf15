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


@pytest.mark.parametrize("model", ["hf:", "hf", "openai:", "llamacpp: ", "vllm"])
def test_runtime_without_a_model_says_so(tmp_path: Path, model: str) -> None:
    # not "cannot load model 'hf'" after a hub lookup, nor a minute of retries against no server
    proc = slmbench("run", "--model", model, "--task", "humaneval", "--limit", "1", "--store", "s.db", cwd=tmp_path)
    assert_user_error(proc, "names no model", "e.g. --model")
    import sqlite3

    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0  # refused before a run was recorded
    db.close()


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


# ---- the command line parser's own errors (typer/click), on every command ------------------
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--nosuch"], ["No such option: --nosuch", "run --help"]),
        (["run", "--model", "reference", "--task", "humaneval", "--n", "abc"], ["'--n'", "'abc'", "run --help"]),
        (["score", "--nosuch"], ["No such option: --nosuch", "score --help"]),
        (["score", "--samples", "s.jsonl", "--task", "humaneval", "--limit", "x"], ["'--limit'", "'x'"]),
        (["show", "--nosuch"], ["No such option: --nosuch", "show --help"]),
        (["list", "--nosuch"], ["No such option: --nosuch", "list --help"]),
        (["selftest", "--nosuch"], ["No such option: --nosuch", "selftest --help"]),
        (["selftest", "--task", "humaneval", "--workers", "many"], ["'--workers'", "'many'"]),
        (["doctor", "--nosuch"], ["No such option: --nosuch", "doctor --help"]),
        (["study", "run", "--nosuch"], ["No such option: --nosuch", "study run --help"]),
        (["study", "run", "s.toml", "--data-dir"], ["'--data-dir' requires an argument"]),
        (["study", "report", "--nosuch"], ["No such option: --nosuch", "study report --help"]),
        (["study", "nosuch"], ["No such command 'nosuch'"]),
        (["run", "--task", "humaneval"], ["Missing option '--model'"]),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    proc = slmbench(*args, cwd=tmp_path)
    assert_user_error(proc, *needles)
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing ran: no store, no results


def test_help_and_version_still_exit_zero(tmp_path: Path) -> None:
    for args in (["run", "--help"], ["study", "run", "--help"], ["--version"]):
        proc = slmbench(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout and proc.stderr == ""


@pytest.mark.parametrize("model", ["replay:gens.jsonl", "replay"])
def test_run_with_the_replay_backend_points_to_score(tmp_path: Path, model: str) -> None:
    proc = slmbench("run", "--model", model, "--task", "humaneval", "--store", "s.db", cwd=tmp_path)
    target = model.partition(":")[2] or "FILE"
    assert_user_error(proc, f"slmbench score --samples {target} --task humaneval")
    assert "pass --task" not in proc.stderr
    assert not (tmp_path / "s.db").exists()


def test_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    # a real SIGINT in the middle of the command (typer turns it into exit code 130 on its own)
    code = (
        "import os, signal, time\n"
        "import slmbench.pipeline as pipeline\n"
        "def interrupted(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "pipeline.run = interrupted\n"
        "from slmbench.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "--model", "reference", "--task", "humaneval", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "interrupted: re-run the same command to resume" in proc.stderr


def test_unwritable_output_fails_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "file").write_text("")
    base = ("run", "--model", "reference", "--task", "humaneval", "--limit", "1", "--n", "1", "--store", "s.db")
    proc = slmbench(*base, "--output", "results", cwd=tmp_path)
    assert_user_error(proc, "--output results is a directory")
    proc = slmbench(*base, "--output", "file/r.json", cwd=tmp_path)  # its folder would be a file
    assert_user_error(proc, "--output file/r.json")
    assert not (tmp_path / "s.db").exists()  # nothing ran: the error came first, not after the work
    assert slmbench(*base, "--quiet", cwd=tmp_path).returncode == 0
    assert_user_error(slmbench("show", "humaneval", "--store", "s.db", "-o", "results", cwd=tmp_path), "directory")
    # the listing has no results file: saying so beats silently writing nothing
    assert_user_error(slmbench("show", "--store", "s.db", "-o", "list.json", cwd=tmp_path), "--output needs a RUN")


def test_reference_on_a_task_without_solutions_is_refused(tmp_path: Path, data_dir: Path) -> None:
    # MultiPL-E ships tests only: "pass@1 = 0.000" from empty answers would read as a broken harness
    args = ["--task", "multiple-php", "--limit", "2", "--n", "1", "--store", "s.db", "--data-dir", str(data_dir)]
    proc = slmbench("run", "--model", "reference", *args, cwd=tmp_path)
    assert_user_error(proc, "multiple-php has no reference solutions", "selftest --task multiple-php")
    import sqlite3

    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    db.close()
