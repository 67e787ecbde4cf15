"""Beyond@k: per-sample values against the reference range, and the best-of-k estimator."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from slmbench.metrics.beyond import beyond_at_k, beyond_scores, beyond_value
from slmbench.metrics.passk import pass_at_k


def test_value_is_position_in_the_reference_range_clamped() -> None:
    refs = [1.0, 2.0, 5.0]
    assert beyond_value(1.0, refs) == 1.0  # as fast as the fastest reference
    assert beyond_value(0.2, refs) == 1.0  # faster than every reference: clamped to 1
    assert beyond_value(5.0, refs) == 0.0
    assert beyond_value(60.0, refs) == 0.0  # slower than every reference: clamped to 0
    assert beyond_value(2.0, refs) == pytest.approx(0.75)
    assert beyond_value(None, refs) == 0.0  # failed
    # the Elfsong/Mercury formula would clamp (hi - r) to 1 *second*: 3 s faster than hi -> 1/4
    assert beyond_value(2.0, refs) != min(max(5.0 - 2.0, 0), 1) / (5.0 - 1.0)


def test_degenerate_reference_ranges() -> None:
    assert beyond_value(1.0, [2.0, 2.0]) == 1.0
    assert beyond_value(2.0, [2.0]) == 1.0
    assert beyond_value(2.5, [2.0]) == 0.0
    assert beyond_value(1.0, []) == 0.0  # no reference passed: nothing to compare with


def test_beyond_at_k_is_the_expected_best_of_k_draws() -> None:
    rng = random.Random(3)
    for _ in range(30):
        n = rng.randint(1, 7)
        values = [rng.choice([0.0, rng.random()]) for _ in range(n)]
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(values, k))
            brute = sum(max(s) for s in subsets) / len(subsets)
            assert beyond_at_k(values, k) == pytest.approx(brute, abs=1e-12)


def test_k1_is_the_mean_and_binary_values_give_pass_at_k() -> None:
    values = [0.9, 0.0, 0.3, 0.6]
    assert beyond_at_k(values, 1) == pytest.approx(sum(values) / 4)
    binary = [1.0, 0.0, 0.0, 1.0, 0.0]
    for k in range(1, 6):
        assert beyond_at_k(binary, k) == pytest.approx(pass_at_k(5, 2, k))
    with pytest.raises(ValueError, match="at least 6 samples"):
        beyond_at_k(values, 6)


def test_scores_overall_and_per_problem_and_k_dropping() -> None:
    per_problem = [("a", [1.0, 0.0, 0.5]), ("b", [0.0, 0.0, 0.0])]
    scores = beyond_scores(per_problem, [1, 2, 5], bootstrap=200, seed=1)
    overall = {s.metric: s for s in scores if s.problem_id is None}
    assert set(overall) == {"beyond@1", "beyond@2"}  # k=5 > n=3 dropped
    assert overall["beyond@1"].value == pytest.approx((0.5 + 0.0) / 2)
    assert overall["beyond@2"].value == pytest.approx(((1 + 1 + 0.5) / 3 + 0) / 2)
    assert overall["beyond@1"].ci_low <= overall["beyond@1"].value <= overall["beyond@1"].ci_high
    assert overall["beyond@1"].n_problems == 2 and overall["beyond@1"].n_samples == 6
    per = {(s.metric, s.problem_id): s.value for s in scores if s.problem_id}
    assert per[("beyond@1", "a")] == pytest.approx(0.5) and per[("beyond@1", "b")] == 0.0
    assert beyond_scores([], [1], bootstrap=0) == []
    assert math.isclose(per[("beyond@2", "a")], 2.5 / 3)
