"""Beyond@k (Mercury, Du et al. 2024): how fast correct code is, against reference solutions.

For one problem, the reference solutions that pass give a runtime range [lo, hi]. A sample's
*beyond* value is

    beyond(r) = (hi - clamp(r, lo, hi)) / (hi - lo)     for a correct sample with runtime r
    beyond    = 0                                         for a failed sample

so a correct sample as fast as the fastest reference scores 1, one as slow as the slowest (or
slower) scores 0. When all references take the same time (hi == lo), a correct sample scores 1
if it is no slower than that time and 0 otherwise.

Beyond@k is the expected *best* beyond value among k samples drawn without replacement from the
n generated, averaged over problems: with the values sorted v_1 >= ... >= v_n,

    beyond@k = sum_i v_i * C(n - i, k - 1) / C(n, k)

the unbiased estimator in the same spirit as pass@k (it equals pass@k when every correct sample
scores 1). For k = 1 it is the mean beyond value.

How this differs from the two published implementations (read in Elfsong/Mercury
``src/evaluator.py`` and bigcode-evaluation-harness ``custom_metrics/beyond_eval.py``):

- Elfsong/Mercury clamps the *difference* ``hi - r`` to [0, 1] **in seconds** and then divides by
  ``hi - lo``: with a range wider than one second the value can never reach 1, and with a range
  narrower than one second it can exceed 1. It scores only one sample per problem (Beyond@1).
- The BigCode harness clamps the *runtime* to [lo, hi] (as here), but its Beyond@k is the mean of
  the first k samples' values (order-dependent, and its expectation does not grow with k), and it
  divides by zero when hi == lo.
- Both time wall-clock seconds of one run (BigCode: the mean of 3 runs of the candidate, one of
  each reference), on whatever else the machine is doing. slmbench measures CPU time over repeated
  runs of candidates and references alike, on the same machine, in the same sandbox (see
  ``slmbench.tasks.mercury``); constant per-run overhead cancels in ``hi - r`` and ``hi - lo``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slmbench.metrics.passk import metric_scores, usable_ks
from slmbench.types import Score


def beyond_value(runtime: float | None, reference_runtimes: Sequence[float]) -> float:
    """The beyond value of one sample: ``runtime`` None means the sample failed (scores 0)."""
    if runtime is None or not reference_runtimes:
        return 0.0
    lo, hi = min(reference_runtimes), max(reference_runtimes)
    if hi <= lo:
        return 1.0 if runtime <= hi else 0.0
    clamped = min(max(runtime, lo), hi)
    return (hi - clamped) / (hi - lo)


def beyond_at_k(values: Sequence[float], k: int) -> float:
    """Expected maximum of k of the n ``values`` drawn without replacement."""
    n = len(values)
    if k > n:
        raise ValueError(f"beyond@{k} needs at least {k} samples, got n={n}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    ordered = sorted(values, reverse=True)
    total = math.comb(n, k)
    return float(sum(v * math.comb(n - i, k - 1) for i, v in enumerate(ordered, start=1)) / total)


def beyond_scores(
    per_problem: Sequence[tuple[str, Sequence[float]]],
    ks: Sequence[int],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
) -> list[Score]:
    """``beyond@k`` Scores from (problem_id, per-sample beyond values): overall (with a bootstrap
    CI over problems) and per problem. ks above the smallest n are dropped, as for pass@k."""
    per_problem = [(pid, vals) for pid, vals in per_problem if len(vals)]
    if not per_problem:
        return []
    kept, _ = usable_ks(ks, min(len(v) for _, v in per_problem))
    scores: list[Score] = []
    for k in kept:
        values = [(pid, beyond_at_k(v, k), len(v)) for pid, v in per_problem]
        scores += metric_scores(f"beyond@{k}", values, bootstrap=bootstrap, seed=seed + 1000 + k)
    return scores
