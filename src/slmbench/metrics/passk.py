"""Unbiased pass@k with bootstrap confidence intervals over problems.

pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al., 2021), computed as a product so that it never
overflows: 1 - prod_{i=n-c+1}^{n} (1 - k/i).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from slmbench.types import Score


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def usable_ks(ks: Sequence[int], n_min: int) -> tuple[list[int], list[int]]:
    """Split ks into those computable with n_min samples per problem and those dropped."""
    kept = [k for k in ks if k <= n_min]
    dropped = [k for k in ks if k > n_min]
    return kept, dropped


def bootstrap_ci(
    values: Sequence[float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the mean of per-problem values (problems resampled)."""
    arr = np.asarray(values, dtype=float)
    if resamples <= 0 or arr.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    stats = arr[idx].mean(axis=1) if statistic is None else statistic(arr[idx])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def passk_from_counts(
    counts: Sequence[tuple[str, int, int]],
    ks: Sequence[int],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    metric_prefix: str = "pass",
    metric_suffix: str = "",
) -> list[Score]:
    """Scores from (problem_id, n, c) triples: one overall Score per usable k (with CI) and one
    per problem per k. ks larger than the smallest n are dropped (the caller reports them)."""
    if not counts:
        return []
    n_min = min(n for _, n, _ in counts)
    kept, _ = usable_ks(ks, n_min)
    scores: list[Score] = []
    for k in kept:
        per_problem = [(pid, pass_at_k(n, c, k), n) for pid, n, c in counts]
        scores += metric_scores(f"{metric_prefix}@{k}{metric_suffix}", per_problem, bootstrap=bootstrap, seed=seed + k)
    return scores


def metric_scores(
    metric: str, per_problem: Sequence[tuple[str, float, int]], *, bootstrap: int, seed: int
) -> list[Score]:
    """One task-level Score (mean over problems, bootstrap CI) and one Score per problem, from
    (problem_id, value, samples) triples."""
    values = [v for _, v, _ in per_problem]
    low, high = bootstrap_ci(values, resamples=bootstrap, seed=seed)
    overall = Score(
        metric=metric,
        value=float(np.mean(values)),
        ci_low=low,
        ci_high=high,
        n_problems=len(per_problem),
        n_samples=sum(n for _, _, n in per_problem),
    )
    return [overall] + [
        Score(metric=metric, value=v, n_problems=1, n_samples=n, problem_id=pid) for pid, v, n in per_problem
    ]


def passk_scores(outcomes, ks: Sequence[int], *, bootstrap: int, seed: int = 0, suite: str = "test") -> list[Score]:
    """pass@k over :class:`~slmbench.tasks.base.ProblemOutcomes` for one test suite."""
    counts = [
        (po.problem.problem_id, len(po.samples), sum(1 for s in po.samples if s.passed(suite)))
        for po in outcomes
        if po.samples
    ]
    return passk_from_counts(counts, ks, bootstrap=bootstrap, seed=seed)
