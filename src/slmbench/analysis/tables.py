"""The study's tables, built from :class:`~slmbench.analysis.results.StudyResults`.

A :class:`Table` holds raw values (fractions, bytes, seconds; ``None`` for "not measured" or
"not run") and says how to show each column, so the CSV/JSON keep full precision while the HTML
and LaTeX show rounded figures. Tables: ranking per benchmark, stability across benchmarks,
efficiency (per model and per model x benchmark), multilingual pass@1, and the statistics
(ANOVA/Kruskal-Wallis, Tukey HSD, paired comparisons, Pareto frontier).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from slmbench.analysis import stats
from slmbench.analysis.results import PairResult, StudyResults

Kind = Literal["text", "int", "pct", "score", "num", "float", "p", "params", "bytes", "seconds", "ratio", "bool"]

NOT_MEASURED = "not measured"
NOT_RUN = "–"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: Kind = "text"
    ci: tuple[str, str] | None = None  # keys of the CI bounds shown beside the value
    missing: str = NOT_RUN  # what None is shown as


@dataclass(frozen=True)
class Table:
    name: str  # file stem and HTML id
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]
    notes: tuple[str, ...] = ()
    section: str = ""

    def keys(self) -> list[str]:
        keys: list[str] = []
        for c in self.columns:
            keys.append(c.key)
            if c.ci:
                keys.extend(c.ci)
        return keys

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        keys = self.keys()
        writer.writerow(keys)
        for row in self.rows:
            writer.writerow(["" if row.get(k) is None else _csv_value(row.get(k)) for k in keys])
        return buf.getvalue()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in self.columns],
            "rows": [{k: _json_value(row.get(k)) for k in self.keys()} for row in self.rows],
            "notes": list(self.notes),
        }

    def cell(self, row: Mapping[str, Any], column: Column) -> str:
        """The value as shown in HTML and LaTeX."""
        value = row.get(column.key)
        if value is None:
            return column.missing
        text = format_value(value, column.kind)
        if column.ci:
            low, high = row.get(column.ci[0]), row.get(column.ci[1])
            if low is not None and high is not None:
                text += f" [{format_value(low, column.kind)}, {format_value(high, column.kind)}]"
        return text


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return v


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def format_value(value: Any, kind: Kind) -> str:
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "score":
        return f"{value:.2f}"
    if kind == "num":  # a figure as someone else reported it: no added digits
        return f"{value:g}"
    if kind == "float":
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if kind == "p":
        if value < 1e-4:
            return f"{value:.1e}"
        return f"{value:.4f}"
    if kind == "params":
        return format_params(value)
    if kind == "bytes":
        return f"{value / 1e9:.2f} GB"
    if kind == "seconds":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if kind == "ratio":
        return f"{value:.1f}x"
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "int":
        return f"{int(value):,}"
    return str(value)


def format_params(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{int(n)}"


def is_pct_metric(metric: str) -> bool:
    return metric.startswith(("pass@", "beyond@"))


def _metric_order(metric: str) -> tuple[int, int, str]:
    family = metric.split("@", maxsplit=1)[0].split("/", maxsplit=1)[0]
    rank = {"pass": 0, "beyond": 1, "bleu": 2}.get(family, 3)
    k = 0
    if "@" in metric:
        digits = "".join(ch for ch in metric.split("@")[1] if ch.isdigit())
        k = int(digits) if digits else 0
    return rank, k, metric


# ---- ranking ------------------------------------------------------------------------------
def ranking_tables(results: StudyResults) -> list[Table]:
    tables = []
    for bench in results.benchmarks:
        pairs = [p for p in (results.pair(m.name, bench) for m in results.models) if p is not None]
        if not pairs:
            continue
        metrics = sorted({m for p in pairs for m in p.scores}, key=_metric_order)
        headline = pairs[0].headline or (metrics[0] if metrics else "")
        pairs.sort(key=lambda p: (-(p.value(headline) if p.value(headline) is not None else -1), p.model))
        published = sorted({m for p in pairs for m in p.published}, key=_metric_order)
        columns = [Column("rank", "#", "int"), Column("model", "model"), Column("group", "size group")]
        columns.append(Column("parameters", "parameters", "params", missing="unknown"))
        for m in metrics:
            kind: Kind = "pct" if is_pct_metric(m) else "score"
            columns.append(Column(m, m + (" (%)" if kind == "pct" else ""), kind, ci=(f"{m} ci_low", f"{m} ci_high")))
        for m in published:
            columns.append(Column(f"published {m}", f"publisher's {m}", "num"))
        columns += [Column("n", "samples/problem", "int"), Column("problems", "problems", "int")]
        rows = []
        for rank, p in enumerate(pairs, start=1):
            model = results.model(p.model)
            row: dict[str, Any] = {
                "rank": rank,
                "model": p.model,
                "group": model.group,
                "parameters": model.parameters,
                "n": p.n,
                "problems": p.n_problems,
            }
            for m in metrics:
                s = p.scores.get(m)
                row[m] = None if s is None else s.value
                row[f"{m} ci_low"] = None if s is None else s.ci_low
                row[f"{m} ci_high"] = None if s is None else s.ci_high
            for m in published:
                row[f"published {m}"] = p.published.get(m)
            rows.append(row)
        notes = ["values in brackets: 95% bootstrap confidence interval over problems"]
        for m in metrics:
            # pass@k is dropped when a problem has fewer than k samples: say so, not just "–"
            lacking = [p.model for p in pairs if m not in p.scores]
            if lacking:
                k = _metric_order(m)[1] if "@" in m else 0
                why = f": needs at least {k} samples per problem" if k > 1 else ""
                notes.append(f"{m} not computed for {', '.join(lacking)}{why}")
        if published:
            notes.append("publisher's figures are in percent, as the publisher reported them, for comparison")
        seeds = max(p.seeds for p in pairs)
        if seeds > 1:
            notes.append(f"per-problem values averaged over {seeds} seeds before the interval was computed")
        tables.append(
            Table(
                f"ranking_{_slug(bench)}", f"Ranking on {bench}", tuple(columns), tuple(rows), tuple(notes), "ranking"
            )
        )
    return tables


# ---- stability ----------------------------------------------------------------------------
def stability_table(results: StudyResults) -> Table:
    """Mean, SD and CV of each model's pass@1 across the benchmarks it ran."""
    rows = []
    for model in results.models:
        values = {}
        for bench in results.benchmarks:
            p = results.pair(model.name, bench)
            if p is not None and p.value("pass@1") is not None:
                values[bench] = p.value("pass@1")
        vals = list(values.values())
        mean = statistics.fmean(vals) if vals else None
        sd = statistics.stdev(vals) if len(vals) >= 2 else None
        rows.append(
            {
                "model": model.name,
                "group": model.group,
                "benchmarks": len(vals),
                "mean": mean,
                "sd": sd,
                "cv": sd / mean if sd is not None and mean else None,
                "min": min(vals) if vals else None,
                "max": max(vals) if vals else None,
            }
        )
    columns = (
        Column("model", "model"),
        Column("group", "size group"),
        Column("benchmarks", "benchmarks", "int"),
        Column("mean", "mean pass@1 (%)", "pct"),
        Column("sd", "SD (points)", "pct"),
        Column("cv", "CV", "float"),
        Column("min", "min (%)", "pct"),
        Column("max", "max (%)", "pct"),
    )
    notes = (
        "pass@1 of each benchmark the model ran; SD is the sample standard deviation (n-1), CV = SD / mean",
        "SD and CV need at least two benchmarks",
    )
    return Table("stability", "Stability across benchmarks", columns, tuple(rows), notes, "stability")


# ---- efficiency ---------------------------------------------------------------------------
_EFF_COLUMNS = (
    Column("peak_memory", "peak memory", "bytes", missing=NOT_MEASURED),
    Column("memory_kind", "memory", missing=NOT_MEASURED),
    Column("latency", "latency / sample", "seconds", missing=NOT_MEASURED),
    Column("tokens_per_s", "tokens/s", "float", missing=NOT_MEASURED),
    Column("energy_per_problem", "energy / problem (J)", "float", missing=NOT_MEASURED),
    Column("energy_per_token", "energy / token (J)", "float", missing=NOT_MEASURED),
)


def _eff_row(p: PairResult) -> dict[str, Any]:
    e = p.efficiency
    if e is None:
        return {}
    return {
        "peak_memory": e.peak_memory_bytes,
        "memory_kind": e.memory_kind,
        "latency": e.latency_s_per_sample,
        "tokens_per_s": e.tokens_per_s,
        "energy_per_problem": e.energy_j_per_problem,
        "energy_per_token": e.energy_j_per_token,
        "load_time": e.load_time_s,
    }


def efficiency_detail_table(results: StudyResults) -> Table:
    rows = []
    for model in results.models:
        for bench in results.benchmarks:
            p = results.pair(model.name, bench)
            if p is None:
                continue
            rows.append(
                {"model": model.name, "benchmark": bench, "source": "replayed" if model.replayed else "generated here"}
                | _eff_row(p)
            )
    columns = (Column("model", "model"), Column("benchmark", "benchmark"), Column("source", "generations"))
    columns += _EFF_COLUMNS
    return Table(
        "efficiency_by_benchmark",
        "Efficiency per model and benchmark",
        columns,
        tuple(rows),
        ("replayed generations were made elsewhere: nothing about their cost was measured here",),
        "efficiency",
    )


def model_memory(results: StudyResults, model: str) -> tuple[int | None, str | None]:
    peaks = []
    kind = None
    for p in results.pairs:
        if p.model == model and p.efficiency and p.efficiency.peak_memory_bytes is not None:
            peaks.append(p.efficiency.peak_memory_bytes)
            kind = kind or p.efficiency.memory_kind
    return (max(peaks) if peaks else None), kind


def efficiency_table(results: StudyResults) -> Table:
    rows = []
    for model in results.models:
        pairs = [p for p in results.pairs if p.model == model.name and p.efficiency is not None]
        effs = [p.efficiency for p in pairs if p.efficiency is not None]
        peak, kind = model_memory(results, model.name)

        def wmean(attr: str, effs=effs) -> float | None:
            vals = [(getattr(e, attr), e.samples) for e in effs if getattr(e, attr) is not None]
            total = sum(w for _, w in vals)
            return sum(v * w for v, w in vals) / total if total else None

        loads = [e.load_time_s for e in effs if e.load_time_s is not None]
        rows.append(
            {
                "model": model.name,
                "group": model.group,
                "parameters": model.parameters,
                "source": "replayed" if model.replayed else "generated here",
                "peak_memory": peak,
                "memory_kind": kind,
                "latency": wmean("latency_s_per_sample"),
                "tokens_per_s": wmean("tokens_per_s"),
                "energy_per_problem": wmean("energy_j_per_problem"),
                "energy_per_token": wmean("energy_j_per_token"),
                "load_time": max(loads) if loads else None,
            }
        )
    columns = (
        Column("model", "model"),
        Column("group", "size group"),
        Column("parameters", "parameters", "params", missing="unknown"),
        Column("source", "generations"),
        *_EFF_COLUMNS,
        Column("load_time", "load time", "seconds", missing=NOT_MEASURED),
    )
    notes = (
        "peak memory: the largest over the model's benchmarks (VRAM on GPU, resident set size on CPU)",
        "latency, tokens/s and energy: averaged over benchmarks, weighted by samples",
        "replayed generations were made elsewhere: their cost was not measured, so it is shown as 'not measured'",
    )
    return Table("efficiency", "Efficiency per model", columns, tuple(rows), notes, "efficiency")


# ---- multilingual -------------------------------------------------------------------------
def multilingual_table(results: StudyResults) -> Table | None:
    langs = [(bench, lang) for bench, lang in results.languages.items() if bench in results.benchmarks]
    if not langs:
        return None
    columns = [Column("model", "model"), Column("group", "size group")]
    columns += [Column(lang, f"{lang} (%)", "pct") for _, lang in langs]
    columns.append(Column("mean", "mean (%)", "pct"))
    rows = []
    for model in results.models:
        row: dict[str, Any] = {"model": model.name, "group": model.group}
        vals = []
        for bench, lang in langs:
            p = results.pair(model.name, bench)
            v = p.value("pass@1") if p else None
            row[lang] = v
            if v is not None:
                vals.append(v)
        if not vals:
            continue
        row["mean"] = statistics.fmean(vals) if len(vals) == len(langs) else None
        rows.append(row)
    notes = (
        "pass@1 per language; benchmarks: " + ", ".join(f"{lang} = {bench}" for bench, lang in langs),
        "mean only over models that ran every language",
    )
    return Table("multilingual", "pass@1 per language", tuple(columns), tuple(rows), notes, "multilingual")


def _pass1(results: StudyResults, model: str, bench: str) -> float | None:
    p = results.pair(model, bench)
    return p.value("pass@1") if p else None


def incomplete_models(results: StudyResults, benchmarks: Sequence[str]) -> list[str]:
    """Models without a pass@1 on one of ``benchmarks`` (left out of comparisons across them);
    benchmarks without pass@1 (summarization, scored by BLEU) are not asked for."""
    scored = [b for b in benchmarks if any(_pass1(results, m.name, b) is not None for m in results.models)]
    return [
        m.name
        for m in results.models
        if any(_pass1(results, m.name, b) is None for b in scored)
        and any(_pass1(results, m.name, b) is not None for b in scored)
    ]


def language_groups(results: StudyResults) -> dict[str, list[float]]:
    """Language -> pass@1 of the models that ran every language: the same models in each group,
    so a model that ran one language only (and its level) cannot pass for a language effect."""
    langs = [(bench, lang) for bench, lang in results.languages.items() if bench in results.benchmarks]
    skip = set(incomplete_models(results, [b for b, _ in langs]))
    out: dict[str, list[float]] = {}
    for bench, lang in langs:
        for model in results.models:
            v = _pass1(results, model.name, bench)
            if v is not None and model.name not in skip:
                out.setdefault(lang, []).append(v)
    return out


def size_groups(results: StudyResults, bench: str | None) -> dict[str, list[float]]:
    """Group -> pass@1 of its models on ``bench`` (BLEU where the benchmark has no pass@1; None:
    each model's mean pass@1 over the benchmarks, only for models that ran every benchmark, so that
    every mean is over the same benchmarks)."""
    out: dict[str, list[float]] = {}
    stab = {r["model"]: r["mean"] for r in stability_table(results).rows}
    skip = set(incomplete_models(results, results.benchmarks)) if bench is None else set()
    for model in results.models:
        if model.group is None or model.name in skip:
            continue
        if bench is None:
            v = stab.get(model.name)
        else:
            p = results.pair(model.name, bench)
            v = None if p is None else p.value("pass@1") if "pass@1" in p.scores else p.value("bleu")
        if v is not None:
            out.setdefault(model.group, []).append(v)
    return out


# ---- statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StatsBundle:
    anova: list[stats.AnovaResult] = field(default_factory=list)
    kruskal: list[stats.KruskalResult] = field(default_factory=list)
    tukey: list[stats.TukeyResult] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # parallel to anova/kruskal/tukey
    paired: list[stats.PairedResult] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # scope -> models without every benchmark


def compute_stats(
    results: StudyResults, *, correction: str = "holm", seed: int = 0, bootstrap: int = 2000
) -> StatsBundle:
    """ANOVA, Kruskal-Wallis and Tukey HSD per scope, and the paired comparisons (``bootstrap``
    resamples for their CIs; 0: none)."""
    bundle = StatsBundle()
    tests: list[tuple[str, str, dict[str, list[float]]]] = []
    for bench in results.benchmarks:
        tests.append(("size group", bench, size_groups(results, bench)))
    if len(results.benchmarks) > 1:
        tests.append(("size group", "mean over benchmarks", size_groups(results, None)))
        bundle.left_out["mean over benchmarks"] = incomplete_models(results, results.benchmarks)
    if results.languages:
        tests.append(("language", "multilingual benchmarks", language_groups(results)))
        langs = [b for b in results.languages if b in results.benchmarks]
        bundle.left_out["multilingual benchmarks"] = incomplete_models(results, langs)
    for factor, scope, groups in tests:
        bundle.anova.append(stats.one_way_anova(groups, factor=factor))
        bundle.kruskal.append(stats.kruskal_wallis(groups, factor=factor))
        bundle.tukey.append(stats.tukey_hsd(groups, factor=factor))
        bundle.scopes.append(scope)
    paired = []
    for bench in results.benchmarks:
        pairs = [p for p in (results.pair(m.name, bench) for m in results.models) if p is not None]
        pairs = [p for p in pairs if "pass@1" in p.per_problem]
        for i, a in enumerate(pairs):
            for b in pairs[i + 1 :]:
                paired.append(
                    stats.paired_comparison(
                        a.per_problem["pass@1"],
                        b.per_problem["pass@1"],
                        model_a=a.model,
                        model_b=b.model,
                        task=bench,
                        bootstrap=bootstrap,
                        seed=seed,
                    )
                )
    bundle.paired.extend(stats.correct_paired(paired, method=correction))
    return bundle


def anova_table(bundle: StatsBundle) -> Table:
    rows = []
    for scope, a, k in zip(bundle.scopes, bundle.anova, bundle.kruskal, strict=True):
        rows.append(
            {
                "factor": a.factor,
                "scope": scope,
                "test": "one-way ANOVA",
                "groups": len(a.groups),
                "n": a.n,
                "statistic": a.f,
                "df": None if a.df_between is None else f"{a.df_between:g}, {a.df_within:g}",
                "p": a.p,
                "effect": a.eta_squared,
                "effect2": a.omega_squared,
                "note": a.note,
            }
        )
        rows.append(
            {
                "factor": k.factor,
                "scope": scope,
                "test": "Kruskal-Wallis",
                "groups": len(k.groups),
                "n": k.n,
                "statistic": k.h,
                "df": None if k.h is None else f"{len(k.groups) - 1}",
                "p": k.p,
                "effect": k.epsilon_squared,
                "effect2": None,
                "note": k.note,
            }
        )
    columns = (
        Column("factor", "factor"),
        Column("scope", "scores"),
        Column("test", "test"),
        Column("groups", "groups", "int"),
        Column("n", "observations", "int"),
        Column("statistic", "F / H", "float"),
        Column("df", "df"),
        Column("p", "p", "p"),
        Column("effect", "eta² / epsilon²", "float"),
        Column("effect2", "omega²", "float"),
        Column("note", "note", missing=""),
    )
    notes = [
        "observations are pass@1 values (BLEU on summarization) of models (size groups) or of model x "
        "language (languages); "
        "'mean over benchmarks' and the languages use only the models that ran every one of them",
        "eta² = SS_between / SS_total; omega² = (SS_between - df_between MS_within) / (SS_total + MS_within); "
        "Kruskal-Wallis epsilon² = H / (n - 1)",
    ]
    for scope, names in bundle.left_out.items():
        if names:
            notes.append(f"{scope}: left out {', '.join(names)} (did not run every one of them)")
    return Table(
        "anova", "Differences between size groups and languages", columns, tuple(rows), tuple(notes), "statistics"
    )


def tukey_table(bundle: StatsBundle) -> Table:
    rows = []
    for scope, t in zip(bundle.scopes, bundle.tukey, strict=True):
        for pair in t.pairs:
            rows.append(
                {
                    "factor": t.factor,
                    "scope": scope,
                    "group1": pair.group1,
                    "group2": pair.group2,
                    "diff": pair.mean_diff,
                    "ci_low": pair.ci_low,
                    "ci_high": pair.ci_high,
                    "p_adj": pair.p_adj,
                    "reject": pair.reject,
                }
            )
    columns = (
        Column("factor", "factor"),
        Column("scope", "scores"),
        Column("group1", "group A"),
        Column("group2", "group B"),
        Column("diff", "B - A (points)", "pct", ci=("ci_low", "ci_high")),
        Column("p_adj", "p (Tukey)", "p"),
        Column("reject", "significant at 0.05", "bool"),
    )
    return Table("tukey", "Tukey HSD", columns, tuple(rows), ("family-wise error rate 0.05",), "statistics")


def paired_table(bundle: StatsBundle, *, correction: str = "holm") -> Table:
    rows = []
    for r in bundle.paired:
        rows.append(
            {
                "benchmark": r.task,
                "model_a": r.model_a,
                "model_b": r.model_b,
                "problems": r.n_problems,
                "pass1_a": r.mean_a,
                "pass1_b": r.mean_b,
                "diff": r.diff,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "test": r.test,
                "p": r.p,
                "p_adj": r.p_adj,
                "significant": None if r.p_adj is None else r.p_adj < 0.05,
                "note": r.note,
            }
        )
    label = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}.get(correction, correction)
    columns = (
        Column("benchmark", "benchmark"),
        Column("model_a", "model A"),
        Column("model_b", "model B"),
        Column("problems", "problems", "int"),
        Column("pass1_a", "A pass@1 (%)", "pct"),
        Column("pass1_b", "B pass@1 (%)", "pct"),
        Column("diff", "B - A (points)", "pct", ci=("ci_low", "ci_high")),
        Column("test", "test"),
        Column("p", "p", "p"),
        Column("p_adj", f"p ({label})", "p"),
        Column("significant", "significant", "bool"),
        Column("note", "note", missing=""),
    )
    notes = (
        "same problems, paired: exact McNemar test on pass/fail when every per-problem pass@1 of both models "
        "is 0 or 1 (e.g. one greedy sample), else Wilcoxon signed-rank on per-problem pass@1; "
        "CI: paired bootstrap of the difference",
        f"p-values corrected for all comparisons of the study together ({label})",
    )
    return Table("paired", "Paired comparisons of models", columns, tuple(rows), notes, "statistics")


@dataclass(frozen=True)
class ParetoData:
    benchmark: str | None
    cost_label: str  # "peak memory" or "parameters"
    points: list[stats.Point]
    frontier: list[stats.Point]
    statement: stats.CostStatement


def pareto_data(results: StudyResults) -> ParetoData:
    bench = results.pareto_benchmark
    memory_points, param_points = [], []
    for model in results.models:
        p = results.pair(model.name, bench) if bench else None
        v = p.value("pass@1") if p else None
        if v is None:
            continue
        peak, _ = model_memory(results, model.name)
        if peak is not None:
            memory_points.append(stats.Point(model.name, float(peak), v))
        if model.parameters is not None:
            param_points.append(stats.Point(model.name, float(model.parameters), v))
    if len(memory_points) >= 2:
        points, label, cost = memory_points, "peak memory", "the memory"
    else:
        points, label, cost = param_points, "parameters", "the parameters"
    caveat = (
        "memory was not measured for enough models: parameter count stands in for it" if label == "parameters" else ""
    )
    statement = stats.cost_statement(points, cost_label=cost, caveat=caveat)
    return ParetoData(bench, label, points, stats.pareto_frontier(points), statement)


def pareto_table(data: ParetoData) -> Table:
    on = {p.name for p in data.frontier}
    kind: Kind = "bytes" if data.cost_label == "peak memory" else "params"
    rows = [
        {"model": p.name, "cost": p.cost, "pass1": p.value, "frontier": p.name in on}
        for p in sorted(data.points, key=lambda p: p.cost)
    ]
    columns = (
        Column("model", "model"),
        Column("cost", data.cost_label, kind),
        Column("pass1", f"pass@1 on {data.benchmark} (%)", "pct"),
        Column("frontier", "on the Pareto frontier", "bool"),
    )
    return Table(
        "pareto", "Accuracy / cost Pareto frontier", columns, tuple(rows), (data.statement.text,), "efficiency"
    )


def all_tables(
    results: StudyResults, bundle: StatsBundle, pareto: ParetoData, *, correction: str = "holm"
) -> list[Table]:
    tables = ranking_tables(results)
    tables.append(stability_table(results))
    tables.append(efficiency_table(results))
    tables.append(efficiency_detail_table(results))
    tables.append(pareto_table(pareto))
    multi = multilingual_table(results)
    if multi is not None:
        tables.append(multi)
    tables += [anova_table(bundle), tukey_table(bundle), paired_table(bundle, correction=correction)]
    tables.append(models_table(results))
    return tables


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_").lower()


def write_tables(tables: Sequence[Table], folder: Any) -> list[Any]:
    """CSV and JSON of every table into ``folder``; returns the paths written."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for t in tables:
        (folder / f"{t.name}.csv").write_text(t.to_csv(), encoding="utf-8")
        (folder / f"{t.name}.json").write_text(json.dumps(t.to_json(), indent=1), encoding="utf-8")
        written += [folder / f"{t.name}.csv", folder / f"{t.name}.json"]
    return written


def tables_by_name(tables: Sequence[Table]) -> Mapping[str, Table]:
    return {t.name: t for t in tables}


def models_table(results: StudyResults) -> Table:
    rows = [
        {
            "model": m.name,
            "backend": m.backend,
            "parameters": m.parameters,
            "parameters_source": m.parameters_source or None,
            "group": m.group,
            "generations": "replayed" if m.replayed else "generated here",
        }
        for m in results.models
    ]
    columns = (
        Column("model", "model"),
        Column("backend", "backend"),
        Column("parameters", "parameters", "params", missing="unknown"),
        Column("parameters_source", "parameter count"),
        Column("group", "size group", missing="none"),
        Column("generations", "generations"),
    )
    return Table("models", "Models of the study", columns, tuple(rows), (), "models")
