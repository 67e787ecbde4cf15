"""The study's statistics, computed with statsmodels and scipy (nothing hand-rolled but glue).

- :func:`one_way_anova` (statsmodels OLS + ``anova_lm``) with eta squared and omega squared,
- :func:`tukey_hsd` (statsmodels ``pairwise_tukeyhsd``),
- :func:`kruskal_wallis` (scipy) as the non-parametric check, with its epsilon-squared effect size,
- :func:`paired_comparison` of two models on the same problems: exact McNemar (statsmodels) when
  every per-problem outcome is pass/fail (greedy, n=1), else the Wilcoxon signed-rank test on
  per-problem pass@1 (scipy) with a paired bootstrap CI of the difference (``scipy.stats.bootstrap``),
- :func:`adjust_pvalues` (statsmodels ``multipletests``: Holm by default, or Benjamini-Hochberg),
- :func:`pareto_frontier` and :func:`cost_statement` (the "x points more pass@1 cost y times the
  memory" sentence, computed from the data).

Every function returns a frozen dataclass; a test that cannot be computed (fewer than two groups,
a group with one value, all values equal) returns a result whose ``note`` says why, never a
made-up number.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# ---- one-way ANOVA ------------------------------------------------------------------------


@dataclass(frozen=True)
class AnovaResult:
    factor: str  # what the groups are ("size group", "language")
    groups: tuple[str, ...]
    n: int  # observations in the test
    df_between: float | None = None
    df_within: float | None = None
    ss_between: float | None = None
    ss_within: float | None = None
    f: float | None = None
    p: float | None = None
    eta_squared: float | None = None
    omega_squared: float | None = None
    note: str = ""

    @property
    def computed(self) -> bool:
        return self.p is not None


def _clean_groups(groups: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, values in groups.items():
        vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if vals:
            out[str(name)] = vals
    return out


def _why_not(groups: dict[str, list[float]]) -> str:
    """Why a between-groups test cannot be run on these data ('' when it can)."""
    if len(groups) < 2:
        return f"needs at least two groups with data (have {len(groups)})"
    n = sum(len(v) for v in groups.values())
    if n - len(groups) < 1:
        return "needs more observations than groups (no within-group variation to compare with)"
    if np.ptp(np.concatenate([np.asarray(v) for v in groups.values()])) == 0:
        return "all values are equal"
    return ""


def one_way_anova(groups: Mapping[str, Sequence[float]], *, factor: str = "group") -> AnovaResult:
    """One-way ANOVA of the values in ``groups`` (name -> observations)."""
    import pandas as pd
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    clean = _clean_groups(groups)
    names = tuple(clean)
    n = sum(len(v) for v in clean.values())
    why = _why_not(clean)
    if why:
        return AnovaResult(factor=factor, groups=names, n=n, note=why)
    frame = pd.DataFrame(
        {"y": [v for vals in clean.values() for v in vals], "g": [g for g, vals in clean.items() for _ in vals]}
    )
    table = sm.stats.anova_lm(ols("y ~ C(g)", data=frame).fit(), typ=1)
    between, within = table.loc["C(g)"], table.loc["Residual"]
    ss_b, ss_w = float(between["sum_sq"]), float(within["sum_sq"])
    df_b, df_w = float(between["df"]), float(within["df"])
    ms_w = ss_w / df_w
    ss_t = ss_b + ss_w
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f, p = float(between["F"]), float(between["PR(>F)"])
    if ss_w <= 1e-12 * ss_t:  # every group constant but different (up to rounding): F is infinite
        return AnovaResult(
            factor, names, n, df_b, df_w, ss_b, ss_w, math.inf, 0.0, 1.0, 1.0, note="no variation within groups"
        )
    return AnovaResult(
        factor=factor,
        groups=names,
        n=n,
        df_between=df_b,
        df_within=df_w,
        ss_between=ss_b,
        ss_within=ss_w,
        f=f,
        p=p,
        eta_squared=ss_b / ss_t,
        omega_squared=(ss_b - df_b * ms_w) / (ss_t + ms_w),
    )


# ---- Tukey HSD ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TukeyPair:
    group1: str
    group2: str
    mean_diff: float  # mean(group2) - mean(group1), statsmodels' convention
    p_adj: float
    ci_low: float
    ci_high: float
    reject: bool


@dataclass(frozen=True)
class TukeyResult:
    factor: str
    alpha: float
    pairs: tuple[TukeyPair, ...] = ()
    note: str = ""


def tukey_hsd(groups: Mapping[str, Sequence[float]], *, factor: str = "group", alpha: float = 0.05) -> TukeyResult:
    """All pairwise group comparisons with Tukey's honestly significant difference."""
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    clean = _clean_groups(groups)
    why = _why_not(clean)
    if not why and all(np.ptp(v) == 0 for v in clean.values()):
        why = "no variation within groups: the studentized range is undefined"
    if why:
        return TukeyResult(factor, alpha, note=why)
    endog = np.array([v for vals in clean.values() for v in vals])
    labels = np.array([g for g, vals in clean.items() for _ in vals])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = pairwise_tukeyhsd(endog, labels, alpha=alpha)
    uniq = [str(g) for g in res.groupsunique]
    pairs = []
    for i, (a, b) in enumerate(itertools.combinations(range(len(uniq)), 2)):
        pairs.append(
            TukeyPair(
                group1=uniq[a],
                group2=uniq[b],
                mean_diff=float(res.meandiffs[i]),
                p_adj=float(res.pvalues[i]),
                ci_low=float(res.confint[i][0]),
                ci_high=float(res.confint[i][1]),
                reject=bool(res.reject[i]),
            )
        )
    return TukeyResult(factor, alpha, tuple(pairs))


# ---- Kruskal-Wallis -----------------------------------------------------------------------


@dataclass(frozen=True)
class KruskalResult:
    factor: str
    groups: tuple[str, ...]
    n: int
    h: float | None = None
    p: float | None = None
    epsilon_squared: float | None = None  # H / (n - 1), Tomczak & Tomczak (2014)
    note: str = ""


def kruskal_wallis(groups: Mapping[str, Sequence[float]], *, factor: str = "group") -> KruskalResult:
    from scipy import stats

    clean = _clean_groups(groups)
    names = tuple(clean)
    n = sum(len(v) for v in clean.values())
    why = _why_not(clean)
    if why:
        return KruskalResult(factor, names, n, note=why)
    h, p = stats.kruskal(*clean.values())
    return KruskalResult(factor, names, n, float(h), float(p), float(h) / (n - 1))


# ---- paired comparison of two models ------------------------------------------------------


@dataclass(frozen=True)
class PairedResult:
    model_a: str
    model_b: str
    task: str
    n_problems: int  # problems both models were scored on
    mean_a: float
    mean_b: float
    test: str  # "mcnemar-exact" | "wilcoxon" | "none"
    statistic: float | None = None
    p: float | None = None
    p_adj: float | None = None  # after the multiple-testing correction over all comparisons
    ci_low: float | None = None  # CI of mean_b - mean_a (paired bootstrap), when computed
    ci_high: float | None = None
    only_a: int | None = None  # McNemar discordant counts: a passed, b failed
    only_b: int | None = None
    note: str = ""

    @property
    def diff(self) -> float:
        return self.mean_b - self.mean_a


def paired_comparison(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    model_a: str = "a",
    model_b: str = "b",
    task: str = "",
    bootstrap: int = 2000,
    seed: int = 0,
) -> PairedResult:
    """Compare two models on the problems both were scored on (``problem_id -> pass@1``)."""
    from scipy import stats
    from statsmodels.stats.contingency_tables import mcnemar

    # a NaN is a problem not scored (not a zero): leave it out, or every p-value would turn NaN
    common = sorted(p for p in set(a) & set(b) if not (math.isnan(a[p]) or math.isnan(b[p])))
    xa = np.array([a[p] for p in common], dtype=float)
    xb = np.array([b[p] for p in common], dtype=float)
    base = PairedResult(
        model_a,
        model_b,
        task,
        len(common),
        float(xa.mean()) if common else math.nan,
        float(xb.mean()) if common else math.nan,
        "none",
    )
    if len(common) < 2:
        return _replace(base, note="fewer than two common problems")
    if np.array_equal(xa, xb):
        return _replace(base, note="identical per-problem results")
    binary = np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all()
    if binary:
        table = [
            [int(((xa == 1) & (xb == 1)).sum()), int(((xa == 1) & (xb == 0)).sum())],
            [int(((xa == 0) & (xb == 1)).sum()), int(((xa == 0) & (xb == 0)).sum())],
        ]
        res = mcnemar(table, exact=True)
        ci = _paired_bootstrap_ci(xa, xb, bootstrap, seed)
        return _replace(
            base,
            test="mcnemar-exact",
            statistic=float(res.statistic),
            p=float(res.pvalue),
            only_a=table[0][1],
            only_b=table[1][0],
            ci_low=ci[0],
            ci_high=ci[1],
        )
    res = stats.wilcoxon(xb, xa, zero_method="wilcox")
    ci = _paired_bootstrap_ci(xa, xb, bootstrap, seed)
    return _replace(
        base, test="wilcoxon", statistic=float(res.statistic), p=float(res.pvalue), ci_low=ci[0], ci_high=ci[1]
    )


def _paired_bootstrap_ci(
    xa: np.ndarray, xb: np.ndarray, resamples: int, seed: int
) -> tuple[float | None, float | None]:
    from scipy import stats

    if resamples <= 0 or np.ptp(xb - xa) == 0:
        return None, None
    res = stats.bootstrap(
        (xa, xb),
        lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _replace(result: PairedResult, **changes: object) -> PairedResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def adjust_pvalues(pvalues: Sequence[float], *, method: str = "holm") -> list[float]:
    """Multiple-testing correction (statsmodels): ``holm`` (family-wise) or ``fdr_bh``."""
    from statsmodels.stats.multitest import multipletests

    if not pvalues:
        return []
    _, adjusted, _, _ = multipletests(list(pvalues), method=method)
    return [float(p) for p in adjusted]


def correct_paired(results: Sequence[PairedResult], *, method: str = "holm") -> list[PairedResult]:
    """Fill ``p_adj`` of every computed comparison, corrected over all of them together."""
    idx = [i for i, r in enumerate(results) if r.p is not None]
    adjusted = adjust_pvalues([results[i].p for i in idx], method=method)  # type: ignore[misc]
    out = list(results)
    for i, p in zip(idx, adjusted, strict=True):
        out[i] = _replace(out[i], p_adj=p)
    return out


# ---- Pareto frontier and the cost statement ---------------------------------------------


@dataclass(frozen=True)
class Point:
    name: str
    cost: float  # memory in bytes (or parameters when memory was not measured)
    value: float  # accuracy (pass@1, 0..1)


def pareto_frontier(points: Sequence[Point]) -> list[Point]:
    """Points not dominated by another (no other is at most as costly and at least as accurate,
    and strictly better in one), sorted by cost."""
    frontier = []
    for p in points:
        dominated = any(
            q is not p and q.cost <= p.cost and q.value >= p.value and (q.cost < p.cost or q.value > p.value)
            for q in points
        )
        if not dominated:
            frontier.append(p)
    # equal points: keep one
    unique: dict[tuple[float, float], Point] = {}
    for p in sorted(frontier, key=lambda p: (p.cost, -p.value, p.name)):
        unique.setdefault((p.cost, p.value), p)
    return list(unique.values())


@dataclass(frozen=True)
class CostStep:
    cheaper: Point
    dearer: Point

    @property
    def gain_points(self) -> float:
        """pass@1 gained, in percentage points."""
        return 100.0 * (self.dearer.value - self.cheaper.value)

    @property
    def gain_relative(self) -> float | None:
        return None if self.cheaper.value == 0 else self.dearer.value / self.cheaper.value - 1.0

    @property
    def cost_ratio(self) -> float:
        return self.dearer.cost / self.cheaper.cost if self.cheaper.cost > 0 else math.inf


@dataclass(frozen=True)
class CostStatement:
    text: str
    last_step: CostStep | None = None  # from the second-best frontier model to the best
    full_span: CostStep | None = None  # from the cheapest frontier model to the best
    steps: tuple[CostStep, ...] = field(default_factory=tuple)


def cost_statement(points: Sequence[Point], *, cost_label: str = "the VRAM", caveat: str = "") -> CostStatement:
    """What the last points of pass@1 cost, from the accuracy/cost Pareto frontier.

    ``caveat`` is appended in parentheses before the final full stop."""
    frontier = pareto_frontier([p for p in points if p.cost > 0])
    if len(frontier) < 2:
        return CostStatement("fewer than two models on the accuracy/cost frontier: no trade-off to state")
    steps = tuple(CostStep(a, b) for a, b in itertools.pairwise(frontier))
    last, span = steps[-1], CostStep(frontier[0], frontier[-1])

    def sentence(step: CostStep) -> str:
        # a relative gain over a near-zero baseline (e.g. +50000%) says nothing: only show it from 5%
        rel = f" ({step.gain_relative:+.0%} relative)" if step.cheaper.value >= 0.05 else ""
        return (
            f"{step.gain_points:+.1f} points of pass@1{rel} cost {step.cost_ratio:.1f}x {cost_label} "
            f"({step.dearer.name} vs {step.cheaper.name})"
        )

    text = sentence(last) if len(steps) == 1 else f"{sentence(last)}; across the whole frontier, {sentence(span)}"
    text += f" ({caveat})." if caveat else "."
    return CostStatement(text[0].upper() + text[1:], last, span, steps)
