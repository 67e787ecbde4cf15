"""A synthetic study (known values) for table, statistics and report tests."""

from __future__ import annotations

import numpy as np

from slmbench.analysis.results import Efficiency, ModelEntry, PairResult, StudyResults
from slmbench.metrics.passk import bootstrap_ci
from slmbench.types import Score

# (name, parameters, group, base pass rate, replayed)
MODELS = [
    ("tiny-a", 0.5e9, "Group 1", 0.20, False),
    ("tiny-b", 0.9e9, "Group 1", 0.25, False),
    ("mid-a", 3e9, "Group 2", 0.40, False),
    ("mid-b", 4e9, "Group 2", 0.45, True),
    ("big-a", 7e9, "Group 3", 0.60, False),
    ("big-b", 9e9, "Group 3", 0.62, True),
]
BENCHMARKS = ["humaneval", "mbpp", "humanevalpack-js", "humanevalpack-cpp"]
LANGUAGES = {"humaneval": "Python", "humanevalpack-js": "JavaScript", "humanevalpack-cpp": "C++"}
OFFSET = {"humaneval": 0.0, "mbpp": 0.1, "humanevalpack-js": -0.05, "humanevalpack-cpp": -0.1}
N_PROBLEMS = 40


def per_problem(rate: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"P/{i}": float(v) for i, v in enumerate(rng.random(N_PROBLEMS) < rate)}


def synthetic_results(*, with_missing: bool = False) -> StudyResults:
    models = tuple(
        ModelEntry(name, params, "declared", group, "replay" if replayed else "hf", replayed)
        for name, params, group, _, replayed in MODELS
    )
    pairs = []
    for k, (name, params, _group, rate, replayed) in enumerate(MODELS):
        for j, bench in enumerate(BENCHMARKS):
            if with_missing and name == "big-b" and bench == "mbpp":
                continue
            pp = per_problem(rate + OFFSET[bench], seed=100 * k + j)
            vals = list(pp.values())
            low, high = bootstrap_ci(vals, resamples=200, seed=1)
            score = Score("pass@1", float(np.mean(vals)), low, high, N_PROBLEMS, N_PROBLEMS)
            eff = None
            if not replayed:
                eff = Efficiency(
                    samples=N_PROBLEMS,
                    peak_memory_bytes=int(params * 2.2),
                    memory_kind="VRAM",
                    latency_s_per_sample=0.5 + params / 1e10,
                    tokens_per_s=200 - params / 1e8,
                )
            pairs.append(
                PairResult(
                    model=name,
                    task=bench,
                    scores={"pass@1": score},
                    per_problem={"pass@1": pp},
                    efficiency=eff,
                    n=1,
                    n_problems=N_PROBLEMS,
                    published={"pass@1": 43.9} if name == "mid-b" and bench == "humaneval" else {},
                )
            )
    return StudyResults(
        name="synthetic study",
        models=models,
        benchmarks=tuple(BENCHMARKS),
        pairs=tuple(pairs),
        languages=LANGUAGES,
        missing=(("big-b", "mbpp"),) if with_missing else (),
        pareto_benchmark="humaneval",
    )
