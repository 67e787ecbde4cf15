from __future__ import annotations

import csv
import io
import json
import statistics

import pytest
from tests.analysis.synthetic import BENCHMARKS, MODELS, synthetic_results

from slmbench.analysis import stats, tables
from slmbench.analysis.results import Efficiency, efficiency_from_usages
from slmbench.types import Score, Usage


def test_ranking_orders_models_and_keeps_cis() -> None:
    res = synthetic_results()
    ranking = tables.ranking_tables(res)
    assert [t.name for t in ranking] == [f"ranking_{b.replace('-', '_')}" for b in BENCHMARKS]
    he = ranking[0]
    values = [r["pass@1"] for r in he.rows]
    assert values == sorted(values, reverse=True)
    assert [r["rank"] for r in he.rows] == list(range(1, len(MODELS) + 1))
    for r in he.rows:
        assert r["pass@1 ci_low"] <= r["pass@1"] <= r["pass@1 ci_high"]
        shown = he.cell(r, he.columns[4])
        assert shown.startswith(f"{100 * r['pass@1']:.1f} [")
    assert any(r.get("published pass@1") == 43.9 for r in he.rows)


def test_stability_is_mean_sd_cv_over_benchmarks() -> None:
    res = synthetic_results()
    st = {r["model"]: r for r in tables.stability_table(res).rows}
    vals = [res.pair("mid-a", b).value("pass@1") for b in BENCHMARKS]
    row = st["mid-a"]
    assert row["benchmarks"] == 4
    assert row["mean"] == pytest.approx(statistics.fmean(vals))
    assert row["sd"] == pytest.approx(statistics.stdev(vals))
    assert row["cv"] == pytest.approx(statistics.stdev(vals) / statistics.fmean(vals))


def test_replayed_models_show_not_measured_never_zero() -> None:
    res = synthetic_results()
    eff = tables.efficiency_table(res)
    rows = {r["model"]: r for r in eff.rows}
    assert rows["mid-b"]["peak_memory"] is None and rows["mid-b"]["source"] == "replayed"
    mem_col = next(c for c in eff.columns if c.key == "peak_memory")
    assert eff.cell(rows["mid-b"], mem_col) == "not measured"
    assert eff.cell(rows["tiny-a"], mem_col) == f"{0.5e9 * 2.2 / 1e9:.2f} GB"
    # CSV leaves unmeasured cells empty rather than writing 0
    parsed = list(csv.DictReader(io.StringIO(eff.to_csv())))
    assert next(r for r in parsed if r["model"] == "mid-b")["peak_memory"] == ""


def test_efficiency_from_usages_none_unless_measured() -> None:
    assert not efficiency_from_usages([Usage(), Usage()], n_problems=2).measured
    e = efficiency_from_usages(
        [
            Usage(completion_tokens=10, latency_s=1.0, peak_memory_bytes=5, energy_j=2.0),
            Usage(completion_tokens=30, latency_s=1.0, peak_memory_bytes=7, energy_j=6.0),
        ],
        n_problems=2,
        device="cuda:0",
        load_time_s=3.0,
    )
    assert e.peak_memory_bytes == 7 and e.memory_kind == "VRAM" and e.load_time_s == 3.0
    assert e.latency_s_per_sample == 1.0 and e.tokens_per_s == 20.0
    assert e.energy_j_per_problem == 4.0 and e.energy_j_per_token == pytest.approx(0.2)
    # energy measured for one sample only: a partial sum would understate it, so it is not shown
    partial = efficiency_from_usages(
        [Usage(completion_tokens=1, latency_s=1.0, energy_j=2.0), Usage(completion_tokens=1, latency_s=1.0)],
        n_problems=2,
    )
    assert partial.energy_j_per_problem is None and partial.tokens_per_s == 1.0
    assert efficiency_from_usages([Usage(peak_memory_bytes=1)], n_problems=1, device="cpu").memory_kind == "RSS"
    assert isinstance(e, Efficiency)


def test_multilingual_table_and_language_anova() -> None:
    res = synthetic_results()
    multi = tables.multilingual_table(res)
    assert [c.key for c in multi.columns][2:] == ["Python", "JavaScript", "C++", "mean"]
    row = next(r for r in multi.rows if r["model"] == "big-a")
    assert row["C++"] == res.pair("big-a", "humanevalpack-cpp").value("pass@1")
    groups = tables.language_groups(res)
    assert sorted(groups) == ["C++", "JavaScript", "Python"] and all(len(v) == 6 for v in groups.values())
    bundle = tables.compute_stats(res)
    lang = bundle.anova[bundle.scopes.index("multilingual benchmarks")]
    ref = stats.one_way_anova(groups)
    assert lang.f == pytest.approx(ref.f) and lang.factor == "language"


def test_size_group_anova_detects_the_built_in_difference() -> None:
    res = synthetic_results()
    bundle = tables.compute_stats(res)
    overall = bundle.anova[bundle.scopes.index("mean over benchmarks")]
    assert overall.groups == ("Group 1", "Group 2", "Group 3")
    assert overall.p < 0.01 and overall.eta_squared > 0.8
    tukey = bundle.tukey[bundle.scopes.index("mean over benchmarks")]
    g13 = next(p for p in tukey.pairs if (p.group1, p.group2) == ("Group 1", "Group 3"))
    assert g13.reject and g13.mean_diff > 0.3


def test_paired_comparisons_are_holm_corrected_over_the_study() -> None:
    res = synthetic_results()
    bundle = tables.compute_stats(res)
    assert len(bundle.paired) == len(BENCHMARKS) * 15
    raw = [r.p for r in bundle.paired if r.p is not None]
    assert [r.p_adj for r in bundle.paired if r.p is not None] == pytest.approx(stats.adjust_pvalues(raw))
    assert all(r.test == "mcnemar-exact" for r in bundle.paired if r.p is not None)


def test_pareto_uses_memory_when_measured_else_parameters() -> None:
    res = synthetic_results()
    data = tables.pareto_data(res)
    assert data.cost_label == "peak memory"
    assert {p.name for p in data.points} == {"tiny-a", "tiny-b", "mid-a", "big-a"}  # replayed: no memory
    only_params = type(res)(
        **{**res.__dict__, "pairs": tuple(p.__class__(**{**p.__dict__, "efficiency": None}) for p in res.pairs)}
    )
    data2 = tables.pareto_data(only_params)
    assert data2.cost_label == "parameters" and len(data2.points) == 6
    assert "parameter count stands in" in data2.statement.text


def test_csv_json_round_trip_every_table() -> None:
    res = synthetic_results(with_missing=True)
    bundle = tables.compute_stats(res)
    all_t = tables.all_tables(res, bundle, tables.pareto_data(res))
    names = [t.name for t in all_t]
    assert len(names) == len(set(names))
    for t in all_t:
        parsed = list(csv.DictReader(io.StringIO(t.to_csv())))
        assert len(parsed) == len(t.rows)
        js = json.loads(json.dumps(t.to_json()))
        assert len(js["rows"]) == len(t.rows)
    mbpp = next(t for t in all_t if t.name == "ranking_mbpp")
    assert "big-b" not in {r["model"] for r in mbpp.rows}


def _without(res, model: str, bench: str):
    pairs = tuple(p for p in res.pairs if not (p.model == model and p.task == bench))
    return type(res)(**{**res.__dict__, "pairs": pairs})


def test_language_and_mean_comparisons_use_only_models_that_ran_them_all() -> None:
    # big-b ran Python and JavaScript but not C++: counted in two languages only, its level
    # would pass for a difference between languages
    res = _without(synthetic_results(), "big-b", "humanevalpack-cpp")
    groups = tables.language_groups(res)
    assert all(len(v) == 5 for v in groups.values())
    complete = [m for m, *_ in MODELS if m != "big-b"]
    assert groups["Python"] == [res.pair(m, "humaneval").value("pass@1") for m in complete]
    sizes = tables.size_groups(res, None)
    assert sum(len(v) for v in sizes.values()) == 5 and len(sizes["Group 3"]) == 1
    bundle = tables.compute_stats(res)
    assert bundle.left_out == {"mean over benchmarks": ["big-b"], "multilingual benchmarks": ["big-b"]}
    lang = bundle.anova[bundle.scopes.index("multilingual benchmarks")]
    assert lang.n == 15 and lang.df_within == 12
    notes = " ".join(tables.anova_table(bundle).notes)
    assert "multilingual benchmarks: left out big-b" in notes and "mean over benchmarks: left out big-b" in notes
    # per benchmark, every model that ran it counts
    assert sum(len(v) for v in tables.size_groups(res, "humaneval").values()) == 6


def test_ranking_says_which_pass_at_k_could_not_be_computed() -> None:
    res = synthetic_results()
    many = next(p for p in res.pairs if p.model == "big-a" and p.task == "humaneval")
    pairs = tuple(
        p.__class__(**{**p.__dict__, "scores": {**p.scores, "pass@10": Score("pass@10", 0.9, 0.8, 1.0, 40, 400)}})
        if p is many
        else p
        for p in res.pairs
    )
    he = tables.ranking_tables(type(res)(**{**res.__dict__, "pairs": pairs}))[0]
    assert "pass@10" in [c.key for c in he.columns]
    others = [m for m, *_ in MODELS if m != "big-a"]
    note = next(n for n in he.notes if n.startswith("pass@10"))
    assert note.endswith("needs at least 10 samples per problem") and all(m in note for m in others)
    assert "big-a" not in note
    assert not any(n.startswith("pass@1 ") for n in he.notes)


def test_paired_bootstrap_follows_the_study_setting() -> None:
    res = synthetic_results()
    assert all(r.ci_low is None for r in tables.compute_stats(res, bootstrap=0).paired)
    assert any(r.ci_low is not None for r in tables.compute_stats(res, bootstrap=200).paired)


def test_a_bleu_benchmark_is_compared_on_bleu_and_leaves_no_model_out() -> None:
    res = synthetic_results()
    bleu = tuple(
        p.__class__(model=p.model, task="codexglue", scores={"bleu": Score("bleu", 10.0 + i, None, None, 40, 40)}, n=1)
        for i, p in enumerate(p for p in res.pairs if p.task == "humaneval")
    )
    res = type(res)(**{**res.__dict__, "benchmarks": (*res.benchmarks, "codexglue"), "pairs": res.pairs + bleu})
    groups = tables.size_groups(res, "codexglue")
    assert groups == {"Group 1": [10.0, 11.0], "Group 2": [12.0, 13.0], "Group 3": [14.0, 15.0]}
    # no model has pass@1 there: that is no reason to leave every model out of the mean over benchmarks
    assert tables.incomplete_models(res, res.benchmarks) == []
    assert sum(len(v) for v in tables.size_groups(res, None).values()) == 6
