"""The study's statistics against published textbook values and independent scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from slmbench.analysis import stats

# McDonald, Handbook of Biological Statistics (3rd ed.), one-way ANOVA example: length of the
# anterior adductor muscle scar / total length in the mussel Mytilus trossulus at five sites.
# Published: F(4, 34) = 7.12, P = 2.8e-4; SS between 0.00452, within 0.00539.
MUSSELS = {
    "Tillamook": [0.0571, 0.0813, 0.0831, 0.0976, 0.0817, 0.0859, 0.0735, 0.0659, 0.0923, 0.0836],
    "Newport": [0.0873, 0.0662, 0.0672, 0.0819, 0.0749, 0.0649, 0.0835, 0.0725],
    "Petersburg": [0.0974, 0.1352, 0.0817, 0.1016, 0.0968, 0.1064, 0.105],
    "Magadan": [0.1033, 0.0915, 0.0781, 0.0685, 0.0677, 0.0697, 0.0764, 0.0689],
    "Tvarminne": [0.0703, 0.1026, 0.0956, 0.0973, 0.1039, 0.1045],
}


def test_anova_matches_the_published_mussel_example() -> None:
    res = stats.one_way_anova(MUSSELS, factor="site")
    assert res.df_between == 4 and res.df_within == 34 and res.n == 39
    assert res.f == pytest.approx(7.12, abs=0.005)
    assert res.p == pytest.approx(2.8e-4, rel=0.02)
    assert res.ss_between == pytest.approx(0.00452, abs=5e-6)
    assert res.ss_within == pytest.approx(0.00539, abs=5e-6)
    ref = sps.f_oneway(*MUSSELS.values())
    assert res.f == pytest.approx(ref.statistic, rel=1e-9) and res.p == pytest.approx(ref.pvalue, rel=1e-9)


def test_anova_effect_sizes() -> None:
    res = stats.one_way_anova(MUSSELS)
    ss_t = res.ss_between + res.ss_within
    assert res.eta_squared == pytest.approx(0.00452 / (0.00452 + 0.00539), abs=0.002)
    ms_w = res.ss_within / 34
    assert res.omega_squared == pytest.approx((res.ss_between - 4 * ms_w) / (ss_t + ms_w), rel=1e-12)
    assert 0 < res.omega_squared < res.eta_squared < 1


def test_anova_says_why_it_cannot_run() -> None:
    assert "two groups" in stats.one_way_anova({"a": [1.0, 2.0]}).note
    assert "more observations" in stats.one_way_anova({"a": [1.0], "b": [2.0]}).note
    equal = stats.one_way_anova({"a": [0.0, 0.0], "b": [0.0, 0.0]})
    assert equal.p is None and "equal" in equal.note
    assert not equal.computed
    split = stats.one_way_anova({"a": [0.2, 0.2], "b": [0.6, 0.6]})
    assert split.f == math.inf and split.p == 0.0 and split.eta_squared == 1.0 and "within" in split.note
    assert "within groups" in stats.tukey_hsd({"a": [0.2, 0.2], "b": [0.6, 0.6]}).note
    # NaN and None values are dropped, not counted as zeros
    res = stats.one_way_anova({"a": [1.0, 2.0, float("nan")], "b": [3.0, 4.0, None]})  # type: ignore[list-item]
    assert res.n == 4 and res.computed


def test_tukey_matches_scipy_on_the_mussel_data() -> None:
    res = stats.tukey_hsd(MUSSELS, factor="site")
    names = sorted(MUSSELS)
    ref = sps.tukey_hsd(*[MUSSELS[n] for n in names])
    assert len(res.pairs) == 10
    for pair in res.pairs:
        i, j = names.index(pair.group1), names.index(pair.group2)
        assert pair.mean_diff == pytest.approx(np.mean(MUSSELS[pair.group2]) - np.mean(MUSSELS[pair.group1]))
        assert pair.p_adj == pytest.approx(ref.pvalue[i, j], abs=2e-3)
        assert pair.reject == (ref.pvalue[i, j] < 0.05)
    # McDonald's post-hoc result: Petersburg differs from Newport, Tvarminne does not from Petersburg
    by = {(p.group1, p.group2): p for p in res.pairs}
    assert by[("Newport", "Petersburg")].reject and not by[("Petersburg", "Tvarminne")].reject


def test_kruskal_wallis_textbook_value_and_scipy() -> None:
    # ranks 1..3 vs 4..6: H = 12/(6*7) * (6^2/3 + 15^2/3) - 3*7 = 27/7
    res = stats.kruskal_wallis({"low": [1, 2, 3], "high": [4, 5, 6]})
    assert res.h == pytest.approx(27 / 7)
    assert res.p == pytest.approx(sps.chi2.sf(27 / 7, 1))
    assert res.epsilon_squared == pytest.approx(27 / 7 / 5)
    ref = sps.kruskal(*MUSSELS.values())
    mus = stats.kruskal_wallis(MUSSELS)
    assert mus.h == pytest.approx(ref.statistic) and mus.p == pytest.approx(ref.pvalue)


def _from_table(a11: int, a10: int, a01: int, a00: int) -> tuple[dict[str, float], dict[str, float]]:
    a: dict[str, float] = {}
    b: dict[str, float] = {}
    i = 0
    for count, (va, vb) in ((a11, (1, 1)), (a10, (1, 0)), (a01, (0, 1)), (a00, (0, 0))):
        for _ in range(count):
            a[f"p{i}"], b[f"p{i}"] = va, vb
            i += 1
    return a, b


def test_mcnemar_on_agresti_presidential_approval() -> None:
    # Agresti, Categorical Data Analysis: approval at two surveys, 794/150/86/570.
    # Published (asymptotic, uncorrected) McNemar z^2 = 17.36; the exact test uses the binomial.
    from statsmodels.stats.contingency_tables import mcnemar

    assert mcnemar([[794, 150], [86, 570]], exact=False, correction=False).statistic == pytest.approx(17.36, abs=0.01)
    a, b = _from_table(794, 150, 86, 570)
    res = stats.paired_comparison(a, b, model_a="first", model_b="second", bootstrap=200)
    assert res.test == "mcnemar-exact" and res.n_problems == 1600
    assert (res.only_a, res.only_b) == (150, 86)
    assert res.p == pytest.approx(sps.binomtest(86, 236, 0.5).pvalue, rel=1e-9)
    assert res.diff == pytest.approx((86 - 150) / 1600)
    assert res.ci_low < res.diff < res.ci_high < 0


def test_paired_comparison_of_fractional_pass_rates_uses_wilcoxon() -> None:
    rng = np.random.default_rng(3)
    a = {f"p{i}": float(v) for i, v in enumerate(rng.integers(0, 11, 40) / 10)}
    b = {k: min(1.0, v + 0.2) for k, v in a.items()}
    res = stats.paired_comparison(a, b, bootstrap=500)
    ref = sps.wilcoxon(list(b.values()), list(a.values()))
    assert res.test == "wilcoxon" and res.p == pytest.approx(ref.pvalue)
    assert res.p < 0.001 and res.ci_low > 0


def test_paired_comparison_only_uses_common_problems_and_refuses_degenerate_input() -> None:
    same = stats.paired_comparison({"x": 1.0, "y": 0.0}, {"x": 1.0, "y": 0.0, "z": 1.0})
    assert same.n_problems == 2 and same.p is None and "identical" in same.note
    assert "fewer than two" in stats.paired_comparison({"x": 1.0}, {"x": 0.0}).note


def test_holm_and_bh_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm by hand: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.06, 0.04)
    assert stats.adjust_pvalues(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Benjamini-Hochberg by hand: p_(i) * m / i, then running minimum from the top
    assert stats.adjust_pvalues(p, method="fdr_bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    results = [
        stats.PairedResult("a", "b", "t", 10, 0.1, 0.2, "wilcoxon", p=0.01),
        stats.PairedResult("a", "c", "t", 10, 0.1, 0.1, "none"),
        stats.PairedResult("b", "c", "t", 10, 0.2, 0.1, "wilcoxon", p=0.04),
    ]
    corrected = stats.correct_paired(results)
    assert [r.p_adj for r in corrected] == pytest.approx([0.02, None, 0.04])


def test_pareto_frontier_and_cost_statement() -> None:
    pts = [
        stats.Point("small", 2e9, 0.30),
        stats.Point("mid", 4e9, 0.50),
        stats.Point("mid-worse", 5e9, 0.45),  # dominated by mid
        stats.Point("big", 16e9, 0.60),
        stats.Point("huge-worse", 40e9, 0.55),  # dominated by big
    ]
    frontier = stats.pareto_frontier(pts)
    assert [p.name for p in frontier] == ["small", "mid", "big"]
    st = stats.cost_statement(pts)
    assert st.last_step.gain_points == pytest.approx(10.0)
    assert st.last_step.cost_ratio == pytest.approx(4.0)
    assert st.full_span.cost_ratio == pytest.approx(8.0)
    assert "+10.0 points" in st.text and "4.0x" in st.text and "big vs mid" in st.text
    assert "fewer than two" in stats.cost_statement(pts[:1]).text
    assert math.isclose(st.last_step.gain_relative, 0.2)


def test_paired_comparison_leaves_out_problems_without_a_value() -> None:
    a = {f"p{i}": float(i % 2) for i in range(12)}
    b = {f"p{i}": 1.0 for i in range(12)}
    a["p3"] = float("nan")  # not scored: must not turn the test (and the whole correction) into NaN
    res = stats.paired_comparison(a, b, bootstrap=100)
    assert res.n_problems == 11 and res.test == "mcnemar-exact"
    assert res.p == pytest.approx(sps.binomtest(6, 6, 0.5).pvalue)
    assert not math.isnan(res.mean_a) and res.ci_low is not None
